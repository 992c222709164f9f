/*
 * smimed: SCEP enrollment (RFC 8894).  The messages are libsmime's
 * (smime/scep.h); this module routes them and decides.
 *
 * Endpoints: /scep and /cgi-bin/pkiclient.exe (the path Windows NDES
 * clients use), with ?operation=GetCACaps, GetCACert or PKIOperation
 * (GET with message=BASE64, or POST of the DER).  The message= of
 * GetCACaps and GetCACert names a SCEP profile or a CA; without one (or
 * with one the service does not know) the CA is the one that SCEP
 * profiles issue from when there is only one.  A PKIOperation goes to the
 * CA whose RA (or whose own certificate) its envelope is encrypted to.
 *
 * Who gets what: a PKCSReq is taken with a challenge (scep_challenge_*)
 * issued for one user, device and SCEP profile, or signed with a current
 * certificate that SCEP issued to a device (a renewal, as a RenewalReq
 * is).  The certificate's subject, addresses and key usage come from the
 * profile and the user, never from the request; a request that asks for
 * an address that is not the user's is refused.
 *
 * failInfo: badAlg (a digest, cipher or key the profile does not take),
 * badMessageCheck (the signature or the envelope does not check),
 * badRequest (no, wrong, used or expired challenge, a foreign address, a
 * replayed message, a transactionID taken by another key, a request
 * outside the renewal window, refused by an admin, throttled), badTime
 * (signingTime further than scep_clock_skew from now), badCertId (a
 * renewal signed by a certificate that is not a current one of ours; a
 * CertPoll or GetCert for nothing we know).
 */
#ifndef SMIMED_SCEP_H
#define SMIMED_SCEP_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include <smime/error.h>

#include "store.h"

struct service;

#define SCEP_RA_KEY_PREFIX "scep-ra:"      /* signer key id: prefix and CA id */
#define SCEP_CHALLENGE_ID_HEX 16           /* the public half of a challenge */
#define SCEP_CHALLENGE_SECRET_HEX 32       /* the secret half */
#define SCEP_CHALLENGE_SIZE (SCEP_CHALLENGE_ID_HEX + 1 + SCEP_CHALLENGE_SECRET_HEX + 1)

/* Wrong challenges and refused renewals, counted per source address and
 * per device (in memory). */
struct scep_throttle;
struct scep_throttle *scep_throttle_new(void);
void scep_throttle_free(struct scep_throttle *t);

/* At start: the RAs' keys into the signer. */
int scep_load(struct service *svc, struct smime_error *err);

/*
 * The RA ca needs for SCEP: none when its key is RSA (it receives the
 * envelopes itself) or when have_ra.  Otherwise a key is made in the
 * signer (scep_ra_key_alg) and certified by ca, and *ra_r is filled for
 * the caller to put in the store; when that fails, scep_ra_discard
 * forgets the key.  ra_r->cert_der is NULL when nothing was made.
 */
int scep_ra_prepare(struct service *svc, const struct store_ca *ca, bool have_ra,
    struct store_scep_ra *ra_r, struct smime_error *err);
void scep_ra_discard(struct service *svc, const char *ca_id);

/* A subject template: comma-separated CN={email}, emailAddress={email},
 * serialNumber={device} or serialNumber={user}, each at most once. */
int scep_subject_check(const char *tmpl, struct smime_error *err);

/* A challenge for (user, device, profile) valid minutes from now: the
 * record to insert and the text to hand out ("ID-SECRET"). */
int scep_challenge_make(const char *user_id, const char *device_id, const char *profile,
    int minutes, int64_t now, struct store_scep_challenge *c_r,
    char text_r[SCEP_CHALLENGE_SIZE], struct smime_error *err);

/* The SCEP profile, user and device a challenge or a certificate names:
 * NOTFOUND when one of them is gone. */
int scep_parties_get(const struct store_backend *be, struct store_tx *tx, const char *profile,
    const char *user_id, const char *device_id, struct store_scep_profile *p_r,
    struct store_user *u_r, struct store_device *d_r, struct smime_error *err);

/*
 * Issue a certificate from profile p for the request (DER csr, or
 * csr_req parsed and its signature verified already): *rec_r is the
 * record to insert, *cert_r (when not NULL) the certificate.  Errors as
 * ca_issue's.
 */
int scep_issue_for(struct service *svc, const struct store_scep_profile *p,
    const struct store_user *u, const struct store_device *d, const struct store_ca *ca,
    const unsigned char *csr, size_t csr_len, X509_REQ *csr_req, struct store_cert *rec_r,
    X509 **cert_r, struct smime_error *err);

#endif

/*
 * smimed: the OCSP responder (RFC 6960), for the service's issuing CAs.
 *
 * ocsp_respond takes a DER OCSPRequest and gives a DER OCSPResponse;
 * a request it cannot parse gets malformedRequest, a CertID of a CA it
 * does not serve gets unauthorized (RFC 6960 2.3) — never an HTTP error.
 * The status of a serial comes from a lookup function, so that this module
 * knows nothing of the store.  Responses to requests without a nonce are
 * cached for ttl seconds (or until ocsp_cache_flush, called on every
 * revocation); a request with a nonce is signed afresh and the nonce
 * echoed (RFC 8954: at most 32 octets of nonce, else malformedRequest).
 */
#ifndef SMIMED_OCSP_H
#define SMIMED_OCSP_H

#include <stddef.h>
#include <stdint.h>

#include "signer.h"
#include "store.h"

#define OCSP_MAX_REQUEST 8192        /* octets of one request */
#define OCSP_MAX_CERTIDS 16          /* CertIDs in one request */

/* What the lookup says about serial (upper-case hex) of ca_id. */
struct ocsp_status {
	int known;            /* 0: never issued by this CA (answered "unknown") */
	int revoked;
	int64_t revoked_at;
	int reason;           /* -1 when none */
};
typedef int (*ocsp_lookup_fn)(void *arg, const char *ca_id, const char *serial,
    struct ocsp_status *st_r, struct smime_error *err);

/* One CA the responder answers for; cert is that CA's certificate, and
 * responder_cert / responder_key_id the certificate and signer key id that
 * sign the responses (the CA itself, or a delegated responder). */
struct ocsp_ca {
	const char *ca_id;
	X509 *cert;
	X509 *responder_cert;
	const char *responder_key_id;
};

struct ocsp_responder;

struct ocsp_responder *ocsp_responder_new(struct signer *sg, int64_t cache_ttl,
    int64_t validity_seconds);
void ocsp_responder_free(struct ocsp_responder *r);
/* Replace the set of CAs answered for (copies what it needs). */
int ocsp_responder_set_cas(struct ocsp_responder *r, const struct ocsp_ca *cas, size_t n,
    struct smime_error *err);
/* Forget every cached response (after a revocation). */
void ocsp_cache_flush(struct ocsp_responder *r);

/* Thread-safe.  *resp_r: caller frees with free(). Returns an error only
 * when no response at all can be made (out of memory, signer failure:
 * then the caller answers internalError itself or HTTP 500). */
int ocsp_respond(struct ocsp_responder *r, const unsigned char *req, size_t len,
    ocsp_lookup_fn lookup, void *arg, int64_t now, unsigned char **resp_r, size_t *len_r,
    struct smime_error *err);

#endif

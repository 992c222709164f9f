/*
 * smimed: the certification authority's decisions.
 *
 * What a CA certificate, an S/MIME certificate and a CRL contain is decided
 * here; the signature is the signer's (signer.h).  Nothing here touches the
 * store: callers read the records, call these, and write the results, so
 * the functions are pure enough to test without a service.
 *
 * Issued certificates follow the CA/Browser Forum S/MIME Baseline
 * Requirements for mailbox-validated certificates (strict and
 * multipurpose generations).  URLs in them are those of this service:
 *   caIssuers       BASE/ca/ID.crt         (DER)
 *   OCSP            BASE/ocsp/ID           (RFC 6960, POST and GET)
 *   CRL DP          BASE/crl/ID.crl        (DER)
 * where BASE is the public base URL without a trailing slash and ID the
 * issuing CA's id.
 */
#ifndef SMIMED_CA_H
#define SMIMED_CA_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <smime/error.h>

#include "signer.h"
#include "store.h"

#define CA_MAX_VALIDITY_DAYS 825   /* S/MIME BR 6.3.2: subscriber certificates */
#define CA_MAX_CSR 65536           /* octets of one CSR, PEM or DER */
#define CA_MAX_EMAILS 16           /* rfc822Names in one certificate */
#define CA_SERIAL_OCTETS 16        /* 127 random bits (the top bit cleared) */

/*
 * A certificate's DER parsed (NULL when it is not exactly one DER
 * certificate).  ca_cert_cached keeps the last 16 parsed, keyed by the
 * DER itself, for the certificates every request needs (CAs, RAs):
 * OpenSSL 3.0 decodes a certificate's key at about the cost of a
 * signature.  Both return a new reference.
 */
X509 *ca_cert_parse(const unsigned char *der, size_t len);
X509 *ca_cert_cached(const unsigned char *der, size_t len);

/*
 * S/MIME BR 6.1.6 for an RSA public key: exponent odd, 2^16+1 to
 * 2^256-1; modulus odd, without a factor below 752, not a prime power.
 * SMIME_E_POLICY with the rule broken.
 */
int ca_rsa_public_check(EVP_PKEY *pub, struct smime_error *err);

/* Key algorithms the service makes and accepts: "ec-p256", "ec-p384",
 * "ec-p521", "rsa-2048", "rsa-3072", "rsa-4096".  True when known. */
bool ca_key_alg_valid(const char *alg);

/*
 * Make a new CA: a key made inside the signer under id, and its
 * certificate.  parent NULL: a self-signed root (CA:TRUE critical, keyUsage
 * keyCertSign cRLSign critical).  Otherwise an intermediate signed by
 * parent (pathLenConstraint 0 when issuing, EKU emailProtection, AIA and
 * CRL DP of the parent).  Subject: C=country, O=organisation (each when
 * not NULL or ""; country two letters, ISO 3166-1), CN=common_name.  Fills ca_r (id, parent_id, issuing, key_alg, cert_der,
 * key_wrapped, created = now); caller clears it.
 */
int ca_create(struct signer *sg, const char *base_url, const char *id, const char *key_alg,
    const char *common_name, const char *organisation, const char *country, int validity_days,
    const struct store_ca *parent, bool issuing, int64_t now, struct store_ca *ca_r,
    struct smime_error *err);

/*
 * Take an existing CA: cert must be a CA certificate (basicConstraints
 * CA:TRUE, keyUsage keyCertSign when present, a subject key identifier)
 * and key (may be NULL: a CA the service trusts but cannot sign with) its
 * private key.  parent_id "" for a root.  Fills ca_r; the key goes to the
 * signer under id and comes back wrapped in ca_r.
 */
int ca_import(struct signer *sg, const char *id, X509 *cert, EVP_PKEY *key,
    const char *parent_id, bool issuing, int64_t now, struct store_ca *ca_r,
    struct smime_error *err);

struct ca_issue_req {
	const struct store_ca *ca;           /* the issuing CA (its key is in the signer) */
	const struct store_profile *profile;
	const struct store_user *user;       /* subject and rfc822Names come from here */
	const struct store_device *device;   /* NULL, or the device a signing certificate is for */
	const unsigned char *csr;            /* PEM or DER PKCS#10, or NULL: generate a key */
	size_t csr_len;
	X509_REQ *csr_req;                   /* or the request parsed already (csr is not read) */
	bool csr_verified;                   /* csr_req's signature was verified by the caller */
	const char *base_url;
	int64_t now;

	/* What a SCEP profile changes (zero: the defaults described below). */
	const char *const *emails;           /* the rfc822Names; NULL: every address of the user */
	size_t n_emails;
	bool no_cn;                          /* a subject without commonName */
	bool email_attr;                     /* subject emailAddress: the first address */
	const char *subject_serial;          /* subject serialNumber, or NULL */
	bool non_repudiation;                /* signing: keyUsage nonRepudiation too */
};

/*
 * Build and sign one certificate for req.  With a CSR: its signature must
 * verify and its key be RSA >= 2048 bits or EC P-256/P-384/P-521, or, for a
 * signing profile only, Ed25519/Ed448 (S/MIME BR 6.1.5, 7.1.2.3 e); what the
 * CSR asks for (subject, extensions) is ignored: subject and emails come
 * from the user, the rest from the profile.  Without: a key of
 * profile->key_alg is made (allowed only when profile->allow_generate) and
 * returned in *key_r.  Validity: now - 0 .. now + profile->validity_days
 * (never past the CA's own notAfter, never more than 825 days).
 * With a CSR, *cert_r carries the CSR's key as encoded there, without
 * decoding it again (OpenSSL 3.0's decoders cost more than the signature):
 * X509_get0_pubkey gives NULL on it.  Encode it (i2d_X509) to publish it,
 * and read it back to verify it.
 * Errors: SMIME_E_INPUT (bad CSR), SMIME_E_POLICY (weak key, key not
 * allowed, generation not allowed), SMIME_E_USAGE (user without email).
 */
int ca_issue(struct signer *sg, const struct ca_issue_req *req, X509 **cert_r,
    EVP_PKEY **key_r, struct smime_error *err);

/*
 * The RSA registration authority certificate of ca for SCEP (RFC 8894
 * 2.1.1): key_id's key (made by the caller in the signer, pub its public
 * half) certified by ca for digitalSignature and keyEncipherment, CA:FALSE,
 * with subject and authority key identifiers, valid until the CA's own
 * notAfter.  *der_r: caller frees with OPENSSL_free.
 */
int ca_make_ra(struct signer *sg, const struct store_ca *ca, EVP_PKEY *pub, const char *base_url,
    int64_t now, unsigned char **der_r, size_t *len_r, struct smime_error *err);

/* Fill a store record (serial, subject, email, validity, fingerprints, DER,
 * ca_id, user, device, profile, purpose, source, status ACTIVE, created = now)
 * from a certificate issued for req. */
int ca_cert_record(X509 *cert, const struct ca_issue_req *req, enum cert_source source,
    struct store_cert *c_r, struct smime_error *err);

/*
 * A CRL of ca (v2, CRL number, AKI, thisUpdate now, nextUpdate now +
 * validity_seconds, one entry per revoked certificate with its reason
 * unless unspecified), signed by the signer.  *der_r: caller frees with
 * OPENSSL_free.
 */
int ca_make_crl(struct signer *sg, const struct store_ca *ca, const struct store_revoked *r,
    size_t n, int64_t number, int64_t now, int64_t validity_seconds,
    unsigned char **der_r, size_t *len_r, struct smime_error *err);

/* Serial numbers as this service writes them: upper-case hex, no
 * separators, no leading zero octet (as `openssl x509 -serial` prints). */
void ca_serial_hex(const ASN1_INTEGER *serial, char out[STORE_SERIAL_SIZE]);
/* Accept hex with or without colons or spaces, either case, an optional
 * 0x; normalise to the form above.  SMIME_E_INPUT when not a serial. */
int ca_serial_parse(const char *text, char out[STORE_SERIAL_SIZE], struct smime_error *err);

/* RFC 5280 5.3.1 CRLReason names as the RFC spells them (keyCompromise,
 * cACompromise, ...), and back: -1 when unknown (7 is not used). */
const char *ca_reason_name(int reason);
int ca_reason_parse(const char *name);

#endif

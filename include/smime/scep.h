/*
 * libsmime: SCEP messages (RFC 8894), for the client and the server alike.
 *
 * A pkiMessage is a CMS SignedData (RFC 5652 5) whose signed attributes
 * carry the SCEP fields (messageType, transactionID, senderNonce, and in a
 * reply pkiStatus, recipientNonce, failInfo) and whose content, when there
 * is one, is the pkcsPKIEnvelope: a CMS EnvelopedData holding the
 * messageData of the type (a PKCS#10 request, IssuerAndSubject,
 * IssuerAndSerialNumber, or a degenerate SignedData of certificates or a
 * CRL).
 *
 * Reading is in two steps.  smime_scep_read decodes the SignedData, reads
 * the attributes and checks the signature with the certificate the signer
 * included; it says nothing about whether that certificate is to be
 * trusted, which is the caller's decision (a self-signed certificate for a
 * first request, a certificate the CA issued for a renewal, the RA's for a
 * reply).  smime_scep_open then decrypts the envelope with the recipient's
 * key and decodes the messageData.  Both bound what they read and fill as
 * much of the message as they could read before an error, so that a server
 * can still answer a FAILURE to a request whose signature is bad.
 */
#ifndef SMIME_SCEP_H
#define SMIME_SCEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <smime/error.h>

#define SMIME_SCEP_MAX_MESSAGE (256u * 1024)  /* octets of one pkiMessage */
#define SMIME_SCEP_MAX_CONTENT (64u * 1024)   /* octets of one messageData */
#define SMIME_SCEP_MAX_TID 128                /* characters of a transactionID */
#define SMIME_SCEP_NONCE 16                   /* octets of a nonce we make */
#define SMIME_SCEP_MAX_NONCE 64               /* octets of a nonce we accept */
#define SMIME_SCEP_MAX_CERTS 16               /* certificates in a reply */
#define SMIME_SCEP_MAX_CHALLENGE 255          /* characters of a challengePassword */

/* RFC 8894 3.2.1.2: messageType. */
enum smime_scep_type {
	SMIME_SCEP_CERTREP = 3,
	SMIME_SCEP_RENEWALREQ = 17,
	SMIME_SCEP_PKCSREQ = 19,
	SMIME_SCEP_CERTPOLL = 20,
	SMIME_SCEP_GETCERT = 21,
	SMIME_SCEP_GETCRL = 22,
};

/* RFC 8894 3.2.1.3: pkiStatus. */
enum smime_scep_status {
	SMIME_SCEP_SUCCESS = 0,
	SMIME_SCEP_FAILURE = 2,
	SMIME_SCEP_PENDING = 3,
};

/* RFC 8894 3.2.1.4: failInfo. */
enum smime_scep_fail {
	SMIME_SCEP_BAD_ALG = 0,
	SMIME_SCEP_BAD_MESSAGE_CHECK = 1,
	SMIME_SCEP_BAD_REQUEST = 2,
	SMIME_SCEP_BAD_TIME = 3,
	SMIME_SCEP_BAD_CERT_ID = 4,
};

/* A pkiMessage as read.  Zero it before the first use; clear it with
 * smime_scep_msg_clear. */
struct smime_scep_msg {
	int type;                        /* enum smime_scep_type, 0 before it is read */
	char transaction_id[SMIME_SCEP_MAX_TID + 1];  /* "" before it is read */
	unsigned char sender_nonce[SMIME_SCEP_MAX_NONCE];
	size_t sender_nonce_len;         /* 0: absent */
	unsigned char recipient_nonce[SMIME_SCEP_MAX_NONCE];
	size_t recipient_nonce_len;      /* 0: absent */
	int status;                      /* enum smime_scep_status; -1 when absent */
	int fail_info;                   /* enum smime_scep_fail; -1 when absent */
	char *fail_text;                 /* failInfoText (RFC 8894 3.2.1.4), or NULL */
	X509 *signer;                    /* the certificate of the signer, or NULL */
	unsigned char signer_sha256[32]; /* SHA-256 of its encoding as received, with signer */
	STACK_OF(X509) *certs;           /* every certificate of the SignedData, or NULL */
	int digest_nid;                  /* the signature's digest, NID_undef before it is read */
	bool signature_ok;               /* the signature verified with signer */
	int64_t signing_time;            /* signingTime, when has_signing_time */
	bool has_signing_time;
	unsigned char *envelope;         /* the pkcsPKIEnvelope's DER, or NULL */
	size_t envelope_len;
	int cipher_nid;                  /* its content-encryption algorithm */

	/* The messageData, after smime_scep_open. */
	X509_REQ *csr;                   /* PKCSReq, RenewalReq */
	unsigned char *csr_der;          /* ... its encoding as received */
	size_t csr_len;
	X509_NAME *issuer;               /* CertPoll, GetCert, GetCRL */
	X509_NAME *subject;              /* CertPoll */
	ASN1_INTEGER *serial;            /* GetCert, GetCRL */
	STACK_OF(X509) *issued;          /* CertRep SUCCESS: the certificates */
	STACK_OF(X509_CRL) *crls;        /* CertRep SUCCESS to a GetCRL */

	bool assembled;                  /* read with SMIME_SCEP_ASSEMBLE */
};

void smime_scep_msg_clear(struct smime_scep_msg *m);

/*
 * Read a pkiMessage: the SignedData, its signed attributes and the
 * signature.  Errors, with m filled as far as it was read:
 *   SMIME_E_INPUT   not a pkiMessage, or a SCEP attribute missing or
 *                   malformed (RFC 8894 failInfo badRequest);
 *   SMIME_E_POLICY  a digest algorithm other than SHA-1 and SHA-2
 *                   (badAlg); SHA-1 is read and left to the caller;
 *   SMIME_E_BADSIG  the signature does not verify with the certificate
 *                   the signer included (badMessageCheck).
 * A server can answer (smime_scep_write a CertRep) when m->signer,
 * m->transaction_id and m->sender_nonce are there: smime_scep_can_reply.
 */
SMIME_MUST_CHECK int smime_scep_read(const unsigned char *der, size_t len,
    struct smime_scep_msg *m, struct smime_error *err);

/*
 * smime_scep_read with flags.  SMIME_SCEP_ASSEMBLE is a server's reading,
 * for speed: OpenSSL 3.0 decodes every public key of a certificate or a
 * request through its provider decoders, at some 200 microseconds of CPU
 * each and serialised across threads, which costs a server more than its
 * private-key operations.  With the flag, the certificates of the message
 * and (in smime_scep_open) a PKCS#10 request whose key is RSA are read with
 * libsmime's own templates and their X509 and X509_REQ assembled from the
 * fields read: the same names, serial number, validity, key, extensions,
 * attributes and signature, encoded anew.  So the caller MUST identify the
 * signer by m->signer_sha256 (the certificate as received) and keep
 * m->csr_der, not a re-encoding.  Anything that cannot be assembled exactly
 * (another key type, another CertificateChoices) is decoded as without the
 * flag; more than 32 certificates are refused before any is decoded.
 */
#define SMIME_SCEP_ASSEMBLE 0x1u
SMIME_MUST_CHECK int smime_scep_read_ex(const unsigned char *der, size_t len, unsigned flags,
    struct smime_scep_msg *m, struct smime_error *err);

bool smime_scep_can_reply(const struct smime_scep_msg *m);

/*
 * After smime_scep_open of a PKCSReq or RenewalReq: 0 when the request's
 * signature verifies with its own key over the request as received (RFC
 * 2986 3), else SMIME_E_BADSIG.  Its cost is the key's: a server SHOULD
 * call it once the key meets its policy.
 */
SMIME_MUST_CHECK int smime_scep_csr_verify(const struct smime_scep_msg *m,
    struct smime_error *err);

/*
 * Decrypt m's envelope with key (the certificate cert names the recipient)
 * and decode the messageData of m->type.  Errors: SMIME_E_NOTFOUND (no
 * envelope, or none for cert), SMIME_E_CRYPTO (it does not decrypt:
 * badMessageCheck), SMIME_E_POLICY (a content cipher other than AES or
 * triple DES: badAlg), SMIME_E_INPUT (the messageData is malformed:
 * badRequest).
 */
SMIME_MUST_CHECK int smime_scep_open(struct smime_scep_msg *m, X509 *cert, EVP_PKEY *key,
    struct smime_error *err);

/* True when m's envelope has a recipient for cert (by issuer and serial
 * or subject key identifier): the server's way to tell which of its RAs
 * a request was made for. */
bool smime_scep_envelope_for(const struct smime_scep_msg *m, X509 *cert);

/* A pkiMessage to write. */
struct smime_scep_out {
	enum smime_scep_type type;
	const char *transaction_id;
	const unsigned char *sender_nonce;   /* NULL: a fresh one is made */
	const unsigned char *recipient_nonce; /* CertRep: the request's senderNonce */
	size_t recipient_nonce_len;
	enum smime_scep_status status;       /* CertRep */
	enum smime_scep_fail fail_info;      /* CertRep FAILURE */
	const char *fail_text;               /* CertRep FAILURE: NULL or a short text */

	X509 *signer;                        /* signs; included in the message */
	EVP_PKEY *key;
	const EVP_MD *md;                    /* NULL: SHA-256 */
	STACK_OF(X509) *extra_certs;         /* NULL, or more certificates to include */

	/* The envelope (not for a CertRep FAILURE or PENDING). */
	X509 *recipient;
	const EVP_CIPHER *cipher;            /* NULL: AES-128-CBC */
	X509_REQ *csr;                       /* PKCSReq, RenewalReq */
	X509_NAME *issuer;                   /* CertPoll, GetCert, GetCRL */
	X509_NAME *subject;                  /* CertPoll */
	const ASN1_INTEGER *serial;          /* GetCert, GetCRL */
	STACK_OF(X509) *issued;              /* CertRep SUCCESS */
	X509_CRL *crl;                       /* CertRep SUCCESS to a GetCRL */
};

/*
 * Write a pkiMessage.  *der_r is freed by the caller with OPENSSL_free.
 * nonce_r (SMIME_SCEP_NONCE octets, may be NULL) receives the senderNonce
 * used, which the reply's recipientNonce must match.
 */
SMIME_MUST_CHECK int smime_scep_write(const struct smime_scep_out *o, unsigned char **der_r,
    size_t *len_r, unsigned char nonce_r[SMIME_SCEP_NONCE], struct smime_error *err);

/*
 * The challengePassword of a request (RFC 2985 5.4.1), copied to out
 * (size at least SMIME_SCEP_MAX_CHALLENGE + 1).  SMIME_E_NOTFOUND when the
 * request has none, SMIME_E_INPUT when it is malformed or too long.
 */
SMIME_MUST_CHECK int smime_scep_challenge(X509_REQ *csr, char *out, size_t size,
    struct smime_error *err);

/*
 * A transactionID for a request with key pub, as RFC 8894 3.2.1.1
 * suggests: the SHA-256 of the subjectPublicKeyInfo, in upper-case hex.
 */
SMIME_MUST_CHECK int smime_scep_transaction_id(EVP_PKEY *pub, char out[65],
    struct smime_error *err);

/*
 * The certificate a requester signs its first request with (RFC 8894
 * 2.3): self-signed by key, with the request's subject (or CN=SCEP
 * requester when it has none), valid from an hour ago for a day.
 */
SMIME_MUST_CHECK int smime_scep_self_signed(X509_REQ *csr, EVP_PKEY *key, X509 **cert_r,
    struct smime_error *err);

/* What a GetCACaps answer announces (RFC 8894 3.5.2). */
struct smime_scep_caps {
	bool aes, des3, sha1, sha256, sha512;
	bool post, renewal, next_ca, standard;
};

/* Read a GetCACaps answer (one keyword a line; unknown ones are ignored). */
void smime_scep_caps_parse(const char *text, size_t len, struct smime_scep_caps *caps);

/*
 * Read a GetCACert answer (RFC 8894 4.2.1): one DER certificate, or a
 * degenerate SignedData of the RA and CA certificates.  *ca_r is the CA
 * (the first CA certificate that issued another in the answer, else the
 * only one); *ra_r the certificate to encrypt to and expect replies from:
 * the RA when there is one (not a CA, issued by the CA), else the CA.
 * *all_r (may be NULL) every certificate of the answer.
 */
SMIME_MUST_CHECK int smime_scep_ca_certs(const unsigned char *der, size_t len, X509 **ca_r,
    X509 **ra_r, STACK_OF(X509) **all_r, struct smime_error *err);

/* "CertRep", "PKCSReq", ... and "SUCCESS", ..., "badAlg", ... ("?" when unknown). */
const char *smime_scep_type_name(int type);
const char *smime_scep_status_name(int status);
const char *smime_scep_fail_name(int fail);

#endif

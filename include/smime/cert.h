/*
 * libsmime: certificates, their S/MIME roles, and the formats they arrive in.
 *
 * Certificates are OpenSSL X509 objects.  This module reads the containers
 * certificates come in (PEM, DER, PKCS#7 certs-only, Microsoft SST,
 * PKCS#12) into one bag of certificates and keys, and classifies a
 * certificate for S/MIME use.
 */
#ifndef SMIME_CERT_H
#define SMIME_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <smime/error.h>

/* Limits on untrusted containers. */
#define SMIME_CERT_MAX_INPUT      (16u * 1024 * 1024) /* whole file */
#define SMIME_CERT_MAX_ITEMS      4096                /* certificates in one file */
#define SMIME_CERT_MAX_EMAILS     64                  /* addresses in one certificate */

/* What a certificate may be used for in S/MIME, from key usage and EKU. */
enum smime_cert_role {
	SMIME_ROLE_NONE = 0,
	SMIME_ROLE_SIGN = 1 << 0,    /* digitalSignature or nonRepudiation */
	SMIME_ROLE_ENCRYPT = 1 << 1, /* keyEncipherment (RSA) or keyAgreement (EC) */
	SMIME_ROLE_CA = 1 << 2,      /* basicConstraints CA:TRUE */
};

/* The kinds of container smime_bag_load recognises. */
enum smime_format {
	SMIME_FORMAT_UNKNOWN = 0,
	SMIME_FORMAT_PEM,
	SMIME_FORMAT_DER,
	SMIME_FORMAT_PKCS7,
	SMIME_FORMAT_SST,
	SMIME_FORMAT_PKCS12,
	SMIME_FORMAT_EML,
};

/*
 * A bag of certificates and private keys read from one or more files.
 * keys[i] is NULL or the private key of certs[key_cert[i]] when the container
 * tied them together (PKCS#12 localKeyId or a matching public key).
 */
struct smime_bag {
	STACK_OF(X509) *certs;
	EVP_PKEY **keys;        /* keys[n_keys] */
	int *key_cert;          /* index into certs for each key, or -1 */
	size_t n_keys;
	enum smime_format format; /* of the last container loaded */
};

struct smime_bag *smime_bag_new(void);
/* Frees the bag; keys are cleansed.  NULL is a no-op. */
void smime_bag_free(struct smime_bag *bag);

/*
 * Read every certificate and key from data[len], whatever its container
 * (detected from the content, not the name).  password is the PKCS#12
 * password (NULL: try the empty and the absent password).  Items are
 * appended to bag.  Returns SMIME_E_INPUT for a malformed container and
 * SMIME_E_CRYPTO for a wrong PKCS#12 password.
 */
SMIME_MUST_CHECK int smime_bag_load(struct smime_bag *bag, const unsigned char *data,
    size_t len, const char *password, struct smime_error *err);

/*
 * Read a Microsoft serialized certificate store (SST, the file written by
 * Export-Certificate -Type SST and certutil -generateSSTFromWU) from
 * data[len] and append its certificates to certs.  Unknown and empty
 * properties are skipped; a certificate blob OpenSSL cannot parse fails the
 * whole file with its index in the message.
 */
SMIME_MUST_CHECK int smime_sst_read(const unsigned char *data, size_t len,
    STACK_OF(X509) *certs, struct smime_error *err);

/*
 * True when data starts like a mail message (an mbox "From " line, or
 * header fields among which are mail headers such as From or Subject);
 * the text "openssl ca" writes before a PEM block ("Certificate:" and
 * indented lines) is not.
 */
bool smime_looks_like_mail(const unsigned char *data, size_t len);

/* True when data looks like an SST store (its magic). */
bool smime_sst_detect(const unsigned char *data, size_t len);

/*
 * Write certs as an SST store to out (the same format Windows writes), so
 * that round trips and Exchange's virtual certificate collection can be fed.
 */
SMIME_MUST_CHECK int smime_sst_write(BIO *out, STACK_OF(X509) *certs,
    struct smime_error *err);

/*
 * Read a PKCS#12 file (modern PBES2 and legacy RC2/3DES; the legacy
 * provider is loaded on demand) into bag.  password as for smime_bag_load.
 */
SMIME_MUST_CHECK int smime_pkcs12_read(struct smime_bag *bag, const unsigned char *data,
    size_t len, const char *password, struct smime_error *err);

/* How smime_pkcs12_write protects the file. */
enum smime_p12_mode {
	SMIME_P12_AES = 0,   /* PBES2 AES-256-CBC, PBKDF2-HMAC-SHA256, MAC SHA-256 */
	SMIME_P12_LEGACY,    /* pbeWithSHA1And3-KeyTripleDES-CBC, MAC SHA-1 (old Windows) */
};

/*
 * Write keys (each with its certificate) and extra certificates as one
 * PKCS#12 to out.  keys[i] belongs to key_certs[i]; extra may be NULL.
 */
SMIME_MUST_CHECK int smime_pkcs12_write(BIO *out, EVP_PKEY **keys, X509 **key_certs,
    size_t n, STACK_OF(X509) *extra, const char *password, enum smime_p12_mode mode,
    const char *friendly_name, struct smime_error *err);

/* Roles of a certificate (a mask of enum smime_cert_role). */
int smime_cert_roles(X509 *cert);

/* True when the certificate allows EKU emailProtection (or has no EKU). */
bool smime_cert_email_protection(X509 *cert);

/*
 * The email addresses of a certificate: subjectAltName rfc822Name first,
 * then the subject's emailAddress attributes; lower-cased, unique.  Returns
 * a stack the caller frees with sk_OPENSSL_STRING_pop_free and a function
 * that calls OPENSSL_free (a macro, so it needs that small wrapper); an
 * empty stack when there are none, NULL when out of memory.
 */
STACK_OF(OPENSSL_STRING) *smime_cert_emails(X509 *cert);

/* True when cert carries address (compared case-insensitively). */
bool smime_cert_has_email(X509 *cert, const char *address);

/* SHA-256 fingerprint as 64 lower-case hex digits into out[65]. */
void smime_cert_fingerprint(X509 *cert, char out[65]);

/* One-line subject in RFC 2253 form; caller frees with OPENSSL_free. */
char *smime_cert_subject(X509 *cert);

/* True when now (or at, when at != 0) lies within notBefore..notAfter. */
bool smime_cert_valid_at(X509 *cert, time_t at);

#endif

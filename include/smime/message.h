/*
 * libsmime: S/MIME 4.0 messages (RFC 8551) over CMS (RFC 5652).
 *
 * Every operation reads a whole RFC 5322 message from a BIO and writes one
 * to a BIO.  MIME is handled by GMime, every cryptographic and DER step by
 * OpenSSL.  Output is written only once it is final: a failed operation
 * writes nothing, and plaintext of AuthEnvelopedData is never released
 * before its tag has verified.
 */
#ifndef SMIME_MESSAGE_H
#define SMIME_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/bio.h>

#include <smime/cert.h>
#include <smime/error.h>
#include <smime/keystore.h>

/* Limits on untrusted messages. */
#define SMIME_MSG_MAX_SIZE     (1024u * 1024 * 1024) /* 1 GiB */
#define SMIME_MSG_MAX_DEPTH    8     /* S/MIME layers opened in one message */
#define SMIME_MSG_MAX_PARTS    1024  /* MIME parts walked in one message */
#define SMIME_MSG_MAX_SIGNERS  16
#define SMIME_MSG_MAX_RECIPIENTS 256

/* Call once before any other function of the library (idempotent). */
void smime_init(void);

struct smime_sign_opts {
	const char *digest;      /* "sha256" (default), "sha384", "sha512" */
	bool opaque;             /* application/pkcs7-mime signed-data */
	bool pss;                /* RSASSA-PSS for RSA keys */
	const char *signer;      /* fingerprint of the identity; NULL: chosen by From */
	time_t now;              /* 0: the clock */
};

/* Cipher names: "aes-256-gcm", "aes-128-gcm", "aes-256-cbc", "aes-128-cbc", "des-ede3-cbc". */
struct smime_encrypt_opts {
	/*
	 * NULL: AES-256-CBC EnvelopedData, unless every recipient announced
	 * AES-GCM in a verified signature (then AES-256-GCM AuthEnvelopedData);
	 * AES-128-CBC when a recipient announced neither AES-256 mode.  The
	 * sender's own copy does not count.  Capabilities belong to the person:
	 * the newest announced by any certificate of the address count.
	 */
	const char *cipher;
	bool prefer_gcm;         /* a recipient who announced nothing is taken to read
	                          * GCM (an organisation whose clients all do) */
	bool allow_weak;         /* permit des-ede3-cbc */
	bool oaep;               /* RSAES-OAEP key transport for RSA recipients */
	bool no_self;            /* do not add the sender's own encryption certificate */
	const char *const *to;   /* more recipients, besides the message's To and Cc (Bcc is never read) */
	size_t n_to;
	/*
	 * Called with every recipient that has no usable encryption
	 * certificate.  Return true to drop them and go on, false to fail
	 * (SMIME_E_NOTFOUND, naming them).  NULL: fail.
	 */
	bool (*missing)(void *arg, const char *const *addresses, size_t n);
	void *missing_arg;
	bool sign;               /* sign first, with sign_opts */
	struct smime_sign_opts sign_opts;
	time_t now;
};

struct smime_verify_opts {
	time_t at;               /* verify as of this moment; 0: now */
	bool allow_from_mismatch;
	bool no_harvest;         /* do not record signers' certificates as contacts */
	bool unverified_output;  /* release content even when the signature fails */
};

/* What one signer of one signed layer gave. */
struct smime_signer {
	int status;              /* 0 valid, else an smime_code */
	char *reason;            /* why not valid, or NULL */
	char *subject;
	char *emails;            /* comma-separated */
	char fingerprint[65];
	char *digest;            /* "sha256", ... */
	char *signature_alg;     /* "rsa", "rsa-pss", "ecdsa", "ed25519" */
	time_t signing_time;     /* 0 when absent */
	bool chain_ok;
};

enum smime_layer_kind {
	SMIME_LAYER_SIGNED = 1,        /* multipart/signed */
	SMIME_LAYER_OPAQUE_SIGNED,     /* application/pkcs7-mime signed-data */
	SMIME_LAYER_ENVELOPED,         /* EnvelopedData */
	SMIME_LAYER_AUTH_ENVELOPED,    /* AuthEnvelopedData */
	SMIME_LAYER_CERTS_ONLY,
};

struct smime_layer {
	enum smime_layer_kind kind;
	char *part;              /* MIME path of the layer: "" root, "2", "1.2" */
	int status;              /* 0 fine, else an smime_code */
	char *reason;
	/* signed */
	struct smime_signer *signers;
	size_t n_signers;
	/* encrypted */
	char *cipher;            /* "aes-256-gcm", ... */
	const char *integrity;   /* "aead" or "none" */
	char **recipients;       /* recipient identifiers, printable */
	size_t n_recipients;
	char key[65];            /* fingerprint of the key used, "" when none */
};

/* The report of verify, decrypt and open: one entry per layer, outside in. */
struct smime_report {
	struct smime_layer *layers;
	size_t n_layers;
	int status;              /* 0 valid; else the code of the first failure */
	char **warnings;         /* valid, but: partial, SHA-1, date, encryption inside a signature */
	size_t n_warnings;
	char *from;              /* the From address that was compared, or NULL */
	char *covered;           /* MIME path the outermost valid signature covers */
};

struct smime_report *smime_report_new(void);
void smime_report_free(struct smime_report *r);

/* What encrypt did. */
struct smime_encrypt_result {
	char **recipients;       /* addresses encrypted to (the sender's own included) */
	size_t n_recipients;
	char **dropped;          /* addresses dropped for lack of a certificate */
	size_t n_dropped;
	char *cipher;
	/* Which rule chose the cipher (static): "asked", "all-announced-gcm",
	 * "prefer-gcm", "not-all-announced-gcm", "announced-no-aes-256". */
	const char *cipher_rule;
};
void smime_encrypt_result_free(struct smime_encrypt_result *r);

SMIME_MUST_CHECK int smime_msg_sign(struct smime_keystore *ks, const struct smime_sign_opts *o,
    BIO *in, BIO *out, struct smime_error *err);

/* result_r may be NULL. */
SMIME_MUST_CHECK int smime_msg_encrypt(struct smime_keystore *ks,
    const struct smime_encrypt_opts *o, BIO *in, BIO *out,
    struct smime_encrypt_result **result_r, struct smime_error *err);

/*
 * Decrypt the root of the message (an encrypted part anywhere else is never
 * decrypted: it is reported).  out receives the message with the decrypted
 * entity in place of the encrypted one.  report_r may be NULL.
 */
SMIME_MUST_CHECK int smime_msg_decrypt(struct smime_keystore *ks, BIO *in, BIO *out,
    struct smime_report **report_r, struct smime_error *err);

/*
 * Verify the signature of a message.  out (may be NULL) receives the signed
 * message with the signature layer removed, only when valid (or with
 * unverified_output).  Returns 0 when every signer is valid, SMIME_E_BADSIG
 * when a signature or certificate is invalid or the message is not signed
 * (an encrypted message included: use open), SMIME_E_INPUT for malformed
 * input, SMIME_E_IO or SMIME_E_INTERNAL otherwise; warnings do not fail.
 */
SMIME_MUST_CHECK int smime_msg_verify(struct smime_keystore *ks,
    const struct smime_verify_opts *o, BIO *in, BIO *out,
    struct smime_report **report_r, struct smime_error *err);

/* Decrypt and verify whatever nesting arrives, layer by layer. */
SMIME_MUST_CHECK int smime_msg_open(struct smime_keystore *ks,
    const struct smime_verify_opts *o, BIO *in, BIO *out,
    struct smime_report **report_r, struct smime_error *err);

/* certs as a certs-only SignedData in DER (RFC 8551 3.6), as directories
 * hold it in userSMIMECertificate; *der_r is freed with OPENSSL_free. */
SMIME_MUST_CHECK int smime_certs_only_der(STACK_OF(X509) *certs, unsigned char **der_r,
    size_t *len_r, struct smime_error *err);

/* Write certs as a certs-only message (application/pkcs7-mime; smime-type=certs-only). */
SMIME_MUST_CHECK int smime_msg_certs_only(STACK_OF(X509) *certs, BIO *out,
    struct smime_error *err);

/*
 * Read every certificate and key carried by a message: certs-only parts,
 * .p12/.pfx attachments (with password), certificate attachments (.cer,
 * .crt, .pem, .p7b, .p7c), and the certificates of signed layers.
 */
SMIME_MUST_CHECK int smime_msg_extract(BIO *in, const char *password, struct smime_bag *bag,
    struct smime_error *err);

/* One node of a message's structure. */
struct smime_node {
	char *part;              /* MIME path */
	int depth;
	char *content_type;      /* type/subtype with smime-type when present */
	char *filename;          /* or NULL */
	char *detail;            /* CMS structure, in one line, or NULL */
};

struct smime_inspection {
	struct smime_node *nodes;
	size_t n_nodes;
};
void smime_inspection_free(struct smime_inspection *in);

/* The MIME and CMS structure of a message, without any key. */
SMIME_MUST_CHECK int smime_msg_inspect(BIO *in, struct smime_inspection **inspection_r,
    struct smime_error *err);

#endif

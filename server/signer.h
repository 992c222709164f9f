/*
 * smimed: the signer, the only module that holds CA private keys.
 *
 * Everything else asks it to sign through the functions below and never
 * sees a private key, so that it can move to its own process or to a
 * PKCS#11 token without touching its callers.  Keys are kept at rest
 * wrapped under the master key (DATA/master.key, 32 random octets, 0600):
 * AES-256-GCM with a fresh nonce per key and the key id as additional
 * data, so a wrapped key moved to another id does not unwrap.
 *
 * Wrapped form: "SMK1" | nonce (12) | ciphertext of the PKCS#8 DER | tag (16).
 */
#ifndef SMIMED_SIGNER_H
#define SMIMED_SIGNER_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include <smime/error.h>

struct signer;

/*
 * Read the master key from master_key_path; when create is true and the
 * file does not exist, make one (0600, written durably).  A file of the
 * wrong size or with permissions wider than 0600 is refused.
 */
int signer_open(const char *master_key_path, bool create, struct signer **s_r,
    struct smime_error *err);
/*
 * Another secret of the installation kept in the store under the master
 * key (the archive's key-encryption key): in[len] (at most 1024 octets)
 * sealed for label, and back.  *out_r: caller frees (unwrapped: with
 * OPENSSL_clear_free).  Unwrapping fails with SMIME_E_CRYPTO under another
 * master key.
 */
int signer_wrap_secret(struct signer *s, const char *label, const unsigned char *in,
    size_t len, unsigned char **out_r, size_t *out_len_r, struct smime_error *err);
int signer_unwrap_secret(struct signer *s, const char *label, const unsigned char *in,
    size_t len, unsigned char **out_r, size_t *out_len_r, struct smime_error *err);

/* Forgets (and cleanses) every key.  NULL is a no-op. */
void signer_free(struct signer *s);

/*
 * Make a new key for key_id ("ec-p256", "ec-p384", "ec-p521", "rsa-2048",
 * "rsa-3072", "rsa-4096"), keep it, and return its public half (caller
 * frees) and the wrapped private key for the store (caller frees with
 * free()).  SMIME_E_EXISTS when key_id is held already (as for adopt).
 */
int signer_generate(struct signer *s, const char *key_id, const char *alg,
    EVP_PKEY **pub_r, unsigned char **wrapped_r, size_t *wrapped_len_r,
    struct smime_error *err);

/* Take over key (an imported CA's): keep a copy and return it wrapped. */
int signer_adopt(struct signer *s, const char *key_id, EVP_PKEY *key,
    unsigned char **wrapped_r, size_t *wrapped_len_r, struct smime_error *err);

/* Unwrap a key from the store and keep it under key_id (replacing any). */
int signer_load(struct signer *s, const char *key_id, const unsigned char *wrapped,
    size_t wrapped_len, struct smime_error *err);

/* Forget key_id (cleansed), e.g. a key made for a CA whose creation then
 * failed, so that the id can be used again.  Unknown ids are a no-op. */
void signer_forget(struct signer *s, const char *key_id);

/* True when the signer holds key_id. */
bool signer_has(struct signer *s, const char *key_id);

/* A new reference to the public half of key_id, or NULL. */
EVP_PKEY *signer_public(struct signer *s, const char *key_id);

/* Sign with key_id: SHA-256 for P-256 and RSA, SHA-384 for P-384, SHA-512 for P-521. */
int signer_sign_cert(struct signer *s, const char *key_id, X509 *cert, struct smime_error *err);
int signer_sign_crl(struct signer *s, const char *key_id, X509_CRL *crl, struct smime_error *err);
/* Sign an OCSP basic response as signer_cert (whose key is key_id), by key hash. */
int signer_sign_ocsp(struct signer *s, const char *key_id, OCSP_BASICRESP *bs,
    X509 *signer_cert, struct smime_error *err);

/* SCEP (RFC 8894) with key_id's key: decrypt a request's envelope (cert
 * names the recipient), and sign a reply (o->key is ignored). */
struct smime_scep_msg;
struct smime_scep_out;
int signer_scep_open(struct signer *s, const char *key_id, X509 *cert,
    struct smime_scep_msg *m, struct smime_error *err);
int signer_scep_write(struct signer *s, const char *key_id, const struct smime_scep_out *o,
    unsigned char **der_r, size_t *len_r, struct smime_error *err);

#endif

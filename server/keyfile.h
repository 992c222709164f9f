/*
 * smimed: secret key files and what is sealed under them.
 *
 * A key file holds 32 random octets (RAND_priv_bytes), 0600, made once
 * with O_EXCL and written durably (the file and its folder fsync'd); a
 * file of another size or with a wider mode is refused.  The signer's
 * master key (CA keys) and the archive's key-encryption key (users' keys)
 * are such files.
 *
 * Sealed form: MAGIC (4) | nonce (12) | AES-256-GCM(key, nonce, aad)(data) | tag (16).
 * The nonce is random, fresh for every seal (NIST SP 800-38D 8.2.2); the
 * additional data binds a sealed blob to what it belongs to, so that a
 * blob moved elsewhere does not open.
 */
#ifndef SMIMED_KEYFILE_H
#define SMIMED_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include <smime/error.h>

#define KEYFILE_LEN 32
#define SEAL_MAGIC_LEN 4
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16
#define SEAL_OVERHEAD (SEAL_MAGIC_LEN + SEAL_NONCE_LEN + SEAL_TAG_LEN)

/* Read the key file at path into key; when create and it does not exist,
 * make it first.  Errors name the file. */
int keyfile_load(const char *path, bool create, unsigned char key[KEYFILE_LEN],
    struct smime_error *err);

/* Seal in[len] (at most max octets) under key; *out_r: caller frees with free(). */
int seal_bytes(const unsigned char key[KEYFILE_LEN], const char magic[SEAL_MAGIC_LEN],
    const char *aad, const unsigned char *in, size_t len, size_t max,
    unsigned char **out_r, size_t *out_len_r, struct smime_error *err);

/* Open what seal_bytes made; *out_r: caller frees with OPENSSL_clear_free.
 * SMIME_E_INPUT for a blob of the wrong form, SMIME_E_CRYPTO when the tag
 * does not verify (another key, other additional data, or damage). */
int open_bytes(const unsigned char key[KEYFILE_LEN], const char magic[SEAL_MAGIC_LEN],
    const char *aad, const unsigned char *in, size_t len, size_t max,
    unsigned char **out_r, size_t *out_len_r, struct smime_error *err);

/* A private key as PKCS#8 PrivateKeyInfo DER (caller frees with
 * OPENSSL_clear_free), and back (NULL unless exactly one PKCS#8 key). */
int pkcs8_encode(EVP_PKEY *key, unsigned char **der_r, size_t *len_r, struct smime_error *err);
EVP_PKEY *pkcs8_decode(const unsigned char *der, size_t len);

#endif

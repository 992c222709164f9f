/*
 * smimed: the key archive, where users' private keys (their encryption
 * history) are kept, wrapped.
 *
 * Each archived key is sealed under a data key of its own (AES-256-GCM);
 * the data key is wrapped by the key-encryption key (KEK).  The KEK sits
 * behind a table of functions (struct kek_backend): held in memory,
 * unwrapped from the store where it is kept under the master key
 * (archive_open_key, so that a backup of the store and the master key are
 * all a restore needs), or a 0600 file (kek_file: archive.kek of older
 * installations, read once to move it into the store), a PKCS#11 token
 * later, without touching callers.  Both seals
 * carry the owner (the certificate's SHA-256 fingerprint) as additional
 * data, so a sealed key moved to another certificate does not open.
 *
 * Sealed form:
 *   "SMA1" | length of the wrapped data key (2 octets, big-endian)
 *          | the data key wrapped by the KEK
 *          | "SMP1"-sealed PKCS#8 DER under the data key (keyfile.h)
 */
#ifndef SMIMED_ARCHIVE_H
#define SMIMED_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include <smime/error.h>

#define ARCHIVE_DK_LEN 32
#define ARCHIVE_MAX_SEALED 32768     /* octets of one sealed key (RSA-8192 is under 6 KiB) */

struct kek;

struct kek_backend {
	const char *name;
	/* location: the backend's own (a file path for kek_file). */
	int (*open)(const char *location, bool create, struct kek **k_r, struct smime_error *err);
	void (*close)(struct kek *k);
	/* Wrap a data key for owner; *out_r: caller frees with free(). */
	int (*wrap)(struct kek *k, const unsigned char dk[ARCHIVE_DK_LEN], const char *owner,
	    unsigned char **out_r, size_t *out_len_r, struct smime_error *err);
	int (*unwrap)(struct kek *k, const unsigned char *in, size_t len, const char *owner,
	    unsigned char dk_r[ARCHIVE_DK_LEN], struct smime_error *err);
};

extern const struct kek_backend kek_file;

struct archive;

int archive_open(const struct kek_backend *be, const char *location, bool create,
    struct archive **a_r, struct smime_error *err);
/* An archive whose KEK is key (the file backend's form, held in memory):
 * the KEK kept in the store wrapped under the master key. */
int archive_open_key(const unsigned char key[ARCHIVE_DK_LEN], struct archive **a_r,
    struct smime_error *err);
/* True when a's KEK is key (a KEK held in memory). */
bool archive_has_key(const struct archive *a, const unsigned char key[ARCHIVE_DK_LEN]);
/* A stale archive (stale true) refuses to seal and to unseal: its KEK is
 * not the one the store keeps (a store restored under a running smimed),
 * so that nothing is sealed that the store could not open.  NULL: no-op. */
void archive_set_stale(struct archive *a, bool stale);
/* NULL is a no-op. */
void archive_free(struct archive *a);

/* Seal key (a private key) for owner; *blob_r: caller frees with free(). */
int archive_seal(struct archive *a, EVP_PKEY *key, const char *owner, unsigned char **blob_r,
    size_t *len_r, struct smime_error *err);
/* The private key sealed for owner in blob.  SMIME_E_INPUT for a blob of
 * the wrong form, SMIME_E_CRYPTO when it does not open (another KEK,
 * another owner, damage). */
int archive_unseal(struct archive *a, const unsigned char *blob, size_t len, const char *owner,
    EVP_PKEY **key_r, struct smime_error *err);

#endif

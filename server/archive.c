/* smimed: the key archive: envelope sealing under a KEK (archive.h). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "archive.h"
#include "keyfile.h"

#define ARCHIVE_MAGIC "SMA1"
#define DK_MAGIC "SMD1"
#define KEY_MAGIC "SMP1"
#define WRAPPED_DK_MAX 1024

/* ---- the KEK in a file ---------------------------------------------------- */

struct kek {
	unsigned char key[KEYFILE_LEN];
};

static int
file_open(const char *location, bool create, struct kek **k_r, struct smime_error *err)
{
	struct kek *k = calloc(1, sizeof(*k));
	int rc;

	*k_r = NULL;
	if (k == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if ((rc = keyfile_load(location, create, k->key, err)) != 0) {
		OPENSSL_clear_free(k, sizeof(*k));
		return rc;
	}
	*k_r = k;
	return 0;
}

static void
file_close(struct kek *k)
{
	if (k != NULL)
		OPENSSL_clear_free(k, sizeof(*k));
}

static int
file_wrap(struct kek *k, const unsigned char dk[ARCHIVE_DK_LEN], const char *owner,
    unsigned char **out_r, size_t *out_len_r, struct smime_error *err)
{
	return seal_bytes(k->key, DK_MAGIC, owner, dk, ARCHIVE_DK_LEN, ARCHIVE_DK_LEN, out_r,
	    out_len_r, err);
}

static int
file_unwrap(struct kek *k, const unsigned char *in, size_t len, const char *owner,
    unsigned char dk_r[ARCHIVE_DK_LEN], struct smime_error *err)
{
	unsigned char *dk = NULL;
	size_t n = 0;
	int rc = open_bytes(k->key, DK_MAGIC, owner, in, len, ARCHIVE_DK_LEN, &dk, &n, err);

	if (rc == 0 && n != ARCHIVE_DK_LEN)
		rc = smime_error_set(err, SMIME_E_INPUT, "archive: a data key of %zu octets", n);
	if (rc == 0)
		memcpy(dk_r, dk, ARCHIVE_DK_LEN);
	OPENSSL_clear_free(dk, n);
	return rc;
}

const struct kek_backend kek_file = {
	.name = "file",
	.open = file_open,
	.close = file_close,
	.wrap = file_wrap,
	.unwrap = file_unwrap,
};

/* ---- the archive ------------------------------------------------------------- */

struct archive {
	const struct kek_backend *be;
	struct kek *kek;
	/* Set when the store no longer keeps this KEK (a restore under a
	 * running service): nothing is sealed or unsealed until a restart. */
	_Atomic bool stale;
};

int
archive_open(const struct kek_backend *be, const char *location, bool create,
    struct archive **a_r, struct smime_error *err)
{
	struct archive *a = calloc(1, sizeof(*a));
	int rc;

	*a_r = NULL;
	if (a == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	a->be = be;
	if ((rc = be->open(location, create, &a->kek, err)) != 0) {
		free(a);
		return rc;
	}
	*a_r = a;
	return 0;
}

int
archive_open_key(const unsigned char key[ARCHIVE_DK_LEN], struct archive **a_r,
    struct smime_error *err)
{
	struct archive *a = calloc(1, sizeof(*a));

	*a_r = NULL;
	if (a == NULL || (a->kek = calloc(1, sizeof(*a->kek))) == NULL) {
		free(a);
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	_Static_assert(KEYFILE_LEN == ARCHIVE_DK_LEN, "a KEK is a data key's size");
	memcpy(a->kek->key, key, KEYFILE_LEN);
	a->be = &kek_file;
	*a_r = a;
	return 0;
}

bool
archive_has_key(const struct archive *a, const unsigned char key[ARCHIVE_DK_LEN])
{
	return a != NULL && a->be == &kek_file && CRYPTO_memcmp(a->kek->key, key, KEYFILE_LEN) == 0;
}

void
archive_set_stale(struct archive *a, bool stale)
{
	if (a != NULL)
		atomic_store(&a->stale, stale);
}

void
archive_free(struct archive *a)
{
	if (a == NULL)
		return;
	a->be->close(a->kek);
	free(a);
}

int
archive_seal(struct archive *a, EVP_PKEY *key, const char *owner, unsigned char **blob_r,
    size_t *len_r, struct smime_error *err)
{
	unsigned char dk[ARCHIVE_DK_LEN];
	unsigned char *der = NULL, *wdk = NULL, *sealed = NULL, *blob = NULL;
	size_t der_len = 0, wdk_len = 0, sealed_len = 0;
	int rc;

	*blob_r = NULL;
	*len_r = 0;
	/* A key sealed under a KEK the store does not keep could never be
	 * recovered from it, and would stop the next start. */
	if (atomic_load(&a->stale))
		return smime_error_set(err, SMIME_E_INTERNAL, "archive: the store keeps another "
		    "archive key than this smimed holds (a restore while it ran): restart smimed");
	/* A fresh data key for every archived key. */
	if (RAND_priv_bytes(dk, sizeof(dk)) != 1)
		return smime_error_ssl(err, SMIME_E_CRYPTO, "archive: random data key");
	if ((rc = pkcs8_encode(key, &der, &der_len, err)) != 0 ||
	    (rc = seal_bytes(dk, KEY_MAGIC, owner, der, der_len, ARCHIVE_MAX_SEALED / 2,
	    &sealed, &sealed_len, err)) != 0 ||
	    (rc = a->be->wrap(a->kek, dk, owner, &wdk, &wdk_len, err)) != 0)
		goto out;
	if (wdk_len > WRAPPED_DK_MAX) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "archive: wrapped data key too long");
		goto out;
	}
	size_t len = 4 + 2 + wdk_len + sealed_len;
	if ((blob = malloc(len)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	memcpy(blob, ARCHIVE_MAGIC, 4);
	blob[4] = (unsigned char)(wdk_len >> 8);
	blob[5] = (unsigned char)wdk_len;
	memcpy(blob + 6, wdk, wdk_len);
	memcpy(blob + 6 + wdk_len, sealed, sealed_len);
	*blob_r = blob;
	*len_r = len;
out:
	OPENSSL_cleanse(dk, sizeof(dk));
	OPENSSL_clear_free(der, der_len);
	free(wdk);
	free(sealed);
	return rc;
}

int
archive_unseal(struct archive *a, const unsigned char *blob, size_t len, const char *owner,
    EVP_PKEY **key_r, struct smime_error *err)
{
	unsigned char dk[ARCHIVE_DK_LEN];
	unsigned char *der = NULL;
	size_t der_len = 0, wdk_len;
	int rc;

	*key_r = NULL;
	if (atomic_load(&a->stale))
		return smime_error_set(err, SMIME_E_INTERNAL, "archive: the store keeps another "
		    "archive key than this smimed holds (a restore while it ran): restart smimed");
	if (blob == NULL || len < 6 || len > ARCHIVE_MAX_SEALED || memcmp(blob, ARCHIVE_MAGIC, 4) != 0)
		return smime_error_set(err, SMIME_E_INPUT, "archived key of %s: not a sealed key "
		    "(\"SMA1\")", owner);
	wdk_len = (size_t)blob[4] << 8 | blob[5];
	if (wdk_len == 0 || wdk_len > WRAPPED_DK_MAX || 6 + wdk_len >= len)
		return smime_error_set(err, SMIME_E_INPUT, "archived key of %s: a wrapped data key "
		    "of %zu octets does not fit", owner, wdk_len);
	if ((rc = a->be->unwrap(a->kek, blob + 6, wdk_len, owner, dk, err)) != 0)
		return rc;
	rc = open_bytes(dk, KEY_MAGIC, owner, blob + 6 + wdk_len, len - 6 - wdk_len,
	    ARCHIVE_MAX_SEALED, &der, &der_len, err);
	OPENSSL_cleanse(dk, sizeof(dk));
	if (rc != 0)
		return rc;
	if ((*key_r = pkcs8_decode(der, der_len)) == NULL)
		rc = smime_error_ssl(err, SMIME_E_INPUT, "archived key of %s: not a PKCS#8 private "
		    "key", owner);
	OPENSSL_clear_free(der, der_len);
	return rc;
}

/*
 * The key archive (server/archive.c): keys sealed under a data key of
 * their own, the data key under the KEK; the owner binds both.  Negative
 * rows: another owner, another KEK, a flipped octet anywhere, truncation,
 * a wrapped data key that claims more than there is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

#include "archive.h"

static char *dir;
static struct archive *ar;

static int
setup(void **state)
{
	char path[512];
	struct smime_error err;

	(void)state;
	dir = tu_tmpdir();
	snprintf(path, sizeof(path), "%s/archive.kek", dir);
	return archive_open(&kek_file, path, true, &ar, &err);
}

static int
teardown(void **state)
{
	(void)state;
	archive_free(ar);
	tu_rmrf(dir);
	return 0;
}

static bool
same_key(EVP_PKEY *a, EVP_PKEY *b)
{
	return EVP_PKEY_eq(a, b) == 1;
}

static void
test_round_trip(void **state)
{
	static const char *const types[] = { "rsa2048", "rsa3072", "p256", "p384" };
	struct smime_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		EVP_PKEY *key = tu_key(types[i]), *back = NULL;
		unsigned char *blob = NULL, *der = NULL;
		size_t len = 0;
		int der_len;

		assert_int_equal(archive_seal(ar, key, "owner-1", &blob, &len, &err), 0);
		assert_memory_equal(blob, "SMA1", 4);
		assert_int_equal(archive_unseal(ar, blob, len, "owner-1", &back, &err), 0);
		assert_true(same_key(key, back));
		/* The private key's DER is nowhere in the sealed form. */
		assert_true((der_len = i2d_PrivateKey(key, &der)) > 32);
		for (size_t k = 0; k + 32 <= len; k++)
			assert_true(memcmp(blob + k, der + der_len - 32, 32) != 0);
		/* Two seals of the same key differ (fresh data key, fresh nonces). */
		unsigned char *blob2 = NULL;
		size_t len2 = 0;
		assert_int_equal(archive_seal(ar, key, "owner-1", &blob2, &len2, &err), 0);
		assert_true(len2 != len || memcmp(blob, blob2, len) != 0);
		free(blob2);
		OPENSSL_free(der);
		EVP_PKEY_free(back);
		EVP_PKEY_free(key);
		free(blob);
	}
}

static void
test_refused(void **state)
{
	struct smime_error err;
	EVP_PKEY *key = tu_key("p256"), *back = NULL;
	unsigned char *blob = NULL;
	size_t len = 0;
	char path[512];
	struct archive *other = NULL;

	(void)state;
	assert_int_equal(archive_seal(ar, key, "owner-1", &blob, &len, &err), 0);
	/* Another owner: the additional data differs. */
	assert_int_equal(archive_unseal(ar, blob, len, "owner-2", &back, &err), SMIME_E_CRYPTO);
	assert_null(back);
	/* Another KEK. */
	snprintf(path, sizeof(path), "%s/other.kek", dir);
	assert_int_equal(archive_open(&kek_file, path, true, &other, &err), 0);
	assert_int_equal(archive_unseal(other, blob, len, "owner-1", &back, &err), SMIME_E_CRYPTO);
	archive_free(other);
	/* A flipped octet anywhere after the magic and the length never opens. */
	for (size_t i = 6; i < len; i++) {
		blob[i] ^= 0x01;
		int rc = archive_unseal(ar, blob, len, "owner-1", &back, &err);
		assert_true(rc == SMIME_E_CRYPTO || rc == SMIME_E_INPUT);
		assert_null(back);
		blob[i] ^= 0x01;
	}
	/* Truncated, and lengths that lie. */
	for (size_t n = 0; n < len; n += 7)
		assert_int_not_equal(archive_unseal(ar, blob, n, "owner-1", &back, &err), 0);
	blob[4] = 0xff;
	assert_int_equal(archive_unseal(ar, blob, len, "owner-1", &back, &err), SMIME_E_INPUT);
	blob[4] = 0;
	blob[5] = 0;
	assert_int_equal(archive_unseal(ar, blob, len, "owner-1", &back, &err), SMIME_E_INPUT);
	assert_int_equal(archive_unseal(ar, (const unsigned char *)"XXXX\0\0", 6, "owner-1", &back,
	    &err), SMIME_E_INPUT);
	free(blob);
	EVP_PKEY_free(key);
}

static void
test_kek_file(void **state)
{
	struct smime_error err;
	struct archive *a = NULL;
	char path[512];
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "%s/archive.kek", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 32);
	/* Without create, a missing KEK is not made. */
	snprintf(path, sizeof(path), "%s/missing.kek", dir);
	assert_int_equal(archive_open(&kek_file, path, false, &a, &err), SMIME_E_NOTFOUND);
	/* A KEK readable by others is refused. */
	snprintf(path, sizeof(path), "%s/archive.kek", dir);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(archive_open(&kek_file, path, false, &a, &err), SMIME_E_POLICY);
	assert_int_equal(chmod(path, 0600), 0);
	/* The same file opens again to the same KEK. */
	assert_int_equal(archive_open(&kek_file, path, false, &a, &err), 0);
	EVP_PKEY *key = tu_key("p256"), *back = NULL;
	unsigned char *blob = NULL;
	size_t len = 0;
	assert_int_equal(archive_seal(ar, key, "o", &blob, &len, &err), 0);
	assert_int_equal(archive_unseal(a, blob, len, "o", &back, &err), 0);
	assert_true(same_key(key, back));
	free(blob);
	EVP_PKEY_free(back);
	EVP_PKEY_free(key);
	archive_free(a);
}

/* The KEK kept in the store: held in memory, the same sealing as the file's. */
static void
test_kek_in_memory(void **state)
{
	struct smime_error err;
	struct archive *a = NULL, *b = NULL;
	unsigned char kek[ARCHIVE_DK_LEN], other[ARCHIVE_DK_LEN], *blob = NULL;
	size_t len = 0;
	char path[512];
	EVP_PKEY *key = tu_key("p256"), *back = NULL;

	(void)state;
	/* The file's key, in memory, opens what the file's archive sealed. */
	snprintf(path, sizeof(path), "%s/archive.kek", dir);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(kek, 1, sizeof(kek), f), sizeof(kek));
	fclose(f);
	assert_int_equal(archive_open_key(kek, &a, &err), 0);
	assert_true(archive_has_key(a, kek));
	assert_int_equal(archive_seal(ar, key, "owner", &blob, &len, &err), 0);
	assert_int_equal(archive_unseal(a, blob, len, "owner", &back, &err), 0);
	assert_true(same_key(key, back));
	EVP_PKEY_free(back);
	back = NULL;
	/* Another KEK does not open it, and is not the same key. */
	memcpy(other, kek, sizeof(other));
	other[7] ^= 0x01;
	assert_false(archive_has_key(a, other));
	assert_int_equal(archive_open_key(other, &b, &err), 0);
	assert_int_equal(archive_unseal(b, blob, len, "owner", &back, &err), SMIME_E_CRYPTO);
	assert_null(back);
	free(blob);
	EVP_PKEY_free(key);
	archive_free(a);
	archive_free(b);
}

/* A stale archive (its KEK no longer the store's) seals and unseals
 * nothing until it is fresh again. */
static void
test_stale(void **state)
{
	struct smime_error err;
	struct archive *a = NULL;
	unsigned char kek[ARCHIVE_DK_LEN], *blob = NULL, *blob2 = NULL;
	size_t len = 0, len2 = 0;
	EVP_PKEY *key = tu_key("p256"), *back = NULL;

	(void)state;
	memset(kek, 0x5a, sizeof(kek));
	assert_int_equal(archive_open_key(kek, &a, &err), 0);
	assert_int_equal(archive_seal(a, key, "owner", &blob, &len, &err), 0);
	archive_set_stale(a, true);
	assert_int_equal(archive_seal(a, key, "owner", &blob2, &len2, &err), SMIME_E_INTERNAL);
	assert_null(blob2);
	assert_non_null(strstr(err.message, "restart smimed"));
	assert_int_equal(archive_unseal(a, blob, len, "owner", &back, &err), SMIME_E_INTERNAL);
	assert_null(back);
	archive_set_stale(a, false);
	assert_int_equal(archive_unseal(a, blob, len, "owner", &back, &err), 0);
	assert_true(same_key(key, back));
	archive_set_stale(NULL, true);
	free(blob);
	EVP_PKEY_free(back);
	EVP_PKEY_free(key);
	archive_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_kek_file),
		cmocka_unit_test(test_kek_in_memory),
		cmocka_unit_test(test_stale),
	};
	return cmocka_run_group_tests_name("archive", tests, setup, teardown);
}

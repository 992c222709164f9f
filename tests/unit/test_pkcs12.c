/* Unit tests of lib/pkcs12.c: reading and writing PKCS#12. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "testutil.h"

/* A throw-away PKI shared by the tests of this file. */
struct pki {
	EVP_PKEY *ca_key, *k1, *k2;
	X509 *ca, *c1, *c2;
};

static int
setup(void **state)
{
	struct pki *p = calloc(1, sizeof(*p));

	p->ca_key = tu_key("p256");
	p->ca = tu_cert(NULL, NULL, p->ca_key, "Test CA", NULL, SMIME_ROLE_CA, -1, 365);
	p->k1 = tu_key("rsa2048");
	p->c1 = tu_cert(p->ca, p->ca_key, p->k1, "Alice", "alice@example.org",
	    SMIME_ROLE_ENCRYPT, -1, 365);
	p->k2 = tu_key("p256");
	p->c2 = tu_cert(p->ca, p->ca_key, p->k2, "Alice sign", "alice@example.org",
	    SMIME_ROLE_SIGN, -1, 365);
	*state = p;
	return 0;
}

static int
teardown(void **state)
{
	struct pki *p = *state;

	EVP_PKEY_free(p->ca_key);
	EVP_PKEY_free(p->k1);
	EVP_PKEY_free(p->k2);
	X509_free(p->ca);
	X509_free(p->c1);
	X509_free(p->c2);
	free(p);
	return 0;
}

/* Write keys k1, k2 (with c1, c2) and the CA as extra; returns the DER. */
static unsigned char *
write_p12(struct pki *p, size_t n_keys, const char *pw, enum smime_p12_mode mode,
    const char *name, long *len_r)
{
	EVP_PKEY *keys[2] = { p->k1, p->k2 };
	X509 *certs[2] = { p->c1, p->c2 };
	STACK_OF(X509) *extra = sk_X509_new_null();
	BIO *bio = BIO_new(BIO_s_mem());
	struct smime_error err;
	unsigned char *data, *copy;

	sk_X509_push(extra, p->ca);
	if (smime_pkcs12_write(bio, keys, certs, n_keys, extra, pw, mode, name, &err) != 0)
		fail_msg("write: %s", err.message);
	*len_r = BIO_get_mem_data(bio, &data);
	copy = malloc(*len_r);
	memcpy(copy, data, *len_r);
	BIO_free(bio);
	sk_X509_free(extra);
	return copy;
}

/* Each key's certificate has its public key. */
static void
assert_ties(struct smime_bag *bag, size_t want_tied)
{
	size_t i, tied = 0;

	for (i = 0; i < bag->n_keys; i++) {
		if (bag->key_cert[i] < 0)
			continue;
		assert_true(bag->key_cert[i] < sk_X509_num(bag->certs));
		assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(bag->certs,
		    bag->key_cert[i])), bag->keys[i]), 1);
		tied++;
	}
	assert_int_equal(tied, want_tied);
}

static void
test_round_trip(void **state)
{
	static const struct {
		enum smime_p12_mode mode;
		size_t n_keys;
		const char *name;
	} rows[] = {
		{ SMIME_P12_AES, 2, "Alice" },
		{ SMIME_P12_AES, 1, NULL },
		{ SMIME_P12_LEGACY, 2, "Alice (legacy)" },
		{ SMIME_P12_LEGACY, 1, "x" },
	};
	struct pki *p = *state;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smime_bag *bag = smime_bag_new();
		struct smime_error err;
		const unsigned char *alias;
		long len;
		int alen;
		unsigned char *der = write_p12(p, rows[i].n_keys, "s3cret",
		    rows[i].mode, rows[i].name, &len);

		if (smime_pkcs12_read(bag, der, len, "s3cret", &err) != 0)
			fail_msg("row %zu: %s", i, err.message);
		assert_int_equal(bag->format, SMIME_FORMAT_PKCS12);
		assert_int_equal(sk_X509_num(bag->certs), rows[i].n_keys + 1);
		assert_int_equal(bag->n_keys, rows[i].n_keys);
		assert_ties(bag, rows[i].n_keys);
		/* Keys come back in order, each with its own certificate. */
		assert_int_equal(EVP_PKEY_eq(bag->keys[0], p->k1), 1);
		assert_int_equal(X509_cmp(sk_X509_value(bag->certs, bag->key_cert[0]),
		    p->c1), 0);
		if (rows[i].n_keys == 2)
			assert_int_equal(X509_cmp(sk_X509_value(bag->certs,
			    bag->key_cert[1]), p->c2), 0);
		alias = X509_alias_get0(sk_X509_value(bag->certs, bag->key_cert[0]), &alen);
		if (rows[i].name == NULL) {
			assert_null(alias);
		} else {
			assert_non_null(alias);
			assert_int_equal(alen, (int)strlen(rows[i].name));
			assert_memory_equal(alias, rows[i].name, alen);
		}
		/* The key ids used for tying are not left on the certificates. */
		assert_null(X509_keyid_get0(sk_X509_value(bag->certs, 0), &alen));

		/* Wrong, empty and absent passwords fail the MAC. */
		smime_bag_free(bag);
		bag = smime_bag_new();
		assert_int_equal(smime_pkcs12_read(bag, der, len, "wrong", &err),
		    SMIME_E_CRYPTO);
		assert_string_equal(err.message,
		    "PKCS#12: wrong password (MAC verification failed)");
		assert_int_equal(smime_pkcs12_read(bag, der, len, NULL, &err),
		    SMIME_E_CRYPTO);
		assert_int_equal(smime_pkcs12_read(bag, der, len, "", &err),
		    SMIME_E_CRYPTO);
		assert_int_equal(sk_X509_num(bag->certs), 0);
		assert_int_equal(bag->n_keys, 0);
		smime_bag_free(bag);
		free(der);
	}
}

/* The algorithms written are the ones promised in cert.h. */
static void
test_write_algorithms(void **state)
{
	static const struct {
		enum smime_p12_mode mode;
		int mac_nid, key_nid, cipher_nid, prf_nid;
	} rows[] = {
		{ SMIME_P12_AES, NID_sha256, NID_pbes2, NID_aes_256_cbc, NID_hmacWithSHA256 },
		{ SMIME_P12_LEGACY, NID_sha1, NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
		    NID_undef, NID_undef },
	};
	struct pki *p = *state;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		long len;
		unsigned char *der = write_p12(p, 1, "pw", rows[i].mode, NULL, &len);
		const unsigned char *q = der;
		PKCS12 *p12 = d2i_PKCS12(NULL, &q, len);
		const X509_ALGOR *macalg, *alg;
		const ASN1_INTEGER *iter;
		const ASN1_OBJECT *oid;
		STACK_OF(PKCS7) *safes;
		STACK_OF(PKCS12_SAFEBAG) *bags;
		int j;

		assert_non_null(p12);
		PKCS12_get0_mac(NULL, &macalg, NULL, &iter, p12);
		X509_ALGOR_get0(&oid, NULL, NULL, macalg);
		assert_int_equal(OBJ_obj2nid(oid), rows[i].mac_nid);
		assert_true(ASN1_INTEGER_get(iter) >= 10000);

		safes = PKCS12_unpack_authsafes(p12);
		assert_non_null(safes);
		assert_int_equal(sk_PKCS7_num(safes), 2);
		/* Certificates encrypted with the same scheme as the keys. */
		assert_int_equal(OBJ_obj2nid(sk_PKCS7_value(safes, 0)->type),
		    NID_pkcs7_encrypted);
		X509_ALGOR_get0(&oid, NULL, NULL,
		    sk_PKCS7_value(safes, 0)->d.encrypted->enc_data->algorithm);
		assert_int_equal(OBJ_obj2nid(oid), rows[i].key_nid);
		bags = PKCS12_unpack_p7data(sk_PKCS7_value(safes, 1));
		assert_non_null(bags);
		for (j = 0; j < sk_PKCS12_SAFEBAG_num(bags); j++) {
			const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, j);

			assert_int_equal(PKCS12_SAFEBAG_get_nid(bag), NID_pkcs8ShroudedKeyBag);
			X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
			X509_ALGOR_get0(&oid, NULL, NULL, alg);
			assert_int_equal(OBJ_obj2nid(oid), rows[i].key_nid);
			if (rows[i].key_nid == NID_pbes2) {
				PBE2PARAM *pbe2 = ASN1_TYPE_unpack_sequence(
				    ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
				PBKDF2PARAM *kdf = ASN1_TYPE_unpack_sequence(
				    ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter);

				assert_int_equal(OBJ_obj2nid(pbe2->encryption->algorithm),
				    rows[i].cipher_nid);
				assert_non_null(kdf->prf);
				assert_int_equal(OBJ_obj2nid(kdf->prf->algorithm),
				    rows[i].prf_nid);
				assert_true(ASN1_INTEGER_get(kdf->iter) >= 10000);
				PBKDF2PARAM_free(kdf);
				PBE2PARAM_free(pbe2);
			}
		}
		sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
		sk_PKCS7_pop_free(safes, PKCS7_free);
		PKCS12_free(p12);
		free(der);
	}
}

static void
test_write_refuses(void **state)
{
	struct pki *p = *state;
	EVP_PKEY *keys[2] = { p->k1, p->k2 };
	X509 *wrong[2] = { p->c2, p->c1 };
	X509 *certs[2] = { p->c1, NULL };
	BIO *bio = BIO_new(BIO_s_mem());
	struct smime_error err;
	static const struct {
		const char *what;
		int n;
		int certs;	/* 0 right, 1 swapped, 2 with NULL, 3 no arrays */
		const char *pw;
		int mode;
		const char *msg;
	} rows[] = {
		{ "NULL password", 1, 0, NULL, SMIME_P12_AES, "password is required" },
		{ "empty password", 1, 0, "", SMIME_P12_AES, "password is required" },
		{ "key for another cert", 2, 1, "pw", SMIME_P12_AES, "does not match" },
		{ "missing cert", 2, 2, "pw", SMIME_P12_AES, "is missing" },
		{ "nothing", 0, 0, "pw", SMIME_P12_AES, "nothing to write" },
		{ "no arrays", 1, 3, "pw", SMIME_P12_AES, "keys without certificates" },
		{ "bad mode", 1, 0, "pw", 7, "unknown mode" },
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		X509 **c = rows[i].certs == 0 ? (X509 *[]){ p->c1, p->c2 } :
		    rows[i].certs == 1 ? wrong : rows[i].certs == 2 ? certs : NULL;
		int rc = smime_pkcs12_write(bio, rows[i].certs == 3 ? NULL : keys, c,
		    rows[i].n, NULL, rows[i].pw, rows[i].mode, NULL, &err);

		if (rc != SMIME_E_USAGE || strstr(err.message, rows[i].msg) == NULL)
			fail_msg("row %s: rc %d: %s", rows[i].what, rc, err.message);
	}
	assert_int_equal(BIO_ctrl_pending(bio), 0);
	assert_int_equal(smime_pkcs12_write(NULL, keys, certs, 1, NULL, "pw",
	    SMIME_P12_AES, NULL, &err), SMIME_E_USAGE);
	BIO_free(bio);
}

/* Replace the first occurrence of from[n] in d[len] by to[n]. */
static void
patch(unsigned char *d, long len, const void *from, const void *to, size_t n)
{
	long i;

	for (i = 0; i + (long)n <= len; i++) {
		if (memcmp(d + i, from, n) == 0) {
			memcpy(d + i, to, n);
			return;
		}
	}
	fail_msg("patch: pattern not found");
}

/* A PKCS#12 with iterations 65536 (02 03 01 00 00) in the MAC and PBEs. */
static unsigned char *
p12_iter_65536(struct pki *p, bool with_mac, long *len_r)
{
	PKCS12 *p12 = PKCS12_create("pw", NULL, p->k2, p->c2, NULL,
	    NID_aes_256_cbc, NID_aes_256_cbc, 65536, with_mac ? 65536 : -1, 0);
	unsigned char *der = NULL, *copy;

	assert_non_null(p12);
	*len_r = i2d_PKCS12(p12, &der);
	copy = malloc(*len_r);
	memcpy(copy, der, *len_r);
	OPENSSL_free(der);
	PKCS12_free(p12);
	return copy;
}

/* Broken and hostile files: each fails with the right code and message. */
static void
test_read_rejects(void **state)
{
	struct pki *p = *state;
	long good_len, it_len, nomac_len;
	unsigned char *good = write_p12(p, 1, "pw", SMIME_P12_AES, NULL, &good_len);
	unsigned char *it_mac = p12_iter_65536(p, true, &it_len);
	unsigned char *it_nomac = p12_iter_65536(p, false, &nomac_len);
	unsigned char buf[16384];
	static const unsigned char it_from[] = { 0x02, 0x03, 0x01, 0x00, 0x00 };
	static const unsigned char it_to[] = { 0x02, 0x03, 0x7f, 0xff, 0xff };
	enum { EMPTY, GARBAGE, TRUNCATED, HALF, TRAILING, WRONG_PW, NO_PW, FLIPPED,
	    MAC_ITER, PBE_ITER, NOMAC_WRONG_PW, PEM_TEXT, N_ROWS };
	static const struct {
		int code;
		const char *msg;
	} want[N_ROWS] = {
		[EMPTY] = { SMIME_E_INPUT, "empty input" },
		[GARBAGE] = { SMIME_E_INPUT, "not a PFX" },
		[TRUNCATED] = { SMIME_E_INPUT, "not a PFX" },
		[HALF] = { SMIME_E_INPUT, "not a PFX" },
		[TRAILING] = { SMIME_E_INPUT, "3 bytes after the PFX" },
		[WRONG_PW] = { SMIME_E_CRYPTO, "wrong password (MAC verification failed)" },
		[NO_PW] = { SMIME_E_CRYPTO, "wrong password (MAC verification failed)" },
		[FLIPPED] = { SMIME_E_CRYPTO, "wrong password (MAC verification failed)" },
		[MAC_ITER] = { SMIME_E_INPUT, "MAC: iteration count is not within" },
		[PBE_ITER] = { SMIME_E_INPUT, "iteration count is not within" },
		[NOMAC_WRONG_PW] = { SMIME_E_CRYPTO, "cannot be decrypted" },
		[PEM_TEXT] = { SMIME_E_INPUT, "not a PFX" },
	};
	int i;

	for (i = 0; i < N_ROWS; i++) {
		struct smime_bag *bag = smime_bag_new();
		struct smime_error err;
		const unsigned char *d = buf;
		const char *pw = "pw";
		size_t n = 0;
		int rc;

		switch (i) {
		case EMPTY:
			n = 0;
			break;
		case GARBAGE:
			memcpy(buf, "hello, world", 12);
			n = 12;
			break;
		case TRUNCATED:
			memcpy(buf, good, good_len - 1);
			n = good_len - 1;
			break;
		case HALF:
			memcpy(buf, good, good_len / 2);
			n = good_len / 2;
			break;
		case TRAILING:
			memcpy(buf, good, good_len);
			memcpy(buf + good_len, "xyz", 3);
			n = good_len + 3;
			break;
		case WRONG_PW:
			d = good;
			n = good_len;
			pw = "Pw";
			break;
		case NO_PW:
			d = good;
			n = good_len;
			pw = NULL;
			break;
		case FLIPPED:
			memcpy(buf, good, good_len);
			buf[good_len / 2] ^= 0x01;
			n = good_len;
			break;
		case MAC_ITER:
			/* The MAC iterations are the last INTEGER in the file. */
			memcpy(buf, it_mac, it_len);
			assert_memory_equal(buf + it_len - 5, it_from, 5);
			memcpy(buf + it_len - 5, it_to, 5);
			n = it_len;
			break;
		case PBE_ITER:
			memcpy(buf, it_nomac, nomac_len);
			patch(buf, nomac_len, it_from, it_to, 5);
			n = nomac_len;
			break;
		case NOMAC_WRONG_PW:
			d = it_nomac;
			n = nomac_len;
			pw = "other";
			break;
		case PEM_TEXT:
			memcpy(buf, "-----BEGIN PKCS12-----\n", 23);
			n = 23;
			break;
		}
		rc = smime_pkcs12_read(bag, d, n, pw, &err);
		if (rc != want[i].code || strstr(err.message, want[i].msg) == NULL)
			fail_msg("row %d: rc %d: %s", i, rc, err.message);
		assert_int_equal(sk_X509_num(bag->certs), 0);
		assert_int_equal(bag->n_keys, 0);
		smime_bag_free(bag);
	}
	/* The unpatched file without a MAC reads with the right password. */
	{
		struct smime_bag *bag = smime_bag_new();
		struct smime_error err;

		assert_int_equal(smime_pkcs12_read(bag, it_nomac, nomac_len, "pw", &err), 0);
		assert_int_equal(bag->n_keys, 1);
		assert_ties(bag, 1);
		smime_bag_free(bag);
	}
	free(good);
	free(it_mac);
	free(it_nomac);
}

/* Every prefix of a good file fails cleanly. */
static void
test_read_every_truncation(void **state)
{
	struct pki *p = *state;
	long len, cut;
	unsigned char *der = write_p12(p, 2, "pw", SMIME_P12_AES, "n", &len);

	for (cut = 0; cut < len; cut += 7) {
		struct smime_bag *bag = smime_bag_new();
		unsigned char *copy = malloc(cut + 1);

		memcpy(copy, der, cut);
		assert_int_equal(smime_pkcs12_read(bag, copy, cut, "pw", NULL),
		    SMIME_E_INPUT);
		free(copy);
		smime_bag_free(bag);
	}
	free(der);
}

/* A bag that already holds items keeps them, and indexes stay right. */
static void
test_read_appends(void **state)
{
	struct pki *p = *state;
	struct smime_bag *bag = smime_bag_new();
	struct smime_error err;
	long len;
	unsigned char *der = write_p12(p, 2, "pw", SMIME_P12_AES, NULL, &len);

	assert_int_equal(smime_pkcs12_read(bag, der, len, "pw", &err), 0);
	assert_int_equal(smime_pkcs12_read(bag, der, len, "pw", &err), 0);
	assert_int_equal(sk_X509_num(bag->certs), 6);
	assert_int_equal(bag->n_keys, 4);
	assert_ties(bag, 4);
	assert_true(bag->key_cert[2] >= 3);
	assert_true(bag->key_cert[3] >= 3);
	assert_int_equal(smime_pkcs12_read(NULL, der, len, "pw", &err), SMIME_E_USAGE);
	assert_int_equal(smime_pkcs12_read(bag, NULL, len, "pw", &err), SMIME_E_USAGE);
	smime_bag_free(bag);
	free(der);
}

/* An empty-password file opens with NULL, "" and not with another one. */
static void
test_empty_password_made_here(void **state)
{
	struct pki *p = *state;
	static const struct {
		const char *make;	/* PKCS12_create password */
		const char *open;
		int code;
	} rows[] = {
		{ "", NULL, 0 }, { "", "", 0 }, { "", "x", SMIME_E_CRYPTO },
		{ NULL, NULL, 0 }, { NULL, "", 0 }, { NULL, "x", SMIME_E_CRYPTO },
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		PKCS12 *p12 = PKCS12_create(rows[i].make, NULL, p->k2, p->c2, NULL,
		    NID_aes_256_cbc, NID_aes_256_cbc, 2048, 2048, 0);
		struct smime_bag *bag = smime_bag_new();
		unsigned char *der = NULL;
		struct smime_error err;
		int len, rc;

		assert_non_null(p12);
		len = i2d_PKCS12(p12, &der);
		rc = smime_pkcs12_read(bag, der, len, rows[i].open, &err);
		if (rc != rows[i].code)
			fail_msg("row %zu: rc %d: %s", i, rc, err.message);
		if (rc == 0) {
			assert_int_equal(bag->n_keys, 1);
			assert_ties(bag, 1);
		}
		smime_bag_free(bag);
		OPENSSL_free(der);
		PKCS12_free(p12);
	}
}

/*
 * Every public PKCS#12 file: the numbers of certificates and keys its
 * README gives (openssl pkcs12 -legacy -nodes counts), every key tied.
 */
static void
test_shared_files(void **state)
{
	static const struct {
		const char *path;
		const char *password;
		int certs, keys, tied;
		const char *alias0;	/* friendlyName of the first cert, or NULL */
	} rows[] = {
		{ "corpus/pkcs12-variants/windows7-certmgr-export.p12", "foo", 1, 1, 1, NULL },
		{ "corpus/pkcs12-variants/nss-chrome-export.p12", "foo", 1, 1, 1, NULL },
		{ "corpus/pkcs12-variants/openssl-3des-rc2.p12", "foo", 1, 1, 1, NULL },
		{ "corpus/pkcs12-variants/pbes2-aes128-hmacsha1.p12", "foo", 1, 1, 1, NULL },
		{ "corpus/pkcs12-variants/pbes2-aes128-hmacsha256.p12", "foo", 1, 1, 1, NULL },
		{ "corpus/pkcs12-variants/no-encryption.p12", "foo", 1, 1, 1, NULL },
		{ "corpus/pkcs12-variants/empty-password.p12", NULL, 1, 1, 1, NULL },
		{ "corpus/pkcs12-variants/empty-password.p12", "", 1, 1, 1, NULL },
		{ "corpus/pkcs12-variants/null-password.p12", NULL, 1, 1, 1, NULL },
		{ "corpus/pkcs12-variants/null-password.p12", "", 1, 1, 1, NULL },
		{ "corpus/pkcs12-variants/unicode-password.p12", "Hello, 世界", 1, 1, 1, NULL },
		{ "corpus/thunderbird-smime/Alice.p12", "nss", 2, 1, 1, NULL },
		{ "corpus/thunderbird-smime/Alice-ec.p12", "nss", 2, 1, 1, NULL },
		{ "corpus/thunderbird-smime/Bob.p12", "nss", 2, 1, 1, NULL },
		{ "corpus/thunderbird-smime/Dave.p12", "nss", 2, 1, 1, NULL },
		{ "corpus/thunderbird-smime/Eve.p12", "nss", 2, 1, 1, NULL },
		{ "corpus/covert-content-attacks/manager@bigcorporation.pfx", "test12345678",
		    2, 1, 1, NULL },
		{ "corpus/real-clients-hiraoka/smime-1-secret.pfx", "smime1", 2, 1, 1, NULL },
		{ "corpus/real-clients-hiraoka/smime-2-secret.pfx", "smime2", 2, 1, 1, NULL },
		{ "corpus/real-clients-simple-java-mail/smime_test_user.p12", "letmein",
		    1, 1, 1, NULL },
		{ "corpus/real-clients-simple-java-mail/smime_keystore.pkcs12", "letmein",
		    2, 2, 2, NULL },
		{ "vectors/thunderbird/Alice.p12", "nss", 2, 1, 1, NULL },
		{ "vectors/thunderbird/Alice-ec.p12", "nss", 2, 1, 1, NULL },
		{ "vectors/thunderbird/Bob.p12", "nss", 2, 1, 1, NULL },
		{ "vectors/thunderbird/Dave.p12", "nss", 2, 1, 1, NULL },
		{ "vectors/thunderbird/Eve.p12", "nss", 2, 1, 1, NULL },
		{ "vectors/thunderbird/Fran.p12", "nss", 1, 1, 1, NULL },
		{ "vectors/thunderbird/Fran-ec.p12", "nss", 1, 1, 1, NULL },
		{ "vectors/rfc9216/alice.p12", "alice", 3, 2, 2, NULL },
		{ "vectors/rfc9216/bob.p12", "bob", 3, 2, 2, NULL },
		{ "vectors/rfc9216/carlos.p12", "carlos", 3, 2, 2, NULL },
		{ "vectors/rfc9216/dana.p12", "dana", 3, 2, 2, NULL },
		{ "vectors/pyca-cryptography/pkcs12/cert-aes256cbc-no-key.p12", "cryptography",
		    1, 0, 0, NULL },
		{ "vectors/pyca-cryptography/pkcs12/cert-key-aes256cbc.p12", "cryptography",
		    1, 1, 1, NULL },
		{ "vectors/pyca-cryptography/pkcs12/no-cert-key-aes256cbc.p12", "cryptography",
		    0, 1, 0, NULL },
		{ "vectors/pyca-cryptography/pkcs12/cert-none-key-none.p12", "cryptography",
		    1, 1, 1, NULL },
		{ "vectors/pyca-cryptography/pkcs12/cert-rc2-key-3des.p12", "cryptography",
		    1, 1, 1, NULL },
		{ "vectors/pyca-cryptography/pkcs12/no-password.p12", NULL, 1, 1, 1, NULL },
		{ "vectors/pyca-cryptography/pkcs12/name-1-pwd.p12", "password", 3, 1, 1, NULL },
		{ "vectors/pyca-cryptography/pkcs12/name-1-no-pwd.p12", NULL, 3, 1, 1, NULL },
		{ "vectors/pyca-cryptography/pkcs12/name-2-3-pwd.p12", "password", 3, 1, 1, NULL },
		{ "vectors/pyca-cryptography/pkcs12/name-all-pwd.p12", "password", 3, 1, 1, NULL },
		{ "vectors/pyca-cryptography/pkcs12/name-all-no-pwd.p12", NULL, 3, 1, 1, NULL },
		{ "vectors/pyca-cryptography/pkcs12/name-unicode-pwd.p12", "password",
		    3, 1, 1, NULL },
		{ "vectors/pyca-cryptography/pkcs12/no-name-no-pwd.p12", NULL, 3, 1, 1, NULL },
		{ "vectors/pyca-cryptography/pkcs12/no-cert-name-all-pwd.p12", "password",
		    2, 0, 0, NULL },
		{ "vectors/pyca-cryptography/pkcs12/no-cert-no-name-no-pwd.p12", NULL,
		    2, 0, 0, NULL },
	};
	/* The same files with a wrong password: the MAC fails. */
	static const char *const wrong[] = {
		"corpus/pkcs12-variants/windows7-certmgr-export.p12",
		"corpus/pkcs12-variants/unicode-password.p12",
		"corpus/thunderbird-smime/Alice.p12",
		"corpus/real-clients-simple-java-mail/smime_keystore.pkcs12",
		"vectors/rfc9216/carlos.p12",
		"vectors/pyca-cryptography/pkcs12/name-1-pwd.p12",
	};
	const char *shared = tu_shared();
	char path[4096];
	size_t i;

	(void)state;
	if (shared == NULL)
		TU_SKIP("no shared/ folder beside the source tree");
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smime_bag *bag = smime_bag_new();
		struct smime_error err;
		unsigned char *data;
		size_t len;

		snprintf(path, sizeof(path), "%s/%s", shared, rows[i].path);
		if ((data = tu_read_file(path, &len)) == NULL)
			fail_msg("%s: missing", rows[i].path);
		if (smime_pkcs12_read(bag, data, len, rows[i].password, &err) != 0)
			fail_msg("%s: %s", rows[i].path, err.message);
		if (sk_X509_num(bag->certs) != rows[i].certs ||
		    (int)bag->n_keys != rows[i].keys)
			fail_msg("%s: %d certs, %zu keys; expected %d, %d", rows[i].path,
			    sk_X509_num(bag->certs), bag->n_keys, rows[i].certs,
			    rows[i].keys);
		assert_ties(bag, rows[i].tied);
		smime_bag_free(bag);
		free(data);
	}
	for (i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		struct smime_bag *bag = smime_bag_new();
		struct smime_error err;
		unsigned char *data;
		size_t len;

		snprintf(path, sizeof(path), "%s/%s", shared, wrong[i]);
		assert_non_null(data = tu_read_file(path, &len));
		assert_int_equal(smime_pkcs12_read(bag, data, len, "not-it", &err),
		    SMIME_E_CRYPTO);
		assert_string_equal(err.message,
		    "PKCS#12: wrong password (MAC verification failed)");
		assert_int_equal(sk_X509_num(bag->certs), 0);
		smime_bag_free(bag);
		free(data);
	}
}

/* friendlyNames become certificate aliases, in UTF-8. */
static void
test_shared_friendly_names(void **state)
{
	static const struct {
		const char *path;
		const char *password;
		const char *names[3];
	} rows[] = {
		{ "vectors/pyca-cryptography/pkcs12/name-all-pwd.p12", "password",
		    { "name", "name2", "name3" } },
		{ "vectors/pyca-cryptography/pkcs12/name-unicode-pwd.p12", "password",
		    { "\u263a", "\u00e4", "\u00e7" } },
		{ "vectors/pyca-cryptography/pkcs12/name-2-3-pwd.p12", "password",
		    { NULL, "name2", "name3" } },
		{ "corpus/real-clients-simple-java-mail/smime_keystore.pkcs12", "letmein",
		    { "smime_test_user_alias_rsa", "smime_test_user_alias_dsa", NULL } },
	};
	const char *shared = tu_shared();
	char path[4096];
	size_t i;

	(void)state;
	if (shared == NULL)
		TU_SKIP("no shared/ folder beside the source tree");
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smime_bag *bag = smime_bag_new();
		struct smime_error err;
		unsigned char *data;
		size_t len, j, found = 0, want = 0;

		snprintf(path, sizeof(path), "%s/%s", shared, rows[i].path);
		assert_non_null(data = tu_read_file(path, &len));
		assert_int_equal(smime_pkcs12_read(bag, data, len, rows[i].password, &err), 0);
		/* Each expected name is on exactly one certificate. */
		for (j = 0; j < 3; j++) {
			int k, alen;

			if (rows[i].names[j] == NULL)
				continue;
			want++;
			for (k = 0; k < sk_X509_num(bag->certs); k++) {
				const unsigned char *a = X509_alias_get0(
				    sk_X509_value(bag->certs, k), &alen);

				if (a != NULL && alen == (int)strlen(rows[i].names[j]) &&
				    memcmp(a, rows[i].names[j], alen) == 0)
					found++;
			}
		}
		if (found != want)
			fail_msg("%s: %zu of %zu names found", rows[i].path, found, want);
		smime_bag_free(bag);
		free(data);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_write_algorithms),
		cmocka_unit_test(test_write_refuses),
		cmocka_unit_test(test_read_rejects),
		cmocka_unit_test(test_read_every_truncation),
		cmocka_unit_test(test_read_appends),
		cmocka_unit_test(test_empty_password_made_here),
		cmocka_unit_test(test_shared_files),
		cmocka_unit_test(test_shared_friendly_names),
	};

	return cmocka_run_group_tests_name("pkcs12", tests, setup, teardown);
}

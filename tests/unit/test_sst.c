/* Unit tests of lib/sst.c: the Microsoft serialized certificate store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "testutil.h"

/* A store built element by element in a test. */
struct sst_buf {
	unsigned char data[16384];
	size_t len;
};

static void
put_raw(struct sst_buf *b, const void *p, size_t n)
{
	assert_true(b->len + n <= sizeof(b->data));
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
put_le32(struct sst_buf *b, uint32_t v)
{
	unsigned char le[4] = { v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24 };

	put_raw(b, le, 4);
}

static void
put_header(struct sst_buf *b)
{
	put_raw(b, "\0\0\0\0CERT", 8);
}

/* One element whose length field says len_field, with n bytes of value. */
static void
put_elem(struct sst_buf *b, uint32_t id, uint32_t enc, uint32_t len_field,
    const void *v, size_t n)
{
	put_le32(b, id);
	put_le32(b, enc);
	put_le32(b, len_field);
	if (n > 0)
		put_raw(b, v, n);
}

static void
put_end(struct sst_buf *b)
{
	put_elem(b, 0, 0, 0, NULL, 0);
}

/* DER of a fresh self-signed certificate; the caller frees. */
static unsigned char *
cert_der(const char *cn, int *len_r, X509 **cert_r)
{
	EVP_PKEY *k = tu_key("p256");
	X509 *c = tu_cert(NULL, NULL, k, cn, NULL, SMIME_ROLE_CA, -1, 365);
	unsigned char *der = NULL;

	*len_r = i2d_X509(c, &der);
	assert_true(*len_r > 0);
	EVP_PKEY_free(k);
	if (cert_r != NULL)
		*cert_r = c;
	else
		X509_free(c);
	return der;
}

static void
test_detect(void **state)
{
	static const struct {
		const char *name;
		const unsigned char *data;
		size_t len;
		bool want;
	} rows[] = {
		{ "magic", (const unsigned char *)"\0\0\0\0CERT", 8, true },
		{ "magic and more", (const unsigned char *)"\0\0\0\0CERTxyz", 11, true },
		{ "truncated magic", (const unsigned char *)"\0\0\0\0CER", 7, false },
		{ "empty", (const unsigned char *)"", 0, false },
		{ "version 1", (const unsigned char *)"\1\0\0\0CERT", 8, false },
		{ "lower case", (const unsigned char *)"\0\0\0\0cert", 8, false },
		{ "PEM", (const unsigned char *)"-----BEGIN CERTIFICATE-----", 27, false },
		{ "DER", (const unsigned char *)"\x30\x82\x01\x00\x30\x82", 6, false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (smime_sst_detect(rows[i].data, rows[i].len) != rows[i].want)
			fail_msg("row %s: detect is %d", rows[i].name, !rows[i].want);
	}
	assert_false(smime_sst_detect(NULL, 8));
}

/* Structures that must be accepted, with the certificates they hold. */
static void
test_read_accepts(void **state)
{
	int der_len, i;
	unsigned char *der = cert_der("accept", &der_len, NULL);
	const unsigned char sha1[20] = { 0 };
	const unsigned char name[] = { 'h', 0, 'i', 0, 0, 0 };
	struct smime_error err;
	enum { EMPTY, ONE_BARE, PROPS, ZERO_LEN_PROP, UNKNOWN_PROP, CRL_SKIPPED,
	    TWO, N_ROWS };
	static const int want[N_ROWS] = { 0, 1, 1, 1, 1, 1, 2 };

	(void)state;
	for (i = 0; i < N_ROWS; i++) {
		struct sst_buf b = { .len = 0 };
		STACK_OF(X509) *certs = sk_X509_new_null();

		put_header(&b);
		switch (i) {
		case EMPTY:
			break;
		case ONE_BARE:
			put_elem(&b, 0x20, 1, der_len, der, der_len);
			break;
		case PROPS:
			put_elem(&b, 3, 1, 20, sha1, 20);
			put_elem(&b, 11, 1, sizeof(name), name, sizeof(name));
			put_elem(&b, 0x20, 1, der_len, der, der_len);
			break;
		case ZERO_LEN_PROP:
			put_elem(&b, 104, 1, 0, NULL, 0);
			put_elem(&b, 126, 1, 0, NULL, 0);
			put_elem(&b, 0x20, 1, der_len, der, der_len);
			break;
		case UNKNOWN_PROP:
			put_elem(&b, 0xfffe, 1, 3, "abc", 3);
			put_elem(&b, 0x20, 1, der_len, der, der_len);
			break;
		case CRL_SKIPPED:
			put_elem(&b, 0x21, 1, 4, "\x30\x02\x05\x00", 4);
			put_elem(&b, 0x20, 1, der_len, der, der_len);
			break;
		case TWO:
			put_elem(&b, 0x20, 1, der_len, der, der_len);
			put_elem(&b, 3, 1, 20, sha1, 20);
			put_elem(&b, 0x20, 1, der_len, der, der_len);
			break;
		}
		put_end(&b);
		if (smime_sst_read(b.data, b.len, certs, &err) != 0)
			fail_msg("row %d: %s", i, err.message);
		assert_int_equal(sk_X509_num(certs), want[i]);
		if (i == PROPS) {
			int alen;
			const unsigned char *alias = X509_alias_get0(sk_X509_value(certs, 0),
			    &alen);

			assert_non_null(alias);
			assert_int_equal(alen, 2);
			assert_memory_equal(alias, "hi", 2);
		}
		sk_X509_pop_free(certs, X509_free);
	}
	OPENSSL_free(der);
}

/* Hostile and broken stores: each fails with a message naming the rule. */
static void
test_read_rejects(void **state)
{
	int der_len, i;
	unsigned char *der = cert_der("reject", &der_len, NULL);
	struct smime_error err;
	enum { EMPTY, HEADER_ONLY, BAD_MAGIC, BAD_VERSION, TRUNC_ELEM, LYING_LEN,
	    LEN_ONE_MORE, BAD_ENC, BIG_PROP_ID, PROPS_NO_CERT, TRAILING, GARBAGE_CERT,
	    CERT_TRAILER, END_NONZERO, ZERO_LEN_CERT, TRUNC_CERT, N_ROWS };
	static const char *const want[N_ROWS] = {
		[EMPTY] = "header",
		[HEADER_ONLY] = "end marker needs 12",
		[BAD_MAGIC] = "fileType 'CERT'",
		[BAD_VERSION] = "version 0",
		[TRUNC_ELEM] = "5 bytes left",
		[LYING_LEN] = "element 0: length 4294967295 exceeds the remaining",
		[LEN_ONE_MORE] = "exceeds the remaining",
		[BAD_ENC] = "encodingType 0x00000002",
		[BIG_PROP_ID] = "exceeds 0xFFFF",
		[PROPS_NO_CERT] = "not followed by a certificate",
		[TRAILING] = "after the end marker",
		[GARBAGE_CERT] = "certificate 1 is not an X.509 certificate",
		[CERT_TRAILER] = "bytes inside its element",
		[END_NONZERO] = "end marker",
		[ZERO_LEN_CERT] = "certificate 1 is not an X.509",
		[TRUNC_CERT] = "certificate 1 is not an X.509",
	};

	(void)state;
	for (i = 0; i < N_ROWS; i++) {
		struct sst_buf b = { .len = 0 };
		STACK_OF(X509) *certs = sk_X509_new_null();
		unsigned char tmp[4096];

		switch (i) {
		case EMPTY:
			break;
		case HEADER_ONLY:
			put_header(&b);
			break;
		case BAD_MAGIC:
			put_raw(&b, "\0\0\0\0CERX", 8);
			put_end(&b);
			break;
		case BAD_VERSION:
			put_raw(&b, "\1\0\0\0CERT", 8);
			put_end(&b);
			break;
		case TRUNC_ELEM:
			put_header(&b);
			put_raw(&b, "\x20\0\0\0\1", 5);
			break;
		case LYING_LEN:
			put_header(&b);
			put_elem(&b, 0x20, 1, 0xffffffffu, der, der_len);
			put_end(&b);
			break;
		case LEN_ONE_MORE:
			put_header(&b);
			put_elem(&b, 0x20, 1, der_len + 12 + 1, der, der_len);
			put_end(&b);
			break;
		case BAD_ENC:
			put_header(&b);
			put_elem(&b, 0x20, 2, der_len, der, der_len);
			put_end(&b);
			break;
		case BIG_PROP_ID:
			put_header(&b);
			put_elem(&b, 0x10000, 1, 1, "x", 1);
			put_elem(&b, 0x20, 1, der_len, der, der_len);
			put_end(&b);
			break;
		case PROPS_NO_CERT:
			put_header(&b);
			put_elem(&b, 0x20, 1, der_len, der, der_len);
			put_elem(&b, 3, 1, 1, "x", 1);
			put_end(&b);
			break;
		case TRAILING:
			put_header(&b);
			put_elem(&b, 0x20, 1, der_len, der, der_len);
			put_end(&b);
			put_raw(&b, "\n", 1);
			break;
		case GARBAGE_CERT:
			put_header(&b);
			put_elem(&b, 0x20, 1, 9, "not a DER", 9);
			put_end(&b);
			break;
		case CERT_TRAILER:
			memcpy(tmp, der, der_len);
			tmp[der_len] = 0;
			put_header(&b);
			put_elem(&b, 0x20, 1, der_len + 1, tmp, der_len + 1);
			put_end(&b);
			break;
		case END_NONZERO:
			put_header(&b);
			put_elem(&b, 0, 0, 1, NULL, 0);
			break;
		case ZERO_LEN_CERT:
			put_header(&b);
			put_elem(&b, 0x20, 1, 0, NULL, 0);
			put_end(&b);
			break;
		case TRUNC_CERT:
			put_header(&b);
			put_elem(&b, 0x20, 1, der_len - 10, der, der_len - 10);
			put_end(&b);
			break;
		}
		if (smime_sst_read(b.data, b.len, certs, &err) != SMIME_E_INPUT)
			fail_msg("row %d: accepted or wrong code", i);
		assert_int_equal(err.code, SMIME_E_INPUT);
		if (strstr(err.message, want[i]) == NULL)
			fail_msg("row %d: message \"%s\" lacks \"%s\"", i, err.message, want[i]);
		assert_true(strncmp(err.message, "SST: ", 5) == 0);
		/* Nothing is appended from a store that fails. */
		assert_int_equal(sk_X509_num(certs), 0);
		sk_X509_pop_free(certs, X509_free);
	}
	OPENSSL_free(der);
}

/* Every prefix of a valid store fails cleanly (no over-read under ASan). */
static void
test_read_every_truncation(void **state)
{
	X509 *c1, *c2;
	int l1, l2;
	unsigned char *d1 = cert_der("t1", &l1, &c1), *d2 = cert_der("t2", &l2, &c2);
	STACK_OF(X509) *in = sk_X509_new_null(), *out;
	BIO *bio = BIO_new(BIO_s_mem());
	struct smime_error err;
	unsigned char *data, *copy;
	long n;
	size_t cut;

	(void)state;
	X509_alias_set1(c1, (const unsigned char *)"first", -1);
	sk_X509_push(in, c1);
	sk_X509_push(in, c2);
	assert_int_equal(smime_sst_write(bio, in, &err), 0);
	n = BIO_get_mem_data(bio, &data);
	for (cut = 0; cut < (size_t)n; cut++) {
		copy = malloc(cut + 1);
		memcpy(copy, data, cut);
		out = sk_X509_new_null();
		assert_int_equal(smime_sst_read(copy, cut, out, &err), SMIME_E_INPUT);
		assert_int_equal(sk_X509_num(out), 0);
		sk_X509_pop_free(out, X509_free);
		free(copy);
	}
	BIO_free(bio);
	sk_X509_pop_free(in, X509_free);
	OPENSSL_free(d1);
	OPENSSL_free(d2);
}

/* Write then read gives the same certificates and names, and the bytes
 * are what certutil writes: SHA-1 property, name, certificate, end. */
static void
test_write_round_trip(void **state)
{
	STACK_OF(X509) *in = sk_X509_new_null(), *out = sk_X509_new_null();
	BIO *bio = BIO_new(BIO_s_mem()), *bio2 = BIO_new(BIO_s_mem());
	struct smime_error err;
	unsigned char *data, *data2, md[20];
	unsigned int mdlen;
	const unsigned char *alias;
	int i, alen;
	long n, n2;

	(void)state;
	for (i = 0; i < 3; i++) {
		X509 *c;
		int l;
		unsigned char *d = cert_der(i == 0 ? "one" : "other", &l, &c);

		OPENSSL_free(d);
		if (i == 1)
			X509_alias_set1(c, (const unsigned char *)"Zürich ☺", -1);
		sk_X509_push(in, c);
	}
	assert_int_equal(smime_sst_write(bio, in, &err), 0);
	n = BIO_get_mem_data(bio, &data);
	assert_true(smime_sst_detect(data, n));
	/* First group starts with the SHA-1 property of the first cert. */
	assert_memory_equal(data + 8, "\x03\0\0\0\x01\0\0\0\x14\0\0\0", 12);
	X509_digest(sk_X509_value(in, 0), EVP_sha1(), md, &mdlen);
	assert_memory_equal(data + 20, md, 20);
	assert_memory_equal(data + n - 12, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);

	assert_int_equal(smime_sst_read(data, n, out, &err), 0);
	assert_int_equal(sk_X509_num(out), 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(X509_cmp(sk_X509_value(in, i), sk_X509_value(out, i)), 0);
	alias = X509_alias_get0(sk_X509_value(out, 1), &alen);
	assert_non_null(alias);
	assert_int_equal(alen, (int)strlen("Zürich ☺"));
	assert_memory_equal(alias, "Zürich ☺", alen);
	assert_null(X509_alias_get0(sk_X509_value(out, 0), &alen));

	/* Writing what was read gives the same bytes. */
	assert_int_equal(smime_sst_write(bio2, out, &err), 0);
	n2 = BIO_get_mem_data(bio2, &data2);
	assert_int_equal(n, n2);
	assert_memory_equal(data, data2, n);

	BIO_free(bio);
	BIO_free(bio2);
	sk_X509_pop_free(in, X509_free);
	sk_X509_pop_free(out, X509_free);
}

static void
test_write_empty_and_usage(void **state)
{
	STACK_OF(X509) *in = sk_X509_new_null(), *out = sk_X509_new_null();
	BIO *bio = BIO_new(BIO_s_mem());
	struct smime_error err;
	unsigned char *data;
	long n;

	(void)state;
	assert_int_equal(smime_sst_write(bio, in, &err), 0);
	n = BIO_get_mem_data(bio, &data);
	assert_int_equal(n, 20);
	assert_int_equal(smime_sst_read(data, n, out, &err), 0);
	assert_int_equal(sk_X509_num(out), 0);
	assert_int_equal(smime_sst_write(NULL, in, &err), SMIME_E_USAGE);
	assert_int_equal(smime_sst_write(bio, NULL, &err), SMIME_E_USAGE);
	assert_int_equal(smime_sst_read(NULL, 8, out, &err), SMIME_E_USAGE);
	assert_int_equal(smime_sst_read(data, n, NULL, &err), SMIME_E_USAGE);
	BIO_free(bio);
	sk_X509_free(in);
	sk_X509_free(out);
}

/* Upper-case hex SHA-1 of cert into out[41]. */
static void
sha1_hex(X509 *cert, char out[41])
{
	unsigned char md[20];
	unsigned int n, i;

	X509_digest(cert, EVP_sha1(), md, &n);
	for (i = 0; i < 20; i++)
		snprintf(out + 2 * i, 3, "%02X", md[i]);
}

/*
 * The real stores in shared/corpus/sst yield exactly the certificates
 * their .expected.txt lists, in file order.
 */
static void
test_real_stores(void **state)
{
	static const struct {
		const char *name;
		int certs;
	} rows[] = {
		{ "windows-update-root-2025-08-29", 507 },
		{ "windows-update-roots-2021-10-01", 434 },
		{ "windows-update-disallowedcert-2025-09-05", 95 },
		{ "windows-update-pinrules-2022-05-29", 12 },
	};
	const char *shared = tu_shared();
	char path[4096], line[4096], hex[41];
	size_t i;

	(void)state;
	if (shared == NULL)
		TU_SKIP("no shared/ folder beside the source tree");
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		STACK_OF(X509) *certs = sk_X509_new_null();
		struct smime_error err;
		unsigned char *data;
		size_t len;
		FILE *f;
		int k = 0;

		snprintf(path, sizeof(path), "%s/corpus/sst/%s.sst", shared, rows[i].name);
		assert_non_null(data = tu_read_file(path, &len));
		if (smime_sst_read(data, len, certs, &err) != 0)
			fail_msg("%s: %s", rows[i].name, err.message);
		assert_int_equal(sk_X509_num(certs), rows[i].certs);

		snprintf(path, sizeof(path), "%s/corpus/sst/%s.expected.txt", shared,
		    rows[i].name);
		assert_non_null(f = fopen(path, "r"));
		while (fgets(line, sizeof(line), f) != NULL) {
			if (line[0] == '#' || line[0] == '\n')
				continue;
			assert_true(k < sk_X509_num(certs));
			sha1_hex(sk_X509_value(certs, k), hex);
			if (strncmp(line, hex, 40) != 0)
				fail_msg("%s: cert %d is %s, expected %.40s", rows[i].name,
				    k, hex, line);
			k++;
		}
		fclose(f);
		assert_int_equal(k, rows[i].certs);

		/* Every prefix of the smallest real store fails cleanly. */
		if (rows[i].certs == 12) {
			size_t cut;

			for (cut = 0; cut < len; cut += 97) {
				STACK_OF(X509) *none = sk_X509_new_null();

				assert_int_equal(smime_sst_read(data, cut, none, &err),
				    SMIME_E_INPUT);
				sk_X509_free(none);
			}
		}
		/* Round trip through the writer keeps every certificate. */
		{
			BIO *bio = BIO_new(BIO_s_mem());
			STACK_OF(X509) *again = sk_X509_new_null();
			unsigned char *w;
			long wn;
			int j;

			assert_int_equal(smime_sst_write(bio, certs, &err), 0);
			wn = BIO_get_mem_data(bio, &w);
			assert_int_equal(smime_sst_read(w, wn, again, &err), 0);
			assert_int_equal(sk_X509_num(again), rows[i].certs);
			for (j = 0; j < rows[i].certs; j++)
				assert_int_equal(X509_cmp(sk_X509_value(certs, j),
				    sk_X509_value(again, j)), 0);
			sk_X509_pop_free(again, X509_free);
			BIO_free(bio);
		}
		sk_X509_pop_free(certs, X509_free);
		free(data);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_read_accepts),
		cmocka_unit_test(test_read_rejects),
		cmocka_unit_test(test_read_every_truncation),
		cmocka_unit_test(test_write_round_trip),
		cmocka_unit_test(test_write_empty_and_usage),
		cmocka_unit_test(test_real_stores),
	};

	return cmocka_run_group_tests_name("sst", tests, NULL, NULL);
}

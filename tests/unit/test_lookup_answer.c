/*
 * Unit tests of cli/lookup_answer.c: the reader of smimed's lookup answers.
 * One table: a real answer made from a fresh PKI, then each row changes it
 * (or replaces it) and says what the reader must give.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* Before cmocka, whose fail() macro would rename cli.h's fail(). */
#include "cli.h"
#include "testutil.h"

/* The PKI of every row: a root, the issuing CA below it, bob's certificates. */
static X509 *root, *issuing, *enc, *sig, *dual;

static char *
b64(const unsigned char *d, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);

	assert_non_null(s);
	EVP_EncodeBlock((unsigned char *)s, d, (int)n);
	return s;
}

/* The object the lookup gives for a certificate (as server/api_lookup.c writes it). */
static json_t *
cert_obj(X509 *x, const char *purpose)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	char fp[65], *s, *pem = NULL;
	BIO *b = BIO_new(BIO_s_mem());
	long pl;
	json_t *o;

	assert_true(n > 0);
	assert_true(PEM_write_bio_X509(b, x));
	pl = BIO_get_mem_data(b, &pem);
	smime_cert_fingerprint(x, fp);
	s = b64(der, (size_t)n);
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s%,s:s}", "serial", "0123456789ABCDEF", "purpose",
	    purpose, "sha256", fp, "not_before", "2026-01-01T00:00:00Z", "not_after",
	    "2027-01-01T00:00:00Z", "pem", pem, (size_t)pl, "der", s);
	assert_non_null(o);
	free(s);
	OPENSSL_free(der);
	BIO_free(b);
	return o;
}

static json_t *
answer(void)
{
	return json_pack("{s:s,s:o,s:[o],s:[o]}", "email", "bob@example.org", "encryption",
	    cert_obj(enc, "encryption"), "signing", cert_obj(sig, "signing"), "chain",
	    cert_obj(issuing, "ca"));
}

static int
setup(void **state)
{
	EVP_PKEY *kr = tu_key("p256"), *ki = tu_key("p256"), *k1 = tu_key("rsa2048");
	EVP_PKEY *k2 = tu_key("p256"), *k3 = tu_key("p256");

	root = tu_cert(NULL, NULL, kr, "Root", NULL, SMIME_ROLE_CA, -1, 3650);
	issuing = tu_cert(root, kr, ki, "Issuing", NULL, SMIME_ROLE_CA, -1, 3650);
	enc = tu_cert(issuing, ki, k1, "bob", "bob@example.org", SMIME_ROLE_ENCRYPT, -1, 365);
	sig = tu_cert(issuing, ki, k2, "bob phone", "bob@example.org", SMIME_ROLE_SIGN, -1, 365);
	dual = tu_cert(issuing, ki, k3, "bob dual", "bob@example.org",
	    SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT, -1, 365);
	EVP_PKEY_free(kr);
	EVP_PKEY_free(ki);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	return 0;
}

static int
teardown(void **state)
{
	X509_free(root);
	X509_free(issuing);
	X509_free(enc);
	X509_free(sig);
	X509_free(dual);
	return 0;
}

/* --- the changes of the rows ----------------------------------------------- */

static json_t *
encryption(json_t *a)
{
	return json_object_get(a, "encryption");
}

static void
none(json_t *a)
{
}

static void
no_chain(json_t *a)
{
	json_object_del(a, "chain");
}

static void
nothing(json_t *a)
{
	json_object_set_new(a, "encryption", json_null());
	json_array_clear(json_object_get(a, "signing"));
	json_array_clear(json_object_get(a, "chain"));
}

static void
dual_in_both(json_t *a)
{
	json_object_set_new(a, "encryption", cert_obj(dual, "dual"));
	json_array_append_new(json_object_get(a, "signing"), cert_obj(dual, "dual"));
}

static void
dual_signing_only(json_t *a)
{
	json_object_set_new(a, "encryption", json_null());
	json_array_append_new(json_object_get(a, "signing"), cert_obj(dual, "dual"));
}

static void
extra_member(json_t *a)
{
	json_object_set_new(a, "future", json_pack("{s:i}", "x", 1));
	json_object_set_new(encryption(a), "future", json_true());
	json_object_set_new(encryption(a), "not_after", json_null());
}

static void
no_email(json_t *a)
{
	json_object_del(a, "email");
}

static void
email_number(json_t *a)
{
	json_object_set_new(a, "email", json_integer(1));
}

static void
email_other(json_t *a)
{
	json_object_set_new(a, "email", json_string("mallory@example.org"));
}

static void
email_longer(json_t *a)
{
	json_object_set_new(a, "email", json_string("bob@example.org.evil"));
}

static void
no_encryption(json_t *a)
{
	json_object_del(a, "encryption");
}

static void
encryption_string(json_t *a)
{
	json_object_set_new(a, "encryption", json_string("x"));
}

static void
no_signing(json_t *a)
{
	json_object_del(a, "signing");
}

static void
signing_object(json_t *a)
{
	json_object_set_new(a, "signing", json_object());
}

static void
chain_null(json_t *a)
{
	json_object_set_new(a, "chain", json_null());
}

static void
signing_item_string(json_t *a)
{
	json_array_append_new(json_object_get(a, "signing"), json_string("MIIB"));
}

static void
no_der(json_t *a)
{
	json_object_del(encryption(a), "der");
}

static void
der_number(json_t *a)
{
	json_object_set_new(encryption(a), "der", json_integer(48));
}

static void
der_empty(json_t *a)
{
	json_object_set_new(encryption(a), "der", json_string(""));
}

static void
serial_number(json_t *a)
{
	json_object_set_new(encryption(a), "serial", json_integer(1));
}

static void
pem_null(json_t *a)
{
	json_object_set_new(encryption(a), "pem", json_null());
}

static void
time_number(json_t *a)
{
	json_object_set_new(encryption(a), "not_before", json_integer(1700000000));
}

/* Replace the der of the encryption certificate by f(old). */
static void
edit_der(json_t *a, void (*f)(char *s, size_t n))
{
	json_t *e = encryption(a);
	char *s = strdup(json_string_value(json_object_get(e, "der")));

	assert_non_null(s);
	f(s, strlen(s));
	json_object_set_new(e, "der", json_string(s));
	free(s);
}

static void
star(char *s, size_t n)
{
	s[n / 2] = '*';
}

static void
url_safe(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '+' || s[i] == '/')
			s[i] = s[i] == '+' ? '-' : '_';
}

static void
cut_one(char *s, size_t n)
{
	s[n - 1] = '\0';
}

static void
pad_inside(char *s, size_t n)
{
	s[4] = '=';
}

static void
der_bad_char(json_t *a)
{
	edit_der(a, star);
}

static void
der_url_safe(json_t *a)
{
	edit_der(a, url_safe);
}

static void
der_short(json_t *a)
{
	edit_der(a, cut_one);
}

static void
der_pad_inside(json_t *a)
{
	edit_der(a, pad_inside);
}

static void
der_newline(json_t *a)
{
	json_t *e = encryption(a);
	const char *d = json_string_value(json_object_get(e, "der"));
	char *s = malloc(strlen(d) + 2);

	assert_non_null(s);
	memcpy(s, d, 64);
	s[64] = '\n';
	strcpy(s + 65, d + 64);
	json_object_set_new(e, "der", json_string(s));
	free(s);
}

static void
der_of(json_t *a, const unsigned char *d, size_t n)
{
	char *s = b64(d, n);

	json_object_set_new(encryption(a), "der", json_string(s));
	free(s);
}

/* "MA==" decodes to one 0x30 whose last character carries non-zero pad bits as "MB==". */
static void
der_pad_bits(json_t *a)
{
	json_object_set_new(encryption(a), "der", json_string("MB=="));
}

static void
der_integer(json_t *a)
{
	static const unsigned char d[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };

	der_of(a, d, sizeof(d));
}

static void
der_trailing(json_t *a)
{
	unsigned char *der = NULL, *d;
	int n = i2d_X509(enc, &der);

	d = malloc((size_t)n + 1);
	assert_non_null(d);
	memcpy(d, der, (size_t)n);
	d[n] = 0;
	der_of(a, d, (size_t)n + 1);
	free(d);
	OPENSSL_free(der);
}

static void
der_pkcs7(json_t *a)
{
	static const unsigned char d[] = { 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
		0x07, 0x02 };

	der_of(a, d, sizeof(d));
}

static void
der_large(json_t *a)
{
	size_t n = 70000;
	unsigned char *d = calloc(1, n);

	assert_non_null(d);
	d[0] = 0x30;
	der_of(a, d, n);
	free(d);
}

static void
sha_wrong(json_t *a)
{
	json_object_set_new(encryption(a), "sha256", json_string(
	    "0000000000000000000000000000000000000000000000000000000000000000"));
}

static void
sha_upper(json_t *a)
{
	char fp[65];

	smime_cert_fingerprint(enc, fp);
	for (char *p = fp; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	json_object_set_new(encryption(a), "sha256", json_string(fp));
}

static void
encryption_ca(json_t *a)
{
	json_object_set_new(a, "encryption", cert_obj(issuing, "encryption"));
}

static void
signing_ca(json_t *a)
{
	json_array_append_new(json_object_get(a, "signing"), cert_obj(root, "signing"));
}

static void
chain_leaf(json_t *a)
{
	json_array_append_new(json_object_get(a, "chain"), cert_obj(enc, "ca"));
}

static void
chain_root(json_t *a)
{
	json_array_append_new(json_object_get(a, "chain"), cert_obj(root, "ca"));
}

static void
many(json_t *a)
{
	json_t *s = json_object_get(a, "signing");

	/* 1 + 62 + 1 = 64 is allowed; one more is not. */
	while (json_array_size(s) < 62)
		json_array_append_new(s, cert_obj(sig, "signing"));
}

static void
too_many(json_t *a)
{
	many(a);
	json_array_append_new(json_object_get(a, "signing"), cert_obj(sig, "signing"));
}

/* --- the table ----------------------------------------------------------- */

struct row {
	const char *name;
	void (*change)(json_t *a);  /* of the real answer; NULL: raw is the answer */
	const char *raw;
	const char *address;
	int rc;
	const char *message;        /* a part of the error's message */
	int certs, chain;
};

static const struct row rows[] = {
	{ "the real answer", none, NULL, "bob@example.org", 0, NULL, 1, 1 },
	{ "asked in other letter case", none, NULL, "Bob@Example.ORG", 0, NULL, 1, 1 },
	{ "no address to compare", email_other, NULL, NULL, 0, NULL, 1, 1 },
	{ "without chain (older smimed)", no_chain, NULL, "bob@example.org", 0, NULL, 1, 0 },
	{ "nothing for it", nothing, NULL, "bob@example.org", 0, NULL, 0, 0 },
	{ "dual in both: taken once", dual_in_both, NULL, "bob@example.org", 0, NULL, 1, 1 },
	{ "a dual signing certificate is a candidate", dual_signing_only, NULL,
	  "bob@example.org", 0, NULL, 1, 1 },
	{ "members not named are ignored, a null time", extra_member, NULL, "bob@example.org", 0,
	  NULL, 1, 1 },
	{ "sha256 in upper case", sha_upper, NULL, "bob@example.org", 0, NULL, 1, 1 },
	{ "a self-signed root in the chain", chain_root, NULL, "bob@example.org", 0, NULL, 1, 2 },
	{ "64 certificates", many, NULL, "bob@example.org", 0, NULL, 1, 1 },

	{ "empty", NULL, "", "bob@example.org", SMIME_E_INPUT, "not JSON", 0, 0 },
	{ "truncated", NULL, "{\"email\": \"bob@example.org\", \"encryption\": ",
	  "bob@example.org", SMIME_E_INPUT, "not JSON", 0, 0 },
	{ "a name twice", NULL,
	  "{\"email\":\"bob@example.org\",\"email\":\"bob@example.org\",\"encryption\":null,"
	  "\"signing\":[]}", "bob@example.org", SMIME_E_INPUT, "duplicate", 0, 0 },
	{ "an array", NULL, "[]", "bob@example.org", SMIME_E_INPUT, "not a JSON object", 0, 0 },
	{ "a NUL in a string", NULL, "{\"email\":\"bob\\u0000@example.org\"}", "bob@example.org",
	  SMIME_E_INPUT, "not JSON", 0, 0 },
	{ "no email", no_email, NULL, "bob@example.org", SMIME_E_INPUT, "email: missing", 0, 0 },
	{ "email a number", email_number, NULL, "bob@example.org", SMIME_E_INPUT,
	  "email: not a string", 0, 0 },
	{ "email of another", email_other, NULL, "bob@example.org", SMIME_E_INPUT,
	  "email: the answer is about another address", 0, 0 },
	{ "email longer", email_longer, NULL, "bob@example.org", SMIME_E_INPUT,
	  "email: the answer is about another address", 0, 0 },
	{ "no encryption", no_encryption, NULL, "bob@example.org", SMIME_E_INPUT,
	  "encryption: missing", 0, 0 },
	{ "encryption a string", encryption_string, NULL, "bob@example.org", SMIME_E_INPUT,
	  "encryption: neither an object nor null", 0, 0 },
	{ "no signing", no_signing, NULL, "bob@example.org", SMIME_E_INPUT, "signing: missing",
	  0, 0 },
	{ "signing an object", signing_object, NULL, "bob@example.org", SMIME_E_INPUT,
	  "signing: not an array", 0, 0 },
	{ "chain null", chain_null, NULL, "bob@example.org", SMIME_E_INPUT,
	  "chain: not an array", 0, 0 },
	{ "a signing item that is a string", signing_item_string, NULL, "bob@example.org",
	  SMIME_E_INPUT, "signing[1]: not an object", 0, 0 },
	{ "no der", no_der, NULL, "bob@example.org", SMIME_E_INPUT, "encryption.der: missing",
	  0, 0 },
	{ "der a number", der_number, NULL, "bob@example.org", SMIME_E_INPUT,
	  "encryption.der: not a string", 0, 0 },
	{ "der empty", der_empty, NULL, "bob@example.org", SMIME_E_INPUT, "encryption.der: empty",
	  0, 0 },
	{ "serial a number", serial_number, NULL, "bob@example.org", SMIME_E_INPUT,
	  "encryption.serial: not a string", 0, 0 },
	{ "pem null", pem_null, NULL, "bob@example.org", SMIME_E_INPUT,
	  "encryption.pem: not a string", 0, 0 },
	{ "a time as a number", time_number, NULL, "bob@example.org", SMIME_E_INPUT,
	  "encryption.not_before: neither a string nor null", 0, 0 },
	{ "der with a character outside base64", der_bad_char, NULL, "bob@example.org",
	  SMIME_E_INPUT, "outside the alphabet of RFC 4648 4", 0, 0 },
	{ "der in the URL-safe alphabet", der_url_safe, NULL, "bob@example.org", SMIME_E_INPUT,
	  "outside the alphabet of RFC 4648 4", 0, 0 },
	{ "der with a line feed", der_newline, NULL, "bob@example.org", SMIME_E_INPUT,
	  "not base64", 0, 0 },
	{ "der one character short", der_short, NULL, "bob@example.org", SMIME_E_INPUT,
	  "not a multiple of 4", 0, 0 },
	{ "der with padding inside", der_pad_inside, NULL, "bob@example.org", SMIME_E_INPUT,
	  "outside the alphabet", 0, 0 },
	{ "der with non-zero pad bits", der_pad_bits, NULL, "bob@example.org", SMIME_E_INPUT,
	  "non-zero pad bits (RFC 4648 3.5)", 0, 0 },
	{ "der of a SEQUENCE of an INTEGER", der_integer, NULL, "bob@example.org", SMIME_E_INPUT,
	  "not a DER certificate", 0, 0 },
	{ "der with an octet after the certificate", der_trailing, NULL, "bob@example.org",
	  SMIME_E_INPUT, "not a DER certificate", 0, 0 },
	{ "der of an OID (PKCS#7's start)", der_pkcs7, NULL, "bob@example.org", SMIME_E_INPUT,
	  "not a DER certificate", 0, 0 },
	{ "der of 70000 octets", der_large, NULL, "bob@example.org", SMIME_E_INPUT,
	  "longer than the base64 of a certificate of 64 KiB", 0, 0 },
	{ "a sha256 that is another's", sha_wrong, NULL, "bob@example.org", SMIME_E_INPUT,
	  "encryption.sha256: not the SHA-256 of its certificate", 0, 0 },
	{ "a CA as the encryption certificate", encryption_ca, NULL, "bob@example.org",
	  SMIME_E_INPUT, "encryption: a CA certificate, not a recipient's", 0, 0 },
	{ "a CA among the signing certificates", signing_ca, NULL, "bob@example.org",
	  SMIME_E_INPUT, "signing[1]: a CA certificate", 0, 0 },
	{ "a leaf in the chain", chain_leaf, NULL, "bob@example.org", SMIME_E_INPUT,
	  "chain[1]: not a CA certificate", 0, 0 },
	{ "65 certificates", too_many, NULL, "bob@example.org", SMIME_E_INPUT,
	  "65 certificates, more than the 64 allowed", 0, 0 },
};

static void
test_rows(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		STACK_OF(X509) *certs = sk_X509_new_null(), *chain = sk_X509_new_null();
		struct smime_error err = { 0 };
		char *text = NULL;
		const char *data = r->raw;
		size_t len;
		int rc;

		if (r->change != NULL) {
			json_t *a = answer();
			r->change(a);
			text = json_dumps(a, JSON_COMPACT);
			json_decref(a);
			assert_non_null(text);
			data = text;
		}
		len = strlen(data);
		rc = lookup_parse_answer(data, len, r->address, certs, chain, &err);
		if (rc != r->rc || (r->message != NULL && strstr(err.message, r->message) == NULL) ||
		    sk_X509_num(certs) != r->certs || sk_X509_num(chain) != r->chain)
			fail_msg("%s: rc %d (wanted %d), \"%s\", %d certificates and %d in the chain "
			    "(wanted %d and %d)", r->name, rc, r->rc, err.message, sk_X509_num(certs),
			    sk_X509_num(chain), r->certs, r->chain);
		sk_X509_pop_free(certs, X509_free);
		sk_X509_pop_free(chain, X509_free);
		free(text);
	}
}

/* The candidates are what the answer offers: the encryption certificate first. */
static void
test_candidates(void **state)
{
	STACK_OF(X509) *certs = sk_X509_new_null(), *chain = sk_X509_new_null();
	struct smime_error err;
	json_t *a = answer();
	char *text;

	dual_signing_only(a);
	json_object_set_new(a, "encryption", cert_obj(enc, "encryption"));
	text = json_dumps(a, JSON_COMPACT);
	assert_int_equal(lookup_parse_answer(text, strlen(text), "bob@example.org", certs, chain,
	    &err), 0);
	assert_int_equal(sk_X509_num(certs), 2);
	assert_int_equal(X509_cmp(sk_X509_value(certs, 0), enc), 0);
	assert_int_equal(X509_cmp(sk_X509_value(certs, 1), dual), 0);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0), issuing), 0);
	/* What the stacks held before stays, and is not taken from on a refusal. */
	json_object_set_new(a, "email", json_string("mallory@example.org"));
	free(text);
	text = json_dumps(a, JSON_COMPACT);
	assert_int_equal(lookup_parse_answer(text, strlen(text), "bob@example.org", certs, chain,
	    &err), SMIME_E_INPUT);
	assert_int_equal(sk_X509_num(certs), 2);
	assert_int_equal(sk_X509_num(chain), 1);
	free(text);
	json_decref(a);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(chain, X509_free);
}

/* An answer beyond LOOKUP_ANSWER_MAX is refused before it is parsed. */
static void
test_too_long(void **state)
{
	STACK_OF(X509) *certs = sk_X509_new_null(), *chain = sk_X509_new_null();
	struct smime_error err;
	static const char small[] = "{\"email\":\"a@b\",\"encryption\":null,\"signing\":[]}";
	size_t n = LOOKUP_ANSWER_MAX + 1;
	char *big = malloc(n);

	assert_non_null(big);
	memset(big, ' ', n);
	assert_int_equal(lookup_parse_answer(big, n, NULL, certs, chain, &err), SMIME_E_INPUT);
	assert_non_null(strstr(err.message, "longer than 1048576 octets"));
	/* Not NUL-terminated: the reader keeps to len. */
	memcpy(big, small, sizeof(small) - 1);
	assert_int_equal(lookup_parse_answer(big, sizeof(small) - 1, NULL, certs, chain, &err), 0);
	free(big);
	sk_X509_free(certs);
	sk_X509_free(chain);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_candidates),
		cmocka_unit_test(test_too_long),
	};

	return cmocka_run_group_tests_name("lookup_answer", tests, setup, teardown);
}

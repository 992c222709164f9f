/*
 * Unit tests of lib/bag.c: loading certificates and keys from every
 * container, told apart by content.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "testutil.h"

/* A throw-away PKI shared by the tests of this file. */
struct pki {
	EVP_PKEY *ca_key, *rsa, *ec;
	X509 *ca, *rsa_cert, *ec_cert;
};

static int
setup(void **state)
{
	struct pki *p = calloc(1, sizeof(*p));

	p->ca_key = tu_key("p256");
	p->ca = tu_cert(NULL, NULL, p->ca_key, "Bag CA", NULL, SMIME_ROLE_CA, -1, 365);
	p->rsa = tu_key("rsa2048");
	p->rsa_cert = tu_cert(p->ca, p->ca_key, p->rsa, "RSA user", "rsa@example.org",
	    SMIME_ROLE_ENCRYPT, -1, 365);
	p->ec = tu_key("p256");
	p->ec_cert = tu_cert(p->ca, p->ca_key, p->ec, "EC user", "ec@example.org",
	    SMIME_ROLE_SIGN, -1, 365);
	*state = p;
	return 0;
}

static int
teardown(void **state)
{
	struct pki *p = *state;

	EVP_PKEY_free(p->ca_key);
	EVP_PKEY_free(p->rsa);
	EVP_PKEY_free(p->ec);
	X509_free(p->ca);
	X509_free(p->rsa_cert);
	X509_free(p->ec_cert);
	free(p);
	return 0;
}

/* An input assembled in a memory BIO. */
struct input {
	unsigned char *data;
	size_t len;
};

static struct input
take(BIO *bio)
{
	struct input in;
	unsigned char *d;
	long n = BIO_get_mem_data(bio, &d);

	in.data = malloc(n + 1);
	if (n > 0)
		memcpy(in.data, d, n);
	in.len = n;
	BIO_free(bio);
	return in;
}

static unsigned char *
der_of_p7(PKCS7 *p7, int *len_r)
{
	unsigned char *der = NULL;

	*len_r = i2d_PKCS7(p7, &der);
	assert_true(*len_r > 0);
	return der;
}

/* A certs-only PKCS#7 of the given certificates. */
static PKCS7 *
certs_only(X509 *a, X509 *b)
{
	PKCS7 *p7 = PKCS7_new();

	assert_true(PKCS7_set_type(p7, NID_pkcs7_signed));
	assert_true(PKCS7_content_new(p7, NID_pkcs7_data));
	if (a != NULL)
		assert_true(PKCS7_add_certificate(p7, a));
	if (b != NULL)
		assert_true(PKCS7_add_certificate(p7, b));
	return p7;
}

/* The kinds of input of the table below. */
enum kind {
	PEM_CERT, PEM_CHAIN, PEM_CERT_KEY, PEM_KEY_CERT, PEM_ENC_P8, PEM_TRAD_RSA,
	PEM_TRAD_EC, PEM_TRAD_ENC, PEM_BAG_ATTRS, PEM_TRUSTED, PEM_P7, PEM_P12,
	PEM_CRL_AND_CERT, DER_CERT, DER_CERT_NL, DER_P7, BER_P7, DER_P12, DER_P8,
	SST, CRLF_PEM,
	/* negative rows */
	EMPTY, GARBAGE_TEXT, GARBAGE_BIN, MAIL, MBOX, DER_TRUNC, DER_TRAILING,
	DER_BOOLEAN, DER_INT_5, PEM_ONLY_CRL, PEM_BAD_B64, PEM_NO_END, PEM_BAD_CERT,
	PEM_GOOD_THEN_BAD, P7_DATA, P7_NO_CERTS, PEM_ENC_P8_WRONG, PEM_TRAD_ENC_WRONG,
	PEM_ENC_P8_NOPW, DER_P12_WRONG, SST_BROKEN, LYING_LEN,
	N_KINDS
};

static const struct {
	enum kind kind;
	const char *password;
	int code;
	int certs, keys, tied;
	enum smime_format format;
	const char *msg;	/* part of the error message */
} rows[] = {
	{ PEM_CERT, NULL, 0, 1, 0, 0, SMIME_FORMAT_PEM, NULL },
	{ PEM_CHAIN, NULL, 0, 3, 0, 0, SMIME_FORMAT_PEM, NULL },
	{ PEM_CERT_KEY, NULL, 0, 1, 1, 1, SMIME_FORMAT_PEM, NULL },
	{ PEM_KEY_CERT, NULL, 0, 2, 1, 1, SMIME_FORMAT_PEM, NULL },
	{ PEM_ENC_P8, "pw", 0, 1, 1, 1, SMIME_FORMAT_PEM, NULL },
	{ PEM_TRAD_RSA, NULL, 0, 1, 1, 1, SMIME_FORMAT_PEM, NULL },
	{ PEM_TRAD_EC, NULL, 0, 1, 1, 1, SMIME_FORMAT_PEM, NULL },
	{ PEM_TRAD_ENC, "pw", 0, 1, 1, 1, SMIME_FORMAT_PEM, NULL },
	{ PEM_BAG_ATTRS, NULL, 0, 1, 1, 1, SMIME_FORMAT_PEM, NULL },
	{ PEM_TRUSTED, NULL, 0, 1, 0, 0, SMIME_FORMAT_PEM, NULL },
	{ PEM_P7, NULL, 0, 2, 0, 0, SMIME_FORMAT_PEM, NULL },
	{ PEM_P12, "pw", 0, 2, 1, 1, SMIME_FORMAT_PEM, NULL },
	{ PEM_CRL_AND_CERT, NULL, 0, 1, 0, 0, SMIME_FORMAT_PEM, NULL },
	{ DER_CERT, NULL, 0, 1, 0, 0, SMIME_FORMAT_DER, NULL },
	{ DER_CERT_NL, NULL, 0, 1, 0, 0, SMIME_FORMAT_DER, NULL },
	{ DER_P7, NULL, 0, 2, 0, 0, SMIME_FORMAT_PKCS7, NULL },
	{ BER_P7, NULL, 0, 2, 0, 0, SMIME_FORMAT_PKCS7, NULL },
	{ DER_P12, "pw", 0, 2, 1, 1, SMIME_FORMAT_PKCS12, NULL },
	{ DER_P8, NULL, 0, 0, 1, 0, SMIME_FORMAT_DER, NULL },
	{ SST, NULL, 0, 3, 0, 0, SMIME_FORMAT_SST, NULL },
	{ CRLF_PEM, NULL, 0, 1, 1, 1, SMIME_FORMAT_PEM, NULL },

	{ EMPTY, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "empty input" },
	{ GARBAGE_TEXT, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "not a certificate container" },
	{ GARBAGE_BIN, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "not a certificate container" },
	{ MAIL, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "looks like a mail message" },
	{ MBOX, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "looks like a mail message" },
	{ DER_TRUNC, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "outer SEQUENCE" },
	{ DER_TRAILING, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "after the outer SEQUENCE" },
	{ DER_BOOLEAN, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "starts with tag 1" },
	{ DER_INT_5, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "INTEGER 5 is neither" },
	{ PEM_ONLY_CRL, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "no certificate, PKCS#7" },
	{ PEM_BAD_B64, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "PEM block 1: malformed" },
	{ PEM_NO_END, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "PEM block 1: malformed" },
	{ PEM_BAD_CERT, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "not an X.509 certificate" },
	{ PEM_GOOD_THEN_BAD, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "PEM block 2" },
	{ P7_DATA, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "holds no certificates" },
	{ P7_NO_CERTS, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "holds no certificates" },
	{ PEM_ENC_P8_WRONG, "wrong", SMIME_E_CRYPTO, 0, 0, 0, 0, "wrong or missing password" },
	{ PEM_TRAD_ENC_WRONG, "wrong", SMIME_E_CRYPTO, 0, 0, 0, 0, "wrong or missing" },
	{ PEM_ENC_P8_NOPW, NULL, SMIME_E_CRYPTO, 0, 0, 0, 0, "wrong or missing password" },
	{ DER_P12_WRONG, "wrong", SMIME_E_CRYPTO, 0, 0, 0, 0,
	    "PKCS#12: wrong password (MAC verification failed)" },
	{ SST_BROKEN, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "SST: " },
	{ LYING_LEN, NULL, SMIME_E_INPUT, 0, 0, 0, 0, "outer SEQUENCE" },
};

static struct input
make_input(struct pki *p, enum kind kind)
{
	BIO *bio = BIO_new(BIO_s_mem());
	unsigned char *der = NULL;
	struct input in;
	PKCS7 *p7;
	X509_CRL *crl;
	int n;

	switch (kind) {
	case PEM_CERT:
	case PEM_BAD_CERT:
		PEM_write_bio_X509(bio, p->rsa_cert);
		if (kind == PEM_BAD_CERT) {
			BIO_free(bio);
			bio = BIO_new(BIO_s_mem());
			BIO_puts(bio, "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n"
			    "-----END CERTIFICATE-----\n");
		}
		break;
	case PEM_CHAIN:
		PEM_write_bio_X509(bio, p->rsa_cert);
		PEM_write_bio_X509(bio, p->ec_cert);
		PEM_write_bio_X509(bio, p->ca);
		break;
	case PEM_CERT_KEY:
	case CRLF_PEM:
		PEM_write_bio_X509(bio, p->rsa_cert);
		PEM_write_bio_PrivateKey(bio, p->rsa, NULL, NULL, 0, NULL, NULL);
		if (kind == CRLF_PEM) {
			struct input lf = take(bio);
			size_t i;

			bio = BIO_new(BIO_s_mem());
			for (i = 0; i < lf.len; i++) {
				if (lf.data[i] == '\n')
					BIO_write(bio, "\r", 1);
				BIO_write(bio, lf.data + i, 1);
			}
			free(lf.data);
		}
		break;
	case PEM_KEY_CERT:
		PEM_write_bio_PrivateKey(bio, p->ec, NULL, NULL, 0, NULL, NULL);
		PEM_write_bio_X509(bio, p->ca);
		PEM_write_bio_X509(bio, p->ec_cert);
		break;
	case PEM_ENC_P8:
	case PEM_ENC_P8_WRONG:
	case PEM_ENC_P8_NOPW:
		PEM_write_bio_PKCS8PrivateKey(bio, p->ec, EVP_aes_256_cbc(), "pw", 2,
		    NULL, NULL);
		if (kind == PEM_ENC_P8)
			PEM_write_bio_X509(bio, p->ec_cert);
		break;
	case PEM_TRAD_RSA:
		PEM_write_bio_X509(bio, p->rsa_cert);
		PEM_write_bio_PrivateKey_traditional(bio, p->rsa, NULL, NULL, 0, NULL,
		    NULL);
		break;
	case PEM_TRAD_EC:
		PEM_write_bio_PrivateKey_traditional(bio, p->ec, NULL, NULL, 0, NULL,
		    NULL);
		PEM_write_bio_X509(bio, p->ec_cert);
		break;
	case PEM_TRAD_ENC:
	case PEM_TRAD_ENC_WRONG:
		PEM_write_bio_PrivateKey_traditional(bio, p->rsa, EVP_des_ede3_cbc(),
		    (unsigned char *)"pw", 2, NULL, NULL);
		if (kind == PEM_TRAD_ENC)
			PEM_write_bio_X509(bio, p->rsa_cert);
		break;
	case PEM_BAG_ATTRS:
		BIO_puts(bio, "Bag Attributes\n    friendlyName: x\n"
		    "subject=CN = EC user\n\nissuer=CN = Bag CA\n");
		PEM_write_bio_X509(bio, p->ec_cert);
		BIO_puts(bio, "Bag Attributes\n    localKeyID: 01 02\nKey Attributes: "
		    "<No Attributes>\n");
		PEM_write_bio_PrivateKey(bio, p->ec, NULL, NULL, 0, NULL, NULL);
		break;
	case PEM_TRUSTED: {
		X509 *x = X509_dup(p->ca);

		X509_add1_trust_object(x, OBJ_nid2obj(NID_email_protect));
		X509_alias_set1(x, (const unsigned char *)"trusted", -1);
		PEM_write_bio_X509_AUX(bio, x);
		X509_free(x);
		break;
	}
	case PEM_P7:
		p7 = certs_only(p->rsa_cert, p->ca);
		PEM_write_bio_PKCS7(bio, p7);
		PKCS7_free(p7);
		break;
	case PEM_P12:
	case DER_P12:
	case DER_P12_WRONG: {
		BIO *p12 = BIO_new(BIO_s_mem());
		STACK_OF(X509) *extra = sk_X509_new_null();
		struct smime_error err;
		struct input raw;

		sk_X509_push(extra, p->ca);
		assert_int_equal(smime_pkcs12_write(p12, &p->ec, &p->ec_cert, 1, extra,
		    "pw", SMIME_P12_AES, "ec", &err), 0);
		sk_X509_free(extra);
		raw = take(p12);
		if (kind == PEM_P12)
			PEM_write_bio(bio, "PKCS12", "", raw.data, (long)raw.len);
		else
			BIO_write(bio, raw.data, (int)raw.len);
		free(raw.data);
		break;
	}
	case PEM_CRL_AND_CERT:
	case PEM_ONLY_CRL:
		crl = X509_CRL_new();
		X509_CRL_set_issuer_name(crl, X509_get_subject_name(p->ca));
		X509_CRL_sign(crl, p->ca_key, EVP_sha256());
		PEM_write_bio_X509_CRL(bio, crl);
		X509_CRL_free(crl);
		if (kind == PEM_CRL_AND_CERT)
			PEM_write_bio_X509(bio, p->ca);
		break;
	case DER_CERT:
	case DER_CERT_NL:
	case DER_TRUNC:
	case DER_TRAILING:
		n = i2d_X509(p->rsa_cert, &der);
		if (kind == DER_TRUNC)
			n -= 1;
		BIO_write(bio, der, n);
		if (kind == DER_CERT_NL)
			BIO_puts(bio, "\r\n");
		if (kind == DER_TRAILING)
			BIO_puts(bio, "junk");
		break;
	case DER_P7:
	case BER_P7:
		p7 = certs_only(p->rsa_cert, p->ca);
		der = der_of_p7(p7, &n);
		PKCS7_free(p7);
		if (kind == DER_P7) {
			BIO_write(bio, der, n);
		} else {
			/* BER: the outer SEQUENCE re-framed with an indefinite
			 * length and an end-of-contents octet pair. */
			const unsigned char *q = der;
			long clen;
			int tag, xclass;

			ASN1_get_object(&q, &clen, &tag, &xclass, n);
			BIO_write(bio, "\x30\x80", 2);
			BIO_write(bio, q, (int)clen);
			BIO_write(bio, "\0\0", 2);
		}
		break;
	case P7_DATA:
		p7 = PKCS7_new();
		PKCS7_set_type(p7, NID_pkcs7_data);
		der = der_of_p7(p7, &n);
		BIO_write(bio, der, n);
		PKCS7_free(p7);
		break;
	case P7_NO_CERTS:
		p7 = certs_only(NULL, NULL);
		der = der_of_p7(p7, &n);
		BIO_write(bio, der, n);
		PKCS7_free(p7);
		break;
	case DER_P8: {
		PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(p->ec);

		n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
		BIO_write(bio, der, n);
		PKCS8_PRIV_KEY_INFO_free(p8);
		break;
	}
	case SST:
	case SST_BROKEN: {
		STACK_OF(X509) *certs = sk_X509_new_null();
		struct smime_error err;

		sk_X509_push(certs, p->ca);
		sk_X509_push(certs, p->rsa_cert);
		sk_X509_push(certs, p->ec_cert);
		assert_int_equal(smime_sst_write(bio, certs, &err), 0);
		sk_X509_free(certs);
		if (kind == SST_BROKEN)
			BIO_puts(bio, "trailing");
		break;
	}
	case EMPTY:
		break;
	case GARBAGE_TEXT:
		BIO_puts(bio, "just some words\nand more words\n");
		break;
	case GARBAGE_BIN:
		BIO_write(bio, "\x04\x03\x01\x02\x03", 5);
		break;
	case MAIL:
		BIO_puts(bio, "Received: from x by y\r\n  (continued)\r\nFrom: a@b.example\r\n"
		    "Subject: cert\r\nContent-Type: application/pkcs7-mime\r\n\r\n"
		    "-----BEGIN CERTIFICATE-----\r\n");
		break;
	case MBOX:
		BIO_puts(bio, "From a@b.example Mon Jan  1 00:00:00 2024\nX: y\n\nbody\n");
		break;
	case DER_BOOLEAN:
		BIO_write(bio, "\x30\x03\x01\x01\xff", 5);
		break;
	case DER_INT_5:
		BIO_write(bio, "\x30\x03\x02\x01\x05", 5);
		break;
	case PEM_BAD_B64:
		BIO_puts(bio, "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n"
		    "-----END CERTIFICATE-----\n");
		break;
	case PEM_NO_END:
		BIO_puts(bio, "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n");
		break;
	case PEM_GOOD_THEN_BAD:
		PEM_write_bio_X509(bio, p->ca);
		BIO_puts(bio, "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n"
		    "-----END CERTIFICATE-----\n");
		break;
	case LYING_LEN:
		/* SEQUENCE claiming 2^31 bytes. */
		BIO_write(bio, "\x30\x84\x7f\xff\xff\xff\x30\x00", 8);
		break;
	case N_KINDS:
		break;
	}
	OPENSSL_free(der);
	in = take(bio);
	return in;
}

static void
assert_ties(struct smime_bag *bag, size_t want)
{
	size_t i, tied = 0;

	for (i = 0; i < bag->n_keys; i++) {
		if (bag->key_cert[i] < 0)
			continue;
		assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(bag->certs,
		    bag->key_cert[i])), bag->keys[i]), 1);
		tied++;
	}
	assert_int_equal(tied, want);
}

static void
test_load_table(void **state)
{
	struct pki *p = *state;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct input in = make_input(p, rows[i].kind);
		struct smime_bag *bag = smime_bag_new();
		struct smime_error err;
		int rc;

		smime_error_clear(&err);
		rc = smime_bag_load(bag, in.data, in.len, rows[i].password, &err);
		if (rc != rows[i].code)
			fail_msg("row %zu (kind %d): rc %d, want %d: %s", i, rows[i].kind,
			    rc, rows[i].code, err.message);
		if (rc != 0) {
			if (strstr(err.message, rows[i].msg) == NULL)
				fail_msg("row %zu: message \"%s\" lacks \"%s\"", i,
				    err.message, rows[i].msg);
			assert_null(strchr(err.message, '\n'));
			/* A failed load leaves the bag as it was. */
			assert_int_equal(sk_X509_num(bag->certs), 0);
			assert_int_equal(bag->n_keys, 0);
		} else {
			if (sk_X509_num(bag->certs) != rows[i].certs ||
			    (int)bag->n_keys != rows[i].keys)
				fail_msg("row %zu: %d certs %zu keys, want %d %d", i,
				    sk_X509_num(bag->certs), bag->n_keys, rows[i].certs,
				    rows[i].keys);
			assert_ties(bag, rows[i].tied);
			assert_int_equal(bag->format, rows[i].format);
		}
		smime_bag_free(bag);
		free(in.data);
	}
}

/* Trust settings of a TRUSTED CERTIFICATE are OpenSSL's, not ours. */
static void
test_trusted_certificate_is_plain(void **state)
{
	struct pki *p = *state;
	struct input in = make_input(p, PEM_TRUSTED);
	struct smime_bag *bag = smime_bag_new();
	struct smime_error err;
	X509 *x;
	int len;

	assert_int_equal(smime_bag_load(bag, in.data, in.len, NULL, &err), 0);
	x = sk_X509_value(bag->certs, 0);
	assert_int_equal(X509_cmp(x, p->ca), 0);
	assert_int_equal(X509_check_trust(x, NID_email_protect, 0), X509_TRUST_UNTRUSTED);
	assert_non_null(X509_alias_get0(x, &len));
	smime_bag_free(bag);
	free(in.data);
}

/* A key loaded before its certificate is tied when the certificate comes. */
static void
test_tie_across_loads(void **state)
{
	struct pki *p = *state;
	struct input key = make_input(p, DER_P8), cert = make_input(p, PEM_CHAIN);
	struct smime_bag *bag = smime_bag_new();
	struct smime_error err;

	assert_int_equal(smime_bag_load(bag, key.data, key.len, NULL, &err), 0);
	assert_int_equal(bag->n_keys, 1);
	assert_int_equal(bag->key_cert[0], -1);
	assert_int_equal(smime_bag_load(bag, cert.data, cert.len, NULL, &err), 0);
	assert_int_equal(bag->key_cert[0], 1); /* the EC user, second in the chain */
	assert_int_equal(bag->format, SMIME_FORMAT_PEM);
	/* A failing load after them changes nothing. */
	assert_int_equal(smime_bag_load(bag, (const unsigned char *)"xx", 2, NULL, &err),
	    SMIME_E_INPUT);
	assert_int_equal(sk_X509_num(bag->certs), 3);
	assert_int_equal(bag->n_keys, 1);
	smime_bag_free(bag);
	free(key.data);
	free(cert.data);
}

static void
test_limits_and_usage(void **state)
{
	struct pki *p = *state;
	struct smime_bag *bag = smime_bag_new();
	struct smime_error err;
	unsigned char *big;
	BIO *bio;
	struct input many;
	int i;

	/* Whole input above SMIME_CERT_MAX_INPUT. */
	big = calloc(1, SMIME_CERT_MAX_INPUT + 1);
	big[0] = '-';
	assert_int_equal(smime_bag_load(bag, big, SMIME_CERT_MAX_INPUT + 1, NULL, &err),
	    SMIME_E_INPUT);
	assert_non_null(strstr(err.message, "exceeds the limit"));
	free(big);

	/* One certificate more than SMIME_CERT_MAX_ITEMS. */
	bio = BIO_new(BIO_s_mem());
	for (i = 0; i < SMIME_CERT_MAX_ITEMS + 1; i++)
		PEM_write_bio_X509(bio, p->ca);
	many = take(bio);
	assert_int_equal(smime_bag_load(bag, many.data, many.len, NULL, &err),
	    SMIME_E_INPUT);
	assert_non_null(strstr(err.message, "more than 4096"));
	assert_int_equal(sk_X509_num(bag->certs), 0);
	free(many.data);

	assert_int_equal(smime_bag_load(NULL, (const unsigned char *)"x", 1, NULL, &err),
	    SMIME_E_USAGE);
	assert_int_equal(smime_bag_load(bag, NULL, 5, NULL, &err), SMIME_E_USAGE);
	assert_int_equal(smime_bag_load(bag, NULL, 0, NULL, &err), SMIME_E_INPUT);
	smime_bag_free(bag);
	smime_bag_free(NULL);
}

/* Every prefix of a PEM chain and a DER PKCS#7 fails or loads a subset. */
static void
test_every_truncation(void **state)
{
	struct pki *p = *state;
	enum kind kinds[] = { PEM_CERT_KEY, DER_P7, BER_P7, SST };
	size_t k, cut;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct input in = make_input(p, kinds[k]);

		for (cut = 0; cut < in.len; cut += 13) {
			struct smime_bag *bag = smime_bag_new();
			unsigned char *copy = malloc(cut + 1);

			memcpy(copy, in.data, cut);
			/* A PEM file cut after its first block loads that block;
			 * everything else must fail. */
			if (smime_bag_load(bag, copy, cut, NULL, NULL) == 0)
				assert_int_equal(kinds[k], PEM_CERT_KEY);
			smime_bag_free(bag);
			free(copy);
		}
		free(in.data);
	}
}

/* Public certificate files: the number of certificates and keys each holds. */
static void
test_shared_files(void **state)
{
	static const struct {
		const char *path;
		const char *password;
		int code, certs, keys, tied;
		enum smime_format format;
	} files[] = {
		{ "corpus/covert-content-attacks/manager@bigcorporation.crt", NULL, 0, 1, 0, 0,
		    SMIME_FORMAT_PEM },
		{ "corpus/covert-content-attacks/manager@bigcorporation.pem", NULL, 0, 0, 1, 0,
		    SMIME_FORMAT_PEM },
		{ "corpus/covert-content-attacks/manager@bigcorporation.pfx", "test12345678",
		    0, 2, 1, 1, SMIME_FORMAT_PKCS12 },
		{ "corpus/covert-content-attacks/manager@bigcorporation.pfx", "wrong",
		    SMIME_E_CRYPTO, 0, 0, 0, 0 },
		{ "corpus/johnny-you-are-fired/assets-certificates-eve@bigcorporation.crt",
		    NULL, 0, 1, 0, 0, SMIME_FORMAT_PEM },
		{ "corpus/johnny-you-are-fired/assets-certificates-intermediate_ca.crt", NULL,
		    0, 1, 0, 0, SMIME_FORMAT_PEM },
		{ "corpus/johnny-you-are-fired/globalsign-root-r3.pem", NULL, 0, 1, 0, 0,
		    SMIME_FORMAT_PEM },
		{ "corpus/mimekit/StartComCertificationAuthority.crt", NULL, 0, 1, 0, 0,
		    SMIME_FORMAT_PEM },
		{ "corpus/real-clients-hiraoka/ca_smime.crt", NULL, 0, 1, 0, 0, SMIME_FORMAT_PEM },
		{ "corpus/real-clients-hiraoka/smime-1.crt", NULL, 0, 1, 0, 0, SMIME_FORMAT_PEM },
		{ "corpus/real-clients-hiraoka/smime-2.key", NULL, 0, 0, 1, 0, SMIME_FORMAT_PEM },
		{ "corpus/real-clients-hiraoka/smime-2-secret.pfx", "smime2", 0, 2, 1, 1,
		    SMIME_FORMAT_PKCS12 },
		{ "corpus/real-clients-simple-java-mail/actalis-authentication-root-ca.pem",
		    NULL, 0, 1, 0, 0, SMIME_FORMAT_PEM },
		{ "corpus/real-clients-simple-java-mail/smime_test_user.p7b", NULL, 0, 1, 0, 0,
		    SMIME_FORMAT_PEM },
		{ "corpus/real-clients-simple-java-mail/smime_test_user.pem.openssl.crt", NULL,
		    0, 1, 0, 0, SMIME_FORMAT_PEM },
		{ "corpus/real-clients-simple-java-mail/smime_test_user.pem.standard.crt",
		    NULL, 0, 1, 0, 0, SMIME_FORMAT_PEM },
		{ "corpus/real-clients-simple-java-mail/smime_test_user.key", "letmein", 0, 0,
		    1, 0, SMIME_FORMAT_PEM },
		{ "corpus/real-clients-simple-java-mail/smime_test_user.key", "wrong",
		    SMIME_E_CRYPTO, 0, 0, 0, 0 },
		{ "corpus/real-clients-simple-java-mail/smime_keystore.pkcs12", "letmein", 0,
		    2, 2, 2, SMIME_FORMAT_PKCS12 },
		{ "corpus/thunderbird-smime/TestCA.pem", NULL, 0, 1, 0, 0, SMIME_FORMAT_PEM },
		{ "corpus/thunderbird-smime/Bob.p12", "nss", 0, 2, 1, 1, SMIME_FORMAT_PKCS12 },
		{ "vectors/pyca-cryptography/ca/ca.pem", NULL, 0, 1, 0, 0, SMIME_FORMAT_PEM },
		{ "vectors/pyca-cryptography/ca/ca_key.pem", NULL, 0, 0, 1, 0, SMIME_FORMAT_PEM },
		{ "vectors/pyca-cryptography/pkcs7/isrg.pem", NULL, 0, 1, 0, 0, SMIME_FORMAT_PEM },
		{ "vectors/pyca-cryptography/pkcs7/amazon-roots.der", NULL, 0, 2, 0, 0,
		    SMIME_FORMAT_PKCS7 },
		{ "vectors/pyca-cryptography/pkcs7/amazon-roots.p7b", NULL, 0, 2, 0, 0,
		    SMIME_FORMAT_PKCS7 },
		{ "vectors/pyca-cryptography/pkcs7/enveloped-aes-256-cbc.pem", NULL,
		    SMIME_E_INPUT, 0, 0, 0, 0 },
		{ "vectors/pyca-cryptography/pkcs12/no-name-no-pwd.p12", NULL, 0, 3, 1, 1,
		    SMIME_FORMAT_PKCS12 },
		{ "vectors/rfc4134/CarlRSASelf.cer", NULL, 0, 1, 0, 0, SMIME_FORMAT_DER },
		{ "vectors/rfc4134/DianeDSSSignByCarlInherit.cer", NULL, 0, 1, 0, 0,
		    SMIME_FORMAT_DER },
		{ "vectors/rfc4134/BobPrivRSAEncrypt.pri", NULL, 0, 0, 1, 0, SMIME_FORMAT_DER },
		{ "vectors/rfc4134/4.11.bin", NULL, 0, 2, 0, 0, SMIME_FORMAT_PKCS7 },
		{ "vectors/rfc4134/4.7.bin", NULL, 0, 1, 0, 0, SMIME_FORMAT_PKCS7 },
		{ "vectors/rfc4134/5.1.bin", NULL, SMIME_E_INPUT, 0, 0, 0, 0 },
		{ "vectors/rfc4134/CarlRSACRLForAll.crl", NULL, SMIME_E_INPUT, 0, 0, 0, 0 },
		{ "vectors/rfc4134/ExContent.bin", NULL, SMIME_E_INPUT, 0, 0, 0, 0 },
		{ "vectors/rfc9216/alice.sign.crt", NULL, 0, 1, 0, 0, SMIME_FORMAT_PEM },
		{ "vectors/rfc9216/ca.25519.key", NULL, 0, 0, 1, 0, SMIME_FORMAT_PEM },
		{ "vectors/rfc9216/alice.p12.pem", "alice", 0, 3, 2, 2, SMIME_FORMAT_PEM },
		{ "vectors/rfc9216/dana.p12.pem", "dana", 0, 3, 2, 2, SMIME_FORMAT_PEM },
		{ "vectors/rfc9216/dana.p12.pem", "alice", SMIME_E_CRYPTO, 0, 0, 0, 0 },
		{ "vectors/autocrypt-protected-headers/bob.p12", "bob", 0, 2, 1, 1,
		    SMIME_FORMAT_PEM },
		{ "vectors/thunderbird/TestCA.pem", NULL, 0, 1, 0, 0, SMIME_FORMAT_PEM },
		{ "corpus/sst/windows-update-pinrules-2022-05-29.sst", NULL, 0, 12, 0, 0,
		    SMIME_FORMAT_SST },
		{ "corpus/thunderbird-smime/alice.env.eml", NULL, SMIME_E_INPUT, 0, 0, 0, 0 },
		{ "vectors/rfc4134/4.8.eml", NULL, SMIME_E_INPUT, 0, 0, 0, 0 },
	};
	const char *shared = tu_shared();
	char path[4096];
	size_t i;

	(void)state;
	if (shared == NULL)
		TU_SKIP("no shared/ folder beside the source tree");
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct smime_bag *bag = smime_bag_new();
		struct smime_error err;
		unsigned char *data;
		size_t len;
		int rc;

		snprintf(path, sizeof(path), "%s/%s", shared, files[i].path);
		if ((data = tu_read_file(path, &len)) == NULL) {
			/* Only the .eml rows may name files that moved. */
			fail_msg("%s: missing", files[i].path);
		}
		smime_error_clear(&err);
		rc = smime_bag_load(bag, data, len, files[i].password, &err);
		if (rc != files[i].code)
			fail_msg("%s: rc %d: %s", files[i].path, rc, err.message);
		if (rc == 0) {
			if (sk_X509_num(bag->certs) != files[i].certs ||
			    (int)bag->n_keys != files[i].keys)
				fail_msg("%s: %d certs %zu keys, want %d %d", files[i].path,
				    sk_X509_num(bag->certs), bag->n_keys, files[i].certs,
				    files[i].keys);
			assert_ties(bag, files[i].tied);
			assert_int_equal(bag->format, files[i].format);
		}
		smime_bag_free(bag);
		free(data);
	}
}

/* Key files with their certificates, loaded one after the other, tie. */
static void
test_shared_key_and_cert(void **state)
{
	static const struct {
		const char *key, *cert, *password;
	} pairs[] = {
		{ "corpus/real-clients-hiraoka/smime-1.key",
		    "corpus/real-clients-hiraoka/smime-1.crt", NULL },
		{ "corpus/covert-content-attacks/manager@bigcorporation.pem",
		    "corpus/covert-content-attacks/manager@bigcorporation.crt", NULL },
		{ "corpus/real-clients-simple-java-mail/smime_test_user.key",
		    "corpus/real-clients-simple-java-mail/smime_test_user.pem.standard.crt",
		    "letmein" },
		{ "vectors/rfc9216/carlos.sign.key", "vectors/rfc9216/carlos.sign.crt", NULL },
		{ "vectors/rfc9216/dana.encrypt.key", "vectors/rfc9216/dana.encrypt.crt", NULL },
		{ "vectors/pyca-cryptography/ca/rsa_key.pem",
		    "vectors/pyca-cryptography/ca/rsa_ca.pem", NULL },
	};
	const char *shared = tu_shared();
	char path[4096];
	size_t i, j;

	(void)state;
	if (shared == NULL)
		TU_SKIP("no shared/ folder beside the source tree");
	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct smime_bag *bag = smime_bag_new();
		struct smime_error err;

		for (j = 0; j < 2; j++) {
			unsigned char *data;
			size_t len;

			snprintf(path, sizeof(path), "%s/%s", shared,
			    j == 0 ? pairs[i].key : pairs[i].cert);
			assert_non_null(data = tu_read_file(path, &len));
			if (smime_bag_load(bag, data, len, pairs[i].password, &err) != 0)
				fail_msg("%s: %s", path, err.message);
			free(data);
		}
		assert_int_equal(bag->n_keys, 1);
		assert_int_equal(bag->key_cert[0], 0);
		assert_ties(bag, 1);
		smime_bag_free(bag);
	}
}

/* Hostile inputs from other projects' fuzz corpora: no crash, clean errors. */
static void
test_shared_fuzz_inputs(void **state)
{
	static const char *const dirs[] = { "corpus/fuzz-openssl/x509",
	    "corpus/fuzz-openssl/cms" };
	const char *shared = tu_shared();
	char path[4096];
	size_t i;
	int seen = 0;

	(void)state;
	if (shared == NULL)
		TU_SKIP("no shared/ folder beside the source tree");
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		struct dirent *de;
		DIR *dir;

		snprintf(path, sizeof(path), "%s/%s", shared, dirs[i]);
		if ((dir = opendir(path)) == NULL)
			continue;
		while ((de = readdir(dir)) != NULL) {
			struct smime_bag *bag = smime_bag_new();
			struct smime_error err;
			unsigned char *data;
			size_t len;
			int rc;

			snprintf(path, sizeof(path), "%s/%s/%s", shared, dirs[i], de->d_name);
			if (de->d_name[0] == '.' || (data = tu_read_file(path, &len)) == NULL) {
				smime_bag_free(bag);
				continue;
			}
			rc = smime_bag_load(bag, data, len, NULL, &err);
			if (rc != 0) {
				assert_true(rc == SMIME_E_INPUT || rc == SMIME_E_CRYPTO);
				assert_true(strlen(err.message) > 0);
				assert_int_equal(sk_X509_num(bag->certs), 0);
			}
			seen++;
			smime_bag_free(bag);
			free(data);
		}
		closedir(dir);
	}
	assert_true(seen > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_table),
		cmocka_unit_test(test_trusted_certificate_is_plain),
		cmocka_unit_test(test_tie_across_loads),
		cmocka_unit_test(test_limits_and_usage),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_shared_files),
		cmocka_unit_test(test_shared_key_and_cert),
		cmocka_unit_test(test_shared_fuzz_inputs),
	};

	return cmocka_run_group_tests_name("cert", tests, setup, teardown);
}

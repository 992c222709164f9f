/*
 * Unit tests of server/signer.c, server/ca.c and server/ocsp.c.
 *
 * One signer (in a fresh folder) and four CAs are made for the whole run:
 *   root-a (ec-p256)  ->  issuing-a (rsa-3072)
 *   root-b (ec-p384)  ->  issuing-b (ec-p256), whose OCSP answers a
 *                         delegated responder (ocsp-b) signs
 * Every table has negative rows: tampered, truncated, wrong key, weak key,
 * wrong id, expired.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "testutil.h"

#include "ca.h"
#include "ocsp.h"
#include "signer.h"
#include "store.h"

#define DAY 86400
#define BASE "http://ca.example.test:8080"

static char *dir;

/*
 * ca_issue, then the certificate as a relying party sees it: encoded and
 * read back (what leaves the service is the DER; the object ca_issue
 * returns holds a CSR's key in encoded form only).
 */
static int
issue(struct signer *sg, const struct ca_issue_req *req, X509 **cert_r, EVP_PKEY **key_r,
    struct smime_error *err)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int rc = ca_issue(sg, req, cert_r, key_r, err), len;

	if (rc != 0)
		return rc;
	assert_true((len = i2d_X509(*cert_r, &der)) > 0);
	X509_free(*cert_r);
	p = der;
	assert_non_null(*cert_r = d2i_X509(NULL, &p, len));
	assert_true(p == der + len);
	OPENSSL_free(der);
	return 0;
}
static struct signer *sg;
static int64_t now;
static struct store_ca root_a, issuing_a, root_b, issuing_b;
static X509 *x_root_a, *x_issuing_a, *x_root_b, *x_issuing_b, *x_ocsp_b;
static EVP_PKEY *k_rsa, *k_p256, *k_p384, *k_ed, *k_ocsp_b;

/* Records are freed here rather than by store.c, which brings the whole store. */
static void
ca_clear(struct store_ca *ca)
{
	free(ca->key_alg);
	free(ca->cert_der);
	free(ca->key_wrapped);
	free(ca->crl_der);
	memset(ca, 0, sizeof(*ca));
}

static void
cert_clear(struct store_cert *c)
{
	free(c->subject);
	free(c->email);
	free(c->der);
	memset(c, 0, sizeof(*c));
}

static void
free_string(char *s)
{
	OPENSSL_free(s);
}

static X509 *
der_cert(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);

	assert_non_null(x);
	return x;
}

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	FILE *f;

	unlink(path);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* A delegated OCSP responder certificate for issuing-b, signed through the signer. */
static X509 *
mk_responder(X509 *issuer, const char *issuer_id, EVP_PKEY *key)
{
	static const struct {
		int nid;
		const char *value;
	} exts[] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature" },
		{ NID_ext_key_usage, "OCSPSigning" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid:always" },
		{ NID_id_pkix_OCSP_noCheck, "ignored" },
	};
	X509 *c = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	struct smime_error err;
	size_t i;

	ASN1_INTEGER_set(serial, 4242);
	X509_set_serialNumber(c, serial);
	ASN1_INTEGER_free(serial);
	X509_set_version(c, X509_VERSION_3);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"OCSP responder", -1, -1, 0);
	X509_set_subject_name(c, name);
	X509_NAME_free(name);
	X509_set_issuer_name(c, X509_get_subject_name(issuer));
	X509_gmtime_adj(X509_getm_notBefore(c), -DAY);
	X509_gmtime_adj(X509_getm_notAfter(c), 30L * DAY);
	X509_set_pubkey(c, key);
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, c, NULL, NULL, 0);
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
		assert_non_null(ext);
		assert_true(X509_add_ext(c, ext, -1));
		X509_EXTENSION_free(ext);
	}
	assert_int_equal(signer_sign_cert(sg, issuer_id, c, &err), 0);
	return c;
}

static int
group_setup(void **state)
{
	struct smime_error err;
	unsigned char *w = NULL;
	size_t wl = 0;
	char path[4096];

	(void)state;
	dir = tu_tmpdir();
	now = (int64_t)time(NULL);
	snprintf(path, sizeof(path), "%s/master.key", dir);
	if (signer_open(path, true, &sg, &err) != 0 ||
	    ca_create(sg, BASE, "root-a", "ec-p256", "Test Root A", "smimed tests", "DE", 3650, NULL,
	    false, now, &root_a, &err) != 0 ||
	    ca_create(sg, BASE, "issuing-a", "rsa-3072", "Test Issuing A", "smimed tests", "DE", 1825,
	    &root_a, true, now, &issuing_a, &err) != 0 ||
	    ca_create(sg, BASE, "root-b", "ec-p384", "Test Root B", NULL, NULL, 3650, NULL, false, now,
	    &root_b, &err) != 0 ||
	    ca_create(sg, BASE, "issuing-b", "ec-p256", "Test Issuing B", "", "", 1825, &root_b,
	    true, now, &issuing_b, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.message);
		return -1;
	}
	x_root_a = der_cert(root_a.cert_der, root_a.cert_len);
	x_issuing_a = der_cert(issuing_a.cert_der, issuing_a.cert_len);
	x_root_b = der_cert(root_b.cert_der, root_b.cert_len);
	x_issuing_b = der_cert(issuing_b.cert_der, issuing_b.cert_len);
	k_rsa = tu_key("rsa2048");
	k_p256 = tu_key("p256");
	k_p384 = tu_key("p384");
	k_ed = tu_key("ed25519");
	k_ocsp_b = tu_key("p256");
	x_ocsp_b = mk_responder(x_issuing_b, "issuing-b", k_ocsp_b);
	if (signer_adopt(sg, "ocsp-b", k_ocsp_b, &w, &wl, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.message);
		return -1;
	}
	free(w);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	ca_clear(&root_a);
	ca_clear(&issuing_a);
	ca_clear(&root_b);
	ca_clear(&issuing_b);
	X509_free(x_root_a);
	X509_free(x_issuing_a);
	X509_free(x_root_b);
	X509_free(x_issuing_b);
	X509_free(x_ocsp_b);
	EVP_PKEY_free(k_rsa);
	EVP_PKEY_free(k_p256);
	EVP_PKEY_free(k_p384);
	EVP_PKEY_free(k_ed);
	EVP_PKEY_free(k_ocsp_b);
	signer_free(sg);
	tu_rmrf(dir);
	return 0;
}

/* ---------------- the signer ---------------- */

enum mk_kind { MK_NONE, MK_FILE, MK_DIR, MK_LINK };

struct master_row {
	const char *name;
	enum mk_kind kind;
	size_t size;
	mode_t mode;
	bool create;
	int want;
};

static void
test_master_key(void **state)
{
	static const struct master_row rows[] = {
		{ "created when missing", MK_NONE, 0, 0, true, 0 },
		{ "an existing key", MK_FILE, 32, 0600, false, 0 },
		{ "an existing key, create", MK_FILE, 32, 0600, true, 0 },
		{ "0400 is narrower", MK_FILE, 32, 0400, false, 0 },
		/* negative rows */
		{ "missing without create", MK_NONE, 0, 0, false, SMIME_E_NOTFOUND },
		{ "31 octets", MK_FILE, 31, 0600, false, SMIME_E_INPUT },
		{ "33 octets", MK_FILE, 33, 0600, true, SMIME_E_INPUT },
		{ "empty", MK_FILE, 0, 0600, true, SMIME_E_INPUT },
		{ "mode 0644", MK_FILE, 32, 0644, false, SMIME_E_POLICY },
		{ "mode 0640", MK_FILE, 32, 0640, false, SMIME_E_POLICY },
		{ "mode 0604", MK_FILE, 32, 0604, false, SMIME_E_POLICY },
		{ "mode 0700", MK_FILE, 32, 0700, false, SMIME_E_POLICY },
		{ "mode 0660", MK_FILE, 32, 0660, true, SMIME_E_POLICY },
		{ "a folder", MK_DIR, 0, 0700, true, SMIME_E_IO },
		{ "a symbolic link", MK_LINK, 32, 0600, false, SMIME_E_IO },
	};
	unsigned char key[64], before[32];
	char *d = tu_tmpdir(), path[4096], target[4096];
	struct signer *s;
	struct smime_error err;
	struct stat st;
	unsigned char *data;
	size_t i, len;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(path, sizeof(path), "%s/m%zu.key", d, i);
		RAND_bytes(key, sizeof(key));
		memcpy(before, key, sizeof(before));
		switch (rows[i].kind) {
		case MK_FILE:
			write_file(path, key, rows[i].size, rows[i].mode);
			break;
		case MK_DIR:
			assert_int_equal(mkdir(path, rows[i].mode), 0);
			break;
		case MK_LINK:
			snprintf(target, sizeof(target), "%s/target%zu", d, i);
			write_file(target, key, rows[i].size, rows[i].mode);
			assert_int_equal(symlink(target, path), 0);
			break;
		case MK_NONE:
			break;
		}
		s = NULL;
		rc = signer_open(path, rows[i].create, &s, &err);
		if (rc != rows[i].want)
			fail_msg("%s: got %d (%s), want %d", rows[i].name, rc, err.message,
			    rows[i].want);
		assert_int_equal(rc != 0, s == NULL);
		signer_free(s);
		if (rc != 0)
			continue;
		/* The key file is 32 octets, 0600 (or what it was), untouched when it existed. */
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, 32);
		if (rows[i].kind == MK_NONE)
			assert_int_equal(st.st_mode & 07777, 0600);
		data = tu_read_file(path, &len);
		assert_non_null(data);
		if (rows[i].kind == MK_FILE)
			assert_memory_equal(data, before, 32);
		free(data);
	}
	signer_free(NULL);
	tu_rmrf(d);
}

/* The signer keeps the same master key across opens: what one wraps, the other unwraps. */
struct wrap_row {
	const char *name;
	int op;            /* 0 as is, 1 flip a byte, 2 truncate to len, 3 append a byte */
	size_t at;         /* byte flipped, or length kept (from the end when op 2 and at > len) */
	const char *id;    /* key id it is loaded under */
	bool other_master;
	int want;
};

static void
test_wrap(void **state)
{
	static const struct wrap_row rows[] = {
		{ "round trip", 0, 0, "k1", false, 0 },
		/* negative rows */
		{ "magic flipped", 1, 0, "k1", false, SMIME_E_INPUT },
		{ "nonce flipped", 1, 5, "k1", false, SMIME_E_CRYPTO },
		{ "ciphertext flipped", 1, 20, "k1", false, SMIME_E_CRYPTO },
		{ "tag flipped", 1, (size_t)-1, "k1", false, SMIME_E_CRYPTO },
		{ "one octet short", 2, (size_t)-1, "k1", false, SMIME_E_CRYPTO },
		{ "header only", 2, 32, "k1", false, SMIME_E_INPUT },
		{ "empty", 2, 0, "k1", false, SMIME_E_INPUT },
		{ "one octet more", 3, 0, "k1", false, SMIME_E_CRYPTO },
		{ "another key id (AAD)", 0, 0, "k2", false, SMIME_E_CRYPTO },
		{ "another master key", 0, 0, "k1", true, SMIME_E_CRYPTO },
		{ "empty key id", 0, 0, "", false, SMIME_E_USAGE },
	};
	char *d = tu_tmpdir(), path[4096], path2[4096];
	struct signer *s1 = NULL, *s2 = NULL, *s3 = NULL, *target;
	struct smime_error err;
	EVP_PKEY *pub = NULL, *p1, *p2, *pubonly;
	unsigned char *w = NULL, *w2 = NULL, *buf;
	size_t wl = 0, wl2 = 0, len, i;
	int rc;

	(void)state;
	snprintf(path, sizeof(path), "%s/master.key", d);
	snprintf(path2, sizeof(path2), "%s/other.key", d);
	assert_int_equal(signer_open(path, true, &s1, &err), 0);
	assert_int_equal(signer_open(path, false, &s2, &err), 0);
	assert_int_equal(signer_open(path2, true, &s3, &err), 0);
	assert_int_equal(signer_generate(s1, "k1", "ec-p256", &pub, &w, &wl, &err), 0);
	assert_non_null(pub);
	assert_true(wl > 32);
	assert_memory_equal(w, "SMK1", 4);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		buf = malloc(wl + 1);
		memcpy(buf, w, wl);
		len = wl;
		switch (rows[i].op) {
		case 1:
			buf[rows[i].at < wl ? rows[i].at : wl - 1] ^= 0x01;
			break;
		case 2:
			len = rows[i].at <= wl ? rows[i].at : wl - 1;
			break;
		case 3:
			buf[len++] = 0;
			break;
		}
		target = rows[i].other_master ? s3 : s2;
		rc = signer_load(target, rows[i].id, buf, len, &err);
		free(buf);
		if (rc != rows[i].want)
			fail_msg("%s: got %d (%s), want %d", rows[i].name, rc, err.message,
			    rows[i].want);
		if (rc == 0) {
			p1 = signer_public(s1, "k1");
			p2 = signer_public(s2, rows[i].id);
			assert_non_null(p2);
			assert_int_equal(EVP_PKEY_eq(p1, p2), 1);
			EVP_PKEY_free(p1);
			EVP_PKEY_free(p2);
		} else {
			assert_false(signer_has(target, "k2"));
		}
	}
	/* A load replaces; generate and adopt do not. */
	assert_int_equal(signer_load(s2, "k1", w, wl, &err), 0);
	assert_int_equal(signer_generate(s1, "k1", "ec-p256", &p1, &w2, &wl2, &err),
	    SMIME_E_EXISTS);
	assert_int_equal(signer_adopt(s1, "k1", k_p256, &w2, &wl2, &err), SMIME_E_EXISTS);
	assert_null(w2);
	assert_int_equal(signer_generate(s1, "k3", "dsa-1024", &p1, &w2, &wl2, &err),
	    SMIME_E_USAGE);
	assert_int_equal(signer_generate(s1, "k 3", "ec-p256", &p1, &w2, &wl2, &err),
	    SMIME_E_USAGE);
	/* Adopt takes RSA and NIST EC private keys only. */
	assert_int_equal(signer_adopt(s1, "ed", k_ed, &w2, &wl2, &err), SMIME_E_POLICY);
	pubonly = signer_public(s1, "k1");
	assert_int_equal(signer_adopt(s1, "pub", pubonly, &w2, &wl2, &err), SMIME_E_USAGE);
	EVP_PKEY_free(pubonly);
	assert_int_equal(signer_adopt(s1, "p384", k_p384, &w2, &wl2, &err), 0);
	assert_int_equal(signer_load(s2, "p384", w2, wl2, &err), 0);
	free(w2);
	assert_true(signer_has(s2, "p384"));
	/* Forget. */
	signer_forget(s2, "p384");
	assert_false(signer_has(s2, "p384"));
	assert_null(signer_public(s2, "p384"));
	signer_forget(s2, "never");
	assert_true(signer_has(s2, "k1"));

	EVP_PKEY_free(pub);
	free(w);
	signer_free(s1);
	signer_free(s2);
	signer_free(s3);
	tu_rmrf(d);
}

/* Each key signs with the digest S/MIME BR 7.1.3.2 names for it. */
static void
test_signer_digests(void **state)
{
	static const struct {
		const char *key_id;
		int want_nid;
	} rows[] = {
		{ "root-a", NID_ecdsa_with_SHA256 },
		{ "root-b", NID_ecdsa_with_SHA384 },
		{ "p521", NID_ecdsa_with_SHA512 },
		{ "issuing-a", NID_sha256WithRSAEncryption },
		/* negative row */
		{ "no-such-key", 0 },
	};
	struct smime_error err;
	EVP_PKEY *pub = NULL, *p521 = NULL;
	X509_CRL *crl;
	X509 *c;
	unsigned char *w = NULL;
	size_t wl = 0, i;
	int rc;

	(void)state;
	assert_int_equal(signer_generate(sg, "p521", "ec-p521", &p521, &w, &wl, &err), 0);
	free(w);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		c = tu_cert(NULL, NULL, k_p256, "skeleton", NULL, 0, 0, 1);
		crl = X509_CRL_new();
		X509_CRL_set_version(crl, X509_CRL_VERSION_2);
		X509_CRL_set_issuer_name(crl, X509_get_subject_name(c));
		X509_CRL_set1_lastUpdate(crl, X509_get0_notBefore(c));
		rc = signer_sign_cert(sg, rows[i].key_id, c, &err);
		if (rows[i].want_nid == 0) {
			assert_int_equal(rc, SMIME_E_NOTFOUND);
			assert_int_equal(signer_sign_crl(sg, rows[i].key_id, crl, &err),
			    SMIME_E_NOTFOUND);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(X509_get_signature_nid(c), rows[i].want_nid);
			pub = signer_public(sg, rows[i].key_id);
			assert_int_equal(X509_verify(c, pub), 1);
			assert_int_equal(signer_sign_crl(sg, rows[i].key_id, crl, &err), 0);
			assert_int_equal(X509_CRL_get_signature_nid(crl), rows[i].want_nid);
			assert_int_equal(X509_CRL_verify(crl, pub), 1);
			EVP_PKEY_free(pub);
		}
		X509_free(c);
		X509_CRL_free(crl);
	}
	EVP_PKEY_free(p521);
	signer_forget(sg, "p521");
}

/* ---------------- helpers for certificates ---------------- */

/* Verify leaf up to root; returns X509_V_OK or the error. */
static int
chain_verify(X509 *leaf, X509 *root, X509 *inter, const char *policy, int purpose,
    X509_CRL *crl)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	STACK_OF(X509_CRL) *crls = NULL;
	X509_VERIFY_PARAM *param;
	unsigned long flags = X509_V_FLAG_X509_STRICT;
	int ok, e;

	X509_STORE_add_cert(st, root);
	if (inter != NULL)
		sk_X509_push(untrusted, inter);
	assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, untrusted), 1);
	param = X509_STORE_CTX_get0_param(ctx);
	if (policy != NULL) {
		flags |= X509_V_FLAG_POLICY_CHECK | X509_V_FLAG_EXPLICIT_POLICY;
		X509_VERIFY_PARAM_add0_policy(param, OBJ_txt2obj(policy, 1));
	}
	if (crl != NULL) {
		flags |= X509_V_FLAG_CRL_CHECK;
		crls = sk_X509_CRL_new_null();
		sk_X509_CRL_push(crls, crl);
		X509_STORE_CTX_set0_crls(ctx, crls);
	}
	X509_VERIFY_PARAM_set_flags(param, flags);
	X509_VERIFY_PARAM_set_time(param, (time_t)now + 60);
	if (purpose != 0)
		X509_STORE_CTX_set_purpose(ctx, purpose);
	ok = X509_verify_cert(ctx);
	e = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	sk_X509_free(untrusted);
	sk_X509_CRL_free(crls);
	return ok == 1 ? X509_V_OK : (e != X509_V_OK ? e : -1);
}

static int64_t
tm_of(const ASN1_TIME *t)
{
	struct tm tm;

	assert_true(ASN1_TIME_to_tm(t, &tm));
	return (int64_t)timegm(&tm);
}

/* SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2 method 1). */
static void
ski_of(X509 *c, unsigned char out[20])
{
	unsigned int n = 0;

	assert_true(X509_pubkey_digest(c, EVP_sha1(), out, &n));
	assert_int_equal(n, 20);
}

/* The URI of an AIA access method, or NULL. */
static char *
aia_uri(X509 *c, int method)
{
	AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(c, NID_info_access, NULL, NULL);
	ACCESS_DESCRIPTION *ad;
	char *s = NULL;
	int i;

	for (i = 0; aia != NULL && i < sk_ACCESS_DESCRIPTION_num(aia); i++) {
		ad = sk_ACCESS_DESCRIPTION_value(aia, i);
		if (OBJ_obj2nid(ad->method) == method && ad->location->type == GEN_URI)
			s = strdup((const char *)ASN1_STRING_get0_data(
			    ad->location->d.uniformResourceIdentifier));
	}
	AUTHORITY_INFO_ACCESS_free(aia);
	return s;
}

static char *
crl_dp_uri(X509 *c)
{
	CRL_DIST_POINTS *dps = X509_get_ext_d2i(c, NID_crl_distribution_points, NULL, NULL);
	DIST_POINT *dp;
	GENERAL_NAME *gn;
	char *s = NULL;

	if (dps != NULL && sk_DIST_POINT_num(dps) == 1) {
		dp = sk_DIST_POINT_value(dps, 0);
		if (dp->distpoint != NULL && dp->distpoint->type == 0 &&
		    sk_GENERAL_NAME_num(dp->distpoint->name.fullname) == 1) {
			gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
			if (gn->type == GEN_URI)
				s = strdup((const char *)ASN1_STRING_get0_data(
				    gn->d.uniformResourceIdentifier));
		}
	}
	CRL_DIST_POINTS_free(dps);
	return s;
}

/* got (freed here) must be BASE/kind/id suffix. */
static void
check_url(char *got, const char *kind, const char *id, const char *suffix)
{
	char want[512];

	snprintf(want, sizeof(want), "%s/%s/%s%s", BASE, kind, id, suffix);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static bool
ext_critical(X509 *c, int nid)
{
	int i = X509_get_ext_by_NID(c, nid, -1);

	assert_true(i >= 0);
	return X509_EXTENSION_get_critical(X509_get_ext(c, i)) != 0;
}

/* The policy identifiers of c, as dotted text joined by spaces. */
static void
policies_of(X509 *c, char *out, size_t size)
{
	CERTIFICATEPOLICIES *cp = X509_get_ext_d2i(c, NID_certificate_policies, NULL, NULL);
	char oid[80];
	int i;

	out[0] = '\0';
	for (i = 0; cp != NULL && i < sk_POLICYINFO_num(cp); i++) {
		OBJ_obj2txt(oid, sizeof(oid), sk_POLICYINFO_value(cp, i)->policyid, 1);
		if (i > 0)
			strncat(out, " ", size - strlen(out) - 1);
		strncat(out, oid, size - strlen(out) - 1);
	}
	CERTIFICATEPOLICIES_free(cp);
}

/* The EKU OIDs of c, as short names joined by spaces. */
static void
eku_of(X509 *c, char *out, size_t size)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(c, NID_ext_key_usage, NULL, NULL);
	int i;

	out[0] = '\0';
	for (i = 0; eku != NULL && i < sk_ASN1_OBJECT_num(eku); i++) {
		if (i > 0)
			strncat(out, " ", size - strlen(out) - 1);
		strncat(out, OBJ_nid2sn(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i))),
		    size - strlen(out) - 1);
	}
	EXTENDED_KEY_USAGE_free(eku);
}

/* A PKCS#10 request for key asking for things the CA must ignore. */
static unsigned char *
mk_csr(EVP_PKEY *key, bool pem, size_t *len_r)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *ext;
	unsigned char *out = NULL, *p;
	BIO *bio;
	char *data;
	long n;
	int len, id = EVP_PKEY_get_base_id(key);

	X509_REQ_set_version(req, X509_REQ_VERSION_1);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"evil",
	    -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"Evil Corp",
	    -1, -1, 0);
	X509_REQ_set_subject_name(req, name);
	X509_NAME_free(name);
	X509_REQ_set_pubkey(req, key);
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
	sk_X509_EXTENSION_push(exts, ext);
	X509_REQ_add_extensions(req, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	assert_true(X509_REQ_sign(req, key, (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ?
	    NULL : EVP_sha256()) > 0);
	if (pem) {
		bio = BIO_new(BIO_s_mem());
		PEM_write_bio_X509_REQ(bio, req);
		n = BIO_get_mem_data(bio, &data);
		out = malloc((size_t)n);
		memcpy(out, data, (size_t)n);
		*len_r = (size_t)n;
		BIO_free(bio);
	} else {
		len = i2d_X509_REQ(req, NULL);
		out = malloc((size_t)len);
		p = out;
		i2d_X509_REQ(req, &p);
		*len_r = (size_t)len;
	}
	X509_REQ_free(req);
	return out;
}

/* ---------------- CA certificates ---------------- */

static void
check_ca_cert(X509 *c, X509 *issuer, const char *issuer_id, bool root, long pathlen,
    int days, const char *cn)
{
	unsigned char ski[20];
	const ASN1_OCTET_STRING *got_ski, *akid;
	BASIC_CONSTRAINTS *bc;
	char buf[256];
	int crit = -1;

	assert_int_equal(X509_get_version(c), X509_VERSION_3);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(issuer)), 0);
	X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, buf, sizeof(buf));
	assert_string_equal(buf, cn);
	bc = X509_get_ext_d2i(c, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_true(bc->ca);
	if (pathlen < 0)
		assert_null(bc->pathlen);
	else
		assert_int_equal(ASN1_INTEGER_get(bc->pathlen), pathlen);
	BASIC_CONSTRAINTS_free(bc);
	assert_true(ext_critical(c, NID_key_usage));
	assert_int_equal(X509_get_key_usage(c),
	    KU_KEY_CERT_SIGN | KU_CRL_SIGN | KU_DIGITAL_SIGNATURE);
	ski_of(c, ski);
	got_ski = X509_get0_subject_key_id(c);
	assert_non_null(got_ski);
	assert_int_equal(ASN1_STRING_length(got_ski), 20);
	assert_memory_equal(ASN1_STRING_get0_data(got_ski), ski, 20);
	assert_false(ext_critical(c, NID_subject_key_identifier));
	akid = X509_get0_authority_key_id(c);
	assert_non_null(akid);
	assert_int_equal(ASN1_OCTET_STRING_cmp(akid, X509_get0_subject_key_id(issuer)), 0);
	assert_null(X509_get0_authority_issuer(c));
	assert_null(X509_get0_authority_serial(c));
	assert_int_equal(tm_of(X509_get0_notBefore(c)), now);
	if (days > 0)
		assert_int_equal(tm_of(X509_get0_notAfter(c)) - now, (int64_t)days * DAY - 1);
	if (root) {
		/* S/MIME BR 7.1.2.1 (c), (d): no certificatePolicies, no EKU. */
		assert_int_equal(X509_get_ext_by_NID(c, NID_certificate_policies, -1), -1);
		assert_int_equal(X509_get_ext_by_NID(c, NID_ext_key_usage, -1), -1);
		assert_int_equal(X509_get_ext_by_NID(c, NID_crl_distribution_points, -1), -1);
		assert_int_equal(X509_check_issued(c, c), X509_V_OK);
	} else {
		eku_of(c, buf, sizeof(buf));
		assert_string_equal(buf, "emailProtection");
		policies_of(c, buf, sizeof(buf));
		assert_string_equal(buf, "2.23.140.1.5.1.3 2.23.140.1.5.1.2");
		check_url(crl_dp_uri(c), "crl", issuer_id, ".crl");
		check_url(aia_uri(c, NID_ad_ca_issuers), "ca", issuer_id, ".crt");
		/* No OCSP for CA certificates: the parent's CRL revokes them. */
		assert_null(aia_uri(c, NID_ad_OCSP));
	}
	assert_int_equal(X509_verify(c, X509_get0_pubkey(issuer)), 1);
}

static void
test_ca_create(void **state)
{
	struct smime_error err;
	struct store_ca short_root = { .key_alg = NULL }, sub = { .key_alg = NULL }, ghost;
	X509 *x_short, *x_sub;
	EVP_PKEY *pub;

	(void)state;
	check_ca_cert(x_root_a, x_root_a, "root-a", true, -1, 3650, "Test Root A");
	check_ca_cert(x_issuing_a, x_root_a, "root-a", false, 0, 1825, "Test Issuing A");
	check_ca_cert(x_root_b, x_root_b, "root-b", true, -1, 3650, "Test Root B");
	check_ca_cert(x_issuing_b, x_root_b, "root-b", false, 0, 1825, "Test Issuing B");
	assert_int_equal(X509_get_signature_nid(x_issuing_a), NID_ecdsa_with_SHA256);
	assert_int_equal(X509_get_signature_nid(x_issuing_b), NID_ecdsa_with_SHA384);
	assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(x_issuing_a)), EVP_PKEY_RSA);
	assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(x_issuing_a)), 3072);
	assert_int_equal(chain_verify(x_issuing_a, x_root_a, NULL, NULL, 0, NULL), X509_V_OK);
	assert_int_equal(chain_verify(x_issuing_b, x_root_b, NULL, NULL, 0, NULL), X509_V_OK);
	assert_int_equal(chain_verify(x_issuing_b, x_root_a, NULL, NULL, 0, NULL),
	    X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	/* Records. */
	assert_string_equal(root_a.id, "root-a");
	assert_string_equal(root_a.parent_id, "");
	assert_false(root_a.issuing);
	assert_string_equal(issuing_a.parent_id, "root-a");
	assert_true(issuing_a.issuing);
	assert_string_equal(issuing_a.key_alg, "rsa-3072");
	assert_non_null(issuing_a.key_wrapped);
	assert_int_equal(issuing_a.created, now);
	assert_int_equal(issuing_a.crl_number, 0);
	/* The signer's public key of a CA is its certificate's. */
	pub = signer_public(sg, "issuing-a");
	assert_int_equal(EVP_PKEY_eq(pub, X509_get0_pubkey(x_issuing_a)), 1);
	EVP_PKEY_free(pub);

	/* An intermediate's validity ends with its parent's; not issuing: no pathLen. */
	assert_int_equal(ca_create(sg, BASE, "short-root", "ec-p256", "Short Root", NULL, NULL, 30,
	    NULL, true, now, &short_root, &err), 0);
	assert_int_equal(ca_create(sg, BASE "/", "short-sub", "ec-p256", "Short Sub", "O", NULL, 3650,
	    &short_root, false, now, &sub, &err), 0);
	x_short = der_cert(short_root.cert_der, short_root.cert_len);
	x_sub = der_cert(sub.cert_der, sub.cert_len);
	check_ca_cert(x_sub, x_short, "short-root", false, -1, 0, "Short Sub");
	assert_int_equal(tm_of(X509_get0_notAfter(x_sub)), tm_of(X509_get0_notAfter(x_short)));

	/* negative rows */
	const struct {
		const char *name, *base, *id, *alg, *cn;
		int days;
		const struct store_ca *parent;
		int want;
	} bad[] = {
		{ "id with capitals", BASE, "Root", "ec-p256", "X", 10, NULL, SMIME_E_USAGE },
		{ "empty id", BASE, "", "ec-p256", "X", 10, NULL, SMIME_E_USAGE },
		{ "unknown algorithm", BASE, "x1", "ec-p192", "X", 10, NULL, SMIME_E_USAGE },
		{ "no validity", BASE, "x2", "ec-p256", "X", 0, NULL, SMIME_E_USAGE },
		{ "validity of 30 years", BASE, "x3", "ec-p256", "X", 10958, NULL, SMIME_E_USAGE },
		{ "empty commonName", BASE, "x4", "ec-p256", "", 10, NULL, SMIME_E_USAGE },
		{ "commonName of 65", BASE, "x5", "ec-p256",
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 10, NULL,
		    SMIME_E_USAGE },
		{ "parent with pathLen 0", BASE, "x6", "ec-p256", "X", 10, &issuing_a,
		    SMIME_E_POLICY },
		{ "an id in use", BASE, "root-a", "ec-p256", "X", 10, NULL, SMIME_E_EXISTS },
		{ "an ftp base URL", "ftp://ca.example.test", "x7", "ec-p256", "X", 10, &root_a,
		    SMIME_E_USAGE },
		{ "base URL without host", "http:///", "x8", "ec-p256", "X", 10, &root_a,
		    SMIME_E_USAGE },
		{ "its own parent", BASE, "root-a", "ec-p256", "X", 10, &root_a, SMIME_E_USAGE },
		{ "parent key not held", BASE, "x9", "ec-p256", "X", 10, &ghost, SMIME_E_NOTFOUND },
	};
	memset(&ghost, 0, sizeof(ghost));
	snprintf(ghost.id, sizeof(ghost.id), "ghost");
	ghost.cert_der = root_b.cert_der;
	ghost.cert_len = root_b.cert_len;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct store_ca out;
		int rc = ca_create(sg, bad[i].base, bad[i].id, bad[i].alg, bad[i].cn, NULL, NULL,
		    bad[i].days, bad[i].parent, true, now, &out, &err);
		if (rc != bad[i].want)
			fail_msg("%s: got %d (%s), want %d", bad[i].name, rc, err.message,
			    bad[i].want);
		assert_null(out.cert_der);
		assert_null(out.key_wrapped);
	}
	/* A failed create made no key (and left root-a's alone). */
	assert_false(signer_has(sg, "x1"));
	assert_false(signer_has(sg, "x6"));
	assert_false(signer_has(sg, "x9"));
	pub = signer_public(sg, "root-a");
	assert_int_equal(EVP_PKEY_eq(pub, X509_get0_pubkey(x_root_a)), 1);
	EVP_PKEY_free(pub);

	X509_free(x_short);
	X509_free(x_sub);
	ca_clear(&short_root);
	ca_clear(&sub);
	signer_forget(sg, "short-root");
	signer_forget(sg, "short-sub");
}

/* ---------------- subscriber certificates ---------------- */

enum key_src { SRC_RSA_CSR, SRC_EC_CSR, SRC_P384_CSR, SRC_ED_CSR, SRC_GEN_EC, SRC_GEN_RSA };

struct issue_row {
	const char *name;
	enum cert_purpose purpose;
	enum key_src src;
	bool pem;
	const char *br;
	bool on_b;            /* issuing-b, else issuing-a */
	unsigned want_ku;
};

static char *const alice_emails[] = { "alice@example.com", "a.liddell@example.org",
	"ALICE@example.com" };
static const struct store_user alice = {
	.id = "00000000-0000-0000-0000-00000000a11c",
	.emails = (char **)alice_emails,
	.n_emails = 3,
};

static void
check_issued(X509 *c, const struct issue_row *row, const struct store_user *user,
    X509 *ca, X509 *root, const char *ca_id, int days, const char *policy)
{
	STACK_OF(OPENSSL_STRING) *emails;
	const ASN1_INTEGER *serial;
	BASIC_CONSTRAINTS *bc;
	unsigned char ski[20];
	char buf[512];
	int crit = -1, n, sig_nid;

	assert_int_equal(X509_get_version(c), X509_VERSION_3);
	/* Serial: positive, 9 to 16 octets (2^-56 for fewer than 9 by chance). */
	serial = X509_get0_serialNumber(c);
	assert_int_equal(ASN1_STRING_type(serial), V_ASN1_INTEGER);
	assert_in_range(ASN1_STRING_length(serial), 9, CA_SERIAL_OCTETS);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(ca)), 0);
	/* Subject: CN = the primary address, nothing else (or empty when too long). */
	n = X509_NAME_entry_count(X509_get_subject_name(c));
	if (strlen(user->emails[0]) <= 64) {
		assert_int_equal(n, 1);
		X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, buf, sizeof(buf));
		assert_string_equal(buf, user->emails[0]);
		assert_false(ext_critical(c, NID_subject_alt_name));
	} else {
		assert_int_equal(n, 0);
		assert_true(ext_critical(c, NID_subject_alt_name));
	}
	/* SAN: every address once (ALICE@ is alice@ again). */
	emails = smime_cert_emails(c);
	assert_non_null(emails);
	assert_int_equal(sk_OPENSSL_STRING_num(emails), user == &alice ? 2 : (int)user->n_emails);
	assert_string_equal(sk_OPENSSL_STRING_value(emails, 0), user->emails[0]);
	sk_OPENSSL_STRING_pop_free(emails, free_string);
	/* keyUsage, exactly. */
	assert_true(ext_critical(c, NID_key_usage));
	assert_int_equal(X509_get_key_usage(c), row->want_ku);
	eku_of(c, buf, sizeof(buf));
	assert_string_equal(buf, "emailProtection");
	assert_false(ext_critical(c, NID_ext_key_usage));
	bc = X509_get_ext_d2i(c, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_false(bc->ca);
	assert_null(bc->pathlen);
	BASIC_CONSTRAINTS_free(bc);
	policies_of(c, buf, sizeof(buf));
	assert_string_equal(buf, policy);
	ski_of(c, ski);
	assert_non_null(X509_get0_subject_key_id(c));
	assert_memory_equal(ASN1_STRING_get0_data(X509_get0_subject_key_id(c)), ski, 20);
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(c),
	    X509_get0_subject_key_id(ca)), 0);
	assert_null(X509_get0_authority_issuer(c));
	assert_null(X509_get0_authority_serial(c));
	check_url(crl_dp_uri(c), "crl", ca_id, ".crl");
	check_url(aia_uri(c, NID_ad_ca_issuers), "ca", ca_id, ".crt");
	check_url(aia_uri(c, NID_ad_OCSP), "ocsp", ca_id, "");
	assert_int_equal(tm_of(X509_get0_notBefore(c)), now);
	if (days > 0)
		assert_int_equal(tm_of(X509_get0_notAfter(c)) - now, (int64_t)days * DAY - 1);
	sig_nid = X509_get_signature_nid(c);
	assert_int_equal(sig_nid, EVP_PKEY_get_base_id(X509_get0_pubkey(ca)) == EVP_PKEY_RSA ?
	    NID_sha256WithRSAEncryption : NID_ecdsa_with_SHA256);
	assert_int_equal(chain_verify(c, root, ca, policy, row->purpose != PURPOSE_ENCRYPTION ?
	    X509_PURPOSE_SMIME_SIGN : 0, NULL), X509_V_OK);
}

static void
test_issue(void **state)
{
	static const struct issue_row rows[] = {
		{ "signing, RSA CSR (DER)", PURPOSE_SIGNING, SRC_RSA_CSR, false, "strict", false,
		    KU_DIGITAL_SIGNATURE },
		{ "signing, EC CSR (PEM)", PURPOSE_SIGNING, SRC_EC_CSR, true, "strict", true,
		    KU_DIGITAL_SIGNATURE },
		{ "signing, Ed25519 CSR", PURPOSE_SIGNING, SRC_ED_CSR, true, "strict", true,
		    KU_DIGITAL_SIGNATURE },
		{ "signing, generated EC", PURPOSE_SIGNING, SRC_GEN_EC, false, "multipurpose", false,
		    KU_DIGITAL_SIGNATURE },
		{ "encryption, RSA CSR (PEM)", PURPOSE_ENCRYPTION, SRC_RSA_CSR, true, "strict", true,
		    KU_KEY_ENCIPHERMENT },
		{ "encryption, EC CSR (DER)", PURPOSE_ENCRYPTION, SRC_EC_CSR, false, "strict", false,
		    KU_KEY_AGREEMENT },
		{ "encryption, P-384 CSR", PURPOSE_ENCRYPTION, SRC_P384_CSR, false, "multipurpose",
		    true, KU_KEY_AGREEMENT },
		{ "encryption, generated EC", PURPOSE_ENCRYPTION, SRC_GEN_EC, false, "strict", true,
		    KU_KEY_AGREEMENT },
		{ "dual, RSA CSR", PURPOSE_DUAL, SRC_RSA_CSR, false, "multipurpose", false,
		    KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT },
		{ "dual, EC CSR", PURPOSE_DUAL, SRC_EC_CSR, true, "strict", false,
		    KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT },
		{ "dual, generated EC", PURPOSE_DUAL, SRC_GEN_EC, false, "strict", true,
		    KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT },
		{ "dual, generated RSA", PURPOSE_DUAL, SRC_GEN_RSA, false, "strict", false,
		    KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT },
	};
	static const struct store_device phone = { .id = "00000000-0000-0000-0000-0000000000fe" };
	struct smime_error err;
	struct store_cert rec;
	size_t i, csr_len = 0;
	unsigned char *csr, *der, *p;
	char hex[STORE_SERIAL_SIZE], fp[65];
	X509 *c;
	EVP_PKEY *key, *want_key;
	int len;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct issue_row *row = &rows[i];
		struct store_profile prof = {
			.name = "p", .purpose = row->purpose, .validity_days = 365,
			.br_profile = (char *)row->br,
			.key_alg = row->src == SRC_GEN_RSA ? "rsa-2048" : "ec-p256",
			.allow_generate = row->src == SRC_GEN_EC || row->src == SRC_GEN_RSA,
		};
		struct ca_issue_req req = {
			.ca = row->on_b ? &issuing_b : &issuing_a, .profile = &prof, .user = &alice,
			.device = row->purpose == PURPOSE_SIGNING ? &phone : NULL,
			.base_url = BASE, .now = now,
		};
		want_key = row->src == SRC_RSA_CSR ? k_rsa : row->src == SRC_EC_CSR ? k_p256 :
		    row->src == SRC_P384_CSR ? k_p384 : row->src == SRC_ED_CSR ? k_ed : NULL;
		csr = want_key != NULL ? mk_csr(want_key, row->pem, &csr_len) : NULL;
		req.csr = csr;
		req.csr_len = csr_len;
		c = NULL;
		key = NULL;
		if (issue(sg, &req, &c, &key, &err) != 0)
			fail_msg("%s: %s", row->name, err.message);
		check_issued(c, row, &alice, row->on_b ? x_issuing_b : x_issuing_a,
		    row->on_b ? x_root_b : x_root_a, row->on_b ? "issuing-b" : "issuing-a", 365,
		    strcmp(row->br, "strict") == 0 ? "2.23.140.1.5.1.3" : "2.23.140.1.5.1.2");
		if (want_key != NULL) {
			/* The CSR's key, and no private key back. */
			assert_null(key);
			assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(c), want_key), 1);
		} else {
			assert_non_null(key);
			assert_int_equal(X509_check_private_key(c, key), 1);
			assert_int_equal(EVP_PKEY_get_base_id(key), row->src == SRC_GEN_RSA ?
			    EVP_PKEY_RSA : EVP_PKEY_EC);
		}
		/* The record of it. */
		assert_int_equal(ca_cert_record(c, &req, SOURCE_ISSUED, &rec, &err), 0);
		ca_serial_hex(X509_get0_serialNumber(c), hex);
		assert_string_equal(rec.serial, hex);
		assert_string_equal(rec.ca_id, req.ca->id);
		assert_string_equal(rec.user_id, alice.id);
		assert_string_equal(rec.device_id, req.device ? phone.id : "");
		assert_string_equal(rec.profile, "p");
		assert_int_equal(rec.purpose, row->purpose);
		assert_int_equal(rec.source, SOURCE_ISSUED);
		assert_int_equal(rec.status, STATUS_ACTIVE);
		assert_string_equal(rec.subject, "CN=alice@example.com");
		assert_string_equal(rec.email, "alice@example.com");
		assert_int_equal(rec.not_before, now);
		assert_int_equal(rec.not_after, now + 365 * DAY - 1);
		smime_cert_fingerprint(c, fp);
		assert_string_equal(rec.sha256, fp);
		assert_int_equal(strlen(rec.sha1), 40);
		{
			unsigned char md[20];
			unsigned int mdl;
			char h1[41];
			X509_digest(c, EVP_sha1(), md, &mdl);
			for (unsigned j = 0; j < 20; j++)
				snprintf(h1 + 2 * j, 3, "%02x", md[j]);
			assert_string_equal(rec.sha1, h1);
		}
		len = i2d_X509(c, NULL);
		der = malloc((size_t)len);
		p = der;
		i2d_X509(c, &p);
		assert_int_equal(rec.der_len, (size_t)len);
		assert_memory_equal(rec.der, der, (size_t)len);
		assert_int_equal(rec.created, now);
		assert_int_equal(rec.revoked_at, 0);
		assert_int_equal(rec.reason, -1);
		free(der);
		cert_clear(&rec);
		X509_free(c);
		EVP_PKEY_free(key);
		free(csr);
	}
}

/* Serial numbers: distinct, positive, and at least 64 random bits each. */
static void
test_issue_serials(void **state)
{
	enum { N = 64 };
	struct store_profile prof = { .name = "p", .purpose = PURPOSE_SIGNING,
		.validity_days = 30, .br_profile = "strict", .key_alg = "ec-p256" };
	struct ca_issue_req req = { .ca = &issuing_b, .profile = &prof, .user = &alice,
		.base_url = BASE, .now = now };
	char serials[N][STORE_SERIAL_SIZE];
	struct smime_error err;
	size_t csr_len, i, j;
	X509 *c;

	(void)state;
	req.csr = mk_csr(k_p256, false, &csr_len);
	req.csr_len = csr_len;
	for (i = 0; i < N; i++) {
		assert_int_equal(issue(sg, &req, &c, NULL, &err), 0);
		ca_serial_hex(X509_get0_serialNumber(c), serials[i]);
		/* 9 to 16 octets, the first below 0x80 (positive without a 00 octet). */
		assert_in_range(strlen(serials[i]), 18, 2 * CA_SERIAL_OCTETS);
		assert_true(strlen(serials[i]) < 2 * CA_SERIAL_OCTETS || serials[i][0] < '8');
		for (j = 0; j < i; j++)
			assert_string_not_equal(serials[i], serials[j]);
		X509_free(c);
	}
	free((void *)req.csr);
}

/* Validity: the profile's, never more than 825 days, never past the CA. */
static void
test_issue_validity(void **state)
{
	struct store_ca short_ca;
	struct store_profile prof = { .name = "p", .purpose = PURPOSE_SIGNING,
		.br_profile = "strict", .key_alg = "ec-p256" };
	struct ca_issue_req req = { .profile = &prof, .user = &alice, .base_url = BASE,
		.now = now };
	static const struct {
		const char *name;
		int days;
		bool short_ca;
		int64_t want;   /* seconds from now to notAfter; 0: the CA's notAfter */
	} rows[] = {
		{ "1 day", 1, false, DAY - 1 },
		{ "825 days", 825, false, 825LL * DAY - 1 },
		{ "900 days capped", 900, false, 825LL * DAY - 1 },
		{ "10000 days capped", 10000, false, 825LL * DAY - 1 },
		{ "past the CA", 365, true, 0 },
	};
	struct smime_error err;
	size_t csr_len, i;
	X509 *c, *x_short;

	(void)state;
	assert_int_equal(ca_create(sg, BASE, "short-ca", "ec-p256", "Short CA", NULL, NULL, 20, NULL,
	    true, now, &short_ca, &err), 0);
	x_short = der_cert(short_ca.cert_der, short_ca.cert_len);
	req.csr = mk_csr(k_p256, true, &csr_len);
	req.csr_len = csr_len;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		prof.validity_days = rows[i].days;
		req.ca = rows[i].short_ca ? &short_ca : &issuing_b;
		assert_int_equal(issue(sg, &req, &c, NULL, &err), 0);
		assert_int_equal(tm_of(X509_get0_notBefore(c)), now);
		assert_int_equal(tm_of(X509_get0_notAfter(c)), rows[i].want != 0 ?
		    now + rows[i].want : tm_of(X509_get0_notAfter(x_short)));
		assert_true(tm_of(X509_get0_notAfter(c)) - now + 1 <= 825LL * DAY);
		X509_free(c);
	}
	/* A CA past its notAfter issues nothing. */
	req.ca = &short_ca;
	req.now = now + 21 * DAY;
	assert_int_equal(issue(sg, &req, &c, NULL, &err), SMIME_E_POLICY);
	free((void *)req.csr);
	X509_free(x_short);
	ca_clear(&short_ca);
	signer_forget(sg, "short-ca");
}

/* A primary address longer than ub-common-name: empty subject, critical SAN. */
static void
test_issue_long_address(void **state)
{
	static char *const emails[] = {
		"a.very.long.local.part.that.goes.on.and.on@subdomain.example-company.example" };
	static const struct store_user bob = { .id = "b", .emails = (char **)emails,
		.n_emails = 1 };
	static const struct issue_row row = { "long", PURPOSE_SIGNING, SRC_EC_CSR, false,
		"strict", true, KU_DIGITAL_SIGNATURE };
	struct store_profile prof = { .name = "p", .purpose = PURPOSE_SIGNING,
		.validity_days = 30, .br_profile = "strict", .key_alg = "ec-p256" };
	struct ca_issue_req req = { .ca = &issuing_b, .profile = &prof, .user = &bob,
		.base_url = BASE, .now = now };
	struct smime_error err;
	size_t csr_len;
	X509 *c;

	(void)state;
	assert_true(strlen(emails[0]) > 64);
	req.csr = mk_csr(k_p256, false, &csr_len);
	req.csr_len = csr_len;
	assert_int_equal(issue(sg, &req, &c, NULL, &err), 0);
	check_issued(c, &row, &bob, x_issuing_b, x_root_b, "issuing-b", 30, "2.23.140.1.5.1.3");
	X509_free(c);
	free((void *)req.csr);
}

struct issue_err_row {
	const char *name;
	int csr;             /* see below */
	enum cert_purpose purpose;
	bool allow_generate;
	const char *key_alg;
	const char *br;
	int user;            /* 0 alice, 1 none, 2 seventeen, 3 no @, 4 space, 5 non-ASCII, 6 two @ */
	int ca;              /* 0 issuing-a, 1 root-a (not issuing), 2 ghost (key not held) */
	const char *base;
	const char *profile_ca;
	int want;
	const char *want_prefix;
};

enum {
	CSR_NONE, CSR_GOOD, CSR_BADSIG, CSR_RSA1024, CSR_K256, CSR_GARBAGE, CSR_TRUNCATED,
	CSR_TRAILING, CSR_EMPTY, CSR_HUGE, CSR_BAD_PEM, CSR_ED, CSR_BRAINPOOL,
};

static void
test_issue_errors(void **state)
{
	static const struct issue_err_row rows[] = {
		{ "CSR with a bad signature", CSR_BADSIG, PURPOSE_SIGNING, false, "ec-p256",
		    "strict", 0, 0, BASE, "", SMIME_E_INPUT, "CSR: RFC 2986 4.2" },
		{ "RSA-1024 CSR", CSR_RSA1024, PURPOSE_SIGNING, false, "ec-p256", "strict", 0, 0,
		    BASE, "", SMIME_E_POLICY, "weak key" },
		{ "secp256k1 CSR", CSR_K256, PURPOSE_SIGNING, false, "ec-p256", "strict", 0, 0,
		    BASE, "", SMIME_E_POLICY, "weak key" },
		{ "brainpoolP256r1 CSR", CSR_BRAINPOOL, PURPOSE_DUAL, false, "ec-p256", "strict", 0,
		    0, BASE, "", SMIME_E_POLICY, "weak key" },
		{ "garbage", CSR_GARBAGE, PURPOSE_SIGNING, false, "ec-p256", "strict", 0, 0, BASE,
		    "", SMIME_E_INPUT, "CSR" },
		{ "truncated DER", CSR_TRUNCATED, PURPOSE_SIGNING, false, "ec-p256", "strict", 0, 0,
		    BASE, "", SMIME_E_INPUT, "CSR" },
		{ "DER with a trailing octet", CSR_TRAILING, PURPOSE_SIGNING, false, "ec-p256",
		    "strict", 0, 0, BASE, "", SMIME_E_INPUT, "CSR" },
		{ "empty CSR", CSR_EMPTY, PURPOSE_SIGNING, false, "ec-p256", "strict", 0, 0, BASE,
		    "", SMIME_E_INPUT, "CSR" },
		{ "CSR over CA_MAX_CSR", CSR_HUGE, PURPOSE_SIGNING, false, "ec-p256", "strict", 0, 0,
		    BASE, "", SMIME_E_INPUT, "CSR" },
		{ "PEM with broken base64", CSR_BAD_PEM, PURPOSE_SIGNING, false, "ec-p256", "strict",
		    0, 0, BASE, "", SMIME_E_INPUT, "CSR" },
		{ "Ed25519 for encryption", CSR_ED, PURPOSE_ENCRYPTION, false, "ec-p256", "strict",
		    0, 0, BASE, "", SMIME_E_POLICY, "key not allowed" },
		{ "Ed25519 for dual use", CSR_ED, PURPOSE_DUAL, false, "ec-p256", "strict", 0, 0,
		    BASE, "", SMIME_E_POLICY, "key not allowed" },
		{ "generation not allowed", CSR_NONE, PURPOSE_ENCRYPTION, false, "ec-p256", "strict",
		    0, 0, BASE, "", SMIME_E_POLICY, "profile" },
		{ "generation of an unknown algorithm", CSR_NONE, PURPOSE_ENCRYPTION, true,
		    "rsa-1024", "strict", 0, 0, BASE, "", SMIME_E_USAGE, "profile" },
		{ "user without address", CSR_GOOD, PURPOSE_SIGNING, false, "ec-p256", "strict", 1,
		    0, BASE, "", SMIME_E_USAGE, "user" },
		{ "seventeen addresses", CSR_GOOD, PURPOSE_SIGNING, false, "ec-p256", "strict", 2,
		    0, BASE, "", SMIME_E_POLICY, "user" },
		{ "address without @", CSR_GOOD, PURPOSE_SIGNING, false, "ec-p256", "strict", 3, 0,
		    BASE, "", SMIME_E_USAGE, "address" },
		{ "address with a space", CSR_GOOD, PURPOSE_SIGNING, false, "ec-p256", "strict", 4,
		    0, BASE, "", SMIME_E_USAGE, "address" },
		{ "address outside ASCII", CSR_GOOD, PURPOSE_SIGNING, false, "ec-p256", "strict", 5,
		    0, BASE, "", SMIME_E_USAGE, "address" },
		{ "address with two @", CSR_GOOD, PURPOSE_SIGNING, false, "ec-p256", "strict", 6, 0,
		    BASE, "", SMIME_E_USAGE, "address" },
		{ "a root that does not issue", CSR_GOOD, PURPOSE_SIGNING, false, "ec-p256",
		    "strict", 0, 1, BASE, "", SMIME_E_POLICY, "CA root-a" },
		{ "the legacy generation", CSR_GOOD, PURPOSE_SIGNING, false, "ec-p256", "legacy", 0,
		    0, BASE, "", SMIME_E_USAGE, "profile" },
		{ "a profile of another CA", CSR_GOOD, PURPOSE_SIGNING, false, "ec-p256", "strict",
		    0, 0, BASE, "issuing-b", SMIME_E_USAGE, "profile" },
		{ "an ldap base URL", CSR_GOOD, PURPOSE_SIGNING, false, "ec-p256", "strict", 0, 0,
		    "ldap://ca.example.test", "", SMIME_E_USAGE, "base URL" },
		{ "a CA key the signer lacks", CSR_GOOD, PURPOSE_SIGNING, false, "ec-p256", "strict",
		    0, 2, BASE, "", SMIME_E_NOTFOUND, "signer" },
	};
	static char *const seventeen[17] = { "u1@x.org", "u2@x.org", "u3@x.org", "u4@x.org",
		"u5@x.org", "u6@x.org", "u7@x.org", "u8@x.org", "u9@x.org", "u10@x.org",
		"u11@x.org", "u12@x.org", "u13@x.org", "u14@x.org", "u15@x.org", "u16@x.org",
		"u17@x.org" };
	static char *const noat[] = { "alice.example.com" };
	static char *const space[] = { "alice smith@example.com" };
	static char *const utf8[] = { "j\xc3\xb6rg@example.com" };
	static char *const twoat[] = { "a@b@example.com" };
	const struct store_user users[] = {
		alice,
		{ .id = "none", .emails = NULL, .n_emails = 0 },
		{ .id = "many", .emails = (char **)seventeen, .n_emails = 17 },
		{ .id = "noat", .emails = (char **)noat, .n_emails = 1 },
		{ .id = "space", .emails = (char **)space, .n_emails = 1 },
		{ .id = "utf8", .emails = (char **)utf8, .n_emails = 1 },
		{ .id = "twoat", .emails = (char **)twoat, .n_emails = 1 },
	};
	struct store_ca ghost = issuing_b;
	const struct store_ca *cas[] = { &issuing_a, &root_a, &ghost };
	EVP_PKEY *k1024 = EVP_RSA_gen(1024), *k256k1 = EVP_EC_gen("secp256k1");
	EVP_PKEY *kbp = EVP_EC_gen("brainpoolP256r1");
	unsigned char *good, *csr;
	size_t good_len, csr_len, i;
	struct smime_error err;
	X509 *c;
	EVP_PKEY *key;
	int rc;

	(void)state;
	snprintf(ghost.id, sizeof(ghost.id), "ghost");
	good = mk_csr(k_p256, false, &good_len);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct issue_err_row *row = &rows[i];
		struct store_profile prof = { .name = "p", .purpose = row->purpose,
			.validity_days = 30, .br_profile = (char *)row->br,
			.key_alg = (char *)row->key_alg, .allow_generate = row->allow_generate };
		struct ca_issue_req req = { .ca = cas[row->ca], .profile = &prof,
			.user = &users[row->user], .base_url = row->base, .now = now };
		snprintf(prof.ca_id, sizeof(prof.ca_id), "%s", row->profile_ca);
		csr = NULL;
		csr_len = 0;
		switch (row->csr) {
		case CSR_GOOD:
			csr = malloc(good_len);
			memcpy(csr, good, good_len);
			csr_len = good_len;
			break;
		case CSR_BADSIG:
			csr = mk_csr(k_p256, false, &csr_len);
			csr[csr_len - 3] ^= 0x40;
			break;
		case CSR_RSA1024:
			csr = mk_csr(k1024, false, &csr_len);
			break;
		case CSR_K256:
			csr = mk_csr(k256k1, true, &csr_len);
			break;
		case CSR_BRAINPOOL:
			csr = mk_csr(kbp, false, &csr_len);
			break;
		case CSR_ED:
			csr = mk_csr(k_ed, false, &csr_len);
			break;
		case CSR_GARBAGE:
			csr = (unsigned char *)strdup("hello, certification authority");
			csr_len = strlen((char *)csr);
			break;
		case CSR_TRUNCATED:
			csr = malloc(good_len);
			memcpy(csr, good, good_len);
			csr_len = good_len / 2;
			break;
		case CSR_TRAILING:
			csr = malloc(good_len + 1);
			memcpy(csr, good, good_len);
			csr[good_len] = 0;
			csr_len = good_len + 1;
			break;
		case CSR_EMPTY:
			csr = malloc(1);
			csr_len = 0;
			break;
		case CSR_HUGE:
			csr_len = CA_MAX_CSR + 1;
			csr = calloc(1, csr_len);
			memcpy(csr, good, good_len);
			break;
		case CSR_BAD_PEM:
			csr = (unsigned char *)strdup("-----BEGIN CERTIFICATE REQUEST-----\n"
			    "MIIB!!!!notbase64@@@@\n-----END CERTIFICATE REQUEST-----\n");
			csr_len = strlen((char *)csr);
			break;
		}
		req.csr = csr;
		req.csr_len = csr_len;
		c = NULL;
		key = NULL;
		rc = issue(sg, &req, &c, &key, &err);
		if (rc != row->want || strncmp(err.message, row->want_prefix,
		    strlen(row->want_prefix)) != 0)
			fail_msg("%s: got %d (%s), want %d (%s...)", row->name, rc,
			    rc ? err.message : "", row->want, row->want_prefix);
		assert_null(c);
		assert_null(key);
		free(csr);
	}
	free(good);
	EVP_PKEY_free(k1024);
	EVP_PKEY_free(k256k1);
	EVP_PKEY_free(kbp);
}

/* ---------------- import ---------------- */

/* A CA certificate with the extensions given (NULL: absent), self-signed by key. */
static X509 *
mk_ca(EVP_PKEY *key, const char *bc, const char *ku, bool ski, int from_days, int to_days)
{
	X509 *c = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	ASN1_INTEGER *serial = ASN1_INTEGER_new();

	ASN1_INTEGER_set(serial, 77);
	X509_set_serialNumber(c, serial);
	ASN1_INTEGER_free(serial);
	X509_set_version(c, X509_VERSION_3);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"Ext CA",
	    -1, -1, 0);
	X509_set_subject_name(c, name);
	X509_set_issuer_name(c, name);
	X509_NAME_free(name);
	X509_gmtime_adj(X509_getm_notBefore(c), (long)from_days * DAY);
	X509_gmtime_adj(X509_getm_notAfter(c), (long)to_days * DAY);
	X509_set_pubkey(c, key);
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, c, c, NULL, NULL, 0);
	if (bc != NULL) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, bc);
		X509_add_ext(c, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (ku != NULL) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, ku);
		X509_add_ext(c, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (ski) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
		X509_add_ext(c, ext, -1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(c, key, EVP_sha256()) > 0);
	return c;
}

static void
test_import(void **state)
{
	struct {
		const char *name;
		const char *id;
		X509 *cert;
		EVP_PKEY *key;
		bool issuing;
		int want;
		const char *want_alg;
	} rows[] = {
		{ "an EC CA with its key", "ext-ec", NULL, NULL, true, 0, "ec-p384" },
		{ "an RSA CA with its key", "ext-rsa", NULL, NULL, true, 0, "rsa-2048" },
		{ "a CA without its key", "ext-nokey", NULL, NULL, false, 0, "ec-p384" },
		{ "a CA without keyUsage", "ext-noku", NULL, NULL, false, 0, "ec-p384" },
		/* negative rows */
		{ "another key", "ext-bad1", NULL, NULL, true, SMIME_E_USAGE, NULL },
		{ "not a CA", "ext-bad2", NULL, NULL, true, SMIME_E_USAGE, NULL },
		{ "no basicConstraints", "ext-bad3", NULL, NULL, true, SMIME_E_USAGE, NULL },
		{ "keyUsage without keyCertSign", "ext-bad4", NULL, NULL, true, SMIME_E_USAGE, NULL },
		{ "no subject key identifier", "ext-bad5", NULL, NULL, true, SMIME_E_USAGE, NULL },
		{ "expired", "ext-bad6", NULL, NULL, true, SMIME_E_POLICY, NULL },
		{ "issuing without a key", "ext-bad7", NULL, NULL, true, SMIME_E_USAGE, NULL },
		{ "an id in use", "root-a", NULL, NULL, true, SMIME_E_EXISTS, NULL },
		{ "a bad id", "Ext CA", NULL, NULL, true, SMIME_E_USAGE, NULL },
	};
	struct store_profile prof = { .name = "p", .purpose = PURPOSE_SIGNING,
		.validity_days = 30, .br_profile = "strict", .key_alg = "ec-p256" };
	struct store_ca ca;
	struct smime_error err;
	struct ca_issue_req req = { .profile = &prof, .user = &alice, .base_url = BASE,
		.now = now };
	EVP_PKEY *other = tu_key("p384");
	X509 *good_ec = mk_ca(k_p384, "critical,CA:TRUE", "critical,keyCertSign,cRLSign", true,
	    -1, 100);
	X509 *good_rsa = mk_ca(k_rsa, "critical,CA:TRUE", "critical,keyCertSign,cRLSign", true,
	    -1, 100);
	X509 *noku = mk_ca(k_p384, "critical,CA:TRUE", NULL, true, -1, 100);
	X509 *ee = mk_ca(k_p384, "critical,CA:FALSE", "critical,digitalSignature", true, -1, 100);
	X509 *nobc = mk_ca(k_p384, NULL, "critical,keyCertSign", true, -1, 100);
	X509 *noks = mk_ca(k_p384, "critical,CA:TRUE", "critical,digitalSignature,cRLSign", true,
	    -1, 100);
	X509 *noski = mk_ca(k_p384, "critical,CA:TRUE", "critical,keyCertSign", false, -1, 100);
	X509 *old = mk_ca(k_p384, "critical,CA:TRUE", "critical,keyCertSign", true, -100, -1);
	X509 *c;
	size_t i, csr_len;
	int rc;

	(void)state;
	rows[0].cert = good_ec, rows[0].key = k_p384;
	rows[1].cert = good_rsa, rows[1].key = k_rsa;
	rows[2].cert = good_ec, rows[2].key = NULL;
	rows[3].cert = noku, rows[3].key = NULL;
	rows[4].cert = good_ec, rows[4].key = other;
	rows[5].cert = ee, rows[5].key = k_p384;
	rows[6].cert = nobc, rows[6].key = k_p384;
	rows[7].cert = noks, rows[7].key = k_p384;
	rows[8].cert = noski, rows[8].key = k_p384;
	rows[9].cert = old, rows[9].key = k_p384;
	rows[10].cert = good_ec, rows[10].key = NULL;
	rows[11].cert = good_ec, rows[11].key = k_p384;
	rows[12].cert = good_ec, rows[12].key = k_p384;
	req.csr = mk_csr(k_p256, false, &csr_len);
	req.csr_len = csr_len;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		rc = ca_import(sg, rows[i].id, rows[i].cert, rows[i].key, "", rows[i].issuing, now,
		    &ca, &err);
		if (rc != rows[i].want)
			fail_msg("%s: got %d (%s), want %d", rows[i].name, rc, err.message,
			    rows[i].want);
		if (rc != 0) {
			assert_null(ca.cert_der);
			if (rows[i].want != SMIME_E_EXISTS)
				assert_false(signer_has(sg, rows[i].id));
			continue;
		}
		assert_string_equal(ca.id, rows[i].id);
		assert_string_equal(ca.parent_id, "");
		assert_string_equal(ca.key_alg, rows[i].want_alg);
		assert_int_equal(ca.issuing, rows[i].issuing);
		assert_int_equal(ca.created, now);
		assert_int_equal(ca.key_wrapped != NULL, rows[i].key != NULL);
		assert_int_equal(signer_has(sg, rows[i].id), rows[i].key != NULL);
		if (rows[i].key != NULL) {
			/* It issues, and what it issues chains to the imported certificate. */
			req.ca = &ca;
			assert_int_equal(issue(sg, &req, &c, NULL, &err), 0);
			assert_int_equal(chain_verify(c, rows[i].cert, NULL, "2.23.140.1.5.1.3",
			    X509_PURPOSE_SMIME_SIGN, NULL), X509_V_OK);
			X509_free(c);
			signer_forget(sg, rows[i].id);
		}
		ca_clear(&ca);
	}
	free((void *)req.csr);
	EVP_PKEY_free(other);
	X509_free(good_ec);
	X509_free(good_rsa);
	X509_free(noku);
	X509_free(ee);
	X509_free(nobc);
	X509_free(noks);
	X509_free(noski);
	X509_free(old);
}

/* ---------------- CRLs ---------------- */

static void
test_crl(void **state)
{
	struct store_profile prof = { .name = "p", .purpose = PURPOSE_DUAL,
		.validity_days = 30, .br_profile = "strict", .key_alg = "ec-p256" };
	struct ca_issue_req req = { .ca = &issuing_a, .profile = &prof, .user = &alice,
		.base_url = BASE, .now = now };
	struct store_revoked rv[3];
	static const int reasons[3] = { 0, 1, 4 };
	X509 *c[4];
	X509_CRL *crl;
	STACK_OF(X509_REVOKED) *entries;
	X509_REVOKED *e;
	ASN1_ENUMERATED *reason;
	ASN1_INTEGER *num;
	AUTHORITY_KEYID *akid;
	const unsigned char *p;
	unsigned char *der;
	struct smime_error err;
	char hex[STORE_SERIAL_SIZE];
	size_t len, csr_len, i;
	int j, crit;

	(void)state;
	req.csr = mk_csr(k_p256, false, &csr_len);
	req.csr_len = csr_len;
	for (i = 0; i < 4; i++)
		assert_int_equal(issue(sg, &req, &c[i], NULL, &err), 0);
	for (i = 0; i < 3; i++) {
		memset(&rv[i], 0, sizeof(rv[i]));
		ca_serial_hex(X509_get0_serialNumber(c[i]), rv[i].serial);
		rv[i].revoked_at = now - 3600 * (int64_t)(i + 1);
		rv[i].reason = reasons[i];
	}
	assert_int_equal(ca_make_crl(sg, &issuing_a, rv, 3, 7, now, 7 * DAY, &der, &len, &err), 0);
	p = der;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	assert_non_null(crl);
	assert_true(p == der + len);
	OPENSSL_free(der);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(x_issuing_a)), 1);
	assert_int_equal(X509_CRL_get_signature_nid(crl), NID_sha256WithRSAEncryption);
	assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(x_issuing_a)), 0);
	assert_int_equal(tm_of(X509_CRL_get0_lastUpdate(crl)), now);
	assert_int_equal(tm_of(X509_CRL_get0_nextUpdate(crl)), now + 7 * DAY);
	entries = X509_CRL_get_REVOKED(crl);
	assert_int_equal(sk_X509_REVOKED_num(entries), 3);
	for (j = 0; j < 3; j++) {
		e = sk_X509_REVOKED_value(entries, j);
		if (j > 0)
			assert_true(ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(
			    sk_X509_REVOKED_value(entries, j - 1)),
			    X509_REVOKED_get0_serialNumber(e)) < 0);
		ca_serial_hex(X509_REVOKED_get0_serialNumber(e), hex);
		for (i = 0; i < 3 && strcmp(hex, rv[i].serial) != 0; i++)
			;
		assert_true(i < 3);
		assert_int_equal(tm_of(X509_REVOKED_get0_revocationDate(e)), rv[i].revoked_at);
		crit = -1;
		reason = X509_REVOKED_get_ext_d2i(e, NID_crl_reason, &crit, NULL);
		if (rv[i].reason == 0) {
			/* S/MIME BR 7.2.2: unspecified is omitted. */
			assert_null(reason);
		} else {
			assert_non_null(reason);
			assert_int_equal(crit, 0);
			assert_int_equal(ASN1_ENUMERATED_get(reason), rv[i].reason);
			ASN1_ENUMERATED_free(reason);
		}
	}
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
	assert_non_null(num);
	assert_int_equal(crit, 0);
	assert_int_equal(ASN1_INTEGER_get(num), 7);
	ASN1_INTEGER_free(num);
	akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, &crit, NULL);
	assert_non_null(akid);
	assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(x_issuing_a)),
	    0);
	AUTHORITY_KEYID_free(akid);
	/* A verifier that checks the CRL: revoked ones fail, the fourth passes. */
	for (i = 0; i < 4; i++)
		assert_int_equal(chain_verify(c[i], x_root_a, x_issuing_a, NULL, 0, crl),
		    i < 3 ? X509_V_ERR_CERT_REVOKED : X509_V_OK);
	X509_CRL_free(crl);

	/* An empty CRL. */
	assert_int_equal(ca_make_crl(sg, &issuing_b, NULL, 0, 1, now, DAY, &der, &len, &err), 0);
	p = der;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	assert_non_null(crl);
	assert_true(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(x_issuing_b)), 1);
	assert_int_equal(X509_CRL_get_signature_nid(crl), NID_ecdsa_with_SHA256);
	X509_CRL_free(crl);
	OPENSSL_free(der);

	/* negative rows */
	static const struct {
		const char *name, *serial;
		int64_t at, number, validity;
		int reason, want;
	} bad[] = {
		{ "reason 7", "0A", 1, 1, DAY, 7, SMIME_E_USAGE },
		{ "removeFromCRL in a full CRL", "0A", 1, 1, DAY, 8, SMIME_E_USAGE },
		{ "reason 11", "0A", 1, 1, DAY, 11, SMIME_E_USAGE },
		{ "a serial that is not hex", "xyz", 1, 1, DAY, 1, SMIME_E_INPUT },
		{ "no revocation time", "0A", 0, 1, DAY, 1, SMIME_E_USAGE },
		{ "a negative number", "0A", 1, -1, DAY, 1, SMIME_E_USAGE },
		{ "no validity", "0A", 1, 1, 0, 1, SMIME_E_USAGE },
		{ "validity of two years", "0A", 1, 1, 730 * DAY, 1, SMIME_E_USAGE },
	};
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct store_revoked one = { .revoked_at = bad[i].at, .reason = bad[i].reason };
		snprintf(one.serial, sizeof(one.serial), "%s", bad[i].serial);
		der = NULL;
		int rc = ca_make_crl(sg, &issuing_b, &one, 1, bad[i].number, now, bad[i].validity,
		    &der, &len, &err);
		if (rc != bad[i].want)
			fail_msg("%s: got %d (%s), want %d", bad[i].name, rc, err.message,
			    bad[i].want);
		assert_null(der);
	}
	for (i = 0; i < 4; i++)
		X509_free(c[i]);
	free((void *)req.csr);
}

/* ---------------- serial numbers and reasons ---------------- */

static void
test_serial(void **state)
{
	static const struct {
		const char *in, *want;   /* want NULL: SMIME_E_INPUT */
	} rows[] = {
		{ "0a:1B:2c", "0A1B2C" },
		{ "0x0A1B", "0A1B" },
		{ "0X0a1b", "0A1B" },
		{ " 0a 1b 2c ", "0A1B2C" },
		{ "\t0a:1b\t", "0A1B" },
		{ "A1B", "0A1B" },
		{ "00:00:0A", "0A" },
		{ "0", "00" },
		{ "00", "00" },
		{ "80", "80" },
		{ "0080", "80" },
		{ "-0a", "-0A" },
		{ "7F:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF",
		    "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF" },
		{ "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef",
		    "1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF" },
		/* negative rows */
		{ "xyz", NULL },
		{ "", NULL },
		{ "   ", NULL },
		{ "0x", NULL },
		{ "0a:1g", NULL },
		{ "0a-1b", NULL },
		{ "0a;1b", NULL },
		{ "0x0x0a", NULL },
		{ "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef1", NULL },
		{ "01234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef12", NULL },
		{ "00000000000000000000000000000000000000000000000000000000000000000000000000"
		  "00000000000000000000000000000000000000000000000000000000000000000000000000"
		  "00000000000000000000000000000000000000000000000000000000000000000000000001", NULL },
	};
	char out[STORE_SERIAL_SIZE], back[STORE_SERIAL_SIZE];
	struct smime_error err;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		rc = ca_serial_parse(rows[i].in, out, &err);
		if (rows[i].want == NULL) {
			if (rc != SMIME_E_INPUT)
				fail_msg("\"%s\": got %d (%s), want input", rows[i].in, rc, out);
			assert_string_equal(out, "");
			continue;
		}
		if (rc != 0)
			fail_msg("\"%s\": %s", rows[i].in, err.message);
		assert_string_equal(out, rows[i].want);
		/* Parsing what it wrote gives it again. */
		assert_int_equal(ca_serial_parse(out, back, &err), 0);
		assert_string_equal(back, out);
	}
	assert_int_equal(ca_serial_parse(NULL, out, &err), SMIME_E_INPUT);

	/* Writing: as `openssl x509 -serial`, through ASN1_INTEGERs. */
	static const struct {
		const char *bn, *want;
	} w[] = {
		{ "0A", "0A" }, { "0", "00" }, { "7FFF", "7FFF" }, { "80", "80" },
		{ "-0A", "-0A" },
		{ "0102030405060708090A0B0C0D0E0F10", "0102030405060708090A0B0C0D0E0F10" },
		/* 33 octets: longer than any serial kept */
		{ "0102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F2021", "" },
	};
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		BIGNUM *bn = NULL;
		ASN1_INTEGER *ai;
		assert_true(BN_hex2bn(&bn, w[i].bn) > 0);
		ai = BN_to_ASN1_INTEGER(bn, NULL);
		ca_serial_hex(ai, out);
		assert_string_equal(out, w[i].want);
		ASN1_INTEGER_free(ai);
		BN_free(bn);
	}
	ca_serial_hex(NULL, out);
	assert_string_equal(out, "");
}

static void
test_reason(void **state)
{
	static const char *const names[] = { "unspecified", "keyCompromise", "cACompromise",
		"affiliationChanged", "superseded", "cessationOfOperation", "certificateHold", NULL,
		"removeFromCRL", "privilegeWithdrawn", "aACompromise" };
	int i;

	(void)state;
	for (i = 0; i <= 10; i++) {
		if (names[i] == NULL) {
			assert_string_equal(ca_reason_name(i), "unknown");
			continue;
		}
		assert_string_equal(ca_reason_name(i), names[i]);
		assert_int_equal(ca_reason_parse(names[i]), i);
	}
	assert_int_equal(ca_reason_parse("KEYCOMPROMISE"), 1);
	assert_int_equal(ca_reason_parse("cacompromise"), 2);
	/* negative rows */
	assert_string_equal(ca_reason_name(-1), "unknown");
	assert_string_equal(ca_reason_name(11), "unknown");
	assert_int_equal(ca_reason_parse("unknown"), -1);
	assert_int_equal(ca_reason_parse(""), -1);
	assert_int_equal(ca_reason_parse(NULL), -1);
	assert_int_equal(ca_reason_parse("key compromise"), -1);
	assert_int_equal(ca_reason_parse("7"), -1);
	assert_true(ca_key_alg_valid("ec-p521"));
	assert_true(ca_key_alg_valid("rsa-4096"));
	assert_false(ca_key_alg_valid("rsa-1024"));
	assert_false(ca_key_alg_valid("ed25519"));
	assert_false(ca_key_alg_valid(NULL));
}

/* ---------------- OCSP ---------------- */

struct lookup_entry {
	const char *ca_id;
	char serial[STORE_SERIAL_SIZE];
	struct ocsp_status st;
};

struct lookup_table {
	struct lookup_entry e[8];
	size_t n;
	int calls;
	int fail;
	pthread_mutex_t lock;
};

static int
lookup(void *arg, const char *ca_id, const char *serial, struct ocsp_status *st_r,
    struct smime_error *err)
{
	struct lookup_table *t = arg;
	size_t i;

	pthread_mutex_lock(&t->lock);
	t->calls++;
	memset(st_r, 0, sizeof(*st_r));
	st_r->reason = -1;
	for (i = 0; i < t->n; i++)
		if (strcmp(t->e[i].ca_id, ca_id) == 0 && strcmp(t->e[i].serial, serial) == 0)
			*st_r = t->e[i].st;
	pthread_mutex_unlock(&t->lock);
	if (t->fail)
		return smime_error_set(err, SMIME_E_IO, "the store is down");
	return 0;
}

static OCSP_CERTID *
cid_for(const EVP_MD *md, X509 *ca, const ASN1_INTEGER *serial)
{
	OCSP_CERTID *id = OCSP_cert_id_new(md, X509_get_subject_name(ca),
	    X509_get0_pubkey_bitstr(ca), (ASN1_INTEGER *)serial);

	assert_non_null(id);
	return id;
}

/* DER of a request for the CertIDs given (taken over); nonce_len 0: no nonce. */
static unsigned char *
mk_ocsp_req(OCSP_CERTID **ids, size_t n, int nonce_len, bool critical_ext, size_t *len_r,
    OCSP_REQUEST **req_r)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	unsigned char *der, *p;
	size_t i;
	int len;

	for (i = 0; i < n; i++)
		assert_non_null(OCSP_request_add0_id(req, ids[i]));
	if (nonce_len > 0)
		assert_true(OCSP_request_add1_nonce(req, NULL, nonce_len));
	if (critical_ext) {
		ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
		ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
		X509_EXTENSION *ext;
		ASN1_OCTET_STRING_set(v, (const unsigned char *)"\x05\x00", 2);
		ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, v);
		assert_true(OCSP_REQUEST_add_ext(req, ext, -1));
		X509_EXTENSION_free(ext);
		ASN1_OBJECT_free(obj);
		ASN1_OCTET_STRING_free(v);
	}
	len = i2d_OCSP_REQUEST(req, NULL);
	der = malloc((size_t)len + 1);
	p = der;
	i2d_OCSP_REQUEST(req, &p);
	*len_r = (size_t)len;
	if (req_r != NULL)
		*req_r = req;
	else
		OCSP_REQUEST_free(req);
	return der;
}

/* Certificates in a response (an absent list is none). */
static int
certs_num(const STACK_OF(X509) *certs)
{
	return certs != NULL ? sk_X509_num(certs) : 0;
}

/* The response's status; *bs_r the basic response when successful. */
static int
ocsp_parse(const unsigned char *der, size_t len, OCSP_BASICRESP **bs_r)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	int status;

	assert_non_null(resp);
	assert_true(p == der + len);
	status = OCSP_response_status(resp);
	if (bs_r != NULL)
		*bs_r = status == OCSP_RESPONSE_STATUS_SUCCESSFUL ?
		    OCSP_response_get1_basic(resp) : NULL;
	OCSP_RESPONSE_free(resp);
	return status;
}

/* OCSP_basic_verify against root, with ca as the untrusted intermediate. */
static int
ocsp_verify(OCSP_BASICRESP *bs, X509 *root, X509 *ca)
{
	X509_STORE *st = X509_STORE_new();
	STACK_OF(X509) *certs = sk_X509_new_null();
	int ok;

	X509_STORE_add_cert(st, root);
	sk_X509_push(certs, ca);
	X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(st), (time_t)now + 60);
	ok = OCSP_basic_verify(bs, certs, st, 0);
	sk_X509_free(certs);
	X509_STORE_free(st);
	return ok;
}

static struct ocsp_responder *
responder(int64_t ttl)
{
	struct ocsp_ca cas[2] = {
		{ .ca_id = "issuing-a", .cert = x_issuing_a, .responder_cert = x_issuing_a,
		  .responder_key_id = "issuing-a" },
		{ .ca_id = "issuing-b", .cert = x_issuing_b, .responder_cert = x_ocsp_b,
		  .responder_key_id = "ocsp-b" },
	};
	struct ocsp_responder *r = ocsp_responder_new(sg, ttl, 3600);
	struct smime_error err;

	assert_non_null(r);
	assert_int_equal(ocsp_responder_set_cas(r, cas, 2, &err), 0);
	return r;
}

enum { C_GOOD, C_REVOKED, C_REVOKED0, C_UNKNOWN, C_B, C_OTHER_CA, C_COUNT };

struct ocsp_row {
	const char *name;
	int certs[3];        /* indexes of certs[], -1 ends */
	bool sha256;
	int nonce;
	bool critical_ext;
	int want;            /* OCSPResponseStatus */
	int want_status;     /* V_OCSP_CERTSTATUS_ of the first */
	int want_reason;
};

static void
test_ocsp(void **state)
{
	static const struct ocsp_row rows[] = {
		{ "good", { C_GOOD, -1 }, false, 0, false, OCSP_RESPONSE_STATUS_SUCCESSFUL,
		    V_OCSP_CERTSTATUS_GOOD, -1 },
		{ "good, SHA-256 CertID and a nonce", { C_GOOD, -1 }, true, 16, false,
		    OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, -1 },
		{ "revoked, keyCompromise, 32-octet nonce", { C_REVOKED, -1 }, false, 32, false,
		    OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_REVOKED,
		    OCSP_REVOKED_STATUS_KEYCOMPROMISE },
		{ "revoked, unspecified: no reason", { C_REVOKED0, -1 }, true, 0, false,
		    OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_REVOKED, -1 },
		{ "unknown serial", { C_UNKNOWN, -1 }, false, 0, false,
		    OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_UNKNOWN, -1 },
		{ "delegated responder", { C_B, -1 }, false, 20, false,
		    OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, -1 },
		{ "two CertIDs of one CA", { C_REVOKED, C_GOOD, -1 }, true, 0, false,
		    OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_REVOKED,
		    OCSP_REVOKED_STATUS_KEYCOMPROMISE },
		/* negative rows */
		{ "33-octet nonce", { C_GOOD, -1 }, false, 33, false,
		    OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, 0, 0 },
		{ "a critical extension not understood", { C_GOOD, -1 }, false, 0, true,
		    OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, 0, 0 },
		{ "a CertID of a CA not served", { C_OTHER_CA, -1 }, false, 0, false,
		    OCSP_RESPONSE_STATUS_UNAUTHORIZED, 0, 0 },
		{ "one CertID of a CA not served", { C_GOOD, C_OTHER_CA, -1 }, false, 0, false,
		    OCSP_RESPONSE_STATUS_UNAUTHORIZED, 0, 0 },
		{ "CertIDs of CAs with other responders", { C_GOOD, C_B, -1 }, false, 0, false,
		    OCSP_RESPONSE_STATUS_UNAUTHORIZED, 0, 0 },
	};
	struct lookup_table t = { .n = 0 };
	struct ocsp_responder *r = responder(60);
	struct store_profile prof = { .name = "p", .purpose = PURPOSE_SIGNING,
		.validity_days = 30, .br_profile = "strict", .key_alg = "ec-p256" };
	struct ca_issue_req req = { .profile = &prof, .user = &alice, .base_url = BASE,
		.now = now };
	X509 *certs[C_COUNT], *issuers[C_COUNT];
	OCSP_CERTID *ids[3], *probe;
	OCSP_REQUEST *oreq;
	OCSP_BASICRESP *bs;
	ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;
	const ASN1_OCTET_STRING *byKey;
	const X509_NAME *byName;
	struct smime_error err;
	unsigned char *der, *resp;
	size_t len, resp_len, csr_len, i, k;
	int status, reason, st;

	(void)state;
	pthread_mutex_init(&t.lock, NULL);
	req.csr = mk_csr(k_p256, false, &csr_len);
	req.csr_len = csr_len;
	for (i = 0; i < C_COUNT; i++) {
		req.ca = i == C_B ? &issuing_b : &issuing_a;
		issuers[i] = i == C_B ? x_issuing_b : x_issuing_a;
		assert_int_equal(issue(sg, &req, &certs[i], NULL, &err), 0);
	}
	issuers[C_OTHER_CA] = x_root_a;  /* a CertID naming root-a, not served */
	static const struct { int idx; const char *ca; int revoked, reason; } known[] = {
		{ C_GOOD, "issuing-a", 0, -1 },
		{ C_REVOKED, "issuing-a", 1, 1 },
		{ C_REVOKED0, "issuing-a", 1, 0 },
		{ C_B, "issuing-b", 0, -1 },
	};
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		t.e[t.n].ca_id = known[i].ca;
		ca_serial_hex(X509_get0_serialNumber(certs[known[i].idx]), t.e[t.n].serial);
		t.e[t.n].st.known = 1;
		t.e[t.n].st.revoked = known[i].revoked;
		t.e[t.n].st.revoked_at = known[i].revoked ? now - 100 : 0;
		t.e[t.n].st.reason = known[i].reason;
		t.n++;
	}

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct ocsp_row *row = &rows[i];
		for (k = 0; k < 3 && row->certs[k] >= 0; k++)
			ids[k] = cid_for(row->sha256 ? EVP_sha256() : EVP_sha1(),
			    issuers[row->certs[k]], X509_get0_serialNumber(certs[row->certs[k]]));
		der = mk_ocsp_req(ids, k, row->nonce, row->critical_ext, &len, &oreq);
		resp = NULL;
		if (ocsp_respond(r, der, len, lookup, &t, now, &resp, &resp_len, &err) != 0)
			fail_msg("%s: %s", row->name, err.message);
		status = ocsp_parse(resp, resp_len, &bs);
		if (status != row->want)
			fail_msg("%s: status %d, want %d", row->name, status, row->want);
		if (status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
			bool b = row->certs[0] == C_B;
			assert_int_equal(ocsp_verify(bs, b ? x_root_b : x_root_a,
			    b ? x_issuing_b : x_issuing_a), 1);
			/* RFC 6960 4.2.1: responder id by key hash. */
			assert_true(OCSP_resp_get0_id(bs, &byKey, &byName));
			assert_non_null(byKey);
			assert_null(byName);
			/* The delegated responder's certificate comes along; the CA's does not. */
			assert_int_equal(certs_num(OCSP_resp_get0_certs(bs)), b ? 1 : 0);
			assert_int_equal(OCSP_resp_get0_tbs_sigalg(bs) != NULL, 1);
			assert_int_equal(OBJ_obj2nid(OCSP_resp_get0_tbs_sigalg(bs)->algorithm),
			    b ? NID_ecdsa_with_SHA256 : NID_sha256WithRSAEncryption);
			for (size_t m = 0; m < k; m++) {
				probe = cid_for(row->sha256 ? EVP_sha256() : EVP_sha1(),
				    issuers[row->certs[m]],
				    X509_get0_serialNumber(certs[row->certs[m]]));
				reason = -1;
				assert_int_equal(OCSP_resp_find_status(bs, probe, &st, &reason, &rev,
				    &thisupd, &nextupd), 1);
				assert_int_equal(tm_of(thisupd), now);
				assert_int_equal(tm_of(nextupd), now + 3600);
				if (m == 0) {
					assert_int_equal(st, row->want_status);
					assert_int_equal(reason, row->want_reason);
					if (st == V_OCSP_CERTSTATUS_REVOKED)
						assert_int_equal(tm_of(rev), now - 100);
				}
				OCSP_CERTID_free(probe);
			}
			assert_int_equal(OCSP_resp_count(bs), (int)k);
			/* RFC 6960 4.4.1: the nonce echoed. */
			assert_int_equal(OCSP_check_nonce(oreq, bs), row->nonce > 0 ? 1 : 2);
			OCSP_BASICRESP_free(bs);
		}
		OCSP_REQUEST_free(oreq);
		free(der);
		free(resp);
	}

	/* Requests that do not parse, and a lookup that fails. */
	static const struct {
		const char *name;
		int kind;
	} bad[] = {
		{ "garbage", 0 }, { "empty", 1 }, { "truncated", 2 }, { "trailing octet", 3 },
		{ "over OCSP_MAX_REQUEST", 4 }, { "seventeen CertIDs", 5 }, { "no CertID", 6 },
		{ "MD5 CertID", 7 },
	};
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		OCSP_CERTID *many[17];
		int want = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
		ids[0] = cid_for(EVP_sha1(), x_issuing_a, X509_get0_serialNumber(certs[C_GOOD]));
		der = mk_ocsp_req(ids, 1, 0, false, &len, NULL);
		switch (bad[i].kind) {
		case 0:
			memcpy(der, "\x01\x02garbage", 9);
			len = 9;
			break;
		case 1:
			len = 0;
			break;
		case 2:
			len -= 5;
			break;
		case 3:
			der[len++] = 0;
			break;
		case 4:
			free(der);
			len = OCSP_MAX_REQUEST + 1;
			der = calloc(1, len);
			break;
		case 5:
			free(der);
			for (k = 0; k < 17; k++)
				many[k] = cid_for(EVP_sha1(), x_issuing_a,
				    X509_get0_serialNumber(certs[C_GOOD]));
			der = mk_ocsp_req(many, 17, 0, false, &len, NULL);
			break;
		case 6:
			free(der);
			der = mk_ocsp_req(NULL, 0, 0, false, &len, NULL);
			break;
		case 7:
			free(der);
			ids[0] = cid_for(EVP_md5(), x_issuing_a,
			    X509_get0_serialNumber(certs[C_GOOD]));
			der = mk_ocsp_req(ids, 1, 0, false, &len, NULL);
			want = OCSP_RESPONSE_STATUS_UNAUTHORIZED;
			break;
		}
		assert_int_equal(ocsp_respond(r, der, len, lookup, &t, now, &resp, &resp_len, &err),
		    0);
		if (ocsp_parse(resp, resp_len, NULL) != want)
			fail_msg("%s: not status %d", bad[i].name, want);
		free(resp);
		free(der);
	}
	ids[0] = cid_for(EVP_sha1(), x_issuing_a, X509_get0_serialNumber(certs[C_UNKNOWN]));
	der = mk_ocsp_req(ids, 1, 0, false, &len, NULL);
	/* (The "unknown serial" row's answer is in the cache.) */
	ocsp_cache_flush(r);
	t.fail = 1;
	resp = NULL;
	assert_int_equal(ocsp_respond(r, der, len, lookup, &t, now, &resp, &resp_len, &err),
	    SMIME_E_IO);
	assert_null(resp);
	t.fail = 0;
	free(der);
	assert_int_equal(ocsp_respond(r, NULL, 0, NULL, &t, now, &resp, &resp_len, &err),
	    SMIME_E_USAGE);

	ocsp_responder_free(r);
	ocsp_responder_free(NULL);
	for (i = 0; i < C_COUNT; i++)
		X509_free(certs[i]);
	free((void *)req.csr);
	pthread_mutex_destroy(&t.lock);
}

/* The cache: same bytes without a lookup; a flush shows a revocation; a nonce is never cached. */
static void
test_ocsp_cache(void **state)
{
	struct lookup_table t = { .n = 1 };
	struct ocsp_responder *r = responder(60), *nocache;
	struct store_profile prof = { .name = "p", .purpose = PURPOSE_SIGNING,
		.validity_days = 30, .br_profile = "strict", .key_alg = "ec-p256" };
	struct ca_issue_req req = { .ca = &issuing_b, .profile = &prof, .user = &alice,
		.base_url = BASE, .now = now };
	OCSP_CERTID *ids[1];
	OCSP_BASICRESP *bs;
	struct smime_error err;
	unsigned char *der, *nder, *r1, *r2;
	size_t len, nlen, l1, l2, csr_len;
	int calls, st, reason;
	X509 *c;

	(void)state;
	pthread_mutex_init(&t.lock, NULL);
	req.csr = mk_csr(k_p256, false, &csr_len);
	req.csr_len = csr_len;
	assert_int_equal(issue(sg, &req, &c, NULL, &err), 0);
	t.e[0].ca_id = "issuing-b";
	ca_serial_hex(X509_get0_serialNumber(c), t.e[0].serial);
	t.e[0].st.known = 1;
	t.e[0].st.reason = -1;
	ids[0] = cid_for(EVP_sha256(), x_issuing_b, X509_get0_serialNumber(c));
	der = mk_ocsp_req(ids, 1, 0, false, &len, NULL);
	ids[0] = cid_for(EVP_sha256(), x_issuing_b, X509_get0_serialNumber(c));
	nder = mk_ocsp_req(ids, 1, 32, false, &nlen, NULL);

	assert_int_equal(ocsp_respond(r, der, len, lookup, &t, now, &r1, &l1, &err), 0);
	calls = t.calls;
	assert_int_equal(calls, 1);
	assert_int_equal(ocsp_respond(r, der, len, lookup, &t, now + 10, &r2, &l2, &err), 0);
	assert_int_equal(t.calls, calls);
	assert_int_equal(l1, l2);
	assert_memory_equal(r1, r2, l1);
	free(r2);
	/* A request with a nonce is answered afresh. */
	assert_int_equal(ocsp_respond(r, nder, nlen, lookup, &t, now, &r2, &l2, &err), 0);
	assert_int_equal(t.calls, calls + 1);
	free(r2);
	/* Revoked in the store: the cache still answers good until flushed. */
	t.e[0].st.revoked = 1;
	t.e[0].st.revoked_at = now;
	t.e[0].st.reason = OCSP_REVOKED_STATUS_SUPERSEDED;
	assert_int_equal(ocsp_respond(r, der, len, lookup, &t, now + 20, &r2, &l2, &err), 0);
	assert_memory_equal(r1, r2, l1);
	free(r2);
	ocsp_cache_flush(r);
	assert_int_equal(ocsp_respond(r, der, len, lookup, &t, now + 30, &r2, &l2, &err), 0);
	assert_int_equal(t.calls, calls + 2);
	assert_int_equal(ocsp_parse(r2, l2, &bs), OCSP_RESPONSE_STATUS_SUCCESSFUL);
	ids[0] = cid_for(EVP_sha256(), x_issuing_b, X509_get0_serialNumber(c));
	assert_int_equal(OCSP_resp_find_status(bs, ids[0], &st, &reason, NULL, NULL, NULL), 1);
	assert_int_equal(st, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(reason, OCSP_REVOKED_STATUS_SUPERSEDED);
	OCSP_CERTID_free(ids[0]);
	OCSP_BASICRESP_free(bs);
	free(r1);
	r1 = r2;
	l1 = l2;
	/* Within the ttl: the revoked answer, cached; past it: signed again. */
	assert_int_equal(ocsp_respond(r, der, len, lookup, &t, now + 89, &r2, &l2, &err), 0);
	assert_int_equal(t.calls, calls + 2);
	assert_memory_equal(r1, r2, l1);
	free(r2);
	assert_int_equal(ocsp_respond(r, der, len, lookup, &t, now + 90, &r2, &l2, &err), 0);
	assert_int_equal(t.calls, calls + 3);
	free(r2);
	/* A clock gone back does not take a response from the future. */
	assert_int_equal(ocsp_respond(r, der, len, lookup, &t, now, &r2, &l2, &err), 0);
	assert_int_equal(t.calls, calls + 4);
	free(r2);
	/* Setting the CAs again empties the cache as a flush does. */
	assert_int_equal(ocsp_respond(r, der, len, lookup, &t, now, &r2, &l2, &err), 0);
	assert_int_equal(t.calls, calls + 4);
	free(r2);
	{
		struct ocsp_ca one = { .ca_id = "issuing-b", .cert = x_issuing_b,
			.responder_cert = x_issuing_b, .responder_key_id = "issuing-b" };
		assert_int_equal(ocsp_responder_set_cas(r, &one, 1, &err), 0);
	}
	assert_int_equal(ocsp_respond(r, der, len, lookup, &t, now, &r2, &l2, &err), 0);
	assert_int_equal(t.calls, calls + 5);
	assert_int_equal(ocsp_parse(r2, l2, &bs), OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(certs_num(OCSP_resp_get0_certs(bs)), 0);
	assert_int_equal(ocsp_verify(bs, x_root_b, x_issuing_b), 1);
	OCSP_BASICRESP_free(bs);
	free(r2);
	/* A responder with no cache signs every time. */
	nocache = responder(0);
	assert_int_equal(ocsp_respond(nocache, der, len, lookup, &t, now, &r2, &l2, &err), 0);
	free(r2);
	assert_int_equal(ocsp_respond(nocache, der, len, lookup, &t, now, &r2, &l2, &err), 0);
	free(r2);
	assert_int_equal(t.calls, calls + 7);
	ocsp_responder_free(nocache);
	/* A delegated responder that is not one is refused. */
	{
		struct ocsp_ca bad = { .ca_id = "issuing-b", .cert = x_issuing_b,
			.responder_cert = x_issuing_a, .responder_key_id = "issuing-a" };
		assert_int_equal(ocsp_responder_set_cas(r, &bad, 1, &err), SMIME_E_USAGE);
	}
	free(r1);
	free(der);
	free(nder);
	free((void *)req.csr);
	X509_free(c);
	ocsp_responder_free(r);
	pthread_mutex_destroy(&t.lock);
}

/* Many threads at once, flushes among them; and the speed of cache hits. */
struct ocsp_thread {
	struct ocsp_responder *r;
	struct lookup_table *t;
	unsigned char *der[4];
	size_t len[4];
	int n, bad;
	bool flusher;
};

static void *
ocsp_worker(void *arg)
{
	struct ocsp_thread *w = arg;
	struct smime_error err;
	unsigned char *resp;
	size_t len;
	int i;

	for (i = 0; i < w->n; i++) {
		if (w->flusher && i % 50 == 0)
			ocsp_cache_flush(w->r);
		if (ocsp_respond(w->r, w->der[i % 4], w->len[i % 4], lookup, w->t, now, &resp, &len,
		    &err) != 0) {
			w->bad++;
			continue;
		}
		if (ocsp_parse(resp, len, NULL) != OCSP_RESPONSE_STATUS_SUCCESSFUL)
			w->bad++;
		free(resp);
	}
	return NULL;
}

static void
test_ocsp_threads(void **state)
{
	enum { THREADS = 4 };
	struct lookup_table t = { .n = 0 };
	struct ocsp_responder *r = responder(3600);
	struct ocsp_thread w[THREADS];
	pthread_t th[THREADS];
	OCSP_CERTID *ids[1];
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	struct smime_error err;
	struct timespec a, b;
	unsigned char *resp;
	size_t len;
	double secs;
	int i, k, n_hits;
	const char *env = getenv("SMIME_TEST_OCSP_HITS");

	(void)state;
	pthread_mutex_init(&t.lock, NULL);
	for (i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].r = r;
		w[i].t = &t;
		w[i].n = 300;
		w[i].flusher = i == 0;
		for (k = 0; k < 4; k++) {
			ASN1_INTEGER_set(serial, 1000 + k);
			ids[0] = cid_for(k % 2 ? EVP_sha256() : EVP_sha1(),
			    k < 2 ? x_issuing_a : x_issuing_b, serial);
			w[i].der[k] = mk_ocsp_req(ids, 1, k == 3 ? 16 : 0, false, &w[i].len[k],
			    NULL);
		}
	}
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, ocsp_worker, &w[i]), 0);
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].bad, 0);
	}

	/* Cache hits, timed (reported, not asserted: the target is > 10,000/s). */
	n_hits = env != NULL ? atoi(env) : 20000;
	assert_int_equal(ocsp_respond(r, w[0].der[0], w[0].len[0], lookup, &t, now, &resp, &len,
	    &err), 0);
	free(resp);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n_hits; i++) {
		assert_int_equal(ocsp_respond(r, w[0].der[i & 1], w[0].len[i & 1], lookup, &t, now,
		    &resp, &len, &err), 0);
		free(resp);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	print_message("# OCSP cache hits: %d in %.3f s, %.0f/s on one thread\n", n_hits, secs,
	    secs > 0 ? n_hits / secs : 0.0);

	for (i = 0; i < THREADS; i++)
		for (k = 0; k < 4; k++)
			free(w[i].der[k]);
	ASN1_INTEGER_free(serial);
	ocsp_responder_free(r);
	pthread_mutex_destroy(&t.lock);
}

/* An RSA public key with modulus n and exponent e, whatever they are. */
static EVP_PKEY *
rsa_pub(const BIGNUM *n, const BIGNUM *e)
{
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *k = NULL;

	assert_non_null(b);
	assert_true(OSSL_PARAM_BLD_push_BN(b, "n", n) && OSSL_PARAM_BLD_push_BN(b, "e", e));
	params = OSSL_PARAM_BLD_to_param(b);
	assert_true(EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) == 1);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

static BIGNUM *
prime_of(int bits)
{
	BIGNUM *p = BN_new();

	assert_true(BN_generate_prime_ex(p, bits, 0, NULL, NULL, NULL) == 1);
	return p;
}

static BIGNUM *
power_of(const BIGNUM *p, unsigned k)
{
	BIGNUM *r = BN_new(), *kk = BN_new();
	BN_CTX *ctx = BN_CTX_new();

	assert_true(BN_set_word(kk, k) && BN_exp(r, p, kk, ctx));
	BN_free(kk);
	BN_CTX_free(ctx);
	return r;
}

/* S/MIME BR 6.1.6 for RSA keys: each SHOULD, each way of breaking it. */
static void
test_rsa_public_check(void **state)
{
	struct smime_error err;
	BIGNUM *e = NULL, *n = NULL, *e3 = BN_new(), *ebig = BN_new(), *v, *p, *q, *r;
	EVP_PKEY *k;
	BN_CTX *ctx = BN_CTX_new();
	const struct {
		const char *what;
		unsigned k;
		int pbits;
	} powers[] = {
		{ "p^2", 2, 1024 }, { "p^3", 3, 683 }, { "p^5", 5, 410 }, { "p^7", 7, 293 },
		{ "p^17", 17, 121 }, { "p^53", 53, 39 },
	};

	(void)state;
	assert_true(EVP_PKEY_get_bn_param(k_rsa, "n", &n) && EVP_PKEY_get_bn_param(k_rsa, "e", &e));
	/* A real key passes, and so do the other key sizes the CA takes. */
	assert_int_equal(ca_rsa_public_check(k_rsa, &err), 0);
	k = EVP_RSA_gen(3072);
	assert_int_equal(ca_rsa_public_check(k, &err), 0);
	EVP_PKEY_free(k);
	/* Three distinct primes: not a prime power, passes. */
	p = prime_of(683);
	q = prime_of(683);
	r = prime_of(682);
	v = BN_new();
	assert_true(BN_mul(v, p, q, ctx) && BN_mul(v, v, r, ctx));
	k = rsa_pub(v, e);
	assert_int_equal(ca_rsa_public_check(k, &err), 0);
	EVP_PKEY_free(k);
	BN_free(p);
	BN_free(q);
	BN_free(r);

	/* The exponent: 3 and 2^300+1 are odd but outside 2^16+1..2^256-1. */
	assert_true(BN_set_word(e3, 3));
	k = rsa_pub(n, e3);
	assert_int_equal(ca_rsa_public_check(k, &err), SMIME_E_POLICY);
	assert_non_null(strstr(err.message, "exponent"));
	EVP_PKEY_free(k);
	assert_true(BN_set_bit(ebig, 300) && BN_set_bit(ebig, 0));
	k = rsa_pub(n, ebig);
	assert_int_equal(ca_rsa_public_check(k, &err), SMIME_E_POLICY);
	EVP_PKEY_free(k);

	/* An even modulus; a factor of 3; a factor of 751 (the last below 752). */
	assert_true(BN_copy(v, n) && BN_add_word(v, 1));
	k = rsa_pub(v, e);
	assert_int_equal(ca_rsa_public_check(k, &err), SMIME_E_POLICY);
	assert_non_null(strstr(err.message, "even"));
	EVP_PKEY_free(k);
	assert_true(BN_copy(v, n) && BN_mul_word(v, 3));
	k = rsa_pub(v, e);
	assert_int_equal(ca_rsa_public_check(k, &err), SMIME_E_POLICY);
	assert_non_null(strstr(err.message, "factor 3,"));
	EVP_PKEY_free(k);
	assert_true(BN_copy(v, n) && BN_mul_word(v, 751));
	k = rsa_pub(v, e);
	assert_int_equal(ca_rsa_public_check(k, &err), SMIME_E_POLICY);
	assert_non_null(strstr(err.message, "factor 751"));
	EVP_PKEY_free(k);
	/* 757 is the first prime the trial division does not test: n * 757 is
	 * left to the RSA signature, not refused here. */
	assert_true(BN_copy(v, n) && BN_mul_word(v, 757));
	k = rsa_pub(v, e);
	assert_int_equal(ca_rsa_public_check(k, &err), 0);
	EVP_PKEY_free(k);

	/* Prime powers, from squares of 1024-bit primes to p^53. */
	for (size_t i = 0; i < sizeof(powers) / sizeof(powers[0]); i++) {
		char want[64];

		p = prime_of(powers[i].pbits);
		BN_free(v);
		v = power_of(p, powers[i].k);
		k = rsa_pub(v, e);
		assert_int_equal(ca_rsa_public_check(k, &err), SMIME_E_POLICY);
		snprintf(want, sizeof(want), "perfect %u-th power", powers[i].k);
		if (strstr(err.message, want) == NULL)
			fail_msg("%s: %s", powers[i].what, err.message);
		EVP_PKEY_free(k);
		/* One more or less is no power. */
		assert_true(BN_add_word(v, 2));
		k = rsa_pub(v, e);
		if (ca_rsa_public_check(k, &err) == SMIME_E_POLICY)
			assert_null(strstr(err.message, "perfect"));
		EVP_PKEY_free(k);
		BN_free(p);
	}
	/* 757^211: the smallest prime the trial division leaves, to the
	 * largest prime power a 2048-bit modulus can hold. */
	BN_free(v);
	p = BN_new();
	assert_true(BN_set_word(p, 757));
	v = power_of(p, 211);
	k = rsa_pub(v, e);
	assert_int_equal(ca_rsa_public_check(k, &err), SMIME_E_POLICY);
	assert_non_null(strstr(err.message, "perfect 211-th power"));
	EVP_PKEY_free(k);
	BN_free(p);

	BN_free(v);
	BN_free(n);
	BN_free(e);
	BN_free(e3);
	BN_free(ebig);
	BN_CTX_free(ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_master_key),
		cmocka_unit_test(test_wrap),
		cmocka_unit_test(test_signer_digests),
		cmocka_unit_test(test_ca_create),
		cmocka_unit_test(test_issue),
		cmocka_unit_test(test_issue_serials),
		cmocka_unit_test(test_issue_validity),
		cmocka_unit_test(test_issue_long_address),
		cmocka_unit_test(test_issue_errors),
		cmocka_unit_test(test_rsa_public_check),
		cmocka_unit_test(test_import),
		cmocka_unit_test(test_crl),
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_reason),
		cmocka_unit_test(test_ocsp),
		cmocka_unit_test(test_ocsp_cache),
		cmocka_unit_test(test_ocsp_threads),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

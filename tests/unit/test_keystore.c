/*
 * Unit tests of lib/keystore.c and of the classification in lib/cert.c.
 * Every test makes its own PKI; keystores live in fresh temporary folders.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "testutil.h"
#include "../../lib/keystore_internal.h"

#define PASS "correct horse battery staple"
#define TEST_ITER KEYSTORE_PBKDF2_ITER_MIN
#define DAY 86400

/* Keys made once for the whole run (RSA generation is slow). */
static EVP_PKEY *k_rsa, *k_p256, *k_ed, *k_ca;
static X509 *c_ca;

static int
group_setup(void **state)
{
	(void)state;
	k_rsa = tu_key("rsa2048");
	k_p256 = tu_key("p256");
	k_ed = tu_key("ed25519");
	k_ca = tu_key("p256");
	c_ca = tu_cert(NULL, NULL, k_ca, "Test Root", NULL, SMIME_ROLE_CA, -1000, 3000);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(k_rsa);
	EVP_PKEY_free(k_p256);
	EVP_PKEY_free(k_ed);
	EVP_PKEY_free(k_ca);
	X509_free(c_ca);
	return 0;
}

static void
free_strings(STACK_OF(OPENSSL_STRING) *s)
{
	int i;

	for (i = 0; i < sk_OPENSSL_STRING_num(s); i++)
		OPENSSL_free(sk_OPENSSL_STRING_value(s, i));
	sk_OPENSSL_STRING_free(s);
}

/*
 * A certificate for key signed by k_ca with exactly the extensions given
 * (NULL: absent), and optionally a subject emailAddress.
 */
static X509 *
mk_cert(EVP_PKEY *key, const char *ku, const char *eku, const char *bc, const char *san,
    const char *subject_email)
{
	X509 *c = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	unsigned char serial[12];
	BIGNUM *bn;
	const char *vals[4] = { ku, eku, bc, san };
	int nids[4] = { NID_key_usage, NID_ext_key_usage, NID_basic_constraints,
	    NID_subject_alt_name };
	int i;

	RAND_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
	BN_free(bn);
	X509_set_version(c, X509_VERSION_3);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"Leaf",
	    -1, -1, 0);
	if (subject_email != NULL)
		X509_NAME_add_entry_by_NID(name, NID_pkcs9_emailAddress, MBSTRING_ASC,
		    (const unsigned char *)subject_email, -1, -1, 0);
	X509_set_subject_name(c, name);
	X509_set_issuer_name(c, X509_get_subject_name(c_ca));
	X509_NAME_free(name);
	X509_gmtime_adj(X509_getm_notBefore(c), -DAY);
	X509_gmtime_adj(X509_getm_notAfter(c), 30L * DAY);
	X509_set_pubkey(c, key);
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, c_ca, c, NULL, NULL, 0);
	for (i = 0; i < 4; i++) {
		if (vals[i] == NULL)
			continue;
		ext = X509V3_EXT_conf_nid(NULL, &ctx, nids[i], vals[i]);
		assert_non_null(ext);
		assert_true(X509_add_ext(c, ext, -1));
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(c, k_ca, EVP_sha256()) > 0);
	return c;
}

/* ---------------- classification (lib/cert.c) ---------------- */

struct roles_row {
	const char *name;
	EVP_PKEY **key;
	const char *ku, *bc;
	int want;
};

static void
test_cert_roles(void **state)
{
	EVP_PKEY *x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	EVP_PKEY *kx = x25519;
	const struct roles_row rows[] = {
		{ "rsa sign", &k_rsa, "digitalSignature", NULL, SMIME_ROLE_SIGN },
		{ "rsa nonRepudiation", &k_rsa, "nonRepudiation", NULL, SMIME_ROLE_SIGN },
		{ "rsa encrypt", &k_rsa, "keyEncipherment", NULL, SMIME_ROLE_ENCRYPT },
		{ "rsa both", &k_rsa, "digitalSignature,keyEncipherment", NULL,
		    SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT },
		{ "rsa no keyUsage", &k_rsa, NULL, NULL, SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT },
		{ "ec keyAgreement", &k_p256, "keyAgreement", NULL, SMIME_ROLE_ENCRYPT },
		{ "ec no keyUsage", &k_p256, NULL, NULL, SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT },
		{ "ed25519 no keyUsage", &k_ed, NULL, NULL, SMIME_ROLE_SIGN },
		{ "x25519 keyAgreement", &kx, "keyAgreement", NULL, SMIME_ROLE_ENCRYPT },
		{ "ca", &k_p256, "keyCertSign,cRLSign", "critical,CA:TRUE", SMIME_ROLE_CA },
		/* negative rows */
		{ "ec keyEncipherment is not EC encryption", &k_p256, "keyEncipherment", NULL,
		    SMIME_ROLE_NONE },
		{ "rsa keyAgreement is not RSA encryption", &k_rsa, "keyAgreement", NULL,
		    SMIME_ROLE_NONE },
		{ "ed25519 keyAgreement", &k_ed, "keyAgreement", NULL, SMIME_ROLE_NONE },
		{ "certSign only", &k_rsa, "keyCertSign", NULL, SMIME_ROLE_NONE },
		{ "CA:FALSE", &k_rsa, "digitalSignature", "CA:FALSE", SMIME_ROLE_SIGN },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		X509 *c = mk_cert(*rows[i].key, rows[i].ku, NULL, rows[i].bc, NULL, NULL);

		print_message("roles: %s\n", rows[i].name);
		assert_int_equal(smime_cert_roles(c), rows[i].want);
		X509_free(c);
	}
	assert_int_equal(smime_cert_roles(NULL), SMIME_ROLE_NONE);
	EVP_PKEY_free(x25519);
}

static void
test_cert_eku(void **state)
{
	const struct { const char *eku; bool want; } rows[] = {
		{ NULL, true },
		{ "emailProtection", true },
		{ "anyExtendedKeyUsage", true },
		{ "serverAuth,emailProtection", true },
		{ "serverAuth", false },
		{ "clientAuth,codeSigning", false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		X509 *c = mk_cert(k_p256, NULL, rows[i].eku, NULL, NULL, NULL);

		print_message("eku: %s\n", rows[i].eku ? rows[i].eku : "(none)");
		assert_int_equal(smime_cert_email_protection(c), rows[i].want);
		X509_free(c);
	}
	assert_false(smime_cert_email_protection(NULL));
}

static void
test_cert_emails(void **state)
{
	const struct {
		const char *san, *subject_email;
		const char *want;  /* joined by ',' */
	} rows[] = {
		{ "email:Alice@Example.COM", NULL, "alice@example.com" },
		{ "email:a@x.org,email:B@x.org,email:A@X.org", "c@x.org", "a@x.org,b@x.org,c@x.org" },
		{ "email:a@x.org", "A@x.org", "a@x.org" },
		{ NULL, "Only@Subject.org", "only@subject.org" },
		{ NULL, NULL, "" },
		/* negative rows: not addresses, or not kept */
		{ "email:no-at-sign", NULL, "" },
		{ "email:@x.org,email:x@", NULL, "" },
		{ "DNS:example.com,URI:http://x.org/", NULL, "" },
		{ NULL, "a,b@x.org", "" },
		{ NULL, "a b@x.org", "" },
	};
	size_t i;
	int j;
	char got[1024];

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		X509 *c = mk_cert(k_p256, NULL, NULL, NULL, rows[i].san, rows[i].subject_email);
		STACK_OF(OPENSSL_STRING) *s = smime_cert_emails(c);

		assert_non_null(s);
		got[0] = '\0';
		for (j = 0; j < sk_OPENSSL_STRING_num(s); j++) {
			if (j > 0)
				strcat(got, ",");
			strcat(got, sk_OPENSSL_STRING_value(s, j));
		}
		print_message("emails: %s -> %s\n", rows[i].san ? rows[i].san : "-", got);
		assert_string_equal(got, rows[i].want);
		free_strings(s);
		X509_free(c);
	}
}

static void
test_cert_emails_bounded(void **state)
{
	char san[8192] = "";
	char one[64];
	X509 *c;
	STACK_OF(OPENSSL_STRING) *s;
	int i;

	(void)state;
	for (i = 0; i < SMIME_CERT_MAX_EMAILS + 20; i++) {
		snprintf(one, sizeof(one), "%semail:u%d@x.org", i ? "," : "", i);
		strcat(san, one);
	}
	c = mk_cert(k_p256, NULL, NULL, NULL, san, NULL);
	s = smime_cert_emails(c);
	assert_int_equal(sk_OPENSSL_STRING_num(s), SMIME_CERT_MAX_EMAILS);
	assert_true(smime_cert_has_email(c, "U3@X.ORG"));
	assert_false(smime_cert_has_email(c, "nobody@x.org"));
	assert_false(smime_cert_has_email(c, NULL));
	free_strings(s);
	X509_free(c);
}

static void
test_cert_fingerprint_subject_validity(void **state)
{
	X509 *c = tu_cert(c_ca, k_ca, k_p256, "Alice, \"A\"", "alice@x.org",
	    SMIME_ROLE_SIGN, -10, -1);
	unsigned char md[32];
	unsigned int n;
	char fp[65], want[65];
	char *subj;
	int i;

	(void)state;
	smime_cert_fingerprint(c, fp);
	assert_true(X509_digest(c, EVP_sha256(), md, &n));
	for (i = 0; i < 32; i++)
		sprintf(want + 2 * i, "%02x", md[i]);
	assert_string_equal(fp, want);
	subj = smime_cert_subject(c);
	assert_non_null(subj);
	/* RFC 2253: most specific first, specials escaped. */
	assert_string_equal(subj, "CN=Alice\\, \\\"A\\\",O=smimed tests");
	OPENSSL_free(subj);
	/* Expired yesterday: not valid now, valid five days ago; bounds inclusive. */
	assert_false(smime_cert_valid_at(c, 0));
	assert_true(smime_cert_valid_at(c, time(NULL) - 5 * DAY));
	assert_false(smime_cert_valid_at(c, time(NULL) - 11 * DAY));
	assert_false(smime_cert_valid_at(NULL, 0));
	X509_free(c);
}

/* ---------------- keystore helpers ---------------- */

static struct smime_keystore *
ks_open(const char *dir)
{
	struct smime_keystore *ks = NULL;
	struct smime_error err;
	int rc = smime_keystore_open(dir, SMIME_KEYSTORE_CREATE, &ks, &err);

	if (rc != 0)
		print_message("open: %s\n", err.message);
	assert_int_equal(rc, 0);
	smime_keystore_set_passphrase(ks, PASS);
	keystore_test_set_iterations(ks, TEST_ITER);
	return ks;
}

static void
ks_add(struct smime_keystore *ks, X509 *c, EVP_PKEY *k, enum smime_entry_kind kind)
{
	struct smime_error err;
	int rc = smime_keystore_add(ks, c, k, kind, NULL, &err);

	if (rc != 0)
		print_message("add: %s\n", err.message);
	assert_int_equal(rc, 0);
}

static void
ks_commit(struct smime_keystore *ks)
{
	struct smime_error err;
	int rc = smime_keystore_commit(ks, &err);

	if (rc != 0)
		print_message("commit: %s\n", err.message);
	assert_int_equal(rc, 0);
}

static char *
path_of(const char *dir, const char *sub)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, sub) > 0);
	return p;
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static char *
fp_of(X509 *c)
{
	static char fp[65];

	smime_cert_fingerprint(c, fp);
	return fp;
}

/* ---------------- keystore ---------------- */

static void
test_ks_roundtrip_and_permissions(void **state)
{
	char *tmp = tu_tmpdir(), *dir = path_of(tmp, "a/b/ks"), *p;
	struct smime_keystore *ks;
	struct smime_error err;
	X509 *id = tu_cert(c_ca, k_ca, k_rsa, "Alice", "alice@x.org",
	    SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT, -1, 300);
	X509 *contact = tu_cert(c_ca, k_ca, k_ed, "Bob", "bob@y.org", SMIME_ROLE_SIGN, -1, 300);
	X509 *got = NULL;
	EVP_PKEY *key = NULL;
	const struct smime_entry *e;
	struct stat st;
	DIR *d;
	struct dirent *de;
	const char *subs[] = { "", "certs", "keys" };
	size_t i;
	char fp[65];

	(void)state;
	ks = ks_open(dir);
	assert_string_equal(smime_keystore_dir(ks), dir);
	ks_add(ks, id, k_rsa, SMIME_ENTRY_IDENTITY);
	ks_add(ks, contact, NULL, SMIME_ENTRY_CONTACT);
	ks_add(ks, c_ca, NULL, SMIME_ENTRY_ANCHOR);
	/* Staged keys are usable before the commit. */
	assert_int_equal(smime_keystore_key(ks, fp_of(id), &key, &err), 0);
	assert_int_equal(EVP_PKEY_eq(key, k_rsa), 1);
	EVP_PKEY_free(key);
	key = NULL;
	ks_commit(ks);
	smime_keystore_free(ks);

	ks = ks_open(dir);
	assert_int_equal(smime_keystore_count(ks), 3);
	e = smime_keystore_lookup(ks, fp_of(id));
	assert_non_null(e);
	assert_int_equal(e->kind, SMIME_ENTRY_IDENTITY);
	assert_true(e->has_key);
	assert_int_equal(e->roles, SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT);
	assert_string_equal(e->emails, "alice@x.org");
	assert_string_equal(e->subject, "CN=Alice,O=smimed tests");
	e = smime_keystore_lookup(ks, fp_of(contact));
	assert_int_equal(e->kind, SMIME_ENTRY_CONTACT);
	assert_false(e->has_key);
	/* A unique prefix of 8 finds it; 7 does not; upper case is fine. */
	strcpy(fp, fp_of(c_ca));
	fp[8] = '\0';
	assert_ptr_equal(smime_keystore_lookup(ks, fp), smime_keystore_lookup(ks, fp_of(c_ca)));
	fp[7] = '\0';
	assert_null(smime_keystore_lookup(ks, fp));
	assert_null(smime_keystore_lookup(ks, "zzzzzzzzzz"));
	assert_int_equal(smime_keystore_cert(ks, fp_of(contact), &got, &err), 0);
	assert_int_equal(X509_cmp(got, contact), 0);
	X509_free(got);
	assert_int_equal(smime_keystore_key(ks, fp_of(id), &key, &err), 0);
	assert_int_equal(EVP_PKEY_eq(key, k_rsa), 1);
	EVP_PKEY_free(key);
	assert_int_equal(smime_keystore_key(ks, fp_of(contact), &key, &err), SMIME_E_NOTFOUND);
	smime_keystore_free(ks);

	/* Folders 0700, every file 0600. */
	for (i = 0; i < 3; i++) {
		p = path_of(dir, subs[i]);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0700);
		d = opendir(p);
		assert_non_null(d);
		while ((de = readdir(d)) != NULL) {
			char *f;

			if (de->d_name[0] == '.')
				continue;
			f = path_of(p, de->d_name);
			assert_int_equal(lstat(f, &st), 0);
			if (S_ISREG(st.st_mode)) {
				print_message("mode %o %s\n", st.st_mode & 07777, f);
				assert_int_equal(st.st_mode & 07777, 0600);
			}
			free(f);
		}
		closedir(d);
		free(p);
	}
	/* Not created without the flag. */
	p = path_of(tmp, "missing");
	assert_int_equal(smime_keystore_open(p, 0, &ks, &err), SMIME_E_NOTFOUND);
	assert_null(ks);
	free(p);
	X509_free(id);
	X509_free(contact);
	free(dir);
	tu_rmrf(tmp);
}

static int
cb_give(void *arg, char *buf, size_t size)
{
	snprintf(buf, size, "%s", (const char *)arg);
	return 0;
}

static int
cb_refuse(void *arg, char *buf, size_t size)
{
	(void)arg; (void)buf; (void)size;
	return -1;
}

static void
test_ks_passphrase(void **state)
{
	const struct {
		const char *name;
		const char *set;          /* passphrase set, or NULL */
		smime_passphrase_cb cb;
		const char *cb_arg;
		int want;
		const char *msg;
	} rows[] = {
		{ "set, right", PASS, NULL, NULL, 0, NULL },
		{ "callback, right", NULL, cb_give, PASS, 0, NULL },
		{ "set, wrong", "not it", NULL, NULL, SMIME_E_CRYPTO, "wrong keystore passphrase" },
		{ "callback, wrong", NULL, cb_give, "nope", SMIME_E_CRYPTO,
		    "wrong keystore passphrase" },
		{ "missing", NULL, NULL, NULL, SMIME_E_USAGE,
		    "the keystore passphrase is needed: set SMIME_PASSPHRASE or use --passphrase-file" },
		{ "empty", "", NULL, NULL, SMIME_E_USAGE, "the keystore passphrase is needed" },
		{ "callback refuses", NULL, cb_refuse, NULL, SMIME_E_USAGE,
		    "the keystore passphrase is needed" },
	};
	char *dir = tu_tmpdir();
	struct smime_keystore *ks;
	struct smime_error err;
	X509 *id = tu_cert(c_ca, k_ca, k_p256, "Alice", "alice@x.org", SMIME_ROLE_SIGN, -1, 30);
	EVP_PKEY *key;
	size_t i;
	int rc;

	(void)state;
	ks = ks_open(dir);
	ks_add(ks, id, k_p256, SMIME_ENTRY_IDENTITY);
	ks_commit(ks);
	smime_keystore_free(ks);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("passphrase: %s\n", rows[i].name);
		assert_int_equal(smime_keystore_open(dir, 0, &ks, &err), 0);
		smime_keystore_set_passphrase(ks, rows[i].set);
		if (rows[i].cb != NULL)
			smime_keystore_set_passphrase_cb(ks, rows[i].cb, (void *)rows[i].cb_arg);
		key = NULL;
		rc = smime_keystore_key(ks, fp_of(id), &key, &err);
		assert_int_equal(rc, rows[i].want);
		if (rc == 0)
			assert_int_equal(EVP_PKEY_eq(key, k_p256), 1);
		else {
			assert_null(key);
			assert_non_null(strstr(err.message, rows[i].msg));
		}
		EVP_PKEY_free(key);
		smime_keystore_free(ks);
	}
	/* Adding a key without a passphrase changes nothing. */
	assert_int_equal(smime_keystore_open(dir, 0, &ks, &err), 0);
	{
		EVP_PKEY *k2 = tu_key("p256");
		X509 *c2 = tu_cert(c_ca, k_ca, k2, "Alice 2", "alice@x.org", SMIME_ROLE_SIGN, -1, 30);

		assert_int_equal(smime_keystore_add(ks, c2, k2, SMIME_ENTRY_IDENTITY, NULL, &err),
		    SMIME_E_USAGE);
		assert_int_equal(smime_keystore_count(ks), 1);
		X509_free(c2);
		EVP_PKEY_free(k2);
	}
	smime_keystore_free(ks);
	X509_free(id);
	tu_rmrf(dir);
}

enum tamper { T_FLIP_MIDDLE, T_TRUNCATE, T_GARBAGE, T_CLEAR_PKCS8, T_OTHER_KEY, T_CERT_FLIP,
    T_KEY_MISSING };

static void
test_ks_tampered_files(void **state)
{
	const struct { const char *name; enum tamper how; int want; } rows[] = {
		{ "ciphertext byte flipped", T_FLIP_MIDDLE, -1 },
		{ "key file truncated", T_TRUNCATE, SMIME_E_INPUT },
		{ "key file garbage", T_GARBAGE, SMIME_E_INPUT },
		{ "key file swapped for clear PKCS#8", T_CLEAR_PKCS8, SMIME_E_INPUT },
		{ "key file of another entry", T_OTHER_KEY, SMIME_E_CRYPTO },
		{ "certificate byte flipped", T_CERT_FLIP, SMIME_E_INPUT },
		{ "key file missing", T_KEY_MISSING, SMIME_E_IO },
	};
	EVP_PKEY *other = tu_key("p256");
	X509 *id = tu_cert(c_ca, k_ca, k_p256, "Alice", "alice@x.org", SMIME_ROLE_SIGN, -1, 30);
	X509 *id2 = tu_cert(c_ca, k_ca, other, "Alice", "alice@x.org", SMIME_ROLE_SIGN, -1, 30);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *dir = tu_tmpdir(), *kp, *cp, *op, name[128];
		struct smime_keystore *ks;
		struct smime_error err;
		EVP_PKEY *key = NULL;
		unsigned char *data, *der = NULL;
		size_t len;
		int rc, dl;

		print_message("tamper: %s\n", rows[i].name);
		ks = ks_open(dir);
		ks_add(ks, id, k_p256, SMIME_ENTRY_IDENTITY);
		ks_add(ks, id2, other, SMIME_ENTRY_IDENTITY);
		ks_commit(ks);
		smime_keystore_free(ks);
		snprintf(name, sizeof(name), "keys/%s.p8", fp_of(id));
		kp = path_of(dir, name);
		snprintf(name, sizeof(name), "keys/%s.p8", fp_of(id2));
		op = path_of(dir, name);
		snprintf(name, sizeof(name), "certs/%s.der", fp_of(id));
		cp = path_of(dir, name);
		data = tu_read_file(rows[i].how == T_CERT_FLIP ? cp : kp, &len);
		assert_non_null(data);
		switch (rows[i].how) {
		case T_FLIP_MIDDLE:
			data[len - 40] ^= 0x01;
			write_file(kp, data, len);
			break;
		case T_TRUNCATE:
			write_file(kp, data, len / 2);
			break;
		case T_GARBAGE:
			write_file(kp, "not DER at all", 14);
			break;
		case T_CLEAR_PKCS8:
			{
				PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k_p256);

				dl = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
				PKCS8_PRIV_KEY_INFO_free(p8);
				write_file(kp, der, (size_t)dl);
				OPENSSL_free(der);
			}
			break;
		case T_OTHER_KEY:
			free(data);
			data = tu_read_file(op, &len);
			write_file(kp, data, len);
			break;
		case T_CERT_FLIP:
			data[len / 2] ^= 0x01;
			write_file(cp, data, len);
			break;
		case T_KEY_MISSING:
			unlink(kp);
			break;
		}
		free(data);
		ERR_clear_error();
		assert_int_equal(smime_keystore_open(dir, 0, &ks, &err), 0);
		smime_keystore_set_passphrase(ks, PASS);
		rc = smime_keystore_key(ks, fp_of(id), &key, &err);
		print_message("  -> %d %s\n", rc, err.message);
		assert_null(key);
		if (rows[i].want < 0)
			assert_true(rc == SMIME_E_CRYPTO || rc == SMIME_E_INPUT);
		else
			assert_int_equal(rc, rows[i].want);
		/* The other entry is untouched (except when its file was the weapon). */
		assert_int_equal(smime_keystore_key(ks, fp_of(id2), &key, &err), 0);
		EVP_PKEY_free(key);
		smime_keystore_free(ks);
		free(kp);
		free(cp);
		free(op);
		tu_rmrf(dir);
	}
	X509_free(id);
	X509_free(id2);
	EVP_PKEY_free(other);
}

/* Replace field `field` (0-based) of line `line` (1-based) of text. */
static char *
mutate(const char *text, int line, int field, const char *value)
{
	char *out = malloc(strlen(text) + strlen(value) + 1), *o = out;
	const char *p = text;
	int ln = 1, f = 0;

	while (*p != '\0') {
		if (ln == line && f == field) {
			o = stpcpy(o, value);
			while (*p != '\t' && *p != '\n' && *p != '\0')
				p++;
			f = -1;
			continue;
		}
		if (*p == '\t')
			f = f < 0 ? f : f + 1;
		if (*p == '\n') {
			ln++;
			f = 0;
		}
		*o++ = *p++;
	}
	*o = '\0';
	return out;
}

static void
test_ks_damaged_index(void **state)
{
	const struct {
		const char *name;
		int field;           /* field of line 2 to replace, or -1 */
		const char *value;   /* replacement, or the whole file when field < 0 */
		const char *msg;     /* expected in the error, or NULL for success */
	} rows[] = {
		{ "valid", 0, NULL, NULL },
		{ "fingerprint short", 0, "abcdef", "line 2: fingerprint" },
		{ "fingerprint upper case", 0,
		    "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
		    "line 2: fingerprint" },
		{ "kind", 1, "friend", "line 2: kind" },
		{ "roles", 2, "9", "line 2: roles" },
		{ "roles two digits", 2, "03", "line 2: roles" },
		{ "has_key", 3, "2", "line 2: has_key" },
		{ "identity without key", 3, "0", "line 2: an identity without a key" },
		{ "isn", 4, "00", "line 2: issuer and serial" },
		{ "ski odd", 5, "abc", "line 2: subject key identifier" },
		{ "ski too long (65 octets)", 5, "0000000000000000000000000000000000000000"
		    "0000000000000000000000000000000000000000000000000000000000000000000000000000"
		    "00000000000000",
		    "line 2: subject key identifier" },
		{ "notBefore junk", 6, "12x", "line 2: notBefore" },
		{ "notBefore leading zero", 6, "0123", "line 2: notBefore" },
		{ "notAfter empty", 7, "", "line 2: notAfter" },
		{ "notAfter overflow", 7, "99999999999999999999", "line 2: notAfter" },
		{ "added minus zero", 8, "-0", "line 2: added" },
		{ "emails upper case", 9, "Alice@x.org", "line 2: emails" },
		{ "emails no at", 9, "alice", "line 2: emails" },
		{ "emails empty item", 9, "a@x.org,,b@x.org", "line 2: emails" },
		{ "subject bad escape", 10, "CN=a\\x", "line 2: subject" },
		{ "subject trailing backslash", 10, "CN=a\\", "line 2: subject" },
		{ "caps not hex", 11, "zz", "line 2: caps" },
		{ "caps not DER", 11, "0500", "line 2: caps" },
		{ "caps_time without caps", 12, "5", "line 2: caps_time" },
		{ "preferred junk", 13, "x", "line 2: preferred" },
		{ "preferred empty", 13, "", "line 2: preferred" },
		{ "empty file", -1, "", "line 1: empty" },
		{ "bad header", -1, "hello\n", "line 1: not a keystore index header" },
		{ "future version", -1, "smime-keystore-index\t3\t0123456789abcdef\n",
		    "line 1: not a keystore index header" },
		{ "header only", -1, "smime-keystore-index\t1\t0123456789abcdef\n", NULL },
		{ "header only, version 2", -1, "smime-keystore-index\t2\t0123456789abcdef\n",
		    NULL },
		{ "empty line", -1, "smime-keystore-index\t1\t0123456789abcdef\n\n",
		    "line 2: too few fields" },
		{ "no final newline", -1, "smime-keystore-index\t1\t0123456789abcdef",
		    "line 1: truncated" },
	};
	char *dir = tu_tmpdir(), *ip = path_of(dir, "index"), *good, *text;
	struct smime_keystore *ks;
	struct smime_error err;
	X509 *id = tu_cert(c_ca, k_ca, k_p256, "Alice", "alice@x.org", SMIME_ROLE_SIGN, -1, 30);
	size_t i, len;
	int rc;

	(void)state;
	ks = ks_open(dir);
	ks_add(ks, id, k_p256, SMIME_ENTRY_IDENTITY);
	ks_commit(ks);
	smime_keystore_free(ks);
	good = (char *)tu_read_file(ip, &len);
	assert_non_null(good);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("index: %s\n", rows[i].name);
		if (rows[i].field < 0)
			text = strdup(rows[i].value);
		else if (rows[i].value == NULL)
			text = strdup(good);
		else
			text = mutate(good, 2, rows[i].field, rows[i].value);
		write_file(ip, text, strlen(text));
		ks = NULL;
		rc = smime_keystore_open(dir, 0, &ks, &err);
		if (rows[i].msg == NULL) {
			assert_int_equal(rc, 0);
			smime_keystore_free(ks);
		} else {
			print_message("  -> %s\n", err.message);
			assert_int_equal(rc, SMIME_E_INPUT);
			assert_null(ks);
			assert_non_null(strstr(err.message, rows[i].msg));
		}
		free(text);
	}
	/*
	 * Version 1 (13 fields, no preferred) is still read; a version 1
	 * header over a line of 14 fields is damage.
	 */
	{
		char *t = strdup(good), *tab;
		t[strlen("smime-keystore-index\t")] = '1';
		write_file(ip, t, strlen(t));
		assert_int_equal(smime_keystore_open(dir, 0, &ks, &err), SMIME_E_INPUT);
		assert_non_null(strstr(err.message, "line 2: too many fields"));
		tab = strrchr(t, '\t');
		assert_non_null(tab);
		strcpy(tab, "\n");
		write_file(ip, t, strlen(t));
		ks = NULL;
		assert_int_equal(smime_keystore_open(dir, 0, &ks, &err), 0);
		assert_int_equal(smime_keystore_count(ks), 1);
		assert_int_equal(smime_keystore_entry(ks, 0)->preferred, 0);
		smime_keystore_free(ks);
		free(t);
	}
	/* Whole-file rows built in code: duplicate, too long, NUL, too many fields. */
	{
		const char *nl = strchr(good, '\n') + 1;
		size_t big = KEYSTORE_LINE_MAX + 10;
		char *t;

		assert_true(asprintf(&t, "%s%s", good, nl) > 0);
		write_file(ip, t, strlen(t));
		assert_int_equal(smime_keystore_open(dir, 0, &ks, &err), SMIME_E_INPUT);
		assert_non_null(strstr(err.message, "line 3: duplicate fingerprint"));
		free(t);

		t = malloc(strlen(good) + big + 2);
		strcpy(t, good);
		memset(t + strlen(good), 'a', big);
		t[strlen(good) + big] = '\n';
		write_file(ip, t, strlen(good) + big + 1);
		assert_int_equal(smime_keystore_open(dir, 0, &ks, &err), SMIME_E_INPUT);
		assert_non_null(strstr(err.message, "line 3: longer than the limit"));
		free(t);

		t = strdup(good);
		t[strlen(t) - 3] = '\0';
		write_file(ip, t, len);
		assert_int_equal(smime_keystore_open(dir, 0, &ks, &err), SMIME_E_INPUT);
		assert_non_null(strstr(err.message, "line 2: NUL byte"));
		free(t);

		assert_true(asprintf(&t, "%.*s\textra\n", (int)(len - 1), good) > 0);
		write_file(ip, t, strlen(t));
		assert_int_equal(smime_keystore_open(dir, 0, &ks, &err), SMIME_E_INPUT);
		assert_non_null(strstr(err.message, "line 2: too many fields"));
		free(t);
	}
	free(good);
	free(ip);
	X509_free(id);
	tu_rmrf(dir);
}

static void
test_ks_history(void **state)
{
	char *dir = tu_tmpdir();
	struct smime_keystore *ks;
	struct smime_error err;
	EVP_PKEY *k_old = tu_key("p256"), *k_cur = tu_key("p256"), *k_next = tu_key("p256");
	EVP_PKEY *k_sign = tu_key("p256"), *k_bob1 = tu_key("p256"), *k_bob2 = tu_key("p256");
	X509 *old = tu_cert(c_ca, k_ca, k_old, "Alice", "alice@x.org", SMIME_ROLE_ENCRYPT, -400, -10);
	X509 *cur = tu_cert(c_ca, k_ca, k_cur, "Alice", "alice@x.org", SMIME_ROLE_ENCRYPT, -5, 300);
	X509 *next = tu_cert(c_ca, k_ca, k_next, "Alice", "alice@x.org", SMIME_ROLE_ENCRYPT, 10, 400);
	X509 *sign = tu_cert(c_ca, k_ca, k_sign, "Alice", "alice@x.org", SMIME_ROLE_SIGN, -1, 300);
	X509 *bob1 = tu_cert(c_ca, k_ca, k_bob1, "Bob", "bob@y.org", SMIME_ROLE_ENCRYPT, -3, 300);
	X509 *bob2 = tu_cert(c_ca, k_ca, k_bob2, "Bob", "bob@y.org", SMIME_ROLE_ENCRYPT, -300, -1);
	X509 *got = NULL, *cert = NULL;
	EVP_PKEY *key = NULL;
	const struct smime_entry *e;
	char fp[65];
	time_t now = time(NULL);
	const struct {
		const char *name;
		int role;
		const char *addr;
		time_t at;
		X509 *want;     /* NULL: not found */
	} rows[] = {
		{ "encryption now", SMIME_ROLE_ENCRYPT, "alice@x.org", 0, cur },
		{ "encryption, address in capitals", SMIME_ROLE_ENCRYPT, "ALICE@X.ORG", 0, cur },
		{ "encryption in 20 days: newest", SMIME_ROLE_ENCRYPT, "alice@x.org", now + 20 * DAY, next },
		{ "encryption 100 days ago: old one was valid", SMIME_ROLE_ENCRYPT, "alice@x.org",
		    now - 100 * DAY, old },
		{ "signing", SMIME_ROLE_SIGN, "alice@x.org", 0, sign },
		{ "any address", SMIME_ROLE_SIGN, NULL, 0, sign },
		{ "expired everywhere", SMIME_ROLE_ENCRYPT, "alice@x.org", now + 500 * DAY, NULL },
		{ "other address", SMIME_ROLE_ENCRYPT, "mallory@x.org", 0, NULL },
		{ "a contact is not an identity", SMIME_ROLE_ENCRYPT, "bob@y.org", 0, NULL },
	};
	size_t i;
	int rc;

	(void)state;
	ks = ks_open(dir);
	ks_add(ks, old, k_old, SMIME_ENTRY_IDENTITY);
	ks_add(ks, cur, k_cur, SMIME_ENTRY_IDENTITY);
	ks_add(ks, next, k_next, SMIME_ENTRY_IDENTITY);
	ks_add(ks, sign, k_sign, SMIME_ENTRY_IDENTITY);
	ks_add(ks, bob1, NULL, SMIME_ENTRY_CONTACT);
	ks_add(ks, bob2, NULL, SMIME_ENTRY_CONTACT);
	ks_commit(ks);
	smime_keystore_free(ks);
	ks = ks_open(dir);
	assert_int_equal(smime_keystore_count(ks), 6);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("identity: %s\n", rows[i].name);
		rc = smime_keystore_identity(ks, rows[i].role, rows[i].addr, rows[i].at, fp, &err);
		if (rows[i].want == NULL) {
			assert_int_equal(rc, SMIME_E_NOTFOUND);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_string_equal(fp, fp_of(rows[i].want));
	}
	assert_int_equal(smime_keystore_identity(ks, SMIME_ROLE_CA, NULL, 0, fp, &err),
	    SMIME_E_USAGE);
	/* Recipients: the newest valid one; the expired one is kept but never chosen. */
	assert_int_equal(smime_keystore_recipient(ks, "bob@y.org", 0, &e, &got, &err), 0);
	assert_string_equal(e->fingerprint, fp_of(bob1));
	assert_int_equal(X509_cmp(got, bob1), 0);
	X509_free(got);
	assert_int_equal(smime_keystore_recipient(ks, "alice@x.org", 0, &e, &got, &err), 0);
	assert_string_equal(e->fingerprint, fp_of(cur));
	X509_free(got);
	assert_int_equal(smime_keystore_recipient(ks, "bob@y.org", now + 400 * DAY, &e, &got,
	    &err), SMIME_E_NOTFOUND);
	assert_int_equal(smime_keystore_recipient(ks, "nobody@z.org", 0, &e, &got, &err),
	    SMIME_E_NOTFOUND);
	assert_non_null(smime_keystore_lookup(ks, fp_of(bob2)));
	/* The expired key still decrypts old mail. */
	assert_int_equal(smime_keystore_find_key(ks, X509_get_issuer_name(old),
	    X509_get0_serialNumber(old), NULL, &cert, &key, &err), 0);
	assert_int_equal(X509_cmp(cert, old), 0);
	assert_int_equal(EVP_PKEY_eq(key, k_old), 1);
	X509_free(cert);
	EVP_PKEY_free(key);
	/* A contact's certificate is never found as an own key. */
	assert_int_equal(smime_keystore_find_key(ks, X509_get_issuer_name(bob1),
	    X509_get0_serialNumber(bob1), NULL, &cert, &key, &err), SMIME_E_NOTFOUND);
	assert_int_equal(smime_keystore_find_key(ks, NULL, NULL, NULL, &cert, &key, &err),
	    SMIME_E_USAGE);
	smime_keystore_free(ks);
	X509_free(old); X509_free(cur); X509_free(next); X509_free(sign);
	X509_free(bob1); X509_free(bob2);
	EVP_PKEY_free(k_old); EVP_PKEY_free(k_cur); EVP_PKEY_free(k_next);
	EVP_PKEY_free(k_sign); EVP_PKEY_free(k_bob1); EVP_PKEY_free(k_bob2);
	tu_rmrf(dir);
}

#define HISTORY 1000

static void
test_ks_1000_keys(void **state)
{
	char *dir = tu_tmpdir(), name[128], *p;
	struct smime_keystore *ks;
	struct smime_error err;
	EVP_PKEY **keys = calloc(HISTORY, sizeof(*keys)), *key = NULL;
	X509 **certs = calloc(HISTORY, sizeof(*certs)), *cert = NULL;
	const size_t target = 737;
	size_t i;
	struct timespec t0, t1;

	(void)state;
	ks = ks_open(dir);
	for (i = 0; i < HISTORY; i++) {
		keys[i] = tu_key("p256");
		certs[i] = tu_cert(c_ca, k_ca, keys[i], "Alice", "alice@x.org", SMIME_ROLE_ENCRYPT,
		    -(int)(HISTORY - i) - 1, 3);
		ks_add(ks, certs[i], keys[i], SMIME_ENTRY_IDENTITY);
	}
	ks_commit(ks);
	smime_keystore_free(ks);
	/*
	 * Remove every key file but the target's: the lookup must go straight
	 * to it through the index and read and decrypt nothing else.
	 */
	for (i = 0; i < HISTORY; i++) {
		if (i == target)
			continue;
		snprintf(name, sizeof(name), "keys/%s.p8", fp_of(certs[i]));
		p = path_of(dir, name);
		assert_int_equal(unlink(p), 0);
		free(p);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ks = ks_open(dir);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("open with %d entries: %.1f ms\n", HISTORY,
	    (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	assert_int_equal(smime_keystore_count(ks), HISTORY);
	assert_int_equal(smime_keystore_find_key(ks, X509_get_issuer_name(certs[target]),
	    X509_get0_serialNumber(certs[target]), NULL, &cert, &key, &err), 0);
	assert_int_equal(X509_cmp(cert, certs[target]), 0);
	assert_int_equal(EVP_PKEY_eq(key, keys[target]), 1);
	X509_free(cert);
	EVP_PKEY_free(key);
	assert_int_equal(smime_keystore_find_key(ks, NULL, NULL,
	    X509_get0_subject_key_id(certs[target]), &cert, &key, &err), 0);
	assert_int_equal(X509_cmp(cert, certs[target]), 0);
	assert_int_equal(EVP_PKEY_eq(key, keys[target]), 1);
	X509_free(cert);
	EVP_PKEY_free(key);
	/* The newest valid one is the last; its key file is gone, but choosing reads none. */
	{
		char fp[65];

		assert_int_equal(smime_keystore_identity(ks, SMIME_ROLE_ENCRYPT, "alice@x.org", 0,
		    fp, &err), 0);
		assert_string_equal(fp, fp_of(certs[HISTORY - 1]));
	}
	/* Negative rows: an unknown serial, an unknown SKI. */
	{
		ASN1_INTEGER *serial = ASN1_INTEGER_new();
		ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();

		ASN1_INTEGER_set(serial, 42);
		ASN1_OCTET_STRING_set(ski, (const unsigned char *)"12345678901234567890", 20);
		assert_int_equal(smime_keystore_find_key(ks, X509_get_issuer_name(certs[0]), serial,
		    NULL, &cert, &key, &err), SMIME_E_NOTFOUND);
		assert_int_equal(smime_keystore_find_key(ks, NULL, NULL, ski, &cert, &key, &err),
		    SMIME_E_NOTFOUND);
		assert_null(cert);
		assert_null(key);
		ASN1_INTEGER_free(serial);
		ASN1_OCTET_STRING_free(ski);
	}
	smime_keystore_free(ks);
	for (i = 0; i < HISTORY; i++) {
		X509_free(certs[i]);
		EVP_PKEY_free(keys[i]);
	}
	free(certs);
	free(keys);
	tu_rmrf(dir);
}

static void
test_ks_crash(void **state)
{
	const struct { const char *name; enum keystore_crash point; } rows[] = {
		{ "crash after the certificate and key files", KEYSTORE_CRASH_AFTER_FILES },
		{ "crash before the index rename", KEYSTORE_CRASH_BEFORE_RENAME },
	};
	EVP_PKEY *k2 = tu_key("p256");
	X509 *c1 = tu_cert(c_ca, k_ca, k_p256, "One", "one@x.org", SMIME_ROLE_SIGN, -1, 30);
	X509 *c2 = tu_cert(c_ca, k_ca, k2, "Two", "two@x.org", SMIME_ROLE_SIGN, -1, 30);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *dir = tu_tmpdir(), *p;
		struct smime_keystore *ks, *ks2;
		struct smime_error err;
		EVP_PKEY *key = NULL;

		print_message("crash: %s\n", rows[i].name);
		ks = ks_open(dir);
		ks_add(ks, c1, k_p256, SMIME_ENTRY_IDENTITY);
		ks_commit(ks);
		ks_add(ks, c2, k2, SMIME_ENTRY_IDENTITY);
		smime_keystore_remove(ks, fp_of(c1), &err) == 0 ? (void)0 : fail();
		keystore_test_set_crash(ks, rows[i].point);
		assert_int_equal(smime_keystore_commit(ks, &err), SMIME_E_IO);
		/* Another process sees the old state, whole. */
		ks2 = ks_open(dir);
		assert_int_equal(smime_keystore_count(ks2), 1);
		assert_non_null(smime_keystore_lookup(ks2, fp_of(c1)));
		assert_null(smime_keystore_lookup(ks2, fp_of(c2)));
		assert_int_equal(smime_keystore_key(ks2, fp_of(c1), &key, &err), 0);
		assert_int_equal(EVP_PKEY_eq(key, k_p256), 1);
		EVP_PKEY_free(key);
		smime_keystore_free(ks2);
		/* The interrupted handle can retry, over the leftovers. */
		keystore_test_set_crash(ks, KEYSTORE_CRASH_NONE);
		ks_commit(ks);
		smime_keystore_free(ks);
		ks = ks_open(dir);
		assert_int_equal(smime_keystore_count(ks), 1);
		assert_non_null(smime_keystore_lookup(ks, fp_of(c2)));
		smime_keystore_free(ks);
		p = path_of(dir, "index.tmp");
		assert_int_not_equal(access(p, F_OK), 0);
		free(p);
		tu_rmrf(dir);
	}
	/* Garbage temp files left by a crash do not matter. */
	{
		char *dir = tu_tmpdir(), *p;
		struct smime_keystore *ks;

		ks = ks_open(dir);
		ks_add(ks, c1, k_p256, SMIME_ENTRY_IDENTITY);
		ks_commit(ks);
		smime_keystore_free(ks);
		p = path_of(dir, "index.tmp");
		write_file(p, "half an ind", 11);
		free(p);
		p = path_of(dir, "keys/0000.p8.tmp");
		write_file(p, "junk", 4);
		free(p);
		ks = ks_open(dir);
		assert_int_equal(smime_keystore_count(ks), 1);
		ks_add(ks, c2, k2, SMIME_ENTRY_IDENTITY);
		ks_commit(ks);
		smime_keystore_free(ks);
		ks = ks_open(dir);
		assert_int_equal(smime_keystore_count(ks), 2);
		smime_keystore_free(ks);
		tu_rmrf(dir);
	}
	X509_free(c1);
	X509_free(c2);
	EVP_PKEY_free(k2);
}

static void
test_ks_concurrent_writers(void **state)
{
	static const unsigned char caps_old[] = { 0x30, 0x0b, 0x30, 0x09, 0x06, 0x07, 0x60,
	    0x86, 0x48, 0x01, 0x65, 0x03, 0x04 };
	static const unsigned char caps_new[] = { 0x30, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60,
	    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a };
	char *dir = tu_tmpdir();
	struct smime_keystore *a, *b, *c;
	struct smime_error err;
	EVP_PKEY *k2 = tu_key("p256"), *k3 = tu_key("p256"), *key = NULL;
	X509 *c1 = tu_cert(c_ca, k_ca, k_p256, "One", "one@x.org", SMIME_ROLE_SIGN, -1, 30);
	X509 *c2 = tu_cert(c_ca, k_ca, k2, "Two", "two@x.org", SMIME_ROLE_SIGN, -1, 30);
	X509 *c3 = tu_cert(c_ca, k_ca, k3, "Three", "three@x.org", SMIME_ROLE_ENCRYPT, -1, 30);
	const struct smime_entry *e;

	(void)state;
	/* An entry both will know, which b removes. */
	a = ks_open(dir);
	ks_add(a, c_ca, NULL, SMIME_ENTRY_ANCHOR);
	ks_commit(a);
	smime_keystore_free(a);

	a = ks_open(dir);
	b = ks_open(dir);
	ks_add(a, c1, NULL, SMIME_ENTRY_CONTACT);
	assert_int_equal(smime_keystore_harvest(a, c3, caps_new, sizeof(caps_new), 2000, &err), 0);
	ks_add(b, c2, k2, SMIME_ENTRY_IDENTITY);
	assert_int_equal(smime_keystore_harvest(b, c3, caps_old, sizeof(caps_old), 1000, &err), 0);
	assert_int_equal(smime_keystore_remove(b, fp_of(c_ca), &err), 0);
	ks_commit(a);
	/* b is stale: its commit reads a's index again and applies its own changes on top. */
	ks_commit(b);
	assert_int_equal(smime_keystore_count(b), 3);
	/* Nothing staged: commit is a no-op even when stale. */
	assert_int_equal(smime_keystore_commit(a, &err), 0);
	smime_keystore_free(a);
	smime_keystore_free(b);

	c = ks_open(dir);
	assert_int_equal(smime_keystore_count(c), 3);
	assert_non_null(smime_keystore_lookup(c, fp_of(c1)));
	assert_null(smime_keystore_lookup(c, fp_of(c_ca)));
	e = smime_keystore_lookup(c, fp_of(c2));
	assert_non_null(e);
	assert_int_equal(e->kind, SMIME_ENTRY_IDENTITY);
	assert_int_equal(smime_keystore_key(c, fp_of(c2), &key, &err), 0);
	assert_int_equal(EVP_PKEY_eq(key, k2), 1);
	EVP_PKEY_free(key);
	/* The newer capabilities win whichever process committed last. */
	e = smime_keystore_lookup(c, fp_of(c3));
	assert_int_equal(e->caps_len, sizeof(caps_new));
	assert_memory_equal(e->caps, caps_new, sizeof(caps_new));
	assert_int_equal(e->caps_time, 2000);
	smime_keystore_free(c);

	/* Processes committing at once: the lock serialises them, none is lost. */
	{
		enum { WRITERS = 8 };
		X509 *certs[WRITERS];
		EVP_PKEY *kw = tu_key("p256");
		pid_t pids[WRITERS];
		int i, status;

		for (i = 0; i < WRITERS; i++)
			certs[i] = tu_cert(c_ca, k_ca, kw, "Writer", "w@x.org", SMIME_ROLE_SIGN,
			    -1 - i, 30);
		for (i = 0; i < WRITERS; i++) {
			pids[i] = fork();
			assert_true(pids[i] >= 0);
			if (pids[i] == 0) {
				struct smime_keystore *w = NULL;
				int ok = smime_keystore_open(dir, 0, &w, &err) == 0 &&
				    smime_keystore_add(w, certs[i], NULL, SMIME_ENTRY_CONTACT, NULL,
				    &err) == 0 && smime_keystore_commit(w, &err) == 0;

				smime_keystore_free(w);
				_exit(ok ? 0 : 1);
			}
		}
		for (i = 0; i < WRITERS; i++) {
			assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
			assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		}
		c = ks_open(dir);
		assert_int_equal(smime_keystore_count(c), 3 + WRITERS);
		for (i = 0; i < WRITERS; i++) {
			assert_non_null(smime_keystore_lookup(c, fp_of(certs[i])));
			X509_free(certs[i]);
		}
		smime_keystore_free(c);
		EVP_PKEY_free(kw);
	}
	X509_free(c1);
	X509_free(c2);
	X509_free(c3);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	tu_rmrf(dir);
}

static bool
contains(const unsigned char *hay, size_t hn, const unsigned char *needle, size_t nn)
{
	return nn > 0 && memmem(hay, hn, needle, nn) != NULL;
}

static void
scan_folder(const char *dir, EVP_PKEY **keys, size_t nkeys, size_t *files_r)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	size_t i, len, dl;
	unsigned char *data, *der;
	char *p, *pem;
	BIO *mem;
	int n;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		p = path_of(dir, de->d_name);
		assert_int_equal(lstat(p, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			scan_folder(p, keys, nkeys, files_r);
			free(p);
			continue;
		}
		data = tu_read_file(p, &len);
		assert_non_null(data);
		(*files_r)++;
		for (i = 0; i < nkeys; i++) {
			/* Traditional DER, PKCS#8 DER, and both PEM forms. */
			der = NULL;
			n = i2d_PrivateKey(keys[i], &der);
			if (n > 0)
				assert_false(contains(data, len, der, (size_t)n));
			OPENSSL_free(der);
			der = NULL;
			{
				PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(keys[i]);

				n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
				PKCS8_PRIV_KEY_INFO_free(p8);
			}
			assert_true(n > 0);
			assert_false(contains(data, len, der, (size_t)n));
			OPENSSL_free(der);
			/* Nor the private value itself (d, the EC scalar, the Ed25519 seed). */
			{
				unsigned char raw[1024];
				size_t rl = sizeof(raw);
				BIGNUM *bn = NULL;

				if (EVP_PKEY_get_bn_param(keys[i], "d", &bn) ||
				    EVP_PKEY_get_bn_param(keys[i], "priv", &bn)) {
					rl = (size_t)BN_bn2bin(bn, raw);
					BN_clear_free(bn);
				} else
					assert_true(EVP_PKEY_get_raw_private_key(keys[i], raw, &rl));
				assert_true(rl >= 32);
				assert_false(contains(data, len, raw, rl));
			}
			mem = BIO_new(BIO_s_mem());
			PEM_write_bio_PrivateKey(mem, keys[i], NULL, NULL, 0, NULL, NULL);
			PEM_write_bio_PrivateKey_traditional(mem, keys[i], NULL, NULL, 0, NULL, NULL);
			dl = (size_t)BIO_get_mem_data(mem, &pem);
			/* Each PEM body line (64 characters) on its own. */
			{
				char *line = pem, *end = pem + dl, *nl;

				while (line < end && (nl = memchr(line, '\n', (size_t)(end - line)))) {
					if (nl - line == 64)
						assert_false(contains(data, len,
						    (unsigned char *)line, 64));
					line = nl + 1;
				}
			}
			assert_false(contains(data, len, (unsigned char *)"PRIVATE KEY", 11));
			BIO_free(mem);
		}
		free(data);
		free(p);
	}
	closedir(d);
}

static void
test_ks_no_clear_keys(void **state)
{
	char *dir = tu_tmpdir();
	struct smime_keystore *ks;
	EVP_PKEY *keys[3] = { k_rsa, k_p256, k_ed };
	X509 *c;
	size_t i, files = 0;

	(void)state;
	ks = ks_open(dir);
	for (i = 0; i < 3; i++) {
		c = tu_cert(c_ca, k_ca, keys[i], "Owner", "owner@x.org", SMIME_ROLE_SIGN, -1, 30);
		ks_add(ks, c, keys[i], SMIME_ENTRY_IDENTITY);
		X509_free(c);
	}
	ks_add(ks, c_ca, NULL, SMIME_ENTRY_ANCHOR);
	ks_commit(ks);
	smime_keystore_free(ks);
	scan_folder(dir, keys, 3, &files);
	print_message("scanned %zu files\n", files);
	assert_true(files >= 8);  /* index, lock, 4 certificates, 3 keys */
	tu_rmrf(dir);
}

static void
test_ks_add_kinds(void **state)
{
	const struct {
		const char *name;
		enum smime_entry_kind first, second;
		bool second_key;
		bool changed;
		enum smime_entry_kind want;
	} rows[] = {
		{ "contact then anchor", SMIME_ENTRY_CONTACT, SMIME_ENTRY_ANCHOR, false, true,
		    SMIME_ENTRY_ANCHOR },
		{ "ca then anchor", SMIME_ENTRY_CA, SMIME_ENTRY_ANCHOR, false, true,
		    SMIME_ENTRY_ANCHOR },
		{ "anchor then contact: stays", SMIME_ENTRY_ANCHOR, SMIME_ENTRY_CONTACT, false, false,
		    SMIME_ENTRY_ANCHOR },
		{ "contact then contact: nothing", SMIME_ENTRY_CONTACT, SMIME_ENTRY_CONTACT, false,
		    false, SMIME_ENTRY_CONTACT },
		{ "contact then key", SMIME_ENTRY_CONTACT, SMIME_ENTRY_CONTACT, true, true,
		    SMIME_ENTRY_IDENTITY },
		{ "ca then key", SMIME_ENTRY_CA, SMIME_ENTRY_IDENTITY, true, true,
		    SMIME_ENTRY_IDENTITY },
	};
	X509 *c = tu_cert(c_ca, k_ca, k_p256, "Carol", "carol@x.org", SMIME_ROLE_SIGN, -1, 30);
	struct smime_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *dir = tu_tmpdir();
		struct smime_keystore *ks = ks_open(dir);
		const struct smime_entry *e;
		bool added = false;

		print_message("add: %s\n", rows[i].name);
		assert_int_equal(smime_keystore_add(ks, c, NULL, rows[i].first, &added, &err), 0);
		assert_true(added);
		ks_commit(ks);
		assert_int_equal(smime_keystore_add(ks, c, rows[i].second_key ? k_p256 : NULL,
		    rows[i].second, &added, &err), 0);
		assert_int_equal(added, rows[i].changed);
		ks_commit(ks);
		smime_keystore_free(ks);
		ks = ks_open(dir);
		e = smime_keystore_lookup(ks, fp_of(c));
		assert_int_equal(e->kind, rows[i].want);
		assert_int_equal(e->has_key, rows[i].second_key);
		smime_keystore_free(ks);
		tu_rmrf(dir);
	}
	/* Negative rows: a key that is not the certificate's; an identity without key. */
	{
		char *dir = tu_tmpdir();
		struct smime_keystore *ks = ks_open(dir);

		assert_int_equal(smime_keystore_add(ks, c, k_rsa, SMIME_ENTRY_IDENTITY, NULL, &err),
		    SMIME_E_USAGE);
		assert_non_null(strstr(err.message, "does not belong"));
		assert_int_equal(smime_keystore_add(ks, c, NULL, SMIME_ENTRY_IDENTITY, NULL, &err),
		    SMIME_E_USAGE);
		assert_int_equal(smime_keystore_add(ks, NULL, NULL, SMIME_ENTRY_CONTACT, NULL, &err),
		    SMIME_E_USAGE);
		assert_int_equal(smime_keystore_count(ks), 0);
		/* A contact cannot become an identity without its key. */
		ks_add(ks, c, NULL, SMIME_ENTRY_CONTACT);
		assert_int_equal(smime_keystore_add(ks, c, NULL, SMIME_ENTRY_IDENTITY, NULL, &err),
		    SMIME_E_USAGE);
		assert_int_equal(smime_keystore_lookup(ks, fp_of(c))->kind, SMIME_ENTRY_CONTACT);
		smime_keystore_free(ks);
		tu_rmrf(dir);
	}
	X509_free(c);
}

static void
test_ks_remove(void **state)
{
	char *dir = tu_tmpdir(), name[128], *cp, *kp;
	struct smime_keystore *ks;
	struct smime_error err;
	X509 *c = tu_cert(c_ca, k_ca, k_p256, "Dan", "dan@x.org", SMIME_ROLE_SIGN, -1, 30);

	(void)state;
	ks = ks_open(dir);
	ks_add(ks, c, k_p256, SMIME_ENTRY_IDENTITY);
	ks_add(ks, c_ca, NULL, SMIME_ENTRY_ANCHOR);
	ks_commit(ks);
	snprintf(name, sizeof(name), "certs/%s.der", fp_of(c));
	cp = path_of(dir, name);
	snprintf(name, sizeof(name), "keys/%s.p8", fp_of(c));
	kp = path_of(dir, name);
	assert_int_equal(access(kp, F_OK), 0);
	assert_int_equal(smime_keystore_remove(ks, fp_of(c), &err), 0);
	assert_int_equal(smime_keystore_remove(ks, fp_of(c), &err), SMIME_E_NOTFOUND);
	/* The files go only after the index no longer names them. */
	assert_int_equal(access(kp, F_OK), 0);
	ks_commit(ks);
	assert_int_not_equal(access(kp, F_OK), 0);
	assert_int_not_equal(access(cp, F_OK), 0);
	smime_keystore_free(ks);
	ks = ks_open(dir);
	assert_int_equal(smime_keystore_count(ks), 1);
	assert_null(smime_keystore_lookup(ks, fp_of(c)));
	assert_int_equal(smime_keystore_find_key(ks, X509_get_issuer_name(c),
	    X509_get0_serialNumber(c), NULL, NULL, NULL, &err), SMIME_E_NOTFOUND);
	smime_keystore_free(ks);
	free(cp);
	free(kp);
	X509_free(c);
	tu_rmrf(dir);
}

static void
test_ks_harvest(void **state)
{
	/* SMIMECapabilities: SEQUENCE { SEQUENCE { aes256-CBC } } and { aes128-CBC }. */
	static const unsigned char caps_a[] = { 0x30, 0x0b, 0x30, 0x09, 0x06, 0x07, 0x60, 0x86,
	    0x48, 0x01, 0x65, 0x03, 0x04 };
	static const unsigned char caps_b[] = { 0x30, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86,
	    0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a };
	static const unsigned char junk[] = { 0x30, 0x05, 0x01 };
	char *dir = tu_tmpdir();
	struct smime_keystore *ks;
	struct smime_error err;
	EVP_PKEY *k2 = tu_key("p256");
	X509 *c = tu_cert(c_ca, k_ca, k2, "Erin", "erin@x.org", SMIME_ROLE_ENCRYPT, -1, 30);
	const struct smime_entry *e;
	const struct {
		const char *name;
		const unsigned char *caps;
		size_t len;
		time_t t;
		int rc;
		const unsigned char *want;
		size_t want_len;
	} rows[] = {
		{ "first caps", caps_a, sizeof(caps_a), 1000, 0, caps_a, sizeof(caps_a) },
		{ "older caps ignored", caps_b, sizeof(caps_b), 500, 0, caps_a, sizeof(caps_a) },
		{ "no caps keeps them", NULL, 0, 3000, 0, caps_a, sizeof(caps_a) },
		{ "newer caps replace", caps_b, sizeof(caps_b), 2000, 0, caps_b, sizeof(caps_b) },
		{ "malformed caps refused", junk, sizeof(junk), 5000, SMIME_E_INPUT, caps_b,
		    sizeof(caps_b) },
	};
	size_t i;

	(void)state;
	ks = ks_open(dir);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("harvest: %s\n", rows[i].name);
		assert_int_equal(smime_keystore_harvest(ks, c, rows[i].caps, rows[i].len, rows[i].t,
		    &err), rows[i].rc);
		ks_commit(ks);
		smime_keystore_free(ks);
		ks = ks_open(dir);
		e = smime_keystore_lookup(ks, fp_of(c));
		assert_non_null(e);
		assert_int_equal(e->kind, SMIME_ENTRY_CONTACT);
		assert_int_equal(e->caps_len, rows[i].want_len);
		assert_memory_equal(e->caps, rows[i].want, rows[i].want_len);
	}
	/* A harvested CA certificate is a contact, never an anchor. */
	assert_int_equal(smime_keystore_harvest(ks, c_ca, NULL, 0, 0, &err), 0);
	assert_int_equal(smime_keystore_lookup(ks, fp_of(c_ca))->kind, SMIME_ENTRY_CONTACT);
	smime_keystore_free(ks);
	X509_free(c);
	EVP_PKEY_free(k2);
	tu_rmrf(dir);
}

static void
test_ks_trust(void **state)
{
	char *dir = tu_tmpdir();
	struct smime_keystore *ks;
	struct smime_error err;
	EVP_PKEY *k_int = tu_key("p256"), *k_leaf = tu_key("p256");
	X509 *c_int = tu_cert(c_ca, k_ca, k_int, "Issuing CA", NULL, SMIME_ROLE_CA, -1, 300);
	X509 *leaf = tu_cert(c_int, k_int, k_leaf, "Frank", "frank@x.org", SMIME_ROLE_SIGN, -1, 30);
	X509_STORE *store = NULL;
	STACK_OF(X509) *others = NULL;
	X509_STORE_CTX *ctx;
	const struct { const char *name; enum smime_entry_kind root_kind; int ok; } rows[] = {
		{ "root is an anchor", SMIME_ENTRY_ANCHOR, 1 },
		{ "root only a CA: no trust", SMIME_ENTRY_CA, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("trust: %s\n", rows[i].name);
		tu_rmrf(dir);
		dir = tu_tmpdir();
		ks = ks_open(dir);
		ks_add(ks, c_ca, NULL, rows[i].root_kind);
		ks_add(ks, c_int, NULL, SMIME_ENTRY_CA);
		ks_add(ks, leaf, k_leaf, SMIME_ENTRY_IDENTITY);
		ks_commit(ks);
		smime_keystore_free(ks);
		ks = ks_open(dir);
		assert_int_equal(smime_keystore_trust(ks, &store, &others, &err), 0);
		assert_int_equal(sk_X509_num(others), rows[i].ok ? 2 : 3);
		ctx = X509_STORE_CTX_new();
		assert_true(X509_STORE_CTX_init(ctx, store, leaf, others));
		assert_int_equal(X509_verify_cert(ctx) == 1, rows[i].ok);
		X509_STORE_CTX_free(ctx);
		X509_STORE_free(store);
		sk_X509_pop_free(others, X509_free);
		smime_keystore_free(ks);
	}
	X509_free(c_int);
	X509_free(leaf);
	EVP_PKEY_free(k_int);
	EVP_PKEY_free(k_leaf);
	tu_rmrf(dir);
}

static void
test_ks_default_dir(void **state)
{
	const struct {
		const char *home, *xdg, *smime_home, *want;
		size_t size;
	} rows[] = {
		{ "/home/u", NULL, NULL, "/home/u/.local/share/smime", 256 },
		{ "/home/u", "/data", NULL, "/data/smime", 256 },
		{ "/home/u", "relative", NULL, "/home/u/.local/share/smime", 256 },
		{ "/home/u", "/data", "/srv/ks", "/srv/ks", 256 },
		{ NULL, NULL, NULL, NULL, 256 },
		{ "/home/u", NULL, NULL, NULL, 10 },  /* does not fit */
	};
	char buf[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		rows[i].home ? setenv("HOME", rows[i].home, 1) : unsetenv("HOME");
		rows[i].xdg ? setenv("XDG_DATA_HOME", rows[i].xdg, 1) : unsetenv("XDG_DATA_HOME");
		rows[i].smime_home ? setenv("SMIME_HOME", rows[i].smime_home, 1) :
		    unsetenv("SMIME_HOME");
		if (rows[i].want == NULL)
			assert_false(smime_keystore_default_dir(buf, rows[i].size));
		else {
			assert_true(smime_keystore_default_dir(buf, rows[i].size));
			assert_string_equal(buf, rows[i].want);
		}
	}
}

/* The cost of one decryption at the production iteration count. */
static void
test_ks_kdf_cost(void **state)
{
	char *dir = tu_tmpdir();
	struct smime_keystore *ks;
	struct smime_error err;
	X509 *c = tu_cert(c_ca, k_ca, k_p256, "Gina", "gina@x.org", SMIME_ROLE_SIGN, -1, 30);
	EVP_PKEY *key = NULL;
	struct timespec t0, t1;
	double ms;

	(void)state;
	assert_int_equal(smime_keystore_open(dir, 0, &ks, &err), 0);
	smime_keystore_set_passphrase(ks, PASS);
	ks_add(ks, c, k_p256, SMIME_ENTRY_IDENTITY);
	ks_commit(ks);
	smime_keystore_free(ks);
	assert_int_equal(smime_keystore_open(dir, 0, &ks, &err), 0);
	smime_keystore_set_passphrase(ks, PASS);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(smime_keystore_key(ks, fp_of(c), &key, &err), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	print_message("one key decryption at %d PBKDF2 iterations: %.1f ms\n",
	    KEYSTORE_PBKDF2_ITER, ms);
	assert_int_equal(EVP_PKEY_eq(key, k_p256), 1);
	EVP_PKEY_free(key);
	smime_keystore_free(ks);
	X509_free(c);
	tu_rmrf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cert_roles),
		cmocka_unit_test(test_cert_eku),
		cmocka_unit_test(test_cert_emails),
		cmocka_unit_test(test_cert_emails_bounded),
		cmocka_unit_test(test_cert_fingerprint_subject_validity),
		cmocka_unit_test(test_ks_roundtrip_and_permissions),
		cmocka_unit_test(test_ks_passphrase),
		cmocka_unit_test(test_ks_tampered_files),
		cmocka_unit_test(test_ks_damaged_index),
		cmocka_unit_test(test_ks_history),
		cmocka_unit_test(test_ks_1000_keys),
		cmocka_unit_test(test_ks_crash),
		cmocka_unit_test(test_ks_concurrent_writers),
		cmocka_unit_test(test_ks_no_clear_keys),
		cmocka_unit_test(test_ks_add_kinds),
		cmocka_unit_test(test_ks_remove),
		cmocka_unit_test(test_ks_harvest),
		cmocka_unit_test(test_ks_trust),
		cmocka_unit_test(test_ks_default_dir),
		cmocka_unit_test(test_ks_kdf_cost),
	};

	return cmocka_run_group_tests_name("keystore", tests, group_setup, group_teardown);
}

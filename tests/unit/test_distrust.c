/*
 * Unit tests of the keystore's distrust list (lib/distrust.c), of a
 * correspondent's preferred encryption certificate and of capabilities
 * that belong to the person (lib/keystore.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509_vfy.h>

#include "testutil.h"
#include "../../lib/internal.h"

#define PASS "correct horse battery staple"

static EVP_PKEY *k_ca, *k_a, *k_b;
static X509 *c_ca;

static int
group_setup(void **state)
{
	(void)state;
	k_ca = tu_key("p256");
	k_a = tu_key("p256");
	k_b = tu_key("p256");
	c_ca = tu_cert(NULL, NULL, k_ca, "Test Root", NULL, SMIME_ROLE_CA, -1000, 3000);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(k_ca);
	EVP_PKEY_free(k_a);
	EVP_PKEY_free(k_b);
	X509_free(c_ca);
	return 0;
}

static struct smime_keystore *
ks_open(const char *dir)
{
	struct smime_keystore *ks = NULL;
	struct smime_error err;

	assert_int_equal(smime_keystore_open(dir, SMIME_KEYSTORE_CREATE, &ks, &err), 0);
	smime_keystore_set_passphrase(ks, PASS);
	return ks;
}

static void
ks_add(struct smime_keystore *ks, X509 *c, enum smime_entry_kind kind)
{
	struct smime_error err;
	int rc = smime_keystore_add(ks, c, NULL, kind, NULL, &err);

	if (rc != 0)
		print_message("add: %s\n", err.message);
	assert_int_equal(rc, 0);
}

static void
ks_commit(struct smime_keystore *ks)
{
	struct smime_error err;

	assert_int_equal(smime_keystore_commit(ks, &err), 0);
}

static const char *
fp_of(X509 *c)
{
	static char fp[65];

	smime_cert_fingerprint(c, fp);
	return fp;
}

/*
 * Validate cert against the keystore's store, as every validation of the
 * client does (at `at`, 0: now); returns the X509_V_ERR (X509_V_OK when valid).
 */
static int
validate(struct smime_keystore *ks, X509 *cert, time_t at)
{
	X509_STORE *store = NULL;
	STACK_OF(X509) *others = NULL;
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	struct smime_error err;
	int e;

	assert_int_equal(smime_keystore_trust(ks, &store, &others, &err), 0);
	assert_true(X509_STORE_CTX_init(ctx, store, cert, others));
	if (at != 0)
		X509_STORE_CTX_set_time(ctx, 0, at);
	e = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(others, X509_free);
	return e;
}

/* A distrusted CA fails every chain through it, even when it is also trusted. */
static void
test_distrust_ca(void **state)
{
	char *dir = tu_tmpdir();
	struct smime_keystore *ks;
	EVP_PKEY *k_other = tu_key("p256");
	X509 *leaf = tu_cert(c_ca, k_ca, k_a, "Alice", "alice@x.org", SMIME_ROLE_SIGN |
	    SMIME_ROLE_ENCRYPT, -1, 30);
	X509 *got = NULL;
	struct smime_error err;
	/* The same CA re-issued (same name, same key), and another CA of the same name. */
	X509 *reissued = tu_cert(NULL, NULL, k_ca, "Test Root", NULL, SMIME_ROLE_CA, -10, 4000);
	X509 *namesake = tu_cert(NULL, NULL, k_other, "Test Root", NULL, SMIME_ROLE_CA, -10, 4000);
	const struct smime_entry *e;

	(void)state;
	ks = ks_open(dir);
	ks_add(ks, c_ca, SMIME_ENTRY_ANCHOR);
	ks_add(ks, leaf, SMIME_ENTRY_CONTACT);
	assert_int_equal(validate(ks, leaf, 0), X509_V_OK);
	assert_false(smime_keystore_distrusted(ks, c_ca));

	assert_int_equal(smime_keystore_recipient(ks, "alice@x.org", 0, &e, &got, &err), 0);
	X509_free(got);
	got = NULL;
	ks_add(ks, c_ca, SMIME_ENTRY_DISTRUSTED);
	/* A contact under the distrusted CA is never encrypted to. */
	assert_int_equal(smime_keystore_recipient(ks, "alice@x.org", 0, &e, &got, &err),
	    SMIME_E_NOTFOUND);
	assert_null(got);
	e = smime_keystore_lookup(ks, fp_of(c_ca));
	assert_non_null(e);
	assert_int_equal(e->kind, SMIME_ENTRY_DISTRUSTED);
	assert_int_equal(validate(ks, leaf, 0), X509_V_ERR_CERT_REJECTED);
	/* Trusting it again does not undo the distrust. */
	ks_add(ks, c_ca, SMIME_ENTRY_ANCHOR);
	assert_int_equal(smime_keystore_lookup(ks, fp_of(c_ca))->kind, SMIME_ENTRY_DISTRUSTED);
	ks_commit(ks);
	smime_keystore_free(ks);

	ks = ks_open(dir);
	assert_int_equal(smime_keystore_lookup(ks, fp_of(c_ca))->kind, SMIME_ENTRY_DISTRUSTED);
	assert_int_equal(validate(ks, leaf, 0), X509_V_ERR_CERT_REJECTED);
	assert_true(smime_keystore_distrusted(ks, c_ca));
	assert_true(smime_keystore_distrusted(ks, reissued));
	assert_false(smime_keystore_distrusted(ks, namesake));
	assert_false(smime_keystore_distrusted(ks, leaf));
	/* The re-issued CA as the anchor: still the distrusted name and key. */
	ks_add(ks, reissued, SMIME_ENTRY_ANCHOR);
	assert_int_equal(validate(ks, leaf, 0), X509_V_ERR_CERT_REJECTED);
	smime_keystore_free(ks);

	X509_free(leaf);
	X509_free(reissued);
	X509_free(namesake);
	EVP_PKEY_free(k_other);
	tu_rmrf(dir);
}

/* A distrusted leaf: never valid, never a recipient. */
static void
test_distrust_leaf(void **state)
{
	char *dir = tu_tmpdir();
	struct smime_keystore *ks;
	struct smime_error err;
	X509 *enc = tu_cert(c_ca, k_ca, k_a, "Bob", "bob@x.org", SMIME_ROLE_ENCRYPT |
	    SMIME_ROLE_SIGN, -1, 30);
	X509 *got = NULL;
	const struct smime_entry *e = NULL;

	(void)state;
	ks = ks_open(dir);
	ks_add(ks, c_ca, SMIME_ENTRY_ANCHOR);
	ks_add(ks, enc, SMIME_ENTRY_CONTACT);
	assert_int_equal(validate(ks, enc, 0), X509_V_OK);
	assert_int_equal(smime_keystore_recipient(ks, "bob@x.org", 0, &e, &got, &err), 0);
	X509_free(got);
	got = NULL;
	ks_add(ks, enc, SMIME_ENTRY_DISTRUSTED);
	assert_int_equal(validate(ks, enc, 0), X509_V_ERR_CERT_REJECTED);
	assert_int_equal(smime_keystore_recipient(ks, "bob@x.org", 0, &e, &got, &err),
	    SMIME_E_NOTFOUND);
	assert_null(got);
	/* Harvesting it from a message does not make it a contact again. */
	assert_int_equal(smime_keystore_harvest(ks, enc, NULL, 0, 0, &err), 0);
	assert_int_equal(smime_keystore_lookup(ks, fp_of(enc))->kind, SMIME_ENTRY_DISTRUSTED);
	smime_keystore_free(ks);
	X509_free(enc);
	tu_rmrf(dir);
}

/* RFC 8551 2.5.3: the certificate a correspondent named is the one encrypted to. */
static void
test_preferred(void **state)
{
	char *dir = tu_tmpdir();
	struct smime_keystore *ks;
	struct smime_error err;
	/* older (notBefore 20 days ago) and newer (5 days ago) encryption certificates */
	X509 *older = tu_cert(c_ca, k_ca, k_a, "Tom", "tom@x.org", SMIME_ROLE_ENCRYPT, -20, 300);
	X509 *newer = tu_cert(c_ca, k_ca, k_b, "Tom", "tom@x.org", SMIME_ROLE_ENCRYPT, -5, 300);
	const struct {
		const char *name;
		X509 **prefer;       /* named in a message, or NULL */
		time_t when;
		X509 **want;
	} rows[] = {
		{ "nothing named: the newest notBefore", NULL, 0, &newer },
		{ "the older named: it", &older, 1000, &older },
		{ "the newer named later: it", &newer, 2000, &newer },
		{ "an older message naming the older: the newer stays", &older, 1500, &newer },
		{ "the older named again, last: it", &older, 3000, &older },
	};

	(void)state;
	ks = ks_open(dir);
	ks_add(ks, c_ca, SMIME_ENTRY_ANCHOR);
	ks_add(ks, older, SMIME_ENTRY_CONTACT);
	ks_add(ks, newer, SMIME_ENTRY_CONTACT);
	ks_commit(ks);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct smime_entry *e = NULL;
		X509 *got = NULL;

		print_message("preferred: %s\n", rows[i].name);
		if (rows[i].prefer != NULL)
			assert_int_equal(smime_keystore_prefer(ks, *rows[i].prefer, rows[i].when,
			    &err), 0);
		ks_commit(ks);
		smime_keystore_free(ks);
		ks = ks_open(dir);
		assert_int_equal(smime_keystore_recipient(ks, "tom@x.org", 0, &e, &got, &err), 0);
		assert_int_equal(X509_cmp(got, *rows[i].want), 0);
		X509_free(got);
	}
	/* A certificate named but not yet known becomes a contact. */
	{
		X509 *third = tu_cert(c_ca, k_ca, k_ca, "Tom", "tom@x.org", SMIME_ROLE_ENCRYPT, -1,
		    300);
		const struct smime_entry *e;
		assert_int_equal(smime_keystore_prefer(ks, third, 5000, &err), 0);
		e = smime_keystore_lookup(ks, fp_of(third));
		assert_non_null(e);
		assert_int_equal(e->kind, SMIME_ENTRY_CONTACT);
		assert_int_equal(e->preferred, 5000);
		X509_free(third);
	}
	smime_keystore_free(ks);
	X509_free(older);
	X509_free(newer);
	tu_rmrf(dir);
}

/* Capabilities belong to the person: any certificate of the address. */
static void
test_caps_of_person(void **state)
{
	/* SMIMECapabilities: SEQUENCE { SEQUENCE { aes256-CBC } } and { aes128-CBC }. */
	static const unsigned char caps_a[] = { 0x30, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86,
	    0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a };
	static const unsigned char caps_b[] = { 0x30, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86,
	    0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02 };
	char *dir = tu_tmpdir();
	struct smime_keystore *ks;
	struct smime_error err;
	X509 *sign = tu_cert(c_ca, k_ca, k_a, "Tom", "tom@x.org", SMIME_ROLE_SIGN, -1, 30);
	X509 *enc = tu_cert(c_ca, k_ca, k_b, "Tom", "tom@x.org", SMIME_ROLE_ENCRYPT, -1, 30);
	X509 *other = tu_cert(c_ca, k_ca, k_b, "Una", "una@x.org", SMIME_ROLE_SIGN, -1, 30);
	const unsigned char *caps;
	size_t len;

	(void)state;
	ks = ks_open(dir);
	ks_add(ks, enc, SMIME_ENTRY_CONTACT);
	smime_keystore_caps(ks, "tom@x.org", &caps, &len);
	assert_null(caps);
	/* Announced in a message signed with the signing certificate. */
	assert_int_equal(smime_keystore_harvest(ks, sign, caps_a, sizeof(caps_a), 1000, &err), 0);
	assert_int_equal(smime_keystore_harvest(ks, other, caps_b, sizeof(caps_b), 2000, &err), 0);
	smime_keystore_caps(ks, "tom@x.org", &caps, &len);
	assert_non_null(caps);
	assert_memory_equal(caps, caps_a, sizeof(caps_a));
	/* The newest announcement of the person wins, whichever certificate. */
	assert_int_equal(smime_keystore_harvest(ks, enc, caps_b, sizeof(caps_b), 3000, &err), 0);
	smime_keystore_caps(ks, "tom@x.org", &caps, &len);
	assert_memory_equal(caps, caps_b, sizeof(caps_b));
	smime_keystore_caps(ks, "nobody@x.org", &caps, &len);
	assert_null(caps);
	smime_keystore_free(ks);
	X509_free(sign);
	X509_free(enc);
	X509_free(other);
	tu_rmrf(dir);
}

/* der = tag, length, body (short or one-octet long form), into out; returns its length. */
static size_t
tlv(unsigned char tag, const unsigned char *body, size_t n, unsigned char *out)
{
	size_t h = 0;

	out[h++] = tag;
	if (n >= 128)
		out[h++] = 0x81;
	out[h++] = (unsigned char)n;
	memcpy(out + h, body, n);
	return h + n;
}

/* RFC 8551 2.5.3: SMIMEEncryptionKeyPreference, every choice and broken ones. */
static void
test_keypref_decode(void **state)
{
	X509 *c = tu_cert(c_ca, k_ca, k_a, "Tom", "tom@x.org", SMIME_ROLE_ENCRYPT, -1, 30);
	X509 *other = tu_cert(c_ca, k_ca, k_b, "Tom", "tom@x.org", SMIME_ROLE_ENCRYPT, -1, 30);
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(c);
	unsigned char isn[600], isn_other[600], buf[700], v_isn[700], v_isn_other[700], v_ski[100],
	    v_rkid[120], v_rkid_date[160], v_bad_tag[700], v_univ[700], v_trail[710], *p;
	size_t n, n_isn, n_isn_o, l_isn, l_isn_o, l_ski, l_rkid, l_rkid_date, l_bad, l_univ,
	    l_trail;
	struct smime_error err;
	bool match;

	(void)state;
	assert_non_null(ski);
	/* IssuerAndSerialNumber of c and of other. */
	p = isn;
	n_isn = (size_t)i2d_X509_NAME(X509_get_issuer_name(c), &p);
	n_isn += (size_t)i2d_ASN1_INTEGER(X509_get0_serialNumber(c), &p);
	p = isn_other;
	n_isn_o = (size_t)i2d_X509_NAME(X509_get_issuer_name(other), &p);
	n_isn_o += (size_t)i2d_ASN1_INTEGER(X509_get0_serialNumber(other), &p);
	l_isn = tlv(0xa0, isn, n_isn, v_isn);
	l_isn_o = tlv(0xa0, isn_other, n_isn_o, v_isn_other);
	l_ski = tlv(0x82, ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski), v_ski);
	n = tlv(0x04, ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski), buf);
	l_rkid = tlv(0xa1, buf, n, v_rkid);
	n += tlv(0x18, (const unsigned char *)"20261207120000Z", 15, buf + n);
	l_rkid_date = tlv(0xa1, buf, n, v_rkid_date);
	l_bad = tlv(0xa3, isn, n_isn, v_bad_tag);
	l_univ = tlv(0x30, isn, n_isn, v_univ);
	memcpy(v_trail, v_isn, l_isn);
	v_trail[l_isn] = 0x05;
	v_trail[l_isn + 1] = 0x00;
	l_trail = l_isn + 2;
	{
		const struct {
			const char *name;
			const unsigned char *der;
			size_t len;
			int rc;
			bool match;
		} rows[] = {
			{ "issuerAndSerialNumber [0]", v_isn, l_isn, 0, true },
			{ "another certificate's issuer and serial", v_isn_other, l_isn_o, 0, false },
			{ "subjectAltKeyIdentifier [2]", v_ski, l_ski, 0, true },
			{ "receipentKeyId [1]", v_rkid, l_rkid, 0, true },
			{ "receipentKeyId [1] with a date", v_rkid_date, l_rkid_date, 0, true },
			/* negative rows */
			{ "empty", v_isn, 0, SMIME_E_INPUT, false },
			{ "truncated", v_isn, l_isn - 3, SMIME_E_INPUT, false },
			{ "tag [3]: no such choice", v_bad_tag, l_bad, SMIME_E_INPUT, false },
			{ "a universal SEQUENCE, not [0]", v_univ, l_univ, SMIME_E_INPUT, false },
			{ "trailing octets", v_trail, l_trail, SMIME_E_INPUT, false },
			{ "longer than the limit", v_isn, KEYPREF_MAX + 1, SMIME_E_INPUT, false },
		};
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			print_message("keypref: %s\n", rows[i].name);
			assert_int_equal(keypref_check(rows[i].der, rows[i].len, c, &match, &err),
			    rows[i].rc);
			assert_int_equal(match, rows[i].match);
		}
	}
	X509_free(c);
	X509_free(other);
}

/* Every certificate of an SST file in the corpus, into ks as kind. */
static void
load_sst(struct smime_keystore *ks, const char *path, enum smime_entry_kind kind)
{
	size_t len;
	unsigned char *data = tu_read_file(path, &len);
	STACK_OF(X509) *certs = sk_X509_new_null();
	struct smime_error err;

	assert_non_null(data);
	assert_int_equal(smime_sst_read(data, len, certs, &err), 0);
	for (int i = 0; i < sk_X509_num(certs); i++)
		ks_add(ks, sk_X509_value(certs, i), kind);
	sk_X509_pop_free(certs, X509_free);
	free(data);
}

/*
 * The Windows disallowed-certificates store imported as the distrust list:
 * DigiNotar Cyber CA, which chains to GTE CyberTrust Global Root of the
 * Windows root store, validated in 2008; on the list, it fails.
 */
static void
test_distrust_windows_sst(void **state)
{
	const char *shared = tu_shared();
	/* SHA-256 of DigiNotar Cyber CA (O=DigiNotar, emailAddress=info@diginotar.nl). */
	static const char cyber[] =
	    "9ed8f9b0e8e42a16";
	const time_t in_2008 = 1200000000;
	char roots[4096], disallowed[4096], *dir;
	struct smime_keystore *ks;
	struct smime_error err;
	const struct smime_entry *e;
	X509 *c = NULL;
	size_t n_distrusted = 0;

	(void)state;
	if (shared == NULL)
		TU_SKIP("../shared is absent: no Windows SST corpus");
	snprintf(roots, sizeof(roots), "%s/corpus/sst/windows-update-roots-2021-10-01.sst", shared);
	snprintf(disallowed, sizeof(disallowed),
	    "%s/corpus/sst/windows-update-disallowedcert-2025-09-05.sst", shared);
	if (access(roots, R_OK) != 0 || access(disallowed, R_OK) != 0)
		TU_SKIP("the Windows root and disallowed SST files are not in the corpus");
	dir = tu_tmpdir();
	ks = ks_open(dir);
	load_sst(ks, roots, SMIME_ENTRY_ANCHOR);
	/* The CA alone first, as a chain certificate: it validates. */
	{
		size_t len;
		unsigned char *data = tu_read_file(disallowed, &len);
		STACK_OF(X509) *certs = sk_X509_new_null();
		char fp[65];
		assert_non_null(data);
		assert_int_equal(smime_sst_read(data, len, certs, &err), 0);
		for (int i = 0; i < sk_X509_num(certs) && c == NULL; i++) {
			smime_cert_fingerprint(sk_X509_value(certs, i), fp);
			if (strncmp(fp, cyber, strlen(cyber)) == 0) {
				c = sk_X509_value(certs, i);
				X509_up_ref(c);
			}
		}
		sk_X509_pop_free(certs, X509_free);
		free(data);
	}
	assert_non_null(c);
	assert_int_equal(validate(ks, c, in_2008), X509_V_OK);
	load_sst(ks, disallowed, SMIME_ENTRY_DISTRUSTED);
	ks_commit(ks);
	smime_keystore_free(ks);
	ks = ks_open(dir);
	for (size_t i = 0; i < smime_keystore_count(ks); i++)
		if ((e = smime_keystore_entry(ks, i))->kind == SMIME_ENTRY_DISTRUSTED)
			n_distrusted++;
	assert_int_equal(n_distrusted, 95);
	assert_int_equal(validate(ks, c, in_2008), X509_V_ERR_CERT_REJECTED);
	/* DigiNotar Root CA, a root of its own, is distrusted, not an anchor. */
	for (size_t i = 0; i < smime_keystore_count(ks); i++) {
		e = smime_keystore_entry(ks, i);
		if (strstr(e->subject, "CN=DigiNotar Root CA,") != NULL)
			assert_int_equal(e->kind, SMIME_ENTRY_DISTRUSTED);
	}
	smime_keystore_free(ks);
	X509_free(c);
	tu_rmrf(dir);
}

/*
 * A certificate that chains to a CA of the Windows disallowed list fails
 * because of that CA, not only because it is listed itself: the real
 * *.google.com certificate that the mis-issued TURKTRUST sub-CA
 * *.EGO.GOV.TR made (both are on the list).  With *.EGO.GOV.TR as an
 * anchor, the leaf validates in January 2013; with every other certificate
 * of the list distrusted (the leaf kept off it), it fails.
 */
static void
test_distrust_windows_chain(void **state)
{
	const char *shared = tu_shared();
	static const char leaf_fp[] =
	    "60b35c92f6c7cf23ac6152a8965afe1650b5e0a2a81a9ec2d6dab254f288a04d";
	static const char ego_fp[] =
	    "42187727be39faf667aeb92bf0cc4e268f6e2ead2cefbec575bdc90430024f69";
	const time_t in_2013 = 1357000000;
	char disallowed[4096], fp[65], *dir;
	struct smime_keystore *ks;
	struct smime_error err;
	STACK_OF(X509) *certs = sk_X509_new_null();
	unsigned char *data;
	size_t len;
	X509 *leaf = NULL, *ego = NULL;

	(void)state;
	if (shared == NULL)
		TU_SKIP("../shared is absent: no Windows SST corpus");
	snprintf(disallowed, sizeof(disallowed),
	    "%s/corpus/sst/windows-update-disallowedcert-2025-09-05.sst", shared);
	if (access(disallowed, R_OK) != 0)
		TU_SKIP("the Windows disallowed SST is not in the corpus");
	data = tu_read_file(disallowed, &len);
	assert_non_null(data);
	assert_int_equal(smime_sst_read(data, len, certs, &err), 0);
	free(data);
	for (int i = 0; i < sk_X509_num(certs); i++) {
		smime_cert_fingerprint(sk_X509_value(certs, i), fp);
		if (strcmp(fp, leaf_fp) == 0)
			leaf = sk_X509_value(certs, i);
		else if (strcmp(fp, ego_fp) == 0)
			ego = sk_X509_value(certs, i);
	}
	assert_non_null(leaf);
	assert_non_null(ego);
	dir = tu_tmpdir();
	ks = ks_open(dir);
	ks_add(ks, ego, SMIME_ENTRY_ANCHOR);
	assert_int_equal(validate(ks, leaf, in_2013), X509_V_OK);
	for (int i = 0; i < sk_X509_num(certs); i++)
		if (sk_X509_value(certs, i) != leaf)
			ks_add(ks, sk_X509_value(certs, i), SMIME_ENTRY_DISTRUSTED);
	ks_commit(ks);
	smime_keystore_free(ks);
	ks = ks_open(dir);
	assert_int_equal(validate(ks, leaf, in_2013), X509_V_ERR_CERT_REJECTED);
	smime_keystore_free(ks);
	sk_X509_pop_free(certs, X509_free);
	tu_rmrf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_distrust_ca),
		cmocka_unit_test(test_distrust_leaf),
		cmocka_unit_test(test_preferred),
		cmocka_unit_test(test_caps_of_person),
		cmocka_unit_test(test_keypref_decode),
		cmocka_unit_test(test_distrust_windows_sst),
		cmocka_unit_test(test_distrust_windows_chain),
	};

	smime_init();
	return cmocka_run_group_tests_name("distrust", tests, group_setup, group_teardown);
}

/*
 * Unit tests of the message engine (lib/message.c, lib/open.c,
 * lib/inspect.c) and the MIME layer (lib/mime.c): round trips in every form
 * and algorithm, and the negative rows: altered, truncated, wrong key,
 * expired signer, untrusted signer, no signers, eContent confusion, partial
 * signatures, non-root encryption.
 */
#include <string.h>

#include <openssl/pem.h>

#include "testutil.h"
#include "../../lib/internal.h"

struct pki {
	char *dir;
	struct smime_keystore *ks;
	X509 *ca;
	EVP_PKEY *ca_key;
};

static struct pki pki;

static X509 *
add_identity(const char *type, const char *cn, const char *email, int roles, int from, int to)
{
	struct smime_error err;
	EVP_PKEY *k = tu_key(type);
	X509 *c = tu_cert(pki.ca, pki.ca_key, k, cn, email, roles, from, to);

	assert_int_equal(smime_keystore_add(pki.ks, c, k, SMIME_ENTRY_IDENTITY, NULL, &err), 0);
	EVP_PKEY_free(k);
	return c;
}

static int
setup(void **state)
{
	struct smime_error err;

	(void)state;
	smime_init();
	pki.dir = tu_tmpdir();
	assert_int_equal(smime_keystore_open(pki.dir, SMIME_KEYSTORE_CREATE, &pki.ks, &err), 0);
	smime_keystore_set_passphrase(pki.ks, "unit");
	pki.ca_key = tu_key("p256");
	pki.ca = tu_cert(NULL, NULL, pki.ca_key, "Unit Root", NULL, SMIME_ROLE_CA, -1, 3650);
	assert_int_equal(smime_keystore_add(pki.ks, pki.ca, NULL, SMIME_ENTRY_ANCHOR, NULL, &err), 0);
	X509_free(add_identity("rsa2048", "rsa", "rsa@example.org", SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT, -1, 365));
	X509_free(add_identity("p256", "p256", "p256@example.org", SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT, -1, 365));
	X509_free(add_identity("p384", "p384", "p384@example.org", SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT, -1, 365));
	X509_free(add_identity("ed25519", "ed", "ed@example.org", SMIME_ROLE_SIGN, -1, 365));
	X509_free(add_identity("rsa2048", "expired", "expired@example.org", SMIME_ROLE_SIGN, -400, -10));
	assert_int_equal(smime_keystore_commit(pki.ks, &err), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	smime_keystore_free(pki.ks);
	X509_free(pki.ca);
	EVP_PKEY_free(pki.ca_key);
	tu_rmrf(pki.dir);
	return 0;
}

static char *
message(const char *from, const char *to, const char *extra_headers, const char *body)
{
	char *m = NULL;

	assert_true(asprintf(&m, "From: %s\r\nTo: %s\r\nSubject: unit\r\nDate: %s\r\n%s\r\n%s",
	    from, to, "Mon, 23 Nov 2026 10:00:00 +0000", extra_headers, body) > 0);
	return m;
}

/* Run op over in and return the output (NUL-terminated) or NULL, with rc. */
enum op { SIGN, SIGN_OPAQUE, ENCRYPT, VERIFY, DECRYPT, OPEN };

static char *
run(enum op op, const char *in, size_t len, int *rc_r, struct smime_report **rep_r,
    const void *opts)
{
	BIO *i = BIO_new_mem_buf(in, (int)len), *o = BIO_new(BIO_s_mem());
	struct smime_error err;
	struct smime_sign_opts so = { 0 };
	struct smime_verify_opts vo = { .no_harvest = true };
	struct smime_report *rep = NULL;
	char *p, *out = NULL;
	long n;
	int rc = -1;

	switch (op) {
	case SIGN:
	case SIGN_OPAQUE:
		if (opts != NULL)
			so = *(const struct smime_sign_opts *)opts;
		so.opaque = op == SIGN_OPAQUE;
		rc = smime_msg_sign(pki.ks, &so, i, o, &err);
		break;
	case ENCRYPT:
		rc = smime_msg_encrypt(pki.ks, opts, i, o, NULL, &err);
		break;
	case VERIFY:
		rc = smime_msg_verify(pki.ks, opts ? opts : &vo, i, o, &rep, &err);
		break;
	case DECRYPT:
		rc = smime_msg_decrypt(pki.ks, i, o, &rep, &err);
		break;
	case OPEN:
		rc = smime_msg_open(pki.ks, opts ? opts : &vo, i, o, &rep, &err);
		break;
	}
	if (rc != 0)
		print_message("  (%s)\n", err.message);
	n = BIO_get_mem_data(o, &p);
	if (n > 0) {
		out = malloc((size_t)n + 1);
		memcpy(out, p, (size_t)n);
		out[n] = '\0';
	}
	BIO_free(i);
	BIO_free(o);
	*rc_r = rc;
	if (rep_r != NULL)
		*rep_r = rep;
	else
		smime_report_free(rep);
	return out;
}

static void
test_sign_verify_rows(void **state)
{
	static const struct {
		const char *from, *digest;
		bool opaque, pss;
		int sign_rc, verify_rc;
	} rows[] = {
		{ "rsa@example.org", "sha256", false, false, 0, 0 },
		{ "rsa@example.org", "sha384", true, false, 0, 0 },
		{ "rsa@example.org", "sha512", false, true, 0, 0 },
		{ "p256@example.org", "sha256", false, false, 0, 0 },
		{ "p256@example.org", "sha512", true, false, 0, 0 },
		{ "p384@example.org", "sha384", false, false, 0, 0 },
		{ "ed@example.org", NULL, false, false, 0, 0 },
		{ "ed@example.org", NULL, true, false, 0, 0 },
		/* negative rows */
		{ "p256@example.org", "md5", false, false, SMIME_E_USAGE, -1 },
		{ "p256@example.org", NULL, false, true, SMIME_E_USAGE, -1 },
		{ "nobody@example.org", NULL, false, false, SMIME_E_NOTFOUND, -1 },
		{ "expired@example.org", NULL, false, false, SMIME_E_NOTFOUND, -1 },
	};
	(void)state;
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		struct smime_sign_opts so = { .digest = rows[r].digest, .pss = rows[r].pss };
		char *m = message(rows[r].from, "x@example.org",
		    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n",
		    "Gr\xc3\xbc\xc3\x9f" "e\nbare LF line\n");
		int rc;
		char *s, *v;
		struct smime_report *rep = NULL;

		print_message("row %zu: %s %s%s\n", r, rows[r].from, rows[r].opaque ? "opaque" : "clear",
		    rows[r].pss ? " pss" : "");
		s = run(rows[r].opaque ? SIGN_OPAQUE : SIGN, m, strlen(m), &rc, NULL, &so);
		assert_int_equal(rc, rows[r].sign_rc);
		if (rc != 0) {
			assert_null(s);
			free(m);
			continue;
		}
		assert_non_null(strstr(s, rows[r].opaque ? "smime-type=signed-data" : "multipart/signed"));
		/* RFC 8551 3.1.3: the 8-bit part was moved to a 7-bit encoding. */
		assert_null(strstr(s, "Content-Transfer-Encoding: 8bit"));
		v = run(VERIFY, s, strlen(s), &rc, &rep, NULL);
		assert_int_equal(rc, rows[r].verify_rc);
		assert_non_null(rep);
		assert_int_equal(rep->n_layers, 1);
		assert_int_equal(rep->layers[0].n_signers, 1);
		assert_string_equal(rep->layers[0].signers[0].emails, rows[r].from);
		assert_true(rep->layers[0].signers[0].chain_ok);
		assert_true(rep->layers[0].signers[0].signing_time > 0);
		assert_string_equal(rep->covered, "the whole message");
		assert_non_null(v);
		assert_non_null(strstr(v, "From: "));
		assert_null(strstr(v, "pkcs7"));
		smime_report_free(rep);

		/* Altered after signing: a digest mismatch, no output. */
		char *bad = strdup(s);
		char *at = strstr(bad, "bare LF");
		if (at != NULL) {
			at[0] = 'B';
			free(v);
			v = run(VERIFY, bad, strlen(bad), &rc, NULL, NULL);
			assert_int_equal(rc, SMIME_E_BADSIG);
			assert_null(v);
		}
		/* Truncated anywhere: never valid. */
		for (size_t cut = 40; cut < strlen(s); cut += strlen(s) / 7) {
			free(v);
			v = run(VERIFY, s, cut, &rc, NULL, NULL);
			assert_int_not_equal(rc, 0);
		}
		free(bad);
		free(v);
		free(s);
		free(m);
	}
}

static void
test_encrypt_decrypt_rows(void **state)
{
	static const struct {
		const char *to, *cipher;
		bool oaep, allow_weak;
		int rc;
		const char *integrity;
		bool prefer_gcm;
	} rows[] = {
		/* Nothing announced: AES-256-CBC, which every client reads. */
		{ "rsa@example.org", NULL, false, false, 0, "none", false },
		/* ... unless the keystore setting prefers GCM. */
		{ "rsa@example.org", NULL, false, false, 0, "aead", true },
		{ "rsa@example.org", "aes-128-gcm", true, false, 0, "aead", false },
		{ "rsa@example.org", "aes-256-cbc", false, false, 0, "none", true },
		{ "p256@example.org", "aes-128-cbc", false, false, 0, "none", false },
		{ "p384@example.org", "aes-256-gcm", false, false, 0, "aead", false },
		{ "rsa@example.org", "des-ede3-cbc", false, true, 0, "none", false },
		/* negative rows */
		{ "rsa@example.org", "des-ede3-cbc", false, false, SMIME_E_POLICY, NULL, false },
		{ "rsa@example.org", "rc2-40", false, false, SMIME_E_USAGE, NULL, false },
		{ "unknown@example.org", NULL, false, false, SMIME_E_NOTFOUND, NULL, false },
		{ "ed@example.org", NULL, false, false, SMIME_E_NOTFOUND, NULL, false },
	};
	(void)state;
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		const char *to[] = { rows[r].to };
		struct smime_encrypt_opts eo = { .cipher = rows[r].cipher, .oaep = rows[r].oaep,
		    .allow_weak = rows[r].allow_weak, .no_self = true, .to = to, .n_to = 1,
		    .prefer_gcm = rows[r].prefer_gcm };
		char *m = message("rsa@example.org", "", "Content-Type: text/plain\r\n",
		    "secret text\r\n");
		struct smime_report *rep = NULL;
		char *e, *d;
		int rc;

		print_message("row %zu: %s %s\n", r, rows[r].to, rows[r].cipher ? rows[r].cipher : "default");
		e = run(ENCRYPT, m, strlen(m), &rc, NULL, &eo);
		assert_int_equal(rc, rows[r].rc);
		if (rc != 0) {
			assert_null(e);
			free(m);
			continue;
		}
		assert_null(strstr(e, "secret text"));
		d = run(DECRYPT, e, strlen(e), &rc, &rep, NULL);
		assert_int_equal(rc, 0);
		assert_non_null(d);
		assert_non_null(strstr(d, "secret text"));
		assert_non_null(strstr(d, "From: rsa@example.org"));
		assert_string_equal(rep->layers[0].integrity, rows[r].integrity);
		assert_true(rep->layers[0].key[0] != '\0');
		smime_report_free(rep);
		free(d);

		/* Flip one bit of the base64 body: never plaintext, never success. */
		char *bad = strdup(e);
		char *body = strstr(bad, "\r\n\r\n");
		assert_non_null(body);
		body += 4 + 200 < strlen(bad) ? 200 : 10;
		body[0] = body[0] == 'A' ? 'B' : 'A';
		d = run(DECRYPT, bad, strlen(bad), &rc, NULL, NULL);
		if (strcmp(rows[r].integrity, "aead") == 0) {
			assert_int_not_equal(rc, 0);
			assert_null(d);
		}
		free(d);
		free(bad);
		free(e);
		free(m);
	}
}

static void
test_missing_recipients_named(void **state)
{
	const char *to[] = { "rsa@example.org", "a@example.org", "b@example.org" };
	struct smime_encrypt_opts eo = { .no_self = true, .to = to, .n_to = 3 };
	char *m = message("rsa@example.org", "", "", "x\r\n");
	BIO *i = BIO_new_mem_buf(m, -1), *o = BIO_new(BIO_s_mem());
	struct smime_error err;

	(void)state;
	assert_int_equal(smime_msg_encrypt(pki.ks, &eo, i, o, NULL, &err), SMIME_E_NOTFOUND);
	assert_non_null(strstr(err.message, "a@example.org"));
	assert_non_null(strstr(err.message, "b@example.org"));
	assert_int_equal(BIO_pending(o), 0);
	BIO_free(i);
	BIO_free(o);
	free(m);
}

static void
test_from_mismatch_and_partial(void **state)
{
	struct smime_sign_opts so = { 0 };
	struct smime_verify_opts allow = { .no_harvest = true, .allow_from_mismatch = true };
	struct smime_report *rep;
	char *m = message("rsa@example.org", "x@example.org", "", "hello\r\n");
	char *s, *forged, *v, *wrapped;
	int rc;

	(void)state;
	s = run(SIGN, m, strlen(m), &rc, NULL, &so);
	assert_int_equal(rc, 0);
	forged = strdup(s);
	memcpy(strstr(forged, "From: rsa@"), "From: evi@", 10);
	v = run(VERIFY, forged, strlen(forged), &rc, &rep, NULL);
	assert_int_equal(rc, SMIME_E_BADSIG);
	assert_non_null(strstr(rep->layers[0].reason, "not the sender"));
	smime_report_free(rep);
	free(v);
	v = run(VERIFY, forged, strlen(forged), &rc, &rep, &allow);
	assert_int_equal(rc, 0);
	assert_true(rep->n_warnings >= 1);
	smime_report_free(rep);
	free(v);

	/* The Johnny M1 shape: unsigned text, then the signed message as a part. */
	assert_true(asprintf(&wrapped, "From: rsa@example.org\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"W\"\r\n\r\n--W\r\nContent-Type: text/plain\r\n\r\n"
	    "You are fired.\r\n--W\r\n%s\r\n--W--\r\n", strstr(s, "Content-Type: multipart/signed")) > 0);
	v = run(VERIFY, wrapped, strlen(wrapped), &rc, &rep, NULL);
	assert_int_equal(rc, 0);
	assert_true(rep->n_warnings >= 1);
	assert_non_null(strstr(rep->warnings[0], "only part 2"));
	assert_string_equal(rep->covered, "2");
	smime_report_free(rep);
	free(v);
	free(wrapped);
	free(forged);
	free(s);
	free(m);
}

static void
test_non_root_encryption_never_decrypted(void **state)
{
	const char *to[] = { "rsa@example.org" };
	struct smime_encrypt_opts eo = { .no_self = true, .to = to, .n_to = 1 };
	char *m = message("rsa@example.org", "", "", "the prey: SECRET\r\n");
	char *e, *d, *wrapped;
	struct smime_report *rep;
	int rc;

	(void)state;
	e = run(ENCRYPT, m, strlen(m), &rc, NULL, &eo);
	assert_int_equal(rc, 0);
	assert_true(asprintf(&wrapped, "From: mallory@example.org\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"W\"\r\n\r\n--W\r\nContent-Type: text/plain\r\n\r\n"
	    "Please reply.\r\n--W\r\n%s\r\n--W--\r\n", strstr(e, "Content-Type: application/pkcs7-mime")) > 0);
	d = run(DECRYPT, wrapped, strlen(wrapped), &rc, &rep, NULL);
	assert_int_equal(rc, SMIME_E_POLICY);
	assert_null(d);
	smime_report_free(rep);
	d = run(OPEN, wrapped, strlen(wrapped), &rc, &rep, NULL);
	assert_int_not_equal(rc, 0);
	if (d != NULL)
		assert_null(strstr(d, "SECRET"));
	smime_report_free(rep);
	free(d);
	free(wrapped);
	free(e);
	free(m);
}

static void
test_hostile_inputs(void **state)
{
	static const char *rows[] = {
		"",
		"no headers at all",
		"From: a@b\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
		    "Content-Transfer-Encoding: base64\r\n\r\nMAsGCSqGSIb3DQEHAw==\r\n",
		"From: a@b\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data\r\n"
		    "Content-Transfer-Encoding: base64\r\n\r\nMAsGCSqGSIb3DQEHAg==\r\n",
		"From: a@b\r\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; "
		    "boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nx\r\n",
		"From: a@b\r\nContent-Type: multipart/signed; boundary=B\r\n\r\n--B\r\n\r\nx\r\n--B\r\n"
		    "Content-Type: application/pkcs7-signature\r\n\r\n\x30\x80\x30\x80\r\n--B--\r\n",
	};
	(void)state;
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		for (int op = VERIFY; op <= OPEN; op++) {
			int rc;
			char *o = run((enum op)op, rows[r], strlen(rows[r]), &rc, NULL, NULL);
			assert_int_not_equal(rc, 0);
			assert_null(o);
		}
	}
}

static void
test_mime_canonical_entity(void **state)
{
	const char *m = "From: a@example.org\nTo: b@example.org\nSubject: s\nMIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nZ\xc3\xbcrich\n";
	GMimeMessage *msg;
	struct buf hdr, ent;
	struct smime_error err;

	(void)state;
	buf_init(&hdr, 1 << 20);
	buf_init(&ent, 1 << 20);
	assert_int_equal(mime_parse((const unsigned char *)m, strlen(m), &msg, &err), 0);
	assert_int_equal(mime_outer_headers(msg, &hdr, &err), 0);
	assert_int_equal(buf_add(&hdr, "", 1, &err), 0);
	assert_string_equal((char *)hdr.data, "From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\n");
	assert_int_equal(mime_entity(g_mime_message_get_mime_part(msg), true, &ent, &err), 0);
	assert_int_equal(buf_add(&ent, "", 1, &err), 0);
	assert_null(strstr((char *)ent.data, "8bit"));
	assert_null(strstr((char *)ent.data, "\xc3"));
	for (size_t i = 0; i < ent.len - 1; i++)
		if (ent.data[i] == '\n')
			assert_int_equal(ent.data[i - 1], '\r');
	g_object_unref(msg);
	buf_free(&hdr);
	buf_free(&ent);
}

static void
test_certs_only_round_trip(void **state)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	BIO *o = BIO_new(BIO_s_mem());
	struct smime_bag *bag = smime_bag_new();
	struct smime_inspection *ins = NULL;
	struct smime_error err;

	(void)state;
	X509_up_ref(pki.ca);
	sk_X509_push(certs, pki.ca);
	assert_int_equal(smime_msg_certs_only(certs, o, &err), 0);
	assert_int_equal(smime_msg_extract(o, NULL, bag, &err), 0);
	assert_int_equal(sk_X509_num(bag->certs), 1);
	assert_int_equal(X509_cmp(sk_X509_value(bag->certs, 0), pki.ca), 0);
	BIO_free(o);
	o = BIO_new(BIO_s_mem());
	assert_int_equal(smime_msg_certs_only(certs, o, &err), 0);
	assert_int_equal(smime_msg_inspect(o, &ins, &err), 0);
	assert_int_equal(ins->n_nodes, 1);
	assert_non_null(strstr(ins->nodes[0].content_type, "certs-only"));
	assert_non_null(strstr(ins->nodes[0].detail, "0 signer(s), 1 certificate(s)"));
	smime_inspection_free(ins);
	smime_bag_free(bag);
	BIO_free(o);
	sk_X509_pop_free(certs, X509_free);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mime_canonical_entity),
		cmocka_unit_test(test_sign_verify_rows),
		cmocka_unit_test(test_encrypt_decrypt_rows),
		cmocka_unit_test(test_missing_recipients_named),
		cmocka_unit_test(test_from_mismatch_and_partial),
		cmocka_unit_test(test_non_root_encryption_never_decrypted),
		cmocka_unit_test(test_hostile_inputs),
		cmocka_unit_test(test_certs_only_round_trip),
	};
	return cmocka_run_group_tests_name("message", tests, setup, teardown);
}

/*
 * Unit tests of server/trust.c: validation against the trust collection
 * and the distrust list, on a store of its own (no HTTP, no committer).
 * Each change bumps the state generation as a committed request does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include <smime/cert.h>

#include "testutil.h"
#include "store.h"
#include "trust.h"

struct fx {
	char *dir;
	struct service svc;
	EVP_PKEY *root_key, *other_key, *inter_key, *leaf_key, *direct_key;
	X509 *root, *other, *inter, *leaf, *direct;
};

#define CHECK(expr) assert_int_equal((expr), 0)

static void
put(struct fx *f, X509 *x, bool distrust)
{
	struct smime_error err;
	struct store_tx *tx = NULL;
	struct store_trust t = { .created = 1 };
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);

	assert_true(len > 0);
	smime_cert_fingerprint(x, t.sha256);
	t.subject = (char *)"CN=test";
	t.der = der;
	t.der_len = (size_t)len;
	assert_int_equal(f->svc.be->begin(f->svc.st, true, &tx, &err), 0);
	assert_int_equal(distrust ? f->svc.be->distrust_put(tx, &t, &err) :
	    f->svc.be->trust_put(tx, &t, &err), 0);
	assert_int_equal(f->svc.be->commit(tx, &err), 0);
	atomic_fetch_add(&f->svc.state_gen, 1);
	OPENSSL_free(der);
}

static void
drop(struct fx *f, X509 *x, bool distrust)
{
	struct smime_error err;
	struct store_tx *tx = NULL;
	char fp[65];

	smime_cert_fingerprint(x, fp);
	assert_int_equal(f->svc.be->begin(f->svc.st, true, &tx, &err), 0);
	assert_int_equal(distrust ? f->svc.be->distrust_delete(tx, fp, &err) :
	    f->svc.be->trust_delete(tx, fp, &err), 0);
	assert_int_equal(f->svc.be->commit(tx, &err), 0);
	atomic_fetch_add(&f->svc.state_gen, 1);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct smime_error err;

	assert_non_null(f);
	f->dir = tu_tmpdir();
	f->svc.be = &store_sqlite;
	assert_int_equal(f->svc.be->open(f->dir, &f->svc.st, &err), 0);
	pthread_mutex_init(&f->svc.trust_lock, NULL);
	f->root_key = tu_key("p256");
	f->other_key = tu_key("p256");
	f->inter_key = tu_key("p256");
	f->leaf_key = tu_key("p256");
	f->direct_key = tu_key("p256");
	f->root = tu_cert(NULL, NULL, f->root_key, "Root", NULL, SMIME_ROLE_CA, -1, 3650);
	f->other = tu_cert(NULL, NULL, f->other_key, "Other Root", NULL, SMIME_ROLE_CA, -1, 3650);
	f->inter = tu_cert(f->root, f->root_key, f->inter_key, "Intermediate", NULL,
	    SMIME_ROLE_CA, -1, 3000);
	f->leaf = tu_cert(f->inter, f->inter_key, f->leaf_key, "Alice", "alice@example.org",
	    SMIME_ROLE_ENCRYPT | SMIME_ROLE_SIGN, -1, 365);
	f->direct = tu_cert(f->root, f->root_key, f->direct_key, "Bob", "bob@example.org",
	    SMIME_ROLE_SIGN, -1, 365);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	trust_forget(&f->svc);
	pthread_mutex_destroy(&f->svc.trust_lock);
	f->svc.be->close(f->svc.st);
	X509_free(f->root);
	X509_free(f->other);
	X509_free(f->inter);
	X509_free(f->leaf);
	X509_free(f->direct);
	EVP_PKEY_free(f->root_key);
	EVP_PKEY_free(f->other_key);
	EVP_PKEY_free(f->inter_key);
	EVP_PKEY_free(f->leaf_key);
	EVP_PKEY_free(f->direct_key);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

/* trust_verify of x with the intermediate beside it: 0, or the error with its message. */
static int
verify(struct fx *f, X509 *x, char *msg, size_t size)
{
	struct smime_error err = { 0 };
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	int rc;

	sk_X509_push(untrusted, f->inter);
	rc = trust_verify(&f->svc, x, untrusted, 0, NULL, &err);
	sk_X509_free(untrusted);
	snprintf(msg, size, "%s", rc != 0 ? err.message : "");
	return rc;
}

/* A path through a distrusted CA fails, even when that CA is trusted too. */
static void
test_distrusted_path(void **state)
{
	struct fx *f = *state;
	char msg[512];

	assert_int_not_equal(verify(f, f->leaf, msg, sizeof(msg)), 0);
	put(f, f->root, false);
	assert_int_equal(verify(f, f->leaf, msg, sizeof(msg)), 0);
	assert_int_equal(verify(f, f->direct, msg, sizeof(msg)), 0);

	/* The root distrusted as well as trusted: nothing under it validates. */
	put(f, f->root, true);
	assert_int_equal(verify(f, f->leaf, msg, sizeof(msg)), SMIME_E_BADSIG);
	assert_non_null(strstr(msg, "distrust list"));
	assert_non_null(strstr(msg, "CN=Root"));
	assert_int_equal(verify(f, f->direct, msg, sizeof(msg)), SMIME_E_BADSIG);
	drop(f, f->root, true);
	assert_int_equal(verify(f, f->leaf, msg, sizeof(msg)), 0);

	/* The intermediate distrusted: its leaf fails, the root's other leaf not. */
	put(f, f->inter, true);
	assert_int_equal(verify(f, f->leaf, msg, sizeof(msg)), SMIME_E_BADSIG);
	assert_non_null(strstr(msg, "Intermediate"));
	assert_int_equal(verify(f, f->direct, msg, sizeof(msg)), 0);
	drop(f, f->inter, true);

	/* A leaf distrusted alone. */
	put(f, f->leaf, true);
	assert_int_equal(verify(f, f->leaf, msg, sizeof(msg)), SMIME_E_BADSIG);
	assert_int_equal(verify(f, f->direct, msg, sizeof(msg)), 0);
}

/*
 * A trusted intermediate ends the path (partial chains are taken), but a
 * distrusted root above it fails the path all the same.
 */
static void
test_distrusted_above_anchor(void **state)
{
	struct fx *f = *state;
	char msg[512];

	put(f, f->inter, false);
	assert_int_equal(verify(f, f->leaf, msg, sizeof(msg)), 0);
	put(f, f->root, true);
	assert_int_equal(verify(f, f->leaf, msg, sizeof(msg)), SMIME_E_BADSIG);
	assert_non_null(strstr(msg, "goes up to"));
	assert_non_null(strstr(msg, "CN=Root"));
}

/*
 * trust_distrusted: the certificate itself, its subject and key re-issued
 * (a cross-certificate under another, trusted root), and what a
 * distrusted CA issued; an unrelated CA is not.
 */
static void
test_trust_distrusted(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	char *why = NULL;
	/* The root's subject and key, certified by the other root. */
	X509 *cross = tu_cert(f->other, f->other_key, f->root_key, "Root", NULL, SMIME_ROLE_CA,
	    -1, 365);
	/* The same key under another name is another CA. */
	X509 *renamed = tu_cert(f->other, f->other_key, f->root_key, "Renamed", NULL,
	    SMIME_ROLE_CA, -1, 365);

	put(f, f->root, true);
	CHECK(trust_distrusted(&f->svc, f->root, &why, &err));
	assert_non_null(why);
	free(why);
	CHECK(trust_distrusted(&f->svc, cross, &why, &err));
	assert_non_null(why);
	assert_non_null(strstr(why, "CN=Root"));
	free(why);
	CHECK(trust_distrusted(&f->svc, f->inter, &why, &err));
	assert_non_null(why);
	assert_non_null(strstr(why, "issued by"));
	free(why);
	CHECK(trust_distrusted(&f->svc, f->other, &why, &err));
	assert_null(why);
	CHECK(trust_distrusted(&f->svc, renamed, &why, &err));
	assert_null(why);
	/* The cross-certificate trusted: a leaf through it fails still. */
	put(f, f->other, false);
	put(f, cross, false);
	EVP_PKEY *k2 = tu_key("p256");
	X509 *leaf2 = tu_cert(cross, f->root_key, k2, "Carol", "carol@example.org",
	    SMIME_ROLE_SIGN, -1, 30);
	struct smime_error e2 = { 0 };
	assert_int_equal(trust_verify(&f->svc, leaf2, NULL, 0, NULL, &e2), SMIME_E_BADSIG);
	assert_non_null(strstr(e2.message, "distrust"));
	X509_free(leaf2);
	EVP_PKEY_free(k2);
	X509_free(cross);
	X509_free(renamed);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_distrusted_path),
		T(test_distrusted_above_anchor),
		T(test_trust_distrusted),
	};
#undef T

	return cmocka_run_group_tests_name("trust", tests, NULL, NULL);
}

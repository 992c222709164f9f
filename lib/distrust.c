/*
 * distrust: the keystore's distrust list in every validation.
 *
 * A distrusted entry (SMIME_ENTRY_DISTRUSTED: a CA such as DigiNotar, or a
 * leaf) is neither an anchor nor a chain-building certificate, and a chain
 * holding it fails.  A chain may still carry a copy of it (a message brings
 * its own intermediates), or a re-issue of the same CA under a trusted
 * root (a cross-certificate): a certificate is therefore distrusted when it
 * is one on the list or has the subject and public key of one, which is
 * how RFC 5280 6.1 identifies a CA (name and key).
 *
 * The stores smime_keystore_trust makes carry the distrusted certificates
 * (ex_data) and smime_keystore_verify_cb, which OpenSSL calls for every
 * certificate of a chain that built (x509_vfy.c internal_verify, ok = 1)
 * and for each error on the way (ok = 0: a chain that ends at a distrusted
 * root, which is no anchor, is reported as distrusted, not as untrusted).
 * The distrusted certificates are among the untrusted ones the store's
 * user gets, so that chains are built through them and named.
 */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "keystore_internal.h"

static CRYPTO_ONCE distrust_once = CRYPTO_ONCE_STATIC_INIT;
static int distrust_idx = -1;

static void
distrust_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	sk_X509_pop_free(ptr, X509_free);
}

static void
distrust_index_init(void)
{
	distrust_idx = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_X509_STORE, 0, NULL, NULL, NULL,
	    distrust_free);
}

/* Is cert one of list, or does it share the subject and key of one? */
static bool
listed(STACK_OF(X509) *list, X509 *cert)
{
	EVP_PKEY *pk = X509_get0_pubkey(cert);

	for (int i = 0; list != NULL && i < sk_X509_num(list); i++) {
		X509 *d = sk_X509_value(list, i);
		if (X509_cmp(d, cert) == 0)
			return true;
		if (X509_NAME_cmp(X509_get_subject_name(d), X509_get_subject_name(cert)) == 0 &&
		    pk != NULL && X509_get0_pubkey(d) != NULL &&
		    EVP_PKEY_eq(X509_get0_pubkey(d), pk) == 1)
			return true;
	}
	ERR_clear_error();
	return false;
}

/* The distrusted certificates of ks (new references), or NULL with err set. */
static STACK_OF(X509) *
distrust_list(struct smime_keystore *ks, struct smime_error *err)
{
	STACK_OF(X509) *list = sk_X509_new_null();

	if (list == NULL) {
		smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < smime_keystore_count(ks); i++) {
		const struct smime_entry *e = smime_keystore_entry(ks, i);
		X509 *c;
		if (e->kind != SMIME_ENTRY_DISTRUSTED)
			continue;
		if (smime_keystore_cert(ks, e->fingerprint, &c, err) != 0) {
			sk_X509_pop_free(list, X509_free);
			return NULL;
		}
		if (!sk_X509_push(list, c)) {
			X509_free(c);
			sk_X509_pop_free(list, X509_free);
			smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			return NULL;
		}
	}
	return list;
}

int
keystore_distrust_attach(struct smime_keystore *ks, X509_STORE *store, struct smime_error *err)
{
	STACK_OF(X509) *list;

	if (!CRYPTO_THREAD_run_once(&distrust_once, distrust_index_init) || distrust_idx < 0)
		return smime_error_ssl(err, SMIME_E_INTERNAL, "cannot reserve the distrust slot");
	if ((list = distrust_list(ks, err)) == NULL)
		return err->code;
	if (!X509_STORE_set_ex_data(store, distrust_idx, list)) {
		sk_X509_pop_free(list, X509_free);
		return smime_error_ssl(err, SMIME_E_INTERNAL, "cannot attach the distrust list");
	}
	X509_STORE_set_verify_cb(store, smime_keystore_verify_cb);
	return 0;
}

int
smime_keystore_verify_cb(int ok, X509_STORE_CTX *ctx)
{
	X509_STORE *store = X509_STORE_CTX_get0_store(ctx);
	STACK_OF(X509) *list;
	X509 *cur;

	/* Also on an error: a chain that ends at a distrusted root says so. */
	if (store == NULL || distrust_idx < 0)
		return ok;
	list = X509_STORE_get_ex_data(store, distrust_idx);
	cur = X509_STORE_CTX_get_current_cert(ctx);
	if (list != NULL && cur != NULL && listed(list, cur)) {
		X509_STORE_CTX_set_error(ctx, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	return ok;
}

int
keystore_chain_distrusted(struct smime_keystore *ks, X509 *cert, bool *distrusted_r,
    struct smime_error *err)
{
	X509_STORE *store = NULL;
	STACK_OF(X509) *others = NULL;
	X509_STORE_CTX *ctx = NULL;
	int rc;

	*distrusted_r = false;
	if ((rc = smime_keystore_trust(ks, &store, &others, err)) != 0)
		return rc;
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(ctx, store, cert, others)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "cannot set up certificate verification");
		goto out;
	}
	/* Whatever else fails (no anchor, expiry) is the caller's to judge. */
	if (X509_verify_cert(ctx) != 1 &&
	    X509_STORE_CTX_get_error(ctx) == X509_V_ERR_CERT_REJECTED)
		*distrusted_r = true;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(others, X509_free);
	return rc;
}

/* A list that cannot be read fails closed. */
bool
smime_keystore_distrusted(struct smime_keystore *ks, X509 *cert)
{
	struct smime_error err;
	STACK_OF(X509) *list;
	bool r;

	if (ks == NULL || cert == NULL)
		return false;
	if ((list = distrust_list(ks, &err)) == NULL)
		return true;  /* a list that cannot be read distrusts */
	r = listed(list, cert);
	sk_X509_pop_free(list, X509_free);
	return r;
}

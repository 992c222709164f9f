/* smimed: validation against the trust collection (trust.h). */
#include <stdlib.h>

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <smime/cert.h>

#include "store.h"
#include "trust.h"

/* The collection as an X509_STORE: the CAs of the service and the imported ones. */
static int
collection_build(struct service *svc, X509_STORE **store_r, struct smime_error *err)
{
	struct store_tx *tx = NULL;
	struct store_ca *cas = NULL;
	struct store_trust *v = NULL;
	size_t n_cas = 0, n = 0;
	X509_STORE *store = X509_STORE_new();
	int rc;

	*store_r = NULL;
	if (store == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if ((rc = svc->be->begin(svc->st, false, &tx, err)) != 0)
		goto out;
	rc = svc->be->ca_list(tx, &cas, &n_cas, err);
	if (rc == 0)
		rc = svc->be->trust_list(tx, &v, &n, err);
	svc->be->rollback(tx);
	if (rc != 0)
		goto out;
	for (size_t i = 0; i < n_cas + n; i++) {
		const unsigned char *p = i < n_cas ? cas[i].cert_der : v[i - n_cas].der;
		size_t len = i < n_cas ? cas[i].cert_len : v[i - n_cas].der_len;
		X509 *x = d2i_X509(NULL, &p, (long)len);
		if (x == NULL)
			continue;   /* the store only holds what parsed when it was put */
		X509_STORE_add_cert(store, x);
		X509_free(x);
	}
	*store_r = store;
	store = NULL;
out:
	X509_STORE_free(store);
	store_cas_free(cas, n_cas);
	store_trusts_free(v, n);
	return rc;
}

/*
 * The collection, built once per state generation: lookups and
 * publication validate many certificates between two changes.  The caller
 * frees its reference.
 */
static int
collection(struct service *svc, X509_STORE **store_r, struct smime_error *err)
{
	uint64_t gen = atomic_load(&svc->state_gen);
	X509_STORE *store = NULL;
	int rc;

	pthread_mutex_lock(&svc->trust_lock);
	if (svc->trust_store != NULL && svc->trust_gen == gen &&
	    X509_STORE_up_ref(svc->trust_store)) {
		*store_r = svc->trust_store;
		pthread_mutex_unlock(&svc->trust_lock);
		return 0;
	}
	pthread_mutex_unlock(&svc->trust_lock);
	if ((rc = collection_build(svc, &store, err)) != 0)
		return rc;
	pthread_mutex_lock(&svc->trust_lock);
	if (X509_STORE_up_ref(store)) {
		X509_STORE_free(svc->trust_store);
		svc->trust_store = store;
		svc->trust_gen = gen;
	}
	pthread_mutex_unlock(&svc->trust_lock);
	*store_r = store;
	return 0;
}

void
trust_forget(struct service *svc)
{
	pthread_mutex_lock(&svc->trust_lock);
	X509_STORE_free(svc->trust_store);
	svc->trust_store = NULL;
	pthread_mutex_unlock(&svc->trust_lock);
}

int
trust_verify(struct service *svc, X509 *cert, STACK_OF(X509) *untrusted, int64_t at,
    STACK_OF(X509) **chain_r, struct smime_error *err)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	int rc;

	if (chain_r != NULL)
		*chain_r = NULL;
	if (X509_get0_subject_key_id(cert) == NULL)
		return smime_error_set(err, SMIME_E_POLICY, "the certificate has no subject key "
		    "identifier");
	if (!smime_cert_email_protection(cert))
		return smime_error_set(err, SMIME_E_POLICY, "the certificate's extended key usage "
		    "does not allow emailProtection");
	if ((rc = collection(svc, &store, err)) != 0)
		return rc;
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, cert, untrusted) != 1) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "trust: verification context");
		goto out;
	}
	/* An intermediate of the collection is trusted as it is (Exchange's
	 * virtual certificate collection works so). */
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN);
	if (at != 0)
		X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
	if (X509_verify_cert(ctx) != 1) {
		int e = X509_STORE_CTX_get_error(ctx);
		rc = smime_error_set(err, SMIME_E_BADSIG, "not trusted: %s (the trust collection "
		    "has no CA for it, or the chain is broken)", X509_verify_cert_error_string(e));
		goto out;
	}
	if (chain_r != NULL) {
		/* What a client needs beside its anchors: the CAs above the leaf
		 * that are not self-signed roots. */
		STACK_OF(X509) *all = X509_STORE_CTX_get1_chain(ctx), *up = sk_X509_new_null();
		for (int i = 1; all != NULL && up != NULL && i < sk_X509_num(all); i++) {
			X509 *x = sk_X509_value(all, i);
			if (X509_get_extension_flags(x) & EXFLAG_SS)
				continue;
			if (!sk_X509_push(up, x))
				break;
			X509_up_ref(x);
		}
		sk_X509_pop_free(all, X509_free);
		if (up == NULL) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
		*chain_r = up;
	}
	rc = 0;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

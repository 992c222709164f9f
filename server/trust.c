/* smimed: validation against the trust collection and the distrust list (trust.h). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <smime/cert.h>

#include "store.h"
#include "trust.h"

/* One certificate of the distrust list, as validation compares it. */
struct distrusted {
	char sha256[65];                 /* of the certificate */
	unsigned char spki[32];          /* SHA-256 of its subjectPublicKeyInfo */
	char *subject;
	X509 *cert;
};

/*
 * The anchors (the CAs of the service and the imported ones) and the
 * distrust list of one state generation, shared by reference.
 */
struct trust_collection {
	_Atomic int refs;
	X509_STORE *store;
	struct distrusted *dis;
	size_t n_dis;
};

static void
collection_unref(struct trust_collection *tc)
{
	if (tc == NULL || atomic_fetch_sub(&tc->refs, 1) != 1)
		return;
	X509_STORE_free(tc->store);
	for (size_t i = 0; i < tc->n_dis; i++) {
		OPENSSL_free(tc->dis[i].subject);
		X509_free(tc->dis[i].cert);
	}
	free(tc->dis);
	free(tc);
}

/* SHA-256 of x's subjectPublicKeyInfo. */
static int
spki_hash(X509 *x, unsigned char out[32])
{
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	int ok = len > 0 && EVP_Digest(der, (size_t)len, out, NULL, EVP_sha256(), NULL) == 1;

	OPENSSL_free(der);
	return ok ? 0 : -1;
}

/* The collection as the store holds it now. */
static int
collection_build(struct service *svc, struct trust_collection **tc_r, struct smime_error *err)
{
	struct store_tx *tx = NULL;
	struct store_ca *cas = NULL;
	struct store_trust *v = NULL, *dv = NULL;
	size_t n_cas = 0, n = 0, n_dv = 0;
	struct trust_collection *tc = calloc(1, sizeof(*tc));
	int rc;

	*tc_r = NULL;
	if (tc == NULL || (tc->store = X509_STORE_new()) == NULL) {
		free(tc);
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	atomic_init(&tc->refs, 1);
	if ((rc = svc->be->begin(svc->st, false, &tx, err)) != 0)
		goto out;
	rc = svc->be->ca_list(tx, &cas, &n_cas, err);
	if (rc == 0)
		rc = svc->be->trust_list(tx, &v, &n, err);
	if (rc == 0)
		rc = svc->be->distrust_list(tx, &dv, &n_dv, err);
	svc->be->rollback(tx);
	if (rc != 0)
		goto out;
	for (size_t i = 0; i < n_cas + n; i++) {
		const unsigned char *p = i < n_cas ? cas[i].cert_der : v[i - n_cas].der;
		size_t len = i < n_cas ? cas[i].cert_len : v[i - n_cas].der_len;
		X509 *x = d2i_X509(NULL, &p, (long)len);
		if (x == NULL)
			continue;   /* the store only holds what parsed when it was put */
		X509_STORE_add_cert(tc->store, x);
		X509_free(x);
	}
	if ((tc->dis = calloc(n_dv + 1, sizeof(*tc->dis))) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n_dv; i++) {
		const unsigned char *p = dv[i].der;
		struct distrusted *d = &tc->dis[tc->n_dis];
		X509 *x = d2i_X509(NULL, &p, (long)dv[i].der_len);
		if (x == NULL)
			continue;
		if (spki_hash(x, d->spki) != 0 || (d->subject = smime_cert_subject(x)) == NULL) {
			X509_free(x);
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
		smime_cert_fingerprint(x, d->sha256);
		d->cert = x;
		tc->n_dis++;
	}
	*tc_r = tc;
	tc = NULL;
out:
	collection_unref(tc);
	store_cas_free(cas, n_cas);
	store_trusts_free(v, n);
	store_trusts_free(dv, n_dv);
	return rc;
}

/*
 * The collection, built once per state generation: lookups and
 * publication validate many certificates between two changes.  The caller
 * drops its reference with collection_unref.
 */
static int
collection(struct service *svc, struct trust_collection **tc_r, struct smime_error *err)
{
	uint64_t gen = atomic_load(&svc->state_gen);
	struct trust_collection *tc = NULL;
	int rc;

	pthread_mutex_lock(&svc->trust_lock);
	if (svc->trust_store != NULL && svc->trust_gen == gen) {
		atomic_fetch_add(&svc->trust_store->refs, 1);
		*tc_r = svc->trust_store;
		pthread_mutex_unlock(&svc->trust_lock);
		return 0;
	}
	pthread_mutex_unlock(&svc->trust_lock);
	if ((rc = collection_build(svc, &tc, err)) != 0)
		return rc;
	pthread_mutex_lock(&svc->trust_lock);
	atomic_fetch_add(&tc->refs, 1);
	collection_unref(svc->trust_store);
	svc->trust_store = tc;
	svc->trust_gen = gen;
	pthread_mutex_unlock(&svc->trust_lock);
	*tc_r = tc;
	return 0;
}

void
trust_forget(struct service *svc)
{
	pthread_mutex_lock(&svc->trust_lock);
	collection_unref(svc->trust_store);
	svc->trust_store = NULL;
	pthread_mutex_unlock(&svc->trust_lock);
}

/*
 * The entry of the distrust list that x is, or NULL: the same certificate,
 * or the same subject with the same key (a re-issue or a cross-certificate
 * of a distrusted CA is that CA all the same).
 */
static const struct distrusted *
distrust_match(const struct trust_collection *tc, X509 *x)
{
	unsigned char spki[32];
	char fp[65];
	bool have_spki;

	if (tc->n_dis == 0)
		return NULL;
	smime_cert_fingerprint(x, fp);
	have_spki = spki_hash(x, spki) == 0;
	for (size_t i = 0; i < tc->n_dis; i++) {
		const struct distrusted *d = &tc->dis[i];
		if (strcmp(d->sha256, fp) == 0)
			return d;
		if (have_spki && memcmp(d->spki, spki, sizeof(spki)) == 0 &&
		    X509_NAME_cmp(X509_get_subject_name(d->cert), X509_get_subject_name(x)) == 0)
			return d;
	}
	return NULL;
}

/* The distrusted CA that issued x (name and signature), or NULL. */
static const struct distrusted *
distrust_issuer(const struct trust_collection *tc, X509 *x)
{
	for (size_t i = 0; i < tc->n_dis; i++) {
		EVP_PKEY *k;
		if (X509_check_issued(tc->dis[i].cert, x) != X509_V_OK)
			continue;
		if ((k = X509_get0_pubkey(tc->dis[i].cert)) != NULL && X509_verify(x, k) == 1)
			return &tc->dis[i];
	}
	ERR_clear_error();
	return NULL;
}

static char *
distrust_text(const struct distrusted *d, const char *how)
{
	char *s = NULL;

	if (asprintf(&s, "%sdistrusted: %s (SHA-256 %.16s...) is on the distrust list", how,
	    d->subject, d->sha256) < 0)
		return NULL;
	return s;
}

int
trust_distrusted(struct service *svc, X509 *x, char **why_r, struct smime_error *err)
{
	struct trust_collection *tc = NULL;
	const struct distrusted *d;
	int rc;

	*why_r = NULL;
	if ((rc = collection(svc, &tc, err)) != 0)
		return rc;
	if ((d = distrust_match(tc, x)) != NULL)
		*why_r = distrust_text(d, "");
	else if ((X509_get_extension_flags(x) & EXFLAG_SS) == 0 &&
	    (d = distrust_issuer(tc, x)) != NULL)
		*why_r = distrust_text(d, "issued by a CA that is ");
	if (d != NULL && *why_r == NULL)
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	collection_unref(tc);
	return rc;
}

/* Refuse a validated path that touches the distrust list. */
static int
chain_distrusted(const struct trust_collection *tc, STACK_OF(X509) *chain,
    struct smime_error *err)
{
	const struct distrusted *d = NULL;
	int n = sk_X509_num(chain), i;

	for (i = 0; i < n && d == NULL; i++)
		d = distrust_match(tc, sk_X509_value(chain, i));
	if (d != NULL)
		return smime_error_set(err, SMIME_E_BADSIG, "not trusted: %s (SHA-256 %.16s...) "
		    "is on the distrust list%s", d->subject, d->sha256, i > 1 ? " (a CA of its path)" :
		    "");
	/* A trusted intermediate ends the path; its distrusted issuer is
	 * distrusted all the same. */
	X509 *top = n > 0 ? sk_X509_value(chain, n - 1) : NULL;
	if (top != NULL && (X509_get_extension_flags(top) & EXFLAG_SS) == 0 &&
	    (d = distrust_issuer(tc, top)) != NULL)
		return smime_error_set(err, SMIME_E_BADSIG, "not trusted: its path goes up to %s "
		    "(SHA-256 %.16s...), which is on the distrust list", d->subject, d->sha256);
	return 0;
}

int
trust_verify(struct service *svc, X509 *cert, STACK_OF(X509) *untrusted, int64_t at,
    STACK_OF(X509) **chain_r, struct smime_error *err)
{
	struct trust_collection *tc = NULL;
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
	if ((rc = collection(svc, &tc, err)) != 0)
		return rc;
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, tc->store, cert, untrusted) != 1) {
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
		const struct distrusted *d = distrust_match(tc, cert);
		/* Say the distrust when there is one: it outlasts any repair. */
		if (d != NULL)
			rc = smime_error_set(err, SMIME_E_BADSIG, "not trusted: %s (SHA-256 %.16s...) "
			    "is on the distrust list", d->subject, d->sha256);
		else
			rc = smime_error_set(err, SMIME_E_BADSIG, "not trusted: %s (the trust "
			    "collection has no CA for it, or the chain is broken)",
			    X509_verify_cert_error_string(e));
		goto out;
	}
	if ((rc = chain_distrusted(tc, X509_STORE_CTX_get0_chain(ctx), err)) != 0)
		goto out;
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
	collection_unref(tc);
	return rc;
}

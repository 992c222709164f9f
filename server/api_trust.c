/*
 * smimed: /api/v1/trust, the trust collection (the virtual certificate
 * collection of Exchange): the CAs of this service, always in it, and the
 * roots and intermediates an administrator imports from PEM, DER, PKCS#7
 * or Microsoft SST files; /api/v1/distrust, the distrust list (Windows'
 * disallowed store): CAs and end-entity certificates that no validation
 * of the service accepts, even when they are in the collection too.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <smime/cert.h>

#include "api.h"
#include "trust.h"

#define TRUST_MAX_FILE (16 * 1024 * 1024)

static json_t *
trust_json(X509 *x, const char *sha256, const char *source, const char *ca_id, int64_t added)
{
	char *subject = smime_cert_subject(x);
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);
	char *pem = len > 0 ? api_cert_pem(der, (size_t)len) : NULL;
	struct tm tm;
	int64_t na = 0;

	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
		na = (int64_t)timegm(&tm);
	json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:s}", "sha256", sha256, "subject",
	    subject != NULL ? subject : "", "source", source, "ca",
	    ca_id != NULL ? json_string(ca_id) : json_null(), "not_after", time_json(na),
	    "added", time_json(added), "certificate", pem != NULL ? pem : "");
	OPENSSL_free(subject);
	OPENSSL_free(der);
	free(pem);
	return j;
}

void
h_distrust_list(struct request *rq)
{
	struct store_trust *v = NULL;
	size_t n = 0;
	struct smime_error err;
	struct store_tx *tx = rq_read(rq);

	if (tx == NULL)
		return;
	int rc = rq->svc->be->distrust_list(tx, &v, &n, &err);
	rq->svc->be->rollback(tx);
	if (rc != 0) {
		reply_smime(rq, &err);
		return;
	}
	json_t *items = json_array();
	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = v[i].der;
		X509 *x = d2i_X509(NULL, &p, (long)v[i].der_len);
		if (x == NULL)
			continue;
		json_array_append_new(items, trust_json(x, v[i].sha256, "distrusted", NULL,
		    v[i].created));
		X509_free(x);
	}
	reply_json(rq, 200, json_pack("{s:o}", "items", items));
	store_trusts_free(v, n);
}

void
h_trust_list(struct request *rq)
{
	struct store_ca *cas = NULL;
	struct store_trust *v = NULL;
	size_t n_cas = 0, n = 0;
	struct smime_error err;
	struct store_tx *tx = rq_read(rq);

	if (tx == NULL)
		return;
	int rc = rq->svc->be->ca_list(tx, &cas, &n_cas, &err);
	if (rc == 0)
		rc = rq->svc->be->trust_list(tx, &v, &n, &err);
	rq->svc->be->rollback(tx);
	if (rc != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	json_t *items = json_array();
	for (size_t i = 0; i < n_cas; i++) {
		const unsigned char *p = cas[i].cert_der;
		X509 *x = d2i_X509(NULL, &p, (long)cas[i].cert_len);
		char fp[65];
		if (x == NULL)
			continue;
		smime_cert_fingerprint(x, fp);
		json_array_append_new(items, trust_json(x, fp, "service", cas[i].id, cas[i].created));
		X509_free(x);
	}
	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = v[i].der;
		X509 *x = d2i_X509(NULL, &p, (long)v[i].der_len);
		if (x == NULL)
			continue;
		json_array_append_new(items, trust_json(x, v[i].sha256, "imported", NULL,
		    v[i].created));
		X509_free(x);
	}
	reply_json(rq, 200, json_pack("{s:o}", "items", items));
out:
	store_cas_free(cas, n_cas);
	store_trusts_free(v, n);
}

struct trust_op {
	struct service *svc;
	const char *actor;
	const char *sha256;     /* delete */
	bool distrust;          /* the distrust list, not the collection */
};

/* One certificate of an import that may be added, and its report row. */
struct trust_item {
	struct store_trust t;
	json_t *row;
};

/* A whole file's additions: one transaction. */
struct trust_import_op {
	struct service *svc;
	const char *actor;
	bool distrust;
	struct trust_item *items;
	size_t n;
	long added, existing;   /* of the items */
};

/*
 * Add every item in one transaction (a certificate there already is
 * "exists"), then queue the users for publication again: what a trusted
 * CA validates may be published now, what a distrusted one validated must
 * leave the directory, and neither may be lost to a crash in between.
 */
static int
trust_import_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct trust_import_op *io = arg;
	const struct store_backend *be = io->svc->be;
	int rc;

	io->added = io->existing = 0;
	for (size_t i = 0; i < io->n; i++) {
		struct trust_item *it = &io->items[i];
		rc = io->distrust ? be->distrust_put(tx, &it->t, err) : be->trust_put(tx, &it->t,
		    err);
		if (rc == SMIME_E_EXISTS) {
			json_object_set_new(it->row, "status", json_string("exists"));
			io->existing++;
			continue;
		}
		if (rc != 0)
			return rc;
		json_object_set_new(it->row, "status", json_string(io->distrust ? "distrusted" :
		    "added"));
		io->added++;
		if ((rc = audit_row(io->svc, tx, io->actor, io->distrust ? "distrust.import" :
		    "trust.import", it->t.sha256, json_pack("{s:s}", "subject", it->t.subject),
		    err)) != 0)
			return rc;
	}
	return io->added > 0 ? api_publish_all(tx, io->svc, err) : 0;
}

static int
trust_delete_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct trust_op *to = arg;
	int rc = to->distrust ? to->svc->be->distrust_delete(tx, to->sha256, err) :
	    to->svc->be->trust_delete(tx, to->sha256, err);

	/* What chained to it is no longer published; what it blocked may be. */
	if (rc == 0)
		rc = api_publish_all(tx, to->svc, err);
	if (rc != 0)
		return rc;
	return audit_row(to->svc, tx, to->actor, to->distrust ? "distrust.remove" :
	    "trust.remove", to->sha256, NULL, err);
}

/* Why cert cannot join the trust collection, or NULL when it can. */
static const char *
trust_refusal(X509 *cert, int64_t now)
{
	if ((smime_cert_roles(cert) & SMIME_ROLE_CA) == 0)
		return "not a CA certificate (basicConstraints cA is not true)";
	/* DESIGN: every certificate carries Subject and Authority Key
	 * Identifiers; chains are built on them. */
	if (X509_get0_subject_key_id(cert) == NULL)
		return "no subject key identifier";
	uint32_t ku = X509_get_key_usage(cert);
	if (ku != UINT32_MAX && (ku & KU_KEY_CERT_SIGN) == 0)
		return "its key usage does not allow keyCertSign";
	if (!smime_cert_email_protection(cert))
		return "its extended key usage does not allow emailProtection";
	if (!smime_cert_valid_at(cert, (time_t)now))
		return "not valid now (expired, or not yet valid)";
	return NULL;
}

/*
 * POST /api/v1/trust and /api/v1/distrust: every certificate of the file,
 * each with its row (added, exists or refused with the reason; distrusted
 * or exists for the distrust list, which takes any certificate).
 */
static void
trust_import(struct request *rq, bool distrust)
{
	static const struct jfield fields[] = {
		{ "file", JSON_STRING, true },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct smime_bag *bag = NULL;
	unsigned char *data = NULL;
	size_t len = 0, n_cas = 0;
	struct store_ca *cas = NULL;
	char (*ca_fps)[65] = NULL;
	struct smime_error err;
	json_t *rows = json_array();
	long added = 0, existing = 0, refused = 0;
	int64_t now = service_now();
	struct trust_import_op io = { .svc = rq->svc, .actor = rq->actor, .distrust = distrust };

	if (o == NULL)
		goto out;
	if (api_base64(json_string_value(json_object_get(o, "file")), &data, &len,
	    TRUST_MAX_FILE, &err) != 0) {
		reply_error(rq, 400, "bad-request", "file: %s", err.message);
		goto out;
	}
	if ((bag = smime_bag_new()) == NULL) {
		reply_error(rq, 500, "internal", "out of memory");
		goto out;
	}
	/* PEM, DER, PKCS#7 certs-only, SST: recognised by content. */
	if (smime_bag_load(bag, data, len, NULL, &err) != 0) {
		reply_error(rq, err.code == SMIME_E_CRYPTO ? 422 : 400, err.code == SMIME_E_CRYPTO ?
		    "unprocessable" : "bad-request", "file: %s", err.message);
		goto out;
	}
	if (bag->n_keys > 0) {
		reply_error(rq, 400, "bad-request", "file: it holds a private key; the trust "
		    "collection takes certificates only");
		goto out;
	}
	if (sk_X509_num(bag->certs) == 0) {
		reply_error(rq, 400, "bad-request", "file: no certificate in it");
		goto out;
	}
	/* The service's own CAs are in the collection already. */
	struct store_tx *tx = rq_read(rq);
	if (tx == NULL)
		goto out;
	int rc = rq->svc->be->ca_list(tx, &cas, &n_cas, &err);
	rq->svc->be->rollback(tx);
	if (rc != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	/* Their fingerprints once, not for every certificate of the file. */
	if ((ca_fps = calloc(n_cas + 1, sizeof(*ca_fps))) == NULL) {
		reply_error(rq, 500, "internal", "out of memory");
		goto out;
	}
	for (size_t k = 0; k < n_cas; k++) {
		const unsigned char *p = cas[k].cert_der;
		X509 *c = d2i_X509(NULL, &p, (long)cas[k].cert_len);
		if (c != NULL)
			smime_cert_fingerprint(c, ca_fps[k]);
		X509_free(c);
	}
	int nc = sk_X509_num(bag->certs);
	if ((io.items = calloc((size_t)nc + 1, sizeof(*io.items))) == NULL) {
		reply_error(rq, 500, "internal", "out of memory");
		goto out;
	}
	for (int i = 0; i < nc; i++) {
		X509 *x = sk_X509_value(bag->certs, i);
		const char *why = distrust ? NULL : trust_refusal(x, now);
		char *why_distrusted = NULL, *subject = smime_cert_subject(x), fp[65];
		unsigned char *der = NULL;
		int der_len;
		bool ours = false;

		/* The distrust list wins: a distrusted CA does not join the
		 * collection, nor does one it issued (the lists are read once:
		 * nothing is written before all are judged). */
		if (!distrust && why == NULL) {
			if (trust_distrusted(rq->svc, x, &why_distrusted, &err) != 0) {
				OPENSSL_free(subject);
				reply_smime(rq, &err);
				goto out;
			}
			why = why_distrusted;
		}
		smime_cert_fingerprint(x, fp);
		json_t *row = json_pack("{s:s,s:s}", "sha256", fp, "subject",
		    subject != NULL ? subject : "");
		for (size_t k = 0; k < n_cas && !ours && !distrust; k++)
			ours = strcmp(ca_fps[k], fp) == 0;
		if (ours) {
			json_object_set_new(row, "status", json_string("exists"));
			json_object_set_new(row, "message", json_string("a CA of this service"));
			existing++;
		} else if (why != NULL) {
			json_object_set_new(row, "status", json_string("refused"));
			json_object_set_new(row, "message", json_string(why));
			refused++;
		} else if ((der_len = i2d_X509(x, &der)) <= 0 || subject == NULL) {
			json_object_set_new(row, "status", json_string("refused"));
			json_object_set_new(row, "message", json_string("cannot be encoded"));
			refused++;
		} else {
			/* Its status comes with the transaction. */
			struct trust_item *it = &io.items[io.n++];
			memcpy(it->t.sha256, fp, sizeof(fp));
			it->t.subject = subject;
			it->t.der = der;
			it->t.der_len = (size_t)der_len;
			it->t.created = now;
			it->row = row;
			subject = NULL;
			der = NULL;
		}
		OPENSSL_free(der);
		OPENSSL_free(subject);
		free(why_distrusted);
		json_array_append_new(rows, row);
	}
	if (io.n > 0 && rq_commit(rq, trust_import_fn, &io, &err) != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	added = io.added;
	existing += io.existing;
	reply_json(rq, 200, json_pack("{s:I,s:I,s:I,s:O}", "added", (json_int_t)added,
	    "existing", (json_int_t)existing, "refused", (json_int_t)refused, "rows", rows));
out:
	for (size_t i = 0; i < io.n; i++) {
		OPENSSL_free(io.items[i].t.der);
		OPENSSL_free(io.items[i].t.subject);
	}
	free(io.items);
	free(ca_fps);
	store_cas_free(cas, n_cas);
	json_decref(rows);
	smime_bag_free(bag);
	free(data);
	json_decref(o);
}

void
h_trust_import(struct request *rq)
{
	trust_import(rq, false);
}

void
h_distrust_import(struct request *rq)
{
	trust_import(rq, true);
}

static void
trust_delete(struct request *rq, bool distrust)
{
	struct trust_op to = { .svc = rq->svc, .actor = rq->actor, .distrust = distrust };
	char fp[65];
	struct smime_error err;
	const char *in = rq->params[0];
	size_t n = strlen(in);

	if (n != 64) {
		reply_error(rq, 400, "bad-request", "a trusted certificate is named by its SHA-256 "
		    "fingerprint: 64 hexadecimal digits");
		return;
	}
	for (size_t i = 0; i < 64; i++) {
		if (!isxdigit((unsigned char)in[i])) {
			reply_error(rq, 400, "bad-request", "a SHA-256 fingerprint is hexadecimal");
			return;
		}
		fp[i] = (char)tolower((unsigned char)in[i]);
	}
	fp[64] = '\0';
	to.sha256 = fp;
	if (rq_commit(rq, trust_delete_fn, &to, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_empty(rq, 204);
}

void
h_trust_delete(struct request *rq)
{
	trust_delete(rq, false);
}

void
h_distrust_delete(struct request *rq)
{
	trust_delete(rq, true);
}

/*
 * smimed: key recovery: a user's archived keys exported as one PKCS#12.
 *
 *   POST /api/v1/users/{user}/recover            {reason, password, serial?}
 *   GET  /api/v1/recovery-requests               the requests, oldest first
 *   GET  /api/v1/recovery-requests/{id}
 *   POST /api/v1/recovery-requests/{id}/approve
 *   POST /api/v1/recovery-requests/{id}/export   {password}
 *
 * Every recovery names its reason, which the audit log keeps.  With
 * recovery_approval = 1 the recover call exports at once.  With 2 (as
 * Dogtag's KRA agents do) it makes a request instead (202): a second,
 * different token approves it, and the requester then exports it once;
 * all before the request expires (recovery_request_ttl).  A deleted user
 * is recovered like any other: the archive keeps the keys until a purge.
 * One key (serial, or the certificate's SHA-256 fingerprint) or the whole
 * history.  An export is audited in the transaction that allows it; an
 * export that cannot be audited is not made.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "api.h"
#include "archive.h"
#include "ca.h"
#include "recovery.h"

#define RECOVER_PAGE 1000        /* certificates read at once */
#define RECOVER_MAX_KEYS 10000    /* keys in one export, at most */
#define MIN_RECOVERY_PASSWORD 8
#define MAX_REASON 512

/*
 * Whether r asks for a signing key: an approver must see that what is
 * approved lets the requester sign as the user.  A certificate that cannot
 * be read is not called signing (the export audits what it finds).
 */
static bool
request_signing(struct service *svc, struct store_tx *tx, const struct store_recovery *r)
{
	struct store_cert c = { 0 };
	struct smime_error err;
	bool signing;

	if (r->cert[0] == '\0' || svc->be->cert_get(tx, r->cert, &c, &err) != 0)
		return false;
	signing = c.purpose == PURPOSE_SIGNING;
	store_cert_clear(&c);
	return signing;
}

static json_t *
recovery_json(const struct store_recovery *r, const struct store_user *u, bool signing)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o}", "id", r->id, "user",
	    r->user_id, "reason", r->reason, "requester", r->requester, "approver", r->approver,
	    "status", recovery_status_name(r->status), "created", time_json(r->created),
	    "expires", time_json(r->expires), "decided", time_json(r->decided));

	if (j != NULL)
		json_object_set_new(j, "certificate", r->cert[0] ? json_string(r->cert) : json_null());
	if (j != NULL)
		json_object_set_new(j, "signing", json_boolean(signing));
	if (j != NULL && u != NULL)
		json_object_set_new(j, "email", json_string(u->n_emails ? u->emails[0] : ""));
	if (j != NULL && r->status != RECOVERY_EXPORTED && r->expires <= service_now())
		json_object_set_new(j, "status", json_string("expired"));
	return j;
}

/* The keys to export: the user's whole history, or the one certificate. */
struct keyset {
	EVP_PKEY **keys;
	X509 **certs;
	size_t n;
	json_t *serials;
	bool signing;            /* a signing key is among them (asked for by serial) */
};

static void
keyset_clear(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++) {
		EVP_PKEY_free(ks->keys[i]);
		X509_free(ks->certs[i]);
	}
	free(ks->keys);
	free(ks->certs);
	json_decref(ks->serials);
	memset(ks, 0, sizeof(*ks));
}

/* Add the archived key of c, if there is one, to ks (room for it is made). */
static int
keyset_add(struct service *svc, struct store_tx *tx, const struct store_cert *c,
    struct keyset *ks, size_t *cap, struct smime_error *err)
{
	unsigned char *sealed = NULL;
	size_t len = 0;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int rc = svc->be->archive_get(tx, c->sha256, &sealed, &len, err);

	if (rc == SMIME_E_NOTFOUND)
		return 0;   /* issued from a CSR, or signing: the key never was here */
	if (rc == 0)
		rc = archive_unseal(svc->archive, sealed, len, c->sha256, &key, err);
	free(sealed);
	if (rc != 0)
		return rc;
	const unsigned char *p = c->der;
	if ((x = d2i_X509(NULL, &p, (long)c->der_len)) == NULL) {
		EVP_PKEY_free(key);
		return smime_error_set(err, SMIME_E_INTERNAL, "a recorded certificate does not parse");
	}
	if (ks->n == RECOVER_MAX_KEYS) {
		rc = smime_error_set(err, SMIME_E_POLICY, "more than %d archived keys: recover them "
		    "one by one (serial)", RECOVER_MAX_KEYS);
		goto fail;
	}
	if (ks->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		EVP_PKEY **nk = realloc(ks->keys, (ncap + 1) * sizeof(*nk));
		if (nk != NULL)
			ks->keys = nk;
		X509 **nc = nk != NULL ? realloc(ks->certs, (ncap + 1) * sizeof(*nc)) : NULL;
		if (nc == NULL) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto fail;
		}
		ks->certs = nc;
		*cap = ncap;
	}
	if (json_array_append_new(ks->serials, json_string(c->serial)) != 0) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto fail;
	}
	if (c->purpose == PURPOSE_SIGNING)
		ks->signing = true;
	ks->keys[ks->n] = key;
	ks->certs[ks->n] = x;
	ks->n++;
	ks->keys[ks->n] = NULL;
	ks->certs[ks->n] = NULL;
	return 0;
fail:
	EVP_PKEY_free(key);
	X509_free(x);
	return rc;
}

/*
 * Read and unseal the archived keys of user_id (only the certificate cert
 * when it is not ""), with their certificates; with until > 0, only those
 * of certificates recorded by then.  Every page of the user's certificates
 * is read: the newest keys come last.  NOTFOUND when there is none.
 *
 * The whole history is for reading old mail: encryption and dual-use keys
 * alone.  A signing key (an imported signing certificate's) would let the
 * recovery officer sign as the user: it comes out when its certificate is
 * named, and ks->signing says so for the audit.
 */
static int
keyset_read(struct service *svc, struct store_tx *tx, const struct store_user *u,
    const char *cert, int64_t until, struct keyset *ks, struct smime_error *err)
{
	struct store_cert_filter f = { .user_id = u->id };
	struct store_cert *certs = NULL;
	size_t n = 0, cap = 0;
	char *next = NULL;
	int rc = 0;

	memset(ks, 0, sizeof(*ks));
	if ((ks->serials = json_array()) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if (cert[0] != '\0') {
		struct store_cert one = { 0 };
		rc = svc->be->cert_get(tx, cert, &one, err);
		if (rc == 0 && strcmp(one.user_id, u->id) != 0)
			rc = smime_error_set(err, SMIME_E_NOTFOUND, "user %s has no certificate %s",
			    u->n_emails ? u->emails[0] : u->id, cert);
		if (rc == 0)
			rc = keyset_add(svc, tx, &one, ks, &cap, err);
		store_cert_clear(&one);
		goto out;
	}
	do {
		struct store_page page = { .after = next, .limit = RECOVER_PAGE };
		char *after = next;
		next = NULL;
		rc = svc->be->cert_list(tx, &page, &f, &certs, &n, &next, err);
		free(after);
		/* A request exports what its approver saw asked for: no key
		 * recorded after it was made. */
		for (size_t i = 0; rc == 0 && i < n; i++)
			if ((until == 0 || certs[i].created <= until) &&
			    certs[i].purpose != PURPOSE_SIGNING)
				rc = keyset_add(svc, tx, &certs[i], ks, &cap, err);
		store_certs_free(certs, n);
		certs = NULL;
		n = 0;
	} while (rc == 0 && next != NULL);
out:
	free(next);
	if (rc == 0 && ks->n == 0)
		rc = smime_error_set(err, SMIME_E_NOTFOUND, "no archived key for %s%s%s%s",
		    u->n_emails ? u->emails[0] : u->id, cert[0] ? " and certificate " : "", cert,
		    cert[0] ? "" : " (an encryption or dual-use one: a signing key is recovered "
		    "by its certificate's serial alone)");
	if (rc != 0)
		keyset_clear(ks);
	return rc;
}

/* The export's audit row, and for a request its move to EXPORTED, in one transaction. */
struct export_op {
	struct service *svc;
	const char *actor;
	const char *user_id;
	const char *reason;
	const char *request;     /* NULL: a direct recovery */
	json_t *serials;
	bool signing;            /* a signing key is exported: audited apart */
};

static int
export_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct export_op *eo = arg;
	struct store_recovery r = { 0 };
	const char *why;
	int status, rc;
	int64_t now = service_now();

	if (eo->request != NULL) {
		if ((rc = eo->svc->be->recovery_get(tx, eo->request, &r, err)) != 0)
			return rc;
		why = recovery_refusal(&r, eo->actor, RECOVERY_EXPORTED, now, &status);
		store_recovery_clear(&r);
		if (why != NULL)
			return smime_error_set(err, SMIME_E_EXISTS, "recovery request %s: %s",
			    eo->request, why);
		if ((rc = eo->svc->be->recovery_decide(tx, eo->request, RECOVERY_APPROVED,
		    RECOVERY_EXPORTED, eo->actor, now, err)) != 0)
			return rc;
	}
	json_t *d = json_pack("{s:O,s:s}", "serials", eo->serials, "reason", eo->reason);
	if (d != NULL && eo->request != NULL)
		json_object_set_new(d, "request", json_string(eo->request));
	/* Who may sign as the user is a question of its own for an audit. */
	return audit_row(eo->svc, tx, eo->actor, eo->signing ? "archive.recover-signing" :
	    "archive.recover", eo->user_id, d, err);
}

/* Answer the PKCS#12 of ks under password, after eo's transaction. */
static void
export_reply(struct request *rq, const struct store_user *u, struct keyset *ks,
    struct export_op *eo, const char *password)
{
	struct smime_error err;
	char *b64 = NULL;

	/* Audited first: no export leaves without its row. */
	if (rq_commit(rq, export_fn, eo, &err) != 0) {
		reply_smime(rq, &err);
		return;
	}
	if ((b64 = api_pkcs12_b64(ks->keys, ks->certs, ks->n, NULL, password, u->n_emails ?
	    u->emails[0] : u->id, &err)) == NULL) {
		reply_smime(rq, &err);
		return;
	}
	log_event("info", eo->signing ? "archive.recover-signing" : "archive.recover", "user", u->id, "actor", rq->actor, "request",
	    eo->request != NULL ? eo->request : "", NULL);
	reply_json(rq, 200, json_pack("{s:s,s:I,s:O}", "pkcs12", b64, "keys", (json_int_t)ks->n,
	    "serials", ks->serials));
	OPENSSL_cleanse(b64, strlen(b64));
	free(b64);
}

static bool
password_ok(struct request *rq, const char *password)
{
	if (password == NULL || strlen(password) < MIN_RECOVERY_PASSWORD) {
		reply_error(rq, 400, "bad-request", "password: at least %d characters",
		    MIN_RECOVERY_PASSWORD);
		return false;
	}
	return true;
}

struct request_op {
	struct service *svc;
	const char *actor;
	struct store_recovery r;
	bool signing;            /* the one key asked for is a signing key */
};

static int
request_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct request_op *ro = arg;
	int rc;

	if ((rc = ro->svc->be->recovery_insert(tx, &ro->r, err)) != 0)
		return rc;
	json_t *d = json_pack("{s:s,s:s}", "user", ro->r.user_id, "reason", ro->r.reason);
	if (d != NULL && ro->r.cert[0] != '\0')
		json_object_set_new(d, "certificate", json_string(ro->r.cert));
	if (d != NULL && ro->signing)
		json_object_set_new(d, "signing", json_true());
	return audit_row(ro->svc, tx, ro->actor, "recovery.request", ro->r.id, d, err);
}

/*
 * POST /api/v1/users/{user}/recover: the user's archived keys (all, or the
 * one certificate named by serial) as one PKCS#12 under password; with
 * recovery_approval = 2, a recovery request (202) instead.
 */
void
h_user_recover(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "password", JSON_STRING, false },
		{ "reason", JSON_STRING, false },
		{ "serial", JSON_STRING, false },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct store_user u = { 0 };
	struct keyset ks = { 0 };
	struct smime_error err;
	struct store_tx *tx = NULL;
	char cert[STORE_SERIAL_SIZE] = "";
	bool two = rq->svc->cfg.recovery_approval >= 2;
	int rc;

	if (o == NULL)
		return;
	const char *password = json_string_value(json_object_get(o, "password"));
	const char *reason = json_string_value(json_object_get(o, "reason"));
	const char *serial = json_string_value(json_object_get(o, "serial"));
	if (reason == NULL || reason[0] == '\0' || !api_text(reason, MAX_REASON)) {
		reply_error(rq, 400, "bad-request", "reason: why the keys are recovered (1 to %d "
		    "characters, no control characters), for the audit log", MAX_REASON);
		goto out;
	}
	if (!two && !password_ok(rq, password))
		goto out;
	if (serial != NULL && api_cert_name(serial, cert, &err) != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	if ((tx = rq_read(rq)) == NULL)
		goto out;
	/* Deleted users too: the archive keeps a leaver's keys. */
	rc = rq->svc->be->user_find(tx, rq->params[0], &u, &err);
	if (rc == 0)
		rc = keyset_read(rq->svc, tx, &u, cert, 0, &ks, &err);
	rq->svc->be->rollback(tx);
	tx = NULL;
	if (rc != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	if (two) {
		struct request_op ro = { .svc = rq->svc, .actor = rq->actor, .signing = ks.signing };
		struct store_recovery *r = &ro.r;
		service_new_id(r->id);
		memcpy(r->user_id, u.id, sizeof(r->user_id));
		/* The certificate's fingerprint: a serial may name several. */
		if (cert[0] != '\0') {
			unsigned char md[32];
			unsigned int mdlen = 0;
			if (X509_digest(ks.certs[0], EVP_sha256(), md, &mdlen) != 1 || mdlen != 32) {
				reply_error(rq, 500, "internal", "no fingerprint");
				goto out;
			}
			for (unsigned int i = 0; i < 32; i++)
				snprintf(r->cert + 2 * i, 3, "%02x", md[i]);
		}
		r->reason = (char *)reason;
		r->requester = rq->actor;
		r->approver = (char *)"";
		r->status = RECOVERY_PENDING;
		r->created = service_now();
		r->expires = r->created + rq->svc->cfg.recovery_request_ttl;
		if (rq_commit(rq, request_fn, &ro, &err) != 0) {
			reply_smime(rq, &err);
			goto out;
		}
		log_event("info", "recovery.request", "id", r->id, "user", u.id, "actor", rq->actor,
		    NULL);
		reply_json(rq, 202, json_pack("{s:o,s:s}", "request", recovery_json(r, &u, ks.signing),
		    "message", "recovery_approval = 2: a second, different token approves this "
		    "request, then the requester exports it"));
		goto out;
	}
	struct export_op eo = { rq->svc, rq->actor, u.id, reason, NULL, ks.serials, ks.signing };
	export_reply(rq, &u, &ks, &eo, password);
out:
	if (tx != NULL)
		rq->svc->be->rollback(tx);
	keyset_clear(&ks);
	store_user_clear(&u);
	json_decref(o);
}

void
h_recovery_list(struct request *rq)
{
	struct store_page page;
	struct store_recovery *v = NULL;
	size_t n = 0;
	char *next = NULL;
	struct smime_error err;
	struct store_tx *tx;

	if (!rq_page(rq, &page) || (tx = rq_read(rq)) == NULL)
		return;
	int rc = rq->svc->be->recovery_list(tx, &page, &v, &n, &next, &err);
	json_t *items = rc == 0 ? json_array() : NULL;
	for (size_t i = 0; rc == 0 && i < n; i++)
		json_array_append_new(items, recovery_json(&v[i], NULL, request_signing(rq->svc,
		    tx, &v[i])));
	rq->svc->be->rollback(tx);
	if (rc != 0)
		reply_smime(rq, &err);
	else
		reply_json(rq, 200, list_json(items, next));
	store_recoveries_free(v, n);
	free(next);
}

void
h_recovery_get(struct request *rq)
{
	struct store_recovery r = { 0 };
	struct store_user u = { 0 };
	struct smime_error err;
	struct store_tx *tx = rq_read(rq);

	if (tx == NULL)
		return;
	int rc = rq->svc->be->recovery_get(tx, rq->params[0], &r, &err);
	if (rc == 0 && rq->svc->be->user_find(tx, r.user_id, &u, &err) != 0)
		memset(&u, 0, sizeof(u));    /* purged since: the request stays */
	bool signing = rc == 0 && request_signing(rq->svc, tx, &r);
	rq->svc->be->rollback(tx);
	if (rc != 0)
		reply_smime(rq, &err);
	else
		reply_json(rq, 200, recovery_json(&r, &u, signing));
	store_recovery_clear(&r);
	store_user_clear(&u);
}

struct approve_op {
	struct service *svc;
	const char *actor;
	const char *id;
	int status;              /* the refusal's HTTP status */
	struct store_recovery r;
	bool signing;            /* it asks for a signing key */
};

struct token_reader {
	const struct store_backend *be;
	struct store_tx *tx;
};

static int
token_read(void *arg, const char *id, struct store_token *t_r, struct smime_error *err)
{
	struct token_reader *tr = arg;

	return tr->be->token_get(tr->tx, id, t_r, err);
}

static int
approve_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct approve_op *ao = arg;
	struct token_reader tr = { ao->svc->be, tx };
	int64_t now = service_now();
	const char *why;
	int rc;

	store_recovery_clear(&ao->r);
	if ((rc = ao->svc->be->recovery_get(tx, ao->id, &ao->r, err)) != 0)
		return rc;
	if ((why = recovery_refusal(&ao->r, ao->actor, RECOVERY_APPROVED, now, &ao->status)) != NULL)
		return smime_error_set(err, SMIME_E_EXISTS, "recovery request %s: %s", ao->id, why);
	/* A second person as far as tokens tell: not a token either made. */
	if ((rc = recovery_lineage_refusal(&ao->r, ao->actor, token_read, &tr, &why, err)) != 0)
		return rc;
	if (why != NULL) {
		ao->status = 403;
		return smime_error_set(err, SMIME_E_EXISTS, "recovery request %s: %s", ao->id, why);
	}
	/* ao->id may be a prefix: the request is named by its whole id from here. */
	if ((rc = ao->svc->be->recovery_decide(tx, ao->r.id, RECOVERY_PENDING, RECOVERY_APPROVED,
	    ao->actor, now, err)) != 0)
		return rc;
	ao->r.status = RECOVERY_APPROVED;
	ao->r.decided = now;
	ao->signing = request_signing(ao->svc, tx, &ao->r);
	free(ao->r.approver);
	ao->r.approver = strdup(ao->actor);
	return audit_row(ao->svc, tx, ao->actor, "recovery.approve", ao->r.id,
	    json_pack("{s:s,s:s,s:s,s:b}", "user", ao->r.user_id, "requester", ao->r.requester,
	    "reason", ao->r.reason, "signing", ao->signing), err);
}

void
h_recovery_approve(struct request *rq)
{
	struct approve_op ao = { .svc = rq->svc, .actor = rq->actor, .id = rq->params[0] };
	struct smime_error err;

	if (rq_commit(rq, approve_fn, &ao, &err) != 0) {
		if (ao.status != 0 && err.code == SMIME_E_EXISTS)
			reply_error(rq, ao.status, ao.status == 403 ? "forbidden" : "conflict", "%s",
			    err.message);
		else
			reply_smime(rq, &err);
	} else {
		log_event("info", "recovery.approve", "id", ao.r.id, "actor", rq->actor, NULL);
		reply_json(rq, 200, recovery_json(&ao.r, NULL, ao.signing));
	}
	store_recovery_clear(&ao.r);
}

/* POST /api/v1/recovery-requests/{id}/export: the approved request's keys, once. */
void
h_recovery_export(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "password", JSON_STRING, true },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct store_recovery r = { 0 };
	struct store_user u = { 0 };
	struct keyset ks = { 0 };
	struct smime_error err;
	struct store_tx *tx = NULL;
	const char *why;
	int status, rc;

	if (o == NULL)
		return;
	const char *password = json_string_value(json_object_get(o, "password"));
	if (!password_ok(rq, password) || (tx = rq_read(rq)) == NULL)
		goto out;
	rc = rq->svc->be->recovery_get(tx, rq->params[0], &r, &err);
	if (rc == 0 && (why = recovery_refusal(&r, rq->actor, RECOVERY_EXPORTED, service_now(),
	    &status)) != NULL) {
		rq->svc->be->rollback(tx);
		tx = NULL;
		reply_error(rq, status, status == 403 ? "forbidden" : "conflict",
		    "recovery request %s: %s", r.id, why);
		goto out;
	}
	if (rc == 0)
		rc = rq->svc->be->user_find(tx, r.user_id, &u, &err);
	if (rc == 0)
		rc = keyset_read(rq->svc, tx, &u, r.cert, r.created, &ks, &err);
	rq->svc->be->rollback(tx);
	tx = NULL;
	if (rc != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	/* The transaction checks the request again: one export, by its requester. */
	struct export_op eo = { rq->svc, rq->actor, u.id, r.reason, r.id, ks.serials, ks.signing };
	export_reply(rq, &u, &ks, &eo, password);
out:
	if (tx != NULL)
		rq->svc->be->rollback(tx);
	keyset_clear(&ks);
	store_recovery_clear(&r);
	store_user_clear(&u);
	json_decref(o);
}

/*
 * smimed API: SCEP profiles, device challenges, and the requests that
 * wait for an admin (scep.h for the endpoint itself).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"
#include "ca.h"
#include "scep.h"

#define SCEP_MAX_CHALLENGE_MINUTES 10080   /* a week */
#define SCEP_MAX_REASON 200                /* characters of a rejection's reason */

/* ---- SCEP profiles ------------------------------------------------------ */

static json_t *
curves_json(const char *list)
{
	json_t *a = json_array();
	const char *p = list != NULL ? list : "";

	while (*p != '\0') {
		const char *end = strchr(p, ',');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		if (n > 0)
			json_array_append_new(a, json_stringn(p, n));
		p += n + (end != NULL ? 1 : 0);
	}
	return a;
}

static json_t *
scep_profile_json(const struct store_scep_profile *p)
{
	return json_pack("{s:s,s:s,s:i,s:o,s:s,s:s,s:b,s:i,s:i,s:b,s:i,s:b,s:o,s:o}",
	    "name", p->name, "ca", p->ca_id, "rsa_min_bits", p->rsa_min_bits,
	    "ec_curves", curves_json(p->ec_curves), "subject", p->subject ? p->subject : "",
	    "san_email", p->san_all ? "all" : "primary", "non_repudiation", p->non_repudiation,
	    "validity_days", p->validity_days, "renewal_days", p->renewal_days,
	    "approval", p->approval, "challenge_minutes", p->challenge_minutes,
	    "allow_sha1", p->allow_sha1, "created", time_json(p->created),
	    "updated", time_json(p->updated));
}

void
h_scep_profiles_list(struct request *rq)
{
	ANSWER_ALL(rq, struct store_scep_profile, scep_profile_list, scep_profile_json,
	    store_scep_profiles_free);
}

void
h_scep_profile_get(struct request *rq)
{
	ANSWER_RECORD(rq, struct store_scep_profile, scep_profile_get, rq->params[0],
	    scep_profile_json, store_scep_profile_clear);
}

struct sprof_op {
	struct service *svc;
	const char *actor;
	struct store_scep_profile p;
	struct store_scep_ra ra;     /* made for the CA, to be stored; cert_der NULL: none */
	int op;                      /* 0 create, 1 replace, 2 delete */
};

static int
sprof_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct sprof_op *so = arg;
	const struct store_backend *be = so->svc->be;
	struct store_scep_profile old = { 0 };
	struct store_ca ca = { 0 };
	int rc;

	rc = be->scep_profile_get(tx, so->p.name, &old, err);
	if (so->op == 0 && rc == 0) {
		rc = smime_error_set(err, SMIME_E_EXISTS, "a SCEP profile named '%s' exists",
		    so->p.name);
		goto out;
	}
	if (so->op != 0 && rc != 0)
		goto out;
	if (so->op == 2) {
		if ((rc = be->scep_profile_delete(tx, so->p.name, err)) == 0)
			rc = audit_row(so->svc, tx, so->actor, "scep.profile.delete", so->p.name,
			    NULL, err);
		goto out;
	}
	if ((rc = be->ca_get(tx, so->p.ca_id, &ca, err)) != 0)
		goto out;
	if (!ca.issuing || ca.key_wrapped == NULL) {
		rc = smime_error_set(err, SMIME_E_POLICY, "CA '%s' does not issue certificates",
		    ca.id);
		goto out;
	}
	so->p.created = so->op == 0 ? service_now() : old.created;
	so->p.updated = service_now();
	if ((rc = be->scep_profile_put(tx, &so->p, err)) != 0 ||
	    (rc = audit_row(so->svc, tx, so->actor, so->op == 0 ? "scep.profile.create" :
	    "scep.profile.update", so->p.name, scep_profile_json(&so->p), err)) != 0)
		goto out;
	if (so->ra.cert_der != NULL) {
		rc = be->scep_ra_put(tx, &so->ra, err);
		if (rc == 0)
			rc = audit_row(so->svc, tx, so->actor, "scep.ra.create", so->ra.ca_id,
			    json_pack("{s:s}", "key", so->svc->cfg.scep_ra_key_alg), err);
	}
out:
	store_scep_profile_clear(&old);
	store_ca_clear(&ca);
	return rc;
}

/* "P-256,P-384" from a JSON array of curve names, or NULL with *why_r. */
static char *
curves_text(const json_t *a, const char **why_r)
{
	static const char *const known[] = { "P-256", "P-384", "P-521" };
	char buf[32] = "";
	size_t i, k;
	json_t *v;

	if (a == NULL)
		return strdup("P-256");
	json_array_foreach(a, i, v) {
		const char *c = json_string_value(v);

		for (k = 0; k < 3 && (c == NULL || strcmp(c, known[k]) != 0); k++)
			;
		if (k == 3 || strstr(buf, known[k]) != NULL) {
			*why_r = "ec_curves: P-256, P-384 and P-521, each once";
			return NULL;
		}
		if (buf[0] != '\0')
			strcat(buf, ",");
		strcat(buf, known[k]);
	}
	return strdup(buf);
}

static void
sprof_write(struct request *rq, int op)
{
	static const struct jfield fields[] = {
		{ "name", JSON_STRING, true },
		{ "ca", JSON_STRING, true },
		{ "rsa_min_bits", JSON_INTEGER, false },
		{ "ec_curves", JSON_ARRAY, false },
		{ "subject", JSON_STRING, false },
		{ "san_email", JSON_STRING, false },
		{ "non_repudiation", JSON_TRUE, false },
		{ "validity_days", JSON_INTEGER, false },
		{ "renewal_days", JSON_INTEGER, false },
		{ "approval", JSON_TRUE, false },
		{ "challenge_minutes", JSON_INTEGER, false },
		{ "allow_sha1", JSON_TRUE, false },
		{ "created", JSON_STRING, false },   /* as GET answers them; ignored */
		{ "updated", JSON_STRING, false },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct sprof_op so = { .svc = rq->svc, .actor = rq->actor, .op = op };
	struct store_ca ca = { 0 };
	struct store_scep_ra ra = { 0 };
	struct smime_error err;
	struct store_tx *tx;
	const char *why = NULL;
	bool have_ra;
	int rc;

	if (o == NULL)
		return;
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *ca_id = json_string_value(json_object_get(o, "ca"));
	const char *subject = json_string_value(json_object_get(o, "subject"));
	const char *san = json_string_value(json_object_get(o, "san_email"));
	json_t *j;
	json_int_t rsa = (j = json_object_get(o, "rsa_min_bits")) != NULL ?
	    json_integer_value(j) : 2048;
	json_int_t days = (j = json_object_get(o, "validity_days")) != NULL ?
	    json_integer_value(j) : 365;
	json_int_t renew = (j = json_object_get(o, "renewal_days")) != NULL ?
	    json_integer_value(j) : 30;
	json_int_t minutes = (j = json_object_get(o, "challenge_minutes")) != NULL ?
	    json_integer_value(j) : 60;

	if (!api_slug(name)) {
		reply_error(rq, 400, "bad-request", "name: 1 to 64 of a-z, 0-9 and '-'");
		goto out;
	}
	if (op == 1 && strcmp(name, rq->params[0]) != 0) {
		reply_error(rq, 400, "bad-request", "name: '%s' in the body but '%s' in the path",
		    name, rq->params[0]);
		goto out;
	}
	if (!api_slug(ca_id)) {
		reply_error(rq, 400, "bad-request", "ca: not a CA id");
		goto out;
	}
	/* S/MIME BR 6.1.5: RSA of 2048 bits or more. */
	if (rsa != 0 && (rsa < 2048 || rsa > 8192)) {
		reply_error(rq, 400, "bad-request", "rsa_min_bits: 0 (no RSA) or 2048 to 8192 "
		    "(S/MIME BR 6.1.5)");
		goto out;
	}
	if ((so.p.ec_curves = curves_text(json_object_get(o, "ec_curves"), &why)) == NULL) {
		reply_error(rq, 400, "bad-request", "%s", why != NULL ? why : "out of memory");
		goto out;
	}
	if (rsa == 0 && so.p.ec_curves[0] == '\0') {
		reply_error(rq, 400, "bad-request", "rsa_min_bits 0 and no ec_curves: no key would "
		    "be taken");
		goto out;
	}
	if (scep_subject_check(subject != NULL ? subject : "CN={email}", &err) != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	if (san != NULL && strcmp(san, "all") != 0 && strcmp(san, "primary") != 0) {
		reply_error(rq, 400, "bad-request", "san_email: all or primary");
		goto out;
	}
	if (days < 1 || days > CA_MAX_VALIDITY_DAYS) {
		reply_error(rq, 400, "bad-request", "validity_days: 1 to %d (S/MIME BR 6.3.2)",
		    CA_MAX_VALIDITY_DAYS);
		goto out;
	}
	if (renew < 0 || renew > days) {
		reply_error(rq, 400, "bad-request", "renewal_days: 0 to validity_days");
		goto out;
	}
	if (minutes < 1 || minutes > SCEP_MAX_CHALLENGE_MINUTES) {
		reply_error(rq, 400, "bad-request", "challenge_minutes: 1 to %d",
		    SCEP_MAX_CHALLENGE_MINUTES);
		goto out;
	}
	snprintf(so.p.name, sizeof(so.p.name), "%s", name);
	snprintf(so.p.ca_id, sizeof(so.p.ca_id), "%s", ca_id);
	so.p.rsa_min_bits = (int)rsa;
	so.p.subject = strdup(subject != NULL ? subject : "CN={email}");
	so.p.san_all = san == NULL || strcmp(san, "all") == 0;
	so.p.non_repudiation = json_is_true(json_object_get(o, "non_repudiation"));
	so.p.validity_days = (int)days;
	so.p.renewal_days = (int)renew;
	so.p.approval = json_is_true(json_object_get(o, "approval"));
	so.p.challenge_minutes = (int)minutes;
	so.p.allow_sha1 = json_is_true(json_object_get(o, "allow_sha1"));
	if (so.p.subject == NULL) {
		reply_error(rq, 500, "internal", "out of memory");
		goto out;
	}

	/* An EC CA needs an RSA RA for the envelopes: made now, outside the
	 * transaction (an RSA key takes a while), kept with the profile. */
	if ((tx = rq_read(rq)) == NULL)
		goto out;
	rc = rq->svc->be->ca_get(tx, ca_id, &ca, &err);
	have_ra = rc == 0 && rq->svc->be->scep_ra_get(tx, ca_id, &ra, &err) == 0;
	rq->svc->be->rollback(tx);
	if (rc != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	if (ca.issuing && ca.key_wrapped != NULL &&
	    (rc = scep_ra_prepare(rq->svc, &ca, have_ra, &so.ra, &err)) != 0 &&
	    rc != SMIME_E_EXISTS) {
		reply_smime(rq, &err);
		goto out;
	}
	if (rq_commit(rq, sprof_fn, &so, &err) != 0) {
		if (so.ra.cert_der != NULL)
			scep_ra_discard(rq->svc, ca_id);
		reply_smime(rq, &err);
	} else
		reply_json(rq, op == 0 ? 201 : 200, scep_profile_json(&so.p));
out:
	store_scep_profile_clear(&so.p);
	store_scep_ra_clear(&so.ra);
	store_scep_ra_clear(&ra);
	store_ca_clear(&ca);
	json_decref(o);
}

void
h_scep_profiles_create(struct request *rq)
{
	sprof_write(rq, 0);
}

void
h_scep_profile_put(struct request *rq)
{
	sprof_write(rq, 1);
}

void
h_scep_profile_delete(struct request *rq)
{
	struct sprof_op so = { .svc = rq->svc, .actor = rq->actor, .op = 2 };
	struct smime_error err;

	snprintf(so.p.name, sizeof(so.p.name), "%s", rq->params[0]);
	if (rq_commit(rq, sprof_fn, &so, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_empty(rq, 204);
	store_scep_profile_clear(&so.p);
}

/* ---- challenges --------------------------------------------------------- */

struct challenge_op {
	struct service *svc;
	const char *actor;
	struct store_scep_challenge c;
};

static int
challenge_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct challenge_op *co = arg;
	int rc;

	if ((rc = co->svc->be->challenge_insert(tx, &co->c, err)) != 0)
		return rc;
	/* The secret is not in the audit: only the challenge's id. */
	return audit_row(co->svc, tx, co->actor, "scep.challenge", co->c.device_id,
	    json_pack("{s:s,s:s,s:s,s:s,s:o}", "challenge", co->c.id, "user", co->c.user_id,
	    "device", co->c.device_id, "profile", co->c.profile, "expires",
	    time_json(co->c.expires)), err);
}

void
h_device_scep_challenge(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "profile", JSON_STRING, true },
		{ "seconds", JSON_INTEGER, false },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct challenge_op co = { .svc = rq->svc, .actor = rq->actor };
	struct store_device d = { 0 };
	struct store_scep_profile p = { 0 };
	struct smime_error err;
	struct store_tx *tx;
	json_t *names = NULL;
	char text[SCEP_CHALLENGE_SIZE];
	json_t *js;
	int rc;

	if (o == NULL)
		return;
	const char *profile = json_string_value(json_object_get(o, "profile"));
	json_int_t seconds = (js = json_object_get(o, "seconds")) != NULL ?
	    json_integer_value(js) : 0;

	if (js != NULL && (seconds < 1 || seconds > SCEP_MAX_CHALLENGE_MINUTES * 60)) {
		reply_error(rq, 400, "bad-request", "seconds: 1 to %d",
		    SCEP_MAX_CHALLENGE_MINUTES * 60);
		goto out;
	}
	if ((tx = rq_read(rq)) == NULL)
		goto out;
	rc = rq->svc->be->device_get(tx, rq->params[0], &d, &err);
	if (rc == 0)
		rc = rq->svc->be->scep_profile_get(tx, profile, &p, &err);
	if (rc == 0 && (names = json_pack("{s:s,s:s}", "device", d.id, "user", d.user_id)) != NULL)
		api_names(rq->svc, tx, names);
	rq->svc->be->rollback(tx);
	if (rc != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	int64_t now = service_now();
	if ((rc = scep_challenge_make(d.user_id, d.id, p.name, p.challenge_minutes, now, &co.c,
	    text, &err)) != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	if (js != NULL)
		co.c.expires = now + seconds;
	if (rq_commit(rq, challenge_fn, &co, &err) != 0)
		reply_smime(rq, &err);
	else {
		json_t *j = json_pack("{s:s,s:s,s:o,s:s,s:s,s:s}", "challenge", text,
		    "id", co.c.id, "expires", time_json(co.c.expires), "profile", p.name,
		    "device", d.id, "user", d.user_id);
		if (j != NULL && names != NULL)
			json_object_update_missing(j, names);
		reply_json(rq, 201, j);
	}
out:
	json_decref(names);
	OPENSSL_cleanse(text, sizeof(text));
	store_scep_challenge_clear(&co.c);
	store_device_clear(&d);
	store_scep_profile_clear(&p);
	json_decref(o);
}

/* ---- requests waiting for approval -------------------------------------- */

static const char *
tx_status_name(int s)
{
	return s == SCEP_TX_PENDING ? "pending" : s == SCEP_TX_ISSUED ? "issued" :
	    s == SCEP_TX_REJECTED ? "rejected" : "unknown";
}

static json_t *
scep_tx_json(const struct store_scep_tx *t)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:s?,s:s?,s:s?,s:o,s:o}",
	    "transaction", t->id, "status", tx_status_name(t->status), "ca", t->ca_id,
	    "profile", t->profile, "user", t->user_id, "device", t->device_id,
	    "renewal", t->renewal, "renews", t->renews[0] ? t->renews : NULL,
	    "certificate", t->cert[0] ? t->cert : NULL,
	    "error", t->error != NULL && t->error[0] ? t->error : NULL,
	    "created", time_json(t->created), "updated", time_json(t->updated));
}

void
h_scep_requests_list(struct request *rq)
{
	const char *status = rq_query(rq, "status");
	struct store_scep_tx *v = NULL;
	struct store_page page;
	struct smime_error err;
	struct store_tx *tx;
	char *next = NULL;
	size_t n = 0;
	int want, rc;

	if (status == NULL || strcmp(status, "pending") == 0)
		want = SCEP_TX_PENDING;
	else if (strcmp(status, "issued") == 0)
		want = SCEP_TX_ISSUED;
	else if (strcmp(status, "rejected") == 0)
		want = SCEP_TX_REJECTED;
	else if (strcmp(status, "all") == 0)
		want = 0;
	else {
		reply_error(rq, 400, "bad-request", "status: pending, issued, rejected or all");
		return;
	}
	if (!rq_page(rq, &page) || (tx = rq_read(rq)) == NULL)
		return;
	rc = rq->svc->be->scep_tx_list(tx, &page, want, &v, &n, &next, &err);
	json_t *items = rc == 0 ? json_array() : NULL;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		json_t *j = scep_tx_json(&v[i]);
		api_names(rq->svc, tx, j);
		json_array_append_new(items, j);
	}
	rq->svc->be->rollback(tx);
	if (rc != 0)
		reply_smime(rq, &err);
	else
		reply_json(rq, 200, list_json(items, next));
	store_scep_txs_free(v, n);
	free(next);
}

void
h_scep_request_get(struct request *rq)
{
	ANSWER_RECORD_NAMED(rq, struct store_scep_tx, scep_tx_get, rq->params[0], scep_tx_json,
	    store_scep_tx_clear);
}

struct decide_op {
	struct service *svc;
	const char *actor;
	const char *id;
	bool approve;
	const char *reason;
	struct store_cert rec;
	size_t superseded;
};

static int
decide_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct decide_op *d = arg;
	const struct store_backend *be = d->svc->be;
	int rc;

	if ((rc = be->scep_tx_decide(tx, d->id, d->approve ? SCEP_TX_ISSUED : SCEP_TX_REJECTED,
	    d->approve ? d->rec.sha256 : "", d->approve ? "" : d->reason, service_now(),
	    err)) != 0)
		return rc;
	if (!d->approve)
		return audit_row(d->svc, tx, d->actor, "scep.reject", d->id,
		    json_pack("{s:s,s:s}", "transaction", d->id, "reason", d->reason), err);
	if ((rc = be->cert_insert(tx, &d->rec, err)) != 0 ||
	    (rc = be->cert_supersede(tx, d->rec.user_id, d->rec.device_id, d->rec.purpose,
	    d->rec.serial, &d->superseded, err)) != 0)
		return rc;
	return audit_row(d->svc, tx, d->actor, "scep.approve", d->rec.serial,
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "transaction", d->id, "serial", d->rec.serial,
	    "user", d->rec.user_id, "device", d->rec.device_id, "profile", d->rec.profile,
	    "superseded", (json_int_t)d->superseded), err);
}

static void
decide(struct request *rq, bool approve)
{
	static const struct jfield fields[] = {
		{ "reason", JSON_STRING, false },
		{ NULL, 0, false },
	};
	json_t *o = NULL;
	struct decide_op d = { .svc = rq->svc, .actor = rq->actor, .id = rq->params[0],
		.approve = approve, .reason = "rejected by an admin" };
	struct store_scep_tx t = { 0 };
	struct store_scep_profile p = { 0 };
	struct store_user u = { 0 };
	struct store_device dev = { 0 };
	struct store_ca ca = { 0 };
	struct smime_error err;
	struct store_tx *tx;
	int rc;

	if (rq->body_len > 0) {
		if ((o = rq_body_object(rq, fields)) == NULL)
			return;
		const char *r = json_string_value(json_object_get(o, "reason"));

		if (r != NULL && approve) {
			reply_error(rq, 400, "bad-request", "reason: only a rejection has one");
			goto out;
		}
		if (r != NULL) {
			if (!api_text(r, SCEP_MAX_REASON) || *r == '\0') {
				reply_error(rq, 400, "bad-request", "reason: 1 to %d characters of "
				    "text", SCEP_MAX_REASON);
				goto out;
			}
			d.reason = r;
		}
	}
	if ((tx = rq_read(rq)) == NULL)
		goto out;
	rc = rq->svc->be->scep_tx_get(tx, rq->params[0], &t, &err);
	if (rc == 0)
		d.id = t.id;    /* the whole id, when a prefix named it */
	if (rc == 0 && t.status != SCEP_TX_PENDING)
		rc = smime_error_set(&err, SMIME_E_EXISTS, "SCEP request %s is %s, not pending",
		    t.id, tx_status_name(t.status));
	if (rc == 0 && approve) {
		rc = scep_parties_get(rq->svc->be, tx, t.profile, t.user_id, t.device_id, &p, &u,
		    &dev, &err);
		if (rc == 0)
			rc = rq->svc->be->ca_get(tx, t.ca_id, &ca, &err);
	}
	rq->svc->be->rollback(tx);
	if (rc != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	for (int attempt = 0; ; attempt++) {
		if (approve) {
			store_cert_clear(&d.rec);
			if ((rc = scep_issue_for(rq->svc, &p, &u, &dev, &ca, t.csr, t.csr_len, NULL,
			    &d.rec, NULL, &err)) != 0) {
				reply_smime(rq, &err);
				goto out;
			}
		}
		rc = rq_commit(rq, decide_fn, &d, &err);
		if (rc == SMIME_E_EXISTS && approve && attempt + 1 < 3 &&
		    strstr(err.message, "not pending") == NULL)
			continue;	/* a serial taken: another one */
		break;
	}
	if (rc != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	if (approve)
		atomic_fetch_add(&rq->svc->metrics.issued, 1);
	t.status = approve ? SCEP_TX_ISSUED : SCEP_TX_REJECTED;
	if (approve)
		snprintf(t.cert, sizeof(t.cert), "%s", d.rec.sha256);
	else {
		free(t.error);
		t.error = strdup(d.reason);
	}
	json_t *j = json_pack("{s:o}", "request", scep_tx_json(&t));
	if (approve)
		json_object_set_new(j, "certificate", cert_json(&d.rec, true));
	reply_json(rq, 200, j);
out:
	store_cert_clear(&d.rec);
	store_scep_tx_clear(&t);
	store_scep_profile_clear(&p);
	store_user_clear(&u);
	store_device_clear(&dev);
	store_ca_clear(&ca);
	json_decref(o);
}

void
h_scep_request_approve(struct request *rq)
{
	decide(rq, true);
}

void
h_scep_request_reject(struct request *rq)
{
	decide(rq, false);
}

/* smimed: /api/v1/tokens (admin tokens) and /api/v1/audit (the audit log). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "api.h"

static json_t *
token_json(const struct store_token *t)
{
	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "id", t->id, "name",
	    t->name ? t->name : "", "role", store_role_name(t->role), "created",
	    time_json(t->created), "expires", time_json(t->expires), "last_used",
	    time_json(t->last_used), "revoked_at", time_json(t->revoked_at), "created_by",
	    t->created_by[0] != '\0' ? json_string(t->created_by) : json_null());
}

void
h_tokens_list(struct request *rq)
{
	ANSWER_ALL(rq, struct store_token, token_list, token_json, store_tokens_free);
}

struct token_op {
	struct service *svc;
	const char *actor;
	struct store_token t;
	const char *id;          /* revoke */
};

static int
token_create_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct token_op *to = arg;
	int rc = to->svc->be->token_insert(tx, &to->t, err);

	if (rc != 0)
		return rc;
	return audit_row(to->svc, tx, to->actor, "token.create", to->t.id,
	    json_pack("{s:s,s:s,s:o,s:s}", "name", to->t.name, "role",
	    store_role_name(to->t.role), "expires", time_json(to->t.expires), "created_by",
	    to->t.created_by), err);
}

/*
 * The token named by id, or by a unique prefix of its id (at least four
 * characters, as people copy them from token list).  Only administration
 * takes prefixes: a request's own token is always named whole.
 */
static int
token_by_id_or_prefix(struct service *svc, struct store_tx *tx, const char *id,
    struct store_token *t_r, struct smime_error *err)
{
	struct store_token *v = NULL;
	size_t n = 0, hits = 0, len = strlen(id);
	int rc = svc->be->token_get(tx, id, t_r, err);

	if (rc != SMIME_E_NOTFOUND || len < 4)
		return rc;
	if ((rc = svc->be->token_list(tx, &v, &n, err)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (strncasecmp(v[i].id, id, len) == 0 && hits++ == 0) {
			store_token_clear(t_r);
			*t_r = v[i];
			memset(&v[i], 0, sizeof(v[i]));
		}
	store_tokens_free(v, n);
	if (hits == 1)
		return 0;
	store_token_clear(t_r);
	memset(t_r, 0, sizeof(*t_r));
	if (hits == 0)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no token '%.64s'", id);
	return smime_error_set(err, SMIME_E_EXISTS, "'%.64s' is ambiguous: it starts the ids of "
	    "%zu tokens: give more of it", id, hits);
}

static int
token_revoke_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct token_op *to = arg;
	int rc;

	if ((rc = token_by_id_or_prefix(to->svc, tx, to->id, &to->t, err)) != 0)
		return rc;
	if (to->t.revoked_at != 0)
		return smime_error_set(err, SMIME_E_EXISTS, "token %s is revoked already", to->t.id);
	if ((rc = to->svc->be->token_revoke(tx, to->t.id, service_now(), err)) != 0)
		return rc;
	return audit_row(to->svc, tx, to->actor, "token.revoke", to->t.id,
	    json_pack("{s:s}", "name", to->t.name ? to->t.name : ""), err);
}

void
h_tokens_create(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "name", JSON_STRING, true },
		{ "role", JSON_STRING, true },
		{ "expires_days", JSON_INTEGER, false },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct token_op to = { .svc = rq->svc, .actor = rq->actor };
	char text[TOKEN_TEXT_SIZE];
	struct smime_error err;

	if (o == NULL)
		return;
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *role = json_string_value(json_object_get(o, "role"));
	json_t *days = json_object_get(o, "expires_days");
	enum store_role r = store_role_parse(role);
	if (*name == '\0' || !api_text(name, 128)) {
		reply_error(rq, 400, "bad-request", "name: 1 to 128 characters, no control characters");
		goto out;
	}
	if (r == 0) {
		reply_error(rq, 400, "bad-request", "role: admin, operator, recovery or auditor");
		goto out;
	}
	if (days != NULL && (json_integer_value(days) < 1 ||
	    json_integer_value(days) > TOKEN_MAX_DAYS)) {
		reply_error(rq, 400, "bad-request", "expires_days: 1 to %d", TOKEN_MAX_DAYS);
		goto out;
	}
	if (token_make(name, &to.t, text, &err) != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	to.t.role = r;
	/* Who made it, for two-person recovery (api_recovery.c): the token id. */
	snprintf(to.t.created_by, sizeof(to.t.created_by), "%s",
	    strncmp(to.actor, "token:", 6) == 0 ? to.actor + 6 : to.actor);
	if (days != NULL)
		to.t.expires = to.t.created + (int64_t)json_integer_value(days) * 86400;
	if (rq_commit(rq, token_create_fn, &to, &err) != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	reply_json(rq, 201, json_pack("{s:s,s:s,s:s,s:s,s:o,s:o}", "id", to.t.id, "name",
	    to.t.name, "role", store_role_name(to.t.role), "token", text, "created",
	    time_json(to.t.created), "expires", time_json(to.t.expires)));
out:
	OPENSSL_cleanse(text, sizeof(text));
	store_token_clear(&to.t);
	json_decref(o);
}

void
h_token_delete(struct request *rq)
{
	struct token_op to = { .svc = rq->svc, .actor = rq->actor, .id = rq->params[0] };
	struct smime_error err;

	if (strlen(to.id) >= STORE_ID_SIZE) {
		reply_error(rq, 404, "not-found", "no token '%.40s'", to.id);
		return;
	}
	if (rq_commit(rq, token_revoke_fn, &to, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_empty(rq, 204);
	store_token_clear(&to.t);
}

static json_t *
audit_json(const struct store_audit *a)
{
	json_t *detail = json_loads(a->detail ? a->detail : "{}", 0, NULL);

	return json_pack("{s:I,s:o,s:s,s:s,s:s,s:o,s:o}", "seq", (json_int_t)a->seq, "time",
	    time_json(a->time), "actor", a->actor, "action", a->action, "object", a->object,
	    "user", a->user_id != NULL && *a->user_id != '\0' ? json_string(a->user_id) :
	    json_null(), "detail", detail != NULL ? detail : json_object());
}

/*
 * A time of a query: RFC 3339 in UTC, "2026-12-07T15:00:00Z", or a day,
 * "2026-12-07" (its midnight, UTC).  False when it is neither.
 */
static bool
query_time(const char *s, int64_t *t_r)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) == 10)
		end = strptime(s, "%Y-%m-%d", &tm);
	else if (strlen(s) == 20)
		end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		return false;
	if (end == NULL || *end != '\0' || tm.tm_year < 70)
		return false;
	*t_r = (int64_t)timegm(&tm);
	return *t_r > 0;
}

/* An action, or a family of them ("cert.*"): lower-case letters, digits, '.' and '-'. */
static bool
action_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	if (n >= 2 && strcmp(s + n - 2, ".*") == 0)
		n -= 2;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		    s[i] == '-'))
			return false;
	return n > 0;
}

void
h_audit_list(struct request *rq)
{
	struct store_audit_filter f = { 0 };
	struct store_page page;
	struct store_audit *v = NULL;
	struct store_user u = { 0 };
	struct smime_error err;
	struct store_tx *tx;
	const char *since = rq_query(rq, "since"), *until = rq_query(rq, "until");
	const char *user = rq_query(rq, "user");
	char *next = NULL;
	size_t n = 0;
	int rc;

	f.actor = rq_query(rq, "actor");
	f.action = rq_query(rq, "action");
	if (f.actor != NULL && (*f.actor == '\0' || !api_text(f.actor, 128))) {
		reply_error(rq, 400, "bad-request", "actor: 1 to 128 characters, as the log's "
		    "actor column shows them (token:ID, system)");
		return;
	}
	if (f.action != NULL && !action_ok(f.action)) {
		reply_error(rq, 400, "bad-request", "action: an action such as cert.issue, or a "
		    "family such as cert.*");
		return;
	}
	if ((since != NULL && !query_time(since, &f.since)) ||
	    (until != NULL && !query_time(until, &f.until))) {
		reply_error(rq, 400, "bad-request", "since, until: a UTC time as "
		    "2026-12-07T15:00:00Z, or a day as 2026-12-07");
		return;
	}
	if (user != NULL && (*user == '\0' || strlen(user) > API_MAX_EMAIL)) {
		reply_error(rq, 400, "bad-request", "user: an id or an address");
		return;
	}
	if (!rq_page(rq, &page) || (tx = rq_read(rq)) == NULL)
		return;
	/* An address is the user's who holds it now, a deleted user (a
	 * leaver) too; an id also finds the rows of a user purged since. */
	if (user != NULL && strchr(user, '@') != NULL) {
		if ((rc = rq->svc->be->user_find(tx, user, &u, &err)) != 0) {
			rq->svc->be->rollback(tx);
			reply_smime(rq, &err);
			return;
		}
		f.user_id = u.id;
	} else
		f.user_id = user;
	rc = rq->svc->be->audit_list(tx, &page, &f, &v, &n, &next, &err);
	rq->svc->be->rollback(tx);
	if (rc != 0)
		reply_smime(rq, &err);
	else {
		json_t *items = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(items, audit_json(&v[i]));
		reply_json(rq, 200, list_json(items, next));
	}
	store_audits_free(v, n);
	store_user_clear(&u);
	free(next);
}

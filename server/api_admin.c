/* smimed: /api/v1/tokens (admin tokens) and /api/v1/audit (the audit log). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"

static json_t *
token_json(const struct store_token *t)
{
	return json_pack("{s:s,s:s,s:o,s:o,s:o}", "id", t->id, "name", t->name ? t->name : "",
	    "created", time_json(t->created), "last_used", time_json(t->last_used),
	    "revoked_at", time_json(t->revoked_at));
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
	    json_pack("{s:s}", "name", to->t.name), err);
}

static int
token_revoke_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct token_op *to = arg;
	int rc;

	if ((rc = to->svc->be->token_get(tx, to->id, &to->t, err)) != 0)
		return rc;
	if (to->t.revoked_at != 0)
		return smime_error_set(err, SMIME_E_EXISTS, "token %s is revoked already", to->id);
	if ((rc = to->svc->be->token_revoke(tx, to->id, service_now(), err)) != 0)
		return rc;
	return audit_row(to->svc, tx, to->actor, "token.revoke", to->id,
	    json_pack("{s:s}", "name", to->t.name ? to->t.name : ""), err);
}

void
h_tokens_create(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "name", JSON_STRING, true },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct token_op to = { .svc = rq->svc, .actor = rq->actor };
	char text[TOKEN_TEXT_SIZE];
	struct smime_error err;

	if (o == NULL)
		return;
	const char *name = json_string_value(json_object_get(o, "name"));
	if (*name == '\0' || !api_text(name, 128)) {
		reply_error(rq, 400, "bad-request", "name: 1 to 128 characters, no control characters");
		goto out;
	}
	if (token_make(name, &to.t, text, &err) != 0 ||
	    rq_commit(rq, token_create_fn, &to, &err) != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	reply_json(rq, 201, json_pack("{s:s,s:s,s:s,s:o}", "id", to.t.id, "name", to.t.name,
	    "token", text, "created", time_json(to.t.created)));
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

	return json_pack("{s:I,s:o,s:s,s:s,s:s,s:o}", "seq", (json_int_t)a->seq, "time",
	    time_json(a->time), "actor", a->actor, "action", a->action, "object", a->object,
	    "detail", detail != NULL ? detail : json_object());
}

void
h_audit_list(struct request *rq)
{
	ANSWER_PAGE(rq, struct store_audit, audit_list, audit_json, store_audits_free);
}

/*
 * smimed: the directory publication seen from the API (directory.h).
 *
 *   GET  /api/v1/directory       the worker's state and the queue
 *   POST /api/v1/directory/sync  queue every user who has a certificate
 */
#include <stdlib.h>

#include "api.h"
#include "directory.h"

#define PENDING_SHOWN 100          /* queued users listed in the status */

struct sync_op {
	struct service *svc;
	const char *actor;
	size_t n;
};

static int
sync_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct sync_op *so = arg;
	int rc = so->svc->be->publish_all(tx, service_now(), &so->n, err);

	if (rc != 0 || so->actor == NULL)
		return rc;
	return audit_row(so->svc, tx, so->actor, "directory.sync", "",
	    json_pack("{s:I}", "users", (json_int_t)so->n), err);
}

int
api_publish_all(struct store_tx *tx, struct service *svc, struct smime_error *err)
{
	struct sync_op so = { .svc = svc };

	return sync_fn(tx, &so, err);
}

void
h_directory_get(struct request *rq)
{
	struct store_publish *v = NULL;
	struct smime_error err;
	size_t n = 0, total = 0;
	struct store_tx *tx = rq_read(rq);
	json_t *j, *items;

	if (tx == NULL)
		return;
	int rc = rq->svc->be->publish_pending(tx, PENDING_SHOWN, &v, &n, &total, &err);
	if (rc != 0) {
		rq->svc->be->rollback(tx);
		reply_smime(rq, &err);
		return;
	}
	items = json_array();
	for (size_t i = 0; i < n; i++) {
		/* The primary address, by which the directory's entry is found. */
		struct store_user u = { 0 };
		bool known = rq->svc->be->user_get(tx, v[i].user_id, &u, &err) == 0 &&
		    u.n_emails > 0;
		json_array_append_new(items, json_pack("{s:s,s:s?,s:I,s:o,s:o,s:s?}", "user",
		    v[i].user_id, "email", known ? u.emails[0] : NULL, "attempts",
		    (json_int_t)v[i].attempts, "queued", time_json(v[i].queued), "next_attempt",
		    time_json(v[i].next_at), "error", v[i].error[0] != '\0' ? v[i].error : NULL));
		store_user_clear(&u);
	}
	rq->svc->be->rollback(tx);
	store_publishes_free(v, n);
	if (rq->svc->directory != NULL)
		j = directory_status(rq->svc->directory);
	else
		j = json_object();
	json_object_set_new(j, "configured", json_boolean(rq->svc->directory != NULL));
	json_object_set_new(j, "pending", json_integer((json_int_t)total));
	json_object_set_new(j, "queue", items);
	reply_json(rq, 200, j);
}

void
h_directory_sync(struct request *rq)
{
	struct sync_op so = { .svc = rq->svc, .actor = rq->actor };
	struct smime_error err;

	if (rq->svc->directory == NULL) {
		reply_error(rq, 409, "no-directory", "no directory to publish to: set ldap_url and "
		    "ldap_base in the configuration (smimed(8))");
		return;
	}
	if (rq_commit(rq, sync_fn, &so, &err) != 0) {
		reply_smime(rq, &err);
		return;
	}
	directory_kick(rq->svc->directory);
	reply_json(rq, 202, json_pack("{s:I}", "queued", (json_int_t)so.n));
}

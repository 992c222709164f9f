/* smimed: /api/v1/devices, the devices that belong to users. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#define MAX_DEVICE_NAME 256

static const char *const platforms[] = { "ios", "android", "macos", "windows", "linux", NULL };

static bool
platform_ok(const char *p)
{
	for (size_t i = 0; platforms[i] != NULL; i++)
		if (strcmp(platforms[i], p) == 0)
			return true;
	return false;
}

static json_t *
device_json(const struct store_device *d)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:o,s:o}", "id", d->id, "user", d->user_id, "name",
	    d->name ? d->name : "", "platform", d->platform ? d->platform : "", "created",
	    time_json(d->created), "updated", time_json(d->updated));
}

void
h_devices_list(struct request *rq)
{
	struct store_page page;
	struct store_device *devices = NULL;
	struct store_user u = { 0 };
	size_t n = 0;
	char *next = NULL;
	struct smime_error err;
	struct store_tx *tx;
	const char *user = rq_query(rq, "user");

	if (!rq_page(rq, &page) || (tx = rq_read(rq)) == NULL)
		return;
	int rc = user != NULL ? rq->svc->be->user_get(tx, user, &u, &err) : 0;
	if (rc == 0)
		rc = rq->svc->be->device_list(tx, &page, user != NULL ? u.id : NULL, &devices, &n,
		    &next, &err);
	json_t *items = rc == 0 ? json_array() : NULL;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		json_t *j = device_json(&devices[i]);
		api_names(rq->svc, tx, j);
		json_array_append_new(items, j);
	}
	rq->svc->be->rollback(tx);
	if (rc != 0)
		reply_smime(rq, &err);
	else
		reply_json(rq, 200, list_json(items, next));
	store_user_clear(&u);
	store_devices_free(devices, n);
	free(next);
}

struct device_op {
	struct service *svc;
	const char *actor;
	const char *user_key;        /* create: id or address of the owner */
	const char *id;              /* change, delete */
	const char *name, *platform; /* NULL: unchanged */
	bool delete;
	struct store_device d;
};

static int
device_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct device_op *op = arg;
	const struct store_backend *be = op->svc->be;
	struct store_user u = { 0 };
	int rc;

	if (op->user_key != NULL) {
		if ((rc = be->user_get(tx, op->user_key, &u, err)) != 0)
			return rc;
		snprintf(op->d.user_id, sizeof(op->d.user_id), "%s", u.id);
		store_user_clear(&u);
		if ((rc = be->device_insert(tx, &op->d, err)) != 0)
			return rc;
		return audit_row(op->svc, tx, op->actor, "device.create", op->d.id,
		    json_pack("{s:s,s:s,s:s}", "user", op->d.user_id, "name", op->d.name,
		    "platform", op->d.platform), err);
	}
	if ((rc = be->device_get(tx, op->id, &op->d, err)) != 0)
		return rc;
	if (op->delete) {
		if ((rc = be->device_delete(tx, op->d.id, err)) != 0)
			return rc;
		return audit_row(op->svc, tx, op->actor, "device.delete", op->d.id,
		    json_pack("{s:s}", "user", op->d.user_id), err);
	}
	if (op->name != NULL) {
		free(op->d.name);
		op->d.name = strdup(op->name);
	}
	if (op->platform != NULL) {
		free(op->d.platform);
		op->d.platform = strdup(op->platform);
	}
	if (op->d.name == NULL || op->d.platform == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	op->d.updated = service_now();
	if ((rc = be->device_update(tx, &op->d, err)) != 0)
		return rc;
	return audit_row(op->svc, tx, op->actor, "device.update", op->d.id,
	    json_pack("{s:s,s:s,s:s}", "user", op->d.user_id, "name", op->d.name, "platform",
	    op->d.platform), err);
}

static bool
check_fields(struct request *rq, const char *name, const char *platform)
{
	if (name != NULL && (*name == '\0' || !api_text(name, MAX_DEVICE_NAME))) {
		reply_error(rq, 400, "bad-request", "name: 1 to 256 characters, no control characters");
		return false;
	}
	if (platform != NULL && !platform_ok(platform)) {
		reply_error(rq, 400, "bad-request", "platform: one of ios, android, macos, windows, "
		    "linux");
		return false;
	}
	return true;
}

void
h_devices_create(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "user", JSON_STRING, true },
		{ "name", JSON_STRING, true },
		{ "platform", JSON_STRING, true },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct device_op op = { .svc = rq->svc, .actor = rq->actor };
	struct smime_error err;

	if (o == NULL)
		return;
	op.user_key = json_string_value(json_object_get(o, "user"));
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *platform = json_string_value(json_object_get(o, "platform"));
	if (!check_fields(rq, name, platform))
		goto out;
	service_new_id(op.d.id);
	op.d.name = strdup(name);
	op.d.platform = strdup(platform);
	op.d.created = op.d.updated = service_now();
	if (op.d.name == NULL || op.d.platform == NULL)
		reply_error(rq, 500, "internal", "out of memory");
	else if (rq_commit(rq, device_fn, &op, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_json(rq, 201, device_json(&op.d));
out:
	store_device_clear(&op.d);
	json_decref(o);
}

void
h_device_get(struct request *rq)
{
	ANSWER_RECORD_NAMED(rq, struct store_device, device_get, rq->params[0], device_json,
	    store_device_clear);
}

void
h_device_patch(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "name", JSON_STRING, false },
		{ "platform", JSON_STRING, false },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct device_op op = { .svc = rq->svc, .actor = rq->actor, .id = rq->params[0] };
	struct smime_error err;

	if (o == NULL)
		return;
	op.name = json_string_value(json_object_get(o, "name"));
	op.platform = json_string_value(json_object_get(o, "platform"));
	if (!check_fields(rq, op.name, op.platform))
		goto out;
	if (rq_commit(rq, device_fn, &op, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_json(rq, 200, device_json(&op.d));
out:
	store_device_clear(&op.d);
	json_decref(o);
}

void
h_device_delete(struct request *rq)
{
	struct device_op op = { .svc = rq->svc, .actor = rq->actor, .id = rq->params[0],
		.delete = true };
	struct smime_error err;

	if (rq_commit(rq, device_fn, &op, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_empty(rq, 204);
	store_device_clear(&op.d);
}

/* smimed: /api/v1/users and /api/v1/groups, and the CSV import of users. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api.h"
#include "csv.h"

#define MAX_EMAILS 16          /* addresses of one user */
#define MAX_GROUPS 64          /* groups named when creating a user */
#define MAX_NAME 256
#define MAX_GROUP_NAME 128
#define MAX_IMPORT_ROWS 10000
#define CSV_MAX_FIELDS 8
#define CSV_MAX_RECORD 8192

struct user_new {
	struct service *svc;
	const char *actor;
	struct store_user u;
	char **groups;
	size_t n_groups;
	bool reuse;             /* addresses deleted users hold go to this user */
	size_t reused;
};

static void
user_new_clear(struct user_new *un)
{
	for (size_t i = 0; i < un->n_groups; i++)
		free(un->groups[i]);
	free(un->groups);
	un->groups = NULL;
	un->n_groups = 0;
	un->u.groups = NULL;
	un->u.n_groups = 0;
	store_user_clear(&un->u);
}

/* Fill un from the pieces of a request; false with *why_r when invalid. */
static bool
user_new_fill(struct user_new *un, const char *const *emails, size_t n_emails, const char *name,
    const char *const *groups, size_t n_groups, const char **why_r)
{
	char addr[API_MAX_EMAIL + 1];

	if (n_emails == 0 || n_emails > MAX_EMAILS) {
		*why_r = "a user has 1 to 16 addresses";
		return false;
	}
	if (name != NULL && !api_text(name, MAX_NAME)) {
		*why_r = "name: at most 256 characters, no control characters";
		return false;
	}
	if (n_groups > MAX_GROUPS) {
		*why_r = "at most 64 groups";
		return false;
	}
	service_new_id(un->u.id);
	un->u.created = un->u.updated = service_now();
	un->u.name = strdup(name != NULL ? name : "");
	un->u.emails = calloc(n_emails, sizeof(char *));
	un->groups = calloc(n_groups + 1, sizeof(char *));
	if (un->u.name == NULL || un->u.emails == NULL || un->groups == NULL) {
		*why_r = "out of memory";
		return false;
	}
	for (size_t i = 0; i < n_emails; i++) {
		if (!api_email(emails[i], addr, why_r))
			return false;
		for (size_t k = 0; k < un->u.n_emails; k++)
			if (strcmp(un->u.emails[k], addr) == 0) {
				*why_r = "an address is listed twice";
				return false;
			}
		if ((un->u.emails[un->u.n_emails] = strdup(addr)) == NULL) {
			*why_r = "out of memory";
			return false;
		}
		un->u.n_emails++;
	}
	for (size_t i = 0; i < n_groups; i++) {
		if (*groups[i] == '\0' || !api_text(groups[i], MAX_GROUP_NAME) ||
		    strchr(groups[i], '/') != NULL) {
			*why_r = "a group name has 1 to 128 characters, no control characters and no '/'";
			return false;
		}
		if ((un->groups[un->n_groups] = strdup(groups[i])) == NULL) {
			*why_r = "out of memory";
			return false;
		}
		un->n_groups++;
	}
	return true;
}

/*
 * An address of u is taken (rc): when a deleted user holds it, say so and
 * how to give it to u; else rc with err as it was.
 */
static int
deleted_holder(struct service *svc, struct store_tx *tx, const struct store_user *u, int rc,
    struct smime_error *err)
{
	for (size_t i = 0; i < u->n_emails; i++) {
		struct store_user old = { 0 };
		struct smime_error e2;
		if (svc->be->user_find(tx, u->emails[i], &old, &e2) == 0 && old.deleted != 0) {
			rc = smime_error_set(err, SMIME_E_EXISTS, "the address %s belongs to user %s, "
			    "deleted (the archive keeps that user's keys): to give it to a new user, "
			    "say so with reuse_addresses: true (smime admin user add "
			    "--reuse-addresses); the deleted user stays recoverable by id",
			    u->emails[i], old.id);
			store_user_clear(&old);
			return rc;
		}
		store_user_clear(&old);
	}
	return rc;
}

/*
 * Which of the n addresses deleted users hold, as the audit names them:
 * [{"address": .., "from": DELETED-USER-ID}]; a new reference, NULL when
 * out of memory.  Read before user_release_addresses gives them away.
 */
static json_t *
reused_json(struct service *svc, struct store_tx *tx, char *const *emails, size_t n)
{
	json_t *v = json_array();

	for (size_t i = 0; v != NULL && i < n; i++) {
		struct store_user old = { 0 };
		struct smime_error e2;
		if (svc->be->user_find(tx, emails[i], &old, &e2) == 0 && old.deleted != 0 &&
		    json_array_append_new(v, json_pack("{s:s,s:s}", "address", emails[i], "from",
		    old.id)) != 0) {
			json_decref(v);
			v = NULL;
		}
		store_user_clear(&old);
	}
	return v;
}

static int
user_create_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct user_new *un = arg;
	const struct store_backend *be = un->svc->be;
	json_t *emails = json_array(), *groups = json_array(), *reused = NULL;
	int rc;

	if (un->reuse && (reused = reused_json(un->svc, tx, un->u.emails, un->u.n_emails)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if (un->reuse && (rc = be->user_release_addresses(tx, (const char *const *)un->u.emails,
	    un->u.n_emails, &un->reused, err)) != 0)
		goto out;
	if ((rc = be->user_insert(tx, &un->u, err)) != 0) {
		if (rc == SMIME_E_EXISTS && !un->reuse)
			rc = deleted_holder(un->svc, tx, &un->u, rc, err);
		goto out;
	}
	for (size_t i = 0; i < un->n_groups; i++) {
		struct store_group gr = { 0 };
		rc = be->group_get(tx, un->groups[i], &gr, err);
		if (rc == SMIME_E_NOTFOUND) {
			service_new_id(gr.id);
			gr.name = strdup(un->groups[i]);
			gr.description = strdup("");
			gr.created = service_now();
			if (gr.name == NULL || gr.description == NULL)
				rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			else
				rc = be->group_insert(tx, &gr, err);
			if (rc == 0)
				rc = audit_row(un->svc, tx, un->actor, "group.create", gr.id,
				    json_pack("{s:s}", "name", gr.name), err);
		}
		if (rc == 0)
			rc = be->group_add_member(tx, gr.id, un->u.id, err);
		store_group_clear(&gr);
		if (rc != 0)
			goto out;
		json_array_append_new(groups, json_string(un->groups[i]));
	}
	for (size_t i = 0; i < un->u.n_emails; i++)
		json_array_append_new(emails, json_string(un->u.emails[i]));
	rc = audit_row(un->svc, tx, un->actor, "user.create", un->u.id,
	    json_pack("{s:O,s:O,s:I,s:O?}", "emails", emails, "groups", groups, "reused_addresses",
	    (json_int_t)un->reused, "reused", reused), err);
out:
	json_decref(emails);
	json_decref(groups);
	json_decref(reused);
	return rc;
}

void
h_users_list(struct request *rq)
{
	struct store_page page;
	struct store_user *users = NULL;
	struct store_group gr = { 0 };
	size_t n = 0;
	char *next = NULL;
	struct smime_error err;
	struct store_tx *tx;
	const char *group = rq_query(rq, "group"), *deleted = rq_query(rq, "deleted");
	bool want_deleted = deleted != NULL && strcmp(deleted, "true") == 0;
	int rc;

	if (deleted != NULL && !want_deleted && strcmp(deleted, "false") != 0) {
		reply_error(rq, 400, "bad-request", "deleted: true or false");
		return;
	}
	if (want_deleted && group != NULL) {
		reply_error(rq, 400, "bad-request", "deleted users belong to no group");
		return;
	}
	if (!rq_page(rq, &page) || (tx = rq_read(rq)) == NULL)
		return;
	rc = group != NULL ? rq->svc->be->group_get(tx, group, &gr, &err) : 0;
	if (rc == 0 && want_deleted)
		rc = rq->svc->be->user_list_deleted(tx, &page, &users, &n, &next, &err);
	else if (rc == 0)
		rc = rq->svc->be->user_list(tx, &page, group != NULL ? gr.id : NULL, &users, &n,
		    &next, &err);
	rq->svc->be->rollback(tx);
	if (rc != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	json_t *items = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *j = user_json(&users[i]);
		if (j != NULL)
			json_object_set_new(j, "deleted", time_json(users[i].deleted));
		json_array_append_new(items, j);
	}
	reply_json(rq, 200, list_json(items, next));
out:
	store_group_clear(&gr);
	store_users_free(users, n);
	free(next);
}

/* The strings of a JSON array into a NULL-padded vector (borrowed). */
static const char **
strings_of(const json_t *array, size_t *n_r)
{
	size_t n = json_array_size(array);
	const char **v = calloc(n + 1, sizeof(char *));

	for (size_t i = 0; v != NULL && i < n; i++)
		v[i] = json_string_value(json_array_get(array, i));
	*n_r = n;
	return v;
}

void
h_users_create(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "emails", JSON_ARRAY, true },
		{ "name", JSON_STRING, false },
		{ "groups", JSON_ARRAY, false },
		{ "reuse_addresses", JSON_TRUE, false },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct user_new un = { .svc = rq->svc, .actor = rq->actor };
	const char **emails = NULL, **groups = NULL;
	size_t n_emails = 0, n_groups = 0;
	const char *why = NULL;
	struct smime_error err;

	if (o == NULL)
		return;
	json_t *je = json_object_get(o, "emails"), *jg = json_object_get(o, "groups");
	un.reuse = json_is_true(json_object_get(o, "reuse_addresses"));
	if (!json_strings(je, MAX_EMAILS, API_MAX_EMAIL)) {
		reply_error(rq, 400, "bad-request", "emails: an array of 1 to 16 addresses");
		goto out;
	}
	if (jg != NULL && !json_strings(jg, MAX_GROUPS, MAX_GROUP_NAME)) {
		reply_error(rq, 400, "bad-request", "groups: an array of at most 64 names");
		goto out;
	}
	emails = strings_of(je, &n_emails);
	groups = jg != NULL ? strings_of(jg, &n_groups) : calloc(1, sizeof(char *));
	if (emails == NULL || groups == NULL) {
		reply_error(rq, 500, "internal", "out of memory");
		goto out;
	}
	if (!user_new_fill(&un, emails, n_emails, json_string_value(json_object_get(o, "name")),
	    groups, n_groups, &why)) {
		reply_error(rq, 400, "bad-request", "%s", why);
		goto out;
	}
	if (rq_commit(rq, user_create_fn, &un, &err) != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	un.u.groups = un.groups;
	un.u.n_groups = un.n_groups;
	reply_json(rq, 201, user_json(&un.u));
	un.u.groups = NULL;
	un.u.n_groups = 0;
out:
	free(emails);
	free(groups);
	user_new_clear(&un);
	json_decref(o);
}

/* Split "a;b;c" into trimmed, non-empty parts (pointers into s, which is modified). */
static size_t
split_list(char *s, const char **parts, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	for (char *t = strtok_r(s, ";", &save); t != NULL; t = strtok_r(NULL, ";", &save)) {
		while (*t == ' ')
			t++;
		size_t len = strlen(t);
		while (len > 0 && t[len - 1] == ' ')
			t[--len] = '\0';
		if (*t == '\0')
			continue;
		if (n >= max)
			return max + 1;
		parts[n++] = t;
	}
	return n;
}

/*
 * A row of an import whose addresses are taken: already present when they
 * all belong to one user whose primary address is the row's (the same
 * file imported again); else *why_r (malloc'd) names whose each taken
 * address is, and the row failed.
 */
static bool
import_present(struct request *rq, const struct store_user *row, char **why_r)
{
	struct smime_error err;
	struct store_tx *tx = rq_read(rq);
	char first_id[STORE_ID_SIZE] = "";
	const char *missing = NULL;
	char *why = NULL;

	*why_r = NULL;
	if (tx == NULL)
		return false;
	for (size_t i = 0; i < row->n_emails && why == NULL; i++) {
		struct store_user o = { 0 };
		if (rq->svc->be->user_get(tx, row->emails[i], &o, &err) != 0) {
			if (missing == NULL)
				missing = row->emails[i];
			continue;
		}
		bool primary = strcmp(o.emails[0], row->emails[i]) == 0;
		if (i == 0 && primary)
			snprintf(first_id, sizeof(first_id), "%s", o.id);
		else if (i > 0 && strcmp(o.id, first_id) == 0)
			;       /* an alias of the same user */
		else if (asprintf(&why, "%s is %s of another user, %s%s%s%s", row->emails[i],
		    primary ? "the address" : "an alias", o.emails[0], *o.name ? " (" : "",
		    o.name, *o.name ? ")" : "") < 0)
			why = NULL;
		store_user_clear(&o);
	}
	rq->svc->be->rollback(tx);
	if (why == NULL && missing != NULL && first_id[0] != '\0' &&
	    asprintf(&why, "%s exists without %s (smime admin user update adds addresses)",
	    row->emails[0], missing) < 0)
		why = NULL;
	if (why == NULL && first_id[0] != '\0')
		return true;
	*why_r = why;
	return false;
}

void
h_users_import(struct request *rq)
{
	const char *ct = rq_header(rq, MHD_HTTP_HEADER_CONTENT_TYPE);
	struct csv c;
	char *fields[CSV_MAX_FIELDS];
	char *buf = malloc(CSV_MAX_RECORD);
	const char *why = NULL;
	int col_email = -1, col_name = -1, col_groups = -1, col_aliases = -1;
	json_t *rows = json_array();
	long created = 0, existing = 0, failed = 0, count = 0;

	if (ct == NULL || strncasecmp(ct, "text/csv", 8) != 0) {
		reply_error(rq, 415, "unsupported-media-type", "the body must be text/csv");
		goto out;
	}
	if (buf == NULL || rows == NULL) {
		reply_error(rq, 500, "internal", "out of memory");
		goto out;
	}
	csv_init(&c, (const char *)rq->body, rq->body_len);
	int n = csv_record(&c, fields, CSV_MAX_FIELDS, buf, CSV_MAX_RECORD, &why);
	if (n <= 0) {
		reply_error(rq, 400, "bad-request", "line 1: %s", n < 0 ? why :
		    "a header line (email,name,groups,aliases) is required");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		int *col = strcasecmp(fields[i], "email") == 0 ? &col_email :
		    strcasecmp(fields[i], "name") == 0 ? &col_name :
		    strcasecmp(fields[i], "groups") == 0 ? &col_groups :
		    strcasecmp(fields[i], "aliases") == 0 ? &col_aliases : NULL;
		if (col == NULL || *col >= 0) {
			reply_error(rq, 400, "bad-request", "line %zu: column '%.64s' is %s (known: "
			    "email, name, groups, aliases)", c.line, fields[i],
			    col == NULL ? "unknown" : "given twice");
			goto out;
		}
		*col = i;
	}
	if (col_email < 0) {
		reply_error(rq, 400, "bad-request", "line 1: the header has no 'email' column");
		goto out;
	}
	/* Check the whole file's syntax first: a record that cannot be split
	 * leaves the rest unreadable, so nothing is imported then. */
	struct csv scan = c;
	for (long rows_seen = 0;; rows_seen++) {
		int k = csv_record(&scan, fields, CSV_MAX_FIELDS, buf, CSV_MAX_RECORD, &why);
		if (k == 0)
			break;
		if (k < 0) {
			reply_error(rq, 400, "bad-request", "line %zu: %s (RFC 4180); nothing was "
			    "imported", scan.line, why);
			goto out;
		}
		if (rows_seen >= MAX_IMPORT_ROWS) {
			reply_error(rq, 413, "payload-too-large", "more than %d rows: split the file",
			    MAX_IMPORT_ROWS);
			goto out;
		}
	}
	for (;;) {
		n = csv_record(&c, fields, CSV_MAX_FIELDS, buf, CSV_MAX_RECORD, &why);
		if (n == 0)
			break;
		count++;
		json_t *row = json_pack("{s:I}", "line", (json_int_t)c.line);
		struct user_new un = { .svc = rq->svc, .actor = rq->actor };
		const char *emails[MAX_EMAILS + 1], *groups[MAX_GROUPS + 1];
		size_t n_emails = 0, n_groups = 0;
		struct smime_error err;

		if (n < 0) {
			/* The scan above read the same bytes: this cannot happen. */
			json_decref(row);
			reply_error(rq, 500, "internal", "line %zu: %s", c.line, why);
			goto out;
		}
		const char *email = col_email < n ? fields[col_email] : "";
		json_object_set_new(row, "email", json_string(email));
		emails[n_emails++] = email;
		if (col_aliases >= 0 && col_aliases < n) {
			size_t k = split_list(fields[col_aliases], emails + 1, MAX_EMAILS - 1);
			n_emails = k > MAX_EMAILS - 1 ? MAX_EMAILS + 1 : k + 1;
		}
		if (col_groups >= 0 && col_groups < n)
			n_groups = split_list(fields[col_groups], groups, MAX_GROUPS);
		if (!user_new_fill(&un, emails, n_emails, col_name >= 0 && col_name < n ?
		    fields[col_name] : NULL, groups, n_groups, &why)) {
			json_object_set_new(row, "status", json_string("error"));
			json_object_set_new(row, "message", json_string(why));
			failed++;
		} else if (rq_commit(rq, user_create_fn, &un, &err) != 0) {
			/* Taken addresses: present only when the row is that user. */
			char *whose = NULL;
			bool exists = err.code == SMIME_E_EXISTS && import_present(rq, &un.u, &whose);
			json_object_set_new(row, "status", json_string(exists ? "exists" : "error"));
			json_object_set_new(row, "message", json_string(whose != NULL ? whose :
			    err.message));
			free(whose);
			if (exists)
				existing++;
			else
				failed++;
			if (err.code == SMIME_E_IO || err.code == SMIME_E_INTERNAL) {
				user_new_clear(&un);
				json_decref(row);
				reply_smime(rq, &err);
				goto out;
			}
		} else {
			json_object_set_new(row, "status", json_string("created"));
			json_object_set_new(row, "id", json_string(un.u.id));
			created++;
		}
		user_new_clear(&un);
		json_array_append_new(rows, row);
	}
	reply_json(rq, 200, json_pack("{s:I,s:I,s:I,s:O}", "created", (json_int_t)created,
	    "existing", (json_int_t)existing, "failed", (json_int_t)failed, "rows", rows));
out:
	json_decref(rows);
	free(buf);
}

void
h_user_get(struct request *rq)
{
	ANSWER_RECORD(rq, struct store_user, user_get, rq->params[0], user_json, store_user_clear);
}

struct user_change {
	struct service *svc;
	const char *actor;
	const char *key;             /* id or address from the path */
	const char *name;            /* NULL: unchanged */
	bool emails_changed;
	struct user_new repl;        /* addresses when changed (n_emails > 0) */
	struct store_user result;
	bool delete;
	bool reuse;                  /* addresses deleted users hold may be taken */
};

static int
user_change_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct user_change *uc = arg;
	const struct store_backend *be = uc->svc->be;
	int rc;

	store_user_clear(&uc->result);
	if ((rc = be->user_get(tx, uc->key, &uc->result, err)) != 0)
		return rc;
	if (uc->delete) {
		if ((rc = be->user_delete(tx, uc->result.id, service_now(), err)) != 0)
			return rc;
		return audit_row(uc->svc, tx, uc->actor, "user.delete", uc->result.id,
		    json_pack("{s:s}", "email", uc->result.n_emails ? uc->result.emails[0] : ""),
		    err);
	}
	if (uc->name != NULL) {
		char *s = strdup(uc->name);
		if (s == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		free(uc->result.name);
		uc->result.name = s;
	}
	if (uc->repl.u.n_emails > 0) {
		uc->emails_changed = true;
		for (size_t i = 0; i < uc->result.n_emails; i++)
			free(uc->result.emails[i]);
		free(uc->result.emails);
		uc->result.emails = uc->repl.u.emails;
		uc->result.n_emails = uc->repl.u.n_emails;
		uc->repl.u.emails = NULL;
		uc->repl.u.n_emails = 0;
	}
	uc->result.updated = service_now();
	json_t *reused = NULL;
	if (uc->emails_changed && uc->reuse) {
		if ((reused = reused_json(uc->svc, tx, uc->result.emails, uc->result.n_emails)) == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		if ((rc = be->user_release_addresses(tx, (const char *const *)uc->result.emails,
		    uc->result.n_emails, NULL, err)) != 0) {
			json_decref(reused);
			return rc;
		}
	}
	if ((rc = be->user_update(tx, &uc->result, err)) != 0) {
		json_decref(reused);
		if (rc == SMIME_E_EXISTS && uc->emails_changed && !uc->reuse)
			rc = deleted_holder(uc->svc, tx, &uc->result, rc, err);
		return rc;
	}
	/* "reused": the addresses taken from deleted users, and from whom. */
	json_t *d = json_pack("{s:b,s:b}", "name", uc->name != NULL, "emails", uc->emails_changed);
	if (d != NULL && reused != NULL)
		json_object_set(d, "reused", reused);
	json_decref(reused);
	return audit_row(uc->svc, tx, uc->actor, "user.update", uc->result.id, d, err);
}

void
h_user_patch(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "emails", JSON_ARRAY, false },
		{ "name", JSON_STRING, false },
		{ "reuse_addresses", JSON_TRUE, false },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct user_change uc = { .svc = rq->svc, .actor = rq->actor, .key = rq->params[0] };
	const char **emails = NULL;
	size_t n = 0;
	const char *why;
	struct smime_error err;

	if (o == NULL)
		return;
	json_t *je = json_object_get(o, "emails");
	uc.name = json_string_value(json_object_get(o, "name"));
	uc.reuse = json_is_true(json_object_get(o, "reuse_addresses"));
	if (uc.name != NULL && !api_text(uc.name, MAX_NAME)) {
		reply_error(rq, 400, "bad-request", "name: at most 256 characters, no control "
		    "characters");
		goto out;
	}
	if (je != NULL) {
		if (!json_strings(je, MAX_EMAILS, API_MAX_EMAIL) || json_array_size(je) == 0 ||
		    (emails = strings_of(je, &n)) == NULL) {
			reply_error(rq, 400, "bad-request", "emails: an array of 1 to 16 addresses");
			goto out;
		}
		if (!user_new_fill(&uc.repl, emails, n, NULL, NULL, 0, &why)) {
			reply_error(rq, 400, "bad-request", "%s", why);
			goto out;
		}
	}
	if (rq_commit(rq, user_change_fn, &uc, &err) != 0)
		reply_smime(rq, &err);
	else {
		/* Groups are not part of the change: read them back. */
		struct store_tx *tx = rq_read(rq);
		if (tx != NULL) {
			struct store_user fresh = { 0 };
			if (rq->svc->be->user_get(tx, uc.result.id, &fresh, &err) == 0)
				reply_json(rq, 200, user_json(&fresh));
			else
				reply_smime(rq, &err);
			rq->svc->be->rollback(tx);
			store_user_clear(&fresh);
		}
	}
out:
	free(emails);
	user_new_clear(&uc.repl);
	store_user_clear(&uc.result);
	json_decref(o);
}

void
h_user_delete(struct request *rq)
{
	struct user_change uc = { .svc = rq->svc, .actor = rq->actor, .key = rq->params[0],
		.delete = true };
	struct smime_error err;

	if (rq_commit(rq, user_change_fn, &uc, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_empty(rq, 204);
	store_user_clear(&uc.result);
}

struct purge_op {
	struct service *svc;
	const char *actor;
	const char *key;
	const char *reason;
	struct store_user u;
	size_t keys;
};

static int
purge_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct purge_op *po = arg;
	const struct store_backend *be = po->svc->be;
	int64_t now = service_now(), days = po->svc->cfg.archive_retention_days;
	json_t *emails;
	int rc;

	store_user_clear(&po->u);
	if ((rc = be->user_find(tx, po->key, &po->u, err)) != 0)
		return rc;
	if (po->u.deleted == 0)
		return smime_error_set(err, SMIME_E_POLICY, "user %s is not deleted: delete the user "
		    "first (smime admin user delete); a purge destroys only a deleted user's keys",
		    po->key);
	/* archive_retention_days after the deletion, not before (0: no wait). */
	if (now < po->u.deleted + days * 86400) {
		int64_t left = (po->u.deleted + days * 86400 - now + 86399) / 86400;
		return smime_error_set(err, SMIME_E_POLICY, "user %s was deleted less than "
		    "archive_retention_days (%lld days) ago: its keys may be purged in %lld days",
		    po->key, (long long)days, (long long)left);
	}
	if ((rc = be->user_purge(tx, po->u.id, &po->keys, err)) != 0)
		return rc;
	if ((emails = json_array()) != NULL)
		for (size_t i = 0; i < po->u.n_emails; i++)
			json_array_append_new(emails, json_string(po->u.emails[i]));
	return audit_row(po->svc, tx, po->actor, "user.purge", po->u.id,
	    json_pack("{s:o,s:I,s:s,s:o}", "emails", emails, "keys", (json_int_t)po->keys,
	    "reason", po->reason, "deleted", time_json(po->u.deleted)), err);
}

/*
 * POST /api/v1/users/{user}/purge {reason}: destroy a deleted user and
 * every archived key of that user's certificates (which stay recorded),
 * audited.  Nothing else ever destroys an archived key.
 */
void
h_user_purge(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "reason", JSON_STRING, true },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct purge_op po = { .svc = rq->svc, .actor = rq->actor, .key = rq->params[0] };
	struct smime_error err;

	if (o == NULL)
		return;
	po.reason = json_string_value(json_object_get(o, "reason"));
	if (po.reason[0] == '\0' || !api_text(po.reason, MAX_NAME)) {
		reply_error(rq, 400, "bad-request", "reason: 1 to 256 characters, no control "
		    "characters");
		goto out;
	}
	if (rq_commit(rq, purge_fn, &po, &err) != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	log_event("info", "user.purge", "user", po.u.id, "actor", rq->actor, NULL);
	reply_json(rq, 200, json_pack("{s:s,s:I}", "user", po.u.id, "keys", (json_int_t)po.keys));
out:
	store_user_clear(&po.u);
	json_decref(o);
}

/* ---- groups ------------------------------------------------------------ */

static json_t *
group_json(const struct store_group *gr)
{
	return json_pack("{s:s,s:s,s:s,s:I,s:o}", "id", gr->id, "name", gr->name,
	    "description", gr->description ? gr->description : "", "members",
	    (json_int_t)gr->n_members, "created", time_json(gr->created));
}

void
h_groups_list(struct request *rq)
{
	ANSWER_PAGE(rq, struct store_group, group_list, group_json, store_groups_free);
}

struct group_op {
	struct service *svc;
	const char *actor;
	struct store_group gr;
	const char *group_key, *user_key;
	int op;                  /* 0 create, 1 delete, 2 add member, 3 remove member, 4 update */
	const char *name, *description;   /* update: NULL = unchanged */
};

static int
group_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct group_op *go = arg;
	const struct store_backend *be = go->svc->be;
	struct store_user u = { 0 };
	int rc;

	if (go->op == 0) {
		if ((rc = be->group_insert(tx, &go->gr, err)) != 0)
			return rc;
		return audit_row(go->svc, tx, go->actor, "group.create", go->gr.id,
		    json_pack("{s:s}", "name", go->gr.name), err);
	}
	if ((rc = be->group_get(tx, go->group_key, &go->gr, err)) != 0)
		return rc;
	if (go->op == 4) {
		if (go->name != NULL) {
			free(go->gr.name);
			go->gr.name = strdup(go->name);
		}
		if (go->description != NULL) {
			free(go->gr.description);
			go->gr.description = strdup(go->description);
		}
		if (go->gr.name == NULL || go->gr.description == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		if ((rc = be->group_update(tx, &go->gr, err)) != 0)
			return rc;
		return audit_row(go->svc, tx, go->actor, "group.update", go->gr.id,
		    json_pack("{s:s}", "name", go->gr.name), err);
	}
	if (go->op == 1) {
		if ((rc = be->group_delete(tx, go->gr.id, err)) != 0)
			return rc;
		return audit_row(go->svc, tx, go->actor, "group.delete", go->gr.id,
		    json_pack("{s:s}", "name", go->gr.name), err);
	}
	if ((rc = be->user_get(tx, go->user_key, &u, err)) != 0)
		return rc;
	rc = go->op == 2 ? be->group_add_member(tx, go->gr.id, u.id, err) :
	    be->group_remove_member(tx, go->gr.id, u.id, err);
	if (rc == 0)
		rc = audit_row(go->svc, tx, go->actor, go->op == 2 ? "group.add-member" :
		    "group.remove-member", go->gr.id, json_pack("{s:s}", "user", u.id), err);
	store_user_clear(&u);
	return rc;
}

void
h_groups_create(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "name", JSON_STRING, true },
		{ "description", JSON_STRING, false },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct group_op go = { .svc = rq->svc, .actor = rq->actor, .op = 0 };
	struct smime_error err;

	if (o == NULL)
		return;
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *desc = json_string_value(json_object_get(o, "description"));
	if (*name == '\0' || !api_text(name, MAX_GROUP_NAME) || strchr(name, '/') != NULL) {
		reply_error(rq, 400, "bad-request", "name: 1 to 128 characters, no control "
		    "characters and no '/'");
		goto out;
	}
	if (desc != NULL && !api_text(desc, 1024)) {
		reply_error(rq, 400, "bad-request", "description: at most 1024 characters");
		goto out;
	}
	service_new_id(go.gr.id);
	go.gr.name = strdup(name);
	go.gr.description = strdup(desc != NULL ? desc : "");
	go.gr.created = service_now();
	if (go.gr.name == NULL || go.gr.description == NULL)
		reply_error(rq, 500, "internal", "out of memory");
	else if (rq_commit(rq, group_fn, &go, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_json(rq, 201, group_json(&go.gr));
out:
	store_group_clear(&go.gr);
	json_decref(o);
}

void
h_group_get(struct request *rq)
{
	ANSWER_RECORD(rq, struct store_group, group_get, rq->params[0], group_json,
	    store_group_clear);
}

static void
group_change(struct request *rq, int op)
{
	struct group_op go = { .svc = rq->svc, .actor = rq->actor, .op = op,
		.group_key = rq->params[0], .user_key = rq->n_params > 1 ? rq->params[1] : NULL };
	struct smime_error err;

	if (rq_commit(rq, group_fn, &go, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_empty(rq, 204);
	store_group_clear(&go.gr);
}

void
h_group_patch(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "name", JSON_STRING, false },
		{ "description", JSON_STRING, false },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct group_op go = { .svc = rq->svc, .actor = rq->actor, .op = 4,
		.group_key = rq->params[0] };
	struct smime_error err;

	if (o == NULL)
		return;
	go.name = json_string_value(json_object_get(o, "name"));
	go.description = json_string_value(json_object_get(o, "description"));
	if (go.name != NULL && (*go.name == '\0' || !api_text(go.name, MAX_GROUP_NAME) ||
	    strchr(go.name, '/') != NULL)) {
		reply_error(rq, 400, "bad-request", "name: 1 to 128 characters, no control "
		    "characters and no '/'");
		goto out;
	}
	if (go.description != NULL && !api_text(go.description, 1024)) {
		reply_error(rq, 400, "bad-request", "description: at most 1024 characters");
		goto out;
	}
	if (rq_commit(rq, group_fn, &go, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_json(rq, 200, group_json(&go.gr));
out:
	store_group_clear(&go.gr);
	json_decref(o);
}

void
h_group_delete(struct request *rq)
{
	group_change(rq, 1);
}

void
h_group_member_put(struct request *rq)
{
	group_change(rq, 2);
}

void
h_group_member_delete(struct request *rq)
{
	group_change(rq, 3);
}

/*
 * smime admin: the people and their devices (user, group, device): adding,
 * listing, showing, updating and deleting them, and purging a deleted user.
 * The table of actions that calls these is in cmd_admin.c.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin.h"
#include "cli.h"

static const char *const platforms[] = { "ios", "android", "macos", "windows", "linux" };
/* ---- user --------------------------------------------------------------- */

static const char *const user_fields[] = { "id", "name", "emails", "groups", "created", "updated" };

static int
show_user(const struct args *a, const json_t *answer)
{
	return print_fields(answer, user_fields, N(user_fields));
}

static json_t *
string_array(const char *first, const char **v, size_t n)
{
	json_t *arr = json_array();

	if (arr != NULL && first != NULL)
		json_array_append_new(arr, json_string(first));
	for (size_t i = 0; arr != NULL && i < n; i++)
		json_array_append_new(arr, json_string(v[i]));
	return arr;
}

int
user_add(struct args *a)
{
	json_t *body = json_pack("{s:o}", "emails", string_array(a->pos[0], a->aliases,
	    a->n_aliases));

	if (body == NULL)
		return admin_oom();
	if (a->reuse)
		json_object_set_new(body, "reuse_addresses", json_true());
	if (a->name != NULL)
		json_object_set_new(body, "name", json_string(a->name));
	if (a->n_groups > 0)
		json_object_set_new(body, "groups", string_array(NULL, a->groups, a->n_groups));
	return call_show(a, "POST", strdup("/api/v1/users"), body, show_id, NULL);
}

static char *
user_emails(const json_t *u)
{
	return text_of(json_object_get(u, "emails"));
}

int
user_list(struct args *a)
{
	static const struct column cols[] = { { "ID", "id", NULL }, { "EMAILS", NULL, user_emails },
		{ "NAME", "name", NULL }, { "GROUPS", "groups", NULL } };
	static const struct column gone[] = { { "ID", "id", NULL }, { "EMAILS", NULL, user_emails },
		{ "NAME", "name", NULL }, { "DELETED", "deleted", NULL } };
	struct admin_query q[] = { { "group", a->n_groups > 0 ? a->groups[0] : NULL },
		{ "deleted", a->deleted ? "true" : NULL } };

	if (a->n_groups > 1)
		return usage_error(a->cmd, "one --group at a time");
	if (a->deleted && a->n_groups > 0)
		return usage_error(a->cmd, "--deleted and --group: deleted users belong to no group");
	return a->deleted ? list_show(a, "/api/v1/users", q, N(q), true, gone, N(gone)) :
	    list_show(a, "/api/v1/users", q, N(q), true, cols, N(cols));
}

int
user_show(struct args *a)
{
	return call_show(a, "GET", admin_path("/api/v1/users/%s", a->pos[0]), NULL, show_user,
	    NULL);
}

int
user_delete(struct args *a)
{
	char done[512];

	snprintf(done, sizeof(done), "user %s deleted (its devices too; its certificates stay "
	    "recorded and are not revoked; its archived keys stay until smime admin user purge)",
	    a->pos[0]);
	return call_show(a, "DELETE", admin_path("/api/v1/users/%s", a->pos[0]), NULL, NULL, done);
}

static int
show_purge(const struct args *a, const json_t *answer)
{
	if (!g.quiet)
		fprintf(stderr, "user %s purged: %" JSON_INTEGER_FORMAT " archived keys destroyed "
		    "(audited)\n", a->pos[0], json_integer_value(json_object_get(answer, "keys")));
	return EXIT_OK;
}

int
user_purge(struct args *a)
{
	if (a->reason == NULL)
		return usage_error(a->cmd, "--reason TEXT is required: the purge is audited");
	return call_show(a, "POST", admin_path("/api/v1/users/%s/purge", a->pos[0]),
	    json_pack("{s:s}", "reason", a->reason), show_purge, NULL);
}

/* ---- user import-csv (admin_csv.c) ----------------------------------------- */

int
user_import_csv(struct args *a)
{
	return admin_import_csv(a->pos[0], &a->conn);
}

/* ---- group -------------------------------------------------------------- */

static const char *const group_fields[] = { "id", "name", "description", "members", "created" };

static int
show_group(const struct args *a, const json_t *answer)
{
	return print_fields(answer, group_fields, N(group_fields));
}

int
group_add(struct args *a)
{
	json_t *body = json_pack("{s:s}", "name", a->pos[0]);

	if (body == NULL)
		return admin_oom();
	if (a->description != NULL)
		json_object_set_new(body, "description", json_string(a->description));
	return call_show(a, "POST", strdup("/api/v1/groups"), body, show_id, NULL);
}

int
group_list(struct args *a)
{
	static const struct column cols[] = { { "ID", "id", NULL }, { "NAME", "name", NULL },
		{ "MEMBERS", "members", NULL }, { "DESCRIPTION", "description", NULL } };

	return list_show(a, "/api/v1/groups", NULL, 0, true, cols, N(cols));
}

/* The group and its members (every page of GET /api/v1/users?group=). */
int
group_show(struct args *a)
{
	static const struct column cols[] = { { "EMAIL", "email", NULL },
		{ "NAME", "name", NULL }, { "ID", "id", NULL } };
	struct admin_conn *c = NULL;
	json_t *gr = NULL, *members = NULL;
	char *path = admin_path("/api/v1/groups/%s", a->pos[0]);
	int rc;

	if (path == NULL)
		return admin_oom();
	if ((rc = admin_conn_new(&a->conn, &c)) != EXIT_OK ||
	    (rc = admin_call(c, "GET", path, NULL, &gr)) != EXIT_OK)
		goto out;
	struct admin_query q[] = { { "group", admin_str(gr, "id") } };
	if ((rc = admin_list(c, "/api/v1/users", q, N(q), true, NULL, 0, &members, NULL)) !=
	    EXIT_OK)
		goto out;
	if (g.json) {
		json_object_set(gr, "members", members);
		json_out(json_incref(gr));
		goto out;
	}
	if ((rc = show_group(a, gr)) != EXIT_OK)
		goto out;
	size_t i;
	json_t *m;
	/* The primary address as a column of its own. */
	json_array_foreach(members, i, m)
		json_object_set_new(m, "email", json_incref(json_array_get(json_object_get(m,
		    "emails"), 0)));
	printf("members:\n");
	if (json_array_size(members) > 0)
		rc = admin_print_table(members, cols, N(cols));
out:
	json_decref(gr);
	json_decref(members);
	admin_conn_free(c);
	free(path);
	return rc;
}

int
group_delete(struct args *a)
{
	char done[512];

	snprintf(done, sizeof(done), "group %s deleted (its members stay)", a->pos[0]);
	return call_show(a, "DELETE", admin_path("/api/v1/groups/%s", a->pos[0]), NULL, NULL, done);
}

static int
group_membership(struct args *a, bool add)
{
	char done[512];

	snprintf(done, sizeof(done), "%s %s group %s", a->pos[1], add ? "added to" :
	    "removed from", a->pos[0]);
	return call_show(a, add ? "PUT" : "DELETE", admin_path("/api/v1/groups/%s/members/%s",
	    a->pos[0], a->pos[1]), NULL, NULL, done);
}

int
group_add_member(struct args *a)
{
	return group_membership(a, true);
}

int
group_remove_member(struct args *a)
{
	return group_membership(a, false);
}

/* ---- device ------------------------------------------------------------- */

static const char *const device_fields[] = { "id", "user", "name", "platform", "created",
	"updated" };

static int
show_device(const struct args *a, const json_t *answer)
{
	json_t *shown = named(answer);
	int rc = shown != NULL ? print_fields(shown, device_fields, N(device_fields)) : admin_oom();

	json_decref(shown);
	return rc;
}

int
device_add(struct args *a)
{
	char set[128];

	join(set, sizeof(set), platforms, N(platforms));
	if (a->user == NULL || a->name == NULL || a->platform == NULL)
		return usage_error(a->cmd, "--user, --name and --platform are required");
	if (!one_of(a->platform, platforms, N(platforms)))
		return usage_error(a->cmd, "--platform: one of %s", set);
	return call_show(a, "POST", strdup("/api/v1/devices"), json_pack("{s:s,s:s,s:s}", "user",
	    a->user, "name", a->name, "platform", a->platform), show_id, NULL);
}

int
device_list(struct args *a)
{
	static const struct column cols[] = { { "ID", "id", NULL }, { "USER", NULL, user_cell },
		{ "PLATFORM", "platform", NULL }, { "NAME", "name", NULL } };
	struct admin_query q[] = { { "user", a->user } };

	return list_show(a, "/api/v1/devices", q, N(q), true, cols, N(cols));
}

int
device_show(struct args *a)
{
	return call_show(a, "GET", admin_path("/api/v1/devices/%s", a->pos[0]), NULL, show_device,
	    NULL);
}

int
device_delete(struct args *a)
{
	char done[512];

	snprintf(done, sizeof(done), "device %s deleted (its certificates stay recorded and are "
	    "not revoked)", a->pos[0]);
	return call_show(a, "DELETE", admin_path("/api/v1/devices/%s", a->pos[0]), NULL, NULL,
	    done);
}


/*
 * smime admin user update USER [--name NAME] [--primary EMAIL] [--alias EMAIL]...:
 * the addresses are the primary (given, or the current one) and the aliases
 * (given: all of them; else the current ones, so that a new primary keeps
 * the old one as an alias).
 */
int
user_update(struct args *a)
{
	struct admin_conn *c = NULL;
	json_t *u = NULL, *body = NULL, *emails = NULL;
	char *path = admin_path("/api/v1/users/%s", a->pos[0]);
	int rc;

	if ((a->given & (A_NAME | A_ALIAS | A_PRIMARY)) == 0) {
		free(path);
		return usage_error(a->cmd, "nothing to change: give --name, --primary or --alias");
	}
	if (path == NULL || (body = json_object()) == NULL) {
		free(path);
		return admin_oom();
	}
	if (a->given & A_NAME)
		json_object_set_new(body, "name", json_string(a->name));
	if ((a->given & (A_ALIAS | A_PRIMARY)) == 0)
		return call_show(a, "PATCH", path, body, show_user, NULL);
	if ((rc = admin_conn_new(&a->conn, &c)) != EXIT_OK ||
	    (rc = admin_call(c, "GET", path, NULL, &u)) != EXIT_OK)
		goto out;
	json_t *cur = json_object_get(u, "emails");
	const char *old_primary = json_string_value(json_array_get(cur, 0));
	const char *primary = (a->given & A_PRIMARY) ? a->primary : old_primary;
	if (old_primary == NULL || (emails = json_array()) == NULL) {
		rc = old_primary == NULL ? admin_error(EXIT_IO, "io", 0, "the user has no "
		    "address") : admin_oom();
		goto out;
	}
	json_array_append_new(emails, json_string(primary));
	if (a->given & A_ALIAS) {
		for (size_t i = 0; i < a->n_aliases; i++)
			if (strcasecmp(a->aliases[i], primary) != 0)
				json_array_append_new(emails, json_string(a->aliases[i]));
	} else {
		size_t i;
		json_t *e;
		json_array_foreach(cur, i, e)
			if (strcasecmp(json_string_value(e), primary) != 0)
				json_array_append(emails, e);
	}
	json_object_set_new(body, "emails", emails);
	emails = NULL;
	admin_conn_free(c);
	c = NULL;
	json_decref(u);
	return call_show(a, "PATCH", path, body, show_user, NULL);
out:
	json_decref(u);
	json_decref(body);
	json_decref(emails);
	admin_conn_free(c);
	free(path);
	return rc;
}

int
device_update(struct args *a)
{
	json_t *body;
	char set[128];

	if ((a->given & (A_NAME | A_PLATFORM)) == 0)
		return usage_error(a->cmd, "nothing to change: give --name or --platform");
	join(set, sizeof(set), platforms, N(platforms));
	if ((a->given & A_PLATFORM) && !one_of(a->platform, platforms, N(platforms)))
		return usage_error(a->cmd, "--platform: one of %s", set);
	if ((body = json_object()) == NULL)
		return admin_oom();
	if (a->given & A_NAME)
		json_object_set_new(body, "name", json_string(a->name));
	if (a->given & A_PLATFORM)
		json_object_set_new(body, "platform", json_string(a->platform));
	return call_show(a, "PATCH", admin_path("/api/v1/devices/%s", a->pos[0]), body,
	    show_device, NULL);
}

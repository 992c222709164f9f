/*
 * smime admin: what the service trusts and publishes (trust, directory):
 * the trust collection and its distrust list, and the directory
 * publication's state and sync.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "cli.h"

/* ---- the trust collection -------------------------------------------------- */

#define TRUST_FILE_MAX (16u * 1024 * 1024)

/* Both lists: the collection (source service or imported), then the
 * distrust list (source distrusted), which wins over the collection. */
int
trust_list(struct args *a)
{
	static const struct column cols[] = { { "SHA256", "sha256", NULL },
		{ "SOURCE", "source", NULL }, { "NOT-AFTER", "not_after", NULL },
		{ "SUBJECT", "subject", NULL } };
	struct admin_conn *c = NULL;
	json_t *items = NULL, *dis = NULL;
	int rc;

	if ((rc = admin_conn_new(&a->conn, &c)) == EXIT_OK &&
	    (rc = admin_list(c, "/api/v1/trust", NULL, 0, false, NULL, 0, &items, NULL)) ==
	    EXIT_OK &&
	    (rc = admin_list(c, "/api/v1/distrust", NULL, 0, false, NULL, 0, &dis, NULL)) ==
	    EXIT_OK) {
		if (g.json)
			json_out(json_pack("{s:O,s:O}", "items", items, "distrusted", dis));
		else {
			json_t *all = json_copy(items);
			if (all == NULL || json_array_extend(all, dis) != 0)
				rc = admin_oom();
			else
				rc = admin_print_table(all, cols, N(cols));
			json_decref(all);
		}
	}
	json_decref(items);
	json_decref(dis);
	admin_conn_free(c);
	return rc;
}

static int
show_trust_report(const struct args *a, const json_t *answer)
{
	size_t i;
	json_t *row;

	(void)a;
	json_array_foreach(json_object_get(answer, "rows"), i, row)
		printf("%-8s %.64s  %s%s%s\n", admin_str(row, "status"), admin_str(row, "sha256"),
		    admin_str(row, "subject"), *admin_str(row, "message") ? ": " : "", admin_str(row, "message"));
	if (!g.quiet)
		fprintf(stderr, "smime: admin trust import: %" JSON_INTEGER_FORMAT " %s, %"
		    JSON_INTEGER_FORMAT " already there, %" JSON_INTEGER_FORMAT " refused\n",
		    json_integer_value(json_object_get(answer, "added")),
		    (a->given & A_DISTRUST) ? "distrusted" : "added",
		    json_integer_value(json_object_get(answer, "existing")),
		    json_integer_value(json_object_get(answer, "refused")));
	return json_integer_value(json_object_get(answer, "refused")) > 0 ? EXIT_INVALID :
	    EXIT_OK;
}

/* One file to the service; its report shown, or printed as JSON: exit
 * status 1 when a certificate was refused, either way. */
static int
trust_send(struct args *a, const char *path, json_t *body)
{
	struct admin_conn *c = NULL;
	json_t *answer = NULL;
	int rc;

	if ((rc = admin_conn_new(&a->conn, &c)) == EXIT_OK)
		rc = admin_call(c, "POST", path, body, &answer);
	if (rc == EXIT_OK && answer != NULL) {
		if (g.json) {
			json_out(json_incref(answer));
			rc = json_integer_value(json_object_get(answer, "refused")) > 0 ?
			    EXIT_INVALID : EXIT_OK;
		} else
			rc = show_trust_report(a, answer);
	}
	json_decref(answer);
	json_decref(body);
	admin_conn_free(c);
	return rc;
}

/* Each FILE (PEM, DER, PKCS#7, SST) goes to the service as it is. */
int
trust_import(struct args *a)
{
	int worst = EXIT_OK;

	for (int i = 0; i < a->n_pos; i++) {
		struct smime_error err;
		char *b64 = file_b64(a->pos[i], TRUST_FILE_MAX, &err);
		int rc;

		if (b64 == NULL)
			return fail("admin", &err);
		rc = trust_send(a, (a->given & A_DISTRUST) ? "/api/v1/distrust" : "/api/v1/trust",
		    json_pack("{s:s}", "file", b64));
		free(b64);
		if (rc != EXIT_OK && (worst == EXIT_OK || worst == EXIT_INVALID))
			worst = rc;
	}
	return worst;
}

int
trust_remove(struct args *a)
{
	bool dis = (a->given & A_DISTRUST) != 0;

	return call_show(a, "DELETE", admin_path(dis ? "/api/v1/distrust/%s" : "/api/v1/trust/%s",
	    a->pos[0]), NULL, NULL, dis ? "removed from the distrust list" :
	    "removed from the trust collection");
}

/* ---- the directory publication ------------------------------------------------ */

#define SYNC_WAIT 120                    /* seconds directory sync waits for the queue */

static const char *const directory_fields[] = { "configured", "url", "base", "filter",
	"connected", "pending", "last_success", "last_failure", "last_error" };

static int
show_directory(const struct args *a, const json_t *answer)
{
	static const struct column cols[] = { { "USER", "email", NULL },
		{ "ATTEMPTS", "attempts", NULL }, { "QUEUED", "queued", NULL },
		{ "NEXT", "next_attempt", NULL }, { "ERROR", "error", NULL } };
	const json_t *q = json_object_get(answer, "queue");
	int rc = print_fields(answer, directory_fields, N(directory_fields));

	(void)a;
	if (rc == EXIT_OK && json_array_size(q) > 0) {
		printf("\n");
		rc = admin_print_table(q, cols, N(cols));
	}
	return rc;
}

int
directory_status(struct args *a)
{
	return call_show(a, "GET", strdup("/api/v1/directory"), NULL, show_directory, NULL);
}

/* Queue everyone, then wait until the directory has them or gives up. */
int
directory_sync(struct args *a)
{
	struct admin_conn *c = NULL;
	json_t *answer = NULL, *status = NULL;
	json_int_t pending = -1;
	int rc;

	if ((rc = admin_conn_new(&a->conn, &c)) != EXIT_OK)
		return rc;
	if ((rc = admin_call(c, "POST", "/api/v1/directory/sync", NULL, &answer)) != EXIT_OK)
		goto out;
	if (!g.json && !g.quiet)
		fprintf(stderr, "smime: admin directory sync: %" JSON_INTEGER_FORMAT " users queued\n",
		    json_integer_value(json_object_get(answer, "queued")));
	for (int waited = 0; waited <= SYNC_WAIT * 2; waited++) {
		json_decref(status);
		status = NULL;
		if ((rc = admin_call(c, "GET", "/api/v1/directory", NULL, &status)) != EXIT_OK)
			goto out;
		pending = json_integer_value(json_object_get(status, "pending"));
		/* Done, or every user left has failed at least once: waiting
		 * longer only repeats the same failures. */
		bool all_failing = pending > 0;
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(status, "queue"), i, e)
			if (json_integer_value(json_object_get(e, "attempts")) == 0)
				all_failing = false;
		if (pending == 0 || (all_failing && (size_t)pending <=
		    json_array_size(json_object_get(status, "queue"))))
			break;
		usleep(500 * 1000);
	}
	if (g.json)
		json_out(json_pack("{s:O,s:O}", "sync", answer, "directory", status));
	else if (pending != 0)
		show_directory(a, status);
	if (pending != 0) {
		rc = admin_error(EXIT_IO, "not-published", 0, "%" JSON_INTEGER_FORMAT " users are "
		    "not published yet (smime admin directory status)", pending);
	} else if (!g.json && !g.quiet) {
		fprintf(stderr, "smime: admin directory sync: the directory has every user's "
		    "certificates\n");
	}
out:
	json_decref(answer);
	json_decref(status);
	admin_conn_free(c);
	return rc;
}

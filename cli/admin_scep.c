/*
 * smime admin: SCEP (device challenge, scep-profile, scep): a device's
 * one-time challenge, the SCEP profiles, and the requests that wait for an
 * approval.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "cli.h"

/* ---- SCEP: device challenges, SCEP profiles, requests waiting ------------ */

static const char *const scep_profile_fields[] = { "name", "ca", "rsa_min_bits", "ec_curves",
	"subject", "san_email", "non_repudiation", "validity_days", "renewal_days", "approval",
	"challenge_minutes", "allow_sha1", "created", "updated" };
static const char *const scep_request_fields[] = { "transaction", "status", "ca", "profile",
	"user", "device", "renewal", "renews", "certificate", "error", "created", "updated" };
static const char *const scep_statuses[] = { "pending", "issued", "rejected", "all" };

static int
show_challenge(const struct args *a, const json_t *answer)
{
	const char *ch = json_string_value(json_object_get(answer, "challenge"));

	(void)a;
	if (ch == NULL)
		return admin_error(EXIT_IO, "io", 0, "the answer holds no challenge");
	/* Alone on standard output, for CH=$(smime admin device challenge ...). */
	printf("%s\n", ch);
	if (!g.quiet)
		fprintf(stderr, "smime admin: challenge %s for device %s (%s, user %s, SCEP profile "
		    "%s), valid until %s; it is shown this once only and is single use\n",
		    admin_str(answer, "id"), admin_str(answer, "device"), admin_str(answer, "device_name"),
		    *admin_str(answer, "user_email") ? admin_str(answer, "user_email") : admin_str(answer, "user"),
		    admin_str(answer, "profile"), admin_str(answer, "expires"));
	return EXIT_OK;
}

int
device_challenge(struct args *a)
{
	json_t *body;

	if (a->profile == NULL)
		return usage_error(a->cmd, "--profile is required (a SCEP profile, see smime admin "
		    "scep-profile list)");
	if ((body = json_pack("{s:s}", "profile", a->profile)) == NULL)
		return admin_oom();
	if (a->given & A_SECONDS)
		json_object_set_new(body, "seconds", json_integer(a->seconds));
	return call_show(a, "POST", admin_path("/api/v1/devices/%s/scep-challenge", a->pos[0]),
	    body, show_challenge, NULL);
}

static int
show_scep_profile(const struct args *a, const json_t *answer)
{
	(void)a;
	return print_fields(answer, scep_profile_fields, N(scep_profile_fields));
}

/* "P-256,P-384" as a JSON array; "" is none.  The service checks the names. */
static json_t *
curves_array(const char *list)
{
	json_t *arr = json_array();

	for (const char *p = list; arr != NULL && *p != '\0';) {
		size_t n = strcspn(p, ",");
		const char *s = p, *e = p + n;

		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (e > s && json_array_append_new(arr, json_stringn(s, (size_t)(e - s))) != 0) {
			json_decref(arr);
			return NULL;
		}
		p += n + (p[n] == ',');
	}
	return arr;
}

/* Set the fields of a SCEP profile that options were given for. */
static int
scep_profile_apply(const struct args *a, json_t *p)
{
	json_t *curves;
	int bad = 0;

	if (a->given & A_CA)
		bad |= json_object_set_new(p, "ca", json_string(a->ca));
	if (a->given & A_RSA_MIN_BITS)
		bad |= json_object_set_new(p, "rsa_min_bits", json_integer(a->rsa_min_bits));
	if (a->given & A_EC_CURVES) {
		if ((curves = curves_array(a->ec_curves)) == NULL)
			return admin_oom();
		bad |= json_object_set_new(p, "ec_curves", curves);
	}
	if (a->given & A_SUBJECT)
		bad |= json_object_set_new(p, "subject", json_string(a->subject));
	if (a->given & A_SAN_EMAIL)
		bad |= json_object_set_new(p, "san_email", json_string(a->san_email));
	if (a->given & A_NON_REPUDIATION)
		bad |= json_object_set_new(p, "non_repudiation", json_boolean(a->non_repudiation));
	if (a->given & A_VALIDITY_DAYS)
		bad |= json_object_set_new(p, "validity_days", json_integer(a->validity_days));
	if (a->given & A_RENEWAL_DAYS)
		bad |= json_object_set_new(p, "renewal_days", json_integer(a->renewal_days));
	if (a->given & A_APPROVAL)
		bad |= json_object_set_new(p, "approval", json_boolean(a->approval));
	if (a->given & A_CHALLENGE_MINUTES)
		bad |= json_object_set_new(p, "challenge_minutes",
		    json_integer(a->challenge_minutes));
	if (a->given & A_ALLOW_SHA1)
		bad |= json_object_set_new(p, "allow_sha1", json_boolean(a->allow_sha1));
	return bad != 0 ? admin_oom() : EXIT_OK;
}


int
scep_profile_list(struct args *a)
{
	static const struct column cols[] = { { "NAME", "name", NULL }, { "CA", "ca", NULL },
		{ "RSA-MIN", "rsa_min_bits", NULL }, { "EC-CURVES", "ec_curves", NULL },
		{ "DAYS", "validity_days", NULL }, { "RENEW", "renewal_days", NULL },
		{ "APPROVAL", "approval", NULL }, { "CHALLENGE-MIN", "challenge_minutes", NULL },
		{ "SUBJECT", "subject", NULL } };

	return list_show(a, "/api/v1/scep-profiles", NULL, 0, false, cols, N(cols));
}

int
scep_profile_show(struct args *a)
{
	return call_show(a, "GET", admin_path("/api/v1/scep-profiles/%s", a->pos[0]), NULL,
	    show_scep_profile, NULL);
}

int
scep_profile_create(struct args *a)
{
	json_t *body;
	int rc;

	if (a->ca == NULL)
		return usage_error(a->cmd, "--ca is required (the CA that issues, see smime admin ca "
		    "list)");
	if ((body = json_pack("{s:s}", "name", a->pos[0])) == NULL)
		return admin_oom();
	if ((rc = scep_profile_apply(a, body)) != EXIT_OK) {
		json_decref(body);
		return rc;
	}
	return call_show(a, "POST", strdup("/api/v1/scep-profiles"), body, show_scep_profile,
	    NULL);
}

/* Read the profile, change what the options say, and put it back whole. */
int
scep_profile_update(struct args *a)
{
	struct admin_conn *c = NULL;
	json_t *p = NULL, *ans = NULL;
	char *path;
	int rc;

	if ((a->given & SCEP_PROFILE_OPTS) == 0)
		return usage_error(a->cmd, "nothing to change: give the options of the fields to "
		    "change (see --help)");
	if ((path = admin_path("/api/v1/scep-profiles/%s", a->pos[0])) == NULL)
		return usage_error(a->cmd, "the name is too long");
	if ((rc = admin_conn_new(&a->conn, &c)) != EXIT_OK ||
	    (rc = admin_call(c, "GET", path, NULL, &p)) != EXIT_OK)
		goto out;
	if (p == NULL) {
		rc = admin_error(EXIT_IO, "io", 0, "the answer of GET %s is empty", path);
		goto out;
	}
	/* The service's own record of the profile; a PUT ignores them. */
	json_object_del(p, "created");
	json_object_del(p, "updated");
	if ((rc = scep_profile_apply(a, p)) != EXIT_OK ||
	    (rc = admin_call(c, "PUT", path, p, &ans)) != EXIT_OK)
		goto out;
	if (g.json)
		json_out(ans != NULL ? json_incref(ans) : json_pack("{s:b}", "ok", 1));
	else if (ans != NULL)
		rc = show_scep_profile(a, ans);
out:
	json_decref(p);
	json_decref(ans);
	admin_conn_free(c);
	free(path);
	return rc;
}

int
scep_profile_delete(struct args *a)
{
	char done[512];

	snprintf(done, sizeof(done), "SCEP profile %s deleted (the challenges made for it are "
	    "void; certificates it issued stay)", a->pos[0]);
	return call_show(a, "DELETE", admin_path("/api/v1/scep-profiles/%s", a->pos[0]), NULL,
	    NULL, done);
}

int
scep_list(struct args *a)
{
	static const struct column cols[] = { { "TRANSACTION", "transaction", NULL },
		{ "STATUS", "status", NULL }, { "PROFILE", "profile", NULL },
		{ "USER", NULL, user_cell }, { "DEVICE", NULL, device_cell },
		{ "RENEWAL", "renewal", NULL }, { "CREATED", "created", NULL } };
	struct admin_conn *c = NULL;
	json_t *items = NULL;
	char set[128];
	int rc;

	join(set, sizeof(set), scep_statuses, N(scep_statuses));
	if (a->status != NULL && !one_of(a->status, scep_statuses, N(scep_statuses)))
		return usage_error(a->cmd, "--status: one of %s", set);
	struct admin_query q[] = { { "status", a->status } };
	if ((rc = admin_conn_new(&a->conn, &c)) == EXIT_OK &&
	    (rc = admin_list(c, "/api/v1/scep/requests", q, N(q), true, NULL, a->limit, &items,
	    NULL)) == EXIT_OK) {
		if (g.json)
			json_out(json_pack("{s:O}", "items", items));
		else
			rc = admin_print_table(items, cols, N(cols));
	}
	json_decref(items);
	admin_conn_free(c);
	return rc;
}

static int
show_scep_request(const struct args *a, const json_t *answer)
{
	json_t *shown = named(answer);
	int rc = shown != NULL ? print_fields(shown, scep_request_fields,
	    N(scep_request_fields)) : admin_oom();

	(void)a;
	json_decref(shown);
	return rc;
}

int
scep_show(struct args *a)
{
	return call_show(a, "GET", admin_path("/api/v1/scep/requests/%s", a->pos[0]), NULL,
	    show_scep_request, NULL);
}

static int
show_approved(const struct args *a, const json_t *answer)
{
	const json_t *cert = json_object_get(answer, "certificate");
	const char *serial = json_string_value(json_object_get(cert, "serial"));

	if (serial == NULL)
		return admin_error(EXIT_IO, "io", 0, "the answer names no certificate");
	printf("%s\n", serial);
	if (!g.quiet)
		fprintf(stderr, "smime admin: SCEP request %s approved: certificate %s issued for %s "
		    "(SCEP profile %s), valid until %s; the device fetches it at its next poll\n",
		    a->pos[0], serial, admin_str(cert, "email"), admin_str(cert, "profile"),
		    admin_str(cert, "not_after"));
	return EXIT_OK;
}

int
scep_approve(struct args *a)
{
	return call_show(a, "POST", admin_path("/api/v1/scep/requests/%s/approve", a->pos[0]),
	    NULL, show_approved, NULL);
}

static int
show_rejected(const struct args *a, const json_t *answer)
{
	const json_t *rq = json_object_get(answer, "request");

	if (!g.quiet)
		fprintf(stderr, "smime admin: SCEP request %s rejected (%s); the device learns it at "
		    "its next poll\n", a->pos[0], admin_str(rq, "error"));
	return EXIT_OK;
}

int
scep_reject(struct args *a)
{
	json_t *body = NULL;

	if (a->reason != NULL && (body = json_pack("{s:s}", "reason", a->reason)) == NULL)
		return admin_oom();
	return call_show(a, "POST", admin_path("/api/v1/scep/requests/%s/reject", a->pos[0]),
	    body, show_rejected, NULL);
}

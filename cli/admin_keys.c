/*
 * smime admin: the key archive and who may reach it (import, recover,
 * recovery, token, audit): importing PKCS#12 files (one or a folder of
 * them), key recovery and its two-person requests, the admin tokens, and
 * the audit log.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "cleanse.h"

#include "admin.h"
#include "cli.h"

/* ---- token -------------------------------------------------------------- */

static const char *const token_roles[] = { "admin", "operator", "recovery", "auditor" };

int
token_create(struct args *a)
{
	struct admin_conn *c = NULL;
	json_t *body = NULL, *ans = NULL;
	const char *secret;
	bool known = false;
	int rc;

	/* No default: a token gets the role it is made for, and no more. */
	if (a->role == NULL)
		return usage_error(a->cmd, "--role is required: admin, operator, recovery or auditor");
	for (size_t i = 0; i < N(token_roles); i++)
		known |= strcmp(a->role, token_roles[i]) == 0;
	if (!known)
		return usage_error(a->cmd, "--role: admin, operator, recovery or auditor, not '%s'",
		    a->role);
	if ((a->given & A_EXPIRES_DAYS) && (a->expires_days < 1 || a->expires_days > 3650))
		return usage_error(a->cmd, "--expires-days: 1 to 3650");
	body = json_pack("{s:s,s:s}", "name", a->pos[0], "role", a->role);
	if (body != NULL && (a->given & A_EXPIRES_DAYS))
		json_object_set_new(body, "expires_days", json_integer(a->expires_days));
	if (body == NULL)
		return admin_oom();
	if ((rc = admin_conn_new(&a->conn, &c)) != EXIT_OK ||
	    (rc = admin_call(c, "POST", "/api/v1/tokens", body, &ans)) != EXIT_OK)
		goto out;
	if ((secret = json_string_value(json_object_get(ans, "token"))) == NULL) {
		rc = admin_error(EXIT_IO, "io", 0, "the answer holds no token");
		goto out;
	}
	if (g.json)
		json_out(json_incref(ans));
	else
		printf("%s\n", secret);
	if (!g.quiet)
		fprintf(stderr, "smime admin: %s token %s (%s) created; its secret is shown this "
		    "once only: keep it now\n", admin_str(ans, "role"), admin_str(ans, "id"), admin_str(ans, "name"));
out:
	json_decref(body);
	json_decref(ans);
	admin_conn_free(c);
	return rc;
}

int
token_list(struct args *a)
{
	static const struct column cols[] = { { "ID", "id", NULL }, { "NAME", "name", NULL },
		{ "ROLE", "role", NULL }, { "CREATED", "created", NULL },
		{ "EXPIRES", "expires", NULL }, { "LAST-USED", "last_used", NULL },
		{ "REVOKED", "revoked_at", NULL }, { "CREATED-BY", "created_by", NULL } };

	return list_show(a, "/api/v1/tokens", NULL, 0, false, cols, N(cols));
}

int
token_revoke(struct args *a)
{
	char done[512];

	snprintf(done, sizeof(done), "token %s revoked", a->pos[0]);
	return call_show(a, "DELETE", admin_path("/api/v1/tokens/%s", a->pos[0]), NULL, NULL, done);
}

/* ---- audit -------------------------------------------------------------- */

/* YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, as the service takes them (it checks the values). */
static bool
audit_time_ok(const char *s)
{
	static const char day[] = "dddd-dd-dd", utc[] = "dddd-dd-ddTdd:dd:ddZ";
	const char *form = strlen(s) == sizeof(day) - 1 ? day : strlen(s) == sizeof(utc) - 1 ?
	    utc : NULL;

	for (size_t i = 0; form != NULL && form[i] != '\0'; i++)
		if (form[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != form[i])
			return false;
	return form != NULL;
}

int
audit(struct args *a)
{
	static const struct column cols[] = { { "SEQ", "seq", NULL }, { "TIME", "time", NULL },
		{ "ACTOR", "actor", NULL }, { "ACTION", "action", NULL },
		{ "OBJECT", "object", NULL }, { "DETAIL", "detail", NULL } };
	struct admin_conn *c = NULL;
	json_t *items = NULL;
	char *next = NULL, cursor[32], actor[64];
	const char *after = a->after;
	struct admin_query q[] = { { "actor", a->actor }, { "action", a->action },
		{ "user", a->user }, { "since", a->since }, { "until", a->until } };
	int rc;

	/* A token's id alone is that token: the log's actor is "token:ID". */
	if (a->actor != NULL && strlen(a->actor) == 32 && strspn(a->actor,
	    "0123456789abcdef") == 32) {
		snprintf(actor, sizeof(actor), "token:%s", a->actor);
		q[0].value = actor;
	}
	if ((a->since != NULL && !audit_time_ok(a->since)) ||
	    (a->until != NULL && !audit_time_ok(a->until)))
		return usage_error(a->cmd, "--since, --until: a UTC time as 2026-12-07T15:00:00Z or "
		    "a day as 2026-12-07");

	/*
	 * A sequence number (the SEQ column) is made the audit list's cursor,
	 * "a.SEQ"; anything else is taken as a cursor the service gave ("next").
	 */
	if (after != NULL && after[0] != '\0' && strspn(after, "0123456789") == strlen(after)) {
		if (strlen(after) > 18)
			return usage_error(a->cmd, "--after: a sequence number of at most 18 digits");
		snprintf(cursor, sizeof(cursor), "a.%s", after);
		after = cursor;
	}
	if ((rc = admin_conn_new(&a->conn, &c)) != EXIT_OK ||
	    (rc = admin_list(c, "/api/v1/audit", q, N(q), true, after, a->limit, &items,
	    &next)) != EXIT_OK)
		goto out;
	if (g.json) {
		json_t *j = json_pack("{s:O}", "items", items);
		if (j != NULL && a->limit != 0)
			json_object_set_new(j, "next", next != NULL ? json_string(next) : json_null());
		json_out(j);
	} else {
		json_t *last = json_array_get(items, json_array_size(items) - 1);
		rc = admin_print_table(items, cols, N(cols));
		if (next != NULL && !g.quiet) {
			char *seq = text_of(json_object_get(last, "seq"));
			fprintf(stderr, "more entries follow: --after %s\n", seq != NULL ? seq : "?");
			free(seq);
		}
	}
out:
	free(next);
	json_decref(items);
	admin_conn_free(c);
	return rc;
}

/* ---- importing PKCS#12 files into the key archive ------------------------------ */


static int
show_import_report(const struct args *a, const json_t *answer)
{
	size_t i;
	json_t *row;

	(void)a;
	json_array_foreach(json_object_get(answer, "rows"), i, row)
		printf("%-8s %-10s %s%s  %s%s%s\n", admin_str(row, "status"), admin_str(row, "purpose"),
		    admin_str(row, "serial"), json_is_true(json_object_get(row, "expired")) ?
		    " (expired)" : "", admin_str(row, "subject"), *admin_str(row, "message") ? ": " : "",
		    admin_str(row, "message"));
	return json_integer_value(json_object_get(answer, "refused")) > 0 ? EXIT_INVALID :
	    EXIT_OK;
}

/* smime admin import --user USER [--password-file FILE] FILE.pfx... */
int
admin_import(struct args *a)
{
	struct smime_error err;
	char *password = NULL;
	int worst = EXIT_OK;

	if (a->user == NULL)
		return usage_error(a->cmd, "--user is required");
	g.password_file = a->password_file;
	smime_error_clear(&err);
	if ((password = p12_password(false, &err)) == NULL && err.code != SMIME_OK)
		return fail("admin", &err);
	for (int i = 0; i < a->n_pos; i++) {
		char *b64 = file_b64(a->pos[i], PFX_MAX, &err);
		int rc;

		if (b64 == NULL) {
			secret_free(password);
			return fail("admin", &err);
		}
		json_t *body = password != NULL ? json_pack("{s:s,s:s}", "pkcs12", b64, "password",
		    password) : json_pack("{s:s}", "pkcs12", b64);
		if (!g.quiet && !g.json && a->n_pos > 1)
			fprintf(stderr, "%s:\n", a->pos[i]);
		rc = call_show(a, "POST", admin_path("/api/v1/users/%s/certificates/import", a->user),
		    body, show_import_report, NULL);
		OPENSSL_cleanse(b64, strlen(b64));
		free(b64);
		if (rc != EXIT_OK && (worst == EXIT_OK || worst == EXIT_INVALID))
			worst = rc;
	}
	secret_free(password);
	return worst;
}

/* Write the PKCS#12 of a recovery answer to a->out, and say so. */
static int
recovery_written(const struct args *a, json_t *ans)
{
	const char *b64 = json_string_value(json_object_get(ans, "pkcs12"));
	unsigned char *p12 = NULL;
	size_t p12_len = 0;
	int rc;

	if (b64 == NULL || (p12 = decode_p12(b64, &p12_len)) == NULL)
		return admin_error(EXIT_IO, "io", 0, "the service answered no PKCS#12");
	if ((rc = write_out(a->out, p12, p12_len)) == EXIT_OK) {
		if (g.json) {
			json_object_del(ans, "pkcs12");
			json_out(json_incref(ans));
		} else if (!g.quiet)
			fprintf(stderr, "smime: %s: %" JSON_INTEGER_FORMAT " keys with their "
			    "certificates written to %s (the export is audited)\n", a->cmd,
			    json_integer_value(json_object_get(ans, "keys")), a->out);
	}
	OPENSSL_clear_free(p12, p12_len);
	return rc;
}

/* -o FILE (never a terminal) and the export's password; NULL after an error in *rc_r. */
static char *
recovery_password(struct args *a, int *rc_r)
{
	struct smime_error err;
	char *password;

	*rc_r = EXIT_OK;
	/* Private keys go into a file, never onto a screen. */
	if (a->out == NULL || (strcmp(a->out, "-") == 0 && isatty(STDOUT_FILENO))) {
		*rc_r = usage_error(a->cmd, "-o FILE is required: the export holds private keys");
		return NULL;
	}
	g.password_file = a->password_file;
	smime_error_clear(&err);
	if ((password = p12_password(true, &err)) == NULL)
		*rc_r = err.code != SMIME_OK ? fail("admin", &err) : usage_error(a->cmd, "the "
		    "PKCS#12 needs a password: --password-file FILE or SMIME_P12_PASSWORD (no "
		    "terminal to ask on)");
	return password;
}

/* smime admin recover --user USER [--serial S] --reason TEXT -o FILE.p12 [--password-file FILE] */
int
admin_recover(struct args *a)
{
	struct admin_conn *c = NULL;
	json_t *ans = NULL, *body = NULL;
	char *password = NULL, *path = NULL;
	int rc;

	if (a->user == NULL)
		return usage_error(a->cmd, "--user is required");
	if (a->reason == NULL || a->reason[0] == '\0')
		return usage_error(a->cmd, "--reason TEXT is required: why the keys are recovered "
		    "goes into the audit log");
	if ((password = recovery_password(a, &rc)) == NULL)
		return rc;
	body = json_pack("{s:s,s:s}", "password", password, "reason", a->reason);
	if (body != NULL && a->serial != NULL)
		json_object_set_new(body, "serial", json_string(a->serial));
	if ((path = admin_path("/api/v1/users/%s/recover", a->user)) == NULL)
		rc = admin_error(EXIT_USAGE, "usage", 0, "the user is too long");
	else if ((rc = admin_conn_new(&a->conn, &c)) == EXIT_OK)
		rc = admin_call(c, "POST", path, body, &ans);
	if (rc == EXIT_OK && json_object_get(ans, "request") != NULL) {
		/* recovery_approval = 2: a request, which a second token approves. */
		const json_t *r = json_object_get(ans, "request");
		if (g.json)
			json_out(json_incref(ans));
		else {
			printf("%s\n", admin_str(r, "id"));
			if (!g.quiet)
				fprintf(stderr, "smime: %s: recovery request %s made (expires %s): a "
				    "second, different token approves it (smime admin recovery approve "
				    "%s), then this token fetches it (smime admin recovery fetch %s -o "
				    "FILE)\n", a->cmd, admin_str(r, "id"), admin_str(r, "expires"), admin_str(r, "id"),
				    admin_str(r, "id"));
		}
	} else if (rc == EXIT_OK)
		rc = recovery_written(a, ans);
	json_decref(ans);
	json_decref(body);
	free(path);
	admin_conn_free(c);
	secret_free(password);
	return rc;
}

/* ---- recovery requests (recovery_approval = 2) ---------------------------------- */

static const char *const recovery_fields[] = { "id", "user", "email", "certificate", "signing",
	"reason", "status", "requester", "approver", "created", "expires", "decided" };

/* What a request asks for: the whole history, one key, or a signing key. */
static char *
recovery_keys(const json_t *item)
{
	if (!json_is_string(json_object_get(item, "certificate")))
		return strdup("history");
	return strdup(json_is_true(json_object_get(item, "signing")) ? "signing-key" : "one-key");
}

static int
show_recovery(const struct args *a, const json_t *answer)
{
	(void)a;
	return print_fields(answer, recovery_fields, N(recovery_fields));
}

int
recovery_list(struct args *a)
{
	static const struct column cols[] = { { "ID", "id", NULL }, { "USER", "user", NULL },
		{ "KEYS", NULL, recovery_keys }, { "STATUS", "status", NULL },
		{ "REQUESTER", "requester", NULL }, { "APPROVER", "approver", NULL },
		{ "EXPIRES", "expires", NULL }, { "REASON", "reason", NULL } };

	return list_show(a, "/api/v1/recovery-requests", NULL, 0, true, cols, N(cols));
}

int
recovery_show(struct args *a)
{
	return call_show(a, "GET", admin_path("/api/v1/recovery-requests/%s", a->pos[0]), NULL,
	    show_recovery, NULL);
}

int
recovery_approve(struct args *a)
{
	char done[256];

	snprintf(done, sizeof(done), "recovery request %s approved: its requester may fetch it "
	    "now", a->pos[0]);
	return call_show(a, "POST", admin_path("/api/v1/recovery-requests/%s/approve", a->pos[0]),
	    NULL, NULL, done);
}

int
recovery_fetch(struct args *a)
{
	struct admin_conn *c = NULL;
	json_t *ans = NULL, *body = NULL;
	char *password = NULL, *path = NULL;
	int rc;

	if ((password = recovery_password(a, &rc)) == NULL)
		return rc;
	body = json_pack("{s:s}", "password", password);
	if ((path = admin_path("/api/v1/recovery-requests/%s/export", a->pos[0])) == NULL)
		rc = admin_error(EXIT_USAGE, "usage", 0, "the request id is too long");
	else if ((rc = admin_conn_new(&a->conn, &c)) == EXIT_OK)
		rc = admin_call(c, "POST", path, body, &ans);
	if (rc == EXIT_OK)
		rc = recovery_written(a, ans);
	json_decref(ans);
	json_decref(body);
	free(path);
	admin_conn_free(c);
	secret_free(password);
	return rc;
}

/* ---- importing a folder of PKCS#12 files ---------------------------------------- */

/* For sk_OPENSSL_STRING_pop_free (OPENSSL_free is a macro). */
static void
cli_string_free(char *s)
{
	OPENSSL_free(s);
}

#define FOLDER_MAX_FILES 100000
#define PASSWORDS_MAX (16u * 1024 * 1024)

struct pw_entry {
	char *file, *password;
};

static void
pw_free(struct pw_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].file);
		secret_free(v[i].password);
	}
	free(v);
}

/*
 * The passwords CSV: a header with the columns "file" and "password"
 * (RFC 4180 quoting), one row per file of the folder (its name, not a path).
 */
static int
read_passwords(const char *path, struct pw_entry **v_r, size_t *n_r)
{
	struct smime_error err;
	size_t len = 0, n = 0, cap = 0;
	char *data = (char *)admin_slurp_file(path, PASSWORDS_MAX, &len, &err);
	struct pw_entry *v = NULL;
	int col_file = -1, col_pw = -1, line = 0;

	*v_r = NULL;
	*n_r = 0;
	if (data == NULL)
		return fail("admin", &err);
	char *p = data, *end = data + len;
	while (p < end) {
		/* One record: fields split at commas outside quotes. */
		char *fields[8];
		int nf = 0;
		line++;
		while (nf < 8) {
			char *out = p, *start = p;
			bool quoted = p < end && *p == '"';
			if (quoted)
				p++;
			while (p < end) {
				if (quoted && *p == '"') {
					if (p + 1 < end && p[1] == '"') {
						*out++ = '"';
						p += 2;
						continue;
					}
					p++;
					quoted = false;
					continue;
				}
				if (!quoted && (*p == ',' || *p == '\n' || *p == '\r'))
					break;
				*out++ = *p++;
			}
			char sep = p < end ? *p : '\n';
			*out = '\0';
			fields[nf++] = start;
			if (p < end)
				p++;
			if (sep == '\r' && p < end && *p == '\n')
				p++;
			if (sep != ',')
				break;
		}
		if (nf == 1 && fields[0][0] == '\0')
			continue;
		if (col_file < 0) {
			for (int i = 0; i < nf; i++) {
				if (strcasecmp(fields[i], "file") == 0)
					col_file = i;
				else if (strcasecmp(fields[i], "password") == 0)
					col_pw = i;
			}
			if (col_file < 0 || col_pw < 0) {
				OPENSSL_clear_free(data, len);
				return admin_error(EXIT_MALFORMED, "input", 0, "%s: the header needs the "
				    "columns file and password", path);
			}
			continue;
		}
		if (col_file >= nf || col_pw >= nf) {
			OPENSSL_clear_free(data, len);
			pw_free(v, n);
			return admin_error(EXIT_MALFORMED, "input", 0, "%s:%d: fewer fields than the "
			    "header", path, line);
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			struct pw_entry *nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				OPENSSL_clear_free(data, len);
				pw_free(v, n);
				return admin_error(EXIT_IO, "internal", 0, "out of memory");
			}
			v = nv;
		}
		v[n].file = strdup(fields[col_file]);
		v[n].password = strdup(fields[col_pw]);
		n++;
	}
	OPENSSL_clear_free(data, len);
	*v_r = v;
	*n_r = n;
	return EXIT_OK;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * smime admin import-folder DIR --passwords FILE.csv: every .pfx and .p12
 * file of DIR, each to the user whose address its certificate carries,
 * with a progress line on a terminal and a report per file.
 */
int
import_folder(struct args *a)
{
	struct pw_entry *pws = NULL;
	size_t n_pw = 0, n_files = 0, cap = 0;
	char **files = NULL;
	DIR *d = NULL;
	struct dirent *de;
	json_t *report = json_array();
	struct admin_conn *c = NULL;
	long imported = 0, existing = 0, failed = 0;
	bool tty = isatty(STDERR_FILENO) && !g.quiet;
	int rc;

	if (a->passwords == NULL)
		return usage_error(a->cmd, "--passwords FILE.csv is required (columns file, password)");
	if ((rc = read_passwords(a->passwords, &pws, &n_pw)) != EXIT_OK)
		return rc;
	if ((d = opendir(a->pos[0])) == NULL) {
		pw_free(pws, n_pw);
		return admin_error(EXIT_IO, "io", 0, "%s: %s", a->pos[0], strerror(errno));
	}
	while ((de = readdir(d)) != NULL && n_files < FOLDER_MAX_FILES) {
		size_t l = strlen(de->d_name);
		if (l < 5 || (strcasecmp(de->d_name + l - 4, ".pfx") != 0 &&
		    strcasecmp(de->d_name + l - 4, ".p12") != 0))
			continue;
		if (n_files == cap) {
			cap = cap ? cap * 2 : 64;
			char **nf = realloc(files, cap * sizeof(*files));
			if (nf == NULL)
				break;
			files = nf;
		}
		files[n_files++] = strdup(de->d_name);
	}
	closedir(d);
	if (files != NULL)
		qsort(files, n_files, sizeof(*files), name_cmp);
	if ((rc = admin_conn_new(&a->conn, &c)) != EXIT_OK)
		goto out;
	for (size_t i = 0; i < n_files; i++) {
		char path[4096];
		const char *password = NULL, *why = NULL, *email = NULL;
		json_t *row = json_pack("{s:s}", "file", files[i]), *ans = NULL;
		struct smime_error err;
		struct smime_bag *bag = NULL;
		STACK_OF(OPENSSL_STRING) *emails = NULL;
		unsigned char *data = NULL;
		size_t len = 0;

		if (tty)
			fprintf(stderr, "\rimporting: %zu/%zu %-40.40s", i + 1, n_files, files[i]);
		for (size_t k = 0; k < n_pw; k++)
			if (strcmp(pws[k].file, files[i]) == 0)
				password = pws[k].password;
		snprintf(path, sizeof(path), "%s/%s", a->pos[0], files[i]);
		if (password == NULL)
			why = "no password for it in the passwords file";
		else if ((data = admin_slurp_file(path, PFX_MAX, &len, &err)) == NULL)
			why = err.message;
		else if ((bag = smime_bag_new()) == NULL ||
		    smime_pkcs12_read(bag, data, len, password, &err) != 0)
			why = bag == NULL ? "out of memory" : err.message;
		else if (bag->n_keys == 0 || bag->key_cert[0] < 0)
			why = "no key with its certificate in it";
		else if ((emails = smime_cert_emails(sk_X509_value(bag->certs, bag->key_cert[0]))) ==
		    NULL || sk_OPENSSL_STRING_num(emails) == 0)
			why = "its certificate carries no address";
		if (why == NULL) {
			/* The first address of the certificate that is a user's. */
			for (int k = 0; k < sk_OPENSSL_STRING_num(emails) && email == NULL; k++) {
				json_t *u = NULL;
				char *up = admin_path("/api/v1/users/%s", sk_OPENSSL_STRING_value(emails, k));
				if (up != NULL && admin_call(c, "GET", up, NULL, &u) == EXIT_OK)
					email = sk_OPENSSL_STRING_value(emails, k);
				free(up);
				json_decref(u);
			}
			if (email == NULL)
				why = "no user has the certificate's address";
		}
		if (why == NULL) {
			char *b64 = b64_of(data, len);
			if (b64 == NULL)
				why = "out of memory";
			else {
				char *ip = admin_path("/api/v1/users/%s/certificates/import", email);
				json_t *body = json_pack("{s:s,s:s}", "pkcs12", b64, "password", password);
				rc = ip != NULL ? admin_call(c, "POST", ip, body, &ans) : EXIT_USAGE;
				json_decref(body);
				free(ip);
				OPENSSL_cleanse(b64, strlen(b64));
				free(b64);
				if (rc != EXIT_OK)
					why = "the service refused it (see the message above)";
			}
		}
		json_object_set_new(row, "user", json_string(email != NULL ? email : ""));
		if (why != NULL) {
			json_object_set_new(row, "status", json_string("error"));
			json_object_set_new(row, "message", json_string(why));
			failed++;
		} else {
			json_t *keys = json_object_get(ans, "rows");
			long imp = (long)json_integer_value(json_object_get(ans, "imported"));
			long ex = (long)json_integer_value(json_object_get(ans, "existing"));
			long ref = (long)json_integer_value(json_object_get(ans, "refused"));
			const char *st = ref > 0 ? "error" : imp > 0 ? "imported" : "exists";
			json_object_set_new(row, "status", json_string(st));
			json_object_set(row, "keys", keys);
			if (ref > 0) {
				size_t x;
				json_t *kr;
				json_array_foreach(keys, x, kr)
					if (strcmp(admin_str(kr, "status"), "refused") == 0)
						json_object_set_new(row, "message",
						    json_string(admin_str(kr, "message")));
				failed++;
			} else if (imp > 0)
				imported++;
			else
				existing += ex > 0;
		}
		json_array_append_new(report, row);
		json_decref(ans);
		sk_OPENSSL_STRING_pop_free(emails, cli_string_free);
		smime_bag_free(bag);
		if (data != NULL)
			OPENSSL_clear_free(data, len);
	}
	if (tty)
		fprintf(stderr, "\r%60s\r", "");
	if (g.json)
		json_out(json_pack("{s:I,s:I,s:I,s:O}", "imported", (json_int_t)imported,
		    "existing", (json_int_t)existing, "failed", (json_int_t)failed, "files", report));
	else {
		size_t i;
		json_t *row;
		json_array_foreach(report, i, row)
			printf("%-8s %s  %s%s%s\n", admin_str(row, "status"), admin_str(row, "file"),
			    admin_str(row, "user"), *admin_str(row, "message") ? ": " : "", admin_str(row, "message"));
		if (!g.quiet)
			fprintf(stderr, "smime: admin import-folder: %ld imported, %ld already there, "
			    "%ld failed, of %zu files\n", imported, existing, failed, n_files);
	}
	rc = failed > 0 ? EXIT_INVALID : EXIT_OK;
out:
	admin_conn_free(c);
	json_decref(report);
	for (size_t i = 0; i < n_files; i++)
		free(files[i]);
	free(files);
	pw_free(pws, n_pw);
	return rc;
}

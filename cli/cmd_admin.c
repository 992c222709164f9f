/*
 * smime admin: the admin command line of smimed, over its REST API
 * (docs/openapi.yaml; the HTTP client is admin_http.c).
 *
 * `smime admin OBJECT ACTION [ARGS]`: one table of actions (verbs[]), one
 * option parser for all of them (each action says which options it takes),
 * one function per action, in a file per noun group (admin.h names them).
 * With --json every action prints the service's JSON answer on standard
 * output; without it, a table or text.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>

#include "cleanse.h"
#include "admin.h"
#include "cli.h"

/* ---- output helpers ---------------------------------------------------- */

/* A JSON value as one line of text (malloc'd, control characters replaced). */
char *
text_of(const json_t *v)
{
	char *s = NULL;

	if (v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0) ||
	    (json_is_array(v) && json_array_size(v) == 0)) {
		s = strdup("-");
	} else if (json_is_string(v)) {
		s = strdup(json_string_value(v));
	} else if (json_is_integer(v)) {
		if (asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
			s = NULL;
	} else if (json_is_real(v)) {
		if (asprintf(&s, "%g", json_real_value(v)) < 0)
			s = NULL;
	} else if (json_is_boolean(v)) {
		s = strdup(json_is_true(v) ? "yes" : "no");
	} else if (json_is_array(v)) {
		size_t i, len = 0;
		json_t *e;
		json_array_foreach(v, i, e) {
			char *t = text_of(e), *ns;
			size_t tl = t ? strlen(t) : 0;
			if (t == NULL || (ns = realloc(s, len + tl + 2)) == NULL) {
				free(t);
				free(s);
				return NULL;
			}
			s = ns;
			if (len > 0)
				s[len++] = ',';
			memcpy(s + len, t, tl + 1);
			len += tl;
			free(t);
		}
	} else {
		s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
	}
	if (s != NULL)
		admin_sanitize(s);
	return s;
}

/* Characters on screen, not bytes: UTF-8 continuation bytes do not count. */
static size_t
width(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}


/* The user of an item by address (the id when the service named none). */
char *
user_cell(const json_t *item)
{
	const json_t *v = json_object_get(item, "user_email");

	return text_of(v != NULL ? v : json_object_get(item, "user"));
}

/* The device of an item by name (the id when the service named none). */
char *
device_cell(const json_t *item)
{
	const json_t *v = json_object_get(item, "device_name");
	const char *id = json_string_value(json_object_get(item, "device"));

	return text_of(v != NULL && id != NULL && *id != '\0' ? v : json_object_get(item,
	    "device"));
}

/*
 * obj for print_fields: its user by address and name, its device by name,
 * each with the id beside it (the service adds user_email, user_name and
 * device_name beside the ids).  A new reference.
 */
json_t *
named(const json_t *obj)
{
	json_t *c = json_deep_copy(obj);
	const char *uid = json_string_value(json_object_get(obj, "user"));
	const char *email = json_string_value(json_object_get(obj, "user_email"));
	const char *uname = json_string_value(json_object_get(obj, "user_name"));
	const char *did = json_string_value(json_object_get(obj, "device"));
	const char *dname = json_string_value(json_object_get(obj, "device_name"));
	char *t = NULL;

	if (c == NULL)
		return NULL;
	if (email != NULL && uid != NULL && asprintf(&t, "%s%s%s%s, id %s", email,
	    uname != NULL && *uname ? " (" : "", uname != NULL ? uname : "",
	    uname != NULL && *uname ? ")" : "", uid) >= 0) {
		json_object_set_new(c, "user", json_string(t));
		free(t);
	}
	if (dname != NULL && did != NULL && *did != '\0' && asprintf(&t, "%s, id %s", dname,
	    did) >= 0) {
		json_object_set_new(c, "device", json_string(t));
		free(t);
	}
	json_object_del(c, "user_email");
	json_object_del(c, "user_name");
	json_object_del(c, "device_name");
	return c;
}

static char *
cell(const json_t *item, const struct column *col)
{
	return col->fn != NULL ? col->fn(item) : text_of(json_object_get(item, col->key));
}

/* One line per item, columns aligned, the header first. */
int
admin_print_table(const json_t *items, const struct column *cols, size_t ncol)
{
	size_t n = json_array_size(items), w[16] = { 0 };
	char **t = calloc((n + 1) * ncol, sizeof(*t));
	int rc = EXIT_OK;

	if (t == NULL || ncol > N(w)) {
		free(t);
		return admin_error(EXIT_IO, "internal", 0, "out of memory");
	}
	for (size_t k = 0; k < ncol; k++)
		t[k] = strdup(cols[k].head);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < ncol; k++)
			t[(i + 1) * ncol + k] = cell(json_array_get(items, i), &cols[k]);
	for (size_t i = 0; i < (n + 1) * ncol; i++) {
		if (t[i] == NULL) {
			rc = admin_error(EXIT_IO, "internal", 0, "out of memory");
			goto out;
		}
		if (width(t[i]) > w[i % ncol])
			w[i % ncol] = width(t[i]);
	}
	for (size_t i = 0; i <= n; i++) {
		for (size_t k = 0; k < ncol; k++) {
			const char *s = t[i * ncol + k];
			if (k + 1 == ncol)
				printf("%s\n", s);
			else
				printf("%s%*s  ", s, (int)(w[k] - width(s)), "");
		}
	}
out:
	for (size_t i = 0; i < (n + 1) * ncol; i++)
		free(t[i]);
	free(t);
	return rc;
}

/* "key: value" lines for the fields of one object that it has. */
int
print_fields(const json_t *obj, const char *const *keys, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++)
		if (json_object_get(obj, keys[i]) != NULL && strlen(keys[i]) > w)
			w = strlen(keys[i]);
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_object_get(obj, keys[i]);
		char *s;
		if (v == NULL)
			continue;
		if ((s = text_of(v)) == NULL)
			return admin_error(EXIT_IO, "internal", 0, "out of memory");
		printf("%s:%*s %s\n", keys[i], (int)(w - strlen(keys[i])), "", s);
		free(s);
	}
	return EXIT_OK;
}

const char *
admin_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : "";
}

bool
one_of(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

void
join(char *buf, size_t size, const char *const *set, size_t n)
{
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strncat(buf, set[i], size - strlen(buf) - 1);
		if (i + 1 < n)
			strncat(buf, ", ", size - strlen(buf) - 1);
	}
}

/* Every string that goes into JSON must be UTF-8. */
bool
admin_utf8_ok(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

int
admin_oom(void)
{
	return admin_error(EXIT_IO, "internal", 0, "out of memory");
}

/* ---- one request, its answer shown -------------------------------------- */

/*
 * Send one request (taking path and body) and show the answer: the JSON
 * with --json ({"ok":true} for an empty answer), else show(); done is said
 * on standard error when the answer is empty.
 */
int
call_show(struct args *a, const char *method, char *path, json_t *body, show_fn show,
    const char *done)
{
	struct admin_conn *c = NULL;
	json_t *answer = NULL;
	int rc;

	if (path == NULL) {
		json_decref(body);
		return admin_error(EXIT_USAGE, "usage", 0, "an argument is too long");
	}
	if ((rc = admin_conn_new(&a->conn, &c)) == EXIT_OK)
		rc = admin_call(c, method, path, body, &answer);
	if (rc == EXIT_OK) {
		if (g.json)
			json_out(answer != NULL ? json_incref(answer) : json_pack("{s:b}", "ok", 1));
		else if (answer != NULL && show != NULL)
			rc = show(a, answer);
		else if (done != NULL && !g.quiet)
			fprintf(stderr, "%s\n", done);
	}
	json_decref(answer);
	json_decref(body);
	admin_conn_free(c);
	free(path);
	return rc;
}

/* The whole list, as one table or {"items":[...]}. */
int
list_show(struct args *a, const char *path, const struct admin_query *q, size_t n_q, bool paged,
    const struct column *cols, size_t ncol)
{
	struct admin_conn *c = NULL;
	json_t *items = NULL;
	int rc;

	if ((rc = admin_conn_new(&a->conn, &c)) == EXIT_OK &&
	    (rc = admin_list(c, path, q, n_q, paged, NULL, 0, &items, NULL)) == EXIT_OK) {
		if (g.json)
			json_out(json_pack("{s:O}", "items", items));
		else
			rc = admin_print_table(items, cols, ncol);
	}
	json_decref(items);
	admin_conn_free(c);
	return rc;
}

int
show_id(const struct args *a, const json_t *answer)
{
	const char *id = json_string_value(json_object_get(answer, "id"));

	if (id == NULL)
		return admin_error(EXIT_IO, "io", 0, "the answer names no id");
	printf("%s\n", id);
	return EXIT_OK;
}

/* The file at path (- for standard input), at most max octets, NUL-terminated. */
unsigned char *
admin_slurp_file(const char *path, size_t max, size_t *len_r, struct smime_error *err)
{
	BIO *in = open_input(path, err);
	unsigned char *d = NULL, chunk[16384];
	size_t len = 0;
	int n;

	if (in == NULL)
		return NULL;
	while ((n = BIO_read(in, chunk, sizeof(chunk))) > 0) {
		unsigned char *nd;
		if ((size_t)n > max - len) {
			smime_error_set(err, SMIME_E_INPUT, "%s: larger than %zu MiB", path, max >> 20);
			goto fail;
		}
		if ((nd = realloc(d, len + (size_t)n + 1)) == NULL) {
			smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto fail;
		}
		d = nd;
		memcpy(d + len, chunk, (size_t)n);
		len += (size_t)n;
	}
	BIO_free(in);
	if (d == NULL) {
		smime_error_set(err, SMIME_E_INPUT, "%s: empty", path);
		return NULL;
	}
	d[len] = '\0';
	*len_r = len;
	return d;
fail:
	free(d);
	BIO_free(in);
	return NULL;
}

/* Write len bytes to -o FILE (atomically, 0600) or standard output. */
int
write_out(const char *path, const void *data, size_t len)
{
	struct smime_error err;
	struct output out;
	bool ok;

	if (output_open(&out, path, &err) != 0)
		return fail("admin", &err);
	ok = len == 0 || BIO_write(out.bio, data, (int)len) == (int)len;
	if (output_close(&out, ok, &err) != 0)
		return fail("admin", &err);
	if (!ok)
		return admin_error(EXIT_IO, "io", 0, "cannot write %s", path != NULL ? path :
		    "standard output");
	return EXIT_OK;
}

/* The PKCS#12 of the answer, base64-decoded and checked (malloc'd, cleansed by the caller). */
unsigned char *
decode_p12(const char *b64, size_t *len_r)
{
	size_t n = strlen(b64);
	unsigned char *d = malloc(n / 4 * 3 + 4);
	const unsigned char *p;
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	int l1 = 0, l2 = 0;
	PKCS12 *p12;

	if (d == NULL || ctx == NULL || n > INT_MAX)
		goto fail;
	EVP_DecodeInit(ctx);
	if (EVP_DecodeUpdate(ctx, d, &l1, (const unsigned char *)b64, (int)n) < 0 ||
	    EVP_DecodeFinal(ctx, d + l1, &l2) < 0)
		goto fail;
	p = d;
	if ((p12 = d2i_PKCS12(NULL, &p, l1 + l2)) == NULL)
		goto fail;
	PKCS12_free(p12);
	EVP_ENCODE_CTX_free(ctx);
	*len_r = (size_t)(l1 + l2);
	return d;
fail:
	ERR_clear_error();
	EVP_ENCODE_CTX_free(ctx);
	if (d != NULL)
		OPENSSL_cleanse(d, n / 4 * 3 + 4);
	free(d);
	return NULL;
}

/* data[len] in base64, NUL-terminated (caller frees; it may be a secret:
 * cleanse before freeing), or NULL when out of memory. */
char *
b64_of(const unsigned char *data, size_t len)
{
	char *b64 = malloc(len / 3 * 4 + 8);

	if (b64 != NULL)
		EVP_EncodeBlock((unsigned char *)b64, data, (int)len);
	return b64;
}

/* The file at path (at most max octets) in base64; NULL with err set. */
char *
file_b64(const char *path, size_t max, struct smime_error *err)
{
	size_t len = 0;
	unsigned char *data = admin_slurp_file(path, max, &len, err);
	char *b64;

	if (data == NULL)
		return NULL;
	if ((b64 = b64_of(data, len)) == NULL)
		smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	OPENSSL_clear_free(data, len);
	return b64;
}

/* ---- the table of actions, help, options, dispatch ---------------------- */

static const struct verb verbs[] = {
	{ "user", "add", user_add, A_NAME | A_GROUP | A_ALIAS | X_REUSE, 1, 1, "EMAIL",
	  "EMAIL [--name NAME] [--group GROUP]... [--alias EMAIL]... [--reuse-addresses]",
	  "Create a user with EMAIL as primary address and the --alias addresses, in the\n"
	  "groups named (made when missing).  Prints the new user's id.\n\n"
	  "  --name NAME         display name\n"
	  "  --group GROUP       a group to join (repeatable)\n"
	  "  --alias EMAIL       another address of the user (repeatable)\n"
	  "  --reuse-addresses   take addresses that a deleted user holds (else refused);\n"
	  "                      the deleted user keeps its keys, recoverable by its id\n" },
	{ "user", "list", user_list, A_GROUP | X_DELETED, 0, 0, "", "[--group GROUP] [--deleted]",
	  "List every user (all pages): id, addresses, name, groups.\n\n"
	  "  --group GROUP     only the members of GROUP (id or name)\n"
	  "  --deleted         the deleted users instead, with when they were deleted\n" },
	{ "user", "show", user_show, 0, 1, 1, "USER", "USER",
	  "Show one user, named by id or by any of its addresses.\n" },
	{ "user", "delete", user_delete, 0, 1, 1, "USER", "USER",
	  "Delete a user and the user's devices.  Its certificates stay recorded and are\n"
	  "not revoked (revoke them first with smime admin cert revoke if they must be);\n"
	  "its archived keys stay, recoverable (smime admin recover), until a purge.\n" },
	{ "user", "purge", user_purge, A_REASON, 1, 1, "USER", "USER --reason TEXT",
	  "Destroy a deleted user's archived keys, and the user (its certificates stay\n"
	  "recorded), audited with the reason.  Refused for a user who is not deleted,\n"
	  "and before archive_retention_days after the deletion.  Nothing else destroys\n"
	  "an archived key.\n\n"
	  "  --reason TEXT     why (required; kept in the audit log)\n" },
	{ "user", "update", user_update, A_NAME | A_ALIAS | A_PRIMARY, 1, 1, "USER",
	  "USER [--name NAME] [--primary EMAIL] [--alias EMAIL]...",
	  "Change a user's name or addresses (PATCH /api/v1/users/USER).\n\n"
	  "  --name NAME       the display name\n"
	  "  --primary EMAIL   the primary address (the old one stays as an alias,\n"
	  "                    unless --alias gives them all)\n"
	  "  --alias EMAIL     the aliases, all of them (repeatable; replaces the current\n"
	  "                    ones)\n" },
	{ "user", "import-csv", user_import_csv, 0, 1, 1, "FILE", "FILE",
	  "Create users from a CSV file (RFC 4180; at most 16 MiB; - for standard\n"
	  "input).  The first line names the columns: email (required), and optionally\n"
	  "name, groups and aliases (lists separated by ';').  The rows are sent in\n"
	  "chunks of 100, each with the header line; quoted fields may hold commas,\n"
	  "quotes (doubled) and line breaks.  Prints one line per row (line, email,\n"
	  "created / exists / error, message) and a summary; exits with 1 when a row\n"
	  "failed.\n" },
	{ "group", "add", group_add, A_DESCRIPTION, 1, 1, "NAME", "NAME [--description TEXT]",
	  "Create a group.  Prints the new group's id.\n\n"
	  "  --description TEXT  what the group is for\n" },
	{ "group", "list", group_list, 0, 0, 0, "", "", "List every group and its number of members.\n" },
	{ "group", "show", group_show, 0, 1, 1, "GROUP", "GROUP",
	  "Show one group, named by id or name, and its members (address and name).\n"
	  "With --json: the group and \"members\", the users.\n" },
	{ "group", "delete", group_delete, 0, 1, 1, "GROUP", "GROUP",
	  "Delete a group; its members stay.\n" },
	{ "group", "add-member", group_add_member, 0, 2, 2, "GROUP USER", "GROUP USER",
	  "Add a user (id or address) to a group (id or name).\n" },
	{ "group", "remove-member", group_remove_member, 0, 2, 2, "GROUP USER", "GROUP USER",
	  "Remove a user from a group.\n" },
	{ "device", "add", device_add, A_USER | A_NAME | A_PLATFORM, 0, 0, "",
	  "--user USER --name NAME --platform ios|android|macos|windows|linux",
	  "Register a device for a user.  Prints the new device's id.\n\n"
	  "  --user USER       the owner (id or address)\n"
	  "  --name NAME       what the device is called\n"
	  "  --platform P      ios, android, macos, windows or linux\n" },
	{ "device", "list", device_list, A_USER, 0, 0, "", "[--user USER]",
	  "List every device (all pages).\n\n"
	  "  --user USER       only this user's devices\n" },
	{ "device", "show", device_show, 0, 1, 1, "ID", "ID", "Show one device.\n" },
	{ "device", "update", device_update, A_NAME | A_PLATFORM, 1, 1, "ID",
	  "ID [--name NAME] [--platform P]",
	  "Rename a device or change its platform.\n\n"
	  "  --name NAME       what the device is called\n"
	  "  --platform P      ios, android, macos, windows or linux\n" },
	{ "device", "delete", device_delete, 0, 1, 1, "ID", "ID",
	  "Delete a device.  Its certificates stay recorded and are not revoked.\n" },
	{ "device", "challenge", device_challenge, A_PROFILE | A_SECONDS, 1, 1, "ID",
	  "ID --profile NAME [--seconds N]",
	  "Make a SCEP challenge password for a device: it enrolls the device's user,\n"
	  "once, from the SCEP profile NAME (smime enroll --challenge-file, certmonger,\n"
	  "an MDM).  The challenge alone is printed, on one line, for\n"
	  "CH=$(smime admin device challenge ...).  It is shown this once only (the\n"
	  "service keeps a hash of it) and is single use: one enrollment, before it\n"
	  "expires.\n\n"
	  "  --profile NAME    the SCEP profile (smime admin scep-profile list)\n"
	  "  --seconds N       valid for N seconds, 1 to 604800 (default: the profile's\n"
	  "                    challenge_minutes)\n" },
	{ "profile", "list", profile_list, 0, 0, 0, "", "",
	  "List the certificate profiles: purpose, issuing CA, validity, key algorithm,\n"
	  "and whether the service may make the key.\n" },
	{ "profile", "show", profile_show, 0, 1, 1, "NAME", "NAME", "Show one profile.\n" },
	{ "profile", "create", profile_create, PROFILE_OPTS, 1, 1, "NAME",
	  "NAME --purpose P --ca ID [OPTIONS]",
	  "Create a certificate profile: what smime admin cert issue --profile NAME\n"
	  "issues.\n\n"
	  "  --purpose P         signing, encryption or dual\n"
	  "  --ca ID             the issuing CA (smime admin ca list)\n"
	  "  --validity-days N   1 to 825 (default 365)\n"
	  "  --key-alg ALG       for keys the service makes: ec-p256 (default), ec-p384,\n"
	  "                      ec-p521, rsa-2048, rsa-3072, rsa-4096\n"
	  "  --br-profile B      strict (default) or multipurpose (S/MIME BR)\n"
	  "  --[no-]generate     the service may make the key (default: no)\n" },
	{ "profile", "update", profile_update, PROFILE_OPTS, 1, 1, "NAME", "NAME [OPTIONS]",
	  "Change a profile: the options of profile create that are given; the others\n"
	  "keep their values.  Certificates issued before keep theirs.\n" },
	{ "profile", "delete", profile_delete, 0, 1, 1, "NAME", "NAME",
	  "Delete a profile; the certificates it issued stay.\n" },
	{ "scep-profile", "list", scep_profile_list, 0, 0, 0, "", "",
	  "List the SCEP profiles: issuing CA, smallest RSA key, EC curves, validity and\n"
	  "renewal window, whether an admin approves each request, challenge lifetime,\n"
	  "subject template.\n" },
	{ "scep-profile", "show", scep_profile_show, 0, 1, 1, "NAME", "NAME",
	  "Show one SCEP profile.\n" },
	{ "scep-profile", "create", scep_profile_create, SCEP_PROFILE_OPTS, 1, 1, "NAME",
	  "NAME --ca ID [OPTIONS]",
	  "Create a SCEP profile: what a device enrolling with a challenge of this\n"
	  "profile gets.  Subject, addresses and key usage come from the profile and the\n"
	  "user, never from the request.  The options left out take the defaults shown.\n"
	  "Prints the profile as created.\n\n"
	  "  --ca ID                  the issuing CA (smime admin ca list)\n"
	  "  --rsa-min-bits N         the smallest RSA key taken: 2048 to 8192, or 0 for\n"
	  "                           no RSA (default 2048)\n"
	  "  --ec-curves LIST         the EC curves taken, of P-256, P-384, P-521, comma-\n"
	  "                           separated; \"\" for none (default P-256)\n"
	  "  --subject TEMPLATE       comma-separated CN={email}, emailAddress={email},\n"
	  "                           serialNumber={device}, serialNumber={user}, each at\n"
	  "                           most once (default CN={email})\n"
	  "  --san-email all|primary  the user's addresses in the certificate (default all)\n"
	  "  --[no-]non-repudiation   keyUsage nonRepudiation too (default no)\n"
	  "  --validity-days N        1 to 825 (default 365)\n"
	  "  --renewal-days N         a renewal is taken this many days before expiry,\n"
	  "                           0 to the validity (default 30)\n"
	  "  --[no-]approval          each request waits for smime admin scep approve\n"
	  "                           (default no)\n"
	  "  --challenge-minutes N    a challenge's lifetime, 1 to 10080 (default 60)\n"
	  "  --[no-]allow-sha1        take requests signed with SHA-1 (default no)\n" },
	{ "scep-profile", "update", scep_profile_update, SCEP_PROFILE_OPTS, 1, 1, "NAME",
	  "NAME [OPTIONS]",
	  "Change a SCEP profile: the fields given with the options of smime admin\n"
	  "scep-profile create (--ca too) change, the others stay.  Certificates issued\n"
	  "already keep their fields.  Prints the profile as changed.\n" },
	{ "scep-profile", "delete", scep_profile_delete, 0, 1, 1, "NAME", "NAME",
	  "Delete a SCEP profile; the challenges made for it can no longer be used.\n" },
	{ "scep", "list", scep_list, A_STATUS | A_LIMIT, 0, 0, "",
	  "[--status pending|issued|rejected|all] [--limit N]",
	  "List SCEP requests, oldest first: transaction id, status, profile, user,\n"
	  "device, whether it renews a certificate, when it came.\n\n"
	  "  --status STATUS   pending (default: those waiting for an admin), issued,\n"
	  "                    rejected or all\n"
	  "  --limit N         at most N, 1 to 1000 (default 1000, the service's most)\n" },
	{ "scep", "show", scep_show, 0, 1, 1, "TRANSACTION", "TRANSACTION",
	  "Show one SCEP request, named by its transaction id.\n" },
	{ "scep", "approve", scep_approve, 0, 1, 1, "TRANSACTION", "TRANSACTION",
	  "Approve a pending SCEP request: the certificate is issued now, from the\n"
	  "request's profile, and the device gets it at its next CertPoll.  Prints the\n"
	  "certificate's serial (smime admin cert show SERIAL).\n" },
	{ "scep", "reject", scep_reject, A_REASON, 1, 1, "TRANSACTION",
	  "TRANSACTION [--reason TEXT]",
	  "Reject a pending SCEP request: the device gets FAILURE (badRequest) at its next\n"
	  "CertPoll, with the reason.\n\n"
	  "  --reason TEXT     up to 200 characters, recorded and sent to the device\n"
	  "                    (default \"rejected by an admin\")\n" },
	{ "ca", "list", ca_list, 0, 0, 0, "", "",
	  "List the certification authorities: role (root, intermediate, issuing),\n"
	  "parent, key, expiry, the number of the last CRL, subject.\n" },
	{ "ca", "show", ca_show, 0, 1, 1, "ID", "ID", "Show one CA.\n" },
	{ "ca", "import", ca_import, A_PASSWORD_FILE, 2, 2, "ID FILE",
	  "ID FILE [--password-file FILE]",
	  "Import an existing CA under the id ID: FILE is a PKCS#12 (the CA certificate\n"
	  "and its key; password from --password-file, else SMIME_P12_PASSWORD, else a\n"
	  "prompt) or PEM (the certificate, and its private key when the file holds\n"
	  "one).  Without its key the CA is trusted and its certificates published, but\n"
	  "it signs nothing here; an imported root never issues.\n" },
	{ "ca", "export", ca_export, A_CA | A_OUT, 0, 0, "", "[--ca ID] [-o FILE]",
	  "Write the chain of a CA (the CA first, up to its root) as PEM, for clients\n"
	  "and mail servers that must trust it.\n\n"
	  "  --ca ID           the CA (default: the first issuing CA of smime admin ca list)\n"
	  "  -o, --out FILE    the file, written atomically (default: standard output)\n" },
	{ "ca", "crl", ca_crl, 0, 1, 1, "ID", "ID",
	  "Make a new CRL of the CA now, and print its number.\n" },
	{ "trust", "list", trust_list, 0, 0, 0, "", "",
	  "List the trust collection: the service's own CAs (source service) and the\n"
	  "roots and intermediates imported (source imported); then the distrust list\n"
	  "(source distrusted), which wins over the collection.  With --json:\n"
	  "{\"items\":[...],\"distrusted\":[...]}.\n" },
	{ "trust", "import", trust_import, A_DISTRUST, 1, 64, "FILE", "[--distrust] FILE...",
	  "Import roots and intermediates into the trust collection from PEM, DER,\n"
	  "PKCS#7 certs-only or Microsoft SST files (Export-Certificate -Type SST).\n"
	  "Each certificate is added, found already there, or refused with the\n"
	  "reason (not a CA, a CA for TLS only (its extended key usage excludes\n"
	  "emailProtection), no subject key identifier, expired, distrusted, ...).\n"
	  "Exit status 1 when any was refused.\n\n"
	  "  --distrust   put every certificate of the files (CAs and end-entity\n"
	  "               certificates, e.g. Windows' disallowed store) on the distrust\n"
	  "               list instead: no validation of the service accepts them, nor\n"
	  "               what they issued, nor the same subject and key re-issued,\n"
	  "               even when trusted too; what they validated stops being\n"
	  "               looked up and published.\n" },
	{ "directory", "status", directory_status, 0, 0, 0, "", "",
	  "Show the publication to the LDAP directory (ldap_url in smimed.conf): where\n"
	  "it goes, whether the service is connected, the last success and failure, and\n"
	  "the users waiting, with how often each failed and why.\n" },
	{ "directory", "sync", directory_sync, 0, 0, 0, "", "",
	  "Publish every user's current certificates again (after the directory lost\n"
	  "them, or was restored), and wait until the directory has them all: exit\n"
	  "status 0 when it has, 7 with the users still waiting and why when the\n"
	  "directory keeps refusing or cannot be reached (the service keeps retrying).\n" },
	{ "trust", "remove", trust_remove, A_DISTRUST, 1, 1, "SHA256", "[--distrust] SHA256",
	  "Remove an imported certificate, named by its SHA-256 fingerprint, from the\n"
	  "trust collection (with --distrust: from the distrust list).  The service's\n"
	  "own CAs cannot be removed.\n" },
	{ "cert", "issue", cert_issue, A_USER | A_PROFILE | A_DEVICE | A_CSR | A_OUT |
	  A_PASSWORD_FILE, 0, 0, "",
	  "--user USER --profile PROFILE [--device ID] --csr FILE [-o FILE]\n"
	  "--user USER --profile PROFILE [--device ID] -o FILE [--password-file FILE]",
	  "Issue a certificate to a user from a profile (signing, encryption, dual, or\n"
	  "another name of smime admin profile list).\n"
	  "With --csr, from the PKCS#10 request in FILE (PEM or DER; the key stays where\n"
	  "it was made): the certificate and then its chain are written as PEM.\n"
	  "Without --csr the service makes the key (a profile that allows it), and the\n"
	  "key, certificate and chain are written as one PKCS#12 file, mode 0600, under\n"
	  "the password from --password-file, else SMIME_P12_PASSWORD, else a prompt.\n\n"
	  "  --user USER           the user (id or address)\n"
	  "  --profile PROFILE     the profile to issue from\n"
	  "  --device ID           the device a signing certificate is for\n"
	  "  --csr FILE            the certificate request\n"
	  "  -o, --out FILE        where to write (PEM: default standard output;\n"
	  "                        PKCS#12: required, never a terminal)\n"
	  "  --password-file FILE  the PKCS#12 password (first line)\n" },
	{ "cert", "list", cert_list, A_USER | A_DEVICE | A_STATUS | A_CA, 0, 0, "",
	  "[--user USER] [--device ID] [--status STATUS] [--ca ID]",
	  "List certificates (all pages): serial, status, purpose, profile, expiry, address.\n\n"
	  "  --user USER       only this user's\n"
	  "  --device ID       only this device's\n"
	  "  --status STATUS   active, superseded, expired or revoked\n"
	  "  --ca ID           only those this CA issued\n" },
	{ "cert", "show", cert_show, A_OUT, 1, 1, "SERIAL", "SERIAL [-o FILE]",
	  "Show one certificate.  SERIAL is hexadecimal as openssl x509 -serial prints\n"
	  "it (any case, colons allowed).\n\n"
	  "  -o, --out FILE    also write the certificate as PEM to FILE (- for standard\n"
	  "                    output, then without the details)\n" },
	{ "cert", "revoke", cert_revoke, A_REASON, 1, 1, "SERIAL", "SERIAL --reason REASON",
	  "Revoke a certificate; the CA's CRL is made anew.  Nothing else ever revokes.\n\n"
	  "  --reason REASON   as RFC 5280 5.3.1 names it: unspecified, keyCompromise,\n"
	  "                    affiliationChanged, superseded, cessationOfOperation,\n"
	  "                    privilegeWithdrawn (the reasons for a subscriber\n"
	  "                    certificate; a revocation is final: no certificateHold)\n" },
	{ "cert", "withdraw", cert_withdraw, 0, 1, 1, "SERIAL", "SERIAL",
	  "Withdraw a certificate imported from another CA from the lookup and the\n"
	  "directory publication (a colleague's address that moved on, a certificate\n"
	  "that must no longer be offered).  It stays recorded and its key stays in the\n"
	  "archive (smime admin recover goes on).  A certificate this service issued is\n"
	  "revoked instead (smime admin cert revoke).\n" },
	{ "token", "create", token_create, A_ROLE | A_EXPIRES_DAYS, 1, 1, "NAME",
	  "NAME --role ROLE [--expires-days N]",
	  "Create an admin token called NAME and print its secret, which the service\n"
	  "shows this once only.  Its role says what it may do (smime-admin(1), ROLES):\n\n"
	  "  --role ROLE       admin (everything), operator (users, groups, devices,\n"
	  "                    certificates, revocation, SCEP approvals), recovery\n"
	  "                    (key recovery), or auditor (reads, the audit log included)\n"
	  "  --expires-days N  refused from N days on (1 to 3650; default: never)\n" },
	{ "token", "list", token_list, 0, 0, 0, "", "",
	  "List the admin tokens (never their secrets): id, name, role, created,\n"
	  "expiry, last used (to the hour), revoked, and who made it (the id of the\n"
	  "token that did, or system for the first start's): two-person recovery\n"
	  "refuses an approver made by the requester's token or that made it.\n" },
	{ "token", "revoke", token_revoke, 0, 1, 1, "ID", "ID",
	  "Revoke an admin token; requests with it are refused from then on.\n" },
	{ "import-folder", NULL, import_folder, A_PASSWORDS, 1, 1, "DIR",
	  "DIR --passwords FILE.csv",
	  "Import every .pfx and .p12 file of DIR into the key archive, each to the\n"
	  "user whose address its certificate carries, with a progress line on a\n"
	  "terminal and a report per file: imported, exists (already there), or\n"
	  "error with the reason.  Importing the same folder again changes nothing.\n"
	  "Exit status 1 when any file failed.\n\n"
	  "  --passwords FILE.csv  the files' passwords: a header naming the columns\n"
	  "                        file and password, then one row per file name\n" },
	{ "recover", NULL, admin_recover, A_USER | A_OUT | A_PASSWORD_FILE | A_REASON | X_SERIAL, 0,
	  0, "",
	  "--user USER [--serial SERIAL] --reason TEXT -o FILE.p12 [--password-file FILE]",
	  "Write the user's whole archived history, every encryption and dual-use key\n"
	  "with its certificate, or the one key of --serial, as one PKCS#12 (AES-256)\n"
	  "to FILE (0600): for an administrator who must read a user's old mail, a\n"
	  "deleted user's too.  A signing key (an imported signing certificate's),\n"
	  "which would let its holder sign as the user, is never in the whole history:\n"
	  "only --serial exports it, audited as archive.recover-signing.  The export is\n"
	  "written to the audit log first, with the reason.\n"
	  "With recovery_approval = 2 in the service's configuration, nothing is written:\n"
	  "the service makes a recovery request, whose id is printed; a second, different\n"
	  "token approves it (smime admin recovery approve ID), and this token then\n"
	  "fetches it (smime admin recovery fetch ID -o FILE) before it expires.\n\n"
	  "  --user USER           the user (id or address; a deleted user by id, or by\n"
	  "                        the address while no new user holds it)\n"
	  "  --serial SERIAL       only this certificate's key (its serial, or its\n"
	  "                        SHA-256 fingerprint)\n"
	  "  --reason TEXT         why (required; kept in the audit log)\n"
	  "  -o, --out FILE        the PKCS#12 (never a terminal)\n"
	  "  --password-file FILE  its password (else SMIME_P12_PASSWORD, else a prompt)\n" },
	{ "recovery", "list", recovery_list, 0, 0, 0, "", "",
	  "List the recovery requests, oldest first: id, user, what it asks for\n"
	  "(history, one-key, or signing-key: one that lets its holder sign as the\n"
	  "user), status (pending, approved, exported, expired), requester, approver,\n"
	  "expiry, reason.\n" },
	{ "recovery", "show", recovery_show, 0, 1, 1, "ID", "ID",
	  "Show one recovery request.\n" },
	{ "recovery", "approve", recovery_approve, 0, 1, 1, "ID", "ID",
	  "Approve a pending recovery request.  Refused (exit 5, saying why): the token\n"
	  "that asked; a token it made, or that made it (directly or through tokens\n"
	  "made in turn); a token made at or after the request; an expired request.\n" },
	{ "recovery", "fetch", recovery_fetch, A_OUT | A_PASSWORD_FILE, 1, 1, "ID",
	  "ID -o FILE.p12 [--password-file FILE]",
	  "Export an approved recovery request as one PKCS#12 to FILE (0600): only the\n"
	  "token that asked for it, once, before the request expires (audited); it\n"
	  "holds the keys of the certificates recorded when the request was made.\n\n"
	  "  -o, --out FILE        the PKCS#12 (never a terminal)\n"
	  "  --password-file FILE  its password (else SMIME_P12_PASSWORD, else a prompt)\n" },
	{ "import", NULL, admin_import, A_USER | A_PASSWORD_FILE, 1, 64, "FILE",
	  "--user USER [--password-file FILE] FILE.pfx...",
	  "Import PKCS#12 files (modern, or legacy RC2/3DES) of a user into the key\n"
	  "archive: each key with its certificate is checked (the user's address, the\n"
	  "key matches, a chain to the trust collection, a subject key identifier),\n"
	  "classified as signing, encryption or dual-use, recorded and archived.  An\n"
	  "expired certificate joins the history.  Each is reported as imported,\n"
	  "exists or refused with the reason; exit status 1 when any was refused.\n\n"
	  "  --user USER           the user (id or address)\n"
	  "  --password-file FILE  the files' password (else SMIME_P12_PASSWORD, else a\n"
	  "                        prompt; none when there is no terminal)\n" },
	{ "audit", NULL, audit, A_AFTER | A_LIMIT | A_ACTOR | A_ACTION | A_USER | A_SINCE |
	  A_UNTIL, 0, 0, "",
	  "[--actor ACTOR] [--action ACTION] [--user USER] [--since T] [--until T]\n"
	  "[--after SEQ] [--limit N]",
	  "Show the audit log, oldest first, one line per entry: sequence number, time,\n"
	  "actor, action, object, detail.  The filters together narrow it:\n\n"
	  "  --actor ACTOR     token:ID (or the ID alone), or system\n"
	  "  --action ACTION   one action (cert.issue), or a family (cert.*)\n"
	  "  --user USER       entries about this user (an address, or an id, which\n"
	  "                    also finds a user who no longer exists)\n"
	  "  --since T         from T on; T is 2026-12-07T15:00:00Z or 2026-12-07 (UTC)\n"
	  "  --until T         before T\n"
	  "  --after SEQ       only the entries after the one numbered SEQ (the SEQ\n"
	  "                    column), or after a \"next\" cursor of the --json output\n"
	  "  --limit N         at most N entries (default: all)\n" },
};

static const char connection_help[] =
    "connection (every admin command):\n"
    "  --server URL        the service (else $SMIME_SERVER, else http://127.0.0.1:8080)\n"
    "  --token-file FILE   the admin token (else $SMIME_TOKEN, the token itself, else\n"
    "                      the file $SMIME_TOKEN_FILE)\n"
    "  --cacert FILE       CA certificates for an https:// service with a private CA\n"
    "                      (else $SMIME_CACERT, else the system's)\n"
    "  --json              the service's JSON answer on standard output (lists: every\n"
    "                      page's items as {\"items\":[...]})\n"
    "  -q, --quiet         no confirmations or progress on standard error\n";

static void
verb_name(const struct verb *v, char *buf, size_t size)
{
	snprintf(buf, size, "admin %s%s%s", v->noun, v->name ? " " : "", v->name ? v->name : "");
}

/* The synopsis, one line per form (they are separated by newlines). */
static void
print_synopsis(FILE *f, const char *lead1, const char *lead, const struct verb *v)
{
	const char *p = v->synopsis;
	char name[64];

	verb_name(v, name, sizeof(name));
	do {
		size_t n = strcspn(p, "\n");
		fprintf(f, "%s smime %s%s%.*s\n", p == v->synopsis ? lead1 : lead, name,
		    n > 0 ? " " : "", (int)n, p);
		p += n + (p[n] == '\n');
	} while (*p != '\0');
}

static void
verb_help(FILE *f, const struct verb *v)
{
	print_synopsis(f, "usage:", "      ", v);
	fprintf(f, "\n%s\n%s", v->help, connection_help);
}

static void
admin_help(FILE *f, const char *noun)
{
	fprintf(f, "usage: smime admin [--server URL] [--token-file FILE] [--cacert FILE] [--json]\n"
	    "                   OBJECT ACTION [ARGS]\n\n"
	    "Manage a smimed service through its REST API: users, groups, devices,\n"
	    "certificate profiles, SCEP profiles and requests, CAs, certificates, admin\n"
	    "tokens and the audit log.\n\n");
	for (size_t i = 0; i < N(verbs); i++)
		if (noun == NULL || strcmp(noun, verbs[i].noun) == 0)
			print_synopsis(f, " ", " ", &verbs[i]);
	fprintf(f, "\n%s\n"
	    "'smime admin OBJECT ACTION --help' tells more.  Exit status: 0 success; 1 a row of\n"
	    "import-csv failed; 2 usage, or no token; 3 refused as malformed (HTTP 400, 413,\n"
	    "415); 4 not found (404); 5 refused (401, 403, 409, 422); 7 no connection, too\n"
	    "many requests (429), a failure of the service (5xx), or a file.  See smime-admin(1).\n",
	    connection_help);
}

/*
 * Parse the options and arguments of one action (argv[0] is its name).
 * Returns EXIT_OK to go on, -1 when --help was answered, else an exit status.
 */
static int
parse_args(const struct verb *v, int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, OPT(I_NAME) },
		{ "group", required_argument, NULL, OPT(I_GROUP) },
		{ "alias", required_argument, NULL, OPT(I_ALIAS) },
		{ "description", required_argument, NULL, OPT(I_DESCRIPTION) },
		{ "user", required_argument, NULL, OPT(I_USER) },
		{ "platform", required_argument, NULL, OPT(I_PLATFORM) },
		{ "device", required_argument, NULL, OPT(I_DEVICE) },
		{ "profile", required_argument, NULL, OPT(I_PROFILE) },
		{ "csr", required_argument, NULL, OPT(I_CSR) },
		{ "out", required_argument, NULL, 'o' },
		{ "password-file", required_argument, NULL, OPT(I_PASSWORD_FILE) },
		{ "passwords", required_argument, NULL, OPT(I_PASSWORDS) },
		{ "status", required_argument, NULL, OPT(I_STATUS) },
		{ "ca", required_argument, NULL, OPT(I_CA) },
		{ "reason", required_argument, NULL, OPT(I_REASON) },
		{ "after", required_argument, NULL, OPT(I_AFTER) },
		{ "limit", required_argument, NULL, OPT(I_LIMIT) },
		{ "seconds", required_argument, NULL, OPT(I_SECONDS) },
		{ "rsa-min-bits", required_argument, NULL, OPT(I_RSA_MIN_BITS) },
		{ "ec-curves", required_argument, NULL, OPT(I_EC_CURVES) },
		{ "subject", required_argument, NULL, OPT(I_SUBJECT) },
		{ "san-email", required_argument, NULL, OPT(I_SAN_EMAIL) },
		{ "non-repudiation", no_argument, NULL, OPT(I_NON_REPUDIATION) },
		{ "no-non-repudiation", no_argument, NULL, OPT_NOT(I_NON_REPUDIATION) },
		{ "validity-days", required_argument, NULL, OPT(I_VALIDITY_DAYS) },
		{ "renewal-days", required_argument, NULL, OPT(I_RENEWAL_DAYS) },
		{ "approval", no_argument, NULL, OPT(I_APPROVAL) },
		{ "no-approval", no_argument, NULL, OPT_NOT(I_APPROVAL) },
		{ "challenge-minutes", required_argument, NULL, OPT(I_CHALLENGE_MINUTES) },
		{ "allow-sha1", no_argument, NULL, OPT(I_ALLOW_SHA1) },
		{ "role", required_argument, NULL, OPT(I_ROLE) },
		{ "expires-days", required_argument, NULL, OPT(I_EXPIRES_DAYS) },
		{ "actor", required_argument, NULL, OPT(I_ACTOR) },
		{ "action", required_argument, NULL, OPT(I_ACTION) },
		{ "since", required_argument, NULL, OPT(I_SINCE) },
		{ "until", required_argument, NULL, OPT(I_UNTIL) },
		{ "no-allow-sha1", no_argument, NULL, OPT_NOT(I_ALLOW_SHA1) },
		{ "distrust", no_argument, NULL, OPT(I_DISTRUST) },
		{ "purpose", required_argument, NULL, OPT(I_PURPOSE) },
		{ "key-alg", required_argument, NULL, OPT(I_KEY_ALG) },
		{ "br-profile", required_argument, NULL, OPT(I_BR_PROFILE) },
		{ "generate", no_argument, NULL, OPT(I_GENERATE) },
		{ "no-generate", no_argument, NULL, OPT_NOT(I_GENERATE) },
		{ "primary", required_argument, NULL, OPT(I_PRIMARY) },
		{ "server", required_argument, NULL, O_SERVER },
		{ "token-file", required_argument, NULL, O_TOKEN_FILE },
		{ "cacert", required_argument, NULL, O_CACERT },
		{ "serial", required_argument, NULL, O_SERIAL },
		{ "deleted", no_argument, NULL, O_DELETED },
		{ "reuse-addresses", no_argument, NULL, O_REUSE },
		GLOBAL_LONG_OPTIONS, { NULL, 0, NULL, 0 },
	};
	int c, idx;

	/* 0: getopt starts afresh (the admin level stopped at the object). */
	optind = 0;
	while ((c = getopt_long(argc, argv, "o:qh", opts, &idx)) != -1) {
		optset bit = c == 'o' ? A_OUT : OPT_BIT(c);
		if (c == 'h') {
			verb_help(stdout, v);
			return -1;
		}
		if (optarg != NULL && !admin_utf8_ok(optarg))
			return usage_error(a->cmd, "an option's value is not UTF-8");
		unsigned more = c == O_SERIAL ? X_SERIAL : c == O_DELETED ? X_DELETED :
		    c == O_REUSE ? X_REUSE : 0;
		if ((bit != 0 && (v->opts & bit) == 0) || (more != 0 && (v->opts & more) == 0))
			return usage_error(a->cmd, "%s%s does not apply here", c == 'o' ? "-" : "--",
			    c == 'o' ? "o" : opts[idx].name);
		a->given |= bit;
		switch (c) {
		case OPT(I_NAME): a->name = optarg; break;
		case OPT(I_GROUP): a->groups[a->n_groups++] = optarg; break;
		case OPT(I_ALIAS): a->aliases[a->n_aliases++] = optarg; break;
		case OPT(I_DESCRIPTION): a->description = optarg; break;
		case OPT(I_USER): a->user = optarg; break;
		case OPT(I_PLATFORM): a->platform = optarg; break;
		case OPT(I_DEVICE): a->device = optarg; break;
		case OPT(I_PROFILE): a->profile = optarg; break;
		case OPT(I_CSR): a->csr = optarg; break;
		case 'o': a->out = optarg; break;
		case OPT(I_PASSWORD_FILE): a->password_file = optarg; break;
		case OPT(I_PASSWORDS): a->passwords = optarg; break;
		case OPT(I_STATUS): a->status = optarg; break;
		case OPT(I_CA): a->ca = optarg; break;
		case OPT(I_REASON): a->reason = optarg; break;
		case OPT(I_AFTER): a->after = optarg; break;
		case OPT(I_LIMIT): {
			char *end;
			long long n = strtoll(optarg, &end, 10);
			if (*end != '\0' || end == optarg || n < 1 || n > 100000000)
				return usage_error(a->cmd, "--limit: a number from 1 to 100000000");
			a->limit = (size_t)n;
			break;
		}
		case OPT(I_ROLE): a->role = optarg; break;
		case OPT(I_ACTOR): a->actor = optarg; break;
		case OPT(I_ACTION): a->action = optarg; break;
		case OPT(I_SINCE): a->since = optarg; break;
		case OPT(I_UNTIL): a->until = optarg; break;
		case OPT(I_EXPIRES_DAYS):
		case OPT(I_SECONDS):
		case OPT(I_RSA_MIN_BITS):
		case OPT(I_VALIDITY_DAYS):
		case OPT(I_RENEWAL_DAYS):
		case OPT(I_CHALLENGE_MINUTES): {
			/* The service checks the range and names it; here only a number. */
			long long *to = bit == A_EXPIRES_DAYS ? &a->expires_days :
			    bit == A_SECONDS ? &a->seconds : bit == A_RSA_MIN_BITS ?
			    &a->rsa_min_bits : bit == A_VALIDITY_DAYS ? &a->validity_days :
			    bit == A_RENEWAL_DAYS ? &a->renewal_days : &a->challenge_minutes;
			char *end;
			errno = 0;
			*to = strtoll(optarg, &end, 10);
			if (*end != '\0' || end == optarg || errno != 0 || *to < INT_MIN || *to > INT_MAX)
				return usage_error(a->cmd, "--%s: a whole number, not '%s'",
				    opts[idx].name, optarg);
			break;
		}
		case OPT(I_EC_CURVES): a->ec_curves = optarg; break;
		case OPT(I_SUBJECT): a->subject = optarg; break;
		case OPT(I_SAN_EMAIL): a->san_email = optarg; break;
		case OPT(I_NON_REPUDIATION): a->non_repudiation = true; break;
		case OPT_NOT(I_NON_REPUDIATION): a->non_repudiation = false; break;
		case OPT(I_APPROVAL): a->approval = true; break;
		case OPT_NOT(I_APPROVAL): a->approval = false; break;
		case OPT(I_ALLOW_SHA1): a->allow_sha1 = true; break;
		case OPT_NOT(I_ALLOW_SHA1): a->allow_sha1 = false; break;
		case OPT(I_DISTRUST): break;
		case OPT(I_PURPOSE): a->purpose = optarg; break;
		case OPT(I_KEY_ALG): a->key_alg = optarg; break;
		case OPT(I_BR_PROFILE): a->br_profile = optarg; break;
		case OPT(I_GENERATE): a->generate = true; break;
		case OPT_NOT(I_GENERATE): a->generate = false; break;
		case OPT(I_PRIMARY): a->primary = optarg; break;
		case O_SERVER: a->conn.server = optarg; break;
		case O_TOKEN_FILE: a->conn.token_file = optarg; break;
		case O_CACERT: a->conn.cacert = optarg; break;
		case O_SERIAL: a->serial = optarg; break;
		case O_DELETED: a->deleted = true; break;
		case O_REUSE: a->reuse = true; break;
		default:
			if (!global_option(c, optarg))
				return usage_error(a->cmd, "unknown option");
		}
	}
	a->pos = argv + optind;
	a->n_pos = argc - optind;
	if (a->n_pos < v->min_pos) {
		/* Name the first argument that is missing. */
		const char *p = v->pos_names;
		for (int i = 0; i < a->n_pos && *p != '\0'; i++) {
			p += strcspn(p, " ");
			p += *p == ' ';
		}
		return usage_error(a->cmd, "missing %.*s", (int)strcspn(p, " "), p);
	}
	if (g.json && a->out != NULL && strcmp(a->out, "-") == 0)
		return usage_error(a->cmd, "--json and -o - would both write to standard output");
	if (a->n_pos > v->max_pos)
		return usage_error(a->cmd, "unexpected argument '%s'", a->pos[v->max_pos]);
	for (int i = 0; i < a->n_pos; i++)
		if (!admin_utf8_ok(a->pos[i]))
			return usage_error(a->cmd, "argument %d is not UTF-8", i + 1);
	return EXIT_OK;
}

static int
run(const struct verb *v, int argc, char **argv, const struct admin_options *conn)
{
	struct args a = { .conn = *conn };
	int rc;

	verb_name(v, a.cmd, sizeof(a.cmd));
	a.groups = calloc((size_t)argc + 1, sizeof(*a.groups));
	a.aliases = calloc((size_t)argc + 1, sizeof(*a.aliases));
	if (a.groups == NULL || a.aliases == NULL)
		rc = admin_oom();
	else if ((rc = parse_args(v, argc, argv, &a)) == -1)
		rc = EXIT_OK;
	else if (rc == EXIT_OK && (rc = admin_init()) == EXIT_OK) {
		rc = v->fn(&a);
		admin_done();
	}
	free(a.groups);
	free(a.aliases);
	return rc;
}

int
cmd_admin(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, O_SERVER },
		{ "token-file", required_argument, NULL, O_TOKEN_FILE },
		{ "cacert", required_argument, NULL, O_CACERT },
		GLOBAL_LONG_OPTIONS, { NULL, 0, NULL, 0 },
	};
	struct admin_options conn = { 0 };
	const char *noun, *name;
	bool known = false;
	int c;

	/* jansson's memory is wiped when freed: answers hold new token secrets
	 * and PKCS#12 files, requests hold PKCS#12 passwords. */
	json_set_alloc_funcs(malloc, cleansing_free);
	/* Options before the object; '+': stop at the first argument. */
	while ((c = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
		switch (c) {
		case 'h': admin_help(stdout, NULL); return EXIT_OK;
		case O_SERVER: conn.server = optarg; break;
		case O_TOKEN_FILE: conn.token_file = optarg; break;
		case O_CACERT: conn.cacert = optarg; break;
		default:
			if (!global_option(c, optarg))
				return usage_error("admin", "unknown option");
		}
	}
	if (optind >= argc) {
		admin_help(stderr, NULL);
		return EXIT_USAGE;
	}
	noun = argv[optind];
	name = optind + 1 < argc ? argv[optind + 1] : NULL;
	for (size_t i = 0; i < N(verbs); i++) {
		if (strcmp(verbs[i].noun, noun) != 0)
			continue;
		known = true;
		/* An object without actions (audit) takes its options at once. */
		if (verbs[i].name == NULL)
			return run(&verbs[i], argc - optind, argv + optind, &conn);
		if (name != NULL && strcmp(verbs[i].name, name) == 0)
			return run(&verbs[i], argc - optind - 1, argv + optind + 1, &conn);
	}
	if (!known)
		return admin_error(EXIT_USAGE, "usage", 0, "unknown object '%s': user, group, device, "
		    "profile, scep-profile, scep, ca, cert, trust, directory, token, import, "
		    "import-folder, recover, recovery or audit (see smime admin --help)", noun);
	if (name != NULL && (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)) {
		admin_help(stdout, noun);
		return EXIT_OK;
	}
	if (name == NULL) {
		char set[128] = "";
		for (size_t i = 0; i < N(verbs); i++) {
			if (strcmp(verbs[i].noun, noun) != 0)
				continue;
			if (set[0] != '\0')
				strncat(set, ", ", sizeof(set) - strlen(set) - 1);
			strncat(set, verbs[i].name, sizeof(set) - strlen(set) - 1);
		}
		return admin_error(EXIT_USAGE, "usage", 0, "%s: missing action: %s (see smime admin "
		    "%s --help)", noun, set, noun);
	}
	return admin_error(EXIT_USAGE, "usage", 0, "unknown action '%s %s' (see smime admin %s "
	    "--help)", noun, name, noun);
}

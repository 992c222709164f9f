/*
 * smime admin: the admin command line of smimed, over its REST API
 * (docs/openapi.yaml; the HTTP client is admin_http.c).
 *
 * `smime admin OBJECT ACTION [ARGS]`: one table of actions (verbs[]), one
 * option parser for all of them (each action says which options it takes),
 * one function per action.  With --json every action prints the service's
 * JSON answer on standard output; without it, a table or text.
 */
#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "cleanse.h"
#include "admin.h"
#include "cli.h"

#define CSR_MAX (1024u * 1024)
#define SERIAL_MAX_DIGITS 64             /* the service's limit (STORE_SERIAL_SIZE) */

/* The options an action may take: one bit each of a set, named by index. */
typedef uint64_t optset;
enum opt_index {
	I_NAME, I_GROUP, I_ALIAS, I_DESCRIPTION, I_USER, I_PLATFORM, I_DEVICE, I_PROFILE,
	I_CSR, I_OUT, I_PASSWORD_FILE, I_STATUS, I_CA, I_REASON, I_AFTER, I_LIMIT,
	I_PASSWORDS, I_SECONDS, I_RSA_MIN_BITS, I_EC_CURVES, I_SUBJECT, I_SAN_EMAIL,
	I_NON_REPUDIATION, I_VALIDITY_DAYS, I_RENEWAL_DAYS, I_APPROVAL,
	I_CHALLENGE_MINUTES, I_ALLOW_SHA1, I_ROLE, I_EXPIRES_DAYS, I_ACTOR, I_ACTION,
	I_SINCE, I_UNTIL, I_DISTRUST, I_PURPOSE, I_KEY_ALG, I_BR_PROFILE, I_GENERATE,
	I_PRIMARY, I_COUNT
};
_Static_assert(I_COUNT <= 64, "more options than bits in an optset");
#define A_(i) ((optset)1 << (i))
#define A_NAME A_(I_NAME)
#define A_GROUP A_(I_GROUP)
#define A_ALIAS A_(I_ALIAS)
#define A_DESCRIPTION A_(I_DESCRIPTION)
#define A_USER A_(I_USER)
#define A_PLATFORM A_(I_PLATFORM)
#define A_DEVICE A_(I_DEVICE)
#define A_PROFILE A_(I_PROFILE)
#define A_CSR A_(I_CSR)
#define A_OUT A_(I_OUT)
#define A_PASSWORD_FILE A_(I_PASSWORD_FILE)
#define A_STATUS A_(I_STATUS)
#define A_CA A_(I_CA)
#define A_REASON A_(I_REASON)
#define A_AFTER A_(I_AFTER)
#define A_LIMIT A_(I_LIMIT)
#define A_PASSWORDS A_(I_PASSWORDS)
#define A_SECONDS A_(I_SECONDS)
#define A_RSA_MIN_BITS A_(I_RSA_MIN_BITS)
#define A_EC_CURVES A_(I_EC_CURVES)
#define A_SUBJECT A_(I_SUBJECT)
#define A_SAN_EMAIL A_(I_SAN_EMAIL)
#define A_NON_REPUDIATION A_(I_NON_REPUDIATION)
#define A_VALIDITY_DAYS A_(I_VALIDITY_DAYS)
#define A_RENEWAL_DAYS A_(I_RENEWAL_DAYS)
#define A_APPROVAL A_(I_APPROVAL)
#define A_CHALLENGE_MINUTES A_(I_CHALLENGE_MINUTES)
#define A_ALLOW_SHA1 A_(I_ALLOW_SHA1)
#define A_ROLE A_(I_ROLE)
#define A_EXPIRES_DAYS A_(I_EXPIRES_DAYS)
#define A_ACTOR A_(I_ACTOR)
#define A_ACTION A_(I_ACTION)
#define A_SINCE A_(I_SINCE)
#define A_UNTIL A_(I_UNTIL)
#define A_DISTRUST A_(I_DISTRUST)
#define A_PURPOSE A_(I_PURPOSE)
#define A_KEY_ALG A_(I_KEY_ALG)
#define A_BR_PROFILE A_(I_BR_PROFILE)
#define A_GENERATE A_(I_GENERATE)
#define A_PRIMARY A_(I_PRIMARY)
/*
 * getopt's value of an action's option: OPT_TAG and the option's index; a
 * boolean's --no- form carries OPT_NO too.  Its bit comes back with OPT_BIT.
 */
#define OPT_TAG 0x40000000
#define OPT_NO 0x20000000
#define OPT(i) (OPT_TAG | (i))
#define OPT_NOT(i) (OPT_TAG | OPT_NO | (i))
#define OPT_BIT(c) (((c) & OPT_TAG) != 0 ? A_((unsigned)(c) & 63u) : (optset)0)
enum { O_SERVER = 0x200000, O_TOKEN_FILE, O_CACERT };
/*
 * Options past the A_ bits: getopt values of their own, and bits of
 * verb.opts at and above OPT_NO, which no A_ bit reaches.
 */
#define X_SERIAL (1u << 29)
#define X_DELETED (1u << 30)
#define X_REUSE (1u << 31)
_Static_assert(X_SERIAL == OPT_NO, "the X_ bits start where the A_ bits must end");
enum { O_SERIAL = 0x300000, O_DELETED, O_REUSE };

struct args {
	char cmd[64];                    /* "admin user add", for messages */
	struct admin_options conn;
	const char *name, *description, *user, *platform, *device, *profile, *csr, *out,
	    *password_file, *status, *ca, *reason, *after, *passwords, *serial;
	bool deleted, reuse;
	const char **groups, **aliases;  /* repeatable */
	size_t n_groups, n_aliases;
	size_t limit;
	/* SCEP profiles: the numbers and switches given (given has their A_ bits). */
	const char *ec_curves, *subject, *san_email;
	/* Tokens and the audit log. */
	const char *role, *actor, *action, *since, *until;
	long long expires_days;
	long long seconds, rsa_min_bits, validity_days, renewal_days, challenge_minutes;
	bool non_repudiation, approval, allow_sha1;
	/* Certificate profiles and user updates. */
	const char *purpose, *key_alg, *br_profile, *primary;
	bool generate;
	optset given;
	char **pos;                      /* positional arguments */
	int n_pos;
};

struct verb {
	const char *noun, *name;         /* name NULL: the object is the action (audit) */
	int (*fn)(struct args *a);
	optset opts;
	int min_pos, max_pos;
	const char *pos_names;           /* "GROUP USER": for "missing GROUP" */
	const char *synopsis;            /* after "smime admin NOUN NAME " */
	const char *help;
};

static const char *const platforms[] = { "ios", "android", "macos", "windows", "linux" };
static const char *const cert_statuses[] = { "active", "superseded", "expired", "revoked" };
/* RFC 5280 5.3.1: CRLReason, spelled as the ASN.1 module names them (7 is
 * unused); certificateHold is not offered: a revocation is final. */
static const char *const reasons[] = { "unspecified", "keyCompromise",
	"affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn" };

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- output helpers ---------------------------------------------------- */

/* A JSON value as one line of text (malloc'd, control characters replaced). */
static char *
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
static char *
user_cell(const json_t *item)
{
	const json_t *v = json_object_get(item, "user_email");

	return text_of(v != NULL ? v : json_object_get(item, "user"));
}

/* The device of an item by name (the id when the service named none). */
static char *
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
static json_t *
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
static int
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

static bool
one_of(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

static void
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

typedef int (*show_fn)(const struct args *a, const json_t *answer);

/*
 * Send one request (taking path and body) and show the answer: the JSON
 * with --json ({"ok":true} for an empty answer), else show(); done is said
 * on standard error when the answer is empty.
 */
static int
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
static int
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

static int
show_id(const struct args *a, const json_t *answer)
{
	const char *id = json_string_value(json_object_get(answer, "id"));

	if (id == NULL)
		return admin_error(EXIT_IO, "io", 0, "the answer names no id");
	printf("%s\n", id);
	return EXIT_OK;
}

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

static int
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

static int
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

static int
user_show(struct args *a)
{
	return call_show(a, "GET", admin_path("/api/v1/users/%s", a->pos[0]), NULL, show_user,
	    NULL);
}

static int
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

static int
user_purge(struct args *a)
{
	if (a->reason == NULL)
		return usage_error(a->cmd, "--reason TEXT is required: the purge is audited");
	return call_show(a, "POST", admin_path("/api/v1/users/%s/purge", a->pos[0]),
	    json_pack("{s:s}", "reason", a->reason), show_purge, NULL);
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

/* ---- user import-csv (admin_csv.c) ----------------------------------------- */

static int
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

static int
group_add(struct args *a)
{
	json_t *body = json_pack("{s:s}", "name", a->pos[0]);

	if (body == NULL)
		return admin_oom();
	if (a->description != NULL)
		json_object_set_new(body, "description", json_string(a->description));
	return call_show(a, "POST", strdup("/api/v1/groups"), body, show_id, NULL);
}

static int
group_list(struct args *a)
{
	static const struct column cols[] = { { "ID", "id", NULL }, { "NAME", "name", NULL },
		{ "MEMBERS", "members", NULL }, { "DESCRIPTION", "description", NULL } };

	return list_show(a, "/api/v1/groups", NULL, 0, true, cols, N(cols));
}

/* The group and its members (every page of GET /api/v1/users?group=). */
static int
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

static int
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

static int
group_add_member(struct args *a)
{
	return group_membership(a, true);
}

static int
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

static int
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

static int
device_list(struct args *a)
{
	static const struct column cols[] = { { "ID", "id", NULL }, { "USER", NULL, user_cell },
		{ "PLATFORM", "platform", NULL }, { "NAME", "name", NULL } };
	struct admin_query q[] = { { "user", a->user } };

	return list_show(a, "/api/v1/devices", q, N(q), true, cols, N(cols));
}

static int
device_show(struct args *a)
{
	return call_show(a, "GET", admin_path("/api/v1/devices/%s", a->pos[0]), NULL, show_device,
	    NULL);
}

static int
device_delete(struct args *a)
{
	char done[512];

	snprintf(done, sizeof(done), "device %s deleted (its certificates stay recorded and are "
	    "not revoked)", a->pos[0]);
	return call_show(a, "DELETE", admin_path("/api/v1/devices/%s", a->pos[0]), NULL, NULL,
	    done);
}

/* ---- profile ------------------------------------------------------------ */

static const char *const profile_fields[] = { "name", "purpose", "ca", "validity_days",
	"br_profile", "key_alg", "allow_generate" };

static int
show_profile(const struct args *a, const json_t *answer)
{
	return print_fields(answer, profile_fields, N(profile_fields));
}

static int
profile_list(struct args *a)
{
	static const struct column cols[] = { { "NAME", "name", NULL },
		{ "PURPOSE", "purpose", NULL }, { "CA", "ca", NULL }, { "DAYS", "validity_days", NULL },
		{ "KEY", "key_alg", NULL }, { "BR-PROFILE", "br_profile", NULL },
		{ "GENERATE", "allow_generate", NULL } };

	return list_show(a, "/api/v1/profiles", NULL, 0, false, cols, N(cols));
}

static int
profile_show(struct args *a)
{
	return call_show(a, "GET", admin_path("/api/v1/profiles/%s", a->pos[0]), NULL,
	    show_profile, NULL);
}

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

static int
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

#define SCEP_PROFILE_OPTS (A_CA | A_RSA_MIN_BITS | A_EC_CURVES | A_SUBJECT | A_SAN_EMAIL | \
	A_NON_REPUDIATION | A_VALIDITY_DAYS | A_RENEWAL_DAYS | A_APPROVAL | A_CHALLENGE_MINUTES | \
	A_ALLOW_SHA1)

static int
scep_profile_list(struct args *a)
{
	static const struct column cols[] = { { "NAME", "name", NULL }, { "CA", "ca", NULL },
		{ "RSA-MIN", "rsa_min_bits", NULL }, { "EC-CURVES", "ec_curves", NULL },
		{ "DAYS", "validity_days", NULL }, { "RENEW", "renewal_days", NULL },
		{ "APPROVAL", "approval", NULL }, { "CHALLENGE-MIN", "challenge_minutes", NULL },
		{ "SUBJECT", "subject", NULL } };

	return list_show(a, "/api/v1/scep-profiles", NULL, 0, false, cols, N(cols));
}

static int
scep_profile_show(struct args *a)
{
	return call_show(a, "GET", admin_path("/api/v1/scep-profiles/%s", a->pos[0]), NULL,
	    show_scep_profile, NULL);
}

static int
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
static int
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

static int
scep_profile_delete(struct args *a)
{
	char done[512];

	snprintf(done, sizeof(done), "SCEP profile %s deleted (the challenges made for it are "
	    "void; certificates it issued stay)", a->pos[0]);
	return call_show(a, "DELETE", admin_path("/api/v1/scep-profiles/%s", a->pos[0]), NULL,
	    NULL, done);
}

static int
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

static int
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

static int
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

static int
scep_reject(struct args *a)
{
	json_t *body = NULL;

	if (a->reason != NULL && (body = json_pack("{s:s}", "reason", a->reason)) == NULL)
		return admin_oom();
	return call_show(a, "POST", admin_path("/api/v1/scep/requests/%s/reject", a->pos[0]),
	    body, show_rejected, NULL);
}

/* ---- ca ----------------------------------------------------------------- */

static const char *const ca_fields[] = { "id", "parent", "issuing", "key_alg", "has_key",
	"subject", "serial", "not_before", "not_after", "sha256", "crl_number", "crl_updated" };

static int
show_ca(const struct args *a, const json_t *answer)
{
	return print_fields(answer, ca_fields, N(ca_fields));
}

static char *
ca_role(const json_t *ca)
{
	const char *parent = admin_str(ca, "parent");
	char *s;

	if (asprintf(&s, "%s%s", json_is_true(json_object_get(ca, "issuing")) ? "issuing" :
	    parent[0] == '\0' ? "root" : "intermediate",
	    json_is_false(json_object_get(ca, "has_key")) ? ",no-key" : "") < 0)
		return NULL;
	return s;
}

static int
ca_list(struct args *a)
{
	static const struct column cols[] = { { "ID", "id", NULL }, { "ROLE", NULL, ca_role },
		{ "PARENT", "parent", NULL }, { "KEY", "key_alg", NULL },
		{ "NOT-AFTER", "not_after", NULL }, { "CRL", "crl_number", NULL },
		{ "SUBJECT", "subject", NULL } };

	return list_show(a, "/api/v1/cas", NULL, 0, false, cols, N(cols));
}

static int
ca_show(struct args *a)
{
	return call_show(a, "GET", admin_path("/api/v1/cas/%s", a->pos[0]), NULL, show_ca, NULL);
}

static int
show_crl(const struct args *a, const json_t *answer)
{
	printf("CA %s: CRL number %" JSON_INTEGER_FORMAT " made at %s\n", admin_str(answer, "id"),
	    json_integer_value(json_object_get(answer, "crl_number")), admin_str(answer, "crl_updated"));
	return EXIT_OK;
}

static int
ca_crl(struct args *a)
{
	return call_show(a, "POST", admin_path("/api/v1/cas/%s/crl", a->pos[0]), NULL, show_crl,
	    NULL);
}

/* Write len bytes to -o FILE (atomically, 0600) or standard output. */
static int
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

/* How many certificates a PEM text holds (0: none, or not PEM). */
static int
pem_cert_count(const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x;
	int n = 0;

	while (b != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	BIO_free(b);
	return n;
}

static int
ca_export(struct args *a)
{
	struct admin_conn *c = NULL;
	struct admin_reply r = { 0 };
	json_t *cas = NULL;
	const char *id = a->ca;
	char *path = NULL;
	int rc, n;

	if ((rc = admin_conn_new(&a->conn, &c)) != EXIT_OK)
		goto out;
	if (id == NULL) {
		/* The first CA that issues end-entity certificates. */
		size_t i;
		json_t *ca;
		if ((rc = admin_list(c, "/api/v1/cas", NULL, 0, false, NULL, 0, &cas, NULL)) != EXIT_OK)
			goto out;
		json_array_foreach(cas, i, ca) {
			if (json_is_true(json_object_get(ca, "issuing")) && admin_str(ca, "id")[0] != '\0') {
				id = admin_str(ca, "id");
				break;
			}
		}
		if (id == NULL) {
			rc = admin_error(EXIT_NOKEY, "not-found", 0, "the service has no issuing CA; "
			    "name one with --ca ID (see smime admin ca list)");
			goto out;
		}
	}
	if ((path = admin_path("/api/v1/cas/%s/chain", id)) == NULL) {
		rc = usage_error(a->cmd, "--ca: too long");
		goto out;
	}
	if ((rc = admin_request(c, "GET", path, "application/x-pem-file", NULL, NULL, 0, &r))
	    != EXIT_OK)
		goto out;
	if ((n = pem_cert_count(r.data, r.len)) == 0) {
		rc = admin_error(EXIT_IO, "io", 0, "the answer for CA %s is not a PEM certificate "
		    "chain", id);
		goto out;
	}
	if (g.json && a->out == NULL) {
		json_out(json_pack("{s:s,s:i,s:s%}", "ca", id, "certificates", n, "chain", r.data,
		    r.len));
		goto out;
	}
	if ((rc = write_out(a->out, r.data, r.len)) != EXIT_OK)
		goto out;
	if (g.json)
		json_out(json_pack("{s:s,s:i,s:s}", "ca", id, "certificates", n, "file", a->out));
	else if (a->out != NULL && !g.quiet)
		fprintf(stderr, "the chain of CA %s (%d certificate%s) written to %s\n", id, n,
		    n == 1 ? "" : "s", a->out);
out:
	admin_reply_free(&r);
	free(path);
	json_decref(cas);
	admin_conn_free(c);
	return rc;
}

/* ---- cert --------------------------------------------------------------- */

static const char *const cert_fields[] = { "serial", "status", "purpose", "source", "profile",
	"ca", "user", "device", "email", "subject", "not_before", "not_after", "sha256", "sha1",
	"created", "revoked_at", "reason" };

/* A serial number as OpenSSL prints it (any case, colons, 0x), upper-case hex. */
static bool
parse_serial(const char *s, char out[SERIAL_MAX_DIGITS + 1])
{
	size_t n = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (; *s != '\0'; s++) {
		if (*s == ':')
			continue;
		if (!isxdigit((unsigned char)*s) || n == SERIAL_MAX_DIGITS)
			return false;
		out[n++] = (char)toupper((unsigned char)*s);
	}
	out[n] = '\0';
	return n > 0;
}

static int
bad_serial(struct args *a, const char *s)
{
	return usage_error(a->cmd, "'%s' is not a serial number: up to %d hexadecimal digits, "
	    "as openssl x509 -serial prints them", s, SERIAL_MAX_DIGITS);
}

/* Read a PKCS#10 request, PEM or DER, and give it as PEM (malloc'd). */
static char *
csr_pem(const char *path, struct smime_error *err)
{
	size_t len;
	unsigned char *d = admin_slurp_file(path, CSR_MAX, &len, err);
	const unsigned char *p = d;
	X509_REQ *req = NULL;
	BIO *b = NULL, *out = NULL;
	char *pem = NULL, *mem;
	long n;

	if (d == NULL)
		return NULL;
	if ((b = BIO_new_mem_buf(d, (int)len)) != NULL)
		req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	if (req == NULL)
		req = d2i_X509_REQ(NULL, &p, (long)len);
	if (req == NULL) {
		smime_error_ssl(err, SMIME_E_INPUT, "%s: not a PKCS#10 certificate request "
		    "(PEM or DER)", path);
		goto out;
	}
	if ((out = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_X509_REQ(out, req) ||
	    (n = BIO_get_mem_data(out, &mem)) <= 0 || (pem = strndup(mem, (size_t)n)) == NULL)
		smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
out:
	X509_REQ_free(req);
	BIO_free(b);
	BIO_free(out);
	free(d);
	return pem;
}

/* The PKCS#12 of the answer, base64-decoded and checked (malloc'd, cleansed by the caller). */
static unsigned char *
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

static int
cert_issue(struct args *a)
{
	struct smime_error err;
	struct admin_conn *c = NULL;
	json_t *body = NULL, *ans = NULL, *cert;
	char *csr = NULL, *password = NULL;
	unsigned char *p12 = NULL;
	size_t p12_len = 0;
	int rc;

	if (a->user == NULL || a->profile == NULL)
		return usage_error(a->cmd, "--user and --profile are required");
	if (a->csr != NULL) {
		if (a->password_file != NULL)
			return usage_error(a->cmd, "--password-file is for a key the service makes "
			    "(without --csr)");
		if ((csr = csr_pem(a->csr, &err)) == NULL)
			return fail("admin", &err);
		body = json_pack("{s:s,s:s,s:s}", "user", a->user, "profile", a->profile, "csr", csr);
	} else {
		/* The private key comes back: into a file, never onto a screen. */
		if (a->out == NULL)
			return usage_error(a->cmd, "without --csr the service makes the key: -o FILE "
			    "is required for the PKCS#12");
		if (strcmp(a->out, "-") == 0 && isatty(STDOUT_FILENO))
			return usage_error(a->cmd, "a PKCS#12 is not written to a terminal: -o FILE");
		g.password_file = a->password_file;
		smime_error_clear(&err);
		if ((password = p12_password(true, &err)) == NULL) {
			if (err.code != SMIME_OK)
				return fail("admin", &err);
			return usage_error(a->cmd, "the PKCS#12 needs a password: --password-file FILE "
			    "or SMIME_P12_PASSWORD (no terminal to ask on)");
		}
		if (password[0] == '\0') {
			secret_free(password);
			return usage_error(a->cmd, "the PKCS#12 password is empty");
		}
		body = json_pack("{s:s,s:s,s:b,s:s}", "user", a->user, "profile", a->profile,
		    "generate", 1, "password", password);
	}
	if (body == NULL) {
		rc = admin_oom();
		goto out;
	}
	if (a->device != NULL)
		json_object_set_new(body, "device", json_string(a->device));
	if ((rc = admin_conn_new(&a->conn, &c)) != EXIT_OK ||
	    (rc = admin_call(c, "POST", "/api/v1/certificates", body, &ans)) != EXIT_OK)
		goto out;
	cert = json_object_get(ans, "certificate");
	if (!json_is_object(cert) || admin_str(cert, "certificate")[0] == '\0') {
		rc = admin_error(EXIT_IO, "io", 0, "the answer holds no certificate");
		goto out;
	}
	if (a->csr == NULL) {
		const char *b64 = json_string_value(json_object_get(ans, "pkcs12"));
		if (b64 == NULL || (p12 = decode_p12(b64, &p12_len)) == NULL) {
			rc = admin_error(EXIT_IO, "io", 0, "the answer holds no PKCS#12 (serial %s "
			    "was issued; revoke it if it is of no use)", admin_str(cert, "serial"));
			goto out;
		}
		if ((rc = write_out(a->out, p12, p12_len)) != EXIT_OK)
			goto out;
		/* The key stays in the file only. */
		json_object_del(ans, "pkcs12");
		json_object_set_new(ans, "pkcs12_file", json_string(a->out));
	} else if (!g.json || a->out != NULL) {
		const char *pem = admin_str(cert, "certificate"), *chain = admin_str(ans, "chain");
		size_t l1 = strlen(pem), l2 = strlen(chain);
		char *both = malloc(l1 + l2 + 2);
		if (both == NULL) {
			rc = admin_oom();
			goto out;
		}
		memcpy(both, pem, l1);
		if (l1 > 0 && pem[l1 - 1] != '\n')
			both[l1++] = '\n';
		memcpy(both + l1, chain, l2);
		rc = write_out(a->out, both, l1 + l2);
		free(both);
		if (rc != EXIT_OK)
			goto out;
	}
	if (g.json)
		json_out(json_incref(ans));
	else if (!g.quiet)
		fprintf(stderr, "issued %s certificate %s for %s (profile %s), valid until %s%s%s\n",
		    admin_str(cert, "purpose"), admin_str(cert, "serial"), admin_str(cert, "email"),
		    admin_str(cert, "profile"), admin_str(cert, "not_after"), a->out ? ", written to " : "",
		    a->out ? a->out : "");
out:
	if (p12 != NULL)
		OPENSSL_cleanse(p12, p12_len);
	free(p12);
	free(csr);
	secret_free(password);
	json_decref(body);
	json_decref(ans);
	admin_conn_free(c);
	return rc;
}

static int
cert_list(struct args *a)
{
	static const struct column cols[] = { { "SERIAL", "serial", NULL },
		{ "STATUS", "status", NULL }, { "PURPOSE", "purpose", NULL },
		{ "PROFILE", "profile", NULL }, { "NOT-AFTER", "not_after", NULL },
		{ "EMAIL", "email", NULL } };
	struct admin_query q[] = { { "user", a->user }, { "device", a->device }, { "ca", a->ca },
		{ "status", a->status } };
	char set[128];

	join(set, sizeof(set), cert_statuses, N(cert_statuses));
	if (a->status != NULL && !one_of(a->status, cert_statuses, N(cert_statuses)))
		return usage_error(a->cmd, "--status: one of %s", set);
	return list_show(a, "/api/v1/certificates", q, N(q), true, cols, N(cols));
}

static int
cert_show(struct args *a)
{
	struct admin_conn *c = NULL;
	json_t *ans = NULL;
	char serial[SERIAL_MAX_DIGITS + 1], *path;
	int rc;

	if (!parse_serial(a->pos[0], serial))
		return bad_serial(a, a->pos[0]);
	if ((path = admin_path("/api/v1/certificates/%s", serial)) == NULL)
		return admin_oom();
	if ((rc = admin_conn_new(&a->conn, &c)) != EXIT_OK ||
	    (rc = admin_call(c, "GET", path, NULL, &ans)) != EXIT_OK)
		goto out;
	if (a->out != NULL) {
		const char *pem = admin_str(ans, "certificate");
		if (pem[0] == '\0') {
			rc = admin_error(EXIT_IO, "io", 0, "the answer holds no certificate");
			goto out;
		}
		if ((rc = write_out(a->out, pem, strlen(pem))) != EXIT_OK)
			goto out;
	}
	if (g.json)
		json_out(json_incref(ans));
	else if (a->out == NULL || strcmp(a->out, "-") != 0) {
		json_t *shown = named(ans);
		rc = shown != NULL ? print_fields(shown, cert_fields, N(cert_fields)) : admin_oom();
		json_decref(shown);
	}
out:
	json_decref(ans);
	admin_conn_free(c);
	free(path);
	return rc;
}

static int
show_revoked(const struct args *a, const json_t *answer)
{
	if (!g.quiet)
		fprintf(stderr, "certificate %s revoked (%s) at %s; the CRL is made anew\n",
		    admin_str(answer, "serial"), admin_str(answer, "reason"), admin_str(answer, "revoked_at"));
	return EXIT_OK;
}

static int
cert_revoke(struct args *a)
{
	char serial[SERIAL_MAX_DIGITS + 1], set[256];
	const char *reason = NULL;

	join(set, sizeof(set), reasons, N(reasons));
	if (!parse_serial(a->pos[0], serial))
		return bad_serial(a, a->pos[0]);
	if (a->reason == NULL)
		return usage_error(a->cmd, "--reason is required, one of %s", set);
	/* Any case is accepted; the service gets RFC 5280's spelling. */
	for (size_t i = 0; i < N(reasons); i++)
		if (strcasecmp(a->reason, reasons[i]) == 0)
			reason = reasons[i];
	if (reason == NULL)
		return usage_error(a->cmd, "--reason: one of %s (RFC 5280 5.3.1)", set);
	return call_show(a, "POST", admin_path("/api/v1/certificates/%s/revoke", serial),
	    json_pack("{s:s}", "reason", reason), show_revoked, NULL);
}

static int
show_withdrawn(const struct args *a, const json_t *answer)
{
	(void)a;
	if (!g.quiet)
		fprintf(stderr, "certificate %s of %s withdrawn from lookup and directory "
		    "publication at %s; it stays recorded and its key archived\n",
		    admin_str(answer, "serial"), admin_str(answer, "email"), admin_str(answer, "withdrawn"));
	return EXIT_OK;
}

static int
cert_withdraw(struct args *a)
{
	char serial[SERIAL_MAX_DIGITS + 1];

	if (!parse_serial(a->pos[0], serial))
		return bad_serial(a, a->pos[0]);
	return call_show(a, "POST", admin_path("/api/v1/certificates/%s/withdraw", serial), NULL,
	    show_withdrawn, NULL);
}

/* ---- token -------------------------------------------------------------- */

static const char *const token_roles[] = { "admin", "operator", "recovery", "auditor" };

static int
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

static int
token_list(struct args *a)
{
	static const struct column cols[] = { { "ID", "id", NULL }, { "NAME", "name", NULL },
		{ "ROLE", "role", NULL }, { "CREATED", "created", NULL },
		{ "EXPIRES", "expires", NULL }, { "LAST-USED", "last_used", NULL },
		{ "REVOKED", "revoked_at", NULL }, { "CREATED-BY", "created_by", NULL } };

	return list_show(a, "/api/v1/tokens", NULL, 0, false, cols, N(cols));
}

static int
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

static int
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

/* ---- the table of actions, help, options, dispatch ---------------------- */

/* data[len] in base64, NUL-terminated (caller frees; it may be a secret:
 * cleanse before freeing), or NULL when out of memory. */
static char *
b64_of(const unsigned char *data, size_t len)
{
	char *b64 = malloc(len / 3 * 4 + 8);

	if (b64 != NULL)
		EVP_EncodeBlock((unsigned char *)b64, data, (int)len);
	return b64;
}

/* The file at path (at most max octets) in base64; NULL with err set. */
static char *
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

/* ---- the trust collection -------------------------------------------------- */

#define TRUST_FILE_MAX (16u * 1024 * 1024)

/* Both lists: the collection (source service or imported), then the
 * distrust list (source distrusted), which wins over the collection. */
static int
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
static int
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

static int
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

static int
directory_status(struct args *a)
{
	return call_show(a, "GET", strdup("/api/v1/directory"), NULL, show_directory, NULL);
}

/* Queue everyone, then wait until the directory has them or gives up. */
static int
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

/* ---- importing PKCS#12 files into the key archive ------------------------------ */

#define PFX_MAX (16u * 1024 * 1024)

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
static int
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
static int
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

static int
recovery_list(struct args *a)
{
	static const struct column cols[] = { { "ID", "id", NULL }, { "USER", "user", NULL },
		{ "KEYS", NULL, recovery_keys }, { "STATUS", "status", NULL },
		{ "REQUESTER", "requester", NULL }, { "APPROVER", "approver", NULL },
		{ "EXPIRES", "expires", NULL }, { "REASON", "reason", NULL } };

	return list_show(a, "/api/v1/recovery-requests", NULL, 0, true, cols, N(cols));
}

static int
recovery_show(struct args *a)
{
	return call_show(a, "GET", admin_path("/api/v1/recovery-requests/%s", a->pos[0]), NULL,
	    show_recovery, NULL);
}

static int
recovery_approve(struct args *a)
{
	char done[256];

	snprintf(done, sizeof(done), "recovery request %s approved: its requester may fetch it "
	    "now", a->pos[0]);
	return call_show(a, "POST", admin_path("/api/v1/recovery-requests/%s/approve", a->pos[0]),
	    NULL, NULL, done);
}

static int
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
static int
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

/* ---- changes the API had and the command line lacked ---------------------- */

static const char *const purposes[] = { "signing", "encryption", "dual" };
static const char *const br_profiles[] = { "strict", "multipurpose" };
static const char *const key_algs[] = { "ec-p256", "ec-p384", "ec-p521", "rsa-2048",
	"rsa-3072", "rsa-4096" };
#define PROFILE_OPTS (A_PURPOSE | A_CA | A_VALIDITY_DAYS | A_KEY_ALG | A_BR_PROFILE | A_GENERATE)

/* The options given into the profile p (a JSON object); a usage error when wrong. */
static int
profile_apply(const struct args *a, json_t *p)
{
	char set[128];

	if (a->given & A_PURPOSE) {
		join(set, sizeof(set), purposes, N(purposes));
		if (!one_of(a->purpose, purposes, N(purposes)))
			return usage_error(a->cmd, "--purpose: one of %s", set);
		json_object_set_new(p, "purpose", json_string(a->purpose));
	}
	if (a->given & A_CA)
		json_object_set_new(p, "ca", json_string(a->ca));
	if (a->given & A_VALIDITY_DAYS)
		json_object_set_new(p, "validity_days", json_integer(a->validity_days));
	if (a->given & A_KEY_ALG) {
		join(set, sizeof(set), key_algs, N(key_algs));
		if (!one_of(a->key_alg, key_algs, N(key_algs)))
			return usage_error(a->cmd, "--key-alg: one of %s", set);
		json_object_set_new(p, "key_alg", json_string(a->key_alg));
	}
	if (a->given & A_BR_PROFILE) {
		join(set, sizeof(set), br_profiles, N(br_profiles));
		if (!one_of(a->br_profile, br_profiles, N(br_profiles)))
			return usage_error(a->cmd, "--br-profile: one of %s", set);
		json_object_set_new(p, "br_profile", json_string(a->br_profile));
	}
	if (a->given & A_GENERATE)
		json_object_set_new(p, "allow_generate", json_boolean(a->generate));
	return EXIT_OK;
}

static int
profile_create(struct args *a)
{
	json_t *p = json_pack("{s:s}", "name", a->pos[0]);
	int rc;

	if ((a->given & (A_PURPOSE | A_CA)) != (A_PURPOSE | A_CA)) {
		json_decref(p);
		return usage_error(a->cmd, "--purpose and --ca are required");
	}
	if (p == NULL)
		return admin_oom();
	if ((rc = profile_apply(a, p)) != EXIT_OK) {
		json_decref(p);
		return rc;
	}
	return call_show(a, "POST", strdup("/api/v1/profiles"), p, show_profile, NULL);
}

/* Read the profile, change what was given, write it back whole (PUT). */
static int
profile_update(struct args *a)
{
	struct admin_conn *c = NULL;
	json_t *p = NULL;
	char *path = admin_path("/api/v1/profiles/%s", a->pos[0]);
	int rc;

	if ((a->given & PROFILE_OPTS) == 0) {
		free(path);
		return usage_error(a->cmd, "nothing to change: give at least one of --purpose, "
		    "--ca, --validity-days, --key-alg, --br-profile, --[no-]generate");
	}
	if (path == NULL)
		return admin_oom();
	if ((rc = admin_conn_new(&a->conn, &c)) == EXIT_OK &&
	    (rc = admin_call(c, "GET", path, NULL, &p)) == EXIT_OK &&
	    (rc = profile_apply(a, p)) == EXIT_OK) {
		admin_conn_free(c);
		c = NULL;
		rc = call_show(a, "PUT", path, p, show_profile, NULL);
		return rc;
	}
	json_decref(p);
	admin_conn_free(c);
	free(path);
	return rc;
}

static int
profile_delete(struct args *a)
{
	char done[512];

	snprintf(done, sizeof(done), "profile %s deleted (certificates it issued stay)", a->pos[0]);
	return call_show(a, "DELETE", admin_path("/api/v1/profiles/%s", a->pos[0]), NULL, NULL,
	    done);
}

/*
 * smime admin user update USER [--name NAME] [--primary EMAIL] [--alias EMAIL]...:
 * the addresses are the primary (given, or the current one) and the aliases
 * (given: all of them; else the current ones, so that a new primary keeps
 * the old one as an alias).
 */
static int
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

static int
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

/*
 * smime admin ca import ID FILE [--password-file FILE]: a PKCS#12 (the CA
 * and its key), or PEM: the certificate, and its key when the file holds
 * one (a CA without its key here is trusted and published, never signs).
 */
static int
ca_import(struct args *a)
{
	struct smime_error err;
	size_t len = 0;
	unsigned char *data = admin_slurp_file(a->pos[1], PFX_MAX, &len, &err);
	char *password = NULL, *b64 = NULL;
	json_t *body = NULL;

	if (data == NULL)
		return fail("admin", &err);
	if (memmem(data, len, "-----BEGIN ", 11) != NULL) {
		bool key = memmem(data, len, "PRIVATE KEY-----", 16) != NULL;
		body = json_pack("{s:s,s:s%}", "id", a->pos[0], "certificate", (const char *)data, len);
		if (body != NULL && key)
			json_object_set_new(body, "key", json_stringn((const char *)data, len));
	} else {
		g.password_file = a->password_file;
		smime_error_clear(&err);
		if ((password = p12_password(false, &err)) == NULL && err.code != SMIME_OK) {
			OPENSSL_clear_free(data, len);
			return fail("admin", &err);
		}
		if ((b64 = b64_of(data, len)) != NULL)
			body = json_pack("{s:s,s:s,s:s}", "id", a->pos[0], "pkcs12", b64, "password",
			    password != NULL ? password : "");
	}
	OPENSSL_clear_free(data, len);
	if (b64 != NULL)
		OPENSSL_clear_free(b64, strlen(b64));
	secret_free(password);
	if (body == NULL)
		return admin_oom();
	return call_show(a, "POST", strdup("/api/v1/cas"), body, show_ca, NULL);
}

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

/*
 * Unit tests of server/store_sqlite.c through the store interface
 * (server/store.h).  Every test opens its own store in a fresh temporary
 * folder; raw SQLite connections check what the interface cannot show
 * (file modes, the journal mode, the audit triggers).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "testutil.h"
#include "store.h"

#define B (&store_sqlite)

struct fx {
	char *dir;
	struct store *st;
};

/* Fails the test with the store's message when expr is not 0. */
#define CHECK(expr) do { \
	struct smime_error *e_ = &err; \
	int rc_ = (expr); \
	if (rc_ != 0) \
		print_message("%s: %s\n", #expr, e_->message); \
	assert_int_equal(rc_, 0); \
} while (0)

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct smime_error err;

	assert_non_null(f);
	f->dir = tu_tmpdir();
	CHECK(B->open(f->dir, &f->st, &err));
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	B->close(f->st);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

static struct store_tx *
tx_begin(struct store *st, bool write)
{
	struct store_tx *tx = NULL;
	struct smime_error err;

	CHECK(B->begin(st, write, &tx, &err));
	assert_non_null(tx);
	return tx;
}

static void
tx_commit(struct store_tx *tx)
{
	struct smime_error err;

	CHECK(B->commit(tx, &err));
}

static void
idn(char *buf, const char *kind, int n)
{
	/* UUIDv7-like: increasing with n. */
	snprintf(buf, STORE_ID_SIZE, "0190%s-0000-7000-8000-%012d", kind, n);
}

static struct store_user
mk_user(const char *id, const char *name, char **emails, size_t n)
{
	struct store_user u;

	memset(&u, 0, sizeof(u));
	snprintf(u.id, sizeof(u.id), "%s", id);
	u.name = (char *)name;
	u.emails = emails;
	u.n_emails = n;
	u.created = 1700000000;
	u.updated = 1700000000;
	return u;
}

static void
add_user(struct store_tx *tx, const char *id, const char *email)
{
	struct smime_error err;
	char *em[1] = { (char *)email };
	struct store_user u = mk_user(id, "Someone", em, email != NULL ? 1 : 0);

	CHECK(B->user_insert(tx, &u, &err));
}

static unsigned char der_bytes[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };

static struct store_cert
mk_cert(const char *serial, const char *ca_id, const char *user_id, const char *device_id,
    enum cert_purpose purpose, enum cert_status status, int64_t created)
{
	struct store_cert c;

	memset(&c, 0, sizeof(c));
	snprintf(c.serial, sizeof(c.serial), "%s", serial);
	snprintf(c.ca_id, sizeof(c.ca_id), "%s", ca_id);
	snprintf(c.user_id, sizeof(c.user_id), "%s", user_id);
	snprintf(c.device_id, sizeof(c.device_id), "%s", device_id);
	snprintf(c.profile, sizeof(c.profile), "default");
	c.purpose = purpose;
	c.source = SOURCE_ISSUED;
	c.status = status;
	c.subject = (char *)"CN=Someone";
	c.email = (char *)"someone@example.com";
	c.not_before = created;
	c.not_after = created + 86400;
	/* Fingerprints are the key: the serial's octets in hex here, zero-padded. */
	memset(c.sha256, '0', 64);
	for (size_t i = 0; serial[i] != '\0' && i < 32; i++) {
		c.sha256[2 * i] = "0123456789abcdef"[(unsigned char)serial[i] >> 4];
		c.sha256[2 * i + 1] = "0123456789abcdef"[(unsigned char)serial[i] & 15];
	}
	memset(c.sha1, 'b', 40);
	c.der = der_bytes;
	c.der_len = sizeof(der_bytes);
	c.created = created;
	c.revoked_at = 0;
	c.reason = -1;
	return c;
}

static void
add_cert(struct store_tx *tx, const char *serial, const char *ca_id, const char *user_id,
    const char *device_id, enum cert_purpose purpose, enum cert_status status,
    int64_t created)
{
	struct smime_error err;
	struct store_cert c = mk_cert(serial, ca_id, user_id, device_id, purpose, status,
	    created);

	CHECK(B->cert_insert(tx, &c, &err));
}

static char *
db_path(const char *dir)
{
	char *p;

	assert_true(asprintf(&p, "%s/smimed.db", dir) > 0);
	return p;
}

/* One integer from raw SQL on the file at path. */
static int64_t
raw_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int64_t v;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void
raw_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

/* ---------------- opening ---------------- */

static void
test_open_fresh(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx;
	struct stat sb;
	char *path = db_path(f->dir), *wal;
	sqlite3 *db;
	sqlite3_stmt *s;

	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	tx = tx_begin(f->st, true);
	add_user(tx, "u1", "a@example.com");
	tx_commit(tx);
	assert_true(asprintf(&wal, "%s-wal", path) > 0);
	assert_int_equal(stat(wal, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	free(wal);

	assert_int_equal(raw_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(raw_int(path, "PRAGMA application_id"), 0x534d4944);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(db);
	CHECK(B->ping(f->st, &err));
	free(path);
}

static void
test_reopen(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx;
	struct store_user u;
	char *v;

	tx = tx_begin(f->st, true);
	add_user(tx, "u1", "keep@example.com");
	CHECK(B->meta_set(tx, "ca.default", "root", &err));
	tx_commit(tx);
	B->close(f->st);
	f->st = NULL;

	CHECK(B->open(f->dir, &f->st, &err));
	tx = tx_begin(f->st, false);
	CHECK(B->user_get(tx, "keep@example.com", &u, &err));
	assert_string_equal(u.id, "u1");
	store_user_clear(&u);
	CHECK(B->meta_get(tx, "ca.default", &v, &err));
	assert_string_equal(v, "root");
	free(v);
	B->rollback(tx);
}

/* A database the store must refuse to open. */
struct refuse_row {
	const char *name;
	const char *sql;        /* run on a fresh smimed database; NULL: see bytes */
	const char *bytes;      /* written as the whole file when sql is NULL */
	int want;
};

static const struct refuse_row refuse_rows[] = {
	{ "newer schema", "PRAGMA user_version = 99", NULL, SMIME_E_INPUT },
	{ "much newer schema", "PRAGMA user_version = 1000000", NULL, SMIME_E_INPUT },
	{ "another application", "PRAGMA application_id = 42", NULL, SMIME_E_INPUT },
	{ "no version", "PRAGMA user_version = 0", NULL, SMIME_E_INPUT },
	{ "not a database", NULL, "this is not an SQLite database, only some text......"
	    "................................................................", SMIME_E_INPUT },
	{ "foreign database", NULL, "", SMIME_E_INPUT },
};

static void
test_open_refuses(void **state)
{
	struct smime_error err;
	struct store *st;
	(void)state;

	for (size_t i = 0; i < sizeof(refuse_rows) / sizeof(refuse_rows[0]); i++) {
		const struct refuse_row *r = &refuse_rows[i];
		char *dir = tu_tmpdir(), *path = db_path(dir);
		int rc;

		if (r->sql != NULL) {
			CHECK(B->open(dir, &st, &err));
			B->close(st);
			raw_exec(path, r->sql);
		} else if (r->bytes[0] != '\0') {
			FILE *fp = fopen(path, "w");
			assert_non_null(fp);
			fputs(r->bytes, fp);
			fclose(fp);
		} else
			raw_exec(path, "CREATE TABLE theirs (x INTEGER)");
		st = NULL;
		rc = B->open(dir, &st, &err);
		print_message("%s: %s\n", r->name, rc != 0 ? err.message : "opened");
		assert_int_equal(rc, r->want);
		assert_null(st);
		free(path);
		tu_rmrf(dir);
	}
}

/* ---------------- records ---------------- */

static void
test_meta(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	char *v = NULL;

	assert_int_equal(B->meta_get(tx, "missing", &v, &err), SMIME_E_NOTFOUND);
	assert_non_null(strstr(err.message, "missing"));
	assert_null(v);
	CHECK(B->meta_set(tx, "k", "one", &err));
	CHECK(B->meta_set(tx, "k", "two", &err));
	CHECK(B->meta_get(tx, "k", &v, &err));
	assert_string_equal(v, "two");
	free(v);
	CHECK(B->meta_set(tx, "empty", "", &err));
	CHECK(B->meta_get(tx, "empty", &v, &err));
	assert_string_equal(v, "");
	free(v);
	tx_commit(tx);
}

static void
test_user_roundtrip(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx;
	struct store_user u, got, other;
	char *em[] = { "Alice@Example.COM", "alice.smith@example.org", "a@example.net" };
	char *em2[] = { "a@example.net", "new@example.com" };
	char *em3[] = { "alice@example.com" };

	tx = tx_begin(f->st, true);
	u = mk_user("0190aaaa-0000-7000-8000-000000000001", "Alice Smith", em, 3);
	CHECK(B->user_insert(tx, &u, &err));
	tx_commit(tx);

	tx = tx_begin(f->st, false);
	CHECK(B->user_get(tx, u.id, &got, &err));
	assert_string_equal(got.id, u.id);
	assert_string_equal(got.name, "Alice Smith");
	assert_int_equal(got.n_emails, 3);
	assert_string_equal(got.emails[0], "alice@example.com");   /* stored lower-case */
	assert_string_equal(got.emails[1], "alice.smith@example.org");
	assert_string_equal(got.emails[2], "a@example.net");
	assert_int_equal(got.n_groups, 0);
	assert_int_equal(got.created, 1700000000);
	store_user_clear(&got);
	/* By any address, in any case. */
	CHECK(B->user_get(tx, "ALICE.smith@EXAMPLE.org", &got, &err));
	assert_string_equal(got.id, u.id);
	store_user_clear(&got);
	B->rollback(tx);

	/* Update replaces the name and the addresses, in the order given. */
	tx = tx_begin(f->st, true);
	u = mk_user("0190aaaa-0000-7000-8000-000000000001", "Alice Jones", em2, 2);
	u.updated = 1700000500;
	CHECK(B->user_update(tx, &u, &err));
	CHECK(B->user_get(tx, u.id, &got, &err));
	assert_string_equal(got.name, "Alice Jones");
	assert_int_equal(got.n_emails, 2);
	assert_string_equal(got.emails[0], "a@example.net");
	assert_string_equal(got.emails[1], "new@example.com");
	assert_int_equal(got.created, 1700000000);
	assert_int_equal(got.updated, 1700000500);
	store_user_clear(&got);
	/* The dropped address is free again. */
	assert_int_equal(B->user_get(tx, "alice@example.com", &got, &err), SMIME_E_NOTFOUND);
	other = mk_user("0190aaaa-0000-7000-8000-000000000002", "", em3, 1);
	CHECK(B->user_insert(tx, &other, &err));
	/* A user without a name or addresses. */
	other = mk_user("0190aaaa-0000-7000-8000-000000000003", NULL, NULL, 0);
	CHECK(B->user_insert(tx, &other, &err));
	CHECK(B->user_get(tx, other.id, &got, &err));
	assert_string_equal(got.name, "");
	assert_int_equal(got.n_emails, 0);
	assert_null(got.emails);
	store_user_clear(&got);
	tx_commit(tx);
}

struct exists_row {
	const char *name;
	const char *id;
	char *emails[3];
	size_t n;
	int want;
	const char *says;       /* part of the message */
};

static void
test_user_exists(void **state)
{
	static const struct exists_row rows[] = {
		{ "first", "u1", { "taken@example.com", "b@example.com" }, 2, 0, NULL },
		{ "address taken", "u2", { "taken@example.com" }, 1, SMIME_E_EXISTS,
		    "taken@example.com is taken" },
		{ "address taken in another case", "u2", { "x@example.com", "TAKEN@example.COM" },
		    2, SMIME_E_EXISTS, "is taken" },
		{ "same address twice", "u2", { "twice@example.com", "Twice@example.com" }, 2,
		    SMIME_E_EXISTS, "is taken" },
		{ "id taken", "u1", { "fresh@example.com" }, 1, SMIME_E_EXISTS, "u1" },
		{ "second", "u2", { "x@example.com", "twice@example.com" }, 2, 0, NULL },
	};
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_user got;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct exists_row *r = &rows[i];
		struct store_user u = mk_user(r->id, r->name, (char **)r->emails, r->n);
		int rc = B->user_insert(tx, &u, &err);

		print_message("%s: %s\n", r->name, rc != 0 ? err.message : "ok");
		assert_int_equal(rc, r->want);
		if (r->says != NULL)
			assert_non_null(strstr(err.message, r->says));
	}
	/* A failed insert leaves nothing behind: u2's first address of the
	 * refused rows is free, and u2 has only its own. */
	CHECK(B->user_get(tx, "u2", &got, &err));
	assert_int_equal(got.n_emails, 2);
	store_user_clear(&got);
	tx_commit(tx);
}

/* One call with ids that do not exist; each must give NOTFOUND. */
typedef int (*nf_fn)(struct store_tx *tx, struct smime_error *err);

static int
nf_user_get(struct store_tx *tx, struct smime_error *err)
{
	struct store_user u;
	int rc = B->user_get(tx, "nobody@example.com", &u, err);

	if (rc == 0)
		store_user_clear(&u);
	return rc;
}

static int
nf_user_update(struct store_tx *tx, struct smime_error *err)
{
	struct store_user u = mk_user("nobody", "x", NULL, 0);

	return B->user_update(tx, &u, err);
}

static int
nf_user_delete(struct store_tx *tx, struct smime_error *err)
{
	return B->user_delete(tx, "nobody", 100, err);
}

static int
nf_group_get(struct store_tx *tx, struct smime_error *err)
{
	struct store_group g;
	int rc = B->group_get(tx, "nogroup", &g, err);

	if (rc == 0)
		store_group_clear(&g);
	return rc;
}

static int
nf_group_delete(struct store_tx *tx, struct smime_error *err)
{
	return B->group_delete(tx, "nogroup", err);
}

static int
nf_group_update(struct store_tx *tx, struct smime_error *err)
{
	struct store_group g = { .id = "nogroup", .name = (char *)"x", .description = (char *)"" };

	return B->group_update(tx, &g, err);
}

static int
nf_member_add_group(struct store_tx *tx, struct smime_error *err)
{
	return B->group_add_member(tx, "nogroup", "u1", err);
}

static int
nf_member_add_user(struct store_tx *tx, struct smime_error *err)
{
	return B->group_add_member(tx, "g1", "nobody", err);
}

static int
nf_member_remove(struct store_tx *tx, struct smime_error *err)
{
	return B->group_remove_member(tx, "g1", "u1", err);
}

static int
nf_user_list_group(struct store_tx *tx, struct smime_error *err)
{
	struct store_page page = { NULL, 10 };
	struct store_user *v;
	size_t n;
	char *next;

	return B->user_list(tx, &page, "nogroup", &v, &n, &next, err);
}

static int
nf_device_insert(struct store_tx *tx, struct smime_error *err)
{
	struct store_device d;

	memset(&d, 0, sizeof(d));
	strcpy(d.id, "d9");
	strcpy(d.user_id, "nobody");
	return B->device_insert(tx, &d, err);
}

static int
nf_device_get(struct store_tx *tx, struct smime_error *err)
{
	struct store_device d;
	int rc = B->device_get(tx, "nodevice", &d, err);

	if (rc == 0)
		store_device_clear(&d);
	return rc;
}

static int
nf_device_update(struct store_tx *tx, struct smime_error *err)
{
	struct store_device d;

	memset(&d, 0, sizeof(d));
	strcpy(d.id, "nodevice");
	return B->device_update(tx, &d, err);
}

static int
nf_device_delete(struct store_tx *tx, struct smime_error *err)
{
	return B->device_delete(tx, "nodevice", err);
}

static int
nf_device_list_user(struct store_tx *tx, struct smime_error *err)
{
	struct store_page page = { NULL, 10 };
	struct store_device *v;
	size_t n;
	char *next;

	return B->device_list(tx, &page, "nobody", &v, &n, &next, err);
}

static int
nf_ca_get(struct store_tx *tx, struct smime_error *err)
{
	struct store_ca ca;
	int rc = B->ca_get(tx, "noca", &ca, err);

	if (rc == 0)
		store_ca_clear(&ca);
	return rc;
}

static int
nf_ca_set_crl(struct store_tx *tx, struct smime_error *err)
{
	return B->ca_set_crl(tx, "noca", 1, der_bytes, sizeof(der_bytes), 5, err);
}

static int
nf_profile_get(struct store_tx *tx, struct smime_error *err)
{
	struct store_profile p;
	int rc = B->profile_get(tx, "noprofile", &p, err);

	if (rc == 0)
		store_profile_clear(&p);
	return rc;
}

static int
nf_profile_delete(struct store_tx *tx, struct smime_error *err)
{
	return B->profile_delete(tx, "noprofile", err);
}

static int
nf_cert_get(struct store_tx *tx, struct smime_error *err)
{
	struct store_cert c;
	int rc = B->cert_get(tx, "0BADC0DE", &c, err);

	if (rc == 0)
		store_cert_clear(&c);
	return rc;
}

static int
nf_cert_status(struct store_tx *tx, struct smime_error *err)
{
	return B->cert_set_status(tx, "0BADC0DE", STATUS_REVOKED, 5, 1, err);
}

static int
nf_token_get(struct store_tx *tx, struct smime_error *err)
{
	struct store_token t;
	int rc = B->token_get(tx, "notoken", &t, err);

	if (rc == 0)
		store_token_clear(&t);
	return rc;
}

static int
nf_token_revoke(struct store_tx *tx, struct smime_error *err)
{
	return B->token_revoke(tx, "notoken", 5, err);
}

static int
nf_token_touch(struct store_tx *tx, struct smime_error *err)
{
	return B->token_touch(tx, "notoken", 5, 0, NULL, err);
}

static int
nf_meta_get(struct store_tx *tx, struct smime_error *err)
{
	char *v;

	return B->meta_get(tx, "nokey", &v, err);
}

static void
test_notfound(void **state)
{
	static const struct {
		const char *name;
		nf_fn fn;
		const char *says;
	} rows[] = {
		{ "user_get", nf_user_get, "no user 'nobody@example.com'" },
		{ "user_update", nf_user_update, "no user 'nobody'" },
		{ "user_delete", nf_user_delete, "no user 'nobody'" },
		{ "group_get", nf_group_get, "no group 'nogroup'" },
		{ "group_delete", nf_group_delete, "no group 'nogroup'" },
		{ "group_update", nf_group_update, "no group 'nogroup'" },
		{ "add_member, no group", nf_member_add_group, "no group 'nogroup'" },
		{ "add_member, no user", nf_member_add_user, "no user 'nobody'" },
		{ "remove_member, not one", nf_member_remove, "not a member" },
		{ "user_list of no group", nf_user_list_group, "no group" },
		{ "device_insert, no user", nf_device_insert, "no user 'nobody'" },
		{ "device_get", nf_device_get, "no device 'nodevice'" },
		{ "device_update", nf_device_update, "no device 'nodevice'" },
		{ "device_delete", nf_device_delete, "no device 'nodevice'" },
		{ "device_list of no user", nf_device_list_user, "no user" },
		{ "ca_get", nf_ca_get, "no CA 'noca'" },
		{ "ca_set_crl", nf_ca_set_crl, "no CA 'noca'" },
		{ "profile_get", nf_profile_get, "no profile 'noprofile'" },
		{ "profile_delete", nf_profile_delete, "no profile 'noprofile'" },
		{ "cert_get", nf_cert_get, "0BADC0DE" },
		{ "cert_set_status", nf_cert_status, "0BADC0DE" },
		{ "token_get", nf_token_get, "no token 'notoken'" },
		{ "token_revoke", nf_token_revoke, "no token 'notoken'" },
		{ "token_touch", nf_token_touch, "no token 'notoken'" },
		{ "meta_get", nf_meta_get, "nokey" },
	};
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_group g = { .id = "g1", .name = (char *)"staff", .created = 1 };

	add_user(tx, "u1", "u1@example.com");
	CHECK(B->group_insert(tx, &g, &err));
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int rc = rows[i].fn(tx, &err);

		print_message("%s: %s\n", rows[i].name, rc != 0 ? err.message : "ok");
		assert_int_equal(rc, SMIME_E_NOTFOUND);
		assert_non_null(strstr(err.message, rows[i].says));
	}
	tx_commit(tx);
}

/* A list call of kind 'u', 'g', 'd', 'c' or 'a' with a cursor. */
static int
list_with(struct store_tx *tx, char kind, const char *after, size_t limit,
    struct smime_error *err)
{
	struct store_page page = { after, limit };
	size_t n = 0;
	char *next = NULL;
	int rc = -1;

	switch (kind) {
	case 'u': {
		struct store_user *v = NULL;
		rc = B->user_list(tx, &page, NULL, &v, &n, &next, err);
		store_users_free(v, n);
		break;
	}
	case 'g': {
		struct store_group *v = NULL;
		rc = B->group_list(tx, &page, &v, &n, &next, err);
		store_groups_free(v, n);
		break;
	}
	case 'd': {
		struct store_device *v = NULL;
		rc = B->device_list(tx, &page, NULL, &v, &n, &next, err);
		store_devices_free(v, n);
		break;
	}
	case 'c': {
		struct store_cert *v = NULL;
		rc = B->cert_list(tx, &page, NULL, &v, &n, &next, err);
		store_certs_free(v, n);
		break;
	}
	case 'a': {
		struct store_audit *v = NULL;
		rc = B->audit_list(tx, &page, NULL, &v, &n, &next, err);
		store_audits_free(v, n);
		break;
	}
	}
	free(next);
	return rc;
}

static void
test_usage(void **state)
{
	static const struct {
		char kind;
		const char *after;
		size_t limit;
		int want;
	} rows[] = {
		/* good ones first */
		{ 'u', NULL, 1, 0 },
		{ 'u', NULL, 1000, 0 },
		{ 'u', "u.61", 10, 0 },
		{ 'g', "g.7374616666", 10, 0 },
		{ 'd', "d.6431", 10, 0 },
		{ 'c', "c.-5.41", 10, 0 },
		{ 'c', "c.9223372036854775807.41", 10, 0 },
		{ 'c', "c.-9223372036854775808.41", 10, 0 },
		{ 'a', "a.0", 10, 0 },
		{ 'a', "a.9223372036854775807", 10, 0 },
		/* limits */
		{ 'u', NULL, 0, SMIME_E_USAGE },
		{ 'u', NULL, 1001, SMIME_E_USAGE },
		{ 'a', NULL, (size_t)-1, SMIME_E_USAGE },
		/* malformed cursors */
		{ 'u', "", 10, SMIME_E_USAGE },
		{ 'u', "u", 10, SMIME_E_USAGE },
		{ 'u', "u.", 10, SMIME_E_USAGE },
		{ 'u', "u.zz", 10, SMIME_E_USAGE },
		{ 'u', "u.616", 10, SMIME_E_USAGE },
		{ 'u', "u.6A", 10, SMIME_E_USAGE },
		{ 'u', "u.0061", 10, SMIME_E_USAGE },
		{ 'u', "u:61", 10, SMIME_E_USAGE },
		{ 'u', "g.61", 10, SMIME_E_USAGE },
		{ 'g', "u.61", 10, SMIME_E_USAGE },
		{ 'd', "u.61", 10, SMIME_E_USAGE },
		{ 'c', "c.61", 10, SMIME_E_USAGE },
		{ 'c', "c..61", 10, SMIME_E_USAGE },
		{ 'c', "c.1x.61", 10, SMIME_E_USAGE },
		{ 'c', "c.+1.61", 10, SMIME_E_USAGE },
		{ 'c', "c.-.61", 10, SMIME_E_USAGE },
		{ 'c', "c.1.", 10, SMIME_E_USAGE },
		{ 'c', "c.9223372036854775808.41", 10, SMIME_E_USAGE },
		{ 'c', "c.-9223372036854775809.41", 10, SMIME_E_USAGE },
		{ 'c', "c.99999999999999999999.41", 10, SMIME_E_USAGE },
		{ 'c', "u.41", 10, SMIME_E_USAGE },
		{ 'a', "a.", 10, SMIME_E_USAGE },
		{ 'a', "a.-1", 10, SMIME_E_USAGE },
		{ 'a', "a.1x", 10, SMIME_E_USAGE },
		{ 'a', "a. 1", 10, SMIME_E_USAGE },
		{ 'a', "a.9223372036854775808", 10, SMIME_E_USAGE },
		{ 'a', "u.61", 10, SMIME_E_USAGE },
	};
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, false);
	struct store_user u = mk_user("u1", "x", NULL, 0);
	struct store_page page = { NULL, 10 };
	struct store_cert_filter bad_status = { .status = 9 };
	struct store_cert *certs;
	size_t n;
	char *next, *huge;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int rc = list_with(tx, rows[i].kind, rows[i].after, rows[i].limit, &err);

		print_message("%c %s %zu: %s\n", rows[i].kind, rows[i].after ? rows[i].after : "-",
		    rows[i].limit, rc != 0 ? err.message : "ok");
		assert_int_equal(rc, rows[i].want);
	}
	/* A cursor far longer than any key. */
	huge = malloc(20001);
	assert_non_null(huge);
	huge[0] = 'u';
	huge[1] = '.';
	memset(huge + 2, '6', 19998);
	huge[20000] = '\0';
	assert_int_equal(list_with(tx, 'u', huge, 10, &err), SMIME_E_USAGE);
	free(huge);

	/* Writes in a read transaction, savepoints in a read transaction. */
	assert_int_equal(B->user_insert(tx, &u, &err), SMIME_E_USAGE);
	assert_int_equal(B->meta_set(tx, "k", "v", &err), SMIME_E_USAGE);
	assert_int_equal(B->savepoint(tx, &err), SMIME_E_USAGE);
	/* NULL arguments. */
	assert_int_equal(B->user_get(tx, NULL, &u, &err), SMIME_E_USAGE);
	assert_int_equal(B->user_list(tx, NULL, NULL, NULL, NULL, NULL, &err), SMIME_E_USAGE);
	assert_int_equal(B->cert_list(tx, &page, &bad_status, &certs, &n, &next, &err),
	    SMIME_E_USAGE);
	assert_int_equal(B->meta_get(NULL, "k", &next, &err), SMIME_E_USAGE);
	assert_int_equal(B->begin(NULL, false, NULL, &err), SMIME_E_USAGE);
	assert_int_equal(B->commit(NULL, &err), SMIME_E_USAGE);
	B->rollback(NULL);
	B->rollback(tx);

	tx = tx_begin(f->st, true);
	u.emails = NULL;
	u.n_emails = 2;
	assert_int_equal(B->user_insert(tx, &u, &err), SMIME_E_USAGE);
	{
		struct store_cert c = mk_cert("01", "", "", "", PURPOSE_DUAL, STATUS_ACTIVE, 1);
		c.purpose = 7;
		assert_int_equal(B->cert_insert(tx, &c, &err), SMIME_E_USAGE);
		c = mk_cert("01", "", "", "", PURPOSE_DUAL, STATUS_ACTIVE, 1);
		c.der = NULL;
		assert_int_equal(B->cert_insert(tx, &c, &err), SMIME_E_USAGE);
	}
	assert_int_equal(B->cert_set_status(tx, "01", 0, 0, -1, &err), SMIME_E_USAGE);
	assert_int_equal(B->release(tx, &err), SMIME_E_USAGE);
	assert_int_equal(B->rollback_to(tx, &err), SMIME_E_USAGE);
	CHECK(B->savepoint(tx, &err));
	assert_int_equal(B->savepoint(tx, &err), SMIME_E_USAGE);
	CHECK(B->release(tx, &err));
	B->rollback(tx);
}

/* ---------------- pagination ---------------- */

/* Page through all users (of group_id) with limit; checks the order. */
static size_t
page_users(struct store *st, const char *group_id, size_t limit, size_t *pages, size_t *sizes)
{
	struct smime_error err;
	struct store_tx *tx = tx_begin(st, false);
	char last[STORE_ID_SIZE] = "", *cursor = NULL;
	size_t total = 0, np = 0;

	do {
		struct store_page page = { cursor, limit };
		struct store_user *v;
		size_t n;
		char *next;

		CHECK(B->user_list(tx, &page, group_id, &v, &n, &next, &err));
		for (size_t i = 0; i < n; i++) {
			assert_true(strcmp(last, v[i].id) < 0);   /* ordered, no duplicate */
			snprintf(last, sizeof(last), "%s", v[i].id);
			assert_int_equal(v[i].n_emails, 1);
		}
		sizes[np++] = n;
		total += n;
		store_users_free(v, n);
		free(cursor);
		cursor = next;
		if (next != NULL)
			assert_int_equal(n, limit);
	} while (cursor != NULL);
	B->rollback(tx);
	*pages = np;
	return total;
}

static void
test_user_pagination(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_group g = { .id = "g1", .name = (char *)"evens", .created = 1 };
	size_t pages, sizes[16];
	char id[STORE_ID_SIZE], email[64];

	CHECK(B->group_insert(tx, &g, &err));
	/* Inserted out of order: the list follows the ids. */
	for (int i = 0; i < 25; i++) {
		int k = (i * 7) % 25;

		idn(id, "bbbb", k);
		snprintf(email, sizeof(email), "user%d@example.com", k);
		add_user(tx, id, email);
		if (k % 2 == 0)
			CHECK(B->group_add_member(tx, "g1", id, &err));
	}
	tx_commit(tx);

	assert_int_equal(page_users(f->st, NULL, 10, &pages, sizes), 25);
	assert_int_equal(pages, 3);
	assert_int_equal(sizes[0], 10);
	assert_int_equal(sizes[1], 10);
	assert_int_equal(sizes[2], 5);
	/* An exact multiple: the last full page says there is no more. */
	assert_int_equal(page_users(f->st, NULL, 5, &pages, sizes), 25);
	assert_int_equal(pages, 5);
	assert_int_equal(page_users(f->st, NULL, 1000, &pages, sizes), 25);
	assert_int_equal(pages, 1);
	/* Filtered by membership: 13 even ones. */
	assert_int_equal(page_users(f->st, "g1", 4, &pages, sizes), 13);
	assert_int_equal(pages, 4);
	assert_int_equal(sizes[3], 1);
}

/* ---------------- groups, devices ---------------- */

static void
test_groups(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_group g1 = { .id = "g1", .name = (char *)"staff",
	    .description = (char *)"Everyone", .created = 10 };
	struct store_group g2 = { .id = "g2", .name = (char *)"admins", .created = 11 };
	struct store_group dup_name = { .id = "g3", .name = (char *)"staff", .created = 12 };
	struct store_group dup_id = { .id = "g1", .name = (char *)"other", .created = 12 };
	struct store_group got, *v;
	struct store_user u;
	struct store_page page = { NULL, 1 };
	size_t n;
	char *next;

	add_user(tx, "u1", "u1@example.com");
	add_user(tx, "u2", "u2@example.com");
	CHECK(B->group_insert(tx, &g1, &err));
	CHECK(B->group_insert(tx, &g2, &err));
	assert_int_equal(B->group_insert(tx, &dup_name, &err), SMIME_E_EXISTS);
	assert_non_null(strstr(err.message, "a group named 'staff' exists"));
	assert_int_equal(B->group_insert(tx, &dup_id, &err), SMIME_E_EXISTS);
	assert_non_null(strstr(err.message, "g1"));

	CHECK(B->group_add_member(tx, "g1", "u1", &err));
	CHECK(B->group_add_member(tx, "g1", "u2", &err));
	CHECK(B->group_add_member(tx, "g2", "u1", &err));
	assert_int_equal(B->group_add_member(tx, "g1", "u1", &err), SMIME_E_EXISTS);
	assert_non_null(strstr(err.message, "already a member"));

	/* By id and by name; members counted. */
	CHECK(B->group_get(tx, "g1", &got, &err));
	assert_string_equal(got.name, "staff");
	assert_string_equal(got.description, "Everyone");
	assert_int_equal(got.n_members, 2);
	assert_int_equal(got.created, 10);
	store_group_clear(&got);
	CHECK(B->group_get(tx, "admins", &got, &err));
	assert_string_equal(got.id, "g2");
	assert_string_equal(got.description, "");
	assert_int_equal(got.n_members, 1);
	store_group_clear(&got);

	/* A user's groups by name, sorted. */
	CHECK(B->user_get(tx, "u1", &u, &err));
	assert_int_equal(u.n_groups, 2);
	assert_string_equal(u.groups[0], "admins");
	assert_string_equal(u.groups[1], "staff");
	store_user_clear(&u);

	/* Listed by name, one per page. */
	CHECK(B->group_list(tx, &page, &v, &n, &next, &err));
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "admins");
	assert_non_null(next);
	store_groups_free(v, n);
	page.after = next;
	CHECK(B->group_list(tx, &page, &v, &n, &next, &err));
	free((char *)page.after);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "staff");
	assert_null(next);
	store_groups_free(v, n);

	/* Renaming: onto a taken name is EXISTS and changes nothing; members follow. */
	{
		struct store_group gr = { 0 };
		CHECK(B->group_get(tx, "staff", &gr, &err));
		free(gr.name);
		gr.name = strdup("admins");
		assert_int_equal(B->group_update(tx, &gr, &err), SMIME_E_EXISTS);
		free(gr.name);
		gr.name = strdup("staff-2");
		CHECK(B->group_update(tx, &gr, &err));
		store_group_clear(&gr);
		CHECK(B->group_get(tx, "staff-2", &gr, &err));
		assert_string_equal(gr.id, "g1");
		store_group_clear(&gr);
		assert_int_equal(B->group_get(tx, "staff", &gr, &err), SMIME_E_NOTFOUND);
	}
	CHECK(B->group_remove_member(tx, "g1", "u2", &err));
	assert_int_equal(B->group_remove_member(tx, "g1", "u2", &err), SMIME_E_NOTFOUND);
	/* Deleting a group ends its memberships; deleting a user too. */
	CHECK(B->group_delete(tx, "g2", &err));
	CHECK(B->user_get(tx, "u1", &u, &err));
	assert_int_equal(u.n_groups, 1);
	store_user_clear(&u);
	CHECK(B->user_delete(tx, "u1", 100, &err));
	CHECK(B->group_get(tx, "g1", &got, &err));
	assert_int_equal(got.n_members, 0);
	store_group_clear(&got);
	tx_commit(tx);
}

static void
test_devices(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_device d, got, *v;
	struct store_page page = { NULL, 10 };
	size_t n;
	char *next;

	add_user(tx, "u1", "u1@example.com");
	add_user(tx, "u2", "u2@example.com");
	for (int i = 0; i < 3; i++) {
		memset(&d, 0, sizeof(d));
		snprintf(d.id, sizeof(d.id), "d%d", i);
		strcpy(d.user_id, i < 2 ? "u1" : "u2");
		d.name = (char *)"Phone";
		d.platform = (char *)"ios";
		d.created = d.updated = 100 + i;
		CHECK(B->device_insert(tx, &d, &err));
	}
	assert_int_equal(B->device_insert(tx, &d, &err), SMIME_E_EXISTS);
	assert_non_null(strstr(err.message, "d2"));

	CHECK(B->device_get(tx, "d1", &got, &err));
	assert_string_equal(got.user_id, "u1");
	assert_string_equal(got.name, "Phone");
	assert_string_equal(got.platform, "ios");
	assert_int_equal(got.created, 101);
	store_device_clear(&got);

	memset(&d, 0, sizeof(d));
	strcpy(d.id, "d1");
	d.name = (char *)"Laptop";
	d.platform = (char *)"linux";
	d.updated = 500;
	CHECK(B->device_update(tx, &d, &err));
	CHECK(B->device_get(tx, "d1", &got, &err));
	assert_string_equal(got.name, "Laptop");
	assert_string_equal(got.platform, "linux");
	assert_string_equal(got.user_id, "u1");
	assert_int_equal(got.created, 101);
	assert_int_equal(got.updated, 500);
	store_device_clear(&got);

	CHECK(B->device_list(tx, &page, "u1", &v, &n, &next, &err));
	assert_int_equal(n, 2);
	assert_string_equal(v[0].id, "d0");
	assert_string_equal(v[1].id, "d1");
	assert_null(next);
	store_devices_free(v, n);
	page.limit = 2;
	CHECK(B->device_list(tx, &page, NULL, &v, &n, &next, &err));
	assert_int_equal(n, 2);
	assert_non_null(next);
	store_devices_free(v, n);
	page.after = next;
	CHECK(B->device_list(tx, &page, NULL, &v, &n, &next, &err));
	assert_int_equal(n, 1);
	assert_string_equal(v[0].id, "d2");
	assert_null(next);
	store_devices_free(v, n);
	free((char *)page.after);

	CHECK(B->device_delete(tx, "d0", &err));
	/* The user's devices go with the user. */
	CHECK(B->user_delete(tx, "u1", 100, &err));
	assert_int_equal(B->device_get(tx, "d1", &got, &err), SMIME_E_NOTFOUND);
	CHECK(B->device_get(tx, "d2", &got, &err));
	store_device_clear(&got);
	tx_commit(tx);
}

/* ---------------- CAs, profiles ---------------- */

static void
test_cas_profiles(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	unsigned char wrapped[40], crl[3] = { 1, 2, 3 };
	struct store_ca root, sub, got, *cas;
	struct store_profile p, pg, *ps;
	size_t n;

	memset(wrapped, 0x5a, sizeof(wrapped));
	memset(&root, 0, sizeof(root));
	strcpy(root.id, "root");
	root.issuing = false;
	root.key_alg = (char *)"ec-p384";
	root.cert_der = der_bytes;
	root.cert_len = sizeof(der_bytes);
	root.created = 50;
	CHECK(B->ca_insert(tx, &root, &err));
	assert_int_equal(B->ca_insert(tx, &root, &err), SMIME_E_EXISTS);
	sub = root;
	strcpy(sub.id, "issuing-1");
	strcpy(sub.parent_id, "root");
	sub.issuing = true;
	sub.key_alg = (char *)"ec-p256";
	sub.key_wrapped = wrapped;
	sub.key_wrapped_len = sizeof(wrapped);
	sub.created = 60;
	CHECK(B->ca_insert(tx, &sub, &err));

	CHECK(B->ca_get(tx, "root", &got, &err));
	assert_string_equal(got.parent_id, "");
	assert_false(got.issuing);
	assert_null(got.key_wrapped);
	assert_null(got.crl_der);
	assert_int_equal(got.crl_number, 0);
	assert_int_equal(got.cert_len, sizeof(der_bytes));
	assert_memory_equal(got.cert_der, der_bytes, sizeof(der_bytes));
	store_ca_clear(&got);

	CHECK(B->ca_set_crl(tx, "issuing-1", 7, crl, sizeof(crl), 1234, &err));
	CHECK(B->ca_get(tx, "issuing-1", &got, &err));
	assert_true(got.issuing);
	assert_string_equal(got.parent_id, "root");
	assert_string_equal(got.key_alg, "ec-p256");
	assert_int_equal(got.key_wrapped_len, sizeof(wrapped));
	assert_memory_equal(got.key_wrapped, wrapped, sizeof(wrapped));
	assert_int_equal(got.crl_number, 7);
	assert_int_equal(got.crl_len, sizeof(crl));
	assert_memory_equal(got.crl_der, crl, sizeof(crl));
	assert_int_equal(got.crl_updated, 1234);
	store_ca_clear(&got);

	CHECK(B->ca_list(tx, &cas, &n, &err));
	assert_int_equal(n, 2);
	assert_string_equal(cas[0].id, "root");
	assert_string_equal(cas[1].id, "issuing-1");
	store_cas_free(cas, n);

	memset(&p, 0, sizeof(p));
	strcpy(p.name, "default");
	p.purpose = PURPOSE_DUAL;
	strcpy(p.ca_id, "issuing-1");
	p.validity_days = 365;
	p.br_profile = (char *)"multipurpose";
	p.key_alg = (char *)"ec-p256";
	p.allow_generate = true;
	p.created = p.updated = 70;
	CHECK(B->profile_put(tx, &p, &err));
	/* Replaced: created stays, the rest follows. */
	p.validity_days = 30;
	p.allow_generate = false;
	p.br_profile = (char *)"strict";
	p.created = 999;
	p.updated = 80;
	CHECK(B->profile_put(tx, &p, &err));
	CHECK(B->profile_get(tx, "default", &pg, &err));
	assert_int_equal(pg.purpose, PURPOSE_DUAL);
	assert_string_equal(pg.ca_id, "issuing-1");
	assert_int_equal(pg.validity_days, 30);
	assert_string_equal(pg.br_profile, "strict");
	assert_string_equal(pg.key_alg, "ec-p256");
	assert_false(pg.allow_generate);
	assert_int_equal(pg.created, 70);
	assert_int_equal(pg.updated, 80);
	store_profile_clear(&pg);
	strcpy(p.name, "signing");
	p.purpose = PURPOSE_SIGNING;
	CHECK(B->profile_put(tx, &p, &err));
	p.purpose = 0;
	assert_int_equal(B->profile_put(tx, &p, &err), SMIME_E_USAGE);
	CHECK(B->profile_list(tx, &ps, &n, &err));
	assert_int_equal(n, 2);
	assert_string_equal(ps[0].name, "default");
	assert_string_equal(ps[1].name, "signing");
	store_profiles_free(ps, n);
	CHECK(B->profile_delete(tx, "signing", &err));
	CHECK(B->profile_list(tx, &ps, &n, &err));
	assert_int_equal(n, 1);
	store_profiles_free(ps, n);
	tx_commit(tx);
}

/* ---------------- certificates ---------------- */

static void
test_certs(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_cert c, got, *v;
	struct store_page page = { NULL, 7 };
	struct store_cert_filter flt;
	char serial[STORE_SERIAL_SIZE], last_serial[STORE_SERIAL_SIZE] = "", *cursor = NULL;
	int64_t last_created = INT64_MIN;
	size_t n, total = 0, pages = 0;

	c = mk_cert("7F00AA", "issuing-1", "u1", "", PURPOSE_DUAL, STATUS_ACTIVE, 1000);
	CHECK(B->cert_insert(tx, &c, &err));
	assert_int_equal(B->cert_insert(tx, &c, &err), SMIME_E_EXISTS);
	assert_non_null(strstr(err.message, "serial 7F00AA exists"));
	CHECK(B->cert_get(tx, "7F00AA", &got, &err));
	assert_string_equal(got.ca_id, "issuing-1");
	assert_string_equal(got.user_id, "u1");
	assert_string_equal(got.device_id, "");
	assert_string_equal(got.profile, "default");
	assert_int_equal(got.purpose, PURPOSE_DUAL);
	assert_int_equal(got.source, SOURCE_ISSUED);
	assert_int_equal(got.status, STATUS_ACTIVE);
	assert_string_equal(got.subject, "CN=Someone");
	assert_string_equal(got.email, "someone@example.com");
	assert_int_equal(got.not_before, 1000);
	assert_int_equal(got.not_after, 1000 + 86400);
	assert_int_equal(strlen(got.sha256), 64);
	assert_int_equal(strlen(got.sha1), 40);
	assert_int_equal(got.der_len, sizeof(der_bytes));
	assert_memory_equal(got.der, der_bytes, sizeof(der_bytes));
	assert_int_equal(got.revoked_at, 0);
	assert_int_equal(got.reason, -1);
	store_cert_clear(&got);

	/* 24 more: creation times with ties, serials in no order. */
	for (int i = 0; i < 24; i++) {
		snprintf(serial, sizeof(serial), "%04X", (i * 7919) % 65521);
		add_cert(tx, serial, i % 2 ? "issuing-1" : "issuing-2", i % 3 ? "u1" : "u2",
		    i % 4 ? "" : "dev1", PURPOSE_SIGNING, i % 5 ? STATUS_ACTIVE : STATUS_REVOKED,
		    1000 + i / 3);
	}
	tx_commit(tx);

	/* Keyset pagination over (created, serial): all 25 once, in order. */
	tx = tx_begin(f->st, false);
	do {
		char *next;

		page.after = cursor;
		CHECK(B->cert_list(tx, &page, NULL, &v, &n, &next, &err));
		for (size_t i = 0; i < n; i++) {
			assert_true(v[i].created > last_created ||
			    (v[i].created == last_created && strcmp(v[i].serial, last_serial) > 0));
			last_created = v[i].created;
			snprintf(last_serial, sizeof(last_serial), "%s", v[i].serial);
		}
		total += n;
		pages++;
		store_certs_free(v, n);
		free(cursor);
		cursor = next;
	} while (cursor != NULL);
	assert_int_equal(total, 25);
	assert_int_equal(pages, 4);

	/* Filters, alone and together. */
	struct {
		struct store_cert_filter f;
		size_t want;
	} rows[] = {
		{ { NULL, NULL, NULL, 0, 0 }, 25 },
		{ { "u1", NULL, NULL, 0, 0 }, 17 },
		{ { "u2", NULL, NULL, 0, 0 }, 8 },
		{ { NULL, "dev1", NULL, 0, 0 }, 6 },
		{ { NULL, "", NULL, 0, 0 }, 19 },
		{ { NULL, NULL, "issuing-2", 0, 0 }, 12 },
		{ { NULL, NULL, NULL, STATUS_REVOKED, 0 }, 5 },
		{ { "u2", "dev1", "issuing-2", STATUS_REVOKED, 0 }, 1 },
		{ { "u1", NULL, "issuing-1", STATUS_ACTIVE, 0 }, 8 },
		{ { "nobody", NULL, NULL, 0, 0 }, 0 },
	};
	page.after = NULL;
	page.limit = 1000;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *next;

		flt = rows[i].f;
		CHECK(B->cert_list(tx, &page, &flt, &v, &n, &next, &err));
		assert_int_equal(n, rows[i].want);
		assert_null(next);
		for (size_t j = 0; j < n; j++) {
			if (flt.user_id != NULL)
				assert_string_equal(v[j].user_id, flt.user_id);
			if (flt.status != 0)
				assert_int_equal(v[j].status, flt.status);
		}
		store_certs_free(v, n);
	}
	/* Paging a filtered list. */
	page.limit = 3;
	flt = rows[1].f;
	total = 0;
	cursor = NULL;
	do {
		char *next;

		page.after = cursor;
		CHECK(B->cert_list(tx, &page, &flt, &v, &n, &next, &err));
		total += n;
		store_certs_free(v, n);
		free(cursor);
		cursor = next;
	} while (cursor != NULL);
	assert_int_equal(total, 17);
	B->rollback(tx);
}

static void
test_cert_status(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_revoked *r;
	struct store_cert got;
	size_t n;

	add_cert(tx, "0A", "ca1", "u1", "", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 1);
	add_cert(tx, "0B", "ca1", "u1", "", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 2);
	add_cert(tx, "0C", "ca1", "u1", "", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 3);
	add_cert(tx, "0D", "ca1", "u1", "", PURPOSE_SIGNING, STATUS_ACTIVE, 4);
	add_cert(tx, "0E", "ca1", "u1", "dev1", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 5);
	add_cert(tx, "0F", "ca1", "u2", "", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 6);
	add_cert(tx, "10", "ca1", "u1", "", PURPOSE_ENCRYPTION, STATUS_REVOKED, 7);
	add_cert(tx, "11", "ca2", "u1", "", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 8);

	/* u1's encryption certificates without a device, except 0C; 11 of ca2
	 * too (supersede does not look at the CA). */
	CHECK(B->cert_supersede(tx, "u1", "", PURPOSE_ENCRYPTION, "0C", &n, &err));
	assert_int_equal(n, 3);
	CHECK(B->cert_supersede(tx, "u1", "", PURPOSE_ENCRYPTION, "0C", &n, &err));
	assert_int_equal(n, 0);
	CHECK(B->cert_supersede(tx, "u1", NULL, PURPOSE_SIGNING, NULL, &n, &err));
	assert_int_equal(n, 1);
	CHECK(B->cert_get(tx, "0A", &got, &err));
	assert_int_equal(got.status, STATUS_SUPERSEDED);
	store_cert_clear(&got);
	const char *active[] = { "0C", "0E", "0F" };
	for (size_t i = 0; i < 3; i++) {
		CHECK(B->cert_get(tx, active[i], &got, &err));
		assert_int_equal(got.status, STATUS_ACTIVE);
		store_cert_clear(&got);
	}

	/* Revoked: time and reason kept; other statuses clear them. */
	CHECK(B->cert_set_status(tx, "0C", STATUS_REVOKED, 5000, 1, &err));
	CHECK(B->cert_set_status(tx, "0F", STATUS_REVOKED, 6000, 4, &err));
	CHECK(B->cert_set_status(tx, "11", STATUS_REVOKED, 7000, 0, &err));
	CHECK(B->cert_get(tx, "0C", &got, &err));
	assert_int_equal(got.status, STATUS_REVOKED);
	assert_int_equal(got.revoked_at, 5000);
	assert_int_equal(got.reason, 1);
	store_cert_clear(&got);
	CHECK(B->cert_set_status(tx, "0E", STATUS_EXPIRED, 9999, 3, &err));
	CHECK(B->cert_get(tx, "0E", &got, &err));
	assert_int_equal(got.status, STATUS_EXPIRED);
	assert_int_equal(got.revoked_at, 0);
	assert_int_equal(got.reason, -1);
	store_cert_clear(&got);

	CHECK(B->cert_revoked(tx, "ca1", &r, &n, &err));
	assert_int_equal(n, 3);
	assert_string_equal(r[0].serial, "0C");
	assert_int_equal(r[0].revoked_at, 5000);
	assert_int_equal(r[0].reason, 1);
	assert_string_equal(r[1].serial, "0F");
	assert_int_equal(r[1].reason, 4);
	assert_string_equal(r[2].serial, "10");
	free(r);
	CHECK(B->cert_revoked(tx, "ca2", &r, &n, &err));
	assert_int_equal(n, 1);
	free(r);
	CHECK(B->cert_revoked(tx, "ca9", &r, &n, &err));
	assert_int_equal(n, 0);
	assert_null(r);
	tx_commit(tx);
}

static void
test_user_delete_keeps_certs(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_cert got;
	struct store_user u;

	add_user(tx, "u1", "gone@example.com");
	add_cert(tx, "0A", "ca1", "u1", "", PURPOSE_DUAL, STATUS_ACTIVE, 1);
	tx_commit(tx);

	tx = tx_begin(f->st, true);
	CHECK(B->user_delete(tx, "u1", 100, &err));
	assert_int_equal(B->user_delete(tx, "u1", 100, &err), SMIME_E_NOTFOUND);
	tx_commit(tx);

	tx = tx_begin(f->st, false);
	assert_int_equal(B->user_get(tx, "gone@example.com", &u, &err), SMIME_E_NOTFOUND);
	CHECK(B->cert_get(tx, "0A", &got, &err));
	assert_string_equal(got.user_id, "u1");
	store_cert_clear(&got);
	B->rollback(tx);
}

/* A deleted user keeps addresses, certificates and archived keys until a
 * purge; its addresses go to a new user only when released. */
static void
test_user_deleted_keeps_archive(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_user u, *v;
	struct store_page page = { NULL, 10 };
	const char *addr[2] = { "Gone@Example.com", "free@example.com" };
	unsigned char *sealed;
	char sha[65], *next = NULL;
	size_t n, len;

	add_user(tx, "u1", "gone@example.com");
	add_user(tx, "u2", "stays@example.com");
	add_cert(tx, "0A", "ca1", "u1", "", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 1);
	add_cert(tx, "0B", "ca1", "u1", "", PURPOSE_ENCRYPTION, STATUS_SUPERSEDED, 2);
	add_cert(tx, "0C", "ca1", "u2", "", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 3);
	/* Archived by the certificates' fingerprints (mk_cert's). */
	char fa[65], fb[65], fc[65];
	snprintf(fa, sizeof(fa), "%s", mk_cert("0A", "", "", "", 1, 1, 0).sha256);
	snprintf(fb, sizeof(fb), "%s", mk_cert("0B", "", "", "", 1, 1, 0).sha256);
	snprintf(fc, sizeof(fc), "%s", mk_cert("0C", "", "", "", 1, 1, 0).sha256);
	CHECK(B->archive_put(tx, fa, (const unsigned char *)"k-0A", 4, 1, &err));
	CHECK(B->archive_put(tx, fb, (const unsigned char *)"k-0B", 4, 2, &err));
	CHECK(B->archive_put(tx, fc, (const unsigned char *)"k-0C", 4, 3, &err));
	/* Purge refuses a user who is not deleted. */
	assert_int_equal(B->user_purge(tx, "u1", &n, &err), SMIME_E_POLICY);
	CHECK(B->user_delete(tx, "u1", 1000, &err));
	tx_commit(tx);

	tx = tx_begin(f->st, true);
	/* Gone for user_get and the list, there for user_find and the deleted list. */
	assert_int_equal(B->user_get(tx, "u1", &u, &err), SMIME_E_NOTFOUND);
	assert_int_equal(B->user_get(tx, "gone@example.com", &u, &err), SMIME_E_NOTFOUND);
	CHECK(B->user_find(tx, "GONE@example.com", &u, &err));
	assert_string_equal(u.id, "u1");
	assert_int_equal(u.deleted, 1000);
	assert_int_equal(u.n_emails, 1);
	store_user_clear(&u);
	CHECK(B->user_find(tx, "u2", &u, &err));
	assert_int_equal(u.deleted, 0);
	store_user_clear(&u);
	CHECK(B->user_list(tx, &page, NULL, &v, &n, &next, &err));
	assert_int_equal(n, 1);
	assert_string_equal(v[0].id, "u2");
	store_users_free(v, n);
	CHECK(B->user_list_deleted(tx, &page, &v, &n, &next, &err));
	assert_int_equal(n, 1);
	assert_string_equal(v[0].id, "u1");
	assert_string_equal(v[0].emails[0], "gone@example.com");
	store_users_free(v, n);
	/* Its address is not free without a choice ... */
	{
		char *em[1] = { (char *)"gone@example.com" };
		struct store_user nu = mk_user("u3", "New", em, 1);
		assert_int_equal(B->user_insert(tx, &nu, &err), SMIME_E_EXISTS);
		/* ... and released, it is; a live user's address is not released. */
		const char *live[1] = { "stays@example.com" };
		CHECK(B->user_release_addresses(tx, live, 1, &n, &err));
		assert_int_equal(n, 0);
		CHECK(B->user_release_addresses(tx, addr, 2, &n, &err));
		assert_int_equal(n, 1);
		CHECK(B->user_insert(tx, &nu, &err));
	}
	/* The address finds the new user; the deleted one by id, or by the
	 * former address when no live user holds it. */
	CHECK(B->user_find(tx, "gone@example.com", &u, &err));
	assert_string_equal(u.id, "u3");
	store_user_clear(&u);
	CHECK(B->user_find(tx, "u1", &u, &err));
	assert_int_equal(u.n_emails, 1);
	assert_string_equal(u.emails[0], "gone@example.com");
	store_user_clear(&u);
	CHECK(B->user_delete(tx, "u3", 2000, &err));
	CHECK(B->user_find(tx, "gone@example.com", &u, &err));
	assert_string_equal(u.id, "u3");
	store_user_clear(&u);
	/* The keys are all there. */
	CHECK(B->archive_stat(tx, &n, sha, &sealed, &len, &err));
	assert_int_equal(n, 3);
	assert_string_equal(sha, fc);
	assert_int_equal(len, 4);
	assert_memory_equal(sealed, "k-0C", 4);
	free(sealed);
	/* The purge destroys u1's two keys and u1, and nothing of u2. */
	CHECK(B->user_purge(tx, "u1", &n, &err));
	assert_int_equal(n, 2);
	assert_int_equal(B->user_find(tx, "u1", &u, &err), SMIME_E_NOTFOUND);
	assert_int_equal(B->archive_get(tx, fa, &sealed, &len, &err), SMIME_E_NOTFOUND);
	assert_int_equal(B->archive_get(tx, fb, &sealed, &len, &err), SMIME_E_NOTFOUND);
	CHECK(B->archive_get(tx, fc, &sealed, &len, &err));
	free(sealed);
	{
		struct store_cert c;
		CHECK(B->cert_get(tx, "0A", &c, &err));   /* the history stays recorded */
		store_cert_clear(&c);
	}
	assert_int_equal(B->user_purge(tx, "u1", &n, &err), SMIME_E_NOTFOUND);
	tx_commit(tx);
}

static void
test_recovery_requests(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_recovery r, got, *v;
	struct store_page page = { NULL, 1 };
	char *next = NULL;
	size_t n;

	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "r1");
	snprintf(r.user_id, sizeof(r.user_id), "u1");
	r.reason = (char *)"legal hold";
	r.requester = (char *)"token:A";
	r.status = RECOVERY_PENDING;
	r.created = 10;
	r.expires = 100;
	CHECK(B->recovery_insert(tx, &r, &err));
	assert_int_equal(B->recovery_insert(tx, &r, &err), SMIME_E_EXISTS);
	snprintf(r.id, sizeof(r.id), "r2");
	snprintf(r.cert, sizeof(r.cert), "%064d", 7);
	CHECK(B->recovery_insert(tx, &r, &err));
	CHECK(B->recovery_get(tx, "r1", &got, &err));
	assert_string_equal(got.reason, "legal hold");
	assert_string_equal(got.requester, "token:A");
	assert_string_equal(got.approver, "");
	assert_string_equal(got.cert, "");
	assert_int_equal(got.status, RECOVERY_PENDING);
	assert_int_equal(got.expires, 100);
	store_recovery_clear(&got);
	assert_int_equal(B->recovery_get(tx, "r9", &got, &err), SMIME_E_NOTFOUND);
	/* Exported only once approved; approved only once. */
	assert_int_equal(B->recovery_decide(tx, "r1", RECOVERY_APPROVED, RECOVERY_EXPORTED,
	    "token:A", 20, &err), SMIME_E_EXISTS);
	CHECK(B->recovery_decide(tx, "r1", RECOVERY_PENDING, RECOVERY_APPROVED, "token:B", 20, &err));
	assert_int_equal(B->recovery_decide(tx, "r1", RECOVERY_PENDING, RECOVERY_APPROVED,
	    "token:C", 21, &err), SMIME_E_EXISTS);
	CHECK(B->recovery_decide(tx, "r1", RECOVERY_APPROVED, RECOVERY_EXPORTED, "token:A", 30, &err));
	CHECK(B->recovery_get(tx, "r1", &got, &err));
	assert_string_equal(got.approver, "token:B");
	assert_int_equal(got.status, RECOVERY_EXPORTED);
	assert_int_equal(got.decided, 30);
	store_recovery_clear(&got);
	/* Pages, oldest first. */
	CHECK(B->recovery_list(tx, &page, &v, &n, &next, &err));
	assert_int_equal(n, 1);
	assert_string_equal(v[0].id, "r1");
	assert_non_null(next);
	store_recoveries_free(v, n);
	page.after = next;
	CHECK(B->recovery_list(tx, &page, &v, &n, &next, &err));
	assert_int_equal(n, 1);
	assert_string_equal(v[0].id, "r2");
	assert_string_equal(v[0].cert, r.cert);
	assert_null(next);
	store_recoveries_free(v, n);
	free((char *)page.after);
	tx_commit(tx);
}

/* ---------------- tokens, audit ---------------- */

static void
test_tokens(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_token t, got, *v;
	size_t n;

	bool touched;

	memset(&t, 0, sizeof(t));
	strcpy(t.id, "t1");
	t.name = (char *)"ci";
	for (size_t i = 0; i < sizeof(t.hash); i++)
		t.hash[i] = (unsigned char)i;
	t.created = 10;
	/* A token has exactly one role: none, two, or an unknown one is refused. */
	assert_int_equal(B->token_insert(tx, &t, &err), SMIME_E_USAGE);
	t.role = ROLE_ADMIN | ROLE_RECOVERY;
	assert_int_equal(B->token_insert(tx, &t, &err), SMIME_E_USAGE);
	t.role = 16;
	assert_int_equal(B->token_insert(tx, &t, &err), SMIME_E_USAGE);
	t.role = ROLE_ADMIN;
	/* Who made a token is kept: "system" at the first start, else the token's id. */
	strcpy(t.created_by, "system");
	CHECK(B->token_insert(tx, &t, &err));
	assert_int_equal(B->token_insert(tx, &t, &err), SMIME_E_EXISTS);
	strcpy(t.id, "t2");
	t.name = (char *)"backup";
	t.created = 20;
	t.role = ROLE_RECOVERY;
	t.expires = 5000;
	strcpy(t.created_by, "t1");
	CHECK(B->token_insert(tx, &t, &err));

	/* A use is recorded once per interval: the second touch within it changes nothing. */
	CHECK(B->token_touch(tx, "t1", 100, 3600, &touched, &err));
	assert_true(touched);
	CHECK(B->token_touch(tx, "t1", 3699, 3600, &touched, &err));
	assert_false(touched);
	CHECK(B->token_get(tx, "t1", &got, &err));
	assert_int_equal(got.last_used, 100);
	store_token_clear(&got);
	CHECK(B->token_touch(tx, "t1", 3700, 3600, &touched, &err));
	assert_true(touched);
	CHECK(B->token_touch(tx, "t1", 100, 0, &touched, &err));  /* the clock went back */
	assert_false(touched);
	assert_int_equal(B->token_touch(tx, "t1", 100, -1, &touched, &err), SMIME_E_USAGE);
	CHECK(B->token_touch(tx, "t1", 3800, 0, NULL, &err));
	CHECK(B->token_revoke(tx, "t1", 200, &err));
	CHECK(B->token_revoke(tx, "t1", 300, &err));   /* again: the first time stays */
	CHECK(B->token_get(tx, "t1", &got, &err));
	assert_string_equal(got.name, "ci");
	assert_memory_equal(got.hash, t.hash, sizeof(t.hash));
	assert_int_equal(got.created, 10);
	assert_int_equal(got.last_used, 3800);
	assert_int_equal(got.revoked_at, 200);
	assert_int_equal(got.role, ROLE_ADMIN);
	assert_int_equal(got.expires, 0);
	assert_string_equal(got.created_by, "system");
	store_token_clear(&got);

	CHECK(B->token_list(tx, &v, &n, &err));
	assert_int_equal(n, 2);
	assert_string_equal(v[0].id, "t1");
	assert_string_equal(v[1].id, "t2");
	assert_int_equal(v[1].revoked_at, 0);
	assert_int_equal(v[1].role, ROLE_RECOVERY);
	assert_int_equal(v[1].expires, 5000);
	assert_string_equal(v[1].created_by, "t1");
	store_tokens_free(v, n);
	tx_commit(tx);
}

static void
test_audit(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_page page = { NULL, 2 };
	struct store_audit a, *v;
	int64_t prev = 0;
	size_t n, total = 0;
	char *path = db_path(f->dir), *cursor = NULL, *msg = NULL;
	sqlite3 *db;
	int rc;

	for (int i = 0; i < 5; i++) {
		memset(&a, 0, sizeof(a));
		a.time = 1000 + i;
		a.actor = (char *)"token:t1";
		a.action = (char *)"user.create";
		a.object = i == 0 ? NULL : (char *)"u1";
		a.detail = i == 0 ? NULL : (char *)"{\"n\":1}";
		CHECK(B->audit_append(tx, &a, &err));
		assert_true(a.seq > prev);
		assert_int_equal(a.time, 1000 + i);
		prev = a.seq;
	}
	a.actor = NULL;
	assert_int_equal(B->audit_append(tx, &a, &err), SMIME_E_USAGE);
	tx_commit(tx);

	tx = tx_begin(f->st, false);
	prev = 0;
	do {
		char *next;

		page.after = cursor;
		CHECK(B->audit_list(tx, &page, NULL, &v, &n, &next, &err));
		for (size_t i = 0; i < n; i++) {
			assert_true(v[i].seq > prev);
			prev = v[i].seq;
			assert_string_equal(v[i].actor, "token:t1");
			if (total + i == 0) {
				assert_string_equal(v[i].object, "");
				assert_string_equal(v[i].detail, "{}");
			} else
				assert_string_equal(v[i].detail, "{\"n\":1}");
		}
		total += n;
		store_audits_free(v, n);
		free(cursor);
		cursor = next;
	} while (cursor != NULL);
	assert_int_equal(total, 5);
	B->rollback(tx);

	/* The database itself refuses to change or drop audit rows. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	rc = sqlite3_exec(db, "UPDATE audit SET actor = 'someone else'", NULL, NULL, &msg);
	assert_int_equal(rc, SQLITE_CONSTRAINT);
	assert_non_null(strstr(msg, "append-only"));
	sqlite3_free(msg);
	msg = NULL;
	rc = sqlite3_exec(db, "DELETE FROM audit WHERE seq = 1", NULL, NULL, &msg);
	assert_int_equal(rc, SQLITE_CONSTRAINT);
	assert_non_null(strstr(msg, "append-only"));
	sqlite3_free(msg);
	sqlite3_close(db);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM audit WHERE actor = 'token:t1'"), 5);
	free(path);
}

/* The seqs audit_list gives for f, all pages of two rows followed. */
static size_t
audit_seqs(struct store_tx *tx, const struct store_audit_filter *f, int64_t *seqs, size_t max)
{
	struct store_page page = { NULL, 2 };
	struct smime_error err;
	struct store_audit *v;
	char *cursor = NULL;
	size_t n, total = 0;

	do {
		char *next;

		page.after = cursor;
		CHECK(B->audit_list(tx, &page, f, &v, &n, &next, &err));
		for (size_t i = 0; i < n; i++) {
			assert_true(total < max);
			seqs[total++] = v[i].seq;
		}
		store_audits_free(v, n);
		free(cursor);
		cursor = next;
	} while (cursor != NULL);
	return total;
}

static void
test_audit_filter(void **state)
{
	static const struct {
		int64_t time;
		const char *actor, *action, *user;
	} rows[] = {
		{ 100, "token:a", "user.create", "u1" },
		{ 200, "token:a", "cert.issue", "u1" },
		{ 300, "token:b", "cert.revoke", "u2" },
		{ 400, "system", "ca.create", NULL },
		{ 500, "token:b", "certificate.odd", "u1" },  /* "cert.*" must not take it */
		{ 600, "token:a", "cert.issue", "u2" },
		{ 700, "token:b", "token.use", NULL },
	};
	static const struct {
		const char *name;
		struct store_audit_filter f;
		size_t n;
		int64_t want[7];             /* indexes into rows */
	} cases[] = {
		{ "none", { 0 }, 7, { 0, 1, 2, 3, 4, 5, 6 } },
		{ "actor", { .actor = "token:a" }, 3, { 0, 1, 5 } },
		{ "actor unknown", { .actor = "token:z" }, 0, { 0 } },
		{ "action", { .action = "cert.issue" }, 2, { 1, 5 } },
		{ "action prefix", { .action = "cert.*" }, 3, { 1, 2, 5 } },
		{ "user", { .user_id = "u1" }, 3, { 0, 1, 4 } },
		{ "since", { .since = 300 }, 5, { 2, 3, 4, 5, 6 } },
		{ "until", { .until = 300 }, 2, { 0, 1 } },
		{ "since and until", { .since = 200, .until = 600 }, 4, { 1, 2, 3, 4 } },
		{ "all at once", { .actor = "token:a", .action = "cert.*", .user_id = "u2",
		    .since = 100, .until = 700 }, 1, { 5 } },
		{ "empty range", { .since = 500, .until = 500 }, 0, { 0 } },
	};
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_page page = { NULL, 10 };
	struct store_audit a, *v;
	struct store_audit_filter bad;
	int64_t seqs[8], seq_of[7];
	size_t n;
	char *next;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&a, 0, sizeof(a));
		a.time = rows[i].time;
		a.actor = (char *)rows[i].actor;
		a.action = (char *)rows[i].action;
		a.user_id = (char *)rows[i].user;
		CHECK(B->audit_append(tx, &a, &err));
		seq_of[i] = a.seq;
	}
	tx_commit(tx);

	tx = tx_begin(f->st, false);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		print_message("%s\n", cases[c].name);
		n = audit_seqs(tx, &cases[c].f, seqs, 8);
		assert_int_equal(n, cases[c].n);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(seqs[i], seq_of[cases[c].want[i]]);
	}
	/* The user a row concerns comes back. */
	CHECK(B->audit_list(tx, &page, &(struct store_audit_filter){ .actor = "system" }, &v, &n,
	    &next, &err));
	assert_int_equal(n, 1);
	assert_string_equal(v[0].user_id, "");
	store_audits_free(v, n);
	CHECK(B->audit_list(tx, &page, &(struct store_audit_filter){ .user_id = "u2" }, &v, &n,
	    &next, &err));
	assert_int_equal(n, 2);
	assert_string_equal(v[0].user_id, "u2");
	store_audits_free(v, n);
	/* Empty values and negative times are the caller's mistake. */
	memset(&bad, 0, sizeof(bad));
	bad.actor = "";
	assert_int_equal(B->audit_list(tx, &page, &bad, &v, &n, &next, &err), SMIME_E_USAGE);
	memset(&bad, 0, sizeof(bad));
	bad.action = "";
	assert_int_equal(B->audit_list(tx, &page, &bad, &v, &n, &next, &err), SMIME_E_USAGE);
	memset(&bad, 0, sizeof(bad));
	bad.user_id = "";
	assert_int_equal(B->audit_list(tx, &page, &bad, &v, &n, &next, &err), SMIME_E_USAGE);
	memset(&bad, 0, sizeof(bad));
	bad.since = -1;
	assert_int_equal(B->audit_list(tx, &page, &bad, &v, &n, &next, &err), SMIME_E_USAGE);
	B->rollback(tx);
}

/* A version 4 store (before roles and audit users) is migrated: its tokens
 * stay admins that never expire, and its audit rows get their users. */
static void
test_migrate_roles(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx;
	struct store_token t;
	struct store_audit *v;
	struct store_page page = { NULL, 10 };
	char *path = db_path(f->dir), *next;
	size_t n;

	B->close(f->st);
	f->st = NULL;
	/* Back to the version 4 schema (each later migration undone, the
	 * newest first: 6 -> 7, then 5 -> 6), with rows as version 4 wrote them. */
	raw_exec(path, "DROP TRIGGER publish_cert_withdraw; ALTER TABLE certs DROP COLUMN withdrawn;"
	    "DROP TABLE distrust;"
	    "DROP TABLE recovery_requests; DROP TABLE user_former_emails;"
	    "DROP INDEX users_deleted; ALTER TABLE users DROP COLUMN deleted;");
	raw_exec(path, "DROP INDEX audit_actor; DROP INDEX audit_action; DROP INDEX audit_user;"
	    "ALTER TABLE tokens DROP COLUMN role; ALTER TABLE tokens DROP COLUMN expires;"
	    "ALTER TABLE tokens DROP COLUMN created_by;"
	    "ALTER TABLE audit DROP COLUMN user_id;"
	    "INSERT INTO tokens (id, name, hash, created) VALUES ('old', 'initial',"
	    "  zeroblob(32), 7), ('kid', 'second', zeroblob(32), 8),"
	    "  ('lost', 'no trail', zeroblob(32), 9);"
	    "INSERT INTO audit (time, actor, action, object, detail) VALUES"
	    "  (1, 'system', 'token.create', 'old', '{\"name\":\"initial\"}'),"
	    "  (1, 'token:old', 'token.create', 'kid', '{\"name\":\"second\"}'),"
	    "  (2, 'token:old', 'user.create', 'u9', '{\"emails\":[]}'),"
	    "  (3, 'token:old', 'cert.issue', 'AB12', '{\"user\":\"u8\"}'),"
	    "  (4, 'token:old', 'archive.recover', 'u7', '{\"serials\":[]}'),"
	    "  (5, 'token:old', 'user.delete', 'u9', 'not json');"
	    "PRAGMA user_version = 4;");
	CHECK(B->open(f->dir, &f->st, &err));
	assert_int_equal(raw_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	tx = tx_begin(f->st, false);
	CHECK(B->token_get(tx, "old", &t, &err));
	assert_int_equal(t.role, ROLE_ADMIN);
	assert_int_equal(t.expires, 0);
	assert_int_equal(t.created, 7);
	/* Who made each token comes from its token.create row; none: unknown (""). */
	assert_string_equal(t.created_by, "system");
	store_token_clear(&t);
	CHECK(B->token_get(tx, "kid", &t, &err));
	assert_string_equal(t.created_by, "old");
	store_token_clear(&t);
	CHECK(B->token_get(tx, "lost", &t, &err));
	assert_string_equal(t.created_by, "");
	store_token_clear(&t);
	CHECK(B->audit_list(tx, &page, NULL, &v, &n, &next, &err));
	assert_int_equal(n, 6);
	assert_string_equal(v[0].user_id, "");
	assert_string_equal(v[1].user_id, "");
	assert_string_equal(v[2].user_id, "u9");
	assert_string_equal(v[3].user_id, "u8");
	assert_string_equal(v[4].user_id, "u7");
	assert_string_equal(v[5].user_id, "u9");
	store_audits_free(v, n);
	B->rollback(tx);
	/* Still append-only after the migration lifted the trigger for a moment. */
	assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
	    " AND name IN ('audit_no_update', 'audit_no_delete')"), 2);
	free(path);
}

/* ---------------- transactions ---------------- */

static void
test_rollback(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_user u;

	add_user(tx, "u1", "u1@example.com");
	B->rollback(tx);
	tx = tx_begin(f->st, false);
	assert_int_equal(B->user_get(tx, "u1", &u, &err), SMIME_E_NOTFOUND);
	B->rollback(tx);
}

static void
test_savepoint(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_user u;

	add_user(tx, "a", "a@example.com");
	CHECK(B->savepoint(tx, &err));
	add_user(tx, "b", "b@example.com");
	CHECK(B->rollback_to(tx, &err));
	CHECK(B->savepoint(tx, &err));
	add_user(tx, "c", "c@example.com");
	CHECK(B->release(tx, &err));
	/* After a failed request the committer undoes only that one. */
	CHECK(B->savepoint(tx, &err));
	add_user(tx, "d", "d@example.com");
	assert_int_equal(B->user_get(tx, "d", &u, &err), 0);
	store_user_clear(&u);
	CHECK(B->rollback_to(tx, &err));
	tx_commit(tx);

	tx = tx_begin(f->st, false);
	CHECK(B->user_get(tx, "a", &u, &err));
	store_user_clear(&u);
	CHECK(B->user_get(tx, "c", &u, &err));
	store_user_clear(&u);
	assert_int_equal(B->user_get(tx, "b", &u, &err), SMIME_E_NOTFOUND);
	assert_int_equal(B->user_get(tx, "b@example.com", &u, &err), SMIME_E_NOTFOUND);
	assert_int_equal(B->user_get(tx, "d", &u, &err), SMIME_E_NOTFOUND);
	B->rollback(tx);
}

static void
test_visibility(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *old, *w, *fresh;
	struct store_user u;
	char *v;

	/* A read transaction keeps its snapshot; a later one sees the commit. */
	w = tx_begin(f->st, true);
	CHECK(B->meta_set(w, "k", "1", &err));
	tx_commit(w);
	old = tx_begin(f->st, false);
	CHECK(B->meta_get(old, "k", &v, &err));
	free(v);
	w = tx_begin(f->st, true);
	add_user(w, "u1", "u1@example.com");
	tx_commit(w);
	fresh = tx_begin(f->st, false);
	CHECK(B->user_get(fresh, "u1@example.com", &u, &err));
	store_user_clear(&u);
	assert_int_equal(B->user_get(old, "u1", &u, &err), SMIME_E_NOTFOUND);
	B->rollback(fresh);
	tx_commit(old);
}

/* ---------------- backup, restore ---------------- */

struct writer {
	struct store *st;
	atomic_int stop;
	atomic_int written;
	atomic_int errors;
};

/* Each transaction: one user with two addresses and one audit row. */
static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	struct smime_error err;
	int i = 0;

	while (!atomic_load(&w->stop)) {
		struct store_tx *tx;
		char id[STORE_ID_SIZE], e1[64], e2[64];
		char *em[2] = { e1, e2 };
		struct store_user u;
		struct store_audit a = { .actor = (char *)"system", .action = (char *)"user.create" };

		idn(id, "cccc", i);
		snprintf(e1, sizeof(e1), "w%d@example.com", i);
		snprintf(e2, sizeof(e2), "w%d@example.org", i);
		u = mk_user(id, "Writer", em, 2);
		a.object = id;
		if (B->begin(w->st, true, &tx, &err) != 0) {
			atomic_fetch_add(&w->errors, 1);
			continue;
		}
		if (B->user_insert(tx, &u, &err) != 0 || B->audit_append(tx, &a, &err) != 0) {
			print_message("writer: %s\n", err.message);
			atomic_fetch_add(&w->errors, 1);
			B->rollback(tx);
			continue;
		}
		if (B->commit(tx, &err) != 0) {
			atomic_fetch_add(&w->errors, 1);
			continue;
		}
		atomic_fetch_add(&w->written, 1);
		i++;
	}
	return NULL;
}

static void
wait_written(struct writer *w, int n)
{
	struct timespec ts = { 0, 2000000 };

	for (int i = 0; i < 30000 && atomic_load(&w->written) < n; i++)
		nanosleep(&ts, NULL);
	assert_true(atomic_load(&w->written) >= n);
}

static void
test_backup_while_writing(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct writer w = { .st = f->st };
	pthread_t th;
	struct stat sb;
	char *dir2 = tu_tmpdir(), *bpath = db_path(dir2);
	struct store *copy;
	struct store_tx *tx;
	struct store_page page = { NULL, 1000 };
	struct store_user *v;
	size_t n, audits;
	char *next;
	int at_backup;

	assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
	wait_written(&w, 10);
	CHECK(B->backup(f->st, bpath, &err));
	at_backup = atomic_load(&w.written);
	wait_written(&w, at_backup + 5);
	atomic_store(&w.stop, 1);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&w.errors), 0);

	assert_int_equal(stat(bpath, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* A self-contained file: no journal beside it. */
	assert_int_equal(raw_int(bpath, "SELECT count(*) FROM pragma_journal_mode "
	    "WHERE journal_mode = 'delete'"), 1);

	CHECK(B->open(dir2, &copy, &err));
	tx = tx_begin(copy, false);
	CHECK(B->user_list(tx, &page, NULL, &v, &n, &next, &err));
	assert_null(next);
	print_message("backup holds %zu of %d users\n", n, atomic_load(&w.written));
	assert_true(n >= 10);
	assert_true(n <= (size_t)atomic_load(&w.written));
	/* One snapshot: every user whole, and one audit row for each. */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i].n_emails, 2);
	store_users_free(v, n);
	B->rollback(tx);
	B->close(copy);
	audits = (size_t)raw_int(bpath, "SELECT count(*) FROM audit");
	assert_int_equal(audits, n);
	free(bpath);
	tu_rmrf(dir2);
}

static void
test_restore(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx;
	struct store_user u;
	char *bpath, *live = db_path(f->dir);

	assert_true(asprintf(&bpath, "%s/backup.db", f->dir) > 0);
	tx = tx_begin(f->st, true);
	add_user(tx, "old", "old@example.com");
	add_cert(tx, "0A", "ca1", "old", "", PURPOSE_DUAL, STATUS_ACTIVE, 1);
	tx_commit(tx);
	CHECK(B->backup(f->st, bpath, &err));

	tx = tx_begin(f->st, true);
	CHECK(B->user_delete(tx, "old", 100, &err));
	add_user(tx, "new", "new@example.com");
	CHECK(B->cert_set_status(tx, "0A", STATUS_REVOKED, 5, 1, &err));
	tx_commit(tx);
	/* A read before the restore, so the pooled connection has a cached
	 * view of the old state. */
	tx = tx_begin(f->st, false);
	CHECK(B->user_get(tx, "new", &u, &err));
	store_user_clear(&u);
	B->rollback(tx);

	CHECK(B->restore(f->st, bpath, &err));
	tx = tx_begin(f->st, false);
	CHECK(B->user_get(tx, "old@example.com", &u, &err));
	assert_string_equal(u.id, "old");
	store_user_clear(&u);
	assert_int_equal(B->user_get(tx, "new", &u, &err), SMIME_E_NOTFOUND);
	{
		struct store_cert c;

		CHECK(B->cert_get(tx, "0A", &c, &err));
		assert_int_equal(c.status, STATUS_ACTIVE);
		store_cert_clear(&c);
	}
	B->rollback(tx);
	/* Still writable, still WAL, still version STORE_SCHEMA_VERSION. */
	tx = tx_begin(f->st, true);
	add_user(tx, "after", "after@example.com");
	tx_commit(tx);
	assert_int_equal(raw_int(live, "SELECT count(*) FROM pragma_journal_mode "
	    "WHERE journal_mode = 'wal'"), 1);
	assert_int_equal(raw_int(live, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	free(bpath);
	free(live);
}

static void
test_restore_refuses(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx;
	struct store_user u;
	char *good, *newer, *text, *foreign, *missing, *live = db_path(f->dir);
	FILE *fp;

	tx = tx_begin(f->st, true);
	add_user(tx, "keep", "keep@example.com");
	tx_commit(tx);
	assert_true(asprintf(&good, "%s/good.db", f->dir) > 0);
	assert_true(asprintf(&newer, "%s/newer.db", f->dir) > 0);
	assert_true(asprintf(&text, "%s/text.db", f->dir) > 0);
	assert_true(asprintf(&foreign, "%s/foreign.db", f->dir) > 0);
	assert_true(asprintf(&missing, "%s/missing.db", f->dir) > 0);
	CHECK(B->backup(f->st, good, &err));
	CHECK(B->backup(f->st, newer, &err));
	raw_exec(newer, "PRAGMA user_version = 99");
	fp = fopen(text, "w");
	assert_non_null(fp);
	for (int i = 0; i < 100; i++)
		fputs("not a database at all\n", fp);
	fclose(fp);
	raw_exec(foreign, "CREATE TABLE theirs (x INTEGER); INSERT INTO theirs VALUES (1)");

	struct {
		const char *path;
		int want;
	} rows[] = {
		{ newer, SMIME_E_INPUT },
		{ text, SMIME_E_INPUT },
		{ foreign, SMIME_E_INPUT },
		{ missing, SMIME_E_IO },
		{ live, SMIME_E_USAGE },
		{ good, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int rc = B->restore(f->st, rows[i].path, &err);

		print_message("%s: %s\n", rows[i].path, rc != 0 ? err.message : "restored");
		assert_int_equal(rc, rows[i].want);
		tx = tx_begin(f->st, false);
		CHECK(B->user_get(tx, "keep", &u, &err));
		store_user_clear(&u);
		B->rollback(tx);
	}
	free(good);
	free(newer);
	free(text);
	free(foreign);
	free(missing);
	free(live);
}

/* ---------------- concurrency, odd values ---------------- */

struct reader {
	struct store *st;
	int errors;
	int n;
};

#define READERS 4
#define READS 200
#define SEEDED 50

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	struct smime_error err;

	for (int i = 0; i < READS; i++) {
		struct store_tx *tx;
		struct store_cert c;
		struct store_user u;
		char id[STORE_ID_SIZE], serial[STORE_SERIAL_SIZE];

		idn(id, "dddd", (i * 13 + r->n) % SEEDED);
		snprintf(serial, sizeof(serial), "5E%04X", (i * 13 + r->n) % SEEDED);
		if (B->begin(r->st, false, &tx, &err) != 0) {
			print_message("reader begin: %s\n", err.message);
			r->errors++;
			continue;
		}
		if (B->cert_get(tx, serial, &c, &err) != 0) {
			print_message("reader cert_get: %s\n", err.message);
			r->errors++;
		} else
			store_cert_clear(&c);
		if (B->user_get(tx, id, &u, &err) != 0) {
			print_message("reader user_get: %s\n", err.message);
			r->errors++;
		} else
			store_user_clear(&u);
		if (B->commit(tx, &err) != 0)
			r->errors++;
	}
	return NULL;
}

static void
test_concurrency(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct reader r[READERS];
	struct writer w = { .st = f->st };
	pthread_t rt[READERS], wt;
	char id[STORE_ID_SIZE], serial[STORE_SERIAL_SIZE], email[64];

	for (int i = 0; i < SEEDED; i++) {
		idn(id, "dddd", i);
		snprintf(email, sizeof(email), "r%d@example.com", i);
		snprintf(serial, sizeof(serial), "5E%04X", i);
		add_user(tx, id, email);
		add_cert(tx, serial, "ca1", id, "", PURPOSE_DUAL, STATUS_ACTIVE, i);
	}
	tx_commit(tx);

	assert_int_equal(pthread_create(&wt, NULL, writer_main, &w), 0);
	wait_written(&w, 1);
	for (int i = 0; i < READERS; i++) {
		r[i] = (struct reader){ .st = f->st, .n = i };
		assert_int_equal(pthread_create(&rt[i], NULL, reader_main, &r[i]), 0);
	}
	for (int i = 0; i < READERS; i++) {
		pthread_join(rt[i], NULL);
		assert_int_equal(r[i].errors, 0);
	}
	atomic_store(&w.stop, 1);
	pthread_join(wt, NULL);
	print_message("%d writes beside %d reads\n", atomic_load(&w.written), READERS * READS);
	assert_int_equal(atomic_load(&w.errors), 0);
	CHECK(B->ping(f->st, &err));
}

/*
 * The distrust list (schema 5): like the trust collection, apart from it;
 * a certificate may be on both, and removing it from one leaves the other.
 */
static void
test_distrust(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_trust t = { .sha256 = "cd34", .subject = (char *)"CN=DigiNotar",
		.der = (unsigned char *)"\x30\x03\x02\x01\x02", .der_len = 5, .created = 9 };
	struct store_trust *v = NULL;
	size_t n = 0;

	CHECK(B->distrust_list(tx, &v, &n, &err));
	assert_int_equal(n, 0);
	store_trusts_free(v, n);
	CHECK(B->trust_put(tx, &t, &err));
	CHECK(B->distrust_put(tx, &t, &err));
	assert_int_equal(B->distrust_put(tx, &t, &err), SMIME_E_EXISTS);
	CHECK(B->distrust_list(tx, &v, &n, &err));
	assert_int_equal(n, 1);
	assert_string_equal(v[0].sha256, "cd34");
	assert_string_equal(v[0].subject, "CN=DigiNotar");
	assert_int_equal(v[0].der_len, 5);
	assert_memory_equal(v[0].der, "\x30\x03\x02\x01\x02", 5);
	assert_int_equal(v[0].created, 9);
	store_trusts_free(v, n);
	CHECK(B->distrust_delete(tx, "cd34", &err));
	assert_int_equal(B->distrust_delete(tx, "cd34", &err), SMIME_E_NOTFOUND);
	CHECK(B->distrust_list(tx, &v, &n, &err));
	assert_int_equal(n, 0);
	store_trusts_free(v, n);
	/* The trust collection kept its own entry. */
	CHECK(B->trust_list(tx, &v, &n, &err));
	assert_int_equal(n, 1);
	store_trusts_free(v, n);
	tx_commit(tx);
	tx = tx_begin(f->st, false);
	assert_int_equal(B->distrust_put(tx, &t, &err), SMIME_E_USAGE);
	B->rollback(tx);
}

/*
 * Expiry is judged at the filter's moment: a certificate past its notAfter
 * is expired whatever it was (active or superseded), unless revoked.
 * Withdrawal keeps a certificate recorded but marks it, and queues its
 * user for publication.
 */
static void
test_cert_expired_withdrawn(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_page page = { .after = NULL, .limit = 100 };
	struct store_cert *v = NULL, got;
	struct store_publish *q = NULL;
	size_t n = 0, total = 0;
	char *next = NULL;

	/* not_after = created + 86400 */
	add_cert(tx, "01", "ca1", "u1", "", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 1000);
	add_cert(tx, "02", "ca1", "u1", "", PURPOSE_ENCRYPTION, STATUS_SUPERSEDED, 2000);
	add_cert(tx, "03", "ca1", "u1", "", PURPOSE_ENCRYPTION, STATUS_REVOKED, 3000);
	add_cert(tx, "04", "ca1", "u1", "", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 500000);
	add_cert(tx, "05", "ca1", "u1", "", PURPOSE_ENCRYPTION, STATUS_SUPERSEDED, 500001);
	struct {
		int status;
		int64_t now;
		size_t want;
	} rows[] = {
		{ STATUS_EXPIRED, 400000, 2 },     /* 01, 02 */
		{ STATUS_ACTIVE, 400000, 1 },      /* 04 */
		{ STATUS_SUPERSEDED, 400000, 1 },  /* 05 */
		{ STATUS_REVOKED, 400000, 1 },     /* 03, however old */
		{ STATUS_EXPIRED, 10, 0 },         /* nothing expired yet */
		{ STATUS_ACTIVE, 10, 2 },
		{ STATUS_EXPIRED, 0, 0 },          /* now 0: the stored status */
		{ STATUS_ACTIVE, 0, 2 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct store_cert_filter flt = { .status = rows[i].status, .now = rows[i].now };
		CHECK(B->cert_list(tx, &page, &flt, &v, &n, &next, &err));
		if (n != rows[i].want)
			print_message("row %zu: %zu certificates\n", i, n);
		assert_int_equal(n, rows[i].want);
		store_certs_free(v, n);
	}

	CHECK(B->cert_get(tx, "04", &got, &err));
	assert_int_equal(got.withdrawn, 0);
	store_cert_clear(&got);
	CHECK(B->publish_pending(tx, 10, &q, &n, &total, &err));
	for (size_t i = 0; i < n; i++)
		CHECK(B->publish_done(tx, q[i].user_id, q[i].seq, &err));
	store_publishes_free(q, n);
	CHECK(B->cert_withdraw(tx, "04", 777, &err));
	CHECK(B->cert_get(tx, "04", &got, &err));
	assert_int_equal(got.withdrawn, 777);
	assert_int_equal(got.status, STATUS_ACTIVE);
	store_cert_clear(&got);
	CHECK(B->publish_pending(tx, 10, &q, &n, &total, &err));
	assert_int_equal(total, 1);
	assert_string_equal(q[0].user_id, "u1");
	store_publishes_free(q, n);
	assert_int_equal(B->cert_withdraw(tx, "99", 777, &err), SMIME_E_NOTFOUND);
	tx_commit(tx);
}

/*
 * Ids by a unique prefix of at least four characters: UUIDs in any case,
 * with or without dashes; an ambiguous prefix is EXISTS naming the ids; a
 * shorter one, or one that starts nothing, is NOTFOUND.
 */
static void
test_id_prefix(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	static const char *const ids[] = { "0190aaaa-0000-7000-8000-000000000001",
		"0190aaaa-0000-7000-8000-000000000002", "0190bbbb-0000-7000-8000-000000000003" };
	struct store_device d, got;
	struct store_user u;
	struct store_cert c;

	add_user(tx, ids[0], "p1@example.com");
	add_user(tx, ids[2], "p2@example.com");
	for (int i = 0; i < 3; i++) {
		memset(&d, 0, sizeof(d));
		snprintf(d.id, sizeof(d.id), "%s", ids[i]);
		strcpy(d.user_id, ids[0]);
		d.name = (char *)"Phone";
		d.platform = (char *)"ios";
		d.created = d.updated = 100 + i;
		CHECK(B->device_insert(tx, &d, &err));
	}
	CHECK(B->device_get(tx, "0190BBBB", &got, &err));
	assert_string_equal(got.id, ids[2]);
	store_device_clear(&got);
	CHECK(B->device_get(tx, "0190aaaa000070008000000000000002", &got, &err));
	assert_string_equal(got.id, ids[1]);
	store_device_clear(&got);
	assert_int_equal(B->device_get(tx, "0190aaaa-0000", &got, &err), SMIME_E_EXISTS);
	assert_non_null(strstr(err.message, "ambiguous"));
	assert_non_null(strstr(err.message, ids[0]));
	assert_non_null(strstr(err.message, ids[1]));
	assert_int_equal(B->device_get(tx, "019", &got, &err), SMIME_E_NOTFOUND);
	assert_int_equal(B->device_get(tx, "0190cc", &got, &err), SMIME_E_NOTFOUND);
	assert_int_equal(B->device_get(tx, "0190-xyz", &got, &err), SMIME_E_NOTFOUND);
	CHECK(B->user_get(tx, "0190bb", &u, &err));
	assert_string_equal(u.id, ids[2]);
	store_user_clear(&u);
	assert_int_equal(B->user_get(tx, "0190", &u, &err), SMIME_E_EXISTS);
	/* A deleted user is no longer named by a prefix, nor counted in one. */
	CHECK(B->user_delete(tx, ids[2], 500, &err));
	assert_int_equal(B->user_get(tx, "0190bb", &u, &err), SMIME_E_NOTFOUND);
	CHECK(B->user_get(tx, "0190", &u, &err));
	assert_string_equal(u.id, ids[0]);
	store_user_clear(&u);
	/* Serials: the start of one, the same serial of two issuers counted once. */
	add_cert(tx, "6EE93B01", "ca1", ids[0], "", PURPOSE_SIGNING, STATUS_ACTIVE, 1);
	add_cert(tx, "6EE93B02", "ca1", ids[0], "", PURPOSE_SIGNING, STATUS_ACTIVE, 2);
	add_cert(tx, "7F0000AA", "ca1", ids[0], "", PURPOSE_SIGNING, STATUS_ACTIVE, 3);
	assert_int_equal(B->cert_get(tx, "6EE93B0", &c, &err), SMIME_E_EXISTS);
	assert_non_null(strstr(err.message, "6EE93B01, 6EE93B02"));
	CHECK(B->cert_get(tx, "6EE93B02", &c, &err));
	assert_string_equal(c.serial, "6EE93B02");
	store_cert_clear(&c);
	CHECK(B->cert_get(tx, "7F00", &c, &err));
	assert_string_equal(c.serial, "7F0000AA");
	store_cert_clear(&c);
	assert_int_equal(B->cert_get(tx, "7F0", &c, &err), SMIME_E_NOTFOUND);
	B->rollback(tx);
}

/* The key archive and the trust collection (schema 2). */
static void
test_archive_trust(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	unsigned char *got = NULL;
	size_t len = 0, n = 0;
	struct store_trust t = { .sha256 = "ab12", .subject = (char *)"CN=Root",
		.der = (unsigned char *)"\x30\x03\x02\x01\x01", .der_len = 5, .created = 7 };
	struct store_trust *v = NULL;

	CHECK(B->archive_put(tx, "0A0B", (const unsigned char *)"SMA1sealed", 10, 5, &err));
	assert_int_equal(B->archive_put(tx, "0A0B", (const unsigned char *)"x", 1, 5, &err),
	    SMIME_E_EXISTS);
	CHECK(B->archive_get(tx, "0A0B", &got, &len, &err));
	assert_int_equal(len, 10);
	assert_memory_equal(got, "SMA1sealed", 10);
	free(got);
	assert_int_equal(B->archive_get(tx, "FFFF", &got, &len, &err), SMIME_E_NOTFOUND);
	assert_null(got);
	CHECK(B->trust_put(tx, &t, &err));
	assert_int_equal(B->trust_put(tx, &t, &err), SMIME_E_EXISTS);
	CHECK(B->trust_list(tx, &v, &n, &err));
	assert_int_equal(n, 1);
	assert_string_equal(v[0].sha256, "ab12");
	assert_string_equal(v[0].subject, "CN=Root");
	assert_int_equal(v[0].der_len, 5);
	assert_int_equal(v[0].created, 7);
	store_trusts_free(v, n);
	CHECK(B->trust_delete(tx, "ab12", &err));
	assert_int_equal(B->trust_delete(tx, "ab12", &err), SMIME_E_NOTFOUND);
	CHECK(B->trust_list(tx, &v, &n, &err));
	assert_int_equal(n, 0);
	store_trusts_free(v, n);
	CHECK(B->commit(tx, &err));
	/* A read transaction cannot write. */
	tx = tx_begin(f->st, false);
	assert_int_equal(B->archive_put(tx, "0C", (const unsigned char *)"x", 1, 5, &err),
	    SMIME_E_USAGE);
	B->rollback(tx);
}

static void
test_long_values(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	size_t big = 200000;
	char *name = malloc(big + 1), *email = malloc(big + 1);
	char *em[1] = { email };
	struct store_user u, got;
	struct store_group g;

	assert_non_null(name);
	assert_non_null(email);
	memset(name, 'n', big);
	name[big] = '\0';
	memset(email, 'E', big);
	memcpy(email + big - 12, "@example.com", 12);
	email[big] = '\0';
	u = mk_user("u1", name, em, 1);
	CHECK(B->user_insert(tx, &u, &err));
	CHECK(B->user_get(tx, email, &got, &err));
	assert_int_equal(strlen(got.name), big);
	assert_int_equal(strlen(got.emails[0]), big);
	assert_int_equal(got.emails[0][0], 'e');
	store_user_clear(&got);
	/* Long lookups that find nothing; messages stay bounded. */
	assert_int_equal(B->user_get(tx, name, &got, &err), SMIME_E_NOTFOUND);
	assert_true(strlen(err.message) < SMIME_ERROR_MAX);
	assert_int_equal(B->group_get(tx, name, &g, &err), SMIME_E_NOTFOUND);
	/* Quotes, NUL-free odd bytes and SQL in values are only values. */
	u = mk_user("u2", "Robert'); DROP TABLE users;--", NULL, 0);
	CHECK(B->user_insert(tx, &u, &err));
	CHECK(B->user_get(tx, "u2", &got, &err));
	assert_string_equal(got.name, "Robert'); DROP TABLE users;--");
	store_user_clear(&got);
	/* An id longer than the record holds is cut at the field's size. */
	memset(&u, 0, sizeof(u));
	memset(u.id, 'x', sizeof(u.id));   /* no NUL */
	CHECK(B->user_insert(tx, &u, &err));
	memset(u.id, 'x', sizeof(u.id) - 1);
	u.id[sizeof(u.id) - 1] = '\0';
	CHECK(B->user_get(tx, u.id, &got, &err));
	store_user_clear(&got);
	tx_commit(tx);
	free(name);
	free(email);
}

/* Imported certificates of different issuers may share a serial; the
 * service's own serials stay unique per CA. */
static void
test_cert_same_serial(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_cert a = mk_cert("1000", "", "u1", "", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 10);
	struct store_cert b = a, got;

	memset(b.sha256, 'e', 64);             /* another issuer's certificate 1000 */
	CHECK(B->cert_insert(tx, &a, &err));
	CHECK(B->cert_insert(tx, &b, &err));
	assert_int_equal(B->cert_insert(tx, &b, &err), SMIME_E_EXISTS);
	assert_int_equal(B->cert_get(tx, "1000", &got, &err), SMIME_E_EXISTS);
	assert_non_null(strstr(err.message, "SHA-256 fingerprint"));
	CHECK(B->cert_get(tx, b.sha256, &got, &err));
	assert_string_equal(got.sha256, b.sha256);
	store_cert_clear(&got);
	CHECK(B->cert_set_status(tx, a.sha256, STATUS_EXPIRED, 0, -1, &err));
	CHECK(B->cert_get(tx, a.sha256, &got, &err));
	assert_int_equal(got.status, STATUS_EXPIRED);
	store_cert_clear(&got);
	CHECK(B->cert_get(tx, b.sha256, &got, &err));
	assert_int_equal(got.status, STATUS_ACTIVE);
	store_cert_clear(&got);
	assert_int_equal(B->cert_set_status(tx, "1000", STATUS_REVOKED, 5, 1, &err),
	    SMIME_E_EXISTS);
	/* One CA of ours never issues a serial twice. */
	struct store_cert c = mk_cert("2000", "issuing", "u1", "", PURPOSE_SIGNING, STATUS_ACTIVE,
	    10), d = c;
	memset(d.sha256, 'd', 64);
	CHECK(B->cert_insert(tx, &c, &err));
	assert_int_equal(B->cert_insert(tx, &d, &err), SMIME_E_EXISTS);
	snprintf(d.ca_id, sizeof(d.ca_id), "other");
	CHECK(B->cert_insert(tx, &d, &err));
	tx_commit(tx);
}

/* The publication queue: filled by the store itself, in the transaction of
 * the change; taken off only for the change that was published. */
static void
test_publish_queue(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_publish *v = NULL;
	size_t n = 0, total = 0, queued = 0;
	char u1[STORE_ID_SIZE], u2[STORE_ID_SIZE], u3[STORE_ID_SIZE];
	int64_t now = (int64_t)time(NULL);

	idn(u1, "0001", 1);
	idn(u2, "0001", 2);
	idn(u3, "0001", 3);
	add_user(tx, u1, "one@example.org");
	add_user(tx, u2, "two@example.org");
	add_user(tx, u3, "three@example.org");
	/* Users without certificates are not queued: nothing to publish. */
	CHECK(B->publish_pending(tx, 10, &v, &n, &total, &err));
	assert_int_equal(total, 0);
	store_publishes_free(v, n);
	add_cert(tx, "0A", "", u1, "", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 10);
	add_cert(tx, "0B", "", u2, "", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 10);
	add_cert(tx, "0C", "", "", "", PURPOSE_ENCRYPTION, STATUS_ACTIVE, 10);
	tx_commit(tx);

	tx = tx_begin(f->st, false);
	CHECK(B->publish_due(tx, now + 1, 10, &v, &n, &err));
	B->rollback(tx);
	assert_int_equal(n, 2);                    /* the user-less certificate queues no one */
	assert_string_equal(v[0].user_id, u1);
	assert_int_equal(v[0].seq, 1);
	assert_int_equal(v[0].attempts, 0);
	int64_t seq1 = v[0].seq;
	store_publishes_free(v, n);

	/* A change while u1 is being published: the old seq no longer takes it off. */
	tx = tx_begin(f->st, true);
	CHECK(B->cert_set_status(tx, "0A", STATUS_REVOKED, now, 1, &err));
	CHECK(B->publish_done(tx, u1, seq1, &err));
	CHECK(B->publish_done(tx, u2, 1, &err));
	tx_commit(tx);
	tx = tx_begin(f->st, false);
	CHECK(B->publish_pending(tx, 10, &v, &n, &total, &err));
	B->rollback(tx);
	assert_int_equal(total, 1);
	assert_string_equal(v[0].user_id, u1);
	assert_int_equal(v[0].seq, 2);
	store_publishes_free(v, n);

	/* A failure: counted, not due before next_at, its reason kept. */
	tx = tx_begin(f->st, true);
	CHECK(B->publish_retry(tx, u1, 2, now + 100, "directory down", &err));
	CHECK(B->publish_retry(tx, u1, 1, now + 999, "stale", &err));   /* an old seq: nothing */
	tx_commit(tx);
	tx = tx_begin(f->st, false);
	CHECK(B->publish_due(tx, now + 1, 10, &v, &n, &err));
	assert_int_equal(n, 0);
	store_publishes_free(v, n);
	CHECK(B->publish_due(tx, now + 100, 10, &v, &n, &err));
	B->rollback(tx);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].attempts, 1);
	assert_string_equal(v[0].error, "directory down");
	store_publishes_free(v, n);

	/* A new change makes it due at once again, its failures forgotten. */
	tx = tx_begin(f->st, true);
	char *em[2] = { (char *)"one@example.org", (char *)"uno@example.org" };
	struct store_user u = mk_user(u1, "One", em, 2);
	CHECK(B->user_update(tx, &u, &err));
	tx_commit(tx);
	tx = tx_begin(f->st, false);
	CHECK(B->publish_due(tx, now + 1, 10, &v, &n, &err));
	B->rollback(tx);
	assert_int_equal(n, 1);
	assert_true(v[0].seq > 2);
	assert_int_equal(v[0].attempts, 0);
	assert_string_equal(v[0].error, "");
	int64_t seq = v[0].seq;
	store_publishes_free(v, n);

	/* Everyone with a certificate, once each. */
	tx = tx_begin(f->st, true);
	CHECK(B->publish_done(tx, u1, seq, &err));
	CHECK(B->publish_all(tx, now, &queued, &err));
	assert_int_equal(queued, 2);
	CHECK(B->publish_pending(tx, 10, &v, &n, &total, &err));
	assert_int_equal(total, 2);
	store_publishes_free(v, n);
	/* The limits are checked. */
	assert_int_equal(B->publish_due(tx, now, 0, &v, &n, &err), SMIME_E_USAGE);
	assert_int_equal(B->publish_pending(tx, 1001, &v, &n, &total, &err), SMIME_E_USAGE);
	tx_commit(tx);
	/* A read transaction cannot change the queue. */
	tx = tx_begin(f->st, false);
	assert_int_equal(B->publish_done(tx, u1, 1, &err), SMIME_E_USAGE);
	B->rollback(tx);
}

/* SCEP: profiles, single-use challenges that go with their device,
 * transactions decided once, one RA per CA. */
static void
test_scep(void **state)
{
	struct fx *f = *state;
	struct smime_error err;
	struct store_tx *tx = tx_begin(f->st, true);
	struct store_ca ca;
	struct store_device d;
	struct store_scep_profile p, pg, *ps;
	struct store_scep_challenge c, cg;
	struct store_scep_tx t, tg, *ts;
	struct store_scep_ra ra, rg, *ras;
	unsigned char csr[4] = { 0x30, 0x02, 0x05, 0x00 }, wrapped[8] = "wrapped";
	size_t n;

	memset(&ca, 0, sizeof(ca));
	strcpy(ca.id, "issuing");
	ca.issuing = true;
	ca.key_alg = (char *)"ec-p256";
	ca.cert_der = der_bytes;
	ca.cert_len = sizeof(der_bytes);
	CHECK(B->ca_insert(tx, &ca, &err));
	add_user(tx, "u1", "dev@example.com");
	memset(&d, 0, sizeof(d));
	strcpy(d.id, "d1");
	strcpy(d.user_id, "u1");
	d.name = (char *)"laptop";
	d.platform = (char *)"linux";
	CHECK(B->device_insert(tx, &d, &err));

	/* A profile of a CA that does not exist is refused. */
	memset(&p, 0, sizeof(p));
	strcpy(p.name, "devices");
	strcpy(p.ca_id, "nope");
	p.rsa_min_bits = 2048;
	p.ec_curves = (char *)"P-256";
	p.subject = (char *)"CN={email}";
	p.san_all = true;
	p.validity_days = 365;
	p.renewal_days = 30;
	p.approval = true;
	p.challenge_minutes = 60;
	p.created = p.updated = 10;
	assert_int_equal(B->scep_profile_put(tx, &p, &err), SMIME_E_NOTFOUND);
	strcpy(p.ca_id, "issuing");
	CHECK(B->scep_profile_put(tx, &p, &err));
	p.non_repudiation = true;
	p.updated = 11;
	CHECK(B->scep_profile_put(tx, &p, &err));
	CHECK(B->scep_profile_get(tx, "devices", &pg, &err));
	assert_string_equal(pg.ca_id, "issuing");
	assert_int_equal(pg.rsa_min_bits, 2048);
	assert_string_equal(pg.ec_curves, "P-256");
	assert_string_equal(pg.subject, "CN={email}");
	assert_true(pg.san_all && pg.non_repudiation && pg.approval);
	assert_false(pg.allow_sha1);
	assert_int_equal(pg.validity_days, 365);
	assert_int_equal(pg.renewal_days, 30);
	assert_int_equal(pg.challenge_minutes, 60);
	assert_int_equal(pg.created, 10);
	assert_int_equal(pg.updated, 11);
	store_scep_profile_clear(&pg);
	CHECK(B->scep_profile_list(tx, &ps, &n, &err));
	assert_int_equal(n, 1);
	store_scep_profiles_free(ps, n);

	/* Challenges: one use. */
	memset(&c, 0, sizeof(c));
	strcpy(c.id, "c1");
	memset(c.hash, 0x11, sizeof(c.hash));
	strcpy(c.user_id, "u1");
	strcpy(c.device_id, "d1");
	strcpy(c.profile, "devices");
	c.created = 1000;
	c.expires = 4600;
	CHECK(B->challenge_insert(tx, &c, &err));
	assert_int_equal(B->challenge_insert(tx, &c, &err), SMIME_E_EXISTS);
	strcpy(c.id, "c2");
	strcpy(c.device_id, "nodevice");
	assert_int_equal(B->challenge_insert(tx, &c, &err), SMIME_E_NOTFOUND);
	CHECK(B->challenge_get(tx, "c1", &cg, &err));
	assert_memory_equal(cg.hash, c.hash, sizeof(c.hash));
	assert_string_equal(cg.device_id, "d1");
	assert_int_equal(cg.expires, 4600);
	assert_int_equal(cg.used, 0);
	CHECK(B->challenge_use(tx, "c1", 2000, "TID-1", &err));
	assert_int_equal(B->challenge_use(tx, "c1", 2001, "TID-2", &err), SMIME_E_EXISTS);
	assert_int_equal(B->challenge_use(tx, "zz", 2001, "TID-2", &err), SMIME_E_EXISTS);
	CHECK(B->challenge_get(tx, "c1", &cg, &err));
	assert_int_equal(cg.used, 2000);
	assert_string_equal(cg.transaction_id, "TID-1");
	/* Expired for more than a day: forgotten at the next insert. */
	strcpy(c.id, "c3");
	strcpy(c.device_id, "d1");
	c.created = 4600 + 86401 + 1;
	c.expires = c.created + 3600;
	CHECK(B->challenge_insert(tx, &c, &err));
	assert_int_equal(B->challenge_get(tx, "c1", &cg, &err), SMIME_E_NOTFOUND);

	/* Transactions. */
	memset(&t, 0, sizeof(t));
	strcpy(t.id, "TID-1");
	strcpy(t.ca_id, "issuing");
	strcpy(t.profile, "devices");
	strcpy(t.user_id, "u1");
	strcpy(t.device_id, "d1");
	t.status = SCEP_TX_PENDING;
	t.csr = csr;
	t.csr_len = sizeof(csr);
	t.created = t.updated = 2000;
	CHECK(B->scep_tx_insert(tx, &t, &err));
	assert_int_equal(B->scep_tx_insert(tx, &t, &err), SMIME_E_EXISTS);
	strcpy(t.id, "TID-2");
	t.status = SCEP_TX_REJECTED;
	t.error = (char *)"weak key";
	t.created = 2100;
	CHECK(B->scep_tx_insert(tx, &t, &err));
	strcpy(t.id, "TID-0");   /* created with TID-2: after it by creation, before by id */
	CHECK(B->scep_tx_insert(tx, &t, &err));
	{
		struct store_page page = { .limit = 10 };
		char *next = NULL;

		CHECK(B->scep_tx_list(tx, &page, SCEP_TX_PENDING, &ts, &n, &next, &err));
		assert_int_equal(n, 1);
		assert_null(next);
		assert_string_equal(ts[0].id, "TID-1");
		assert_int_equal(ts[0].csr_len, sizeof(csr));
		store_scep_txs_free(ts, n);
		CHECK(B->scep_tx_list(tx, &page, 0, &ts, &n, &next, &err));
		assert_int_equal(n, 3);
		assert_null(next);
		store_scep_txs_free(ts, n);
		/* A page at a time, oldest first, then by id. */
		static const char *const order[] = { "TID-1", "TID-0", "TID-2" };
		page.limit = 1;
		for (size_t i = 0; i < 3; i++) {
			char *after = next;

			page.after = after;
			CHECK(B->scep_tx_list(tx, &page, 0, &ts, &n, &next, &err));
			assert_int_equal(n, 1);
			assert_string_equal(ts[0].id, order[i]);
			if (i < 2)
				assert_non_null(next);
			else
				assert_null(next);
			store_scep_txs_free(ts, n);
			free(after);
		}
		page.after = "x.2000.41";
		assert_int_equal(B->scep_tx_list(tx, &page, 0, &ts, &n, &next, &err), SMIME_E_USAGE);
		page.after = "s.zz.41";
		assert_int_equal(B->scep_tx_list(tx, &page, 0, &ts, &n, &next, &err), SMIME_E_USAGE);
	}
	CHECK(B->scep_tx_decide(tx, "TID-1", SCEP_TX_ISSUED, "abcd", "", 2200, &err));
	assert_int_equal(B->scep_tx_decide(tx, "TID-1", SCEP_TX_REJECTED, "", "no", 2300, &err),
	    SMIME_E_EXISTS);
	assert_int_equal(B->scep_tx_decide(tx, "TID-9", SCEP_TX_REJECTED, "", "no", 2300, &err),
	    SMIME_E_NOTFOUND);
	CHECK(B->scep_tx_get(tx, "TID-1", &tg, &err));
	assert_int_equal(tg.status, SCEP_TX_ISSUED);
	assert_string_equal(tg.cert, "abcd");
	assert_int_equal(tg.updated, 2200);
	assert_memory_equal(tg.csr, csr, sizeof(csr));
	store_scep_tx_clear(&tg);
	CHECK(B->scep_tx_get(tx, "TID-2", &tg, &err));
	assert_string_equal(tg.error, "weak key");
	store_scep_tx_clear(&tg);

	/* One RA per CA. */
	memset(&ra, 0, sizeof(ra));
	strcpy(ra.ca_id, "issuing");
	ra.cert_der = der_bytes;
	ra.cert_len = sizeof(der_bytes);
	ra.key_wrapped = wrapped;
	ra.key_wrapped_len = sizeof(wrapped);
	ra.created = 5;
	CHECK(B->scep_ra_put(tx, &ra, &err));
	assert_int_equal(B->scep_ra_put(tx, &ra, &err), SMIME_E_EXISTS);
	strcpy(ra.ca_id, "nope");
	assert_int_equal(B->scep_ra_put(tx, &ra, &err), SMIME_E_NOTFOUND);
	CHECK(B->scep_ra_get(tx, "issuing", &rg, &err));
	assert_int_equal(rg.key_wrapped_len, sizeof(wrapped));
	assert_memory_equal(rg.key_wrapped, wrapped, sizeof(wrapped));
	store_scep_ra_clear(&rg);
	CHECK(B->scep_ra_list(tx, &ras, &n, &err));
	assert_int_equal(n, 1);
	store_scep_ras_free(ras, n);

	/* Nonces: a second sight is a replay, until forgotten. */
	CHECK(B->scep_nonce_seen(tx, csr, sizeof(csr), 100, 0, &err));
	assert_int_equal(B->scep_nonce_seen(tx, csr, sizeof(csr), 200, 50, &err), SMIME_E_EXISTS);
	CHECK(B->scep_nonce_seen(tx, csr, sizeof(csr), 300, 150, &err));

	/* Deleting the device deletes its challenges, not its transactions;
	 * deleting the profile its challenges. */
	CHECK(B->device_delete(tx, "d1", &err));
	assert_int_equal(B->challenge_get(tx, "c3", &cg, &err), SMIME_E_NOTFOUND);
	CHECK(B->scep_tx_get(tx, "TID-1", &tg, &err));
	store_scep_tx_clear(&tg);
	CHECK(B->scep_profile_delete(tx, "devices", &err));
	assert_int_equal(B->scep_profile_delete(tx, "devices", &err), SMIME_E_NOTFOUND);
	CHECK(B->commit(tx, &err));
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_open_fresh),
		T(test_reopen),
		cmocka_unit_test(test_open_refuses),
		T(test_meta),
		T(test_user_roundtrip),
		T(test_user_exists),
		T(test_notfound),
		T(test_usage),
		T(test_user_pagination),
		T(test_groups),
		T(test_devices),
		T(test_cas_profiles),
		T(test_certs),
		T(test_cert_status),
		T(test_user_delete_keeps_certs),
		T(test_user_deleted_keeps_archive),
		T(test_recovery_requests),
		T(test_tokens),
		T(test_audit),
		T(test_audit_filter),
		T(test_migrate_roles),
		T(test_rollback),
		T(test_savepoint),
		T(test_visibility),
		T(test_backup_while_writing),
		T(test_restore),
		T(test_restore_refuses),
		T(test_concurrency),
		T(test_long_values),
		T(test_archive_trust),
		T(test_distrust),
		T(test_cert_expired_withdrawn),
		T(test_id_prefix),
		T(test_publish_queue),
		T(test_cert_same_serial),
		T(test_scep),
	};
#undef T

	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}

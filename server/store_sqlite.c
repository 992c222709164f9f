/*
 * smimed: the SQLite store backend.
 *
 * The database is LOCATION/smimed.db, created 0600 (SQLite gives its -wal
 * and -shm files the mode of the database).  It runs in WAL mode, so that
 * readers never wait for the writer and keep one snapshot for a whole
 * transaction, with synchronous=FULL, so that a commit is on disk when
 * commit returns, and with foreign keys enforced.
 *
 * The file carries its own identity in the SQLite header: application_id
 * is APPLICATION_ID and user_version the schema version.  Opening migrates
 * an older schema in one transaction and refuses a newer one, a file of
 * another application, and a file that is not a database.
 *
 * Connections: every transaction borrows one connection from a small pool
 * (a mutex-protected free list; a new connection when it is empty, at most
 * POOL_MAX open, at most POOL_IDLE_MAX kept idle).  A connection is used by
 * one thread at a time, so it is opened without SQLite's own mutex.  Each
 * keeps its prepared statements (one slot per enum stmt_id, prepared on
 * first use and kept until the connection closes), so a hot read such as
 * cert_get costs a bind, a step and a copy.  Write transactions of this
 * process queue on a gate (one at a time, waiting up to BUSY_MS) rather
 * than spinning in SQLite's busy handler; other processes meet SQLite's
 * busy timeout.
 *
 * Every store function is atomic on its own: one that runs more than one
 * statement (user_insert, user_update) does so inside an internal savepoint
 * and undoes its partial work when it fails, so a failure leaves the
 * transaction as it was before the call.
 *
 * Cursors are text: a tag naming the list, '.', and the last item's key:
 *   users, devices  "u.HEX" / "d.HEX"    HEX: the id's octets in lower-case hex
 *   groups          "g.HEX"              the name's octets
 *   certificates    "c.CREATED.HEX"      creation time (decimal) and serial
 *   audit           "a.SEQ"              sequence number (decimal), whatever the filter
 * Keys are hex so that a cursor is safe in a URL whatever the key holds.
 * Anything else (another list's tag, odd or upper-case hex, a NUL octet,
 * an overflowing number) is SMIME_E_USAGE.
 *
 * Certificates: the serial is the primary key, so the same certificate
 * recorded twice is refused as "serial exists"; sha256 is therefore not
 * declared UNIQUE (it would only duplicate that check).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

#define DB_FILE "smimed.db"
#define APPLICATION_ID 0x534d4944	/* "SMID" in the SQLite header */
#define BUSY_MS 10000			/* waiting for a lock, a connection, the writer */
#define POOL_MAX 64			/* connections open at once */
#define POOL_IDLE_MAX 16		/* connections kept open while idle */
#define PAGE_LIMIT_MAX 1000		/* items of one page */
#define CURSOR_KEY_MAX 4096		/* octets of the key inside a cursor */
#define CURSOR_MAX (2 + 2 * CURSOR_KEY_MAX + 22)
#define SQL_MAX 1024			/* a statement built from fragments */

#define CERT_COLS "serial, ca_id, user_id, device_id, profile, purpose, source, status," \
	" subject, email, not_before, not_after, sha256, sha1, der, created, revoked_at, reason"
/* What a read gives: the written columns and those added later with defaults. */
#define CERT_READ_COLS CERT_COLS ", withdrawn"

/* Queue NEW.user_id for publication now, or mark its queued entry changed. */
#define PUBLISH_QUEUE_UPSERT \
	"INSERT INTO publish_queue (user_id, next_at, queued)" \
	" VALUES (NEW.user_id, CAST(strftime('%s', 'now') AS INTEGER)," \
	" CAST(strftime('%s', 'now') AS INTEGER))" \
	" ON CONFLICT (user_id) DO UPDATE SET seq = seq + 1, attempts = 0," \
	" next_at = excluded.next_at, error = '';"

/* The schema, one entry per version: migrations[v] goes from v to v + 1. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
	/* 0 -> 1 */
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY NOT NULL,"
	"  value TEXT NOT NULL);"
	"CREATE TABLE users ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  name TEXT NOT NULL DEFAULT '',"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL);"
	/* Addresses are stored lower-case (ASCII) and compared without case. */
	"CREATE TABLE user_emails ("
	"  email TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,"
	"  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  position INTEGER NOT NULL,"
	"  UNIQUE (user_id, position));"
	"CREATE TABLE groups ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  name TEXT NOT NULL UNIQUE,"
	"  description TEXT NOT NULL DEFAULT '',"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE group_members ("
	"  group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,"
	"  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  PRIMARY KEY (group_id, user_id)) WITHOUT ROWID;"
	"CREATE INDEX group_members_user ON group_members(user_id);"
	"CREATE TABLE devices ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL DEFAULT '',"
	"  platform TEXT NOT NULL DEFAULT '',"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL);"
	"CREATE INDEX devices_user ON devices(user_id, id);"
	/* parent_id and profiles.ca_id carry no foreign key: "" is a root. */
	"CREATE TABLE cas ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  parent_id TEXT NOT NULL DEFAULT '',"
	"  issuing INTEGER NOT NULL CHECK (issuing IN (0, 1)),"
	"  key_alg TEXT NOT NULL DEFAULT '',"
	"  cert_der BLOB NOT NULL,"
	"  key_wrapped BLOB,"
	"  crl_number INTEGER NOT NULL DEFAULT 0,"
	"  crl_der BLOB,"
	"  crl_updated INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE profiles ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  purpose INTEGER NOT NULL CHECK (purpose BETWEEN 1 AND 3),"
	"  ca_id TEXT NOT NULL,"
	"  validity_days INTEGER NOT NULL,"
	"  br_profile TEXT NOT NULL DEFAULT '',"
	"  key_alg TEXT NOT NULL DEFAULT '',"
	"  allow_generate INTEGER NOT NULL CHECK (allow_generate IN (0, 1)),"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL);"
	/* No foreign keys: a certificate stays recorded after its user,
	 * device or profile is gone, and imported ones have no CA of ours. */
	"CREATE TABLE certs ("
	"  serial TEXT PRIMARY KEY NOT NULL,"
	"  ca_id TEXT NOT NULL DEFAULT '',"
	"  user_id TEXT NOT NULL DEFAULT '',"
	"  device_id TEXT NOT NULL DEFAULT '',"
	"  profile TEXT NOT NULL DEFAULT '',"
	"  purpose INTEGER NOT NULL CHECK (purpose BETWEEN 1 AND 3),"
	"  source INTEGER NOT NULL CHECK (source BETWEEN 1 AND 4),"
	"  status INTEGER NOT NULL CHECK (status BETWEEN 1 AND 4),"
	"  subject TEXT NOT NULL DEFAULT '',"
	"  email TEXT NOT NULL DEFAULT '',"
	"  not_before INTEGER NOT NULL,"
	"  not_after INTEGER NOT NULL,"
	"  sha256 TEXT NOT NULL,"
	"  sha1 TEXT NOT NULL,"
	"  der BLOB NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  revoked_at INTEGER NOT NULL DEFAULT 0,"
	"  reason INTEGER NOT NULL DEFAULT -1);"
	"CREATE INDEX certs_user ON certs(user_id, created, serial);"
	"CREATE INDEX certs_ca_status ON certs(ca_id, status);"
	/* cert_supersede: the active certificates of one user and purpose. */
	"CREATE INDEX certs_active ON certs(user_id, purpose, status);"
	"CREATE INDEX certs_created ON certs(created, serial);"
	"CREATE TABLE tokens ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  name TEXT NOT NULL DEFAULT '',"
	"  hash BLOB NOT NULL CHECK (length(hash) = 32),"
	"  created INTEGER NOT NULL,"
	"  last_used INTEGER NOT NULL DEFAULT 0,"
	"  revoked_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE audit ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time INTEGER NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  action TEXT NOT NULL,"
	"  object TEXT NOT NULL DEFAULT '',"
	"  detail TEXT NOT NULL DEFAULT '{}');"
	/* Append only, whoever writes to the file. */
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	"  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	"  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
	/* 1 -> 2: the key archive and the trust collection */
	"CREATE TABLE archive ("
	"  sha256 TEXT PRIMARY KEY NOT NULL,"
	"  sealed BLOB NOT NULL,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE trust ("
	"  sha256 TEXT PRIMARY KEY NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  der BLOB NOT NULL,"
	"  created INTEGER NOT NULL);",
	/* 2 -> 3: certificates are keyed by their SHA-256 fingerprint: the
	 * serials of imported certificates are unique only per issuer.  The
	 * service's own serials stay unique per CA. */
	"CREATE TABLE certs_new ("
	"  serial TEXT NOT NULL,"
	"  ca_id TEXT NOT NULL DEFAULT '',"
	"  user_id TEXT NOT NULL DEFAULT '',"
	"  device_id TEXT NOT NULL DEFAULT '',"
	"  profile TEXT NOT NULL DEFAULT '',"
	"  purpose INTEGER NOT NULL CHECK (purpose BETWEEN 1 AND 3),"
	"  source INTEGER NOT NULL CHECK (source BETWEEN 1 AND 4),"
	"  status INTEGER NOT NULL CHECK (status BETWEEN 1 AND 4),"
	"  subject TEXT NOT NULL DEFAULT '',"
	"  email TEXT NOT NULL DEFAULT '',"
	"  not_before INTEGER NOT NULL,"
	"  not_after INTEGER NOT NULL,"
	"  sha256 TEXT PRIMARY KEY NOT NULL,"
	"  sha1 TEXT NOT NULL,"
	"  der BLOB NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  revoked_at INTEGER NOT NULL DEFAULT 0,"
	"  reason INTEGER NOT NULL DEFAULT -1);"
	"INSERT INTO certs_new SELECT " CERT_COLS " FROM certs;"
	"DROP TABLE certs;"
	"ALTER TABLE certs_new RENAME TO certs;"
	"CREATE UNIQUE INDEX certs_ca_serial ON certs(ca_id, serial) WHERE ca_id <> '';"
	"CREATE INDEX certs_serial ON certs(serial);"
	"CREATE INDEX certs_user ON certs(user_id, created, serial);"
	"CREATE INDEX certs_ca_status ON certs(ca_id, status);"
	"CREATE INDEX certs_active ON certs(user_id, purpose, status);"
	"CREATE INDEX certs_created ON certs(created, serial);"
	/* The directory's outbox.  The triggers queue a user in the
	 * transaction of the change, whichever path makes it; a user without
	 * any certificate has nothing to publish and is not queued. */
	"CREATE TABLE publish_queue ("
	"  user_id TEXT PRIMARY KEY NOT NULL,"
	"  seq INTEGER NOT NULL DEFAULT 1,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_at INTEGER NOT NULL,"
	"  queued INTEGER NOT NULL,"
	"  error TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX publish_queue_due ON publish_queue(next_at, queued);"
	"CREATE TRIGGER publish_cert_insert AFTER INSERT ON certs WHEN NEW.user_id <> ''"
	"  BEGIN " PUBLISH_QUEUE_UPSERT " END;"
	"CREATE TRIGGER publish_cert_update AFTER UPDATE OF status, user_id ON certs"
	"  WHEN NEW.user_id <> ''"
	"  BEGIN " PUBLISH_QUEUE_UPSERT " END;"
	"CREATE TRIGGER publish_email_insert AFTER INSERT ON user_emails"
	"  WHEN EXISTS (SELECT 1 FROM certs WHERE user_id = NEW.user_id)"
	"  BEGIN " PUBLISH_QUEUE_UPSERT " END;",
	/* 3 -> 4: SCEP.  Challenges go with their device and profile;
	 * transactions, like certificates, stay as history. */
	"CREATE TABLE scep_profiles ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  ca_id TEXT NOT NULL REFERENCES cas(id),"
	"  rsa_min_bits INTEGER NOT NULL,"
	"  ec_curves TEXT NOT NULL DEFAULT '',"
	"  subject TEXT NOT NULL,"
	"  san_all INTEGER NOT NULL,"
	"  non_repudiation INTEGER NOT NULL,"
	"  validity_days INTEGER NOT NULL,"
	"  renewal_days INTEGER NOT NULL,"
	"  approval INTEGER NOT NULL,"
	"  challenge_minutes INTEGER NOT NULL,"
	"  allow_sha1 INTEGER NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL);"
	"CREATE TABLE scep_challenges ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  hash BLOB NOT NULL CHECK (length(hash) = 32),"
	"  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
	"  profile TEXT NOT NULL REFERENCES scep_profiles(name) ON DELETE CASCADE,"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL,"
	"  used INTEGER NOT NULL DEFAULT 0,"
	"  transaction_id TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX scep_challenges_expires ON scep_challenges(expires);"
	"CREATE INDEX scep_challenges_device ON scep_challenges(device_id);"
	"CREATE INDEX scep_challenges_profile ON scep_challenges(profile);"
	"CREATE TABLE scep_transactions ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  ca_id TEXT NOT NULL,"
	"  profile TEXT NOT NULL,"
	"  user_id TEXT NOT NULL,"
	"  device_id TEXT NOT NULL,"
	"  status INTEGER NOT NULL CHECK (status BETWEEN 1 AND 3),"
	"  renewal INTEGER NOT NULL,"
	"  renews TEXT NOT NULL DEFAULT '',"
	"  cert TEXT NOT NULL DEFAULT '',"
	"  csr BLOB NOT NULL,"
	"  error TEXT NOT NULL DEFAULT '',"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL);"
	"CREATE INDEX scep_transactions_status ON scep_transactions(status, created);"
	"CREATE TABLE scep_ra ("
	"  ca_id TEXT PRIMARY KEY NOT NULL REFERENCES cas(id),"
	"  cert_der BLOB NOT NULL,"
	"  key_wrapped BLOB NOT NULL,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE scep_nonces ("
	"  nonce BLOB PRIMARY KEY NOT NULL,"
	"  seen INTEGER NOT NULL);"
	"CREATE INDEX scep_nonces_seen ON scep_nonces(seen);"
	/* cert_supersede of one device: a user may have many devices. */
	"CREATE INDEX certs_device_active ON certs(user_id, device_id, purpose, status);",
	/* 4 -> 5: least privilege for admins, and an audit log that can be
	 * searched.  Tokens made before roles existed could do everything:
	 * they stay admins.  Each audit row names the user it concerns (the
	 * detail's "user", else the object of a user.* or archive.* action,
	 * as audit_row in api.c derives it); the rows written before get it
	 * too, under a trigger lifted for this one statement. */
	"ALTER TABLE tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'"
	"  CHECK (role IN ('admin', 'operator', 'recovery', 'auditor'));"
	"ALTER TABLE tokens ADD COLUMN expires INTEGER NOT NULL DEFAULT 0;"
	/* Who made each token (two-person recovery refuses an approver that
	 * the requester made, or that made it): the token id, or "system" for
	 * the first start's; for the tokens made before, their token.create
	 * row says it; none: "" (unknown). */
	"ALTER TABLE tokens ADD COLUMN created_by TEXT NOT NULL DEFAULT '';"
	"UPDATE tokens SET created_by = COALESCE((SELECT CASE WHEN actor LIKE 'token:%'"
	"  THEN substr(actor, 7) ELSE actor END FROM audit WHERE action = 'token.create'"
	"  AND object = tokens.id ORDER BY seq LIMIT 1), '');"
	"ALTER TABLE audit ADD COLUMN user_id TEXT NOT NULL DEFAULT '';"
	"DROP TRIGGER audit_no_update;"
	"UPDATE audit SET user_id = CASE"
	"  WHEN json_valid(detail) AND json_type(detail, '$.user') = 'text'"
	"    THEN json_extract(detail, '$.user')"
	"  WHEN action LIKE 'user.%' OR action LIKE 'archive.%' THEN object"
	"  ELSE '' END;"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	"  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
	"CREATE INDEX audit_actor ON audit(actor, seq);"
	"CREATE INDEX audit_action ON audit(action, seq);"
	"CREATE INDEX audit_user ON audit(user_id, seq);",
	/* 5 -> 6: the archive keeps every key.  A deleted user stays (deleted:
	 * when), with the addresses it held, until an explicit purge; an
	 * address a new user took is kept as a former address of the deleted
	 * one.  Recovery requests wait for a second approver. */
	"ALTER TABLE users ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX users_deleted ON users(deleted, id);"
	"CREATE TABLE user_former_emails ("
	"  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  email TEXT NOT NULL COLLATE NOCASE,"
	"  position INTEGER NOT NULL,"
	"  PRIMARY KEY (user_id, email));"
	"CREATE INDEX user_former_emails_email ON user_former_emails(email);"
	"CREATE TABLE recovery_requests ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  user_id TEXT NOT NULL,"
	"  cert TEXT NOT NULL DEFAULT '',"
	"  reason TEXT NOT NULL,"
	"  requester TEXT NOT NULL,"
	"  approver TEXT NOT NULL DEFAULT '',"
	"  status INTEGER NOT NULL CHECK (status BETWEEN 1 AND 3),"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL,"
	"  decided INTEGER NOT NULL DEFAULT 0);",
	/* 6 -> 7: the distrust list, beside the trust collection; certificates
	 * withdrawn from lookup and publication (kept, with their keys). */
	"CREATE TABLE distrust ("
	"  sha256 TEXT PRIMARY KEY NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  der BLOB NOT NULL,"
	"  created INTEGER NOT NULL);"
	"ALTER TABLE certs ADD COLUMN withdrawn INTEGER NOT NULL DEFAULT 0;"
	"CREATE TRIGGER publish_cert_withdraw AFTER UPDATE OF withdrawn ON certs"
	"  WHEN NEW.user_id <> ''"
	"  BEGIN " PUBLISH_QUEUE_UPSERT " END;",
};

/*
 * Every statement a connection may cache.  Lists come in variants (with
 * or without a filter, with or without a cursor) so that each variant
 * has a plan that uses its index; the variant is base + flags.
 */
enum stmt_id {
	S_BEGIN, S_BEGIN_WRITE, S_COMMIT, S_ROLLBACK,
	S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
	S_OP_BEGIN, S_OP_RELEASE, S_OP_UNDO,
	S_PING,
	S_META_GET, S_META_SET,
	S_USER_INSERT, S_EMAIL_INSERT, S_USER_BY_ID, S_USER_BY_EMAIL,
	S_USER_EMAILS, S_USER_GROUPS, S_USER_UPDATE, S_USER_EMAILS_DELETE,
	S_USER_DELETE, S_USER_EXISTS,
	S_USER_LIST, S_USER_LIST_AFTER, S_USER_LIST_GROUP, S_USER_LIST_GROUP_AFTER,
	S_USER_LIST_DELETED, S_USER_LIST_DELETED_AFTER,
	S_USER_ANY_BY_ID, S_USER_ANY_BY_EMAIL, S_USER_ANY_BY_FORMER,
	S_USER_DEVICES_DELETE, S_USER_GROUPS_DELETE, S_USER_RELEASE, S_USER_RELEASE_DELETE,
	S_USER_PURGE_KEYS, S_USER_PURGE, S_ARCHIVE_STAT,
	S_RECOVERY_INSERT, S_RECOVERY_GET, S_RECOVERY_LIST, S_RECOVERY_LIST_AFTER,
	S_RECOVERY_DECIDE,
	S_GROUP_INSERT, S_GROUP_UPDATE, S_GROUP_BY_ID, S_GROUP_BY_NAME, S_GROUP_LIST, S_GROUP_LIST_AFTER,
	S_GROUP_DELETE, S_GROUP_EXISTS, S_MEMBER_ADD, S_MEMBER_REMOVE,
	S_DEVICE_INSERT, S_DEVICE_GET,
	S_DEVICE_LIST, S_DEVICE_LIST_AFTER, S_DEVICE_LIST_USER, S_DEVICE_LIST_USER_AFTER,
	S_DEVICE_UPDATE, S_DEVICE_DELETE,
	S_CA_INSERT, S_CA_GET, S_CA_LIST, S_CA_SET_CRL,
	S_PROFILE_PUT, S_PROFILE_GET, S_PROFILE_LIST, S_PROFILE_DELETE,
	S_CERT_INSERT, S_CERT_GET, S_CERT_BY_SERIAL, S_CERT_STATUS, S_CERT_SUPERSEDE, S_CERT_REVOKED,
	S_TOKEN_INSERT, S_TOKEN_GET, S_TOKEN_LIST, S_TOKEN_REVOKE, S_TOKEN_EXISTS,
	S_TOKEN_TOUCH,
	S_AUDIT_APPEND,
	S_ARCHIVE_PUT, S_ARCHIVE_GET,
	S_TRUST_PUT, S_TRUST_LIST, S_TRUST_DELETE,
	S_DISTRUST_PUT, S_DISTRUST_LIST, S_DISTRUST_DELETE, S_CERT_WITHDRAW,
	S_USER_PREFIX, S_GROUP_PREFIX, S_DEVICE_PREFIX, S_STX_PREFIX, S_CERT_PREFIX,
	S_RECOVERY_PREFIX,
	S_PUBLISH_DUE, S_PUBLISH_DONE, S_PUBLISH_RETRY, S_PUBLISH_ALL, S_PUBLISH_PENDING,
	S_PUBLISH_COUNT,
	S_SPROF_PUT, S_SPROF_GET, S_SPROF_LIST, S_SPROF_DELETE,
	S_CHAL_INSERT, S_CHAL_PRUNE, S_CHAL_GET, S_CHAL_USE,
	S_STX_INSERT, S_STX_GET, S_STX_DECIDE, S_STX_STATUS, S_STX_LIST, S_STX_LIST_ALL,
	S_RA_PUT, S_RA_GET, S_RA_LIST, S_NONCE_PRUNE, S_NONCE_PUT,
	/* cert_list: one slot per combination of the CL_* flags, built from
	 * constant fragments by cert_list_sql. */
	S_CERT_LIST,
	/* audit_list: one slot per combination of the AL_* flags (audit_list_sql). */
	S_AUDIT_LIST = S_CERT_LIST + 32,
	S_COUNT = S_AUDIT_LIST + 128
};

/* cert_list variants: which conditions the statement has. */
#define CL_USER 0x01
#define CL_DEVICE 0x02
#define CL_CA 0x04
#define CL_STATUS 0x08
#define CL_AFTER 0x10

/* audit_list variants. */
#define AL_ACTOR 0x01
#define AL_ACTION 0x02
#define AL_PREFIX 0x04
#define AL_USER 0x08
#define AL_SINCE 0x10
#define AL_UNTIL 0x20
#define AL_AFTER 0x40

#define USER_COLS "u.id, u.name, u.created, u.updated, u.deleted"
#define RECOVERY_COLS "id, user_id, cert, reason, requester, approver, status, created, expires," \
	" decided"
#define GROUP_COLS "g.id, g.name, g.description, g.created," \
	" (SELECT count(*) FROM group_members m WHERE m.group_id = g.id)"
#define DEVICE_COLS "id, user_id, name, platform, created, updated"
#define CA_COLS "id, parent_id, issuing, key_alg, cert_der, key_wrapped, crl_number," \
	" crl_der, crl_updated, created"
#define PROFILE_COLS "name, purpose, ca_id, validity_days, br_profile, key_alg," \
	" allow_generate, created, updated"
#define TOKEN_COLS "id, name, hash, created, last_used, revoked_at, role, expires, created_by"
#define AUDIT_COLS "seq, time, actor, action, object, detail, user_id"
#define PUBLISH_COLS "user_id, seq, attempts, next_at, queued, error"
#define SPROF_COLS "name, ca_id, rsa_min_bits, ec_curves, subject, san_all, non_repudiation," \
	" validity_days, renewal_days, approval, challenge_minutes, allow_sha1, created, updated"
#define CHAL_COLS "id, hash, user_id, device_id, profile, created, expires, used, transaction_id"
#define STX_COLS "id, ca_id, profile, user_id, device_id, status, renewal, renews, cert, csr," \
	" error, created, updated"
#define RA_COLS "ca_id, cert_der, key_wrapped, created"

/*
 * Parameters of the paginated lists: ?1 the filter, ?2 the cursor key,
 * ?3 the limit (one more than a page, to learn whether more follow).
 */
static const char *const sql_text[S_CERT_LIST] = {
	[S_BEGIN] = "BEGIN",
	[S_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT s",
	[S_RELEASE] = "RELEASE s",
	[S_ROLLBACK_TO] = "ROLLBACK TO s",
	[S_OP_BEGIN] = "SAVEPOINT op",
	[S_OP_RELEASE] = "RELEASE op",
	[S_OP_UNDO] = "ROLLBACK TO op",
	[S_PING] = "SELECT 1",

	[S_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[S_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
	    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",

	[S_USER_INSERT] = "INSERT INTO users (id, name, created, updated) VALUES (?1, ?2, ?3, ?4)",
	[S_EMAIL_INSERT] = "INSERT INTO user_emails (email, user_id, position)"
	    " VALUES (lower(?1), ?2, ?3)",
	[S_USER_BY_ID] = "SELECT " USER_COLS " FROM users u WHERE u.id = ?1 AND u.deleted = 0",
	[S_USER_BY_EMAIL] = "SELECT " USER_COLS " FROM user_emails e"
	    " JOIN users u ON u.id = e.user_id WHERE e.email = ?1 AND u.deleted = 0",
	/* Deleted users too: by id, by an address held, by a former address
	 * (the most recently deleted holder). */
	[S_USER_ANY_BY_ID] = "SELECT " USER_COLS " FROM users u WHERE u.id = ?1",
	[S_USER_ANY_BY_EMAIL] = "SELECT " USER_COLS " FROM user_emails e"
	    " JOIN users u ON u.id = e.user_id WHERE e.email = ?1",
	[S_USER_ANY_BY_FORMER] = "SELECT " USER_COLS " FROM user_former_emails f"
	    " JOIN users u ON u.id = f.user_id WHERE f.email = ?1 ORDER BY u.deleted DESC LIMIT 1",
	[S_USER_EMAILS] = "SELECT email FROM (SELECT email, position, 0 AS former FROM user_emails"
	    " WHERE user_id = ?1 UNION ALL SELECT email, position, 1 FROM user_former_emails"
	    " WHERE user_id = ?1) ORDER BY former, position",
	[S_USER_DEVICES_DELETE] = "DELETE FROM devices WHERE user_id = ?1",
	[S_USER_GROUPS_DELETE] = "DELETE FROM group_members WHERE user_id = ?1",
	/* An address a deleted user holds becomes a former address of theirs. */
	[S_USER_RELEASE] = "INSERT OR IGNORE INTO user_former_emails (user_id, email, position)"
	    " SELECT e.user_id, e.email, e.position FROM user_emails e JOIN users u"
	    " ON u.id = e.user_id WHERE e.email = lower(?1) AND u.deleted <> 0",
	[S_USER_RELEASE_DELETE] = "DELETE FROM user_emails WHERE email = lower(?1) AND user_id IN"
	    " (SELECT id FROM users WHERE deleted <> 0)",
	[S_USER_PURGE_KEYS] = "DELETE FROM archive WHERE sha256 IN"
	    " (SELECT sha256 FROM certs WHERE user_id = ?1)",
	[S_USER_PURGE] = "DELETE FROM users WHERE id = ?1 AND deleted <> 0",
	[S_ARCHIVE_STAT] = "SELECT (SELECT count(*) FROM archive), sha256, sealed FROM archive"
	    " ORDER BY created DESC, sha256 LIMIT 1",
	[S_RECOVERY_INSERT] = "INSERT INTO recovery_requests (" RECOVERY_COLS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[S_RECOVERY_GET] = "SELECT " RECOVERY_COLS " FROM recovery_requests WHERE id = ?1",
	[S_RECOVERY_LIST] = "SELECT " RECOVERY_COLS " FROM recovery_requests ORDER BY id LIMIT ?3",
	[S_RECOVERY_LIST_AFTER] = "SELECT " RECOVERY_COLS " FROM recovery_requests WHERE id > ?2"
	    " ORDER BY id LIMIT ?3",
	[S_RECOVERY_DECIDE] = "UPDATE recovery_requests SET status = ?3, decided = ?5,"
	    " approver = CASE WHEN ?3 = 2 THEN ?4 ELSE approver END WHERE id = ?1 AND status = ?2",
	[S_USER_GROUPS] = "SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id"
	    " WHERE m.user_id = ?1 ORDER BY g.name",
	[S_USER_UPDATE] = "UPDATE users SET name = ?2, updated = ?3 WHERE id = ?1",
	[S_USER_EMAILS_DELETE] = "DELETE FROM user_emails WHERE user_id = ?1",
	[S_USER_DELETE] = "UPDATE users SET deleted = ?2, updated = ?2 WHERE id = ?1 AND deleted = 0",
	[S_USER_EXISTS] = "SELECT 1 FROM users WHERE id = ?1 AND deleted = 0",
	[S_USER_LIST] = "SELECT " USER_COLS " FROM users u WHERE u.deleted = 0 ORDER BY u.id LIMIT ?3",
	[S_USER_LIST_AFTER] = "SELECT " USER_COLS " FROM users u WHERE u.id > ?2 AND u.deleted = 0"
	    " ORDER BY u.id LIMIT ?3",
	[S_USER_LIST_GROUP] = "SELECT " USER_COLS " FROM group_members m"
	    " JOIN users u ON u.id = m.user_id WHERE m.group_id = ?1"
	    " ORDER BY m.user_id LIMIT ?3",
	[S_USER_LIST_GROUP_AFTER] = "SELECT " USER_COLS " FROM group_members m"
	    " JOIN users u ON u.id = m.user_id WHERE m.group_id = ?1 AND m.user_id > ?2"
	    " ORDER BY m.user_id LIMIT ?3",
	[S_USER_LIST_DELETED] = "SELECT " USER_COLS " FROM users u WHERE u.deleted <> 0"
	    " ORDER BY u.id LIMIT ?3",
	[S_USER_LIST_DELETED_AFTER] = "SELECT " USER_COLS " FROM users u WHERE u.deleted <> 0"
	    " AND u.id > ?2 ORDER BY u.id LIMIT ?3",

	[S_GROUP_INSERT] = "INSERT INTO groups (id, name, description, created)"
	    " VALUES (?1, ?2, ?3, ?4)",
	[S_GROUP_UPDATE] = "UPDATE groups SET name = ?2, description = ?3 WHERE id = ?1",
	[S_GROUP_BY_ID] = "SELECT " GROUP_COLS " FROM groups g WHERE g.id = ?1",
	[S_GROUP_BY_NAME] = "SELECT " GROUP_COLS " FROM groups g WHERE g.name = ?1",
	[S_GROUP_LIST] = "SELECT " GROUP_COLS " FROM groups g ORDER BY g.name LIMIT ?3",
	[S_GROUP_LIST_AFTER] = "SELECT " GROUP_COLS " FROM groups g WHERE g.name > ?2"
	    " ORDER BY g.name LIMIT ?3",
	[S_GROUP_DELETE] = "DELETE FROM groups WHERE id = ?1",
	[S_GROUP_EXISTS] = "SELECT 1 FROM groups WHERE id = ?1",
	[S_MEMBER_ADD] = "INSERT INTO group_members (group_id, user_id) VALUES (?1, ?2)",
	[S_MEMBER_REMOVE] = "DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2",

	[S_DEVICE_INSERT] = "INSERT INTO devices (" DEVICE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[S_DEVICE_GET] = "SELECT " DEVICE_COLS " FROM devices WHERE id = ?1",
	[S_DEVICE_LIST] = "SELECT " DEVICE_COLS " FROM devices ORDER BY id LIMIT ?3",
	[S_DEVICE_LIST_AFTER] = "SELECT " DEVICE_COLS " FROM devices WHERE id > ?2"
	    " ORDER BY id LIMIT ?3",
	[S_DEVICE_LIST_USER] = "SELECT " DEVICE_COLS " FROM devices WHERE user_id = ?1"
	    " ORDER BY id LIMIT ?3",
	[S_DEVICE_LIST_USER_AFTER] = "SELECT " DEVICE_COLS " FROM devices"
	    " WHERE user_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
	[S_DEVICE_UPDATE] = "UPDATE devices SET name = ?2, platform = ?3, updated = ?4 WHERE id = ?1",
	[S_DEVICE_DELETE] = "DELETE FROM devices WHERE id = ?1",

	[S_CA_INSERT] = "INSERT INTO cas (" CA_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[S_CA_GET] = "SELECT " CA_COLS " FROM cas WHERE id = ?1",
	[S_CA_LIST] = "SELECT " CA_COLS " FROM cas ORDER BY created, id",
	[S_CA_SET_CRL] = "UPDATE cas SET crl_number = ?2, crl_der = ?3, crl_updated = ?4 WHERE id = ?1",

	[S_PROFILE_PUT] = "INSERT INTO profiles (" PROFILE_COLS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
	    " ON CONFLICT (name) DO UPDATE SET purpose = excluded.purpose,"
	    " ca_id = excluded.ca_id, validity_days = excluded.validity_days,"
	    " br_profile = excluded.br_profile, key_alg = excluded.key_alg,"
	    " allow_generate = excluded.allow_generate, updated = excluded.updated",
	[S_PROFILE_GET] = "SELECT " PROFILE_COLS " FROM profiles WHERE name = ?1",
	[S_PROFILE_LIST] = "SELECT " PROFILE_COLS " FROM profiles ORDER BY name",
	[S_PROFILE_DELETE] = "DELETE FROM profiles WHERE name = ?1",

	[S_CERT_INSERT] = "INSERT INTO certs (" CERT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
	    " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
	[S_CERT_GET] = "SELECT " CERT_READ_COLS " FROM certs WHERE sha256 = ?1",
	[S_CERT_BY_SERIAL] = "SELECT sha256 FROM certs WHERE serial = ?1 LIMIT 2",
	[S_CERT_STATUS] = "UPDATE certs SET status = ?2, revoked_at = ?3, reason = ?4"
	    " WHERE sha256 = ?1",
	[S_CERT_SUPERSEDE] = "UPDATE certs SET status = 2 WHERE user_id = ?1 AND device_id = ?2"
	    " AND purpose = ?3 AND status = 1 AND serial <> ?4",
	[S_CERT_REVOKED] = "SELECT serial, revoked_at, reason FROM certs"
	    " WHERE ca_id = ?1 AND status = 4 ORDER BY serial",

	[S_TOKEN_INSERT] = "INSERT INTO tokens (" TOKEN_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
	    " ?7, ?8, ?9)",
	[S_TOKEN_GET] = "SELECT " TOKEN_COLS " FROM tokens WHERE id = ?1",
	[S_TOKEN_LIST] = "SELECT " TOKEN_COLS " FROM tokens ORDER BY created, id",
	[S_TOKEN_REVOKE] = "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at = 0",
	[S_TOKEN_EXISTS] = "SELECT 1 FROM tokens WHERE id = ?1",
	[S_TOKEN_TOUCH] = "UPDATE tokens SET last_used = ?2 WHERE id = ?1"
	    " AND (last_used = 0 OR last_used <= ?2 - ?3)",

	[S_AUDIT_APPEND] = "INSERT INTO audit (time, actor, action, object, detail, user_id)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[S_ARCHIVE_PUT] = "INSERT INTO archive (sha256, sealed, created) VALUES (?1, ?2, ?3)",
	[S_ARCHIVE_GET] = "SELECT sealed FROM archive WHERE sha256 = ?1",
	[S_TRUST_PUT] = "INSERT INTO trust (sha256, subject, der, created) VALUES (?1, ?2, ?3, ?4)",
	[S_TRUST_LIST] = "SELECT sha256, subject, der, created FROM trust ORDER BY created, sha256",
	[S_TRUST_DELETE] = "DELETE FROM trust WHERE sha256 = ?1",
	[S_DISTRUST_PUT] = "INSERT INTO distrust (sha256, subject, der, created)"
	    " VALUES (?1, ?2, ?3, ?4)",
	[S_DISTRUST_LIST] = "SELECT sha256, subject, der, created FROM distrust"
	    " ORDER BY created, sha256",
	[S_DISTRUST_DELETE] = "DELETE FROM distrust WHERE sha256 = ?1",
	[S_CERT_WITHDRAW] = "UPDATE certs SET withdrawn = ?2 WHERE sha256 = ?1",
	/* The keys that start with ?1: a range on the primary key (BINARY order;
	 * U+10FFFF sorts after every character of an id). */
#define PREFIX_RANGE(col) col " >= ?1 AND " col " < ?1 || char(1114111) ORDER BY " col \
	" LIMIT " PREFIX_SHOWN_SQL
#define PREFIX_SHOWN_SQL "4"
	[S_USER_PREFIX] = "SELECT id FROM users WHERE deleted = 0 AND " PREFIX_RANGE("id"),
	[S_GROUP_PREFIX] = "SELECT id FROM groups WHERE " PREFIX_RANGE("id"),
	[S_DEVICE_PREFIX] = "SELECT id FROM devices WHERE " PREFIX_RANGE("id"),
	[S_STX_PREFIX] = "SELECT id FROM scep_transactions WHERE " PREFIX_RANGE("id"),
	[S_CERT_PREFIX] = "SELECT DISTINCT serial FROM certs WHERE " PREFIX_RANGE("serial"),
	[S_RECOVERY_PREFIX] = "SELECT id FROM recovery_requests WHERE " PREFIX_RANGE("id"),
	[S_PUBLISH_DUE] = "SELECT " PUBLISH_COLS " FROM publish_queue WHERE next_at <= ?1"
	    " ORDER BY next_at, queued LIMIT ?2",
	[S_PUBLISH_DONE] = "DELETE FROM publish_queue WHERE user_id = ?1 AND seq = ?2",
	[S_PUBLISH_RETRY] = "UPDATE publish_queue SET attempts = attempts + 1, next_at = ?4,"
	    " error = ?2 WHERE user_id = ?1 AND seq = ?3",
	[S_PUBLISH_ALL] = "INSERT INTO publish_queue (user_id, next_at, queued)"
	    /* An UPSERT after a SELECT needs the SELECT's WHERE (SQLite's parser). */
	    " SELECT DISTINCT user_id, ?1, ?1 FROM certs WHERE user_id <> ''"
	    " ON CONFLICT (user_id) DO UPDATE SET seq = seq + 1, attempts = 0,"
	    " next_at = excluded.next_at, error = ''",
	[S_PUBLISH_PENDING] = "SELECT " PUBLISH_COLS " FROM publish_queue"
	    " ORDER BY attempts DESC, queued LIMIT ?1",
	[S_PUBLISH_COUNT] = "SELECT count(*) FROM publish_queue",

	[S_SPROF_PUT] = "INSERT INTO scep_profiles (" SPROF_COLS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
	    " ON CONFLICT (name) DO UPDATE SET ca_id = excluded.ca_id,"
	    " rsa_min_bits = excluded.rsa_min_bits, ec_curves = excluded.ec_curves,"
	    " subject = excluded.subject, san_all = excluded.san_all,"
	    " non_repudiation = excluded.non_repudiation, validity_days = excluded.validity_days,"
	    " renewal_days = excluded.renewal_days, approval = excluded.approval,"
	    " challenge_minutes = excluded.challenge_minutes, allow_sha1 = excluded.allow_sha1,"
	    " updated = excluded.updated",
	[S_SPROF_GET] = "SELECT " SPROF_COLS " FROM scep_profiles WHERE name = ?1",
	[S_SPROF_LIST] = "SELECT " SPROF_COLS " FROM scep_profiles ORDER BY name",
	[S_SPROF_DELETE] = "DELETE FROM scep_profiles WHERE name = ?1",
	[S_CHAL_INSERT] = "INSERT INTO scep_challenges (" CHAL_COLS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[S_CHAL_PRUNE] = "DELETE FROM scep_challenges WHERE expires < ?1",
	[S_CHAL_GET] = "SELECT " CHAL_COLS " FROM scep_challenges WHERE id = ?1",
	[S_CHAL_USE] = "UPDATE scep_challenges SET used = ?2, transaction_id = ?3"
	    " WHERE id = ?1 AND used = 0",
	[S_STX_INSERT] = "INSERT INTO scep_transactions (" STX_COLS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	[S_STX_GET] = "SELECT " STX_COLS " FROM scep_transactions WHERE id = ?1",
	[S_STX_DECIDE] = "UPDATE scep_transactions SET status = ?2, cert = ?3, error = ?4,"
	    " updated = ?5 WHERE id = ?1 AND status = 1",
	[S_STX_STATUS] = "SELECT status FROM scep_transactions WHERE id = ?1",
	[S_STX_LIST] = "SELECT " STX_COLS " FROM scep_transactions WHERE status = ?1"
	    " AND (created, id) > (?2, ?3) ORDER BY created, id LIMIT ?4",
	[S_STX_LIST_ALL] = "SELECT " STX_COLS " FROM scep_transactions"
	    " WHERE (created, id) > (?2, ?3) ORDER BY created, id LIMIT ?4",
	[S_RA_PUT] = "INSERT INTO scep_ra (" RA_COLS ") VALUES (?1, ?2, ?3, ?4)",
	[S_RA_GET] = "SELECT " RA_COLS " FROM scep_ra WHERE ca_id = ?1",
	[S_RA_LIST] = "SELECT " RA_COLS " FROM scep_ra ORDER BY ca_id",
	[S_NONCE_PRUNE] = "DELETE FROM scep_nonces WHERE seen < ?1",
	[S_NONCE_PUT] = "INSERT INTO scep_nonces (nonce, seen) VALUES (?1, ?2)",
};

struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[S_COUNT];
	struct conn *next;		/* in the idle list */
};

struct store {
	char *path;			/* LOCATION/smimed.db */
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* a connection came back, or the writer left */
	bool lock_init, cond_init;
	struct conn *idle;
	size_t n_idle, n_open;
	bool writer;			/* a write transaction of ours is open */
};

struct store_tx {
	struct store *st;
	struct conn *c;
	bool write;
	bool savepoint;
};

/* What a row reader reports besides 0. */
#define ROW_NOMEM (-1)
#define ROW_BAD (-2)

typedef int (*row_fn)(sqlite3_stmt *s, void *item);
typedef void (*clear_fn)(void *item);

/* ---------------- errors ---------------- */

static int
dberr(sqlite3 *db, struct smime_error *err, const char *what)
{
	return smime_error_set(err, SMIME_E_IO, "%s: %s", what, sqlite3_errmsg(db));
}

/* As dberr, but a file that is not a database is bad input, not bad I/O. */
static int
dbopen_err(sqlite3 *db, struct smime_error *err, const char *name)
{
	if ((sqlite3_errcode(db) & 0xff) == SQLITE_NOTADB)
		return smime_error_set(err, SMIME_E_INPUT, "%s is not a smimed database: %s",
		    name, sqlite3_errmsg(db));
	return smime_error_set(err, SMIME_E_IO, "%s: %s", name, sqlite3_errmsg(db));
}

static int
nomem(struct smime_error *err)
{
	return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
}

static int
usage(struct smime_error *err, const char *what)
{
	return smime_error_set(err, SMIME_E_USAGE, "store: %s", what);
}

static int
row_fail(int r, struct smime_error *err)
{
	if (r == ROW_NOMEM)
		return nomem(err);
	return smime_error_set(err, SMIME_E_IO,
	    "a stored value does not fit its field (a damaged database?)");
}

static bool
is_constraint(int rc)
{
	return (rc & 0xff) == SQLITE_CONSTRAINT;
}

/* ---------------- binding and reading ---------------- */

/* Text of any length, bound with its length; NULL binds "". */
static int
bind_str(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		v = "";
	return sqlite3_bind_text64(s, i, v, strlen(v), SQLITE_STATIC, SQLITE_UTF8);
}

/* A fixed-size field of a record; one without its NUL is cut to fit. */
static int
bind_field(sqlite3_stmt *s, int i, const char *v, size_t size)
{
	return sqlite3_bind_text64(s, i, v, strnlen(v, size - 1), SQLITE_STATIC, SQLITE_UTF8);
}

/* NULL binds SQL NULL; otherwise a blob of len octets (maybe none). */
static int
bind_blob(sqlite3_stmt *s, int i, const void *p, size_t len)
{
	if (p == NULL)
		return sqlite3_bind_null(s, i);
	return sqlite3_bind_blob64(s, i, p, len, SQLITE_STATIC);
}

static int
col_str(sqlite3_stmt *s, int i, char **out)
{
	const unsigned char *p = sqlite3_column_text(s, i);
	size_t n = (size_t)sqlite3_column_bytes(s, i);
	char *d;

	if (p == NULL) {
		if (sqlite3_column_type(s, i) != SQLITE_NULL)
			return ROW_NOMEM;
		p = (const unsigned char *)"";
		n = 0;
	}
	if ((d = malloc(n + 1)) == NULL)
		return ROW_NOMEM;
	memcpy(d, p, n);
	d[n] = '\0';
	*out = d;
	return 0;
}

static int
col_field(sqlite3_stmt *s, int i, char *buf, size_t size)
{
	const unsigned char *p = sqlite3_column_text(s, i);
	size_t n = (size_t)sqlite3_column_bytes(s, i);

	if (p == NULL)
		n = 0;
	if (n >= size)
		return ROW_BAD;
	if (n > 0)
		memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}

/* SQL NULL gives NULL and 0; a blob a malloc'd copy. */
static int
col_blob(sqlite3_stmt *s, int i, unsigned char **out, size_t *len_r)
{
	const void *p;
	size_t n;

	*out = NULL;
	*len_r = 0;
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return 0;
	p = sqlite3_column_blob(s, i);
	n = (size_t)sqlite3_column_bytes(s, i);
	if (p == NULL && n > 0)
		return ROW_NOMEM;
	if ((*out = malloc(n > 0 ? n : 1)) == NULL)
		return ROW_NOMEM;
	if (n > 0)
		memcpy(*out, p, n);
	*len_r = n;
	return 0;
}

static int
row_user(sqlite3_stmt *s, void *item)
{
	struct store_user *u = item;
	int r;

	if ((r = col_field(s, 0, u->id, sizeof(u->id))) != 0 ||
	    (r = col_str(s, 1, &u->name)) != 0) {
		store_user_clear(u);
		return r;
	}
	u->created = sqlite3_column_int64(s, 2);
	u->updated = sqlite3_column_int64(s, 3);
	u->deleted = sqlite3_column_int64(s, 4);
	return 0;
}

static int
row_group(sqlite3_stmt *s, void *item)
{
	struct store_group *gr = item;
	int r;

	if ((r = col_field(s, 0, gr->id, sizeof(gr->id))) != 0 ||
	    (r = col_str(s, 1, &gr->name)) != 0 ||
	    (r = col_str(s, 2, &gr->description)) != 0) {
		store_group_clear(gr);
		return r;
	}
	gr->created = sqlite3_column_int64(s, 3);
	gr->n_members = (size_t)sqlite3_column_int64(s, 4);
	return 0;
}

static int
row_device(sqlite3_stmt *s, void *item)
{
	struct store_device *d = item;
	int r;

	if ((r = col_field(s, 0, d->id, sizeof(d->id))) != 0 ||
	    (r = col_field(s, 1, d->user_id, sizeof(d->user_id))) != 0 ||
	    (r = col_str(s, 2, &d->name)) != 0 ||
	    (r = col_str(s, 3, &d->platform)) != 0) {
		store_device_clear(d);
		return r;
	}
	d->created = sqlite3_column_int64(s, 4);
	d->updated = sqlite3_column_int64(s, 5);
	return 0;
}

static int
row_ca(sqlite3_stmt *s, void *item)
{
	struct store_ca *ca = item;
	int r;

	if ((r = col_field(s, 0, ca->id, sizeof(ca->id))) != 0 ||
	    (r = col_field(s, 1, ca->parent_id, sizeof(ca->parent_id))) != 0 ||
	    (r = col_str(s, 3, &ca->key_alg)) != 0 ||
	    (r = col_blob(s, 4, &ca->cert_der, &ca->cert_len)) != 0 ||
	    (r = col_blob(s, 5, &ca->key_wrapped, &ca->key_wrapped_len)) != 0 ||
	    (r = col_blob(s, 7, &ca->crl_der, &ca->crl_len)) != 0) {
		store_ca_clear(ca);
		return r;
	}
	ca->issuing = sqlite3_column_int(s, 2) != 0;
	ca->crl_number = sqlite3_column_int64(s, 6);
	ca->crl_updated = sqlite3_column_int64(s, 8);
	ca->created = sqlite3_column_int64(s, 9);
	return 0;
}

static int
row_profile(sqlite3_stmt *s, void *item)
{
	struct store_profile *p = item;
	int r;

	if ((r = col_field(s, 0, p->name, sizeof(p->name))) != 0 ||
	    (r = col_field(s, 2, p->ca_id, sizeof(p->ca_id))) != 0 ||
	    (r = col_str(s, 4, &p->br_profile)) != 0 ||
	    (r = col_str(s, 5, &p->key_alg)) != 0) {
		store_profile_clear(p);
		return r;
	}
	p->purpose = (enum cert_purpose)sqlite3_column_int(s, 1);
	p->validity_days = sqlite3_column_int(s, 3);
	p->allow_generate = sqlite3_column_int(s, 6) != 0;
	p->created = sqlite3_column_int64(s, 7);
	p->updated = sqlite3_column_int64(s, 8);
	return 0;
}

static int
row_cert(sqlite3_stmt *s, void *item)
{
	struct store_cert *c = item;
	int r;

	if ((r = col_field(s, 0, c->serial, sizeof(c->serial))) != 0 ||
	    (r = col_field(s, 1, c->ca_id, sizeof(c->ca_id))) != 0 ||
	    (r = col_field(s, 2, c->user_id, sizeof(c->user_id))) != 0 ||
	    (r = col_field(s, 3, c->device_id, sizeof(c->device_id))) != 0 ||
	    (r = col_field(s, 4, c->profile, sizeof(c->profile))) != 0 ||
	    (r = col_str(s, 8, &c->subject)) != 0 ||
	    (r = col_str(s, 9, &c->email)) != 0 ||
	    (r = col_field(s, 12, c->sha256, sizeof(c->sha256))) != 0 ||
	    (r = col_field(s, 13, c->sha1, sizeof(c->sha1))) != 0 ||
	    (r = col_blob(s, 14, &c->der, &c->der_len)) != 0) {
		store_cert_clear(c);
		return r;
	}
	c->purpose = (enum cert_purpose)sqlite3_column_int(s, 5);
	c->source = (enum cert_source)sqlite3_column_int(s, 6);
	c->status = (enum cert_status)sqlite3_column_int(s, 7);
	c->not_before = sqlite3_column_int64(s, 10);
	c->not_after = sqlite3_column_int64(s, 11);
	c->created = sqlite3_column_int64(s, 15);
	c->revoked_at = sqlite3_column_int64(s, 16);
	c->reason = sqlite3_column_int(s, 17);
	c->withdrawn = sqlite3_column_int64(s, 18);
	return 0;
}

static int
row_revoked(sqlite3_stmt *s, void *item)
{
	struct store_revoked *rv = item;
	int r;

	if ((r = col_field(s, 0, rv->serial, sizeof(rv->serial))) != 0)
		return r;
	rv->revoked_at = sqlite3_column_int64(s, 1);
	rv->reason = sqlite3_column_int(s, 2);
	return 0;
}

static int
row_token(sqlite3_stmt *s, void *item)
{
	struct store_token *t = item;
	const void *h;
	int r;

	if ((r = col_field(s, 0, t->id, sizeof(t->id))) != 0 ||
	    (r = col_str(s, 1, &t->name)) != 0)
		goto fail;
	h = sqlite3_column_blob(s, 2);
	if (h == NULL || sqlite3_column_bytes(s, 2) != (int)sizeof(t->hash)) {
		r = ROW_BAD;
		goto fail;
	}
	memcpy(t->hash, h, sizeof(t->hash));
	t->created = sqlite3_column_int64(s, 3);
	t->last_used = sqlite3_column_int64(s, 4);
	t->revoked_at = sqlite3_column_int64(s, 5);
	/* A role this code does not know would be no role at all. */
	if ((t->role = store_role_parse((const char *)sqlite3_column_text(s, 6))) == 0) {
		r = ROW_BAD;
		goto fail;
	}
	t->expires = sqlite3_column_int64(s, 7);
	if ((r = col_field(s, 8, t->created_by, sizeof(t->created_by))) != 0)
		goto fail;
	return 0;
fail:
	store_token_clear(t);
	return r;
}

static int
row_audit(sqlite3_stmt *s, void *item)
{
	struct store_audit *a = item;
	int r;

	if ((r = col_str(s, 2, &a->actor)) != 0 ||
	    (r = col_str(s, 3, &a->action)) != 0 ||
	    (r = col_str(s, 4, &a->object)) != 0 ||
	    (r = col_str(s, 5, &a->detail)) != 0 ||
	    (r = col_str(s, 6, &a->user_id)) != 0) {
		store_audit_clear(a);
		return r;
	}
	a->seq = sqlite3_column_int64(s, 0);
	a->time = sqlite3_column_int64(s, 1);
	return 0;
}

static int
row_trust(sqlite3_stmt *s, void *item)
{
	struct store_trust *t = item;
	int r;

	if ((r = col_field(s, 0, t->sha256, sizeof(t->sha256))) != 0 ||
	    (r = col_str(s, 1, &t->subject)) != 0 ||
	    (r = col_blob(s, 2, &t->der, &t->der_len)) != 0) {
		store_trust_clear(t);
		return r;
	}
	t->created = sqlite3_column_int64(s, 3);
	return 0;
}

static int
row_publish(sqlite3_stmt *s, void *item)
{
	struct store_publish *p = item;
	int r;

	if ((r = col_field(s, 0, p->user_id, sizeof(p->user_id))) != 0 ||
	    (r = col_str(s, 5, &p->error)) != 0) {
		store_publish_clear(p);
		return r;
	}
	p->seq = sqlite3_column_int64(s, 1);
	p->attempts = sqlite3_column_int64(s, 2);
	p->next_at = sqlite3_column_int64(s, 3);
	p->queued = sqlite3_column_int64(s, 4);
	return 0;
}

/* v with room for item n (zeroed), doubling; NULL when out of memory,
 * v then unchanged. */
static void *
grow(void *v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return v;
	ncap = *cap == 0 ? 16 : *cap * 2;
	if (ncap < *cap || ncap > SIZE_MAX / size)
		return NULL;
	if ((p = reallocarray(v, ncap, size)) == NULL)
		return NULL;
	memset((char *)p + *cap * size, 0, (ncap - *cap) * size);
	*cap = ncap;
	return p;
}

/*
 * Step s and read up to limit rows with row into an array of items of
 * size octets; *more_r (may be NULL) tells whether another row followed.
 * *v_r and *n_r are set even on failure, for the caller's _free.
 */
static int
fetch(sqlite3 *db, sqlite3_stmt *s, size_t limit, size_t size, row_fn row,
    void **v_r, size_t *n_r, bool *more_r, struct smime_error *err)
{
	void *v = NULL, *p;
	size_t n = 0, cap = 0;
	int rc, r, ret = 0;

	if (more_r != NULL)
		*more_r = false;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == limit) {
			if (more_r != NULL)
				*more_r = true;
			break;
		}
		if ((p = grow(v, &cap, n, size)) == NULL) {
			ret = nomem(err);
			goto out;
		}
		v = p;
		if ((r = row(s, (char *)v + n * size)) != 0) {
			ret = row_fail(r, err);
			goto out;
		}
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = dberr(db, err, "reading");
out:
	*v_r = v;
	*n_r = n;
	return ret;
}

/* ---------------- cursors ---------------- */

static const char hexdigits[] = "0123456789abcdef";

static char *
cursor_make(const char *prefix, const char *key, size_t len)
{
	size_t plen = strlen(prefix);
	char *c, *p;

	if (len > (SIZE_MAX - plen - 1) / 2)
		return NULL;
	if ((c = malloc(plen + 2 * len + 1)) == NULL)
		return NULL;
	memcpy(c, prefix, plen);
	p = c + plen;
	for (size_t i = 0; i < len; i++) {
		*p++ = hexdigits[(unsigned char)key[i] >> 4];
		*p++ = hexdigits[(unsigned char)key[i] & 0x0f];
	}
	*p = '\0';
	return c;
}

static int
cursor_bad(struct smime_error *err)
{
	return smime_error_set(err, SMIME_E_USAGE, "store: a malformed cursor");
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* n lower-case hex digits to a NUL-terminated key without NUL octets. */
static int
cursor_hex(const char *p, size_t n, char **key_r, struct smime_error *err)
{
	char *k;
	int hi, lo;

	if (n == 0 || n % 2 != 0 || n / 2 > CURSOR_KEY_MAX)
		return cursor_bad(err);
	if ((k = malloc(n / 2 + 1)) == NULL)
		return nomem(err);
	for (size_t i = 0; i < n / 2; i++) {
		hi = hexval(p[2 * i]);
		lo = hexval(p[2 * i + 1]);
		if (hi < 0 || lo < 0 || (hi | lo) == 0) {
			free(k);
			return cursor_bad(err);
		}
		k[i] = (char)(hi << 4 | lo);
	}
	k[n / 2] = '\0';
	*key_r = k;
	return 0;
}

/* Decimal digits with an optional '-', within int64_t. */
static int
cursor_num(const char *p, size_t n, int64_t *v_r)
{
	bool neg = false;
	uint64_t v = 0, max;

	if (n > 0 && p[0] == '-') {
		neg = true;
		p++;
		n--;
	}
	if (n == 0 || n > 19)
		return -1;
	max = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		if (v > (max - (uint64_t)(p[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (neg)
		*v_r = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*v_r = (int64_t)v;
	return 0;
}

/* "T.HEX" for tag T. */
static int
cursor_key(const char *cur, char tag, char **key_r, struct smime_error *err)
{
	size_t n = strnlen(cur, CURSOR_MAX + 1);

	if (n > CURSOR_MAX || n < 2 || cur[0] != tag || cur[1] != '.')
		return cursor_bad(err);
	return cursor_hex(cur + 2, n - 2, key_r, err);
}

/* The cursor "T.CREATED.HEX" after an item created then with key. */
static char *
cursor_make_created(char tag, int64_t created, const char *key)
{
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "%c.%lld.", tag, (long long)created);
	return cursor_make(prefix, key, strlen(key));
}

/* "T.CREATED.HEX" for tag T: a list ordered by creation time, then a key. */
static int
cursor_created(const char *cur, char tag, int64_t *created_r, char **serial_r,
    struct smime_error *err)
{
	size_t n = strnlen(cur, CURSOR_MAX + 1);
	const char *dot;

	if (n > CURSOR_MAX || n < 2 || cur[0] != tag || cur[1] != '.')
		return cursor_bad(err);
	if ((dot = memchr(cur + 2, '.', n - 2)) == NULL)
		return cursor_bad(err);
	if (cursor_num(cur + 2, (size_t)(dot - cur - 2), created_r) != 0)
		return cursor_bad(err);
	return cursor_hex(dot + 1, n - (size_t)(dot + 1 - cur), serial_r, err);
}

/* "a.SEQ" */
static int
cursor_seq(const char *cur, int64_t *seq_r, struct smime_error *err)
{
	size_t n = strnlen(cur, CURSOR_MAX + 1);

	if (n > CURSOR_MAX || n < 3 || cur[0] != 'a' || cur[1] != '.' || cur[2] == '-' ||
	    cursor_num(cur + 2, n - 2, seq_r) != 0)
		return cursor_bad(err);
	return 0;
}

static int
page_check(const struct store_page *page, void *items_r, size_t *n_r, char **next_r,
    struct smime_error *err)
{
	if (page == NULL || items_r == NULL || n_r == NULL || next_r == NULL)
		return usage(err, "a list needs a page and places for its results");
	if (page->limit == 0 || page->limit > PAGE_LIMIT_MAX)
		return smime_error_set(err, SMIME_E_USAGE,
		    "store: a page holds 1 to %d items", PAGE_LIMIT_MAX);
	return 0;
}

/* ---------------- connections ---------------- */

static void
conn_close(struct conn *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < S_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c);
}

/* A connection to path with the settings every connection has. */
static int
conn_open(const char *path, int flags, struct conn **c_r, struct smime_error *err)
{
	struct conn *c;
	int rc, ret = 0;

	*c_r = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return nomem(err);
	rc = sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		ret = smime_error_set(err, SMIME_E_IO, "%s: %s", path,
		    c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, BUSY_MS);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	/* temp_store: the statement journals of the committer's savepoints
	 * (one per request of a batch) stay in memory instead of a temporary
	 * file made and removed per batch; durability is the WAL's. */
	if (sqlite3_exec(c->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; "
	    "PRAGMA temp_store = MEMORY", NULL, NULL, NULL) != SQLITE_OK) {
		ret = dbopen_err(c->db, err, path);
		goto out;
	}
	*c_r = c;
	c = NULL;
out:
	conn_close(c);
	return ret;
}

static void
deadline(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += BUSY_MS / 1000;
	ts->tv_nsec += (long)(BUSY_MS % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* A connection from the pool, or a new one; waits while POOL_MAX are out. */
static int
pool_get(struct store *st, struct conn **c_r, struct smime_error *err)
{
	struct timespec dl;
	struct conn *c = NULL;
	bool open_new = false;
	int rc = 0, ret;

	*c_r = NULL;
	deadline(&dl);
	pthread_mutex_lock(&st->lock);
	for (;;) {
		if (st->idle != NULL) {
			c = st->idle;
			st->idle = c->next;
			st->n_idle--;
			c->next = NULL;
			break;
		}
		if (st->n_open < POOL_MAX) {
			st->n_open++;
			open_new = true;
			break;
		}
		if (rc == ETIMEDOUT)
			break;
		rc = pthread_cond_timedwait(&st->cond, &st->lock, &dl);
	}
	pthread_mutex_unlock(&st->lock);
	if (c != NULL) {
		*c_r = c;
		return 0;
	}
	if (!open_new)
		return smime_error_set(err, SMIME_E_IO,
		    "all %d database connections stayed busy for %d s", POOL_MAX, BUSY_MS / 1000);
	if ((ret = conn_open(st->path, SQLITE_OPEN_READWRITE, &c, err)) != 0) {
		pthread_mutex_lock(&st->lock);
		st->n_open--;
		pthread_cond_broadcast(&st->cond);
		pthread_mutex_unlock(&st->lock);
		return ret;
	}
	*c_r = c;
	return 0;
}

/* Give c back; one that a ROLLBACK cannot bring out of its transaction is closed. */
static void
pool_put(struct store *st, struct conn *c)
{
	bool keep;

	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_lock(&st->lock);
	keep = sqlite3_get_autocommit(c->db) && st->n_idle < POOL_IDLE_MAX;
	if (keep) {
		c->next = st->idle;
		st->idle = c;
		st->n_idle++;
	} else
		st->n_open--;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
	if (!keep)
		conn_close(c);
}

/* One write transaction of this process at a time. */
static int
gate_enter(struct store *st, struct smime_error *err)
{
	struct timespec dl;
	bool got = false;
	int rc = 0;

	deadline(&dl);
	pthread_mutex_lock(&st->lock);
	for (;;) {
		if (!st->writer) {
			st->writer = true;
			got = true;
			break;
		}
		if (rc == ETIMEDOUT)
			break;
		rc = pthread_cond_timedwait(&st->cond, &st->lock, &dl);
	}
	pthread_mutex_unlock(&st->lock);
	if (!got)
		return smime_error_set(err, SMIME_E_IO,
		    "another write transaction stayed open for %d s", BUSY_MS / 1000);
	return 0;
}

static void
gate_leave(struct store *st)
{
	pthread_mutex_lock(&st->lock);
	st->writer = false;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

/* ---------------- statements ---------------- */

/* "SELECT <what> FROM <table>", the conditions of cond[] whose bit is set
 * in flags joined by AND, then tail, into buf[size]: -1 when too long. */
static int
filtered_sql(const char *head, const char *const *cond, size_t n_cond, int flags,
    const char *tail, char *buf, size_t size)
{
	size_t used;
	bool first = true;
	int n;

	n = snprintf(buf, size, "%s", head);
	if (n < 0 || (size_t)n >= size)
		return -1;
	used = (size_t)n;
	for (size_t i = 0; i < n_cond; i++) {
		if (!(flags & (1 << i)))
			continue;
		n = snprintf(buf + used, size - used, "%s%s", first ? " WHERE " : " AND ",
		    cond[i]);
		if (n < 0 || (size_t)n >= size - used)
			return -1;
		used += (size_t)n;
		first = false;
	}
	n = snprintf(buf + used, size - used, "%s", tail);
	return n < 0 || (size_t)n >= size - used ? -1 : 0;
}

/* The SELECT of one cert_list variant, from constant fragments only. */
static int
cert_list_sql(int flags, char *buf, size_t size)
{
	static const char *const cond[] = {
		"user_id = ?1", "device_id = ?2", "ca_id = ?3",
		/* Expired is a matter of time (?8, 0: the stored status alone). */
		"(CASE WHEN ?8 <> 0 AND status <> 4 AND not_after < ?8 THEN 3 ELSE status END) = ?4",
		"(created, serial) > (?5, ?6)",
	};

	return filtered_sql("SELECT " CERT_READ_COLS " FROM certs", cond,
	    sizeof(cond) / sizeof(cond[0]), flags, " ORDER BY created, serial LIMIT ?7", buf, size);
}

/* The audit_list statement with the AL_* conditions of flags. */
static int
audit_list_sql(int flags, char *buf, size_t size)
{
	static const char *const cond[] = {
		"actor = ?1", "action = ?2", "action >= ?3 AND action < ?4", "user_id = ?5",
		"time >= ?6", "time < ?7", "seq > ?8",
	};

	return filtered_sql("SELECT " AUDIT_COLS " FROM audit", cond,
	    sizeof(cond) / sizeof(cond[0]), flags, " ORDER BY seq LIMIT ?9", buf, size);
}

/* The cached statement id of c, prepared on first use. */
static int
stmt(struct conn *c, int id, sqlite3_stmt **s_r, struct smime_error *err)
{
	char buf[SQL_MAX];
	const char *sql;

	*s_r = NULL;
	if (c->st[id] == NULL) {
		if (id >= S_AUDIT_LIST) {
			if (audit_list_sql(id - S_AUDIT_LIST, buf, sizeof(buf)) != 0)
				return smime_error_set(err, SMIME_E_INTERNAL,
				    "store: a statement does not fit");
			sql = buf;
		} else if (id >= S_CERT_LIST) {
			if (cert_list_sql(id - S_CERT_LIST, buf, sizeof(buf)) != 0)
				return smime_error_set(err, SMIME_E_INTERNAL,
				    "store: a statement does not fit");
			sql = buf;
		} else
			sql = sql_text[id];
		if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->st[id],
		    NULL) != SQLITE_OK) {
			c->st[id] = NULL;
			return dberr(c->db, err, "preparing a statement");
		}
	}
	*s_r = c->st[id];
	return 0;
}

/* Reset a statement after use, its bindings let go (NULL: nothing). */
static void
done(sqlite3_stmt *s)
{
	if (s == NULL)
		return;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Run a statement without parameters or rows. */
static int
run(struct conn *c, int id, const char *what, struct smime_error *err)
{
	sqlite3_stmt *s;
	int ret;

	if ((ret = stmt(c, id, &s, err)) != 0)
		return ret;
	if (sqlite3_step(s) != SQLITE_DONE)
		ret = dberr(c->db, err, what);
	done(s);
	return ret;
}

/*
 * Whether a row with key exists, by one of the S_*_EXISTS statements.
 */
static int
exists(struct conn *c, int id, const char *key, bool *found_r, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	*found_r = false;
	if ((ret = stmt(c, id, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*found_r = true;
	else if (rc != SQLITE_DONE)
		ret = dberr(c->db, err, "looking up");
	done(s);
	return ret;
}

/*
 * Look one row up by key with statement id into item; NOTFOUND (with
 * *found_r false, err untouched) is left to the caller.
 */
static int
get_one(struct conn *c, int id, const char *key, row_fn row, void *item, bool *found_r,
    struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, r, ret;

	*found_r = false;
	if ((ret = stmt(c, id, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if ((r = row(s, item)) != 0)
			ret = row_fail(r, err);
		else
			*found_r = true;
	} else if (rc != SQLITE_DONE)
		ret = dberr(c->db, err, "reading");
	done(s);
	return ret;
}

/* Step an UPDATE or DELETE s of one row by key, bound by the caller with
 * rc the outcome of binding; NOTFOUND names what when no row changed. */
static int
change_one(struct conn *c, sqlite3_stmt *s, int rc, const char *what, const char *key,
    struct smime_error *err)
{
	int ret = 0;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = dberr(c->db, err, "writing");
	else if (sqlite3_changes(c->db) == 0)
		ret = smime_error_set(err, SMIME_E_NOTFOUND, "no %s '%.128s'", what, key);
	done(s);
	return ret;
}

/* ---------------- transactions ---------------- */

static int
need_tx(struct store_tx *tx, bool write, struct smime_error *err)
{
	if (tx == NULL)
		return usage(err, "no transaction");
	if (write && !tx->write)
		return usage(err, "a write in a read transaction");
	return 0;
}

/*
 * One record by key, for the *_get functions: a transaction, a key and a
 * place, item zeroed, NOTFOUND as "no WHAT 'KEY'".
 */
static int
get_record(struct store_tx *tx, const char *op, int id, const char *key, row_fn row,
    void *item, size_t size, const char *what, struct smime_error *err)
{
	bool found;
	int ret;

	if ((ret = need_tx(tx, false, err)) != 0)
		return ret;
	if (key == NULL || item == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "store: %s needs a key and a place",
		    op);
	memset(item, 0, size);
	if ((ret = get_one(tx->c, id, key, row, item, &found, err)) != 0)
		return ret;
	if (!found)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no %s '%.128s'", what, key);
	return 0;
}

/* Shortest prefix taken for an id, and ids named when one is ambiguous. */
#define PREFIX_MIN 4
#define PREFIX_SHOWN 4

/*
 * An id given by a prefix of it (people copy the start of an id from a
 * list: "scep show 6EE93B").  uuid: the ids are UUIDs, so a prefix is
 * taken in any case and with or without its dashes.  *found_r: the whole
 * id in out[size] when exactly one starts with in; SMIME_E_EXISTS when
 * several do, naming some; 0 with *found_r false when none does or in is
 * shorter than PREFIX_MIN.
 */
static int
id_by_prefix(struct store_tx *tx, int id, const char *in, bool uuid, char *out, size_t size,
    const char *what, bool *found_r, struct smime_error *err)
{
	char pfx[STORE_TID_SIZE], names[4 * STORE_TID_SIZE] = "";
	size_t n = 0, hex = 0;
	sqlite3_stmt *s = NULL;
	int rc, ret = 0;

	*found_r = false;
	if (strlen(in) < PREFIX_MIN || strlen(in) >= sizeof(pfx) || strchr(in, '@') != NULL)
		return 0;
	if (uuid) {
		/* 8-4-4-4-12 hexadecimal digits, lower-case. */
		for (const char *p = in; *p != '\0'; p++) {
			if (*p == '-')
				continue;
			if (!isxdigit((unsigned char)*p) || hex == 32)
				return 0;
			if (hex == 8 || hex == 12 || hex == 16 || hex == 20)
				pfx[n++] = '-';
			pfx[n++] = (char)tolower((unsigned char)*p);
			hex++;
		}
		pfx[n] = '\0';
	} else
		snprintf(pfx, sizeof(pfx), "%s", in);
	if ((ret = stmt(tx->c, id, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, pfx);
	n = 0;
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *got = (const char *)sqlite3_column_text(s, 0);
		if (got == NULL)
			continue;
		if (n++ == 0)
			snprintf(out, size, "%s", got);
		else if (n == 2)
			snprintf(names, sizeof(names), "%s, %s", out, got);
		else if (n <= PREFIX_SHOWN - 1) {
			size_t used = strlen(names);
			snprintf(names + used, sizeof(names) - used, ", %s", got);
		}
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "looking up an id by its prefix");
	else if (n == 1)
		*found_r = true;
	else if (n > 1)
		ret = smime_error_set(err, SMIME_E_EXISTS, "'%.64s' is ambiguous: it starts the ids "
		    "of several %ss (%s%s): give more of it", in, what, names,
		    n >= PREFIX_SHOWN ? ", ..." : "");
	done(s);
	return ret;
}

/* get_record, and by a unique prefix of the key when there is no such key. */
static int
get_record_or_prefix(struct store_tx *tx, const char *op, int id, int prefix_id, bool uuid,
    const char *key, row_fn row, void *item, size_t size, const char *what,
    struct smime_error *err)
{
	char whole[STORE_TID_SIZE];
	bool found;
	int ret = get_record(tx, op, id, key, row, item, size, what, err);

	if (ret != SMIME_E_NOTFOUND)
		return ret;
	struct smime_error why = *err;
	if ((ret = id_by_prefix(tx, prefix_id, key, uuid, whole, sizeof(whole), what, &found,
	    err)) != 0)
		return ret;
	if (!found) {
		*err = why;
		return SMIME_E_NOTFOUND;
	}
	return get_record(tx, op, id, whole, row, item, size, what, err);
}

static void
tx_end(struct store_tx *tx)
{
	struct store *st = tx->st;
	bool write = tx->write;

	pool_put(st, tx->c);
	if (write)
		gate_leave(st);
	free(tx);
}

static int
sq_begin(struct store *st, bool write, struct store_tx **tx_r, struct smime_error *err)
{
	struct store_tx *tx = NULL;
	struct conn *c = NULL;
	bool gate = false;
	int ret;

	if (st == NULL || tx_r == NULL)
		return usage(err, "begin needs a store");
	*tx_r = NULL;
	if (write) {
		if ((ret = gate_enter(st, err)) != 0)
			return ret;
		gate = true;
	}
	if ((ret = pool_get(st, &c, err)) != 0)
		goto out;
	if ((tx = calloc(1, sizeof(*tx))) == NULL) {
		ret = nomem(err);
		goto out;
	}
	if ((ret = run(c, write ? S_BEGIN_WRITE : S_BEGIN,
	    write ? "starting a write transaction" : "starting a transaction", err)) != 0)
		goto out;
	tx->st = st;
	tx->c = c;
	tx->write = write;
	c = NULL;
	gate = false;
	*tx_r = tx;
	tx = NULL;
out:
	free(tx);
	if (c != NULL)
		pool_put(st, c);
	if (gate)
		gate_leave(st);
	return ret;
}

static int
sq_commit(struct store_tx *tx, struct smime_error *err)
{
	int ret;

	if (tx == NULL)
		return usage(err, "no transaction");
	ret = run(tx->c, S_COMMIT, "committing", err);
	tx_end(tx);
	return ret;
}

static void
sq_rollback(struct store_tx *tx)
{
	if (tx == NULL)
		return;
	tx_end(tx);
}

static int
sq_savepoint(struct store_tx *tx, struct smime_error *err)
{
	int ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (tx->savepoint)
		return usage(err, "a savepoint is already open");
	if ((ret = run(tx->c, S_SAVEPOINT, "opening a savepoint", err)) == 0)
		tx->savepoint = true;
	return ret;
}

static int
sq_release(struct store_tx *tx, struct smime_error *err)
{
	int ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (!tx->savepoint)
		return usage(err, "no savepoint is open");
	if ((ret = run(tx->c, S_RELEASE, "releasing a savepoint", err)) == 0)
		tx->savepoint = false;
	return ret;
}

static int
sq_rollback_to(struct store_tx *tx, struct smime_error *err)
{
	int ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (!tx->savepoint)
		return usage(err, "no savepoint is open");
	if ((ret = run(tx->c, S_ROLLBACK_TO, "rolling back to a savepoint", err)) != 0)
		return ret;
	if ((ret = run(tx->c, S_RELEASE, "releasing a savepoint", err)) == 0)
		tx->savepoint = false;
	return ret;
}

/* The internal savepoint around a store function of several statements. */
static int
op_begin(struct store_tx *tx, struct smime_error *err)
{
	return run(tx->c, S_OP_BEGIN, "opening a savepoint", err);
}

/* End it: kept when ret is 0, undone otherwise; returns the outcome. */
static int
op_end(struct store_tx *tx, int ret, struct smime_error *err)
{
	struct smime_error scratch;

	if (ret == 0) {
		if ((ret = run(tx->c, S_OP_RELEASE, "releasing a savepoint", err)) == 0)
			return 0;
	}
	/* After some failures SQLite has already rolled the whole
	 * transaction back and the savepoint is gone: nothing to undo. */
	(void)run(tx->c, S_OP_UNDO, "undoing", &scratch);
	(void)run(tx->c, S_OP_RELEASE, "releasing a savepoint", &scratch);
	return ret;
}

/* ---------------- schema ---------------- */

static int
query_int(sqlite3 *db, const char *sql, int64_t *v_r)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*v_r = 0;
	if ((rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL)) != SQLITE_OK)
		return rc;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*v_r = sqlite3_column_int64(s, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	return rc;
}

/*
 * What the file at name holds: *version_r 0 for an empty database, else
 * its schema version.  Refuses a file that is not a database, one of
 * another application, and one newer than this program.
 */
static int
schema_check(sqlite3 *db, const char *name, int64_t *version_r, struct smime_error *err)
{
	int64_t app, version, objects;
	int rc;

	*version_r = 0;
	if ((rc = query_int(db, "PRAGMA application_id", &app)) != SQLITE_OK ||
	    (rc = query_int(db, "PRAGMA user_version", &version)) != SQLITE_OK ||
	    (rc = query_int(db, "SELECT count(*) FROM sqlite_schema", &objects)) != SQLITE_OK)
		return dbopen_err(db, err, name);
	if (app == 0 && version == 0 && objects == 0)
		return 0;
	if (app != APPLICATION_ID || version < 1)
		return smime_error_set(err, SMIME_E_INPUT,
		    "%s is not a smimed database (application id %lld, version %lld)",
		    name, (long long)app, (long long)version);
	if (version > STORE_SCHEMA_VERSION)
		return smime_error_set(err, SMIME_E_INPUT,
		    "%s has schema version %lld, newer than this smimed's %d: "
		    "use the smimed that wrote it", name, (long long)version,
		    STORE_SCHEMA_VERSION);
	*version_r = version;
	return 0;
}

/* Bring the schema of db to STORE_SCHEMA_VERSION in one transaction. */
static int
migrate(sqlite3 *db, const char *name, struct smime_error *err)
{
	char sql[128];
	int64_t version;
	int ret = 0;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return dberr(db, err, name);
	/* Checked again under the lock: another process may have migrated. */
	if ((ret = schema_check(db, name, &version, err)) != 0)
		goto out;
	if (version == STORE_SCHEMA_VERSION)
		goto out;
	for (int64_t v = version; v < STORE_SCHEMA_VERSION; v++) {
		if (sqlite3_exec(db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
			ret = smime_error_set(err, SMIME_E_IO, "%s: schema version %lld: %s",
			    name, (long long)v + 1, sqlite3_errmsg(db));
			goto out;
		}
	}
	/* Constants of this program, not values from outside. */
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = %d",
	    APPLICATION_ID, STORE_SCHEMA_VERSION);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		ret = dberr(db, err, name);
out:
	if (ret == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		ret = dberr(db, err, name);
	if (ret != 0)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

/* PRAGMA integrity_check and foreign_key_check of a database to restore. */
static int
integrity(sqlite3 *db, const char *name, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	const char *text;
	int rc, ret = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) != SQLITE_OK)
		return dberr(db, err, name);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW)
		ret = dberr(db, err, name);
	else if ((text = (const char *)sqlite3_column_text(s, 0)) == NULL ||
	    strcmp(text, "ok") != 0)
		ret = smime_error_set(err, SMIME_E_INPUT, "%s fails the integrity check: %.200s",
		    name, text != NULL ? text : "?");
	sqlite3_finalize(s);
	if (ret != 0)
		return ret;
	if (sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &s, NULL) != SQLITE_OK)
		return dberr(db, err, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		text = (const char *)sqlite3_column_text(s, 0);
		ret = smime_error_set(err, SMIME_E_INPUT,
		    "%s fails the integrity check: a row of %.64s refers to nothing", name,
		    text != NULL ? text : "?");
	}
	else if (rc != SQLITE_DONE)
		ret = dberr(db, err, name);
	sqlite3_finalize(s);
	return ret;
}

/* ---------------- the store ---------------- */

static void
store_destroy(struct store *st)
{
	struct conn *c;

	if (st == NULL)
		return;
	while ((c = st->idle) != NULL) {
		st->idle = c->next;
		conn_close(c);
	}
	if (st->cond_init)
		pthread_cond_destroy(&st->cond);
	if (st->lock_init)
		pthread_mutex_destroy(&st->lock);
	free(st->path);
	free(st);
}

static int
sq_open(const char *location, struct store **st_r, struct smime_error *err)
{
	struct store *st = NULL;
	struct conn *c = NULL;
	pthread_condattr_t ca;
	sqlite3_stmt *s = NULL;
	const char *mode;
	int64_t version;
	int fd, ret = 0;

	if (location == NULL || st_r == NULL)
		return usage(err, "open needs a location");
	*st_r = NULL;
	if (!sqlite3_threadsafe())
		return smime_error_set(err, SMIME_E_INTERNAL,
		    "this SQLite library is built without thread support");
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return nomem(err);
	if (asprintf(&st->path, "%s/%s", location, DB_FILE) < 0) {
		st->path = NULL;
		ret = nomem(err);
		goto out;
	}

	/* The file is ours and nobody else's before SQLite sees it. */
	if ((fd = open(st->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		ret = smime_error_set(err, SMIME_E_IO, "%s: %s", st->path, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) != 0) {
		ret = smime_error_set(err, SMIME_E_IO, "%s: %s", st->path, strerror(errno));
		close(fd);
		goto out;
	}
	close(fd);

	if (pthread_mutex_init(&st->lock, NULL) != 0) {
		ret = nomem(err);
		goto out;
	}
	st->lock_init = true;
	if (pthread_condattr_init(&ca) != 0) {
		ret = nomem(err);
		goto out;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&st->cond, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		ret = nomem(err);
		goto out;
	}
	pthread_condattr_destroy(&ca);
	st->cond_init = true;

	if ((ret = conn_open(st->path, SQLITE_OPEN_READWRITE, &c, err)) != 0)
		goto out;
	/* Refuse another application's file before changing its mode. */
	if ((ret = schema_check(c->db, st->path, &version, err)) != 0)
		goto out;
	if (sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		ret = dberr(c->db, err, st->path);
		goto out;
	}
	mode = (const char *)sqlite3_column_text(s, 0);
	if (mode == NULL || sqlite3_stricmp(mode, "wal") != 0) {
		ret = smime_error_set(err, SMIME_E_IO, "%s: cannot use WAL mode (journal mode %s)",
		    st->path, mode != NULL ? mode : "?");
		goto out;
	}
	sqlite3_finalize(s);
	s = NULL;
	if ((ret = migrate(c->db, st->path, err)) != 0)
		goto out;
	st->n_open = 1;
	pool_put(st, c);
	c = NULL;
	*st_r = st;
	st = NULL;
out:
	sqlite3_finalize(s);
	conn_close(c);
	store_destroy(st);
	return ret;
}

/* Every transaction MUST have ended: connections still lent are lost. */
static void
sq_close(struct store *st)
{
	store_destroy(st);
}

static int
sq_ping(struct store *st, struct smime_error *err)
{
	struct conn *c;
	sqlite3_stmt *s;
	int ret;

	if (st == NULL)
		return usage(err, "ping needs a store");
	if ((ret = pool_get(st, &c, err)) != 0)
		return ret;
	if ((ret = stmt(c, S_PING, &s, err)) == 0) {
		if (sqlite3_step(s) != SQLITE_ROW)
			ret = dberr(c->db, err, "ping");
		done(s);
	}
	pool_put(st, c);
	return ret;
}

/*
 * Copy database src into dst with the backup API, all pages in one step so
 * that the copy is one snapshot of src even while others write to it.
 */
static int
copy_db(sqlite3 *dst, sqlite3 *src, const char *what, struct smime_error *err)
{
	sqlite3_backup *b;
	int rc, waited = 0;

	if ((b = sqlite3_backup_init(dst, "main", src, "main")) == NULL)
		return dberr(dst, err, what);
	for (;;) {
		rc = sqlite3_backup_step(b, -1);
		if (((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) &&
		    waited < BUSY_MS) {
			sqlite3_sleep(20);
			waited += 20;
			continue;
		}
		break;
	}
	if (sqlite3_backup_finish(b) != SQLITE_OK || rc != SQLITE_DONE)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", what,
		    rc != SQLITE_DONE ? sqlite3_errstr(rc) : sqlite3_errmsg(dst));
	return 0;
}

static int
fsync_path(const char *path, int flags, struct smime_error *err)
{
	int fd, ret = 0;

	if ((fd = open(path, flags | O_CLOEXEC)) == -1)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	if (fsync(fd) != 0)
		ret = smime_error_set(err, SMIME_E_IO, "%s: fsync: %s", path, strerror(errno));
	close(fd);
	return ret;
}

static void
unlink_tmp(const char *tmp)
{
	static const char *const suffix[] = { "", "-journal", "-wal", "-shm" };
	char p[PATH_MAX];

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		if (snprintf(p, sizeof(p), "%s%s", tmp, suffix[i]) < (int)sizeof(p))
			unlink(p);
	}
}

static int
sq_backup(struct store *st, const char *path, struct smime_error *err)
{
	struct conn *src = NULL;
	sqlite3 *dst = NULL;
	char *tmp = NULL, *dir = NULL, *slash;
	bool made = false;
	int fd, ret = 0;

	if (st == NULL || path == NULL)
		return usage(err, "backup needs a store and a path");
	if (strlen(path) + 16 > PATH_MAX)
		return smime_error_set(err, SMIME_E_USAGE, "store: backup path too long");
	if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
		tmp = NULL;
		ret = nomem(err);
		goto out;
	}
	/* mkstemp makes it 0600; the copy keeps the mode. */
	if ((fd = mkstemp(tmp)) == -1) {
		ret = smime_error_set(err, SMIME_E_IO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	made = true;
	/* Closed before SQLite opens it: closing any descriptor of a file
	 * drops the process's POSIX locks on it, SQLite's too. */
	close(fd);

	if ((ret = conn_open(st->path, SQLITE_OPEN_READWRITE, &src, err)) != 0)
		goto out;
	if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		ret = dberr(dst, err, tmp);
		goto out;
	}
	sqlite3_busy_timeout(dst, BUSY_MS);
	if ((ret = copy_db(dst, src->db, "backing up", err)) != 0)
		goto out;
	/* One self-contained file, without -wal beside it. */
	if (sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL) != SQLITE_OK) {
		ret = dberr(dst, err, tmp);
		goto out;
	}
	if (sqlite3_close(dst) != SQLITE_OK) {
		ret = dberr(dst, err, tmp);
		goto out;
	}
	dst = NULL;
	if ((ret = fsync_path(tmp, O_RDONLY, err)) != 0)
		goto out;
	if (rename(tmp, path) != 0) {
		ret = smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	made = false;
	if ((dir = strdup(path)) == NULL) {
		ret = nomem(err);
		goto out;
	}
	if ((slash = strrchr(dir, '/')) == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	ret = fsync_path(dir, O_RDONLY | O_DIRECTORY, err);
out:
	sqlite3_close(dst);
	conn_close(src);
	if (made)
		unlink_tmp(tmp);
	free(tmp);
	free(dir);
	return ret;
}

static int
sq_restore(struct store *st, const char *path, struct smime_error *err)
{
	struct stat sa, sb;
	sqlite3 *src = NULL;
	struct conn *dst = NULL;
	int64_t version;
	bool gate = false;
	int ret;

	if (st == NULL || path == NULL)
		return usage(err, "restore needs a store and a path");
	if (stat(path, &sa) != 0)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	if (stat(st->path, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
		return usage(err, "restore from the live database itself");
	if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		ret = dberr(src, err, path);
		goto out;
	}
	sqlite3_busy_timeout(src, BUSY_MS);
	if ((ret = schema_check(src, path, &version, err)) != 0)
		goto out;
	if (version == 0) {
		ret = smime_error_set(err, SMIME_E_INPUT, "%s is not a smimed database (empty)",
		    path);
		goto out;
	}
	if ((ret = integrity(src, path, err)) != 0)
		goto out;

	/* Our own writers wait; other connections see the new state at
	 * their next transaction (the copy bumps the schema cookie). */
	if ((ret = gate_enter(st, err)) != 0)
		goto out;
	gate = true;
	if ((ret = conn_open(st->path, SQLITE_OPEN_READWRITE, &dst, err)) != 0)
		goto out;
	if ((ret = copy_db(dst->db, src, "restoring", err)) != 0)
		goto out;
	if (version < STORE_SCHEMA_VERSION)
		ret = migrate(dst->db, st->path, err);
out:
	conn_close(dst);
	if (gate)
		gate_leave(st);
	sqlite3_close(src);
	return ret;
}

/* ---------------- meta ---------------- */

static int
sq_meta_get(struct store_tx *tx, const char *key, char **value_r, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, ret;

	if ((ret = need_tx(tx, false, err)) != 0)
		return ret;
	if (key == NULL || value_r == NULL)
		return usage(err, "meta_get needs a key");
	*value_r = NULL;
	if ((ret = stmt(tx->c, S_META_GET, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (col_str(s, 0, value_r) != 0)
			ret = nomem(err);
	} else if (rc == SQLITE_DONE)
		ret = smime_error_set(err, SMIME_E_NOTFOUND, "no setting '%.128s'", key);
	else
		ret = dberr(tx->c->db, err, "reading a setting");
	done(s);
	return ret;
}

static int
sq_meta_set(struct store_tx *tx, const char *key, const char *value, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (key == NULL || value == NULL)
		return usage(err, "meta_set needs a key and a value");
	if ((ret = stmt(tx->c, S_META_SET, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, key);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 2, value);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a setting");
	done(s);
	return ret;
}

/* ---------------- users ---------------- */

static int
user_check(const struct store_user *u, struct smime_error *err)
{
	if (u == NULL)
		return usage(err, "no user");
	if (u->n_emails > 0 && u->emails == NULL)
		return usage(err, "a user's addresses are missing");
	for (size_t i = 0; i < u->n_emails; i++)
		if (u->emails[i] == NULL)
			return usage(err, "a user's address is NULL");
	return 0;
}

static int
emails_insert(struct conn *c, const struct store_user *u, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = stmt(c, S_EMAIL_INSERT, &s, err)) != 0)
		return ret;
	for (size_t i = 0; i < u->n_emails && ret == 0; i++) {
		rc = bind_str(s, 1, u->emails[i]);
		if (rc == SQLITE_OK)
			rc = bind_field(s, 2, u->id, sizeof(u->id));
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(s, 3, (sqlite3_int64)i);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(s);
		if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
			ret = smime_error_set(err, SMIME_E_NOTFOUND, "no user '%.36s'", u->id);
		else if (is_constraint(rc))
			ret = smime_error_set(err, SMIME_E_EXISTS, "the address %.200s is taken",
			    u->emails[i]);
		else if (rc != SQLITE_DONE)
			ret = dberr(c->db, err, "writing an address");
		done(s);
	}
	return ret;
}

/* The first column of the row at s appended to *v. */
static int
strv_push(char ***v, size_t *n, size_t *cap, sqlite3_stmt *s)
{
	char **p;

	if ((p = grow(*v, cap, *n, sizeof(char *))) == NULL)
		return SQLITE_NOMEM;
	*v = p;
	if (col_str(s, 0, &p[*n]) != 0)
		return SQLITE_NOMEM;
	(*n)++;
	return SQLITE_OK;
}

/* The addresses (in order) and group names (sorted) of u, which has its id. */
static int
user_fill(struct conn *c, struct store_user *u, struct smime_error *err)
{
	sqlite3_stmt *s;
	size_t cap;
	int rc, ret = 0;

	for (int pass = 0; pass < 2 && ret == 0; pass++) {
		char ***v = pass == 0 ? &u->emails : &u->groups;
		size_t *n = pass == 0 ? &u->n_emails : &u->n_groups;

		if ((ret = stmt(c, pass == 0 ? S_USER_EMAILS : S_USER_GROUPS, &s, err)) != 0)
			break;
		cap = *n;
		rc = bind_field(s, 1, u->id, sizeof(u->id));
		while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
			rc = strv_push(v, n, &cap, s);
		if (rc == SQLITE_NOMEM)
			ret = nomem(err);
		else if (rc != SQLITE_DONE)
			ret = dberr(c->db, err, "reading a user");
		done(s);
	}
	return ret;
}

static int
sq_user_insert(struct store_tx *tx, const struct store_user *u, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0 || (ret = user_check(u, err)) != 0)
		return ret;
	if ((ret = op_begin(tx, err)) != 0)
		return ret;
	if ((ret = stmt(tx->c, S_USER_INSERT, &s, err)) != 0)
		goto out;
	rc = bind_field(s, 1, u->id, sizeof(u->id));
	if (rc == SQLITE_OK)
		rc = bind_str(s, 2, u->name);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, u->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, u->updated);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (is_constraint(rc)) {
		ret = smime_error_set(err, SMIME_E_EXISTS, "a user with id '%.36s' exists", u->id);
		goto out;
	}
	if (rc != SQLITE_DONE) {
		ret = dberr(tx->c->db, err, "writing a user");
		goto out;
	}
	done(s);
	s = NULL;
	ret = emails_insert(tx->c, u, err);
out:
	done(s);
	return op_end(tx, ret, err);
}

static int
sq_user_get(struct store_tx *tx, const char *id_or_email, struct store_user *u_r,
    struct smime_error *err)
{
	bool found;
	int ret;

	if ((ret = need_tx(tx, false, err)) != 0)
		return ret;
	if (id_or_email == NULL || u_r == NULL)
		return usage(err, "user_get needs an id or address");
	memset(u_r, 0, sizeof(*u_r));
	if ((ret = get_one(tx->c, S_USER_BY_ID, id_or_email, row_user, u_r, &found, err)) != 0)
		return ret;
	if (!found &&
	    (ret = get_one(tx->c, S_USER_BY_EMAIL, id_or_email, row_user, u_r, &found, err)) != 0)
		return ret;
	if (!found) {
		char whole[STORE_ID_SIZE];
		if ((ret = id_by_prefix(tx, S_USER_PREFIX, id_or_email, true, whole, sizeof(whole),
		    "user", &found, err)) != 0)
			return ret;
		if (found && (ret = get_one(tx->c, S_USER_BY_ID, whole, row_user, u_r, &found,
		    err)) != 0)
			return ret;
	}
	if (!found)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no user '%.200s'", id_or_email);
	if ((ret = user_fill(tx->c, u_r, err)) != 0)
		store_user_clear(u_r);
	return ret;
}

/*
 * One page of a list ordered by a text key (users, groups, devices).  The
 * statements come in fours from base: unfiltered, after a cursor, filtered
 * (?1) and filtered after a cursor (a list without a filter has the first
 * two).  A filter names a record that must exist (filter_exists).
 */
struct page_list {
	const char *what;                /* "users": for messages */
	int base;
	char tag;                        /* the cursor's kind: 'u', 'g', 'd' */
	const char *filter;              /* NULL: none */
	int filter_exists;               /* the statement that checks it */
	const char *filter_what;         /* "group": for NOTFOUND */
	size_t size;
	row_fn row;
	clear_fn clear;
	const char *(*key)(const void *item);   /* what the next cursor holds */
};

static int
list_page(struct store_tx *tx, const struct store_page *page, const struct page_list *pl,
    void **items_r, size_t *n_r, char **next_r, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	char *after = NULL, prefix[3] = { pl->tag, '.', '\0' };
	void *v = NULL;
	size_t n = 0;
	bool found, more;
	int rc, ret;

	if ((ret = need_tx(tx, false, err)) != 0 ||
	    (ret = page_check(page, items_r, n_r, next_r, err)) != 0)
		return ret;
	*items_r = NULL;
	*n_r = 0;
	*next_r = NULL;
	if (page->after != NULL && (ret = cursor_key(page->after, pl->tag, &after, err)) != 0)
		return ret;
	if (pl->filter != NULL) {
		if ((ret = exists(tx->c, pl->filter_exists, pl->filter, &found, err)) != 0)
			goto out;
		if (!found) {
			ret = smime_error_set(err, SMIME_E_NOTFOUND, "no %s '%.128s'", pl->filter_what,
			    pl->filter);
			goto out;
		}
	}
	if ((ret = stmt(tx->c, pl->base + (pl->filter != NULL ? 2 : 0) + (after != NULL), &s,
	    err)) != 0)
		goto out;
	rc = SQLITE_OK;
	if (pl->filter != NULL)
		rc = bind_str(s, 1, pl->filter);
	if (rc == SQLITE_OK && after != NULL)
		rc = bind_str(s, 2, after);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, (sqlite3_int64)page->limit + 1);
	if (rc != SQLITE_OK) {
		ret = dberr(tx->c->db, err, pl->what);
		goto out;
	}
	ret = fetch(tx->c->db, s, page->limit, pl->size, pl->row, &v, &n, &more, err);
	if (ret != 0)
		goto out;
	if (more && n > 0) {
		const char *key = pl->key((char *)v + (n - 1) * pl->size);
		if ((*next_r = cursor_make(prefix, key, strlen(key))) == NULL) {
			ret = nomem(err);
			goto out;
		}
	}
	*items_r = v;
	*n_r = n;
	v = NULL;
out:
	done(s);
	for (size_t i = 0; v != NULL && i < n; i++)
		pl->clear((char *)v + i * pl->size);
	free(v);
	free(after);
	return ret;
}

static void clear_user(void *p) { store_user_clear(p); }
static void clear_group(void *p) { store_group_clear(p); }
static void clear_device(void *p) { store_device_clear(p); }
static const char *key_user(const void *p) { return ((const struct store_user *)p)->id; }
static const char *key_group(const void *p) { return ((const struct store_group *)p)->name; }
static const char *key_device(const void *p) { return ((const struct store_device *)p)->id; }

/* A page of users by pl, each with its addresses and groups. */
static int
users_page(struct store_tx *tx, const struct store_page *page, const struct page_list *pl,
    struct store_user **users_r, size_t *n_r, char **next_r, struct smime_error *err)
{
	void *v = NULL;
	int ret = list_page(tx, page, pl, &v, n_r, next_r, err);

	if (ret != 0)
		return ret;
	for (size_t i = 0; i < *n_r; i++)
		if ((ret = user_fill(tx->c, (struct store_user *)v + i, err)) != 0) {
			store_users_free(v, *n_r);
			*n_r = 0;
			free(*next_r);
			*next_r = NULL;
			return ret;
		}
	*users_r = v;
	return 0;
}

static int
sq_user_list(struct store_tx *tx, const struct store_page *page, const char *group_id,
    struct store_user **users_r, size_t *n_r, char **next_r, struct smime_error *err)
{
	const struct page_list pl = { "listing users", S_USER_LIST, 'u', group_id,
		S_GROUP_EXISTS, "group", sizeof(**users_r), row_user, clear_user, key_user };
	return users_page(tx, page, &pl, users_r, n_r, next_r, err);
}

static int
sq_user_update(struct store_tx *tx, const struct store_user *u, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0 || (ret = user_check(u, err)) != 0)
		return ret;
	if ((ret = op_begin(tx, err)) != 0)
		return ret;
	if ((ret = stmt(tx->c, S_USER_UPDATE, &s, err)) != 0)
		goto out;
	rc = bind_field(s, 1, u->id, sizeof(u->id));
	if (rc == SQLITE_OK)
		rc = bind_str(s, 2, u->name);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, u->updated);
	ret = change_one(tx->c, s, rc, "user", u->id, err);
	s = NULL;
	if (ret != 0)
		goto out;
	if ((ret = stmt(tx->c, S_USER_EMAILS_DELETE, &s, err)) != 0)
		goto out;
	rc = bind_field(s, 1, u->id, sizeof(u->id));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE) {
		ret = dberr(tx->c->db, err, "writing a user");
		goto out;
	}
	done(s);
	s = NULL;
	ret = emails_insert(tx->c, u, err);
out:
	done(s);
	return op_end(tx, ret, err);
}

/* A DELETE by key alone as ?1; NOTFOUND names what when nothing went. */
static int
delete_by(struct store_tx *tx, int id, const char *key, const char *what,
    struct smime_error *err)
{
	sqlite3_stmt *s;
	int ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (key == NULL)
		return usage(err, "no id");
	if ((ret = stmt(tx->c, id, &s, err)) != 0)
		return ret;
	return change_one(tx->c, s, bind_str(s, 1, key), what, key, err);
}

/* Run statement id with the text key as ?1; *n_r (may be NULL): rows changed. */
static int
run_by(struct conn *c, int id, const char *key, size_t *n_r, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = stmt(c, id, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = dberr(c->db, err, "writing");
	else if (n_r != NULL)
		*n_r = (size_t)sqlite3_changes(c->db);
	done(s);
	return ret;
}

/* The user is marked deleted and keeps the addresses it holds, its
 * certificates and its archived keys; its devices and memberships go. */
static int
sq_user_delete(struct store_tx *tx, const char *id, int64_t when, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (id == NULL || when <= 0)
		return usage(err, "user_delete needs an id and a time");
	if ((ret = op_begin(tx, err)) != 0)
		return ret;
	if ((ret = stmt(tx->c, S_USER_DELETE, &s, err)) != 0)
		goto out;
	rc = bind_str(s, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, when);
	if ((ret = change_one(tx->c, s, rc, "user", id, err)) != 0)
		goto out;
	if ((ret = run_by(tx->c, S_USER_DEVICES_DELETE, id, NULL, err)) == 0)
		ret = run_by(tx->c, S_USER_GROUPS_DELETE, id, NULL, err);
out:
	return op_end(tx, ret, err);
}

static int
sq_user_find(struct store_tx *tx, const char *id_or_email, struct store_user *u_r,
    struct smime_error *err)
{
	static const int by[] = { S_USER_ANY_BY_ID, S_USER_ANY_BY_EMAIL, S_USER_ANY_BY_FORMER };
	bool found = false;
	int ret;

	if ((ret = need_tx(tx, false, err)) != 0)
		return ret;
	if (id_or_email == NULL || u_r == NULL)
		return usage(err, "user_find needs an id or address");
	memset(u_r, 0, sizeof(*u_r));
	for (size_t i = 0; i < sizeof(by) / sizeof(by[0]) && !found; i++)
		if ((ret = get_one(tx->c, by[i], id_or_email, row_user, u_r, &found, err)) != 0)
			return ret;
	if (!found)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no user '%.200s'", id_or_email);
	if ((ret = user_fill(tx->c, u_r, err)) != 0)
		store_user_clear(u_r);
	return ret;
}

static int
sq_user_list_deleted(struct store_tx *tx, const struct store_page *page,
    struct store_user **users_r, size_t *n_r, char **next_r, struct smime_error *err)
{
	const struct page_list pl = { "listing deleted users", S_USER_LIST_DELETED, 'x', NULL,
		0, NULL, sizeof(**users_r), row_user, clear_user, key_user };
	return users_page(tx, page, &pl, users_r, n_r, next_r, err);
}

static int
sq_user_release_addresses(struct store_tx *tx, const char *const *emails, size_t n,
    size_t *n_r, struct smime_error *err)
{
	size_t moved = 0, k;
	int ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (n > 0 && emails == NULL)
		return usage(err, "user_release_addresses needs addresses");
	if ((ret = op_begin(tx, err)) != 0)
		return ret;
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (emails[i] == NULL) {
			ret = usage(err, "an address is NULL");
			break;
		}
		if ((ret = run_by(tx->c, S_USER_RELEASE, emails[i], NULL, err)) == 0 &&
		    (ret = run_by(tx->c, S_USER_RELEASE_DELETE, emails[i], &k, err)) == 0)
			moved += k;
	}
	if (ret == 0 && n_r != NULL)
		*n_r = moved;
	return op_end(tx, ret, err);
}

static int
sq_user_purge(struct store_tx *tx, const char *id, size_t *keys_r, struct smime_error *err)
{
	struct store_user u = { 0 };
	size_t keys = 0;
	int ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (id == NULL)
		return usage(err, "user_purge needs an id");
	if ((ret = sq_user_find(tx, id, &u, err)) != 0)
		return ret;
	if (u.deleted == 0) {
		ret = smime_error_set(err, SMIME_E_POLICY, "user '%.128s' is not deleted: only a "
		    "deleted user is purged", id);
		goto done;
	}
	if ((ret = op_begin(tx, err)) != 0)
		goto done;
	if ((ret = run_by(tx->c, S_USER_PURGE_KEYS, u.id, &keys, err)) == 0)
		ret = run_by(tx->c, S_USER_PURGE, u.id, NULL, err);
	ret = op_end(tx, ret, err);
	if (ret == 0 && keys_r != NULL)
		*keys_r = keys;
done:
	store_user_clear(&u);
	return ret;
}

/* ---------------- groups ---------------- */

static int
sq_group_insert(struct store_tx *tx, const struct store_group *gr, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (gr == NULL || gr->name == NULL)
		return usage(err, "a group needs a name");
	if ((ret = stmt(tx->c, S_GROUP_INSERT, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, gr->id, sizeof(gr->id));
	if (rc == SQLITE_OK)
		rc = bind_str(s, 2, gr->name);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 3, gr->description);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, gr->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		ret = smime_error_set(err, SMIME_E_EXISTS, "a group named '%.200s' exists",
		    gr->name);
	else if (is_constraint(rc))
		ret = smime_error_set(err, SMIME_E_EXISTS, "a group with id '%.36s' exists",
		    gr->id);
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a group");
	done(s);
	return ret;
}

static int
sq_group_get(struct store_tx *tx, const char *id_or_name, struct store_group *gr_r,
    struct smime_error *err)
{
	bool found;
	int ret;

	if ((ret = need_tx(tx, false, err)) != 0)
		return ret;
	if (id_or_name == NULL || gr_r == NULL)
		return usage(err, "group_get needs an id or name");
	memset(gr_r, 0, sizeof(*gr_r));
	if ((ret = get_one(tx->c, S_GROUP_BY_ID, id_or_name, row_group, gr_r, &found, err)) != 0)
		return ret;
	if (!found &&
	    (ret = get_one(tx->c, S_GROUP_BY_NAME, id_or_name, row_group, gr_r, &found, err)) != 0)
		return ret;
	if (!found) {
		char whole[STORE_ID_SIZE];
		if ((ret = id_by_prefix(tx, S_GROUP_PREFIX, id_or_name, true, whole, sizeof(whole),
		    "group", &found, err)) != 0)
			return ret;
		if (found && (ret = get_one(tx->c, S_GROUP_BY_ID, whole, row_group, gr_r, &found,
		    err)) != 0)
			return ret;
	}
	if (!found)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no group '%.200s'", id_or_name);
	return 0;
}

static int
sq_group_list(struct store_tx *tx, const struct store_page *page,
    struct store_group **groups_r, size_t *n_r, char **next_r, struct smime_error *err)
{
	const struct page_list pl = { "listing groups", S_GROUP_LIST, 'g', NULL, 0, NULL,
		sizeof(**groups_r), row_group, clear_group, key_group };
	void *v = NULL;
	int ret = list_page(tx, page, &pl, &v, n_r, next_r, err);

	if (ret == 0)
		*groups_r = v;
	return ret;
}

static int
sq_group_update(struct store_tx *tx, const struct store_group *gr, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (gr == NULL || gr->name == NULL)
		return usage(err, "a group needs a name");
	if ((ret = stmt(tx->c, S_GROUP_UPDATE, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, gr->id, sizeof(gr->id));
	if (rc == SQLITE_OK)
		rc = bind_str(s, 2, gr->name);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 3, gr->description);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (is_constraint(rc))
		ret = smime_error_set(err, SMIME_E_EXISTS, "a group named '%.200s' exists",
		    gr->name);
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a group");
	else if (sqlite3_changes(tx->c->db) == 0)
		ret = smime_error_set(err, SMIME_E_NOTFOUND, "no group '%.36s'", gr->id);
	done(s);
	return ret;
}

static int
sq_group_delete(struct store_tx *tx, const char *id, struct smime_error *err)
{
	return delete_by(tx, S_GROUP_DELETE, id, "group", err);
}

/* NOTFOUND unless both the group and the user exist. */
static int
member_check(struct store_tx *tx, const char *group_id, const char *user_id,
    struct smime_error *err)
{
	bool found;
	int ret;

	if ((ret = exists(tx->c, S_GROUP_EXISTS, group_id, &found, err)) != 0)
		return ret;
	if (!found)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no group '%.128s'", group_id);
	if ((ret = exists(tx->c, S_USER_EXISTS, user_id, &found, err)) != 0)
		return ret;
	if (!found)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no user '%.128s'", user_id);
	return 0;
}

static int
sq_group_add_member(struct store_tx *tx, const char *group_id, const char *user_id,
    struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (group_id == NULL || user_id == NULL)
		return usage(err, "a membership needs a group and a user");
	if ((ret = member_check(tx, group_id, user_id, err)) != 0)
		return ret;
	if ((ret = stmt(tx->c, S_MEMBER_ADD, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, group_id);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 2, user_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		ret = smime_error_set(err, SMIME_E_NOTFOUND, "no group '%.128s' or no user '%.128s'",
		    group_id, user_id);
	else if (is_constraint(rc))
		ret = smime_error_set(err, SMIME_E_EXISTS,
		    "user '%.128s' is already a member of group '%.128s'", user_id, group_id);
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a membership");
	done(s);
	return ret;
}

static int
sq_group_remove_member(struct store_tx *tx, const char *group_id, const char *user_id,
    struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (group_id == NULL || user_id == NULL)
		return usage(err, "a membership needs a group and a user");
	if ((ret = stmt(tx->c, S_MEMBER_REMOVE, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, group_id);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 2, user_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a membership");
	else if (sqlite3_changes(tx->c->db) == 0)
		ret = smime_error_set(err, SMIME_E_NOTFOUND,
		    "user '%.128s' is not a member of group '%.128s'", user_id, group_id);
	done(s);
	return ret;
}

/* ---------------- devices ---------------- */

static int
sq_device_insert(struct store_tx *tx, const struct store_device *d, struct smime_error *err)
{
	sqlite3_stmt *s;
	bool found;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (d == NULL)
		return usage(err, "no device");
	if ((ret = exists(tx->c, S_USER_EXISTS, d->user_id, &found, err)) != 0)
		return ret;
	if (!found)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no user '%.36s'", d->user_id);
	if ((ret = stmt(tx->c, S_DEVICE_INSERT, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, d->id, sizeof(d->id));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 2, d->user_id, sizeof(d->user_id));
	if (rc == SQLITE_OK)
		rc = bind_str(s, 3, d->name);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 4, d->platform);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 5, d->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 6, d->updated);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		ret = smime_error_set(err, SMIME_E_NOTFOUND, "no user '%.36s'", d->user_id);
	else if (is_constraint(rc))
		ret = smime_error_set(err, SMIME_E_EXISTS, "a device with id '%.36s' exists",
		    d->id);
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a device");
	done(s);
	return ret;
}

static int
sq_device_get(struct store_tx *tx, const char *id, struct store_device *d_r,
    struct smime_error *err)
{
	return get_record_or_prefix(tx, "device_get", S_DEVICE_GET, S_DEVICE_PREFIX, true, id,
	    row_device, d_r, sizeof(*d_r), "device", err);
}

static int
sq_device_list(struct store_tx *tx, const struct store_page *page, const char *user_id,
    struct store_device **devices_r, size_t *n_r, char **next_r, struct smime_error *err)
{
	const struct page_list pl = { "listing devices", S_DEVICE_LIST, 'd', user_id,
		S_USER_EXISTS, "user", sizeof(**devices_r), row_device, clear_device, key_device };
	void *v = NULL;
	int ret = list_page(tx, page, &pl, &v, n_r, next_r, err);

	if (ret == 0)
		*devices_r = v;
	return ret;
}

static int
sq_device_update(struct store_tx *tx, const struct store_device *d, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (d == NULL)
		return usage(err, "no device");
	if ((ret = stmt(tx->c, S_DEVICE_UPDATE, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, d->id, sizeof(d->id));
	if (rc == SQLITE_OK)
		rc = bind_str(s, 2, d->name);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 3, d->platform);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, d->updated);
	return change_one(tx->c, s, rc, "device", d->id, err);
}

static int
sq_device_delete(struct store_tx *tx, const char *id, struct smime_error *err)
{
	return delete_by(tx, S_DEVICE_DELETE, id, "device", err);
}

/* ---------------- certification authorities ---------------- */

static int
sq_ca_insert(struct store_tx *tx, const struct store_ca *ca, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (ca == NULL || ca->cert_der == NULL || ca->cert_len == 0)
		return usage(err, "a CA needs its certificate");
	if ((ret = stmt(tx->c, S_CA_INSERT, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, ca->id, sizeof(ca->id));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 2, ca->parent_id, sizeof(ca->parent_id));
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 3, ca->issuing ? 1 : 0);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 4, ca->key_alg);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 5, ca->cert_der, ca->cert_len);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 6, ca->key_wrapped, ca->key_wrapped_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 7, ca->crl_number);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 8, ca->crl_der, ca->crl_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 9, ca->crl_updated);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 10, ca->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (is_constraint(rc))
		ret = smime_error_set(err, SMIME_E_EXISTS, "a CA with id '%.64s' exists", ca->id);
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a CA");
	done(s);
	return ret;
}

static int
sq_ca_get(struct store_tx *tx, const char *id, struct store_ca *ca_r, struct smime_error *err)
{
	return get_record(tx, "ca_get", S_CA_GET, id, row_ca, ca_r, sizeof(*ca_r), "CA", err);
}


/*
 * A whole small table (no pagination) by statement id, for the *_list
 * functions: *v_r an array of n_r items of size octets, freed here (each
 * item cleared with clear) when reading fails.
 */
static int
list_all(struct store_tx *tx, const char *op, int id, size_t size, row_fn row,
    clear_fn clear, void **v_r, size_t *n_r, struct smime_error *err)
{
	sqlite3_stmt *s;
	void *v = NULL;
	size_t n = 0;
	int ret;

	if ((ret = need_tx(tx, false, err)) != 0)
		return ret;
	if (v_r == NULL || n_r == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "store: %s needs places for its "
		    "results", op);
	*v_r = NULL;
	*n_r = 0;
	if ((ret = stmt(tx->c, id, &s, err)) != 0)
		return ret;
	ret = fetch(tx->c->db, s, SIZE_MAX, size, row, &v, &n, NULL, err);
	done(s);
	if (ret != 0) {
		for (size_t i = 0; i < n; i++)
			clear((char *)v + i * size);
		free(v);
		return ret;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

static void clear_ca(void *p) { store_ca_clear(p); }
static void clear_profile(void *p) { store_profile_clear(p); }
static void clear_token(void *p) { store_token_clear(p); }
static void clear_trust(void *p) { store_trust_clear(p); }

static int
sq_ca_list(struct store_tx *tx, struct store_ca **cas_r, size_t *n_r, struct smime_error *err)
{
	void *v = NULL;
	int ret = list_all(tx, "ca_list", S_CA_LIST, sizeof(**cas_r), row_ca, clear_ca, &v, n_r,
	    err);

	if (cas_r != NULL)
		*cas_r = v;
	return ret;
}

static int
sq_ca_set_crl(struct store_tx *tx, const char *id, int64_t number, const unsigned char *der,
    size_t len, int64_t when, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (id == NULL)
		return usage(err, "ca_set_crl needs an id");
	if ((ret = stmt(tx->c, S_CA_SET_CRL, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, number);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 3, der, len);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, when);
	return change_one(tx->c, s, rc, "CA", id, err);
}

/* ---------------- profiles ---------------- */

static int
sq_profile_put(struct store_tx *tx, const struct store_profile *p, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (p == NULL)
		return usage(err, "no profile");
	if (p->purpose < PURPOSE_SIGNING || p->purpose > PURPOSE_DUAL)
		return usage(err, "a profile's purpose is signing, encryption or dual");
	if ((ret = stmt(tx->c, S_PROFILE_PUT, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, p->name, sizeof(p->name));
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 2, (int)p->purpose);
	if (rc == SQLITE_OK)
		rc = bind_field(s, 3, p->ca_id, sizeof(p->ca_id));
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 4, p->validity_days);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 5, p->br_profile);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 6, p->key_alg);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 7, p->allow_generate ? 1 : 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 8, p->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 9, p->updated);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a profile");
	done(s);
	return ret;
}

static int
sq_profile_get(struct store_tx *tx, const char *name, struct store_profile *p_r,
    struct smime_error *err)
{
	return get_record(tx, "profile_get", S_PROFILE_GET, name, row_profile, p_r, sizeof(*p_r),
	    "profile", err);
}

static int
sq_profile_list(struct store_tx *tx, struct store_profile **profiles_r, size_t *n_r,
    struct smime_error *err)
{
	void *v = NULL;
	int ret = list_all(tx, "profile_list", S_PROFILE_LIST, sizeof(**profiles_r), row_profile,
	    clear_profile, &v, n_r, err);

	if (profiles_r != NULL)
		*profiles_r = v;
	return ret;
}

static int
sq_profile_delete(struct store_tx *tx, const char *name, struct smime_error *err)
{
	return delete_by(tx, S_PROFILE_DELETE, name, "profile", err);
}

/* ---------------- certificates ---------------- */

static int
sq_cert_insert(struct store_tx *tx, const struct store_cert *c, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (c == NULL || c->der == NULL || c->der_len == 0)
		return usage(err, "a certificate record needs its DER");
	if (c->purpose < PURPOSE_SIGNING || c->purpose > PURPOSE_DUAL ||
	    c->source < SOURCE_ISSUED || c->source > SOURCE_DERIVED ||
	    c->status < STATUS_ACTIVE || c->status > STATUS_REVOKED)
		return usage(err, "a certificate's purpose, source or status is out of range");
	if ((ret = stmt(tx->c, S_CERT_INSERT, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, c->serial, sizeof(c->serial));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 2, c->ca_id, sizeof(c->ca_id));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 3, c->user_id, sizeof(c->user_id));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 4, c->device_id, sizeof(c->device_id));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 5, c->profile, sizeof(c->profile));
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 6, (int)c->purpose);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 7, (int)c->source);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 8, (int)c->status);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 9, c->subject);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 10, c->email);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 11, c->not_before);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 12, c->not_after);
	if (rc == SQLITE_OK)
		rc = bind_field(s, 13, c->sha256, sizeof(c->sha256));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 14, c->sha1, sizeof(c->sha1));
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 15, c->der, c->der_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 16, c->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 17, c->revoked_at);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 18, c->reason);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		ret = smime_error_set(err, SMIME_E_EXISTS, "the certificate with serial %.64s exists "
		    "(SHA-256 %.64s)", c->serial, c->sha256);
	else if (rc == SQLITE_CONSTRAINT_UNIQUE)
		ret = smime_error_set(err, SMIME_E_EXISTS, "CA '%.64s': serial %.64s exists",
		    c->ca_id, c->serial);
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a certificate");
	done(s);
	return ret;
}

/* 64 lower-case hexadecimal digits: a SHA-256 fingerprint, not a serial. */
static bool
is_fingerprint(const char *id)
{
	size_t n = 0;

	for (; id[n] != '\0'; n++)
		if (!isxdigit((unsigned char)id[n]) || isupper((unsigned char)id[n]))
			return false;
	return n == 64;
}

/*
 * The fingerprint of the certificate that id names: its fingerprint, or
 * its serial when one certificate alone has it (imported certificates of
 * different issuers may share a serial: EXISTS then, naming the way out).
 */
static int
cert_resolve(struct store_tx *tx, const char *id, char sha256[65], struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, ret, found = 0;

	if (is_fingerprint(id)) {
		snprintf(sha256, 65, "%s", id);
		return 0;
	}
	if ((ret = stmt(tx->c, S_CERT_BY_SERIAL, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, id);
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (found++ == 0)
			ret = col_field(s, 0, sha256, 65) == 0 ? 0 : nomem(err);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "reading a certificate");
	else if (found == 0) {
		/* A unique start of a serial names it too. */
		char serial[STORE_SERIAL_SIZE];
		bool one;
		done(s);
		s = NULL;
		if ((ret = id_by_prefix(tx, S_CERT_PREFIX, id, false, serial, sizeof(serial),
		    "certificate", &one, err)) != 0)
			return ret;
		if (one)
			return cert_resolve(tx, serial, sha256, err);
		ret = smime_error_set(err, SMIME_E_NOTFOUND, "no certificate with serial '%.128s'",
		    id);
	}
	else if (found > 1)
		ret = smime_error_set(err, SMIME_E_EXISTS, "several certificates (of different "
		    "issuers) have serial %.128s: name one by its SHA-256 fingerprint", id);
	done(s);
	return ret;
}

static int
sq_cert_get(struct store_tx *tx, const char *id, struct store_cert *c_r,
    struct smime_error *err)
{
	char sha256[65];
	int ret;

	if ((ret = need_tx(tx, false, err)) != 0)
		return ret;
	if (id == NULL || c_r == NULL)
		return usage(err, "cert_get needs a serial or fingerprint and a place");
	memset(c_r, 0, sizeof(*c_r));
	if ((ret = cert_resolve(tx, id, sha256, err)) != 0)
		return ret;
	return get_record(tx, "cert_get", S_CERT_GET, sha256, row_cert, c_r, sizeof(*c_r),
	    "certificate with fingerprint", err);
}

static int
sq_cert_list(struct store_tx *tx, const struct store_page *page,
    const struct store_cert_filter *filter, struct store_cert **certs_r, size_t *n_r,
    char **next_r, struct smime_error *err)
{
	static const struct store_cert_filter none;
	const struct store_cert_filter *f = filter != NULL ? filter : &none;
	struct store_cert *v = NULL;
	void *raw = NULL;
	sqlite3_stmt *s = NULL;
	char *after = NULL;
	int64_t after_created = 0;
	size_t n = 0;
	bool more;
	int flags = 0, rc, ret;

	if ((ret = need_tx(tx, false, err)) != 0 ||
	    (ret = page_check(page, certs_r, n_r, next_r, err)) != 0)
		return ret;
	*certs_r = NULL;
	*n_r = 0;
	*next_r = NULL;
	if (f->status != 0 && (f->status < STATUS_ACTIVE || f->status > STATUS_REVOKED))
		return usage(err, "a certificate filter's status is out of range");
	if (page->after != NULL &&
	    (ret = cursor_created(page->after, 'c', &after_created, &after, err)) != 0)
		return ret;
	flags |= f->user_id != NULL ? CL_USER : 0;
	flags |= f->device_id != NULL ? CL_DEVICE : 0;
	flags |= f->ca_id != NULL ? CL_CA : 0;
	flags |= f->status != 0 ? CL_STATUS : 0;
	flags |= after != NULL ? CL_AFTER : 0;
	if ((ret = stmt(tx->c, S_CERT_LIST + flags, &s, err)) != 0)
		goto out;
	rc = SQLITE_OK;
	if (f->user_id != NULL)
		rc = bind_str(s, 1, f->user_id);
	if (rc == SQLITE_OK && f->device_id != NULL)
		rc = bind_str(s, 2, f->device_id);
	if (rc == SQLITE_OK && f->ca_id != NULL)
		rc = bind_str(s, 3, f->ca_id);
	if (rc == SQLITE_OK && f->status != 0)
		rc = sqlite3_bind_int(s, 4, f->status);
	if (rc == SQLITE_OK && f->status != 0)
		rc = sqlite3_bind_int64(s, 8, f->now);
	if (rc == SQLITE_OK && after != NULL)
		rc = sqlite3_bind_int64(s, 5, after_created);
	if (rc == SQLITE_OK && after != NULL)
		rc = bind_str(s, 6, after);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 7, (sqlite3_int64)page->limit + 1);
	if (rc != SQLITE_OK) {
		ret = dberr(tx->c->db, err, "listing certificates");
		goto out;
	}
	ret = fetch(tx->c->db, s, page->limit, sizeof(*v), row_cert, &raw, &n, &more, err);
	v = raw;
	if (ret != 0)
		goto out;
	if (more && n > 0) {
		if ((*next_r = cursor_make_created('c', v[n - 1].created, v[n - 1].serial)) == NULL) {
			ret = nomem(err);
			goto out;
		}
	}
	*certs_r = v;
	*n_r = n;
	v = NULL;
out:
	done(s);
	store_certs_free(v, n);
	free(after);
	return ret;
}

static int
sq_cert_set_status(struct store_tx *tx, const char *serial, enum cert_status status,
    int64_t revoked_at, int reason, struct smime_error *err)
{
	sqlite3_stmt *s;
	bool revoked = status == STATUS_REVOKED;
	int rc, ret;

	char sha256[65];

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (serial == NULL)
		return usage(err, "cert_set_status needs a serial");
	if (status < STATUS_ACTIVE || status > STATUS_REVOKED)
		return usage(err, "a certificate status is out of range");
	if ((ret = cert_resolve(tx, serial, sha256, err)) != 0)
		return ret;
	if ((ret = stmt(tx->c, S_CERT_STATUS, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, sha256);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 2, (int)status);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, revoked ? revoked_at : 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 4, revoked ? reason : -1);
	return change_one(tx->c, s, rc, "certificate with serial", serial, err);
}

static int
sq_cert_withdraw(struct store_tx *tx, const char *id, int64_t when, struct smime_error *err)
{
	sqlite3_stmt *s;
	char sha256[65];
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (id == NULL || when <= 0)
		return usage(err, "cert_withdraw needs a serial or fingerprint and a time");
	if ((ret = cert_resolve(tx, id, sha256, err)) != 0)
		return ret;
	if ((ret = stmt(tx->c, S_CERT_WITHDRAW, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, sha256);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, when);
	return change_one(tx->c, s, rc, "certificate", id, err);
}

static int
sq_cert_supersede(struct store_tx *tx, const char *user_id, const char *device_id,
    enum cert_purpose purpose, const char *except_serial, size_t *n_r,
    struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if (n_r != NULL)
		*n_r = 0;
	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (user_id == NULL)
		return usage(err, "cert_supersede needs a user");
	if (purpose < PURPOSE_SIGNING || purpose > PURPOSE_DUAL)
		return usage(err, "a certificate purpose is out of range");
	if ((ret = stmt(tx->c, S_CERT_SUPERSEDE, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, user_id);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 2, device_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 3, (int)purpose);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 4, except_serial);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "superseding certificates");
	else if (n_r != NULL)
		*n_r = (size_t)sqlite3_changes(tx->c->db);
	done(s);
	return ret;
}

static int
sq_cert_revoked(struct store_tx *tx, const char *ca_id, struct store_revoked **r_r,
    size_t *n_r, struct smime_error *err)
{
	struct store_revoked *v = NULL;
	void *raw = NULL;
	sqlite3_stmt *s;
	size_t n = 0;
	int rc, ret;

	if ((ret = need_tx(tx, false, err)) != 0)
		return ret;
	if (ca_id == NULL || r_r == NULL || n_r == NULL)
		return usage(err, "cert_revoked needs a CA and places for its results");
	*r_r = NULL;
	*n_r = 0;
	if ((ret = stmt(tx->c, S_CERT_REVOKED, &s, err)) != 0)
		return ret;
	if ((rc = bind_str(s, 1, ca_id)) != SQLITE_OK)
		ret = dberr(tx->c->db, err, "listing revoked certificates");
	else
		ret = fetch(tx->c->db, s, SIZE_MAX, sizeof(*v), row_revoked, &raw, &n, NULL,
		    err);
	v = raw;
	done(s);
	if (ret != 0) {
		free(v);
		return ret;
	}
	*r_r = v;
	*n_r = n;
	return 0;
}

/* ---------------- tokens ---------------- */

static int
sq_token_insert(struct store_tx *tx, const struct store_token *t, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (t == NULL)
		return usage(err, "no token");
	if (t->role == 0 || store_role_parse(store_role_name(t->role)) != t->role)
		return usage(err, "a token needs one of the roles");
	if ((ret = stmt(tx->c, S_TOKEN_INSERT, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, t->id, sizeof(t->id));
	if (rc == SQLITE_OK)
		rc = bind_str(s, 2, t->name);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 3, t->hash, sizeof(t->hash));
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, t->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 5, t->last_used);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 6, t->revoked_at);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 7, store_role_name(t->role));
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 8, t->expires);
	if (rc == SQLITE_OK)
		rc = bind_field(s, 9, t->created_by, sizeof(t->created_by));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		ret = smime_error_set(err, SMIME_E_EXISTS, "a token with id '%.36s' exists", t->id);
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a token");
	done(s);
	return ret;
}

static int
sq_token_get(struct store_tx *tx, const char *id, struct store_token *t_r,
    struct smime_error *err)
{
	return get_record(tx, "token_get", S_TOKEN_GET, id, row_token, t_r, sizeof(*t_r), "token",
	    err);
}

static int
sq_token_list(struct store_tx *tx, struct store_token **tokens_r, size_t *n_r,
    struct smime_error *err)
{
	void *v = NULL;
	int ret = list_all(tx, "token_list", S_TOKEN_LIST, sizeof(**tokens_r), row_token,
	    clear_token, &v, n_r, err);

	if (tokens_r != NULL)
		*tokens_r = v;
	return ret;
}

/* Revoking a revoked token keeps the first time and succeeds. */
static int
sq_token_revoke(struct store_tx *tx, const char *id, int64_t when, struct smime_error *err)
{
	sqlite3_stmt *s;
	bool found;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (id == NULL)
		return usage(err, "token_revoke needs an id");
	if ((ret = stmt(tx->c, S_TOKEN_REVOKE, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, when);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "revoking a token");
	else if (sqlite3_changes(tx->c->db) == 0) {
		done(s);
		if ((ret = exists(tx->c, S_TOKEN_EXISTS, id, &found, err)) == 0 && !found)
			ret = smime_error_set(err, SMIME_E_NOTFOUND, "no token '%.128s'", id);
		return ret;
	}
	done(s);
	return ret;
}

static int
sq_token_touch(struct store_tx *tx, const char *id, int64_t when, int64_t interval,
    bool *touched_r, struct smime_error *err)
{
	sqlite3_stmt *s;
	bool found;
	int rc, ret;

	if (touched_r != NULL)
		*touched_r = false;
	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (id == NULL || interval < 0)
		return usage(err, "token_touch needs an id and an interval of 0 or more");
	if ((ret = stmt(tx->c, S_TOKEN_TOUCH, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, when);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, interval);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE) {
		ret = dberr(tx->c->db, err, "writing");
		done(s);
		return ret;
	}
	bool changed = sqlite3_changes(tx->c->db) > 0;
	done(s);
	if (changed) {
		if (touched_r != NULL)
			*touched_r = true;
		return 0;
	}
	/* Touched within the interval, or not there at all. */
	if ((ret = exists(tx->c, S_TOKEN_EXISTS, id, &found, err)) == 0 && !found)
		ret = smime_error_set(err, SMIME_E_NOTFOUND, "no token '%.128s'", id);
	return ret;
}

/* ---------------- audit ---------------- */

static int
sq_audit_append(struct store_tx *tx, struct store_audit *a, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (a == NULL || a->actor == NULL || a->action == NULL)
		return usage(err, "an audit row needs an actor and an action");
	if ((ret = stmt(tx->c, S_AUDIT_APPEND, &s, err)) != 0)
		return ret;
	rc = sqlite3_bind_int64(s, 1, a->time);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 2, a->actor);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 3, a->action);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 4, a->object);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 5, a->detail != NULL ? a->detail : "{}");
	if (rc == SQLITE_OK)
		rc = bind_str(s, 6, a->user_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing an audit row");
	else
		a->seq = sqlite3_last_insert_rowid(tx->c->db);
	done(s);
	return ret;
}

static int
sq_audit_list(struct store_tx *tx, const struct store_page *page,
    const struct store_audit_filter *filter, struct store_audit **items_r, size_t *n_r,
    char **next_r, struct smime_error *err)
{
	static const struct store_audit_filter none = { 0 };
	const struct store_audit_filter *f = filter != NULL ? filter : &none;
	struct store_audit *v = NULL;
	void *raw = NULL;
	sqlite3_stmt *s = NULL;
	int64_t after = 0;
	char *upper = NULL;
	size_t n = 0, alen = f->action != NULL ? strlen(f->action) : 0;
	bool more, prefix = alen >= 2 && strcmp(f->action + alen - 2, ".*") == 0;
	int flags = 0, rc, ret;

	if ((ret = need_tx(tx, false, err)) != 0 ||
	    (ret = page_check(page, items_r, n_r, next_r, err)) != 0)
		return ret;
	*items_r = NULL;
	*n_r = 0;
	*next_r = NULL;
	if (page->after != NULL && (ret = cursor_seq(page->after, &after, err)) != 0)
		return ret;
	if (f->since < 0 || f->until < 0 || (f->action != NULL && alen == 0) ||
	    (f->actor != NULL && *f->actor == '\0') || (f->user_id != NULL && *f->user_id == '\0'))
		return usage(err, "an audit filter has an empty value or a negative time");
	flags |= f->actor != NULL ? AL_ACTOR : 0;
	flags |= f->action != NULL ? (prefix ? AL_PREFIX : AL_ACTION) : 0;
	flags |= f->user_id != NULL ? AL_USER : 0;
	flags |= f->since != 0 ? AL_SINCE : 0;
	flags |= f->until != 0 ? AL_UNTIL : 0;
	flags |= page->after != NULL ? AL_AFTER : 0;
	/* "cert.*": every action from "cert." up to, not including, "cert/"
	 * ('/' follows '.'), a range the index on action serves. */
	if (prefix && (upper = strndup(f->action, alen - 1)) == NULL)
		return nomem(err);
	if (upper != NULL)
		upper[alen - 2] = '/';
	if ((ret = stmt(tx->c, S_AUDIT_LIST + flags, &s, err)) != 0) {
		free(upper);
		return ret;
	}
	rc = SQLITE_OK;
	if (flags & AL_ACTOR)
		rc = bind_str(s, 1, f->actor);
	if (rc == SQLITE_OK && (flags & AL_ACTION))
		rc = bind_str(s, 2, f->action);
	if (rc == SQLITE_OK && (flags & AL_PREFIX)) {
		rc = sqlite3_bind_text64(s, 3, f->action, alen - 1, SQLITE_STATIC, SQLITE_UTF8);
		if (rc == SQLITE_OK)
			rc = bind_str(s, 4, upper);
	}
	if (rc == SQLITE_OK && (flags & AL_USER))
		rc = bind_str(s, 5, f->user_id);
	if (rc == SQLITE_OK && (flags & AL_SINCE))
		rc = sqlite3_bind_int64(s, 6, f->since);
	if (rc == SQLITE_OK && (flags & AL_UNTIL))
		rc = sqlite3_bind_int64(s, 7, f->until);
	if (rc == SQLITE_OK && (flags & AL_AFTER))
		rc = sqlite3_bind_int64(s, 8, after);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 9, (sqlite3_int64)page->limit + 1);
	if (rc != SQLITE_OK) {
		ret = dberr(tx->c->db, err, "listing the audit log");
		goto out;
	}
	ret = fetch(tx->c->db, s, page->limit, sizeof(*v), row_audit, &raw, &n, &more, err);
	v = raw;
	if (ret != 0)
		goto out;
	if (more && n > 0 && asprintf(next_r, "a.%lld", (long long)v[n - 1].seq) < 0) {
		*next_r = NULL;
		ret = nomem(err);
		goto out;
	}
	*items_r = v;
	*n_r = n;
	v = NULL;
out:
	done(s);
	free(upper);
	store_audits_free(v, n);
	return ret;
}

/* ---- the key archive and the trust collection -------------------------- */

static int
sq_archive_put(struct store_tx *tx, const char *sha256, const unsigned char *sealed, size_t len,
    int64_t when, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (sha256 == NULL || sealed == NULL || len == 0)
		return usage(err, "archive_put needs a fingerprint and a sealed key");
	if ((ret = stmt(tx->c, S_ARCHIVE_PUT, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, sha256);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 2, sealed, len);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, when);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (is_constraint(rc))
		ret = smime_error_set(err, SMIME_E_EXISTS, "the key of %.64s is archived already",
		    sha256);
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "archiving a key");
	done(s);
	return ret;
}

static int
sq_archive_get(struct store_tx *tx, const char *sha256, unsigned char **sealed_r,
    size_t *len_r, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, ret;

	if ((ret = need_tx(tx, false, err)) != 0)
		return ret;
	if (sha256 == NULL || sealed_r == NULL || len_r == NULL)
		return usage(err, "archive_get needs a fingerprint");
	*sealed_r = NULL;
	*len_r = 0;
	if ((ret = stmt(tx->c, S_ARCHIVE_GET, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, sha256);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (col_blob(s, 0, sealed_r, len_r) != 0)
			ret = nomem(err);
	} else if (rc == SQLITE_DONE)
		ret = smime_error_set(err, SMIME_E_NOTFOUND, "no archived key for %.64s", sha256);
	else
		ret = dberr(tx->c->db, err, "reading an archived key");
	done(s);
	return ret;
}

static int
sq_archive_stat(struct store_tx *tx, size_t *n_r, char sha256_r[65], unsigned char **sealed_r,
    size_t *len_r, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, ret;

	if ((ret = need_tx(tx, false, err)) != 0)
		return ret;
	if (n_r == NULL || sha256_r == NULL || sealed_r == NULL || len_r == NULL)
		return usage(err, "archive_stat needs its outputs");
	*n_r = 0;
	sha256_r[0] = '\0';
	*sealed_r = NULL;
	*len_r = 0;
	if ((ret = stmt(tx->c, S_ARCHIVE_STAT, &s, err)) != 0)
		return ret;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*n_r = (size_t)sqlite3_column_int64(s, 0);
		if (col_field(s, 1, sha256_r, 65) != 0 || col_blob(s, 2, sealed_r, len_r) != 0)
			ret = nomem(err);
	} else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "reading the archive");
	done(s);
	return ret;
}

/* ---------------- recovery requests ---------------- */

static int
row_recovery(sqlite3_stmt *s, void *item)
{
	struct store_recovery *r = item;
	int e;

	if ((e = col_field(s, 0, r->id, sizeof(r->id))) != 0 ||
	    (e = col_field(s, 1, r->user_id, sizeof(r->user_id))) != 0 ||
	    (e = col_field(s, 2, r->cert, sizeof(r->cert))) != 0 ||
	    (e = col_str(s, 3, &r->reason)) != 0 ||
	    (e = col_str(s, 4, &r->requester)) != 0 ||
	    (e = col_str(s, 5, &r->approver)) != 0) {
		store_recovery_clear(r);
		return e;
	}
	r->status = (int)sqlite3_column_int64(s, 6);
	r->created = sqlite3_column_int64(s, 7);
	r->expires = sqlite3_column_int64(s, 8);
	r->decided = sqlite3_column_int64(s, 9);
	return 0;
}

static int
sq_recovery_insert(struct store_tx *tx, const struct store_recovery *r, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (r == NULL || r->reason == NULL || r->requester == NULL)
		return usage(err, "a recovery request needs a reason and a requester");
	if ((ret = stmt(tx->c, S_RECOVERY_INSERT, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, r->id, sizeof(r->id));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 2, r->user_id, sizeof(r->user_id));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 3, r->cert, sizeof(r->cert));
	if (rc == SQLITE_OK)
		rc = bind_str(s, 4, r->reason);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 5, r->requester);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 6, r->approver != NULL ? r->approver : "");
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 7, r->status);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 8, r->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 9, r->expires);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 10, r->decided);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (is_constraint(rc))
		ret = smime_error_set(err, SMIME_E_EXISTS, "a recovery request '%.36s' exists", r->id);
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a recovery request");
	done(s);
	return ret;
}

static int
sq_recovery_get(struct store_tx *tx, const char *id, struct store_recovery *r_r,
    struct smime_error *err)
{
	bool found;
	int ret;

	if ((ret = need_tx(tx, false, err)) != 0)
		return ret;
	if (id == NULL || r_r == NULL)
		return usage(err, "recovery_get needs an id");
	memset(r_r, 0, sizeof(*r_r));
	if ((ret = get_one(tx->c, S_RECOVERY_GET, id, row_recovery, r_r, &found, err)) != 0)
		return ret;
	if (!found) {
		/* A unique prefix of the id, as for the other records. */
		char whole[STORE_TID_SIZE];
		if ((ret = id_by_prefix(tx, S_RECOVERY_PREFIX, id, true, whole, sizeof(whole),
		    "recovery request", &found, err)) != 0)
			return ret;
		if (found && (ret = get_one(tx->c, S_RECOVERY_GET, whole, row_recovery, r_r,
		    &found, err)) != 0)
			return ret;
	}
	if (!found)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no recovery request '%.64s'", id);
	return 0;
}

static void clear_recovery(void *p) { store_recovery_clear(p); }
static const char *key_recovery(const void *p) { return ((const struct store_recovery *)p)->id; }

static int
sq_recovery_list(struct store_tx *tx, const struct store_page *page,
    struct store_recovery **v_r, size_t *n_r, char **next_r, struct smime_error *err)
{
	const struct page_list pl = { "listing recovery requests", S_RECOVERY_LIST, 'k', NULL, 0,
		NULL, sizeof(**v_r), row_recovery, clear_recovery, key_recovery };
	void *v = NULL;
	int ret = list_page(tx, page, &pl, &v, n_r, next_r, err);

	if (ret == 0)
		*v_r = v;
	return ret;
}

static int
sq_recovery_decide(struct store_tx *tx, const char *id, enum recovery_status from,
    enum recovery_status to, const char *actor, int64_t when, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (id == NULL || actor == NULL)
		return usage(err, "recovery_decide needs an id and an actor");
	if ((ret = stmt(tx->c, S_RECOVERY_DECIDE, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, from);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, to);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 4, actor);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 5, when);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a recovery request");
	else if (sqlite3_changes(tx->c->db) == 0)
		ret = smime_error_set(err, SMIME_E_EXISTS, "recovery request '%.64s' is not %s",
		    id, recovery_status_name(from));
	done(s);
	return ret;
}

/* Put t in the trust collection (id S_TRUST_PUT) or the distrust list. */
static int
trust_put_in(struct store_tx *tx, int id, const char *list, const struct store_trust *t,
    struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (t == NULL || t->der == NULL || t->der_len == 0 || t->subject == NULL)
		return usage(err, "trust_put and distrust_put need a certificate");
	if ((ret = stmt(tx->c, id, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, t->sha256, sizeof(t->sha256));
	if (rc == SQLITE_OK)
		rc = bind_str(s, 2, t->subject);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 3, t->der, t->der_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, t->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (is_constraint(rc))
		ret = smime_error_set(err, SMIME_E_EXISTS, "%.64s is in the %s already",
		    t->sha256, list);
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, id == S_TRUST_PUT ? "writing the trust collection" :
		    "writing the distrust list");
	done(s);
	return ret;
}

static int
sq_trust_put(struct store_tx *tx, const struct store_trust *t, struct smime_error *err)
{
	return trust_put_in(tx, S_TRUST_PUT, "trust collection", t, err);
}

static int
sq_trust_list(struct store_tx *tx, struct store_trust **v_r, size_t *n_r,
    struct smime_error *err)
{
	void *v = NULL;
	int ret = list_all(tx, "trust_list", S_TRUST_LIST, sizeof(**v_r), row_trust, clear_trust,
	    &v, n_r, err);

	if (v_r != NULL)
		*v_r = v;
	return ret;
}

static int
sq_trust_delete(struct store_tx *tx, const char *sha256, struct smime_error *err)
{
	return delete_by(tx, S_TRUST_DELETE, sha256, "trusted certificate", err);
}

static int
sq_distrust_put(struct store_tx *tx, const struct store_trust *t, struct smime_error *err)
{
	return trust_put_in(tx, S_DISTRUST_PUT, "distrust list", t, err);
}

static int
sq_distrust_list(struct store_tx *tx, struct store_trust **v_r, size_t *n_r,
    struct smime_error *err)
{
	void *v = NULL;
	int ret = list_all(tx, "distrust_list", S_DISTRUST_LIST, sizeof(**v_r), row_trust,
	    clear_trust, &v, n_r, err);

	if (v_r != NULL)
		*v_r = v;
	return ret;
}

static int
sq_distrust_delete(struct store_tx *tx, const char *sha256, struct smime_error *err)
{
	return delete_by(tx, S_DISTRUST_DELETE, sha256, "distrusted certificate", err);
}

/* ---- the publication queue ---------------------------------------------- */

static void clear_publish(void *p) { store_publish_clear(p); }

/* Run statement id with ?1.. bound to the ns texts of sv, then the ni
 * integers of iv, to its end; *changes_r: the rows it changed. */
static int
run_write(struct store_tx *tx, int id, const char *const *sv, size_t ns, const int64_t *iv,
    size_t ni, size_t *changes_r, const char *what, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if ((ret = stmt(tx->c, id, &s, err)) != 0)
		return ret;
	for (size_t i = 0; i < ns && rc == SQLITE_OK; i++)
		rc = bind_str(s, (int)i + 1, sv[i]);
	for (size_t i = 0; i < ni && rc == SQLITE_OK; i++)
		rc = sqlite3_bind_int64(s, (int)(ns + i) + 1, iv[i]);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, what);
	else if (changes_r != NULL)
		*changes_r = (size_t)sqlite3_changes(tx->c->db);
	done(s);
	return ret;
}

/* Statement id with ?1 = a and ?2 = b read into *v_r, *n_r. */
static int
read_publish(struct store_tx *tx, int id, int64_t a, int64_t b, int nparams,
    struct store_publish **v_r, size_t *n_r, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	void *v = NULL;
	int rc, ret;

	if ((ret = need_tx(tx, false, err)) != 0)
		return ret;
	if (v_r == NULL || n_r == NULL)
		return usage(err, "the publication queue: no places for the results");
	*v_r = NULL;
	*n_r = 0;
	if ((ret = stmt(tx->c, id, &s, err)) != 0)
		return ret;
	rc = sqlite3_bind_int64(s, 1, a);
	if (rc == SQLITE_OK && nparams > 1)
		rc = sqlite3_bind_int64(s, 2, b);
	if (rc != SQLITE_OK) {
		done(s);
		return dberr(tx->c->db, err, "reading the publication queue");
	}
	ret = fetch(tx->c->db, s, SIZE_MAX, sizeof(**v_r), row_publish, &v, n_r, NULL, err);
	done(s);
	if (ret != 0) {
		for (size_t i = 0; i < *n_r; i++)
			clear_publish((struct store_publish *)v + i);
		free(v);
		*n_r = 0;
		return ret;
	}
	*v_r = v;
	return 0;
}

static int
sq_publish_due(struct store_tx *tx, int64_t now, size_t limit, struct store_publish **v_r,
    size_t *n_r, struct smime_error *err)
{
	if (limit == 0 || limit > PAGE_LIMIT_MAX)
		return usage(err, "publish_due: a limit of 1 to 1000");
	return read_publish(tx, S_PUBLISH_DUE, now, (int64_t)limit, 2, v_r, n_r, err);
}

static int
sq_publish_done(struct store_tx *tx, const char *user_id, int64_t seq, struct smime_error *err)
{
	const char *sv[] = { user_id };

	if (user_id == NULL)
		return usage(err, "publish_done needs a user");
	return run_write(tx, S_PUBLISH_DONE, sv, 1, &seq, 1, NULL, "taking a user off the "
	    "publication queue", err);
}

static int
sq_publish_retry(struct store_tx *tx, const char *user_id, int64_t seq, int64_t next_at,
    const char *error, struct smime_error *err)
{
	const char *sv[] = { user_id, error };
	int64_t iv[] = { seq, next_at };

	if (user_id == NULL || error == NULL)
		return usage(err, "publish_retry needs a user and the failure");
	return run_write(tx, S_PUBLISH_RETRY, sv, 2, iv, 2, NULL, "noting a failed publication",
	    err);
}

static int
sq_publish_all(struct store_tx *tx, int64_t now, size_t *n_r, struct smime_error *err)
{
	return run_write(tx, S_PUBLISH_ALL, NULL, 0, &now, 1, n_r, "queueing every user for "
	    "publication", err);
}

static int
sq_publish_pending(struct store_tx *tx, size_t limit, struct store_publish **v_r, size_t *n_r,
    size_t *total_r, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	int64_t total = 0;
	int ret;

	if (limit == 0 || limit > PAGE_LIMIT_MAX)
		return usage(err, "publish_pending: a limit of 1 to 1000");
	if ((ret = read_publish(tx, S_PUBLISH_PENDING, (int64_t)limit, 0, 1, v_r, n_r, err)) != 0)
		return ret;
	if ((ret = stmt(tx->c, S_PUBLISH_COUNT, &s, err)) == 0) {
		if (sqlite3_step(s) == SQLITE_ROW)
			total = sqlite3_column_int64(s, 0);
		else
			ret = dberr(tx->c->db, err, "counting the publication queue");
		done(s);
	}
	if (ret != 0) {
		store_publishes_free(*v_r, *n_r);
		*v_r = NULL;
		*n_r = 0;
		return ret;
	}
	if (total_r != NULL)
		*total_r = (size_t)total;
	return 0;
}

/* ---------------- SCEP ---------------- */

static int
row_scep_profile(sqlite3_stmt *s, void *item)
{
	struct store_scep_profile *p = item;
	int r;

	if ((r = col_field(s, 0, p->name, sizeof(p->name))) != 0 ||
	    (r = col_field(s, 1, p->ca_id, sizeof(p->ca_id))) != 0 ||
	    (r = col_str(s, 3, &p->ec_curves)) != 0 ||
	    (r = col_str(s, 4, &p->subject)) != 0) {
		store_scep_profile_clear(p);
		return r;
	}
	p->rsa_min_bits = sqlite3_column_int(s, 2);
	p->san_all = sqlite3_column_int(s, 5) != 0;
	p->non_repudiation = sqlite3_column_int(s, 6) != 0;
	p->validity_days = sqlite3_column_int(s, 7);
	p->renewal_days = sqlite3_column_int(s, 8);
	p->approval = sqlite3_column_int(s, 9) != 0;
	p->challenge_minutes = sqlite3_column_int(s, 10);
	p->allow_sha1 = sqlite3_column_int(s, 11) != 0;
	p->created = sqlite3_column_int64(s, 12);
	p->updated = sqlite3_column_int64(s, 13);
	return 0;
}

static int
row_challenge(sqlite3_stmt *s, void *item)
{
	struct store_scep_challenge *c = item;
	const void *h;
	int r;

	if ((r = col_field(s, 0, c->id, sizeof(c->id))) != 0 ||
	    (r = col_field(s, 2, c->user_id, sizeof(c->user_id))) != 0 ||
	    (r = col_field(s, 3, c->device_id, sizeof(c->device_id))) != 0 ||
	    (r = col_field(s, 4, c->profile, sizeof(c->profile))) != 0 ||
	    (r = col_field(s, 8, c->transaction_id, sizeof(c->transaction_id))) != 0)
		goto fail;
	h = sqlite3_column_blob(s, 1);
	if (h == NULL || sqlite3_column_bytes(s, 1) != (int)sizeof(c->hash)) {
		r = ROW_BAD;
		goto fail;
	}
	memcpy(c->hash, h, sizeof(c->hash));
	c->created = sqlite3_column_int64(s, 5);
	c->expires = sqlite3_column_int64(s, 6);
	c->used = sqlite3_column_int64(s, 7);
	return 0;
fail:
	store_scep_challenge_clear(c);
	return r;
}

static int
row_scep_tx(sqlite3_stmt *s, void *item)
{
	struct store_scep_tx *t = item;
	int r;

	if ((r = col_field(s, 0, t->id, sizeof(t->id))) != 0 ||
	    (r = col_field(s, 1, t->ca_id, sizeof(t->ca_id))) != 0 ||
	    (r = col_field(s, 2, t->profile, sizeof(t->profile))) != 0 ||
	    (r = col_field(s, 3, t->user_id, sizeof(t->user_id))) != 0 ||
	    (r = col_field(s, 4, t->device_id, sizeof(t->device_id))) != 0 ||
	    (r = col_field(s, 7, t->renews, sizeof(t->renews))) != 0 ||
	    (r = col_field(s, 8, t->cert, sizeof(t->cert))) != 0 ||
	    (r = col_blob(s, 9, &t->csr, &t->csr_len)) != 0 ||
	    (r = col_str(s, 10, &t->error)) != 0) {
		store_scep_tx_clear(t);
		return r;
	}
	t->status = sqlite3_column_int(s, 5);
	t->renewal = sqlite3_column_int(s, 6) != 0;
	t->created = sqlite3_column_int64(s, 11);
	t->updated = sqlite3_column_int64(s, 12);
	return 0;
}

static int
row_scep_ra(sqlite3_stmt *s, void *item)
{
	struct store_scep_ra *ra = item;
	int r;

	if ((r = col_field(s, 0, ra->ca_id, sizeof(ra->ca_id))) != 0 ||
	    (r = col_blob(s, 1, &ra->cert_der, &ra->cert_len)) != 0 ||
	    (r = col_blob(s, 2, &ra->key_wrapped, &ra->key_wrapped_len)) != 0) {
		store_scep_ra_clear(ra);
		return r;
	}
	ra->created = sqlite3_column_int64(s, 3);
	return 0;
}

static void clear_scep_profile(void *p) { store_scep_profile_clear(p); }
static void clear_scep_ra(void *p) { store_scep_ra_clear(p); }

static int
sq_scep_profile_put(struct store_tx *tx, const struct store_scep_profile *p,
    struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (p == NULL || p->name[0] == '\0' || p->ca_id[0] == '\0')
		return usage(err, "a SCEP profile needs a name and a CA");
	if ((ret = stmt(tx->c, S_SPROF_PUT, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, p->name, sizeof(p->name));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 2, p->ca_id, sizeof(p->ca_id));
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 3, p->rsa_min_bits);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 4, p->ec_curves);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 5, p->subject);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 6, p->san_all ? 1 : 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 7, p->non_repudiation ? 1 : 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 8, p->validity_days);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 9, p->renewal_days);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 10, p->approval ? 1 : 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 11, p->challenge_minutes);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 12, p->allow_sha1 ? 1 : 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 13, p->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 14, p->updated);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		ret = smime_error_set(err, SMIME_E_NOTFOUND, "no CA '%.64s'", p->ca_id);
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a SCEP profile");
	done(s);
	return ret;
}

static int
sq_scep_profile_get(struct store_tx *tx, const char *name, struct store_scep_profile *p_r,
    struct smime_error *err)
{
	return get_record(tx, "scep_profile_get", S_SPROF_GET, name, row_scep_profile, p_r,
	    sizeof(*p_r), "SCEP profile", err);
}

static int
sq_scep_profile_list(struct store_tx *tx, struct store_scep_profile **v_r, size_t *n_r,
    struct smime_error *err)
{
	void *v = NULL;
	int ret = list_all(tx, "scep_profile_list", S_SPROF_LIST, sizeof(**v_r),
	    row_scep_profile, clear_scep_profile, &v, n_r, err);

	if (v_r != NULL)
		*v_r = v;
	return ret;
}

static int
sq_scep_profile_delete(struct store_tx *tx, const char *name, struct smime_error *err)
{
	return delete_by(tx, S_SPROF_DELETE, name, "SCEP profile", err);
}

static int
sq_challenge_insert(struct store_tx *tx, const struct store_scep_challenge *c,
    struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (c == NULL || c->id[0] == '\0')
		return usage(err, "no challenge");
	if ((ret = stmt(tx->c, S_CHAL_PRUNE, &s, err)) != 0)
		return ret;
	rc = sqlite3_bind_int64(s, 1, c->created - 86400);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	done(s);
	if (rc != SQLITE_DONE)
		return dberr(tx->c->db, err, "forgetting expired challenges");
	if ((ret = stmt(tx->c, S_CHAL_INSERT, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, c->id, sizeof(c->id));
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 2, c->hash, sizeof(c->hash));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 3, c->user_id, sizeof(c->user_id));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 4, c->device_id, sizeof(c->device_id));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 5, c->profile, sizeof(c->profile));
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 6, c->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 7, c->expires);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 8, c->used);
	if (rc == SQLITE_OK)
		rc = bind_field(s, 9, c->transaction_id, sizeof(c->transaction_id));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		ret = smime_error_set(err, SMIME_E_EXISTS, "a challenge '%.36s' exists", c->id);
	else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		ret = smime_error_set(err, SMIME_E_NOTFOUND, "no such user, device or SCEP "
		    "profile");
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a challenge");
	done(s);
	return ret;
}

static int
sq_challenge_get(struct store_tx *tx, const char *id, struct store_scep_challenge *c_r,
    struct smime_error *err)
{
	return get_record(tx, "challenge_get", S_CHAL_GET, id, row_challenge, c_r, sizeof(*c_r),
	    "challenge", err);
}

static int
sq_challenge_use(struct store_tx *tx, const char *id, int64_t when, const char *transaction_id,
    struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (id == NULL || transaction_id == NULL)
		return usage(err, "challenge_use needs an id and a transaction");
	if ((ret = stmt(tx->c, S_CHAL_USE, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, when);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 3, transaction_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "using a challenge");
	else if (sqlite3_changes(tx->c->db) == 0)
		ret = smime_error_set(err, SMIME_E_EXISTS, "the challenge '%.36s' is used or gone",
		    id);
	done(s);
	return ret;
}

static int
sq_scep_tx_insert(struct store_tx *tx, const struct store_scep_tx *t, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (t == NULL || t->id[0] == '\0' || t->csr == NULL || t->csr_len == 0)
		return usage(err, "a SCEP transaction needs an id and a request");
	if (t->status < SCEP_TX_PENDING || t->status > SCEP_TX_REJECTED)
		return usage(err, "a SCEP transaction's status is out of range");
	if ((ret = stmt(tx->c, S_STX_INSERT, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, t->id, sizeof(t->id));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 2, t->ca_id, sizeof(t->ca_id));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 3, t->profile, sizeof(t->profile));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 4, t->user_id, sizeof(t->user_id));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 5, t->device_id, sizeof(t->device_id));
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 6, t->status);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 7, t->renewal ? 1 : 0);
	if (rc == SQLITE_OK)
		rc = bind_field(s, 8, t->renews, sizeof(t->renews));
	if (rc == SQLITE_OK)
		rc = bind_field(s, 9, t->cert, sizeof(t->cert));
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 10, t->csr, t->csr_len);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 11, t->error);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 12, t->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 13, t->updated);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		ret = smime_error_set(err, SMIME_E_EXISTS, "the SCEP transaction '%.128s' exists",
		    t->id);
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing a SCEP transaction");
	done(s);
	return ret;
}

static int
sq_scep_tx_get(struct store_tx *tx, const char *id, struct store_scep_tx *t_r,
    struct smime_error *err)
{
	return get_record_or_prefix(tx, "scep_tx_get", S_STX_GET, S_STX_PREFIX, false, id,
	    row_scep_tx, t_r, sizeof(*t_r), "SCEP transaction", err);
}

static int
sq_scep_tx_decide(struct store_tx *tx, const char *id, enum scep_tx_status status,
    const char *cert, const char *error, int64_t when, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (id == NULL || (status != SCEP_TX_ISSUED && status != SCEP_TX_REJECTED))
		return usage(err, "scep_tx_decide: an id, and issued or rejected");
	if ((ret = stmt(tx->c, S_STX_DECIDE, &s, err)) != 0)
		return ret;
	rc = bind_str(s, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 2, (int)status);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 3, cert);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 4, error);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 5, when);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "deciding a SCEP transaction");
	else if (sqlite3_changes(tx->c->db) == 0) {
		bool found = false;

		done(s);
		if ((ret = stmt(tx->c, S_STX_STATUS, &s, err)) != 0)
			return ret;
		if (bind_str(s, 1, id) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
			found = true;
		ret = found ? smime_error_set(err, SMIME_E_EXISTS, "the SCEP transaction "
		    "'%.128s' is not pending", id) : smime_error_set(err, SMIME_E_NOTFOUND,
		    "no SCEP transaction '%.128s'", id);
	}
	done(s);
	return ret;
}

static int
sq_scep_tx_list(struct store_tx *tx, const struct store_page *page, int status,
    struct store_scep_tx **v_r, size_t *n_r, char **next_r, struct smime_error *err)
{
	sqlite3_stmt *s = NULL;
	struct store_scep_tx *v = NULL;
	void *raw = NULL;
	char *after = NULL;
	int64_t after_created = INT64_MIN;
	size_t n = 0;
	bool more;
	int rc, ret;

	if ((ret = need_tx(tx, false, err)) != 0 ||
	    (ret = page_check(page, v_r, n_r, next_r, err)) != 0)
		return ret;
	*v_r = NULL;
	*n_r = 0;
	*next_r = NULL;
	if (page->after != NULL &&
	    (ret = cursor_created(page->after, 's', &after_created, &after, err)) != 0)
		return ret;
	if ((ret = stmt(tx->c, status != 0 ? S_STX_LIST : S_STX_LIST_ALL, &s, err)) != 0)
		goto out;
	rc = status != 0 ? sqlite3_bind_int(s, 1, status) : SQLITE_OK;
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, after_created);
	if (rc == SQLITE_OK)
		rc = bind_str(s, 3, after != NULL ? after : "");
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, (sqlite3_int64)page->limit + 1);
	if (rc != SQLITE_OK) {
		ret = dberr(tx->c->db, err, "listing SCEP transactions");
		goto out;
	}
	ret = fetch(tx->c->db, s, page->limit, sizeof(*v), row_scep_tx, &raw, &n, &more, err);
	v = raw;
	if (ret != 0)
		goto out;
	if (more && n > 0) {
		if ((*next_r = cursor_make_created('s', v[n - 1].created, v[n - 1].id)) == NULL) {
			ret = nomem(err);
			goto out;
		}
	}
	*v_r = v;
	*n_r = n;
	v = NULL;
out:
	done(s);
	store_scep_txs_free(v, n);
	free(after);
	return ret;
}

static int
sq_scep_ra_put(struct store_tx *tx, const struct store_scep_ra *ra, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (ra == NULL || ra->cert_der == NULL || ra->key_wrapped == NULL)
		return usage(err, "an RA needs its certificate and key");
	if ((ret = stmt(tx->c, S_RA_PUT, &s, err)) != 0)
		return ret;
	rc = bind_field(s, 1, ra->ca_id, sizeof(ra->ca_id));
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 2, ra->cert_der, ra->cert_len);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 3, ra->key_wrapped, ra->key_wrapped_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, ra->created);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		ret = smime_error_set(err, SMIME_E_EXISTS, "CA '%.64s' has an RA", ra->ca_id);
	else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		ret = smime_error_set(err, SMIME_E_NOTFOUND, "no CA '%.64s'", ra->ca_id);
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "writing an RA");
	done(s);
	return ret;
}

static int
sq_scep_ra_get(struct store_tx *tx, const char *ca_id, struct store_scep_ra *ra_r,
    struct smime_error *err)
{
	return get_record(tx, "scep_ra_get", S_RA_GET, ca_id, row_scep_ra, ra_r, sizeof(*ra_r),
	    "RA of CA", err);
}

static int
sq_scep_ra_list(struct store_tx *tx, struct store_scep_ra **v_r, size_t *n_r,
    struct smime_error *err)
{
	void *v = NULL;
	int ret = list_all(tx, "scep_ra_list", S_RA_LIST, sizeof(**v_r), row_scep_ra,
	    clear_scep_ra, &v, n_r, err);

	if (v_r != NULL)
		*v_r = v;
	return ret;
}

static int
sq_scep_nonce_seen(struct store_tx *tx, const unsigned char *nonce, size_t len, int64_t when,
    int64_t forget_before, struct smime_error *err)
{
	sqlite3_stmt *s;
	int rc, ret;

	if ((ret = need_tx(tx, true, err)) != 0)
		return ret;
	if (nonce == NULL || len == 0)
		return usage(err, "no nonce");
	if ((ret = stmt(tx->c, S_NONCE_PRUNE, &s, err)) != 0)
		return ret;
	rc = sqlite3_bind_int64(s, 1, forget_before);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	done(s);
	if (rc != SQLITE_DONE)
		return dberr(tx->c->db, err, "forgetting old nonces");
	if ((ret = stmt(tx->c, S_NONCE_PUT, &s, err)) != 0)
		return ret;
	rc = bind_blob(s, 1, nonce, len);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, when);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (is_constraint(rc))
		ret = smime_error_set(err, SMIME_E_EXISTS, "this senderNonce was seen before");
	else if (rc != SQLITE_DONE)
		ret = dberr(tx->c->db, err, "recording a nonce");
	done(s);
	return ret;
}

const struct store_backend store_sqlite = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.savepoint = sq_savepoint,
	.release = sq_release,
	.rollback_to = sq_rollback_to,
	.backup = sq_backup,
	.restore = sq_restore,
	.ping = sq_ping,
	.meta_get = sq_meta_get,
	.meta_set = sq_meta_set,
	.user_insert = sq_user_insert,
	.user_get = sq_user_get,
	.user_list = sq_user_list,
	.user_update = sq_user_update,
	.user_delete = sq_user_delete,
	.user_find = sq_user_find,
	.user_list_deleted = sq_user_list_deleted,
	.user_release_addresses = sq_user_release_addresses,
	.user_purge = sq_user_purge,
	.archive_stat = sq_archive_stat,
	.recovery_insert = sq_recovery_insert,
	.recovery_get = sq_recovery_get,
	.recovery_list = sq_recovery_list,
	.recovery_decide = sq_recovery_decide,
	.group_insert = sq_group_insert,
	.group_get = sq_group_get,
	.group_list = sq_group_list,
	.group_update = sq_group_update,
	.group_delete = sq_group_delete,
	.group_add_member = sq_group_add_member,
	.group_remove_member = sq_group_remove_member,
	.device_insert = sq_device_insert,
	.device_get = sq_device_get,
	.device_list = sq_device_list,
	.device_update = sq_device_update,
	.device_delete = sq_device_delete,
	.ca_insert = sq_ca_insert,
	.ca_get = sq_ca_get,
	.ca_list = sq_ca_list,
	.ca_set_crl = sq_ca_set_crl,
	.profile_put = sq_profile_put,
	.profile_get = sq_profile_get,
	.profile_list = sq_profile_list,
	.profile_delete = sq_profile_delete,
	.cert_insert = sq_cert_insert,
	.cert_get = sq_cert_get,
	.cert_list = sq_cert_list,
	.cert_set_status = sq_cert_set_status,
	.cert_withdraw = sq_cert_withdraw,
	.cert_supersede = sq_cert_supersede,
	.cert_revoked = sq_cert_revoked,
	.token_insert = sq_token_insert,
	.token_get = sq_token_get,
	.token_list = sq_token_list,
	.token_revoke = sq_token_revoke,
	.token_touch = sq_token_touch,
	.audit_append = sq_audit_append,
	.audit_list = sq_audit_list,
	.archive_put = sq_archive_put,
	.archive_get = sq_archive_get,
	.trust_put = sq_trust_put,
	.trust_list = sq_trust_list,
	.trust_delete = sq_trust_delete,
	.distrust_put = sq_distrust_put,
	.distrust_list = sq_distrust_list,
	.distrust_delete = sq_distrust_delete,
	.publish_due = sq_publish_due,
	.publish_done = sq_publish_done,
	.publish_retry = sq_publish_retry,
	.publish_all = sq_publish_all,
	.publish_pending = sq_publish_pending,
	.scep_profile_put = sq_scep_profile_put,
	.scep_profile_get = sq_scep_profile_get,
	.scep_profile_list = sq_scep_profile_list,
	.scep_profile_delete = sq_scep_profile_delete,
	.challenge_insert = sq_challenge_insert,
	.challenge_get = sq_challenge_get,
	.challenge_use = sq_challenge_use,
	.scep_tx_insert = sq_scep_tx_insert,
	.scep_tx_get = sq_scep_tx_get,
	.scep_tx_decide = sq_scep_tx_decide,
	.scep_tx_list = sq_scep_tx_list,
	.scep_ra_put = sq_scep_ra_put,
	.scep_ra_get = sq_scep_ra_get,
	.scep_ra_list = sq_scep_ra_list,
	.scep_nonce_seen = sq_scep_nonce_seen,
};

/*
 * smimed: the store, the service's whole state behind one interface.
 *
 * A backend is a table of functions (struct store_backend) with one
 * registry (store_backend_find).  SQLite (store_sqlite.c) is the first;
 * nothing outside a backend's file knows which database it talks to, so
 * that PostgreSQL can follow for installations that outgrow one machine.
 *
 * Every read and write happens inside a transaction.  A write transaction
 * is durable when commit returns 0.  Inside a write transaction, savepoint /
 * release / rollback_to nest one level so that the committer (commit.c)
 * can put many requests in one transaction and undo one of them alone.
 *
 * Every function returns 0 or a libsmime error code with err filled:
 * SMIME_E_NOTFOUND for a missing row, SMIME_E_EXISTS for a unique key that
 * is taken (an email address, a serial number, a name), SMIME_E_IO for the
 * database failing.  Records returned are owned by the caller, who frees
 * them with the matching store_*_clear (store.c); _clear on a zeroed
 * record is a no-op.
 *
 * Records named by an id (users, groups, devices, SCEP transactions,
 * certificate serials) are also found by a unique prefix of the id of at
 * least four characters (UUIDs in any case, with or without dashes), as
 * people copy the start of an id from a list; a prefix that starts several
 * is SMIME_E_EXISTS, naming some of them.
 *
 * Lists are keyset-paginated: page->after is NULL or the opaque cursor a
 * previous call returned in *next_r; at most page->limit items come back,
 * and *next_r is NULL when there are no more (else the caller frees it).
 */
#ifndef SMIMED_STORE_H
#define SMIMED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <smime/error.h>

#define STORE_ID_SIZE 37        /* an id as text: 36 characters and NUL */
#define STORE_NAME_SIZE 65      /* CA ids and profile names: at most 64 */
#define STORE_SERIAL_SIZE 65    /* serial numbers: upper-case hex, at most 64 digits */
#define STORE_TID_SIZE 129      /* a SCEP transactionID: at most 128 characters */
#define STORE_SCHEMA_VERSION 7

enum cert_purpose { PURPOSE_SIGNING = 1, PURPOSE_ENCRYPTION = 2, PURPOSE_DUAL = 3 };
enum cert_source { SOURCE_ISSUED = 1, SOURCE_IMPORTED = 2, SOURCE_SCEP = 3, SOURCE_DERIVED = 4 };
enum cert_status { STATUS_ACTIVE = 1, STATUS_SUPERSEDED = 2, STATUS_EXPIRED = 3, STATUS_REVOKED = 4 };

struct store_user {
	char id[STORE_ID_SIZE];
	char *name;              /* display name, "" when none */
	char **emails;           /* lower-case, the first is the primary address */
	size_t n_emails;
	char **groups;           /* names of the groups the user belongs to (filled on read) */
	size_t n_groups;
	int64_t created, updated; /* seconds since the epoch */
	int64_t deleted;         /* 0, or when the user was deleted (the archive keeps the keys) */
};

struct store_group {
	char id[STORE_ID_SIZE];
	char *name;              /* unique */
	char *description;       /* "" when none */
	size_t n_members;        /* filled on read */
	int64_t created;
};

struct store_device {
	char id[STORE_ID_SIZE];
	char user_id[STORE_ID_SIZE];
	char *name;
	char *platform;          /* ios, android, macos, windows, linux */
	int64_t created, updated;
};

struct store_ca {
	char id[STORE_NAME_SIZE];     /* a slug: [a-z0-9-], unique */
	char parent_id[STORE_NAME_SIZE]; /* "" for a root */
	bool issuing;                 /* issues end-entity certificates */
	char *key_alg;                /* "ec-p256", "rsa-3072", ... */
	unsigned char *cert_der;
	size_t cert_len;
	unsigned char *key_wrapped;   /* the private key wrapped by the signer; NULL when absent */
	size_t key_wrapped_len;
	int64_t crl_number;           /* the last CRL's number, 0 before the first */
	unsigned char *crl_der;       /* the current CRL, NULL before the first */
	size_t crl_len;
	int64_t crl_updated;
	int64_t created;
};

struct store_profile {
	char name[STORE_NAME_SIZE];   /* unique */
	enum cert_purpose purpose;
	char ca_id[STORE_NAME_SIZE];  /* the issuing CA */
	int validity_days;            /* 1..825 */
	char *br_profile;             /* "strict" or "multipurpose" */
	char *key_alg;                /* for keys the service generates */
	bool allow_generate;          /* the service may generate the key */
	int64_t created, updated;
};

struct store_cert {
	char serial[STORE_SERIAL_SIZE];  /* upper-case hex without separators */
	char ca_id[STORE_NAME_SIZE];     /* the issuer's CA id; "" when not ours */
	char user_id[STORE_ID_SIZE];     /* "" when none */
	char device_id[STORE_ID_SIZE];   /* "" when none */
	char profile[STORE_NAME_SIZE];   /* "" when none */
	enum cert_purpose purpose;
	enum cert_source source;
	enum cert_status status;
	char *subject;                   /* RFC 2253 */
	char *email;                     /* the primary rfc822Name */
	int64_t not_before, not_after;
	char sha256[65], sha1[41];       /* lower-case hex */
	unsigned char *der;
	size_t der_len;
	int64_t created;
	int64_t revoked_at;              /* 0 unless revoked */
	int reason;                      /* RFC 5280 CRLReason, -1 unless revoked */
	int64_t withdrawn;               /* when withdrawn from lookup and publication, 0 */
};

struct store_cert_filter {
	const char *user_id;             /* NULL: any */
	const char *device_id;           /* NULL: any */
	const char *ca_id;               /* NULL: any */
	int status;                      /* 0: any, else an enum cert_status */
	/* The moment expiry is judged at: with it, a certificate past its
	 * notAfter that is not revoked has status STATUS_EXPIRED whatever is
	 * stored; 0: the stored status. */
	int64_t now;
};

/* One entry of a CRL. */
struct store_revoked {
	char serial[STORE_SERIAL_SIZE];
	int64_t revoked_at;
	int reason;
};

/* What an admin token may do (server/http.c's route table says which
 * routes accept which).  One bit each, so that a route's set is a mask. */
enum store_role {
	ROLE_ADMIN = 1,          /* everything */
	ROLE_OPERATOR = 2,       /* users, groups, devices, certificates, revocation, SCEP */
	ROLE_RECOVERY = 4,       /* key recovery */
	ROLE_AUDITOR = 8,        /* reads, the audit log included */
};

struct store_token {
	char id[STORE_ID_SIZE];
	char *name;
	unsigned char hash[32];          /* SHA-256 of the secret */
	enum store_role role;            /* exactly one of them */
	int64_t created, last_used, revoked_at; /* 0 when never / not */
	int64_t expires;                 /* refused from this time on; 0: never */
	/* Who made it: the id of the token that did, "system" for the token
	 * made at the first start, "" when it is not known (a token made
	 * before this was kept and without its token.create audit row). */
	char created_by[STORE_ID_SIZE];
};

struct store_audit {
	int64_t seq;                     /* assigned by audit_append, increasing */
	int64_t time;
	char *actor;                     /* "token:ID", "system", ... */
	char *action;                    /* "cert.issue", "user.delete", ... */
	char *object;                    /* what it acted on, "" when nothing */
	char *detail;                    /* a JSON object as text, "{}" when nothing */
	char *user_id;                   /* the user the row concerns, "" (or NULL) when none */
};

/* Which audit rows audit_list gives: every condition that is set holds. */
struct store_audit_filter {
	const char *actor;               /* exactly this actor */
	const char *action;              /* this action; "cert.*": every action "cert.…" */
	const char *user_id;             /* rows that concern this user */
	int64_t since, until;            /* since <= time < until; 0: no bound */
};

/* A CA certificate of the trust collection (the service's own CAs are in
 * it too, from the cas table; these are the ones imported). */
struct store_trust {
	char sha256[65];                 /* lower-case hex of the DER's SHA-256 */
	char *subject;                   /* RFC 2253 */
	unsigned char *der;
	size_t der_len;
	int64_t created;
};

/*
 * A user waiting for publication to the directory (directory.h).  The
 * backend queues a user, in the same transaction, whenever one of the
 * user's certificates is added or changes status and whenever the user's
 * addresses change; seq grows with each of those.
 */
struct store_publish {
	char user_id[STORE_ID_SIZE];
	int64_t seq;
	int64_t attempts;                /* failures since the last change */
	int64_t next_at;                 /* not to be tried before */
	int64_t queued;                  /* the oldest change not yet published */
	char *error;                     /* the last failure, "" when none */
};

/*
 * A SCEP profile (scep.h): what a device enrolling with a challenge of
 * this profile gets, whatever its request asks.
 */
struct store_scep_profile {
	char name[STORE_NAME_SIZE];      /* unique */
	char ca_id[STORE_NAME_SIZE];     /* the issuing CA */
	int rsa_min_bits;                /* 0: RSA keys refused */
	char *ec_curves;                 /* "P-256,P-384,P-521" or a part; "": EC refused */
	char *subject;                   /* the subject template, "CN={email}" */
	bool san_all;                    /* every address of the user; else the primary */
	bool non_repudiation;            /* keyUsage nonRepudiation besides digitalSignature */
	int validity_days;               /* 1..825 */
	int renewal_days;                /* a RenewalReq is taken this close to notAfter */
	bool approval;                   /* requests wait (PENDING) for an admin */
	int challenge_minutes;           /* a challenge's lifetime */
	bool allow_sha1;                 /* requests signed with SHA-1 are taken */
	int64_t created, updated;
};

/* A SCEP challenge password: "ID-SECRET"; only the secret's hash is kept. */
struct store_scep_challenge {
	char id[STORE_ID_SIZE];
	unsigned char hash[32];          /* SHA-256 of the secret */
	char user_id[STORE_ID_SIZE];
	char device_id[STORE_ID_SIZE];
	char profile[STORE_NAME_SIZE];
	int64_t created, expires;
	int64_t used;                    /* 0 until a request used it */
	char transaction_id[STORE_TID_SIZE]; /* the request that used it, "" */
};

enum scep_tx_status { SCEP_TX_PENDING = 1, SCEP_TX_ISSUED = 2, SCEP_TX_REJECTED = 3 };

/* A SCEP transaction: one PKCSReq or RenewalReq and what became of it. */
struct store_scep_tx {
	char id[STORE_TID_SIZE];         /* the transactionID */
	char ca_id[STORE_NAME_SIZE];
	char profile[STORE_NAME_SIZE];
	char user_id[STORE_ID_SIZE];
	char device_id[STORE_ID_SIZE];
	int status;                      /* enum scep_tx_status */
	bool renewal;                    /* a RenewalReq */
	char renews[65];                 /* SHA-256 of the certificate renewed, "" */
	char cert[65];                   /* SHA-256 of the certificate issued, "" */
	unsigned char *csr;              /* the PKCS#10 request, DER */
	size_t csr_len;
	char *error;                     /* why it was rejected, "" */
	int64_t created, updated;
};

/* The RSA registration authority of an EC CA for SCEP envelopes. */
struct store_scep_ra {
	char ca_id[STORE_NAME_SIZE];
	unsigned char *cert_der;
	size_t cert_len;
	unsigned char *key_wrapped;      /* wrapped by the signer */
	size_t key_wrapped_len;
	int64_t created;
};

enum recovery_status { RECOVERY_PENDING = 1, RECOVERY_APPROVED = 2, RECOVERY_EXPORTED = 3 };

/*
 * A recovery request (recovery_approval = 2): one token asks for a user's
 * archived keys, a second, different one approves, and the requester
 * exports them once, all before expires.
 */
struct store_recovery {
	char id[STORE_ID_SIZE];
	char user_id[STORE_ID_SIZE];
	char cert[65];                   /* SHA-256 of the one certificate asked for; "": all */
	char *reason;
	char *requester;                 /* the actor who asked ("token:ID") */
	char *approver;                  /* the actor who approved; "" until then */
	int status;                      /* enum recovery_status */
	int64_t created, expires;
	int64_t decided;                 /* the last change of status; 0 before */
};

struct store_page {
	const char *after;               /* NULL, or a cursor from *next_r */
	size_t limit;                    /* 1..1000 */
};

struct store;
struct store_tx;

struct store_backend {
	const char *name;

	/* location: the backend's own (a folder for SQLite).  Creates the
	 * schema or migrates it to STORE_SCHEMA_VERSION. */
	int (*open)(const char *location, struct store **st_r, struct smime_error *err);
	void (*close)(struct store *st);

	int (*begin)(struct store *st, bool write, struct store_tx **tx_r, struct smime_error *err);
	/* Both end and free the transaction, whatever they return. */
	int (*commit)(struct store_tx *tx, struct smime_error *err);
	void (*rollback)(struct store_tx *tx);
	int (*savepoint)(struct store_tx *tx, struct smime_error *err);
	int (*release)(struct store_tx *tx, struct smime_error *err);
	int (*rollback_to)(struct store_tx *tx, struct smime_error *err);

	/* A consistent copy of the whole state to path, while others write. */
	int (*backup)(struct store *st, const char *path, struct smime_error *err);
	/* Replace the whole state with the copy at path (checked first). */
	int (*restore)(struct store *st, const char *path, struct smime_error *err);
	/* Round trip to the database (for /healthz). */
	int (*ping)(struct store *st, struct smime_error *err);

	/* Small named settings of the installation. */
	int (*meta_get)(struct store_tx *tx, const char *key, char **value_r, struct smime_error *err);
	int (*meta_set)(struct store_tx *tx, const char *key, const char *value, struct smime_error *err);

	/* Users.  user_get takes an id or any of the user's addresses. */
	int (*user_insert)(struct store_tx *tx, const struct store_user *u, struct smime_error *err);
	int (*user_get)(struct store_tx *tx, const char *id_or_email, struct store_user *u_r,
	    struct smime_error *err);
	int (*user_list)(struct store_tx *tx, const struct store_page *page, const char *group_id,
	    struct store_user **users_r, size_t *n_r, char **next_r, struct smime_error *err);
	/* Replaces name and emails of the user with u->id. */
	int (*user_update)(struct store_tx *tx, const struct store_user *u, struct smime_error *err);
	/* Marks the user deleted at when: user_get, user_list and the checks of
	 * other records no longer see it; its devices and memberships go; it
	 * keeps its addresses (no one else takes them, see
	 * user_release_addresses), certificates and archived keys. */
	int (*user_delete)(struct store_tx *tx, const char *id, int64_t when,
	    struct smime_error *err);
	/* As user_get, deleted users too: by id, by an address a user holds,
	 * else by an address a deleted user held before a new user took it
	 * (the most recently deleted).  u_r->deleted says which. */
	int (*user_find)(struct store_tx *tx, const char *id_or_email, struct store_user *u_r,
	    struct smime_error *err);
	/* The deleted users, by id. */
	int (*user_list_deleted)(struct store_tx *tx, const struct store_page *page,
	    struct store_user **users_r, size_t *n_r, char **next_r, struct smime_error *err);
	/* Those of the n addresses that deleted users hold become former
	 * addresses of theirs (user_find still finds them), free for a new
	 * user; *n_r (may be NULL): how many. */
	int (*user_release_addresses)(struct store_tx *tx, const char *const *emails, size_t n,
	    size_t *n_r, struct smime_error *err);
	/* Destroys a deleted user and the archived keys of all its
	 * certificates (which stay recorded); *keys_r: how many keys.
	 * SMIME_E_POLICY when the user is not deleted. */
	int (*user_purge)(struct store_tx *tx, const char *id, size_t *keys_r,
	    struct smime_error *err);

	/* Groups.  group_get takes an id or the name. */
	int (*group_insert)(struct store_tx *tx, const struct store_group *gr, struct smime_error *err);
	int (*group_get)(struct store_tx *tx, const char *id_or_name, struct store_group *gr_r,
	    struct smime_error *err);
	int (*group_list)(struct store_tx *tx, const struct store_page *page,
	    struct store_group **groups_r, size_t *n_r, char **next_r, struct smime_error *err);
	/* Replaces name and description of the group with gr->id. */
	int (*group_update)(struct store_tx *tx, const struct store_group *gr, struct smime_error *err);
	int (*group_delete)(struct store_tx *tx, const char *id, struct smime_error *err);
	/* EXISTS when already a member; NOTFOUND when not one (remove). */
	int (*group_add_member)(struct store_tx *tx, const char *group_id, const char *user_id,
	    struct smime_error *err);
	int (*group_remove_member)(struct store_tx *tx, const char *group_id, const char *user_id,
	    struct smime_error *err);

	/* Devices. */
	int (*device_insert)(struct store_tx *tx, const struct store_device *d, struct smime_error *err);
	int (*device_get)(struct store_tx *tx, const char *id, struct store_device *d_r,
	    struct smime_error *err);
	int (*device_list)(struct store_tx *tx, const struct store_page *page, const char *user_id,
	    struct store_device **devices_r, size_t *n_r, char **next_r, struct smime_error *err);
	int (*device_update)(struct store_tx *tx, const struct store_device *d, struct smime_error *err);
	int (*device_delete)(struct store_tx *tx, const char *id, struct smime_error *err);

	/* Certification authorities (few: no pagination). */
	int (*ca_insert)(struct store_tx *tx, const struct store_ca *ca, struct smime_error *err);
	int (*ca_get)(struct store_tx *tx, const char *id, struct store_ca *ca_r, struct smime_error *err);
	int (*ca_list)(struct store_tx *tx, struct store_ca **cas_r, size_t *n_r, struct smime_error *err);
	int (*ca_set_crl)(struct store_tx *tx, const char *id, int64_t number,
	    const unsigned char *der, size_t len, int64_t when, struct smime_error *err);

	/* Profiles (few: no pagination).  profile_put inserts or replaces. */
	int (*profile_put)(struct store_tx *tx, const struct store_profile *p, struct smime_error *err);
	int (*profile_get)(struct store_tx *tx, const char *name, struct store_profile *p_r,
	    struct smime_error *err);
	int (*profile_list)(struct store_tx *tx, struct store_profile **profiles_r, size_t *n_r,
	    struct smime_error *err);
	int (*profile_delete)(struct store_tx *tx, const char *name, struct smime_error *err);

	/* Certificates.  cert_insert: EXISTS when the serial is taken. */
	int (*cert_insert)(struct store_tx *tx, const struct store_cert *c, struct smime_error *err);
	int (*cert_get)(struct store_tx *tx, const char *serial, struct store_cert *c_r,
	    struct smime_error *err);
	int (*cert_list)(struct store_tx *tx, const struct store_page *page,
	    const struct store_cert_filter *filter, struct store_cert **certs_r, size_t *n_r,
	    char **next_r, struct smime_error *err);
	/* Sets status (and revoked_at, reason when revoking; 0, -1 otherwise). */
	int (*cert_set_status)(struct store_tx *tx, const char *serial, enum cert_status status,
	    int64_t revoked_at, int reason, struct smime_error *err);
	/* Marks every ACTIVE certificate of user_id with this device_id ("" for
	 * none) and purpose SUPERSEDED, except the one with except_serial.
	 * *n_r: how many changed. */
	int (*cert_supersede)(struct store_tx *tx, const char *user_id, const char *device_id,
	    enum cert_purpose purpose, const char *except_serial, size_t *n_r,
	    struct smime_error *err);
	/* Withdraws a certificate (serial or fingerprint) from lookup and
	 * directory publication at when; it stays recorded, its key archived.
	 * Queues its user for publication. */
	int (*cert_withdraw)(struct store_tx *tx, const char *id, int64_t when,
	    struct smime_error *err);
	/* Every revoked certificate of ca_id, for its CRL. */
	int (*cert_revoked)(struct store_tx *tx, const char *ca_id, struct store_revoked **r_r,
	    size_t *n_r, struct smime_error *err);

	/* Admin tokens. */
	int (*token_insert)(struct store_tx *tx, const struct store_token *t, struct smime_error *err);
	int (*token_get)(struct store_tx *tx, const char *id, struct store_token *t_r,
	    struct smime_error *err);
	int (*token_list)(struct store_tx *tx, struct store_token **tokens_r, size_t *n_r,
	    struct smime_error *err);
	int (*token_revoke)(struct store_tx *tx, const char *id, int64_t when, struct smime_error *err);
	/* Set last_used to when unless it is less than interval seconds before
	 * when; *touched_r (may be NULL) says whether it did, so that a use is
	 * recorded once per token per interval whatever runs at once. */
	int (*token_touch)(struct store_tx *tx, const char *id, int64_t when, int64_t interval,
	    bool *touched_r, struct smime_error *err);

	/* The audit log: append only. */
	int (*audit_append)(struct store_tx *tx, struct store_audit *a, struct smime_error *err);
	/* filter may be NULL (every row); a cursor ("a.SEQ") goes on after
	 * that entry, whatever the filter. */
	int (*audit_list)(struct store_tx *tx, const struct store_page *page,
	    const struct store_audit_filter *filter, struct store_audit **items_r, size_t *n_r,
	    char **next_r, struct smime_error *err);

	/* The key archive: a private key sealed by archive.c, by the SHA-256
	 * fingerprint of its certificate (serials of imported certificates
	 * are unique only per issuer).  archive_put: EXISTS when one is there;
	 * archive_get: *sealed_r freed by the caller with free(). */
	int (*archive_put)(struct store_tx *tx, const char *sha256, const unsigned char *sealed,
	    size_t len, int64_t when, struct smime_error *err);
	int (*archive_get)(struct store_tx *tx, const char *sha256, unsigned char **sealed_r,
	    size_t *len_r, struct smime_error *err);
	/* How many keys the archive holds, and the newest of them (for the
	 * check at start): sha256_r "" and *sealed_r NULL when none. */
	int (*archive_stat)(struct store_tx *tx, size_t *n_r, char sha256_r[65],
	    unsigned char **sealed_r, size_t *len_r, struct smime_error *err);

	/* Recovery requests.  recovery_list: oldest first.  recovery_decide
	 * moves one from status from to status to (approver = actor when to is
	 * APPROVED): SMIME_E_EXISTS when it is not in from. */
	int (*recovery_insert)(struct store_tx *tx, const struct store_recovery *r,
	    struct smime_error *err);
	int (*recovery_get)(struct store_tx *tx, const char *id, struct store_recovery *r_r,
	    struct smime_error *err);
	int (*recovery_list)(struct store_tx *tx, const struct store_page *page,
	    struct store_recovery **v_r, size_t *n_r, char **next_r, struct smime_error *err);
	int (*recovery_decide)(struct store_tx *tx, const char *id, enum recovery_status from,
	    enum recovery_status to, const char *actor, int64_t when, struct smime_error *err);

	/* The trust collection (imported CAs; few: no pagination). */
	int (*trust_put)(struct store_tx *tx, const struct store_trust *t, struct smime_error *err);
	int (*trust_list)(struct store_tx *tx, struct store_trust **v_r, size_t *n_r,
	    struct smime_error *err);
	int (*trust_delete)(struct store_tx *tx, const char *sha256, struct smime_error *err);
	/* The distrust list: CAs and end-entity certificates that no
	 * validation accepts, even when they are in the trust collection too
	 * (few: no pagination).  Same records and errors as the collection. */
	int (*distrust_put)(struct store_tx *tx, const struct store_trust *t, struct smime_error *err);
	int (*distrust_list)(struct store_tx *tx, struct store_trust **v_r, size_t *n_r,
	    struct smime_error *err);
	int (*distrust_delete)(struct store_tx *tx, const char *sha256, struct smime_error *err);

	/* The publication queue.  publish_due: up to limit users due at now,
	 * the longest waiting first.  publish_done: takes the user off the
	 * queue unless a change came after seq (then nothing happens).
	 * publish_retry: after a failure of seq, not before next_at.
	 * publish_all: queues every user who has a certificate, *n_r of them.
	 * publish_pending: how many wait, and the first limit of them with
	 * the most failures. */
	int (*publish_due)(struct store_tx *tx, int64_t now, size_t limit,
	    struct store_publish **v_r, size_t *n_r, struct smime_error *err);
	int (*publish_done)(struct store_tx *tx, const char *user_id, int64_t seq,
	    struct smime_error *err);
	int (*publish_retry)(struct store_tx *tx, const char *user_id, int64_t seq,
	    int64_t next_at, const char *error, struct smime_error *err);
	int (*publish_all)(struct store_tx *tx, int64_t now, size_t *n_r, struct smime_error *err);
	int (*publish_pending)(struct store_tx *tx, size_t limit, struct store_publish **v_r,
	    size_t *n_r, size_t *total_r, struct smime_error *err);

	/* SCEP profiles (few: no pagination).  scep_profile_put inserts or
	 * replaces; deleting one deletes its challenges. */
	int (*scep_profile_put)(struct store_tx *tx, const struct store_scep_profile *p,
	    struct smime_error *err);
	int (*scep_profile_get)(struct store_tx *tx, const char *name,
	    struct store_scep_profile *p_r, struct smime_error *err);
	int (*scep_profile_list)(struct store_tx *tx, struct store_scep_profile **v_r,
	    size_t *n_r, struct smime_error *err);
	int (*scep_profile_delete)(struct store_tx *tx, const char *name,
	    struct smime_error *err);

	/* SCEP challenges.  Deleting the device, its user or the profile
	 * deletes them.  challenge_insert also forgets challenges that
	 * expired more than a day before c->created.  challenge_use marks an
	 * unused one used by transaction_id: SMIME_E_EXISTS when it was used. */
	int (*challenge_insert)(struct store_tx *tx, const struct store_scep_challenge *c,
	    struct smime_error *err);
	int (*challenge_get)(struct store_tx *tx, const char *id,
	    struct store_scep_challenge *c_r, struct smime_error *err);
	int (*challenge_use)(struct store_tx *tx, const char *id, int64_t when,
	    const char *transaction_id, struct smime_error *err);

	/* SCEP transactions.  scep_tx_insert: SMIME_E_EXISTS when the id is
	 * taken.  scep_tx_decide moves a PENDING one to status (with the
	 * certificate's SHA-256 or the error): SMIME_E_EXISTS when it is not
	 * pending.  scep_tx_list: a page of those of status (0: any), oldest
	 * first. */
	int (*scep_tx_insert)(struct store_tx *tx, const struct store_scep_tx *t,
	    struct smime_error *err);
	int (*scep_tx_get)(struct store_tx *tx, const char *id, struct store_scep_tx *t_r,
	    struct smime_error *err);
	int (*scep_tx_decide)(struct store_tx *tx, const char *id, enum scep_tx_status status,
	    const char *cert, const char *error, int64_t when, struct smime_error *err);
	int (*scep_tx_list)(struct store_tx *tx, const struct store_page *page, int status,
	    struct store_scep_tx **v_r, size_t *n_r, char **next_r, struct smime_error *err);

	/* SCEP registration authorities, one per CA at most. */
	int (*scep_ra_put)(struct store_tx *tx, const struct store_scep_ra *ra,
	    struct smime_error *err);
	int (*scep_ra_get)(struct store_tx *tx, const char *ca_id, struct store_scep_ra *ra_r,
	    struct smime_error *err);
	int (*scep_ra_list)(struct store_tx *tx, struct store_scep_ra **v_r, size_t *n_r,
	    struct smime_error *err);
	/* Record a request's senderNonce: SMIME_E_EXISTS when it was seen
	 * (a replay).  Nonces seen before forget_before are forgotten. */
	int (*scep_nonce_seen)(struct store_tx *tx, const unsigned char *nonce, size_t len,
	    int64_t when, int64_t forget_before, struct smime_error *err);
};

/* The backend called name, or NULL. */
const struct store_backend *store_backend_find(const char *name);

void store_user_clear(struct store_user *u);
void store_group_clear(struct store_group *gr);
void store_device_clear(struct store_device *d);
void store_ca_clear(struct store_ca *ca);
void store_profile_clear(struct store_profile *p);
void store_cert_clear(struct store_cert *c);
void store_token_clear(struct store_token *t);
void store_audit_clear(struct store_audit *a);
void store_trust_clear(struct store_trust *t);
void store_publish_clear(struct store_publish *p);
void store_scep_profile_clear(struct store_scep_profile *p);
void store_scep_challenge_clear(struct store_scep_challenge *c);
void store_scep_tx_clear(struct store_scep_tx *t);
void store_scep_ra_clear(struct store_scep_ra *ra);
void store_recovery_clear(struct store_recovery *r);
/* Clear each of n records and free the array. */
void store_users_free(struct store_user *v, size_t n);
void store_groups_free(struct store_group *v, size_t n);
void store_devices_free(struct store_device *v, size_t n);
void store_cas_free(struct store_ca *v, size_t n);
void store_profiles_free(struct store_profile *v, size_t n);
void store_certs_free(struct store_cert *v, size_t n);
void store_tokens_free(struct store_token *v, size_t n);
void store_audits_free(struct store_audit *v, size_t n);
void store_trusts_free(struct store_trust *v, size_t n);
void store_publishes_free(struct store_publish *v, size_t n);
void store_scep_profiles_free(struct store_scep_profile *v, size_t n);
void store_scep_txs_free(struct store_scep_tx *v, size_t n);
void store_scep_ras_free(struct store_scep_ra *v, size_t n);
void store_recoveries_free(struct store_recovery *v, size_t n);

/* Names of the enums as the API spells them, and back (0 when unknown). */
const char *cert_purpose_name(enum cert_purpose p);
const char *cert_source_name(enum cert_source s);
const char *cert_status_name(enum cert_status s);
enum cert_purpose cert_purpose_parse(const char *s);
enum cert_status cert_status_parse(const char *s);
/* "admin", "operator", "recovery", "auditor"; role_parse gives 0 when unknown. */
const char *store_role_name(enum store_role r);
enum store_role store_role_parse(const char *s);
const char *recovery_status_name(int s);

extern const struct store_backend store_sqlite;

#endif

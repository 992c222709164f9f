/*
 * smime admin: what its files share.  cmd_admin.c holds the option parser,
 * the table of actions (verbs[]), help and dispatch, and the helpers that
 * print and call; the actions live in one file per noun group:
 * admin_users.c (user, group, device), admin_certs.c (cert, profile, ca),
 * admin_scep.c (scep, scep-profile, device challenge), admin_keys.c
 * (import, recover, recovery, token, audit), admin_trust.c (trust,
 * directory); admin_csv.c the CSV import of users.  The HTTP side is
 * admin_http.c, declared in cli.h.
 */
#ifndef SMIME_CLI_ADMIN_H
#define SMIME_CLI_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <smime/error.h>

#include "cli.h"

struct admin_options;

/* A column of a table: a field of each item, or NULL and fn (a malloc'd text). */
struct column {
	const char *head;
	const char *key;
	char *(*fn)(const json_t *item);
};

/* One line per item, columns aligned, the header first. */
int admin_print_table(const json_t *items, const struct column *cols, size_t ncol);
/* obj's string field key, or "" when there is none. */
const char *admin_str(const json_t *obj, const char *key);
/* s is valid UTF-8. */
bool admin_utf8_ok(const char *s);
/* "out of memory", as an exit status. */
int admin_oom(void);
/* The file at path (- for standard input), at most max octets, with a NUL
 * after them; NULL with err set.  The caller frees it. */
unsigned char *admin_slurp_file(const char *path, size_t max, size_t *len_r,
    struct smime_error *err);

/* smime admin user import-csv FILE (admin_csv.c). */
int admin_import_csv(const char *path, const struct admin_options *conn);

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

#define N(a) (sizeof(a) / sizeof((a)[0]))
typedef int (*show_fn)(const struct args *a, const json_t *answer);

#define SCEP_PROFILE_OPTS (A_CA | A_RSA_MIN_BITS | A_EC_CURVES | A_SUBJECT | A_SAN_EMAIL | \
	A_NON_REPUDIATION | A_VALIDITY_DAYS | A_RENEWAL_DAYS | A_APPROVAL | A_CHALLENGE_MINUTES | \
	A_ALLOW_SHA1)
#define PFX_MAX (16u * 1024 * 1024)
#define PROFILE_OPTS (A_PURPOSE | A_CA | A_VALIDITY_DAYS | A_KEY_ALG | A_BR_PROFILE | A_GENERATE)

/* cmd_admin.c: the helpers the action files share (contracts at their definitions) */
char *text_of(const json_t *v);
char *user_cell(const json_t *item);
char *device_cell(const json_t *item);
json_t *named(const json_t *obj);
int print_fields(const json_t *obj, const char *const *keys, size_t n);
bool one_of(const char *s, const char *const *set, size_t n);
void join(char *buf, size_t size, const char *const *set, size_t n);
int call_show(struct args *a, const char *method, char *path, json_t *body, show_fn show,
    const char *done);
int list_show(struct args *a, const char *path, const struct admin_query *q, size_t n_q, bool paged,
    const struct column *cols, size_t ncol);
int show_id(const struct args *a, const json_t *answer);
int write_out(const char *path, const void *data, size_t len);
unsigned char *decode_p12(const char *b64, size_t *len_r);
char *b64_of(const unsigned char *data, size_t len);
char *file_b64(const char *path, size_t max, struct smime_error *err);

/* admin_users.c: the actions of the table verbs[] */
int user_add(struct args *a);
int user_list(struct args *a);
int user_show(struct args *a);
int user_delete(struct args *a);
int user_purge(struct args *a);
int user_import_csv(struct args *a);
int group_add(struct args *a);
int group_list(struct args *a);
int group_show(struct args *a);
int group_delete(struct args *a);
int group_add_member(struct args *a);
int group_remove_member(struct args *a);
int device_add(struct args *a);
int device_list(struct args *a);
int device_show(struct args *a);
int device_delete(struct args *a);
int user_update(struct args *a);
int device_update(struct args *a);

/* admin_certs.c: the actions of the table verbs[] */
int profile_list(struct args *a);
int profile_show(struct args *a);
int ca_list(struct args *a);
int ca_show(struct args *a);
int ca_crl(struct args *a);
int ca_export(struct args *a);
int cert_issue(struct args *a);
int cert_list(struct args *a);
int cert_show(struct args *a);
int cert_revoke(struct args *a);
int cert_withdraw(struct args *a);
int profile_create(struct args *a);
int profile_update(struct args *a);
int profile_delete(struct args *a);
int ca_import(struct args *a);

/* admin_scep.c: the actions of the table verbs[] */
int device_challenge(struct args *a);
int scep_profile_list(struct args *a);
int scep_profile_show(struct args *a);
int scep_profile_create(struct args *a);
int scep_profile_update(struct args *a);
int scep_profile_delete(struct args *a);
int scep_list(struct args *a);
int scep_show(struct args *a);
int scep_approve(struct args *a);
int scep_reject(struct args *a);

/* admin_keys.c: the actions of the table verbs[] */
int token_create(struct args *a);
int token_list(struct args *a);
int token_revoke(struct args *a);
int audit(struct args *a);
int admin_import(struct args *a);
int admin_recover(struct args *a);
int recovery_list(struct args *a);
int recovery_show(struct args *a);
int recovery_approve(struct args *a);
int recovery_fetch(struct args *a);
int import_folder(struct args *a);

/* admin_trust.c: the actions of the table verbs[] */
int trust_list(struct args *a);
int trust_import(struct args *a);
int trust_remove(struct args *a);
int directory_status(struct args *a);
int directory_sync(struct args *a);

#endif

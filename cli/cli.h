/* smime: declarations shared by the command files. */
#ifndef SMIME_CLI_H
#define SMIME_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>
#include <openssl/bio.h>

#include <smime/smime.h>

/* Exit statuses (docs/smime.1 lists them; tests rely on them). */
enum {
	EXIT_OK = 0,
	EXIT_INVALID = 1,   /* signature or certificate invalid, integrity check failed */
	EXIT_USAGE = 2,
	EXIT_MALFORMED = 3,
	EXIT_NOKEY = 4,     /* no key or certificate, recipients without a certificate */
	EXIT_POLICY = 5,
	EXIT_WARNING = 6,   /* valid signature with a warning */
	EXIT_IO = 7,        /* reading or writing files failed, or an internal error */
};

/* Options every command accepts. */
struct globals {
	const char *home;
	const char *passphrase_file;
	const char *password_file;
	bool json;
	bool quiet;
};

extern struct globals g;

/* Long options shared by all commands, and the handler for them. */
#define GLOBAL_LONG_OPTIONS \
	{ "home", required_argument, NULL, 0x100 }, \
	{ "passphrase-file", required_argument, NULL, 0x101 }, \
	{ "json", no_argument, NULL, 0x102 }, \
	{ "quiet", no_argument, NULL, 'q' }, \
	{ "help", no_argument, NULL, 'h' }
bool global_option(int c, const char *arg);

int exit_code(int smime_code);
/* Print "smime: CMD: message" to stderr (or a JSON error with --json) and return the exit code. */
int fail(const char *cmd, const struct smime_error *err);
int usage_error(const char *cmd, const char *fmt, ...) SMIME_PRINTF(2, 3);

/* Open the keystore named by --home / environment; create it when asked. */
int open_keystore(const char *cmd, bool create, struct smime_keystore **ks_r);
/* Read a secret from a file (first line), cleansing the buffer; NULL on error. */
char *read_secret_file(const char *path, struct smime_error *err);
/* The PKCS#12 password: --password-file, SMIME_P12_PASSWORD, a prompt, or NULL. */
char *p12_password(bool confirm, struct smime_error *err);
void secret_free(char *s);

/* Input: -i FILE or stdin.  Output: -o FILE (written atomically) or stdout. */
BIO *open_input(const char *path, struct smime_error *err);
struct output {
	BIO *bio;
	char *path, *tmp;
	int fd;                  /* the temporary file's, or -1 */
};
int output_open(struct output *o, const char *path, struct smime_error *err);
/* Commit (rename into place) when ok, else remove the temporary file. */
int output_close(struct output *o, bool ok, struct smime_error *err);

void print_report(const char *cmd, const struct smime_report *r, int rc,
    const struct smime_error *err);
json_t *report_json(const struct smime_report *r);
void json_out(json_t *j);
const char *time_iso(time_t t, char buf[32]);
bool parse_time(const char *s, time_t *t_r);

int cmd_sign(int argc, char **argv);
int cmd_encrypt(int argc, char **argv);
int cmd_decrypt(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_open(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_admin(int argc, char **argv);

/*
 * smime encrypt --ldap (ldap.c): recipients' certificates looked up in an
 * LDAP directory, validated against the keystore's trust anchors and added
 * to its contacts.
 */
struct ldap_opts {
	const char *url;           /* ldap[s]://HOST[:PORT][/BASE_DN]: --ldap, else $SMIME_LDAP */
	const char *base;          /* --ldap-base: the base DN, instead of the URL's */
	const char *bind_dn;       /* --ldap-bind-dn, with password_file; NULL: anonymous */
	const char *password_file; /* --ldap-password-file */
	const char *filter;        /* --ldap-filter, %s for the address; NULL: mail or otherMailbox */
	const char *cacert;        /* --ldap-cacert: CAs for TLS; NULL: the system's */
	bool starttls;             /* --ldap-starttls */
	bool url_from_env;         /* url is $SMIME_LDAP's (for messages) */
};
struct ldap_dir;
/* Check the options and read the password; returns EXIT_OK or a status (printed). */
int ldap_dir_new(const char *cmd, const struct ldap_opts *o, struct ldap_dir **d_r);
void ldap_dir_free(struct ldap_dir *d);
/*
 * Look up each of addrs[n] (connecting on first use), add the certificates
 * that pass to the contacts of ks and commit.  A directory that cannot be
 * reached, refuses or answers badly is reported on stderr and leaves the
 * addresses missing: that is not an error of this function, which returns
 * EXIT_OK unless the keystore cannot be written (printed).  *found_r: the
 * addresses that gained a certificate.  report (may be NULL) receives one
 * JSON object per address (address, status, reason, certificates, refused).
 */
int ldap_dir_fetch(struct ldap_dir *d, struct smime_keystore *ks, const char *const *addrs,
    size_t n, json_t *report, size_t *found_r);

/*
 * smime admin: the client of smimed's REST API (admin_http.c).  Every
 * function that returns an int returns an exit status (EXIT_OK or another)
 * and has printed the error when it is not EXIT_OK.
 */
struct admin_conn;
struct admin_options {
	const char *server;      /* --server, else $SMIME_SERVER, else http://127.0.0.1:8080 */
	const char *token_file;  /* --token-file, else $SMIME_TOKEN, else $SMIME_TOKEN_FILE */
	const char *cacert;      /* --cacert, else $SMIME_CACERT, else the system's CAs */
};
/* A successful answer (2xx); data (NUL-terminated, may be NULL) is cleansed on free. */
struct admin_reply {
	long status;
	char *data;
	size_t len;
};
struct admin_query {
	const char *name, *value;  /* left out when value is NULL */
};
int admin_init(void);
void admin_done(void);
/* Resolve server, token and CA file; the token is checked but not yet sent. */
int admin_conn_new(const struct admin_options *o, struct admin_conn **c_r);
void admin_conn_free(struct admin_conn *c);
/* One request to path (below the server URL, already escaped); body may be NULL. */
int admin_request(struct admin_conn *c, const char *method, const char *path, const char *accept,
    const char *type, const void *body, size_t len, struct admin_reply *r);
void admin_reply_free(struct admin_reply *r);
/* A JSON request and its answer: *answer_r is an object, or NULL for an empty answer (204). */
int admin_call(struct admin_conn *c, const char *method, const char *path, json_t *body,
    json_t **answer_r);
/*
 * Every item of a list, following "next" from start (NULL: the beginning);
 * paged lists are asked for in pages of up to 1000.  max 0: all; else at most
 * max items, and *next_r (when not NULL) is where the list goes on, or NULL.
 */
int admin_list(struct admin_conn *c, const char *path, const struct admin_query *q, size_t n_q,
    bool paged, const char *start, size_t max, json_t **items_r, char **next_r);
/* fmt with %s only, each argument percent-encoded as one path segment; NULL on overflow. */
char *admin_path(const char *fmt, ...) SMIME_PRINTF(1, 2);
/* Print "smime admin: MESSAGE (HTTP n)", or the JSON error with --json; returns exit. */
int admin_error(int exit, const char *code, long http, const char *fmt, ...) SMIME_PRINTF(4, 5);
int admin_exit_for_status(long status);
/* Replace control characters (a hostile service's terminal escapes) with '?'. */
void admin_sanitize(char *s);

#endif

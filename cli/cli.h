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

/*
 * HTTP with libcurl (cli/http.c).  A body of at most max octets, kept
 * NUL-terminated; cli_body_write is a CURLOPT_WRITEFUNCTION for it, and
 * cli_body_free empties it (max stays).
 */
struct cli_body {
	unsigned char *data;
	size_t len, cap, max;
	bool too_large;
};
size_t cli_body_write(char *p, size_t size, size_t n, void *arg);
void cli_body_free(struct cli_body *b);
/* Why libcurl failed (cc is a CURLcode), for someone who has to fix it:
 * SMIME_E_IO naming url; the hints say what to check when it cannot
 * connect and when TLS fails. */
int cli_transport_error(const char *url, const char *errbuf, int cc, const struct cli_body *b,
    long timeout, const char *connect_hint, const char *tls_hint, struct smime_error *err);
/* True when the Content-Type type is want, parameters and case aside. */
bool cli_media_is(const char *type, const char *want);

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
/* j on one line of standard error (a --json error); j is released. */
void json_err(json_t *j);
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
int cmd_config(int argc, char **argv);
int cmd_admin(int argc, char **argv);
int cmd_enroll(int argc, char **argv);

/*
 * smime encrypt --lookup and --ldap (recipients.c): recipients without a
 * certificate in the keystore are looked up in a source outside it.  The
 * source only finds certificates; recipients_fetch decides on them against
 * the keystore's trust anchors (the recipient's address, encryption key
 * usage, EKU emailProtection, valid now, a chain to an anchor) and adds
 * those that pass to the contacts.  A source is a table of functions over
 * a context of its own; the texts name the source in messages.
 */
struct recipient_lookup;   /* what became of one address, for the report */
struct recipient_source {
	const char *name;          /* the report's "source": "lookup", "ldap" */
	const char *label;         /* messages read "smime encrypt: LABEL: ..." */
	const char *noun;          /* "the directory": "not looked up: NOUN failed ..." */
	const char *none;          /* reason: it knows nothing of the address */
	const char *empty_one;     /* reason: one entry or answer, without a certificate */
	const char *empty_many;    /* reason: several, none with a certificate */
	const char *offered;       /* "none of the N OFFERED for it is usable" */
	/* Connect (on first use, once); 0, or an error code with err set. */
	int (*open)(void *ctx, struct smime_error *err);
	/*
	 * The certificates the source holds for address (already checked by
	 * recipients.c to be a plain dot-atom@domain): those that may be the
	 * recipient's go into certs, those that may only be intermediates of
	 * their chains into extra; *answers_r counts the entries or answers
	 * (0: the source knows nothing of address).  A value that is no
	 * certificate is noted with recipient_refuse_value.  Returns 0, or an
	 * error code with err set: SMIME_E_IO and SMIME_E_USAGE mean that the
	 * source cannot be used any more (the other addresses are skipped);
	 * other codes concern this address only.
	 */
	int (*search)(void *ctx, const char *address, STACK_OF(X509) *certs,
	    STACK_OF(X509) *extra, int *answers_r, struct recipient_lookup *l,
	    struct smime_error *err);
	/* Disconnect; called once after a successful open. */
	void (*close)(void *ctx);
};
extern const struct recipient_source recipient_source_ldap;    /* ldap.c */
extern const struct recipient_source recipient_source_lookup;  /* lookup.c */
/* Note a value of the answer that is no certificate (what: "value 2 of X"), and why. */
void recipient_refuse_value(struct recipient_lookup *l, const char *what, const char *why);
/*
 * Look up each of addrs[n] in src (ctx is the source's), add the
 * certificates that pass to the contacts of ks and commit.  A source that
 * cannot be reached, refuses or answers badly is reported on stderr and
 * leaves the addresses missing: that is not an error of this function,
 * which returns EXIT_OK unless the keystore cannot be written (printed).
 * found[i] (n of them) is set when addrs[i] gained a certificate.  report
 * (may be NULL) receives one JSON object per address (address, source,
 * status, reason, certificates, refused).
 */
int recipients_fetch(const struct recipient_source *src, void *ctx, struct smime_keystore *ks,
    const char *const *addrs, size_t n, json_t *report, bool *found);

/* The LDAP directory (ldap.c): the context of recipient_source_ldap. */
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
 * smimed's public lookup, GET BASE/api/v1/lookup?email=ADDR (lookup.c): the
 * context of recipient_source_lookup.
 */
struct lookup_opts {
	const char *url;           /* http[s]://HOST[:PORT][/PATH]: --lookup, else $SMIME_LOOKUP */
	const char *cacert;        /* --lookup-cacert: CAs for https; NULL: the system's */
	bool url_from_env;         /* url is $SMIME_LOOKUP's (for messages) */
};
struct lookup_svc;
/* Check the options; returns EXIT_OK or a status (printed). */
int lookup_svc_new(const char *cmd, const struct lookup_opts *o, struct lookup_svc **s_r);
void lookup_svc_free(struct lookup_svc *s);
#define LOOKUP_ANSWER_MAX  (1024 * 1024)  /* octets of one answer */
#define LOOKUP_MAX_CERTS   64             /* certificates in one answer, all members */
/*
 * Read a 200 answer of the lookup (lookup_answer.c), data[len], not
 * necessarily NUL-terminated and wholly untrusted.  The certificates that
 * may be the recipient's (the encryption certificate, and the signing ones
 * whose key usage also allows encryption) are appended to certs, the
 * chain's CA certificates to chain; both stacks own what they get.  address
 * (may be NULL) must be the answer's "email".  Returns 0, or SMIME_E_INPUT
 * with a message naming the rule the answer breaks, and then certs and
 * chain are as they were; SMIME_E_INTERNAL when out of memory.
 */
int lookup_parse_answer(const char *data, size_t len, const char *address,
    STACK_OF(X509) *certs, STACK_OF(X509) *chain, struct smime_error *err);

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

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

#endif

/* smime: what every command shares: options, secrets, files, reports, exit codes. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ui.h>

#include "cli.h"

#define SECRET_MAX 1024

bool
global_option(int c, const char *arg)
{
	switch (c) {
	case 0x100: g.home = arg; return true;
	case 0x101: g.passphrase_file = arg; return true;
	case 0x102: g.json = true; return true;
	case 'q': g.quiet = true; return true;
	default: return false;
	}
}

int
exit_code(int code)
{
	switch (code) {
	case SMIME_OK: return EXIT_OK;
	case SMIME_E_BADSIG:
	case SMIME_E_CRYPTO: return EXIT_INVALID;
	case SMIME_E_USAGE: return EXIT_USAGE;
	case SMIME_E_INPUT: return EXIT_MALFORMED;
	case SMIME_E_NOTFOUND: return EXIT_NOKEY;
	case SMIME_E_EXISTS: return EXIT_POLICY;
	case SMIME_E_POLICY: return EXIT_POLICY;
	default: return EXIT_IO;
	}
}

void
json_out(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s != NULL) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
	json_decref(j);
}

void
json_err(json_t *j)
{
	char *s = json_dumps(j, JSON_PRESERVE_ORDER);

	if (s != NULL)
		fprintf(stderr, "%s\n", s);
	free(s);
	json_decref(j);
}

int
fail(const char *cmd, const struct smime_error *err)
{
	if (g.json) {
		json_err(json_pack("{s:{s:s,s:s,s:i}}", "error", "code",
		    smime_code_name(err->code), "message", err->message,
		    "exit", exit_code(err->code)));
	} else {
		fprintf(stderr, "smime %s: %s\n", cmd, err->message);
	}
	return exit_code(err->code);
}

int
usage_error(const char *cmd, const char *fmt, ...)
{
	struct smime_error err;
	va_list ap;

	err.code = SMIME_E_USAGE;
	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	strncat(err.message, " (see smime ", sizeof(err.message) - strlen(err.message) - 1);
	strncat(err.message, cmd, sizeof(err.message) - strlen(err.message) - 1);
	strncat(err.message, " --help)", sizeof(err.message) - strlen(err.message) - 1);
	return fail(cmd, &err);
}

void
secret_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

char *
read_secret_file(const char *path, struct smime_error *err)
{
	char buf[SECRET_MAX + 2];
	FILE *f = fopen(path, "r");
	size_t n;
	char *s;

	if (f == NULL) {
		smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (n > SECRET_MAX) {
		OPENSSL_cleanse(buf, sizeof(buf));
		smime_error_set(err, SMIME_E_USAGE, "%s: a secret longer than %d bytes", path,
		    SECRET_MAX);
		return NULL;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	s = strdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (s == NULL)
		smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	return s;
}

static bool
have_tty(void)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static char *
prompt(const char *what, bool confirm)
{
	char buf[SECRET_MAX + 1];
	char *s = NULL;

	if (!have_tty())
		return NULL;
	if (EVP_read_pw_string(buf, sizeof(buf), what, confirm) == 0)
		s = strdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	return s;
}

static int
passphrase_cb(void *arg, char *buf, size_t size)
{
	char *s = prompt("Keystore passphrase: ", *(bool *)arg);
	size_t n;

	if (s == NULL)
		return -1;
	n = strlen(s);
	if (n + 1 > size) {
		secret_free(s);
		return -1;
	}
	memcpy(buf, s, n + 1);
	secret_free(s);
	return 0;
}

int
open_keystore(const char *cmd, bool create, struct smime_keystore **ks_r)
{
	static bool confirm;
	char dir[4096];
	const char *home = g.home;
	struct smime_error err;
	int rc;

	if (home == NULL) {
		if (!smime_keystore_default_dir(dir, sizeof(dir))) {
			smime_error_set(&err, SMIME_E_USAGE, "no keystore: use --home DIR or set "
			    "SMIME_HOME");
			return fail(cmd, &err);
		}
		home = dir;
	}
	if ((rc = smime_keystore_open(home, create ? SMIME_KEYSTORE_CREATE : 0, ks_r, &err)) != 0) {
		if (rc == SMIME_E_NOTFOUND)
			smime_error_set(&err, SMIME_E_NOTFOUND, "no keystore in %s: import a "
			    "certificate or key first (smime import)", home);
		return fail(cmd, &err);
	}
	if (g.passphrase_file != NULL) {
		char *p = read_secret_file(g.passphrase_file, &err);
		if (p == NULL) {
			smime_keystore_free(*ks_r);
			*ks_r = NULL;
			return fail(cmd, &err);
		}
		smime_keystore_set_passphrase(*ks_r, p);
		secret_free(p);
	} else if (getenv("SMIME_PASSPHRASE") != NULL) {
		smime_keystore_set_passphrase(*ks_r, getenv("SMIME_PASSPHRASE"));
	} else {
		/* A new keystore's passphrase is asked twice; an existing one's once. */
		confirm = create && smime_keystore_count(*ks_r) == 0;
		smime_keystore_set_passphrase_cb(*ks_r, passphrase_cb, &confirm);
	}
	return EXIT_OK;
}

char *
p12_password(bool confirm, struct smime_error *err)
{
	const char *env = getenv("SMIME_P12_PASSWORD");

	if (g.password_file != NULL)
		return read_secret_file(g.password_file, err);
	if (env != NULL) {
		char *s = strdup(env);
		if (s == NULL)
			smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		return s;
	}
	return prompt(confirm ? "PKCS#12 export password: " : "PKCS#12 password: ", confirm);
}

BIO *
open_input(const char *path, struct smime_error *err)
{
	BIO *b;

	if (path == NULL || strcmp(path, "-") == 0) {
		b = BIO_new_fp(stdin, BIO_NOCLOSE);
	} else {
		b = BIO_new_file(path, "rb");
		if (b == NULL)
			smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	}
	return b;
}

/*
 * A filter over the temporary output file that starts the writeback of
 * every WRITEBACK_STEP bytes as soon as they are written
 * (sync_file_range, without waiting), so that the fsync before the rename
 * has little left to wait for: large outputs are durable at little cost.
 */
#define WRITEBACK_STEP (8 * 1024 * 1024)

struct writeback {
	int fd;
	off_t done, written;
};

static int
wb_write(BIO *b, const char *buf, int len)
{
	struct writeback *w = BIO_get_data(b);
	int n = BIO_write(BIO_next(b), buf, len);

	BIO_clear_retry_flags(b);
	BIO_copy_next_retry(b);
	if (n > 0) {
		w->written += n;
		if (w->written - w->done >= WRITEBACK_STEP) {
			/* Only a hint: an error here shows again at fsync. */
			(void)sync_file_range(w->fd, w->done, w->written - w->done,
			    SYNC_FILE_RANGE_WRITE);
			w->done = w->written;
		}
	}
	return n;
}

static long
wb_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	return BIO_ctrl(BIO_next(b), cmd, num, ptr);
}

static int
wb_destroy(BIO *b)
{
	free(BIO_get_data(b));
	BIO_set_data(b, NULL);
	return 1;
}

static BIO *
writeback_bio(int fd)
{
	static BIO_METHOD *m;
	struct writeback *w;
	BIO *b;

	if (m == NULL) {
		if ((m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "writeback")) == NULL)
			return NULL;
		BIO_meth_set_write(m, wb_write);
		BIO_meth_set_ctrl(m, wb_ctrl);
		BIO_meth_set_destroy(m, wb_destroy);
	}
	if ((w = calloc(1, sizeof(*w))) == NULL || (b = BIO_new(m)) == NULL) {
		free(w);
		return NULL;
	}
	w->fd = fd;
	BIO_set_data(b, w);
	BIO_set_init(b, 1);
	return b;
}

int
output_open(struct output *o, const char *path, struct smime_error *err)
{
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	if (path == NULL || strcmp(path, "-") == 0) {
		o->bio = BIO_new_fp(stdout, BIO_NOCLOSE);
		return o->bio ? 0 : smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	/* A device or a pipe (/dev/null, a FIFO) is written directly. */
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		o->bio = BIO_new_file(path, "wb");
		return o->bio ? 0 : smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	}
	/* Written beside the target and renamed on success: never a partial file. */
	size_t n = strlen(path) + 16;
	o->path = strdup(path);
	o->tmp = malloc(n);
	if (o->path == NULL || o->tmp == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	snprintf(o->tmp, n, "%s.tmpXXXXXX", path);
	int fd = mkstemp(o->tmp);
	if (fd < 0) {
		int e = errno;
		free(o->tmp);
		o->tmp = NULL;
		return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(e));
	}
	fchmod(fd, 0600);
	BIO *file = BIO_new_fd(fd, BIO_CLOSE), *wb = writeback_bio(fd);
	if (file == NULL || wb == NULL) {
		if (file != NULL)
			BIO_free(file);
		else
			close(fd);
		BIO_free(wb);
		unlink(o->tmp);
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	o->bio = BIO_push(wb, file);
	o->fd = fd;
	return 0;
}

int
output_close(struct output *o, bool ok, struct smime_error *err)
{
	int rc = 0;

	if (o->bio != NULL) {
		if (BIO_flush(o->bio) <= 0 && ok)
			rc = smime_error_set(err, SMIME_E_IO, "cannot write %s",
			    o->path ? o->path : "standard output");
		/* Durable before it takes the target's name. */
		if (o->tmp != NULL && ok && rc == 0 && fsync(o->fd) != 0)
			rc = smime_error_set(err, SMIME_E_IO, "%s: %s", o->path, strerror(errno));
		BIO_free_all(o->bio);
	}
	if (o->tmp != NULL) {
		if (ok && rc == 0) {
			if (rename(o->tmp, o->path) != 0)
				rc = smime_error_set(err, SMIME_E_IO, "%s: %s", o->path, strerror(errno));
		}
		if (!ok || rc != 0)
			unlink(o->tmp);
	}
	free(o->tmp);
	free(o->path);
	memset(o, 0, sizeof(*o));
	return rc;
}

const char *
time_iso(time_t t, char buf[32])
{
	struct tm tm;

	if (t == 0) {
		strcpy(buf, "-");
		return buf;
	}
	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* ISO 8601: 2019-03-01, 2019-03-01T12:00:00Z, 2019-03-01T12:00:00+01:00, or @EPOCH. */
bool
parse_time(const char *s, time_t *t_r)
{
	struct tm tm;
	const char *p;
	int off = 0;

	if (s[0] == '@') {
		char *end;
		long long v = strtoll(s + 1, &end, 10);
		if (*end != '\0' || end == s + 1)
			return false;
		*t_r = (time_t)v;
		return true;
	}
	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%d", &tm);
	if (p == NULL)
		return false;
	if (*p == 'T' || *p == ' ') {
		p = strptime(p + 1, "%H:%M", &tm);
		if (p == NULL)
			return false;
		if (*p == ':') {
			p = strptime(p + 1, "%S", &tm);
			if (p == NULL)
				return false;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm;
		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 && sscanf(p + 1, "%2d%2d", &hh, &mm) != 2)
			return false;
		off = (hh * 60 + mm) * 60 * (*p == '+' ? 1 : -1);
		p += strlen(p);
	}
	if (*p != '\0')
		return false;
	*t_r = timegm(&tm) - off;
	return true;
}

static const char *
kind_name(enum smime_layer_kind k)
{
	switch (k) {
	case SMIME_LAYER_SIGNED: return "signed (multipart/signed)";
	case SMIME_LAYER_OPAQUE_SIGNED: return "signed (opaque signed-data)";
	case SMIME_LAYER_ENVELOPED: return "encrypted (enveloped-data)";
	case SMIME_LAYER_AUTH_ENVELOPED: return "encrypted (authEnveloped-data)";
	case SMIME_LAYER_CERTS_ONLY: return "certificates only";
	}
	return "unknown";
}

static const char *
kind_key(enum smime_layer_kind k)
{
	switch (k) {
	case SMIME_LAYER_SIGNED: return "signed";
	case SMIME_LAYER_OPAQUE_SIGNED: return "opaque-signed";
	case SMIME_LAYER_ENVELOPED: return "enveloped";
	case SMIME_LAYER_AUTH_ENVELOPED: return "auth-enveloped";
	case SMIME_LAYER_CERTS_ONLY: return "certs-only";
	}
	return "unknown";
}

json_t *
report_json(const struct smime_report *r)
{
	json_t *layers = json_array(), *warnings = json_array(), *j;
	char tb[32];

	for (size_t i = 0; i < r->n_layers; i++) {
		const struct smime_layer *l = &r->layers[i];
		json_t *jl = json_pack("{s:s,s:s,s:s}", "kind", kind_key(l->kind),
		    "part", l->part[0] ? l->part : "root",
		    "status", l->status ? smime_code_name(l->status) : "ok");
		if (l->reason)
			json_object_set_new(jl, "reason", json_string(l->reason));
		if (l->n_signers > 0) {
			json_t *js = json_array();
			for (size_t k = 0; k < l->n_signers; k++) {
				const struct smime_signer *s = &l->signers[k];
				json_array_append_new(js, json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:s,s:b,s:s?}",
				    "status", s->status ? smime_code_name(s->status) : "ok",
				    "subject", s->subject, "emails", s->emails,
				    "fingerprint", s->fingerprint[0] ? s->fingerprint : NULL,
				    "digest", s->digest, "signature", s->signature_alg,
				    "signing_time", s->signing_time ? time_iso(s->signing_time, tb) : "-",
				    "chain_ok", s->chain_ok, "reason", s->reason));
			}
			json_object_set_new(jl, "signers", js);
		}
		if (l->kind == SMIME_LAYER_ENVELOPED || l->kind == SMIME_LAYER_AUTH_ENVELOPED) {
			json_t *jr = json_array();
			if (l->cipher)
				json_object_set_new(jl, "cipher", json_string(l->cipher));
			if (l->integrity)
				json_object_set_new(jl, "integrity", json_string(l->integrity));
			for (size_t k = 0; k < l->n_recipients; k++)
				json_array_append_new(jr, json_string(l->recipients[k]));
			json_object_set_new(jl, "recipients", jr);
			if (l->key[0])
				json_object_set_new(jl, "key", json_string(l->key));
		}
		json_array_append_new(layers, jl);
	}
	for (size_t i = 0; i < r->n_warnings; i++)
		json_array_append_new(warnings, json_string(r->warnings[i]));
	j = json_pack("{s:s,s:o,s:o}", "status", r->status ? smime_code_name(r->status) :
	    (r->n_warnings ? "warning" : "ok"), "layers", layers, "warnings", warnings);
	if (r->from)
		json_object_set_new(j, "from", json_string(r->from));
	if (r->covered)
		json_object_set_new(j, "covers", json_string(r->covered));
	return j;
}

void
print_report(const char *cmd, const struct smime_report *r, int rc, const struct smime_error *err)
{
	char tb[32];

	if (g.json) {
		json_t *j = report_json(r);
		if (rc != 0)
			json_object_set_new(j, "error", json_pack("{s:s,s:s,s:i}", "code",
			    smime_code_name(rc), "message", err->message, "exit", exit_code(rc)));
		char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s != NULL)
			fprintf(stderr, "%s\n", s);
		free(s);
		json_decref(j);
		return;
	}
	if (g.quiet && rc == 0 && r->n_warnings == 0)
		return;
	for (size_t i = 0; i < r->n_layers; i++) {
		const struct smime_layer *l = &r->layers[i];
		fprintf(stderr, "layer %zu: %s, part %s: %s%s%s\n", i + 1, kind_name(l->kind),
		    l->part[0] ? l->part : "root (the whole message)",
		    l->status ? "FAILED" : "ok", l->reason ? ": " : "", l->reason ? l->reason : "");
		for (size_t k = 0; k < l->n_signers; k++) {
			const struct smime_signer *s = &l->signers[k];
			fprintf(stderr, "  signer %zu: %s\n", k + 1, s->status ? "INVALID" : "valid");
			if (s->subject)
				fprintf(stderr, "    subject:      %s\n", s->subject);
			if (s->emails)
				fprintf(stderr, "    email:        %s\n", s->emails[0] ? s->emails : "(none)");
			if (s->fingerprint[0])
				fprintf(stderr, "    fingerprint:  SHA256:%s\n", s->fingerprint);
			fprintf(stderr, "    signed:       %s with %s/%s\n",
			    time_iso(s->signing_time, tb), s->signature_alg ? s->signature_alg : "?",
			    s->digest ? s->digest : "?");
			fprintf(stderr, "    chain:        %s\n", s->chain_ok ? "trusted" : "not trusted");
			if (s->reason)
				fprintf(stderr, "    reason:       %s\n", s->reason);
		}
		if (l->kind == SMIME_LAYER_ENVELOPED || l->kind == SMIME_LAYER_AUTH_ENVELOPED) {
			if (l->cipher)
				fprintf(stderr, "  cipher:     %s\n", l->cipher);
			if (l->integrity)
				fprintf(stderr, "  integrity:  %s\n", strcmp(l->integrity, "none") == 0 ?
				    "none (CBC without authentication: the ciphertext could have been "
				    "altered)" : "aead (authenticated)");
			for (size_t k = 0; k < l->n_recipients; k++)
				fprintf(stderr, "  recipient:  %s\n", l->recipients[k]);
			if (l->key[0])
				fprintf(stderr, "  key used:   SHA256:%s\n", l->key);
		}
	}
	if (r->covered && rc == 0)
		fprintf(stderr, "signature covers: %s%s\n", r->covered[0] >= '0' &&
		    r->covered[0] <= '9' ? "only part " : "", r->covered);
	for (size_t i = 0; i < r->n_warnings; i++)
		fprintf(stderr, "warning: %s\n", r->warnings[i]);
	if (rc != 0)
		fprintf(stderr, "smime %s: %s\n", cmd, err->message);
}

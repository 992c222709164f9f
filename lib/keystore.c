/*
 * keystore: one folder holding own identities (with their keys, the whole
 * history), contacts and trust anchors.
 *
 * On disk:
 *   index            the entries, one line each (format below), 0600
 *   certs/<fp>.der   each certificate, DER, 0600
 *   keys/<fp>.p8     each private key as a PKCS#8 EncryptedPrivateKeyInfo,
 *                    PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, 0600
 *   lock             taken with flock(LOCK_EX) while committing
 *   folders are 0700.  No private key is ever written in clear.
 *
 * The index is the only file read at open; certificates are read when
 * first needed and checked against their fingerprint, keys are read and
 * decrypted only for the one entry asked for.  Keys are found through hash
 * tables on sha256(DER issuer || DER serial) and on the subject key
 * identifier, which hold only entries that have a key.
 *
 * Commit writes certificate and key files first (temp file, fsync,
 * rename), then the new index to index.tmp, fsync, rename over index,
 * fsync of the folder; files of removed entries are deleted last.  A crash
 * at any point leaves either the old or the new index, each complete.
 *
 * Concurrent writers: every index carries a random generation in its
 * header.  Commit takes the lock and compares the generation on disk with
 * the one this handle read; when another process committed in between, it
 * reads that index again and applies this handle's changes (kept as a list
 * of operations: add, harvest, remove) on top, still under the lock, so
 * that no change is lost.  Readers need no lock, as the index is replaced
 * by rename; a reader holding an old index may find the files of an entry
 * removed since, which gives SMIME_E_IO naming the file.
 *
 * Index format (every field validated on read; anything else is damage):
 *   smime-keystore-index TAB 2 TAB <generation: 16 hex>
 *   then one line per entry, 14 fields separated by TAB (version 1, still
 *   read, has the first 13):
 *   fingerprint   64 lower-case hex, unique
 *   kind          identity | contact | anchor | ca | distrusted
 *   roles         0..7 (enum smime_cert_role mask)
 *   has_key       0 | 1 (an identity has a key)
 *   isn           64 hex: sha256(DER issuer || DER serial)
 *   ski           hex of the subject key identifier, or empty
 *   not_before, not_after, added   decimal seconds since the epoch
 *   emails        lower-case addresses joined by ',', or empty
 *   subject       RFC 2253, with \\ \t \n \r escaped
 *   caps          hex of DER SMIMECapabilities, or empty
 *   caps_time     decimal seconds; 0 when caps is empty
 *   preferred     decimal seconds: signing time of the newest message that
 *                 named this certificate as its signer's encryption key; 0
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "keystore_internal.h"

#define KS_HEADER        "smime-keystore-index"
#define KS_VERSION       "2"
#define KS_VERSION_OLD   "1"              /* read: 13 fields, no preferred */
#define KS_FIELDS        14
#define KS_FIELDS_OLD    13
#define KS_CERT_FILE_MAX (1024u * 1024)   /* one certificate file */
#define KS_KEY_FILE_MAX  (256u * 1024)    /* one key file */
#define KS_PASS_MAX      1024             /* passphrase from the callback */
#define KS_SALT_LEN      16
#define KS_EMAIL_MAX     254              /* RFC 5321 4.5.3.1.3 */
#define KS_PATH_MAX      4096

#define MSG_NEED_PASS "the keystore passphrase is needed: set SMIME_PASSPHRASE or use --passphrase-file"
#define MSG_WRONG_PASS "wrong keystore passphrase"

/* The hash tables: by fingerprint; by issuer+serial and by SKI (keyed entries only). */
enum { T_FP, T_ISN, T_SKI, T_COUNT };

struct ks_table {
	size_t *slots;  /* entry index + 1; 0 is empty */
	size_t cap;     /* a power of two, or 0 */
};

struct ks_entry {
	struct smime_entry pub;
	unsigned char fp[32];
	unsigned char isn[32];
	unsigned char ski[KEYSTORE_SKI_MAX];
	size_t ski_len;
	unsigned char ski_h[32];   /* sha256(ski), the table key */
	X509 *cert;                /* loaded when first needed, or staged */
	bool cert_staged;          /* certs/<fp>.der to be written at commit */
	unsigned char *p8;         /* staged encrypted key for keys/<fp>.p8 */
	size_t p8_len;
};

struct smime_keystore {
	char *dir;                 /* NULL when detached */
	struct ks_entry **e;
	size_t n, cap;
	struct ks_table tab[T_COUNT];
	char *pass;
	bool pass_from_cb;
	smime_passphrase_cb cb;
	void *cb_arg;
	char gen[17];              /* generation of the index read; "" when none */
	bool dirty;
	char (*removed)[65];       /* fingerprints whose files go after commit */
	size_t n_removed;
	struct ks_op *ops;         /* changes since the last commit, for merge() */
	size_t n_ops;
	int iterations;
	enum keystore_crash crash;
};

struct ks_op;
static void ops_clear(struct smime_keystore *ks);

/* --- small helpers --- */

static const char hexdig[] = "0123456789abcdef";

static void
hex_encode(const unsigned char *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hexdig[p[i] >> 4];
		out[2 * i + 1] = hexdig[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int
hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Lower-case hex of even length into out[max]; false when malformed or too long. */
static bool
hex_decode(const char *s, size_t len, unsigned char *out, size_t max, size_t *n_r)
{
	size_t i;
	int hi, lo;

	if (len % 2 != 0 || len / 2 > max)
		return false;
	for (i = 0; i < len / 2; i++) {
		hi = hex_val(s[2 * i]);
		lo = hex_val(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	*n_r = len / 2;
	return true;
}

static bool
sha256(const void *a, size_t an, const void *b, size_t bn, unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(ctx, a, an) && (bn == 0 || EVP_DigestUpdate(ctx, b, bn)) &&
	    EVP_DigestFinal_ex(ctx, out, NULL);
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* sha256(DER issuer || DER serial), the index key of IssuerAndSerialNumber. */
static bool
isn_hash(const X509_NAME *issuer, const ASN1_INTEGER *serial, unsigned char out[32])
{
	unsigned char *ni = NULL, *si = NULL;
	int nl, sl;
	bool ok = false;

	nl = i2d_X509_NAME(issuer, &ni);
	sl = i2d_ASN1_INTEGER(serial, &si);
	if (nl > 0 && sl > 0)
		ok = sha256(ni, (size_t)nl, si, (size_t)sl, out);
	OPENSSL_free(ni);
	OPENSSL_free(si);
	return ok;
}

static bool
asn1_time_t(const ASN1_TIME *t, time_t *r)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return false;
	*r = timegm(&tm);
	return true;
}

static const char *
kind_name(enum smime_entry_kind k)
{
	switch (k) {
	case SMIME_ENTRY_IDENTITY:	return "identity";
	case SMIME_ENTRY_CONTACT:	return "contact";
	case SMIME_ENTRY_ANCHOR:	return "anchor";
	case SMIME_ENTRY_CA:		return "ca";
	case SMIME_ENTRY_DISTRUSTED:	return "distrusted";
	}
	return NULL;
}

/* Order in which kinds only move upwards. */
static int
kind_rank(enum smime_entry_kind k)
{
	switch (k) {
	case SMIME_ENTRY_CONTACT:	return 0;
	case SMIME_ENTRY_CA:		return 1;
	case SMIME_ENTRY_IDENTITY:	return 2;
	case SMIME_ENTRY_ANCHOR:	return 3;
	/* Distrust overrides trust: importing it again as anything keeps it distrusted. */
	case SMIME_ENTRY_DISTRUSTED:	return 4;
	}
	return -1;
}

static int
ks_path(const struct smime_keystore *ks, char *buf, const char *sub, const char *fp,
    const char *ext, struct smime_error *err)
{
	int n;

	if (fp != NULL)
		n = snprintf(buf, KS_PATH_MAX, "%s/%s/%s%s", ks->dir, sub, fp, ext);
	else
		n = snprintf(buf, KS_PATH_MAX, "%s/%s", ks->dir, sub);
	if (n < 0 || n >= KS_PATH_MAX)
		return smime_error_set(err, SMIME_E_USAGE, "keystore path too long");
	return 0;
}

/* Read a whole regular file of at most max bytes. */
static int
file_read(const char *path, size_t max, unsigned char **data_r, size_t *len_r,
    struct smime_error *err)
{
	struct stat st;
	unsigned char *data = NULL;
	size_t got = 0;
	ssize_t r;
	int fd, rc = 0;

	*data_r = NULL;
	*len_r = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return smime_error_set(err, SMIME_E_NOTFOUND, "%s: missing", path);
		return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = smime_error_set(err, SMIME_E_IO, "%s: not a regular file", path);
		goto out;
	}
	if ((uintmax_t)st.st_size > max) {
		rc = smime_error_set(err, SMIME_E_INPUT, "%s: larger than the limit of %zu bytes",
		    path, max);
		goto out;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, data + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = smime_error_set(err, SMIME_E_IO, "%s: short read", path);
			goto out;
		}
		got += (size_t)r;
	}
	data[got] = '\0';
	*data_r = data;
	*len_r = got;
	data = NULL;
out:
	free(data);
	close(fd);
	return rc;
}

/* Write data to path.tmp (0600), fsync it; with rename, move it over path. */
static int
file_write(const char *path, const void *data, size_t len, bool do_rename,
    struct smime_error *err)
{
	char tmp[KS_PATH_MAX + 8];
	const unsigned char *p = data;
	size_t done = 0;
	ssize_t w;
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return smime_error_set(err, SMIME_E_USAGE, "keystore path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", tmp, strerror(errno));
	if (fchmod(fd, 0600) != 0) {
		rc = smime_error_set(err, SMIME_E_IO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	while (done < len) {
		w = write(fd, p + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = smime_error_set(err, SMIME_E_IO, "%s: %s", tmp, strerror(errno));
			goto out;
		}
		done += (size_t)w;
	}
	if (fsync(fd) != 0) {
		rc = smime_error_set(err, SMIME_E_IO, "%s: fsync: %s", tmp, strerror(errno));
		goto out;
	}
out:
	if (close(fd) != 0 && rc == 0)
		rc = smime_error_set(err, SMIME_E_IO, "%s: %s", tmp, strerror(errno));
	if (rc == 0 && do_rename && rename(tmp, path) != 0)
		rc = smime_error_set(err, SMIME_E_IO, "%s: rename: %s", path, strerror(errno));
	if (rc != 0)
		unlink(tmp);
	return rc;
}

static int
dir_sync(const char *path, struct smime_error *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	if (fsync(fd) != 0)
		rc = smime_error_set(err, SMIME_E_IO, "%s: fsync: %s", path, strerror(errno));
	close(fd);
	return rc;
}

/* mkdir -p with 0700 for every folder it creates. */
static int
mkdir_p(const char *dir, struct smime_error *err)
{
	char path[KS_PATH_MAX];
	size_t i, len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return smime_error_set(err, SMIME_E_USAGE, "keystore path empty or too long");
	memcpy(path, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
		path[i] = i == len ? '\0' : '/';
	}
	return 0;
}

/* --- entries and their tables --- */

static void
entry_free(struct ks_entry *e)
{
	if (e == NULL)
		return;
	free(e->pub.subject);
	free(e->pub.emails);
	free(e->pub.caps);
	X509_free(e->cert);
	if (e->p8 != NULL) {
		OPENSSL_cleanse(e->p8, e->p8_len);
		free(e->p8);
	}
	free(e);
}

static const unsigned char *
tab_key(const struct ks_entry *e, int which)
{
	switch (which) {
	case T_FP:
		return e->fp;
	case T_ISN:
		return e->pub.has_key ? e->isn : NULL;
	case T_SKI:
		return e->pub.has_key && e->ski_len > 0 ? e->ski_h : NULL;
	}
	return NULL;
}

static size_t
tab_hash(const unsigned char key[32])
{
	size_t h;

	/* The keys are SHA-256 outputs: their first bytes are a fine hash. */
	memcpy(&h, key, sizeof(h));
	return h;
}

static void
tab_insert(struct ks_table *t, const unsigned char *key, size_t idx)
{
	size_t i = tab_hash(key) & (t->cap - 1);

	while (t->slots[i] != 0)
		i = (i + 1) & (t->cap - 1);
	t->slots[i] = idx + 1;
}

/* Rebuild every table for ks->n entries (and room for growth). */
static int
tab_rebuild(struct smime_keystore *ks, struct smime_error *err)
{
	size_t cap = 16, i;
	int w;
	const unsigned char *k;

	while (cap < 2 * ks->n + 2)
		cap *= 2;
	for (w = 0; w < T_COUNT; w++) {
		size_t *slots = calloc(cap, sizeof(*slots));

		if (slots == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		free(ks->tab[w].slots);
		ks->tab[w].slots = slots;
		ks->tab[w].cap = cap;
		for (i = 0; i < ks->n; i++)
			if ((k = tab_key(ks->e[i], w)) != NULL)
				tab_insert(&ks->tab[w], k, i);
	}
	return 0;
}

/*
 * The next entry in table `which` whose key is key.  *cursor starts at 0;
 * returns false when there are no more.  Costs the same for 1 and 1000
 * entries: the tables are at most half full.
 */
static bool
tab_next(const struct smime_keystore *ks, int which, const unsigned char key[32],
    size_t *cursor, size_t *idx_r)
{
	const struct ks_table *t = &ks->tab[which];
	const unsigned char *k;
	size_t i, idx;

	if (t->cap == 0)
		return false;
	i = *cursor == 0 ? tab_hash(key) & (t->cap - 1) : *cursor & (t->cap - 1);
	while (t->slots[i] != 0) {
		idx = t->slots[i] - 1;
		i = (i + 1) & (t->cap - 1);
		k = tab_key(ks->e[idx], which);
		if (k != NULL && memcmp(k, key, 32) == 0) {
			*cursor = i == 0 ? t->cap : i;
			*idx_r = idx;
			return true;
		}
	}
	return false;
}

static struct ks_entry *
find_fp(const struct smime_keystore *ks, const unsigned char fp[32])
{
	size_t cursor = 0, idx;

	return tab_next(ks, T_FP, fp, &cursor, &idx) ? ks->e[idx] : NULL;
}

/* Append e (taking it) and index it; a duplicate fingerprint is refused. */
static int
entry_append(struct smime_keystore *ks, struct ks_entry *e, struct smime_error *err)
{
	struct ks_entry **ne;
	size_t cap;
	int w, rc;
	const unsigned char *k;

	if (find_fp(ks, e->fp) != NULL) {
		entry_free(e);
		return smime_error_set(err, SMIME_E_INPUT, "duplicate fingerprint");
	}
	if (ks->n >= SMIME_KEYSTORE_MAX_ENTRIES) {
		entry_free(e);
		return smime_error_set(err, SMIME_E_INPUT, "more than %d entries",
		    SMIME_KEYSTORE_MAX_ENTRIES);
	}
	if (ks->n == ks->cap) {
		cap = ks->cap == 0 ? 16 : ks->cap * 2;
		if ((ne = realloc(ks->e, cap * sizeof(*ne))) == NULL) {
			entry_free(e);
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		}
		ks->e = ne;
		ks->cap = cap;
	}
	ks->e[ks->n++] = e;
	if (2 * ks->n + 2 > ks->tab[T_FP].cap) {
		if ((rc = tab_rebuild(ks, err)) != 0) {
			entry_free(ks->e[--ks->n]);
			return rc;
		}
		return 0;
	}
	for (w = 0; w < T_COUNT; w++)
		if ((k = tab_key(e, w)) != NULL)
			tab_insert(&ks->tab[w], k, ks->n - 1);
	return 0;
}

static void
entries_clear(struct smime_keystore *ks)
{
	size_t i;
	int w;

	for (i = 0; i < ks->n; i++)
		entry_free(ks->e[i]);
	free(ks->e);
	ks->e = NULL;
	ks->n = ks->cap = 0;
	for (w = 0; w < T_COUNT; w++) {
		free(ks->tab[w].slots);
		ks->tab[w].slots = NULL;
		ks->tab[w].cap = 0;
	}
}

/* True when the comma-separated list holds address (ASCII case-insensitive). */
static bool
emails_has(const char *list, const char *address)
{
	size_t alen = strlen(address), l;
	const char *p = list, *c;

	if (alen == 0)
		return false;
	while (*p != '\0') {
		c = strchr(p, ',');
		l = c != NULL ? (size_t)(c - p) : strlen(p);
		if (l == alen && strncasecmp(p, address, l) == 0)
			return true;
		if (c == NULL)
			break;
		p = c + 1;
	}
	return false;
}

/* --- the index: parsing --- */

struct field {
	const char *p;
	size_t len;
};

static bool
parse_int(const struct field *f, int64_t *r)
{
	char buf[24];
	char *end;
	long long v;
	size_t digits;

	/* Canonical decimal only: no sign on zero, no leading zeros. */
	if (f->len == 0 || f->len >= sizeof(buf))
		return false;
	memcpy(buf, f->p, f->len);
	buf[f->len] = '\0';
	digits = buf[0] == '-' ? f->len - 1 : f->len;
	if (digits == 0 || strspn(buf + (buf[0] == '-'), "0123456789") != digits)
		return false;
	if (buf[buf[0] == '-'] == '0' && (digits > 1 || buf[0] == '-'))
		return false;
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*r = v;
	return true;
}

static bool
field_is(const struct field *f, const char *s)
{
	return f->len == strlen(s) && memcmp(f->p, s, f->len) == 0;
}

/* The addresses field: lower-case, unique-free check not needed, bounded. */
static bool
parse_emails(const struct field *f, char **r)
{
	size_t i, start = 0, count = 0, at = SIZE_MAX;
	unsigned char c;

	for (i = 0; i <= f->len && f->len > 0; i++) {
		if (i == f->len || f->p[i] == ',') {
			size_t l = i - start;

			if (l == 0 || l > KS_EMAIL_MAX || at == SIZE_MAX || at == start ||
			    at == i - 1 || ++count > SMIME_CERT_MAX_EMAILS)
				return false;
			start = i + 1;
			at = SIZE_MAX;
			continue;
		}
		c = (unsigned char)f->p[i];
		if (c <= 0x20 || c == 0x7f || (c >= 'A' && c <= 'Z'))
			return false;
		if (c == '@')
			at = i;
	}
	if ((*r = strndup(f->p, f->len)) == NULL)
		return false;
	return true;
}

static bool
parse_subject(const struct field *f, char **r)
{
	char *s;
	size_t i, n = 0;
	unsigned char c;
	bool ok = false;

	if ((s = malloc(f->len + 1)) == NULL)
		return false;
	for (i = 0; i < f->len; i++) {
		c = (unsigned char)f->p[i];
		if (c < 0x20 || c == 0x7f)
			goto out;
		if (c == '\\') {
			if (++i == f->len)
				goto out;
			switch (f->p[i]) {
			case '\\': c = '\\'; break;
			case 't': c = '\t'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			default: goto out;
			}
		}
		if (n >= KEYSTORE_SUBJECT_MAX)
			goto out;
		s[n++] = (char)c;
	}
	s[n] = '\0';
	*r = s;
	s = NULL;
	ok = true;
out:
	free(s);
	return ok;
}

/* DER SMIMECapabilities (RFC 8551 2.5.2): a SEQUENCE OF AlgorithmIdentifier. */
static bool
caps_valid(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509_ALGORS *algs;
	bool ok;

	if (len == 0 || len > KEYSTORE_CAPS_MAX)
		return false;
	algs = d2i_X509_ALGORS(NULL, &p, (long)len);
	ok = algs != NULL && p == der + len;
	sk_X509_ALGOR_pop_free(algs, X509_ALGOR_free);
	ERR_clear_error();
	return ok;
}

static int
line_error(struct smime_error *err, size_t ln, const char *what)
{
	return smime_error_set(err, SMIME_E_INPUT, "keystore index line %zu: %s", ln, what);
}

static int
parse_entry(struct smime_keystore *ks, const struct field *f, size_t nf, size_t ln,
    struct smime_error *err)
{
	struct ks_entry *e;
	unsigned char caps[KEYSTORE_CAPS_MAX];
	size_t n;
	int64_t v;
	const char *bad = NULL;
	int rc;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if (f[0].len != 64 || !hex_decode(f[0].p, 64, e->fp, 32, &n)) {
		bad = "fingerprint: not 64 lower-case hex digits";
		goto out;
	}
	memcpy(e->pub.fingerprint, f[0].p, 64);
	e->pub.fingerprint[64] = '\0';
	if (field_is(&f[1], "identity"))
		e->pub.kind = SMIME_ENTRY_IDENTITY;
	else if (field_is(&f[1], "contact"))
		e->pub.kind = SMIME_ENTRY_CONTACT;
	else if (field_is(&f[1], "anchor"))
		e->pub.kind = SMIME_ENTRY_ANCHOR;
	else if (field_is(&f[1], "ca"))
		e->pub.kind = SMIME_ENTRY_CA;
	else if (field_is(&f[1], "distrusted"))
		e->pub.kind = SMIME_ENTRY_DISTRUSTED;
	else {
		bad = "kind: not identity, contact, anchor, ca or distrusted";
		goto out;
	}
	if (f[2].len != 1 || f[2].p[0] < '0' || f[2].p[0] > '7') {
		bad = "roles: not a mask 0..7";
		goto out;
	}
	e->pub.roles = f[2].p[0] - '0';
	if (field_is(&f[3], "0") || field_is(&f[3], "1"))
		e->pub.has_key = f[3].p[0] == '1';
	else {
		bad = "has_key: not 0 or 1";
		goto out;
	}
	if (e->pub.kind == SMIME_ENTRY_IDENTITY && !e->pub.has_key) {
		bad = "an identity without a key";
		goto out;
	}
	if (f[4].len != 64 || !hex_decode(f[4].p, 64, e->isn, 32, &n)) {
		bad = "issuer and serial hash: not 64 lower-case hex digits";
		goto out;
	}
	if (!hex_decode(f[5].p, f[5].len, e->ski, sizeof(e->ski), &e->ski_len)) {
		bad = "subject key identifier: not hex of at most 64 octets";
		goto out;
	}
	if (e->ski_len > 0 && !sha256(e->ski, e->ski_len, NULL, 0, e->ski_h)) {
		bad = "subject key identifier: cannot hash";
		goto out;
	}
	if (!parse_int(&f[6], &v)) {
		bad = "notBefore: not a decimal time";
		goto out;
	}
	e->pub.not_before = (time_t)v;
	if (!parse_int(&f[7], &v)) {
		bad = "notAfter: not a decimal time";
		goto out;
	}
	e->pub.not_after = (time_t)v;
	if (!parse_int(&f[8], &v)) {
		bad = "added: not a decimal time";
		goto out;
	}
	e->pub.added = (time_t)v;
	if (f[9].len == 0)
		e->pub.emails = strdup("");
	else if (!parse_emails(&f[9], &e->pub.emails)) {
		bad = "emails: not lower-case addresses joined by commas";
		goto out;
	}
	if (e->pub.emails == NULL) {
		bad = "out of memory";
		goto out;
	}
	if (!parse_subject(&f[10], &e->pub.subject)) {
		bad = "subject: bad escape, control character or too long";
		goto out;
	}
	if (f[11].len > 0) {
		if (!hex_decode(f[11].p, f[11].len, caps, sizeof(caps), &n) ||
		    !caps_valid(caps, n)) {
			bad = "caps: not hex of a DER SMIMECapabilities";
			goto out;
		}
		if ((e->pub.caps = malloc(n)) == NULL) {
			bad = "out of memory";
			goto out;
		}
		memcpy(e->pub.caps, caps, n);
		e->pub.caps_len = n;
	}
	if (!parse_int(&f[12], &v) || (e->pub.caps == NULL && v != 0)) {
		bad = "caps_time: not a decimal time (0 without caps)";
		goto out;
	}
	e->pub.caps_time = (time_t)v;
	if (nf > KS_FIELDS_OLD) {
		if (!parse_int(&f[13], &v)) {
			bad = "preferred: not a decimal time";
			goto out;
		}
		e->pub.preferred = (time_t)v;
	}
out:
	if (bad != NULL) {
		entry_free(e);
		return line_error(err, ln, bad);
	}
	if ((rc = entry_append(ks, e, err)) != 0) {
		char why[SMIME_ERROR_MAX];

		snprintf(why, sizeof(why), "%s", err != NULL ? err->message : "cannot add");
		return line_error(err, ln, why);
	}
	return 0;
}

/* Split one line (without its newline) at tabs into exactly KS_FIELDS fields. */
static size_t
split_fields(const char *p, size_t len, struct field *f, size_t max)
{
	size_t n = 0, start = 0, i;

	for (i = 0; i <= len; i++) {
		if (i < len && p[i] != '\t')
			continue;
		if (n == max)
			return max + 1;
		f[n].p = p + start;
		f[n].len = i - start;
		n++;
		start = i + 1;
	}
	return n;
}

static bool
parse_header(const char *p, size_t len, char gen[17], size_t *fields_r)
{
	struct field f[4];
	unsigned char g[8];
	size_t n;

	if (split_fields(p, len, f, 3) != 3 || !field_is(&f[0], KS_HEADER))
		return false;
	if (field_is(&f[1], KS_VERSION))
		*fields_r = KS_FIELDS;
	else if (field_is(&f[1], KS_VERSION_OLD))
		*fields_r = KS_FIELDS_OLD;
	else
		return false;
	if (f[2].len != 16 || !hex_decode(f[2].p, 16, g, sizeof(g), &n))
		return false;
	memcpy(gen, f[2].p, 16);
	gen[16] = '\0';
	return true;
}

int
keystore_index_parse(struct smime_keystore *ks, const unsigned char *data, size_t len,
    struct smime_error *err)
{
	const char *p = (const char *)data, *nl;
	struct field f[KS_FIELDS];
	size_t off = 0, ln = 0, l, nf, want = KS_FIELDS;
	char what[80];
	int rc = 0;

	entries_clear(ks);
	ks->gen[0] = '\0';
	if (len > KEYSTORE_INDEX_MAX)
		return smime_error_set(err, SMIME_E_INPUT,
		    "keystore index larger than the limit of %u bytes", KEYSTORE_INDEX_MAX);
	if ((rc = tab_rebuild(ks, err)) != 0)
		return rc;
	while (off < len) {
		ln++;
		l = len - off;
		if (l > KEYSTORE_LINE_MAX + 1)
			l = KEYSTORE_LINE_MAX + 1;
		nl = memchr(p + off, '\n', l);
		if (nl == NULL) {
			rc = line_error(err, ln, l > KEYSTORE_LINE_MAX ?
			    "longer than the limit" : "truncated (no newline)");
			goto out;
		}
		l = (size_t)(nl - (p + off));
		if (memchr(p + off, '\0', l) != NULL) {
			rc = line_error(err, ln, "NUL byte");
			goto out;
		}
		if (ln == 1) {
			if (!parse_header(p + off, l, ks->gen, &want)) {
				rc = line_error(err, ln, "not a keystore index header "
				    "(" KS_HEADER " version " KS_VERSION_OLD " or " KS_VERSION ")");
				goto out;
			}
		} else {
			nf = split_fields(p + off, l, f, want);
			if (nf != want) {
				snprintf(what, sizeof(what), "%s fields, expected %zu",
				    nf > want ? "too many" : "too few", want);
				rc = line_error(err, ln, what);
				goto out;
			}
			if ((rc = parse_entry(ks, f, nf, ln, err)) != 0)
				goto out;
		}
		off += l + 1;
	}
	if (ln == 0)
		rc = line_error(err, 1, "empty (no header)");
out:
	if (rc != 0) {
		entries_clear(ks);
		ks->gen[0] = '\0';
	}
	return rc;
}

/* --- the index: writing --- */

static int
add_escaped(struct buf *b, const char *s, struct smime_error *err)
{
	const char *esc;
	size_t run;
	int rc;

	while (*s != '\0') {
		run = strcspn(s, "\\\t\n\r");
		if (run > 0 && (rc = buf_add(b, s, run, err)) != 0)
			return rc;
		s += run;
		if (*s == '\0')
			break;
		esc = *s == '\\' ? "\\\\" : *s == '\t' ? "\\t" : *s == '\n' ? "\\n" : "\\r";
		if ((rc = buf_add(b, esc, 2, err)) != 0)
			return rc;
		s++;
	}
	return 0;
}

int
keystore_index_write(struct smime_keystore *ks, struct buf *b, struct smime_error *err)
{
	char line[512], ski[2 * KEYSTORE_SKI_MAX + 1], isn[65];
	char *caps = NULL;
	const struct ks_entry *e;
	size_t i;
	int rc;

	snprintf(line, sizeof(line), "%s\t%s\t%s\n", KS_HEADER, KS_VERSION,
	    ks->gen[0] != '\0' ? ks->gen : "0000000000000000");
	if ((rc = buf_adds(b, line, err)) != 0)
		return rc;
	if ((caps = malloc(2 * KEYSTORE_CAPS_MAX + 1)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	for (i = 0; i < ks->n; i++) {
		e = ks->e[i];
		hex_encode(e->isn, 32, isn);
		hex_encode(e->ski, e->ski_len, ski);
		snprintf(line, sizeof(line), "%s\t%s\t%d\t%d\t%s\t%s\t%" PRId64 "\t%" PRId64
		    "\t%" PRId64 "\t", e->pub.fingerprint, kind_name(e->pub.kind), e->pub.roles,
		    e->pub.has_key ? 1 : 0, isn, ski, (int64_t)e->pub.not_before,
		    (int64_t)e->pub.not_after, (int64_t)e->pub.added);
		if ((rc = buf_adds(b, line, err)) != 0 ||
		    (rc = buf_adds(b, e->pub.emails, err)) != 0 ||
		    (rc = buf_adds(b, "\t", err)) != 0 ||
		    (rc = add_escaped(b, e->pub.subject, err)) != 0)
			goto out;
		hex_encode(e->pub.caps != NULL ? e->pub.caps : (const unsigned char *)"",
		    e->pub.caps_len, caps);
		snprintf(line, sizeof(line), "\t%" PRId64 "\t%" PRId64 "\n",
		    (int64_t)e->pub.caps_time, (int64_t)e->pub.preferred);
		if ((rc = buf_adds(b, "\t", err)) != 0 || (rc = buf_adds(b, caps, err)) != 0 ||
		    (rc = buf_adds(b, line, err)) != 0)
			goto out;
	}
out:
	free(caps);
	return rc;
}

/* --- open, free, passphrase --- */

static struct smime_keystore *
ks_alloc(void)
{
	struct smime_keystore *ks = calloc(1, sizeof(*ks));

	if (ks != NULL)
		ks->iterations = KEYSTORE_PBKDF2_ITER;
	return ks;
}

struct smime_keystore *
keystore_new_detached(void)
{
	return ks_alloc();
}

void
keystore_test_set_iterations(struct smime_keystore *ks, int iterations)
{
	if (iterations >= KEYSTORE_PBKDF2_ITER_MIN && iterations <= KEYSTORE_PBKDF2_ITER_MAX)
		ks->iterations = iterations;
}

void
keystore_test_set_crash(struct smime_keystore *ks, enum keystore_crash point)
{
	ks->crash = point;
}

int
smime_keystore_open(const char *dir, unsigned flags, struct smime_keystore **ks_r,
    struct smime_error *err)
{
	struct smime_keystore *ks = NULL;
	struct stat st;
	char path[KS_PATH_MAX];
	unsigned char *data = NULL;
	size_t len = 0;
	int rc;

	*ks_r = NULL;
	if (dir == NULL || dir[0] == '\0')
		return smime_error_set(err, SMIME_E_USAGE, "no keystore folder given");
	if (stat(dir, &st) != 0) {
		if (errno != ENOENT)
			return smime_error_set(err, SMIME_E_IO, "%s: %s", dir, strerror(errno));
		if (!(flags & SMIME_KEYSTORE_CREATE))
			return smime_error_set(err, SMIME_E_NOTFOUND, "no keystore at %s", dir);
		if ((rc = mkdir_p(dir, err)) != 0)
			return rc;
	} else if (!S_ISDIR(st.st_mode))
		return smime_error_set(err, SMIME_E_IO, "%s: not a folder", dir);
	if ((ks = ks_alloc()) == NULL || (ks->dir = strdup(dir)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = tab_rebuild(ks, err)) != 0)
		goto out;
	if ((rc = ks_path(ks, path, "index", NULL, NULL, err)) != 0)
		goto out;
	rc = file_read(path, KEYSTORE_INDEX_MAX, &data, &len, err);
	if (rc == SMIME_E_NOTFOUND) {
		/* A new keystore: no index until the first commit. */
		smime_error_clear(err);
		rc = 0;
	} else if (rc != 0)
		goto out;
	else if ((rc = keystore_index_parse(ks, data, len, err)) != 0)
		goto out;
	*ks_r = ks;
	ks = NULL;
out:
	free(data);
	smime_keystore_free(ks);
	return rc;
}

static void
pass_clear(struct smime_keystore *ks)
{
	if (ks->pass != NULL) {
		OPENSSL_cleanse(ks->pass, strlen(ks->pass));
		free(ks->pass);
	}
	ks->pass = NULL;
	ks->pass_from_cb = false;
}

void
smime_keystore_free(struct smime_keystore *ks)
{
	if (ks == NULL)
		return;
	entries_clear(ks);
	ops_clear(ks);
	pass_clear(ks);
	free(ks->removed);
	free(ks->dir);
	free(ks);
}

void
smime_keystore_set_passphrase(struct smime_keystore *ks, const char *passphrase)
{
	pass_clear(ks);
	if (passphrase != NULL)
		ks->pass = strdup(passphrase);
}

void
smime_keystore_set_passphrase_cb(struct smime_keystore *ks, smime_passphrase_cb cb,
    void *arg)
{
	ks->cb = cb;
	ks->cb_arg = arg;
}

/* The passphrase: set, or asked once through the callback. */
static int
need_pass(struct smime_keystore *ks, struct smime_error *err)
{
	char buf[KS_PASS_MAX];
	int rc = 0;

	if (ks->pass != NULL && ks->pass[0] != '\0')
		return 0;
	pass_clear(ks);
	if (ks->cb == NULL)
		return smime_error_set(err, SMIME_E_USAGE, MSG_NEED_PASS);
	memset(buf, 0, sizeof(buf));
	if (ks->cb(ks->cb_arg, buf, sizeof(buf)) != 0 ||
	    memchr(buf, '\0', sizeof(buf)) == NULL || buf[0] == '\0') {
		rc = smime_error_set(err, SMIME_E_USAGE, MSG_NEED_PASS);
		goto out;
	}
	if ((ks->pass = strdup(buf)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	ks->pass_from_cb = true;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/* --- counting and looking up --- */

size_t
smime_keystore_count(const struct smime_keystore *ks)
{
	return ks != NULL ? ks->n : 0;
}

const struct smime_entry *
smime_keystore_entry(const struct smime_keystore *ks, size_t i)
{
	return ks != NULL && i < ks->n ? &ks->e[i]->pub : NULL;
}

/* Index of the entry with this fingerprint or unique prefix (>= 8), or SIZE_MAX. */
static size_t
lookup_index(const struct smime_keystore *ks, const char *fingerprint)
{
	unsigned char fp[32];
	char low[65];
	size_t len, i, n, found = SIZE_MAX, cursor = 0, idx;

	if (ks == NULL || fingerprint == NULL)
		return SIZE_MAX;
	len = strlen(fingerprint);
	if (len < 8 || len > 64)
		return SIZE_MAX;
	for (i = 0; i < len; i++) {
		low[i] = (char)((fingerprint[i] >= 'A' && fingerprint[i] <= 'F') ?
		    fingerprint[i] - 'A' + 'a' : fingerprint[i]);
		if (hex_val(low[i]) < 0)
			return SIZE_MAX;
	}
	low[len] = '\0';
	if (len == 64) {
		if (!hex_decode(low, 64, fp, 32, &n) || !tab_next(ks, T_FP, fp, &cursor, &idx))
			return SIZE_MAX;
		return idx;
	}
	for (i = 0; i < ks->n; i++) {
		if (strncmp(ks->e[i]->pub.fingerprint, low, len) != 0)
			continue;
		if (found != SIZE_MAX)
			return SIZE_MAX;  /* ambiguous */
		found = i;
	}
	return found;
}

const struct smime_entry *
smime_keystore_lookup(const struct smime_keystore *ks, const char *fingerprint)
{
	size_t i = lookup_index(ks, fingerprint);

	return i == SIZE_MAX ? NULL : &ks->e[i]->pub;
}

static int
entry_by_fp(struct smime_keystore *ks, const char *fingerprint, struct ks_entry **e_r,
    struct smime_error *err)
{
	size_t i = lookup_index(ks, fingerprint);

	if (i == SIZE_MAX)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no keystore entry %.64s",
		    fingerprint != NULL ? fingerprint : "(none)");
	*e_r = ks->e[i];
	return 0;
}

/* The certificate of e, read from certs/ and checked against the fingerprint. */
static int
load_cert(struct smime_keystore *ks, struct ks_entry *e, struct smime_error *err)
{
	char path[KS_PATH_MAX];
	unsigned char *data = NULL, md[32];
	const unsigned char *p;
	size_t len;
	X509 *c = NULL;
	int rc;

	if (e->cert != NULL)
		return 0;
	if (ks->dir == NULL)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no certificate file");
	if ((rc = ks_path(ks, path, "certs", e->pub.fingerprint, ".der", err)) != 0)
		return rc;
	if ((rc = file_read(path, KS_CERT_FILE_MAX, &data, &len, err)) != 0) {
		if (rc == SMIME_E_NOTFOUND)
			rc = smime_error_set(err, SMIME_E_IO,
			    "keystore certificate file %s is missing", path);
		goto out;
	}
	if (!sha256(data, len, NULL, 0, md) || memcmp(md, e->fp, 32) != 0) {
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "keystore certificate file %s does not match its fingerprint", path);
		goto out;
	}
	p = data;
	if ((c = d2i_X509(NULL, &p, (long)len)) == NULL || p != data + len) {
		rc = smime_error_ssl(err, SMIME_E_INPUT,
		    "keystore certificate file %s does not decode", path);
		goto out;
	}
	e->cert = c;
	c = NULL;
out:
	X509_free(c);
	free(data);
	return rc;
}

int
smime_keystore_cert(struct smime_keystore *ks, const char *fingerprint, X509 **cert_r,
    struct smime_error *err)
{
	struct ks_entry *e = NULL;
	int rc;

	*cert_r = NULL;
	if ((rc = entry_by_fp(ks, fingerprint, &e, err)) != 0 ||
	    (rc = load_cert(ks, e, err)) != 0)
		return rc;
	X509_up_ref(e->cert);
	*cert_r = e->cert;
	return 0;
}

/* --- private keys at rest --- */

/* Encrypt key under the passphrase as a DER EncryptedPrivateKeyInfo. */
static int
key_encrypt(struct smime_keystore *ks, EVP_PKEY *key, unsigned char **der_r,
    size_t *len_r, struct smime_error *err)
{
	PKCS8_PRIV_KEY_INFO *p8i = NULL;
	X509_ALGOR *pbe = NULL;
	X509_SIG *sig = NULL;
	unsigned char *der = NULL, *copy;
	int len, rc;

	if ((rc = need_pass(ks, err)) != 0)
		return rc;
	if ((p8i = EVP_PKEY2PKCS8(key)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "cannot encode the private key");
		goto out;
	}
	/* RFC 8018 6.2 PBES2, A.2 PBKDF2 with hmacWithSHA256, B.2.5 aes256-CBC-Pad. */
	pbe = PKCS5_pbe2_set_iv_ex(EVP_aes_256_cbc(), ks->iterations, NULL, KS_SALT_LEN,
	    NULL, NID_hmacWithSHA256, NULL);
	if (pbe == NULL) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "cannot set up PBES2");
		goto out;
	}
	if ((sig = PKCS8_set0_pbe_ex(ks->pass, (int)strlen(ks->pass), p8i, pbe, NULL,
	    NULL)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "cannot encrypt the private key");
		goto out;
	}
	pbe = NULL;  /* owned by sig */
	if ((len = i2d_X509_SIG(sig, &der)) <= 0) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "cannot encode the encrypted key");
		goto out;
	}
	if ((copy = malloc((size_t)len)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	memcpy(copy, der, (size_t)len);
	*der_r = copy;
	*len_r = (size_t)len;
out:
	OPENSSL_free(der);
	X509_SIG_free(sig);
	X509_ALGOR_free(pbe);
	PKCS8_PRIV_KEY_INFO_free(p8i);
	return rc;
}

/*
 * The protection of a key file must be what we write: PBES2, PBKDF2 with
 * hmacWithSHA256 and a bounded iteration count, AES-256-CBC.  This refuses
 * a file swapped for a weaker scheme and bounds the cost of a hostile one.
 */
static bool
key_protection_ok(const X509_SIG *sig)
{
	const X509_ALGOR *alg, *prf;
	const ASN1_OBJECT *obj;
	const void *pval;
	PBE2PARAM *pbe2 = NULL;
	PBKDF2PARAM *kdf = NULL;
	int ptype;
	long iter;
	bool ok = false;

	X509_SIG_get0(sig, &alg, NULL);
	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	if (OBJ_obj2nid(obj) != NID_pbes2 || ptype != V_ASN1_SEQUENCE)
		goto out;
	if ((pbe2 = ASN1_item_unpack(pval, ASN1_ITEM_rptr(PBE2PARAM))) == NULL)
		goto out;
	X509_ALGOR_get0(&obj, NULL, NULL, pbe2->encryption);
	if (OBJ_obj2nid(obj) != NID_aes_256_cbc)
		goto out;
	X509_ALGOR_get0(&obj, &ptype, &pval, pbe2->keyfunc);
	if (OBJ_obj2nid(obj) != NID_id_pbkdf2 || ptype != V_ASN1_SEQUENCE)
		goto out;
	if ((kdf = ASN1_item_unpack(pval, ASN1_ITEM_rptr(PBKDF2PARAM))) == NULL)
		goto out;
	iter = ASN1_INTEGER_get(kdf->iter);
	if (iter < KEYSTORE_PBKDF2_ITER_MIN || iter > KEYSTORE_PBKDF2_ITER_MAX)
		goto out;
	if (kdf->keylength != NULL && ASN1_INTEGER_get(kdf->keylength) != 32)
		goto out;
	prf = kdf->prf;
	if (prf == NULL)
		goto out;
	X509_ALGOR_get0(&obj, NULL, NULL, prf);
	ok = OBJ_obj2nid(obj) == NID_hmacWithSHA256;
out:
	PBKDF2PARAM_free(kdf);
	PBE2PARAM_free(pbe2);
	ERR_clear_error();
	return ok;
}

int
smime_keystore_key(struct smime_keystore *ks, const char *fingerprint, EVP_PKEY **key_r,
    struct smime_error *err)
{
	struct ks_entry *e = NULL;
	char path[KS_PATH_MAX];
	unsigned char *file = NULL;
	const unsigned char *der, *p;
	size_t len;
	X509_SIG *sig = NULL;
	PKCS8_PRIV_KEY_INFO *p8i = NULL;
	EVP_PKEY *key = NULL;
	int rc;

	*key_r = NULL;
	if ((rc = entry_by_fp(ks, fingerprint, &e, err)) != 0)
		return rc;
	if (!e->pub.has_key)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no private key for %.16s",
		    e->pub.fingerprint);
	if ((rc = ks_path(ks, path, "keys", e->pub.fingerprint, ".p8", err)) != 0)
		return rc;
	if (e->p8 != NULL) {
		der = e->p8;
		len = e->p8_len;
	} else {
		if ((rc = file_read(path, KS_KEY_FILE_MAX, &file, &len, err)) != 0) {
			if (rc == SMIME_E_NOTFOUND)
				rc = smime_error_set(err, SMIME_E_IO,
				    "keystore key file %s is missing", path);
			goto out;
		}
		der = file;
	}
	p = der;
	if ((sig = d2i_X509_SIG(NULL, &p, (long)len)) == NULL || p != der + len) {
		rc = smime_error_ssl(err, SMIME_E_INPUT, "keystore key file %s does not decode",
		    path);
		goto out;
	}
	if (!key_protection_ok(sig)) {
		rc = smime_error_set(err, SMIME_E_INPUT, "keystore key file %s is not protected "
		    "by PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) within the limits", path);
		goto out;
	}
	if ((rc = load_cert(ks, e, err)) != 0 || (rc = need_pass(ks, err)) != 0)
		goto out;
	p8i = PKCS8_decrypt_ex(sig, ks->pass, (int)strlen(ks->pass), NULL, NULL);
	if (p8i == NULL || (key = EVP_PKCS82PKEY_ex(p8i, NULL, NULL)) == NULL) {
		ERR_clear_error();
		/* Ask again next time when the wrong one came from the callback. */
		if (ks->pass_from_cb)
			pass_clear(ks);
		rc = smime_error_set(err, SMIME_E_CRYPTO, MSG_WRONG_PASS);
		goto out;
	}
	/* CBC has no integrity: a tampered file shows as a key that does not fit. */
	if (EVP_PKEY_eq(X509_get0_pubkey(e->cert), key) != 1) {
		ERR_clear_error();
		rc = smime_error_set(err, SMIME_E_CRYPTO,
		    "keystore key file %s does not match its certificate (damaged)", path);
		goto out;
	}
	*key_r = key;
	key = NULL;
out:
	EVP_PKEY_free(key);
	PKCS8_PRIV_KEY_INFO_free(p8i);
	X509_SIG_free(sig);
	free(file);
	return rc;
}

/* --- changes --- */

/* A new entry describing cert; the caller sets kind and key. */
static int
entry_from_cert(X509 *cert, struct ks_entry **e_r, struct smime_error *err)
{
	struct ks_entry *e;
	const ASN1_OCTET_STRING *ski;
	STACK_OF(OPENSSL_STRING) *emails = NULL;
	struct buf b;
	unsigned char *joined;
	size_t jl;
	char *subject = NULL;
	int i, rc = 0;

	*e_r = NULL;
	buf_init(&b, (size_t)SMIME_CERT_MAX_EMAILS * (KS_EMAIL_MAX + 1) + 1);
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	smime_cert_fingerprint(cert, e->pub.fingerprint);
	if (strlen(e->pub.fingerprint) != 64 ||
	    !hex_decode(e->pub.fingerprint, 64, e->fp, 32, &jl)) {
		rc = smime_error_ssl(err, SMIME_E_INPUT, "cannot fingerprint the certificate");
		goto out;
	}
	if (!isn_hash(X509_get_issuer_name(cert), X509_get0_serialNumber(cert), e->isn)) {
		rc = smime_error_ssl(err, SMIME_E_INPUT,
		    "cannot encode the certificate's issuer and serial number");
		goto out;
	}
	ski = X509_get0_subject_key_id(cert);
	if (ski != NULL && ASN1_STRING_length(ski) > 0 &&
	    ASN1_STRING_length(ski) <= KEYSTORE_SKI_MAX) {
		e->ski_len = (size_t)ASN1_STRING_length(ski);
		memcpy(e->ski, ASN1_STRING_get0_data(ski), e->ski_len);
		if (!sha256(e->ski, e->ski_len, NULL, 0, e->ski_h)) {
			rc = smime_error_ssl(err, SMIME_E_INTERNAL, "SHA-256 failed");
			goto out;
		}
	}
	if (!asn1_time_t(X509_get0_notBefore(cert), &e->pub.not_before) ||
	    !asn1_time_t(X509_get0_notAfter(cert), &e->pub.not_after)) {
		rc = smime_error_set(err, SMIME_E_INPUT, "the certificate's validity does not decode");
		goto out;
	}
	e->pub.roles = smime_cert_roles(cert);
	e->pub.added = time(NULL);
	if ((subject = smime_cert_subject(cert)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INPUT, "cannot print the certificate's subject");
		goto out;
	}
	/* Display only: a subject beyond the limit is cut. */
	jl = strnlen(subject, KEYSTORE_SUBJECT_MAX);
	if ((e->pub.subject = strndup(subject, jl)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if ((emails = smime_cert_emails(cert)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; i < sk_OPENSSL_STRING_num(emails); i++) {
		if ((i > 0 && (rc = buf_adds(&b, ",", err)) != 0) ||
		    (rc = buf_adds(&b, sk_OPENSSL_STRING_value(emails, i), err)) != 0)
			goto out;
	}
	if ((rc = buf_add(&b, "", 1, err)) != 0)
		goto out;
	buf_take(&b, &joined, &jl);
	e->pub.emails = (char *)joined;
	X509_up_ref(cert);
	e->cert = cert;
	e->cert_staged = true;
	*e_r = e;
	e = NULL;
out:
	for (i = 0; emails != NULL && i < sk_OPENSSL_STRING_num(emails); i++)
		OPENSSL_free(sk_OPENSSL_STRING_value(emails, i));
	sk_OPENSSL_STRING_free(emails);
	OPENSSL_free(subject);
	buf_free(&b);
	entry_free(e);
	return rc;
}

/* Forget a pending deletion of fp's files (it was added again). */
static void
unremove(struct smime_keystore *ks, const char *fp)
{
	size_t i;

	for (i = 0; i < ks->n_removed; i++) {
		if (strcmp(ks->removed[i], fp) == 0) {
			memmove(&ks->removed[i], &ks->removed[i + 1],
			    (ks->n_removed - i - 1) * sizeof(ks->removed[0]));
			ks->n_removed--;
			return;
		}
	}
}

/*
 * Every change is applied to the entries at once and also kept as an
 * operation, so that commit can apply it again on top of an index that
 * another process committed in the meantime.
 */
enum ks_op_type { OP_ADD, OP_HARVEST, OP_REMOVE, OP_PREFER };

struct ks_op {
	enum ks_op_type type;
	X509 *cert;                  /* ADD, HARVEST */
	enum smime_entry_kind kind;  /* ADD */
	unsigned char *p8;           /* ADD: the encrypted key, or NULL */
	size_t p8_len;
	unsigned char *caps;         /* HARVEST: or NULL */
	size_t caps_len;
	time_t caps_time;            /* HARVEST; PREFER: the signing time */
	char fp[65];                 /* REMOVE */
};

static void
op_clear(struct ks_op *op)
{
	X509_free(op->cert);
	if (op->p8 != NULL) {
		OPENSSL_cleanse(op->p8, op->p8_len);
		free(op->p8);
	}
	free(op->caps);
	memset(op, 0, sizeof(*op));
}

static void
ops_clear(struct smime_keystore *ks)
{
	size_t i;

	for (i = 0; i < ks->n_ops; i++)
		op_clear(&ks->ops[i]);
	free(ks->ops);
	ks->ops = NULL;
	ks->n_ops = 0;
}

/* Append a copy of op (the certificate gets a new reference). */
static int
op_log(struct smime_keystore *ks, const struct ks_op *op, struct smime_error *err)
{
	struct ks_op *n, copy = *op;

	copy.cert = NULL;
	copy.p8 = copy.caps = NULL;
	if (op->p8 != NULL && (copy.p8 = malloc(op->p8_len)) == NULL)
		goto oom;
	if (op->caps != NULL && (copy.caps = malloc(op->caps_len)) == NULL)
		goto oom;
	if ((n = realloc(ks->ops, (ks->n_ops + 1) * sizeof(*n))) == NULL)
		goto oom;
	ks->ops = n;
	if (op->p8 != NULL)
		memcpy(copy.p8, op->p8, op->p8_len);
	if (op->caps != NULL)
		memcpy(copy.caps, op->caps, op->caps_len);
	if (op->cert != NULL) {
		X509_up_ref(op->cert);
		copy.cert = op->cert;
	}
	ks->ops[ks->n_ops++] = copy;
	return 0;
oom:
	op_clear(&copy);
	return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
}

static int
cert_fp(X509 *cert, unsigned char fp[32], char hex[65], struct smime_error *err)
{
	size_t n;

	smime_cert_fingerprint(cert, hex);
	if (strlen(hex) != 64 || !hex_decode(hex, 64, fp, 32, &n))
		return smime_error_ssl(err, SMIME_E_INPUT, "cannot fingerprint the certificate");
	return 0;
}

/* Copy of p[n] (malloc), or NULL when p is NULL; *fail_r on OOM. */
static unsigned char *
dup_bytes(const unsigned char *p, size_t n, bool *fail_r)
{
	unsigned char *c;

	if (p == NULL)
		return NULL;
	if ((c = malloc(n)) == NULL)
		*fail_r = true;
	else
		memcpy(c, p, n);
	return c;
}

/* Apply an ADD to the entries; *changed_r says whether anything changed. */
static int
apply_add(struct smime_keystore *ks, const struct ks_op *op, bool *changed_r,
    struct smime_error *err)
{
	struct ks_entry *e = NULL, *old;
	enum smime_entry_kind kind = op->kind;
	unsigned char fp[32], *p8;
	char hex[65];
	bool fail = false, attach;
	int rc;

	*changed_r = false;
	if ((rc = cert_fp(op->cert, fp, hex, err)) != 0)
		return rc;
	old = find_fp(ks, fp);
	/* An identity is an entry with its key (RFC 8551 has no keyless identity). */
	if (kind == SMIME_ENTRY_IDENTITY && op->p8 == NULL && (old == NULL || !old->pub.has_key))
		return smime_error_set(err, SMIME_E_USAGE, "an identity needs its private key");
	attach = op->p8 != NULL && (old == NULL || !old->pub.has_key);
	if (attach && kind_rank(kind) < kind_rank(SMIME_ENTRY_IDENTITY))
		kind = SMIME_ENTRY_IDENTITY;
	if (old != NULL) {
		if (attach) {
			if ((p8 = dup_bytes(op->p8, op->p8_len, &fail)) == NULL || fail)
				return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			old->p8 = p8;
			old->p8_len = op->p8_len;
			old->pub.has_key = true;
			*changed_r = true;
		}
		if (kind_rank(kind) > kind_rank(old->pub.kind)) {
			old->pub.kind = kind;
			*changed_r = true;
		}
		return *changed_r ? tab_rebuild(ks, err) : 0;
	}
	if ((rc = entry_from_cert(op->cert, &e, err)) != 0)
		return rc;
	if (attach) {
		if ((e->p8 = dup_bytes(op->p8, op->p8_len, &fail)) == NULL || fail) {
			entry_free(e);
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		}
		e->p8_len = op->p8_len;
		e->pub.has_key = true;
	}
	e->pub.kind = kind;
	if ((rc = entry_append(ks, e, err)) != 0)
		return rc;
	unremove(ks, hex);
	*changed_r = true;
	return 0;
}

static int
apply_harvest(struct smime_keystore *ks, const struct ks_op *op, bool *changed_r,
    struct smime_error *err)
{
	struct ks_entry *e;
	unsigned char fp[32], *copy;
	char hex[65];
	bool fail = false;
	int rc;

	*changed_r = false;
	if ((rc = cert_fp(op->cert, fp, hex, err)) != 0)
		return rc;
	if ((e = find_fp(ks, fp)) == NULL) {
		if ((rc = entry_from_cert(op->cert, &e, err)) != 0)
			return rc;
		e->pub.kind = SMIME_ENTRY_CONTACT;  /* never an anchor */
		if ((rc = entry_append(ks, e, err)) != 0)
			return rc;
		unremove(ks, hex);
		*changed_r = true;
	}
	/* Newer capabilities replace older ones. */
	if (op->caps != NULL && (e->pub.caps == NULL || op->caps_time > e->pub.caps_time)) {
		if ((copy = dup_bytes(op->caps, op->caps_len, &fail)) == NULL || fail)
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		free(e->pub.caps);
		e->pub.caps = copy;
		e->pub.caps_len = op->caps_len;
		e->pub.caps_time = op->caps_time;
		*changed_r = true;
	}
	return 0;
}

/* Apply a PREFER: the certificate (a contact when new) named at op->caps_time. */
static int
apply_prefer(struct smime_keystore *ks, const struct ks_op *op, bool *changed_r,
    struct smime_error *err)
{
	struct ks_op h = *op;
	int rc;

	h.caps = NULL;
	h.caps_len = 0;
	if ((rc = apply_harvest(ks, &h, changed_r, err)) != 0)
		return rc;
	{
		struct ks_entry *e;
		unsigned char fp[32];
		char hex[65];
		if ((rc = cert_fp(op->cert, fp, hex, err)) != 0)
			return rc;
		if ((e = find_fp(ks, fp)) != NULL && op->caps_time > e->pub.preferred) {
			e->pub.preferred = op->caps_time;
			*changed_r = true;
		}
	}
	return 0;
}

/* Remove entry i; its files go after the next commit. */
static int
apply_remove(struct smime_keystore *ks, size_t i, struct smime_error *err)
{
	char (*nr)[65];

	if ((nr = realloc(ks->removed, (ks->n_removed + 1) * sizeof(*nr))) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	ks->removed = nr;
	memcpy(ks->removed[ks->n_removed++], ks->e[i]->pub.fingerprint, 65);
	entry_free(ks->e[i]);
	memmove(&ks->e[i], &ks->e[i + 1], (ks->n - i - 1) * sizeof(ks->e[0]));
	ks->n--;
	return tab_rebuild(ks, err);
}

int
smime_keystore_add(struct smime_keystore *ks, X509 *cert, EVP_PKEY *key,
    enum smime_entry_kind kind, bool *added_r, struct smime_error *err)
{
	struct ks_op op;
	struct ks_entry *old;
	unsigned char fp[32];
	char hex[65];
	bool changed = false;
	int rc;

	memset(&op, 0, sizeof(op));
	if (added_r != NULL)
		*added_r = false;
	if (ks == NULL || cert == NULL || kind_rank(kind) < 0)
		return smime_error_set(err, SMIME_E_USAGE, "keystore add: no certificate or bad kind");
	if (key != NULL && EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
		ERR_clear_error();
		return smime_error_set(err, SMIME_E_USAGE,
		    "the private key does not belong to the certificate");
	}
	if ((rc = cert_fp(cert, fp, hex, err)) != 0)
		return rc;
	old = find_fp(ks, fp);
	if (key == NULL && kind == SMIME_ENTRY_IDENTITY && (old == NULL || !old->pub.has_key))
		return smime_error_set(err, SMIME_E_USAGE, "an identity needs its private key");
	op.type = OP_ADD;
	op.cert = cert;
	op.kind = kind;
	/* Encrypt first, so that nothing changes when the passphrase is missing. */
	if (key != NULL && (old == NULL || !old->pub.has_key) &&
	    (rc = key_encrypt(ks, key, &op.p8, &op.p8_len, err)) != 0)
		goto out;
	if ((rc = apply_add(ks, &op, &changed, err)) != 0)
		goto out;
	if (changed) {
		ks->dirty = true;
		if ((rc = op_log(ks, &op, err)) != 0)
			goto out;
	}
	if (added_r != NULL)
		*added_r = changed;
out:
	op.cert = NULL;  /* the caller's reference */
	op_clear(&op);
	return rc;
}

int
smime_keystore_harvest(struct smime_keystore *ks, X509 *cert, const unsigned char *caps,
    size_t caps_len, time_t signing_time, struct smime_error *err)
{
	struct ks_op op;
	bool changed = false;
	int rc;

	if (ks == NULL || cert == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "keystore harvest: no certificate");
	if (caps != NULL && caps_len == 0)
		caps = NULL;
	/* RFC 8551 2.5.2: SMIMECapabilities ::= SEQUENCE OF SMIMECapability. */
	if (caps != NULL && !caps_valid(caps, caps_len))
		return smime_error_set(err, SMIME_E_INPUT,
		    "RFC 8551 2.5.2: SMIMECapabilities do not decode or exceed %d octets",
		    KEYSTORE_CAPS_MAX);
	memset(&op, 0, sizeof(op));
	op.type = OP_HARVEST;
	op.cert = cert;
	op.caps = (unsigned char *)caps;  /* borrowed; op_log copies */
	op.caps_len = caps != NULL ? caps_len : 0;
	op.caps_time = signing_time;
	if ((rc = apply_harvest(ks, &op, &changed, err)) != 0)
		return rc;
	if (!changed)
		return 0;
	ks->dirty = true;
	return op_log(ks, &op, err);
}

int
smime_keystore_prefer(struct smime_keystore *ks, X509 *cert, time_t signing_time,
    struct smime_error *err)
{
	struct ks_op op;
	bool changed = false;
	int rc;

	if (ks == NULL || cert == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "keystore prefer: no certificate");
	if (signing_time <= 0)
		signing_time = time(NULL);
	memset(&op, 0, sizeof(op));
	op.type = OP_PREFER;
	op.cert = cert;
	op.caps_time = signing_time;
	if ((rc = apply_prefer(ks, &op, &changed, err)) != 0)
		return rc;
	if (!changed)
		return 0;
	ks->dirty = true;
	return op_log(ks, &op, err);
}

void
smime_keystore_caps(const struct smime_keystore *ks, const char *address,
    const unsigned char **caps_r, size_t *caps_len_r)
{
	const struct smime_entry *best = NULL;

	*caps_r = NULL;
	*caps_len_r = 0;
	if (ks == NULL || address == NULL)
		return;
	for (size_t i = 0; i < ks->n; i++) {
		const struct smime_entry *p = &ks->e[i]->pub;
		if (p->caps == NULL || (p->kind != SMIME_ENTRY_CONTACT &&
		    p->kind != SMIME_ENTRY_IDENTITY) || !emails_has(p->emails, address))
			continue;
		if (best == NULL || p->caps_time > best->caps_time)
			best = p;
	}
	if (best != NULL) {
		*caps_r = best->caps;
		*caps_len_r = best->caps_len;
	}
}

int
smime_keystore_remove(struct smime_keystore *ks, const char *fingerprint,
    struct smime_error *err)
{
	struct ks_op op;
	size_t i = lookup_index(ks, fingerprint);
	int rc;

	if (i == SIZE_MAX)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no keystore entry %.64s",
		    fingerprint != NULL ? fingerprint : "(none)");
	memset(&op, 0, sizeof(op));
	op.type = OP_REMOVE;
	memcpy(op.fp, ks->e[i]->pub.fingerprint, 65);
	if ((rc = apply_remove(ks, i, err)) != 0)
		return rc;
	ks->dirty = true;
	return op_log(ks, &op, err);
}

/*
 * Another process committed since we read the index: read it again and
 * apply our operations on top, so that neither change is lost.  Called
 * with the lock held.  On failure ks is unchanged.
 */
static int
merge(struct smime_keystore *ks, struct smime_error *err)
{
	struct smime_keystore *fresh;
	char path[KS_PATH_MAX];
	unsigned char *data = NULL;
	size_t len = 0, i, idx;
	bool changed;
	int rc, w;

	if ((fresh = ks_alloc()) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	fresh->dir = ks->dir;  /* borrowed */
	if ((rc = tab_rebuild(fresh, err)) != 0 ||
	    (rc = ks_path(ks, path, "index", NULL, NULL, err)) != 0)
		goto out;
	rc = file_read(path, KEYSTORE_INDEX_MAX, &data, &len, err);
	if (rc == SMIME_E_NOTFOUND)
		rc = 0;
	else if (rc != 0 || (rc = keystore_index_parse(fresh, data, len, err)) != 0)
		goto out;
	for (i = 0; i < ks->n_ops && rc == 0; i++) {
		const struct ks_op *op = &ks->ops[i];

		switch (op->type) {
		case OP_ADD:
			rc = apply_add(fresh, op, &changed, err);
			break;
		case OP_HARVEST:
			rc = apply_harvest(fresh, op, &changed, err);
			break;
		case OP_PREFER:
			rc = apply_prefer(fresh, op, &changed, err);
			break;
		case OP_REMOVE:
			/* Already gone when the other process removed it too. */
			if ((idx = lookup_index(fresh, op->fp)) != SIZE_MAX)
				rc = apply_remove(fresh, idx, err);
			break;
		}
	}
	if (rc != 0)
		goto out;
	/* Take over the merged entries. */
	entries_clear(ks);
	ks->e = fresh->e;
	ks->n = fresh->n;
	ks->cap = fresh->cap;
	for (w = 0; w < T_COUNT; w++)
		ks->tab[w] = fresh->tab[w];
	memcpy(ks->gen, fresh->gen, sizeof(ks->gen));
	free(ks->removed);
	ks->removed = fresh->removed;
	ks->n_removed = fresh->n_removed;
	fresh->e = NULL;
	fresh->n = fresh->cap = 0;
	memset(fresh->tab, 0, sizeof(fresh->tab));
	fresh->removed = NULL;
	fresh->n_removed = 0;
out:
	free(data);
	fresh->dir = NULL;
	smime_keystore_free(fresh);
	return rc;
}

/* The generation in the header of the index on disk now; "" when there is none. */
static int
disk_generation(struct smime_keystore *ks, char gen[17], struct smime_error *err)
{
	char path[KS_PATH_MAX], head[128];
	const char *nl;
	ssize_t r;
	size_t nf;
	int fd, rc;

	gen[0] = '\0';
	if ((rc = ks_path(ks, path, "index", NULL, NULL, err)) != 0)
		return rc;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)
			return 0;
		return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	}
	r = read(fd, head, sizeof(head) - 1);
	close(fd);
	if (r < 0)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	head[r] = '\0';
	if ((nl = memchr(head, '\n', (size_t)r)) == NULL ||
	    !parse_header(head, (size_t)(nl - head), gen, &nf))
		return smime_error_set(err, SMIME_E_INPUT,
		    "keystore index line 1: not a keystore index header");
	return 0;
}

/* Write the staged certificate and key files of every entry. */
static int
commit_files(struct smime_keystore *ks, struct smime_error *err)
{
	char path[KS_PATH_MAX];
	unsigned char *der = NULL;
	struct ks_entry *e;
	size_t i;
	int len, rc = 0;

	for (i = 0; i < ks->n; i++) {
		e = ks->e[i];
		if (e->cert_staged) {
			if ((len = i2d_X509(e->cert, &der)) <= 0) {
				rc = smime_error_ssl(err, SMIME_E_INTERNAL,
				    "cannot encode a certificate");
				goto out;
			}
			if ((rc = ks_path(ks, path, "certs", e->pub.fingerprint, ".der", err)) != 0 ||
			    (rc = file_write(path, der, (size_t)len, true, err)) != 0)
				goto out;
			OPENSSL_free(der);
			der = NULL;
		}
		if (e->p8 != NULL) {
			if ((rc = ks_path(ks, path, "keys", e->pub.fingerprint, ".p8", err)) != 0 ||
			    (rc = file_write(path, e->p8, e->p8_len, true, err)) != 0)
				goto out;
		}
	}
	if ((rc = ks_path(ks, path, "certs", NULL, NULL, err)) != 0 ||
	    (rc = dir_sync(path, err)) != 0 ||
	    (rc = ks_path(ks, path, "keys", NULL, NULL, err)) != 0 ||
	    (rc = dir_sync(path, err)) != 0)
		goto out;
out:
	OPENSSL_free(der);
	return rc;
}

int
smime_keystore_commit(struct smime_keystore *ks, struct smime_error *err)
{
	char path[KS_PATH_MAX], gen[17], old_gen[17];
	unsigned char g[8];
	struct buf b;
	struct ks_entry *e;
	size_t i;
	int lock = -1, rc;

	if (ks == NULL || ks->dir == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "keystore commit: no folder");
	if (!ks->dirty)
		return 0;
	buf_init(&b, KEYSTORE_INDEX_MAX);
	memcpy(old_gen, ks->gen, sizeof(old_gen));
	if ((rc = ks_path(ks, path, "certs", NULL, NULL, err)) != 0)
		goto out;
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		rc = smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((rc = ks_path(ks, path, "keys", NULL, NULL, err)) != 0)
		goto out;
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		rc = smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((rc = ks_path(ks, path, "lock", NULL, NULL, err)) != 0)
		goto out;
	lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock < 0) {
		rc = smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	while ((rc = flock(lock, LOCK_EX)) != 0 && errno == EINTR)
		;
	if (rc != 0) {
		rc = smime_error_set(err, SMIME_E_IO, "%s: flock: %s", path, strerror(errno));
		goto out;
	}
	if ((rc = disk_generation(ks, gen, err)) != 0)
		goto out;
	if (strcmp(gen, ks->gen) != 0) {
		if ((rc = merge(ks, err)) != 0)
			goto out;
		memcpy(old_gen, ks->gen, sizeof(old_gen));
	}
	if ((rc = commit_files(ks, err)) != 0)
		goto out;
	if (ks->crash == KEYSTORE_CRASH_AFTER_FILES) {
		rc = smime_error_set(err, SMIME_E_IO, "simulated crash after the files");
		goto out;
	}
	if (RAND_bytes(g, sizeof(g)) != 1) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "no random bytes");
		goto out;
	}
	hex_encode(g, sizeof(g), ks->gen);
	if ((rc = keystore_index_write(ks, &b, err)) != 0 ||
	    (rc = ks_path(ks, path, "index", NULL, NULL, err)) != 0 ||
	    (rc = file_write(path, b.data, b.len, false, err)) != 0)
		goto out;
	if (ks->crash == KEYSTORE_CRASH_BEFORE_RENAME) {
		rc = smime_error_set(err, SMIME_E_IO, "simulated crash before the rename");
		goto out;
	}
	{
		char tmp[KS_PATH_MAX + 8];

		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		if (rename(tmp, path) != 0) {
			rc = smime_error_set(err, SMIME_E_IO, "%s: rename: %s", path,
			    strerror(errno));
			unlink(tmp);
			goto out;
		}
	}
	if ((rc = dir_sync(ks->dir, err)) != 0)
		goto out;
	/* Committed.  Drop what was staged, then the files of removed entries. */
	for (i = 0; i < ks->n; i++) {
		e = ks->e[i];
		e->cert_staged = false;
		if (e->p8 != NULL) {
			OPENSSL_cleanse(e->p8, e->p8_len);
			free(e->p8);
			e->p8 = NULL;
			e->p8_len = 0;
		}
	}
	for (i = 0; i < ks->n_removed; i++) {
		if (ks_path(ks, path, "certs", ks->removed[i], ".der", NULL) == 0)
			unlink(path);
		if (ks_path(ks, path, "keys", ks->removed[i], ".p8", NULL) == 0)
			unlink(path);
	}
	ks->n_removed = 0;
	ops_clear(ks);
	ks->dirty = false;
out:
	if (rc != 0)
		memcpy(ks->gen, old_gen, sizeof(old_gen));
	if (lock >= 0)
		close(lock);  /* releases the flock */
	buf_free(&b);
	return rc;
}

/* --- finding keys and certificates for a message --- */

int
smime_keystore_find_key(struct smime_keystore *ks, const X509_NAME *issuer,
    const ASN1_INTEGER *serial, const ASN1_OCTET_STRING *ski, X509 **cert_r,
    EVP_PKEY **key_r, struct smime_error *err)
{
	unsigned char key[32];
	size_t cursor = 0, idx;
	int which, rc;
	struct ks_entry *e;
	const ASN1_OCTET_STRING *cski;
	bool by_isn = issuer != NULL && serial != NULL;

	if (cert_r != NULL)
		*cert_r = NULL;
	if (key_r != NULL)
		*key_r = NULL;
	if (ks == NULL || by_isn == (ski != NULL) || (ski == NULL && (issuer != NULL) != (serial != NULL)))
		return smime_error_set(err, SMIME_E_USAGE,
		    "find key: give issuer and serial number, or a subject key identifier");
	if (by_isn) {
		which = T_ISN;
		if (!isn_hash(issuer, serial, key))
			return smime_error_ssl(err, SMIME_E_INPUT,
			    "recipient issuer and serial number do not encode");
	} else {
		which = T_SKI;
		if (ASN1_STRING_length(ski) <= 0 || ASN1_STRING_length(ski) > KEYSTORE_SKI_MAX)
			goto notfound;
		if (!sha256(ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski), NULL, 0,
		    key))
			return smime_error_ssl(err, SMIME_E_INTERNAL, "SHA-256 failed");
	}
	while (tab_next(ks, which, key, &cursor, &idx)) {
		e = ks->e[idx];
		if ((rc = load_cert(ks, e, err)) != 0)
			return rc;
		/* Confirm on the certificate itself, not only on the index. */
		if (by_isn) {
			if (X509_NAME_cmp(X509_get_issuer_name(e->cert), issuer) != 0 ||
			    ASN1_INTEGER_cmp(X509_get0_serialNumber(e->cert), serial) != 0)
				continue;
		} else {
			cski = X509_get0_subject_key_id(e->cert);
			if (cski == NULL || ASN1_OCTET_STRING_cmp(cski, ski) != 0)
				continue;
		}
		if (key_r != NULL && (rc = smime_keystore_key(ks, e->pub.fingerprint, key_r,
		    err)) != 0)
			return rc;
		if (cert_r != NULL) {
			X509_up_ref(e->cert);
			*cert_r = e->cert;
		}
		return 0;
	}
notfound:
	return smime_error_set(err, SMIME_E_NOTFOUND, "no own key for this recipient (%s)",
	    by_isn ? "issuer and serial number" : "subject key identifier");
}

/*
 * The best entry for which accept() holds, valid at `at`: the newest
 * notBefore, then the latest notAfter, then the lower fingerprint.  Its
 * certificate must allow emailProtection; entries whose certificate does
 * not are passed over.  Returns the index or SIZE_MAX (with err set when a
 * certificate could not be read).
 */
static int
choose(struct smime_keystore *ks, int role, const char *address, time_t at, bool own,
    size_t *idx_r, struct smime_error *err)
{
	bool *skip = NULL, any_distrusted = false, distrusted;
	const struct smime_entry *p, *b;
	size_t i, best;
	int rc = 0;

	*idx_r = SIZE_MAX;
	if (ks->n == 0)
		return 0;
	for (i = 0; i < ks->n && !any_distrusted; i++)
		any_distrusted = ks->e[i]->pub.kind == SMIME_ENTRY_DISTRUSTED;
	if ((skip = calloc(ks->n, sizeof(*skip))) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	for (;;) {
		best = SIZE_MAX;
		for (i = 0; i < ks->n; i++) {
			p = &ks->e[i]->pub;
			if (skip[i] || !(p->roles & role) || at < p->not_before || at > p->not_after ||
			    p->kind == SMIME_ENTRY_DISTRUSTED)
				continue;
			if (own && !p->has_key)
				continue;
			if (!own && p->kind != SMIME_ENTRY_CONTACT && p->kind != SMIME_ENTRY_IDENTITY)
				continue;
			if (address != NULL && !emails_has(p->emails, address))
				continue;
			if (best != SIZE_MAX) {
				b = &ks->e[best]->pub;
				/* RFC 8551 2.5.3: the certificate a correspondent named last. */
				if (!own && p->preferred != b->preferred) {
					if (p->preferred < b->preferred)
						continue;
					best = i;
					continue;
				}
				if (p->not_before < b->not_before ||
				    (p->not_before == b->not_before && (p->not_after < b->not_after ||
				    (p->not_after == b->not_after &&
				    strcmp(p->fingerprint, b->fingerprint) > 0))))
					continue;
			}
			best = i;
		}
		if (best == SIZE_MAX)
			break;
		if ((rc = load_cert(ks, ks->e[best], err)) != 0)
			break;
		/* A certificate under a distrusted CA is passed over like a distrusted one. */
		distrusted = false;
		if (any_distrusted && (rc = keystore_chain_distrusted(ks, ks->e[best]->cert,
		    &distrusted, err)) != 0)
			break;
		if (!distrusted && smime_cert_email_protection(ks->e[best]->cert)) {
			*idx_r = best;
			break;
		}
		skip[best] = true;
	}
	free(skip);
	return rc;
}

int
smime_keystore_identity(struct smime_keystore *ks, int role, const char *address,
    time_t at, char fp_r[65], struct smime_error *err)
{
	size_t idx;
	int rc;

	fp_r[0] = '\0';
	if (ks == NULL || (role != SMIME_ROLE_SIGN && role != SMIME_ROLE_ENCRYPT))
		return smime_error_set(err, SMIME_E_USAGE,
		    "identity: the role is SMIME_ROLE_SIGN or SMIME_ROLE_ENCRYPT");
	if (at == 0)
		at = time(NULL);
	if ((rc = choose(ks, role, address, at, true, &idx, err)) != 0)
		return rc;
	if (idx == SIZE_MAX)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no valid %s certificate with a "
		    "key for %s in the keystore", role == SMIME_ROLE_SIGN ? "signing" : "encryption",
		    address != NULL ? address : "any address");
	memcpy(fp_r, ks->e[idx]->pub.fingerprint, 65);
	return 0;
}

int
smime_keystore_recipient(struct smime_keystore *ks, const char *address, time_t at,
    const struct smime_entry **entry_r, X509 **cert_r, struct smime_error *err)
{
	size_t idx;
	int rc;

	if (entry_r != NULL)
		*entry_r = NULL;
	if (cert_r != NULL)
		*cert_r = NULL;
	if (ks == NULL || address == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "recipient: no address");
	if (at == 0)
		at = time(NULL);
	if ((rc = choose(ks, SMIME_ROLE_ENCRYPT, address, at, false, &idx, err)) != 0)
		return rc;
	if (idx == SIZE_MAX)
		return smime_error_set(err, SMIME_E_NOTFOUND,
		    "no valid encryption certificate for %s", address);
	if (entry_r != NULL)
		*entry_r = &ks->e[idx]->pub;
	if (cert_r != NULL) {
		X509_up_ref(ks->e[idx]->cert);
		*cert_r = ks->e[idx]->cert;
	}
	return 0;
}

int
smime_keystore_trust(struct smime_keystore *ks, X509_STORE **store_r,
    STACK_OF(X509) **untrusted_r, struct smime_error *err)
{
	X509_STORE *store = NULL;
	STACK_OF(X509) *others = NULL;
	struct ks_entry *e;
	size_t i;
	int rc = 0;

	*store_r = NULL;
	*untrusted_r = NULL;
	if ((store = X509_STORE_new()) == NULL || (others = sk_X509_new_null()) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; i < ks->n; i++) {
		e = ks->e[i];
		if ((rc = load_cert(ks, e, err)) != 0)
			goto out;
		/*
		 * A distrusted certificate goes with the others, so that a chain
		 * is built through it and fails naming it (smime_keystore_verify_cb).
		 */
		if (e->pub.kind == SMIME_ENTRY_ANCHOR) {
			if (!X509_STORE_add_cert(store, e->cert)) {
				rc = smime_error_ssl(err, SMIME_E_INTERNAL, "cannot add an anchor");
				goto out;
			}
		} else if (!X509_add_cert(others, e->cert, X509_ADD_FLAG_UP_REF)) {
			rc = smime_error_ssl(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
	}
	if ((rc = keystore_distrust_attach(ks, store, err)) != 0)
		goto out;
	/*
	 * RFC 5280 6.1.1 (d): a trust anchor is a name and a key, not only a
	 * self-signed root: an issuing CA the user pinned (smime enroll
	 * --ca-fingerprint) or imported with --trust ends a path.
	 */
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	*store_r = store;
	*untrusted_r = others;
	store = NULL;
	others = NULL;
out:
	X509_STORE_free(store);
	sk_X509_pop_free(others, X509_free);
	return rc;
}

const char *
smime_keystore_dir(const struct smime_keystore *ks)
{
	return ks != NULL ? ks->dir : NULL;
}

bool
smime_keystore_default_dir(char *buf, size_t size)
{
	const char *v;
	int n;

	if (buf == NULL || size == 0)
		return false;
	if ((v = getenv("SMIME_HOME")) != NULL && v[0] != '\0')
		n = snprintf(buf, size, "%s", v);
	/* XDG Base Directory: a relative XDG_DATA_HOME is invalid and ignored. */
	else if ((v = getenv("XDG_DATA_HOME")) != NULL && v[0] == '/')
		n = snprintf(buf, size, "%s/smime", v);
	else if ((v = getenv("HOME")) != NULL && v[0] != '\0')
		n = snprintf(buf, size, "%s/.local/share/smime", v);
	else
		return false;
	return n >= 0 && (size_t)n < size;
}

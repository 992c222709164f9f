/*
 * Streams for the message engine: a message source that GMime can parse
 * without holding part contents in memory (a seekable file; a pipe is first
 * spooled to an unlinked 0600 temporary file), the bridge from a GMime
 * stream to an OpenSSL BIO, and spool files for output that must be held
 * back until it is authentic.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "internal.h"

#define SPOOL_CHUNK 65536

int
spool_create(int *fd_r, struct smime_error *err)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	snprintf(path, sizeof(path), "%s/smime-spool-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return smime_error_set(err, SMIME_E_IO, "cannot create a spool file in %s: %s", dir,
		    strerror(errno));
	/* Unlinked at once: nothing is left behind, whatever happens next. */
	unlink(path);
	(void)fchmod(fd, 0600);
	*fd_r = fd;
	return 0;
}

/* The file descriptor under a file or fd BIO, or -1. */
static int
bio_fd(BIO *in)
{
	FILE *fp = NULL;
	int fd = -1;

	if (BIO_method_type(in) == BIO_TYPE_FILE && BIO_get_fp(in, &fp) > 0 && fp != NULL)
		return fileno(fp);
	if (BIO_method_type(in) == BIO_TYPE_FD && BIO_get_fd(in, &fd) > 0)
		return fd;
	return -1;
}

int
source_open(BIO *in, GMimeStream **stream_r, struct smime_error *err)
{
	struct stat st;
	int fd = bio_fd(in), out = -1, rc;
	unsigned char *chunk = NULL;
	uint64_t total = 0;

	*stream_r = NULL;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		/* A regular file: parse it in place, from where the BIO stands. */
		off_t pos = lseek(fd, 0, SEEK_CUR);
		FILE *fp = NULL;
		if (BIO_method_type(in) == BIO_TYPE_FILE && BIO_get_fp(in, &fp) > 0 && fp != NULL)
			pos = ftello(fp);
		int dfd = dup(fd);
		if (dfd < 0)
			return smime_error_set(err, SMIME_E_IO, "dup: %s", strerror(errno));
		*stream_r = g_mime_stream_fs_new_with_bounds(dfd, pos < 0 ? 0 : pos, -1);
		return 0;
	}
	if (BIO_method_type(in) == BIO_TYPE_MEM) {
		/* Already in memory (tests, the fuzzer): parse from there. */
		char *p;
		long n = BIO_get_mem_data(in, &p);
		if (n <= 0)
			return smime_error_set(err, SMIME_E_INPUT, "the message is empty");
		*stream_r = g_mime_stream_mem_new_with_buffer(p, (size_t)n);
		return 0;
	}
	/* A pipe: spool it, so that GMime can keep part contents on disk. */
	if ((rc = spool_create(&out, err)) != 0)
		return rc;
	if ((chunk = malloc(SPOOL_CHUNK)) == NULL) {
		close(out);
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	for (;;) {
		int n = BIO_read(in, chunk, SPOOL_CHUNK);
		if (n <= 0)
			break;
		total += (uint64_t)n;
		if (total > SMIME_MSG_MAX_SIZE) {
			rc = smime_error_set(err, SMIME_E_INPUT, "the message exceeds the limit of %u bytes",
			    SMIME_MSG_MAX_SIZE);
			break;
		}
		if (write(out, chunk, (size_t)n) != n) {
			rc = smime_error_set(err, SMIME_E_IO, "cannot spool the input: %s", strerror(errno));
			break;
		}
	}
	OPENSSL_cleanse(chunk, SPOOL_CHUNK);
	free(chunk);
	if (rc == 0 && total == 0)
		rc = smime_error_set(err, SMIME_E_INPUT, "the message is empty");
	if (rc != 0) {
		close(out);
		return rc;
	}
	lseek(out, 0, SEEK_SET);
	*stream_r = g_mime_stream_fs_new(out);
	return 0;
}

/* --- a BIO that reads a GMime stream ------------------------------------- */

static int
gm_read(BIO *b, char *buf, int len)
{
	GMimeStream *s = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (s == NULL || len <= 0)
		return 0;
	n = g_mime_stream_read(s, buf, (size_t)len);
	if (n < 0)
		return -1;
	return (int)n;
}

static long
gm_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	GMimeStream *s = BIO_get_data(b);

	(void)num; (void)ptr;
	switch (cmd) {
	case BIO_CTRL_EOF:
		return s == NULL || g_mime_stream_eos(s);
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int
gm_destroy(BIO *b)
{
	GMimeStream *s = BIO_get_data(b);

	if (s != NULL)
		g_object_unref(s);
	BIO_set_data(b, NULL);
	return 1;
}

static BIO_METHOD *gm_method;
static pthread_once_t gm_once = PTHREAD_ONCE_INIT;

static void
gm_method_init(void)
{
	gm_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gmime stream");
	if (gm_method == NULL)
		return;
	BIO_meth_set_read(gm_method, gm_read);
	BIO_meth_set_ctrl(gm_method, gm_ctrl);
	BIO_meth_set_destroy(gm_method, gm_destroy);
}

BIO *
bio_from_gmime(GMimeStream *s)
{
	BIO *b;

	pthread_once(&gm_once, gm_method_init);
	if (gm_method == NULL || (b = BIO_new(gm_method)) == NULL)
		return NULL;
	g_object_ref(s);
	BIO_set_data(b, s);
	BIO_set_init(b, 1);
	return b;
}

GMimeStream *
part_decoded_stream(GMimePart *part)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GMimeStream *raw, *filtered;
	GMimeContentEncoding enc;

	if (w == NULL || (raw = g_mime_data_wrapper_get_stream(w)) == NULL)
		return NULL;
	g_mime_stream_reset(raw);
	enc = g_mime_data_wrapper_get_encoding(w);
	filtered = g_mime_stream_filter_new(raw);
	if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    enc == GMIME_CONTENT_ENCODING_UUENCODE) {
		GMimeFilter *f = g_mime_filter_basic_new(enc, FALSE);
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
		g_object_unref(f);
	}
	return filtered;
}

/* --- a read-only BIO: the base64 content of a part, decoded -------------- */

#define B64D_IN (256 * 1024)   /* the most base64 text read at once */
/* Decoding n characters after a partial quantum, then the padding's flush,
 * gives at most 3 (n + 3) / 4 + 2 <= n + 5 bytes. */
#define B64D_OUT(n) ((n) + 8)
#define B64D_SKIP 0x80          /* white space and anything outside the alphabet */
#define B64D_PAD 0x81           /* '=' */

struct b64d {
	GMimeStream *raw;
	unsigned char *in, *out;
	size_t cap;             /* of in; out holds B64D_OUT(cap) */
	size_t out_len, out_pos;
	size_t out_hi;          /* bytes of out ever written: what destroy cleanses */
	uint32_t acc;
	int nq;                 /* sextets in acc */
	bool padded, eof;
};

static unsigned char b64d_table[256];
static pthread_once_t b64d_once = PTHREAD_ONCE_INIT;
static BIO_METHOD *b64d_method;

/*
 * RFC 2045 6.8: characters outside the alphabet are ignored, '=' ends the
 * data.  Whole quanta are decoded four characters at a time.
 */
static size_t
b64d_decode(struct b64d *d, const unsigned char *in, size_t n, unsigned char *out)
{
	const unsigned char *t = b64d_table;
	size_t i = 0, o = 0;

	while (i < n && !d->padded) {
		if (d->nq == 0 && i + 4 <= n) {
			unsigned a = t[in[i]], b = t[in[i + 1]], c = t[in[i + 2]], e = t[in[i + 3]];
			if ((a | b | c | e) < 64) {
				uint32_t v = a << 18 | b << 12 | c << 6 | e;
				out[o++] = (unsigned char)(v >> 16);
				out[o++] = (unsigned char)(v >> 8);
				out[o++] = (unsigned char)v;
				i += 4;
				continue;
			}
		}
		unsigned v = t[in[i++]];
		if (v == B64D_SKIP)
			continue;
		if (v == B64D_PAD) {
			d->padded = true;
			break;
		}
		d->acc = d->acc << 6 | v;
		if (++d->nq == 4) {
			out[o++] = (unsigned char)(d->acc >> 16);
			out[o++] = (unsigned char)(d->acc >> 8);
			out[o++] = (unsigned char)d->acc;
			d->acc = 0;
			d->nq = 0;
		}
	}
	return o;
}

/* What the partial quantum before the padding holds. */
static size_t
b64d_flush(struct b64d *d, unsigned char *out)
{
	size_t o = 0;

	if (d->nq == 2) {
		out[o++] = (unsigned char)(d->acc >> 4);
	} else if (d->nq == 3) {
		out[o++] = (unsigned char)(d->acc >> 10);
		out[o++] = (unsigned char)(d->acc >> 2);
	}
	d->nq = 0;
	d->acc = 0;
	return o;
}

static int
b64d_read(BIO *b, char *buf, int len)
{
	struct b64d *d = BIO_get_data(b);
	size_t got = 0;

	BIO_clear_retry_flags(b);
	if (d == NULL || len <= 0)
		return 0;
	while (got < (size_t)len) {
		if (d->out_pos < d->out_len) {
			size_t k = d->out_len - d->out_pos;
			if (k > (size_t)len - got)
				k = (size_t)len - got;
			memcpy(buf + got, d->out + d->out_pos, k);
			d->out_pos += k;
			got += k;
			continue;
		}
		if (d->eof)
			break;
		/* (A bounded GMime stream read at its end fails instead of returning 0.) */
		ssize_t n = d->padded || g_mime_stream_eos(d->raw) ? 0 :
		    g_mime_stream_read(d->raw, (char *)d->in, d->cap);
		if (n < 0)
			return got > 0 ? (int)got : -1;
		d->out_pos = 0;
		if (n == 0) {
			/* An unpadded partial quantum at the end is dropped, as GMime does. */
			d->eof = true;
			d->out_len = 0;
			continue;
		}
		d->out_len = b64d_decode(d, d->in, (size_t)n, d->out);
		if (d->padded)
			d->out_len += b64d_flush(d, d->out + d->out_len);
		if (d->out_len > d->out_hi)
			d->out_hi = d->out_len;
	}
	return (int)got;
}

static long
b64d_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct b64d *d = BIO_get_data(b);

	(void)num; (void)ptr;
	switch (cmd) {
	case BIO_CTRL_EOF:
		return d == NULL || (d->eof && d->out_pos == d->out_len);
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int
b64d_destroy(BIO *b)
{
	struct b64d *d = BIO_get_data(b);

	if (d != NULL) {
		if (d->raw != NULL)
			g_object_unref(d->raw);
		free(d->in);
		/* Only what was decoded: cleansing all of a buffer sized for
		 * large parts cost more than reading a small message. */
		if (d->out != NULL)
			OPENSSL_cleanse(d->out, d->out_hi);
		free(d->out);
		free(d);
	}
	BIO_set_data(b, NULL);
	return 1;
}

static void
b64d_init(void)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	memset(b64d_table, B64D_SKIP, sizeof(b64d_table));
	for (int i = 0; i < 64; i++)
		b64d_table[(unsigned char)alphabet[i]] = (unsigned char)i;
	b64d_table['='] = B64D_PAD;
	b64d_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "base64 part");
	if (b64d_method == NULL)
		return;
	BIO_meth_set_read(b64d_method, b64d_read);
	BIO_meth_set_ctrl(b64d_method, b64d_ctrl);
	BIO_meth_set_destroy(b64d_method, b64d_destroy);
}

BIO *
part_content_bio(GMimePart *part)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GMimeStream *raw, *decoded;
	struct b64d *d;
	gint64 len;
	size_t cap;
	BIO *b;

	if (w == NULL || (raw = g_mime_data_wrapper_get_stream(w)) == NULL)
		return NULL;
	if (g_mime_data_wrapper_get_encoding(w) != GMIME_CONTENT_ENCODING_BASE64) {
		if ((decoded = part_decoded_stream(part)) == NULL)
			return NULL;
		b = bio_from_gmime(decoded);
		g_object_unref(decoded);
		return b;
	}
	pthread_once(&b64d_once, b64d_init);
	if (b64d_method == NULL || (b = BIO_new(b64d_method)) == NULL)
		return NULL;
	/* Buffers no larger than the part: most parts are small, and two
	 * B64D_IN buffers for each cost more than reading a small message. */
	len = g_mime_stream_length(raw);
	cap = len >= 0 && len < B64D_IN ? (size_t)len + 1 : B64D_IN;
	if ((d = calloc(1, sizeof(*d))) == NULL || (d->in = malloc(cap)) == NULL ||
	    (d->out = malloc(B64D_OUT(cap))) == NULL) {
		if (d != NULL) {
			free(d->in);
			free(d);
		}
		BIO_free(b);
		return NULL;
	}
	g_mime_stream_reset(raw);
	d->cap = cap;
	d->raw = g_object_ref(raw);
	BIO_set_data(b, d);
	BIO_set_init(b, 1);
	return b;
}

/* --- a write-only BIO: base64 in 76-character lines ending in CRLF -------- */

#define B64_OUT 65536

struct b64 {
	unsigned char in[57];
	size_t n;
	unsigned char out[B64_OUT];  /* whole lines, written in large blocks */
	size_t used;
};

static int
b64_drain(struct b64 *s, BIO *next)
{
	size_t off = 0;

	while (off < s->used) {
		int w = BIO_write(next, s->out + off, (int)(s->used - off));
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	s->used = 0;
	return 0;
}

static int
b64_emit(struct b64 *s, BIO *next)
{
	int k;

	if (s->used + 80 > sizeof(s->out) && b64_drain(s, next) != 0)
		return -1;
	k = EVP_EncodeBlock(s->out + s->used, s->in, (int)s->n);
	s->out[s->used + (size_t)k] = '\r';
	s->out[s->used + (size_t)k + 1] = '\n';
	s->used += (size_t)k + 2;
	s->n = 0;
	return 0;
}

static int
b64_write(BIO *b, const char *buf, int len)
{
	struct b64 *s = BIO_get_data(b);
	BIO *next = BIO_next(b);
	int done = 0;

	if (s == NULL || next == NULL || len < 0)
		return -1;
	while (done < len) {
		/* Whole lines straight from buf, without the copy into s->in. */
		while (s->n == 0 && (size_t)(len - done) >= sizeof(s->in)) {
			int k;
			if (s->used + 80 > sizeof(s->out) && b64_drain(s, next) != 0)
				return -1;
			k = EVP_EncodeBlock(s->out + s->used, (const unsigned char *)buf + done,
			    (int)sizeof(s->in));
			s->out[s->used + (size_t)k] = '\r';
			s->out[s->used + (size_t)k + 1] = '\n';
			s->used += (size_t)k + 2;
			done += (int)sizeof(s->in);
		}
		if (done == len)
			break;
		size_t take = sizeof(s->in) - s->n;
		if (take > (size_t)(len - done))
			take = (size_t)(len - done);
		memcpy(s->in + s->n, buf + done, take);
		s->n += take;
		done += (int)take;
		if (s->n == sizeof(s->in) && b64_emit(s, next) != 0)
			return -1;
	}
	return len;
}

static long
b64_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct b64 *s = BIO_get_data(b);
	BIO *next = BIO_next(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		if (s != NULL && next != NULL) {
			if ((s->n > 0 && b64_emit(s, next) != 0) || b64_drain(s, next) != 0)
				return 0;
		}
		return next ? BIO_ctrl(next, cmd, num, ptr) : 1;
	case BIO_CTRL_WPENDING:
	case BIO_CTRL_PENDING:
		return 0;
	default:
		return next ? BIO_ctrl(next, cmd, num, ptr) : 0;
	}
}

static int
b64_create(BIO *b)
{
	struct b64 *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return 0;
	BIO_set_data(b, s);
	BIO_set_init(b, 1);
	return 1;
}

static int
b64_destroy(BIO *b)
{
	free(BIO_get_data(b));
	BIO_set_data(b, NULL);
	return 1;
}

static BIO_METHOD *b64_method;
static pthread_once_t b64_once = PTHREAD_ONCE_INIT;

static void
b64_method_init(void)
{
	b64_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "base64 crlf");
	if (b64_method == NULL)
		return;
	BIO_meth_set_write(b64_method, b64_write);
	BIO_meth_set_ctrl(b64_method, b64_ctrl);
	BIO_meth_set_create(b64_method, b64_create);
	BIO_meth_set_destroy(b64_method, b64_destroy);
}

BIO *
bio_base64_crlf(void)
{
	pthread_once(&b64_once, b64_method_init);
	return b64_method ? BIO_new(b64_method) : NULL;
}

void
bio_free_down_to(BIO *chain, BIO *bottom)
{
	while (chain != NULL && chain != bottom) {
		BIO *next = BIO_pop(chain);
		BIO_free(chain);
		chain = next;
	}
}

int
copy_bio(BIO *in, BIO *out, struct smime_error *err)
{
	unsigned char *chunk = malloc(SPOOL_CHUNK);
	int n, rc = 0;

	if (chunk == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	while ((n = BIO_read(in, chunk, SPOOL_CHUNK)) > 0)
		if ((rc = write_all(out, chunk, (size_t)n, err)) != 0)
			break;
	if (rc == 0 && n < 0)
		rc = smime_error_set(err, SMIME_E_IO, "reading failed before the end");
	OPENSSL_cleanse(chunk, SPOOL_CHUNK);
	free(chunk);
	return rc;
}

int
mime_entity_spool(GMimeObject *obj, bool canonicalise, int *fd_r, struct smime_error *err)
{
	GMimeFormatOptions *opts;
	GMimeStream *fs, *filtered;
	GMimeFilter *crlf;
	GMimeHeaderList *hl;
	int fd, rc;

	if ((rc = spool_create(&fd, err)) != 0)
		return rc;
	if (canonicalise)
		g_mime_object_encode(obj, GMIME_ENCODING_CONSTRAINT_7BIT);
	hl = g_mime_object_get_header_list(obj);
	if (canonicalise && g_mime_header_list_get_count(hl) == 0 && GMIME_IS_PART(obj))
		g_mime_object_set_header(obj, "Content-Type", "text/plain; charset=us-ascii", NULL);
	opts = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(opts, GMIME_NEWLINE_FORMAT_DOS);
	fs = g_mime_stream_fs_new(dup(fd));
	filtered = g_mime_stream_filter_new(fs);
	/* RFC 8551 3.1.1: canonical line ends, CRLF, also inside the parts. */
	crlf = g_mime_filter_unix2dos_new(FALSE);
	g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), crlf);
	g_object_unref(crlf);
	if (g_mime_object_write_to_stream(obj, opts, filtered) < 0 ||
	    g_mime_stream_flush(filtered) != 0)
		rc = smime_error_set(err, SMIME_E_IO, "cannot write the MIME entity to the spool file");
	g_object_unref(filtered);
	g_object_unref(fs);
	g_mime_format_options_free(opts);
	if (rc == 0 && lseek(fd, 0, SEEK_SET) != 0)
		rc = smime_error_set(err, SMIME_E_IO, "cannot rewind the spool file");
	if (rc != 0) {
		close(fd);
		return rc;
	}
	*fd_r = fd;
	return 0;
}

/*
 * The first offset p >= from in s where a line starts with "--" boundary
 * (p is at a line start: p == 0 or s[p - 1] == '\n'), or -1.  *after_r is set
 * past that delimiter line (RFC 2046 5.1.1: optional white space, then the
 * line end).  Read in bounded chunks: memory does not grow with s.
 */
static gint64
find_delimiter(GMimeStream *s, gint64 from, const char *boundary, gint64 *after_r)
{
	size_t blen = strlen(boundary), keep = blen + 2, have = 0, i;
	size_t cap = SPOOL_CHUNK + keep + 1;
	unsigned char *buf = malloc(cap);
	gint64 base, result = -1;
	bool at_line_start;
	ssize_t n;

	if (buf == NULL)
		return -1;
	/* Whether from is at a line start: look at the byte before it. */
	at_line_start = from == 0;
	if (from > 0) {
		char c;
		if (g_mime_stream_seek(s, from - 1, GMIME_STREAM_SEEK_SET) < 0 ||
		    g_mime_stream_read(s, &c, 1) != 1)
			goto out;
		at_line_start = c == '\n';
	} else if (g_mime_stream_seek(s, 0, GMIME_STREAM_SEEK_SET) < 0) {
		goto out;
	}
	base = from;
	for (;;) {
		n = g_mime_stream_read(s, (char *)buf + have, cap - 1 - have);
		if (n < 0)
			goto out;
		have += (size_t)n;
		for (i = 0; i + 2 + blen <= have; i++) {
			bool line_start = i == 0 ? at_line_start : buf[i - 1] == '\n';
			if (!line_start || buf[i] != '-' || buf[i + 1] != '-' ||
			    memcmp(buf + i + 2, boundary, blen) != 0)
				continue;
			result = base + (gint64)i;
			/* past the delimiter line: white space, CR, LF */
			gint64 pos = result + 2 + (gint64)blen;
			char c;
			if (g_mime_stream_seek(s, pos, GMIME_STREAM_SEEK_SET) < 0)
				goto out;
			while (g_mime_stream_read(s, &c, 1) == 1) {
				pos++;
				if (c == '\n')
					break;
				if (c != ' ' && c != '\t' && c != '\r') {
					pos--;
					break;
				}
			}
			*after_r = pos;
			goto out;
		}
		if (n == 0)
			break;
		/* keep the tail that may hold the start of a delimiter */
		if (have > keep) {
			at_line_start = buf[have - keep - 1] == '\n';
			memmove(buf, buf + have - keep, keep);
			base += (gint64)(have - keep);
			have = keep;
		}
	}
out:
	free(buf);
	return result;
}

int
stream_signed_range(GMimeStream *s, GMimeMultipart *mp, gint64 *start_r, gint64 *end_r,
    struct smime_error *err)
{
	const char *boundary = g_mime_multipart_get_boundary(mp);
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(mp));
	gint64 hdr, first, next, after, end;
	char c[2];

	if (boundary == NULL || g_mime_multipart_get_count(mp) < 1)
		return smime_error_set(err, SMIME_E_INPUT,
		    "RFC 1847 2.1: multipart/signed without a boundary or a first part");
	hdr = g_mime_header_list_get_count(hl) > 0 ?
	    g_mime_header_get_offset(g_mime_header_list_get_header_at(hl, 0)) : -1;
	if (hdr < 0)
		return smime_error_set(err, SMIME_E_INPUT,
		    "cannot locate the signed part of a multipart/signed in the message");
	/* The signed part runs from after the first delimiter line ... */
	first = find_delimiter(s, hdr, boundary, &after);
	if (first < 0)
		return smime_error_set(err, SMIME_E_INPUT,
		    "RFC 2046 5.1.1: multipart/signed without its first boundary delimiter");
	*start_r = after;
	/* ... to the line end before the next one, which belongs to the delimiter. */
	next = find_delimiter(s, after, boundary, &end);
	if (next < 0)
		return smime_error_set(err, SMIME_E_INPUT,
		    "RFC 1847 2.1: the signed part of multipart/signed is not closed by its boundary");
	end = next;
	if (end > after) {
		end--;                                  /* the LF */
		if (end > after && g_mime_stream_seek(s, end - 1, GMIME_STREAM_SEEK_SET) >= 0 &&
		    g_mime_stream_read(s, c, 1) == 1 && c[0] == '\r')
			end--;
	}
	*end_r = end;
	return 0;
}

GMimeStream *
stream_crlf(GMimeStream *s)
{
	GMimeStream *f = g_mime_stream_filter_new(s);
	GMimeFilter *crlf = g_mime_filter_unix2dos_new(FALSE);

	g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), crlf);
	g_object_unref(crlf);
	return f;
}

GMimeStream *
stream_layer(const struct buf *headers, GMimeStream *content)
{
	GMimeStream *cat = g_mime_stream_cat_new();
	GMimeStream *h = g_mime_stream_mem_new_with_buffer((const char *)headers->data, headers->len);

	g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), h);
	g_object_unref(h);
	g_mime_stream_reset(content);
	g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), content);
	return cat;
}

int
stream_copy_crlf(GMimeStream *s, BIO *out, struct smime_error *err)
{
	GMimeStream *f;
	char *chunk;
	ssize_t n;
	int rc = 0;

	if (g_mime_stream_reset(s) != 0)
		return smime_error_set(err, SMIME_E_IO, "cannot rewind the message");
	if ((chunk = malloc(SPOOL_CHUNK)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	f = stream_crlf(s);
	while ((n = g_mime_stream_read(f, chunk, SPOOL_CHUNK)) > 0)
		if ((rc = write_all(out, chunk, (size_t)n, err)) != 0)
			break;
	if (n < 0 && rc == 0)
		rc = smime_error_set(err, SMIME_E_IO, "cannot read the message");
	g_object_unref(f);
	OPENSSL_cleanse(chunk, SPOOL_CHUNK);
	free(chunk);
	return rc;
}

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
#include <unistd.h>

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

int
source_read_all(GMimeStream *s, struct buf *b, struct smime_error *err)
{
	char chunk[16384];
	ssize_t n;
	int rc;

	if (g_mime_stream_reset(s) != 0)
		return smime_error_set(err, SMIME_E_IO, "cannot rewind the message");
	while ((n = g_mime_stream_read(s, chunk, sizeof(chunk))) > 0)
		if ((rc = buf_add(b, chunk, (size_t)n, err)) != 0)
			return rc;
	if (n < 0)
		return smime_error_set(err, SMIME_E_IO, "cannot read the message");
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

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

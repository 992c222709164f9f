/*
 * The canonical MIME entity of a message read straight from its bytes
 * (RFC 8551 3.1), for the common case where the message is already what
 * canonicalisation would make of it: 7-bit text (no octet above 127, no NUL,
 * no bare CR) in lines of at most 998 octets (RFC 5322 2.1.1).  Then the
 * entity is the message's Content-* header fields, the empty line and the
 * body, with any bare LF made CRLF (RFC 8551 3.1.1); GMime parses only the
 * header section, and the body is never parsed, re-encoded or spooled.
 * Anything else (8-bit or binary parts, long lines, no Content-Type) is
 * left to the full GMime path in lib/message.c, which re-encodes parts.
 */
#include <pthread.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

#define HEADER_MAX (256u * 1024)    /* a larger header section takes the GMime path */
#define LINE_MAX_OCTETS 998         /* RFC 5322 2.1.1, without the CRLF */
#define IN_CHUNK (256u * 1024)

/* Is every octet 7-bit, no NUL, no bare CR, every line at most 998 octets? */
struct scan {
	size_t line;
	bool prev_cr, bare_lf;
};

struct entity {
	GMimeStream *src;
	gint64 body;               /* offset of the body in src */
	struct buf head;           /* Content-* fields and the empty line, CRLF */
	unsigned char *in, *out;   /* cap and 2 * cap */
	size_t cap;                /* at most IN_CHUNK, no more than the message needs */
	size_t in_hi, out_hi;      /* bytes of in and out ever written: what is cleansed */
	const unsigned char *cur;  /* what is being served: head, in or out */
	size_t cur_len, cur_pos;
	bool prev_cr, started, eof;
	struct scan sc;            /* the body as read so far; whole once verified */
	bool verified;
	bool not_canonical;        /* the first pass found it is not (sticky) */
	bool io_error;             /* reading the message failed (sticky) */
	int fd;                    /* the message file, watched for changes; or -1 */
	struct stat st;            /* as it was when the entity was opened */
};


/* No CR, NUL or octet above 127 in p[0..n): eight octets at a time. */
static bool
clean(const unsigned char *p, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	const uint64_t crs = 0x0d0d0d0d0d0d0d0dull;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w, x;
		memcpy(&w, p + i, 8);
		x = w ^ crs;
		/* a high bit, a zero octet (NUL), or a zero octet of w ^ CR (a CR) */
		if ((w & highs) || ((w - ones) & ~w & highs) || ((x - ones) & ~x & highs))
			return false;
	}
	for (; i < n; i++)
		if (p[i] == 0 || p[i] == '\r' || p[i] >= 0x80)
			return false;
	return true;
}

static bool
scan_chunk(struct scan *s, const unsigned char *p, size_t n)
{
	size_t i = 0;

	if (n > 0 && s->prev_cr && p[0] != '\n')
		return false;                   /* a bare CR */
	while (i < n) {
		const unsigned char *lf = memchr(p + i, '\n', n - i);
		size_t end = lf ? (size_t)(lf - p) : n, len = end - i;
		bool cr = len > 0 && p[end - 1] == '\r';

		if (!clean(p + i, len - cr))
			return false;
		s->line += len - cr;
		if (s->line > LINE_MAX_OCTETS)
			return false;
		if (lf == NULL) {
			s->prev_cr = cr;
			break;
		}
		if (!cr && !(len == 0 && s->prev_cr))
			s->bare_lf = true;
		s->line = 0;
		s->prev_cr = false;
		i = end + 1;
	}
	return true;
}

/* LF without CR before it becomes CRLF; out has room for 2 * n. */
static size_t
to_crlf(const unsigned char *in, size_t n, unsigned char *out, bool *prev_cr)
{
	size_t o = 0, i = 0;

	while (i < n) {
		const unsigned char *lf = memchr(in + i, '\n', n - i);
		size_t seg = lf ? (size_t)(lf - (in + i)) : n - i;
		bool cr_before = seg > 0 ? in[i + seg - 1] == '\r' : *prev_cr;

		memcpy(out + o, in + i, seg);
		o += seg;
		i += seg;
		if (lf == NULL)
			break;
		if (!cr_before)
			out[o++] = '\r';
		out[o++] = '\n';
		i++;
	}
	if (n > 0)
		*prev_cr = in[n - 1] == '\r';
	return o;
}

static bool
unchanged(const struct entity *e)
{
	struct stat now;

	if (e->fd < 0)
		return true;
	return fstat(e->fd, &now) == 0 && now.st_size == e->st.st_size &&
	    now.st_mtim.tv_sec == e->st.st_mtim.tv_sec &&
	    now.st_mtim.tv_nsec == e->st.st_mtim.tv_nsec &&
	    now.st_ctim.tv_sec == e->st.st_ctim.tv_sec &&
	    now.st_ctim.tv_nsec == e->st.st_ctim.tv_nsec;
}

/*
 * The next piece of the body into cur: 1, or 0 at its end, or -1 when it
 * failed (and fails from then on).  The first pass checks what it reads.
 */
static int
ent_fill(struct entity *e)
{
	ssize_t n;

	if (e->not_canonical || e->io_error)
		return -1;
	if (e->eof)
		return 0;
	if (!e->started) {
		if (g_mime_stream_seek(e->src, e->body, GMIME_STREAM_SEEK_SET) != e->body) {
			e->io_error = true;
			return -1;
		}
		e->started = true;
	}
	if ((n = g_mime_stream_read(e->src, (char *)e->in, e->cap)) < 0) {
		e->io_error = true;
		return -1;
	}
	if (!e->verified) {
		if ((n == 0 && e->sc.prev_cr) || (n > 0 && !scan_chunk(&e->sc, e->in, (size_t)n))) {
			e->not_canonical = true;
			return -1;
		}
		if (n == 0)
			e->verified = true;
	}
	if (n == 0) {
		/*
		 * The file is read more than once (checked or digested, then
		 * written): it must not have changed in between.
		 */
		if (!unchanged(e)) {
			e->io_error = true;
			return -1;
		}
		e->eof = true;
		return 0;
	}
	if ((size_t)n > e->in_hi)
		e->in_hi = (size_t)n;
	/* From the first bare LF on (to_crlf changes nothing else). */
	if (e->sc.bare_lf) {
		e->cur_len = to_crlf(e->in, (size_t)n, e->out, &e->prev_cr);
		e->cur = e->out;
		if (e->cur_len > e->out_hi)
			e->out_hi = e->cur_len;
	} else {
		e->cur_len = (size_t)n;
		e->cur = e->in;
		e->prev_cr = e->in[n - 1] == '\r';
	}
	e->cur_pos = 0;
	return 1;
}

static int
ent_read(BIO *b, char *buf, int len)
{
	struct entity *e = BIO_get_data(b);
	size_t want = (size_t)len, got = 0;

	BIO_clear_retry_flags(b);
	if (e == NULL || len <= 0)
		return 0;
	/* Once failed, always failed: no caller may take a short read for the end. */
	if (e->not_canonical || e->io_error)
		return -1;
	while (got < want) {
		if (e->cur_pos == e->cur_len) {
			int r = ent_fill(e);
			if (r < 0)
				return -1;
			if (r == 0)
				break;
		}
		size_t k = e->cur_len - e->cur_pos;
		if (k > want - got)
			k = want - got;
		memcpy(buf + got, e->cur + e->cur_pos, k);
		e->cur_pos += k;
		got += k;
	}
	return (int)got;
}

/* Back to the start: the Content-* fields first. */
static void
ent_rewind(struct entity *e)
{
	e->cur = e->head.data;
	e->cur_len = e->head.len;
	e->cur_pos = 0;
	e->prev_cr = e->started = e->eof = false;
	if (!e->verified)
		memset(&e->sc, 0, sizeof(e->sc));   /* a first pass cut short starts over */
}

static long
ent_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct entity *e = BIO_get_data(b);

	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_RESET:
		ent_rewind(e);
		return 0;
	case BIO_C_FILE_SEEK:
		/* Only back to the start: what BIO_seek(entity, 0) asks. */
		if (num != 0)
			return -1;
		ent_rewind(e);
		return 0;
	case BIO_CTRL_EOF:
		return e->eof && e->cur_pos == e->cur_len;
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static void
ent_free(struct entity *e)
{
	if (e == NULL)
		return;
	if (e->src != NULL)
		g_object_unref(e->src);
	buf_free(&e->head);
	if (e->in != NULL) {
		OPENSSL_cleanse(e->in, e->in_hi);
		free(e->in);
	}
	if (e->out != NULL) {
		OPENSSL_cleanse(e->out, e->out_hi);
		free(e->out);
	}
	free(e);
}

static int
ent_destroy(BIO *b)
{
	ent_free(BIO_get_data(b));
	BIO_set_data(b, NULL);
	return 1;
}

static BIO_METHOD *ent_method;
static int ent_type;
static pthread_once_t ent_once = PTHREAD_ONCE_INIT;

static void
ent_method_init(void)
{
	ent_type = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK;
	ent_method = BIO_meth_new(ent_type, "MIME entity");
	if (ent_method == NULL)
		return;
	BIO_meth_set_read(ent_method, ent_read);
	BIO_meth_set_ctrl(ent_method, ent_ctrl);
	BIO_meth_set_destroy(ent_method, ent_destroy);
}

/* The end of the header section in p[0..n): the offset of the body, or 0. */
static size_t
header_end(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < n && p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/*
 * The Content-* fields of the header section h[0..n) (each with its folded
 * continuation lines), CRLF, then the empty line.  False when there is no
 * Content-Type.
 */
static bool
content_fields(const unsigned char *h, size_t n, struct buf *out)
{
	size_t i = 0;
	bool has_type = false, prev_cr = false;
	unsigned char tmp[2 * 1024];
	struct smime_error err;

	while (i < n) {
		/* One field: this line and the lines that start with white space. */
		size_t start = i, end;
		do {
			const unsigned char *lf = memchr(h + i, '\n', n - i);
			i = lf ? (size_t)(lf - h) + 1 : n;
		} while (i < n && (h[i] == ' ' || h[i] == '\t'));
		end = i;
		if (h[start] == '\r' || h[start] == '\n')
			break;          /* the empty line (no bare CR: scanned before) */
		if (end - start > 8 && g_ascii_strncasecmp((const char *)h + start, "Content-", 8) == 0) {
			if (end - start > 13 &&
			    g_ascii_strncasecmp((const char *)h + start, "Content-Type:", 13) == 0)
				has_type = true;
			for (size_t k = start; k < end; k += 1024) {
				size_t len = end - k < 1024 ? end - k : 1024;
				size_t o = to_crlf(h + k, len, tmp, &prev_cr);
				if (buf_add(out, tmp, o, &err) != 0)
					return false;
			}
		}
	}
	return has_type && buf_add(out, "\r\n", 2, &err) == 0;
}

int
entity_fast_open(GMimeStream *src, bool lazy, GMimeMessage **msg_r, BIO **entity_r,
    struct smime_error *err)
{
	struct entity *e = NULL;
	unsigned char *h = NULL;
	size_t have = 0, end = 0;
	struct scan sc = { 0 };     /* of the header section */
	GMimeStream *mem = NULL;
	BIO *b = NULL;
	int rc = SMIME_E_NOTFOUND;
	/*
	 * Buffers no larger than the message (when its length is known): a
	 * small message is the common case, and buffers for the largest cost
	 * more than reading it.  One octet more than the message, so that all
	 * of it comes in one read.
	 */
	gint64 len = g_mime_stream_length(src);
	size_t hcap = len >= 0 && (guint64)len < HEADER_MAX ? (size_t)len + 1 : HEADER_MAX;
	size_t cap = len >= 0 && (guint64)len < IN_CHUNK ? (size_t)len + 1 : IN_CHUNK;

	*msg_r = NULL;
	*entity_r = NULL;
	if ((h = malloc(hcap)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if (g_mime_stream_reset(src) != 0) {
		rc = smime_error_set(err, SMIME_E_IO, "cannot rewind the message");
		goto out;
	}
	while (have < hcap) {
		ssize_t n = g_mime_stream_read(src, (char *)h + have, hcap - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		if ((end = header_end(h, have)) != 0)
			break;
	}
	/* A header section that does not end within the limit: the GMime path decides. */
	if (end == 0 || !scan_chunk(&sc, h, end))
		goto out;
	if ((e = calloc(1, sizeof(*e))) == NULL || (e->in = malloc(cap)) == NULL ||
	    (e->out = malloc(2 * cap)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	e->cap = cap;
	/* What the file is now, before its body is first read. */
	e->fd = GMIME_IS_STREAM_FS(src) ? GMIME_STREAM_FS(src)->fd : -1;
	if (e->fd >= 0 && fstat(e->fd, &e->st) != 0)
		e->fd = -1;
	e->src = g_object_ref(src);
	e->body = (gint64)end;
	buf_init(&e->head, HEADER_MAX + 4096);
	if (!content_fields(h, end, &e->head))
		goto out;
	/* The body is checked now, in one read; lazily, by the entity's first pass. */
	if (!lazy) {
		int r;
		while ((r = ent_fill(e)) > 0)
			e->cur_pos = e->cur_len;
		if (e->io_error) {
			rc = smime_error_set(err, SMIME_E_IO, "cannot read the message");
			goto out;
		}
		if (r < 0)
			goto out;       /* not canonical: the GMime path */
	}
	ent_rewind(e);
	/* Only the header section goes through GMime: From, To, Cc and the outer headers. */
	mem = g_mime_stream_mem_new_with_buffer((const char *)h, end);
	if ((rc = mime_parse_stream(mem, msg_r, err)) != 0)
		goto out;
	pthread_once(&ent_once, ent_method_init);
	if (ent_method == NULL || (b = BIO_new(ent_method)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	BIO_set_data(b, e);
	BIO_set_init(b, 1);
	e = NULL;
	*entity_r = b;
	b = NULL;
	rc = 0;
out:
	if (rc != 0 && *msg_r != NULL) {
		g_object_unref(*msg_r);
		*msg_r = NULL;
	}
	ent_free(e);
	BIO_free(b);
	if (mem != NULL)
		g_object_unref(mem);
	free(h);
	return rc;
}

static struct entity *
entity_of(BIO *b)
{
	return b != NULL && ent_method != NULL && BIO_method_type(b) == ent_type ?
	    BIO_get_data(b) : NULL;
}

bool
entity_fast_failed(BIO *entity)
{
	struct entity *e = entity_of(entity);

	return e != NULL && e->not_canonical;
}

bool
entity_read_failed(BIO *entity)
{
	struct entity *e = entity_of(entity);

	return e != NULL && (e->not_canonical || e->io_error);
}

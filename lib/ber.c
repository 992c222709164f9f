/*
 * An incremental, bounded BER reader over a BIO (X.690).
 *
 * The reader keeps one 16 KiB window on the input and a stack of the
 * containers it is in; nothing else grows with the input, so a content of
 * any size is skipped or streamed in constant memory.  Only
 * ber_read_whole allocates per element, and only up to its caller's bound.
 *
 * Every container has a limit: the stream offset it must end at (a
 * definite length), or for an indefinite one the limit of the nearest
 * definite container around it; the outermost limit is max_total.  Every
 * header and every length is checked against that limit before a byte of
 * the contents is read.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "ber.h"

#define BER_WINDOW (16 * 1024)    /* bytes buffered from the input */
#define BER_MAX_TAG (1u << 21)     /* largest tag number accepted, exclusive */
#define BER_MAX_LEN_OCTETS 8       /* long-form length octets accepted */
#define BER_MAX_HDR 16             /* 1 + 3 tag octets + 1 + 8 length octets fit */

struct ber_frame {
	bool indefinite;
	bool limit_is_total;    /* limit comes from max_total, not a length */
	uint64_t offset;        /* the container's identifier octet */
	uint64_t limit;         /* stream offset the contents must not pass */
};

/* State of the OCTET STRING being read through ber_octets_bio. */
struct ber_octets {
	BIO *bio;               /* the live BIO, or NULL */
	bool active;            /* a string is open (BIO live or abandoned) */
	bool done;              /* EOF reported */
	int base;               /* depth the string's own frame sits above */
	uint64_t offset;        /* the string's identifier octet */
	uint64_t left;          /* bytes left in the current primitive chunk */
	uint64_t chunk_offset;  /* that chunk's identifier octet */
};

struct ber_reader {
	BIO *in;
	uint64_t max_total;
	uint64_t pos;           /* stream offset of the next byte to consume */
	uint64_t fetched;       /* bytes read from in */
	bool eof;               /* in has no more */

	unsigned char *win;     /* BER_WINDOW bytes */
	size_t win_off, win_len;

	struct ber_frame stack[BER_MAX_DEPTH + 1]; /* [0] is the stream itself */
	int depth;

	/* The last header ber_next returned, and whether its contents are unread. */
	unsigned char hdr[BER_MAX_HDR];
	struct ber_tlv last;
	bool pending;

	/* ber_read_whole: every byte consumed is copied here while set. */
	unsigned char *cap;
	size_t cap_len, cap_size, cap_max;
	uint64_t cap_offset;    /* the element being read */
	bool capturing;

	struct ber_octets oct;

	int failed;             /* sticky: the first error, or 0 */
	struct smime_error error;
};

/* ------------------------------------------------------------------ errors */

static int SMIME_PRINTF(4, 5)
fail(struct ber_reader *r, struct smime_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (r->failed == 0) {
		r->failed = code;
		r->error.code = code;
		va_start(ap, fmt);
		vsnprintf(r->error.message, sizeof(r->error.message), fmt, ap);
		va_end(ap);
	}
	if (err != NULL)
		*err = r->error;
	return r->failed;
}

/* A caller's mistake: reported, but the stream is still sound. */
static int SMIME_PRINTF(2, 3)
usage(struct smime_error *err, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		err->code = SMIME_E_USAGE;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return SMIME_E_USAGE;
}

static int
failed(struct ber_reader *r, struct smime_error *err)
{
	if (err != NULL)
		*err = r->error;
	return r->failed;
}

static const char *
class_name(enum ber_class c)
{
	static const char *const names[] = { "UNIVERSAL", "APPLICATION", "CONTEXT", "PRIVATE" };

	return names[c & 3];
}

/* ------------------------------------------------------------ input window */

/*
 * Make at least want (<= BER_WINDOW) bytes available in the window, fewer
 * only at the end of the input.  Never reads past max_total.  Returns the
 * bytes available, or -1 on an I/O error (reported).
 */
static long
fill(struct ber_reader *r, size_t want, struct smime_error *err)
{
	size_t avail = r->win_len - r->win_off;
	uint64_t room;
	int n, ask;

	while (avail < want && !r->eof) {
		if (r->win_off > 0) {
			memmove(r->win, r->win + r->win_off, avail);
			r->win_off = 0;
			r->win_len = avail;
		}
		room = r->max_total - r->fetched;
		if (room == 0) {
			r->eof = true;
			break;
		}
		ask = (int)(BER_WINDOW - r->win_len);
		if ((uint64_t)ask > room)
			ask = (int)room;
		n = BIO_read(r->in, r->win + r->win_len, ask);
		if (n <= 0) {
			if (n < 0 && !BIO_should_retry(r->in) && !BIO_eof(r->in)) {
				fail(r, err, SMIME_E_IO, "reading the message failed at offset %" PRIu64,
				    r->fetched);
				return -1;
			}
			r->eof = true;
			break;
		}
		r->win_len += (size_t)n;
		r->fetched += (uint64_t)n;
		avail += (size_t)n;
	}
	return (long)avail;
}

/* Consume n bytes from the window (n <= what fill made available). */
static int
consume(struct ber_reader *r, size_t n, struct smime_error *err)
{
	if (r->capturing && n > 0) {
		if (n > r->cap_max - r->cap_len)
			return fail(r, err, SMIME_E_INPUT, "the element at offset %" PRIu64
			    " is larger than the %zu bytes allowed for it", r->cap_offset,
			    r->cap_max);
		if (r->cap_len + n > r->cap_size) {
			size_t size = r->cap_size < 4096 ? 4096 : r->cap_size;
			unsigned char *p;

			while (size < r->cap_len + n)
				size = size > r->cap_max / 2 ? r->cap_max : size * 2;
			if (size > r->cap_max)
				size = r->cap_max;
			if ((p = OPENSSL_realloc(r->cap, size)) == NULL)
				return fail(r, err, SMIME_E_INTERNAL, "out of memory");
			r->cap = p;
			r->cap_size = size;
		}
		memcpy(r->cap + r->cap_len, r->win + r->win_off, n);
		r->cap_len += n;
	}
	r->win_off += n;
	r->pos += n;
	return 0;
}

/* The limit of the innermost container, and how to name it in a message. */
static const struct ber_frame *
top(const struct ber_reader *r)
{
	return &r->stack[r->depth];
}

static int
past_limit(struct ber_reader *r, const char *rule, uint64_t elem, struct smime_error *err)
{
	const struct ber_frame *f = top(r);

	if (f->limit_is_total)
		return fail(r, err, SMIME_E_INPUT, "X.690 %s: the element at offset %" PRIu64
		    " runs past the %" PRIu64 "-byte message size limit", rule, elem,
		    r->max_total);
	return fail(r, err, SMIME_E_INPUT, "X.690 %s: the element at offset %" PRIu64
	    " runs past the end of its container at offset %" PRIu64, rule, elem, f->limit);
}

/* Skip n content bytes, streaming, within the current limit (checked by the caller). */
static int
skip_bytes(struct ber_reader *r, uint64_t n, uint64_t elem, struct smime_error *err)
{
	long avail;
	size_t take;
	int rc;

	while (n > 0) {
		if ((avail = fill(r, 1, err)) < 0)
			return r->failed;
		if (avail == 0)
			return fail(r, err, SMIME_E_INPUT, "X.690 8.1.4: truncated: the input ends at "
			    "offset %" PRIu64 " inside the contents of the element at offset %" PRIu64
			    " (%" PRIu64 " bytes missing)", r->pos, elem, n);
		take = (uint64_t)avail < n ? (size_t)avail : (size_t)n;
		if ((rc = consume(r, take, err)) != 0)
			return rc;
		n -= take;
	}
	return 0;
}

/* ----------------------------------------------------------------- headers */

/*
 * Read one header at the current position into r->last (and its raw bytes
 * into r->hdr).  Returns 0, SMIME_E_NOTFOUND at the end of the current
 * container (the end-of-contents octets of an indefinite one are left in
 * place), or an error.
 */
static int
read_header(struct ber_reader *r, struct smime_error *err)
{
	const struct ber_frame *f = top(r);
	struct ber_tlv *t = &r->last;
	uint64_t start = r->pos, room, len;
	const unsigned char *p;
	unsigned char b;
	size_t i, n, need;
	long avail;
	int rc;

	r->pending = false;
	if (r->pos == f->limit) {
		if (!f->indefinite)
			return SMIME_E_NOTFOUND;
		/* X.690 8.1.3.6.1: an indefinite container ends with end-of-contents. */
		if (f->limit_is_total)
			return fail(r, err, SMIME_E_INPUT, "X.690 8.1.3.6.1: the element at offset %"
			    PRIu64 " has no end-of-contents within the %" PRIu64 "-byte message "
			    "size limit", f->offset, r->max_total);
		return fail(r, err, SMIME_E_INPUT, "X.690 8.1.3.6.1: the element at offset %"
		    PRIu64 " has no end-of-contents before the end of its container at offset %"
		    PRIu64, f->offset, f->limit);
	}
	if ((avail = fill(r, BER_MAX_HDR, err)) < 0)
		return r->failed;
	if (avail == 0) {
		if (r->depth == 0)
			return SMIME_E_NOTFOUND;
		if (f->indefinite)
			return fail(r, err, SMIME_E_INPUT, "X.690 8.1.5: truncated: the input ends at "
			    "offset %" PRIu64 " before the end-of-contents of the element at offset %"
			    PRIu64, r->pos, f->offset);
		return fail(r, err, SMIME_E_INPUT, "X.690 8.1.4: truncated: the input ends at "
		    "offset %" PRIu64 " inside the contents of the element at offset %" PRIu64
		    " (%" PRIu64 " bytes missing)", r->pos, f->offset, f->limit - r->pos);
	}
	p = r->win + r->win_off;
	room = f->limit - r->pos;

	/* X.690 8.1.5: the end-of-contents octets, two zero octets. */
	if (p[0] == 0x00) {
		if (room < 2)
			return past_limit(r, "8.1.5", start, err);
		if (avail < 2)
			return fail(r, err, SMIME_E_INPUT, "X.690 8.1.5: truncated: the input ends "
			    "inside the end-of-contents octets at offset %" PRIu64, start);
		if (p[1] != 0x00)
			return fail(r, err, SMIME_E_INPUT, "X.690 8.1.5: end-of-contents at offset %"
			    PRIu64 " has a non-zero length", start);
		if (!f->indefinite)
			return fail(r, err, SMIME_E_INPUT, "X.690 8.1.5: end-of-contents at offset %"
			    PRIu64 " outside an indefinite-length container", start);
		return SMIME_E_NOTFOUND;
	}

	/* X.690 8.1.2: identifier octets. */
	memset(t, 0, sizeof(*t));
	t->offset = start;
	t->cls = (enum ber_class)(p[0] >> 6);
	t->constructed = (p[0] & 0x20) != 0;
	t->tag = p[0] & 0x1f;
	n = 1;
	if (t->tag == 0x1f) {
		/* X.690 8.1.2.4.2: base 128, bit 8 set on all but the last octet. */
		t->tag = 0;
		for (;;) {
			if (n >= (size_t)avail)
				return fail(r, err, SMIME_E_INPUT, "X.690 8.1.2.4: truncated: the input "
				    "ends at offset %" PRIu64 " inside the identifier octets of the "
				    "element at offset %" PRIu64, start + n, start);
			if (n >= room)
				return past_limit(r, "8.1.2.4", start, err);
			b = p[n];
			if (n == 1 && b == 0x80)
				return fail(r, err, SMIME_E_INPUT, "X.690 8.1.2.4.2 c: the tag number "
				    "of the element at offset %" PRIu64 " starts with a zero septet",
				    start);
			t->tag = (t->tag << 7) | (b & 0x7f);
			n++;
			if (t->tag >= BER_MAX_TAG)
				return fail(r, err, SMIME_E_INPUT, "X.690 8.1.2.4: the tag number of the "
				    "element at offset %" PRIu64 " exceeds the limit of 2^21", start);
			if ((b & 0x80) == 0)
				break;
		}
		if (t->tag < 31)
			return fail(r, err, SMIME_E_INPUT, "X.690 8.1.2.2: tag number %" PRIu32
			    " at offset %" PRIu64 " must use the one-octet form", t->tag, start);
	}
	if (t->cls == BER_UNIVERSAL && t->tag == 0)
		return fail(r, err, SMIME_E_INPUT, "X.690 8.1.5: a constructed end-of-contents "
		    "at offset %" PRIu64, start);

	/* X.690 8.1.3: length octets. */
	if (n >= (size_t)avail)
		return fail(r, err, SMIME_E_INPUT, "X.690 8.1.3: truncated: the input ends at "
		    "offset %" PRIu64 " inside the length octets of the element at offset %" PRIu64,
		    start + n, start);
	if (n >= room)
		return past_limit(r, "8.1.3", start, err);
	b = p[n++];
	len = 0;
	if (b == 0x80) {
		/* X.690 8.1.3.2 a: a primitive element has a definite length. */
		if (!t->constructed)
			return fail(r, err, SMIME_E_INPUT, "X.690 8.1.3.2 a: the primitive element "
			    "at offset %" PRIu64 " has an indefinite length", start);
		t->indefinite = true;
	} else if (b & 0x80) {
		need = b & 0x7f;
		/* X.690 8.1.3.5 c: 0xFF shall not be used. */
		if (need == 0x7f)
			return fail(r, err, SMIME_E_INPUT, "X.690 8.1.3.5 c: the element at offset %"
			    PRIu64 " has the reserved length octet 0xFF", start);
		if (need > BER_MAX_LEN_OCTETS)
			return fail(r, err, SMIME_E_INPUT, "X.690 8.1.3.5: the element at offset %"
			    PRIu64 " has %zu length octets, more than %d", start, need,
			    BER_MAX_LEN_OCTETS);
		for (i = 0; i < need; i++, n++) {
			if (n >= (size_t)avail)
				return fail(r, err, SMIME_E_INPUT, "X.690 8.1.3.5: truncated: the input "
				    "ends at offset %" PRIu64 " inside the length octets of the "
				    "element at offset %" PRIu64, start + n, start);
			if (n >= room)
				return past_limit(r, "8.1.3.5", start, err);
			len = (len << 8) | p[n];
		}
	} else {
		len = b;
	}
	if (n > room)
		return past_limit(r, "8.1.3", start, err);
	t->len = len;
	t->hdr_len = (uint32_t)n;
	if (!t->indefinite && len > room - n) {
		if (f->limit_is_total)
			return fail(r, err, SMIME_E_INPUT, "X.690 %s: length %" PRIu64 " at offset %"
			    PRIu64 " exceeds the %" PRIu64 " bytes left under the message size "
			    "limit", b & 0x80 ? "8.1.3.5" : "8.1.3.4", len, start, room - n);
		return fail(r, err, SMIME_E_INPUT, "X.690 %s: length %" PRIu64 " at offset %"
		    PRIu64 " exceeds the %" PRIu64 " bytes left in its container",
		    b & 0x80 ? "8.1.3.5" : "8.1.3.4", len, start, room - n);
	}
	memcpy(r->hdr, p, n);
	if ((rc = consume(r, n, err)) != 0)
		return rc;
	r->pending = true;
	return 0;
}

/* Step into the constructed element just read (r->last). */
static int
push(struct ber_reader *r, struct smime_error *err)
{
	const struct ber_tlv *t = &r->last;
	const struct ber_frame *f = top(r);
	struct ber_frame *g;

	if (r->depth >= BER_MAX_DEPTH)
		return fail(r, err, SMIME_E_INPUT, "X.690 8.1.1: the element at offset %" PRIu64
		    " is nested deeper than %d containers", t->offset, BER_MAX_DEPTH);
	g = &r->stack[++r->depth];
	g->indefinite = t->indefinite;
	g->offset = t->offset;
	if (t->indefinite) {
		g->limit = f->limit;
		g->limit_is_total = f->limit_is_total;
	} else {
		g->limit = r->pos + t->len;
		g->limit_is_total = false;
	}
	r->pending = false;
	return 0;
}

/*
 * Leave the current container: skip what is left of it, consume the
 * end-of-contents of an indefinite one.  Bounded by the stack depth.
 */
static int
pop(struct ber_reader *r, struct smime_error *err)
{
	const struct ber_frame *f;
	int base = r->depth - 1, rc;

	while (r->depth > base) {
		f = top(r);
		if (r->pending) {
			r->pending = false;
			if (r->last.constructed && r->last.indefinite) {
				if ((rc = push(r, err)) != 0)
					return rc;
				continue;
			}
			if ((rc = skip_bytes(r, r->last.len, r->last.offset, err)) != 0)
				return rc;
			continue;
		}
		if (!f->indefinite) {
			/* A definite container: its remaining bytes, unparsed. */
			if ((rc = skip_bytes(r, f->limit - r->pos, f->offset, err)) != 0)
				return rc;
			r->depth--;
			continue;
		}
		rc = read_header(r, err);
		if (rc == SMIME_E_NOTFOUND) {
			/* read_header saw 00 00 and left it. */
			if ((rc = consume(r, 2, err)) != 0)
				return rc;
			r->depth--;
			continue;
		}
		if (rc != 0)
			return rc;
		/* r->pending is set: the loop skips it. */
	}
	return 0;
}

/* Skip the pending element, at any depth, streaming. */
static int
skip_pending(struct ber_reader *r, struct smime_error *err)
{
	int rc;

	if (!r->pending)
		return 0;
	if (r->last.constructed && r->last.indefinite) {
		if ((rc = push(r, err)) != 0)
			return rc;
		return pop(r, err);
	}
	r->pending = false;
	return skip_bytes(r, r->last.len, r->last.offset, err);
}

/* ------------------------------------------------------------ the octets */

static int octets_step(struct ber_reader *r, struct smime_error *err);

/*
 * Finish an OCTET STRING whose BIO was freed before EOF, so that the reader
 * stands after it.
 */
static int
settle(struct ber_reader *r, struct smime_error *err)
{
	int rc;

	if (r->failed)
		return failed(r, err);
	if (r->oct.bio != NULL && !r->oct.done)
		return usage(err, "the OCTET STRING at offset %" PRIu64 " is still being read",
		    r->oct.offset);
	while (r->oct.active && !r->oct.done) {
		if (r->oct.left > 0) {
			if ((rc = skip_bytes(r, r->oct.left, r->oct.chunk_offset, err)) != 0)
				return rc;
			r->oct.left = 0;
		}
		if ((rc = octets_step(r, err)) != 0)
			return rc;
	}
	r->oct.active = false;
	return 0;
}

/*
 * Find the next primitive chunk of the open OCTET STRING (sets oct.left),
 * or its end (sets oct.done).  X.690 8.7.3.2: the contents of a constructed
 * OCTET STRING are OCTET STRINGs, primitive or constructed.
 */
static int
octets_step(struct ber_reader *r, struct smime_error *err)
{
	struct ber_tlv *t = &r->last;
	int rc;

	while (r->oct.left == 0 && !r->oct.done) {
		if (r->depth == r->oct.base) {
			r->oct.done = true;
			break;
		}
		rc = read_header(r, err);
		if (rc == SMIME_E_NOTFOUND) {
			if ((rc = pop(r, err)) != 0)
				return rc;
			continue;
		}
		if (rc != 0)
			return rc;
		if (t->cls != BER_UNIVERSAL || t->tag != 4)
			return fail(r, err, SMIME_E_INPUT, "X.690 8.7.3.2: the segment at offset %"
			    PRIu64 " of the OCTET STRING at offset %" PRIu64 " is [%s %" PRIu32
			    "], not an OCTET STRING", t->offset, r->oct.offset, class_name(t->cls),
			    t->tag);
		if (t->constructed) {
			if ((rc = push(r, err)) != 0)
				return rc;
			continue;
		}
		r->pending = false;
		r->oct.left = t->len;
		r->oct.chunk_offset = t->offset;
	}
	return 0;
}

static int
octets_read(BIO *b, char *out, int outl)
{
	struct ber_reader *r = BIO_get_data(b);
	size_t got = 0, take;
	long avail;

	BIO_clear_retry_flags(b);
	if (r == NULL)
		return BIO_get_init(b) ? 0 : -1;  /* finished, or its reader is gone */
	if (outl < 0)
		return -1;
	if (r->failed)
		return -1;
	while (got < (size_t)outl) {
		if (r->oct.left == 0) {
			if (octets_step(r, NULL) != 0)
				break;
			if (r->oct.done)
				break;
			continue;
		}
		if ((avail = fill(r, 1, NULL)) < 0)
			break;
		if (avail == 0) {
			fail(r, NULL, SMIME_E_INPUT, "X.690 8.7.3: truncated: the input ends at "
			    "offset %" PRIu64 " inside the OCTET STRING at offset %" PRIu64
			    " (%" PRIu64 " bytes missing from its segment at offset %" PRIu64 ")",
			    r->pos, r->oct.offset, r->oct.left, r->oct.chunk_offset);
			break;
		}
		take = (size_t)outl - got;
		if (take > (size_t)avail)
			take = (size_t)avail;
		if (take > r->oct.left)
			take = (size_t)r->oct.left;
		memcpy(out + got, r->win + r->win_off, take);
		if (consume(r, take, NULL) != 0)
			break;
		got += take;
		r->oct.left -= take;
		/* A primitive string is over with its last byte: no need to wait for a read of 0. */
		if (r->oct.left == 0 && r->depth == r->oct.base)
			r->oct.done = true;
	}
	if (got > 0)
		return (int)got;
	return r->failed ? -1 : 0;
}

static long
octets_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct ber_reader *r = BIO_get_data(b);
	size_t avail;

	switch (cmd) {
	case BIO_CTRL_EOF:
		return r == NULL || r->failed || r->oct.done;
	case BIO_CTRL_PENDING:
		if (r == NULL || r->failed || r->oct.done)
			return 0;
		avail = r->win_len - r->win_off;
		return (long)(r->oct.left < avail ? r->oct.left : avail);
	case BIO_CTRL_WPENDING:
		return 0;
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int
octets_destroy(BIO *b)
{
	struct ber_reader *r = BIO_get_data(b);

	if (r != NULL && r->oct.bio == b)
		r->oct.bio = NULL;  /* settle() skips what is left */
	BIO_set_data(b, NULL);
	BIO_set_init(b, 0);
	return 1;
}

static BIO_METHOD *octets_method;
static CRYPTO_ONCE octets_once = CRYPTO_ONCE_STATIC_INIT;

static void
octets_method_init(void)
{
	BIO_METHOD *m;
	int type = BIO_get_new_index();

	if (type == -1)
		return;
	if ((m = BIO_meth_new(type | BIO_TYPE_SOURCE_SINK, "BER OCTET STRING")) == NULL)
		return;
	if (!BIO_meth_set_read(m, octets_read) || !BIO_meth_set_ctrl(m, octets_ctrl) ||
	    !BIO_meth_set_destroy(m, octets_destroy)) {
		BIO_meth_free(m);
		return;
	}
	octets_method = m;
}

BIO *
ber_octets_bio(struct ber_reader *r, const struct ber_tlv *t)
{
	BIO *b;
	int rc;

	if (r == NULL || t == NULL || settle(r, NULL) != 0)
		return NULL;
	if (!r->pending || t->offset != r->last.offset)
		return NULL;
	if (!CRYPTO_THREAD_run_once(&octets_once, octets_method_init) || octets_method == NULL)
		return NULL;
	if ((b = BIO_new(octets_method)) == NULL)
		return NULL;
	if (r->oct.bio != NULL)
		BIO_set_data(r->oct.bio, NULL);  /* the previous string's BIO, at EOF */
	memset(&r->oct, 0, sizeof(r->oct));
	r->oct.offset = t->offset;
	r->oct.base = r->depth;
	if (t->constructed) {
		if ((rc = push(r, NULL)) != 0) {
			BIO_free(b);
			return NULL;
		}
	} else {
		r->pending = false;
		r->oct.left = t->len;
		r->oct.chunk_offset = t->offset;
		if (t->len == 0)
			r->oct.done = true;
	}
	r->oct.active = true;
	r->oct.bio = b;
	BIO_set_data(b, r);
	BIO_set_init(b, 1);
	return b;
}

int
ber_error(struct ber_reader *r, struct smime_error *err)
{
	if (r == NULL || r->failed == 0)
		return 0;
	return failed(r, err);
}

/* ------------------------------------------------------------- the reader */

struct ber_reader *
ber_reader_new(BIO *in, uint64_t max_total)
{
	struct ber_reader *r;

	if (in == NULL)
		return NULL;
	if ((r = OPENSSL_zalloc(sizeof(*r))) == NULL)
		return NULL;
	if ((r->win = OPENSSL_malloc(BER_WINDOW)) == NULL) {
		OPENSSL_free(r);
		return NULL;
	}
	r->in = in;
	r->max_total = max_total;
	r->stack[0].limit = max_total;
	r->stack[0].limit_is_total = true;
	return r;
}

void
ber_reader_free(struct ber_reader *r)
{
	if (r == NULL)
		return;
	if (r->oct.bio != NULL) {
		/* The BIO may outlive the reader: it then fails its reads. */
		BIO_set_data(r->oct.bio, NULL);
		r->oct.bio = NULL;
	}
	OPENSSL_clear_free(r->cap, r->cap_size);
	OPENSSL_free(r->win);
	OPENSSL_free(r);
}

uint64_t
ber_tell(const struct ber_reader *r)
{
	return r->pos;
}

/* An element whose contents were not read (entered, skipped, read whole, streamed) is skipped. */
int
ber_next(struct ber_reader *r, struct ber_tlv *t, struct smime_error *err)
{
	int rc;

	if ((rc = settle(r, err)) != 0)
		return rc;
	if ((rc = skip_pending(r, err)) != 0)
		return rc;
	if ((rc = read_header(r, err)) != 0)
		return rc;
	*t = r->last;
	return 0;
}

int
ber_expect(struct ber_reader *r, enum ber_class cls, uint32_t tag, bool constructed,
    struct ber_tlv *t, const char *what, struct smime_error *err)
{
	int rc;

	rc = ber_next(r, t, err);
	if (rc == SMIME_E_NOTFOUND)
		return smime_error_set(err, SMIME_E_INPUT, "X.690 8.1.1: %s ([%s %" PRIu32 "]) "
		    "expected at offset %" PRIu64 ", found the end of its container", what,
		    class_name(cls), tag, r->pos);
	if (rc != 0)
		return rc;
	/* On a mismatch t still holds what was found; the reader can skip it. */
	if (t->cls != cls || t->tag != tag || t->constructed != constructed)
		return smime_error_set(err, SMIME_E_INPUT, "X.690 8.1.2: %s ([%s %" PRIu32
		    "%s]) expected at offset %" PRIu64 ", found [%s %" PRIu32 "%s]", what,
		    class_name(cls), tag, constructed ? " constructed" : " primitive", t->offset,
		    class_name(t->cls), t->tag, t->constructed ? " constructed" : " primitive");
	return 0;
}

static int
check_pending(struct ber_reader *r, const struct ber_tlv *t, const char *fn,
    struct smime_error *err)
{
	int rc;

	if ((rc = settle(r, err)) != 0)
		return rc;
	if (!r->pending || t->offset != r->last.offset)
		return usage(err, "%s: the element at offset %" PRIu64 " is not the one just read",
		    fn, t->offset);
	return 0;
}

int
ber_enter(struct ber_reader *r, const struct ber_tlv *t, struct smime_error *err)
{
	int rc;

	if ((rc = check_pending(r, t, "ber_enter", err)) != 0)
		return rc;
	if (!r->last.constructed)
		return usage(err, "ber_enter: the element at offset %" PRIu64 " is primitive",
		    t->offset);
	return push(r, err);
}

int
ber_leave(struct ber_reader *r, struct smime_error *err)
{
	int rc;

	if ((rc = settle(r, err)) != 0)
		return rc;
	if (r->depth == 0)
		return usage(err, "ber_leave: not inside a container");
	return pop(r, err);
}

int
ber_finish(struct ber_reader *r, struct smime_error *err)
{
	struct ber_tlv t;
	int rc;

	while (r->depth > 0)
		if ((rc = ber_leave(r, err)) != 0)
			return rc;
	rc = ber_next(r, &t, err);
	if (rc == SMIME_E_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	return fail(r, err, SMIME_E_INPUT, "X.690 8.1.1: data after the end of the structure "
	    "(offset %" PRIu64 ")", t.offset);
}

int
ber_content_info(struct ber_reader *r, int *nid_r, unsigned char **oid_r, size_t *oid_len_r,
    struct smime_error *err)
{
	struct ber_tlv t;
	unsigned char *oid = NULL;
	size_t oid_len = 0;
	const unsigned char *p;
	ASN1_OBJECT *obj;
	int rc;

	*nid_r = NID_undef;
	/* RFC 5652 3: ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content } */
	if ((rc = ber_expect(r, BER_UNIVERSAL, 16, true, &t, "ContentInfo", err)) != 0 ||
	    (rc = ber_enter(r, &t, err)) != 0 ||
	    (rc = ber_expect(r, BER_UNIVERSAL, 6, false, &t, "ContentInfo.contentType", err)) != 0 ||
	    (rc = ber_read_whole(r, &t, 64, &oid, &oid_len, err)) != 0)
		return rc;
	p = oid;
	obj = d2i_ASN1_OBJECT(NULL, &p, (long)oid_len);
	*nid_r = obj != NULL ? OBJ_obj2nid(obj) : NID_undef;
	ASN1_OBJECT_free(obj);
	if (oid_r != NULL) {
		*oid_r = oid;
		*oid_len_r = oid_len;
	} else {
		OPENSSL_free(oid);
	}
	return 0;
}

int
ber_skip(struct ber_reader *r, const struct ber_tlv *t, struct smime_error *err)
{
	int rc;

	if ((rc = check_pending(r, t, "ber_skip", err)) != 0)
		return rc;
	return skip_pending(r, err);
}

int
ber_read_whole(struct ber_reader *r, const struct ber_tlv *t, size_t max,
    unsigned char **der_r, size_t *len_r, struct smime_error *err)
{
	int rc;

	*der_r = NULL;
	*len_r = 0;
	if ((rc = check_pending(r, t, "ber_read_whole", err)) != 0)
		return rc;
	if (max > BER_MAX_WHOLE)
		max = BER_MAX_WHOLE;
	/* Too large to read whole: refused before a byte is read, the element still pending. */
	if (r->last.hdr_len > max ||
	    (!r->last.indefinite && r->last.len > max - r->last.hdr_len))
		return smime_error_set(err, SMIME_E_INPUT, "the element at offset %" PRIu64
		    " (%" PRIu64 " bytes) is larger than the %zu bytes allowed for it", t->offset,
		    (uint64_t)r->last.hdr_len + r->last.len, max);
	r->cap_size = r->last.indefinite ? r->last.hdr_len + 256u : r->last.hdr_len +
	    (size_t)r->last.len;
	if (r->cap_size > max)
		r->cap_size = max;
	if ((r->cap = OPENSSL_malloc(r->cap_size > 0 ? r->cap_size : 1)) == NULL)
		return fail(r, err, SMIME_E_INTERNAL, "out of memory");
	memcpy(r->cap, r->hdr, r->last.hdr_len);
	r->cap_len = r->last.hdr_len;
	r->cap_max = max;
	r->cap_offset = t->offset;
	r->capturing = true;
	rc = skip_pending(r, err);
	r->capturing = false;
	if (rc != 0) {
		OPENSSL_clear_free(r->cap, r->cap_size);
	} else {
		*der_r = r->cap;
		*len_r = r->cap_len;
	}
	r->cap = NULL;
	r->cap_len = r->cap_size = 0;
	return rc;
}

/* Unit tests of lib/ber.c: the streaming BER reader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "testutil.h"
#include "../../lib/ber.h"

/* ------------------------------------------------- counting allocations */

/*
 * Every OpenSSL allocation (the reader allocates through OPENSSL_malloc)
 * is counted, so that a test can show that reading a huge content
 * allocates nothing that grows with it.
 */
static bool counting;
static size_t live_bytes, peak_bytes, n_allocs;

static void *
count_malloc(size_t n, const char *file, int line)
{
	size_t *p = malloc(n + 16);

	(void)file;
	(void)line;
	if (p == NULL)
		return NULL;
	*p = n;
	live_bytes += n;
	if (live_bytes > peak_bytes)
		peak_bytes = live_bytes;
	n_allocs++;
	return (char *)p + 16;
}

static void
count_free(void *q, const char *file, int line)
{
	size_t *p;

	(void)file;
	(void)line;
	if (q == NULL)
		return;
	p = (size_t *)((char *)q - 16);
	live_bytes -= *p;
	free(p);
}

static void *
count_realloc(void *q, size_t n, const char *file, int line)
{
	size_t *p, old;
	void *fresh;

	if (q == NULL)
		return count_malloc(n, file, line);
	if (n == 0) {
		count_free(q, file, line);
		return NULL;
	}
	p = (size_t *)((char *)q - 16);
	old = *p;
	if ((fresh = count_malloc(n, file, line)) == NULL)
		return NULL;
	memcpy(fresh, q, old < n ? old : n);
	count_free(q, file, line);
	return fresh;
}

/* ------------------------------------------------------ building BER */

struct bb {
	unsigned char *p;
	size_t n, size;
};

static void
bb_put(struct bb *b, const void *p, size_t n)
{
	if (b->n + n > b->size) {
		b->size = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->size);
		assert_non_null(b->p);
	}
	if (n > 0)
		memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void
bb_byte(struct bb *b, unsigned char c)
{
	bb_put(b, &c, 1);
}

/* Identifier id, then a definite length (minimal) or 0x80; contents c; 00 00. */
static void
bb_tlv(struct bb *b, unsigned char id, bool indefinite, const struct bb *c)
{
	size_t len = c->n;

	bb_byte(b, id);
	if (indefinite) {
		bb_byte(b, 0x80);
	} else if (len < 0x80) {
		bb_byte(b, (unsigned char)len);
	} else if (len < 0x100) {
		bb_byte(b, 0x81);
		bb_byte(b, (unsigned char)len);
	} else {
		assert_true(len < 0x10000);
		bb_byte(b, 0x82);
		bb_byte(b, (unsigned char)(len >> 8));
		bb_byte(b, (unsigned char)len);
	}
	bb_put(b, c->p, c->n);
	if (indefinite)
		bb_put(b, "\0\0", 2);
}

static void
bb_free(struct bb *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static size_t
unhex(const char *s, unsigned char *out, size_t size)
{
	size_t n = 0;
	unsigned int v;

	while (*s != '\0') {
		if (*s == ' ') {
			s++;
			continue;
		}
		assert_true(n < size);
		assert_int_equal(sscanf(s, "%2x", &v), 1);
		out[n++] = (unsigned char)v;
		s += 2;
	}
	return n;
}

/* -------------------------------------------------- a generic walker */

/* The contents of the OCTET STRING t through ber_octets_bio, appended to out. */
static int
read_octets(struct ber_reader *r, const struct ber_tlv *t, struct bb *out,
    struct smime_error *err)
{
	unsigned char chunk[4096];
	BIO *b;
	int n, rc;

	if ((b = ber_octets_bio(r, t)) == NULL) {
		if ((rc = ber_error(r, err)) != 0)
			return rc;
		return smime_error_set(err, SMIME_E_INTERNAL, "ber_octets_bio failed");
	}
	while ((n = BIO_read(b, chunk, sizeof(chunk))) > 0)
		if (out != NULL)
			bb_put(out, chunk, (size_t)n);
	assert_true(BIO_eof(b) || n < 0);
	BIO_free(b);
	if ((rc = ber_error(r, err)) != 0)
		return rc;
	assert_int_equal(n, 0);
	return 0;
}

/* Every element at any depth; universal OCTET STRINGs streamed into out. */
static int
walk(struct ber_reader *r, struct bb *out, struct smime_error *err)
{
	struct ber_tlv t;
	int rc;

	for (;;) {
		rc = ber_next(r, &t, err);
		if (rc == SMIME_E_NOTFOUND)
			return 0;
		if (rc != 0)
			return rc;
		if (t.cls == BER_UNIVERSAL && t.tag == 4)
			rc = read_octets(r, &t, out, err);
		else if (t.constructed) {
			if ((rc = ber_enter(r, &t, err)) == 0 && (rc = walk(r, out, err)) == 0)
				rc = ber_leave(r, err);
		} else
			rc = ber_skip(r, &t, err);
		if (rc != 0)
			return rc;
	}
}

static int
walk_bytes(const unsigned char *p, size_t n, uint64_t max_total, struct bb *out,
    uint64_t *tell_r, struct smime_error *err)
{
	BIO *in = BIO_new_mem_buf(p, (int)n);
	struct ber_reader *r;
	int rc;

	assert_non_null(in);
	r = ber_reader_new(in, max_total);
	assert_non_null(r);
	rc = walk(r, out, err);
	if (tell_r != NULL)
		*tell_r = ber_tell(r);
	ber_reader_free(r);
	BIO_free(in);
	return rc;
}

/* ------------------------------------------------ nestings, positive */

enum octets_form { OCT_PRIMITIVE, OCT_ONE_CHUNK, OCT_MANY_CHUNKS, OCT_NESTED, OCT_INDEFINITE };

/* The OCTET STRING holding msg in the given form. */
static void
make_octets(struct bb *b, enum octets_form form, const unsigned char *msg, size_t n)
{
	struct bb c = { 0 }, inner = { 0 }, piece = { 0 };
	size_t i, step;

	switch (form) {
	case OCT_PRIMITIVE:
		bb_put(&c, msg, n);
		bb_tlv(b, 0x04, false, &c);
		break;
	case OCT_ONE_CHUNK:
		bb_put(&piece, msg, n);
		bb_tlv(&c, 0x04, false, &piece);
		bb_tlv(b, 0x24, false, &c);
		break;
	case OCT_MANY_CHUNKS:
	case OCT_INDEFINITE:
		/* chunks of 1, 7, 0, 300, ... bytes: sizes that cross short and long forms */
		for (i = 0, step = 1; i < n; i += step, step = step * 7 % 301) {
			if (step > n - i)
				step = n - i;
			piece.n = 0;
			bb_put(&piece, msg + i, step);
			bb_tlv(&c, 0x04, false, &piece);
			if (i == 0) {
				piece.n = 0;
				bb_tlv(&c, 0x04, false, &piece);  /* an empty chunk */
			}
		}
		bb_tlv(b, 0x24, form == OCT_INDEFINITE, &c);
		break;
	case OCT_NESTED:
		/* 04 | 24(04 04) | 24 80 (24(04)) 00 00: X.690 8.7.3.2 allows nesting */
		piece.n = 0;
		bb_put(&piece, msg, n / 4);
		bb_tlv(&c, 0x04, false, &piece);
		piece.n = 0;
		bb_put(&piece, msg + n / 4, n / 4);
		bb_tlv(&inner, 0x04, false, &piece);
		piece.n = 0;
		bb_put(&piece, msg + n / 2, n / 4);
		bb_tlv(&inner, 0x04, false, &piece);
		bb_tlv(&c, 0x24, false, &inner);
		inner.n = 0;
		{
			struct bb deep = { 0 };

			piece.n = 0;
			bb_put(&piece, msg + 3 * (n / 4), n - 3 * (n / 4));
			bb_tlv(&deep, 0x04, false, &piece);
			bb_tlv(&inner, 0x24, false, &deep);
			bb_free(&deep);
		}
		bb_tlv(&c, 0x24, true, &inner);
		bb_tlv(b, 0x24, false, &c);
		break;
	}
	bb_free(&c);
	bb_free(&inner);
	bb_free(&piece);
}

static void
test_nestings(void **state)
{
	static const unsigned char wrappers[] = { 0x30, 0x31, 0xa0 };  /* SEQUENCE, SET, [0] */
	static const enum octets_form forms[] = { OCT_PRIMITIVE, OCT_ONE_CHUNK, OCT_MANY_CHUNKS,
	    OCT_NESTED, OCT_INDEFINITE };
	unsigned char msg[1000];
	size_t i, w, f, depth, sizes[] = { 0, 1, 5, 200, sizeof(msg) }, s;
	int indef;

	(void)state;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)(i * 7 + 3);
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
	for (f = 0; f < sizeof(forms) / sizeof(forms[0]); f++)
	for (w = 0; w < sizeof(wrappers); w++)
	for (indef = 0; indef < 2; indef++)
	for (depth = 0; depth <= 3; depth++) {
		struct bb enc = { 0 }, tmp = { 0 }, out = { 0 };
		struct smime_error err = { 0 };
		struct ber_reader *r;
		struct ber_tlv t;
		BIO *in;
		size_t d, n = sizes[s];

		if (forms[f] == OCT_NESTED && n < 4)
			continue;
		make_octets(&enc, forms[f], msg, n);
		/* wrap depth times, alternating the length form per level */
		for (d = 0; d < depth; d++) {
			tmp.n = 0;
			bb_put(&tmp, enc.p, enc.n);
			enc.n = 0;
			bb_tlv(&enc, wrappers[(w + d) % 3], ((size_t)indef + d) % 2 == 1, &tmp);
		}

		/* A schema-like walk: expect, enter, the string, NOTFOUND, leave. */
		in = BIO_new_mem_buf(enc.p, (int)enc.n);
		r = ber_reader_new(in, enc.n + 100);
		assert_non_null(r);
		for (d = 0; d < depth; d++) {
			unsigned char id = wrappers[(w + depth - 1 - d) % 3];

			assert_int_equal(ber_expect(r, id == 0xa0 ? BER_CONTEXT : BER_UNIVERSAL,
			    id & 0x1f, true, &t, "wrapper", &err), 0);
			assert_int_equal(t.indefinite, ((size_t)indef + depth - 1 - d) % 2 == 1);
			assert_int_equal(ber_enter(r, &t, &err), 0);
		}
		assert_int_equal(ber_next(r, &t, &err), 0);
		assert_int_equal(t.cls, BER_UNIVERSAL);
		assert_int_equal(t.tag, 4);
		assert_int_equal(t.constructed, forms[f] != OCT_PRIMITIVE);
		assert_int_equal(read_octets(r, &t, &out, &err), 0);
		assert_int_equal(out.n, n);
		assert_memory_equal(out.p != NULL ? out.p : msg, msg, n);
		for (d = 0; d < depth; d++) {
			assert_int_equal(ber_next(r, &t, &err), SMIME_E_NOTFOUND);
			assert_int_equal(ber_next(r, &t, &err), SMIME_E_NOTFOUND);  /* stays put */
			assert_int_equal(ber_leave(r, &err), 0);
		}
		assert_int_equal(ber_next(r, &t, &err), SMIME_E_NOTFOUND);
		assert_int_equal(ber_tell(r), enc.n);
		ber_reader_free(r);
		BIO_free(in);

		/* The generic walk and a skip of the whole agree. */
		out.n = 0;
		assert_int_equal(walk_bytes(enc.p, enc.n, enc.n, &out, NULL, &err), 0);
		assert_int_equal(out.n, n);
		in = BIO_new_mem_buf(enc.p, (int)enc.n);
		r = ber_reader_new(in, enc.n);
		assert_int_equal(ber_next(r, &t, &err), 0);
		assert_int_equal(ber_skip(r, &t, &err), 0);
		assert_int_equal(ber_tell(r), enc.n);
		assert_int_equal(ber_next(r, &t, &err), SMIME_E_NOTFOUND);
		ber_reader_free(r);
		BIO_free(in);

		bb_free(&enc);
		bb_free(&tmp);
		bb_free(&out);
	}
}

/* --------------------------------------------------- table of inputs */

static const struct hex_case {
	const char *name;
	const char *hex;
	uint64_t max_total;     /* 0: 1 MiB */
	int rc;
	const char *octets;     /* rc 0: the concatenated OCTET STRING bytes, hex */
	const char *message;    /* rc != 0: a substring of the error */
} hex_cases[] = {
	{ "empty input", "", 0, 0, "", NULL },
	{ "primitive", "04 03 41 42 43", 0, 0, "414243", NULL },
	{ "non-minimal long form accepted", "04 84 00 00 00 02 41 42", 0, 0, "4142", NULL },
	{ "eight length octets", "04 88 00 00 00 00 00 00 00 01 41", 0, 0, "41", NULL },
	{ "two top-level elements", "04 01 41 04 01 42", 0, 0, "4142", NULL },
	{ "high tag 31", "1f 1f 00", 0, 0, "", NULL },
	{ "high tag 128", "9f 81 00 01 ff", 0, 0, "", NULL },
	{ "high tag 2^21-1, constructed indefinite", "bf ff ff 7f 80 04 01 41 00 00", 0, 0, "41",
	    NULL },
	{ "application and private classes", "61 03 04 01 41 e2 80 00 00", 0, 0, "41", NULL },
	{ "empty indefinite", "30 80 00 00", 0, 0, "", NULL },
	{ "implicit [0] primitive, not an OCTET STRING here", "80 02 41 42", 0, 0, "", NULL },

	{ "high tag 2^21", "1f 81 80 80 00 00", 0, SMIME_E_INPUT, NULL, "X.690 8.1.2.4: the tag "
	    "number of the element at offset 0 exceeds the limit of 2^21" },
	{ "high tag with a leading zero septet", "1f 80 01 00", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.2.4.2 c" },
	{ "low tag in the high form", "1f 05 00", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.2.2: tag number 5 at offset 0 must use the one-octet form" },
	{ "primitive indefinite", "04 80 41 00 00", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.3.2 a: the primitive element at offset 0 has an indefinite length" },
	{ "nested primitive indefinite", "30 80 02 80 00 00 00 00", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.3.2 a: the primitive element at offset 2" },
	{ "EOC with a length", "30 80 00 01 00 00 00", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.5: end-of-contents at offset 2 has a non-zero length" },
	{ "EOC in a definite container", "30 02 00 00", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.5: end-of-contents at offset 2 outside an indefinite-length container" },
	{ "EOC at the top", "00 00", 0, SMIME_E_INPUT, NULL, "outside an indefinite" },
	{ "constructed EOC", "30 80 20 00 00 00", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.5: a constructed end-of-contents at offset 2" },
	{ "reserved length 0xFF", "04 ff 00", 0, SMIME_E_INPUT, NULL, "X.690 8.1.3.5 c" },
	{ "nine length octets", "04 89 00 00 00 00 00 00 00 00 01 41", 0, SMIME_E_INPUT, NULL,
	    "has 9 length octets, more than 8" },
	{ "length beyond its container", "30 03 04 05 41 42 43", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.3.4: length 5 at offset 2 exceeds the 1 bytes left in its container" },
	{ "4 GiB in a 1200-byte container",
	    "30 82 04 c5 04 0c 00 00 00 00 00 00 00 00 00 00 00 00 04 85 01 00 00 00 00", 0,
	    SMIME_E_INPUT, NULL, "X.690 8.1.3.5: length 4294967296 at offset 18 exceeds the 1200 "
	    "bytes left in its container" },
	{ "length beyond max_total", "04 84 7f ff ff ff 00", 1000, SMIME_E_INPUT, NULL,
	    "X.690 8.1.3.5: length 2147483647 at offset 0 exceeds the 994 bytes left under the "
	    "message size limit" },
	{ "2^64-1", "04 88 ff ff ff ff ff ff ff ff", 0, SMIME_E_INPUT, NULL,
	    "length 18446744073709551615 at offset 0 exceeds" },
	{ "indefinite inside definite, no EOC", "30 04 30 80 04 00", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.3.6.1: the element at offset 2 has no end-of-contents before the end of its "
	    "container at offset 6" },
	{ "header across its container's end", "30 03 00 00 04 01 41", 0, SMIME_E_INPUT, NULL,
	    "outside an indefinite" },
	{ "header past the container end", "30 01 04 01 41", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.3: the element at offset 2 runs past the end of its container at offset 3" },
	{ "truncated identifier", "1f 81", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.2.4: truncated: the input ends at offset 2 inside the identifier octets" },
	{ "truncated length", "30", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.3: truncated: the input ends at offset 1 inside the length octets of the "
	    "element at offset 0" },
	{ "truncated long length", "30 82 01", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.3.5: truncated" },
	{ "truncated contents", "04 05 41 42", 0, SMIME_E_INPUT, NULL,
	    "truncated: the input ends at offset 4 inside the OCTET STRING at offset 0" },
	{ "truncated skipped contents", "02 05 41 42", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.4: truncated: the input ends at offset 4 inside the contents of the "
	    "element at offset 0 (3 bytes missing)" },
	{ "truncated definite container", "30 05 02 01 00", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.4: truncated: the input ends at offset 5 inside the contents of the "
	    "element at offset 0 (2 bytes missing)" },
	{ "missing EOC", "30 80 04 01 41", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.5: truncated: the input ends at offset 5 before the end-of-contents of the "
	    "element at offset 0" },
	{ "half an EOC", "30 80 00", 0, SMIME_E_INPUT, NULL,
	    "inside the end-of-contents octets at offset 2" },
	{ "segment not an OCTET STRING", "24 80 02 01 00 00 00", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.7.3.2: the segment at offset 2 of the OCTET STRING at offset 0 is "
	    "[UNIVERSAL 2], not an OCTET STRING" },
	{ "segment with a context tag", "24 03 80 01 41", 0, SMIME_E_INPUT, NULL,
	    "is [CONTEXT 0], not an OCTET STRING" },
	{ "segment primitive indefinite", "24 80 04 80 00 00 00 00", 0, SMIME_E_INPUT, NULL,
	    "X.690 8.1.3.2 a" },
	{ "segment beyond the string", "24 03 04 05 41 42 43", 0, SMIME_E_INPUT, NULL,
	    "length 5 at offset 2 exceeds the 1 bytes left in its container" },
	{ "message size limit cuts a header", "30 80 04 01 41 00 00", 5, SMIME_E_INPUT, NULL,
	    "X.690 8.1.3.6.1: the element at offset 0 has no end-of-contents within the 5-byte "
	    "message size limit" },
};

static void
test_hex_table(void **state)
{
	unsigned char in[256], want[256];
	size_t i, n, wn;

	(void)state;
	for (i = 0; i < sizeof(hex_cases) / sizeof(hex_cases[0]); i++) {
		const struct hex_case *c = &hex_cases[i];
		struct smime_error err = { 0 };
		struct bb out = { 0 };
		int rc;

		n = unhex(c->hex, in, sizeof(in));
		rc = walk_bytes(in, n, c->max_total ? c->max_total : 1 << 20, &out, NULL, &err);
		if (rc != c->rc || (rc != 0 && strstr(err.message, c->message) == NULL))
			fail_msg("%s: rc %d (want %d): %s", c->name, rc, c->rc, err.message);
		if (rc == 0) {
			wn = unhex(c->octets, want, sizeof(want));
			assert_int_equal(out.n, wn);
			if (wn > 0)
				assert_memory_equal(out.p, want, wn);
		} else {
			assert_int_equal(err.code, rc);
			assert_null(strchr(err.message, '\n'));
		}
		bb_free(&out);
	}
}

/* High tag numbers decode to the right class, form and number. */
static void
test_high_tags(void **state)
{
	static const struct {
		const char *hex;
		enum ber_class cls;
		bool constructed;
		uint32_t tag;
		uint32_t hdr_len;
	} rows[] = {
		{ "1f 1f 00", BER_UNIVERSAL, false, 31, 3 },
		{ "5f 7f 00", BER_APPLICATION, false, 127, 3 },
		{ "bf 81 00 80 00 00", BER_CONTEXT, true, 128, 4 },
		{ "df ff ff 7f 00", BER_PRIVATE, false, (1u << 21) - 1, 5 },
		{ "1e 00", BER_UNIVERSAL, false, 30, 2 },
	};
	unsigned char in[16];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smime_error err;
		struct ber_tlv t;
		struct ber_reader *r;
		BIO *bio;

		n = unhex(rows[i].hex, in, sizeof(in));
		bio = BIO_new_mem_buf(in, (int)n);
		r = ber_reader_new(bio, n);
		assert_int_equal(ber_next(r, &t, &err), 0);
		assert_int_equal(t.cls, rows[i].cls);
		assert_int_equal(t.constructed, rows[i].constructed);
		assert_int_equal(t.tag, rows[i].tag);
		assert_int_equal(t.hdr_len, rows[i].hdr_len);
		assert_int_equal(t.offset, 0);
		assert_int_equal(ber_skip(r, &t, &err), 0);
		assert_int_equal(ber_tell(r), n);
		ber_reader_free(r);
		BIO_free(bio);
	}
}

/* BER_MAX_DEPTH nested containers are read; one more is refused. */
static void
test_depth(void **state)
{
	int depth, indef;

	(void)state;
	for (indef = 0; indef < 2; indef++)
	for (depth = BER_MAX_DEPTH - 1; depth <= BER_MAX_DEPTH + 1; depth++) {
		struct bb enc = { 0 }, tmp = { 0 };
		struct smime_error err = { 0 };
		struct ber_tlv t;
		struct ber_reader *r;
		BIO *in;
		int d, rc;

		bb_put(&enc, "\x04\x01\x41", 3);
		for (d = 0; d < depth; d++) {
			tmp.n = 0;
			bb_put(&tmp, enc.p, enc.n);
			enc.n = 0;
			bb_tlv(&enc, 0x30, indef, &tmp);
		}
		rc = walk_bytes(enc.p, enc.n, enc.n, NULL, NULL, &err);
		if (depth <= BER_MAX_DEPTH) {
			assert_int_equal(rc, 0);
		} else {
			assert_int_equal(rc, SMIME_E_INPUT);
			assert_non_null(strstr(err.message, "is nested deeper than 32 containers"));
		}
		/* Skipping the whole needs the same bound for indefinite forms. */
		in = BIO_new_mem_buf(enc.p, (int)enc.n);
		r = ber_reader_new(in, enc.n);
		assert_int_equal(ber_next(r, &t, &err), 0);
		rc = ber_skip(r, &t, &err);
		assert_int_equal(rc, indef && depth > BER_MAX_DEPTH ? SMIME_E_INPUT : 0);
		ber_reader_free(r);
		BIO_free(in);
		bb_free(&enc);
		bb_free(&tmp);
	}
}

/* Every proper prefix of a structure is an error, never a crash. */
static void
test_every_truncation(void **state)
{
	static const char *const hexes[] = {
		/* definite: SEQUENCE { OID, [0] { SEQUENCE { INTEGER, 24 { 04, 04 } } } } */
		"30 1b 06 03 2a 03 04 a0 14 30 12 02 01 00 24 0d 04 03 41 42 43 04 06 44 45 46 47 48 49",
		/* the same, indefinite at every level, a high tag inside */
		"30 80 06 03 2a 03 04 a0 80 30 80 02 01 00 bf 81 00 80 05 00 00 00 24 80 04 03 41 42 43"
		" 24 80 04 02 44 45 00 00 00 00 00 00 00 00 00 00",
	};
	unsigned char in[128];
	size_t h, n, cut;

	(void)state;
	for (h = 0; h < sizeof(hexes) / sizeof(hexes[0]); h++) {
		struct smime_error err;
		struct bb out = { 0 };

		n = unhex(hexes[h], in, sizeof(in));
		assert_int_equal(walk_bytes(in, n, 1 << 20, &out, NULL, &err), 0);
		assert_true(out.n == 9 || out.n == 5);
		for (cut = 1; cut < n; cut++) {
			int rc;

			out.n = 0;
			rc = walk_bytes(in, cut, 1 << 20, &out, NULL, &err);
			if (rc != SMIME_E_INPUT || strstr(err.message, "truncated") == NULL)
				fail_msg("cut at %zu: rc %d: %s", cut, rc, err.message);
			/* and a max_total at the cut says so too */
			rc = walk_bytes(in, n, cut, &out, NULL, &err);
			if (rc != SMIME_E_INPUT)
				fail_msg("limit %zu: rc %d: %s", cut, rc, err.message);
		}
		bb_free(&out);
	}
}

/* ber_expect: the wrong class, tag or form, or nothing there. */
static void
test_expect(void **state)
{
	static const struct {
		const char *hex;
		enum ber_class cls;
		uint32_t tag;
		bool constructed;
		int rc;
		const char *message;
	} rows[] = {
		{ "30 00", BER_UNIVERSAL, 16, true, 0, NULL },
		{ "a0 00", BER_CONTEXT, 0, true, 0, NULL },
		{ "30 00", BER_UNIVERSAL, 17, true, SMIME_E_INPUT,
		    "X.690 8.1.2: thing ([UNIVERSAL 17 constructed]) expected at offset 0, found "
		    "[UNIVERSAL 16 constructed]" },
		{ "a0 00", BER_UNIVERSAL, 0, true, SMIME_E_INPUT, "found [CONTEXT 0 constructed]" },
		{ "04 00", BER_UNIVERSAL, 4, true, SMIME_E_INPUT, "found [UNIVERSAL 4 primitive]" },
		{ "24 80 00 00", BER_UNIVERSAL, 4, false, SMIME_E_INPUT,
		    "found [UNIVERSAL 4 constructed]" },
		{ "", BER_UNIVERSAL, 16, true, SMIME_E_INPUT,
		    "X.690 8.1.1: thing ([UNIVERSAL 16]) expected at offset 0, found the end of its "
		    "container" },
		{ "30 80", BER_UNIVERSAL, 16, true, 0, NULL },  /* truncation found later */
		{ "04 80", BER_UNIVERSAL, 4, false, SMIME_E_INPUT, "X.690 8.1.3.2 a" },
	};
	unsigned char in[16];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smime_error err = { 0 };
		struct ber_tlv t;
		struct ber_reader *r;
		BIO *bio;
		int rc;

		n = unhex(rows[i].hex, in, sizeof(in));
		bio = BIO_new_mem_buf(in, (int)n);
		r = ber_reader_new(bio, 100);
		rc = ber_expect(r, rows[i].cls, rows[i].tag, rows[i].constructed, &t, "thing", &err);
		if (rc != rows[i].rc ||
		    (rc != 0 && strstr(err.message, rows[i].message) == NULL))
			fail_msg("row %zu: rc %d: %s", i, rc, err.message);
		/* a mismatch leaves the element readable: skip it */
		if (rc == SMIME_E_INPUT && strstr(rows[i].message, "found [") != NULL) {
			assert_int_equal(ber_skip(r, &t, &err), 0);
			assert_int_equal(ber_next(r, &t, &err), SMIME_E_NOTFOUND);
		}
		ber_reader_free(r);
		BIO_free(bio);
	}
}

/* Calls out of order are usage errors, not crashes. */
static void
test_usage(void **state)
{
	static const unsigned char in[] = { 0x30, 0x06, 0x04, 0x01, 0x41, 0x04, 0x01, 0x42 };
	struct smime_error err;
	struct ber_tlv t, first;
	struct ber_reader *r;
	unsigned char *der;
	size_t len;
	BIO *bio = BIO_new_mem_buf(in, sizeof(in)), *oct;

	(void)state;
	r = ber_reader_new(bio, sizeof(in));
	assert_int_equal(ber_leave(r, &err), SMIME_E_USAGE);
	assert_int_equal(ber_next(r, &first, &err), 0);
	assert_int_equal(ber_enter(r, &first, &err), 0);
	assert_int_equal(ber_enter(r, &first, &err), SMIME_E_USAGE);   /* not the last read */
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_int_equal(ber_enter(r, &t, &err), SMIME_E_USAGE);       /* primitive */
	oct = ber_octets_bio(r, &t);
	assert_non_null(oct);
	/* while its BIO is open, the reader waits */
	assert_int_equal(ber_next(r, &t, &err), SMIME_E_USAGE);
	assert_non_null(strstr(err.message, "is still being read"));
	BIO_free(oct);   /* freed before EOF: the rest is skipped */
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_int_equal(t.offset, 5);
	/* a primitive string read to its last byte is done without a read of 0 */
	oct = ber_octets_bio(r, &t);
	{
		char c;

		assert_int_equal(BIO_read(oct, &c, 1), 1);
		assert_int_equal(c, 'B');
		assert_int_equal(BIO_eof(oct), 1);
	}
	assert_int_equal(ber_next(r, &t, &err), SMIME_E_NOTFOUND);
	BIO_free(oct);
	ber_reader_free(r);
	BIO_free(bio);
	bio = BIO_new_mem_buf(in, sizeof(in));
	r = ber_reader_new(bio, sizeof(in));
	assert_int_equal(ber_next(r, &first, &err), 0);
	assert_int_equal(ber_enter(r, &first, &err), 0);
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_int_equal(ber_skip(r, &t, &err), 0);
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_int_equal(t.offset, 5);
	assert_int_equal(ber_read_whole(r, &first, 100, &der, &len, &err), SMIME_E_USAGE);
	assert_int_equal(ber_read_whole(r, &t, 100, &der, &len, &err), 0);
	assert_int_equal(len, 3);
	OPENSSL_free(der);
	assert_int_equal(ber_skip(r, &t, &err), SMIME_E_USAGE);        /* already read */
	assert_int_equal(ber_leave(r, &err), 0);
	assert_int_equal(ber_tell(r), sizeof(in));
	/* a BIO that outlives its reader fails instead of touching it */
	BIO_free(bio);
	bio = BIO_new_mem_buf(in, sizeof(in));
	ber_reader_free(r);
	r = ber_reader_new(bio, sizeof(in));
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_int_equal(ber_enter(r, &t, &err), 0);
	assert_int_equal(ber_next(r, &t, &err), 0);
	oct = ber_octets_bio(r, &t);
	ber_reader_free(r);
	{
		char c;
		assert_true(BIO_read(oct, &c, 1) <= 0);
	}
	BIO_free(oct);
	BIO_free(bio);
	ber_reader_free(NULL);
}

/* ---------------------------------------------------- ber_read_whole */

static void
test_read_whole_cert(void **state)
{
	EVP_PKEY *k = tu_key("p256");
	X509 *c = tu_cert(NULL, NULL, k, "ber", NULL, SMIME_ROLE_CA, -1, 365), *back;
	unsigned char *der = NULL, *got, buf[4096];
	const unsigned char *p;
	struct smime_error err;
	struct ber_reader *r;
	struct ber_tlv t;
	size_t len;
	BIO *in;
	int n;

	(void)state;
	n = i2d_X509(c, &der);
	assert_true(n > 0 && (size_t)n * 2 + 10 < sizeof(buf));
	/* two certificates in a row, then a third that is too large for its max */
	memcpy(buf, der, (size_t)n);
	memcpy(buf + n, der, (size_t)n);
	in = BIO_new_mem_buf(buf, n * 2);
	r = ber_reader_new(in, (uint64_t)n * 2);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 16, true, &t, "Certificate", &err), 0);
	assert_int_equal(ber_read_whole(r, &t, BER_MAX_WHOLE, &got, &len, &err), 0);
	assert_int_equal(len, (size_t)n);
	assert_memory_equal(got, der, len);
	p = got;
	assert_non_null(back = d2i_X509(NULL, &p, (long)len));
	X509_free(back);
	OPENSSL_free(got);
	assert_int_equal(ber_next(r, &t, &err), 0);
	/* too large: refused before reading, the element can still be skipped */
	assert_int_equal(ber_read_whole(r, &t, (size_t)n - 1, &got, &len, &err), SMIME_E_INPUT);
	assert_null(got);
	assert_non_null(strstr(err.message, "is larger than the"));
	assert_int_equal(ber_read_whole(r, &t, (size_t)n, &got, &len, &err), 0);
	assert_memory_equal(got, der, len);
	OPENSSL_free(got);
	assert_int_equal(ber_next(r, &t, &err), SMIME_E_NOTFOUND);
	ber_reader_free(r);
	BIO_free(in);
	OPENSSL_free(der);
	X509_free(c);
	EVP_PKEY_free(k);
}

static void
test_read_whole_indefinite(void **state)
{
	/* [0] indefinite { SEQUENCE indefinite { INTEGER, 24 80 { 04 } }, non-minimal 04 } */
	static const char *hex = "a0 80 30 80 02 01 05 24 80 04 02 41 42 00 00 00 00 04 82 00 01 43 "
	    "00 00 05 00";
	unsigned char in[64], *got;
	struct smime_error err;
	struct ber_reader *r;
	struct ber_tlv t;
	size_t n, len;
	BIO *bio;

	(void)state;
	n = unhex(hex, in, sizeof(in));
	bio = BIO_new_mem_buf(in, (int)n);
	r = ber_reader_new(bio, n);
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_true(t.indefinite);
	assert_int_equal(ber_read_whole(r, &t, 100, &got, &len, &err), 0);
	assert_int_equal(len, n - 2);
	assert_memory_equal(got, in, len);     /* exactly as encoded */
	OPENSSL_free(got);
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_int_equal(t.tag, 5);
	assert_int_equal(ber_skip(r, &t, &err), 0);
	ber_reader_free(r);
	BIO_free(bio);

	/* an indefinite element larger than max: an error, and nothing is returned */
	bio = BIO_new_mem_buf(in, (int)n);
	r = ber_reader_new(bio, n);
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_int_equal(ber_read_whole(r, &t, 10, &got, &len, &err), SMIME_E_INPUT);
	assert_null(got);
	assert_non_null(strstr(err.message, "the element at offset 0 is larger than the 10 bytes"));
	ber_reader_free(r);
	BIO_free(bio);
}

/* --------------------------------------------------- real CMS messages */

static const unsigned char oid_enveloped[] = { 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
    0x01, 0x07, 0x03 };
static const unsigned char oid_signed[] = { 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
    0x01, 0x07, 0x02 };

/* ContentInfo { contentType, [0] { *Data SEQUENCE, entered } }, the OID checked. */
static void
enter_content_info(struct ber_reader *r, const unsigned char *oid, size_t oid_len)
{
	struct smime_error err;
	struct ber_tlv t;
	unsigned char *der;
	size_t len;

	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 16, true, &t, "ContentInfo", &err), 0);
	assert_int_equal(ber_enter(r, &t, &err), 0);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 6, false, &t, "contentType", &err), 0);
	assert_int_equal(ber_read_whole(r, &t, 64, &der, &len, &err), 0);
	assert_int_equal(len, oid_len);
	assert_memory_equal(der, oid, len);
	OPENSSL_free(der);
	assert_int_equal(ber_expect(r, BER_CONTEXT, 0, true, &t, "content", &err), 0);
	assert_int_equal(ber_enter(r, &t, &err), 0);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 16, true, &t, "SignedData", &err), 0);
	assert_int_equal(ber_enter(r, &t, &err), 0);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 2, false, &t, "version", &err), 0);
	assert_int_equal(ber_skip(r, &t, &err), 0);
}

/* Leave n containers and check that nothing follows. */
static void
leave_all(struct ber_reader *r, int n, uint64_t total)
{
	struct smime_error err;
	struct ber_tlv t;

	while (n-- > 0)
		assert_int_equal(ber_leave(r, &err), 0);
	assert_int_equal(ber_next(r, &t, &err), SMIME_E_NOTFOUND);
	assert_int_equal(ber_tell(r), total);
}

/*
 * Walk an EnvelopedData to its encrypted content and decrypt that with
 * OpenSSL, the content passed as dcont through ber_octets_bio.
 */
static void
check_enveloped(const unsigned char *msg, size_t n, EVP_PKEY *k, X509 *c,
    const unsigned char *plain, size_t plain_len, const ASN1_OCTET_STRING *ciphertext)
{
	struct smime_error err;
	struct ber_reader *r;
	struct ber_tlv t;
	struct bb cipher = { 0 };
	unsigned char *der;
	const unsigned char *p;
	size_t len;
	X509_ALGOR *alg;
	CMS_ContentInfo *cms;
	BIO *in, *oct, *out;
	BUF_MEM *mem;

	/* 1. the ciphertext through the BIO equals OpenSSL's parse of the whole */
	in = BIO_new_mem_buf(msg, (int)n);
	r = ber_reader_new(in, n);
	enter_content_info(r, oid_enveloped, sizeof(oid_enveloped));
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_int_equal(t.cls, BER_UNIVERSAL);     /* no originatorInfo from OpenSSL */
	assert_int_equal(t.tag, 17);
	assert_int_equal(ber_read_whole(r, &t, BER_MAX_WHOLE, &der, &len, &err), 0);
	assert_int_equal(der[0], 0x31);              /* RecipientInfos is a SET */
	OPENSSL_free(der);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 16, true, &t, "EncryptedContentInfo", &err),
	    0);
	assert_int_equal(ber_enter(r, &t, &err), 0);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 6, false, &t, "contentType", &err), 0);
	assert_int_equal(ber_skip(r, &t, &err), 0);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 16, true, &t, "algorithm", &err), 0);
	assert_int_equal(ber_read_whole(r, &t, 4096, &der, &len, &err), 0);
	p = der;
	assert_non_null(alg = d2i_X509_ALGOR(NULL, &p, (long)len));
	assert_int_equal(OBJ_obj2nid(alg->algorithm), NID_aes_256_cbc);
	X509_ALGOR_free(alg);
	OPENSSL_free(der);
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_int_equal(t.cls, BER_CONTEXT);
	assert_int_equal(t.tag, 0);
	assert_int_equal(read_octets(r, &t, &cipher, &err), 0);
	assert_int_equal(cipher.n, (size_t)ASN1_STRING_length(ciphertext));
	assert_memory_equal(cipher.p, ASN1_STRING_get0_data(ciphertext), cipher.n);
	assert_true(cipher.n >= plain_len && cipher.n % 16 == 0);
	assert_int_equal(ber_next(r, &t, &err), SMIME_E_NOTFOUND);
	leave_all(r, 4, n);
	ber_reader_free(r);
	BIO_free(in);
	bb_free(&cipher);

	/* 2. OpenSSL decrypts with the content read as a stream: the dcont use */
	p = msg;
	in = BIO_new_mem_buf(msg, (int)n);
	assert_non_null(cms = d2i_CMS_bio(in, NULL));
	BIO_free(in);
	assert_int_equal(CMS_set_detached(cms, 1), 1);
	in = BIO_new_mem_buf(msg, (int)n);
	r = ber_reader_new(in, n);
	enter_content_info(r, oid_enveloped, sizeof(oid_enveloped));
	assert_int_equal(ber_next(r, &t, &err), 0);   /* RecipientInfos */
	assert_int_equal(ber_next(r, &t, &err), 0);   /* EncryptedContentInfo */
	assert_int_equal(ber_enter(r, &t, &err), 0);
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_int_equal(ber_next(r, &t, &err), 0);   /* [0] */
	assert_non_null(oct = ber_octets_bio(r, &t));
	out = BIO_new(BIO_s_mem());
	assert_int_equal(CMS_decrypt(cms, k, c, oct, out, CMS_BINARY), 1);
	assert_int_equal(ber_error(r, &err), 0);
	BIO_get_mem_ptr(out, &mem);
	assert_int_equal(mem->length, plain_len);
	assert_memory_equal(mem->data, plain, plain_len);
	BIO_free(out);
	BIO_free(oct);
	leave_all(r, 4, n);
	ber_reader_free(r);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
}

static void
test_cms_enveloped(void **state)
{
	EVP_PKEY *k = tu_key("rsa2048");
	X509 *c = tu_cert(NULL, NULL, k, "ber", "ber@example.org", SMIME_ROLE_ENCRYPT, -1, 365);
	STACK_OF(X509) *certs = sk_X509_new_null();
	unsigned char *plain = malloc(100000), *ber, *der = NULL;
	CMS_ContentInfo *cms, *parsed;
	BIO *in, *out;
	BUF_MEM *mem;
	long ber_len;
	int der_len;
	size_t i;

	(void)state;
	for (i = 0; i < 100000; i++)
		plain[i] = (unsigned char)(i % 251);
	sk_X509_push(certs, c);
	in = BIO_new_mem_buf(plain, 100000);
	assert_non_null(cms = CMS_encrypt(certs, in, EVP_aes_256_cbc(), CMS_BINARY | CMS_STREAM));
	out = BIO_new(BIO_s_mem());
	assert_int_equal(i2d_CMS_bio_stream(out, cms, in, CMS_BINARY | CMS_STREAM), 1);
	BIO_free(in);
	ber_len = BIO_get_mem_data(out, &ber);
	/* indefinite lengths, and a constructed encryptedContent in chunks */
	assert_int_equal(ber[1], 0x80);

	/* The same message in DER: definite lengths, a primitive encryptedContent. */
	in = BIO_new_mem_buf(ber, (int)ber_len);
	assert_non_null(parsed = d2i_CMS_bio(in, NULL));
	BIO_free(in);
	assert_true((der_len = i2d_CMS_ContentInfo(parsed, &der)) > 0);
	assert_int_not_equal(der[1], 0x80);

	assert_non_null(CMS_get0_content(parsed));
	assert_non_null(*CMS_get0_content(parsed));
	check_enveloped(ber, (size_t)ber_len, k, c, plain, 100000, *CMS_get0_content(parsed));
	check_enveloped(der, (size_t)der_len, k, c, plain, 100000, *CMS_get0_content(parsed));

	/* ber_read_whole on the whole indefinite message gives it back unchanged */
	{
		struct smime_error err;
		struct ber_reader *r;
		struct ber_tlv t;
		unsigned char *got;
		size_t len;

		in = BIO_new_mem_buf(ber, (int)ber_len);
		r = ber_reader_new(in, (uint64_t)ber_len);
		assert_int_equal(ber_next(r, &t, &err), 0);
		assert_true(t.indefinite);
		assert_int_equal(ber_read_whole(r, &t, BER_MAX_WHOLE, &got, &len, &err), 0);
		assert_int_equal(len, (size_t)ber_len);
		assert_memory_equal(got, ber, len);
		OPENSSL_free(got);
		ber_reader_free(r);
		BIO_free(in);
	}

	(void)mem;
	OPENSSL_free(der);
	BIO_free(out);
	CMS_ContentInfo_free(cms);
	CMS_ContentInfo_free(parsed);
	sk_X509_free(certs);
	X509_free(c);
	EVP_PKEY_free(k);
	free(plain);
}

/* Opaque SignedData: eContent through the BIO verifies with OpenSSL as dcont. */
static void
test_cms_signed(void **state)
{
	EVP_PKEY *k = tu_key("p256");
	X509 *c = tu_cert(NULL, NULL, k, "ber", "ber@example.org", SMIME_ROLE_SIGN, -1, 365);
	unsigned char *plain = malloc(50000), *ber;
	struct smime_error err;
	struct ber_reader *r;
	struct ber_tlv t;
	CMS_ContentInfo *cms, *parsed;
	BIO *in, *out, *oct, *got;
	BUF_MEM *mem;
	long n;
	size_t i;

	(void)state;
	for (i = 0; i < 50000; i++)
		plain[i] = (unsigned char)(i * 13);
	in = BIO_new_mem_buf(plain, 50000);
	assert_non_null(cms = CMS_sign(c, k, NULL, in, CMS_BINARY | CMS_STREAM));
	out = BIO_new(BIO_s_mem());
	assert_int_equal(i2d_CMS_bio_stream(out, cms, in, CMS_BINARY | CMS_STREAM), 1);
	BIO_free(in);
	n = BIO_get_mem_data(out, &ber);

	in = BIO_new_mem_buf(ber, (int)n);
	assert_non_null(parsed = d2i_CMS_bio(in, NULL));
	BIO_free(in);
	assert_int_equal(CMS_set_detached(parsed, 1), 1);

	in = BIO_new_mem_buf(ber, (int)n);
	r = ber_reader_new(in, (uint64_t)n);
	enter_content_info(r, oid_signed, sizeof(oid_signed));
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 17, true, &t, "digestAlgorithms", &err), 0);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 16, true, &t, "encapContentInfo", &err), 0);
	assert_int_equal(ber_enter(r, &t, &err), 0);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 6, false, &t, "eContentType", &err), 0);
	assert_int_equal(ber_expect(r, BER_CONTEXT, 0, true, &t, "eContent", &err), 0);
	assert_int_equal(ber_enter(r, &t, &err), 0);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 4, true, &t, "OCTET STRING", &err), 0);
	assert_true(t.indefinite);
	assert_non_null(oct = ber_octets_bio(r, &t));
	got = BIO_new(BIO_s_mem());
	assert_int_equal(CMS_verify(parsed, NULL, NULL, oct, got, CMS_BINARY |
	    CMS_NO_SIGNER_CERT_VERIFY), 1);
	assert_int_equal(ber_error(r, &err), 0);
	BIO_get_mem_ptr(got, &mem);
	assert_int_equal(mem->length, 50000);
	assert_memory_equal(mem->data, plain, 50000);
	BIO_free(oct);
	/* then certificates [0] and signerInfos, read whole for d2i */
	assert_int_equal(ber_leave(r, &err), 0);
	assert_int_equal(ber_leave(r, &err), 0);
	assert_int_equal(ber_expect(r, BER_CONTEXT, 0, true, &t, "certificates", &err), 0);
	assert_int_equal(ber_skip(r, &t, &err), 0);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 17, true, &t, "signerInfos", &err), 0);
	assert_int_equal(ber_skip(r, &t, &err), 0);
	assert_int_equal(ber_next(r, &t, &err), SMIME_E_NOTFOUND);
	leave_all(r, 3, (uint64_t)n);
	ber_reader_free(r);
	BIO_free(in);

	/* A tampered chunk header makes the BIO, and so the verification, fail. */
	{
		unsigned char *bad = malloc((size_t)n);
		const unsigned char *hit;

		memcpy(bad, ber, (size_t)n);
		/* the first chunk of eContent: 24 80 04 82 */
		hit = memmem(bad, (size_t)n, "\x24\x80\x04", 3);
		assert_non_null(hit);
		bad[hit - bad + 2] = 0x02;     /* an INTEGER, not an OCTET STRING segment */
		in = BIO_new_mem_buf(bad, (int)n);
		r = ber_reader_new(in, (uint64_t)n);
		enter_content_info(r, oid_signed, sizeof(oid_signed));
		assert_int_equal(ber_next(r, &t, &err), 0);
		assert_int_equal(ber_next(r, &t, &err), 0);
		assert_int_equal(ber_enter(r, &t, &err), 0);
		assert_int_equal(ber_next(r, &t, &err), 0);
		assert_int_equal(ber_next(r, &t, &err), 0);
		assert_int_equal(ber_enter(r, &t, &err), 0);
		assert_int_equal(ber_next(r, &t, &err), 0);
		assert_non_null(oct = ber_octets_bio(r, &t));
		BIO_reset(got);
		assert_int_equal(CMS_verify(parsed, NULL, NULL, oct, got, CMS_BINARY |
		    CMS_NO_SIGNER_CERT_VERIFY), 0);
		ERR_clear_error();
		assert_int_equal(ber_error(r, &err), SMIME_E_INPUT);
		assert_non_null(strstr(err.message, "X.690 8.7.3.2"));
		/* the error sticks */
		assert_int_equal(ber_leave(r, &err), SMIME_E_INPUT);
		BIO_free(oct);
		ber_reader_free(r);
		BIO_free(in);
		free(bad);
	}

	BIO_free(got);
	BIO_free(out);
	CMS_ContentInfo_free(cms);
	CMS_ContentInfo_free(parsed);
	X509_free(c);
	EVP_PKEY_free(k);
	free(plain);
}

/* ------------------------------------------------ constant memory */

#define BIG_CHUNK 4096
#define BIG_CHUNKS (64 * 256)   /* 64 MiB of content */

/*
 * A source BIO generating, on the fly, ContentInfo-like
 *   30 80 06 03 2a 03 04 a0 84 <len> 24 80 { 04 82 10 00 <4096 bytes> } * n 00 00 00 00
 * so that the test itself holds nothing of the 64 MiB.
 */
struct big_src {
	unsigned char prefix[16];
	size_t prefix_len;
	uint64_t pos, total;
};

static unsigned char
big_byte(uint64_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

static int
big_read(BIO *b, char *out, int outl)
{
	struct big_src *s = BIO_get_data(b);
	static const unsigned char chunk_hdr[4] = { 0x04, 0x82, 0x10, 0x00 };
	const uint64_t period = 4 + BIG_CHUNK, body = (uint64_t)BIG_CHUNKS * period;
	int n = 0;

	while (n < outl && s->pos < s->total) {
		uint64_t p = s->pos;

		if (p < s->prefix_len) {
			out[n] = (char)s->prefix[p];
		} else if (p - s->prefix_len < body) {
			uint64_t q = p - s->prefix_len, k = q / period, o = q % period;

			out[n] = (char)(o < 4 ? chunk_hdr[o] : big_byte(k * BIG_CHUNK + o - 4));
		} else {
			out[n] = 0;   /* the three EOCs */
		}
		n++;
		s->pos++;
	}
	return n;
}

static BIO *
big_source(struct big_src *s, BIO_METHOD **meth_r)
{
	const uint64_t body = (uint64_t)BIG_CHUNKS * (4 + BIG_CHUNK);
	const uint64_t a0_len = 2 + body + 2;
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "big");
	BIO *b;
	size_t i = 0;

	memset(s, 0, sizeof(*s));
	s->prefix[i++] = 0x30;
	s->prefix[i++] = 0x80;
	s->prefix[i++] = 0x06;
	s->prefix[i++] = 0x03;
	s->prefix[i++] = 0x2a;
	s->prefix[i++] = 0x03;
	s->prefix[i++] = 0x04;
	s->prefix[i++] = 0xa0;
	s->prefix[i++] = 0x84;
	s->prefix[i++] = (unsigned char)(a0_len >> 24);
	s->prefix[i++] = (unsigned char)(a0_len >> 16);
	s->prefix[i++] = (unsigned char)(a0_len >> 8);
	s->prefix[i++] = (unsigned char)a0_len;
	s->prefix[i++] = 0x24;
	s->prefix[i++] = 0x80;
	s->prefix_len = i;
	s->total = i + body + 4;
	assert_non_null(m);
	BIO_meth_set_read(m, big_read);
	b = BIO_new(m);
	BIO_set_data(b, s);
	BIO_set_init(b, 1);
	*meth_r = m;
	return b;
}

static long
max_rss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void
test_constant_memory(void **state)
{
	struct big_src src;
	BIO_METHOD *meth;
	struct smime_error err;
	struct ber_reader *r;
	struct ber_tlv t;
	unsigned char *buf = malloc(BIG_CHUNK), *der;
	uint64_t i = 0, total;
	size_t base, allocs, len;
	long rss0 = max_rss_kib();
	BIO *in, *oct;
	int n, k;

	(void)state;
	/* 1. stream all 64 MiB through the octets BIO, checking every byte */
	in = big_source(&src, &meth);
	total = src.total;
	base = live_bytes;
	peak_bytes = live_bytes;
	r = ber_reader_new(in, total);
	assert_non_null(r);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 16, true, &t, "ContentInfo", &err), 0);
	assert_int_equal(ber_enter(r, &t, &err), 0);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 6, false, &t, "contentType", &err), 0);
	assert_int_equal(ber_expect(r, BER_CONTEXT, 0, true, &t, "content", &err), 0);
	assert_int_equal(ber_enter(r, &t, &err), 0);
	assert_int_equal(ber_expect(r, BER_UNIVERSAL, 4, true, &t, "OCTET STRING", &err), 0);
	assert_non_null(oct = ber_octets_bio(r, &t));
	allocs = n_allocs;
	while ((n = BIO_read(oct, buf, 4096)) > 0) {
		for (k = 0; k < n; k++, i++)
			if (buf[k] != big_byte(i))
				fail_msg("byte %llu differs", (unsigned long long)i);
	}
	assert_int_equal(n, 0);
	assert_int_equal(ber_error(r, &err), 0);
	assert_int_equal(i, (uint64_t)BIG_CHUNKS * BIG_CHUNK);
	if (counting) {
		assert_int_equal(n_allocs, allocs);        /* nothing allocated while reading */
		assert_true(peak_bytes - base < 64 * 1024); /* the reader and its window */
	}
	BIO_free(oct);
	leave_all(r, 2, total);
	ber_reader_free(r);
	BIO_free(in);
	BIO_meth_free(meth);

	/* 2. ber_skip streams the same element without buffering it */
	in = big_source(&src, &meth);
	base = live_bytes;
	peak_bytes = live_bytes;
	r = ber_reader_new(in, total);
	assert_int_equal(ber_next(r, &t, &err), 0);
	allocs = n_allocs;
	assert_int_equal(ber_skip(r, &t, &err), 0);
	assert_int_equal(ber_tell(r), total);
	if (counting) {
		assert_int_equal(n_allocs, allocs);
		assert_true(peak_bytes - base < 64 * 1024);
	}
	ber_reader_free(r);
	BIO_free(in);
	BIO_meth_free(meth);

	/* 3. ber_read_whole refuses it, having held no more than its max (with a realloc's copy) */
	in = big_source(&src, &meth);
	base = live_bytes;
	peak_bytes = live_bytes;
	r = ber_reader_new(in, total);
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_int_equal(ber_read_whole(r, &t, 256 * 1024, &der, &len, &err), SMIME_E_INPUT);
	assert_non_null(strstr(err.message, "is larger than the 262144 bytes allowed"));
	if (counting)
		assert_true(peak_bytes - base < 2 * 256 * 1024 + 64 * 1024);
	ber_reader_free(r);
	BIO_free(in);
	BIO_meth_free(meth);

	/* 4. and a message size limit below the content stops it */
	in = big_source(&src, &meth);
	r = ber_reader_new(in, total - 1);
	assert_int_equal(ber_next(r, &t, &err), 0);
	assert_int_equal(ber_skip(r, &t, &err), SMIME_E_INPUT);
	ber_reader_free(r);
	BIO_free(in);
	BIO_meth_free(meth);

	print_message("# 64 MiB streamed: max RSS %ld KiB before, %ld KiB after%s\n", rss0,
	    max_rss_kib(), counting ? "" : " (allocations not counted)");
	assert_true(max_rss_kib() - rss0 < 16 * 1024);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nestings),
		cmocka_unit_test(test_hex_table),
		cmocka_unit_test(test_high_tags),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_expect),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_read_whole_cert),
		cmocka_unit_test(test_read_whole_indefinite),
		cmocka_unit_test(test_cms_enveloped),
		cmocka_unit_test(test_cms_signed),
		cmocka_unit_test(test_constant_memory),
	};

	/* Before OpenSSL allocates anything, or it refuses. */
	counting = CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free) == 1;
	return cmocka_run_group_tests_name("ber", tests, NULL, NULL);
}

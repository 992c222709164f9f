/*
 * Unit tests of lib/stream.c's base64 part reader (part_content_bio) and
 * lib/entity.c's canonical entity: each compared with what GMime itself
 * makes of the same part, and with fixed expectations.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "testutil.h"
#include "../../lib/internal.h"

/* The single leaf part of the message text (kept alive by *msg_r). */
static GMimePart *
leaf(const char *text, size_t len, GMimeMessage **msg_r)
{
	GMimeStream *s = g_mime_stream_mem_new_with_buffer(text, len);
	struct smime_error err;

	assert_int_equal(mime_parse_stream(s, msg_r, &err), 0);
	g_object_unref(s);
	GMimeObject *root = g_mime_message_get_mime_part(*msg_r);
	assert_true(GMIME_IS_PART(root));
	return GMIME_PART(root);
}

/* Everything b yields, read in odd-sized pieces. */
static unsigned char *
drain(BIO *b, size_t *len_r)
{
	size_t cap = 1 << 16, len = 0;
	unsigned char *out = malloc(cap);
	int n, step = 1;

	assert_non_null(out);
	for (;;) {
		if (len + 4096 > cap)
			assert_non_null(out = realloc(out, cap *= 2));
		n = BIO_read(b, out + len, step);
		if (n <= 0)
			break;
		len += (size_t)n;
		step = step * 7 % 4093 + 1;
	}
	assert_true(n == 0);
	*len_r = len;
	return out;
}

/* What GMime's own decoder makes of the part. */
static unsigned char *
gmime_decoded(GMimePart *part, size_t *len_r)
{
	GMimeStream *s = part_decoded_stream(part);
	BIO *b = bio_from_gmime(s);
	unsigned char *out = drain(b, len_r);

	BIO_free(b);
	g_object_unref(s);
	return out;
}

static void
check_body(const char *body, const unsigned char *want, size_t want_len, bool vs_gmime)
{
	char *text;
	GMimeMessage *msg;
	GMimePart *part;
	BIO *b;
	unsigned char *got;
	size_t got_len;

	assert_true(asprintf(&text, "Subject: t\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n%s", body) > 0);
	part = leaf(text, strlen(text), &msg);
	assert_non_null(b = part_content_bio(part));
	got = drain(b, &got_len);
	if (want != NULL) {
		assert_int_equal(got_len, want_len);
		assert_memory_equal(got, want, want_len);
	}
	if (vs_gmime) {
		size_t g_len;
		unsigned char *g = gmime_decoded(part, &g_len);
		assert_int_equal(got_len, g_len);
		assert_memory_equal(got, g, g_len);
		free(g);
	}
	free(got);
	BIO_free(b);
	g_object_unref(msg);
	free(text);
}

static void
test_base64_forms(void **state)
{
	(void)state;
	smime_init();
	check_body("aGVsbG8gd29ybGQ=\r\n", (const unsigned char *)"hello world", 11, true);
	check_body("aGVsbG8gd29ybGQh\r\n", (const unsigned char *)"hello world!", 12, true);
	check_body("aGVsbG8gd29ybA==\r\n", (const unsigned char *)"hello worl", 10, true);
	/* line breaks anywhere, LF or CRLF, white space and foreign characters ignored */
	check_body("aGVs\nbG8g\r\nd2\r\n9y bG\tQ=\r\n", (const unsigned char *)"hello world", 11, true);
	check_body("aGV*sbG8-gd29y!bGQ=", (const unsigned char *)"hello world", 11, true);
	/* no padding at the end: the partial quantum is dropped (as GMime drops it) */
	check_body("aGVsbG8gd29ybGQ", (const unsigned char *)"hello wor", 9, true);
	check_body("aGVsbG8gd29ybA", (const unsigned char *)"hello wor", 9, true);
	/* nothing after the padding is data (RFC 2045 6.8) */
	check_body("aGk=\r\nZZZZ\r\n", (const unsigned char *)"hi", 2, false);
	check_body("", (const unsigned char *)"", 0, true);
}

static void
test_base64_large(void **state)
{
	size_t n = 3 * 1024 * 1024 + 17;
	unsigned char *raw = malloc(n);
	char *b64 = malloc(n * 2), *p = b64;

	(void)state;
	smime_init();
	assert_non_null(raw);
	assert_non_null(b64);
	assert_int_equal(RAND_bytes(raw, (int)n), 1);
	/* 76-character lines, as mail has them: many 256 KiB reads, quanta across them */
	for (size_t i = 0; i < n; i += 57) {
		int k = EVP_EncodeBlock((unsigned char *)p, raw + i, (int)(n - i < 57 ? n - i : 57));
		p += k;
		*p++ = '\r';
		*p++ = '\n';
	}
	*p = '\0';
	check_body(b64, raw, n, true);
	free(raw);
	free(b64);
}

/* Every length and padding of a small part, each read in one chunk sized to the part. */
static void
test_base64_small(void **state)
{
	unsigned char raw[64];
	char b64[128], body[160];

	(void)state;
	smime_init();
	for (size_t n = 0; n <= sizeof(raw); n++) {
		for (size_t i = 0; i < n; i++)
			raw[i] = (unsigned char)(n * 31 + i * 7);
		int k = EVP_EncodeBlock((unsigned char *)b64, raw, (int)n);
		check_body(b64, raw, n, true);
		snprintf(body, sizeof(body), "%s\r\n", b64);
		check_body(body, raw, n, true);
		/* without its padding: the partial quantum is dropped */
		while (k > 0 && b64[k - 1] == '=')
			b64[--k] = '\0';
		check_body(b64, raw, n / 3 * 3, true);
	}
}

#ifdef __SANITIZE_ADDRESS__
/* The sanitizer runtime's (sanitizer/allocator_interface.h, not always installed). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

/* Heap in use: the sanitizer's count under it, else glibc's (mapped blocks included). */
static size_t
heap_in_use(void)
{
#ifdef __SANITIZE_ADDRESS__
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
#endif
}

/*
 * A small base64 part costs memory in proportion to its size: reading it
 * once took two 256 KiB buffers and cleansed one whole, which cost more than
 * reading a small message (the message fuzz target spent most of its time
 * there).
 */
static void
test_base64_small_buffers(void **state)
{
	const char *text = "Subject: t\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n";
	GMimeMessage *msg;
	GMimePart *part;
	size_t before, during;
	BIO *b;

	(void)state;
	smime_init();
	part = leaf(text, strlen(text), &msg);
	before = heap_in_use();
	assert_non_null(b = part_content_bio(part));
	during = heap_in_use();
	assert_true(during - before < 16 * 1024);
	BIO_free(b);
	g_object_unref(msg);
}

/*
 * A small message's canonical entity costs memory in proportion to it: each
 * open took 256 KiB for the header section and 768 KiB of body buffers,
 * cleansed whole when freed (the entity fuzz target ran 39 inputs a second).
 */
static void
test_entity_small_buffers(void **state)
{
	const char *msg = "From: a@example.org\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
	GMimeStream *src = g_mime_stream_mem_new_with_buffer(msg, strlen(msg));
	GMimeMessage *m = NULL;
	BIO *entity = NULL;
	struct smime_error err;
	unsigned char *out;
	size_t before, during, len;

	(void)state;
	smime_init();
	/* GMime's own one-time allocations are made by a first open. */
	assert_int_equal(entity_fast_open(src, false, &m, &entity, &err), 0);
	BIO_free(entity);
	g_object_unref(m);
	before = heap_in_use();
	assert_int_equal(entity_fast_open(src, false, &m, &entity, &err), 0);
	during = heap_in_use();
	assert_true(during - before < 64 * 1024);
	out = drain(entity, &len);
	assert_int_equal(len, strlen("Content-Type: text/plain\r\n\r\nhello\r\n"));
	free(out);
	BIO_free(entity);
	g_object_unref(m);
	g_object_unref(src);
}

/* A message file that changes between two reads of its entity: the second read fails. */
static void
test_entity_file_changed(void **state)
{
	char path[] = "/tmp/smime-entity-XXXXXX";
	const char *msg = "From: a@example.org\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
	int fd = mkstemp(path);
	GMimeStream *src;
	GMimeMessage *m = NULL;
	BIO *entity = NULL;
	struct smime_error err;
	unsigned char *out;
	size_t len;

	(void)state;
	smime_init();
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	src = g_mime_stream_fs_new(fd);
	assert_int_equal(entity_fast_open(src, false, &m, &entity, &err), 0);
	out = drain(entity, &len);
	assert_int_equal(len, strlen("Content-Type: text/plain\r\n\r\nhello\r\n"));
	free(out);
	assert_false(entity_read_failed(entity));
	/*
	 * Changed behind the reader's back, in place (same size), 50 ms later:
	 * file times move in clock ticks, which are coarser than nanoseconds.
	 */
	usleep(50 * 1000);
	assert_int_equal(pwrite(fd, "HELLO", 5, (off_t)strlen(msg) - 7), 5);
	assert_int_equal(BIO_seek(entity, 0), 0);
	{
		unsigned char buf[4096];
		int n, last = 0;
		while ((n = BIO_read(entity, buf, sizeof(buf))) > 0)
			last = n;
		(void)last;
		assert_true(n < 0);
	}
	assert_true(entity_read_failed(entity));
	BIO_free(entity);
	g_object_unref(m);
	g_object_unref(src);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_forms),
		cmocka_unit_test(test_base64_large),
		cmocka_unit_test(test_base64_small),
		cmocka_unit_test(test_base64_small_buffers),
		cmocka_unit_test(test_entity_small_buffers),
		cmocka_unit_test(test_entity_file_changed),
	};
	return cmocka_run_group_tests_name("stream", tests, NULL, NULL);
}

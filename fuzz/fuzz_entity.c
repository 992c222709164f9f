/*
 * libFuzzer target: the canonical-entity reader (lib/entity.c) over any
 * message.  When it takes the message, the entity it yields must be
 * canonical (every LF after a CR), must begin with a Content- field and must
 * read the same twice (after a rewind); otherwise it must decline with
 * SMIME_E_NOTFOUND or an error.  The lazy reader (which checks the body as
 * it first reads it) must agree: the same entity when the checked reader
 * takes the message, a failed read that says so when it declines it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>

#include "../lib/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read b to its end; returns the length and a hash of what was read (-1: failed). */
static long
drain(BIO *b, uint64_t *hash, bool *canonical)
{
	unsigned char chunk[3000];
	size_t total = 0;
	uint64_t h = 1469598103934665603ull;
	unsigned char prev = 0;
	int n;

	*canonical = true;
	while ((n = BIO_read(b, chunk, sizeof(chunk))) > 0) {
		for (int i = 0; i < n; i++) {
			if (chunk[i] == '\n' && prev != '\r')
				*canonical = false;
			prev = chunk[i];
			h = (h ^ chunk[i]) * 1099511628211ull;
		}
		total += (size_t)n;
	}
	*hash = h;
	return n < 0 ? -1 : (long)total;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smime_error err;
	GMimeStream *src;
	GMimeMessage *msg = NULL, *lazy_msg = NULL;
	BIO *entity = NULL, *lazy = NULL;
	uint64_t h1, h2, h3;
	bool c1, c2, c3;
	long n1, n2, n3;
	unsigned char first[8];
	int rc, lazy_rc;

	if (size > 1 << 20)
		return 0;
	smime_init();
	src = g_mime_stream_mem_new_with_buffer((const char *)data, size);
	rc = entity_fast_open(src, false, &msg, &entity, &err);
	lazy_rc = entity_fast_open(src, true, &lazy_msg, &lazy, &err);
	if (rc == 0) {
		n1 = drain(entity, &h1, &c1);
		if (BIO_seek(entity, 0) != 0)
			abort();
		if (BIO_read(entity, first, 8) != 8 ||
		    g_ascii_strncasecmp((const char *)first, "Content-", 8) != 0)
			abort();
		if (BIO_seek(entity, 0) != 0)
			abort();
		n2 = drain(entity, &h2, &c2);
		if (n1 < 0 || !c1 || n1 != n2 || h1 != h2 || msg == NULL)
			abort();
		/* The lazy reader takes it too, and gives the same entity. */
		if (lazy_rc != 0)
			abort();
		n3 = drain(lazy, &h3, &c3);
		if (n3 != n1 || h3 != h1 || entity_fast_failed(lazy))
			abort();
	} else if (entity != NULL || msg != NULL) {
		abort();
	} else if (lazy_rc == 0) {
		/* The checked reader declined: the lazy one must fail on reading, and say so. */
		n3 = drain(lazy, &h3, &c3);
		if (n3 >= 0 || !entity_fast_failed(lazy))
			abort();
	}
	BIO_free(entity);
	BIO_free(lazy);
	if (msg != NULL)
		g_object_unref(msg);
	if (lazy_msg != NULL)
		g_object_unref(lazy_msg);
	g_object_unref(src);
	return 0;
}

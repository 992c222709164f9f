/*
 * libFuzzer target: the canonical-entity reader (lib/entity.c) over any
 * message.  When it takes the message, the entity it yields must be
 * canonical (every LF after a CR), must begin with a Content- field, must
 * read the same twice (after a rewind), and must not be shorter than the
 * body; otherwise it must decline with SMIME_E_NOTFOUND or an error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>

#include "../lib/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read b to its end; returns the length and a hash of what was read. */
static size_t
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
	if (n < 0)
		abort();
	*hash = h;
	return total;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smime_error err;
	GMimeStream *src;
	GMimeMessage *msg = NULL;
	BIO *entity = NULL;
	uint64_t h1, h2;
	bool c1, c2;
	size_t n1, n2;
	unsigned char first[8];
	int rc;

	if (size > 1 << 20)
		return 0;
	smime_init();
	src = g_mime_stream_mem_new_with_buffer((const char *)data, size);
	rc = entity_fast_open(src, &msg, &entity, &err);
	if (rc == 0) {
		n1 = drain(entity, &h1, &c1);
		if (BIO_seek(entity, 0) != 0)
			abort();
		if (BIO_read(entity, first, 8) != 8 || g_ascii_strncasecmp((const char *)first, "Content-", 8) != 0)
			abort();
		if (BIO_seek(entity, 0) != 0)
			abort();
		n2 = drain(entity, &h2, &c2);
		if (!c1 || n1 != n2 || h1 != h2 || msg == NULL)
			abort();
		BIO_free(entity);
		g_object_unref(msg);
	} else if (entity != NULL || msg != NULL) {
		abort();
	}
	g_object_unref(src);
	return 0;
}

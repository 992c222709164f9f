/* Growable byte buffers with a hard maximum, and whole-stream reads. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

#define BUF_MIN_CAP 4096

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

void
buf_free(struct buf *b)
{
	if (b->data != NULL) {
		OPENSSL_cleanse(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = b->cap = 0;
}

int
buf_add(struct buf *b, const void *p, size_t n, struct smime_error *err)
{
	size_t need, cap;
	unsigned char *d;

	if (n == 0)
		return 0;
	if (n > b->max || b->len > b->max - n)
		return smime_error_set(err, SMIME_E_INPUT,
		    "input exceeds the limit of %zu bytes", b->max);
	need = b->len + n;
	if (need > b->cap) {
		cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
		while (cap < need)
			cap = cap > SIZE_MAX / 2 ? need : cap * 2;
		if (cap > b->max)
			cap = b->max;
		/* Grow by copy so that a secret never lingers in a freed block. */
		d = malloc(cap);
		if (d == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		if (b->data != NULL) {
			memcpy(d, b->data, b->len);
			OPENSSL_cleanse(b->data, b->cap);
			free(b->data);
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int
buf_adds(struct buf *b, const char *s, struct smime_error *err)
{
	return buf_add(b, s, strlen(s), err);
}

void
buf_take(struct buf *b, unsigned char **data_r, size_t *len_r)
{
	*data_r = b->data;
	*len_r = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
}

int
read_all(BIO *in, struct buf *b, struct smime_error *err)
{
	unsigned char chunk[16384];
	int n, rc;

	for (;;) {
		n = BIO_read(in, chunk, sizeof(chunk));
		if (n <= 0) {
			/* An empty memory BIO says "retry" for ever: that is its end. */
			if (BIO_should_retry(in) && BIO_method_type(in) != BIO_TYPE_MEM)
				continue;
			break;
		}
		if ((rc = buf_add(b, chunk, (size_t)n, err)) != 0) {
			OPENSSL_cleanse(chunk, sizeof(chunk));
			return rc;
		}
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	return 0;
}

int
write_all(BIO *out, const void *p, size_t n, struct smime_error *err)
{
	const unsigned char *c = p;
	int w;

	while (n > 0) {
		w = BIO_write(out, c, n > 1 << 30 ? 1 << 30 : (int)n);
		if (w <= 0) {
			if (BIO_should_retry(out))
				continue;
			return smime_error_set(err, SMIME_E_IO, "cannot write the output");
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * libFuzzer target: the streaming BER reader (lib/ber.c) walks any bytes
 * generically: every constructed element entered and left, every OCTET
 * STRING streamed through ber_octets_bio to EOF, small elements read whole
 * (and compared with their declared size), the rest skipped.  Whatever
 * happens it must end with 0, SMIME_E_NOTFOUND or an input error, and
 * never past the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>

#include "../lib/ber.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
walk(struct ber_reader *r, const uint8_t *data, size_t size, size_t *calls,
    struct smime_error *err)
{
	struct ber_tlv t;
	unsigned char chunk[4096], *der;
	size_t len;
	BIO *b;
	int rc, n;

	for (;;) {
		if (++*calls > size + 2)
			abort();   /* more headers than bytes: the reader loops */
		rc = ber_next(r, &t, err);
		if (rc == SMIME_E_NOTFOUND)
			return 0;
		if (rc != 0)
			return rc;
		if (t.offset + t.hdr_len > size || (!t.indefinite && t.len > size))
			abort();   /* a header beyond the input passed the checks */
		if (t.cls == BER_UNIVERSAL && t.tag == 4) {
			if ((b = ber_octets_bio(r, &t)) == NULL)
				return ber_error(r, err) != 0 ? err->code : SMIME_E_INTERNAL;
			/* now and then, abandon the string at a window boundary */
			while ((n = BIO_read(b, chunk, (int)(size % 2 ? sizeof(chunk) : 7))) > 0)
				if (size % 3 == 0 && BIO_pending(b) == 0)
					break;
			BIO_free(b);
			if ((rc = ber_error(r, err)) != 0)
				return rc;
		} else if ((t.offset + size) % 3 == 0 || !t.constructed) {
			/* read whole: the bytes exactly as they stand in the input */
			rc = ber_read_whole(r, &t, 256, &der, &len, err);
			if (rc != 0) {
				if (der != NULL)
					abort();
				if (rc == SMIME_E_INPUT && !t.indefinite)   /* too large: skip it */
					rc = ber_skip(r, &t, err);
				if (rc != 0)
					return rc;
				continue;
			}
			if (len < t.hdr_len || t.offset + len > size ||
			    memcmp(der, data + t.offset, len) != 0 ||
			    (!t.indefinite && len != t.hdr_len + t.len))
				abort();
			OPENSSL_free(der);
		} else {
			if ((rc = ber_enter(r, &t, err)) != 0 || (rc = walk(r, data, size, calls, err)) != 0 ||
			    (rc = ber_leave(r, err)) != 0)
				return rc;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smime_error err;
	struct ber_reader *r;
	size_t calls = 0;
	BIO *in;
	int rc;

	if (size > INT32_MAX || (in = BIO_new_mem_buf(data, (int)size)) == NULL)
		return 0;
	/* a message size limit below the input now and then */
	if ((r = ber_reader_new(in, size % 5 == 0 ? size / 2 : size)) == NULL)
		abort();
	rc = walk(r, data, size, &calls, &err);
	if (rc != 0 && rc != SMIME_E_INPUT)
		abort();
	if (rc != 0 && ((int)err.code != rc || err.message[0] == '\0'))
		abort();
	if (ber_tell(r) > size)
		abort();
	ber_reader_free(r);
	BIO_free(in);
	return 0;
}

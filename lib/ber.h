/*
 * An incremental, bounded BER reader over a BIO (X.690), for the outer
 * layers of CMS that must be read as a stream: ContentInfo, SignedData,
 * EnvelopedData and AuthEnvelopedData, whose content may be gigabytes and
 * may come in definite or indefinite lengths and in constructed OCTET
 * STRING chunks.  Nothing is decoded here beyond tags and lengths: small
 * inner structures (RecipientInfos, SignerInfos, certificates) are read
 * whole with ber_read_whole and handed to OpenSSL's d2i functions.
 *
 * Internal to libsmime.
 */
#ifndef SMIME_BER_H
#define SMIME_BER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>

#include <smime/error.h>

#define BER_MAX_DEPTH 32                      /* nested containers */
#define BER_MAX_WHOLE (4u * 1024 * 1024)      /* largest TLV read whole */

/* Tag classes (the top two bits of the identifier octet, shifted down). */
enum ber_class { BER_UNIVERSAL = 0, BER_APPLICATION = 1, BER_CONTEXT = 2, BER_PRIVATE = 3 };

/* One tag-length header. */
struct ber_tlv {
	enum ber_class cls;
	bool constructed;
	uint32_t tag;            /* tag number (high-tag-number form decoded, bounded) */
	bool indefinite;         /* length octet 0x80 (constructed only) */
	uint64_t len;            /* content length; 0 when indefinite */
	uint64_t offset;         /* stream offset of the identifier octet */
	uint32_t hdr_len;        /* identifier and length octets */
};

struct ber_reader;

/*
 * A reader over in, which it does not own.  max_total bounds the bytes that
 * will ever be read (the whole message).
 */
struct ber_reader *ber_reader_new(BIO *in, uint64_t max_total);
void ber_reader_free(struct ber_reader *r);

/*
 * Read the next header inside the current container.  Returns 0 and fills
 * t; SMIME_E_NOTFOUND (without touching err) when the current container has
 * no more elements (a definite container's end, or an end-of-contents of an
 * indefinite one, which is consumed by ber_leave); SMIME_E_INPUT for
 * malformed input (truncation, a length beyond the container or beyond
 * max_total, an indefinite length on a primitive, a tag number too large),
 * with a message naming the X.690 rule and the offset.
 */
SMIME_MUST_CHECK int ber_next(struct ber_reader *r, struct ber_tlv *t, struct smime_error *err);

/* Like ber_next, but the element must be there and carry this class, tag and form. */
SMIME_MUST_CHECK int ber_expect(struct ber_reader *r, enum ber_class cls, uint32_t tag,
    bool constructed, struct ber_tlv *t, const char *what, struct smime_error *err);

/* Step into the constructed element t just read by ber_next (depth + 1). */
SMIME_MUST_CHECK int ber_enter(struct ber_reader *r, const struct ber_tlv *t,
    struct smime_error *err);

/*
 * Step out of the current container: any elements left in it are skipped
 * (bounded), an indefinite container's end-of-contents is consumed, and a
 * definite container must end exactly where its length says.
 */
SMIME_MUST_CHECK int ber_leave(struct ber_reader *r, struct smime_error *err);

/*
 * Step out of every open container (as ber_leave) and require the end of
 * the input: nothing may follow the outermost element.
 */
SMIME_MUST_CHECK int ber_finish(struct ber_reader *r, struct smime_error *err);

/*
 * Enter a CMS ContentInfo (RFC 5652 3) and read its contentType: *nid_r is
 * its NID (NID_undef when OpenSSL does not know it); with oid_r, the DER of
 * the OID is returned too (OPENSSL_free).  The reader is left before the
 * [0] content.
 */
SMIME_MUST_CHECK int ber_content_info(struct ber_reader *r, int *nid_r, unsigned char **oid_r,
    size_t *oid_len_r, struct smime_error *err);

/* Skip the element t just read by ber_next (its contents, at any depth). */
SMIME_MUST_CHECK int ber_skip(struct ber_reader *r, const struct ber_tlv *t,
    struct smime_error *err);

/*
 * Read the element t just read by ber_next whole (header included, as it
 * was encoded) into a new buffer of at most max bytes (<= BER_MAX_WHOLE),
 * for d2i_*.  The caller frees *der_r with OPENSSL_free.
 */
SMIME_MUST_CHECK int ber_read_whole(struct ber_reader *r, const struct ber_tlv *t, size_t max,
    unsigned char **der_r, size_t *len_r, struct smime_error *err);

/*
 * A BIO that reads the contents of the OCTET STRING t just read by ber_next
 * (universal 4 or an implicitly tagged one: the caller has checked the tag):
 * a primitive string's bytes, or the concatenated bytes of the primitive
 * chunks of a constructed one (X.690 8.7.3.2; nested constructed chunks up
 * to BER_MAX_DEPTH).  It reports EOF at the end of the string, and the
 * reader is then positioned after it.  Errors (malformed chunks,
 * truncation) make the BIO read fail and are kept: ber_error returns them.
 * The BIO must be read to EOF (or freed) before the reader is used again.
 */
BIO *ber_octets_bio(struct ber_reader *r, const struct ber_tlv *t);

/* The first error met by an octets BIO, or 0 (err filled when non-zero). */
int ber_error(struct ber_reader *r, struct smime_error *err);

/* Bytes consumed from the input so far. */
uint64_t ber_tell(const struct ber_reader *r);

#endif

/*
 * Internal interfaces shared by the modules of libsmime.  Nothing here is
 * part of the public API.
 */
#ifndef SMIME_INTERNAL_H
#define SMIME_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <gmime/gmime.h>
#include <openssl/bio.h>
#include <openssl/cms.h>

#include <smime/smime.h>

/* A growable byte buffer with a hard maximum. */
struct buf {
	unsigned char *data;
	size_t len, cap, max;
};

void buf_init(struct buf *b, size_t max);
/* Frees the storage after cleansing it. */
void buf_free(struct buf *b);
SMIME_MUST_CHECK int buf_add(struct buf *b, const void *p, size_t n, struct smime_error *err);
SMIME_MUST_CHECK int buf_adds(struct buf *b, const char *s, struct smime_error *err);
/* Hand over the storage: *data_r owns it, b is reset. */
void buf_take(struct buf *b, unsigned char **data_r, size_t *len_r);

/* Read all of in into b, failing with SMIME_E_INPUT beyond b->max. */
SMIME_MUST_CHECK int read_all(BIO *in, struct buf *b, struct smime_error *err);
/* Write all of p[n] to out. */
SMIME_MUST_CHECK int write_all(BIO *out, const void *p, size_t n, struct smime_error *err);

/* --- mime.c: the MIME layer over GMime --- */

/* Parse a whole message held in data[len] (which must outlive msg). */
SMIME_MUST_CHECK int mime_parse(const unsigned char *data, size_t len,
    GMimeMessage **msg_r, struct smime_error *err);

/*
 * The message's own headers other than Content-* and MIME-Version, in their
 * original form with CRLF line ends, appended to out.
 */
SMIME_MUST_CHECK int mime_outer_headers(GMimeMessage *msg, struct buf *out,
    struct smime_error *err);

/*
 * The MIME entity obj (its Content-* headers and body) as it must be
 * signed or encrypted: with canonicalise, 8-bit and binary parts are moved
 * to a 7-bit transfer encoding; line ends are CRLF.
 */
SMIME_MUST_CHECK int mime_entity(GMimeObject *obj, bool canonicalise, struct buf *out,
    struct smime_error *err);

/* Parse a message from a stream; part contents stay on the stream when it is seekable. */
SMIME_MUST_CHECK int mime_parse_stream(GMimeStream *stream, GMimeMessage **msg_r,
    struct smime_error *err);

/* The decoded content of a leaf part. */
SMIME_MUST_CHECK int mime_part_content(GMimePart *part, size_t max, struct buf *out,
    struct smime_error *err);

/* Lower-case "type/subtype" of obj; caller frees with g_free. */
char *mime_type_of(GMimeObject *obj);

/* The addresses of the From header (mailboxes only), lower case. */
char **mime_from_addresses(GMimeMessage *msg, size_t *n_r);
/*
 * A From display name that looks like an email address (display-name
 * spoofing: "boss@example.com <mallory@example.net>"), or NULL.  Caller frees.
 */
char *mime_from_spoofed_name(GMimeMessage *msg);
/* The addresses of To and Cc, lower case, unique. */
char **mime_recipient_addresses(GMimeMessage *msg, size_t *n_r);
void strv_free(char **v, size_t n);

/* Append base64 of p[n] in lines of 76 characters with CRLF. */
SMIME_MUST_CHECK int mime_base64(const unsigned char *p, size_t n, struct buf *out,
    struct smime_error *err);

/* A fresh random MIME boundary into out[40]. */
void mime_boundary(char out[40]);

/* --- stream.c: message sources, GMime streams as BIOs, spool files --- */

/* An unlinked 0600 temporary file in $TMPDIR (or /tmp), open for reading and writing. */
SMIME_MUST_CHECK int spool_create(int *fd_r, struct smime_error *err);

/*
 * A GMime stream over the whole message read from in: the file itself when
 * in is a file or fd BIO on a regular file, the memory of a memory BIO, else
 * an unlinked spool file that in is copied to (bounded by
 * SMIME_MSG_MAX_SIZE).  GMime then keeps part contents on that stream.
 */
SMIME_MUST_CHECK int source_open(BIO *in, GMimeStream **stream_r, struct smime_error *err);

/* A read-only BIO over a GMime stream (it takes a reference). */
BIO *bio_from_gmime(GMimeStream *s);

/* A stream of the decoded (base64, quoted-printable) content of a leaf part. */
GMimeStream *part_decoded_stream(GMimePart *part);

/*
 * A read-only BIO of the decoded content of a leaf part: base64 decoded
 * here in large chunks (RFC 2045 6.8), other encodings through GMime.
 */
BIO *part_content_bio(GMimePart *part);

/*
 * A write-only filter BIO: base64 in lines of 76 characters ending in CRLF
 * (RFC 2045 6.8) to the next BIO; BIO_flush writes the last line.
 */
BIO *bio_base64_crlf(void);

/*
 * Free the filters of a chain (such as CMS_dataInit's) from its top down
 * to, not including, bottom, which the caller still owns.
 */
void bio_free_down_to(BIO *chain, BIO *bottom);

/* Copy in to out until in ends. */
SMIME_MUST_CHECK int copy_bio(BIO *in, BIO *out, struct smime_error *err);

/*
 * lib/entity.c: when the message in src is canonical already (7-bit, no
 * NUL or bare CR, lines of at most 998 octets, a Content-Type), *msg_r is
 * its header section parsed and *entity_r a seekable read BIO of its
 * canonical entity read straight from src (Content-* fields, the empty line,
 * the body with bare LFs made CRLF).  SMIME_E_NOTFOUND, without touching err,
 * when the message needs the full GMime path instead.  With lazy, the body
 * is not read here: the entity's first pass checks it as it goes, and when
 * it is not canonical that read fails and entity_fast_failed says so (the
 * caller, which has written nothing yet, then takes the GMime path).
 */
SMIME_MUST_CHECK int entity_fast_open(GMimeStream *src, bool lazy, GMimeMessage **msg_r,
    BIO **entity_r, struct smime_error *err);
bool entity_fast_failed(BIO *entity);
/*
 * Whether any read of this entity BIO failed (not canonical, or an I/O
 * error): a caller that cannot tell a failed read from the end (OpenSSL's
 * streaming copies) asks this afterwards.  False for other BIOs.
 */
bool entity_read_failed(BIO *entity);

/*
 * As mime_entity, into an unlinked 0600 spool file, read from the source
 * stream as it goes (memory does not grow with the entity).  The file is
 * rewound; the caller closes *fd_r.
 */
SMIME_MUST_CHECK int mime_entity_spool(GMimeObject *obj, bool canonicalise, int *fd_r,
    struct smime_error *err);

/*
 * The byte range of the first part of a parsed multipart/signed in the
 * stream it was parsed from (RFC 1847 2.1, RFC 2046 5.1.1), found by a
 * bounded search from the multipart's own header offset.
 */
SMIME_MUST_CHECK int stream_signed_range(GMimeStream *s, GMimeMultipart *mp, gint64 *start_r,
    gint64 *end_r, struct smime_error *err);

/* s read with every bare LF made CRLF (RFC 8551 3.1.1); the filter holds a reference. */
GMimeStream *stream_crlf(GMimeStream *s);

/* The next layer's message: headers (copied) followed by content (referenced). */
GMimeStream *stream_layer(const struct buf *headers, GMimeStream *content);

/* All of s, from its start, to out with CRLF line ends. */
SMIME_MUST_CHECK int stream_copy_crlf(GMimeStream *s, BIO *out, struct smime_error *err);

/* --- cms.c: CMS steps, all done by OpenSSL --- */

/* Name of the content-encryption cipher ("aes-256-gcm"), or NULL. */
const char *cms_cipher_name(const EVP_CIPHER *c);
const EVP_CIPHER *cms_cipher_by_name(const char *name);

/* DER of our SMIMECapabilities, strongest first (RFC 8551 2.5.2). */
STACK_OF(X509_ALGOR) *cms_our_capabilities(void);

/* The algorithm of a DER AlgorithmIdentifier, or NID_undef. */
int cms_content_cipher_nid_alg(const unsigned char *der, size_t n);
/*
 * The aes-ICVlen of the AES-GCM AlgorithmIdentifier der (RFC 5084 3.2: 12
 * when absent), or -1 when its parameters are malformed or the length is
 * outside 12..16.
 */
int cms_gcm_icv_len(const unsigned char *der, size_t n);
/* Append tag, definite length and in to out (DER, X.690 8.1.3). */
SMIME_MUST_CHECK int der_wrap(struct buf *out, unsigned char tag, const struct buf *in,
    struct smime_error *err);
/*
 * Decode the ContentInfo of type type_oid (its DER) whose content is the
 * SEQUENCE of the concatenated DER elements in body: how a small detached
 * structure is made for OpenSSL from pieces of a streamed message.  what
 * names the pieces in the error ("the SignerInfos are").
 */
SMIME_MUST_CHECK int cms_from_der_parts(const unsigned char *type_oid, size_t type_oid_len,
    const struct buf *body, const char *what, CMS_ContentInfo **cms_r, struct smime_error *err);

/* --- assemble.c: certificates and requests read without key decoders --- */

/*
 * An X509 assembled from the fields of the certificate der (RFC 5280 4.1),
 * or a PKCS#10 request's X509_REQ (RFC 2986 4): the same names, serial
 * number, validity, key, extensions, attributes and signature, encoded
 * anew (so the same octets only when der was DER).  NULL when the input is
 * not one that can be assembled exactly (a key other than rsaEncryption
 * among them): decode it the usual way.  req_verify: whether the request
 * der's signature verifies with key over the CertificationRequestInfo as
 * received.
 */
X509 *assemble_cert(const unsigned char *der, size_t len);
X509_REQ *assemble_req(const unsigned char *der, size_t len);
bool req_verify(const unsigned char *der, size_t len, EVP_PKEY *key);

/* A ContentInfo of a SignedData split into the ContentInfo without its
 * certificates (rest) and the encodings of the certificates (into info). */
#define SIGNED_SPLIT_MAX_CERTS 32
struct signed_split {
	void *info;
	unsigned char *rest;
	size_t rest_len;
	int n_certs;
	const unsigned char *cert[SIGNED_SPLIT_MAX_CERTS];
	size_t cert_len[SIGNED_SPLIT_MAX_CERTS];
};

/* 0; -1 when der is no SignedData that splits (a CertificateChoices
 * other than a Certificate among them); -2 when it holds more than
 * SIGNED_SPLIT_MAX_CERTS.  s is freed with signed_split_free either way. */
int signed_split(const unsigned char *der, size_t len, struct signed_split *s);
void signed_split_free(struct signed_split *s);

/* The content-encryption cipher of an (Auth)EnvelopedData DER, or NID_undef. */
int cms_content_cipher_nid(const unsigned char *der, size_t n);

/* Does a DER SMIMECapabilities list contain the cipher nid? */
bool cms_caps_has(const unsigned char *der, size_t len, int nid);

/* The digest md of everything content yields, read in large chunks. */
SMIME_MUST_CHECK int cms_digest_bio(BIO *content, const EVP_MD *md, unsigned char *out,
    unsigned int *len_r, struct smime_error *err);

/*
 * Sign si over the content digest md (computed with cms_digest_bio): the
 * content-type, message-digest and signing-time attributes are added (RFC
 * 5652 11), then the DER of the signed attributes is signed by OpenSSL, or,
 * for Ed25519 (RFC 8419), which OpenSSL 3.0's CMS cannot do, with PureEdDSA
 * here.  cms_eddsa_verify returns 1 when an Ed25519 signature is good.
 */
SMIME_MUST_CHECK int cms_sign_digest(CMS_ContentInfo *cms, CMS_SignerInfo *si, EVP_PKEY *key,
    bool eddsa, const unsigned char *md, unsigned int mdlen, struct smime_error *err);
int cms_eddsa_verify(CMS_SignerInfo *si, EVP_PKEY *pub);

/*
 * Write the detached SignedData der[n] as an opaque one: the same
 * structure in indefinite-length BER with content read from the BIO as the
 * eContent, in chunks.  Memory does not grow with the content.
 */
SMIME_MUST_CHECK int cms_write_attached(BIO *out, const unsigned char *der, size_t n,
    BIO *content, struct smime_error *err);

/* --- decrypt.c: decryption as a stream --- */

/*
 * The own key and certificate for one of the RecipientInfos of cms, found
 * through the keystore index; every recipient identifier is recorded in l.
 * SMIME_E_NOTFOUND names them all when none matches.
 */
SMIME_MUST_CHECK int cms_recipient_key(struct smime_keystore *ks, CMS_ContentInfo *cms,
    struct smime_layer *l, X509 **cert_r, EVP_PKEY **key_r, struct smime_error *err);

/*
 * Decrypt the encrypted leaf part (the message root) as a stream and write
 * the plaintext entity to sink, an unlinked spool that the caller releases
 * only when this returns 0 (for AuthEnvelopedData, after the tag verified;
 * the whole structure is checked to its end).  l receives the layer report.
 */
SMIME_MUST_CHECK int stream_decrypt(struct smime_keystore *ks, GMimePart *part, BIO *sink,
    struct smime_layer *l, struct smime_error *err);

/* --- signed.c: opaque SignedData as a stream --- */

struct signed_stream;

/*
 * Read the opaque signed-data leaf part in one pass: its content goes
 * through the digests of the algorithms the SignedData names (and into
 * sink, when not NULL); *cms_r is then the detached SignedData (certificates
 * and SignerInfos) to verify against signed_stream_digests(ss), a chain
 * that CMS_SignerInfo_verify_content takes.  Truncated or malformed input
 * fails here.
 */
SMIME_MUST_CHECK int signed_stream_open(GMimePart *part, BIO *sink, CMS_ContentInfo **cms_r,
    struct signed_stream **ss_r, struct smime_error *err);
BIO *signed_stream_digests(struct signed_stream *ss);
void signed_stream_free(struct signed_stream *ss);

/*
 * The kind of the CMS in an application/pkcs7-mime part, read from its
 * first bytes (not from the smime-type parameter, which is only a hint):
 * enveloped, authenticated-enveloped, opaque signed, or certs-only.
 */
SMIME_MUST_CHECK int cms_part_kind(GMimePart *part, enum smime_layer_kind *kind_r,
    struct smime_error *err);

/* --- keypref.c: SMIMEEncryptionKeyPreference (RFC 8551 2.5.3) --- */

/*
 * When the verified SignerInfo si names its signer's encryption
 * certificate and certs carries it, record it in ks (a contact with caps,
 * preferred as of signing_time) provided it carries an address of signer
 * and validates for encryption at `at` (0: now).  Returns 0 when there is
 * nothing to record; an error names why the certificate was not recorded.
 */
SMIME_MUST_CHECK int keypref_record(struct smime_keystore *ks, CMS_SignerInfo *si,
    X509 *signer, STACK_OF(X509) *certs, const unsigned char *caps, size_t caps_len,
    time_t signing_time, time_t at, struct smime_error *err);

/* An SMIMEEncryptionKeyPreference value is an issuer name and serial at most. */
#define KEYPREF_MAX 8192

/*
 * Decode der[len], one SMIMEEncryptionKeyPreference value (untrusted;
 * its fuzz target is fuzz/fuzz_keypref.c), and say in *match_r whether it
 * names cert (may be NULL).  Returns 0, or SMIME_E_INPUT naming the rule.
 */
SMIME_MUST_CHECK int keypref_check(const unsigned char *der, size_t len, X509 *cert,
    bool *match_r, struct smime_error *err);

#endif

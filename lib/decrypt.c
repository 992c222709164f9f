/*
 * Decryption as a stream (RFC 5652 6, RFC 5083): the outer BER of an
 * EnvelopedData or AuthEnvelopedData is read with lib/ber.c; OpenSSL gets a
 * small detached structure with what it must see (RecipientInfos, the
 * content-encryption algorithm, the authentication tag) and the ciphertext
 * through its cipher BIO.  Memory does not grow with the message.
 *
 * AES-GCM: the tag comes after the content; it is read when the content
 * ends and handed to the cipher before its final step, so one pass does it.
 * The plaintext goes to the caller's sink (an unlinked spool file), which
 * reaches the output only after everything verified.  AES-CBC has no tag
 * (integrity: none).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "ber.h"
#include "internal.h"

#define DECRYPT_CHUNK 65536
#define MAX_RECIPIENT_INFOS_DER (1024u * 1024)

/* The pieces of the outer structure that OpenSSL must see. */
struct envelope {
	bool auth;
	unsigned char *type_oid, *version, *originator, *ris, *ct_oid, *alg;
	size_t type_oid_len, version_len, originator_len, ris_len, ct_oid_len, alg_len;
	struct ber_tlv content;     /* the encryptedContent header */
};

static void
envelope_clear(struct envelope *e)
{
	OPENSSL_free(e->type_oid);
	OPENSSL_free(e->version);
	OPENSSL_free(e->originator);
	OPENSSL_free(e->ris);
	OPENSSL_free(e->ct_oid);
	OPENSSL_free(e->alg);
	memset(e, 0, sizeof(*e));
}

/*
 * Walk ContentInfo -> (Auth)EnvelopedData -> EncryptedContentInfo up to the
 * encryptedContent header, keeping the small pieces in e.  The reader is
 * left at the start of the encryptedContent's contents.
 */
static int
walk_to_content(struct ber_reader *r, struct envelope *e, struct smime_error *err)
{
	struct ber_tlv t;
	int rc, nid;

#define WHOLE(field, max) do { \
	if ((rc = ber_read_whole(r, &t, (max), &e->field, &e->field##_len, err)) != 0) \
		return rc; \
} while (0)

	if ((rc = ber_content_info(r, &nid, &e->type_oid, &e->type_oid_len, err)) != 0)
		return rc;
	if (nid != NID_pkcs7_enveloped && nid != NID_id_smime_ct_authEnvelopedData)
		return smime_error_set(err, SMIME_E_INPUT, "the S/MIME part holds %s, not "
		    "EnvelopedData or AuthEnvelopedData", nid != NID_undef ? OBJ_nid2ln(nid) :
		    "an unknown content type");
	e->auth = nid == NID_id_smime_ct_authEnvelopedData;
	if ((rc = ber_expect(r, BER_CONTEXT, 0, true, &t, "ContentInfo.content", err)) != 0 ||
	    (rc = ber_enter(r, &t, err)) != 0 ||
	    (rc = ber_expect(r, BER_UNIVERSAL, 16, true, &t, e->auth ? "AuthEnvelopedData" :
	    "EnvelopedData", err)) != 0 ||
	    (rc = ber_enter(r, &t, err)) != 0 ||
	    (rc = ber_expect(r, BER_UNIVERSAL, 2, false, &t, "version", err)) != 0)
		return rc;
	WHOLE(version, 16);
	/* originatorInfo [0] IMPLICIT OPTIONAL, then recipientInfos SET */
	if ((rc = ber_next(r, &t, err)) != 0)
		return rc == SMIME_E_NOTFOUND ? smime_error_set(err, SMIME_E_INPUT,
		    "RFC 5652 6.1: RecipientInfos missing") : rc;
	if (t.cls == BER_CONTEXT && t.tag == 0) {
		WHOLE(originator, BER_MAX_WHOLE);
		if ((rc = ber_next(r, &t, err)) != 0)
			return rc == SMIME_E_NOTFOUND ? smime_error_set(err, SMIME_E_INPUT,
			    "RFC 5652 6.1: RecipientInfos missing") : rc;
	}
	if (t.cls != BER_UNIVERSAL || t.tag != 17 || !t.constructed)
		return smime_error_set(err, SMIME_E_INPUT,
		    "RFC 5652 6.1: RecipientInfos (a SET) expected at offset %llu",
		    (unsigned long long)t.offset);
	WHOLE(ris, MAX_RECIPIENT_INFOS_DER);
	/* EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm, [0] content } */
	if ((rc = ber_expect(r, BER_UNIVERSAL, 16, true, &t, "EncryptedContentInfo", err)) != 0 ||
	    (rc = ber_enter(r, &t, err)) != 0 ||
	    (rc = ber_expect(r, BER_UNIVERSAL, 6, false, &t, "EncryptedContentInfo.contentType",
	    err)) != 0)
		return rc;
	WHOLE(ct_oid, 64);
	if ((rc = ber_expect(r, BER_UNIVERSAL, 16, true, &t, "contentEncryptionAlgorithm", err)) != 0)
		return rc;
	WHOLE(alg, 4096);
	rc = ber_next(r, &t, err);
	if (rc == SMIME_E_NOTFOUND)
		return smime_error_set(err, SMIME_E_INPUT,
		    "the encrypted content is absent (detached EnvelopedData is not S/MIME)");
	if (rc != 0)
		return rc;
	if (t.cls != BER_CONTEXT || t.tag != 0)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 5652 6.1: encryptedContent [0] "
		    "expected at offset %llu", (unsigned long long)t.offset);
	e->content = t;
#undef WHOLE
	return 0;
}

/*
 * After the content of an AuthEnvelopedData: authAttrs [1] OPTIONAL, then
 * the mac, whose DER goes to *mac_r.  The authenticated attributes are
 * skipped: they are not given to the cipher as additional authenticated
 * data, so a message whose tag covers them fails to verify and is refused,
 * never accepted unauthenticated.
 */
static int
walk_auth_tail(struct ber_reader *r, unsigned char **mac_r, size_t *mac_len_r,
    struct smime_error *err)
{
	struct ber_tlv t;
	int rc;

	if ((rc = ber_leave(r, err)) != 0)	/* EncryptedContentInfo */
		return rc;
	if ((rc = ber_next(r, &t, err)) == 0 && t.cls == BER_CONTEXT && t.tag == 1 &&
	    (rc = ber_skip(r, &t, err)) == 0)
		rc = ber_next(r, &t, err);
	if (rc != 0)
		return rc == SMIME_E_NOTFOUND ? smime_error_set(err, SMIME_E_INPUT,
		    "RFC 5083 2.1: AuthEnvelopedData without its mac") : rc;
	if (t.cls != BER_UNIVERSAL || t.tag != 4)
		return smime_error_set(err, SMIME_E_INPUT,
		    "RFC 5083 2.1: MessageAuthenticationCode (an OCTET STRING) expected");
	return ber_read_whole(r, &t, 64, mac_r, mac_len_r, err);
}

/*
 * The detached ContentInfo that OpenSSL decodes: everything but the content,
 * with mac (DER, for AuthEnvelopedData: a placeholder) at the end.
 */
static int
synthesise(const struct envelope *e, const unsigned char *mac, size_t mac_len,
    CMS_ContentInfo **cms_r, struct smime_error *err)
{
	struct buf eci, body;
	int rc;

	buf_init(&eci, BER_MAX_WHOLE);
	buf_init(&body, BER_MAX_WHOLE * 4);
	/* EncryptedContentInfo without its content; then the (Auth)EnvelopedData fields */
	if ((rc = buf_add(&body, e->ct_oid, e->ct_oid_len, err)) != 0 ||
	    (rc = buf_add(&body, e->alg, e->alg_len, err)) != 0 ||
	    (rc = der_wrap(&eci, 0x30, &body, err)) != 0)
		goto out;
	body.len = 0;
	if ((rc = buf_add(&body, e->version, e->version_len, err)) != 0 ||
	    (e->originator && (rc = buf_add(&body, e->originator, e->originator_len, err)) != 0) ||
	    (rc = buf_add(&body, e->ris, e->ris_len, err)) != 0 ||
	    (rc = buf_add(&body, eci.data, eci.len, err)) != 0 ||
	    (rc = buf_add(&body, mac, mac_len, err)) != 0)
		goto out;
	rc = cms_from_der_parts(e->type_oid, e->type_oid_len, &body,
	    "the encrypted message's RecipientInfos or algorithms are", cms_r, err);
out:
	buf_free(&eci);
	buf_free(&body);
	return rc;
}

/*
 * Between OpenSSL's cipher BIO and the ciphertext of an AuthEnvelopedData:
 * when the ciphertext ends, the rest of the structure (authAttrs, mac) is
 * read and the tag handed to the cipher before it finishes (GCM takes the
 * tag at any time before its final step), so one pass does it all.
 */
struct tail {
	int icv_len;                /* the tag length GCMParameters give */
	BIO *octets;
	struct ber_reader *r;
	EVP_CIPHER_CTX *ctx;
	bool done;
	int rc;
	struct smime_error err;
};

static int
tail_read(BIO *b, char *buf, int len)
{
	struct tail *t = BIO_get_data(b);
	ASN1_OCTET_STRING *mac = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t der_len = 0;
	int n;

	BIO_clear_retry_flags(b);
	if (t->rc != 0)
		return -1;
	if ((n = BIO_read(t->octets, buf, len)) != 0 || t->done)
		return n;
	t->done = true;
	if ((t->rc = ber_error(t->r, &t->err)) != 0 ||
	    (t->rc = walk_auth_tail(t->r, &der, &der_len, &t->err)) != 0 ||
	    (t->rc = ber_finish(t->r, &t->err)) != 0) {
		OPENSSL_free(der);
		return -1;
	}
	p = der;
	/* RFC 5084 3.2: the mac is as long as aes-ICVlen says, 12 to 16 octets. */
	if ((mac = d2i_ASN1_OCTET_STRING(NULL, &p, (long)der_len)) == NULL ||
	    ASN1_STRING_length(mac) != t->icv_len || t->ctx == NULL ||
	    EVP_CIPHER_CTX_ctrl(t->ctx, EVP_CTRL_AEAD_SET_TAG, ASN1_STRING_length(mac),
	    (void *)ASN1_STRING_get0_data(mac)) <= 0)
		t->rc = smime_error_set(&t->err, SMIME_E_INPUT, "RFC 5084 3.2: the "
		    "authentication tag must be %d octets, as the GCM parameters say", t->icv_len);
	ASN1_OCTET_STRING_free(mac);
	OPENSSL_free(der);
	return t->rc != 0 ? -1 : 0;
}

static long
tail_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tail *t = BIO_get_data(b);

	(void)num; (void)ptr;
	if (cmd == BIO_CTRL_EOF)
		return t->done;
	return cmd == BIO_CTRL_FLUSH;
}

static BIO_METHOD *tail_method;
static pthread_once_t tail_once = PTHREAD_ONCE_INIT;

static void
tail_init(void)
{
	tail_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "CMS mac");
	if (tail_method == NULL)
		return;
	BIO_meth_set_read(tail_method, tail_read);
	BIO_meth_set_ctrl(tail_method, tail_ctrl);
}

int
stream_decrypt(struct smime_keystore *ks, GMimePart *part, BIO *sink, struct smime_layer *l,
    struct smime_error *err)
{
	/* A placeholder tag until the real one is read after the content. */
	static const unsigned char no_mac[18] = { 0x04, 0x10 };
	struct envelope e = { 0 };
	struct tail t = { 0 };
	BIO *in = NULL, *octets = NULL, *src = NULL, *chain = NULL, *cipher;
	struct ber_reader *r = NULL;
	CMS_ContentInfo *cms = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	const EVP_CIPHER *calg;
	unsigned char *chunk = NULL;
	int rc, cnid;

	if ((in = part_content_bio(part)) == NULL ||
	    (r = ber_reader_new(in, SMIME_MSG_MAX_SIZE)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "cannot read the encrypted part");
		goto out;
	}
	if ((rc = walk_to_content(r, &e, err)) != 0)
		goto out;
	l->kind = e.auth ? SMIME_LAYER_AUTH_ENVELOPED : SMIME_LAYER_ENVELOPED;
	if ((rc = synthesise(&e, no_mac, e.auth ? sizeof(no_mac) : 0, &cms, err)) != 0)
		goto out;
	cnid = cms_content_cipher_nid_alg(e.alg, e.alg_len);
	calg = cnid != NID_undef ? EVP_get_cipherbynid(cnid) : NULL;
	free(l->cipher);
	l->cipher = strdup(calg != NULL && cms_cipher_name(calg) ? cms_cipher_name(calg) :
	    "unknown");
	if (calg == NULL) {
		rc = smime_error_set(err, SMIME_E_POLICY, "the message is encrypted with %s, which "
		    "this client does not support", cnid != NID_undef ? OBJ_nid2ln(cnid) :
		    "an unrecognised algorithm");
		goto out;
	}
	/*
	 * RFC 5083 2.1: AuthEnvelopedData only with an authenticated cipher, and
	 * EnvelopedData never with one: a CBC content relabelled as
	 * AuthEnvelopedData must not be reported as authenticated.
	 */
	if (e.auth != ((EVP_CIPHER_get_flags(calg) & EVP_CIPH_FLAG_AEAD_CIPHER) != 0)) {
		rc = smime_error_set(err, SMIME_E_INPUT, e.auth ?
		    "RFC 5083 2.1: AuthEnvelopedData with %s, which does not authenticate: refused" :
		    "EnvelopedData with %s, an authenticated cipher that belongs in "
		    "AuthEnvelopedData (RFC 5083): refused", OBJ_nid2ln(cnid));
		goto out;
	}
	if (e.auth && (t.icv_len = cms_gcm_icv_len(e.alg, e.alg_len)) < 0) {
		rc = smime_error_set(err, SMIME_E_INPUT, "RFC 5084 3.2: the AES-GCM parameters "
		    "are malformed or ask for a tag shorter than 12 octets");
		goto out;
	}
	/* Said only of a cipher that matches its structure. */
	l->integrity = e.auth ? "aead" : "none";
	if ((rc = cms_recipient_key(ks, cms, l, &cert, &key, err)) != 0)
		goto out;
	if (!CMS_decrypt_set1_pkey_and_peer(cms, key, cert, NULL)) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "cannot unwrap the content-encryption key "
		    "with the keystore's key");
		goto out;
	}

	if ((octets = ber_octets_bio(r, &e.content)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	src = octets;
	if (e.auth) {
		pthread_once(&tail_once, tail_init);
		if (tail_method == NULL || (src = BIO_new(tail_method)) == NULL) {
			src = NULL;
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
		t.octets = octets;
		t.r = r;
		BIO_set_data(src, &t);
		BIO_set_init(src, 1);
	}
	if ((chain = CMS_dataInit(cms, src)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "cannot start decryption");
		goto out;
	}
	cipher = BIO_find_type(chain, BIO_TYPE_CIPHER);
	if (cipher == NULL || (e.auth && BIO_get_cipher_ctx(cipher, &t.ctx) <= 0)) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "cannot start decryption");
		goto out;
	}
	if ((chunk = malloc(DECRYPT_CHUNK)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	for (;;) {
		int n = BIO_read(chain, chunk, DECRYPT_CHUNK);
		if (n <= 0)
			break;
		if ((rc = write_all(sink, chunk, (size_t)n, err)) != 0)
			goto out;
	}
	if (t.rc != 0) {
		rc = smime_error_set(err, t.err.code, "%s", t.err.message);
		goto out;
	}
	/* Everything after the content must be well-formed too (unprotectedAttrs; the mac). */
	if ((rc = ber_error(r, err)) != 0 || (!e.auth && (rc = ber_finish(r, err)) != 0))
		goto out;
	if (BIO_get_cipher_status(cipher) != 1 || (e.auth && !t.done)) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, e.auth ?
		    "the authentication tag did not verify: the message was altered (nothing was "
		    "released)" : "decryption failed (bad padding: the message was altered, or the "
		    "key is wrong)");
		goto out;
	}
out:
	if (chunk != NULL) {
		OPENSSL_cleanse(chunk, DECRYPT_CHUNK);
		free(chunk);
	}
	bio_free_down_to(chain, src);
	if (src != octets)
		BIO_free(src);
	BIO_free(octets);
	ber_reader_free(r);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	X509_free(cert);
	EVP_PKEY_free(key);
	envelope_clear(&e);
	ERR_clear_error();
	return rc;
}

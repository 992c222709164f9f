/* Small CMS helpers: cipher names and SMIMECapabilities (RFC 8551 2.5.2). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "internal.h"

static const struct {
	const char *name;
	int nid;
} ciphers[] = {
	{ "aes-256-gcm", NID_aes_256_gcm },
	{ "aes-128-gcm", NID_aes_128_gcm },
	{ "aes-256-cbc", NID_aes_256_cbc },
	{ "aes-192-cbc", NID_aes_192_cbc },
	{ "aes-128-cbc", NID_aes_128_cbc },
	{ "des-ede3-cbc", NID_des_ede3_cbc },
};

const char *
cms_cipher_name(const EVP_CIPHER *c)
{
	int nid = c ? EVP_CIPHER_get_nid(c) : NID_undef;

	for (size_t i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++)
		if (ciphers[i].nid == nid)
			return ciphers[i].name;
	return c ? OBJ_nid2sn(nid) : NULL;
}

const EVP_CIPHER *
cms_cipher_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++)
		if (strcmp(ciphers[i].name, name) == 0)
			return EVP_get_cipherbynid(ciphers[i].nid);
	return NULL;
}

/*
 * RFC 8551 2.5.2: "The SMIMECapabilities attribute includes signature
 * algorithms, symmetric algorithms, and key encipherment algorithms" and
 * lists them in order of preference.  We announce what we can decrypt,
 * strongest first, and nothing weaker than AES-128.
 */
STACK_OF(X509_ALGOR) *
cms_our_capabilities(void)
{
	static const int nids[] = {
		NID_aes_256_gcm, NID_aes_128_gcm, NID_aes_256_cbc, NID_aes_128_cbc,
	};
	STACK_OF(X509_ALGOR) *caps = sk_X509_ALGOR_new_null();

	if (caps == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(nids) / sizeof(nids[0]); i++) {
		if (!PKCS7_simple_smimecap(caps, nids[i], -1)) {
			sk_X509_ALGOR_pop_free(caps, X509_ALGOR_free);
			return NULL;
		}
	}
	return caps;
}

bool
cms_caps_has(const unsigned char *der, size_t len, int nid)
{
	const unsigned char *p = der;
	STACK_OF(X509_ALGOR) *caps;
	bool found = false;

	if (der == NULL || len == 0 || len > 65536)
		return false;
	caps = d2i_X509_ALGORS(NULL, &p, (long)len);
	if (caps == NULL)
		return false;
	for (int i = 0; i < sk_X509_ALGOR_num(caps); i++) {
		const ASN1_OBJECT *obj;
		X509_ALGOR_get0(&obj, NULL, NULL, sk_X509_ALGOR_value(caps, i));
		if (OBJ_obj2nid(obj) == nid)
			found = true;
	}
	sk_X509_ALGOR_pop_free(caps, X509_ALGOR_free);
	return found;
}

/*
 * Read one TLV header at *p (bounded by end) with OpenSSL's reader.  On
 * success *p points at the contents and *len_r is their length (or the
 * rest of the input for an indefinite length).
 */
static bool
tlv(const unsigned char **p, const unsigned char *end, int want_tag, int want_class,
    long *len_r)
{
	long len;
	int tag, cls, r;
	const unsigned char *q = *p;

	if (q >= end)
		return false;
	r = ASN1_get_object(&q, &len, &tag, &cls, end - q);
	if (r & 0x80)
		return false;
	if (tag != want_tag || cls != want_class)
		return false;
	if (r == 0x21)	/* constructed, indefinite length */
		len = end - q;
	*p = q;
	*len_r = len;
	return true;
}

/* Skip one whole TLV (definite lengths only). */
static bool
skip_tlv(const unsigned char **p, const unsigned char *end)
{
	long len;
	int tag, cls, r;
	const unsigned char *q = *p;

	r = ASN1_get_object(&q, &len, &tag, &cls, end - q);
	if ((r & 0x80) || r == 0x21)
		return false;
	*p = q + len;
	return true;
}

/*
 * RFC 5652 6.1 and RFC 5083 2.1: the contentEncryptionAlgorithm of an
 * EnvelopedData or AuthEnvelopedData, read from its DER without decoding
 * anything else.  Returns NID_undef when it cannot be found.
 */
int
cms_content_cipher_nid(const unsigned char *der, size_t n)
{
	const unsigned char *p = der, *end = der + n;
	long len;
	int tag, cls, r;
	ASN1_OBJECT *obj = NULL;
	int nid = NID_undef;

	if (n > LONG_MAX)
		return NID_undef;
	/* ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content } */
	if (!tlv(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &len) || !skip_tlv(&p, end) ||
	    !tlv(&p, end, 0, V_ASN1_CONTEXT_SPECIFIC, &len) ||
	    !tlv(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &len))
		return NID_undef;
	/* version, [0] originatorInfo OPTIONAL, recipientInfos */
	if (!skip_tlv(&p, end))
		return NID_undef;
	{
		const unsigned char *q = p;
		r = ASN1_get_object(&q, &len, &tag, &cls, end - p);
		if (r & 0x80)
			return NID_undef;
		if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == 0 && !skip_tlv(&p, end))
			return NID_undef;
	}
	if (!skip_tlv(&p, end))
		return NID_undef;
	/* EncryptedContentInfo ::= SEQUENCE { contentType, AlgorithmIdentifier, ... } */
	if (!tlv(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &len) || !skip_tlv(&p, end) ||
	    !tlv(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &len))
		return NID_undef;
	if (d2i_ASN1_OBJECT(&obj, &p, end - p) == NULL)
		return NID_undef;
	nid = OBJ_obj2nid(obj);
	ASN1_OBJECT_free(obj);
	return nid;
}

/* DER SET OF ordering (X.690 11.6): by encoding, shorter first on a tie. */
static int
der_cmp(const void *a, const void *b)
{
	const struct { unsigned char *p; int n; } *x = a, *y = b;
	int m = x->n < y->n ? x->n : y->n;
	int c = memcmp(x->p, y->p, (size_t)m);

	return c != 0 ? c : x->n - y->n;
}

/*
 * The DER of the signed attributes with the SET OF tag, as RFC 5652 5.4
 * says they are signed: "a separate encoding of the signedAttrs field is
 * performed for message digest calculation.  The IMPLICIT [0] tag in the
 * signedAttrs is not used for the DER encoding, rather an EXPLICIT SET OF
 * tag is used."  sort is true when signing (DER order) and false when
 * verifying (the order received).
 */
static unsigned char *
signed_attrs_der(CMS_SignerInfo *si, bool sort, size_t *len_r)
{
	struct { unsigned char *p; int n; } enc[64];
	int count = CMS_signed_get_attr_count(si), i;
	size_t body = 0, hdr, off;
	unsigned char *out = NULL;

	if (count <= 0 || count > 64)
		return NULL;
	for (i = 0; i < count; i++) {
		enc[i].p = NULL;
		enc[i].n = i2d_X509_ATTRIBUTE(CMS_signed_get_attr(si, i), &enc[i].p);
		if (enc[i].n <= 0)
			goto out;
		body += (size_t)enc[i].n;
	}
	if (sort)
		qsort(enc, (size_t)count, sizeof(enc[0]), der_cmp);
	hdr = body < 0x80 ? 2 : body < 0x100 ? 3 : body < 0x10000 ? 4 : 0;
	if (hdr == 0 || (out = OPENSSL_malloc(hdr + body)) == NULL)
		goto out;
	out[0] = 0x31;
	if (hdr == 2) {
		out[1] = (unsigned char)body;
	} else if (hdr == 3) {
		out[1] = 0x81;
		out[2] = (unsigned char)body;
	} else {
		out[1] = 0x82;
		out[2] = (unsigned char)(body >> 8);
		out[3] = (unsigned char)body;
	}
	off = hdr;
	for (i = 0; i < count; i++) {
		memcpy(out + off, enc[i].p, (size_t)enc[i].n);
		off += (size_t)enc[i].n;
	}
	*len_r = off;
out:
	for (int k = 0; k < count && k < 64; k++)
		if (k < i || sort)
			OPENSSL_free(enc[k].p);
	return out;
}

#define DIGEST_CHUNK (256 * 1024)

int
cms_digest_bio(BIO *content, const EVP_MD *md, unsigned char *out, unsigned int *len_r,
    struct smime_error *err)
{
	EVP_MD_CTX *dctx = EVP_MD_CTX_new();
	unsigned char *chunk = malloc(DIGEST_CHUNK);
	int rc = 0, n;

	if (dctx == NULL || chunk == NULL || !EVP_DigestInit_ex(dctx, md, NULL)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "cannot start the message digest");
		goto out;
	}
	while ((n = BIO_read(content, chunk, DIGEST_CHUNK)) > 0)
		if (!EVP_DigestUpdate(dctx, chunk, (size_t)n)) {
			rc = smime_error_ssl(err, SMIME_E_INTERNAL, "message digest");
			goto out;
		}
	if (n < 0) {
		rc = smime_error_set(err, SMIME_E_IO, "cannot read the content to sign");
		goto out;
	}
	if (!EVP_DigestFinal_ex(dctx, out, len_r))
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "message digest");
out:
	if (chunk != NULL) {
		OPENSSL_cleanse(chunk, DIGEST_CHUNK);
		free(chunk);
	}
	EVP_MD_CTX_free(dctx);
	return rc;
}

int
cms_sign_digest(CMS_ContentInfo *cms, CMS_SignerInfo *si, EVP_PKEY *key, bool eddsa,
    const unsigned char *md, unsigned int mdlen, struct smime_error *err)
{
	unsigned char sig[128], *attrs = NULL;
	size_t alen = 0, siglen = sizeof(sig);
	EVP_MD_CTX *mctx = NULL;
	ASN1_TIME *now = NULL;
	int rc = 0;

	/* RFC 5652 11.1: the content-type attribute MUST be present with signed attributes. */
	if (!CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
	    (void *)CMS_get0_eContentType(cms), -1) ||
	    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING,
	    md, (int)mdlen) ||
	    (now = X509_gmtime_adj(NULL, 0)) == NULL ||
	    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime, now->type, now, -1)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "signed attributes");
		goto out;
	}
	if (!eddsa) {
		/* RFC 5652 5.4: OpenSSL signs the DER of the signed attributes. */
		if (!CMS_SignerInfo_sign(si))
			rc = smime_error_ssl(err, SMIME_E_CRYPTO, "signing failed");
		goto out;
	}
	/* RFC 8419 3.3: id-Ed25519 with absent parameters. */
	{
		X509_ALGOR *sigalg = NULL;
		CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &sigalg);
		if (sigalg == NULL ||
		    !X509_ALGOR_set0(sigalg, OBJ_nid2obj(NID_ED25519), V_ASN1_UNDEF, NULL)) {
			rc = smime_error_ssl(err, SMIME_E_INTERNAL, "Ed25519 signature algorithm");
			goto out;
		}
	}
	if ((attrs = signed_attrs_der(si, true, &alen)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "cannot encode the signed attributes");
		goto out;
	}
	/* RFC 8419 3.1: PureEdDSA over the DER of the signed attributes. */
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(mctx, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(mctx, sig, &siglen, attrs, alen) != 1 ||
	    !ASN1_STRING_set(CMS_SignerInfo_get0_signature(si), sig, (int)siglen)) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "Ed25519 signing failed");
		goto out;
	}
out:
	EVP_MD_CTX_free(mctx);
	ASN1_TIME_free(now);
	OPENSSL_free(attrs);
	return rc;
}

int
cms_eddsa_verify(CMS_SignerInfo *si, EVP_PKEY *pub)
{
	unsigned char *attrs;
	size_t alen = 0;
	EVP_MD_CTX *mctx;
	int ok = 0;

	if ((attrs = signed_attrs_der(si, false, &alen)) == NULL)
		return 0;
	if ((mctx = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pub) == 1) {
		ASN1_OCTET_STRING *sig = CMS_SignerInfo_get0_signature(si);
		ok = EVP_DigestVerify(mctx, sig->data, (size_t)sig->length, attrs, alen) == 1;
	}
	EVP_MD_CTX_free(mctx);
	OPENSSL_free(attrs);
	return ok;
}

int
cms_gcm_icv_len(const unsigned char *der, size_t n)
{
	const unsigned char *p = der, *q, *end;
	X509_ALGOR *alg;
	const void *pval = NULL;
	int ptype = 0, icv = -1;
	long len;

	if (der == NULL || n == 0 || n > 4096 || (alg = d2i_X509_ALGOR(NULL, &p, (long)n)) == NULL)
		return -1;
	X509_ALGOR_get0(NULL, &ptype, &pval, alg);
	if (ptype == V_ASN1_SEQUENCE && pval != NULL) {
		/* RFC 5084 3.2: GCMParameters ::= SEQUENCE { aes-nonce OCTET STRING, aes-ICVlen INTEGER DEFAULT 12 } */
		const ASN1_STRING *seq = pval;
		q = ASN1_STRING_get0_data(seq);
		end = q + ASN1_STRING_length(seq);
		if (tlv(&q, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &len) && len <= end - q) {
			end = q + len;
			if (tlv(&q, end, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, &len) && len <= end - q) {
				q += len;
				if (q == end) {
					icv = 12;
				} else {
					const unsigned char *ip = q;
					ASN1_INTEGER *ai = d2i_ASN1_INTEGER(NULL, &ip, end - q);
					long v = ai != NULL ? ASN1_INTEGER_get(ai) : -1;
					ASN1_INTEGER_free(ai);
					if (ip == end && v >= 12 && v <= 16)
						icv = (int)v;
				}
			}
		}
	}
	X509_ALGOR_free(alg);
	return icv;
}

int
cms_content_cipher_nid_alg(const unsigned char *der, size_t n)
{
	const unsigned char *p = der;
	X509_ALGOR *alg;
	const ASN1_OBJECT *obj;
	int nid;

	if (der == NULL || n == 0 || n > 4096 || (alg = d2i_X509_ALGOR(NULL, &p, (long)n)) == NULL)
		return NID_undef;
	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	nid = OBJ_obj2nid(obj);
	X509_ALGOR_free(alg);
	return nid;
}

/* One TLV of der[0..end): its header length and total length. */
static bool
tlv_span(const unsigned char *p, const unsigned char *end, size_t *hdr_r, size_t *total_r)
{
	const unsigned char *q = p;
	long len;
	int tag, cls, r;

	if (p >= end)
		return false;
	r = ASN1_get_object(&q, &len, &tag, &cls, end - p);
	if ((r & 0x80) || r == 0x21)
		return false;
	*hdr_r = (size_t)(q - p);
	*total_r = *hdr_r + (size_t)len;
	return *total_r <= (size_t)(end - p);
}

#define ATTACH_CHUNK 65536

int
cms_write_attached(BIO *out, const unsigned char *der, size_t n, BIO *content,
    struct smime_error *err)
{
	static const unsigned char eoc[2] = { 0, 0 };
	const unsigned char *p = der, *end = der + n, *sd, *sd_end, *eci;
	size_t hdr, total, ver_len, dig_len, eci_len, oid_len, rest_len;
	unsigned char *chunk = NULL;
	int rc = 0, got;

	/* ContentInfo { contentType, [0] { SignedData } } with definite lengths (our DER). */
	if (!tlv_span(p, end, &hdr, &total))
		goto bad;
	p += hdr;
	const unsigned char *oid = p;
	if (!tlv_span(p, end, &hdr, &oid_len))
		goto bad;
	p += oid_len;
	if (!tlv_span(p, end, &hdr, &total))
		goto bad;
	p += hdr;
	if (!tlv_span(p, end, &hdr, &total))
		goto bad;
	sd = p + hdr;
	sd_end = p + total;
	/* SignedData { version, digestAlgorithms, encapContentInfo, [0] certs, [1] crls, signerInfos } */
	p = sd;
	if (!tlv_span(p, sd_end, &hdr, &ver_len))
		goto bad;
	if (!tlv_span(p + ver_len, sd_end, &hdr, &dig_len))
		goto bad;
	eci = p + ver_len + dig_len;
	if (!tlv_span(eci, sd_end, &hdr, &eci_len))
		goto bad;
	size_t ect_len, ect_hdr;
	if (!tlv_span(eci + hdr, eci + eci_len, &ect_hdr, &ect_len))
		goto bad;
	rest_len = (size_t)(sd_end - (eci + eci_len));

	/*
	 * RFC 5652 5.2 with indefinite lengths (BER, X.690 8.1.3.6), so that the
	 * content is written as it is read: eContent is a constructed OCTET
	 * STRING of chunks (X.690 8.7.3.2).
	 */
	{
		static const unsigned char open_ci[] = { 0x30, 0x80 };
		static const unsigned char open_exp[] = { 0xa0, 0x80 };
		static const unsigned char open_sd[] = { 0x30, 0x80 };
		static const unsigned char open_eci[] = { 0x30, 0x80 };
		static const unsigned char open_ec[] = { 0xa0, 0x80, 0x24, 0x80 };
		if ((rc = write_all(out, open_ci, 2, err)) != 0 ||
		    (rc = write_all(out, oid, oid_len, err)) != 0 ||
		    (rc = write_all(out, open_exp, 2, err)) != 0 ||
		    (rc = write_all(out, open_sd, 2, err)) != 0 ||
		    (rc = write_all(out, sd, ver_len + dig_len, err)) != 0 ||
		    (rc = write_all(out, open_eci, 2, err)) != 0 ||
		    (rc = write_all(out, eci + hdr, ect_len, err)) != 0 ||
		    (rc = write_all(out, open_ec, 4, err)) != 0)
			goto out;
	}
	if ((chunk = malloc(ATTACH_CHUNK + 8)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	while ((got = BIO_read(content, chunk + 8, ATTACH_CHUNK)) > 0) {
		/* 04 83 xx xx xx: one primitive chunk of at most 64 KiB. */
		unsigned char h[5] = { 0x04, 0x83, (unsigned char)(got >> 16),
		    (unsigned char)(got >> 8), (unsigned char)got };
		if ((rc = write_all(out, h, 5, err)) != 0 ||
		    (rc = write_all(out, chunk + 8, (size_t)got, err)) != 0)
			goto out;
	}
	if (got < 0) {
		rc = smime_error_set(err, SMIME_E_IO, "reading the content failed before its end");
		goto out;
	}
	/* end of the OCTET STRING, of [0], of encapContentInfo */
	for (int i = 0; i < 3; i++)
		if ((rc = write_all(out, eoc, 2, err)) != 0)
			goto out;
	if ((rc = write_all(out, eci + eci_len, rest_len, err)) != 0)
		goto out;
	/* end of SignedData, of [0], of ContentInfo */
	for (int i = 0; i < 3; i++)
		if ((rc = write_all(out, eoc, 2, err)) != 0)
			goto out;
out:
	if (chunk != NULL) {
		OPENSSL_cleanse(chunk, ATTACH_CHUNK + 8);
		free(chunk);
	}
	return rc;
bad:
	return smime_error_set(err, SMIME_E_INTERNAL, "cannot re-encode the SignedData");
}

/* Append to out: tag, the definite length of in, and in (X.690 8.1.3). */
int
der_wrap(struct buf *out, unsigned char tag, const struct buf *in, struct smime_error *err)
{
	unsigned char h[10];
	size_t n = 0, len = in->len;
	int rc;

	h[n++] = tag;
	if (len < 0x80) {
		h[n++] = (unsigned char)len;
	} else {
		unsigned char l[8];
		size_t k = 0;
		for (size_t v = len; v > 0; v >>= 8)
			l[k++] = (unsigned char)(v & 0xff);
		h[n++] = (unsigned char)(0x80 | k);
		while (k > 0)
			h[n++] = l[--k];
	}
	if ((rc = buf_add(out, h, n, err)) != 0)
		return rc;
	return buf_add(out, in->data, in->len, err);
}

int
cms_from_der_parts(const unsigned char *type_oid, size_t type_oid_len, const struct buf *body,
    const char *what, CMS_ContentInfo **cms_r, struct smime_error *err)
{
	struct buf seq, ci;
	const unsigned char *p;
	int rc;

	*cms_r = NULL;
	buf_init(&seq, body->max + 16);
	buf_init(&ci, body->max + 128);
	/* RFC 5652 3: ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT SEQUENCE { body } } */
	if ((rc = der_wrap(&seq, 0x30, body, err)) != 0 ||
	    (rc = buf_add(&ci, type_oid, type_oid_len, err)) != 0 ||
	    (rc = der_wrap(&ci, 0xa0, &seq, err)) != 0)
		goto out;
	seq.len = 0;
	if ((rc = der_wrap(&seq, 0x30, &ci, err)) != 0)
		goto out;
	p = seq.data;
	if ((*cms_r = d2i_CMS_ContentInfo(NULL, &p, (long)seq.len)) == NULL)
		rc = smime_error_ssl(err, SMIME_E_INPUT, "%s not valid CMS (RFC 5652)", what);
out:
	buf_free(&seq);
	buf_free(&ci);
	return rc;
}

/*
 * Certificates and PKCS#10 requests read without OpenSSL's key decoders.
 *
 * OpenSSL 3.0 decodes the SubjectPublicKeyInfo of every certificate and
 * request it parses through its provider decoders, and setting those up
 * costs some 200 microseconds of CPU per key, serialised across threads on
 * a lock.  A SCEP server reads two keys per request (the signer's
 * certificate and the PKCS#10), which made the decoders cost more than the
 * private-key operations.  Here the structures are read with our own
 * templates, an RSA key is made straight from its RSAPublicKey, and an X509
 * or X509_REQ is assembled from the fields read.  The assembled object has
 * the same names, serial number, validity, key, extensions and attributes,
 * but is not the encoding received: the callers keep that encoding where it
 * matters (smime/scep.h, SMIME_SCEP_ASSEMBLE).
 *
 * Each function answers NULL when it cannot assemble its input exactly (a
 * key other than rsaEncryption, a key whose encoding is not the one its
 * fields give): the caller then decodes the usual way.
 */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "internal.h"

/* RFC 5280 4.1: SubjectPublicKeyInfo, the key left as its bits. */
typedef struct {
	X509_ALGOR *algorithm;
	ASN1_BIT_STRING *key;
} SPKI_BITS;

ASN1_SEQUENCE(SPKI_BITS) = {
	ASN1_SIMPLE(SPKI_BITS, algorithm, X509_ALGOR),
	ASN1_SIMPLE(SPKI_BITS, key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(SPKI_BITS)

/* RFC 5280 4.1: Validity. */
typedef struct {
	ASN1_TIME *not_before;
	ASN1_TIME *not_after;
} VALIDITY;

ASN1_SEQUENCE(VALIDITY) = {
	ASN1_SIMPLE(VALIDITY, not_before, ASN1_TIME),
	ASN1_SIMPLE(VALIDITY, not_after, ASN1_TIME),
} static_ASN1_SEQUENCE_END(VALIDITY)

/* RFC 5280 4.1: TBSCertificate, the key kept as received (an ANY). */
typedef struct {
	ASN1_INTEGER *version;
	ASN1_INTEGER *serial;
	X509_ALGOR *signature;
	X509_NAME *issuer;
	VALIDITY *validity;
	X509_NAME *subject;
	ASN1_TYPE *spki;
	ASN1_BIT_STRING *issuer_uid;
	ASN1_BIT_STRING *subject_uid;
	STACK_OF(X509_EXTENSION) *extensions;
} TBS_CERT;

ASN1_SEQUENCE(TBS_CERT) = {
	ASN1_EXP_OPT(TBS_CERT, version, ASN1_INTEGER, 0),
	ASN1_SIMPLE(TBS_CERT, serial, ASN1_INTEGER),
	ASN1_SIMPLE(TBS_CERT, signature, X509_ALGOR),
	ASN1_SIMPLE(TBS_CERT, issuer, X509_NAME),
	ASN1_SIMPLE(TBS_CERT, validity, VALIDITY),
	ASN1_SIMPLE(TBS_CERT, subject, X509_NAME),
	ASN1_SIMPLE(TBS_CERT, spki, ASN1_ANY),
	ASN1_IMP_OPT(TBS_CERT, issuer_uid, ASN1_BIT_STRING, 1),
	ASN1_IMP_OPT(TBS_CERT, subject_uid, ASN1_BIT_STRING, 2),
	ASN1_EXP_SEQUENCE_OF_OPT(TBS_CERT, extensions, X509_EXTENSION, 3),
} static_ASN1_SEQUENCE_END(TBS_CERT)

/* RFC 5280 4.1: Certificate. */
typedef struct {
	TBS_CERT *tbs;
	X509_ALGOR *algorithm;
	ASN1_BIT_STRING *signature;
} CERT;

ASN1_SEQUENCE(CERT) = {
	ASN1_SIMPLE(CERT, tbs, TBS_CERT),
	ASN1_SIMPLE(CERT, algorithm, X509_ALGOR),
	ASN1_SIMPLE(CERT, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CERT)

/* RFC 2986 4.1: CertificationRequestInfo, the key kept as received. */
typedef struct {
	ASN1_INTEGER *version;
	X509_NAME *subject;
	ASN1_TYPE *spki;
	STACK_OF(X509_ATTRIBUTE) *attributes;
} REQ_INFO;

ASN1_SEQUENCE(REQ_INFO) = {
	ASN1_SIMPLE(REQ_INFO, version, ASN1_INTEGER),
	ASN1_SIMPLE(REQ_INFO, subject, X509_NAME),
	ASN1_SIMPLE(REQ_INFO, spki, ASN1_ANY),
	ASN1_IMP_SET_OF(REQ_INFO, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END(REQ_INFO)

/* RFC 2986 4.2: CertificationRequest, the info kept as received so that
 * the signature is checked over the very octets that were signed. */
typedef struct {
	ASN1_TYPE *info;
	X509_ALGOR *algorithm;
	ASN1_BIT_STRING *signature;
} REQ;

ASN1_SEQUENCE(REQ) = {
	ASN1_SIMPLE(REQ, info, ASN1_ANY),
	ASN1_SIMPLE(REQ, algorithm, X509_ALGOR),
	ASN1_SIMPLE(REQ, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(REQ)

/* RFC 5652 5.1: SignedData, every field but the certificates as received. */
typedef struct {
	ASN1_INTEGER *version;
	ASN1_TYPE *digest_algorithms;
	ASN1_TYPE *encap_content_info;
	STACK_OF(ASN1_TYPE) *certificates;
	STACK_OF(ASN1_TYPE) *crls;
	ASN1_TYPE *signer_infos;
} SIGNED;

ASN1_SEQUENCE(SIGNED) = {
	ASN1_SIMPLE(SIGNED, version, ASN1_INTEGER),
	ASN1_SIMPLE(SIGNED, digest_algorithms, ASN1_ANY),
	ASN1_SIMPLE(SIGNED, encap_content_info, ASN1_ANY),
	ASN1_IMP_SET_OF_OPT(SIGNED, certificates, ASN1_ANY, 0),
	ASN1_IMP_SET_OF_OPT(SIGNED, crls, ASN1_ANY, 1),
	ASN1_SIMPLE(SIGNED, signer_infos, ASN1_ANY),
} static_ASN1_SEQUENCE_END(SIGNED)

/* RFC 5652 3: ContentInfo of a SignedData. */
typedef struct {
	ASN1_OBJECT *type;
	SIGNED *content;
} SIGNED_INFO;

ASN1_SEQUENCE(SIGNED_INFO) = {
	ASN1_SIMPLE(SIGNED_INFO, type, ASN1_OBJECT),
	ASN1_EXP(SIGNED_INFO, content, SIGNED, 0),
} static_ASN1_SEQUENCE_END(SIGNED_INFO)

/* The octets of an ANY that holds a SEQUENCE, or NULL. */
static const ASN1_STRING *
any_sequence(const ASN1_TYPE *t)
{
	return t != NULL && t->type == V_ASN1_SEQUENCE ? t->value.sequence : NULL;
}

/*
 * The RSA key of the SubjectPublicKeyInfo spki (its whole encoding), made
 * from its RSAPublicKey without a decoder, or NULL when it is no
 * rsaEncryption key with NULL parameters or does not decode.
 */
static EVP_PKEY *
rsa_key(const ASN1_STRING *spki)
{
	SPKI_BITS *s;
	EVP_PKEY *key = NULL;
	const unsigned char *p;
	const ASN1_OBJECT *oid;
	int ptype;

	p = ASN1_STRING_get0_data(spki);
	s = (SPKI_BITS *)ASN1_item_d2i(NULL, &p, ASN1_STRING_length(spki),
	    ASN1_ITEM_rptr(SPKI_BITS));
	if (s == NULL || p != ASN1_STRING_get0_data(spki) + ASN1_STRING_length(spki))
		goto out;
	X509_ALGOR_get0(&oid, &ptype, NULL, s->algorithm);
	/* S/MIME BR 7.1.3.1.1: rsaEncryption with NULL parameters.  Any other
	 * difference from what the key encodes to is caught by same_spki. */
	if (OBJ_obj2nid(oid) != NID_rsaEncryption || ptype != V_ASN1_NULL)
		goto out;
	p = s->key->data;
	key = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, s->key->length);
	if (key != NULL && p != s->key->data + s->key->length) {
		EVP_PKEY_free(key);
		key = NULL;
	}
out:
	ASN1_item_free((ASN1_VALUE *)s, ASN1_ITEM_rptr(SPKI_BITS));
	return key;
}

/* Whether spki_enc is, octet for octet, what the assembled pub encodes to:
 * else the assembly would have changed the key's encoding. */
static bool
same_spki(X509_PUBKEY *pub, const ASN1_STRING *spki_enc)
{
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(pub, &der);
	bool same = len > 0 && len == ASN1_STRING_length(spki_enc) &&
	    memcmp(der, ASN1_STRING_get0_data(spki_enc), (size_t)len) == 0;

	OPENSSL_free(der);
	return same;
}

X509 *
assemble_cert(const unsigned char *der, size_t len)
{
	CERT *c;
	TBS_CERT *t;
	X509 *x = NULL;
	EVP_PKEY *key = NULL;
	const ASN1_STRING *spki;
	const ASN1_BIT_STRING *sig;
	const X509_ALGOR *alg;
	const unsigned char *p = der;
	long version = 0;
	bool ok = false;

	if (len > LONG_MAX)
		return NULL;
	ERR_set_mark();
	c = (CERT *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(CERT));
	if (c == NULL || p != der + len)
		goto out;
	t = c->tbs;
	/* Unique identifiers are not carried over (S/MIME BR 7.1: "MUST NOT
	 * be present"); such a certificate is decoded the usual way. */
	if (t->issuer_uid != NULL || t->subject_uid != NULL)
		goto out;
	if (t->version != NULL && ((version = ASN1_INTEGER_get(t->version)) < 0 || version > 2))
		goto out;
	if ((spki = any_sequence(t->spki)) == NULL || (key = rsa_key(spki)) == NULL)
		goto out;
	if ((x = X509_new()) == NULL || !X509_set_version(x, version) ||
	    !X509_set_serialNumber(x, t->serial) || !X509_set_issuer_name(x, t->issuer) ||
	    !X509_set1_notBefore(x, t->validity->not_before) ||
	    !X509_set1_notAfter(x, t->validity->not_after) ||
	    !X509_set_subject_name(x, t->subject) || !X509_set_pubkey(x, key) ||
	    !same_spki(X509_get_X509_PUBKEY(x), spki))
		goto out;
	for (int i = 0; i < sk_X509_EXTENSION_num(t->extensions); i++)
		if (!X509_add_ext(x, sk_X509_EXTENSION_value(t->extensions, i), -1))
			goto out;
	/* The signature and its algorithms, so that the certificate encodes
	 * (and caches its extensions) as a decoded one does.  OpenSSL hands
	 * these members of x out as const only; they are filled in place. */
	X509_get0_signature(&sig, &alg, x);
	if (!X509_ALGOR_copy((X509_ALGOR *)X509_get0_tbs_sigalg(x), t->signature) ||
	    !X509_ALGOR_copy((X509_ALGOR *)alg, c->algorithm) ||
	    !ASN1_STRING_copy((ASN1_BIT_STRING *)sig, c->signature))
		goto out;
	ok = true;
out:
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	EVP_PKEY_free(key);
	ASN1_item_free((ASN1_VALUE *)c, ASN1_ITEM_rptr(CERT));
	ERR_pop_to_mark();
	return x;
}

X509_REQ *
assemble_req(const unsigned char *der, size_t len)
{
	REQ *r;
	REQ_INFO *info = NULL;
	X509_REQ *req = NULL;
	EVP_PKEY *key = NULL;
	ASN1_BIT_STRING *sig = NULL;
	const ASN1_STRING *enc, *spki;
	const unsigned char *p = der;
	long version;
	bool ok = false;

	if (len > LONG_MAX)
		return NULL;
	ERR_set_mark();
	r = (REQ *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(REQ));
	if (r == NULL || p != der + len || (enc = any_sequence(r->info)) == NULL)
		goto out;
	p = ASN1_STRING_get0_data(enc);
	info = (REQ_INFO *)ASN1_item_d2i(NULL, &p, ASN1_STRING_length(enc),
	    ASN1_ITEM_rptr(REQ_INFO));
	if (info == NULL || p != ASN1_STRING_get0_data(enc) + ASN1_STRING_length(enc))
		goto out;
	if ((version = ASN1_INTEGER_get(info->version)) < 0)
		goto out;
	if ((spki = any_sequence(info->spki)) == NULL || (key = rsa_key(spki)) == NULL)
		goto out;
	if ((req = X509_REQ_new()) == NULL || !X509_REQ_set_version(req, version) ||
	    !X509_REQ_set_subject_name(req, info->subject) || !X509_REQ_set_pubkey(req, key) ||
	    !same_spki(X509_REQ_get_X509_PUBKEY(req), spki))
		goto out;
	for (int i = 0; i < sk_X509_ATTRIBUTE_num(info->attributes); i++)
		if (!X509_REQ_add1_attr(req, sk_X509_ATTRIBUTE_value(info->attributes, i)))
			goto out;
	if ((sig = ASN1_STRING_dup(r->signature)) == NULL ||
	    !X509_REQ_set1_signature_algo(req, r->algorithm))
		goto out;
	X509_REQ_set0_signature(req, sig);
	sig = NULL;
	ok = true;
out:
	if (!ok) {
		X509_REQ_free(req);
		req = NULL;
	}
	ASN1_BIT_STRING_free(sig);
	EVP_PKEY_free(key);
	ASN1_item_free((ASN1_VALUE *)info, ASN1_ITEM_rptr(REQ_INFO));
	ASN1_item_free((ASN1_VALUE *)r, ASN1_ITEM_rptr(REQ));
	ERR_pop_to_mark();
	return req;
}

bool
req_verify(const unsigned char *der, size_t len, EVP_PKEY *key)
{
	REQ *r;
	const unsigned char *p = der;
	bool ok;

	if (len > LONG_MAX || key == NULL)
		return false;
	ERR_set_mark();
	r = (REQ *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(REQ));
	/* RFC 2986 3: the signature over the CertificationRequestInfo as it
	 * was received (a decoded or assembled request may encode it anew). */
	ok = r != NULL && p == der + len && any_sequence(r->info) != NULL &&
	    ASN1_item_verify(ASN1_ITEM_rptr(ASN1_ANY), r->algorithm, r->signature, r->info,
	    key) == 1;
	ASN1_item_free((ASN1_VALUE *)r, ASN1_ITEM_rptr(REQ));
	ERR_pop_to_mark();
	return ok;
}

void
signed_split_free(struct signed_split *s)
{
	if (s == NULL)
		return;
	OPENSSL_free(s->rest);
	ASN1_item_free((ASN1_VALUE *)s->info, ASN1_ITEM_rptr(SIGNED_INFO));
	memset(s, 0, sizeof(*s));
}

int
signed_split(const unsigned char *der, size_t len, struct signed_split *s)
{
	SIGNED_INFO *ci;
	STACK_OF(ASN1_TYPE) *certs;
	const unsigned char *p = der;
	unsigned char *rest = NULL;
	int n, rc = -1;

	memset(s, 0, sizeof(*s));
	if (len > LONG_MAX)
		return -1;
	ERR_set_mark();
	ci = (SIGNED_INFO *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(SIGNED_INFO));
	if (ci == NULL || p != der + len || OBJ_obj2nid(ci->type) != NID_pkcs7_signed)
		goto out;
	certs = ci->content->certificates;
	if (sk_ASN1_TYPE_num(certs) > SIGNED_SPLIT_MAX_CERTS) {
		rc = -2;
		goto out;
	}
	/* RFC 5652 10.2.2: CertificateChoices.  Only a Certificate (a
	 * SEQUENCE) is split off; any other choice leaves the whole to the
	 * CMS decoder. */
	for (int i = 0; i < sk_ASN1_TYPE_num(certs); i++)
		if (any_sequence(sk_ASN1_TYPE_value(certs, i)) == NULL)
			goto out;
	/* The ContentInfo again without its certificates. */
	ci->content->certificates = NULL;
	n = ASN1_item_i2d((ASN1_VALUE *)ci, &rest, ASN1_ITEM_rptr(SIGNED_INFO));
	ci->content->certificates = certs;
	if (n <= 0)
		goto out;
	s->info = ci;
	ci = NULL;
	s->rest = rest;
	s->rest_len = (size_t)n;
	for (int i = 0; i < sk_ASN1_TYPE_num(certs); i++) {
		const ASN1_STRING *c = any_sequence(sk_ASN1_TYPE_value(certs, i));

		s->cert[i] = ASN1_STRING_get0_data(c);
		s->cert_len[i] = (size_t)ASN1_STRING_length(c);
	}
	s->n_certs = sk_ASN1_TYPE_num(certs);
	rc = 0;
out:
	ASN1_item_free((ASN1_VALUE *)ci, ASN1_ITEM_rptr(SIGNED_INFO));
	ERR_pop_to_mark();
	return rc;
}

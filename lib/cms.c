/* Small CMS helpers: cipher names and SMIMECapabilities (RFC 8551 2.5.2). */
#include <limits.h>
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

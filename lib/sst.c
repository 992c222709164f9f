/*
 * sst: the Microsoft serialized certificate store ("SST",
 * CERT_STORE_SAVE_AS_STORE), as written by Export-Certificate -Type SST and
 * certutil -generateSSTFromWU.  See include/smime/cert.h.
 *
 * Sources, quoted below as [MS-OSHARED]:
 *   [MS-OSHARED] 2.3.9.1 DocSigSerializedCertStore,
 *   2.3.2.5.1 SerializedCertificateEntry, 2.3.2.5.2 EndElementMarkerEntry,
 *   2.3.2.5.3 SerializedPropertyEntry, 2.3.2.5.4 CertStoreCertificateGroup.
 *
 * Layout, all integers little-endian and unaligned:
 *
 *   version (4) = 0, fileType (4) = 'C' 'E' 'R' 'T'
 *   elements: id (4), encodingType (4) = 1, length (4), value (length)
 *   end marker: id 0, encodingType 0, length 0
 *
 * A context group is zero or more property elements followed by exactly one
 * context element (0x20 certificate, 0x21 CRL, 0x22 CTL).
 */
#include <stdint.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <smime/smime.h>

#define SST_HEADER_LEN		8
#define SST_ELEMENT_HEADER_LEN	12
#define SST_ENCODING_X509_ASN	0x00000001u
#define SST_ID_END		0x00u
#define SST_ID_SHA1_HASH	0x03u	/* CERT_SHA1_HASH_PROP_ID */
#define SST_ID_FRIENDLY_NAME	0x0bu	/* CERT_FRIENDLY_NAME_PROP_ID */
#define SST_ID_CERT		0x20u	/* CERT_CERT_PROP_ID */
#define SST_ID_CRL		0x21u	/* CERT_CRL_PROP_ID */
#define SST_ID_CTL		0x22u	/* CERT_CTL_PROP_ID */
#define SST_MAX_PROP_ID		0xffffu

/* Limits beyond those of cert.h: properties in one group, bytes of a name. */
#define SST_MAX_GROUP_PROPS	256
#define SST_MAX_FRIENDLY_NAME	1024

static const unsigned char sst_magic[SST_HEADER_LEN] = {
	0x00, 0x00, 0x00, 0x00, 'C', 'E', 'R', 'T'
};

/* A read position that never passes its end. */
struct sst_cursor {
	const unsigned char *p;
	size_t left;
	size_t off;	/* from the start of the file, for messages */
};

static bool
sst_take(struct sst_cursor *c, size_t n, const unsigned char **p_r)
{
	if (n > c->left)
		return false;
	*p_r = c->p;
	c->p += n;
	c->left -= n;
	c->off += n;
	return true;
}

static bool
sst_take_le32(struct sst_cursor *c, uint32_t *v_r)
{
	const unsigned char *p;

	if (!sst_take(c, 4, &p))
		return false;
	*v_r = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
	return true;
}

bool
smime_sst_detect(const unsigned char *data, size_t len)
{
	return data != NULL && len >= SST_HEADER_LEN &&
	    memcmp(data, sst_magic, SST_HEADER_LEN) == 0;
}

/*
 * Set the certificate's alias from a CERT_FRIENDLY_NAME_PROP_ID value
 * (UTF-16LE, NUL-terminated).  A name that is not well formed is ignored:
 * it is a label, not something the file's validity depends on.
 */
static void
sst_set_friendly_name(X509 *cert, const unsigned char *v, size_t n)
{
	unsigned char be[SST_MAX_FRIENDLY_NAME];
	ASN1_STRING *utf8 = NULL;
	size_t i;

	if (n < 2 || n % 2 != 0 || n > sizeof(be))
		return;
	/* Drop the terminating NUL and any padding NULs. */
	while (n >= 2 && v[n - 2] == 0 && v[n - 1] == 0)
		n -= 2;
	if (n == 0)
		return;
	for (i = 0; i < n; i += 2) {
		be[i] = v[i + 1];
		be[i + 1] = v[i];
	}
	if (ASN1_mbstring_copy(&utf8, be, (int)n, MBSTRING_BMP,
	    B_ASN1_UTF8STRING) > 0 && utf8 != NULL)
		X509_alias_set1(cert, ASN1_STRING_get0_data(utf8),
		    ASN1_STRING_length(utf8));
	ASN1_STRING_free(utf8);
	ERR_clear_error();
}

int
smime_sst_read(const unsigned char *data, size_t len, STACK_OF(X509) *certs,
    struct smime_error *err)
{
	struct sst_cursor c = { .p = data, .left = len, .off = 0 };
	STACK_OF(X509) *found = NULL;
	const unsigned char *p, *name = NULL;
	uint32_t id, enc, vlen;
	size_t element = 0, props = 0, name_len = 0;
	X509 *cert = NULL;
	int rc;

	if (data == NULL || certs == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "SST: no data or no stack");
	if (len > SMIME_CERT_MAX_INPUT)
		return smime_error_set(err, SMIME_E_INPUT,
		    "SST: %zu bytes exceed the limit of %u", len, SMIME_CERT_MAX_INPUT);
	if ((found = sk_X509_new_null()) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "SST: out of memory");

	/* [MS-OSHARED] 2.3.9.1: "version (4 bytes): MUST be 0x00000000",
	 * "fileType (4 bytes): MUST be 0x54524543" ("CERT"). */
	if (!sst_take(&c, SST_HEADER_LEN, &p) ||
	    memcmp(p, sst_magic, SST_HEADER_LEN) != 0) {
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "SST: header is not version 0 and fileType 'CERT'");
		goto out;
	}

	for (;; element++) {
		if (c.left < SST_ELEMENT_HEADER_LEN) {
			rc = smime_error_set(err, SMIME_E_INPUT,
			    "SST: element %zu at offset %zu: %zu bytes left, an element "
			    "header or the end marker needs %d", element, c.off, c.left,
			    SST_ELEMENT_HEADER_LEN);
			goto out;
		}
		if (!sst_take_le32(&c, &id) || !sst_take_le32(&c, &enc) ||
		    !sst_take_le32(&c, &vlen)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "SST: cursor bug");
			goto out;
		}

		/* [MS-OSHARED] 2.3.2.5.2: EndElementMarkerEntry, "id ... MUST be
		 * 0x00000000", "marker (8 bytes): MUST be 0x0000000000000000". */
		if (id == SST_ID_END) {
			if (enc != 0 || vlen != 0) {
				rc = smime_error_set(err, SMIME_E_INPUT,
				    "SST: element %zu: end marker is not followed by 8 zero "
				    "bytes", element);
				goto out;
			}
			break;
		}

		/* [MS-OSHARED] 2.3.2.5.1 and 2.3.2.5.3: "encodingType (4 bytes):
		 * MUST be 0x00000001" (X509_ASN_ENCODING). */
		if (enc != SST_ENCODING_X509_ASN) {
			rc = smime_error_set(err, SMIME_E_INPUT,
			    "SST: element %zu: encodingType 0x%08x is not "
			    "X509_ASN_ENCODING (1)", element, (unsigned)enc);
			goto out;
		}
		if (vlen > c.left) {
			rc = smime_error_set(err, SMIME_E_INPUT,
			    "SST: element %zu: length %u exceeds the remaining %zu bytes",
			    element, (unsigned)vlen, c.left);
			goto out;
		}
		if (!sst_take(&c, vlen, &p)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "SST: cursor bug");
			goto out;
		}

		switch (id) {
		case SST_ID_CERT: {
			const unsigned char *q = p;

			if ((size_t)sk_X509_num(found) >= SMIME_CERT_MAX_ITEMS) {
				rc = smime_error_set(err, SMIME_E_INPUT,
				    "SST: more than %d certificates", SMIME_CERT_MAX_ITEMS);
				goto out;
			}
			/* [MS-OSHARED] 2.3.2.5.1: "certificate (variable): ... MUST
			 * be a DER-encoded X.509 certificate". */
			cert = d2i_X509(NULL, &q, (long)vlen);
			if (cert == NULL) {
				rc = smime_error_ssl(err, SMIME_E_INPUT,
				    "SST: element %zu: certificate %d is not an X.509 "
				    "certificate", element, sk_X509_num(found) + 1);
				goto out;
			}
			if (q != p + vlen) {
				rc = smime_error_set(err, SMIME_E_INPUT,
				    "SST: element %zu: certificate %d is followed by %zu "
				    "bytes inside its element", element,
				    sk_X509_num(found) + 1, (size_t)(p + vlen - q));
				goto out;
			}
			if (name != NULL)
				sst_set_friendly_name(cert, name, name_len);
			if (!sk_X509_push(found, cert)) {
				rc = smime_error_set(err, SMIME_E_INTERNAL,
				    "SST: out of memory");
				goto out;
			}
			cert = NULL;
			props = 0;
			name = NULL;
			break;
		}
		case SST_ID_CRL:
		case SST_ID_CTL:
			/* [MS-OSHARED] 2.3.2.5.4: a group ends with its context;
			 * CRLs and CTLs are not certificates: skipped. */
			props = 0;
			name = NULL;
			break;
		default:
			/* [MS-OSHARED] 2.3.2.5.3: "id (4 bytes): ... MUST be less
			 * than or equal to 0x0000FFFF". */
			if (id > SST_MAX_PROP_ID) {
				rc = smime_error_set(err, SMIME_E_INPUT,
				    "SST: element %zu: property id 0x%08x exceeds 0xFFFF",
				    element, (unsigned)id);
				goto out;
			}
			if (++props > SST_MAX_GROUP_PROPS) {
				rc = smime_error_set(err, SMIME_E_INPUT,
				    "SST: element %zu: more than %d properties before one "
				    "certificate", element, SST_MAX_GROUP_PROPS);
				goto out;
			}
			/* Unknown and empty properties are skipped; only the
			 * friendly name is kept, as the certificate's alias. */
			if (id == SST_ID_FRIENDLY_NAME) {
				name = p;
				name_len = vlen;
			}
			break;
		}
	}

	/* [MS-OSHARED] 2.3.2.5.4: properties belong to the context that
	 * follows them; the end marker may not cut a group in two. */
	if (props != 0) {
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "SST: element %zu: %zu properties are not followed by a certificate",
		    element, props);
		goto out;
	}
	if (c.left != 0) {
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "SST: %zu bytes after the end marker", c.left);
		goto out;
	}

	while (sk_X509_num(found) > 0) {
		X509 *x = sk_X509_shift(found);

		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			rc = smime_error_set(err, SMIME_E_INTERNAL, "SST: out of memory");
			goto out;
		}
	}
	rc = SMIME_OK;
out:
	X509_free(cert);
	sk_X509_pop_free(found, X509_free);
	return rc;
}

static int
sst_put_element(BIO *out, uint32_t id, const unsigned char *v, size_t n,
    struct smime_error *err)
{
	unsigned char h[SST_ELEMENT_HEADER_LEN];
	uint32_t f[3] = { id, SST_ENCODING_X509_ASN, (uint32_t)n };
	size_t i;

	if (n > UINT32_MAX)
		return smime_error_set(err, SMIME_E_USAGE, "SST: element too long");
	for (i = 0; i < 3; i++) {
		h[4 * i] = f[i] & 0xff;
		h[4 * i + 1] = (f[i] >> 8) & 0xff;
		h[4 * i + 2] = (f[i] >> 16) & 0xff;
		h[4 * i + 3] = (f[i] >> 24) & 0xff;
	}
	if (BIO_write(out, h, sizeof(h)) != (int)sizeof(h) ||
	    (n > 0 && BIO_write(out, v, (int)n) != (int)n))
		return smime_error_set(err, SMIME_E_IO, "SST: write failed");
	return SMIME_OK;
}

/* UTF-16LE with its terminating NUL, as Windows stores a friendly name. */
static int
sst_put_friendly_name(BIO *out, const unsigned char *alias, int alias_len,
    struct smime_error *err)
{
	ASN1_STRING *bmp = NULL;
	unsigned char le[SST_MAX_FRIENDLY_NAME + 2];
	const unsigned char *be;
	int i, n, rc;

	if (ASN1_mbstring_copy(&bmp, alias, alias_len, MBSTRING_UTF8,
	    B_ASN1_BMPSTRING) <= 0 || bmp == NULL) {
		/* A name that is not UTF-8 is left out, not fatal. */
		ERR_clear_error();
		return SMIME_OK;
	}
	be = ASN1_STRING_get0_data(bmp);
	n = ASN1_STRING_length(bmp);
	if (n < 0 || n > SST_MAX_FRIENDLY_NAME) {
		ASN1_STRING_free(bmp);
		return SMIME_OK;
	}
	for (i = 0; i + 1 < n; i += 2) {
		le[i] = be[i + 1];
		le[i + 1] = be[i];
	}
	le[n] = 0;
	le[n + 1] = 0;
	rc = sst_put_element(out, SST_ID_FRIENDLY_NAME, le, (size_t)n + 2, err);
	ASN1_STRING_free(bmp);
	return rc;
}

int
smime_sst_write(BIO *out, STACK_OF(X509) *certs, struct smime_error *err)
{
	static const unsigned char end[SST_ELEMENT_HEADER_LEN];
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	const unsigned char *alias;
	int i, n, alias_len, rc;

	if (out == NULL || certs == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "SST: no output or no stack");
	if (sk_X509_num(certs) > SMIME_CERT_MAX_ITEMS)
		return smime_error_set(err, SMIME_E_USAGE,
		    "SST: more than %d certificates", SMIME_CERT_MAX_ITEMS);
	if (BIO_write(out, sst_magic, SST_HEADER_LEN) != SST_HEADER_LEN)
		return smime_error_set(err, SMIME_E_IO, "SST: write failed");

	/* Each group as certutil writes it: properties first (SHA-1 hash,
	 * then the friendly name when there is one), then the certificate. */
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		if ((n = i2d_X509(x, &der)) <= 0) {
			rc = smime_error_ssl(err, SMIME_E_USAGE,
			    "SST: certificate %d cannot be encoded", i + 1);
			goto out;
		}
		if (!X509_digest(x, EVP_sha1(), md, &mdlen)) {
			rc = smime_error_ssl(err, SMIME_E_INTERNAL,
			    "SST: certificate %d: SHA-1 failed", i + 1);
			goto out;
		}
		if ((rc = sst_put_element(out, SST_ID_SHA1_HASH, md, mdlen, err)) != 0)
			goto out;
		alias = X509_alias_get0(x, &alias_len);
		if (alias != NULL && alias_len > 0 &&
		    (rc = sst_put_friendly_name(out, alias, alias_len, err)) != 0)
			goto out;
		if ((rc = sst_put_element(out, SST_ID_CERT, der, (size_t)n, err)) != 0)
			goto out;
		OPENSSL_free(der);
		der = NULL;
	}
	/* Wine and Windows end the store with 12 zero bytes. */
	if (BIO_write(out, end, sizeof(end)) != (int)sizeof(end)) {
		rc = smime_error_set(err, SMIME_E_IO, "SST: write failed");
		goto out;
	}
	rc = SMIME_OK;
out:
	OPENSSL_free(der);
	return rc;
}

/*
 * bag: reading certificates and private keys from whatever container they
 * arrive in (PEM, DER, PKCS#7 certs-only, SST, PKCS#12) into one bag.  See
 * include/smime/cert.h.
 *
 * The container is told from the content, never from a file name: the SST
 * magic, then the first DER elements, then PEM armour.  Mail messages are
 * refused with a message that lets the caller route them to the message
 * module.
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include <smime/smime.h>

/* Internal to libsmime, defined in pkcs12.c (to move to lib/internal.h). */
int pkcs12_check_pbe(const char *what, const X509_ALGOR *alg, struct smime_error *err);
bool pkcs12_load_providers(void);

/* How far a mail-message sniff looks: header lines and bytes. */
#define BAG_MAIL_SNIFF_LINES	64
#define BAG_MAIL_SNIFF_BYTES	8192
/* Longest header field name that the sniff accepts. */
#define BAG_MAIL_MAX_NAME	76

struct smime_bag *
smime_bag_new(void)
{
	struct smime_bag *bag;

	if ((bag = OPENSSL_zalloc(sizeof(*bag))) == NULL)
		return NULL;
	if ((bag->certs = sk_X509_new_null()) == NULL) {
		OPENSSL_free(bag);
		return NULL;
	}
	bag->format = SMIME_FORMAT_UNKNOWN;
	return bag;
}

void
smime_bag_free(struct smime_bag *bag)
{
	size_t i;

	if (bag == NULL)
		return;
	sk_X509_pop_free(bag->certs, X509_free);
	/* EVP_PKEY_free clears the key material of OpenSSL's key types. */
	for (i = 0; i < bag->n_keys; i++)
		EVP_PKEY_free(bag->keys[i]);
	OPENSSL_free(bag->keys);
	OPENSSL_free(bag->key_cert);
	OPENSSL_free(bag);
}

/* Append key (owned by the bag from now on, even on failure), untied. */
static int
bag_add_key(struct smime_bag *bag, EVP_PKEY *key, struct smime_error *err)
{
	EVP_PKEY **keys;
	int *key_cert;
	size_t n = bag->n_keys + 1;
	int rc;

	if ((keys = OPENSSL_realloc(bag->keys, n * sizeof(*keys))) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	bag->keys = keys;
	if ((key_cert = OPENSSL_realloc(bag->key_cert, n * sizeof(*key_cert))) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	bag->key_cert = key_cert;
	bag->keys[bag->n_keys] = key;
	bag->key_cert[bag->n_keys] = -1;
	bag->n_keys = n;
	key = NULL;
	rc = SMIME_OK;
out:
	EVP_PKEY_free(key);
	return rc;
}

/* Append cert (owned by the bag from now on, even on failure). */
static int
bag_add_cert(struct smime_bag *bag, X509 *cert, struct smime_error *err)
{
	if (!sk_X509_push(bag->certs, cert)) {
		X509_free(cert);
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	return SMIME_OK;
}

/* Tie every untied key to the first certificate with its public key. */
static void
bag_tie_keys(struct smime_bag *bag)
{
	size_t k;
	int i;

	for (k = 0; k < bag->n_keys; k++) {
		if (bag->key_cert[k] >= 0)
			continue;
		for (i = 0; i < sk_X509_num(bag->certs); i++) {
			EVP_PKEY *pub = X509_get0_pubkey(sk_X509_value(bag->certs, i));

			if (pub != NULL && EVP_PKEY_eq(pub, bag->keys[k]) == 1) {
				bag->key_cert[k] = i;
				break;
			}
		}
	}
	ERR_clear_error();
}

/* Drop what a failed load appended, so that the bag is as before. */
static void
bag_rollback(struct smime_bag *bag, int n_certs, size_t n_keys)
{
	while (sk_X509_num(bag->certs) > n_certs)
		X509_free(sk_X509_pop(bag->certs));
	while (bag->n_keys > n_keys) {
		bag->n_keys--;
		EVP_PKEY_free(bag->keys[bag->n_keys]);
		bag->keys[bag->n_keys] = NULL;
	}
}

static size_t
bag_items(const struct smime_bag *bag)
{
	return (size_t)sk_X509_num(bag->certs) + bag->n_keys;
}

/* True when p[n] holds nothing but white space and NUL padding. */
static bool
bag_only_space(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n' &&
		    p[i] != '\0')
			return false;
	return true;
}

/*
 * Does data start like an RFC 5322 message: an mbox "From " line, or a
 * run of header fields (RFC 5322 2.2: "field-name ':' ..." with field-name
 * of printable ASCII other than ':') among which are mail headers?
 */
static bool
bag_looks_like_mail(const unsigned char *d, size_t len)
{
	static const char *const known[] = {
		"from", "to", "cc", "subject", "date", "message-id", "mime-version",
		"content-type", "received", "return-path", "delivered-to", "sender",
		"reply-to",
	};
	size_t pos = 0, lines = 0, fields = 0, i, name;
	bool mail = false;

	if (len > BAG_MAIL_SNIFF_BYTES)
		len = BAG_MAIL_SNIFF_BYTES;
	if (len >= 5 && memcmp(d, "From ", 5) == 0)
		return true;
	while (pos < len && lines++ < BAG_MAIL_SNIFF_LINES) {
		if (d[pos] == '\r' || d[pos] == '\n')
			break; /* end of the header */
		if (d[pos] == ' ' || d[pos] == '\t') {
			if (fields == 0)
				return false; /* continuation of nothing */
		} else {
			for (name = 0; pos + name < len && name <= BAG_MAIL_MAX_NAME; name++)
				if (d[pos + name] == ':' || d[pos + name] < 33 ||
				    d[pos + name] > 126)
					break;
			if (name == 0 || pos + name >= len || d[pos + name] != ':')
				return false;
			fields++;
			for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
				if (strlen(known[i]) == name &&
				    strncasecmp((const char *)d + pos, known[i], name) == 0)
					mail = true;
		}
		while (pos < len && d[pos] != '\n')
			pos++;
		pos++;
	}
	return mail;
}

bool
smime_looks_like_mail(const unsigned char *data, size_t len)
{
	return data != NULL && bag_looks_like_mail(data, len);
}

/* The certificates of a PKCS#7 SignedData (certs-only or not). */
static int
bag_add_pkcs7(struct smime_bag *bag, PKCS7 *p7, const char *where, size_t base,
    struct smime_error *err)
{
	STACK_OF(X509) *certs;
	int i, rc;

	/* RFC 2315 9.1 / RFC 5652 5.1: certificates [0] IMPLICIT
	 * CertificateSet OPTIONAL, in SignedData only. */
	if (!PKCS7_type_is_signed(p7))
		return smime_error_set(err, SMIME_E_INPUT,
		    "%s: PKCS#7 content type %s holds no certificates", where,
		    OBJ_nid2sn(OBJ_obj2nid(p7->type)));
	if (p7->d.sign == NULL)
		return smime_error_set(err, SMIME_E_INPUT,
		    "%s: PKCS#7 SignedData content is missing", where);
	certs = p7->d.sign->cert;
	if (certs == NULL || sk_X509_num(certs) == 0)
		return smime_error_set(err, SMIME_E_INPUT,
		    "%s: PKCS#7 SignedData holds no certificates", where);
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		if (bag_items(bag) - base >= SMIME_CERT_MAX_ITEMS)
			return smime_error_set(err, SMIME_E_INPUT,
			    "%s: more than %d certificates", where, SMIME_CERT_MAX_ITEMS);
		if (!X509_up_ref(x))
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		if ((rc = bag_add_cert(bag, x, err)) != 0)
			return rc;
	}
	return SMIME_OK;
}

/* Copies the password for PEM_do_header; u is the password or NULL. */
static int
bag_pem_password(char *buf, int size, int rwflag, void *u)
{
	const char *pw = u == NULL ? "" : u;
	size_t n = strlen(pw);

	(void)rwflag;
	if (size < 0 || n > (size_t)size)
		return -1;
	memcpy(buf, pw, n);
	return (int)n;
}

/*
 * One private key PEM block.  data holds the (possibly encrypted) DER;
 * it is decrypted in place, and the caller cleanses it.
 */
static int
bag_pem_key(struct smime_bag *bag, const char *name, const char *header,
    unsigned char *data, long len, const char *password, int block,
    struct smime_error *err)
{
	EVP_CIPHER_INFO cipher;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	X509_SIG *sig = NULL;
	const X509_ALGOR *alg;
	const unsigned char *p = data;
	EVP_PKEY *key = NULL;
	char what[64];
	int type, rc;

	snprintf(what, sizeof(what), "PEM block %d (%s)", block,
	    name != NULL ? name : "?");
	if (strcmp(name, PEM_STRING_PKCS8) == 0) {
		/* RFC 5958 3: EncryptedPrivateKeyInfo */
		if ((sig = d2i_X509_SIG(NULL, &p, len)) == NULL || p != data + len) {
			rc = smime_error_ssl(err, SMIME_E_INPUT,
			    "%s: not an EncryptedPrivateKeyInfo", what);
			goto out;
		}
		X509_SIG_get0(sig, &alg, NULL);
		if ((rc = pkcs12_check_pbe(what, alg, err)) != 0)
			goto out;
		if (!pkcs12_load_providers()) {
			rc = smime_error_set(err, SMIME_E_INTERNAL,
			    "%s: cannot load the OpenSSL providers", what);
			goto out;
		}
		p8 = PKCS8_decrypt_ex(sig, password == NULL ? "" : password, -1,
		    NULL, NULL);
		if (p8 == NULL) {
			rc = smime_error_ssl(err, SMIME_E_CRYPTO,
			    "%s: wrong or missing password", what);
			goto out;
		}
		key = EVP_PKCS82PKEY(p8);
	} else if (strcmp(name, PEM_STRING_PKCS8INF) == 0) {
		/* RFC 5958 2: OneAsymmetricKey (PrivateKeyInfo) */
		if ((p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, len)) == NULL ||
		    p != data + len) {
			rc = smime_error_ssl(err, SMIME_E_INPUT,
			    "%s: not a PrivateKeyInfo", what);
			goto out;
		}
		key = EVP_PKCS82PKEY(p8);
	} else {
		/* RFC 1421 4.6.1.1 "Proc-Type: 4,ENCRYPTED" and DEK-Info:
		 * the traditional OpenSSL key encryption. */
		if (!PEM_get_EVP_CIPHER_INFO((char *)header, &cipher)) {
			rc = smime_error_ssl(err, SMIME_E_INPUT,
			    "%s: unreadable Proc-Type or DEK-Info header", what);
			goto out;
		}
		if (cipher.cipher != NULL && !pkcs12_load_providers()) {
			rc = smime_error_set(err, SMIME_E_INTERNAL,
			    "%s: cannot load the OpenSSL providers", what);
			goto out;
		}
		if (!PEM_do_header(&cipher, data, &len, bag_pem_password,
		    (void *)password)) {
			rc = smime_error_ssl(err, SMIME_E_CRYPTO,
			    "%s: wrong or missing password", what);
			goto out;
		}
		if (strcmp(name, PEM_STRING_RSA) == 0)
			type = EVP_PKEY_RSA;
		else if (strcmp(name, PEM_STRING_ECPRIVATEKEY) == 0)
			type = EVP_PKEY_EC;
		else
			type = EVP_PKEY_DSA;
		key = d2i_PrivateKey(type, NULL, &p, len);
		if (key != NULL && p != data + len) {
			EVP_PKEY_free(key);
			key = NULL;
		}
	}
	if (key == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INPUT,
		    "%s: not a usable private key", what);
		goto out;
	}
	rc = bag_add_key(bag, key, err);
	key = NULL;
out:
	EVP_PKEY_free(key);
	PKCS8_PRIV_KEY_INFO_free(p8);
	X509_SIG_free(sig);
	return rc;
}

static bool
bag_pem_is_key(const char *name)
{
	return strcmp(name, PEM_STRING_PKCS8INF) == 0 ||
	    strcmp(name, PEM_STRING_PKCS8) == 0 ||
	    strcmp(name, PEM_STRING_RSA) == 0 ||
	    strcmp(name, PEM_STRING_ECPRIVATEKEY) == 0 ||
	    strcmp(name, PEM_STRING_DSA) == 0;
}

/* One PEM block; blocks of other kinds (CRLs, parameters) are skipped. */
static int
bag_pem_block(struct smime_bag *bag, const char *name, const char *header,
    unsigned char *data, long len, const char *password, int block,
    size_t base, bool *used_r, struct smime_error *err)
{
	const unsigned char *p = data;
	char where[64];
	PKCS7 *p7;
	X509 *x;
	int rc;

	*used_r = true;
	snprintf(where, sizeof(where), "PEM block %d (%s)", block,
	    name != NULL ? name : "?");
	if (strcmp(name, PEM_STRING_X509) == 0 ||
	    strcmp(name, PEM_STRING_X509_OLD) == 0) {
		if ((x = d2i_X509(NULL, &p, len)) == NULL || p != data + len) {
			X509_free(x);
			return smime_error_ssl(err, SMIME_E_INPUT,
			    "%s: not an X.509 certificate", where);
		}
		return bag_add_cert(bag, x, err);
	}
	if (strcmp(name, PEM_STRING_X509_TRUSTED) == 0) {
		/* OpenSSL's X509_AUX: the certificate followed by trust
		 * settings, which are OpenSSL's local policy, not ours. */
		if ((x = d2i_X509_AUX(NULL, &p, len)) == NULL || p != data + len) {
			X509_free(x);
			return smime_error_ssl(err, SMIME_E_INPUT,
			    "%s: not an X.509 certificate with trust settings", where);
		}
		X509_trust_clear(x);
		X509_reject_clear(x);
		X509_keyid_set1(x, NULL, 0);
		return bag_add_cert(bag, x, err);
	}
	if (strcmp(name, PEM_STRING_PKCS7) == 0 ||
	    strcmp(name, PEM_STRING_PKCS7_SIGNED) == 0) {
		if ((p7 = d2i_PKCS7(NULL, &p, len)) == NULL || p != data + len) {
			PKCS7_free(p7);
			return smime_error_ssl(err, SMIME_E_INPUT,
			    "%s: not a PKCS#7 ContentInfo", where);
		}
		rc = bag_add_pkcs7(bag, p7, where, base, err);
		PKCS7_free(p7);
		return rc;
	}
	if (strcmp(name, "PKCS12") == 0) /* the armour RFC 9216 prints */
		return smime_pkcs12_read(bag, data, (size_t)len, password, err);
	if (bag_pem_is_key(name))
		return bag_pem_key(bag, name, header, data, len, password, block, err);
	*used_r = false;
	return SMIME_OK;
}

static int
bag_load_pem(struct smime_bag *bag, const unsigned char *data, size_t len,
    const char *password, struct smime_error *err)
{
	BIO *in = NULL;
	char *name = NULL, *header = NULL;
	unsigned char *body = NULL;
	long body_len = 0;
	size_t base = bag_items(bag);
	int block, used_blocks = 0, rc;
	bool used;

	if ((in = BIO_new_mem_buf(data, (int)len)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	for (block = 1;; block++) {
		if (!PEM_read_bio(in, &name, &header, &body, &body_len)) {
			unsigned long e = ERR_peek_last_error();

			/* The end of the input shows as "no start line". */
			if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				break;
			}
			rc = smime_error_ssl(err, SMIME_E_INPUT,
			    "PEM block %d: malformed armour or base64", block);
			goto out;
		}
		if (block > SMIME_CERT_MAX_ITEMS) {
			rc = smime_error_set(err, SMIME_E_INPUT,
			    "PEM: more than %d blocks", SMIME_CERT_MAX_ITEMS);
			goto out;
		}
		rc = bag_pem_block(bag, name, header, body, body_len, password, block,
		    base, &used, err);
		if (rc != 0)
			goto out;
		if (used)
			used_blocks++;
		if (bag_items(bag) - base > SMIME_CERT_MAX_ITEMS) {
			rc = smime_error_set(err, SMIME_E_INPUT,
			    "PEM: more than %d certificates and keys", SMIME_CERT_MAX_ITEMS);
			goto out;
		}
		OPENSSL_cleanse(body, (size_t)body_len);
		OPENSSL_free(body);
		OPENSSL_free(name);
		OPENSSL_free(header);
		body = NULL;
		name = header = NULL;
	}
	if (used_blocks == 0) {
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "PEM: no certificate, PKCS#7, PKCS#12 or private key block");
		goto out;
	}
	rc = SMIME_OK;
out:
	if (body != NULL)
		OPENSSL_cleanse(body, (size_t)body_len);
	OPENSSL_free(body);
	OPENSSL_free(name);
	OPENSSL_free(header);
	BIO_free(in);
	return rc;
}

/* The certificates of a CMS SignedData that PKCS#7 cannot read. */
static int
bag_load_cms(struct smime_bag *bag, const unsigned char *data, size_t object_len,
    size_t len, struct smime_error *err)
{
	const unsigned char *p = data;
	CMS_ContentInfo *cms;
	STACK_OF(X509) *certs = NULL;
	int i, rc;

	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)object_len)) == NULL)
		return smime_error_ssl(err, SMIME_E_INPUT,
		    "DER: not a PKCS#7 or CMS ContentInfo");
	if (!bag_only_space(p, len - (size_t)(p - data))) {
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "DER: bytes after the CMS ContentInfo");
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "DER: CMS content type %s holds no certificates",
		    OBJ_nid2sn(OBJ_obj2nid(CMS_get0_type(cms))));
		goto out;
	}
	if ((certs = CMS_get1_certs(cms)) == NULL || sk_X509_num(certs) == 0) {
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "DER: CMS SignedData holds no certificates");
		goto out;
	}
	if (sk_X509_num(certs) > SMIME_CERT_MAX_ITEMS) {
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "DER: more than %d certificates", SMIME_CERT_MAX_ITEMS);
		goto out;
	}
	for (i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		if (!X509_up_ref(x)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
		if ((rc = bag_add_cert(bag, x, err)) != 0)
			goto out;
	}
	rc = SMIME_OK;
out:
	sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return rc;
}

/* An unencrypted DER private key: PKCS#8 PrivateKeyInfo (RFC 5958). */
static int
bag_load_der_key(struct smime_bag *bag, const unsigned char *data,
    size_t object_len, size_t len, long version, struct smime_error *err)
{
	const unsigned char *p = data;
	PKCS8_PRIV_KEY_INFO *p8;
	EVP_PKEY *key = NULL;

	if (version != 0 && version != 1)
		return smime_error_set(err, SMIME_E_INPUT,
		    "DER: a SEQUENCE starting with INTEGER %ld is neither PKCS#12 "
		    "(version 3) nor a PKCS#8 private key (version 0 or 1)", version);
	if ((p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)object_len)) == NULL)
		return smime_error_ssl(err, SMIME_E_INPUT,
		    "DER: not a PKCS#8 PrivateKeyInfo (nor PKCS#12)");
	if (bag_only_space(p, len - (size_t)(p - data)))
		key = EVP_PKCS82PKEY(p8);
	PKCS8_PRIV_KEY_INFO_free(p8); /* cleanses the key bytes */
	if (key == NULL)
		return smime_error_ssl(err, SMIME_E_INPUT,
		    "DER: PKCS#8 PrivateKeyInfo is not a usable private key");
	return bag_add_key(bag, key, err);
}

/*
 * A DER or BER object: told apart by the first element inside the outer
 * SEQUENCE.  RFC 5280 4.1: Certificate ::= SEQUENCE { tbsCertificate
 * SEQUENCE, ...}; RFC 5652 3: ContentInfo ::= SEQUENCE { contentType
 * OBJECT IDENTIFIER, ...}; RFC 7292 4: PFX ::= SEQUENCE { version INTEGER,
 * ...}.
 */
static int
bag_load_der(struct smime_bag *bag, const unsigned char *data, size_t len,
    const char *password, enum smime_format *format_r, struct smime_error *err)
{
	const unsigned char *p = data, *q;
	long outer_len, inner_len;
	size_t object_len;
	int tag, xclass, ret, rc;
	ASN1_INTEGER *version;
	PKCS7 *p7;
	X509 *x;
	long v;

	ret = ASN1_get_object(&p, &outer_len, &tag, &xclass, (long)len);
	if ((ret & 0x80) != 0 || tag != V_ASN1_SEQUENCE ||
	    xclass != V_ASN1_UNIVERSAL || (ret & V_ASN1_CONSTRUCTED) == 0) {
		ERR_clear_error();
		return smime_error_set(err, SMIME_E_INPUT,
		    "DER: the outer SEQUENCE is malformed or longer than the %zu "
		    "bytes of input", len);
	}
	/* ret == 0x21: indefinite length (BER); the object runs to the end. */
	object_len = ret == (V_ASN1_CONSTRUCTED | 1) ? len :
	    (size_t)(p - data) + (size_t)outer_len;
	if (!bag_only_space(data + object_len, len - object_len))
		return smime_error_set(err, SMIME_E_INPUT,
		    "DER: %zu bytes after the outer SEQUENCE", len - object_len);
	q = p; /* the first inner element */
	ret = ASN1_get_object(&q, &inner_len, &tag, &xclass,
	    (long)(object_len - (size_t)(p - data)));
	if ((ret & 0x80) != 0 || xclass != V_ASN1_UNIVERSAL) {
		ERR_clear_error();
		return smime_error_set(err, SMIME_E_INPUT,
		    "DER: the first element inside the outer SEQUENCE is malformed");
	}

	/* p: the first inner element; each case below decodes from data. */
	switch (tag) {
	case V_ASN1_SEQUENCE:
		*format_r = SMIME_FORMAT_DER;
		p = data;
		if ((x = d2i_X509(NULL, &p, (long)object_len)) == NULL) {
			return smime_error_ssl(err, SMIME_E_INPUT,
			    "DER: not an X.509 certificate");
		}
		if (!bag_only_space(p, len - (size_t)(p - data))) {
			X509_free(x);
			return smime_error_set(err, SMIME_E_INPUT,
			    "DER: bytes after the certificate");
		}
		return bag_add_cert(bag, x, err);
	case V_ASN1_OBJECT:
		*format_r = SMIME_FORMAT_PKCS7;
		p = data;
		if ((p7 = d2i_PKCS7(NULL, &p, (long)object_len)) == NULL) {
			/* CMS-only SignedData (RFC 5652 5.3: sid as
			 * subjectKeyIdentifier, version 3) is beyond PKCS#7. */
			ERR_clear_error();
			return bag_load_cms(bag, data, object_len, len, err);
		}
		if (!bag_only_space(p, len - (size_t)(p - data))) {
			PKCS7_free(p7);
			return smime_error_set(err, SMIME_E_INPUT,
			    "DER: bytes after the PKCS#7 ContentInfo");
		}
		rc = bag_add_pkcs7(bag, p7, "DER", bag_items(bag), err);
		PKCS7_free(p7);
		return rc;
	case V_ASN1_INTEGER:
		/* RFC 7292 4: "version INTEGER {v3(3)}"; RFC 5958 2:
		 * OneAsymmetricKey starts with version v1(0) or v2(1). */
		if ((version = d2i_ASN1_INTEGER(NULL, &p,
		    (long)(object_len - (size_t)(p - data)))) == NULL)
			return smime_error_ssl(err, SMIME_E_INPUT,
			    "DER: the first INTEGER is malformed");
		v = ASN1_INTEGER_get(version);
		ASN1_INTEGER_free(version);
		if (v == 3) {
			*format_r = SMIME_FORMAT_PKCS12;
			return smime_pkcs12_read(bag, data, object_len, password, err);
		}
		*format_r = SMIME_FORMAT_DER;
		return bag_load_der_key(bag, data, object_len, len, v, err);
	default:
		return smime_error_set(err, SMIME_E_INPUT,
		    "DER: a SEQUENCE that starts with tag %d is not a certificate, "
		    "PKCS#7 or PKCS#12", tag);
	}
}

int
smime_bag_load(struct smime_bag *bag, const unsigned char *data, size_t len,
    const char *password, struct smime_error *err)
{
	int n_certs;
	size_t n_keys;
	enum smime_format format = SMIME_FORMAT_UNKNOWN;
	int rc;

	if (bag == NULL || bag->certs == NULL || (data == NULL && len > 0))
		return smime_error_set(err, SMIME_E_USAGE, "no bag or no data");
	if (len == 0)
		return smime_error_set(err, SMIME_E_INPUT, "empty input");
	if (len > SMIME_CERT_MAX_INPUT)
		return smime_error_set(err, SMIME_E_INPUT,
		    "input of %zu bytes exceeds the limit of %u", len,
		    SMIME_CERT_MAX_INPUT);
	n_certs = sk_X509_num(bag->certs);
	n_keys = bag->n_keys;

	if (smime_sst_detect(data, len)) {
		format = SMIME_FORMAT_SST;
		rc = smime_sst_read(data, len, bag->certs, err);
	} else if (data[0] == (V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED)) {
		rc = bag_load_der(bag, data, len, password, &format, err);
	} else if (bag_looks_like_mail(data, len)) {
		format = SMIME_FORMAT_EML;
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "looks like a mail message, not a certificate container");
	} else if (memmem(data, len, "-----BEGIN ", 11) != NULL) {
		/* RFC 7468 2: pre-encapsulation boundary "-----BEGIN " label */
		format = SMIME_FORMAT_PEM;
		rc = bag_load_pem(bag, data, len, password, err);
	} else {
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "not a certificate container: neither PEM, DER, PKCS#7, SST nor "
		    "PKCS#12");
	}
	if (rc == 0 && bag_items(bag) - (size_t)n_certs - n_keys > SMIME_CERT_MAX_ITEMS)
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "more than %d certificates and keys in one input",
		    SMIME_CERT_MAX_ITEMS);
	if (rc != 0) {
		bag_rollback(bag, n_certs, n_keys);
		return rc;
	}
	bag_tie_keys(bag);
	bag->format = format;
	return SMIME_OK;
}

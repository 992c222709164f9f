/*
 * SCEP messages (RFC 8894): the pkiMessage, its pkcsPKIEnvelope and the
 * messageData of each type, read and written over OpenSSL's CMS.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <smime/scep.h>

#include "internal.h"

/* RFC 8894 3.2.1: id-VeriSign OBJECT_IDENTIFIER ::= {2 16 US(840) 1
 * VeriSign(113733)}, id-pki ::= {id-VeriSign pki(1)}, id-attributes ::=
 * {id-pki attributes(9)}, and RFC 8894 3.2.1.4 failInfoText {id-pkix
 * id-aca(24) 1}. */
#define OID_MESSAGE_TYPE     "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS       "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO        "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE     "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE  "2.16.840.1.113733.1.9.6"
#define OID_TRANSACTION_ID   "2.16.840.1.113733.1.9.7"
#define OID_FAIL_INFO_TEXT   "1.3.6.1.5.5.7.24.1"

#define FAIL_TEXT_MAX 256

void
smime_scep_msg_clear(struct smime_scep_msg *m)
{
	if (m == NULL)
		return;
	free(m->fail_text);
	X509_free(m->signer);
	sk_X509_pop_free(m->certs, X509_free);
	OPENSSL_free(m->envelope);
	X509_REQ_free(m->csr);
	OPENSSL_free(m->csr_der);
	X509_NAME_free(m->issuer);
	X509_NAME_free(m->subject);
	ASN1_INTEGER_free(m->serial);
	sk_X509_pop_free(m->issued, X509_free);
	sk_X509_CRL_pop_free(m->crls, X509_CRL_free);
	memset(m, 0, sizeof(*m));
	m->status = -1;
	m->fail_info = -1;
}

const char *
smime_scep_type_name(int type)
{
	switch (type) {
	case SMIME_SCEP_CERTREP: return "CertRep";
	case SMIME_SCEP_RENEWALREQ: return "RenewalReq";
	case SMIME_SCEP_PKCSREQ: return "PKCSReq";
	case SMIME_SCEP_CERTPOLL: return "CertPoll";
	case SMIME_SCEP_GETCERT: return "GetCert";
	case SMIME_SCEP_GETCRL: return "GetCRL";
	}
	return "?";
}

const char *
smime_scep_status_name(int status)
{
	switch (status) {
	case SMIME_SCEP_SUCCESS: return "SUCCESS";
	case SMIME_SCEP_FAILURE: return "FAILURE";
	case SMIME_SCEP_PENDING: return "PENDING";
	}
	return "?";
}

const char *
smime_scep_fail_name(int fail)
{
	switch (fail) {
	case SMIME_SCEP_BAD_ALG: return "badAlg";
	case SMIME_SCEP_BAD_MESSAGE_CHECK: return "badMessageCheck";
	case SMIME_SCEP_BAD_REQUEST: return "badRequest";
	case SMIME_SCEP_BAD_TIME: return "badTime";
	case SMIME_SCEP_BAD_CERT_ID: return "badCertId";
	}
	return "?";
}

static bool
type_known(int type)
{
	return strcmp(smime_scep_type_name(type), "?") != 0;
}

/* --- signed attributes --- */

/*
 * The one value of the signed attribute oid, which must be of ASN.1 type
 * want.  SMIME_E_NOTFOUND when the attribute is absent, SMIME_E_INPUT when
 * it is there twice, with other than one value, or of another type.
 */
static int
attr_value(CMS_SignerInfo *si, const char *oid, int want, const char *what,
    const ASN1_STRING **s_r, struct smime_error *err)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *t;
	int i, rc = 0;

	*s_r = NULL;
	if (obj == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if ((i = CMS_signed_get_attr_by_OBJ(si, obj, -1)) < 0) {
		rc = smime_error_set(err, SMIME_E_NOTFOUND, "RFC 8894 3.2.1: the %s attribute "
		    "is missing", what);
		goto out;
	}
	if (CMS_signed_get_attr_by_OBJ(si, obj, i) >= 0) {
		rc = smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.1: the %s attribute is "
		    "there twice", what);
		goto out;
	}
	attr = CMS_signed_get_attr(si, i);
	if (X509_ATTRIBUTE_count(attr) != 1 || (t = X509_ATTRIBUTE_get0_type(attr, 0)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INPUT, "RFC 5652 5.3: the %s attribute has "
		    "other than one value", what);
		goto out;
	}
	if (t->type != want) {
		rc = smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.1: the %s attribute is "
		    "a %s, not a %s", what, ASN1_tag2str(t->type), ASN1_tag2str(want));
		goto out;
	}
	*s_r = t->value.asn1_string;
out:
	ASN1_OBJECT_free(obj);
	return rc;
}

/* A PrintableString attribute holding a small decimal number. */
static int
attr_number(CMS_SignerInfo *si, const char *oid, const char *what, int *n_r,
    struct smime_error *err)
{
	const ASN1_STRING *s;
	const unsigned char *p;
	int len, n = 0, rc;

	if ((rc = attr_value(si, oid, V_ASN1_PRINTABLESTRING, what, &s, err)) != 0)
		return rc;
	p = ASN1_STRING_get0_data(s);
	len = ASN1_STRING_length(s);
	if (len < 1 || len > 4)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.1: %s: not a small "
		    "decimal number", what);
	for (int i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.1: %s: not a "
			    "decimal number", what);
		n = n * 10 + (p[i] - '0');
	}
	*n_r = n;
	return 0;
}

static int
attr_nonce(CMS_SignerInfo *si, const char *oid, const char *what, unsigned char *out,
    size_t *len_r, struct smime_error *err)
{
	const ASN1_STRING *s;
	int len, rc;

	if ((rc = attr_value(si, oid, V_ASN1_OCTET_STRING, what, &s, err)) != 0)
		return rc;
	len = ASN1_STRING_length(s);
	/* RFC 8894 3.2.1.5: "The nonces MUST be 16 bytes in length"; some
	 * clients send 8, none sends more than we keep. */
	if (len < 8 || len > SMIME_SCEP_MAX_NONCE)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.1.5: %s of %d octets",
		    what, len);
	memcpy(out, ASN1_STRING_get0_data(s), (size_t)len);
	*len_r = (size_t)len;
	return 0;
}

static int
read_attributes(CMS_SignerInfo *si, struct smime_scep_msg *m, struct smime_error *err)
{
	const ASN1_STRING *s;
	const unsigned char *p;
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *t;
	int i, len, rc;

	/* RFC 8894 3.2.1.1: "transactionID ... PrintableString" */
	if ((rc = attr_value(si, OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, "transactionID",
	    &s, err)) != 0)
		return rc == SMIME_E_NOTFOUND ? SMIME_E_INPUT : rc;
	p = ASN1_STRING_get0_data(s);
	len = ASN1_STRING_length(s);
	if (len < 1 || len > SMIME_SCEP_MAX_TID)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.1.1: a transactionID "
		    "of %d characters (at most %d)", len, SMIME_SCEP_MAX_TID);
	for (i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.1.1: the "
			    "transactionID is not printable");
	memcpy(m->transaction_id, p, (size_t)len);
	m->transaction_id[len] = '\0';

	/* RFC 8894 3.2.1.5: every message has a senderNonce. */
	if ((rc = attr_nonce(si, OID_SENDER_NONCE, "senderNonce", m->sender_nonce,
	    &m->sender_nonce_len, err)) != 0)
		return rc == SMIME_E_NOTFOUND ? SMIME_E_INPUT : rc;

	/* RFC 8894 3.2.1.2: "messageType ... PrintableString" */
	if ((rc = attr_number(si, OID_MESSAGE_TYPE, "messageType", &m->type, err)) != 0)
		return rc == SMIME_E_NOTFOUND ? SMIME_E_INPUT : rc;
	if (!type_known(m->type)) {
		rc = smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.1.2: unknown messageType "
		    "%d", m->type);
		m->type = 0;
		return rc;
	}
	if (m->type != SMIME_SCEP_CERTREP)
		return 0;

	/* RFC 8894 3.3.2: a CertRep carries pkiStatus and recipientNonce, and
	 * failInfo when the status is FAILURE. */
	if ((rc = attr_number(si, OID_PKI_STATUS, "pkiStatus", &m->status, err)) != 0)
		return rc == SMIME_E_NOTFOUND ? SMIME_E_INPUT : rc;
	if (strcmp(smime_scep_status_name(m->status), "?") == 0)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.1.3: unknown pkiStatus "
		    "%d", m->status);
	if ((rc = attr_nonce(si, OID_RECIPIENT_NONCE, "recipientNonce", m->recipient_nonce,
	    &m->recipient_nonce_len, err)) != 0)
		return rc == SMIME_E_NOTFOUND ? SMIME_E_INPUT : rc;
	if (m->status == SMIME_SCEP_FAILURE) {
		if ((rc = attr_number(si, OID_FAIL_INFO, "failInfo", &m->fail_info, err)) != 0)
			return rc == SMIME_E_NOTFOUND ? SMIME_E_INPUT : rc;
		/* failInfoText: optional, UTF8String; kept when printable. */
		{
			ASN1_OBJECT *obj = OBJ_txt2obj(OID_FAIL_INFO_TEXT, 1);

			i = obj != NULL ? CMS_signed_get_attr_by_OBJ(si, obj, -1) : -1;
			ASN1_OBJECT_free(obj);
		}
		if (i >= 0 && (attr = CMS_signed_get_attr(si, i)) != NULL &&
		    X509_ATTRIBUTE_count(attr) == 1 &&
		    (t = X509_ATTRIBUTE_get0_type(attr, 0)) != NULL &&
		    t->type == V_ASN1_UTF8STRING &&
		    (len = ASN1_STRING_length(t->value.utf8string)) > 0 && len <= FAIL_TEXT_MAX) {
			p = ASN1_STRING_get0_data(t->value.utf8string);
			if ((m->fail_text = malloc((size_t)len + 1)) == NULL)
				return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			for (i = 0; i < len; i++)
				m->fail_text[i] = p[i] >= 0x20 && p[i] != 0x7f ? (char)p[i] : '?';
			m->fail_text[len] = '\0';
		}
	}
	return 0;
}

static int
signing_time(CMS_SignerInfo *si, int64_t *t_r)
{
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *t;
	struct tm tm;
	int i;

	if ((i = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1)) < 0 ||
	    (attr = CMS_signed_get_attr(si, i)) == NULL || X509_ATTRIBUTE_count(attr) != 1 ||
	    (t = X509_ATTRIBUTE_get0_type(attr, 0)) == NULL ||
	    (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME) ||
	    !ASN1_TIME_to_tm((ASN1_TIME *)t->value.asn1_string, &tm))
		return -1;
	*t_r = (int64_t)timegm(&tm);
	return 0;
}

/* Digests a SCEP signature may use: RFC 8894 3.5.2 names SHA-1, SHA-256
 * and SHA-512; the SHA-2 family is read whole.  MD5 is refused here. */
static bool
digest_allowed(int nid)
{
	return nid == NID_sha1 || nid == NID_sha224 || nid == NID_sha256 || nid == NID_sha384 ||
	    nid == NID_sha512;
}

/* --- reading --- */

/*
 * The certificates of a pkiMessage split off its SignedData (s), each
 * assembled when assemble and that can be done, else decoded.
 */
static int
split_certs(const struct signed_split *s, bool assemble, STACK_OF(X509) **certs_r,
    struct smime_error *err)
{
	STACK_OF(X509) *certs;

	if (s->n_certs == 0 || s->n_certs > SMIME_SCEP_MAX_CERTS + 4)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.2: the pkiMessage holds "
		    "%s certificates", s->n_certs == 0 ? "no" : "too many");
	if ((certs = sk_X509_new_reserve(NULL, s->n_certs)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	for (int i = 0; i < s->n_certs; i++) {
		const unsigned char *p = s->cert[i];
		X509 *x = assemble ? assemble_cert(s->cert[i], s->cert_len[i]) : NULL;

		if (x == NULL && ((x = d2i_X509(NULL, &p, (long)s->cert_len[i])) == NULL ||
		    p != s->cert[i] + s->cert_len[i])) {
			X509_free(x);
			sk_X509_pop_free(certs, X509_free);
			return smime_error_ssl(err, SMIME_E_INPUT, "RFC 5652 10.2.2: certificate %d "
			    "of the pkiMessage is not an X.509 Certificate", i + 1);
		}
		(void)sk_X509_push(certs, x);  /* reserved */
	}
	*certs_r = certs;
	return 0;
}

int
smime_scep_read(const unsigned char *der, size_t len, struct smime_scep_msg *m,
    struct smime_error *err)
{
	return smime_scep_read_ex(der, len, 0, m, err);
}

int
smime_scep_read_ex(const unsigned char *der, size_t len, unsigned flags,
    struct smime_scep_msg *m, struct smime_error *err)
{
	struct signed_split split = { 0 };
	const unsigned char *in = der;
	size_t in_len = len;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(CMS_SignerInfo) *sis;
	CMS_SignerInfo *si;
	ASN1_OCTET_STRING **content;
	X509_ALGOR *dig = NULL;
	X509 *signer = NULL;
	BIO *dcont = NULL;
	const unsigned char *p = der;
	int rc = 0;

	smime_init();
	smime_scep_msg_clear(m);
	m->digest_nid = NID_undef;
	m->cipher_nid = NID_undef;
	m->assembled = (flags & SMIME_SCEP_ASSEMBLE) != 0;
	if (der == NULL || len == 0)
		return smime_error_set(err, SMIME_E_INPUT, "pkiMessage: empty");
	if (len > SMIME_SCEP_MAX_MESSAGE)
		return smime_error_set(err, SMIME_E_INPUT, "pkiMessage: %zu octets, at most %u",
		    len, SMIME_SCEP_MAX_MESSAGE);

	/* The server's reading: the certificates are read apart, so that the
	 * CMS decoder meets no key (each costs a provider decoder in OpenSSL
	 * 3.0); when they cannot be, the CMS decoder reads them all. */
	if (m->assembled && (rc = signed_split(der, len, &split)) != -1) {
		if (rc != 0) {
			rc = smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.2: the pkiMessage "
			    "holds more than %d certificates", SIGNED_SPLIT_MAX_CERTS);
			goto out;
		}
		in = split.rest;
		in_len = split.rest_len;
	}
	rc = 0;
	p = in;
	/* RFC 8894 3.2: "a pkiMessage ... is a CMS SignedData" */
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)in_len)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INPUT, "RFC 8894 3.2: the pkiMessage is not "
		    "a CMS ContentInfo");
		goto out;
	}
	if (p != in + in_len) {
		rc = smime_error_set(err, SMIME_E_INPUT, "pkiMessage: %zu octets after the "
		    "ContentInfo", (size_t)(in + in_len - p));
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		rc = smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2: the pkiMessage is a %s, "
		    "not a SignedData", OBJ_nid2sn(OBJ_obj2nid(CMS_get0_type(cms))));
		goto out;
	}
	/* RFC 8894 3.2: "The SignedData MUST contain ... the signerInfo" (one) */
	sis = CMS_get0_SignerInfos(cms);
	if (sk_CMS_SignerInfo_num(sis) != 1) {
		rc = smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2: a pkiMessage has one "
		    "signer, this one %d", sk_CMS_SignerInfo_num(sis));
		goto out;
	}
	si = sk_CMS_SignerInfo_value(sis, 0);
	if ((rc = read_attributes(si, m, err)) != 0)
		goto out;

	/* RFC 8894 3.2.2: the signer's certificate is in the message. */
	if (split.rest != NULL) {
		if ((rc = split_certs(&split, m->assembled, &m->certs, err)) != 0)
			goto out;
	} else if ((m->certs = CMS_get1_certs(cms)) == NULL ||
	    sk_X509_num(m->certs) > SMIME_SCEP_MAX_CERTS + 4) {
		rc = smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.2: the pkiMessage holds "
		    "%s certificates", m->certs == NULL ? "no" : "too many");
		goto out;
	}
	ERR_set_mark();
	(void)CMS_set1_signers_certs(cms, m->certs, CMS_NOINTERN);
	ERR_pop_to_mark();
	CMS_SignerInfo_get0_algs(si, NULL, &signer, &dig, NULL);
	if (signer == NULL) {
		rc = smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.2: the signer's "
		    "certificate is not in the pkiMessage");
		goto out;
	}
	if (!X509_up_ref(signer)) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "certificate reference");
		goto out;
	}
	m->signer = signer;
	/* signer_sha256: the signer's certificate as it was received. */
	for (int i = 0; i < split.n_certs; i++)
		if (sk_X509_value(m->certs, i) == signer && !EVP_Digest(split.cert[i],
		    split.cert_len[i], m->signer_sha256, NULL, EVP_sha256(), NULL)) {
			rc = smime_error_ssl(err, SMIME_E_INTERNAL, "certificate digest");
			goto out;
		}
	if (split.rest == NULL && !X509_digest(signer, EVP_sha256(), m->signer_sha256, NULL)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "certificate digest");
		goto out;
	}
	m->digest_nid = dig != NULL ? OBJ_obj2nid(dig->algorithm) : NID_undef;
	m->has_signing_time = signing_time(si, &m->signing_time) == 0;

	/* RFC 8894 3.2: the content is the pkcsPKIEnvelope, as id-data. */
	content = CMS_get0_content(cms);
	if (content != NULL && *content != NULL) {
		int n = ASN1_STRING_length(*content);

		if (OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data) {
			rc = smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2: the signed content "
			    "is not id-data");
			goto out;
		}
		/* An empty content is no envelope (a CertRep PENDING or FAILURE). */
		if (n > 0 && (m->envelope = OPENSSL_memdup(ASN1_STRING_get0_data(*content),
		    (size_t)n)) == NULL) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
		if (m->envelope != NULL) {
			m->envelope_len = (size_t)n;
			m->cipher_nid = cms_content_cipher_nid(m->envelope, m->envelope_len);
		}
	}

	if (!digest_allowed(m->digest_nid)) {
		rc = smime_error_set(err, SMIME_E_POLICY, "RFC 8894 3.5.2: a signature with "
		    "digest %s (SHA-1 or SHA-2 only)", m->digest_nid != NID_undef ?
		    OBJ_nid2sn(m->digest_nid) : "(unknown)");
		goto out;
	}

	/* The signature, with the signer's own certificate; whether that
	 * certificate is trusted is the caller's question. */
	if (CMS_is_detached(cms) && (dcont = BIO_new_mem_buf("", 0)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if (CMS_verify(cms, m->certs, NULL, dcont, NULL,
	    CMS_NO_SIGNER_CERT_VERIFY | CMS_NOINTERN | CMS_BINARY) != 1) {
		rc = smime_error_ssl(err, SMIME_E_BADSIG, "RFC 8894 3.2: the pkiMessage's "
		    "signature does not verify with its signer's certificate");
		goto out;
	}
	m->signature_ok = true;
out:
	CMS_ContentInfo_free(cms);
	signed_split_free(&split);
	BIO_free(dcont);
	ERR_clear_error();
	return rc;
}

bool
smime_scep_can_reply(const struct smime_scep_msg *m)
{
	return m != NULL && m->signer != NULL && m->transaction_id[0] != '\0' &&
	    m->sender_nonce_len > 0;
}

/* --- the messageData --- */

/* RFC 8894 3.3.3: IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name } */
static int
read_issuer_and_subject(const unsigned char *der, size_t len, struct smime_scep_msg *m,
    struct smime_error *err)
{
	const unsigned char *p = der, *end;
	long n;
	int tag, cls, r;

	r = ASN1_get_object(&p, &n, &tag, &cls, (long)len);
	if ((r & 0x80) || r != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE ||
	    cls != V_ASN1_UNIVERSAL || p + n != der + len)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.3.3: IssuerAndSubject is "
		    "not a SEQUENCE");
	end = p + n;
	if ((m->issuer = d2i_X509_NAME(NULL, &p, end - p)) == NULL ||
	    (m->subject = d2i_X509_NAME(NULL, &p, end - p)) == NULL || p != end)
		return smime_error_ssl(err, SMIME_E_INPUT, "RFC 8894 3.3.3: IssuerAndSubject is "
		    "not two Names");
	return 0;
}

/* RFC 8894 3.3.4, 3.3.5: IssuerAndSerialNumber (RFC 5652 10.2.4). */
static int
read_issuer_and_serial(const unsigned char *der, size_t len, struct smime_scep_msg *m,
    struct smime_error *err)
{
	PKCS7_ISSUER_AND_SERIAL *ias;
	const unsigned char *p = der;

	if ((ias = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		PKCS7_ISSUER_AND_SERIAL_free(ias);
		return smime_error_ssl(err, SMIME_E_INPUT, "RFC 8894 3.3.4: not an "
		    "IssuerAndSerialNumber");
	}
	m->issuer = ias->issuer;
	m->serial = ias->serial;
	ias->issuer = NULL;
	ias->serial = NULL;
	PKCS7_ISSUER_AND_SERIAL_free(ias);
	return 0;
}

/* RFC 8894 3.3.2: a degenerate certificates-only SignedData. */
static int
read_degenerate(const unsigned char *der, size_t len, STACK_OF(X509) **certs_r,
    STACK_OF(X509_CRL) **crls_r, struct smime_error *err)
{
	PKCS7 *p7;
	const unsigned char *p = der;
	STACK_OF(X509) *certs;
	STACK_OF(X509_CRL) *crls;
	int n_certs, n_crls, rc = 0;

	if ((p7 = d2i_PKCS7(NULL, &p, (long)len)) == NULL || p != der + len ||
	    !PKCS7_type_is_signed(p7) || p7->d.sign == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INPUT, "RFC 8894 3.3.2: the messageData is "
		    "not a degenerate SignedData");
		goto out;
	}
	certs = p7->d.sign->cert;
	crls = p7->d.sign->crl;
	n_certs = certs != NULL ? sk_X509_num(certs) : 0;
	n_crls = crls != NULL ? sk_X509_CRL_num(crls) : 0;
	if (n_certs + n_crls == 0 || n_certs > SMIME_SCEP_MAX_CERTS || n_crls > 1) {
		rc = smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.3.2: %d certificates and "
		    "%d CRLs in the reply", n_certs, n_crls);
		goto out;
	}
	if (n_certs > 0) {
		*certs_r = certs;
		p7->d.sign->cert = NULL;
	}
	if (n_crls > 0) {
		*crls_r = crls;
		p7->d.sign->crl = NULL;
	}
out:
	PKCS7_free(p7);
	return rc;
}

/* RFC 8894 3.3.1: the PKCS#10 request, and its encoding as received. */
static int
read_request(const unsigned char *der, size_t len, struct smime_scep_msg *m,
    struct smime_error *err)
{
	const unsigned char *p = der;

	if ((m->csr_der = OPENSSL_memdup(der, len)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	m->csr_len = len;
	if (m->assembled && (m->csr = assemble_req(der, len)) != NULL)
		return 0;
	if ((m->csr = d2i_X509_REQ(NULL, &p, (long)len)) == NULL || p != der + len)
		return smime_error_ssl(err, SMIME_E_INPUT, "RFC 8894 3.3.1: the messageData is "
		    "not a PKCS#10 CertificationRequest");
	return 0;
}

int
smime_scep_csr_verify(const struct smime_scep_msg *m, struct smime_error *err)
{
	if (m == NULL || m->csr == NULL || m->csr_der == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "scep: no request to verify");
	if (!req_verify(m->csr_der, m->csr_len, X509_REQ_get0_pubkey(m->csr)))
		return smime_error_set(err, SMIME_E_BADSIG, "RFC 2986 3: the request's signature "
		    "does not verify with its key");
	return 0;
}

/* The content ciphers of RFC 8894 3.5.2 (AES in CBC mode, triple DES). */
static bool
cipher_allowed(int nid)
{
	return nid == NID_aes_128_cbc || nid == NID_aes_192_cbc || nid == NID_aes_256_cbc ||
	    nid == NID_des_ede3_cbc;
}

int
smime_scep_open(struct smime_scep_msg *m, X509 *cert, EVP_PKEY *key, struct smime_error *err)
{
	CMS_ContentInfo *cms = NULL;
	BIO *out = NULL;
	const unsigned char *p;
	BUF_MEM *mem;
	int rc = 0;

	smime_init();
	if (m == NULL || cert == NULL || key == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "scep open: no message or key");
	if (m->envelope == NULL)
		return smime_error_set(err, SMIME_E_NOTFOUND, "RFC 8894 3.2: the %s has no "
		    "pkcsPKIEnvelope", smime_scep_type_name(m->type));
	p = m->envelope;
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)m->envelope_len)) == NULL ||
	    p != m->envelope + m->envelope_len ||
	    OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped) {
		rc = smime_error_ssl(err, SMIME_E_INPUT, "RFC 8894 3.2.2: the pkcsPKIEnvelope "
		    "is not a CMS EnvelopedData");
		goto out;
	}
	if (!cipher_allowed(m->cipher_nid)) {
		rc = smime_error_set(err, SMIME_E_POLICY, "RFC 8894 3.5.2: content encrypted "
		    "with %s (AES-CBC or triple DES only)", m->cipher_nid != NID_undef ?
		    OBJ_nid2sn(m->cipher_nid) : "an unknown cipher");
		goto out;
	}
	if ((out = BIO_new(BIO_s_mem())) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if (CMS_decrypt(cms, key, cert, NULL, out, CMS_BINARY) != 1) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "RFC 8894 3.2.2: the pkcsPKIEnvelope "
		    "does not decrypt with the key of %s", "the recipient");
		goto out;
	}
	BIO_get_mem_ptr(out, &mem);
	if (mem->length == 0 || mem->length > SMIME_SCEP_MAX_CONTENT) {
		rc = smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.2: a messageData of %zu "
		    "octets", (size_t)mem->length);
		goto out;
	}
	p = (const unsigned char *)mem->data;
	switch (m->type) {
	case SMIME_SCEP_PKCSREQ:
	case SMIME_SCEP_RENEWALREQ:
		/* RFC 8894 3.3.1: "the messageData ... is a PKCS #10 request" */
		rc = read_request(p, mem->length, m, err);
		break;
	case SMIME_SCEP_CERTPOLL:
		rc = read_issuer_and_subject(p, mem->length, m, err);
		break;
	case SMIME_SCEP_GETCERT:
	case SMIME_SCEP_GETCRL:
		rc = read_issuer_and_serial(p, mem->length, m, err);
		break;
	case SMIME_SCEP_CERTREP:
		rc = read_degenerate(p, mem->length, &m->issued, &m->crls, err);
		break;
	default:
		rc = smime_error_set(err, SMIME_E_INPUT, "RFC 8894 3.2.1.2: messageType %d",
		    m->type);
	}
out:
	CMS_ContentInfo_free(cms);
	if (out != NULL) {
		BIO_get_mem_ptr(out, &mem);
		if (mem != NULL && mem->data != NULL)
			OPENSSL_cleanse(mem->data, mem->length);
		BIO_free(out);
	}
	ERR_clear_error();
	return rc;
}

bool
smime_scep_envelope_for(const struct smime_scep_msg *m, X509 *cert)
{
	CMS_ContentInfo *cms;
	STACK_OF(CMS_RecipientInfo) *ris;
	const unsigned char *p;
	bool found = false;

	if (m == NULL || cert == NULL || m->envelope == NULL)
		return false;
	p = m->envelope;
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)m->envelope_len)) == NULL) {
		ERR_clear_error();
		return false;
	}
	if ((ris = CMS_get0_RecipientInfos(cms)) != NULL)
		for (int i = 0; i < sk_CMS_RecipientInfo_num(ris) && !found; i++) {
			CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);

			found = CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS &&
			    CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0;
		}
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return found;
}

/* --- writing --- */

static int
add_string_attr(CMS_SignerInfo *si, const char *oid, int type, const void *data, int len)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int ok = obj != NULL && CMS_signed_add1_attr_by_OBJ(si, obj, type, data, len);

	ASN1_OBJECT_free(obj);
	return ok;
}

static int
add_number_attr(CMS_SignerInfo *si, const char *oid, int n)
{
	char text[16];
	int len = snprintf(text, sizeof(text), "%d", n);

	return add_string_attr(si, oid, V_ASN1_PRINTABLESTRING, text, len);
}

/* DER of SEQUENCE { a, b } from two encodings. */
static int
der_pair(const unsigned char *a, int alen, const unsigned char *b, int blen,
    unsigned char **der_r, int *len_r)
{
	int inner = alen + blen, total = ASN1_object_size(1, inner, V_ASN1_SEQUENCE);
	unsigned char *der, *p;

	if (total <= 0 || (der = OPENSSL_malloc((size_t)total)) == NULL)
		return 0;
	p = der;
	ASN1_put_object(&p, 1, inner, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(p, a, (size_t)alen);
	memcpy(p + alen, b, (size_t)blen);
	*der_r = der;
	*len_r = total;
	return 1;
}

/* The messageData of o, DER. */
static int
message_data(const struct smime_scep_out *o, unsigned char **der_r, int *len_r,
    struct smime_error *err)
{
	PKCS7_ISSUER_AND_SERIAL *ias = NULL;
	PKCS7 *p7 = NULL;
	unsigned char *a = NULL, *b = NULL;
	int alen, blen, rc = 0;

	*der_r = NULL;
	switch (o->type) {
	case SMIME_SCEP_PKCSREQ:
	case SMIME_SCEP_RENEWALREQ:
		if (o->csr == NULL)
			return smime_error_set(err, SMIME_E_USAGE, "scep: a request without a CSR");
		*len_r = i2d_X509_REQ(o->csr, der_r);
		break;
	case SMIME_SCEP_CERTPOLL:
		if (o->issuer == NULL || o->subject == NULL)
			return smime_error_set(err, SMIME_E_USAGE, "scep: CertPoll without names");
		if ((alen = i2d_X509_NAME(o->issuer, &a)) <= 0 ||
		    (blen = i2d_X509_NAME(o->subject, &b)) <= 0 ||
		    !der_pair(a, alen, b, blen, der_r, len_r))
			*len_r = 0;
		break;
	case SMIME_SCEP_GETCERT:
	case SMIME_SCEP_GETCRL:
		if (o->issuer == NULL || o->serial == NULL)
			return smime_error_set(err, SMIME_E_USAGE, "scep: %s without issuer and "
			    "serial", smime_scep_type_name(o->type));
		if ((ias = PKCS7_ISSUER_AND_SERIAL_new()) == NULL ||
		    !X509_NAME_set(&ias->issuer, o->issuer) ||
		    (ASN1_INTEGER_free(ias->serial), ias->serial = ASN1_INTEGER_dup(o->serial)) ==
		    NULL)
			*len_r = 0;
		else
			*len_r = i2d_PKCS7_ISSUER_AND_SERIAL(ias, der_r);
		break;
	case SMIME_SCEP_CERTREP:
		/* RFC 8894 3.3.2: "a degenerate certificates-only CMS SignedData" */
		if ((p7 = PKCS7_new()) == NULL || !PKCS7_set_type(p7, NID_pkcs7_signed) ||
		    !PKCS7_content_new(p7, NID_pkcs7_data)) {
			*len_r = 0;
			break;
		}
		for (int i = 0; i < sk_X509_num(o->issued); i++)
			if (!PKCS7_add_certificate(p7, sk_X509_value(o->issued, i)))
				goto fail;
		if (o->crl != NULL && !PKCS7_add_crl(p7, o->crl))
			goto fail;
		if (sk_X509_num(o->issued) <= 0 && o->crl == NULL) {
			rc = smime_error_set(err, SMIME_E_USAGE, "scep: a SUCCESS without a "
			    "certificate or CRL");
			goto out;
		}
		PKCS7_set_detached(p7, 1);
		*len_r = i2d_PKCS7(p7, der_r);
		break;
	fail:
		*len_r = 0;
		break;
	default:
		return smime_error_set(err, SMIME_E_USAGE, "scep: messageType %d", o->type);
	}
	if (*len_r <= 0 || *der_r == NULL) {
		OPENSSL_free(*der_r);
		*der_r = NULL;
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "scep: cannot encode the %s "
		    "messageData", smime_scep_type_name(o->type));
	}
out:
	OPENSSL_free(a);
	OPENSSL_free(b);
	PKCS7_ISSUER_AND_SERIAL_free(ias);
	PKCS7_free(p7);
	return rc;
}

/* The pkcsPKIEnvelope of o: the messageData encrypted to o->recipient. */
static int
envelope(const struct smime_scep_out *o, unsigned char **der_r, int *len_r,
    struct smime_error *err)
{
	STACK_OF(X509) *recips = NULL;
	CMS_ContentInfo *cms = NULL;
	unsigned char *data = NULL;
	BIO *in = NULL;
	int dlen = 0, rc = 0;

	*der_r = NULL;
	if (o->recipient == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "scep: no recipient for the envelope");
	if ((rc = message_data(o, &data, &dlen, err)) != 0)
		return rc;
	if ((recips = sk_X509_new_null()) == NULL || !sk_X509_push(recips, o->recipient) ||
	    (in = BIO_new_mem_buf(data, dlen)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	/* RFC 8894 3.2.2: "The EnvelopedData ... uses the public key of the
	 * recipient"; the RecipientInfo names it by issuer and serial. */
	if ((cms = CMS_encrypt(recips, in, o->cipher != NULL ? o->cipher : EVP_aes_128_cbc(),
	    CMS_BINARY)) == NULL ||
	    (*len_r = i2d_CMS_ContentInfo(cms, der_r)) <= 0) {
		OPENSSL_free(*der_r);
		*der_r = NULL;
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "scep: cannot encrypt the %s "
		    "messageData", smime_scep_type_name(o->type));
		goto out;
	}
out:
	if (data != NULL)
		OPENSSL_clear_free(data, (size_t)dlen);
	sk_X509_free(recips);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return rc;
}

int
smime_scep_write(const struct smime_scep_out *o, unsigned char **der_r, size_t *len_r,
    unsigned char nonce_r[SMIME_SCEP_NONCE], struct smime_error *err)
{
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	unsigned char nonce[SMIME_SCEP_NONCE], *env = NULL, *der = NULL;
	BIO *content = NULL;
	size_t tid_len;
	int env_len = 0, der_len, flags = CMS_BINARY | CMS_PARTIAL, rc = 0;
	bool with_envelope;

	smime_init();
	*der_r = NULL;
	*len_r = 0;
	if (o == NULL || o->signer == NULL || o->key == NULL || o->transaction_id == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "scep: no signer or transactionID");
	if (!type_known((int)o->type))
		return smime_error_set(err, SMIME_E_USAGE, "scep: messageType %d", (int)o->type);
	tid_len = strlen(o->transaction_id);
	if (tid_len == 0 || tid_len > SMIME_SCEP_MAX_TID)
		return smime_error_set(err, SMIME_E_USAGE, "scep: a transactionID of %zu "
		    "characters", tid_len);
	if (o->type == SMIME_SCEP_CERTREP && (o->recipient_nonce == NULL ||
	    o->recipient_nonce_len == 0 || o->recipient_nonce_len > SMIME_SCEP_MAX_NONCE))
		return smime_error_set(err, SMIME_E_USAGE, "scep: a CertRep without the "
		    "request's senderNonce");

	if (o->sender_nonce != NULL)
		memcpy(nonce, o->sender_nonce, sizeof(nonce));
	else if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return smime_error_ssl(err, SMIME_E_CRYPTO, "scep: no random nonce");
	if (nonce_r != NULL)
		memcpy(nonce_r, nonce, sizeof(nonce));

	/* RFC 8894 3.3.2: a CertRep of FAILURE or PENDING has no envelope.
	 * Its content is an empty id-data rather than absent: clients built
	 * on PKCS7_verify (certmonger) refuse a SignedData without content. */
	with_envelope = o->type != SMIME_SCEP_CERTREP || o->status == SMIME_SCEP_SUCCESS;
	if (with_envelope) {
		if ((rc = envelope(o, &env, &env_len, err)) != 0)
			goto out;
		content = BIO_new_mem_buf(env, env_len);
	} else
		content = BIO_new_mem_buf("", 0);
	if (content == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}

	if ((cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL ||
	    (si = CMS_add1_signer(cms, o->signer, o->key, o->md != NULL ? o->md : EVP_sha256(),
	    CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "scep: cannot sign with the signer's "
		    "key");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(o->extra_certs); i++)
		if (!CMS_add1_cert(cms, sk_X509_value(o->extra_certs, i))) {
			/* the signer's certificate is there already */
			ERR_clear_error();
		}
	/* RFC 8894 3.2.1: the attributes of every pkiMessage, and of a CertRep. */
	if (!add_string_attr(si, OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, o->transaction_id,
	    (int)tid_len) ||
	    !add_number_attr(si, OID_MESSAGE_TYPE, (int)o->type) ||
	    !add_string_attr(si, OID_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce, sizeof(nonce)) ||
	    (o->type == SMIME_SCEP_CERTREP &&
	    (!add_number_attr(si, OID_PKI_STATUS, (int)o->status) ||
	    !add_string_attr(si, OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, o->recipient_nonce,
	    (int)o->recipient_nonce_len) ||
	    (o->status == SMIME_SCEP_FAILURE &&
	    (!add_number_attr(si, OID_FAIL_INFO, (int)o->fail_info) ||
	    (o->fail_text != NULL && o->fail_text[0] != '\0' &&
	    !add_string_attr(si, OID_FAIL_INFO_TEXT, V_ASN1_UTF8STRING, o->fail_text,
	    (int)strnlen(o->fail_text, FAIL_TEXT_MAX)))))))) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "scep: cannot add the signed "
		    "attributes");
		goto out;
	}
	if (CMS_final(cms, content, NULL, flags & ~CMS_PARTIAL) != 1 ||
	    (der_len = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "scep: cannot sign the %s",
		    smime_scep_type_name(o->type));
		goto out;
	}
	*der_r = der;
	*len_r = (size_t)der_len;
out:
	OPENSSL_free(env);
	BIO_free(content);
	CMS_ContentInfo_free(cms);
	return rc;
}

/* --- requests --- */

int
smime_scep_challenge(X509_REQ *csr, char *out, size_t size, struct smime_error *err)
{
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *t;
	const unsigned char *p;
	int i, len;

	if (csr == NULL || out == NULL || size == 0)
		return smime_error_set(err, SMIME_E_USAGE, "scep: no request");
	out[0] = '\0';
	if ((i = X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, -1)) < 0)
		return smime_error_set(err, SMIME_E_NOTFOUND, "RFC 8894 2.2: the request has no "
		    "challengePassword");
	if (X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, i) >= 0)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 2985 5.4.1: challengePassword "
		    "twice");
	attr = X509_REQ_get_attr(csr, i);
	/* RFC 2985 5.4.1: "challengePassword ... SINGLE VALUE TRUE",
	 * a DirectoryString. */
	if (X509_ATTRIBUTE_count(attr) != 1 || (t = X509_ATTRIBUTE_get0_type(attr, 0)) == NULL)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 2985 5.4.1: challengePassword "
		    "has other than one value");
	if (t->type != V_ASN1_PRINTABLESTRING && t->type != V_ASN1_UTF8STRING &&
	    t->type != V_ASN1_IA5STRING && t->type != V_ASN1_T61STRING)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 2985 5.4.1: challengePassword "
		    "is a %s", ASN1_tag2str(t->type));
	p = ASN1_STRING_get0_data(t->value.asn1_string);
	len = ASN1_STRING_length(t->value.asn1_string);
	if (len <= 0 || len > SMIME_SCEP_MAX_CHALLENGE || (size_t)len >= size)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 2985 5.4.1: a challengePassword "
		    "of %d characters", len);
	for (i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return smime_error_set(err, SMIME_E_INPUT, "challengePassword: not "
			    "printable ASCII");
	memcpy(out, p, (size_t)len);
	out[len] = '\0';
	return 0;
}

int
smime_scep_transaction_id(EVP_PKEY *pub, char out[65], struct smime_error *err)
{
	unsigned char *der = NULL, md[32];
	int len;

	out[0] = '\0';
	if (pub == NULL || (len = i2d_PUBKEY(pub, &der)) <= 0)
		return smime_error_ssl(err, SMIME_E_USAGE, "scep: no public key");
	if (EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL) != 1) {
		OPENSSL_free(der);
		return smime_error_ssl(err, SMIME_E_CRYPTO, "scep: SHA-256");
	}
	OPENSSL_free(der);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(out + 2 * i, 3, "%02X", md[i]);
	return 0;
}

int
smime_scep_self_signed(X509_REQ *csr, EVP_PKEY *key, X509 **cert_r, struct smime_error *err)
{
	X509 *x = NULL;
	X509_NAME *name = NULL;
	ASN1_INTEGER *serial = NULL;
	BIGNUM *bn = NULL;
	int rc = 0;

	*cert_r = NULL;
	if (csr == NULL || key == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "scep: no request or key");
	if (X509_NAME_entry_count(X509_REQ_get_subject_name(csr)) > 0)
		name = X509_NAME_dup(X509_REQ_get_subject_name(csr));
	else if ((name = X509_NAME_new()) != NULL &&
	    !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC,
	    (const unsigned char *)"SCEP requester", -1, -1, 0)) {
		X509_NAME_free(name);
		name = NULL;
	}
	/* RFC 5280 4.1.2.2: a positive serial of up to 20 octets. */
	if (name == NULL || (x = X509_new()) == NULL || (bn = BN_new()) == NULL ||
	    !BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_set_version(x, X509_VERSION_3) || !X509_set_serialNumber(x, serial) ||
	    !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    !X509_set_pubkey(x, key) || X509_sign(x, key, EVP_sha256()) <= 0) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "scep: cannot make the requester's "
		    "self-signed certificate");
		goto out;
	}
	*cert_r = x;
	x = NULL;
out:
	X509_free(x);
	X509_NAME_free(name);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	return rc;
}

/* --- GetCACaps and GetCACert answers --- */

void
smime_scep_caps_parse(const char *text, size_t len, struct smime_scep_caps *caps)
{
	static const struct {
		const char *word;
		size_t off;
	} words[] = {
		{ "AES", offsetof(struct smime_scep_caps, aes) },
		{ "DES3", offsetof(struct smime_scep_caps, des3) },
		{ "SHA-1", offsetof(struct smime_scep_caps, sha1) },
		{ "SHA-256", offsetof(struct smime_scep_caps, sha256) },
		{ "SHA-512", offsetof(struct smime_scep_caps, sha512) },
		{ "POSTPKIOperation", offsetof(struct smime_scep_caps, post) },
		{ "Renewal", offsetof(struct smime_scep_caps, renewal) },
		{ "GetNextCACert", offsetof(struct smime_scep_caps, next_ca) },
		{ "SCEPStandard", offsetof(struct smime_scep_caps, standard) },
	};
	size_t i = 0, start, end;

	memset(caps, 0, sizeof(*caps));
	if (text == NULL)
		return;
	while (i < len) {
		start = i;
		while (i < len && text[i] != '\n')
			i++;
		end = i++;
		while (start < end && isspace((unsigned char)text[start]))
			start++;
		while (end > start && isspace((unsigned char)text[end - 1]))
			end--;
		/* RFC 8894 3.5.2: "The keywords are case-insensitive" */
		for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++)
			if (strlen(words[w].word) == end - start &&
			    strncasecmp(words[w].word, text + start, end - start) == 0)
				*(bool *)((char *)caps + words[w].off) = true;
	}
	/* RFC 8894 3.5.2: "SCEPStandard ... AES, POSTPKIOperation, and SHA-256" */
	if (caps->standard)
		caps->aes = caps->post = caps->sha256 = true;
}

static bool
issued_by(X509 *subject, X509 *issuer)
{
	return subject != issuer && X509_check_issued(issuer, subject) == X509_V_OK;
}

int
smime_scep_ca_certs(const unsigned char *der, size_t len, X509 **ca_r, X509 **ra_r,
    STACK_OF(X509) **all_r, struct smime_error *err)
{
	STACK_OF(X509) *certs = NULL;
	PKCS7 *p7 = NULL;
	X509 *x, *ca = NULL, *ra = NULL;
	const unsigned char *p = der;
	int i, j, n, rc = 0;

	smime_init();
	*ca_r = *ra_r = NULL;
	if (all_r != NULL)
		*all_r = NULL;
	if (der == NULL || len == 0 || len > SMIME_SCEP_MAX_MESSAGE)
		return smime_error_set(err, SMIME_E_INPUT, "GetCACert: an answer of %zu octets",
		    len);
	/* RFC 8894 4.2.1.1: one certificate, or 4.2.1.2: a degenerate
	 * certificates-only SignedData of the RA and CA certificates. */
	if ((x = d2i_X509(NULL, &p, (long)len)) != NULL && p == der + len) {
		if ((certs = sk_X509_new_null()) == NULL || !sk_X509_push(certs, x)) {
			X509_free(x);
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
	} else {
		X509_free(x);
		p = der;
		if ((p7 = d2i_PKCS7(NULL, &p, (long)len)) == NULL || p != der + len ||
		    !PKCS7_type_is_signed(p7) || p7->d.sign == NULL ||
		    (n = sk_X509_num(p7->d.sign->cert)) <= 0 || n > SMIME_SCEP_MAX_CERTS) {
			rc = smime_error_ssl(err, SMIME_E_INPUT, "RFC 8894 4.2.1: the GetCACert "
			    "answer is neither a certificate nor a certificates-only SignedData "
			    "of at most %d", SMIME_SCEP_MAX_CERTS);
			goto out;
		}
		certs = p7->d.sign->cert;
		p7->d.sign->cert = NULL;
	}
	n = sk_X509_num(certs);
	/* The RA: the first certificate that is not a CA's and that a CA of
	 * the answer issued.  The CA: its issuer; without an RA, the CA that
	 * issued no other CA of the answer (the lowest of the chain). */
	for (i = 0; i < n && ra == NULL; i++) {
		x = sk_X509_value(certs, i);
		if (X509_check_ca(x) != 0)
			continue;
		for (j = 0; j < n; j++)
			if (X509_check_ca(sk_X509_value(certs, j)) != 0 &&
			    issued_by(x, sk_X509_value(certs, j))) {
				ra = x;
				ca = sk_X509_value(certs, j);
				break;
			}
	}
	for (i = 0; i < n && ca == NULL; i++) {
		x = sk_X509_value(certs, i);
		if (X509_check_ca(x) == 0)
			continue;
		for (j = 0; j < n; j++)
			if (X509_check_ca(sk_X509_value(certs, j)) != 0 &&
			    issued_by(sk_X509_value(certs, j), x))
				break;
		if (j == n)
			ca = x;
	}
	if (ca == NULL && n == 1)
		ca = sk_X509_value(certs, 0);
	if (ca == NULL) {
		rc = smime_error_set(err, SMIME_E_INPUT, "RFC 8894 4.2.1: no CA certificate in "
		    "the GetCACert answer");
		goto out;
	}
	if (ra == NULL)
		ra = ca;
	if (!X509_up_ref(ca) || !X509_up_ref(ra)) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "certificate reference");
		goto out;
	}
	*ca_r = ca;
	*ra_r = ra;
	if (all_r != NULL) {
		*all_r = certs;
		certs = NULL;
	}
out:
	sk_X509_pop_free(certs, X509_free);
	PKCS7_free(p7);
	ERR_clear_error();
	return rc;
}

/*
 * smimed: the certification authority's decisions (ca.h).
 *
 * Subscriber certificates follow the CA/Browser Forum S/MIME Baseline
 * Requirements v1.0.1 (quoted "S/MIME BR" below) for mailbox-validated
 * certificates of the strict and multipurpose generations:
 *
 *   subject           CN = the primary address, nothing else (7.1.4.2.3)
 *   subjectAltName    every address as rfc822Name (7.1.4.2.1)
 *   keyUsage          critical; by purpose and key type (7.1.2.3 e)
 *   extKeyUsage       emailProtection only (7.1.2.3 f)
 *   basicConstraints  critical, cA FALSE (7.1.2.3 d)
 *   certificatePolicies  2.23.140.1.5.1.3 strict / .1.2 multipurpose (7.1.6.1)
 *   SKI (RFC 5280 4.2.1.2 method 1), AKI = the CA's SKI (7.1.2.3 g)
 *   cRLDistributionPoints, authorityInformationAccess: http URLs (7.1.2.3 b, c)
 *
 * Extensions are built from OpenSSL's structures, never from configuration
 * strings, so that nothing in a URL or an address is interpreted.  Every
 * certificate is checked against the CA's public key once signed, so that a
 * signer holding the wrong key for an id is found before anyone sees the
 * result.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <smime/cert.h>

#include "ca.h"

#define DAY                 86400
#define CA_ID_MAX           (STORE_NAME_SIZE - 1)
#define CA_URL_MAX          1024    /* octets of the base URL */
#define CA_MAX_CA_DAYS      9132    /* 25 years: the longest a CA certificate is made for */
#define CA_CN_MAX           64      /* RFC 5280 A.1: ub-common-name */
#define CA_ORG_MAX          64      /* RFC 5280 A.1: ub-organization-name */
#define CA_EMAIL_MAX        254     /* RFC 5321 4.5.3.1.3: a path of 256 less "<" ">" */
#define CA_LOCAL_MAX        64      /* RFC 5321 4.5.3.1.1: local-part */
#define CA_RSA_MIN_BITS     2048    /* S/MIME BR 6.1.5 */
#define CA_RSA_MAX_BITS     8192    /* ours: bounds the work a CSR can ask for */
#define CA_CRL_MAX_SECONDS  (366 * DAY)
#define CA_SERIAL_TEXT_MAX  200     /* characters ca_serial_parse reads */

/* S/MIME BR 7.1.6.1: reserved policy identifiers, mailbox-validated. */
#define OID_MAILBOX_MULTIPURPOSE "2.23.140.1.5.1.2"
#define OID_MAILBOX_STRICT       "2.23.140.1.5.1.3"

/* RFC 5280 4.2.1.3: KeyUsage bit numbers. */
enum {
	KU_BIT_DIGITAL_SIGNATURE = 0,
	KU_BIT_NON_REPUDIATION = 1,
	KU_BIT_KEY_ENCIPHERMENT = 2,
	KU_BIT_DATA_ENCIPHERMENT = 3,
	KU_BIT_KEY_AGREEMENT = 4,
	KU_BIT_KEY_CERT_SIGN = 5,
	KU_BIT_CRL_SIGN = 6,
};
#define KUB(b) (1u << (b))

enum key_kind { KIND_OTHER, KIND_RSA, KIND_EC, KIND_EDDSA };

static const struct key_alg {
	const char *name;
	size_t bits;
	const char *curve;
} key_algs[] = {
	{ "ec-p256", 0, "P-256" },
	{ "ec-p384", 0, "P-384" },
	{ "ec-p521", 0, "P-521" },
	{ "rsa-2048", 2048, NULL },
	{ "rsa-3072", 3072, NULL },
	{ "rsa-4096", 4096, NULL },
};

/* RFC 5280 5.3.1 CRLReason, by value; 7 is not used. */
static const char *const reason_names[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
	"superseded", "cessationOfOperation", "certificateHold", NULL,
	"removeFromCRL", "privilegeWithdrawn", "aACompromise",
};
#define N_REASONS ((int)(sizeof(reason_names) / sizeof(reason_names[0])))

/* --- small helpers --- */

/* store.h's names of the purposes (as cert_purpose_name, kept here so that
 * this module needs nothing of the store but its record types). */
static const char *
purpose_name(enum cert_purpose p)
{
	switch (p) {
	case PURPOSE_SIGNING:
		return "signing";
	case PURPOSE_ENCRYPTION:
		return "encryption";
	case PURPOSE_DUAL:
		return "dual";
	}
	return "unknown";
}

static const struct key_alg *
key_alg_find(const char *alg)
{
	size_t i;

	for (i = 0; alg != NULL && i < sizeof(key_algs) / sizeof(key_algs[0]); i++)
		if (strcmp(alg, key_algs[i].name) == 0)
			return &key_algs[i];
	return NULL;
}

bool
ca_key_alg_valid(const char *alg)
{
	return key_alg_find(alg) != NULL;
}

static enum key_kind
key_kind(EVP_PKEY *key)
{
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		return KIND_RSA;
	case EVP_PKEY_EC:
		return KIND_EC;
	case EVP_PKEY_ED25519:
	case EVP_PKEY_ED448:
		return KIND_EDDSA;
	}
	return KIND_OTHER;
}

/* Seconds since the epoch of an ASN1_TIME. */
static int
time_get(const ASN1_TIME *t, int64_t *r)
{
	struct tm tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return -1;
	*r = (int64_t)timegm(&tm);
	return 0;
}

/*
 * CA certificates parsed once: every issuance and CRL needs its CA's, and
 * OpenSSL 3.0 decodes the key of each parse through its slow decoders.
 * Keyed by the DER itself, so a changed CA row is a miss, never stale.
 */
#define CA_CACHE_SLOTS 16
static struct {
	unsigned char *der;
	size_t len;
	X509 *cert;
} ca_cache[CA_CACHE_SLOTS];
static size_t ca_cache_next;
static pthread_mutex_t ca_cache_lock = PTHREAD_MUTEX_INITIALIZER;

X509 *
ca_cert_cached(const unsigned char *der, size_t len)
{
	X509 *cert = NULL;

	pthread_mutex_lock(&ca_cache_lock);
	for (size_t i = 0; i < CA_CACHE_SLOTS; i++)
		if (ca_cache[i].cert != NULL && ca_cache[i].len == len &&
		    memcmp(ca_cache[i].der, der, len) == 0) {
			cert = ca_cache[i].cert;
			X509_up_ref(cert);
			break;
		}
	pthread_mutex_unlock(&ca_cache_lock);
	if (cert != NULL)
		return cert;
	if ((cert = ca_cert_parse(der, len)) == NULL)
		return NULL;
	/* Fill the extension cache now, while this thread alone holds it. */
	(void)X509_get0_subject_key_id(cert);
	unsigned char *copy = malloc(len);
	if (copy == NULL)
		return cert;
	memcpy(copy, der, len);
	pthread_mutex_lock(&ca_cache_lock);
	size_t slot = ca_cache_next++ % CA_CACHE_SLOTS;
	X509_free(ca_cache[slot].cert);
	free(ca_cache[slot].der);
	ca_cache[slot].der = copy;
	ca_cache[slot].len = len;
	ca_cache[slot].cert = cert;
	X509_up_ref(cert);
	pthread_mutex_unlock(&ca_cache_lock);
	return cert;
}

/* The certificate in der[len]: all of it, nothing after. */
X509 *
ca_cert_parse(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509 *cert;

	if (der == NULL || len == 0 || len > LONG_MAX)
		return NULL;
	if ((cert = d2i_X509(NULL, &p, (long)len)) != NULL && p != der + len) {
		X509_free(cert);
		cert = NULL;
	}
	return cert;
}

/* DER of cert into a malloc'ed buffer (store records are freed with free()). */
static int
cert_to_der(X509 *cert, unsigned char **der_r, size_t *len_r, struct smime_error *err)
{
	unsigned char *der, *p;
	int len;

	*der_r = NULL;
	*len_r = 0;
	if ((len = i2d_X509(cert, NULL)) <= 0)
		return smime_error_ssl(err, SMIME_E_INTERNAL, "certificate encoding");
	if ((der = malloc((size_t)len)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	p = der;
	if (i2d_X509(cert, &p) != len) {
		free(der);
		return smime_error_ssl(err, SMIME_E_INTERNAL, "certificate encoding");
	}
	*der_r = der;
	*len_r = (size_t)len;
	return 0;
}

/* CA ids (store.h): a slug of 1 to 64 characters [a-z0-9-]. */
static int
id_check(const char *what, const char *id, struct smime_error *err)
{
	size_t i, n;

	if (id == NULL || (n = strnlen(id, CA_ID_MAX + 1)) == 0 || n > CA_ID_MAX)
		return smime_error_set(err, SMIME_E_USAGE, "%s: an id has 1 to %d characters",
		    what, CA_ID_MAX);
	for (i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') ||
		    id[i] == '-'))
			return smime_error_set(err, SMIME_E_USAGE,
			    "%s: an id is made of a-z, 0-9 and '-'", what);
	return 0;
}

/*
 * The service's base URL, without trailing slashes, into out.
 *
 * S/MIME BR 7.1.2.3 (b): for the strict and multipurpose generations
 * "Every uniformResourceIdentifier SHALL have the URI scheme HTTP"; (c) the
 * same for every authorityInformationAccess accessMethod.  An https:// base
 * (the service's own default under TLS) is taken all the same, as the URLs
 * must be the service's; an installation that holds to the BR sets its
 * public URL to http:// (the CRL, certificates and OCSP answers are signed
 * and need no TLS).
 */
static int
base_url(const char *base, char out[CA_URL_MAX], struct smime_error *err)
{
	size_t i, n, scheme;

	if (base == NULL || (n = strnlen(base, CA_URL_MAX)) == CA_URL_MAX)
		return smime_error_set(err, SMIME_E_USAGE, "base URL: missing or longer than %d",
		    CA_URL_MAX - 1);
	if (strncmp(base, "http://", 7) == 0)
		scheme = 7;
	else if (strncmp(base, "https://", 8) == 0)
		scheme = 8;
	else
		return smime_error_set(err, SMIME_E_USAGE, "base URL %s: S/MIME BR 7.1.2.3 (b), "
		    "(c): CRL and AIA URLs have the scheme http", base);
	for (i = 0; i < n; i++)
		if (base[i] <= 0x20 || base[i] >= 0x7f || base[i] == '"' || base[i] == '<' ||
		    base[i] == '>' || base[i] == '\\')
			return smime_error_set(err, SMIME_E_USAGE,
			    "base URL: a character RFC 3986 does not allow");
	while (n > scheme && base[n - 1] == '/')
		n--;
	if (n <= scheme)
		return smime_error_set(err, SMIME_E_USAGE, "base URL %s: no host", base);
	memcpy(out, base, n);
	out[n] = '\0';
	return 0;
}

/* --- certificate parts --- */

/*
 * S/MIME BR 7.1: "CAs SHALL generate non-sequential Certificate serial
 * numbers greater than zero (0) and less than 2^159 containing at least 64
 * bits of output from a CSPRNG."  CA_SERIAL_OCTETS random octets with the
 * top bit cleared: positive, below 2^127, 127 random bits.
 */
static int
serial_random(X509 *cert, struct smime_error *err)
{
	unsigned char buf[CA_SERIAL_OCTETS];
	ASN1_INTEGER *serial = NULL;
	BIGNUM *bn = NULL;
	size_t i;
	int rc = 0;

	for (;;) {
		if (RAND_bytes(buf, sizeof(buf)) != 1)
			return smime_error_ssl(err, SMIME_E_CRYPTO, "serial number: random octets");
		buf[0] &= 0x7f;
		for (i = 0; i < sizeof(buf) && buf[i] == 0; i++)
			;
		if (i < sizeof(buf))
			break;
	}
	if ((bn = BN_bin2bn(buf, sizeof(buf), NULL)) == NULL ||
	    (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_set_serialNumber(cert, serial))
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "serial number");
	BN_free(bn);
	ASN1_INTEGER_free(serial);
	return rc;
}

/* Put the encoded SubjectPublicKeyInfo spki into cert as it is. */
static int
spki_copy(X509 *cert, const X509_PUBKEY *spki)
{
	ASN1_OBJECT *obj;
	const unsigned char *bits;
	int len, ptype;
	X509_ALGOR *alg;
	const void *pval;
	ASN1_OBJECT *obj2 = NULL;
	void *pval2 = NULL;
	unsigned char *bits2 = NULL;

	if (!X509_PUBKEY_get0_param(&obj, &bits, &len, &alg, (X509_PUBKEY *)spki))
		return 0;
	X509_ALGOR_get0(NULL, &ptype, &pval, alg);
	if ((obj2 = OBJ_dup(obj)) == NULL || (bits2 = OPENSSL_memdup(bits, (size_t)len)) == NULL)
		goto fail;
	if (ptype == V_ASN1_OBJECT) {
		if ((pval2 = OBJ_dup(pval)) == NULL)
			goto fail;
	} else if (ptype == V_ASN1_SEQUENCE) {
		if ((pval2 = ASN1_STRING_dup(pval)) == NULL)
			goto fail;
	} else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
		goto fail;
	if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), obj2, ptype, pval2, bits2, len))
		goto fail;
	return 1;
fail:
	ASN1_OBJECT_free(obj2);
	if (ptype == V_ASN1_OBJECT)
		ASN1_OBJECT_free(pval2);
	else
		ASN1_STRING_free(pval2);
	OPENSSL_free(bits2);
	return 0;
}

/* Version, serial, names, validity and key of a new certificate. */
static int
cert_begin(X509 *cert, const X509_NAME *issuer, const X509_NAME *subject, int64_t not_before,
    int64_t not_after, EVP_PKEY *pub, const X509_PUBKEY *spki, struct smime_error *err)
{
	int rc;

	/* S/MIME BR 7.1.1: "Certificates SHALL be of type X.509 v3." */
	if (!X509_set_version(cert, X509_VERSION_3))
		return smime_error_ssl(err, SMIME_E_INTERNAL, "certificate version");
	if ((rc = serial_random(cert, err)) != 0)
		return rc;
	/* RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050
	 * (ASN1_TIME_set chooses so). */
	if (!X509_set_issuer_name(cert, issuer) || !X509_set_subject_name(cert, subject) ||
	    ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)not_after) == NULL ||
	    !(spki != NULL ? spki_copy(cert, spki) : X509_set_pubkey(cert, pub)))
		return smime_error_ssl(err, SMIME_E_INTERNAL, "certificate fields");
	return 0;
}

static int
ext_add(X509 *cert, int nid, void *value, bool critical, struct smime_error *err)
{
	if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1)
		return smime_error_ssl(err, SMIME_E_INTERNAL, "extension %s", OBJ_nid2sn(nid));
	return 0;
}

static GENERAL_NAME *
gn_ia5(int type, const char *s)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *v = ASN1_IA5STRING_new();

	if (gn == NULL || v == NULL || !ASN1_STRING_set(v, s, (int)strlen(s))) {
		GENERAL_NAME_free(gn);
		ASN1_IA5STRING_free(v);
		return NULL;
	}
	GENERAL_NAME_set0_value(gn, type, v);
	return gn;
}

/* RFC 5280 4.2.1.9 */
static int
add_basic_constraints(X509 *cert, bool ca, long pathlen, struct smime_error *err)
{
	BASIC_CONSTRAINTS *bc;
	int rc;

	if ((bc = BASIC_CONSTRAINTS_new()) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	bc->ca = ca ? 0xff : 0;
	if (pathlen >= 0 && ((bc->pathlen = ASN1_INTEGER_new()) == NULL ||
	    !ASN1_INTEGER_set(bc->pathlen, pathlen))) {
		BASIC_CONSTRAINTS_free(bc);
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	rc = ext_add(cert, NID_basic_constraints, bc, true, err);
	BASIC_CONSTRAINTS_free(bc);
	return rc;
}

/* RFC 5280 4.2.1.3; bits is a mask of KUB(KU_BIT_...). */
static int
add_key_usage(X509 *cert, unsigned bits, struct smime_error *err)
{
	ASN1_BIT_STRING *ku;
	int i, rc;

	if ((ku = ASN1_BIT_STRING_new()) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	for (i = 0; i < 9; i++)
		if ((bits & KUB(i)) && !ASN1_BIT_STRING_set_bit(ku, i, 1)) {
			ASN1_BIT_STRING_free(ku);
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		}
	rc = ext_add(cert, NID_key_usage, ku, true, err);
	ASN1_BIT_STRING_free(ku);
	return rc;
}

/* RFC 5280 4.2.1.12: id-kp-emailProtection, the only purpose this CA issues for. */
static int
add_eku_email(X509 *cert, struct smime_error *err)
{
	EXTENDED_KEY_USAGE *eku;
	int rc;

	if ((eku = sk_ASN1_OBJECT_new_null()) == NULL ||
	    !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_email_protect))) {
		sk_ASN1_OBJECT_free(eku);
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	rc = ext_add(cert, NID_ext_key_usage, eku, false, err);
	sk_ASN1_OBJECT_free(eku);
	return rc;
}

/* RFC 5280 4.2.1.4: certificatePolicies with the policy identifiers given. */
static int
add_policies(X509 *cert, const char *const *oids, size_t n, struct smime_error *err)
{
	CERTIFICATEPOLICIES *cp;
	POLICYINFO *pi = NULL;
	size_t i;
	int rc = 0;

	if ((cp = sk_POLICYINFO_new_null()) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	for (i = 0; i < n; i++) {
		if ((pi = POLICYINFO_new()) == NULL)
			goto oom;
		ASN1_OBJECT_free(pi->policyid);
		if ((pi->policyid = OBJ_txt2obj(oids[i], 1)) == NULL ||
		    !sk_POLICYINFO_push(cp, pi))
			goto oom;
		pi = NULL;
	}
	rc = ext_add(cert, NID_certificate_policies, cp, false, err);
	goto out;
oom:
	rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
out:
	POLICYINFO_free(pi);
	CERTIFICATEPOLICIES_free(cp);
	return rc;
}

/*
 * RFC 5280 4.2.1.2 (1): "The keyIdentifier is composed of the 160-bit SHA-1
 * hash of the value of the BIT STRING subjectPublicKey (excluding the tag,
 * length, and number of unused bits)."  X509_pubkey_digest hashes exactly
 * that.
 */
static int
add_ski(X509 *cert, ASN1_OCTET_STRING **ski_r, struct smime_error *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	ASN1_OCTET_STRING *ski;
	int rc;

	if (!X509_pubkey_digest(cert, EVP_sha1(), md, &len))
		return smime_error_ssl(err, SMIME_E_INTERNAL, "subject key identifier");
	if ((ski = ASN1_OCTET_STRING_new()) == NULL || !ASN1_OCTET_STRING_set(ski, md, (int)len)) {
		ASN1_OCTET_STRING_free(ski);
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	rc = ext_add(cert, NID_subject_key_identifier, ski, false, err);
	/* The certificate's cached extensions are not brought up to date while
	 * it is built: a self-signed one takes its AKI from here. */
	if (rc == 0 && ski_r != NULL) {
		*ski_r = ski;
		ski = NULL;
	}
	ASN1_OCTET_STRING_free(ski);
	return rc;
}

/*
 * S/MIME BR 7.1.2.3 (g): "The keyIdentifier field SHALL be present.
 * authorityCertIssuer and authorityCertSerialNumber fields SHALL NOT be
 * present."  keyid is the issuer's subject key identifier.
 */
static int
add_aki(X509 *cert, const ASN1_OCTET_STRING *keyid, struct smime_error *err)
{
	AUTHORITY_KEYID *akid;
	int rc;

	if ((akid = AUTHORITY_KEYID_new()) == NULL ||
	    (akid->keyid = ASN1_OCTET_STRING_dup(keyid)) == NULL) {
		AUTHORITY_KEYID_free(akid);
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	rc = ext_add(cert, NID_authority_key_identifier, akid, false, err);
	AUTHORITY_KEYID_free(akid);
	return rc;
}

/* RFC 5280 4.2.1.13: one DistributionPoint with a fullName URI. */
static int
add_crl_dp(X509 *cert, const char *url, struct smime_error *err)
{
	CRL_DIST_POINTS *dps;
	DIST_POINT *dp = NULL;
	GENERAL_NAME *gn = NULL;
	int rc;

	if ((dps = sk_DIST_POINT_new_null()) == NULL || (dp = DIST_POINT_new()) == NULL ||
	    (dp->distpoint = DIST_POINT_NAME_new()) == NULL ||
	    (dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null()) == NULL)
		goto oom;
	dp->distpoint->type = 0;
	if ((gn = gn_ia5(GEN_URI, url)) == NULL ||
	    !sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gn))
		goto oom;
	gn = NULL;
	if (!sk_DIST_POINT_push(dps, dp))
		goto oom;
	dp = NULL;
	rc = ext_add(cert, NID_crl_distribution_points, dps, false, err);
	goto out;
oom:
	rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
out:
	GENERAL_NAME_free(gn);
	DIST_POINT_free(dp);
	CRL_DIST_POINTS_free(dps);
	return rc;
}

static int
aia_push(AUTHORITY_INFO_ACCESS *aia, int method, const char *url)
{
	ACCESS_DESCRIPTION *ad;

	if ((ad = ACCESS_DESCRIPTION_new()) == NULL)
		return -1;
	ASN1_OBJECT_free(ad->method);
	ad->method = OBJ_nid2obj(method);
	GENERAL_NAME_free(ad->location);
	if ((ad->location = gn_ia5(GEN_URI, url)) == NULL ||
	    !sk_ACCESS_DESCRIPTION_push(aia, ad)) {
		ACCESS_DESCRIPTION_free(ad);
		return -1;
	}
	return 0;
}

/* RFC 5280 4.2.2.1: caIssuers and OCSP of the issuing CA. */
static int
add_aia(X509 *cert, const char *ca_url, const char *ocsp_url, struct smime_error *err)
{
	AUTHORITY_INFO_ACCESS *aia;
	int rc;

	if ((aia = sk_ACCESS_DESCRIPTION_new_null()) == NULL ||
	    (ocsp_url != NULL && aia_push(aia, NID_ad_OCSP, ocsp_url) != 0) ||
	    aia_push(aia, NID_ad_ca_issuers, ca_url) != 0) {
		AUTHORITY_INFO_ACCESS_free(aia);
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	rc = ext_add(cert, NID_info_access, aia, false, err);
	AUTHORITY_INFO_ACCESS_free(aia);
	return rc;
}

/*
 * CRL DP and AIA of issuer_id.  ocsp: name the OCSP responder too; CA
 * certificates do not, because the responder answers for the certificates
 * in the store, and the CRL of the parent is what revokes a CA.
 */
static int
add_issuer_urls(X509 *cert, const char *base, const char *issuer_id, bool ocsp_too,
    struct smime_error *err)
{
	char crl[CA_URL_MAX + 80], crt[CA_URL_MAX + 80], ocsp[CA_URL_MAX + 80];
	int rc;

	snprintf(crl, sizeof(crl), "%s/crl/%s.crl", base, issuer_id);
	snprintf(crt, sizeof(crt), "%s/ca/%s.crt", base, issuer_id);
	snprintf(ocsp, sizeof(ocsp), "%s/ocsp/%s", base, issuer_id);
	if ((rc = add_crl_dp(cert, crl, err)) != 0)
		return rc;
	return add_aia(cert, crt, ocsp_too ? ocsp : NULL, err);
}

static int
add_san_emails(X509 *cert, char *const *emails, size_t n, bool critical,
    struct smime_error *err)
{
	GENERAL_NAMES *gens;
	GENERAL_NAME *gn;
	size_t i, j;
	int rc;

	if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	for (i = 0; i < n; i++) {
		for (j = 0; j < i && strcasecmp(emails[i], emails[j]) != 0; j++)
			;
		if (j < i)
			continue;	/* the same address twice */
		if ((gn = gn_ia5(GEN_EMAIL, emails[i])) == NULL ||
		    !sk_GENERAL_NAME_push(gens, gn)) {
			GENERAL_NAME_free(gn);
			GENERAL_NAMES_free(gens);
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		}
	}
	rc = ext_add(cert, NID_subject_alt_name, gens, critical, err);
	GENERAL_NAMES_free(gens);
	return rc;
}

/*
 * S/MIME BR 7.1.3.1: "No other encodings are permitted" for the
 * subjectPublicKeyInfo algorithm: checked on what OpenSSL wrote, byte for
 * byte, before the certificate is signed.
 */
static int
spki_lint(X509 *cert, struct smime_error *err)
{
	static const struct {
		const char *hex;
	} allowed[] = {
		{ "300d06092a864886f70d0101010500" },             /* 7.1.3.1.1 rsaEncryption */
		{ "301306072a8648ce3d020106082a8648ce3d030107" }, /* 7.1.3.1.2 P-256 */
		{ "301006072a8648ce3d020106052b81040022" },       /* P-384 */
		{ "301006072a8648ce3d020106052b81040023" },       /* P-521 */
		{ "300506032b6570" },                             /* 7.1.3.1.3 Ed25519 */
		{ "300506032b6571" },                             /* Ed448 */
	};
	static const char hexdig[] = "0123456789abcdef";
	X509_ALGOR *alg = NULL;
	unsigned char *der = NULL;
	char hex[2 * 32 + 1];
	size_t i;
	int len;

	if (!X509_PUBKEY_get0_param(NULL, NULL, NULL, &alg, X509_get_X509_PUBKEY(cert)) ||
	    (len = i2d_X509_ALGOR(alg, &der)) <= 0)
		return smime_error_ssl(err, SMIME_E_INTERNAL, "subjectPublicKeyInfo");
	if (len > 32)
		len = 32;
	for (i = 0; i < (size_t)len; i++) {
		hex[2 * i] = hexdig[der[i] >> 4];
		hex[2 * i + 1] = hexdig[der[i] & 0xf];
	}
	hex[2 * len] = '\0';
	OPENSSL_free(der);
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (strcmp(hex, allowed[i].hex) == 0)
			return 0;
	return smime_error_set(err, SMIME_E_POLICY, "S/MIME BR 7.1.3.1: subjectPublicKeyInfo "
	    "algorithm %s is not one of the permitted encodings", hex);
}

/* Sign cert with key_id, then check it against the issuer's public key. */
static int
cert_sign(struct signer *sg, const char *key_id, X509 *cert, EVP_PKEY *issuer_pub,
    struct smime_error *err)
{
	int rc;

	if ((rc = signer_sign_cert(sg, key_id, cert, err)) != 0)
		return rc;
	if (X509_verify(cert, issuer_pub) != 1)
		return smime_error_ssl(err, SMIME_E_INTERNAL, "the signer's key %s is not the "
		    "one of its CA certificate", key_id);
	return 0;
}

/* --- subscriber keys --- */

static int
no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf; (void)size; (void)rwflag; (void)u;
	return -1;
}

static int
public_check(EVP_PKEY *pub)
{
	EVP_PKEY_CTX *ctx;
	int ok;

	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL)) == NULL)
		return 0;
	ok = EVP_PKEY_public_check(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* S/MIME BR 6.1.5, 6.1.6 for an RSA key. */
static int
rsa_policy(EVP_PKEY *pub, struct smime_error *err)
{
	BIGNUM *e = NULL;
	int bits, rc = 0;

	bits = EVP_PKEY_get_bits(pub);
	/* 6.1.5: "Ensure that the modulus size, when encoded, is at least 2048 bits" */
	if (bits < CA_RSA_MIN_BITS)
		return smime_error_set(err, SMIME_E_POLICY, "weak key: an RSA modulus of %d "
		    "bits; S/MIME BR 6.1.5 requires at least %d", bits, CA_RSA_MIN_BITS);
	if (bits > CA_RSA_MAX_BITS)
		return smime_error_set(err, SMIME_E_POLICY, "key not allowed: an RSA modulus of "
		    "%d bits; this CA takes at most %d", bits, CA_RSA_MAX_BITS);
	/* 6.1.5: "Ensure that the modulus size, in bits, is evenly divisible by 8" */
	if (bits % 8 != 0)
		return smime_error_set(err, SMIME_E_POLICY, "weak key: an RSA modulus of %d "
		    "bits; S/MIME BR 6.1.5: the size SHALL be divisible by 8", bits);
	/* 6.1.6: "the public exponent is an odd number equal to 3 or more" */
	if (!EVP_PKEY_get_bn_param(pub, "e", &e))
		return smime_error_ssl(err, SMIME_E_INPUT, "RSA key without an exponent");
	if (!BN_is_odd(e) || BN_num_bits(e) < 2) {
		rc = smime_error_set(err, SMIME_E_POLICY, "weak key: S/MIME BR 6.1.6: the RSA "
		    "public exponent SHALL be odd and at least 3");
		goto out;
	}
	rc = ca_rsa_public_check(pub, err);
out:
	BN_free(e);
	return rc;
}

static uint64_t
mod_pow(uint64_t b, uint64_t e, uint64_t m)
{
	uint64_t r = 1;

	b %= m;
	for (; e > 0; e >>= 1) {
		if (e & 1)
			r = r * b % m;
		b = b * b % m;
	}
	return r;
}

static bool
small_prime(uint64_t q)
{
	if (q < 2 || (q % 2 == 0 && q != 2))
		return false;
	for (uint64_t d = 3; d * d <= q; d += 2)
		if (q % d == 0)
			return false;
	return true;
}

/*
 * False when n cannot be a k-th power: modulo a prime q = 1 (mod k) only
 * one residue in k is a k-th power (Euler: r^((q-1)/k) = 1).  Eight such
 * primes leave a modulus that is no k-th power a chance of at most 1/2^8
 * to be sent on to the root.  True means "maybe".
 */
#define RESIDUE_K_MAX (CA_RSA_MAX_BITS / 9)  /* the largest k ca_rsa_public_check asks */
#define RESIDUE_PRIMES 8
#define TRIAL_LIMIT 752                      /* S/MIME BR 6.1.6: "factors smaller than 752" */
#define PACK_MAX 512
/* Room for every odd prime below TRIAL_LIMIT and every prime k: a table
 * cut short would skip a factor. */
_Static_assert(PACK_MAX >= TRIAL_LIMIT / 2 && PACK_MAX >= RESIDUE_K_MAX / 2,
    "PACK_MAX holds fewer primes than the checks need");

/*
 * Small primes multiplied together in products that fit a BN_ULONG, so
 * that one BN_mod_word over the modulus gives the residues of several
 * (n mod (q1 q2 ...) mod qi = n mod qi): some 35 divisions of the modulus
 * instead of 450.
 */
struct packed {
	BN_ULONG product;
	unsigned first, n;                   /* the primes q[first..first+n) */
};

struct residue_tables {
	/* For each k, the first RESIDUE_PRIMES primes q > 751 with q = 1 (mod k). */
	uint32_t q[RESIDUE_K_MAX + 1][RESIDUE_PRIMES];
	/* The odd primes below TRIAL_LIMIT, and their products. */
	uint32_t trial[PACK_MAX];
	struct packed trial_pack[PACK_MAX];
	unsigned n_trial, n_trial_pack;
	/* The prime k from 3 up (k = 2 first), each with its first q, packed. */
	uint32_t k[PACK_MAX], first_q[PACK_MAX];
	struct packed first_pack[PACK_MAX];
	unsigned n_k, n_first_pack;
};

static struct residue_tables residue;
static pthread_once_t residue_once = PTHREAD_ONCE_INIT;

static unsigned
pack(const uint32_t *q, unsigned n, struct packed *out)
{
	unsigned n_out = 0;

	for (unsigned i = 0; i < n; n_out++) {
		BN_ULONG m = 1;

		out[n_out].first = i;
		while (i < n && m <= ((BN_ULONG)-1 >> 1) / q[i])
			m *= q[i++];
		out[n_out].product = m;
		out[n_out].n = i - out[n_out].first;
	}
	return n_out;
}

static void
residue_init(void)
{
	struct residue_tables *t = &residue;

	for (unsigned k = 2; k <= RESIDUE_K_MAX; k++) {
		int found = 0;

		for (uint64_t q = 2 * (uint64_t)k + 1; found < RESIDUE_PRIMES && q < (1u << 24);
		    q += 2 * k)
			if (q >= TRIAL_LIMIT && small_prime(q))
				t->q[k][found++] = (uint32_t)q;
		if (small_prime(k) && t->n_k < PACK_MAX && t->q[k][0] != 0) {
			t->k[t->n_k] = k;
			t->first_q[t->n_k++] = t->q[k][0];
		}
	}
	for (uint32_t w = 3; w < TRIAL_LIMIT && t->n_trial < PACK_MAX; w += 2)
		if (small_prime(w))
			t->trial[t->n_trial++] = w;
	t->n_trial_pack = pack(t->trial, t->n_trial, t->trial_pack);
	t->n_first_pack = pack(t->first_q, t->n_k, t->first_pack);
}

/* r[i] = n mod q[i] for every prime of the packs p[0..np) up to the
 * (upto)th; false on an error. */
static bool
residues(const BIGNUM *n, const struct packed *p, unsigned np, const uint32_t *q,
    unsigned upto, uint32_t *r)
{
	for (unsigned i = 0; i < np && p[i].first < upto; i++) {
		BN_ULONG m = BN_mod_word(n, p[i].product);

		if (m == (BN_ULONG)-1)
			return false;
		for (unsigned j = p[i].first; j < p[i].first + p[i].n; j++)
			r[j] = (uint32_t)(m % q[j]);
	}
	return true;
}

/* r0: n modulo the first q of k, which the caller has. */
static bool
maybe_power(const BIGNUM *n, unsigned k, uint32_t r0)
{
	if (k > RESIDUE_K_MAX)
		return true;
	for (int i = 0; i < RESIDUE_PRIMES && residue.q[k][i] != 0; i++) {
		uint64_t q = residue.q[k][i];
		BN_ULONG r = i == 0 ? r0 : BN_mod_word(n, (BN_ULONG)q);

		if (r == (BN_ULONG)-1 || r == 0)
			return true;
		if (mod_pow(r, (q - 1) / k, q) != 1)
			return false;
	}
	return true;
}

/* True when n is a perfect k-th power (k >= 2, n > 1): floor(n^(1/k))^k == n. */
static bool
perfect_power(const BIGNUM *n, unsigned k, BN_CTX *ctx, bool *error_r)
{
	BIGNUM *x, *y, *t, *q, *kk, *km1;
	double log2n, l;
	uint64_t top;
	int bits = BN_num_bits(n), shift;
	bool yes = false;

	BN_CTX_start(ctx);
	x = BN_CTX_get(ctx);
	y = BN_CTX_get(ctx);
	t = BN_CTX_get(ctx);
	q = BN_CTX_get(ctx);
	kk = BN_CTX_get(ctx);
	km1 = BN_CTX_get(ctx);
	if (km1 == NULL || !BN_set_word(kk, k) || !BN_set_word(km1, k - 1))
		goto fail;
	/* log2(n) from its top 63 bits: a root estimate good to ~50 bits. */
	shift = bits > 63 ? bits - 63 : 0;
	if (!BN_rshift(t, n, shift))
		goto fail;
	top = (uint64_t)BN_get_word(t);
	log2n = log2((double)top) + shift;
	l = log2n / k;
	if (l < 45) {
		/* A root below 2^45: the estimate is within one of it. */
		uint64_t r = (uint64_t)exp2(l);

		for (uint64_t c = r > 2 ? r - 2 : 1; c <= r + 2 && !yes; c++) {
			if (!BN_set_word(x, c) || !BN_exp(y, x, kk, ctx))
				goto fail;
			yes = BN_cmp(y, n) == 0;
		}
		BN_CTX_end(ctx);
		return yes;
	}
	/* Newton from above: x0 = the estimate's 50 leading bits, plus a margin. */
	{
		int e2 = l > 50 ? (int)l - 50 : 0;
		uint64_t m = (uint64_t)exp2(l - e2) + 4;

		if (!BN_set_word(x, m) || !BN_lshift(x, x, e2))
			goto fail;
	}
	/* An underestimate would end Newton early: make sure x0^k > n. */
	for (int guard = 0; guard < 4; guard++) {
		if (!BN_exp(t, x, kk, ctx))
			goto fail;
		if (BN_cmp(t, n) > 0)
			break;
		if (!BN_lshift1(x, x))
			goto fail;
	}
	/* x <- ((k-1) x + n / x^(k-1)) / k while it decreases: floor(n^(1/k)). */
	for (int iter = 0; iter < 4096; iter++) {
		if (!BN_exp(t, x, km1, ctx) || !BN_div(q, NULL, n, t, ctx) ||
		    !BN_mul(y, x, km1, ctx) || !BN_add(y, y, q) || !BN_div(y, NULL, y, kk, ctx))
			goto fail;
		if (BN_cmp(y, x) >= 0)
			break;
		if (!BN_copy(x, y))
			goto fail;
	}
	if (!BN_exp(t, x, kk, ctx))
		goto fail;
	yes = BN_cmp(t, n) == 0;
	BN_CTX_end(ctx);
	return yes;
fail:
	*error_r = true;
	BN_CTX_end(ctx);
	return false;
}

/*
 * S/MIME BR 6.1.6: the exponent "SHOULD be in the range between 2^16 + 1
 * and 2^256 - 1.  The modulus SHOULD also have the following
 * characteristics: an odd number, not the power of a prime, and have no
 * factors smaller than 752."  This CA holds to the SHOULDs, each tested
 * as it is stated: trial division by the odd numbers below 752, and no
 * k-th root for any prime k up to the modulus's bits / 9 (a prime power
 * p^k without a factor below 752 has p > 2^9), the root sought only when
 * n is a k-th power residue modulo eight primes q = 1 (mod k).  OpenSSL's SP 800-56B check
 * answers the same questions with a Miller-Rabin round that costs several
 * RSA private-key operations; this costs a small part of one.
 */
int
ca_rsa_public_check(EVP_PKEY *pub, struct smime_error *err)
{
	uint32_t r[PACK_MAX];
	unsigned n_k = 0;
	BIGNUM *n = NULL, *e = NULL;
	BN_CTX *ctx = NULL;
	bool error = false;
	int bits, rc = 0;

	if (!EVP_PKEY_get_bn_param(pub, "n", &n) || !EVP_PKEY_get_bn_param(pub, "e", &e)) {
		rc = smime_error_ssl(err, SMIME_E_INPUT, "an RSA key without modulus or exponent");
		goto out;
	}
	if (BN_cmp(e, BN_value_one()) <= 0 || BN_num_bits(e) > 256 ||
	    (BN_num_bits(e) <= 17 && BN_get_word(e) < 65537) || !BN_is_odd(e)) {
		rc = smime_error_set(err, SMIME_E_POLICY, "weak key: S/MIME BR 6.1.6: the RSA "
		    "public exponent should be odd, from 2^16+1 to 2^256-1");
		goto out;
	}
	if (!BN_is_odd(n)) {
		rc = smime_error_set(err, SMIME_E_POLICY, "weak key: S/MIME BR 6.1.6: the RSA "
		    "modulus is even");
		goto out;
	}
	/* The smallest factor is a prime: the primes below 752 tell all. */
	pthread_once(&residue_once, residue_init);
	if (!residues(n, residue.trial_pack, residue.n_trial_pack, residue.trial, residue.n_trial,
	    r)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "RSA modulus check");
		goto out;
	}
	for (unsigned i = 0; i < residue.n_trial; i++)
		if (r[i] == 0) {
			rc = smime_error_set(err, SMIME_E_POLICY, "weak key: S/MIME BR 6.1.6: the "
			    "RSA modulus has the factor %u, below 752", residue.trial[i]);
			goto out;
		}
	if ((ctx = BN_CTX_new()) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	bits = BN_num_bits(n);
	while (n_k < residue.n_k && residue.k[n_k] <= (unsigned)bits / 9)
		n_k++;
	if (!residues(n, residue.first_pack, residue.n_first_pack, residue.first_q, n_k, r)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "RSA modulus check");
		goto out;
	}
	for (unsigned k = 2, i = 0; k <= (unsigned)bits / 9; k++) {
		bool prime = true;
		uint32_t r0;

		for (unsigned d = 2; d * d <= k && prime; d++)
			prime = k % d != 0;
		if (!prime)
			continue;
		/* The table holds the prime k in order; one missing from it
		 * (none is) would get r0 = 0, "maybe", and the exact test. */
		while (i < residue.n_k && residue.k[i] < k)
			i++;
		r0 = i < n_k && residue.k[i] == k ? r[i] : 0;
		if (!maybe_power(n, k, r0))
			continue;
		if (perfect_power(n, k, ctx, &error)) {
			rc = smime_error_set(err, SMIME_E_POLICY, "weak key: S/MIME BR 6.1.6: the "
			    "RSA modulus is a perfect %u-th power", k);
			goto out;
		}
		if (error) {
			rc = smime_error_ssl(err, SMIME_E_INTERNAL, "RSA modulus check");
			goto out;
		}
	}
out:
	BN_free(n);
	BN_free(e);
	BN_CTX_free(ctx);
	return rc;
}

/*
 * S/MIME BR 6.1.5: RSA, ECDSA on "NIST P-256, NIST P-384, or NIST P-521",
 * EdDSA on curve25519 or curve448; "No other algorithms or key sizes are
 * permitted."  7.1.2.3 (e): an EdDSA key only signs, so it is refused in
 * an encryption or dual-use certificate.
 */
static int
key_policy(X509_PUBKEY *xpk, EVP_PKEY *pub, enum cert_purpose purpose,
    struct smime_error *err)
{
	ASN1_OBJECT *alg_obj = NULL;
	X509_ALGOR *palg = NULL;
	const void *pval = NULL;
	int ptype = 0, nid;

	if (!X509_PUBKEY_get0_param(&alg_obj, NULL, NULL, &palg, xpk))
		return smime_error_ssl(err, SMIME_E_INPUT, "CSR: subjectPKInfo");
	switch ((nid = OBJ_obj2nid(alg_obj))) {
	case NID_rsaEncryption:
		if (key_kind(pub) != KIND_RSA)
			break;
		return rsa_policy(pub, err);
	case NID_X9_62_id_ecPublicKey:
		X509_ALGOR_get0(NULL, &ptype, &pval, palg);
		/* 7.1.3.1.2: "The parameters SHALL use the namedCurve encoding." */
		if (ptype != V_ASN1_OBJECT)
			return smime_error_set(err, SMIME_E_POLICY, "key not allowed: S/MIME BR "
			    "7.1.3.1.2: EC parameters SHALL be a namedCurve");
		nid = OBJ_obj2nid(pval);
		if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1 && nid != NID_secp521r1)
			return smime_error_set(err, SMIME_E_POLICY, "weak key: curve %s; S/MIME BR "
			    "6.1.5 allows NIST P-256, P-384 and P-521 only",
			    nid != NID_undef ? OBJ_nid2sn(nid) : "(unknown)");
		/* 6.1.6: "SHOULD confirm the validity of all keys using either the ECC
		 * Full Public Key Validation Routine or the ECC Partial ..." */
		if (!public_check(pub))
			return smime_error_set(err, SMIME_E_POLICY, "weak key: S/MIME BR 6.1.6: "
			    "the EC public key is not a valid point of its curve");
		return 0;
	case NID_ED25519:
	case NID_ED448:
		if (purpose != PURPOSE_SIGNING)
			return smime_error_set(err, SMIME_E_POLICY, "key not allowed: S/MIME BR "
			    "7.1.2.3 (e): an EdDSA key only signs; it cannot be in a %s "
			    "certificate", purpose_name(purpose));
		return 0;
	case NID_rsassaPss:
		return smime_error_set(err, SMIME_E_POLICY, "key not allowed: S/MIME BR "
		    "7.1.3.1.1: an RSA key SHALL be rsaEncryption, not id-RSASSA-PSS");
	}
	return smime_error_set(err, SMIME_E_POLICY, "weak key: algorithm %s; S/MIME BR 6.1.5 "
	    "permits RSA, ECDSA P-256/P-384/P-521 and EdDSA only",
	    nid != NID_undef ? OBJ_nid2sn(nid) : "(unknown)");
}

/*
 * The public key of a parsed request once it meets the policy and, when
 * verify, the request's signature verifies with it.
 */
static int
csr_req_key(X509_REQ *req, enum cert_purpose purpose, bool verify, EVP_PKEY **pub_r,
    X509_PUBKEY **spki_r, struct smime_error *err)
{
	EVP_PKEY *pub;
	int rc;

	*pub_r = NULL;
	if ((pub = X509_REQ_get0_pubkey(req)) == NULL)
		return smime_error_ssl(err, SMIME_E_INPUT,
		    "CSR: RFC 2986 4.1: subjectPKInfo is not a public key");
	/* The policy first: it bounds the work the signature check may take. */
	if ((rc = key_policy(X509_REQ_get_X509_PUBKEY(req), pub, purpose, err)) != 0)
		return rc;
	/* RFC 2986 3: the signature proves possession of the private key. */
	if (verify && X509_REQ_verify(req, pub) != 1)
		return smime_error_ssl(err, SMIME_E_INPUT,
		    "CSR: RFC 2986 4.2: the signature does not verify with the request's key");
	if (!EVP_PKEY_up_ref(pub))
		return smime_error_set(err, SMIME_E_INTERNAL, "key reference");
	if ((*spki_r = X509_PUBKEY_dup(X509_REQ_get_X509_PUBKEY(req))) == NULL) {
		EVP_PKEY_free(pub);
		return smime_error_ssl(err, SMIME_E_INTERNAL, "CSR: public key copy");
	}
	*pub_r = pub;
	return 0;
}

/*
 * The public key of a PKCS#10 request (RFC 2986), PEM or DER, once its
 * key meets the policy and its signature verifies.  Nothing else of the
 * request is used.
 */
static int
csr_key(const unsigned char *csr, size_t len, enum cert_purpose purpose, EVP_PKEY **pub_r,
    X509_PUBKEY **spki_r, struct smime_error *err)
{
	X509_REQ *req = NULL;
	BIO *bio = NULL;
	const unsigned char *p = csr;
	int rc = 0;

	*pub_r = NULL;
	if (len == 0)
		return smime_error_set(err, SMIME_E_INPUT, "CSR: empty");
	if (len > CA_MAX_CSR)
		return smime_error_set(err, SMIME_E_INPUT, "CSR: %zu octets, at most %d", len,
		    CA_MAX_CSR);
	if (csr[0] == 0x30) {
		/* RFC 2986 4: CertificationRequest ::= SEQUENCE {...}, DER */
		req = d2i_X509_REQ(NULL, &p, (long)len);
		if (req == NULL) {
			rc = smime_error_ssl(err, SMIME_E_INPUT,
			    "CSR: RFC 2986 4: not a DER CertificationRequest");
			goto out;
		}
		if (p != csr + len) {
			rc = smime_error_set(err, SMIME_E_INPUT, "CSR: %zu octets after the DER "
			    "CertificationRequest", (size_t)(csr + len - p));
			goto out;
		}
	} else {
		/* RFC 7468 7: "-----BEGIN CERTIFICATE REQUEST-----" (OpenSSL also
		 * reads "NEW CERTIFICATE REQUEST") */
		if ((bio = BIO_new_mem_buf(csr, (int)len)) == NULL) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
		if ((req = PEM_read_bio_X509_REQ(bio, NULL, no_password, NULL)) == NULL) {
			rc = smime_error_ssl(err, SMIME_E_INPUT,
			    "CSR: RFC 7468 7: not a PEM CERTIFICATE REQUEST");
			goto out;
		}
	}
	rc = csr_req_key(req, purpose, true, pub_r, spki_r, err);
out:
	X509_REQ_free(req);
	BIO_free(bio);
	return rc;
}

static EVP_PKEY *
key_generate(const struct key_alg *ka)
{
	if (ka->curve != NULL)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", ka->curve);
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", ka->bits);
}

/*
 * S/MIME BR 7.1.2.3 (e), strict and multipurpose: signing only
 * digitalSignature; key management only keyEncipherment (rsaEncryption) or
 * keyAgreement (id-ecPublicKey); dual use both; EdDSA digitalSignature.
 * "Other bit positions SHALL NOT be set."  The MAYs (nonRepudiation,
 * dataEncipherment, encipherOnly, decipherOnly) are left out.
 */
static unsigned
subscriber_key_usage(enum cert_purpose purpose, enum key_kind kind)
{
	unsigned sign = KUB(KU_BIT_DIGITAL_SIGNATURE);
	unsigned enc = kind == KIND_EC ? KUB(KU_BIT_KEY_AGREEMENT) :
	    kind == KIND_RSA ? KUB(KU_BIT_KEY_ENCIPHERMENT) : 0;

	switch (purpose) {
	case PURPOSE_SIGNING:
		return sign;
	case PURPOSE_ENCRYPTION:
		return enc;
	case PURPOSE_DUAL:
		return enc != 0 ? sign | enc : 0;
	}
	return 0;
}

/*
 * An address as an rfc822Name: RFC 5280 4.2.1.6: "an rfc822Name ... is a
 * Mailbox as defined in Section 4.1.2 of [RFC2821]" in an IA5String;
 * addresses outside ASCII need SmtpUTF8Mailbox (RFC 9598), which this CA
 * does not issue.
 */
static int
email_check(const char *e, struct smime_error *err)
{
	const char *at;
	size_t i, n;

	if (e == NULL || (n = strnlen(e, CA_EMAIL_MAX + 1)) == 0 || n > CA_EMAIL_MAX)
		return smime_error_set(err, SMIME_E_USAGE, "address: empty or longer than %d "
		    "(RFC 5321 4.5.3.1.3)", CA_EMAIL_MAX);
	for (i = 0; i < n; i++)
		if (e[i] <= 0x20 || e[i] >= 0x7f)
			return smime_error_set(err, SMIME_E_USAGE, "address %s: RFC 5280 4.2.1.6: "
			    "an rfc822Name is printable ASCII without spaces", e);
	if ((at = strchr(e, '@')) == NULL || at == e || at[1] == '\0' || strchr(at + 1, '@'))
		return smime_error_set(err, SMIME_E_USAGE,
		    "address %s: not local-part@domain (RFC 5321 4.1.2)", e);
	if ((size_t)(at - e) > CA_LOCAL_MAX)
		return smime_error_set(err, SMIME_E_USAGE, "address %s: a local-part of more "
		    "than %d octets (RFC 5321 4.5.3.1.1)", e, CA_LOCAL_MAX);
	return 0;
}

/* --- issuing --- */

int
ca_issue(struct signer *sg, const struct ca_issue_req *req, X509 **cert_r,
    EVP_PKEY **key_r, struct smime_error *err)
{
	const struct store_profile *prof;
	const struct store_user *user;
	const struct key_alg *ka;
	const ASN1_OCTET_STRING *ca_ski;
	const char *policy;
	const char *const *emails;
	size_t n_emails;
	X509 *ca_cert = NULL, *cert = NULL;
	X509_NAME *subject = NULL;
	EVP_PKEY *pub = NULL, *key = NULL;
	X509_PUBKEY *spki = NULL;
	char base[CA_URL_MAX];
	int64_t ca_not_after, not_after, days;
	unsigned ku;
	bool san_critical;
	size_t i;
	int rc = 0;

	*cert_r = NULL;
	if (key_r != NULL)
		*key_r = NULL;
	if (sg == NULL || req == NULL || req->ca == NULL || req->profile == NULL ||
	    req->user == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "issue: CA, profile or user missing");
	prof = req->profile;
	user = req->user;

	/* The profile. */
	if (prof->purpose != PURPOSE_SIGNING && prof->purpose != PURPOSE_ENCRYPTION &&
	    prof->purpose != PURPOSE_DUAL)
		return smime_error_set(err, SMIME_E_USAGE, "profile %s: no purpose", prof->name);
	if (prof->br_profile != NULL && strcmp(prof->br_profile, "strict") == 0)
		policy = OID_MAILBOX_STRICT;
	else if (prof->br_profile != NULL && strcmp(prof->br_profile, "multipurpose") == 0)
		policy = OID_MAILBOX_MULTIPURPOSE;
	else
		return smime_error_set(err, SMIME_E_USAGE, "profile %s: br_profile is \"strict\" "
		    "or \"multipurpose\"", prof->name);
	if (prof->validity_days < 1)
		return smime_error_set(err, SMIME_E_USAGE, "profile %s: validity of %d days",
		    prof->name, prof->validity_days);
	if (prof->ca_id[0] != '\0' && strcmp(prof->ca_id, req->ca->id) != 0)
		return smime_error_set(err, SMIME_E_USAGE, "profile %s issues from CA %s, not %s",
		    prof->name, prof->ca_id, req->ca->id);
	if ((rc = base_url(req->base_url, base, err)) != 0)
		return rc;

	/* The user's addresses (or those the caller chose of them). */
	emails = req->emails != NULL ? (const char *const *)req->emails :
	    (const char *const *)user->emails;
	n_emails = req->emails != NULL ? req->n_emails : user->n_emails;
	if (n_emails == 0 || emails == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "user %s has no address", user->id);
	if (n_emails > CA_MAX_EMAILS)
		return smime_error_set(err, SMIME_E_POLICY, "user %s has %zu addresses; a "
		    "certificate holds at most %d", user->id, n_emails, CA_MAX_EMAILS);
	for (i = 0; i < n_emails; i++)
		if ((rc = email_check(emails[i], err)) != 0)
			return rc;

	/* The CA. */
	if (!req->ca->issuing)
		return smime_error_set(err, SMIME_E_POLICY,
		    "CA %s does not issue end-entity certificates", req->ca->id);
	if ((ca_cert = ca_cert_cached(req->ca->cert_der, req->ca->cert_len)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INPUT, "CA %s: its certificate does not decode",
		    req->ca->id);
		goto out;
	}
	if ((ca_ski = X509_get0_subject_key_id(ca_cert)) == NULL) {
		rc = smime_error_set(err, SMIME_E_POLICY, "CA %s: no subject key identifier for "
		    "the authorityKeyIdentifier (S/MIME BR 7.1.2.3 g)", req->ca->id);
		goto out;
	}
	if (time_get(X509_get0_notAfter(ca_cert), &ca_not_after) != 0) {
		rc = smime_error_set(err, SMIME_E_INPUT, "CA %s: notAfter", req->ca->id);
		goto out;
	}
	if (ca_not_after <= req->now) {
		rc = smime_error_set(err, SMIME_E_POLICY, "CA %s has expired", req->ca->id);
		goto out;
	}

	/* The key: the CSR's, or one made here. */
	if (req->csr_req != NULL) {
		if ((rc = csr_req_key(req->csr_req, prof->purpose, !req->csr_verified, &pub, &spki,
		    err)) != 0)
			goto out;
	} else if (req->csr != NULL) {
		if ((rc = csr_key(req->csr, req->csr_len, prof->purpose, &pub, &spki, err)) != 0)
			goto out;
	} else {
		if (!prof->allow_generate) {
			rc = smime_error_set(err, SMIME_E_POLICY, "profile %s: the service may not "
			    "make keys (no CSR given)", prof->name);
			goto out;
		}
		if ((ka = key_alg_find(prof->key_alg)) == NULL) {
			rc = smime_error_set(err, SMIME_E_USAGE, "profile %s: unknown key "
			    "algorithm %s", prof->name, prof->key_alg ? prof->key_alg : "(none)");
			goto out;
		}
		if (key_r == NULL) {
			rc = smime_error_set(err, SMIME_E_USAGE,
			    "issue: nowhere to return the key");
			goto out;
		}
		if ((key = key_generate(ka)) == NULL) {
			rc = smime_error_ssl(err, SMIME_E_CRYPTO, "making a %s key", ka->name);
			goto out;
		}
		/* Only the public half goes into the certificate. */
		if (!EVP_PKEY_up_ref(key)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "key reference");
			goto out;
		}
		pub = key;
	}
	if ((ku = subscriber_key_usage(prof->purpose, key_kind(pub))) == 0) {
		rc = smime_error_set(err, SMIME_E_POLICY, "key not allowed in a %s certificate",
		    purpose_name(prof->purpose));
		goto out;
	}
	/* 7.1.2.3 (e): signing "digitalSignature ... MAY also assert
	 * nonRepudiation". */
	if (req->non_repudiation && prof->purpose == PURPOSE_SIGNING)
		ku |= KUB(KU_BIT_NON_REPUDIATION);

	/*
	 * S/MIME BR 6.3.2: 825 days at most for the strict and multipurpose
	 * generations; "a day is measured as 86,400 seconds".  RFC 5280
	 * 4.1.2.5: the validity period includes notAfter, hence the second
	 * less.  Never past the CA's own notAfter.
	 */
	days = prof->validity_days > CA_MAX_VALIDITY_DAYS ? CA_MAX_VALIDITY_DAYS :
	    prof->validity_days;
	not_after = req->now + days * DAY - 1;
	if (not_after > ca_not_after)
		not_after = ca_not_after;

	/*
	 * S/MIME BR 7.1.4.2.3: a mailbox-validated subject MAY hold commonName,
	 * serialNumber and emailAddress, nothing else; 7.1.4.2.2 (a): its
	 * commonName holds a Mailbox Address from subjectAltName.  RFC 5280
	 * A.1: ub-common-name is 64: a longer primary address leaves the
	 * subject empty, and then (4.2.1.6) "the subjectAltName extension MUST
	 * be marked critical" (S/MIME BR 7.1.2.3 (h) likewise).
	 */
	if ((subject = X509_NAME_new()) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if (!req->no_cn && strlen(emails[0]) <= CA_CN_MAX &&
	    !X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)emails[0], -1, -1, 0)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "subject commonName");
		goto out;
	}
	/* 7.1.4.2.3: serialNumber; 7.1.4.2.2 (h): emailAddress, "If present, the
	 * emailAddress SHALL contain a single Mailbox Address" (an IA5String of
	 * at most 255, RFC 5280 A.1). */
	if (req->subject_serial != NULL && (strlen(req->subject_serial) > CA_CN_MAX ||
	    !X509_NAME_add_entry_by_NID(subject, NID_serialNumber, MBSTRING_ASC,
	    (const unsigned char *)req->subject_serial, -1, -1, 0))) {
		rc = smime_error_ssl(err, SMIME_E_USAGE, "subject serialNumber");
		goto out;
	}
	if (req->email_attr && !X509_NAME_add_entry_by_NID(subject, NID_pkcs9_emailAddress,
	    MBSTRING_ASC, (const unsigned char *)emails[0], -1, -1, 0)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "subject emailAddress");
		goto out;
	}
	/* RFC 5280 4.2.1.6: an empty subject makes the subjectAltName critical. */
	san_critical = X509_NAME_entry_count(subject) == 0;

	if ((cert = X509_new()) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = cert_begin(cert, X509_get_subject_name(ca_cert), subject, req->now,
	    not_after, pub, spki, err)) != 0 ||
	    (rc = spki_lint(cert, err)) != 0 ||
	    /* 7.1.2.3 (d): "The cA field SHALL NOT be true." */
	    (rc = add_basic_constraints(cert, false, -1, err)) != 0 ||
	    /* 7.1.2.3 (e): "This extension SHOULD be marked critical." */
	    (rc = add_key_usage(cert, ku, err)) != 0 ||
	    /* 7.1.2.3 (f), strict: "id-kp-emailProtection SHALL be present.
	     * Other values SHALL NOT be present." (kept so for multipurpose) */
	    (rc = add_eku_email(cert, err)) != 0 ||
	    /* 7.1.2.3 (a): "exactly one of the reserved policyIdentifiers" */
	    (rc = add_policies(cert, &policy, 1, err)) != 0 ||
	    /* 7.1.2.3 (n) */
	    (rc = add_ski(cert, NULL, err)) != 0 ||
	    (rc = add_aki(cert, ca_ski, err)) != 0 ||
	    /* 7.1.2.3 (b), (c) */
	    (rc = add_issuer_urls(cert, base, req->ca->id, true, err)) != 0 ||
	    /* 7.1.4.2.1: at least one rfc822Name; every address of the subject */
	    (rc = add_san_emails(cert, (char *const *)emails, n_emails, san_critical, err)) != 0)
		goto out;
	if ((rc = cert_sign(sg, req->ca->id, cert, X509_get0_pubkey(ca_cert), err)) != 0)
		goto out;
	*cert_r = cert;
	cert = NULL;
	if (key != NULL) {
		*key_r = key;
		key = NULL;
	}
out:
	X509_free(ca_cert);
	X509_free(cert);
	X509_NAME_free(subject);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(key);
	X509_PUBKEY_free(spki);
	return rc;
}

/* --- CA certificates --- */

/* S/MIME BR 7.1.4.3.1: countryName, organizationName and commonName of a CA. */
static int
ca_subject(const char *common_name, const char *organisation, const char *country,
    X509_NAME **name_r, struct smime_error *err)
{
	X509_NAME *name;
	size_t n;

	*name_r = NULL;
	if (common_name == NULL || (n = strnlen(common_name, CA_CN_MAX + 1)) == 0 ||
	    n > CA_CN_MAX)
		return smime_error_set(err, SMIME_E_USAGE, "CA commonName: 1 to %d characters "
		    "(RFC 5280 A.1 ub-common-name)", CA_CN_MAX);
	if (organisation != NULL && strnlen(organisation, CA_ORG_MAX + 1) > CA_ORG_MAX)
		return smime_error_set(err, SMIME_E_USAGE, "CA organizationName: at most %d "
		    "characters (RFC 5280 A.1 ub-organization-name)", CA_ORG_MAX);
	if (country != NULL && country[0] != '\0' && (strlen(country) != 2 ||
	    !isupper((unsigned char)country[0]) || !isupper((unsigned char)country[1])))
		return smime_error_set(err, SMIME_E_USAGE, "CA countryName: two capital letters "
		    "(ISO 3166-1 alpha-2)");
	if ((name = X509_NAME_new()) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if ((country != NULL && country[0] != '\0' &&
	    !X509_NAME_add_entry_by_NID(name, NID_countryName, MBSTRING_ASC,
	    (const unsigned char *)country, -1, -1, 0)) ||
	    (organisation != NULL && organisation[0] != '\0' &&
	    !X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
	    (const unsigned char *)organisation, -1, -1, 0)) ||
	    !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)common_name, -1, -1, 0)) {
		X509_NAME_free(name);
		return smime_error_ssl(err, SMIME_E_USAGE, "CA subject: not UTF-8 text");
	}
	*name_r = name;
	return 0;
}

/* The parent of a new intermediate: a CA certificate that may sign one. */
static int
parent_check(struct signer *sg, const struct store_ca *parent, int64_t now, X509 **cert_r,
    int64_t *not_after_r, struct smime_error *err)
{
	X509 *cert;
	int rc = 0;

	*cert_r = NULL;
	if ((cert = ca_cert_parse(parent->cert_der, parent->cert_len)) == NULL)
		return smime_error_ssl(err, SMIME_E_INPUT,
		    "parent CA %s: its certificate does not decode", parent->id);
	if (!(X509_get_extension_flags(cert) & EXFLAG_CA) || X509_check_ca(cert) != 1) {
		rc = smime_error_set(err, SMIME_E_USAGE, "parent CA %s: not a CA certificate",
		    parent->id);
		goto out;
	}
	/* RFC 5280 4.2.1.9: pathLenConstraint 0: no CA below it. */
	if (X509_get_pathlen(cert) == 0) {
		rc = smime_error_set(err, SMIME_E_POLICY, "parent CA %s: pathLenConstraint 0 "
		    "(RFC 5280 4.2.1.9): it cannot certify another CA", parent->id);
		goto out;
	}
	if (X509_get0_subject_key_id(cert) == NULL) {
		rc = smime_error_set(err, SMIME_E_POLICY, "parent CA %s: S/MIME BR 7.1.2.1 (e): "
		    "no subject key identifier", parent->id);
		goto out;
	}
	if (time_get(X509_get0_notAfter(cert), not_after_r) != 0 || *not_after_r <= now) {
		rc = smime_error_set(err, SMIME_E_POLICY, "parent CA %s has expired", parent->id);
		goto out;
	}
	if (!signer_has(sg, parent->id)) {
		rc = smime_error_set(err, SMIME_E_NOTFOUND, "parent CA %s: the signer does not "
		    "hold its key", parent->id);
		goto out;
	}
	*cert_r = cert;
	cert = NULL;
out:
	X509_free(cert);
	return rc;
}

int
ca_create(struct signer *sg, const char *base_url_text, const char *id, const char *key_alg,
    const char *common_name, const char *organisation, const char *country, int validity_days,
    const struct store_ca *parent, bool issuing, int64_t now, struct store_ca *ca_r,
    struct smime_error *err)
{
	/* S/MIME BR 7.1.6.3: an affiliated subordinate CA lists the reserved
	 * identifiers it issues under. */
	static const char *const sub_policies[] = { OID_MAILBOX_STRICT, OID_MAILBOX_MULTIPURPOSE };
	X509_NAME *subject = NULL;
	X509 *parent_cert = NULL, *cert = NULL;
	ASN1_OCTET_STRING *own_ski = NULL;
	EVP_PKEY *pub = NULL;
	unsigned char *wrapped = NULL, *der = NULL;
	size_t wrapped_len = 0, der_len = 0;
	char base[CA_URL_MAX], *alg = NULL;
	int64_t not_after, parent_not_after = 0;
	bool made = false;
	int rc;

	memset(ca_r, 0, sizeof(*ca_r));
	if (sg == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "CA: no signer");
	if ((rc = id_check("CA", id, err)) != 0)
		return rc;
	if (!ca_key_alg_valid(key_alg))
		return smime_error_set(err, SMIME_E_USAGE, "CA %s: unknown key algorithm %s", id,
		    key_alg ? key_alg : "(none)");
	if (validity_days < 1 || validity_days > CA_MAX_CA_DAYS)
		return smime_error_set(err, SMIME_E_USAGE, "CA %s: validity of 1 to %d days", id,
		    CA_MAX_CA_DAYS);
	if (parent != NULL && strcmp(parent->id, id) == 0)
		return smime_error_set(err, SMIME_E_USAGE, "CA %s cannot be its own parent", id);
	if ((rc = ca_subject(common_name, organisation, country, &subject, err)) != 0)
		return rc;
	if (parent != NULL && ((rc = base_url(base_url_text, base, err)) != 0 ||
	    (rc = parent_check(sg, parent, now, &parent_cert, &parent_not_after, err)) != 0))
		goto out;
	if ((alg = strdup(key_alg)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}

	if ((rc = signer_generate(sg, id, key_alg, &pub, &wrapped, &wrapped_len, err)) != 0)
		goto out;
	made = true;
	not_after = now + (int64_t)validity_days * DAY - 1;
	if (parent != NULL && not_after > parent_not_after)
		not_after = parent_not_after;
	if ((cert = X509_new()) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = cert_begin(cert, parent_cert != NULL ? X509_get_subject_name(parent_cert) :
	    subject, subject, now, not_after, pub, NULL, err)) != 0 ||
	    (rc = spki_lint(cert, err)) != 0)
		goto out;
	if (parent == NULL) {
		/*
		 * S/MIME BR 7.1.2.1: (a) basicConstraints critical, cA true,
		 * pathLenConstraint SHOULD NOT be present; (b) keyUsage critical,
		 * keyCertSign and cRLSign, and "If the Root CA Private Key is used
		 * for signing OCSP responses, then the digitalSignature bit SHALL
		 * be set"; (c) no certificatePolicies, (d) no extKeyUsage; (e) SKI.
		 * The AKI (its own key identifier) is there because every
		 * certificate of this service carries one (DESIGN).
		 */
		if ((rc = add_basic_constraints(cert, true, -1, err)) != 0 ||
		    (rc = add_key_usage(cert, KUB(KU_BIT_KEY_CERT_SIGN) | KUB(KU_BIT_CRL_SIGN) |
		    KUB(KU_BIT_DIGITAL_SIGNATURE), err)) != 0 ||
		    (rc = add_ski(cert, &own_ski, err)) != 0 ||
		    (rc = add_aki(cert, own_ski, err)) != 0)
			goto out;
		if ((rc = cert_sign(sg, id, cert, pub, err)) != 0)
			goto out;
	} else {
		/*
		 * S/MIME BR 7.1.2.2: (a) certificatePolicies; (b) CRL DP and (c)
		 * AIA of the parent; (d) basicConstraints critical, cA true, with
		 * pathLenConstraint 0 for a CA that issues to subscribers; (e)
		 * keyUsage critical keyCertSign, cRLSign, digitalSignature (it
		 * signs its OCSP responses); (g) "For Subordinate CA Certificates
		 * that will be used to issue S/MIME Certificates, the value
		 * id-kp-emailProtection SHALL be present"; (h) AKI; (i) SKI.
		 */
		if ((rc = add_basic_constraints(cert, true, issuing ? 0 : -1, err)) != 0 ||
		    (rc = add_key_usage(cert, KUB(KU_BIT_KEY_CERT_SIGN) | KUB(KU_BIT_CRL_SIGN) |
		    KUB(KU_BIT_DIGITAL_SIGNATURE), err)) != 0 ||
		    (rc = add_eku_email(cert, err)) != 0 ||
		    (rc = add_policies(cert, sub_policies, 2, err)) != 0 ||
		    (rc = add_ski(cert, NULL, err)) != 0 ||
		    (rc = add_aki(cert, X509_get0_subject_key_id(parent_cert), err)) != 0 ||
		    (rc = add_issuer_urls(cert, base, parent->id, false, err)) != 0)
			goto out;
		if ((rc = cert_sign(sg, parent->id, cert, X509_get0_pubkey(parent_cert),
		    err)) != 0)
			goto out;
	}
	if ((rc = cert_to_der(cert, &der, &der_len, err)) != 0)
		goto out;

	snprintf(ca_r->id, sizeof(ca_r->id), "%s", id);
	snprintf(ca_r->parent_id, sizeof(ca_r->parent_id), "%s", parent ? parent->id : "");
	ca_r->issuing = issuing;
	ca_r->key_alg = alg;
	alg = NULL;
	ca_r->cert_der = der;
	ca_r->cert_len = der_len;
	der = NULL;
	ca_r->key_wrapped = wrapped;
	ca_r->key_wrapped_len = wrapped_len;
	wrapped = NULL;
	ca_r->created = now;
out:
	if (rc != 0 && made)
		signer_forget(sg, id);
	X509_NAME_free(subject);
	X509_free(parent_cert);
	X509_free(cert);
	ASN1_OCTET_STRING_free(own_ski);
	EVP_PKEY_free(pub);
	if (wrapped != NULL)
		OPENSSL_cleanse(wrapped, wrapped_len);
	free(wrapped);
	free(der);
	free(alg);
	return rc;
}

/* The service's name of a key's algorithm ("ec-p256", "rsa-3072", ...). */
static char *
key_alg_name(EVP_PKEY *pub)
{
	char group[64], buf[32];

	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_RSA:
		snprintf(buf, sizeof(buf), "rsa-%d", EVP_PKEY_get_bits(pub));
		break;
	case EVP_PKEY_EC:
		if (!EVP_PKEY_get_group_name(pub, group, sizeof(group), NULL))
			group[0] = '\0';
		switch (OBJ_txt2nid(group)) {
		case NID_X9_62_prime256v1:
			snprintf(buf, sizeof(buf), "ec-p256");
			break;
		case NID_secp384r1:
			snprintf(buf, sizeof(buf), "ec-p384");
			break;
		case NID_secp521r1:
			snprintf(buf, sizeof(buf), "ec-p521");
			break;
		default:
			snprintf(buf, sizeof(buf), "ec");
		}
		break;
	case EVP_PKEY_ED25519:
		snprintf(buf, sizeof(buf), "ed25519");
		break;
	case EVP_PKEY_ED448:
		snprintf(buf, sizeof(buf), "ed448");
		break;
	default:
		snprintf(buf, sizeof(buf), "other");
	}
	return strdup(buf);
}

int
ca_import(struct signer *sg, const char *id, X509 *cert, EVP_PKEY *key,
    const char *parent_id, bool issuing, int64_t now, struct store_ca *ca_r,
    struct smime_error *err)
{
	BASIC_CONSTRAINTS *bc = NULL;
	unsigned char *wrapped = NULL, *der = NULL;
	size_t wrapped_len = 0, der_len = 0;
	char *alg = NULL;
	int64_t not_after;
	uint32_t flags;
	bool adopted = false;
	int crit = 0, rc = 0;

	memset(ca_r, 0, sizeof(*ca_r));
	if (sg == NULL || cert == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "CA import: no signer or certificate");
	if ((rc = id_check("CA", id, err)) != 0)
		return rc;
	if (parent_id == NULL)
		parent_id = "";
	if (parent_id[0] != '\0' && (rc = id_check("parent CA", parent_id, err)) != 0)
		return rc;
	flags = X509_get_extension_flags(cert);
	if (flags & EXFLAG_INVALID)
		return smime_error_set(err, SMIME_E_INPUT,
		    "CA %s: the certificate's extensions do not decode", id);
	/* RFC 5280 4.2.1.9: "The cA boolean indicates whether the certified
	 * public key may be used to verify certificate signatures." */
	bc = X509_get_ext_d2i(cert, NID_basic_constraints, &crit, NULL);
	if (bc == NULL || !bc->ca) {
		rc = smime_error_set(err, SMIME_E_USAGE, "CA %s: not a CA certificate (RFC 5280 "
		    "4.2.1.9: basicConstraints cA is not TRUE)", id);
		goto out;
	}
	/* RFC 5280 4.2.1.3: "If the keyUsage extension is present, then the
	 * subject public key MUST NOT be used to verify signatures on
	 * certificates ... unless the keyCertSign bit is set". */
	if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN)) {
		rc = smime_error_set(err, SMIME_E_USAGE, "CA %s: keyUsage without keyCertSign "
		    "(RFC 5280 4.2.1.3)", id);
		goto out;
	}
	/* RFC 5280 4.2.1.2: "this extension MUST appear in all conforming CA
	 * certificates"; ours name it in every AKI. */
	if (X509_get0_subject_key_id(cert) == NULL) {
		rc = smime_error_set(err, SMIME_E_USAGE, "CA %s: no subject key identifier "
		    "(RFC 5280 4.2.1.2)", id);
		goto out;
	}
	if (time_get(X509_get0_notAfter(cert), &not_after) != 0 || not_after <= now) {
		rc = smime_error_set(err, SMIME_E_POLICY, "CA %s: the certificate has expired", id);
		goto out;
	}
	if (issuing && key == NULL) {
		rc = smime_error_set(err, SMIME_E_USAGE, "CA %s: an issuing CA needs its private "
		    "key", id);
		goto out;
	}
	if (X509_get0_pubkey(cert) == NULL ||
	    (alg = key_alg_name(X509_get0_pubkey(cert))) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INPUT, "CA %s: the public key does not decode",
		    id);
		goto out;
	}
	if (key != NULL) {
		if (X509_check_private_key(cert, key) != 1) {
			rc = smime_error_ssl(err, SMIME_E_USAGE,
			    "CA %s: the private key is not the certificate's", id);
			goto out;
		}
		if ((rc = signer_adopt(sg, id, key, &wrapped, &wrapped_len, err)) != 0)
			goto out;
		adopted = true;
	}
	if ((rc = cert_to_der(cert, &der, &der_len, err)) != 0)
		goto out;
	snprintf(ca_r->id, sizeof(ca_r->id), "%s", id);
	snprintf(ca_r->parent_id, sizeof(ca_r->parent_id), "%s", parent_id);
	ca_r->issuing = issuing;
	ca_r->key_alg = alg;
	alg = NULL;
	ca_r->cert_der = der;
	ca_r->cert_len = der_len;
	der = NULL;
	ca_r->key_wrapped = wrapped;
	ca_r->key_wrapped_len = wrapped_len;
	wrapped = NULL;
	ca_r->created = now;
out:
	if (rc != 0 && adopted)
		signer_forget(sg, id);
	BASIC_CONSTRAINTS_free(bc);
	if (wrapped != NULL)
		OPENSSL_cleanse(wrapped, wrapped_len);
	free(wrapped);
	free(der);
	free(alg);
	return rc;
}

/* --- CRLs --- */

/* An ASN1_INTEGER from a serial as this service writes it. */
static int
serial_from_hex(const char *text, ASN1_INTEGER **serial_r, struct smime_error *err)
{
	char hex[STORE_SERIAL_SIZE];
	BIGNUM *bn = NULL;
	int rc;

	*serial_r = NULL;
	if ((rc = ca_serial_parse(text, hex, err)) != 0)
		return rc;
	if (!BN_hex2bn(&bn, hex) || (*serial_r = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "serial %s", hex);
	BN_free(bn);
	return rc;
}

static int
crl_entry(X509_CRL *crl, const struct store_revoked *r, struct smime_error *err)
{
	X509_REVOKED *rv = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	ASN1_ENUMERATED *reason = NULL;
	int rc = 0;

	if (r->revoked_at <= 0)
		return smime_error_set(err, SMIME_E_USAGE, "CRL: serial %s without a revocation "
		    "time", r->serial);
	/*
	 * RFC 5280 5.3.1: "removeFromCRL (8) ... used only in delta CRLs", and
	 * 7 is not a value.  S/MIME BR 7.2.2: "The CRLReason indicated SHALL
	 * NOT be unspecified (0). If the reason for revocation is unspecified,
	 * CAs SHALL omit the reasonCode entry extension."
	 */
	if (r->reason < -1 || r->reason >= N_REASONS || r->reason == 7 || r->reason == 8)
		return smime_error_set(err, SMIME_E_USAGE, "CRL: serial %s: reason %d cannot be "
		    "in a full CRL", r->serial, r->reason);
	if ((rc = serial_from_hex(r->serial, &serial, err)) != 0)
		return rc;
	if ((rv = X509_REVOKED_new()) == NULL ||
	    (when = ASN1_TIME_set(NULL, (time_t)r->revoked_at)) == NULL ||
	    !X509_REVOKED_set_serialNumber(rv, serial) ||
	    !X509_REVOKED_set_revocationDate(rv, when)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "CRL entry");
		goto out;
	}
	if (r->reason > 0) {
		/* S/MIME BR 7.2.2: "the reasonCode ... extension SHALL NOT be marked critical" */
		if ((reason = ASN1_ENUMERATED_new()) == NULL ||
		    !ASN1_ENUMERATED_set(reason, r->reason) ||
		    X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, reason, 0, 0) != 1) {
			rc = smime_error_ssl(err, SMIME_E_INTERNAL, "CRL entry reason");
			goto out;
		}
	}
	if (!X509_CRL_add0_revoked(crl, rv)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "CRL entry");
		goto out;
	}
	rv = NULL;
out:
	X509_REVOKED_free(rv);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(when);
	ASN1_ENUMERATED_free(reason);
	return rc;
}

int
ca_make_crl(struct signer *sg, const struct store_ca *ca, const struct store_revoked *r,
    size_t n, int64_t number, int64_t now, int64_t validity_seconds,
    unsigned char **der_r, size_t *len_r, struct smime_error *err)
{
	X509 *ca_cert = NULL;
	X509_CRL *crl = NULL;
	ASN1_TIME *this_update = NULL, *next_update = NULL;
	ASN1_INTEGER *crl_number = NULL;
	AUTHORITY_KEYID *akid = NULL;
	const ASN1_OCTET_STRING *ski;
	unsigned char *der = NULL;
	size_t i;
	int len, rc = 0;

	*der_r = NULL;
	*len_r = 0;
	if (sg == NULL || ca == NULL || (n > 0 && r == NULL))
		return smime_error_set(err, SMIME_E_USAGE, "CRL: no signer, CA or entries");
	/* RFC 5280 5.2.3: CRLNumber ::= INTEGER (0..MAX) */
	if (number < 0)
		return smime_error_set(err, SMIME_E_USAGE, "CRL: number %lld is negative",
		    (long long)number);
	if (validity_seconds < 1 || validity_seconds > CA_CRL_MAX_SECONDS)
		return smime_error_set(err, SMIME_E_USAGE, "CRL: validity of 1 to %d seconds",
		    CA_CRL_MAX_SECONDS);
	if ((ca_cert = ca_cert_cached(ca->cert_der, ca->cert_len)) == NULL)
		return smime_error_ssl(err, SMIME_E_INPUT, "CA %s: its certificate does not decode",
		    ca->id);
	if ((ski = X509_get0_subject_key_id(ca_cert)) == NULL) {
		rc = smime_error_set(err, SMIME_E_POLICY, "CA %s: no subject key identifier for "
		    "the CRL's AKI (RFC 5280 5.2.1)", ca->id);
		goto out;
	}
	/* RFC 5280 5.1.2.1: "version MUST be v2" when extensions are used. */
	if ((crl = X509_CRL_new()) == NULL || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) ||
	    (this_update = ASN1_TIME_set(NULL, (time_t)now)) == NULL ||
	    (next_update = ASN1_TIME_set(NULL, (time_t)(now + validity_seconds))) == NULL ||
	    !X509_CRL_set1_lastUpdate(crl, this_update) ||
	    !X509_CRL_set1_nextUpdate(crl, next_update)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "CRL fields");
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((rc = crl_entry(crl, &r[i], err)) != 0)
			goto out;
	/* Entries in serial order, so that a reader can search them. */
	if (!X509_CRL_sort(crl)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "CRL sort");
		goto out;
	}
	/* RFC 5280 5.2.3: "conforming CRL issuers MUST include this extension"
	 * (cRLNumber, non-critical); 5.2.1: authorityKeyIdentifier MUST be
	 * included, keyIdentifier (the CA's SKI). */
	if ((crl_number = ASN1_INTEGER_new()) == NULL ||
	    !ASN1_INTEGER_set_int64(crl_number, number) ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, crl_number, 0, 0) != 1 ||
	    (akid = AUTHORITY_KEYID_new()) == NULL ||
	    (akid->keyid = ASN1_OCTET_STRING_dup(ski)) == NULL ||
	    X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) != 1) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "CRL extensions");
		goto out;
	}
	if ((rc = signer_sign_crl(sg, ca->id, crl, err)) != 0)
		goto out;
	if (X509_CRL_verify(crl, X509_get0_pubkey(ca_cert)) != 1) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "CA %s: the signer's key is not the "
		    "one of its certificate", ca->id);
		goto out;
	}
	if ((len = i2d_X509_CRL(crl, &der)) <= 0) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "CRL encoding");
		goto out;
	}
	*der_r = der;
	*len_r = (size_t)len;
out:
	X509_free(ca_cert);
	X509_CRL_free(crl);
	ASN1_TIME_free(this_update);
	ASN1_TIME_free(next_update);
	ASN1_INTEGER_free(crl_number);
	AUTHORITY_KEYID_free(akid);
	return rc;
}

/* --- serial numbers and reasons --- */

void
ca_serial_hex(const ASN1_INTEGER *serial, char out[STORE_SERIAL_SIZE])
{
	static const char hexdig[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t o = 0;
	int len, i;

	out[0] = '\0';
	if (serial == NULL || (p = ASN1_STRING_get0_data(serial)) == NULL)
		return;
	len = ASN1_STRING_length(serial);
	while (len > 0 && *p == 0) {
		p++;
		len--;
	}
	/* As i2a_ASN1_INTEGER (openssl x509 -serial): a sign, "00" for zero. */
	if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER && len > 0)
		out[o++] = '-';
	if (len == 0) {
		snprintf(out, STORE_SERIAL_SIZE, "00");
		return;
	}
	if (o + 2 * (size_t)len >= STORE_SERIAL_SIZE) {
		out[0] = '\0';		/* longer than any serial this service keeps */
		return;
	}
	for (i = 0; i < len; i++) {
		out[o++] = hexdig[p[i] >> 4];
		out[o++] = hexdig[p[i] & 0xf];
	}
	out[o] = '\0';
}

int
ca_serial_parse(const char *text, char out[STORE_SERIAL_SIZE], struct smime_error *err)
{
	char digits[CA_SERIAL_TEXT_MAX + 1];
	const char *p;
	size_t nd = 0, first, sig, o = 0;
	bool neg = false;

	out[0] = '\0';
	if (text == NULL || strnlen(text, CA_SERIAL_TEXT_MAX + 1) > CA_SERIAL_TEXT_MAX)
		return smime_error_set(err, SMIME_E_INPUT, "serial: missing or longer than %d "
		    "characters", CA_SERIAL_TEXT_MAX);
	p = text;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	for (; *p != '\0'; p++) {
		if (*p == ':' || *p == ' ' || *p == '\t')
			continue;
		if (!isxdigit((unsigned char)*p))
			return smime_error_set(err, SMIME_E_INPUT, "serial: 0x%02x is not a hex "
			    "digit", (unsigned char)*p);
		digits[nd++] = (char)toupper((unsigned char)*p);
	}
	if (nd == 0)
		return smime_error_set(err, SMIME_E_INPUT, "serial: no hex digits");
	/* No leading zero octet: drop leading zero digits, then pad to octets. */
	for (first = 0; first + 1 < nd && digits[first] == '0'; first++)
		;
	sig = nd - first;
	if ((neg ? 1 : 0) + sig + (sig & 1) > STORE_SERIAL_SIZE - 1)
		return smime_error_set(err, SMIME_E_INPUT, "serial: more than %d octets",
		    (STORE_SERIAL_SIZE - 1) / 2);
	if (neg && !(sig == 1 && digits[first] == '0'))
		out[o++] = '-';
	if (sig & 1)
		out[o++] = '0';
	memcpy(out + o, digits + first, sig);
	out[o + sig] = '\0';
	return 0;
}

const char *
ca_reason_name(int reason)
{
	if (reason < 0 || reason >= N_REASONS || reason_names[reason] == NULL)
		return "unknown";
	return reason_names[reason];
}

int
ca_reason_parse(const char *name)
{
	int i;

	for (i = 0; name != NULL && i < N_REASONS; i++)
		if (reason_names[i] != NULL && strcasecmp(name, reason_names[i]) == 0)
			return i;
	return -1;
}

/* --- records --- */

static void
free_string(char *s)
{
	OPENSSL_free(s);
}

/* --- the SCEP registration authority --- */

int
ca_make_ra(struct signer *sg, const struct store_ca *ca, EVP_PKEY *pub, const char *url,
    int64_t now, unsigned char **der_r, size_t *len_r, struct smime_error *err)
{
	X509 *ca_cert = NULL, *cert = NULL;
	X509_NAME *subject = NULL;
	const ASN1_OCTET_STRING *ca_ski;
	const X509_NAME_ENTRY *org;
	char base[CA_URL_MAX], cn[CA_CN_MAX + 1];
	unsigned char *der = NULL;
	int64_t not_after;
	int i, len, rc = 0;

	*der_r = NULL;
	*len_r = 0;
	if (sg == NULL || ca == NULL || pub == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "RA: no signer, CA or key");
	/* RFC 8894 2.5: the envelope is encrypted to an RSA key. */
	if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA)
		return smime_error_set(err, SMIME_E_USAGE, "RA: an RSA key is needed");
	if ((rc = base_url(url, base, err)) != 0)
		return rc;
	if ((ca_cert = ca_cert_cached(ca->cert_der, ca->cert_len)) == NULL)
		return smime_error_ssl(err, SMIME_E_INPUT, "CA %s: its certificate does not decode",
		    ca->id);
	if ((ca_ski = X509_get0_subject_key_id(ca_cert)) == NULL ||
	    time_get(X509_get0_notAfter(ca_cert), &not_after) != 0 || not_after <= now) {
		rc = smime_error_set(err, SMIME_E_POLICY, "CA %s: expired or without a subject "
		    "key identifier", ca->id);
		goto out;
	}
	/* Subject: the CA's organisation, CN "<CA id> SCEP RA". */
	if ((subject = X509_NAME_new()) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	i = X509_NAME_get_index_by_NID(X509_get_subject_name(ca_cert), NID_organizationName, -1);
	if (i >= 0 && (org = X509_NAME_get_entry(X509_get_subject_name(ca_cert), i)) != NULL &&
	    !X509_NAME_add_entry(subject, org, -1, 0)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "RA subject");
		goto out;
	}
	snprintf(cn, sizeof(cn), "%.55s SCEP RA", ca->id);
	if (!X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "RA subject");
		goto out;
	}
	if ((cert = X509_new()) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	/* RFC 8894 2.1.1: the RA certificate, issued by the CA: it signs the
	 * CertRep and receives the pkcsPKIEnvelope. */
	if ((rc = cert_begin(cert, X509_get_subject_name(ca_cert), subject, now, not_after, pub,
	    NULL, err)) != 0 ||
	    (rc = add_basic_constraints(cert, false, -1, err)) != 0 ||
	    (rc = add_key_usage(cert, KUB(KU_BIT_DIGITAL_SIGNATURE) |
	    KUB(KU_BIT_KEY_ENCIPHERMENT), err)) != 0 ||
	    (rc = add_ski(cert, NULL, err)) != 0 ||
	    (rc = add_aki(cert, ca_ski, err)) != 0 ||
	    (rc = add_issuer_urls(cert, base, ca->id, true, err)) != 0 ||
	    (rc = cert_sign(sg, ca->id, cert, X509_get0_pubkey(ca_cert), err)) != 0)
		goto out;
	if ((len = i2d_X509(cert, &der)) <= 0) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "RA certificate encoding");
		goto out;
	}
	*der_r = der;
	*len_r = (size_t)len;
out:
	X509_free(ca_cert);
	X509_free(cert);
	X509_NAME_free(subject);
	return rc;
}

int
ca_cert_record(X509 *cert, const struct ca_issue_req *req, enum cert_source source,
    struct store_cert *c_r, struct smime_error *err)
{
	static const char hexdig[] = "0123456789abcdef";
	STACK_OF(OPENSSL_STRING) *emails = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0, i;
	char *subject = NULL;
	int rc = 0;

	memset(c_r, 0, sizeof(*c_r));
	if (cert == NULL || req == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "record: no certificate or request");
	ca_serial_hex(X509_get0_serialNumber(cert), c_r->serial);
	if (c_r->serial[0] == '\0') {
		rc = smime_error_set(err, SMIME_E_INPUT, "record: serial number longer than %d "
		    "octets", (STORE_SERIAL_SIZE - 1) / 2);
		goto out;
	}
	if (req->ca != NULL)
		snprintf(c_r->ca_id, sizeof(c_r->ca_id), "%s", req->ca->id);
	if (req->user != NULL)
		snprintf(c_r->user_id, sizeof(c_r->user_id), "%s", req->user->id);
	if (req->device != NULL)
		snprintf(c_r->device_id, sizeof(c_r->device_id), "%s", req->device->id);
	if (req->profile != NULL) {
		snprintf(c_r->profile, sizeof(c_r->profile), "%s", req->profile->name);
		c_r->purpose = req->profile->purpose;
	}
	c_r->source = source;
	c_r->status = STATUS_ACTIVE;
	if ((subject = smime_cert_subject(cert)) == NULL ||
	    (c_r->subject = strdup(subject)) == NULL ||
	    (emails = smime_cert_emails(cert)) == NULL ||
	    (c_r->email = strdup(sk_OPENSSL_STRING_num(emails) > 0 ?
	    sk_OPENSSL_STRING_value(emails, 0) : "")) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if (time_get(X509_get0_notBefore(cert), &c_r->not_before) != 0 ||
	    time_get(X509_get0_notAfter(cert), &c_r->not_after) != 0) {
		rc = smime_error_set(err, SMIME_E_INPUT, "record: validity does not decode");
		goto out;
	}
	smime_cert_fingerprint(cert, c_r->sha256);
	if (c_r->sha256[0] == '\0' || !X509_digest(cert, EVP_sha1(), md, &md_len) ||
	    md_len != 20) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "record: fingerprints");
		goto out;
	}
	for (i = 0; i < md_len; i++) {
		c_r->sha1[2 * i] = hexdig[md[i] >> 4];
		c_r->sha1[2 * i + 1] = hexdig[md[i] & 0xf];
	}
	c_r->sha1[40] = '\0';
	if ((rc = cert_to_der(cert, &c_r->der, &c_r->der_len, err)) != 0)
		goto out;
	c_r->created = req->now;
	c_r->revoked_at = 0;
	c_r->reason = -1;
out:
	OPENSSL_free(subject);
	sk_OPENSSL_STRING_pop_free(emails, free_string);
	if (rc != 0) {
		free(c_r->subject);
		free(c_r->email);
		free(c_r->der);
		memset(c_r, 0, sizeof(*c_r));
	}
	return rc;
}

/*
 * cert: classification of a certificate for S/MIME use (roles, EKU,
 * addresses, fingerprint, subject, validity).  The containers that
 * certificates arrive in are read by bag.c, pkcs12.c and sst.c.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <smime/cert.h>

/*
 * RFC 5321 4.5.3.1.3: a path is at most 256 octets including the angle
 * brackets, so an address is at most 254.
 */
#define CERT_EMAIL_MAX 254

/* What a key of this type can do, from its algorithm alone. */
static int
key_capable_roles(X509 *cert)
{
	EVP_PKEY *pk = X509_get0_pubkey(cert);

	if (pk == NULL)
		return SMIME_ROLE_NONE;
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		return SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT;
	case EVP_PKEY_EC:
		return SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT;
	case EVP_PKEY_RSA_PSS:
	case EVP_PKEY_ED25519:
	case EVP_PKEY_ED448:
	case EVP_PKEY_DSA:
		return SMIME_ROLE_SIGN;
	case EVP_PKEY_X25519:
	case EVP_PKEY_X448:
		return SMIME_ROLE_ENCRYPT;
	default:
		return SMIME_ROLE_NONE;
	}
}

int
smime_cert_roles(X509 *cert)
{
	uint32_t flags, ku;
	int capable, roles = SMIME_ROLE_NONE, id;
	EVP_PKEY *pk;

	if (cert == NULL)
		return SMIME_ROLE_NONE;
	flags = X509_get_extension_flags(cert);
	/* A certificate whose extensions do not decode is good for nothing. */
	if (flags & EXFLAG_INVALID)
		return SMIME_ROLE_NONE;
	capable = key_capable_roles(cert);
	if (flags & EXFLAG_KUSAGE) {
		ku = X509_get_key_usage(cert);
		/* RFC 8550 4.4.2: digitalSignature or nonRepudiation for signing. */
		if (ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION))
			roles |= SMIME_ROLE_SIGN & capable;
		/* keyEncipherment for RSA (key transport), keyAgreement for EC and X25519/X448. */
		pk = X509_get0_pubkey(cert);
		id = pk != NULL ? EVP_PKEY_get_base_id(pk) : EVP_PKEY_NONE;
		if (id == EVP_PKEY_RSA && (ku & KU_KEY_ENCIPHERMENT))
			roles |= SMIME_ROLE_ENCRYPT;
		if ((id == EVP_PKEY_EC || id == EVP_PKEY_X25519 || id == EVP_PKEY_X448) &&
		    (ku & KU_KEY_AGREEMENT))
			roles |= SMIME_ROLE_ENCRYPT;
	} else {
		/* RFC 5280 4.2.1.3: no keyUsage means no restriction. */
		roles |= capable;
	}
	if ((flags & EXFLAG_BCONS) && (flags & EXFLAG_CA))
		roles |= SMIME_ROLE_CA;
	return roles;
}

bool
smime_cert_email_protection(X509 *cert)
{
	uint32_t flags;

	if (cert == NULL)
		return false;
	flags = X509_get_extension_flags(cert);
	if (flags & EXFLAG_INVALID)
		return false;
	/* RFC 8550 4.4.4: no extendedKeyUsage means any purpose. */
	if (!(flags & EXFLAG_XKUSAGE))
		return true;
	return (X509_get_extended_key_usage(cert) & (XKU_SMIME | XKU_ANYEKU)) != 0;
}

/*
 * An address we keep: 1..CERT_EMAIL_MAX octets, no controls, spaces or
 * commas (the keystore joins addresses with commas), one '@' not at either
 * end.  Returns a lower-cased copy (OPENSSL_malloc) or NULL.
 */
static char *
email_clean(const unsigned char *p, int len)
{
	char *s;
	int i, at = -1;

	if (p == NULL || len <= 0 || len > CERT_EMAIL_MAX)
		return NULL;
	for (i = 0; i < len; i++) {
		if (p[i] <= 0x20 || p[i] == 0x7f || p[i] == ',')
			return NULL;
		if (p[i] == '@')
			at = i;
	}
	if (at <= 0 || at == len - 1)
		return NULL;
	s = OPENSSL_malloc((size_t)len + 1);
	if (s == NULL)
		return NULL;
	for (i = 0; i < len; i++)
		s[i] = (p[i] < 0x80) ? (char)tolower(p[i]) : (char)p[i];
	s[len] = '\0';
	return s;
}

static void
free_string(char *s)
{
	OPENSSL_free(s);
}

/* Append s to list unless present; takes ownership of s.  0 or -1 (OOM). */
static int
email_push(STACK_OF(OPENSSL_STRING) *list, char *s)
{
	int i;

	if (s == NULL)
		return 0;
	if (sk_OPENSSL_STRING_num(list) >= SMIME_CERT_MAX_EMAILS) {
		OPENSSL_free(s);
		return 0;
	}
	for (i = 0; i < sk_OPENSSL_STRING_num(list); i++) {
		if (strcmp(sk_OPENSSL_STRING_value(list, i), s) == 0) {
			OPENSSL_free(s);
			return 0;
		}
	}
	if (!sk_OPENSSL_STRING_push(list, s)) {
		OPENSSL_free(s);
		return -1;
	}
	return 0;
}

STACK_OF(OPENSSL_STRING) *
smime_cert_emails(X509 *cert)
{
	STACK_OF(OPENSSL_STRING) *list = NULL;
	GENERAL_NAMES *gens = NULL;
	const GENERAL_NAME *gen;
	const X509_NAME *name;
	const X509_NAME_ENTRY *ne;
	unsigned char *utf8 = NULL;
	int i, n, len, crit = 0;
	bool ok = false;

	if ((list = sk_OPENSSL_STRING_new_null()) == NULL)
		return NULL;
	if (cert == NULL)
		return list;
	/* RFC 8550 3: subjectAltName rfc822Name first. */
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	n = gens != NULL ? sk_GENERAL_NAME_num(gens) : 0;
	for (i = 0; i < n; i++) {
		gen = sk_GENERAL_NAME_value(gens, i);
		if (gen->type != GEN_EMAIL)
			continue;
		if (email_push(list, email_clean(ASN1_STRING_get0_data(gen->d.rfc822Name),
		    ASN1_STRING_length(gen->d.rfc822Name))) != 0)
			goto out;
	}
	/* Then the deprecated emailAddress attribute of the subject. */
	name = X509_get_subject_name(cert);
	for (i = -1; (i = X509_NAME_get_index_by_NID(name, NID_pkcs9_emailAddress, i)) >= 0;) {
		ne = X509_NAME_get_entry(name, i);
		len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(ne));
		if (len < 0)
			continue;
		if (memchr(utf8, '\0', (size_t)len) == NULL &&
		    email_push(list, email_clean(utf8, len)) != 0)
			goto out;
		OPENSSL_free(utf8);
		utf8 = NULL;
	}
	ok = true;
out:
	OPENSSL_free(utf8);
	GENERAL_NAMES_free(gens);
	if (!ok) {
		sk_OPENSSL_STRING_pop_free(list, free_string);
		list = NULL;
	}
	return list;
}

bool
smime_cert_has_email(X509 *cert, const char *address)
{
	STACK_OF(OPENSSL_STRING) *list;
	bool found = false;
	int i;

	if (cert == NULL || address == NULL)
		return false;
	if ((list = smime_cert_emails(cert)) == NULL)
		return false;
	for (i = 0; i < sk_OPENSSL_STRING_num(list) && !found; i++)
		found = strcasecmp(sk_OPENSSL_STRING_value(list, i), address) == 0;
	sk_OPENSSL_STRING_pop_free(list, free_string);
	return found;
}

void
smime_cert_fingerprint(X509 *cert, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	out[0] = '\0';
	if (cert == NULL || !X509_digest(cert, EVP_sha256(), md, &n) || n != 32)
		return;
	for (i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[64] = '\0';
}

char *
smime_cert_subject(X509 *cert)
{
	BIO *mem = NULL;
	char *s = NULL, *p;
	long n;

	if (cert == NULL || (mem = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	/*
	 * RFC 2253 with control characters escaped, so that the result is one
	 * line; UTF-8 is kept as it is rather than escaped byte by byte.
	 */
	if (X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0,
	    XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
		goto out;
	n = BIO_get_mem_data(mem, &p);
	if (n < 0 || (s = OPENSSL_malloc((size_t)n + 1)) == NULL)
		goto out;
	memcpy(s, p, (size_t)n);
	s[n] = '\0';
out:
	BIO_free(mem);
	return s;
}

/* Seconds since the epoch of an ASN1_TIME; false when it does not decode. */
static bool
asn1_time_t(const ASN1_TIME *t, time_t *r)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return false;
	*r = timegm(&tm);
	return true;
}

bool
smime_cert_valid_at(X509 *cert, time_t at)
{
	time_t nb, na;

	if (cert == NULL)
		return false;
	if (at == 0)
		at = time(NULL);
	if (!asn1_time_t(X509_get0_notBefore(cert), &nb) ||
	    !asn1_time_t(X509_get0_notAfter(cert), &na))
		return false;
	/* RFC 5280 4.1.2.5: both bounds are inclusive. */
	return nb <= at && at <= na;
}

/*
 * smime: the reader of smimed's lookup answers (GET /api/v1/lookup, the
 * Lookup schema of docs/openapi.yaml), for smime encrypt --lookup.
 *
 *   { "email": ADDR,
 *     "encryption": CERT or null,
 *     "signing": [ CERT... ],
 *     "chain": [ { "subject", "sha256", "pem", "der" }... ]   (optional)
 *   }
 *   CERT = { "serial", "purpose", "sha256", "not_before", "not_after", "pem", "der" }
 *
 * The answer is untrusted and read like a schema: every member named here
 * has its JSON type checked, members not named are ignored, and only "der"
 * (base64 of the DER) is read as a certificate, by libsmime's reader;
 * "pem" is the same certificate again and is not read.  Nothing here
 * decides whether a certificate may be used: recipients.c does that against
 * the keystore's trust anchors.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "cli.h"

#define LOOKUP_MAX_DER      (64 * 1024)  /* octets of one certificate */
/* Its base64: four characters for every three octets, the last group padded. */
#define LOOKUP_MAX_B64      (4 * ((LOOKUP_MAX_DER + 2) / 3))

/* Members that, when present, must be strings (or null, for the times). */
static const char *const cert_strings[] = { "serial", "purpose", "sha256", "pem", "subject" };
static const char *const cert_times[] = { "not_before", "not_after" };

/* The base64 alphabet of RFC 4648 4: its value, or -1. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decode s[n], base64 as RFC 4648 4 writes it, into *der_r (malloc'd) and
 * *len_r; NULL with *why on anything else.
 */
static unsigned char *
b64_decode(const char *s, size_t n, size_t *len_r, const char **why)
{
	size_t pad = 0;
	unsigned char *der;
	int got;

	if (n == 0) {
		*why = "empty";
		return NULL;
	}
	if (n > LOOKUP_MAX_B64) {
		*why = "longer than the base64 of a certificate of 64 KiB, the most allowed";
		return NULL;
	}
	/* RFC 4648 3.1, 3.3: no line feeds, nothing outside the alphabet. */
	if (n % 4 != 0) {
		*why = "not base64: its length is not a multiple of 4 (RFC 4648 4)";
		return NULL;
	}
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < n - pad; i++)
		if (b64_value((unsigned char)s[i]) < 0) {
			*why = "not base64: a character outside the alphabet of RFC 4648 4";
			return NULL;
		}
	/* RFC 4648 3.5: the bits of the last character that pad the octets are zero. */
	if ((pad == 2 && (b64_value((unsigned char)s[n - 3]) & 0x0f) != 0) ||
	    (pad == 1 && (b64_value((unsigned char)s[n - 2]) & 0x03) != 0)) {
		*why = "not base64: non-zero pad bits (RFC 4648 3.5)";
		return NULL;
	}
	if ((der = malloc(n / 4 * 3)) == NULL) {
		*why = NULL;
		return NULL;
	}
	got = EVP_DecodeBlock(der, (const unsigned char *)s, (int)n);
	if (got < 0 || (size_t)got != n / 4 * 3) {
		free(der);
		*why = "not base64";
		return NULL;
	}
	*len_r = (size_t)got - pad;
	return der;
}

/*
 * The certificate of one "der" member.  RFC 5280 4.1: Certificate ::=
 * SEQUENCE { tbsCertificate SEQUENCE, ... } in DER, and nothing after it;
 * this rules out PKCS#12, PKCS#7 and keys before libsmime's reader sees
 * the octets.
 */
static int
read_der(const char *where, const char *b64, size_t b64_len, X509 **cert_r,
    struct smime_error *err)
{
	struct smime_bag *bag = NULL;
	struct smime_error e2;
	const unsigned char *p;
	unsigned char *der;
	const char *why = NULL;
	size_t len = 0;
	long clen;
	int tag, cls, r, rc;

	*cert_r = NULL;
	if ((der = b64_decode(b64, b64_len, &len, &why)) == NULL)
		return why == NULL ? smime_error_set(err, SMIME_E_INTERNAL, "out of memory") :
		    smime_error_set(err, SMIME_E_INPUT, "%s.der: %s", where, why);
	p = der;
	r = ASN1_get_object(&p, &clen, &tag, &cls, (long)len);
	ERR_clear_error();
	/* X.690 10.1: DER has definite lengths. */
	if (r != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL ||
	    clen < 2 || (size_t)(p - der) + (size_t)clen != len || p[0] != 0x30) {
		rc = smime_error_set(err, SMIME_E_INPUT, "%s.der: not a DER certificate (RFC 5280 "
		    "4.1: a SEQUENCE holding a SEQUENCE, and nothing after it)", where);
		goto out;
	}
	if ((bag = smime_bag_new()) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if (smime_bag_load(bag, der, len, NULL, &e2) != 0) {
		rc = smime_error_set(err, SMIME_E_INPUT, "%s.der: %s", where, e2.message);
		goto out;
	}
	if (bag->format != SMIME_FORMAT_DER || sk_X509_num(bag->certs) != 1 || bag->n_keys != 0) {
		rc = smime_error_set(err, SMIME_E_INPUT, "%s.der: not one certificate", where);
		goto out;
	}
	*cert_r = sk_X509_shift(bag->certs);
	rc = 0;
out:
	smime_bag_free(bag);
	free(der);
	return rc;
}

/*
 * One certificate object of the answer: the types of its members, its
 * certificate, and that "sha256", when given, is that certificate's.
 */
static int
read_cert(json_t *o, const char *where, X509 **cert_r, struct smime_error *err)
{
	json_t *der = json_object_get(o, "der"), *sha = json_object_get(o, "sha256");
	char fp[65];
	int rc;

	*cert_r = NULL;
	if (!json_is_object(o))
		return smime_error_set(err, SMIME_E_INPUT, "%s: not an object", where);
	if (!json_is_string(der))
		return smime_error_set(err, SMIME_E_INPUT, "%s.der: %s", where, der == NULL ?
		    "missing" : "not a string");
	for (size_t i = 0; i < sizeof(cert_strings) / sizeof(cert_strings[0]); i++) {
		json_t *m = json_object_get(o, cert_strings[i]);
		if (m != NULL && !json_is_string(m))
			return smime_error_set(err, SMIME_E_INPUT, "%s.%s: not a string", where,
			    cert_strings[i]);
	}
	for (size_t i = 0; i < sizeof(cert_times) / sizeof(cert_times[0]); i++) {
		json_t *m = json_object_get(o, cert_times[i]);
		if (m != NULL && !json_is_string(m) && !json_is_null(m))
			return smime_error_set(err, SMIME_E_INPUT, "%s.%s: neither a string nor null",
			    where, cert_times[i]);
	}
	if ((rc = read_der(where, json_string_value(der), json_string_length(der), cert_r,
	    err)) != 0)
		return rc;
	smime_cert_fingerprint(*cert_r, fp);
	if (sha != NULL && (json_string_length(sha) != 64 ||
	    strcasecmp(json_string_value(sha), fp) != 0)) {
		X509_free(*cert_r);
		*cert_r = NULL;
		return smime_error_set(err, SMIME_E_INPUT, "%s.sha256: not the SHA-256 of its "
		    "certificate (SHA256:%.16s)", where, fp);
	}
	return 0;
}

/* Push cert onto st, which owns it then; false when out of memory (cert freed). */
static bool
push(STACK_OF(X509) *st, X509 *cert)
{
	if (sk_X509_push(st, cert))
		return true;
	X509_free(cert);
	return false;
}

/* True when st holds a certificate equal to cert. */
static bool
holds(STACK_OF(X509) *st, X509 *cert)
{
	for (int i = 0; i < sk_X509_num(st); i++)
		if (X509_cmp(sk_X509_value(st, i), cert) == 0)
			return true;
	return false;
}

int
lookup_parse_answer(const char *data, size_t len, const char *address, STACK_OF(X509) *certs,
    STACK_OF(X509) *chain, struct smime_error *err)
{
	STACK_OF(X509) *c = sk_X509_new_null(), *ch = sk_X509_new_null();
	json_t *root = NULL, *email, *enc, *sig, *chn, *item;
	json_error_t je;
	char where[48];
	size_t i, n;
	X509 *x;
	int rc;

	if (c == NULL || ch == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if (len > LOOKUP_ANSWER_MAX) {
		rc = smime_error_set(err, SMIME_E_INPUT, "the answer is longer than %d octets",
		    LOOKUP_ANSWER_MAX);
		goto out;
	}
	/* RFC 8259 4: the names within an object SHOULD be unique; here they must be. */
	if ((root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INPUT, "not JSON (line %d: %.80s)", je.line,
		    je.text);
		goto out;
	}
	if (!json_is_object(root)) {
		rc = smime_error_set(err, SMIME_E_INPUT, "not a JSON object");
		goto out;
	}
	email = json_object_get(root, "email");
	enc = json_object_get(root, "encryption");
	sig = json_object_get(root, "signing");
	chn = json_object_get(root, "chain");
	if (!json_is_string(email)) {
		rc = smime_error_set(err, SMIME_E_INPUT, "email: %s", email == NULL ? "missing" :
		    "not a string");
		goto out;
	}
	if (address != NULL && (json_string_length(email) != strlen(address) ||
	    strcasecmp(json_string_value(email), address) != 0)) {
		rc = smime_error_set(err, SMIME_E_INPUT, "email: the answer is about another "
		    "address than the one asked for");
		goto out;
	}
	if (enc == NULL || (!json_is_object(enc) && !json_is_null(enc))) {
		rc = smime_error_set(err, SMIME_E_INPUT, "encryption: %s", enc == NULL ?
		    "missing" : "neither an object nor null");
		goto out;
	}
	if (!json_is_array(sig)) {
		rc = smime_error_set(err, SMIME_E_INPUT, "signing: %s", sig == NULL ? "missing" :
		    "not an array");
		goto out;
	}
	/* "chain" is newer than the others: an answer without it has none. */
	if (chn != NULL && !json_is_array(chn)) {
		rc = smime_error_set(err, SMIME_E_INPUT, "chain: not an array");
		goto out;
	}
	n = (json_is_object(enc) ? 1 : 0) + json_array_size(sig) + json_array_size(chn);
	if (n > LOOKUP_MAX_CERTS) {
		rc = smime_error_set(err, SMIME_E_INPUT, "%zu certificates, more than the %d "
		    "allowed in one answer", n, LOOKUP_MAX_CERTS);
		goto out;
	}
	if (json_is_object(enc)) {
		if ((rc = read_cert(enc, "encryption", &x, err)) != 0)
			goto out;
		/* RFC 5280 4.2.1.9: a CA certificate is no recipient's. */
		if (smime_cert_roles(x) & SMIME_ROLE_CA) {
			X509_free(x);
			rc = smime_error_set(err, SMIME_E_INPUT, "encryption: a CA certificate, not "
			    "a recipient's");
			goto out;
		}
		if (!push(c, x)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
	}
	json_array_foreach(sig, i, item) {
		snprintf(where, sizeof(where), "signing[%zu]", i);
		if ((rc = read_cert(item, where, &x, err)) != 0)
			goto out;
		if (smime_cert_roles(x) & SMIME_ROLE_CA) {
			X509_free(x);
			rc = smime_error_set(err, SMIME_E_INPUT, "%s: a CA certificate, not a "
			    "recipient's", where);
			goto out;
		}
		/* Only a dual-use one can be encrypted to; it may be the encryption one again. */
		if (!(smime_cert_roles(x) & SMIME_ROLE_ENCRYPT) || holds(c, x)) {
			X509_free(x);
			continue;
		}
		if (!push(c, x)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
	}
	json_array_foreach(chn, i, item) {
		snprintf(where, sizeof(where), "chain[%zu]", i);
		if ((rc = read_cert(item, where, &x, err)) != 0)
			goto out;
		/* RFC 5280 4.2.1.9: what issues certificates asserts cA. */
		if (!(smime_cert_roles(x) & SMIME_ROLE_CA)) {
			X509_free(x);
			rc = smime_error_set(err, SMIME_E_INPUT, "%s: not a CA certificate", where);
			goto out;
		}
		if (!push(ch, x)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
	}
	/* Handed over only now: on an error above, certs and chain are untouched. */
	while (sk_X509_num(c) > 0 || sk_X509_num(ch) > 0) {
		STACK_OF(X509) *from = sk_X509_num(c) > 0 ? c : ch, *to = from == c ? certs : chain;
		x = sk_X509_shift(from);
		if (!push(to, x)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(root);
	sk_X509_pop_free(c, X509_free);
	sk_X509_pop_free(ch, X509_free);
	return rc;
}

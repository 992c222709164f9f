/*
 * libFuzzer target: the SMIMEEncryptionKeyPreference value of a signature
 * (RFC 8551 2.5.3, lib/keypref.c), which a signer controls entirely.
 *
 * Whatever decodes is matched against a fixed certificate, by issuer and
 * serial number or by subject key identifier.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/x509.h>

#include "../lib/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A self-signed certificate made once, to match against. */
static X509 *
fixed_cert(void)
{
	static X509 *c;
	EVP_PKEY *k;
	X509_NAME *n;

	if (c != NULL)
		return c;
	k = EVP_EC_gen("P-256");
	c = X509_new();
	n = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
	X509_set_issuer_name(c, n);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
	X509_gmtime_adj(X509_getm_notBefore(c), 0);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400);
	X509_set_pubkey(c, k);
	X509_sign(c, k, EVP_sha256());
	EVP_PKEY_free(k);
	return c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smime_error err;
	bool match;

	smime_init();
	if (keypref_check(data, size, fixed_cert(), &match, &err) != 0 && err.code != SMIME_E_INPUT)
		abort();
	return 0;
}

/*
 * libFuzzer target: the reader of smimed's lookup answers
 * (lookup_parse_answer, cli/lookup_answer.c) on any bytes.  It must never
 * crash, leak or hang; a refused answer leaves both stacks empty and says
 * why; an accepted one gives at most LOOKUP_MAX_CERTS certificates, no CA
 * among the candidates and only CAs in the chain.
 */
#include <stdint.h>
#include <stdlib.h>

#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const uint8_t *data, size_t size, const char *address)
{
	STACK_OF(X509) *certs = sk_X509_new_null(), *chain = sk_X509_new_null();
	struct smime_error err = { 0 };

	if (certs == NULL || chain == NULL)
		abort();
	if (lookup_parse_answer((const char *)data, size, address, certs, chain, &err) != 0) {
		if (sk_X509_num(certs) != 0 || sk_X509_num(chain) != 0 || err.message[0] == '\0')
			abort();
	} else {
		if (sk_X509_num(certs) + sk_X509_num(chain) > LOOKUP_MAX_CERTS)
			abort();
		for (int i = 0; i < sk_X509_num(certs); i++)
			if (smime_cert_roles(sk_X509_value(certs, i)) & SMIME_ROLE_CA)
				abort();
		for (int i = 0; i < sk_X509_num(chain); i++)
			if (!(smime_cert_roles(sk_X509_value(chain, i)) & SMIME_ROLE_CA))
				abort();
	}
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(chain, X509_free);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size, NULL);
	check(data, size, "bob@example.org");
	return 0;
}

/*
 * libFuzzer target: smime_pkcs12_read on any bytes with no password (the
 * empty and the absent one are tried), so that seeds made with an empty
 * password or without a MAC reach the bags.
 */
#include <stdint.h>
#include <stdlib.h>

#include <smime/smime.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smime_bag *bag = smime_bag_new();
	struct smime_error err;

	if (bag == NULL)
		abort();
	if (smime_pkcs12_read(bag, data, size, NULL, &err) != 0 &&
	    (sk_X509_num(bag->certs) != 0 || bag->n_keys != 0))
		abort(); /* a failed read appended something */
	smime_bag_free(bag);
	return 0;
}

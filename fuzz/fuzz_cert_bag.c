/*
 * libFuzzer target: smime_bag_load on any bytes (PEM, DER, PKCS#7, SST,
 * PKCS#12, keys; mail messages refused).  Must never crash, leak or hang;
 * a failed load must leave the bag empty.
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
	if (smime_bag_load(bag, data, size, NULL, &err) != 0 &&
	    (sk_X509_num(bag->certs) != 0 || bag->n_keys != 0))
		abort(); /* a failed load appended something */
	smime_bag_free(bag);
	return 0;
}

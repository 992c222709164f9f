/*
 * libFuzzer target: smime_sst_read on any bytes.  What reads must write
 * back and read again to the same number of certificates.
 *
 * Inputs are capped at SST_FUZZ_MAX: the Windows Update stores are 140 to
 * 760 KB of a few hundred groups alike, and fuzzing them ran 23 inputs a
 * second; every element kind and limit but the count of certificates is
 * reached within a few groups.  scripts/run-tests.sh also passes -max_len.
 */
#include <stdint.h>
#include <stdlib.h>

#include <smime/smime.h>

#define SST_FUZZ_MAX (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	STACK_OF(X509) *certs, *again;
	struct smime_error err;
	unsigned char *out;
	BIO *bio;
	long n;

	if (size > SST_FUZZ_MAX)
		return 0;
	certs = sk_X509_new_null();
	again = sk_X509_new_null();
	if (certs == NULL || again == NULL)
		abort();
	(void)smime_sst_detect(data, size);
	if (smime_sst_read(data, size, certs, &err) == 0) {
		if ((bio = BIO_new(BIO_s_mem())) == NULL ||
		    smime_sst_write(bio, certs, &err) != 0)
			abort();
		n = BIO_get_mem_data(bio, &out);
		if (smime_sst_read(out, (size_t)n, again, &err) != 0 ||
		    sk_X509_num(again) != sk_X509_num(certs))
			abort(); /* write -> read does not round-trip */
		BIO_free(bio);
	} else if (sk_X509_num(certs) != 0) {
		abort(); /* a failed read appended something */
	}
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(again, X509_free);
	return 0;
}

/*
 * libFuzzer target: a whole message through every reader of lib/mime.c,
 * lib/open.c and lib/inspect.c (inspect, extract, verify, decrypt, open)
 * with an empty keystore.  Must never crash, leak or hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <smime/smime.h>

static struct smime_keystore *ks;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smime_verify_opts vo = { .no_harvest = true };
	struct smime_error err;
	struct smime_report *r = NULL;
	struct smime_inspection *ins = NULL;
	struct smime_bag *bag;
	BIO *in, *out;

	if (ks == NULL) {
		char dir[] = "/tmp/smime-fuzz-XXXXXX";
		smime_init();
		if (mkdtemp(dir) == NULL ||
		    smime_keystore_open(dir, SMIME_KEYSTORE_CREATE, &ks, &err) != 0)
			abort();
		smime_keystore_set_passphrase(ks, "fuzz");
	}
	if (size > 1 << 20)
		return 0;

	in = BIO_new_mem_buf(data, (int)size);
	if (smime_msg_inspect(in, &ins, &err) == 0)
		smime_inspection_free(ins);
	BIO_free(in);

	in = BIO_new_mem_buf(data, (int)size);
	bag = smime_bag_new();
	(void)smime_msg_extract(in, NULL, bag, &err);
	smime_bag_free(bag);
	BIO_free(in);

	in = BIO_new_mem_buf(data, (int)size);
	out = BIO_new(BIO_s_mem());
	(void)smime_msg_verify(ks, &vo, in, out, &r, &err);
	smime_report_free(r);
	BIO_free(in);
	BIO_free(out);

	in = BIO_new_mem_buf(data, (int)size);
	out = BIO_new(BIO_s_mem());
	(void)smime_msg_open(ks, &vo, in, out, &r, &err);
	smime_report_free(r);
	BIO_free(in);
	BIO_free(out);
	return 0;
}

/*
 * libFuzzer target: the keystore index parser (lib/keystore.c).
 *
 * Whatever parses must write back byte for byte (the format is canonical;
 * an index of version 1 is written as version 2, which must then read back
 * and write again byte for byte), and every entry must be found again by
 * its fingerprint.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/keystore_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smime_keystore *ks = keystore_new_detached();
	struct smime_error err;
	const struct smime_entry *e;
	struct buf out;
	char fp[65];
	size_t i;

	if (ks == NULL)
		return 0;
	if (keystore_index_parse(ks, data, size, &err) == 0) {
		static const char v1[] = "smime-keystore-index\t1\t";
		bool old = size >= sizeof(v1) - 1 && memcmp(data, v1, sizeof(v1) - 1) == 0;
		buf_init(&out, KEYSTORE_INDEX_MAX);
		if (keystore_index_write(ks, &out, &err) != 0)
			abort();
		if (old) {
			struct smime_keystore *again = keystore_new_detached();
			struct buf out2;
			buf_init(&out2, KEYSTORE_INDEX_MAX);
			if (again == NULL || keystore_index_parse(again, out.data, out.len, &err) != 0 ||
			    smime_keystore_count(again) != smime_keystore_count(ks) ||
			    keystore_index_write(again, &out2, &err) != 0 || out2.len != out.len ||
			    memcmp(out2.data, out.data, out.len) != 0)
				abort();
			buf_free(&out2);
			smime_keystore_free(again);
		} else if (out.len != size || memcmp(out.data, data, size) != 0) {
			abort();
		}
		buf_free(&out);
		for (i = 0; i < smime_keystore_count(ks); i++) {
			e = smime_keystore_entry(ks, i);
			if (smime_keystore_lookup(ks, e->fingerprint) != e)
				abort();
		}
		/* Choosing walks the entries; with no folder no certificate loads. */
		(void)smime_keystore_identity(ks, SMIME_ROLE_ENCRYPT, "a@b.c", 1, fp, &err);
	}
	smime_keystore_free(ks);
	return 0;
}

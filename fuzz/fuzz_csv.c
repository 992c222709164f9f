/*
 * libFuzzer target: the CSV reader of user imports (server/csv.c) on any
 * bytes.  Every record it returns has its fields inside the buffer, and it
 * always ends.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csv c;
	char *fields[8];
	char buf[512];
	const char *why;
	size_t records = 0;
	int n;

	csv_init(&c, (const char *)data, size);
	while ((n = csv_record(&c, fields, 8, buf, sizeof(buf), &why)) > 0) {
		if (n > 8)
			abort();
		for (int i = 0; i < n; i++)
			if (fields[i] < buf || fields[i] >= buf + sizeof(buf) ||
			    strlen(fields[i]) >= sizeof(buf))
				abort();
		/* Each record consumes at least one octet. */
		if (++records > size + 1)
			abort();
	}
	if (n < 0 && why == NULL)
		abort();
	return 0;
}

/*
 * The keystore's settings file (cli/settings.c): any text of at most
 * SETTINGS_MAX octets, as a user may have edited it, looked up by every
 * name the client asks for and by names that are prefixes of others.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "prefer-gcm", "prefer", "p", "prefer-gcm-x" };
	char text[SETTINGS_MAX + 1], val[256], tiny[2];

	if (size > SETTINGS_MAX)
		return -1;
	memcpy(text, data, size);
	text[size] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (settings_find(text, names[i], val, sizeof(val)) && strlen(val) >= sizeof(val))
			abort();
		if (settings_find(text, names[i], tiny, sizeof(tiny)) && strlen(tiny) > 1)
			abort();
	}
	return 0;
}

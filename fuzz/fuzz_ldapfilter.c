/*
 * libFuzzer target: LDAP filters built from a template and an address
 * (common/ldapfilter.c), as the service and the client build them for
 * untrusted addresses.  The input is TEMPLATE NUL ADDRESS.  Whatever the
 * address holds, the filter's syntax is the template's: the address adds
 * no parenthesis, asterisk, NUL or unescaped backslash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ldapfilter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Octets that are filter syntax (RFC 4515 3), outside "\XX" escapes. */
static void
syntax(const char *s, size_t counts[3])
{
	memset(counts, 0, 3 * sizeof(*counts));
	for (; *s != '\0'; s++) {
		if (*s == '\\') {
			if (s[1] == '\0' || s[2] == '\0')
				abort();            /* an escape is always two hex digits */
			s += 2;
			continue;
		}
		counts[0] += *s == '(';
		counts[1] += *s == ')';
		counts[2] += *s == '*';
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2), *tmpl, *addr, out[LDAPFILTER_MAX], *bare;
	size_t want[3], got[3];
	const char *why = NULL;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = '\0';
	tmpl = buf;
	addr = buf + strlen(buf) + 1;
	if (addr > buf + size)
		addr = buf + size;
	(void)ldapfilter_host_ok(addr);
	if (!ldapfilter_template_ok(tmpl, &why)) {
		if (why == NULL)
			abort();
		free(buf);
		return 0;
	}
	if (ldapfilter_build(tmpl, addr, out)) {
		if (strlen(out) >= LDAPFILTER_MAX)
			abort();
		/* The same template with an empty address has the same syntax. */
		if ((bare = calloc(1, LDAPFILTER_MAX)) == NULL || !ldapfilter_build(tmpl, "", bare))
			abort();
		syntax(out, got);
		syntax(bare, want);
		if (memcmp(got, want, sizeof(got)) != 0)
			abort();
		free(bare);
	}
	free(buf);
	return 0;
}

/* LDAP search filters from a template and an address (ldapfilter.h). */
#include <ctype.h>
#include <string.h>

#include "ldapfilter.h"

bool
ldapfilter_template_ok(const char *f, const char **why)
{
	size_t n = 0, len = strlen(f);

	if (len > LDAPFILTER_MAX / 2) {
		*why = "is too long";
		return false;
	}
	if (len == 0 || f[0] != '(' || f[len - 1] != ')') {
		*why = "must be one parenthesised filter, as RFC 4515 writes them";
		return false;
	}
	for (const char *p = f; *p != '\0'; p++) {
		/* RFC 4515 3: a backslash starts an escape of two hex digits. */
		if (*p == '\\' && !(isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2]))) {
			*why = "has a backslash that is not an escape of two hexadecimal digits "
			    "(RFC 4515 3)";
			return false;
		}
		if (*p != '%')
			continue;
		if (p[1] == 's')
			n++;
		else if (p[1] != '%') {
			*why = "may hold only %s (the address) and %% after a percent sign";
			return false;
		}
		p++;
	}
	if (n == 0) {
		*why = "must hold %s where the address goes";
		return false;
	}
	return true;
}

/*
 * RFC 4515 3: the value of an assertion escapes '*', '(', ')', '\' and NUL
 * as \XX; any other octet may be escaped too.  Every octet that is not a
 * letter, a digit or one of "@.-_+" is, so that nothing in an address can
 * act as filter syntax.  out holds at least 3 * len + 1 octets.
 */
static void
escape(const char *in, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	char *o = out;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if ((c < 0x80 && isalnum(c)) || c == '@' || c == '.' || c == '-' || c == '_' ||
		    c == '+') {
			*o++ = (char)c;
		} else {
			*o++ = '\\';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
}

bool
ldapfilter_build(const char *tmpl, const char *address, char out[LDAPFILTER_MAX])
{
	char esc[3 * (LDAPFILTER_MAX / 2) + 1];
	size_t n = 0, elen, alen = strlen(address);

	if (alen > LDAPFILTER_MAX / 2)
		return false;
	escape(address, alen, esc);
	elen = strlen(esc);
	for (const char *p = tmpl; *p != '\0'; p++) {
		const char *piece = p;
		size_t plen = 1;
		if (*p == '%' && p[1] == 's') {
			piece = esc;
			plen = elen;
			p++;
		} else if (*p == '%' && p[1] == '%') {
			p++;
		}
		if (n + plen >= LDAPFILTER_MAX)
			return false;
		memcpy(out + n, piece, plen);
		n += plen;
	}
	out[n] = '\0';
	return true;
}

bool
ldapfilter_host_ok(const char *h)
{
	if (h == NULL || h[0] == '\0' || strlen(h) > 255)
		return false;
	for (const char *p = h; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != ':')
			return false;
	return true;
}

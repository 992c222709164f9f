/*
 * LDAP search filters built from a template and a mail address, for the
 * client's lookups (cli/ldap.c) and the service's publication
 * (server/directory.c).  Nothing of an address can act as filter syntax.
 */
#ifndef SMIME_LDAPFILTER_H
#define SMIME_LDAPFILTER_H

#include <stdbool.h>
#include <stddef.h>

#define LDAPFILTER_MAX 2048          /* octets of a built filter, NUL included */

/*
 * The template: one parenthesised filter in which "%s" stands for the
 * escaped address (at least once) and "%%" for a percent sign; nothing
 * else may follow a percent sign.  *why says what is wrong.
 */
bool ldapfilter_template_ok(const char *tmpl, const char **why);

/* The filter for address: the template with each %s replaced by the
 * address escaped (RFC 4515 3); false when it would not fit out. */
bool ldapfilter_build(const char *tmpl, const char *address, char out[LDAPFILTER_MAX]);

/* A host name, IPv4 or IPv6 address: nothing that could reshape a URI. */
bool ldapfilter_host_ok(const char *host);

#endif

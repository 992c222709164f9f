/*
 * smime: recipients' certificates from an LDAP directory (smime encrypt
 * --ldap), as Outlook and Thunderbird look them up.
 *
 * The directory is untrusted: every answer is bounded (entries, values,
 * value size, message size, time), every value is read by libsmime's
 * certificate readers, and a certificate is taken only when it passes the
 * checks the keystore applies to a contact (encryption key usage, EKU
 * emailProtection, the recipient's address, valid now) and chains to a
 * trust anchor of the keystore.  What passes is added to the contacts.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ldap.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cli.h"

#define LDAP_SIZE_LIMIT   16                 /* entries answering one address */
#define LDAP_TIME_LIMIT   10                 /* seconds, asked of the server and waited */
#define LDAP_WATCHDOG     (LDAP_TIME_LIMIT + 5) /* seconds for connecting, or for one search */
#define LDAP_MAX_VALUE    (64 * 1024)        /* octets of one attribute value */
#define LDAP_MAX_VALUES   32                 /* values of one attribute of one entry */
#define LDAP_MAX_CERTS    64                 /* certificates for one address, all values */
/* One message from the server: an entry with its four attributes at their limits. */
#define LDAP_MAX_PDU      (4 * LDAP_MAX_VALUES * LDAP_MAX_VALUE + 64 * 1024)
#define LDAP_MAX_FILTER   2048
#define LDAP_MAX_URL      2048
/* RFC 5321 4.5.3.1: local part 64 octets, a path 256 (254 without the brackets). */
#define ADDR_MAX_LOCAL    64
#define ADDR_MAX          254

#define DEFAULT_FILTER    "(|(mail=%s)(otherMailbox=%s))"

struct ldap_dir {
	char *uri;               /* scheme://host:port, what ldap_initialize gets */
	char *url;               /* as given, for messages */
	char *base;
	const char *bind_dn;     /* NULL: anonymous */
	char *password;          /* cleansed on free */
	const char *filter;
	const char *cacert;
	bool starttls;
	bool tls;                /* ldaps:// or StartTLS */
	LDAP *ld;                /* connected and bound, or NULL */
	bool broken;             /* connecting or a search failed: no more tries */
};

/* What became of one address. */
struct lookup {
	const char *address;
	const char *status;      /* found, not-found, refused, error, invalid-address, skipped */
	char reason[SMIME_ERROR_MAX];
	json_t *certs;           /* the certificates added: [{fingerprint, subject}] */
	json_t *refused;         /* [{fingerprint, subject, reason}] */
};

static void
str_free(char *s)
{
	OPENSSL_free(s);
}

static void
say(const char *fmt, ...) SMIME_PRINTF(1, 2);

static void
say(const char *fmt, ...)
{
	char buf[2 * SMIME_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	admin_sanitize(buf);
	fprintf(stderr, "smime encrypt: directory: %s\n", buf);
}

/* --- options ------------------------------------------------------------ */

/* A host name, IPv4 or IPv6 address: nothing that could reshape the URI. */
static bool
host_ok(const char *h)
{
	if (h == NULL || h[0] == '\0' || strlen(h) > 255)
		return false;
	for (const char *p = h; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != ':')
			return false;
	return true;
}

/*
 * The filter template: "%s" stands for the escaped address (at least once),
 * "%%" for a percent sign; nothing else may follow a percent sign.
 */
static bool
filter_template_ok(const char *f, const char **why)
{
	size_t n = 0;

	if (strlen(f) > LDAP_MAX_FILTER / 2) {
		*why = "is too long";
		return false;
	}
	if (f[0] != '(' || f[strlen(f) - 1] != ')') {
		*why = "must be one parenthesised filter, as RFC 4515 writes them";
		return false;
	}
	for (const char *p = f; *p != '\0'; p++) {
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

int
ldap_dir_new(const char *cmd, const struct ldap_opts *o, struct ldap_dir **d_r)
{
	struct ldap_dir *d = NULL;
	LDAPURLDesc *u = NULL;
	struct smime_error err;
	const char *why;
	const char *src = o->url_from_env ? "SMIME_LDAP" : "--ldap";
	int rc = EXIT_USAGE;

	*d_r = NULL;
	if (o->url == NULL || o->url[0] == '\0')
		return usage_error(cmd, "%s wants a URL such as ldap://HOST:PORT/BASE_DN", src);
	if (strlen(o->url) > LDAP_MAX_URL)
		return usage_error(cmd, "%s: the URL is longer than %d characters", src,
		    LDAP_MAX_URL);
	/* RFC 4516 2: ldap://host:port/dn?attributes?scope?filter?extensions */
	if (ldap_url_parse(o->url, &u) != LDAP_URL_SUCCESS)
		return usage_error(cmd, "%s '%s' is not an LDAP URL (RFC 4516: "
		    "ldap://HOST:PORT/BASE_DN)", src, o->url);
	if (strcmp(u->lud_scheme, "ldap") != 0 && strcmp(u->lud_scheme, "ldaps") != 0) {
		usage_error(cmd, "%s: the scheme must be ldap or ldaps, not %s", src, u->lud_scheme);
		goto out;
	}
	if (!host_ok(u->lud_host)) {
		usage_error(cmd, "%s '%s': no host, or not a host name or address", src, o->url);
		goto out;
	}
	if (u->lud_port <= 0 || u->lud_port > 65535) {
		usage_error(cmd, "%s '%s': the port is not between 1 and 65535", src, o->url);
		goto out;
	}
	if (u->lud_attrs != NULL || u->lud_filter != NULL || u->lud_exts != NULL ||
	    (u->lud_scope != LDAP_SCOPE_BASE && u->lud_scope != LDAP_SCOPE_SUBTREE)) {
		usage_error(cmd, "%s '%s': the URL may name only the host, port and base DN; "
		    "the attributes are fixed, the scope is the subtree and the filter is "
		    "--ldap-filter", src, o->url);
		goto out;
	}
	if (o->starttls && strcmp(u->lud_scheme, "ldaps") == 0) {
		usage_error(cmd, "--ldap-starttls with an ldaps:// URL: choose one");
		goto out;
	}
	if (o->cacert != NULL && access(o->cacert, R_OK) != 0) {
		usage_error(cmd, "--ldap-cacert %s: %s", o->cacert, strerror(errno));
		goto out;
	}
	if (o->cacert != NULL && !o->starttls && strcmp(u->lud_scheme, "ldaps") != 0) {
		usage_error(cmd, "--ldap-cacert is for TLS: an ldaps:// URL or --ldap-starttls");
		goto out;
	}
	if ((o->bind_dn == NULL) != (o->password_file == NULL)) {
		usage_error(cmd, "--ldap-bind-dn and --ldap-password-file go together "
		    "(without both, the bind is anonymous)");
		goto out;
	}
	if (o->filter != NULL && !filter_template_ok(o->filter, &why)) {
		usage_error(cmd, "--ldap-filter %s", why);
		goto out;
	}
	if ((o->base == NULL || o->base[0] == '\0') && (u->lud_dn == NULL || u->lud_dn[0] == '\0')) {
		usage_error(cmd, "%s: no base DN: give it in the URL (ldap://HOST:PORT/BASE_DN) "
		    "or with --ldap-base", src);
		goto out;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL)
		goto oom;
	d->uri = malloc(strlen(u->lud_host) + 32);
	d->url = strdup(o->url);
	d->base = strdup(o->base != NULL && o->base[0] != '\0' ? o->base : u->lud_dn);
	if (d->uri == NULL || d->url == NULL || d->base == NULL)
		goto oom;
	sprintf(d->uri, strchr(u->lud_host, ':') ? "%s://[%s]:%d" : "%s://%s:%d", u->lud_scheme,
	    u->lud_host, u->lud_port);
	d->bind_dn = o->bind_dn;
	d->filter = o->filter != NULL ? o->filter : DEFAULT_FILTER;
	d->cacert = o->cacert;
	d->starttls = o->starttls;
	d->tls = o->starttls || strcmp(u->lud_scheme, "ldaps") == 0;
	if (o->password_file != NULL &&
	    (d->password = read_secret_file(o->password_file, &err)) == NULL) {
		rc = fail(cmd, &err);
		goto out;
	}
	/* RFC 4513 5.1.2: a name without a password is an unauthenticated bind. */
	if (d->password != NULL && d->password[0] == '\0') {
		usage_error(cmd, "--ldap-password-file %s is empty (a DN without a password "
		    "is an unauthenticated bind, RFC 4513 5.1.2)", o->password_file);
		goto out;
	}
	*d_r = d;
	d = NULL;
	rc = EXIT_OK;
	goto out;
oom:
	smime_error_set(&err, SMIME_E_INTERNAL, "out of memory");
	rc = fail(cmd, &err);
out:
	ldap_dir_free(d);
	ldap_free_urldesc(u);
	return rc;
}

void
ldap_dir_free(struct ldap_dir *d)
{
	if (d == NULL)
		return;
	if (d->ld != NULL)
		ldap_unbind_ext_s(d->ld, NULL, NULL);
	secret_free(d->password);
	free(d->uri);
	free(d->url);
	free(d->base);
	free(d);
}

/* --- addresses and filters ------------------------------------------------ */

/* RFC 5322 3.2.3 atext, with RFC 6532 3.2's UTF-8 octets. */
static bool
atext(unsigned char c)
{
	return isalnum(c) || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/*
 * A mailbox the directory may be asked about: dot-atom@domain (RFC 5322
 * 3.4.1 without quoted local parts or domain literals), within RFC 5321's
 * lengths.  Anything else is refused before it reaches a filter.
 */
static bool
address_ok(const char *a, const char **why)
{
	const char *at = strchr(a, '@'), *p;
	size_t len = strlen(a), label = 0;

	if (len > ADDR_MAX) {
		*why = "longer than 254 octets (RFC 5321 4.5.3.1.3)";
		return false;
	}
	if (at == NULL || strchr(at + 1, '@') != NULL || at == a || at[1] == '\0') {
		*why = "not one local part, one @ and one domain";
		return false;
	}
	if ((size_t)(at - a) > ADDR_MAX_LOCAL) {
		*why = "a local part longer than 64 octets (RFC 5321 4.5.3.1.1)";
		return false;
	}
	/* RFC 5322 3.2.3: dot-atom-text = 1*atext *("." 1*atext) */
	for (p = a; p < at; p++) {
		if (*p == '.' ? (p == a || p + 1 == at || p[1] == '.') : !atext((unsigned char)*p)) {
			*why = "the local part is not a dot-atom (RFC 5322 3.2.3): quoted local "
			    "parts, spaces, parentheses, backslashes and control characters are "
			    "not looked up";
			return false;
		}
	}
	/* RFC 5321 4.1.2: Domain = sub-domain *("." sub-domain), Let-dig [Ldh-str] */
	for (p = at + 1; ; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || p[-1] == '-') {
				*why = "the domain is not a sequence of host name labels (RFC 5321 4.1.2)";
				return false;
			}
			if (*p == '\0')
				break;
			label = 0;
			continue;
		}
		if (!(isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80 ||
		    (*p == '-' && label > 0))) {
			*why = "the domain is not a sequence of host name labels (RFC 5321 4.1.2)";
			return false;
		}
		label++;
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
filter_escape(const char *in, size_t len, char *out)
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

/* The filter for address: the template with each %s replaced; false when too long. */
static bool
filter_build(const char *tmpl, const char *address, char out[LDAP_MAX_FILTER])
{
	char esc[3 * ADDR_MAX + 1];
	size_t n = 0, elen;

	filter_escape(address, strlen(address), esc);
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
		if (n + plen >= LDAP_MAX_FILTER)
			return false;
		memcpy(out + n, piece, plen);
		n += plen;
	}
	out[n] = '\0';
	return true;
}

/* --- the connection ---------------------------------------------------- */

/*
 * A watchdog over every exchange with the directory.  libldap's own
 * timeouts do not cover everything: a server that stalls in the TLS
 * handshake makes libldap 2.5 with GnuTLS spin on EAGAIN for as long as
 * the server keeps the connection, and one that stops in the middle of a
 * message blocks a read.  When the watchdog's time is up, SIGALRM shuts the
 * socket down (shutdown(2) is async-signal-safe): the read ends, libldap
 * fails, and the lookup reports that the directory did not answer.
 */
static volatile sig_atomic_t watch_fd = -1;
static volatile sig_atomic_t watch_fired;
static struct sigaction watch_old;

static void
watch_alarm(int sig)
{
	int saved = errno;

	(void)sig;
	watch_fired = 1;
	if (watch_fd >= 0)
		(void)shutdown(watch_fd, SHUT_RDWR);
	errno = saved;
}

/* LDAP_OPT_CONNECT_CB: the socket of the connection, for the watchdog. */
static int
watch_conn_add(LDAP *ld, Sockbuf *sb, LDAPURLDesc *srv, struct sockaddr *addr,
    struct ldap_conncb *ctx)
{
	ber_socket_t fd = -1;

	if (ber_sockbuf_ctrl(sb, LBER_SB_OPT_GET_FD, &fd) == 1)
		watch_fd = fd;
	return 0;
}

static void
watch_conn_del(LDAP *ld, Sockbuf *sb, struct ldap_conncb *ctx)
{
	watch_fd = -1;
}

static void
watch_start(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = watch_alarm;
	sigemptyset(&sa.sa_mask);
	watch_fired = 0;
	(void)sigaction(SIGALRM, &sa, &watch_old);
	alarm(LDAP_WATCHDOG);
}

static void
watch_stop(void)
{
	alarm(0);
	(void)sigaction(SIGALRM, &watch_old, NULL);
}

/* The server's diagnostic message after a failed operation, or "". */
static void
diagnostic(LDAP *ld, char *buf, size_t size)
{
	char *msg = NULL;

	buf[0] = '\0';
	if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) == LDAP_OPT_SUCCESS &&
	    msg != NULL && msg[0] != '\0' && strcmp(msg, "(unknown error code)") != 0)
		snprintf(buf, size, " (%.200s)", msg);
	ldap_memfree(msg);
}

static int
dir_connect(struct ldap_dir *d, struct smime_error *err)
{
	static struct ldap_conncb watch_cb = { watch_conn_add, watch_conn_del, NULL };
	struct timeval tv = { LDAP_TIME_LIMIT, 0 };
	struct berval cred = { 0, NULL };
	int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;
	int tls12 = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2, deref = LDAP_DEREF_NEVER;
	ber_len_t max = LDAP_MAX_PDU;
	Sockbuf *sb = NULL;
	char diag[256];
	LDAP *ld = NULL;
	int rc;

	if ((rc = ldap_initialize(&ld, d->uri)) != LDAP_SUCCESS)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", d->url, ldap_err2string(rc));
	if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_DEREF, &deref) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_CONNECT_CB, &watch_cb) != LDAP_OPT_SUCCESS) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "%s: cannot set the LDAP options", d->url);
		goto out;
	}
	/* A server's message larger than this fails the read, not the memory. */
	if (ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) != LDAP_OPT_SUCCESS || sb == NULL ||
	    ber_sockbuf_ctrl(sb, LBER_SB_OPT_SET_MAX_INCOMING, &max) != 1) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "%s: cannot bound the LDAP messages",
		    d->url);
		goto out;
	}
	/* TLS (ldaps:// or StartTLS): the server's certificate and name are checked. */
	if (d->tls && (ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &tls12) != LDAP_OPT_SUCCESS ||
	    (d->cacert != NULL &&
	    ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, d->cacert) != LDAP_OPT_SUCCESS) ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero) != LDAP_OPT_SUCCESS)) {
		rc = smime_error_set(err, SMIME_E_IO, "%s: cannot set up TLS%s%s", d->url,
		    d->cacert ? " with --ldap-cacert " : "", d->cacert ? d->cacert : "");
		goto out;
	}
	watch_start();
	if (d->starttls && (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
		watch_stop();
		diagnostic(ld, diag, sizeof(diag));
		if (watch_fired)
			rc = smime_error_set(err, SMIME_E_IO, "%s: StartTLS: no answer within %d s",
			    d->url, LDAP_WATCHDOG);
		else
			rc = smime_error_set(err, SMIME_E_IO, "%s: StartTLS failed: %s%s", d->url,
			    ldap_err2string(rc), diag);
		goto out;
	}
	if (d->password != NULL) {
		cred.bv_val = d->password;
		cred.bv_len = strlen(d->password);
	}
	rc = ldap_sasl_bind_s(ld, d->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	watch_stop();
	if (rc != LDAP_SUCCESS && watch_fired) {
		rc = smime_error_set(err, SMIME_E_IO, "%s: cannot connect: no answer within %d s",
		    d->url, LDAP_WATCHDOG);
		goto out;
	}
	if (rc != LDAP_SUCCESS) {
		diagnostic(ld, diag, sizeof(diag));
		if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT)
			rc = smime_error_set(err, SMIME_E_IO, "%s: cannot connect: %s%s%s", d->url,
			    ldap_err2string(rc), diag, d->tls && rc != LDAP_TIMEOUT ? "; or the "
			    "server's TLS certificate is not trusted (--ldap-cacert) or does not "
			    "name this host" : "");
		else
			rc = smime_error_set(err, SMIME_E_IO, "%s: the %s bind was refused: %s%s",
			    d->url, d->bind_dn ? "simple" : "anonymous", ldap_err2string(rc), diag);
		goto out;
	}
	d->ld = ld;
	ld = NULL;
	rc = 0;
out:
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	return rc;
}

/* --- one search ------------------------------------------------------- */

/* userSMIMECertificate or userCertificate, with no option but ;binary. */
static bool
cert_attribute(const char *attr)
{
	static const char *const names[] = { "userSMIMECertificate", "userCertificate" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]);
		if (strncasecmp(attr, names[i], n) == 0 &&
		    (attr[n] == '\0' || strcasecmp(attr + n, ";binary") == 0))
			return true;
	}
	return false;
}

/* A value that could not be read: noted, and the others are still read. */
static void
value_refused(struct lookup *l, const char *attr, size_t idx, const char *why)
{
	char what[96];

	snprintf(what, sizeof(what), "value %zu of %.40s", idx + 1, attr);
	json_array_append_new(l->refused, json_pack("{s:s,s:s}", "value", what, "reason", why));
	if (!g.json)
		say("%s: refused %s: %s", l->address, what, why);
	snprintf(l->reason, sizeof(l->reason), "%s: %s", what, why);
}

/*
 * Read the certificates of one value (a DER certificate, or PKCS#7
 * certs-only SignedData as Outlook publishes userSMIMECertificate) into
 * certs.  Anything else is refused: PEM, PKCS#12, private keys.  Only a
 * broken bound fails (an error); a value that is no certificate is noted
 * in l and skipped.
 */
static int
value_certs(const struct berval *v, const char *attr, size_t idx, STACK_OF(X509) *certs,
    struct lookup *l, struct smime_error *err)
{
	struct smime_bag *bag = NULL;
	struct smime_error e2;
	int rc;

	if (v->bv_len > LDAP_MAX_VALUE)
		return smime_error_set(err, SMIME_E_INPUT, "value %zu of %.40s holds %lu octets, "
		    "more than the %d allowed", idx + 1, attr, (unsigned long)v->bv_len,
		    LDAP_MAX_VALUE);
	/* X.690 8.9: both are a SEQUENCE; so is no PEM, SST or text. */
	if (v->bv_len < 2 || (unsigned char)v->bv_val[0] != 0x30) {
		value_refused(l, attr, idx, "not DER (a certificate or PKCS#7 SignedData)");
		return 0;
	}
	if ((bag = smime_bag_new()) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if (smime_bag_load(bag, (const unsigned char *)v->bv_val, v->bv_len, NULL, &e2) != 0) {
		value_refused(l, attr, idx, e2.message);
		rc = 0;
		goto out;
	}
	if ((bag->format != SMIME_FORMAT_DER && bag->format != SMIME_FORMAT_PKCS7) ||
	    bag->n_keys > 0) {
		value_refused(l, attr, idx, "neither a certificate nor PKCS#7 certificates");
		rc = 0;
		goto out;
	}
	if (sk_X509_num(certs) + sk_X509_num(bag->certs) > LDAP_MAX_CERTS) {
		rc = smime_error_set(err, SMIME_E_INPUT, "the directory holds more than %d "
		    "certificates for this address", LDAP_MAX_CERTS);
		goto out;
	}
	while (sk_X509_num(bag->certs) > 0)
		if (!sk_X509_push(certs, sk_X509_shift(bag->certs))) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
	rc = 0;
out:
	smime_bag_free(bag);
	return rc;
}

/* Every certificate value of one entry, into certs. */
static int
entry_certs(LDAP *ld, LDAPMessage *entry, STACK_OF(X509) *certs, struct lookup *l,
    struct smime_error *err)
{
	BerElement *ber = NULL;
	char *attr;
	int rc = 0;

	for (attr = ldap_first_attribute(ld, entry, &ber); attr != NULL && rc == 0;
	    attr = ldap_next_attribute(ld, entry, ber)) {
		struct berval **vals;
		int n;

		if (cert_attribute(attr) && (vals = ldap_get_values_len(ld, entry, attr)) != NULL) {
			n = ldap_count_values_len(vals);
			if (n > LDAP_MAX_VALUES)
				rc = smime_error_set(err, SMIME_E_INPUT, "an entry holds %d values of "
				    "%.40s, more than the %d allowed", n, attr, LDAP_MAX_VALUES);
			for (int i = 0; i < n && rc == 0; i++)
				rc = value_certs(vals[i], attr, (size_t)i, certs, l, err);
			ldap_value_free_len(vals);
		}
		ldap_memfree(attr);
	}
	ber_free(ber, 0);
	return rc;
}

/*
 * Search the directory for address; the certificates of every entry found
 * go into certs, *entries_r counts the entries.  SMIME_E_IO means the
 * directory cannot be used any more (no connection); other codes concern
 * this address only.
 */
static int
dir_search(struct ldap_dir *d, const char *address, STACK_OF(X509) *certs, int *entries_r,
    struct lookup *l, struct smime_error *err)
{
	char *attrs[] = { "userSMIMECertificate", "userSMIMECertificate;binary",
		"userCertificate", "userCertificate;binary", NULL };
	struct timeval limit = { LDAP_TIME_LIMIT, 0 };
	char filter[LDAP_MAX_FILTER], diag[256];
	time_t deadline = time(NULL) + LDAP_TIME_LIMIT + 2;
	LDAPMessage *msg = NULL;
	int msgid, rc, entries = 0;
	bool done = false;

	*entries_r = 0;
	if (!filter_build(d->filter, address, filter))
		return smime_error_set(err, SMIME_E_INPUT, "the filter for %s is longer than %d "
		    "octets", address, LDAP_MAX_FILTER);
	watch_start();
	rc = ldap_search_ext(d->ld, d->base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL,
	    &limit, LDAP_SIZE_LIMIT, &msgid);
	if (rc != LDAP_SUCCESS) {
		watch_stop();
		diagnostic(d->ld, diag, sizeof(diag));
		return smime_error_set(err, rc == LDAP_FILTER_ERROR ? SMIME_E_USAGE : SMIME_E_IO,
		    "%s: search: %s%s", d->url, ldap_err2string(rc), diag);
	}
	rc = 0;
	while (!done && rc == 0) {
		struct timeval wait = { deadline - time(NULL), 0 };
		int code = LDAP_SUCCESS, type;
		char *dmsg = NULL;

		if (wait.tv_sec <= 0)
			wait.tv_sec = 0;
		type = ldap_result(d->ld, msgid, LDAP_MSG_ONE, &wait, &msg);
		if (type == 0) {
			rc = smime_error_set(err, SMIME_E_IO, "%s: no answer within %d s",
			    d->url, LDAP_TIME_LIMIT);
			break;
		}
		if (type < 0 && watch_fired) {
			rc = smime_error_set(err, SMIME_E_IO, "%s: no answer within %d s",
			    d->url, LDAP_WATCHDOG);
			msg = NULL;
			break;
		}
		if (type < 0) {
			(void)ldap_get_option(d->ld, LDAP_OPT_RESULT_CODE, &code);
			rc = smime_error_set(err, SMIME_E_IO, "%s: the search failed: %s (the "
			    "connection broke, or an answer was larger than %d octets)", d->url,
			    ldap_err2string(code), LDAP_MAX_PDU);
			msg = NULL;
			break;
		}
		switch (type) {
		case LDAP_RES_SEARCH_ENTRY:
			/* The server was asked for LDAP_SIZE_LIMIT entries; one that sends more is cut off. */
			if (++entries > LDAP_SIZE_LIMIT) {
				rc = smime_error_set(err, SMIME_E_INPUT, "more than %d entries answer "
				    "for %s (the size limit): narrow --ldap-base or --ldap-filter",
				    LDAP_SIZE_LIMIT, address);
				break;
			}
			rc = entry_certs(d->ld, msg, certs, l, err);
			break;
		case LDAP_RES_SEARCH_REFERENCE:
			break; /* referrals are not followed */
		case LDAP_RES_SEARCH_RESULT:
			done = true;
			if (ldap_parse_result(d->ld, msg, &code, NULL, &dmsg, NULL, NULL, 0) !=
			    LDAP_SUCCESS) {
				rc = smime_error_set(err, SMIME_E_IO, "%s: an unreadable search result",
				    d->url);
				break;
			}
			snprintf(diag, sizeof(diag), dmsg && dmsg[0] ? " (%.200s)" : "%s",
			    dmsg && dmsg[0] ? dmsg : "");
			ldap_memfree(dmsg);
			if (code == LDAP_SUCCESS)
				break;
			if (code == LDAP_SIZELIMIT_EXCEEDED || code == LDAP_ADMINLIMIT_EXCEEDED)
				rc = smime_error_set(err, SMIME_E_INPUT, "more than %d entries answer "
				    "for %s (the size limit): narrow --ldap-base or --ldap-filter",
				    LDAP_SIZE_LIMIT, address);
			else if (code == LDAP_TIMELIMIT_EXCEEDED)
				rc = smime_error_set(err, SMIME_E_INPUT, "the search for %s took longer "
				    "than %d s", address, LDAP_TIME_LIMIT);
			else if (code == LDAP_NO_SUCH_OBJECT)
				rc = smime_error_set(err, SMIME_E_IO, "%s: the base DN '%s' is not in the "
				    "directory%s", d->url, d->base, diag);
			else
				rc = smime_error_set(err, code == LDAP_FILTER_ERROR ||
				    code == LDAP_PROTOCOL_ERROR ? SMIME_E_USAGE : SMIME_E_IO,
				    "%s: search: %s%s", d->url, ldap_err2string(code), diag);
			break;
		default:
			break;
		}
		ldap_msgfree(msg);
		msg = NULL;
	}
	if (!done)
		(void)ldap_abandon_ext(d->ld, msgid, NULL, NULL);
	watch_stop();
	*entries_r = entries;
	return rc;
}

/* --- validation --------------------------------------------------------- */

/* The leaf's key usage is the caller's check (keyAgreement counts for EC). */
static int
verify_cb(int ok, X509_STORE_CTX *ctx)
{
	if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_INVALID_PURPOSE &&
	    X509_STORE_CTX_get_error_depth(ctx) == 0)
		return 1;
	return ok;
}

static const char *
iso_date(time_t t, char buf[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%d", &tm);
	return buf;
}

/*
 * Why cert may not be used to encrypt to address, or NULL when it may;
 * the chain goes into *chain_r (leaf first) when it is trusted.
 */
static const char *
cert_refusal(X509 *cert, const char *address, time_t now, X509_STORE *store,
    STACK_OF(X509) *untrusted, STACK_OF(X509) **chain_r, char *buf, size_t size)
{
	X509_STORE_CTX *ctx = NULL;
	int roles = smime_cert_roles(cert);
	char d1[32];

	*chain_r = NULL;
	/* RFC 8550 3: the address the mail goes to is in the certificate. */
	if (!smime_cert_has_email(cert, address)) {
		STACK_OF(OPENSSL_STRING) *em = smime_cert_emails(cert);
		size_t n = 0;
		n += (size_t)snprintf(buf, size, "it is for ");
		for (int i = 0; em != NULL && i < sk_OPENSSL_STRING_num(em) && n < size; i++)
			n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "",
			    sk_OPENSSL_STRING_value(em, i));
		if (em == NULL || sk_OPENSSL_STRING_num(em) == 0)
			snprintf(buf + n, n < size ? size - n : 0, "no email address");
		else if (n < size)
			snprintf(buf + n, size - n, ", not %s", address);
		sk_OPENSSL_STRING_pop_free(em, str_free);
		return buf;
	}
	/* RFC 8550 4.4.2: key usage for encryption (keyEncipherment, keyAgreement). */
	if (!(roles & SMIME_ROLE_ENCRYPT))
		return "its key usage does not allow encryption (a signing-only certificate)";
	/* RFC 8550 4.4.4: EKU, when present, includes emailProtection. */
	if (!smime_cert_email_protection(cert))
		return "its extended key usage excludes email protection";
	if (!smime_cert_valid_at(cert, now)) {
		const ASN1_TIME *na = X509_get0_notAfter(cert);
		if (X509_cmp_time(na, &now) < 0) {
			struct tm tm;
			if (ASN1_TIME_to_tm(na, &tm))
				snprintf(buf, size, "it expired on %s", iso_date(timegm(&tm), d1));
			else
				snprintf(buf, size, "it expired");
		} else {
			snprintf(buf, size, "it is not valid yet");
		}
		return buf;
	}
	/* RFC 5280 6: a path to a trust anchor of the keystore. */
	ctx = X509_STORE_CTX_new();
	if (ctx == NULL || !X509_STORE_CTX_init(ctx, store, cert, untrusted)) {
		X509_STORE_CTX_free(ctx);
		ERR_clear_error();
		return "cannot set up certificate verification";
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_ENCRYPT);
	X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
	if (X509_verify_cert(ctx) != 1) {
		int e = X509_STORE_CTX_get_error(ctx);
		if (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		    e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
		    e == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
		    e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)
			snprintf(buf, size, "it is not issued by a trust anchor of the keystore (%s)",
			    X509_verify_cert_error_string(e));
		else
			snprintf(buf, size, "its chain does not verify: %s",
			    X509_verify_cert_error_string(e));
		X509_STORE_CTX_free(ctx);
		ERR_clear_error();
		return buf;
	}
	*chain_r = X509_STORE_CTX_get1_chain(ctx);
	X509_STORE_CTX_free(ctx);
	return NULL;
}

/*
 * Decide on the certificates the directory gave for address, and add
 * those that pass (with the intermediates of their chains) to ks.
 */
static int
take_certs(struct smime_keystore *ks, const char *address, STACK_OF(X509) *certs,
    X509_STORE *store, STACK_OF(X509) *ks_untrusted, struct lookup *l, struct smime_error *err)
{
	STACK_OF(X509) *untrusted = sk_X509_dup(ks_untrusted);
	time_t now = time(NULL);
	int rc = 0, taken = 0;

	if (untrusted == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	/* The directory's other certificates may be intermediates: used to build, not trusted. */
	for (int i = 0; i < sk_X509_num(certs); i++)
		if (!sk_X509_push(untrusted, sk_X509_value(certs, i))) {
			sk_X509_free(untrusted);
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		}
	for (int i = 0; i < sk_X509_num(certs) && rc == 0; i++) {
		X509 *c = sk_X509_value(certs, i);
		STACK_OF(X509) *chain = NULL;
		char fp[65], buf[SMIME_ERROR_MAX], *subject;
		const char *why;

		if (smime_cert_roles(c) & SMIME_ROLE_CA)
			continue;
		smime_cert_fingerprint(c, fp);
		subject = smime_cert_subject(c);
		why = cert_refusal(c, address, now, store, untrusted, &chain, buf, sizeof(buf));
		if (why != NULL) {
			json_array_append_new(l->refused, json_pack("{s:s,s:s?,s:s}", "fingerprint", fp,
			    "subject", subject, "reason", why));
			if (!g.json)
				say("%s: refused SHA256:%.16s (%s): %s", address, fp,
				    subject ? subject : "?", why);
			snprintf(l->reason, sizeof(l->reason), "%s", why);
		} else {
			bool added = false;
			rc = smime_keystore_add(ks, c, NULL, SMIME_ENTRY_CONTACT, &added, err);
			/* The intermediates, below the anchor, help later chains as CA entries. */
			for (int k = 1; rc == 0 && k + 1 < sk_X509_num(chain); k++)
				rc = smime_keystore_add(ks, sk_X509_value(chain, k), NULL,
				    SMIME_ENTRY_CA, NULL, err);
			if (rc == 0) {
				taken++;
				json_array_append_new(l->certs, json_pack("{s:s,s:s?,s:b}", "fingerprint",
				    fp, "subject", subject, "added", added));
				if (!g.json && !g.quiet)
					say("%s: %s SHA256:%.16s (%s)", address, added ?
					    "added to the contacts" : "already a contact", fp,
					    subject ? subject : "?");
			}
		}
		sk_X509_pop_free(chain, X509_free);
		OPENSSL_free(subject);
	}
	sk_X509_free(untrusted);
	if (rc != 0)
		return rc;
	if (taken > 0) {
		l->status = "found";
		l->reason[0] = '\0';
	} else if (json_array_size(l->refused) == 0) {
		l->status = "not-found";
		snprintf(l->reason, sizeof(l->reason), "no entry with a certificate");
	} else {
		l->status = "refused";
		if (json_array_size(l->refused) > 1)
			snprintf(l->reason, sizeof(l->reason), "none of the %zu certificates and "
			    "values the directory holds for it is usable", json_array_size(l->refused));
	}
	return 0;
}

/* --- the lookup of a list of addresses ------------------------------ */

static void
lookup_done(struct lookup *l, json_t *report)
{
	if (report != NULL) {
		json_t *j = json_pack("{s:s,s:s}", "address", l->address, "status", l->status);
		if (l->reason[0] != '\0')
			json_object_set_new(j, "reason", json_string(l->reason));
		if (json_array_size(l->certs) > 0)
			json_object_set(j, "certificates", l->certs);
		if (json_array_size(l->refused) > 0)
			json_object_set(j, "refused", l->refused);
		json_array_append_new(report, j);
	}
	json_decref(l->certs);
	json_decref(l->refused);
	l->certs = l->refused = NULL;
}

int
ldap_dir_fetch(struct ldap_dir *d, struct smime_keystore *ks, const char *const *addrs,
    size_t n, json_t *report, size_t *found_r)
{
	X509_STORE *store = NULL;
	STACK_OF(X509) *ks_untrusted = NULL;
	struct smime_error err;
	bool changed = false;
	struct sigaction ign, old_pipe;
	int rc = EXIT_OK;

	*found_r = 0;
	if (smime_keystore_trust(ks, &store, &ks_untrusted, &err) != 0)
		return fail("encrypt", &err);
	/* A server that closes the connection must not kill us with SIGPIPE. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	(void)sigaction(SIGPIPE, &ign, &old_pipe);
	for (size_t i = 0; i < n; i++) {
		struct lookup l = { .address = addrs[i], .status = "error" };
		STACK_OF(X509) *certs = NULL;
		const char *why;
		int entries = 0, src;

		l.certs = json_array();
		l.refused = json_array();
		if (!address_ok(addrs[i], &why)) {
			/* Before any search: nothing of it reaches a filter. */
			l.status = "invalid-address";
			snprintf(l.reason, sizeof(l.reason), "not looked up: %s", why);
			if (!g.json)
				say("%s: %s", addrs[i], l.reason);
			lookup_done(&l, report);
			continue;
		}
		if (d->broken) {
			l.status = "skipped";
			snprintf(l.reason, sizeof(l.reason), "not looked up: the directory failed "
			    "for an earlier address");
			lookup_done(&l, report);
			continue;
		}
		if (d->ld == NULL && dir_connect(d, &err) != 0) {
			d->broken = true;
			snprintf(l.reason, sizeof(l.reason), "%s", err.message);
			if (!g.json)
				say("%s", err.message);
			lookup_done(&l, report);
			continue;
		}
		if ((certs = sk_X509_new_null()) == NULL) {
			lookup_done(&l, report);
			smime_error_set(&err, SMIME_E_INTERNAL, "out of memory");
			rc = fail("encrypt", &err);
			break;
		}
		src = dir_search(d, addrs[i], certs, &entries, &l, &err);
		if (src == 0 && entries == 0) {
			l.status = "not-found";
			snprintf(l.reason, sizeof(l.reason), "no entry in the directory");
			if (!g.json && !g.quiet)
				say("%s: no entry in the directory", addrs[i]);
		} else if (src == 0) {
			if ((src = take_certs(ks, addrs[i], certs, store, ks_untrusted, &l, &err)) != 0) {
				sk_X509_pop_free(certs, X509_free);
				lookup_done(&l, report);
				rc = fail("encrypt", &err);
				break;
			}
			if (strcmp(l.status, "found") == 0) {
				changed = true;
				(*found_r)++;
			} else if (strcmp(l.status, "not-found") == 0) {
				snprintf(l.reason, sizeof(l.reason), "%s", entries == 1 ?
				    "its directory entry holds no certificate" :
				    "its directory entries hold no certificate");
				if (!g.json && !g.quiet)
					say("%s: %s", addrs[i], l.reason);
			} else if (json_array_size(l.refused) > 1 && !g.json) {
				say("%s: %s", addrs[i], l.reason);
			}
		} else {
			l.status = "error";
			snprintf(l.reason, sizeof(l.reason), "%s", err.message);
			if (!g.json)
				say("%s: %s", addrs[i], err.message);
			/* The connection is gone or the base is wrong: the others would fail alike. */
			if (src == SMIME_E_IO || src == SMIME_E_USAGE)
				d->broken = true;
		}
		sk_X509_pop_free(certs, X509_free);
		lookup_done(&l, report);
	}
	if (d->ld != NULL) {
		ldap_unbind_ext_s(d->ld, NULL, NULL);
		d->ld = NULL;
	}
	(void)sigaction(SIGPIPE, &old_pipe, NULL);
	if (rc == EXIT_OK && changed && smime_keystore_commit(ks, &err) != 0)
		rc = fail("encrypt", &err);
	X509_STORE_free(store);
	sk_X509_pop_free(ks_untrusted, X509_free);
	return rc;
}

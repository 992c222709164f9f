/*
 * smime: recipients' certificates from an LDAP directory (smime encrypt
 * --ldap), as Outlook and Thunderbird look them up: the source
 * recipient_source_ldap of recipients.c, which decides on what it finds.
 *
 * The directory is untrusted: every answer is bounded (entries, values,
 * value size, message size, time), every value is read by libsmime's
 * certificate readers, and recipients.c takes a certificate only when it
 * passes the checks the keystore applies to a contact and chains to a
 * trust anchor of the keystore.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ldap.h>

#include "cli.h"
#include "ldapfilter.h"

#define LDAP_SIZE_LIMIT   16                 /* entries answering one address */
#define LDAP_TIME_LIMIT   10                 /* seconds, asked of the server and waited */
#define LDAP_WATCHDOG     (LDAP_TIME_LIMIT + 5) /* seconds for connecting, or for one search */
#define LDAP_MAX_VALUE    (64 * 1024)        /* octets of one attribute value */
#define LDAP_MAX_VALUES   32                 /* values of one attribute of one entry */
#define LDAP_MAX_CERTS    64                 /* certificates for one address, all values */
/* One message from the server: an entry with its four attributes at their limits. */
#define LDAP_MAX_PDU      (4 * LDAP_MAX_VALUES * LDAP_MAX_VALUE + 64 * 1024)
#define LDAP_MAX_URL      2048

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
};

/* --- options ------------------------------------------------------------ */



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
	if (!ldapfilter_host_ok(u->lud_host)) {
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
	if (o->filter != NULL && !ldapfilter_template_ok(o->filter, &why)) {
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

/* --- filters ------------------------------------------------------------- */


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

/* recipient_source.open: connect and bind. */
static int
dir_connect(void *ctx, struct smime_error *err)
{
	struct ldap_dir *d = ctx;
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
value_refused(struct recipient_lookup *l, const char *attr, size_t idx, const char *why)
{
	char what[96];

	snprintf(what, sizeof(what), "value %zu of %.40s", idx + 1, attr);
	recipient_refuse_value(l, what, why);
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
    struct recipient_lookup *l, struct smime_error *err)
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
entry_certs(LDAP *ld, LDAPMessage *entry, STACK_OF(X509) *certs, struct recipient_lookup *l,
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
 * recipient_source.search: the certificates of every entry found for
 * address go into certs (they are all candidates: the PKCS#7 values'
 * CA certificates are passed over as such), *entries_r counts the entries.
 * SMIME_E_IO means the directory cannot be used any more (no connection);
 * other codes concern this address only.
 */
static int
dir_search(void *ctx, const char *address, STACK_OF(X509) *certs, STACK_OF(X509) *extra,
    int *entries_r, struct recipient_lookup *l, struct smime_error *err)
{
	struct ldap_dir *d = ctx;
	char *attrs[] = { "userSMIMECertificate", "userSMIMECertificate;binary",
		"userCertificate", "userCertificate;binary", NULL };
	struct timeval limit = { LDAP_TIME_LIMIT, 0 };
	char filter[LDAPFILTER_MAX], diag[256];
	time_t deadline = time(NULL) + LDAP_TIME_LIMIT + 2;
	LDAPMessage *msg = NULL;
	int msgid, rc, entries = 0;
	bool done = false;

	*entries_r = 0;
	if (!ldapfilter_build(d->filter, address, filter))
		return smime_error_set(err, SMIME_E_INPUT, "the filter for %s is longer than %d "
		    "octets", address, LDAPFILTER_MAX);
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

/* recipient_source.close: unbind. */
static void
dir_close(void *ctx)
{
	struct ldap_dir *d = ctx;

	if (d->ld != NULL) {
		ldap_unbind_ext_s(d->ld, NULL, NULL);
		d->ld = NULL;
	}
}

const struct recipient_source recipient_source_ldap = {
	.name = "ldap",
	.label = "directory",
	.noun = "the directory",
	.none = "no entry in the directory",
	.empty_one = "its directory entry holds no certificate",
	.empty_many = "its directory entries hold no certificate",
	.offered = "certificates and values the directory holds",
	.open = dir_connect,
	.search = dir_search,
	.close = dir_close,
};

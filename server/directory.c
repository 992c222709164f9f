/*
 * smimed: what a user publishes, and the worker that publishes it to an
 * LDAP directory (directory.h).
 *
 * The worker owns one connection to the directory and one queue (the
 * store's publish_queue).  For each user due, it reads the user and the
 * user's certificates in one snapshot, chooses what to publish, finds the
 * user's entry by the primary address (ldap_filter), and replaces
 * userSMIMECertificate (a certs-only PKCS#7 SignedData, RFC 2798 and as
 * Outlook reads it) and userCertificate;binary (each certificate, RFC
 * 4523) with that.  Success takes the user off the queue unless a newer
 * change came meanwhile; a failure is noted and retried later, the delay
 * doubling from ldap_retry_min to ldap_retry_max.  A directory that cannot
 * be reached at all leaves every entry queued as it is, and the worker
 * tries to connect again after the same growing delay.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ldap.h>
#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include <smime/cert.h>
#include <smime/message.h>

#include "api.h"
#include "directory.h"
#include "ldapfilter.h"
#include "trust.h"

#define DUE_BATCH 64                 /* users read from the queue at once */
#define LDAP_OP_TIMEOUT 10           /* seconds for connecting and for one operation */
#define MAX_PUBLISHED 64             /* certificates of one user, chain included */

/* ---- what a user publishes --------------------------------------------- */

void
published_clear(struct published *p)
{
	X509_free(p->enc_cert);
	sk_X509_pop_free(p->signing_certs, X509_free);
	sk_X509_pop_free(p->chain, X509_free);
	free(p->signing);
	memset(p, 0, sizeof(*p));
}

/* Add the certificates of up to chain that are not there yet. */
static int
chain_merge(STACK_OF(X509) *chain, STACK_OF(X509) *up)
{
	for (int i = 0; i < sk_X509_num(up); i++) {
		X509 *x = sk_X509_value(up, i);
		bool have = false;
		for (int k = 0; k < sk_X509_num(chain) && !have; k++)
			have = X509_cmp(sk_X509_value(chain, k), x) == 0;
		if (have)
			continue;
		if (sk_X509_num(chain) >= MAX_PUBLISHED || !sk_X509_push(chain, x))
			return -1;
		X509_up_ref(x);
	}
	return 0;
}

/*
 * Validations are kept per certificate while nothing changes (the state
 * generation): a lookup after its answer expired, and every publication,
 * ask about the same certificates again and again.
 */
#define VERDICT_SLOTS 65536
#define VERDICT_SHARDS 64

struct verdict {
	char sha256[65];
	uint64_t gen;
	bool ok;
	X509 *cert;                      /* when ok: parsing is dear (OpenSSL 3's decoders) */
	STACK_OF(X509) *chain;           /* when ok */
};
static struct verdict verdicts[VERDICT_SLOTS];
static pthread_mutex_t verdict_locks[VERDICT_SHARDS];
static pthread_once_t verdict_once = PTHREAD_ONCE_INIT;

static void
verdict_init(void)
{
	for (size_t i = 0; i < VERDICT_SHARDS; i++)
		pthread_mutex_init(&verdict_locks[i], NULL);
}

static size_t
verdict_slot(const char *sha256)
{
	size_t h = 0;

	/* The fingerprint is uniform already: its first hex digits will do. */
	for (int i = 0; i < 8 && sha256[i] != '\0'; i++)
		h = h * 16 + (size_t)(sha256[i] <= '9' ? sha256[i] - '0' : (sha256[i] | 0x20) - 'a' + 10);
	return h % VERDICT_SLOTS;
}

/* The kept verdict on sha256 at gen: 1 valid (*cert_r and *chain_r new
 * references), 0 not, -1 unknown. */
static int
verdict_get(const char *sha256, uint64_t gen, X509 **cert_r, STACK_OF(X509) **chain_r)
{
	size_t slot = verdict_slot(sha256);
	struct verdict *v = &verdicts[slot];
	int r = -1;

	pthread_once(&verdict_once, verdict_init);
	pthread_mutex_lock(&verdict_locks[slot % VERDICT_SHARDS]);
	if (v->gen == gen && strcmp(v->sha256, sha256) == 0) {
		r = v->ok ? 1 : 0;
		if (v->ok && (*chain_r = X509_chain_up_ref(v->chain)) == NULL)
			r = -1;
		else if (v->ok && X509_up_ref(v->cert))
			*cert_r = v->cert;
		else if (v->ok) {
			sk_X509_pop_free(*chain_r, X509_free);
			*chain_r = NULL;
			r = -1;
		}
	}
	pthread_mutex_unlock(&verdict_locks[slot % VERDICT_SHARDS]);
	return r;
}

static void
verdict_put(const char *sha256, uint64_t gen, bool ok, X509 *cert, STACK_OF(X509) *chain)
{
	size_t slot = verdict_slot(sha256);
	struct verdict *v = &verdicts[slot];
	STACK_OF(X509) *copy = ok ? X509_chain_up_ref(chain) : NULL;

	if (ok && (copy == NULL || !X509_up_ref(cert))) {
		sk_X509_pop_free(copy, X509_free);
		return;
	}
	pthread_once(&verdict_once, verdict_init);
	pthread_mutex_lock(&verdict_locks[slot % VERDICT_SHARDS]);
	sk_X509_pop_free(v->chain, X509_free);
	X509_free(v->cert);
	snprintf(v->sha256, sizeof(v->sha256), "%s", sha256);
	v->gen = gen;
	v->ok = ok;
	v->cert = ok ? cert : NULL;
	v->chain = copy;
	pthread_mutex_unlock(&verdict_locks[slot % VERDICT_SHARDS]);
}

/* c parsed and validated now, with its chain merged into p->chain; NULL
 * when it does not validate (counted in p->n_refused). */
static X509 *
validated(struct service *svc, const struct store_cert *c, struct published *p,
    struct smime_error *err, int *rc_r)
{
	uint64_t gen = atomic_load(&svc->state_gen);
	STACK_OF(X509) *up = NULL;
	struct smime_error why;
	X509 *x = NULL;
	int known = verdict_get(c->sha256, gen, &x, &up);

	*rc_r = 0;
	if (known == -1) {
		/* Published only what the trust collection accepts now (and a
		 * certificate the collection stops trusting stops being published). */
		const unsigned char *d = c->der;
		if ((x = d2i_X509(NULL, &d, (long)c->der_len)) == NULL) {
			p->n_refused++;
			return NULL;
		}
		known = trust_verify(svc, x, NULL, 0, &up, &why) == 0;
		if (!known)
			log_event("warning", "publish.refused", "serial", c->serial, "reason",
			    why.message, NULL);
		verdict_put(c->sha256, gen, known, x, up);
	}
	if (!known) {
		p->n_refused++;
		X509_free(x);
		return NULL;
	}
	if (chain_merge(p->chain, up) != 0) {
		*rc_r = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		X509_free(x);
		x = NULL;
	}
	sk_X509_pop_free(up, X509_free);
	return x;
}

/* Valid at now, not revoked or superseded, not withdrawn. */
static bool
current(const struct store_cert *c, int64_t now)
{
	return c->status == STATUS_ACTIVE && c->withdrawn == 0 && c->not_before <= now &&
	    c->not_after >= now;
}

int
published_select(struct service *svc, const struct store_cert *v, size_t n, int64_t now,
    struct published *p, struct smime_error *err)
{
	bool *refused = calloc(n + 1, sizeof(*refused));
	int rc = 0;

	memset(p, 0, sizeof(*p));
	p->signing_certs = sk_X509_new_null();
	p->chain = sk_X509_new_null();
	p->signing = calloc(n + 1, sizeof(*p->signing));
	if (refused == NULL || p->signing_certs == NULL || p->chain == NULL || p->signing == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	/* The newest valid encryption certificate that the collection accepts
	 * is the current one. */
	while (rc == 0 && p->enc == NULL) {
		const struct store_cert *best = NULL;
		size_t bi = 0;
		for (size_t i = 0; i < n; i++)
			if (!refused[i] && current(&v[i], now) && (v[i].purpose == PURPOSE_ENCRYPTION ||
			    v[i].purpose == PURPOSE_DUAL) &&
			    (best == NULL || v[i].not_before > best->not_before)) {
				best = &v[i];
				bi = i;
			}
		if (best == NULL)
			break;
		if ((p->enc_cert = validated(svc, best, p, err, &rc)) != NULL)
			p->enc = best;
		else
			refused[bi] = true;
	}
	/* Every valid signing certificate (one per device) is offered. */
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct store_cert *c = &v[i];
		X509 *x;
		if (!current(c, now) || refused[i] ||
		    (c->purpose != PURPOSE_SIGNING && c->purpose != PURPOSE_DUAL))
			continue;
		if (c == p->enc) {
			X509_up_ref(p->enc_cert);
			x = p->enc_cert;
		} else if ((x = validated(svc, c, p, err, &rc)) == NULL) {
			continue;
		}
		if (sk_X509_num(p->signing_certs) < MAX_PUBLISHED && sk_X509_push(p->signing_certs, x))
			p->signing[p->n_signing++] = c;
		else
			X509_free(x);
	}
out:
	free(refused);
	if (rc != 0)
		published_clear(p);
	return rc;
}

/* ---- the configuration --------------------------------------------------- */

/* The URL's scheme://host:port into uri (NULL: only check); why on error. */
static bool
url_check(const char *url, char **uri_r, bool *ldaps_r, const char **why)
{
	LDAPURLDesc *u = NULL;
	bool ok = false;

	if (strlen(url) > 2048) {
		*why = "is too long";
		return false;
	}
	if (ldap_url_parse(url, &u) != LDAP_URL_SUCCESS) {
		*why = "is not an LDAP URL (ldap://HOST:PORT or ldaps://HOST:PORT)";
		return false;
	}
	if (strcmp(u->lud_scheme, "ldap") != 0 && strcmp(u->lud_scheme, "ldaps") != 0)
		*why = "must use the ldap or ldaps scheme";
	else if (!ldapfilter_host_ok(u->lud_host))
		*why = "names no host, or not a host name or address";
	else if (u->lud_port <= 0 || u->lud_port > 65535)
		*why = "has a port outside 1 to 65535";
	else if ((u->lud_dn != NULL && u->lud_dn[0] != '\0') || u->lud_attrs != NULL ||
	    u->lud_filter != NULL || u->lud_exts != NULL)
		*why = "may name only the host and port (the base DN is ldap_base, the filter "
		    "ldap_filter)";
	else
		ok = true;
	if (ok && ldaps_r != NULL)
		*ldaps_r = strcmp(u->lud_scheme, "ldaps") == 0;
	if (ok && uri_r != NULL) {
		size_t len = strlen(u->lud_host) + 32;
		if ((*uri_r = malloc(len)) != NULL)
			snprintf(*uri_r, len, strchr(u->lud_host, ':') ? "%s://[%s]:%d" : "%s://%s:%d",
			    u->lud_scheme, u->lud_host, u->lud_port);
		else {
			*why = "out of memory";
			ok = false;
		}
	}
	ldap_free_urldesc(u);
	return ok;
}

int
directory_config_check(const struct config *cfg, struct smime_error *err)
{
	const char *why;
	bool ldaps = false;

	if (cfg->ldap_url[0] == '\0')
		return 0;
	if (!url_check(cfg->ldap_url, NULL, &ldaps, &why))
		return smime_error_set(err, SMIME_E_USAGE, "ldap_url '%s' %s", cfg->ldap_url, why);
	if (cfg->ldap_base[0] == '\0')
		return smime_error_set(err, SMIME_E_USAGE, "ldap_base: the base DN under which "
		    "users' entries are, e.g. ou=people,dc=example,dc=org");
	if (!ldapfilter_template_ok(cfg->ldap_filter, &why))
		return smime_error_set(err, SMIME_E_USAGE, "ldap_filter %s", why);
	if ((cfg->ldap_bind_dn[0] == '\0') != (cfg->ldap_password_file[0] == '\0'))
		return smime_error_set(err, SMIME_E_USAGE, "ldap_bind_dn and ldap_password_file go "
		    "together");
	if (cfg->ldap_password_file[0] != '\0' && access(cfg->ldap_password_file, R_OK) != 0)
		return smime_error_set(err, SMIME_E_USAGE, "ldap_password_file: %s: %s",
		    cfg->ldap_password_file, strerror(errno));
	if (cfg->ldap_starttls && ldaps)
		return smime_error_set(err, SMIME_E_USAGE, "ldap_starttls with an ldaps:// URL: "
		    "choose one");
	if (cfg->ldap_cacert[0] != '\0' && access(cfg->ldap_cacert, R_OK) != 0)
		return smime_error_set(err, SMIME_E_USAGE, "ldap_cacert: %s: %s", cfg->ldap_cacert,
		    strerror(errno));
	if (cfg->ldap_retry_min > cfg->ldap_retry_max)
		return smime_error_set(err, SMIME_E_USAGE, "ldap_retry_min must not be longer than "
		    "ldap_retry_max");
	return 0;
}

/* ---- the worker ------------------------------------------------------------ */

struct directory {
	struct service *svc;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool kicked, done;
	atomic_bool stop;
	char *uri;                    /* scheme://host:port */
	bool tls;
	char *password;               /* cleansed on free */
	LDAP *ld;                     /* connected and bound, or NULL */
	long conn_delay;              /* seconds before the next connection attempt */
	int64_t conn_next;
	int64_t next_sync;
	/* For GET /api/v1/directory, under lock. */
	bool connected;
	int64_t last_success, last_failure;
	char last_error[SMIME_ERROR_MAX];
};

/* What became of one user. */
enum outcome { PUB_DONE, PUB_RETRY, PUB_DOWN };

static void
note_failure(struct directory *d, const char *msg)
{
	pthread_mutex_lock(&d->lock);
	d->last_failure = service_now();
	snprintf(d->last_error, sizeof(d->last_error), "%s", msg);
	pthread_mutex_unlock(&d->lock);
	atomic_fetch_add(&d->svc->metrics.publish_failures, 1);
}

/* The first line of path, at most 1 KiB. */
static char *
read_password(const char *path, struct smime_error *err)
{
	char buf[1025];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		smime_error_set(err, SMIME_E_IO, "ldap_password_file %s: %s", path, strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	char *p = buf[0] != '\0' ? strdup(buf) : NULL;
	OPENSSL_cleanse(buf, sizeof(buf));
	if (p == NULL)
		smime_error_set(err, SMIME_E_USAGE, "ldap_password_file %s is empty (a DN without a "
		    "password is an unauthenticated bind, RFC 4513 5.1.2)", path);
	return p;
}

/* The server's message after a failed operation, or "". */
static const char *
diagnostic(LDAP *ld, char *buf, size_t size)
{
	char *msg = NULL;

	buf[0] = '\0';
	if (ld != NULL && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) ==
	    LDAP_OPT_SUCCESS && msg != NULL && msg[0] != '\0')
		snprintf(buf, size, " (%s)", msg);
	ldap_memfree(msg);
	return buf;
}

/* Result codes after which the connection is not worth keeping. */
static bool
connection_lost(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT ||
	    rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY || rc == LDAP_TIMELIMIT_EXCEEDED ||
	    rc == LDAP_LOCAL_ERROR || rc == LDAP_ENCODING_ERROR || rc == LDAP_DECODING_ERROR;
}

static void
disconnect(struct directory *d)
{
	if (d->ld != NULL)
		ldap_unbind_ext_s(d->ld, NULL, NULL);
	d->ld = NULL;
	pthread_mutex_lock(&d->lock);
	d->connected = false;
	pthread_mutex_unlock(&d->lock);
}

static int
dir_connect(struct directory *d, struct smime_error *err)
{
	const struct config *cfg = &d->svc->cfg;
	struct timeval tv = { LDAP_OP_TIMEOUT, 0 };
	int version = LDAP_VERSION3, rc, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;
	struct berval cred = { 0 };
	char diag[512];
	LDAP *ld = NULL;

	if ((rc = ldap_initialize(&ld, d->uri)) != LDAP_SUCCESS)
		return smime_error_set(err, SMIME_E_IO, "directory %s: %s", d->uri,
		    ldap_err2string(rc));
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	(void)zero;
	if (d->tls) {
		ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
		if (cfg->ldap_cacert[0] != '\0')
			ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, cfg->ldap_cacert);
		ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	}
	if (cfg->ldap_starttls && (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
		smime_error_set(err, SMIME_E_IO, "directory %s: StartTLS: %s%s", d->uri,
		    ldap_err2string(rc), diagnostic(ld, diag, sizeof(diag)));
		ldap_unbind_ext_s(ld, NULL, NULL);
		return SMIME_E_IO;
	}
	if (d->password != NULL) {
		cred.bv_val = d->password;
		cred.bv_len = strlen(d->password);
	}
	rc = ldap_sasl_bind_s(ld, d->password != NULL ? cfg->ldap_bind_dn : NULL, LDAP_SASL_SIMPLE,
	    &cred, NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		smime_error_set(err, SMIME_E_IO, "directory %s: bind%s%s: %s%s", d->uri,
		    d->password != NULL ? " as " : " (anonymous)",
		    d->password != NULL ? cfg->ldap_bind_dn : "", ldap_err2string(rc),
		    diagnostic(ld, diag, sizeof(diag)));
		ldap_unbind_ext_s(ld, NULL, NULL);
		return SMIME_E_IO;
	}
	d->ld = ld;
	pthread_mutex_lock(&d->lock);
	d->connected = true;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* The DN of the one entry filter finds, into *dn_r (ldap_memfree). */
static enum outcome
find_entry(struct directory *d, const char *address, char **dn_r, char *why, size_t size)
{
	const struct config *cfg = &d->svc->cfg;
	char filter[LDAPFILTER_MAX], diag[512];
	char *attrs[] = { LDAP_NO_ATTRS, NULL };
	struct timeval tv = { LDAP_OP_TIMEOUT, 0 };
	LDAPMessage *res = NULL;
	int rc, n;

	*dn_r = NULL;
	if (!ldapfilter_build(cfg->ldap_filter, address, filter)) {
		snprintf(why, size, "the filter for %s is too long", address);
		return PUB_RETRY;
	}
	rc = ldap_search_ext_s(d->ld, cfg->ldap_base, LDAP_SCOPE_SUBTREE, filter, attrs, 1, NULL,
	    NULL, &tv, 2, &res);
	if (rc == LDAP_SIZELIMIT_EXCEEDED) {
		snprintf(why, size, "more than one entry under %.200s matches %.200s: publishing to "
		    "none", cfg->ldap_base, filter);
		ldap_msgfree(res);
		return PUB_RETRY;
	}
	if (rc != LDAP_SUCCESS) {
		snprintf(why, size, "searching %.200s for %.200s: %s%s", cfg->ldap_base, filter,
		    ldap_err2string(rc), diagnostic(d->ld, diag, sizeof(diag)));
		ldap_msgfree(res);
		return connection_lost(rc) ? PUB_DOWN : PUB_RETRY;
	}
	n = ldap_count_entries(d->ld, res);
	if (n == 1) {
		*dn_r = ldap_get_dn(d->ld, ldap_first_entry(d->ld, res));
		if (*dn_r == NULL)
			snprintf(why, size, "the directory's entry for %s has no readable DN", address);
	} else if (n == 0) {
		snprintf(why, size, "no entry under %.200s matches %.200s", cfg->ldap_base, filter);
	} else {
		snprintf(why, size, "%d entries under %.200s match %.200s: publishing to none", n,
		    cfg->ldap_base, filter);
	}
	ldap_msgfree(res);
	return *dn_r != NULL ? PUB_DONE : PUB_RETRY;
}

/* Replace the two attributes of dn with what p publishes. */
static enum outcome
write_entry(struct directory *d, const char *dn, const struct published *p, char *why,
    size_t size)
{
	struct berval p7 = { 0 }, *smime_vals[2] = { NULL, NULL };
	struct berval certs[MAX_PUBLISHED + 1], *cert_vals[MAX_PUBLISHED + 2];
	unsigned char *ders[MAX_PUBLISHED + 1];
	size_t n_certs = 0;
	STACK_OF(X509) *all = sk_X509_new_null();
	struct smime_error err;
	enum outcome out = PUB_RETRY;
	char diag[512];
	int rc;

	memset(cert_vals, 0, sizeof(cert_vals));
	memset(ders, 0, sizeof(ders));
	if (all == NULL) {
		snprintf(why, size, "out of memory");
		return PUB_RETRY;
	}
	/* userCertificate;binary: each certificate the user has now (RFC 4523 2.1).
	 * Nothing is written short of one: a failed push fails the attempt. */
	bool pushed = p->enc_cert == NULL || sk_X509_push(all, p->enc_cert);
	for (int i = 0; pushed && i < sk_X509_num(p->signing_certs); i++)
		if (sk_X509_value(p->signing_certs, i) != p->enc_cert)
			pushed = sk_X509_push(all, sk_X509_value(p->signing_certs, i)) > 0;
	if (!pushed) {
		snprintf(why, size, "out of memory");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(all) && n_certs < MAX_PUBLISHED; i++) {
		int len = i2d_X509(sk_X509_value(all, i), &ders[n_certs]);
		if (len <= 0) {
			snprintf(why, size, "cannot encode a certificate");
			goto out;
		}
		certs[n_certs].bv_val = (char *)ders[n_certs];
		certs[n_certs].bv_len = (ber_len_t)len;
		cert_vals[n_certs] = &certs[n_certs];
		n_certs++;
	}
	/* userSMIMECertificate: the same with their chains, one certs-only
	 * SignedData (RFC 2798 9.1.2, RFC 8551 3.6). */
	if (n_certs > 0) {
		STACK_OF(X509) *with_chain = sk_X509_dup(all);
		unsigned char *der = NULL;
		size_t len = 0;
		bool whole = with_chain != NULL;
		for (int i = 0; whole && i < sk_X509_num(p->chain); i++)
			whole = sk_X509_push(with_chain, sk_X509_value(p->chain, i)) > 0;
		if (!whole ||
		    smime_certs_only_der(with_chain, &der, &len, &err) != 0) {
			sk_X509_free(with_chain);
			snprintf(why, size, "cannot make the PKCS#7 of the certificates");
			goto out;
		}
		sk_X509_free(with_chain);
		p7.bv_val = (char *)der;
		p7.bv_len = (ber_len_t)len;
		smime_vals[0] = &p7;
	}
	/* Replace with no values removes the attribute (RFC 4511 4.6): a user
	 * whose certificates were all revoked or expired publishes none. */
	LDAPMod m_smime = { LDAP_MOD_REPLACE | LDAP_MOD_BVALUES, "userSMIMECertificate",
	    { .modv_bvals = smime_vals } };
	LDAPMod m_cert = { LDAP_MOD_REPLACE | LDAP_MOD_BVALUES, "userCertificate;binary",
	    { .modv_bvals = cert_vals } };
	LDAPMod *mods[] = { &m_smime, &m_cert, NULL };
	rc = ldap_modify_ext_s(d->ld, dn, mods, NULL, NULL);
	if (rc == LDAP_SUCCESS) {
		out = PUB_DONE;
	} else {
		snprintf(why, size, "writing %s: %s%s", dn, ldap_err2string(rc),
		    diagnostic(d->ld, diag, sizeof(diag)));
		out = connection_lost(rc) ? PUB_DOWN : PUB_RETRY;
	}
out:
	for (size_t i = 0; i < n_certs; i++)
		OPENSSL_free(ders[i]);
	OPENSSL_free(p7.bv_val);
	sk_X509_free(all);
	return out;
}

/* Every certificate record of user_id, into *v_r. */
static int
user_certs(struct service *svc, struct store_tx *tx, const char *user_id, struct store_cert **v_r,
    size_t *n_r, struct smime_error *err)
{
	struct store_cert_filter f = { .user_id = user_id };
	struct store_cert *all = NULL;
	size_t n_all = 0;
	char *next = NULL;
	int rc = 0;

	do {
		struct store_page page = { .after = next, .limit = 1000 };
		struct store_cert *v = NULL, *grown;
		char *after = NULL;
		size_t n = 0;
		rc = svc->be->cert_list(tx, &page, &f, &v, &n, &after, err);
		free(next);
		next = after;
		if (rc != 0)
			break;
		if ((grown = reallocarray(all, n_all + n + 1, sizeof(*all))) == NULL) {
			store_certs_free(v, n);
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			break;
		}
		all = grown;
		memcpy(all + n_all, v, n * sizeof(*v));
		n_all += n;
		free(v);
	} while (next != NULL && n_all < 100000);
	free(next);
	if (rc != 0) {
		store_certs_free(all, n_all);
		return rc;
	}
	*v_r = all;
	*n_r = n_all;
	return 0;
}

/* Publish what user q->user_id has now. */
static enum outcome
publish_user(struct directory *d, const struct store_publish *q, char *why, size_t size)
{
	struct service *svc = d->svc;
	struct store_tx *tx = NULL;
	struct store_user u = { 0 };
	struct store_cert *v = NULL;
	struct published p = { 0 };
	struct smime_error err;
	size_t n = 0;
	char *dn = NULL;
	enum outcome out = PUB_RETRY;
	int rc;

	why[0] = '\0';
	if ((rc = svc->be->begin(svc->st, false, &tx, &err)) != 0) {
		snprintf(why, size, "%s", err.message);
		return PUB_RETRY;
	}
	rc = svc->be->user_get(tx, q->user_id, &u, &err);
	if (rc == 0)
		rc = user_certs(svc, tx, q->user_id, &v, &n, &err);
	svc->be->rollback(tx);
	if (rc == SMIME_E_NOTFOUND) {
		/* The user is gone; deleting a user revokes nothing, and the
		 * directory's entry is the directory's to remove. */
		out = PUB_DONE;
		goto out;
	}
	if (rc != 0) {
		snprintf(why, size, "%s", err.message);
		goto out;
	}
	if (n == 0 || u.n_emails == 0) {
		out = PUB_DONE;               /* nothing of ours to publish */
		goto out;
	}
	if ((rc = published_select(svc, v, n, service_now(), &p, &err)) != 0) {
		snprintf(why, size, "%s", err.message);
		goto out;
	}
	if ((out = find_entry(d, u.emails[0], &dn, why, size)) != PUB_DONE)
		goto out;
	if ((out = write_entry(d, dn, &p, why, size)) == PUB_DONE)
		log_event("info", "directory.published", "user", q->user_id, "email", u.emails[0],
		    "dn", dn, "encryption", p.enc != NULL ? p.enc->serial : "",
		    NULL);
out:
	ldap_memfree(dn);
	published_clear(&p);
	store_certs_free(v, n);
	store_user_clear(&u);
	return out;
}

/* ---- the queue ------------------------------------------------------------ */

struct queue_op {
	struct directory *d;
	const struct store_publish *q;
	int64_t next_at;              /* PUB_RETRY */
	const char *error;
	bool all;                     /* queue everyone (a full sync) */
	size_t n;                     /* all: how many were queued */
	const char *meta_url;         /* all: the directory now published to */
};

static int
queue_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct queue_op *o = arg;
	const struct store_backend *be = o->d->svc->be;
	int rc;

	if (o->all) {
		rc = be->publish_all(tx, service_now(), &o->n, err);
		if (rc == 0 && o->meta_url != NULL)
			rc = be->meta_set(tx, "directory.url", o->meta_url, err);
		return rc;
	}
	if (o->error == NULL)
		return be->publish_done(tx, o->q->user_id, o->q->seq, err);
	return be->publish_retry(tx, o->q->user_id, o->q->seq, o->next_at, o->error, err);
}

static int
queue_all(struct directory *d, const char *meta_url, size_t *n_r, struct smime_error *err)
{
	struct queue_op o = { .d = d, .all = true, .meta_url = meta_url };
	int rc = committer_run(d->svc->commit, queue_fn, &o, err);

	if (rc == 0 && n_r != NULL)
		*n_r = o.n;
	directory_kick(d);
	return rc;
}

/* The delay after the attempts-th failure: retry_min doubling, at most retry_max. */
static long
backoff(const struct config *cfg, int64_t attempts)
{
	long delay = cfg->ldap_retry_min;

	for (int64_t i = 0; i < attempts && delay < cfg->ldap_retry_max; i++)
		delay *= 2;
	return delay < cfg->ldap_retry_max ? delay : cfg->ldap_retry_max;
}

/* One pass over the users due now; false when the directory is down. */
static bool
drain(struct directory *d)
{
	struct service *svc = d->svc;
	struct store_tx *tx = NULL;
	struct store_publish *v = NULL;
	struct smime_error err;
	size_t n = 0, total = 0;
	char why[SMIME_ERROR_MAX];
	bool up = true;
	int rc;

	if ((rc = svc->be->begin(svc->st, false, &tx, &err)) != 0)
		return true;
	rc = svc->be->publish_due(tx, service_now(), DUE_BATCH, &v, &n, &err);
	if (rc == 0) {
		struct store_publish *all = NULL;
		size_t n_all = 0;
		if (svc->be->publish_pending(tx, 1, &all, &n_all, &total, &err) == 0)
			atomic_store(&svc->metrics.publish_pending, total);
		store_publishes_free(all, n_all);
	}
	svc->be->rollback(tx);
	if (rc != 0) {
		log_event("error", "directory.queue", "message", err.message, NULL);
		return true;
	}
	for (size_t i = 0; i < n && up; i++) {
		struct queue_op o = { .d = d, .q = &v[i] };
		enum outcome out;
		if (atomic_load(&svc->stopping) || atomic_load(&d->stop))
			break;
		if (d->ld == NULL) {
			if (dir_connect(d, &err) != 0) {
				note_failure(d, err.message);
				log_event("warning", "directory.down", "message", err.message, NULL);
				up = false;
				break;
			}
			log_event("info", "directory.connected", "url", d->uri, NULL);
		}
		out = publish_user(d, &v[i], why, sizeof(why));
		if (out == PUB_DOWN) {
			note_failure(d, why);
			log_event("warning", "directory.down", "message", why, NULL);
			disconnect(d);
			up = false;
			break;
		}
		if (out == PUB_RETRY) {
			note_failure(d, why);
			o.error = why;
			o.next_at = service_now() + backoff(&svc->cfg, v[i].attempts);
			log_event("warning", "directory.failed", "user", v[i].user_id, "message", why,
			    NULL);
		} else {
			atomic_fetch_add(&svc->metrics.published, 1);
			pthread_mutex_lock(&d->lock);
			d->last_success = service_now();
			pthread_mutex_unlock(&d->lock);
		}
		if (committer_run(svc->commit, queue_fn, &o, &err) != 0)
			log_event("error", "directory.queue", "message", err.message, NULL);
	}
	store_publishes_free(v, n);
	return up;
}

static void *
worker(void *arg)
{
	struct directory *d = arg;
	const struct config *cfg = &d->svc->cfg;

	pthread_mutex_lock(&d->lock);
	while (!atomic_load(&d->stop)) {
		int64_t now = service_now();
		bool ready = d->ld != NULL || now >= d->conn_next;
		pthread_mutex_unlock(&d->lock);
		if (cfg->ldap_sync_interval > 0 && now >= d->next_sync) {
			struct smime_error err;
			size_t n = 0;
			d->next_sync = now + cfg->ldap_sync_interval;
			if (queue_all(d, NULL, &n, &err) != 0)
				log_event("error", "directory.sync", "message", err.message, NULL);
		}
		if (ready) {
			if (drain(d)) {
				d->conn_delay = 0;
			} else {
				d->conn_delay = d->conn_delay == 0 ? cfg->ldap_retry_min :
				    d->conn_delay * 2;
				if (d->conn_delay > cfg->ldap_retry_max)
					d->conn_delay = cfg->ldap_retry_max;
				d->conn_next = service_now() + d->conn_delay;
			}
		}
		/* Wait for a kick, and look again each second for retries that are due. */
		pthread_mutex_lock(&d->lock);
		if (!d->kicked && !atomic_load(&d->stop)) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&d->cond, &d->lock, &until);
		}
		d->kicked = false;
	}
	d->done = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	disconnect(d);
	return NULL;
}

int
directory_sync(struct directory *d, size_t *n_r, struct smime_error *err)
{
	return queue_all(d, NULL, n_r, err);
}

json_t *
directory_status(struct directory *d)
{
	json_t *j;

	pthread_mutex_lock(&d->lock);
	j = json_pack("{s:s,s:s,s:s,s:b,s:o,s:o,s:s?}", "url", d->svc->cfg.ldap_url, "base",
	    d->svc->cfg.ldap_base, "filter", d->svc->cfg.ldap_filter, "connected", d->connected,
	    "last_success", d->last_success ? time_json(d->last_success) : json_null(),
	    "last_failure", d->last_failure ? time_json(d->last_failure) : json_null(),
	    "last_error", d->last_failure ? d->last_error : NULL);
	pthread_mutex_unlock(&d->lock);
	return j;
}

void
directory_kick(struct directory *d)
{
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	d->kicked = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static void
directory_free(struct directory *d)
{
	if (d == NULL)
		return;
	disconnect(d);
	if (d->password != NULL) {
		OPENSSL_cleanse(d->password, strlen(d->password));
		free(d->password);
	}
	free(d->uri);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

int
directory_start(struct service *svc, struct directory **d_r, struct smime_error *err)
{
	const struct config *cfg = &svc->cfg;
	struct directory *d;
	struct store_tx *tx = NULL;
	char *published_to = NULL;
	const char *why;
	int rc;

	*d_r = NULL;
	if (cfg->ldap_url[0] == '\0')
		return 0;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->svc = svc;
	d->next_sync = service_now() + cfg->ldap_sync_interval;
	if (!url_check(cfg->ldap_url, &d->uri, &d->tls, &why)) {
		directory_free(d);
		return smime_error_set(err, SMIME_E_USAGE, "ldap_url '%s' %s", cfg->ldap_url, why);
	}
	d->tls = d->tls || cfg->ldap_starttls;
	if (cfg->ldap_password_file[0] != '\0' &&
	    (d->password = read_password(cfg->ldap_password_file, err)) == NULL) {
		directory_free(d);
		return err->code;
	}
	/* A directory published to for the first time gets everyone: the
	 * queue only holds changes made since. */
	if ((rc = svc->be->begin(svc->st, false, &tx, err)) == 0) {
		rc = svc->be->meta_get(tx, "directory.url", &published_to, err);
		svc->be->rollback(tx);
	}
	if (rc == SMIME_E_NOTFOUND || (rc == 0 && strcmp(published_to, cfg->ldap_url) != 0)) {
		size_t n = 0;
		rc = queue_all(d, cfg->ldap_url, &n, err);
		if (rc == 0) {
			char num[32];
			snprintf(num, sizeof(num), "%zu", n);
			log_event("info", "directory.sync", "url", cfg->ldap_url, "users", num,
			    "why", "a directory not published to before", NULL);
		}
	}
	free(published_to);
	if (rc != 0) {
		directory_free(d);
		return rc;
	}
	if (pthread_create(&d->thread, NULL, worker, d) != 0) {
		directory_free(d);
		return smime_error_set(err, SMIME_E_INTERNAL, "cannot start the directory worker");
	}
	*d_r = d;
	return 0;
}

bool
directory_stop(struct directory *d, long grace)
{
	struct timespec until;
	bool done;

	if (d == NULL)
		return true;
	pthread_mutex_lock(&d->lock);
	atomic_store(&d->stop, true);
	pthread_cond_broadcast(&d->cond);
	/* One directory operation may be under way: its own timeouts end it. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (grace > 0 ? grace : 1) + 2 * LDAP_OP_TIMEOUT;
	while (!d->done && pthread_cond_timedwait(&d->cond, &d->lock, &until) == 0)
		;
	done = d->done;
	pthread_mutex_unlock(&d->lock);
	if (!done) {
		log_event("warning", "directory.stop", "message", "the worker is still in a "
		    "directory operation", NULL);
		return false;
	}
	pthread_join(d->thread, NULL);
	directory_free(d);
	return true;
}

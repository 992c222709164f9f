/*
 * smimed: the configuration.  Every key lives in one table with its type,
 * default and one line of documentation; the file, the environment and
 * --print-config all read that table, so they cannot drift apart.
 *
 * File syntax: "key = value" lines; '#' starts a comment line; blank lines
 * are ignored; values run to the end of the line (trailing blanks dropped).
 * Environment: SMIMED_KEY (upper case) overrides the file.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca.h"
#include "directory.h"
#include "service.h"

#define CONFIG_MAX_LINE 4096
#define CONFIG_MAX_FILE (1024 * 1024)

enum kind { K_STR, K_LONG };

static const struct key {
	const char *name;
	enum kind kind;
	size_t off;
	const char *def;
	long min, max;
	const char *doc;
} keys[] = {
	{ "listen", K_STR, offsetof(struct config, listen), "127.0.0.1:8080", 0, 0,
	  "address and port to listen on (IPv6 in brackets: [::1]:8080)" },
	{ "public_listen", K_STR, offsetof(struct config, public_listen), "", 0, 0,
	  "address and port of a second, plain-HTTP listener for /ca, /crl, /ocsp and /healthz only; needed with TLS" },
	{ "public_url", K_STR, offsetof(struct config, public_url), "", 0, 0,
	  "base URL put in certificates (AIA, CRL), http://; empty: http://PUBLIC_LISTEN, else http://LISTEN" },
	{ "store", K_STR, offsetof(struct config, store), "sqlite", 0, 0,
	  "store backend" },
	{ "tls_cert", K_STR, offsetof(struct config, tls_cert), "", 0, 0,
	  "PEM certificate (chain) for HTTPS; empty: plain HTTP" },
	{ "tls_key", K_STR, offsetof(struct config, tls_key), "", 0, 0,
	  "PEM private key for HTTPS" },
	{ "http_threads", K_LONG, offsetof(struct config, http_threads), "0", 0, 256,
	  "HTTP worker threads; 0: sixteen per processor, 32 to 256" },
	{ "max_body", K_LONG, offsetof(struct config, max_body), "65536", 1024, 16777216,
	  "largest JSON request body, octets" },
	{ "max_import", K_LONG, offsetof(struct config, max_import), "4194304", 1024, 268435456,
	  "largest CSV import body, octets" },
	{ "connection_limit", K_LONG, offsetof(struct config, connection_limit), "1024", 16, 65536,
	  "simultaneous connections" },
	{ "per_ip_connection_limit", K_LONG, offsetof(struct config, per_ip_connection_limit), "128", 1, 65536,
	  "simultaneous connections from one address" },
	{ "max_buffered", K_LONG, offsetof(struct config, max_buffered), "67108864", 65536, 4294967296L,
	  "octets of request bodies held at once, all connections together; beyond it uploads get 503" },
	{ "request_timeout", K_LONG, offsetof(struct config, request_timeout), "30", 1, 3600,
	  "seconds a connection may stay idle" },
	{ "ca_key_alg", K_STR, offsetof(struct config, ca_key_alg), "ec-p256", 0, 0,
	  "key of the CA made at first start: ec-p256, ec-p384, rsa-3072, rsa-4096" },
	{ "ca_name", K_STR, offsetof(struct config, ca_name), "smimed", 0, 0,
	  "organisation name in the subjects of the CA made at first start" },
	{ "ca_country", K_STR, offsetof(struct config, ca_country), "", 0, 0,
	  "two-letter country (ISO 3166-1) in the subjects of CAs this service makes; S/MIME BR 7.1.4.3.1 wants it" },
	{ "root_validity_days", K_LONG, offsetof(struct config, root_validity_days), "7300", 365, 10950,
	  "validity of the root made at first start, days" },
	{ "issuing_validity_days", K_LONG, offsetof(struct config, issuing_validity_days), "3650", 30, 7300,
	  "validity of the issuing CA made at first start, days" },
	{ "crl_refresh", K_LONG, offsetof(struct config, crl_refresh), "3600", 60, 604800,
	  "seconds between scheduled CRLs (a revocation makes one at once)" },
	{ "crl_validity", K_LONG, offsetof(struct config, crl_validity), "172800", 300, 2592000,
	  "nextUpdate of a CRL, seconds after thisUpdate" },
	{ "ocsp_validity", K_LONG, offsetof(struct config, ocsp_validity), "86400", 60, 604800,
	  "nextUpdate of an OCSP response, seconds after thisUpdate" },
	{ "ocsp_cache", K_LONG, offsetof(struct config, ocsp_cache), "60", 0, 3600,
	  "seconds an OCSP response without a nonce is reused (revocation flushes it)" },
	{ "lookup_rate", K_LONG, offsetof(struct config, lookup_rate), "50", 1, 1000000,
	  "public lookups per second from one client address (token bucket)" },
	{ "lookup_burst", K_LONG, offsetof(struct config, lookup_burst), "100", 1, 10000000,
	  "public lookups one client address may make at once" },
	{ "ldap_url", K_STR, offsetof(struct config, ldap_url), "", 0, 0,
	  "directory to publish users' certificates to: ldap://HOST:PORT or ldaps://HOST:PORT; empty: none" },
	{ "ldap_base", K_STR, offsetof(struct config, ldap_base), "", 0, 0,
	  "base DN under which users' entries are searched" },
	{ "ldap_filter", K_STR, offsetof(struct config, ldap_filter), "(mail=%s)", 0, 0,
	  "filter that finds a user's entry, %s for the primary address (escaped, RFC 4515)" },
	{ "ldap_bind_dn", K_STR, offsetof(struct config, ldap_bind_dn), "", 0, 0,
	  "DN to bind as, with ldap_password_file; it needs write access to the two attributes" },
	{ "ldap_password_file", K_STR, offsetof(struct config, ldap_password_file), "", 0, 0,
	  "file holding the bind password (its first line)" },
	{ "ldap_starttls", K_LONG, offsetof(struct config, ldap_starttls), "0", 0, 1,
	  "1: StartTLS on an ldap:// URL" },
	{ "ldap_cacert", K_STR, offsetof(struct config, ldap_cacert), "", 0, 0,
	  "PEM CA certificates for the directory's TLS certificate; empty: the system's" },
	{ "ldap_retry_min", K_LONG, offsetof(struct config, ldap_retry_min), "5", 1, 3600,
	  "seconds before the first retry of a failed publication; doubles with each failure" },
	{ "ldap_retry_max", K_LONG, offsetof(struct config, ldap_retry_max), "300", 1, 86400,
	  "longest wait between retries, seconds" },
	{ "ldap_sync_interval", K_LONG, offsetof(struct config, ldap_sync_interval), "86400", 0, 2592000,
	  "seconds between full republications (certificates expire without a change); 0: never" },
	{ "scep_max_failures", K_LONG, offsetof(struct config, scep_max_failures), "5", 1, 1000,
	  "wrong SCEP challenges from one address, or for one device, before a cool-down" },
	{ "scep_cooldown", K_LONG, offsetof(struct config, scep_cooldown), "900", 1, 86400,
	  "seconds SCEP answers FAILURE without trying, after scep_max_failures" },
	{ "scep_clock_skew", K_LONG, offsetof(struct config, scep_clock_skew), "3600", 60, 604800,
	  "seconds a SCEP request's signingTime may be off the service's clock (badTime beyond)" },
	{ "scep_ra_key_alg", K_STR, offsetof(struct config, scep_ra_key_alg), "rsa-2048", 0, 0,
	  "key of the RA made for an EC CA that SCEP issues from: rsa-2048, rsa-3072, rsa-4096" },
	{ "recovery_approval", K_LONG, offsetof(struct config, recovery_approval), "1", 1, 2,
	  "tokens a key recovery needs: 1, the one that asks; 2, a second, different recovery or admin token approves a request first" },
	{ "recovery_request_ttl", K_LONG, offsetof(struct config, recovery_request_ttl), "86400", 1, 2592000,
	  "seconds a recovery request may wait for its approval and export (recovery_approval = 2)" },
	{ "archive_retention_days", K_LONG, offsetof(struct config, archive_retention_days), "0", 0, 36500,
	  "days after a user's deletion before an explicit purge may destroy the user's archived keys; 0: at once; nothing is ever purged automatically" },
	{ "commit_batch", K_LONG, offsetof(struct config, commit_batch), "256", 1, 10000,
	  "state changes committed together, at most (group commit)" },
	{ "shutdown_grace", K_LONG, offsetof(struct config, shutdown_grace), "30", 0, 3600,
	  "seconds in-flight requests get to finish after SIGTERM" },
	{ "log_format", K_STR, offsetof(struct config, log_format), "json", 0, 0,
	  "json (one object per line) or text (key=value)" },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static char **
str_at(struct config *cfg, const struct key *k)
{
	return (char **)((char *)cfg + k->off);
}

static long *
long_at(struct config *cfg, const struct key *k)
{
	return (long *)((char *)cfg + k->off);
}

static int
set_value(struct config *cfg, const struct key *k, const char *value, const char *where,
    struct smime_error *err)
{
	if (k->kind == K_STR) {
		char *s = strdup(value);
		if (s == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		free(*str_at(cfg, k));
		*str_at(cfg, k) = s;
		return 0;
	}
	char *end;
	errno = 0;
	long v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0')
		return smime_error_set(err, SMIME_E_USAGE, "%s: %s: not a number: '%s'", where,
		    k->name, value);
	if (v < k->min || v > k->max)
		return smime_error_set(err, SMIME_E_USAGE, "%s: %s: %ld is outside %ld..%ld", where,
		    k->name, v, k->min, k->max);
	*long_at(cfg, k) = v;
	return 0;
}

static const struct key *
find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static char *
trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int
load_file(struct config *cfg, const char *path, struct smime_error *err)
{
	FILE *f = fopen(path, "r");
	char line[CONFIG_MAX_LINE + 2];
	long lineno = 0, total = 0;
	int rc = 0;

	if (f == NULL)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		char where[PATH_MAX + 32];
		lineno++;
		total += (long)strlen(line);
		snprintf(where, sizeof(where), "%s:%ld", path, lineno);
		if (total > CONFIG_MAX_FILE) {
			rc = smime_error_set(err, SMIME_E_INPUT, "%s: file larger than %d octets",
			    path, CONFIG_MAX_FILE);
			goto out;
		}
		if (strchr(line, '\n') == NULL && !feof(f)) {
			rc = smime_error_set(err, SMIME_E_INPUT, "%s: line longer than %d characters",
			    where, CONFIG_MAX_LINE);
			goto out;
		}
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			rc = smime_error_set(err, SMIME_E_INPUT, "%s: expected 'key = value'", where);
			goto out;
		}
		*eq = '\0';
		char *name = trim(s), *value = trim(eq + 1);
		const struct key *k = find_key(name);
		if (k == NULL) {
			rc = smime_error_set(err, SMIME_E_INPUT, "%s: unknown key '%s' (smimed "
			    "--print-config lists them)", where, name);
			goto out;
		}
		if ((rc = set_value(cfg, k, value, where, err)) != 0)
			goto out;
	}
	if (ferror(f))
		rc = smime_error_set(err, SMIME_E_IO, "%s: read error", path);
out:
	fclose(f);
	return rc;
}

char *
config_default_data(void)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	char buf[PATH_MAX];

	if (geteuid() == 0)
		return strdup("/var/lib/smimed");
	if (xdg != NULL && *xdg == '/')
		snprintf(buf, sizeof(buf), "%s/smimed", xdg);
	else {
		if (home == NULL || *home == '\0') {
			struct passwd *pw = getpwuid(geteuid());
			home = pw != NULL ? pw->pw_dir : "/tmp";
		}
		snprintf(buf, sizeof(buf), "%s/.local/share/smimed", home);
	}
	return strdup(buf);
}

int
config_load(struct config *cfg, const char *path, const char *data_override,
    struct smime_error *err)
{
	char buf[PATH_MAX];
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NKEYS; i++)
		if ((rc = set_value(cfg, &keys[i], keys[i].def, "default", err)) != 0)
			return rc;
	/* The data folder decides where the default file is, so it comes first. */
	const char *env_data = getenv("SMIMED_DATA");
	if (data_override != NULL)
		cfg->data = strdup(data_override);
	else if (env_data != NULL && *env_data != '\0')
		cfg->data = strdup(env_data);
	else
		cfg->data = config_default_data();
	if (cfg->data == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if (path == NULL) {
		const char *env_path = getenv("SMIMED_CONFIG");
		if (env_path != NULL && *env_path != '\0')
			path = env_path;
		else {
			snprintf(buf, sizeof(buf), "%s/smimed.conf", cfg->data);
			if (access(buf, F_OK) == 0)
				path = buf;
		}
	}
	if (path != NULL && (rc = load_file(cfg, path, err)) != 0)
		return rc;
	for (size_t i = 0; i < NKEYS; i++) {
		char name[64] = "SMIMED_";
		size_t n = strlen(name);
		for (const char *p = keys[i].name; *p != '\0' && n < sizeof(name) - 1; p++)
			name[n++] = (char)toupper((unsigned char)*p);
		name[n] = '\0';
		const char *v = getenv(name);
		if (v != NULL && (rc = set_value(cfg, &keys[i], v, name, err)) != 0)
			return rc;
	}
	return 0;
}

static int
check_addr(const char *key, const char *value, struct smime_error *err)
{
	const char *colon = strrchr(value, ':');
	char *end;

	if (colon == NULL || colon == value)
		return smime_error_set(err, SMIME_E_USAGE, "%s: '%s' is not ADDR:PORT", key, value);
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		return smime_error_set(err, SMIME_E_USAGE, "%s: bad port in '%s'", key, value);
	return 0;
}

int
config_check(const struct config *cfg, struct smime_error *err)
{
	int rc;

	if ((rc = check_addr("listen", cfg->listen, err)) != 0)
		return rc;
	if (*cfg->public_listen != '\0' &&
	    (rc = check_addr("public_listen", cfg->public_listen, err)) != 0)
		return rc;
	if (*cfg->public_listen != '\0' && strcmp(cfg->public_listen, cfg->listen) == 0)
		return smime_error_set(err, SMIME_E_USAGE, "public_listen: must differ from listen");
	if (store_backend_find(cfg->store) == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "store: unknown backend '%s' (known: sqlite)",
		    cfg->store);
	if ((*cfg->tls_cert == '\0') != (*cfg->tls_key == '\0'))
		return smime_error_set(err, SMIME_E_USAGE, "tls_cert and tls_key go together");
	if (*cfg->tls_cert != '\0' && access(cfg->tls_cert, R_OK) != 0)
		return smime_error_set(err, SMIME_E_USAGE, "tls_cert: %s: %s", cfg->tls_cert,
		    strerror(errno));
	if (*cfg->tls_key != '\0' && access(cfg->tls_key, R_OK) != 0)
		return smime_error_set(err, SMIME_E_USAGE, "tls_key: %s: %s", cfg->tls_key,
		    strerror(errno));
	if (!ca_key_alg_valid(cfg->ca_key_alg) || strncmp(cfg->ca_key_alg, "rsa-2048", 8) == 0)
		return smime_error_set(err, SMIME_E_USAGE, "ca_key_alg: '%s' is not one of ec-p256, "
		    "ec-p384, ec-p521, rsa-3072, rsa-4096", cfg->ca_key_alg);
	if (strncmp(cfg->scep_ra_key_alg, "rsa-", 4) != 0 || !ca_key_alg_valid(cfg->scep_ra_key_alg))
		return smime_error_set(err, SMIME_E_USAGE, "scep_ra_key_alg: '%s' is not one of "
		    "rsa-2048, rsa-3072, rsa-4096 (SCEP envelopes are encrypted to RSA)",
		    cfg->scep_ra_key_alg);
	if (*cfg->ca_country != '\0' && (strlen(cfg->ca_country) != 2 ||
	    !isupper((unsigned char)cfg->ca_country[0]) || !isupper((unsigned char)cfg->ca_country[1])))
		return smime_error_set(err, SMIME_E_USAGE, "ca_country: two capital letters "
		    "(ISO 3166-1 alpha-2), e.g. DE");
	if (*cfg->ca_name == '\0' || strlen(cfg->ca_name) > 48)
		return smime_error_set(err, SMIME_E_USAGE, "ca_name: 1 to 48 characters");
	/* An https:// URL (behind a reverse proxy) is the service's; the URLs
	 * in certificates take the same host over http (S/MIME BR 7.1.2.3 (b),
	 * (c): the CRL and AIA URIs SHALL use the http scheme). */
	if (*cfg->public_url != '\0' && strncmp(cfg->public_url, "http://", 7) != 0 &&
	    strncmp(cfg->public_url, "https://", 8) != 0)
		return smime_error_set(err, SMIME_E_USAGE, "public_url: must start with http:// or "
		    "https://");
	if (*cfg->tls_cert != '\0' && *cfg->public_url == '\0' && *cfg->public_listen == '\0')
		return smime_error_set(err, SMIME_E_USAGE, "with tls_cert, set public_listen (a plain "
		    "HTTP listener for /ca, /crl, /ocsp) or public_url: the URLs in certificates are "
		    "http:// (S/MIME BR 7.1.2.3)");
	if (strcmp(cfg->log_format, "json") != 0 && strcmp(cfg->log_format, "text") != 0)
		return smime_error_set(err, SMIME_E_USAGE, "log_format: json or text");
	if ((rc = directory_config_check(cfg, err)) != 0)
		return rc;
	if (cfg->crl_validity <= cfg->crl_refresh)
		return smime_error_set(err, SMIME_E_USAGE, "crl_validity must be longer than "
		    "crl_refresh (a CRL must not expire before the next one)");
	return 0;
}

void
config_print(const struct config *cfg, FILE *f)
{
	fprintf(f, "# smimed configuration: KEY = VALUE; SMIMED_KEY in the environment overrides.\n");
	fprintf(f, "# data folder (--data, SMIMED_DATA): %s\n", cfg->data);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		fprintf(f, "\n# %s (default: %s)\n", k->doc, *k->def ? k->def : "empty");
		if (k->kind == K_STR)
			fprintf(f, "%s = %s\n", k->name, *str_at((struct config *)cfg, k));
		else
			fprintf(f, "%s = %ld\n", k->name, *long_at((struct config *)cfg, k));
	}
}

void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].kind == K_STR)
			free(*str_at(cfg, &keys[i]));
	free(cfg->data);
	memset(cfg, 0, sizeof(*cfg));
}

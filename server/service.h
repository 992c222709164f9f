/*
 * smimed: the service's parts and how they meet.
 *
 * struct service is built once by service_open (service.c) and shared by
 * every HTTP thread; what changes while it runs (the signer's keys, the
 * OCSP responder's CAs) is guarded inside those modules.
 */
#ifndef SMIMED_SERVICE_H
#define SMIMED_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <smime/error.h>

#include "store.h"

struct signer;
struct archive;
struct ocsp_responder;
struct committer;
struct directory;
struct scep_throttle;

/* The configuration: every key of smimed.conf (config.c lists them with
 * their defaults and documentation). */
struct config {
	char *data;                 /* data folder */
	char *listen;               /* ADDR:PORT */
	char *public_listen;        /* ADDR:PORT of plain HTTP for /ca, /crl, /ocsp; "" = none */
	char *public_url;           /* base of the URLs put in certificates; "" = from listen */
	char *store;                /* backend name */
	char *tls_cert, *tls_key;   /* PEM files; both or neither */
	long http_threads;          /* 0: automatic */
	long max_body;              /* octets of a JSON body */
	long max_import;            /* octets of a CSV import */
	long connection_limit;
	long per_ip_connection_limit;
	long max_buffered;          /* octets of all request bodies held at once */
	long request_timeout;       /* seconds */
	char *ca_key_alg;           /* for the CA made at first start */
	char *ca_name;              /* organisation name in the CA subjects */
	char *ca_country;           /* ISO 3166-1 country code in the CA subjects, "" = none */
	long root_validity_days, issuing_validity_days;
	long crl_refresh, crl_validity;       /* seconds */
	long ocsp_validity, ocsp_cache;       /* seconds */
	long lookup_rate, lookup_burst;       /* per client address: per second, at once */
	char *ldap_url;             /* the directory to publish to; "" = none */
	char *ldap_base, *ldap_filter, *ldap_bind_dn, *ldap_password_file, *ldap_cacert;
	long ldap_starttls;
	long ldap_retry_min, ldap_retry_max, ldap_sync_interval;  /* seconds */
	long scep_max_failures;     /* wrong challenges per address or device before a cool-down */
	long scep_cooldown;         /* seconds */
	long scep_clock_skew;       /* seconds a request's signingTime may be off */
	char *scep_ra_key_alg;      /* key of the RA made for an EC CA */
	long recovery_approval;     /* 1, or 2: a recovery is a request a second token approves */
	long recovery_request_ttl;  /* seconds a recovery request lives */
	long archive_retention_days; /* days after deletion before a purge; 0: no wait */
	long commit_batch;          /* requests per group commit, at most */
	long shutdown_grace;        /* seconds in-flight requests get on SIGTERM */
	char *log_format;           /* json or text */
};

/* Defaults, then the file (when path is not NULL or DATA/smimed.conf
 * exists), then SMIMED_* environment variables.  Command-line values are
 * applied by the caller after this.  Errors name the file and line. */
int config_load(struct config *cfg, const char *path, const char *data_override,
    struct smime_error *err);
/* Check values (ranges, files, listen address); errors name the key. */
int config_check(const struct config *cfg, struct smime_error *err);
/* Print every key with its value and the documented default. */
void config_print(const struct config *cfg, FILE *f);
void config_free(struct config *cfg);
/* The default data folder: /var/lib/smimed for root, else
 * $XDG_DATA_HOME/smimed or ~/.local/share/smimed. */
char *config_default_data(void);

/* Structured log lines on stderr, one per request and per event.
 * fields: pairs of key, value strings, ending with NULL. */
void log_init(bool json);
/* True when s[0..n) is valid UTF-8 (RFC 3629: shortest forms, no surrogates). */
bool utf8_valid(const char *s, size_t n);
/* Replace in place what is not UTF-8, and control characters, by '?'. */
void text_scrub(char *s);
void log_event(const char *level, const char *event, ...);  /* key, value, ..., NULL */

struct metrics {
	_Atomic uint64_t requests[6];       /* by status class: 1xx..5xx, [0] other */
	_Atomic uint64_t latency_bucket[14];/* cumulative in metrics_text */
	_Atomic uint64_t latency_count;
	_Atomic uint64_t latency_sum_us;
	_Atomic uint64_t issued;
	_Atomic uint64_t revoked;
	_Atomic uint64_t store_errors;
	_Atomic uint64_t ocsp_responses;
	_Atomic uint64_t auth_failures;
	_Atomic uint64_t forbidden;         /* admin requests refused for the token's role */
	_Atomic uint64_t published;         /* users written to the directory */
	_Atomic uint64_t publish_failures;  /* attempts that failed, connecting included */
	_Atomic uint64_t publish_pending;   /* users queued, as last seen by the worker */
};
void metrics_observe(struct metrics *m, int status, uint64_t micros);
/* Prometheus text exposition; caller frees. */
char *metrics_text(struct metrics *m);

struct service {
	struct config cfg;
	char *base_url;             /* public, without a trailing slash */
	const struct store_backend *be;
	struct store *st;
	struct signer *signer;
	struct archive *archive;    /* users' private keys, sealed under the KEK kept in the store */
	struct committer *commit;
	struct ocsp_responder *ocsp;
	struct directory *directory; /* the publication worker, when ldap_url is set */
	struct scep_throttle *scep_throttle; /* wrong SCEP challenges (scep.c) */
	struct metrics metrics;
	pthread_mutex_t crl_lock;   /* one CRL generation at a time */
	_Atomic uint64_t state_gen; /* grows with every committed change (rq_commit): caches compare it */
	pthread_mutex_t trust_lock; /* the trust collection kept for state_gen (trust.c) */
	struct trust_collection *trust_store; /* trust.c: the anchors and the distrust list */
	uint64_t trust_gen;
	atomic_bool stopping;
};

/* Open the store, load or make the CA (first start: root, issuing CA,
 * default profiles, first admin token in DATA/admin.token), load the
 * signer's keys, make CRLs that are missing or stale. */
int service_open(struct service *svc, struct smime_error *err);
void service_close(struct service *svc);
/* Reload CAs (keys, OCSP set) from the store: after a restore (SIGHUP). */
int service_reload(struct service *svc, struct smime_error *err);
/* Make a new CRL for ca_id now and store it. */
int service_crl_update(struct service *svc, const char *ca_id, struct smime_error *err);
/* Refresh every CRL older than crl_refresh (the scheduler calls this). */
void service_crl_refresh(struct service *svc);

/* A new id: 36 characters, time-ordered (UUID version 7). */
void service_new_id(char out[STORE_ID_SIZE]);
int64_t service_now(void);

/* The committer: every state change runs as fn inside one store write
 * transaction that it shares with other requests (group commit).  Blocks
 * until that transaction is durable; returns fn's result, or the commit's
 * error.  fn runs on the committer thread: it must only use tx, never
 * block, and never call committer_run. */
typedef int (*commit_fn)(struct store_tx *tx, void *arg, struct smime_error *err);
struct committer *committer_new(const struct store_backend *be, struct store *st,
    size_t batch_max, struct metrics *m);
void committer_free(struct committer *c);
int committer_run(struct committer *c, commit_fn fn, void *arg, struct smime_error *err);

/* HTTP front end (http.c). */
struct http;
int http_start(struct service *svc, struct http **h_r, struct smime_error *err);
/* Stop accepting, give in-flight requests up to grace seconds, stop. */
void http_stop(struct http *h, long grace);
/* Print the route table as "METHOD PATH" lines (for the API document test). */
void http_print_routes(FILE *f);

#endif

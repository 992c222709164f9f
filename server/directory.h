/*
 * smimed: a user's published certificates, and their publication to an
 * LDAP directory where senders' mail clients look for them.
 *
 * What is published is the same everywhere (the public lookup, the
 * directory): the newest valid encryption certificate, every valid signing
 * certificate, each validated against the trust collection at the moment
 * of publication, and the CA certificates a client needs beside its own
 * anchors.
 *
 * The publication is an outbox: the store queues a user in the same
 * transaction that changes the user's certificates (a store trigger, so
 * that no path can forget it), and one worker thread drains the queue,
 * retrying with a growing delay while the directory is down or refuses.
 * An update is taken off the queue only once the directory has it and
 * only if no newer change came in meanwhile.
 */
#ifndef SMIMED_DIRECTORY_H
#define SMIMED_DIRECTORY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "service.h"

/* A user's current certificates, chosen from their records. */
struct published {
	const struct store_cert *enc;          /* NULL: none; points into the records */
	X509 *enc_cert;
	const struct store_cert **signing;     /* n_signing records */
	STACK_OF(X509) *signing_certs;
	size_t n_signing;
	STACK_OF(X509) *chain;                 /* CAs above them, not roots, no duplicates */
	size_t n_refused;                      /* current by date, refused by the collection */
};

/*
 * Choose among v[n] (one user's certificate records) those valid at now
 * and not revoked, validate each against the trust collection (those that
 * fail are left out, and counted), and collect their chains.
 */
int published_select(struct service *svc, const struct store_cert *v, size_t n, int64_t now,
    struct published *p, struct smime_error *err);
void published_clear(struct published *p);

/* The publication worker: started when ldap_url is set. */
struct directory;
int directory_start(struct service *svc, struct directory **d_r, struct smime_error *err);
/* Queue every user who has a certificate (smime admin directory sync). */
int directory_sync(struct directory *d, size_t *n_r, struct smime_error *err);
/* The worker's state: url, base, connected, last success and failure. */
json_t *directory_status(struct directory *d);
/* Something was committed: look at the queue now. */
void directory_kick(struct directory *d);
/* Stop the worker, waiting for it at most grace seconds beyond the
 * timeouts of one directory operation.  false: it did not stop, and it
 * still uses the service (the caller must not close it). */
bool directory_stop(struct directory *d, long grace);

/* Check the directory keys of the configuration (config_check calls it). */
int directory_config_check(const struct config *cfg, struct smime_error *err);

#endif

/*
 * smimed: GET /api/v1/lookup?email=ADDR, the public address book that
 * senders' mail clients ask for a recipient's certificates.
 *
 * Unauthenticated, so it answers only what is public anyway: the user's
 * current certificates (the newest valid encryption certificate, and the
 * valid signing ones), PEM and DER; never a key, never the user's id or
 * name.  An unknown address, a user without a current certificate and a
 * malformed address all get the same 404.  Each client address has a token
 * bucket (lookup_rate per second, lookup_burst at once); beyond it, 429
 * with Retry-After.
 *
 * Answers are cached per address while nothing has been committed since
 * (the service's state generation) and for at most LOOKUP_TTL seconds
 * (which bounds what another node's change may take to show).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>
#include <openssl/evp.h>

#include <smime/cert.h>

#include "api.h"
#include "directory.h"

#define BUCKETS 4096               /* client addresses tracked at once (a hash table) */
#define CACHE_SLOTS 16384          /* cached answers (a hash table, one per slot) */
#define CACHE_SHARDS 64
#define LOOKUP_TTL 10              /* seconds a cached answer lives at most */

struct cached {
	char addr[API_MAX_EMAIL + 1];
	char *text;                    /* the JSON answer */
	size_t len;
	uint64_t gen;
	int64_t made;
};

static struct cached cache[CACHE_SLOTS];
static pthread_mutex_t cache_locks[CACHE_SHARDS];
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void
cache_init(void)
{
	for (size_t i = 0; i < CACHE_SHARDS; i++)
		pthread_mutex_init(&cache_locks[i], NULL);
}

struct bucket {
	char client[64];
	double tokens;
	double last;                   /* seconds, monotonic */
};

static struct bucket buckets[BUCKETS];
static pthread_mutex_t buckets_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t bucket_seed;

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ull ^ bucket_seed;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* True when client may ask now; takes one token. */
static bool
rate_ok(const char *client, double rate, double burst)
{
	double now = mono();
	bool ok;

	pthread_mutex_lock(&buckets_lock);
	if (bucket_seed == 0)
		bucket_seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&bucket_seed;
	struct bucket *b = &buckets[hash(client) % BUCKETS];
	if (strcmp(b->client, client) != 0) {
		/* A new address takes the slot over, with a full bucket.  Two
		 * addresses sharing a slot only ever reset each other's bucket to
		 * full, so a flood from one address stays limited. */
		snprintf(b->client, sizeof(b->client), "%s", client);
		b->tokens = burst;
		b->last = now;
	}
	b->tokens += (now - b->last) * rate;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last = now;
	ok = b->tokens >= 1.0;
	if (ok)
		b->tokens -= 1.0;
	pthread_mutex_unlock(&buckets_lock);
	return ok;
}

static json_t *
public_cert(const struct store_cert *c)
{
	char *pem = api_cert_pem(c->der, c->der_len);
	char *b64 = api_base64_encode(c->der, c->der_len);
	json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:o,s:s,s:s}", "serial", c->serial, "purpose",
	    cert_purpose_name(c->purpose), "sha256", c->sha256, "not_before",
	    time_json(c->not_before), "not_after", time_json(c->not_after), "pem",
	    pem != NULL ? pem : "", "der", b64 != NULL ? b64 : "");
	free(pem);
	free(b64);
	return j;
}

static json_t *
chain_cert_make(X509 *x)
{
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);
	char fp[65], *subject = smime_cert_subject(x);
	char *pem = len > 0 ? api_cert_pem(der, (size_t)len) : NULL;
	char *b64 = len > 0 ? api_base64_encode(der, (size_t)len) : NULL;

	smime_cert_fingerprint(x, fp);
	json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "subject", subject != NULL ? subject : "",
	    "sha256", fp, "pem", pem != NULL ? pem : "", "der", b64 != NULL ? b64 : "");
	OPENSSL_free(der);
	OPENSSL_free(subject);
	free(pem);
	free(b64);
	return j;
}

/* The few CA certificates of all chains, as the answer writes them: made
 * once per certificate object (the validations kept between changes hand
 * out the same objects). */
#define CHAIN_KEPT 32
static struct { X509 *x; json_t *j; } chain_kept[CHAIN_KEPT];
static size_t chain_next;
static pthread_mutex_t chain_lock = PTHREAD_MUTEX_INITIALIZER;

static json_t *
chain_cert(X509 *x)
{
	json_t *j = NULL;

	pthread_mutex_lock(&chain_lock);
	for (size_t i = 0; i < CHAIN_KEPT && j == NULL; i++)
		if (chain_kept[i].x == x)
			j = json_deep_copy(chain_kept[i].j);
	pthread_mutex_unlock(&chain_lock);
	if (j != NULL)
		return j;
	if ((j = chain_cert_make(x)) == NULL || !X509_up_ref(x))
		return j;
	json_t *keep = json_deep_copy(j);
	pthread_mutex_lock(&chain_lock);
	size_t i = chain_next++ % CHAIN_KEPT;
	X509_free(chain_kept[i].x);
	json_decref(chain_kept[i].j);
	chain_kept[i].x = x;
	chain_kept[i].j = keep;
	pthread_mutex_unlock(&chain_lock);
	return j;
}

void
h_lookup(struct request *rq)
{
	const char *q = rq_query(rq, "email");
	char addr[API_MAX_EMAIL + 1];
	const char *why;
	struct store_user u = { 0 };
	struct store_cert *v = NULL;
	size_t n = 0;
	char *next = NULL;
	struct smime_error err;
	struct store_tx *tx = NULL;
	int64_t now = service_now();

	if (!rate_ok(rq->client, (double)rq->svc->cfg.lookup_rate,
	    (double)rq->svc->cfg.lookup_burst)) {
		reply_error(rq, 429, "too-many-requests", "too many lookups from %s: slow down",
		    rq->client);
		if (rq->resp != NULL)
			MHD_add_response_header(rq->resp, "Retry-After", "1");
		return;
	}
	if (q == NULL || !api_email(q, addr, &why)) {
		reply_error(rq, 404, "not-found", "no certificate for that address");
		return;
	}
	pthread_once(&cache_once, cache_init);
	uint64_t gen = atomic_load(&rq->svc->state_gen);
	size_t slot = hash(addr) % CACHE_SLOTS;
	pthread_mutex_t *lock = &cache_locks[slot % CACHE_SHARDS];
	pthread_mutex_lock(lock);
	struct cached *ce = &cache[slot];
	if (ce->text != NULL && ce->gen == gen && now - ce->made < LOOKUP_TTL &&
	    strcmp(ce->addr, addr) == 0) {
		reply_data(rq, 200, "application/json", ce->text, ce->len);
		pthread_mutex_unlock(lock);
		return;
	}
	pthread_mutex_unlock(lock);
	if ((tx = rq_read(rq)) == NULL)
		return;
	struct store_page page = { .after = NULL, .limit = 1000 };
	int rc = rq->svc->be->user_get(tx, addr, &u, &err);
	struct store_cert_filter f = { .user_id = u.id, .status = STATUS_ACTIVE };
	if (rc == 0)
		rc = rq->svc->be->cert_list(tx, &page, &f, &v, &n, &next, &err);
	rq->svc->be->rollback(tx);
	if (rc != 0 && rc != SMIME_E_NOTFOUND) {
		reply_smime(rq, &err);
		goto out;
	}
	/* What the directory gets too: the newest valid encryption
	 * certificate, every valid signing one, each accepted by the trust
	 * collection now, and the CAs a client needs beside its anchors. */
	struct published p;
	if ((rc = published_select(rq->svc, v, n, now, &p, &err)) != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	if (p.enc == NULL && p.n_signing == 0) {
		published_clear(&p);
		reply_error(rq, 404, "not-found", "no certificate for that address");
		goto out;
	}
	json_t *signing = json_array(), *chain = json_array();
	for (size_t i = 0; i < p.n_signing; i++)
		json_array_append_new(signing, public_cert(p.signing[i]));
	for (int i = 0; i < sk_X509_num(p.chain); i++)
		json_array_append_new(chain, chain_cert(sk_X509_value(p.chain, i)));
	json_t *answer = json_pack("{s:s,s:o,s:o,s:o}", "email", addr, "encryption",
	    p.enc != NULL ? public_cert(p.enc) : json_null(), "signing", signing, "chain", chain);
	published_clear(&p);
	char *text = answer != NULL ? json_dumps(answer, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (text != NULL) {
		/* Kept for the next asker, made from the state of generation gen. */
		size_t len = strlen(text);
		char *copy = malloc(len + 1);
		if (copy != NULL) {
			memcpy(copy, text, len + 1);
			pthread_mutex_lock(lock);
			free(ce->text);
			snprintf(ce->addr, sizeof(ce->addr), "%s", addr);
			ce->text = copy;
			ce->len = len;
			ce->gen = gen;
			ce->made = now;
			pthread_mutex_unlock(lock);
		}
		reply_data(rq, 200, "application/json", text, len);
		free(text);
	} else
		reply_error(rq, 500, "internal", "out of memory");
	json_decref(answer);
out:
	store_user_clear(&u);
	store_certs_free(v, n);
	free(next);
}

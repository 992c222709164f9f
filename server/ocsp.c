/*
 * smimed: the OCSP responder (RFC 6960) for the service's CAs (ocsp.h).
 *
 * Each request is parsed (d2i, bounded), each CertID matched against the
 * CAs answered for by the hashes of the CA's name and key under the
 * request's own hash algorithm (precomputed for SHA-1, SHA-224, SHA-256,
 * SHA-384 and SHA-512), the status of each serial asked of the lookup
 * function, and one BasicOCSPResponse signed through the signer.
 *
 * The cache keeps signed responses to requests with one CertID and no
 * nonce, keyed by the CertID's DER (its hash algorithm, the issuer's name
 * and key hashes and the serial), so that a hit gives the very bytes of
 * the first answer without signing.  It is split in shards, each a mutex,
 * a table of buckets and a ring of at most OCSP_CACHE_MAX / shards entries
 * that are reused oldest first.  The hash is seeded at random and a bucket
 * holds at most OCSP_CACHE_CHAIN_MAX live entries, so that crafted serials
 * cannot make a lookup walk long chains.  ocsp_cache_flush bumps a
 * generation: an entry of another generation is never returned.  The
 * generation is read before the lookup function is asked, so a response
 * built from a state older than a revocation cannot be kept as current.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "ocsp.h"

#define OCSP_NONCE_MAX        32        /* RFC 8954 2.1 */
#define OCSP_MAX_CAS          256       /* CAs answered for */
#define OCSP_CACHE_MAX        100000    /* responses kept, all shards */
#define OCSP_CACHE_SHARDS     16
#define OCSP_CACHE_BUCKETS    8192      /* per shard, a power of two */
#define OCSP_CACHE_CHAIN_MAX  8         /* live entries in one bucket */
#define OCSP_CACHE_KEY_MAX    256       /* octets of a CertID's DER */
#define OCSP_CACHE_RESP_MAX   16384     /* octets of a cached response */

/* RFC 6960 4.1.1: the hash algorithms a CertID may name that are matched. */
static const struct {
	int nid;
	const EVP_MD *(*md)(void);
} cid_hashes[] = {
	{ NID_sha1, EVP_sha1 },
	{ NID_sha224, EVP_sha224 },
	{ NID_sha256, EVP_sha256 },
	{ NID_sha384, EVP_sha384 },
	{ NID_sha512, EVP_sha512 },
};
#define N_HASHES (sizeof(cid_hashes) / sizeof(cid_hashes[0]))

struct responder_ca {
	char *ca_id;
	X509 *cert;
	X509 *responder_cert;
	char *responder_key_id;
	bool delegated;
	unsigned char name_hash[N_HASHES][EVP_MAX_MD_SIZE];
	unsigned char key_hash[N_HASHES][EVP_MAX_MD_SIZE];
	unsigned int hash_len[N_HASHES];
};

struct cache_entry {
	uint64_t hash;
	uint64_t gen;
	int64_t made, expires;     /* valid while made <= now < expires */
	unsigned char *key;
	size_t key_len;
	unsigned char *resp;
	size_t resp_len;
	uint32_t next;             /* index + 1 of the next in the bucket, 0 at the end */
	bool used;
};

struct cache_shard {
	pthread_mutex_t lock;
	uint32_t *buckets;         /* index + 1 of the first entry; NULL until first use */
	struct cache_entry *entries;
	uint32_t cap, next;        /* ring size and the slot taken next */
};

struct ocsp_responder {
	struct signer *sg;
	int64_t cache_ttl;         /* 0: nothing cached */
	int64_t validity;
	pthread_rwlock_t cas_lock;
	struct responder_ca *cas;
	size_t n_cas;
	_Atomic uint64_t gen;
	uint64_t seed;
	struct cache_shard shards[OCSP_CACHE_SHARDS];
};

/* --- the cache --- */

/* FNV-1a over a random seed, then a 64-bit finaliser (splitmix64). */
static uint64_t
key_hash(uint64_t seed, const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

static struct cache_shard *
shard_of(struct ocsp_responder *r, uint64_t h)
{
	return &r->shards[h >> 60 & (OCSP_CACHE_SHARDS - 1)];
}

static bool
entry_live(const struct cache_entry *e, uint64_t gen, int64_t now)
{
	return e->gen == gen && now >= e->made && now < e->expires;
}

/*
 * The cached response for key, copied into *resp_r (caller frees with
 * free()): 1 on a hit, 0 on a miss, -1 out of memory.
 */
static int
cache_get(struct ocsp_responder *r, const unsigned char *key, size_t key_len, uint64_t h,
    uint64_t gen, int64_t now, unsigned char **resp_r, size_t *len_r)
{
	struct cache_shard *sh = shard_of(r, h);
	struct cache_entry *e;
	uint32_t i;
	int rc = 0;

	pthread_mutex_lock(&sh->lock);
	if (sh->buckets == NULL)
		goto out;
	for (i = sh->buckets[h & (OCSP_CACHE_BUCKETS - 1)]; i != 0; i = e->next) {
		e = &sh->entries[i - 1];
		if (e->hash != h || e->key_len != key_len || memcmp(e->key, key, key_len) != 0)
			continue;
		if (entry_live(e, gen, now)) {
			if ((*resp_r = malloc(e->resp_len)) == NULL) {
				rc = -1;
				goto out;
			}
			memcpy(*resp_r, e->resp, e->resp_len);
			*len_r = e->resp_len;
			rc = 1;
		}
		break;
	}
out:
	pthread_mutex_unlock(&sh->lock);
	return rc;
}

/* Take entry slot (index) out of its bucket's chain; the shard is locked. */
static void
cache_unlink(struct cache_shard *sh, uint32_t slot)
{
	struct cache_entry *e = &sh->entries[slot];
	uint32_t *link = &sh->buckets[e->hash & (OCSP_CACHE_BUCKETS - 1)];

	while (*link != 0 && *link != slot + 1)
		link = &sh->entries[*link - 1].next;
	if (*link == slot + 1)
		*link = e->next;
	e->next = 0;
}

static int
shard_init(struct cache_shard *sh)
{
	sh->cap = OCSP_CACHE_MAX / OCSP_CACHE_SHARDS;
	sh->buckets = calloc(OCSP_CACHE_BUCKETS, sizeof(*sh->buckets));
	sh->entries = calloc(sh->cap, sizeof(*sh->entries));
	if (sh->buckets == NULL || sh->entries == NULL) {
		free(sh->buckets);
		free(sh->entries);
		sh->buckets = NULL;
		sh->entries = NULL;
		return -1;
	}
	return 0;
}

/* Keep resp for key (best effort: when memory or the bucket is short, nothing is kept). */
static void
cache_put(struct ocsp_responder *r, const unsigned char *key, size_t key_len, uint64_t h,
    uint64_t gen, int64_t now, const unsigned char *resp, size_t resp_len)
{
	struct cache_shard *sh = shard_of(r, h);
	struct cache_entry *e, *reuse = NULL;
	unsigned char *k, *v, *old_k = NULL, *old_v = NULL;
	uint32_t i, live = 0, slot;
	int64_t ttl;

	if (r->cache_ttl <= 0 || key_len > OCSP_CACHE_KEY_MAX || resp_len > OCSP_CACHE_RESP_MAX)
		return;
	/* A cached response is never served past its nextUpdate. */
	ttl = r->cache_ttl < r->validity ? r->cache_ttl : r->validity;
	k = malloc(key_len);
	v = malloc(resp_len);
	if (k == NULL || v == NULL) {
		free(k);
		free(v);
		return;
	}
	memcpy(k, key, key_len);
	memcpy(v, resp, resp_len);
	pthread_mutex_lock(&sh->lock);
	if (sh->buckets == NULL && shard_init(sh) != 0)
		goto out;
	for (i = sh->buckets[h & (OCSP_CACHE_BUCKETS - 1)]; i != 0; i = e->next) {
		e = &sh->entries[i - 1];
		if (e->hash == h && e->key_len == key_len && memcmp(e->key, key, key_len) == 0) {
			if (entry_live(e, gen, now))
				goto out;	/* another thread was first: keep its bytes */
			reuse = e;
			break;
		}
		if (entry_live(e, atomic_load(&r->gen), now))
			live++;
		else if (reuse == NULL)
			reuse = e;
	}
	if (reuse != NULL) {
		/* A stale entry of this bucket takes the new response in place. */
		e = reuse;
		old_k = e->key;
		old_v = e->resp;
	} else {
		if (live >= OCSP_CACHE_CHAIN_MAX)
			goto out;
		slot = sh->next;
		sh->next = (sh->next + 1) % sh->cap;
		e = &sh->entries[slot];
		if (e->used) {
			cache_unlink(sh, slot);
			old_k = e->key;
			old_v = e->resp;
		}
		e->next = sh->buckets[h & (OCSP_CACHE_BUCKETS - 1)];
		sh->buckets[h & (OCSP_CACHE_BUCKETS - 1)] = slot + 1;
		e->used = true;
	}
	e->hash = h;
	e->gen = gen;
	e->made = now;
	e->expires = now + ttl;
	e->key = k;
	e->key_len = key_len;
	e->resp = v;
	e->resp_len = resp_len;
	k = v = NULL;
out:
	pthread_mutex_unlock(&sh->lock);
	free(k);
	free(v);
	free(old_k);
	free(old_v);
}

void
ocsp_cache_flush(struct ocsp_responder *r)
{
	if (r != NULL)
		atomic_fetch_add(&r->gen, 1);
}

/* --- the responder --- */

static void
cas_free(struct responder_ca *cas, size_t n)
{
	size_t i;

	for (i = 0; cas != NULL && i < n; i++) {
		free(cas[i].ca_id);
		free(cas[i].responder_key_id);
		X509_free(cas[i].cert);
		X509_free(cas[i].responder_cert);
	}
	free(cas);
}

struct ocsp_responder *
ocsp_responder_new(struct signer *sg, int64_t cache_ttl, int64_t validity_seconds)
{
	struct ocsp_responder *r;
	pthread_rwlockattr_t attr;
	size_t i;
	int rc;

	if (sg == NULL || validity_seconds <= 0)
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->sg = sg;
	r->cache_ttl = cache_ttl > 0 ? cache_ttl : 0;
	r->validity = validity_seconds;
	atomic_init(&r->gen, 1);
	/* Writers first: a set_cas must not wait behind a stream of responses. */
	if (RAND_bytes((unsigned char *)&r->seed, sizeof(r->seed)) != 1 ||
	    pthread_rwlockattr_init(&attr) != 0) {
		free(r);
		return NULL;
	}
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rc = pthread_rwlock_init(&r->cas_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (rc != 0) {
		free(r);
		return NULL;
	}
	for (i = 0; i < OCSP_CACHE_SHARDS; i++)
		if (pthread_mutex_init(&r->shards[i].lock, NULL) != 0) {
			while (i-- > 0)
				pthread_mutex_destroy(&r->shards[i].lock);
			pthread_rwlock_destroy(&r->cas_lock);
			free(r);
			return NULL;
		}
	return r;
}

void
ocsp_responder_free(struct ocsp_responder *r)
{
	struct cache_shard *sh;
	size_t i;
	uint32_t j;

	if (r == NULL)
		return;
	for (i = 0; i < OCSP_CACHE_SHARDS; i++) {
		sh = &r->shards[i];
		for (j = 0; sh->entries != NULL && j < sh->cap; j++) {
			free(sh->entries[j].key);
			free(sh->entries[j].resp);
		}
		free(sh->entries);
		free(sh->buckets);
		pthread_mutex_destroy(&sh->lock);
	}
	cas_free(r->cas, r->n_cas);
	pthread_rwlock_destroy(&r->cas_lock);
	free(r);
}

/*
 * One CA answered for.  RFC 6960 4.2.2.2: a delegated responder's
 * certificate is "issued directly by the CA that is identified in the
 * request" and carries id-kp-OCSPSigning.
 */
static int
ca_entry(const struct ocsp_ca *in, struct responder_ca *out, struct smime_error *err)
{
	const EVP_MD *md;
	unsigned int len;
	size_t h;

	if (in->ca_id == NULL || in->cert == NULL || in->responder_cert == NULL ||
	    in->responder_key_id == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "OCSP: a CA without id, certificate "
		    "or responder");
	out->delegated = X509_cmp(in->cert, in->responder_cert) != 0;
	if (out->delegated && (X509_check_issued(in->cert, in->responder_cert) != X509_V_OK ||
	    !(X509_get_extension_flags(in->responder_cert) & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(in->responder_cert) & XKU_OCSP_SIGN)))
		return smime_error_set(err, SMIME_E_USAGE, "OCSP: CA %s: RFC 6960 4.2.2.2: a "
		    "delegated responder is issued by the CA and has id-kp-OCSPSigning",
		    in->ca_id);
	/* Cache the extensions now, before threads share the certificates. */
	X509_check_purpose(in->cert, -1, 0);
	X509_check_purpose(in->responder_cert, -1, 0);
	if ((out->ca_id = strdup(in->ca_id)) == NULL ||
	    (out->responder_key_id = strdup(in->responder_key_id)) == NULL ||
	    !X509_up_ref(in->cert))
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	out->cert = in->cert;
	if (!X509_up_ref(in->responder_cert))
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	out->responder_cert = in->responder_cert;
	/*
	 * RFC 6960 4.1.1: "issuerNameHash is the hash of the issuer's
	 * distinguished name ... calculated over the DER encoding of the
	 * issuer's name field in the certificate being checked";
	 * "issuerKeyHash is the hash of the issuer's public key ... calculated
	 * over the value (excluding tag and length) of the subject public key
	 * field in the issuer's certificate."
	 */
	for (h = 0; h < N_HASHES; h++) {
		md = cid_hashes[h].md();
		if (!X509_NAME_digest(X509_get_subject_name(in->cert), md, out->name_hash[h],
		    &out->hash_len[h]) ||
		    !X509_pubkey_digest(in->cert, md, out->key_hash[h], &len) ||
		    len != out->hash_len[h])
			return smime_error_ssl(err, SMIME_E_INTERNAL, "OCSP: CA %s: hashes",
			    in->ca_id);
	}
	return 0;
}

int
ocsp_responder_set_cas(struct ocsp_responder *r, const struct ocsp_ca *cas, size_t n,
    struct smime_error *err)
{
	struct responder_ca *v = NULL, *old;
	size_t i, old_n;
	int rc = 0;

	if (r == NULL || (n > 0 && cas == NULL))
		return smime_error_set(err, SMIME_E_USAGE, "OCSP: no responder or CAs");
	if (n > OCSP_MAX_CAS)
		return smime_error_set(err, SMIME_E_USAGE, "OCSP: at most %d CAs", OCSP_MAX_CAS);
	if (n > 0 && (v = calloc(n, sizeof(*v))) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	for (i = 0; i < n; i++)
		if ((rc = ca_entry(&cas[i], &v[i], err)) != 0) {
			cas_free(v, n);
			return rc;
		}
	pthread_rwlock_wrlock(&r->cas_lock);
	old = r->cas;
	old_n = r->n_cas;
	r->cas = v;
	r->n_cas = n;
	/* Responses signed for the old set (another responder, say) go too. */
	atomic_fetch_add(&r->gen, 1);
	pthread_rwlock_unlock(&r->cas_lock);
	cas_free(old, old_n);
	return 0;
}

/* The CA whose name and key hash cid names, or NULL; cas_lock is held. */
static const struct responder_ca *
ca_match(struct ocsp_responder *r, OCSP_CERTID *cid)
{
	ASN1_OCTET_STRING *name_hash = NULL, *key_hash = NULL;
	ASN1_OBJECT *md_obj = NULL;
	const struct responder_ca *ca;
	size_t i, h;
	int nid;

	if (!OCSP_id_get0_info(&name_hash, &md_obj, &key_hash, NULL, cid))
		return NULL;
	nid = OBJ_obj2nid(md_obj);
	for (h = 0; h < N_HASHES && cid_hashes[h].nid != nid; h++)
		;
	if (h == N_HASHES)
		return NULL;
	for (i = 0; i < r->n_cas; i++) {
		ca = &r->cas[i];
		if ((unsigned)ASN1_STRING_length(name_hash) == ca->hash_len[h] &&
		    (unsigned)ASN1_STRING_length(key_hash) == ca->hash_len[h] &&
		    memcmp(ASN1_STRING_get0_data(name_hash), ca->name_hash[h],
		    ca->hash_len[h]) == 0 &&
		    memcmp(ASN1_STRING_get0_data(key_hash), ca->key_hash[h],
		    ca->hash_len[h]) == 0)
			return ca;
	}
	return NULL;
}

/*
 * The request's nonce: 0 when there is none, 1 when there is an acceptable
 * one, -1 when the request must be refused.  RFC 8954 2.1: "A server MUST
 * reject any OCSP request that has a nonce in the Nonce extension with a
 * length of either 0 octets or more than 32 octets with the
 * malformedRequest OCSPResponseStatus"; Nonce ::= OCTET STRING(SIZE(1..32)).
 * Clients of RFC 2560 put the nonce's octets straight into extnValue; those
 * are measured as they are.
 */
static int
nonce_check(OCSP_REQUEST *req)
{
	X509_EXTENSION *ext;
	ASN1_OCTET_STRING *v, *inner;
	const unsigned char *p;
	int idx, len;

	if ((idx = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1)) < 0)
		return 0;
	/* One instance of an extension at most (RFC 5280 4.2, as RFC 6960 4.4 uses it). */
	if (OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, idx) >= 0)
		return -1;
	ext = OCSP_REQUEST_get_ext(req, idx);
	v = X509_EXTENSION_get_data(ext);
	len = ASN1_STRING_length(v);
	p = ASN1_STRING_get0_data(v);
	if ((inner = d2i_ASN1_OCTET_STRING(NULL, &p, len)) != NULL) {
		if (p == ASN1_STRING_get0_data(v) + len)
			len = ASN1_STRING_length(inner);
		ASN1_OCTET_STRING_free(inner);
	}
	ERR_clear_error();
	return len >= 1 && len <= OCSP_NONCE_MAX ? 1 : -1;
}

/*
 * RFC 6960 4.4: "Unrecognized extensions MUST be ignored (unless they
 * have the critical flag set and are not understood)": a critical one not
 * understood makes the request malformed.
 */
static bool
critical_unknown(OCSP_REQUEST *req)
{
	X509_EXTENSION *ext;
	OCSP_ONEREQ *one;
	int i, j, nid;

	for (i = 0; i < OCSP_REQUEST_get_ext_count(req); i++) {
		ext = OCSP_REQUEST_get_ext(req, i);
		nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
		if (X509_EXTENSION_get_critical(ext) && nid != NID_id_pkix_OCSP_Nonce &&
		    nid != NID_id_pkix_OCSP_acceptableResponses)
			return true;
	}
	for (i = 0; i < OCSP_request_onereq_count(req); i++) {
		one = OCSP_request_onereq_get0(req, i);
		for (j = 0; j < OCSP_ONEREQ_get_ext_count(one); j++)
			if (X509_EXTENSION_get_critical(OCSP_ONEREQ_get_ext(one, j)))
				return true;
	}
	return false;
}

static int
der_out(OCSP_RESPONSE *resp, unsigned char **out_r, size_t *len_r, struct smime_error *err)
{
	unsigned char *der, *p;
	int len;

	if ((len = i2d_OCSP_RESPONSE(resp, NULL)) <= 0)
		return smime_error_ssl(err, SMIME_E_INTERNAL, "OCSP: response encoding");
	if ((der = malloc((size_t)len)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	p = der;
	if (i2d_OCSP_RESPONSE(resp, &p) != len) {
		free(der);
		return smime_error_ssl(err, SMIME_E_INTERNAL, "OCSP: response encoding");
	}
	*out_r = der;
	*len_r = (size_t)len;
	return 0;
}

/* An OCSPResponse of status alone (RFC 6960 4.2.1: no responseBytes). */
static int
status_only(int status, unsigned char **out_r, size_t *len_r, struct smime_error *err)
{
	OCSP_RESPONSE *resp;
	int rc;

	if ((resp = OCSP_response_create(status, NULL)) == NULL)
		return smime_error_ssl(err, SMIME_E_INTERNAL, "OCSP: response");
	rc = der_out(resp, out_r, len_r, err);
	OCSP_RESPONSE_free(resp);
	return rc;
}

/* Add the SingleResponse for cid (of ca) to bs. */
static int
single(const struct responder_ca *ca, OCSP_CERTID *cid,
    OCSP_BASICRESP *bs, ASN1_TIME *this_update, ASN1_TIME *next_update,
    ocsp_lookup_fn lookup, void *arg, int64_t now, struct smime_error *err)
{
	struct ocsp_status st = { .known = 0, .revoked = 0, .revoked_at = 0, .reason = -1 };
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *rev_time = NULL;
	char hex[STORE_SERIAL_SIZE];
	int status, reason = OCSP_REVOKED_STATUS_NOSTATUS, rc = 0;

	OCSP_id_get0_info(NULL, NULL, NULL, &serial, cid);
	ca_serial_hex(serial, hex);
	/* A serial longer than any this service writes was never issued here. */
	if (hex[0] != '\0' && (rc = lookup(arg, ca->ca_id, hex, &st, err)) != 0)
		return rc;
	/* RFC 6960 2.2: good, revoked, or unknown ("the responder doesn't know
	 * about the certificate being requested"). */
	if (!st.known) {
		status = V_OCSP_CERTSTATUS_UNKNOWN;
	} else if (st.revoked) {
		status = V_OCSP_CERTSTATUS_REVOKED;
		/* S/MIME BR 7.3: "The CRLReason indicated SHALL contain a value
		 * permitted for CRLs" (7.2.2: never unspecified (0)); 7.3.2: no
		 * reasonCode singleExtension, revocationReason only. */
		if (st.reason > 0 && st.reason <= OCSP_REVOKED_STATUS_AACOMPROMISE &&
		    st.reason != 7 && st.reason != OCSP_REVOKED_STATUS_REMOVEFROMCRL)
			reason = st.reason;
		if ((rev_time = ASN1_TIME_set(NULL, (time_t)(st.revoked_at > 0 ?
		    st.revoked_at : now))) == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	} else {
		status = V_OCSP_CERTSTATUS_GOOD;
	}
	if (OCSP_basic_add1_status(bs, cid, status, reason, rev_time, this_update,
	    next_update) == NULL)
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "OCSP: SingleResponse");
	ASN1_TIME_free(rev_time);
	return rc;
}

int
ocsp_respond(struct ocsp_responder *r, const unsigned char *req, size_t len,
    ocsp_lookup_fn lookup, void *arg, int64_t now, unsigned char **resp_r, size_t *len_r,
    struct smime_error *err)
{
	OCSP_REQUEST *oreq = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_RESPONSE *resp = NULL;
	OCSP_CERTID *cid;
	const struct responder_ca *ca, *first = NULL;
	ASN1_TIME *this_update = NULL, *next_update = NULL;
	const unsigned char *p = req;
	unsigned char key[OCSP_CACHE_KEY_MAX], *kp;
	size_t key_len = 0;
	uint64_t gen, h = 0;
	bool cacheable = false;
	int i, n, nonce, klen, rc = 0;

	*resp_r = NULL;
	*len_r = 0;
	if (r == NULL || lookup == NULL || (req == NULL && len > 0))
		return smime_error_set(err, SMIME_E_USAGE, "OCSP: no responder or lookup");
	/* RFC 6960 4.2.1: malformedRequest, "Illegal confirmation request". */
	if (len == 0 || len > OCSP_MAX_REQUEST)
		return status_only(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, resp_r, len_r, err);
	if ((oreq = d2i_OCSP_REQUEST(NULL, &p, (long)len)) == NULL || p != req + len ||
	    (n = OCSP_request_onereq_count(oreq)) < 1 || n > OCSP_MAX_CERTIDS ||
	    (nonce = nonce_check(oreq)) < 0 || critical_unknown(oreq)) {
		ERR_clear_error();
		OCSP_REQUEST_free(oreq);
		return status_only(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, resp_r, len_r, err);
	}

	pthread_rwlock_rdlock(&r->cas_lock);
	/* Read before the lookups: see the comment at the top. */
	gen = atomic_load(&r->gen);
	if (n == 1 && nonce == 0 && r->cache_ttl > 0) {
		cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(oreq, 0));
		klen = i2d_OCSP_CERTID(cid, NULL);
		if (klen > 0 && klen <= OCSP_CACHE_KEY_MAX) {
			kp = key;
			key_len = (size_t)i2d_OCSP_CERTID(cid, &kp);
			h = key_hash(r->seed, key, key_len);
			cacheable = key_len == (size_t)klen;
		}
		if (cacheable) {
			switch (cache_get(r, key, key_len, h, gen, now, resp_r, len_r)) {
			case 1:
				goto out;
			case -1:
				rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
				goto out;
			}
		}
	}

	if ((bs = OCSP_BASICRESP_new()) == NULL ||
	    (this_update = ASN1_TIME_set(NULL, (time_t)now)) == NULL ||
	    (next_update = ASN1_TIME_set(NULL, (time_t)(now + r->validity))) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(oreq, i));
		/*
		 * RFC 6960 2.3: unauthorized "is returned in cases where the client
		 * is not authorized to make this query to this server or the server
		 * is not capable of responding authoritatively".  A CertID of a CA
		 * not served, or of a CA whose responses another key signs, is so.
		 */
		ca = ca_match(r, cid);
		if (ca == NULL || (first != NULL && (strcmp(ca->responder_key_id,
		    first->responder_key_id) != 0 ||
		    X509_cmp(ca->responder_cert, first->responder_cert) != 0))) {
			rc = status_only(OCSP_RESPONSE_STATUS_UNAUTHORIZED, resp_r, len_r, err);
			goto out;
		}
		if (first == NULL)
			first = ca;
		if ((rc = single(ca, cid, bs, this_update, next_update, lookup, arg, now,
		    err)) != 0)
			goto out;
	}
	/* RFC 6960 4.4.1: the nonce comes back in the responseExtensions. */
	if (nonce > 0 && OCSP_copy_nonce(bs, oreq) != 1) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "OCSP: nonce");
		goto out;
	}
	/* RFC 6960 4.2.2.2: a delegated responder's certificate goes with the
	 * response so that the client can check it was issued by the CA. */
	if (first->delegated && !OCSP_basic_add1_cert(bs, first->responder_cert)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "OCSP: responder certificate");
		goto out;
	}
	if ((rc = signer_sign_ocsp(r->sg, first->responder_key_id, bs, first->responder_cert,
	    err)) != 0)
		goto out;
	if ((resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "OCSP: response");
		goto out;
	}
	if ((rc = der_out(resp, resp_r, len_r, err)) != 0)
		goto out;
	if (cacheable)
		cache_put(r, key, key_len, h, gen, now, *resp_r, *len_r);
out:
	pthread_rwlock_unlock(&r->cas_lock);
	OCSP_REQUEST_free(oreq);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	ASN1_TIME_free(this_update);
	ASN1_TIME_free(next_update);
	return rc;
}

/*
 * smimed: SCEP enrollment (RFC 8894): the endpoint and its decisions.
 * scep.h says what is taken from whom and which failInfo answers what.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <smime/message.h>
#include <smime/scep.h>

#include "api.h"
#include "ca.h"
#include "directory.h"
#include "scep.h"
#include "signer.h"

/*
 * No default SCEP profile: what devices get (key sizes, subject, approval)
 * is a policy the administrator chooses.  A newcomer asking before that is
 * told how (smimed(8), SCEP).
 */
static const char scep_not_set_up[] = "SCEP is not set up: there is no SCEP profile yet. "
    "An administrator makes one with 'smime admin scep-profile create NAME --ca issuing' "
    "(then 'smime admin device challenge DEVICE --profile NAME' for each device); "
    "see smimed(8), SCEP";

#define SCEP_MAX_CAS 16            /* CAs SCEP profiles issue from, looked at per request */
#define SCEP_ISSUE_TRIES 3         /* fresh serials after a (vanishingly rare) collision */
#define SCEP_NONCE_DAYS 30         /* senderNonces are remembered this long */
#define SCEP_REASON_MAX 200        /* characters of a failInfoText */
#define DAY 86400

/* ---------------- the throttle ---------------- */

#define THROTTLE_SLOTS 4096
#define THROTTLE_PROBE 16
#define THROTTLE_KEY 96

struct throttle_slot {
	char key[THROTTLE_KEY];    /* "ip:ADDR" or "device:ID"; "" when free */
	int count;                 /* failures since first */
	int64_t first;             /* the first failure counted */
	int64_t until;             /* refused until then */
};

struct scep_throttle {
	pthread_mutex_t lock;
	struct throttle_slot slot[THROTTLE_SLOTS];
};

struct scep_throttle *
scep_throttle_new(void)
{
	struct scep_throttle *t = calloc(1, sizeof(*t));

	if (t != NULL && pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t);
		t = NULL;
	}
	return t;
}

void
scep_throttle_free(struct scep_throttle *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static uint32_t
key_hash(const char *s)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The slot of key (made when make), or NULL; the caller holds the lock.
 * A full neighbourhood gives up its oldest entry. */
static struct throttle_slot *
throttle_slot(struct scep_throttle *t, const char *key, bool make)
{
	uint32_t h = key_hash(key);
	struct throttle_slot *oldest = NULL, *s;

	for (int i = 0; i < THROTTLE_PROBE; i++) {
		s = &t->slot[(h + (uint32_t)i) % THROTTLE_SLOTS];
		if (strcmp(s->key, key) == 0)
			return s;
		if (oldest == NULL || s->key[0] == '\0' ||
		    (oldest->key[0] != '\0' && s->first < oldest->first))
			oldest = s;
	}
	if (!make)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->key, sizeof(oldest->key), "%s", key);
	return oldest;
}

static bool
throttle_blocked(struct service *svc, const char *key, int64_t now)
{
	struct throttle_slot *s;
	bool blocked = false;

	pthread_mutex_lock(&svc->scep_throttle->lock);
	if ((s = throttle_slot(svc->scep_throttle, key, false)) != NULL)
		blocked = s->until > now;
	pthread_mutex_unlock(&svc->scep_throttle->lock);
	return blocked;
}

/* Count a failure of key; the scep_max_failures-th within the cool-down
 * blocks it for scep_cooldown seconds. */
static void
throttle_fail(struct service *svc, const char *key, int64_t now)
{
	struct throttle_slot *s;

	pthread_mutex_lock(&svc->scep_throttle->lock);
	if ((s = throttle_slot(svc->scep_throttle, key, true)) != NULL) {
		if (s->count == 0 || now - s->first > svc->cfg.scep_cooldown) {
			s->count = 0;
			s->first = now;
		}
		if (++s->count >= svc->cfg.scep_max_failures) {
			s->until = now + svc->cfg.scep_cooldown;
			s->count = 0;
		}
	}
	pthread_mutex_unlock(&svc->scep_throttle->lock);
}

/* ---------------- RAs and challenges ---------------- */

static void
ra_key_id(const char *ca_id, char out[STORE_NAME_SIZE + 16])
{
	snprintf(out, STORE_NAME_SIZE + 16, "%s%s", SCEP_RA_KEY_PREFIX, ca_id);
}

int
scep_load(struct service *svc, struct smime_error *err)
{
	struct store_tx *tx = NULL;
	struct store_scep_ra *v = NULL;
	char id[STORE_NAME_SIZE + 16];
	size_t n = 0;
	int rc;

	if ((rc = svc->be->begin(svc->st, false, &tx, err)) != 0)
		return rc;
	rc = svc->be->scep_ra_list(tx, &v, &n, err);
	svc->be->rollback(tx);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		ra_key_id(v[i].ca_id, id);
		rc = signer_load(svc->signer, id, v[i].key_wrapped, v[i].key_wrapped_len, err);
	}
	store_scep_ras_free(v, n);
	return rc;
}

static bool
ca_key_is_rsa(const struct store_ca *ca)
{
	return ca->key_alg != NULL && strncmp(ca->key_alg, "rsa-", 4) == 0;
}

int
scep_ra_prepare(struct service *svc, const struct store_ca *ca, bool have_ra,
    struct store_scep_ra *ra_r, struct smime_error *err)
{
	char id[STORE_NAME_SIZE + 16];
	EVP_PKEY *pub = NULL;
	unsigned char *wrapped = NULL, *der = NULL;
	size_t wrapped_len = 0, der_len = 0;
	int rc;

	memset(ra_r, 0, sizeof(*ra_r));
	if (have_ra || ca_key_is_rsa(ca))
		return 0;
	ra_key_id(ca->id, id);
	if ((rc = signer_generate(svc->signer, id, svc->cfg.scep_ra_key_alg, &pub, &wrapped,
	    &wrapped_len, err)) != 0)
		return rc;
	if ((rc = ca_make_ra(svc->signer, ca, pub, svc->base_url, service_now(), &der, &der_len,
	    err)) != 0) {
		signer_forget(svc->signer, id);
		goto out;
	}
	snprintf(ra_r->ca_id, sizeof(ra_r->ca_id), "%s", ca->id);
	if ((ra_r->cert_der = malloc(der_len)) == NULL) {
		signer_forget(svc->signer, id);
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	memcpy(ra_r->cert_der, der, der_len);
	ra_r->cert_len = der_len;
	ra_r->key_wrapped = wrapped;
	ra_r->key_wrapped_len = wrapped_len;
	wrapped = NULL;
	ra_r->created = service_now();
out:
	EVP_PKEY_free(pub);
	OPENSSL_free(der);
	if (wrapped != NULL) {
		OPENSSL_cleanse(wrapped, wrapped_len);
		free(wrapped);
	}
	return rc;
}

void
scep_ra_discard(struct service *svc, const char *ca_id)
{
	char id[STORE_NAME_SIZE + 16];

	ra_key_id(ca_id, id);
	signer_forget(svc->signer, id);
}

int
scep_challenge_make(const char *user_id, const char *device_id, const char *profile,
    int minutes, int64_t now, struct store_scep_challenge *c_r,
    char text_r[SCEP_CHALLENGE_SIZE], struct smime_error *err)
{
	unsigned char id[SCEP_CHALLENGE_ID_HEX / 2], secret[SCEP_CHALLENGE_SECRET_HEX / 2];
	char secret_hex[SCEP_CHALLENGE_SECRET_HEX + 1];

	memset(c_r, 0, sizeof(*c_r));
	if (RAND_bytes(id, sizeof(id)) != 1 || RAND_bytes(secret, sizeof(secret)) != 1)
		return smime_error_ssl(err, SMIME_E_CRYPTO, "no random challenge");
	api_hex(id, sizeof(id), c_r->id);
	api_hex(secret, sizeof(secret), secret_hex);
	/* Only the secret's hash is kept: 128 random bits need no slow hash. */
	if (EVP_Digest(secret_hex, SCEP_CHALLENGE_SECRET_HEX, c_r->hash, NULL, EVP_sha256(),
	    NULL) != 1) {
		OPENSSL_cleanse(secret_hex, sizeof(secret_hex));
		return smime_error_ssl(err, SMIME_E_CRYPTO, "SHA-256");
	}
	snprintf(c_r->user_id, sizeof(c_r->user_id), "%s", user_id);
	snprintf(c_r->device_id, sizeof(c_r->device_id), "%s", device_id);
	snprintf(c_r->profile, sizeof(c_r->profile), "%s", profile);
	c_r->created = now;
	c_r->expires = now + (int64_t)minutes * 60;
	snprintf(text_r, SCEP_CHALLENGE_SIZE, "%.16s-%.32s", c_r->id, secret_hex);
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(secret_hex, sizeof(secret_hex));
	return 0;
}

/* ---------------- subject templates ---------------- */

struct subject_spec {
	bool cn, email_attr;
	int serial;                /* 0 none, 1 the device's id, 2 the user's id */
};

static int
subject_parse(const char *tmpl, struct subject_spec *s, struct smime_error *err)
{
	const char *p = tmpl, *end;
	char item[64];
	size_t n;

	memset(s, 0, sizeof(*s));
	if (tmpl == NULL || strlen(tmpl) > 200)
		return smime_error_set(err, SMIME_E_USAGE, "subject: a template of at most 200 "
		    "characters");
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		end = strchr(p, ',');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == 0 || n >= sizeof(item))
			return smime_error_set(err, SMIME_E_USAGE, "subject: an empty or long item");
		memcpy(item, p, n);
		item[n] = '\0';
		/* S/MIME BR 7.1.4.2.3: a mailbox-validated subject holds
		 * commonName (a mailbox address, 7.1.4.2.2 a), serialNumber and
		 * emailAddress only. */
		if (strcmp(item, "CN={email}") == 0 && !s->cn)
			s->cn = true;
		else if ((strcmp(item, "emailAddress={email}") == 0 ||
		    strcmp(item, "E={email}") == 0) && !s->email_attr)
			s->email_attr = true;
		else if (strcmp(item, "serialNumber={device}") == 0 && s->serial == 0)
			s->serial = 1;
		else if (strcmp(item, "serialNumber={user}") == 0 && s->serial == 0)
			s->serial = 2;
		else
			return smime_error_set(err, SMIME_E_USAGE, "subject: '%s' is not one of "
			    "CN={email}, emailAddress={email}, serialNumber={device}, "
			    "serialNumber={user} (S/MIME BR 7.1.4.2.3), or it is repeated", item);
		p += end != NULL ? (size_t)(end - p) + 1 : strlen(p);
	}
	return 0;
}

int
scep_subject_check(const char *tmpl, struct smime_error *err)
{
	struct subject_spec s;

	return subject_parse(tmpl, &s, err);
}

/* ---------------- issuing ---------------- */

int
scep_issue_for(struct service *svc, const struct store_scep_profile *p,
    const struct store_user *u, const struct store_device *d, const struct store_ca *ca,
    const unsigned char *csr, size_t csr_len, X509_REQ *csr_req, struct store_cert *rec_r,
    X509 **cert_r, struct smime_error *err)
{
	struct subject_spec spec;
	struct store_profile prof = { 0 };
	X509 *cert = NULL;
	int rc;

	memset(rec_r, 0, sizeof(*rec_r));
	if ((rc = subject_parse(p->subject, &spec, err)) != 0)
		return rc;
	/* A SCEP certificate signs: S/MIME BR strict, from the profile's CA. */
	snprintf(prof.name, sizeof(prof.name), "%s", p->name);
	snprintf(prof.ca_id, sizeof(prof.ca_id), "%s", p->ca_id);
	prof.purpose = PURPOSE_SIGNING;
	prof.validity_days = p->validity_days;
	prof.br_profile = (char *)"strict";
	struct ca_issue_req req = {
		.ca = ca, .profile = &prof, .user = u, .device = d,
		.csr = csr, .csr_len = csr_len, .csr_req = csr_req, .csr_verified = csr_req != NULL,
		.base_url = svc->base_url,
		.emails = p->san_all ? NULL : (const char *const *)u->emails,
		.n_emails = p->san_all ? 0 : 1,
		.no_cn = !spec.cn, .email_attr = spec.email_attr,
		.subject_serial = spec.serial == 1 ? d->id : spec.serial == 2 ? u->id : NULL,
		.non_repudiation = p->non_repudiation,
	};
	req.now = service_now();
	if (cert_r != NULL)
		*cert_r = NULL;
	if ((rc = ca_issue(svc->signer, &req, &cert, NULL, err)) == 0)
		rc = ca_cert_record(cert, &req, SOURCE_SCEP, rec_r, err);
	if (rc == 0 && cert_r != NULL) {
		*cert_r = cert;
		cert = NULL;
	}
	X509_free(cert);
	return rc;
}

/* ---------------- one request ---------------- */

struct scep_ca {
	struct store_ca ca;
	X509 *ca_cert;
	X509 *ra_cert;             /* the RA's, or the CA's own when it receives itself */
	char key_id[STORE_NAME_SIZE + 16];
};

struct scep_ctx {
	struct request *rq;
	struct service *svc;
	struct scep_ca sc;
	bool have_ca;
	struct smime_scep_msg m;
	char actor[96];            /* "scep:ADDRESS" */
	char ip_key[THROTTLE_KEY];
	int64_t now;
};

static void
scep_ca_clear(struct scep_ca *sc)
{
	store_ca_clear(&sc->ca);
	X509_free(sc->ca_cert);
	X509_free(sc->ra_cert);
	memset(sc, 0, sizeof(*sc));
}

/* CA ca_id with the certificate and key that SCEP uses for it. */
static int
scep_ca_load(struct service *svc, struct store_tx *tx, const char *ca_id, struct scep_ca *sc,
    struct smime_error *err)
{
	struct store_scep_ra ra = { 0 };
	int rc;

	memset(sc, 0, sizeof(*sc));
	if ((rc = svc->be->ca_get(tx, ca_id, &sc->ca, err)) != 0)
		return rc;
	if ((sc->ca_cert = ca_cert_cached(sc->ca.cert_der, sc->ca.cert_len)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "CA %s: its certificate does not "
		    "parse", ca_id);
		goto fail;
	}
	rc = svc->be->scep_ra_get(tx, ca_id, &ra, err);
	if (rc == 0) {
		if ((sc->ra_cert = ca_cert_cached(ra.cert_der, ra.cert_len)) == NULL) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "the RA of CA %s does not "
			    "parse", ca_id);
			goto fail;
		}
		ra_key_id(ca_id, sc->key_id);
	} else if (rc == SMIME_E_NOTFOUND && ca_key_is_rsa(&sc->ca)) {
		if (!X509_up_ref(sc->ca_cert)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "certificate reference");
			goto fail;
		}
		sc->ra_cert = sc->ca_cert;
		snprintf(sc->key_id, sizeof(sc->key_id), "%s", ca_id);
		rc = 0;
	} else {
		if (rc == SMIME_E_NOTFOUND)
			rc = smime_error_set(err, SMIME_E_NOTFOUND, "CA %s has no SCEP RA", ca_id);
		goto fail;
	}
	store_scep_ra_clear(&ra);
	return 0;
fail:
	store_scep_ra_clear(&ra);
	scep_ca_clear(sc);
	return rc;
}

/* The CAs that SCEP profiles issue from (at most SCEP_MAX_CAS). */
static int
scep_ca_ids(struct service *svc, struct store_tx *tx, char ids[SCEP_MAX_CAS][STORE_NAME_SIZE],
    size_t *n_r, struct smime_error *err)
{
	struct store_scep_profile *v = NULL;
	size_t n = 0, k = 0, j;
	int rc;

	*n_r = 0;
	if ((rc = svc->be->scep_profile_list(tx, &v, &n, err)) != 0)
		return rc;
	for (size_t i = 0; i < n && k < SCEP_MAX_CAS; i++) {
		for (j = 0; j < k && strcmp(ids[j], v[i].ca_id) != 0; j++)
			;
		if (j == k)
			snprintf(ids[k++], STORE_NAME_SIZE, "%s", v[i].ca_id);
	}
	store_scep_profiles_free(v, n);
	*n_r = k;
	return 0;
}

/*
 * The CA message= names for GetCACaps and GetCACert: a SCEP profile's, a
 * CA that SCEP profiles use, else the only such CA.
 */
static int
resolve_ca(struct service *svc, struct store_tx *tx, const char *ident, struct scep_ca *sc,
    struct smime_error *err)
{
	struct store_scep_profile p = { 0 };
	char ids[SCEP_MAX_CAS][STORE_NAME_SIZE];
	size_t n;
	int rc;

	if ((rc = scep_ca_ids(svc, tx, ids, &n, err)) != 0)
		return rc;
	if (n == 0)
		return smime_error_set(err, SMIME_E_NOTFOUND, "%s", scep_not_set_up);
	if (ident != NULL && *ident != '\0' && strlen(ident) < STORE_NAME_SIZE) {
		if (svc->be->scep_profile_get(tx, ident, &p, err) == 0) {
			rc = scep_ca_load(svc, tx, p.ca_id, sc, err);
			store_scep_profile_clear(&p);
			return rc;
		}
		for (size_t i = 0; i < n; i++)
			if (strcmp(ids[i], ident) == 0)
				return scep_ca_load(svc, tx, ids[i], sc, err);
	}
	/* RFC 8894 3.5.1: the identifier is the server's to interpret; one
	 * it does not know means the only CA there is. */
	if (n > 1)
		return smime_error_set(err, SMIME_E_NOTFOUND, "SCEP: name a SCEP profile or CA "
		    "in message= (%zu CAs enroll with SCEP)", n);
	return scep_ca_load(svc, tx, ids[0], sc, err);
}

/* The CA a pkiMessage's envelope was made for. */
static int
ca_for_envelope(struct service *svc, struct store_tx *tx, const struct smime_scep_msg *m,
    struct scep_ca *sc, struct smime_error *err)
{
	char ids[SCEP_MAX_CAS][STORE_NAME_SIZE];
	size_t n;
	int rc;

	if ((rc = scep_ca_ids(svc, tx, ids, &n, err)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (scep_ca_load(svc, tx, ids[i], sc, err) != 0)
			continue;
		if (smime_scep_envelope_for(m, sc->ra_cert))
			return 0;
		scep_ca_clear(sc);
	}
	/* None: answer (a FAILURE) as the first. */
	if (n > 0 && scep_ca_load(svc, tx, ids[0], sc, err) == 0)
		return SMIME_E_NOTFOUND;
	return smime_error_set(err, SMIME_E_NOTFOUND, "%s", scep_not_set_up);
}

static const EVP_MD *
reply_digest(int nid)
{
	switch (nid) {
	case NID_sha1: return EVP_sha1();
	case NID_sha384: return EVP_sha384();
	case NID_sha512: return EVP_sha512();
	default: return EVP_sha256();
	}
}

static const EVP_CIPHER *
reply_cipher(int nid)
{
	switch (nid) {
	case NID_aes_192_cbc: return EVP_aes_192_cbc();
	case NID_aes_256_cbc: return EVP_aes_256_cbc();
	case NID_des_ede3_cbc: return EVP_des_ede3_cbc();
	default: return EVP_aes_128_cbc();
	}
}

/* Answer the request with a CertRep. */
static void
answer(struct scep_ctx *x, enum smime_scep_status status, enum smime_scep_fail fail,
    const char *text, STACK_OF(X509) *issued, X509_CRL *crl)
{
	STACK_OF(X509) *extra = sk_X509_new_null();
	struct smime_scep_out o = {
		.type = SMIME_SCEP_CERTREP,
		.transaction_id = x->m.transaction_id,
		.recipient_nonce = x->m.sender_nonce,
		.recipient_nonce_len = x->m.sender_nonce_len,
		.status = status,
		.fail_info = fail,
		.fail_text = text,
		.signer = x->sc.ra_cert,
		.md = reply_digest(x->m.digest_nid),
		.extra_certs = extra,
		.recipient = x->m.signer,
		.cipher = reply_cipher(x->m.cipher_nid),
		.issued = issued,
		.crl = crl,
	};
	struct smime_error err;
	unsigned char *der = NULL;
	size_t len = 0;

	/* The CA's certificate goes with the RA's: clients verify the reply up
	 * to it. */
	if (extra == NULL || (x->sc.ca_cert != x->sc.ra_cert && (!X509_up_ref(x->sc.ca_cert) ||
	    !sk_X509_push(extra, x->sc.ca_cert)))) {
		sk_X509_pop_free(extra, X509_free);
		reply_error(x->rq, 500, "internal", "out of memory");
		return;
	}
	if (signer_scep_write(x->svc->signer, x->sc.key_id, &o, &der, &len, &err) != 0)
		reply_smime(x->rq, &err);
	else
		reply_data(x->rq, 200, "application/x-pki-message", der, len);
	OPENSSL_free(der);
	sk_X509_pop_free(extra, X509_free);
}

struct audit_op {
	struct service *svc;
	const char *actor;
	const char *action;
	const char *object;
	json_t *detail;
};

static int
audit_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct audit_op *a = arg;

	return audit_row(a->svc, tx, a->actor, a->action, a->object, json_incref(a->detail), err);
}

/* Refuse: audited (scep.refuse), logged, answered FAILURE. */
static void
refuse(struct scep_ctx *x, enum smime_scep_fail fail, const char *fmt, ...)
    SMIME_PRINTF(3, 4);

static void
refuse(struct scep_ctx *x, enum smime_scep_fail fail, const char *fmt, ...)
{
	char why[SCEP_REASON_MAX];
	struct smime_error err;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	text_scrub(why);
	struct audit_op a = {
		.svc = x->svc, .actor = x->actor, .action = "scep.refuse",
		.object = x->m.transaction_id,
		.detail = json_pack("{s:s,s:s,s:s,s:s,s:s}", "transaction", x->m.transaction_id,
		    "type", smime_scep_type_name(x->m.type), "failInfo", smime_scep_fail_name(fail),
		    "reason", why, "client", x->rq->client),
	};
	if (rq_commit(x->rq, audit_fn, &a, &err) != 0) {
		/* Fail closed: a refusal that cannot be audited is not answered. */
		json_decref(a.detail);
		reply_smime(x->rq, &err);
		return;
	}
	json_decref(a.detail);
	log_event("info", "scep.refuse", "transaction", x->m.transaction_id, "failInfo",
	    smime_scep_fail_name(fail), "reason", why, "client", x->rq->client, NULL);
	answer(x, SMIME_SCEP_FAILURE, fail, why, NULL, NULL);
}

/* True when the request's key is the key of the stored request csr. */
static bool
same_key(X509_REQ *req, const unsigned char *csr, size_t len)
{
	const unsigned char *p = csr;
	X509_REQ *old = d2i_X509_REQ(NULL, &p, (long)len);
	bool same = old != NULL && X509_REQ_get0_pubkey(req) != NULL &&
	    X509_REQ_get0_pubkey(old) != NULL &&
	    EVP_PKEY_eq(X509_REQ_get0_pubkey(req), X509_REQ_get0_pubkey(old)) == 1;

	X509_REQ_free(old);
	ERR_clear_error();
	return same;
}

/* The profile's keys: RSA of at least rsa_min_bits, EC of a listed curve. */
static int
key_allowed(const struct store_scep_profile *p, EVP_PKEY *pub, char *why, size_t size)
{
	char curve[64] = "";
	const char *name = NULL, *at;
	size_t len;

	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_RSA:
		if (p->rsa_min_bits == 0) {
			snprintf(why, size, "profile %s takes no RSA keys", p->name);
			return -1;
		}
		if (EVP_PKEY_get_bits(pub) < p->rsa_min_bits) {
			snprintf(why, size, "an RSA key of %d bits; profile %s takes %d bits or more",
			    EVP_PKEY_get_bits(pub), p->name, p->rsa_min_bits);
			return -1;
		}
		return 0;
	case EVP_PKEY_EC:
		(void)EVP_PKEY_get_utf8_string_param(pub, "group", curve, sizeof(curve), NULL);
		if (strcmp(curve, "prime256v1") == 0)
			name = "P-256";
		else if (strcmp(curve, "secp384r1") == 0)
			name = "P-384";
		else if (strcmp(curve, "secp521r1") == 0)
			name = "P-521";
		len = name != NULL ? strlen(name) : 0;
		for (at = p->ec_curves; name != NULL && at != NULL && (at = strstr(at, name)) != NULL;
		    at += len)
			if ((at == p->ec_curves || at[-1] == ',') && (at[len] == '\0' || at[len] == ','))
				return 0;
		snprintf(why, size, "an EC key on %s; profile %s takes %s", curve[0] ? curve : "an "
		    "unknown curve", p->name, p->ec_curves && *p->ec_curves ? p->ec_curves : "none");
		return -1;
	}
	snprintf(why, size, "a %s key; profile %s takes RSA%s", OBJ_nid2sn(EVP_PKEY_get_base_id(pub)),
	    p->name, p->ec_curves && *p->ec_curves ? " and EC" : "");
	return -1;
}

/* An address the request asks for that is not one of the user's, or NULL
 * (*found_r, at most size characters). */
static bool
foreign_email(X509_REQ *req, const struct store_user *u, char *found_r, size_t size)
{
	STACK_OF(X509_EXTENSION) *exts;
	GENERAL_NAMES *gens = NULL;
	X509_NAME *name = X509_REQ_get_subject_name(req);
	bool foreign = false;
	int i;

#define CHECK_ONE(p, n) do { \
		bool mine_ = false; \
		for (size_t k_ = 0; k_ < u->n_emails; k_++) \
			if (strlen(u->emails[k_]) == (size_t)(n) && \
			    strncasecmp(u->emails[k_], (const char *)(p), (size_t)(n)) == 0) \
				mine_ = true; \
		if (!mine_) { \
			snprintf(found_r, size, "%.*s", (int)((n) > 254 ? 254 : (n)), \
			    (const char *)(p)); \
			text_scrub(found_r); \
			foreign = true; \
		} \
	} while (0)

	/* The subject's emailAddress, and a commonName that is an address. */
	for (i = -1; !foreign && (i = X509_NAME_get_index_by_NID(name, NID_pkcs9_emailAddress,
	    i)) >= 0;) {
		ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
		CHECK_ONE(ASN1_STRING_get0_data(s), ASN1_STRING_length(s));
	}
	for (i = -1; !foreign && (i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0;) {
		ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
		if (memchr(ASN1_STRING_get0_data(s), '@', (size_t)ASN1_STRING_length(s)) != NULL)
			CHECK_ONE(ASN1_STRING_get0_data(s), ASN1_STRING_length(s));
	}
	/* The rfc822Names of a requested subjectAltName (RFC 2985 5.4.2). */
	if (!foreign && (exts = X509_REQ_get_extensions(req)) != NULL) {
		gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
		for (i = 0; !foreign && gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
			GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
			if (gn->type == GEN_EMAIL)
				CHECK_ONE(ASN1_STRING_get0_data(gn->d.rfc822Name),
				    ASN1_STRING_length(gn->d.rfc822Name));
		}
		GENERAL_NAMES_free(gens);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
#undef CHECK_ONE
	ERR_clear_error();
	return foreign;
}

/* A device id the request's subject names in serialNumber, or "". */
static void
requested_device(X509_REQ *req, char out[STORE_ID_SIZE])
{
	X509_NAME *name = X509_REQ_get_subject_name(req);
	int i = X509_NAME_get_index_by_NID(name, NID_serialNumber, -1);
	ASN1_STRING *s;

	out[0] = '\0';
	if (i < 0 || (s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i))) == NULL ||
	    ASN1_STRING_length(s) <= 0 || ASN1_STRING_length(s) >= STORE_ID_SIZE)
		return;
	snprintf(out, STORE_ID_SIZE, "%.*s", ASN1_STRING_length(s),
	    (const char *)ASN1_STRING_get0_data(s));
}

/* True when csr carries the challenge of an unused challenge record. */
static bool
fresh_challenge(const struct store_backend *be, struct store_tx *tx, X509_REQ *csr)
{
	struct store_scep_challenge ch = { 0 };
	struct smime_error err;
	char text[SMIME_SCEP_MAX_CHALLENGE + 1];
	bool fresh = false;

	if (smime_scep_challenge(csr, text, sizeof(text), &err) == 0 &&
	    strlen(text) > SCEP_CHALLENGE_ID_HEX && text[SCEP_CHALLENGE_ID_HEX] == '-') {
		text[SCEP_CHALLENGE_ID_HEX] = '\0';
		fresh = be->challenge_get(tx, text, &ch, &err) == 0 && ch.used == 0;
	}
	store_scep_challenge_clear(&ch);
	OPENSSL_cleanse(text, sizeof(text));
	return fresh;
}

/* Record the request's senderNonce: SMIME_E_EXISTS for a replay. */
static int
nonce_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct scep_ctx *x = arg;

	return x->svc->be->scep_nonce_seen(tx, x->m.sender_nonce, x->m.sender_nonce_len, x->now,
	    x->now - SCEP_NONCE_DAYS * DAY, err);
}

/* What an enrollment commits. */
struct enroll_op {
	struct scep_ctx *x;
	const char *challenge_id;      /* NULL for a renewal */
	struct store_scep_tx t;
	struct store_cert rec;         /* when issued now */
	const char *renews;            /* the serial of the certificate renewed, or NULL */
	size_t superseded;
	int failed;                    /* which step refused: 1 nonce, 2 challenge, 3 transaction */
};

static int
enroll_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct enroll_op *e = arg;
	struct scep_ctx *x = e->x;
	const struct store_backend *be = x->svc->be;
	int rc;

	if ((rc = nonce_fn(tx, x, err)) != 0) {
		e->failed = rc == SMIME_E_EXISTS ? 1 : 0;
		return rc;
	}
	if (e->challenge_id != NULL && (rc = be->challenge_use(tx, e->challenge_id, x->now,
	    x->m.transaction_id, err)) != 0) {
		e->failed = rc == SMIME_E_EXISTS ? 2 : 0;
		return rc;
	}
	if ((rc = be->scep_tx_insert(tx, &e->t, err)) != 0) {
		e->failed = rc == SMIME_E_EXISTS ? 3 : 0;
		return rc;
	}
	if (e->t.status == SCEP_TX_PENDING)
		return audit_row(x->svc, tx, x->actor, "scep.pending", x->m.transaction_id,
		    json_pack("{s:s,s:s,s:s,s:s,s:b,s:s}", "transaction", x->m.transaction_id,
		    "user", e->t.user_id, "device", e->t.device_id, "profile", e->t.profile,
		    "renewal", e->t.renewal, "client", x->rq->client), err);
	if ((rc = be->cert_insert(tx, &e->rec, err)) != 0 ||
	    (rc = be->cert_supersede(tx, e->rec.user_id, e->rec.device_id, e->rec.purpose,
	    e->rec.serial, &e->superseded, err)) != 0)
		return rc;
	return audit_row(x->svc, tx, x->actor, e->t.renewal ? "scep.renew" : "scep.enroll",
	    e->rec.serial, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s?,s:I,s:s}", "transaction",
	    x->m.transaction_id, "serial", e->rec.serial, "user", e->rec.user_id, "device",
	    e->rec.device_id, "profile", e->rec.profile, "ca", e->rec.ca_id, "renews", e->renews,
	    "superseded", (json_int_t)e->superseded, "client", x->rq->client), err);
}

/* Answer SUCCESS with the stored certificate of sha256. */
static void
answer_cert(struct scep_ctx *x, struct store_tx *tx, const char *sha256)
{
	struct store_cert c = { 0 };
	struct smime_error err;
	STACK_OF(X509) *issued = sk_X509_new_null();
	X509 *cert = NULL;

	if (issued == NULL || x->svc->be->cert_get(tx, sha256, &c, &err) != 0 ||
	    (cert = ca_cert_parse(c.der, c.der_len)) == NULL || !sk_X509_push(issued, cert)) {
		X509_free(cert);
		reply_error(x->rq, 500, "internal", "the certificate of transaction %s cannot be "
		    "read", x->m.transaction_id);
	} else
		answer(x, SMIME_SCEP_SUCCESS, 0, NULL, issued, NULL);
	sk_X509_pop_free(issued, X509_free);
	store_cert_clear(&c);
}

/* A request for a transactionID known already: a client polling by
 * resending its PKCSReq (certmonger does), or a replay. */
static void
known_transaction(struct scep_ctx *x, struct store_tx *tx, struct store_scep_tx *t)
{
	struct smime_error err;
	int rc;

	if (!same_key(x->m.csr, t->csr, t->csr_len)) {
		x->svc->be->rollback(tx);
		refuse(x, SMIME_SCEP_BAD_REQUEST, "transactionID %s is in use by another key",
		    x->m.transaction_id);
		return;
	}
	x->svc->be->rollback(tx);
	/* The same message again is a replay.  Only a nonce is written: no
	 * answer cache is outdated by it, hence the committer without
	 * rq_commit's state generation. */
	if ((rc = committer_run(x->svc->commit, nonce_fn, x, &err)) == SMIME_E_EXISTS) {
		refuse(x, SMIME_SCEP_BAD_REQUEST, "a replayed message: its senderNonce was seen "
		    "before");
		return;
	}
	if (rc != 0) {
		reply_smime(x->rq, &err);
		return;
	}
	switch (t->status) {
	case SCEP_TX_PENDING:
		answer(x, SMIME_SCEP_PENDING, 0, NULL, NULL, NULL);
		return;
	case SCEP_TX_ISSUED:
		if ((tx = rq_read(x->rq)) == NULL)
			return;
		answer_cert(x, tx, t->cert);
		x->svc->be->rollback(tx);
		return;
	default:
		refuse(x, SMIME_SCEP_BAD_REQUEST, "transaction %s was refused: %s",
		    x->m.transaction_id, t->error != NULL ? t->error : "");
	}
}

int
scep_parties_get(const struct store_backend *be, struct store_tx *tx, const char *profile,
    const char *user_id, const char *device_id, struct store_scep_profile *p_r,
    struct store_user *u_r, struct store_device *d_r, struct smime_error *err)
{
	int rc = be->scep_profile_get(tx, profile, p_r, err);

	if (rc == 0)
		rc = be->user_get(tx, user_id, u_r, err);
	if (rc == 0)
		rc = be->device_get(tx, device_id, d_r, err);
	return rc;
}

static void
enroll(struct scep_ctx *x)
{
	struct service *svc = x->svc;
	const struct store_backend *be = svc->be;
	struct store_tx *tx;
	struct store_scep_tx known = { 0 };
	struct store_cert old = { 0 };
	struct store_scep_challenge ch = { 0 };
	struct store_scep_profile p = { 0 };
	struct store_user u = { 0 };
	struct store_device d = { 0 };
	struct enroll_op e = { .x = x };
	struct smime_error err;
	char signer_sha[65], text[SMIME_SCEP_MAX_CHALLENGE + 1], why[SCEP_REASON_MAX];
	char dev_key[THROTTLE_KEY], asked[STORE_ID_SIZE], foreign[256];
	unsigned char hash[32];
	X509 *issued_cert = NULL;
	const char *secret;
	bool renewal = false;
	int rc;

	if ((tx = rq_read(x->rq)) == NULL)
		return;
	rc = be->scep_tx_get(tx, x->m.transaction_id, &known, &err);
	if (rc == 0) {
		known_transaction(x, tx, &known);
		goto out_free;
	}
	if (rc != SMIME_E_NOTFOUND) {
		be->rollback(tx);
		reply_smime(x->rq, &err);
		goto out_free;
	}

	/* Who asks: a certificate of ours (a renewal), or a challenge.  A
	 * PKCSReq signed with one of ours that carries an unused challenge is
	 * a new enrollment (a client re-keying); one that carries the used
	 * challenge again (certmonger keeps it) is a renewal. */
	api_hex(x->m.signer_sha256, sizeof(x->m.signer_sha256), signer_sha);
	if (be->cert_get(tx, signer_sha, &old, &err) == 0 && old.ca_id[0] != '\0' &&
	    (x->m.type == SMIME_SCEP_RENEWALREQ || !fresh_challenge(be, tx, x->m.csr))) {
		renewal = true;
		/* RFC 8894 3.3.1.2: "signed with the existing certificate" that
		 * is still valid; SCEP's own, of a device. */
		if (strcmp(old.ca_id, x->sc.ca.id) != 0 || old.source != SOURCE_SCEP ||
		    old.device_id[0] == '\0') {
			be->rollback(tx);
			refuse(x, SMIME_SCEP_BAD_CERT_ID, "a renewal must be signed with a device "
			    "certificate that SCEP issued from CA %s", x->sc.ca.id);
			goto out_free;
		}
		if (old.status != STATUS_ACTIVE || old.not_after <= x->now ||
		    old.not_before > x->now) {
			be->rollback(tx);
			refuse(x, SMIME_SCEP_BAD_CERT_ID, "the signing certificate %s is %s",
			    old.serial, old.status == STATUS_REVOKED ? "revoked" :
			    old.status == STATUS_SUPERSEDED ? "superseded" : "expired");
			goto out_free;
		}
		if (scep_parties_get(be, tx, old.profile, old.user_id, old.device_id, &p, &u, &d,
		    &err) != 0) {
			be->rollback(tx);
			refuse(x, SMIME_SCEP_BAD_CERT_ID, "the certificate %s belongs to a profile, "
			    "user or device that is gone", old.serial);
			goto out_free;
		}
		if (old.not_after - x->now > (int64_t)p.renewal_days * DAY) {
			be->rollback(tx);
			refuse(x, SMIME_SCEP_BAD_REQUEST, "renewal opens %d days before notAfter; "
			    "certificate %s has %lld days left", p.renewal_days, old.serial,
			    (long long)((old.not_after - x->now) / DAY));
			goto out_free;
		}
	} else if (x->m.type == SMIME_SCEP_RENEWALREQ) {
		be->rollback(tx);
		refuse(x, SMIME_SCEP_BAD_CERT_ID, "a RenewalReq must be signed with a certificate "
		    "of ours");
		goto out_free;
	} else {
		store_cert_clear(&old);
		/* RFC 8894 2.2: the challengePassword authorises the request. */
		rc = smime_scep_challenge(x->m.csr, text, sizeof(text), &err);
		if (rc != 0) {
			be->rollback(tx);
			refuse(x, SMIME_SCEP_BAD_REQUEST, "%s", rc == SMIME_E_NOTFOUND ?
			    "the request has no challenge password" : err.message);
			goto out_free;
		}
		secret = strchr(text, '-');
		if (secret == NULL || (size_t)(secret - text) != SCEP_CHALLENGE_ID_HEX ||
		    strlen(secret + 1) != SCEP_CHALLENGE_SECRET_HEX) {
			be->rollback(tx);
			throttle_fail(svc, x->ip_key, x->now);
			refuse(x, SMIME_SCEP_BAD_REQUEST, "the challenge password is not accepted");
			goto out_free;
		}
		text[SCEP_CHALLENGE_ID_HEX] = '\0';
		secret++;
		rc = be->challenge_get(tx, text, &ch, &err);
		if (rc == 0) {
			snprintf(dev_key, sizeof(dev_key), "device:%s", ch.device_id);
			if (throttle_blocked(svc, dev_key, x->now)) {
				be->rollback(tx);
				refuse(x, SMIME_SCEP_BAD_REQUEST, "too many wrong challenges for this "
				    "device: try again later");
				goto out_free;
			}
		}
		if (rc == 0 && EVP_Digest(secret, SCEP_CHALLENGE_SECRET_HEX, hash, NULL,
		    EVP_sha256(), NULL) != 1)
			rc = SMIME_E_CRYPTO;
		/* Compared in constant time: what a guess learns is yes or no. */
		if (rc != 0 || CRYPTO_memcmp(hash, ch.hash, sizeof(hash)) != 0) {
			be->rollback(tx);
			throttle_fail(svc, x->ip_key, x->now);
			if (rc == 0)
				throttle_fail(svc, dev_key, x->now);
			refuse(x, SMIME_SCEP_BAD_REQUEST, "the challenge password is not accepted");
			goto out_free;
		}
		if (ch.used != 0) {
			be->rollback(tx);
			throttle_fail(svc, x->ip_key, x->now);
			throttle_fail(svc, dev_key, x->now);
			refuse(x, SMIME_SCEP_BAD_REQUEST, "the challenge password was used already");
			goto out_free;
		}
		if (ch.expires <= x->now) {
			be->rollback(tx);
			refuse(x, SMIME_SCEP_BAD_REQUEST, "the challenge password has expired");
			goto out_free;
		}
		if (scep_parties_get(be, tx, ch.profile, ch.user_id, ch.device_id, &p, &u, &d,
		    &err) != 0) {
			be->rollback(tx);
			refuse(x, SMIME_SCEP_BAD_REQUEST, "the challenge's profile, user or device "
			    "is gone");
			goto out_free;
		}
		if (strcmp(p.ca_id, x->sc.ca.id) != 0) {
			be->rollback(tx);
			refuse(x, SMIME_SCEP_BAD_REQUEST, "the challenge is for CA %s, the request "
			    "was encrypted for CA %s", p.ca_id, x->sc.ca.id);
			goto out_free;
		}
		requested_device(x->m.csr, asked);
		if (asked[0] != '\0' && strcmp(asked, d.id) != 0) {
			struct store_device other = { 0 };
			bool exists = be->device_get(tx, asked, &other, &err) == 0;

			store_device_clear(&other);
			if (exists) {
				be->rollback(tx);
				refuse(x, SMIME_SCEP_BAD_REQUEST, "the challenge was issued for "
				    "another device than the one the request names");
				goto out_free;
			}
		}
		e.challenge_id = ch.id;
	}
	be->rollback(tx);

	/* The profile's rules, whatever the request asks. */
	if (x->m.digest_nid == NID_sha1 && !p.allow_sha1) {
		refuse(x, SMIME_SCEP_BAD_ALG, "SHA-1 signatures are not taken by profile %s "
		    "(SHA-256 or SHA-512)", p.name);
		goto out_free;
	}
	if (X509_REQ_get0_pubkey(x->m.csr) == NULL ||
	    key_allowed(&p, X509_REQ_get0_pubkey(x->m.csr), why, sizeof(why)) != 0) {
		refuse(x, SMIME_SCEP_BAD_ALG, "%s", X509_REQ_get0_pubkey(x->m.csr) == NULL ?
		    "the request's key does not decode" : why);
		goto out_free;
	}
	if (smime_scep_csr_verify(&x->m, &err) != 0) {
		refuse(x, SMIME_SCEP_BAD_REQUEST, "RFC 2986: the request's signature does not "
		    "verify with its key");
		goto out_free;
	}
	if (foreign_email(x->m.csr, &u, foreign, sizeof(foreign))) {
		refuse(x, SMIME_SCEP_BAD_REQUEST, "the request asks for %s, which is not an "
		    "address of the user", foreign);
		goto out_free;
	}

	/* The transaction, and its certificate unless an admin decides. */
	snprintf(e.t.id, sizeof(e.t.id), "%s", x->m.transaction_id);
	snprintf(e.t.ca_id, sizeof(e.t.ca_id), "%s", x->sc.ca.id);
	snprintf(e.t.profile, sizeof(e.t.profile), "%s", p.name);
	snprintf(e.t.user_id, sizeof(e.t.user_id), "%s", u.id);
	snprintf(e.t.device_id, sizeof(e.t.device_id), "%s", d.id);
	e.t.renewal = renewal;
	if (renewal)
		snprintf(e.t.renews, sizeof(e.t.renews), "%s", old.sha256);
	e.t.csr = x->m.csr_der;
	e.t.csr_len = x->m.csr_len;
	e.t.error = (char *)"";
	e.t.created = e.t.updated = x->now;
	e.renews = renewal ? old.serial : NULL;
	e.t.status = p.approval && !renewal ? SCEP_TX_PENDING : SCEP_TX_ISSUED;
	for (int attempt = 0; ; attempt++) {
		if (e.t.status == SCEP_TX_ISSUED) {
			store_cert_clear(&e.rec);
			X509_free(issued_cert);
			issued_cert = NULL;
			if ((rc = scep_issue_for(svc, &p, &u, &d, &x->sc.ca, NULL, 0, x->m.csr,
			    &e.rec, &issued_cert, &err)) != 0) {
				refuse(x, rc == SMIME_E_POLICY ? SMIME_SCEP_BAD_ALG :
				    SMIME_SCEP_BAD_REQUEST, "%s", err.message);
				goto out_free;
			}
			snprintf(e.t.cert, sizeof(e.t.cert), "%s", e.rec.sha256);
		}
		e.failed = 0;
		rc = rq_commit(x->rq, enroll_fn, &e, &err);
		if (rc == SMIME_E_EXISTS && e.failed == 0 && attempt + 1 < SCEP_ISSUE_TRIES)
			continue;	/* a serial taken: another one */
		break;
	}
	if (rc != 0) {
		if (e.failed == 1)
			refuse(x, SMIME_SCEP_BAD_REQUEST, "a replayed message: its senderNonce was "
			    "seen before");
		else if (e.failed == 2)
			refuse(x, SMIME_SCEP_BAD_REQUEST, "the challenge password was used already");
		else if (e.failed == 3)
			refuse(x, SMIME_SCEP_BAD_REQUEST, "transactionID %s is in use",
			    x->m.transaction_id);
		else
			reply_smime(x->rq, &err);
		goto out_free;
	}
	if (e.t.status == SCEP_TX_PENDING) {
		log_event("info", "scep.pending", "transaction", x->m.transaction_id, "device",
		    d.id, "client", x->rq->client, NULL);
		answer(x, SMIME_SCEP_PENDING, 0, NULL, NULL, NULL);
		goto out_free;
	}
	atomic_fetch_add(&svc->metrics.issued, 1);
	log_event("info", renewal ? "scep.renew" : "scep.enroll", "transaction",
	    x->m.transaction_id, "serial", e.rec.serial, "device", d.id, "client",
	    x->rq->client, NULL);
	{
		STACK_OF(X509) *issued = sk_X509_new_null();

		if (issued == NULL || issued_cert == NULL || !sk_X509_push(issued, issued_cert))
			reply_error(x->rq, 500, "internal", "certificate %s was issued but cannot "
			    "be sent: poll for it", e.rec.serial);
		else {
			issued_cert = NULL;
			answer(x, SMIME_SCEP_SUCCESS, 0, NULL, issued, NULL);
		}
		sk_X509_pop_free(issued, X509_free);
	}
out_free:
	X509_free(issued_cert);
	store_cert_clear(&e.rec);
	store_scep_tx_clear(&known);
	store_cert_clear(&old);
	store_scep_challenge_clear(&ch);
	store_scep_profile_clear(&p);
	store_user_clear(&u);
	store_device_clear(&d);
	OPENSSL_cleanse(text, sizeof(text));
}

/* RFC 8894 3.3.3: CertPoll, for a PENDING transaction. */
static void
cert_poll(struct scep_ctx *x)
{
	struct store_scep_tx t = { 0 };
	struct smime_error err;
	struct store_tx *tx;
	const unsigned char *p;
	X509_REQ *req = NULL;
	int rc;

	if ((tx = rq_read(x->rq)) == NULL)
		return;
	rc = x->svc->be->scep_tx_get(tx, x->m.transaction_id, &t, &err);
	if (rc == SMIME_E_NOTFOUND) {
		x->svc->be->rollback(tx);
		refuse(x, SMIME_SCEP_BAD_CERT_ID, "no transaction %s", x->m.transaction_id);
		goto out;
	}
	if (rc != 0) {
		x->svc->be->rollback(tx);
		reply_smime(x->rq, &err);
		goto out;
	}
	/* Only the requester polls: the poll is signed with the request's key. */
	p = t.csr;
	req = d2i_X509_REQ(NULL, &p, (long)t.csr_len);
	if (req == NULL || X509_get0_pubkey(x->m.signer) == NULL ||
	    EVP_PKEY_eq(X509_get0_pubkey(x->m.signer), X509_REQ_get0_pubkey(req)) != 1) {
		x->svc->be->rollback(tx);
		ERR_clear_error();
		refuse(x, SMIME_SCEP_BAD_CERT_ID, "transaction %s was not made with this key",
		    x->m.transaction_id);
		goto out;
	}
	if (t.status == SCEP_TX_PENDING)
		answer(x, SMIME_SCEP_PENDING, 0, NULL, NULL, NULL);
	else if (t.status == SCEP_TX_ISSUED)
		answer_cert(x, tx, t.cert);
	x->svc->be->rollback(tx);
	if (t.status == SCEP_TX_REJECTED)
		refuse(x, SMIME_SCEP_BAD_REQUEST, "transaction %s was refused: %s",
		    x->m.transaction_id, t.error);
out:
	X509_REQ_free(req);
	store_scep_tx_clear(&t);
}

/* RFC 8894 3.3.4, 3.3.5: GetCert and GetCRL by issuer and serial. */
static void
get_cert_crl(struct scep_ctx *x)
{
	struct smime_error err;
	struct store_tx *tx;
	char serial[STORE_SERIAL_SIZE];
	bool found = false;

	if (X509_NAME_cmp(x->m.issuer, X509_get_subject_name(x->sc.ca_cert)) != 0) {
		refuse(x, SMIME_SCEP_BAD_CERT_ID, "the issuer is not CA %s", x->sc.ca.id);
		return;
	}
	ca_serial_hex(x->m.serial, serial);
	if ((tx = rq_read(x->rq)) == NULL)
		return;
	{
		struct store_cert c = { 0 };

		if (x->svc->be->cert_get(tx, serial, &c, &err) == 0 &&
		    strcmp(c.ca_id, x->sc.ca.id) == 0) {
			found = true;
			if (x->m.type == SMIME_SCEP_GETCERT)
				answer_cert(x, tx, c.sha256);
		}
		store_cert_clear(&c);
	}
	if (found && x->m.type == SMIME_SCEP_GETCRL) {
		struct store_ca ca = { 0 };
		X509_CRL *crl = NULL;
		const unsigned char *p;

		if (x->svc->be->ca_get(tx, x->sc.ca.id, &ca, &err) == 0 && ca.crl_der != NULL) {
			p = ca.crl_der;
			crl = d2i_X509_CRL(NULL, &p, (long)ca.crl_len);
		}
		x->svc->be->rollback(tx);
		if (crl == NULL)
			refuse(x, SMIME_SCEP_BAD_CERT_ID, "CA %s has no CRL yet", x->sc.ca.id);
		else
			answer(x, SMIME_SCEP_SUCCESS, 0, NULL, NULL, crl);
		X509_CRL_free(crl);
		store_ca_clear(&ca);
		return;
	}
	x->svc->be->rollback(tx);
	if (!found)
		refuse(x, SMIME_SCEP_BAD_CERT_ID, "CA %s issued no certificate %s", x->sc.ca.id,
		    serial);
}

static void
pki_operation(struct request *rq, const unsigned char *der, size_t len)
{
	struct scep_ctx x = { .rq = rq, .svc = rq->svc, .now = service_now() };
	struct smime_error err, rerr;
	struct store_tx *tx;
	int rc, found;

	snprintf(x.actor, sizeof(x.actor), "scep:%s", rq->client);
	snprintf(x.ip_key, sizeof(x.ip_key), "ip:%s", rq->client);
	smime_scep_msg_clear(&x.m);
	rc = smime_scep_read_ex(der, len, SMIME_SCEP_ASSEMBLE, &x.m, &err);
	if (rc != 0 && !smime_scep_can_reply(&x.m)) {
		log_event("info", "scep.garbage", "client", rq->client, "message", err.message, NULL);
		reply_error(rq, 400, "bad-request", "not a SCEP pkiMessage: %s", err.message);
		goto out;
	}
	if ((tx = rq_read(rq)) == NULL)
		goto out;
	found = ca_for_envelope(rq->svc, tx, &x.m, &x.sc, &rerr);
	rq->svc->be->rollback(tx);
	if (found != 0 && x.sc.ra_cert == NULL) {
		reply_smime(rq, &rerr);
		goto out;
	}
	x.have_ca = true;
	if (throttle_blocked(rq->svc, x.ip_key, x.now)) {
		log_event("info", "scep.throttled", "client", rq->client, NULL);
		answer(&x, SMIME_SCEP_FAILURE, SMIME_SCEP_BAD_REQUEST, "too many failed attempts "
		    "from this address: try again later", NULL, NULL);
		goto out;
	}
	if (rc == SMIME_E_BADSIG) {
		refuse(&x, SMIME_SCEP_BAD_MESSAGE_CHECK, "%s", err.message);
		goto out;
	}
	if (rc == SMIME_E_POLICY) {
		refuse(&x, SMIME_SCEP_BAD_ALG, "%s", err.message);
		goto out;
	}
	if (rc != 0) {
		refuse(&x, SMIME_SCEP_BAD_REQUEST, "%s", err.message);
		goto out;
	}
	if (x.m.type == SMIME_SCEP_CERTREP) {
		refuse(&x, SMIME_SCEP_BAD_REQUEST, "a CertRep is an answer, not a request");
		goto out;
	}
	if (found != 0) {
		refuse(&x, SMIME_SCEP_BAD_MESSAGE_CHECK, "the envelope is for none of this "
		    "service's SCEP certificates (fetch them again with GetCACert)");
		goto out;
	}
	/* RFC 8894 3.2.1: signingTime far from ours: badTime. */
	if (x.m.has_signing_time && (x.m.signing_time > x.now + rq->svc->cfg.scep_clock_skew ||
	    x.m.signing_time < x.now - rq->svc->cfg.scep_clock_skew)) {
		refuse(&x, SMIME_SCEP_BAD_TIME, "signingTime is %lld seconds from the service's "
		    "clock (at most %ld)", (long long)(x.m.signing_time - x.now),
		    rq->svc->cfg.scep_clock_skew);
		goto out;
	}
	if ((rc = signer_scep_open(rq->svc->signer, x.sc.key_id, x.sc.ra_cert, &x.m, &err)) != 0) {
		refuse(&x, rc == SMIME_E_POLICY ? SMIME_SCEP_BAD_ALG : rc == SMIME_E_INPUT ?
		    SMIME_SCEP_BAD_REQUEST : SMIME_SCEP_BAD_MESSAGE_CHECK, "%s", err.message);
		goto out;
	}
	switch (x.m.type) {
	case SMIME_SCEP_PKCSREQ:
	case SMIME_SCEP_RENEWALREQ:
		enroll(&x);
		break;
	case SMIME_SCEP_CERTPOLL:
		cert_poll(&x);
		break;
	case SMIME_SCEP_GETCERT:
	case SMIME_SCEP_GETCRL:
		get_cert_crl(&x);
		break;
	}
out:
	smime_scep_msg_clear(&x.m);
	scep_ca_clear(&x.sc);
}

/* ---------------- GetCACaps, GetCACert ---------------- */

static void
get_ca_caps(struct request *rq)
{
	/* RFC 8894 3.5.2; the first cipher is the one clients such as
	 * certmonger pick, hence AES first. */
	static const char caps[] = "AES\nPOSTPKIOperation\nRenewal\nSHA-256\nSHA-512\n"
	    "SCEPStandard\n";
	struct scep_ca sc;
	struct smime_error err;
	struct store_tx *tx = rq_read(rq);
	int rc;

	if (tx == NULL)
		return;
	rc = resolve_ca(rq->svc, tx, rq_query(rq, "message"), &sc, &err);
	rq->svc->be->rollback(tx);
	if (rc != 0) {
		reply_smime(rq, &err);
		return;
	}
	reply_data(rq, 200, "text/plain", caps, sizeof(caps) - 1);
	scep_ca_clear(&sc);
}

static void
get_ca_cert(struct request *rq)
{
	struct scep_ca sc;
	struct smime_error err;
	STACK_OF(X509) *certs = sk_X509_new_null();
	struct store_tx *tx = rq_read(rq);
	char parent[STORE_NAME_SIZE];
	unsigned char *der = NULL;
	size_t len = 0;
	int rc;

	if (tx == NULL || certs == NULL) {
		if (tx != NULL)
			rq->svc->be->rollback(tx);
		if (certs == NULL)
			reply_error(rq, 500, "internal", "out of memory");
		sk_X509_free(certs);
		return;
	}
	if ((rc = resolve_ca(rq->svc, tx, rq_query(rq, "message"), &sc, &err)) != 0) {
		rq->svc->be->rollback(tx);
		reply_smime(rq, &err);
		sk_X509_free(certs);
		return;
	}
	/* RFC 8894 4.2.1.2: the RA's certificate and the CA's, and the CA's
	 * own issuers so that a client finds the root. */
	if (sc.ra_cert != sc.ca_cert && X509_up_ref(sc.ra_cert) && !sk_X509_push(certs, sc.ra_cert))
		X509_free(sc.ra_cert);
	if (X509_up_ref(sc.ca_cert) && !sk_X509_push(certs, sc.ca_cert))
		X509_free(sc.ca_cert);
	snprintf(parent, sizeof(parent), "%s", sc.ca.parent_id);
	for (int depth = 0; parent[0] != '\0' && depth < 8; depth++) {
		struct store_ca up = { 0 };
		X509 *x;

		if (rq->svc->be->ca_get(tx, parent, &up, &err) != 0)
			break;
		if ((x = ca_cert_parse(up.cert_der, up.cert_len)) != NULL && !sk_X509_push(certs, x))
			X509_free(x);
		snprintf(parent, sizeof(parent), "%s", strcmp(up.parent_id, parent) == 0 ? "" :
		    up.parent_id);
		store_ca_clear(&up);
	}
	rq->svc->be->rollback(tx);
	if (sk_X509_num(certs) == 1) {
		/* RFC 8894 4.2.1.1: the CA alone, DER. */
		reply_public(rq, "application/x-x509-ca-cert", sc.ca.cert_der, sc.ca.cert_len, 300);
	} else if (smime_certs_only_der(certs, &der, &len, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_public(rq, "application/x-x509-ca-ra-cert", der, len, 300);
	OPENSSL_free(der);
	sk_X509_pop_free(certs, X509_free);
	scep_ca_clear(&sc);
}

/* ---------------- the endpoint ---------------- */

void
h_scep(struct request *rq)
{
	const char *op = rq_query(rq, "operation");
	unsigned char *der = NULL;
	size_t len = 0;
	struct smime_error err;

	if (op == NULL) {
		reply_error(rq, 400, "bad-request", "SCEP: operation= is missing (GetCACaps, "
		    "GetCACert or PKIOperation)");
		return;
	}
	if (strcmp(op, "GetCACaps") == 0 && strcmp(rq->method, "GET") == 0)
		get_ca_caps(rq);
	else if (strcmp(op, "GetCACert") == 0 && strcmp(rq->method, "GET") == 0)
		get_ca_cert(rq);
	else if (strcmp(op, "PKIOperation") == 0 && strcmp(rq->method, "POST") == 0)
		pki_operation(rq, rq->body, rq->body_len);
	else if (strcmp(op, "PKIOperation") == 0) {
		/* RFC 8894 4.1: GET with message= the base64 of the DER.  A '+'
		 * that was not escaped arrives as a space. */
		const char *msg = rq_query(rq, "message");
		char *fixed;

		if (msg == NULL || *msg == '\0') {
			reply_error(rq, 400, "bad-request", "SCEP: PKIOperation without message=");
			return;
		}
		if ((fixed = strdup(msg)) == NULL) {
			reply_error(rq, 500, "internal", "out of memory");
			return;
		}
		for (char *c = fixed; *c != '\0'; c++)
			if (*c == ' ')
				*c = '+';
		if (api_base64(fixed, &der, &len, SMIME_SCEP_MAX_MESSAGE, &err) != 0)
			reply_error(rq, 400, "bad-request", "SCEP: message= is not base64: %s",
			    err.message);
		else
			pki_operation(rq, der, len);
		free(fixed);
		free(der);
	} else
		reply_error(rq, 400, "bad-request", "SCEP: operation %.40s is not supported here "
		    "(GetCACaps, GetCACert, PKIOperation)", op);
}

/*
 * smimed: the service's life: first start (CA, profiles, first admin
 * token), loading the CA keys into the signer, CRLs, and ids.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "api.h"
#include "archive.h"
#include "ca.h"
#include "durable.h"
#include "keyfile.h"
#include "ocsp.h"
#include "scep.h"
#include "signer.h"
#include "trust.h"

int64_t
service_now(void)
{
	return (int64_t)time(NULL);
}

void
service_new_id(char out[STORE_ID_SIZE])
{
	/* RFC 9562 UUID version 7: 48 bits of Unix milliseconds, then random. */
	unsigned char b[16];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	if (RAND_bytes(b + 6, 10) != 1)
		abort();  /* no randomness: nothing safe can be done */
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
	snprintf(out, STORE_ID_SIZE, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8],
	    b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}


struct bootstrap {
	struct service *svc;
	struct store_ca root, issuing;
	struct store_profile profiles[3];
	struct store_token token;
};

static int
bootstrap_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct bootstrap *b = arg;
	const struct store_backend *be = b->svc->be;
	int rc;

	if ((rc = be->ca_insert(tx, &b->root, err)) != 0 ||
	    (rc = audit_row(b->svc, tx, "system", "ca.create", b->root.id,
	    json_pack("{s:s,s:s}", "how", "first start", "key_alg", b->root.key_alg), err)) != 0 ||
	    (rc = be->ca_insert(tx, &b->issuing, err)) != 0 ||
	    (rc = audit_row(b->svc, tx, "system", "ca.create", b->issuing.id,
	    json_pack("{s:s,s:s}", "how", "first start", "key_alg", b->issuing.key_alg), err)) != 0)
		return rc;
	for (size_t i = 0; i < 3; i++)
		if ((rc = be->profile_put(tx, &b->profiles[i], err)) != 0 ||
		    (rc = audit_row(b->svc, tx, "system", "profile.create", b->profiles[i].name,
		    NULL, err)) != 0)
			return rc;
	if ((rc = be->token_insert(tx, &b->token, err)) != 0)
		return rc;
	if ((rc = audit_row(b->svc, tx, "system", "token.create", b->token.id,
	    json_pack("{s:s}", "name", b->token.name), err)) != 0)
		return rc;
	return be->meta_set(tx, "initialised", "1", err);
}

/* True when url's host is a loopback address or name (or no address at all). */
static bool
url_loopback(const char *url)
{
	const char *h = strstr(url, "://");
	char host[256];
	size_t n;

	h = h != NULL ? h + 3 : url;
	if (*h == '[') {
		n = strcspn(h + 1, "]");
		snprintf(host, sizeof(host), "%.*s", (int)n, h + 1);
	} else {
		n = strcspn(h, ":/");
		snprintf(host, sizeof(host), "%.*s", (int)n, h);
	}
	return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
	    strcasecmp(host, "localhost") == 0 || strcmp(host, "0.0.0.0") == 0 ||
	    strcmp(host, "::") == 0 || strcasestr(host, ".localhost") != NULL;
}

static int
bootstrap(struct service *svc, struct smime_error *err)
{
	struct bootstrap b = { .svc = svc };
	char cn[128], path[PATH_MAX], text[TOKEN_TEXT_SIZE + 1];
	int64_t now = service_now();
	bool made = true;
	int rc;

	log_event("info", "ca.bootstrap", "key_alg", svc->cfg.ca_key_alg, NULL);
	/* The URLs go into the CAs for their lifetime: say it now, not when
	 * clients elsewhere fail to fetch a CRL. */
	if (url_loopback(svc->base_url)) {
		log_event("warn", "ca.url", "url", svc->base_url, "message", "the CRL and AIA URLs "
		    "of the new CAs name a loopback address, which no other machine reaches: set "
		    "public_url in smimed.conf to the name clients reach this service by, with a "
		    "fresh data folder, before relying on these CAs", NULL);
	}
	snprintf(cn, sizeof(cn), "%s S/MIME Root CA", svc->cfg.ca_name);
	if ((rc = ca_create(svc->signer, svc->base_url, "root", svc->cfg.ca_key_alg, cn,
	    svc->cfg.ca_name, svc->cfg.ca_country, (int)svc->cfg.root_validity_days, NULL, false,
	    now, &b.root, err)) != 0)
		goto out;
	snprintf(cn, sizeof(cn), "%s S/MIME Issuing CA", svc->cfg.ca_name);
	if ((rc = ca_create(svc->signer, svc->base_url, "issuing", svc->cfg.ca_key_alg, cn,
	    svc->cfg.ca_name, svc->cfg.ca_country, (int)svc->cfg.issuing_validity_days, &b.root,
	    true, now, &b.issuing, err)) != 0)
		goto out;
	static const struct {
		const char *name;
		enum cert_purpose purpose;
		const char *key_alg;
		bool generate;
	} defaults[3] = {
		/* Signing keys are made on the device (a CSR); encryption keys may be
		 * made here, RSA because every mail client decrypts RSA. */
		{ "signing", PURPOSE_SIGNING, "ec-p256", false },
		{ "encryption", PURPOSE_ENCRYPTION, "rsa-3072", true },
		{ "dual", PURPOSE_DUAL, "rsa-3072", true },
	};
	for (size_t i = 0; i < 3; i++) {
		struct store_profile *p = &b.profiles[i];
		snprintf(p->name, sizeof(p->name), "%s", defaults[i].name);
		snprintf(p->ca_id, sizeof(p->ca_id), "issuing");
		p->purpose = defaults[i].purpose;
		p->validity_days = 365;
		p->br_profile = strdup("strict");
		p->key_alg = strdup(defaults[i].key_alg);
		p->allow_generate = defaults[i].generate;
		p->created = p->updated = now;
		if (p->br_profile == NULL || p->key_alg == NULL) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
	}
	if ((rc = token_make("initial", &b.token, text, err)) == 0)
		snprintf(b.token.created_by, sizeof(b.token.created_by), "system");
	if (rc != 0)
		goto out;
	/* The token file first: a committed token nobody can read would lock
	 * the administrators out. */
	snprintf(path, sizeof(path), "%s/admin.token", svc->cfg.data);
	size_t len = strlen(text);
	text[len] = '\n';
	text[len + 1] = '\0';
	rc = durable_write(path, text, strlen(text), err);
	OPENSSL_cleanse(text, sizeof(text));
	if (rc != 0)
		goto out;
	if ((rc = committer_run(svc->commit, bootstrap_fn, &b, err)) != 0) {
		unlink(path);
		goto out;
	}
	made = false;
	log_event("info", "ca.created", "root", b.root.id, "issuing", b.issuing.id, "token",
	    path, NULL);
out:
	/* Keys made for CAs that were not stored are forgotten. */
	if (made && b.root.cert_der != NULL)
		signer_forget(svc->signer, "root");
	if (made && b.issuing.cert_der != NULL)
		signer_forget(svc->signer, "issuing");
	store_ca_clear(&b.root);
	store_ca_clear(&b.issuing);
	for (size_t i = 0; i < 3; i++)
		store_profile_clear(&b.profiles[i]);
	store_token_clear(&b.token);
	return rc;
}

static void archive_check_reloaded(struct service *svc);

int
service_reload(struct service *svc, struct smime_error *err)
{
	struct store_tx *tx = NULL;
	struct store_ca *cas = NULL;
	struct ocsp_ca *set = NULL;
	X509 **certs = NULL;
	size_t n = 0, k = 0;
	int rc;

	if ((rc = svc->be->begin(svc->st, false, &tx, err)) != 0)
		return rc;
	rc = svc->be->ca_list(tx, &cas, &n, err);
	svc->be->rollback(tx);
	if (rc != 0)
		return rc;
	set = calloc(n + 1, sizeof(*set));
	certs = calloc(n + 1, sizeof(*certs));
	if (set == NULL || certs == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (cas[i].key_wrapped == NULL)
			continue;
		if ((rc = signer_load(svc->signer, cas[i].id, cas[i].key_wrapped,
		    cas[i].key_wrapped_len, err)) != 0)
			goto out;
		const unsigned char *p = cas[i].cert_der;
		if ((certs[k] = d2i_X509(NULL, &p, (long)cas[i].cert_len)) == NULL) {
			rc = smime_error_ssl(err, SMIME_E_INPUT, "CA '%s': its certificate in the store "
			    "does not parse", cas[i].id);
			goto out;
		}
		set[k].ca_id = cas[i].id;
		set[k].cert = certs[k];
		set[k].responder_cert = certs[k];
		set[k].responder_key_id = cas[i].id;
		k++;
	}
	rc = ocsp_responder_set_cas(svc->ocsp, set, k, err);
	/* The SCEP RAs' keys, beside their CAs'. */
	if (rc == 0)
		rc = scep_load(svc, err);
	ocsp_cache_flush(svc->ocsp);
	/* The store may have been replaced: nothing cached from it stays. */
	atomic_fetch_add(&svc->state_gen, 1);
	trust_forget(svc);
	archive_check_reloaded(svc);
out:
	for (size_t i = 0; certs != NULL && i < k; i++)
		X509_free(certs[i]);
	free(certs);
	free(set);
	store_cas_free(cas, n);
	return rc;
}

struct crl_op {
	struct service *svc;
	const char *ca_id;
	int64_t number, when;
	unsigned char *der;
	size_t len;
};

static int
crl_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct crl_op *co = arg;
	struct store_ca ca = { 0 };
	int rc = co->svc->be->ca_get(tx, co->ca_id, &ca, err);

	/* CRL numbers only grow (RFC 5280 5.2.3). */
	if (rc == 0 && ca.crl_number >= co->number)
		rc = smime_error_set(err, SMIME_E_EXISTS, "CRL %lld of '%s' is not newer than %lld",
		    (long long)co->number, co->ca_id, (long long)ca.crl_number);
	if (rc == 0)
		rc = co->svc->be->ca_set_crl(tx, co->ca_id, co->number, co->der, co->len, co->when,
		    err);
	store_ca_clear(&ca);
	return rc;
}

int
service_crl_update(struct service *svc, const char *ca_id, struct smime_error *err)
{
	struct store_tx *tx = NULL;
	struct store_ca ca = { 0 };
	struct store_revoked *r = NULL;
	size_t n = 0;
	struct crl_op co = { .svc = svc, .ca_id = ca_id };
	int rc;

	pthread_mutex_lock(&svc->crl_lock);
	if ((rc = svc->be->begin(svc->st, false, &tx, err)) != 0)
		goto out;
	rc = svc->be->ca_get(tx, ca_id, &ca, err);
	if (rc == 0)
		rc = svc->be->cert_revoked(tx, ca_id, &r, &n, err);
	svc->be->rollback(tx);
	if (rc != 0)
		goto out;
	if (ca.key_wrapped == NULL) {
		rc = smime_error_set(err, SMIME_E_POLICY, "CA '%s' has no key here: its CRL comes "
		    "from elsewhere", ca_id);
		goto out;
	}
	co.number = ca.crl_number + 1;
	co.when = service_now();
	if ((rc = ca_make_crl(svc->signer, &ca, r, n, co.number, co.when, svc->cfg.crl_validity,
	    &co.der, &co.len, err)) != 0)
		goto out;
	if ((rc = committer_run(svc->commit, crl_fn, &co, err)) != 0)
		goto out;
	char num[24], count[24];
	snprintf(num, sizeof(num), "%lld", (long long)co.number);
	snprintf(count, sizeof(count), "%zu", n);
	log_event("info", "crl.update", "ca", ca_id, "number", num, "revoked", count, NULL);
out:
	pthread_mutex_unlock(&svc->crl_lock);
	OPENSSL_free(co.der);
	free(r);
	store_ca_clear(&ca);
	return rc;
}

void
service_crl_refresh(struct service *svc)
{
	struct store_tx *tx = NULL;
	struct store_ca *cas = NULL;
	size_t n = 0;
	struct smime_error err;
	int64_t now = service_now();

	if (svc->be->begin(svc->st, false, &tx, &err) != 0)
		return;
	int rc = svc->be->ca_list(tx, &cas, &n, &err);
	svc->be->rollback(tx);
	if (rc != 0) {
		log_event("error", "crl.refresh", "message", err.message, NULL);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (cas[i].key_wrapped == NULL)
			continue;
		if (cas[i].crl_der != NULL && now - cas[i].crl_updated < svc->cfg.crl_refresh)
			continue;
		if (service_crl_update(svc, cas[i].id, &err) != 0)
			log_event("error", "crl.update", "ca", cas[i].id, "message", err.message, NULL);
	}
	store_cas_free(cas, n);
}

/*
 * The base of the URLs put in certificates: public_url, or the plain HTTP
 * listener.  An https:// public_url (a reverse proxy in front) gives the
 * same host over http: S/MIME BR 7.1.2.3 (b), (c) require the http scheme
 * for CRL and AIA URIs (CRLs, CA certificates and OCSP answers are signed
 * and need no TLS), so the proxy serves /ca, /crl and /ocsp over http too.
 */
static char *
derive_base_url(const struct config *cfg)
{
	char buf[512];
	const char *src = *cfg->public_url != '\0' ? cfg->public_url : NULL;

	if (src != NULL && strncmp(src, "https://", 8) == 0)
		snprintf(buf, sizeof(buf), "http://%s", src + 8);
	else if (src != NULL)
		snprintf(buf, sizeof(buf), "%s", src);
	else
		snprintf(buf, sizeof(buf), "http://%s", *cfg->public_listen != '\0' ?
		    cfg->public_listen : cfg->listen);
	size_t n = strlen(buf);
	while (n > 0 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return strdup(buf);
}

/* ---- the archive's key-encryption key ------------------------------------------ */

#define META_ARCHIVE_KEK "archive_kek"
#define KEK_LABEL "archive-kek"

struct kek_keep {
	struct service *svc;
	const char *hex;         /* the KEK wrapped under the master key, in hex */
	const char *how;         /* "made", "moved from archive.kek" */
};

static int
kek_keep_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct kek_keep *kk = arg;
	char *old = NULL;
	int rc = kk->svc->be->meta_get(tx, META_ARCHIVE_KEK, &old, err);

	free(old);
	/* Another node was first: keep what is there (the caller reads it again). */
	if (rc == 0)
		return smime_error_set(err, SMIME_E_EXISTS, "the archive key is kept already");
	if (rc != SMIME_E_NOTFOUND)
		return rc;
	if ((rc = kk->svc->be->meta_set(tx, META_ARCHIVE_KEK, kk->hex, err)) != 0)
		return rc;
	return audit_row(kk->svc, tx, "system", "archive.kek", "", json_pack("{s:s}", "how",
	    kk->how), err);
}

/* The KEK kept in the store, unwrapped into kek; SMIME_E_NOTFOUND when none is kept. */
static int
kek_from_store(struct service *svc, const char *db, const char *mk,
    unsigned char kek[ARCHIVE_DK_LEN], struct smime_error *err)
{
	struct store_tx *tx = NULL;
	char *hex = NULL;
	unsigned char *wrapped = NULL, *plain = NULL;
	long wlen = 0;
	size_t plen = 0;
	int rc;

	if ((rc = svc->be->begin(svc->st, false, &tx, err)) != 0)
		return rc;
	rc = svc->be->meta_get(tx, META_ARCHIVE_KEK, &hex, err);
	svc->be->rollback(tx);
	if (rc != 0)
		return rc;
	if ((wrapped = OPENSSL_hexstr2buf(hex, &wlen)) == NULL || wlen <= 0)
		rc = smime_error_set(err, SMIME_E_INPUT, "%s: the archive key kept in it is damaged "
		    "(not hexadecimal)", db);
	else if (signer_unwrap_secret(svc->signer, KEK_LABEL, wrapped, (size_t)wlen, &plain,
	    &plen, err) != 0)
		rc = smime_error_set(err, SMIME_E_CRYPTO, "%s does not open the archive key kept in "
		    "%s: it is not the master key of this installation (copy the master.key of the "
		    "installation the store comes from; see smimed(8), BACKUP AND RESTORE)", mk, db);
	else if (plen != ARCHIVE_DK_LEN)
		rc = smime_error_set(err, SMIME_E_INPUT, "%s: the archive key kept in it has %zu "
		    "octets, not %d", db, plen, ARCHIVE_DK_LEN);
	else
		memcpy(kek, plain, ARCHIVE_DK_LEN);
	OPENSSL_clear_free(plain, plen);
	OPENSSL_free(wrapped);
	free(hex);
	return rc;
}

/*
 * The archive at start: its KEK is kept in the store wrapped under the
 * master key, so that a backup of the store and the master key restore it.
 * An installation that has DATA/archive.kek (older smimed) has that file's
 * KEK moved into the store, the file left as it was.  A new KEK is made only
 * when the archive is empty: never over keys it could not open.  The newest
 * archived key must open, or smimed does not start.
 */
static int
archive_start(struct service *svc, struct smime_error *err)
{
	char db[PATH_MAX], mk[PATH_MAX], file[PATH_MAX], sha[65], *hex = NULL;
	unsigned char kek[ARCHIVE_DK_LEN], *sealed = NULL, *wrapped = NULL;
	size_t n = 0, len = 0, wlen = 0;
	struct store_tx *tx = NULL;
	const char *how = NULL, *from;
	int rc;

	snprintf(db, sizeof(db), "%s/smimed.db", svc->cfg.data);
	snprintf(mk, sizeof(mk), "%s/master.key", svc->cfg.data);
	snprintf(file, sizeof(file), "%s/archive.kek", svc->cfg.data);
	if ((rc = svc->be->begin(svc->st, false, &tx, err)) != 0)
		return rc;
	rc = svc->be->archive_stat(tx, &n, sha, &sealed, &len, err);
	svc->be->rollback(tx);
	if (rc != 0)
		return rc;
	rc = kek_from_store(svc, db, mk, kek, err);
	from = "the archive key kept in the store";
	if (rc == SMIME_E_NOTFOUND) {
		struct stat st;
		if (stat(file, &st) == 0) {
			if ((rc = keyfile_load(file, false, kek, err)) != 0)
				goto out;
			how = "moved from archive.kek";
			from = file;
		} else if (n > 0) {
			rc = smime_error_set(err, SMIME_E_CRYPTO, "%s holds %zu archived keys but no "
			    "archive key, and there is no %s: they were sealed under the archive.kek "
			    "of an older smimed; put that file back (smimed makes no new archive key "
			    "over keys it cannot open)", db, n, file);
			goto out;
		} else {
			if (RAND_priv_bytes(kek, sizeof(kek)) != 1) {
				rc = smime_error_ssl(err, SMIME_E_CRYPTO, "archive: random key");
				goto out;
			}
			how = "made";
		}
	} else if (rc != 0)
		goto out;
	archive_free(svc->archive);
	svc->archive = NULL;
	if ((rc = archive_open_key(kek, &svc->archive, err)) != 0)
		goto out;
	if (n > 0) {
		EVP_PKEY *key = NULL;
		if (archive_unseal(svc->archive, sealed, len, sha, &key, err) != 0) {
			rc = smime_error_set(err, SMIME_E_CRYPTO, "%s does not open the archived keys "
			    "in %s (the key of certificate %s does not unseal): refusing to start",
			    from, db, sha);
			goto out;
		}
		EVP_PKEY_free(key);
	}
	if (how != NULL) {
		struct kek_keep kk = { .svc = svc, .how = how };
		if ((rc = signer_wrap_secret(svc->signer, KEK_LABEL, kek, sizeof(kek), &wrapped,
		    &wlen, err)) != 0)
			goto out;
		if ((hex = OPENSSL_buf2hexstr(wrapped, (long)wlen)) == NULL) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
		/* OPENSSL_buf2hexstr separates octets with ':'; the store keeps them together. */
		size_t j = 0;
		for (size_t i = 0; hex[i] != '\0'; i++)
			if (hex[i] != ':')
				hex[j++] = hex[i];
		hex[j] = '\0';
		kk.hex = hex;
		rc = committer_run(svc->commit, kek_keep_fn, &kk, err);
		if (rc == SMIME_E_EXISTS) {
			/* Another node kept one first: use that one. */
			rc = kek_from_store(svc, db, mk, kek, err);
			archive_free(svc->archive);
			svc->archive = NULL;
			if (rc == 0)
				rc = archive_open_key(kek, &svc->archive, err);
			goto out;
		}
		if (rc != 0)
			goto out;
		log_event("info", "archive.kek", "how", how, "store", db, NULL);
		if (strcmp(how, "made") != 0)
			log_event("info", "archive.kek", "message", "archive.kek is kept in the store "
			    "now, wrapped under master.key; the file is no longer read: remove it once "
			    "a backup of the store is taken", "file", file, NULL);
	}
out:
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_free(hex);
	free(wrapped);
	free(sealed);
	return rc;
}

/* After a restore into a running service: the store's KEK must be the one held. */
static void
archive_check_reloaded(struct service *svc)
{
	char db[PATH_MAX], mk[PATH_MAX];
	unsigned char kek[ARCHIVE_DK_LEN];
	struct smime_error err;

	snprintf(db, sizeof(db), "%s/smimed.db", svc->cfg.data);
	snprintf(mk, sizeof(mk), "%s/master.key", svc->cfg.data);
	if (svc->archive == NULL)
		return;
	int rc = kek_from_store(svc, db, mk, kek, &err);
	bool same = rc == 0 && archive_has_key(svc->archive, kek);
	/* Until a restart reads the store's KEK, the archive seals and unseals
	 * nothing: a key sealed under the KEK held would be lost to the store.
	 * A store that could not be read (busy, I/O) says nothing either way. */
	if (rc == 0 || rc == SMIME_E_NOTFOUND || rc == SMIME_E_CRYPTO || rc == SMIME_E_INPUT)
		archive_set_stale(svc->archive, !same);
	if (rc == SMIME_E_NOTFOUND)
		log_event("error", "archive.reload", "message", "the restored store keeps no archive "
		    "key (a backup of an older smimed): the archive is closed until smimed is "
		    "restarted, which moves archive.kek in", NULL);
	else if (rc != 0)
		log_event("error", "archive.reload", "message", err.message, NULL);
	else if (!same)
		log_event("error", "archive.reload", "message", "the restored store keeps another "
		    "archive key than the one this smimed holds: the archive is closed (no key is "
		    "issued with a generated key, imported or recovered) until smimed is restarted",
		    NULL);
	OPENSSL_cleanse(kek, sizeof(kek));
}

int
service_open(struct service *svc, struct smime_error *err)
{
	char path[PATH_MAX];
	char *value = NULL;
	struct store_tx *tx = NULL;
	int rc;

	pthread_mutex_init(&svc->crl_lock, NULL);
	pthread_mutex_init(&svc->trust_lock, NULL);
	if (mkdir(svc->cfg.data, 0700) != 0 && errno != EEXIST)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", svc->cfg.data, strerror(errno));
	if ((svc->base_url = derive_base_url(&svc->cfg)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if ((svc->be = store_backend_find(svc->cfg.store)) == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "store: unknown backend '%s'",
		    svc->cfg.store);
	if ((rc = svc->be->open(svc->cfg.data, &svc->st, err)) != 0)
		return rc;
	if ((rc = svc->be->begin(svc->st, false, &tx, err)) != 0)
		return rc;
	rc = svc->be->meta_get(tx, "initialised", &value, err);
	svc->be->rollback(tx);
	free(value);
	if (rc != 0 && rc != SMIME_E_NOTFOUND)
		return rc;
	bool fresh = rc == SMIME_E_NOTFOUND;
	/* A master key is made only for a new installation: the keys of an
	 * initialised store (a restored one) open with its own or not at all. */
	snprintf(path, sizeof(path), "%s/master.key", svc->cfg.data);
	if ((rc = signer_open(path, fresh, &svc->signer, err)) != 0) {
		if (rc == SMIME_E_NOTFOUND)
			rc = smime_error_set(err, SMIME_E_NOTFOUND, "%s is missing: the store %s/smimed.db "
			    "keeps its CA keys and archive wrapped under the master key of its "
			    "installation; copy that master.key here (see smimed(8), BACKUP AND "
			    "RESTORE); smimed makes none over an initialised store", path,
			    svc->cfg.data);
		return rc;
	}
	if ((svc->commit = committer_new(svc->be, svc->st, (size_t)svc->cfg.commit_batch,
	    &svc->metrics)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "cannot start the committer");
	if ((svc->ocsp = ocsp_responder_new(svc->signer, svc->cfg.ocsp_cache,
	    svc->cfg.ocsp_validity)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if ((svc->scep_throttle = scep_throttle_new()) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if (fresh && (rc = bootstrap(svc, err)) != 0)
		return rc;
	/* Every CA key must open before anything is written. */
	if ((rc = service_reload(svc, err)) != 0) {
		if (rc == SMIME_E_CRYPTO)
			rc = smime_error_set(err, SMIME_E_CRYPTO, "%s does not open the CA keys kept in "
			    "%s/smimed.db (%s): it is not the master key of this installation (copy the "
			    "master.key of the installation the store comes from; see smimed(8), BACKUP "
			    "AND RESTORE)", path, svc->cfg.data, err->message);
		return rc;
	}
	if ((rc = archive_start(svc, err)) != 0)
		return rc;
	service_crl_refresh(svc);
	return 0;
}

void
service_close(struct service *svc)
{
	committer_free(svc->commit);
	svc->commit = NULL;
	ocsp_responder_free(svc->ocsp);
	svc->ocsp = NULL;
	scep_throttle_free(svc->scep_throttle);
	svc->scep_throttle = NULL;
	signer_free(svc->signer);
	svc->signer = NULL;
	archive_free(svc->archive);
	svc->archive = NULL;
	if (svc->st != NULL)
		svc->be->close(svc->st);
	svc->st = NULL;
	free(svc->base_url);
	svc->base_url = NULL;
	pthread_mutex_destroy(&svc->crl_lock);
	trust_forget(svc);
	pthread_mutex_destroy(&svc->trust_lock);
	config_free(&svc->cfg);
}

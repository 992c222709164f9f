/* smimed: /api/v1/certificates: issue, list, show and revoke. */
#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <smime/cert.h>

#include "api.h"
#include "archive.h"
#include "ca.h"
#include "ocsp.h"

#define ISSUE_TRIES 3             /* fresh serials after a (vanishingly rare) collision */
#define MIN_P12_PASSWORD 8


json_t *
cert_json(const struct store_cert *c, bool with_pem)
{
	enum cert_status st = c->status;
	/* Past its notAfter a certificate is expired, whether it was active or
	 * superseded (the store's filter judges so too); revoked stays revoked. */
	if (st != STATUS_REVOKED && c->not_after != 0 && c->not_after < service_now())
		st = STATUS_EXPIRED;
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:s,s:s,s:o,s:o,s:o}",
	    "serial", c->serial, "ca", c->ca_id, "user", c->user_id, "device", c->device_id,
	    "profile", c->profile, "purpose", cert_purpose_name(c->purpose), "source",
	    cert_source_name(c->source), "status", cert_status_name(st), "subject",
	    c->subject ? c->subject : "", "email", c->email ? c->email : "", "not_before",
	    time_json(c->not_before), "not_after", time_json(c->not_after), "sha256", c->sha256,
	    "sha1", c->sha1, "created", time_json(c->created), "revoked_at",
	    time_json(c->revoked_at), "reason", c->status == STATUS_REVOKED && c->reason >= 0 ?
	    json_string(ca_reason_name(c->reason)) : json_null());
	if (j != NULL)
		json_object_set_new(j, "withdrawn", c->withdrawn != 0 ? time_json(c->withdrawn) :
		    json_null());
	if (j != NULL && with_pem) {
		char *pem = api_cert_pem(c->der, c->der_len);
		json_object_set_new(j, "certificate", json_string(pem != NULL ? pem : ""));
		free(pem);
	}
	return j;
}

void
h_certs_list(struct request *rq)
{
	struct store_page page;
	struct store_cert_filter f = { 0 };
	struct store_cert *v = NULL;
	struct store_user u = { 0 };
	size_t n = 0;
	char *next = NULL;
	struct smime_error err;
	struct store_tx *tx;
	const char *user = rq_query(rq, "user"), *status = rq_query(rq, "status");

	if (!rq_page(rq, &page))
		return;
	if (status != NULL) {
		f.status = cert_status_parse(status);
		if (f.status == 0) {
			reply_error(rq, 400, "bad-request", "status: active, superseded, expired or "
			    "revoked");
			return;
		}
		/* Expiry is a matter of time, not of a stored state. */
		f.now = service_now();
	}
	f.device_id = rq_query(rq, "device");
	f.ca_id = rq_query(rq, "ca");
	if ((tx = rq_read(rq)) == NULL)
		return;
	int rc = user != NULL ? rq->svc->be->user_get(tx, user, &u, &err) : 0;
	f.user_id = user != NULL ? u.id : NULL;
	if (rc == 0)
		rc = rq->svc->be->cert_list(tx, &page, &f, &v, &n, &next, &err);
	rq->svc->be->rollback(tx);
	if (rc != 0)
		reply_smime(rq, &err);
	else {
		json_t *items = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(items, cert_json(&v[i], false));
		reply_json(rq, 200, list_json(items, next));
	}
	store_user_clear(&u);
	store_certs_free(v, n);
	free(next);
}

/*
 * A certificate named in a path: its SHA-256 fingerprint (64 hexadecimal
 * digits, needed when imported certificates of several issuers share a
 * serial) or its serial (at most 40 digits in a conforming certificate,
 * RFC 5280 4.1.2.2).
 */
int
api_cert_name(const char *in, char out[STORE_SERIAL_SIZE], struct smime_error *err)
{
	size_t n = strspn(in, "0123456789abcdefABCDEF");

	if (n == 64 && in[64] == '\0') {
		for (size_t i = 0; i < 64; i++)
			out[i] = (char)tolower((unsigned char)in[i]);
		out[64] = '\0';
		return 0;
	}
	return ca_serial_parse(in, out, err);
}

void
h_cert_get(struct request *rq)
{
	char serial[STORE_SERIAL_SIZE];
	struct store_cert c = { 0 };
	struct smime_error err;
	struct store_tx *tx;

	if (api_cert_name(rq->params[0], serial, &err) != 0) {
		reply_smime(rq, &err);
		return;
	}
	if ((tx = rq_read(rq)) == NULL)
		return;
	int rc = rq->svc->be->cert_get(tx, serial, &c, &err);
	json_t *j = rc == 0 ? cert_json(&c, true) : NULL;
	if (j != NULL)
		api_names(rq->svc, tx, j);
	rq->svc->be->rollback(tx);
	if (rc != 0)
		reply_smime(rq, &err);
	else
		reply_json(rq, 200, j);
	store_cert_clear(&c);
}

struct issue_op {
	struct service *svc;
	const char *actor;
	struct store_cert rec;
	size_t superseded;
	unsigned char *sealed;  /* the generated key, sealed for the archive; NULL: none */
	size_t sealed_len;
};

static int
issue_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct issue_op *io = arg;
	const struct store_backend *be = io->svc->be;
	int rc;

	if ((rc = be->cert_insert(tx, &io->rec, err)) != 0)
		return rc;
	/* DESIGN: the archive loses nothing: a key made here is archived in the
	 * transaction that records its certificate, or neither happens. */
	if (io->sealed != NULL && (rc = be->archive_put(tx, io->rec.sha256, io->sealed,
	    io->sealed_len, io->rec.created, err)) != 0)
		return rc;
	if ((rc = be->cert_supersede(tx, io->rec.user_id, io->rec.device_id, io->rec.purpose,
	    io->rec.serial, &io->superseded, err)) != 0)
		return rc;
	return audit_row(io->svc, tx, io->actor, "cert.issue", io->rec.serial,
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:b}", "user", io->rec.user_id, "device",
	    io->rec.device_id, "profile", io->rec.profile, "ca", io->rec.ca_id, "source",
	    cert_source_name(io->rec.source), "superseded", (json_int_t)io->superseded,
	    "archived", io->sealed != NULL), err);
}

/* Key, certificate and chain as base64 PKCS#12 under password. */
static char *
pkcs12_b64(EVP_PKEY *key, X509 *cert, const char *chain_pem, const char *password,
    const char *name, struct smime_error *err)
{
	STACK_OF(X509) *extra = sk_X509_new_null();
	BIO *in = BIO_new_mem_buf(chain_pem, -1);
	X509 *x;
	char *b64 = NULL;

	if (extra == NULL || in == NULL)
		smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	else {
		while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL)
			sk_X509_push(extra, x);
		ERR_clear_error();
		b64 = api_pkcs12_b64(&key, &cert, 1, extra, password, name, err);
	}
	sk_X509_pop_free(extra, X509_free);
	BIO_free(in);
	return b64;
}

void
h_certs_issue(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "user", JSON_STRING, true },
		{ "profile", JSON_STRING, true },
		{ "device", JSON_STRING, false },
		{ "csr", JSON_STRING, false },
		{ "generate", JSON_TRUE, false },
		{ "password", JSON_STRING, false },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct issue_op io = { .svc = rq->svc, .actor = rq->actor };
	struct store_user u = { 0 };
	struct store_device d = { 0 };
	struct store_profile p = { 0 };
	struct store_ca ca = { 0 };
	struct smime_error err;
	struct store_tx *tx = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	char *chain = NULL, *p12 = NULL;
	int rc;

	if (o == NULL)
		return;
	const char *device = json_string_value(json_object_get(o, "device"));
	const char *csr = json_string_value(json_object_get(o, "csr"));
	const char *password = json_string_value(json_object_get(o, "password"));
	bool generate = json_is_true(json_object_get(o, "generate"));

	if ((csr != NULL) == generate) {
		reply_error(rq, 400, "bad-request", "give a csr, or generate: true (not both)");
		goto out;
	}
	if (csr != NULL && strlen(csr) > CA_MAX_CSR) {
		reply_error(rq, 400, "bad-request", "csr: larger than %d octets", CA_MAX_CSR);
		goto out;
	}
	if (generate && (password == NULL || strlen(password) < MIN_P12_PASSWORD)) {
		reply_error(rq, 400, "bad-request", "password: the PKCS#12 of a generated key needs "
		    "a password of at least %d characters", MIN_P12_PASSWORD);
		goto out;
	}
	if (!generate && password != NULL) {
		reply_error(rq, 400, "bad-request", "password: only with generate");
		goto out;
	}
	if ((tx = rq_read(rq)) == NULL)
		goto out;
	rc = rq->svc->be->user_get(tx, json_string_value(json_object_get(o, "user")), &u, &err);
	if (rc == 0)
		rc = rq->svc->be->profile_get(tx, json_string_value(json_object_get(o, "profile")),
		    &p, &err);
	if (rc == 0 && device != NULL) {
		rc = rq->svc->be->device_get(tx, device, &d, &err);
		/* Another user's device is as good as none: say nothing more of it. */
		if (rc == 0 && strcmp(d.user_id, u.id) != 0)
			rc = smime_error_set(&err, SMIME_E_NOTFOUND, "user %s has no device '%s'",
			    u.n_emails ? u.emails[0] : u.id, device);
		if (rc == 0 && p.purpose != PURPOSE_SIGNING)
			rc = smime_error_set(&err, SMIME_E_USAGE, "device: only signing certificates "
			    "belong to a device (profile '%s' is %s)", p.name,
			    cert_purpose_name(p.purpose));
	}
	if (rc == 0)
		rc = rq->svc->be->ca_get(tx, p.ca_id, &ca, &err);
	if (rc == 0)
		rc = api_chain_pem(rq->svc, tx, p.ca_id, &chain, &err);
	rq->svc->be->rollback(tx);
	if (rc != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	struct ca_issue_req req = {
		.ca = &ca, .profile = &p, .user = &u, .device = device != NULL ? &d : NULL,
		.csr = (const unsigned char *)csr, .csr_len = csr != NULL ? strlen(csr) : 0,
		.base_url = rq->svc->base_url,
	};
	for (int attempt = 0; ; attempt++) {
		req.now = service_now();
		X509_free(cert);
		EVP_PKEY_free(key);
		cert = NULL;
		key = NULL;
		store_cert_clear(&io.rec);
		free(io.sealed);
		io.sealed = NULL;
		if ((rc = ca_issue(rq->svc->signer, &req, &cert, &key, &err)) != 0 ||
		    (rc = ca_cert_record(cert, &req, SOURCE_ISSUED, &io.rec, &err)) != 0) {
			reply_smime(rq, &err);
			goto out;
		}
		/* An encryption or dual-use key made here is never returned unless it
		 * is archived; a signing key is not archived (it signs for its owner
		 * alone). */
		if (key != NULL && io.rec.purpose != PURPOSE_SIGNING &&
		    archive_seal(rq->svc->archive, key, io.rec.sha256, &io.sealed, &io.sealed_len,
		    &err) != 0) {
			log_event("error", "cert.issue", "message", err.message, NULL);
			reply_error(rq, 500, "internal", "the generated key could not be archived: "
			    "nothing was issued");
			goto out;
		}
		/* Recorded before it is returned. */
		rc = rq_commit(rq, issue_fn, &io, &err);
		if (rc == SMIME_E_EXISTS && attempt + 1 < ISSUE_TRIES)
			continue;
		if (rc != 0) {
			reply_smime(rq, &err);
			goto out;
		}
		break;
	}
	atomic_fetch_add(&rq->svc->metrics.issued, 1);
	if (generate && (p12 = pkcs12_b64(key, cert, chain, password, u.emails[0], &err)) == NULL) {
		/* Recorded, but the key is lost with this answer: say so plainly. */
		log_event("error", "cert.issue", "serial", io.rec.serial, "message", err.message, NULL);
		reply_error(rq, 500, "internal", "certificate %s was issued but its PKCS#12 could "
		    "not be made: revoke it", io.rec.serial);
		goto out;
	}
	json_t *j = json_pack("{s:o,s:s}", "certificate", cert_json(&io.rec, true), "chain", chain);
	if (p12 != NULL)
		json_object_set_new(j, "pkcs12", json_string(p12));
	reply_json(rq, 201, j);
out:
	if (p12 != NULL) {
		OPENSSL_cleanse(p12, strlen(p12));
		free(p12);
	}
	free(chain);
	X509_free(cert);
	EVP_PKEY_free(key);
	free(io.sealed);
	store_cert_clear(&io.rec);
	store_user_clear(&u);
	store_device_clear(&d);
	store_profile_clear(&p);
	store_ca_clear(&ca);
	json_decref(o);
}

struct revoke_op {
	struct service *svc;
	const char *actor;
	char serial[STORE_SERIAL_SIZE];  /* or the fingerprint (64 hexadecimal digits too) */
	int reason;
	struct store_cert c;
};

static int
revoke_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct revoke_op *ro = arg;
	const struct store_backend *be = ro->svc->be;
	int rc;

	store_cert_clear(&ro->c);
	if ((rc = be->cert_get(tx, ro->serial, &ro->c, err)) != 0)
		return rc;
	if (ro->c.status == STATUS_REVOKED)
		return smime_error_set(err, SMIME_E_EXISTS, "certificate %s is revoked already",
		    ro->serial);
	if (ro->c.ca_id[0] == '\0')
		return smime_error_set(err, SMIME_E_POLICY, "certificate %s was not issued by a CA "
		    "of this service", ro->serial);
	ro->c.status = STATUS_REVOKED;
	ro->c.revoked_at = service_now();
	ro->c.reason = ro->reason;
	if ((rc = be->cert_set_status(tx, ro->c.sha256, STATUS_REVOKED, ro->c.revoked_at,
	    ro->reason, err)) != 0)
		return rc;
	return audit_row(ro->svc, tx, ro->actor, "cert.revoke", ro->serial,
	    json_pack("{s:s,s:s,s:s}", "reason", ca_reason_name(ro->reason), "user",
	    ro->c.user_id, "ca", ro->c.ca_id), err);
}

struct withdraw_op {
	struct service *svc;
	const char *actor;
	char serial[STORE_SERIAL_SIZE];
	struct store_cert c;
};

static int
withdraw_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct withdraw_op *wo = arg;
	int64_t now = service_now();
	int rc;

	store_cert_clear(&wo->c);
	if ((rc = wo->svc->be->cert_get(tx, wo->serial, &wo->c, err)) != 0)
		return rc;
	/* What this service issued is ended by a revocation, which relying
	 * parties see; withdrawal is for what another CA issued. */
	if (wo->c.source != SOURCE_IMPORTED)
		return smime_error_set(err, SMIME_E_EXISTS, "certificate %s was issued by this "
		    "service: revoke it instead (smime admin cert revoke)", wo->c.serial);
	if (wo->c.withdrawn != 0)
		return smime_error_set(err, SMIME_E_EXISTS, "certificate %s is withdrawn already",
		    wo->c.serial);
	if ((rc = wo->svc->be->cert_withdraw(tx, wo->c.sha256, now, err)) != 0)
		return rc;
	wo->c.withdrawn = now;
	return audit_row(wo->svc, tx, wo->actor, "cert.withdraw", wo->c.serial,
	    json_pack("{s:s,s:s}", "sha256", wo->c.sha256, "user", wo->c.user_id), err);
}

/*
 * POST /api/v1/certificates/{serial}/withdraw: a certificate imported from
 * another CA leaves lookup and directory publication; it stays recorded and
 * its key archived (recovery goes on).
 */
void
h_cert_withdraw(struct request *rq)
{
	struct withdraw_op wo = { .svc = rq->svc, .actor = rq->actor };
	struct smime_error err;

	if (api_cert_name(rq->params[0], wo.serial, &err) != 0 ||
	    rq_commit(rq, withdraw_fn, &wo, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_json(rq, 200, cert_json(&wo.c, true));
	store_cert_clear(&wo.c);
}

void
h_cert_revoke(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "reason", JSON_STRING, true },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct revoke_op ro = { .svc = rq->svc, .actor = rq->actor };
	struct smime_error err;

	if (o == NULL)
		return;
	ro.reason = ca_reason_parse(json_string_value(json_object_get(o, "reason")));
	/*
	 * Subscriber certificates (Mozilla Root Store Policy 6.1.1, which the
	 * S/MIME BR follow): unspecified (no reasonCode), keyCompromise,
	 * affiliationChanged, superseded, cessationOfOperation or
	 * privilegeWithdrawn.  Not certificateHold (a revocation here is
	 * final), not the CA and AA reasons, not removeFromCRL (delta CRLs).
	 */
	if (ro.reason != 0 && ro.reason != 1 && ro.reason != 3 && ro.reason != 4 &&
	    ro.reason != 5 && ro.reason != 9) {
		reply_error(rq, 400, "bad-request", "reason: one of unspecified, keyCompromise, "
		    "affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn "
		    "(a revocation is final: no certificateHold; cACompromise and aACompromise "
		    "are not reasons for a subscriber certificate)");
		goto out;
	}
	if (api_cert_name(rq->params[0], ro.serial, &err) != 0 ||
	    rq_commit(rq, revoke_fn, &ro, &err) != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	atomic_fetch_add(&rq->svc->metrics.revoked, 1);
	ocsp_cache_flush(rq->svc->ocsp);
	log_event("info", "cert.revoke", "serial", ro.serial, "reason", ca_reason_name(ro.reason),
	    NULL);
	/* The revocation is committed; a CRL that fails now is made by the
	 * schedule (and at start), so the answer still reports the revocation. */
	if (service_crl_update(rq->svc, ro.c.ca_id, &err) != 0)
		log_event("error", "crl.update", "ca", ro.c.ca_id, "message", err.message, NULL);
	reply_json(rq, 200, cert_json(&ro.c, true));
out:
	store_cert_clear(&ro.c);
	json_decref(o);
}

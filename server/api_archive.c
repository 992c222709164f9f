/*
 * smimed: importing users' certificates with their keys (PKCS#12) into the
 * key archive: POST /api/v1/users/{user}/certificates/import.
 *
 * Each key of the file with its certificate is checked (the user's
 * address, the key matches, a role for S/MIME, a chain to the trust
 * collection, a subject key identifier), classified as signing,
 * encryption or dual-use, recorded (source imported) and its key sealed
 * into the archive, in one transaction per certificate.  An expired
 * certificate is accepted into the history (old mail stays readable): its
 * chain is checked at a moment within its own validity.  Nothing replaces
 * an earlier certificate: the history accumulates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <smime/cert.h>

#include "api.h"
#include "archive.h"
#include "ca.h"
#include "trust.h"

#define IMPORT_MAX_FILE (16 * 1024 * 1024)

static int64_t
asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	return ASN1_TIME_to_tm(t, &tm) == 1 ? (int64_t)timegm(&tm) : 0;
}

/* The first of the user's addresses that cert carries, or NULL. */
static const char *
user_address(const struct store_user *u, X509 *cert)
{
	for (size_t i = 0; i < u->n_emails; i++)
		if (smime_cert_has_email(cert, u->emails[i]))
			return u->emails[i];
	return NULL;
}

struct import_op {
	struct service *svc;
	const char *actor;
	struct store_cert rec;
	unsigned char *sealed;
	size_t sealed_len;
	bool same;              /* the certificate was there already */
	bool key_added;         /* ... without its key, which is archived now */
};

static int
import_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct import_op *io = arg;
	const struct store_backend *be = io->svc->be;
	struct store_cert old = { 0 };
	int rc;

	rc = be->cert_get(tx, io->rec.sha256, &old, err);
	if (rc == 0) {
		/* The same certificate again changes nothing (another one with the
		 * same serial, of another issuer, is a certificate of its own) ...
		 * unless its key is not archived yet (a key an older smimed made
		 * and handed out without archiving it): then it is archived. */
		unsigned char *sealed = NULL;
		size_t len = 0;
		io->same = true;
		rc = be->archive_get(tx, io->rec.sha256, &sealed, &len, err);
		free(sealed);
		if (rc != SMIME_E_NOTFOUND) {
			store_cert_clear(&old);
			return rc == 0 ? smime_error_set(err, SMIME_E_EXISTS, "already imported") : rc;
		}
		io->key_added = true;
		if ((rc = be->archive_put(tx, io->rec.sha256, io->sealed, io->sealed_len,
		    io->rec.created, err)) == 0)
			rc = audit_row(io->svc, tx, io->actor, "archive.put", old.serial,
			    json_pack("{s:s,s:s,s:s}", "user", old.user_id, "sha256", old.sha256, "how",
			    "import of a recorded certificate"), err);
		store_cert_clear(&old);
		return rc;
	}
	if (rc != SMIME_E_NOTFOUND)
		return rc;
	if ((rc = be->cert_insert(tx, &io->rec, err)) != 0 ||
	    (rc = be->archive_put(tx, io->rec.sha256, io->sealed, io->sealed_len, io->rec.created,
	    err)) != 0)
		return rc;
	return audit_row(io->svc, tx, io->actor, "cert.import", io->rec.serial,
	    json_pack("{s:s,s:s,s:s}", "user", io->rec.user_id, "purpose",
	    cert_purpose_name(io->rec.purpose), "sha256", io->rec.sha256), err);
}

/* Check, classify and import one key with its certificate; a report row. */
static json_t *
import_one(struct request *rq, const struct store_user *u, X509 *cert, EVP_PKEY *key,
    STACK_OF(X509) *others, int64_t now, int *status_r)
{
	struct import_op io = { .svc = rq->svc, .actor = rq->actor };
	struct smime_error err;
	char fp[65], serial[STORE_SERIAL_SIZE];
	unsigned char sha1[20];
	unsigned int sha1_len = 0;
	const char *why = NULL, *address;
	int roles = smime_cert_roles(cert);
	int64_t nb = asn1_time(X509_get0_notBefore(cert)), na = asn1_time(X509_get0_notAfter(cert));
	bool expired = na != 0 && na < now;
	json_t *row;

	smime_cert_fingerprint(cert, fp);
	ca_serial_hex(X509_get0_serialNumber(cert), serial);
	char *subject = smime_cert_subject(cert);
	row = json_pack("{s:s,s:s,s:s,s:b}", "sha256", fp, "serial", serial, "subject",
	    subject != NULL ? subject : "", "expired", expired);
	*status_r = 0;
	if ((address = user_address(u, cert)) == NULL)
		why = "the certificate is for another address than the user's";
	else if (X509_check_private_key(cert, key) != 1)
		why = "the key does not match the certificate";
	else if ((roles & (SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT)) == 0 || (roles & SMIME_ROLE_CA))
		why = "the certificate is for neither signing nor encryption";
	else if (nb > now)
		why = "the certificate is not valid yet";
	if (why == NULL) {
		/* At import time, or within its own validity for the history. */
		if (trust_verify(rq->svc, cert, others, expired ? na - 1 : 0, NULL, &err) != 0)
			why = err.message;
	}
	if (why != NULL) {
		json_object_set_new(row, "status", json_string("refused"));
		json_object_set_new(row, "message", json_string(why));
		goto out;
	}
	io.rec.purpose = (roles & SMIME_ROLE_SIGN) && (roles & SMIME_ROLE_ENCRYPT) ? PURPOSE_DUAL :
	    (roles & SMIME_ROLE_ENCRYPT) ? PURPOSE_ENCRYPTION : PURPOSE_SIGNING;
	json_object_set_new(row, "purpose", json_string(cert_purpose_name(io.rec.purpose)));
	memcpy(io.rec.serial, serial, sizeof(serial));
	memcpy(io.rec.sha256, fp, sizeof(fp));
	if (X509_digest(cert, EVP_sha1(), sha1, &sha1_len) == 1)
		for (unsigned int i = 0; i < sha1_len && i < 20; i++)
			snprintf(io.rec.sha1 + 2 * i, 3, "%02x", sha1[i]);
	snprintf(io.rec.user_id, sizeof(io.rec.user_id), "%s", u->id);
	io.rec.source = SOURCE_IMPORTED;
	io.rec.status = STATUS_ACTIVE;
	io.rec.subject = subject != NULL ? strdup(subject) : strdup("");
	io.rec.email = strdup(address);
	io.rec.not_before = nb;
	io.rec.not_after = na;
	io.rec.created = now;
	io.rec.revoked_at = 0;
	io.rec.reason = -1;
	int len = i2d_X509(cert, &io.rec.der);
	io.rec.der_len = len > 0 ? (size_t)len : 0;
	if (io.rec.subject == NULL || io.rec.email == NULL || len <= 0 ||
	    archive_seal(rq->svc->archive, key, fp, &io.sealed, &io.sealed_len, &err) != 0) {
		*status_r = 500;
		goto out;
	}
	if (rq_commit(rq, import_fn, &io, &err) != 0) {
		if (err.code != SMIME_E_EXISTS) {
			*status_r = 500;
			log_event("error", "cert.import", "serial", serial, "message", err.message, NULL);
			goto out;
		}
		json_object_set_new(row, "status", json_string(io.same ? "exists" : "refused"));
		json_object_set_new(row, "message", json_string(err.message));
		goto out;
	}
	json_object_set_new(row, "status", json_string(io.key_added ? "archived" : "imported"));
	if (io.key_added)
		json_object_set_new(row, "message", json_string("the certificate was recorded; its "
		    "key is archived now"));
out:
	OPENSSL_free(subject);
	free(io.rec.subject);
	free(io.rec.email);
	OPENSSL_free(io.rec.der);
	io.rec.der = NULL;
	free(io.sealed);
	return row;
}

void
h_user_cert_import(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "pkcs12", JSON_STRING, true },
		{ "password", JSON_STRING, false },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields), *rows = json_array();
	struct store_user u = { 0 };
	struct smime_bag *bag = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	struct smime_error err;
	long imported = 0, existing = 0, refused = 0;
	int64_t now = service_now();

	if (o == NULL)
		goto out;
	struct store_tx *tx = rq_read(rq);
	if (tx == NULL)
		goto out;
	int rc = rq->svc->be->user_get(tx, rq->params[0], &u, &err);
	rq->svc->be->rollback(tx);
	if (rc != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	if (api_base64(json_string_value(json_object_get(o, "pkcs12")), &data, &len,
	    IMPORT_MAX_FILE, &err) != 0) {
		reply_error(rq, 400, "bad-request", "pkcs12: %s", err.message);
		goto out;
	}
	if ((bag = smime_bag_new()) == NULL) {
		reply_error(rq, 500, "internal", "out of memory");
		goto out;
	}
	/* Modern (PBES2) and legacy (RC2, 3DES) files alike. */
	if ((rc = smime_pkcs12_read(bag, data, len, json_string_value(json_object_get(o,
	    "password")), &err)) != 0) {
		reply_error(rq, rc == SMIME_E_CRYPTO ? 422 : 400, rc == SMIME_E_CRYPTO ?
		    "unprocessable" : "bad-request", "pkcs12: %s", err.message);
		goto out;
	}
	if (bag->n_keys == 0) {
		reply_error(rq, 400, "bad-request", "pkcs12: no private key in it");
		goto out;
	}
	for (size_t i = 0; i < bag->n_keys; i++) {
		int status = 0;
		json_t *row;
		if (bag->key_cert[i] < 0) {
			row = json_pack("{s:s,s:s}", "status", "refused", "message",
			    "a key without its certificate");
			refused++;
			json_array_append_new(rows, row);
			continue;
		}
		row = import_one(rq, &u, sk_X509_value(bag->certs, bag->key_cert[i]), bag->keys[i],
		    bag->certs, now, &status);
		if (status != 0) {
			json_decref(row);
			reply_error(rq, 500, "internal", "the import failed (see the service log)");
			goto out;
		}
		const char *st = json_string_value(json_object_get(row, "status"));
		if (strcmp(st, "imported") == 0 || strcmp(st, "archived") == 0)
			imported++;
		else if (strcmp(st, "exists") == 0)
			existing++;
		else
			refused++;
		json_array_append_new(rows, row);
	}
	reply_json(rq, 200, json_pack("{s:I,s:I,s:I,s:O}", "imported", (json_int_t)imported,
	    "existing", (json_int_t)existing, "refused", (json_int_t)refused, "rows", rows));
out:
	json_decref(rows);
	smime_bag_free(bag);
	if (data != NULL)
		OPENSSL_cleanse(data, len);
	free(data);
	store_user_clear(&u);
	json_decref(o);
}

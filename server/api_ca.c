/* smimed: /api/v1/profiles and /api/v1/cas: certificate profiles and the CAs they name. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <smime/cert.h>

#include "api.h"
#include "ca.h"
#include "signer.h"

bool
api_slug(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n >= STORE_NAME_SIZE || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* ---- profiles ---------------------------------------------------------- */

static json_t *
profile_json(const struct store_profile *p)
{
	return json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:b,s:o,s:o}", "name", p->name, "purpose",
	    cert_purpose_name(p->purpose), "ca", p->ca_id, "validity_days", p->validity_days,
	    "br_profile", p->br_profile ? p->br_profile : "strict", "key_alg",
	    p->key_alg ? p->key_alg : "", "allow_generate", p->allow_generate, "created",
	    time_json(p->created), "updated", time_json(p->updated));
}

void
h_profiles_list(struct request *rq)
{
	ANSWER_ALL(rq, struct store_profile, profile_list, profile_json, store_profiles_free);
}

void
h_profile_get(struct request *rq)
{
	ANSWER_RECORD(rq, struct store_profile, profile_get, rq->params[0], profile_json,
	    store_profile_clear);
}

struct profile_op {
	struct service *svc;
	const char *actor;
	struct store_profile p;
	int op;                 /* 0 create, 1 replace, 2 delete */
};

static int
profile_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct profile_op *po = arg;
	const struct store_backend *be = po->svc->be;
	struct store_profile old = { 0 };
	struct store_ca ca = { 0 };
	int rc;

	rc = be->profile_get(tx, po->p.name, &old, err);
	if (po->op == 0 && rc == 0) {
		rc = smime_error_set(err, SMIME_E_EXISTS, "a profile named '%s' exists", po->p.name);
		goto out;
	}
	if (po->op != 0 && rc != 0)
		goto out;
	if (po->op == 2) {
		if ((rc = be->profile_delete(tx, po->p.name, err)) == 0)
			rc = audit_row(po->svc, tx, po->actor, "profile.delete", po->p.name, NULL, err);
		goto out;
	}
	if ((rc = be->ca_get(tx, po->p.ca_id, &ca, err)) != 0)
		goto out;
	if (!ca.issuing || ca.key_wrapped == NULL) {
		rc = smime_error_set(err, SMIME_E_POLICY, "CA '%s' does not issue certificates",
		    ca.id);
		goto out;
	}
	po->p.created = po->op == 0 ? service_now() : old.created;
	po->p.updated = service_now();
	if ((rc = be->profile_put(tx, &po->p, err)) == 0)
		rc = audit_row(po->svc, tx, po->actor, po->op == 0 ? "profile.create" :
		    "profile.update", po->p.name, profile_json(&po->p), err);
out:
	store_profile_clear(&old);
	store_ca_clear(&ca);
	return rc;
}

static void
profile_write(struct request *rq, int op)
{
	static const struct jfield fields[] = {
		{ "name", JSON_STRING, true },
		{ "purpose", JSON_STRING, true },
		{ "ca", JSON_STRING, true },
		{ "validity_days", JSON_INTEGER, false },
		{ "br_profile", JSON_STRING, false },
		{ "key_alg", JSON_STRING, false },
		{ "allow_generate", JSON_TRUE, false },
		{ "created", JSON_STRING, false },   /* as GET answers them, so that one can be */
		{ "updated", JSON_STRING, false },   /* edited and sent back; both ignored */
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct profile_op po = { .svc = rq->svc, .actor = rq->actor, .op = op };
	struct smime_error err;

	if (o == NULL)
		return;
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *ca = json_string_value(json_object_get(o, "ca"));
	json_t *jv = json_object_get(o, "validity_days");
	const char *br = json_string_value(json_object_get(o, "br_profile"));
	const char *alg = json_string_value(json_object_get(o, "key_alg"));
	json_int_t days = jv != NULL ? json_integer_value(jv) : 365;

	if (!api_slug(name)) {
		reply_error(rq, 400, "bad-request", "name: 1 to 64 of a-z, 0-9 and '-'");
		goto out;
	}
	if (op == 1 && strcmp(name, rq->params[0]) != 0) {
		reply_error(rq, 400, "bad-request", "name: '%s' in the body but '%s' in the path",
		    name, rq->params[0]);
		goto out;
	}
	if ((po.p.purpose = cert_purpose_parse(json_string_value(json_object_get(o,
	    "purpose")))) == 0) {
		reply_error(rq, 400, "bad-request", "purpose: signing, encryption or dual");
		goto out;
	}
	if (!api_slug(ca)) {
		reply_error(rq, 400, "bad-request", "ca: not a CA id");
		goto out;
	}
	if (days < 1 || days > CA_MAX_VALIDITY_DAYS) {
		reply_error(rq, 400, "bad-request", "validity_days: 1 to %d (S/MIME BR 6.3.2)",
		    CA_MAX_VALIDITY_DAYS);
		goto out;
	}
	if (br != NULL && strcmp(br, "strict") != 0 && strcmp(br, "multipurpose") != 0) {
		reply_error(rq, 400, "bad-request", "br_profile: strict or multipurpose");
		goto out;
	}
	if (alg != NULL && !ca_key_alg_valid(alg)) {
		reply_error(rq, 400, "bad-request", "key_alg: ec-p256, ec-p384, ec-p521, rsa-2048, "
		    "rsa-3072 or rsa-4096");
		goto out;
	}
	snprintf(po.p.name, sizeof(po.p.name), "%s", name);
	snprintf(po.p.ca_id, sizeof(po.p.ca_id), "%s", ca);
	po.p.validity_days = (int)days;
	po.p.br_profile = strdup(br != NULL ? br : "strict");
	po.p.key_alg = strdup(alg != NULL ? alg : "ec-p256");
	po.p.allow_generate = json_is_true(json_object_get(o, "allow_generate"));
	if (po.p.br_profile == NULL || po.p.key_alg == NULL)
		reply_error(rq, 500, "internal", "out of memory");
	else if (rq_commit(rq, profile_fn, &po, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_json(rq, op == 0 ? 201 : 200, profile_json(&po.p));
out:
	store_profile_clear(&po.p);
	json_decref(o);
}

void
h_profiles_create(struct request *rq)
{
	profile_write(rq, 0);
}

void
h_profile_put(struct request *rq)
{
	profile_write(rq, 1);
}

void
h_profile_delete(struct request *rq)
{
	struct profile_op po = { .svc = rq->svc, .actor = rq->actor, .op = 2 };
	struct smime_error err;

	snprintf(po.p.name, sizeof(po.p.name), "%s", rq->params[0]);
	if (rq_commit(rq, profile_fn, &po, &err) != 0)
		reply_smime(rq, &err);
	else
		reply_empty(rq, 204);
	store_profile_clear(&po.p);
}

/* ---- CAs --------------------------------------------------------------- */


static json_t *
ca_json(const struct store_ca *ca)
{
	const unsigned char *p = ca->cert_der;
	X509 *x = d2i_X509(NULL, &p, (long)ca->cert_len);
	char serial[STORE_SERIAL_SIZE] = "", fp[65] = "";
	char *subject = NULL, *pem = api_cert_pem(ca->cert_der, ca->cert_len);
	time_t nb = 0, na = 0;
	json_t *j;

	if (x != NULL) {
		struct tm tm;
		ca_serial_hex(X509_get0_serialNumber(x), serial);
		smime_cert_fingerprint(x, fp);
		subject = smime_cert_subject(x);
		if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1)
			nb = timegm(&tm);
		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
			na = timegm(&tm);
	}
	j = json_pack("{s:s,s:o,s:b,s:s,s:b,s:s,s:s,s:o,s:o,s:s,s:I,s:o,s:s}", "id", ca->id,
	    "parent", ca->parent_id[0] ? json_string(ca->parent_id) : json_null(), "issuing",
	    ca->issuing, "key_alg", ca->key_alg ? ca->key_alg : "", "has_key",
	    ca->key_wrapped != NULL, "subject", subject ? subject : "", "serial", serial,
	    "not_before", time_json(nb), "not_after", time_json(na), "sha256", fp,
	    "crl_number", (json_int_t)ca->crl_number, "crl_updated", time_json(ca->crl_updated),
	    "certificate", pem ? pem : "");
	OPENSSL_free(subject);
	free(pem);
	X509_free(x);
	return j;
}

void
h_cas_list(struct request *rq)
{
	ANSWER_ALL(rq, struct store_ca, ca_list, ca_json, store_cas_free);
}

void
h_ca_get(struct request *rq)
{
	ANSWER_RECORD(rq, struct store_ca, ca_get, rq->params[0], ca_json, store_ca_clear);
}

int
api_chain_pem(struct service *svc, struct store_tx *tx, const char *ca_id, char **pem_r,
    struct smime_error *err)
{
	char id[STORE_NAME_SIZE];
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc = 0;

	if (f == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	snprintf(id, sizeof(id), "%s", ca_id);
	/* Up to the root; a loop in the parents ends after 8 steps. */
	for (int depth = 0; id[0] != '\0' && depth < 8; depth++) {
		struct store_ca ca = { 0 };
		if ((rc = svc->be->ca_get(tx, id, &ca, err)) != 0)
			break;
		char *pem = api_cert_pem(ca.cert_der, ca.cert_len);
		if (pem != NULL)
			fputs(pem, f);
		free(pem);
		if (strcmp(ca.parent_id, id) == 0)
			id[0] = '\0';
		else
			snprintf(id, sizeof(id), "%s", ca.parent_id);
		store_ca_clear(&ca);
	}
	fclose(f);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	*pem_r = buf;
	return 0;
}

void
h_ca_chain(struct request *rq)
{
	struct smime_error err;
	char *pem = NULL;
	struct store_tx *tx = rq_read(rq);

	if (tx == NULL)
		return;
	int rc = api_chain_pem(rq->svc, tx, rq->params[0], &pem, &err);
	rq->svc->be->rollback(tx);
	if (rc != 0)
		reply_smime(rq, &err);
	else
		reply_data(rq, 200, "application/x-pem-file", pem, strlen(pem));
	free(pem);
}

void
h_ca_crl(struct request *rq)
{
	struct smime_error err;

	if (service_crl_update(rq->svc, rq->params[0], &err) != 0) {
		reply_smime(rq, &err);
		return;
	}
	h_ca_get(rq);
}

struct ca_op {
	struct service *svc;
	const char *actor;
	struct store_ca ca;
	const char *how;
};

static int
ca_insert_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct ca_op *co = arg;
	int rc = co->svc->be->ca_insert(tx, &co->ca, err);

	if (rc != 0)
		return rc;
	return audit_row(co->svc, tx, co->actor, "ca.create", co->ca.id,
	    json_pack("{s:s,s:s,s:s}", "how", co->how, "parent", co->ca.parent_id, "key_alg",
	    co->ca.key_alg ? co->ca.key_alg : ""), err);
}

/* Read the import material of a CA: certificate and key, from PEM or PKCS#12. */
static int
import_material(json_t *o, X509 **cert_r, EVP_PKEY **key_r, struct smime_error *err)
{
	const char *cert_pem = json_string_value(json_object_get(o, "certificate"));
	const char *key_pem = json_string_value(json_object_get(o, "key"));
	const char *p12_b64 = json_string_value(json_object_get(o, "pkcs12"));
	const char *password = json_string_value(json_object_get(o, "password"));
	int rc = 0;

	if (p12_b64 != NULL) {
		if (cert_pem != NULL || key_pem != NULL)
			return smime_error_set(err, SMIME_E_USAGE, "give pkcs12, or certificate and key, "
			    "not both");
		unsigned char *der = NULL;
		size_t len = 0;
		struct smime_bag *bag = smime_bag_new();
		if (bag == NULL)
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		else if ((rc = api_base64(p12_b64, &der, &len, SMIME_CERT_MAX_INPUT, err)) != 0)
			rc = smime_error_set(err, SMIME_E_INPUT, "pkcs12: %s", err->message);
		else {
			rc = smime_pkcs12_read(bag, der, len, password, err);
			/* A wrong password is the client's to fix, not the service's failure. */
			if (rc == SMIME_E_CRYPTO)
				rc = err->code = SMIME_E_POLICY;
		}
		if (rc == 0) {
			if (bag->n_keys != 1 || bag->key_cert[0] < 0)
				rc = smime_error_set(err, SMIME_E_INPUT, "pkcs12: one key with its "
				    "certificate expected, found %zu keys", bag->n_keys);
			else {
				*cert_r = sk_X509_value(bag->certs, bag->key_cert[0]);
				X509_up_ref(*cert_r);
				*key_r = bag->keys[0];
				EVP_PKEY_up_ref(*key_r);
			}
		}
		smime_bag_free(bag);
		if (der != NULL)
			OPENSSL_cleanse(der, len);
		free(der);
		return rc;
	}
	if (cert_pem == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "import: certificate (PEM) or pkcs12 is "
		    "required");
	BIO *b = BIO_new_mem_buf(cert_pem, -1);
	*cert_r = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (*cert_r == NULL)
		return smime_error_ssl(err, SMIME_E_INPUT, "certificate: not a PEM certificate");
	if (key_pem != NULL) {
		b = BIO_new_mem_buf(key_pem, -1);
		*key_r = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL,
		    (void *)(password != NULL ? password : "")) : NULL;
		BIO_free(b);
		if (*key_r == NULL)
			return smime_error_ssl(err, SMIME_E_INPUT, "key: not a PEM private key, or a "
			    "wrong password");
	}
	return 0;
}

/* The parent of an imported certificate among the CAs in the store, or "". */
static void
find_parent(struct service *svc, X509 *cert, char parent[STORE_NAME_SIZE])
{
	struct store_tx *tx = NULL;
	struct store_ca *v = NULL;
	size_t n = 0;
	struct smime_error err;

	parent[0] = '\0';
	if (X509_check_issued(cert, cert) == X509_V_OK)
		return;
	if (svc->be->begin(svc->st, false, &tx, &err) != 0)
		return;
	if (svc->be->ca_list(tx, &v, &n, &err) == 0)
		for (size_t i = 0; i < n && parent[0] == '\0'; i++) {
			const unsigned char *p = v[i].cert_der;
			X509 *c = d2i_X509(NULL, &p, (long)v[i].cert_len);
			EVP_PKEY *pub = c != NULL ? X509_get0_pubkey(c) : NULL;
			if (c != NULL && X509_check_issued(c, cert) == X509_V_OK && pub != NULL &&
			    X509_verify(cert, pub) == 1)
				snprintf(parent, STORE_NAME_SIZE, "%s", v[i].id);
			X509_free(c);
		}
	svc->be->rollback(tx);
	store_cas_free(v, n);
}

void
h_cas_create(struct request *rq)
{
	static const struct jfield fields[] = {
		{ "id", JSON_STRING, true },
		{ "parent", JSON_STRING, false },
		{ "key_alg", JSON_STRING, false },
		{ "common_name", JSON_STRING, false },
		{ "validity_days", JSON_INTEGER, false },
		{ "certificate", JSON_STRING, false },
		{ "key", JSON_STRING, false },
		{ "pkcs12", JSON_STRING, false },
		{ "password", JSON_STRING, false },
		{ NULL, 0, false },
	};
	json_t *o = rq_body_object(rq, fields);
	struct ca_op co = { .svc = rq->svc, .actor = rq->actor };
	struct store_ca parent = { 0 };
	struct smime_error err;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int rc;

	if (o == NULL)
		return;
	const char *id = json_string_value(json_object_get(o, "id"));
	bool import = json_object_get(o, "certificate") != NULL ||
	    json_object_get(o, "pkcs12") != NULL;
	if (!api_slug(id)) {
		reply_error(rq, 400, "bad-request", "id: 1 to 64 of a-z, 0-9 and '-'");
		goto out;
	}
	/* The id must be free before a key is made under it in the signer. */
	struct store_tx *tx = rq_read(rq);
	if (tx == NULL)
		goto out;
	rc = rq->svc->be->ca_get(tx, id, &parent, &err);
	store_ca_clear(&parent);
	if (rc == 0) {
		rq->svc->be->rollback(tx);
		reply_error(rq, 409, "conflict", "a CA with id '%s' exists", id);
		goto out;
	}
	if (import) {
		rq->svc->be->rollback(tx);
		char parent_id[STORE_NAME_SIZE];
		if (json_object_get(o, "parent") != NULL || json_object_get(o, "key_alg") != NULL ||
		    json_object_get(o, "common_name") != NULL ||
		    json_object_get(o, "validity_days") != NULL) {
			reply_error(rq, 400, "bad-request", "an imported CA takes certificate and key, "
			    "or pkcs12, and password only");
			goto out;
		}
		if ((rc = import_material(o, &cert, &key, &err)) != 0) {
			reply_smime(rq, &err);
			goto out;
		}
		find_parent(rq->svc, cert, parent_id);
		/* S/MIME BR 6.1.7: a root's key signs no subscriber certificate, so
		 * an imported root (self-signed) never issues, key or not. */
		bool self_signed = X509_check_issued(cert, cert) == X509_V_OK;
		rc = ca_import(rq->svc->signer, id, cert, key, parent_id, key != NULL && !self_signed,
		    service_now(), &co.ca, &err);
		co.how = "import";
	} else {
		const char *parent_id = json_string_value(json_object_get(o, "parent"));
		const char *alg = json_string_value(json_object_get(o, "key_alg"));
		const char *cn = json_string_value(json_object_get(o, "common_name"));
		json_t *jd = json_object_get(o, "validity_days");
		json_int_t days = jd != NULL ? json_integer_value(jd) : rq->svc->cfg.issuing_validity_days;
		char cn_buf[128];

		if (json_object_get(o, "key") != NULL || json_object_get(o, "password") != NULL) {
			rq->svc->be->rollback(tx);
			reply_error(rq, 400, "bad-request", "key and password belong to an import "
			    "(with certificate or pkcs12)");
			goto out;
		}
		rc = parent_id == NULL ? smime_error_set(&err, SMIME_E_USAGE, "parent: the CA that "
		    "signs the new one is required") : rq->svc->be->ca_get(tx, parent_id, &parent, &err);
		rq->svc->be->rollback(tx);
		if (rc != 0) {
			reply_smime(rq, &err);
			goto out;
		}
		if (parent.key_wrapped == NULL) {
			reply_error(rq, 422, "unprocessable", "CA '%s' has no key here to sign with",
			    parent.id);
			goto out;
		}
		if (alg == NULL)
			alg = rq->svc->cfg.ca_key_alg;
		if (!ca_key_alg_valid(alg) || strcmp(alg, "rsa-2048") == 0) {
			reply_error(rq, 400, "bad-request", "key_alg: ec-p256, ec-p384, ec-p521, "
			    "rsa-3072 or rsa-4096");
			goto out;
		}
		if (days < 1 || days > 7300) {
			reply_error(rq, 400, "bad-request", "validity_days: 1 to 7300");
			goto out;
		}
		if (cn == NULL) {
			snprintf(cn_buf, sizeof(cn_buf), "%s S/MIME %s", rq->svc->cfg.ca_name, id);
			cn = cn_buf;
		} else if (*cn == '\0' || !api_text(cn, 64)) {
			reply_error(rq, 400, "bad-request", "common_name: 1 to 64 characters");
			goto out;
		}
		rc = ca_create(rq->svc->signer, rq->svc->base_url, id, alg, cn, rq->svc->cfg.ca_name,
		    rq->svc->cfg.ca_country, (int)days, &parent, true, service_now(), &co.ca, &err);
		co.how = "create";
	}
	if (rc != 0) {
		reply_smime(rq, &err);
		goto out;
	}
	if (rq_commit(rq, ca_insert_fn, &co, &err) != 0) {
		/* Not stored: the key made or taken for it goes too. */
		signer_forget(rq->svc->signer, co.ca.id);
		reply_smime(rq, &err);
		goto out;
	}
	log_event("info", "ca.create", "ca", co.ca.id, "how", co.how, NULL);
	if (service_reload(rq->svc, &err) != 0 ||
	    (co.ca.key_wrapped != NULL && service_crl_update(rq->svc, co.ca.id, &err) != 0)) {
		reply_smime(rq, &err);
		goto out;
	}
	tx = rq_read(rq);
	if (tx != NULL) {
		struct store_ca fresh = { 0 };
		if (rq->svc->be->ca_get(tx, co.ca.id, &fresh, &err) == 0)
			reply_json(rq, 201, ca_json(&fresh));
		else
			reply_smime(rq, &err);
		rq->svc->be->rollback(tx);
		store_ca_clear(&fresh);
	}
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	store_ca_clear(&co.ca);
	store_ca_clear(&parent);
	json_decref(o);
}

/*
 * smimed: what every API area shares: strict JSON bodies, pages, times,
 * the audit row, admin tokens, and the public routes (health, metrics, CA
 * certificates, CRLs, OCSP).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <smime/smime.h>

#include "api.h"
#include "directory.h"
#include "ocsp.h"

/* ---- bodies ---------------------------------------------------------- */

/* Nesting depth of a JSON text, counted outside strings, before parsing. */
static size_t
json_depth(const unsigned char *s, size_t len)
{
	size_t depth = 0, max = 0;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"')
			in_string = true;
		else if (c == '{' || c == '[') {
			if (++depth > max)
				max = depth;
		} else if ((c == '}' || c == ']') && depth > 0)
			depth--;
	}
	return max;
}

static const char *
type_name(int type)
{
	switch (type) {
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_TRUE: return "a boolean";
	case JSON_ARRAY: return "an array";
	case JSON_OBJECT: return "an object";
	default: return "a value";
	}
}

static bool
type_ok(const json_t *v, int type)
{
	switch (type) {
	case JSON_TRUE: return json_is_boolean(v);
	case JSON_INTEGER: return json_is_integer(v);
	default: return json_typeof(v) == (json_type)type;
	}
}

json_t *
rq_body_object(struct request *rq, const struct jfield *fields)
{
	const char *ct = rq_header(rq, MHD_HTTP_HEADER_CONTENT_TYPE);
	json_error_t jerr;
	json_t *o;
	const char *key;
	json_t *v;

	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
		reply_error(rq, 415, "unsupported-media-type", "the body must be application/json");
		return NULL;
	}
	if (rq->body_len == 0) {
		reply_error(rq, 400, "bad-request", "the body is empty: a JSON object is expected");
		return NULL;
	}
	if (json_depth(rq->body, rq->body_len) > API_MAX_DEPTH) {
		reply_error(rq, 400, "bad-request", "JSON nested deeper than %d levels", API_MAX_DEPTH);
		return NULL;
	}
	o = json_loadb((const char *)rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL) {
		reply_error(rq, 400, "bad-request", "malformed JSON at line %d column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		reply_error(rq, 400, "bad-request", "the body must be a JSON object");
		return NULL;
	}
	json_object_foreach(o, key, v) {
		const struct jfield *f;
		for (f = fields; f->name != NULL; f++)
			if (strcmp(f->name, key) == 0)
				break;
		if (f->name == NULL) {
			reply_error(rq, 400, "bad-request", "unknown field '%.64s'", key);
			goto bad;
		}
		if (!type_ok(v, f->type)) {
			reply_error(rq, 400, "bad-request", "field '%s' must be %s", key,
			    type_name(f->type));
			goto bad;
		}
		/* Lengths are bounded by the body's limit; a NUL would cut a string short. */
		if (json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v)) {
			reply_error(rq, 400, "bad-request", "field '%s' holds a NUL", key);
			goto bad;
		}
	}
	for (const struct jfield *f = fields; f->name != NULL; f++)
		if (f->required && json_object_get(o, f->name) == NULL) {
			reply_error(rq, 400, "bad-request", "field '%s' is required", f->name);
			goto bad;
		}
	return o;
bad:
	json_decref(o);
	return NULL;
}

bool
json_strings(const json_t *array, size_t max_items, size_t max_len)
{
	size_t i;
	json_t *v;

	if (!json_is_array(array) || json_array_size(array) > max_items)
		return false;
	json_array_foreach(array, i, v)
		if (!json_is_string(v) || json_string_length(v) > max_len ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return false;
	return true;
}

bool
rq_page(struct request *rq, struct store_page *page)
{
	const char *limit = rq_query(rq, "limit"), *after = rq_query(rq, "after");

	page->limit = API_DEFAULT_LIMIT;
	page->after = NULL;
	if (limit != NULL) {
		char *end;
		long v = strtol(limit, &end, 10);
		if (*limit == '\0' || *end != '\0' || v < 1 || v > API_MAX_LIMIT) {
			reply_error(rq, 400, "bad-request", "limit must be 1 to %d", API_MAX_LIMIT);
			return false;
		}
		page->limit = (size_t)v;
	}
	if (after != NULL) {
		if (*after == '\0' || strlen(after) > API_MAX_CURSOR) {
			reply_error(rq, 400, "bad-request", "after: not a cursor");
			return false;
		}
		page->after = after;
	}
	return true;
}

json_t *
list_json(json_t *items, const char *next)
{
	return json_pack("{s:o,s:o}", "items", items, "next",
	    next != NULL ? json_string(next) : json_null());
}

json_t *
time_json(int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	char buf[32];

	if (t == 0 || gmtime_r(&tt, &tm) == NULL)
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

struct store_tx *
rq_read(struct request *rq)
{
	struct store_tx *tx = NULL;
	struct smime_error err;

	if (rq->svc->be->begin(rq->svc->st, false, &tx, &err) != 0) {
		reply_smime(rq, &err);
		return NULL;
	}
	return tx;
}

/* ---- audit and token use --------------------------------------------- */

int
audit_row(struct service *svc, struct store_tx *tx, const char *actor, const char *action,
    const char *object, json_t *detail, struct smime_error *err)
{
	struct store_audit a = { 0 };
	char *text = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rc;

	a.time = service_now();
	a.actor = (char *)(actor != NULL && *actor != '\0' ? actor : "system");
	a.action = (char *)action;
	a.object = (char *)(object != NULL ? object : "");
	a.detail = text != NULL ? text : (char *)"{}";
	json_t *user = json_object_get(detail, "user");
	if (json_is_string(user))
		a.user_id = (char *)json_string_value(user);
	else if (strncmp(action, "user.", 5) == 0 || strncmp(action, "archive.", 8) == 0)
		a.user_id = a.object;
	rc = svc->be->audit_append(tx, &a, err);
	free(text);
	json_decref(detail);
	return rc;
}

struct use_arg {
	struct request *rq;
	commit_fn fn;
	void *arg;
};

/* True when this request's token has not been recorded as used within
 * TOKEN_USE_INTERVAL (as of the authentication: the store decides). */
static bool
use_due(const struct request *rq)
{
	return rq->token_id[0] != '\0' && service_now() - rq->token_last_used >= TOKEN_USE_INTERVAL;
}

static int
record_use(struct store_tx *tx, struct request *rq, struct smime_error *err)
{
	char object[160];
	bool touched;
	int rc;

	snprintf(object, sizeof(object), "%s %.140s", rq->method, rq->path);
	/* The store's test settles requests of one token that race. */
	if ((rc = rq->svc->be->token_touch(tx, rq->token_id, service_now(), TOKEN_USE_INTERVAL,
	    &touched, err)) != 0 || !touched)
		return rc;
	return audit_row(rq->svc, tx, rq->actor, "token.use", object,
	    json_pack("{s:s,s:s}", "client", rq->client, "role", store_role_name(rq->role)), err);
}

static int
use_and_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct use_arg *u = arg;
	int rc;

	if (u->fn != NULL && (rc = u->fn(tx, u->arg, err)) != 0)
		return rc;
	return use_due(u->rq) ? record_use(tx, u->rq, err) : 0;
}

int
rq_commit(struct request *rq, commit_fn fn, void *arg, struct smime_error *err)
{
	struct use_arg u = { rq, fn, arg };
	int rc = committer_run(rq->svc->commit, use_and_fn, &u, err);

	if (rc == 0) {
		rq->token_use_recorded = true;
		/* What answers were made from may have changed. */
		atomic_fetch_add(&rq->svc->state_gen, 1);
		/* It may have queued a publication. */
		directory_kick(rq->svc->directory);
	}
	return rc;
}

void
rq_record_use(struct request *rq)
{
	struct use_arg u = { rq, NULL, NULL };
	struct smime_error err;

	/* Most reads write nothing at all. */
	if (!use_due(rq)) {
		rq->token_use_recorded = true;
		return;
	}
	if (committer_run(rq->svc->commit, use_and_fn, &u, &err) != 0) {
		/* Fail closed: an answer whose use cannot be audited is not sent. */
		reply_smime(rq, &err);
		return;
	}
	rq->token_use_recorded = true;
}

/* ---- admin tokens ----------------------------------------------------- */

void
api_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int
token_make(const char *name, struct store_token *t_r, char text_r[TOKEN_TEXT_SIZE],
    struct smime_error *err)
{
	unsigned char id[16], secret[32];
	char id_hex[33], secret_hex[65];

	memset(t_r, 0, sizeof(*t_r));
	if (RAND_bytes(id, sizeof(id)) != 1 || RAND_priv_bytes(secret, sizeof(secret)) != 1)
		return smime_error_ssl(err, SMIME_E_INTERNAL, "no random numbers");
	api_hex(id, sizeof(id), id_hex);
	api_hex(secret, sizeof(secret), secret_hex);
	snprintf(t_r->id, sizeof(t_r->id), "%s", id_hex);
	if (EVP_Digest(secret_hex, 64, t_r->hash, NULL, EVP_sha256(), NULL) != 1 ||
	    (t_r->name = strdup(name)) == NULL) {
		OPENSSL_cleanse(secret_hex, sizeof(secret_hex));
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	t_r->created = service_now();
	t_r->role = ROLE_ADMIN;
	snprintf(text_r, TOKEN_TEXT_SIZE, "smt_%s_%s", id_hex, secret_hex);
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(secret_hex, sizeof(secret_hex));
	return 0;
}

static bool
all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

/* "admin, operator" for the roles in mask. */
static void
roles_text(unsigned mask, char *out, size_t size)
{
	static const enum store_role all[] = { ROLE_ADMIN, ROLE_OPERATOR, ROLE_RECOVERY,
		ROLE_AUDITOR };

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (mask & all[i]) {
			size_t n = strlen(out);
			snprintf(out + n, size - n, "%s%s", n > 0 ? ", " : "", store_role_name(all[i]));
		}
	if (out[0] == '\0')
		snprintf(out, size, "no role");
}

bool
api_authenticate(struct request *rq, unsigned roles)
{
	const char *auth = rq_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
	struct store_token t = { 0 };
	struct store_tx *tx = NULL;
	struct smime_error err;
	unsigned char hash[32];
	char id[33];
	const char *why = "missing bearer token";
	bool ok = false, forbidden = false;

	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		goto out;
	const char *tok = auth + 7;
	while (*tok == ' ')
		tok++;
	why = "malformed token";
	/* smt_ + 32 + _ + 64 */
	if (strlen(tok) != 101 || strncmp(tok, "smt_", 4) != 0 || tok[36] != '_' ||
	    !all_hex(tok + 4, 32) || !all_hex(tok + 37, 64))
		goto out;
	memcpy(id, tok + 4, 32);
	id[32] = '\0';
	if (EVP_Digest(tok + 37, 64, hash, NULL, EVP_sha256(), NULL) != 1)
		goto out;
	if (rq->svc->be->begin(rq->svc->st, false, &tx, &err) != 0) {
		reply_smime(rq, &err);
		return false;
	}
	int rc = rq->svc->be->token_get(tx, id, &t, &err);
	rq->svc->be->rollback(tx);
	why = "unknown or revoked token";
	if (rc != 0 && rc != SMIME_E_NOTFOUND) {
		reply_smime(rq, &err);
		return false;
	}
	/* Compare the hash in constant time, whether or not the id was found. */
	static const unsigned char nothing[32];
	bool same = CRYPTO_memcmp(hash, rc == 0 ? t.hash : nothing, 32) == 0;
	if (rc == 0 && same && t.revoked_at == 0 && t.expires != 0 &&
	    service_now() >= t.expires) {
		/* Saying so is safe: only the holder of the secret learns it. */
		why = "the token expired";
	} else if (rc == 0 && same && t.revoked_at == 0) {
		snprintf(rq->token_id, sizeof(rq->token_id), "%s", t.id);
		snprintf(rq->actor, sizeof(rq->actor), "token:%s", t.id);
		rq->role = t.role;
		rq->token_last_used = t.last_used;
		ok = (roles & (unsigned)t.role) != 0;
		forbidden = !ok;
	}
out:
	store_token_clear(&t);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (forbidden) {
		/* Refused before the handler runs: nothing is read, written or
		 * recorded in the audit log; the service log keeps the attempt. */
		char allowed[64];
		roles_text(roles, allowed, sizeof(allowed));
		atomic_fetch_add(&rq->svc->metrics.forbidden, 1);
		log_event("warn", "auth.forbidden", "client", rq->client, "path", rq->path,
		    "actor", rq->actor, "role", store_role_name(rq->role), NULL);
		reply_error(rq, 403, "forbidden", "a token of role %s may not %s %s (roles allowed: "
		    "%s)", store_role_name(rq->role), rq->method, rq->route, allowed);
	} else if (!ok) {
		atomic_fetch_add(&rq->svc->metrics.auth_failures, 1);
		log_event("warn", "auth.fail", "client", rq->client, "path", rq->path, "reason", why,
		    NULL);
		reply_error(rq, 401, "unauthorized", "%s: send Authorization: Bearer TOKEN", why);
	}
	return ok;
}

/* ---- public routes ---------------------------------------------------- */

void
h_healthz(struct request *rq)
{
	struct smime_error err;

	if (rq->svc->be->ping(rq->svc->st, &err) != 0) {
		atomic_fetch_add(&rq->svc->metrics.store_errors, 1);
		reply_error(rq, 503, "unavailable", "the store does not answer");
		return;
	}
	reply_json(rq, 200, json_pack("{s:s,s:s}", "status", "ok", "version", SMIME_VERSION));
}

void
h_metrics(struct request *rq)
{
	char *text = metrics_text(&rq->svc->metrics);

	if (text == NULL) {
		reply_error(rq, 500, "internal", "out of memory");
		return;
	}
	reply_data(rq, 200, "text/plain; version=0.0.4", text, strlen(text));
	free(text);
}

/* "ID.ext" with ID a CA id: copies ID to id and returns the extension. */
static const char *
split_file(const char *file, char id[STORE_NAME_SIZE])
{
	const char *dot = strrchr(file, '.');
	size_t n = dot != NULL ? (size_t)(dot - file) : 0;

	if (n == 0 || n >= STORE_NAME_SIZE)
		return NULL;
	memcpy(id, file, n);
	id[n] = '\0';
	return dot + 1;
}

void
h_ca_file(struct request *rq)
{
	char id[STORE_NAME_SIZE];
	const char *ext = split_file(rq->params[0], id);
	struct store_ca ca = { 0 };
	struct smime_error err;
	struct store_tx *tx;

	if (ext == NULL || (strcmp(ext, "crt") != 0 && strcmp(ext, "pem") != 0 &&
	    strcmp(ext, "cer") != 0)) {
		reply_error(rq, 404, "not-found", "no such file: ask for ID.crt or ID.pem");
		return;
	}
	if ((tx = rq_read(rq)) == NULL)
		return;
	int rc = rq->svc->be->ca_get(tx, id, &ca, &err);
	rq->svc->be->rollback(tx);
	if (rc != 0) {
		reply_smime(rq, &err);
		return;
	}
	if (strcmp(ext, "pem") == 0) {
		char *pem = api_cert_pem(ca.cert_der, ca.cert_len);
		if (pem != NULL)
			reply_public(rq, "application/x-pem-file", pem, strlen(pem), 3600);
		else
			reply_error(rq, 500, "internal", "cannot encode the certificate");
		free(pem);
	} else
		reply_public(rq, "application/pkix-cert", ca.cert_der, ca.cert_len, 3600);
	store_ca_clear(&ca);
}

void
h_crl_file(struct request *rq)
{
	char id[STORE_NAME_SIZE];
	const char *ext = split_file(rq->params[0], id);
	struct store_ca ca = { 0 };
	struct smime_error err;
	struct store_tx *tx;

	if (ext == NULL || strcmp(ext, "crl") != 0) {
		reply_error(rq, 404, "not-found", "no such file: ask for ID.crl");
		return;
	}
	if ((tx = rq_read(rq)) == NULL)
		return;
	int rc = rq->svc->be->ca_get(tx, id, &ca, &err);
	rq->svc->be->rollback(tx);
	if (rc != 0)
		reply_smime(rq, &err);
	else if (ca.crl_der == NULL)
		reply_error(rq, 404, "not-found", "CA '%s' has no CRL yet", id);
	else
		reply_public(rq, "application/pkix-crl", ca.crl_der, ca.crl_len,
		    rq->svc->cfg.crl_refresh);
	store_ca_clear(&ca);
}

/* The OCSP responder asks the store through this. */
static int
ocsp_lookup(void *arg, const char *ca_id, const char *serial, struct ocsp_status *st_r,
    struct smime_error *err)
{
	struct service *svc = arg;
	struct store_tx *tx = NULL;
	struct store_cert c = { 0 };
	int rc;

	memset(st_r, 0, sizeof(*st_r));
	st_r->reason = -1;
	if ((rc = svc->be->begin(svc->st, false, &tx, err)) != 0)
		return rc;
	rc = svc->be->cert_get(tx, serial, &c, err);
	svc->be->rollback(tx);
	if (rc == SMIME_E_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (strcmp(c.ca_id, ca_id) == 0) {
		st_r->known = 1;
		if (c.status == STATUS_REVOKED) {
			st_r->revoked = 1;
			st_r->revoked_at = c.revoked_at;
			st_r->reason = c.reason;
		}
	}
	store_cert_clear(&c);
	return 0;
}

static void
ocsp_answer(struct request *rq, const unsigned char *req, size_t len, bool get)
{
	unsigned char *resp = NULL;
	size_t resp_len = 0;
	struct smime_error err;

	if (ocsp_respond(rq->svc->ocsp, req, len, ocsp_lookup, rq->svc, service_now(), &resp,
	    &resp_len, &err) != 0) {
		reply_smime(rq, &err);
		return;
	}
	atomic_fetch_add(&rq->svc->metrics.ocsp_responses, 1);
	/* RFC 5019 6.2: a GET response may be cached as long as the responder's. */
	if (get)
		reply_public(rq, "application/ocsp-response", resp, resp_len, rq->svc->cfg.ocsp_cache);
	else
		reply_data(rq, 200, "application/ocsp-response", resp, resp_len);
	free(resp);
}

void
h_ocsp_post(struct request *rq)
{
	const char *ct = rq_header(rq, MHD_HTTP_HEADER_CONTENT_TYPE);

	if (ct == NULL || strncasecmp(ct, "application/ocsp-request", 24) != 0) {
		reply_error(rq, 415, "unsupported-media-type",
		    "the body must be application/ocsp-request");
		return;
	}
	ocsp_answer(rq, rq->body, rq->body_len, false);
}

void
h_ocsp_get(struct request *rq)
{
	/* RFC 6960 A.1: base64 of the DER request, URL-encoded (the HTTP layer
	 * has undone the URL encoding).  The URL-safe alphabet is taken too. */
	const char *b64 = rq->params[1];
	size_t n = strlen(b64);
	char *std;
	unsigned char *der = NULL;
	size_t len = 0;
	struct smime_error err;

	if (n > (OCSP_MAX_REQUEST / 3 + 2) * 4 + 64) {
		reply_error(rq, 413, "payload-too-large", "the OCSP request is too large");
		return;
	}
	if ((std = strdup(b64)) == NULL) {
		reply_error(rq, 500, "internal", "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (std[i] == ' ')
			std[i] = '+';   /* a '+' that a client sent unencoded */
		else if (std[i] == '-')
			std[i] = '+';
		else if (std[i] == '_')
			std[i] = '/';
	}
	/* Padding may be left out in URLs. */
	size_t k = strlen(std);
	char *padded = malloc(k + 4);
	if (padded == NULL) {
		free(std);
		reply_error(rq, 500, "internal", "out of memory");
		return;
	}
	memcpy(padded, std, k);
	while (k % 4 != 0 && padded[k - 1] != '=')
		padded[k++] = '=';
	padded[k] = '\0';
	free(std);
	if (api_base64(padded, &der, &len, OCSP_MAX_REQUEST, &err) != 0)
		/* Not base64: OCSP's own malformedRequest answer. */
		ocsp_answer(rq, (const unsigned char *)"", 0, true);
	else
		ocsp_answer(rq, der, len, true);
	free(padded);
	free(der);
}

char *
api_cert_pem(const unsigned char *der, size_t len)
{
	/* RFC 7468 2: base64 in lines of 64 characters between the two lines.
	 * Written here rather than through a BIO: it is on the lookup's path,
	 * and a BIO takes OpenSSL's global locks. */
	static const char begin[] = "-----BEGIN CERTIFICATE-----\n";
	static const char end[] = "-----END CERTIFICATE-----\n";
	size_t lines = (len + 47) / 48;
	char *out = malloc(sizeof(begin) + sizeof(end) + lines * 66 + 1), *o;

	if (out == NULL)
		return NULL;
	o = out + sizeof(begin) - 1;
	memcpy(out, begin, sizeof(begin) - 1);
	for (size_t i = 0; i < len; i += 48) {
		o += EVP_EncodeBlock((unsigned char *)o, der + i, (int)(len - i < 48 ? len - i : 48));
		*o++ = '\n';
	}
	memcpy(o, end, sizeof(end));
	return out;
}

char *
api_base64_encode(const void *data, size_t len)
{
	char *b64 = malloc(len / 3 * 4 + 8);

	if (b64 != NULL)
		EVP_EncodeBlock((unsigned char *)b64, data, (int)len);
	return b64;
}

char *
api_pkcs12_b64(EVP_PKEY **keys, X509 **certs, size_t n, STACK_OF(X509) *extra,
    const char *password, const char *name, struct smime_error *err)
{
	BIO *out = BIO_new(BIO_s_mem());
	char *b64 = NULL, *data;
	long len;

	if (out == NULL) {
		smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		return NULL;
	}
	if (smime_pkcs12_write(out, keys, certs, n, extra, password, SMIME_P12_AES, name,
	    err) == 0) {
		len = BIO_get_mem_data(out, &data);
		if ((b64 = api_base64_encode(data, (size_t)len)) == NULL)
			smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		OPENSSL_cleanse(data, (size_t)len);
	}
	BIO_free(out);
	return b64;
}

/* ---- values ----------------------------------------------------------- */

bool
api_email(const char *in, char out[API_MAX_EMAIL + 1], const char **why_r)
{
	static const char local_ok[] = "._%+-'!#$&=?^`{|}~/";
	size_t n = strlen(in), at = 0, ats = 0;

	if (n == 0 || n > API_MAX_EMAIL) {
		*why_r = "an address has 1 to 254 characters";
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (in[i] == '@') {
			at = i;
			ats++;
		}
	if (ats != 1 || at == 0 || at > 64 || at == n - 1) {
		*why_r = "an address is LOCAL@DOMAIN with one @ and a local part of at most 64 "
		    "characters";
		return false;
	}
	for (size_t i = 0; i < at; i++) {
		unsigned char c = (unsigned char)in[i];
		if (!isalnum(c) && strchr(local_ok, c) == NULL) {
			*why_r = "an address's local part may hold letters, digits and "
			    "._%+-'!#$&=?^`{|}~/ only";
			return false;
		}
	}
	size_t label = 0;
	bool dot = false;
	for (size_t i = at + 1; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '.') {
			if (label == 0) {
				*why_r = "an address's domain has an empty label";
				return false;
			}
			label = 0;
			dot = true;
		} else if (isalnum(c) || c == '-') {
			if (++label > 63) {
				*why_r = "an address's domain has a label over 63 characters";
				return false;
			}
		} else {
			*why_r = "an address's domain may hold letters, digits, '-' and dots only";
			return false;
		}
	}
	if (label == 0 || !dot) {
		*why_r = "an address's domain needs at least two labels";
		return false;
	}
	for (size_t i = 0; i <= n; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	return true;
}

bool
api_utf8(const char *s, size_t n)
{
	return utf8_valid(s, n);
}

bool
api_text(const char *s, size_t max_len)
{
	size_t n = strlen(s);

	if (n > max_len || !api_utf8(s, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

int
api_base64(const char *in, unsigned char **out_r, size_t *len_r, size_t max,
    struct smime_error *err)
{
	size_t n = strlen(in), k = 0, pad = 0;
	char *clean;
	unsigned char *out;
	int len;

	*out_r = NULL;
	*len_r = 0;
	if (n / 4 * 3 > max + 3)
		return smime_error_set(err, SMIME_E_INPUT, "base64: more than %zu octets", max);
	if ((clean = malloc(n + 1)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	/* RFC 4648 4: the alphabet, then at most two '=' at the very end; white
	 * space between is dropped (RFC 2045 line breaks). */
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		clean[k++] = c;
	}
	while (pad < k && clean[k - 1 - pad] == '=')
		pad++;
	if (k == 0 || k % 4 != 0 || pad > 2 || memchr(clean, '=', k - pad) != NULL) {
		OPENSSL_cleanse(clean, k);
		free(clean);
		return smime_error_set(err, SMIME_E_INPUT, "not base64 (RFC 4648)");
	}
	clean[k] = '\0';
	if ((out = malloc(k / 4 * 3 + 1)) == NULL) {
		OPENSSL_cleanse(clean, k);
		free(clean);
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	len = EVP_DecodeBlock(out, (const unsigned char *)clean, (int)k);
	OPENSSL_cleanse(clean, k);
	free(clean);
	if (len < 0 || (size_t)len < pad) {
		free(out);
		return smime_error_set(err, SMIME_E_INPUT, "not base64 (RFC 4648)");
	}
	/* EVP_DecodeBlock counts the padding as zero octets. */
	*out_r = out;
	*len_r = (size_t)len - pad;
	return 0;
}

json_t *
user_json(const struct store_user *u)
{
	json_t *emails = json_array(), *groups = json_array();

	for (size_t i = 0; i < u->n_emails; i++)
		json_array_append_new(emails, json_string(u->emails[i]));
	for (size_t i = 0; i < u->n_groups; i++)
		json_array_append_new(groups, json_string(u->groups[i]));
	return json_pack("{s:s,s:s,s:o,s:o,s:o,s:o}", "id", u->id, "name", u->name ? u->name : "",
	    "emails", emails, "groups", groups, "created", time_json(u->created),
	    "updated", time_json(u->updated));
}

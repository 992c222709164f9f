/*
 * smimed: what API handlers see of a request, and how they answer.
 *
 * A handler is called once the whole body has arrived (within its limit)
 * and, for admin routes, once the bearer token has been checked.  It must
 * answer exactly once through one of the reply_* functions; the HTTP layer
 * sends the answer, logs the line and counts it.
 */
#ifndef SMIMED_API_H
#define SMIMED_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "service.h"

#define API_MAX_PARAMS 4
#define API_DEFAULT_LIMIT 100
#define API_MAX_LIMIT 1000
#define API_MAX_DEPTH 16          /* JSON nesting */

struct MHD_Connection;
struct MHD_Response;

struct request {
	struct service *svc;
	struct MHD_Connection *conn;
	const char *method;
	char *path;
	const char *route;                    /* the matched pattern, for logs */
	char *params[API_MAX_PARAMS];         /* path parameters, in order */
	size_t n_params;
	unsigned char *body;
	size_t body_len, body_max, body_cap;
	bool body_too_large;
	bool body_busy;                       /* the budget of all bodies was spent */
	char client[64];
	char actor[64];                       /* "token:ID" once authenticated, else "" */
	char token_id[STORE_ID_SIZE];
	enum store_role role;                 /* the token's, once authenticated */
	int64_t token_last_used;              /* as read when authenticated */
	bool token_use_recorded;
	int status;
	struct MHD_Response *resp;
	uint64_t start_us;
};

typedef void (*api_handler)(struct request *rq);

/* The value of query parameter key, or NULL. */
const char *rq_query(struct request *rq, const char *key);
/* A request header, or NULL. */
const char *rq_header(struct request *rq, const char *name);

/* Answers.  reply_json takes j over (and answers 500 when it is NULL). */
void reply_json(struct request *rq, int status, json_t *j);
void reply_error(struct request *rq, int status, const char *code, const char *fmt, ...)
    SMIME_PRINTF(4, 5);
/* A library error: INPUT/USAGE 400, NOTFOUND 404, EXISTS 409, POLICY/BADSIG 422,
 * IO/INTERNAL/CRYPTO 500 (the message of a 5xx is logged, not sent). */
void reply_smime(struct request *rq, const struct smime_error *err);
void reply_data(struct request *rq, int status, const char *content_type,
    const void *data, size_t len);
void reply_empty(struct request *rq, int status);
/* 200 with a public PKI object that caches may keep max_age seconds. */
void reply_public(struct request *rq, const char *content_type, const void *data, size_t len,
    long max_age);

/* The body as a JSON object checked against fields: every field known, of
 * its type, required ones present, no NUL in strings (the body's limit
 * bounds their length).  On
 * failure it has answered (400/415) and returns NULL. */
struct jfield {
	const char *name;
	int type;          /* JSON_STRING, JSON_INTEGER, JSON_TRUE (a boolean), JSON_ARRAY */
	bool required;
};
json_t *rq_body_object(struct request *rq, const struct jfield *fields);
/* Every element of array is a string of at most max_len characters. */
bool json_strings(const json_t *array, size_t max_items, size_t max_len);

/* The page the query asks for (limit, after); on a bad value it answers 400
 * and returns false. */
bool rq_page(struct request *rq, struct store_page *page);
/* {"items": items, "next": next or null}; takes items over. */
json_t *list_json(json_t *items, const char *next);

/* RFC 3339 UTC, or JSON null for 0. */
json_t *time_json(int64_t t);

/*
 * A token's use is recorded once per token per TOKEN_USE_INTERVAL: the
 * first request in that time sets last_used and writes one token.use row
 * (method and path of that request); the others write nothing for it.
 * Every change is audited in its own row with the token as actor anyway.
 */
#define TOKEN_USE_INTERVAL 3600
/* Run fn in the committer together with the token's use when it is due,
 * so that both are in one transaction. */
int rq_commit(struct request *rq, commit_fn fn, void *arg, struct smime_error *err);
/* Record the token use alone when it is due (requests that change nothing). */
void rq_record_use(struct request *rq);
/* Append an audit row inside tx: actor is rq->actor or "system".  Takes
 * detail (a new reference, or NULL) over.  The row concerns the user named
 * by detail's "user" (an id), else, for a user.* or archive.* action, the
 * user whose id is object: `smime admin audit --user` finds it by that. */
int audit_row(struct service *svc, struct store_tx *tx, const char *actor, const char *action, const char *object,
    json_t *detail, struct smime_error *err);

/* An email address as the service keeps it: lower-case, at most 254
 * characters, a local part of letters, digits and ._%+-'!#$&=?^`{|}~/ and a
 * domain of dotted labels.  Characters that directory filters treat as
 * syntax (* ( ) \ NUL) are refused.  On failure *why_r says why. */
#define API_MAX_EMAIL 254
bool api_email(const char *in, char out[API_MAX_EMAIL + 1], const char **why_r);
/* Display names and descriptions: valid UTF-8 without control characters. */
bool api_text(const char *s, size_t max_len);
/* True when s[0..n) is valid UTF-8 (RFC 3629: shortest forms, no surrogates). */
bool api_utf8(const char *s, size_t n);
/* Decode base64 (RFC 4648; white space ignored, '=' only at the end) of at
 * most max octets into *out_r (caller frees). */
int api_base64(const char *in, unsigned char **out_r, size_t *len_r, size_t max,
    struct smime_error *err);
#define API_MAX_CURSOR 600        /* octets of a page cursor (a group name in hex and more) */

/* A certificate's DER as PEM text (caller frees), or NULL.  The DER is
 * encoded, not parsed: it comes from the store, which took it parsed. */
char *api_cert_pem(const unsigned char *der, size_t len);

/* in[n] in lower-case hex into out (2n + 1 octets, NUL-terminated). */
void api_hex(const unsigned char *in, size_t n, char *out);
/* A slug: CA ids and profile names, [a-z0-9][a-z0-9-]{0,63}. */
bool api_slug(const char *s);
/* A certificate named by its SHA-256 fingerprint (64 hexadecimal digits,
 * put in lower case) or its serial (ca_serial_parse), into out as a key
 * for cert_get.  SMIME_E_INPUT with err set for anything else. */
int api_cert_name(const char *in, char out[STORE_SERIAL_SIZE], struct smime_error *err);
/* data[len] in base64, NUL-terminated (caller frees), or NULL. */
char *api_base64_encode(const void *data, size_t len);
/* keys[i] with certs[i] (and extra, may be NULL) as a PKCS#12 (AES-256)
 * under password, in base64; caller cleanses and frees.  NULL with err. */
char *api_pkcs12_b64(EVP_PKEY **keys, X509 **certs, size_t n, STACK_OF(X509) *extra,
    const char *password, const char *name, struct smime_error *err);

/* JSON of the records, as docs/openapi.yaml describes them. */
json_t *user_json(const struct store_user *u);
json_t *cert_json(const struct store_cert *c, bool with_pem);

/* The PEM chain of ca_id: the CA, then its parents up to the root. */
int api_chain_pem(struct service *svc, struct store_tx *tx, const char *ca_id, char **pem_r,
    struct smime_error *err);

/*
 * The GET handlers of one record and of a small table are all alike: read
 * in one transaction with the store's getter (lister), answer 200 with the
 * record's JSON (every record's, as {"items":[...]}) or the store's error,
 * and free what was read.
 */
#define ANSWER_RECORD(rq, type, getter, key, to_json, clear) do { \
		type rec_ = { 0 }; \
		struct smime_error err_; \
		struct store_tx *tx_ = rq_read(rq); \
		if (tx_ == NULL) \
			break; \
		int rc_ = (rq)->svc->be->getter(tx_, (key), &rec_, &err_); \
		(rq)->svc->be->rollback(tx_); \
		if (rc_ != 0) \
			reply_smime((rq), &err_); \
		else \
			reply_json((rq), 200, to_json(&rec_)); \
		clear(&rec_); \
	} while (0)

/*
 * Add user_email, user_name and device_name beside the "user" and "device"
 * ids of obj (api_names.c); ids that name nothing add nothing.
 */
void api_names(struct service *svc, struct store_tx *tx, json_t *obj);

/* ANSWER_RECORD with the names beside the ids (api_names). */
#define ANSWER_RECORD_NAMED(rq, type, getter, key, to_json, clear) do { \
		type rec_ = { 0 }; \
		struct smime_error err_; \
		struct store_tx *tx_ = rq_read(rq); \
		json_t *j_ = NULL; \
		if (tx_ == NULL) \
			break; \
		int rc_ = (rq)->svc->be->getter(tx_, (key), &rec_, &err_); \
		if (rc_ == 0 && (j_ = to_json(&rec_)) != NULL) \
			api_names((rq)->svc, tx_, j_); \
		(rq)->svc->be->rollback(tx_); \
		if (rc_ != 0) \
			reply_smime((rq), &err_); \
		else \
			reply_json((rq), 200, j_); \
		clear(&rec_); \
	} while (0)

#define ANSWER_ALL(rq, type, lister, to_json, free_all) do { \
		type *v_ = NULL; \
		size_t n_ = 0; \
		struct smime_error err_; \
		struct store_tx *tx_ = rq_read(rq); \
		if (tx_ == NULL) \
			break; \
		int rc_ = (rq)->svc->be->lister(tx_, &v_, &n_, &err_); \
		(rq)->svc->be->rollback(tx_); \
		if (rc_ != 0) \
			reply_smime((rq), &err_); \
		else { \
			json_t *items_ = json_array(); \
			for (size_t i_ = 0; i_ < n_; i_++) \
				json_array_append_new(items_, to_json(&v_[i_])); \
			reply_json((rq), 200, json_pack("{s:o}", "items", items_)); \
		} \
		free_all(v_, n_); \
	} while (0)

/* One page of an unfiltered list (?limit, ?after), as {"items":[...],"next":...}. */
#define ANSWER_PAGE(rq, type, lister, to_json, free_all) do { \
		struct store_page page_; \
		type *v_ = NULL; \
		size_t n_ = 0; \
		char *next_ = NULL; \
		struct smime_error err_; \
		struct store_tx *tx_; \
		if (!rq_page((rq), &page_) || (tx_ = rq_read(rq)) == NULL) \
			break; \
		int rc_ = (rq)->svc->be->lister(tx_, &page_, &v_, &n_, &next_, &err_); \
		(rq)->svc->be->rollback(tx_); \
		if (rc_ != 0) \
			reply_smime((rq), &err_); \
		else { \
			json_t *items_ = json_array(); \
			for (size_t i_ = 0; i_ < n_; i_++) \
				json_array_append_new(items_, to_json(&v_[i_])); \
			reply_json((rq), 200, list_json(items_, next_)); \
		} \
		free_all(v_, n_); \
		free(next_); \
	} while (0)

/* Begin a read transaction; on failure answers 500 and returns NULL. */
struct store_tx *rq_read(struct request *rq);

/* Check Authorization: Bearer and the token's role against roles (a mask
 * of enum store_role).  A missing, unknown, revoked or expired token is
 * answered 401, a role not in roles 403; either way it returns false. */
bool api_authenticate(struct request *rq, unsigned roles);

/* Admin tokens: "smt_" ID(32 hex) "_" SECRET(64 hex). */
#define TOKEN_TEXT_SIZE 102
#define TOKEN_MAX_DAYS 3650           /* the longest expiry a token may be given */
/* Make a token record and its text, an admin that never expires unless
 * the caller changes it; the caller inserts the record. */
int token_make(const char *name, struct store_token *t_r, char text_r[TOKEN_TEXT_SIZE],
    struct smime_error *err);

/* Handlers, one file per API area. */
void h_healthz(struct request *rq);
void h_metrics(struct request *rq);
void h_ca_file(struct request *rq);
void h_crl_file(struct request *rq);
void h_ocsp_post(struct request *rq);
void h_ocsp_get(struct request *rq);
void h_scep(struct request *rq);
void h_device_scep_challenge(struct request *rq);
void h_scep_profiles_list(struct request *rq);
void h_scep_profiles_create(struct request *rq);
void h_scep_profile_get(struct request *rq);
void h_scep_profile_put(struct request *rq);
void h_scep_profile_delete(struct request *rq);
void h_scep_requests_list(struct request *rq);
void h_scep_request_get(struct request *rq);
void h_scep_request_approve(struct request *rq);
void h_scep_request_reject(struct request *rq);

void h_users_list(struct request *rq);
void h_users_create(struct request *rq);
void h_users_import(struct request *rq);
void h_user_get(struct request *rq);
void h_user_patch(struct request *rq);
void h_user_delete(struct request *rq);
void h_user_purge(struct request *rq);
void h_recovery_list(struct request *rq);
void h_recovery_get(struct request *rq);
void h_recovery_approve(struct request *rq);
void h_recovery_export(struct request *rq);
void h_groups_list(struct request *rq);
void h_groups_create(struct request *rq);
void h_group_get(struct request *rq);
void h_group_patch(struct request *rq);
void h_group_delete(struct request *rq);
void h_group_member_put(struct request *rq);
void h_group_member_delete(struct request *rq);

void h_devices_list(struct request *rq);
void h_devices_create(struct request *rq);
void h_device_get(struct request *rq);
void h_device_patch(struct request *rq);
void h_device_delete(struct request *rq);

void h_profiles_list(struct request *rq);
void h_profiles_create(struct request *rq);
void h_profile_get(struct request *rq);
void h_profile_put(struct request *rq);
void h_profile_delete(struct request *rq);
void h_cas_list(struct request *rq);
void h_cas_create(struct request *rq);
void h_ca_get(struct request *rq);
void h_ca_chain(struct request *rq);
void h_ca_crl(struct request *rq);

void h_certs_list(struct request *rq);
void h_certs_issue(struct request *rq);
void h_cert_get(struct request *rq);
void h_cert_revoke(struct request *rq);

void h_tokens_list(struct request *rq);
void h_tokens_create(struct request *rq);
void h_token_delete(struct request *rq);
void h_audit_list(struct request *rq);

void h_user_cert_import(struct request *rq);
void h_user_recover(struct request *rq);

void h_lookup(struct request *rq);

void h_cert_withdraw(struct request *rq);

void h_trust_list(struct request *rq);
void h_trust_import(struct request *rq);
void h_trust_delete(struct request *rq);
void h_distrust_list(struct request *rq);
void h_distrust_import(struct request *rq);
void h_distrust_delete(struct request *rq);

void h_directory_get(struct request *rq);
void h_directory_sync(struct request *rq);
/* Queue every user with a certificate for publication, inside tx (after a
 * change of the trust collection, which changes what may be published). */
int api_publish_all(struct store_tx *tx, struct service *svc, struct smime_error *err);

#endif

/*
 * smimed: the HTTP front end on libmicrohttpd.
 *
 * Requests are read whole (each route has a body limit, checked against
 * Content-Length before reading and while reading), matched against one
 * route table, authenticated when the route needs it, and handed to one
 * handler.  The same table answers `smimed --routes`, which the test of
 * docs/openapi.yaml compares with the document.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "api.h"
#include "cleanse.h"

#include <smime/scep.h>

enum body { BODY_NONE, BODY_JSON, BODY_IMPORT, BODY_OCSP, BODY_SCEP };

/*
 * Who may call a route: the roles of admin tokens (enum store_role), or
 * R_PUBLIC for no token at all.  This table is the one place that says
 * it; `smimed --routes` prints it and docs/openapi.yaml repeats it as each
 * operation's x-roles.  A route that names no role is refused to every
 * token (and tests/integration/roles.sh fails on it).
 *
 * What each role may read follows from what it must do:
 *   operator  everything it manages and the configuration it issues
 *             under (profiles, CAs, trust, directory); not the tokens or
 *             the audit log
 *   recovery  one user (to find whom to recover) and certificates (to
 *             choose a key by serial); no list of users, groups, devices
 *   auditor   every read, the token list and the audit log included
 */
#define R_PUBLIC 0x100u
#define R_ADMIN ((unsigned)ROLE_ADMIN)
#define R_WRITE (R_ADMIN | ROLE_OPERATOR)                   /* what operators manage */
#define R_READ (R_WRITE | ROLE_AUDITOR)                     /* reading it */
#define R_FIND (R_READ | ROLE_RECOVERY)                     /* and recovery's look-ups */
#define R_RECOVER (R_ADMIN | ROLE_RECOVERY)
#define R_AUDIT (R_ADMIN | ROLE_AUDITOR)

static const struct route {
	const char *method;
	const char *pattern;      /* "{x}" matches one segment; a final "{x*}" the rest */
	api_handler fn;
	unsigned roles;           /* R_PUBLIC, or the roles whose tokens may call it */
	enum body body;
	bool main_only;           /* not on the plain-HTTP public listener */
} routes[] = {
	{ "GET", "/healthz", h_healthz, R_PUBLIC, BODY_NONE, false },
	{ "GET", "/metrics", h_metrics, R_PUBLIC, BODY_NONE, true },
	{ "GET", "/ca/{file}", h_ca_file, R_PUBLIC, BODY_NONE, false },
	{ "GET", "/crl/{file}", h_crl_file, R_PUBLIC, BODY_NONE, false },
	{ "POST", "/ocsp/{ca}", h_ocsp_post, R_PUBLIC, BODY_OCSP, false },
	{ "GET", "/ocsp/{ca}/{request*}", h_ocsp_get, R_PUBLIC, BODY_NONE, false },
	{ "GET", "/api/v1/lookup", h_lookup, R_PUBLIC, BODY_NONE, false },
	{ "GET", "/scep", h_scep, R_PUBLIC, BODY_NONE, false },
	{ "POST", "/scep", h_scep, R_PUBLIC, BODY_SCEP, false },
	{ "GET", "/cgi-bin/pkiclient.exe", h_scep, R_PUBLIC, BODY_NONE, false },
	{ "POST", "/cgi-bin/pkiclient.exe", h_scep, R_PUBLIC, BODY_SCEP, false },

	{ "GET", "/api/v1/users", h_users_list, R_READ, BODY_NONE, false },
	{ "POST", "/api/v1/users", h_users_create, R_WRITE, BODY_JSON, false },
	{ "POST", "/api/v1/users/import", h_users_import, R_WRITE, BODY_IMPORT, false },
	{ "GET", "/api/v1/users/{user}", h_user_get, R_FIND, BODY_NONE, false },
	{ "PATCH", "/api/v1/users/{user}", h_user_patch, R_WRITE, BODY_JSON, false },
	{ "DELETE", "/api/v1/users/{user}", h_user_delete, R_WRITE, BODY_NONE, false },
	{ "POST", "/api/v1/users/{user}/certificates/import", h_user_cert_import, R_WRITE,
	  BODY_IMPORT, false },
	{ "POST", "/api/v1/users/{user}/recover", h_user_recover, R_RECOVER, BODY_JSON, false },
	{ "POST", "/api/v1/users/{user}/purge", h_user_purge, R_ADMIN, BODY_JSON, false },
	{ "GET", "/api/v1/recovery-requests", h_recovery_list, R_RECOVER | ROLE_AUDITOR, BODY_NONE,
	  false },
	{ "GET", "/api/v1/recovery-requests/{request}", h_recovery_get, R_RECOVER | ROLE_AUDITOR,
	  BODY_NONE, false },
	{ "POST", "/api/v1/recovery-requests/{request}/approve", h_recovery_approve, R_RECOVER,
	  BODY_NONE, false },
	{ "POST", "/api/v1/recovery-requests/{request}/export", h_recovery_export, R_RECOVER,
	  BODY_JSON, false },
	{ "GET", "/api/v1/groups", h_groups_list, R_READ, BODY_NONE, false },
	{ "POST", "/api/v1/groups", h_groups_create, R_WRITE, BODY_JSON, false },
	{ "GET", "/api/v1/groups/{group}", h_group_get, R_READ, BODY_NONE, false },
	{ "PATCH", "/api/v1/groups/{group}", h_group_patch, R_WRITE, BODY_JSON, false },
	{ "DELETE", "/api/v1/groups/{group}", h_group_delete, R_WRITE, BODY_NONE, false },
	{ "PUT", "/api/v1/groups/{group}/members/{user}", h_group_member_put, R_WRITE,
	  BODY_NONE, false },
	{ "DELETE", "/api/v1/groups/{group}/members/{user}", h_group_member_delete, R_WRITE,
	  BODY_NONE, false },
	{ "GET", "/api/v1/devices", h_devices_list, R_READ, BODY_NONE, false },
	{ "POST", "/api/v1/devices", h_devices_create, R_WRITE, BODY_JSON, false },
	{ "GET", "/api/v1/devices/{device}", h_device_get, R_READ, BODY_NONE, false },
	{ "PATCH", "/api/v1/devices/{device}", h_device_patch, R_WRITE, BODY_JSON, false },
	{ "DELETE", "/api/v1/devices/{device}", h_device_delete, R_WRITE, BODY_NONE, false },
	{ "POST", "/api/v1/devices/{device}/scep-challenge", h_device_scep_challenge, R_WRITE,
	  BODY_JSON, false },
	{ "GET", "/api/v1/profiles", h_profiles_list, R_READ, BODY_NONE, false },
	{ "POST", "/api/v1/profiles", h_profiles_create, R_ADMIN, BODY_JSON, false },
	{ "GET", "/api/v1/profiles/{profile}", h_profile_get, R_READ, BODY_NONE, false },
	{ "PUT", "/api/v1/profiles/{profile}", h_profile_put, R_ADMIN, BODY_JSON, false },
	{ "DELETE", "/api/v1/profiles/{profile}", h_profile_delete, R_ADMIN, BODY_NONE, false },
	{ "GET", "/api/v1/scep-profiles", h_scep_profiles_list, R_READ, BODY_NONE, false },
	{ "POST", "/api/v1/scep-profiles", h_scep_profiles_create, R_ADMIN, BODY_JSON, false },
	{ "GET", "/api/v1/scep-profiles/{profile}", h_scep_profile_get, R_READ, BODY_NONE, false },
	{ "PUT", "/api/v1/scep-profiles/{profile}", h_scep_profile_put, R_ADMIN, BODY_JSON, false },
	{ "DELETE", "/api/v1/scep-profiles/{profile}", h_scep_profile_delete, R_ADMIN,
	  BODY_NONE, false },
	{ "GET", "/api/v1/scep/requests", h_scep_requests_list, R_READ, BODY_NONE, false },
	{ "GET", "/api/v1/scep/requests/{transaction}", h_scep_request_get, R_READ,
	  BODY_NONE, false },
	{ "POST", "/api/v1/scep/requests/{transaction}/approve", h_scep_request_approve, R_WRITE,
	  BODY_JSON, false },
	{ "POST", "/api/v1/scep/requests/{transaction}/reject", h_scep_request_reject, R_WRITE,
	  BODY_JSON, false },
	{ "GET", "/api/v1/cas", h_cas_list, R_READ, BODY_NONE, false },
	{ "POST", "/api/v1/cas", h_cas_create, R_ADMIN, BODY_JSON, false },
	{ "GET", "/api/v1/cas/{ca}", h_ca_get, R_READ, BODY_NONE, false },
	{ "GET", "/api/v1/cas/{ca}/chain", h_ca_chain, R_READ, BODY_NONE, false },
	{ "POST", "/api/v1/cas/{ca}/crl", h_ca_crl, R_WRITE, BODY_NONE, false },
	{ "GET", "/api/v1/certificates", h_certs_list, R_FIND, BODY_NONE, false },
	{ "POST", "/api/v1/certificates", h_certs_issue, R_WRITE, BODY_JSON, false },
	{ "GET", "/api/v1/certificates/{serial}", h_cert_get, R_FIND, BODY_NONE, false },
	{ "POST", "/api/v1/certificates/{serial}/revoke", h_cert_revoke, R_WRITE,
	  BODY_JSON, false },
	{ "POST", "/api/v1/certificates/{serial}/withdraw", h_cert_withdraw, R_WRITE,
	  BODY_NONE, false },
	{ "GET", "/api/v1/tokens", h_tokens_list, R_AUDIT, BODY_NONE, false },
	{ "POST", "/api/v1/tokens", h_tokens_create, R_ADMIN, BODY_JSON, false },
	{ "DELETE", "/api/v1/tokens/{token}", h_token_delete, R_ADMIN, BODY_NONE, false },
	{ "GET", "/api/v1/audit", h_audit_list, R_AUDIT, BODY_NONE, false },
	{ "GET", "/api/v1/trust", h_trust_list, R_READ, BODY_NONE, false },
	{ "POST", "/api/v1/trust", h_trust_import, R_ADMIN, BODY_IMPORT, false },
	{ "DELETE", "/api/v1/trust/{sha256}", h_trust_delete, R_ADMIN, BODY_NONE, false },
	{ "GET", "/api/v1/distrust", h_distrust_list, R_READ, BODY_NONE, false },
	{ "POST", "/api/v1/distrust", h_distrust_import, R_ADMIN, BODY_IMPORT, false },
	{ "DELETE", "/api/v1/distrust/{sha256}", h_distrust_delete, R_ADMIN, BODY_NONE, false },
	{ "GET", "/api/v1/directory", h_directory_get, R_READ, BODY_NONE, false },
	{ "POST", "/api/v1/directory/sync", h_directory_sync, R_WRITE, BODY_NONE, false },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

#define PATH_MAX_LEN 4096

struct http;

/* One listening daemon: the main one, or the plain-HTTP one that serves the
 * public routes alone (public_listen). */
struct listener {
	struct http *h;
	struct MHD_Daemon *d;
	bool public_only;
};

struct http {
	struct service *svc;
	struct listener main, pub;
	_Atomic long active;
	_Atomic size_t buffered;      /* octets of request bodies held now */
	size_t buffered_max;
	char *tls_cert, *tls_key;
};

static uint64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* "public", "admin,operator", or "none" for a route that names no role. */
static void
print_roles(FILE *f, unsigned roles)
{
	static const enum store_role all[] = { ROLE_ADMIN, ROLE_OPERATOR, ROLE_RECOVERY,
		ROLE_AUDITOR };
	bool first = true;

	if (roles & R_PUBLIC) {
		fputs("public", f);
		return;
	}
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (roles & all[i]) {
			fprintf(f, "%s%s", first ? "" : ",", store_role_name(all[i]));
			first = false;
		}
	if (first)
		fputs("none", f);
}

void
http_print_routes(FILE *f)
{
	for (size_t i = 0; i < NROUTES; i++) {
		/* The document writes "{x}" for the rest-of-path parameter too. */
		char buf[256];
		const char *star = strstr(routes[i].pattern, "*}");
		if (star != NULL)
			snprintf(buf, sizeof(buf), "%.*s}", (int)(star - routes[i].pattern),
			    routes[i].pattern);
		else
			snprintf(buf, sizeof(buf), "%s", routes[i].pattern);
		fprintf(f, "%s %s ", routes[i].method, buf);
		print_roles(f, routes[i].roles);
		fputc('\n', f);
	}
}

/* Match path against pattern; fill params (copies) when it matches. */
static bool
match(const char *pattern, const char *path, char **params, size_t *n_r)
{
	const char *p = pattern, *s = path;
	size_t n = 0;

	while (*p != '\0') {
		if (*p == '{') {
			const char *close = strchr(p, '}');
			bool rest = close[-1] == '*';
			const char *end = rest ? s + strlen(s) : s + strcspn(s, "/");
			if (end == s || n >= API_MAX_PARAMS)
				goto fail;
			params[n] = strndup(s, (size_t)(end - s));
			if (params[n] == NULL)
				goto fail;
			n++;
			s = end;
			p = close + 1;
		} else if (*p++ != *s++)
			goto fail;
	}
	if (*s != '\0')
		goto fail;
	*n_r = n;
	return true;
fail:
	for (size_t i = 0; i < n; i++) {
		free(params[i]);
		params[i] = NULL;
	}
	return false;
}

static void
set_response(struct request *rq, int status, struct MHD_Response *resp)
{
	if (rq->resp != NULL)
		MHD_destroy_response(rq->resp);
	rq->resp = resp;
	rq->status = status;
}

static void
add_headers(struct MHD_Response *resp, const char *content_type, const char *cache)
{
	MHD_add_response_header(resp, "Content-Type", content_type);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Cache-Control", cache);
}

void
reply_data(struct request *rq, int status, const char *content_type, const void *data, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return;
	add_headers(resp, content_type, "no-store");
	set_response(rq, status, resp);
}

void
reply_public(struct request *rq, const char *content_type, const void *data, size_t len,
    long max_age)
{
	char cache[64];
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return;
	/* RFC 5019 6.2: caches may keep public PKI objects for a while. */
	snprintf(cache, sizeof(cache), "public, max-age=%ld", max_age > 0 ? max_age : 0);
	add_headers(resp, content_type, cache);
	set_response(rq, 200, resp);
}

void
reply_empty(struct request *rq, int status)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (resp != NULL)
		set_response(rq, status, resp);
}

void
reply_json(struct request *rq, int status, json_t *j)
{
	char *text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (text == NULL) {
		static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
		reply_data(rq, 500, "application/json", oom, sizeof(oom) - 1);
		return;
	}
	size_t len = strlen(text);
	/* Answers may carry secrets (a new token, a PKCS#12): wiped when sent. */
	struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, text,
	    cleansing_free);
	if (resp == NULL) {
		cleansing_free(text);
		return;
	}
	add_headers(resp, "application/json", "no-store");
	if (status == 401)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"smimed\"");
	set_response(rq, status, resp);
}

void
reply_error(struct request *rq, int status, const char *code, const char *fmt, ...)
{
	char msg[SMIME_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	text_scrub(msg);
	reply_json(rq, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

void
reply_smime(struct request *rq, const struct smime_error *err)
{
	switch (err->code) {
	case SMIME_E_INPUT:
	case SMIME_E_USAGE:
		reply_error(rq, 400, "bad-request", "%s", err->message);
		return;
	case SMIME_E_NOTFOUND:
		reply_error(rq, 404, "not-found", "%s", err->message);
		return;
	case SMIME_E_EXISTS:
		reply_error(rq, 409, "conflict", "%s", err->message);
		return;
	case SMIME_E_POLICY:
	case SMIME_E_BADSIG:
		reply_error(rq, 422, "unprocessable", "%s", err->message);
		return;
	default:
		/* Internals stay in the log; the client learns only that it failed. */
		log_event("error", "internal", "path", rq->path, "code", smime_code_name(err->code),
		    "message", err->message, NULL);
		if (err->code == SMIME_E_IO)
			atomic_fetch_add(&rq->svc->metrics.store_errors, 1);
		reply_error(rq, 500, "internal", "internal error (see the service log)");
	}
}

const char *
rq_query(struct request *rq, const char *key)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *
rq_header(struct request *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

/* Wipe and free a request's body, and give its octets back to the budget. */
static void
body_drop(struct http *h, struct request *rq)
{
	if (rq->body != NULL) {
		OPENSSL_cleanse(rq->body, rq->body_cap);
		free(rq->body);
		atomic_fetch_sub(&h->buffered, rq->body_cap);
	}
	rq->body = NULL;
	rq->body_len = rq->body_cap = 0;
}

static size_t
body_limit(const struct http *h, enum body b)
{
	switch (b) {
	case BODY_JSON: return (size_t)h->svc->cfg.max_body;
	case BODY_IMPORT: return (size_t)h->svc->cfg.max_import;
	case BODY_OCSP: return 8192;
	case BODY_SCEP: return SMIME_SCEP_MAX_MESSAGE;
	default: return 0;
	}
}

static void
dispatch(struct http *h, struct request *rq, const struct route *r)
{
	if (rq->body_too_large) {
		reply_error(rq, 413, "payload-too-large", "the body is larger than %zu octets",
		    rq->body_max);
		return;
	}
	if (r->body == BODY_NONE && rq->body_len > 0) {
		reply_error(rq, 400, "bad-request", "this request takes no body");
		return;
	}
	r->fn(rq);
	if (!(r->roles & R_PUBLIC) && rq->actor[0] != '\0' && !rq->token_use_recorded)
		rq_record_use(rq);
	if (rq->resp == NULL)
		reply_error(rq, 500, "internal", "no answer");
	(void)h;
}

/* Find the route: *r_r the match, or NULL with *status_r 404 or 405. */
static const struct route *
find_route(struct request *rq, const char *method, int *status_r, char *allow, size_t allow_size)
{
	bool path_known = false;
	allow[0] = '\0';
	for (size_t i = 0; i < NROUTES; i++) {
		char *params[API_MAX_PARAMS] = { 0 };
		size_t n = 0;
		if (!match(routes[i].pattern, rq->path, params, &n))
			continue;
		if (strcmp(routes[i].method, method) == 0) {
			memcpy(rq->params, params, sizeof(params));
			rq->n_params = n;
			return &routes[i];
		}
		for (size_t k = 0; k < n; k++)
			free(params[k]);
		/* A literal route listed earlier wins over a pattern for the same path. */
		path_known = true;
		if (strstr(allow, routes[i].method) == NULL) {
			size_t len = strlen(allow);
			snprintf(allow + len, allow_size - len, "%s%s", len ? ", " : "",
			    routes[i].method);
		}
	}
	*status_r = path_known ? 405 : 404;
	return NULL;
}

static void
client_address(struct MHD_Connection *conn, char *out, size_t size)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(out, size, "-");
	if (ci == NULL || ci->client_addr == NULL)
		return;
	socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	getnameinfo(ci->client_addr, len, out, (socklen_t)size, NULL, 0, NI_NUMERICHOST);
}

struct conn_state {
	struct request rq;
	const struct route *route;
	int early_status;      /* 404/405 found before the body */
	char allow[64];
	bool queued;
};

static enum MHD_Result
queue(struct request *rq)
{
	if (rq->resp == NULL)
		return MHD_NO;
	return MHD_queue_response(rq->conn, (unsigned int)rq->status, rq->resp);
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct listener *l = cls;
	struct http *h = l->h;
	struct conn_state *cs = *con_cls;

	(void)version;
	if (cs == NULL) {
		if ((cs = calloc(1, sizeof(*cs))) == NULL)
			return MHD_NO;
		*con_cls = cs;
		atomic_fetch_add(&h->active, 1);
		struct request *rq = &cs->rq;
		rq->svc = h->svc;
		rq->conn = conn;
		rq->method = method;
		rq->start_us = now_us();
		rq->path = strndup(url, PATH_MAX_LEN);
		client_address(conn, rq->client, sizeof(rq->client));
		if (rq->path == NULL)
			return MHD_NO;
		if (strlen(url) >= PATH_MAX_LEN) {
			rq->route = "-";
			reply_error(rq, 414, "bad-request", "the path is longer than %d octets",
			    PATH_MAX_LEN);
			cs->queued = true;
			return queue(rq);
		}
		cs->route = find_route(rq, method, &cs->early_status, cs->allow, sizeof(cs->allow));
		/* The plain-HTTP listener knows the public routes alone. */
		if (l->public_only && cs->route != NULL && (!(cs->route->roles & R_PUBLIC) ||
		    cs->route->main_only)) {
			cs->route = NULL;
			cs->early_status = 404;
		}
		rq->route = cs->route != NULL ? cs->route->pattern : "-";
		rq->body_max = cs->route != NULL ? body_limit(h, cs->route->body) : 0;
		/* Admin routes check the token and its role on the headers:
		 * without them, no body is read at all. */
		if (cs->route != NULL && !(cs->route->roles & R_PUBLIC) &&
		    !api_authenticate(rq, cs->route->roles)) {
			cs->queued = true;
			return queue(rq);
		}
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		unsigned long long want = cl != NULL ? strtoull(cl, NULL, 10) : 0;
		if (cs->route != NULL && want > 0 && rq->body_max == 0) {
			reply_error(rq, 400, "bad-request", "this request takes no body");
			cs->queued = true;
			return queue(rq);
		}
		if (cs->route != NULL && want > rq->body_max && rq->body_max > 0) {
			/* Refuse before reading what would be thrown away. */
			reply_error(rq, 413, "payload-too-large", "the body is larger than %zu octets",
			    rq->body_max);
			cs->queued = true;
			return queue(rq);
		}
		return MHD_YES;
	}
	struct request *rq = &cs->rq;
	if (cs->queued)
		return MHD_YES;
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (rq->body_too_large)
			return MHD_YES;
		size_t max = rq->body_max > 0 ? rq->body_max : 1024;
		if (rq->body_len + n > max) {
			body_drop(h, rq);
			rq->body_too_large = true;
			return MHD_YES;
		}
		if (rq->body_len + n + 1 > rq->body_cap) {
			/* Grow by doubling into a fresh buffer; the old one is wiped
			 * (bodies carry keys and passwords).  All bodies together stay
			 * under a budget, so that many slow uploads cannot take the
			 * memory. */
			size_t cap = rq->body_cap ? rq->body_cap * 2 : 4096;
			while (cap < rq->body_len + n + 1)
				cap *= 2;
			if (cap > max + 1)
				cap = max + 1;
			size_t grow = cap - rq->body_cap;
			if (atomic_fetch_add(&h->buffered, grow) + grow > h->buffered_max) {
				atomic_fetch_sub(&h->buffered, grow);
				body_drop(h, rq);
				rq->body_busy = true;
				return MHD_YES;
			}
			unsigned char *nb = malloc(cap);
			if (nb == NULL) {
				atomic_fetch_sub(&h->buffered, grow);
				return MHD_NO;
			}
			if (rq->body != NULL) {
				memcpy(nb, rq->body, rq->body_len);
				OPENSSL_cleanse(rq->body, rq->body_cap);
				free(rq->body);
			}
			rq->body = nb;
			rq->body_cap = cap;
		}
		memcpy(rq->body + rq->body_len, upload_data, n);
		rq->body_len += n;
		rq->body[rq->body_len] = '\0';
		return MHD_YES;
	}
	/* The whole request has arrived. */
	cs->queued = true;
	if (cs->route == NULL) {
		if (cs->early_status == 405) {
			reply_error(rq, 405, "method-not-allowed", "%s is not allowed here (allowed: %s)",
			    method, cs->allow);
			if (rq->resp != NULL)
				MHD_add_response_header(rq->resp, "Allow", cs->allow);
		} else
			reply_error(rq, 404, "not-found", "no such route: %s", rq->path);
	} else if (rq->body_too_large && rq->body_max == 0)
		reply_error(rq, 400, "bad-request", "this request takes no body");
	else if (rq->body_busy)
		reply_error(rq, 503, "unavailable", "too many uploads at once: try again");
	else
		dispatch(h, rq, cs->route);
	return queue(rq);
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http *h = cls;
	struct conn_state *cs = *con_cls;
	char status[8], ms[32];

	(void)conn;
	if (cs == NULL)
		return;
	struct request *rq = &cs->rq;
	uint64_t us = now_us() - rq->start_us;
	int st = rq->status != 0 ? rq->status : 0;
	metrics_observe(&h->svc->metrics, st, us);
	snprintf(status, sizeof(status), "%d", st);
	snprintf(ms, sizeof(ms), "%.3f", (double)us / 1000.0);
	/* OCSP GET paths carry the request: the route is enough for the log. */
	const char *path = rq->path == NULL ? "-" : strncmp(rq->path, "/ocsp/", 6) == 0 ?
	    rq->route : rq->path;
	log_event(toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "info" : "warn", "request",
	    "method", rq->method, "path", path, "status", status, "ms", ms,
	    "client", rq->client, "actor", rq->actor[0] ? rq->actor : "-",
	    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? NULL : "termination",
	    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? NULL : "incomplete", NULL);
	if (rq->resp != NULL)
		MHD_destroy_response(rq->resp);
	for (size_t i = 0; i < rq->n_params; i++)
		free(rq->params[i]);
	free(rq->path);
	body_drop(h, rq);
	free(cs);
	*con_cls = NULL;
	atomic_fetch_sub(&h->active, 1);
}

static void
secret_free(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static char *
slurp(const char *path, struct smime_error *err)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (f == NULL) {
		smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(1024 * 1024 + 1);
	if (buf != NULL) {
		len = fread(buf, 1, 1024 * 1024, f);
		buf[len] = '\0';
	}
	fclose(f);
	if (buf == NULL)
		smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	return buf;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) SMIME_PRINTF(2, 0);

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_event("warn", "http", "message", msg, NULL);
}

/* Parse ADDR:PORT (IPv6 in brackets) into ss. */
static int
parse_listen(const char *listen, struct sockaddr_storage *ss, bool *v6_r, struct smime_error *err)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	int port = atoi(colon + 1);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	if (host[0] == '[') {
		size_t n = strlen(host);
		memmove(host, host + 1, n);
		if (n >= 2 && host[n - 2] == ']')
			host[n - 2] = '\0';
	}
	*v6_r = false;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*v6_r = true;
	} else
		return smime_error_set(err, SMIME_E_USAGE, "listen: '%s' is not a numeric IPv4 or "
		    "IPv6 address", host);
	return 0;
}

static int
start_listener(struct http *h, struct listener *l, const char *listen, bool tls,
    unsigned int threads, struct smime_error *err)
{
	struct service *svc = h->svc;
	struct sockaddr_storage ss;
	bool v6;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
	    MHD_USE_ERROR_LOG;
	int rc;

	if ((rc = parse_listen(listen, &ss, &v6, err)) != 0)
		return rc;
	if (v6)
		flags |= MHD_USE_IPv6;
	if (tls)
		flags |= MHD_USE_TLS;
	struct MHD_OptionItem tls_opts[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key },
		{ MHD_OPTION_END, 0, NULL },
	};
	l->h = h;
	/* The logger first: libmicrohttpd logs the options after it with it, and
	 * warns (with its own logger) when it comes later. */
	l->d = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, l,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)svc->cfg.connection_limit,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)svc->cfg.per_ip_connection_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)svc->cfg.request_timeout,
	    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
	    MHD_OPTION_ARRAY, tls ? tls_opts : &tls_opts[2],
	    MHD_OPTION_END);
	if (l->d == NULL) {
		int e = errno;
		return smime_error_set(err, SMIME_E_IO, "cannot listen on %s: %s", listen,
		    e ? strerror(e) : "libmicrohttpd refused to start");
	}
	return 0;
}

static void
stop_listener(struct listener *l)
{
	if (l->d == NULL)
		return;
	MHD_socket s = MHD_quiesce_daemon(l->d);
	if (s != MHD_INVALID_SOCKET)
		close(s);
}

int
http_start(struct service *svc, struct http **h_r, struct smime_error *err)
{
	struct http *h = calloc(1, sizeof(*h));
	long threads = svc->cfg.http_threads;
	bool tls = *svc->cfg.tls_cert != '\0';
	int rc;

	if (h == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	h->svc = svc;
	h->buffered_max = (size_t)svc->cfg.max_buffered;
	/* A worker spends most of a write request waiting for its durable
	 * commit (the committer's fsync), not computing: with four per
	 * processor the SCEP benchmark left a third of the CPU idle. */
	if (threads == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		threads = cpus > 0 ? cpus * 16 : 32;
		if (threads < 32)
			threads = 32;
		if (threads > 256)
			threads = 256;
	}
	if (tls) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			free(h);
			return smime_error_set(err, SMIME_E_USAGE, "this libmicrohttpd has no TLS");
		}
		if ((h->tls_cert = slurp(svc->cfg.tls_cert, err)) == NULL ||
		    (h->tls_key = slurp(svc->cfg.tls_key, err)) == NULL) {
			rc = err->code;
			goto fail;
		}
	}
	if ((rc = start_listener(h, &h->main, svc->cfg.listen, tls, (unsigned int)threads,
	    err)) != 0)
		goto fail;
	h->pub.public_only = true;
	if (*svc->cfg.public_listen != '\0' && (rc = start_listener(h, &h->pub,
	    svc->cfg.public_listen, false, (unsigned int)(threads + 1) / 2, err)) != 0)
		goto fail;
	*h_r = h;
	return 0;
fail:
	if (h->main.d != NULL)
		MHD_stop_daemon(h->main.d);
	free(h->tls_cert);
	secret_free(h->tls_key);
	free(h);
	return rc;
}

void
http_stop(struct http *h, long grace)
{
	if (h == NULL)
		return;
	stop_listener(&h->main);
	stop_listener(&h->pub);
	for (long i = 0; i < grace * 10 && atomic_load(&h->active) > 0; i++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	MHD_stop_daemon(h->main.d);
	if (h->pub.d != NULL)
		MHD_stop_daemon(h->pub.d);
	free(h->tls_cert);
	secret_free(h->tls_key);
	free(h);
}

/*
 * smime admin: the HTTP client of smimed's REST API (docs/openapi.yaml).
 *
 * One connection per command (struct admin_conn), kept alive across the
 * pages of a list and the chunks of an import.  The admin token goes in
 * the Authorization header only: never in a URL, a message or a file we
 * write.  Answers are bounded (ADMIN_ANSWER_MAX), redirects are never
 * followed, and only http and https are spoken.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "cli.h"

#define ADMIN_DEFAULT_SERVER "http://127.0.0.1:8080"
#define ADMIN_ANSWER_MAX (64u * 1024 * 1024)
#define ADMIN_CONNECT_TIMEOUT 10L       /* seconds */
#define ADMIN_TIMEOUT 300L              /* seconds, the whole exchange */
#define ADMIN_URL_MAX 8192
#define ADMIN_PAGE_LIMIT 1000           /* the API's maximum page */
#define ADMIN_MAX_PAGES 100000          /* a service that never ends a list */
#define ADMIN_TOKEN_MAX 1024

struct admin_conn {
	CURL *curl;
	char *base;                      /* the server's URL, no trailing '/' */
	char *token;                     /* the secret; cleansed on free */
	const char *cacert;              /* NULL: the system's CAs */
	char errbuf[CURL_ERROR_SIZE];
};

/* A growing buffer that never leaves a copy of what it held behind. */
struct sbuf {
	char *data;
	size_t len, cap, max;
	bool too_large;
};

static void
sbuf_free(struct sbuf *b)
{
	if (b->data != NULL) {
		OPENSSL_cleanse(b->data, b->cap);
		free(b->data);
	}
	memset(b, 0, sizeof(*b));
}

static bool
sbuf_add(struct sbuf *b, const void *p, size_t n)
{
	if (n > b->max - b->len) {
		b->too_large = true;
		return false;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *d = malloc(cap);
		if (d == NULL)
			return false;
		if (b->data != NULL) {
			memcpy(d, b->data, b->len);
			OPENSSL_cleanse(b->data, b->cap);
			free(b->data);
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return true;
}

void
admin_reply_free(struct admin_reply *r)
{
	if (r->data != NULL) {
		OPENSSL_cleanse(r->data, r->len);
		free(r->data);
	}
	memset(r, 0, sizeof(*r));
}

int
admin_exit_for_status(long status)
{
	switch (status) {
	case 400: case 413: case 415: return EXIT_MALFORMED;
	case 401: case 403: return EXIT_POLICY;
	case 404: return EXIT_NOKEY;
	case 409: case 422: return EXIT_POLICY;
	case 429: return EXIT_IO;
	default: return status >= 400 && status < 500 ? EXIT_MALFORMED : EXIT_IO;
	}
}

/* What is printed of a string from the service: no control characters. */
void
admin_sanitize(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
}

int
admin_error(int exit, const char *code, long http, const char *fmt, ...)
{
	char msg[SMIME_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (g.json) {
		json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
		json_t *e = json_object_get(j, "error");
		if (http != 0)
			json_object_set_new(e, "http", json_integer(http));
		json_object_set_new(e, "exit", json_integer(exit));
		json_err(j);
	} else {
		admin_sanitize(msg);
		if (http != 0)
			fprintf(stderr, "smime admin: %s (HTTP %ld)\n", msg, http);
		else
			fprintf(stderr, "smime admin: %s\n", msg);
	}
	return exit;
}

/* The error the service sent, or a message made from the status. */
static int
status_error(long status, const struct sbuf *body)
{
	json_t *j = body->len > 0 ? json_loadb(body->data, body->len, 0, NULL) : NULL;
	json_t *e = json_object_get(j, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *message = json_string_value(json_object_get(e, "message"));
	int rc;

	if (message == NULL) {
		switch (status) {
		case 401: message = "the token was refused (unknown or revoked)"; break;
		case 403: message = "not allowed"; break;
		case 404: message = "not found"; break;
		case 429: message = "too many requests: try again later"; break;
		default:
			message = status >= 500 ? "the service failed" : "the request was refused";
		}
	}
	if (code == NULL)
		code = status >= 500 ? "internal" : "http";
	rc = admin_error(admin_exit_for_status(status), code, status, "%s", message);
	json_decref(j);
	return rc;
}

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct sbuf *b = arg;

	/* Returning less than given aborts the transfer. */
	return sbuf_add(b, p, size * n) ? size * n : 0;
}

static bool
is_loopback(const char *host)
{
	if (strncmp(host, "127.", 4) == 0)
		return strspn(host, "0123456789.") == strlen(host);
	return strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
	    strcmp(host, "::1") == 0;
}

/* Check the server URL and warn when the token would cross a network in clear. */
static int
check_server(const char *url)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL;
	int rc = EXIT_OK;

	for (const char *p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return admin_error(EXIT_USAGE, "usage", 0, "--server: a URL without spaces or "
			    "control characters, e.g. %s", ADMIN_DEFAULT_SERVER);
	if ((u = curl_url()) == NULL)
		return admin_error(EXIT_IO, "internal", 0, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		rc = admin_error(EXIT_USAGE, "usage", 0, "--server: '%s' is not an http:// or "
		    "https:// URL, e.g. %s", url, ADMIN_DEFAULT_SERVER);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
		rc = admin_error(EXIT_USAGE, "usage", 0, "--server: the URL of the service, without "
		    "a user name or query (the token goes in --token-file)");
		goto out;
	}
	if (strcmp(scheme, "http") == 0 && !is_loopback(host) && !g.quiet)
		fprintf(stderr, "smime admin: warning: the admin token goes to %s over http:// "
		    "in clear; use https:// for a service on another machine\n", host);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}

static int
load_token(const char *token_file, char **token_r)
{
	struct smime_error err;
	const char *env = getenv("SMIME_TOKEN"), *env_file = getenv("SMIME_TOKEN_FILE");
	char *t = NULL;

	*token_r = NULL;
	if (token_file != NULL || (env == NULL && env_file != NULL && env_file[0] != '\0')) {
		const char *path = token_file != NULL ? token_file : env_file;
		if ((t = read_secret_file(path, &err)) == NULL)
			return fail("admin", &err);
	} else if (env != NULL && env[0] != '\0') {
		if ((t = strdup(env)) == NULL)
			return admin_error(EXIT_IO, "internal", 0, "out of memory");
	} else {
		return admin_error(EXIT_USAGE, "usage", 0, "no admin token: give --token-file FILE, "
		    "or set SMIME_TOKEN (the token) or SMIME_TOKEN_FILE (a file holding it); "
		    "smimed writes the first one to DATA/admin.token");
	}
	/* It becomes a header line: printable ASCII only, nothing that ends it. */
	size_t n = strlen(t);
	bool ok = n > 0 && n <= ADMIN_TOKEN_MAX;
	for (size_t i = 0; ok && i < n; i++)
		ok = t[i] > 0x20 && t[i] < 0x7f;
	if (!ok) {
		secret_free(t);
		return admin_error(EXIT_USAGE, "usage", 0, "the admin token is empty, too long, or "
		    "holds spaces or control characters");
	}
	*token_r = t;
	return EXIT_OK;
}

int
admin_conn_new(const struct admin_options *o, struct admin_conn **c_r)
{
	struct admin_conn *c;
	const char *server = o->server, *cacert = o->cacert;
	int rc;

	*c_r = NULL;
	if (server == NULL && (server = getenv("SMIME_SERVER")) != NULL && server[0] == '\0')
		server = NULL;
	if (server == NULL)
		server = ADMIN_DEFAULT_SERVER;
	if (cacert == NULL && (cacert = getenv("SMIME_CACERT")) != NULL && cacert[0] == '\0')
		cacert = NULL;
	if ((rc = check_server(server)) != EXIT_OK)
		return rc;
	if (cacert != NULL) {
		FILE *f = fopen(cacert, "r");
		if (f == NULL)
			return admin_error(EXIT_IO, "io", 0, "--cacert %s: %s", cacert, strerror(errno));
		fclose(f);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return admin_error(EXIT_IO, "internal", 0, "out of memory");
	c->cacert = cacert;
	if ((rc = load_token(o->token_file, &c->token)) != EXIT_OK) {
		admin_conn_free(c);
		return rc;
	}
	c->base = strdup(server);
	c->curl = curl_easy_init();
	if (c->base == NULL || c->curl == NULL) {
		admin_conn_free(c);
		return admin_error(EXIT_IO, "internal", 0, "out of memory");
	}
	for (size_t n = strlen(c->base); n > 0 && c->base[n - 1] == '/'; n--)
		c->base[n - 1] = '\0';
	*c_r = c;
	return EXIT_OK;
}

void
admin_conn_free(struct admin_conn *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL) {
		/* Remove the token from the handle before it is freed. */
		curl_easy_reset(c->curl);
		curl_easy_cleanup(c->curl);
	}
	secret_free(c->token);
	free(c->base);
	free(c);
}

/* Why curl failed, for someone who has to fix it. */
static int
transport_error(struct admin_conn *c, CURLcode cc, const struct sbuf *body)
{
	const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc);

	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		return admin_error(EXIT_IO, "io", 0, "cannot connect to %s: %s (is smimed running? "
		    "--server or SMIME_SERVER names it)", c->base, detail);
	case CURLE_OPERATION_TIMEDOUT:
		return admin_error(EXIT_IO, "io", 0, "%s did not answer in time: %s", c->base, detail);
	case CURLE_FILESIZE_EXCEEDED:
		return admin_error(EXIT_IO, "io", 0, "the answer of %s is larger than %u MiB",
		    c->base, ADMIN_ANSWER_MAX >> 20);
	case CURLE_WRITE_ERROR:
		if (body->too_large)
			return admin_error(EXIT_IO, "io", 0, "the answer of %s is larger than %u MiB",
			    c->base, ADMIN_ANSWER_MAX >> 20);
		return admin_error(EXIT_IO, "internal", 0, "out of memory");
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
		return admin_error(EXIT_IO, "io", 0, "TLS with %s failed: %s (a service with a private "
		    "CA needs --cacert FILE or SMIME_CACERT)", c->base, detail);
	case CURLE_UNSUPPORTED_PROTOCOL:
		return admin_error(EXIT_USAGE, "usage", 0, "%s: only http:// and https:// are spoken",
		    c->base);
	default:
		return admin_error(EXIT_IO, "io", 0, "%s: %s", c->base, detail);
	}
}

int
admin_request(struct admin_conn *c, const char *method, const char *path, const char *accept,
    const char *type, const void *body, size_t len, struct admin_reply *r)
{
	struct curl_slist *headers = NULL, *h;
	struct sbuf answer = { .max = ADMIN_ANSWER_MAX };
	char url[ADMIN_URL_MAX], ctype[160], acc[160];
	long status = 0;
	CURLcode cc;
	int rc;

	memset(r, 0, sizeof(*r));
	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->base, path) >= sizeof(url))
		return admin_error(EXIT_USAGE, "usage", 0, "the request's URL is longer than %d bytes",
		    ADMIN_URL_MAX);
	/* Everything is set anew for each request; the connection stays open. */
	curl_easy_reset(c->curl);
	c->errbuf[0] = '\0';
	snprintf(acc, sizeof(acc), "Accept: %s", accept != NULL ? accept : "application/json");
	h = curl_slist_append(headers, acc);
	if (h != NULL)
		headers = h;
	if (h != NULL) {
		/* "Content-Type:" alone: none, not curl's form type, for an empty body. */
		snprintf(ctype, sizeof(ctype), "Content-Type:%s%s", type ? " " : "", type ? type : "");
		if ((h = curl_slist_append(headers, ctype)) != NULL)
			headers = h;
	}
	/* No "Expect: 100-continue" round trip before a large import. */
	if (h != NULL && (h = curl_slist_append(headers, "Expect:")) != NULL)
		headers = h;
	if (h == NULL) {
		curl_slist_free_all(headers);
		return admin_error(EXIT_IO, "internal", 0, "out of memory");
	}
	if (curl_easy_setopt(c->curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, ADMIN_CONNECT_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, ADMIN_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_MAXFILESIZE_LARGE,
	        (curl_off_t)ADMIN_ANSWER_MAX) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "smime/" SMIME_VERSION) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_XOAUTH2_BEARER, c->token) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &answer) != CURLE_OK ||
	    (c->cacert != NULL &&
	     curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->cacert) != CURLE_OK)) {
		curl_slist_free_all(headers);
		return admin_error(EXIT_IO, "internal", 0, "libcurl refused an option: %s",
		    c->errbuf[0] ? c->errbuf : "(no detail)");
	}
	if (body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	    strcmp(method, "PATCH") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body != NULL ? body : "");
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);

	cc = curl_easy_perform(c->curl);
	curl_slist_free_all(headers);
	if (cc != CURLE_OK) {
		rc = transport_error(c, cc, &answer);
		sbuf_free(&answer);
		return rc;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 300 && status < 400) {
		char *loc = NULL;
		curl_easy_getinfo(c->curl, CURLINFO_REDIRECT_URL, &loc);
		rc = admin_error(EXIT_IO, "redirect", status, "%s redirects to %s; redirects are not "
		    "followed: give that URL with --server", c->base, loc != NULL ? loc : "elsewhere");
	} else if (status < 200 || status >= 300) {
		rc = status_error(status, &answer);
	} else {
		r->status = status;
		/* Handed over: the buffer is the reply's now. */
		r->data = answer.data;
		r->len = answer.len;
		answer.data = NULL;
		rc = EXIT_OK;
	}
	sbuf_free(&answer);
	return rc;
}

int
admin_call(struct admin_conn *c, const char *method, const char *path, json_t *body,
    json_t **answer_r)
{
	struct admin_reply r;
	json_error_t je;
	char *text = NULL;
	int rc;

	*answer_r = NULL;
	if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL)
		return admin_error(EXIT_IO, "internal", 0, "out of memory");
	rc = admin_request(c, method, path, NULL, body != NULL ? "application/json" : NULL, text,
	    text != NULL ? strlen(text) : 0, &r);
	if (text != NULL) {
		/* It may hold a PKCS#12 password. */
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	if (rc != EXIT_OK)
		return rc;
	if (r.len > 0) {
		*answer_r = json_loadb(r.data, r.len, JSON_REJECT_DUPLICATES, &je);
		if (*answer_r == NULL || !json_is_object(*answer_r)) {
			rc = admin_error(EXIT_IO, "io", r.status, "the answer of %s %s is not a JSON "
			    "object: %s", method, path, *answer_r == NULL ? je.text : "another type");
			json_decref(*answer_r);
			*answer_r = NULL;
		}
	}
	admin_reply_free(&r);
	return rc;
}

/* Append s to b, percent-encoded but for RFC 3986 unreserved characters. */
static bool
add_escaped(struct sbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };
		bool ok = isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' ?
		    sbuf_add(b, s, 1) : sbuf_add(b, e, 3);
		if (!ok)
			return false;
	}
	return true;
}

char *
admin_path(const char *fmt, ...)
{
	struct sbuf b = { .max = ADMIN_URL_MAX };
	va_list ap;
	bool ok = true;

	va_start(ap, fmt);
	for (const char *p = fmt; ok && *p != '\0'; p++) {
		if (p[0] == '%' && p[1] == 's') {
			ok = add_escaped(&b, va_arg(ap, const char *));
			p++;
		} else {
			ok = sbuf_add(&b, p, 1);
		}
	}
	va_end(ap);
	if (!ok) {
		sbuf_free(&b);
		return NULL;
	}
	return b.data;
}

int
admin_list(struct admin_conn *c, const char *path, const struct admin_query *q, size_t n_q,
    bool paged, const char *start, size_t max, json_t **items_r, char **next_r)
{
	json_t *items = json_array();
	char *after = start != NULL ? strdup(start) : NULL;
	int rc = EXIT_OK;

	*items_r = NULL;
	if (next_r != NULL)
		*next_r = NULL;
	if (items == NULL || (start != NULL && after == NULL)) {
		json_decref(items);
		free(after);
		return admin_error(EXIT_IO, "internal", 0, "out of memory");
	}
	for (size_t page = 0;; page++) {
		struct sbuf url = { .max = ADMIN_URL_MAX };
		char num[32];
		char sep = '?';
		json_t *answer = NULL, *got, *next;
		bool ok = sbuf_add(&url, path, strlen(path));

		for (size_t i = 0; ok && i < n_q; i++) {
			if (q[i].value == NULL)
				continue;
			ok = sbuf_add(&url, &sep, 1) && add_escaped(&url, q[i].name) &&
			    sbuf_add(&url, "=", 1) && add_escaped(&url, q[i].value);
			sep = '&';
		}
		if (ok && paged) {
			size_t want = ADMIN_PAGE_LIMIT;
			if (max != 0 && max - json_array_size(items) < want)
				want = max - json_array_size(items);
			snprintf(num, sizeof(num), "%climit=%zu", sep, want);
			ok = sbuf_add(&url, num, strlen(num));
			if (ok && after != NULL)
				ok = sbuf_add(&url, "&after=", 7) && add_escaped(&url, after);
		}
		if (!ok) {
			sbuf_free(&url);
			rc = admin_error(url.too_large ? EXIT_USAGE : EXIT_IO, "internal", 0,
			    "the request's URL is too long");
			break;
		}
		rc = admin_call(c, "GET", url.data, NULL, &answer);
		sbuf_free(&url);
		if (rc != EXIT_OK)
			break;
		got = json_object_get(answer, "items");
		if (!json_is_array(got)) {
			rc = admin_error(EXIT_IO, "io", 0, "the answer of GET %s has no \"items\" list",
			    path);
			json_decref(answer);
			break;
		}
		json_array_extend(items, got);
		next = json_object_get(answer, "next");
		if (!paged || !json_is_string(next) || json_string_length(next) == 0 ||
		    json_array_size(got) == 0) {
			free(after);
			after = NULL;
		} else if (after != NULL && strcmp(after, json_string_value(next)) == 0) {
			/* The same page again would follow: the service is looping. */
			rc = admin_error(EXIT_IO, "io", 0, "GET %s: the service gave the same \"next\" "
			    "twice", path);
		} else {
			free(after);
			if ((after = strdup(json_string_value(next))) == NULL)
				rc = admin_error(EXIT_IO, "internal", 0, "out of memory");
		}
		json_decref(answer);
		if (rc != EXIT_OK || after == NULL)
			break;
		if (max != 0 && json_array_size(items) >= max) {
			/* Where the caller would go on. */
			if (next_r != NULL) {
				*next_r = after;
				after = NULL;
			}
			break;
		}
		if (page + 1 >= ADMIN_MAX_PAGES) {
			rc = admin_error(EXIT_IO, "io", 0, "GET %s: more than %d pages; stopped",
			    path, ADMIN_MAX_PAGES);
			break;
		}
	}
	free(after);
	if (rc != EXIT_OK) {
		json_decref(items);
		return rc;
	}
	*items_r = items;
	return EXIT_OK;
}

int
admin_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? EXIT_OK :
	    admin_error(EXIT_IO, "internal", 0, "libcurl failed to initialise");
}

void
admin_done(void)
{
	curl_global_cleanup();
}

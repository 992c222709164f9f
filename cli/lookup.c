/*
 * smime: recipients' certificates from smimed's public lookup (smime
 * encrypt --lookup URL): GET URL/api/v1/lookup?email=ADDR, the source
 * recipient_source_lookup of recipients.c, which decides on what it finds.
 *
 * The service is untrusted like a directory: answers are bounded (size,
 * time, certificates), redirects are never followed, only http and https
 * are spoken, and the answer is read by lookup_answer.c.  A service that
 * cannot be reached, fails, or answers something the API does not describe
 * is not asked about the other addresses.  One that asks us to slow down
 * (429) is waited for once, when it says it will be ready within
 * LOOKUP_MAX_WAIT seconds.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli.h"

#define LOOKUP_TIMEOUT    10L      /* seconds for one request, connecting included */
#define LOOKUP_MAX_WAIT   5        /* seconds of a 429's Retry-After that are waited */
#define LOOKUP_MAX_URL    2048
#define LOOKUP_PATH       "/api/v1/lookup?email="

struct lookup_svc {
	char *base;              /* the URL without its trailing '/' */
	const char *url;         /* as given, for messages */
	const char *cacert;
	CURL *curl;              /* between open and close */
	char errbuf[CURL_ERROR_SIZE];
};

/* One answer: the body, bounded, and what of the headers matters. */
struct answer {
	struct cli_body body;
	long retry_after;        /* seconds; -1: none or unreadable */
};

/* RFC 9110 10.2.3: Retry-After = HTTP-date / delay-seconds. */
static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	static const char name[] = "retry-after:";
	struct answer *a = arg;
	size_t len = size * n, i = sizeof(name) - 1;
	char value[64];
	size_t v = 0;

	if (len < i || strncasecmp(p, name, i) != 0)
		return len;
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	while (i < len && p[i] != '\r' && p[i] != '\n' && v + 1 < sizeof(value))
		value[v++] = p[i++];
	value[v] = '\0';
	a->retry_after = -1;
	if (v > 0 && v <= 9 && strspn(value, "0123456789") == v) {
		a->retry_after = strtol(value, NULL, 10);
	} else if (v > 0) {
		time_t when = curl_getdate(value, NULL);
		if (when != -1)
			a->retry_after = when <= time(NULL) ? 0 : (long)(when - time(NULL));
	}
	return len;
}

int
lookup_svc_new(const char *cmd, const struct lookup_opts *o, struct lookup_svc **s_r)
{
	struct lookup_svc *s = NULL;
	const char *src = o->url_from_env ? "SMIME_LOOKUP" : "--lookup";
	char *scheme = NULL, *host = NULL, *part = NULL;
	CURLU *u = NULL;
	int rc = EXIT_USAGE;

	*s_r = NULL;
	if (o->url == NULL || o->url[0] == '\0')
		return usage_error(cmd, "%s wants the service's URL such as http://HOST:PORT", src);
	if (strlen(o->url) > LOOKUP_MAX_URL)
		return usage_error(cmd, "%s: the URL is longer than %d characters", src,
		    LOOKUP_MAX_URL);
	for (const char *p = o->url; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return usage_error(cmd, "%s: a URL without spaces or control characters", src);
	if ((u = curl_url()) == NULL) {
		struct smime_error err;
		smime_error_set(&err, SMIME_E_INTERNAL, "out of memory");
		return fail(cmd, &err);
	}
	/* RFC 3986 3: the service's base URL, to which the API's paths are appended. */
	if (curl_url_set(u, CURLUPART_URL, o->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		usage_error(cmd, "%s '%s' is not an http:// or https:// URL (the service's, "
		    "e.g. http://127.0.0.1:8080)", src, o->url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
		usage_error(cmd, "%s '%s': no host", src, o->url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) {
		usage_error(cmd, "%s '%s': the service's base URL, without a user, a query or a "
		    "fragment (the lookup is public)", src, o->url);
		goto out;
	}
	if (o->cacert != NULL && strcmp(scheme, "https") != 0) {
		usage_error(cmd, "--lookup-cacert is for an https:// URL");
		goto out;
	}
	if (o->cacert != NULL && access(o->cacert, R_OK) != 0) {
		usage_error(cmd, "--lookup-cacert %s: %s", o->cacert, strerror(errno));
		goto out;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->base = strdup(o->url)) == NULL) {
		struct smime_error err;
		smime_error_set(&err, SMIME_E_INTERNAL, "out of memory");
		rc = fail(cmd, &err);
		goto out;
	}
	for (size_t n = strlen(s->base); n > 0 && s->base[n - 1] == '/'; n--)
		s->base[n - 1] = '\0';
	s->url = o->url;
	s->cacert = o->cacert;
	*s_r = s;
	s = NULL;
	rc = EXIT_OK;
out:
	lookup_svc_free(s);
	curl_free(scheme);
	curl_free(host);
	curl_free(part);
	curl_url_cleanup(u);
	return rc;
}

void
lookup_svc_free(struct lookup_svc *s)
{
	if (s == NULL)
		return;
	if (s->curl != NULL) {
		curl_easy_cleanup(s->curl);
		curl_global_cleanup();
	}
	free(s->base);
	free(s);
}

/* recipient_source.open: a handle with the options every request shares. */
static int
svc_open(void *ctx, struct smime_error *err)
{
	struct lookup_svc *s = ctx;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return smime_error_set(err, SMIME_E_INTERNAL, "libcurl failed to initialise");
	if ((s->curl = curl_easy_init()) == NULL) {
		curl_global_cleanup();
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	if (curl_easy_setopt(s->curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(s->curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT, LOOKUP_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(s->curl, CURLOPT_TIMEOUT, LOOKUP_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(s->curl, CURLOPT_MAXFILESIZE_LARGE,
	        (curl_off_t)LOOKUP_ANSWER_MAX) != CURLE_OK ||
	    curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, s->errbuf) != CURLE_OK ||
	    curl_easy_setopt(s->curl, CURLOPT_USERAGENT, "smime/" SMIME_VERSION) != CURLE_OK ||
	    curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, cli_body_write) != CURLE_OK ||
	    curl_easy_setopt(s->curl, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
	    curl_easy_setopt(s->curl, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(s->curl, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    (s->cacert != NULL &&
	     curl_easy_setopt(s->curl, CURLOPT_CAINFO, s->cacert) != CURLE_OK)) {
		smime_error_set(err, SMIME_E_INTERNAL, "libcurl refused an option");
		curl_easy_cleanup(s->curl);
		s->curl = NULL;
		curl_global_cleanup();
		return err->code;
	}
	return 0;
}

/* recipient_source.close. */
static void
svc_close(void *ctx)
{
	struct lookup_svc *s = ctx;

	if (s->curl != NULL) {
		curl_easy_cleanup(s->curl);
		s->curl = NULL;
		curl_global_cleanup();
	}
}

/* The API's error message of a failed request, or "" (printed sanitised). */
static void
api_message(const struct answer *a, char *buf, size_t size)
{
	json_t *j = a->body.len > 0 ? json_loadb((const char *)a->body.data, a->body.len, 0,
	    NULL) : NULL;
	const char *m = json_string_value(json_object_get(json_object_get(j, "error"),
	    "message"));

	buf[0] = '\0';
	if (m != NULL && m[0] != '\0')
		snprintf(buf, size, ": %.200s", m);
	json_decref(j);
}

/* True for the 404 the API answers: {"error": {...}}. */
static bool
api_not_found(const struct answer *a)
{
	json_t *j = a->body.len > 0 ? json_loadb((const char *)a->body.data, a->body.len, 0,
	    NULL) : NULL;
	bool ok = json_is_object(json_object_get(j, "error"));

	json_decref(j);
	return ok;
}


/* url = base + LOOKUP_PATH + address, percent-encoded but for RFC 3986 2.3's unreserved. */
static bool
request_url(const struct lookup_svc *s, const char *address, char *url, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = (size_t)snprintf(url, size, "%s%s", s->base, LOOKUP_PATH);

	if (n >= size)
		return false;
	for (const unsigned char *p = (const unsigned char *)address; *p != '\0'; p++) {
		if (n + 4 > size)
			return false;
		if (isalnum(*p) && *p < 0x80)
			url[n++] = (char)*p;
		else if (*p == '-' || *p == '.' || *p == '_' || *p == '~')
			url[n++] = (char)*p;
		else {
			url[n++] = '%';
			url[n++] = hex[*p >> 4];
			url[n++] = hex[*p & 15];
		}
	}
	url[n] = '\0';
	return true;
}

/*
 * recipient_source.search: ask the service about address.  200: the
 * answer's certificates into certs and its chain into extra, one answer;
 * 404: none.  Everything else fails with SMIME_E_IO, and the service is
 * not asked again.
 */
static int
svc_search(void *ctx, const char *address, STACK_OF(X509) *certs, STACK_OF(X509) *extra,
    int *answers_r, struct recipient_lookup *l, struct smime_error *err)
{
	struct lookup_svc *s = ctx;
	struct answer a = { 0 };
	struct smime_error e2;
	char url[LOOKUP_MAX_URL + sizeof(LOOKUP_PATH) + 3 * 254 + 1], msg[256];
	char *type = NULL, *location = NULL;
	long status = 0;
	CURLcode cc;
	int rc;

	*answers_r = 0;
	if (!request_url(s, address, url, sizeof(url)))
		return smime_error_set(err, SMIME_E_INPUT, "the URL for %s is too long", address);
	for (int attempt = 0;; attempt++) {
		cli_body_free(&a.body);
		a.body.max = LOOKUP_ANSWER_MAX;
		a.retry_after = -1;
		s->errbuf[0] = '\0';
		if (curl_easy_setopt(s->curl, CURLOPT_URL, url) != CURLE_OK ||
		    curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, &a.body) != CURLE_OK ||
		    curl_easy_setopt(s->curl, CURLOPT_HEADERDATA, &a) != CURLE_OK) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "libcurl refused an option");
			goto out;
		}
		if ((cc = curl_easy_perform(s->curl)) != CURLE_OK) {
			rc = cli_transport_error(s->url, s->errbuf, (int)cc, &a.body, LOOKUP_TIMEOUT,
			    "is smimed running? --lookup or SMIME_LOOKUP names it",
			    "a service with a private CA needs --lookup-cacert FILE", err);
			goto out;
		}
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
		/* RFC 6585 4: too many requests; wait as asked, once, when it is soon. */
		if (status != 429 || attempt > 0 || a.retry_after < 0 ||
		    a.retry_after > LOOKUP_MAX_WAIT)
			break;
		if (!g.json && !g.quiet)
			fprintf(stderr, "smime encrypt: lookup: %s: rate limited; trying again in "
			    "%ld s\n", address, a.retry_after);
		sleep((unsigned)a.retry_after);
	}
	curl_easy_getinfo(s->curl, CURLINFO_CONTENT_TYPE, &type);
	switch (status) {
	case 200:
		/* RFC 8259 11: application/json. */
		if (!cli_media_is(type, "application/json")) {
			rc = smime_error_set(err, SMIME_E_IO, "%s: the answer is not application/json "
			    "but %.60s: is this smimed's base URL?", s->url, type ? type : "untyped");
			goto out;
		}
		if ((rc = lookup_parse_answer((const char *)a.body.data, a.body.len, address, certs,
		    extra, &e2)) != 0) {
			/* Not the API: the service is broken or lies; it is not asked again. */
			rc = smime_error_set(err, rc == SMIME_E_INPUT ? SMIME_E_IO : rc,
			    "%s: an answer the lookup API does not describe: %s", s->url, e2.message);
			goto out;
		}
		*answers_r = 1;
		rc = 0;
		break;
	case 404:
		if (!api_not_found(&a)) {
			rc = smime_error_set(err, SMIME_E_IO, "%s: /api/v1/lookup answered 404 without "
			    "the API's JSON error: is this smimed's base URL?", s->url);
			goto out;
		}
		rc = 0;
		break;
	case 429:
		if (a.retry_after >= 0)
			rc = smime_error_set(err, SMIME_E_IO, "%s: rate limited (HTTP 429, Retry-After "
			    "%ld s): too many lookups from this address; try again later", s->url,
			    a.retry_after);
		else
			rc = smime_error_set(err, SMIME_E_IO, "%s: rate limited (HTTP 429): too many "
			    "lookups from this address; try again later", s->url);
		goto out;
	default:
		if (status >= 300 && status < 400) {
			curl_easy_getinfo(s->curl, CURLINFO_REDIRECT_URL, &location);
			rc = smime_error_set(err, SMIME_E_IO, "%s: HTTP %ld, a redirect to %.200s; "
			    "redirects are not followed: give that URL with --lookup", s->url, status,
			    location != NULL ? location : "elsewhere");
			goto out;
		}
		api_message(&a, msg, sizeof(msg));
		rc = smime_error_set(err, SMIME_E_IO, "%s: HTTP %ld%s", s->url, status, msg);
		goto out;
	}
out:
	cli_body_free(&a.body);
	return rc;
}

const struct recipient_source recipient_source_lookup = {
	.name = "lookup",
	.label = "lookup",
	.noun = "the lookup service",
	.none = "the lookup service has no certificate for it",
	.empty_one = "the lookup service has no encryption certificate for it",
	.empty_many = "the lookup service has no encryption certificate for it",
	.offered = "certificates the lookup service offers",
	.open = svc_open,
	.search = svc_search,
	.close = svc_close,
};

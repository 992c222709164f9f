/*
 * smime: what the commands that speak HTTP with libcurl share (the lookup
 * service of `smime encrypt --lookup`, the SCEP server of `smime enroll`):
 * a bounded answer body, the reasons a transfer failed, media types.
 * (smime admin keeps its own body in admin_http.c: it wipes what it held.)
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "cli.h"

size_t
cli_body_write(char *p, size_t size, size_t n, void *arg)
{
	struct cli_body *b = arg;
	size_t add = size * n;

	if (add > b->max - b->len) {
		b->too_large = true;
		return 0; /* less than given: the transfer ends */
	}
	if (b->len + add + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 8192;
		unsigned char *d;

		while (cap < b->len + add + 1)
			cap *= 2;
		if ((d = realloc(b->data, cap)) == NULL)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, add);
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

void
cli_body_free(struct cli_body *b)
{
	size_t max = b->max;

	free(b->data);
	memset(b, 0, sizeof(*b));
	b->max = max;
}

int
cli_transport_error(const char *url, const char *errbuf, int cc, const struct cli_body *b,
    long timeout, const char *connect_hint, const char *tls_hint, struct smime_error *err)
{
	const char *detail = errbuf != NULL && errbuf[0] ? errbuf :
	    curl_easy_strerror((CURLcode)cc);

	switch ((CURLcode)cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		return smime_error_set(err, SMIME_E_IO, "%s: cannot connect: %s (%s)", url, detail,
		    connect_hint);
	case CURLE_OPERATION_TIMEDOUT:
		return smime_error_set(err, SMIME_E_IO, "%s: no answer within %ld s", url, timeout);
	case CURLE_FILESIZE_EXCEEDED:
		return smime_error_set(err, SMIME_E_IO, "%s: an answer larger than %zu octets, the "
		    "most allowed", url, b->max);
	case CURLE_WRITE_ERROR:
		if (b->too_large)
			return smime_error_set(err, SMIME_E_IO, "%s: an answer larger than %zu "
			    "octets, the most allowed", url, b->max);
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
		return smime_error_set(err, SMIME_E_IO, "%s: TLS failed: %s (%s)", url, detail,
		    tls_hint);
	default:
		return smime_error_set(err, SMIME_E_IO, "%s: %s", url, detail);
	}
}

bool
cli_media_is(const char *type, const char *want)
{
	size_t n = strlen(want);

	/* RFC 9110 8.3.1: the media type, parameters and case aside. */
	return type != NULL && strncasecmp(type, want, n) == 0 &&
	    (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

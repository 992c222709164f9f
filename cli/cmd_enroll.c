/*
 * smime enroll: a signing identity from a SCEP server (RFC 8894), such as
 * smimed's /scep endpoint: the key is made on this machine, the request
 * goes to the CA with a one-time challenge, and the certificate that comes
 * back is stored with the key in the keystore.  smime enroll --renew asks
 * for a new certificate (and key) with the current one instead of a
 * challenge.
 *
 * Trust.  Nothing is sent until the CA certificate of the GetCACert answer
 * is trusted: its SHA-256 fingerprint is the one given with
 * --ca-fingerprint (or it chains to a certificate of the answer that has
 * it), or it chains to a trust anchor of the keystore, or (renewal) it
 * issued the certificate being renewed.  Never on first use alone: the
 * challenge would go to whoever answered.  A reply must be signed by the
 * RA (or the CA when there is no RA) of that same answer, carry our
 * transactionID and, as its recipientNonce, the senderNonce of the request
 * it answers; an issued certificate must hold our public key and chain to
 * the CA.
 *
 * Nothing is lost.  The key is stored only when its certificate arrives,
 * in one keystore commit.  A request the CA keeps PENDING is written to
 * KEYSTORE/scep-pending/TID.json (0600, its key encrypted under the
 * keystore passphrase as PKCS#8 PBES2) as soon as the first PENDING
 * arrives, so that a wait that runs out, a lost connection or an
 * interrupted command can be taken up again with --resume; the file goes
 * once the request is answered.  The passphrase is asked for and checked
 * before anything is sent.
 *
 * The transport is bounded like the other HTTP clients of smime: http and
 * https only, no redirects, a time limit on each exchange and a size limit
 * on each answer.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include <smime/scep.h>

#include "cli.h"
#include "durable.h"

#define CMD "enroll"

#define SCEP_CONNECT_TIMEOUT 10L           /* seconds to connect */
#define SCEP_EXCHANGE_TIMEOUT 60L          /* seconds for one exchange */
#define SCEP_MAX_URL 2048                  /* characters of --scep */
#define SCEP_MAX_PROFILE 128               /* characters of --profile */
#define SCEP_CAPS_MAX (16u * 1024)         /* octets of a GetCACaps answer */
#define SCEP_POLL_DEFAULT 10L              /* seconds between two CertPolls */
#define SCEP_POLL_MAX 86400L
#define SCEP_WAIT_DEFAULT 600L             /* seconds of waiting for a PENDING request */
#define SCEP_WAIT_MAX (30L * 86400)
#define SCEP_PENDING_DIR "scep-pending"
#define SCEP_PENDING_MAX (256u * 1024)     /* octets of a pending file */
#define SCEP_PENDING_ITER 100000           /* PBKDF2 iterations of its key */
#define SCEP_CN_MAX 64                     /* RFC 5280 ub-common-name */

/*
 * Exit statuses of enroll beyond those every command shares (cli.h):
 * the CA answered FAILURE; the request is still PENDING when --timeout
 * runs out (take it up again with --resume).
 */
enum { EXIT_REFUSED = 8, EXIT_PENDING = 9 };

enum {
	O_SCEP = 0x400, O_CHALLENGE, O_CHALLENGE_FILE, O_PROFILE, O_KEY, O_CACERT, O_PIN,
	O_POLL, O_TIMEOUT, O_RENEW, O_EMAIL, O_RESUME, O_TID, O_ALLOW_WEAK,
};

enum key_type { KEY_DEFAULT = 0, KEY_RSA2048, KEY_RSA3072, KEY_EC_P256 };

static const char *
key_type_name(enum key_type t)
{
	switch (t) {
	case KEY_RSA2048: return "rsa-2048";
	case KEY_RSA3072: return "rsa-3072";
	case KEY_EC_P256: return "ec-p256";
	case KEY_DEFAULT: break;
	}
	return "default";
}

static enum key_type
key_type_parse(const char *s)
{
	if (strcasecmp(s, "rsa-2048") == 0 || strcasecmp(s, "rsa2048") == 0)
		return KEY_RSA2048;
	if (strcasecmp(s, "rsa-3072") == 0 || strcasecmp(s, "rsa3072") == 0)
		return KEY_RSA3072;
	if (strcasecmp(s, "ec-p256") == 0 || strcasecmp(s, "p256") == 0 ||
	    strcasecmp(s, "ec") == 0)
		return KEY_EC_P256;
	return KEY_DEFAULT;
}

/* --- HTTP ---------------------------------------------------------------- */

struct scep_http {
	CURL *curl;
	char *base;                  /* --scep without a trailing '/' */
	char *ident;                 /* --profile, percent-encoded; NULL: none */
	char errbuf[CURL_ERROR_SIZE];
};

static void
http_free(struct scep_http *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	curl_free(h->ident);
	free(h->base);
	free(h);
}

/* Check --scep (src names where it came from) and make the handle. */
static int
http_new(const char *url, const char *src, const char *profile, const char *cacert,
    struct scep_http **h_r, struct smime_error *err)
{
	struct scep_http *h = NULL;
	char *scheme = NULL, *host = NULL, *part = NULL;
	CURLU *u = NULL;
	int rc = 0;

	*h_r = NULL;
	if (url == NULL || url[0] == '\0')
		return smime_error_set(err, SMIME_E_USAGE, "no SCEP server: give --scep URL (or "
		    "set SMIME_SCEP), e.g. https://HOST/scep");
	if (strlen(url) > SCEP_MAX_URL)
		return smime_error_set(err, SMIME_E_USAGE, "%s: a URL longer than %d characters",
		    src, SCEP_MAX_URL);
	for (const char *p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return smime_error_set(err, SMIME_E_USAGE, "%s: a URL without spaces or "
			    "control characters", src);
	if ((u = curl_url()) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		rc = smime_error_set(err, SMIME_E_USAGE, "%s '%s' is not an http:// or https:// "
		    "URL (the SCEP server's, e.g. https://HOST/scep)", src, url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
		rc = smime_error_set(err, SMIME_E_USAGE, "%s '%s': no host", src, url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) {
		rc = smime_error_set(err, SMIME_E_USAGE, "%s '%s': the SCEP server's URL without a "
		    "user, a query or a fragment (the profile goes in --profile)", src, url);
		goto out;
	}
	if (cacert != NULL && strcmp(scheme, "https") != 0) {
		rc = smime_error_set(err, SMIME_E_USAGE, "--cacert is for an https:// URL");
		goto out;
	}
	if (cacert != NULL && access(cacert, R_OK) != 0) {
		rc = smime_error_set(err, SMIME_E_USAGE, "--cacert %s: %s", cacert,
		    strerror(errno));
		goto out;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL || (h->base = strdup(url)) == NULL ||
	    (h->curl = curl_easy_init()) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t n = strlen(h->base); n > 0 && h->base[n - 1] == '/'; n--)
		h->base[n - 1] = '\0';
	if (profile != NULL && (h->ident = curl_easy_escape(h->curl, profile, 0)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if (curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, SCEP_CONNECT_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, SCEP_EXCHANGE_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->errbuf) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "smime/" SMIME_VERSION) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, cli_body_write) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    (cacert != NULL && curl_easy_setopt(h->curl, CURLOPT_CAINFO, cacert) != CURLE_OK)) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "libcurl refused an option");
		goto out;
	}
	*h_r = h;
	h = NULL;
out:
	http_free(h);
	curl_free(scheme);
	curl_free(host);
	curl_free(part);
	curl_url_cleanup(u);
	return rc;
}

/*
 * One exchange: GET BASE?operation=OP&message=MESSAGE (message percent-
 * encoded; NULL: the profile, when there is one), or, with post, POST of
 * data[len] to BASE?operation=OP&message=PROFILE.  Only a 200 answer is an
 * answer: its body in b (at most max octets), its Content-Type in type
 * (empty when it has none).
 */
static int
http_exchange(struct scep_http *h, const char *op, const char *message, bool post,
    const unsigned char *data, size_t len, size_t max, struct cli_body *b, char *type,
    size_t type_size, struct smime_error *err)
{
	struct curl_slist *headers = NULL;
	char *url = NULL, *enc = NULL, *ct = NULL, *location = NULL, line[160];
	const char *param = NULL;
	long status = 0;
	size_t n;
	CURLcode cc;
	int rc = 0;

	memset(b, 0, sizeof(*b));
	b->max = max;
	type[0] = '\0';
	h->errbuf[0] = '\0';
	if (message != NULL) {
		if ((enc = curl_easy_escape(h->curl, message, 0)) == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		param = enc;
	} else {
		param = h->ident;
	}
	n = strlen(h->base) + strlen(op) + (param != NULL ? strlen(param) : 0) + 32;
	if ((url = malloc(n)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	/* RFC 8894 4.1: "GET CGI-PATH/CGI-PROG?operation=OPERATION&message=MESSAGE" */
	snprintf(url, n, "%s?operation=%s%s%s", h->base, op, param != NULL ? "&message=" : "",
	    param != NULL ? param : "");
	if (curl_easy_setopt(h->curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, b) != CURLE_OK) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "libcurl refused an option");
		goto out;
	}
	if (post) {
		/* RFC 8894 4.3: the pkiMessage as the body, application/x-pki-message. */
		if ((headers = curl_slist_append(NULL, "Content-Type: application/x-pki-message"))
		    == NULL ||
		    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
		    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) !=
		    CURLE_OK ||
		    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, data) != CURLE_OK) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "libcurl refused an option");
			goto out;
		}
	} else if (curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L) != CURLE_OK) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "libcurl refused an option");
		goto out;
	}
	cc = curl_easy_perform(h->curl);
	/* The list of headers must outlive the transfer only. */
	(void)curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	if (cc != CURLE_OK) {
		rc = cli_transport_error(h->base, h->errbuf, (int)cc, b, SCEP_EXCHANGE_TIMEOUT,
		    "is the SCEP server running? --scep or SMIME_SCEP names it",
		    "a server with a private CA needs --cacert FILE", err);
		goto out;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 300 && status < 400) {
		curl_easy_getinfo(h->curl, CURLINFO_REDIRECT_URL, &location);
		rc = smime_error_set(err, SMIME_E_IO, "%s: %s: HTTP %ld, a redirect to %.200s; "
		    "redirects are not followed: give that URL with --scep", h->base, op, status,
		    location != NULL ? location : "elsewhere");
		goto out;
	}
	if (status != 200) {
		/* The first line of what it said, printable. */
		size_t i = 0;
		for (; i < b->len && i + 1 < sizeof(line) && b->data[i] != '\n' &&
		    b->data[i] != '\r'; i++)
			line[i] = b->data[i] >= 0x20 && b->data[i] < 0x7f ? (char)b->data[i] : '?';
		line[i] = '\0';
		rc = smime_error_set(err, SMIME_E_IO, "%s: %s: HTTP %ld%s%s%s", h->base, op, status,
		    i > 0 ? " (" : "", line, i > 0 ? ")" : "");
		goto out;
	}
	curl_easy_getinfo(h->curl, CURLINFO_CONTENT_TYPE, &ct);
	if (ct != NULL) {
		snprintf(type, type_size, "%s", ct);
		for (char *p = type; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
	}
out:
	curl_slist_free_all(headers);
	curl_free(enc);
	free(url);
	if (rc != 0)
		cli_body_free(b);
	return rc;
}

/* --- what a session of enroll holds -------------------------------------- */

struct enroll {
	/* The options. */
	const char *url, *url_src, *profile, *cacert, *pin, *email, *tid_arg;
	char *challenge;
	enum key_type key_type;
	long interval, wait;
	bool renew, resume, allow_weak;

	struct smime_keystore *ks;
	char *passphrase;               /* for the pending file; cleansed */
	struct scep_http *http;

	/* The server. */
	struct smime_scep_caps caps;
	X509 *ca, *ra;                  /* from GetCACert */
	STACK_OF(X509) *ca_all;         /* every certificate of that answer */
	char ca_fp[65], ra_fp[65];
	char anchor_fp[65];             /* the CA certificate pinned by --ca-fingerprint, or "" */
	const EVP_MD *md;
	const EVP_CIPHER *cipher;

	/* The request. */
	enum smime_scep_type type;      /* PKCSReq or RenewalReq */
	EVP_PKEY *key;                  /* the new key */
	X509_REQ *csr;
	X509 *signer;                   /* self-signed, or the certificate renewed */
	EVP_PKEY *signer_key;           /* key, or the key renewed */
	char signer_fp[65];             /* the certificate renewed */
	char tid[65];
	char pending_path[PATH_MAX];    /* "" until the request is pending */
	time_t deadline;                /* of the PENDING wait */

	/* The answer. */
	X509 *issued;
	STACK_OF(X509) *issued_extra;   /* the other certificates of the SUCCESS */
};

static void
enroll_clear(struct enroll *e)
{
	secret_free(e->challenge);
	secret_free(e->passphrase);
	smime_keystore_free(e->ks);
	http_free(e->http);
	X509_free(e->ca);
	X509_free(e->ra);
	sk_X509_pop_free(e->ca_all, X509_free);
	EVP_PKEY_free(e->key);
	X509_REQ_free(e->csr);
	X509_free(e->signer);
	EVP_PKEY_free(e->signer_key);
	X509_free(e->issued);
	sk_X509_pop_free(e->issued_extra, X509_free);
	memset(e, 0, sizeof(*e));
}

static void
progress(const char *fmt, ...) SMIME_PRINTF(1, 2);

static void
progress(const char *fmt, ...)
{
	va_list ap;

	if (g.json || g.quiet)
		return;
	fputs("smime enroll: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Put before (and after) err's own message, keeping its code or giving another. */
static int
rewrap(struct smime_error *err, int code, const char *before, const char *after)
{
	char msg[SMIME_ERROR_MAX];

	snprintf(msg, sizeof(msg), "%s", err->message);
	return smime_error_set(err, code, "%s%s%s", before, msg, after);
}

static void
str_free(char *s)
{
	OPENSSL_free(s);
}

/* --- the passphrase ------------------------------------------------------- */

/*
 * The keystore passphrase, as every command gets it (--passphrase-file,
 * SMIME_PASSPHRASE, a prompt), but asked for now: the certificate that
 * arrives later must not be lost to a missing or wrong passphrase.  It is
 * checked against a key of the keystore when there is one.
 */
static int
get_passphrase(struct enroll *e, struct smime_error *err)
{
	const char *env = getenv("SMIME_PASSPHRASE");
	char buf[1025];
	bool is_new = true;
	size_t i, n = smime_keystore_count(e->ks);

	for (i = 0; i < n; i++)
		if (smime_keystore_entry(e->ks, i)->has_key)
			is_new = false;
	if (g.passphrase_file != NULL) {
		if ((e->passphrase = read_secret_file(g.passphrase_file, err)) == NULL)
			return err->code;
	} else if (env != NULL && env[0] != '\0') {
		if ((e->passphrase = strdup(env)) == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	} else {
		int fd = open("/dev/tty", O_RDWR | O_NOCTTY);

		if (fd < 0)
			return smime_error_set(err, SMIME_E_USAGE, "no keystore passphrase: give "
			    "--passphrase-file FILE or set SMIME_PASSPHRASE (there is no terminal to "
			    "ask on)");
		close(fd);
		if (EVP_read_pw_string(buf, sizeof(buf), "Keystore passphrase: ", is_new) != 0) {
			OPENSSL_cleanse(buf, sizeof(buf));
			return smime_error_set(err, SMIME_E_USAGE, "no keystore passphrase");
		}
		e->passphrase = strdup(buf);
		OPENSSL_cleanse(buf, sizeof(buf));
		if (e->passphrase == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	if (e->passphrase[0] == '\0')
		return smime_error_set(err, SMIME_E_USAGE, "an empty keystore passphrase");
	smime_keystore_set_passphrase(e->ks, e->passphrase);
	for (i = 0; i < n; i++) {
		const struct smime_entry *en = smime_keystore_entry(e->ks, i);
		EVP_PKEY *k = NULL;
		int rc;

		if (!en->has_key)
			continue;
		if ((rc = smime_keystore_key(e->ks, en->fingerprint, &k, err)) != 0)
			return rc;
		EVP_PKEY_free(k);
		break;
	}
	return 0;
}

/* --- GetCACaps, GetCACert, and whether to trust the CA -------------------- */

static int
get_caps(struct enroll *e, struct smime_error *err)
{
	struct cli_body b;
	char type[128];
	int rc;

	/* RFC 8894 3.5.1: GetCACaps, answered text/plain. */
	if ((rc = http_exchange(e->http, "GetCACaps", NULL, false, NULL, 0, SCEP_CAPS_MAX, &b,
	    type, sizeof(type), err)) != 0)
		return rc;
	if (type[0] != '\0' && !cli_media_is(type, "text/plain")) {
		rc = smime_error_set(err, SMIME_E_INPUT, "%s: GetCACaps answered %.60s, not "
		    "text/plain: is this the SCEP server's URL?", e->http->base, type);
		cli_body_free(&b);
		return rc;
	}
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] == '\0' || b.data[i] >= 0x80) {
			cli_body_free(&b);
			return smime_error_set(err, SMIME_E_INPUT, "%s: the GetCACaps answer is not "
			    "text (RFC 8894 3.5.2: one keyword a line)", e->http->base);
		}
	smime_scep_caps_parse((const char *)b.data, b.len, &e->caps);
	cli_body_free(&b);
	return 0;
}

/*
 * RFC 8894 3.5.2: the strongest digest and cipher both sides know.  A
 * server that knows nothing better than SHA-1 or triple DES is refused
 * unless --allow-weak.
 */
static int
choose_algorithms(struct enroll *e, struct smime_error *err)
{
	const struct smime_scep_caps *c = &e->caps;

	if (c->sha256)
		e->md = EVP_sha256();
	else if (c->sha512)
		e->md = EVP_sha512();
	else if (e->allow_weak)
		e->md = EVP_sha1();
	else
		return smime_error_set(err, SMIME_E_POLICY, "%s announces neither SHA-256 nor "
		    "SHA-512 (GetCACaps), only SHA-1 or less; --allow-weak accepts SHA-1",
		    e->http->base);
	if (c->aes)
		e->cipher = EVP_aes_128_cbc();
	else if (e->allow_weak)
		e->cipher = EVP_des_ede3_cbc();
	else
		return smime_error_set(err, SMIME_E_POLICY, "%s does not announce AES (GetCACaps), "
		    "only triple DES or less; --allow-weak accepts triple DES", e->http->base);
	if (e->renew && !c->renewal)
		return smime_error_set(err, SMIME_E_POLICY, "%s does not announce Renewal "
		    "(GetCACaps): enroll anew with a challenge (smime enroll --challenge-file "
		    "FILE)", e->http->base);
	return 0;
}

static int
get_ca(struct enroll *e, struct smime_error *err)
{
	struct cli_body b;
	char type[128];
	int rc;

	/* RFC 8894 4.2: GetCACert. */
	if ((rc = http_exchange(e->http, "GetCACert", NULL, false, NULL, 0,
	    SMIME_SCEP_MAX_MESSAGE, &b, type, sizeof(type), err)) != 0)
		return rc;
	/* RFC 8894 4.2.1.1 and 4.2.1.2: the two answers it describes. */
	if (!cli_media_is(type, "application/x-x509-ca-cert") &&
	    !cli_media_is(type, "application/x-x509-ca-ra-cert")) {
		rc = smime_error_set(err, SMIME_E_INPUT, "%s: GetCACert answered %.60s, not "
		    "application/x-x509-ca-cert or application/x-x509-ca-ra-cert: is this the SCEP "
		    "server's URL?", e->http->base, type[0] != '\0' ? type : "an untyped body");
		cli_body_free(&b);
		return rc;
	}
	rc = smime_scep_ca_certs(b.data, b.len, &e->ca, &e->ra, &e->ca_all, err);
	cli_body_free(&b);
	if (rc != 0)
		return rewrap(err, rc, "GetCACert: ", "");
	smime_cert_fingerprint(e->ca, e->ca_fp);
	smime_cert_fingerprint(e->ra, e->ra_fp);
	return 0;
}

/* Does cert chain to anchor (the one trusted certificate), through extra? */
static bool
chains_to(X509 *cert, X509 *anchor, STACK_OF(X509) *extra)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	bool ok = false;

	if (store != NULL && ctx != NULL && X509_STORE_add_cert(store, anchor) &&
	    X509_STORE_CTX_init(ctx, store, cert, extra)) {
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN);
		ok = X509_verify_cert(ctx) == 1;
	}
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return ok;
}

/* A fingerprint as given: 64 hex digits, with or without colons, any case. */
static bool
normalize_pin(const char *in, char out[65])
{
	size_t n = 0;

	if (strncasecmp(in, "SHA256:", 7) == 0)
		in += 7;
	for (; *in != '\0'; in++) {
		if (*in == ':' || *in == ' ')
			continue;
		if (!isxdigit((unsigned char)*in) || n == 64)
			return false;
		out[n++] = (char)tolower((unsigned char)*in);
	}
	out[n] = '\0';
	return n == 64;
}

/*
 * Trust the CA of the GetCACert answer, or refuse before anything is sent:
 * see the head of the file.  current (may be NULL) is the certificate
 * renewed.
 */
static int
trust_ca(struct enroll *e, X509 *current, struct smime_error *err)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *untrusted = NULL;
	char pin[65], *subject = smime_cert_subject(e->ca);
	int rc = 0;

	/* Distrust overrides every way of trusting below, the pin included. */
	for (int i = -1; i < sk_X509_num(e->ca_all); i++) {
		X509 *x = i < 0 ? e->ca : sk_X509_value(e->ca_all, i);
		char fp[65];

		smime_cert_fingerprint(x, fp);
		if ((i < 0 || (e->pin != NULL && normalize_pin(e->pin, pin) &&
		    strcmp(fp, pin) == 0)) && smime_keystore_distrusted(e->ks, x)) {
			char *xs = smime_cert_subject(x);
			rc = smime_error_set(err, SMIME_E_BADSIG, "%s: the CA certificate '%s' (SHA-256 "
			    "fingerprint %s) is on the keystore's distrust list; nothing was sent",
			    e->http->base, xs != NULL ? xs : "?", fp);
			OPENSSL_free(xs);
			goto out;
		}
	}
	if (e->pin != NULL) {
		normalize_pin(e->pin, pin);
		if (strcmp(pin, e->ca_fp) == 0) {
			memcpy(e->anchor_fp, pin, sizeof(e->anchor_fp));
			goto out;
		}
		/* A certificate of the answer with the pin's fingerprint that the CA chains to. */
		for (int i = 0; i < sk_X509_num(e->ca_all); i++) {
			X509 *x = sk_X509_value(e->ca_all, i);
			char fp[65];

			smime_cert_fingerprint(x, fp);
			if (strcmp(fp, pin) == 0 && X509_check_ca(x) != 0 &&
			    chains_to(e->ca, x, e->ca_all)) {
				memcpy(e->anchor_fp, pin, sizeof(e->anchor_fp));
				goto out;
			}
		}
		rc = smime_error_set(err, SMIME_E_BADSIG, "%s: the CA certificate '%s' has the "
		    "SHA-256 fingerprint %s, not %s given with --ca-fingerprint; nothing was sent",
		    e->http->base, subject != NULL ? subject : "?", e->ca_fp, pin);
		goto out;
	}
	/* The certificate renewed was issued by this CA: it is the CA we enrolled with. */
	if (current != NULL && X509_check_issued(e->ca, current) == X509_V_OK &&
	    X509_verify(current, X509_get0_pubkey(e->ca)) == 1)
		goto out;
	ERR_clear_error();
	/* A chain to a trust anchor of the keystore. */
	if ((rc = smime_keystore_trust(e->ks, &store, &untrusted, err)) != 0)
		goto out;
	for (int i = 0; i < sk_X509_num(e->ca_all); i++)
		if (!X509_add_cert(untrusted, sk_X509_value(e->ca_all, i), X509_ADD_FLAG_UP_REF)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(ctx, store, e->ca, untrusted)) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if (X509_verify_cert(ctx) == 1)
		goto out;
	rc = smime_error_set(err, SMIME_E_BADSIG, "%s: the CA certificate '%s' (SHA-256 "
	    "fingerprint %s) does not chain to a trust anchor of the keystore (%s); nothing was "
	    "sent.  Check that fingerprint with the CA's administrator and give it with "
	    "--ca-fingerprint, or import the CA's root with smime import --trust", e->http->base,
	    subject != NULL ? subject : "?", e->ca_fp,
	    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
out:
	OPENSSL_free(subject);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	ERR_clear_error();
	return rc;
}

/* --- the request ---------------------------------------------------------- */

static int
make_key(enum key_type t, EVP_PKEY **key_r, struct smime_error *err)
{
	switch (t) {
	case KEY_EC_P256:
		*key_r = EVP_EC_gen("P-256");
		break;
	case KEY_RSA3072:
		*key_r = EVP_RSA_gen(3072);
		break;
	default:
		*key_r = EVP_RSA_gen(2048);
		break;
	}
	if (*key_r == NULL)
		return smime_error_ssl(err, SMIME_E_CRYPTO, "cannot make a %s key",
		    key_type_name(t));
	return 0;
}

/* CN=<this host's name>, printable and at most 64 characters; "smime" else. */
static X509_NAME *
host_name(void)
{
	char host[256] = "";
	X509_NAME *n = X509_NAME_new();
	size_t len;

	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	for (char *p = host; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
			*p = '-';
	if ((len = strlen(host)) > SCEP_CN_MAX)
		host[SCEP_CN_MAX] = '\0';
	if (len == 0)
		strcpy(host, "smime");
	if (n != NULL && !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_ASC,
	    (const unsigned char *)host, -1, -1, 0)) {
		X509_NAME_free(n);
		n = NULL;
	}
	return n;
}

/*
 * The PKCS#10 request for e->key: subject CN=<host> (the CA takes the
 * identity from the challenge or from the certificate renewed), and the
 * challengePassword (RFC 2985 5.4.1) of a first request.
 */
static int
make_csr(struct enroll *e, struct smime_error *err)
{
	X509_NAME *name = host_name();
	int rc = 0;

	if (name == NULL || (e->csr = X509_REQ_new()) == NULL ||
	    !X509_REQ_set_version(e->csr, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(e->csr, name) || !X509_REQ_set_pubkey(e->csr, e->key) ||
	    (e->challenge != NULL && !X509_REQ_add1_attr_by_NID(e->csr,
	    NID_pkcs9_challengePassword, MBSTRING_ASC, (const unsigned char *)e->challenge, -1)) ||
	    X509_REQ_sign(e->csr, e->key, e->md) <= 0)
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "cannot make the certificate request");
	X509_NAME_free(name);
	return rc;
}

/* Names printed for a FAILURE, and what may help. */
static const char *
fail_hint(const struct enroll *e, int fail)
{
	switch (fail) {
	case SMIME_SCEP_BAD_ALG:
		return e->key_type == KEY_EC_P256 ? "the CA's profile may not accept an EC P-256 "
		    "key: try --key rsa-2048" : "the CA's profile may not accept this key or "
		    "algorithm: try --key rsa-2048";
	case SMIME_SCEP_BAD_REQUEST:
		if (e->type == SMIME_SCEP_PKCSREQ)
			return e->key_type == KEY_EC_P256 ? "a wrong, used or expired challenge, "
			    "or a key the profile does not accept (try --key rsa-2048), is refused "
			    "this way" : "a wrong, used or expired challenge is refused this way: "
			    "ask for a new one";
		return "the CA does not renew this certificate this way";
	case SMIME_SCEP_BAD_MESSAGE_CHECK:
		return "the CA could not check the request's signature or decrypt it";
	case SMIME_SCEP_BAD_TIME:
		return "check this machine's clock";
	case SMIME_SCEP_BAD_CERT_ID:
		return "the CA does not know the certificate or request named";
	}
	return NULL;
}

/* The FAILURE reported: EXIT_REFUSED, with the fields in JSON. */
static int
refused(const struct enroll *e, const struct smime_scep_msg *m)
{
	const char *name = smime_scep_fail_name(m->fail_info), *hint = fail_hint(e, m->fail_info);

	if (g.json) {
		json_err(json_pack("{s:{s:s,s:s,s:i,s:s,s:s,s:s*}}", "error", "code", "refused",
		    "message", "the CA refused the request", "exit", EXIT_REFUSED,
		    "transaction_id", e->tid, "fail_info", name, "fail_text", m->fail_text));
	} else {
		fprintf(stderr, "smime enroll: the CA refused the %s (transaction %s): failInfo "
		    "%s%s%s%s%s\n", smime_scep_type_name((int)e->type), e->tid, name,
		    m->fail_text != NULL ? ": " : "", m->fail_text != NULL ? m->fail_text : "",
		    hint != NULL ? "; " : "", hint != NULL ? hint : "");
	}
	return EXIT_REFUSED;
}

/*
 * Send one request and read its CertRep into rep: signed by the RA of
 * GetCACert, our transactionID, our senderNonce as its recipientNonce.
 */
static int
exchange(struct enroll *e, enum smime_scep_type type, struct smime_scep_msg *rep,
    struct smime_error *err)
{
	struct smime_scep_out o = { 0 };
	unsigned char *der = NULL, nonce[SMIME_SCEP_NONCE];
	char *b64 = NULL, type_buf[128];
	const char *op = "PKIOperation";
	struct cli_body b = { 0 };
	size_t len;
	int rc;

	o.type = type;
	o.transaction_id = e->tid;
	o.signer = e->signer;
	o.key = e->signer_key;
	o.md = e->md;
	o.recipient = e->ra;
	o.cipher = e->cipher;
	if (type == SMIME_SCEP_CERTPOLL) {
		/* RFC 8894 3.3.3: IssuerAndSubject, the CA's name and the request's subject. */
		o.issuer = X509_get_subject_name(e->ca);
		o.subject = X509_REQ_get_subject_name(e->csr);
	} else {
		o.csr = e->csr;
	}
	if ((rc = smime_scep_write(&o, &der, &len, nonce, err)) != 0)
		return rc;
	if (e->caps.post) {
		rc = http_exchange(e->http, op, NULL, true, der, len, SMIME_SCEP_MAX_MESSAGE, &b,
		    type_buf, sizeof(type_buf), err);
	} else {
		/* RFC 8894 4.3: GET with the base64 of the pkiMessage (then URL-encoded). */
		size_t n = 4 * ((len + 2) / 3) + 1;

		if ((b64 = malloc(n)) == NULL) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
		EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
		rc = http_exchange(e->http, op, b64, false, NULL, 0, SMIME_SCEP_MAX_MESSAGE, &b,
		    type_buf, sizeof(type_buf), err);
	}
	if (rc != 0)
		goto out;
	/* RFC 8894 4.3: "Content-Type: application/x-pki-message" */
	if (!cli_media_is(type_buf, "application/x-pki-message")) {
		rc = smime_error_set(err, SMIME_E_INPUT, "%s: PKIOperation answered %.60s, not "
		    "application/x-pki-message", e->http->base,
		    type_buf[0] != '\0' ? type_buf : "an untyped body");
		goto out;
	}
	if ((rc = smime_scep_read(b.data, b.len, rep, err)) != 0) {
		char what[64];

		snprintf(what, sizeof(what), "the reply to the %s: ", smime_scep_type_name((int)type));
		rc = rewrap(err, rc == SMIME_E_POLICY || rc == SMIME_E_BADSIG ? rc : SMIME_E_INPUT,
		    what, "");
		goto out;
	}
	if (rep->type != SMIME_SCEP_CERTREP) {
		rc = smime_error_set(err, SMIME_E_INPUT, "%s: the reply to the %s is a %s, not a "
		    "CertRep", e->http->base, smime_scep_type_name((int)type),
		    smime_scep_type_name(rep->type));
		goto out;
	}
	/* RFC 8894 3.3.2: the CertRep is signed by the CA or RA we encrypted to. */
	if (rep->signer == NULL || X509_cmp(rep->signer, e->ra) != 0) {
		rc = smime_error_set(err, SMIME_E_BADSIG, "%s: the reply is not signed by the %s "
		    "of GetCACert (SHA-256 %.16s...)", e->http->base, e->ra == e->ca ? "CA" : "RA",
		    e->ra_fp);
		goto out;
	}
	if (rep->digest_nid == NID_sha1 && !e->allow_weak) {
		rc = smime_error_set(err, SMIME_E_POLICY, "%s: the reply is signed with SHA-1; "
		    "--allow-weak accepts it", e->http->base);
		goto out;
	}
	/* RFC 8894 3.2.1.1: "the same transactionID"; 3.2.1.5: the nonces. */
	if (strcmp(rep->transaction_id, e->tid) != 0) {
		rc = smime_error_set(err, SMIME_E_BADSIG, "%s: the reply is for another "
		    "transaction than %s", e->http->base, e->tid);
		goto out;
	}
	if (rep->recipient_nonce_len != SMIME_SCEP_NONCE ||
	    CRYPTO_memcmp(rep->recipient_nonce, nonce, SMIME_SCEP_NONCE) != 0) {
		rc = smime_error_set(err, SMIME_E_BADSIG, "%s: the reply's recipientNonce is not "
		    "the senderNonce of the request (RFC 8894 3.2.1.5): a replay?", e->http->base);
		goto out;
	}
	if (rep->status == SMIME_SCEP_SUCCESS && rep->cipher_nid == NID_des_ede3_cbc &&
	    !e->allow_weak) {
		rc = smime_error_set(err, SMIME_E_POLICY, "%s: the reply is encrypted with triple "
		    "DES; --allow-weak accepts it", e->http->base);
		goto out;
	}
out:
	cli_body_free(&b);
	free(b64);
	OPENSSL_free(der);
	return rc;
}

/*
 * A SUCCESS: the certificate for our key, from the envelope our signer's
 * key opens, chained to the CA.
 */
static int
take_success(struct enroll *e, struct smime_scep_msg *rep, struct smime_error *err)
{
	STACK_OF(X509) *extra = NULL;
	int rc;

	if ((rc = smime_scep_open(rep, e->signer, e->signer_key, err)) != 0)
		return rewrap(err, rc, "the SUCCESS reply: ", "");
	if (sk_X509_num(rep->issued) <= 0)
		return smime_error_set(err, SMIME_E_INPUT, "%s: a SUCCESS without a certificate",
		    e->http->base);
	if ((e->issued_extra = sk_X509_new_null()) == NULL ||
	    (extra = sk_X509_new_null()) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(rep->issued); i++) {
		X509 *x = sk_X509_value(rep->issued, i);

		if (e->issued == NULL && EVP_PKEY_eq(X509_get0_pubkey(x), e->key) == 1) {
			if (!X509_up_ref(x)) {
				rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
				goto out;
			}
			e->issued = x;
		} else if (X509_check_ca(x) != 0 &&
		    !X509_add_cert(e->issued_extra, x, X509_ADD_FLAG_UP_REF)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
	}
	ERR_clear_error();
	if (e->issued == NULL) {
		rc = smime_error_set(err, SMIME_E_BADSIG, "%s: the SUCCESS holds no certificate "
		    "for the key of this request", e->http->base);
		goto out;
	}
	for (int i = 0; i < sk_X509_num(e->ca_all); i++)
		if (!X509_add_cert(extra, sk_X509_value(e->ca_all, i), X509_ADD_FLAG_UP_REF)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
	for (int i = 0; i < sk_X509_num(e->issued_extra); i++)
		if (!X509_add_cert(extra, sk_X509_value(e->issued_extra, i), X509_ADD_FLAG_UP_REF)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
	if (!chains_to(e->issued, e->ca, extra)) {
		rc = smime_error_set(err, SMIME_E_BADSIG, "%s: the certificate issued does not "
		    "chain to the CA of GetCACert (or is not valid now)", e->http->base);
		goto out;
	}
out:
	sk_X509_pop_free(extra, X509_free);
	return rc;
}

/* --- the pending file ------------------------------------------------------ */

static int
pending_dir(const struct enroll *e, char *buf, size_t size, struct smime_error *err)
{
	if ((size_t)snprintf(buf, size, "%s/" SCEP_PENDING_DIR, smime_keystore_dir(e->ks)) >= size)
		return smime_error_set(err, SMIME_E_USAGE, "the keystore's path is too long");
	return 0;
}

/* What a memory BIO holds, as a string (caller frees), then the BIO freed;
 * NULL when ok is false or nothing was written. */
static char *
bio_text(BIO *b, bool ok)
{
	char *s = NULL, *p;
	long n;

	if (b != NULL && ok && (n = BIO_get_mem_data(b, &p)) > 0 &&
	    (s = malloc((size_t)n + 1)) != NULL) {
		memcpy(s, p, (size_t)n);
		s[n] = '\0';
	}
	BIO_free(b);
	return s;
}

static char *
pem_of_cert(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());

	return bio_text(b, b != NULL && PEM_write_bio_X509(b, x));
}

static char *
pem_of_csr(X509_REQ *r)
{
	BIO *b = BIO_new(BIO_s_mem());

	return bio_text(b, b != NULL && PEM_write_bio_X509_REQ(b, r));
}

/* The key as PEM "ENCRYPTED PRIVATE KEY": PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC. */
static char *
pem_of_key(EVP_PKEY *key, const char *pass)
{
	PKCS8_PRIV_KEY_INFO *p8i = EVP_PKEY2PKCS8(key);
	X509_ALGOR *pbe = NULL;
	X509_SIG *sig = NULL;
	BIO *b = BIO_new(BIO_s_mem());
	bool ok = false;

	if (p8i != NULL && b != NULL &&
	    (pbe = PKCS5_pbe2_set_iv_ex(EVP_aes_256_cbc(), SCEP_PENDING_ITER, NULL, 16, NULL,
	    NID_hmacWithSHA256, NULL)) != NULL &&
	    (sig = PKCS8_set0_pbe_ex(pass, (int)strlen(pass), p8i, pbe, NULL, NULL)) != NULL) {
		pbe = NULL;
		ok = PEM_write_bio_PKCS8(b, sig) == 1;
	}
	X509_ALGOR_free(pbe);
	X509_SIG_free(sig);
	PKCS8_PRIV_KEY_INFO_free(p8i);
	return bio_text(b, ok);
}

/*
 * Write the pending request to KEYSTORE/scep-pending/TID.json (0600, by
 * a temporary file, fsync and rename), once.
 */
static int
pending_save(struct enroll *e, struct smime_error *err)
{
	char dir[PATH_MAX], tb[32];
	char *key = NULL, *csr = NULL, *self = NULL, *text = NULL;
	json_t *j = NULL;
	int rc = 0;

	if (e->pending_path[0] != '\0')
		return 0;
	if ((rc = pending_dir(e, dir, sizeof(dir), err)) != 0)
		return rc;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", dir, strerror(errno));
	if ((key = pem_of_key(e->key, e->passphrase)) == NULL || (csr = pem_of_csr(e->csr)) ==
	    NULL || (e->type == SMIME_SCEP_PKCSREQ && (self = pem_of_cert(e->signer)) == NULL)) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "cannot encode the pending request");
		goto out;
	}
	j = json_pack("{s:i,s:s,s:s,s:s?,s:s,s:s,s:s,s:s,s:s?,s:s,s:s?,s:s?,s:s}", "version", 1,
	    "transaction_id", e->tid, "url", e->http->base, "profile", e->profile,
	    "type", e->type == SMIME_SCEP_PKCSREQ ? "PKCSReq" : "RenewalReq",
	    "key_type", key_type_name(e->key_type), "ca", e->ca_fp, "ra", e->ra_fp,
	    "anchor", e->anchor_fp[0] != '\0' ? e->anchor_fp : NULL,
	    "csr", csr, "self_signed", self,
	    "renewed", e->type == SMIME_SCEP_RENEWALREQ ? e->signer_fp : NULL,
	    "key", key);
	if (j == NULL || json_object_set_new(j, "created", json_string(time_iso(time(NULL), tb)))
	    != 0 || (text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if ((size_t)snprintf(e->pending_path, sizeof(e->pending_path), "%s/%s.json", dir,
	    e->tid) >= sizeof(e->pending_path)) {
		rc = smime_error_set(err, SMIME_E_USAGE, "the keystore's path is too long");
		goto out;
	}
	rc = durable_write(e->pending_path, text, strlen(text), err);
out:
	if (rc != 0)
		e->pending_path[0] = '\0';
	if (text != NULL) {
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	json_decref(j);
	if (key != NULL) {
		OPENSSL_cleanse(key, strlen(key));
		free(key);
	}
	free(csr);
	free(self);
	return rc;
}

static void
pending_remove(struct enroll *e)
{
	if (e->pending_path[0] != '\0' && unlink(e->pending_path) != 0 && errno != ENOENT &&
	    !g.json)
		fprintf(stderr, "smime enroll: warning: %s: %s\n", e->pending_path,
		    strerror(errno));
	e->pending_path[0] = '\0';
}

/* The one pending file that --resume takes: named by --transaction-id, or the only one. */
static int
pending_find(struct enroll *e, struct smime_error *err)
{
	char dir[PATH_MAX], found[NAME_MAX + 1] = "", names[512] = "";
	struct dirent *d;
	DIR *dh;
	int n = 0, rc;

	if ((rc = pending_dir(e, dir, sizeof(dir), err)) != 0)
		return rc;
	if ((dh = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return smime_error_set(err, SMIME_E_NOTFOUND, "no pending enrollment in this "
			    "keystore");
		return smime_error_set(err, SMIME_E_IO, "%s: %s", dir, strerror(errno));
	}
	while ((d = readdir(dh)) != NULL) {
		size_t len = strlen(d->d_name);

		if (len != 64 + 5 || strcmp(d->d_name + 64, ".json") != 0)
			continue;
		if (e->tid_arg != NULL && strncasecmp(d->d_name, e->tid_arg,
		    strlen(e->tid_arg)) != 0)
			continue;
		n++;
		snprintf(found, sizeof(found), "%s", d->d_name);
		if (strlen(names) + 70 < sizeof(names))
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%.64s",
			    names[0] != '\0' ? ", " : "", d->d_name);
	}
	closedir(dh);
	if (n == 0)
		return smime_error_set(err, SMIME_E_NOTFOUND, "no pending enrollment%s%s in this "
		    "keystore", e->tid_arg != NULL ? " with transaction " : "",
		    e->tid_arg != NULL ? e->tid_arg : "");
	if (n > 1)
		return smime_error_set(err, SMIME_E_USAGE, "%d pending enrollments (%s): name one "
		    "with --transaction-id TID", n, names);
	if ((size_t)snprintf(e->pending_path, sizeof(e->pending_path), "%s/%s", dir, found) >=
	    sizeof(e->pending_path))
		return smime_error_set(err, SMIME_E_USAGE, "the keystore's path is too long");
	return 0;
}

static const char *
jstr(json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

/*
 * Take the pending request up again: the key, the request, the signer,
 * the transaction and the CA's fingerprints as they were.  *url_r and
 * *profile_r are the file's (freed by the caller).
 */
static int
pending_load(struct enroll *e, char **url_r, char **profile_r, struct smime_error *err)
{
	json_t *j = NULL;
	json_error_t je;
	BIO *b = NULL;
	X509_SIG *sig = NULL;
	PKCS8_PRIV_KEY_INFO *p8i = NULL;
	const char *s;
	struct stat st;
	int rc = 0;

	*url_r = *profile_r = NULL;
	if (stat(e->pending_path, &st) != 0)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", e->pending_path, strerror(errno));
	if (st.st_size > (off_t)SCEP_PENDING_MAX)
		return smime_error_set(err, SMIME_E_INPUT, "%s: larger than %u octets",
		    e->pending_path, SCEP_PENDING_MAX);
	if ((j = json_load_file(e->pending_path, JSON_REJECT_DUPLICATES, &je)) == NULL ||
	    json_integer_value(json_object_get(j, "version")) != 1 ||
	    jstr(j, "transaction_id") == NULL || strlen(jstr(j, "transaction_id")) != 64 ||
	    jstr(j, "url") == NULL || jstr(j, "type") == NULL || jstr(j, "ca") == NULL ||
	    jstr(j, "ra") == NULL || jstr(j, "csr") == NULL || jstr(j, "key") == NULL ||
	    jstr(j, "key_type") == NULL) {
		rc = smime_error_set(err, SMIME_E_INPUT, "%s: not a pending enrollment smime "
		    "enroll wrote", e->pending_path);
		goto out;
	}
	snprintf(e->tid, sizeof(e->tid), "%s", jstr(j, "transaction_id"));
	snprintf(e->ca_fp, sizeof(e->ca_fp), "%s", jstr(j, "ca"));
	snprintf(e->ra_fp, sizeof(e->ra_fp), "%s", jstr(j, "ra"));
	/* The pinned CA (older files have none); it must be 64 hex digits. */
	if (jstr(j, "anchor") != NULL && !normalize_pin(jstr(j, "anchor"), e->anchor_fp)) {
		rc = smime_error_set(err, SMIME_E_INPUT, "%s: the anchor is not a SHA-256 "
		    "fingerprint", e->pending_path);
		goto out;
	}
	e->type = strcmp(jstr(j, "type"), "RenewalReq") == 0 ? SMIME_SCEP_RENEWALREQ :
	    SMIME_SCEP_PKCSREQ;
	e->renew = e->type == SMIME_SCEP_RENEWALREQ;
	e->key_type = key_type_parse(jstr(j, "key_type"));
	if ((*url_r = strdup(jstr(j, "url"))) == NULL ||
	    (jstr(j, "profile") != NULL && (*profile_r = strdup(jstr(j, "profile"))) == NULL)) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	s = jstr(j, "csr");
	if ((b = BIO_new_mem_buf(s, -1)) == NULL ||
	    (e->csr = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INPUT, "%s: the request", e->pending_path);
		goto out;
	}
	BIO_free(b);
	s = jstr(j, "key");
	/* RFC 5958 3 / RFC 8018 6.2: the key under the keystore passphrase. */
	if ((b = BIO_new_mem_buf(s, -1)) == NULL ||
	    (sig = PEM_read_bio_PKCS8(b, NULL, NULL, NULL)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INPUT, "%s: the key", e->pending_path);
		goto out;
	}
	if ((p8i = PKCS8_decrypt(sig, e->passphrase, (int)strlen(e->passphrase))) == NULL ||
	    (e->key = EVP_PKCS82PKEY(p8i)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "%s: the key does not decrypt with the "
		    "keystore passphrase", e->pending_path);
		goto out;
	}
	if (EVP_PKEY_eq(X509_REQ_get0_pubkey(e->csr), e->key) != 1) {
		rc = smime_error_set(err, SMIME_E_INPUT, "%s: the key is not the request's",
		    e->pending_path);
		goto out;
	}
	BIO_free(b);
	b = NULL;
	if (e->type == SMIME_SCEP_PKCSREQ) {
		if ((s = jstr(j, "self_signed")) == NULL || (b = BIO_new_mem_buf(s, -1)) == NULL ||
		    (e->signer = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL ||
		    EVP_PKEY_eq(X509_get0_pubkey(e->signer), e->key) != 1) {
			rc = smime_error_ssl(err, SMIME_E_INPUT, "%s: the self-signed certificate",
			    e->pending_path);
			goto out;
		}
		if (!EVP_PKEY_up_ref(e->key)) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
		e->signer_key = e->key;
	} else {
		if ((s = jstr(j, "renewed")) == NULL || strlen(s) != 64) {
			rc = smime_error_set(err, SMIME_E_INPUT, "%s: no certificate renewed",
			    e->pending_path);
			goto out;
		}
		snprintf(e->signer_fp, sizeof(e->signer_fp), "%s", s);
		if ((rc = smime_keystore_cert(e->ks, e->signer_fp, &e->signer, err)) != 0 ||
		    (rc = smime_keystore_key(e->ks, e->signer_fp, &e->signer_key, err)) != 0)
			goto out;
	}
out:
	PKCS8_PRIV_KEY_INFO_free(p8i);
	X509_SIG_free(sig);
	BIO_free(b);
	json_decref(j);
	return rc;
}

/* --- the identity renewed -------------------------------------------------- */

/*
 * The signing identity to renew: the newest valid one for --email, or for
 * the only address of the keystore's signing identities.
 */
static int
choose_current(struct enroll *e, struct smime_error *err)
{
	char first[256] = "";
	time_t now = time(NULL);
	size_t n = smime_keystore_count(e->ks);
	int rc;

	if (e->email == NULL) {
		for (size_t i = 0; i < n; i++) {
			const struct smime_entry *en = smime_keystore_entry(e->ks, i);

			if (en->kind != SMIME_ENTRY_IDENTITY || !en->has_key ||
			    !(en->roles & SMIME_ROLE_SIGN) || now < en->not_before ||
			    now > en->not_after || en->emails[0] == '\0')
				continue;
			if (first[0] == '\0')
				snprintf(first, sizeof(first), "%s", en->emails);
			else if (strcmp(first, en->emails) != 0)
				return smime_error_set(err, SMIME_E_USAGE, "signing identities for "
				    "several addresses (%s, %s, ...): name one with --email ADDRESS",
				    first, en->emails);
		}
	}
	if ((rc = smime_keystore_identity(e->ks, SMIME_ROLE_SIGN, e->email, 0, e->signer_fp,
	    err)) != 0)
		return rewrap(err, rc, "", ": nothing to renew (smime enroll without --renew makes "
		    "the first one)");
	if ((rc = smime_keystore_cert(e->ks, e->signer_fp, &e->signer, err)) != 0 ||
	    (rc = smime_keystore_key(e->ks, e->signer_fp, &e->signer_key, err)) != 0)
		return rc;
	if (e->key_type == KEY_DEFAULT) {
		/* A renewal keeps the kind of key unless told otherwise. */
		int id = EVP_PKEY_get_base_id(e->signer_key);

		e->key_type = id == EVP_PKEY_EC ? KEY_EC_P256 :
		    EVP_PKEY_get_bits(e->signer_key) >= 3072 ? KEY_RSA3072 : KEY_RSA2048;
	}
	return 0;
}

/* --- storing the result ---------------------------------------------------- */

static int
store(struct enroll *e, struct smime_error *err)
{
	int rc;

	if ((rc = smime_keystore_add(e->ks, e->issued, e->key, SMIME_ENTRY_IDENTITY, NULL,
	    err)) != 0)
		return rc;
	/*
	 * The CA (and the chain the answers gave) to build chains with; trust
	 * is given only to the certificate the user pinned by fingerprint, so
	 * that colleagues' mail signed under the same CA verifies.
	 */
	for (int i = 0; i < sk_X509_num(e->ca_all); i++) {
		X509 *x = sk_X509_value(e->ca_all, i);
		char fp[65];

		smime_cert_fingerprint(x, fp);
		if (X509_check_ca(x) != 0 &&
		    (rc = smime_keystore_add(e->ks, x, NULL, e->anchor_fp[0] != '\0' &&
		    strcmp(fp, e->anchor_fp) == 0 ? SMIME_ENTRY_ANCHOR : SMIME_ENTRY_CA, NULL,
		    err)) != 0)
			return rc;
	}
	for (int i = 0; i < sk_X509_num(e->issued_extra); i++)
		if ((rc = smime_keystore_add(e->ks, sk_X509_value(e->issued_extra, i), NULL,
		    SMIME_ENTRY_CA, NULL, err)) != 0)
			return rc;
	return smime_keystore_commit(e->ks, err);
}

static int
report_success(struct enroll *e)
{
	STACK_OF(OPENSSL_STRING) *emails = smime_cert_emails(e->issued);
	char fp[65], tb[32], list[512] = "";
	char *subject = smime_cert_subject(e->issued);
	const ASN1_TIME *na = X509_get0_notAfter(e->issued);
	struct tm tm;
	time_t until = 0;
	bool usable = (smime_cert_roles(e->issued) & SMIME_ROLE_SIGN) &&
	    smime_cert_email_protection(e->issued) && sk_OPENSSL_STRING_num(emails) > 0;

	if (ASN1_TIME_to_tm(na, &tm))
		until = timegm(&tm);
	smime_cert_fingerprint(e->issued, fp);
	for (int i = 0; i < sk_OPENSSL_STRING_num(emails); i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
		    i > 0 ? ", " : "", sk_OPENSSL_STRING_value(emails, i));
	if (g.json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:s?,s:s,s:s,s:s,s:s,s:b,s:s*}",
		    "status", "issued", "fingerprint", fp, "transaction_id", e->tid,
		    "subject", subject, "emails", list, "not_after", time_iso(until, tb),
		    "key", key_type_name(e->key_type), "ca", e->ca_fp, "signing", usable,
		    "renewed", e->renew ? e->signer_fp : NULL);
		json_out(j);
	} else if (!g.quiet) {
		fprintf(stderr, "smime enroll: %s signing identity SHA256:%.16s %s <%s>, %s key, "
		    "valid until %s\n", e->renew ? "renewed:" : "enrolled:", fp,
		    subject != NULL ? subject : "?", list[0] != '\0' ? list : "no address",
		    key_type_name(e->key_type), time_iso(until, tb));
		if (e->renew)
			fprintf(stderr, "smime enroll: the certificate renewed (SHA256:%.16s) stays "
			    "in the keystore for the mail it signed\n", e->signer_fp);
	}
	if (!usable && !g.json)
		fprintf(stderr, "smime enroll: warning: the certificate is not usable to sign mail "
		    "(no email address, or its key usage or extended key usage excludes it); it "
		    "is kept in the keystore\n");
	OPENSSL_free(subject);
	sk_OPENSSL_STRING_pop_free(emails, str_free);
	return usable ? EXIT_OK : EXIT_POLICY;
}

/* --- the command ------------------------------------------------------------ */

static void
help(void)
{
	printf("usage: smime enroll --scep URL (--challenge-file FILE | --challenge SECRET)\n"
	    "                    [--profile NAME] [--key rsa-2048|rsa-3072|ec-p256]\n"
	    "                    [--ca-fingerprint SHA256] [--cacert FILE]\n"
	    "                    [--poll-interval SECONDS] [--timeout SECONDS] [--allow-weak]\n"
	    "       smime enroll --renew [--scep URL] [--email ADDRESS] [options]\n"
	    "       smime enroll --resume [--transaction-id TID] [--timeout SECONDS]\n\n"
	    "Get a signing certificate from a SCEP server (RFC 8894), such as smimed's\n"
	    "/scep endpoint: a key is made on this machine (RSA-2048 unless --key says\n"
	    "otherwise), the request goes to the CA with the one-time challenge, and the\n"
	    "certificate is stored with the key in the keystore as the signing identity\n"
	    "of its address.  --renew renews the current signing identity with a new key,\n"
	    "signed with the current certificate (no challenge).\n\n"
	    "  --scep URL              the SCEP server (else $SMIME_SCEP)\n"
	    "  --challenge-file FILE   the challenge, first line of FILE (- : stdin)\n"
	    "  --challenge SECRET      the challenge itself (visible to other users in ps)\n"
	    "  --profile NAME          the SCEP profile or CA (the message= of the requests)\n"
	    "  --key TYPE              rsa-2048 (default), rsa-3072 or ec-p256\n"
	    "  --ca-fingerprint HEX    the SHA-256 fingerprint the CA certificate must have;\n"
	    "                          without it the CA must chain to a keystore anchor\n"
	    "  --cacert FILE           CA certificates for an https:// URL\n"
	    "  --poll-interval SEC     between two polls of a PENDING request (default 10)\n"
	    "  --timeout SEC           how long to wait for a PENDING request (default 600)\n"
	    "  --email ADDRESS         the identity to renew, when there are several\n"
	    "  --resume                take up a PENDING request again (--transaction-id TID)\n"
	    "  --allow-weak            accept a server that offers SHA-1 or triple DES only\n\n"
	    "exit status: 0 issued; 1 the CA or a reply is not trusted; 2 usage; 3 an answer\n"
	    "is malformed; 4 nothing to renew or resume; 5 refused by policy; 7 network or\n"
	    "keystore error; 8 the CA refused (FAILURE); 9 still PENDING (--resume later).\n"
	    "See smime-enroll(1).\n");
}

static bool
parse_seconds(const char *s, long min, long max, long *r)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return false;
	*r = v;
	return true;
}

/* The challenge: --challenge-file (first line), --challenge, or a prompt. */
static int
get_challenge(struct enroll *e, const char *arg, const char *file, struct smime_error *err)
{
	char buf[SMIME_SCEP_MAX_CHALLENGE + 2];

	if (file != NULL) {
		if ((e->challenge = read_secret_file(strcmp(file, "-") == 0 ? "/dev/stdin" : file,
		    err)) == NULL)
			return err->code;
	} else if (arg != NULL) {
		if ((e->challenge = strdup(arg)) == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	} else {
		int fd = open("/dev/tty", O_RDWR | O_NOCTTY);

		if (fd < 0)
			return smime_error_set(err, SMIME_E_USAGE, "no challenge: give "
			    "--challenge-file FILE (the one-time secret of the SCEP profile)");
		close(fd);
		if (EVP_read_pw_string(buf, sizeof(buf), "SCEP challenge: ", 0) != 0) {
			OPENSSL_cleanse(buf, sizeof(buf));
			return smime_error_set(err, SMIME_E_USAGE, "no challenge");
		}
		e->challenge = strdup(buf);
		OPENSSL_cleanse(buf, sizeof(buf));
		if (e->challenge == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	/* RFC 2985 5.4.1: a DirectoryString; printable ASCII is what SCEP servers take. */
	size_t n = strlen(e->challenge);
	if (n == 0 || n > SMIME_SCEP_MAX_CHALLENGE)
		return smime_error_set(err, SMIME_E_USAGE, "a challenge of %zu characters (1 to %d)",
		    n, SMIME_SCEP_MAX_CHALLENGE);
	for (size_t i = 0; i < n; i++)
		if (e->challenge[i] < 0x20 || e->challenge[i] > 0x7e)
			return smime_error_set(err, SMIME_E_USAGE, "the challenge holds other than "
			    "printable ASCII");
	return 0;
}

/*
 * The PENDING wait: a CertPoll every --poll-interval until e->deadline.
 * 0 when answered (rep), -1 when the time ran out, else an error code.
 */
static int
poll_until(struct enroll *e, struct smime_scep_msg *rep, struct smime_error *err)
{
	int rc;

	for (;;) {
		long left = (long)(e->deadline - time(NULL));

		if (left <= 0)
			return -1;
		sleep((unsigned)(left < e->interval ? left : e->interval));
		smime_scep_msg_clear(rep);
		/* RFC 8894 3.3.3: CertPoll, signed as the request was. */
		if ((rc = exchange(e, SMIME_SCEP_CERTPOLL, rep, err)) != 0)
			return rc;
		if (rep->status != SMIME_SCEP_PENDING)
			return 0;
	}
}

/*
 * --resume: the pending request as it was, to the same server, whose CA
 * and RA must be those it was sent to; the first CertPoll's answer in rep.
 * *url_r and *profile_r (the request's) are freed by the caller.
 */
static int
start_resume(struct enroll *e, struct smime_scep_msg *rep, char **url_r, char **profile_r,
    struct smime_error *err)
{
	char ca_fp[65], ra_fp[65];
	int rc;

	if ((rc = pending_find(e, err)) != 0 ||
	    (rc = pending_load(e, url_r, profile_r, err)) != 0) {
		e->pending_path[0] = '\0';  /* not ours to remove */
		return rc;
	}
	e->profile = *profile_r;
	snprintf(ca_fp, sizeof(ca_fp), "%s", e->ca_fp);
	snprintf(ra_fp, sizeof(ra_fp), "%s", e->ra_fp);
	if ((rc = http_new(*url_r, "the pending request's URL", e->profile, e->cacert, &e->http,
	    err)) != 0 || (rc = get_caps(e, err)) != 0 || (rc = choose_algorithms(e, err)) != 0 ||
	    (rc = get_ca(e, err)) != 0)
		return rc;
	/* The CA trusted when the request was sent, and no other. */
	if (strcmp(ca_fp, e->ca_fp) != 0 || strcmp(ra_fp, e->ra_fp) != 0)
		return smime_error_set(err, SMIME_E_BADSIG, "%s: the CA or RA certificate is not "
		    "the one the request was sent to (CA SHA-256 %.16s..., now %.16s...)",
		    e->http->base, ca_fp, e->ca_fp);
	progress("polling the %s of transaction %s", smime_scep_type_name((int)e->type), e->tid);
	e->deadline = time(NULL) + e->wait;
	return exchange(e, SMIME_SCEP_CERTPOLL, rep, err);
}

/*
 * A new request: the identity renewed, the server's capabilities and CA
 * (trusted, or nothing is sent), the key, the request and its signer; the
 * CA's answer in rep.
 */
static int
start_request(struct enroll *e, struct smime_scep_msg *rep, struct smime_error *err)
{
	int rc;

	if ((e->renew && (rc = choose_current(e, err)) != 0) ||
	    (rc = get_caps(e, err)) != 0 || (rc = choose_algorithms(e, err)) != 0 ||
	    (rc = get_ca(e, err)) != 0 || (rc = trust_ca(e, e->renew ? e->signer : NULL, err)) != 0)
		return rc;
	if (e->key_type == KEY_DEFAULT)
		e->key_type = KEY_RSA2048;
	e->type = e->renew ? SMIME_SCEP_RENEWALREQ : SMIME_SCEP_PKCSREQ;
	if ((rc = make_key(e->key_type, &e->key, err)) != 0 || (rc = make_csr(e, err)) != 0 ||
	    (rc = smime_scep_transaction_id(e->key, e->tid, err)) != 0)
		return rc;
	if (!e->renew) {
		/* RFC 8894 2.3: the first request is signed with a self-signed certificate. */
		if ((rc = smime_scep_self_signed(e->csr, e->key, &e->signer, err)) != 0)
			return rc;
		if (!EVP_PKEY_up_ref(e->key))
			return smime_error_set(err, SMIME_E_INTERNAL, "key reference");
		e->signer_key = e->key;
	}
	progress("%s to %s%s%s (transaction %s, %s key, %s, %s)",
	    smime_scep_type_name((int)e->type), e->http->base,
	    e->profile != NULL ? ", profile " : "", e->profile != NULL ? e->profile : "", e->tid,
	    key_type_name(e->key_type), EVP_MD_get0_name(e->md), EVP_CIPHER_get0_name(e->cipher));
	e->deadline = time(NULL) + e->wait;
	return exchange(e, e->type, rep, err);
}

/* Still PENDING when --timeout ran out: EXIT_PENDING, with what to do. */
static int
still_pending(const struct enroll *e)
{
	if (g.json) {
		json_err(json_pack("{s:{s:s,s:s,s:i,s:s,s:s}}", "error", "code", "pending",
		    "message", "the request is still pending", "exit", EXIT_PENDING,
		    "transaction_id", e->tid, "pending_file", e->pending_path));
	} else {
		fprintf(stderr, "smime enroll: the request is still PENDING after %ld s (transaction "
		    "%s): the CA's administrator must approve it; then take it up again with smime "
		    "enroll --resume --transaction-id %s\n", e->wait, e->tid, e->tid);
	}
	return EXIT_PENDING;
}

/*
 * The CA's answer in rep: PENDING is kept and polled, FAILURE reported,
 * SUCCESS checked and stored.  Returns the exit status (printed).
 */
static int
conclude(struct enroll *e, struct smime_scep_msg *rep)
{
	struct smime_error err, e2;
	int rc;

	if (rep->status == SMIME_SCEP_PENDING) {
		if ((rc = pending_save(e, &err)) != 0)
			return fail(CMD, &err);
		if (e->wait > 0)
			progress("the request is PENDING (transaction %s): polling every %ld s for up "
			    "to %ld s", e->tid, e->interval, e->wait);
		if ((rc = poll_until(e, rep, &err)) < 0)
			return still_pending(e);
		if (rc > 0) {
			/* The request stays pending and can be taken up again. */
			rewrap(&err, rc, "", "; the request stays pending: smime enroll --resume "
			    "takes it up again");
			return fail(CMD, &err);
		}
	}
	if (rep->status == SMIME_SCEP_FAILURE) {
		pending_remove(e);
		return refused(e, rep);
	}
	if ((rc = take_success(e, rep, &err)) != 0)
		return fail(CMD, &err);
	if ((rc = store(e, &err)) != 0) {
		/* Issued but not stored: keep the request, whose poll answers it again. */
		if (pending_save(e, &e2) == 0)
			rewrap(&err, rc, "", "; the request is kept: smime enroll --resume asks for "
			    "the certificate again");
		return fail(CMD, &err);
	}
	pending_remove(e);
	return report_success(e);
}

int
cmd_enroll(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "scep", required_argument, NULL, O_SCEP },
		{ "challenge", required_argument, NULL, O_CHALLENGE },
		{ "challenge-file", required_argument, NULL, O_CHALLENGE_FILE },
		{ "profile", required_argument, NULL, O_PROFILE },
		{ "key", required_argument, NULL, O_KEY },
		{ "cacert", required_argument, NULL, O_CACERT },
		{ "ca-fingerprint", required_argument, NULL, O_PIN },
		{ "poll-interval", required_argument, NULL, O_POLL },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "renew", no_argument, NULL, O_RENEW },
		{ "email", required_argument, NULL, O_EMAIL },
		{ "resume", no_argument, NULL, O_RESUME },
		{ "transaction-id", required_argument, NULL, O_TID },
		{ "allow-weak", no_argument, NULL, O_ALLOW_WEAK },
		GLOBAL_LONG_OPTIONS, { NULL, 0, NULL, 0 },
	};
	struct enroll e = { 0 };
	struct smime_scep_msg rep = { 0 };
	struct smime_error err;
	const char *challenge_arg = NULL, *challenge_file = NULL;
	char *saved_url = NULL, *saved_profile = NULL, pin[65];
	bool curl_up = false;
	int c, rc = EXIT_OK;

	e.interval = SCEP_POLL_DEFAULT;
	e.wait = SCEP_WAIT_DEFAULT;
	smime_scep_msg_clear(&rep);
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case O_SCEP: e.url = optarg; e.url_src = "--scep"; break;
		case O_CHALLENGE: challenge_arg = optarg; break;
		case O_CHALLENGE_FILE: challenge_file = optarg; break;
		case O_PROFILE: e.profile = optarg; break;
		case O_KEY:
			if ((e.key_type = key_type_parse(optarg)) == KEY_DEFAULT)
				return usage_error(CMD, "--key %s: rsa-2048, rsa-3072 or ec-p256", optarg);
			break;
		case O_CACERT: e.cacert = optarg; break;
		case O_PIN: e.pin = optarg; break;
		case O_POLL:
			if (!parse_seconds(optarg, 1, SCEP_POLL_MAX, &e.interval))
				return usage_error(CMD, "--poll-interval %s: seconds from 1 to %ld", optarg,
				    SCEP_POLL_MAX);
			break;
		case O_TIMEOUT:
			if (!parse_seconds(optarg, 0, SCEP_WAIT_MAX, &e.wait))
				return usage_error(CMD, "--timeout %s: seconds from 0 to %ld", optarg,
				    SCEP_WAIT_MAX);
			break;
		case O_RENEW: e.renew = true; break;
		case O_EMAIL: e.email = optarg; break;
		case O_RESUME: e.resume = true; break;
		case O_TID: e.tid_arg = optarg; break;
		case O_ALLOW_WEAK: e.allow_weak = true; break;
		case 'h':
			help();
			return EXIT_OK;
		default:
			if (!global_option(c, optarg))
				return usage_error(CMD, "unknown option");
		}
	}
	if (optind < argc)
		return usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	if (e.url == NULL && (e.url = getenv("SMIME_SCEP")) != NULL) {
		e.url_src = "SMIME_SCEP";
		if (e.url[0] == '\0')
			e.url = NULL;
	}
	if (e.resume && (e.renew || challenge_arg != NULL || challenge_file != NULL ||
	    e.key_type != KEY_DEFAULT || e.profile != NULL || e.email != NULL || e.pin != NULL))
		return usage_error(CMD, "--resume takes up the request as it was: only "
		    "--transaction-id, --cacert, --poll-interval, --timeout and --allow-weak go "
		    "with it");
	if (e.tid_arg != NULL && !e.resume)
		return usage_error(CMD, "--transaction-id goes with --resume");
	if (e.renew && (challenge_arg != NULL || challenge_file != NULL))
		return usage_error(CMD, "--renew needs no challenge: the request is signed with the "
		    "current certificate");
	if (!e.renew && e.email != NULL && !e.resume)
		return usage_error(CMD, "--email chooses the identity to --renew; a first "
		    "enrollment takes its address from the challenge");
	if (challenge_arg != NULL && challenge_file != NULL)
		return usage_error(CMD, "--challenge and --challenge-file: one of the two");
	if (e.pin != NULL && !normalize_pin(e.pin, pin))
		return usage_error(CMD, "--ca-fingerprint %s: the 64 hex digits of a SHA-256 "
		    "fingerprint", e.pin);
	if (e.profile != NULL && (e.profile[0] == '\0' || strlen(e.profile) > SCEP_MAX_PROFILE))
		return usage_error(CMD, "--profile: a name of 1 to %d characters", SCEP_MAX_PROFILE);
	if (!e.resume && (e.url == NULL || e.url[0] == '\0'))
		return usage_error(CMD, "no SCEP server: give --scep URL or set SMIME_SCEP");
	if (!e.resume && !e.renew && (rc = get_challenge(&e, challenge_arg, challenge_file,
	    &err)) != 0) {
		rc = fail(CMD, &err);
		goto out;
	}

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		smime_error_set(&err, SMIME_E_INTERNAL, "libcurl failed to initialise");
		rc = fail(CMD, &err);
		goto out;
	}
	curl_up = true;
	if (!e.resume && (rc = http_new(e.url, e.url_src, e.profile, e.cacert, &e.http, &err)) !=
	    0) {
		rc = fail(CMD, &err);
		goto out;
	}
	if ((rc = open_keystore(CMD, !e.renew && !e.resume, &e.ks)) != EXIT_OK)
		goto out;
	if ((rc = get_passphrase(&e, &err)) != 0) {
		rc = fail(CMD, &err);
		goto out;
	}
	if (e.resume)
		rc = start_resume(&e, &rep, &saved_url, &saved_profile, &err);
	else
		rc = start_request(&e, &rep, &err);
	if (rc != 0) {
		rc = fail(CMD, &err);
		goto out;
	}
	rc = conclude(&e, &rep);
out:
	smime_scep_msg_clear(&rep);
	free(saved_url);
	free(saved_profile);
	enroll_clear(&e);
	if (curl_up)
		curl_global_cleanup();
	return rc;
}

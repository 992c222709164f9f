/*
 * scep_load: SCEP enrollments against smimed, many at once (bench/scep.sh).
 *
 *   scep_load --url URL/scep --ra RA.pem --challenges FILE --clients N
 *             [--keys N] [--replies DIR]
 *
 * Before the clock starts, one PKCSReq per challenge (a line of FILE) is
 * made with libsmime: RSA-2048 keys from a pool of --keys (made first),
 * each request with its own transactionID.  Then --clients threads POST
 * them all over keep-alive connections, each timing its requests.  After
 * the clock stops every answer is read: HTTP 200 and a CertRep SUCCESS
 * with one certificate, else it counts as failed.  Prints one JSON object:
 * n, ok, failed, seconds, rate (enrollments/s), and latency percentiles
 * in milliseconds.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <smime/smime.h>

#define MAX_REQUESTS 200000

struct item {
	unsigned char *msg;
	size_t len;
	EVP_PKEY *key;          /* borrowed from the pool */
	X509 *self;
	unsigned char *reply;
	size_t reply_len, reply_cap;
	long http;
	double ms;
};

static struct item *items;
static size_t n_items;
static atomic_size_t next_item;
static const char *url;

static void
die(const char *what)
{
	fprintf(stderr, "scep_load: %s\n", what);
	exit(2);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	struct item *it = arg;
	size_t len = size * n;

	if (it->reply_len + len > it->reply_cap) {
		size_t cap = (it->reply_len + len) * 2;
		unsigned char *r = realloc(it->reply, cap);

		if (r == NULL)
			return 0;
		it->reply = r;
		it->reply_cap = cap;
	}
	memcpy(it->reply + it->reply_len, p, len);
	it->reply_len += len;
	return len;
}

static void *
client(void *arg)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/x-pki-message");
	size_t i;

	(void)arg;
	if (c == NULL || h == NULL)
		die("curl");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	while ((i = atomic_fetch_add(&next_item, 1)) < n_items) {
		struct item *it = &items[i];
		double t0 = now_ms();

		curl_easy_setopt(c, CURLOPT_POSTFIELDS, it->msg);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)it->len);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, it);
		if (curl_easy_perform(c) == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &it->http);
		it->ms = now_ms() - t0;
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	const char *ra_path = NULL, *chal_path = NULL;
	int clients = 16, n_keys = 16;
	struct smime_error err;
	char line[512];
	FILE *f;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--url") == 0)
			url = argv[i + 1];
		else if (strcmp(argv[i], "--ra") == 0)
			ra_path = argv[i + 1];
		else if (strcmp(argv[i], "--challenges") == 0)
			chal_path = argv[i + 1];
		else if (strcmp(argv[i], "--clients") == 0)
			clients = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--keys") == 0)
			n_keys = atoi(argv[i + 1]);
		else
			die(argv[i]);
	}
	if (url == NULL || ra_path == NULL || chal_path == NULL || clients < 1 || clients > 1024 ||
	    n_keys < 1 || n_keys > 4096)
		die("usage: scep_load --url URL --ra RA.pem --challenges FILE [--clients N] [--keys N]");
	if ((f = fopen(ra_path, "r")) == NULL)
		die(ra_path);
	X509 *ra = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (ra == NULL)
		die("the RA certificate");

	EVP_PKEY **keys = calloc((size_t)n_keys, sizeof(*keys));
	X509_REQ **reqs = calloc((size_t)n_keys, sizeof(*reqs));
	if (keys == NULL || reqs == NULL)
		die("out of memory");
	for (int k = 0; k < n_keys; k++)
		if ((keys[k] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)) == NULL)
			die("RSA key");

	items = calloc(MAX_REQUESTS, sizeof(*items));
	if (items == NULL || (f = fopen(chal_path, "r")) == NULL)
		die(chal_path);
	while (n_items < MAX_REQUESTS && fgets(line, sizeof(line), f) != NULL) {
		struct item *it = &items[n_items];
		EVP_PKEY *key = keys[n_items % (size_t)n_keys];
		struct smime_scep_out o = { 0 };
		X509_REQ *req = X509_REQ_new();
		X509_NAME *name = X509_NAME_new();
		unsigned char rnd[16];
		char tid[33];

		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC,
		    (const unsigned char *)"bench device", -1, -1, 0);
		X509_REQ_set_subject_name(req, name);
		X509_REQ_set_pubkey(req, key);
		X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_ASC,
		    (const unsigned char *)line, -1);
		if (X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
		    smime_scep_self_signed(req, key, &it->self, &err) != 0)
			die("request");
		RAND_bytes(rnd, sizeof(rnd));
		for (int b = 0; b < 16; b++)
			snprintf(tid + 2 * b, 3, "%02X", rnd[b]);
		o.type = SMIME_SCEP_PKCSREQ;
		o.transaction_id = tid;
		o.signer = it->self;
		o.key = key;
		o.recipient = ra;
		o.cipher = EVP_aes_128_cbc();
		o.csr = req;
		if (smime_scep_write(&o, &it->msg, &it->len, NULL, &err) != 0)
			die(err.message);
		it->key = key;
		X509_REQ_free(req);
		X509_NAME_free(name);
		n_items++;
	}
	fclose(f);
	if (n_items == 0)
		die("no challenges");

	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_t *th = calloc((size_t)clients, sizeof(*th));
	double t0 = now_ms();
	for (int c = 0; c < clients; c++)
		if (pthread_create(&th[c], NULL, client, NULL) != 0)
			die("thread");
	for (int c = 0; c < clients; c++)
		pthread_join(th[c], NULL);
	double elapsed = (now_ms() - t0) / 1e3;

	/* Every answer, read after the clock stopped. */
	size_t ok = 0;
	double *lat = calloc(n_items, sizeof(*lat));
	for (size_t i = 0; i < n_items; i++) {
		struct smime_scep_msg m = { 0 };

		lat[i] = items[i].ms;
		if (items[i].http == 200 && smime_scep_read(items[i].reply, items[i].reply_len, &m,
		    &err) == 0 && m.status == SMIME_SCEP_SUCCESS &&
		    smime_scep_open(&m, items[i].self, items[i].key, &err) == 0 &&
		    sk_X509_num(m.issued) == 1)
			ok++;
		else if (ok + 1 == i + 1 || i < 3)
			fprintf(stderr, "scep_load: answer %zu: HTTP %ld, %s\n", i, items[i].http,
			    m.status == SMIME_SCEP_FAILURE ? (m.fail_text ? m.fail_text : "FAILURE") :
			    err.message);
		smime_scep_msg_clear(&m);
	}
	qsort(lat, n_items, sizeof(*lat), cmp_double);
#define PCT(p) lat[(size_t)((double)(n_items - 1) * (p))]
	printf("{\"n\":%zu,\"ok\":%zu,\"failed\":%zu,\"clients\":%d,\"seconds\":%.3f,"
	    "\"rate\":%.1f,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"max\":%.2f}\n", n_items, ok,
	    n_items - ok, clients, elapsed, (double)ok / elapsed, PCT(0.50), PCT(0.90), PCT(0.99),
	    lat[n_items - 1]);
	return ok == n_items ? 0 : 1;
}

/*
 * scep_load: SCEP enrollments against smimed, many at once (bench/scep.sh).
 *
 *   scep_load --url URL/scep --ra RA.pem --challenges FILE --clients N [--keys N]
 *   scep_load --floor N --threads N [--keys N]
 *
 * Before the clock starts, one PKCSReq per challenge (a line of FILE) is
 * made with libsmime: RSA-2048 keys from a pool of --keys (made first),
 * each request with its own transactionID.  Then --clients threads POST
 * them all over keep-alive connections, each timing its requests.  After
 * the clock stops every answer is read: HTTP 200 and a CertRep SUCCESS
 * with one certificate, else it counts as failed.  Prints one JSON object:
 * n, ok, failed, seconds, rate (enrollments/s), latency percentiles in
 * milliseconds, and the CPU the load itself used per request.
 *
 * --floor measures what the message work alone costs, in this process
 * with --threads threads and no HTTP, database or audit: a P-256 CA and an
 * RSA-2048 RA of its own, N PKCSReq made first as above, then for each what
 * the service does with libsmime and OpenSSL: read the pkiMessage (as the
 * service does, SMIME_SCEP_ASSEMBLE), open the envelope with the RA's key,
 * issue a certificate with the CA's key, write the CertRep signed by the RA
 * and encrypted to the requester.  It prints n, seconds and rate: a ceiling
 * for any service built on these libraries on this machine.
 */
#include <sys/resource.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

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

/* --floor: the CA and RA of the process. */
static EVP_PKEY *ca_key, *ra_key;
static X509 *ca_cert, *ra_cert;

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* A certificate for key with subject cn, issued by issuer (NULL: itself). */
static X509 *
issue(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *key, const X509_NAME *subject,
    const char *ku, const char *email)
{
	X509 *x = X509_new();
	X509V3_CTX ctx;
	unsigned char serial[16];
	BIGNUM *bn;
	const struct { int nid; const char *value; } ext[] = {
		{ NID_basic_constraints, issuer == NULL ? "critical,CA:TRUE" : "critical,CA:FALSE" },
		{ NID_key_usage, ku },
		{ NID_ext_key_usage, issuer == NULL ? NULL : "emailProtection" },
		{ NID_subject_alt_name, email },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, issuer == NULL ? NULL : "keyid" },
	};

	RAND_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (x == NULL || bn == NULL || !X509_set_version(x, X509_VERSION_3) ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
	    !X509_set_subject_name(x, subject) ||
	    !X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : subject) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400) == NULL ||
	    !X509_set_pubkey(x, key))
		die("certificate");
	BN_free(bn);
	X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		X509_EXTENSION *e;

		if (ext[i].value == NULL)
			continue;
		if ((e = X509V3_EXT_conf_nid(NULL, &ctx, ext[i].nid, ext[i].value)) == NULL ||
		    !X509_add_ext(x, e, -1))
			die("extension");
		X509_EXTENSION_free(e);
	}
	if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
		die("signature");
	return x;
}

/* --floor: one enrollment's message work, as the service does it. */
static bool
floor_one(struct item *it)
{
	struct smime_scep_msg m = { 0 };
	struct smime_scep_out o = { 0 };
	struct smime_error err;
	STACK_OF(X509) *issued = sk_X509_new_null();
	X509 *cert = NULL;
	bool ok = false;

	if (smime_scep_read_ex(it->msg, it->len, SMIME_SCEP_ASSEMBLE, &m, &err) != 0 ||
	    smime_scep_open(&m, ra_cert, ra_key, &err) != 0 ||
	    smime_scep_csr_verify(&m, &err) != 0)
		goto out;
	cert = issue(ca_cert, ca_key, X509_REQ_get0_pubkey(m.csr), X509_REQ_get_subject_name(m.csr),
	    "critical,digitalSignature", "email:bench@example.org");
	if (!sk_X509_push(issued, cert))
		goto out;
	o.type = SMIME_SCEP_CERTREP;
	o.transaction_id = m.transaction_id;
	o.recipient_nonce = m.sender_nonce;
	o.recipient_nonce_len = m.sender_nonce_len;
	o.status = SMIME_SCEP_SUCCESS;
	o.signer = ra_cert;
	o.key = ra_key;
	o.recipient = m.signer;
	o.issued = issued;
	ok = smime_scep_write(&o, &it->reply, &it->reply_len, NULL, &err) == 0;
out:
	sk_X509_pop_free(issued, X509_free);
	smime_scep_msg_clear(&m);
	return ok;
}

static void *
floor_worker(void *arg)
{
	size_t i;

	(void)arg;
	while ((i = atomic_fetch_add(&next_item, 1)) < n_items)
		items[i].http = floor_one(&items[i]) ? 200 : 0;
	return NULL;
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
	int clients = 16, n_keys = 16, floor_n = 0;
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
		else if (strcmp(argv[i], "--floor") == 0)
			floor_n = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--threads") == 0)
			clients = atoi(argv[i + 1]);
		else
			die(argv[i]);
	}
	if ((floor_n == 0 && (url == NULL || ra_path == NULL || chal_path == NULL)) ||
	    floor_n < 0 || floor_n > MAX_REQUESTS || clients < 1 || clients > 1024 ||
	    n_keys < 1 || n_keys > 4096)
		die("usage: scep_load --url URL --ra RA.pem --challenges FILE [--clients N] [--keys N]"
		    " | --floor N [--threads N] [--keys N]");
	X509 *ra;
	if (floor_n > 0) {
		X509_NAME *ca_name = X509_NAME_new(), *ra_name = X509_NAME_new();

		X509_NAME_add_entry_by_NID(ca_name, NID_commonName, MBSTRING_ASC,
		    (const unsigned char *)"Floor CA", -1, -1, 0);
		X509_NAME_add_entry_by_NID(ra_name, NID_commonName, MBSTRING_ASC,
		    (const unsigned char *)"Floor RA", -1, -1, 0);
		if ((ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
		    (ra_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)) == NULL)
			die("CA and RA keys");
		ca_cert = issue(NULL, ca_key, ca_key, ca_name, "critical,keyCertSign,cRLSign", NULL);
		ra_cert = issue(ca_cert, ca_key, ra_key, ra_name,
		    "critical,digitalSignature,keyEncipherment", NULL);
		X509_NAME_free(ca_name);
		X509_NAME_free(ra_name);
		ra = ra_cert;
	} else {
		if ((f = fopen(ra_path, "r")) == NULL)
			die(ra_path);
		ra = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
		if (ra == NULL)
			die("the RA certificate");
	}

	EVP_PKEY **keys = calloc((size_t)n_keys, sizeof(*keys));
	X509_REQ **reqs = calloc((size_t)n_keys, sizeof(*reqs));
	if (keys == NULL || reqs == NULL)
		die("out of memory");
	for (int k = 0; k < n_keys; k++)
		if ((keys[k] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)) == NULL)
			die("RSA key");

	items = calloc(MAX_REQUESTS, sizeof(*items));
	if (items == NULL || (f = floor_n > 0 ? tmpfile() : fopen(chal_path, "r")) == NULL)
		die(floor_n > 0 ? "tmpfile" : chal_path);
	for (int i = 0; i < floor_n; i++)
		fprintf(f, "floor-challenge-%d\n", i);
	rewind(f);
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
	double cpu0 = cpu_s(), t0 = now_ms();
	for (int c = 0; c < clients; c++)
		if (pthread_create(&th[c], NULL, floor_n > 0 ? floor_worker : client, NULL) != 0)
			die("thread");
	for (int c = 0; c < clients; c++)
		pthread_join(th[c], NULL);
	double elapsed = (now_ms() - t0) / 1e3, cpu = cpu_s() - cpu0;
	if (floor_n > 0) {
		size_t done = 0;

		for (size_t i = 0; i < n_items; i++)
			done += items[i].http == 200;
		printf("{\"n\":%zu,\"ok\":%zu,\"threads\":%d,\"seconds\":%.3f,\"rate\":%.1f,"
		    "\"cpu_ms\":%.3f}\n", n_items, done, clients, elapsed, (double)done / elapsed,
		    cpu * 1e3 / (double)n_items);
		return done == n_items ? 0 : 1;
	}

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
	    "\"rate\":%.1f,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"max\":%.2f,"
	    "\"client_cpu_ms\":%.3f}\n", n_items, ok, n_items - ok, clients, elapsed,
	    (double)ok / elapsed, PCT(0.50), PCT(0.90), PCT(0.99), lat[n_items - 1],
	    cpu * 1e3 / (double)n_items);
	return ok == n_items ? 0 : 1;
}

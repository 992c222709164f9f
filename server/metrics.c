/* smimed: counters for /metrics, in the Prometheus text exposition format. */
#include <stdio.h>
#include <stdlib.h>

#include "service.h"

/* Upper bounds of the latency histogram, microseconds. */
static const uint64_t bucket_us[] = { 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
	100000, 250000, 500000, 1000000, 2500000 };
#define NBUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]))

void
metrics_observe(struct metrics *m, int status, uint64_t micros)
{
	int cls = status / 100;
	atomic_fetch_add(&m->requests[cls >= 1 && cls <= 5 ? cls : 0], 1);
	for (size_t i = 0; i < NBUCKETS; i++)
		if (micros <= bucket_us[i]) {
			atomic_fetch_add(&m->latency_bucket[i], 1);
			break;
		}
	atomic_fetch_add(&m->latency_count, 1);
	atomic_fetch_add(&m->latency_sum_us, micros);
}

char *
metrics_text(struct metrics *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	uint64_t cum = 0;

	if (f == NULL)
		return NULL;
	fprintf(f, "# HELP smimed_http_requests_total HTTP requests answered, by status class.\n"
	    "# TYPE smimed_http_requests_total counter\n");
	for (int c = 1; c <= 5; c++)
		fprintf(f, "smimed_http_requests_total{code=\"%dxx\"} %llu\n", c,
		    (unsigned long long)atomic_load(&m->requests[c]));
	fprintf(f, "# HELP smimed_http_request_duration_seconds Time to answer a request.\n"
	    "# TYPE smimed_http_request_duration_seconds histogram\n");
	for (size_t i = 0; i < NBUCKETS; i++) {
		cum += atomic_load(&m->latency_bucket[i]);
		fprintf(f, "smimed_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
		    (double)bucket_us[i] / 1e6, (unsigned long long)cum);
	}
	uint64_t count = atomic_load(&m->latency_count);
	fprintf(f, "smimed_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "smimed_http_request_duration_seconds_sum %.6f\n"
	    "smimed_http_request_duration_seconds_count %llu\n",
	    (unsigned long long)count, (double)atomic_load(&m->latency_sum_us) / 1e6,
	    (unsigned long long)count);
	fprintf(f, "# HELP smimed_certificates_issued_total Certificates issued and recorded.\n"
	    "# TYPE smimed_certificates_issued_total counter\n"
	    "smimed_certificates_issued_total %llu\n",
	    (unsigned long long)atomic_load(&m->issued));
	fprintf(f, "# HELP smimed_certificates_revoked_total Certificates revoked.\n"
	    "# TYPE smimed_certificates_revoked_total counter\n"
	    "smimed_certificates_revoked_total %llu\n",
	    (unsigned long long)atomic_load(&m->revoked));
	fprintf(f, "# HELP smimed_store_errors_total Store operations that failed.\n"
	    "# TYPE smimed_store_errors_total counter\n"
	    "smimed_store_errors_total %llu\n",
	    (unsigned long long)atomic_load(&m->store_errors));
	fprintf(f, "# HELP smimed_ocsp_responses_total OCSP responses sent.\n"
	    "# TYPE smimed_ocsp_responses_total counter\n"
	    "smimed_ocsp_responses_total %llu\n",
	    (unsigned long long)atomic_load(&m->ocsp_responses));
	fprintf(f, "# HELP smimed_auth_failures_total Admin requests refused for a missing or bad token.\n"
	    "# TYPE smimed_auth_failures_total counter\n"
	    "smimed_auth_failures_total %llu\n",
	    (unsigned long long)atomic_load(&m->auth_failures));
	fprintf(f, "# HELP smimed_forbidden_total Admin requests refused because the token's role may not make them.\n"
	    "# TYPE smimed_forbidden_total counter\n"
	    "smimed_forbidden_total %llu\n",
	    (unsigned long long)atomic_load(&m->forbidden));
	fprintf(f, "# HELP smimed_directory_published_total Users whose certificates were written to the directory.\n"
	    "# TYPE smimed_directory_published_total counter\n"
	    "smimed_directory_published_total %llu\n",
	    (unsigned long long)atomic_load(&m->published));
	fprintf(f, "# HELP smimed_directory_failures_total Publication attempts that failed.\n"
	    "# TYPE smimed_directory_failures_total counter\n"
	    "smimed_directory_failures_total %llu\n",
	    (unsigned long long)atomic_load(&m->publish_failures));
	fprintf(f, "# HELP smimed_directory_pending Users waiting for publication.\n"
	    "# TYPE smimed_directory_pending gauge\n"
	    "smimed_directory_pending %llu\n",
	    (unsigned long long)atomic_load(&m->publish_pending));
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/*
 * libFuzzer target: what the CA takes from outside.  The first octet picks
 * the parser, the rest is its input:
 *   0  an OCSP request (ocsp_respond): always an OCSP response that parses
 *   1  a certificate signing request (ca_issue): an error, or a certificate
 *      that verifies with the CA's key and carries the user's address
 * A root and an issuing CA (EC P-256) are made once, in a temporary folder.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include <smime/smime.h>

#include "ca.h"
#include "ocsp.h"
#include "signer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct signer *sg;
static struct store_ca root, issuing;
static struct ocsp_responder *responder;
static X509 *issuing_cert;

static int
lookup(void *arg, const char *ca_id, const char *serial, struct ocsp_status *st_r,
    struct smime_error *err)
{
	size_t n = strlen(serial);

	(void)arg;
	(void)ca_id;
	(void)err;
	memset(st_r, 0, sizeof(*st_r));
	st_r->reason = -1;
	st_r->known = n > 0 && serial[n - 1] != 'F';
	st_r->revoked = n > 0 && serial[n - 1] == '1';
	st_r->revoked_at = 1700000000;
	return 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/fuzz-ca.XXXXXX", path[64];
	struct smime_error err;

	(void)argc;
	(void)argv;
	smime_init();
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/master.key", dir);
	if (signer_open(path, true, &sg, &err) != 0 ||
	    ca_create(sg, "http://127.0.0.1:8080", "root", "ec-p256", "Fuzz Root", "fuzz", "DE", 3650,
	    NULL, false, 1700000000, &root, &err) != 0 ||
	    ca_create(sg, "http://127.0.0.1:8080", "issuing", "ec-p256", "Fuzz Issuing", "fuzz",
	    "DE", 3000, &root, true, 1700000000, &issuing, &err) != 0) {
		fprintf(stderr, "fuzz_ca_input: %s\n", err.message);
		abort();
	}
	unlink(path);
	rmdir(dir);
	const unsigned char *p = issuing.cert_der;
	issuing_cert = d2i_X509(NULL, &p, (long)issuing.cert_len);
	struct ocsp_ca set = { "issuing", issuing_cert, issuing_cert, "issuing" };
	if ((responder = ocsp_responder_new(sg, 60, 3600)) == NULL ||
	    ocsp_responder_set_cas(responder, &set, 1, &err) != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smime_error err;

	if (size < 1)
		return 0;
	if (data[0] == 0) {
		unsigned char *resp = NULL;
		size_t len = 0;
		if (ocsp_respond(responder, data + 1, size - 1, lookup, NULL, 1700001000, &resp,
		    &len, &err) != 0)
			abort(); /* only an out-of-memory or signer failure may fail */
		const unsigned char *p = resp;
		OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
		if (r == NULL || p != resp + len)
			abort();
		OCSP_RESPONSE_free(r);
		free(resp);
		return 0;
	}
	char email[] = "fuzz@example.org", *emails[] = { email };
	struct store_user user = { .id = "0", .name = (char *)"", .emails = emails, .n_emails = 1 };
	struct store_profile prof = { .name = "signing", .purpose = PURPOSE_SIGNING,
		.ca_id = "issuing", .validity_days = 365, .br_profile = (char *)"strict",
		.key_alg = (char *)"ec-p256" };
	if (data[0] == 2)
		prof.purpose = PURPOSE_DUAL;
	struct ca_issue_req req = { .ca = &issuing, .profile = &prof, .user = &user,
		.csr = data + 1, .csr_len = size - 1, .base_url = "http://127.0.0.1:8080",
		.now = 1700001000 };
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	if (ca_issue(sg, &req, &cert, &key, &err) == 0) {
		if (cert == NULL || key != NULL ||
		    X509_verify(cert, X509_get0_pubkey(issuing_cert)) != 1 ||
		    !smime_cert_has_email(cert, email))
			abort();
		X509_free(cert);
	} else if (cert != NULL || key != NULL || err.message[0] == '\0')
		abort();
	return 0;
}

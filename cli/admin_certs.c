/*
 * smime admin: certificates and what issues them (cert, profile, ca):
 * issuing, listing, showing, revoking and withdrawing certificates, the
 * certificate profiles, and the CAs (their CRLs, export and import).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "admin.h"
#include "cli.h"

#define CSR_MAX (1024u * 1024)
#define SERIAL_MAX_DIGITS 64             /* the service's limit (STORE_SERIAL_SIZE) */

static const char *const cert_statuses[] = { "active", "superseded", "expired", "revoked" };
/* RFC 5280 5.3.1: CRLReason, spelled as the ASN.1 module names them (7 is
 * unused); certificateHold is not offered: a revocation is final. */
static const char *const reasons[] = { "unspecified", "keyCompromise",
	"affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn" };

/* ---- profile ------------------------------------------------------------ */

static const char *const profile_fields[] = { "name", "purpose", "ca", "validity_days",
	"br_profile", "key_alg", "allow_generate" };

static int
show_profile(const struct args *a, const json_t *answer)
{
	return print_fields(answer, profile_fields, N(profile_fields));
}

int
profile_list(struct args *a)
{
	static const struct column cols[] = { { "NAME", "name", NULL },
		{ "PURPOSE", "purpose", NULL }, { "CA", "ca", NULL }, { "DAYS", "validity_days", NULL },
		{ "KEY", "key_alg", NULL }, { "BR-PROFILE", "br_profile", NULL },
		{ "GENERATE", "allow_generate", NULL } };

	return list_show(a, "/api/v1/profiles", NULL, 0, false, cols, N(cols));
}

int
profile_show(struct args *a)
{
	return call_show(a, "GET", admin_path("/api/v1/profiles/%s", a->pos[0]), NULL,
	    show_profile, NULL);
}

/* ---- ca ----------------------------------------------------------------- */

static const char *const ca_fields[] = { "id", "parent", "issuing", "key_alg", "has_key",
	"subject", "serial", "not_before", "not_after", "sha256", "crl_number", "crl_updated" };

static int
show_ca(const struct args *a, const json_t *answer)
{
	return print_fields(answer, ca_fields, N(ca_fields));
}

static char *
ca_role(const json_t *ca)
{
	const char *parent = admin_str(ca, "parent");
	char *s;

	if (asprintf(&s, "%s%s", json_is_true(json_object_get(ca, "issuing")) ? "issuing" :
	    parent[0] == '\0' ? "root" : "intermediate",
	    json_is_false(json_object_get(ca, "has_key")) ? ",no-key" : "") < 0)
		return NULL;
	return s;
}

int
ca_list(struct args *a)
{
	static const struct column cols[] = { { "ID", "id", NULL }, { "ROLE", NULL, ca_role },
		{ "PARENT", "parent", NULL }, { "KEY", "key_alg", NULL },
		{ "NOT-AFTER", "not_after", NULL }, { "CRL", "crl_number", NULL },
		{ "SUBJECT", "subject", NULL } };

	return list_show(a, "/api/v1/cas", NULL, 0, false, cols, N(cols));
}

int
ca_show(struct args *a)
{
	return call_show(a, "GET", admin_path("/api/v1/cas/%s", a->pos[0]), NULL, show_ca, NULL);
}

static int
show_crl(const struct args *a, const json_t *answer)
{
	printf("CA %s: CRL number %" JSON_INTEGER_FORMAT " made at %s\n", admin_str(answer, "id"),
	    json_integer_value(json_object_get(answer, "crl_number")), admin_str(answer, "crl_updated"));
	return EXIT_OK;
}

int
ca_crl(struct args *a)
{
	return call_show(a, "POST", admin_path("/api/v1/cas/%s/crl", a->pos[0]), NULL, show_crl,
	    NULL);
}

/* How many certificates a PEM text holds (0: none, or not PEM). */
static int
pem_cert_count(const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x;
	int n = 0;

	while (b != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	BIO_free(b);
	return n;
}

int
ca_export(struct args *a)
{
	struct admin_conn *c = NULL;
	struct admin_reply r = { 0 };
	json_t *cas = NULL;
	const char *id = a->ca;
	char *path = NULL;
	int rc, n;

	if ((rc = admin_conn_new(&a->conn, &c)) != EXIT_OK)
		goto out;
	if (id == NULL) {
		/* The first CA that issues end-entity certificates. */
		size_t i;
		json_t *ca;
		if ((rc = admin_list(c, "/api/v1/cas", NULL, 0, false, NULL, 0, &cas, NULL)) != EXIT_OK)
			goto out;
		json_array_foreach(cas, i, ca) {
			if (json_is_true(json_object_get(ca, "issuing")) && admin_str(ca, "id")[0] != '\0') {
				id = admin_str(ca, "id");
				break;
			}
		}
		if (id == NULL) {
			rc = admin_error(EXIT_NOKEY, "not-found", 0, "the service has no issuing CA; "
			    "name one with --ca ID (see smime admin ca list)");
			goto out;
		}
	}
	if ((path = admin_path("/api/v1/cas/%s/chain", id)) == NULL) {
		rc = usage_error(a->cmd, "--ca: too long");
		goto out;
	}
	if ((rc = admin_request(c, "GET", path, "application/x-pem-file", NULL, NULL, 0, &r))
	    != EXIT_OK)
		goto out;
	if ((n = pem_cert_count(r.data, r.len)) == 0) {
		rc = admin_error(EXIT_IO, "io", 0, "the answer for CA %s is not a PEM certificate "
		    "chain", id);
		goto out;
	}
	if (g.json && a->out == NULL) {
		json_out(json_pack("{s:s,s:i,s:s%}", "ca", id, "certificates", n, "chain", r.data,
		    r.len));
		goto out;
	}
	if ((rc = write_out(a->out, r.data, r.len)) != EXIT_OK)
		goto out;
	if (g.json)
		json_out(json_pack("{s:s,s:i,s:s}", "ca", id, "certificates", n, "file", a->out));
	else if (a->out != NULL && !g.quiet)
		fprintf(stderr, "the chain of CA %s (%d certificate%s) written to %s\n", id, n,
		    n == 1 ? "" : "s", a->out);
out:
	admin_reply_free(&r);
	free(path);
	json_decref(cas);
	admin_conn_free(c);
	return rc;
}

/* ---- cert --------------------------------------------------------------- */

static const char *const cert_fields[] = { "serial", "status", "purpose", "source", "profile",
	"ca", "user", "device", "email", "subject", "not_before", "not_after", "sha256", "sha1",
	"created", "revoked_at", "reason" };

/* A serial number as OpenSSL prints it (any case, colons, 0x), upper-case hex. */
static bool
parse_serial(const char *s, char out[SERIAL_MAX_DIGITS + 1])
{
	size_t n = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (; *s != '\0'; s++) {
		if (*s == ':')
			continue;
		if (!isxdigit((unsigned char)*s) || n == SERIAL_MAX_DIGITS)
			return false;
		out[n++] = (char)toupper((unsigned char)*s);
	}
	out[n] = '\0';
	return n > 0;
}

static int
bad_serial(struct args *a, const char *s)
{
	return usage_error(a->cmd, "'%s' is not a serial number: up to %d hexadecimal digits, "
	    "as openssl x509 -serial prints them", s, SERIAL_MAX_DIGITS);
}

/* Read a PKCS#10 request, PEM or DER, and give it as PEM (malloc'd). */
static char *
csr_pem(const char *path, struct smime_error *err)
{
	size_t len;
	unsigned char *d = admin_slurp_file(path, CSR_MAX, &len, err);
	const unsigned char *p = d;
	X509_REQ *req = NULL;
	BIO *b = NULL, *out = NULL;
	char *pem = NULL, *mem;
	long n;

	if (d == NULL)
		return NULL;
	if ((b = BIO_new_mem_buf(d, (int)len)) != NULL)
		req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	if (req == NULL)
		req = d2i_X509_REQ(NULL, &p, (long)len);
	if (req == NULL) {
		smime_error_ssl(err, SMIME_E_INPUT, "%s: not a PKCS#10 certificate request "
		    "(PEM or DER)", path);
		goto out;
	}
	if ((out = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_X509_REQ(out, req) ||
	    (n = BIO_get_mem_data(out, &mem)) <= 0 || (pem = strndup(mem, (size_t)n)) == NULL)
		smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
out:
	X509_REQ_free(req);
	BIO_free(b);
	BIO_free(out);
	free(d);
	return pem;
}

int
cert_issue(struct args *a)
{
	struct smime_error err;
	struct admin_conn *c = NULL;
	json_t *body = NULL, *ans = NULL, *cert;
	char *csr = NULL, *password = NULL;
	unsigned char *p12 = NULL;
	size_t p12_len = 0;
	int rc;

	if (a->user == NULL || a->profile == NULL)
		return usage_error(a->cmd, "--user and --profile are required");
	if (a->csr != NULL) {
		if (a->password_file != NULL)
			return usage_error(a->cmd, "--password-file is for a key the service makes "
			    "(without --csr)");
		if ((csr = csr_pem(a->csr, &err)) == NULL)
			return fail("admin", &err);
		body = json_pack("{s:s,s:s,s:s}", "user", a->user, "profile", a->profile, "csr", csr);
	} else {
		/* The private key comes back: into a file, never onto a screen. */
		if (a->out == NULL)
			return usage_error(a->cmd, "without --csr the service makes the key: -o FILE "
			    "is required for the PKCS#12");
		if (strcmp(a->out, "-") == 0 && isatty(STDOUT_FILENO))
			return usage_error(a->cmd, "a PKCS#12 is not written to a terminal: -o FILE");
		g.password_file = a->password_file;
		smime_error_clear(&err);
		if ((password = p12_password(true, &err)) == NULL) {
			if (err.code != SMIME_OK)
				return fail("admin", &err);
			return usage_error(a->cmd, "the PKCS#12 needs a password: --password-file FILE "
			    "or SMIME_P12_PASSWORD (no terminal to ask on)");
		}
		if (password[0] == '\0') {
			secret_free(password);
			return usage_error(a->cmd, "the PKCS#12 password is empty");
		}
		body = json_pack("{s:s,s:s,s:b,s:s}", "user", a->user, "profile", a->profile,
		    "generate", 1, "password", password);
	}
	if (body == NULL) {
		rc = admin_oom();
		goto out;
	}
	if (a->device != NULL)
		json_object_set_new(body, "device", json_string(a->device));
	if ((rc = admin_conn_new(&a->conn, &c)) != EXIT_OK ||
	    (rc = admin_call(c, "POST", "/api/v1/certificates", body, &ans)) != EXIT_OK)
		goto out;
	cert = json_object_get(ans, "certificate");
	if (!json_is_object(cert) || admin_str(cert, "certificate")[0] == '\0') {
		rc = admin_error(EXIT_IO, "io", 0, "the answer holds no certificate");
		goto out;
	}
	if (a->csr == NULL) {
		const char *b64 = json_string_value(json_object_get(ans, "pkcs12"));
		if (b64 == NULL || (p12 = decode_p12(b64, &p12_len)) == NULL) {
			rc = admin_error(EXIT_IO, "io", 0, "the answer holds no PKCS#12 (serial %s "
			    "was issued; revoke it if it is of no use)", admin_str(cert, "serial"));
			goto out;
		}
		if ((rc = write_out(a->out, p12, p12_len)) != EXIT_OK)
			goto out;
		/* The key stays in the file only. */
		json_object_del(ans, "pkcs12");
		json_object_set_new(ans, "pkcs12_file", json_string(a->out));
	} else if (!g.json || a->out != NULL) {
		const char *pem = admin_str(cert, "certificate"), *chain = admin_str(ans, "chain");
		size_t l1 = strlen(pem), l2 = strlen(chain);
		char *both = malloc(l1 + l2 + 2);
		if (both == NULL) {
			rc = admin_oom();
			goto out;
		}
		memcpy(both, pem, l1);
		if (l1 > 0 && pem[l1 - 1] != '\n')
			both[l1++] = '\n';
		memcpy(both + l1, chain, l2);
		rc = write_out(a->out, both, l1 + l2);
		free(both);
		if (rc != EXIT_OK)
			goto out;
	}
	if (g.json)
		json_out(json_incref(ans));
	else if (!g.quiet)
		fprintf(stderr, "issued %s certificate %s for %s (profile %s), valid until %s%s%s\n",
		    admin_str(cert, "purpose"), admin_str(cert, "serial"), admin_str(cert, "email"),
		    admin_str(cert, "profile"), admin_str(cert, "not_after"), a->out ? ", written to " : "",
		    a->out ? a->out : "");
out:
	if (p12 != NULL)
		OPENSSL_cleanse(p12, p12_len);
	free(p12);
	free(csr);
	secret_free(password);
	json_decref(body);
	json_decref(ans);
	admin_conn_free(c);
	return rc;
}

int
cert_list(struct args *a)
{
	static const struct column cols[] = { { "SERIAL", "serial", NULL },
		{ "STATUS", "status", NULL }, { "PURPOSE", "purpose", NULL },
		{ "PROFILE", "profile", NULL }, { "NOT-AFTER", "not_after", NULL },
		{ "EMAIL", "email", NULL } };
	struct admin_query q[] = { { "user", a->user }, { "device", a->device }, { "ca", a->ca },
		{ "status", a->status } };
	char set[128];

	join(set, sizeof(set), cert_statuses, N(cert_statuses));
	if (a->status != NULL && !one_of(a->status, cert_statuses, N(cert_statuses)))
		return usage_error(a->cmd, "--status: one of %s", set);
	return list_show(a, "/api/v1/certificates", q, N(q), true, cols, N(cols));
}

int
cert_show(struct args *a)
{
	struct admin_conn *c = NULL;
	json_t *ans = NULL;
	char serial[SERIAL_MAX_DIGITS + 1], *path;
	int rc;

	if (!parse_serial(a->pos[0], serial))
		return bad_serial(a, a->pos[0]);
	if ((path = admin_path("/api/v1/certificates/%s", serial)) == NULL)
		return admin_oom();
	if ((rc = admin_conn_new(&a->conn, &c)) != EXIT_OK ||
	    (rc = admin_call(c, "GET", path, NULL, &ans)) != EXIT_OK)
		goto out;
	if (a->out != NULL) {
		const char *pem = admin_str(ans, "certificate");
		if (pem[0] == '\0') {
			rc = admin_error(EXIT_IO, "io", 0, "the answer holds no certificate");
			goto out;
		}
		if ((rc = write_out(a->out, pem, strlen(pem))) != EXIT_OK)
			goto out;
	}
	if (g.json)
		json_out(json_incref(ans));
	else if (a->out == NULL || strcmp(a->out, "-") != 0) {
		json_t *shown = named(ans);
		rc = shown != NULL ? print_fields(shown, cert_fields, N(cert_fields)) : admin_oom();
		json_decref(shown);
	}
out:
	json_decref(ans);
	admin_conn_free(c);
	free(path);
	return rc;
}

static int
show_revoked(const struct args *a, const json_t *answer)
{
	if (!g.quiet)
		fprintf(stderr, "certificate %s revoked (%s) at %s; the CRL is made anew\n",
		    admin_str(answer, "serial"), admin_str(answer, "reason"), admin_str(answer, "revoked_at"));
	return EXIT_OK;
}

int
cert_revoke(struct args *a)
{
	char serial[SERIAL_MAX_DIGITS + 1], set[256];
	const char *reason = NULL;

	join(set, sizeof(set), reasons, N(reasons));
	if (!parse_serial(a->pos[0], serial))
		return bad_serial(a, a->pos[0]);
	if (a->reason == NULL)
		return usage_error(a->cmd, "--reason is required, one of %s", set);
	/* Any case is accepted; the service gets RFC 5280's spelling. */
	for (size_t i = 0; i < N(reasons); i++)
		if (strcasecmp(a->reason, reasons[i]) == 0)
			reason = reasons[i];
	if (reason == NULL)
		return usage_error(a->cmd, "--reason: one of %s (RFC 5280 5.3.1)", set);
	return call_show(a, "POST", admin_path("/api/v1/certificates/%s/revoke", serial),
	    json_pack("{s:s}", "reason", reason), show_revoked, NULL);
}

static int
show_withdrawn(const struct args *a, const json_t *answer)
{
	(void)a;
	if (!g.quiet)
		fprintf(stderr, "certificate %s of %s withdrawn from lookup and directory "
		    "publication at %s; it stays recorded and its key archived\n",
		    admin_str(answer, "serial"), admin_str(answer, "email"), admin_str(answer, "withdrawn"));
	return EXIT_OK;
}

int
cert_withdraw(struct args *a)
{
	char serial[SERIAL_MAX_DIGITS + 1];

	if (!parse_serial(a->pos[0], serial))
		return bad_serial(a, a->pos[0]);
	return call_show(a, "POST", admin_path("/api/v1/certificates/%s/withdraw", serial), NULL,
	    show_withdrawn, NULL);
}

/* ---- changes the API had and the command line lacked ---------------------- */

static const char *const purposes[] = { "signing", "encryption", "dual" };
static const char *const br_profiles[] = { "strict", "multipurpose" };
static const char *const key_algs[] = { "ec-p256", "ec-p384", "ec-p521", "rsa-2048",
	"rsa-3072", "rsa-4096" };

/* The options given into the profile p (a JSON object); a usage error when wrong. */
static int
profile_apply(const struct args *a, json_t *p)
{
	char set[128];

	if (a->given & A_PURPOSE) {
		join(set, sizeof(set), purposes, N(purposes));
		if (!one_of(a->purpose, purposes, N(purposes)))
			return usage_error(a->cmd, "--purpose: one of %s", set);
		json_object_set_new(p, "purpose", json_string(a->purpose));
	}
	if (a->given & A_CA)
		json_object_set_new(p, "ca", json_string(a->ca));
	if (a->given & A_VALIDITY_DAYS)
		json_object_set_new(p, "validity_days", json_integer(a->validity_days));
	if (a->given & A_KEY_ALG) {
		join(set, sizeof(set), key_algs, N(key_algs));
		if (!one_of(a->key_alg, key_algs, N(key_algs)))
			return usage_error(a->cmd, "--key-alg: one of %s", set);
		json_object_set_new(p, "key_alg", json_string(a->key_alg));
	}
	if (a->given & A_BR_PROFILE) {
		join(set, sizeof(set), br_profiles, N(br_profiles));
		if (!one_of(a->br_profile, br_profiles, N(br_profiles)))
			return usage_error(a->cmd, "--br-profile: one of %s", set);
		json_object_set_new(p, "br_profile", json_string(a->br_profile));
	}
	if (a->given & A_GENERATE)
		json_object_set_new(p, "allow_generate", json_boolean(a->generate));
	return EXIT_OK;
}

int
profile_create(struct args *a)
{
	json_t *p = json_pack("{s:s}", "name", a->pos[0]);
	int rc;

	if ((a->given & (A_PURPOSE | A_CA)) != (A_PURPOSE | A_CA)) {
		json_decref(p);
		return usage_error(a->cmd, "--purpose and --ca are required");
	}
	if (p == NULL)
		return admin_oom();
	if ((rc = profile_apply(a, p)) != EXIT_OK) {
		json_decref(p);
		return rc;
	}
	return call_show(a, "POST", strdup("/api/v1/profiles"), p, show_profile, NULL);
}

/* Read the profile, change what was given, write it back whole (PUT). */
int
profile_update(struct args *a)
{
	struct admin_conn *c = NULL;
	json_t *p = NULL;
	char *path = admin_path("/api/v1/profiles/%s", a->pos[0]);
	int rc;

	if ((a->given & PROFILE_OPTS) == 0) {
		free(path);
		return usage_error(a->cmd, "nothing to change: give at least one of --purpose, "
		    "--ca, --validity-days, --key-alg, --br-profile, --[no-]generate");
	}
	if (path == NULL)
		return admin_oom();
	if ((rc = admin_conn_new(&a->conn, &c)) == EXIT_OK &&
	    (rc = admin_call(c, "GET", path, NULL, &p)) == EXIT_OK &&
	    (rc = profile_apply(a, p)) == EXIT_OK) {
		admin_conn_free(c);
		c = NULL;
		rc = call_show(a, "PUT", path, p, show_profile, NULL);
		return rc;
	}
	json_decref(p);
	admin_conn_free(c);
	free(path);
	return rc;
}

int
profile_delete(struct args *a)
{
	char done[512];

	snprintf(done, sizeof(done), "profile %s deleted (certificates it issued stay)", a->pos[0]);
	return call_show(a, "DELETE", admin_path("/api/v1/profiles/%s", a->pos[0]), NULL, NULL,
	    done);
}
/*
 * smime admin ca import ID FILE [--password-file FILE]: a PKCS#12 (the CA
 * and its key), or PEM: the certificate, and its key when the file holds
 * one (a CA without its key here is trusted and published, never signs).
 */
int
ca_import(struct args *a)
{
	struct smime_error err;
	size_t len = 0;
	unsigned char *data = admin_slurp_file(a->pos[1], PFX_MAX, &len, &err);
	char *password = NULL, *b64 = NULL;
	json_t *body = NULL;

	if (data == NULL)
		return fail("admin", &err);
	if (memmem(data, len, "-----BEGIN ", 11) != NULL) {
		bool key = memmem(data, len, "PRIVATE KEY-----", 16) != NULL;
		body = json_pack("{s:s,s:s%}", "id", a->pos[0], "certificate", (const char *)data, len);
		if (body != NULL && key)
			json_object_set_new(body, "key", json_stringn((const char *)data, len));
	} else {
		g.password_file = a->password_file;
		smime_error_clear(&err);
		if ((password = p12_password(false, &err)) == NULL && err.code != SMIME_OK) {
			OPENSSL_clear_free(data, len);
			return fail("admin", &err);
		}
		if ((b64 = b64_of(data, len)) != NULL)
			body = json_pack("{s:s,s:s,s:s}", "id", a->pos[0], "pkcs12", b64, "password",
			    password != NULL ? password : "");
	}
	OPENSSL_clear_free(data, len);
	if (b64 != NULL)
		OPENSSL_clear_free(b64, strlen(b64));
	secret_free(password);
	if (body == NULL)
		return admin_oom();
	return call_show(a, "POST", strdup("/api/v1/cas"), body, show_ca, NULL);
}

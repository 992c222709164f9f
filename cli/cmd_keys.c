/* smime: the keystore commands: import, export, list. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cli.h"

#define IMPORT_MAX_FILE (64u * 1024 * 1024)

enum { O_TRUST = 0x300, O_PASSWORD_FILE, O_LEGACY, O_CERTS_ONLY, O_ALL };

static void
str_free(char *s)
{
	OPENSSL_free(s);
}

static const char *
entry_kind(enum smime_entry_kind k)
{
	switch (k) {
	case SMIME_ENTRY_IDENTITY: return "identity";
	case SMIME_ENTRY_CONTACT: return "contact";
	case SMIME_ENTRY_ANCHOR: return "anchor";
	case SMIME_ENTRY_CA: return "ca";
	}
	return "unknown";
}

static const char *
role_name(int roles)
{
	if (roles & SMIME_ROLE_CA)
		return "ca";
	if ((roles & SMIME_ROLE_SIGN) && (roles & SMIME_ROLE_ENCRYPT))
		return "dual-use";
	if (roles & SMIME_ROLE_SIGN)
		return "signing";
	if (roles & SMIME_ROLE_ENCRYPT)
		return "encryption";
	return "none";
}

static unsigned char *
slurp(const char *path, size_t *len_r, struct smime_error *err)
{
	BIO *in = open_input(path, err);
	unsigned char *data = NULL, chunk[16384];
	size_t len = 0;
	int n;

	if (in == NULL)
		return NULL;
	while ((n = BIO_read(in, chunk, sizeof(chunk))) > 0) {
		if (len + (size_t)n > IMPORT_MAX_FILE) {
			smime_error_set(err, SMIME_E_INPUT, "%s: larger than %u bytes", path,
			    IMPORT_MAX_FILE);
			free(data);
			BIO_free(in);
			return NULL;
		}
		unsigned char *nd = realloc(data, len + (size_t)n + 1);
		if (nd == NULL) {
			free(data);
			BIO_free(in);
			smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			return NULL;
		}
		data = nd;
		memcpy(data + len, chunk, (size_t)n);
		len += (size_t)n;
	}
	BIO_free(in);
	if (data == NULL) {
		smime_error_set(err, SMIME_E_INPUT, "%s: empty", path);
		return NULL;
	}
	*len_r = len;
	return data;
}

/* Does data look like an RFC 5322 message (a header line first)? */
static bool
looks_like_mail(const unsigned char *d, size_t n)
{
	size_t i;

	for (i = 0; i < n && i < 80; i++) {
		if (d[i] == ':')
			return i > 0;
		if (!(d[i] > 32 && d[i] < 127))
			return false;
	}
	return false;
}

/* Load one file into bag, whatever its container. */
static int
load_file(const char *path, struct smime_bag *bag, char **password, bool *asked,
    struct smime_error *err)
{
	size_t len;
	unsigned char *data = slurp(path, &len, err);
	int rc;

	if (data == NULL)
		return err->code;
	if (looks_like_mail(data, len) && memcmp(data, "-----", 5) != 0) {
		BIO *b = BIO_new_mem_buf(data, (int)len);
		rc = smime_msg_extract(b, *password, bag, err);
		BIO_free(b);
	} else {
		rc = smime_bag_load(bag, data, len, *password, err);
		if (rc == SMIME_E_CRYPTO && *password == NULL && !*asked) {
			/* A PKCS#12 with a password we were not given: ask once. */
			struct smime_error e2;
			*asked = true;
			*password = p12_password(false, &e2);
			if (*password != NULL)
				rc = smime_bag_load(bag, data, len, *password, err);
		}
	}
	OPENSSL_cleanse(data, len);
	free(data);
	return rc;
}

int
cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "trust", no_argument, NULL, O_TRUST },
		{ "password-file", required_argument, NULL, O_PASSWORD_FILE },
		GLOBAL_LONG_OPTIONS, { NULL, 0, NULL, 0 },
	};
	bool trust = false, asked = false;
	struct smime_keystore *ks = NULL;
	struct smime_error err;
	char *password = NULL;
	json_t *jfiles = json_array();
	int c, rc = EXIT_OK, worst = SMIME_OK;
	time_t now = time(NULL);
	size_t imported = 0;
	struct smime_bag *bag = NULL;
	struct range {
		int first, end, rc;
		char *error;
	} *ranges = NULL;

	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case O_TRUST: trust = true; break;
		case O_PASSWORD_FILE: g.password_file = optarg; break;
		case 'h':
			printf("usage: smime import [--trust] [--password-file FILE] FILE...\n\n"
			    "Import certificates and private keys into the keystore from PKCS#12/PFX\n"
			    "(modern and legacy RC2/3DES), PEM, DER, PKCS#7 bundles, Microsoft SST\n"
			    "stores, and .p12/.pfx or certificate attachments inside an .eml.\n"
			    "A certificate with its key becomes an identity, classified as signing,\n"
			    "encryption or dual-use from its key usage; an expired encryption key\n"
			    "joins the history (old mail stays readable) but is never used to\n"
			    "encrypt or sign.  CA certificates help build chains; with --trust they\n"
			    "become trust anchors.  The PKCS#12 password comes from --password-file\n"
			    "or SMIME_P12_PASSWORD (not the keystore passphrase), else a prompt.\n"
			    "Every usable certificate of every file is saved in one atomic step; a file\n"
			    "that cannot be read is reported and the others are still imported.\n");
			json_decref(jfiles);
			return EXIT_OK;
		default:
			if (!global_option(c, optarg)) {
				json_decref(jfiles);
				return usage_error("import", "unknown option");
			}
		}
	}
	if (optind >= argc) {
		json_decref(jfiles);
		return usage_error("import", "name at least one file");
	}
	if ((rc = open_keystore("import", true, &ks)) != EXIT_OK) {
		json_decref(jfiles);
		return rc;
	}
	if (g.password_file != NULL || getenv("SMIME_P12_PASSWORD") != NULL) {
		password = p12_password(false, &err);
		if (password == NULL) {
			rc = fail("import", &err);
			goto out;
		}
	}
	/*
	 * One bag for every file of the call, so that a key and its
	 * certificate given as two files are tied together; each file's
	 * certificates are then reported as that file's.
	 */
	bag = smime_bag_new();
	ranges = calloc((size_t)(argc - optind), sizeof(*ranges));
	if (bag == NULL || ranges == NULL) {
		rc = EXIT_IO;
		goto out;
	}
	for (int f = optind; f < argc; f++) {
		int frc, before = sk_X509_num(bag->certs);
		frc = load_file(argv[f], bag, &password, &asked, &err);
		ranges[f - optind].first = before;
		ranges[f - optind].end = sk_X509_num(bag->certs);
		ranges[f - optind].rc = frc;
		if (frc != 0)
			ranges[f - optind].error = strdup(err.message);
	}
	for (int f = optind; f < argc; f++) {
		const char *path = argv[f];
		struct range *rg = &ranges[f - optind];
		json_t *jcerts = json_array();
		int file_imported = 0, file_refused = 0;

		if (rg->rc != 0) {
			if (!g.json)
				fprintf(stderr, "smime import: %s: %s\n", path, rg->error);
			json_array_append_new(jfiles, json_pack("{s:s,s:s,s:s}", "file", path, "status",
			    smime_code_name(rg->rc), "error", rg->error ? rg->error : ""));
			if (worst == SMIME_OK)
				worst = rg->rc;
			json_decref(jcerts);
			continue;
		}
		for (int i = rg->first; i < rg->end; i++) {
			X509 *cert = sk_X509_value(bag->certs, i);
			EVP_PKEY *key = NULL;
			int roles = smime_cert_roles(cert);
			bool self_signed = X509_check_issued(cert, cert) == X509_V_OK;
			/*
			 * A self-signed certificate is a root unless its key usage says
			 * it is an end entity (a self-signed S/MIME certificate).
			 */
			uint32_t ku = X509_get_key_usage(cert);
			bool ca = (roles & SMIME_ROLE_CA) != 0 || (self_signed &&
			    (ku == UINT32_MAX || (ku & KU_KEY_CERT_SIGN) != 0));
			bool usable = (roles & (SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT)) &&
			    smime_cert_email_protection(cert);
			enum smime_entry_kind kind;
			const char *note = NULL;
			char fp[65], *subject;
			bool added = false;

			for (size_t k = 0; k < bag->n_keys; k++)
				if (bag->key_cert[k] == i)
					key = bag->keys[k];
			smime_cert_fingerprint(cert, fp);
			subject = smime_cert_subject(cert);
			/*
			 * RFC 5280 6.1.1 (d): a trust anchor is a name and a key; a
			 * self-signed root without basicConstraints (X.509 v1) is one too
			 * when the user says --trust.
			 */
			if (trust && (ca || self_signed) && key == NULL)
				kind = SMIME_ENTRY_ANCHOR;
			else if (ca && key == NULL)
				kind = SMIME_ENTRY_CA;
			else if (key != NULL)
				kind = SMIME_ENTRY_IDENTITY;
			else
				kind = SMIME_ENTRY_CONTACT;
			if (kind == SMIME_ENTRY_CONTACT && usable) {
				STACK_OF(OPENSSL_STRING) *em = smime_cert_emails(cert);
				usable = em != NULL && sk_OPENSSL_STRING_num(em) > 0;
				sk_OPENSSL_STRING_pop_free(em, str_free);
			}
			if (kind == SMIME_ENTRY_CONTACT && !usable) {
				/* RFC 8550 4.4.2 and 4.4.4: not an S/MIME certificate: skipped. */
				if (!g.json && !g.quiet)
					fprintf(stderr, "skipped  %s -- not usable for S/MIME: no email address, "
					    "or its key usage or extended key usage excludes email protection\n",
					    subject ? subject : fp);
				json_array_append_new(jcerts, json_pack("{s:s,s:s?,s:s,s:s}",
				    "fingerprint", fp, "subject", subject, "status", "skipped",
				    "reason", "not usable for S/MIME: no email address, or key usage or "
				    "extended key usage excludes email protection"));
				file_refused++;
				OPENSSL_free(subject);
				continue;
			}
			if (kind == SMIME_ENTRY_IDENTITY && !usable)
				note = "not usable for S/MIME (key usage or extended key usage excludes "
				    "email protection): kept, never chosen";
			if (smime_keystore_add(ks, cert, key, kind, &added, &err) != 0) {
				if (!g.json)
					fprintf(stderr, "smime import: %s: %s\n", path, err.message);
				if (worst == SMIME_OK)
					worst = err.code;
				OPENSSL_free(subject);
				continue;
			}
			file_imported++;
			if (note == NULL && !smime_cert_valid_at(cert, now))
				note = key != NULL && (roles & SMIME_ROLE_ENCRYPT) ?
				    "expired: kept in the encryption history, never used to encrypt or sign" :
				    "expired";
			if (added)
				imported++;
			if (!g.json && !g.quiet)
				fprintf(stderr, "%s %s %s%s %s%s%s\n", added ? "imported" : "present ",
				    entry_kind(kind), role_name(roles), key ? "+key" : "",
				    subject ? subject : fp, note ? " -- " : "", note ? note : "");
			json_array_append_new(jcerts, json_pack("{s:s,s:s?,s:s,s:s,s:b,s:s,s:s?}",
			    "fingerprint", fp, "subject", subject, "kind", entry_kind(kind),
			    "use", role_name(roles), "key", key != NULL,
			    "status", added ? "imported" : "present", "note", note));
			OPENSSL_free(subject);
		}
		/* A file of which nothing could be used is refused by policy. */
		if (file_imported == 0 && file_refused > 0) {
			if (!g.json)
				fprintf(stderr, "smime import: %s: no certificate in it is usable for S/MIME\n",
				    path);
			if (worst == SMIME_OK)
				worst = SMIME_E_POLICY;
		}
		json_array_append_new(jfiles, json_pack("{s:s,s:s,s:o}", "file", path, "status",
		    file_imported > 0 || file_refused == 0 ? "ok" : "refused", "certificates", jcerts));
	}
	for (size_t k = 0; k < bag->n_keys; k++)
		if (bag->key_cert[k] < 0 && !g.json)
			fprintf(stderr, "smime import: a private key without its certificate was skipped\n");
	if (smime_keystore_commit(ks, &err) != 0) {
		rc = fail("import", &err);
		goto out;
	}
	if (g.json)
		json_out(json_pack("{s:O,s:i}", "files", jfiles, "imported", (int)imported));
	rc = exit_code(worst);
out:
	for (int f = 0; ranges != NULL && f < argc - optind; f++)
		free(ranges[f].error);
	free(ranges);
	smime_bag_free(bag);
	json_decref(jfiles);
	secret_free(password);
	smime_keystore_free(ks);
	return rc;
}

int
cmd_list(int argc, char **argv)
{
	static const struct option opts[] = { GLOBAL_LONG_OPTIONS, { NULL, 0, NULL, 0 } };
	struct smime_keystore *ks = NULL;
	json_t *a = json_array();
	char t1[32];
	int c, rc;

	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		if (c == 'h') {
			printf("usage: smime list [--json]\n\n"
			    "List the keystore: own identities (with keys), contacts, CA certificates\n"
			    "and trust anchors, with their use, expiry, addresses and fingerprints.\n");
			json_decref(a);
			return EXIT_OK;
		}
		if (!global_option(c, optarg)) {
			json_decref(a);
			return usage_error("list", "unknown option");
		}
	}
	if ((rc = open_keystore("list", false, &ks)) != EXIT_OK) {
		json_decref(a);
		return rc;
	}
	for (size_t i = 0; i < smime_keystore_count(ks); i++) {
		const struct smime_entry *e = smime_keystore_entry(ks, i);
		bool expired = e->not_after != 0 && e->not_after < time(NULL);
		if (g.json) {
			json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:b,s:s,s:s,s:s,s:b}",
			    "fingerprint", e->fingerprint, "kind", entry_kind(e->kind),
			    "use", role_name(e->roles), "key", e->has_key,
			    "subject", e->subject ? e->subject : "", "emails", e->emails ? e->emails : "",
			    "not_after", time_iso(e->not_after, t1), "expired", expired));
		} else {
			printf("%-8s %-10s %s %.16s  %s%s  %s  %s\n", entry_kind(e->kind),
			    role_name(e->roles), e->has_key ? "key" : "   ", e->fingerprint,
			    time_iso(e->not_after, t1), expired ? " (expired)" : "",
			    e->emails && e->emails[0] ? e->emails : "-", e->subject ? e->subject : "");
		}
	}
	if (g.json)
		json_out(json_pack("{s:O}", "entries", a));
	json_decref(a);
	smime_keystore_free(ks);
	return EXIT_OK;
}

int
cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "legacy", no_argument, NULL, O_LEGACY },
		{ "certs-only", no_argument, NULL, O_CERTS_ONLY },
		{ "password-file", required_argument, NULL, O_PASSWORD_FILE },
		GLOBAL_LONG_OPTIONS, { NULL, 0, NULL, 0 },
	};
	const char *out_path = NULL;
	bool legacy = false, certs_only = false;
	struct smime_keystore *ks = NULL;
	struct smime_error err;
	struct output out = { 0 };
	STACK_OF(X509) *certs = sk_X509_new_null(), *extra = sk_X509_new_null();
	EVP_PKEY **keys = NULL;
	X509 **key_certs = NULL;
	size_t n = 0;
	char *password = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'o': out_path = optarg; break;
		case O_LEGACY: legacy = true; break;
		case O_CERTS_ONLY: certs_only = true; break;
		case O_PASSWORD_FILE: g.password_file = optarg; break;
		case 'h':
			printf("usage: smime export [-o FILE] [--legacy] [--password-file FILE] [WHICH...]\n"
			    "       smime export --certs-only [-o FILE] [WHICH...]\n\n"
			    "Write own identities (certificates with their private keys, the whole\n"
			    "encryption history included) as one PKCS#12 file: AES-256 with PBKDF2 by\n"
			    "default, --legacy for 3DES/SHA-1 that older platforms need.  With\n"
			    "--certs-only, write certificates (no keys) as a certs-only S/MIME message.\n"
			    "WHICH is a fingerprint (or a prefix of at least 8 digits) or an email\n"
			    "address; without it, every identity.  The PKCS#12 password comes from\n"
			    "--password-file or SMIME_P12_PASSWORD, else a prompt.\n");
			rc = EXIT_OK;
			goto out;
		default:
			if (!global_option(c, optarg)) {
				rc = usage_error("export", "unknown option");
				goto out;
			}
		}
	}
	if ((rc = open_keystore("export", false, &ks)) != EXIT_OK)
		goto out;
	for (size_t i = 0; i < smime_keystore_count(ks); i++) {
		const struct smime_entry *e = smime_keystore_entry(ks, i);
		bool want = optind >= argc ? (e->has_key) : false;
		X509 *cert;
		for (int a = optind; a < argc; a++) {
			size_t al = strlen(argv[a]);
			if (al >= 8 && strncmp(e->fingerprint, argv[a], al) == 0)
				want = true;
			if (strchr(argv[a], '@') != NULL && e->emails != NULL) {
				/* Whole addresses only: bob@ must not select jimbob@. */
				const char *p = e->emails;
				while (*p != '\0') {
					size_t el = strcspn(p, ",");
					if (el == al && g_ascii_strncasecmp(p, argv[a], al) == 0)
						want = true;
					p += el;
					if (*p == ',')
						p++;
				}
			}
		}
		if (!want)
			continue;
		if (smime_keystore_cert(ks, e->fingerprint, &cert, &err) != 0) {
			rc = fail("export", &err);
			goto out;
		}
		sk_X509_push(certs, cert);
	}
	if (sk_X509_num(certs) == 0) {
		smime_error_set(&err, SMIME_E_NOTFOUND, optind < argc ?
		    "nothing in the keystore matches what was named" :
		    "the keystore holds no identity to export");
		rc = fail("export", &err);
		goto out;
	}
	if (output_open(&out, out_path, &err) != 0) {
		rc = fail("export", &err);
		goto out;
	}
	if (certs_only) {
		rc = smime_msg_certs_only(certs, out.bio, &err);
	} else {
		keys = calloc((size_t)sk_X509_num(certs), sizeof(*keys));
		key_certs = calloc((size_t)sk_X509_num(certs), sizeof(*key_certs));
		if (keys == NULL || key_certs == NULL) {
			rc = EXIT_IO;
			goto out;
		}
		for (int i = 0; i < sk_X509_num(certs); i++) {
			X509 *cert = sk_X509_value(certs, i);
			char fp[65];
			const struct smime_entry *e;
			smime_cert_fingerprint(cert, fp);
			e = smime_keystore_lookup(ks, fp);
			if (e == NULL || !e->has_key) {
				X509_up_ref(cert);
				sk_X509_push(extra, cert);
				continue;
			}
			if ((rc = smime_keystore_key(ks, fp, &keys[n], &err)) != 0)
				break;
			key_certs[n++] = cert;
		}
		if (rc == 0) {
			smime_error_clear(&err);
			password = p12_password(true, &err);
			if (password == NULL) {
				if (err.code == SMIME_OK || err.message[0] == '\0')
					smime_error_set(&err, SMIME_E_USAGE, "a PKCS#12 export needs a "
					    "password: --password-file FILE or SMIME_P12_PASSWORD");
				rc = err.code ? err.code : SMIME_E_USAGE;
			}
		}
		if (rc == 0) {
			/* The name mail clients show: the first identity's address. */
			char name[256] = "S/MIME";
			STACK_OF(OPENSSL_STRING) *em = n > 0 ? smime_cert_emails(key_certs[0]) : NULL;
			if (em != NULL && sk_OPENSSL_STRING_num(em) > 0)
				snprintf(name, sizeof(name), "%s", sk_OPENSSL_STRING_value(em, 0));
			sk_OPENSSL_STRING_pop_free(em, str_free);
			rc = smime_pkcs12_write(out.bio, keys, key_certs, n, extra, password,
			    legacy ? SMIME_P12_LEGACY : SMIME_P12_AES, name, &err);
		}
	}
	{
		struct smime_error e2;
		if (output_close(&out, rc == 0, &e2) != 0 && rc == 0) {
			err = e2;
			rc = e2.code;
		}
	}
	rc = rc == 0 ? EXIT_OK : fail("export", &err);
out:
	if (out.bio != NULL)
		output_close(&out, false, &err);
	for (size_t i = 0; i < n; i++)
		EVP_PKEY_free(keys[i]);
	free(keys);
	free(key_certs);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(extra, X509_free);
	secret_free(password);
	smime_keystore_free(ks);
	return rc;
}

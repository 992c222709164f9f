/* smime: the keystore commands: import, export, list. */
#include <errno.h>
#include <getopt.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cli.h"

#define IMPORT_MAX_FILE (64u * 1024 * 1024)

enum { O_TRUST = 0x300, O_PASSWORD_FILE, O_LEGACY, O_CERTS_ONLY, O_ALL, O_DISTRUST };

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
	case SMIME_ENTRY_DISTRUSTED: return "distrusted";
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
	/* Text before a PEM block ("openssl ca" writes "Certificate:") is not mail. */
	if (smime_looks_like_mail(data, len)) {
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

/*
 * The keystore folder import will use, and the outermost folder of its
 * path that does not exist yet (created by opening it), in made[]; made[0]
 * is "" when the keystore folder exists.
 */
static void
import_new_folders(char made[4096], char dir[4096])
{
	struct stat st;
	char *slash;

	made[0] = dir[0] = '\0';
	if (g.home != NULL)
		snprintf(dir, 4096, "%s", g.home);
	else if (!smime_keystore_default_dir(dir, 4096))
		return;
	if (stat(dir, &st) == 0)
		return;
	snprintf(made, 4096, "%s", dir);
	for (;;) {
		char parent[4096];
		snprintf(parent, sizeof(parent), "%s", made);
		if ((slash = strrchr(parent, '/')) == NULL || slash == parent)
			break;
		*slash = '\0';
		if (stat(parent, &st) == 0)
			break;
		snprintf(made, 4096, "%s", parent);
	}
}

/*
 * A keystore this import created and left empty is removed again, with
 * the folders made for it: a failed import leaves nothing behind.  Only
 * empty folders and the files a commit makes are removed.
 */
static void
import_undo_new(struct smime_keystore *ks, const char *made, const char *dir)
{
	static const char *const files[] = { "lock", "index.tmp" };
	static const char *const subs[] = { "certs", "keys" };
	char path[4200], cur[4096];
	struct stat st;

	if (made[0] == '\0' || dir[0] == '\0' || (ks != NULL && smime_keystore_count(ks) != 0))
		return;
	snprintf(path, sizeof(path), "%s/index", dir);
	if (stat(path, &st) == 0)
		return;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		(void)unlink(path);
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		(void)rmdir(path);
	}
	snprintf(cur, sizeof(cur), "%s", dir);
	for (;;) {
		char *slash;
		if (rmdir(cur) != 0 || strcmp(cur, made) == 0)
			break;
		if ((slash = strrchr(cur, '/')) == NULL || slash == cur)
			break;
		*slash = '\0';
	}
}

int
cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "trust", no_argument, NULL, O_TRUST },
		{ "distrust", no_argument, NULL, O_DISTRUST },
		{ "password-file", required_argument, NULL, O_PASSWORD_FILE },
		GLOBAL_LONG_OPTIONS, { NULL, 0, NULL, 0 },
	};
	bool trust = false, distrust = false, asked = false;
	char made[4096], dir[4096];
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
		case O_DISTRUST: distrust = true; break;
		case O_PASSWORD_FILE: g.password_file = optarg; break;
		case 'h':
			printf("usage: smime import [--trust] [--password-file FILE] FILE...\n"
			    "       smime import --distrust FILE...\n\n"
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
			    "that cannot be read is reported and the others are still imported.\n"
			    "With --distrust, every certificate of the files (PEM, DER, PKCS#7, SST)\n"
			    "joins the distrust list instead: a chain holding a distrusted CA or leaf\n"
			    "(or its subject with its key) fails every validation, even when it is\n"
			    "also a trust anchor.  A failed import into a new keystore leaves nothing.\n");
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
	if (trust && distrust) {
		json_decref(jfiles);
		return usage_error("import", "--trust and --distrust exclude each other");
	}
	import_new_folders(made, dir);
	if ((rc = open_keystore("import", true, &ks)) != EXIT_OK) {
		json_decref(jfiles);
		import_undo_new(NULL, made, dir);
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
			if (distrust) {
				kind = SMIME_ENTRY_DISTRUSTED;
				key = NULL;
			} else if (trust && (ca || self_signed) && key == NULL)
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
			if (kind == SMIME_ENTRY_DISTRUSTED) {
				const struct smime_entry *was = smime_keystore_lookup(ks, fp);
				if (was != NULL && was->kind == SMIME_ENTRY_ANCHOR)
					note = "was a trust anchor: no longer trusted";
				else if (was != NULL && was->has_key)
					note = "an own identity: its key still decrypts old mail, its "
					    "certificate no longer validates";
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
	for (size_t k = 0; k < bag->n_keys && !distrust; k++)
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
	if (ks != NULL)
		import_undo_new(ks, made, dir);
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
			    "List the keystore: own identities (with keys), contacts, CA certificates,\n"
			    "trust anchors and the distrust list (kind \"distrusted\"), with their use,\n"
			    "expiry, addresses and fingerprints.  With --json, emails is an array.\n");
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
			/* An array, as the service's API gives them. */
			json_t *em = json_array();
			const char *p = e->emails ? e->emails : "";
			while (*p != '\0') {
				size_t l = strcspn(p, ",");
				json_array_append_new(em, json_stringn(p, l));
				p += l;
				if (*p == ',')
					p++;
			}
			json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:b,s:s,s:o,s:s,s:b,s:b}",
			    "fingerprint", e->fingerprint, "kind", entry_kind(e->kind),
			    "use", role_name(e->roles), "key", e->has_key,
			    "subject", e->subject ? e->subject : "", "emails", em,
			    "not_after", time_iso(e->not_after, t1), "expired", expired,
			    "distrusted", e->kind == SMIME_ENTRY_DISTRUSTED));
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

/* smime: the message commands: sign, encrypt, decrypt, verify, open, inspect. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "settings.h"

static void
help_sign(FILE *f)
{
	fprintf(f, "usage: smime sign [-i FILE] [-o FILE] [--opaque] [--digest sha256|sha384|sha512]\n"
	    "                  [--pss] [--signer FINGERPRINT]\n\n"
	    "Sign a message with your signing certificate (chosen by the From address).\n"
	    "The default is a clear-signed multipart/signed message that every reader can\n"
	    "display; --opaque writes application/pkcs7-mime signed-data instead.\n\n"
	    "  -i, --in FILE       the message (default: standard input)\n"
	    "  -o, --out FILE      the signed message (default: standard output)\n"
	    "      --opaque        opaque signed-data instead of multipart/signed\n"
	    "      --digest NAME   sha256 (default), sha384 or sha512\n"
	    "      --pss           RSASSA-PSS for an RSA key (default PKCS#1 v1.5)\n"
	    "      --signer FP     the identity to sign with (its fingerprint, or a prefix\n"
	    "                      of at least 8 hex digits)\n");
}

static void
help_encrypt(FILE *f)
{
	fprintf(f, "usage: smime encrypt [-i FILE] [-o FILE] [--to ADDR]... [--cipher NAME]\n"
	    "                     [--oaep] [--no-self] [--drop-missing] [--allow-weak]\n"
	    "                     [--sign [--opaque] [--digest NAME] [--pss]]\n"
	    "                     [--lookup URL [--lookup-cacert FILE]] [--no-lookup]\n"
	    "                     [--ldap URL [--ldap-base DN] [--ldap-filter FILTER]\n"
	    "                      [--ldap-bind-dn DN --ldap-password-file FILE]\n"
	    "                      [--ldap-starttls] [--ldap-cacert FILE]] [--no-ldap]\n\n"
	    "Encrypt a message to the recipients in its To and Cc headers and those named\n"
	    "with --to, and to yourself so that sent mail stays readable.  The default is\n"
	    "AES-256-CBC (enveloped-data), which every mail client reads; AES-256-GCM\n"
	    "(authEnveloped-data) when every recipient announced it in a signed message\n"
	    "(the capabilities of any of their certificates count), or when the keystore\n"
	    "setting prefer-gcm is yes and no recipient announced capabilities without it\n"
	    "(smime config prefer-gcm yes).  --cipher decides alone.  The report names the\n"
	    "rule that chose (--json: cipher_rule).\n\n"
	    "  --to ADDR        another recipient (repeatable)\n"
	    "  --cipher NAME    aes-256-gcm, aes-128-gcm, aes-256-cbc or aes-128-cbc\n"
	    "  --allow-weak     permit --cipher des-ede3-cbc, for very old clients\n"
	    "  --oaep           RSAES-OAEP (SHA-256) key transport for RSA recipients\n"
	    "  --no-self        do not encrypt to your own certificate\n"
	    "  --drop-missing   leave out recipients without a certificate and go on\n"
	    "  --sign           sign first (sign then encrypt), with the sign options\n"
	    "                   --opaque, --digest, --pss and --signer FINGERPRINT\n\n"
	    "  --lookup URL     look recipients without a certificate up in the public\n"
	    "                   lookup of the smimed service at URL: http[s]://HOST:PORT\n"
	    "                   (default: $SMIME_LOOKUP; --no-lookup: not at all)\n"
	    "  --lookup-cacert FILE  CA certificates for the service's TLS certificate\n"
	    "                   with an https:// URL (default: the system's)\n"
	    "  --ldap URL       look recipients without a certificate up in this LDAP\n"
	    "                   directory: ldap://HOST:PORT/BASE_DN or ldaps://...\n"
	    "                   (default: $SMIME_LDAP; --no-ldap: not at all)\n"
	    "  --ldap-base DN   the base DN, when the URL names none\n"
	    "  --ldap-filter F  the search filter, %%s for the address\n"
	    "                   (default: (|(mail=%%s)(otherMailbox=%%s)))\n"
	    "  --ldap-bind-dn DN, --ldap-password-file FILE\n"
	    "                   bind as DN with the password in FILE (default: anonymous)\n"
	    "  --ldap-starttls  StartTLS on an ldap:// URL\n"
	    "  --ldap-cacert FILE  CA certificates for the directory's TLS certificate\n"
	    "                   (default: the system's)\n\n"
	    "With both, the lookup service is asked first and the directory only for the\n"
	    "recipients it did not give a usable certificate for.  A certificate from\n"
	    "either is taken only when it chains to a trust anchor of the keystore (the\n"
	    "service's chain and the directory's other certificates may only serve as\n"
	    "intermediates), is valid now, allows encryption and email protection and\n"
	    "carries the recipient's address; it is then added to the contacts.\n\n"
	    "Recipients without a usable certificate are all named; on a terminal you are\n"
	    "asked whether to leave them out, otherwise the command fails with status 4.\n");
}

static void
help_read(FILE *f, const char *cmd)
{
	if (strcmp(cmd, "decrypt") == 0) {
		fprintf(f, "usage: smime decrypt [-i FILE] [-o FILE]\n\n"
		    "Decrypt a message whose root is encrypted.  The key is found through the\n"
		    "keystore index by the recipient identifiers of the message; when none\n"
		    "matches, every identifier the message was encrypted to is listed.  An\n"
		    "encrypted part that is not the message root is never decrypted.\n"
		    "The report says the cipher and its integrity: aead for AES-GCM, none for\n"
		    "AES-CBC.  Nothing is written unless decryption succeeded.\n");
		return;
	}
	fprintf(f, "usage: smime %s [-i FILE] [-o FILE] [--at-time TIME] [--allow-from-mismatch]\n"
	    "                 [--no-harvest] [--unverified-output]\n\n", cmd);
	if (strcmp(cmd, "verify") == 0)
		fprintf(f, "Verify a signed message (multipart/signed or opaque signed-data), and write\n"
		    "the message without its signature when it is valid.\n\n");
	else
		fprintf(f, "Decrypt and verify whatever nesting arrives (signed inside encrypted,\n"
		    "encrypted inside signed, triple wrap), reporting every layer.\n\n");
	fprintf(f, "  --at-time TIME         verify as of TIME (ISO 8601, or @EPOCH), for archived\n"
	    "                         mail whose certificates have since expired\n"
	    "  --allow-from-mismatch  a signer that is not the From address is a warning,\n"
	    "                         not a failure\n"
	    "  --no-harvest           do not add signers' certificates to the contacts\n"
	    "  --unverified-output    write the content even if the signature is invalid\n\n"
	    "The report names each signer's subject, email, fingerprint and signing time,\n"
	    "the result and its reason, and which MIME part the signature covers.  A valid\n"
	    "signature that covers only part of the message, uses SHA-1, wraps encrypted\n"
	    "content, or whose signing time is far from the Date header exits with 6.\n");
}

enum { O_OPAQUE = 0x200, O_DIGEST, O_PSS, O_SIGNER, O_TO, O_CIPHER, O_OAEP, O_NOSELF,
	O_DROP, O_WEAK, O_SIGN, O_ATTIME, O_ALLOWFROM, O_NOHARVEST, O_UNVERIFIED,
	O_LDAP, O_LDAP_BASE, O_LDAP_FILTER, O_LDAP_BIND, O_LDAP_PWFILE, O_LDAP_STARTTLS,
	O_LDAP_CACERT, O_NO_LDAP, O_LOOKUP, O_LOOKUP_CACERT, O_NO_LOOKUP };

static int
finish(const char *cmd, struct output *out, int rc, struct smime_error *err)
{
	struct smime_error e2;

	if (output_close(out, rc == 0, &e2) != 0 && rc == 0) {
		*err = e2;
		rc = e2.code;
	}
	return rc;
}

/* Ask on the terminal whether to drop recipients without a certificate. */
static bool
ask_missing(bool drop, const char *const *addrs, size_t n)
{
	FILE *tty;
	char line[16];

	fprintf(stderr, "smime encrypt: no usable encryption certificate for:\n");
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "  %s\n", addrs[i]);
	if (drop)
		return true;
	tty = fopen("/dev/tty", "r+");
	if (tty == NULL)
		return false;
	fprintf(tty, "Remove them and encrypt to the others? [y/N] ");
	fflush(tty);
	bool yes = fgets(line, sizeof(line), tty) != NULL && (line[0] == 'y' || line[0] == 'Y');
	fclose(tty);
	return yes;
}

/*
 * What to do with recipients without a certificate.  With a lookup service
 * or a directory, the first pass only records them (and fails, writing
 * nothing): they are looked up, and the second pass decides as without one.
 */
struct missing {
	bool drop;               /* --drop-missing */
	bool defer;              /* record and fail: a lookup or a directory is asked first */
	bool oom;
	char **addrs;            /* the recorded addresses */
	size_t n;
};

static bool
on_missing(void *arg, const char *const *addrs, size_t n)
{
	struct missing *m = arg;

	if (m->defer) {
		m->defer = false;
		for (size_t i = 0; i < n; i++) {
			char **na;
			/* libsmime names the sender "ADDR (yourself; ...)": no directory holds your key. */
			if (strstr(addrs[i], " (yourself") != NULL)
				continue;
			if ((na = realloc(m->addrs, (m->n + 1) * sizeof(*na))) == NULL ||
			    (na[m->n] = strdup(addrs[i])) == NULL) {
				if (na != NULL)
					m->addrs = na;
				m->oom = true;
				return false;
			}
			m->addrs = na;
			m->n++;
		}
		if (m->n > 0)
			return false;
	}
	return ask_missing(m->drop, addrs, n);
}

static void
missing_free(struct missing *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->addrs[i]);
	free(m->addrs);
	m->addrs = NULL;
	m->n = 0;
}

/*
 * Make the input readable twice (encrypt may read it again after a
 * lookup): a regular file is read again from *pos_r; anything
 * else (a pipe) is first copied to an unlinked 0600 file in $TMPDIR, which
 * replaces *in.
 */
static int
input_rewindable(BIO **in, off_t *pos_r, struct smime_error *err)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	unsigned char *chunk = NULL;
	unsigned long long total = 0;
	FILE *fp = NULL;
	struct stat st;
	BIO *spool;
	int fd, n, rc = 0;

	if (BIO_method_type(*in) == BIO_TYPE_FILE && BIO_get_fp(*in, &fp) > 0 && fp != NULL &&
	    fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && (*pos_r = ftello(fp)) >= 0)
		return 0;
	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	snprintf(path, sizeof(path), "%s/smime-spool-XXXXXX", dir);
	if ((fd = mkstemp(path)) < 0)
		return smime_error_set(err, SMIME_E_IO, "cannot create a spool file in %s: %s", dir,
		    strerror(errno));
	unlink(path);
	(void)fchmod(fd, 0600);
	if ((chunk = malloc(65536)) == NULL) {
		close(fd);
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	}
	while (rc == 0 && (n = BIO_read(*in, chunk, 65536)) > 0) {
		total += (unsigned)n;
		if (total > SMIME_MSG_MAX_SIZE)
			rc = smime_error_set(err, SMIME_E_INPUT, "the message exceeds the limit of "
			    "%u bytes", SMIME_MSG_MAX_SIZE);
		else if (write(fd, chunk, (size_t)n) != n)
			rc = smime_error_set(err, SMIME_E_IO, "cannot spool the input: %s",
			    strerror(errno));
	}
	OPENSSL_cleanse(chunk, 65536);
	free(chunk);
	if (rc != 0 || lseek(fd, 0, SEEK_SET) != 0 || (spool = BIO_new_fd(fd, BIO_CLOSE)) == NULL) {
		close(fd);
		return rc != 0 ? rc : smime_error_set(err, SMIME_E_IO, "cannot spool the input");
	}
	BIO_free(*in);
	*in = spool;
	*pos_r = 0;
	return 0;
}

/* fail(), with the lookups' answers in the JSON error. */
static int
fail_directory(const char *cmd, const struct smime_error *err, json_t *directory)
{
	if (!g.json || directory == NULL || json_array_size(directory) == 0)
		return fail(cmd, err);
	json_err(json_pack("{s:{s:s,s:s,s:i},s:O}", "error", "code",
	    smime_code_name(err->code), "message", err->message, "exit", exit_code(err->code),
	    "directory", directory));
	return exit_code(err->code);
}

/*
 * Look the missing recipients up: in the lookup service (when given), then
 * in the directory (when given) for those still without a certificate.
 * Returns EXIT_OK unless the keystore cannot be written (printed).
 */
static int
look_up(struct lookup_svc *svc, struct ldap_dir *dir, struct smime_keystore *ks,
    const struct missing *miss, json_t *report)
{
	const char **rest = calloc(miss->n, sizeof(*rest));
	bool *found = calloc(miss->n, sizeof(*found));
	size_t n = 0;
	int rc = EXIT_OK;

	if (rest == NULL || found == NULL) {
		struct smime_error err;
		smime_error_set(&err, SMIME_E_INTERNAL, "out of memory");
		rc = fail("encrypt", &err);
		goto out;
	}
	if (svc != NULL && (rc = recipients_fetch(&recipient_source_lookup, svc, ks,
	    (const char *const *)miss->addrs, miss->n, report, found)) != EXIT_OK)
		goto out;
	for (size_t i = 0; i < miss->n; i++)
		if (!found[i])
			rest[n++] = miss->addrs[i];
	if (dir != NULL && n > 0)
		rc = recipients_fetch(&recipient_source_ldap, dir, ks, rest, n, report, found);
out:
	free(rest);
	free(found);
	return rc;
}

static int
sign_or_encrypt(int argc, char **argv, bool encrypt)
{
	const char *cmd = encrypt ? "encrypt" : "sign";
	static const struct option opts[] = {
		{ "in", required_argument, NULL, 'i' }, { "out", required_argument, NULL, 'o' },
		{ "opaque", no_argument, NULL, O_OPAQUE }, { "digest", required_argument, NULL, O_DIGEST },
		{ "pss", no_argument, NULL, O_PSS }, { "signer", required_argument, NULL, O_SIGNER },
		{ "to", required_argument, NULL, O_TO }, { "cipher", required_argument, NULL, O_CIPHER },
		{ "oaep", no_argument, NULL, O_OAEP }, { "no-self", no_argument, NULL, O_NOSELF },
		{ "drop-missing", no_argument, NULL, O_DROP }, { "allow-weak", no_argument, NULL, O_WEAK },
		{ "sign", no_argument, NULL, O_SIGN },
		{ "ldap", required_argument, NULL, O_LDAP },
		{ "ldap-base", required_argument, NULL, O_LDAP_BASE },
		{ "ldap-filter", required_argument, NULL, O_LDAP_FILTER },
		{ "ldap-bind-dn", required_argument, NULL, O_LDAP_BIND },
		{ "ldap-password-file", required_argument, NULL, O_LDAP_PWFILE },
		{ "ldap-starttls", no_argument, NULL, O_LDAP_STARTTLS },
		{ "ldap-cacert", required_argument, NULL, O_LDAP_CACERT },
		{ "no-ldap", no_argument, NULL, O_NO_LDAP },
		{ "lookup", required_argument, NULL, O_LOOKUP },
		{ "lookup-cacert", required_argument, NULL, O_LOOKUP_CACERT },
		{ "no-lookup", no_argument, NULL, O_NO_LOOKUP },
		GLOBAL_LONG_OPTIONS, { NULL, 0, NULL, 0 },
	};
	struct smime_sign_opts so = { 0 };
	struct smime_encrypt_opts eo = { 0 };
	struct ldap_opts lo = { 0 };
	struct ldap_dir *dir = NULL;
	struct lookup_opts ko = { 0 };
	struct lookup_svc *svc = NULL;
	struct missing miss = { 0 };
	json_t *jdir = NULL;
	bool no_ldap = false, ldap_opt = false, no_lookup = false;
	off_t in_pos = 0;
	const char *in_path = NULL, *out_path = NULL;
	const char **to = NULL;
	size_t n_to = 0;
	bool drop = false, enc_only_opt = false;
	struct smime_keystore *ks = NULL;
	struct smime_error err;
	struct output out = { 0 };
	struct smime_encrypt_result *res = NULL;
	BIO *in = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "i:o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'i': in_path = optarg; break;
		case 'o': out_path = optarg; break;
		case O_OPAQUE: so.opaque = true; break;
		case O_DIGEST: so.digest = optarg; break;
		case O_PSS: so.pss = true; break;
		case O_SIGNER: so.signer = optarg; break;
		case O_TO: {
			const char **nt = realloc(to, (n_to + 1) * sizeof(*to));
			if (nt == NULL)
				return EXIT_IO;
			to = nt;
			to[n_to++] = optarg;
			enc_only_opt = true;
			break;
		}
		case O_CIPHER: eo.cipher = optarg; enc_only_opt = true; break;
		case O_OAEP: eo.oaep = true; enc_only_opt = true; break;
		case O_NOSELF: eo.no_self = true; enc_only_opt = true; break;
		case O_DROP: drop = true; enc_only_opt = true; break;
		case O_WEAK: eo.allow_weak = true; enc_only_opt = true; break;
		case O_SIGN: eo.sign = true; enc_only_opt = true; break;
		case O_LDAP: lo.url = optarg; enc_only_opt = true; break;
		case O_LDAP_BASE: lo.base = optarg; ldap_opt = enc_only_opt = true; break;
		case O_LDAP_FILTER: lo.filter = optarg; ldap_opt = enc_only_opt = true; break;
		case O_LDAP_BIND: lo.bind_dn = optarg; ldap_opt = enc_only_opt = true; break;
		case O_LDAP_PWFILE: lo.password_file = optarg; ldap_opt = enc_only_opt = true; break;
		case O_LDAP_STARTTLS: lo.starttls = true; ldap_opt = enc_only_opt = true; break;
		case O_LDAP_CACERT: lo.cacert = optarg; ldap_opt = enc_only_opt = true; break;
		case O_NO_LDAP: no_ldap = true; enc_only_opt = true; break;
		case O_LOOKUP: ko.url = optarg; enc_only_opt = true; break;
		case O_LOOKUP_CACERT: ko.cacert = optarg; enc_only_opt = true; break;
		case O_NO_LOOKUP: no_lookup = true; enc_only_opt = true; break;
		case 'h':
			if (encrypt) help_encrypt(stdout); else help_sign(stdout);
			free(to);
			return EXIT_OK;
		default:
			if (!global_option(c, optarg)) {
				free(to);
				return usage_error(cmd, "unknown option");
			}
		}
	}
	if (optind < argc) {
		free(to);
		return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	}
	if (!encrypt && enc_only_opt) {
		free(to);
		return usage_error(cmd, "--to, --cipher and the other encryption options belong "
		    "to 'smime encrypt'");
	}
	/* The directory: --ldap, else $SMIME_LDAP, unless --no-ldap. */
	if (encrypt && !no_ldap && lo.url == NULL && getenv("SMIME_LDAP") != NULL &&
	    getenv("SMIME_LDAP")[0] != '\0') {
		lo.url = getenv("SMIME_LDAP");
		lo.url_from_env = true;
	}
	if (encrypt && no_ldap && (lo.url != NULL || ldap_opt)) {
		free(to);
		return usage_error(cmd, "--no-ldap with other --ldap options");
	}
	if (encrypt && lo.url == NULL && ldap_opt) {
		free(to);
		return usage_error(cmd, "the --ldap-* options want --ldap URL (or SMIME_LDAP)");
	}
	/* The lookup service: --lookup, else $SMIME_LOOKUP, unless --no-lookup. */
	if (encrypt && !no_lookup && ko.url == NULL && getenv("SMIME_LOOKUP") != NULL &&
	    getenv("SMIME_LOOKUP")[0] != '\0') {
		ko.url = getenv("SMIME_LOOKUP");
		ko.url_from_env = true;
	}
	if (encrypt && no_lookup && (ko.url != NULL || ko.cacert != NULL)) {
		free(to);
		return usage_error(cmd, "--no-lookup with other --lookup options");
	}
	if (encrypt && ko.url == NULL && ko.cacert != NULL) {
		free(to);
		return usage_error(cmd, "--lookup-cacert wants --lookup URL (or SMIME_LOOKUP)");
	}
	if (encrypt && ko.url != NULL && (rc = lookup_svc_new(cmd, &ko, &svc)) != EXIT_OK) {
		free(to);
		return rc;
	}
	if (encrypt && lo.url != NULL && (rc = ldap_dir_new(cmd, &lo, &dir)) != EXIT_OK) {
		lookup_svc_free(svc);
		free(to);
		return rc;
	}
	if ((rc = open_keystore(cmd, false, &ks)) != EXIT_OK) {
		ldap_dir_free(dir);
		lookup_svc_free(svc);
		free(to);
		return rc;
	}
	if ((in = open_input(in_path, &err)) == NULL ||
	    ((dir != NULL || svc != NULL) && input_rewindable(&in, &in_pos, &err) != 0) ||
	    output_open(&out, out_path, &err) != 0) {
		rc = fail(cmd, &err);
		goto out;
	}
	if (encrypt) {
		char pg[16];
		if (settings_get(ks, "prefer-gcm", pg, sizeof(pg), &err) != 0) {
			rc = fail(cmd, &err);
			goto out;
		}
		eo.prefer_gcm = strcmp(pg, "yes") == 0;
		eo.to = to;
		eo.n_to = n_to;
		eo.sign_opts = so;
		eo.missing = on_missing;
		eo.missing_arg = &miss;
		miss.drop = drop;
		miss.defer = dir != NULL || svc != NULL;
		rc = smime_msg_encrypt(ks, &eo, in, out.bio, &res, &err);
		if (rc == SMIME_E_NOTFOUND && miss.oom)
			rc = smime_error_set(&err, SMIME_E_INTERNAL, "out of memory");
		if (rc == SMIME_E_NOTFOUND && miss.n > 0) {
			/* Nothing was written: look them up, then encrypt from the start again. */
			if (g.json && (jdir = json_array()) == NULL) {
				smime_error_set(&err, SMIME_E_INTERNAL, "out of memory");
				rc = fail(cmd, &err);
				goto out;
			}
			if ((rc = look_up(svc, dir, ks, &miss, jdir)) != EXIT_OK)
				goto out;
			if (BIO_seek(in, in_pos) < 0) {
				smime_error_set(&err, SMIME_E_IO, "cannot read the input again");
				rc = fail(cmd, &err);
				goto out;
			}
			rc = smime_msg_encrypt(ks, &eo, in, out.bio, &res, &err);
		}
	} else {
		rc = smime_msg_sign(ks, &so, in, out.bio, &err);
	}
	rc = finish(cmd, &out, rc, &err);
	if (rc != 0) {
		rc = fail_directory(cmd, &err, jdir);
		goto out;
	}
	if (encrypt && res != NULL) {
		if (g.json) {
			json_t *r = json_array(), *d = json_array();
			for (size_t i = 0; i < res->n_recipients; i++)
				json_array_append_new(r, json_string(res->recipients[i]));
			for (size_t i = 0; i < res->n_dropped; i++)
				json_array_append_new(d, json_string(res->dropped[i]));
			json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:o}", "status", "ok", "cipher", res->cipher,
			    "cipher_rule", res->cipher_rule ? res->cipher_rule : "", "recipients", r,
			    "dropped", d);
			if (jdir != NULL)
				json_object_set(j, "directory", jdir);
			char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			if (s)
				fprintf(stderr, "%s\n", s);
			free(s);
			json_decref(j);
		} else if (!g.quiet) {
			fprintf(stderr, "encrypted with %s (%s) to:", res->cipher,
			    res->cipher_rule ? res->cipher_rule : "");
			for (size_t i = 0; i < res->n_recipients; i++)
				fprintf(stderr, " %s", res->recipients[i]);
			fprintf(stderr, "\n");
			for (size_t i = 0; i < res->n_dropped; i++)
				fprintf(stderr, "left out (no certificate): %s\n", res->dropped[i]);
		}
	}
	rc = EXIT_OK;
out:
	if (out.bio != NULL)
		output_close(&out, false, &err);
	smime_encrypt_result_free(res);
	BIO_free(in);
	smime_keystore_free(ks);
	ldap_dir_free(dir);
	lookup_svc_free(svc);
	missing_free(&miss);
	json_decref(jdir);
	free(to);
	return rc;
}

int
cmd_sign(int argc, char **argv)
{
	return sign_or_encrypt(argc, argv, false);
}

int
cmd_encrypt(int argc, char **argv)
{
	return sign_or_encrypt(argc, argv, true);
}

static int
read_command(int argc, char **argv, const char *cmd)
{
	static const struct option opts[] = {
		{ "in", required_argument, NULL, 'i' }, { "out", required_argument, NULL, 'o' },
		{ "at-time", required_argument, NULL, O_ATTIME },
		{ "allow-from-mismatch", no_argument, NULL, O_ALLOWFROM },
		{ "no-harvest", no_argument, NULL, O_NOHARVEST },
		{ "unverified-output", no_argument, NULL, O_UNVERIFIED },
		GLOBAL_LONG_OPTIONS, { NULL, 0, NULL, 0 },
	};
	struct smime_verify_opts vo = { 0 };
	const char *in_path = NULL, *out_path = NULL;
	struct smime_keystore *ks = NULL;
	struct smime_report *report = NULL;
	struct smime_error err;
	struct output out = { 0 };
	BIO *in = NULL;
	bool decrypt = strcmp(cmd, "decrypt") == 0;
	int c, rc;

	while ((c = getopt_long(argc, argv, "i:o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'i': in_path = optarg; break;
		case 'o': out_path = optarg; break;
		case O_ATTIME:
			if (decrypt || !parse_time(optarg, &vo.at))
				return usage_error(cmd, decrypt ? "--at-time belongs to verify and open" :
				    "--at-time wants an ISO 8601 time such as 2019-03-01T12:00:00Z");
			break;
		case O_ALLOWFROM: vo.allow_from_mismatch = true; break;
		case O_NOHARVEST: vo.no_harvest = true; break;
		case O_UNVERIFIED: vo.unverified_output = true; break;
		case 'h':
			help_read(stdout, cmd);
			return EXIT_OK;
		default:
			if (!global_option(c, optarg))
				return usage_error(cmd, "unknown option");
		}
	}
	if (optind < argc)
		return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (decrypt && (vo.allow_from_mismatch || vo.no_harvest || vo.unverified_output))
		return usage_error(cmd, "--allow-from-mismatch, --no-harvest and --unverified-output "
		    "belong to verify and open");
	if ((rc = open_keystore(cmd, false, &ks)) != EXIT_OK)
		return rc;
	if ((in = open_input(in_path, &err)) == NULL || output_open(&out, out_path, &err) != 0) {
		rc = fail(cmd, &err);
		goto out;
	}
	if (decrypt)
		rc = smime_msg_decrypt(ks, in, out.bio, &report, &err);
	else if (strcmp(cmd, "verify") == 0)
		rc = smime_msg_verify(ks, &vo, in, out.bio, &report, &err);
	else
		rc = smime_msg_open(ks, &vo, in, out.bio, &report, &err);
	/* With --unverified-output the content was written although the signature failed. */
	{
		bool keep = rc == 0 || (vo.unverified_output && rc == SMIME_E_BADSIG);
		struct smime_error e2;
		if (output_close(&out, keep, &e2) != 0 && rc == 0) {
			err = e2;
			rc = e2.code;
		}
	}
	if (report != NULL)
		print_report(cmd, report, rc, &err);
	else if (rc != 0)
		fail(cmd, &err);
	if (rc != 0)
		rc = exit_code(rc);
	else
		rc = report != NULL && report->n_warnings > 0 ? EXIT_WARNING : EXIT_OK;
out:
	if (out.bio != NULL)
		output_close(&out, false, &err);
	smime_report_free(report);
	BIO_free(in);
	smime_keystore_free(ks);
	return rc;
}

int
cmd_decrypt(int argc, char **argv)
{
	return read_command(argc, argv, "decrypt");
}

int
cmd_verify(int argc, char **argv)
{
	return read_command(argc, argv, "verify");
}

int
cmd_open(int argc, char **argv)
{
	return read_command(argc, argv, "open");
}

int
cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "in", required_argument, NULL, 'i' }, GLOBAL_LONG_OPTIONS, { NULL, 0, NULL, 0 },
	};
	const char *in_path = NULL;
	struct smime_inspection *ins = NULL;
	struct smime_error err;
	BIO *in;
	int c, rc;

	while ((c = getopt_long(argc, argv, "i:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'i': in_path = optarg; break;
		case 'h':
			printf("usage: smime inspect [-i FILE | FILE] [--json]\n\n"
			    "Show the MIME tree of a message and the CMS structure of each S/MIME\n"
			    "part (content type, signers, recipients, algorithms), without any key.\n");
			return EXIT_OK;
		default:
			if (!global_option(c, optarg))
				return usage_error("inspect", "unknown option");
		}
	}
	if (optind < argc)
		in_path = argv[optind];
	if ((in = open_input(in_path, &err)) == NULL)
		return fail("inspect", &err);
	rc = smime_msg_inspect(in, &ins, &err);
	BIO_free(in);
	if (rc != 0)
		return fail("inspect", &err);
	if (g.json) {
		json_t *a = json_array();
		for (size_t i = 0; i < ins->n_nodes; i++) {
			const struct smime_node *n = &ins->nodes[i];
			json_array_append_new(a, json_pack("{s:s,s:i,s:s,s:s?,s:s?}", "part",
			    n->part[0] ? n->part : "root", "depth", n->depth, "content_type",
			    n->content_type, "filename", n->filename, "cms", n->detail));
		}
		json_out(json_pack("{s:o}", "parts", a));
	} else {
		for (size_t i = 0; i < ins->n_nodes; i++) {
			const struct smime_node *n = &ins->nodes[i];
			printf("%*s%s %s%s%s%s\n", n->depth * 2, "", n->part[0] ? n->part : "root",
			    n->content_type, n->filename ? " name=" : "", n->filename ? n->filename : "",
			    n->detail ? "" : "");
			if (n->detail)
				printf("%*s  cms: %s\n", n->depth * 2, "", n->detail);
		}
	}
	smime_inspection_free(ins);
	return EXIT_OK;
}

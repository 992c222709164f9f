/*
 * scep_tool: pkiMessages made to order for the SCEP tests, where a real
 * client would not make them (SHA-1, a foreign address, a renewal signed
 * by a revoked certificate, a chosen nonce), and replies read back.
 * Interoperability is tested with certmonger and smime enroll; this only
 * crafts what they refuse to send.
 *
 *   scep_tool make --type pkcsreq|renewal|poll|getcert|getcrl --key KEY
 *       --ra RA.pem [--ca CA.pem] [--challenge S] [--cn CN] [--email E]...
 *       [--serial-number S] [--digest sha1|sha256|sha512] [--cipher NAME]
 *       [--signer-cert C --signer-key K] [--tid T] [--nonce HEX]
 *       [--cert-serial HEX] --out MSG.der [--self SELF.pem]
 *   scep_tool read --in REPLY.der --key KEY --cert CERT [--cert-out PEM]
 *       prints status=..., failInfo=..., text=...
 *   scep_tool key rsa:BITS|ec:CURVE OUT.pem
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <smime/smime.h>

static void
die(const char *what)
{
	fprintf(stderr, "scep_tool: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(2);
}

static EVP_PKEY *
load_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

	if (f != NULL)
		fclose(f);
	if (k == NULL)
		die(path);
	return k;
}

static X509 *
load_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f != NULL)
		fclose(f);
	if (x == NULL)
		die(path);
	return x;
}

static unsigned char *
read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = malloc(1 << 20);
	size_t n;

	if (f == NULL || buf == NULL)
		die(path);
	n = fread(buf, 1, 1 << 20, f);
	fclose(f);
	*len_r = n;
	return buf;
}

static int
make(int argc, char **argv)
{
	const char *type = NULL, *keyp = NULL, *rap = NULL, *cap = NULL, *challenge = NULL;
	const char *cn = "SCEP test", *serialnum = NULL, *digest = "sha256";
	const char *cipher = "aes-128-cbc", *scp = NULL, *skp = NULL, *tid = NULL;
	const char *noncehex = NULL, *certserial = NULL, *out = NULL, *selfp = NULL;
	const char *emails[8];
	int n_emails = 0;
	struct smime_scep_out o = { 0 };
	struct smime_error err;
	unsigned char nonce[SMIME_SCEP_NONCE], *der;
	char tidbuf[65];
	size_t len;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, var) if (strcmp(a, name) == 0 && v != NULL) { var = v; i++; continue; }
		OPT("--type", type) OPT("--key", keyp) OPT("--ra", rap) OPT("--ca", cap)
		OPT("--challenge", challenge) OPT("--cn", cn) OPT("--serial-number", serialnum)
		OPT("--digest", digest) OPT("--cipher", cipher) OPT("--signer-cert", scp)
		OPT("--signer-key", skp) OPT("--tid", tid) OPT("--nonce", noncehex)
		OPT("--cert-serial", certserial) OPT("--out", out) OPT("--self", selfp)
#undef OPT
		if (strcmp(a, "--email") == 0 && v != NULL && n_emails < 8) {
			emails[n_emails++] = v;
			i++;
			continue;
		}
		die(a);
	}
	if (type == NULL || keyp == NULL || rap == NULL || out == NULL)
		die("make needs --type, --key, --ra and --out");

	EVP_PKEY *key = load_key(keyp);
	X509 *ra = load_cert(rap);
	X509 *ca = cap != NULL ? load_cert(cap) : NULL;
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();

	X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
	    -1, -1, 0);
	if (serialnum != NULL)
		X509_NAME_add_entry_by_NID(name, NID_serialNumber, MBSTRING_ASC,
		    (const unsigned char *)serialnum, -1, -1, 0);
	X509_REQ_set_subject_name(req, name);
	X509_REQ_set_pubkey(req, key);
	if (challenge != NULL)
		X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_ASC,
		    (const unsigned char *)challenge, -1);
	if (n_emails > 0) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		GENERAL_NAMES *gens = GENERAL_NAMES_new();

		for (int i = 0; i < n_emails; i++) {
			GENERAL_NAME *gn = GENERAL_NAME_new();
			ASN1_IA5STRING *s = ASN1_IA5STRING_new();

			ASN1_STRING_set(s, emails[i], -1);
			GENERAL_NAME_set0_value(gn, GEN_EMAIL, s);
			sk_GENERAL_NAME_push(gens, gn);
		}
		sk_X509_EXTENSION_push(exts, X509V3_EXT_i2d(NID_subject_alt_name, 0, gens));
		X509_REQ_add_extensions(req, exts);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		GENERAL_NAMES_free(gens);
	}
	if (X509_REQ_sign(req, key, EVP_sha256()) <= 0)
		die("signing the CSR");

	X509 *self = NULL;
	EVP_PKEY *signer_key = key;
	if (scp != NULL) {
		self = load_cert(scp);
		signer_key = load_key(skp != NULL ? skp : keyp);
	} else if (smime_scep_self_signed(req, key, &self, &err) != 0)
		die(err.message);
	if (tid == NULL) {
		if (smime_scep_transaction_id(key, tidbuf, &err) != 0)
			die(err.message);
		tid = tidbuf;
	}
	if (noncehex != NULL) {
		for (int i = 0; i < SMIME_SCEP_NONCE; i++)
			if (sscanf(noncehex + 2 * i, "%2hhx", &nonce[i]) != 1)
				die("--nonce: 32 hex digits");
		o.sender_nonce = nonce;
	}
	if (strcmp(type, "pkcsreq") == 0)
		o.type = SMIME_SCEP_PKCSREQ;
	else if (strcmp(type, "renewal") == 0)
		o.type = SMIME_SCEP_RENEWALREQ;
	else if (strcmp(type, "poll") == 0)
		o.type = SMIME_SCEP_CERTPOLL;
	else if (strcmp(type, "getcert") == 0)
		o.type = SMIME_SCEP_GETCERT;
	else if (strcmp(type, "getcrl") == 0)
		o.type = SMIME_SCEP_GETCRL;
	else
		die("--type");
	ASN1_INTEGER *serial = NULL;
	if (certserial != NULL) {
		BIGNUM *bn = NULL;

		if (BN_hex2bn(&bn, certserial) == 0)
			die("--cert-serial");
		serial = BN_to_ASN1_INTEGER(bn, NULL);
		BN_free(bn);
	}
	o.transaction_id = tid;
	o.signer = self;
	o.key = signer_key;
	o.md = EVP_get_digestbyname(digest);
	o.recipient = ra;
	o.cipher = EVP_get_cipherbyname(cipher);
	o.csr = req;
	o.issuer = ca != NULL ? X509_get_subject_name(ca) : X509_get_issuer_name(ra);
	o.subject = name;
	o.serial = serial;
	if (o.md == NULL || o.cipher == NULL)
		die("--digest or --cipher");
	if (smime_scep_write(&o, &der, &len, NULL, &err) != 0)
		die(err.message);
	FILE *f = fopen(out, "wb");
	if (f == NULL || fwrite(der, 1, len, f) != len || fclose(f) != 0)
		die(out);
	if (selfp != NULL && (f = fopen(selfp, "w")) != NULL) {
		PEM_write_X509(f, self);
		fclose(f);
	}
	printf("%s\n", tid);
	return 0;
}

static int
readrep(int argc, char **argv)
{
	const char *in = NULL, *keyp = NULL, *certp = NULL, *certout = NULL;
	struct smime_scep_msg m = { 0 };
	struct smime_error err;
	unsigned char *der;
	size_t len;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, var) if (strcmp(a, name) == 0 && v != NULL) { var = v; i++; continue; }
		OPT("--in", in) OPT("--key", keyp) OPT("--cert", certp) OPT("--cert-out", certout)
#undef OPT
		die(a);
	}
	if (in == NULL || keyp == NULL || certp == NULL)
		die("read needs --in, --key and --cert");
	der = read_file(in, &len);
	if (smime_scep_read(der, len, &m, &err) != 0)
		die(err.message);
	printf("type=%s status=%s", smime_scep_type_name(m.type), smime_scep_status_name(m.status));
	if (m.status == SMIME_SCEP_FAILURE)
		printf(" failInfo=%s text=%s", smime_scep_fail_name(m.fail_info),
		    m.fail_text != NULL ? m.fail_text : "");
	printf(" tid=%s\n", m.transaction_id);
	if (m.status == SMIME_SCEP_SUCCESS) {
		EVP_PKEY *key = load_key(keyp);
		X509 *cert = load_cert(certp);

		if (smime_scep_open(&m, cert, key, &err) != 0)
			die(err.message);
		if (certout != NULL) {
			FILE *f = fopen(certout, "w");

			for (int i = 0; f != NULL && i < sk_X509_num(m.issued); i++)
				PEM_write_X509(f, sk_X509_value(m.issued, i));
			if (f != NULL && m.crls != NULL)
				PEM_write_X509_CRL(f, sk_X509_CRL_value(m.crls, 0));
			if (f != NULL)
				fclose(f);
		}
	}
	smime_scep_msg_clear(&m);
	free(der);
	return 0;
}

static int
keygen(const char *spec, const char *out)
{
	EVP_PKEY *k = NULL;
	FILE *f = NULL;

	if (strncmp(spec, "rsa:", 4) == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)atoi(spec + 4));
	else if (strncmp(spec, "ec:", 3) == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", spec + 3);
	if (k == NULL || (f = fopen(out, "w")) == NULL)
		die(spec);
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	EVP_PKEY_free(k);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "make") == 0)
		return make(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "read") == 0)
		return readrep(argc - 2, argv + 2);
	if (argc == 4 && strcmp(argv[1], "key") == 0)
		return keygen(argv[2], argv[3]);
	die("usage: scep_tool make|read|key ...");
	return 2;
}

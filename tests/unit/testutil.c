/* Helpers shared by the unit tests. */
#include "testutil.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

EVP_PKEY *
tu_key(const char *type)
{
	EVP_PKEY *k = NULL;

	if (strcmp(type, "rsa2048") == 0)
		k = EVP_RSA_gen(2048);
	else if (strcmp(type, "rsa3072") == 0)
		k = EVP_RSA_gen(3072);
	else if (strcmp(type, "p256") == 0)
		k = EVP_EC_gen("P-256");
	else if (strcmp(type, "p384") == 0)
		k = EVP_EC_gen("P-384");
	else if (strcmp(type, "ed25519") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (k == NULL) {
		fprintf(stderr, "tu_key: cannot make %s\n", type);
		abort();
	}
	return k;
}

static void
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL || !X509_add_ext(cert, ext, -1)) {
		fprintf(stderr, "tu_cert: extension %d=%s\n", nid, value);
		abort();
	}
	X509_EXTENSION_free(ext);
}

X509 *
tu_cert(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *key, const char *cn,
    const char *email, int roles, int from_days, int to_days)
{
	X509 *c = X509_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char serial[16];
	BIGNUM *bn;
	char ku[128] = "";
	char san[300];
	const EVP_MD *md;

	RAND_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
	BN_free(bn);
	X509_set_version(c, X509_VERSION_3);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"smimed tests", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(c, name);
	X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
	X509_NAME_free(name);
	X509_gmtime_adj(X509_getm_notBefore(c), (long)from_days * 86400);
	X509_gmtime_adj(X509_getm_notAfter(c), (long)to_days * 86400);
	X509_set_pubkey(c, key);

	add_ext(c, issuer ? issuer : c, NID_subject_key_identifier, "hash");
	add_ext(c, issuer ? issuer : c, NID_authority_key_identifier, "keyid:always");
	if (roles & SMIME_ROLE_CA) {
		add_ext(c, issuer ? issuer : c, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(c, issuer ? issuer : c, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(c, issuer ? issuer : c, NID_basic_constraints, "CA:FALSE");
		if (roles & SMIME_ROLE_SIGN)
			strcat(ku, "digitalSignature,nonRepudiation");
		if (roles & SMIME_ROLE_ENCRYPT) {
			if (ku[0] != '\0')
				strcat(ku, ",");
			strcat(ku, EVP_PKEY_get_base_id(key) == EVP_PKEY_EC ?
			    "keyAgreement" : "keyEncipherment");
		}
		if (ku[0] != '\0') {
			char v[160];
			snprintf(v, sizeof(v), "critical,%s", ku);
			add_ext(c, issuer ? issuer : c, NID_key_usage, v);
		}
		add_ext(c, issuer ? issuer : c, NID_ext_key_usage, "emailProtection");
	}
	if (email != NULL) {
		snprintf(san, sizeof(san), "email:%s", email);
		add_ext(c, issuer ? issuer : c, NID_subject_alt_name, san);
	}
	{
		EVP_PKEY *sk = issuer_key ? issuer_key : key;
		int id = EVP_PKEY_get_base_id(sk);
		md = (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ? NULL : EVP_sha256();
		if (!X509_sign(c, sk, md)) {
			fprintf(stderr, "tu_cert: sign failed\n");
			abort();
		}
	}
	return c;
}

char *
tu_tmpdir(void)
{
	char tmpl[] = "/tmp/smime-test-XXXXXX";
	char *d = mkdtemp(tmpl);

	if (d == NULL)
		abort();
	return strdup(d);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

void
tu_rmrf(char *dir)
{
	if (dir == NULL)
		return;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

unsigned char *
tu_read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len_r = (size_t)n;
	return buf;
}

const char *
tu_shared(void)
{
	static char path[4096];
	struct stat st;
	const char *env = getenv("SMIME_SHARED");

	if (env != NULL && stat(env, &st) == 0)
		return env;
	snprintf(path, sizeof(path), "%s/../shared", SMIME_SOURCE_ROOT);
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return path;
	return NULL;
}

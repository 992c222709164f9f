/*
 * smimed: the signer, the only module that holds CA private keys (signer.h).
 *
 * The keys sit in a small fixed table guarded by a read-write lock.  A
 * thread that signs takes a reference to the key under the read lock and
 * signs without holding it: OpenSSL 3 signs safely from many threads with
 * one EVP_PKEY as long as each has its own EVP_MD_CTX, and a key replaced
 * meanwhile (signer_load) lives until its last signature is done.
 *
 * The master key is 32 octets from RAND_priv_bytes in a file of its own,
 * 0600, made once with O_EXCL and written durably (the file and its
 * folder fsync'd).  Keys leave the signer only wrapped under it:
 *
 *   "SMK1" | nonce (12) | AES-256-GCM(master, nonce, aad = key id)(PKCS#8 DER) | tag (16)
 *
 * The PKCS#8 DER in between lives in buffers that are cleansed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <smime/scep.h>

#include "keyfile.h"
#include "signer.h"

#define MASTER_KEY_LEN   KEYFILE_LEN
#define SIGNER_MAX_KEYS  256      /* keys held at once */
#define SIGNER_ID_MAX    80       /* characters of a key id: a CA id, or "scep-ra:" and one */
#define SIGNER_PATH_MAX  4096
#define RSA_MIN_BITS     2048
#define RSA_MAX_BITS     8192
#define WRAP_MAGIC       "SMK1"
#define WRAP_MAX         16384    /* a wrapped RSA-8192 key is under 5 KiB */

struct signer_key {
	char id[SIGNER_ID_MAX + 1];
	EVP_PKEY *key;                /* the private key */
	EVP_PKEY *pub;                /* its public half, the only one handed out */
};

struct signer {
	unsigned char master[MASTER_KEY_LEN];
	pthread_rwlock_t lock;
	bool lock_ok;
	struct signer_key keys[SIGNER_MAX_KEYS];
	size_t n;
};

/* The algorithms signer_generate makes, by the names ca.h also uses. */
static const struct {
	const char *name;
	const char *type;
	size_t bits;
	const char *curve;
} key_algs[] = {
	{ "ec-p256", "EC", 0, "P-256" },
	{ "ec-p384", "EC", 0, "P-384" },
	{ "ec-p521", "EC", 0, "P-521" },
	{ "rsa-2048", "RSA", 2048, NULL },
	{ "rsa-3072", "RSA", 3072, NULL },
	{ "rsa-4096", "RSA", 4096, NULL },
};

/* --- keys --- */

/*
 * The digest a key signs with, or NULL when the signer does not keep such
 * keys.  S/MIME BR 7.1.3.2.2: "If the signing key is P-256, the signature
 * SHALL use ECDSA with SHA-256 ... P-384 ... SHA-384 ... P-521 ... SHA-512";
 * RSA keys sign RSASSA-PKCS1-v1_5 with SHA-256 (7.1.3.2.1).
 */
static const EVP_MD *
key_digest(EVP_PKEY *key)
{
	char group[64];
	int bits;

	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(key);
		return bits >= RSA_MIN_BITS && bits <= RSA_MAX_BITS ? EVP_sha256() : NULL;
	case EVP_PKEY_EC:
		if (!EVP_PKEY_get_group_name(key, group, sizeof(group), NULL))
			return NULL;
		switch (OBJ_txt2nid(group)) {
		case NID_X9_62_prime256v1:
			return EVP_sha256();
		case NID_secp384r1:
			return EVP_sha384();
		case NID_secp521r1:
			return EVP_sha512();
		}
		return NULL;
	}
	return NULL;
}

static EVP_PKEY *
keygen(const char *alg)
{
	size_t i;

	for (i = 0; i < sizeof(key_algs) / sizeof(key_algs[0]); i++) {
		if (strcmp(alg, key_algs[i].name) != 0)
			continue;
		if (key_algs[i].curve != NULL)
			return EVP_PKEY_Q_keygen(NULL, NULL, "EC", key_algs[i].curve);
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", key_algs[i].bits);
	}
	return NULL;
}

static bool
alg_known(const char *alg)
{
	size_t i;

	for (i = 0; alg != NULL && i < sizeof(key_algs) / sizeof(key_algs[0]); i++)
		if (strcmp(alg, key_algs[i].name) == 0)
			return true;
	return false;
}

/* A key holding only the public half of key (through its SubjectPublicKeyInfo). */
static EVP_PKEY *
public_copy(EVP_PKEY *key)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub;
	int len;

	if ((len = i2d_PUBKEY(key, &der)) <= 0)
		return NULL;
	p = der;
	pub = d2i_PUBKEY(NULL, &p, len);
	OPENSSL_free(der);
	return pub;
}

/* Key ids: 1 to SIGNER_ID_MAX printable ASCII characters, no space. */
static int
id_check(const char *key_id, struct smime_error *err)
{
	size_t i, n;

	if (key_id == NULL || (n = strnlen(key_id, SIGNER_ID_MAX + 1)) == 0 ||
	    n > SIGNER_ID_MAX)
		return smime_error_set(err, SMIME_E_USAGE,
		    "signer: a key id has 1 to %d characters", SIGNER_ID_MAX);
	for (i = 0; i < n; i++)
		if (key_id[i] <= 0x20 || key_id[i] >= 0x7f)
			return smime_error_set(err, SMIME_E_USAGE,
			    "signer: key id with a character that is not printable ASCII");
	return 0;
}

/* The slot of key_id, or NULL; the caller holds the lock. */
static struct signer_key *
slot_find(struct signer *s, const char *key_id)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->keys[i].id, key_id) == 0)
			return &s->keys[i];
	return NULL;
}

/*
 * Keep key (taken over on success) under key_id.  replace: it takes the
 * place of a key held under that id; else such a key is SMIME_E_EXISTS, so
 * that making a CA under an id in use never swaps a live CA's key.
 */
static int
keep(struct signer *s, const char *key_id, EVP_PKEY *key, bool replace,
    struct smime_error *err)
{
	struct signer_key *k;
	EVP_PKEY *pub, *old_key = NULL, *old_pub = NULL;
	int rc = 0;

	if ((pub = public_copy(key)) == NULL)
		return smime_error_ssl(err, SMIME_E_INTERNAL, "signer: public half of key %s",
		    key_id);
	pthread_rwlock_wrlock(&s->lock);
	if ((k = slot_find(s, key_id)) != NULL) {
		if (!replace) {
			rc = smime_error_set(err, SMIME_E_EXISTS,
			    "signer: a key %s is held already", key_id);
			goto out;
		}
		old_key = k->key;
		old_pub = k->pub;
	} else if (s->n == SIGNER_MAX_KEYS) {
		rc = smime_error_set(err, SMIME_E_POLICY,
		    "signer: at most %d keys are held", SIGNER_MAX_KEYS);
		goto out;
	} else {
		k = &s->keys[s->n++];
		snprintf(k->id, sizeof(k->id), "%s", key_id);
	}
	k->key = key;
	k->pub = pub;
	pub = NULL;
out:
	pthread_rwlock_unlock(&s->lock);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(old_key);
	EVP_PKEY_free(old_pub);
	return rc;
}

/* A new reference to the private key of key_id, or NULL. */
static EVP_PKEY *
key_ref(struct signer *s, const char *key_id)
{
	struct signer_key *k;
	EVP_PKEY *key = NULL;

	pthread_rwlock_rdlock(&s->lock);
	if ((k = slot_find(s, key_id)) != NULL && EVP_PKEY_up_ref(k->key))
		key = k->key;
	pthread_rwlock_unlock(&s->lock);
	return key;
}

/* --- wrapping --- */

/* Wrap der (a PKCS#8 key) for key_id; *out_r: caller frees with free(). */
static int
wrap(struct signer *s, const char *key_id, const unsigned char *der, size_t len,
    unsigned char **out_r, size_t *out_len_r, struct smime_error *err)
{
	return seal_bytes(s->master, WRAP_MAGIC, key_id, der, len, WRAP_MAX - SEAL_OVERHEAD,
	    out_r, out_len_r, err);
}

/* The private key wrapped for key_id in in[len] (the header's form). */
static int
unwrap(struct signer *s, const char *key_id, const unsigned char *in, size_t len,
    EVP_PKEY **key_r, struct smime_error *err)
{
	unsigned char *der = NULL;
	size_t der_len = 0;
	EVP_PKEY *key = NULL;
	int rc;

	*key_r = NULL;
	/* The additional data is the key id: a wrapped key moved to another
	 * id does not open. */
	if ((rc = open_bytes(s->master, WRAP_MAGIC, key_id, in, len, WRAP_MAX - SEAL_OVERHEAD,
	    &der, &der_len, err)) != 0)
		return rc;
	if ((key = pkcs8_decode(der, der_len)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INPUT,
		    "wrapped key %s: not a PKCS#8 private key", key_id);
		goto out;
	}
	if (key_digest(key) == NULL) {
		rc = smime_error_set(err, SMIME_E_POLICY, "wrapped key %s: not an RSA key of "
		    "%d to %d bits or an EC key on P-256, P-384, P-521", key_id,
		    RSA_MIN_BITS, RSA_MAX_BITS);
		goto out;
	}
	*key_r = key;
	key = NULL;
out:
	OPENSSL_clear_free(der, der_len);
	EVP_PKEY_free(key);
	return rc;
}

/* key (a private key) as the store keeps it: PKCS#8 wrapped for key_id. */
static int
seal(struct signer *s, const char *key_id, EVP_PKEY *key, unsigned char **wrapped_r,
    size_t *len_r, struct smime_error *err)
{
	unsigned char *der = NULL;
	size_t der_len = 0;
	int rc;

	if ((rc = pkcs8_encode(key, &der, &der_len, err)) != 0)
		return rc;
	rc = wrap(s, key_id, der, der_len, wrapped_r, len_r, err);
	OPENSSL_clear_free(der, der_len);
	return rc;
}

/* --- other secrets under the master key --- */

#define SECRET_MAGIC "SMS1"
#define SECRET_MAX 1024

int
signer_wrap_secret(struct signer *s, const char *label, const unsigned char *in, size_t len,
    unsigned char **out_r, size_t *out_len_r, struct smime_error *err)
{
	return seal_bytes(s->master, SECRET_MAGIC, label, in, len, SECRET_MAX, out_r, out_len_r,
	    err);
}

int
signer_unwrap_secret(struct signer *s, const char *label, const unsigned char *in, size_t len,
    unsigned char **out_r, size_t *out_len_r, struct smime_error *err)
{
	return open_bytes(s->master, SECRET_MAGIC, label, in, len, SECRET_MAX, out_r, out_len_r,
	    err);
}

/* --- the master key file --- */

/* --- the interface --- */

int
signer_open(const char *master_key_path, bool create, struct signer **s_r,
    struct smime_error *err)
{
	struct signer *s = NULL;
	int rc;

	*s_r = NULL;
	if (master_key_path == NULL || master_key_path[0] == '\0' ||
	    strnlen(master_key_path, SIGNER_PATH_MAX) >= SIGNER_PATH_MAX)
		return smime_error_set(err, SMIME_E_USAGE, "signer: no master key path");
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if (pthread_rwlock_init(&s->lock, NULL) != 0) {
		free(s);
		return smime_error_set(err, SMIME_E_INTERNAL, "signer: lock");
	}
	s->lock_ok = true;
	if ((rc = keyfile_load(master_key_path, create, s->master, err)) != 0)
		goto out;
	*s_r = s;
	s = NULL;
out:
	signer_free(s);
	return rc;
}

void
signer_free(struct signer *s)
{
	size_t i;

	if (s == NULL)
		return;
	/* EVP_PKEY_free clears the private key's numbers as it frees them. */
	for (i = 0; i < s->n; i++) {
		EVP_PKEY_free(s->keys[i].key);
		EVP_PKEY_free(s->keys[i].pub);
	}
	if (s->lock_ok)
		pthread_rwlock_destroy(&s->lock);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

int
signer_generate(struct signer *s, const char *key_id, const char *alg, EVP_PKEY **pub_r,
    unsigned char **wrapped_r, size_t *wrapped_len_r, struct smime_error *err)
{
	EVP_PKEY *key = NULL, *pub = NULL;
	unsigned char *wrapped = NULL;
	size_t wrapped_len = 0;
	int rc;

	*pub_r = NULL;
	*wrapped_r = NULL;
	*wrapped_len_r = 0;
	if ((rc = id_check(key_id, err)) != 0)
		return rc;
	if (!alg_known(alg))
		return smime_error_set(err, SMIME_E_USAGE, "signer: unknown key algorithm %s "
		    "(ec-p256, ec-p384, ec-p521, rsa-2048, rsa-3072, rsa-4096)",
		    alg ? alg : "(none)");
	/* Early, before a slow RSA generation; keep() decides under the lock. */
	if (signer_has(s, key_id))
		return smime_error_set(err, SMIME_E_EXISTS, "signer: a key %s is held already",
		    key_id);
	if ((key = keygen(alg)) == NULL)
		return smime_error_ssl(err, SMIME_E_CRYPTO, "signer: making a %s key", alg);
	if ((rc = seal(s, key_id, key, &wrapped, &wrapped_len, err)) != 0)
		goto out;
	if ((pub = public_copy(key)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "signer: public half of key %s",
		    key_id);
		goto out;
	}
	if ((rc = keep(s, key_id, key, false, err)) != 0)
		goto out;
	key = NULL;
	*pub_r = pub;
	pub = NULL;
	*wrapped_r = wrapped;
	*wrapped_len_r = wrapped_len;
	wrapped = NULL;
out:
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	free(wrapped);
	return rc;
}

int
signer_adopt(struct signer *s, const char *key_id, EVP_PKEY *key,
    unsigned char **wrapped_r, size_t *wrapped_len_r, struct smime_error *err)
{
	unsigned char *der = NULL, *wrapped = NULL;
	size_t der_len = 0, wrapped_len = 0;
	EVP_PKEY *copy = NULL;
	int rc;

	*wrapped_r = NULL;
	*wrapped_len_r = 0;
	if ((rc = id_check(key_id, err)) != 0)
		return rc;
	if (key == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "signer: no key to adopt");
	if (key_digest(key) == NULL)
		return smime_error_set(err, SMIME_E_POLICY, "signer: key %s is not an RSA key "
		    "of %d to %d bits or an EC key on P-256, P-384, P-521", key_id,
		    RSA_MIN_BITS, RSA_MAX_BITS);
	/* The copy kept is the one the store will give back: through PKCS#8. */
	if ((rc = pkcs8_encode(key, &der, &der_len, err)) != 0)
		goto out;
	if ((copy = pkcs8_decode(der, der_len)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "signer: PKCS#8 of key %s", key_id);
		goto out;
	}
	if ((rc = wrap(s, key_id, der, der_len, &wrapped, &wrapped_len, err)) != 0)
		goto out;
	if ((rc = keep(s, key_id, copy, false, err)) != 0)
		goto out;
	copy = NULL;
	*wrapped_r = wrapped;
	*wrapped_len_r = wrapped_len;
	wrapped = NULL;
out:
	OPENSSL_clear_free(der, der_len);
	EVP_PKEY_free(copy);
	free(wrapped);
	return rc;
}

int
signer_load(struct signer *s, const char *key_id, const unsigned char *wrapped,
    size_t wrapped_len, struct smime_error *err)
{
	EVP_PKEY *key = NULL;
	int rc;

	if ((rc = id_check(key_id, err)) != 0)
		return rc;
	if ((rc = unwrap(s, key_id, wrapped, wrapped_len, &key, err)) != 0)
		return rc;
	if ((rc = keep(s, key_id, key, true, err)) != 0)
		EVP_PKEY_free(key);
	return rc;
}

void
signer_forget(struct signer *s, const char *key_id)
{
	struct signer_key *k, gone = { .key = NULL };

	if (s == NULL || key_id == NULL)
		return;
	pthread_rwlock_wrlock(&s->lock);
	if ((k = slot_find(s, key_id)) != NULL) {
		gone = *k;
		*k = s->keys[--s->n];
		memset(&s->keys[s->n], 0, sizeof(s->keys[s->n]));
	}
	pthread_rwlock_unlock(&s->lock);
	EVP_PKEY_free(gone.key);
	EVP_PKEY_free(gone.pub);
}

bool
signer_has(struct signer *s, const char *key_id)
{
	bool found;

	if (s == NULL || key_id == NULL)
		return false;
	pthread_rwlock_rdlock(&s->lock);
	found = slot_find(s, key_id) != NULL;
	pthread_rwlock_unlock(&s->lock);
	return found;
}

EVP_PKEY *
signer_public(struct signer *s, const char *key_id)
{
	struct signer_key *k;
	EVP_PKEY *pub = NULL;

	if (s == NULL || key_id == NULL)
		return NULL;
	pthread_rwlock_rdlock(&s->lock);
	if ((k = slot_find(s, key_id)) != NULL && EVP_PKEY_up_ref(k->pub))
		pub = k->pub;
	pthread_rwlock_unlock(&s->lock);
	return pub;
}

/*
 * A digest-signing context over key_id's key: the digest key_digest
 * names, and for RSA RSASSA-PKCS1-v1_5 (S/MIME BR 7.1.3.2.1).  *key_r is
 * a reference the caller frees, with *ctx_r.
 */
static int
sign_begin(struct signer *s, const char *key_id, EVP_MD_CTX **ctx_r, EVP_PKEY **key_r,
    struct smime_error *err)
{
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY *key;
	const EVP_MD *md;
	int rc = 0;

	*ctx_r = NULL;
	*key_r = NULL;
	if (s == NULL || key_id == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "signer: no signer or key id");
	if ((key = key_ref(s, key_id)) == NULL)
		return smime_error_set(err, SMIME_E_NOTFOUND, "signer: no key %s", key_id);
	md = key_digest(key);
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, &pctx, md, NULL, key) != 1) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "signer: key %s", key_id);
		goto out;
	}
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "signer: key %s: PKCS#1 v1.5", key_id);
		goto out;
	}
	*ctx_r = ctx;
	ctx = NULL;
	*key_r = key;
	key = NULL;
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	return rc;
}

int
signer_sign_cert(struct signer *s, const char *key_id, X509 *cert, struct smime_error *err)
{
	EVP_MD_CTX *ctx;
	EVP_PKEY *key;
	int rc;

	if (cert == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "signer: no certificate");
	if ((rc = sign_begin(s, key_id, &ctx, &key, err)) != 0)
		return rc;
	if (X509_sign_ctx(cert, ctx) <= 0)
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "signer: signing a certificate with %s",
		    key_id);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	return rc;
}

int
signer_sign_crl(struct signer *s, const char *key_id, X509_CRL *crl, struct smime_error *err)
{
	EVP_MD_CTX *ctx;
	EVP_PKEY *key;
	int rc;

	if (crl == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "signer: no CRL");
	if ((rc = sign_begin(s, key_id, &ctx, &key, err)) != 0)
		return rc;
	if (X509_CRL_sign_ctx(crl, ctx) <= 0)
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "signer: signing a CRL with %s", key_id);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	return rc;
}

int
signer_sign_ocsp(struct signer *s, const char *key_id, OCSP_BASICRESP *bs,
    X509 *signer_cert, struct smime_error *err)
{
	EVP_MD_CTX *ctx;
	EVP_PKEY *key;
	int rc;

	if (bs == NULL || signer_cert == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "signer: no response or certificate");
	if ((rc = sign_begin(s, key_id, &ctx, &key, err)) != 0)
		return rc;
	/* A response signed by a key that is not the certificate's would not verify. */
	if (X509_check_private_key(signer_cert, key) != 1) {
		rc = smime_error_ssl(err, SMIME_E_USAGE,
		    "signer: the responder certificate is not key %s's", key_id);
		goto out;
	}
	/*
	 * RFC 6960 4.2.1: ResponderID byKey, the SHA-1 hash of the responder's
	 * public key.  Certificates in the response are the caller's to add
	 * (a delegated responder's); none is added here.
	 */
	if (OCSP_basic_sign_ctx(bs, signer_cert, ctx, NULL,
	    OCSP_NOCERTS | OCSP_RESPID_KEY) != 1)
		rc = smime_error_ssl(err, SMIME_E_CRYPTO,
		    "signer: signing an OCSP response with %s", key_id);
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	return rc;
}

/* --- SCEP: the RA's (or CA's) key opens requests and signs replies --- */

int
signer_scep_open(struct signer *s, const char *key_id, X509 *cert, struct smime_scep_msg *m,
    struct smime_error *err)
{
	EVP_PKEY *key;
	int rc;

	if (s == NULL || key_id == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "signer: no signer or key id");
	if ((key = key_ref(s, key_id)) == NULL)
		return smime_error_set(err, SMIME_E_NOTFOUND, "signer: no key %s", key_id);
	rc = smime_scep_open(m, cert, key, err);
	EVP_PKEY_free(key);
	return rc;
}

int
signer_scep_write(struct signer *s, const char *key_id, const struct smime_scep_out *o,
    unsigned char **der_r, size_t *len_r, struct smime_error *err)
{
	struct smime_scep_out out;
	EVP_PKEY *key;
	int rc;

	*der_r = NULL;
	*len_r = 0;
	if (s == NULL || key_id == NULL || o == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "signer: no signer, key id or message");
	if ((key = key_ref(s, key_id)) == NULL)
		return smime_error_set(err, SMIME_E_NOTFOUND, "signer: no key %s", key_id);
	out = *o;
	out.key = key;
	rc = smime_scep_write(&out, der_r, len_r, NULL, err);
	EVP_PKEY_free(key);
	return rc;
}

/*
 * pkcs12: reading and writing PKCS#12 (RFC 7292) files.  See
 * include/smime/cert.h.
 *
 * Reading walks the authenticated safes itself (rather than PKCS12_parse)
 * so that files with several keys keep every key, each tied to its
 * certificate.  Every cryptographic step (MAC, KDF, bag decryption) is
 * OpenSSL's; the legacy provider is loaded once for RC2-40 files.
 */
#include <stdint.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include <smime/smime.h>

/* Iterations of the KDF and of the MAC when writing. */
#define P12_WRITE_ITERATIONS	10000
/*
 * The most KDF or MAC iterations a file may ask for: real producers use
 * 1 to 600000; more is a way to make the reader spin.
 */
#define P12_MAX_ITERATIONS	2000000
/* Nesting of safeContentsBag inside safeContentsBag. */
#define P12_MAX_NESTING		4
/* Safe bags of every kind in one file. */
#define P12_MAX_BAGS		(4 * SMIME_CERT_MAX_ITEMS)
/* Entries in the authenticated safe. */
#define P12_MAX_SAFES		64

static CRYPTO_ONCE p12_providers_once = CRYPTO_ONCE_STATIC_INIT;
/*
 * Held for the life of the process.  p12_legacy is read (for messages),
 * so the stores are kept and leak checkers see the providers as reachable.
 */
static OSSL_PROVIDER *p12_default, *p12_legacy;

/*
 * RC2-40 and the other PKCS#12 legacy ciphers live in OpenSSL 3's legacy
 * provider.  Loading a provider explicitly switches off the automatic
 * default provider, so default is loaded with it.  When legacy is missing
 * the RC2 bags fail later with OpenSSL's "unsupported" message.
 */
static void
p12_load_providers_once(void)
{
	p12_default = OSSL_PROVIDER_try_load(NULL, "default", 1);
	p12_legacy = OSSL_PROVIDER_try_load(NULL, "legacy", 1);
	ERR_clear_error();
}

/* A hint for messages about bags that cannot be decrypted. */
static const char *
p12_legacy_hint(void)
{
	return p12_legacy == NULL ?
	    " (OpenSSL's legacy provider, needed for RC2, is not available)" : "";
}

/* What one pass over the safes found, before it is handed to the bag. */
struct p12_found {
	STACK_OF(X509) *certs;
	EVP_PKEY *keys[SMIME_CERT_MAX_ITEMS];
	ASN1_OCTET_STRING *key_ids[SMIME_CERT_MAX_ITEMS];
	size_t n_keys;
	size_t n_bags;
};

static void
p12_found_clear(struct p12_found *f)
{
	size_t i;

	sk_X509_pop_free(f->certs, X509_free);
	f->certs = NULL;
	for (i = 0; i < f->n_keys; i++) {
		EVP_PKEY_free(f->keys[i]);
		ASN1_OCTET_STRING_free(f->key_ids[i]);
	}
	f->n_keys = 0;
	f->n_bags = 0;
}

static size_t
p12_found_items(const struct p12_found *f)
{
	return (size_t)sk_X509_num(f->certs) + f->n_keys;
}

/*
 * Refuse a password-based algorithm whose iteration count would make the
 * reader spin.  Parameters OpenSSL cannot decode are left to OpenSSL's own
 * error when it tries them.
 */
static int
p12_check_iterations(const char *what, const ASN1_INTEGER *iter_a,
    struct smime_error *err)
{
	int64_t iter;

	if (iter_a == NULL)
		return SMIME_OK;
	if (!ASN1_INTEGER_get_int64(&iter, iter_a) || iter < 1 ||
	    iter > P12_MAX_ITERATIONS) {
		ERR_clear_error();
		return smime_error_set(err, SMIME_E_INPUT,
		    "%s: iteration count is not within 1..%d", what,
		    P12_MAX_ITERATIONS);
	}
	return SMIME_OK;
}

/*
 * Internal to libsmime (bag.c uses it for encrypted PEM keys); hidden by
 * -fvisibility=hidden.  Returns an error when the password-based algorithm
 * alg asks for more iterations than P12_MAX_ITERATIONS.
 */
int pkcs12_check_pbe(const char *what, const X509_ALGOR *alg, struct smime_error *err);
/* Internal: load the default and legacy providers, once per process. */
bool pkcs12_load_providers(void);

bool
pkcs12_load_providers(void)
{
	/* Without the default provider nothing of PKCS#12 works. */
	return CRYPTO_THREAD_run_once(&p12_providers_once,
	    p12_load_providers_once) == 1 && p12_default != NULL;
}

int
pkcs12_check_pbe(const char *what, const X509_ALGOR *alg, struct smime_error *err)
{
	const ASN1_OBJECT *oid;
	const void *pval;
	int ptype, nid, rc = SMIME_OK;

	X509_ALGOR_get0(&oid, &ptype, &pval, alg);
	nid = OBJ_obj2nid(oid);
	if (ptype != V_ASN1_SEQUENCE)
		return SMIME_OK;
	if (nid == NID_pbes2) {
		/* RFC 8018 A.4: PBES2-params ::= SEQUENCE { keyDerivationFunc,
		 * encryptionScheme }; RFC 8018 A.2: PBKDF2-params. */
		PBE2PARAM *pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM),
		    alg->parameter);
		PBKDF2PARAM *kdf = NULL;

		if (pbe2 == NULL)
			goto out;
		if (OBJ_obj2nid(pbe2->keyfunc->algorithm) != NID_id_pbkdf2) {
			rc = smime_error_set(err, SMIME_E_INPUT,
			    "%s: PBES2 key derivation is not PBKDF2", what);
		} else if ((kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
		    pbe2->keyfunc->parameter)) != NULL) {
			rc = p12_check_iterations(what, kdf->iter, err);
		}
		PBKDF2PARAM_free(kdf);
		PBE2PARAM_free(pbe2);
	} else {
		/* RFC 7292 C: pkcs-12PbeParams ::= SEQUENCE { salt, iterations } */
		PBEPARAM *pbe = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM),
		    alg->parameter);

		if (pbe != NULL)
			rc = p12_check_iterations(what, pbe->iter, err);
		PBEPARAM_free(pbe);
	}
out:
	ERR_clear_error();
	return rc;
}

static int
p12_add_key(struct p12_found *f, EVP_PKEY *key, const PKCS12_SAFEBAG *bag,
    struct smime_error *err)
{
	const ASN1_TYPE *id = PKCS12_SAFEBAG_get0_attr(bag, NID_localKeyID);
	ASN1_OCTET_STRING *dup = NULL;

	if (p12_found_items(f) >= SMIME_CERT_MAX_ITEMS) {
		EVP_PKEY_free(key);
		return smime_error_set(err, SMIME_E_INPUT,
		    "PKCS#12: more than %d certificates and keys", SMIME_CERT_MAX_ITEMS);
	}
	if (id != NULL && id->type == V_ASN1_OCTET_STRING &&
	    (dup = ASN1_OCTET_STRING_dup(id->value.octet_string)) == NULL) {
		EVP_PKEY_free(key);
		return smime_error_set(err, SMIME_E_INTERNAL, "PKCS#12: out of memory");
	}
	f->keys[f->n_keys] = key;
	f->key_ids[f->n_keys] = dup;
	f->n_keys++;
	return SMIME_OK;
}

static int
p12_add_cert(struct p12_found *f, const PKCS12_SAFEBAG *bag, struct smime_error *err)
{
	const ASN1_TYPE *id;
	X509 *x = NULL;
	unsigned char *name = NULL;
	int name_len, rc;

	/* RFC 7292 4.2.3: certBag with certId x509Certificate; other
	 * certificate types (sdsiCertificate) are skipped. */
	if (PKCS12_SAFEBAG_get_bag_nid(bag) != NID_x509Certificate)
		return SMIME_OK;
	if (p12_found_items(f) >= SMIME_CERT_MAX_ITEMS)
		return smime_error_set(err, SMIME_E_INPUT,
		    "PKCS#12: more than %d certificates and keys", SMIME_CERT_MAX_ITEMS);
	if ((x = PKCS12_SAFEBAG_get1_cert(bag)) == NULL)
		return smime_error_ssl(err, SMIME_E_INPUT,
		    "PKCS#12: certificate %d is not an X.509 certificate",
		    sk_X509_num(f->certs) + 1);
	/* RFC 7292 4.2: "friendlyName ... BMPString", kept as the
	 * certificate's alias in UTF-8.  ASN1_STRING_to_UTF8 rather than
	 * PKCS12_get_friendlyname, which fails on characters above U+07FF. */
	id = PKCS12_SAFEBAG_get0_attr(bag, NID_friendlyName);
	if (id != NULL && id->type == V_ASN1_BMPSTRING &&
	    (name_len = ASN1_STRING_to_UTF8(&name, id->value.bmpstring)) > 0 &&
	    !X509_alias_set1(x, name, name_len)) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "PKCS#12: out of memory");
		goto out;
	}
	/* The localKeyId rides on the certificate until keys are tied. */
	id = PKCS12_SAFEBAG_get0_attr(bag, NID_localKeyID);
	if (id != NULL && id->type == V_ASN1_OCTET_STRING &&
	    !X509_keyid_set1(x, ASN1_STRING_get0_data(id->value.octet_string),
	    ASN1_STRING_length(id->value.octet_string))) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "PKCS#12: out of memory");
		goto out;
	}
	if (!sk_X509_push(f->certs, x)) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "PKCS#12: out of memory");
		goto out;
	}
	x = NULL;
	rc = SMIME_OK;
out:
	OPENSSL_free(name);
	X509_free(x);
	ERR_clear_error();
	return rc;
}

static int
p12_walk(struct p12_found *f, const STACK_OF(PKCS12_SAFEBAG) *bags, int depth,
    const char *pw, int pwlen, struct smime_error *err)
{
	int i, rc;

	if (depth > P12_MAX_NESTING)
		return smime_error_set(err, SMIME_E_INPUT,
		    "PKCS#12: safe contents nested deeper than %d", P12_MAX_NESTING);

	for (i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
		const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
		PKCS8_PRIV_KEY_INFO *p8 = NULL;
		const X509_ALGOR *alg;
		EVP_PKEY *key;

		if (++f->n_bags > P12_MAX_BAGS)
			return smime_error_set(err, SMIME_E_INPUT,
			    "PKCS#12: more than %d safe bags", P12_MAX_BAGS);

		switch (PKCS12_SAFEBAG_get_nid(bag)) {
		case NID_keyBag:
			/* RFC 7292 4.2.1: KeyBag ::= PrivateKeyInfo */
			key = EVP_PKCS82PKEY(PKCS12_SAFEBAG_get0_p8inf(bag));
			if (key == NULL)
				return smime_error_ssl(err, SMIME_E_INPUT,
				    "PKCS#12: key %zu is not a usable private key",
				    f->n_keys + 1);
			if ((rc = p12_add_key(f, key, bag, err)) != 0)
				return rc;
			break;
		case NID_pkcs8ShroudedKeyBag:
			/* RFC 7292 4.2.2: PKCS8ShroudedKeyBag ::=
			 * EncryptedPrivateKeyInfo */
			X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
			if ((rc = pkcs12_check_pbe("PKCS#12: shrouded key", alg, err)) != 0)
				return rc;
			p8 = PKCS12_decrypt_skey_ex(bag, pw, pwlen, NULL, NULL);
			if (p8 == NULL)
				return smime_error_ssl(err, SMIME_E_CRYPTO,
				    "PKCS#12: key %zu cannot be decrypted%s", f->n_keys + 1,
				    p12_legacy_hint());
			key = EVP_PKCS82PKEY(p8);
			PKCS8_PRIV_KEY_INFO_free(p8); /* cleanses the key bytes */
			if (key == NULL)
				return smime_error_ssl(err, SMIME_E_INPUT,
				    "PKCS#12: key %zu is not a usable private key",
				    f->n_keys + 1);
			if ((rc = p12_add_key(f, key, bag, err)) != 0)
				return rc;
			break;
		case NID_certBag:
			if ((rc = p12_add_cert(f, bag, err)) != 0)
				return rc;
			break;
		case NID_safeContentsBag:
			/* RFC 7292 4.2.6: SafeContents inside a bag */
			rc = p12_walk(f, PKCS12_SAFEBAG_get0_safes(bag), depth + 1,
			    pw, pwlen, err);
			if (rc != 0)
				return rc;
			break;
		default:
			/* crlBag, secretBag and unknown bags hold nothing here. */
			break;
		}
	}
	return SMIME_OK;
}

/* One pass over the authenticated safes with one password. */
static int
p12_unpack(PKCS12 *p12, const char *pw, struct p12_found *f, struct smime_error *err)
{
	STACK_OF(PKCS7) *safes = NULL;
	STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
	int i, pwlen = pw == NULL ? 0 : (int)strlen(pw), rc;

	if ((f->certs = sk_X509_new_null()) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "PKCS#12: out of memory");
	/* RFC 7292 4.1: AuthenticatedSafe ::= SEQUENCE OF ContentInfo */
	if ((safes = PKCS12_unpack_authsafes(p12)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INPUT,
		    "PKCS#12: the authenticated safe is not a SEQUENCE OF ContentInfo");
		goto out;
	}
	if (sk_PKCS7_num(safes) > P12_MAX_SAFES) {
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "PKCS#12: more than %d entries in the authenticated safe",
		    P12_MAX_SAFES);
		goto out;
	}
	for (i = 0; i < sk_PKCS7_num(safes); i++) {
		PKCS7 *p7 = sk_PKCS7_value(safes, i);

		switch (OBJ_obj2nid(p7->type)) {
		case NID_pkcs7_data:
			bags = PKCS12_unpack_p7data(p7);
			if (bags == NULL) {
				rc = smime_error_ssl(err, SMIME_E_INPUT,
				    "PKCS#12: safe %d is not a SafeContents", i + 1);
				goto out;
			}
			break;
		case NID_pkcs7_encrypted:
			/* RFC 7292 4.1: "encryptedData ... password privacy mode" */
			if (p7->d.encrypted == NULL || p7->d.encrypted->enc_data == NULL) {
				rc = smime_error_set(err, SMIME_E_INPUT,
				    "PKCS#12: safe %d: encryptedData has no content", i + 1);
				goto out;
			}
			rc = pkcs12_check_pbe("PKCS#12: certificate safe",
			    p7->d.encrypted->enc_data->algorithm, err);
			if (rc != 0)
				goto out;
			bags = PKCS12_unpack_p7encdata(p7, pw, pwlen);
			if (bags == NULL) {
				rc = smime_error_ssl(err, SMIME_E_CRYPTO,
				    "PKCS#12: safe %d cannot be decrypted%s", i + 1,
				    p12_legacy_hint());
				goto out;
			}
			break;
		case NID_pkcs7_enveloped:
			rc = smime_error_set(err, SMIME_E_INPUT,
			    "PKCS#12: safe %d uses public-key privacy mode, which is not "
			    "supported", i + 1);
			goto out;
		default:
			rc = smime_error_set(err, SMIME_E_INPUT,
			    "PKCS#12: safe %d has an unknown content type", i + 1);
			goto out;
		}
		rc = p12_walk(f, bags, 0, pw, pwlen, err);
		sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
		bags = NULL;
		if (rc != 0)
			goto out;
	}
	rc = SMIME_OK;
out:
	sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
	sk_PKCS7_pop_free(safes, PKCS7_free);
	if (rc != 0)
		p12_found_clear(f);
	return rc;
}

/* Index in certs of the certificate key belongs to, or -1. */
static int
p12_key_cert(STACK_OF(X509) *certs, EVP_PKEY *key, const ASN1_OCTET_STRING *id)
{
	const unsigned char *cid;
	int i, len;

	/* RFC 7292 4.2: the localKeyId ties a key bag to its certificate bag;
	 * the public key must agree, or the id is ignored. */
	if (id != NULL) {
		for (i = 0; i < sk_X509_num(certs); i++) {
			X509 *x = sk_X509_value(certs, i);

			cid = X509_keyid_get0(x, &len);
			if (cid != NULL && len == ASN1_STRING_length(id) &&
			    memcmp(cid, ASN1_STRING_get0_data(id), (size_t)len) == 0 &&
			    EVP_PKEY_eq(X509_get0_pubkey(x), key) == 1)
				return i;
		}
	}
	for (i = 0; i < sk_X509_num(certs); i++)
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(certs, i)), key) == 1)
			return i;
	ERR_clear_error();
	return -1;
}

/* Move what was found into bag; f is left empty. */
static int
p12_to_bag(struct smime_bag *bag, struct p12_found *f, struct smime_error *err)
{
	int base = sk_X509_num(bag->certs), idx[SMIME_CERT_MAX_ITEMS];
	EVP_PKEY **keys;
	int *key_cert;
	size_t i, n = bag->n_keys + f->n_keys;
	int rc;

	for (i = 0; i < f->n_keys; i++)
		idx[i] = p12_key_cert(f->certs, f->keys[i], f->key_ids[i]);

	if (n > SIZE_MAX / sizeof(*keys) || n > SIZE_MAX / sizeof(*key_cert))
		return smime_error_set(err, SMIME_E_INTERNAL, "PKCS#12: too many keys");
	if (f->n_keys > 0) {
		if ((keys = OPENSSL_realloc(bag->keys, n * sizeof(*keys))) == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL,
			    "PKCS#12: out of memory");
		bag->keys = keys;
		if ((key_cert = OPENSSL_realloc(bag->key_cert,
		    n * sizeof(*key_cert))) == NULL)
			return smime_error_set(err, SMIME_E_INTERNAL,
			    "PKCS#12: out of memory");
		bag->key_cert = key_cert;
	}
	while (sk_X509_num(f->certs) > 0) {
		X509 *x = sk_X509_shift(f->certs);

		/* The key id has done its work; it must not leak into a
		 * PKCS#12 written later from this certificate. */
		X509_keyid_set1(x, NULL, 0);
		if (!sk_X509_push(bag->certs, x)) {
			X509_free(x);
			rc = smime_error_set(err, SMIME_E_INTERNAL, "PKCS#12: out of memory");
			goto out;
		}
	}
	for (i = 0; i < f->n_keys; i++) {
		bag->keys[bag->n_keys] = f->keys[i];
		bag->key_cert[bag->n_keys] = idx[i] < 0 ? -1 : base + idx[i];
		bag->n_keys++;
		f->keys[i] = NULL;
	}
	rc = SMIME_OK;
out:
	p12_found_clear(f);
	return rc;
}

int
smime_pkcs12_read(struct smime_bag *bag, const unsigned char *data, size_t len,
    const char *password, struct smime_error *err)
{
	/* RFC 7292 B.1: an absent password and the empty BMPString (just the
	 * NUL terminator) are different; with none given, try both. */
	const char *try_pw[2] = { password, NULL };
	size_t n_try = 1, t;
	const unsigned char *p = data;
	const ASN1_INTEGER *mac_iter = NULL;
	const char *pw = NULL;
	struct p12_found *f = NULL;
	PKCS12 *p12 = NULL;
	int rc;

	if (bag == NULL || data == NULL)
		return smime_error_set(err, SMIME_E_USAGE, "PKCS#12: no bag or no data");
	if (len == 0)
		return smime_error_set(err, SMIME_E_INPUT, "PKCS#12: empty input");
	if (len > SMIME_CERT_MAX_INPUT)
		return smime_error_set(err, SMIME_E_INPUT,
		    "PKCS#12: %zu bytes exceed the limit of %u", len, SMIME_CERT_MAX_INPUT);
	if (password == NULL || password[0] == '\0') {
		try_pw[0] = "";
		n_try = 2;
	}
	if (!pkcs12_load_providers())
		return smime_error_set(err, SMIME_E_INTERNAL,
		    "PKCS#12: cannot load the OpenSSL providers");

	/* RFC 7292 4: PFX ::= SEQUENCE { version, authSafe, macData OPTIONAL } */
	if ((p12 = d2i_PKCS12(NULL, &p, (long)len)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INPUT, "PKCS#12: not a PFX structure");
		goto out;
	}
	if (p != data + len) {
		rc = smime_error_set(err, SMIME_E_INPUT,
		    "PKCS#12: %zu bytes after the PFX structure", (size_t)(data + len - p));
		goto out;
	}
	if ((f = OPENSSL_zalloc(sizeof(*f))) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "PKCS#12: out of memory");
		goto out;
	}

	if (PKCS12_mac_present(p12)) {
		/* RFC 7292 4: "macData ... the PFX is integrity-protected by
		 * a MAC"; it also tells which password is the right one. */
		PKCS12_get0_mac(NULL, NULL, NULL, &mac_iter, p12);
		if ((rc = p12_check_iterations("PKCS#12: MAC", mac_iter, err)) != 0)
			goto out;
		for (t = 0; t < n_try; t++)
			if (PKCS12_verify_mac(p12, try_pw[t],
			    try_pw[t] == NULL ? 0 : -1) == 1)
				break;
		ERR_clear_error();
		if (t == n_try) {
			rc = smime_error_set(err, SMIME_E_CRYPTO,
			    "PKCS#12: wrong password (MAC verification failed)");
			goto out;
		}
		pw = try_pw[t];
		rc = p12_unpack(p12, pw, f, err);
	} else {
		/* No MAC: the password that decrypts is the right one. */
		for (t = 0; t < n_try; t++) {
			pw = try_pw[t];
			rc = p12_unpack(p12, pw, f, err);
			if (rc != SMIME_E_CRYPTO)
				break;
		}
	}
	if (rc != 0)
		goto out;
	rc = p12_to_bag(bag, f, err);
	if (rc == 0)
		bag->format = SMIME_FORMAT_PKCS12;
out:
	if (f != NULL) {
		p12_found_clear(f);
		OPENSSL_free(f);
	}
	PKCS12_free(p12);
	return rc;
}

/* Friendly name and local key id on a bag; returns false when out of memory. */
static bool
p12_label(PKCS12_SAFEBAG *bag, const char *name, const unsigned char *id,
    unsigned int id_len)
{
	if (name != NULL && !PKCS12_add_friendlyname(bag, name, -1))
		return false;
	return PKCS12_add_localkeyid(bag, (unsigned char *)id, (int)id_len) == 1;
}

int
smime_pkcs12_write(BIO *out, EVP_PKEY **keys, X509 **key_certs, size_t n,
    STACK_OF(X509) *extra, const char *password, enum smime_p12_mode mode,
    const char *friendly_name, struct smime_error *err)
{
	STACK_OF(PKCS12_SAFEBAG) *cert_bags = NULL, *key_bags = NULL;
	STACK_OF(PKCS7) *safes = NULL;
	PKCS12_SAFEBAG *bag;
	PKCS12 *p12 = NULL;
	const EVP_MD *mac_md;
	unsigned char id[EVP_MAX_MD_SIZE];
	unsigned int id_len;
	X509 *plain = NULL;
	int nid_key, nid_cert, i, rc;
	size_t k;

	if (out == NULL || (n > 0 && (keys == NULL || key_certs == NULL)))
		return smime_error_set(err, SMIME_E_USAGE,
		    "PKCS#12: no output, or keys without certificates");
	if (n == 0 && (extra == NULL || sk_X509_num(extra) == 0))
		return smime_error_set(err, SMIME_E_USAGE,
		    "PKCS#12: nothing to write");
	if (n > SMIME_CERT_MAX_ITEMS ||
	    (extra != NULL && sk_X509_num(extra) > SMIME_CERT_MAX_ITEMS))
		return smime_error_set(err, SMIME_E_USAGE,
		    "PKCS#12: more than %d keys or certificates", SMIME_CERT_MAX_ITEMS);
	/* Private keys are never written in clear: a password is required. */
	if (password == NULL || password[0] == '\0')
		return smime_error_set(err, SMIME_E_USAGE,
		    "PKCS#12: a non-empty password is required");
	switch (mode) {
	case SMIME_P12_AES:
		/* A cipher NID makes OpenSSL use PBES2 with PBKDF2-HMAC-SHA256. */
		nid_key = nid_cert = NID_aes_256_cbc;
		mac_md = EVP_sha256();
		break;
	case SMIME_P12_LEGACY:
		nid_key = nid_cert = NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
		mac_md = EVP_sha1();
		break;
	default:
		return smime_error_set(err, SMIME_E_USAGE, "PKCS#12: unknown mode %d",
		    (int)mode);
	}
	if (!pkcs12_load_providers())
		return smime_error_set(err, SMIME_E_INTERNAL,
		    "PKCS#12: cannot load the OpenSSL providers");

	for (k = 0; k < n; k++) {
		if (keys[k] == NULL || key_certs[k] == NULL) {
			rc = smime_error_set(err, SMIME_E_USAGE,
			    "PKCS#12: key %zu or its certificate is missing", k + 1);
			goto out;
		}
		if (EVP_PKEY_eq(X509_get0_pubkey(key_certs[k]), keys[k]) != 1) {
			ERR_clear_error();
			rc = smime_error_set(err, SMIME_E_USAGE,
			    "PKCS#12: key %zu does not match its certificate", k + 1);
			goto out;
		}
		/* The local key id is the certificate's SHA-1, as OpenSSL and
		 * Windows make it. */
		if (!X509_digest(key_certs[k], EVP_sha1(), id, &id_len)) {
			rc = smime_error_ssl(err, SMIME_E_INTERNAL,
			    "PKCS#12: certificate %zu: SHA-1 failed", k + 1);
			goto out;
		}
		/* A copy without aux data, so that a name or key id carried
		 * from an earlier file does not appear twice. */
		if ((plain = X509_dup(key_certs[k])) == NULL ||
		    (bag = PKCS12_add_cert(&cert_bags, plain)) == NULL ||
		    !p12_label(bag, friendly_name, id, id_len)) {
			rc = smime_error_ssl(err, SMIME_E_INTERNAL,
			    "PKCS#12: certificate %zu cannot be added", k + 1);
			goto out;
		}
		X509_free(plain);
		plain = NULL;
		bag = PKCS12_add_key_ex(&key_bags, keys[k], 0, P12_WRITE_ITERATIONS,
		    nid_key, password, NULL, NULL);
		if (bag == NULL || !p12_label(bag, friendly_name, id, id_len)) {
			rc = smime_error_ssl(err, SMIME_E_CRYPTO,
			    "PKCS#12: key %zu cannot be encrypted", k + 1);
			goto out;
		}
	}
	for (i = 0; extra != NULL && i < sk_X509_num(extra); i++) {
		if (PKCS12_add_cert(&cert_bags, sk_X509_value(extra, i)) == NULL) {
			rc = smime_error_ssl(err, SMIME_E_INTERNAL,
			    "PKCS#12: extra certificate %d cannot be added", i + 1);
			goto out;
		}
	}

	/* As PKCS12_create_ex lays it out: an encrypted safe of certificates,
	 * then a plain safe of (already shrouded) keys. */
	if (cert_bags != NULL && !PKCS12_add_safe_ex(&safes, cert_bags, nid_cert,
	    P12_WRITE_ITERATIONS, password, NULL, NULL)) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO,
		    "PKCS#12: certificates cannot be encrypted");
		goto out;
	}
	if (key_bags != NULL && !PKCS12_add_safe_ex(&safes, key_bags, -1, 0, NULL,
	    NULL, NULL)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL,
		    "PKCS#12: keys cannot be packed");
		goto out;
	}
	if ((p12 = PKCS12_add_safes_ex(safes, 0, NULL, NULL)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "PKCS#12: cannot build the PFX");
		goto out;
	}
	if (!PKCS12_set_mac(p12, password, -1, NULL, 0, P12_WRITE_ITERATIONS, mac_md)) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "PKCS#12: cannot compute the MAC");
		goto out;
	}
	if (i2d_PKCS12_bio(out, p12) != 1) {
		rc = smime_error_ssl(err, SMIME_E_IO, "PKCS#12: write failed");
		goto out;
	}
	rc = SMIME_OK;
out:
	X509_free(plain);
	sk_PKCS12_SAFEBAG_pop_free(cert_bags, PKCS12_SAFEBAG_free);
	sk_PKCS12_SAFEBAG_pop_free(key_bags, PKCS12_SAFEBAG_free);
	sk_PKCS7_pop_free(safes, PKCS7_free);
	PKCS12_free(p12);
	OPENSSL_cleanse(id, sizeof(id));
	return rc;
}

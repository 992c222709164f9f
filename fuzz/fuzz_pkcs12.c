/*
 * libFuzzer target: smime_pkcs12_read on any bytes with no password (the
 * empty and the absent one are tried), so that seeds made with an empty
 * password or without a MAC reach the bags.
 *
 * A file mutated byte by byte almost never passes its MAC (RFC 7292 4:
 * macData), and a mutated encrypted safe or shrouded key decrypts to
 * noise, so the bags behind them were never parsed (101 edges in 150,000
 * runs).  The custom mutator below therefore mutates the decoded layers of
 * the file and seals them again, as a writer would:
 *
 *   - the whole file, byte by byte (one time in eight: the PFX, the MAC
 *     fields and anything the layers below cannot reach);
 *   - the AuthenticatedSafe (RFC 7292 4.1: SEQUENCE OF ContentInfo);
 *   - the SafeContents of one safe, decrypted first when it is an
 *     encryptedData safe and encrypted again with the same algorithm;
 *   - the PrivateKeyInfo inside one pkcs8ShroudedKeyBag, likewise;
 *   - one value inside the bags (a certificate, a friendlyName or
 *     localKeyID), so that the SafeContents stays well formed and the
 *     bags around it are read: most byte mutations of DER break it.
 *
 * A file that had a MAC gets a new one, with the password that decrypted it
 * (the empty one unless only the absent one works) and one iteration.
 * Inputs stay real PKCS#12 files: whatever the target finds reproduces with
 * `smime import` on the file itself, and the corpus is made of files that
 * other readers can open.  This was preferred to fuzzing a decoded
 * structure from which the harness would build the file, whose inputs are
 * not files anything else reads.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>

#include <smime/smime.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
    unsigned int seed);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smime_bag *bag = smime_bag_new();
	struct smime_error err;

	if (bag == NULL)
		abort();
	if (smime_pkcs12_read(bag, data, size, NULL, &err) != 0 &&
	    (sk_X509_num(bag->certs) != 0 || bag->n_keys != 0))
		abort(); /* a failed read appended something */
	smime_bag_free(bag);
	return 0;
}

/*
 * The PFX with its macData left undecoded, so that the AuthenticatedSafe's
 * octets can be replaced (OpenSSL's PKCS12 is opaque).  RFC 7292 4:
 * PFX ::= SEQUENCE { version, authSafe ContentInfo, macData OPTIONAL }.
 * The ASN.1 macros need a type name, hence the typedef.
 */
typedef struct {
	ASN1_INTEGER *version;
	PKCS7 *auth_safe;
	ASN1_TYPE *mac_data;
} FUZZ_PFX;

ASN1_SEQUENCE(FUZZ_PFX) = {
	ASN1_SIMPLE(FUZZ_PFX, version, ASN1_INTEGER),
	ASN1_SIMPLE(FUZZ_PFX, auth_safe, PKCS7),
	ASN1_OPT(FUZZ_PFX, mac_data, ASN1_ANY),
} ASN1_SEQUENCE_END(FUZZ_PFX)

DECLARE_ASN1_FUNCTIONS(FUZZ_PFX)
IMPLEMENT_ASN1_FUNCTIONS(FUZZ_PFX)

/* One mutation: where it happens, what it may use. */
struct mut {
	uint32_t rng;
	size_t max_size;
	const char *pw;		/* of the MAC and the encryption: "" or NULL */
	int pwlen;		/* -1 for "", 0 for NULL */
};

static uint32_t
mut_rand(struct mut *m)
{
	/* xorshift32: deterministic for a given seed, as libFuzzer wants */
	m->rng ^= m->rng << 13;
	m->rng ^= m->rng >> 17;
	m->rng ^= m->rng << 5;
	return m->rng;
}

/* Mutate the octets of s in place with libFuzzer's own mutations. */
static bool
mutate_octets(struct mut *m, ASN1_OCTET_STRING *s)
{
	size_t len = (size_t)ASN1_STRING_length(s), cap = m->max_size;
	unsigned char *buf;
	bool ok;

	if (len > cap || (buf = malloc(cap)) == NULL)
		return false;
	memcpy(buf, ASN1_STRING_get0_data(s), len);
	len = LLVMFuzzerMutate(buf, len, cap);
	ok = ASN1_OCTET_STRING_set(s, buf, (int)len) == 1;
	free(buf);
	return ok;
}

/*
 * Decrypt ct with alg, mutate the plaintext (or hand it to f), encrypt it
 * again with the same algorithm and parameters.  The password is the one
 * the MAC named, else whichever of the empty and the absent one decrypts;
 * it is kept for the new MAC.
 */
static bool
mutate_encrypted(struct mut *m, const X509_ALGOR *alg, ASN1_OCTET_STRING *ct,
    bool (*f)(struct mut *, ASN1_OCTET_STRING *))
{
	const char *pws[2] = { m->pw, m->pw == NULL ? "" : NULL };
	unsigned char *pt = NULL, *out = NULL;
	ASN1_OCTET_STRING *ps = NULL;
	int ptlen = 0, outlen = 0, i, pwlen = 0;
	bool ok = false;

	for (i = 0; i < 2; i++) {
		pwlen = pws[i] == NULL ? 0 : -1;
		if (PKCS12_pbe_crypt(alg, pws[i], pwlen, ASN1_STRING_get0_data(ct),
		    ASN1_STRING_length(ct), &pt, &ptlen, 0) != NULL)
			break;
	}
	if (i == 2 || (ps = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(ps, pt, ptlen) || !f(m, ps))
		goto out;
	if (PKCS12_pbe_crypt(alg, pws[i], pwlen, ASN1_STRING_get0_data(ps),
	    ASN1_STRING_length(ps), &out, &outlen, 1) == NULL)
		goto out;
	ok = ASN1_OCTET_STRING_set(ct, out, outlen) == 1;
	m->pw = pws[i];
	m->pwlen = pwlen;
out:
	if (pt != NULL)
		OPENSSL_clear_free(pt, (size_t)ptlen);
	OPENSSL_free(out);
	ASN1_OCTET_STRING_free(ps);
	ERR_clear_error();
	return ok;
}

/*
 * The password the file's MAC was made with when it is the empty or the
 * absent one, as smime_pkcs12_read tries them; the empty one otherwise.
 */
static void
mut_password(struct mut *m, const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)size);
	const ASN1_INTEGER *iter = NULL;

	m->pw = "";
	m->pwlen = -1;
	if (p12 == NULL || !PKCS12_mac_present(p12))
		goto out;
	PKCS12_get0_mac(NULL, NULL, NULL, &iter, p12);
	/* A mutated count must not make every mutation spin. */
	if (iter != NULL && ASN1_INTEGER_get(iter) > 10000)
		goto out;
	if (PKCS12_verify_mac(p12, "", -1) != 1 && PKCS12_verify_mac(p12, NULL, 0) == 1) {
		m->pw = NULL;
		m->pwlen = 0;
	}
out:
	PKCS12_free(p12);
	ERR_clear_error();
}

/* Mutate the PrivateKeyInfo of one shrouded key bag in the SafeContents s. */
static bool
mutate_key_in(struct mut *m, ASN1_OCTET_STRING *s)
{
	const unsigned char *p = ASN1_STRING_get0_data(s);
	STACK_OF(PKCS12_SAFEBAG) *bags;
	X509_ALGOR *alg;
	ASN1_OCTET_STRING *ct;
	unsigned char *der = NULL;
	int i, n = 0, pick, len;
	bool ok = false;

	bags = (STACK_OF(PKCS12_SAFEBAG) *)ASN1_item_d2i(NULL, &p,
	    ASN1_STRING_length(s), ASN1_ITEM_rptr(PKCS12_SAFEBAGS));
	if (bags == NULL)
		return false;
	for (i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++)
		n += PKCS12_SAFEBAG_get_nid(sk_PKCS12_SAFEBAG_value(bags, i)) ==
		    NID_pkcs8ShroudedKeyBag;
	if (n == 0)
		goto out;
	pick = (int)(mut_rand(m) % (uint32_t)n);
	for (i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
		const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);

		if (PKCS12_SAFEBAG_get_nid(bag) != NID_pkcs8ShroudedKeyBag ||
		    pick-- != 0)
			continue;
		/* RFC 5958 3: EncryptedPrivateKeyInfo; the bag owns it. */
		X509_SIG_getm((X509_SIG *)PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, &ct);
		if (!mutate_encrypted(m, alg, ct, mutate_octets))
			goto out;
		break;
	}
	if ((len = ASN1_item_i2d((ASN1_VALUE *)bags, &der,
	    ASN1_ITEM_rptr(PKCS12_SAFEBAGS))) <= 0)
		goto out;
	ok = ASN1_OCTET_STRING_set(s, der, len) == 1;
out:
	OPENSSL_free(der);
	sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
	return ok;
}

/*
 * Mutate one value inside the bags of the SafeContents s: a certificate
 * bag's certificate, or an attribute's string (friendlyName, localKeyID).
 * The SafeContents stays well formed, so the bags around it are read.
 */
static bool
mutate_value_in(struct mut *m, ASN1_OCTET_STRING *s)
{
	const unsigned char *p = ASN1_STRING_get0_data(s);
	STACK_OF(PKCS12_SAFEBAG) *bags;
	ASN1_STRING *pick[64];
	unsigned char *der = NULL;
	int i, j, n = 0, len;
	bool ok = false;

	bags = (STACK_OF(PKCS12_SAFEBAG) *)ASN1_item_d2i(NULL, &p,
	    ASN1_STRING_length(s), ASN1_ITEM_rptr(PKCS12_SAFEBAGS));
	if (bags == NULL)
		return false;
	for (i = 0; i < sk_PKCS12_SAFEBAG_num(bags) && n < 64; i++) {
		const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
		const STACK_OF(X509_ATTRIBUTE) *attrs = PKCS12_SAFEBAG_get0_attrs(bag);
		const ASN1_TYPE *v;

		/* RFC 7292 4.2.3: certValue [0] EXPLICIT OCTET STRING */
		if (PKCS12_SAFEBAG_get_nid(bag) == NID_certBag &&
		    (v = PKCS12_SAFEBAG_get0_bag_obj(bag)) != NULL &&
		    v->type == V_ASN1_OCTET_STRING)
			pick[n++] = v->value.octet_string;
		for (j = 0; j < sk_X509_ATTRIBUTE_num(attrs) && n < 64; j++) {
			ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(
			    sk_X509_ATTRIBUTE_value(attrs, j), 0);

			if (t != NULL && (t->type == V_ASN1_BMPSTRING ||
			    t->type == V_ASN1_OCTET_STRING))
				pick[n++] = t->value.asn1_string;
		}
	}
	if (n == 0 || !mutate_octets(m, pick[mut_rand(m) % (uint32_t)n]))
		goto out;
	if ((len = ASN1_item_i2d((ASN1_VALUE *)bags, &der,
	    ASN1_ITEM_rptr(PKCS12_SAFEBAGS))) <= 0)
		goto out;
	ok = ASN1_OCTET_STRING_set(s, der, len) == 1;
out:
	OPENSSL_free(der);
	sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
	return ok;
}

/* Mutate one safe of the AuthenticatedSafe a with f (its SafeContents). */
static bool
mutate_safe_in(struct mut *m, ASN1_OCTET_STRING *a,
    bool (*f)(struct mut *, ASN1_OCTET_STRING *))
{
	const unsigned char *p = ASN1_STRING_get0_data(a);
	STACK_OF(PKCS7) *safes;
	PKCS7 *p7;
	unsigned char *der = NULL;
	int len;
	bool ok = false;

	safes = (STACK_OF(PKCS7) *)ASN1_item_d2i(NULL, &p, ASN1_STRING_length(a),
	    ASN1_ITEM_rptr(PKCS12_AUTHSAFES));
	if (safes == NULL || sk_PKCS7_num(safes) == 0)
		goto out;
	p7 = sk_PKCS7_value(safes, (int)(mut_rand(m) % (uint32_t)sk_PKCS7_num(safes)));
	if (PKCS7_type_is_data(p7) && p7->d.data != NULL) {
		if (!f(m, p7->d.data))
			goto out;
	} else if (PKCS7_type_is_encrypted(p7) && p7->d.encrypted != NULL &&
	    p7->d.encrypted->enc_data != NULL &&
	    p7->d.encrypted->enc_data->enc_data != NULL) {
		if (!mutate_encrypted(m, p7->d.encrypted->enc_data->algorithm,
		    p7->d.encrypted->enc_data->enc_data, f))
			goto out;
	} else {
		goto out;
	}
	if ((len = ASN1_item_i2d((ASN1_VALUE *)safes, &der,
	    ASN1_ITEM_rptr(PKCS12_AUTHSAFES))) <= 0)
		goto out;
	ok = ASN1_OCTET_STRING_set(a, der, len) == 1;
out:
	OPENSSL_free(der);
	sk_PKCS7_pop_free(safes, PKCS7_free);
	return ok;
}

/* A new MAC over the PFX der, as the one it had: same digest and salt. */
static size_t
remac(struct mut *m, const unsigned char *der, int len, uint8_t *data)
{
	const unsigned char *p = der;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, len);
	const ASN1_OCTET_STRING *salt = NULL;
	const X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *oid;
	const EVP_MD *md = NULL;
	unsigned char salt_copy[64] = "fuzzsalt", *out = NULL;
	int salt_len = 8, olen;
	size_t n = 0;

	if (p12 == NULL)
		return 0;
	PKCS12_get0_mac(NULL, &alg, &salt, NULL, p12);
	if (alg != NULL) {
		X509_ALGOR_get0(&oid, NULL, NULL, alg);
		md = EVP_get_digestbynid(OBJ_obj2nid(oid));
	}
	if (md == NULL)
		md = EVP_sha256();
	/* Copied: PKCS12_set_mac frees the old MAC before it reads the salt. */
	if (salt != NULL && ASN1_STRING_length(salt) >= 1 &&
	    ASN1_STRING_length(salt) <= (int)sizeof(salt_copy)) {
		salt_len = ASN1_STRING_length(salt);
		memcpy(salt_copy, ASN1_STRING_get0_data(salt), (size_t)salt_len);
	}
	if (PKCS12_set_mac(p12, m->pw, m->pwlen, salt_copy, salt_len, 1, md) == 1 &&
	    (olen = i2d_PKCS12(p12, &out)) > 0 && (size_t)olen <= m->max_size) {
		memcpy(data, out, (size_t)olen);
		n = (size_t)olen;
	}
	OPENSSL_free(out);
	PKCS12_free(p12);
	return n;
}

size_t
LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
    unsigned int seed)
{
	struct mut m = { .rng = seed | 1, .max_size = max_size, .pw = "", .pwlen = -1 };
	const unsigned char *p = data;
	unsigned char *der = NULL;
	FUZZ_PFX *pfx = NULL;
	uint32_t layer = mut_rand(&m) % 8;
	size_t n = 0;
	int len;
	bool ok;

	if (layer == 0 || (pfx = d2i_FUZZ_PFX(NULL, &p, (long)size)) == NULL ||
	    !PKCS7_type_is_data(pfx->auth_safe) || pfx->auth_safe->d.data == NULL)
		goto raw;
	mut_password(&m, data, size);
	switch (layer) {
	case 1:
		ok = mutate_octets(&m, pfx->auth_safe->d.data);
		break;
	case 2:
	case 3:
		ok = mutate_safe_in(&m, pfx->auth_safe->d.data, mutate_octets);
		break;
	case 4:
	case 5:
		ok = mutate_safe_in(&m, pfx->auth_safe->d.data, mutate_key_in) ||
		    mutate_safe_in(&m, pfx->auth_safe->d.data, mutate_octets);
		break;
	default:
		ok = mutate_safe_in(&m, pfx->auth_safe->d.data, mutate_value_in) ||
		    mutate_safe_in(&m, pfx->auth_safe->d.data, mutate_octets);
		break;
	}
	if (!ok || (len = i2d_FUZZ_PFX(pfx, &der)) <= 0)
		goto raw;
	if (pfx->mac_data == NULL) {
		if ((size_t)len <= max_size) {
			memcpy(data, der, (size_t)len);
			n = (size_t)len;
		}
	} else {
		n = remac(&m, der, len, data);
	}
raw:
	OPENSSL_free(der);
	FUZZ_PFX_free(pfx);
	ERR_clear_error();
	if (n == 0)
		n = LLVMFuzzerMutate(data, size, max_size);
	return n;
}

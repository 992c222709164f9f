/*
 * Writing S/MIME messages: sign (RFC 8551 3.5), encrypt (3.3, RFC 5083),
 * sign then encrypt, and certs-only (3.6).  The message is parsed with
 * GMime, its MIME entity canonicalised (3.1), and every CMS step done by
 * OpenSSL.  Nothing reaches the output until the whole result is ready.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "internal.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
/* Held for the life of the process (and so never reported as leaked). */
static OSSL_PROVIDER *volatile provider_default, *volatile provider_legacy;

static void
init_once_fn(void)
{
	g_mime_init();
	OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CRYPTO_STRINGS | OPENSSL_INIT_ADD_ALL_CIPHERS |
	    OPENSSL_INIT_ADD_ALL_DIGESTS, NULL);
	/*
	 * Old mail and old PKCS#12 files use RC2 and friends, which OpenSSL 3
	 * keeps in the legacy provider.  Reading them is allowed; writing with
	 * them is refused by policy in smime_msg_encrypt.
	 */
	provider_default = OSSL_PROVIDER_try_load(NULL, "default", 1);
	provider_legacy = OSSL_PROVIDER_try_load(NULL, "legacy", 1);
}

void
smime_init(void)
{
	pthread_once(&init_once, init_once_fn);
}

/* RFC 8551 3.5.3.1: micalg names. */
static const char *
micalg_name(const EVP_MD *md)
{
	switch (EVP_MD_get_type(md)) {
	case NID_sha256: return "sha-256";
	case NID_sha384: return "sha-384";
	case NID_sha512: return "sha-512";
	case NID_sha1: return "sha-1";
	default: return "unknown";
	}
}

static const EVP_MD *
digest_by_name(const char *name)
{
	if (name == NULL || strcmp(name, "sha256") == 0 || strcmp(name, "sha-256") == 0)
		return EVP_sha256();
	if (strcmp(name, "sha384") == 0 || strcmp(name, "sha-384") == 0)
		return EVP_sha384();
	if (strcmp(name, "sha512") == 0 || strcmp(name, "sha-512") == 0)
		return EVP_sha512();
	return NULL;
}

/*
 * RFC 8551 2.5.3: SMIMEEncryptionKeyPreference ::= CHOICE {
 *   issuerAndSerialNumber [0] IssuerAndSerialNumber, ... }
 * with implicit tags, so [0] replaces the SEQUENCE tag.
 */
static int
add_encryption_key_preference(CMS_SignerInfo *si, X509 *enc, struct smime_error *err)
{
	unsigned char *name = NULL, *serial = NULL, *der = NULL;
	int nlen, slen, rc = 0;
	size_t body, hdr, i;
	ASN1_OBJECT *oid = NULL;

	nlen = i2d_X509_NAME(X509_get_issuer_name(enc), &name);
	slen = i2d_ASN1_INTEGER(X509_get_serialNumber(enc), &serial);
	if (nlen <= 0 || slen <= 0) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "SMIMEEncryptionKeyPreference");
		goto out;
	}
	body = (size_t)nlen + (size_t)slen;
	der = OPENSSL_malloc(body + 6);
	if (der == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	der[0] = 0xa0;
	if (body < 0x80) {
		der[1] = (unsigned char)body;
		hdr = 2;
	} else if (body < 0x100) {
		der[1] = 0x81;
		der[2] = (unsigned char)body;
		hdr = 3;
	} else {
		der[1] = 0x82;
		der[2] = (unsigned char)(body >> 8);
		der[3] = (unsigned char)body;
		hdr = 4;
	}
	memcpy(der + hdr, name, (size_t)nlen);
	memcpy(der + hdr + (size_t)nlen, serial, (size_t)slen);
	i = hdr + body;
	oid = OBJ_txt2obj("1.2.840.113549.1.9.16.2.11", 1);
	if (oid == NULL || !CMS_signed_add1_attr_by_OBJ(si, oid, V_ASN1_SEQUENCE, der, (int)i))
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "SMIMEEncryptionKeyPreference");
out:
	ASN1_OBJECT_free(oid);
	OPENSSL_free(name);
	OPENSSL_free(serial);
	OPENSSL_free(der);
	return rc;
}

/* The chain of cert up to (not including) a self-signed root, from the keystore. */
static STACK_OF(X509) *
signer_chain(struct smime_keystore *ks, X509 *cert)
{
	X509_STORE *store = NULL;
	STACK_OF(X509) *untrusted = NULL, *chain = NULL, *out = sk_X509_new_null();
	X509_STORE_CTX *ctx = NULL;
	struct smime_error err;

	if (out == NULL)
		return NULL;
	if (smime_keystore_trust(ks, &store, &untrusted, &err) != 0)
		return out;
	ctx = X509_STORE_CTX_new();
	if (ctx != NULL && X509_STORE_CTX_init(ctx, store, cert, untrusted)) {
		(void)X509_verify_cert(ctx);
		chain = X509_STORE_CTX_get0_chain(ctx);
		for (int i = 1; chain != NULL && i < sk_X509_num(chain); i++) {
			X509 *c = sk_X509_value(chain, i);
			if (X509_check_issued(c, c) == X509_V_OK)
				continue;
			X509_up_ref(c);
			sk_X509_push(out, c);
		}
	}
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	return out;
}

/* An own identity for role and address; returns its certificate and key. */
static int
load_identity(struct smime_keystore *ks, int role, const char *fp_wanted,
    const char *address, time_t now, X509 **cert_r, EVP_PKEY **key_r,
    struct smime_error *err)
{
	char fp[65];
	int rc;

	if (fp_wanted != NULL) {
		const struct smime_entry *e = smime_keystore_lookup(ks, fp_wanted);
		if (e == NULL || !e->has_key)
			return smime_error_set(err, SMIME_E_NOTFOUND,
			    "no identity with fingerprint %s in the keystore", fp_wanted);
		memcpy(fp, e->fingerprint, sizeof(fp));
	} else if ((rc = smime_keystore_identity(ks, role, address, now, fp, err)) != 0) {
		return rc;
	}
	if ((rc = smime_keystore_cert(ks, fp, cert_r, err)) != 0)
		return rc;
	if (key_r != NULL && (rc = smime_keystore_key(ks, fp, key_r, err)) != 0) {
		X509_free(*cert_r);
		*cert_r = NULL;
		return rc;
	}
	return 0;
}

/*
 * Sign the canonical entity (a seekable BIO) and write prefix, then the
 * signed MIME entity (multipart/signed, or application/pkcs7-mime
 * signed-data, with its Content-Type header) to out.  Everything that can
 * fail for a reason other than I/O is checked before the first byte is
 * written.  The entity is read as a stream: memory does not grow with it.
 */
/* The signer of a message: loaded once, whatever path its entity takes. */
struct signer {
	X509 *cert, *enc;          /* enc: a separate encryption certificate, or NULL */
	EVP_PKEY *key;
	STACK_OF(X509) *chain;
	const EVP_MD *md;
	bool eddsa;
};

static void
signer_free(struct signer *s)
{
	sk_X509_pop_free(s->chain, X509_free);
	X509_free(s->cert);
	X509_free(s->enc);
	EVP_PKEY_free(s->key);
	memset(s, 0, sizeof(*s));
}

/* The signing identity for from (or o->signer), its digest and its chain. */
static int
signer_load(struct smime_keystore *ks, const struct smime_sign_opts *o, const char *from,
    struct signer *s, struct smime_error *err)
{
	time_t now = o->now ? o->now : time(NULL);
	int rc, keytype;

	memset(s, 0, sizeof(*s));
	if ((s->md = digest_by_name(o->digest)) == NULL)
		return smime_error_set(err, SMIME_E_USAGE,
		    "unknown digest '%s': use sha256, sha384 or sha512", o->digest);
	if ((rc = load_identity(ks, SMIME_ROLE_SIGN, o->signer, from, now, &s->cert, &s->key,
	    err)) != 0) {
		if (rc == SMIME_E_NOTFOUND && o->signer == NULL)
			smime_error_set(err, SMIME_E_NOTFOUND,
			    "no valid signing certificate with its key for %s in the keystore",
			    from ? from : "any address");
		goto out;
	}
	if (!smime_cert_email_protection(s->cert)) {
		rc = smime_error_set(err, SMIME_E_POLICY,
		    "the signing certificate does not allow email protection (extended key usage)");
		goto out;
	}
	keytype = EVP_PKEY_get_base_id(s->key);
	s->eddsa = keytype == EVP_PKEY_ED25519;
	if (s->eddsa)
		s->md = EVP_sha512(); /* RFC 8419 3.1: Ed25519 with SHA-512 */
	else if (o->digest == NULL && keytype == EVP_PKEY_EC) {
		/*
		 * RFC 5753 7.2 / RFC 5480 4: a digest as strong as the curve (peers
		 * such as gpgsm refuse SHA-256 with a P-384 key).
		 */
		int bits = EVP_PKEY_get_bits(s->key);
		s->md = bits > 384 ? EVP_sha512() : bits > 256 ? EVP_sha384() : EVP_sha256();
	}
	if (o->pss && keytype != EVP_PKEY_RSA) {
		rc = smime_error_set(err, SMIME_E_USAGE, "RSASSA-PSS needs an RSA signing key");
		goto out;
	}

	/* RFC 8551 2.5.3: name the encryption certificate when it is another one. */
	{
		char efp[65], sfp[65];
		struct smime_error e2;
		if (smime_keystore_identity(ks, SMIME_ROLE_ENCRYPT, from, now, efp, &e2) == 0) {
			smime_cert_fingerprint(s->cert, sfp);
			if (strcmp(efp, sfp) != 0 && smime_keystore_cert(ks, efp, &s->enc, &e2) != 0)
				s->enc = NULL;
		}
	}
	s->chain = signer_chain(ks, s->cert);
out:
	if (rc != 0)
		signer_free(s);
	return rc;
}

/*
 * Sign the canonical entity (a seekable BIO) and write prefix, then the
 * signed MIME entity (multipart/signed, or application/pkcs7-mime
 * signed-data, with its Content-Type header) to out.  Everything that can
 * fail for a reason other than I/O is checked before the first byte is
 * written.  The entity is read as a stream: memory does not grow with it.
 */
static int
sign_entity(const struct signer *s, const struct smime_sign_opts *o, BIO *entity,
    const struct buf *prefix, BIO *out, struct smime_error *err)
{
	STACK_OF(X509_ALGOR) *caps = NULL;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	BIO *b64 = NULL;
	unsigned char *der = NULL;
	int derlen, rc = 0;
	unsigned flags;
	char boundary[40], hdr[512];

	/*
	 * Always signed detached, the digest streaming over the entity; an
	 * opaque message is then written around the same SignedData with the
	 * entity as its eContent (cms_write_attached).
	 */
	flags = CMS_PARTIAL | CMS_BINARY | CMS_NOSMIMECAP | CMS_DETACHED;
	cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
	if (cms == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "CMS_sign");
		goto out;
	}
	si = CMS_add1_signer(cms, s->cert, s->key, s->md, flags | (o->pss ? CMS_KEY_PARAM : 0));
	if (si == NULL) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "cannot add the signer");
		goto out;
	}
	if (o->pss) {
		EVP_PKEY_CTX *pctx = CMS_SignerInfo_get0_pkey_ctx(si);
		if (pctx == NULL || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0) {
			rc = smime_error_ssl(err, SMIME_E_CRYPTO, "RSASSA-PSS");
			goto out;
		}
	}
	caps = cms_our_capabilities();
	if (caps == NULL || !CMS_add_smimecap(si, caps)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "SMIMECapabilities");
		goto out;
	}
	if (s->enc != NULL && (rc = add_encryption_key_preference(si, s->enc, err)) != 0)
		goto out;
	for (int i = 0; s->chain != NULL && i < sk_X509_num(s->chain); i++)
		if (!CMS_add1_cert(cms, sk_X509_value(s->chain, i))) {
			rc = smime_error_ssl(err, SMIME_E_INTERNAL, "CMS_add1_cert");
			goto out;
		}

	if (o->pss) {
		/*
		 * OpenSSL 3.0 writes the RSASSA-PSS parameters only on its own
		 * signing path (CMS_final), not in CMS_SignerInfo_sign.
		 */
		if (!CMS_final(cms, entity, NULL, flags & ~CMS_PARTIAL)) {
			rc = smime_error_ssl(err, SMIME_E_CRYPTO, "signing failed");
			goto out;
		}
		if (entity_read_failed(entity)) {
			rc = smime_error_set(err, SMIME_E_IO, "reading the message failed");
			goto out;
		}
	} else {
		unsigned char digest[EVP_MAX_MD_SIZE];
		unsigned int dlen = 0;
		if ((rc = cms_digest_bio(entity, s->md, digest, &dlen, err)) != 0 ||
		    (rc = cms_sign_digest(cms, si, s->key, s->eddsa, digest, dlen, err)) != 0)
			goto out;
	}
	if (BIO_seek(entity, 0) != 0) {
		rc = smime_error_set(err, SMIME_E_IO, "cannot rewind the entity");
		goto out;
	}
	derlen = i2d_CMS_ContentInfo(cms, &der);
	if (derlen <= 0) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "cannot encode the signature");
		goto out;
	}

	if (prefix != NULL && (rc = write_all(out, prefix->data, prefix->len, err)) != 0)
		goto out;
	if (o->opaque) {
		static const char opaque_hdr[] =
		    "Content-Type: application/pkcs7-mime; smime-type=signed-data;\r\n"
		    "\tname=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\n"
		    "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n";
		if ((rc = write_all(out, opaque_hdr, sizeof(opaque_hdr) - 1, err)) != 0)
			goto out;
		if ((b64 = bio_base64_crlf()) == NULL) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
		BIO_push(b64, out);
		if ((rc = cms_write_attached(b64, der, (size_t)derlen, entity, err)) != 0)
			goto out;
		if (BIO_flush(b64) <= 0) {
			rc = smime_error_set(err, SMIME_E_IO, "cannot write the output");
			goto out;
		}
	} else {
		mime_boundary(boundary);
		snprintf(hdr, sizeof(hdr), "Content-Type: multipart/signed;\r\n"
		    "\tprotocol=\"application/pkcs7-signature\"; micalg=%s;\r\n"
		    "\tboundary=\"%s\"\r\n\r\n"
		    "This is a cryptographically signed message in MIME format.\r\n\r\n"
		    "--%s\r\n", micalg_name(s->md), boundary, boundary);
		if ((rc = write_all(out, hdr, strlen(hdr), err)) != 0 ||
		    (rc = copy_bio(entity, out, err)) != 0)
			goto out;
		snprintf(hdr, sizeof(hdr), "\r\n--%s\r\n"
		    "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
		    "Content-Transfer-Encoding: base64\r\n"
		    "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n"
		    "Content-Description: S/MIME Cryptographic Signature\r\n\r\n", boundary);
		if ((rc = write_all(out, hdr, strlen(hdr), err)) != 0) 
			goto out;
		if ((b64 = bio_base64_crlf()) == NULL) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
		BIO_push(b64, out);
		if ((rc = write_all(b64, der, (size_t)derlen, err)) != 0 || BIO_flush(b64) <= 0) {
			if (rc == 0)
				rc = smime_error_set(err, SMIME_E_IO, "cannot write the output");
			goto out;
		}
		snprintf(hdr, sizeof(hdr), "\r\n--%s--\r\n", boundary);
		rc = write_all(out, hdr, strlen(hdr), err);
	}
out:
	if (b64 != NULL) {
		BIO_pop(b64);
		BIO_free(b64);
	}
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	sk_X509_ALGOR_pop_free(caps, X509_ALGOR_free);
	return rc;
}

/* The single From address of msg, or NULL (caller frees). */
static char *
single_from(GMimeMessage *msg)
{
	size_t n;
	char **v = mime_from_addresses(msg, &n);
	char *a = NULL;

	if (n >= 1) {
		a = v[0];
		v[0] = NULL;
	}
	strv_free(v, n);
	return a;
}

/*
 * Parse in (from a seekable stream: part contents are not copied into
 * memory) and return the outer headers and the canonical entity as a
 * seekable BIO: read straight from the message when it is canonical already
 * (lib/entity.c: checked first, or, ENTITY_LAZY, while it is first read),
 * else (ENTITY_GMIME) written by GMime to an unlinked 0600 spool file.  When
 * *src_r is set already, in was opened before and is not read again.
 */
enum entity_path { ENTITY_CHECKED, ENTITY_LAZY, ENTITY_GMIME };

static int
read_message(BIO *in, enum entity_path path, GMimeStream **src_r, GMimeMessage **msg_r,
    struct buf *headers, BIO **entity_r, struct smime_error *err)
{
	int rc, fd;

	smime_init();
	if (*src_r == NULL && (rc = source_open(in, src_r, err)) != 0)
		return rc;
	/* Canonical already (the usual case): the body is neither parsed nor spooled. */
	rc = path == ENTITY_GMIME ? SMIME_E_NOTFOUND :
	    entity_fast_open(*src_r, path == ENTITY_LAZY, msg_r, entity_r, err);
	if (rc == SMIME_E_NOTFOUND) {
		if ((rc = mime_parse_stream(*src_r, msg_r, err)) != 0 ||
		    (rc = mime_entity_spool(g_mime_message_get_mime_part(*msg_r), true, &fd,
		    err)) != 0)
			return rc;
		if ((*entity_r = BIO_new_fd(fd, BIO_CLOSE)) == NULL) {
			close(fd);
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		}
	}
	if (rc != 0)
		return rc;
	if ((rc = mime_outer_headers(*msg_r, headers, err)) != 0)
		return rc;
	return buf_adds(headers, "MIME-Version: 1.0\r\n", err);
}

int
smime_msg_sign(struct smime_keystore *ks, const struct smime_sign_opts *o, BIO *in,
    BIO *out, struct smime_error *err)
{
	struct buf headers;
	GMimeStream *src = NULL;
	GMimeMessage *msg = NULL;
	BIO *entity = NULL;
	char *from = NULL;
	struct signer signer = { 0 };
	int rc;

	buf_init(&headers, SMIME_MSG_MAX_SIZE);
	/*
	 * The entity is checked while it is digested, before anything is
	 * written; not for RSASSA-PSS, whose CMS_final would take a failed read
	 * for the end of the content: checked first instead.
	 */
	if ((rc = read_message(in, o->pss ? ENTITY_CHECKED : ENTITY_LAZY, &src, &msg, &headers,
	    &entity, err)) != 0)
		goto out;
	from = single_from(msg);
	if ((rc = signer_load(ks, o, from, &signer, err)) != 0)
		goto out;
	rc = sign_entity(&signer, o, entity, &headers, out, err);
	if (rc != 0 && entity_fast_failed(entity)) {
		/* Not canonical after all: GMime re-encodes it, and signing starts over. */
		BIO_free(entity);
		g_object_unref(msg);
		entity = NULL;
		msg = NULL;
		headers.len = 0;
		if ((rc = read_message(in, ENTITY_GMIME, &src, &msg, &headers, &entity, err)) != 0)
			goto out;
		rc = sign_entity(&signer, o, entity, &headers, out, err);
	}
	if (rc == 0 && BIO_flush(out) <= 0)
		rc = smime_error_set(err, SMIME_E_IO, "cannot write the output");
out:
	signer_free(&signer);
	free(from);
	BIO_free(entity);
	if (msg != NULL)
		g_object_unref(msg);
	if (src != NULL)
		g_object_unref(src);
	buf_free(&headers);
	return rc;
}

void
smime_encrypt_result_free(struct smime_encrypt_result *r)
{
	if (r == NULL)
		return;
	strv_free(r->recipients, r->n_recipients);
	strv_free(r->dropped, r->n_dropped);
	free(r->cipher);
	free(r);
}

static int
strv_push(char ***v, size_t *n, const char *s)
{
	char **nv;

	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], s) == 0)
			return 0;
	nv = realloc(*v, (*n + 1) * sizeof(char *));
	if (nv == NULL)
		return -1;
	*v = nv;
	if (((*v)[*n] = strdup(s)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

/*
 * Choose the content cipher: the one asked for; else AES-256-CBC unless
 * every recipient announced AES-GCM (RFC 8551 2.7.1: use what every
 * recipient announced).  RFC 8551 2.7 makes AES-128-GCM a MUST for
 * receiving agents, but the clients people use do not all read
 * AuthEnvelopedData (NSS 3.87, Thunderbird on Debian 12, fails with
 * SEC_ERROR_UNRECOGNIZED_OID; Outlook was reported unable to in 2025), so
 * GCM is used only where it is known to be read, or where the organisation
 * said so (prefer_gcm).  *rule_r names the rule that decided.
 */
static int
choose_cipher(struct smime_keystore *ks, const struct smime_encrypt_opts *o,
    char *const *addrs, size_t n, const EVP_CIPHER **cipher_r, const char **rule_r,
    struct smime_error *err)
{
	bool gcm = true, aes256 = true, announced_no_gcm = false;

	if (o->cipher != NULL) {
		const EVP_CIPHER *c = cms_cipher_by_name(o->cipher);
		if (c == NULL || strcmp(o->cipher, "aes-192-cbc") == 0)
			return smime_error_set(err, SMIME_E_USAGE,
			    "unknown cipher '%s': use aes-256-gcm, aes-128-gcm, aes-256-cbc or aes-128-cbc",
			    o->cipher);
		if (EVP_CIPHER_get_nid(c) == NID_des_ede3_cbc && !o->allow_weak)
			return smime_error_set(err, SMIME_E_POLICY,
			    "des-ede3-cbc is weaker than AES-128: refused without --allow-weak");
		*cipher_r = c;
		*rule_r = "asked";
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const unsigned char *caps;
		size_t len;
		smime_keystore_caps(ks, addrs[i], &caps, &len);
		if (caps == NULL) {
			if (!o->prefer_gcm)
				gcm = false;
			continue;
		}
		if (!cms_caps_has(caps, len, NID_aes_256_gcm) &&
		    !cms_caps_has(caps, len, NID_aes_128_gcm))
			gcm = false, announced_no_gcm = true;
		if (!cms_caps_has(caps, len, NID_aes_256_gcm) &&
		    !cms_caps_has(caps, len, NID_aes_256_cbc))
			aes256 = false;
	}
	if (n == 0 && !o->prefer_gcm)
		gcm = false;
	if (gcm) {
		*cipher_r = EVP_aes_256_gcm();
		*rule_r = o->prefer_gcm ? "prefer-gcm" : "all-announced-gcm";
	} else {
		*cipher_r = aes256 ? EVP_aes_256_cbc() : EVP_aes_128_cbc();
		*rule_r = !aes256 ? "announced-no-aes-256" :
		    announced_no_gcm || !o->prefer_gcm ? "not-all-announced-gcm" : "prefer-gcm";
	}
	return 0;
}

/*
 * Encrypt the entity (a BIO read as a stream) to certs, and write prefix,
 * then the application/pkcs7-mime entity, to out: the CMS is written as
 * indefinite-length BER while the content is read (RFC 5652 6.1).
 */
static int
encrypt_entity(STACK_OF(X509) *certs, const EVP_CIPHER *cipher, bool oaep, BIO *entity,
    const struct buf *prefix, BIO *out, struct smime_error *err)
{
	CMS_ContentInfo *cms = NULL;
	BIO *b64 = NULL;
	int rc = 0;
	bool aead = EVP_CIPHER_get_mode(cipher) == EVP_CIPH_GCM_MODE;
	unsigned flags = CMS_PARTIAL | CMS_BINARY | CMS_STREAM;

	cms = CMS_encrypt(NULL, NULL, cipher, flags);
	if (cms == NULL) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "CMS_encrypt");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(certs); i++) {
		X509 *c = sk_X509_value(certs, i);
		EVP_PKEY *pk = X509_get0_pubkey(c);
		int type = pk ? EVP_PKEY_get_base_id(pk) : NID_undef;
		CMS_RecipientInfo *ri = CMS_add1_recipient_cert(cms, c, CMS_KEY_PARAM);
		EVP_PKEY_CTX *pctx = ri ? CMS_RecipientInfo_get0_pkey_ctx(ri) : NULL;

		if (ri == NULL || pctx == NULL) {
			rc = smime_error_ssl(err, SMIME_E_CRYPTO,
			    "cannot encrypt to recipient %d (unsupported key type?)", i + 1);
			goto out;
		}
		if (type == EVP_PKEY_RSA && oaep) {
			/* RFC 8551 2.3 and RFC 3560: RSAES-OAEP with SHA-256 and MGF1-SHA-256. */
			if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
			    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
			    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0) {
				rc = smime_error_ssl(err, SMIME_E_CRYPTO, "RSAES-OAEP");
				goto out;
			}
		} else if (type == EVP_PKEY_EC) {
			/*
			 * RFC 5753 / RFC 8551 2.3: dhSinglePass-stdDH-sha256kdf-scheme.
			 * Only the KDF digest is set: OpenSSL 3.0 picks the X9.63 KDF
			 * itself and fails when the type is set beforehand.
			 */
			if (EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, EVP_sha256()) <= 0) {
				rc = smime_error_ssl(err, SMIME_E_CRYPTO, "ECDH key agreement");
				goto out;
			}
		}
	}
	if ((b64 = bio_base64_crlf()) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	const char *ct = aead ?
	    "Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data;\r\n" :
	    "Content-Type: application/pkcs7-mime; smime-type=enveloped-data;\r\n";
	if ((prefix != NULL && (rc = write_all(out, prefix->data, prefix->len, err)) != 0) ||
	    (rc = write_all(out, ct, strlen(ct), err)) != 0)
		goto out;
	{
		static const char rest[] = "\tname=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\n"
		    "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n"
		    "Content-Description: S/MIME Encrypted Message\r\n\r\n";
		if ((rc = write_all(out, rest, sizeof(rest) - 1, err)) != 0)
			goto out;
	}
	BIO_push(b64, out);
	if (!i2d_CMS_bio_stream(b64, cms, entity, CMS_STREAM | CMS_BINARY)) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "encryption failed");
		goto out;
	}
	/* OpenSSL's copy takes a failed read for the end: ask the entity. */
	if (entity_read_failed(entity)) {
		rc = smime_error_set(err, SMIME_E_IO, "reading the message failed");
		goto out;
	}
	if (BIO_flush(b64) <= 0)
		rc = smime_error_set(err, SMIME_E_IO, "cannot write the output");
out:
	if (b64 != NULL) {
		BIO_pop(b64);
		BIO_free(b64);
	}
	CMS_ContentInfo_free(cms);
	return rc;
}

int
smime_msg_encrypt(struct smime_keystore *ks, const struct smime_encrypt_opts *o,
    BIO *in, BIO *out, struct smime_encrypt_result **result_r, struct smime_error *err)
{
	struct buf headers;
	GMimeStream *src = NULL;
	GMimeMessage *msg = NULL;
	BIO *entity = NULL, *signed_entity = NULL;
	int sfd = -1;
	char *from = NULL, **addrs = NULL, **missing = NULL;
	size_t n_addrs = 0, n_missing = 0;
	STACK_OF(X509) *certs = sk_X509_new_null();
	size_t n_found = 0;      /* res->recipients[0..n_found) are the recipients found */
	struct smime_encrypt_result *res = calloc(1, sizeof(*res));
	const EVP_CIPHER *cipher = NULL;
	struct signer signer = { 0 };
	time_t now = o->now ? o->now : time(NULL);
	int rc;

	if (result_r != NULL)
		*result_r = NULL;
	buf_init(&headers, SMIME_MSG_MAX_SIZE);
	if (certs == NULL || res == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = read_message(in, ENTITY_CHECKED, &src, &msg, &headers, &entity, err)) != 0)
		goto out;
	from = single_from(msg);

	/* Recipients: --to, then To and Cc, then the sender. */
	for (size_t i = 0; i < o->n_to; i++) {
		char *low = g_ascii_strdown(o->to[i], -1);
		int r = strv_push(&addrs, &n_addrs, low);
		g_free(low);
		if (r != 0) {
			rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
			goto out;
		}
	}
	{
		size_t n;
		char **v = mime_recipient_addresses(msg, &n);
		for (size_t i = 0; i < n; i++)
			if (strv_push(&addrs, &n_addrs, v[i]) != 0) {
				strv_free(v, n);
				rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
				goto out;
			}
		strv_free(v, n);
	}
	if (n_addrs > SMIME_MSG_MAX_RECIPIENTS) {
		rc = smime_error_set(err, SMIME_E_USAGE, "more than %d recipients",
		    SMIME_MSG_MAX_RECIPIENTS);
		goto out;
	}
	for (size_t i = 0; i < n_addrs; i++) {
		X509 *c;
		struct smime_error e2;
		if (smime_keystore_recipient(ks, addrs[i], now, NULL, &c, &e2) != 0) {
			if (strv_push(&missing, &n_missing, addrs[i]) != 0)
				goto oom;
			continue;
		}
		sk_X509_push(certs, c);
		if (strv_push(&res->recipients, &res->n_recipients, addrs[i]) != 0)
			goto oom;
		n_found = res->n_recipients;
	}
	if (!o->no_self) {
		char fp[65];
		struct smime_error e2;
		X509 *c;
		if (smime_keystore_identity(ks, SMIME_ROLE_ENCRYPT, from, now, fp, &e2) == 0 &&
		    smime_keystore_cert(ks, fp, &c, &e2) == 0) {
			bool dup = false;
			for (int i = 0; i < sk_X509_num(certs); i++)
				if (X509_cmp(sk_X509_value(certs, i), c) == 0)
					dup = true;
			if (dup)
				X509_free(c);
			else
				sk_X509_push(certs, c);
			if (from != NULL && strv_push(&res->recipients, &res->n_recipients, from) != 0)
				goto oom;
		} else {
			char label[300];
			snprintf(label, sizeof(label), "%s (yourself; --no-self leaves you out)",
			    from ? from : "the sender");
			if (strv_push(&missing, &n_missing, label) != 0)
				goto oom;
		}
	}
	if (n_missing > 0) {
		if (o->missing == NULL ||
		    !o->missing(o->missing_arg, (const char *const *)missing, n_missing)) {
			char list[SMIME_ERROR_MAX];
			size_t used = 0;
			list[0] = '\0';
			for (size_t i = 0; i < n_missing && used < sizeof(list) - 4; i++)
				used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
				    i ? ", " : "", missing[i]);
			rc = smime_error_set(err, SMIME_E_NOTFOUND,
			    "no usable encryption certificate for: %s", list);
			goto out;
		}
		for (size_t i = 0; i < n_missing; i++)
			if (strv_push(&res->dropped, &res->n_dropped, missing[i]) != 0)
				goto oom;
	}
	if (sk_X509_num(certs) == 0) {
		rc = smime_error_set(err, SMIME_E_NOTFOUND,
		    "no recipients: name them with --to or in the To and Cc headers");
		goto out;
	}
	if ((rc = choose_cipher(ks, o, res->recipients, n_found, &cipher, &res->cipher_rule,
	    err)) != 0)
		goto out;
	if ((res->cipher = strdup(cms_cipher_name(cipher))) == NULL)
		goto oom;

	if (o->sign) {
		/* Sign first, into a spool; then encrypt what was signed. */
		if ((rc = spool_create(&sfd, err)) != 0)
			goto out;
		if ((signed_entity = BIO_new_fd(sfd, BIO_CLOSE)) == NULL) {
			close(sfd);
			goto oom;
		}
		if ((rc = signer_load(ks, &o->sign_opts, from, &signer, err)) != 0 ||
		    (rc = sign_entity(&signer, &o->sign_opts, entity, NULL, signed_entity, err)) != 0)
			goto out;
		if (BIO_flush(signed_entity) <= 0 || BIO_seek(signed_entity, 0) != 0) {
			rc = smime_error_set(err, SMIME_E_IO, "cannot rewind the signed entity");
			goto out;
		}
	}
	if ((rc = encrypt_entity(certs, cipher, o->oaep, o->sign ? signed_entity : entity,
	    &headers, out, err)) != 0)
		goto out;
	if (BIO_flush(out) <= 0) {
		rc = smime_error_set(err, SMIME_E_IO, "cannot write the output");
		goto out;
	}
	if (result_r != NULL) {
		*result_r = res;
		res = NULL;
	}
	goto out;
oom:
	rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
out:
	signer_free(&signer);
	smime_encrypt_result_free(res);
	sk_X509_pop_free(certs, X509_free);
	strv_free(addrs, n_addrs);
	strv_free(missing, n_missing);
	free(from);
	BIO_free(entity);
	BIO_free(signed_entity);
	if (msg != NULL)
		g_object_unref(msg);
	if (src != NULL)
		g_object_unref(src);
	buf_free(&headers);
	return rc;
}

int
smime_certs_only_der(STACK_OF(X509) *certs, unsigned char **der_r, size_t *len_r,
    struct smime_error *err)
{
	PKCS7 *p7 = NULL;
	unsigned char *der = NULL;
	int derlen, rc = 0;

	smime_init();
	*der_r = NULL;
	*len_r = 0;
	/*
	 * RFC 8551 3.6: "The certs-only message is a SignedData ... with no
	 * content and no signers" (a degenerate SignedData, RFC 5652 5.2).
	 */
	if ((p7 = PKCS7_new()) == NULL || !PKCS7_set_type(p7, NID_pkcs7_signed) ||
	    !PKCS7_content_new(p7, NID_pkcs7_data)) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "cannot build a certs-only message");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(certs); i++)
		if (!PKCS7_add_certificate(p7, sk_X509_value(certs, i))) {
			rc = smime_error_ssl(err, SMIME_E_INTERNAL, "cannot build a certs-only message");
			goto out;
		}
	PKCS7_set_detached(p7, 1);
	if ((derlen = i2d_PKCS7(p7, &der)) <= 0) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "cannot encode a certs-only message");
		goto out;
	}
	*der_r = der;
	*len_r = (size_t)derlen;
out:
	PKCS7_free(p7);
	return rc;
}

int
smime_msg_certs_only(STACK_OF(X509) *certs, BIO *out, struct smime_error *err)
{
	unsigned char *der = NULL;
	size_t len = 0;
	struct buf b;
	int rc;

	buf_init(&b, SMIME_MSG_MAX_SIZE);
	if ((rc = smime_certs_only_der(certs, &der, &len, err)) == 0 &&
	    (rc = buf_adds(&b, "MIME-Version: 1.0\r\n"
	    "Content-Type: application/pkcs7-mime; smime-type=certs-only; name=\"smime.p7c\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=\"smime.p7c\"\r\n\r\n", err)) == 0 &&
	    (rc = mime_base64(der, len, &b, err)) == 0)
		rc = write_all(out, b.data, b.len, err);
	OPENSSL_free(der);
	buf_free(&b);
	return rc;
}

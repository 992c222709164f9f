/*
 * Unit tests of lib/scep.c: every message type written and read back,
 * with the keys of both sides, and the ways a pkiMessage goes wrong.
 *
 * The PKI of the run: a CA (p256) with an RSA RA it issued, a requester
 * with an RSA key and another with a P-256 key.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "testutil.h"
#include "../../lib/internal.h"

static EVP_PKEY *ca_key, *ra_key, *req_key, *ec_key, *other_key;
static X509 *ca, *ra, *other;

static int
setup(void **state)
{
	(void)state;
	ca_key = tu_key("p256");
	ra_key = tu_key("rsa2048");
	req_key = tu_key("rsa2048");
	ec_key = tu_key("p256");
	other_key = tu_key("rsa2048");
	ca = tu_cert(NULL, NULL, ca_key, "SCEP test CA", NULL, SMIME_ROLE_CA, -1, 365);
	ra = tu_cert(ca, ca_key, ra_key, "SCEP test RA", NULL, SMIME_ROLE_SIGN | SMIME_ROLE_ENCRYPT,
	    -1, 365);
	other = tu_cert(ca, ca_key, other_key, "Someone else", NULL, SMIME_ROLE_ENCRYPT, -1, 365);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	X509_free(ca);
	X509_free(ra);
	X509_free(other);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(ra_key);
	EVP_PKEY_free(req_key);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(other_key);
	return 0;
}

/* A CSR for key with an email SAN and, when not NULL, a challenge. */
static X509_REQ *
make_csr(EVP_PKEY *key, const char *cn, const char *challenge, int challenge_type)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();

	assert_non_null(req);
	assert_true(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_REQ_set_subject_name(req, name));
	assert_true(X509_REQ_set_pubkey(req, key));
	if (challenge != NULL)
		assert_true(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
		    challenge_type, (const unsigned char *)challenge, -1));
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	X509_NAME_free(name);
	return req;
}

/* A PKCSReq of csr to the RA, signed by signer with key. */
static unsigned char *
pkcsreq_of(X509_REQ *csr, X509 *signer, EVP_PKEY *key, const EVP_MD *md,
    const EVP_CIPHER *cipher, char tid[65], unsigned char nonce[SMIME_SCEP_NONCE],
    size_t *len_r)
{
	struct smime_error err;
	struct smime_scep_out o = { 0 };
	unsigned char *der;

	assert_int_equal(smime_scep_transaction_id(key, tid, &err), 0);
	o.type = SMIME_SCEP_PKCSREQ;
	o.transaction_id = tid;
	o.signer = signer;
	o.key = key;
	o.md = md;
	o.recipient = ra;
	o.cipher = cipher;
	o.csr = csr;
	assert_int_equal(smime_scep_write(&o, &der, len_r, nonce, &err), 0);
	return der;
}

/* A PKCSReq from key to the RA, with its self-signed certificate. */
static unsigned char *
pkcsreq(EVP_PKEY *key, const EVP_MD *md, const EVP_CIPHER *cipher, X509 **self_r,
    X509_REQ **csr_r, char tid[65], unsigned char nonce[SMIME_SCEP_NONCE], size_t *len_r)
{
	struct smime_error err;
	X509_REQ *csr = make_csr(key, "alice@example.test", "s3cret-Challenge", MBSTRING_ASC);
	X509 *self;
	unsigned char *der;

	assert_int_equal(smime_scep_self_signed(csr, key, &self, &err), 0);
	der = pkcsreq_of(csr, self, key, md, cipher, tid, nonce, len_r);
	*self_r = self;
	*csr_r = csr;
	return der;
}

static void
test_pkcsreq_round_trip(void **state)
{
	static const struct {
		const char *key;
		const char *md;
		const char *cipher;
		int digest_nid, cipher_nid;
	} rows[] = {
		{ "rsa", "SHA256", "AES-128-CBC", NID_sha256, NID_aes_128_cbc },
		{ "rsa", "SHA512", "AES-256-CBC", NID_sha512, NID_aes_256_cbc },
		{ "rsa", "SHA1", "DES-EDE3-CBC", NID_sha1, NID_des_ede3_cbc },
		{ "ec", "SHA256", "AES-192-CBC", NID_sha256, NID_aes_192_cbc },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smime_scep_msg m = { 0 };
		struct smime_error err;
		EVP_PKEY *key = strcmp(rows[i].key, "ec") == 0 ? ec_key : req_key;
		X509 *self;
		X509_REQ *csr;
		char tid[65], challenge[SMIME_SCEP_MAX_CHALLENGE + 1];
		unsigned char nonce[SMIME_SCEP_NONCE], *der;
		size_t len;

		der = pkcsreq(key, EVP_get_digestbyname(rows[i].md),
		    EVP_get_cipherbyname(rows[i].cipher), &self, &csr, tid, nonce, &len);
		assert_int_equal(smime_scep_read(der, len, &m, &err), 0);
		assert_int_equal(m.type, SMIME_SCEP_PKCSREQ);
		assert_string_equal(m.transaction_id, tid);
		assert_int_equal(strlen(tid), 64);
		assert_int_equal(m.sender_nonce_len, SMIME_SCEP_NONCE);
		assert_memory_equal(m.sender_nonce, nonce, SMIME_SCEP_NONCE);
		assert_int_equal(m.recipient_nonce_len, 0);
		assert_true(m.signature_ok);
		assert_true(smime_scep_can_reply(&m));
		assert_int_equal(X509_cmp(m.signer, self), 0);
		assert_int_equal(m.digest_nid, rows[i].digest_nid);
		assert_int_equal(m.cipher_nid, rows[i].cipher_nid);
		assert_true(m.has_signing_time);
		assert_true(llabs(m.signing_time - (int64_t)time(NULL)) < 60);
		assert_null(m.csr);

		assert_true(smime_scep_envelope_for(&m, ra));
		assert_false(smime_scep_envelope_for(&m, other));
		assert_false(smime_scep_envelope_for(&m, self));
		/* Not for the requester's own key, nor for another certificate. */
		assert_int_not_equal(smime_scep_open(&m, other, other_key, &err), 0);
		assert_null(m.csr);
		assert_int_equal(smime_scep_open(&m, ra, ra_key, &err), 0);
		assert_non_null(m.csr);
		assert_int_equal(X509_REQ_verify(m.csr, X509_REQ_get0_pubkey(m.csr)), 1);
		assert_true(EVP_PKEY_eq(X509_REQ_get0_pubkey(m.csr), key) == 1);
		assert_int_equal(smime_scep_challenge(m.csr, challenge, sizeof(challenge), &err), 0);
		assert_string_equal(challenge, "s3cret-Challenge");

		smime_scep_msg_clear(&m);
		assert_null(m.signer);
		assert_int_equal(m.status, -1);
		OPENSSL_free(der);
		X509_free(self);
		X509_REQ_free(csr);
	}
}

/* The fields of an assembled certificate are those of the certificate. */
static void
same_cert(X509 *assembled, X509 *cert)
{
	const STACK_OF(X509_EXTENSION) *a = X509_get0_extensions(assembled);
	const STACK_OF(X509_EXTENSION) *c = X509_get0_extensions(cert);

	assert_int_equal(X509_get_version(assembled), X509_get_version(cert));
	assert_int_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(assembled),
	    X509_get0_serialNumber(cert)), 0);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(assembled), X509_get_issuer_name(cert)),
	    0);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(assembled),
	    X509_get_subject_name(cert)), 0);
	assert_int_equal(ASN1_TIME_compare(X509_get0_notBefore(assembled),
	    X509_get0_notBefore(cert)), 0);
	assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(assembled),
	    X509_get0_notAfter(cert)), 0);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(assembled), X509_get0_pubkey(cert)), 1);
	assert_int_equal(sk_X509_EXTENSION_num(a), sk_X509_EXTENSION_num(c));
	for (int i = 0; i < sk_X509_EXTENSION_num(c); i++) {
		unsigned char *da = NULL, *dc = NULL;
		int la = i2d_X509_EXTENSION(sk_X509_EXTENSION_value(a, i), &da);
		int lc = i2d_X509_EXTENSION(sk_X509_EXTENSION_value(c, i), &dc);

		assert_true(la > 0);
		assert_int_equal(la, lc);
		assert_memory_equal(da, dc, (size_t)la);
		OPENSSL_free(da);
		OPENSSL_free(dc);
	}
}

/*
 * SMIME_SCEP_ASSEMBLE: an RSA signer and request are assembled (checked
 * here on lib/assemble.c itself) and give the fields of the full reading;
 * other keys are decoded as without the flag; the request's signature is
 * checked over the octets received.
 */
static void
test_assembled(void **state)
{
	static const struct {
		const char *signer;    /* "self": the requester's own, "issued": one of the CA's */
		const char *key;
		bool tamper_csr;
		bool assembles;
	} rows[] = {
		{ "self", "rsa", false, true },
		{ "issued", "rsa", false, true },
		{ "self", "rsa", true, true },
		{ "self", "ec", false, false },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smime_scep_msg full = { 0 }, fast = { 0 };
		struct smime_error err;
		EVP_PKEY *key = strcmp(rows[i].key, "ec") == 0 ? ec_key :
		    strcmp(rows[i].signer, "issued") == 0 ? other_key : req_key;
		X509_REQ *csr = make_csr(key, "alice@example.test", "s3cret-Challenge", MBSTRING_ASC);
		X509 *signer = NULL, *x;
		X509_REQ *r;
		unsigned char *der, *csr_der = NULL, *enc = NULL, md[32];
		const unsigned char *p;
		char tid[65];
		size_t len;
		int csr_len, enc_len;

		/* An extension request with an address, as clients send. */
		{
			STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
			X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
			    "email:alice@example.test");

			assert_non_null(san);
			assert_true(sk_X509_EXTENSION_push(exts, san));
			assert_true(X509_REQ_add_extensions(csr, exts));
			sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
			assert_true(X509_REQ_sign(csr, key, EVP_sha256()) > 0);
		}
		if (rows[i].tamper_csr) {
			X509_REQ *bad;

			assert_true((csr_len = i2d_X509_REQ(csr, &csr_der)) > 0);
			csr_der[csr_len - 1] ^= 0x01;   /* in the signature */
			p = csr_der;
			assert_non_null(bad = d2i_X509_REQ(NULL, &p, csr_len));
			X509_REQ_free(csr);
			csr = bad;
			OPENSSL_free(csr_der);
			csr_der = NULL;
		}
		if (strcmp(rows[i].signer, "issued") == 0)
			assert_true(X509_up_ref(signer = other));
		else
			assert_int_equal(smime_scep_self_signed(csr, key, &signer, &err), 0);
		der = pkcsreq_of(csr, signer, key, NULL, NULL, tid, NULL, &len);

		assert_int_equal(smime_scep_read(der, len, &full, &err), 0);
		assert_int_equal(smime_scep_read_ex(der, len, SMIME_SCEP_ASSEMBLE, &fast, &err), 0);
		assert_false(full.assembled);
		assert_true(fast.assembled);
		assert_true(fast.signature_ok);
		assert_string_equal(fast.transaction_id, full.transaction_id);
		assert_int_equal(X509_cmp(full.signer, signer), 0);
		same_cert(fast.signer, full.signer);
		assert_int_equal(sk_X509_num(fast.certs), sk_X509_num(full.certs));
		/* signer_sha256: the signer's encoding, in both readings. */
		assert_true((enc_len = i2d_X509(signer, &enc)) > 0);
		assert_true(EVP_Digest(enc, (size_t)enc_len, md, NULL, EVP_sha256(), NULL));
		assert_memory_equal(full.signer_sha256, md, sizeof(md));
		assert_memory_equal(fast.signer_sha256, md, sizeof(md));
		x = assemble_cert(enc, (size_t)enc_len);
		if (rows[i].assembles)
			assert_non_null(x);
		else
			assert_null(x);
		X509_free(x);
		OPENSSL_free(enc);
		enc = NULL;
		/* From DER, the assembled signer encodes as it was received. */
		assert_int_equal(X509_cmp(fast.signer, signer), 0);
		assert_true((enc_len = i2d_X509(fast.signer, &enc)) > 0);
		assert_true(EVP_Digest(enc, (size_t)enc_len, md, NULL, EVP_sha256(), NULL));
		assert_memory_equal(fast.signer_sha256, md, sizeof(md));
		OPENSSL_free(enc);
		enc = NULL;

		assert_int_equal(smime_scep_open(&full, ra, ra_key, &err), 0);
		assert_int_equal(smime_scep_open(&fast, ra, ra_key, &err), 0);
		assert_true((csr_len = i2d_X509_REQ(csr, &csr_der)) > 0);
		assert_int_equal(full.csr_len, (size_t)csr_len);
		assert_int_equal(fast.csr_len, (size_t)csr_len);
		assert_memory_equal(full.csr_der, csr_der, (size_t)csr_len);
		assert_memory_equal(fast.csr_der, csr_der, (size_t)csr_len);
		assert_int_equal(smime_scep_csr_verify(&full, &err),
		    rows[i].tamper_csr ? SMIME_E_BADSIG : 0);
		assert_int_equal(smime_scep_csr_verify(&fast, &err),
		    rows[i].tamper_csr ? SMIME_E_BADSIG : 0);
		assert_int_equal(X509_NAME_cmp(X509_REQ_get_subject_name(fast.csr),
		    X509_REQ_get_subject_name(full.csr)), 0);
		assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(fast.csr), key), 1);
		assert_int_equal(X509_REQ_get_attr_count(fast.csr), X509_REQ_get_attr_count(full.csr));
		{
			char a[SMIME_SCEP_MAX_CHALLENGE + 1], b[SMIME_SCEP_MAX_CHALLENGE + 1];
			STACK_OF(X509_EXTENSION) *ea = X509_REQ_get_extensions(fast.csr);
			STACK_OF(X509_EXTENSION) *eb = X509_REQ_get_extensions(full.csr);

			assert_int_equal(smime_scep_challenge(fast.csr, a, sizeof(a), &err), 0);
			assert_int_equal(smime_scep_challenge(full.csr, b, sizeof(b), &err), 0);
			assert_string_equal(a, "s3cret-Challenge");
			assert_string_equal(a, b);
			assert_int_equal(sk_X509_EXTENSION_num(ea), 1);
			assert_int_equal(sk_X509_EXTENSION_num(eb), 1);
			sk_X509_EXTENSION_pop_free(ea, X509_EXTENSION_free);
			sk_X509_EXTENSION_pop_free(eb, X509_EXTENSION_free);
		}
		/* From DER, the assembled request encodes as it was received. */
		assert_true((enc_len = i2d_X509_REQ(fast.csr, &enc)) > 0);
		assert_int_equal(enc_len, csr_len);
		assert_memory_equal(enc, csr_der, (size_t)csr_len);
		r = assemble_req(csr_der, (size_t)csr_len);
		if (rows[i].assembles)
			assert_non_null(r);
		else
			assert_null(r);
		X509_REQ_free(r);

		OPENSSL_free(enc);
		OPENSSL_free(csr_der);
		OPENSSL_free(der);
		smime_scep_msg_clear(&full);
		smime_scep_msg_clear(&fast);
		X509_free(signer);
		X509_REQ_free(csr);
	}
}

/* A ContentInfo of a SignedData whose certificates field holds certs (DER,
 * short lengths), otherwise empty: for signed_split. */
static size_t
signed_with_certs(const unsigned char *certs, size_t n, unsigned char *out)
{
	static const unsigned char signed_oid[] = { 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
	    0x0d, 0x01, 0x07, 0x02 };
	static const unsigned char head[] = { 0x02, 0x01, 0x01, 0x31, 0x00, 0x30, 0x0b, 0x06,
	    0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01 };
	unsigned char body[128], sd[128];
	size_t b = 0, d = 0, o = 0;

	assert_true(n + sizeof(head) + 4 < 100);
	memcpy(body, head, sizeof(head));
	b = sizeof(head);
	body[b++] = 0xa0;
	body[b++] = (unsigned char)n;
	memcpy(body + b, certs, n);
	b += n;
	body[b++] = 0x31;
	body[b++] = 0x00;
	sd[d++] = 0x30;
	sd[d++] = (unsigned char)b;
	memcpy(sd + d, body, b);
	d += b;
	out[o++] = 0x30;
	out[o++] = (unsigned char)(sizeof(signed_oid) + 2 + d);
	memcpy(out + o, signed_oid, sizeof(signed_oid));
	o += sizeof(signed_oid);
	out[o++] = 0xa0;
	out[o++] = (unsigned char)d;
	memcpy(out + o, sd, d);
	return o + d;
}

/* Bytes that are no certificate or request: nothing assembled, no crash;
 * a SignedData is split only when each certificate is a Certificate. */
static void
test_assemble_garbage(void **state)
{
	static const struct {
		const char *what;
		const char *certs;
		size_t len;
		int rc, n;
	} splits[] = {
		{ "one SEQUENCE", "\x30\x00", 2, 0, 1 },
		{ "two", "\x30\x00\x30\x01\x05", 5, 0, 2 },
		{ "an INTEGER", "\x30\x00\x02\x01\x00", 5, -1, 0 },
		{ "an attribute certificate [1]", "\xa1\x00", 2, -1, 0 },
		{ "none", "", 0, 0, 0 },
	};
	struct signed_split split;
	X509_REQ *req = NULL;
	X509 *x = NULL;
	unsigned char *der = NULL, msg[160];
	size_t n;
	int len;

	(void)state;
	assert_null(assemble_cert((const unsigned char *)"\x30\x03\x02\x01\x00", 5));
	assert_null(assemble_req((const unsigned char *)"\x30\x00", 2));
	assert_false(req_verify((const unsigned char *)"\x30\x00", 2, req_key));
	assert_int_equal(signed_split((const unsigned char *)"\x30\x00", 2, &split), -1);
	signed_split_free(&split);
	for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
		n = signed_with_certs((const unsigned char *)splits[i].certs, splits[i].len, msg);
		if (signed_split(msg, n, &split) != splits[i].rc || split.n_certs != splits[i].n)
			fail_msg("signed_split of %s", splits[i].what);
		signed_split_free(&split);
	}
	/* Truncated at every length. */
	assert_true((len = i2d_X509(other, &der)) > 0);
	for (int cut = 0; cut < len; cut++)
		assert_null(x = assemble_cert(der, (size_t)cut));
	assert_non_null(x = assemble_cert(der, (size_t)len));
	same_cert(x, other);
	assert_int_equal(X509_cmp(x, other), 0);
	X509_free(x);
	/* A certificate is not a request. */
	assert_null(req = assemble_req(der, (size_t)len));
	OPENSSL_free(der);
}

/* A signer named by its subjectKeyIdentifier (RFC 5652 5.3), and more
 * certificates than a server reads. */
static void
test_assembled_signers(void **state)
{
	struct smime_scep_msg full = { 0 }, fast = { 0 };
	struct smime_scep_out o = { 0 };
	struct smime_error err;
	STACK_OF(X509) *many = sk_X509_new_null();
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	BIO *in = BIO_new_mem_buf("x", 1);
	ASN1_OBJECT *oid;
	unsigned char *der = NULL, nonce[SMIME_SCEP_NONCE] = { 1, 2, 3 };
	char tid[65];
	size_t len;
	int n;

	(void)state;
	assert_int_equal(smime_scep_transaction_id(other_key, tid, &err), 0);
	assert_non_null(cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY));
	assert_non_null(si = CMS_add1_signer(cms, other, other_key, EVP_sha256(),
	    CMS_USE_KEYID | CMS_PARTIAL));
	assert_non_null(oid = OBJ_txt2obj("2.16.840.1.113733.1.9.2", 1));
	assert_true(CMS_signed_add1_attr_by_OBJ(si, oid, V_ASN1_PRINTABLESTRING, "19", 2));
	ASN1_OBJECT_free(oid);
	assert_non_null(oid = OBJ_txt2obj("2.16.840.1.113733.1.9.7", 1));
	assert_true(CMS_signed_add1_attr_by_OBJ(si, oid, V_ASN1_PRINTABLESTRING, tid, 64));
	ASN1_OBJECT_free(oid);
	assert_non_null(oid = OBJ_txt2obj("2.16.840.1.113733.1.9.5", 1));
	assert_true(CMS_signed_add1_attr_by_OBJ(si, oid, V_ASN1_OCTET_STRING, nonce,
	    SMIME_SCEP_NONCE));
	ASN1_OBJECT_free(oid);
	assert_true(CMS_final(cms, in, NULL, CMS_BINARY));
	assert_true((n = i2d_CMS_ContentInfo(cms, &der)) > 0);
	assert_int_equal(smime_scep_read(der, (size_t)n, &full, &err), 0);
	assert_int_equal(smime_scep_read_ex(der, (size_t)n, SMIME_SCEP_ASSEMBLE, &fast, &err), 0);
	assert_non_null(fast.signer);
	assert_int_equal(X509_cmp(fast.signer, other), 0);
	assert_memory_equal(fast.signer_sha256, full.signer_sha256, sizeof(full.signer_sha256));
	smime_scep_msg_clear(&full);
	smime_scep_msg_clear(&fast);
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);

	/* 33 certificates: refused before any is decoded. */
	for (int i = 0; i < SIGNED_SPLIT_MAX_CERTS; i++)
		assert_true(sk_X509_push(many, tu_cert(ca, ca_key, ec_key, "One of many", NULL,
		    SMIME_ROLE_SIGN, -1, 30)));
	o.type = SMIME_SCEP_GETCERT;
	assert_int_equal(smime_scep_transaction_id(other_key, tid, &err), 0);
	o.transaction_id = tid;
	o.signer = other;
	o.key = other_key;
	o.recipient = ra;
	o.issuer = X509_get_issuer_name(other);
	o.serial = X509_get0_serialNumber(other);
	o.extra_certs = many;
	assert_int_equal(smime_scep_write(&o, &der, &len, NULL, &err), 0);
	assert_int_equal(smime_scep_read_ex(der, len, SMIME_SCEP_ASSEMBLE, &fast, &err),
	    SMIME_E_INPUT);
	assert_non_null(strstr(err.message, "more than 32 certificates"));
	smime_scep_msg_clear(&fast);
	OPENSSL_free(der);
	sk_X509_pop_free(many, X509_free);
}

/* The server's answer to a request, read by the requester. */
static void
test_certrep(void **state)
{
	static const struct {
		const char *key;
		int status;
		int fail;
		const char *text;
	} rows[] = {
		{ "rsa", SMIME_SCEP_SUCCESS, -1, NULL },
		{ "ec", SMIME_SCEP_SUCCESS, -1, NULL },
		{ "rsa", SMIME_SCEP_PENDING, -1, NULL },
		{ "rsa", SMIME_SCEP_FAILURE, SMIME_SCEP_BAD_REQUEST, "the email is not yours" },
		{ "rsa", SMIME_SCEP_FAILURE, SMIME_SCEP_BAD_TIME, NULL },
		{ "ec", SMIME_SCEP_FAILURE, SMIME_SCEP_BAD_CERT_ID, "" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smime_scep_msg req = { 0 }, rep = { 0 };
		struct smime_scep_out o = { 0 };
		struct smime_error err;
		EVP_PKEY *key = strcmp(rows[i].key, "ec") == 0 ? ec_key : req_key;
		STACK_OF(X509) *issued = sk_X509_new_null(), *extra = sk_X509_new_null();
		X509 *self, *cert;
		X509_REQ *csr;
		char tid[65];
		unsigned char nonce[SMIME_SCEP_NONCE], rnonce[SMIME_SCEP_NONCE], *der, *rder;
		size_t len, rlen;

		der = pkcsreq(key, EVP_sha256(), EVP_aes_128_cbc(), &self, &csr, tid, nonce, &len);
		assert_int_equal(smime_scep_read(der, len, &req, &err), 0);
		cert = tu_cert(ca, ca_key, key, "alice", "alice@example.test", SMIME_ROLE_SIGN, 0,
		    30);
		assert_true(sk_X509_push(issued, cert));
		assert_true(X509_up_ref(ca) && sk_X509_push(extra, ca));

		o.type = SMIME_SCEP_CERTREP;
		o.transaction_id = req.transaction_id;
		o.recipient_nonce = req.sender_nonce;
		o.recipient_nonce_len = req.sender_nonce_len;
		o.status = (enum smime_scep_status)rows[i].status;
		o.fail_info = (enum smime_scep_fail)rows[i].fail;
		o.fail_text = rows[i].text;
		o.signer = ra;
		o.key = ra_key;
		o.extra_certs = extra;
		o.recipient = req.signer;
		o.issued = issued;
		assert_int_equal(smime_scep_write(&o, &rder, &rlen, rnonce, &err), 0);

		assert_int_equal(smime_scep_read(rder, rlen, &rep, &err), 0);
		assert_int_equal(rep.type, SMIME_SCEP_CERTREP);
		assert_string_equal(rep.transaction_id, tid);
		assert_int_equal(rep.status, rows[i].status);
		assert_int_equal(rep.fail_info, rows[i].fail);
		if (rows[i].text != NULL && rows[i].text[0] != '\0')
			assert_string_equal(rep.fail_text, rows[i].text);
		else
			assert_null(rep.fail_text);
		assert_int_equal(rep.recipient_nonce_len, SMIME_SCEP_NONCE);
		assert_memory_equal(rep.recipient_nonce, nonce, SMIME_SCEP_NONCE);
		assert_memory_equal(rep.sender_nonce, rnonce, SMIME_SCEP_NONCE);
		assert_true(rep.signature_ok);
		assert_int_equal(X509_cmp(rep.signer, ra), 0);
		assert_int_equal(sk_X509_num(rep.certs), 2);
		if (rows[i].status == SMIME_SCEP_SUCCESS) {
			/* Only the requester's key opens it. */
			assert_int_equal(smime_scep_open(&rep, ra, ra_key, &err), SMIME_E_CRYPTO);
			assert_int_equal(smime_scep_open(&rep, self, key, &err), 0);
			assert_int_equal(sk_X509_num(rep.issued), 1);
			assert_int_equal(X509_cmp(sk_X509_value(rep.issued, 0), cert), 0);
			assert_null(rep.crls);
		} else {
			assert_null(rep.envelope);
			assert_int_equal(smime_scep_open(&rep, self, key, &err), SMIME_E_NOTFOUND);
		}
		smime_scep_msg_clear(&req);
		smime_scep_msg_clear(&rep);
		OPENSSL_free(der);
		OPENSSL_free(rder);
		X509_free(self);
		X509_REQ_free(csr);
		sk_X509_pop_free(issued, X509_free);
		sk_X509_pop_free(extra, X509_free);
	}
}

/* CertPoll, GetCert and GetCRL carry names and serials; GetCRL's answer a CRL. */
static void
test_poll_getcert_getcrl(void **state)
{
	static const int types[] = { SMIME_SCEP_CERTPOLL, SMIME_SCEP_GETCERT, SMIME_SCEP_GETCRL };
	(void)state;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct smime_scep_msg m = { 0 };
		struct smime_scep_out o = { 0 };
		struct smime_error err;
		X509_REQ *csr = make_csr(req_key, "bob@example.test", NULL, 0);
		X509 *self;
		unsigned char *der;
		size_t len;

		assert_int_equal(smime_scep_self_signed(csr, req_key, &self, &err), 0);
		o.type = (enum smime_scep_type)types[i];
		o.transaction_id = "poll-1";
		o.signer = self;
		o.key = req_key;
		o.recipient = ra;
		o.issuer = X509_get_subject_name(ca);
		o.subject = X509_REQ_get_subject_name(csr);
		o.serial = X509_get0_serialNumber(other);
		assert_int_equal(smime_scep_write(&o, &der, &len, NULL, &err), 0);
		assert_int_equal(smime_scep_read(der, len, &m, &err), 0);
		assert_int_equal(m.type, types[i]);
		assert_string_equal(m.transaction_id, "poll-1");
		assert_int_equal(smime_scep_open(&m, ra, ra_key, &err), 0);
		assert_int_equal(X509_NAME_cmp(m.issuer, X509_get_subject_name(ca)), 0);
		if (types[i] == SMIME_SCEP_CERTPOLL) {
			assert_int_equal(X509_NAME_cmp(m.subject, X509_REQ_get_subject_name(csr)), 0);
			assert_null(m.serial);
		} else {
			assert_null(m.subject);
			assert_int_equal(ASN1_INTEGER_cmp(m.serial, X509_get0_serialNumber(other)), 0);
		}
		smime_scep_msg_clear(&m);
		OPENSSL_free(der);
		X509_free(self);
		X509_REQ_free(csr);
	}
}

static void
test_certrep_crl(void **state)
{
	struct smime_scep_msg rep = { 0 };
	struct smime_scep_out o = { 0 };
	struct smime_error err;
	static const unsigned char nonce[16] = "0123456789abcdef";
	X509_CRL *crl = X509_CRL_new();
	X509_REQ *csr = make_csr(req_key, "bob@example.test", NULL, 0);
	X509 *self;
	unsigned char *der;
	size_t len;

	(void)state;
	assert_true(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)));
	{
		ASN1_TIME *now = X509_gmtime_adj(NULL, 0);

		assert_true(X509_CRL_set1_lastUpdate(crl, now));
		ASN1_TIME_free(now);
	}
	assert_true(X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0);
	assert_int_equal(smime_scep_self_signed(csr, req_key, &self, &err), 0);
	o.type = SMIME_SCEP_CERTREP;
	o.transaction_id = "crl-1";
	o.recipient_nonce = nonce;
	o.recipient_nonce_len = sizeof(nonce);
	o.status = SMIME_SCEP_SUCCESS;
	o.signer = ra;
	o.key = ra_key;
	o.recipient = self;
	o.crl = crl;
	assert_int_equal(smime_scep_write(&o, &der, &len, NULL, &err), 0);
	assert_int_equal(smime_scep_read(der, len, &rep, &err), 0);
	assert_int_equal(smime_scep_open(&rep, self, req_key, &err), 0);
	assert_null(rep.issued);
	assert_int_equal(sk_X509_CRL_num(rep.crls), 1);
	assert_int_equal(X509_CRL_cmp(sk_X509_CRL_value(rep.crls, 0), crl), 0);

	OPENSSL_free(der);

	/* A SUCCESS must carry something; a CertRep needs the request's nonce. */
	o.crl = NULL;
	assert_int_equal(smime_scep_write(&o, &der, &len, NULL, &err), SMIME_E_USAGE);
	o.crl = crl;
	o.recipient_nonce = NULL;
	assert_int_equal(smime_scep_write(&o, &der, &len, NULL, &err), SMIME_E_USAGE);

	assert_null(der);
	smime_scep_msg_clear(&rep);
	X509_free(self);
	X509_REQ_free(csr);
	X509_CRL_free(crl);
}

/* Bad messages: each refused with the error that maps to its failInfo. */
static void
test_bad_messages(void **state)
{
	struct smime_scep_msg m = { 0 };
	struct smime_error err;
	X509 *self;
	X509_REQ *csr;
	char tid[65];
	unsigned char nonce[SMIME_SCEP_NONCE], *der, *copy;
	size_t len, cut;

	(void)state;
	der = pkcsreq(req_key, EVP_sha256(), EVP_aes_128_cbc(), &self, &csr, tid, nonce, &len);

	/* Empty, garbage, over the limit. */
	assert_int_equal(smime_scep_read(der, 0, &m, &err), SMIME_E_INPUT);
	assert_int_equal(smime_scep_read((const unsigned char *)"hello world", 11, &m, &err),
	    SMIME_E_INPUT);
	assert_int_equal(smime_scep_read(der, SMIME_SCEP_MAX_MESSAGE + 1, &m, &err),
	    SMIME_E_INPUT);
	assert_false(smime_scep_can_reply(&m));

	/* Truncated at every length: never accepted, never a crash. */
	for (cut = 1; cut < len; cut += cut < 64 ? 1 : 97) {
		assert_int_not_equal(smime_scep_read(der, cut, &m, &err), 0);
		smime_scep_msg_clear(&m);
		assert_int_not_equal(smime_scep_read_ex(der, cut, SMIME_SCEP_ASSEMBLE, &m, &err), 0);
		smime_scep_msg_clear(&m);
	}
	/* Trailing octets. */
	copy = malloc(len + 1);
	memcpy(copy, der, len);
	copy[len] = 0;
	assert_int_equal(smime_scep_read(copy, len + 1, &m, &err), SMIME_E_INPUT);
	smime_scep_msg_clear(&m);

	/* The last octet is in the signature: BADSIG, and still answerable. */
	memcpy(copy, der, len);
	copy[len - 1] ^= 0x01;
	assert_int_equal(smime_scep_read(copy, len, &m, &err), SMIME_E_BADSIG);
	assert_false(m.signature_ok);
	assert_true(smime_scep_can_reply(&m));
	assert_string_equal(m.transaction_id, tid);
	assert_int_equal(X509_cmp(m.signer, self), 0);
	smime_scep_msg_clear(&m);
	assert_int_equal(smime_scep_read_ex(copy, len, SMIME_SCEP_ASSEMBLE, &m, &err),
	    SMIME_E_BADSIG);
	assert_false(m.signature_ok);
	assert_true(smime_scep_can_reply(&m));
	smime_scep_msg_clear(&m);

	/* A byte of the envelope changed: the content digest fails. */
	{
		struct smime_scep_msg good = { 0 };
		const unsigned char *tail;
		unsigned char *at;

		assert_int_equal(smime_scep_read(der, len, &good, &err), 0);
		if (good.envelope == NULL || good.envelope_len <= 8) {
			fail_msg("the request has no envelope");
			return;
		}
		tail = good.envelope + good.envelope_len - 8;
		at = NULL;
		for (size_t k = 0; at == NULL && k + 8 <= len; k++)
			if (memcmp(copy + k, tail, 8) == 0)
				at = copy + k;
		assert_non_null(at);
		memcpy(copy, der, len);
		at[0] ^= 0x80;
		assert_int_equal(smime_scep_read(copy, len, &m, &err), SMIME_E_BADSIG);
		smime_scep_msg_clear(&m);
		smime_scep_msg_clear(&good);
	}
	free(copy);
	OPENSSL_free(der);
	X509_free(self);
	X509_REQ_free(csr);

	/* MD5 signatures: badAlg. */
	der = pkcsreq(req_key, EVP_md5(), EVP_aes_128_cbc(), &self, &csr, tid, nonce, &len);
	assert_int_equal(smime_scep_read(der, len, &m, &err), SMIME_E_POLICY);
	assert_true(smime_scep_can_reply(&m));
	smime_scep_msg_clear(&m);
	OPENSSL_free(der);
	X509_free(self);
	X509_REQ_free(csr);

	/* A cipher outside AES-CBC and triple DES: badAlg when opened. */
	der = pkcsreq(req_key, EVP_sha256(), EVP_get_cipherbyname("CAMELLIA-128-CBC"), &self,
	    &csr, tid, nonce, &len);
	assert_int_equal(smime_scep_read(der, len, &m, &err), 0);
	assert_int_equal(m.cipher_nid, NID_camellia_128_cbc);
	assert_int_equal(smime_scep_open(&m, ra, ra_key, &err), SMIME_E_POLICY);
	assert_null(m.csr);
	smime_scep_msg_clear(&m);
	OPENSSL_free(der);
	X509_free(self);
	X509_REQ_free(csr);
}

/* A CMS SignedData that is not SCEP: no transactionID, no messageType. */
static void
test_not_scep(void **state)
{
	struct smime_scep_msg m = { 0 };
	struct smime_error err;
	BIO *in = BIO_new_mem_buf("data", 4);
	CMS_ContentInfo *cms = CMS_sign(ra, ra_key, NULL, in, CMS_BINARY);
	unsigned char *der = NULL;
	int len = i2d_CMS_ContentInfo(cms, &der);

	(void)state;
	assert_true(len > 0);
	assert_int_equal(smime_scep_read(der, (size_t)len, &m, &err), SMIME_E_INPUT);
	assert_non_null(strstr(err.message, "transactionID"));
	assert_false(smime_scep_can_reply(&m));
	smime_scep_msg_clear(&m);
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);

	/* An EnvelopedData is not a pkiMessage. */
	{
		STACK_OF(X509) *r = sk_X509_new_null();

		sk_X509_push(r, ra);
		in = BIO_new_mem_buf("data", 4);
		cms = CMS_encrypt(r, in, EVP_aes_128_cbc(), CMS_BINARY);
		der = NULL;
		len = i2d_CMS_ContentInfo(cms, &der);
		assert_int_equal(smime_scep_read(der, (size_t)len, &m, &err), SMIME_E_INPUT);
		assert_non_null(strstr(err.message, "SignedData"));
		smime_scep_msg_clear(&m);
		OPENSSL_free(der);
		CMS_ContentInfo_free(cms);
		BIO_free(in);
		sk_X509_free(r);
	}
}

static void
test_challenge(void **state)
{
	static const struct {
		const char *value;
		int type;
		int rc;
	} rows[] = {
		{ "abc-123", MBSTRING_ASC, 0 },
		{ "utf8-but-ascii", MBSTRING_UTF8, 0 },
		{ "caf\xc3\xa9", MBSTRING_UTF8, SMIME_E_INPUT },
		{ NULL, 0, SMIME_E_NOTFOUND },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smime_error err;
		char out[SMIME_SCEP_MAX_CHALLENGE + 1];
		X509_REQ *csr = make_csr(req_key, "c", rows[i].value, rows[i].type);

		assert_int_equal(smime_scep_challenge(csr, out, sizeof(out), &err), rows[i].rc);
		if (rows[i].rc == 0)
			assert_string_equal(out, rows[i].value);
		X509_REQ_free(csr);
	}
	{
		/* Longer than the limit. */
		struct smime_error err;
		char out[SMIME_SCEP_MAX_CHALLENGE + 1], big[400];
		X509_REQ *csr;

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		csr = make_csr(req_key, "c", big, MBSTRING_ASC);
		assert_int_equal(smime_scep_challenge(csr, out, sizeof(out), &err), SMIME_E_INPUT);
		X509_REQ_free(csr);
	}
}

static void
test_caps(void **state)
{
	struct smime_scep_caps c;
	static const char text[] = "POSTPKIOperation\r\nsha-256\nAES\n  Renewal  \nSHA-512\n"
	    "SomethingNew\nGetNextCACert";

	(void)state;
	smime_scep_caps_parse(text, sizeof(text) - 1, &c);
	assert_true(c.post && c.sha256 && c.aes && c.renewal && c.sha512 && c.next_ca);
	assert_false(c.sha1 || c.des3 || c.standard);
	smime_scep_caps_parse("SCEPStandard\n", 13, &c);
	assert_true(c.standard && c.aes && c.post && c.sha256);
	assert_false(c.renewal);
	smime_scep_caps_parse("AESX\nSHA-2560\n", 14, &c);
	assert_false(c.aes || c.sha256);
	smime_scep_caps_parse(NULL, 0, &c);
	assert_false(c.post);
}

static unsigned char *
certs_only(X509 **v, size_t n, size_t *len_r)
{
	struct smime_error err;
	STACK_OF(X509) *s = sk_X509_new_null();
	unsigned char *der;

	for (size_t i = 0; i < n; i++)
		sk_X509_push(s, v[i]);
	assert_int_equal(smime_certs_only_der(s, &der, len_r, &err), 0);
	sk_X509_free(s);
	return der;
}

static void
test_ca_certs(void **state)
{
	struct smime_error err;
	EVP_PKEY *sub_key = tu_key("p256");
	X509 *sub = tu_cert(ca, ca_key, sub_key, "Issuing", NULL, SMIME_ROLE_CA, -1, 100);
	X509 *got_ca, *got_ra, *v[3];
	STACK_OF(X509) *all;
	unsigned char *der = NULL;
	size_t len;
	int dlen;

	(void)state;
	/* One DER certificate: CA and RA both. */
	dlen = i2d_X509(ca, &der);
	assert_int_equal(smime_scep_ca_certs(der, (size_t)dlen, &got_ca, &got_ra, &all, &err), 0);
	assert_int_equal(X509_cmp(got_ca, ca), 0);
	assert_int_equal(X509_cmp(got_ra, ca), 0);
	assert_int_equal(sk_X509_num(all), 1);
	X509_free(got_ca);
	X509_free(got_ra);
	sk_X509_pop_free(all, X509_free);
	OPENSSL_free(der);

	/* RA and CA, in either order. */
	for (int order = 0; order < 2; order++) {
		v[order] = ra;
		v[1 - order] = ca;
		der = certs_only(v, 2, &len);
		assert_int_equal(smime_scep_ca_certs(der, len, &got_ca, &got_ra, NULL, &err), 0);
		assert_int_equal(X509_cmp(got_ca, ca), 0);
		assert_int_equal(X509_cmp(got_ra, ra), 0);
		X509_free(got_ca);
		X509_free(got_ra);
		OPENSSL_free(der);
	}

	/* A chain without an RA: the lowest CA. */
	v[0] = ca;
	v[1] = sub;
	der = certs_only(v, 2, &len);
	assert_int_equal(smime_scep_ca_certs(der, len, &got_ca, &got_ra, NULL, &err), 0);
	assert_int_equal(X509_cmp(got_ca, sub), 0);
	assert_int_equal(X509_cmp(got_ra, sub), 0);
	X509_free(got_ca);
	X509_free(got_ra);

	/* Garbage, truncation, nothing. */
	assert_int_equal(smime_scep_ca_certs(der, len / 2, &got_ca, &got_ra, NULL, &err),
	    SMIME_E_INPUT);
	assert_null(got_ca);
	assert_int_equal(smime_scep_ca_certs((const unsigned char *)"nope", 4, &got_ca, &got_ra,
	    NULL, &err), SMIME_E_INPUT);
	assert_int_equal(smime_scep_ca_certs(der, 0, &got_ca, &got_ra, NULL, &err),
	    SMIME_E_INPUT);
	OPENSSL_free(der);

	/* An end-entity certificate alone is no CA. */
	v[0] = other;
	der = certs_only(v, 1, &len);
	assert_int_equal(smime_scep_ca_certs(der, len, &got_ca, &got_ra, NULL, &err), 0);
	X509_free(got_ca);
	X509_free(got_ra);
	OPENSSL_free(der);
	X509_free(sub);
	EVP_PKEY_free(sub_key);
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(smime_scep_type_name(SMIME_SCEP_PKCSREQ), "PKCSReq");
	assert_string_equal(smime_scep_type_name(99), "?");
	assert_string_equal(smime_scep_status_name(SMIME_SCEP_PENDING), "PENDING");
	assert_string_equal(smime_scep_fail_name(SMIME_SCEP_BAD_CERT_ID), "badCertId");
	assert_string_equal(smime_scep_fail_name(5), "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkcsreq_round_trip),
		cmocka_unit_test(test_assembled),
		cmocka_unit_test(test_assemble_garbage),
		cmocka_unit_test(test_assembled_signers),
		cmocka_unit_test(test_certrep),
		cmocka_unit_test(test_poll_getcert_getcrl),
		cmocka_unit_test(test_certrep_crl),
		cmocka_unit_test(test_bad_messages),
		cmocka_unit_test(test_not_scep),
		cmocka_unit_test(test_challenge),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_ca_certs),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests_name("scep", tests, setup, teardown);
}

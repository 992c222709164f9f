/*
 * Reading S/MIME messages: verify (RFC 8551 3.5, RFC 5652 5.6), decrypt
 * (3.3, RFC 5083) and open, which unwraps whatever nesting arrives.
 *
 * Only the root of a message is ever decrypted or counted as signed.  A
 * signed or encrypted part further down (a signed part in an unsigned
 * multipart, an encrypted part hidden in a reply) is reported by its MIME
 * path and never merged into what the reader is shown: these are the
 * "Johnny, you are fired" and covert-content attack classes.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "internal.h"

/* Signing time and Date header may differ by this much (seconds). */
#define SMIME_DATE_SKEW (60 * 60)

enum mode { MODE_VERIFY, MODE_DECRYPT, MODE_OPEN };

struct smime_report *
smime_report_new(void)
{
	return calloc(1, sizeof(struct smime_report));
}

static void
signer_clear(struct smime_signer *s)
{
	free(s->reason);
	free(s->subject);
	free(s->emails);
	free(s->digest);
	free(s->signature_alg);
}

void
smime_report_free(struct smime_report *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_layers; i++) {
		struct smime_layer *l = &r->layers[i];
		free(l->part);
		free(l->reason);
		for (size_t j = 0; j < l->n_signers; j++)
			signer_clear(&l->signers[j]);
		free(l->signers);
		free(l->cipher);
		strv_free(l->recipients, l->n_recipients);
	}
	free(r->layers);
	strv_free(r->warnings, r->n_warnings);
	free(r->from);
	free(r->covered);
	free(r);
}

static struct smime_layer *
layer_add(struct smime_report *r, enum smime_layer_kind kind, const char *part)
{
	struct smime_layer *nl = realloc(r->layers, (r->n_layers + 1) * sizeof(*nl));

	if (nl == NULL)
		return NULL;
	r->layers = nl;
	nl = &r->layers[r->n_layers++];
	memset(nl, 0, sizeof(*nl));
	nl->kind = kind;
	nl->part = strdup(part);
	return nl;
}

static void SMIME_PRINTF(2, 3)
warn(struct smime_report *r, const char *fmt, ...)
{
	char msg[SMIME_ERROR_MAX], **nw;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < r->n_warnings; i++)
		if (strcmp(r->warnings[i], msg) == 0)
			return;
	nw = realloc(r->warnings, (r->n_warnings + 1) * sizeof(char *));
	if (nw == NULL)
		return;
	r->warnings = nw;
	if ((r->warnings[r->n_warnings] = strdup(msg)) != NULL)
		r->n_warnings++;
}

static void SMIME_PRINTF(3, 4)
fail_layer(struct smime_layer *l, int code, const char *fmt, ...)
{
	char msg[SMIME_ERROR_MAX];
	va_list ap;

	if (l->status != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	l->status = code;
	free(l->reason);
	l->reason = strdup(msg);
}

static char *
lower_dup(const char *s)
{
	char *d = strdup(s ? s : "");

	for (char *p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* "SHA256" -> "sha256" for the digest of a SignerInfo. */
static char *
digest_name(const X509_ALGOR *alg, int *nid_r)
{
	const ASN1_OBJECT *obj;
	int nid;

	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	nid = OBJ_obj2nid(obj);
	*nid_r = nid;
	return lower_dup(nid != NID_undef ? OBJ_nid2sn(nid) : "unknown");
}

static char *
signature_name(const X509_ALGOR *alg, EVP_PKEY *pk)
{
	const ASN1_OBJECT *obj;
	int nid;

	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	nid = OBJ_obj2nid(obj);
	if (nid == NID_rsassaPss)
		return strdup("rsa-pss");
	if (nid == NID_ED25519)
		return strdup("ed25519");
	if (pk != NULL && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC)
		return strdup("ecdsa");
	if (pk != NULL && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA)
		return strdup("rsa");
	return lower_dup(nid != NID_undef ? OBJ_nid2sn(nid) : "unknown");
}

static void
str_free(char *s)
{
	OPENSSL_free(s);
}

static time_t
not_after(X509 *c)
{
	struct tm tm;

	return ASN1_TIME_to_tm(X509_get0_notAfter(c), &tm) ? timegm(&tm) : 0;
}

static time_t
signing_time(CMS_SignerInfo *si)
{
	int idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	struct tm tm;

	if (idx < 0 || (a = CMS_signed_get_attr(si, idx)) == NULL ||
	    (t = X509_ATTRIBUTE_get0_type(a, 0)) == NULL)
		return 0;
	if (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME)
		return 0;
	if (!ASN1_TIME_to_tm((ASN1_TIME *)t->value.asn1_string, &tm))
		return 0;
	return timegm(&tm);
}

static const char *
fmt_time(time_t t, char buf[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* State of one verify/decrypt/open run. */
struct run {
	struct smime_keystore *ks;
	const struct smime_verify_opts *vo;
	enum mode mode;
	struct smime_report *r;
	char **from;            /* From addresses of the outermost message */
	size_t n_from;
	time_t date;            /* its Date header, 0 when absent */
	bool from_checked;      /* the outermost signature was compared with From */
	bool from_pending;      /* ... not yet: the outer header has no From */
	size_t pending_layer;   /* the layer waiting for the From of its content */
	char *spoofed_name;     /* an address-like From display name, or NULL */
	bool encrypted_inside_signed;
	int parts;              /* MIME parts walked, bounded */
};

/*
 * Check the signer's certificate: chain to a trust anchor of the keystore,
 * valid at the moment asked, usable for S/MIME signing (key usage, EKU).
 */
static void
check_chain(struct run *run, X509 *signer, STACK_OF(X509) *extra, struct smime_signer *s)
{
	X509_STORE *store = NULL;
	STACK_OF(X509) *untrusted = NULL;
	X509_STORE_CTX *ctx = NULL;
	struct smime_error err;
	char buf[32];

	if (smime_keystore_trust(run->ks, &store, &untrusted, &err) != 0) {
		s->status = SMIME_E_BADSIG;
		s->reason = strdup(err.message);
		return;
	}
	for (int i = 0; extra != NULL && i < sk_X509_num(extra); i++) {
		X509 *c = sk_X509_value(extra, i);
		X509_up_ref(c);
		sk_X509_push(untrusted, c);
	}
	ctx = X509_STORE_CTX_new();
	if (ctx == NULL || !X509_STORE_CTX_init(ctx, store, signer, untrusted)) {
		s->status = SMIME_E_INTERNAL;
		s->reason = strdup("cannot set up certificate verification");
		goto out;
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_SIGN);
	if (run->vo->at != 0)
		X509_STORE_CTX_set_time(ctx, 0, run->vo->at);
	if (X509_verify_cert(ctx) == 1) {
		s->chain_ok = true;
	} else {
		int e = X509_STORE_CTX_get_error(ctx);
		char msg[SMIME_ERROR_MAX];
		if (e == X509_V_ERR_CERT_REJECTED) {
			/* Only the keystore's distrust check rejects (smime_keystore_verify_cb). */
			char *subj = smime_cert_subject(X509_STORE_CTX_get_current_cert(ctx));
			snprintf(msg, sizeof(msg), "signer certificate: %s%s%s on the keystore's "
			    "distrust list", X509_STORE_CTX_get_error_depth(ctx) == 0 ? "" :
			    "its chain holds the CA ", subj != NULL ? subj : "a certificate",
			    X509_STORE_CTX_get_error_depth(ctx) == 0 ? " is" : ", which is");
			OPENSSL_free(subj);
		} else if (e == X509_V_ERR_CERT_HAS_EXPIRED && run->vo->at == 0)
			snprintf(msg, sizeof(msg), "signer certificate: %s (expired %s; use --at-time "
			    "to verify archived mail as of its signing time)",
			    X509_verify_cert_error_string(e),
			    fmt_time(not_after(signer), buf));
		else
			snprintf(msg, sizeof(msg), "signer certificate: %s",
			    X509_verify_cert_error_string(e));
		s->status = SMIME_E_BADSIG;
		s->reason = strdup(msg);
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
}

/* The SMIMECapabilities attribute of si as DER, or NULL. */
static unsigned char *
caps_der(CMS_SignerInfo *si, size_t *len_r)
{
	int idx = CMS_signed_get_attr_by_NID(si, NID_SMIMECapabilities, -1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	unsigned char *d;

	*len_r = 0;
	if (idx < 0 || (a = CMS_signed_get_attr(si, idx)) == NULL ||
	    (t = X509_ATTRIBUTE_get0_type(a, 0)) == NULL || t->type != V_ASN1_SEQUENCE)
		return NULL;
	d = malloc((size_t)t->value.sequence->length);
	if (d == NULL)
		return NULL;
	memcpy(d, t->value.sequence->data, (size_t)t->value.sequence->length);
	*len_r = (size_t)t->value.sequence->length;
	return d;
}

static bool
is_pkcs7_mime(const char *type)
{
	return strcmp(type, "application/pkcs7-mime") == 0 ||
	    strcmp(type, "application/x-pkcs7-mime") == 0;
}

static bool
is_pkcs7_signature(const char *type)
{
	return strcmp(type, "application/pkcs7-signature") == 0 ||
	    strcmp(type, "application/x-pkcs7-signature") == 0;
}

/*
 * A signature part or a certs-only message: certificates and SignerInfos,
 * never content, so it is read whole up to this size.
 */
#define CMS_PART_MAX (16u * 1024 * 1024)

/* Decode the DER of a small pkcs7 part (see CMS_PART_MAX) into a CMS structure. */
static int
part_cms(GMimePart *part, struct buf *der, CMS_ContentInfo **cms_r, struct smime_error *err)
{
	const unsigned char *p;
	int rc;

	*cms_r = NULL;
	if ((rc = mime_part_content(part, CMS_PART_MAX, der, err)) != 0)
		return rc;
	p = der->data;
	if (der->len == 0 || der->len > LONG_MAX ||
	    (*cms_r = d2i_CMS_ContentInfo(NULL, &p, (long)der->len)) == NULL)
		return smime_error_ssl(err, SMIME_E_INPUT, "the S/MIME part does not hold "
		    "valid CMS (RFC 5652)");
	return 0;
}

/*
 * Verify a SignedData.  detached is the content of a multipart/signed; it
 * streams through the digests here and is appended to content_out.  For
 * opaque signed-data, read in one pass by signed_stream_open, cms is its
 * detached form and digested the digest chain its content went through.
 * Every signer must verify (RFC 5652 5.6 leaves the policy to the
 * receiver; a replayed SignerInfo must not ride along).
 */
static void
verify_signed(struct run *run, struct smime_layer *l, CMS_ContentInfo *cms,
    BIO *detached, BIO *content_out, BIO *digested)
{
	STACK_OF(CMS_SignerInfo) *sis;
	STACK_OF(X509) *certs = NULL, *untrusted = NULL;
	X509_STORE *store = NULL;
	BIO *dcont = NULL, *chain = NULL, *verify_chain;
	struct smime_error err;
	unsigned char chunk[8192];
	int n, nsi;

	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		fail_layer(l, SMIME_E_INPUT, "a signature part that does not hold SignedData");
		return;
	}
	sis = CMS_get0_SignerInfos(cms);
	nsi = sis ? sk_CMS_SignerInfo_num(sis) : 0;
	if (nsi == 0) {
		fail_layer(l, SMIME_E_BADSIG,
		    "not signed: RFC 5652 5.1: SignedData carries no SignerInfo");
		return;
	}
	if (nsi > SMIME_MSG_MAX_SIGNERS) {
		fail_layer(l, SMIME_E_INPUT, "%d signers exceed the limit of %d", nsi,
		    SMIME_MSG_MAX_SIGNERS);
		return;
	}
	if (digested == NULL && detached != NULL && !CMS_is_detached(cms)) {
		/* RFC 8551 3.5.3: in multipart/signed, eContent is absent. */
		fail_layer(l, SMIME_E_BADSIG, "RFC 8551 3.5.3: the signature of a multipart/signed "
		    "part carries its own content (eContent), which is not what is shown: "
		    "refused (eContent confusion)");
		return;
	}
	if (digested == NULL && detached == NULL && CMS_is_detached(cms)) {
		fail_layer(l, SMIME_E_INPUT, "opaque signed-data without content");
		return;
	}
	l->signers = calloc((size_t)nsi, sizeof(*l->signers));
	if (l->signers == NULL) {
		fail_layer(l, SMIME_E_INTERNAL, "out of memory");
		return;
	}
	l->n_signers = (size_t)nsi;

	certs = CMS_get1_certs(cms);
	if (smime_keystore_trust(run->ks, &store, &untrusted, &err) != 0) {
		fail_layer(l, err.code, "%s", err.message);
		goto out;
	}
	for (int i = 0; certs != NULL && i < sk_X509_num(certs); i++) {
		X509 *c = sk_X509_value(certs, i);
		X509_up_ref(c);
		sk_X509_push(untrusted, c);
	}
	/* Signer certificates: from the message, else the keystore. */
	(void)CMS_set1_signers_certs(cms, untrusted, 0);
	ERR_clear_error();

	/* The content streams through the digests (detached: from the message itself). */
	if (digested != NULL) {
		verify_chain = digested;
	} else {
		dcont = detached;
		chain = CMS_dataInit(cms, dcont);
		if (chain == NULL) {
			fail_layer(l, SMIME_E_INPUT, "cannot read the signed content");
			goto out;
		}
		while ((n = BIO_read(chain, chunk, sizeof(chunk))) > 0) {
			if (content_out != NULL &&
			    write_all(content_out, chunk, (size_t)n, &err) != 0) {
				fail_layer(l, err.code, "%s", err.message);
				goto out;
			}
		}
		verify_chain = chain;
	}

	for (int i = 0; i < nsi; i++) {
		CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, i);
		struct smime_signer *s = &l->signers[i];
		X509 *signer = NULL;
		X509_ALGOR *dig = NULL, *sig = NULL;
		EVP_PKEY *pk = NULL;
		int dnid;

		CMS_SignerInfo_get0_algs(si, &pk, &signer, &dig, &sig);
		s->digest = digest_name(dig, &dnid);
		s->signing_time = signing_time(si);
		if (signer == NULL) {
			s->status = SMIME_E_BADSIG;
			s->reason = strdup("the signer's certificate is neither in the message nor "
			    "in the keystore");
			s->signature_alg = signature_name(sig, NULL);
			continue;
		}
		s->signature_alg = signature_name(sig, X509_get0_pubkey(signer));
		smime_cert_fingerprint(signer, s->fingerprint);
		s->subject = smime_cert_subject(signer);
		{
			STACK_OF(OPENSSL_STRING) *em = smime_cert_emails(signer);
			struct buf eb;
			buf_init(&eb, 8192);
			for (int k = 0; em != NULL && k < sk_OPENSSL_STRING_num(em); k++) {
				if ((k && buf_add(&eb, ",", 1, NULL) != 0) ||
				    buf_adds(&eb, sk_OPENSSL_STRING_value(em, k), NULL) != 0)
					break;
			}
			if (buf_add(&eb, "", 1, NULL) == 0)
				s->emails = strdup((char *)eb.data);
			else
				s->emails = strdup("");
			buf_free(&eb);
			sk_OPENSSL_STRING_pop_free(em, str_free);
		}
		EVP_PKEY *spk = X509_get0_pubkey(signer);
		bool eddsa;
		ERR_clear_error();
		if (spk == NULL) {
			s->status = SMIME_E_BADSIG;
			s->reason = strdup("the signer's public key cannot be decoded (for DSA: "
			    "parameters inherited from the issuer, RFC 3279 2.3.2, are not supported)");
			continue;
		}
		eddsa = spk != NULL && EVP_PKEY_get_base_id(spk) == EVP_PKEY_ED25519;
		if (eddsa && CMS_signed_get_attr_count(si) <= 0) {
			s->status = SMIME_E_BADSIG;
			s->reason = strdup("RFC 8419 3.1: an Ed25519 signer without signed attributes "
			    "is not supported");
			continue;
		}
		if (CMS_signed_get_attr_count(si) >= 0 &&
		    (eddsa ? cms_eddsa_verify(si, spk) : CMS_SignerInfo_verify(si)) <= 0) {
			s->status = SMIME_E_BADSIG;
			s->reason = strdup("the signature does not verify (wrong key or altered "
			    "signed attributes)");
			ERR_clear_error();
			continue;
		}
		if (CMS_SignerInfo_verify_content(si, verify_chain) <= 0) {
			s->status = SMIME_E_BADSIG;
			s->reason = strdup(CMS_signed_get_attr_count(si) < 0 ?
			    "the signature over the content does not verify: the message was altered "
			    "after signing, or the key does not match" :
			    "the content digest does not match: the message was "
			    "altered after signing, or the signature belongs to other content");
			ERR_clear_error();
			continue;
		}
		check_chain(run, signer, certs, s);
		if (s->status != 0)
			continue;
		if (dnid == NID_sha1 || dnid == NID_md5)
			warn(run->r, "part '%s' is signed with %s, which is no longer collision "
			    "resistant", l->part, s->digest);
		if (!run->vo->no_harvest) {
			size_t clen;
			unsigned char *caps = caps_der(si, &clen);
			struct smime_error e2;
			if (smime_keystore_harvest(run->ks, signer, caps, clen, s->signing_time, &e2) != 0)
				warn(run->r, "could not record the signer's certificate: %s", e2.message);
			/* RFC 8551 2.5.3: their encryption certificate, when it is another. */
			else if (keypref_record(run->ks, si, signer, certs, caps, clen, s->signing_time,
			    run->vo->at, &e2) != 0)
				warn(run->r, "%s", e2.message);
			free(caps);
		}
	}
	for (size_t i = 0; i < l->n_signers; i++)
		if (l->signers[i].status != 0) {
			fail_layer(l, l->signers[i].status, "signer %zu: %s", i + 1,
			    l->signers[i].reason ? l->signers[i].reason : "invalid");
			break;
		}
out:
	ERR_clear_error();
	bio_free_down_to(chain, dcont);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(untrusted, X509_free);
	X509_STORE_free(store);
}

/*
 * Verify the multipart/signed mp of the message stream s: the signed part
 * is digested straight from s, in canonical form.
 */
static int
verify_multipart(struct run *run, struct smime_layer *l, GMimeStream *s, GMimeMultipart *mp,
    gint64 *start_r, gint64 *end_r, struct smime_error *err)
{
	struct buf der;
	CMS_ContentInfo *cms = NULL;
	GMimeStream *sub = NULL, *canon = NULL;
	BIO *dcont = NULL;
	char *ptype;
	int rc;

	ptype = g_mime_multipart_get_count(mp) == 2 ?
	    mime_type_of(g_mime_multipart_get_part(mp, 1)) : NULL;
	if (ptype == NULL || !is_pkcs7_signature(ptype) ||
	    !GMIME_IS_PART(g_mime_multipart_get_part(mp, 1))) {
		g_free(ptype);
		return smime_error_set(err, SMIME_E_INPUT, "RFC 8551 3.5.3: multipart/signed "
		    "must hold the content and one application/pkcs7-signature part");
	}
	g_free(ptype);
	buf_init(&der, SMIME_MSG_MAX_SIZE);
	if ((rc = stream_signed_range(s, mp, start_r, end_r, err)) != 0 ||
	    (rc = part_cms(GMIME_PART(g_mime_multipart_get_part(mp, 1)), &der, &cms, err)) != 0)
		goto out;
	sub = g_mime_stream_substream(s, *start_r, *end_r);
	canon = stream_crlf(sub);
	if ((dcont = bio_from_gmime(canon)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	verify_signed(run, l, cms, dcont, NULL, NULL);
out:
	BIO_free(dcont);
	if (canon != NULL)
		g_object_unref(canon);
	if (sub != NULL)
		g_object_unref(sub);
	CMS_ContentInfo_free(cms);
	buf_free(&der);
	return rc;
}

/* Path of child i (0-based) under path. */
static void
child_path(const char *path, int i, char out[128])
{
	if (path[0] == '\0')
		snprintf(out, 128, "%d", i + 1);
	else
		snprintf(out, 128, "%s.%d", path, i + 1);
}

/*
 * Look for S/MIME below a root that is not itself S/MIME: report signed
 * parts (verified, for the report only) and encrypted parts (never
 * decrypted).
 */
static void
scan_parts(struct run *run, GMimeStream *stream, GMimeObject *obj, const char *path, int depth)
{
	char *type;

	if (depth > SMIME_MSG_MAX_DEPTH * 4 || ++run->parts > SMIME_MSG_MAX_PARTS)
		return;
	type = mime_type_of(obj);
	if (GMIME_IS_MULTIPART_SIGNED(obj) && path[0] != '\0') {
		struct smime_layer *l = layer_add(run->r, SMIME_LAYER_SIGNED, path);
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		struct smime_error err;
		gint64 start, end;
		if (l == NULL)
			goto done_signed;
		if (verify_multipart(run, l, stream, mp, &start, &end, &err) != 0)
			fail_layer(l, err.code, "%s", err.message);
		if (l->status == 0)
			warn(run->r, "only part %s is signed: the rest of what the reader sees "
			    "is not covered by any signature", path);
		else
			warn(run->r, "part %s carries a signature that does not verify", path);
done_signed:
		/* Do not descend: the signed part was reported as a whole. */
		;
	} else if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n; i++) {
			char cp[128];
			child_path(path, i, cp);
			scan_parts(run, stream, g_mime_multipart_get_part(mp, i), cp, depth + 1);
		}
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		if (inner != NULL && g_mime_message_get_mime_part(inner) != NULL) {
			char cp[128];
			child_path(path, 0, cp);
			scan_parts(run, stream, g_mime_message_get_mime_part(inner), cp, depth + 1);
		}
	} else if (GMIME_IS_PART(obj) && is_pkcs7_mime(type) && path[0] != '\0') {
		enum smime_layer_kind k;
		struct smime_error err;
		if (cms_part_kind(GMIME_PART(obj), &k, &err) == 0) {
			struct smime_layer *l = layer_add(run->r, k, path);
			if (l != NULL && (k == SMIME_LAYER_ENVELOPED || k == SMIME_LAYER_AUTH_ENVELOPED)) {
				fail_layer(l, SMIME_E_POLICY, "encrypted part %s is not the message "
				    "root: not decrypted (it may be someone else's ciphertext "
				    "smuggled into this message)", path);
				warn(run->r, "encrypted part %s is not the message root and was not "
				    "decrypted", path);
			} else if (l != NULL && k == SMIME_LAYER_OPAQUE_SIGNED) {
				struct signed_stream *ss = NULL;
				CMS_ContentInfo *cms = NULL;
				if (signed_stream_open(GMIME_PART(obj), NULL, &cms, &ss, &err) != 0)
					fail_layer(l, err.code, "%s", err.message);
				else
					verify_signed(run, l, cms, NULL, NULL, signed_stream_digests(ss));
				CMS_ContentInfo_free(cms);
				signed_stream_free(ss);
				warn(run->r, "only part %s is signed: the rest of what the reader sees "
				    "is not covered by any signature", path);
			}
		}
	}
	g_free(type);
}

/* Is address one of the comma-separated addresses in emails? */
static bool
smime_emails_contain(const char *emails, const char *address)
{
	size_t al = strlen(address);
	const char *p = emails;

	while (*p != '\0') {
		const char *c = strchr(p, ',');
		size_t el = c ? (size_t)(c - p) : strlen(p);
		if (el == al && strncmp(p, address, al) == 0)
			return true;
		p += el;
		if (*p == ',')
			p++;
	}
	return false;
}

/* Compare the From address(es) with the signers of layer l. */
static void
check_from(struct run *run, struct smime_layer *l)
{
	size_t i;
	bool match = false;
	char signers[SMIME_ERROR_MAX] = "";

	if (l->status != 0)
		return;
	for (i = 0; i < l->n_signers; i++) {
		const char *em = l->signers[i].emails ? l->signers[i].emails : "";
		if (i < 4 && strlen(signers) + strlen(em) + 3 < sizeof(signers)) {
			if (signers[0] != '\0')
				strcat(signers, "; ");
			strcat(signers, em[0] ? em : "(no address)");
		}
		if (run->n_from == 1 && smime_emails_contain(em, run->from[0]))
			match = true;
	}
	if (match)
		return;
	{
		char msg[SMIME_ERROR_MAX];
		if (run->n_from == 0)
			snprintf(msg, sizeof(msg), "the message has no From address to match the "
			    "signer %s", signers);
		else if (run->n_from > 1)
			snprintf(msg, sizeof(msg), "the message has %zu From addresses; the signer "
			    "is %s", run->n_from, signers);
		else
			snprintf(msg, sizeof(msg), "the signer %s is not the sender %s named in From",
			    signers, run->from[0]);
		if (run->vo->allow_from_mismatch)
			warn(run->r, "%s", msg);
		else
			fail_layer(l, SMIME_E_BADSIG, "%s", msg);
	}
}

/* Check signing times against the Date header. */
static void
check_date(struct run *run, struct smime_layer *l)
{
	char a[32], b[32];

	if (run->date == 0 || l->status != 0)
		return;
	for (size_t i = 0; i < l->n_signers; i++) {
		time_t st = l->signers[i].signing_time;
		if (st == 0)
			continue;
		if (st - run->date > SMIME_DATE_SKEW || run->date - st > SMIME_DATE_SKEW)
			warn(run->r, "the signing time %s is far from the Date header %s",
			    fmt_time(st, a), fmt_time(run->date, b));
	}
}

/*
 * RFC 8550 3 and RFC 8551 3.5: the From header is compared with the signer
 * of the outermost signature, the one that covers what the From header
 * introduces; inner signatures (nested signing) are reported, not compared.
 */
static void
check_sender(struct run *run, struct smime_layer *l)
{
	if (run->from_checked) {
		/*
		 * A clear-signed part inside another signature is displayed by
		 * mail clients with its own signature state: when its signer is
		 * not the sender, the reader sees someone else's signature.
		 */
		if (l->kind == SMIME_LAYER_SIGNED && l->status == 0 && run->n_from == 1) {
			for (size_t i = 0; i < l->n_signers; i++)
				if (l->signers[i].emails != NULL &&
				    !smime_emails_contain(l->signers[i].emails, run->from[0]))
					warn(run->r, "an inner clear-signed part is signed by %s, who is not "
					    "the sender %s", l->signers[i].emails[0] ? l->signers[i].emails :
					    "(no address)", run->from[0]);
		}
		return;
	}
	run->from_checked = true;
	if (run->n_from == 0 && l->status == 0) {
		/*
		 * A whole message signed as it stood (openssl cms -sign -in
		 * message.eml, NSS cmsutil -S): its From is inside the signed
		 * content, as in header-protected mail (RFC 9788); it is
		 * compared when the next layer is read (resolve_from).
		 */
		run->from_pending = true;
		run->pending_layer = (size_t)(l - run->r->layers);
		check_date(run, l);
		return;
	}
	check_from(run, l);
	check_date(run, l);
	if (l->status == 0 && run->spoofed_name != NULL)
		warn(run->r, "the From display name \"%s\" looks like an address but is not the "
		    "sender's address %s", run->spoofed_name, run->r->from ? run->r->from : "");
}

/*
 * The outer header had no From: compare the signer of the pending layer
 * with the From of msg, the signed content, when it has one.
 */
static void
resolve_from(struct run *run, GMimeMessage *msg)
{
	struct smime_layer *l;

	if (!run->from_pending)
		return;
	strv_free(run->from, run->n_from);
	run->from = mime_from_addresses(msg, &run->n_from);
	if (run->n_from == 0)
		return;  /* perhaps deeper; else no From anywhere (no_from_anywhere) */
	run->from_pending = false;
	l = &run->r->layers[run->pending_layer];
	free(run->r->from);
	run->r->from = strdup(run->from[0]);
	free(run->spoofed_name);
	run->spoofed_name = mime_from_spoofed_name(msg);
	check_from(run, l);
	if (l->status == 0 && run->spoofed_name != NULL)
		warn(run->r, "the From display name \"%s\" looks like an address but is not the "
		    "sender's address %s", run->spoofed_name, run->r->from ? run->r->from : "");
}

/* No From in the header nor in the signed content: valid, with a warning. */
static void
no_from_anywhere(struct run *run)
{
	struct smime_layer *l;
	const char *em = NULL;

	if (!run->from_pending)
		return;
	run->from_pending = false;
	l = &run->r->layers[run->pending_layer];
	if (l->status != 0)
		return;
	for (size_t i = 0; i < l->n_signers && em == NULL; i++)
		if (l->signers[i].emails != NULL && l->signers[i].emails[0] != '\0')
			em = l->signers[i].emails;
	warn(run->r, "the message has no From address, neither in its header nor in the "
	    "signed content: the signature is valid, by %s, but does not show who sent "
	    "the message", em != NULL ? em : "a signer without an address");
}

/*
 * Open layer after layer: *cur is the current message as a seekable stream
 * and is replaced by the next layer's (headers followed by the entity).
 */
static int
run_layers(struct run *run, GMimeStream **cur, struct buf *headers, struct smime_error *err)
{
	int rc = 0;

	for (int depth = 0;; depth++) {
		GMimeMessage *msg = NULL;
		GMimeObject *root;
		char *type = NULL;
		struct buf content, der;
		GMimeStream *next = NULL;
		CMS_ContentInfo *cms = NULL;
		struct smime_layer *l = NULL;
		bool stop = false;

		if (depth >= SMIME_MSG_MAX_DEPTH)
			return smime_error_set(err, SMIME_E_INPUT,
			    "more than %d S/MIME layers: refused", SMIME_MSG_MAX_DEPTH);
		if ((rc = mime_parse_stream(*cur, &msg, err)) != 0)
			return rc;
		buf_init(&content, SMIME_MSG_MAX_SIZE);
		buf_init(&der, SMIME_MSG_MAX_SIZE);
		if (depth == 0) {
			const char *d = g_mime_object_get_header(GMIME_OBJECT(msg), "Date");
			GDateTime *dt = d ? g_mime_utils_header_decode_date(d) : NULL;
			if (dt != NULL) {
				run->date = (time_t)g_date_time_to_unix(dt);
				g_date_time_unref(dt);
			}
			run->from = mime_from_addresses(msg, &run->n_from);
			run->spoofed_name = mime_from_spoofed_name(msg);
			if (run->n_from >= 1)
				run->r->from = strdup(run->from[0]);
			if ((rc = mime_outer_headers(msg, headers, err)) != 0 ||
			    (rc = buf_adds(headers, "MIME-Version: 1.0\r\n", err)) != 0)
				goto next_layer;
		} else {
			resolve_from(run, msg);
		}
		root = g_mime_message_get_mime_part(msg);
		type = mime_type_of(root);

		if (GMIME_IS_MULTIPART_SIGNED(root) && run->mode != MODE_DECRYPT) {
			GMimeMultipart *mp = GMIME_MULTIPART(root);
			l = layer_add(run->r, SMIME_LAYER_SIGNED, "");
			if (l == NULL) {
				rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
				goto next_layer;
			}
			gint64 start, end;
			if ((rc = verify_multipart(run, l, *cur, mp, &start, &end, err)) != 0)
				goto next_layer;
			check_sender(run, l);
			{
				GMimeStream *sub = g_mime_stream_substream(*cur, start, end);
				next = stream_layer(headers, sub);
				g_object_unref(sub);
			}
			if (l->status != 0) {
				/*
				 * The outer signature failed: still report the signatures
				 * inside (a forwarded signed message), for the reader.
				 */
				GMimeMessage *inner = NULL;
				struct smime_error e2;
				if (mime_parse_stream(next, &inner, &e2) == 0) {
					GMimeObject *ir = g_mime_message_get_mime_part(inner);
					char *it = mime_type_of(ir);
					const char *st = g_mime_object_get_content_type_parameter(ir, "smime-type");
					if (is_pkcs7_mime(it) && st != NULL && strstr(st, "nveloped") != NULL)
						warn(run->r, "the failed signature was around encrypted content, "
						    "which was not decrypted");
					g_free(it);
					scan_parts(run, next, ir, "", 0);
					g_object_unref(inner);
				}
				/* Only an explicit --unverified-output goes on inside. */
				stop = !run->vo->unverified_output;
			}
		} else if (GMIME_IS_PART(root) && (is_pkcs7_mime(type) ||
		    (strcmp(type, "application/octet-stream") == 0 &&
		    g_mime_part_get_filename(GMIME_PART(root)) != NULL &&
		    g_str_has_suffix(g_mime_part_get_filename(GMIME_PART(root)), ".p7m")))) {
			enum smime_layer_kind k;
			if ((rc = cms_part_kind(GMIME_PART(root), &k, err)) != 0)
				goto next_layer;
			if ((k == SMIME_LAYER_ENVELOPED || k == SMIME_LAYER_AUTH_ENVELOPED) &&
			    run->mode == MODE_VERIFY) {
				stop = true;
				if (run->r->n_layers == 0) {
					rc = smime_error_set(err, SMIME_E_BADSIG, "the message is encrypted, "
					    "not signed: use 'smime open' or 'smime decrypt'");
				} else {
					l = layer_add(run->r, k, "");
					if (l != NULL)
						l->integrity = k == SMIME_LAYER_AUTH_ENVELOPED ? "aead" : "none";
					run->encrypted_inside_signed = true;
				}
				goto next_layer;
			}
			if (k == SMIME_LAYER_OPAQUE_SIGNED && run->mode == MODE_DECRYPT) {
				stop = true;
				goto next_layer;
			}
			l = layer_add(run->r, k, "");
			if (l == NULL) {
				rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
				goto next_layer;
			}
			if (k == SMIME_LAYER_CERTS_ONLY) {
				STACK_OF(X509) *certs = NULL;
				if ((rc = part_cms(GMIME_PART(root), &der, &cms, err)) != 0)
					goto next_layer;
				certs = CMS_get1_certs(cms);
				for (int i = 0; certs != NULL && i < sk_X509_num(certs) &&
				    !run->vo->no_harvest; i++) {
					struct smime_error e2;
					if (smime_keystore_harvest(run->ks, sk_X509_value(certs, i), NULL, 0,
					    0, &e2) != 0)
						warn(run->r, "could not record a certificate: %s", e2.message);
				}
				sk_X509_pop_free(certs, X509_free);
				stop = true;
				goto next_layer;
			}
			/* The layer's content goes to an unlinked spool: the next layer's stream. */
			int sfd;
			BIO *sink;
			if ((rc = spool_create(&sfd, err)) != 0)
				goto next_layer;
			if ((sink = BIO_new_fd(sfd, BIO_NOCLOSE)) == NULL) {
				close(sfd);
				rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
				goto next_layer;
			}
			/* The outer headers, then the layer's content. */
			rc = write_all(sink, headers->data, headers->len, err);
			if (rc == 0 && k == SMIME_LAYER_OPAQUE_SIGNED) {
				struct signed_stream *ss = NULL;
				if ((rc = signed_stream_open(GMIME_PART(root), sink, &cms, &ss,
				    err)) == 0) {
					verify_signed(run, l, cms, NULL, NULL, signed_stream_digests(ss));
					signed_stream_free(ss);
					check_sender(run, l);
				}
			} else if (rc == 0) {
				if (run->r->n_layers > 1) {
					struct smime_layer *outer = &run->r->layers[run->r->n_layers - 2];
					if (outer->kind == SMIME_LAYER_SIGNED ||
					    outer->kind == SMIME_LAYER_OPAQUE_SIGNED)
						run->encrypted_inside_signed = true;
				}
				rc = stream_decrypt(run->ks, GMIME_PART(root), sink, l, err);
				if (rc != 0)
					fail_layer(l, rc, "%s", err->message);
			}
			if (rc == 0 && BIO_flush(sink) <= 0)
				rc = smime_error_set(err, SMIME_E_IO, "cannot write the spool file");
			BIO_free(sink);
			if (rc != 0) {
				close(sfd);
				goto next_layer;
			}
			lseek(sfd, 0, SEEK_SET);
			next = g_mime_stream_fs_new(sfd);
		} else {
			/* The root is not S/MIME: look below it, and stop. */
			if (run->r->n_layers == 0)
				scan_parts(run, *cur, root, "", 0);
			stop = true;
		}
next_layer:
		if (rc != 0 && l != NULL)
			fail_layer(l, rc, "%s", err->message);
		g_free(type);
		CMS_ContentInfo_free(cms);
		g_object_unref(msg);
		buf_free(&content);
		buf_free(&der);
		if (rc == 0 && !stop && next != NULL) {
			g_object_unref(*cur);
			*cur = next;
			if (run->mode == MODE_DECRYPT && l != NULL &&
			    (l->kind == SMIME_LAYER_ENVELOPED || l->kind == SMIME_LAYER_AUTH_ENVELOPED))
				return 0;
			continue;
		}
		if (next != NULL)
			g_object_unref(next);
		return rc;
	}
}

/* The verdict: the first failing layer at the root decides. */
static int
verdict(struct run *run, struct smime_error *err)
{
	struct smime_report *r = run->r;
	bool root_signed = false, root_encrypted = false;

	for (size_t i = 0; i < r->n_layers; i++) {
		struct smime_layer *l = &r->layers[i];
		if (l->part[0] != '\0')
			continue; /* below the root: reported, not counted */
		if (l->status != 0) {
			r->status = l->status;
			return smime_error_set(err, l->status, "%s", l->reason ? l->reason : "failed");
		}
		if (l->kind == SMIME_LAYER_SIGNED || l->kind == SMIME_LAYER_OPAQUE_SIGNED) {
			root_signed = true;
			if (r->covered == NULL)
				r->covered = strdup("the whole message");
		}
		if (l->kind == SMIME_LAYER_ENVELOPED || l->kind == SMIME_LAYER_AUTH_ENVELOPED)
			root_encrypted = true;
	}
	if (run->encrypted_inside_signed && root_signed)
		warn(r, "the signature covers encrypted content: it shows who sent the ciphertext, "
		    "not who wrote the plaintext");
	if (run->mode == MODE_VERIFY && !root_signed) {
		bool partial = false;
		for (size_t i = 0; i < r->n_layers; i++)
			if (r->layers[i].part[0] != '\0' && r->layers[i].status == 0 &&
			    (r->layers[i].kind == SMIME_LAYER_SIGNED ||
			    r->layers[i].kind == SMIME_LAYER_OPAQUE_SIGNED)) {
				partial = true;
				if (r->covered == NULL)
					r->covered = strdup(r->layers[i].part);
			}
		if (!partial) {
			r->status = SMIME_E_BADSIG;
			return smime_error_set(err, SMIME_E_BADSIG, r->n_layers > 0 ?
			    "the message is not signed at its root, and no part of it carries a valid "
			    "signature" : "the message is not signed");
		}
	}
	if (run->mode == MODE_DECRYPT && !root_encrypted) {
		for (size_t i = 0; i < r->n_layers; i++)
			if (r->layers[i].kind == SMIME_LAYER_ENVELOPED ||
			    r->layers[i].kind == SMIME_LAYER_AUTH_ENVELOPED) {
				r->status = SMIME_E_POLICY;
				return smime_error_set(err, SMIME_E_POLICY, "%s", r->layers[i].reason);
			}
		r->status = SMIME_E_INPUT;
		return smime_error_set(err, SMIME_E_INPUT, "the message is not encrypted");
	}
	if (run->mode == MODE_OPEN) {
		bool any_root = false, partial = false;
		const char *hidden = NULL;
		for (size_t i = 0; i < r->n_layers; i++) {
			struct smime_layer *l = &r->layers[i];
			if (l->part[0] == '\0') {
				any_root = true;
				continue;
			}
			if ((l->kind == SMIME_LAYER_ENVELOPED || l->kind == SMIME_LAYER_AUTH_ENVELOPED) &&
			    hidden == NULL)
				hidden = l->reason;
			if ((l->kind == SMIME_LAYER_SIGNED || l->kind == SMIME_LAYER_OPAQUE_SIGNED) &&
			    l->status == 0)
				partial = true;
		}
		if (!any_root) {
			/* Nothing at the root: a hidden ciphertext is refused outright. */
			if (hidden != NULL) {
				r->status = SMIME_E_POLICY;
				return smime_error_set(err, SMIME_E_POLICY, "%s", hidden);
			}
			if (r->n_layers == 0) {
				r->status = SMIME_E_INPUT;
				return smime_error_set(err, SMIME_E_INPUT,
				    "the message is neither signed nor encrypted");
			}
			if (!partial) {
				r->status = SMIME_E_BADSIG;
				return smime_error_set(err, SMIME_E_BADSIG, "the message is not signed at "
				    "its root, and no part of it carries a valid signature");
			}
		}
	}
	return 0;
}

static int
process(struct smime_keystore *ks, const struct smime_verify_opts *vo, enum mode mode,
    BIO *in, BIO *out, struct smime_report **report_r, struct smime_error *err)
{
	struct smime_verify_opts defaults = { 0 };
	struct run run = { 0 };
	struct buf headers;
	GMimeStream *cur = NULL;
	int rc;

	smime_init();
	if (report_r != NULL)
		*report_r = NULL;
	run.ks = ks;
	run.vo = vo ? vo : &defaults;
	run.mode = mode;
	run.r = smime_report_new();
	buf_init(&headers, SMIME_MSG_MAX_SIZE);
	if (run.r == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = source_open(in, &cur, err)) != 0)
		goto out;
	if ((rc = run_layers(&run, &cur, &headers, err)) != 0) {
		if (run.r->status == 0)
			run.r->status = rc;
		goto out;
	}
	no_from_anywhere(&run);
	rc = verdict(&run, err);
	/* A failed signature releases nothing unless asked; nor does a failed decryption. */
	if (out != NULL && (rc == 0 || (run.vo->unverified_output && rc == SMIME_E_BADSIG &&
	    mode != MODE_DECRYPT)))
		if (stream_copy_crlf(cur, out, err) != 0 || BIO_flush(out) <= 0)
			rc = SMIME_E_IO;
	/* Harvested certificates (a no-op when nothing was harvested). */
	if (!run.vo->no_harvest) {
		struct smime_error e2;
		if (smime_keystore_commit(ks, &e2) != 0)
			warn(run.r, "could not save harvested certificates: %s", e2.message);
	}
out:
	strv_free(run.from, run.n_from);
	free(run.spoofed_name);
	if (cur != NULL)
		g_object_unref(cur);
	buf_free(&headers);
	if (report_r != NULL)
		*report_r = run.r;
	else
		smime_report_free(run.r);
	return rc;
}

int
smime_msg_verify(struct smime_keystore *ks, const struct smime_verify_opts *o, BIO *in,
    BIO *out, struct smime_report **report_r, struct smime_error *err)
{
	return process(ks, o, MODE_VERIFY, in, out, report_r, err);
}

int
smime_msg_decrypt(struct smime_keystore *ks, BIO *in, BIO *out,
    struct smime_report **report_r, struct smime_error *err)
{
	struct smime_verify_opts o = { .no_harvest = true };

	return process(ks, &o, MODE_DECRYPT, in, out, report_r, err);
}

int
smime_msg_open(struct smime_keystore *ks, const struct smime_verify_opts *o, BIO *in,
    BIO *out, struct smime_report **report_r, struct smime_error *err)
{
	return process(ks, o, MODE_OPEN, in, out, report_r, err);
}

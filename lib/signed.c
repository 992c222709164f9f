/*
 * Opaque SignedData read as a stream, in one pass (RFC 5652 5, RFC 8551
 * 3.5.2): the digest algorithms come before the content, so the content
 * goes through their digests (OpenSSL's digest BIOs, set up from a
 * SignedData that has only them) as it is read, and into the caller's
 * spool; the certificates and SignerInfos that follow it then make the
 * detached SignedData that is verified against those digests.  Memory does
 * not grow with the content.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "ber.h"
#include "internal.h"

struct signed_stream {
	BIO *in;
	struct ber_reader *r;
	BIO *octets;
	CMS_ContentInfo *head;      /* version and digest algorithms only */
	BIO *digests;               /* CMS_dataInit(head) over octets, read to its end */
};

struct signed_parts {
	unsigned char *type_oid, *version, *digests, *ect, *certs, *crls, *signers;
	size_t type_oid_len, version_len, digests_len, ect_len, certs_len, crls_len, signers_len;
	struct ber_tlv content;
};

static void
parts_clear(struct signed_parts *p)
{
	OPENSSL_free(p->type_oid);
	OPENSSL_free(p->version);
	OPENSSL_free(p->digests);
	OPENSSL_free(p->ect);
	OPENSSL_free(p->certs);
	OPENSSL_free(p->crls);
	OPENSSL_free(p->signers);
	memset(p, 0, sizeof(*p));
}

/*
 * From the [0] content of a SignedData ContentInfo to the eContent OCTET
 * STRING, keeping the small pieces before it.  SMIME_E_NOTFOUND, without
 * touching err, when there is no eContent (detached or certs-only); the
 * reader is then inside encapContentInfo, after eContentType.
 */
static int
walk_signed_head(struct ber_reader *r, struct signed_parts *p, struct smime_error *err)
{
	struct ber_tlv t;
	int rc;

#define WHOLE(field, max) do { \
	if ((rc = ber_read_whole(r, &t, (max), &p->field, &p->field##_len, err)) != 0) \
		return rc; \
} while (0)

	/* SignedData ::= SEQUENCE { version, digestAlgorithms, encapContentInfo, ... } */
	if ((rc = ber_expect(r, BER_CONTEXT, 0, true, &t, "ContentInfo.content", err)) != 0 ||
	    (rc = ber_enter(r, &t, err)) != 0 ||
	    (rc = ber_expect(r, BER_UNIVERSAL, 16, true, &t, "SignedData", err)) != 0 ||
	    (rc = ber_enter(r, &t, err)) != 0 ||
	    (rc = ber_expect(r, BER_UNIVERSAL, 2, false, &t, "SignedData.version", err)) != 0)
		return rc;
	WHOLE(version, 16);
	if ((rc = ber_expect(r, BER_UNIVERSAL, 17, true, &t, "digestAlgorithms", err)) != 0)
		return rc;
	WHOLE(digests, 65536);
	/* EncapsulatedContentInfo ::= SEQUENCE { eContentType, eContent [0] EXPLICIT OPTIONAL } */
	if ((rc = ber_expect(r, BER_UNIVERSAL, 16, true, &t, "encapContentInfo", err)) != 0 ||
	    (rc = ber_enter(r, &t, err)) != 0 ||
	    (rc = ber_expect(r, BER_UNIVERSAL, 6, false, &t, "eContentType", err)) != 0)
		return rc;
	WHOLE(ect, 64);
	if ((rc = ber_next(r, &t, err)) != 0)
		return rc;
	if (t.cls != BER_CONTEXT || t.tag != 0 || !t.constructed)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 5652 5.2: eContent [0] expected");
	/* The OCTET STRING may be primitive or constructed (chunks). */
	if ((rc = ber_enter(r, &t, err)) != 0)
		return rc;
	if ((rc = ber_next(r, &p->content, err)) != 0)
		return rc == SMIME_E_NOTFOUND ? smime_error_set(err, SMIME_E_INPUT,
		    "RFC 5652 5.2: eContent [0] is empty") : rc;
	if (p->content.cls != BER_UNIVERSAL || p->content.tag != 4)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 5652 5.2: eContent must be an "
		    "OCTET STRING (offset %llu)", (unsigned long long)p->content.offset);
	return 0;
}

/* After the content: certificates [0], crls [1], then SignerInfos, to the end. */
static int
walk_signed_tail(struct ber_reader *r, struct signed_parts *p, struct smime_error *err)
{
	struct ber_tlv t;
	int rc;

	if ((rc = ber_leave(r, err)) != 0 ||           /* [0] */
	    (rc = ber_leave(r, err)) != 0)             /* encapContentInfo */
		return rc;
	/* certificates [0] IMPLICIT OPTIONAL, crls [1] IMPLICIT OPTIONAL, signerInfos SET */
	for (;;) {
		if ((rc = ber_next(r, &t, err)) != 0)
			return rc == SMIME_E_NOTFOUND ? smime_error_set(err, SMIME_E_INPUT,
			    "RFC 5652 5.1: SignerInfos missing") : rc;
		if (t.cls == BER_CONTEXT && t.tag == 0 && p->certs == NULL) {
			WHOLE(certs, BER_MAX_WHOLE);
		} else if (t.cls == BER_CONTEXT && t.tag == 1 && p->crls == NULL) {
			WHOLE(crls, BER_MAX_WHOLE);
		} else if (t.cls == BER_UNIVERSAL && t.tag == 17) {
			WHOLE(signers, BER_MAX_WHOLE);
			return ber_finish(r, err);
		} else {
			return smime_error_set(err, SMIME_E_INPUT, "RFC 5652 5.1: unexpected element "
			    "at offset %llu in SignedData", (unsigned long long)t.offset);
		}
	}
#undef WHOLE
	return 0;
}

/* The reader over the decoded content of part (ss->in and ss->r, freed with ss). */
static struct ber_reader *
open_reader(struct signed_stream *ss, GMimePart *part)
{
	if ((ss->in = part_content_bio(part)) == NULL)
		return NULL;
	return ss->r = ber_reader_new(ss->in, SMIME_MSG_MAX_SIZE);
}

void
signed_stream_free(struct signed_stream *ss)
{
	if (ss == NULL)
		return;
	bio_free_down_to(ss->digests, ss->octets);
	BIO_free(ss->octets);
	CMS_ContentInfo_free(ss->head);
	ber_reader_free(ss->r);
	BIO_free(ss->in);
	free(ss);
}

/*
 * SignedData { version, digestAlgorithms, { eContentType }, [certs], [crls],
 * signerInfos }, without eContent, wrapped in its ContentInfo and decoded.
 */
static int
detached_signed_data(const struct signed_parts *p, bool with_signers, CMS_ContentInfo **cms_r,
    struct smime_error *err)
{
	static const unsigned char no_signers[2] = { 0x31, 0x00 };
	struct buf ect, body;
	int rc;

	buf_init(&ect, 1024);
	buf_init(&body, BER_MAX_WHOLE * 4);
	if ((rc = buf_add(&body, p->ect, p->ect_len, err)) != 0 ||
	    (rc = der_wrap(&ect, 0x30, &body, err)) != 0)
		goto out;
	body.len = 0;
	if ((rc = buf_add(&body, p->version, p->version_len, err)) != 0 ||
	    (rc = buf_add(&body, p->digests, p->digests_len, err)) != 0 ||
	    (rc = buf_add(&body, ect.data, ect.len, err)) != 0 ||
	    (with_signers && p->certs && (rc = buf_add(&body, p->certs, p->certs_len, err)) != 0) ||
	    (with_signers && p->crls && (rc = buf_add(&body, p->crls, p->crls_len, err)) != 0) ||
	    (rc = with_signers ? buf_add(&body, p->signers, p->signers_len, err) :
	    buf_add(&body, no_signers, sizeof(no_signers), err)) != 0)
		goto out;
	rc = cms_from_der_parts(p->type_oid, p->type_oid_len, &body, with_signers ?
	    "the signed-data part's certificates or SignerInfos are" :
	    "the signed-data part's digest algorithms are", cms_r, err);
out:
	buf_free(&ect);
	buf_free(&body);
	return rc;
}

#define CONTENT_CHUNK 65536

int
signed_stream_open(GMimePart *part, BIO *sink, CMS_ContentInfo **cms_r,
    struct signed_stream **ss_r, struct smime_error *err)
{
	struct signed_parts p = { 0 };
	struct signed_stream *ss = calloc(1, sizeof(*ss));
	unsigned char *chunk = NULL;
	int rc = 0, n, nid;

	*cms_r = NULL;
	*ss_r = NULL;
	if (ss == NULL || open_reader(ss, part) == NULL ||
	    (chunk = malloc(CONTENT_CHUNK)) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "cannot read the signed part");
		goto out;
	}
	if ((rc = ber_content_info(ss->r, &nid, &p.type_oid, &p.type_oid_len, err)) != 0)
		goto out;
	if (nid != NID_pkcs7_signed) {
		rc = smime_error_set(err, SMIME_E_INPUT, "the signed-data part holds %s, not "
		    "SignedData", nid != NID_undef ? OBJ_nid2ln(nid) : "an unknown content type");
		goto out;
	}
	if ((rc = walk_signed_head(ss->r, &p, err)) == SMIME_E_NOTFOUND)
		rc = smime_error_set(err, SMIME_E_INPUT, "opaque signed-data without content");
	/* The content through the digests of the algorithms named before it. */
	if (rc != 0 || (rc = detached_signed_data(&p, false, &ss->head, err)) != 0)
		goto out;
	if ((ss->octets = ber_octets_bio(ss->r, &p.content)) == NULL ||
	    (ss->digests = CMS_dataInit(ss->head, ss->octets)) == NULL) {
		rc = smime_error_ssl(err, SMIME_E_INPUT, "cannot digest the signed content");
		goto out;
	}
	while ((n = BIO_read(ss->digests, chunk, CONTENT_CHUNK)) > 0)
		if (sink != NULL && (rc = write_all(sink, chunk, (size_t)n, err)) != 0)
			goto out;
	if ((rc = ber_error(ss->r, err)) != 0)
		goto out;
	if (n < 0) {
		rc = smime_error_set(err, SMIME_E_IO, "cannot read the signed content");
		goto out;
	}
	/* Then what follows it: the certificates and SignerInfos to verify. */
	if ((rc = walk_signed_tail(ss->r, &p, err)) != 0 ||
	    (rc = detached_signed_data(&p, true, cms_r, err)) != 0)
		goto out;
	*ss_r = ss;
	ss = NULL;
out:
	if (chunk != NULL) {
		OPENSSL_cleanse(chunk, CONTENT_CHUNK);
		free(chunk);
	}
	if (rc != 0) {
		CMS_ContentInfo_free(*cms_r);
		*cms_r = NULL;
	}
	signed_stream_free(ss);
	parts_clear(&p);
	ERR_clear_error();
	return rc;
}

BIO *
signed_stream_digests(struct signed_stream *ss)
{
	return ss->digests;
}

/*
 * After encapContentInfo without eContent: are there SignerInfos?  The
 * certificates and CRLs before them are skipped.
 */
static int
has_signers(struct ber_reader *r, bool *yes, struct smime_error *err)
{
	struct ber_tlv t;
	int rc;

	for (;;) {
		if ((rc = ber_next(r, &t, err)) != 0)
			return rc == SMIME_E_NOTFOUND ? smime_error_set(err, SMIME_E_INPUT,
			    "RFC 5652 5.1: SignerInfos missing") : rc;
		if (t.cls == BER_UNIVERSAL && t.tag == 17 && t.constructed)
			break;
		if (t.cls != BER_CONTEXT || t.tag > 1)
			return smime_error_set(err, SMIME_E_INPUT, "RFC 5652 5.1: unexpected element "
			    "at offset %llu in SignedData", (unsigned long long)t.offset);
		if ((rc = ber_skip(r, &t, err)) != 0)
			return rc;
	}
	if ((rc = ber_enter(r, &t, err)) != 0)
		return rc;
	rc = ber_next(r, &t, err);
	*yes = rc == 0;
	return rc == SMIME_E_NOTFOUND ? 0 : rc;
}

int
cms_part_kind(GMimePart *part, enum smime_layer_kind *kind_r, struct smime_error *err)
{
	struct signed_stream ss = { 0 };
	struct signed_parts p = { 0 };
	int rc, nid = NID_undef;
	bool signers = true;

	*kind_r = 0;
	if (open_reader(&ss, part) == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "cannot read the S/MIME part");
		goto out;
	}
	if ((rc = ber_content_info(ss.r, &nid, NULL, NULL, err)) != 0)
		goto out;
	switch (nid) {
	case NID_pkcs7_enveloped:
		*kind_r = SMIME_LAYER_ENVELOPED;
		goto out;
	case NID_id_smime_ct_authEnvelopedData:
		*kind_r = SMIME_LAYER_AUTH_ENVELOPED;
		goto out;
	case NID_pkcs7_signed:
		break;
	default:
		rc = smime_error_set(err, SMIME_E_INPUT, "the S/MIME part holds %s, a CMS content "
		    "type that S/MIME does not use", nid != NID_undef ? OBJ_nid2ln(nid) :
		    "an unknown content type");
		goto out;
	}
	/* SignedData: certs-only (RFC 8551 3.6) has neither content nor signers. */
	rc = walk_signed_head(ss.r, &p, err);
	if (rc == 0) {
		*kind_r = SMIME_LAYER_OPAQUE_SIGNED;
		goto out;
	}
	if (rc != SMIME_E_NOTFOUND || (rc = ber_leave(ss.r, err)) != 0 ||
	    (rc = has_signers(ss.r, &signers, err)) != 0)
		goto out;
	*kind_r = signers ? SMIME_LAYER_OPAQUE_SIGNED : SMIME_LAYER_CERTS_ONLY;
out:
	parts_clear(&p);
	ber_reader_free(ss.r);
	BIO_free(ss.in);
	ERR_clear_error();
	return rc;
}

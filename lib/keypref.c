/*
 * keypref: a correspondent's preferred encryption certificate, from the
 * SMIMEEncryptionKeyPreference attribute of a verified signature.
 *
 * RFC 8551 2.5.3: "the SMIMEEncryptionKeyPreference attribute ... allows
 * the signer to unambiguously describe which of the signer's certificates
 * has the signer's preferred encryption key."  Mail clients whose signing
 * and encryption certificates differ (NSS and Thunderbird, Outlook with two
 * certificates) name their encryption certificate this way and carry it in
 * the SignedData.  It is recorded as a contact, with the capabilities of
 * the same signature, only when it validates for encryption against the
 * keystore's anchors and carries an address of the signer: a signature
 * cannot slip someone else's certificate into the address book.
 */
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "internal.h"

/* RFC 5652 10.2.4: IssuerAndSerialNumber. */
typedef struct {
	X509_NAME *issuer;
	ASN1_INTEGER *serial;
} KP_ISN;

ASN1_SEQUENCE(KP_ISN) = {
	ASN1_SIMPLE(KP_ISN, issuer, X509_NAME),
	ASN1_SIMPLE(KP_ISN, serial, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(KP_ISN)

/* RFC 5652 6.2.2: RecipientKeyIdentifier. */
typedef struct {
	ASN1_OCTET_STRING *ski;
	ASN1_GENERALIZEDTIME *date;
	ASN1_TYPE *other;
} KP_RKID;

ASN1_SEQUENCE(KP_RKID) = {
	ASN1_SIMPLE(KP_RKID, ski, ASN1_OCTET_STRING),
	ASN1_OPT(KP_RKID, date, ASN1_GENERALIZEDTIME),
	ASN1_OPT(KP_RKID, other, ASN1_ANY),
} static_ASN1_SEQUENCE_END(KP_RKID)

/*
 * RFC 8551 2.5.3:
 *   SMIMEEncryptionKeyPreference ::= CHOICE {
 *      issuerAndSerialNumber   [0] IssuerAndSerialNumber,
 *      receipentKeyId          [1] RecipientKeyIdentifier,
 *      subjectAltKeyIdentifier [2] SubjectKeyIdentifier }
 * (implicit tags: the module of RFC 8551 is IMPLICIT TAGS).
 */
typedef struct {
	int type;
	union {
		KP_ISN *isn;
		KP_RKID *rkid;
		ASN1_OCTET_STRING *ski;
	} d;
} KP_PREF;

ASN1_CHOICE(KP_PREF) = {
	ASN1_IMP(KP_PREF, d.isn, KP_ISN, 0),
	ASN1_IMP(KP_PREF, d.rkid, KP_RKID, 1),
	ASN1_IMP(KP_PREF, d.ski, ASN1_OCTET_STRING, 2),
} static_ASN1_CHOICE_END(KP_PREF)

/* Does cert match the preference? */
static bool
kp_matches(const KP_PREF *kp, X509 *cert)
{
	const ASN1_OCTET_STRING *ski = NULL, *cski;

	switch (kp->type) {
	case 0:
		return X509_NAME_cmp(X509_get_issuer_name(cert), kp->d.isn->issuer) == 0 &&
		    ASN1_INTEGER_cmp(X509_get0_serialNumber(cert), kp->d.isn->serial) == 0;
	case 1:
		ski = kp->d.rkid->ski;
		break;
	case 2:
		ski = kp->d.ski;
		break;
	default:
		return false;
	}
	cski = X509_get0_subject_key_id(cert);
	return ski != NULL && cski != NULL && ASN1_OCTET_STRING_cmp(ski, cski) == 0;
}

/* Do a and b share an address? */
static bool
same_person(X509 *a, X509 *b)
{
	STACK_OF(OPENSSL_STRING) *em = smime_cert_emails(a);
	bool r = false;

	for (int i = 0; em != NULL && i < sk_OPENSSL_STRING_num(em) && !r; i++)
		r = smime_cert_has_email(b, sk_OPENSSL_STRING_value(em, i));
	for (int i = 0; em != NULL && i < sk_OPENSSL_STRING_num(em); i++)
		OPENSSL_free(sk_OPENSSL_STRING_value(em, i));
	sk_OPENSSL_STRING_free(em);
	return r;
}

/* Does cert validate for S/MIME encryption against the keystore at `at`? */
static bool
valid_for_encryption(struct smime_keystore *ks, X509 *cert, STACK_OF(X509) *extra, time_t at)
{
	X509_STORE *store = NULL;
	STACK_OF(X509) *untrusted = NULL;
	X509_STORE_CTX *ctx = NULL;
	struct smime_error err;
	bool ok = false;

	if (!(smime_cert_roles(cert) & SMIME_ROLE_ENCRYPT) || !smime_cert_email_protection(cert))
		return false;
	if (smime_keystore_trust(ks, &store, &untrusted, &err) != 0)
		return false;
	for (int i = 0; extra != NULL && i < sk_X509_num(extra); i++)
		if (!X509_add_cert(untrusted, sk_X509_value(extra, i), X509_ADD_FLAG_UP_REF))
			goto out;
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(ctx, store, cert, untrusted))
		goto out;
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_ENCRYPT);
	if (at != 0)
		X509_STORE_CTX_set_time(ctx, 0, at);
	ok = X509_verify_cert(ctx) == 1;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	return ok;
}

/* Decode the DER of one SMIMEEncryptionKeyPreference value, wholly. */
static KP_PREF *
kp_decode(const unsigned char *der, size_t len, struct smime_error *err)
{
	const unsigned char *p = der;
	KP_PREF *kp;

	if (len == 0 || len > KEYPREF_MAX) {
		smime_error_set(err, SMIME_E_INPUT, "RFC 8551 2.5.3: an "
		    "SMIMEEncryptionKeyPreference of %zu octets (at most %d)", len, KEYPREF_MAX);
		return NULL;
	}
	kp = (KP_PREF *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(KP_PREF));
	if (kp == NULL || p != der + len) {
		ASN1_item_free((ASN1_VALUE *)kp, ASN1_ITEM_rptr(KP_PREF));
		smime_error_ssl(err, SMIME_E_INPUT, "RFC 8551 2.5.3: the "
		    "SMIMEEncryptionKeyPreference does not decode");
		return NULL;
	}
	return kp;
}

int
keypref_check(const unsigned char *der, size_t len, X509 *cert, bool *match_r,
    struct smime_error *err)
{
	KP_PREF *kp = kp_decode(der, len, err);

	*match_r = false;
	if (kp == NULL)
		return err->code;
	*match_r = cert != NULL && kp_matches(kp, cert);
	ASN1_item_free((ASN1_VALUE *)kp, ASN1_ITEM_rptr(KP_PREF));
	ERR_clear_error();
	return 0;
}

int
keypref_record(struct smime_keystore *ks, CMS_SignerInfo *si, X509 *signer,
    STACK_OF(X509) *certs, const unsigned char *caps, size_t caps_len, time_t signing_time,
    time_t at, struct smime_error *err)
{
	int idx = CMS_signed_get_attr_by_NID(si, NID_id_smime_aa_encrypKeyPref, -1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	KP_PREF *kp = NULL;
	X509 *enc = NULL;
	int rc = 0;

	if (idx < 0)
		return 0;
	/* RFC 8551 2.5.3: a single value; in DER, the CHOICE is a context tag. */
	if ((a = CMS_signed_get_attr(si, idx)) == NULL || X509_ATTRIBUTE_count(a) != 1 ||
	    (t = X509_ATTRIBUTE_get0_type(a, 0)) == NULL || t->type != V_ASN1_OTHER ||
	    t->value.asn1_string == NULL)
		return smime_error_set(err, SMIME_E_INPUT, "RFC 8551 2.5.3: the "
		    "SMIMEEncryptionKeyPreference attribute is not one encoded value");
	if ((kp = kp_decode(t->value.asn1_string->data,
	    (size_t)t->value.asn1_string->length, err)) == NULL) {
		rc = err->code;
		goto out;
	}
	for (int i = 0; certs != NULL && i < sk_X509_num(certs) && enc == NULL; i++)
		if (kp_matches(kp, sk_X509_value(certs, i)))
			enc = sk_X509_value(certs, i);
	if (enc == NULL && kp_matches(kp, signer))
		enc = signer;
	if (enc == NULL)
		goto out;  /* not carried: nothing to record */
	if (enc == signer || X509_cmp(enc, signer) == 0) {
		/* A dual-use signer naming itself (harvested by the caller). */
		rc = smime_keystore_prefer(ks, signer, signing_time, err);
		goto out;
	}
	if (!same_person(signer, enc) || !valid_for_encryption(ks, enc, certs, at)) {
		rc = smime_error_set(err, SMIME_E_BADSIG, "the encryption certificate the signer "
		    "named (SMIMEEncryptionKeyPreference) does not carry the signer's address "
		    "or does not validate for encryption: not recorded");
		goto out;
	}
	if ((rc = smime_keystore_harvest(ks, enc, caps, caps_len, signing_time, err)) != 0)
		goto out;
	rc = smime_keystore_prefer(ks, enc, signing_time, err);
out:
	ASN1_item_free((ASN1_VALUE *)kp, ASN1_ITEM_rptr(KP_PREF));
	ERR_clear_error();
	return rc;
}

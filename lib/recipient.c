/*
 * Finding the own key for an encrypted message (RFC 5652 6.2): each
 * RecipientInfo names its recipient by issuer and serial number or by
 * subject key identifier, and the keystore index finds the key, never a
 * trial of every key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A printable recipient identifier. */
static char *
recipient_id(const X509_NAME *issuer, const ASN1_INTEGER *serial, const ASN1_OCTET_STRING *ski)
{
	char buf[1024];

	if (ski != NULL) {
		size_t used = (size_t)snprintf(buf, sizeof(buf), "subjectKeyIdentifier=");
		for (int i = 0; i < ski->length && used + 3 < sizeof(buf); i++)
			used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%02x", ski->data[i]);
		return strdup(buf);
	}
	if (issuer != NULL && serial != NULL) {
		char *name = X509_NAME_oneline(issuer, NULL, 0);
		BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;
		snprintf(buf, sizeof(buf), "issuer=%s serial=%s", name ? name : "?", hex ? hex : "?");
		OPENSSL_free(name);
		OPENSSL_free(hex);
		BN_free(bn);
		return strdup(buf);
	}
	return strdup("unknown recipient identifier");
}

static void
add_recipient(struct smime_layer *l, char *id)
{
	char **nv;

	if (id == NULL)
		return;
	nv = realloc(l->recipients, (l->n_recipients + 1) * sizeof(char *));
	if (nv == NULL) {
		free(id);
		return;
	}
	l->recipients = nv;
	l->recipients[l->n_recipients++] = id;
}

int
cms_recipient_key(struct smime_keystore *ks, CMS_ContentInfo *cms, struct smime_layer *l,
    X509 **cert_r, EVP_PKEY **key_r, struct smime_error *err)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	int nri = ris ? sk_CMS_RecipientInfo_num(ris) : 0;
	bool keyerr = false;
	/*
	 * The first error other than "not found" (a wrong passphrase) is kept
	 * apart: the lookups of the other recipients, which are not found,
	 * must not hide it.
	 */
	struct smime_error lookup_err, key_err;

	*cert_r = NULL;
	*key_r = NULL;
	if (nri == 0)
		return smime_error_set(err, SMIME_E_INPUT,
		    "RFC 5652 6.1: the encrypted message has no RecipientInfo");
	if (nri > SMIME_MSG_MAX_RECIPIENTS)
		return smime_error_set(err, SMIME_E_INPUT, "%d recipients exceed the limit of %d",
		    nri, SMIME_MSG_MAX_RECIPIENTS);
	smime_error_clear(&lookup_err);
	smime_error_clear(&key_err);
	for (int i = 0; i < nri; i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
		int type = CMS_RecipientInfo_type(ri);
		ASN1_OCTET_STRING *ski = NULL;
		X509_NAME *issuer = NULL;
		ASN1_INTEGER *serial = NULL;

		if (type == CMS_RECIPINFO_TRANS) {
			if (!CMS_RecipientInfo_ktri_get0_signer_id(ri, &ski, &issuer, &serial))
				continue;
			add_recipient(l, recipient_id(issuer, serial, ski));
			/* The index decides: never a trial of every key. */
			if (*cert_r == NULL) {
				int r = smime_keystore_find_key(ks, ski ? NULL : issuer, ski ? NULL : serial,
				    ski, cert_r, key_r, &lookup_err);
				if (r != 0 && r != SMIME_E_NOTFOUND && !keyerr) {
					keyerr = true;
					key_err = lookup_err;
				}
			}
		} else if (type == CMS_RECIPINFO_AGREE) {
			STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);
			for (int j = 0; reks != NULL && j < sk_CMS_RecipientEncryptedKey_num(reks) &&
			    j < SMIME_MSG_MAX_RECIPIENTS; j++) {
				CMS_RecipientEncryptedKey *rek = sk_CMS_RecipientEncryptedKey_value(reks, j);
				ski = NULL;
				issuer = NULL;
				serial = NULL;
				if (!CMS_RecipientEncryptedKey_get0_id(rek, &ski, NULL, NULL, &issuer, &serial))
					continue;
				add_recipient(l, recipient_id(issuer, serial, ski));
				if (*cert_r == NULL) {
					int r = smime_keystore_find_key(ks, ski ? NULL : issuer,
					    ski ? NULL : serial, ski, cert_r, key_r, &lookup_err);
					if (r != 0 && r != SMIME_E_NOTFOUND && !keyerr) {
						keyerr = true;
						key_err = lookup_err;
					}
				}
			}
		} else {
			add_recipient(l, strdup("a recipient of a type this client does not use "
			    "(password or key-encryption key)"));
		}
	}
	if (*cert_r != NULL) {
		smime_cert_fingerprint(*cert_r, l->key);
		return 0;
	}
	if (keyerr)
		return smime_error_set(err, key_err.code, "%s", key_err.message);
	{
		char list[SMIME_ERROR_MAX];
		size_t used = 0;
		list[0] = '\0';
		for (size_t i = 0; i < l->n_recipients && used + 8 < sizeof(list); i++)
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
			    i ? "; " : "", l->recipients[i]);
		return smime_error_set(err, SMIME_E_NOTFOUND,
		    "no key in the keystore for this message; it was encrypted to: %s", list);
	}
}


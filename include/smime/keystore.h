/*
 * libsmime: the keystore.
 *
 * A keystore is one folder holding the user's own identities (certificates
 * with their private keys, including the whole history of encryption keys),
 * contacts' certificates (the address book, with the SMIMECapabilities each
 * contact advertised) and trust anchors.  Private keys are encrypted at rest
 * under the keystore passphrase; every file is 0600 and every change is
 * committed atomically (a crash leaves the previous state).
 *
 * Keys are found by index (issuer and serial number, or subject key
 * identifier), never by trying every key.
 */
#ifndef SMIME_KEYSTORE_H
#define SMIME_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <smime/error.h>

#define SMIME_KEYSTORE_MAX_ENTRIES 100000

struct smime_keystore;

/* What an entry is to the owner of the keystore. */
enum smime_entry_kind {
	SMIME_ENTRY_IDENTITY = 1, /* own certificate with its private key */
	SMIME_ENTRY_CONTACT,      /* someone else's certificate (address book) */
	SMIME_ENTRY_ANCHOR,       /* trusted root or intermediate */
	SMIME_ENTRY_CA,           /* untrusted CA certificate, used to build chains */
	SMIME_ENTRY_DISTRUSTED,   /* on the distrust list: fails every validation */
};

/* A read-only view of one entry.  Owned by the keystore. */
struct smime_entry {
	char fingerprint[65];     /* SHA-256 of the DER, hex */
	enum smime_entry_kind kind;
	int roles;                /* enum smime_cert_role mask */
	bool has_key;
	char *subject;            /* RFC 2253 */
	char *emails;             /* comma-separated, lower case; "" when none */
	time_t not_before, not_after;
	time_t added;
	unsigned char *caps;      /* DER SMIMECapabilities the contact advertised, or NULL */
	size_t caps_len;
	time_t caps_time;         /* signing time of the message they came from */
	time_t preferred;         /* signing time of the newest verified message whose
	                           * signer named this certificate as their encryption
	                           * key (RFC 8551 2.5.3 SMIMEEncryptionKeyPreference);
	                           * 0 when never named */
};

/*
 * Called when a private key must be decrypted and no passphrase was set.
 * Writes a NUL-terminated passphrase into buf[size] and returns 0, or
 * returns non-zero to refuse.
 */
typedef int (*smime_passphrase_cb)(void *arg, char *buf, size_t size);

#define SMIME_KEYSTORE_CREATE 0x1 /* create the folder when missing */

/*
 * Open (and with SMIME_KEYSTORE_CREATE, create) the keystore in dir.
 * The folder is created 0700.  Returns SMIME_E_NOTFOUND when it does not
 * exist and CREATE was not given, SMIME_E_INPUT when its index is damaged.
 */
SMIME_MUST_CHECK int smime_keystore_open(const char *dir, unsigned flags,
    struct smime_keystore **ks_r, struct smime_error *err);

/* Close; the passphrase and any loaded keys are cleansed.  NULL is a no-op. */
void smime_keystore_free(struct smime_keystore *ks);

/* The passphrase is copied and wiped on free.  NULL clears it. */
void smime_keystore_set_passphrase(struct smime_keystore *ks, const char *passphrase);
void smime_keystore_set_passphrase_cb(struct smime_keystore *ks,
    smime_passphrase_cb cb, void *arg);

/* Number of entries, and entry i (0 <= i < count). */
size_t smime_keystore_count(const struct smime_keystore *ks);
const struct smime_entry *smime_keystore_entry(const struct smime_keystore *ks, size_t i);
/* Entry with this fingerprint (64 hex digits, or a unique prefix of at least 8), or NULL. */
const struct smime_entry *smime_keystore_lookup(const struct smime_keystore *ks,
    const char *fingerprint);

/*
 * Add a certificate (and its private key when key is not NULL, which makes
 * it an identity).  Adding a certificate that is present again updates its
 * kind only upwards (contact -> identity when a key arrives; CA -> anchor
 * with kind ANCHOR).  *added_r (may be NULL) says whether anything changed.
 * Changes are staged; smime_keystore_commit writes them.
 */
SMIME_MUST_CHECK int smime_keystore_add(struct smime_keystore *ks, X509 *cert,
    EVP_PKEY *key, enum smime_entry_kind kind, bool *added_r, struct smime_error *err);

/*
 * Record a contact's certificate harvested from a signed message, with the
 * SMIMECapabilities of that message (caps may be NULL) and its signing time.
 * Never makes an anchor.  Newer capabilities replace older ones.
 */
SMIME_MUST_CHECK int smime_keystore_harvest(struct smime_keystore *ks, X509 *cert,
    const unsigned char *caps, size_t caps_len, time_t signing_time,
    struct smime_error *err);

/*
 * Record that a verified message of signing_time named cert as its
 * signer's preferred encryption certificate (RFC 8551 2.5.3).  The caller
 * MUST have validated cert and checked that it carries the signer's
 * address.  The certificate becomes a contact when it is new; the newest
 * preference wins in smime_keystore_recipient.
 */
SMIME_MUST_CHECK int smime_keystore_prefer(struct smime_keystore *ks, X509 *cert,
    time_t signing_time, struct smime_error *err);

/*
 * The newest SMIMECapabilities recorded for the person at address: from
 * any contact or identity certificate that carries the address, whichever
 * message announced them last (capabilities belong to the person, not to
 * one of their certificates).  *caps_r points into the keystore (valid
 * until the next change) or is NULL when nothing was announced.
 */
void smime_keystore_caps(const struct smime_keystore *ks, const char *address,
    const unsigned char **caps_r, size_t *caps_len_r);

/* Remove an entry (and its key) by fingerprint. */
SMIME_MUST_CHECK int smime_keystore_remove(struct smime_keystore *ks,
    const char *fingerprint, struct smime_error *err);

/* Write all staged changes atomically.  A no-op when nothing changed. */
SMIME_MUST_CHECK int smime_keystore_commit(struct smime_keystore *ks, struct smime_error *err);

/* The certificate of an entry (a new reference the caller frees). */
SMIME_MUST_CHECK int smime_keystore_cert(struct smime_keystore *ks, const char *fingerprint,
    X509 **cert_r, struct smime_error *err);

/* The private key of an identity (decrypted with the passphrase; caller frees). */
SMIME_MUST_CHECK int smime_keystore_key(struct smime_keystore *ks, const char *fingerprint,
    EVP_PKEY **key_r, struct smime_error *err);

/*
 * Find an own key by the recipient identifier of a message: issuer and
 * serial number, or subject key identifier (exactly one of the two is
 * non-NULL).  Returns SMIME_E_NOTFOUND when no identity matches.  cert_r
 * and key_r receive new references.
 */
SMIME_MUST_CHECK int smime_keystore_find_key(struct smime_keystore *ks,
    const X509_NAME *issuer, const ASN1_INTEGER *serial, const ASN1_OCTET_STRING *ski,
    X509 **cert_r, EVP_PKEY **key_r, struct smime_error *err);

/*
 * Choose an own identity for a role (SMIME_ROLE_SIGN or SMIME_ROLE_ENCRYPT)
 * and address (NULL: any): valid at `at` (0: now), the newest notBefore
 * first.  Returns the entry's fingerprint in fp_r[65].
 */
SMIME_MUST_CHECK int smime_keystore_identity(struct smime_keystore *ks, int role,
    const char *address, time_t at, char fp_r[65], struct smime_error *err);

/*
 * The newest valid encryption certificate of a contact (or an own identity)
 * for address.  Returns SMIME_E_NOTFOUND when there is none; the entry is
 * returned in entry_r (owned by the keystore) and the certificate in cert_r.
 */
SMIME_MUST_CHECK int smime_keystore_recipient(struct smime_keystore *ks, const char *address,
    time_t at, const struct smime_entry **entry_r, X509 **cert_r, struct smime_error *err);

/*
 * A verification store holding the trust anchors, and a stack of every
 * other certificate in the keystore that may serve to build a chain.  The
 * caller frees both.  Distrusted entries are never anchors (they are
 * among the others), and the store's
 * verify callback (smime_keystore_verify_cb) fails any chain holding a
 * distrusted certificate, or one with a distrusted certificate's subject
 * and public key, with X509_V_ERR_CERT_REJECTED.  A caller that sets its
 * own callback on the X509_STORE_CTX MUST call smime_keystore_verify_cb
 * from it.
 */
SMIME_MUST_CHECK int smime_keystore_trust(struct smime_keystore *ks, X509_STORE **store_r,
    STACK_OF(X509) **untrusted_r, struct smime_error *err);

/* The distrust check of the stores smime_keystore_trust makes (see there). */
int smime_keystore_verify_cb(int ok, X509_STORE_CTX *ctx);

/*
 * Is cert distrusted: on the distrust list itself, or with the subject and
 * public key of a certificate that is (a re-issue or cross-certificate of
 * a distrusted CA)?
 */
bool smime_keystore_distrusted(struct smime_keystore *ks, X509 *cert);

/* The keystore folder. */
const char *smime_keystore_dir(const struct smime_keystore *ks);

/*
 * The default keystore folder: $SMIME_HOME, else $XDG_DATA_HOME/smime, else
 * $HOME/.local/share/smime.  Writes into buf[size]; returns false when it
 * does not fit or no variable is set.
 */
bool smime_keystore_default_dir(char *buf, size_t size);

#endif

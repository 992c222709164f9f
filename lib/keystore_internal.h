/*
 * Internal interfaces of the keystore, for its unit test and its fuzz
 * target.  Nothing here is part of the public API.
 */
#ifndef SMIME_KEYSTORE_INTERNAL_H
#define SMIME_KEYSTORE_INTERNAL_H

#include <stddef.h>

#include <smime/keystore.h>

#include "internal.h"

/* Limits of the index, an untrusted input. */
#define KEYSTORE_INDEX_MAX    (128u * 1024 * 1024) /* whole file */
#define KEYSTORE_LINE_MAX     32768                /* one line, without its newline */
#define KEYSTORE_SUBJECT_MAX  4096                 /* subject, unescaped */
#define KEYSTORE_SKI_MAX      64                   /* subject key identifier octets */
#define KEYSTORE_CAPS_MAX     4096                 /* SMIMECapabilities DER octets */

/* PBKDF2-HMAC-SHA256 iterations for new key files, and the bounds accepted when reading. */
#define KEYSTORE_PBKDF2_ITER      100000
#define KEYSTORE_PBKDF2_ITER_MIN  1000
#define KEYSTORE_PBKDF2_ITER_MAX  10000000

/* A keystore with no folder, for parsing and writing an index in memory. */
struct smime_keystore *keystore_new_detached(void);

/*
 * Replace the entries of ks by those of the index in data[len].  Returns
 * SMIME_E_INPUT naming the line for anything malformed; ks is then empty.
 */
SMIME_MUST_CHECK int keystore_index_parse(struct smime_keystore *ks,
    const unsigned char *data, size_t len, struct smime_error *err);

/* Append the index of ks (as committed) to out. */
SMIME_MUST_CHECK int keystore_index_write(struct smime_keystore *ks, struct buf *out,
    struct smime_error *err);

/*
 * Test hooks.  The iteration count of new key files (tests only: it must
 * lie within KEYSTORE_PBKDF2_ITER_MIN..MAX), and a simulated crash during
 * commit: the commit stops (with SMIME_E_IO) at the named point.
 */
enum keystore_crash {
	KEYSTORE_CRASH_NONE = 0,
	KEYSTORE_CRASH_AFTER_FILES,        /* certificate and key files written */
	KEYSTORE_CRASH_BEFORE_RENAME,      /* new index written to index.tmp, not renamed */
};
/*
 * Give store (made by smime_keystore_trust) the keystore's distrusted
 * certificates and smime_keystore_verify_cb (lib/distrust.c).
 */
SMIME_MUST_CHECK int keystore_distrust_attach(struct smime_keystore *ks, X509_STORE *store,
    struct smime_error *err);

/*
 * Does the chain of cert, built from the keystore, hold a distrusted
 * certificate (or its name and key)?  Other failures of the chain do not
 * count.  Returns 0 or an error.
 */
SMIME_MUST_CHECK int keystore_chain_distrusted(struct smime_keystore *ks, X509 *cert,
    bool *distrusted_r, struct smime_error *err);

void keystore_test_set_iterations(struct smime_keystore *ks, int iterations);
void keystore_test_set_crash(struct smime_keystore *ks, enum keystore_crash point);

#endif

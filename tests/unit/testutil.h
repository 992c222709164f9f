/* Helpers shared by the unit tests: a throw-away PKI and file utilities. */
#ifndef SMIME_TESTUTIL_H
#define SMIME_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <smime/smime.h>

/* "rsa2048", "rsa3072", "p256", "p384", "ed25519"; aborts on failure. */
EVP_PKEY *tu_key(const char *type);

/*
 * A certificate for key, issued by issuer/issuer_key (NULL: self-signed).
 * roles is a mask of enum smime_cert_role; email may be NULL.  Validity
 * runs from now + from_days to now + to_days.  Every certificate has
 * subject and authority key identifiers; end-entity certificates carry
 * EKU emailProtection unless roles has SMIME_ROLE_CA.
 */
X509 *tu_cert(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *key,
    const char *cn, const char *email, int roles, int from_days, int to_days);

/* A fresh temporary folder (mkdtemp); tu_rmrf removes it and frees the string. */
char *tu_tmpdir(void);
void tu_rmrf(char *dir);

/* Whole file into a malloc'ed buffer (NUL-terminated); NULL when missing. */
unsigned char *tu_read_file(const char *path, size_t *len_r);

/* Path of ../shared beside the source tree, or NULL when absent. */
const char *tu_shared(void);

/* Skip the current test with a reason printed (cmocka skip). */
#define TU_SKIP(why) do { print_message("skipped: %s\n", (why)); skip(); } while (0)

#endif

/*
 * libsmime: the one error type of the library.
 *
 * Every fallible function returns an int that is 0 on success and one of
 * the codes below on failure, and fills a caller-provided struct
 * smime_error with the same code and a one-line message.  The library never
 * prints and never exits; the command line maps codes to exit statuses.
 */
#ifndef SMIME_ERROR_H
#define SMIME_ERROR_H

#include <stdbool.h>
#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define SMIME_MUST_CHECK __attribute__((warn_unused_result))
#define SMIME_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SMIME_MUST_CHECK
#define SMIME_PRINTF(f, a)
#endif

/* Codes grouped by category.  Their numeric values are stable. */
enum smime_code {
	SMIME_OK = 0,
	SMIME_E_INPUT = 10,     /* malformed, truncated or hostile input */
	SMIME_E_BADSIG = 20,    /* signature or certificate does not verify */
	SMIME_E_CRYPTO = 21,    /* a cryptographic step failed (wrong password, bad tag) */
	SMIME_E_NOTFOUND = 30,  /* no key, no certificate, no recipient */
	SMIME_E_EXISTS = 31,    /* it exists already (a duplicate name, serial or address) */
	SMIME_E_POLICY = 40,    /* refused by policy (weak algorithm, expired) */
	SMIME_E_USAGE = 50,     /* the caller passed something invalid */
	SMIME_E_IO = 60,        /* reading or writing a file or stream failed */
	SMIME_E_INTERNAL = 70,  /* out of memory, library bug */
};

#define SMIME_ERROR_MAX 512

struct smime_error {
	enum smime_code code;
	char message[SMIME_ERROR_MAX];
};

/*
 * Set err (which may be NULL) to code and a formatted message; returns code
 * so that callers can write `return smime_error_set(err, ...);`.
 */
int smime_error_set(struct smime_error *err, enum smime_code code,
    const char *fmt, ...) SMIME_PRINTF(3, 4);

/*
 * As smime_error_set, and append the first OpenSSL error on the thread's
 * queue (if any) after ": ".  Clears the OpenSSL error queue.
 */
int smime_error_ssl(struct smime_error *err, enum smime_code code,
    const char *fmt, ...) SMIME_PRINTF(3, 4);

/* Reset err to SMIME_OK with an empty message. */
void smime_error_clear(struct smime_error *err);

/* Short name of a code ("input", "bad-signature", ...), never NULL. */
const char *smime_code_name(int code);

#endif

/* The library's one error type. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include <smime/error.h>

static int SMIME_PRINTF(4, 0)
error_vset(struct smime_error *err, enum smime_code code, bool ssl,
    const char *fmt, va_list ap)
{
	unsigned long e;
	size_t used;

	if (err == NULL) {
		if (ssl)
			ERR_clear_error();
		return code;
	}
	err->code = code;
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	if (ssl) {
		e = ERR_peek_last_error();
		used = strlen(err->message);
		if (e != 0 && used + 3 < sizeof(err->message)) {
			const char *reason = ERR_reason_error_string(e);
			if (reason != NULL)
				snprintf(err->message + used, sizeof(err->message) - used,
				    ": %s", reason);
			else
				snprintf(err->message + used, sizeof(err->message) - used,
				    ": OpenSSL error %lx", e);
		}
		ERR_clear_error();
	}
	return code;
}

int
smime_error_set(struct smime_error *err, enum smime_code code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(err, code, false, fmt, ap);
	va_end(ap);
	return code;
}

int
smime_error_ssl(struct smime_error *err, enum smime_code code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(err, code, true, fmt, ap);
	va_end(ap);
	return code;
}

void
smime_error_clear(struct smime_error *err)
{
	if (err == NULL)
		return;
	err->code = SMIME_OK;
	err->message[0] = '\0';
}

const char *
smime_code_name(int code)
{
	switch (code) {
	case SMIME_OK:		return "ok";
	case SMIME_E_INPUT:	return "malformed-input";
	case SMIME_E_BADSIG:	return "invalid-signature";
	case SMIME_E_CRYPTO:	return "crypto";
	case SMIME_E_NOTFOUND:	return "not-found";
	case SMIME_E_EXISTS:	return "exists";
	case SMIME_E_POLICY:	return "policy";
	case SMIME_E_USAGE:	return "usage";
	case SMIME_E_IO:	return "io";
	case SMIME_E_INTERNAL:	return "internal";
	default:		return "unknown";
	}
}

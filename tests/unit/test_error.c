/* Unit tests of lib/error.c. */
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "testutil.h"

static void
test_set_formats_and_returns_code(void **state)
{
	struct smime_error err;

	(void)state;
	assert_int_equal(smime_error_set(&err, SMIME_E_INPUT, "bad %s at %d", "tag", 7),
	    SMIME_E_INPUT);
	assert_int_equal(err.code, SMIME_E_INPUT);
	assert_string_equal(err.message, "bad tag at 7");
	smime_error_clear(&err);
	assert_int_equal(err.code, SMIME_OK);
	assert_string_equal(err.message, "");
}

static void
test_null_error_is_allowed(void **state)
{
	(void)state;
	assert_int_equal(smime_error_set(NULL, SMIME_E_IO, "x"), SMIME_E_IO);
}

static void
test_long_message_is_truncated(void **state)
{
	struct smime_error err;
	char big[2 * SMIME_ERROR_MAX];

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	smime_error_set(&err, SMIME_E_INTERNAL, "%s", big);
	assert_int_equal(strlen(err.message), SMIME_ERROR_MAX - 1);
}

static void
test_ssl_appends_reason_and_clears_queue(void **state)
{
	struct smime_error err;
	const unsigned char junk[] = { 0x30, 0x03, 0x02, 0x01 };
	const unsigned char *p = junk;

	(void)state;
	assert_null(d2i_X509(NULL, &p, sizeof(junk)));
	smime_error_ssl(&err, SMIME_E_INPUT, "certificate");
	assert_true(strncmp(err.message, "certificate: ", 13) == 0);
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_code_names(void **state)
{
	static const struct { int code; const char *name; } rows[] = {
		{ SMIME_OK, "ok" },
		{ SMIME_E_INPUT, "malformed-input" },
		{ SMIME_E_BADSIG, "invalid-signature" },
		{ SMIME_E_NOTFOUND, "not-found" },
		{ SMIME_E_POLICY, "policy" },
		{ 12345, "unknown" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_string_equal(smime_code_name(rows[i].code), rows[i].name);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_formats_and_returns_code),
		cmocka_unit_test(test_null_error_is_allowed),
		cmocka_unit_test(test_long_message_is_truncated),
		cmocka_unit_test(test_ssl_appends_reason_and_clears_queue),
		cmocka_unit_test(test_code_names),
	};
	return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}

/*
 * Two-person key recovery (server/recovery.c): who may approve and export
 * a recovery request, and when.  Every row that must be refused is
 * refused with its status; the rows that pass are the only ones allowed.
 */
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "recovery.h"

static struct store_recovery
mk(int status, const char *requester, int64_t expires)
{
	struct store_recovery r;

	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "r1");
	r.requester = (char *)requester;
	r.approver = (char *)"";
	r.reason = (char *)"why";
	r.status = status;
	r.created = 100;
	r.expires = expires;
	return r;
}

static void
test_table(void **state)
{
	static const struct {
		const char *name;
		int status;                  /* of the request */
		const char *actor;
		enum recovery_status want;
		int64_t now;
		int refused;                 /* 0: allowed, else the HTTP status */
		const char *why;             /* a word of the reason */
	} rows[] = {
		{ "a second token approves", RECOVERY_PENDING, "token:B", RECOVERY_APPROVED, 150, 0, NULL },
		{ "the requester approves its own", RECOVERY_PENDING, "token:A", RECOVERY_APPROVED, 150, 403, "requester" },
		{ "approval one second before expiry", RECOVERY_PENDING, "token:B", RECOVERY_APPROVED, 199, 0, NULL },
		{ "approval at the expiry", RECOVERY_PENDING, "token:B", RECOVERY_APPROVED, 200, 409, "expired" },
		{ "approval after the expiry", RECOVERY_PENDING, "token:B", RECOVERY_APPROVED, 5000, 409, "expired" },
		{ "the requester, after the expiry", RECOVERY_PENDING, "token:A", RECOVERY_APPROVED, 5000, 409, "expired" },
		{ "approved twice", RECOVERY_APPROVED, "token:C", RECOVERY_APPROVED, 150, 409, "approved already" },
		{ "approval of an exported one", RECOVERY_EXPORTED, "token:B", RECOVERY_APPROVED, 150, 409, "exported" },
		{ "the requester exports the approved", RECOVERY_APPROVED, "token:A", RECOVERY_EXPORTED, 150, 0, NULL },
		{ "the approver exports", RECOVERY_APPROVED, "token:B", RECOVERY_EXPORTED, 150, 403, "only the token" },
		{ "export before approval", RECOVERY_PENDING, "token:A", RECOVERY_EXPORTED, 150, 409, "approval" },
		{ "export after the expiry", RECOVERY_APPROVED, "token:A", RECOVERY_EXPORTED, 200, 409, "expired" },
		{ "a second export", RECOVERY_EXPORTED, "token:A", RECOVERY_EXPORTED, 150, 409, "one export" },
		{ "an actor that differs in case only", RECOVERY_PENDING, "TOKEN:A", RECOVERY_APPROVED, 150, 0, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct store_recovery r = mk(rows[i].status, "token:A", 200);
		int status = -1;
		const char *why = recovery_refusal(&r, rows[i].actor, rows[i].want, rows[i].now,
		    &status);

		printf("# %s: %s\n", rows[i].name, why != NULL ? why : "allowed");
		if (rows[i].refused == 0) {
			assert_null(why);
			continue;
		}
		assert_non_null(why);
		assert_int_equal(status, rows[i].refused);
		assert_non_null(strstr(why, rows[i].why));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
	};
	return cmocka_run_group_tests_name("recovery", tests, NULL, NULL);
}

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

/*
 * The tokens of the lineage rows, as the store keeps them: who made each
 * (created_by) and when.  A made by the first start; X and Y by A, well
 * before the request (made at 100 by X, unless a row says otherwise);
 * R by X, R2 by R; Z by Y after the request; E by A at the request's
 * second; U of unknown maker; D1 .. D20 a chain deeper than the walk goes.
 */
static const struct {
	const char *id, *by;
	int64_t created;
} tokens[] = {
	{ "A", "system", 10 }, { "X", "A", 20 }, { "Y", "A", 30 }, { "R", "X", 40 },
	{ "R2", "R", 50 }, { "Z", "Y", 150 }, { "E", "A", 100 }, { "U", "", 20 },
	{ "D1", "A", 11 }, { "D2", "D1", 12 }, { "D3", "D2", 13 }, { "D4", "D3", 14 },
	{ "D5", "D4", 15 }, { "D6", "D5", 16 }, { "D7", "D6", 17 }, { "D8", "D7", 18 },
	{ "D9", "D8", 19 }, { "D10", "D9", 20 }, { "D11", "D10", 21 }, { "D12", "D11", 22 },
	{ "D13", "D12", 23 }, { "D14", "D13", 24 }, { "D15", "D14", 25 }, { "D16", "D15", 26 },
	{ "D17", "D16", 27 }, { "D18", "D17", 28 }, { "D19", "D18", 29 }, { "D20", "D19", 30 },
	{ "C1", "C2", 5 }, { "C2", "C1", 5 },     /* a loop no store should hold */
	{ "M", "gone", 20 },                       /* made by a token that is not there */
};

static int
fake_token_get(void *arg, const char *id, struct store_token *t_r, struct smime_error *err)
{
	int *calls = arg;

	(*calls)++;
	memset(t_r, 0, sizeof(*t_r));
	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
		if (strcmp(tokens[i].id, id) == 0) {
			snprintf(t_r->id, sizeof(t_r->id), "%s", id);
			snprintf(t_r->created_by, sizeof(t_r->created_by), "%s", tokens[i].by);
			t_r->created = tokens[i].created;
			t_r->role = ROLE_ADMIN;
			return 0;
		}
	return smime_error_set(err, SMIME_E_NOTFOUND, "no token %s", id);
}

static void
test_lineage(void **state)
{
	static const struct {
		const char *name;
		const char *requester, *approver;
		const char *why;             /* NULL: allowed, else a word of the reason */
	} rows[] = {
		{ "two tokens made by a third before the request", "token:X", "token:Y", NULL },
		{ "the same token", "token:X", "token:X", "own request" },
		{ "the requester's own recovery token", "token:X", "token:R", "made by the requester" },
		{ "a token made by a token the requester made", "token:X", "token:R2", "made by the requester" },
		{ "the token that made the requester", "token:X", "token:A", "made the requester" },
		{ "the grandparent of the requester", "token:R2", "token:X", "made the requester" },
		{ "the first start's token, for a request of its grandchild", "token:R", "token:A", "made the requester" },
		{ "a token made after the request", "token:X", "token:Z", "after the request" },
		{ "a token made in the request's second", "token:X", "token:E", "after the request" },
		{ "a token of unknown maker", "token:X", "token:U", "who made" },
		{ "a requester of unknown maker", "token:U", "token:Y", "who made" },
		{ "a chain deeper than the walk", "token:X", "token:D20", "who made" },
		{ "a loop", "token:X", "token:C1", "who made" },
		{ "a maker that is not there", "token:X", "token:M", "who made" },
		{ "an approver that is not a token", "token:X", "system", "not a token" },
		{ "an approver token that is not there", "token:X", "token:nobody", "not a token" },
		{ "a shallow chain of another branch", "token:X", "token:D5", NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct store_recovery r = mk(RECOVERY_PENDING, rows[i].requester, 200);
		struct smime_error err;
		int calls = 0;
		const char *why = NULL;
		int rc = recovery_lineage_refusal(&r, rows[i].approver, fake_token_get, &calls, &why,
		    &err);

		printf("# %s: %s\n", rows[i].name, rc != 0 ? err.message : why != NULL ? why :
		    "allowed");
		assert_int_equal(rc, 0);
		/* Bounded: the walk reads at most its depth for each of the two. */
		assert_true(calls <= 2 * (RECOVERY_LINEAGE_MAX + 1));
		if (rows[i].why == NULL) {
			assert_null(why);
			continue;
		}
		assert_non_null(why);
		assert_non_null(strstr(why, rows[i].why));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_lineage),
	};
	return cmocka_run_group_tests_name("recovery", tests, NULL, NULL);
}

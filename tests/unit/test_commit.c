/*
 * The committer (server/commit.c): many requests in one transaction, each
 * under its own savepoint; what the store did not keep is never reported
 * as kept.  Against the SQLite backend for what it does, and against a
 * backend that fails on purpose for what a real database does rarely (a
 * transaction it undoes by itself, a failing commit).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "service.h"
#include "store.h"

static struct metrics metrics;

/* ---- against SQLite -------------------------------------------------- */

struct put {
	const char *key, *value;
	bool fail;           /* write, then fail: the write must be undone */
};

static int
put_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct put *p = arg;
	int rc = store_sqlite.meta_set(tx, p->key, p->value, err);

	if (rc == 0 && p->fail)
		return smime_error_set(err, SMIME_E_POLICY, "refused on purpose");
	return rc;
}

static void *
put_thread(void *arg)
{
	struct committer *c = ((void **)arg)[0];
	struct put *p = ((void **)arg)[1];
	struct smime_error err;

	return (void *)(intptr_t)committer_run(c, put_fn, p, &err);
}

static char *
meta(struct store *st, const char *key)
{
	struct store_tx *tx;
	struct smime_error err;
	char *v = NULL;

	assert_int_equal(store_sqlite.begin(st, false, &tx, &err), 0);
	if (store_sqlite.meta_get(tx, key, &v, &err) != 0)
		v = NULL;
	store_sqlite.rollback(tx);
	return v;
}

static void
test_sqlite_isolation(void **state)
{
	char *dir = tu_tmpdir();
	struct store *st;
	struct smime_error err;
	enum { N = 40 };
	struct put puts[N];
	char keys[N][16];
	pthread_t th[N];
	void *args[N][2];

	(void)state;
	assert_int_equal(store_sqlite.open(dir, &st, &err), 0);
	struct committer *c = committer_new(&store_sqlite, st, 8, &metrics);
	assert_non_null(c);
	/* Many at once, every third refused: the others are kept, those not. */
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		puts[i] = (struct put){ keys[i], "v", i % 3 == 0 };
		args[i][0] = c;
		args[i][1] = &puts[i];
		assert_int_equal(pthread_create(&th[i], NULL, put_thread, args[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		void *rc;
		pthread_join(th[i], &rc);
		assert_int_equal((int)(intptr_t)rc, i % 3 == 0 ? SMIME_E_POLICY : 0);
	}
	for (int i = 0; i < N; i++) {
		char *v = meta(st, keys[i]);
		if (i % 3 == 0)
			assert_null(v);
		else {
			assert_non_null(v);
			assert_string_equal(v, "v");
		}
		free(v);
	}
	committer_free(c);
	store_sqlite.close(st);
	tu_rmrf(dir);
}

/* ---- against a backend that fails on purpose ------------------------- */

/* Faults apply from the second batch on: the first is the gate alone. */
static struct {
	int fail_rollback_to;   /* the database undid the whole transaction */
	int fail_commit;
	int fail_release;
	int batch;
} fake;

#define ARMED(f) (fake.batch >= 2 && fake.f)

static int f_begin(struct store *st, bool w, struct store_tx **tx_r, struct smime_error *e)
{ (void)st; (void)w; (void)e; fake.batch++; *tx_r = (struct store_tx *)&fake; return 0; }
static int f_commit(struct store_tx *tx, struct smime_error *e)
{
	(void)tx;
	if (ARMED(fail_commit))
		return smime_error_set(e, SMIME_E_IO, "disk full");
	return 0;
}
static void f_rollback(struct store_tx *tx) { (void)tx; }
static int f_savepoint(struct store_tx *tx, struct smime_error *e) { (void)tx; (void)e; return 0; }
static int f_release(struct store_tx *tx, struct smime_error *e)
{
	(void)tx;
	return ARMED(fail_release) ? smime_error_set(e, SMIME_E_IO, "release failed") : 0;
}
static int f_rollback_to(struct store_tx *tx, struct smime_error *e)
{
	(void)tx;
	return ARMED(fail_rollback_to) ? smime_error_set(e, SMIME_E_IO, "no such savepoint") : 0;
}

static const struct store_backend fake_backend = {
	.name = "fake", .begin = f_begin, .commit = f_commit, .rollback = f_rollback,
	.savepoint = f_savepoint, .release = f_release, .rollback_to = f_rollback_to,
};

struct step {
	int rc;
	bool gate;           /* the first item waits, so that the others queue behind it */
};

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;

static int
step_fn(struct store_tx *tx, void *arg, struct smime_error *err)
{
	struct step *s = arg;

	(void)tx;
	if (s->gate) {
		pthread_mutex_lock(&gate_lock);
		while (!gate_open)
			pthread_cond_wait(&gate_cond, &gate_lock);
		pthread_mutex_unlock(&gate_lock);
	}
	return s->rc != 0 ? smime_error_set(err, s->rc, "step failed") : 0;
}

static void *
step_thread(void *arg)
{
	struct committer *c = ((void **)arg)[0];
	struct smime_error err;

	return (void *)(intptr_t)committer_run(c, step_fn, ((void **)arg)[1], &err);
}

/* Run steps[0..n): step 0 holds the committer (a batch of its own) until
 * steps 1.. are queued, so that they make one batch.  Results in rc_r. */
static void
run_steps(struct step *steps, int n, int *rc_r)
{
	struct committer *c = committer_new(&fake_backend, NULL, 64, &metrics);
	pthread_t th[16];
	void *args[16][2];

	assert_non_null(c);
	gate_open = false;
	steps[0].gate = true;
	for (int i = 0; i < n; i++) {
		args[i][0] = c;
		args[i][1] = &steps[i];
		assert_int_equal(pthread_create(&th[i], NULL, step_thread, args[i]), 0);
		if (i == 0)
			usleep(100000);   /* the committer has taken step 0 alone */
	}
	usleep(200000);           /* the rest are queued behind it */
	pthread_mutex_lock(&gate_lock);
	gate_open = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	for (int i = 0; i < n; i++) {
		void *rc;
		pthread_join(th[i], &rc);
		rc_r[i] = (int)(intptr_t)rc;
	}
	committer_free(c);
}

static void
test_faults(void **state)
{
	static const struct {
		const char *name;
		int fail_rollback_to, fail_commit, fail_release;
		int step_rc[4];          /* what the four items of the batch return */
		int want[4];             /* what their callers are told */
	} rows[] = {
		/* One refusal is undone alone. */
		{ "a refusal", 0, 0, 0, { 0, SMIME_E_POLICY, 0, 0 },
		  { 0, SMIME_E_POLICY, 0, 0 } },
		/* The database undid everything: the items before report it too. */
		{ "the database rolls back by itself", 1, 0, 0, { 0, SMIME_E_IO, 0, 0 },
		  { SMIME_E_IO, SMIME_E_IO, SMIME_E_IO, SMIME_E_IO } },
		/* A commit that fails fails every item of the batch. */
		{ "the commit fails", 0, 1, 0, { 0, 0, SMIME_E_POLICY, 0 },
		  { SMIME_E_IO, SMIME_E_IO, SMIME_E_POLICY, SMIME_E_IO } },
		/* A failed release leaves the changes in the transaction: all fail. */
		{ "a release fails", 0, 0, 1, { 0, 0, 0, 0 },
		  { SMIME_E_IO, SMIME_E_IO, SMIME_E_IO, SMIME_E_IO } },
	};

	(void)state;
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		struct step steps[5] = { { 0, false } };
		int rc[5];

		memset(&fake, 0, sizeof(fake));
		fake.fail_rollback_to = rows[r].fail_rollback_to;
		fake.fail_commit = rows[r].fail_commit;
		fake.fail_release = rows[r].fail_release;
		for (int i = 0; i < 4; i++)
			steps[i + 1].rc = rows[r].step_rc[i];
		run_steps(steps, 5, rc);
		assert_int_equal(rc[0], 0);
		assert_int_equal(fake.batch, 2);
		for (int i = 0; i < 4; i++) {
			if (rc[i + 1] != rows[r].want[i])
				print_message("%s: item %d gave %d, wanted %d\n", rows[r].name, i + 1,
				    rc[i + 1], rows[r].want[i]);
			assert_int_equal(rc[i + 1], rows[r].want[i]);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sqlite_isolation),
		cmocka_unit_test(test_faults),
	};
	return cmocka_run_group_tests_name("commit", tests, NULL, NULL);
}

/*
 * smimed: the committer, group commit for every state change.
 *
 * Requests queue a function and wait; one thread takes what is queued (up
 * to batch_max), runs each function inside one write transaction, each
 * under its own savepoint so that a failing request is undone alone, and
 * commits once.  One durable commit (one fsync) then serves many requests,
 * and the store sees a single writer.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "service.h"

struct item {
	commit_fn fn;
	void *arg;
	int rc;
	struct smime_error err;
	bool done;
	struct item *next;
};

struct committer {
	const struct store_backend *be;
	struct store *st;
	struct metrics *m;
	size_t batch_max;
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	struct item *head, **tail;
	bool stop;
	pthread_t thread;
};

static void
run_batch(struct committer *c, struct item *batch)
{
	struct store_tx *tx = NULL;
	struct smime_error err;
	int rc;

	smime_error_clear(&err);
	rc = c->be->begin(c->st, true, &tx, &err);
	for (struct item *it = batch; it != NULL && rc == 0; it = it->next) {
		smime_error_clear(&it->err);
		if ((it->rc = c->be->savepoint(tx, &it->err)) != 0) {
			/* The transaction cannot take more: fail the batch. */
			rc = it->rc;
			err = it->err;
			break;
		}
		it->rc = it->fn(tx, it->arg, &it->err);
		if (it->rc == 0) {
			if ((it->rc = c->be->release(tx, &it->err)) != 0) {
				/* Its changes would stay in the transaction: fail the batch. */
				rc = it->rc;
				err = it->err;
				break;
			}
		} else if (c->be->rollback_to(tx, &err) != 0) {
			/* The database undid the transaction itself (an I/O error,
			 * a full disk): everything before is gone too. */
			rc = err.code != 0 ? err.code : SMIME_E_IO;
			break;
		}
	}
	if (rc == 0)
		rc = c->be->commit(tx, &err);
	else if (tx != NULL)
		c->be->rollback(tx);
	if (rc != 0) {
		/* Nothing of this batch is stored: no item may report success,
		 * and items not run yet fail with the same error. */
		for (struct item *it = batch; it != NULL; it = it->next)
			if (it->rc == 0) {
				it->rc = rc;
				it->err = err;
			}
		atomic_fetch_add(&c->m->store_errors, 1);
		log_event("error", "store.commit", "message", err.message, NULL);
	}
}

static void *
committer_main(void *arg)
{
	struct committer *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (c->head == NULL && !c->stop)
			pthread_cond_wait(&c->work, &c->lock);
		if (c->head == NULL && c->stop)
			break;
		/* Take up to batch_max items off the queue. */
		struct item *batch = c->head, *last = batch;
		size_t n = 1;
		while (last->next != NULL && n < c->batch_max) {
			last = last->next;
			n++;
		}
		c->head = last->next;
		if (c->head == NULL)
			c->tail = &c->head;
		last->next = NULL;
		pthread_mutex_unlock(&c->lock);

		run_batch(c, batch);

		pthread_mutex_lock(&c->lock);
		for (struct item *it = batch, *next; it != NULL; it = next) {
			next = it->next;
			it->done = true;
		}
		pthread_cond_broadcast(&c->done);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

struct committer *
committer_new(const struct store_backend *be, struct store *st, size_t batch_max,
    struct metrics *m)
{
	struct committer *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->be = be;
	c->st = st;
	c->m = m;
	c->batch_max = batch_max > 0 ? batch_max : 1;
	c->tail = &c->head;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->work, NULL);
	pthread_cond_init(&c->done, NULL);
	if (pthread_create(&c->thread, NULL, committer_main, c) != 0) {
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->work);
		pthread_cond_destroy(&c->done);
		free(c);
		return NULL;
	}
	return c;
}

void
committer_free(struct committer *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->work);
	pthread_cond_destroy(&c->done);
	free(c);
}

int
committer_run(struct committer *c, commit_fn fn, void *arg, struct smime_error *err)
{
	struct item it = { .fn = fn, .arg = arg };

	pthread_mutex_lock(&c->lock);
	if (c->stop) {
		pthread_mutex_unlock(&c->lock);
		return smime_error_set(err, SMIME_E_IO, "the service is stopping");
	}
	*c->tail = &it;
	c->tail = &it.next;
	pthread_cond_signal(&c->work);
	while (!it.done)
		pthread_cond_wait(&c->done, &c->lock);
	pthread_mutex_unlock(&c->lock);
	if (it.rc != 0 && err != NULL)
		*err = it.err;
	return it.rc;
}

/*
 * The outbox of claimed executions. A claim (PENDING) and the push of its
 * Celery task to Redis cannot be one transaction, so the push is recorded
 * after it succeeds: per execution (enqueued_at), or for all the claims of
 * a dispatcher round at once (dispatch_rounds_pushed), and a reconciler pushes again the
 * PENDING executions that stay without that record for too long: the
 * claimer died, or Redis failed, between the two. Pushing a task twice is
 * harmless, as the worker runs an execution only from PENDING.
 */
#ifndef SIGTRIG_EXECUTION_STORE_OUTBOX_H
#define SIGTRIG_EXECUTION_STORE_OUTBOX_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Records, in one statement, that the tasks of these executions are in
 * the Redis queue: enqueued_at = now() where it is not set yet (whatever
 * the status: a worker may have started one already). Call it once the
 * LPUSH succeeded. Returns 0, or -1 with err filled.
 */
int execution_store_mark_enqueued(PGconn *conn, const char *const *execution_ids, size_t count,
				  char *err, size_t errsize);
/* The same for every execution claimed in these dispatcher rounds (their ids, UUIDs). */
int execution_store_mark_rounds_pushed(PGconn *conn, const char *const *round_ids, size_t count, char *err,
				       size_t errsize);

/*
 * Begins a transaction, folds the round records older than older_than_s
 * into their executions still PENDING (and deletes them), and locks (FOR UPDATE SKIP LOCKED, so that several
 * reconcilers never take the same row) up to `limit` PENDING executions
 * created more than older_than_s seconds ago whose task is not known to
 * be enqueued, oldest first; one without a task id is given one. Returns
 * an array of {"execution_id", "pipeline_id", "task_id", "signal_ids",
 * "triggered_by"} with the transaction left open: the caller pushes the
 * tasks, then calls execution_store_mark_enqueued() and
 * execution_store_outbox_end(commit = true), or ends it with commit =
 * false when the push failed. NULL with err filled (and nothing left
 * open) on error.
 */
json_t *execution_store_lock_unenqueued(PGconn *conn, long older_than_s, int limit, char *err,
					size_t errsize);
/* COMMIT or ROLLBACK of the transaction execution_store_lock_unenqueued() began. */
int execution_store_outbox_end(PGconn *conn, bool commit, char *err, size_t errsize);

#endif

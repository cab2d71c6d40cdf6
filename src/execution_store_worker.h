/*
 * The worker's side of an execution, always under a lease: it starts the
 * PENDING execution the dispatcher claimed, or records a run itself for a
 * task sent by plain Python send_task() (no execution id, same one-live-
 * execution rule as a claim), takes over a RUNNING one whose worker died,
 * and finishes it.
 *
 * Every run has an owner token, unique to that run. Moving an execution
 * to RUNNING writes the token and lease_expires_at = now() + lease_s;
 * only the holder of the token renews (execution_store_lease.h) or
 * finishes it, so a worker that lost its lease (presumed dead and reaped,
 * or taken over) can never overwrite what happened since.
 */
#ifndef SIGTRIG_EXECUTION_STORE_WORKER_H
#define SIGTRIG_EXECUTION_STORE_WORKER_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "execution_store.h"

/* Space for a run's owner token (a UUID) and its NUL. */
#define EXECUTION_LEASE_OWNER_SIZE 37

/* A fresh owner token for one run. */
void execution_lease_owner_new(char owner[EXECUTION_LEASE_OWNER_SIZE]);

/*
 * PENDING -> RUNNING under a lease of lease_s seconds held by `owner`.
 * Returns 1 when this call started it, 0 when it was not PENDING (already
 * running, held or finished: the task is a duplicate), -1 on error.
 */
int execution_store_start_leased(PGconn *conn, const char *execution_id, const char *owner,
				 long lease_s, char *err, size_t errsize);

/*
 * Inserts a RUNNING execution with a fresh id (into execution_id,
 * EXECUTION_ID_LENGTH + 1 bytes) under a lease held by `owner`. Returns 1
 * inserted, 0 when the pipeline already has a PENDING, RUNNING or HOLDING
 * execution, -1 on error.
 */
int execution_store_insert_running(PGconn *conn, const char *pipeline_id, const char *task_id,
				   const json_t *signal_ids, const char *triggered_by,
				   const char *owner, long lease_s, char *execution_id, char *err,
				   size_t errsize);

enum execution_resume {
	EXECUTION_RESUME_REFUSED = 0,    /* not RUNNING for this task (finished, held, another task) */
	EXECUTION_RESUME_TAKEN = 1,      /* the caller holds the lease now and may run it */
	EXECUTION_RESUME_LEASE_HELD = 2, /* RUNNING under another run's live lease: a duplicate */
};

/*
 * Takes over a RUNNING execution of the same task: a task redelivered
 * because its first worker died, or one whose start this run sent just
 * before the connection broke (`owner` then already holds the lease). It
 * is taken only when the lease is this owner's, has run out, or was never
 * set (a run from before leases); the lease is then renewed for `owner`.
 * Returns an enum execution_resume, or -1 on error.
 */
int execution_store_resume(PGconn *conn, const char *execution_id, const char *task_id,
			   const char *owner, long lease_s, char *err, size_t errsize);

/*
 * A task redelivered after its worker died, whose execution the reaper
 * has since failed ("lease expired: ..."): the task runs again, as a
 * Celery task comes back after the visibility timeout, but as a new
 * RUNNING execution under a lease held by `owner` (into new_id,
 * EXECUTION_ID_LENGTH + 1 bytes): the failed one stays as it was. Only
 * when the task's newest execution is such a reaped one, fewer than
 * max_runs executions of the task exist (a task that kills its worker
 * each time stops there), and the pipeline has no live execution.
 * Returns 1 inserted, 0 when it must not run, -1 on error.
 */
int execution_store_rerun_reaped(PGconn *conn, const char *task_id, const char *owner, long lease_s, int max_runs,
				 char *new_id, char *err, size_t errsize);

/*
 * RUNNING -> SUCCEEDED/FAILED with the result and error text, only while
 * `owner` still holds the lease. An execution moved to HOLDING while it
 * ran keeps that status (it must go on blocking its pipeline) but gets
 * the result. A retry after a lost reply finds this run's own status
 * and writes it again. Returns 1 recorded, 0 when the lease was lost (the
 * reaper failed it, or another run took it over: nothing is written), -1
 * on error.
 */
int execution_store_finish_leased(PGconn *conn, const char *execution_id, const char *owner,
				  bool succeeded, const json_t *result, const char *error, char *err,
				  size_t errsize);

/*
 * RUNNING -> PENDING for a retry, only while `owner` holds the lease: the
 * execution keeps blocking its pipeline until the retried task runs it
 * again. The lease is cleared, enqueued_at set (the retry is in the queue,
 * so the reconciler leaves it alone), and the failed attempt's result and
 * error (what the retry is for) recorded. Returns 1 moved, 0 when the
 * lease was lost, -1 on error.
 */
int execution_store_retry_leased(PGconn *conn, const char *execution_id, const char *owner,
				 const json_t *result, const char *error, char *err, size_t errsize);

/* The claim key of an execution into key: "" for a whole-pipeline claim, else its ticker. 0, or -1 with err. */
int execution_store_claim_key(PGconn *conn, const char *execution_id, char *key, size_t size, char *err,
			      size_t errsize);

#endif

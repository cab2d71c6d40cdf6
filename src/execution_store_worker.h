/*
 * Executions a worker creates itself. A task the dispatcher sent names
 * the PENDING execution it claimed; one sent by plain Python send_task()
 * has none, so the worker records its run directly as RUNNING, under the
 * same one-live-execution-per-pipeline rule as a claim.
 */
#ifndef SIGTRIG_EXECUTION_STORE_WORKER_H
#define SIGTRIG_EXECUTION_STORE_WORKER_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "execution_store.h"

/*
 * Inserts a RUNNING execution with a fresh id (into execution_id,
 * EXECUTION_ID_LENGTH + 1 bytes). Returns 1 inserted, 0 when the pipeline
 * already has a PENDING/RUNNING execution, -1 on error.
 */
int execution_store_insert_running(PGconn *conn, const char *pipeline_id, const char *task_id,
				   const json_t *signal_ids, const char *triggered_by,
				   char *execution_id, char *err, size_t errsize);

/*
 * Takes over a RUNNING execution of the same task: a task redelivered
 * because its first worker died, or one whose start this worker sent just
 * before the connection broke. Returns 1 when the caller may run it, 0
 * when not (finished, or started by another task), -1 on error.
 */
int execution_store_resume(PGconn *conn, const char *execution_id, const char *task_id, char *err,
			   size_t errsize);

#endif

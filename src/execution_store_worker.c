#include "execution_store_worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "ids.h"

/* The lease columns as one statement sets them for the owner in $owner and lease_s in $seconds. */
#define LEASE_FOR(owner, seconds)                                                              \
	" lease_owner = " owner ", lease_renewed_at = now(),"                                  \
	" lease_expires_at = now() + make_interval(secs => " seconds "::double precision)"

void execution_lease_owner_new(char owner[EXECUTION_LEASE_OWNER_SIZE])
{
	ids_random_uuid(owner);
}

/* Runs a statement that returns the rows it changed; 1 when it changed one, 0 when none, -1 on error. */
static int changed_one_row(PGconn *conn, const char *sql, int count, const char *const *values,
			   char *err, size_t errsize)
{
	PGresult *result = db_query(conn, sql, count, values, err, errsize);
	if (result == NULL)
		return -1;
	int changed = PQntuples(result) == 1;
	PQclear(result);
	return changed;
}

int execution_store_start_leased(PGconn *conn, const char *execution_id, const char *owner,
				 long lease_s, char *err, size_t errsize)
{
	char lease_text[32];
	snprintf(lease_text, sizeof lease_text, "%ld", lease_s);
	const char *values[] = { execution_id, owner, lease_text };
	/* Only a PENDING execution starts: a duplicate task finds it RUNNING or done and is dropped. */
	return changed_one_row(conn,
			       "UPDATE executions SET status = 'RUNNING', started_at = now(),"
			       LEASE_FOR("$2", "$3")
			       " WHERE id = $1::uuid AND status = 'PENDING' RETURNING id",
			       3, values, err, errsize);
}

int execution_store_insert_running(PGconn *conn, const char *pipeline_id, const char *task_id,
				   const json_t *signal_ids, const char *triggered_by,
				   const char *owner, long lease_s, char *execution_id, char *err,
				   size_t errsize)
{
	ids_time_ordered_uuid(execution_id);
	char *signal_ids_text = signal_ids != NULL ? json_dumps(signal_ids, JSON_COMPACT) : strdup("[]");
	if (signal_ids_text == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	char lease_text[32];
	snprintf(lease_text, sizeof lease_text, "%ld", lease_s);
	const char *values[] = { execution_id, pipeline_id,   triggered_by, signal_ids_text,
				 task_id,      owner,         lease_text };
	/* The partial unique index turns a second live execution into a conflict, as for a claim. */
	int inserted = changed_one_row(
		conn,
		"INSERT INTO executions (id, pipeline_id, status, triggered_by, signal_ids, task_id,"
		"                        started_at, lease_owner, lease_renewed_at, lease_expires_at)"
		" VALUES ($1::uuid, $2::uuid, 'RUNNING', $3,"
		"         ARRAY(SELECT jsonb_array_elements_text($4::jsonb)), $5, now(), $6, now(),"
		"         now() + make_interval(secs => $7::double precision))"
		" ON CONFLICT (pipeline_id, claim_key) WHERE status IN ('PENDING', 'RUNNING', 'HOLDING')"
		" DO NOTHING RETURNING id",
		7, values, err, errsize);
	free(signal_ids_text);
	return inserted;
}

int execution_store_rerun_reaped(PGconn *conn, const char *task_id, const char *owner, long lease_s, int max_runs,
				 char *new_id, char *err, size_t errsize)
{
	ids_time_ordered_uuid(new_id);
	char lease_text[32], max_text[16];
	snprintf(lease_text, sizeof lease_text, "%ld", lease_s);
	snprintf(max_text, sizeof max_text, "%d", max_runs);
	const char *values[] = { task_id, new_id, owner, lease_text, max_text };
	return changed_one_row(
		conn,
		"WITH newest AS (SELECT * FROM executions WHERE task_id = $1 ORDER BY created_at DESC, id LIMIT 1),"
		" runs AS (SELECT count(*) AS n FROM executions WHERE task_id = $1)"
		" INSERT INTO executions (id, pipeline_id, status, triggered_by, signal_ids, task_id, claim_key,"
		"                         enqueued_at, started_at, lease_owner, lease_renewed_at, lease_expires_at)"
		" SELECT $2::uuid, newest.pipeline_id, 'RUNNING', newest.triggered_by, newest.signal_ids, $1,"
		"        newest.claim_key, now(), now(), $3, now(), now() + make_interval(secs => $4::double precision)"
		" FROM newest, runs"
		" WHERE newest.status = 'FAILED' AND newest.error LIKE 'lease expired:%' AND runs.n < $5::integer"
		" ON CONFLICT (pipeline_id, claim_key) WHERE status IN ('PENDING', 'RUNNING', 'HOLDING')"
		" DO NOTHING RETURNING id",
		5, values, err, errsize);
}

int execution_store_resume(PGconn *conn, const char *execution_id, const char *task_id,
			   const char *owner, long lease_s, char *err, size_t errsize)
{
	char lease_text[32];
	snprintf(lease_text, sizeof lease_text, "%ld", lease_s);
	const char *values[] = { execution_id, task_id, owner, lease_text };
	/*
	 * The lease test is in the UPDATE's own WHERE, so PostgreSQL checks it
	 * again on the newest row version when two runs race for one
	 * execution: only the first takes it. The second column reads the
	 * statement's snapshot, before the update, to tell a live lease apart.
	 */
	PGresult *result = db_query(
		conn,
		"WITH taken AS ("
		"  UPDATE executions SET started_at = now()," LEASE_FOR("$3", "$4")
		"  WHERE id = $1::uuid AND status = 'RUNNING' AND task_id = $2"
		"    AND (lease_owner = $3 OR lease_expires_at IS NULL OR lease_expires_at < now())"
		"  RETURNING id)"
		" SELECT EXISTS (SELECT 1 FROM taken),"
		"        EXISTS (SELECT 1 FROM executions WHERE id = $1::uuid AND status = 'RUNNING'"
		"                AND task_id = $2 AND lease_expires_at >= now())",
		4, values, err, errsize);
	if (result == NULL)
		return -1;
	int outcome = EXECUTION_RESUME_REFUSED;
	if (PQntuples(result) == 1 && PQgetvalue(result, 0, 0)[0] == 't')
		outcome = EXECUTION_RESUME_TAKEN;
	else if (PQntuples(result) == 1 && PQgetvalue(result, 0, 1)[0] == 't')
		outcome = EXECUTION_RESUME_LEASE_HELD;
	PQclear(result);
	return outcome;
}

int execution_store_finish_leased(PGconn *conn, const char *execution_id, const char *owner,
				  bool succeeded, const json_t *result, const char *error, char *err,
				  size_t errsize)
{
	char *result_text = result != NULL ? json_dumps(result, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	/*
	 * The same status once more is this run's own earlier finish, whose
	 * reply a broken connection lost: writing it again is harmless. The
	 * reaper clears the owner of what it fails, so a reaped run never
	 * matches.
	 */
	const char *values[] = { execution_id, owner, succeeded ? "SUCCEEDED" : "FAILED", result_text,
				 error };
	int finished = changed_one_row(
		conn,
		"UPDATE executions SET status = CASE status WHEN 'HOLDING' THEN status ELSE $3 END,"
		" finished_at = now(), result = $4::jsonb, error = $5"
		" WHERE id = $1::uuid AND lease_owner = $2"
		"   AND (status IN ('RUNNING', 'HOLDING') OR status = $3)"
		" RETURNING id",
		5, values, err, errsize);
	free(result_text);
	return finished;
}

int execution_store_retry_leased(PGconn *conn, const char *execution_id, const char *owner,
				 const json_t *result, const char *error, char *err, size_t errsize)
{
	char *result_text = result != NULL ? json_dumps(result, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	const char *values[] = { execution_id, owner, result_text, error };
	int moved = changed_one_row(conn,
				    "UPDATE executions SET status = 'PENDING', enqueued_at = now(),"
				    " lease_owner = NULL, lease_expires_at = NULL, result = $3::jsonb, error = $4"
				    " WHERE id = $1::uuid AND lease_owner = $2 AND status = 'RUNNING'"
				    " RETURNING id",
				    4, values, err, errsize);
	free(result_text);
	return moved;
}

int execution_store_claim_key(PGconn *conn, const char *execution_id, char *key, size_t size, char *err,
			      size_t errsize)
{
	const char *values[] = { execution_id };
	PGresult *result = db_query(conn, "SELECT claim_key FROM executions WHERE id = $1::uuid", 1, values, err,
				    errsize);
	if (result == NULL)
		return -1;
	snprintf(key, size, "%s", PQntuples(result) == 1 ? PQgetvalue(result, 0, 0) : "");
	PQclear(result);
	return 0;
}

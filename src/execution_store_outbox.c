#include "execution_store_outbox.h"

#include <stdio.h>
#include <stdlib.h>

#include "db.h"

/* Runs a statement whose one parameter ($1) is the ids as a PostgreSQL array. */
static int run_with_ids(PGconn *conn, const char *sql, const char *const *ids, size_t count, char *err,
			size_t errsize)
{
	if (count == 0)
		return 0;
	char *ids_text = db_text_array_literal(ids, count);
	if (ids_text == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	const char *values[] = { ids_text };
	PGresult *result = db_query(conn, sql, 1, values, err, errsize);
	free(ids_text);
	if (result == NULL)
		return -1;
	PQclear(result);
	return 0;
}

int execution_store_mark_enqueued(PGconn *conn, const char *const *execution_ids, size_t count,
				  char *err, size_t errsize)
{
	return run_with_ids(conn,
			    "UPDATE executions SET enqueued_at = now()"
			    " WHERE id = ANY ($1::uuid[]) AND enqueued_at IS NULL",
			    execution_ids, count, err, errsize);
}

int execution_store_mark_rounds_pushed(PGconn *conn, const char *const *round_ids, size_t count, char *err,
				       size_t errsize)
{
	return run_with_ids(conn,
			    "INSERT INTO dispatch_rounds_pushed (round_id)"
			    " SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING",
			    round_ids, count, err, errsize);
}

static int run_command(PGconn *conn, const char *sql, char *err, size_t errsize)
{
	PGresult *result = db_query(conn, sql, 0, NULL, err, errsize);
	if (result == NULL)
		return -1;
	PQclear(result);
	return 0;
}

/* Ends a failed transaction; its own failure adds nothing to the error already reported. */
static void roll_back_quietly(PGconn *conn)
{
	char ignored[256];
	run_command(conn, "ROLLBACK", ignored, sizeof ignored);
}

json_t *execution_store_lock_unenqueued(PGconn *conn, long older_than_s, int limit, char *err,
					size_t errsize)
{
	if (run_command(conn, "BEGIN", err, errsize) != 0)
		return NULL;
	char age_text[32], limit_text[16];
	snprintf(age_text, sizeof age_text, "%ld", older_than_s);
	snprintf(limit_text, sizeof limit_text, "%d", limit);
	const char *values[] = { age_text, limit_text };
	/*
	 * A round record old enough to be looked at is folded into the
	 * executions it covers that are still PENDING (the others need no
	 * record), then dropped. It is old enough only when its executions are
	 * too, so the selection below, in the same transaction, sees them
	 * recorded either way.
	 */
	PGresult *folded = db_query(
		conn,
		"WITH settled AS ("
		"  DELETE FROM dispatch_rounds_pushed"
		"  WHERE pushed_at < now() - make_interval(secs => $1::double precision)"
		"  RETURNING round_id, pushed_at)"
		" UPDATE executions e SET enqueued_at = s.pushed_at FROM settled s"
		" WHERE e.status = 'PENDING' AND e.enqueued_at IS NULL AND e.dispatch_round = s.round_id",
		1, values, err, errsize);
	if (folded == NULL) {
		roll_back_quietly(conn);
		return NULL;
	}
	PQclear(folded);
	json_t *rows = db_query_rows(
		conn,
		"WITH due AS ("
		"  SELECT id FROM executions"
		"  WHERE status = 'PENDING' AND enqueued_at IS NULL"
		"    AND created_at < now() - make_interval(secs => $1::double precision)"
		"    AND NOT EXISTS (SELECT 1 FROM dispatch_rounds_pushed r WHERE r.round_id = executions.dispatch_round)"
		"  ORDER BY created_at LIMIT $2::integer FOR UPDATE SKIP LOCKED)"
		" UPDATE executions e SET task_id = coalesce(e.task_id, gen_random_uuid()::text)"
		" FROM due WHERE e.id = due.id"
		" RETURNING e.id::text AS execution_id, e.pipeline_id::text AS pipeline_id, e.task_id,"
		"           to_jsonb(e.signal_ids) AS signal_ids, e.triggered_by",
		2, values, err, errsize);
	if (rows == NULL)
		roll_back_quietly(conn);
	return rows;
}

int execution_store_outbox_end(PGconn *conn, bool commit, char *err, size_t errsize)
{
	return run_command(conn, commit ? "COMMIT" : "ROLLBACK", err, errsize);
}

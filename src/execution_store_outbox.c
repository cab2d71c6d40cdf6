#include "execution_store_outbox.h"

#include <stdio.h>
#include <stdlib.h>

#include "db.h"

int execution_store_mark_enqueued(PGconn *conn, const char *const *execution_ids, size_t count,
				  char *err, size_t errsize)
{
	if (count == 0)
		return 0;
	char *ids_text = db_text_array_literal(execution_ids, count);
	if (ids_text == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	const char *values[] = { ids_text };
	PGresult *result = db_query(conn,
				    "UPDATE executions SET enqueued_at = now()"
				    " WHERE id = ANY ($1::uuid[]) AND enqueued_at IS NULL",
				    1, values, err, errsize);
	free(ids_text);
	if (result == NULL)
		return -1;
	PQclear(result);
	return 0;
}

static int run_command(PGconn *conn, const char *sql, char *err, size_t errsize)
{
	PGresult *result = db_query(conn, sql, 0, NULL, err, errsize);
	if (result == NULL)
		return -1;
	PQclear(result);
	return 0;
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
	json_t *rows = db_query_rows(
		conn,
		"WITH due AS ("
		"  SELECT id FROM executions"
		"  WHERE status = 'PENDING' AND enqueued_at IS NULL"
		"    AND created_at < now() - make_interval(secs => $1::double precision)"
		"  ORDER BY created_at LIMIT $2::integer FOR UPDATE SKIP LOCKED)"
		" UPDATE executions e SET task_id = coalesce(e.task_id, gen_random_uuid()::text)"
		" FROM due WHERE e.id = due.id"
		" RETURNING e.id::text AS execution_id, e.pipeline_id::text AS pipeline_id, e.task_id,"
		"           to_jsonb(e.signal_ids) AS signal_ids, e.triggered_by",
		2, values, err, errsize);
	if (rows == NULL) {
		char ignored[256];
		run_command(conn, "ROLLBACK", ignored, sizeof ignored);
	}
	return rows;
}

int execution_store_outbox_end(PGconn *conn, bool commit, char *err, size_t errsize)
{
	return run_command(conn, commit ? "COMMIT" : "ROLLBACK", err, errsize);
}

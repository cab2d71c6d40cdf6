#include "execution_store_worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "db.h"

int execution_store_insert_running(PGconn *conn, const char *pipeline_id, const char *task_id,
				   const json_t *signal_ids, const char *triggered_by,
				   char *execution_id, char *err, size_t errsize)
{
	uuid_t id;
	uuid_generate_random(id);
	uuid_unparse_lower(id, execution_id);
	char *signal_ids_text = signal_ids != NULL ? json_dumps(signal_ids, JSON_COMPACT) : strdup("[]");
	if (signal_ids_text == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	const char *values[] = { execution_id, pipeline_id, triggered_by, signal_ids_text, task_id };
	/* The partial unique index turns a second live execution into a conflict, as for a claim. */
	PGresult *result = db_query(
		conn,
		"INSERT INTO executions (id, pipeline_id, status, triggered_by, signal_ids, task_id,"
		"                        started_at)"
		" VALUES ($1::uuid, $2::uuid, 'RUNNING', $3,"
		"         ARRAY(SELECT jsonb_array_elements_text($4::jsonb)), $5, now())"
		" ON CONFLICT (pipeline_id) WHERE status IN ('PENDING', 'RUNNING') DO NOTHING"
		" RETURNING id",
		5, values, err, errsize);
	free(signal_ids_text);
	if (result == NULL)
		return -1;
	int inserted = PQntuples(result) == 1;
	PQclear(result);
	return inserted;
}

int execution_store_resume(PGconn *conn, const char *execution_id, const char *task_id, char *err,
			   size_t errsize)
{
	const char *values[] = { execution_id, task_id };
	PGresult *result = db_query(conn,
				    "UPDATE executions SET started_at = now()"
				    " WHERE id = $1::uuid AND status = 'RUNNING' AND task_id = $2"
				    " RETURNING id",
				    2, values, err, errsize);
	if (result == NULL)
		return -1;
	int resumed = PQntuples(result) == 1;
	PQclear(result);
	return resumed;
}

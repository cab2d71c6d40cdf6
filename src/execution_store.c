#include "execution_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "db.h"

#define EXECUTION_COLUMNS                                                                     \
	"e.id, e.pipeline_id, p.name AS pipeline_name, e.status, e.triggered_by,"           \
	" to_jsonb(e.signal_ids) AS signal_ids, e.task_id, e.created_at, e.started_at,"     \
	" e.finished_at, e.result, e.error"
#define EXECUTION_FROM " FROM executions e JOIN pipelines p ON p.id = e.pipeline_id "

int execution_store_claim(PGconn *conn, struct execution_claim *claims, size_t count, char *err,
			  size_t errsize)
{
	if (count == 0)
		return 0;
	json_t *batch = json_array();
	for (size_t i = 0; i < count; i++) {
		uuid_t id;
		uuid_generate_random(id);
		uuid_unparse_lower(id, claims[i].execution_id);
		claims[i].claimed = false;
		json_array_append_new(batch, json_pack("{s:s, s:s, s:s, s:O, s:s}", "execution_id",
						       claims[i].execution_id, "pipeline_id",
						       claims[i].pipeline_id, "task_id", claims[i].task_id,
						       "signal_ids", claims[i].signal_ids, "triggered_by",
						       claims[i].triggered_by != NULL ? claims[i].triggered_by
										      : "signal"));
	}
	char *batch_text = json_dumps(batch, JSON_COMPACT);
	json_decref(batch);
	const char *values[] = { batch_text };
	/*
	 * One statement for the whole batch. The partial unique index makes a
	 * pipeline that already has a PENDING/RUNNING execution a conflict, so it
	 * is skipped atomically even with several dispatchers; a pipeline deleted
	 * or disabled since the cache was loaded is skipped by the join.
	 */
	PGresult *result = db_query(
		conn,
		"INSERT INTO executions (id, pipeline_id, status, signal_ids, task_id, triggered_by)"
		" SELECT (c->>'execution_id')::uuid, p.id, 'PENDING',"
		"        ARRAY(SELECT jsonb_array_elements_text(c->'signal_ids')), c->>'task_id',"
		"        c->>'triggered_by'"
		" FROM jsonb_array_elements($1::jsonb) AS c"
		" JOIN pipelines p ON p.id = (c->>'pipeline_id')::uuid AND p.is_active"
		" ON CONFLICT (pipeline_id, claim_key) WHERE status IN ('PENDING', 'RUNNING', 'HOLDING')"
		" DO NOTHING"
		" RETURNING id",
		1, values, err, errsize);
	free(batch_text);
	if (result == NULL)
		return -1;
	for (int row = 0; row < PQntuples(result); row++) {
		const char *id = PQgetvalue(result, row, 0);
		for (size_t i = 0; i < count; i++)
			if (strcmp(claims[i].execution_id, id) == 0)
				claims[i].claimed = true;
	}
	PQclear(result);
	return 0;
}

int execution_store_start(PGconn *conn, const char *execution_id, char *err, size_t errsize)
{
	const char *values[] = { execution_id };
	PGresult *result = db_query(conn,
				    "UPDATE executions SET status = 'RUNNING', started_at = now()"
				    " WHERE id = $1::uuid AND status = 'PENDING' RETURNING id",
				    1, values, err, errsize);
	if (result == NULL)
		return -1;
	int started = PQntuples(result) == 1;
	PQclear(result);
	return started;
}

int execution_store_finish(PGconn *conn, const char *execution_id, bool succeeded, const json_t *result_json,
			   const char *error, char *err, size_t errsize)
{
	char *result_text = result_json != NULL ? json_dumps(result_json, JSON_COMPACT | JSON_PRESERVE_ORDER)
						: NULL;
	const char *values[] = { execution_id, succeeded ? "SUCCEEDED" : "FAILED", result_text, error };
	PGresult *result = db_query(conn,
				    "UPDATE executions SET status = $2, finished_at = now(),"
				    " result = $3::jsonb, error = $4 WHERE id = $1::uuid",
				    4, values, err, errsize);
	free(result_text);
	if (result == NULL)
		return -1;
	PQclear(result);
	return 0;
}

json_t *execution_store_list(PGconn *conn, const char *pipeline_id, const char *status,
			     const char *signal_id, int limit, char *err, size_t errsize)
{
	if (pipeline_id != NULL && !db_is_uuid(pipeline_id)) {
		snprintf(err, errsize, "'%s' is not a valid pipeline id (a UUID)", pipeline_id);
		return NULL;
	}
	char limit_text[16];
	snprintf(limit_text, sizeof limit_text, "%d", limit > 0 ? limit : 20);
	const char *values[] = { pipeline_id, status, limit_text, signal_id };
	return db_query_rows(conn,
			     "SELECT " EXECUTION_COLUMNS EXECUTION_FROM
			     "WHERE ($1::uuid IS NULL OR e.pipeline_id = $1::uuid)"
			     "   AND ($2::text IS NULL OR e.status = $2)"
			     "   AND ($4::text IS NULL OR e.signal_ids @> ARRAY[$4::text])"
			     " ORDER BY e.created_at DESC, e.id LIMIT $3::integer",
			     4, values, err, errsize);
}

json_t *execution_store_show(PGconn *conn, const char *id, char *err, size_t errsize)
{
	return db_query_row_by_id(conn, "SELECT " EXECUTION_COLUMNS EXECUTION_FROM "WHERE e.id = $1::uuid",
				  "execution", id, err, errsize);
}

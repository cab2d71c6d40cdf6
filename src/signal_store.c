#include "signal_store.h"

#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "execution_store.h"

json_t *signal_store_show(PGconn *conn, const char *signal_id, char *err, size_t errsize)
{
	const char *values[] = { signal_id };
	json_t *signals = db_query_rows(conn,
					"SELECT signal_id, source, signal_type, kafka_partition, kafka_offset,"
					" consumed_at, body FROM signals WHERE signal_id = $1",
					1, values, err, errsize);
	if (signals == NULL)
		return NULL;
	if (json_array_size(signals) == 0) {
		json_decref(signals);
		snprintf(err, errsize, "no signal %s: no dispatcher consumed it (yet)", signal_id);
		return NULL;
	}
	json_t *decisions = db_query_rows(conn,
					  "SELECT d.decided_at, d.decision, d.reason, d.pipeline_id,"
					  " p.name AS pipeline_name, d.execution_id, d.task_id,"
					  " to_jsonb(d.tickers) AS tickers"
					  " FROM signal_decisions d LEFT JOIN pipelines p ON p.id = d.pipeline_id"
					  " WHERE d.signal_id = $1 ORDER BY d.id NULLS LAST, d.pipeline_id NULLS FIRST",
					  1, values, err, errsize);
	json_t *executions = decisions != NULL
				     ? execution_store_list(conn, NULL, NULL, signal_id, 1000, err, errsize)
				     : NULL;
	if (decisions == NULL || executions == NULL) {
		json_decref(signals);
		json_decref(decisions);
		return NULL;
	}
	json_t *shown = json_pack("{s:O, s:o, s:o}", "signal", json_array_get(signals, 0), "decisions", decisions,
				  "executions", executions);
	json_decref(signals);
	return shown;
}

json_t *signal_store_bodies(PGconn *conn, const json_t *ids, char *err, size_t errsize)
{
	size_t count = json_array_size(ids);
	json_t *bodies = json_array();
	if (count == 0)
		return bodies;
	const char **names = calloc(count, sizeof *names);
	if (names == NULL) {
		json_decref(bodies);
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < count; i++)
		names[i] = json_string_value(json_array_get(ids, i)) != NULL ? json_string_value(json_array_get(ids, i)) : "";
	char *literal = db_text_array_literal(names, count);
	free(names);
	const char *values[] = { literal };
	json_t *rows = literal != NULL ? db_query_rows(conn,
						       "SELECT signal_id, body FROM signals WHERE signal_id = ANY($1::text[])",
						       1, values, err, errsize)
				       : NULL;
	free(literal);
	if (rows == NULL) {
		json_decref(bodies);
		return NULL;
	}
	for (size_t i = 0; i < count; i++) {
		const json_t *id = json_array_get(ids, i);
		const json_t *body = NULL;
		size_t index;
		const json_t *row;
		json_array_foreach(rows, index, row)
			if (json_equal(json_object_get(row, "signal_id"), (json_t *)id))
				body = json_object_get(row, "body");
		json_array_append_new(bodies, body != NULL ? json_deep_copy(body) : json_deep_copy(id));
	}
	json_decref(rows);
	return bodies;
}

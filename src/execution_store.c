#include "execution_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "ids.h"
#include "text_buffer.h"

#define EXECUTION_COLUMNS                                                                     \
	"e.id, e.pipeline_id, p.name AS pipeline_name, e.status, e.triggered_by,"           \
	" to_jsonb(e.signal_ids) AS signal_ids, e.task_id, e.created_at, e.started_at,"     \
	" e.finished_at, e.result, e.error, e.schedule_slot"
#define EXECUTION_FROM " FROM executions e JOIN pipelines p ON p.id = e.pipeline_id "

/*
 * The decide statement. Data-modifying CTEs run together, in one snapshot:
 * a refusal, a claim, its decision rows and its audit row are all written,
 * or none is. Prepared once per connection: planning it took longer than
 * running it for a small round.
 */
#define DECIDE_STATEMENT "sigtrig_decide_batch"
#define DECIDE_PARAMETERS 9
static const char decide_sql[] =
	/* With each signal, the decisions made before the database: in its row, not a row each. */
	"WITH incoming AS ("
	"  INSERT INTO signals (signal_id, body, source, signal_type, kafka_partition, kafka_offset, skips)"
	"  SELECT s->>'signal_id', s->'body', s->>'source', s->>'signal_type',"
	"         (s->>'partition')::integer, (s->>'offset')::bigint, s->'skips'"
	"  FROM jsonb_array_elements($1::jsonb) s"
	"  ON CONFLICT (signal_id) DO NOTHING RETURNING signal_id),"
	/* A signal already recorded was decided before (a replay): it claims nothing again. */
	/* The claims come as one array per column, element i of each for claim i: cheaper to read than JSON. */
	" fresh AS ("
	"  SELECT c.*, ARRAY(SELECT x FROM unnest(c.signal_ids) x"
	"                    WHERE x IN (SELECT signal_id FROM incoming)) AS fresh_ids"
	"  FROM (SELECT (u.place - 1)::integer AS index, u.execution_id, u.task_id, u.pipeline_id, u.claim_key,"
	"               u.signal_ids::text[] AS signal_ids, u.tickers::text[] AS tickers"
	"        FROM unnest($2::uuid[], $5::text[], $6::uuid[], $7::text[], $8::text[], $9::text[])"
	"             WITH ORDINALITY AS u(execution_id, task_id, pipeline_id, claim_key, signal_ids, tickers, place)) c),"
	" candidate AS ("
	"  SELECT f.index AS claim_index, cardinality(f.signal_ids) AS given_count, f.execution_id, f.task_id,"
	"         f.pipeline_id, f.claim_key, f.fresh_ids AS signal_ids, f.tickers, u.id AS user_id,"
	"         CASE WHEN p.id IS NULL OR NOT p.is_active OR p.trigger_mode <> 'signal' THEN 'inactive'"
	"              WHEN u.id IS NULL OR NOT u.is_active THEN 'unauthorized'"
	"              WHEN u.credits <= 0 THEN 'no_budget'"
	"              WHEN p.last_triggered_at IS NOT NULL"
	"                   AND jsonb_typeof(p.config->'cooldown_seconds') = 'number'"
	"                   AND p.last_triggered_at"
	"                       + make_interval(secs => (p.config->>'cooldown_seconds')::float8) > now()"
	"              THEN 'cooldown' END AS refusal"
	"  FROM fresh f"
	"  LEFT JOIN pipelines p ON p.id = f.pipeline_id"
	"  LEFT JOIN users u ON u.id = p.user_id"
	"  WHERE cardinality(f.fresh_ids) > 0),"
	" claimed AS ("
	"  INSERT INTO executions (id, pipeline_id, status, signal_ids, task_id, claim_key, dispatch_round)"
	"  SELECT execution_id, pipeline_id, 'PENDING', signal_ids, task_id, claim_key, $4::uuid"
	"  FROM candidate WHERE refusal IS NULL"
	"  ON CONFLICT (pipeline_id, claim_key) WHERE status IN ('PENDING', 'RUNNING', 'HOLDING')"
	"  DO NOTHING RETURNING id, pipeline_id),"
	" triggered AS ("
	/* Only a pipeline with a cooldown needs it: the others' rows are left alone. */
	"  UPDATE pipelines SET last_triggered_at = now()"
	"  WHERE id IN (SELECT pipeline_id FROM claimed) AND config ? 'cooldown_seconds'),"
	" outcome AS ("
	"  SELECT c.*, cl.id IS NOT NULL AS was_claimed,"
	"         CASE WHEN cl.id IS NULL THEN coalesce(c.refusal, 'already_running') END AS reason"
	"  FROM candidate c LEFT JOIN claimed cl ON cl.id = c.execution_id),"
	" decided AS ("
	"  INSERT INTO signal_decision_rows (signal_id, pipeline_id, decision, reason, execution_id, task_id, tickers)"
	"  SELECT sid, o.pipeline_id, CASE WHEN o.was_claimed THEN 'claimed' ELSE 'skipped' END, o.reason,"
	"         CASE WHEN o.was_claimed THEN o.execution_id END, CASE WHEN o.was_claimed THEN o.task_id END,"
	"         o.tickers"
	"  FROM outcome o, unnest(o.signal_ids) AS sid),"
	" audited AS ("
	"  INSERT INTO audit_log (signal_ids, pipeline_id, user_id, decision, reason, execution_id)"
	"  SELECT o.signal_ids, o.pipeline_id, o.user_id,"
	"         CASE WHEN o.was_claimed THEN 'claimed' ELSE 'skipped' END, o.reason,"
	"         CASE WHEN o.was_claimed THEN o.execution_id END"
	/* Claims and the owner's refusals; already_running, the bulk under load, is in the decisions only. */
	"  FROM outcome o WHERE o.user_id IS NOT NULL AND o.pipeline_id IS NOT NULL"
	"    AND o.reason IS DISTINCT FROM 'already_running'),"
	/* The outbox records of the previous rounds' pushes ride along: one row per round, no query of their own. */
	" pushed AS ("
	"  INSERT INTO dispatch_rounds_pushed (round_id)"
	"  SELECT (x #>> '{}')::uuid FROM jsonb_array_elements($3::jsonb) x ON CONFLICT DO NOTHING)"
	" SELECT claim_index, was_claimed, reason, cardinality(signal_ids),"
	"        CASE WHEN cardinality(signal_ids) <> given_count THEN to_jsonb(signal_ids)::text END"
	" FROM outcome";

int execution_store_prepare_decide(PGconn *conn, char *err, size_t errsize)
{
	return db_prepare(conn, DECIDE_STATEMENT, decide_sql, DECIDE_PARAMETERS, err, errsize);
}

/* A signal's skips as its row keeps them: [{pipeline_id or null, reason, tickers}]. */
static void write_skips(struct text_buffer *text, const json_t *skips)
{
	text_buffer_puts(text, "[");
	size_t index;
	const json_t *skip;
	json_array_foreach(skips, index, skip) {
		const char *pipeline_id = json_string_value(json_object_get(skip, "pipeline_id"));
		const char *reason = json_string_value(json_object_get(skip, "reason"));
		if (pipeline_id != NULL)
			text_buffer_json_member(text, index > 0 ? ",{\"pipeline_id\":" : "{\"pipeline_id\":", pipeline_id);
		else
			text_buffer_puts(text, index > 0 ? ",{\"pipeline_id\":null" : "{\"pipeline_id\":null");
		text_buffer_json_member(text, ",\"reason\":", reason != NULL ? reason : "");
		text_buffer_json_string_array(text, ",\"tickers\":", json_object_get(skip, "tickers"));
		text_buffer_puts(text, "}");
	}
	text_buffer_puts(text, "]");
}

/* $1: the signals as the statement reads them, [{signal_id, body, source, signal_type, partition, offset, skips}]. */
static void write_signal_records(struct text_buffer *text, const struct decided_signal *signals, size_t count)
{
	text_buffer_puts(text, "[");
	for (size_t i = 0; i < count; i++) {
		const struct signal *signal = signals[i].signal;
		text_buffer_json_member(text, i > 0 ? ",{\"signal_id\":" : "{\"signal_id\":", signal->signal_id);
		text_buffer_puts(text, ",\"body\":");
		signal_write_json(signal, text);
		text_buffer_json_member(text, ",\"source\":", signal->source);
		text_buffer_json_member(text, ",\"signal_type\":", signal->signal_type);
		text_buffer_printf(text, ",\"partition\":%d,\"offset\":%lld,\"skips\":", (int)signals[i].partition,
				   (long long)signals[i].offset);
		write_skips(text, signals[i].skips);
		text_buffer_puts(text, "}");
	}
	text_buffer_puts(text, "]");
}

/* The claims' columns, each a PostgreSQL array literal, in the order of $2 and $5-$9 of the decide statement. */
enum claim_column {
	CLAIM_EXECUTION_IDS,
	CLAIM_TASK_IDS,
	CLAIM_PIPELINE_IDS,
	CLAIM_CLAIM_KEYS,
	CLAIM_SIGNAL_IDS,
	CLAIM_TICKERS,
	CLAIM_COLUMNS
};

struct claim_columns {
	struct text_buffer column[CLAIM_COLUMNS];
	struct text_buffer scratch; /* one claim's nested array */
};

static void column_add(struct text_buffer *column, bool first, const char *text, size_t length)
{
	if (!first)
		text_buffer_puts(column, ",");
	text_buffer_pg_array_element(column, text, length);
}

/* A claim's strings (none: an empty array) as one element, itself an array literal, of `column`. */
static void column_add_array(struct text_buffer *column, bool first, const json_t *strings,
			     struct text_buffer *scratch)
{
	text_buffer_truncate(scratch, 0);
	text_buffer_puts(scratch, "{");
	size_t index;
	const json_t *item;
	json_array_foreach(strings, index, item) {
		const char *text = json_is_string(item) ? json_string_value(item) : "";
		column_add(scratch, index == 0, text, strlen(text));
	}
	text_buffer_puts(scratch, "}");
	column_add(column, first, scratch->data, scratch->length);
}

static void write_claim_columns(struct claim_columns *columns, const struct execution_claim *claims, size_t count)
{
	struct text_buffer *column = columns->column;
	for (int c = 0; c < CLAIM_COLUMNS; c++)
		text_buffer_puts(&column[c], "{");
	for (size_t i = 0; i < count; i++) {
		const struct execution_claim *claim = &claims[i];
		const char *claim_key = claim->claim_key != NULL ? claim->claim_key : "";
		column_add(&column[CLAIM_EXECUTION_IDS], i == 0, claim->execution_id, strlen(claim->execution_id));
		column_add(&column[CLAIM_TASK_IDS], i == 0, claim->task_id, strlen(claim->task_id));
		column_add(&column[CLAIM_PIPELINE_IDS], i == 0, claim->pipeline_id, strlen(claim->pipeline_id));
		column_add(&column[CLAIM_CLAIM_KEYS], i == 0, claim_key, strlen(claim_key));
		column_add_array(&column[CLAIM_SIGNAL_IDS], i == 0, claim->signal_ids, &columns->scratch);
		column_add_array(&column[CLAIM_TICKERS], i == 0, claim->tickers, &columns->scratch);
	}
	for (int c = 0; c < CLAIM_COLUMNS; c++)
		text_buffer_puts(&column[c], "}");
}

static bool claim_columns_failed(const struct claim_columns *columns)
{
	bool failed = columns->scratch.failed;
	for (int c = 0; c < CLAIM_COLUMNS; c++)
		failed = failed || columns->column[c].failed;
	return failed;
}

static void claim_columns_free(struct claim_columns *columns)
{
	for (int c = 0; c < CLAIM_COLUMNS; c++)
		free(columns->column[c].data);
	free(columns->scratch.data);
}

int execution_store_decide_batch_send(PGconn *conn, const struct decided_signal *signals, size_t signal_count,
				      struct execution_claim *claims, size_t count, const char *round_id,
				      const json_t *pushed_rounds, char *err, size_t errsize)
{
	for (size_t i = 0; i < count; i++) {
		ids_time_ordered_uuid(claims[i].execution_id);
		claims[i].claimed = false;
		claims[i].reason[0] = '\0';
	}
	/* Written as text, not built as jansson objects and dumped: for thousands of rows that took longer. */
	struct text_buffer signals_text = { 0 };
	struct claim_columns columns = { 0 };
	write_signal_records(&signals_text, signals, signal_count);
	write_claim_columns(&columns, claims, count);
	json_t *no_rounds = json_array();
	char *pushed_text = json_dumps(pushed_rounds != NULL ? pushed_rounds : no_rounds, JSON_COMPACT);
	json_decref(no_rounds);
	int sent = -1;
	if (signals_text.failed || claim_columns_failed(&columns) || pushed_text == NULL) {
		snprintf(err, errsize, "out of memory writing the batch's statement");
	} else {
		const struct text_buffer *column = columns.column;
		const char *values[DECIDE_PARAMETERS] = { signals_text.data,
							  column[CLAIM_EXECUTION_IDS].data,
							  pushed_text,
							  round_id,
							  column[CLAIM_TASK_IDS].data,
							  column[CLAIM_PIPELINE_IDS].data,
							  column[CLAIM_CLAIM_KEYS].data,
							  column[CLAIM_SIGNAL_IDS].data,
							  column[CLAIM_TICKERS].data };
		sent = db_send_prepared(conn, DECIDE_STATEMENT, DECIDE_PARAMETERS, values, err, errsize);
	}
	free(signals_text.data);
	claim_columns_free(&columns);
	free(pushed_text);
	return sent;
}

int execution_store_decide_batch_receive(PGconn *conn, struct execution_claim *claims, size_t count,
					 char *err, size_t errsize)
{
	PGresult *result = db_receive(conn, err, errsize);
	if (result == NULL)
		return -1;
	/* A claim the statement left out held only replayed signals. */
	for (size_t i = 0; i < count; i++)
		snprintf(claims[i].reason, sizeof claims[i].reason, "%s", EXECUTION_CLAIM_REPLAYED);
	/* Each row names its claim by its place in the candidates: no search. */
	for (int row = 0; row < PQntuples(result); row++) {
		long index = strtol(PQgetvalue(result, row, 0), NULL, 10);
		if (index < 0 || (size_t)index >= count)
			continue;
		struct execution_claim *claim = &claims[index];
		claim->claimed = PQgetvalue(result, row, 1)[0] == 't';
		snprintf(claim->reason, sizeof claim->reason, "%s", PQgetvalue(result, row, 2));
		/* Only the signals decided now: a replayed one in the mix is left out of the task. */
		if (!PQgetisnull(result, row, 4)) {
			json_t *fresh = json_loads(PQgetvalue(result, row, 4), 0, NULL);
			if (json_is_array(fresh)) {
				json_array_clear(claim->signal_ids);
				json_array_extend(claim->signal_ids, fresh);
			}
			json_decref(fresh);
		}
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
			     /* Through the decision records (indexed by signal), not a scan of signal_ids. */
			     "   AND ($4::text IS NULL OR e.id IN (SELECT d.execution_id FROM signal_decision_rows d"
			     "        WHERE d.signal_id = $4::text AND d.execution_id IS NOT NULL))"
			     " ORDER BY e.created_at DESC, e.id LIMIT $3::integer",
			     4, values, err, errsize);
}

json_t *execution_store_show(PGconn *conn, const char *id, char *err, size_t errsize)
{
	/* With the signals that woke it, as consumed: the start of the run's story. */
	return db_query_row_by_id(conn,
				  "SELECT " EXECUTION_COLUMNS ","
				  " (SELECT coalesce(jsonb_agg(jsonb_build_object('signal_id', s.signal_id, 'source', s.source,"
				  "   'signal_type', s.signal_type, 'consumed_at', s.consumed_at, 'tickers', s.body->'tickers')"
				  "   ORDER BY s.consumed_at), '[]'::jsonb)"
				  "  FROM signals s WHERE s.signal_id = ANY(e.signal_ids)) AS signals"
				  EXECUTION_FROM "WHERE e.id = $1::uuid",
				  "execution", id, err, errsize);
}

#include "pipeline_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "agents.h"
#include "db.h"
#include "schedule.h"
#include "signal.h"
#include "time_zone.h"

/* Columns every read returns, tickers as a JSON array so no text[] parsing is needed. */
#define PIPELINE_COLUMNS                                                                          \
	"p.id, p.name, p.user_id, u.name AS user, p.trigger_mode, to_jsonb(p.scanner_tickers) AS " \
	"scanner_tickers, p.is_active, p.config, p.created_at, p.updated_at"
#define PIPELINE_FROM " FROM pipelines p JOIN users u ON u.id = p.user_id "

void pipeline_free(struct pipeline *pipeline)
{
	for (size_t i = 0; i < pipeline->ticker_count; i++)
		free(pipeline->tickers[i]);
	free(pipeline->tickers);
	free(pipeline->name);
	json_decref(pipeline->config);
	memset(pipeline, 0, sizeof *pipeline);
}

static int pipeline_from_row(PGresult *result, int row, struct pipeline *pipeline)
{
	memset(pipeline, 0, sizeof *pipeline);
	snprintf(pipeline->id, sizeof pipeline->id, "%s", PQgetvalue(result, row, 0));
	pipeline->name = strdup(PQgetvalue(result, row, 1));
	snprintf(pipeline->user_id, sizeof pipeline->user_id, "%s", PQgetvalue(result, row, 2));
	snprintf(pipeline->trigger_mode, sizeof pipeline->trigger_mode, "%s", PQgetvalue(result, row, 4));
	json_t *tickers = json_loads(PQgetvalue(result, row, 5), 0, NULL);
	size_t count = json_array_size(tickers);
	pipeline->tickers = calloc(count > 0 ? count : 1, sizeof *pipeline->tickers);
	for (size_t i = 0; i < count && pipeline->tickers != NULL; i++) {
		const char *ticker = json_string_value(json_array_get(tickers, i));
		pipeline->tickers[pipeline->ticker_count++] = strdup(ticker != NULL ? ticker : "");
	}
	json_decref(tickers);
	pipeline->is_active = PQgetvalue(result, row, 6)[0] == 't';
	pipeline->config = json_loads(PQgetvalue(result, row, 7), 0, NULL);
	if (pipeline->config == NULL)
		pipeline->config = json_object();
	/* A config that predates a filter rule accepts everything rather than nothing. */
	char err[256];
	if (pipeline_filter_parse(pipeline->config, &pipeline->filter, err, sizeof err) != 0)
		pipeline_filter_parse(NULL, &pipeline->filter, err, sizeof err);
	if (pipeline_claim_scope_parse(pipeline->config, &pipeline->claim_scope, err, sizeof err) != 0)
		pipeline->claim_scope = PIPELINE_CLAIM_PIPELINE;
	return pipeline->name != NULL && pipeline->tickers != NULL ? 0 : -1;
}

int pipeline_claim_scope_parse(const json_t *config, enum pipeline_claim_scope *scope, char *err,
			       size_t errsize)
{
	*scope = PIPELINE_CLAIM_PIPELINE;
	const json_t *value = json_object_get(config, "claim_scope");
	if (value == NULL)
		return 0;
	const char *text = json_string_value(value);
	if (text != NULL && strcmp(text, "pipeline") == 0)
		return 0;
	if (text != NULL && strcmp(text, "ticker") == 0) {
		*scope = PIPELINE_CLAIM_TICKER;
		return 0;
	}
	snprintf(err, errsize, "config.claim_scope: must be \"pipeline\" or \"ticker\"");
	return -1;
}

int pipeline_store_get(PGconn *conn, const char *id, struct pipeline *pipeline, char *err, size_t errsize)
{
	if (!db_is_uuid(id))
		return 0;
	const char *values[] = { id };
	PGresult *result = db_query(conn, "SELECT " PIPELINE_COLUMNS PIPELINE_FROM "WHERE p.id = $1", 1,
				    values, err, errsize);
	if (result == NULL)
		return -1;
	int found = PQntuples(result) == 1;
	if (found && pipeline_from_row(result, 0, pipeline) != 0) {
		snprintf(err, errsize, "out of memory");
		found = -1;
	}
	PQclear(result);
	return found;
}

int pipeline_store_load_active_signal(PGconn *conn, struct pipeline **pipelines, size_t *count,
				      char *err, size_t errsize)
{
	*pipelines = NULL;
	*count = 0;
	PGresult *result = db_query(conn,
				    "SELECT " PIPELINE_COLUMNS PIPELINE_FROM
				    "WHERE p.is_active AND p.trigger_mode = 'signal'",
				    0, NULL, err, errsize);
	if (result == NULL)
		return -1;
	int rows = PQntuples(result);
	struct pipeline *loaded = calloc(rows > 0 ? (size_t)rows : 1, sizeof *loaded);
	if (loaded == NULL) {
		PQclear(result);
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	for (int row = 0; row < rows; row++)
		pipeline_from_row(result, row, &loaded[row]);
	PQclear(result);
	*pipelines = loaded;
	*count = (size_t)rows;
	return 0;
}

/* The chain a pipeline runs when its definition names no nodes. */
static json_t *default_nodes(void)
{
	return json_pack("[{s:s, s:{}}, {s:s, s:{}}, {s:s, s:{}}, {s:s, s:{}}, {s:s, s:{}}]",
			 "agent_type", "market_data_agent", "config", "agent_type", "bias_agent", "config",
			 "agent_type", "strategy_agent", "config", "agent_type", "risk_manager", "config",
			 "agent_type", "order_manager", "config");
}

static int validate_nodes(json_t *config, char *err, size_t errsize)
{
	json_t *nodes = json_object_get(config, "nodes");
	if (nodes == NULL) {
		json_object_set_new(config, "nodes", default_nodes());
		return 0;
	}
	if (!json_is_array(nodes) || json_array_size(nodes) == 0) {
		snprintf(err, errsize, "config.nodes: must be a non-empty array");
		return -1;
	}
	size_t index;
	json_t *node;
	json_array_foreach(nodes, index, node) {
		const char *type = json_string_value(json_object_get(node, "agent_type"));
		if (!json_is_object(node) || type == NULL) {
			snprintf(err, errsize, "config.nodes[%zu]: must be an object with a string agent_type",
				 index);
			return -1;
		}
		const json_t *node_config = json_object_get(node, "config");
		if (node_config != NULL && !json_is_object(node_config)) {
			snprintf(err, errsize, "config.nodes[%zu].config: must be an object", index);
			return -1;
		}
		if (strcmp(type, "time_trigger") == 0)
			continue; /* checked with the schedule */
		const struct agent *agent = agents_find(type);
		if (agent == NULL) {
			snprintf(err, errsize, "config.nodes[%zu].agent_type: unknown agent type '%s'", index,
				 type);
			return -1;
		}
		char why[400];
		if (agent->check_config(node_config, why, sizeof why) != 0) {
			snprintf(err, errsize, "config.nodes[%zu] (%s): %s", index, type, why);
			return -1;
		}
	}
	return 0;
}

/* A periodic pipeline's time_trigger node, down to its time zone being one the scheduler can load. */
static int validate_trigger(const json_t *config, char *err, size_t errsize)
{
	struct schedule_trigger trigger;
	if (schedule_trigger_parse(config, &trigger, err, errsize) != 0)
		return -1;
	if (trigger.time_zone[0] == '\0')
		return 0;
	char reason[512];
	struct time_zone *zone = time_zone_load(trigger.time_zone, reason, sizeof reason);
	if (zone == NULL) {
		snprintf(err, errsize, "config.nodes[%zu].config.time_zone: %s", trigger.node_index, reason);
		return -1;
	}
	time_zone_free(zone);
	return 0;
}

static char *tickers_literal(const json_t *tickers, const char *mode, char *err, size_t errsize)
{
	if (tickers == NULL)
		tickers = json_array();
	else
		json_incref((json_t *)tickers);
	char *literal = NULL;
	size_t count = json_array_size(tickers);
	const char **items = calloc(count > 0 ? count : 1, sizeof *items);
	if (!json_is_array(tickers)) {
		snprintf(err, errsize, "scanner_tickers: must be an array of tickers");
		goto done;
	}
	if (count == 0 && strcmp(mode, "signal") == 0) {
		snprintf(err, errsize, "scanner_tickers: a signal pipeline must watch at least one ticker");
		goto done;
	}
	for (size_t i = 0; i < count; i++) {
		items[i] = json_string_value(json_array_get(tickers, i));
		if (items[i] == NULL || !signal_ticker_is_valid(items[i])) {
			snprintf(err, errsize, "scanner_tickers[%zu]: not a valid ticker", i);
			goto done;
		}
	}
	literal = db_text_array_literal(items, count);
done:
	free(items);
	json_decref((json_t *)tickers);
	return literal;
}

/* The user by id, or by name (created on first use). Returns 0 with id filled. */
static int resolve_user(PGconn *conn, const json_t *definition, char id[PIPELINE_ID_LENGTH + 1],
			char *err, size_t errsize)
{
	const json_t *user_id = json_object_get(definition, "user_id");
	const json_t *user_name = json_object_get(definition, "user");
	PGresult *result;
	if (user_id != NULL) {
		if (!db_is_uuid(json_string_value(user_id))) {
			snprintf(err, errsize, "user_id: must be a UUID");
			return -1;
		}
		const char *values[] = { json_string_value(user_id) };
		result = db_query(conn, "SELECT id FROM users WHERE id = $1", 1, values, err, errsize);
	} else {
		const char *name = user_name != NULL ? json_string_value(user_name) : "default";
		if (name == NULL || *name == '\0' || strlen(name) > 128) {
			snprintf(err, errsize, "user: must be a name of 1-128 characters");
			return -1;
		}
		const char *values[] = { name };
		result = db_query(conn,
				  "INSERT INTO users (name) VALUES ($1) ON CONFLICT (name)"
				  " DO UPDATE SET name = EXCLUDED.name RETURNING id",
				  1, values, err, errsize);
	}
	if (result == NULL)
		return -1;
	int found = PQntuples(result) == 1;
	if (found)
		snprintf(id, PIPELINE_ID_LENGTH + 1, "%s", PQgetvalue(result, 0, 0));
	else
		snprintf(err, errsize, "user_id: no such user");
	PQclear(result);
	return found ? 0 : -1;
}

json_t *pipeline_store_add(PGconn *conn, const json_t *definition, char *err, size_t errsize)
{
	if (!json_is_object(definition)) {
		snprintf(err, errsize, "a pipeline must be a JSON object");
		return NULL;
	}
	const char *name = json_string_value(json_object_get(definition, "name"));
	if (name == NULL || *name == '\0' || strlen(name) > 256) {
		snprintf(err, errsize, "name: required, 1-256 characters");
		return NULL;
	}
	const json_t *mode_value = json_object_get(definition, "trigger_mode");
	const char *mode = mode_value != NULL ? json_string_value(mode_value) : "signal";
	if (mode == NULL || (strcmp(mode, "signal") != 0 && strcmp(mode, "periodic") != 0)) {
		snprintf(err, errsize, "trigger_mode: must be 'signal' or 'periodic'");
		return NULL;
	}
	const json_t *active = json_object_get(definition, "is_active");
	if (active != NULL && !json_is_boolean(active)) {
		snprintf(err, errsize, "is_active: must be true or false");
		return NULL;
	}
	const json_t *given_config = json_object_get(definition, "config");
	if (given_config != NULL && !json_is_object(given_config)) {
		snprintf(err, errsize, "config: must be an object");
		return NULL;
	}
	json_t *config = given_config != NULL ? json_deep_copy(given_config) : json_object();
	char *tickers = NULL;
	char *config_text = NULL;
	json_t *stored = NULL;
	char user_id[PIPELINE_ID_LENGTH + 1];
	if (validate_nodes(config, err, errsize) != 0)
		goto done;
	struct pipeline_filter filter;
	if (pipeline_filter_parse(config, &filter, err, errsize) != 0)
		goto done;
	enum pipeline_claim_scope scope;
	if (pipeline_claim_scope_parse(config, &scope, err, errsize) != 0)
		goto done;
	if (strcmp(mode, "periodic") == 0 && validate_trigger(config, err, errsize) != 0)
		goto done;
	tickers = tickers_literal(json_object_get(definition, "scanner_tickers"), mode, err, errsize);
	if (tickers == NULL)
		goto done;
	if (resolve_user(conn, definition, user_id, err, errsize) != 0)
		goto done;
	config_text = json_dumps(config, JSON_COMPACT | JSON_PRESERVE_ORDER);
	const char *values[] = { name, user_id, mode, tickers,
				 active == NULL || json_is_true(active) ? "true" : "false", config_text };
	PGresult *result = db_query(conn,
				    "INSERT INTO pipelines (name, user_id, trigger_mode, scanner_tickers,"
				    " is_active, config) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
				    6, values, err, errsize);
	if (result == NULL)
		goto done;
	char id[PIPELINE_ID_LENGTH + 1];
	snprintf(id, sizeof id, "%s", PQgetvalue(result, 0, 0));
	PQclear(result);
	stored = pipeline_store_show(conn, id, err, errsize);
done:
	json_decref(config);
	free(tickers);
	free(config_text);
	return stored;
}

json_t *pipeline_store_list(PGconn *conn, char *err, size_t errsize)
{
	return db_query_rows(conn, "SELECT " PIPELINE_COLUMNS PIPELINE_FROM "ORDER BY p.created_at, p.id", 0, NULL,
			     err, errsize);
}

json_t *pipeline_store_show(PGconn *conn, const char *id, char *err, size_t errsize)
{
	return db_query_row_by_id(conn, "SELECT " PIPELINE_COLUMNS PIPELINE_FROM "WHERE p.id = $1", "pipeline",
				  id, err, errsize);
}

json_t *pipeline_store_set_active(PGconn *conn, const char *id, bool active, char *err, size_t errsize)
{
	if (!db_is_uuid(id)) {
		snprintf(err, errsize, "'%s' is not a valid pipeline id (a UUID)", id);
		return NULL;
	}
	const char *values[] = { id, active ? "true" : "false" };
	PGresult *result = db_query(conn,
				    "UPDATE pipelines SET is_active = $2, updated_at = now() WHERE id = $1",
				    2, values, err, errsize);
	if (result == NULL)
		return NULL;
	PQclear(result);
	return pipeline_store_show(conn, id, err, errsize);
}

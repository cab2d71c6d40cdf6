/*
 * The requests the control server answers, one handler each, in one table.
 * Arguments are validated here, once: the CLI sends what the user typed
 * and prints what comes back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autoconfig.h"
#include "bar_store.h"
#include "config.h"
#include "control.h"
#include "db.h"
#include "execution_store.h"
#include "kafka.h"
#include "metrics.h"
#include "migrations.h"
#include "pipeline_store.h"
#include "portfolio_report.h"
#include "protocol.h"
#include "redis_client.h"
#include "schedule.h"
#include "signal_store.h"
#include "time_zone.h"
#include "timeutil.h"
#include "trace.h"

#define INJECT_MAX_SIGNALS 10000
#define INJECT_DELIVERY_TIMEOUT_MS 10000

static const char *string_argument(const json_t *request, const char *name)
{
	return json_string_value(json_object_get(request, name));
}

static json_t *health_of(int ok, const char *detail)
{
	return json_pack("{s:s, s:s}", "status", ok ? "ok" : "down", "detail", detail);
}

static json_t *check_postgres(struct control_context *context)
{
	char err[512];
	PGconn *db = control_db(context, err, sizeof err);
	if (db == NULL)
		return health_of(0, err);
	int version = db_schema_version(db);
	size_t expected;
	const struct migration *migrations = migrations_list(&expected);
	int latest = expected > 0 ? migrations[expected - 1].version : 0;
	char detail[128];
	if (version < latest) {
		/* Reachable but unusable: the flow cannot work without the schema. */
		snprintf(detail, sizeof detail, "schema version %d, expected %d (run sigtrigd --migrate)",
			 version < 0 ? 0 : version, latest);
		return health_of(0, detail);
	}
	snprintf(detail, sizeof detail, "schema version %d", version);
	return health_of(1, detail);
}

static json_t *check_redis(struct control_context *context)
{
	char err[512];
	redisContext *redis = redis_connect_url(context->daemon->config.redis_url, 1000, err, sizeof err);
	if (redis == NULL)
		return health_of(0, err);
	int ok = redis_ping(redis) == 0;
	char detail[128] = "PONG";
	if (ok) {
		redisReply *reply = redisCommand(redis, "LLEN %s", context->daemon->config.redis_queue);
		if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
			snprintf(detail, sizeof detail, "queue %s holds %lld task(s)",
				 context->daemon->config.redis_queue, reply->integer);
		freeReplyObject(reply);
	}
	redisFree(redis);
	return health_of(ok, ok ? detail : "no answer to PING");
}

static json_t *check_kafka(struct control_context *context)
{
	char err[512];
	if (kafka_ping(kafka_producer_handle(context->daemon->producer), 1500, err, sizeof err) != 0)
		return health_of(0, err);
	return health_of(1, "metadata ok");
}

static json_t *handle_status(struct control_context *context, const json_t *request)
{
	(void)request;
	struct daemon *daemon = context->daemon;
	json_t *roles = json_array();
	json_t *role_details = json_object();
#define ROLE(name)                                                                                   \
	if (daemon_has_role(daemon, ROLE_##name)) {                                                  \
		json_array_append_new(roles, json_string(#name));                                    \
		json_object_set_new(role_details, #name, name##_info(daemon));                       \
	}
#include "roles.def"
#undef ROLE
	char redis_url[1024], postgres_url[1024];
	config_redact_url(daemon->config.redis_url, redis_url, sizeof redis_url);
	config_redact_url(daemon->config.postgres_url, postgres_url, sizeof postgres_url);
	json_t *response = protocol_ok();
	json_object_set_new(response, "daemon",
			    json_pack("{s:s, s:i, s:I, s:s, s:s}", "version", PACKAGE_VERSION, "pid", (int)getpid(),
				      "uptime_seconds", (json_int_t)(time_now_seconds() - daemon->started_at),
				      "config", daemon->config_path != NULL ? daemon->config_path : "",
				      "socket", daemon->config.control_socket));
	json_object_set_new(response, "roles", roles);
	json_object_set_new(response, "endpoints",
			    json_pack("{s:s, s:s, s:s, s:s, s:s}", "kafka", daemon->config.kafka_bootstrap_servers,
				      "topic", daemon->config.kafka_topic, "redis", redis_url, "queue",
				      daemon->config.redis_queue, "postgres", postgres_url));
	json_object_set_new(response, "health",
			    json_pack("{s:o, s:o, s:o}", "kafka", check_kafka(context), "redis",
				      check_redis(context), "postgres", check_postgres(context)));
	json_object_set_new(response, "cache",
			    json_pack("{s:I, s:I}", "pipelines", (json_int_t)metrics_get(METRIC_cache_size),
				      "tickers", (json_int_t)metrics_get(METRIC_cache_tickers)));
	json_object_set_new(response, "counters", metrics_to_json());
	json_object_set_new(response, "role_details", role_details);
	return response;
}

static json_t *handle_metrics(struct control_context *context, const json_t *request)
{
	(void)context;
	(void)request;
	char *text = metrics_to_prometheus();
	if (text == NULL)
		return protocol_error("metrics: out of memory");
	json_t *response = protocol_ok();
	json_object_set_new(response, "text", json_string(text));
	json_object_set_new(response, "metrics", metrics_snapshot_json());
	free(text);
	return response;
}

/*
 * Publishes each signal and waits for Kafka's acknowledgement of all of
 * them, so an answered signal_id is a durable signal. A bad signal is
 * reported with its index and does not stop the others.
 */
static json_t *handle_inject(struct control_context *context, const json_t *request)
{
	const json_t *signals = json_object_get(request, "signals");
	if (!json_is_array(signals))
		return protocol_error("inject: \"signals\" must be an array of signal objects");
	size_t count = json_array_size(signals);
	if (count > INJECT_MAX_SIGNALS)
		return protocol_error("inject: at most %d signals per request", INJECT_MAX_SIGNALS);
	struct kafka_delivery *deliveries = calloc(count > 0 ? count : 1, sizeof *deliveries);
	bool *queued = calloc(count > 0 ? count : 1, sizeof *queued);
	json_t *results = json_array();
	for (size_t i = 0; i < count; i++) {
		struct signal signal;
		struct signal_error error;
		char reason[512];
		if (signal_from_json(json_array_get(signals, i), &signal, &error) != 0) {
			signal_error_format(&error, reason, sizeof reason);
			json_array_append_new(results, json_pack("{s:I, s:s}", "index", (json_int_t)i, "error", reason));
			continue;
		}
		if (daemon_publish_signal(context->daemon, &signal, &deliveries[i], reason, sizeof reason) != 0) {
			json_array_append_new(results, json_pack("{s:I, s:s, s:s}", "index", (json_int_t)i,
								 "signal_id", signal.signal_id, "error", reason));
		} else {
			queued[i] = true;
			json_array_append_new(results, json_pack("{s:I, s:s}", "index", (json_int_t)i,
								 "signal_id", signal.signal_id));
		}
		signal_free(&signal);
	}
	size_t published = 0;
	for (size_t i = 0; i < count; i++) {
		if (!queued[i])
			continue;
		char reason[256];
		json_t *result = NULL;
		for (size_t r = 0; r < json_array_size(results); r++)
			if ((size_t)json_integer_value(json_object_get(json_array_get(results, r), "index")) == i)
				result = json_array_get(results, r);
		if (kafka_delivery_wait(&deliveries[i], INJECT_DELIVERY_TIMEOUT_MS, reason, sizeof reason) != 0) {
			json_object_set_new(result, "error", json_string(reason));
		} else {
			published++;
			json_object_set_new(result, "partition", json_integer(deliveries[i].partition));
			json_object_set_new(result, "offset", json_integer(deliveries[i].offset));
		}
		json_decref(deliveries[i].tickers);
	}
	free(deliveries);
	free(queued);
	json_t *response = protocol_ok();
	json_object_set_new(response, "published", json_integer((json_int_t)published));
	json_object_set_new(response, "rejected", json_integer((json_int_t)(count - published)));
	json_object_set_new(response, "results", results);
	return response;
}

static json_t *handle_trace(struct control_context *context, const json_t *request)
{
	const char *signal_id = string_argument(request, "signal");
	const char *ticker = string_argument(request, "ticker");
	control_follow_trace(context, signal_id, ticker);
	json_t *response = protocol_ok();
	json_object_set_new(response, "following", json_string(TRACE_CHANNEL));
	return response;
}

/* Runs a store call that needs the database; wraps its result or error. */
#define WITH_DB(context, err, db)                                                                \
	char err[512];                                                                           \
	PGconn *db = control_db(context, err, sizeof err);                                       \
	if (db == NULL)                                                                          \
		return protocol_error("postgres unavailable: %s", err)

static json_t *wrap(const char *key, json_t *value, const char *err)
{
	if (value == NULL)
		return protocol_error("%s", err);
	json_t *response = protocol_ok();
	json_object_set_new(response, key, value);
	return response;
}

static json_t *handle_pipelines_add(struct control_context *context, const json_t *request)
{
	const json_t *definition = json_object_get(request, "pipeline");
	if (!json_is_object(definition))
		return protocol_error("pipelines.add: \"pipeline\" must be an object");
	WITH_DB(context, err, db);
	return wrap("pipeline", pipeline_store_add(db, definition, err, sizeof err), err);
}

static json_t *handle_pipelines_list(struct control_context *context, const json_t *request)
{
	(void)request;
	WITH_DB(context, err, db);
	return wrap("pipelines", pipeline_store_list(db, err, sizeof err), err);
}

static json_t *require_id(const json_t *request, const char **id)
{
	*id = string_argument(request, "id");
	return *id == NULL ? protocol_error("\"id\" is required") : NULL;
}

/*
 * A periodic pipeline's schedule as the scheduler reads it: its time zone
 * and the next slot from now (UTC). Left out when it has no valid one.
 */
static void add_schedule(json_t *pipeline, const char *default_zone)
{
	const char *mode = json_string_value(json_object_get(pipeline, "trigger_mode"));
	struct schedule_trigger trigger;
	char err[512];
	if (mode == NULL || strcmp(mode, "periodic") != 0 ||
	    schedule_trigger_parse(json_object_get(pipeline, "config"), &trigger, err, sizeof err) != 0)
		return;
	struct time_zone *zone = time_zone_load(trigger.time_zone[0] != '\0' ? trigger.time_zone : default_zone, err,
						sizeof err);
	if (zone == NULL)
		return;
	struct schedule schedule = { trigger.interval_seconds, trigger.start_minute, zone };
	char next[40];
	time_format_iso8601((double)schedule_next_slot(&schedule, (int64_t)time_now_seconds()), next, sizeof next);
	json_object_set_new(pipeline, "schedule",
			    json_pack("{s:s, s:s}", "time_zone", time_zone_name(zone), "next_slot", next));
	time_zone_free(zone);
}

static json_t *handle_pipelines_show(struct control_context *context, const json_t *request)
{
	const char *id;
	json_t *missing = require_id(request, &id);
	if (missing != NULL)
		return missing;
	WITH_DB(context, err, db);
	json_t *pipeline = pipeline_store_show(db, id, err, sizeof err);
	if (pipeline != NULL)
		add_schedule(pipeline, context->daemon->config.scheduler_time_zone);
	return wrap("pipeline", pipeline, err);
}

static json_t *set_active(struct control_context *context, const json_t *request, bool active)
{
	const char *id;
	json_t *missing = require_id(request, &id);
	if (missing != NULL)
		return missing;
	WITH_DB(context, err, db);
	return wrap("pipeline", pipeline_store_set_active(db, id, active, err, sizeof err), err);
}

static json_t *handle_pipelines_enable(struct control_context *context, const json_t *request)
{
	return set_active(context, request, true);
}

static json_t *handle_pipelines_disable(struct control_context *context, const json_t *request)
{
	return set_active(context, request, false);
}

static json_t *handle_executions_list(struct control_context *context, const json_t *request)
{
	const char *status = string_argument(request, "status");
	if (status != NULL && strcmp(status, "PENDING") != 0 && strcmp(status, "RUNNING") != 0 &&
	    strcmp(status, "SUCCEEDED") != 0 && strcmp(status, "FAILED") != 0)
		return protocol_error("status must be PENDING, RUNNING, SUCCEEDED or FAILED");
	const json_t *limit = json_object_get(request, "limit");
	if (limit != NULL && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
			      json_integer_value(limit) > 10000))
		return protocol_error("limit must be a whole number from 1 to 10000");
	WITH_DB(context, err, db);
	return wrap("executions",
		    execution_store_list(db, string_argument(request, "pipeline"), status,
					 string_argument(request, "signal"), limit != NULL ? (int)json_integer_value(limit) : 20, err, sizeof err),
		    err);
}

static json_t *handle_signals_show(struct control_context *context, const json_t *request)
{
	const char *id;
	json_t *missing = require_id(request, &id);
	if (missing != NULL)
		return missing;
	WITH_DB(context, err, db);
	return wrap("report", signal_store_show(db, id, err, sizeof err), err);
}

static json_t *handle_executions_show(struct control_context *context, const json_t *request)
{
	const char *id;
	json_t *missing = require_id(request, &id);
	if (missing != NULL)
		return missing;
	WITH_DB(context, err, db);
	return wrap("execution", execution_store_show(db, id, err, sizeof err), err);
}

static json_t *handle_bars_load(struct control_context *context, const json_t *request)
{
	char why[256];
	struct bar_list bars = { 0 };
	if (bars_from_json(json_object_get(request, "bars"), &bars, why, sizeof why) != 0)
		return protocol_error("bars.load: %s", why);
	long inserted, updated;
	PGconn *db = control_db(context, why, sizeof why);
	json_t *response;
	if (db == NULL) {
		response = protocol_error("postgres unavailable: %s", why);
	} else if (bar_store_upsert(db, &bars, &inserted, &updated, why, sizeof why) != 0) {
		response = protocol_error("bars.load: %s", why);
	} else {
		response = protocol_ok();
		json_object_set_new(response, "inserted", json_integer(inserted));
		json_object_set_new(response, "updated", json_integer(updated));
	}
	bar_list_free(&bars);
	return response;
}

static json_t *handle_bars_list(struct control_context *context, const json_t *request)
{
	(void)request;
	WITH_DB(context, err, db);
	return wrap("tickers", bar_store_summary(db, err, sizeof err), err);
}

/* An optional "user" argument: NULL when absent; *bad set when present but not a name. */
static const char *user_argument(const json_t *request, json_t **bad)
{
	const json_t *user = json_object_get(request, "user");
	*bad = NULL;
	if (user == NULL || json_is_null(user))
		return NULL;
	if (!json_is_string(user) || json_string_length(user) < 1 || json_string_length(user) > 128)
		*bad = protocol_error("user must be a user name (1 to 128 characters)");
	return json_string_value(user);
}

static json_t *handle_positions_list(struct control_context *context, const json_t *request)
{
	json_t *bad;
	const char *user = user_argument(request, &bad);
	if (bad != NULL)
		return bad;
	WITH_DB(context, err, db);
	return wrap("users", portfolio_report_positions(db, user, err, sizeof err), err);
}

static json_t *handle_orders_list(struct control_context *context, const json_t *request)
{
	json_t *bad;
	const char *user = user_argument(request, &bad);
	if (bad != NULL)
		return bad;
	const json_t *limit = json_object_get(request, "limit");
	if (limit != NULL && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
			      json_integer_value(limit) > PORTFOLIO_REPORT_MAX_ORDERS))
		return protocol_error("limit must be a whole number from 1 to %d", PORTFOLIO_REPORT_MAX_ORDERS);
	WITH_DB(context, err, db);
	return wrap("orders",
		    portfolio_report_orders(db, user, limit != NULL ? (int)json_integer_value(limit) : 20, err, sizeof err),
		    err);
}

static const struct control_request_type request_types[] = {
	{ "status", handle_status },
	{ "metrics", handle_metrics },
	{ "inject", handle_inject },
	{ "trace", handle_trace },
	{ "pipelines.add", handle_pipelines_add },
	{ "pipelines.list", handle_pipelines_list },
	{ "pipelines.show", handle_pipelines_show },
	{ "pipelines.enable", handle_pipelines_enable },
	{ "pipelines.disable", handle_pipelines_disable },
	{ "executions.list", handle_executions_list },
	{ "executions.show", handle_executions_show },
	{ "signals.show", handle_signals_show },
	{ "bars.load", handle_bars_load },
	{ "bars.list", handle_bars_list },
	{ "positions.list", handle_positions_list },
	{ "orders.list", handle_orders_list },
};

const struct control_request_type *control_request_types(size_t *count)
{
	*count = sizeof request_types / sizeof request_types[0];
	return request_types;
}

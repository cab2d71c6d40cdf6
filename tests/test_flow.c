/*
 * End to end: one signal travelling the whole flow on the real local stack
 * (mock Kafka broker process, redis-server, PostgreSQL, sigtrigd), driven
 * through the sigtrig CLI as a user would.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "harness.h"
#include "protocol.h"
#include "timeutil.h"

#define FLOW_TIMEOUT_MS 30000

START_TEST(test_injected_signal_runs_pipeline_to_success_with_result_in_redis)
{
	char *pipeline = harness_add_pipeline("aapl-momentum", "AAPL");
	char *signal_id = harness_inject_one("AAPL");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "SUCCEEDED", FLOW_TIMEOUT_MS));
	PGconn *db = harness_db();
	char *pipeline_of_run = harness_query_value(db, "SELECT pipeline_id FROM executions WHERE $1 = ANY(signal_ids)",
						    signal_id);
	ck_assert_str_eq(pipeline_of_run, pipeline);
	char *task_id = harness_query_value(db, "SELECT task_id FROM executions WHERE $1 = ANY(signal_ids)", signal_id);
	ck_assert_ptr_nonnull(task_id);
	char *steps = harness_query_value(db,
					  "SELECT jsonb_array_length(result->'steps') FROM executions WHERE $1 = ANY(signal_ids)",
					  signal_id);
	ck_assert_ptr_nonnull(steps);
	ck_assert_int_ge(atoi(steps), 5);
	/* The bias step weighed the signal itself, as consumed: BULLISH at 90. */
	char *view = harness_query_value(db,
					 "SELECT concat_ws(' ', s->'output'->'tickers'->'AAPL'->>'signal',"
					 " s->'output'->'tickers'->'AAPL'->>'signal_confidence')"
					 " FROM executions e, jsonb_array_elements(e.result->'steps') s"
					 " WHERE $1 = ANY(e.signal_ids) AND s->>'agent_type' = 'bias_agent'",
					 signal_id);
	ck_assert_ptr_nonnull(view);
	ck_assert_str_eq(view, "BULLISH 90.0");
	free(view);
	PQfinish(db);

	redisContext *redis = harness_redis();
	redisReply *reply = redisCommand(redis, "GET celery-task-meta-%s", task_id);
	ck_assert_ptr_nonnull(reply);
	ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
	json_t *result = json_loads(reply->str, 0, NULL);
	ck_assert_ptr_nonnull(result);
	ck_assert_str_eq(json_string_value(json_object_get(result, "status")), "SUCCESS");
	ck_assert_str_eq(json_string_value(json_object_get(result, "task_id")), task_id);
	json_decref(result);
	freeReplyObject(reply);
	redisFree(redis);

	/* executions show tells the story of that run, from the signal that woke it. */
	char args[128];
	PGconn *again = harness_db();
	char *execution_id = harness_query_value(again, "SELECT id FROM executions WHERE $1 = ANY(signal_ids)", signal_id);
	PQfinish(again);
	snprintf(args, sizeof args, "executions show --json %s", execution_id);
	int status;
	json_t *shown = harness_sigtrig_json(args, &status);
	ck_assert_int_eq(status, 0);
	ck_assert_str_eq(json_string_value(json_object_get(shown, "status")), "SUCCEEDED");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(shown, "signal_ids"), 0)), signal_id);
	/* The signal as consumed, in the execution: what woke it. */
	const json_t *woke = json_array_get(json_object_get(shown, "signals"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(woke, "signal_id")), signal_id);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(woke, "tickers"), 0), "ticker")),
			 "AAPL");
	json_decref(shown);
	/* For people: the signal and its ticker, then every step with its decision. */
	snprintf(args, sizeof args, "executions show %s", execution_id);
	char *story = NULL;
	ck_assert_int_eq(harness_sigtrig(args, NULL, &story, NULL), 0);
	char expected[256];
	snprintf(expected, sizeof expected, "execution %s  SUCCEEDED\n", execution_id);
	ck_assert_msg(strncmp(story, expected, strlen(expected)) == 0, "%s", story);
	snprintf(expected, sizeof expected, "signals\n  %s  ", signal_id);
	ck_assert_msg(strstr(story, expected) != NULL, "%s", story);
	ck_assert_msg(strstr(story, "    AAPL       BULLISH  90") != NULL, "%s", story);
	const char *agents[] = { "1 market_data_agent  completed", "2 bias_agent         completed",
				 "3 strategy_agent     completed", "4 risk_manager", "5 order_manager" };
	const char *previous = story;
	for (size_t i = 0; i < sizeof agents / sizeof agents[0]; i++) {
		const char *found = strstr(previous, agents[i]);
		ck_assert_msg(found != NULL, "no step '%s' after the ones before in:\n%s", agents[i], story);
		previous = found;
	}
	free(story);

	/* The run's signal is in both latency histograms; the dispatcher's own part is the smaller. */
	json_t *metrics = harness_sigtrig_json("metrics --json", &status);
	ck_assert_int_eq(status, 0);
	const json_t *whole = json_object_get(metrics, "signal_to_enqueue_seconds");
	const json_t *held = json_object_get(metrics, "signal_consumed_to_enqueue_seconds");
	ck_assert_int_ge(json_integer_value(json_object_get(held, "count")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(held, "count")),
			 json_integer_value(json_object_get(whole, "count")));
	double held_sum = json_number_value(json_object_get(held, "sum"));
	ck_assert(held_sum > 0);
	ck_assert_msg(held_sum <= json_number_value(json_object_get(whole, "sum")), "held %f s of %f s", held_sum,
		      json_number_value(json_object_get(whole, "sum")));
	json_decref(metrics);
	free(execution_id);
	free(steps);
	free(task_id);
	free(pipeline_of_run);
	free(signal_id);
	free(pipeline);
}
END_TEST

START_TEST(test_signal_for_pipeline_already_running_is_skipped)
{
	char *pipeline = harness_add_pipeline("msft-busy", "MSFT");
	/* A run in progress, as a worker holding it would leave it. */
	PGconn *db = harness_db();
	char running_id[40];
	harness_new_uuid(running_id);
	const char *values[] = { running_id, pipeline };
	PGresult *insert = PQexecParams(db,
					"INSERT INTO executions (id, pipeline_id, status, started_at)"
					" VALUES ($1, $2, 'RUNNING', now())",
					2, NULL, values, NULL, NULL, 0);
	ck_assert_int_eq(PQresultStatus(insert), PGRES_COMMAND_OK);
	PQclear(insert);

	int status;
	json_t *before = harness_sigtrig_json("status --json", &status);
	ck_assert_ptr_nonnull(before);
	json_int_t skipped_before =
		json_integer_value(json_object_get(json_object_get(before, "counters"), "pipelines_skipped_running_total"));
	json_decref(before);

	char *signal_id = harness_inject_one("MSFT");
	int64_t deadline = time_monotonic_ms() + FLOW_TIMEOUT_MS;
	json_int_t skipped_after = skipped_before;
	while (skipped_after == skipped_before && time_monotonic_ms() < deadline) {
		usleep(100 * 1000);
		json_t *after = harness_sigtrig_json("status --json", &status);
		skipped_after = json_integer_value(
			json_object_get(json_object_get(after, "counters"), "pipelines_skipped_running_total"));
		json_decref(after);
	}
	ck_assert_int_eq(skipped_after, skipped_before + 1);
	char *count = harness_query_value(db, "SELECT count(*) FROM executions WHERE pipeline_id = $1", pipeline);
	ck_assert_str_eq(count, "1");
	char *triggered = harness_query_value(db, "SELECT count(*) FROM executions WHERE $1 = ANY(signal_ids)", signal_id);
	ck_assert_str_eq(triggered, "0");
	free(count);
	free(triggered);
	free(signal_id);
	free(pipeline);
	PQfinish(db);
}
END_TEST

START_TEST(test_signal_published_by_another_kafka_client_triggers)
{
	char *pipeline = harness_add_pipeline("googl-from-kcat", "GOOGL");
	char signal_id[40];
	harness_new_uuid(signal_id);
	char path[600];
	snprintf(path, sizeof path, "%s/kcat-signal.json", harness.dir);
	FILE *file = fopen(path, "w");
	ck_assert_ptr_nonnull(file);
	fprintf(file,
		"{\"signal_id\":\"%s\",\"timestamp\":1733875200,\"signal_type\":\"golden_cross\","
		"\"source\":\"kcat\",\"tickers\":[{\"ticker\":\"GOOGL\",\"signal\":\"BULLISH\","
		"\"confidence\":85.0,\"reasoning\":\"50 SMA crossed above 200 SMA\"}],\"metadata\":{}}\n",
		signal_id);
	fclose(file);
	char command[2048];
	snprintf(command, sizeof command, "kcat -b '%s' -t '%s' -P -k GOOGL -l '%s'",
		 harness.config.kafka_bootstrap_servers, harness.config.kafka_topic, path);
	ck_assert_int_eq(system(command), 0);
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "SUCCEEDED", FLOW_TIMEOUT_MS));
	PGconn *db = harness_db();
	char *pipeline_of_run = harness_query_value(db, "SELECT pipeline_id FROM executions WHERE $1 = ANY(signal_ids)",
						    signal_id);
	ck_assert_str_eq(pipeline_of_run, pipeline);
	free(pipeline_of_run);
	PQfinish(db);
	free(pipeline);
}
END_TEST

START_TEST(test_trace_follow_shows_every_stage_of_a_signal)
{
	char *pipeline = harness_add_pipeline("nvda-traced", "NVDA");
	char signal_id[40];
	harness_new_uuid(signal_id);
	char trace_path[600], command[2048];
	snprintf(trace_path, sizeof trace_path, "%s/trace.jsonl", harness.dir);
	/* Stops by itself after the six stages of one triggered signal. */
	snprintf(command, sizeof command,
		 "timeout 60 '%s/sigtrig' trace --follow --json --signal %s --count 6 --dir '%s' >'%s' 2>/dev/null &",
		 harness.bin, signal_id, harness.dir, trace_path);
	ck_assert_int_eq(system(command), 0);
	sleep(2); /* every daemon notices the new follower within a second */
	char input[1024];
	snprintf(input, sizeof input,
		 "{\"signal_id\":\"%s\",\"signal_type\":\"manual\",\"source\":\"test\",\"tickers\":"
		 "[{\"ticker\":\"NVDA\",\"signal\":\"BEARISH\",\"confidence\":70}]}\n",
		 signal_id);
	char *out = NULL, *err = NULL;
	ck_assert_int_eq(harness_sigtrig("inject -f -", input, &out, &err), 0);
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "SUCCEEDED", FLOW_TIMEOUT_MS));
	const char *stages[] = { "published", "consumed", "matched", "enqueued", "started", "finished" };
	bool seen[6] = { false };
	int64_t deadline = time_monotonic_ms() + 10000;
	int seen_count = 0;
	while (seen_count < 6 && time_monotonic_ms() < deadline) {
		usleep(100 * 1000);
		FILE *trace = fopen(trace_path, "r");
		if (trace == NULL)
			continue;
		char line[4096];
		while (fgets(line, sizeof line, trace) != NULL) {
			json_t *event = json_loads(line, 0, NULL);
			if (event == NULL)
				continue;
			ck_assert_str_eq(json_string_value(json_object_get(event, "signal_id")), signal_id);
			const char *stage = json_string_value(json_object_get(event, "stage"));
			for (int i = 0; i < 6; i++)
				if (stage != NULL && strcmp(stage, stages[i]) == 0 && !seen[i]) {
					seen[i] = true;
					seen_count++;
				}
			json_decref(event);
		}
		fclose(trace);
	}
	for (int i = 0; i < 6; i++)
		ck_assert_msg(seen[i], "stage %s not traced", stages[i]);
	free(out);
	free(err);
	free(pipeline);
}
END_TEST

START_TEST(test_inject_reports_bad_lines_by_number_and_sends_the_rest)
{
	const char *input = "{\"signal_type\":\"t\",\"source\":\"s\",\"tickers\":[{\"ticker\":\"IBM\",\"signal\":\"BULLISH\",\"confidence\":60}]}\n"
			    "{not json\n"
			    "{\"signal_type\":\"t\",\"source\":\"s\",\"tickers\":[{\"ticker\":\"IBM\",\"signal\":\"UP\",\"confidence\":60}]}\n"
			    "\n"
			    "{\"signal_type\":\"t\",\"source\":\"s\",\"tickers\":[{\"ticker\":\"IBM\",\"signal\":\"BEARISH\",\"confidence\":61}]}\n";
	char *out = NULL, *err = NULL;
	int status = harness_sigtrig("inject -f -", input, &out, &err);
	ck_assert_int_eq(status, 1);
	ck_assert_msg(strstr(err, "line 2: invalid JSON") != NULL, "stderr: %s", err);
	ck_assert_msg(strstr(err, "line 3: tickers[0].signal") != NULL, "stderr: %s", err);
	int ids = 0;
	for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		ck_assert_int_eq(strlen(line), 36);
		ids++;
	}
	ck_assert_int_eq(ids, 2);
	free(out);
	free(err);
}
END_TEST

START_TEST(test_status_reports_roles_and_healthy_backends)
{
	int status;
	json_t *report = harness_sigtrig_json("status --json", &status);
	ck_assert_int_eq(status, 0);
	ck_assert_ptr_nonnull(report);
	json_t *health = json_object_get(report, "health");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(health, "kafka"), "status")), "ok");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(health, "redis"), "status")), "ok");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(health, "postgres"), "status")), "ok");
	ck_assert_int_eq(json_array_size(json_object_get(report, "roles")), 4);
	/* The PostgreSQL password of the local stack never shows. */
	char *text = json_dumps(report, 0);
	const char *at = strstr(harness.config.postgres_url, "://");
	const char *colon = at != NULL ? strchr(at + 3, ':') : NULL;
	const char *end = colon != NULL ? strchr(colon, '@') : NULL;
	ck_assert_ptr_nonnull(end);
	char password[256];
	snprintf(password, sizeof password, "%.*s", (int)(end - colon - 1), colon + 1);
	ck_assert_ptr_null(strstr(text, password));
	free(text);
	json_decref(report);
}
END_TEST


/* Starts another sigtrigd on the same stack with its own socket, pid and log files. */
static void start_extra_daemon(const char *name, const char *roles, const char *environment)
{
	char command[4096];
	snprintf(command, sizeof command,
		 "SIGTRIG_DAEMON_PID_FILE='%s/%s.pid' SIGTRIG_DAEMON_LOG_FILE='%s/log/%s.log' %s "
		 "'%s/sigtrigd' -c '%s/sigtrig.conf' --roles %s --socket '%s/%s.sock'",
		 harness.dir, name, harness.dir, name, environment != NULL ? environment : "", harness.bin,
		 harness.dir, roles, harness.dir, name);
	ck_assert_int_eq(system(command), 0);
}

static void stop_extra_daemon(const char *name)
{
	char command[1024];
	snprintf(command, sizeof command, "kill $(cat '%s/%s.pid') && sleep 1", harness.dir, name);
	ck_assert_int_eq(system(command), 0);
}

static json_int_t counter_of(const char *socket_name, const char *counter)
{
	char args[1024];
	snprintf(args, sizeof args, "status --json --socket '%s/%s.sock'", harness.dir, socket_name);
	int status;
	json_t *report = harness_sigtrig_json(args, &status);
	json_int_t value = json_integer_value(json_object_get(json_object_get(report, "counters"), counter));
	json_decref(report);
	return value;
}

START_TEST(test_daemon_with_only_some_roles_shares_the_stack)
{
	start_extra_daemon("extra-worker", "worker", NULL);
	char args[1024];
	snprintf(args, sizeof args, "status --json --socket '%s/extra-worker.sock'", harness.dir);
	int status;
	json_t *report = harness_sigtrig_json(args, &status);
	ck_assert_ptr_nonnull(report);
	json_t *roles = json_object_get(report, "roles");
	ck_assert_int_eq(json_array_size(roles), 1);
	ck_assert_str_eq(json_string_value(json_array_get(roles, 0)), "worker");
	ck_assert_ptr_nonnull(json_object_get(json_object_get(report, "role_details"), "worker"));
	ck_assert_ptr_null(json_object_get(json_object_get(report, "role_details"), "dispatcher"));
	json_decref(report);
	/* With two daemons' workers on one queue, runs still complete exactly once each. */
	char *pipeline = harness_add_pipeline("shared-queue", "ORCL");
	for (int i = 0; i < 3; i++) {
		char *signal_id = harness_inject_one("ORCL");
		ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
						 "SUCCEEDED", FLOW_TIMEOUT_MS));
		free(signal_id);
	}
	PGconn *db = harness_db();
	char *live = harness_query_value(db,
					 "SELECT count(*) FROM executions WHERE pipeline_id = $1"
					 " AND status IN ('PENDING', 'RUNNING')",
					 pipeline);
	ck_assert_str_eq(live, "0");
	free(live);
	PQfinish(db);
	stop_extra_daemon("extra-worker");
	free(pipeline);
}
END_TEST

START_TEST(test_mock_generator_publishes_at_its_rate_over_its_tickers)
{
	char *pipeline = harness_add_pipeline("mock-watcher", "MOCKT");
	start_extra_daemon("generator", "generator",
			   "SIGTRIG_GENERATOR_MOCK_ENABLED=true SIGTRIG_GENERATOR_MOCK_RATE=20 "
			   "SIGTRIG_GENERATOR_MOCK_TICKERS=MOCKT");
	int64_t deadline = time_monotonic_ms() + FLOW_TIMEOUT_MS;
	json_int_t generated = 0;
	while (generated < 20 && time_monotonic_ms() < deadline) {
		usleep(200 * 1000);
		generated = counter_of("generator", "signals_generated_total");
	}
	stop_extra_daemon("generator");
	ck_assert_int_ge(generated, 20);
	/* Its signals reach the dispatcher and wake the pipeline watching its ticker. */
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE pipeline_id = $1"
					 " ORDER BY created_at LIMIT 1",
					 pipeline, "SUCCEEDED", FLOW_TIMEOUT_MS));
	free(pipeline);
}
END_TEST

START_TEST(test_garbage_on_the_topic_is_counted_and_does_not_stop_the_dispatcher)
{
	int status;
	json_t *before = harness_sigtrig_json("status --json", &status);
	json_int_t invalid_before =
		json_integer_value(json_object_get(json_object_get(before, "counters"), "signals_invalid_total"));
	json_decref(before);
	char path[600];
	snprintf(path, sizeof path, "%s/garbage.txt", harness.dir);
	FILE *file = fopen(path, "w");
	ck_assert_ptr_nonnull(file);
	fputs("this is not json\n{\"signal_type\":\"x\"}\n", file);
	fclose(file);
	char command[2048];
	snprintf(command, sizeof command, "kcat -b '%s' -t '%s' -P -l '%s'", harness.config.kafka_bootstrap_servers,
		 harness.config.kafka_topic, path);
	ck_assert_int_eq(system(command), 0);
	char *pipeline = harness_add_pipeline("after-garbage", "AMD");
	char *signal_id = harness_inject_one("AMD");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "SUCCEEDED", FLOW_TIMEOUT_MS));
	json_t *after = harness_sigtrig_json("status --json", &status);
	json_int_t invalid_after =
		json_integer_value(json_object_get(json_object_get(after, "counters"), "signals_invalid_total"));
	json_decref(after);
	ck_assert_int_eq(invalid_after, invalid_before + 2);
	free(signal_id);
	free(pipeline);
}
END_TEST


START_TEST(test_periodic_pipeline_runs_on_its_interval_and_bad_ones_are_refused)
{
	char *out = NULL, *err = NULL;
	int status = harness_sigtrig("pipelines add --name no-trigger --mode periodic", NULL, &out, &err);
	ck_assert_int_eq(status, 1);
	ck_assert_msg(strstr(err, "time_trigger") != NULL, "stderr: %s", err);
	free(out);
	free(err);
	status = harness_sigtrig("pipelines add --name unknown-agent --ticker X "
				 "--config '{\"nodes\":[{\"agent_type\":\"crystal_ball\"}]}'",
				 NULL, &out, &err);
	ck_assert_int_eq(status, 1);
	ck_assert_msg(strstr(err, "unknown agent type 'crystal_ball'") != NULL, "stderr: %s", err);
	free(out);
	free(err);
	/* A misspelt limit is refused when saved: it would otherwise run with the default. */
	status = harness_sigtrig("pipelines add --name typo --ticker X --config '{\"nodes\":[{\"agent_type\":"
				 "\"market_data_agent\"},{\"agent_type\":\"risk_manager\",\"config\":"
				 "{\"max_ordr_value\":10}}]}'",
				 NULL, &out, &err);
	ck_assert_int_eq(status, 1);
	ck_assert_msg(strstr(err, "config.nodes[1] (risk_manager): config.max_ordr_value: unknown key") != NULL,
		      "stderr: %s", err);
	free(out);
	free(err);
	char *listed = NULL;
	ck_assert_int_eq(harness_sigtrig("pipelines list", NULL, &listed, NULL), 0);
	ck_assert_msg(strstr(listed, " typo ") == NULL, "a refused pipeline was saved: %s", listed);
	free(listed);

	json_t *pipeline = harness_sigtrig_json(
		"pipelines add --json --name every-2s --mode periodic --config "
		"'{\"nodes\":[{\"agent_type\":\"time_trigger\",\"config\":{\"interval\":\"2s\"}},"
		"{\"agent_type\":\"market_data_agent\"},{\"agent_type\":\"bias_agent\"}]}'",
		&status);
	ck_assert_int_eq(status, 0);
	const char *id = json_string_value(json_object_get(pipeline, "id"));
	ck_assert_ptr_nonnull(id);
	/* Two runs, one after the other: the scheduler fired it again after its interval. */
	ck_assert(harness_wait_for_value("SELECT count(*) FROM executions WHERE pipeline_id = $1"
					 " AND status = 'SUCCEEDED' AND triggered_by = 'schedule'",
					 id, "2", FLOW_TIMEOUT_MS));
	char args[128];
	snprintf(args, sizeof args, "pipelines disable %s", id);
	ck_assert_int_eq(harness_sigtrig(args, NULL, NULL, NULL), 0);
	json_decref(pipeline);
}
END_TEST

START_TEST(test_oversized_signal_is_refused_to_the_sender)
{
	/* 40 tickers of 4,000 characters of reasoning: each valid, together over 64 KiB. */
	size_t size = 200000;
	char *input = malloc(size);
	size_t used = (size_t)snprintf(input, size, "{\"signal_type\":\"t\",\"source\":\"s\",\"tickers\":[");
	for (int i = 0; i < 40; i++) {
		used += (size_t)snprintf(input + used, size - used, "%s{\"ticker\":\"BIG%d\",\"signal\":\"NEUTRAL\","
					 "\"confidence\":50,\"reasoning\":\"", i > 0 ? "," : "", i);
		memset(input + used, 'r', 4000);
		used += 4000;
		used += (size_t)snprintf(input + used, size - used, "\"}");
	}
	snprintf(input + used, size - used, "]}\n");
	char *out = NULL, *err = NULL;
	ck_assert_int_eq(harness_sigtrig("inject -f -", input, &out, &err), 1);
	ck_assert_msg(strstr(err, "line 1:") != NULL && strstr(err, "bytes") != NULL, "stderr: %s", err);
	ck_assert_str_eq(out, "");
	free(out);
	free(err);
	free(input);
}
END_TEST

START_TEST(test_daemon_refuses_another_protocol_version_by_number)
{
	char err[256];
	json_t *request = json_pack("{s:i, s:s}", "v", 2, "type", "status");
	json_t *response = protocol_call(harness.config.control_socket, request, err, sizeof err);
	ck_assert_ptr_nonnull(response);
	ck_assert(json_is_false(json_object_get(response, "ok")));
	ck_assert_msg(strstr(json_string_value(json_object_get(response, "error")), "version 2") != NULL, "%s",
		      json_string_value(json_object_get(response, "error")));
	json_decref(response);
	/* The connection-level garbage case: the daemon answers and keeps serving. */
	int fd = protocol_connect(harness.config.control_socket, err, sizeof err);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "{not json\n", 10), 10);
	struct line_reader reader;
	line_reader_init(&reader, fd);
	char *line;
	size_t length;
	ck_assert_int_eq(line_reader_next(&reader, &line, &length), 1);
	ck_assert_msg(strstr(line, "\"ok\":false") != NULL, "%s", line);
	line_reader_free(&reader);
	close(fd);
	int status;
	json_t *report = harness_sigtrig_json("status --json", &status);
	ck_assert_int_eq(status, 0);
	json_decref(report);
}
END_TEST

START_TEST(test_human_trace_prints_numbers_and_strings)
{
	char *pipeline = harness_add_pipeline("intc-traced", "INTC");
	char signal_id[40];
	harness_new_uuid(signal_id);
	char trace_path[600], command[2048];
	snprintf(trace_path, sizeof trace_path, "%s/trace.txt", harness.dir);
	snprintf(command, sizeof command,
		 "timeout 60 '%s/sigtrig' trace --follow --signal %s --count 2 --dir '%s' >'%s' 2>/dev/null &",
		 harness.bin, signal_id, harness.dir, trace_path);
	ck_assert_int_eq(system(command), 0);
	sleep(2);
	char input[512];
	snprintf(input, sizeof input,
		 "{\"signal_id\":\"%s\",\"signal_type\":\"m\",\"source\":\"t\",\"tickers\":"
		 "[{\"ticker\":\"INTC\",\"signal\":\"BULLISH\",\"confidence\":70}]}\n",
		 signal_id);
	ck_assert_int_eq(harness_sigtrig("inject -f -", input, NULL, NULL), 0);
	int64_t deadline = time_monotonic_ms() + 10000;
	char *text = NULL;
	while (time_monotonic_ms() < deadline) {
		usleep(200 * 1000);
		free(text);
		FILE *file = fopen(trace_path, "r");
		text = file != NULL ? calloc(1, 65536) : NULL;
		if (file != NULL) {
			size_t got = fread(text, 1, 65535, file);
			(void)got;
			fclose(file);
		}
		if (text != NULL && strstr(text, " consumed ") != NULL)
			break;
	}
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(strstr(text, " published ") != NULL, "%s", text);
	ck_assert_msg(strstr(text, signal_id) != NULL, "%s", text);
	const char *offset = strstr(text, "offset=");
	ck_assert_msg(offset != NULL && offset[7] >= '0' && offset[7] <= '9', "%s", text);
	ck_assert_msg(strstr(text, "tickers=[\"INTC\"]") != NULL, "%s", text);
	free(text);
	free(pipeline);
}
END_TEST

START_TEST(test_environment_socket_is_used_when_no_dir_is_given)
{
	char command[2048];
	snprintf(command, sizeof command,
		 "cd / && SIGTRIG_CONTROL_SOCKET='%s' '%s/sigtrig' status --json >/dev/null 2>&1",
		 harness.config.control_socket, harness.bin);
	ck_assert_int_eq(WEXITSTATUS(system(command)), 0);
	snprintf(command, sizeof command,
		 "cd / && SIGTRIG_CONTROL_SOCKET=/nonexistent/sock '%s/sigtrig' status >/dev/null 2>&1",
		 harness.bin);
	ck_assert_int_eq(WEXITSTATUS(system(command)), 1);
	/* an explicit --dir outranks the environment */
	snprintf(command, sizeof command,
		 "SIGTRIG_CONTROL_SOCKET=/nonexistent/sock '%s/sigtrig' status --dir '%s' >/dev/null 2>&1",
		 harness.bin, harness.dir);
	ck_assert_int_eq(WEXITSTATUS(system(command)), 0);
	char *out = NULL, *err = NULL;
	ck_assert_int_eq(harness_sigtrig("executions list extra", NULL, &out, &err), 2);
	ck_assert_msg(strstr(err, "usage: sigtrig executions list") != NULL, "%s", err);
	free(out);
	free(err);
}
END_TEST


START_TEST(test_pipelines_and_executions_by_id_explain_a_bad_or_unknown_id)
{
	char *out = NULL, *err = NULL;
	ck_assert_int_eq(harness_sigtrig("pipelines show nope", NULL, &out, &err), 1);
	ck_assert_msg(strstr(err, "sigtrig: pipelines show: 'nope' is not a valid pipeline id") != NULL, "%s", err);
	free(out);
	free(err);
	char id[40], args[128];
	harness_new_uuid(id);
	snprintf(args, sizeof args, "executions show %s", id);
	ck_assert_int_eq(harness_sigtrig(args, NULL, &out, &err), 1);
	ck_assert_msg(strstr(err, "no execution ") != NULL, "%s", err);
	free(out);
	free(err);
	/* disable, then enable: the flag round-trips and list shows it */
	char *pipeline = harness_add_pipeline("toggled", "CSCO");
	snprintf(args, sizeof args, "pipelines disable --json %s", pipeline);
	int status;
	json_t *disabled = harness_sigtrig_json(args, &status);
	ck_assert_int_eq(status, 0);
	ck_assert(json_is_false(json_object_get(disabled, "is_active")));
	json_decref(disabled);
	snprintf(args, sizeof args, "pipelines enable --json %s", pipeline);
	json_t *enabled = harness_sigtrig_json(args, &status);
	ck_assert(json_is_true(json_object_get(enabled, "is_active")));
	json_decref(enabled);
	free(pipeline);
}
END_TEST


/* The postmaster's pid, from the first line of its pid file in the stack. */
static long postgres_pid(void)
{
	return harness_pid_in_file("postgres/data/postmaster.pid");
}

static json_int_t cached_pipelines(void)
{
	int status;
	json_t *report = harness_sigtrig_json("status --json", &status);
	json_int_t count = json_integer_value(json_object_get(json_object_get(report, "cache"), "pipelines"));
	json_decref(report);
	return count;
}


static void stop_postgres_and_wait(void)
{
	long pid = postgres_pid();
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(kill((pid_t)pid, SIGINT), 0);
	int64_t deadline = time_monotonic_ms() + 30000;
	while (kill((pid_t)pid, 0) == 0 && time_monotonic_ms() < deadline) {
		waitpid(-1, NULL, WNOHANG);
		usleep(100 * 1000);
	}
}

START_TEST(test_requests_after_a_postgres_restart_use_a_fresh_connection)
{
	ck_assert_int_eq(harness_sigtrig("pipelines list", NULL, NULL, NULL), 0);
	stop_postgres_and_wait();
	ck_assert_int_eq(harness_sigtrig("up --no-generators", NULL, NULL, NULL), 0);
	char *out = NULL, *err = NULL;
	int status = harness_sigtrig("pipelines list", NULL, &out, &err);
	ck_assert_msg(status == 0, "first request after the restart: %s", err);
	free(out);
	free(err);
}
END_TEST

START_TEST(test_postgres_outage_under_load_loses_nothing_and_the_daemon_survives)
{
	json_int_t cached = cached_pipelines();
	char *pipeline = harness_add_pipeline("outage", "PGDN");
	/* The dispatcher hears of the new pipeline (NOTIFY) before the outage begins. */
	int64_t seen_deadline = time_monotonic_ms() + 10000;
	while (cached_pipelines() <= cached && time_monotonic_ms() < seen_deadline)
		usleep(50 * 1000);
	ck_assert_int_gt(cached_pipelines(), cached);
	stop_postgres_and_wait();
	char input[4096] = "";
	char ids[5][40];
	for (int i = 0; i < 5; i++) {
		harness_new_uuid(ids[i]);
		size_t used = strlen(input);
		snprintf(input + used, sizeof input - used,
			 "{\"signal_id\":\"%s\",\"signal_type\":\"m\",\"source\":\"t\",\"tickers\":"
			 "[{\"ticker\":\"PGDN\",\"signal\":\"BULLISH\",\"confidence\":80}]}\n",
			 ids[i]);
	}
	char *out = NULL, *err = NULL;
	ck_assert_msg(harness_sigtrig("inject -f -", input, &out, &err) == 0, "%s", err);
	free(out);
	free(err);
	sleep(3); /* the dispatcher consumes them and fails to claim, again and again */
	int status;
	json_t *report = harness_sigtrig_json("status --json", &status);
	ck_assert_int_eq(status, 3); /* answered, and says a backend is down */
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(report, "health"), "postgres"),
							   "status")),
			 "down");
	json_decref(report);
	/* 'sigtrig up' restarts what died and leaves the daemon alone. */
	ck_assert_int_eq(harness_sigtrig("up --no-generators", NULL, NULL, NULL), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_msg(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", ids[i],
						     "SUCCEEDED", FLOW_TIMEOUT_MS),
			      "signal %d of 5 lost in the outage", i + 1);
	free(pipeline);
}
END_TEST


/* The decisions of `sigtrig signals show --json ID`, waiting until the signal has one. */
static json_t *decisions_of(const char *signal_id)
{
	char args[128];
	snprintf(args, sizeof args, "signals show --json %s", signal_id);
	int64_t deadline = time_monotonic_ms() + FLOW_TIMEOUT_MS;
	for (;;) {
		int status;
		json_t *report = harness_sigtrig_json(args, &status);
		if (status == 0 && report != NULL) {
			json_t *decisions = json_incref(json_object_get(report, "decisions"));
			json_decref(report);
			return decisions;
		}
		json_decref(report);
		ck_assert_msg(time_monotonic_ms() < deadline, "signal %s never got a decision record", signal_id);
		usleep(100 * 1000);
	}
}

static const char *first_reason(const json_t *decisions)
{
	return json_string_value(json_object_get(json_array_get(decisions, 0), "reason"));
}

static void run_sql(const char *sql, const char *parameter)
{
	PGconn *db = harness_db();
	const char *values[] = { parameter };
	PGresult *result = PQexecParams(db, sql, parameter != NULL ? 1 : 0, NULL, values, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(result) == PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(result));
	PQclear(result);
	PQfinish(db);
}

START_TEST(test_every_consumed_signal_has_a_decision_record)
{
	char *pipeline = harness_add_pipeline("recorded", "RCRD");
	char *claimed = harness_inject_one("RCRD");
	json_t *decisions = decisions_of(claimed);
	ck_assert_int_eq(json_array_size(decisions), 1);
	json_t *decision = json_array_get(decisions, 0);
	ck_assert_str_eq(json_string_value(json_object_get(decision, "decision")), "claimed");
	ck_assert_str_eq(json_string_value(json_object_get(decision, "pipeline_id")), pipeline);
	ck_assert_int_eq(strlen(json_string_value(json_object_get(decision, "execution_id"))), 36);
	json_decref(decisions);

	char *nobody = harness_inject_one("NOBODYWATCHES");
	decisions = decisions_of(nobody);
	ck_assert_str_eq(first_reason(decisions), "no_matching_pipeline");
	json_decref(decisions);

	/* The human form names the decision and the pipeline. */
	char args[128], *out = NULL, *err = NULL;
	snprintf(args, sizeof args, "signals show %s", claimed);
	ck_assert_int_eq(harness_sigtrig(args, NULL, &out, &err), 0);
	ck_assert_msg(strstr(out, "claimed") != NULL && strstr(out, "recorded") != NULL, "%s", out);
	free(out);
	free(err);
	char unknown[40];
	harness_new_uuid(unknown);
	snprintf(args, sizeof args, "signals show %s", unknown);
	ck_assert_int_eq(harness_sigtrig(args, NULL, &out, &err), 1);
	ck_assert_msg(strstr(err, "no signal") != NULL, "%s", err);
	free(out);
	free(err);

	/* Every trigger is in the audit log, which refuses changes. */
	PGconn *db = harness_db();
	char *audited = harness_query_value(db, "SELECT decision FROM audit_log WHERE $1 = ANY(signal_ids)", claimed);
	ck_assert_str_eq(audited, "claimed");
	PGresult *tamper = PQexec(db, "UPDATE audit_log SET decision = 'x'");
	ck_assert_int_eq(PQresultStatus(tamper), PGRES_FATAL_ERROR);
	ck_assert_msg(strstr(PQresultErrorMessage(tamper), "append-only") != NULL, "%s", PQresultErrorMessage(tamper));
	PQclear(tamper);
	free(audited);
	PQfinish(db);
	free(nobody);
	free(claimed);
	free(pipeline);
}
END_TEST

START_TEST(test_owner_without_credits_or_inactive_is_refused_and_recorded)
{
	int status;
	json_t *pipeline = harness_sigtrig_json("pipelines add --json --name broke --ticker BRKE --user pauper", &status);
	ck_assert_int_eq(status, 0);
	run_sql("UPDATE users SET credits = 0 WHERE name = 'pauper'", NULL);
	char *signal_id = harness_inject_one("BRKE");
	json_t *decisions = decisions_of(signal_id);
	ck_assert_str_eq(first_reason(decisions), "no_budget");
	json_decref(decisions);
	free(signal_id);

	run_sql("UPDATE users SET credits = 100, is_active = false WHERE name = 'pauper'", NULL);
	signal_id = harness_inject_one("BRKE");
	decisions = decisions_of(signal_id);
	ck_assert_str_eq(first_reason(decisions), "unauthorized");
	json_decref(decisions);
	PGconn *db = harness_db();
	char *runs = harness_query_value(db, "SELECT count(*) FROM executions WHERE pipeline_id = $1",
					 json_string_value(json_object_get(pipeline, "id")));
	ck_assert_str_eq(runs, "0");
	char *audited = harness_query_value(db, "SELECT reason FROM audit_log WHERE $1 = ANY(signal_ids)", signal_id);
	ck_assert_str_eq(audited, "unauthorized");
	free(audited);
	free(runs);
	PQfinish(db);
	free(signal_id);
	json_decref(pipeline);
}
END_TEST

START_TEST(test_cooldown_skips_signals_right_after_a_run)
{
	int status;
	json_t *pipeline = harness_sigtrig_json(
		"pipelines add --json --name calm --ticker CALM --config '{\"cooldown_seconds\": 3600}'", &status);
	ck_assert_int_eq(status, 0);
	char *first = harness_inject_one("CALM");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", first,
					 "SUCCEEDED", FLOW_TIMEOUT_MS));
	char *second = harness_inject_one("CALM");
	json_t *decisions = decisions_of(second);
	ck_assert_str_eq(first_reason(decisions), "cooldown");
	json_decref(decisions);
	free(second);
	free(first);
	json_decref(pipeline);
}
END_TEST


START_TEST(test_pipeline_filters_are_honoured_and_recorded)
{
	char *out = NULL, *err = NULL;
	ck_assert_int_eq(harness_sigtrig("pipelines add --name bad-filter --ticker FLT "
					 "--config '{\"filters\": {\"min_confidence\": 200}}'",
					 NULL, &out, &err),
			 1);
	ck_assert_msg(strstr(err, "config.filters.min_confidence") != NULL, "%s", err);
	free(out);
	free(err);
	int status;
	json_t *pipeline = harness_sigtrig_json("pipelines add --json --name picky --ticker FLTR --config "
						"'{\"filters\": {\"min_confidence\": 80, \"directions\": [\"BULLISH\"]}}'",
						&status);
	ck_assert_int_eq(status, 0);
	char *weak = NULL;
	ck_assert_int_eq(harness_sigtrig("inject --ticker FLTR --signal BULLISH --confidence 50", NULL, &weak, NULL), 0);
	weak[strcspn(weak, "\n")] = '\0';
	json_t *decisions = decisions_of(weak);
	ck_assert_str_eq(first_reason(decisions), "filtered");
	json_decref(decisions);
	char *strong = harness_inject_one("FLTR"); /* BULLISH, 90 */
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", strong,
					 "SUCCEEDED", FLOW_TIMEOUT_MS));
	PGconn *db = harness_db();
	char *count = harness_query_value(db, "SELECT count(*) FROM executions WHERE $1 = ANY(signal_ids)", weak);
	ck_assert_str_eq(count, "0");
	free(count);
	PQfinish(db);
	free(strong);
	free(weak);
	json_decref(pipeline);
}
END_TEST


START_TEST(test_per_source_rate_limit_records_the_excess_and_counts_it)
{
	/* Below the marker line 'sigtrig up' keeps; up then restarts the daemon with it. */
	char path[700];
	snprintf(path, sizeof path, "%s/sigtrig.conf", harness.dir);
	FILE *conf = fopen(path, "a");
	ck_assert_ptr_nonnull(conf);
	fputs("dispatcher.rate_limits = limited=0.001:2\n", conf);
	fclose(conf);
	ck_assert_int_eq(harness_sigtrig("up --no-generators", NULL, NULL, NULL), 0);
	char *pipeline = harness_add_pipeline("limited-watch", "LIMT");
	char *ids[4];
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(harness_sigtrig("inject --ticker LIMT --source limited", NULL, &ids[i], NULL), 0);
		ids[i][strcspn(ids[i], "\n")] = '\0';
	}
	int limited = 0;
	for (int i = 0; i < 4; i++) {
		json_t *decisions = decisions_of(ids[i]);
		const char *reason = first_reason(decisions);
		limited += reason != NULL && strcmp(reason, "rate_limited") == 0;
		json_decref(decisions);
	}
	ck_assert_int_eq(limited, 2);
	char *out = NULL;
	ck_assert_int_eq(harness_sigtrig("metrics", NULL, &out, NULL), 0);
	ck_assert_msg(strstr(out, "pipelines_skipped_total{reason=\"rate_limited\"} 2") != NULL, "%s", out);
	free(out);
	for (int i = 0; i < 4; i++)
		free(ids[i]);
	free(pipeline);
}
END_TEST

/* A bars entry of `bars list --json` or of a load report, by ticker; NULL when absent. */
static const json_t *bars_entry(const json_t *tickers, const char *ticker)
{
	size_t index;
	const json_t *entry;
	json_array_foreach(tickers, index, entry)
		if (strcmp(json_string_value(json_object_get(entry, "ticker")), ticker) == 0)
			return entry;
	return NULL;
}

START_TEST(test_bars_load_fills_the_store_the_market_data_agent_reads)
{
	const char *source = getenv("SIGTRIG_SOURCE_DIR");
	ck_assert_msg(source != NULL, "SIGTRIG_SOURCE_DIR is not set");
	char args[4200];
	snprintf(args, sizeof args, "bars load --json '%s/data/eu_stock_markets.csv'", source);
	int status;
	json_t *report = harness_sigtrig_json(args, &status);
	ck_assert_int_eq(status, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(report, "bars")), 4 * 1860);
	ck_assert_int_eq(json_integer_value(json_object_get(report, "inserted")) +
				 json_integer_value(json_object_get(report, "updated")),
			 4 * 1860);
	const char *indices[] = { "CAC", "DAX", "FTSE", "SMI" };
	for (size_t i = 0; i < 4; i++) {
		const json_t *entry = bars_entry(json_object_get(report, "tickers"), indices[i]);
		ck_assert_msg(entry != NULL, "the load report has no %s", indices[i]);
		ck_assert_int_eq(json_integer_value(json_object_get(entry, "bars")), 1860);
		ck_assert_int_eq(json_integer_value(json_object_get(entry, "last_day")), 1859);
	}
	json_decref(report);
	/* Loading it again changes nothing and says so. */
	report = harness_sigtrig_json(args, &status);
	ck_assert_int_eq(status, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(report, "inserted")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(report, "updated")), 4 * 1860);
	json_decref(report);

	/* The store holds the file's last DAX close (day 1859: 5473.72). */
	json_t *listed = harness_sigtrig_json("bars list --json", &status);
	ck_assert_int_eq(status, 0);
	const json_t *dax = bars_entry(listed, "DAX");
	ck_assert_ptr_nonnull(dax);
	ck_assert_int_eq(json_integer_value(json_object_get(dax, "bars")), 1860);
	ck_assert_int_eq(json_integer_value(json_object_get(dax, "first_day")), 0);
	ck_assert_double_eq_tol(json_number_value(json_object_get(dax, "last_close")), 5473.72, 1e-6);
	json_decref(listed);

	/* A file with one bad line loads nothing, and the error names the line. */
	char *out = NULL, *err = NULL;
	status = harness_sigtrig("bars load -", "ticker,day,close\nZZBAD,1,5\nZZBAD,2,oops\n", &out, &err);
	ck_assert_int_eq(status, 1);
	ck_assert_msg(strstr(err, "-: line 3: close: 'oops' is not a positive price; nothing loaded") != NULL, "%s",
		      err);
	free(out);
	free(err);
	listed = harness_sigtrig_json("bars list --json", &status);
	ck_assert_ptr_null(bars_entry(listed, "ZZBAD"));
	json_decref(listed);

	/* A run of a pipeline on DAX reads the loaded bars: the latest 50 by default. */
	char *pipeline = harness_add_pipeline("dax-bars", "DAX");
	char *signal_id = harness_inject_one("DAX");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "SUCCEEDED", FLOW_TIMEOUT_MS));
	PGconn *db = harness_db();
	char *summary = harness_query_value(db,
					    "SELECT result->'steps'->0->'output'->'tickers'->'DAX' FROM executions"
					    " WHERE $1 = ANY(signal_ids)",
					    signal_id);
	PQfinish(db);
	json_t *bars = json_loads(summary, 0, NULL);
	ck_assert_msg(bars != NULL, "no DAX summary in the market data step: %s", summary);
	ck_assert_int_eq(json_integer_value(json_object_get(bars, "bars")), 50);
	ck_assert_int_eq(json_integer_value(json_object_get(bars, "first_day")), 1810);
	ck_assert_int_eq(json_integer_value(json_object_get(bars, "last_day")), 1859);
	json_decref(bars);
	free(summary);
	free(signal_id);
	free(pipeline);
}
END_TEST

static void stack_up(void) { harness_up("--no-generators"); }
static void stack_down(void) { harness_down(); }

static Suite *flow_suite(void)
{
	Suite *suite = suite_create("flow");
	TCase *flow = tcase_create("end_to_end");
	tcase_add_unchecked_fixture(flow, stack_up, stack_down);
	tcase_set_timeout(flow, 120);
	tcase_add_test(flow, test_status_reports_roles_and_healthy_backends);
	tcase_add_test(flow, test_bars_load_fills_the_store_the_market_data_agent_reads);
	tcase_add_test(flow, test_injected_signal_runs_pipeline_to_success_with_result_in_redis);
	tcase_add_test(flow, test_signal_for_pipeline_already_running_is_skipped);
	tcase_add_test(flow, test_signal_published_by_another_kafka_client_triggers);
	tcase_add_test(flow, test_trace_follow_shows_every_stage_of_a_signal);
	tcase_add_test(flow, test_inject_reports_bad_lines_by_number_and_sends_the_rest);
	tcase_add_test(flow, test_garbage_on_the_topic_is_counted_and_does_not_stop_the_dispatcher);
	tcase_add_test(flow, test_daemon_with_only_some_roles_shares_the_stack);
	tcase_add_test(flow, test_mock_generator_publishes_at_its_rate_over_its_tickers);
	tcase_add_test(flow, test_periodic_pipeline_runs_on_its_interval_and_bad_ones_are_refused);
	tcase_add_test(flow, test_oversized_signal_is_refused_to_the_sender);
	tcase_add_test(flow, test_daemon_refuses_another_protocol_version_by_number);
	tcase_add_test(flow, test_human_trace_prints_numbers_and_strings);
	tcase_add_test(flow, test_environment_socket_is_used_when_no_dir_is_given);
	tcase_add_test(flow, test_pipelines_and_executions_by_id_explain_a_bad_or_unknown_id);
	tcase_add_test(flow, test_every_consumed_signal_has_a_decision_record);
	tcase_add_test(flow, test_owner_without_credits_or_inactive_is_refused_and_recorded);
	tcase_add_test(flow, test_cooldown_skips_signals_right_after_a_run);
	tcase_add_test(flow, test_pipeline_filters_are_honoured_and_recorded);
	tcase_add_test(flow, test_requests_after_a_postgres_restart_use_a_fresh_connection);
	tcase_add_test(flow, test_postgres_outage_under_load_loses_nothing_and_the_daemon_survives);
	/* Last: it restarts the daemon with a rate limit. */
	tcase_add_test(flow, test_per_source_rate_limit_records_the_excess_and_counts_it);
	suite_add_tcase(suite, flow);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(flow_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

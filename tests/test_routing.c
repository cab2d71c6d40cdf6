/*
 * What the dispatcher does with each consumed message, on a real stack:
 * a message that is not a signal goes to the dead-letter topic with its
 * reason; a redelivered signal claims nothing twice; a ticker-scoped
 * pipeline runs per ticker; backpressure pauses the intake while the task
 * queue is too deep.
 */
#include <check.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "harness.h"
#include "kafka.h"
#include "timeutil.h"

#define ROUTING_TIMEOUT_MS 30000

/* Publishes `text` (one message a line) to `topic` with kcat, as any other Kafka client would. */
static void kcat_publish(const char *topic, const char *text)
{
	char path[600];
	snprintf(path, sizeof path, "%s/kcat-input.txt", harness.dir);
	FILE *file = fopen(path, "w");
	ck_assert_ptr_nonnull(file);
	fputs(text, file);
	fclose(file);
	char command[2048];
	snprintf(command, sizeof command, "kcat -b '%s' -t '%s' -P -l '%s'", harness.config.kafka_bootstrap_servers,
		 topic, path);
	ck_assert_int_eq(system(command), 0);
}

/* Every message of the dead-letter topic so far, as a JSON array of the letters. */
static json_t *dead_letters(void)
{
	char path[600], command[2048];
	snprintf(path, sizeof path, "%s/dead-letters.txt", harness.dir);
	snprintf(command, sizeof command, "kcat -b '%s' -t trading-signals.dlq -C -o beginning -e -q >'%s'",
		 harness.config.kafka_bootstrap_servers, path);
	ck_assert_int_eq(system(command), 0);
	FILE *file = fopen(path, "r");
	ck_assert_ptr_nonnull(file);
	json_t *letters = json_array();
	char *line = NULL;
	size_t size = 0;
	while (getline(&line, &size, file) > 0) {
		json_t *letter = json_loads(line, 0, NULL);
		ck_assert_msg(letter != NULL, "a dead letter that is not JSON: %.200s", line);
		json_array_append_new(letters, letter);
	}
	free(line);
	fclose(file);
	return letters;
}

static json_int_t counter(const char *name)
{
	int status;
	json_t *report = harness_sigtrig_json("status --json", &status);
	json_int_t value = json_integer_value(json_object_get(json_object_get(report, "counters"), name));
	json_decref(report);
	return value;
}

static json_int_t wait_for_counter_above(const char *name, json_int_t floor)
{
	int64_t deadline = time_monotonic_ms() + ROUTING_TIMEOUT_MS;
	json_int_t value = counter(name);
	while (value <= floor && time_monotonic_ms() < deadline) {
		usleep(100 * 1000);
		value = counter(name);
	}
	return value;
}

/* The letter whose reason contains `needle`, or NULL. */
static const json_t *letter_with_reason(const json_t *letters, const char *needle)
{
	size_t index;
	const json_t *letter;
	json_array_foreach(letters, index, letter)
		if (strstr(json_string_value(json_object_get(letter, "reason")), needle) != NULL)
			return letter;
	return NULL;
}

START_TEST(test_messages_that_are_not_signals_go_to_the_dead_letter_topic_with_their_reason)
{
	json_int_t before = counter("signals_dead_lettered_total");
	kcat_publish("trading-signals",
		     "this is not json\n"
		     "{\"signal_type\":\"x\",\"source\":\"y\",\"tickers\":[{\"ticker\":\"AAPL\",\"signal\":\"UP\"}]}\n");
	json_int_t after = wait_for_counter_above("signals_dead_lettered_total", before + 1);
	ck_assert_int_eq(after, before + 2);
	json_t *letters = dead_letters();
	const json_t *garbage = letter_with_reason(letters, "invalid JSON");
	ck_assert_msg(garbage != NULL, "no dead letter for the text that is not JSON");
	ck_assert_str_eq(json_string_value(json_object_get(garbage, "topic")), "trading-signals");
	ck_assert(json_is_integer(json_object_get(garbage, "partition")));
	ck_assert(json_is_integer(json_object_get(garbage, "offset")));
	ck_assert(json_is_false(json_object_get(garbage, "payload_truncated")));
	const char *encoded = json_string_value(json_object_get(garbage, "payload_base64"));
	unsigned char *payload = NULL;
	size_t length = 0;
	char err[128];
	ck_assert_int_eq(base64_decode(encoded, strlen(encoded), &payload, &length, err, sizeof err), 0);
	ck_assert_str_eq((const char *)payload, "this is not json");
	free(payload);
	/* The reason names the field that is wrong. */
	const json_t *wrong_direction = letter_with_reason(letters, "signal");
	ck_assert_msg(wrong_direction != NULL && wrong_direction != garbage,
		      "no dead letter naming the bad direction");
	json_decref(letters);
	/* And the dispatcher goes on: a valid signal after them still wakes its pipeline. */
	char *pipeline = harness_add_pipeline("after-dead-letters", "DLQX");
	char *signal_id = harness_inject_one("DLQX");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "SUCCEEDED", ROUTING_TIMEOUT_MS));
	free(signal_id);
	free(pipeline);
}
END_TEST

START_TEST(test_oversized_message_is_dead_lettered_with_its_payload_truncated_at_the_bound)
{
	json_int_t before = counter("signals_dead_lettered_total");
	/* 300 KiB of one JSON string: over SIGNAL_MAX_BYTES and over the dead letter's payload bound. */
	size_t size = 300 * 1024;
	char *text = malloc(size + 16);
	ck_assert_ptr_nonnull(text);
	strcpy(text, "{\"x\":\"");
	memset(text + 6, 'a', size);
	strcpy(text + 6 + size, "\"}\n");
	kcat_publish("trading-signals", text);
	free(text);
	ck_assert_int_eq(wait_for_counter_above("signals_dead_lettered_total", before), before + 1);
	json_t *letters = dead_letters();
	const json_t *big = NULL;
	size_t index;
	const json_t *letter;
	json_array_foreach(letters, index, letter)
		if (json_integer_value(json_object_get(letter, "payload_bytes")) == (json_int_t)(size + 8))
			big = letter;
	ck_assert_msg(big != NULL, "no dead letter of %zu bytes", size + 8);
	ck_assert(json_is_true(json_object_get(big, "payload_truncated")));
	/* 256 KiB of payload, base64: 4 characters per 3 bytes. */
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(big, "payload_base64"))),
			  (256 * 1024 + 2) / 3 * 4);
	json_decref(letters);
}
END_TEST

START_TEST(test_redelivered_signal_claims_nothing_twice)
{
	char *pipeline = harness_add_pipeline("replayed", "RPLY");
	char signal_id[40];
	harness_new_uuid(signal_id);
	char message[512];
	snprintf(message, sizeof message,
		 "{\"signal_id\":\"%s\",\"signal_type\":\"manual\",\"source\":\"replay-test\","
		 "\"tickers\":[{\"ticker\":\"RPLY\",\"signal\":\"BULLISH\",\"confidence\":90}]}\n",
		 signal_id);
	kcat_publish("trading-signals", message);
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "SUCCEEDED", ROUTING_TIMEOUT_MS));
	/* The same message again, as a replay after a crash delivers it: its run is over, yet no second one. */
	json_int_t replayed_before = counter("pipelines_replayed_total");
	kcat_publish("trading-signals", message);
	ck_assert_int_gt(wait_for_counter_above("pipelines_replayed_total", replayed_before), replayed_before);
	PGconn *db = harness_db();
	char *runs = harness_query_value(db, "SELECT count(*) FROM executions WHERE $1 = ANY(signal_ids)", signal_id);
	ck_assert_str_eq(runs, "1");
	char *decisions = harness_query_value(db, "SELECT count(*) FROM signal_decisions WHERE signal_id = $1",
					      signal_id);
	ck_assert_str_eq(decisions, "1");
	free(runs);
	free(decisions);
	PQfinish(db);
	free(pipeline);
}
END_TEST

static char *add_ticker_scoped_pipeline(void)
{
	int status;
	json_t *pipeline = harness_sigtrig_json("pipelines add --json --name per-ticker --ticker SCPA --ticker SCPB"
						" --config '{\"claim_scope\": \"ticker\"}'",
						&status);
	ck_assert_int_eq(status, 0);
	ck_assert_ptr_nonnull(pipeline);
	char *id = strdup(json_string_value(json_object_get(pipeline, "id")));
	json_decref(pipeline);
	return id;
}

START_TEST(test_ticker_scoped_pipeline_runs_for_one_ticker_while_another_is_live)
{
	char *pipeline = add_ticker_scoped_pipeline();
	/* A run for SCPA is live (as a worker would hold it): it blocks SCPA alone. */
	PGconn *db = harness_db();
	char running_id[40];
	harness_new_uuid(running_id);
	const char *values[] = { running_id, pipeline };
	PGresult *insert = PQexecParams(db,
					"INSERT INTO executions (id, pipeline_id, status, started_at, claim_key)"
					" VALUES ($1, $2, 'HOLDING', now(), 'SCPA')",
					2, NULL, values, NULL, NULL, 0);
	ck_assert_int_eq(PQresultStatus(insert), PGRES_COMMAND_OK);
	PQclear(insert);
	char *for_b = harness_inject_one("SCPB");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", for_b,
					 "SUCCEEDED", ROUTING_TIMEOUT_MS));
	char *key = harness_query_value(db, "SELECT claim_key FROM executions WHERE $1 = ANY(signal_ids)", for_b);
	ck_assert_str_eq(key, "SCPB");
	free(key);
	/* Its run worked on SCPB alone: the market-data step loaded that ticker only. */
	char *tickers = harness_query_value(db,
					    "SELECT result->'steps'->0->'output'->'tickers' FROM executions"
					    " WHERE $1 = ANY(signal_ids)",
					    for_b);
	ck_assert_ptr_nonnull(tickers);
	ck_assert_msg(strstr(tickers, "SCPB") != NULL && strstr(tickers, "SCPA") == NULL, "run tickers: %s",
		      tickers);
	free(tickers);
	char *for_a = harness_inject_one("SCPA");
	ck_assert(harness_wait_for_value("SELECT reason FROM signal_decisions WHERE signal_id = $1", for_a,
					 "already_running", ROUTING_TIMEOUT_MS));
	/* The audit log has the claim, not the skip: that one is in the decision records only. */
	char *audited = harness_query_value(db, "SELECT decision FROM audit_log WHERE $1 = ANY(signal_ids)", for_b);
	ck_assert_str_eq(audited, "claimed");
	free(audited);
	char *skipped = harness_query_value(db, "SELECT count(*) FROM audit_log WHERE $1 = ANY(signal_ids)", for_a);
	ck_assert_str_eq(skipped, "0");
	free(skipped);
	PQfinish(db);
	free(for_a);
	free(for_b);
	free(pipeline);
}
END_TEST

/* The daemon's log line of EVENT whose signal_ids holds SIGNAL_ID, parsed; NULL when none comes. */
static json_t *wait_for_log_line(const char *event, const char *signal_id)
{
	char path[700];
	snprintf(path, sizeof path, "%s/log/sigtrigd.log", harness.dir);
	for (int64_t deadline = time_monotonic_ms() + ROUTING_TIMEOUT_MS; time_monotonic_ms() < deadline;
	     usleep(100 * 1000)) {
		FILE *log = fopen(path, "r");
		char line[8192];
		while (log != NULL && fgets(line, sizeof line, log) != NULL) {
			/* A line still being written (no newline yet) is read again on the next pass. */
			if (strchr(line, '\n') == NULL || strstr(line, event) == NULL || strstr(line, signal_id) == NULL)
				continue;
			json_t *parsed = json_loads(line, 0, NULL);
			ck_assert_msg(parsed != NULL, "not a JSON line: %s", line);
			const json_t *ids = json_object_get(parsed, "signal_ids");
			if (strcmp(json_string_value(json_object_get(parsed, "event")), event) == 0 &&
			    json_is_array(ids) && strcmp(json_string_value(json_array_get(ids, 0)), signal_id) == 0) {
				fclose(log);
				return parsed;
			}
			json_decref(parsed);
		}
		if (log != NULL)
			fclose(log);
	}
	return NULL;
}

START_TEST(test_a_ticker_with_quotes_braces_and_backslashes_is_claimed_and_recorded_as_it_is)
{
	/* Any printable ASCII is a ticker; the claims reach PostgreSQL as array literals, so it must be escaped. */
	static const char ticker[] = "Q\"{\\,}";
	int status;
	json_t *added = harness_sigtrig_json("pipelines add --json --name odd-ticker --ticker 'Q\"{\\,}'"
					     " --config '{\"claim_scope\": \"ticker\"}'",
					     &status);
	ck_assert_int_eq(status, 0);
	ck_assert_ptr_nonnull(added);
	json_decref(added);
	char *out = NULL, *err = NULL;
	ck_assert_int_eq(harness_sigtrig("inject --ticker 'Q\"{\\,}' --signal BULLISH --confidence 90", NULL, &out, &err),
			 0);
	out[strcspn(out, "\n")] = '\0';
	ck_assert(harness_wait_for_value("SELECT decision FROM signal_decisions WHERE signal_id = $1", out, "claimed",
					 ROUTING_TIMEOUT_MS));
	PGconn *db = harness_db();
	char *recorded = harness_query_value(db, "SELECT tickers[1] FROM signal_decisions WHERE signal_id = $1", out);
	ck_assert_str_eq(recorded, ticker);
	char *key = harness_query_value(db, "SELECT claim_key FROM executions WHERE $1 = ANY(signal_ids)", out);
	ck_assert_str_eq(key, ticker);
	free(key);
	/* The claim's log line, written by hand on the hot path, is JSON with the ticker escaped. */
	json_t *line = wait_for_log_line("signal_matched_to_pipeline", out);
	ck_assert_msg(line != NULL, "no signal_matched_to_pipeline line for %s", out);
	char *execution = harness_query_value(db, "SELECT id FROM executions WHERE $1 = ANY(signal_ids)", out);
	ck_assert_str_eq(json_string_value(json_object_get(line, "execution_id")), execution);
	ck_assert_str_eq(json_string_value(json_object_get(line, "level")), "info");
	ck_assert_ptr_nonnull(json_string_value(json_object_get(line, "time")));
	ck_assert_ptr_nonnull(json_string_value(json_object_get(line, "pipeline_id")));
	json_t *tickers = json_pack("[s]", ticker);
	ck_assert(json_equal(json_object_get(line, "matched_tickers"), tickers));
	json_decref(tickers);
	free(execution);
	json_decref(line);
	free(recorded);
	PQfinish(db);
	free(out);
	free(err);
}
END_TEST

START_TEST(test_unknown_claim_scope_is_refused_when_the_pipeline_is_added)
{
	char *out = NULL, *err = NULL;
	int status = harness_sigtrig("pipelines add --name bad-scope --ticker SCPC --config '{\"claim_scope\": \"user\"}'",
				     NULL, &out, &err);
	ck_assert_int_eq(status, 1);
	ck_assert_msg(strstr(err, "claim_scope") != NULL, "%s", err);
	free(out);
	free(err);
}
END_TEST

/* Appends settings below the marker line of DIR/sigtrig.conf; 'sigtrig up' then restarts the daemon. */
static void append_settings(const char *lines)
{
	char path[700];
	snprintf(path, sizeof path, "%s/sigtrig.conf", harness.dir);
	FILE *conf = fopen(path, "a");
	ck_assert_ptr_nonnull(conf);
	fputs(lines, conf);
	fclose(conf);
	ck_assert_int_eq(harness_sigtrig("up --no-generators", NULL, NULL, NULL), 0);
}

/* One field of the dispatcher's section of `sigtrig status --json`, a new reference (NULL when absent). */
static json_t *dispatcher_detail(const char *key)
{
	int status;
	json_t *report = harness_sigtrig_json("status --json", &status);
	json_t *value = json_incref(
		json_object_get(json_object_get(json_object_get(report, "role_details"), "dispatcher"), key));
	json_decref(report);
	return value;
}

static json_int_t cached_pipelines(void)
{
	json_t *value = dispatcher_detail("cache_pipelines");
	json_int_t count = json_integer_value(value);
	json_decref(value);
	return count;
}

START_TEST(test_a_claim_does_not_make_the_dispatcher_reload_its_cache)
{
	char *pipeline = harness_add_pipeline("no-reload", "NRLD");
	char *first = harness_inject_one("NRLD");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", first,
					 "SUCCEEDED", ROUTING_TIMEOUT_MS));
	/* The pipeline is cached now; what follows changes only last_triggered_at and executions. */
	json_int_t reloads = counter("cache_reloads_total");
	for (int i = 0; i < 3; i++) {
		char *signal_id = harness_inject_one("NRLD");
		ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
						 "SUCCEEDED", ROUTING_TIMEOUT_MS));
		free(signal_id);
	}
	sleep(1); /* a notification would have been read by now */
	ck_assert_int_eq(counter("cache_reloads_total"), reloads);
	free(first);
	free(pipeline);
}
END_TEST

START_TEST(test_pipeline_changes_reach_the_cache_by_notify_not_by_the_full_reload)
{
	/* An hour between full reloads: whatever the cache learns in this test, NOTIFY told it. */
	append_settings("dispatcher.cache_refresh_s = 3600\n");
	int64_t deadline = time_monotonic_ms() + ROUTING_TIMEOUT_MS;
	while (cached_pipelines() < 1 && time_monotonic_ms() < deadline)
		usleep(100 * 1000);
	/* Added and signalled at once: the signal is matched, not missed. */
	char *pipeline = harness_add_pipeline("notified", "NTFA");
	char *first = harness_inject_one("NTFA");
	ck_assert(harness_wait_for_value("SELECT decision FROM signal_decisions WHERE signal_id = $1", first,
					 "claimed", ROUTING_TIMEOUT_MS));
	/* Edited by hand in SQL, as an operator might: the new ticker wakes it. */
	PGconn *db = harness_db();
	const char *values[] = { pipeline };
	PGresult *update = PQexecParams(db, "UPDATE pipelines SET scanner_tickers = '{NTFA,NTFB}' WHERE id = $1", 1,
					NULL, values, NULL, NULL, 0);
	ck_assert_int_eq(PQresultStatus(update), PGRES_COMMAND_OK);
	PQclear(update);
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", first,
					 "SUCCEEDED", ROUTING_TIMEOUT_MS));
	char *second = harness_inject_one("NTFB");
	ck_assert(harness_wait_for_value("SELECT decision FROM signal_decisions WHERE signal_id = $1", second,
					 "claimed", ROUTING_TIMEOUT_MS));
	/* Disabled: it leaves the cache. */
	json_int_t cached = cached_pipelines();
	char args[128];
	snprintf(args, sizeof args, "pipelines disable %s", pipeline);
	ck_assert_int_eq(harness_sigtrig(args, NULL, NULL, NULL), 0);
	deadline = time_monotonic_ms() + ROUTING_TIMEOUT_MS;
	while (cached_pipelines() >= cached && time_monotonic_ms() < deadline)
		usleep(100 * 1000);
	ck_assert_int_eq(cached_pipelines(), cached - 1);
	PQfinish(db);
	free(first);
	free(second);
	free(pipeline);
}
END_TEST

/* Runs SQL with one parameter on `db`, asserting that it worked. */
static void execute(PGconn *db, const char *sql, const char *parameter)
{
	const char *values[] = { parameter };
	PGresult *result = PQexecParams(db, sql, parameter != NULL ? 1 : 0, NULL, values, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK,
		      "%s: %s", sql, PQerrorMessage(db));
	PQclear(result);
}

/* A run of the pipeline held live by hand, as a worker elsewhere (or an open order) would hold it. */
static void hold_a_run(PGconn *db, const char *pipeline)
{
	execute(db,
		"INSERT INTO executions (id, pipeline_id, status, started_at)"
		" VALUES (gen_random_uuid(), $1, 'HOLDING', now())",
		pipeline);
}

static void end_held_runs(PGconn *db, const char *pipeline)
{
	execute(db,
		"UPDATE executions SET status = 'SUCCEEDED', finished_at = now()"
		" WHERE pipeline_id = $1 AND status = 'HOLDING'",
		pipeline);
}

/* Injects a signal for the ticker and waits for its decision record; returns the reason ("" when claimed). */
static char *decide_one(PGconn *db, const char *ticker)
{
	char *signal_id = harness_inject_one(ticker);
	ck_assert_msg(harness_wait_for_value("SELECT count(*) > 0 FROM signal_decisions WHERE signal_id = $1", signal_id,
					     "t", ROUTING_TIMEOUT_MS),
		      "no decision for %s", signal_id);
	char *reason = harness_query_value(db, "SELECT coalesce(reason, '') FROM signal_decisions WHERE signal_id = $1",
					   signal_id);
	free(signal_id);
	return reason;
}

/* Injects a signal for the ticker and asserts its decision: `expected` is the skip's reason, "" for a claim. */
static void assert_decided(PGconn *db, const char *ticker, const char *expected)
{
	char *reason = decide_one(db, ticker);
	ck_assert_msg(strcmp(reason, expected) == 0, "a signal for %s was decided '%s', not '%s' ('' is a claim)",
		      ticker, reason, expected);
	free(reason);
}

/*
 * The dispatcher remembers a run it found live and skips its pipeline's
 * next signals without asking PostgreSQL, each still recorded as
 * already_running; the run's end, whoever commits it, is heard at once.
 */
START_TEST(test_a_run_found_live_is_remembered_until_its_end_is_announced)
{
	char *pipeline = harness_add_pipeline("remembered", "MEMA");
	PGconn *db = harness_db();
	hold_a_run(db, pipeline);
	/* The first signal asks PostgreSQL, which refuses: the run is remembered. */
	json_int_t from_memory = counter("pipelines_skipped_from_memory_total");
	assert_decided(db, "MEMA", "already_running");
	ck_assert_int_eq(counter("pipelines_skipped_from_memory_total"), from_memory);
	/* The next ones are skipped from memory, and recorded all the same. */
	for (int i = 1; i <= 2; i++) {
		assert_decided(db, "MEMA", "already_running");
		ck_assert_int_eq(counter("pipelines_skipped_from_memory_total"), from_memory + i);
	}
	/* The gauge is set four times a second. */
	ck_assert_int_ge(wait_for_counter_above("dispatcher_live_runs_known", 0), 1);
	/* A skip made before the database is kept in the signal's own row, no row of its own, and shown. */
	char *signal_id = harness_inject_one("MEMA");
	ck_assert(harness_wait_for_value("SELECT skips->0->>'reason' FROM signals WHERE signal_id = $1", signal_id,
					 "already_running", ROUTING_TIMEOUT_MS));
	char *rows = harness_query_value(db, "SELECT count(*) FROM signal_decision_rows WHERE signal_id = $1", signal_id);
	ck_assert_str_eq(rows, "0");
	free(rows);
	char args[128];
	snprintf(args, sizeof args, "signals show --json %s", signal_id);
	int status;
	json_t *shown = harness_sigtrig_json(args, &status);
	ck_assert_int_eq(status, 0);
	const json_t *decision = json_array_get(json_object_get(shown, "decisions"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(decision, "decision")), "skipped");
	ck_assert_str_eq(json_string_value(json_object_get(decision, "reason")), "already_running");
	ck_assert_str_eq(json_string_value(json_object_get(decision, "pipeline_id")), pipeline);
	ck_assert_str_eq(json_string_value(json_object_get(decision, "pipeline_name")), "remembered");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(decision, "tickers"), 0)), "MEMA");
	json_decref(shown);
	free(signal_id);
	/* Ended by hand in SQL, as an operator might: the next signal starts a run at once. */
	end_held_runs(db, pipeline);
	assert_decided(db, "MEMA", "");
	ck_assert_int_eq(counter("pipelines_skipped_from_memory_total"), from_memory + 3);
	PQfinish(db);
	free(pipeline);
}
END_TEST

/*
 * An end the dispatcher never hears of (the trigger disabled here, which
 * nothing in sigtrig does) costs at most dispatcher.live_run_memory_ms of
 * wrong skips: then PostgreSQL is asked again.
 */
START_TEST(test_a_remembered_run_is_asked_about_again_after_the_memory_limit)
{
	append_settings("dispatcher.live_run_memory_ms = 3000\n");
	char *pipeline = harness_add_pipeline("forgotten", "MEMB");
	PGconn *db = harness_db();
	hold_a_run(db, pipeline);
	assert_decided(db, "MEMB", "already_running");
	execute(db, "ALTER TABLE executions DISABLE TRIGGER executions_run_ended", NULL);
	end_held_runs(db, pipeline);
	execute(db, "ALTER TABLE executions ENABLE TRIGGER executions_run_ended", NULL);
	int64_t ended_ms = time_monotonic_ms();
	json_int_t from_memory = counter("pipelines_skipped_from_memory_total");
	char *reason = decide_one(db, "MEMB");
	/* Only when the dispatcher was slower than the limit would this be a claim: not on a working machine. */
	if (time_monotonic_ms() - ended_ms < 2000) {
		ck_assert_str_eq(reason, "already_running");
		ck_assert_int_eq(counter("pipelines_skipped_from_memory_total"), from_memory + 1);
	}
	free(reason);
	usleep(3100 * 1000);
	/* Past the memory's limit: PostgreSQL is asked, and the pipeline is free. */
	assert_decided(db, "MEMB", "");
	PQfinish(db);
	free(pipeline);
}
END_TEST

/* With the memory off, every match asks PostgreSQL. */
START_TEST(test_no_memory_of_live_runs_when_it_is_off)
{
	append_settings("dispatcher.live_run_memory_ms = 0\n");
	char *pipeline = harness_add_pipeline("unremembered", "MEMC");
	PGconn *db = harness_db();
	hold_a_run(db, pipeline);
	json_int_t from_memory = counter("pipelines_skipped_from_memory_total");
	for (int i = 0; i < 3; i++)
		assert_decided(db, "MEMC", "already_running");
	ck_assert_int_eq(counter("pipelines_skipped_from_memory_total"), from_memory);
	end_held_runs(db, pipeline);
	PQfinish(db);
	free(pipeline);
	append_settings("dispatcher.live_run_memory_ms = 5000\n");
}
END_TEST

/* The pid of the dispatcher's cache loader's backend, as pg_stat_activity names it; 0 when there is none. */
static pid_t cache_loader_backend(PGconn *db)
{
	PGresult *result = PQexec(db, "SELECT pid FROM pg_stat_activity WHERE application_name = 'sigtrigd cache loader'");
	pid_t pid = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1
			    ? (pid_t)atol(PQgetvalue(result, 0, 0))
			    : 0;
	PQclear(result);
	return pid;
}

START_TEST(test_a_stalled_cache_reload_does_not_stop_the_decisions)
{
	/* A reload a second, on the loader's own connection, whose backend the test then freezes. */
	append_settings("dispatcher.cache_refresh_s = 1\n");
	char *pipeline = harness_add_pipeline("reload-stalled", "RLST");
	char *first = harness_inject_one("RLST");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", first,
					 "SUCCEEDED", ROUTING_TIMEOUT_MS));
	PGconn *db = harness_db();
	pid_t loader = 0;
	for (int64_t deadline = time_monotonic_ms() + ROUTING_TIMEOUT_MS; loader == 0 && time_monotonic_ms() < deadline;)
		if ((loader = cache_loader_backend(db)) == 0)
			usleep(100 * 1000);
	ck_assert_int_gt(loader, 0);
	ck_assert_int_eq(kill(loader, SIGSTOP), 0);
	/* Nothing asserted until the backend runs again: a frozen backend would hang the stack's stop. */
	json_int_t reloads = counter("cache_reloads_total");
	sleep(3); /* two reloads were due meanwhile: the one under way is stuck */
	json_int_t reloads_while_frozen = counter("cache_reloads_total");
	/* A change announced meanwhile holds the rounds for its load a moment, not as long as the load takes. */
	int added = harness_sigtrig("pipelines add --name reload-stalled-other --ticker RLSX", NULL, NULL, NULL);
	char *second = harness_inject_one("RLST");
	bool decided = harness_wait_for_value("SELECT decision FROM signal_decisions WHERE signal_id = $1", second,
					      "claimed", ROUTING_TIMEOUT_MS);
	kill(loader, SIGCONT);
	ck_assert_int_eq(added, 0);
	ck_assert_int_le(reloads_while_frozen, reloads + 1);
	ck_assert_msg(decided, "a signal waited for the cache's reload");
	ck_assert_int_gt(wait_for_counter_above("cache_reloads_total", reloads_while_frozen), reloads_while_frozen);
	PQfinish(db);
	free(first);
	free(second);
	free(pipeline);
}
END_TEST

/* Whether the cache loader's backend waits on a lock now. */
static bool cache_loader_waits_on_a_lock(PGconn *db)
{
	PGresult *result = PQexec(db, "SELECT 1 FROM pg_stat_activity WHERE application_name = 'sigtrigd cache loader'"
				      " AND wait_event_type = 'Lock'");
	bool waiting = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1;
	PQclear(result);
	return waiting;
}

START_TEST(test_a_reload_waiting_on_a_lock_does_not_keep_the_daemon_from_stopping)
{
	/* Reloads every second (the previous case's setting): one soon waits on the test's lock of users. */
	append_settings("dispatcher.cache_refresh_s = 1\n");
	PGconn *lock = harness_db();
	PGresult *locked = PQexec(lock, "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
	ck_assert_int_eq(PQresultStatus(locked), PGRES_COMMAND_OK);
	PQclear(locked);
	PGconn *db = harness_db();
	bool waiting = false;
	for (int64_t deadline = time_monotonic_ms() + ROUTING_TIMEOUT_MS; !waiting && time_monotonic_ms() < deadline;)
		if (!(waiting = cache_loader_waits_on_a_lock(db)))
			usleep(100 * 1000);
	pid_t daemon = harness_pid_in_file("run/sigtrigd.pid");
	bool stopped = false;
	if (waiting && daemon > 0 && kill(daemon, SIGTERM) == 0) {
		int64_t deadline = time_monotonic_ms() + 10000;
		while (kill(daemon, 0) == 0 && time_monotonic_ms() < deadline)
			usleep(50 * 1000);
		stopped = kill(daemon, 0) != 0;
	}
	/* The lock goes before any assertion: a daemon still waiting would otherwise wait for ever. */
	PQfinish(lock);
	ck_assert_msg(waiting, "no reload came to wait on the lock");
	ck_assert_int_gt(daemon, 0);
	ck_assert_msg(stopped, "the daemon still ran 10 s after SIGTERM, its reload waiting on a lock");
	PQfinish(db);
	/* Back up for the cases that follow. */
	ck_assert_int_eq(harness_sigtrig("up --no-generators", NULL, NULL, NULL), 0);
}
END_TEST

static bool dispatcher_backpressure(void)
{
	json_t *value = dispatcher_detail("backpressure");
	bool on = json_is_true(value);
	json_decref(value);
	return on;
}

/* Fails the test unless the dispatcher pauses for backpressure within the timeout. */
static void wait_for_backpressure(const char *cause)
{
	int64_t deadline = time_monotonic_ms() + ROUTING_TIMEOUT_MS;
	while (!dispatcher_backpressure() && time_monotonic_ms() < deadline)
		usleep(100 * 1000);
	ck_assert_msg(dispatcher_backpressure(), "the dispatcher never paused for %s", cause);
}

/* A signal for TICKER, injected while paused: it waits in Kafka, undecided. Its id. */
static char *inject_while_paused(PGconn *db, const char *ticker)
{
	char *signal_id = harness_inject_one(ticker);
	sleep(3);
	char *decided = harness_query_value(db, "SELECT count(*) FROM signal_decisions WHERE signal_id = $1", signal_id);
	ck_assert_str_eq(decided, "0");
	free(decided);
	return signal_id;
}

START_TEST(test_backpressure_pauses_the_intake_until_the_queue_drains)
{
	/* No worker drains the queue here; 3 queued tasks are too many. */
	append_settings("daemon.roles = dispatcher,scheduler\ndispatcher.backpressure_queue_depth = 3\n");
	char *pipeline = harness_add_pipeline("pressured", "BKPR");
	redisContext *redis = harness_redis();
	for (int i = 0; i < 4; i++)
		freeReplyObject(redisCommand(redis, "LPUSH %s %s", harness.config.redis_queue, "{\"stand-in\": true}"));
	wait_for_backpressure("the deep queue");
	/* Paused: the signal waits in Kafka, undecided, for as long as the queue stays deep. */
	PGconn *db = harness_db();
	char *signal_id = inject_while_paused(db, "BKPR");
	char *out = NULL;
	ck_assert_int_eq(harness_sigtrig("metrics", NULL, &out, NULL), 0);
	ck_assert_msg(strstr(out, "\ndispatcher_backpressure 1\n") != NULL, "%s", out);
	free(out);
	/* The workers catch up: the queue drains, the intake resumes, the signal is claimed. */
	freeReplyObject(redisCommand(redis, "DEL %s", harness.config.redis_queue));
	ck_assert(harness_wait_for_value("SELECT decision FROM signal_decisions WHERE signal_id = $1", signal_id,
					 "claimed", ROUTING_TIMEOUT_MS));
	ck_assert(!dispatcher_backpressure());
	ck_assert_int_ge(counter("dispatcher_backpressure_pauses_total"), 1);
	redisFree(redis);
	PQfinish(db);
	free(signal_id);
	free(pipeline);
}
END_TEST

/*
 * Replaces the queue's oldest task by a copy whose delivery tag, a time-
 * ordered (version 7) UUID, says it was sent `age_ms` ago: its first 48
 * bits are the sending time in Unix milliseconds.
 */
static void queue_task_sent_ms_ago(redisContext *redis, int64_t age_ms)
{
	redisReply *reply = redisCommand(redis, "LINDEX %s -1", harness.config.redis_queue);
	ck_assert(reply != NULL && reply->type == REDIS_REPLY_STRING);
	char *task = strdup(reply->str);
	freeReplyObject(reply);
	char *tag = strstr(task, "\"delivery_tag\":");
	ck_assert_ptr_nonnull(tag);
	tag = strchr(tag + strlen("\"delivery_tag\":"), '"');
	ck_assert_ptr_nonnull(tag);
	tag++;
	uint64_t sent_ms = (uint64_t)(time_now_seconds() * 1000) - (uint64_t)age_ms;
	char hex[16];
	snprintf(hex, sizeof hex, "%012llx", (unsigned long long)sent_ms);
	memcpy(tag, hex, 8);       /* xxxxxxxx-xxxx-7... */
	memcpy(tag + 9, hex + 8, 4);
	/* In one transaction: a look at the queue in between would find it empty. */
	freeReplyObject(redisCommand(redis, "MULTI"));
	freeReplyObject(redisCommand(redis, "RPOP %s", harness.config.redis_queue));
	freeReplyObject(redisCommand(redis, "RPUSH %s %s", harness.config.redis_queue, task));
	reply = redisCommand(redis, "EXEC");
	ck_assert(reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2);
	freeReplyObject(reply);
	free(task);
}

START_TEST(test_backpressure_pauses_the_intake_while_the_oldest_task_is_too_old)
{
	/* No bound on the depth now: one task waiting 1.5 s is too old. Still no worker. */
	append_settings("dispatcher.backpressure_queue_depth = 0\ndispatcher.backpressure_queue_age_ms = 1500\n");
	redisContext *redis = harness_redis();
	freeReplyObject(redisCommand(redis, "DEL %s", harness.config.redis_queue));
	char *first_pipeline = harness_add_pipeline("aged-first", "AGED");
	char *second_pipeline = harness_add_pipeline("aged-second", "AGE2");
	char *first = harness_inject_one("AGED");
	ck_assert(harness_wait_for_value("SELECT decision FROM signal_decisions WHERE signal_id = $1", first, "claimed",
					 ROUTING_TIMEOUT_MS));
	wait_for_backpressure("the old task");
	/* The age is the task's own, read off its delivery tag; the depth, 1, bounds nothing. */
	json_t *age = dispatcher_detail("queue_oldest_age_ms");
	json_t *depth = dispatcher_detail("queue_depth");
	ck_assert_int_ge(json_integer_value(age), 1500);
	ck_assert_int_lt(json_integer_value(age), 60000);
	ck_assert_int_eq(json_integer_value(depth), 1);
	json_decref(depth);
	json_decref(age);
	char *out = NULL;
	ck_assert_int_eq(harness_sigtrig("metrics", NULL, &out, NULL), 0);
	ck_assert_msg(strstr(out, "\ntask_queue_oldest_age_milliseconds ") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "\ndispatcher_backpressure 1\n") != NULL, "%s", out);
	free(out);
	/* Paused: a signal for the other pipeline waits in Kafka, undecided. */
	PGconn *db = harness_db();
	char *second = inject_while_paused(db, "AGE2");
	/*
	 * The workers catch up: the old task is taken, and the next one waiting
	 * was sent 760 ms ago, older than half the bound but under it. The
	 * intake resumes: paused, the queue only ages, so waiting for half
	 * would wait for an empty queue. Looked at before that task is 1.5 s
	 * old and pauses the intake again (the queue is looked at four times
	 * a second).
	 */
	queue_task_sent_ms_ago(redis, 760);
	int64_t swapped_ms = time_monotonic_ms();
	bool paused;
	while ((paused = dispatcher_backpressure()) && time_monotonic_ms() - swapped_ms < 650)
		usleep(20 * 1000);
	ck_assert_msg(!paused, "still paused with the oldest task under the bound");
	freeReplyObject(redisCommand(redis, "DEL %s", harness.config.redis_queue));
	ck_assert(harness_wait_for_value("SELECT decision FROM signal_decisions WHERE signal_id = $1", second,
					 "claimed", ROUTING_TIMEOUT_MS));
	redisFree(redis);
	PQfinish(db);
	free(second);
	free(first);
	free(second_pipeline);
	free(first_pipeline);
}
END_TEST

/* librdkafka only logs a position that fell off the log (auto.offset.reset = earliest): it must be caught there. */
START_TEST(test_offset_that_fell_off_the_log_is_recognised_in_librdkafkas_log)
{
	ck_assert(kafka_log_is_offset_reset(
		"OFFSET", "trading-signals [2]: offset reset (at offset 1234, broker 1) to BEGINNING: "
			  "fetch failed due to requested offset not available on the broker: "
			  "Broker: Offset out of range"));
	ck_assert(kafka_log_is_offset_reset("OFFSET", "trading-signals [0]: offset reset (at offset 17) to "
						      "BEGINNING: fetch failed: Broker: Offset out of range"));
	/* A first start with no committed position is not a loss. */
	ck_assert(!kafka_log_is_offset_reset("OFFSET", "trading-signals [0]: offset reset (at offset INVALID, "
						       "broker 1) to BEGINNING: no previously committed offset "
						       "available: Local: No offset stored"));
	ck_assert(!kafka_log_is_offset_reset("FETCH", "Offset out of range"));
	ck_assert(!kafka_log_is_offset_reset(NULL, NULL));
}
END_TEST

static void stack_up(void) { harness_up("--no-generators"); }
static void stack_down(void) { harness_down(); }

static Suite *routing_suite(void)
{
	Suite *suite = suite_create("routing");
	TCase *routing = tcase_create("routing");
	tcase_add_unchecked_fixture(routing, stack_up, stack_down);
	tcase_set_timeout(routing, 180);
	tcase_add_test(routing, test_offset_that_fell_off_the_log_is_recognised_in_librdkafkas_log);
	tcase_add_test(routing, test_messages_that_are_not_signals_go_to_the_dead_letter_topic_with_their_reason);
	tcase_add_test(routing, test_oversized_message_is_dead_lettered_with_its_payload_truncated_at_the_bound);
	tcase_add_test(routing, test_redelivered_signal_claims_nothing_twice);
	tcase_add_test(routing, test_ticker_scoped_pipeline_runs_for_one_ticker_while_another_is_live);
	tcase_add_test(routing, test_unknown_claim_scope_is_refused_when_the_pipeline_is_added);
	tcase_add_test(routing, test_a_ticker_with_quotes_braces_and_backslashes_is_claimed_and_recorded_as_it_is);
	tcase_add_test(routing, test_a_claim_does_not_make_the_dispatcher_reload_its_cache);
	tcase_add_test(routing, test_pipeline_changes_reach_the_cache_by_notify_not_by_the_full_reload);
	tcase_add_test(routing, test_a_stalled_cache_reload_does_not_stop_the_decisions);
	tcase_add_test(routing, test_a_reload_waiting_on_a_lock_does_not_keep_the_daemon_from_stopping);
	tcase_add_test(routing, test_a_run_found_live_is_remembered_until_its_end_is_announced);
	tcase_add_test(routing, test_a_remembered_run_is_asked_about_again_after_the_memory_limit);
	tcase_add_test(routing, test_no_memory_of_live_runs_when_it_is_off);
	/* Last: they restart the daemon without workers. */
	tcase_add_test(routing, test_backpressure_pauses_the_intake_until_the_queue_drains);
	tcase_add_test(routing, test_backpressure_pauses_the_intake_while_the_oldest_task_is_too_old);
	suite_add_tcase(suite, routing);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(routing_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

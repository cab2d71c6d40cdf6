/*
 * End to end: what happens to executions when things die, on the real
 * local stack. The stack's own daemon runs every role but the worker;
 * workers run in separate daemons (worker.lease_s = 3 from the
 * environment) so that a test can SIGKILL one in the middle of a run.
 *
 * A run is made slow without touching the agents: the test locks
 * market_bars, so the market data agent, the first step of the default
 * chain, waits on PostgreSQL for as long as the test wants.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "agents.h"
#include "celery.h"
#include "harness.h"
#include "timeutil.h"

#define RECOVERY_TIMEOUT_MS 30000
#define LEASE_S 3
/* Retries 0.5-1 s, 1-2 s and 2-4 s after each failure: seconds for a test to act in between. */
#define MAX_RETRIES 3
#define RETRY_BACKOFF_S 1.0

static void exec_sql(PGconn *db, const char *sql, int count, const char *const *values)
{
	PGresult *result = PQexecParams(db, sql, count, NULL, values, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK,
		      "%s: %s", sql, PQresultErrorMessage(result));
	PQclear(result);
}

/* ---- worker daemons ---- */

/* A worker daemon NAME, with more environment (VAR=value ... or ""). */
static void start_worker_with(const char *name, const char *environment)
{
	char command[4096];
	snprintf(command, sizeof command,
		 "SIGTRIG_WORKER_LEASE_S=%d SIGTRIG_WORKER_MAX_RETRIES=%d SIGTRIG_WORKER_RETRY_BACKOFF_S=%g %s"
		 " SIGTRIG_DAEMON_PID_FILE='%s/%s.pid'"
		 " SIGTRIG_DAEMON_LOG_FILE='%s/log/%s.log'"
		 " '%s/sigtrigd' -c '%s/sigtrig.conf' --roles worker --socket '%s/%s.sock'",
		 LEASE_S, MAX_RETRIES, RETRY_BACKOFF_S, environment, harness.dir, name, harness.dir, name, harness.bin,
		 harness.dir, harness.dir, name);
	ck_assert_int_eq(system(command), 0);
}

static void start_worker(const char *name) { start_worker_with(name, ""); }

static pid_t worker_pid(const char *name)
{
	char path[128];
	snprintf(path, sizeof path, "%s.pid", name);
	return harness_pid_in_file(path);
}

/* Whether pid is a sigtrigd still running: a pid file may outlive its process, and the pid be reused. */
static bool is_running_sigtrigd(pid_t pid)
{
	char path[64], command[256] = "";
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	FILE *file = pid > 0 ? fopen(path, "r") : NULL;
	if (file == NULL)
		return false;
	size_t length = fread(command, 1, sizeof command - 1, file);
	fclose(file);
	command[length] = '\0';
	return strstr(command, "sigtrigd") != NULL;
}

static int log_lines(const char *event, const char *id)
{
	char command[2048];
	snprintf(command, sizeof command,
		 "cat '%s'/log/sigtrigd.log '%s'/log/worker-*.log 2>/dev/null"
		 " | grep -F -- '\"event\":\"%s\"' | grep -c -F -- '%s'",
		 harness.dir, harness.dir, event, id);
	FILE *pipe = popen(command, "r");
	ck_assert_ptr_nonnull(pipe);
	int count = 0;
	if (fscanf(pipe, "%d", &count) != 1)
		count = -1;
	pclose(pipe);
	return count;
}

static bool wait_for_log_line(const char *event, const char *id, int timeout_ms)
{
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	while (log_lines(event, id) < 1 && time_monotonic_ms() < deadline)
		usleep(100 * 1000);
	return log_lines(event, id) >= 1;
}

/* ---- slow runs ---- */

/* Holds market_bars locked until slow_runs_end(): every run waits in its first step. */
static PGconn *slow_runs_begin(void)
{
	PGconn *lock = harness_db();
	exec_sql(lock, "BEGIN", 0, NULL);
	exec_sql(lock, "LOCK TABLE market_bars IN ACCESS EXCLUSIVE MODE", 0, NULL);
	return lock;
}

static void slow_runs_end(PGconn *lock)
{
	exec_sql(lock, "COMMIT", 0, NULL);
	PQfinish(lock);
}

static char *execution_of_signal(const char *signal_id)
{
	PGconn *db = harness_db();
	char *id = harness_query_value(db, "SELECT id FROM executions WHERE $1 = ANY(signal_ids)", signal_id);
	PQfinish(db);
	return id;
}

/* ---- the tests ---- */

START_TEST(test_pending_execution_never_enqueued_is_reenqueued_and_runs_once)
{
	char *pipeline = harness_add_pipeline("outbox", "OUTB");
	char execution_id[40], task_id[40];
	harness_new_uuid(execution_id);
	harness_new_uuid(task_id);
	/* A claim whose claimer died before its LPUSH: PENDING, enqueued_at NULL, a while ago. */
	PGconn *db = harness_db();
	const char *values[] = { execution_id, pipeline, task_id };
	exec_sql(db,
		 "INSERT INTO executions (id, pipeline_id, status, task_id, created_at)"
		 " VALUES ($1, $2, 'PENDING', $3, now() - interval '1 minute')",
		 3, values);
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE id = $1", execution_id, "SUCCEEDED",
					 RECOVERY_TIMEOUT_MS));
	ck_assert_int_eq(log_lines("execution_reenqueued", execution_id), 1);
	char *enqueued = harness_query_value(db, "SELECT enqueued_at IS NOT NULL FROM executions WHERE id = $1",
					     execution_id);
	ck_assert_str_eq(enqueued, "t");
	char *same_task = harness_query_value(db, "SELECT task_id FROM executions WHERE id = $1", execution_id);
	ck_assert_str_eq(same_task, task_id);

	/* The task that ran is the claim's own: its Celery result is under the same task id. */
	redisContext *redis = harness_redis();
	redisReply *reply = redisCommand(redis, "GET celery-task-meta-%s", task_id);
	ck_assert_ptr_nonnull(reply);
	ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
	json_t *result = json_loads(reply->str, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(result, "status")), "SUCCESS");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(result, "result"), "execution_id")),
			 execution_id);
	json_decref(result);
	freeReplyObject(reply);

	/* The claimer had in fact pushed it before dying: that copy arrives now and is dropped. */
	char err[256], task_copy[CELERY_ID_SIZE];
	memcpy(task_copy, task_id, sizeof task_copy);
	json_t *no_signals = json_array();
	char *envelope = celery_execute_pipeline_task(pipeline, no_signals, execution_id,
						      harness.config.redis_queue, task_copy, err, sizeof err);
	json_decref(no_signals);
	ck_assert_msg(envelope != NULL, "%s", err);
	reply = redisCommand(redis, "LPUSH %s %s", harness.config.redis_queue, envelope);
	ck_assert_ptr_nonnull(reply);
	freeReplyObject(reply);
	free(envelope);
	ck_assert(wait_for_log_line("task_duplicate", task_id, RECOVERY_TIMEOUT_MS));
	ck_assert_int_eq(log_lines("execution_finished", execution_id), 1);
	char *status = harness_query_value(db, "SELECT status FROM executions WHERE id = $1", execution_id);
	ck_assert_str_eq(status, "SUCCEEDED");

	redisFree(redis);
	free(status);
	free(same_task);
	free(enqueued);
	PQfinish(db);
	free(pipeline);
}
END_TEST

/* Asserts that the query's one value, with one parameter, is `expected`. */
static void assert_value(PGconn *db, const char *sql, const char *parameter, const char *expected)
{
	char *value = harness_query_value(db, sql, parameter);
	ck_assert_msg(value != NULL && strcmp(value, expected) == 0, "%s [%s]: got %s, expected %s", sql, parameter,
		      value != NULL ? value : "no row", expected);
	free(value);
}

/* Inserts a PENDING execution of `pipeline`, created a minute ago, claimed in dispatcher round `round`. */
static void insert_round_claim(PGconn *db, const char *pipeline, const char *round, char execution_id[40])
{
	char task_id[40];
	harness_new_uuid(execution_id);
	harness_new_uuid(task_id);
	const char *values[] = { execution_id, pipeline, task_id, round };
	exec_sql(db,
		 "INSERT INTO executions (id, pipeline_id, status, task_id, dispatch_round, created_at)"
		 " VALUES ($1, $2, 'PENDING', $3, $4, now() - interval '1 minute')",
		 4, values);
}

START_TEST(test_round_record_keeps_its_claims_from_being_pushed_again)
{
	char pushed_round[40], recent_round[40], lost_round[40];
	harness_new_uuid(pushed_round);
	harness_new_uuid(recent_round);
	harness_new_uuid(lost_round);
	const char *names[] = { "round-pushed", "round-recent", "round-lost" };
	const char *tickers[] = { "RNDA", "RNDB", "RNDC" };
	const char *claim_rounds[] = { pushed_round, recent_round, lost_round };
	char *pipelines[3];
	for (int i = 0; i < 3; i++)
		pipelines[i] = harness_add_pipeline(names[i], tickers[i]);
	/* All at once, so that no reconciler pass sees a claim without its round's record. */
	PGconn *db = harness_db();
	exec_sql(db, "BEGIN", 0, NULL);
	char claims[3][40];
	for (int i = 0; i < 3; i++) {
		insert_round_claim(db, pipelines[i], claim_rounds[i], claims[i]);
		free(pipelines[i]);
	}
	/* Pushed 50 s ago (folded now), pushed just now (kept for later), never recorded (the claimer died). */
	const char *rounds[] = { pushed_round, recent_round };
	exec_sql(db,
		 "INSERT INTO dispatch_rounds_pushed (round_id, pushed_at)"
		 " VALUES ($1, now() - interval '50 seconds'), ($2, now())",
		 2, rounds);
	exec_sql(db, "COMMIT", 0, NULL);
	const char *pushed = claims[0], *recent = claims[1], *lost = claims[2];

	/* The claim of the unrecorded round is pushed again and runs; the reconciler passed over the others. */
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE id = $1", lost, "SUCCEEDED",
					 RECOVERY_TIMEOUT_MS));
	ck_assert_int_eq(log_lines("execution_reenqueued", lost), 1);
	ck_assert_int_eq(log_lines("execution_reenqueued", pushed), 0);
	ck_assert_int_eq(log_lines("execution_reenqueued", recent), 0);
	assert_value(db, "SELECT status FROM executions WHERE id = $1", pushed, "PENDING");
	assert_value(db, "SELECT status FROM executions WHERE id = $1", recent, "PENDING");
	/* The old round record became its execution's own record, and is gone. */
	assert_value(db, "SELECT enqueued_at IS NOT NULL FROM executions WHERE id = $1", pushed, "t");
	assert_value(db, "SELECT count(*) FROM dispatch_rounds_pushed WHERE round_id = $1", pushed_round, "0");
	/* The recent one stays until it is as old. */
	assert_value(db, "SELECT enqueued_at IS NULL FROM executions WHERE id = $1", recent, "t");
	assert_value(db, "SELECT count(*) FROM dispatch_rounds_pushed WHERE round_id = $1", recent_round, "1");
	PQfinish(db);
}
END_TEST

START_TEST(test_running_execution_from_before_leases_is_given_a_lease_not_failed)
{
	char *pipeline = harness_add_pipeline("no-lease", "NOLS");
	char execution_id[40];
	harness_new_uuid(execution_id);
	PGconn *db = harness_db();
	const char *values[] = { execution_id, pipeline };
	exec_sql(db,
		 "INSERT INTO executions (id, pipeline_id, status, started_at)"
		 " VALUES ($1, $2, 'RUNNING', now() - interval '1 hour')",
		 2, values);
	ck_assert(harness_wait_for_value("SELECT lease_expires_at > now() FROM executions WHERE id = $1",
					 execution_id, "t", RECOVERY_TIMEOUT_MS));
	char *status = harness_query_value(db, "SELECT status FROM executions WHERE id = $1", execution_id);
	ck_assert_str_eq(status, "RUNNING");
	ck_assert_int_eq(log_lines("execution_lease_adopted", execution_id), 1);
	exec_sql(db, "UPDATE executions SET status = 'FAILED' WHERE id = $1", 1, values);
	free(status);
	PQfinish(db);
	free(pipeline);
}
END_TEST

START_TEST(test_holding_execution_is_never_reaped_and_keeps_blocking_its_pipeline)
{
	char *held = harness_add_pipeline("held", "HOLD");
	char *control = harness_add_pipeline("control", "HOLD");
	char holding_id[40];
	harness_new_uuid(holding_id);
	PGconn *db = harness_db();
	/* A lease long run out: were it RUNNING, the reaper would fail it at its next pass. */
	const char *values[] = { holding_id, held };
	exec_sql(db,
		 "INSERT INTO executions (id, pipeline_id, status, started_at, lease_expires_at)"
		 " VALUES ($1, $2, 'HOLDING', now() - interval '1 hour', now() - interval '50 minutes')",
		 2, values);
	int64_t inserted = time_monotonic_ms();

	char *signal_id = harness_inject_one("HOLD");
	/* Both pipelines were decided in the same batch: once the control ran, the held one was skipped. */
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "SUCCEEDED", RECOVERY_TIMEOUT_MS));
	char *ran = harness_query_value(db, "SELECT pipeline_id FROM executions WHERE $1 = ANY(signal_ids)",
					signal_id);
	ck_assert_str_eq(ran, control);
	/* Several reaper passes (every 2 s) later, it is still HOLDING, untouched. */
	int64_t wait = inserted + 3 * 2000 + 500 - time_monotonic_ms();
	if (wait > 0)
		usleep((useconds_t)wait * 1000);
	char *status = harness_query_value(db, "SELECT status || coalesce(error, '') FROM executions WHERE id = $1",
					   holding_id);
	ck_assert_str_eq(status, "HOLDING");
	char *count = harness_query_value(db, "SELECT count(*) FROM executions WHERE pipeline_id = $1", held);
	ck_assert_str_eq(count, "1");

	/* Only an explicit change of status releases the pipeline. */
	exec_sql(db, "UPDATE executions SET status = 'SUCCEEDED', finished_at = now() WHERE id = $1", 1, values);
	char *after_release = harness_inject_one("HOLD");
	ck_assert(harness_wait_for_value("SELECT count(*) FROM executions WHERE $1 = ANY(signal_ids)"
					 " AND status = 'SUCCEEDED'",
					 after_release, "2", RECOVERY_TIMEOUT_MS));
	free(after_release);
	free(count);
	free(status);
	free(ran);
	free(signal_id);
	PQfinish(db);
	free(control);
	free(held);
}
END_TEST

START_TEST(test_heartbeat_keeps_a_long_run_leased_and_a_redelivered_copy_is_not_run)
{
	char *pipeline = harness_add_pipeline("long-run", "LONG");
	PGconn *lock = slow_runs_begin();
	char *signal_id = harness_inject_one("LONG");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "RUNNING", RECOVERY_TIMEOUT_MS));
	char *execution_id = execution_of_signal(signal_id);
	PGconn *db = harness_db();
	char *owner = harness_query_value(db, "SELECT lease_owner FROM executions WHERE id = $1", execution_id);
	ck_assert_ptr_nonnull(owner);

	/* Four lease periods: the lease stays ahead of the clock the whole time. */
	int64_t until = time_monotonic_ms() + 4 * LEASE_S * 1000;
	while (time_monotonic_ms() < until) {
		char *live = harness_query_value(db,
						 "SELECT status = 'RUNNING' AND lease_expires_at > now()"
						 " FROM executions WHERE id = $1",
						 execution_id);
		ck_assert_msg(live != NULL && strcmp(live, "t") == 0, "lease of %s ran out during the run",
			      execution_id);
		free(live);
		usleep(250 * 1000);
	}
	char *renewed = harness_query_value(db,
					    "SELECT lease_renewed_at > started_at + interval '3 seconds'"
					    " FROM executions WHERE id = $1",
					    execution_id);
	ck_assert_str_eq(renewed, "t");

	/* The same task, redelivered while the run goes on: the other worker thread drops it. */
	char *task_id = harness_query_value(db, "SELECT task_id FROM executions WHERE id = $1", execution_id);
	char err[256], task_copy[CELERY_ID_SIZE];
	snprintf(task_copy, sizeof task_copy, "%s", task_id);
	json_t *signals = json_pack("[s]", signal_id);
	char *envelope = celery_execute_pipeline_task(pipeline, signals, execution_id, harness.config.redis_queue,
						      task_copy, err, sizeof err);
	json_decref(signals);
	ck_assert_msg(envelope != NULL, "%s", err);
	char *redelivered = celery_mark_redelivered(envelope);
	ck_assert_ptr_nonnull(redelivered);
	redisContext *redis = harness_redis();
	redisReply *reply = redisCommand(redis, "LPUSH %s %s", harness.config.redis_queue, redelivered);
	ck_assert_ptr_nonnull(reply);
	freeReplyObject(reply);
	redisFree(redis);
	ck_assert(wait_for_log_line("task_duplicate_lease_held", execution_id, RECOVERY_TIMEOUT_MS));
	char *still = harness_query_value(db, "SELECT status || ' ' || lease_owner FROM executions WHERE id = $1",
					  execution_id);
	char expected[128];
	snprintf(expected, sizeof expected, "RUNNING %s", owner);
	ck_assert_str_eq(still, expected);

	slow_runs_end(lock);
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE id = $1", execution_id, "SUCCEEDED",
					 RECOVERY_TIMEOUT_MS));
	ck_assert_int_eq(log_lines("execution_finished", execution_id), 1);
	free(still);
	free(redelivered);
	free(envelope);
	free(task_id);
	free(renewed);
	free(owner);
	PQfinish(db);
	free(execution_id);
	free(signal_id);
	free(pipeline);
}
END_TEST

START_TEST(test_run_of_a_killed_worker_fails_when_its_lease_runs_out_and_the_pipeline_runs_again)
{
	char *pipeline = harness_add_pipeline("killed", "KILL");
	PGconn *lock = slow_runs_begin();
	char *signal_id = harness_inject_one("KILL");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "RUNNING", RECOVERY_TIMEOUT_MS));
	char *execution_id = execution_of_signal(signal_id);

	pid_t pid = worker_pid("worker-a");
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	int64_t killed = time_monotonic_ms();
	/* At most one lease, plus a reaper pass, plus slack: well within four lease periods. */
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE id = $1", execution_id, "FAILED",
					 4 * LEASE_S * 1000));
	int64_t failed_after = time_monotonic_ms() - killed;
	ck_assert_int_ge(failed_after, 1000);
	PGconn *db = harness_db();
	char *error = harness_query_value(db, "SELECT error FROM executions WHERE id = $1", execution_id);
	ck_assert_ptr_nonnull(error);
	ck_assert_msg(strncmp(error, "lease expired: worker stopped renewing at ", 42) == 0, "error: %s", error);
	ck_assert_int_eq(log_lines("execution_lease_expired", execution_id), 1);
	slow_runs_end(lock);

	/* The pipeline is free again: the next signal is claimed and runs on another worker. */
	start_worker("worker-b");
	char *next_signal = harness_inject_one("KILL");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", next_signal,
					 "SUCCEEDED", RECOVERY_TIMEOUT_MS));
	char *runs = harness_query_value(db, "SELECT count(*) FROM executions WHERE pipeline_id = $1", pipeline);
	ck_assert_str_eq(runs, "2");
	/* The dead run stays FAILED: nothing of the killed worker finishes it later. */
	char *status = harness_query_value(db, "SELECT status FROM executions WHERE id = $1", execution_id);
	ck_assert_str_eq(status, "FAILED");
	free(status);
	free(runs);
	free(next_signal);
	free(error);
	PQfinish(db);
	free(execution_id);
	free(signal_id);
	free(pipeline);
}
END_TEST

/* ---- retries ---- */

/* A pipeline whose market data step needs 3 bars of its ticker: without them it fails retryably. */
static char *add_pipeline_needing_bars(const char *name, const char *ticker)
{
	char args[1024];
	snprintf(args, sizeof args,
		 "pipelines add --json --name %s --ticker %s --config '{\"nodes\": ["
		 "{\"agent_type\": \"market_data_agent\", \"config\": {\"min_bars\": 3}},"
		 "{\"agent_type\": \"bias_agent\"}, {\"agent_type\": \"strategy_agent\"}]}'",
		 name, ticker);
	int status;
	json_t *pipeline = harness_sigtrig_json(args, &status);
	ck_assert_int_eq(status, 0);
	char *id = strdup(json_string_value(json_object_get(pipeline, "id")));
	json_decref(pipeline);
	return id;
}

START_TEST(test_retryable_failure_is_retried_with_backoff_and_succeeds_once_the_data_is_there)
{
	char *pipeline = add_pipeline_needing_bars("retried", "RTRY");
	char *signal_id = harness_inject_one("RTRY");
	/* The first try fails for want of bars, and the execution waits for its retry, PENDING. */
	ck_assert(harness_wait_for_value("SELECT error LIKE 'retry 1 of 3 in % s: market_data_agent: market data"
					 " unavailable (min_bars 3): RTRY has 0' FROM executions WHERE $1 = ANY(signal_ids)",
					 signal_id, "t", RECOVERY_TIMEOUT_MS));
	char *execution_id = execution_of_signal(signal_id);
	PGconn *db = harness_db();
	char *task_id = harness_query_value(db, "SELECT task_id FROM executions WHERE id = $1", execution_id);

	/* Celery's view meanwhile: RETRY, with why. */
	redisContext *redis = harness_redis();
	redisReply *reply = redisCommand(redis, "GET celery-task-meta-%s", task_id);
	ck_assert(reply != NULL && reply->type == REDIS_REPLY_STRING);
	json_t *meta = json_loads(reply->str, 0, NULL);
	freeReplyObject(reply);
	ck_assert_ptr_nonnull(meta);
	const char *meta_status = json_string_value(json_object_get(meta, "status"));
	/* The retry may already have run, and failed again or started. */
	ck_assert_msg(strcmp(meta_status, "RETRY") == 0, "celery status %s", meta_status);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(meta, "result"), "exc_type")), "Retry");
	json_decref(meta);

	/* The claim holds while it waits: a signal meanwhile is skipped, the pipeline is already running. */
	char *second = harness_inject_one("RTRY");
	ck_assert(harness_wait_for_value("SELECT reason FROM signal_decisions WHERE signal_id = $1", second,
					 "already_running", RECOVERY_TIMEOUT_MS));

	/* The data arrives: a later try finds it, and the same execution succeeds. */
	exec_sql(db,
		 "INSERT INTO market_bars (ticker, day, close) VALUES ('RTRY', 1, 10), ('RTRY', 2, 11), ('RTRY', 3, 12)",
		 0, NULL);
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE id = $1", execution_id, "SUCCEEDED",
					 RECOVERY_TIMEOUT_MS));
	char *retries = harness_query_value(db, "SELECT result->>'retries' FROM executions WHERE id = $1", execution_id);
	ck_assert_ptr_nonnull(retries);
	ck_assert_int_ge(atoi(retries), 1);
	ck_assert_int_le(atoi(retries), MAX_RETRIES);
	char *error = harness_query_value(db, "SELECT coalesce(error, '') FROM executions WHERE id = $1", execution_id);
	ck_assert_str_eq(error, "");
	char *runs = harness_query_value(db, "SELECT count(*) FROM executions WHERE pipeline_id = $1", pipeline);
	ck_assert_str_eq(runs, "1");
	ck_assert_int_eq(log_lines("execution_retry_scheduled", execution_id), atoi(retries));
	/* And Celery's result is the run's, as for any other. */
	reply = redisCommand(redis, "GET celery-task-meta-%s", task_id);
	ck_assert(reply != NULL && reply->type == REDIS_REPLY_STRING);
	meta = json_loads(reply->str, 0, NULL);
	freeReplyObject(reply);
	ck_assert_str_eq(json_string_value(json_object_get(meta, "status")), "SUCCESS");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(meta, "result"), "status")), "SUCCEEDED");
	json_decref(meta);
	redisFree(redis);
	free(runs);
	free(error);
	free(retries);
	free(task_id);
	PQfinish(db);
	free(second);
	free(execution_id);
	free(signal_id);
	free(pipeline);
}
END_TEST

START_TEST(test_a_run_failing_after_its_last_retry_ends_failed_with_the_reason)
{
	char *pipeline = add_pipeline_needing_bars("exhausted", "RTRZ");
	char *signal_id = harness_inject_one("RTRZ");
	/* Three retries of at most 1, 2 and 4 s, and four tries. */
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id, "FAILED",
					 RECOVERY_TIMEOUT_MS));
	char *execution_id = execution_of_signal(signal_id);
	PGconn *db = harness_db();
	char *error = harness_query_value(db, "SELECT error FROM executions WHERE id = $1", execution_id);
	ck_assert_str_eq(error, "market_data_agent: market data unavailable (min_bars 3): RTRZ has 0");
	char *retries = harness_query_value(db, "SELECT result->>'retries' FROM executions WHERE id = $1", execution_id);
	ck_assert_str_eq(retries, "3");
	ck_assert_int_eq(log_lines("execution_retry_scheduled", execution_id), MAX_RETRIES);
	char *runs = harness_query_value(db, "SELECT count(*) FROM executions WHERE pipeline_id = $1", pipeline);
	ck_assert_str_eq(runs, "1");
	free(runs);
	free(retries);
	free(error);
	PQfinish(db);
	free(execution_id);
	free(signal_id);
	free(pipeline);
}
END_TEST

/* ---- graceful shutdown ---- */

static bool wait_for_exit_of(pid_t pid, int timeout_ms)
{
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	while (kill(pid, 0) == 0 && time_monotonic_ms() < deadline)
		usleep(50 * 1000);
	return kill(pid, 0) != 0;
}

/* SIGTERM to the worker daemon NAME, and its exit. */
static void stop_worker(const char *name)
{
	pid_t pid = worker_pid(name);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_msg(wait_for_exit_of(pid, RECOVERY_TIMEOUT_MS), "%s still runs %d ms after SIGTERM", name,
		      RECOVERY_TIMEOUT_MS);
}

START_TEST(test_sigterm_lets_the_runs_in_hand_finish_and_takes_no_new_task)
{
	char *first = harness_add_pipeline("graceful-a", "GRCA");
	char *second = harness_add_pipeline("graceful-b", "GRCB");
	char *queued = harness_add_pipeline("graceful-c", "GRCC");
	PGconn *lock = slow_runs_begin();
	/* Both threads of worker-a (worker.concurrency 2) busy, the third task waits in the queue. */
	char *first_signal = harness_inject_one("GRCA");
	char *second_signal = harness_inject_one("GRCB");
	ck_assert(harness_wait_for_value("SELECT count(*) FROM executions WHERE pipeline_id = $1 AND status = 'RUNNING'",
					 first, "1", RECOVERY_TIMEOUT_MS));
	ck_assert(harness_wait_for_value("SELECT count(*) FROM executions WHERE pipeline_id = $1 AND status = 'RUNNING'",
					 second, "1", RECOVERY_TIMEOUT_MS));
	char *queued_signal = harness_inject_one("GRCC");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", queued_signal,
					 "PENDING", RECOVERY_TIMEOUT_MS));

	pid_t pid = worker_pid("worker-a");
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	/* It waits for its runs rather than dropping them... */
	usleep(1500 * 1000);
	ck_assert_msg(kill(pid, 0) == 0, "worker-a exited with two runs in hand");
	slow_runs_end(lock);
	/* ...which finish as usual, and then it exits. */
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", first_signal,
					 "SUCCEEDED", RECOVERY_TIMEOUT_MS));
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", second_signal,
					 "SUCCEEDED", RECOVERY_TIMEOUT_MS));
	ck_assert_msg(wait_for_exit_of(pid, RECOVERY_TIMEOUT_MS), "worker-a still runs after its runs finished");
	ck_assert_int_eq(log_lines("worker_stopped", "tasks_run"), 1);
	/* The task it never took is still queued, and the next worker runs it. */
	PGconn *db = harness_db();
	char *status = harness_query_value(db, "SELECT status FROM executions WHERE $1 = ANY(signal_ids)", queued_signal);
	ck_assert_str_eq(status, "PENDING");
	start_worker("worker-a");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", queued_signal,
					 "SUCCEEDED", RECOVERY_TIMEOUT_MS));
	char *runs = harness_query_value(db, "SELECT count(*) FROM executions WHERE pipeline_id = $1", queued);
	ck_assert_str_eq(runs, "1");
	free(runs);
	free(status);
	PQfinish(db);
	free(queued_signal);
	free(second_signal);
	free(first_signal);
	free(queued);
	free(second);
	free(first);
}
END_TEST

/*
 * PostgreSQL times statement_timeout on its own clock, which may run ahead
 * of the worker's (a wall clock stepped forward): a step whose query it
 * cancelled is over the limit even when the worker's deadline is still
 * ahead. Here the deadline is a minute off and the statement timeout 300 ms.
 */
START_TEST(test_a_query_cancelled_by_statement_timeout_is_the_time_limit_whatever_the_workers_clock_says)
{
	PGconn *run_db = harness_db();
	exec_sql(run_db, "SET statement_timeout = 300", 0, NULL);
	char *ticker = strdup("TOUT");
	struct pipeline pipeline = {
		.id = "00000000-0000-4000-8000-0000000000aa",
		.trigger_mode = "signal",
		.tickers = &ticker,
		.ticker_count = 1,
		.config = json_pack("{s:[{s:s}]}", "nodes", "agent_type", "market_data_agent"),
	};
	struct agent_context context = {
		.db = run_db,
		.pipeline = &pipeline,
		.signals = json_array(),
		.state = json_object(),
		.deadline_ms = time_monotonic_ms() + 60 * 1000,
		.time_limit_s = 60,
	};
	PGconn *lock = slow_runs_begin();
	json_t *result = NULL;
	char err[1024];
	ck_assert_int_eq(agents_run_pipeline(&context, &result, err, sizeof err), -1);
	slow_runs_end(lock);
	ck_assert_msg(strncmp(err, "time limit of 60 s exceeded in market_data_agent: ", 50) == 0, "error: %s", err);
	ck_assert(json_is_true(json_object_get(result, "timed_out")));
	ck_assert(!context.retryable);

	/* A failure of another kind is not taken for the limit. */
	json_decref(result);
	result = NULL;
	exec_sql(run_db, "SET statement_timeout = 0", 0, NULL);
	exec_sql(run_db, "BEGIN", 0, NULL);
	PGresult *aborted = PQexec(run_db, "SELECT no_such_column FROM market_bars");
	PQclear(aborted);
	ck_assert_int_eq(agents_run_pipeline(&context, &result, err, sizeof err), -1);
	ck_assert_msg(strncmp(err, "market_data_agent: ", 19) == 0, "error: %s", err);
	ck_assert_ptr_null(json_object_get(result, "timed_out"));
	exec_sql(run_db, "ROLLBACK", 0, NULL);
	json_decref(result);
	json_decref(context.state);
	json_decref(context.signals);
	json_decref(pipeline.config);
	free(ticker);
	PQfinish(run_db);
}
END_TEST

START_TEST(test_a_run_over_its_time_limit_fails_with_a_timeout_error)
{
	/* Only a worker with a 2 s limit runs now. */
	stop_worker("worker-a");
	start_worker_with("worker-t", "SIGTRIG_WORKER_TIME_LIMIT_S=2");
	char *pipeline = harness_add_pipeline("too-slow", "TLIM");
	PGconn *lock = slow_runs_begin();
	char *signal_id = harness_inject_one("TLIM");
	/* Its market data query waits on the lock until statement_timeout cuts it at the limit. */
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id, "FAILED",
					 RECOVERY_TIMEOUT_MS));
	slow_runs_end(lock);
	char *execution_id = execution_of_signal(signal_id);
	PGconn *db = harness_db();
	char *error = harness_query_value(db, "SELECT error FROM executions WHERE id = $1", execution_id);
	ck_assert_msg(strncmp(error, "time limit of 2 s exceeded in market_data_agent: ", 49) == 0, "error: %s", error);
	char *timed_out = harness_query_value(db, "SELECT result->>'timed_out' FROM executions WHERE id = $1", execution_id);
	ck_assert_str_eq(timed_out, "true");
	char *duration = harness_query_value(db,
					     "SELECT extract(epoch FROM finished_at - started_at) >= 1.9 FROM executions WHERE id = $1",
					     execution_id);
	ck_assert_str_eq(duration, "t");
	/* Running over is not a failure that retrying mends. */
	ck_assert_int_eq(log_lines("execution_retry_scheduled", execution_id), 0);
	free(duration);
	free(timed_out);
	free(error);
	PQfinish(db);
	free(execution_id);
	free(signal_id);
	free(pipeline);
	stop_worker("worker-t");
	start_worker("worker-a");
}
END_TEST

START_TEST(test_task_of_a_killed_worker_comes_back_after_the_visibility_timeout_and_runs_again)
{
	/* Workers that give back a task unacknowledged for 6 s, as Celery's visibility_timeout. */
	stop_worker("worker-a");
	start_worker_with("worker-v1", "SIGTRIG_WORKER_VISIBILITY_TIMEOUT_S=6");
	char *pipeline = harness_add_pipeline("came-back", "BACK");
	PGconn *lock = slow_runs_begin();
	char *signal_id = harness_inject_one("BACK");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "RUNNING", RECOVERY_TIMEOUT_MS));
	char *execution_id = execution_of_signal(signal_id);
	PGconn *db = harness_db();
	char *task_id = harness_query_value(db, "SELECT task_id FROM executions WHERE id = $1", execution_id);
	start_worker_with("worker-v2", "SIGTRIG_WORKER_VISIBILITY_TIMEOUT_S=6");
	pid_t victim = worker_pid("worker-v1");
	ck_assert_int_eq(kill(victim, SIGKILL), 0);

	/* Its run is failed when the lease runs out, which frees the pipeline... */
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE id = $1", execution_id, "FAILED",
					 4 * LEASE_S * 1000));
	slow_runs_end(lock);
	/* ...and the task, back from unacked, runs again: a new execution of the same task, to the end. */
	ck_assert(harness_wait_for_value("SELECT count(*) FROM executions WHERE task_id = $1 AND status = 'SUCCEEDED'",
					 task_id, "1", RECOVERY_TIMEOUT_MS));
	char *rerun_of = harness_query_value(db,
					     "SELECT result->>'rerun_of' FROM executions WHERE task_id = $1 AND status = 'SUCCEEDED'",
					     task_id);
	ck_assert_ptr_nonnull(rerun_of);
	ck_assert_str_eq(rerun_of, execution_id);
	char *runs = harness_query_value(db, "SELECT count(*) FROM executions WHERE pipeline_id = $1", pipeline);
	ck_assert_str_eq(runs, "2");
	/* Never both live: the second began after the first was failed. */
	char *ordered = harness_query_value(db,
					    "SELECT bool_and(r.created_at >= f.finished_at) FROM executions f, executions r"
					    " WHERE f.task_id = $1 AND r.task_id = $1 AND f.status = 'FAILED'"
					    "   AND r.status = 'SUCCEEDED'",
					    task_id);
	ck_assert_str_eq(ordered, "t");
	ck_assert_int_eq(log_lines("execution_rerun", task_id), 1);
	free(ordered);
	free(runs);
	free(rerun_of);
	free(task_id);
	PQfinish(db);
	free(execution_id);
	free(signal_id);
	free(pipeline);
	stop_worker("worker-v2");
	start_worker("worker-a");
}
END_TEST

/* ---- the stack ---- */

static void stack_up(void)
{
	/*
	 * The stack's daemon runs every role but the worker: 'sigtrig up'
	 * starts it with this environment (the worker daemons' --roles wins
	 * over it).
	 */
	setenv("SIGTRIG_DAEMON_ROLES", "generator,dispatcher,scheduler", 1);
	harness_up("--no-generators");
	start_worker("worker-a");
}

/*
 * Before each test: worker-a up and no worker-t, as the tests expect, so
 * that a test that failed half way (its worker stopped, or the 2 s one
 * left running) is the only failure, not the first of several.
 */
static void workers_as_expected(void)
{
	pid_t leftover = worker_pid("worker-t");
	if (is_running_sigtrigd(leftover)) {
		kill(leftover, SIGTERM);
		ck_assert_msg(wait_for_exit_of(leftover, RECOVERY_TIMEOUT_MS), "worker-t left over still runs");
	}
	if (!is_running_sigtrigd(worker_pid("worker-a")))
		start_worker("worker-a");
}

static void stack_down(void)
{
	/* Every worker daemon a test left running, worker-t of a failed time limit test too. */
	const char *names[] = { "worker-a", "worker-b", "worker-t", "worker-v1", "worker-v2" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		pid_t pid = worker_pid(names[i]);
		if (is_running_sigtrigd(pid))
			kill(pid, SIGTERM);
	}
	sleep(1);
	harness_down();
}

static Suite *recovery_suite(void)
{
	Suite *suite = suite_create("recovery");
	TCase *recovery = tcase_create("end_to_end");
	tcase_add_unchecked_fixture(recovery, stack_up, stack_down);
	tcase_add_checked_fixture(recovery, workers_as_expected, NULL);
	tcase_set_timeout(recovery, 120);
	tcase_add_test(recovery, test_pending_execution_never_enqueued_is_reenqueued_and_runs_once);
	tcase_add_test(recovery, test_round_record_keeps_its_claims_from_being_pushed_again);
	tcase_add_test(recovery, test_running_execution_from_before_leases_is_given_a_lease_not_failed);
	tcase_add_test(recovery, test_holding_execution_is_never_reaped_and_keeps_blocking_its_pipeline);
	tcase_add_test(recovery, test_heartbeat_keeps_a_long_run_leased_and_a_redelivered_copy_is_not_run);
	tcase_add_test(recovery, test_retryable_failure_is_retried_with_backoff_and_succeeds_once_the_data_is_there);
	tcase_add_test(recovery, test_a_run_failing_after_its_last_retry_ends_failed_with_the_reason);
	tcase_add_test(recovery, test_sigterm_lets_the_runs_in_hand_finish_and_takes_no_new_task);
	tcase_add_test(recovery, test_a_query_cancelled_by_statement_timeout_is_the_time_limit_whatever_the_workers_clock_says);
	tcase_add_test(recovery, test_a_run_over_its_time_limit_fails_with_a_timeout_error);
	tcase_add_test(recovery, test_task_of_a_killed_worker_comes_back_after_the_visibility_timeout_and_runs_again);
	/* Last: it kills the first worker daemon and starts another. */
	tcase_add_test(recovery, test_run_of_a_killed_worker_fails_when_its_lease_runs_out_and_the_pipeline_runs_again);
	suite_add_tcase(suite, recovery);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(recovery_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

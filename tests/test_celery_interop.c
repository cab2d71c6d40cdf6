/*
 * Celery wire compatibility, end to end, in both directions, against the
 * real thing: Debian's Celery 5 worker (python3 -m celery worker) runs
 * the tasks sigtrig's dispatcher enqueues, sigtrig's worker runs the tasks
 * Python's send_task() sends, and AsyncResult(id).get() in Python reads
 * the results either one stores. Then what a stock worker would choke on
 * (unknown task names, malformed envelopes, wrong body encodings) must
 * leave sigtrig's worker running with nothing else in the queue lost, and
 * what a Python worker died holding, sigtrig's worker gives back and runs.
 * send_task()'s countdown and expires must mean what they mean to a stock
 * worker.
 *
 * The Python side is the fixture in tests/celery/: an application
 * app.orchestration.tasks whose execute_pipeline task answers with what
 * it received, send_task.py and get_result.py. It finds the stack's Redis
 * in CELERY_BROKER_URL and CELERY_RESULT_BACKEND.
 */
#include <check.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base64.h"
#include "harness.h"
#include "timeutil.h"

#define INTEROP_TIMEOUT_MS 30000
/* What the Python scripts give get() before they report a timeout, in seconds. */
#define RESULT_TIMEOUT_S "30"
#define PYTHON "/usr/bin/python3"
#define EXECUTE_PIPELINE "app.orchestration.tasks.execute_pipeline"
#define DEAD_LETTER_LIST "sigtrig:dead-letter"

/* ---- the Python fixture ---- */

static void fixture_directory(char *buf, size_t size)
{
	const char *source = getenv("SIGTRIG_SOURCE_DIR");
	snprintf(buf, size, "%s/tests/celery", source != NULL ? source : ".");
}

/* Where the fixture's execute_pipeline appends what it received, one JSON object a line. */
static void record_path(char *buf, size_t size)
{
	snprintf(buf, size, "%s/celery-record.jsonl", harness.dir);
}

/* Shell text that runs `/usr/bin/python3 ARGS` with the fixture's environment. */
static void python_command(const char *args, char *buf, size_t size)
{
	char fixture[600], record[600];
	fixture_directory(fixture, sizeof fixture);
	record_path(record, sizeof record);
	/* No __pycache__ in the source tree: distcheck's is read-only, and a checkout stays clean. */
	snprintf(buf, size,
		 "PYTHONPATH='%s' PYTHONDONTWRITEBYTECODE=1 CELERY_BROKER_URL='%s' CELERY_RESULT_BACKEND='%s'"
		 " SIGTRIG_CELERY_RECORD='%s' " PYTHON " %s",
		 fixture, harness.config.redis_url, harness.config.redis_url, record, args);
}

static char *read_file_text(const char *path)
{
	FILE *file = fopen(path, "r");
	if (file == NULL)
		return strdup("");
	size_t capacity = 4096, used = 0, got;
	char *text = malloc(capacity);
	ck_assert_ptr_nonnull(text);
	while ((got = fread(text + used, 1, capacity - used - 1, file)) > 0) {
		used += got;
		if (capacity - used < 1024) {
			char *grown = realloc(text, capacity * 2);
			ck_assert_ptr_nonnull(grown);
			text = grown;
			capacity *= 2;
		}
	}
	text[used] = '\0';
	fclose(file);
	return text;
}

/*
 * Runs tests/celery/SCRIPT with shell-text arguments; returns its exit
 * status and its stdout (malloc'd). Its stderr goes to the test's output
 * when it fails.
 */
static int python_script(const char *script, const char *args, char **out)
{
	char fixture[600], python_args[4096], command[8192], out_path[600], err_path[600];
	fixture_directory(fixture, sizeof fixture);
	snprintf(out_path, sizeof out_path, "%s/.python-stdout", harness.dir);
	snprintf(err_path, sizeof err_path, "%s/.python-stderr", harness.dir);
	snprintf(python_args, sizeof python_args, "'%s/%s' %s >'%s' 2>'%s' </dev/null", fixture, script, args,
		 out_path, err_path);
	python_command(python_args, command, sizeof command);
	int status = system(command);
	int exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	*out = read_file_text(out_path);
	if (exit_status != 0) {
		char *err = read_file_text(err_path);
		fprintf(stderr, "%s %s: exit %d\n%s%s\n", script, args, exit_status, *out, err);
		free(err);
	}
	return exit_status;
}

/* The JSON object get_result.py prints for a task: what AsyncResult(id).get() came to. */
static json_t *python_get_result(const char *task_id)
{
	char args[128], *out = NULL;
	snprintf(args, sizeof args, "%s %s", task_id, RESULT_TIMEOUT_S);
	int status = python_script("get_result.py", args, &out);
	json_t *report = json_loads(out, 0, NULL);
	if (status != 0 || report == NULL) {
		/* No result: when a Celery worker was to run it, what it said is the story. */
		char command[700];
		snprintf(command, sizeof command,
			 "f='%s/log/celery-worker.log'; test -f \"$f\" && echo \"last lines of $f:\" >&2 && tail -n 40 \"$f\" >&2",
			 harness.dir);
		if (system(command) != 0)
			fprintf(stderr, "(no Celery worker log)\n");
	}
	ck_assert_msg(status == 0 && report != NULL, "get_result.py %s: exit %d: %s", task_id, status, out);
	free(out);
	return report;
}

/* send_task.py ARGS: the ids of the tasks it sent, one a line, malloc'd. */
static char *python_send_tasks(const char *args)
{
	char *out = NULL;
	int status = python_script("send_task.py", args, &out);
	ck_assert_msg(status == 0, "send_task.py %s failed", args);
	return out;
}

/* A background process running shell text (its own redirections included). */
static pid_t spawn_shell(const char *command)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Never outlive the test, even when Check kills it at its timeout. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Waits up to timeout_ms for a child; its exit status, or -1 (killed when it overstays). */
static int wait_child(pid_t pid, int timeout_ms)
{
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	int status;
	for (;;) {
		pid_t done = waitpid(pid, &status, WNOHANG);
		if (done == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (done < 0 || time_monotonic_ms() >= deadline)
			break;
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* ---- a stock Celery worker ---- */

static pid_t python_worker;

static void worker_log_path(char *buf, size_t size)
{
	snprintf(buf, size, "%s/log/celery-worker.log", harness.dir);
}

static void python_worker_stop(void)
{
	if (python_worker <= 0)
		return;
	/* SIGTERM: Celery's warm shutdown, which gives back any message it still holds. */
	kill(python_worker, SIGTERM);
	if (wait_child(python_worker, 30000) < 0)
		fprintf(stderr, "the Celery worker did not stop on SIGTERM within 30 s\n");
	python_worker = 0;
}

/* A test that fails exits through here: the worker it started is stopped with it. */
static void python_worker_stop_at_exit(void)
{
	python_worker_stop();
}

static bool python_worker_alive(void)
{
	if (python_worker > 0 && waitpid(python_worker, NULL, WNOHANG) != 0)
		python_worker = 0; /* reaped: its pid is no longer ours to signal */
	return python_worker > 0;
}

/* SIGKILL: a worker that dies, holding whatever it took, with no chance to give it back. */
static void python_worker_kill(void)
{
	ck_assert(python_worker_alive());
	kill(python_worker, SIGKILL);
	waitpid(python_worker, NULL, 0);
	python_worker = 0;
}

/*
 * `python3 -m celery -A app.orchestration.tasks worker --pool=solo
 * --concurrency=1` on the stack's Redis, logging to DIR/log/celery-worker.log,
 * with extra environment assignments (shell text, may be ""); returns once
 * the worker says it is ready.
 */
/* A Python Celery worker consuming `queues` (comma-separated; NULL: Celery's default, celery). */
static void python_worker_start_on(const char *environment, const char *queues)
{
	char log_path[600], worker_args[1024], command[8192];
	worker_log_path(log_path, sizeof log_path);
	/* No gossip, mingle or heartbeat: remote control only, and mingle waits a second for peers. */
	snprintf(worker_args, sizeof worker_args,
		 "-m celery -A app.orchestration.tasks worker --pool=solo --concurrency=1 --loglevel=INFO"
		 " --hostname=interop@%%h --without-gossip --without-mingle --without-heartbeat%s%s"
		 " >>'%s' 2>&1 </dev/null",
		 queues != NULL ? " -Q " : "", queues != NULL ? queues : "", log_path);
	char with_environment[4096];
	python_command(worker_args, with_environment, sizeof with_environment);
	/* exec: the pid is the worker's own, so SIGTERM reaches Celery, not a shell. */
	snprintf(command, sizeof command, "exec env %s %s", environment, with_environment);
	/* Each start appends to the log: only its own "ready." counts. */
	char *before = read_file_text(log_path);
	size_t skip = strlen(before);
	free(before);
	python_worker = spawn_shell(command);
	atexit(python_worker_stop_at_exit);
	int64_t deadline = time_monotonic_ms() + 60000;
	for (;;) {
		char *log = read_file_text(log_path);
		bool ready = strlen(log) > skip && strstr(log + skip, " ready.") != NULL;
		if (ready || !python_worker_alive() || time_monotonic_ms() >= deadline) {
			ck_assert_msg(ready, "the Celery worker did not get ready; its log:\n%s", log);
			free(log);
			return;
		}
		free(log);
		usleep(100 * 1000);
	}
}

static void python_worker_start(const char *environment) { python_worker_start_on(environment, NULL); }

/* The lines of the fixture's record about one task. */
static json_t *records_of_task(const char *task_id)
{
	char path[600];
	record_path(path, sizeof path);
	char *text = read_file_text(path);
	json_t *records = json_array();
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		json_t *record = json_loads(line, 0, NULL);
		const char *id = json_string_value(json_object_get(record, "task_id"));
		if (id != NULL && strcmp(id, task_id) == 0)
			json_array_append(records, record);
		json_decref(record);
	}
	free(text);
	return records;
}

/* ---- Redis and the daemon ---- */

static long long redis_integer(const char *format, const char *argument)
{
	redisContext *redis = harness_redis();
	redisReply *reply = redisCommand(redis, format, argument);
	ck_assert_ptr_nonnull(reply);
	ck_assert_msg(reply->type == REDIS_REPLY_INTEGER, "%s (%s): not an integer reply", format, argument);
	long long value = reply->integer;
	freeReplyObject(reply);
	redisFree(redis);
	return value;
}

/* Polls a Redis integer until it equals `expected`; whether it did in time. */
static bool redis_wait_for_integer(const char *format, const char *argument, long long expected, int timeout_ms)
{
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	long long value;
	while ((value = redis_integer(format, argument)) != expected && time_monotonic_ms() < deadline)
		usleep(50 * 1000);
	if (value != expected)
		fprintf(stderr, "waited for %s (%s) to be %lld; it is %lld\n", format, argument != NULL ? argument : "",
			expected, value);
	return value == expected;
}

/* What celery-task-meta-<id> holds, parsed; NULL when nothing. */
static json_t *stored_result(const char *task_id)
{
	redisContext *redis = harness_redis();
	redisReply *reply = redisCommand(redis, "GET celery-task-meta-%s", task_id);
	ck_assert_ptr_nonnull(reply);
	json_t *result = reply->type == REDIS_REPLY_STRING ? json_loads(reply->str, 0, NULL) : NULL;
	freeReplyObject(reply);
	redisFree(redis);
	return result;
}

static json_int_t worker_counter(const char *counter)
{
	int status;
	json_t *report = harness_sigtrig_json("status --json", &status);
	ck_assert_msg(status == 0, "sigtrig status: exit %d", status);
	json_int_t value = json_integer_value(
		json_object_get(json_object_get(json_object_get(report, "role_details"), "worker"), counter));
	json_decref(report);
	return value;
}

/* The lines of DIR/log/sigtrigd.log that contain every one of the given texts (NULL-terminated). */
static int daemon_log_lines_with(const char *first, ...)
{
	char path[600];
	snprintf(path, sizeof path, "%s/log/sigtrigd.log", harness.dir);
	char *log = read_file_text(path);
	int count = 0;
	for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		bool all = true;
		va_list texts;
		va_start(texts, first);
		for (const char *text = first; text != NULL && all; text = va_arg(texts, const char *))
			all = strstr(line, text) != NULL;
		va_end(texts);
		count += all;
	}
	free(log);
	return count;
}

static void assert_pipeline_result_of_sigtrig(const json_t *report, const char *pipeline, const char *execution_id)
{
	ck_assert_str_eq(json_string_value(json_object_get(report, "state")), "SUCCESS");
	const json_t *result = json_object_get(report, "result");
	ck_assert_msg(json_is_object(result), "get() returned no object");
	ck_assert_str_eq(json_string_value(json_object_get(result, "pipeline_id")), pipeline);
	ck_assert_str_eq(json_string_value(json_object_get(result, "status")), "SUCCEEDED");
	ck_assert_str_eq(json_string_value(json_object_get(result, "execution_id")), execution_id);
	/* Celery parsed date_done from what sigtrig wrote. */
	ck_assert_ptr_nonnull(json_string_value(json_object_get(report, "date_done")));
}

/*
 * Sets `key = value` in DIR/sigtrig.conf (value NULL: removes the key). The
 * line goes at the end, below the marker line whose settings 'sigtrig up'
 * keeps; daemon_restart() applies it.
 */
static void conf_set(const char *key, const char *value)
{
	char path[700];
	snprintf(path, sizeof path, "%s/sigtrig.conf", harness.dir);
	char *text = read_file_text(path);
	FILE *conf = fopen(path, "w");
	ck_assert_ptr_nonnull(conf);
	size_t key_length = strlen(key);
	for (char *line = text; *line != '\0';) {
		size_t length = strcspn(line, "\n");
		bool same_key = strncmp(line, key, key_length) == 0 &&
				(line[key_length] == ' ' || line[key_length] == '=');
		if (!same_key)
			fprintf(conf, "%.*s\n", (int)length, line);
		line += length + (line[length] == '\n');
	}
	if (value != NULL)
		fprintf(conf, "%s = %s\n", key, value);
	ck_assert_int_eq(fclose(conf), 0);
	free(text);
}

/* 'sigtrig up', which restarts the daemon when its configuration changed. */
static void daemon_restart(void)
{
	char *out = NULL, *err = NULL;
	int status = harness_sigtrig("up --no-generators", NULL, &out, &err);
	ck_assert_msg(status == 0, "sigtrig up: exit %d: %s %s", status, out, err);
	free(out);
	free(err);
}

static bool daemon_has_role(const char *role)
{
	int status;
	json_t *report = harness_sigtrig_json("status --json", &status);
	ck_assert_ptr_nonnull(report);
	bool has = json_object_get(json_object_get(report, "role_details"), role) != NULL;
	json_decref(report);
	return has;
}

/* ---- Python producer, sigtrig's worker ---- */

START_TEST(test_task_sent_by_python_send_task_is_run_by_sigtrig_and_get_returns_its_result)
{
	char *pipeline = harness_add_pipeline("sent-from-python", "PYSNT");
	char task_id[40];
	harness_new_uuid(task_id);
	/*
	 * A Python caller already waiting in get() when the result comes: it has
	 * subscribed to celery-task-meta-<id> and done its one GET, so only the
	 * PUBLISH can reach it (CELERY_WIRE.md section 6).
	 */
	char waiter_path[600], waiter_args[2048], fixture[600], command[8300];
	snprintf(waiter_path, sizeof waiter_path, "%s/waiter.json", harness.dir);
	fixture_directory(fixture, sizeof fixture);
	snprintf(waiter_args, sizeof waiter_args, "'%s/get_result.py' %s %s >'%s' </dev/null", fixture, task_id,
		 RESULT_TIMEOUT_S, waiter_path);
	char with_environment[8192];
	python_command(waiter_args, with_environment, sizeof with_environment);
	snprintf(command, sizeof command, "exec env %s", with_environment);
	pid_t waiter = spawn_shell(command);
	char channel[80];
	snprintf(channel, sizeof channel, "celery-task-meta-%s", task_id);
	int64_t deadline = time_monotonic_ms() + INTEROP_TIMEOUT_MS;
	long long subscribers = 0;
	while (subscribers == 0 && time_monotonic_ms() < deadline) {
		redisContext *redis = harness_redis();
		redisReply *reply = redisCommand(redis, "PUBSUB NUMSUB %s", channel);
		if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
			subscribers = reply->element[1]->integer;
		freeReplyObject(reply);
		redisFree(redis);
		if (subscribers == 0)
			usleep(50 * 1000);
	}
	ck_assert_int_eq(subscribers, 1);
	usleep(200 * 1000); /* its GET follows the SUBSCRIBE */

	char args[1024];
	snprintf(args, sizeof args,
		 "--id %s " EXECUTE_PIPELINE " '{\"pipeline_id\": \"%s\", \"triggered_by_signal\": false,"
		 " \"signal_ids\": [], \"execution_id\": null}'",
		 task_id, pipeline);
	char *sent = python_send_tasks(args);
	sent[strcspn(sent, "\n")] = '\0';
	ck_assert_str_eq(sent, task_id);

	/* Without an execution_id the worker records the run itself, under the task's id. */
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE task_id = $1", task_id, "SUCCEEDED",
					 INTEROP_TIMEOUT_MS));
	PGconn *db = harness_db();
	char *execution_id = harness_query_value(db, "SELECT id FROM executions WHERE task_id = $1", task_id);
	char *pipeline_of_run = harness_query_value(db, "SELECT pipeline_id FROM executions WHERE task_id = $1", task_id);
	char *triggered_by = harness_query_value(db, "SELECT triggered_by FROM executions WHERE task_id = $1", task_id);
	char *signals = harness_query_value(db, "SELECT cardinality(signal_ids) FROM executions WHERE task_id = $1",
					    task_id);
	PQfinish(db);
	ck_assert_ptr_nonnull(execution_id);
	ck_assert_str_eq(pipeline_of_run, pipeline);
	ck_assert_str_eq(triggered_by, "task");
	ck_assert_str_eq(signals, "0");

	ck_assert_int_eq(wait_child(waiter, INTEROP_TIMEOUT_MS + 10000), 0);
	char *waited = read_file_text(waiter_path);
	json_t *report = json_loads(waited, 0, NULL);
	ck_assert_msg(report != NULL, "get_result.py printed: %s", waited);
	assert_pipeline_result_of_sigtrig(report, pipeline, execution_id);
	ck_assert_str_eq(json_string_value(json_object_get(report, "task_id")), task_id);
	json_decref(report);
	/* A second caller, after the fact, reads the stored result. */
	report = python_get_result(task_id);
	assert_pipeline_result_of_sigtrig(report, pipeline, execution_id);
	json_decref(report);
	/* Acknowledged: nothing is left in the unacked bookkeeping. */
	ck_assert(redis_wait_for_integer("HLEN %s", "unacked", 0, 5000));
	ck_assert(redis_wait_for_integer("ZCARD %s", "unacked_index", 0, 5000));
	free(waited);
	free(signals);
	free(triggered_by);
	free(pipeline_of_run);
	free(execution_id);
	free(sent);
	free(pipeline);
}
END_TEST

START_TEST(test_task_sent_by_python_with_a_priority_is_run_by_sigtrig)
{
	/* send_task(priority=5) goes to the list celery\x06\x163, not to celery (CELERY_WIRE.md, Priority). */
	char *pipeline = harness_add_pipeline("urgent-from-python", "PYPRI");
	char args[1024];
	snprintf(args, sizeof args,
		 "--priority 5 " EXECUTE_PIPELINE " '{\"pipeline_id\": \"%s\", \"triggered_by_signal\": false,"
		 " \"signal_ids\": [], \"execution_id\": null}'",
		 pipeline);
	char *task_id = python_send_tasks(args);
	task_id[strcspn(task_id, "\n")] = '\0';
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE task_id = $1", task_id, "SUCCEEDED",
					 INTEROP_TIMEOUT_MS));
	json_t *report = python_get_result(task_id);
	ck_assert_str_eq(json_string_value(json_object_get(report, "state")), "SUCCESS");
	json_decref(report);
	free(task_id);
	free(pipeline);
}
END_TEST

START_TEST(test_unknown_task_name_gets_a_failure_and_the_next_task_still_runs)
{
	char *pipeline = harness_add_pipeline("after-unknown-task", "PYNOPE");
	json_int_t rejected_before = worker_counter("tasks_rejected");
	/* One process, one send right after the other. */
	char args[1024];
	snprintf(args, sizeof args,
		 "app.nope '{\"pipeline_id\": \"%s\"}' " EXECUTE_PIPELINE " '{\"pipeline_id\": \"%s\","
		 " \"triggered_by_signal\": false, \"signal_ids\": [], \"execution_id\": null}'",
		 pipeline, pipeline);
	char *ids = python_send_tasks(args);
	char *second = strchr(ids, '\n');
	ck_assert_ptr_nonnull(second);
	*second++ = '\0';
	second[strcspn(second, "\n")] = '\0';
	const char *unknown = ids;
	ck_assert_int_eq(strlen(unknown), 36);
	ck_assert_int_eq(strlen(second), 36);

	json_t *report = python_get_result(unknown);
	ck_assert_str_eq(json_string_value(json_object_get(report, "state")), "FAILURE");
	/* get() raises what a stock worker stores for an unregistered task. */
	const json_t *raised = json_object_get(report, "exception");
	ck_assert_str_eq(json_string_value(json_object_get(raised, "type")), "NotRegistered");
	ck_assert_str_eq(json_string_value(json_object_get(raised, "module")), "celery.exceptions");
	ck_assert_msg(strstr(json_string_value(json_object_get(raised, "message")), "app.nope") != NULL, "%s",
		      json_string_value(json_object_get(raised, "message")));
	json_decref(report);
	json_t *stored = stored_result(unknown);
	ck_assert_ptr_nonnull(stored);
	ck_assert_str_eq(json_string_value(json_object_get(stored, "status")), "FAILURE");
	ck_assert_str_eq(json_string_value(json_object_get(stored, "task_id")), unknown);
	json_decref(stored);
	ck_assert_msg(daemon_log_lines_with("app.nope", unknown, (const char *)NULL) >= 1,
		      "no line of sigtrigd.log names app.nope[%s]", unknown);

	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE task_id = $1", second, "SUCCEEDED",
					 INTEROP_TIMEOUT_MS));
	report = python_get_result(second);
	ck_assert_str_eq(json_string_value(json_object_get(report, "state")), "SUCCESS");
	json_decref(report);
	ck_assert_int_eq(worker_counter("tasks_rejected"), rejected_before + 1);
	ck_assert(redis_wait_for_integer("HLEN %s", "unacked", 0, 5000));
	free(ids);
	free(pipeline);
}
END_TEST

/* ---- bad input pushed straight onto the queue ---- */

/* Celery's minimal envelope (CELERY_WIRE.md section 2) with a body and properties chosen by the caller. */
static char *envelope_text(const char *task_id, const char *content_type, const char *body, json_t *properties)
{
	json_t *envelope = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "body", body, "content-encoding", "utf-8",
				     "headers", "task", EXECUTE_PIPELINE, "id", task_id, "properties", properties);
	ck_assert_ptr_nonnull(envelope);
	if (content_type != NULL)
		json_object_set_new(envelope, "content-type", json_string(content_type));
	char *text = json_dumps(envelope, JSON_COMPACT);
	json_decref(envelope);
	return text;
}

static json_t *base64_properties(const char *encoding, bool with_delivery_tag)
{
	char tag[40];
	harness_new_uuid(tag);
	json_t *properties = json_pack("{s:s, s:{s:s, s:s}}", "body_encoding", encoding, "delivery_info", "exchange",
				       "", "routing_key", "celery");
	if (with_delivery_tag)
		json_object_set_new(properties, "delivery_tag", json_string(tag));
	return properties;
}

static char *base64_of(const char *text)
{
	char *encoded = base64_encode(text, strlen(text));
	ck_assert_ptr_nonnull(encoded);
	return encoded;
}

struct bad_message {
	const char *what;
	char task_id[40];   /* "" when the message has none */
	char *text;
	const char *reason; /* a part of the dead letter's reason */
};

START_TEST(test_malformed_messages_are_dead_lettered_and_the_task_behind_them_runs)
{
	char *pipeline = harness_add_pipeline("after-garbage", "PYJUNK");
	char kwargs[512];
	snprintf(kwargs, sizeof kwargs,
		 "[[], {\"pipeline_id\": \"%s\", \"triggered_by_signal\": false, \"signal_ids\": []}, {}]", pipeline);
	char *good_body = base64_of(kwargs);
	char *two_element_body = base64_of("[[], {}]");

	struct bad_message bad[] = {
		{ .what = "not JSON", .reason = "not a JSON object" },
		/* The take script looks for the delivery tag first, and an array has none. */
		{ .what = "JSON, not an object", .reason = "properties.delivery_tag" },
		{ .what = "body encoding Celery does not have", .reason = "body_encoding" },
		{ .what = "body that is not base64", .reason = "body:" },
		{ .what = "pickle instead of JSON", .reason = "content-type" },
		{ .what = "body [args, kwargs], no embed (a stock worker dies on it)", .reason = "[args, kwargs, embed]" },
		{ .what = "no delivery tag", .reason = "delivery_tag" },
	};
	size_t bad_count = sizeof bad / sizeof bad[0];
	bad[0].text = strdup("this is not json {");
	bad[1].text = strdup("[\"celery\", 1, null]");
	harness_new_uuid(bad[2].task_id);
	bad[2].text = envelope_text(bad[2].task_id, "application/json", good_body, base64_properties("rot13", true));
	harness_new_uuid(bad[3].task_id);
	bad[3].text = envelope_text(bad[3].task_id, "application/json", "%%% this is not base64 %%%",
				    base64_properties("base64", true));
	harness_new_uuid(bad[4].task_id);
	bad[4].text = envelope_text(bad[4].task_id, "application/x-python-serialize", "gASVAAAAAAAAAAB9lC4=",
				    base64_properties("base64", true));
	harness_new_uuid(bad[5].task_id);
	bad[5].text = envelope_text(bad[5].task_id, "application/json", two_element_body,
				    base64_properties("base64", true));
	harness_new_uuid(bad[6].task_id);
	bad[6].text = envelope_text(bad[6].task_id, "application/json", good_body, base64_properties("base64", false));
	char good_id[40];
	harness_new_uuid(good_id);
	char *good = envelope_text(good_id, "application/json", good_body, base64_properties("base64", true));

	long long dead_before = redis_integer("LLEN %s", DEAD_LETTER_LIST);
	json_int_t rejected_before = worker_counter("tasks_rejected");
	/* One LPUSH: all of them in the queue at once, the valid task behind the garbage. */
	const char *argv[2 + 16];
	argv[0] = "LPUSH";
	argv[1] = "celery";
	for (size_t i = 0; i < bad_count; i++)
		argv[2 + i] = bad[i].text;
	argv[2 + bad_count] = good;
	redisContext *redis = harness_redis();
	redisReply *pushed = redisCommandArgv(redis, (int)(bad_count + 3), argv, NULL);
	ck_assert_ptr_nonnull(pushed);
	ck_assert_int_eq(pushed->type, REDIS_REPLY_INTEGER);
	freeReplyObject(pushed);

	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE task_id = $1", good_id, "SUCCEEDED",
					 INTEROP_TIMEOUT_MS));
	json_t *report = python_get_result(good_id);
	ck_assert_str_eq(json_string_value(json_object_get(report, "state")), "SUCCESS");
	json_decref(report);
	ck_assert(redis_wait_for_integer("LLEN %s", "celery", 0, 5000));
	ck_assert(redis_wait_for_integer("HLEN %s", "unacked", 0, 5000));
	ck_assert(redis_wait_for_integer("ZCARD %s", "unacked_index", 0, 5000));

	/* Each bad message is in the dead letters, exactly as it was pushed, with its reason. */
	ck_assert_int_eq(redis_integer("LLEN %s", DEAD_LETTER_LIST), dead_before + (long long)bad_count);
	redisReply *letters = redisCommand(redis, "LRANGE %s 0 %d", DEAD_LETTER_LIST, (int)bad_count - 1);
	ck_assert_int_eq(letters->type, REDIS_REPLY_ARRAY);
	for (size_t i = 0; i < bad_count; i++) {
		bool found = false;
		for (size_t k = 0; k < letters->elements && !found; k++) {
			json_t *letter = json_loads(letters->element[k]->str, 0, NULL);
			ck_assert_msg(letter != NULL, "dead letter is not JSON: %s", letters->element[k]->str);
			const char *envelope = json_string_value(json_object_get(letter, "envelope"));
			if (envelope != NULL && strcmp(envelope, bad[i].text) == 0) {
				found = true;
				const char *reason = json_string_value(json_object_get(letter, "reason"));
				ck_assert_msg(reason != NULL && strstr(reason, bad[i].reason) != NULL,
					      "%s: dead-letter reason '%s'", bad[i].what, reason);
				ck_assert_str_eq(json_string_value(json_object_get(letter, "queue")), "celery");
			}
			json_decref(letter);
		}
		ck_assert_msg(found, "%s: not in %s", bad[i].what, DEAD_LETTER_LIST);
	}
	freeReplyObject(letters);
	redisFree(redis);

	/* Whoever waits on one of them in Python gets a FAILURE that says why; the log says it too. */
	for (size_t i = 0; i < bad_count; i++) {
		if (bad[i].task_id[0] == '\0')
			continue;
		report = python_get_result(bad[i].task_id);
		ck_assert_msg(strcmp(json_string_value(json_object_get(report, "state")), "FAILURE") == 0,
			      "%s: state %s", bad[i].what, json_string_value(json_object_get(report, "state")));
		const char *message = json_string_value(json_object_get(json_object_get(report, "exception"), "message"));
		ck_assert_msg(message != NULL && strstr(message, bad[i].reason) != NULL, "%s: get() raised '%s'",
			      bad[i].what, message);
		json_decref(report);
		ck_assert_msg(daemon_log_lines_with(bad[i].task_id, bad[i].reason, (const char *)NULL) >= 1,
			      "%s: no line of sigtrigd.log names task %s and '%s'", bad[i].what, bad[i].task_id,
			      bad[i].reason);
	}
	for (size_t i = 0; i < bad_count; i++)
		ck_assert_msg(bad[i].task_id[0] != '\0' ||
				      daemon_log_lines_with("\"task_dead_lettered\"", bad[i].reason, (const char *)NULL) >= 1,
			      "%s: no line of sigtrigd.log says it was dead-lettered and why", bad[i].what);
	ck_assert_int_eq(worker_counter("tasks_rejected"), rejected_before + (json_int_t)bad_count);
	for (size_t i = 0; i < bad_count; i++)
		free(bad[i].text);
	free(good);
	free(two_element_body);
	free(good_body);
	free(pipeline);
}
END_TEST

/* ---- sigtrig's dispatcher, a stock Celery worker ---- */

START_TEST(test_signal_enqueued_by_sigtrig_is_run_by_a_python_celery_worker)
{
	/* The daemon, restarted, no longer takes tasks: the Python worker gets them all. */
	conf_set("daemon.roles", "generator,dispatcher,scheduler");
	daemon_restart();
	ck_assert(!daemon_has_role("worker"));
	ck_assert(daemon_has_role("dispatcher"));
	python_worker_start("");

	char *pipeline = harness_add_pipeline("run-by-python", "PYRUN");
	char *signal_id = harness_inject_one("PYRUN");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "PENDING", INTEROP_TIMEOUT_MS));
	PGconn *db = harness_db();
	char *execution_id = harness_query_value(db, "SELECT id FROM executions WHERE $1 = ANY(signal_ids)", signal_id);
	char *task_id = harness_query_value(db, "SELECT task_id FROM executions WHERE $1 = ANY(signal_ids)", signal_id);
	ck_assert_ptr_nonnull(execution_id);
	ck_assert_ptr_nonnull(task_id);

	json_t *report = python_get_result(task_id);
	ck_assert_msg(strcmp(json_string_value(json_object_get(report, "state")), "SUCCESS") == 0,
		      "state %s: %s", json_string_value(json_object_get(report, "state")),
		      json_dumps(report, 0));
	const json_t *received = json_object_get(report, "result");
	ck_assert_str_eq(json_string_value(json_object_get(received, "ran_by")), "python-celery");
	ck_assert_str_eq(json_string_value(json_object_get(received, "task")), EXECUTE_PIPELINE);
	ck_assert_str_eq(json_string_value(json_object_get(received, "task_id")), task_id);
	ck_assert_int_eq(json_array_size(json_object_get(received, "args")), 0);
	/* Exactly these keyword arguments, with their JSON types. */
	const json_t *kwargs = json_object_get(received, "kwargs");
	ck_assert_int_eq(json_object_size(kwargs), 4);
	ck_assert_str_eq(json_string_value(json_object_get(kwargs, "pipeline_id")), pipeline);
	ck_assert(json_is_true(json_object_get(kwargs, "triggered_by_signal")));
	const json_t *signal_ids = json_object_get(kwargs, "signal_ids");
	ck_assert_int_eq(json_array_size(signal_ids), 1);
	ck_assert_str_eq(json_string_value(json_array_get(signal_ids, 0)), signal_id);
	ck_assert_str_eq(json_string_value(json_object_get(kwargs, "execution_id")), execution_id);
	const json_t *delivery_info = json_object_get(received, "delivery_info");
	ck_assert_str_eq(json_string_value(json_object_get(delivery_info, "routing_key")), "celery");
	ck_assert(json_is_false(json_object_get(received, "redelivered")));
	/* Logs and monitoring show the call as they would show Python's own send_task(). */
	ck_assert_str_eq(json_string_value(json_object_get(received, "argsrepr")),
			 json_string_value(json_object_get(received, "argsrepr_of_python")));
	ck_assert_str_eq(json_string_value(json_object_get(received, "kwargsrepr")),
			 json_string_value(json_object_get(received, "kwargsrepr_of_python")));
	json_decref(report);

	/* Stored where Celery's result backend keeps it, by the Python worker. */
	json_t *stored = stored_result(task_id);
	ck_assert_ptr_nonnull(stored);
	ck_assert_str_eq(json_string_value(json_object_get(stored, "status")), "SUCCESS");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(stored, "result"), "ran_by")),
			 "python-celery");
	json_decref(stored);
	/* Run once, acknowledged, and the worker is still up. */
	json_t *records = records_of_task(task_id);
	ck_assert_int_eq(json_array_size(records), 1);
	json_decref(records);
	ck_assert(redis_wait_for_integer("HLEN %s", "unacked", 0, 5000));
	ck_assert_int_eq(redis_integer("LLEN %s", "celery"), 0);
	ck_assert(python_worker_alive());
	/* Nobody else ran it: sigtrig's execution is still the PENDING one its dispatcher claimed. */
	char *still = harness_query_value(db, "SELECT status FROM executions WHERE id = $1", execution_id);
	ck_assert_str_eq(still, "PENDING");
	char log_path[600];
	worker_log_path(log_path, sizeof log_path);
	char *log = read_file_text(log_path);
	ck_assert_msg(strstr(log, "Traceback") == NULL && strstr(log, "ERROR") == NULL, "Celery worker log:\n%s", log);
	free(log);
	python_worker_stop();
	free(still);
	PQfinish(db);
	free(task_id);
	free(execution_id);
	free(signal_id);
	free(pipeline);
}
END_TEST

START_TEST(test_task_a_python_worker_died_holding_is_given_back_and_run_by_sigtrig)
{
	/* kombu's bookkeeping, shared: what a dead Python worker held, sigtrig's worker restores. */
	conf_set("daemon.roles", "generator,dispatcher,scheduler");
	daemon_restart();
	ck_assert(!daemon_has_role("worker"));
	python_worker_start("SIGTRIG_CELERY_TASK_SLEEP_S=300");
	char *pipeline = harness_add_pipeline("held-by-python", "PYHELD");
	char *signal_id = harness_inject_one("PYHELD");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "PENDING", INTEROP_TIMEOUT_MS));
	PGconn *db = harness_db();
	char *execution_id = harness_query_value(db, "SELECT id FROM executions WHERE $1 = ANY(signal_ids)", signal_id);
	char *task_id = harness_query_value(db, "SELECT task_id FROM executions WHERE $1 = ANY(signal_ids)", signal_id);
	PQfinish(db);
	ck_assert_ptr_nonnull(task_id);
	int64_t deadline = time_monotonic_ms() + INTEROP_TIMEOUT_MS;
	json_t *records = NULL;
	for (;;) {
		json_decref(records);
		records = records_of_task(task_id);
		if (json_array_size(records) > 0 || time_monotonic_ms() >= deadline)
			break;
		usleep(50 * 1000);
	}
	ck_assert_msg(json_array_size(records) == 1, "the Python worker never started task %s", task_id);
	json_decref(records);
	/* While it runs, the task exists only in the unacked bookkeeping. */
	ck_assert_int_eq(redis_integer("LLEN %s", "celery"), 0);
	ck_assert_int_eq(redis_integer("HLEN %s", "unacked"), 1);
	python_worker_kill();
	ck_assert_int_eq(redis_integer("HLEN %s", "unacked"), 1);

	/* sigtrig's worker back, with a visibility timeout the held task is already past. */
	conf_set("worker.visibility_timeout_s", "2");
	conf_set("daemon.roles", NULL);
	daemon_restart();
	ck_assert(daemon_has_role("worker"));
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE id = $1", execution_id, "SUCCEEDED",
					 INTEROP_TIMEOUT_MS));
	json_t *report = python_get_result(task_id);
	assert_pipeline_result_of_sigtrig(report, pipeline, execution_id);
	json_decref(report);
	ck_assert(redis_wait_for_integer("HLEN %s", "unacked", 0, 5000));
	ck_assert_msg(daemon_log_lines_with("\"tasks_restored\"", (const char *)NULL) >= 1,
		      "sigtrigd.log does not say it gave the task back");
	free(task_id);
	free(execution_id);
	free(signal_id);
	free(pipeline);
}
END_TEST

/*
 * What a stock worker does with send_task()'s countdown and expires: it
 * keeps a task with an eta until then, and revokes an expired one without
 * running it (state REVOKED, TaskRevokedError('expired') in get()).
 */
START_TEST(test_task_sent_with_a_countdown_does_not_run_before_its_eta)
{
	char *pipeline = harness_add_pipeline("counted-down", "PYETA");
	char args[1024];
	snprintf(args, sizeof args,
		 "--countdown 5 " EXECUTE_PIPELINE " '{\"pipeline_id\": \"%s\", \"triggered_by_signal\": false,"
		 " \"signal_ids\": [], \"execution_id\": null}'",
		 pipeline);
	char *task_id = python_send_tasks(args);
	task_id[strcspn(task_id, "\n")] = '\0';
	sleep(3);
	PGconn *db = harness_db();
	char *early = harness_query_value(db, "SELECT count(*) FROM executions WHERE task_id = $1", task_id);
	PQfinish(db);
	ck_assert_msg(strcmp(early, "0") == 0, "task %s sent with countdown=5 ran within 3 s", task_id);
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE task_id = $1", task_id, "SUCCEEDED",
					 INTEROP_TIMEOUT_MS));
	free(early);
	free(task_id);
	free(pipeline);
}
END_TEST

START_TEST(test_task_sent_already_expired_is_revoked_and_not_run)
{
	char *pipeline = harness_add_pipeline("expired", "PYEXP");
	char args[1024];
	snprintf(args, sizeof args,
		 "--expires=-300 " EXECUTE_PIPELINE " '{\"pipeline_id\": \"%s\", \"triggered_by_signal\": false,"
		 " \"signal_ids\": [], \"execution_id\": null}'",
		 pipeline);
	char *task_id = python_send_tasks(args);
	task_id[strcspn(task_id, "\n")] = '\0';
	json_t *report = python_get_result(task_id);
	ck_assert_msg(strcmp(json_string_value(json_object_get(report, "state")), "REVOKED") == 0,
		      "expired task %s: state %s", task_id, json_string_value(json_object_get(report, "state")));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(report, "exception"), "type")),
			 "TaskRevokedError");
	json_decref(report);
	PGconn *db = harness_db();
	char *runs = harness_query_value(db, "SELECT count(*) FROM executions WHERE task_id = $1", task_id);
	PQfinish(db);
	ck_assert_str_eq(runs, "0");
	free(runs);
	free(task_id);
	free(pipeline);
}
END_TEST

/* send_canvas.py MODE: the first task's id and the callback's, each malloc'd. */
static void python_send_canvas(const char *mode, const char *pipeline, char **first_id, char **callback_id)
{
	char args[1024], *out = NULL;
	snprintf(args, sizeof args,
		 "%s python '{\"pipeline_id\": \"%s\", \"triggered_by_signal\": false, \"signal_ids\": [],"
		 " \"execution_id\": null}'",
		 mode, pipeline);
	ck_assert_int_eq(python_script("send_canvas.py", args, &out), 0);
	char *newline = strchr(out, '\n');
	ck_assert_msg(newline != NULL, "send_canvas.py printed: %s", out);
	*newline = '\0';
	*first_id = strdup(out);
	*callback_id = strndup(newline + 1, strcspn(newline + 1, "\n"));
	free(out);
}

/* What notify, run by the Python worker, returned: checked to have been sent on by task first_id. */
static json_t *notified_by(const char *first_id, const char *callback_id)
{
	json_t *report = python_get_result(callback_id);
	json_t *result = json_incref(json_object_get(report, "result"));
	ck_assert_msg(result != NULL, "no result for the callback %s", callback_id);
	ck_assert_str_eq(json_string_value(json_object_get(result, "ran_by")), "python-celery-notify");
	ck_assert_str_eq(json_string_value(json_object_get(result, "task_id")), callback_id);
	ck_assert_str_eq(json_string_value(json_object_get(result, "parent_id")), first_id);
	ck_assert_str_eq(json_string_value(json_object_get(result, "root_id")), first_id);
	ck_assert_str_eq(json_string_value(json_object_get(result, "queue")), "python");
	json_decref(report);
	return result;
}

START_TEST(test_chains_links_and_errbacks_built_in_python_go_on_after_a_sigtrig_run)
{
	/* Python runs only the callbacks, on their own queue; sigtrig runs the pipeline. */
	python_worker_start_on("", "python");
	char *pipeline = harness_add_pipeline("canvas", "PYCNV");

	/* chain(execute_pipeline, notify): notify gets the run's result, then its own argument. */
	char *first_id, *callback_id;
	python_send_canvas("chain", pipeline, &first_id, &callback_id);
	json_t *notified = notified_by(first_id, callback_id);
	const json_t *got = json_object_get(notified, "got");
	ck_assert_str_eq(json_string_value(json_object_get(got, "status")), "SUCCEEDED");
	ck_assert_str_eq(json_string_value(json_object_get(got, "pipeline_id")), pipeline);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(notified, "args"), 0)), "from-chain");
	/* The first task was sigtrig's run, whose result Celery sees too. */
	json_t *first = python_get_result(first_id);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(first, "result"), "status")), "SUCCEEDED");
	json_decref(first);
	json_decref(notified);
	free(first_id);
	free(callback_id);

	/* link=notify: the same, as a callback. The pipeline is free again once its run finished. */
	ck_assert(harness_wait_for_value("SELECT count(*) FROM executions WHERE pipeline_id = $1 AND status = 'SUCCEEDED'",
					 pipeline, "1", INTEROP_TIMEOUT_MS));
	python_send_canvas("link", pipeline, &first_id, &callback_id);
	notified = notified_by(first_id, callback_id);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(notified, "got"), "status")), "SUCCEEDED");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(notified, "args"), 0)), "from-link");
	json_decref(notified);
	free(first_id);
	free(callback_id);

	/* link_error=notify on a task sigtrig does not have: notify gets the failed task's id. */
	python_send_canvas("errback", pipeline, &first_id, &callback_id);
	notified = notified_by(first_id, callback_id);
	ck_assert_str_eq(json_string_value(json_object_get(notified, "got")), first_id);
	json_decref(notified);
	json_t *failed = python_get_result(first_id);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(failed, "exception"), "type")), "NotRegistered");
	json_decref(failed);
	free(first_id);
	free(callback_id);
	python_worker_stop();
	free(pipeline);
}
END_TEST

static void stack_up(void)
{
	harness_up("--no-generators");
}

static void stack_down(void)
{
	harness_down();
}

static Suite *celery_interop_suite(void)
{
	Suite *suite = suite_create("celery_interop");
	TCase *interop = tcase_create("real_celery");
	tcase_add_unchecked_fixture(interop, stack_up, stack_down);
	tcase_set_timeout(interop, 180);
	tcase_add_test(interop, test_task_sent_by_python_send_task_is_run_by_sigtrig_and_get_returns_its_result);
	tcase_add_test(interop, test_task_sent_by_python_with_a_priority_is_run_by_sigtrig);
	tcase_add_test(interop, test_unknown_task_name_gets_a_failure_and_the_next_task_still_runs);
	tcase_add_test(interop, test_malformed_messages_are_dead_lettered_and_the_task_behind_them_runs);
	tcase_add_test(interop, test_task_sent_with_a_countdown_does_not_run_before_its_eta);
	tcase_add_test(interop, test_task_sent_already_expired_is_revoked_and_not_run);
	tcase_add_test(interop, test_chains_links_and_errbacks_built_in_python_go_on_after_a_sigtrig_run);
	/* Last: they restart the daemon without its worker role, so that a Python worker takes the tasks. */
	tcase_add_test(interop, test_signal_enqueued_by_sigtrig_is_run_by_a_python_celery_worker);
	tcase_add_test(interop, test_task_a_python_worker_died_holding_is_given_back_and_run_by_sigtrig);
	suite_add_tcase(suite, interop);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(celery_interop_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

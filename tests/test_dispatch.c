/*
 * End to end: the dispatcher under contention and failure, on the real
 * local stack. Each case starts a stack of its own:
 *
 *   two_dispatchers  the stack's daemon (every role) and a second
 *                    dispatcher-only sigtrigd share the consumer group
 *                    while a flood of signals arrives;
 *   redis_outage     the stack's daemon alone, while its redis-server is
 *                    stopped and started again;
 *   dispatcher_crash the stack's daemon runs every role but the
 *                    dispatcher, and the only dispatcher, a sigtrigd of
 *                    its own, is SIGKILLed in the middle of a stream.
 *
 * Every check reads what PostgreSQL (executions, signals,
 * signal_decisions), Redis or Kafka hold afterwards; the daemons' own
 * counters only show who took part.
 */
#include <check.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "timeutil.h"

/* Generous: a killed consumer's partitions move only after its 6 s session ran out. */
#define DISPATCH_TIMEOUT_MS 60000

static void pause_ms(int ms)
{
	struct timespec pause = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&pause, NULL);
}

/* ---- daemons of the stack ---- */

/* Alive and not a zombie: a process that exited but was not reaped yet counts as gone. */
static bool process_is_alive(pid_t pid)
{
	if (pid <= 0 || kill(pid, 0) != 0)
		return false;
	char path[64], state = '?';
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	FILE *file = fopen(path, "r");
	if (file == NULL)
		return false;
	/* pid (comm) state ...: the state follows the last ')' */
	char line[1024];
	if (fgets(line, sizeof line, file) != NULL) {
		const char *close = strrchr(line, ')');
		if (close != NULL && close[1] == ' ')
			state = close[2];
	}
	fclose(file);
	return state != 'Z' && state != 'X';
}

static bool wait_for_exit(pid_t pid, int timeout_ms)
{
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	while (process_is_alive(pid) && time_monotonic_ms() < deadline)
		pause_ms(50);
	return !process_is_alive(pid);
}

/* Another sigtrigd on the stack: its own socket DIR/NAME.sock, pid file DIR/NAME.pid, log DIR/log/NAME.log. */
static void extra_daemon_start(const char *name, const char *roles)
{
	char command[4096];
	snprintf(command, sizeof command,
		 "SIGTRIG_DAEMON_PID_FILE='%s/%s.pid' SIGTRIG_DAEMON_LOG_FILE='%s/log/%s.log'"
		 " '%s/sigtrigd' -c '%s/sigtrig.conf' --roles %s --socket '%s/%s.sock'",
		 harness.dir, name, harness.dir, name, harness.bin, harness.dir, roles, harness.dir, name);
	ck_assert_msg(system(command) == 0, "sigtrigd %s did not start", name);
}

static pid_t extra_daemon_pid(const char *name)
{
	char path[256];
	snprintf(path, sizeof path, "%s.pid", name);
	return harness_pid_in_file(path);
}

/* Sends `sig` to the daemon and waits until it is gone. */
static void extra_daemon_signal(const char *name, int sig)
{
	pid_t pid = extra_daemon_pid(name);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(kill(pid, sig), 0);
	ck_assert_msg(wait_for_exit(pid, 30000), "sigtrigd %s (pid %ld) did not exit", name, (long)pid);
}

/* `sigtrig status --json` of the daemon NAME (NULL: the stack's own); NULL when it does not answer. */
static json_t *status_of(const char *name, int *status)
{
	char args[1024] = "status --json";
	if (name != NULL)
		snprintf(args, sizeof args, "status --json --socket '%s/%s.sock'", harness.dir, name);
	return harness_sigtrig_json(args, status);
}

static json_int_t counter_of(const char *name, const char *counter)
{
	int status;
	json_t *report = status_of(name, &status);
	json_int_t value = json_integer_value(json_object_get(json_object_get(report, "counters"), counter));
	json_decref(report);
	return value;
}

static json_int_t cached_pipelines_of(const char *name)
{
	int status;
	json_t *report = status_of(name, &status);
	json_int_t value = json_integer_value(json_object_get(json_object_get(report, "cache"), "pipelines"));
	json_decref(report);
	return value;
}

/* Waits until the dispatcher of daemon NAME holds at least `count` pipelines in its cache. */
static void wait_for_cached_pipelines(const char *name, json_int_t count)
{
	int64_t deadline = time_monotonic_ms() + 30000;
	while (cached_pipelines_of(name) < count && time_monotonic_ms() < deadline)
		pause_ms(100);
	ck_assert_msg(cached_pipelines_of(name) >= count, "dispatcher of %s never cached the %lld pipelines",
		      name != NULL ? name : "the stack's daemon", (long long)count);
}

/* The last lines of DIR/log/NAME.log on stderr, for the story behind a failure. */
static void show_log(const char *name, int lines)
{
	char command[1024];
	snprintf(command, sizeof command, "echo '--- last lines of log/%s.log:' >&2; tail -n %d '%s/log/%s.log' >&2",
		 name, lines, harness.dir, name);
	if (system(command) != 0)
		fprintf(stderr, "(no log/%s.log)\n", name);
}

/* ---- signals ---- */

/* Signals whose ids the test chooses, each about one ticker. */
struct signal_set {
	size_t count;
	char (*ids)[40];
	const char **tickers; /* borrowed */
};

static void signal_set_init(struct signal_set *set, size_t count, const char *const *tickers, size_t ticker_count)
{
	set->count = count;
	set->ids = calloc(count, sizeof *set->ids);
	set->tickers = calloc(count, sizeof *set->tickers);
	ck_assert(set->ids != NULL && set->tickers != NULL);
	for (size_t i = 0; i < count; i++) {
		harness_new_uuid(set->ids[i]);
		set->tickers[i] = tickers[i % ticker_count];
	}
}

static void signal_set_free(struct signal_set *set)
{
	free(set->ids);
	free(set->tickers);
}

static char *signal_json(const char *signal_id, const char *ticker)
{
	char *text = NULL;
	ck_assert_int_gt(asprintf(&text,
				  "{\"signal_id\":\"%s\",\"signal_type\":\"flood\",\"source\":\"test_dispatch\","
				  "\"tickers\":[{\"ticker\":\"%s\",\"signal\":\"BULLISH\",\"confidence\":80}]}",
				  signal_id, ticker),
			 0);
	return text;
}

/* Publishes the whole set through the stack's daemon with `sigtrig inject -f -`. */
static void signal_set_inject(const struct signal_set *set)
{
	size_t capacity = set->count * 200 + 1, used = 0;
	char *input = malloc(capacity);
	ck_assert_ptr_nonnull(input);
	input[0] = '\0';
	for (size_t i = 0; i < set->count; i++) {
		char *line = signal_json(set->ids[i], set->tickers[i]);
		used += (size_t)snprintf(input + used, capacity - used, "%s\n", line);
		free(line);
	}
	char *out = NULL, *err = NULL;
	int status = harness_sigtrig("inject -f -", input, &out, &err);
	ck_assert_msg(status == 0, "inject failed (%d): %s", status, err);
	/* Each signal published under the id it was given, in order. */
	const char *line = out;
	for (size_t i = 0; i < set->count; i++) {
		ck_assert_msg(strncmp(line, set->ids[i], 36) == 0 && line[36] == '\n', "inject printed '%.40s' for %s",
			      line, set->ids[i]);
		line += 37;
	}
	ck_assert_str_eq(line, "");
	free(out);
	free(err);
	free(input);
}

/* A PostgreSQL array literal of strings, {a,b,...}: one query parameter for many ids. */
static char *array_literal(char (*ids)[40], size_t count)
{
	char *text = malloc(count * 40 + 3);
	ck_assert_ptr_nonnull(text);
	size_t used = 0;
	text[used++] = '{';
	for (size_t i = 0; i < count; i++)
		used += (size_t)sprintf(text + used, "%s%s", i > 0 ? "," : "", ids[i]);
	text[used++] = '}';
	text[used] = '\0';
	return text;
}

/* ---- what PostgreSQL holds ---- */

static long query_count(PGconn *db, const char *sql, const char *parameter)
{
	char *value = harness_query_value(db, sql, parameter);
	ck_assert_msg(value != NULL, "no value from %s", sql);
	long count = atol(value);
	free(value);
	return count;
}

/* The same with two parameters. */
static long query_count_2(PGconn *db, const char *sql, const char *first, const char *second)
{
	const char *values[] = { first, second };
	PGresult *result = PQexecParams(db, sql, 2, NULL, values, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1, "%s: %s", sql,
		      PQresultErrorMessage(result));
	long count = atol(PQgetvalue(result, 0, 0));
	PQclear(result);
	return count;
}

/* Polls `sql` (one parameter) until it counts at least `expected`; returns the last count. */
static long wait_for_count(const char *sql, const char *parameter, long expected, int timeout_ms)
{
	PGconn *db = harness_db();
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	long count = query_count(db, sql, parameter);
	while (count < expected && time_monotonic_ms() < deadline) {
		pause_ms(100);
		count = query_count(db, sql, parameter);
	}
	PQfinish(db);
	return count;
}

#define DISTINCT_DECIDED_SQL "SELECT count(DISTINCT signal_id) FROM signal_decisions WHERE signal_id = ANY($1::text[])"
#define LIVE_EXECUTIONS_SQL \
	"SELECT count(*) FROM executions WHERE pipeline_id = ANY($1::uuid[])" \
	" AND status IN ('PENDING', 'RUNNING', 'HOLDING')"

/* Waits until each signal of the set has at least one decision record; fails the test if one never does. */
static void wait_until_every_signal_is_decided(const struct signal_set *set, int timeout_ms)
{
	char *ids = array_literal(set->ids, set->count);
	long decided = wait_for_count(DISTINCT_DECIDED_SQL, ids, (long)set->count, timeout_ms);
	free(ids);
	if (decided < (long)set->count)
		show_log("sigtrigd", 30);
	ck_assert_msg(decided == (long)set->count, "%ld of %zu signals have a decision record after %d ms", decided,
		      set->count, timeout_ms);
}

/* Waits until no execution of the pipelines is PENDING, RUNNING or HOLDING. */
static bool wait_until_nothing_is_live(const char *pipelines_literal, int timeout_ms)
{
	PGconn *db = harness_db();
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	long live = query_count(db, LIVE_EXECUTIONS_SQL, pipelines_literal);
	while (live > 0 && time_monotonic_ms() < deadline) {
		pause_ms(100);
		live = query_count(db, LIVE_EXECUTIONS_SQL, pipelines_literal);
	}
	if (live > 0) {
		PGresult *rows = PQexecParams(db,
					      "SELECT id, status, created_at, enqueued_at FROM executions"
					      " WHERE pipeline_id = ANY($1::uuid[]) AND status IN ('PENDING', 'RUNNING', 'HOLDING')",
					      1, NULL, (const char *const[]){ pipelines_literal }, NULL, NULL, 0);
		for (int row = 0; PQresultStatus(rows) == PGRES_TUPLES_OK && row < PQntuples(rows) && row < 10; row++)
			fprintf(stderr, "still live: execution %s %s created %s enqueued %s\n", PQgetvalue(rows, row, 0),
				PQgetvalue(rows, row, 1), PQgetvalue(rows, row, 2), PQgetvalue(rows, row, 3));
		PQclear(rows);
	}
	PQfinish(db);
	return live == 0;
}

/* A pipeline added with `pipelines add`, watching the tickers; its id into `id`. */
static void add_pipeline(const char *name, const char *const *tickers, size_t ticker_count, char id[40])
{
	char args[2048];
	size_t used = (size_t)snprintf(args, sizeof args, "pipelines add --json --name %s", name);
	for (size_t i = 0; i < ticker_count; i++)
		used += (size_t)snprintf(args + used, sizeof args - used, " --ticker %s", tickers[i]);
	int status;
	json_t *pipeline = harness_sigtrig_json(args, &status);
	ck_assert_int_eq(status, 0);
	ck_assert_ptr_nonnull(pipeline);
	const char *added = json_string_value(json_object_get(pipeline, "id"));
	ck_assert_ptr_nonnull(added);
	ck_assert_int_eq(strlen(added), 36);
	memcpy(id, added, 37);
	json_decref(pipeline);
}

/*
 * `count` pipelines, as an array literal of their ids: pipeline i watches
 * ticker i alone, or, when `watch_all`, all `ticker_count` tickers.
 */
static char *add_pipelines(const char *prefix, size_t count, const char *const *tickers, size_t ticker_count,
			   bool watch_all)
{
	char (*ids)[40] = calloc(count, sizeof *ids);
	ck_assert_ptr_nonnull(ids);
	for (size_t i = 0; i < count; i++) {
		char name[128];
		snprintf(name, sizeof name, "%s-%zu", prefix, i);
		if (watch_all)
			add_pipeline(name, tickers, ticker_count, ids[i]);
		else
			add_pipeline(name, &tickers[i % ticker_count], 1, ids[i]);
	}
	char *literal = array_literal(ids, count);
	free(ids);
	return literal;
}

/*
 * When each execution became live and when it stopped being live, as
 * clock_timestamp() at the row's INSERT and at its change to SUCCEEDED or
 * FAILED, recorded by a trigger the test adds. created_at and finished_at
 * cannot tell: both are now(), the start of their transaction, so a claim
 * whose statement began a moment before the previous run's finish, and
 * that waited for it in the unique index, has a created_at earlier than
 * that run's finished_at. The trigger fires inside each statement, after
 * the claim got past the index: a claim that had to wait for a finish is
 * stamped after it.
 */
static void record_live_intervals(void)
{
	PGconn *db = harness_db();
	PGresult *result = PQexec(
		db,
		"CREATE TABLE IF NOT EXISTS test_dispatch_status_changes ("
		"  execution_id uuid NOT NULL, pipeline_id uuid NOT NULL, status text NOT NULL,"
		"  at timestamptz NOT NULL DEFAULT clock_timestamp());"
		"CREATE OR REPLACE FUNCTION test_dispatch_note_status() RETURNS trigger LANGUAGE plpgsql AS $$"
		" BEGIN"
		"  IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN"
		"   INSERT INTO test_dispatch_status_changes (execution_id, pipeline_id, status)"
		"   VALUES (NEW.id, NEW.pipeline_id, NEW.status);"
		"  END IF;"
		"  RETURN NULL;"
		" END $$;"
		"DROP TRIGGER IF EXISTS test_dispatch_status_changed ON executions;"
		"CREATE TRIGGER test_dispatch_status_changed AFTER INSERT OR UPDATE ON executions"
		"  FOR EACH ROW EXECUTE FUNCTION test_dispatch_note_status();");
	ck_assert_msg(PQresultStatus(result) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(result));
	PQclear(result);
	PQfinish(db);
}

#define LIVE_INTERVALS_SQL                                                                                   \
	"WITH live AS ("                                                                                     \
	"  SELECT execution_id, pipeline_id,"                                                                \
	"         min(at) FILTER (WHERE status IN ('PENDING', 'RUNNING', 'HOLDING')) AS live_from,"         \
	"         min(at) FILTER (WHERE status IN ('SUCCEEDED', 'FAILED')) AS live_until"                   \
	"  FROM test_dispatch_status_changes WHERE pipeline_id = ANY($1::uuid[])"                          \
	"  GROUP BY execution_id, pipeline_id)"

/*
 * Pairs of executions of one pipeline that were live at the same time,
 * each live from its claim to its end. Prints the first few.
 */
static long overlapping_runs(PGconn *db, const char *pipelines_literal)
{
	/* Every execution of the pipelines was seen becoming live and ending. */
	char *unseen = harness_query_value(db,
					   LIVE_INTERVALS_SQL
					   " SELECT count(*) FROM executions e LEFT JOIN live l ON l.execution_id = e.id"
					   " WHERE e.pipeline_id = ANY($1::uuid[])"
					   "   AND (l.live_from IS NULL OR l.live_until IS NULL)",
					   pipelines_literal);
	ck_assert_ptr_nonnull(unseen);
	ck_assert_msg(strcmp(unseen, "0") == 0, "%s executions without a recorded claim and end", unseen);
	free(unseen);
	PGresult *rows = PQexecParams(
		db,
		LIVE_INTERVALS_SQL
		" SELECT a.pipeline_id, a.execution_id, a.live_from, a.live_until,"
		"        b.execution_id, b.live_from, b.live_until"
		" FROM live a JOIN live b ON b.pipeline_id = a.pipeline_id AND b.execution_id > a.execution_id"
		" WHERE tstzrange(a.live_from, a.live_until, '[)') && tstzrange(b.live_from, b.live_until, '[)')",
		1, NULL, (const char *const[]){ pipelines_literal }, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(rows) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(rows));
	long count = PQntuples(rows);
	for (int row = 0; row < count && row < 5; row++)
		fprintf(stderr, "pipeline %s: run %s live [%s, %s) overlaps run %s live [%s, %s)\n",
			PQgetvalue(rows, row, 0), PQgetvalue(rows, row, 1), PQgetvalue(rows, row, 2),
			PQgetvalue(rows, row, 3), PQgetvalue(rows, row, 4), PQgetvalue(rows, row, 5),
			PQgetvalue(rows, row, 6));
	PQclear(rows);
	return count;
}

/*
 * (pipeline, signal) pairs found in more than one execution: a signal that
 * started two runs of one pipeline. Prints the first few.
 */
static long doubled_claims(PGconn *db, const char *pipelines_literal)
{
	PGresult *rows = PQexecParams(db,
				      "SELECT e.pipeline_id, s.signal_id, count(*),"
				      "       string_agg(e.id || ' ' || e.status || ' created ' || e.created_at, '; '"
				      "                  ORDER BY e.created_at)"
				      " FROM executions e, unnest(e.signal_ids) AS s(signal_id)"
				      " WHERE e.pipeline_id = ANY($1::uuid[])"
				      " GROUP BY e.pipeline_id, s.signal_id HAVING count(*) > 1",
				      1, NULL, (const char *const[]){ pipelines_literal }, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(rows) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(rows));
	long count = PQntuples(rows);
	for (int row = 0; row < count && row < 5; row++)
		fprintf(stderr, "signal %s started %s runs of pipeline %s: %s\n", PQgetvalue(rows, row, 1),
			PQgetvalue(rows, row, 2), PQgetvalue(rows, row, 0), PQgetvalue(rows, row, 3));
	PQclear(rows);
	return count;
}

/* ---- Kafka, directly ---- */

static rd_kafka_t *kafka_client(rd_kafka_type_t type)
{
	char reason[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", harness.config.kafka_bootstrap_servers, reason,
					   sizeof reason),
			 RD_KAFKA_CONF_OK);
	if (type == RD_KAFKA_CONSUMER) {
		/* Never subscribes: it only reads the group's committed offsets, it does not join. */
		ck_assert_int_eq(rd_kafka_conf_set(conf, "group.id", harness.config.kafka_group, reason, sizeof reason),
				 RD_KAFKA_CONF_OK);
		ck_assert_int_eq(rd_kafka_conf_set(conf, "enable.auto.commit", "false", reason, sizeof reason),
				 RD_KAFKA_CONF_OK);
	}
	rd_kafka_t *client = rd_kafka_new(type, conf, reason, sizeof reason);
	ck_assert_msg(client != NULL, "kafka client: %s", reason);
	return client;
}

/*
 * Signals of the set that PostgreSQL has recorded (decided) at a Kafka
 * offset the consumer group has not committed: those a new member of the
 * group will consume, and decide, a second time.
 */
static long decided_but_uncommitted(const struct signal_set *set)
{
	rd_kafka_t *reader = kafka_client(RD_KAFKA_CONSUMER);
	const rd_kafka_metadata_t *metadata = NULL;
	rd_kafka_topic_t *topic = rd_kafka_topic_new(reader, harness.config.kafka_topic, NULL);
	ck_assert_int_eq(rd_kafka_metadata(reader, 0, topic, &metadata, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	ck_assert_int_eq(metadata->topic_cnt, 1);
	int partitions = metadata->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(metadata);
	rd_kafka_topic_destroy(topic);
	rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_new(partitions);
	for (int p = 0; p < partitions; p++)
		rd_kafka_topic_partition_list_add(committed, harness.config.kafka_topic, p);
	rd_kafka_resp_err_t error = rd_kafka_committed(reader, committed, 10000);
	ck_assert_msg(error == RD_KAFKA_RESP_ERR_NO_ERROR, "committed offsets: %s", rd_kafka_err2str(error));
	/* A partition with no commit yet (RD_KAFKA_OFFSET_INVALID) is replayed from its start. */
	char offsets[256] = "{";
	for (int p = 0; p < committed->cnt; p++) {
		int64_t offset = committed->elems[p].offset < 0 ? 0 : committed->elems[p].offset;
		size_t used = strlen(offsets);
		snprintf(offsets + used, sizeof offsets - used, "%s%lld", p > 0 ? "," : "", (long long)offset);
	}
	strcat(offsets, "}");
	rd_kafka_topic_partition_list_destroy(committed);
	rd_kafka_destroy(reader);

	char *ids = array_literal(set->ids, set->count);
	PGconn *db = harness_db();
	const char *values[] = { ids, offsets };
	PGresult *result = PQexecParams(db,
					"SELECT count(*) FROM signals"
					" WHERE signal_id = ANY($1::text[])"
					"   AND kafka_offset >= ($2::bigint[])[kafka_partition + 1]",
					2, NULL, values, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(result) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(result));
	long count = atol(PQgetvalue(result, 0, 0));
	PQclear(result);
	PQfinish(db);
	free(ids);
	return count;
}

/*
 * A stream: the set published straight to the topic by a thread of the
 * test, keyed by ticker as the daemon keys them, at a steady rate.
 */
struct signal_stream {
	const struct signal_set *set;
	int per_second;
	pthread_t thread;
	atomic_size_t published;
	atomic_long failures;
};

static void on_stream_delivery(rd_kafka_t *producer, const rd_kafka_message_t *message, void *opaque)
{
	(void)producer;
	struct signal_stream *stream = opaque;
	if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR)
		atomic_fetch_add(&stream->failures, 1);
}

static void *signal_stream_run(void *argument)
{
	struct signal_stream *stream = argument;
	char reason[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", harness.config.kafka_bootstrap_servers, reason, sizeof reason);
	rd_kafka_conf_set(conf, "linger.ms", "0", reason, sizeof reason);
	rd_kafka_conf_set_dr_msg_cb(conf, on_stream_delivery);
	rd_kafka_conf_set_opaque(conf, stream);
	rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, reason, sizeof reason);
	if (producer == NULL) {
		atomic_store(&stream->failures, (long)stream->set->count);
		return NULL;
	}
	int64_t started = time_monotonic_ms();
	for (size_t i = 0; i < stream->set->count; i++) {
		/* On schedule, whatever the time taken by the previous ones. */
		int64_t due = started + (int64_t)i * 1000 / stream->per_second;
		int64_t now = time_monotonic_ms();
		if (due > now)
			pause_ms((int)(due - now));
		char *value = signal_json(stream->set->ids[i], stream->set->tickers[i]);
		const char *key = stream->set->tickers[i];
		rd_kafka_resp_err_t error = rd_kafka_producev(
			producer, RD_KAFKA_V_TOPIC(harness.config.kafka_topic), RD_KAFKA_V_KEY(key, strlen(key)),
			RD_KAFKA_V_VALUE(value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		free(value);
		if (error != RD_KAFKA_RESP_ERR_NO_ERROR)
			atomic_fetch_add(&stream->failures, 1);
		rd_kafka_poll(producer, 0);
		atomic_fetch_add(&stream->published, 1);
	}
	if (rd_kafka_flush(producer, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR)
		atomic_fetch_add(&stream->failures, (long)rd_kafka_outq_len(producer));
	rd_kafka_destroy(producer);
	return NULL;
}

static void signal_stream_start(struct signal_stream *stream, const struct signal_set *set, int per_second)
{
	stream->set = set;
	stream->per_second = per_second;
	atomic_init(&stream->published, 0);
	atomic_init(&stream->failures, 0);
	ck_assert_int_eq(pthread_create(&stream->thread, NULL, signal_stream_run, stream), 0);
}

static void signal_stream_finish(struct signal_stream *stream)
{
	pthread_join(stream->thread, NULL);
	ck_assert_msg(atomic_load(&stream->failures) == 0, "%ld signals of the stream were not delivered to Kafka",
		      atomic_load(&stream->failures));
}

/* ---- two dispatchers ---- */

#define FLOOD_PIPELINES 6
#define FLOOD_TICKERS 8
#define FLOOD_WAVES 8
#define FLOOD_WAVE_SIGNALS 50

static const char *const flood_tickers[FLOOD_TICKERS] = { "FLDA", "FLDB", "FLDC", "FLDD",
							   "FLDE", "FLDF", "FLDG", "FLDH" };

/*
 * Waits until the second dispatcher has joined the group and been given
 * partitions: probes on the flood's tickers, before any pipeline watches
 * them, until it has consumed some.
 */
static void wait_until_dispatcher_consumes(const char *name)
{
	int64_t deadline = time_monotonic_ms() + 30000;
	while (counter_of(name, "signals_consumed_total") == 0 && time_monotonic_ms() < deadline) {
		struct signal_set probes;
		signal_set_init(&probes, FLOOD_TICKERS, flood_tickers, FLOOD_TICKERS);
		signal_set_inject(&probes);
		signal_set_free(&probes);
		for (int i = 0; i < 10 && counter_of(name, "signals_consumed_total") == 0; i++)
			pause_ms(100);
	}
	if (counter_of(name, "signals_consumed_total") == 0)
		show_log(name, 20);
	ck_assert_msg(counter_of(name, "signals_consumed_total") > 0, "%s never consumed a signal: no partition?",
		      name);
}

START_TEST(test_two_dispatchers_never_run_one_pipeline_twice_at_once)
{
	record_live_intervals();
	extra_daemon_start("dispatcher-b", "dispatcher");
	wait_until_dispatcher_consumes("dispatcher-b");
	/*
	 * Every pipeline watches every ticker. The signals are keyed by ticker,
	 * so each dispatcher sees the tickers of its own partitions: both claim
	 * the same pipelines at the same moments.
	 */
	char *pipelines = add_pipelines("flood", FLOOD_PIPELINES, flood_tickers, FLOOD_TICKERS, true);
	wait_for_cached_pipelines(NULL, FLOOD_PIPELINES);
	wait_for_cached_pipelines("dispatcher-b", FLOOD_PIPELINES);

	json_int_t own_before = counter_of(NULL, "signals_consumed_total");
	json_int_t second_before = counter_of("dispatcher-b", "signals_consumed_total");
	/* In waves, each to pipelines at rest, so that every wave starts a race for each of them. */
	struct signal_set flood;
	signal_set_init(&flood, FLOOD_WAVES * FLOOD_WAVE_SIGNALS, flood_tickers, FLOOD_TICKERS);
	for (int wave = 0; wave < FLOOD_WAVES; wave++) {
		struct signal_set part = { FLOOD_WAVE_SIGNALS, flood.ids + wave * FLOOD_WAVE_SIGNALS,
					   flood.tickers + wave * FLOOD_WAVE_SIGNALS };
		signal_set_inject(&part);
		wait_until_every_signal_is_decided(&part, DISPATCH_TIMEOUT_MS);
		ck_assert_msg(wait_until_nothing_is_live(pipelines, DISPATCH_TIMEOUT_MS),
			      "runs of wave %d still live after %d ms", wave + 1, DISPATCH_TIMEOUT_MS);
	}
	json_int_t own = counter_of(NULL, "signals_consumed_total") - own_before;
	json_int_t second = counter_of("dispatcher-b", "signals_consumed_total") - second_before;

	PGconn *db = harness_db();
	/* Never two live runs of one pipeline, whichever dispatcher claimed them. */
	ck_assert_int_eq(overlapping_runs(db, pipelines), 0);
	/* The check had something to check: every wave ran every pipeline, and claims collided. */
	long runs = query_count(db, "SELECT count(*) FROM executions WHERE pipeline_id = ANY($1::uuid[])", pipelines);
	ck_assert_msg(runs >= FLOOD_WAVES * FLOOD_PIPELINES, "only %ld runs for %d waves over %d pipelines", runs,
		      FLOOD_WAVES, FLOOD_PIPELINES);
	char *ids = array_literal(flood.ids, flood.count);
	long collided = query_count(db,
				    "SELECT count(*) FROM signal_decisions WHERE signal_id = ANY($1::text[])"
				    " AND decision = 'skipped' AND reason = 'already_running'",
				    ids);
	ck_assert_msg(collided > 0, "no signal of the flood found its pipeline already running");
	/* Every run ended, and every signal was, for every pipeline, claimed by a run or skipped for one. */
	long unfinished = query_count(db,
				      "SELECT count(*) FROM executions WHERE pipeline_id = ANY($1::uuid[])"
				      " AND status NOT IN ('SUCCEEDED', 'FAILED')",
				      pipelines);
	ck_assert_int_eq(unfinished, 0);
	long decided_pairs = query_count_2(db,
					   "SELECT count(DISTINCT (signal_id, pipeline_id)) FROM signal_decisions"
					   " WHERE signal_id = ANY($1::text[]) AND pipeline_id = ANY($2::uuid[])"
					   "   AND (decision = 'claimed' OR reason = 'already_running')",
					   ids, pipelines);
	ck_assert_int_eq(decided_pairs, (long)flood.count * FLOOD_PIPELINES);
	PQfinish(db);

	/* Both dispatchers took their share of the partitions, and of the flood. */
	fprintf(stderr, "flood of %zu: %lld consumed by the stack's daemon, %lld by dispatcher-b, %ld runs, %ld collisions\n",
		flood.count, (long long)own, (long long)second, runs, collided);
	ck_assert_msg(own > 0, "the stack's dispatcher consumed none of the flood");
	ck_assert_msg(second > 0, "dispatcher-b consumed none of the flood");
	ck_assert_int_ge(own + second, (json_int_t)flood.count);

	extra_daemon_signal("dispatcher-b", SIGTERM);
	free(ids);
	signal_set_free(&flood);
	free(pipelines);
}
END_TEST

/* ---- a Redis outage ---- */

#define OUTAGE_SIGNALS 5

static const char *const outage_tickers[OUTAGE_SIGNALS] = { "RDSA", "RDSB", "RDSC", "RDSD", "RDSE" };

START_TEST(test_redis_outage_holds_the_batch_and_loses_nothing)
{
	/* One pipeline per signal: each signal must start a run of its own. */
	char *pipelines = add_pipelines("outage", OUTAGE_SIGNALS, outage_tickers, OUTAGE_SIGNALS, false);
	wait_for_cached_pipelines(NULL, OUTAGE_SIGNALS);
	pid_t daemon = harness_pid_in_file("run/sigtrigd.pid");
	ck_assert(process_is_alive(daemon));

	pid_t redis = harness_pid_in_file("run/redis.pid");
	ck_assert(process_is_alive(redis));
	ck_assert_int_eq(kill(redis, SIGTERM), 0);
	ck_assert_msg(wait_for_exit(redis, 30000), "redis-server (pid %ld) did not stop", (long)redis);

	json_int_t consumed_before = counter_of(NULL, "signals_consumed_total");
	struct signal_set set;
	signal_set_init(&set, OUTAGE_SIGNALS, outage_tickers, OUTAGE_SIGNALS);
	signal_set_inject(&set);
	/* The dispatcher takes a batch it cannot enqueue... */
	int64_t deadline = time_monotonic_ms() + DISPATCH_TIMEOUT_MS;
	while (counter_of(NULL, "signals_consumed_total") == consumed_before && time_monotonic_ms() < deadline)
		pause_ms(100);
	ck_assert_int_gt(counter_of(NULL, "signals_consumed_total"), consumed_before);
	/* ...and holds it, retrying: for seconds on end the daemon answers, and says Redis is down. */
	int64_t until = time_monotonic_ms() + 3000;
	while (time_monotonic_ms() < until) {
		ck_assert_msg(process_is_alive(daemon), "sigtrigd died during the Redis outage");
		int status;
		json_t *report = status_of(NULL, &status);
		ck_assert_msg(report != NULL, "sigtrigd did not answer during the Redis outage");
		ck_assert_int_eq(status, 3); /* answered, and says a backend is down */
		json_t *health = json_object_get(report, "health");
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(health, "redis"), "status")), "down");
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(health, "postgres"), "status")), "ok");
		json_decref(report);
		pause_ms(250);
	}
	/* Nothing ran, nothing failed: a claim made meanwhile waits, PENDING. */
	PGconn *db = harness_db();
	long ended = query_count(db,
				 "SELECT count(*) FROM executions WHERE pipeline_id = ANY($1::uuid[])"
				 " AND status <> 'PENDING'",
				 pipelines);
	ck_assert_int_eq(ended, 0);

	/* 'sigtrig up' starts Redis again and leaves the daemon alone. */
	char *out = NULL, *err = NULL;
	ck_assert_msg(harness_sigtrig("up --no-generators", NULL, &out, &err) == 0, "%s %s", out, err);
	free(out);
	free(err);
	ck_assert_int_eq(harness_pid_in_file("run/sigtrigd.pid"), daemon);
	ck_assert(process_is_alive(daemon));
	for (size_t i = 0; i < set.count; i++)
		ck_assert_msg(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)",
						     set.ids[i], "SUCCEEDED", DISPATCH_TIMEOUT_MS),
			      "the run of signal %zu of %d never succeeded after the outage", i + 1, OUTAGE_SIGNALS);
	wait_until_every_signal_is_decided(&set, DISPATCH_TIMEOUT_MS);
	/* One run per pipeline, each with its result in Redis. */
	ck_assert_int_eq(query_count(db, "SELECT count(*) FROM executions WHERE pipeline_id = ANY($1::uuid[])",
				     pipelines),
			 OUTAGE_SIGNALS);
	redisContext *redis_client = harness_redis();
	for (size_t i = 0; i < set.count; i++) {
		char *task_id = harness_query_value(db, "SELECT task_id FROM executions WHERE $1 = ANY(signal_ids)",
						    set.ids[i]);
		ck_assert_ptr_nonnull(task_id);
		redisReply *reply = redisCommand(redis_client, "GET celery-task-meta-%s", task_id);
		ck_assert_ptr_nonnull(reply);
		ck_assert_msg(reply->type == REDIS_REPLY_STRING, "no result in Redis for task %s", task_id);
		json_t *result = json_loads(reply->str, 0, NULL);
		ck_assert_str_eq(json_string_value(json_object_get(result, "status")), "SUCCESS");
		json_decref(result);
		freeReplyObject(reply);
		free(task_id);
	}
	redisFree(redis_client);
	PQfinish(db);
	signal_set_free(&set);
	free(pipelines);
}
END_TEST

/* ---- a dispatcher killed ---- */

/*
 * One pipeline per signal: when Redis stops taking writes, the runs in
 * progress stay live, and a signal for one of their pipelines would be
 * skipped as already running, which needs no write; on a slow machine
 * the workers lag and every pipeline of a small set is live. With a
 * pipeline of its own, every signal claims, so the kill always finds a
 * claim waiting on Redis. It also makes a replayed signal whose run has
 * finished able to start a second one, which the replay must not do.
 */
#define STREAM_SIGNALS 400
#define STREAM_PER_SECOND 100

static char stream_ticker_names[STREAM_SIGNALS][8];
static const char *stream_tickers[STREAM_SIGNALS];

/*
 * The stream's pipelines, as an array literal of their ids: one added
 * with `pipelines add` (the default agent nodes), cloned in SQL for the
 * others, which is much faster than one command each.
 */
static char *add_stream_pipelines(void)
{
	for (int i = 0; i < STREAM_SIGNALS; i++) {
		snprintf(stream_ticker_names[i], sizeof stream_ticker_names[i], "KIL%03d", i);
		stream_tickers[i] = stream_ticker_names[i];
	}
	char template[40];
	add_pipeline("stream-0", &stream_tickers[0], 1, template);
	PGconn *db = harness_db();
	char count[16];
	snprintf(count, sizeof count, "%d", STREAM_SIGNALS);
	const char *values[] = { template, count };
	PGresult *result = PQexecParams(db,
					"WITH clones AS ("
					" INSERT INTO pipelines (name, user_id, trigger_mode, scanner_tickers, config)"
					" SELECT 'stream-' || i, p.user_id, p.trigger_mode,"
					"        ARRAY['KIL' || lpad(i::text, 3, '0')], p.config"
					" FROM pipelines p, generate_series(1, $2::integer - 1) AS i WHERE p.id = $1::uuid"
					" RETURNING id)"
					" SELECT '{' || $1 || ',' || string_agg(id::text, ',') || '}' FROM clones",
					2, NULL, values, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1, "cloning: %s",
		      PQerrorMessage(db));
	char *literal = strdup(PQgetvalue(result, 0, 0));
	PQclear(result);
	PQfinish(db);
	return literal;
}

static long recorded_signals(PGconn *db, const char *ids)
{
	return query_count(db, "SELECT count(*) FROM signals WHERE signal_id = ANY($1::text[])", ids);
}

static void redis_command(redisContext *redis, const char *command)
{
	redisReply *reply = redisCommand(redis, command);
	ck_assert_msg(reply != NULL && reply->type != REDIS_REPLY_ERROR, "redis %s: %s", command,
		      reply != NULL ? reply->str : redis->errstr);
	freeReplyObject(reply);
}

START_TEST(test_dispatcher_killed_mid_stream_loses_no_signal_and_doubles_no_claim)
{
	record_live_intervals();
	extra_daemon_start("dispatcher-k", "dispatcher");
	char *pipelines = add_stream_pipelines();
	wait_for_cached_pipelines("dispatcher-k", STREAM_SIGNALS);
	struct signal_set set;
	signal_set_init(&set, STREAM_SIGNALS, stream_tickers, STREAM_SIGNALS);
	char *ids = array_literal(set.ids, set.count);
	struct signal_stream stream;
	signal_stream_start(&stream, &set, STREAM_PER_SECOND);

	/* Well into the stream... */
	int64_t deadline = time_monotonic_ms() + DISPATCH_TIMEOUT_MS;
	while (counter_of("dispatcher-k", "signals_consumed_total") < STREAM_SIGNALS / 4 &&
	       time_monotonic_ms() < deadline)
		pause_ms(50);
	ck_assert_int_ge(counter_of("dispatcher-k", "signals_consumed_total"), STREAM_SIGNALS / 4);
	/*
	 * ...the kill lands at the worst moment: a batch decided in PostgreSQL
	 * whose tasks are not in Redis and whose offsets are not committed.
	 * Redis holds every write until told otherwise, so the batch being
	 * decided, or the next one, waits there.
	 */
	redisContext *redis = harness_redis();
	redis_command(redis, "CLIENT PAUSE 30000 WRITE");
	/* Under the sanitizers a round can take seconds: give the held batch most of the pause to show up. */
	deadline = time_monotonic_ms() + 20000;
	while (decided_but_uncommitted(&set) == 0 && time_monotonic_ms() < deadline)
		pause_ms(50);
	json_int_t consumed = counter_of("dispatcher-k", "signals_consumed_total");
	ck_assert_int_gt(consumed, 0);
	ck_assert_int_lt(consumed, STREAM_SIGNALS);
	extra_daemon_signal("dispatcher-k", SIGKILL);
	PGconn *db = harness_db();
	long decided = recorded_signals(db, ids);
	fprintf(stderr, "dispatcher-k killed after consuming %lld of %d signals, %ld decided\n", (long long)consumed,
		STREAM_SIGNALS, decided);
	/* The test tests the replay: the group will hand some decided signals to the next dispatcher. */
	long replayed = decided_but_uncommitted(&set);
	fprintf(stderr, "%ld decided signals not committed: the next dispatcher consumes them again\n", replayed);
	ck_assert_msg(replayed > 0, "no decided signal was left uncommitted by the kill");
	redis_command(redis, "CLIENT UNPAUSE");
	redisFree(redis);

	/* The claims whose tasks never reached Redis are enqueued again by the scheduler role and run. */
	ck_assert_msg(wait_until_nothing_is_live(pipelines, DISPATCH_TIMEOUT_MS),
		      "claims of the killed dispatcher still live after %d ms", DISPATCH_TIMEOUT_MS);

	/* The same daemon again: same conf, same socket. It replays what was not committed, then the rest. */
	extra_daemon_start("dispatcher-k", "dispatcher");
	signal_stream_finish(&stream);
	wait_until_every_signal_is_decided(&set, DISPATCH_TIMEOUT_MS);
	/* Everything past the committed offsets, the replayed signals among them, went through it. */
	json_int_t to_consume = STREAM_SIGNALS - (decided - replayed);
	deadline = time_monotonic_ms() + DISPATCH_TIMEOUT_MS;
	while (counter_of("dispatcher-k", "signals_consumed_total") < to_consume && time_monotonic_ms() < deadline)
		pause_ms(100);
	ck_assert_int_ge(counter_of("dispatcher-k", "signals_consumed_total"), to_consume);
	ck_assert_msg(wait_until_nothing_is_live(pipelines, DISPATCH_TIMEOUT_MS),
		      "runs of the stream's pipelines still live after %d ms", DISPATCH_TIMEOUT_MS);

	long doubled = doubled_claims(db, pipelines);
	if (doubled > 0)
		show_log("dispatcher-k", 15);
	ck_assert_msg(doubled == 0, "%ld signals started a second run of their pipeline when replayed", doubled);
	long unfinished = query_count(db,
				      "SELECT count(*) FROM executions WHERE pipeline_id = ANY($1::uuid[])"
				      " AND status NOT IN ('SUCCEEDED', 'FAILED')",
				      pipelines);
	ck_assert_int_eq(unfinished, 0);
	ck_assert_int_eq(overlapping_runs(db, pipelines), 0);

	extra_daemon_signal("dispatcher-k", SIGTERM);
	PQfinish(db);
	free(ids);
	signal_set_free(&set);
	free(pipelines);
}
END_TEST

/* ---- the stacks ---- */

static void stack_with_every_role_up(void) { harness_up("--no-generators"); }

/*
 * The stack's daemon runs no dispatcher, so the one the test starts is
 * the only one; its reconciler re-enqueues a claim left without its task
 * after 2 s, the least allowed. 'sigtrig up' hands the environment on.
 */
static void stack_without_dispatcher_up(void)
{
	setenv("SIGTRIG_DAEMON_ROLES", "generator,worker,scheduler", 1);
	setenv("SIGTRIG_DISPATCHER_REENQUEUE_AFTER_S", "2", 1);
	harness_up("--no-generators");
}

static void stack_down(void)
{
	unsetenv("SIGTRIG_DAEMON_ROLES");
	unsetenv("SIGTRIG_DISPATCHER_REENQUEUE_AFTER_S");
	/* An extra daemon a failed test left behind. */
	const char *extras[] = { "dispatcher-b", "dispatcher-k" };
	for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++) {
		pid_t pid = extra_daemon_pid(extras[i]);
		if (process_is_alive(pid)) {
			kill(pid, SIGTERM);
			wait_for_exit(pid, 10000);
		}
	}
	harness_down();
}

static TCase *stack_case(const char *name, void (*up)(void))
{
	TCase *tcase = tcase_create(name);
	tcase_add_unchecked_fixture(tcase, up, stack_down);
	tcase_set_timeout(tcase, 240);
	return tcase;
}

static Suite *dispatch_suite(void)
{
	Suite *suite = suite_create("dispatch");
	TCase *two = stack_case("two_dispatchers", stack_with_every_role_up);
	tcase_add_test(two, test_two_dispatchers_never_run_one_pipeline_twice_at_once);
	suite_add_tcase(suite, two);
	TCase *outage = stack_case("redis_outage", stack_with_every_role_up);
	tcase_add_test(outage, test_redis_outage_holds_the_batch_and_loses_nothing);
	suite_add_tcase(suite, outage);
	TCase *crash = stack_case("dispatcher_crash", stack_without_dispatcher_up);
	tcase_add_test(crash, test_dispatcher_killed_mid_stream_loses_no_signal_and_doubles_no_claim);
	suite_add_tcase(suite, crash);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(dispatch_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

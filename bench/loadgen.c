/*
 * loadgen: what 'make bench' drives the dispatcher with (bench/README.md).
 *
 *   loadgen seed -c FILE [--pipelines N] [--tickers N]
 *   loadgen run -c FILE --socket PATH --dispatcher-pid PID [--postgres-pid PID]
 *               [--watch NAME=PID]... [--rates LIST] [--duration S] [--warmup S]
 *               [--backlog N] [--settle-timeout S] [--run-ms MS]
 *
 * 'seed' writes one user with ample credits and N active signal pipelines,
 * pipeline i watching ticker i mod T, straight into PostgreSQL. 'run'
 * publishes signals to Kafka at each rate in turn (signals/s, or "max":
 * as fast as the dispatcher takes them), drains the Celery tasks the
 * dispatcher pushes to Redis as a worker fleet would (loadgen_drain.c;
 * each run taking --run-ms, 0 by default), and prints what the dispatcher achieved at each rate.
 *
 * Latency is measured per signal, not read off the daemon's histogram
 * buckets: a signal's timestamp is the moment it was handed to the Kafka
 * producer, and the moment its first task is popped from Redis is its
 * enqueue time.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "config.h"
#include "db.h"
#include "loadgen.h"
#include "protocol.h"
#include "signal.h"
#include "timeutil.h"

#define RATES_MAX 16
#define DEFAULT_RATES "10,100,1000,10000,max"
/* How often the flat-out producer asks the daemon how far it got. */
#define BACKLOG_POLL_SECONDS 0.02
/* The seeded pipelines' definition: the agent chain 'sigtrig pipelines add' gives a pipeline without nodes. */
#define SEED_PIPELINE_CONFIG                                                                          \
	"{\"nodes\": [{\"agent_type\": \"market_data_agent\", \"config\": {}},"                       \
	" {\"agent_type\": \"bias_agent\", \"config\": {}}, {\"agent_type\": \"strategy_agent\", \"config\": {}}," \
	" {\"agent_type\": \"risk_manager\", \"config\": {}}, {\"agent_type\": \"order_manager\", \"config\": {}}]}"
#define SEED_USER "loadgen"

/* ---- clocks and the ledger ---- */

int64_t wall_clock_us(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

double monotonic_seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void sleep_until(double monotonic_deadline)
{
	struct timespec when;
	when.tv_sec = (time_t)monotonic_deadline;
	when.tv_nsec = (long)((monotonic_deadline - (double)when.tv_sec) * 1e9);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &when, NULL) == EINTR)
		;
}

static void sleep_seconds(double seconds)
{
	sleep_until(monotonic_seconds() + seconds);
}

int signal_ledger_init(struct signal_ledger *ledger)
{
	/* Anonymous pages read as zero until written: only the signals sent cost memory. */
	void *pages = mmap(NULL, LEDGER_CAPACITY * sizeof *ledger->entries, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (pages == MAP_FAILED)
		return -1;
	ledger->entries = pages;
	uuid_t random;
	uuid_generate_random(random);
	char text[37];
	uuid_unparse_lower(random, text);
	snprintf(ledger->id_prefix, sizeof ledger->id_prefix, "%.24s", text);
	return 0;
}

void signal_ledger_free(struct signal_ledger *ledger)
{
	munmap(ledger->entries, LEDGER_CAPACITY * sizeof *ledger->entries);
	ledger->entries = NULL;
}

void signal_ledger_id(const struct signal_ledger *ledger, uint64_t sequence, char *id)
{
	snprintf(id, SIGNAL_ID_LENGTH + 1, "%s%012" PRIx64, ledger->id_prefix, sequence);
}

bool signal_ledger_sequence(const struct signal_ledger *ledger, const char *id, uint64_t *sequence)
{
	if (strlen(id) != SIGNAL_ID_LENGTH || strncmp(id, ledger->id_prefix, 24) != 0)
		return false;
	char *end;
	errno = 0;
	unsigned long long value = strtoull(id + 24, &end, 16);
	if (errno != 0 || *end != '\0' || value >= LEDGER_CAPACITY)
		return false;
	*sequence = value;
	return true;
}

/* ---- tickers and seeding ---- */

/* The one place ticker names are made: 'seed' writes them, 'run' reads them back from the pipelines. */
static void ticker_name(size_t index, char *buf, size_t size)
{
	snprintf(buf, size, "T%05zu", index);
}

static int fail(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(const char *command, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	fprintf(stderr, "loadgen: %s: ", command);
	vfprintf(stderr, fmt, args);
	fputc('\n', stderr);
	va_end(args);
	return 1;
}

static int load_config(const char *command, const char *path, struct config *config)
{
	char err[1024];
	config_init(config);
	if (path == NULL)
		return fail(command, "-c FILE is required (the stack's sigtrig.conf)");
	if (config_load_file(config, path, err, sizeof err) != 0 ||
	    config_apply_environment(config, err, sizeof err) != 0)
		return fail(command, "%s", err);
	return 0;
}

/* Runs one statement; prints the error and returns NULL when it fails. */
static PGresult *seed_query(PGconn *db, const char *sql, int count, const char *const *values)
{
	char err[512];
	PGresult *result = db_query(db, sql, count, values, err, sizeof err);
	if (result == NULL)
		fail("seed", "%s", err);
	return result;
}

/*
 * A re-seed replaces the previous pipelines of the benchmark's user, so
 * the counts are always the ones asked for. One transaction: the
 * dispatcher's change notification fires once, on commit.
 */
static int seed_pipelines(PGconn *db, long pipelines, long tickers)
{
	const char **names = calloc((size_t)tickers, sizeof *names);
	char(*storage)[16] = calloc((size_t)tickers, sizeof *storage);
	if (names == NULL || storage == NULL) {
		free(names);
		free(storage);
		return fail("seed", "out of memory");
	}
	for (long i = 0; i < tickers; i++) {
		ticker_name((size_t)i, storage[i], sizeof storage[i]);
		names[i] = storage[i];
	}
	char *ticker_array = db_text_array_literal(names, (size_t)tickers);
	free(names);
	free(storage);
	char count_text[32];
	snprintf(count_text, sizeof count_text, "%ld", pipelines);
	int status = 1;
	PGresult *result = seed_query(db, "BEGIN", 0, NULL);
	if (result == NULL)
		goto done;
	PQclear(result);
	/* Credits at the column's maximum: the budget check must never be what refuses a claim. */
	result = seed_query(db,
			    "INSERT INTO users (name, credits) VALUES ('" SEED_USER "', 999999999999)"
			    " ON CONFLICT (name) DO UPDATE SET credits = EXCLUDED.credits, is_active = true"
			    " RETURNING id::text",
			    0, NULL);
	if (result == NULL)
		goto rollback;
	char user_id[40];
	snprintf(user_id, sizeof user_id, "%s", PQgetvalue(result, 0, 0));
	PQclear(result);
	const char *user[] = { user_id };
	result = seed_query(db, "DELETE FROM pipelines WHERE user_id = $1::uuid", 1, user);
	if (result == NULL)
		goto rollback;
	PQclear(result);
	const char *values[] = { user_id, ticker_array, SEED_PIPELINE_CONFIG, count_text };
	result = seed_query(db,
			    "INSERT INTO pipelines (name, user_id, trigger_mode, scanner_tickers, config)"
			    " SELECT 'loadgen ' || g, $1::uuid, 'signal',"
			    "        ARRAY[($2::text[])[1 + (g - 1) % cardinality($2::text[])]], $3::jsonb"
			    " FROM generate_series(1, $4::integer) g",
			    4, values);
	if (result == NULL)
		goto rollback;
	PQclear(result);
	result = seed_query(db, "COMMIT", 0, NULL);
	if (result == NULL)
		goto rollback;
	PQclear(result);
	status = 0;
	goto done;
rollback:
	PQclear(PQexec(db, "ROLLBACK"));
done:
	free(ticker_array);
	return status;
}

static int command_seed(int argc, char **argv)
{
	const char *conf_path = NULL;
	long pipelines = 10000, tickers = 5000;
	static const struct option options[] = { { "config", required_argument, NULL, 'c' },
						 { "pipelines", required_argument, NULL, 'p' },
						 { "tickers", required_argument, NULL, 't' },
						 { NULL, 0, NULL, 0 } };
	int option;
	while ((option = getopt_long(argc, argv, "c:", options, NULL)) != -1) {
		if (option == 'c')
			conf_path = optarg;
		else if (option == 'p')
			pipelines = atol(optarg);
		else if (option == 't')
			tickers = atol(optarg);
		else
			return 2;
	}
	if (pipelines < 1 || tickers < 1 || tickers > 99999)
		return fail("seed", "--pipelines must be at least 1, --tickers from 1 to 99999");
	struct config config;
	if (load_config("seed", conf_path, &config) != 0)
		return 1;
	char err[512];
	PGconn *db = db_connect(config.postgres_url, err, sizeof err);
	if (db == NULL) {
		config_free(&config);
		return fail("seed", "%s", err);
	}
	double started = monotonic_seconds();
	int status = seed_pipelines(db, pipelines, tickers);
	if (status == 0)
		printf("seeded %ld signal pipelines over %ld tickers in %.1f s\n", pipelines, tickers,
		       monotonic_seconds() - started);
	PQfinish(db);
	config_free(&config);
	return status;
}

/* ---- the run ---- */

struct run_options {
	const char *conf_path;
	const char *socket;
	double rates[RATES_MAX]; /* signals/s; 0 is flat out */
	size_t rate_count;
	double duration, warmup, settle_timeout;
	long backlog;
	long run_ms; /* how long each run takes the drain's stand-in workers */
	struct watched_process watched[WATCH_MAX]; /* [0] the dispatcher, [1] PostgreSQL when given */
	size_t watched_count;
	bool postgres_watched;
};

/* The daemon's counters the report is made of, and how far its consumer group has committed. */
struct daemon_counters {
	int64_t consumed, db_queries, enqueued, batches, cache_size, offset_resets;
	int64_t committed; /* the group's committed offsets, summed: messages decided */
	/* signal_consumed_to_enqueue_seconds: how long the dispatcher itself held the signals that started a run */
	int64_t held_count;
	double held_seconds;
	struct skip_count skipped[SKIP_REASONS_MAX]; /* count holds the counter's value */
	size_t skipped_count;
};

struct loadgen {
	struct run_options *options;
	struct config config;
	struct signal_ledger ledger;
	rd_kafka_t *producer;
	rd_kafka_t *offsets_reader;               /* asks Kafka for the group's committed offsets */
	rd_kafka_topic_partition_list_t *partitions; /* every partition of the topic */
	struct drain drain;
	char (*tickers)[SIGNAL_TICKER_MAX + 1];
	size_t ticker_count;
	long pipeline_count;
	uint64_t next_sequence;
	uint64_t random_state;
	json_t *metadata;
	atomic_llong delivery_failures;
	struct daemon_counters at_start; /* the daemon may have run before: its counters count from here */
};

/* Messages the dispatcher decided since the run began. */
static int64_t decided_since_start(const struct loadgen *run, const struct daemon_counters *counters)
{
	return counters->committed - run->at_start.committed;
}

static void read_skip_reasons(const json_t *skipped, struct daemon_counters *counters)
{
	const char *reason;
	const json_t *count;
	counters->skipped_count = 0;
	json_object_foreach((json_t *)skipped, reason, count) {
		if (counters->skipped_count == SKIP_REASONS_MAX)
			break;
		struct skip_count *slot = &counters->skipped[counters->skipped_count++];
		snprintf(slot->reason, sizeof slot->reason, "%s", reason);
		slot->count = (double)json_integer_value(count);
	}
}

/*
 * The sum of the dispatcher group's committed offsets, asked of Kafka
 * rather than of the daemon: signals_consumed_total counts a message when
 * it is taken in, and a dispatcher that goes on consuming while a batch is
 * being decided takes in thousands ahead of what it has decided.
 */
static int committed_read(struct loadgen *run, int64_t *total)
{
	rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_copy(run->partitions);
	rd_kafka_resp_err_t error = rd_kafka_committed(run->offsets_reader, offsets, 5000);
	*total = 0;
	for (int i = 0; error == RD_KAFKA_RESP_ERR_NO_ERROR && i < offsets->cnt; i++)
		if (offsets->elems[i].offset > 0) /* negative: nothing committed yet */
			*total += offsets->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(offsets);
	return error == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : fail("run", "committed offsets: %s", rd_kafka_err2str(error));
}

static int daemon_counters_read(struct loadgen *run, struct daemon_counters *counters)
{
	char err[512];
	json_t *response = protocol_call(run->options->socket, protocol_request("metrics"), err, sizeof err);
	const json_t *metrics = json_object_get(response, "metrics");
	if (!json_is_object(metrics)) {
		json_decref(response);
		return fail("run", "metrics from %s: %s", run->options->socket, response == NULL ? err : "no metrics");
	}
	counters->consumed = json_integer_value(json_object_get(metrics, "signals_consumed_total"));
	counters->db_queries = json_integer_value(json_object_get(metrics, "db_queries_total"));
	counters->enqueued = json_integer_value(json_object_get(metrics, "pipelines_enqueued_total"));
	counters->batches = json_integer_value(json_object_get(metrics, "batches_processed_total"));
	counters->cache_size = json_integer_value(json_object_get(metrics, "cache_size"));
	counters->offset_resets = json_integer_value(json_object_get(metrics, "kafka_offset_resets_total"));
	const json_t *held = json_object_get(metrics, "signal_consumed_to_enqueue_seconds");
	counters->held_count = json_integer_value(json_object_get(held, "count"));
	counters->held_seconds = json_number_value(json_object_get(held, "sum"));
	read_skip_reasons(json_object_get(metrics, "pipelines_skipped_total"), counters);
	json_decref(response);
	return committed_read(run, &counters->committed);
}

/*
 * A consumer handle in the dispatchers' group that never subscribes, so
 * it never joins the group: it only fetches the group's offsets.
 */
static rd_kafka_t *offsets_reader_new(struct loadgen *run, char *err, size_t errsize)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *settings[][2] = { { "bootstrap.servers", run->config.kafka_bootstrap_servers },
				      { "client.id", "sigtrig-loadgen-offsets" },
				      { "group.id", run->config.kafka_group },
				      { "enable.auto.commit", "false" } };
	for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
		if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err, errsize) != RD_KAFKA_CONF_OK) {
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	rd_kafka_t *reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errsize);
	if (reader == NULL)
		return NULL;
	rd_kafka_topic_t *topic = rd_kafka_topic_new(reader, run->config.kafka_topic, NULL);
	const struct rd_kafka_metadata *metadata = NULL;
	rd_kafka_resp_err_t error = rd_kafka_metadata(reader, 0, topic, &metadata, 10000);
	if (error == RD_KAFKA_RESP_ERR_NO_ERROR && metadata->topic_cnt == 1 && metadata->topics[0].partition_cnt > 0) {
		run->partitions = rd_kafka_topic_partition_list_new(metadata->topics[0].partition_cnt);
		for (int i = 0; i < metadata->topics[0].partition_cnt; i++)
			rd_kafka_topic_partition_list_add(run->partitions, run->config.kafka_topic,
							  metadata->topics[0].partitions[i].id);
	} else {
		if (error == RD_KAFKA_RESP_ERR_NO_ERROR)
			error = metadata->topic_cnt == 1 ? metadata->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
		snprintf(err, errsize, "no partitions of %s: %s", run->config.kafka_topic, rd_kafka_err2str(error));
	}
	if (metadata != NULL)
		rd_kafka_metadata_destroy(metadata);
	rd_kafka_topic_destroy(topic);
	if (run->partitions == NULL) {
		rd_kafka_destroy(reader);
		return NULL;
	}
	return reader;
}

static void on_delivery(rd_kafka_t *producer, const rd_kafka_message_t *message, void *opaque)
{
	(void)producer;
	struct loadgen *run = opaque;
	if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR && atomic_fetch_add(&run->delivery_failures, 1) == 0)
		fprintf(stderr, "loadgen: run: kafka: %s (further failures only counted)\n",
			rd_kafka_err2str(message->err));
}

/*
 * A producer that never waits for a delivery report (kafka.c's waits for
 * each, as 'inject' must), with a deep local queue for the flat-out bursts.
 * acks=all and linger.ms=1 as sigtrigd's own producer: the signal pays
 * what it would pay from a real generator, no more (a longer linger would
 * be counted as dispatcher latency), and under load the messages waiting
 * in the queue still go in batches.
 */
static rd_kafka_t *producer_new(struct loadgen *run, char *err, size_t errsize)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *settings[][2] = { { "bootstrap.servers", run->config.kafka_bootstrap_servers },
				      { "client.id", "sigtrig-loadgen" },
				      { "acks", "all" },
				      { "linger.ms", "1" },
				      { "queue.buffering.max.messages", "2000000" },
				      { "queue.buffering.max.kbytes", "2097151" } };
	for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
		if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err, errsize) != RD_KAFKA_CONF_OK) {
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, run);
	return rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errsize);
}

static uint64_t next_random(struct loadgen *run)
{
	/* xorshift64*: plenty for spreading signals over tickers. */
	run->random_state ^= run->random_state >> 12;
	run->random_state ^= run->random_state << 25;
	run->random_state ^= run->random_state >> 27;
	return run->random_state * 2685821657736338717ULL;
}

/*
 * One signal on one ticker drawn at random, built and serialized by the
 * project's own signal module. The ledger learns its send time before
 * Kafka sees it, so the drain can never meet a task for an unsent signal.
 */
static int send_signal(struct loadgen *run)
{
	if (run->next_sequence >= LEDGER_CAPACITY)
		return -1;
	static char signal_type[] = "technical", source[] = "loadgen", reasoning[] = "load generator";
	struct signal_ticker ticker = { .direction = SIGNAL_BULLISH, .confidence = 75, .reasoning = reasoning };
	const char *name = run->tickers[next_random(run) % run->ticker_count];
	snprintf(ticker.ticker, sizeof ticker.ticker, "%s", name);
	int64_t sent_us = wall_clock_us();
	struct signal signal = { .timestamp = (double)sent_us / 1e6,
				 .signal_type = signal_type,
				 .source = source,
				 .tickers = &ticker,
				 .ticker_count = 1,
				 .metadata = run->metadata };
	uint64_t sequence = run->next_sequence;
	signal_ledger_id(&run->ledger, sequence, signal.signal_id);
	char *text = signal_serialize(&signal);
	if (text == NULL)
		return -1;
	atomic_store_explicit(&run->ledger.entries[sequence].sent_us, sent_us, memory_order_relaxed);
	for (;;) {
		rd_kafka_resp_err_t error = rd_kafka_producev(
			run->producer, RD_KAFKA_V_TOPIC(run->config.kafka_topic),
			RD_KAFKA_V_KEY(name, strlen(name)), RD_KAFKA_V_VALUE(text, strlen(text)),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
		if (error == RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		if (error != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			free(text);
			fail("run", "kafka: %s", rd_kafka_err2str(error));
			return -1;
		}
		rd_kafka_poll(run->producer, 5);
	}
	run->next_sequence++;
	return 0;
}

/*
 * Sends at `rate` signals/s for `duration` seconds: signal k is due k/rate
 * after the start, and a late producer catches up at once, so the rate
 * holds over the window even when one send stalls. Rate 0 is flat out:
 * as fast as the producer goes.
 *
 * Either way at most `backlog` signals are ever sent and not yet decided.
 * The mock broker keeps only 5 MiB or 100,000 messages per partition
 * (librdkafka's rdkafka_mock.c) and drops the oldest: a dispatcher further
 * behind than that loses signals, and the run would measure nothing. So a
 * rate the dispatcher cannot keep up with is held back to what it decides
 * (*held_back is set), and flat out never leaves it waiting for input.
 * The committed offsets are asked for only when the bound comes near.
 */
static uint64_t produce_for(struct loadgen *run, double rate, double duration, bool *held_back)
{
	double start = monotonic_seconds(), next_backlog_poll = 0;
	uint64_t sent = 0;
	int64_t decided = 0, committed;
	if (committed_read(run, &committed) == 0)
		decided = committed - run->at_start.committed;
	*held_back = false;
	for (;;) {
		double now = monotonic_seconds();
		if (now - start >= duration)
			break;
		int64_t room = decided + run->options->backlog - (int64_t)run->next_sequence;
		if (room < run->options->backlog / 2 && now >= next_backlog_poll) {
			if (committed_read(run, &committed) == 0)
				decided = committed - run->at_start.committed;
			next_backlog_poll = now + BACKLOG_POLL_SECONDS;
			room = decided + run->options->backlog - (int64_t)run->next_sequence;
		}
		uint64_t allowed = sent + (room > 1000 ? 1000 : room > 0 ? (uint64_t)room : 0);
		uint64_t due = rate > 0 ? (uint64_t)((now - start) * rate) + 1 : allowed;
		if (due > allowed) {
			due = allowed;
			*held_back = true;
		}
		while (sent < due && send_signal(run) == 0)
			sent++;
		if (sent < due && run->next_sequence >= LEDGER_CAPACITY) {
			fail("run", "the ledger is full (%u signals): this rate stops early", LEDGER_CAPACITY);
			break;
		}
		rd_kafka_poll(run->producer, 0);
		if (room <= 0)
			sleep_seconds(0.001);
		else if (rate > 0)
			sleep_until(fmin(start + (double)sent / rate, start + duration));
	}
	return sent;
}

/*
 * Waits until the dispatcher has decided and committed every signal sent,
 * and the drain has taken and finished every task it pushed: only then are
 * all the window's latencies in, and does the next rate start from an idle
 * system. A task is pushed before its batch is committed, so once all is
 * committed the drain only has to catch up with pipelines_enqueued_total.
 */
static bool settle(struct loadgen *run)
{
	double deadline = monotonic_seconds() + run->options->settle_timeout, quiet_since = 0;
	while (monotonic_seconds() < deadline) {
		rd_kafka_poll(run->producer, 0);
		struct daemon_counters counters;
		if (daemon_counters_read(run, &counters) != 0)
			return false;
		bool decided = decided_since_start(run, &counters) >=
			       (int64_t)run->next_sequence - atomic_load(&run->delivery_failures);
		bool drained = atomic_load(&run->drain.tasks_popped) >= counters.enqueued - run->at_start.enqueued &&
			       drain_is_idle(&run->drain);
		double now = monotonic_seconds();
		if (!decided || !drained)
			quiet_since = 0;
		else if (quiet_since == 0)
			quiet_since = now;
		else if (now - quiet_since >= 0.3)
			return true;
		sleep_seconds(0.05);
	}
	return false;
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *sorted, size_t count, double fraction)
{
	if (count == 0)
		return NAN;
	size_t rank = (size_t)ceil(fraction * (double)count);
	return sorted[rank > 0 ? rank - 1 : 0];
}

/* Latency of each signal of [first, end) that started a run: pop time of its first task minus its timestamp. */
static void latency_percentiles(struct loadgen *run, uint64_t first, uint64_t end, struct rate_result *result)
{
	double *latencies = malloc((end > first ? end - first : 1) * sizeof *latencies);
	size_t count = 0;
	for (uint64_t s = first; latencies != NULL && s < end; s++) {
		int64_t sent = atomic_load_explicit(&run->ledger.entries[s].sent_us, memory_order_relaxed);
		int64_t enqueued = atomic_load_explicit(&run->ledger.entries[s].enqueued_us, memory_order_relaxed);
		if (sent != 0 && enqueued != 0)
			latencies[count++] = enqueued > sent ? (double)(enqueued - sent) / 1000 : 0;
	}
	if (latencies != NULL)
		qsort(latencies, count, sizeof *latencies, compare_doubles);
	result->triggered = count;
	result->p50_ms = percentile(latencies, count, 0.50);
	result->p95_ms = percentile(latencies, count, 0.95);
	result->p99_ms = percentile(latencies, count, 0.99);
	result->max_ms = count > 0 ? latencies[count - 1] : NAN;
	free(latencies);
}

static int compare_threads_by_ticks(const void *a, const void *b)
{
	const struct thread_ticks *x = a, *y = b;
	return x->ticks < y->ticks ? 1 : x->ticks > y->ticks ? -1 : 0;
}

/* The dispatcher's busiest threads over the window, e.g. "sigtrigd 61%, rdk:broker1 9%". */
static void describe_top_threads(const struct cpu_sample *before, const struct cpu_sample *after, double seconds,
				 char *buf, size_t size)
{
	struct thread_ticks deltas[THREAD_SAMPLE_MAX] = { { 0, "", 0 } };
	size_t count = 0;
	for (size_t i = 0; i < after->thread_count; i++) {
		unsigned long long start = 0;
		for (size_t j = 0; j < before->thread_count; j++)
			if (before->threads[j].tid == after->threads[i].tid)
				start = before->threads[j].ticks;
		deltas[count] = after->threads[i];
		deltas[count++].ticks = after->threads[i].ticks > start ? after->threads[i].ticks - start : 0;
	}
	qsort(deltas, count, sizeof *deltas, compare_threads_by_ticks);
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < count && i < 4 && deltas[i].ticks > 0 && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%s %.0f%%", i > 0 ? ", " : "", deltas[i].name,
					 100 * cpu_seconds_between(0, deltas[i].ticks) / seconds);
}

/* How many matches each skip reason took between two readings, for the reasons that moved. */
static void skip_counts(const struct daemon_counters *before, const struct daemon_counters *after,
			struct rate_result *result)
{
	result->skipped_count = 0;
	for (size_t i = 0; i < after->skipped_count; i++) {
		double start = 0;
		for (size_t j = 0; j < before->skipped_count; j++)
			if (strcmp(before->skipped[j].reason, after->skipped[i].reason) == 0)
				start = before->skipped[j].count;
		if (after->skipped[i].count > start) {
			struct skip_count *slot = &result->skipped[result->skipped_count++];
			snprintf(slot->reason, sizeof slot->reason, "%s", after->skipped[i].reason);
			slot->count = after->skipped[i].count - start;
		}
	}
}

static int measure_rate(struct loadgen *run, double rate, struct rate_result *result)
{
	struct run_options *options = run->options;
	memset(result, 0, sizeof *result);
	result->target = rate;
	pid_t dispatcher = options->watched[0].pid;
	process_reset_peak_rss(dispatcher);
	struct daemon_counters before, after;
	static struct cpu_sample cpu_before, cpu_after;
	if (daemon_counters_read(run, &before) != 0)
		return -1;
	cpu_sample_take(options->watched, options->watched_count, run->drain.db_backend_pid, &cpu_before);
	uint64_t first = run->next_sequence;
	result->sent = produce_for(run, rate, options->duration, &result->held_back);
	uint64_t end = run->next_sequence;
	cpu_sample_take(options->watched, options->watched_count, run->drain.db_backend_pid, &cpu_after);
	if (daemon_counters_read(run, &after) != 0)
		return -1;
	double seconds = cpu_after.at - cpu_before.at;
	result->seconds = seconds;
	result->sent_rate = (double)result->sent / seconds;
	result->consumed_rate = (double)(after.consumed - before.consumed) / seconds;
	result->decided_rate = (double)(after.committed - before.committed) / seconds;
	result->runs_rate = (double)(after.enqueued - before.enqueued) / seconds;
	result->query_rate = (double)(after.db_queries - before.db_queries) / seconds;
	result->batch_rate = (double)(after.batches - before.batches) / seconds;
	for (size_t i = 0; i < options->watched_count; i++)
		result->cpu_percent[i] = 100 * cpu_seconds_between(cpu_before.ticks[i], cpu_after.ticks[i]) / seconds;
	result->drain_backend_percent = 100 * cpu_seconds_between(cpu_before.extra_ticks, cpu_after.extra_ticks) / seconds;
	result->loadgen_percent = 100 * (cpu_after.self_seconds - cpu_before.self_seconds) / seconds;
	result->machine_percent =
		100 * cpu_seconds_between(cpu_before.machine_busy_ticks, cpu_after.machine_busy_ticks) / seconds;
	describe_top_threads(&cpu_before, &cpu_after, seconds, result->top_threads, sizeof result->top_threads);
	result->settled = settle(run);
	result->peak_rss_kb = process_peak_rss_kb(dispatcher);
	/* Signals sent in the window may be decided after it: their skips count until the rate settled. */
	struct daemon_counters settled;
	if (daemon_counters_read(run, &settled) != 0)
		return -1;
	skip_counts(&before, &settled, result);
	int64_t held = settled.held_count - before.held_count;
	result->dispatcher_mean_ms = held > 0 ? 1000 * (settled.held_seconds - before.held_seconds) / (double)held : NAN;
	latency_percentiles(run, first, end, result);
	return 0;
}

/* Until the dispatcher has loaded every pipeline and a first signal went the whole way through. */
static int wait_for_dispatcher(struct loadgen *run)
{
	double deadline = monotonic_seconds() + 60;
	struct daemon_counters counters;
	if (daemon_counters_read(run, &run->at_start) != 0)
		return -1;
	do {
		if (daemon_counters_read(run, &counters) != 0)
			return -1;
		if (counters.cache_size >= run->pipeline_count)
			break;
		sleep_seconds(0.1);
	} while (monotonic_seconds() < deadline);
	if (counters.cache_size < run->pipeline_count)
		return fail("run", "the dispatcher cached %" PRId64 " pipelines of %ld after 60 s", counters.cache_size,
			    run->pipeline_count);
	/* The consumer joins its group in the background: probe until a task comes back. */
	while (atomic_load(&run->drain.tasks_of_run) == 0) {
		if (monotonic_seconds() >= deadline)
			return fail("run", "no task reached the queue within 60 s of the first signal");
		if (send_signal(run) != 0)
			return -1;
		rd_kafka_poll(run->producer, 100);
	}
	return settle(run) ? 0 : fail("run", "the first signals did not settle");
}

static int load_tickers(struct loadgen *run)
{
	char err[512];
	PGconn *db = db_connect(run->config.postgres_url, err, sizeof err);
	if (db == NULL)
		return fail("run", "%s", err);
	PGresult *result = db_query(db,
				    "SELECT t, (SELECT count(*) FROM pipelines WHERE is_active AND trigger_mode = 'signal')"
				    " FROM (SELECT DISTINCT unnest(scanner_tickers) AS t FROM pipelines"
				    "       WHERE is_active AND trigger_mode = 'signal') watched ORDER BY t",
				    0, NULL, err, sizeof err);
	PQfinish(db);
	if (result == NULL)
		return fail("run", "%s", err);
	int rows = PQntuples(result);
	if (rows == 0) {
		PQclear(result);
		return fail("run", "no active signal pipeline watches any ticker: run 'loadgen seed' first");
	}
	run->tickers = calloc((size_t)rows, sizeof *run->tickers);
	if (run->tickers == NULL) {
		PQclear(result);
		return fail("run", "out of memory");
	}
	for (int row = 0; row < rows; row++)
		snprintf(run->tickers[row], sizeof run->tickers[row], "%s", PQgetvalue(result, row, 0));
	run->ticker_count = (size_t)rows;
	run->pipeline_count = atol(PQgetvalue(result, 0, 1));
	PQclear(result);
	return 0;
}


/* ---- options ---- */

static int parse_rates(const char *text, struct run_options *options)
{
	char *copy = strdup(text), *save = NULL;
	options->rate_count = 0;
	for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
		char *end;
		double rate = strcmp(item, "max") == 0 ? 0 : strtod(item, &end);
		if (options->rate_count == RATES_MAX || (strcmp(item, "max") != 0 && (*end != '\0' || rate <= 0))) {
			free(copy);
			return fail("run", "--rates: '%s' is not a rate (signals/s, or max), or too many rates", item);
		}
		options->rates[options->rate_count++] = rate;
	}
	free(copy);
	return options->rate_count > 0 ? 0 : fail("run", "--rates: no rate given");
}

static int add_watched(struct run_options *options, const char *name, const char *pid_text)
{
	char *end;
	long pid = strtol(pid_text, &end, 10);
	if (*end != '\0' || pid <= 0 || options->watched_count == WATCH_MAX)
		return fail("run", "'%s' is not a process id, or too many processes to watch", pid_text);
	struct watched_process *watched = &options->watched[options->watched_count++];
	snprintf(watched->name, sizeof watched->name, "%s", name);
	watched->pid = (pid_t)pid;
	return 0;
}

static int parse_run_options(int argc, char **argv, struct run_options *options)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },   { "socket", required_argument, NULL, 's' },
		{ "rates", required_argument, NULL, 'r' },    { "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },   { "backlog", required_argument, NULL, 'b' },
		{ "settle-timeout", required_argument, NULL, 'T' }, { "run-ms", required_argument, NULL, 'R' },
		{ "dispatcher-pid", required_argument, NULL, 'D' },
		{ "postgres-pid", required_argument, NULL, 'P' }, { "watch", required_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 }
	};
	const char *dispatcher_pid = NULL, *postgres_pid = NULL, *watch[WATCH_MAX];
	size_t watch_count = 0;
	options->duration = 20;
	options->warmup = 3;
	options->backlog = 20000;
	options->settle_timeout = 120;
	if (parse_rates(DEFAULT_RATES, options) != 0)
		return 2;
	int option;
	while ((option = getopt_long(argc, argv, "c:", long_options, NULL)) != -1) {
		switch (option) {
		case 'c': options->conf_path = optarg; break;
		case 's': options->socket = optarg; break;
		case 'r':
			if (parse_rates(optarg, options) != 0)
				return 2;
			break;
		case 'd': options->duration = atof(optarg); break;
		case 'w': options->warmup = atof(optarg); break;
		case 'b': options->backlog = atol(optarg); break;
		case 'T': options->settle_timeout = atof(optarg); break;
		case 'R': options->run_ms = atol(optarg); break;
		case 'D': dispatcher_pid = optarg; break;
		case 'P': postgres_pid = optarg; break;
		case 'W':
			if (watch_count == WATCH_MAX - 2)
				return fail("run", "too many --watch");
			watch[watch_count++] = optarg;
			break;
		default: return 2;
		}
	}
	if (options->socket == NULL || dispatcher_pid == NULL)
		return fail("run", "--socket PATH and --dispatcher-pid PID are required");
	if (options->duration <= 0 || options->backlog < 1 || options->warmup < 0 || options->settle_timeout <= 0)
		return fail("run", "--duration, --backlog and --settle-timeout must be positive");
	if (options->run_ms < 0 || options->run_ms > 3600000)
		return fail("run", "--run-ms must be 0 to 3600000");
	if (add_watched(options, "sigtrigd", dispatcher_pid) != 0 ||
	    (postgres_pid != NULL && add_watched(options, "postgres", postgres_pid) != 0))
		return 2;
	options->postgres_watched = postgres_pid != NULL;
	for (size_t i = 0; i < watch_count; i++) {
		const char *equals = strchr(watch[i], '=');
		if (equals == NULL || equals == watch[i])
			return fail("run", "--watch %s: expected NAME=PID", watch[i]);
		char name[32];
		snprintf(name, sizeof name, "%.*s", (int)(equals - watch[i]), watch[i]);
		if (add_watched(options, name, equals + 1) != 0)
			return 2;
	}
	return 0;
}

static int command_run(int argc, char **argv)
{
	static struct run_options options;
	static struct loadgen run;
	int status = parse_run_options(argc, argv, &options);
	if (status != 0)
		return status;
	run.options = &options;
	run.random_state = (uint64_t)wall_clock_us() | 1;
	if (load_config("run", options.conf_path, &run.config) != 0 || load_tickers(&run) != 0)
		return 1;
	char err[512];
	if (signal_ledger_init(&run.ledger) != 0)
		return fail("run", "cannot map the ledger: %s", strerror(errno));
	run.metadata = json_object();
	run.producer = producer_new(&run, err, sizeof err);
	if (run.producer == NULL)
		return fail("run", "kafka producer: %s", err);
	run.offsets_reader = offsets_reader_new(&run, err, sizeof err);
	if (run.offsets_reader == NULL)
		return fail("run", "kafka: %s", err);
	if (drain_start(&run.drain, &run.ledger, run.config.redis_url, run.config.redis_queue,
			run.config.postgres_url, (int64_t)options.run_ms * 1000, err, sizeof err) != 0)
		return fail("run", "%s", err);
	fprintf(stderr, "loadgen: %ld pipelines over %zu tickers; waiting for the dispatcher\n", run.pipeline_count,
		run.ticker_count);
	struct rate_result results[RATES_MAX];
	size_t measured = 0;
	status = wait_for_dispatcher(&run);
	if (status == 0 && options.warmup > 0) {
		fprintf(stderr, "loadgen: warming up at 1,000 signals/s for %.0f s\n", options.warmup);
		bool held_back;
		produce_for(&run, 1000, options.warmup, &held_back);
		if (!settle(&run))
			status = fail("run", "the warm-up did not settle");
	}
	for (size_t i = 0; status == 0 && i < options.rate_count; i++) {
		if (options.rates[i] > 0)
			fprintf(stderr, "loadgen: %.0f signals/s for %.0f s\n", options.rates[i], options.duration);
		else
			fprintf(stderr, "loadgen: flat out for %.0f s\n", options.duration);
		status = measure_rate(&run, options.rates[i], &results[i]);
		if (status == 0)
			measured++;
		if (status == 0 && !results[i].settled)
			fprintf(stderr, "loadgen: the dispatcher had not caught up %.0f s after the window\n",
				options.settle_timeout);
	}
	if (measured > 0) {
		const struct report_setup setup = { options.watched, options.watched_count, options.postgres_watched,
						    run.pipeline_count, options.backlog };
		report_print(&setup, results, measured);
	}
	long long failures = atomic_load(&run.delivery_failures), unknown = atomic_load(&run.drain.tasks_unknown),
		  unfinished = atomic_load(&run.drain.finish_failures);
	struct daemon_counters at_end;
	if (measured > 0 && daemon_counters_read(&run, &at_end) == 0) {
		/* A signal Kafka took but the dispatcher never consumed fell off the broker's log. */
		int64_t lost = (int64_t)run.next_sequence - failures - (at_end.consumed - run.at_start.consumed);
		if (lost > 0)
			printf("\nAnomaly: %" PRId64 " signals never reached the dispatcher (the broker dropped them from "
			       "its log before they were consumed); kafka_offset_resets_total grew by %" PRId64 ".\n",
			       lost, at_end.offset_resets - run.at_start.offset_resets);
	}
	fprintf(stderr, "loadgen: %" PRIu64 " signals sent, %lld tasks drained, %lld executions finished\n",
		run.next_sequence, atomic_load(&run.drain.tasks_popped), atomic_load(&run.drain.executions_finished));
	if (failures > 0 || unknown > 0 || unfinished > 0 || run.drain.error[0] != '\0')
		printf("\nAnomalies: %lld signals not delivered to Kafka, %lld tasks without a signal of this run, "
		       "%lld executions the drain could not finish%s%s\n",
		       failures, unknown, unfinished, run.drain.error[0] != '\0' ? "; drain: " : "", run.drain.error);
	rd_kafka_flush(run.producer, 5000);
	rd_kafka_destroy(run.producer);
	rd_kafka_topic_partition_list_destroy(run.partitions);
	rd_kafka_destroy(run.offsets_reader);
	drain_stop(&run.drain);
	json_decref(run.metadata);
	signal_ledger_free(&run.ledger);
	free(run.tickers);
	config_free(&run.config);
	if (fflush(stdout) != 0 || ferror(stdout))
		return fail("run", "standard output: %s", strerror(errno));
	return status == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "seed") == 0)
		return command_seed(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return command_run(argc - 1, argv + 1);
	fprintf(stderr, "usage: loadgen seed -c FILE [--pipelines N] [--tickers N]\n"
			"       loadgen run -c FILE --socket PATH --dispatcher-pid PID [--postgres-pid PID]\n"
			"                   [--watch NAME=PID]... [--rates LIST] [--duration S] [--warmup S]\n"
			"                   [--backlog N] [--settle-timeout S] [--run-ms MS]\n");
	return 2;
}

/*
 * The dispatcher role: consumes signals from Kafka in the consumer group,
 * batches them (dispatcher.batch_max_signals / batch_max_wait_ms), matches
 * them against the in-memory pipeline index, claims a PENDING execution
 * per matched pipeline in one statement, enqueues a Celery task per claim,
 * and only then commits the batch's offsets: a crash at any point replays
 * the batch, and the claim rule in PostgreSQL keeps a replay from starting
 * a pipeline that is already live.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "batch.h"
#include "celery.h"
#include "daemon.h"
#include "db.h"
#include "execution_store.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "pipeline_index.h"
#include "rate_limit.h"
#include "skip_reason.h"
#include "redis_client.h"
#include "task_queue.h"
#include "timeutil.h"
#include "trace.h"

#define RETRY_BACKOFF_MAX_MS 5000

struct dispatcher_state {
	struct daemon *daemon;
	pthread_t thread;
	bool running;
	volatile int stop;
	rd_kafka_t *consumer;
	PGconn *db;
	redisContext *redis;
	struct pipeline_index *index;
	atomic_llong index_loaded_ms; /* monotonic time of the last successful load; 0 never */
	PGconn *listen_db;          /* LISTENs on sigtrig_pipelines, nothing else */
	int64_t listen_attempt_ms;
	struct batch_policy policy;
	struct signal *batch;
	int32_t *batch_partitions;  /* where each batch signal came from, for its record */
	int64_t *batch_offsets;
	bool *batch_limited;        /* refused by the source's rate limit: decided, never matched */
	struct rate_limiter *limiter;
	size_t batch_count, batch_capacity;
	int64_t batch_first_ms;
	atomic_llong batches, last_batch_ms;
	atomic_bool postgres_ok, redis_ok;
	char last_error[256];
	pthread_mutex_t info_lock;  /* guards last_error */
};

static struct dispatcher_state state = { .info_lock = PTHREAD_MUTEX_INITIALIZER };

static void note_error(const char *event, const char *message)
{
	pthread_mutex_lock(&state.info_lock);
	bool repeated = strcmp(state.last_error, message) == 0;
	snprintf(state.last_error, sizeof state.last_error, "%s", message);
	pthread_mutex_unlock(&state.info_lock);
	/* An outage is logged when it starts or changes, not on every retry. */
	if (!repeated)
		log_msg(LOG_ERROR, event, "%s", message);
}

static void clear_error(void)
{
	pthread_mutex_lock(&state.info_lock);
	state.last_error[0] = '\0';
	pthread_mutex_unlock(&state.info_lock);
}

/* The dispatcher's working PostgreSQL connection (claims and reloads). */
static PGconn *dispatcher_db(char *err, size_t errsize)
{
	return db_ensure(&state.db, state.daemon->config.postgres_url, err, errsize);
}

/* Reloads the pipeline index; on failure the stale one stays in use. Returns whether it loaded. */
static bool dispatcher_refresh_cache(void)
{
	char err[512];
	if (dispatcher_db(err, sizeof err) == NULL) {
		atomic_store(&state.postgres_ok, false);
		note_error("pipeline_cache_refresh_failed", err);
		return false;
	}
	struct pipeline *pipelines;
	size_t count;
	metrics_add(METRIC_db_queries_total, 1);
	if (pipeline_store_load_active_signal(state.db, &pipelines, &count, err, sizeof err) != 0) {
		atomic_store(&state.postgres_ok, false);
		note_error("pipeline_cache_refresh_failed", err);
		return false;
	}
	struct pipeline_index *fresh = pipeline_index_build(pipelines, count);
	if (fresh == NULL) {
		note_error("pipeline_cache_refresh_failed", "out of memory");
		return false;
	}
	pipeline_index_free(state.index);
	state.index = fresh;
	state.index_loaded_ms = time_monotonic_ms();
	atomic_store(&state.postgres_ok, true);
	metrics_set(METRIC_cache_size, (int64_t)pipeline_index_pipeline_count(fresh));
	metrics_set(METRIC_cache_tickers, (int64_t)pipeline_index_ticker_count(fresh));
	log_event(LOG_DEBUG, "pipeline_cache_refreshed",
		  json_pack("{s:I, s:I}", "pipelines", (json_int_t)count, "tickers",
			    (json_int_t)pipeline_index_ticker_count(fresh)));
	return true;
}

/*
 * Whether PostgreSQL announced a pipeline change since the last look. The
 * notifications come on a connection of their own that does nothing but
 * LISTEN, so no claim or reload can replace it unnoticed. A broken or new
 * listening connection counts as a change: what it missed is reloaded.
 */
static bool pipelines_changed(void)
{
	if (state.listen_db != NULL &&
	    (PQstatus(state.listen_db) != CONNECTION_OK || PQconsumeInput(state.listen_db) == 0)) {
		PQfinish(state.listen_db);
		state.listen_db = NULL;
	}
	if (state.listen_db == NULL) {
		int64_t now = time_monotonic_ms();
		if (now - state.listen_attempt_ms < 1000)
			return false;
		state.listen_attempt_ms = now;
		char err[512];
		state.listen_db = db_connect(state.daemon->config.postgres_url, err, sizeof err);
		if (state.listen_db == NULL)
			return false;
		PGresult *listen = db_query(state.listen_db, "LISTEN sigtrig_pipelines", 0, NULL, err, sizeof err);
		if (listen == NULL) {
			PQfinish(state.listen_db);
			state.listen_db = NULL;
			return false;
		}
		PQclear(listen);
		return true;
	}
	bool changed = false;
	PGnotify *notice;
	while ((notice = PQnotifies(state.listen_db)) != NULL) {
		changed = true;
		PQfreemem(notice);
	}
	return changed;
}

/* Takes ownership of *signal's contents. */
// cppcheck-suppress constParameter
static int batch_append(struct signal *signal, int32_t partition, int64_t offset)
{
	if (state.batch_count == state.batch_capacity) {
		size_t capacity = state.batch_capacity == 0 ? 64 : state.batch_capacity * 2;
		struct signal *grown = realloc(state.batch, capacity * sizeof *grown);
		if (grown == NULL)
			return -1;
		state.batch = grown;
		int32_t *partitions = realloc(state.batch_partitions, capacity * sizeof *partitions);
		if (partitions == NULL)
			return -1;
		state.batch_partitions = partitions;
		int64_t *offsets = realloc(state.batch_offsets, capacity * sizeof *offsets);
		if (offsets == NULL)
			return -1;
		state.batch_offsets = offsets;
		bool *limited = realloc(state.batch_limited, capacity * sizeof *limited);
		if (limited == NULL)
			return -1;
		state.batch_limited = limited;
		state.batch_capacity = capacity;
	}
	if (state.batch_count == 0)
		state.batch_first_ms = time_monotonic_ms();
	state.batch_partitions[state.batch_count] = partition;
	state.batch_offsets[state.batch_count] = offset;
	state.batch_limited[state.batch_count] = !rate_limiter_allow(state.limiter, signal->source, time_now_seconds());
	state.batch[state.batch_count++] = *signal;
	return 0;
}

static void batch_clear(void)
{
	for (size_t i = 0; i < state.batch_count; i++)
		signal_free(&state.batch[i]);
	state.batch_count = 0;
}

static void handle_message(rd_kafka_message_t *message)
{
	if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
			return;
		if (message->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
		    message->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
			/* The log no longer holds our committed position: signals were lost. Say so loudly. */
			metrics_add(METRIC_kafka_offset_resets_total, 1);
			log_event(LOG_ERROR, "kafka_offsets_fell_off_log",
				  json_pack("{s:s, s:i, s:I, s:s}", "topic",
					    message->rkt != NULL ? rd_kafka_topic_name(message->rkt) : "",
					    (int)message->partition, (json_int_t)message->offset, "error",
					    rd_kafka_message_errstr(message)));
			return;
		}
		log_event(LOG_WARN, "kafka_consume_error",
			  json_pack("{s:s, s:s}", "error", rd_kafka_err2name(message->err), "reason",
				    rd_kafka_message_errstr(message)));
		return;
	}
	metrics_add(METRIC_signals_consumed_total, 1);
	struct signal signal;
	struct signal_error error;
	if (signal_parse(message->payload, message->len, &signal, &error) != 0) {
		metrics_add(METRIC_signals_invalid_total, 1);
		metrics_skip(SKIP_invalid, 1);
		char reason[320];
		signal_error_format(&error, reason, sizeof reason);
		log_event(LOG_WARN, "signal_invalid",
			  json_pack("{s:i, s:I, s:s}", "partition", (int)message->partition, "offset",
				    (json_int_t)message->offset, "reason", reason));
		trace_emit("skipped", "", json_pack("{s:s, s:s}", "reason", skip_reason_name(SKIP_invalid), "detail", reason));
		return;
	}
	trace_emit("consumed", signal.signal_id,
		   json_pack("{s:o, s:i, s:I}", "tickers", daemon_signal_tickers(&signal), "partition",
			     (int)message->partition, "offset", (json_int_t)message->offset));
	if (batch_append(&signal, message->partition, message->offset) != 0) {
		log_msg(LOG_ERROR, "dispatcher_out_of_memory", "signal %s dropped from the batch", signal.signal_id);
		signal_free(&signal);
	}
}

static void trace_match_outcome(const struct batch_match *match, const struct execution_claim *claim)
{
	size_t index;
	json_t *signal_id;
	json_array_foreach(match->signal_ids, index, signal_id) {
		const char *id = json_string_value(signal_id);
		trace_emit("matched", id,
			   json_pack("{s:s, s:s, s:O}", "pipeline_id", match->pipeline->id, "pipeline",
				     match->pipeline->name, "tickers", match->tickers));
		if (claim->claimed)
			trace_emit("enqueued", id,
				   json_pack("{s:s, s:s, s:s, s:O}", "pipeline_id", match->pipeline->id,
					     "execution_id", claim->execution_id, "task_id", claim->task_id,
					     "tickers", match->tickers));
		else
			trace_emit("skipped", id,
				   json_pack("{s:s, s:s, s:O}", "pipeline_id", match->pipeline->id, "reason",
					     claim->reason, "tickers", match->tickers));
	}
	if (claim->claimed)
		log_event(LOG_INFO, "signal_matched_to_pipeline",
			  json_pack("{s:O, s:s, s:s, s:O}", "signal_ids", match->signal_ids, "pipeline_id",
				    match->pipeline->id, "execution_id", claim->execution_id,
				    "matched_tickers", match->tickers));
}

/* Every signal of the batch as received, for the signals table. */
static json_t *dispatcher_signal_records(void)
{
	json_t *records = json_array();
	for (size_t i = 0; i < state.batch_count; i++)
		json_array_append_new(records, json_pack("{s:s, s:o, s:s, s:s, s:i, s:I}", "signal_id",
							 state.batch[i].signal_id, "body",
							 signal_to_json(&state.batch[i]), "source",
							 state.batch[i].source, "signal_type",
							 state.batch[i].signal_type, "partition",
							 (int)state.batch_partitions[i], "offset",
							 (json_int_t)state.batch_offsets[i]));
	return records;
}

/*
 * The decisions made before the database: each signal no pipeline watches,
 * and each one its source's rate limit refused. Recorded too, so every
 * signal has one.
 */
static json_t *dispatcher_unmatched_decisions(void)
{
	json_t *skips = json_array();
	for (size_t s = 0; s < state.batch_count; s++) {
		if (state.batch_limited[s]) {
			json_array_append_new(skips, json_pack("{s:s, s:n, s:s, s:o}", "signal_id",
							       state.batch[s].signal_id, "pipeline_id", "reason",
							       skip_reason_name(SKIP_rate_limited), "tickers",
							       daemon_signal_tickers(&state.batch[s])));
			continue;
		}
		bool matched = false;
		for (size_t t = 0; t < state.batch[s].ticker_count && !matched; t++) {
			size_t postings;
			pipeline_index_lookup(state.index, state.batch[s].tickers[t].ticker, &postings);
			matched = postings > 0;
		}
		if (!matched)
			json_array_append_new(skips, json_pack("{s:s, s:n, s:s, s:o}", "signal_id",
							       state.batch[s].signal_id, "pipeline_id", "reason",
							       skip_reason_name(SKIP_no_matching_pipeline), "tickers",
							       daemon_signal_tickers(&state.batch[s])));
	}
	return skips;
}

/*
 * signal_to_enqueue_seconds: once per signal that started at least one
 * run, from the signal's own timestamp to now, when its task is queued.
 */
static void dispatcher_observe_latency(const struct execution_claim *claims, size_t count)
{
	double now = time_now_seconds();
	for (size_t s = 0; s < state.batch_count; s++) {
		bool started = false;
		for (size_t i = 0; i < count && !started; i++) {
			if (!claims[i].claimed)
				continue;
			size_t index;
			json_t *id;
			json_array_foreach(claims[i].signal_ids, index, id)
				if (strcmp(json_string_value(id), state.batch[s].signal_id) == 0)
					started = true;
		}
		if (started)
			metrics_observe(HISTOGRAM_signal_to_enqueue_seconds, fmax(0, now - state.batch[s].timestamp));
	}
}

/*
 * Claims and enqueues one batch. Returns 0 when every decision is durable
 * (offsets may be committed), -1 when it must be retried.
 */
static int dispatcher_process_batch(void)
{
	char err[512];
	/* Rate-limited signals are decided already: only the others are matched (shallow copies). */
	struct signal *admitted = calloc(state.batch_count > 0 ? state.batch_count : 1, sizeof *admitted);
	size_t admitted_count = 0;
	for (size_t i = 0; admitted != NULL && i < state.batch_count; i++)
		if (!state.batch_limited[i])
			admitted[admitted_count++] = state.batch[i];
	struct batch_match *matches = NULL;
	long match_count = admitted != NULL
				   ? batch_match_signals(state.index, admitted, admitted_count, &matches)
				   : -1;
	free(admitted);
	if (match_count < 0) {
		note_error("dispatcher_batch_failed", "out of memory matching the batch");
		return -1;
	}
	int status = 0;
	json_t *records = NULL, *unmatched = NULL;
	struct execution_claim *claims = calloc(match_count > 0 ? (size_t)match_count : 1, sizeof *claims);
	size_t *claim_match = calloc(match_count > 0 ? (size_t)match_count : 1, sizeof *claim_match);
	size_t claim_count = 0;
	char **envelopes = calloc(match_count > 0 ? (size_t)match_count : 1, sizeof *envelopes);
	size_t envelope_count = 0;
	if (claims == NULL || envelopes == NULL || claim_match == NULL) {
		status = -1;
		goto done;
	}
	records = dispatcher_signal_records();
	unmatched = dispatcher_unmatched_decisions();
	for (long i = 0; i < match_count; i++) {
		size_t index;
		json_t *filtered;
		json_array_foreach(matches[i].filtered_ids, index, filtered)
			json_array_append_new(unmatched, json_pack("{s:O, s:s, s:s, s:[]}", "signal_id", filtered,
								   "pipeline_id", matches[i].pipeline->id,
								   "reason", skip_reason_name(SKIP_filtered),
								   "tickers"));
		/* Only the pipelines some signal passed the filters of are candidates. */
		if (json_array_size(matches[i].signal_ids) == 0)
			continue;
		struct execution_claim *claim = &claims[claim_count];
		claim_match[claim_count++] = (size_t)i;
		claim->pipeline_id = matches[i].pipeline->id;
		claim->signal_ids = matches[i].signal_ids;
		claim->tickers = matches[i].tickers;
		uuid_t task_id;
		uuid_generate_random(task_id);
		uuid_unparse_lower(task_id, claim->task_id);
	}
	if (dispatcher_db(err, sizeof err) == NULL ||
	    (metrics_add(METRIC_db_queries_total, 1),
	     execution_store_decide_batch(state.db, records, claims, claim_count, unmatched, err,
					  sizeof err)) != 0) {
		atomic_store(&state.postgres_ok, false);
		note_error("dispatcher_claim_failed", err);
		status = -1;
		goto done;
	}
	atomic_store(&state.postgres_ok, true);
	for (size_t i = 0; i < claim_count; i++) {
		if (!claims[i].claimed)
			continue;
		envelopes[envelope_count] =
			celery_execute_pipeline_task(claims[i].pipeline_id, claims[i].signal_ids,
						     claims[i].execution_id, state.daemon->config.redis_queue,
						     claims[i].task_id, err, sizeof err);
		if (envelopes[envelope_count] == NULL) {
			note_error("dispatcher_task_build_failed", err);
			status = -1;
			goto done;
		}
		envelope_count++;
	}
	/*
	 * The claims are made: a Redis failure now must not drop them, or the
	 * pipelines would stay PENDING with no task. Retry the enqueue until it
	 * succeeds or the daemon stops (then the claims stay PENDING; see the
	 * ChangeLog for the reconciler that a later release adds).
	 */
	int64_t backoff = 100;
	while (envelope_count > 0 && task_queue_push(&state.redis, state.daemon->config.redis_url,
								  state.daemon->config.redis_queue, envelopes,
								  envelope_count, err, sizeof err) != 0) {
		atomic_store(&state.redis_ok, false);
		note_error("dispatcher_enqueue_failed", err);
		if (state.stop || state.daemon->stopping) {
			status = -1;
			goto done;
		}
		time_sleep_ms_unless(backoff, &state.stop);
		backoff = backoff * 2 > RETRY_BACKOFF_MAX_MS ? RETRY_BACKOFF_MAX_MS : backoff * 2;
	}
	atomic_store(&state.redis_ok, true);
	clear_error();
	int64_t enqueued = 0;
	for (size_t i = 0; i < claim_count; i++) {
		trace_match_outcome(&matches[claim_match[i]], &claims[i]);
		enum skip_reason reason;
		if (claims[i].claimed)
			enqueued++;
		else if (skip_reason_from_name(claims[i].reason, &reason))
			metrics_skip(reason, 1);
	}
	dispatcher_observe_latency(claims, claim_count);
	size_t index;
	json_t *skip;
	json_array_foreach(unmatched, index, skip) {
		const char *why = json_string_value(json_object_get(skip, "reason"));
		enum skip_reason reason;
		if (skip_reason_from_name(why, &reason))
			metrics_skip(reason, 1);
		trace_emit("skipped", json_string_value(json_object_get(skip, "signal_id")),
			   json_pack("{s:s, s:O}", "reason", why, "tickers", json_object_get(skip, "tickers")));
	}
	metrics_add(METRIC_pipelines_matched_total, match_count);
	metrics_add(METRIC_pipelines_enqueued_total, enqueued);
done:
	json_decref(records);
	json_decref(unmatched);
	for (size_t i = 0; i < envelope_count; i++)
		free(envelopes[i]);
	free(envelopes);
	free(claims);
	free(claim_match);
	batch_matches_free(matches, match_count > 0 ? (size_t)match_count : 0);
	return status;
}

/* Commits the offsets of everything consumed so far: the batch just handled. */
static void dispatcher_commit(void)
{
	rd_kafka_resp_err_t error = rd_kafka_commit(state.consumer, NULL, 0);
	if (error != RD_KAFKA_RESP_ERR_NO_ERROR && error != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_event(LOG_WARN, "kafka_commit_failed", json_pack("{s:s}", "error", rd_kafka_err2str(error)));
}

/*
 * Pauses (or resumes) fetching on every assigned partition. While a batch
 * cannot be decided the consumer keeps polling, which keeps its group
 * membership alive, but fetches nothing new.
 */
static void dispatcher_hold_intake(bool hold)
{
	rd_kafka_topic_partition_list_t *assignment = NULL;
	if (rd_kafka_assignment(state.consumer, &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	if (hold)
		rd_kafka_pause_partitions(state.consumer, assignment);
	else
		rd_kafka_resume_partitions(state.consumer, assignment);
	rd_kafka_topic_partition_list_destroy(assignment);
}

static void dispatcher_flush_batch(void)
{
	double started = metrics_monotonic_seconds();
	int64_t backoff = 100;
	bool held = false;
	while (dispatcher_process_batch() != 0) {
		if (state.stop || state.daemon->stopping) {
			/* Not committed: the next dispatcher of the group replays the batch. */
			batch_clear();
			if (held)
				dispatcher_hold_intake(false);
			return;
		}
		if (!held) {
			dispatcher_hold_intake(true);
			held = true;
		}
		time_sleep_ms_unless(backoff, &state.stop);
		backoff = backoff * 2 > RETRY_BACKOFF_MAX_MS ? RETRY_BACKOFF_MAX_MS : backoff * 2;
		/*
		 * Poll to stay in the group. Whatever was fetched before the pause
		 * joins the held batch: it is decided, and committed, with it.
		 */
		rd_kafka_message_t *message;
		while ((message = rd_kafka_consumer_poll(state.consumer, 0)) != NULL) {
			handle_message(message);
			rd_kafka_message_destroy(message);
		}
	}
	if (held)
		dispatcher_hold_intake(false);
	dispatcher_commit();
	atomic_fetch_add(&state.batches, 1);
	metrics_add(METRIC_batches_processed_total, 1);
	metrics_observe_since(HISTOGRAM_batch_processing_duration_seconds, started);
	atomic_store(&state.last_batch_ms, (long long)(time_monotonic_ms() - state.batch_first_ms));
	batch_clear();
}

static void *dispatcher_loop(void *argument)
{
	(void)argument;
	int64_t refresh_ms = state.daemon->config.dispatcher_cache_refresh_s * 1000;
	int64_t last_attempt_ms = 0;
	bool last_failed = false, reload_requested = false;
	while (!state.stop && !state.daemon->stopping) {
		int64_t now = time_monotonic_ms();
		/* Refresh on schedule; retry a failed load every 2 s. */
		if (pipelines_changed())
			reload_requested = true;
		bool due = state.index_loaded_ms == 0 || now - state.index_loaded_ms >= refresh_ms;
		/* After a failed load, retry every 2 s rather than on every poll. */
		if ((due || reload_requested) && (!last_failed || now - last_attempt_ms >= 2000)) {
			last_attempt_ms = now;
			last_failed = !dispatcher_refresh_cache();
			if (!last_failed)
				reload_requested = false;
		}
		int64_t wait = batch_wait_ms(&state.policy, state.batch_count, state.batch_first_ms, now);
		if (wait < 0 || wait > 100)
			wait = 100;
		rd_kafka_message_t *message = rd_kafka_consumer_poll(state.consumer, (int)wait);
		if (message != NULL) {
			handle_message(message);
			rd_kafka_message_destroy(message);
		}
		if (batch_is_due(&state.policy, state.batch_count, state.batch_first_ms, time_monotonic_ms())) {
			if (state.index == NULL) {
				/* Never decide a batch with no cache at all: hold it until PostgreSQL answers. */
				time_sleep_ms_unless(200, &state.stop);
				continue;
			}
			dispatcher_flush_batch();
		}
	}
	return NULL;
}

int dispatcher_start(struct daemon *daemon, char *err, size_t errsize)
{
	state.daemon = daemon;
	state.stop = 0;
	state.policy.max_signals = (size_t)daemon->config.dispatcher_batch_max_signals;
	state.policy.max_wait_ms = daemon->config.dispatcher_batch_max_wait_ms;
	state.limiter = rate_limiter_new(daemon->config.dispatcher_rate_limit, daemon->config.dispatcher_rate_limit_burst,
					 daemon->config.dispatcher_rate_limits, err, errsize);
	if (state.limiter == NULL)
		return -1;
	state.consumer = kafka_consumer_new(&daemon->config, err, errsize);
	if (state.consumer == NULL) {
		rate_limiter_free(state.limiter);
		state.limiter = NULL;
		return -1;
	}
	if (pthread_create(&state.thread, NULL, dispatcher_loop, NULL) != 0) {
		snprintf(err, errsize, "cannot start the dispatcher thread");
		rd_kafka_destroy(state.consumer);
		rate_limiter_free(state.limiter);
		state.limiter = NULL;
		return -1;
	}
	state.running = true;
	log_event(LOG_INFO, "dispatcher_started",
		  json_pack("{s:s, s:s, s:i, s:i}", "topic", daemon->config.kafka_topic, "group",
			    daemon->config.kafka_group, "batch_max_signals",
			    (int)daemon->config.dispatcher_batch_max_signals, "batch_max_wait_ms",
			    (int)daemon->config.dispatcher_batch_max_wait_ms));
	return 0;
}

void dispatcher_stop(struct daemon *daemon)
{
	(void)daemon;
	if (!state.running)
		return;
	state.stop = 1;
	pthread_join(state.thread, NULL);
	/* Leave the group at once so the partitions move to another dispatcher. */
	rd_kafka_consumer_close(state.consumer);
	rd_kafka_destroy(state.consumer);
	batch_clear();
	free(state.batch);
	free(state.batch_partitions);
	free(state.batch_offsets);
	free(state.batch_limited);
	state.batch_limited = NULL;
	rate_limiter_free(state.limiter);
	state.limiter = NULL;
	state.batch = NULL;
	state.batch_partitions = NULL;
	state.batch_offsets = NULL;
	pipeline_index_free(state.index);
	state.index = NULL;
	if (state.db != NULL)
		PQfinish(state.db);
	if (state.listen_db != NULL)
		PQfinish(state.listen_db);
	state.db = state.listen_db = NULL;
	redisFree(state.redis);
	state.running = false;
}

json_t *dispatcher_info(struct daemon *daemon)
{
	(void)daemon;
	int64_t loaded = state.index_loaded_ms;
	json_t *info = json_pack(
		"{s:I, s:I, s:I, s:I, s:b, s:b, s:I}", "cache_pipelines", (json_int_t)metrics_get(METRIC_cache_size),
		"cache_tickers", (json_int_t)metrics_get(METRIC_cache_tickers), "cache_age_seconds",
		(json_int_t)(loaded == 0 ? -1 : (time_monotonic_ms() - loaded) / 1000), "batches",
		(json_int_t)atomic_load(&state.batches), "postgres_ok", atomic_load(&state.postgres_ok),
		"redis_ok", atomic_load(&state.redis_ok), "last_batch_ms",
		(json_int_t)atomic_load(&state.last_batch_ms));
	pthread_mutex_lock(&state.info_lock);
	if (state.last_error[0] != '\0')
		json_object_set_new(info, "last_error", json_string(state.last_error));
	pthread_mutex_unlock(&state.info_lock);
	return info;
}

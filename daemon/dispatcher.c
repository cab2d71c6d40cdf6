/*
 * The dispatcher role: consumes signals from Kafka in the consumer group
 * and decides them in rounds (daemon/dispatcher_round.c): each round
 * matches what waits against the in-memory pipeline index, claims a
 * PENDING execution per matched pipeline in one statement, enqueues a
 * Celery task per claim, and only then commits its offsets. A crash at
 * any point replays the uncommitted messages; PostgreSQL remembers every
 * signal it decided, so a replay claims nothing twice.
 *
 * One thread does it all, without blocking on PostgreSQL: the decide
 * statement of a round is sent, and the thread goes on consuming while
 * it runs (group commit, dispatcher.batch_mode). Fetching pauses while a
 * round must be retried (PostgreSQL or Redis down), while the task queue
 * is too deep (backpressure) and while too much waits undecided.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dead_letter.h"
#include "dispatcher.h"
#include "dispatcher_cache.h"
#include "execution_store_outbox.h"
#include "log.h"
#include "metrics.h"
#include "skip_reason.h"
#include "task_queue.h"
#include "timeutil.h"
#include "trace.h"

#define RETRY_BACKOFF_MAX_MS 5000
/* Lag, staleness and the queue depth are looked at this often. */
#define HOUSEKEEPING_INTERVAL_MS 250
/* A round being pushed (or waiting to be pushed again) is looked at this often. */
#define ROUND_POLL_MS 1
/* The longest wait for a message or a decision: housekeeping comes round this often. */
#define DECIDING_WAIT_MS 100
/* Messages taken from the consumer before the round is looked at again. */
#define MESSAGES_PER_TURN 10000
/* The wait for the cache's loader, while it holds rounds (after a change, or to swap an index in). */
#define CACHE_HOLD_POLL_MS 2
/*
 * Rounds wait for the load answering an announced change this long at
 * most; then the stale index is used, so that a loader that cannot get an
 * answer (a hung connection) never stops the decisions.
 */
#define CACHE_CHANGE_HOLD_MS 1000

struct dispatcher_state dispatcher = { .info_lock = PTHREAD_MUTEX_INITIALIZER };

void dispatcher_note_error(const char *event, const char *message)
{
	pthread_mutex_lock(&dispatcher.info_lock);
	bool repeated = strcmp(dispatcher.last_error, message) == 0;
	snprintf(dispatcher.last_error, sizeof dispatcher.last_error, "%s", message);
	pthread_mutex_unlock(&dispatcher.info_lock);
	/* An outage is logged when it starts or changes, not on every retry. */
	if (!repeated)
		log_msg(LOG_ERROR, event, "%s", message);
}

void dispatcher_clear_error(void)
{
	pthread_mutex_lock(&dispatcher.info_lock);
	dispatcher.last_error[0] = '\0';
	pthread_mutex_unlock(&dispatcher.info_lock);
}

PGconn *dispatcher_db(char *err, size_t errsize)
{
	/* A new connection knows no prepared statement. */
	return db_ensure_prepared(&dispatcher.db, dispatcher.daemon->config.postgres_url,
				  execution_store_prepare_decide, err, errsize);
}

/* Connects the listening connection, once a second at most while it fails. */
static void listen_connect(void)
{
	int64_t now = time_monotonic_ms();
	if (now - dispatcher.listen_attempt_ms < 1000)
		return;
	dispatcher.listen_attempt_ms = now;
	char err[512];
	dispatcher.listen_db = db_connect(dispatcher.daemon->config.postgres_url, err, sizeof err);
	if (dispatcher.listen_db == NULL)
		return;
	/* The ends of runs only for a memory of them: each is a notification to read. */
	static const char *const channels[] = { "LISTEN sigtrig_pipelines", "LISTEN " LIVE_RUNS_CHANNEL };
	size_t channel_count = dispatcher.live_runs != NULL ? 2 : 1;
	for (size_t i = 0; i < channel_count; i++) {
		PGresult *listen = db_query(dispatcher.listen_db, channels[i], 0, NULL, err, sizeof err);
		if (listen == NULL) {
			log_msg(LOG_WARN, "dispatcher_listen_failed", "%s", err);
			PQfinish(dispatcher.listen_db);
			dispatcher.listen_db = NULL;
			return;
		}
		PQclear(listen);
	}
	/* What it missed before it listened: the pipelines are reloaded, and no run is remembered. */
	dispatcher.pipelines_change_heard = true;
	if (dispatcher.live_runs != NULL)
		live_runs_forget_all(dispatcher.live_runs);
}

/*
 * The notifications come on a connection of their own that does nothing
 * but LISTEN, so no claim or reload can replace it unnoticed. A broken
 * or new listening connection counts as a change: what it missed is
 * reloaded, and the memory of live runs is dropped.
 */
bool dispatcher_hear_notifications(void)
{
	if (dispatcher.listen_db != NULL &&
	    (PQstatus(dispatcher.listen_db) != CONNECTION_OK || PQconsumeInput(dispatcher.listen_db) == 0)) {
		PQfinish(dispatcher.listen_db);
		dispatcher.listen_db = NULL;
		if (dispatcher.live_runs != NULL)
			live_runs_forget_all(dispatcher.live_runs);
	}
	if (dispatcher.listen_db == NULL) {
		listen_connect();
		return false;
	}
	PGnotify *notice;
	while ((notice = PQnotifies(dispatcher.listen_db)) != NULL) {
		if (strcmp(notice->relname, LIVE_RUNS_CHANNEL) != 0)
			dispatcher.pipelines_change_heard = true;
		else if (dispatcher.live_runs != NULL && !live_runs_note_notification(dispatcher.live_runs, notice->extra))
			log_msg(LOG_WARN, "live_runs_notification_unreadable",
				"'%.80s' on " LIVE_RUNS_CHANNEL ": every run forgotten", notice->extra);
		PQfreemem(notice);
	}
	return dispatcher.live_runs != NULL;
}

/* Whether PostgreSQL announced a pipeline change since the last look. */
static bool pipelines_changed(void)
{
	dispatcher_hear_notifications();
	bool changed = dispatcher.pipelines_change_heard;
	dispatcher.pipelines_change_heard = false;
	return changed;
}

/* ---- fetching: paused while any reason holds ---- */

static void dispatcher_set_fetching(bool fetch)
{
	rd_kafka_topic_partition_list_t *assignment = NULL;
	if (rd_kafka_assignment(dispatcher.consumer, &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	if (fetch)
		rd_kafka_resume_partitions(dispatcher.consumer, assignment);
	else
		rd_kafka_pause_partitions(dispatcher.consumer, assignment);
	rd_kafka_topic_partition_list_destroy(assignment);
}

/*
 * Sets or clears one reason to pause. The consumer keeps polling while
 * paused, which keeps its group membership, but fetches nothing new.
 */
static void dispatcher_pause(enum dispatcher_pause reason, bool on)
{
	unsigned before = dispatcher.paused;
	dispatcher.paused = on ? before | (unsigned)reason : before & ~(unsigned)reason;
	if ((before == 0) != (dispatcher.paused == 0))
		dispatcher_set_fetching(dispatcher.paused == 0);
}

/* ---- intake: every message joins the ledger ---- */

static int ledger_reserve(void)
{
	if (dispatcher.ledger_count == dispatcher.ledger_capacity) {
		size_t capacity = dispatcher.ledger_capacity == 0 ? 256 : dispatcher.ledger_capacity * 2;
		struct dispatcher_entry *grown = realloc(dispatcher.ledger, capacity * sizeof *grown);
		if (grown == NULL)
			return -1;
		dispatcher.ledger = grown;
		dispatcher.ledger_capacity = capacity;
	}
	if (dispatcher.signal_count == dispatcher.signal_capacity) {
		size_t capacity = dispatcher.signal_capacity == 0 ? 256 : dispatcher.signal_capacity * 2;
		struct signal *grown = realloc(dispatcher.signals, capacity * sizeof *grown);
		if (grown == NULL)
			return -1;
		dispatcher.signals = grown;
		bool *limited = realloc(dispatcher.signal_limited, capacity * sizeof *limited);
		if (limited == NULL)
			return -1;
		dispatcher.signal_limited = limited;
		double *consumed_at = realloc(dispatcher.signal_consumed_at, capacity * sizeof *consumed_at);
		if (consumed_at == NULL)
			return -1;
		dispatcher.signal_consumed_at = consumed_at;
		dispatcher.signal_capacity = capacity;
	}
	return 0;
}

/* The ledger's entries that are in a round in flight: the first ones. */
static size_t ledger_in_rounds(void)
{
	size_t entries = 0;
	if (dispatcher.round.phase != ROUND_NONE)
		entries += dispatcher.round.entries;
	if (dispatcher.next_round.phase != ROUND_NONE)
		entries += dispatcher.next_round.entries;
	return entries;
}

/* Appends a message; `signal` (taken over) is NULL for one that is not a signal. */
static int ledger_append(const rd_kafka_message_t *message, struct signal *signal, char *dead_letter)
{
	if (ledger_reserve() != 0)
		return -1;
	if (dispatcher.ledger_count == ledger_in_rounds())
		dispatcher.first_waiting_ms = time_monotonic_ms();
	struct dispatcher_entry *entry = &dispatcher.ledger[dispatcher.ledger_count++];
	*entry = (struct dispatcher_entry){ message->partition, message->offset, -1, dead_letter, NULL };
	if (dead_letter != NULL && message->key != NULL)
		entry->dead_letter_key = strndup(message->key, message->key_len);
	if (signal != NULL) {
		entry->signal = (long)dispatcher.signal_count;
		dispatcher.signal_limited[dispatcher.signal_count] =
			!rate_limiter_allow(dispatcher.limiter, signal->source, time_now_seconds());
		dispatcher.signal_consumed_at[dispatcher.signal_count] = metrics_monotonic_seconds();
		dispatcher.signals[dispatcher.signal_count++] = *signal;
	}
	return 0;
}

static void report_offset_reset(const rd_kafka_message_t *message)
{
	/* The log no longer holds our committed position: signals were lost. Say so loudly. */
	metrics_add(METRIC_kafka_offset_resets_total, 1);
	log_event(LOG_ERROR, "kafka_offsets_fell_off_log",
		  json_pack("{s:s, s:i, s:I, s:s}", "topic",
			    message->rkt != NULL ? rd_kafka_topic_name(message->rkt) : "",
			    (int)message->partition, (json_int_t)message->offset, "error",
			    rd_kafka_message_errstr(message)));
}

/* A message that is not a signal: logged, counted, and kept for the dead-letter topic. */
static void intake_invalid(const rd_kafka_message_t *message, const struct signal_error *error)
{
	metrics_add(METRIC_signals_invalid_total, 1);
	metrics_skip(SKIP_invalid, 1);
	char reason[320];
	signal_error_format(error, reason, sizeof reason);
	log_event(LOG_WARN, "signal_invalid",
		  json_pack("{s:i, s:I, s:s}", "partition", (int)message->partition, "offset",
			    (json_int_t)message->offset, "reason", reason));
	trace_emit("skipped", "", json_pack("{s:s, s:s}", "reason", skip_reason_name(SKIP_invalid), "detail", reason));
	struct dead_letter_origin origin = { rd_kafka_topic_name(message->rkt), message->partition, message->offset,
					     message->key, message->key_len };
	char *letter = dead_letter_message(&origin, message->payload, message->len, reason, time_now_seconds());
	if (letter == NULL || ledger_append(message, NULL, letter) != 0) {
		free(letter);
		log_msg(LOG_ERROR, "dispatcher_out_of_memory", "message at %d/%lld not dead-lettered",
			(int)message->partition, (long long)message->offset);
	}
}

static void handle_message(const rd_kafka_message_t *message)
{
	if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
			return;
		if (message->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
		    message->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
			report_offset_reset(message);
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
		intake_invalid(message, &error);
		return;
	}
	if (trace_is_listening())
		trace_emit("consumed", signal.signal_id,
			   json_pack("{s:o, s:i, s:I}", "tickers", daemon_signal_tickers(&signal), "partition",
				     (int)message->partition, "offset", (json_int_t)message->offset));
	if (ledger_append(message, &signal, NULL) != 0) {
		log_msg(LOG_ERROR, "dispatcher_out_of_memory", "signal %s dropped from the batch", signal.signal_id);
		signal_free(&signal);
	}
}

/* ---- the end of a round: commit its offsets, forget its messages ---- */

/*
 * Commits, per partition, past the last message of the round: everything
 * before it on that partition was in this round or an earlier one.
 * Asynchronous: a commit lost in a crash only replays messages that are
 * decided already, and the replay claims nothing.
 */
static void dispatcher_commit_round(size_t entries)
{
	rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(8);
	for (size_t e = 0; e < entries; e++) {
		const struct dispatcher_entry *entry = &dispatcher.ledger[e];
		rd_kafka_topic_partition_t *known = rd_kafka_topic_partition_list_find(
			offsets, dispatcher.daemon->config.kafka_topic, entry->partition);
		if (known == NULL)
			known = rd_kafka_topic_partition_list_add(offsets, dispatcher.daemon->config.kafka_topic,
								  entry->partition);
		if (entry->offset + 1 > known->offset)
			known->offset = entry->offset + 1;
	}
	rd_kafka_resp_err_t error =
		offsets->cnt > 0 ? rd_kafka_commit(dispatcher.consumer, offsets, 1) : RD_KAFKA_RESP_ERR_NO_ERROR;
	if (error != RD_KAFKA_RESP_ERR_NO_ERROR && error != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_event(LOG_WARN, "kafka_commit_failed", json_pack("{s:s}", "error", rd_kafka_err2str(error)));
	rd_kafka_topic_partition_list_destroy(offsets);
}

/* Drops the first `entries` messages (and their signals); the rest move to the front. */
static void ledger_drop_front(size_t entries, size_t signals)
{
	for (size_t e = 0; e < entries; e++) {
		free(dispatcher.ledger[e].dead_letter);
		free(dispatcher.ledger[e].dead_letter_key);
	}
	for (size_t s = 0; s < signals; s++)
		signal_free(&dispatcher.signals[s]);
	dispatcher.ledger_count -= entries;
	dispatcher.signal_count -= signals;
	/* Nothing left, nothing to move: the arrays may never have been allocated (memmove of NULL is undefined). */
	if (dispatcher.ledger_count > 0)
		memmove(dispatcher.ledger, dispatcher.ledger + entries,
			dispatcher.ledger_count * sizeof *dispatcher.ledger);
	if (dispatcher.signal_count > 0) {
		memmove(dispatcher.signals, dispatcher.signals + signals,
			dispatcher.signal_count * sizeof *dispatcher.signals);
		memmove(dispatcher.signal_limited, dispatcher.signal_limited + signals,
			dispatcher.signal_count * sizeof *dispatcher.signal_limited);
		memmove(dispatcher.signal_consumed_at, dispatcher.signal_consumed_at + signals,
			dispatcher.signal_count * sizeof *dispatcher.signal_consumed_at);
	}
	for (size_t e = 0; e < dispatcher.ledger_count; e++)
		if (dispatcher.ledger[e].signal >= 0)
			dispatcher.ledger[e].signal -= (long)signals;
}

/* The front round is done: its offsets committed, its messages forgotten; the next one moves up. */
static void dispatcher_finish_round(void)
{
	const struct dispatcher_round *round = &dispatcher.round;
	size_t entries = round->entries, signals = round->signals;
	int64_t first_ms = round->first_ms;
	dispatcher_commit_round(entries);
	dispatcher_round_clear(&dispatcher.round);
	ledger_drop_front(entries, signals);
	dispatcher.round = dispatcher.next_round;
	memset(&dispatcher.next_round, 0, sizeof dispatcher.next_round);
	if (dispatcher.round.phase != ROUND_NONE) {
		dispatcher.round.first_entry -= entries;
		dispatcher.round.first_signal -= signals;
	}
	atomic_fetch_add(&dispatcher.batches, 1);
	atomic_store(&dispatcher.last_batch_ms, (long long)(time_monotonic_ms() - first_ms));
	dispatcher.retry_backoff_ms = 0;
	dispatcher_pause(PAUSE_RETRY, false);
}

/* A round failed: its messages wait, and fetching stops until a retry succeeds. */
static void dispatcher_schedule_retry(void)
{
	int64_t backoff = dispatcher.retry_backoff_ms == 0 ? 100 : dispatcher.retry_backoff_ms * 2;
	dispatcher.retry_backoff_ms = backoff > RETRY_BACKOFF_MAX_MS ? RETRY_BACKOFF_MAX_MS : backoff;
	dispatcher.retry_at_ms = time_monotonic_ms() + dispatcher.retry_backoff_ms;
	dispatcher_pause(PAUSE_RETRY, true);
}

/* ---- housekeeping: lag, staleness, backpressure, the outbox records ---- */

static void dispatcher_measure_lag(void)
{
	rd_kafka_topic_partition_list_t *assignment = NULL;
	if (rd_kafka_assignment(dispatcher.consumer, &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	rd_kafka_position(dispatcher.consumer, assignment);
	int64_t lag = 0;
	for (int i = 0; i < assignment->cnt; i++) {
		const rd_kafka_topic_partition_t *partition = &assignment->elems[i];
		int64_t low, high;
		/* The watermarks of the last fetch: no request to the broker. */
		if (rd_kafka_get_watermark_offsets(dispatcher.consumer, partition->topic, partition->partition, &low,
						   &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
		    high < 0)
			continue;
		int64_t position = partition->offset >= 0 ? partition->offset : low;
		if (high > position)
			lag += high - position;
	}
	rd_kafka_topic_partition_list_destroy(assignment);
	/* What was fetched but not decided is lag too: it is not committed. */
	metrics_set(METRIC_kafka_consumer_lag, lag + (int64_t)dispatcher.ledger_count);
}

/*
 * Which bounds of the task queue the last look found reached, "" for
 * none: "depth", "age" or "depth,age". While paused (`half`), the depth
 * counts as reached until it is down to half of its bound.
 */
static const char *queue_bounds_reached(const struct config *config, long long depth, int64_t age_ms,
					bool half)
{
	long depth_bound = config->dispatcher_backpressure_queue_depth;
	long age_bound = config->dispatcher_backpressure_queue_age_ms;
	bool deep = depth_bound > 0 && depth >= (half ? depth_bound / 2 + 1 : depth_bound);
	/*
	 * No half for the age: while the intake is paused no task joins the
	 * queue and every waiting one keeps ageing, so "down to half" would
	 * only come when the queue is empty.
	 */
	bool old = age_bound > 0 && age_ms >= age_bound;
	return deep && old ? "depth,age" : deep ? "depth" : old ? "age" : "";
}

/*
 * Backpressure: the partitions pause while the queue is at a bound (its
 * depth, or the age of its oldest task: workers behind), and resume once
 * it is down to half of every bound set.
 */
static void dispatcher_check_backpressure(void)
{
	const struct config *config = &dispatcher.daemon->config;
	bool with_age = config->dispatcher_backpressure_queue_age_ms > 0;
	if (config->dispatcher_backpressure_queue_depth <= 0 && !with_age)
		return;
	char err[512];
	struct task_queue_state queue;
	if (task_queue_look(&dispatcher.redis, config->redis_url, config->redis_queue, with_age, &queue, err,
			    sizeof err) != 0)
		return; /* Redis down: the rounds' own pushes report it and hold the intake. */
	/* Another machine's clock may be a little ahead: a task is never younger than new. */
	int64_t age_ms = queue.oldest_sent_ms > 0 ? (int64_t)(time_now_seconds() * 1000) - queue.oldest_sent_ms : 0;
	if (age_ms < 0)
		age_ms = 0;
	atomic_store(&dispatcher.queue_depth, queue.depth);
	atomic_store(&dispatcher.queue_age_ms, age_ms);
	metrics_set(METRIC_task_queue_depth, queue.depth);
	metrics_set(METRIC_task_queue_oldest_age_milliseconds, age_ms);
	bool on = atomic_load(&dispatcher.backpressure);
	const char *reached = queue_bounds_reached(config, queue.depth, age_ms, on);
	if (!on && reached[0] != '\0') {
		atomic_store(&dispatcher.backpressure, true);
		metrics_set(METRIC_dispatcher_backpressure, 1);
		metrics_add(METRIC_dispatcher_backpressure_pauses_total, 1);
		dispatcher_pause(PAUSE_BACKPRESSURE, true);
		log_event(LOG_WARN, "dispatcher_backpressure_on",
			  json_pack("{s:s, s:s, s:I, s:I, s:i, s:i}", "queue", config->redis_queue, "reached", reached,
				    "depth", (json_int_t)queue.depth, "oldest_age_ms", (json_int_t)age_ms, "bound",
				    (int)config->dispatcher_backpressure_queue_depth, "age_bound_ms",
				    (int)config->dispatcher_backpressure_queue_age_ms));
	} else if (on && reached[0] == '\0') {
		atomic_store(&dispatcher.backpressure, false);
		metrics_set(METRIC_dispatcher_backpressure, 0);
		dispatcher_pause(PAUSE_BACKPRESSURE, false);
		log_event(LOG_INFO, "dispatcher_backpressure_off",
			  json_pack("{s:s, s:I, s:I}", "queue", config->redis_queue, "depth", (json_int_t)queue.depth,
				    "oldest_age_ms", (json_int_t)age_ms));
	}
}

/*
 * The outbox records of the last pushes ride along with the next round's
 * statement; when no round comes for a while, they get one of their own,
 * well before the reconciler would push those tasks again.
 */
static void dispatcher_flush_outbox_records(int64_t now)
{
	if (json_array_size(dispatcher.unmarked) == 0 || dispatcher.round.phase != ROUND_NONE ||
	    now - dispatcher.first_waiting_ms < 1000 || dispatcher.ledger_count > 0)
		return;
	char err[512];
	size_t count = json_array_size(dispatcher.unmarked);
	const char **ids = calloc(count, sizeof *ids);
	if (ids == NULL || dispatcher_db(err, sizeof err) == NULL) {
		free(ids);
		return;
	}
	for (size_t i = 0; i < count; i++)
		ids[i] = json_string_value(json_array_get(dispatcher.unmarked, i));
	metrics_add(METRIC_db_queries_total, 1);
	if (execution_store_mark_rounds_pushed(dispatcher.db, ids, count, err, sizeof err) == 0)
		json_array_clear(dispatcher.unmarked);
	free(ids);
}

/* Drops what the memory of live runs no longer needs, keeping what the rounds in flight may note against. */
static void dispatcher_prune_live_runs(int64_t now)
{
	if (dispatcher.live_runs == NULL)
		return;
	uint64_t oldest = live_runs_sequence(dispatcher.live_runs);
	const struct dispatcher_round *rounds[] = { &dispatcher.round, &dispatcher.next_round };
	for (size_t i = 0; i < 2; i++)
		if (rounds[i]->phase != ROUND_NONE && rounds[i]->live_memory && rounds[i]->live_sequence < oldest)
			oldest = rounds[i]->live_sequence;
	live_runs_prune(dispatcher.live_runs, oldest, now);
	metrics_set(METRIC_dispatcher_live_runs_known, (int64_t)live_runs_count(dispatcher.live_runs, now));
}

static void dispatcher_housekeeping(int64_t now)
{
	if (now < dispatcher.next_housekeeping_ms)
		return;
	dispatcher.next_housekeeping_ms = now + HOUSEKEEPING_INTERVAL_MS;
	int64_t loaded = dispatcher.index_loaded_ms;
	metrics_set(METRIC_cache_stale_seconds, loaded == 0 ? 0 : (now - loaded) / 1000);
	metrics_set(METRIC_dispatcher_backlog, (int64_t)dispatcher.ledger_count);
	dispatcher_measure_lag();
	dispatcher_check_backpressure();
	dispatcher_prune_live_runs(now);
	dispatcher_flush_outbox_records(now);
	long backlog = dispatcher.daemon->config.dispatcher_backlog_max_signals;
	if (dispatcher.ledger_count >= (size_t)backlog)
		dispatcher_pause(PAUSE_BACKLOG, true);
	else if (dispatcher.ledger_count <= (size_t)backlog / 2)
		dispatcher_pause(PAUSE_BACKLOG, false);
}

/* ---- the loop ---- */

/* Whether the cache should be reloaded now: due or announced, and not just failed. */
static bool dispatcher_refresh_wanted(int64_t now)
{
	int64_t refresh_ms = dispatcher.daemon->config.dispatcher_cache_refresh_s * 1000;
	bool due = dispatcher.index_loaded_ms == 0 || now - dispatcher.index_loaded_ms >= refresh_ms;
	bool change_unanswered = dispatcher.change_generation > dispatcher.installed_generation;
	/* After a failed load, retry every 2 s rather than on every poll. */
	return (due || change_unanswered) &&
	       (!dispatcher.refresh_failed || now - dispatcher.refresh_attempt_ms >= 2000);
}

/* Swaps in the index the loader has ready; only between rounds, which hold pointers into the old one. */
static void dispatcher_install_index(void)
{
	uint64_t generation;
	int64_t loaded_ms;
	struct pipeline_index *fresh = cache_loader_take(&generation, &loaded_ms);
	if (fresh == NULL)
		return;
	cache_loader_retire(dispatcher.index);
	dispatcher.index = fresh;
	dispatcher.installed_generation = generation;
	/* When its query was sent: what the cache reflects, and when the next reload is due. */
	dispatcher.index_loaded_ms = loaded_ms;
	dispatcher.refresh_failed = false;
	atomic_store(&dispatcher.postgres_ok, true);
	metrics_add(METRIC_cache_reloads_total, 1);
	metrics_set(METRIC_cache_size, (int64_t)pipeline_index_pipeline_count(fresh));
	metrics_set(METRIC_cache_tickers, (int64_t)pipeline_index_ticker_count(fresh));
	log_event(LOG_DEBUG, "pipeline_cache_refreshed",
		  json_pack("{s:I, s:I}", "pipelines", (json_int_t)pipeline_index_pipeline_count(fresh), "tickers",
			    (json_int_t)pipeline_index_ticker_count(fresh)));
}

/*
 * Asks the loader (daemon/dispatcher_cache.c) for a reload when one is
 * due or a change was announced, and swaps a loaded index in when no
 * round is in flight. A load that fails leaves the stale index in use.
 */
static void dispatcher_maybe_refresh(int64_t now)
{
	if (pipelines_changed()) {
		/* A load already under way may have read the pipelines before the change: this one starts after. */
		dispatcher.change_generation = cache_loader_request();
		dispatcher.change_hold_until_ms = now + CACHE_CHANGE_HOLD_MS;
		dispatcher.refresh_attempt_ms = now;
	}
	struct cache_loader_status status = cache_loader_status();
	if (status.failed_generation > dispatcher.seen_failed_generation) {
		dispatcher.seen_failed_generation = status.failed_generation;
		dispatcher.refresh_failed = true;
	}
	if (!status.busy && !status.ready && dispatcher_refresh_wanted(now)) {
		dispatcher.refresh_attempt_ms = now;
		cache_loader_request();
	}
	if (status.ready && dispatcher.round.phase == ROUND_NONE)
		dispatcher_install_index();
}

/*
 * Whether no round may start now: with no index at all; while an index
 * waits to be swapped in (the rounds in flight finish first); and while
 * the load answering an announced change runs, so that a pipeline
 * committed before a signal was published is matched against it, for
 * CACHE_CHANGE_HOLD_MS at most. A failed load holds nothing: the stale
 * index is used meanwhile.
 */
static bool dispatcher_cache_holds_rounds(void)
{
	if (dispatcher.index == NULL)
		return true;
	struct cache_loader_status status = cache_loader_status();
	if (status.ready)
		return true;
	uint64_t answered = dispatcher.installed_generation > status.failed_generation ? dispatcher.installed_generation
											: status.failed_generation;
	return dispatcher.change_generation > answered && time_monotonic_ms() < dispatcher.change_hold_until_ms;
}

/* How long the consumer may wait for a message now. */
static int dispatcher_poll_timeout(int64_t now)
{
	if (dispatcher.round.phase != ROUND_NONE)
		return ROUND_POLL_MS;
	int64_t wait;
	if (dispatcher.paused & PAUSE_RETRY)
		wait = dispatcher.retry_at_ms - now;
	else if (dispatcher.ledger_count == 0)
		wait = 100;
	else if (dispatcher_cache_holds_rounds())
		wait = CACHE_HOLD_POLL_MS;
	else if (dispatcher.policy.mode == BATCH_MODE_GROUP)
		wait = 0;
	else
		wait = batch_wait_ms(&dispatcher.policy, dispatcher.ledger_count, dispatcher.first_waiting_ms, now);
	/* Never longer than 100 ms: the loop's housekeeping and NOTIFY checks come round that often. */
	return wait < 0 ? 0 : wait > 100 ? 100 : (int)wait;
}

/*
 * While the front round's tasks are built and pushed, PostgreSQL decides
 * the next one: started here once the front is decided, over what waited
 * meanwhile. Not while the cache holds rounds: an index is swapped in
 * only with no round in flight.
 */
static void dispatcher_start_next_round(int64_t now)
{
	const struct dispatcher_round *front = &dispatcher.round;
	size_t first_entry = front->entries;
	if (dispatcher.next_round.phase != ROUND_NONE || dispatcher.ledger_count == first_entry ||
	    dispatcher_cache_holds_rounds() ||
	    !batch_round_due(&dispatcher.policy, dispatcher.ledger_count - first_entry, dispatcher.first_waiting_ms,
			     false, now))
		return;
	/* A failure clears it and is reported; its messages wait for a later round. */
	if (dispatcher_round_start(&dispatcher.next_round, first_entry, front->signals) != 0)
		dispatcher_schedule_retry();
}

static void dispatcher_step_round(int64_t now)
{
	struct dispatcher_round *front = &dispatcher.round;
	/* The next round's answer is read when it comes, whatever the front does: it frees the connection. */
	if (dispatcher.next_round.phase == ROUND_DECIDING && dispatcher_round_receive(&dispatcher.next_round) < 0)
		dispatcher_schedule_retry();
	if (front->phase == ROUND_DECIDING) {
		int decided = dispatcher_round_receive(front);
		if (decided < 0)
			dispatcher_schedule_retry();
		if (decided != 1)
			return;
	}
	if (front->phase != ROUND_NONE) {
		if (now < dispatcher.retry_at_ms)
			return; /* a push to retry, not yet */
		dispatcher_start_next_round(now);
		int pushed = dispatcher_round_push(front);
		if (pushed == 1)
			dispatcher_finish_round();
		else if (pushed < 0)
			dispatcher_schedule_retry();
		return;
	}
	if (now < dispatcher.retry_at_ms)
		return;
	bool retrying = (dispatcher.paused & PAUSE_RETRY) != 0;
	if (!retrying && !batch_round_due(&dispatcher.policy, dispatcher.ledger_count, dispatcher.first_waiting_ms,
					  false, now))
		return;
	if (dispatcher.ledger_count == 0)
		return;
	dispatcher_maybe_refresh(now);
	/* Never decide with no cache at all: hold until PostgreSQL answers. */
	if (dispatcher_cache_holds_rounds())
		return;
	if (dispatcher_round_start(front, 0, 0) != 0)
		dispatcher_schedule_retry();
}

/*
 * The next message, waiting for it as long as the loop may. While a
 * statement is in flight, waits for a message and for PostgreSQL's answer
 * at once, so that neither waits for the other. `drained`: the consumer's
 * queue was emptied last time (its wake-up fires only when it fills).
 */
static rd_kafka_message_t *dispatcher_next_message(int64_t now, bool drained)
{
	bool deciding = dispatcher.round.phase == ROUND_DECIDING || dispatcher.next_round.phase == ROUND_DECIDING;
	if (!deciding || dispatcher.db == NULL || dispatcher.wakeup.fds[0] < 0)
		return rd_kafka_consumer_poll(dispatcher.consumer, dispatcher_poll_timeout(now));
	rd_kafka_message_t *message = rd_kafka_consumer_poll(dispatcher.consumer, 0);
	if (message != NULL || !drained)
		return message;
	struct pollfd waited[] = { { dispatcher.wakeup.fds[0], POLLIN, 0 }, { PQsocket(dispatcher.db), POLLIN, 0 } };
	poll(waited, 2, DECIDING_WAIT_MS);
	kafka_wakeup_clear(&dispatcher.wakeup);
	return rd_kafka_consumer_poll(dispatcher.consumer, 0);
}

static void *dispatcher_loop(void *argument)
{
	(void)argument;
	bool drained = true;
	while (!dispatcher.stop && !dispatcher.daemon->stopping) {
		int64_t now = time_monotonic_ms();
		dispatcher_maybe_refresh(now);
		dispatcher_housekeeping(now);
		rd_kafka_message_t *message = dispatcher_next_message(now, drained);
		/* Take what is ready at once: a round under load is fed by the thousand, not one per poll. */
		int taken = 0;
		while (message != NULL) {
			handle_message(message);
			rd_kafka_message_destroy(message);
			taken++;
			message = taken < MESSAGES_PER_TURN ? rd_kafka_consumer_poll(dispatcher.consumer, 0) : NULL;
		}
		drained = taken < MESSAGES_PER_TURN;
		dispatcher_step_round(time_monotonic_ms());
	}
	return NULL;
}

/* ---- the role ---- */

int dispatcher_start(struct daemon *daemon, char *err, size_t errsize)
{
	dispatcher.daemon = daemon;
	dispatcher.stop = 0;
	enum batch_mode mode;
	if (!batch_mode_from_name(daemon->config.dispatcher_batch_mode, &mode)) {
		snprintf(err, errsize, "dispatcher.batch_mode: '%s' is not group or fixed",
			 daemon->config.dispatcher_batch_mode);
		return -1;
	}
	dispatcher.policy.mode = mode;
	dispatcher.policy.max_signals = (size_t)(mode == BATCH_MODE_GROUP ? daemon->config.dispatcher_group_max_signals
									 : daemon->config.dispatcher_batch_max_signals);
	dispatcher.policy.max_wait_ms = daemon->config.dispatcher_batch_max_wait_ms;
	dispatcher.limiter = rate_limiter_new(daemon->config.dispatcher_rate_limit,
					      daemon->config.dispatcher_rate_limit_burst,
					      daemon->config.dispatcher_rate_limits, err, errsize);
	if (dispatcher.limiter == NULL)
		return -1;
	dispatcher.unmarked = json_array();
	dispatcher.consumer = kafka_consumer_new(&daemon->config, err, errsize);
	if (dispatcher.consumer == NULL) {
		rate_limiter_free(dispatcher.limiter);
		dispatcher.limiter = NULL;
		return -1;
	}
	if (cache_loader_start(daemon->config.postgres_url, err, errsize) != 0) {
		rd_kafka_destroy(dispatcher.consumer);
		rate_limiter_free(dispatcher.limiter);
		dispatcher.limiter = NULL;
		return -1;
	}
	dispatcher.change_generation = dispatcher.installed_generation = dispatcher.seen_failed_generation = 0;
	/* Without it the loop still works, looking at a statement in flight every millisecond. */
	char wakeup_err[256];
	if (kafka_wakeup_open(dispatcher.consumer, &dispatcher.wakeup, wakeup_err, sizeof wakeup_err) != 0)
		log_msg(LOG_WARN, "dispatcher_wakeup_unavailable", "%s", wakeup_err);
	/* Optional: without it every match asks PostgreSQL, as with dispatcher.live_run_memory_ms = 0. */
	dispatcher.live_runs = NULL;
	if (daemon->config.dispatcher_live_run_memory_ms > 0 &&
	    (dispatcher.live_runs = live_runs_new(daemon->config.dispatcher_live_run_memory_ms)) == NULL)
		log_msg(LOG_WARN, "dispatcher_live_runs_unavailable", "out of memory: every match asks PostgreSQL");
	if (pthread_create(&dispatcher.thread, NULL, dispatcher_loop, NULL) != 0) {
		snprintf(err, errsize, "cannot start the dispatcher thread");
		live_runs_free(dispatcher.live_runs);
		dispatcher.live_runs = NULL;
		cache_loader_stop();
		kafka_wakeup_close(&dispatcher.wakeup);
		rd_kafka_destroy(dispatcher.consumer);
		rate_limiter_free(dispatcher.limiter);
		dispatcher.limiter = NULL;
		return -1;
	}
	dispatcher.running = true;
	log_event(LOG_INFO, "dispatcher_started",
		  json_pack("{s:s, s:s, s:s, s:i, s:i}", "topic", daemon->config.kafka_topic, "group",
			    daemon->config.kafka_group, "batch_mode", daemon->config.dispatcher_batch_mode,
			    "batch_max_signals", (int)dispatcher.policy.max_signals, "batch_max_wait_ms",
			    (int)daemon->config.dispatcher_batch_max_wait_ms));
	return 0;
}

void dispatcher_stop(struct daemon *daemon)
{
	(void)daemon;
	if (!dispatcher.running)
		return;
	dispatcher.stop = 1;
	pthread_join(dispatcher.thread, NULL);
	cache_loader_stop();
	/* Not committed: the next dispatcher of the group replays what was not decided. */
	dispatcher_round_clear(&dispatcher.next_round);
	dispatcher_round_clear(&dispatcher.round);
	kafka_wakeup_close(&dispatcher.wakeup);
	/* Leave the group at once so the partitions move to another dispatcher. */
	rd_kafka_consumer_close(dispatcher.consumer);
	rd_kafka_destroy(dispatcher.consumer);
	ledger_drop_front(dispatcher.ledger_count, dispatcher.signal_count);
	free(dispatcher.ledger);
	free(dispatcher.signals);
	free(dispatcher.signal_limited);
	free(dispatcher.signal_consumed_at);
	dispatcher.ledger = NULL;
	dispatcher.signals = NULL;
	dispatcher.signal_limited = NULL;
	dispatcher.signal_consumed_at = NULL;
	dispatcher.ledger_capacity = dispatcher.signal_capacity = 0;
	json_decref(dispatcher.unmarked);
	dispatcher.unmarked = NULL;
	rate_limiter_free(dispatcher.limiter);
	dispatcher.limiter = NULL;
	pipeline_index_free(dispatcher.index);
	dispatcher.index = NULL;
	live_runs_free(dispatcher.live_runs);
	dispatcher.live_runs = NULL;
	if (dispatcher.db != NULL)
		PQfinish(dispatcher.db);
	if (dispatcher.listen_db != NULL)
		PQfinish(dispatcher.listen_db);
	dispatcher.db = dispatcher.listen_db = NULL;
	redisFree(dispatcher.redis);
	dispatcher.redis = NULL;
	dispatcher.running = false;
}

json_t *dispatcher_info(struct daemon *daemon)
{
	(void)daemon;
	int64_t loaded = dispatcher.index_loaded_ms;
	json_t *info = json_pack(
		"{s:s, s:I, s:I, s:I, s:I, s:b, s:b, s:I, s:I, s:b}", "batch_mode",
		dispatcher.daemon != NULL ? dispatcher.daemon->config.dispatcher_batch_mode : "",
		"cache_pipelines", (json_int_t)metrics_get(METRIC_cache_size), "cache_tickers",
		(json_int_t)metrics_get(METRIC_cache_tickers), "cache_age_seconds",
		(json_int_t)(loaded == 0 ? -1 : (time_monotonic_ms() - loaded) / 1000), "batches",
		(json_int_t)atomic_load(&dispatcher.batches), "postgres_ok", atomic_load(&dispatcher.postgres_ok),
		"redis_ok", atomic_load(&dispatcher.redis_ok), "last_batch_ms",
		(json_int_t)atomic_load(&dispatcher.last_batch_ms), "backlog",
		(json_int_t)metrics_get(METRIC_dispatcher_backlog), "backpressure",
		atomic_load(&dispatcher.backpressure));
	long depth_bound = dispatcher.daemon != NULL ? dispatcher.daemon->config.dispatcher_backpressure_queue_depth : 0;
	long age_bound = dispatcher.daemon != NULL ? dispatcher.daemon->config.dispatcher_backpressure_queue_age_ms : 0;
	if (depth_bound > 0 || age_bound > 0)
		json_object_set_new(info, "queue_depth", json_integer(atomic_load(&dispatcher.queue_depth)));
	if (depth_bound > 0)
		json_object_set_new(info, "backpressure_queue_depth", json_integer(depth_bound));
	if (age_bound > 0) {
		json_object_set_new(info, "queue_oldest_age_ms", json_integer(atomic_load(&dispatcher.queue_age_ms)));
		json_object_set_new(info, "backpressure_queue_age_ms", json_integer(age_bound));
	}
	pthread_mutex_lock(&dispatcher.info_lock);
	if (dispatcher.last_error[0] != '\0')
		json_object_set_new(info, "last_error", json_string(dispatcher.last_error));
	pthread_mutex_unlock(&dispatcher.info_lock);
	return info;
}

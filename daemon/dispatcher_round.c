/*
 * One dispatcher round: the messages at the head of the ledger are
 * matched against the pipeline index, decided in one PostgreSQL statement
 * (claims, refusals, decision records, audit rows), their dead letters
 * sent, and the claimed tasks pushed to Redis in one round trip. The
 * statement is sent without waiting, so the dispatcher goes on consuming
 * while PostgreSQL works; dispatcher_round_advance() moves the round on
 * each time the loop comes round.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "celery.h"
#include "db.h"
#include "ids.h"
#include "dispatcher.h"
#include "log.h"
#include "metrics.h"
#include "skip_reason.h"
#include "task_queue.h"
#include "timeutil.h"
#include "trace.h"

/* How long a dead letter may take to be acknowledged before the round is retried. */
#define DEAD_LETTER_TIMEOUT_MS 10000
/*
 * How long PostgreSQL may take to decide a round. Past it the connection
 * is dropped and the round retried: a server that stopped answering (a
 * network partition sends no error) must not hold the dispatcher forever.
 * A replayed decision is harmless: the statement is all or nothing.
 */
#define DECIDE_TIMEOUT_MS 30000

static void trace_claim_outcome(const struct pipeline *pipeline, const struct execution_claim *claim)
{
	bool replayed = !claim->claimed && strcmp(claim->reason, EXECUTION_CLAIM_REPLAYED) == 0;
	size_t index;
	json_t *signal_id;
	/* The events are built only for a trace client: under load they are most of a batch's work. */
	json_array_foreach(trace_is_listening() ? claim->signal_ids : NULL, index, signal_id) {
		const char *id = json_string_value(signal_id);
		if (!replayed)
			trace_emit("matched", id,
				   json_pack("{s:s, s:s, s:O}", "pipeline_id", pipeline->id, "pipeline",
					     pipeline->name, "tickers", claim->tickers));
		if (claim->claimed)
			trace_emit("enqueued", id,
				   json_pack("{s:s, s:s, s:s, s:O}", "pipeline_id", pipeline->id,
					     "execution_id", claim->execution_id, "task_id", claim->task_id,
					     "tickers", claim->tickers));
		else
			trace_emit("skipped", id,
				   json_pack("{s:s, s:s, s:O}", "pipeline_id", pipeline->id, "reason",
					     claim->reason, "tickers", claim->tickers));
	}
}

/* The claim's signal_matched_to_pipeline line, as log_event() would write it. */
static void log_claim_line(struct text_buffer *lines, const struct pipeline *pipeline,
			   const struct execution_claim *claim)
{
	log_line_open(lines, LOG_INFO, "signal_matched_to_pipeline");
	text_buffer_json_string_array(lines, ",\"signal_ids\":", claim->signal_ids);
	text_buffer_json_member(lines, ",\"pipeline_id\":", pipeline->id);
	text_buffer_json_member(lines, ",\"execution_id\":", claim->execution_id);
	text_buffer_json_string_array(lines, ",\"matched_tickers\":", claim->tickers);
	log_line_close(lines);
}

/* The round's skips, one JSON array (or NULL) per signal of the round, by its place; NULL out of memory. */
static json_t **round_skips_by_signal(const struct dispatcher_round *round)
{
	json_t **grouped = calloc(round->signals > 0 ? round->signals : 1, sizeof *grouped);
	size_t index;
	json_t *skip;
	json_array_foreach(grouped != NULL ? round->skips : NULL, index, skip) {
		const json_t *place = json_object_get(round->signal_by_id,
						      json_string_value(json_object_get(skip, "signal_id")));
		if (place == NULL)
			continue;
		json_t **skips = &grouped[json_integer_value(place)];
		if (*skips == NULL)
			*skips = json_array();
		json_array_append(*skips, skip);
	}
	return grouped;
}

/*
 * The round's signals as received, each with its skips (`grouped`, from
 * round_skips_by_signal()), for the signals table; NULL out of memory.
 */
static struct decided_signal *round_signal_records(const struct dispatcher_round *round, json_t *const *grouped,
						   size_t *count)
{
	struct decided_signal *records = calloc(round->signals > 0 ? round->signals : 1, sizeof *records);
	*count = 0;
	for (size_t e = 0; records != NULL && e < round->entries; e++) {
		const struct dispatcher_entry *entry = &dispatcher.ledger[round->first_entry + e];
		if (entry->signal < (long)round->first_signal ||
		    (size_t)entry->signal >= round->first_signal + round->signals)
			continue;
		records[(*count)++] = (struct decided_signal){ &dispatcher.signals[entry->signal], entry->partition,
							       entry->offset,
							       grouped[(size_t)entry->signal - round->first_signal] };
	}
	return records;
}

static void skips_by_signal_free(json_t **grouped, size_t signals)
{
	for (size_t i = 0; grouped != NULL && i < signals; i++)
		json_decref(grouped[i]);
	free(grouped);
}

/*
 * The decisions made before the database: each signal no pipeline watches,
 * and each one its source's rate limit refused. Recorded too, so that
 * every signal has one.
 */
static json_t *round_skips_before_database(const struct dispatcher_round *round)
{
	json_t *skips = json_array();
	for (size_t s = round->first_signal; s < round->first_signal + round->signals; s++) {
		const struct signal *signal = &dispatcher.signals[s];
		enum skip_reason reason = SKIP_rate_limited;
		bool skipped = dispatcher.signal_limited[s];
		if (!skipped) {
			bool matched = false;
			for (size_t t = 0; t < signal->ticker_count && !matched; t++) {
				size_t postings;
				pipeline_index_lookup(dispatcher.index, signal->tickers[t].ticker, &postings);
				matched = postings > 0;
			}
			skipped = !matched;
			reason = SKIP_no_matching_pipeline;
		}
		if (skipped)
			json_array_append_new(skips, json_pack("{s:s, s:n, s:s, s:o}", "signal_id",
							       signal->signal_id, "pipeline_id", "reason",
							       skip_reason_name(reason), "tickers",
							       daemon_signal_tickers(signal)));
	}
	return skips;
}

/* The round's signal called signal_id, through the round's id map; NULL when none. */
static const struct signal *round_signal(const struct dispatcher_round *round, const char *signal_id)
{
	const json_t *index = json_object_get(round->signal_by_id, signal_id);
	return index != NULL ? &dispatcher.signals[round->first_signal + (size_t)json_integer_value(index)] : NULL;
}

static bool signal_names_ticker(const struct signal *signal, const char *ticker)
{
	for (size_t t = 0; signal != NULL && t < signal->ticker_count; t++)
		if (strcmp(signal->tickers[t].ticker, ticker) == 0)
			return true;
	return false;
}

static void claim_init(struct execution_claim *claim, const struct pipeline *pipeline, json_t *signal_ids,
		       json_t *tickers, const char *claim_key)
{
	memset(claim, 0, sizeof *claim);
	claim->pipeline_id = pipeline->id;
	claim->signal_ids = signal_ids;
	claim->tickers = tickers;
	claim->claim_key = claim_key;
	ids_random_uuid(claim->task_id);
}

/*
 * Whether the claim key has a run the dispatcher knows to be live
 * (src/live_runs.h): then its signals are skipped as already running
 * here, and no claim of it is sent to PostgreSQL.
 */
static bool round_skip_known_live(struct dispatcher_round *round, const struct pipeline *pipeline,
				  const char *claim_key, const json_t *signal_ids, json_t *tickers, int64_t now)
{
	if (!round->live_memory || !live_runs_known(dispatcher.live_runs, pipeline->id, claim_key, now))
		return false;
	size_t index;
	json_t *id;
	json_array_foreach(signal_ids, index, id)
		json_array_append_new(round->skips, json_pack("{s:O, s:s, s:s, s:O}", "signal_id", id, "pipeline_id",
							      pipeline->id, "reason",
							      skip_reason_name(SKIP_already_running), "tickers",
							      tickers));
	round->skipped_from_memory++;
	return true;
}

/*
 * A claim per matched pipeline, or per matched ticker of a pipeline whose
 * claim_scope is "ticker" (with the signals of that ticker alone). Signals
 * a pipeline's filters kept out become skips, and so do those of a claim
 * key known to be live. Returns 0, or -1 out of memory.
 */
static int round_build_claims(struct dispatcher_round *round)
{
	int64_t now = time_monotonic_ms();
	size_t capacity = 0;
	for (long i = 0; i < round->match_count; i++)
		capacity += round->matches[i].pipeline->claim_scope == PIPELINE_CLAIM_TICKER
				    ? json_array_size(round->matches[i].tickers)
				    : 1;
	round->claims = calloc(capacity > 0 ? capacity : 1, sizeof *round->claims);
	round->claim_pipelines = calloc(capacity > 0 ? capacity : 1, sizeof *round->claim_pipelines);
	if (round->claims == NULL || round->claim_pipelines == NULL)
		return -1;
	for (long i = 0; i < round->match_count; i++) {
		const struct batch_match *match = &round->matches[i];
		size_t index;
		json_t *item;
		json_array_foreach(match->filtered_ids, index, item)
			json_array_append_new(round->skips, json_pack("{s:O, s:s, s:s, s:[]}", "signal_id", item,
								      "pipeline_id", match->pipeline->id, "reason",
								      skip_reason_name(SKIP_filtered), "tickers"));
		/* Only the pipelines some signal passed the filters of are candidates. */
		if (json_array_size(match->signal_ids) == 0)
			continue;
		if (match->pipeline->claim_scope != PIPELINE_CLAIM_TICKER) {
			if (round_skip_known_live(round, match->pipeline, "", match->signal_ids, match->tickers, now))
				continue;
			round->claim_pipelines[round->claim_count] = match->pipeline;
			claim_init(&round->claims[round->claim_count++], match->pipeline,
				   json_incref(match->signal_ids), json_incref(match->tickers), NULL);
			continue;
		}
		json_array_foreach(match->tickers, index, item) {
			const char *ticker = json_string_value(item);
			json_t *ids = json_array();
			size_t k;
			json_t *id;
			json_array_foreach(match->signal_ids, k, id)
				if (signal_names_ticker(round_signal(round, json_string_value(id)), ticker))
					json_array_append(ids, id);
			json_t *tickers = json_pack("[s]", ticker);
			if (round_skip_known_live(round, match->pipeline, ticker, ids, tickers, now)) {
				json_decref(ids);
				json_decref(tickers);
				continue;
			}
			round->claim_pipelines[round->claim_count] = match->pipeline;
			claim_init(&round->claims[round->claim_count++], match->pipeline, ids, tickers,
				   json_string_value(json_array_get(tickers, 0)));
		}
	}
	return 0;
}

/* Sends the dead letters of the round's messages that are not signals. */
static int round_send_dead_letters(struct dispatcher_round *round, char *err, size_t errsize)
{
	size_t letters = 0;
	for (size_t e = round->first_entry; e < round->first_entry + round->entries; e++)
		letters += dispatcher.ledger[e].dead_letter != NULL;
	if (letters == 0)
		return 0;
	round->letters_sent_ms = time_monotonic_ms();
	round->deliveries = calloc(letters, sizeof *round->deliveries);
	if (round->deliveries == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	for (size_t e = round->first_entry; e < round->first_entry + round->entries; e++) {
		const struct dispatcher_entry *entry = &dispatcher.ledger[e];
		if (entry->dead_letter == NULL)
			continue;
		if (kafka_produce(dispatcher.daemon->producer, dispatcher.daemon->config.kafka_dead_letter_topic,
				  entry->dead_letter_key, entry->dead_letter, strlen(entry->dead_letter),
				  &round->deliveries[round->delivery_count], NULL, NULL, err, errsize) != 0)
			return -1;
		round->delivery_count++;
	}
	return 0;
}

static void round_fail(struct dispatcher_round *round, const char *event, const char *err)
{
	dispatcher_note_error(event, err);
	dispatcher_round_clear(round);
}

int dispatcher_round_start(struct dispatcher_round *round, size_t first_entry, size_t first_signal)
{
	char err[512];
	dispatcher_round_clear(round);
	round->first_entry = first_entry;
	round->first_signal = first_signal;
	round->entries = batch_round_size(&dispatcher.policy, dispatcher.ledger_count - first_entry);
	for (size_t e = first_entry; e < first_entry + round->entries; e++)
		if (dispatcher.ledger[e].signal >= 0)
			round->signals = (size_t)dispatcher.ledger[e].signal + 1 - first_signal;
	round->first_ms = dispatcher.first_waiting_ms;
	ids_time_ordered_uuid(round->id);
	round->started = metrics_monotonic_seconds();
	round->skips = json_array();
	round->signal_by_id = json_object();
	for (size_t i = 0; i < round->signals; i++)
		json_object_set_new(round->signal_by_id, dispatcher.signals[first_signal + i].signal_id,
				    json_integer((json_int_t)i));
	if (round_send_dead_letters(round, err, sizeof err) != 0) {
		round_fail(round, "dead_letter_failed", err);
		return -1;
	}
	round->phase = ROUND_DECIDED;
	if (round->signals == 0)
		return 0; /* only messages that are not signals: nothing to decide */
	/* What ended meanwhile is heard first: the memory of live runs is as fresh as it can be. */
	round->live_memory = dispatcher_hear_notifications();
	if (round->live_memory)
		round->live_sequence = live_runs_sequence(dispatcher.live_runs);
	/* Rate-limited signals are decided already: only the others are matched (shallow copies). */
	struct signal *admitted = calloc(round->signals, sizeof *admitted);
	size_t admitted_count = 0;
	for (size_t s = first_signal; admitted != NULL && s < first_signal + round->signals; s++)
		if (!dispatcher.signal_limited[s])
			admitted[admitted_count++] = dispatcher.signals[s];
	round->match_count = admitted != NULL ? batch_match_signals(dispatcher.index, admitted, admitted_count,
								     &round->matches)
					      : -1;
	free(admitted);
	if (round->match_count < 0 || round_build_claims(round) != 0) {
		round_fail(round, "dispatcher_batch_failed", "out of memory matching the batch");
		return -1;
	}
	json_t *skips = round_skips_before_database(round);
	json_array_extend(round->skips, skips);
	json_decref(skips);
	size_t record_count;
	json_t **grouped = round_skips_by_signal(round);
	struct decided_signal *records = grouped != NULL ? round_signal_records(round, grouped, &record_count) : NULL;
	PGconn *db = records != NULL ? dispatcher_db(err, sizeof err) : NULL;
	if (records == NULL)
		snprintf(err, sizeof err, "out of memory recording the batch's signals");
	metrics_add(METRIC_db_queries_total, 1);
	int sent = db != NULL ? execution_store_decide_batch_send(db, records, record_count, round->claims,
								  round->claim_count, round->id, dispatcher.unmarked,
								  err, sizeof err)
			      : -1;
	free(records);
	skips_by_signal_free(grouped, round->signals);
	if (sent != 0) {
		atomic_store(&dispatcher.postgres_ok, false);
		round_fail(round, "dispatcher_claim_failed", err);
		return -1;
	}
	/* The outbox records that ride along: written when the statement is. */
	round->records_sent = json_array_size(dispatcher.unmarked);
	round->phase = ROUND_DECIDING;
	round->sent_ms = time_monotonic_ms();
	return 0;
}

/*
 * What the answer says is live: each claim made, and each refused because
 * a run of its key is live. Not what ended since the statement was sent:
 * live_runs_note_live() checks that against the round's sequence.
 */
static void round_remember_live_runs(const struct dispatcher_round *round)
{
	if (!round->live_memory)
		return;
	int64_t now = time_monotonic_ms();
	const char *already_running = skip_reason_name(SKIP_already_running);
	for (size_t i = 0; i < round->claim_count; i++) {
		const struct execution_claim *claim = &round->claims[i];
		if (claim->claimed || strcmp(claim->reason, already_running) == 0)
			live_runs_note_live(dispatcher.live_runs, claim->pipeline_id,
					    claim->claim_key != NULL ? claim->claim_key : "", round->live_sequence, now);
	}
}

/* The decision has come: the outbox records that rode along are written. */
static int round_read_decision(struct dispatcher_round *round, char *err, size_t errsize)
{
	if (execution_store_decide_batch_receive(dispatcher.db, round->claims, round->claim_count, err,
						 errsize) != 0)
		return -1;
	/* Only those sent with it: a round pushed since then rides with the next statement. */
	for (size_t i = 0; i < round->records_sent; i++)
		json_array_remove(dispatcher.unmarked, 0);
	round->records_sent = 0;
	round_remember_live_runs(round);
	return 0;
}

static void round_free_envelopes(struct dispatcher_round *round)
{
	for (size_t i = 0; i < round->envelope_count; i++)
		free(round->envelopes[i]);
	free(round->envelopes);
	round->envelopes = NULL;
	round->envelope_count = 0;
}

/* The claimed tasks' envelopes; none when one cannot be built. */
static int round_build_envelopes(struct dispatcher_round *round, char *err, size_t errsize)
{
	round->envelopes = calloc(round->claim_count > 0 ? round->claim_count : 1, sizeof *round->envelopes);
	if (round->envelopes == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < round->claim_count; i++) {
		const struct execution_claim *claim = &round->claims[i];
		if (!claim->claimed)
			continue;
		char task_id[EXECUTION_ID_LENGTH + 1];
		memcpy(task_id, claim->task_id, sizeof task_id);
		round->envelopes[round->envelope_count] = celery_execute_pipeline_task(
			claim->pipeline_id, claim->signal_ids, claim->execution_id,
			dispatcher.daemon->config.redis_queue, task_id, err, errsize);
		if (round->envelopes[round->envelope_count] == NULL) {
			round_free_envelopes(round);
			return -1;
		}
		round->envelope_count++;
	}
	return 0;
}

/*
 * signal_to_enqueue_seconds and signal_consumed_to_enqueue_seconds, once
 * per signal that started at least one run.
 */
static void round_observe_latency(const struct dispatcher_round *round)
{
	double now = time_now_seconds(), now_monotonic = metrics_monotonic_seconds();
	bool *observed = calloc(round->signals > 0 ? round->signals : 1, sizeof *observed);
	for (size_t i = 0; observed != NULL && i < round->claim_count; i++) {
		if (!round->claims[i].claimed)
			continue;
		size_t index;
		json_t *id;
		json_array_foreach(round->claims[i].signal_ids, index, id) {
			const struct signal *signal = round_signal(round, json_string_value(id));
			size_t place = signal != NULL ? (size_t)(signal - dispatcher.signals) : 0;
			if (signal == NULL || observed[place - round->first_signal])
				continue;
			observed[place - round->first_signal] = true;
			metrics_observe(HISTOGRAM_signal_to_enqueue_seconds, fmax(0, now - signal->timestamp));
			metrics_observe(HISTOGRAM_signal_consumed_to_enqueue_seconds,
					fmax(0, now_monotonic - dispatcher.signal_consumed_at[place]));
		}
	}
	free(observed);
}

/* Traces, log lines and metrics of a round whose every decision is durable. */
static void round_report(const struct dispatcher_round *round)
{
	int64_t enqueued = 0, replayed = 0;
	bool logging = log_enabled(LOG_INFO);
	struct text_buffer lines = { 0 };
	for (size_t i = 0; i < round->claim_count; i++) {
		const struct execution_claim *claim = &round->claims[i];
		trace_claim_outcome(round->claim_pipelines[i], claim);
		enum skip_reason reason;
		if (claim->claimed) {
			if (logging)
				log_claim_line(&lines, round->claim_pipelines[i], claim);
			enqueued++;
		} else if (strcmp(claim->reason, EXECUTION_CLAIM_REPLAYED) == 0) {
			replayed++;
		} else if (skip_reason_from_name(claim->reason, &reason)) {
			metrics_skip(reason, 1);
		}
	}
	log_write_lines(&lines);
	free(lines.data);
	if (enqueued > 0)
		json_array_append_new(dispatcher.unmarked, json_string(round->id));
	round_observe_latency(round);
	size_t index;
	json_t *skip;
	bool tracing = trace_is_listening();
	json_array_foreach(round->skips, index, skip) {
		const char *why = json_string_value(json_object_get(skip, "reason"));
		enum skip_reason reason;
		/* Those skipped from the memory of live runs are counted per pipeline below, as claims are. */
		if (skip_reason_from_name(why, &reason) && reason != SKIP_already_running)
			metrics_skip(reason, 1);
		if (tracing)
			trace_emit("skipped", json_string_value(json_object_get(skip, "signal_id")),
				   json_pack("{s:s, s:O, s:O}", "reason", why, "pipeline_id",
					     json_object_get(skip, "pipeline_id"), "tickers",
					     json_object_get(skip, "tickers")));
	}
	metrics_skip(SKIP_already_running, (int64_t)round->skipped_from_memory);
	metrics_add(METRIC_pipelines_skipped_from_memory_total, (int64_t)round->skipped_from_memory);
	metrics_add(METRIC_pipelines_matched_total, round->match_count > 0 ? round->match_count : 0);
	metrics_add(METRIC_pipelines_enqueued_total, enqueued);
	metrics_add(METRIC_pipelines_replayed_total, replayed);
	metrics_add(METRIC_signals_dead_lettered_total, (int64_t)round->delivery_count);
	metrics_add(METRIC_batches_processed_total, 1);
	metrics_observe_since(HISTOGRAM_batch_processing_duration_seconds, round->started);
}

/* 1 when every dead letter is acknowledged, 0 while some are not, -1 when one failed or took too long. */
static int round_dead_letters_done(const struct dispatcher_round *round, char *err, size_t errsize)
{
	for (size_t i = 0; i < round->delivery_count; i++) {
		int done = kafka_delivery_poll(&round->deliveries[i], err, errsize);
		if (done < 0)
			return -1;
		if (done == 0) {
			if (time_monotonic_ms() - round->letters_sent_ms < DEAD_LETTER_TIMEOUT_MS)
				return 0;
			snprintf(err, errsize, "the dead-letter topic did not acknowledge within %d ms",
				 DEAD_LETTER_TIMEOUT_MS);
			return -1;
		}
	}
	return 1;
}

/* Waits out (briefly) the deliveries librdkafka still references, and forgets them. */
static void round_forget_deliveries(struct dispatcher_round *round)
{
	char err[128];
	for (size_t i = 0; i < round->delivery_count; i++)
		if (kafka_delivery_poll(&round->deliveries[i], err, sizeof err) == 0)
			kafka_delivery_wait(&round->deliveries[i], DEAD_LETTER_TIMEOUT_MS, err, sizeof err);
	free(round->deliveries);
	round->deliveries = NULL;
	round->delivery_count = 0;
}

int dispatcher_round_receive(struct dispatcher_round *round)
{
	char err[512];
	if (round->phase != ROUND_DECIDING)
		return round->phase == ROUND_NONE ? -1 : 1;
	int ready = db_result_ready(dispatcher.db, err, sizeof err);
	if (ready == 0 && time_monotonic_ms() - round->sent_ms < DECIDE_TIMEOUT_MS)
		return 0;
	if (ready == 0) {
		snprintf(err, sizeof err, "postgres: no answer to the batch's statement within %d ms",
			 DECIDE_TIMEOUT_MS);
		PQfinish(dispatcher.db);
		dispatcher.db = NULL;
	}
	if (ready != 1 || round_read_decision(round, err, sizeof err) != 0) {
		atomic_store(&dispatcher.postgres_ok, false);
		round_fail(round, "dispatcher_claim_failed", err);
		return -1;
	}
	atomic_store(&dispatcher.postgres_ok, true);
	round->phase = ROUND_DECIDED;
	return 1;
}

int dispatcher_round_push(struct dispatcher_round *round)
{
	char err[512];
	if (round->phase == ROUND_DECIDED) {
		if (round_build_envelopes(round, err, sizeof err) != 0) {
			/* Claimed, yet no task built (out of memory): built again by the next call. */
			dispatcher_note_error("dispatcher_enqueue_failed", err);
			return -2;
		}
		round->phase = ROUND_PUSHING;
	}
	if (round->phase != ROUND_PUSHING)
		return -2;
	int letters = round_dead_letters_done(round, err, sizeof err);
	if (letters == 0)
		return 0;
	if (letters < 0) {
		/* Sent again, the round held meanwhile: a dead letter twice is better than none. */
		dispatcher_note_error("dead_letter_failed", err);
		round_forget_deliveries(round);
		if (round_send_dead_letters(round, err, sizeof err) != 0)
			dispatcher_note_error("dead_letter_failed", err);
		return -2;
	}
	/*
	 * The claims are made: a Redis failure now must not drop them. The
	 * push is retried with the round held (offsets not committed); a
	 * dispatcher killed meanwhile leaves them PENDING for the reconciler.
	 */
	if (round->envelope_count > 0 &&
	    task_queue_push(&dispatcher.redis, dispatcher.daemon->config.redis_url,
			    dispatcher.daemon->config.redis_queue, round->envelopes, round->envelope_count, err,
			    sizeof err) != 0) {
		atomic_store(&dispatcher.redis_ok, false);
		dispatcher_note_error("dispatcher_enqueue_failed", err);
		return -2;
	}
	atomic_store(&dispatcher.redis_ok, true);
	dispatcher_clear_error();
	round_report(round);
	return 1;
}

void dispatcher_round_clear(struct dispatcher_round *round)
{
	for (size_t i = 0; i < round->claim_count; i++) {
		json_decref(round->claims[i].signal_ids);
		json_decref(round->claims[i].tickers);
	}
	free(round->claims);
	free(round->claim_pipelines);
	batch_matches_free(round->matches, round->match_count > 0 ? (size_t)round->match_count : 0);
	round_free_envelopes(round);
	json_decref(round->skips);
	json_decref(round->signal_by_id);
	round_forget_deliveries(round);
	memset(round, 0, sizeof *round);
}

/*
 * The dispatcher's memory of live runs: the claim keys (a pipeline, or a
 * pipeline and one ticker) that hold a PENDING, RUNNING or HOLDING
 * execution, as learnt from its own rounds, so that a signal for a
 * pipeline already running is skipped without asking PostgreSQL. Under
 * load most matches are of such pipelines; asking PostgreSQL for each was
 * most of a round's statement.
 *
 * The memory only ever skips: PostgreSQL's partial unique index stays
 * the only judge of a claim. A skip is wrong only if the run had ended,
 * so the memory never holds what it cannot vouch for:
 *  - an end of a run (a NOTIFY on sigtrig_runs_ended, sent by a trigger
 *    on executions) forgets its key at once;
 *  - every end and every "forget all" advances a sequence; a round
 *    records the sequence when its statement is sent, and what it saw
 *    live is not noted when an end of that key (or a forget all) came
 *    after: the run it saw may be the one that ended;
 *  - an entry older than max_age_ms is forgotten: a lost notification
 *    (there should be none) costs at most that long of wrong skips, and
 *    the next match asks PostgreSQL again.
 *
 * Pure: no I/O, no clock of its own (the caller passes the time).
 */
#ifndef SIGTRIG_LIVE_RUNS_H
#define SIGTRIG_LIVE_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The channel of the notifications, and the payload that stands for "every run ended" (a TRUNCATE). */
#define LIVE_RUNS_CHANNEL "sigtrig_runs_ended"
#define LIVE_RUNS_ALL_ENDED "*"

struct live_runs;

/* max_age_ms > 0; NULL out of memory. */
struct live_runs *live_runs_new(int64_t max_age_ms);
void live_runs_free(struct live_runs *runs);

/* The sequence to keep with a round whose statement is sent now. */
uint64_t live_runs_sequence(const struct live_runs *runs);

/*
 * The round sent at `sent_sequence` found (claimed, or was refused by)
 * a live run of the key. Not noted when an end of the key, or a forget
 * all, came after that sequence.
 */
void live_runs_note_live(struct live_runs *runs, const char *pipeline_id, const char *claim_key,
			 uint64_t sent_sequence, int64_t now_ms);

/* A run of the key ended. */
void live_runs_note_ended(struct live_runs *runs, const char *pipeline_id, const char *claim_key);

/*
 * A notification's payload: "<pipeline id> <claim key>" (the key may be
 * empty), or LIVE_RUNS_ALL_ENDED. false for a payload of another shape,
 * which forgets everything: the memory never guesses.
 */
bool live_runs_note_notification(struct live_runs *runs, const char *payload);

/* Forgets every key: the notifications may have been missed (a new or broken connection). */
void live_runs_forget_all(struct live_runs *runs);

/* Whether a run of the key is known to be live now. */
bool live_runs_known(const struct live_runs *runs, const char *pipeline_id, const char *claim_key, int64_t now_ms);

/*
 * Drops the entries nothing needs any more: live ones past their age,
 * and records of ends that no round sent before them can still be
 * noted against (every round in flight was sent at `oldest_sent_sequence`
 * or later; pass live_runs_sequence() when none is).
 */
void live_runs_prune(struct live_runs *runs, uint64_t oldest_sent_sequence, int64_t now_ms);

/* Keys known live now (for the metric). */
size_t live_runs_count(const struct live_runs *runs, int64_t now_ms);

#endif

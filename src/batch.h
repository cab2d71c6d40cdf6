/*
 * The dispatcher's batching rules and batch matching, as pure functions
 * over plain data so that they are tested without any server.
 */
#ifndef SIGTRIG_BATCH_H
#define SIGTRIG_BATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline_index.h"
#include "signal.h"

/*
 * When the dispatcher decides what it consumed: at most one batch (a
 * "round": one PostgreSQL statement, one Redis push) is in flight at a
 * time, and what arrives meanwhile waits for the next one.
 * - BATCH_MODE_GROUP (group commit): a round starts as soon as none is in
 *   flight, so an idle dispatcher decides a signal at once, and under load
 *   the next round grows while the database works on the current one.
 * - BATCH_MODE_FIXED (the design's rule): a round starts when max_signals
 *   are waiting or the oldest has waited max_wait_ms.
 * Either way a round takes at most max_signals messages.
 */
enum batch_mode { BATCH_MODE_GROUP, BATCH_MODE_FIXED };

struct batch_policy {
	size_t max_signals; /* flush when the batch holds this many */
	int64_t max_wait_ms; /* ... or when its first signal is this old */
	enum batch_mode mode; /* BATCH_MODE_GROUP (0) unless set */
};

/* "group" or "fixed" into *mode; false for any other name. */
bool batch_mode_from_name(const char *name, enum batch_mode *mode);

/*
 * Whether a round should start at now_ms with `waiting` messages, the
 * oldest taken at first_ms, and a round in flight or not. Never while one
 * is in flight.
 */
bool batch_round_due(const struct batch_policy *policy, size_t waiting, int64_t first_ms, bool in_flight,
		     int64_t now_ms);
/* How many of the waiting messages the next round takes. */
size_t batch_round_size(const struct batch_policy *policy, size_t waiting);

/* Whether a batch of `count` signals, the first taken at first_ms, is due at now_ms. */
bool batch_is_due(const struct batch_policy *policy, size_t count, int64_t first_ms, int64_t now_ms);
/* How long the consumer may wait for more before the batch is due (0 when due; -1 when empty). */
int64_t batch_wait_ms(const struct batch_policy *policy, size_t count, int64_t first_ms, int64_t now_ms);

/* One matched pipeline of a batch: every signal of the batch that woke it. */
struct batch_match {
	size_t position;        /* in the index */
	const struct pipeline *pipeline;
	json_t *signal_ids;     /* signals that wake it, in arrival order, no duplicates (may be empty) */
	json_t *tickers;        /* array of matched tickers, no duplicates */
	json_t *filtered_ids;   /* signals that named a watched ticker but failed its filters */
};

/*
 * Matches every signal of a batch against the index. Each pipeline appears
 * once, however many signals or tickers matched it. A ticker that fails the
 * pipeline's filters does not wake it: its signal is listed in
 * filtered_ids, unless another of its tickers passed. Returns the number of
 * matches (*matches malloc'd; free with batch_matches_free), or -1.
 */
long batch_match_signals(const struct pipeline_index *index, const struct signal *signals, size_t count,
			 struct batch_match **matches);
void batch_matches_free(struct batch_match *matches, size_t count);

#endif

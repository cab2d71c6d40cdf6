/*
 * Stage events of the flow (published, consumed, matched, skipped,
 * enqueued, started, finished) for `sigtrig trace`. Emitting never blocks
 * the flow: events go to an in-process queue that the daemon's trace relay
 * publishes on the Redis channel TRACE_CHANNEL, so a trace client of any
 * daemon sees every stage, whichever daemon ran it. When nobody listens,
 * trace_emit() returns at once.
 */
#ifndef SIGTRIG_TRACE_H
#define SIGTRIG_TRACE_H

#include <jansson.h>
#include <stdbool.h>

#define TRACE_CHANNEL "sigtrig:trace"

/*
 * Queues one event: {"stage", "time", "signal_id", ...fields}. `fields`
 * (reference stolen, may be NULL) may carry "ticker"/"tickers",
 * "pipeline_id", "execution_id", "task_id", "reason".
 */
void trace_emit(const char *stage, const char *signal_id, json_t *fields);

/* Called by the relay: whether anyone subscribes to TRACE_CHANNEL. */
void trace_set_listening(bool listening);
bool trace_is_listening(void);

/*
 * Takes up to `max` queued events as JSON text lines (malloc'd), waiting at
 * most `wait_ms` for the first one. Returns how many were taken.
 */
int trace_take(char **lines, int max, int wait_ms);

/* Whether an event (JSON object) passes a trace client's filters (NULL: any). */
bool trace_event_matches(const json_t *event, const char *signal_id, const char *ticker);

#endif

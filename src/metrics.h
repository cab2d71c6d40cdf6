/*
 * Process-wide metrics, declared in metrics.def: counters and gauges,
 * histograms and labeled counters. Updating any of them is lock-free and
 * safe from every thread; reading gives each value as it is at that
 * instant (a scrape running beside updates sees each value whole, not
 * all of them from one instant).
 */
#ifndef SIGTRIG_METRICS_H
#define SIGTRIG_METRICS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "skip_reason.h"

/* The most upper bounds a HISTOGRAM of metrics.def may have (the +Inf bucket aside). */
#define METRICS_HISTOGRAM_MAX_BOUNDS 24

#define METRIC(name, kind, help) METRIC_##name,
#define HISTOGRAM(name, help, ...)
#define LABELED_COUNTER(name, help, label, set, count)
enum metric_id {
#include "metrics.def"
	METRIC_COUNT
};
#undef METRIC
#undef HISTOGRAM
#undef LABELED_COUNTER

#define METRIC(name, kind, help)
#define HISTOGRAM(name, help, ...) HISTOGRAM_##name,
#define LABELED_COUNTER(name, help, label, set, count)
enum metric_histogram_id {
#include "metrics.def"
	HISTOGRAM_COUNT
};
#undef METRIC
#undef HISTOGRAM
#undef LABELED_COUNTER

#define METRIC(name, kind, help)
#define HISTOGRAM(name, help, ...)
#define LABELED_COUNTER(name, help, label, set, count) LABELED_##name,
enum metric_labeled_id {
#include "metrics.def"
	LABELED_COUNT
};
#undef METRIC
#undef HISTOGRAM
#undef LABELED_COUNTER

void metrics_add(enum metric_id id, int64_t delta);
void metrics_set(enum metric_id id, int64_t value);
int64_t metrics_get(enum metric_id id);

/* Counts one observation (seconds, for the *_seconds histograms); NaN and infinities are ignored. */
void metrics_observe(enum metric_histogram_id id, double value);
/* A monotonic instant in seconds, with nanosecond resolution: the start of a duration to observe. */
double metrics_monotonic_seconds(void);
/* Observes the seconds elapsed since `start`, a metrics_monotonic_seconds() instant. */
void metrics_observe_since(enum metric_histogram_id id, double start);

/* Adds to the counter of one label value; `value` out of the set is ignored. */
void metrics_add_labeled(enum metric_labeled_id id, int value, int64_t delta);
int64_t metrics_get_labeled(enum metric_labeled_id id, int value);
/*
 * Counts `count` skips for `reason` in pipelines_skipped_total; skips of
 * already_running also count in the deprecated pipelines_skipped_running_total.
 */
void metrics_skip(enum skip_reason reason, int64_t count);

/* The counters and gauges alone, {"name": value, ...}: the counters of `sigtrig status`. */
json_t *metrics_to_json(void);
/*
 * Every family, as `sigtrig metrics --json` prints it: counters and gauges
 * as numbers, a labeled counter as {"<label value>": n, ...}, a histogram
 * as {"count": n, "sum": s, "buckets": {"<le>": cumulative n, ..., "+Inf": n}},
 * process_start_time_seconds, and sigtrig_info as {"version": "..."}.
 */
json_t *metrics_snapshot_json(void);
/* Every family in the Prometheus text exposition format (version 0.0.4), malloc'd; NULL when out of memory. */
char *metrics_to_prometheus(void);

/*
 * Escapes a label value for the text format (\ " and newline become
 * \\ \" \n) into buf, always terminated; returns the length the escaped
 * value needs, as snprintf does.
 */
size_t metrics_escape_label_value(const char *value, char *buf, size_t size);

#endif

/*
 * Storage and exposition of the metrics of metrics.def. Every value is a
 * C11 atomic updated with relaxed ordering: a metric is a tally, not a
 * synchronisation point. A histogram keeps one counter per bucket (not
 * cumulative) and its sum; the exposition cumulates the buckets and takes
 * the count from their total, so `_bucket{le="+Inf"}` always equals
 * `_count` even while observations land during a scrape.
 */
#include "metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autoconfig.h"
#include "timeutil.h"

enum metric_kind { COUNTER, GAUGE };

struct metric_info {
	const char *name;
	enum metric_kind kind;
	const char *help;
};

struct histogram_info {
	const char *name;
	const char *help;
	const double *bounds;
	size_t bound_count;
};

struct labeled_info {
	const char *name;
	const char *help;
	const char *label;
	_Atomic int64_t *values;
	int value_count;
	const char *(*value_name)(int value);
};

/* Per histogram: its bounds and, for the labeled counters, their storage and label names. */
#define METRIC(name, kind, help)
#define HISTOGRAM(name, help, ...)                                                                    \
	static const double name##_bounds[] = { __VA_ARGS__ };                                        \
	_Static_assert(sizeof name##_bounds / sizeof name##_bounds[0] <= METRICS_HISTOGRAM_MAX_BOUNDS, \
		       #name ": more bounds than METRICS_HISTOGRAM_MAX_BOUNDS");
#define LABELED_COUNTER(name, help, label, set, count)                      \
	static _Atomic int64_t name##_values[count];                        \
	static const char *name##_value_name(int value)                     \
	{                                                                   \
		return set##_name((enum set)value);                         \
	}
#include "metrics.def"
#undef METRIC
#undef HISTOGRAM
#undef LABELED_COUNTER

#define METRIC(name, kind, help) { #name, kind, help },
#define HISTOGRAM(name, help, ...)
#define LABELED_COUNTER(name, help, label, set, count)
static const struct metric_info metric_table[METRIC_COUNT] = {
#include "metrics.def"
};
#undef METRIC
#undef HISTOGRAM
#undef LABELED_COUNTER

#define METRIC(name, kind, help)
#define HISTOGRAM(name, help, ...) { #name, help, name##_bounds, sizeof name##_bounds / sizeof name##_bounds[0] },
#define LABELED_COUNTER(name, help, label, set, count)
static const struct histogram_info histogram_table[HISTOGRAM_COUNT] = {
#include "metrics.def"
};
#undef METRIC
#undef HISTOGRAM
#undef LABELED_COUNTER

#define METRIC(name, kind, help)
#define HISTOGRAM(name, help, ...)
#define LABELED_COUNTER(name, help, label, set, count) \
	{ #name, help, #label, name##_values, count, name##_value_name },
static const struct labeled_info labeled_table[LABELED_COUNT] = {
#include "metrics.def"
};
#undef METRIC
#undef HISTOGRAM
#undef LABELED_COUNTER

struct histogram_state {
	/* bucket i counts observations in (bounds[i-1], bounds[i]]; the one after the last bound is +Inf */
	_Atomic uint64_t buckets[METRICS_HISTOGRAM_MAX_BOUNDS + 1];
	_Atomic double sum;
};

static _Atomic int64_t metric_values[METRIC_COUNT];
static struct histogram_state histogram_states[HISTOGRAM_COUNT];
/* Written once, before main, by metrics_note_process_start. */
static double process_start_time;

__attribute__((constructor)) static void metrics_note_process_start(void)
{
	process_start_time = time_now_seconds();
}

void metrics_add(enum metric_id id, int64_t delta)
{
	atomic_fetch_add_explicit(&metric_values[id], delta, memory_order_relaxed);
}

void metrics_set(enum metric_id id, int64_t value)
{
	atomic_store_explicit(&metric_values[id], value, memory_order_relaxed);
}

int64_t metrics_get(enum metric_id id)
{
	return atomic_load_explicit(&metric_values[id], memory_order_relaxed);
}

void metrics_observe(enum metric_histogram_id id, double value)
{
	if (!isfinite(value))
		return;
	const struct histogram_info *info = &histogram_table[id];
	struct histogram_state *state = &histogram_states[id];
	size_t bucket = 0;
	while (bucket < info->bound_count && value > info->bounds[bucket])
		bucket++;
	atomic_fetch_add_explicit(&state->buckets[bucket], 1, memory_order_relaxed);
	double sum = atomic_load_explicit(&state->sum, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&state->sum, &sum, sum + value, memory_order_relaxed,
						      memory_order_relaxed))
		;
}

double metrics_monotonic_seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

void metrics_observe_since(enum metric_histogram_id id, double start)
{
	metrics_observe(id, metrics_monotonic_seconds() - start);
}

void metrics_add_labeled(enum metric_labeled_id id, int value, int64_t delta)
{
	const struct labeled_info *info = &labeled_table[id];
	if (value < 0 || value >= info->value_count)
		return;
	atomic_fetch_add_explicit(&info->values[value], delta, memory_order_relaxed);
}

int64_t metrics_get_labeled(enum metric_labeled_id id, int value)
{
	const struct labeled_info *info = &labeled_table[id];
	if (value < 0 || value >= info->value_count)
		return 0;
	return atomic_load_explicit(&info->values[value], memory_order_relaxed);
}

void metrics_skip(enum skip_reason reason, int64_t count)
{
	metrics_add_labeled(LABELED_pipelines_skipped_total, (int)reason, count);
	if (reason == SKIP_already_running)
		metrics_add(METRIC_pipelines_skipped_running_total, count);
}

/* A histogram as it is now: cumulative bucket counts, the last one (+Inf) being the count. */
struct histogram_snapshot {
	uint64_t cumulative[METRICS_HISTOGRAM_MAX_BOUNDS + 1];
	double sum;
};

static void histogram_snapshot_take(enum metric_histogram_id id, struct histogram_snapshot *snapshot)
{
	const struct histogram_info *info = &histogram_table[id];
	uint64_t total = 0;
	for (size_t i = 0; i <= info->bound_count; i++) {
		total += atomic_load_explicit(&histogram_states[id].buckets[i], memory_order_relaxed);
		snapshot->cumulative[i] = total;
	}
	snapshot->sum = atomic_load_explicit(&histogram_states[id].sum, memory_order_relaxed);
}

/*
 * The fewest digits that read back as the same double, in plain notation
 * up to 6 integer digits ("10", "0.0005", "3600", "1e+06"), as the
 * Prometheus clients print bucket bounds; +Inf, -Inf and NaN as the
 * format spells them.
 */
static void format_number(double value, char *buf, size_t size)
{
	if (isnan(value)) {
		snprintf(buf, size, "NaN");
		return;
	}
	if (isinf(value)) {
		snprintf(buf, size, "%s", value > 0 ? "+Inf" : "-Inf");
		return;
	}
	int digits = 1;
	while (digits < 17) {
		snprintf(buf, size, "%.*g", digits, value);
		if (strtod(buf, NULL) == value)
			break;
		digits++;
	}
	/* %g drops trailing zeros, so more precision than needed prints the same digits, without an exponent. */
	snprintf(buf, size, "%.*g", digits < 6 ? 6 : digits, value);
}

size_t metrics_escape_label_value(const char *value, char *buf, size_t size)
{
	size_t length = 0;
	for (const char *c = value; *c != '\0'; c++) {
		char escaped[3] = { *c, '\0', '\0' };
		if (*c == '\\' || *c == '"') {
			escaped[0] = '\\';
			escaped[1] = *c;
		} else if (*c == '\n') {
			escaped[0] = '\\';
			escaped[1] = 'n';
		}
		for (const char *e = escaped; *e != '\0'; e++, length++)
			if (size > 0 && length < size - 1)
				buf[length] = *e;
	}
	if (size > 0)
		buf[length < size ? length : size - 1] = '\0';
	return length;
}

/* A HELP text: \ and newline escaped, as the format asks (quotes stay as they are). */
static void write_help(FILE *out, const char *name, const char *help, const char *type)
{
	fprintf(out, "# HELP %s ", name);
	for (const char *c = help; *c != '\0'; c++) {
		if (*c == '\\')
			fputs("\\\\", out);
		else if (*c == '\n')
			fputs("\\n", out);
		else
			fputc(*c, out);
	}
	fprintf(out, "\n# TYPE %s %s\n", name, type);
}

static void write_label_value(FILE *out, const char *value)
{
	char small[256];
	size_t length = metrics_escape_label_value(value, small, sizeof small);
	if (length < sizeof small) {
		fputs(small, out);
		return;
	}
	char *large = malloc(length + 1);
	if (large == NULL)
		return;
	metrics_escape_label_value(value, large, length + 1);
	fputs(large, out);
	free(large);
}

static void write_histogram(FILE *out, enum metric_histogram_id id)
{
	const struct histogram_info *info = &histogram_table[id];
	struct histogram_snapshot snapshot;
	histogram_snapshot_take(id, &snapshot);
	write_help(out, info->name, info->help, "histogram");
	char number[64];
	for (size_t i = 0; i < info->bound_count; i++) {
		format_number(info->bounds[i], number, sizeof number);
		fprintf(out, "%s_bucket{le=\"%s\"} %llu\n", info->name, number,
			(unsigned long long)snapshot.cumulative[i]);
	}
	uint64_t count = snapshot.cumulative[info->bound_count];
	fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n", info->name, (unsigned long long)count);
	format_number(snapshot.sum, number, sizeof number);
	fprintf(out, "%s_sum %s\n%s_count %llu\n", info->name, number, info->name, (unsigned long long)count);
}

char *metrics_to_prometheus(void)
{
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);
	if (out == NULL)
		return NULL;
	for (int i = 0; i < METRIC_COUNT; i++) {
		const struct metric_info *info = &metric_table[i];
		write_help(out, info->name, info->help, info->kind == COUNTER ? "counter" : "gauge");
		fprintf(out, "%s %lld\n", info->name, (long long)metrics_get((enum metric_id)i));
	}
	for (int i = 0; i < LABELED_COUNT; i++) {
		const struct labeled_info *info = &labeled_table[i];
		write_help(out, info->name, info->help, "counter");
		for (int value = 0; value < info->value_count; value++) {
			fprintf(out, "%s{%s=\"", info->name, info->label);
			write_label_value(out, info->value_name(value));
			fprintf(out, "\"} %lld\n",
				(long long)metrics_get_labeled((enum metric_labeled_id)i, value));
		}
	}
	for (int i = 0; i < HISTOGRAM_COUNT; i++)
		write_histogram(out, (enum metric_histogram_id)i);
	char number[64];
	format_number(process_start_time, number, sizeof number);
	write_help(out, "process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.",
		   "gauge");
	fprintf(out, "process_start_time_seconds %s\n", number);
	write_help(out, "sigtrig_info", "The sigtrig version of this process; the value is always 1.", "gauge");
	fputs("sigtrig_info{version=\"", out);
	write_label_value(out, PACKAGE_VERSION);
	fputs("\"} 1\n", out);
	if (ferror(out)) {
		fclose(out);
		free(text);
		return NULL;
	}
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

json_t *metrics_to_json(void)
{
	json_t *object = json_object();
	for (int i = 0; i < METRIC_COUNT; i++)
		json_object_set_new(object, metric_table[i].name, json_integer(metrics_get((enum metric_id)i)));
	return object;
}

static json_t *histogram_to_json(enum metric_histogram_id id)
{
	const struct histogram_info *info = &histogram_table[id];
	struct histogram_snapshot snapshot;
	histogram_snapshot_take(id, &snapshot);
	json_t *buckets = json_object();
	char bound[64];
	for (size_t i = 0; i < info->bound_count; i++) {
		format_number(info->bounds[i], bound, sizeof bound);
		json_object_set_new(buckets, bound, json_integer((json_int_t)snapshot.cumulative[i]));
	}
	json_int_t count = (json_int_t)snapshot.cumulative[info->bound_count];
	json_object_set_new(buckets, "+Inf", json_integer(count));
	return json_pack("{s:I, s:f, s:o}", "count", count, "sum", snapshot.sum, "buckets", buckets);
}

json_t *metrics_snapshot_json(void)
{
	json_t *object = metrics_to_json();
	for (int i = 0; i < LABELED_COUNT; i++) {
		const struct labeled_info *info = &labeled_table[i];
		json_t *values = json_object();
		for (int value = 0; value < info->value_count; value++)
			json_object_set_new(values, info->value_name(value),
					    json_integer(metrics_get_labeled((enum metric_labeled_id)i, value)));
		json_object_set_new(object, info->name, values);
	}
	for (int i = 0; i < HISTOGRAM_COUNT; i++)
		json_object_set_new(object, histogram_table[i].name, histogram_to_json((enum metric_histogram_id)i));
	json_object_set_new(object, "process_start_time_seconds", json_real(process_start_time));
	json_object_set_new(object, "sigtrig_info", json_pack("{s:s}", "version", PACKAGE_VERSION));
	return object;
}

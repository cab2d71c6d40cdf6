/*
 * The benchmark's report: the design's table (signals/s, dispatcher CPU,
 * DB queries/s, latency, peak RSS), then the flow through the dispatcher,
 * where the CPU went, and the goals of issue 3, all as Markdown so that a
 * run can be pasted into bench/RESULTS.md as it is.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

/* 12345.6 as "12,346". */
static const char *thousands(double value, char *buf, size_t size)
{
	char digits[32];
	snprintf(digits, sizeof digits, "%.0f", value);
	size_t length = strlen(digits), used = 0;
	for (size_t i = 0; i < length && used + 2 < size; i++) {
		if (i > 0 && digits[i - 1] != '-' && (length - i) % 3 == 0)
			buf[used++] = ',';
		buf[used++] = digits[i];
	}
	buf[used] = '\0';
	return buf;
}

static const char *milliseconds(double value, char *buf, size_t size)
{
	if (isnan(value))
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, value < 10 ? "%.2f" : value < 100 ? "%.1f" : "%.0f", value);
	return buf;
}

static const char *rate_label(const struct rate_result *result, char *buf, size_t size)
{
	char number[32];
	snprintf(buf, size, "%s", result->target > 0 ? thousands(result->target, number, sizeof number) : "flat out");
	return buf;
}

static void print_design_table(const struct rate_result *results, size_t count)
{
	char label[32], achieved[32], p50[16], p95[16], p99[16];
	printf("| Signals/s | Achieved signals/s | Dispatcher CPU | DB queries/s | Latency p50 / p95 / p99 (ms) | Peak RSS |\n"
	       "|---:|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < count; i++) {
		const struct rate_result *r = &results[i];
		printf("| %s | %s%s | %.1f%% | %.1f | %s / %s / %s | %.1f MB |\n", rate_label(r, label, sizeof label),
		       thousands(r->decided_rate, achieved, sizeof achieved),
		       r->settled && !r->held_back ? "" : " (fell behind)",
		       r->cpu_percent[0], r->query_rate, milliseconds(r->p50_ms, p50, sizeof p50),
		       milliseconds(r->p95_ms, p95, sizeof p95), milliseconds(r->p99_ms, p99, sizeof p99),
		       (double)r->peak_rss_kb / 1024);
	}
}

static void print_flow_table(const struct rate_result *results, size_t count)
{
	char label[32], sent[32], consumed[32], decided[32], runs[32], skipped[32], held[16];
	printf("| Signals/s | sent/s | consumed/s | decided/s | batches/s | runs/s | signals that started a run | held by the dispatcher, mean (ms) | matches skipped, by reason |\n"
	       "|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
	for (size_t i = 0; i < count; i++) {
		const struct rate_result *r = &results[i];
		printf("| %s | %s | %s | %s | %.1f | %s | %.1f%% | %s | ", rate_label(r, label, sizeof label),
		       thousands(r->sent_rate, sent, sizeof sent), thousands(r->consumed_rate, consumed, sizeof consumed),
		       thousands(r->decided_rate, decided, sizeof decided), r->batch_rate,
		       thousands(r->runs_rate, runs, sizeof runs),
		       r->sent > 0 ? 100.0 * (double)r->triggered / (double)r->sent : 0,
		       milliseconds(r->dispatcher_mean_ms, held, sizeof held));
		for (size_t k = 0; k < r->skipped_count; k++)
			printf("%s%s %s", k > 0 ? ", " : "", r->skipped[k].reason,
			       thousands(r->skipped[k].count, skipped, sizeof skipped));
		printf("%s |\n", r->skipped_count == 0 ? "-" : "");
	}
}

static void print_cpu_table(const struct report_setup *setup, const struct rate_result *results, size_t count)
{
	size_t others = setup->postgres_watched ? 2 : 1;
	printf("| Signals/s | %s |", setup->watched[0].name);
	if (setup->postgres_watched)
		printf(" %s for the dispatcher | %s for the drain |", setup->watched[1].name, setup->watched[1].name);
	for (size_t w = others; w < setup->watched_count; w++)
		printf(" %s |", setup->watched[w].name);
	printf(" loadgen | all of these | anything else on the machine |\n|---:|");
	for (size_t column = 0; column < setup->watched_count + (setup->postgres_watched ? 1 : 0) + 3; column++)
		printf("---:|");
	printf("\n");
	for (size_t i = 0; i < count; i++) {
		const struct rate_result *r = &results[i];
		char label[32];
		double all = r->loadgen_percent;
		printf("| %s | %.1f%% |", rate_label(r, label, sizeof label), r->cpu_percent[0]);
		if (setup->postgres_watched)
			printf(" %.1f%% | %.1f%% |", r->cpu_percent[1] - r->drain_backend_percent, r->drain_backend_percent);
		for (size_t w = others; w < setup->watched_count; w++)
			printf(" %.1f%% |", r->cpu_percent[w]);
		for (size_t w = 0; w < setup->watched_count; w++)
			all += r->cpu_percent[w];
		printf(" %.1f%% | %.0f%% | %.0f%% |\n", r->loadgen_percent, all,
		       r->machine_percent > all ? r->machine_percent - all : 0);
	}
}

static void print_goals(const struct report_setup *setup, const struct rate_result *results, size_t count)
{
	const struct rate_result *flat_out = NULL, *at_10000 = NULL, *lowest = NULL;
	for (size_t i = 0; i < count; i++) {
		if (results[i].target == 0)
			flat_out = &results[i];
		else if (results[i].target == 10000)
			at_10000 = &results[i];
		/* "Low rate" is 100 signals/s or less. */
		if (results[i].target > 0 && results[i].target <= 100 && (lowest == NULL || results[i].target < lowest->target))
			lowest = &results[i];
	}
	char a[32], b[32];
	printf("\nGoals of issue 3:\n\n");
	if (flat_out != NULL)
		printf("- one dispatcher >= 100,000 signals/s with %s pipelines cached: %s signals/s, %s\n",
		       thousands((double)setup->pipeline_count, b, sizeof b), thousands(flat_out->decided_rate, a, sizeof a),
		       flat_out->decided_rate >= 100000 ? "met" : "NOT met");
	if (at_10000 != NULL)
		printf("- p99 signal->enqueue <= 20 ms at 10,000 signals/s: %s ms%s, %s\n",
		       milliseconds(at_10000->p99_ms, a, sizeof a),
		       at_10000->settled && !at_10000->held_back ? "" : " (and it fell behind)",
		       at_10000->p99_ms <= 20 && at_10000->settled && !at_10000->held_back ? "met" : "NOT met");
	if (lowest != NULL)
		printf("- p50 signal->enqueue <= 5 ms at low rate (%s signals/s): %s ms, %s\n",
		       thousands(lowest->target, b, sizeof b), milliseconds(lowest->p50_ms, a, sizeof a),
		       lowest->p50_ms <= 5 ? "met" : "NOT met");
}

void report_print(const struct report_setup *setup, const struct rate_result *results, size_t count)
{
	char label[32], max[16];
	printf("\n");
	print_design_table(results, count);
	char backlog[32];
	printf("\nAchieved is what the dispatcher decided and committed per second (its group's Kafka offsets).\n"
	       "Fell behind: the rate was not held; the generator waited whenever %s signals were undecided.\n",
	       thousands((double)setup->backlog, backlog, sizeof backlog));
	printf("Latency is per signal that started a run: from its timestamp (when it was handed to the Kafka\n"
	       "producer) to the moment its first task was popped from the Redis list; max:");
	for (size_t i = 0; i < count; i++)
		printf("%s %s %s ms", i > 0 ? "," : "", rate_label(&results[i], label, sizeof label),
		       milliseconds(results[i].max_ms, max, sizeof max));
	printf(".\n\nThe flow:\n\n");
	print_flow_table(results, count);
	printf("\nWhere the CPU went (%% of one core over each window; the machine has %ld):\n\n",
	       sysconf(_SC_NPROCESSORS_ONLN));
	print_cpu_table(setup, results, count);
	printf("\nBusiest threads of %s:\n\n", setup->watched[0].name);
	for (size_t i = 0; i < count; i++)
		printf("- %s: %s\n", rate_label(&results[i], label, sizeof label),
		       results[i].top_threads[0] != '\0' ? results[i].top_threads : "-");
	print_goals(setup, results, count);
}

/*
 * Why a signal did not start a pipeline run: one fixed set of reasons,
 * shared by the dispatcher's decision records, its trace events and the
 * pipelines_skipped_total{reason} metric, so all three use the same names.
 */
#ifndef SIGTRIG_SKIP_REASON_H
#define SIGTRIG_SKIP_REASON_H

#include <stdbool.h>

/* SKIP_REASON(name): the name is what records, traces and metrics show. Append new reasons. */
#define SKIP_REASONS                          \
	SKIP_REASON(already_running)          \
	SKIP_REASON(inactive)                 \
	SKIP_REASON(filtered)                 \
	SKIP_REASON(unauthorized)             \
	SKIP_REASON(no_budget)                \
	SKIP_REASON(rate_limited)             \
	SKIP_REASON(cooldown)                 \
	SKIP_REASON(invalid)                  \
	SKIP_REASON(no_matching_pipeline)

enum skip_reason {
#define SKIP_REASON(name) SKIP_##name,
	SKIP_REASONS
#undef SKIP_REASON
	SKIP_REASON_COUNT
};

/* "already_running" for SKIP_already_running; "unknown" for a value outside the set. */
const char *skip_reason_name(enum skip_reason reason);
/* The reason called `name`; false (and *reason untouched) when none is. */
bool skip_reason_from_name(const char *name, enum skip_reason *reason);

#endif

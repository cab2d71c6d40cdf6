#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum metric_kind { COUNTER, GAUGE };

struct metric_info {
	const char *name;
	enum metric_kind kind;
	const char *help;
};

static const struct metric_info metric_table[METRIC_COUNT] = {
#define METRIC(name, kind, help) { #name, kind, help },
#include "metrics.def"
#undef METRIC
};

static _Atomic int64_t metric_values[METRIC_COUNT];

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

json_t *metrics_to_json(void)
{
	json_t *object = json_object();
	for (int i = 0; i < METRIC_COUNT; i++)
		json_object_set_new(object, metric_table[i].name, json_integer(metrics_get((enum metric_id)i)));
	return object;
}

char *metrics_to_prometheus(void)
{
	size_t capacity = 512 * METRIC_COUNT, used = 0;
	char *text = malloc(capacity);
	if (text == NULL)
		return NULL;
	for (int i = 0; i < METRIC_COUNT; i++) {
		const struct metric_info *info = &metric_table[i];
		used += (size_t)snprintf(text + used, capacity - used, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n",
					 info->name, info->help, info->name,
					 info->kind == COUNTER ? "counter" : "gauge", info->name,
					 (long long)metrics_get((enum metric_id)i));
		if (used >= capacity)
			break;
	}
	return text;
}

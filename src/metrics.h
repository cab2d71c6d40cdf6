/* Process-wide counters and gauges, lock-free, declared in metrics.def. */
#ifndef SIGTRIG_METRICS_H
#define SIGTRIG_METRICS_H

#include <jansson.h>
#include <stdint.h>

enum metric_id {
#define METRIC(name, kind, help) METRIC_##name,
#include "metrics.def"
#undef METRIC
	METRIC_COUNT
};

void metrics_add(enum metric_id id, int64_t delta);
void metrics_set(enum metric_id id, int64_t value);
int64_t metrics_get(enum metric_id id);
/* {"name": value, ...} */
json_t *metrics_to_json(void);
/* Prometheus text exposition format, malloc'd. */
char *metrics_to_prometheus(void);

#endif

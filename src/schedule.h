/* When a periodic pipeline is due (pure functions, see scheduler.c). */
#ifndef SIGTRIG_SCHEDULE_H
#define SIGTRIG_SCHEDULE_H

#include <jansson.h>
#include <stdbool.h>

/* "30s", "5m", "1h", "1d" -> seconds; -1 when malformed or not positive. */
long schedule_parse_interval(const char *text);
/* The interval of a pipeline config's time_trigger node, or -1 when it has none or it is malformed. */
long schedule_pipeline_interval(const json_t *config);
/* Due when it never ran (last_run < 0) or its interval has passed since. */
bool schedule_is_due(long interval_seconds, double last_run, double now);

#endif

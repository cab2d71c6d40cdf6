/*
 * When a retryable failure is tried again: Celery's exponential backoff
 * (retry_backoff), with jitter so that runs failed by one outage do not
 * all come back at the same instant. Pure functions; the worker sends
 * the retry (daemon/worker.c).
 */
#ifndef SIGTRIG_TASK_RETRY_H
#define SIGTRIG_TASK_RETRY_H

#include <jansson.h>

/*
 * The delay before retry number retries + 1: base_s * 2^retries, at most
 * max_s, scaled into [1/2, 1] of itself by `unit_random` (0 <= r < 1).
 */
double task_retry_delay_s(int retries, double base_s, double max_s, double unit_random);

/* headers.retries of a task envelope: 0 when absent, negative or not a whole number. */
int task_retries_of(const json_t *envelope);

#endif

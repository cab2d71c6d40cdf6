/*
 * Per-source token buckets for the dispatcher: each signal source may
 * bring `rate` signals per second on average and `burst` at once. Both
 * are explicit in the configuration; a source without an override gets
 * the default bucket; rate 0 means unlimited. Pure: the caller passes
 * the time, so tests need no clock.
 */
#ifndef SIGTRIG_RATE_LIMIT_H
#define SIGTRIG_RATE_LIMIT_H

#include <stdbool.h>
#include <stddef.h>

struct rate_limiter;

/*
 * `overrides`: "source=rate:burst[,source=rate:burst...]" (may be empty).
 * NULL with err naming the bad part.
 */
struct rate_limiter *rate_limiter_new(double default_rate, double default_burst, const char *overrides,
				      char *err, size_t errsize);
void rate_limiter_free(struct rate_limiter *limiter);

/* Takes one token from the source's bucket at time `now` (seconds); false when it is empty. */
bool rate_limiter_allow(struct rate_limiter *limiter, const char *source, double now);

#endif

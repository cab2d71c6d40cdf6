/* Clocks and time formats shared by the daemon and the tools. */
#ifndef SIGTRIG_TIMEUTIL_H
#define SIGTRIG_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Wall clock, seconds since the epoch with microsecond resolution. */
double time_now_seconds(void);
/* Monotonic clock in milliseconds, for timeouts and durations. */
int64_t time_monotonic_ms(void);
/* "2026-11-25T10:32:16.123456Z" into buf. */
void time_format_iso8601(double epoch_seconds, char *buf, size_t size);
/*
 * Reads YYYY-MM-DDTHH:MM:SS[.fraction][Z|+HH:MM|-HH:MM] (naive times are
 * UTC, as Celery writes eta and expires) into seconds since the epoch.
 * 0, or -1 when the text is not such a time.
 */
int time_parse_iso8601(const char *text, double *epoch_seconds);
/* Celery's date_done: naive UTC with microseconds, no zone suffix. */
void time_format_celery(double epoch_seconds, char *buf, size_t size);
/* The CLOCK_REALTIME instant `ms` from now, for pthread_cond_timedwait. */
struct timespec time_deadline_after_ms(int64_t ms);
/* Sleeps, returning early (0) when *stop becomes non-zero; checked every 50 ms. */
void time_sleep_ms_unless(int64_t ms, const volatile int *stop);

#endif

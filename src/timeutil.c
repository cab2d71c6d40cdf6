#include "timeutil.h"

#include <stdio.h>
#include <time.h>

double time_now_seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int64_t time_monotonic_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void format_utc(double epoch_seconds, const char *suffix, char *buf, size_t size)
{
	time_t whole = (time_t)epoch_seconds;
	long micros = (long)((epoch_seconds - (double)whole) * 1e6);
	if (micros < 0)
		micros = 0;
	if (micros > 999999)
		micros = 999999;
	struct tm utc;
	gmtime_r(&whole, &utc);
	char date[32];
	strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &utc);
	snprintf(buf, size, "%s.%06ld%s", date, micros, suffix);
}

void time_format_iso8601(double epoch_seconds, char *buf, size_t size)
{
	format_utc(epoch_seconds, "Z", buf, size);
}

void time_format_celery(double epoch_seconds, char *buf, size_t size)
{
	format_utc(epoch_seconds, "", buf, size);
}

struct timespec time_deadline_after_ms(int64_t ms)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (time_t)(ms / 1000);
	deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	return deadline;
}

void time_sleep_ms_unless(int64_t ms, const volatile int *stop)
{
	while (ms > 0 && !*stop) {
		int64_t step = ms < 50 ? ms : 50;
		struct timespec pause = { (time_t)(step / 1000), (long)(step % 1000) * 1000000L };
		nanosleep(&pause, NULL);
		ms -= step;
	}
}

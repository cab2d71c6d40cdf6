#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
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

int time_parse_iso8601(const char *text, double *epoch_seconds)
{
	int year, month, day, hour, minute, second, consumed = 0;
	if (text == NULL ||
	    sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute, &second, &consumed) != 6 ||
	    consumed != 19 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
	    second > 60)
		return -1;
	const char *rest = text + consumed;
	double fraction = 0;
	if (*rest == '.') {
		char *end;
		fraction = strtod(rest, &end);
		if (end == rest + 1)
			return -1;
		rest = end;
	}
	long offset_seconds = 0; /* no zone: UTC, as Celery writes naive times */
	if (*rest == 'Z') {
		rest++;
	} else if (*rest == '+' || *rest == '-') {
		int zone_hours, zone_minutes, used = 0;
		if (sscanf(rest + 1, "%2d:%2d%n", &zone_hours, &zone_minutes, &used) != 2 || used != 5)
			return -1;
		offset_seconds = (zone_hours * 3600L + zone_minutes * 60L) * (*rest == '-' ? -1 : 1);
		rest += 6;
	}
	if (*rest != '\0')
		return -1;
	struct tm utc = { .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
			  .tm_hour = hour, .tm_min = minute, .tm_sec = second };
	*epoch_seconds = (double)timegm(&utc) - (double)offset_seconds + fraction;
	return 0;
}

/*
 * When a periodic pipeline runs (pure functions; daemon/scheduler.c fires
 * the slots). A pipeline's schedule is a sequence of slots, instants fixed
 * by its time_trigger node alone, so that every scheduler computes the same
 * ones and the database can tell which were fired:
 *
 * - an interval of whole days (1d, 7d, 48h): start_time on every such day,
 *   counted from 1970-01-01, by the wall clock of the time zone, so a daily
 *   09:30 stays 09:30 across daylight saving changes;
 * - an interval shorter than a day: start_time of each day and every
 *   interval after it, until start_time of the next day, where the count
 *   starts again (09:30, 09:45, ... with 15m; with 7m from 00:00 the last
 *   slot of a day is 23:55);
 * - any other interval (36h): every interval from start_time on 1970-01-01.
 *
 * start_time ("HH:MM") defaults to 00:00, the time zone to the scheduler's
 * (scheduler.time_zone, UTC unless configured). A start_time that a clock
 * change skips is read with the offset before it (02:30 becomes 03:30); one
 * shown twice is its first showing.
 */
#ifndef SIGTRIG_SCHEDULE_H
#define SIGTRIG_SCHEDULE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "time_zone.h"

/* "30s", "5m", "1h", "1d" -> seconds; -1 when malformed or not positive. */
long schedule_parse_interval(const char *text);
/* "HH:MM" (00:00 to 23:59) -> minutes after midnight; -1 when malformed. */
int schedule_parse_start_time(const char *text);

/* What a pipeline config's first time_trigger node asks for. */
struct schedule_trigger {
	size_t node_index;           /* where the node is in config.nodes */
	long interval_seconds;
	int start_minute;            /* of start_time; 0 without one */
	char time_zone[TIME_ZONE_NAME_MAX + 1]; /* the node's time_zone; "" for the scheduler's */
};

/*
 * Reads the first time_trigger node of a pipeline config: its interval
 * (required), start_time and time_zone (optional; the zone's name is
 * checked for form here, its existence by whoever loads it). 0, or -1 with
 * err naming the field.
 */
int schedule_trigger_parse(const json_t *config, struct schedule_trigger *trigger, char *err, size_t errsize);

struct schedule {
	long interval_seconds;
	int start_minute;
	const struct time_zone *zone;
};

/* The slot due at `now`: the latest at or before it (a slot is due until the next one). */
int64_t schedule_slot_at(const struct schedule *schedule, int64_t now);
/* The first slot after `now`. */
int64_t schedule_next_slot(const struct schedule *schedule, int64_t now);

#endif

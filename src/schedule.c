#include "schedule.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECONDS_PER_DAY 86400

long schedule_parse_interval(const char *text)
{
	/* Digits first: strtol alone would also take " 5m" and "+5m". */
	if (text == NULL || !isdigit((unsigned char)*text))
		return -1;
	char *unit;
	errno = 0;
	long amount = strtol(text, &unit, 10);
	if (errno != 0 || unit == text || amount <= 0)
		return -1;
	long multiplier;
	if (strcmp(unit, "s") == 0)
		multiplier = 1;
	else if (strcmp(unit, "m") == 0)
		multiplier = 60;
	else if (strcmp(unit, "h") == 0)
		multiplier = 3600;
	else if (strcmp(unit, "d") == 0)
		multiplier = 86400;
	else
		return -1;
	if (amount > 366L * 86400 / multiplier)
		return -1;
	return amount * multiplier;
}

int schedule_parse_start_time(const char *text)
{
	if (text == NULL || strlen(text) != 5 || text[2] != ':')
		return -1;
	for (int i = 0; i < 5; i++)
		if (i != 2 && !isdigit((unsigned char)text[i]))
			return -1;
	int hours = (text[0] - '0') * 10 + (text[1] - '0');
	int minutes = (text[3] - '0') * 10 + (text[4] - '0');
	if (hours > 23 || minutes > 59)
		return -1;
	return hours * 60 + minutes;
}

int schedule_trigger_parse(const json_t *config, struct schedule_trigger *trigger, char *err, size_t errsize)
{
	memset(trigger, 0, sizeof *trigger);
	size_t index;
	const json_t *node;
	json_array_foreach(json_object_get(config, "nodes"), index, node) {
		const char *type = json_string_value(json_object_get(node, "agent_type"));
		if (type == NULL || strcmp(type, "time_trigger") != 0)
			continue;
		trigger->node_index = index;
		const json_t *node_config = json_object_get(node, "config");
		trigger->interval_seconds =
			schedule_parse_interval(json_string_value(json_object_get(node_config, "interval")));
		if (trigger->interval_seconds < 0) {
			snprintf(err, errsize,
				 "config.nodes[%zu].config.interval: must be a whole number followed by s, m, h or d,"
				 " at most 366 days, such as \"5m\", \"1h\" or \"1d\"", index);
			return -1;
		}
		const json_t *start_time = json_object_get(node_config, "start_time");
		if (start_time != NULL &&
		    (trigger->start_minute = schedule_parse_start_time(json_string_value(start_time))) < 0) {
			snprintf(err, errsize, "config.nodes[%zu].config.start_time: must be \"HH:MM\", 00:00 to 23:59",
				 index);
			return -1;
		}
		const json_t *zone = json_object_get(node_config, "time_zone");
		const char *zone_name = json_string_value(zone);
		if (zone != NULL && (zone_name == NULL || *zone_name == '\0' || strlen(zone_name) > TIME_ZONE_NAME_MAX)) {
			snprintf(err, errsize,
				 "config.nodes[%zu].config.time_zone: must be a time zone name such as \"Europe/Berlin\"",
				 index);
			return -1;
		}
		if (zone_name != NULL)
			snprintf(trigger->time_zone, sizeof trigger->time_zone, "%s", zone_name);
		return 0;
	}
	snprintf(err, errsize, "config.nodes: a periodic pipeline needs a time_trigger node whose config has an"
			       " interval such as \"5m\", \"1h\" or \"1d\"");
	return -1;
}

static int64_t floor_divide(int64_t a, int64_t b)
{
	int64_t quotient = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient;
}

/* The instant of start_time on `day` (days since 1970-01-01 by the zone's wall clock). */
static int64_t day_start(const struct schedule *schedule, int64_t day)
{
	return time_zone_instant_of_local(schedule->zone,
					  day * SECONDS_PER_DAY + (int64_t)schedule->start_minute * 60);
}

/* The day of the latest start_time at or before `now`. */
static int64_t series_day(const struct schedule *schedule, int64_t now)
{
	int64_t day = floor_divide(now + time_zone_offset_at(schedule->zone, now), SECONDS_PER_DAY);
	while (day_start(schedule, day) > now)
		day--;
	return day;
}

int64_t schedule_slot_at(const struct schedule *schedule, int64_t now)
{
	int64_t interval = schedule->interval_seconds;
	if (interval % SECONDS_PER_DAY == 0) {
		int64_t days = interval / SECONDS_PER_DAY;
		return day_start(schedule, floor_divide(series_day(schedule, now), days) * days);
	}
	int64_t first = interval < SECONDS_PER_DAY ? day_start(schedule, series_day(schedule, now))
						    : day_start(schedule, 0);
	return first + floor_divide(now - first, interval) * interval;
}

int64_t schedule_next_slot(const struct schedule *schedule, int64_t now)
{
	int64_t interval = schedule->interval_seconds;
	if (interval % SECONDS_PER_DAY == 0) {
		int64_t days = interval / SECONDS_PER_DAY;
		return day_start(schedule, floor_divide(series_day(schedule, now), days) * days + days);
	}
	int64_t next = schedule_slot_at(schedule, now) + interval;
	if (interval > SECONDS_PER_DAY)
		return next;
	int64_t next_day_start = day_start(schedule, series_day(schedule, now) + 1);
	return next < next_day_start ? next : next_day_start;
}

#include "schedule.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

long schedule_pipeline_interval(const json_t *config)
{
	size_t index;
	const json_t *node;
	json_array_foreach(json_object_get(config, "nodes"), index, node) {
		const char *type = json_string_value(json_object_get(node, "agent_type"));
		if (type != NULL && strcmp(type, "time_trigger") == 0)
			return schedule_parse_interval(
				json_string_value(json_object_get(json_object_get(node, "config"), "interval")));
	}
	return -1;
}

bool schedule_is_due(long interval_seconds, double last_run, double now)
{
	if (interval_seconds <= 0)
		return false;
	return last_run < 0 || now - last_run >= (double)interval_seconds;
}

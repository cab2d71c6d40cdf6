#include "pipeline_filter.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int string_list(const json_t *filters, const char *field, const json_t **list, char *err, size_t errsize)
{
	const json_t *value = json_object_get(filters, field);
	*list = NULL;
	if (value == NULL || json_is_null(value))
		return 0;
	if (!json_is_array(value) || json_array_size(value) == 0) {
		snprintf(err, errsize, "config.filters.%s: must be a non-empty array of strings", field);
		return -1;
	}
	size_t index;
	const json_t *item;
	json_array_foreach(value, index, item) {
		if (!json_is_string(item)) {
			snprintf(err, errsize, "config.filters.%s[%zu]: must be a string", field, index);
			return -1;
		}
	}
	*list = value;
	return 0;
}

int pipeline_filter_parse(const json_t *config, struct pipeline_filter *filter, char *err, size_t errsize)
{
	memset(filter, 0, sizeof *filter);
	filter->min_confidence = -1;
	const json_t *filters = json_object_get(config, "filters");
	if (filters == NULL || json_is_null(filters))
		return 0;
	if (!json_is_object(filters)) {
		snprintf(err, errsize, "config.filters: must be an object");
		return -1;
	}
	const char *key;
	const json_t *value;
	json_object_foreach((json_t *)filters, key, value) {
		if (strcmp(key, "min_confidence") != 0 && strcmp(key, "directions") != 0 &&
		    strcmp(key, "signal_types") != 0 && strcmp(key, "sources") != 0) {
			snprintf(err, errsize, "config.filters.%s: unknown filter (min_confidence, directions, "
					       "signal_types, sources)", key);
			return -1;
		}
	}
	const json_t *minimum = json_object_get(filters, "min_confidence");
	if (minimum != NULL && !json_is_null(minimum)) {
		double number = json_number_value(minimum);
		if (!json_is_number(minimum) || !isfinite(number) || number < 0 || number > 100) {
			snprintf(err, errsize, "config.filters.min_confidence: must be a number from 0 to 100");
			return -1;
		}
		filter->min_confidence = number;
	}
	const json_t *directions;
	if (string_list(filters, "directions", &directions, err, errsize) != 0)
		return -1;
	size_t index;
	const json_t *item;
	json_array_foreach(directions, index, item) {
		enum signal_direction direction;
		if (signal_direction_parse(json_string_value(item), &direction) != 0) {
			snprintf(err, errsize, "config.filters.directions[%zu]: must be BULLISH, BEARISH or NEUTRAL",
				 index);
			return -1;
		}
		filter->directions |= 1u << direction;
	}
	if (string_list(filters, "signal_types", &filter->signal_types, err, errsize) != 0 ||
	    string_list(filters, "sources", &filter->sources, err, errsize) != 0)
		return -1;
	return 0;
}

static bool listed(const json_t *list, const char *text)
{
	if (list == NULL)
		return true;
	size_t index;
	const json_t *item;
	json_array_foreach(list, index, item)
		if (strcmp(json_string_value(item), text) == 0)
			return true;
	return false;
}

bool pipeline_filter_accepts(const struct pipeline_filter *filter, const struct signal *signal,
			     const struct signal_ticker *ticker)
{
	if (filter->min_confidence >= 0 && ticker->confidence < filter->min_confidence)
		return false;
	if (filter->directions != 0 && (filter->directions & (1u << ticker->direction)) == 0)
		return false;
	return listed(filter->signal_types, signal->signal_type) && listed(filter->sources, signal->source);
}

#include "time_zone.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SECONDS_PER_DAY 86400
/* A zone file is a few kilobytes; anything much larger is not one. */
#define ZONE_FILE_MAX_BYTES (1024 * 1024)
/* Bounds on a file's counts, so that no size computed from them can overflow. */
#define ZONE_COUNT_MAX 100000

/* When a rule of the POSIX TZ string changes the clocks: a day of the year and a time of that day. */
struct rule_date {
	char kind;       /* 'J': Jn, 1-365 without Feb 29; 'D': n, 0-365; 'M': Mm.w.d */
	int day;         /* J and D */
	int month, week, weekday; /* M: week 5 is the last; weekday 0 is Sunday */
	long time;       /* seconds after local midnight, may be negative or past 24 h */
};

/* The footer of a TZif file: the rule for every instant after the last transition. */
struct zone_rule {
	bool present;
	long standard_offset; /* seconds east of UTC */
	bool has_daylight;
	long daylight_offset;
	struct rule_date start, end; /* start of daylight time (standard clock), end (daylight clock) */
};

struct time_zone {
	char name[TIME_ZONE_NAME_MAX + 1];
	int64_t *transitions;           /* ascending instants */
	unsigned char *transition_types; /* index into offsets, one per transition */
	size_t transition_count;
	long *offsets;                  /* seconds east of UTC of each local time type */
	size_t offset_count;
	struct zone_rule rule;
};

static int64_t floor_divide(int64_t a, int64_t b)
{
	int64_t quotient = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t year, int month, int day)
{
	year -= month <= 2;
	int64_t era = floor_divide(year, 400);
	int64_t year_of_era = year - era * 400;
	int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
	return era * 146097 + day_of_era - 719468;
}

static int64_t year_of_days(int64_t days)
{
	days += 719468;
	int64_t era = floor_divide(days, 146097);
	int64_t day_of_era = days - era * 146097;
	int64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
	int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
	int64_t month_index = (5 * day_of_year + 2) / 153; /* 0 is March */
	return year_of_era + era * 400 + (month_index >= 10);
}

static bool is_leap_year(int64_t year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int64_t year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return month == 2 && is_leap_year(year) ? 29 : days[month - 1];
}

/* The day (since 1970-01-01) on which `date` falls in `year`. */
static int64_t rule_date_day(const struct rule_date *date, int64_t year)
{
	int64_t january_first = days_from_civil(year, 1, 1);
	if (date->kind == 'J')
		return january_first + date->day - 1 + (is_leap_year(year) && date->day >= 60);
	if (date->kind == 'D')
		return january_first + date->day;
	int64_t first = days_from_civil(year, date->month, 1);
	int first_weekday = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
	int day = 1 + (date->weekday - first_weekday + 7) % 7 + (date->week - 1) * 7;
	while (day > days_in_month(year, date->month))
		day -= 7;
	return first + day - 1;
}

static long rule_offset_at(const struct zone_rule *rule, int64_t instant)
{
	if (!rule->has_daylight)
		return rule->standard_offset;
	int64_t year = year_of_days(floor_divide(instant + rule->standard_offset, SECONDS_PER_DAY));
	int64_t start = rule_date_day(&rule->start, year) * SECONDS_PER_DAY + rule->start.time -
			rule->standard_offset;
	int64_t end = rule_date_day(&rule->end, year) * SECONDS_PER_DAY + rule->end.time - rule->daylight_offset;
	/* Daylight time from start to end; in the southern hemisphere it spans the new year. */
	bool daylight = start < end ? instant >= start && instant < end : !(instant >= end && instant < start);
	return daylight ? rule->daylight_offset : rule->standard_offset;
}

long time_zone_offset_at(const struct time_zone *zone, int64_t instant)
{
	size_t count = zone->transition_count;
	if ((count == 0 || instant >= zone->transitions[count - 1]) && zone->rule.present)
		return rule_offset_at(&zone->rule, instant);
	/* Before the first transition the first local time type applies (RFC 8536). */
	if (count == 0 || instant < zone->transitions[0])
		return zone->offsets[0];
	size_t low = 0, high = count; /* transitions[low] <= instant < transitions[high] */
	while (high - low > 1) {
		size_t middle = low + (high - low) / 2;
		if (zone->transitions[middle] <= instant)
			low = middle;
		else
			high = middle;
	}
	return zone->offsets[zone->transition_types[low]];
}

int64_t time_zone_instant_of_local(const struct time_zone *zone, int64_t local)
{
	/* The offsets a day either side bracket the instant: at most one change lies between. */
	long before = time_zone_offset_at(zone, local - SECONDS_PER_DAY);
	long after = time_zone_offset_at(zone, local + SECONDS_PER_DAY);
	int64_t with_before = local - before;
	if (time_zone_offset_at(zone, with_before) == before)
		return with_before;
	int64_t with_after = local - after;
	if (time_zone_offset_at(zone, with_after) == after)
		return with_after;
	return with_before;
}

/* ---- the POSIX TZ string of a file's footer, e.g. "CET-1CEST,M3.5.0,M10.5.0/3" ---- */

static bool skip_designation(const char **text)
{
	const char *p = *text;
	if (*p == '<') {
		const char *close = strchr(p, '>');
		if (close == NULL || close == p + 1)
			return false;
		*text = close + 1;
		return true;
	}
	while (isalpha((unsigned char)*p))
		p++;
	if (p - *text < 3)
		return false;
	*text = p;
	return true;
}

static bool parse_number(const char **text, int minimum, int maximum, int *value)
{
	if (!isdigit((unsigned char)**text))
		return false;
	char *end;
	long number = strtol(*text, &end, 10);
	if (number < minimum || number > maximum)
		return false;
	*value = (int)number;
	*text = end;
	return true;
}

/* [+-]hh[:mm[:ss]], hours up to `max_hours`: seconds, signed as written. */
static bool parse_clock(const char **text, int max_hours, long *seconds)
{
	const char *p = *text;
	int sign = 1;
	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	int hours, minutes = 0, secs = 0;
	if (!parse_number(&p, 0, max_hours, &hours))
		return false;
	if (*p == ':') {
		p++;
		if (!parse_number(&p, 0, 59, &minutes))
			return false;
		if (*p == ':') {
			p++;
			if (!parse_number(&p, 0, 59, &secs))
				return false;
		}
	}
	*seconds = sign * ((long)hours * 3600 + minutes * 60 + secs);
	*text = p;
	return true;
}

static bool parse_rule_date(const char **text, struct rule_date *date)
{
	const char *p = *text;
	memset(date, 0, sizeof *date);
	if (*p == 'J') {
		p++;
		date->kind = 'J';
		if (!parse_number(&p, 1, 365, &date->day))
			return false;
	} else if (*p == 'M') {
		p++;
		date->kind = 'M';
		if (!parse_number(&p, 1, 12, &date->month) || *p++ != '.' || !parse_number(&p, 1, 5, &date->week) ||
		    *p++ != '.' || !parse_number(&p, 0, 6, &date->weekday))
			return false;
	} else {
		date->kind = 'D';
		if (!parse_number(&p, 0, 365, &date->day))
			return false;
	}
	date->time = 2 * 3600;
	/* Times may run from -167 to 167 hours (RFC 8536's extension of POSIX). */
	if (*p == '/') {
		p++;
		if (!parse_clock(&p, 167, &date->time))
			return false;
	}
	*text = p;
	return true;
}

static bool parse_rule(const char *text, struct zone_rule *rule)
{
	memset(rule, 0, sizeof *rule);
	if (*text == '\0')
		return true; /* no rule: the last transition's type lasts for ever */
	long west;
	if (!skip_designation(&text) || !parse_clock(&text, 24, &west))
		return false;
	rule->present = true;
	rule->standard_offset = -west;
	if (*text == '\0')
		return true;
	if (!skip_designation(&text))
		return false;
	rule->has_daylight = true;
	rule->daylight_offset = rule->standard_offset + 3600;
	if (*text != ',' && *text != '\0') {
		if (!parse_clock(&text, 24, &west))
			return false;
		rule->daylight_offset = -west;
	}
	if (*text == '\0')
		text = ",M3.2.0,M11.1.0"; /* POSIX leaves it open; the tz code uses the US rules */
	return *text++ == ',' && parse_rule_date(&text, &rule->start) && *text++ == ',' &&
	       parse_rule_date(&text, &rule->end) && *text == '\0';
}

/* ---- TZif files ---- */

static uint32_t read_u32(const unsigned char *bytes)
{
	return (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 | (uint32_t)bytes[2] << 8 | bytes[3];
}

static int64_t read_i64(const unsigned char *bytes)
{
	return (int64_t)((uint64_t)read_u32(bytes) << 32 | read_u32(bytes + 4));
}

struct zone_header {
	uint32_t utc_indicators, standard_indicators, leaps, transitions, types, designation_bytes;
};

/* The header at `bytes`; 0, or -1 when it is not one or its counts are absurd. */
static int read_header(const unsigned char *bytes, size_t available, struct zone_header *header)
{
	if (available < 44 || memcmp(bytes, "TZif", 4) != 0)
		return -1;
	header->utc_indicators = read_u32(bytes + 20);
	header->standard_indicators = read_u32(bytes + 24);
	header->leaps = read_u32(bytes + 28);
	header->transitions = read_u32(bytes + 32);
	header->types = read_u32(bytes + 36);
	header->designation_bytes = read_u32(bytes + 40);
	const uint32_t counts[] = { header->utc_indicators, header->standard_indicators, header->leaps,
				    header->transitions, header->types, header->designation_bytes };
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
		if (counts[i] > ZONE_COUNT_MAX)
			return -1;
	return header->types == 0 ? -1 : 0;
}

/* Bytes of the data block that follows a header, with `time_size`-byte times. */
static size_t data_size(const struct zone_header *header, size_t time_size)
{
	return header->transitions * (time_size + 1) + header->types * 6 + header->designation_bytes +
	       header->leaps * (time_size + 4) + header->standard_indicators + header->utc_indicators;
}

/* Fills the zone's transitions and types from one data block. 0, or -1 when it is inconsistent. */
static int read_data(struct time_zone *zone, const struct zone_header *header, const unsigned char *data,
		     size_t time_size)
{
	zone->transition_count = header->transitions;
	zone->offset_count = header->types;
	zone->transitions = calloc(header->transitions + 1, sizeof *zone->transitions);
	zone->transition_types = calloc(header->transitions + 1, 1);
	zone->offsets = calloc(header->types, sizeof *zone->offsets);
	if (zone->transitions == NULL || zone->transition_types == NULL || zone->offsets == NULL)
		return -1;
	for (size_t i = 0; i < header->transitions; i++) {
		const unsigned char *at = data + i * time_size;
		zone->transitions[i] = time_size == 8 ? read_i64(at) : (int32_t)read_u32(at);
		if (i > 0 && zone->transitions[i] <= zone->transitions[i - 1])
			return -1;
	}
	const unsigned char *types = data + header->transitions * time_size;
	for (size_t i = 0; i < header->transitions; i++) {
		if (types[i] >= header->types)
			return -1;
		zone->transition_types[i] = types[i];
	}
	const unsigned char *infos = types + header->transitions;
	for (size_t i = 0; i < header->types; i++) {
		long offset = (int32_t)read_u32(infos + i * 6);
		if (offset < -25 * 3600 || offset > 26 * 3600)
			return -1;
		zone->offsets[i] = offset;
	}
	return 0;
}

/* Parses a whole zone file into `zone`. 0, or -1 when it is not a valid one. */
static int parse_zone_file(struct time_zone *zone, const unsigned char *bytes, size_t size)
{
	struct zone_header header;
	if (read_header(bytes, size, &header) != 0)
		return -1;
	size_t first_end = 44 + data_size(&header, 4);
	if (first_end > size)
		return -1;
	/* Version 1 has 32-bit times only; 2 and later repeat the data with 64-bit times and a footer. */
	if (bytes[4] == '\0')
		return read_data(zone, &header, bytes + 44, 4);
	const unsigned char *second = bytes + first_end;
	if (read_header(second, size - first_end, &header) != 0)
		return -1;
	size_t second_end = first_end + 44 + data_size(&header, 8);
	if (second_end > size || read_data(zone, &header, second + 44, 8) != 0)
		return -1;
	/* The footer: "\n" POSIX-TZ-string "\n". */
	const unsigned char *footer = bytes + second_end;
	size_t left = size - second_end;
	if (left < 2 || footer[0] != '\n')
		return -1;
	const unsigned char *close = memchr(footer + 1, '\n', left - 1);
	if (close == NULL || close - footer > 128)
		return -1;
	char rule_text[130];
	memcpy(rule_text, footer + 1, (size_t)(close - footer - 1));
	rule_text[close - footer - 1] = '\0';
	return parse_rule(rule_text, &zone->rule) ? 0 : -1;
}

/* Zone names are paths below the zone directory: letters, digits, "_+-" and "/" between parts. */
static bool name_is_valid(const char *name)
{
	size_t length = strlen(name);
	if (length == 0 || length > TIME_ZONE_NAME_MAX)
		return false;
	bool part_start = true;
	for (const char *c = name; *c != '\0'; c++) {
		if (*c == '/') {
			if (part_start)
				return false;
			part_start = true;
			continue;
		}
		/* No part may begin with '.' or '-': no "..", no hidden files, no option-like names. */
		if ((part_start && (*c == '.' || *c == '-')) ||
		    !(isalnum((unsigned char)*c) || strchr("_+-.", *c) != NULL))
			return false;
		part_start = false;
	}
	return !part_start;
}

static unsigned char *read_zone_file(const char *path, size_t *size, char *reason, size_t reason_size)
{
	FILE *file = fopen(path, "rb");
	if (file == NULL) {
		snprintf(reason, reason_size, "%s", errno == ENOENT ? "no such zone" : strerror(errno));
		return NULL;
	}
	struct stat info;
	unsigned char *bytes = NULL;
	if (fstat(fileno(file), &info) != 0 || !S_ISREG(info.st_mode) || info.st_size > ZONE_FILE_MAX_BYTES) {
		snprintf(reason, reason_size, "not a zone file");
	} else if ((bytes = malloc((size_t)info.st_size + 1)) == NULL) {
		snprintf(reason, reason_size, "out of memory");
	} else if (fread(bytes, 1, (size_t)info.st_size, file) != (size_t)info.st_size) {
		snprintf(reason, reason_size, "cannot read it");
		free(bytes);
		bytes = NULL;
	} else {
		*size = (size_t)info.st_size;
	}
	fclose(file);
	return bytes;
}

struct time_zone *time_zone_load(const char *name, char *err, size_t errsize)
{
	if (name == NULL || !name_is_valid(name)) {
		snprintf(err, errsize, "'%s' is not a time zone name such as Europe/Berlin or UTC",
			 name != NULL ? name : "");
		return NULL;
	}
	struct time_zone *zone = calloc(1, sizeof *zone);
	if (zone == NULL) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	snprintf(zone->name, sizeof zone->name, "%s", name);
	if (strcmp(name, "UTC") == 0) {
		/* One local time type, offset 0, and no transitions. */
		zone->offsets = calloc(1, sizeof *zone->offsets);
		if (zone->offsets == NULL) {
			free(zone);
			snprintf(err, errsize, "out of memory");
			return NULL;
		}
		zone->offset_count = 1;
		return zone;
	}
	const char *directory = getenv("TZDIR");
	if (directory == NULL || *directory == '\0')
		directory = "/usr/share/zoneinfo";
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", directory, name);
	char reason[256];
	size_t size = 0;
	unsigned char *bytes = read_zone_file(path, &size, reason, sizeof reason);
	if (bytes != NULL && parse_zone_file(zone, bytes, size) != 0)
		snprintf(reason, sizeof reason, "not a valid zone file");
	else if (bytes != NULL) {
		free(bytes);
		return zone;
	}
	free(bytes);
	time_zone_free(zone);
	snprintf(err, errsize, "unknown time zone '%s' (%s: %s)", name, path, reason);
	return NULL;
}

void time_zone_free(struct time_zone *zone)
{
	if (zone == NULL)
		return;
	free(zone->transitions);
	free(zone->transition_types);
	free(zone->offsets);
	free(zone);
}

const char *time_zone_name(const struct time_zone *zone)
{
	return zone->name;
}

/*
 * Periodic pipelines: interval and start_time parsing, the time_trigger
 * node, and the slots of known schedules on known dates, across daylight
 * saving changes.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schedule.h"

struct interval {
	const char *text;
	long seconds;
};

static const struct interval valid_intervals[] = {
	{ "30s", 30 },	     { "1s", 1 },	     { "5m", 300 },	 { "90m", 5400 },
	{ "1h", 3600 },	     { "24h", 86400 },	     { "1d", 86400 },	 { "7d", 604800 },
	{ "366d", 31622400 }, { "8784h", 31622400 }, { "31622400s", 31622400 },
};

START_TEST(test_parses_each_unit)
{
	const struct interval *interval = &valid_intervals[_i];
	ck_assert_int_eq(schedule_parse_interval(interval->text), interval->seconds);
}
END_TEST

static const char *const invalid_intervals[] = {
	"",	 " 5m", "+5m", "5",	 "m",	   "0m",   "0s",   "-1h",    "5x",	"1.5h", "5 m",	"5m ", "5mm", "5M",
	"1e3s", "0x10s", "367d", "8785h", "31622401s", "527041m", "99999999999999999999s",
	"9223372036854775807s", "-9223372036854775808s",
};

START_TEST(test_rejects_malformed_interval)
{
	const char *text = invalid_intervals[_i];
	ck_assert_msg(schedule_parse_interval(text) == -1, "'%s' gave %ld", text, schedule_parse_interval(text));
}
END_TEST

START_TEST(test_rejects_null_interval)
{
	ck_assert_int_eq(schedule_parse_interval(NULL), -1);
}
END_TEST

struct start_time {
	const char *text;
	int minutes;
};

static const struct start_time start_times[] = {
	{ "00:00", 0 }, { "09:30", 570 }, { "12:05", 725 }, { "23:59", 1439 },
	{ "24:00", -1 }, { "09:60", -1 }, { "9:30", -1 }, { "0930", -1 }, { "09:30:00", -1 }, { "", -1 },
	{ " 9:30", -1 }, { "ab:cd", -1 }, { "09-30", -1 }, { "+9:30", -1 }, { "09:3", -1 },
};

START_TEST(test_start_time_is_hours_and_minutes)
{
	ck_assert_msg(schedule_parse_start_time(start_times[_i].text) == start_times[_i].minutes, "'%s'",
		      start_times[_i].text);
	ck_assert_int_eq(schedule_parse_start_time(NULL), -1);
}
END_TEST

static json_t *config_from(const char *text)
{
	json_error_t error;
	json_t *config = json_loads(text, 0, &error);
	ck_assert_msg(config != NULL, "%s", error.text);
	return config;
}

START_TEST(test_trigger_comes_from_the_time_trigger_node)
{
	json_t *config = config_from("{\"nodes\": ["
				     "{\"agent_type\": \"market_data\", \"config\": {\"interval\": \"1h\"}},"
				     "{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"15m\","
				     " \"start_time\": \"09:30\", \"time_zone\": \"Europe/Berlin\"}},"
				     "{\"agent_type\": \"order\"}]}");
	struct schedule_trigger trigger;
	char err[256];
	ck_assert_int_eq(schedule_trigger_parse(config, &trigger, err, sizeof err), 0);
	ck_assert_int_eq(trigger.node_index, 1);
	ck_assert_int_eq(trigger.interval_seconds, 900);
	ck_assert_int_eq(trigger.start_minute, 570);
	ck_assert_str_eq(trigger.time_zone, "Europe/Berlin");
	json_decref(config);
}
END_TEST

START_TEST(test_trigger_defaults_to_midnight_in_the_scheduler_zone)
{
	json_t *config = config_from("{\"nodes\": [{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"2s\"}}]}");
	struct schedule_trigger trigger;
	char err[256];
	ck_assert_int_eq(schedule_trigger_parse(config, &trigger, err, sizeof err), 0);
	ck_assert_int_eq(trigger.interval_seconds, 2);
	ck_assert_int_eq(trigger.start_minute, 0);
	ck_assert_str_eq(trigger.time_zone, "");
	json_decref(config);
}
END_TEST

START_TEST(test_first_time_trigger_node_wins)
{
	json_t *config = config_from("{\"nodes\": ["
				     "{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"30s\"}},"
				     "{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"1d\"}}]}");
	struct schedule_trigger trigger;
	char err[256];
	ck_assert_int_eq(schedule_trigger_parse(config, &trigger, err, sizeof err), 0);
	ck_assert_int_eq(trigger.interval_seconds, 30);
	json_decref(config);
}
END_TEST

struct bad_trigger {
	const char *config;
	const char *error; /* part of the message */
};

static const struct bad_trigger bad_triggers[] = {
	{ "{\"nodes\": []}", "config.nodes: a periodic pipeline needs a time_trigger node" },
	{ "{\"nodes\": [{\"agent_type\": \"market_data\", \"config\": {\"interval\": \"5m\"}}]}", "needs a time_trigger" },
	{ "{\"nodes\": [{\"agent_type\": \"TIME_TRIGGER\", \"config\": {\"interval\": \"5m\"}}]}", "needs a time_trigger" },
	{ "{\"nodes\": [\"time_trigger\", 5, null]}", "needs a time_trigger" },
	{ "{\"nodes\": {\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"5m\"}}}", "needs a time_trigger" },
	{ "{\"nodes\": \"time_trigger\"}", "needs a time_trigger" },
	{ "{}", "needs a time_trigger" },
	{ "[]", "needs a time_trigger" },
	{ "{\"nodes\": [{\"agent_type\": \"time_trigger\"}]}", "config.nodes[0].config.interval: must be" },
	{ "{\"nodes\": [{\"agent_type\": \"time_trigger\", \"config\": {}}]}", "config.nodes[0].config.interval" },
	{ "{\"nodes\": [{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": 300}}]}", "config.interval" },
	{ "{\"nodes\": [{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"soon\"}}]}", "config.interval" },
	{ "{\"nodes\": [{\"agent_type\": \"time_trigger\", \"config\": \"5m\"}]}", "config.interval" },
	{ "{\"nodes\": [{\"agent_type\": \"x\"}, {\"agent_type\": \"time_trigger\", \"config\":"
	  " {\"interval\": \"5m\", \"start_time\": \"9:30\"}}]}", "config.nodes[1].config.start_time: must be \"HH:MM\"" },
	{ "{\"nodes\": [{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"5m\", \"start_time\": 930}}]}",
	  "config.start_time" },
	{ "{\"nodes\": [{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"5m\", \"time_zone\": \"\"}}]}",
	  "config.nodes[0].config.time_zone: must be a time zone name" },
	{ "{\"nodes\": [{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"5m\", \"time_zone\": 1}}]}",
	  "config.time_zone" },
};

START_TEST(test_bad_trigger_is_refused_naming_the_field)
{
	json_t *config = config_from(bad_triggers[_i].config);
	struct schedule_trigger trigger;
	char err[256] = "";
	ck_assert_msg(schedule_trigger_parse(config, &trigger, err, sizeof err) == -1, "%s", bad_triggers[_i].config);
	ck_assert_msg(strstr(err, bad_triggers[_i].error) != NULL, "%s: '%s'", bad_triggers[_i].config, err);
	json_decref(config);
}
END_TEST

START_TEST(test_no_config_has_no_trigger)
{
	struct schedule_trigger trigger;
	char err[256];
	ck_assert_int_eq(schedule_trigger_parse(NULL, &trigger, err, sizeof err), -1);
}
END_TEST

/* ---- slots ---- */

static int64_t utc(int year, int month, int day, int hour, int minute, int second)
{
	struct tm civil = { .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
			    .tm_hour = hour, .tm_min = minute, .tm_sec = second };
	return (int64_t)timegm(&civil);
}

static struct time_zone *zones[4];

static const struct time_zone *zone_named(const char *name)
{
	static const char *const names[] = { "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(names[i], name) != 0)
			continue;
		if (zones[i] == NULL) {
			char err[512];
			zones[i] = time_zone_load(name, err, sizeof err);
			ck_assert_msg(zones[i] != NULL, "%s", err);
		}
		return zones[i];
	}
	ck_abort_msg("no zone %s in the test's list", name);
	return NULL;
}

static void free_zones(void)
{
	for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
		time_zone_free(zones[i]);
		zones[i] = NULL;
	}
}

struct known_slot {
	const char *what;
	const char *zone;
	long interval;
	int start_minute;
	int64_t now, slot, next;
};

#define DAY 86400L

START_TEST(test_known_slots_on_known_dates)
{
	const struct known_slot known[] = {
		{ "daily 09:30 Berlin, the day before summer time", "Europe/Berlin", DAY, 570,
		  utc(2024, 3, 30, 12, 0, 0), utc(2024, 3, 30, 8, 30, 0), utc(2024, 3, 31, 7, 30, 0) },
		{ "daily 09:30 Berlin, a second before the first summer slot", "Europe/Berlin", DAY, 570,
		  utc(2024, 3, 31, 7, 29, 59), utc(2024, 3, 30, 8, 30, 0), utc(2024, 3, 31, 7, 30, 0) },
		{ "daily 09:30 Berlin, at the first summer slot", "Europe/Berlin", DAY, 570,
		  utc(2024, 3, 31, 7, 30, 0), utc(2024, 3, 31, 7, 30, 0), utc(2024, 4, 1, 7, 30, 0) },
		{ "daily 09:30 Berlin, back to winter time", "Europe/Berlin", DAY, 570,
		  utc(2024, 10, 26, 23, 0, 0), utc(2024, 10, 26, 7, 30, 0), utc(2024, 10, 27, 8, 30, 0) },
		{ "daily 02:30 Berlin, a start_time the clocks skip", "Europe/Berlin", DAY, 150,
		  utc(2024, 3, 31, 12, 0, 0), utc(2024, 3, 31, 1, 30, 0), utc(2024, 4, 1, 0, 30, 0) },
		{ "daily 02:30 Berlin, a start_time shown twice", "Europe/Berlin", DAY, 150,
		  utc(2024, 10, 27, 12, 0, 0), utc(2024, 10, 27, 0, 30, 0), utc(2024, 10, 28, 1, 30, 0) },
		{ "daily 09:30 New York, summer time", "America/New_York", DAY, 570,
		  utc(2024, 3, 10, 20, 0, 0), utc(2024, 3, 10, 13, 30, 0), utc(2024, 3, 11, 13, 30, 0) },
		{ "daily 09:30 Kolkata", "Asia/Kolkata", DAY, 570,
		  utc(2024, 6, 1, 3, 0, 0), utc(2024, 5, 31, 4, 0, 0), utc(2024, 6, 1, 4, 0, 0) },
		{ "daily without start_time: midnight UTC", "UTC", DAY, 0,
		  utc(2024, 6, 1, 13, 14, 15), utc(2024, 6, 1, 0, 0, 0), utc(2024, 6, 2, 0, 0, 0) },
		{ "weekly: every 7th day from 1970-01-01, a Thursday", "UTC", 7 * DAY, 0,
		  utc(2024, 5, 1, 12, 0, 0), utc(2024, 4, 25, 0, 0, 0), utc(2024, 5, 2, 0, 0, 0) },
		{ "15m from 09:30", "UTC", 900, 570,
		  utc(2024, 5, 1, 10, 7, 0), utc(2024, 5, 1, 10, 0, 0), utc(2024, 5, 1, 10, 15, 0) },
		{ "15m from 09:30, before 09:30: the previous day's series", "UTC", 900, 570,
		  utc(2024, 5, 1, 9, 29, 0), utc(2024, 5, 1, 9, 15, 0), utc(2024, 5, 1, 9, 30, 0) },
		{ "7m from midnight: the day's last slot, then the next day's first", "UTC", 420, 0,
		  utc(2024, 5, 1, 23, 58, 0), utc(2024, 5, 1, 23, 55, 0), utc(2024, 5, 2, 0, 0, 0) },
		{ "7m from midnight, just after it", "UTC", 420, 0,
		  utc(2024, 5, 2, 0, 3, 0), utc(2024, 5, 2, 0, 0, 0), utc(2024, 5, 2, 0, 7, 0) },
		{ "2s", "UTC", 2, 0, utc(2024, 5, 2, 10, 0, 5), utc(2024, 5, 2, 10, 0, 4), utc(2024, 5, 2, 10, 0, 6) },
		{ "hourly Berlin, across the hour summer time skips", "Europe/Berlin", 3600, 0,
		  utc(2024, 3, 31, 1, 30, 0), utc(2024, 3, 31, 1, 0, 0), utc(2024, 3, 31, 2, 0, 0) },
		{ "36h: elapsed steps from 1970-01-01", "UTC", 36 * 3600L, 0,
		  utc(2024, 1, 1, 0, 0, 0), utc(2023, 12, 31, 0, 0, 0), utc(2024, 1, 1, 12, 0, 0) },
		{ "before the epoch", "UTC", DAY, 570,
		  utc(1969, 12, 31, 9, 0, 0), utc(1969, 12, 30, 9, 30, 0), utc(1969, 12, 31, 9, 30, 0) },
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		struct schedule schedule = { known[i].interval, known[i].start_minute, zone_named(known[i].zone) };
		int64_t slot = schedule_slot_at(&schedule, known[i].now);
		int64_t next = schedule_next_slot(&schedule, known[i].now);
		ck_assert_msg(slot == known[i].slot, "%s: slot %lld, not %lld (%+lld s)", known[i].what, (long long)slot,
			      (long long)known[i].slot, (long long)(slot - known[i].slot));
		ck_assert_msg(next == known[i].next, "%s: next %lld, not %lld (%+lld s)", known[i].what, (long long)next,
			      (long long)known[i].next, (long long)(next - known[i].next));
	}
	free_zones();
}
END_TEST

/* The slots of one local day of an hourly Berlin schedule, from its midnight to the next. */
static int hourly_slots_of_day(int64_t midnight, int64_t next_midnight)
{
	struct schedule schedule = { 3600, 0, zone_named("Europe/Berlin") };
	ck_assert_int_eq(schedule_slot_at(&schedule, midnight), midnight);
	int count = 0;
	for (int64_t slot = midnight; slot < next_midnight; slot = schedule_next_slot(&schedule, slot))
		count++;
	return count;
}

START_TEST(test_hourly_day_has_23_or_25_slots_when_the_clocks_change)
{
	/* Local midnights of Berlin, as UTC instants. */
	ck_assert_int_eq(hourly_slots_of_day(utc(2024, 3, 30, 23, 0, 0), utc(2024, 3, 31, 22, 0, 0)), 23);
	ck_assert_int_eq(hourly_slots_of_day(utc(2024, 10, 26, 22, 0, 0), utc(2024, 10, 27, 23, 0, 0)), 25);
	ck_assert_int_eq(hourly_slots_of_day(utc(2024, 6, 1, 22, 0, 0), utc(2024, 6, 2, 22, 0, 0)), 24);
	free_zones();
}
END_TEST

/* For any time: slot <= now < next, the next slot is a slot, and no slot lies between. */
START_TEST(test_slot_and_next_bracket_every_time)
{
	const long intervals[] = { 1, 2, 7, 60, 420, 900, 3600, 5400, 7 * 3600, DAY, 2 * DAY, 7 * DAY, 36 * 3600L,
				   90001 };
	const int starts[] = { 0, 1, 150, 570, 1439 };
	const char *const names[] = { "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata" };
	int64_t from = utc(2024, 3, 28, 0, 0, 0);
	for (size_t z = 0; z < sizeof names / sizeof names[0]; z++)
		for (size_t i = 0; i < sizeof intervals / sizeof intervals[0]; i++)
			for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++) {
				struct schedule schedule = { intervals[i], starts[s], zone_named(names[z]) };
				for (int64_t now = from; now < from + 9 * DAY; now += 3917) {
					int64_t slot = schedule_slot_at(&schedule, now);
					int64_t next = schedule_next_slot(&schedule, now);
					ck_assert_msg(slot <= now && now < next, "%s %ld %d at %lld: %lld, %lld", names[z],
						      intervals[i], starts[s], (long long)now, (long long)slot,
						      (long long)next);
					ck_assert_int_eq(schedule_slot_at(&schedule, next), next);
					ck_assert_int_eq(schedule_slot_at(&schedule, next - 1), slot);
				}
			}
	free_zones();
}
END_TEST

static Suite *schedule_suite(void)
{
	Suite *suite = suite_create("schedule");
	TCase *parse = tcase_create("parse");
	tcase_add_loop_test(parse, test_parses_each_unit, 0,
			    (int)(sizeof valid_intervals / sizeof valid_intervals[0]));
	tcase_add_loop_test(parse, test_rejects_malformed_interval, 0,
			    (int)(sizeof invalid_intervals / sizeof invalid_intervals[0]));
	tcase_add_test(parse, test_rejects_null_interval);
	tcase_add_loop_test(parse, test_start_time_is_hours_and_minutes, 0,
			    (int)(sizeof start_times / sizeof start_times[0]));
	suite_add_tcase(suite, parse);

	TCase *trigger = tcase_create("trigger");
	tcase_add_test(trigger, test_trigger_comes_from_the_time_trigger_node);
	tcase_add_test(trigger, test_trigger_defaults_to_midnight_in_the_scheduler_zone);
	tcase_add_test(trigger, test_first_time_trigger_node_wins);
	tcase_add_loop_test(trigger, test_bad_trigger_is_refused_naming_the_field, 0,
			    (int)(sizeof bad_triggers / sizeof bad_triggers[0]));
	tcase_add_test(trigger, test_no_config_has_no_trigger);
	suite_add_tcase(suite, trigger);

	TCase *slots = tcase_create("slots");
	tcase_add_test(slots, test_known_slots_on_known_dates);
	tcase_add_test(slots, test_hourly_day_has_23_or_25_slots_when_the_clocks_change);
	tcase_add_test(slots, test_slot_and_next_bracket_every_time);
	suite_add_tcase(suite, slots);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(schedule_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

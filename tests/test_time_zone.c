/*
 * Time zones read from the tz database: names, known offsets around known
 * daylight saving changes, wall clock to instant, and agreement with the C
 * library's own reading of the same files (this suite is single-threaded,
 * so it may set TZ for localtime_r).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "time_zone.h"

/* The instant of a UTC civil time. */
static int64_t utc(int year, int month, int day, int hour, int minute, int second)
{
	struct tm civil = { .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
			    .tm_hour = hour, .tm_min = minute, .tm_sec = second };
	return (int64_t)timegm(&civil);
}

/* Seconds since 1970-01-01 00:00 of a wall clock showing this civil time. */
static int64_t wall(int year, int month, int day, int hour, int minute)
{
	return utc(year, month, day, hour, minute, 0);
}

static struct time_zone *load(const char *name)
{
	char err[512];
	struct time_zone *zone = time_zone_load(name, err, sizeof err);
	ck_assert_msg(zone != NULL, "%s: %s", name, err);
	return zone;
}

START_TEST(test_utc_needs_no_zone_file)
{
	const char *saved = getenv("TZDIR");
	char *copy = saved != NULL ? strdup(saved) : NULL;
	setenv("TZDIR", "/nonexistent/zoneinfo", 1);
	struct time_zone *zone = load("UTC");
	ck_assert_str_eq(time_zone_name(zone), "UTC");
	ck_assert_int_eq(time_zone_offset_at(zone, utc(2024, 7, 1, 12, 0, 0)), 0);
	ck_assert_int_eq(time_zone_instant_of_local(zone, 1234567), 1234567);
	time_zone_free(zone);
	char err[512];
	ck_assert_ptr_null(time_zone_load("Europe/Berlin", err, sizeof err));
	ck_assert_msg(strstr(err, "/nonexistent/zoneinfo/Europe/Berlin") != NULL, "%s", err);
	if (copy != NULL)
		setenv("TZDIR", copy, 1);
	else
		unsetenv("TZDIR");
	free(copy);
}
END_TEST

static const char *const bad_names[] = {
	"", "../../etc/passwd", "/etc/localtime", "Europe/../../../etc/passwd", "Europe//Berlin", "Europe/",
	".hidden", "Europe/.Berlin", "-rf", "Europe/Ber lin", "Europe/Berlin\n", "Europe\\Berlin",
	"A_very_long_name_that_no_zone_has_ever_had_in_the_tz_database_at_all_xx",
};

START_TEST(test_malformed_or_escaping_names_are_refused)
{
	char err[512];
	ck_assert_msg(time_zone_load(bad_names[_i], err, sizeof err) == NULL, "'%s' loaded", bad_names[_i]);
	ck_assert_msg(strstr(err, "not a time zone name") != NULL, "%s", err);
}
END_TEST

START_TEST(test_unknown_zone_or_other_file_is_a_clear_error)
{
	char err[512];
	ck_assert_ptr_null(time_zone_load("Mars/Olympus_Mons", err, sizeof err));
	ck_assert_msg(strstr(err, "unknown time zone 'Mars/Olympus_Mons'") != NULL, "%s", err);
	/* A directory and a file of the database that is not a zone. */
	ck_assert_ptr_null(time_zone_load("Europe", err, sizeof err));
	ck_assert_msg(strstr(err, "unknown time zone 'Europe'") != NULL, "%s", err);
	ck_assert_ptr_null(time_zone_load("zone.tab", err, sizeof err));
	ck_assert_msg(strstr(err, "not a valid zone file") != NULL, "%s", err);
}
END_TEST

/* Every truncation of a real zone file, in a zone directory of the test's own, is refused cleanly. */
START_TEST(test_truncated_zone_file_is_refused)
{
	FILE *source = fopen("/usr/share/zoneinfo/Europe/Berlin", "rb");
	ck_assert_ptr_nonnull(source);
	static unsigned char bytes[65536];
	size_t size = fread(bytes, 1, sizeof bytes, source);
	fclose(source);
	ck_assert_uint_gt(size, 44);
	char directory[] = "/tmp/sigtrig-test-zoneinfo-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(directory));
	char path[128];
	snprintf(path, sizeof path, "%s/Cut", directory);
	const char *saved = getenv("TZDIR");
	char *copy = saved != NULL ? strdup(saved) : NULL;
	setenv("TZDIR", directory, 1);
	for (size_t length = 0; length <= size; length++) {
		FILE *cut = fopen(path, "wb");
		ck_assert_ptr_nonnull(cut);
		ck_assert_uint_eq(fwrite(bytes, 1, length, cut), length);
		fclose(cut);
		char err[512];
		struct time_zone *zone = time_zone_load("Cut", err, sizeof err);
		if (length < size)
			ck_assert_msg(zone == NULL, "%zu of %zu bytes loaded", length, size);
		else
			ck_assert_msg(zone != NULL && time_zone_offset_at(zone, 1719835200) == 7200, "%s", err);
		time_zone_free(zone);
	}
	unlink(path);
	rmdir(directory);
	if (copy != NULL)
		setenv("TZDIR", copy, 1);
	else
		unsetenv("TZDIR");
	free(copy);
}
END_TEST

struct known_offset {
	const char *zone;
	int64_t instant;
	long offset;
};

START_TEST(test_known_offsets_around_known_changes)
{
	const struct known_offset known[] = {
		/* Berlin: CET -> CEST at 2024-03-31 01:00 UTC, back at 2024-10-27 01:00 UTC. */
		{ "Europe/Berlin", utc(2024, 1, 15, 12, 0, 0), 3600 },
		{ "Europe/Berlin", utc(2024, 3, 31, 0, 59, 59), 3600 },
		{ "Europe/Berlin", utc(2024, 3, 31, 1, 0, 0), 7200 },
		{ "Europe/Berlin", utc(2024, 10, 27, 0, 59, 59), 7200 },
		{ "Europe/Berlin", utc(2024, 10, 27, 1, 0, 0), 3600 },
		/* Past the file's last transition: the footer's rule. */
		{ "Europe/Berlin", utc(2099, 7, 1, 0, 0, 0), 7200 },
		{ "Europe/Berlin", utc(2099, 12, 1, 0, 0, 0), 3600 },
		/* New York: EST -> EDT at 2024-03-10 07:00 UTC, back at 2024-11-03 06:00 UTC. */
		{ "America/New_York", utc(2024, 3, 10, 6, 59, 59), -18000 },
		{ "America/New_York", utc(2024, 3, 10, 7, 0, 0), -14400 },
		{ "America/New_York", utc(2024, 11, 3, 5, 59, 59), -14400 },
		{ "America/New_York", utc(2024, 11, 3, 6, 0, 0), -18000 },
		/* Sydney: daylight time over the new year. */
		{ "Australia/Sydney", utc(2025, 1, 15, 0, 0, 0), 39600 },
		{ "Australia/Sydney", utc(2025, 7, 15, 0, 0, 0), 36000 },
		{ "Asia/Kolkata", utc(2024, 6, 1, 0, 0, 0), 19800 },
		/* Dublin's "negative" daylight time: IST in summer, GMT in winter. */
		{ "Europe/Dublin", utc(2024, 7, 1, 0, 0, 0), 3600 },
		{ "Europe/Dublin", utc(2024, 12, 1, 0, 0, 0), 0 },
		{ "Europe/Dublin", utc(2090, 12, 1, 0, 0, 0), 0 },
		{ "Europe/Dublin", utc(2090, 7, 1, 0, 0, 0), 3600 },
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		struct time_zone *zone = load(known[i].zone);
		ck_assert_msg(time_zone_offset_at(zone, known[i].instant) == known[i].offset, "%s at %lld: %ld, not %ld",
			      known[i].zone, (long long)known[i].instant, time_zone_offset_at(zone, known[i].instant),
			      known[i].offset);
		time_zone_free(zone);
	}
}
END_TEST

START_TEST(test_wall_clock_to_instant_across_changes)
{
	struct time_zone *berlin = load("Europe/Berlin");
	/* Plain winter and summer times. */
	ck_assert_int_eq(time_zone_instant_of_local(berlin, wall(2024, 1, 15, 9, 30)), utc(2024, 1, 15, 8, 30, 0));
	ck_assert_int_eq(time_zone_instant_of_local(berlin, wall(2024, 7, 15, 9, 30)), utc(2024, 7, 15, 7, 30, 0));
	/* 02:30 never shows on 2024-03-31: read with the offset before, it is 03:30 CEST. */
	ck_assert_int_eq(time_zone_instant_of_local(berlin, wall(2024, 3, 31, 2, 30)), utc(2024, 3, 31, 1, 30, 0));
	ck_assert_int_eq(time_zone_instant_of_local(berlin, wall(2024, 3, 31, 3, 0)), utc(2024, 3, 31, 1, 0, 0));
	ck_assert_int_eq(time_zone_instant_of_local(berlin, wall(2024, 3, 31, 1, 59)), utc(2024, 3, 31, 0, 59, 0));
	/* 02:30 shows twice on 2024-10-27: the first, still CEST. */
	ck_assert_int_eq(time_zone_instant_of_local(berlin, wall(2024, 10, 27, 2, 30)), utc(2024, 10, 27, 0, 30, 0));
	ck_assert_int_eq(time_zone_instant_of_local(berlin, wall(2024, 10, 27, 3, 0)), utc(2024, 10, 27, 2, 0, 0));
	time_zone_free(berlin);
}
END_TEST

static const char *const compared_zones[] = {
	"Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Europe/Dublin",
	"America/Sao_Paulo", "Pacific/Chatham", "America/Nuuk", "Africa/Casablanca", "Asia/Tehran",
	"Australia/Lord_Howe", "Pacific/Apia", "America/St_Johns", "Europe/London", "Etc/GMT+5",
};

/* Every zone agrees with localtime_r on the same files, at instants spread from 1901 to 2120. */
START_TEST(test_offsets_agree_with_the_c_library)
{
	const char *name = compared_zones[_i];
	struct time_zone *zone = load(name);
	setenv("TZ", name, 1);
	tzset();
	int64_t from = utc(1901, 12, 14, 0, 0, 0), to = utc(2120, 1, 1, 0, 0, 0);
	/* A step that is no whole number of hours or days reaches every time of day and every weekday. */
	for (int64_t instant = from; instant < to; instant += 3 * 86400 + 3917) {
		time_t seconds = (time_t)instant;
		struct tm local;
		ck_assert_ptr_nonnull(localtime_r(&seconds, &local));
		long offset = time_zone_offset_at(zone, instant);
		ck_assert_msg(offset == local.tm_gmtoff, "%s at %lld: %ld, the C library says %ld", name,
			      (long long)instant, offset, (long)local.tm_gmtoff);
		/* Back from the wall clock: the same instant, or the first showing of a repeated time. */
		int64_t back = time_zone_instant_of_local(zone, instant + offset);
		ck_assert_msg(back == instant || (back < instant && back + time_zone_offset_at(zone, back) ==
								    instant + offset),
			      "%s: %lld came back as %lld", name, (long long)instant, (long long)back);
	}
	unsetenv("TZ");
	tzset();
	time_zone_free(zone);
}
END_TEST

static Suite *time_zone_suite(void)
{
	Suite *suite = suite_create("time_zone");
	TCase *names = tcase_create("names");
	tcase_add_test(names, test_utc_needs_no_zone_file);
	tcase_add_loop_test(names, test_malformed_or_escaping_names_are_refused, 0,
			    (int)(sizeof bad_names / sizeof bad_names[0]));
	tcase_add_test(names, test_unknown_zone_or_other_file_is_a_clear_error);
	tcase_add_test(names, test_truncated_zone_file_is_refused);
	suite_add_tcase(suite, names);

	TCase *offsets = tcase_create("offsets");
	tcase_add_test(offsets, test_known_offsets_around_known_changes);
	tcase_add_test(offsets, test_wall_clock_to_instant_across_changes);
	tcase_add_loop_test(offsets, test_offsets_agree_with_the_c_library, 0,
			    (int)(sizeof compared_zones / sizeof compared_zones[0]));
	suite_add_tcase(suite, offsets);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(time_zone_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

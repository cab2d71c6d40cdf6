/* Periodic pipelines: interval parsing, the time_trigger node, when a run is due. */
#include <check.h>
#include <stdlib.h>

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

static json_t *config_from(const char *text)
{
	json_error_t error;
	json_t *config = json_loads(text, 0, &error);
	ck_assert_msg(config != NULL, "%s", error.text);
	return config;
}

START_TEST(test_pipeline_interval_comes_from_time_trigger_node)
{
	json_t *config = config_from("{\"nodes\": ["
				     "{\"agent_type\": \"market_data\", \"config\": {\"interval\": \"1h\"}},"
				     "{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"5m\"}},"
				     "{\"agent_type\": \"order\"}]}");
	ck_assert_int_eq(schedule_pipeline_interval(config), 300);
	json_decref(config);
}
END_TEST

START_TEST(test_first_time_trigger_node_wins)
{
	json_t *config = config_from("{\"nodes\": ["
				     "{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"30s\"}},"
				     "{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"1d\"}}]}");
	ck_assert_int_eq(schedule_pipeline_interval(config), 30);
	json_decref(config);
}
END_TEST

START_TEST(test_pipeline_without_valid_time_trigger_has_no_interval)
{
	const char *configs[] = {
		"{\"nodes\": []}",
		"{\"nodes\": [{\"agent_type\": \"market_data\", \"config\": {\"interval\": \"5m\"}}]}",
		"{\"nodes\": [{\"agent_type\": \"time_trigger\"}]}",
		"{\"nodes\": [{\"agent_type\": \"time_trigger\", \"config\": {}}]}",
		"{\"nodes\": [{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": 300}}]}",
		"{\"nodes\": [{\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"soon\"}}]}",
		"{\"nodes\": [{\"agent_type\": \"time_trigger\", \"config\": \"5m\"}]}",
		"{\"nodes\": [{\"agent_type\": \"TIME_TRIGGER\", \"config\": {\"interval\": \"5m\"}}]}",
		"{\"nodes\": [\"time_trigger\", 5, null]}",
		"{\"nodes\": {\"agent_type\": \"time_trigger\", \"config\": {\"interval\": \"5m\"}}}",
		"{\"nodes\": \"time_trigger\"}",
		"{}",
		"[]",
	};
	for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
		json_t *config = config_from(configs[i]);
		ck_assert_msg(schedule_pipeline_interval(config) == -1, "%s", configs[i]);
		json_decref(config);
	}
	ck_assert_int_eq(schedule_pipeline_interval(NULL), -1);
}
END_TEST

START_TEST(test_never_run_pipeline_is_due)
{
	ck_assert(schedule_is_due(300, -1, 1000));
	ck_assert(schedule_is_due(86400, -1, 0));
}
END_TEST

START_TEST(test_pipeline_is_due_once_interval_has_passed)
{
	ck_assert(!schedule_is_due(300, 1000, 1000));
	ck_assert(!schedule_is_due(300, 1000, 1299.999));
	ck_assert(schedule_is_due(300, 1000, 1300));
	ck_assert(schedule_is_due(300, 1000, 5000));
	/* A run at time 0 is a run. */
	ck_assert(!schedule_is_due(300, 0, 299));
	ck_assert(schedule_is_due(300, 0, 300));
}
END_TEST

START_TEST(test_no_interval_is_never_due)
{
	ck_assert(!schedule_is_due(0, -1, 1000));
	ck_assert(!schedule_is_due(-1, -1, 1000));
	ck_assert(!schedule_is_due(-1, 0, 1e12));
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
	suite_add_tcase(suite, parse);

	TCase *pipeline = tcase_create("pipeline");
	tcase_add_test(pipeline, test_pipeline_interval_comes_from_time_trigger_node);
	tcase_add_test(pipeline, test_first_time_trigger_node_wins);
	tcase_add_test(pipeline, test_pipeline_without_valid_time_trigger_has_no_interval);
	suite_add_tcase(suite, pipeline);

	TCase *due = tcase_create("due");
	tcase_add_test(due, test_never_run_pipeline_is_due);
	tcase_add_test(due, test_pipeline_is_due_once_interval_has_passed);
	tcase_add_test(due, test_no_interval_is_never_due);
	suite_add_tcase(suite, due);
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

/* Command-line options as a table: parsing, operands, usage errors, the synopsis and -h. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

static const struct command_usage demo_usage = { "demo", "ID", "Shows how options are parsed." };

/* What the demo table fills. */
struct demo_values {
	const char *dir;
	struct option_list tickers;
	bool json;
	double limit;
	bool verbose;
};

static struct demo_values values;

static const struct option_spec demo_options[] = {
	{ "dir", 0, OPTION_STRING, &values.dir, "DIR", "work in DIR" },
	{ "ticker", 't', OPTION_LIST, &values.tickers, "T", "watch ticker T (repeatable)" },
	{ "json", 0, OPTION_FLAG, &values.json, NULL, "print JSON" },
	{ "limit", 'n', OPTION_NUMBER, &values.limit, "N", "stop after N" },
	{ "verbose", 'v', OPTION_FLAG, &values.verbose, NULL, "say more" },
	OPTION_SPEC_END,
};

static void reset_values(void)
{
	memset(&values, 0, sizeof values);
	values.limit = -1;
}

/* Output captured from one stream while options_parse ran. */
struct captured {
	char out[4096];
	char err[4096];
};

static void read_back(FILE *file, char *buf, size_t size)
{
	rewind(file);
	size_t got = fread(buf, 1, size - 1, file);
	buf[got] = '\0';
	fclose(file);
}

/*
 * Runs options_parse on a NULL-terminated argument list (argv[0] is the
 * command), with stdout and stderr captured. argv is rewritten in place.
 */
static int parse(char **argv, int *operand_count, struct captured *captured)
{
	int argc = 0;
	while (argv[argc] != NULL)
		argc++;
	FILE *out = tmpfile();
	FILE *err = tmpfile();
	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(err);
	fflush(stdout);
	fflush(stderr);
	int saved_out = dup(STDOUT_FILENO);
	int saved_err = dup(STDERR_FILENO);
	dup2(fileno(out), STDOUT_FILENO);
	dup2(fileno(err), STDERR_FILENO);
	/* No operand count wanted: the command takes none (options_parse_no_operands). */
	int status = operand_count != NULL ? options_parse(&demo_usage, demo_options, argc, argv, operand_count)
					   : options_parse_no_operands(&demo_usage, demo_options, argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_err, STDERR_FILENO);
	close(saved_out);
	close(saved_err);
	struct captured scratch;
	if (captured == NULL)
		captured = &scratch;
	read_back(out, captured->out, sizeof captured->out);
	read_back(err, captured->err, sizeof captured->err);
	return status;
}

/* ---- values ---- */

START_TEST(test_parses_long_and_short_forms)
{
	reset_values();
	char *argv[] = { "demo", "--dir", "/tmp/x", "--ticker", "AAPL", "-t", "MSFT", "-tNVDA",
			 "--ticker=TSLA", "--json", "-n", "2.5", "-v", NULL };
	int operands = -1;
	ck_assert_int_eq(parse(argv, &operands, NULL), 0);
	ck_assert_int_eq(operands, 0);
	ck_assert_str_eq(values.dir, "/tmp/x");
	ck_assert_uint_eq(values.tickers.count, 4);
	ck_assert_str_eq(values.tickers.items[0], "AAPL");
	ck_assert_str_eq(values.tickers.items[1], "MSFT");
	ck_assert_str_eq(values.tickers.items[2], "NVDA");
	ck_assert_str_eq(values.tickers.items[3], "TSLA");
	ck_assert(values.json);
	ck_assert(values.limit == 2.5);
	ck_assert(values.verbose);
	option_list_free(&values.tickers);
	ck_assert_ptr_null(values.tickers.items);
	ck_assert_uint_eq(values.tickers.count, 0);
}
END_TEST

START_TEST(test_absent_options_keep_their_values)
{
	reset_values();
	values.dir = "default";
	char *argv[] = { "demo", "id-1", NULL };
	int operands;
	ck_assert_int_eq(parse(argv, &operands, NULL), 0);
	ck_assert_str_eq(values.dir, "default");
	ck_assert(!values.json);
	ck_assert(values.limit == -1);
	ck_assert_uint_eq(values.tickers.count, 0);
	ck_assert_ptr_null(values.tickers.items);
}
END_TEST

START_TEST(test_last_string_wins)
{
	reset_values();
	char *argv[] = { "demo", "--dir", "first", "--dir=second", NULL };
	int operands;
	ck_assert_int_eq(parse(argv, &operands, NULL), 0);
	ck_assert_str_eq(values.dir, "second");
}
END_TEST

START_TEST(test_grouped_short_flags)
{
	reset_values();
	char *argv[] = { "demo", "-vtAAPL", NULL };
	int operands;
	ck_assert_int_eq(parse(argv, &operands, NULL), 0);
	ck_assert(values.verbose);
	ck_assert_uint_eq(values.tickers.count, 1);
	ck_assert_str_eq(values.tickers.items[0], "AAPL");
	option_list_free(&values.tickers);
}
END_TEST

START_TEST(test_numbers_accept_signs_and_exponents)
{
	const char *texts[] = { "0", "-3", "1e3", "0.125" };
	const double expected[] = { 0, -3, 1000, 0.125 };
	for (size_t i = 0; i < 4; i++) {
		reset_values();
		char *argv[] = { "demo", "--limit", (char *)texts[i], NULL };
		int operands;
		ck_assert_int_eq(parse(argv, &operands, NULL), 0);
		ck_assert(values.limit == expected[i]);
	}
}
END_TEST

/* ---- operands ---- */

START_TEST(test_operands_are_collected_in_order)
{
	reset_values();
	char *argv[] = { "demo", "first", "--json", "second", "-t", "AAPL", "third", "-", NULL };
	int operands = -1;
	ck_assert_int_eq(parse(argv, &operands, NULL), 0);
	ck_assert_int_eq(operands, 4);
	ck_assert_str_eq(argv[0], "first");
	ck_assert_str_eq(argv[1], "second");
	ck_assert_str_eq(argv[2], "third");
	ck_assert_str_eq(argv[3], "-");
	ck_assert(values.json);
	ck_assert_uint_eq(values.tickers.count, 1);
	option_list_free(&values.tickers);
}
END_TEST

START_TEST(test_command_without_operands_goes_on_stops_after_help_and_refuses_an_operand)
{
	reset_values();
	char *plain[] = { "demo", "--json", NULL };
	ck_assert_int_eq(parse(plain, NULL, NULL), -1);
	ck_assert(values.json);
	char *help[] = { "demo", "--help", NULL };
	ck_assert_int_eq(parse(help, NULL, NULL), 0);
	struct captured captured;
	char *operand[] = { "demo", "--json", "stray", NULL };
	ck_assert_int_eq(parse(operand, NULL, &captured), 2);
	ck_assert_msg(strstr(captured.err, "usage") != NULL, "%s", captured.err);
	char *unknown[] = { "demo", "--nope", NULL };
	ck_assert_int_eq(parse(unknown, NULL, NULL), 2);
	option_list_free(&values.tickers);
}
END_TEST

START_TEST(test_everything_after_double_dash_is_an_operand)
{
	reset_values();
	char *argv[] = { "demo", "a", "--", "--json", "-t", "b", "--", NULL };
	int operands = -1;
	ck_assert_int_eq(parse(argv, &operands, NULL), 0);
	ck_assert_int_eq(operands, 5);
	ck_assert_str_eq(argv[0], "a");
	ck_assert_str_eq(argv[1], "--json");
	ck_assert_str_eq(argv[2], "-t");
	ck_assert_str_eq(argv[3], "b");
	ck_assert_str_eq(argv[4], "--");
	ck_assert(!values.json);
	ck_assert_uint_eq(values.tickers.count, 0);
}
END_TEST

START_TEST(test_no_arguments_gives_no_operands)
{
	reset_values();
	char *argv[] = { "demo", NULL };
	int operands = -1;
	ck_assert_int_eq(parse(argv, &operands, NULL), 0);
	ck_assert_int_eq(operands, 0);
}
END_TEST

START_TEST(test_parser_restarts_for_each_call)
{
	/* getopt keeps state between calls; a second command line must parse from its start. */
	for (int round = 0; round < 3; round++) {
		reset_values();
		char *argv[] = { "demo", "-v", "x", "--dir", "d", NULL };
		int operands = -1;
		ck_assert_int_eq(parse(argv, &operands, NULL), 0);
		ck_assert_int_eq(operands, 1);
		ck_assert_str_eq(argv[0], "x");
		ck_assert(values.verbose);
		ck_assert_str_eq(values.dir, "d");
	}
}
END_TEST

/* ---- usage errors and help ---- */

START_TEST(test_unknown_long_option_is_usage_error)
{
	reset_values();
	char *argv[] = { "demo", "--bogus", "x", NULL };
	int operands;
	struct captured captured;
	ck_assert_int_eq(parse(argv, &operands, &captured), 2);
	ck_assert_msg(strstr(captured.err, "sigtrig: demo: unknown option --bogus\n") != NULL, "%s", captured.err);
	ck_assert_ptr_nonnull(strstr(captured.err, "usage: sigtrig demo "));
	ck_assert_str_eq(captured.out, "");
}
END_TEST

START_TEST(test_unknown_short_option_is_usage_error)
{
	reset_values();
	char *argv[] = { "demo", "-z", NULL };
	int operands;
	struct captured captured;
	ck_assert_int_eq(parse(argv, &operands, &captured), 2);
	ck_assert_msg(strstr(captured.err, "sigtrig: demo: unknown option -z\n") != NULL, "%s", captured.err);
}
END_TEST

START_TEST(test_missing_value_is_usage_error)
{
	char *long_form[] = { "demo", "x", "--dir", NULL };
	char *short_form[] = { "demo", "-t", NULL };
	char **lines[] = { long_form, short_form };
	const char *messages[] = { "sigtrig: demo: option --dir needs a value\n",
				   "sigtrig: demo: option -t needs a value\n" };
	for (int i = 0; i < 2; i++) {
		reset_values();
		int operands;
		struct captured captured;
		ck_assert_int_eq(parse(lines[i], &operands, &captured), 2);
		ck_assert_msg(strstr(captured.err, messages[i]) != NULL, "%s", captured.err);
		ck_assert_ptr_nonnull(strstr(captured.err, "usage: sigtrig demo "));
	}
}
END_TEST

START_TEST(test_bad_number_is_usage_error)
{
	const char *texts[] = { "ten", "", "5x", "nan", "inf", "1e999" };
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		reset_values();
		char *argv[] = { "demo", "-n", (char *)texts[i], NULL };
		int operands;
		struct captured captured;
		ck_assert_msg(parse(argv, &operands, &captured) == 2, "'%s' was accepted", texts[i]);
		char expected[128];
		snprintf(expected, sizeof expected, "sigtrig: demo: --limit: '%s' is not a number\n", texts[i]);
		ck_assert_msg(strstr(captured.err, expected) != NULL, "%s", captured.err);
		ck_assert(values.limit == -1);
	}
}
END_TEST

START_TEST(test_flag_given_a_value_is_usage_error_naming_it)
{
	reset_values();
	char *argv[] = { "demo", "--json=yes", NULL };
	int operands;
	struct captured captured;
	ck_assert_int_eq(parse(argv, &operands, &captured), 2);
	/* The first line is the message; the usage line after it names every option anyway. */
	char *newline = strchr(captured.err, '\n');
	ck_assert_ptr_nonnull(newline);
	*newline = '\0';
	for (const char *c = captured.err; *c != '\0'; c++)
		ck_assert_msg(*c >= ' ', "control character 0x%02x in '%s'", (unsigned char)*c, captured.err);
	ck_assert_msg(strstr(captured.err, "--json") != NULL, "message does not name --json: '%s'",
		      captured.err);
}
END_TEST

START_TEST(test_short_help_prints_usage_to_stdout)
{
	reset_values();
	char *argv[] = { "demo", "--json", "-h", "--bogus", NULL };
	int operands;
	struct captured captured;
	ck_assert_int_eq(parse(argv, &operands, &captured), 1);
	ck_assert_str_eq(captured.out,
			 "usage: sigtrig demo [--dir DIR] [-t|--ticker T]... [--json] [-n|--limit N] [-v|--verbose] ID\n"
			 "\n"
			 "Shows how options are parsed.\n"
			 "\n"
			 "      --dir DIR                work in DIR\n"
			 "  -t, --ticker T               watch ticker T (repeatable)\n"
			 "      --json                   print JSON\n"
			 "  -n, --limit N                stop after N\n"
			 "  -v, --verbose                say more\n"
			 "  -h, --help                   show this help\n");
	ck_assert_str_eq(captured.err, "");
}
END_TEST

START_TEST(test_long_help_off_terminal_prints_usage_to_stdout)
{
	reset_values();
	char *argv[] = { "demo", "--help", NULL };
	int operands;
	struct captured captured;
	/* stdout is a file here, so no man page is opened. */
	ck_assert_int_eq(parse(argv, &operands, &captured), 1);
	ck_assert_ptr_nonnull(strstr(captured.out, "usage: sigtrig demo [--dir DIR]"));
	ck_assert_ptr_nonnull(strstr(captured.out, "  -h, --help"));
}
END_TEST

/* ---- synopsis ---- */

START_TEST(test_synopsis_is_built_from_table)
{
	bool json = false;
	const char *dir = NULL;
	struct option_list tickers = { 0 };
	const struct option_spec options[] = {
		{ "dir", 0, OPTION_STRING, &dir, "DIR", "work in DIR" },
		{ "ticker", 't', OPTION_LIST, &tickers, "T", "a ticker" },
		{ "json", 0, OPTION_FLAG, &json, NULL, "print JSON" },
		OPTION_SPEC_END,
	};
	char buf[256];
	options_synopsis(&demo_usage, options, buf, sizeof buf);
	ck_assert_str_eq(buf, "sigtrig demo [--dir DIR] [-t|--ticker T]... [--json] ID");
}
END_TEST

START_TEST(test_synopsis_without_options_or_operands)
{
	const struct option_spec none[] = { OPTION_SPEC_END };
	const struct command_usage usage = { "pipelines list", NULL, "Lists pipelines." };
	char buf[128];
	options_synopsis(&usage, none, buf, sizeof buf);
	ck_assert_str_eq(buf, "sigtrig pipelines list");
	options_synopsis(&usage, NULL, buf, sizeof buf);
	ck_assert_str_eq(buf, "sigtrig pipelines list");
}
END_TEST

START_TEST(test_synopsis_is_truncated_safely)
{
	char buf[20];
	memset(buf, 'X', sizeof buf);
	options_synopsis(&demo_usage, demo_options, buf, sizeof buf);
	ck_assert_uint_eq(strlen(buf), sizeof buf - 1);
	ck_assert_str_eq(buf, "sigtrig demo [--dir");
}
END_TEST

START_TEST(test_short_usage_is_one_line)
{
	FILE *file = tmpfile();
	options_print_usage(file, &demo_usage, demo_options, false);
	char buf[512];
	read_back(file, buf, sizeof buf);
	ck_assert_str_eq(buf, "usage: sigtrig demo [--dir DIR] [-t|--ticker T]... [--json] [-n|--limit N] "
			      "[-v|--verbose] ID\n");
}
END_TEST

static Suite *options_suite(void)
{
	Suite *suite = suite_create("options");
	TCase *parsing = tcase_create("values");
	tcase_add_test(parsing, test_parses_long_and_short_forms);
	tcase_add_test(parsing, test_absent_options_keep_their_values);
	tcase_add_test(parsing, test_last_string_wins);
	tcase_add_test(parsing, test_grouped_short_flags);
	tcase_add_test(parsing, test_numbers_accept_signs_and_exponents);
	suite_add_tcase(suite, parsing);

	TCase *operands = tcase_create("operands");
	tcase_add_test(operands, test_operands_are_collected_in_order);
	tcase_add_test(operands, test_everything_after_double_dash_is_an_operand);
	tcase_add_test(operands, test_no_arguments_gives_no_operands);
	tcase_add_test(operands, test_parser_restarts_for_each_call);
	suite_add_tcase(suite, operands);

	TCase *errors = tcase_create("errors");
	tcase_add_test(errors, test_unknown_long_option_is_usage_error);
	tcase_add_test(errors, test_unknown_short_option_is_usage_error);
	tcase_add_test(errors, test_missing_value_is_usage_error);
	tcase_add_test(errors, test_bad_number_is_usage_error);
	tcase_add_test(errors, test_flag_given_a_value_is_usage_error_naming_it);
	tcase_add_test(errors, test_short_help_prints_usage_to_stdout);
	tcase_add_test(errors, test_long_help_off_terminal_prints_usage_to_stdout);
	suite_add_tcase(suite, errors);

	TCase *synopsis = tcase_create("synopsis");
	tcase_add_test(synopsis, test_synopsis_is_built_from_table);
	tcase_add_test(synopsis, test_synopsis_without_options_or_operands);
	tcase_add_test(synopsis, test_synopsis_is_truncated_safely);
	tcase_add_test(synopsis, test_short_usage_is_one_line);
	tcase_add_test(synopsis, test_command_without_operands_goes_on_stops_after_help_and_refuses_an_operand);
	suite_add_tcase(suite, synopsis);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(options_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

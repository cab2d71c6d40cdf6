/* The bar CSV reader and the bars' wire form (src/bars_csv.c, src/bar_store.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bar_store.h"
#include "bars_csv.h"

static int parse(const char *text, struct bar_list *list, char *err, size_t errsize)
{
	return bars_csv_parse(text, strlen(text), list, err, errsize);
}

/* Parses text that must fail, and checks the message names what it must. */
static void expect_error(const char *text, const char *message)
{
	struct bar_list list = { 0 };
	char err[512] = "";
	ck_assert_int_eq(parse(text, &list, err, sizeof err), -1);
	ck_assert_msg(strstr(err, message) != NULL, "for %s: error '%s' does not say '%s'", text, err, message);
	ck_assert_uint_eq(list.count, 0);
	ck_assert_ptr_null(list.bars);
}

START_TEST(test_sample_layout_is_read)
{
	struct bar_list list = { 0 };
	char err[512];
	ck_assert_int_eq(parse("day,year,ticker,close\n0,1991.49,DAX,1628.75\n0,1991.49,SMI,1678.1\n"
			       "1,1991.5,DAX,1613.63\n",
			       &list, err, sizeof err),
			 0);
	ck_assert_uint_eq(list.count, 3);
	ck_assert_str_eq(list.bars[0].ticker, "DAX");
	ck_assert_int_eq(list.bars[0].day, 0);
	ck_assert_double_eq_tol(list.bars[0].close, 1628.75, 1e-9);
	ck_assert_str_eq(list.bars[2].ticker, "DAX");
	ck_assert_int_eq(list.bars[2].day, 1);
	ck_assert_uint_eq(list.bars[2].line, 4);
	bar_list_free(&list);
}
END_TEST

START_TEST(test_dates_quotes_crlf_and_column_order)
{
	struct bar_list list = { 0 };
	char err[512];
	ck_assert_int_eq(parse("\"Date\",Open,Symbol,\"Close\"\r\n2024-02-29,1,\"BRK.B\",\"401.5\"\r\n\r\n"
			       "1970-01-02,1,\"A\"\"B\",2\r\n",
			       &list, err, sizeof err),
			 0);
	ck_assert_uint_eq(list.count, 2);
	ck_assert_str_eq(list.bars[0].ticker, "BRK.B");
	ck_assert_int_eq(list.bars[0].day, 19782); /* 2024-02-29 */
	ck_assert_double_eq_tol(list.bars[0].close, 401.5, 1e-9);
	ck_assert_str_eq(list.bars[1].ticker, "A\"B");
	ck_assert_int_eq(list.bars[1].day, 1);
	bar_list_free(&list);
}
END_TEST

START_TEST(test_spaces_around_unquoted_values_are_not_part_of_them)
{
	struct bar_list list = { 0 };
	char err[512];
	ck_assert_msg(parse("day, ticker, close\n 3 , DAX ,\t1628.75 \n", &list, err, sizeof err) == 0, "%s", err);
	ck_assert_uint_eq(list.count, 1);
	ck_assert_str_eq(list.bars[0].ticker, "DAX");
	ck_assert_int_eq(list.bars[0].day, 3);
	ck_assert_double_eq_tol(list.bars[0].close, 1628.75, 1e-9);
	bar_list_free(&list);
	/* Inside quotes they are: a ticker has no spaces. */
	expect_error("day,ticker,close\n3,\" DAX\",1\n", "line 2: ticker: ' DAX'");
}
END_TEST

START_TEST(test_date_arithmetic)
{
	int day;
	ck_assert_int_eq(bars_csv_parse_date("1970-01-01", &day), 0);
	ck_assert_int_eq(day, 0);
	ck_assert_int_eq(bars_csv_parse_date("1969-12-31", &day), 0);
	ck_assert_int_eq(day, -1);
	ck_assert_int_eq(bars_csv_parse_date("2000-03-01", &day), 0);
	ck_assert_int_eq(day, 11017);
	ck_assert_int_eq(bars_csv_parse_date("2026-12-02", &day), 0);
	ck_assert_int_eq(day, 20789);
	ck_assert_int_eq(bars_csv_parse_date("2023-02-29", &day), -1);
	ck_assert_int_eq(bars_csv_parse_date("1900-02-29", &day), -1);
	ck_assert_int_eq(bars_csv_parse_date("2000-02-29", &day), 0);
	ck_assert_int_eq(bars_csv_parse_date("2024-13-01", &day), -1);
	ck_assert_int_eq(bars_csv_parse_date("2024-1-01", &day), -1);
	ck_assert_int_eq(bars_csv_parse_date("2024-01-01x", &day), -1);
}
END_TEST

START_TEST(test_errors_name_the_line_and_load_nothing)
{
	expect_error("", "no header line");
	expect_error("ticker,close\nAAPL,1\n", "one of day or date");
	expect_error("ticker,day,date,close\n", "one of day or date");
	expect_error("ticker,ticker,day,close\n", "column 'ticker' appears twice");
	expect_error("ticker,day,close\nAAPL,1,100\nAAPL,2,-3\n", "line 3: close: '-3' is not a positive price");
	expect_error("ticker,day,close\nAAPL,1,abc\n", "line 2: close: 'abc'");
	expect_error("ticker,day,close\nAAPL,1,nan\n", "line 2: close: 'nan'");
	expect_error("ticker,day,close\nAAPL,1,inf\n", "line 2: close: 'inf'");
	expect_error("ticker,day,close\nAAPL,1.5,3\n", "line 2: day: '1.5' is not an integer");
	expect_error("ticker,date,close\nAAPL,2026-02-30,3\n", "line 2: date: '2026-02-30' is not a date");
	expect_error("ticker,day,close\nBAD TICKER,1,3\n", "line 2: ticker: 'BAD TICKER'");
	expect_error("ticker,day,close\n,1,3\n", "line 2: ticker: ''");
	expect_error("ticker,day,close\nAAPL,1\n", "line 2: 2 columns");
	expect_error("ticker,day,close\n\"AAPL,1,3\n", "line 2: a quoted field is not closed");
	expect_error("ticker,day,close\n\"AAPL\"x,1,3\n", "line 2: text after the closing quote");
	expect_error("ticker,day,close\nAAPL,1,3\nMSFT,1,4\nAAPL,1,5\n", "line 4: AAPL day 1 was already given on line 2");
}
END_TEST

START_TEST(test_nul_byte_is_refused)
{
	static const char text[] = "ticker,day,close\nAAPL,1,3\0\n";
	struct bar_list list = { 0 };
	char err[256];
	ck_assert_int_eq(bars_csv_parse(text, sizeof text - 1, &list, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "line 2: a NUL byte") != NULL, "%s", err);
}
END_TEST

START_TEST(test_wire_form_round_trip_and_checks)
{
	struct bar_list list = { 0 }, back = { 0 };
	char err[256];
	ck_assert_int_eq(parse("ticker,day,close\nAAPL,1,3.25\nMSFT,-2,400\n", &list, err, sizeof err), 0);
	json_t *rows = bars_to_json(&list, 0, 10);
	ck_assert_uint_eq(json_array_size(rows), 2);
	ck_assert_int_eq(bars_from_json(rows, &back, err, sizeof err), 0);
	ck_assert_uint_eq(back.count, 2);
	ck_assert_str_eq(back.bars[1].ticker, "MSFT");
	ck_assert_int_eq(back.bars[1].day, -2);
	ck_assert_double_eq_tol(back.bars[0].close, 3.25, 1e-12);
	json_decref(rows);
	/* A chunk is a slice. */
	rows = bars_to_json(&list, 1, 1);
	ck_assert_uint_eq(json_array_size(rows), 1);
	json_decref(rows);

	/* What the daemon refuses from the socket. */
	static const struct {
		const char *json, *message;
	} bad[] = {
		{ "[]", "non-empty array" },
		{ "{}", "non-empty array" },
		{ "[[\"AAPL\", 1]]", "bars[0]: must be [ticker, day, close]" },
		{ "[[\"AAPL\", 1, 2], [\"A A\", 1, 2]]", "bars[1]: ticker" },
		{ "[[\"AAPL\", 1.5, 2]]", "bars[0]: day" },
		{ "[[\"AAPL\", 1, 0]]", "bars[0]: close" },
		{ "[[\"AAPL\", 1, \"3\"]]", "bars[0]: close" },
		{ "[[\"AAPL\", 99999999999, 3]]", "bars[0]: day" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *value = json_loads(bad[i].json, JSON_DECODE_ANY, NULL);
		ck_assert_ptr_nonnull(value);
		ck_assert_int_eq(bars_from_json(value, &back, err, sizeof err), -1);
		ck_assert_msg(strstr(err, bad[i].message) != NULL, "%s: '%s'", bad[i].json, err);
		ck_assert_uint_eq(back.count, 0);
		json_decref(value);
	}
	bar_list_free(&list);
}
END_TEST

/* The shipped sample data reads whole: 4 indices of 1,860 days each. */
START_TEST(test_shipped_sample_data)
{
	const char *source = getenv("SIGTRIG_SOURCE_DIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/data/eu_stock_markets.csv", source != NULL ? source : ".");
	FILE *file = fopen(path, "rb");
	ck_assert_msg(file != NULL, "cannot open %s", path);
	static char text[1 << 20];
	size_t length = fread(text, 1, sizeof text, file);
	fclose(file);
	ck_assert_uint_lt(length, sizeof text);
	struct bar_list list = { 0 };
	char err[256];
	ck_assert_msg(bars_csv_parse(text, length, &list, err, sizeof err) == 0, "%s", err);
	ck_assert_uint_eq(list.count, 4 * 1860);
	size_t dax = 0;
	for (size_t i = 0; i < list.count; i++)
		if (strcmp(list.bars[i].ticker, "DAX") == 0) {
			dax++;
			ck_assert_int_ge(list.bars[i].day, 0);
			ck_assert_int_le(list.bars[i].day, 1859);
		}
	ck_assert_uint_eq(dax, 1860);
	bar_list_free(&list);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("bars_csv");
	TCase *tcase = tcase_create("parse");
	tcase_add_test(tcase, test_sample_layout_is_read);
	tcase_add_test(tcase, test_dates_quotes_crlf_and_column_order);
	tcase_add_test(tcase, test_date_arithmetic);
	tcase_add_test(tcase, test_spaces_around_unquoted_values_are_not_part_of_them);
	tcase_add_test(tcase, test_errors_name_the_line_and_load_nothing);
	tcase_add_test(tcase, test_nul_byte_is_refused);
	tcase_add_test(tcase, test_wire_form_round_trip_and_checks);
	tcase_add_test(tcase, test_shipped_sample_data);
	suite_add_tcase(suite, tcase);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

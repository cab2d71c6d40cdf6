/* The text buffer: growth, formatted text past its small stack copy, JSON strings and values. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "text_buffer.h"

START_TEST(test_appends_grow_the_buffer_and_keep_it_terminated)
{
	struct text_buffer buffer = { 0 };
	for (int i = 0; i < 1000; i++)
		text_buffer_puts(&buffer, "0123456789");
	ck_assert(!buffer.failed);
	ck_assert_uint_eq(buffer.length, 10000);
	ck_assert_uint_eq(strlen(buffer.data), 10000);
	text_buffer_truncate(&buffer, 3);
	ck_assert_str_eq(buffer.data, "012");
	free(buffer.data);
}
END_TEST

START_TEST(test_printf_writes_long_text_whole)
{
	char long_text[301];
	memset(long_text, 'x', 300);
	long_text[300] = '\0';
	struct text_buffer buffer = { 0 };
	text_buffer_puts(&buffer, "<");
	text_buffer_printf(&buffer, "%s|%d", long_text, 42);
	ck_assert(!buffer.failed);
	ck_assert_uint_eq(buffer.length, 1 + 300 + 3);
	ck_assert_int_eq(strncmp(buffer.data + 1, long_text, 300), 0);
	ck_assert_str_eq(buffer.data + 301, "|42");
	free(buffer.data);
}
END_TEST

START_TEST(test_json_strings_read_back_as_the_text)
{
	static const char *const texts[] = { "", "plain", "quote \" and backslash \\", "tab\tnew\nline\r\x01\x1f",
					     "caf\xc3\xa9 \xe2\x82\xac", "/slash/" };
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		struct text_buffer buffer = { 0 };
		text_buffer_puts(&buffer, "[");
		text_buffer_json_string(&buffer, texts[i]);
		text_buffer_json_member(&buffer, ",", texts[i]);
		text_buffer_puts(&buffer, "]");
		json_error_t error;
		json_t *read = json_loads(buffer.data, 0, &error);
		ck_assert_msg(read != NULL, "%s: %s", buffer.data, error.text);
		ck_assert_str_eq(json_string_value(json_array_get(read, 0)), texts[i]);
		ck_assert_str_eq(json_string_value(json_array_get(read, 1)), texts[i]);
		json_decref(read);
		free(buffer.data);
	}
}
END_TEST

START_TEST(test_json_values_are_written_compact)
{
	json_t *value = json_pack("{s:[i, f, n], s:s}", "a", 1, 2.5, "b", "x\"y");
	struct text_buffer buffer = { 0 };
	text_buffer_json_value(&buffer, value);
	ck_assert(!buffer.failed);
	json_t *read = json_loads(buffer.data, 0, NULL);
	ck_assert(json_equal(read, value));
	ck_assert_ptr_null(strchr(buffer.data, ' '));
	text_buffer_json_value(&buffer, NULL);
	ck_assert(buffer.failed);
	json_decref(read);
	json_decref(value);
	free(buffer.data);
}
END_TEST

START_TEST(test_string_arrays_are_written_as_json_dumps_writes_them)
{
	json_t *cases[] = { json_pack("[]"), json_pack("[s]", "AAPL"), json_pack("[s, s]", "Q\"{\\,}", "") };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct text_buffer buffer = { 0 };
		text_buffer_json_string_array(&buffer, "x:", cases[i]);
		char *expected = json_dumps(cases[i], JSON_COMPACT);
		ck_assert(!buffer.failed);
		ck_assert_str_eq(buffer.data + 2, expected);
		ck_assert(strncmp(buffer.data, "x:", 2) == 0);
		free(expected);
		free(buffer.data);
		json_decref(cases[i]);
	}
	/* Control characters are escaped as \u00XX: the same strings, read back. */
	json_t *controls = json_pack("[s, s]", "\n\t", "a\001b");
	struct text_buffer escaped = { 0 };
	text_buffer_json_string_array(&escaped, "", controls);
	json_t *read = json_loads(escaped.data, 0, NULL);
	ck_assert(json_equal(read, controls));
	ck_assert_str_eq(escaped.data, "[\"\\u000a\\u0009\",\"a\\u0001b\"]");
	json_decref(read);
	json_decref(controls);
	free(escaped.data);
	/* What is not a string is written as an empty one. */
	json_t *mixed = json_pack("[s, i]", "A", 7);
	struct text_buffer buffer = { 0 };
	text_buffer_json_string_array(&buffer, "", mixed);
	ck_assert_str_eq(buffer.data, "[\"A\",\"\"]");
	free(buffer.data);
	json_decref(mixed);
}
END_TEST

START_TEST(test_pg_array_elements_are_quoted_with_quotes_and_backslashes_escaped)
{
	struct text_buffer buffer = { 0 };
	const char tricky[] = "a\"b\\c{,} NULL";
	text_buffer_puts(&buffer, "{");
	text_buffer_pg_array_element(&buffer, tricky, strlen(tricky));
	text_buffer_puts(&buffer, ",");
	text_buffer_pg_array_element(&buffer, "", 0);
	text_buffer_puts(&buffer, "}");
	ck_assert_str_eq(buffer.data, "{\"a\\\"b\\\\c{,} NULL\",\"\"}");
	/* An array literal as an element of another: its quotes and escapes escaped once more. */
	struct text_buffer outer = { 0 };
	text_buffer_pg_array_element(&outer, buffer.data, buffer.length);
	ck_assert_str_eq(outer.data, "\"{\\\"a\\\\\\\"b\\\\\\\\c{,} NULL\\\",\\\"\\\"}\"");
	/* Only `length` characters are taken. */
	text_buffer_truncate(&outer, 0);
	text_buffer_pg_array_element(&outer, "abc", 2);
	ck_assert_str_eq(outer.data, "\"ab\"");
	ck_assert(!buffer.failed && !outer.failed);
	free(buffer.data);
	free(outer.data);
}
END_TEST

/* The stores' text[] literal is built from the same elements. */
START_TEST(test_db_text_array_literal_quotes_and_escapes_each_item)
{
	const char *items[] = { "AAPL", "a\"b\\c", "{,}", "" };
	char *literal = db_text_array_literal(items, 4);
	ck_assert_str_eq(literal, "{\"AAPL\",\"a\\\"b\\\\c\",\"{,}\",\"\"}");
	free(literal);
	literal = db_text_array_literal(NULL, 0);
	ck_assert_str_eq(literal, "{}");
	free(literal);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("text_buffer");
	TCase *text = tcase_create("text");
	tcase_add_test(text, test_appends_grow_the_buffer_and_keep_it_terminated);
	tcase_add_test(text, test_printf_writes_long_text_whole);
	tcase_add_test(text, test_json_strings_read_back_as_the_text);
	tcase_add_test(text, test_json_values_are_written_compact);
	tcase_add_test(text, test_string_arrays_are_written_as_json_dumps_writes_them);
	tcase_add_test(text, test_pg_array_elements_are_quoted_with_quotes_and_backslashes_escaped);
	tcase_add_test(text, test_db_text_array_literal_quotes_and_escapes_each_item);
	suite_add_tcase(suite, text);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* The signal model: parsing and validation, the canonical JSON form, the builders. */
#include <check.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "signal.h"
#include "timeutil.h"

static const char full_signal[] =
	"{\"signal_id\": \"3f0c2a4e-8d5b-4b8e-9a51-2c6f1e7d9b10\", \"timestamp\": 1732530736,"
	" \"signal_type\": \"technical\", \"source\": \"unit-test\","
	" \"tickers\": [{\"ticker\": \"AAPL\", \"signal\": \"BULLISH\", \"confidence\": 85.5,"
	" \"reasoning\": \"breakout\"},"
	" {\"ticker\": \"BRK.B\", \"signal\": \"BEARISH\", \"confidence\": 12, \"reasoning\": \"weak\"}],"
	" \"metadata\": {\"strategy\": \"momentum\", \"window\": [5, 20]}}";

/* What signal_serialize() must write for full_signal: compact, fields in a fixed order. */
static const char full_signal_canonical[] =
	"{\"signal_id\":\"3f0c2a4e-8d5b-4b8e-9a51-2c6f1e7d9b10\",\"timestamp\":1732530736,"
	"\"signal_type\":\"technical\",\"source\":\"unit-test\","
	"\"tickers\":[{\"ticker\":\"AAPL\",\"signal\":\"BULLISH\",\"confidence\":85.5,\"reasoning\":\"breakout\"},"
	"{\"ticker\":\"BRK.B\",\"signal\":\"BEARISH\",\"confidence\":12.0,\"reasoning\":\"weak\"}],"
	"\"metadata\":{\"strategy\":\"momentum\",\"window\":[5,20]}}";

static json_t *full_signal_object(void)
{
	json_error_t json_error;
	json_t *object = json_loads(full_signal, 0, &json_error);
	ck_assert_msg(object != NULL, "%s", json_error.text);
	return object;
}

static int parse_text(const char *text, struct signal *signal, struct signal_error *error)
{
	return signal_parse(text, strlen(text), signal, error);
}

static int is_lower_case_uuid(const char *text)
{
	uuid_t parsed;
	if (strlen(text) != SIGNAL_ID_LENGTH || uuid_parse(text, parsed) != 0)
		return 0;
	for (const char *c = text; *c != '\0'; c++)
		if (isupper((unsigned char)*c))
			return 0;
	return 1;
}

static char *repeated(char c, size_t count)
{
	char *text = malloc(count + 1);
	ck_assert_ptr_nonnull(text);
	memset(text, c, count);
	text[count] = '\0';
	return text;
}

/* ---- valid signals ---- */

START_TEST(test_full_signal_parses_every_field)
{
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(parse_text(full_signal, &signal, &error), 0);
	ck_assert_str_eq(signal.signal_id, "3f0c2a4e-8d5b-4b8e-9a51-2c6f1e7d9b10");
	ck_assert(signal.timestamp == 1732530736.0);
	ck_assert_str_eq(signal.signal_type, "technical");
	ck_assert_str_eq(signal.source, "unit-test");
	ck_assert_uint_eq(signal.ticker_count, 2);
	ck_assert_str_eq(signal.tickers[0].ticker, "AAPL");
	ck_assert_int_eq(signal.tickers[0].direction, SIGNAL_BULLISH);
	ck_assert(signal.tickers[0].confidence == 85.5);
	ck_assert_str_eq(signal.tickers[0].reasoning, "breakout");
	ck_assert_str_eq(signal.tickers[1].ticker, "BRK.B");
	ck_assert_int_eq(signal.tickers[1].direction, SIGNAL_BEARISH);
	ck_assert(signal.tickers[1].confidence == 12.0);
	ck_assert_str_eq(signal.tickers[1].reasoning, "weak");
	ck_assert_str_eq(json_string_value(json_object_get(signal.metadata, "strategy")), "momentum");
	ck_assert_uint_eq(json_array_size(json_object_get(signal.metadata, "window")), 2);
	signal_free(&signal);
}
END_TEST

START_TEST(test_serialize_writes_canonical_compact_form)
{
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(parse_text(full_signal, &signal, &error), 0);
	char *text = signal_serialize(&signal);
	ck_assert_str_eq(text, full_signal_canonical);
	free(text);
	signal_free(&signal);
}
END_TEST

/* Signals whose written text must equal, as JSON, their signal_to_json(). */
static const char *const written_signals[] = {
	"{\"signal_id\": \"7f1f8a0e-3b1c-4f55-9d2a-0c6f1d2e3a4b\", \"timestamp\": 1764662400,"
	" \"signal_type\": \"golden_cross\", \"source\": \"mock\", \"tickers\": [{\"ticker\": \"AAPL\","
	" \"signal\": \"BULLISH\", \"confidence\": 90, \"reasoning\": \"\"}]}",
	/* A fractional time, several tickers, a confidence with many digits, metadata. */
	"{\"timestamp\": 1764662400.123456, \"signal_type\": \"news\", \"source\": \"wire\","
	" \"tickers\": [{\"ticker\": \"DAX\", \"signal\": \"BEARISH\", \"confidence\": 33.333333333333336},"
	" {\"ticker\": \"SMI\", \"signal\": \"NEUTRAL\", \"confidence\": 0}],"
	" \"metadata\": {\"weight\": 2.5, \"tags\": [\"a\", null, true], \"nested\": {\"x\": 1}}}",
	/* Texts that need escapes: quotes, backslashes, control characters, non-ASCII. */
	"{\"signal_type\": \"t\\\"q\\\\b\", \"source\": \"caf\u00e9 \\u00e9\\t\", \"tickers\": [{\"ticker\": \"BRK.B\","
	" \"signal\": \"BULLISH\", \"confidence\": 51.5, \"reasoning\": \"line\\nbreak \\u0001 \\\"x\\\"\"}]}",
};

START_TEST(test_written_signal_equals_its_canonical_json)
{
	struct signal signal;
	struct signal_error error;
	ck_assert_msg(parse_text(written_signals[_i], &signal, &error) == 0, "%s: %s", error.field, error.reason);
	struct text_buffer buffer = { 0 };
	text_buffer_puts(&buffer, "[");
	signal_write_json(&signal, &buffer);
	text_buffer_puts(&buffer, "]");
	ck_assert(!buffer.failed);
	json_error_t json_error;
	json_t *written = json_loads(buffer.data, 0, &json_error);
	ck_assert_msg(written != NULL, "%s: %s", buffer.data, json_error.text);
	json_t *canonical = signal_to_json(&signal);
	ck_assert_msg(json_equal(json_array_get(written, 0), canonical), "%s", buffer.data);
	json_decref(canonical);
	json_decref(written);
	free(buffer.data);
	signal_free(&signal);
}
END_TEST

START_TEST(test_serialized_signal_parses_back_to_equal_json)
{
	struct signal first, second;
	struct signal_error error;
	ck_assert_int_eq(parse_text(full_signal, &first, &error), 0);
	char *text = signal_serialize(&first);
	ck_assert_int_eq(parse_text(text, &second, &error), 0);
	json_t *a = signal_to_json(&first);
	json_t *b = signal_to_json(&second);
	json_t *canonical = json_loads(full_signal_canonical, 0, NULL);
	ck_assert(json_equal(a, b));
	ck_assert(json_equal(a, canonical));
	json_decref(canonical);
	json_decref(a);
	json_decref(b);
	free(text);
	signal_free(&first);
	signal_free(&second);
}
END_TEST

START_TEST(test_fractional_timestamp_survives_round_trip)
{
	json_t *object = full_signal_object();
	json_object_set_new(object, "timestamp", json_real(1732530736.25));
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_from_json(object, &signal, &error), 0);
	json_t *out = signal_to_json(&signal);
	ck_assert(json_is_real(json_object_get(out, "timestamp")));
	ck_assert(json_real_value(json_object_get(out, "timestamp")) == 1732530736.25);
	json_decref(out);
	json_decref(object);
	signal_free(&signal);
}
END_TEST

START_TEST(test_upper_case_signal_id_is_stored_lower_case)
{
	json_t *object = full_signal_object();
	json_object_set_new(object, "signal_id", json_string("3F0C2A4E-8D5B-4B8E-9A51-2C6F1E7D9B10"));
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_from_json(object, &signal, &error), 0);
	ck_assert_str_eq(signal.signal_id, "3f0c2a4e-8d5b-4b8e-9a51-2c6f1e7d9b10");
	json_decref(object);
	signal_free(&signal);
}
END_TEST

START_TEST(test_missing_signal_id_gets_fresh_lower_case_uuid)
{
	json_t *object = full_signal_object();
	json_object_del(object, "signal_id");
	struct signal a, b;
	struct signal_error error;
	ck_assert_int_eq(signal_from_json(object, &a, &error), 0);
	ck_assert_int_eq(signal_from_json(object, &b, &error), 0);
	ck_assert_msg(is_lower_case_uuid(a.signal_id), "'%s' is not a lower-case UUID", a.signal_id);
	ck_assert_msg(is_lower_case_uuid(b.signal_id), "'%s' is not a lower-case UUID", b.signal_id);
	ck_assert_str_ne(a.signal_id, b.signal_id);
	json_decref(object);
	signal_free(&a);
	signal_free(&b);
}
END_TEST

START_TEST(test_null_signal_id_counts_as_missing)
{
	json_t *object = full_signal_object();
	json_object_set_new(object, "signal_id", json_null());
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_from_json(object, &signal, &error), 0);
	ck_assert(is_lower_case_uuid(signal.signal_id));
	json_decref(object);
	signal_free(&signal);
}
END_TEST

START_TEST(test_missing_timestamp_gets_current_time)
{
	json_t *object = full_signal_object();
	json_object_del(object, "timestamp");
	struct signal signal;
	struct signal_error error;
	double before = time_now_seconds();
	ck_assert_int_eq(signal_from_json(object, &signal, &error), 0);
	double after = time_now_seconds();
	ck_assert_msg(signal.timestamp >= before - 0.001 && signal.timestamp <= after + 0.001,
		      "timestamp %f not within [%f, %f]", signal.timestamp, before, after);
	json_decref(object);
	signal_free(&signal);
}
END_TEST

START_TEST(test_missing_metadata_becomes_empty_object)
{
	json_t *object = full_signal_object();
	json_object_del(object, "metadata");
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_from_json(object, &signal, &error), 0);
	ck_assert(json_is_object(signal.metadata));
	ck_assert_uint_eq(json_object_size(signal.metadata), 0);
	char *text = signal_serialize(&signal);
	ck_assert_ptr_nonnull(strstr(text, "\"metadata\":{}"));
	free(text);
	json_decref(object);
	signal_free(&signal);
}
END_TEST

START_TEST(test_missing_reasoning_becomes_empty_string)
{
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(parse_text("{\"signal_type\":\"t\",\"source\":\"s\",\"tickers\":"
				    "[{\"ticker\":\"MSFT\",\"signal\":\"NEUTRAL\",\"confidence\":0}]}",
				    &signal, &error),
			 0);
	ck_assert_ptr_nonnull(signal.tickers[0].reasoning);
	ck_assert_str_eq(signal.tickers[0].reasoning, "");
	ck_assert_int_eq(signal.tickers[0].direction, SIGNAL_NEUTRAL);
	signal_free(&signal);
}
END_TEST

START_TEST(test_metadata_is_copied_not_shared)
{
	json_t *object = full_signal_object();
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_from_json(object, &signal, &error), 0);
	json_object_set_new(json_object_get(object, "metadata"), "strategy", json_string("changed"));
	ck_assert_str_eq(json_string_value(json_object_get(signal.metadata, "strategy")), "momentum");
	json_decref(object);
	signal_free(&signal);
}
END_TEST

START_TEST(test_parse_reads_only_the_given_length)
{
	/* The text is not terminated where the signal ends: a Kafka payload is not. */
	size_t length = strlen(full_signal);
	char *text = malloc(length + 16);
	memcpy(text, full_signal, length);
	memcpy(text + length, "garbage}}}", 10);
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_parse(text, length, &signal, &error), 0);
	ck_assert_str_eq(signal.source, "unit-test");
	signal_free(&signal);
	free(text);
}
END_TEST

START_TEST(test_boundary_values_are_accepted)
{
	/* timestamp 0 and year 9999, confidence 0 and 100, SIGNAL_MAX_TICKERS tickers,
	 * texts of exactly their maximum length. */
	char *long_text = repeated('x', SIGNAL_TEXT_MAX);
	char *long_ticker = repeated('T', SIGNAL_TICKER_MAX);
	char *long_reasoning = repeated('r', SIGNAL_REASONING_MAX);
	const double timestamps[] = { 0, 253402300799.0 };
	for (size_t k = 0; k < 2; k++) {
		json_t *tickers = json_array();
		for (int i = 0; i < SIGNAL_MAX_TICKERS; i++)
			json_array_append_new(tickers, json_pack("{s:s, s:s, s:f, s:s}", "ticker",
								 i == 0 ? long_ticker : "A", "signal",
								 "BULLISH", "confidence", i % 2 ? 0.0 : 100.0,
								 "reasoning", long_reasoning));
		json_t *object = json_pack("{s:f, s:s, s:s, s:o}", "timestamp", timestamps[k],
					   "signal_type", long_text, "source", long_text, "tickers", tickers);
		struct signal signal;
		struct signal_error error;
		int status = signal_from_json(object, &signal, &error);
		ck_assert_msg(status == 0, "%s: %s", error.field, error.reason);
		ck_assert_uint_eq(signal.ticker_count, SIGNAL_MAX_TICKERS);
		ck_assert(signal.timestamp == timestamps[k]);
		ck_assert_str_eq(signal.tickers[0].ticker, long_ticker);
		signal_free(&signal);
		json_decref(object);
	}
	free(long_text);
	free(long_ticker);
	free(long_reasoning);
}
END_TEST

START_TEST(test_text_of_exactly_max_bytes_is_accepted)
{
	char *text = repeated(' ', SIGNAL_MAX_BYTES);
	memcpy(text, full_signal, strlen(full_signal));
	struct signal signal;
	struct signal_error error;
	int status = signal_parse(text, SIGNAL_MAX_BYTES, &signal, &error);
	ck_assert_msg(status == 0, "%s: %s", error.field, error.reason);
	signal_free(&signal);
	free(text);
}
END_TEST

/* ---- invalid signals: each names the field and says why ---- */

/*
 * One bad input per row: the full signal with one member replaced
 * (value NULL: removed). `where` is "" for the signal itself, or
 * "tickers[1]" for its second ticker.
 */
struct malformation {
	const char *where;
	const char *member;
	const char *value; /* JSON text */
	const char *field;
	const char *reason; /* a fragment of the reason */
};

static const struct malformation malformations[] = {
	{ "", "signal_id", "\"not-a-uuid\"", "signal_id", "UUID" },
	{ "", "signal_id", "\"3f0c2a4e8d5b4b8e9a512c6f1e7d9b10\"", "signal_id", "UUID" },
	{ "", "signal_id", "\"{3f0c2a4e-8d5b-4b8e-9a51-2c6f1e7d9b1}\"", "signal_id", "UUID" },
	{ "", "signal_id", "42", "signal_id", "UUID" },
	{ "", "timestamp", "\"1732530736\"", "timestamp", "must be a number" },
	{ "", "timestamp", "true", "timestamp", "must be a number" },
	{ "", "timestamp", "-1", "timestamp", "between 0 and 253402300799" },
	{ "", "timestamp", "1732530736000", "timestamp", "between 0 and 253402300799" },
	{ "", "timestamp", "253402300800", "timestamp", "between 0 and 253402300799" },
	{ "", "signal_type", NULL, "signal_type", "is required" },
	{ "", "signal_type", "null", "signal_type", "is required" },
	{ "", "signal_type", "\"\"", "signal_type", "must not be empty" },
	{ "", "signal_type", "7", "signal_type", "must be a string" },
	{ "", "signal_type", "[\"technical\"]", "signal_type", "must be a string" },
	{ "", "signal_type", "\"a\\u0000b\"", "signal_type", "NUL" },
	{ "", "source", NULL, "source", "is required" },
	{ "", "source", "\"\"", "source", "must not be empty" },
	{ "", "source", "{}", "source", "must be a string" },
	{ "", "tickers", NULL, "tickers", "is required" },
	{ "", "tickers", "null", "tickers", "is required" },
	{ "", "tickers", "\"AAPL\"", "tickers", "must be an array" },
	{ "", "tickers", "{\"ticker\": \"AAPL\"}", "tickers", "must be an array" },
	{ "", "tickers", "[]", "tickers", "must not be empty" },
	{ "", "metadata", "[]", "metadata", "must be an object" },
	{ "", "metadata", "\"x\"", "metadata", "must be an object" },
	{ "tickers[1]", "ticker", NULL, "tickers[1].ticker", "is required" },
	{ "tickers[1]", "ticker", "5", "tickers[1].ticker", "must be a string" },
	{ "tickers[1]", "ticker", "null", "tickers[1].ticker", "must be a string" },
	{ "tickers[1]", "ticker", "\"\"", "tickers[1].ticker", "printable characters without spaces" },
	{ "tickers[1]", "ticker", "\"BRK B\"", "tickers[1].ticker", "printable characters without spaces" },
	{ "tickers[1]", "ticker", "\"AAPL\\t\"", "tickers[1].ticker", "printable characters without spaces" },
	{ "tickers[1]", "ticker", "\"\\u00c9TF\"", "tickers[1].ticker", "printable characters without spaces" },
	{ "tickers[1]", "ticker", "\"AB\\u0000CD\"", "tickers[1].ticker", "printable characters without spaces" },
	{ "tickers[1]", "ticker", "\"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\"", "tickers[1].ticker",
	  "printable characters without spaces" },
	{ "tickers[1]", "signal", NULL, "tickers[1].signal", "is required" },
	{ "tickers[1]", "signal", "1", "tickers[1].signal", "must be a string" },
	{ "tickers[1]", "signal", "\"bullish\"", "tickers[1].signal", "BULLISH, BEARISH or NEUTRAL" },
	{ "tickers[1]", "signal", "\"BUY\"", "tickers[1].signal", "BULLISH, BEARISH or NEUTRAL" },
	{ "tickers[1]", "signal", "\"\"", "tickers[1].signal", "BULLISH, BEARISH or NEUTRAL" },
	{ "tickers[1]", "confidence", NULL, "tickers[1].confidence", "is required" },
	{ "tickers[1]", "confidence", "\"90\"", "tickers[1].confidence", "must be a number" },
	{ "tickers[1]", "confidence", "null", "tickers[1].confidence", "must be a number" },
	{ "tickers[1]", "confidence", "-1", "tickers[1].confidence", "between 0 and 100" },
	{ "tickers[1]", "confidence", "100.5", "tickers[1].confidence", "between 0 and 100" },
	{ "tickers[1]", "confidence", "1e300", "tickers[1].confidence", "between 0 and 100" },
	{ "tickers[1]", "reasoning", "12", "tickers[1].reasoning", "must be a string" },
	{ "tickers[1]", "reasoning", "[\"a\"]", "tickers[1].reasoning", "must be a string" },
};

static json_t *apply_malformation(const struct malformation *bad)
{
	json_t *object = full_signal_object();
	json_t *target = object;
	if (strcmp(bad->where, "tickers[1]") == 0)
		target = json_array_get(json_object_get(object, "tickers"), 1);
	if (bad->value == NULL) {
		json_object_del(target, bad->member);
	} else {
		json_error_t json_error;
		json_t *value = json_loads(bad->value, JSON_DECODE_ANY | JSON_ALLOW_NUL, &json_error);
		ck_assert_msg(value != NULL, "test table: %s: %s", bad->value, json_error.text);
		json_object_set_new(target, bad->member, value);
	}
	return object;
}

START_TEST(test_malformed_signal_fails_naming_field_and_reason)
{
	const struct malformation *bad = &malformations[_i];
	json_t *object = apply_malformation(bad);
	struct signal signal;
	struct signal_error error;
	ck_assert_msg(signal_from_json(object, &signal, &error) == -1, "%s=%s was accepted", bad->member,
		      bad->value != NULL ? bad->value : "(removed)");
	ck_assert_str_eq(error.field, bad->field);
	ck_assert_msg(strstr(error.reason, bad->reason) != NULL, "reason '%s' does not say '%s'",
		      error.reason, bad->reason);
	/* A failed parse leaves the signal empty, so freeing it again is harmless. */
	ck_assert_ptr_null(signal.tickers);
	ck_assert_ptr_null(signal.signal_type);
	ck_assert_ptr_null(signal.metadata);
	signal_free(&signal);

	/* The same through the text path, where a NUL escape is already invalid JSON. */
	char *text = json_dumps(object, JSON_COMPACT);
	struct signal_error text_error;
	ck_assert_int_eq(parse_text(text, &signal, &text_error), -1);
	if (bad->value != NULL && strstr(bad->value, "\\u0000") != NULL)
		ck_assert_ptr_nonnull(strstr(text_error.reason, "invalid JSON"));
	else
		ck_assert_str_eq(text_error.field, bad->field);
	free(text);
	json_decref(object);
}
END_TEST

START_TEST(test_ticker_entry_that_is_not_object_names_its_index)
{
	json_t *object = full_signal_object();
	json_array_set_new(json_object_get(object, "tickers"), 1, json_string("MSFT"));
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_from_json(object, &signal, &error), -1);
	ck_assert_str_eq(error.field, "tickers[1]");
	ck_assert_ptr_nonnull(strstr(error.reason, "must be an object"));
	json_decref(object);
}
END_TEST

START_TEST(test_too_many_tickers_fails)
{
	json_t *object = full_signal_object();
	json_t *tickers = json_array();
	for (int i = 0; i < SIGNAL_MAX_TICKERS + 1; i++)
		json_array_append_new(tickers, json_pack("{s:s, s:s, s:i}", "ticker", "AAPL", "signal",
							 "NEUTRAL", "confidence", 50));
	json_object_set_new(object, "tickers", tickers);
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_from_json(object, &signal, &error), -1);
	ck_assert_str_eq(error.field, "tickers");
	ck_assert_ptr_nonnull(strstr(error.reason, "more than 256"));
	json_decref(object);
}
END_TEST

START_TEST(test_over_long_texts_fail)
{
	char *long_text = repeated('x', SIGNAL_TEXT_MAX + 1);
	char *long_reasoning = repeated('r', SIGNAL_REASONING_MAX + 1);
	const char *members[] = { "signal_type", "source" };
	for (size_t i = 0; i < 2; i++) {
		json_t *object = full_signal_object();
		json_object_set_new(object, members[i], json_string(long_text));
		struct signal signal;
		struct signal_error error;
		ck_assert_int_eq(signal_from_json(object, &signal, &error), -1);
		ck_assert_str_eq(error.field, members[i]);
		ck_assert_ptr_nonnull(strstr(error.reason, "longer than 256"));
		json_decref(object);
	}
	json_t *object = full_signal_object();
	json_object_set_new(json_array_get(json_object_get(object, "tickers"), 0), "reasoning",
			    json_string(long_reasoning));
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_from_json(object, &signal, &error), -1);
	ck_assert_str_eq(error.field, "tickers[0].reasoning");
	ck_assert_ptr_nonnull(strstr(error.reason, "longer than 4096"));
	json_decref(object);
	free(long_text);
	free(long_reasoning);
}
END_TEST

START_TEST(test_first_bad_ticker_is_reported)
{
	json_t *object = full_signal_object();
	json_t *tickers = json_object_get(object, "tickers");
	json_object_set_new(json_array_get(tickers, 0), "signal", json_string("UP"));
	json_object_set_new(json_array_get(tickers, 1), "confidence", json_integer(500));
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_from_json(object, &signal, &error), -1);
	ck_assert_str_eq(error.field, "tickers[0].signal");
	json_decref(object);
}
END_TEST

START_TEST(test_invalid_json_fails_with_position)
{
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(parse_text("{\"signal_type\": \"t\",\n \"source\": }", &signal, &error), -1);
	ck_assert_str_eq(error.field, "");
	ck_assert_msg(strstr(error.reason, "invalid JSON at line 2 column") != NULL, "reason: %s",
		      error.reason);
}
END_TEST

START_TEST(test_non_finite_confidence_is_rejected)
{
	/* JSON has no NaN or infinity: such text is invalid, and the builder refuses them. */
	const char *texts[] = {
		"{\"signal_type\":\"t\",\"source\":\"s\",\"tickers\":[{\"ticker\":\"A\",\"signal\":\"BULLISH\",\"confidence\":NaN}]}",
		"{\"signal_type\":\"t\",\"source\":\"s\",\"tickers\":[{\"ticker\":\"A\",\"signal\":\"BULLISH\",\"confidence\":Infinity}]}",
		"{\"signal_type\":\"t\",\"source\":\"s\",\"tickers\":[{\"ticker\":\"A\",\"signal\":\"BULLISH\",\"confidence\":1e999}]}",
	};
	for (size_t i = 0; i < 3; i++) {
		struct signal signal;
		struct signal_error error;
		ck_assert_int_eq(parse_text(texts[i], &signal, &error), -1);
		ck_assert_ptr_nonnull(strstr(error.reason, "invalid JSON"));
	}
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_init_single(&signal, "t", "s", "AAPL", SIGNAL_BULLISH, NAN, "", &error), -1);
	ck_assert_str_ne(error.reason, "");
	ck_assert_int_eq(signal_init_single(&signal, "t", "s", "AAPL", SIGNAL_BULLISH, INFINITY, "", &error), -1);
}
END_TEST

START_TEST(test_non_object_inputs_fail)
{
	const char *not_objects[] = { "[]", "[1, 2]", "[{\"signal_type\": \"t\"}]" };
	for (size_t i = 0; i < 3; i++) {
		struct signal signal;
		struct signal_error error;
		ck_assert_int_eq(parse_text(not_objects[i], &signal, &error), -1);
		ck_assert_str_eq(error.field, "");
		ck_assert_msg(strstr(error.reason, "must be a JSON object") != NULL, "%s: %s",
			      not_objects[i], error.reason);
	}
	json_t *values[] = { json_null(), json_string("x"), json_integer(1), json_array() };
	for (size_t i = 0; i < 4; i++) {
		struct signal signal;
		struct signal_error error;
		ck_assert_int_eq(signal_from_json(values[i], &signal, &error), -1);
		ck_assert_ptr_nonnull(strstr(error.reason, "must be a JSON object"));
		json_decref(values[i]);
	}
}
END_TEST

START_TEST(test_oversized_text_fails_before_parsing)
{
	char *text = repeated(' ', SIGNAL_MAX_BYTES + 1);
	memcpy(text, full_signal, strlen(full_signal));
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_parse(text, SIGNAL_MAX_BYTES + 1, &signal, &error), -1);
	ck_assert_str_eq(error.field, "");
	ck_assert_ptr_nonnull(strstr(error.reason, "more than 65536"));
	free(text);
}
END_TEST

START_TEST(test_duplicate_keys_fail)
{
	const char *texts[] = {
		"{\"signal_type\":\"a\",\"signal_type\":\"b\",\"source\":\"s\",\"tickers\":[{\"ticker\":\"A\",\"signal\":\"BULLISH\",\"confidence\":1}]}",
		"{\"signal_type\":\"a\",\"source\":\"s\",\"tickers\":[{\"ticker\":\"A\",\"ticker\":\"B\",\"signal\":\"BULLISH\",\"confidence\":1}]}",
	};
	for (size_t i = 0; i < 2; i++) {
		struct signal signal;
		struct signal_error error;
		ck_assert_int_eq(parse_text(texts[i], &signal, &error), -1);
		ck_assert_msg(strstr(error.reason, "duplicate") != NULL, "reason: %s", error.reason);
	}
}
END_TEST

START_TEST(test_garbage_never_crashes)
{
	const char *inputs[] = { "", "null", "true", "0", "\"x\"", "{", "}", "{\"", "\x01\x02\xff",
				 "{\"tickers\":[[[[[[]]]]]]}", "{\"signal_type\":\"\\ud800\"}" };
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		struct signal signal;
		struct signal_error error;
		ck_assert_int_eq(parse_text(inputs[i], &signal, &error), -1);
		ck_assert_str_ne(error.reason, "");
	}
	/* Nesting far deeper than any parser stack should allow. */
	size_t depth = 60000;
	char *deep = malloc(2 * depth + 1);
	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	deep[2 * depth] = '\0';
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_parse(deep, 2 * depth, &signal, &error), -1);
	ck_assert_str_ne(error.reason, "");
	/* An unterminated one, too. */
	ck_assert_int_eq(signal_parse(deep, depth, &signal, &error), -1);
	free(deep);
}
END_TEST

START_TEST(test_every_truncation_of_valid_signal_fails_cleanly)
{
	size_t length = strlen(full_signal);
	for (size_t cut = 0; cut < length; cut++) {
		struct signal signal;
		struct signal_error error;
		int status = signal_parse(full_signal, cut, &signal, &error);
		ck_assert_msg(status == -1, "prefix of %zu bytes was accepted", cut);
		ck_assert_str_ne(error.reason, "");
	}
}
END_TEST

START_TEST(test_mutated_bytes_never_crash)
{
	/* Every byte replaced by a few troublesome ones: accepted or refused, never a crash. */
	const char replacements[] = { '"', '\\', '{', ']', '\0', '9', '-', 'e' };
	size_t length = strlen(full_signal);
	char *text = malloc(length);
	for (size_t position = 0; position < length; position++) {
		for (size_t r = 0; r < sizeof replacements; r++) {
			memcpy(text, full_signal, length);
			text[position] = replacements[r];
			struct signal signal;
			struct signal_error error;
			if (signal_parse(text, length, &signal, &error) == 0) {
				ck_assert_uint_ge(signal.ticker_count, 1);
				signal_free(&signal);
			} else {
				ck_assert_str_ne(error.reason, "");
			}
		}
	}
	free(text);
}
END_TEST

/* ---- builders and helpers ---- */

START_TEST(test_init_single_builds_valid_signal)
{
	struct signal signal;
	struct signal_error error;
	double before = time_now_seconds();
	ck_assert_int_eq(signal_init_single(&signal, "mock", "generator", "EURUSD=X", SIGNAL_BEARISH, 42.5,
					    "because", &error),
			 0);
	ck_assert(is_lower_case_uuid(signal.signal_id));
	ck_assert(signal.timestamp >= before - 0.001);
	ck_assert_str_eq(signal.signal_type, "mock");
	ck_assert_str_eq(signal.source, "generator");
	ck_assert_uint_eq(signal.ticker_count, 1);
	ck_assert_str_eq(signal.tickers[0].ticker, "EURUSD=X");
	ck_assert_int_eq(signal.tickers[0].direction, SIGNAL_BEARISH);
	ck_assert(signal.tickers[0].confidence == 42.5);
	ck_assert_str_eq(signal.tickers[0].reasoning, "because");
	ck_assert_uint_eq(json_object_size(signal.metadata), 0);
	signal_free(&signal);
}
END_TEST

START_TEST(test_init_single_without_reasoning_gives_empty_reasoning)
{
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_init_single(&signal, "mock", "g", "AAPL", SIGNAL_NEUTRAL, 0, NULL, &error), 0);
	ck_assert_str_eq(signal.tickers[0].reasoning, "");
	signal_free(&signal);
}
END_TEST

START_TEST(test_init_single_validates_like_parse)
{
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_init_single(&signal, "mock", "g", "NOT VALID", SIGNAL_BULLISH, 50, "", &error), -1);
	ck_assert_str_eq(error.field, "tickers[0].ticker");
	ck_assert_int_eq(signal_init_single(&signal, "mock", "g", "AAPL", SIGNAL_BULLISH, 101, "", &error), -1);
	ck_assert_str_eq(error.field, "tickers[0].confidence");
	ck_assert_int_eq(signal_init_single(&signal, "", "g", "AAPL", SIGNAL_BULLISH, 1, "", &error), -1);
	ck_assert_str_eq(error.field, "signal_type");
	ck_assert_int_eq(signal_init_single(&signal, "mock", "g", "AAPL", SIGNAL_BULLISH, 1, "\xff\xfe", &error), -1);
	ck_assert_str_ne(error.reason, "");
}
END_TEST

START_TEST(test_ticker_validity_rules)
{
	const char *valid[] = { "AAPL", "BRK.B", "^GSPC", "EURUSD=X", "BTC-USD", "A", "~!",
				"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345" };
	const char *invalid[] = { "", "BRK B", " AAPL", "AAPL\n", "\tX", "\x7f", "\xc3\x89TF",
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456" };
	for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
		ck_assert_msg(signal_ticker_is_valid(valid[i]), "'%s' should be valid", valid[i]);
	for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
		ck_assert_msg(!signal_ticker_is_valid(invalid[i]), "'%s' should be invalid", invalid[i]);
}
END_TEST

START_TEST(test_direction_names_round_trip_and_reject_lower_case)
{
	const enum signal_direction all[] = { SIGNAL_BULLISH, SIGNAL_BEARISH, SIGNAL_NEUTRAL };
	const char *names[] = { "BULLISH", "BEARISH", "NEUTRAL" };
	for (size_t i = 0; i < 3; i++) {
		ck_assert_str_eq(signal_direction_name(all[i]), names[i]);
		enum signal_direction parsed = SIGNAL_NEUTRAL;
		ck_assert_int_eq(signal_direction_parse(names[i], &parsed), 0);
		ck_assert_int_eq(parsed, all[i]);
	}
	enum signal_direction parsed;
	ck_assert_int_eq(signal_direction_parse("bullish", &parsed), -1);
	ck_assert_int_eq(signal_direction_parse("Bearish", &parsed), -1);
	ck_assert_int_eq(signal_direction_parse("", &parsed), -1);
}
END_TEST

START_TEST(test_error_format_joins_field_and_reason)
{
	struct signal_error error = { .field = "tickers[1].confidence", .reason = "must be a number" };
	char buf[256];
	signal_error_format(&error, buf, sizeof buf);
	ck_assert_str_eq(buf, "tickers[1].confidence: must be a number");
	struct signal_error whole = { .field = "", .reason = "a signal must be a JSON object" };
	signal_error_format(&whole, buf, sizeof buf);
	ck_assert_str_eq(buf, "a signal must be a JSON object");
	char small[8];
	signal_error_format(&error, small, sizeof small);
	ck_assert_str_eq(small, "tickers");
}
END_TEST

START_TEST(test_new_id_is_fresh_lower_case_time_ordered_uuid)
{
	char a[SIGNAL_ID_LENGTH + 1], b[SIGNAL_ID_LENGTH + 1];
	signal_new_id(a);
	struct timespec pause = { 0, 2 * 1000 * 1000 };
	nanosleep(&pause, NULL);
	signal_new_id(b);
	ck_assert(is_lower_case_uuid(a));
	ck_assert(is_lower_case_uuid(b));
	uuid_t parsed;
	ck_assert_int_eq(uuid_parse(a, parsed), 0);
	ck_assert_int_eq(uuid_type(parsed), 7);
	/* Made later, it sorts later: the signals' key grows at one end. */
	ck_assert_msg(strcmp(a, b) < 0, "%s made after %s sorts before it", b, a);
}
END_TEST

static Suite *signal_suite(void)
{
	Suite *suite = suite_create("signal");
	TCase *valid = tcase_create("valid");
	tcase_add_test(valid, test_full_signal_parses_every_field);
	tcase_add_test(valid, test_serialize_writes_canonical_compact_form);
	tcase_add_test(valid, test_serialized_signal_parses_back_to_equal_json);
	tcase_add_test(valid, test_fractional_timestamp_survives_round_trip);
	tcase_add_test(valid, test_upper_case_signal_id_is_stored_lower_case);
	tcase_add_test(valid, test_missing_signal_id_gets_fresh_lower_case_uuid);
	tcase_add_test(valid, test_null_signal_id_counts_as_missing);
	tcase_add_test(valid, test_missing_timestamp_gets_current_time);
	tcase_add_test(valid, test_missing_metadata_becomes_empty_object);
	tcase_add_test(valid, test_missing_reasoning_becomes_empty_string);
	tcase_add_test(valid, test_metadata_is_copied_not_shared);
	tcase_add_test(valid, test_parse_reads_only_the_given_length);
	tcase_add_test(valid, test_boundary_values_are_accepted);
	tcase_add_test(valid, test_text_of_exactly_max_bytes_is_accepted);
	suite_add_tcase(suite, valid);

	TCase *invalid = tcase_create("invalid");
	tcase_add_loop_test(invalid, test_malformed_signal_fails_naming_field_and_reason, 0,
			    (int)(sizeof malformations / sizeof malformations[0]));
	tcase_add_test(invalid, test_ticker_entry_that_is_not_object_names_its_index);
	tcase_add_test(invalid, test_too_many_tickers_fails);
	tcase_add_test(invalid, test_over_long_texts_fail);
	tcase_add_test(invalid, test_first_bad_ticker_is_reported);
	tcase_add_test(invalid, test_invalid_json_fails_with_position);
	tcase_add_test(invalid, test_non_finite_confidence_is_rejected);
	tcase_add_test(invalid, test_non_object_inputs_fail);
	tcase_add_test(invalid, test_oversized_text_fails_before_parsing);
	tcase_add_test(invalid, test_duplicate_keys_fail);
	suite_add_tcase(suite, invalid);

	TCase *robust = tcase_create("robustness");
	tcase_add_test(robust, test_garbage_never_crashes);
	tcase_add_test(robust, test_every_truncation_of_valid_signal_fails_cleanly);
	tcase_add_test(robust, test_mutated_bytes_never_crash);
	suite_add_tcase(suite, robust);

	TCase *written = tcase_create("written");
	tcase_add_loop_test(written, test_written_signal_equals_its_canonical_json, 0,
			    (int)(sizeof written_signals / sizeof written_signals[0]));
	suite_add_tcase(suite, written);

	TCase *builders = tcase_create("builders");
	tcase_add_test(builders, test_init_single_builds_valid_signal);
	tcase_add_test(builders, test_init_single_without_reasoning_gives_empty_reasoning);
	tcase_add_test(builders, test_init_single_validates_like_parse);
	tcase_add_test(builders, test_ticker_validity_rules);
	tcase_add_test(builders, test_direction_names_round_trip_and_reject_lower_case);
	tcase_add_test(builders, test_error_format_joins_field_and_reason);
	tcase_add_test(builders, test_new_id_is_fresh_lower_case_time_ordered_uuid);
	suite_add_tcase(suite, builders);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(signal_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

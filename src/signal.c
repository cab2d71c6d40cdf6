#include "signal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "ids.h"
#include "timeutil.h"

static const char *const direction_names[] = { "BULLISH", "BEARISH", "NEUTRAL" };

const char *signal_direction_name(enum signal_direction direction)
{
	return direction_names[direction];
}

int signal_direction_parse(const char *name, enum signal_direction *direction)
{
	for (int i = 0; i < 3; i++) {
		if (strcmp(name, direction_names[i]) == 0) {
			*direction = (enum signal_direction)i;
			return 0;
		}
	}
	return -1;
}

void signal_new_id(char *buf) { ids_time_ordered_uuid(buf); }

static int fail(struct signal_error *error, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct signal_error *error, const char *field, const char *fmt, ...)
{
	snprintf(error->field, sizeof error->field, "%s", field);
	va_list args;
	va_start(args, fmt);
	vsnprintf(error->reason, sizeof error->reason, fmt, args);
	va_end(args);
	return -1;
}

void signal_error_format(const struct signal_error *error, char *buf, size_t size)
{
	if (error->field[0] != '\0')
		snprintf(buf, size, "%s: %s", error->field, error->reason);
	else
		snprintf(buf, size, "%s", error->reason);
}

void signal_free(struct signal *signal)
{
	for (size_t i = 0; i < signal->ticker_count; i++)
		free(signal->tickers[i].reasoning);
	free(signal->tickers);
	free(signal->signal_type);
	free(signal->source);
	json_decref(signal->metadata);
	memset(signal, 0, sizeof *signal);
}

/* Printable ASCII without spaces: covers AAPL, BRK.B, ^GSPC, EURUSD=X, BTC-USD. */
int signal_ticker_is_valid(const char *ticker)
{
	size_t length = strlen(ticker);
	if (length == 0 || length > SIGNAL_TICKER_MAX)
		return 0;
	for (const char *c = ticker; *c != '\0'; c++)
		if (*c <= ' ' || *c > '~')
			return 0;
	return 1;
}

static int required_text(const json_t *object, const char *field, size_t max, char **out,
			 struct signal_error *error)
{
	const json_t *value = json_object_get(object, field);
	if (value == NULL || json_is_null(value))
		return fail(error, field, "is required");
	if (!json_is_string(value))
		return fail(error, field, "must be a string");
	size_t length = json_string_length(value);
	if (length == 0)
		return fail(error, field, "must not be empty");
	if (length > max)
		return fail(error, field, "is longer than %zu characters", max);
	if (strlen(json_string_value(value)) != length)
		return fail(error, field, "must not contain NUL characters");
	*out = strdup(json_string_value(value));
	return *out == NULL ? fail(error, field, "out of memory") : 0;
}

static int parse_ticker(const json_t *entry, size_t index, struct signal_ticker *ticker,
			struct signal_error *error)
{
	char field[64];
	if (!json_is_object(entry)) {
		snprintf(field, sizeof field, "tickers[%zu]", index);
		return fail(error, field, "must be an object");
	}
	const json_t *name = json_object_get(entry, "ticker");
	snprintf(field, sizeof field, "tickers[%zu].ticker", index);
	if (name == NULL || !json_is_string(name))
		return fail(error, field, name == NULL ? "is required" : "must be a string");
	if (!signal_ticker_is_valid(json_string_value(name)) ||
	    strlen(json_string_value(name)) != json_string_length(name))
		return fail(error, field, "must be 1-%d printable characters without spaces",
			    SIGNAL_TICKER_MAX);
	snprintf(ticker->ticker, sizeof ticker->ticker, "%s", json_string_value(name));

	const json_t *direction = json_object_get(entry, "signal");
	snprintf(field, sizeof field, "tickers[%zu].signal", index);
	if (direction == NULL || !json_is_string(direction))
		return fail(error, field, direction == NULL ? "is required" : "must be a string");
	if (signal_direction_parse(json_string_value(direction), &ticker->direction) != 0)
		return fail(error, field, "must be BULLISH, BEARISH or NEUTRAL");

	const json_t *confidence = json_object_get(entry, "confidence");
	snprintf(field, sizeof field, "tickers[%zu].confidence", index);
	if (confidence == NULL || !json_is_number(confidence))
		return fail(error, field, confidence == NULL ? "is required" : "must be a number");
	ticker->confidence = json_number_value(confidence);
	if (!isfinite(ticker->confidence) || ticker->confidence < 0 || ticker->confidence > 100)
		return fail(error, field, "must be between 0 and 100");

	const json_t *reasoning = json_object_get(entry, "reasoning");
	snprintf(field, sizeof field, "tickers[%zu].reasoning", index);
	if (reasoning != NULL && !json_is_null(reasoning)) {
		if (!json_is_string(reasoning))
			return fail(error, field, "must be a string");
		if (json_string_length(reasoning) > SIGNAL_REASONING_MAX)
			return fail(error, field, "is longer than %d characters", SIGNAL_REASONING_MAX);
		ticker->reasoning = strdup(json_string_value(reasoning));
	} else {
		ticker->reasoning = strdup("");
	}
	return ticker->reasoning == NULL ? fail(error, field, "out of memory") : 0;
}

static int parse_fields(const json_t *object, struct signal *signal, struct signal_error *error)
{
	if (!json_is_object(object))
		return fail(error, "", "a signal must be a JSON object");

	const json_t *id = json_object_get(object, "signal_id");
	if (id == NULL || json_is_null(id)) {
		signal_new_id(signal->signal_id);
	} else {
		uuid_t parsed;
		if (!json_is_string(id) || json_string_length(id) != SIGNAL_ID_LENGTH ||
		    uuid_parse(json_string_value(id), parsed) != 0)
			return fail(error, "signal_id", "must be a UUID string");
		uuid_unparse_lower(parsed, signal->signal_id);
	}

	const json_t *timestamp = json_object_get(object, "timestamp");
	if (timestamp == NULL || json_is_null(timestamp)) {
		signal->timestamp = time_now_seconds();
	} else {
		if (!json_is_number(timestamp))
			return fail(error, "timestamp", "must be a number (unix seconds)");
		signal->timestamp = json_number_value(timestamp);
		/* 0 .. year 9999: rejects milliseconds sent by mistake for seconds. */
		if (!isfinite(signal->timestamp) || signal->timestamp < 0 ||
		    signal->timestamp > 253402300799.0)
			return fail(error, "timestamp", "must be unix seconds between 0 and 253402300799");
	}

	if (required_text(object, "signal_type", SIGNAL_TEXT_MAX, &signal->signal_type, error) != 0 ||
	    required_text(object, "source", SIGNAL_TEXT_MAX, &signal->source, error) != 0)
		return -1;

	const json_t *tickers = json_object_get(object, "tickers");
	if (tickers == NULL || json_is_null(tickers))
		return fail(error, "tickers", "is required");
	if (!json_is_array(tickers))
		return fail(error, "tickers", "must be an array");
	size_t count = json_array_size(tickers);
	if (count == 0)
		return fail(error, "tickers", "must not be empty");
	if (count > SIGNAL_MAX_TICKERS)
		return fail(error, "tickers", "has %zu entries, more than %d", count, SIGNAL_MAX_TICKERS);
	signal->tickers = calloc(count, sizeof *signal->tickers);
	if (signal->tickers == NULL)
		return fail(error, "tickers", "out of memory");
	for (size_t i = 0; i < count; i++) {
		signal->ticker_count = i + 1; /* so signal_free releases what was parsed */
		if (parse_ticker(json_array_get(tickers, i), i, &signal->tickers[i], error) != 0)
			return -1;
	}

	const json_t *metadata = json_object_get(object, "metadata");
	if (metadata == NULL || json_is_null(metadata)) {
		signal->metadata = json_object();
	} else {
		if (!json_is_object(metadata))
			return fail(error, "metadata", "must be an object");
		signal->metadata = json_deep_copy(metadata);
	}
	return 0;
}

int signal_from_json(const json_t *object, struct signal *signal, struct signal_error *error)
{
	memset(signal, 0, sizeof *signal);
	memset(error, 0, sizeof *error);
	if (parse_fields(object, signal, error) != 0) {
		signal_free(signal);
		return -1;
	}
	return 0;
}

int signal_parse(const char *text, size_t length, struct signal *signal, struct signal_error *error)
{
	memset(signal, 0, sizeof *signal);
	memset(error, 0, sizeof *error);
	if (length > SIGNAL_MAX_BYTES)
		return fail(error, "", "signal is %zu bytes, more than %d", length, SIGNAL_MAX_BYTES);
	json_error_t json_error;
	json_t *object = json_loadb(text, length, JSON_REJECT_DUPLICATES, &json_error);
	if (object == NULL)
		return fail(error, "", "invalid JSON at line %d column %d: %s", json_error.line,
			    json_error.column, json_error.text);
	int status = signal_from_json(object, signal, error);
	json_decref(object);
	return status;
}

json_t *signal_to_json(const struct signal *signal)
{
	json_t *tickers = json_array();
	for (size_t i = 0; i < signal->ticker_count; i++) {
		const struct signal_ticker *t = &signal->tickers[i];
		json_array_append_new(tickers, json_pack("{s:s, s:s, s:f, s:s}", "ticker", t->ticker,
							 "signal", signal_direction_name(t->direction),
							 "confidence", t->confidence, "reasoning",
							 t->reasoning));
	}
	/* Whole seconds are written as an integer, as the design's examples are. */
	json_t *timestamp = signal->timestamp == floor(signal->timestamp)
				    ? json_integer((json_int_t)signal->timestamp)
				    : json_real(signal->timestamp);
	return json_pack("{s:s, s:o, s:s, s:s, s:o, s:O}", "signal_id", signal->signal_id, "timestamp",
			 timestamp, "signal_type", signal->signal_type, "source", signal->source,
			 "tickers", tickers, "metadata", signal->metadata);
}

/* A number as jansson writes a real: %.17g, which reads back as the same double, and never bare digits. */
static void write_real(struct text_buffer *buffer, double value)
{
	char text[40];
	snprintf(text, sizeof text, "%.17g", value);
	text_buffer_puts(buffer, text);
	if (strpbrk(text, ".eE") == NULL)
		text_buffer_puts(buffer, ".0");
}

void signal_write_json(const struct signal *signal, struct text_buffer *buffer)
{
	text_buffer_json_member(buffer, "{\"signal_id\":", signal->signal_id);
	text_buffer_puts(buffer, ",\"timestamp\":");
	if (signal->timestamp == floor(signal->timestamp))
		text_buffer_printf(buffer, "%lld", (long long)signal->timestamp);
	else
		write_real(buffer, signal->timestamp);
	text_buffer_json_member(buffer, ",\"signal_type\":", signal->signal_type);
	text_buffer_json_member(buffer, ",\"source\":", signal->source);
	text_buffer_puts(buffer, ",\"tickers\":[");
	for (size_t i = 0; i < signal->ticker_count; i++) {
		const struct signal_ticker *t = &signal->tickers[i];
		text_buffer_json_member(buffer, i > 0 ? ",{\"ticker\":" : "{\"ticker\":", t->ticker);
		text_buffer_json_member(buffer, ",\"signal\":", signal_direction_name(t->direction));
		text_buffer_puts(buffer, ",\"confidence\":");
		write_real(buffer, t->confidence);
		text_buffer_json_member(buffer, ",\"reasoning\":", t->reasoning);
		text_buffer_puts(buffer, "}");
	}
	text_buffer_puts(buffer, "],\"metadata\":");
	text_buffer_json_value(buffer, signal->metadata);
	text_buffer_puts(buffer, "}");
}

char *signal_serialize(const struct signal *signal)
{
	json_t *object = signal_to_json(signal);
	char *text = json_dumps(object, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(object);
	return text;
}

int signal_init_single(struct signal *signal, const char *signal_type, const char *source,
		       const char *ticker, enum signal_direction direction, double confidence,
		       const char *reasoning, struct signal_error *error)
{
	json_t *object = json_pack("{s:s, s:s, s:[{s:s, s:s, s:f, s:s}]}", "signal_type", signal_type,
				   "source", source, "tickers", "ticker", ticker, "signal",
				   signal_direction_name(direction), "confidence", confidence,
				   "reasoning", reasoning != NULL ? reasoning : "");
	if (object == NULL)
		return fail(error, "", "could not build the signal (text not valid UTF-8?)");
	int status = signal_from_json(object, signal, error);
	json_decref(object);
	return status;
}

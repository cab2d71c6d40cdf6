/*
 * sigtrig inject: publishes signals through the daemon. From flags (one
 * signal over the given tickers) or from JSON lines (-f FILE, -f - for
 * standard input). Prints each published signal_id; a bad line is reported
 * with its line number and the rest still go.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "protocol.h"
#include "signal.h"

#define INJECT_CHUNK 1000

static struct client_options client;
static struct option_list tickers;
static const char *direction = "BULLISH";
static double confidence = 75;
static const char *signal_type = "manual";
static const char *source = "sigtrig-cli";
static const char *reasoning = "";
static const char *metadata;
static const char *file;

static const struct command_usage usage = {
	"inject", NULL, "Publish signals to the trading-signals topic through the daemon."
};
static const struct option_spec options[] = {
	CLIENT_OPTIONS(client),
	{ "ticker", 't', OPTION_LIST, &tickers, "TICKER", "a ticker of the signal (repeat for more)" },
	{ "signal", 's', OPTION_STRING, &direction, "DIRECTION", "BULLISH, BEARISH or NEUTRAL (default BULLISH)" },
	{ "confidence", 'c', OPTION_NUMBER, &confidence, "N", "confidence 0-100 (default 75)" },
	{ "type", 0, OPTION_STRING, &signal_type, "TYPE", "signal_type (default manual)" },
	{ "source", 0, OPTION_STRING, &source, "SOURCE", "source (default sigtrig-cli)" },
	{ "reasoning", 0, OPTION_STRING, &reasoning, "TEXT", "reasoning given for every ticker" },
	{ "metadata", 0, OPTION_STRING, &metadata, "JSON", "metadata object" },
	{ "file", 'f', OPTION_STRING, &file, "FILE", "JSON lines, one signal each; - for standard input" },
	OPTION_SPEC_END
};

/* Where each signal sent came from, to report errors by line. */
struct pending {
	json_t *signals;
	long *lines;
	size_t count;
};

static int failures;
static json_t *all_results;

static void report(long line, const char *message)
{
	failures++;
	if (line > 0)
		fprintf(stderr, "sigtrig: inject: line %ld: %s\n", line, message);
	else
		fprintf(stderr, "sigtrig: inject: %s\n", message);
}

/* Sends the pending signals; prints ids, reports errors. -1 when the daemon could not be reached. */
static int send_pending(struct pending *pending)
{
	if (pending->count == 0)
		return 0;
	json_t *request = protocol_request("inject");
	json_object_set(request, "signals", pending->signals);
	json_t *response = client_call("inject", &client, request);
	if (response == NULL)
		return -1;
	size_t index;
	json_t *result;
	json_array_foreach(json_object_get(response, "results"), index, result) {
		size_t position = (size_t)json_integer_value(json_object_get(result, "index"));
		long line = position < pending->count ? pending->lines[position] : 0;
		const char *error = json_string_value(json_object_get(result, "error"));
		if (line > 0)
			json_object_set_new(result, "line", json_integer(line));
		json_object_del(result, "index");
		if (error != NULL)
			report(line, error);
		else if (!client.json)
			printf("%s\n", json_string_value(json_object_get(result, "signal_id")));
		json_array_append(all_results, result);
	}
	json_decref(response);
	json_array_clear(pending->signals);
	pending->count = 0;
	return 0;
}

static int add_pending(struct pending *pending, json_t *signal, long line)
{
	json_array_append_new(pending->signals, signal);
	pending->lines[pending->count++] = line;
	return pending->count == INJECT_CHUNK ? send_pending(pending) : 0;
}

static json_t *signal_from_flags(void)
{
	enum signal_direction parsed;
	if (signal_direction_parse(direction, &parsed) != 0) {
		report(0, "--signal must be BULLISH, BEARISH or NEUTRAL");
		return NULL;
	}
	json_t *ticker_array = json_array();
	for (size_t i = 0; i < tickers.count; i++)
		json_array_append_new(ticker_array,
				      json_pack("{s:s, s:s, s:f, s:s}", "ticker", tickers.items[i], "signal",
						direction, "confidence", confidence, "reasoning", reasoning));
	json_t *signal = json_pack("{s:s, s:s, s:o}", "signal_type", signal_type, "source", source, "tickers",
				   ticker_array);
	if (metadata != NULL) {
		json_error_t error;
		json_t *parsed_metadata = json_loads(metadata, 0, &error);
		if (parsed_metadata == NULL) {
			report(0, "--metadata is not valid JSON");
			json_decref(signal);
			return NULL;
		}
		json_object_set_new(signal, "metadata", parsed_metadata);
	}
	return signal;
}

static int inject_from_stream(FILE *input, struct pending *pending)
{
	char *line = NULL;
	size_t capacity = 0;
	ssize_t length;
	long number = 0;
	int status = 0;
	while (status == 0 && (length = getline(&line, &capacity, input)) >= 0) {
		number++;
		while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r'))
			line[--length] = '\0';
		const char *text = line + strspn(line, " \t");
		if (*text == '\0' || *text == '#')
			continue;
		json_error_t error;
		json_t *signal = json_loads(text, 0, &error);
		if (signal == NULL) {
			char message[256];
			snprintf(message, sizeof message, "invalid JSON: %s", error.text);
			report(number, message);
			continue;
		}
		status = add_pending(pending, signal, number);
	}
	free(line);
	if (status == 0 && ferror(input)) {
		report(0, strerror(errno));
		return -1;
	}
	return status;
}

int cmd_inject(int argc, char **argv)
{
	int operands = 0;
	int status = options_parse(&usage, options, argc, argv, &operands);
	if (status != 0)
		return status == 1 ? 0 : 2;
	if (operands > 0 || (file == NULL && tickers.count == 0) || (file != NULL && tickers.count > 0)) {
		fprintf(stderr, "sigtrig: inject: give --ticker (one or more) or --file, not both\n");
		options_print_usage(stderr, &usage, options, false);
		return 2;
	}
	struct pending pending = { json_array(), calloc(INJECT_CHUNK, sizeof(long)), 0 };
	all_results = json_array();
	int reached = 0;
	if (file != NULL) {
		FILE *input = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
		if (input == NULL) {
			command_fail("inject", "%s: %s", file, strerror(errno));
			reached = -1;
		} else {
			reached = inject_from_stream(input, &pending);
			if (input != stdin)
				fclose(input);
		}
	} else {
		json_t *signal = signal_from_flags();
		if (signal != NULL)
			reached = add_pending(&pending, signal, 0);
	}
	if (reached == 0)
		reached = send_pending(&pending);
	if (client.json && reached == 0)
		client_print_json(all_results);
	json_decref(pending.signals);
	json_decref(all_results);
	free(pending.lines);
	option_list_free(&tickers);
	if (reached != 0)
		return 1;
	return failures > 0 ? 1 : 0;
}

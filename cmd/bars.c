/*
 * sigtrig bars load|list: the daily close bars the market_data_agent
 * reads. `load` checks the whole CSV file here, so that a file with an
 * error loads nothing, then sends the bars to the daemon in chunks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bar_store.h"
#include "bars_csv.h"
#include "command.h"
#include "protocol.h"

/* Larger than any bar file BARS_CSV_MAX_ROWS allows. */
#define BARS_FILE_MAX_BYTES (512L * 1024 * 1024)

static struct client_options client;
static const struct option_spec client_only[] = { CLIENT_OPTIONS(client), OPTION_SPEC_END };
static const struct command_usage load_usage = {
	"bars load", "FILE",
	"Load daily close bars from a CSV file (- for standard input) with columns ticker, close and day or date."
};
static const struct command_usage list_usage = { "bars list", NULL,
						 "List the tickers with bars: how many, first and last day, last close." };

/* The whole file (or standard input) in memory; NULL with a message printed. */
static char *read_all(const char *path, size_t *length)
{
	FILE *file = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (file == NULL) {
		command_fail("bars load", "%s: %s", path, strerror(errno));
		return NULL;
	}
	size_t capacity = 1 << 16, used = 0;
	char *text = malloc(capacity);
	while (text != NULL) {
		if (used == capacity) {
			char *grown = capacity < (size_t)BARS_FILE_MAX_BYTES ? realloc(text, capacity * 2) : NULL;
			if (grown == NULL) {
				free(text);
				text = NULL;
				command_fail("bars load", "%s: larger than %ld MB", path, BARS_FILE_MAX_BYTES >> 20);
				break;
			}
			text = grown;
			capacity *= 2;
		}
		size_t got = fread(text + used, 1, capacity - used, file);
		used += got;
		if (got == 0) {
			if (ferror(file)) {
				command_fail("bars load", "%s: %s", path, strerror(errno));
				free(text);
				text = NULL;
			}
			break;
		}
	}
	if (file != stdin)
		fclose(file);
	*length = used;
	return text;
}

static int by_ticker_then_day(const void *a, const void *b)
{
	const struct bar *x = a, *y = b;
	int order = strcmp(x->ticker, y->ticker);
	return order != 0 ? order : (x->day > y->day) - (x->day < y->day);
}

/* What the file held, per ticker, for the report: [{ticker, bars, first_day, last_day}]. */
static json_t *file_summary(struct bar_list *bars)
{
	qsort(bars->bars, bars->count, sizeof *bars->bars, by_ticker_then_day);
	json_t *tickers = json_array();
	for (size_t i = 0; i < bars->count;) {
		size_t end = i;
		while (end < bars->count && strcmp(bars->bars[end].ticker, bars->bars[i].ticker) == 0)
			end++;
		json_array_append_new(tickers, json_pack("{s:s, s:I, s:i, s:i}", "ticker", bars->bars[i].ticker,
							 "bars", (json_int_t)(end - i), "first_day",
							 bars->bars[i].day, "last_day", bars->bars[end - 1].day));
		i = end;
	}
	return tickers;
}

static int bars_load(int argc, char **argv)
{
	int operands = 0;
	int status = options_parse(&load_usage, client_only, argc, argv, &operands);
	if (status != 0)
		return status == 1 ? 0 : 2;
	if (operands != 1) {
		options_print_usage(stderr, &load_usage, client_only, false);
		return 2;
	}
	const char *path = argv[0];
	size_t length;
	char *text = read_all(path, &length);
	if (text == NULL)
		return 1;
	struct bar_list bars = { 0 };
	char err[512];
	int parsed = bars_csv_parse(text, length, &bars, err, sizeof err);
	free(text);
	if (parsed != 0)
		return command_fail("bars load", "%s: %s; nothing loaded", path, err);
	long inserted = 0, updated = 0;
	for (size_t first = 0; first < bars.count; first += BAR_STORE_MAX_PER_REQUEST) {
		json_t *request = protocol_request("bars.load");
		json_object_set_new(request, "bars", bars_to_json(&bars, first, BAR_STORE_MAX_PER_REQUEST));
		json_t *response = client_call("bars load", &client, request);
		if (response == NULL) {
			fprintf(stderr, "sigtrig: bars load: %s: stopped after %zu of %zu bars; loading the file again is safe\n",
				path, first, bars.count);
			bar_list_free(&bars);
			return 1;
		}
		inserted += (long)json_integer_value(json_object_get(response, "inserted"));
		updated += (long)json_integer_value(json_object_get(response, "updated"));
		json_decref(response);
	}
	json_t *tickers = file_summary(&bars);
	if (client.json) {
		json_t *report = json_pack("{s:s, s:I, s:I, s:I, s:O}", "file", path, "bars", (json_int_t)bars.count,
					   "inserted", (json_int_t)inserted, "updated", (json_int_t)updated,
					   "tickers", tickers);
		client_print_json(report);
		json_decref(report);
	} else {
		printf("loaded %zu bars from %s: %ld new, %ld replaced\n", bars.count, path, inserted, updated);
		size_t index;
		const json_t *ticker;
		json_array_foreach(tickers, index, ticker)
			printf("  %-12s %6lld bars, days %lld..%lld\n", json_string_value(json_object_get(ticker, "ticker")),
			       (long long)json_integer_value(json_object_get(ticker, "bars")),
			       (long long)json_integer_value(json_object_get(ticker, "first_day")),
			       (long long)json_integer_value(json_object_get(ticker, "last_day")));
	}
	json_decref(tickers);
	bar_list_free(&bars);
	return 0;
}

static int bars_list(int argc, char **argv)
{
	int status = options_parse_no_operands(&list_usage, client_only, argc, argv);
	if (status >= 0)
		return status;
	json_t *response = client_call("bars list", &client, protocol_request("bars.list"));
	if (response == NULL)
		return 1;
	const json_t *tickers = json_object_get(response, "tickers");
	if (client.json) {
		client_print_json(tickers);
	} else {
		size_t index;
		const json_t *ticker;
		json_array_foreach(tickers, index, ticker)
			printf("%-12s %6lld bars, days %lld..%lld, last close %g\n",
			       json_string_value(json_object_get(ticker, "ticker")),
			       (long long)json_integer_value(json_object_get(ticker, "bars")),
			       (long long)json_integer_value(json_object_get(ticker, "first_day")),
			       (long long)json_integer_value(json_object_get(ticker, "last_day")),
			       json_number_value(json_object_get(ticker, "last_close")));
	}
	json_decref(response);
	return 0;
}

static const struct command_entry subcommands[] = {
	{ "load", bars_load, "load daily close bars from a CSV file" },
	{ "list", bars_list, "list the tickers with bars" },
};

int cmd_bars(int argc, char **argv)
{
	return command_run_subcommand("bars", subcommands, sizeof subcommands / sizeof subcommands[0], argc, argv);
}

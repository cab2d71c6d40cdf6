/* CSV of daily close bars (see bars_csv.h). */
#include "bars_csv.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Wide enough for any field a bar file has; a longer one is an error, not a truncation. */
#define FIELD_MAX 64
#define FIELDS_MAX 64

enum bar_column { COLUMN_TICKER, COLUMN_DAY, COLUMN_DATE, COLUMN_CLOSE, COLUMN_COUNT };

static const char *const column_names[COLUMN_COUNT] = { "ticker", "day", "date", "close" };

struct csv_line {
	size_t number; /* 1-based */
	size_t field_count;
	char fields[FIELDS_MAX][FIELD_MAX + 1];
};

/* Drops the spaces and tabs at both ends of text, in place. */
static void trim_blanks(char *text)
{
	size_t start = 0, end = strlen(text);
	while (text[start] == ' ' || text[start] == '\t')
		start++;
	while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\t'))
		end--;
	memmove(text, text + start, end - start);
	text[end - start] = '\0';
}

/*
 * Splits one line (without its end) into fields. Returns 0, or -1 with
 * err naming the line.
 */
static int split_line(const char *line, size_t length, struct csv_line *out, char *err, size_t errsize)
{
	size_t at = 0;
	out->field_count = 0;
	for (;;) {
		if (out->field_count == FIELDS_MAX) {
			snprintf(err, errsize, "line %zu: more than %d columns", out->number, FIELDS_MAX);
			return -1;
		}
		char *field = out->fields[out->field_count++];
		size_t used = 0;
		bool quoted = at < length && line[at] == '"';
		if (quoted)
			at++;
		while (at < length) {
			char c = line[at];
			if (quoted && c == '"') {
				if (at + 1 < length && line[at + 1] == '"') {
					at++;
				} else {
					at++;
					break;
				}
			} else if (!quoted && c == ',') {
				break;
			}
			if (used == FIELD_MAX) {
				snprintf(err, errsize, "line %zu: column %zu is longer than %d characters",
					 out->number, out->field_count, FIELD_MAX);
				return -1;
			}
			field[used++] = c;
			at++;
			if (quoted && at == length) {
				snprintf(err, errsize, "line %zu: a quoted field is not closed", out->number);
				return -1;
			}
		}
		field[used] = '\0';
		/* "DAX, 1628.75": spaces around an unquoted value are not part of it. */
		if (!quoted)
			trim_blanks(field);
		if (quoted && at < length && line[at] != ',') {
			snprintf(err, errsize, "line %zu: text after the closing quote of column %zu", out->number,
				 out->field_count);
			return -1;
		}
		if (at >= length)
			return 0;
		at++; /* the comma */
	}
}

static void lower_trimmed(char *text)
{
	trim_blanks(text);
	for (char *c = text; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
}

/* The index of each wanted column in the header, -1 when absent. */
static int read_header(struct csv_line *header, int positions[COLUMN_COUNT], char *err, size_t errsize)
{
	for (int c = 0; c < COLUMN_COUNT; c++)
		positions[c] = -1;
	for (size_t i = 0; i < header->field_count; i++) {
		char *name = header->fields[i];
		lower_trimmed(name);
		if (strcmp(name, "symbol") == 0)
			name = "ticker";
		for (int c = 0; c < COLUMN_COUNT; c++) {
			if (strcmp(name, column_names[c]) != 0)
				continue;
			if (positions[c] >= 0) {
				snprintf(err, errsize, "line 1: column '%s' appears twice", column_names[c]);
				return -1;
			}
			positions[c] = (int)i;
		}
	}
	if (positions[COLUMN_TICKER] < 0 || positions[COLUMN_CLOSE] < 0 ||
	    (positions[COLUMN_DAY] < 0) == (positions[COLUMN_DATE] < 0)) {
		snprintf(err, errsize,
			 "line 1: the header must name the columns ticker (or symbol), close, and one of day or date");
		return -1;
	}
	return 0;
}

static bool is_leap(long year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int bars_csv_parse_date(const char *text, int *day)
{
	int year, month, mday, consumed = 0;
	if (strlen(text) != 10 || sscanf(text, "%4d-%2d-%2d%n", &year, &month, &mday, &consumed) != 3 ||
	    consumed != 10 || text[4] != '-' || text[7] != '-' || year < 1 || month < 1 || month > 12 || mday < 1)
		return -1;
	static const int month_days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int days_in_month = month_days[month - 1] + (month == 2 && is_leap(year));
	if (mday > days_in_month)
		return -1;
	/* Days from 1970-01-01 by the days-from-civil rule (March-based years; year >= 1, so y >= 0). */
	long y = year - (month <= 2);
	long era = y / 400;
	long year_of_era = y - era * 400;
	long day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + mday - 1;
	long day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
	*day = (int)(era * 146097 + day_of_era - 719468);
	return 0;
}

static int parse_row(const struct csv_line *line, const int positions[COLUMN_COUNT], struct bar *bar,
		     char *err, size_t errsize)
{
	size_t needed = 0;
	for (int c = 0; c < COLUMN_COUNT; c++)
		if (positions[c] >= 0 && (size_t)positions[c] + 1 > needed)
			needed = (size_t)positions[c] + 1;
	if (line->field_count < needed) {
		snprintf(err, errsize, "line %zu: %zu columns, the header has at least %zu", line->number,
			 line->field_count, needed);
		return -1;
	}
	const char *ticker = line->fields[positions[COLUMN_TICKER]];
	if (!signal_ticker_is_valid(ticker)) {
		snprintf(err, errsize, "line %zu: ticker: '%s' is not a ticker (1-%d printable characters, no spaces)",
			 line->number, ticker, SIGNAL_TICKER_MAX);
		return -1;
	}
	snprintf(bar->ticker, sizeof bar->ticker, "%s", ticker);
	if (positions[COLUMN_DAY] >= 0) {
		const char *text = line->fields[positions[COLUMN_DAY]];
		char *end;
		errno = 0;
		long day = strtol(text, &end, 10);
		if (text[0] == '\0' || *end != '\0' || errno != 0 || day < INT32_MIN / 2 || day > INT32_MAX / 2) {
			snprintf(err, errsize, "line %zu: day: '%s' is not an integer day index", line->number, text);
			return -1;
		}
		bar->day = (int)day;
	} else {
		const char *text = line->fields[positions[COLUMN_DATE]];
		if (bars_csv_parse_date(text, &bar->day) != 0) {
			snprintf(err, errsize, "line %zu: date: '%s' is not a date (YYYY-MM-DD)", line->number, text);
			return -1;
		}
	}
	const char *text = line->fields[positions[COLUMN_CLOSE]];
	char *end;
	errno = 0;
	double close = strtod(text, &end);
	if (text[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(close) || !(close > 0)) {
		snprintf(err, errsize, "line %zu: close: '%s' is not a positive price", line->number, text);
		return -1;
	}
	bar->close = close;
	return 0;
}

static int bar_list_append(struct bar_list *list, const struct bar *bar)
{
	if (list->count == list->capacity) {
		size_t capacity = list->capacity == 0 ? 1024 : list->capacity * 2;
		struct bar *grown = realloc(list->bars, capacity * sizeof *grown);
		if (grown == NULL)
			return -1;
		list->bars = grown;
		list->capacity = capacity;
	}
	list->bars[list->count++] = *bar;
	return 0;
}

static int compare_bars(const void *a, const void *b)
{
	const struct bar *x = *(const struct bar *const *)a, *y = *(const struct bar *const *)b;
	int by_ticker = strcmp(x->ticker, y->ticker);
	if (by_ticker != 0)
		return by_ticker;
	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* A (ticker, day) given twice is an error: which close is meant cannot be guessed. */
static int check_duplicates(const struct bar_list *list, char *err, size_t errsize)
{
	if (list->count < 2)
		return 0;
	const struct bar **sorted = malloc(list->count * sizeof *sorted);
	if (sorted == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < list->count; i++)
		sorted[i] = &list->bars[i];
	qsort(sorted, list->count, sizeof *sorted, compare_bars);
	int status = 0;
	for (size_t i = 1; i < list->count && status == 0; i++) {
		if (strcmp(sorted[i]->ticker, sorted[i - 1]->ticker) == 0 && sorted[i]->day == sorted[i - 1]->day) {
			snprintf(err, errsize, "line %zu: %s day %d was already given on line %zu", sorted[i]->line,
				 sorted[i]->ticker, sorted[i]->day, sorted[i - 1]->line);
			status = -1;
		}
	}
	free(sorted);
	return status;
}

static bool is_blank(const char *line, size_t length)
{
	for (size_t i = 0; i < length; i++)
		if (line[i] != ' ' && line[i] != '\t')
			return false;
	return true;
}

int bars_csv_parse(const char *text, size_t length, struct bar_list *list, char *err, size_t errsize)
{
	bar_list_free(list);
	struct csv_line *line = malloc(sizeof *line);
	int positions[COLUMN_COUNT];
	bool have_header = false;
	int status = 0;
	if (line == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	line->number = 0;
	for (size_t at = 0; at < length && status == 0;) {
		const char *end = memchr(text + at, '\n', length - at);
		size_t line_length = end != NULL ? (size_t)(end - (text + at)) : length - at;
		const char *start = text + at;
		at += line_length + (end != NULL);
		line->number++;
		if (line_length > 0 && start[line_length - 1] == '\r')
			line_length--;
		if (memchr(start, '\0', line_length) != NULL) {
			snprintf(err, errsize, "line %zu: a NUL byte: not a text file", line->number);
			status = -1;
			break;
		}
		if (is_blank(start, line_length))
			continue;
		if (split_line(start, line_length, line, err, errsize) != 0) {
			status = -1;
			break;
		}
		if (!have_header) {
			if (line->number != 1) {
				snprintf(err, errsize, "line %zu: the header must be the first line", line->number);
				status = -1;
			} else {
				status = read_header(line, positions, err, errsize);
			}
			have_header = true;
			continue;
		}
		if (list->count == BARS_CSV_MAX_ROWS) {
			snprintf(err, errsize, "line %zu: more than %d bars in one file", line->number,
				 BARS_CSV_MAX_ROWS);
			status = -1;
			break;
		}
		struct bar bar;
		if (parse_row(line, positions, &bar, err, errsize) != 0) {
			status = -1;
			break;
		}
		bar.line = line->number;
		if (bar_list_append(list, &bar) != 0) {
			snprintf(err, errsize, "out of memory");
			status = -1;
			break;
		}
	}
	if (status == 0 && !have_header) {
		snprintf(err, errsize, "no header line: the file is empty");
		status = -1;
	}
	if (status == 0)
		status = check_duplicates(list, err, errsize);
	free(line);
	if (status != 0)
		bar_list_free(list);
	return status;
}

void bar_list_free(struct bar_list *list)
{
	free(list->bars);
	list->bars = NULL;
	list->count = list->capacity = 0;
}

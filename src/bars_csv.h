/*
 * Daily close bars from CSV, for `sigtrig bars load`: a header line names
 * the columns, in any order, and every other column is ignored:
 *
 *   ticker (or symbol)   the instrument, as signal tickers are written
 *   day                  integer day index (the sample data's), or
 *   date                 YYYY-MM-DD, stored as days since 1970-01-01
 *   close                the closing price, a positive number
 *
 * Fields may be double-quoted (RFC 4180, "" for a quote); lines may end
 * in CRLF. The whole text is checked before anything is kept: the first
 * error names its line and column, and no bar of a file with an error is
 * loaded.
 */
#ifndef SIGTRIG_BARS_CSV_H
#define SIGTRIG_BARS_CSV_H

#include <stddef.h>

#include "signal.h"

/* More rows than a day-bar file of every listed stock for decades needs. */
#define BARS_CSV_MAX_ROWS 5000000

struct bar {
	char ticker[SIGNAL_TICKER_MAX + 1];
	int day;
	double close;
	size_t line; /* the line of the file it came from, for messages */
};

struct bar_list {
	struct bar *bars;
	size_t count, capacity;
};

/*
 * Parses `length` bytes of CSV into *list (emptied first). Returns 0, or
 * -1 with err "line N: column: why" and *list empty.
 */
int bars_csv_parse(const char *text, size_t length, struct bar_list *list, char *err, size_t errsize);

void bar_list_free(struct bar_list *list);

/* "YYYY-MM-DD" -> days since 1970-01-01 (proleptic Gregorian); -1 when not a valid date. */
int bars_csv_parse_date(const char *text, int *day);

#endif

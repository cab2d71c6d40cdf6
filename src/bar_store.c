/* Daily close bars in PostgreSQL (see bar_store.h). */
#include "bar_store.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

json_t *bars_to_json(const struct bar_list *list, size_t first, size_t count)
{
	json_t *rows = json_array();
	for (size_t i = first; i < first + count && i < list->count; i++) {
		const struct bar *bar = &list->bars[i];
		json_array_append_new(rows, json_pack("[s, i, f]", bar->ticker, bar->day, bar->close));
	}
	return rows;
}

/* What is wrong with one [ticker, day, close] row, or NULL. */
static const char *bar_row_problem(const json_t *row)
{
	if (!json_is_array(row) || json_array_size(row) != 3)
		return "must be [ticker, day, close]";
	const char *ticker = json_string_value(json_array_get(row, 0));
	const json_t *day = json_array_get(row, 1), *close = json_array_get(row, 2);
	if (ticker == NULL || !signal_ticker_is_valid(ticker))
		return "ticker: not a ticker";
	if (!json_is_integer(day) || json_integer_value(day) < INT32_MIN / 2 || json_integer_value(day) > INT32_MAX / 2)
		return "day: not an integer day index";
	if (!json_is_number(close) || !isfinite(json_number_value(close)) || !(json_number_value(close) > 0))
		return "close: not a positive price";
	return NULL;
}

int bars_from_json(const json_t *rows, struct bar_list *list, char *err, size_t errsize)
{
	bar_list_free(list);
	if (!json_is_array(rows) || json_array_size(rows) == 0) {
		snprintf(err, errsize, "bars: must be a non-empty array of [ticker, day, close]");
		return -1;
	}
	if (json_array_size(rows) > BAR_STORE_MAX_PER_REQUEST) {
		snprintf(err, errsize, "bars: more than %d in one request", BAR_STORE_MAX_PER_REQUEST);
		return -1;
	}
	list->capacity = json_array_size(rows);
	list->bars = calloc(list->capacity, sizeof *list->bars);
	if (list->bars == NULL) {
		list->capacity = 0;
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	size_t index;
	const json_t *row;
	json_array_foreach(rows, index, row) {
		const char *why = bar_row_problem(row);
		if (why != NULL) {
			snprintf(err, errsize, "bars[%zu]: %s", index, why);
			bar_list_free(list);
			return -1;
		}
		struct bar *bar = &list->bars[list->count++];
		snprintf(bar->ticker, sizeof bar->ticker, "%s", json_string_value(json_array_get(row, 0)));
		bar->day = (int)json_integer_value(json_array_get(row, 1));
		bar->close = json_number_value(json_array_get(row, 2));
		bar->line = index;
	}
	return 0;
}

/* "{v,v,...}" of the days or the closes, malloc'd. */
static char *number_array_literal(const struct bar_list *list, int closes)
{
	size_t capacity = 3 + list->count * 26, used = 0;
	char *text = malloc(capacity);
	if (text == NULL)
		return NULL;
	text[used++] = '{';
	for (size_t i = 0; i < list->count; i++) {
		int written = closes ? snprintf(text + used, capacity - used, "%s%.17g", i > 0 ? "," : "",
						list->bars[i].close)
				     : snprintf(text + used, capacity - used, "%s%d", i > 0 ? "," : "", list->bars[i].day);
		used += (size_t)written;
	}
	snprintf(text + used, capacity - used, "}");
	return text;
}

int bar_store_upsert(PGconn *db, const struct bar_list *list, long *inserted, long *updated, char *err,
		     size_t errsize)
{
	*inserted = *updated = 0;
	if (list->count == 0)
		return 0;
	const char **tickers = malloc(list->count * sizeof *tickers);
	if (tickers == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < list->count; i++)
		tickers[i] = list->bars[i].ticker;
	char *ticker_literal = db_text_array_literal(tickers, list->count);
	free(tickers);
	char *day_literal = number_array_literal(list, 0), *close_literal = number_array_literal(list, 1);
	int status = -1;
	if (ticker_literal == NULL || day_literal == NULL || close_literal == NULL) {
		snprintf(err, errsize, "out of memory");
	} else {
		const char *values[] = { ticker_literal, day_literal, close_literal };
		/* xmax is 0 on a row this statement inserted, set on one it updated. */
		PGresult *result = db_query(db,
					    "WITH written AS ("
					    " INSERT INTO market_bars (ticker, day, close)"
					    " SELECT * FROM unnest($1::text[], $2::integer[], $3::double precision[])"
					    " ON CONFLICT (ticker, day) DO UPDATE SET close = EXCLUDED.close"
					    " RETURNING xmax = 0 AS inserted)"
					    " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)"
					    " FROM written",
					    3, values, err, errsize);
		if (result != NULL) {
			*inserted = strtol(PQgetvalue(result, 0, 0), NULL, 10);
			*updated = strtol(PQgetvalue(result, 0, 1), NULL, 10);
			PQclear(result);
			status = 0;
		}
	}
	free(ticker_literal);
	free(day_literal);
	free(close_literal);
	return status;
}

json_t *bar_store_summary(PGconn *db, char *err, size_t errsize)
{
	/* DISTINCT ON reads each ticker's last bar off the primary key. */
	return db_query_rows(db,
			     "SELECT s.ticker, s.bars, s.first_day, s.last_day, l.close AS last_close"
			     " FROM (SELECT ticker, count(*) AS bars, min(day) AS first_day, max(day) AS last_day"
			     "       FROM market_bars GROUP BY ticker) s"
			     " JOIN market_bars l ON l.ticker = s.ticker AND l.day = s.last_day"
			     " ORDER BY s.ticker",
			     0, NULL, err, errsize);
}

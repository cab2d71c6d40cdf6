/*
 * market_data_agent: the latest daily closes of the run's tickers.
 * Config: "lookback" (bars per ticker, default 50), "tickers" (overrides
 * the pipeline's scanner_tickers), "min_bars" (default 0). State out:
 * "bars": {ticker: {"days": [...], "closes": [...]}}, oldest first. A
 * ticker without bars is recorded with bars: 0, and deciding what that
 * means is the later agents' business, unless min_bars asks for that
 * many: then the step fails, retryably, as it does when the store cannot
 * be read: the data may be there when the worker tries again.
 */
#include <stdio.h>
#include <stdlib.h>

#include "agents.h"
#include "db.h"

#define MARKET_DATA_DEFAULT_LOOKBACK 50
#define MARKET_DATA_MAX_LOOKBACK 10000

/*
 * One round trip for all tickers; LATERAL makes each ticker's LIMIT a
 * backward scan of the (ticker, day) primary key.
 */
static const char latest_bars_sql[] =
	"SELECT t.ticker, b.day, b.close"
	" FROM unnest($1::text[]) AS t(ticker)"
	" CROSS JOIN LATERAL (SELECT day, close FROM market_bars m"
	"   WHERE m.ticker = t.ticker ORDER BY day DESC LIMIT $2::integer) AS b"
	" ORDER BY t.ticker, b.day";

static PGresult *query_latest_bars(PGconn *db, const json_t *tickers, int lookback, char *err,
				   size_t errsize)
{
	size_t count = json_array_size(tickers);
	const char **names = calloc(count > 0 ? count : 1, sizeof *names);
	if (names == NULL) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < count; i++)
		names[i] = json_string_value(json_array_get(tickers, i));
	char *array_literal = db_text_array_literal(names, count);
	free(names);
	if (array_literal == NULL) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	char lookback_text[16];
	snprintf(lookback_text, sizeof lookback_text, "%d", lookback);
	const char *values[] = { array_literal, lookback_text };
	PGresult *result = db_query(db, latest_bars_sql, 2, values, err, errsize);
	free(array_literal);
	return result;
}

static int read_config(const json_t *node_config, double *lookback, double *min_bars, char *err, size_t errsize)
{
	return agent_config_number(node_config, "lookback", MARKET_DATA_DEFAULT_LOOKBACK, 1, MARKET_DATA_MAX_LOOKBACK,
				   lookback, err, errsize) != 0 ||
			       agent_config_number(node_config, "min_bars", 0, 0, *lookback, min_bars, err, errsize) != 0
		       ? -1
		       : 0;
}

int market_data_agent_check_config(const json_t *node_config, char *err, size_t errsize)
{
	static const char *const keys[] = { "lookback", "min_bars", "tickers", NULL };
	double lookback, min_bars;
	if (agent_config_only_keys(node_config, keys, err, errsize) != 0 ||
	    read_config(node_config, &lookback, &min_bars, err, errsize) != 0)
		return -1;
	const json_t *tickers = json_object_get(node_config, "tickers");
	if (tickers == NULL || json_is_null(tickers))
		return 0;
	size_t index;
	const json_t *ticker;
	bool valid = json_is_array(tickers);
	json_array_foreach(tickers, index, ticker)
		valid = valid && json_is_string(ticker) && signal_ticker_is_valid(json_string_value(ticker));
	if (!valid) {
		snprintf(err, errsize, "config.tickers: must be an array of tickers");
		return -1;
	}
	return 0;
}

int market_data_agent_run(struct agent_context *context, const json_t *node_config,
			  json_t **step_output, char *err, size_t errsize)
{
	double lookback;
	double min_bars;
	if (read_config(node_config, &lookback, &min_bars, err, errsize) != 0)
		return AGENT_FAILED;
	if (context->db == NULL) {
		snprintf(err, errsize, "no database connection");
		return AGENT_FAILED;
	}
	json_t *tickers = agent_run_tickers(context, node_config);
	PGresult *result = query_latest_bars(context->db, tickers, (int)lookback, err, errsize);
	if (result == NULL) {
		json_decref(tickers);
		context->retryable = true;
		return AGENT_FAILED;
	}
	json_t *bars = json_object();
	size_t index;
	const json_t *ticker;
	json_array_foreach(tickers, index, ticker)
		json_object_set_new(bars, json_string_value(ticker),
				    json_pack("{s:[], s:[]}", "days", "closes"));
	for (int row = 0; row < PQntuples(result); row++) {
		json_t *series = json_object_get(bars, PQgetvalue(result, row, 0));
		json_array_append_new(json_object_get(series, "days"),
				      json_integer(strtoll(PQgetvalue(result, row, 1), NULL, 10)));
		json_array_append_new(json_object_get(series, "closes"),
				      json_real(strtod(PQgetvalue(result, row, 2), NULL)));
	}
	PQclear(result);

	json_t *summary = json_object();
	size_t with_bars = 0;
	const char *name;
	const json_t *series;
	json_object_foreach(bars, name, series) {
		const json_t *days = json_object_get(series, "days");
		const json_t *closes = json_object_get(series, "closes");
		size_t count = json_array_size(closes);
		with_bars += count > 0;
		json_object_set_new(summary, name,
				    count == 0 ? json_pack("{s:i}", "bars", 0)
					       : json_pack("{s:I, s:O, s:O, s:O}", "bars", (json_int_t)count,
							   "first_day", json_array_get(days, 0),
							   "last_day", json_array_get(days, count - 1),
							   "last_close", json_array_get(closes, count - 1)));
	}
	json_object_set_new(context->state, "bars", bars);
	char short_of[256] = "";
	json_object_foreach(bars, name, series) {
		size_t count = json_array_size(json_object_get(series, "closes"));
		if ((double)count < min_bars)
			agent_decision_append(short_of, sizeof short_of, "%s has %zu", name, count);
	}
	if (short_of[0] != '\0') {
		snprintf(err, errsize, "market data unavailable (min_bars %g): %s", min_bars, short_of);
		*step_output = json_pack("{s:o, s:i}", "tickers", summary, "lookback", (int)lookback);
		json_decref(tickers);
		context->retryable = true;
		return AGENT_FAILED;
	}
	char decision[96];
	snprintf(decision, sizeof decision, "bars for %zu of %zu tickers", with_bars,
		 json_array_size(tickers));
	*step_output = json_pack("{s:o, s:i, s:s}", "tickers", summary, "lookback", (int)lookback,
				 "decision", decision);
	json_decref(tickers);
	return AGENT_COMPLETED;
}

/*
 * The market-data store the market_data_agent reads: daily close bars in
 * table market_bars, keyed by (ticker, day). `sigtrig bars load` parses a
 * CSV file on the client (bars_csv.h) and sends the bars to the daemon in
 * chunks, as arrays [ticker, day, close]; the daemon checks every row
 * again, since the socket is an input like any other, and upserts them.
 */
#ifndef SIGTRIG_BAR_STORE_H
#define SIGTRIG_BAR_STORE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "bars_csv.h"

/* Bars per request: a chunk stays far below the control socket's line limit. */
#define BAR_STORE_MAX_PER_REQUEST 20000

/* bars[first, first + count) as a JSON array of [ticker, day, close]. */
json_t *bars_to_json(const struct bar_list *list, size_t first, size_t count);
/*
 * The bars of such an array into *list (emptied first). Returns 0, or -1
 * with err "bars[i]: why" and *list empty.
 */
int bars_from_json(const json_t *rows, struct bar_list *list, char *err, size_t errsize);

/*
 * Inserts the bars, replacing the close of a (ticker, day) already
 * stored, in one statement. *inserted and *updated count each kind.
 * Returns 0, or -1 with err.
 */
int bar_store_upsert(PGconn *db, const struct bar_list *list, long *inserted, long *updated, char *err,
		     size_t errsize);

/* Per ticker: {ticker, bars, first_day, last_day, last_close}, by ticker; NULL with err. */
json_t *bar_store_summary(PGconn *db, char *err, size_t errsize);

#endif

/*
 * The paper portfolio as people and scripts read it (`sigtrig positions`,
 * `sigtrig orders`): read-only views over the tables order_manager writes
 * (see portfolio_store.h).
 */
#ifndef SIGTRIG_PORTFOLIO_REPORT_H
#define SIGTRIG_PORTFOLIO_REPORT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

/* Most orders one request lists. */
#define PORTFOLIO_REPORT_MAX_ORDERS 10000

/*
 * Per user (all, or the one named), by name: {user, user_id, credits,
 * exposure, positions: [{ticker, quantity, average_price, last_close,
 * value, unrealized_pnl, updated_at}]}, each position marked at its
 * ticker's last close (its average price when there is no bar). Flat
 * positions are left out. NULL with err.
 */
json_t *portfolio_report_positions(PGconn *db, const char *user, char *err, size_t errsize);

/*
 * The newest `limit` orders (of one user, or all), newest first: {id,
 * created_at, user, ticker, side, quantity, price, value, status,
 * execution_id, pipeline_id, pipeline_name}. NULL with err.
 */
json_t *portfolio_report_orders(PGconn *db, const char *user, int limit, char *err, size_t errsize);

#endif

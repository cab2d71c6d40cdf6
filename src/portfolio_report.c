/* Read-only views of the paper portfolio (see portfolio_report.h). */
#include "portfolio_report.h"

#include <stdio.h>

#include "db.h"

json_t *portfolio_report_positions(PGconn *db, const char *user, char *err, size_t errsize)
{
	const char *values[] = { user };
	/* numeric columns to float8: db_rows_to_json reads those as numbers. */
	return db_query_rows(
		db,
		"WITH marked AS ("
		" SELECT p.user_id, p.ticker, p.quantity::float8 AS quantity, p.average_price::float8 AS average_price,"
		"        (SELECT b.close FROM market_bars b WHERE b.ticker = p.ticker ORDER BY b.day DESC LIMIT 1)"
		"          AS last_close, p.updated_at"
		" FROM positions p WHERE p.quantity <> 0)"
		" SELECT u.name AS user, u.id AS user_id, u.credits::float8 AS credits,"
		"  coalesce(sum(abs(m.quantity) * coalesce(m.last_close, m.average_price)), 0)::float8 AS exposure,"
		"  coalesce(jsonb_agg(jsonb_build_object('ticker', m.ticker, 'quantity', m.quantity,"
		"    'average_price', m.average_price, 'last_close', m.last_close,"
		"    'value', m.quantity * coalesce(m.last_close, m.average_price),"
		"    'unrealized_pnl', m.quantity * (coalesce(m.last_close, m.average_price) - m.average_price),"
		"    'updated_at', m.updated_at) ORDER BY m.ticker) FILTER (WHERE m.ticker IS NOT NULL), '[]'::jsonb)"
		"   AS positions"
		" FROM users u LEFT JOIN marked m ON m.user_id = u.id"
		" WHERE $1::text IS NULL OR u.name = $1::text"
		" GROUP BY u.id ORDER BY u.name",
		1, values, err, errsize);
}

json_t *portfolio_report_orders(PGconn *db, const char *user, int limit, char *err, size_t errsize)
{
	char limit_text[16];
	snprintf(limit_text, sizeof limit_text, "%d", limit);
	const char *values[] = { user, limit_text };
	return db_query_rows(db,
			     "SELECT o.id, o.created_at, u.name AS user, o.ticker, o.side, o.quantity::float8 AS quantity,"
			     " o.price::float8 AS price, o.value::float8 AS value, o.status, o.execution_id,"
			     " o.pipeline_id, p.name AS pipeline_name"
			     " FROM orders o JOIN users u ON u.id = o.user_id LEFT JOIN pipelines p ON p.id = o.pipeline_id"
			     " WHERE $1::text IS NULL OR u.name = $1::text"
			     " ORDER BY o.created_at DESC, o.id LIMIT $2::integer",
			     2, values, err, errsize);
}

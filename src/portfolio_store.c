#include "portfolio_store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

/*
 * Each position as the execution found it: the quantity less what the
 * execution's own orders (from an earlier attempt) added to it. The
 * average price cannot be taken back that way; it only values a position
 * whose ticker has no bars.
 */
static const char positions_sql[] =
	"SELECT p.ticker, (p.quantity - coalesce(own.change, 0))::float8, p.average_price::float8,"
	"       coalesce((SELECT m.close FROM market_bars m WHERE m.ticker = p.ticker"
	"                 ORDER BY m.day DESC LIMIT 1), p.average_price::float8)"
	" FROM positions p"
	" LEFT JOIN LATERAL (SELECT sum(CASE o.side WHEN 'buy' THEN o.quantity ELSE -o.quantity END)"
	"                    AS change FROM orders o"
	"                    WHERE o.execution_id = $2::uuid AND o.ticker = p.ticker) own ON true"
	" WHERE p.user_id = $1::uuid ORDER BY p.ticker";

static const char credits_sql[] =
	"SELECT credits::float8,"
	"       EXISTS (SELECT 1 FROM execution_charges c WHERE c.execution_id = $2::uuid)"
	" FROM users WHERE id = $1::uuid";

int portfolio_store_load(PGconn *db, const char *user_id, const char *execution_id,
			 struct portfolio *portfolio, char *err, size_t errsize)
{
	*portfolio = (struct portfolio){ 0 };
	const char *values[] = { user_id, execution_id };
	PGresult *result = db_query(db, credits_sql, 2, values, err, errsize);
	if (result == NULL)
		return -1;
	if (PQntuples(result) != 1) {
		snprintf(err, errsize, "no user %s", user_id);
		PQclear(result);
		return -1;
	}
	portfolio->credits = strtod(PQgetvalue(result, 0, 0), NULL);
	portfolio->execution_charged = strcmp(PQgetvalue(result, 0, 1), "t") == 0;
	PQclear(result);
	result = db_query(db, positions_sql, 2, values, err, errsize);
	if (result == NULL)
		return -1;
	for (int row = 0; row < PQntuples(result); row++) {
		struct portfolio_position *position =
			portfolio_position_of(portfolio, PQgetvalue(result, row, 0));
		if (position == NULL) {
			snprintf(err, errsize, "out of memory");
			PQclear(result);
			portfolio_free(portfolio);
			return -1;
		}
		position->quantity = strtod(PQgetvalue(result, row, 1), NULL);
		position->average_price = strtod(PQgetvalue(result, row, 2), NULL);
		position->mark_price = strtod(PQgetvalue(result, row, 3), NULL);
	}
	PQclear(result);
	return 0;
}

/* ---- recording the fills ---- */

static int run_command(PGconn *db, const char *sql, int count, const char *const *values, char *err,
		       size_t errsize)
{
	PGresult *result = db_query(db, sql, count, values, err, errsize);
	if (result == NULL)
		return -1;
	PQclear(result);
	return 0;
}

/* Prices and quantities go to numeric(20,6) columns: six decimals is what is kept. */
static void format_amount(char *text, size_t size, double amount)
{
	snprintf(text, size, "%.6f", amount);
}

/* Reads back the order an earlier attempt of the execution filled for this ticker. */
static int read_existing_order(PGconn *db, const struct portfolio_execution *execution,
			       struct portfolio_order *order, char *err, size_t errsize)
{
	const char *values[] = { execution->execution_id, order->ticker, execution->user_id };
	PGresult *result = db_query(
		db,
		"SELECT o.id, CASE o.side WHEN 'buy' THEN o.quantity ELSE -o.quantity END::float8,"
		"       o.price::float8, p.quantity::float8, p.average_price::float8"
		" FROM orders o LEFT JOIN positions p ON p.user_id = $3::uuid AND p.ticker = o.ticker"
		" WHERE o.execution_id = $1::uuid AND o.ticker = $2",
		3, values, err, errsize);
	if (result == NULL)
		return -1;
	if (PQntuples(result) != 1) {
		snprintf(err, errsize, "order of execution %s for %s: neither inserted nor found",
			 execution->execution_id, order->ticker);
		PQclear(result);
		return -1;
	}
	snprintf(order->id, sizeof order->id, "%s", PQgetvalue(result, 0, 0));
	order->change = strtod(PQgetvalue(result, 0, 1), NULL);
	order->price = strtod(PQgetvalue(result, 0, 2), NULL);
	order->position_quantity = strtod(PQgetvalue(result, 0, 3), NULL);
	order->position_average_price = strtod(PQgetvalue(result, 0, 4), NULL);
	order->filled_now = false;
	PQclear(result);
	return 0;
}

/* Moves the user's position in the order's ticker by the order just inserted. */
static int move_position(PGconn *db, const struct portfolio_execution *execution,
			 struct portfolio_order *order, char *err, size_t errsize)
{
	const char *key[] = { execution->user_id, order->ticker };
	PGresult *result = db_query(db,
				    "SELECT quantity::float8, average_price::float8 FROM positions"
				    " WHERE user_id = $1::uuid AND ticker = $2",
				    2, key, err, errsize);
	if (result == NULL)
		return -1;
	double quantity = 0, average_price = 0;
	if (PQntuples(result) == 1) {
		quantity = strtod(PQgetvalue(result, 0, 0), NULL);
		average_price = strtod(PQgetvalue(result, 0, 1), NULL);
	}
	PQclear(result);
	portfolio_position_after_fill(quantity, average_price, order->change, order->price,
				      &order->position_quantity, &order->position_average_price);
	char quantity_text[48], average_text[48];
	format_amount(quantity_text, sizeof quantity_text, order->position_quantity);
	format_amount(average_text, sizeof average_text, order->position_average_price);
	const char *values[] = { execution->user_id, order->ticker, quantity_text, average_text };
	return run_command(db,
			   "INSERT INTO positions (user_id, ticker, quantity, average_price)"
			   " VALUES ($1::uuid, $2, $3::numeric, $4::numeric)"
			   " ON CONFLICT (user_id, ticker) DO UPDATE SET quantity = EXCLUDED.quantity,"
			   "   average_price = EXCLUDED.average_price, updated_at = now()",
			   4, values, err, errsize);
}

static int record_order(PGconn *db, const struct portfolio_execution *execution,
			struct portfolio_order *order, char *err, size_t errsize)
{
	char quantity_text[48], price_text[48], value_text[48];
	format_amount(quantity_text, sizeof quantity_text, fabs(order->change));
	format_amount(price_text, sizeof price_text, order->price);
	format_amount(value_text, sizeof value_text, fabs(order->change) * order->price);
	const char *values[] = { execution->execution_id, execution->pipeline_id, execution->user_id,
				 order->ticker, order->change > 0 ? "buy" : "sell", quantity_text,
				 price_text, value_text };
	PGresult *result = db_query(
		db,
		"INSERT INTO orders (execution_id, pipeline_id, user_id, ticker, side, quantity, price,"
		" value, status)"
		" VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6::numeric, $7::numeric, $8::numeric,"
		" 'filled')"
		" ON CONFLICT (execution_id, ticker) DO NOTHING RETURNING id",
		8, values, err, errsize);
	if (result == NULL)
		return -1;
	bool inserted = PQntuples(result) == 1;
	if (inserted)
		snprintf(order->id, sizeof order->id, "%s", PQgetvalue(result, 0, 0));
	PQclear(result);
	if (!inserted)
		return read_existing_order(db, execution, order, err, errsize);
	order->filled_now = true;
	return move_position(db, execution, order, err, errsize);
}

/*
 * Charges the execution's cost unless it was charged before. Returns 0,
 * PORTFOLIO_CREDITS_RAN_OUT, or -1 with err filled.
 */
static int charge_execution(PGconn *db, const struct portfolio_execution *execution, bool *charged_now,
			    double *credits, char *err, size_t errsize)
{
	char cost_text[48];
	snprintf(cost_text, sizeof cost_text, "%.2f", execution->cost);
	const char *values[] = { execution->execution_id, execution->user_id, cost_text };
	PGresult *result = db_query(db,
				    "INSERT INTO execution_charges (execution_id, user_id, amount)"
				    " VALUES ($1::uuid, $2::uuid, $3::numeric)"
				    " ON CONFLICT (execution_id) DO NOTHING RETURNING amount",
				    3, values, err, errsize);
	if (result == NULL)
		return -1;
	*charged_now = PQntuples(result) == 1;
	PQclear(result);
	if (!*charged_now || execution->cost <= 0)
		return 0;
	const char *debit[] = { execution->user_id, cost_text };
	result = db_query(db,
			  "UPDATE users SET credits = credits - $2::numeric"
			  " WHERE id = $1::uuid AND credits >= $2::numeric RETURNING credits::float8",
			  2, debit, err, errsize);
	if (result == NULL)
		return -1;
	bool debited = PQntuples(result) == 1;
	if (debited)
		*credits = strtod(PQgetvalue(result, 0, 0), NULL);
	PQclear(result);
	return debited ? 0 : PORTFOLIO_CREDITS_RAN_OUT;
}

/* Locks the user's row for the transaction and reads the credits. */
static int lock_user(PGconn *db, const char *user_id, double *credits, char *err, size_t errsize)
{
	const char *values[] = { user_id };
	PGresult *result = db_query(db, "SELECT credits::float8 FROM users WHERE id = $1::uuid FOR UPDATE",
				    1, values, err, errsize);
	if (result == NULL)
		return -1;
	int found = PQntuples(result) == 1;
	if (found)
		*credits = strtod(PQgetvalue(result, 0, 0), NULL);
	else
		snprintf(err, errsize, "no user %s", user_id);
	PQclear(result);
	return found ? 0 : -1;
}

int portfolio_store_record(PGconn *db, const struct portfolio_execution *execution,
			   struct portfolio_order *orders, size_t count, bool *charged_now,
			   double *credits, char *err, size_t errsize)
{
	*charged_now = false;
	if (run_command(db, "BEGIN", 0, NULL, err, errsize) != 0)
		return -1;
	int status = lock_user(db, execution->user_id, credits, err, errsize);
	for (size_t i = 0; status == 0 && i < count; i++)
		status = record_order(db, execution, &orders[i], err, errsize);
	if (status == 0)
		status = charge_execution(db, execution, charged_now, credits, err, errsize);
	if (status == PORTFOLIO_RECORDED && run_command(db, "COMMIT", 0, NULL, err, errsize) == 0)
		return PORTFOLIO_RECORDED;
	char ignored[256];
	run_command(db, "ROLLBACK", 0, NULL, ignored, sizeof ignored);
	if (status == PORTFOLIO_CREDITS_RAN_OUT) {
		*charged_now = false;
		for (size_t i = 0; i < count; i++)
			orders[i].filled_now = false;
		return PORTFOLIO_CREDITS_RAN_OUT;
	}
	return -1;
}

/*
 * The paper portfolio in PostgreSQL: what risk_manager reads (positions,
 * credits) and what order_manager writes (orders, positions, the
 * execution's charge), in the tables of migration 6.
 */
#ifndef SIGTRIG_PORTFOLIO_STORE_H
#define SIGTRIG_PORTFOLIO_STORE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "portfolio.h"

#define PORTFOLIO_ORDER_ID_LENGTH 36

/*
 * Loads the user's positions, each marked at its ticker's last close in
 * market_bars (else its average price), and the user's credits. When
 * execution_id is given, the portfolio is the one that execution started
 * from: the orders an earlier attempt of it filled are taken out of the
 * quantities, and execution_charged says whether it already paid, so a
 * retried run is judged as its first attempt was. 0, or -1 with err
 * filled (an unknown user too).
 */
int portfolio_store_load(PGconn *db, const char *user_id, const char *execution_id,
			 struct portfolio *portfolio, char *err, size_t errsize);

/* One order to record. The outputs say what the database holds afterwards. */
struct portfolio_order {
	const char *ticker;
	double change; /* shares: positive bought, negative sold; never 0 */
	double price;
	/* out */
	char id[PORTFOLIO_ORDER_ID_LENGTH + 1];
	/* false: an earlier attempt of the execution filled it; change and price are then the stored order's */
	bool filled_now;
	double position_quantity, position_average_price; /* the user's position in ticker after it */
};

struct portfolio_execution {
	const char *execution_id, *pipeline_id, *user_id;
	double cost; /* credits, charged once per execution */
};

enum portfolio_record_status { PORTFOLIO_RECORDED = 0, PORTFOLIO_CREDITS_RAN_OUT = 1 };

/*
 * In one transaction: inserts the orders (one per execution and ticker: an
 * order already there is read back, not filled again), moves the positions
 * by the orders inserted now, and charges the execution's cost once, only
 * while the credits cover it. The user's row is locked first, so that two
 * executions of one user update positions one after the other.
 * Returns PORTFOLIO_RECORDED; PORTFOLIO_CREDITS_RAN_OUT when the credits
 * no longer covered the cost, rolled back with nothing recorded; -1 with
 * err filled on an error, rolled back. *charged_now says whether this call
 * charged the cost, *credits what the user has left (before the rollback
 * when the credits ran out).
 */
int portfolio_store_record(PGconn *db, const struct portfolio_execution *execution,
			   struct portfolio_order *orders, size_t count, bool *charged_now,
			   double *credits, char *err, size_t errsize);

#endif

/*
 * A user's paper portfolio as the risk and order agents see it: the
 * positions held per ticker and the credits left. The arithmetic of a
 * fill (quantity, average price) and of exposure lives here as pure
 * functions; portfolio_store.h reads and writes the portfolio in
 * PostgreSQL.
 */
#ifndef SIGTRIG_PORTFOLIO_H
#define SIGTRIG_PORTFOLIO_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Quantities are kept to a millionth of a share (numeric(20,6) in the
 * database); two closer than half of that are equal, and a position that
 * close to zero is flat, not a sliver left by floating-point subtraction.
 */
#define PORTFOLIO_QUANTITY_EPSILON 5e-7

struct portfolio_position {
	char *ticker;
	double quantity;      /* negative: short */
	double average_price; /* what the open quantity cost a share; 0 when flat */
	double mark_price;    /* what a share is worth now: the last close, else average_price */
};

struct portfolio {
	struct portfolio_position *positions;
	size_t count, capacity;
	double credits;
	/* The execution being run already paid its cost (an earlier attempt of it committed). */
	bool execution_charged;
};

void portfolio_free(struct portfolio *portfolio);
/* The position in ticker, or NULL when the user holds none. */
const struct portfolio_position *portfolio_find(const struct portfolio *portfolio, const char *ticker);
/* The position in ticker, added flat when there is none; NULL when out of memory. */
struct portfolio_position *portfolio_position_of(struct portfolio *portfolio, const char *ticker);
/* The quantity held in ticker (0 when none). */
double portfolio_quantity(const struct portfolio *portfolio, const char *ticker);
/* Sum of |quantity| * mark_price over every position but ticker's (NULL: over all). */
double portfolio_exposure_excluding(const struct portfolio *portfolio, const char *ticker);

/*
 * A position after a fill of `change` shares (positive bought, negative
 * sold) at `price`. Adding to a position averages the prices; reducing it
 * keeps the average; crossing zero opens the rest at the fill's price; a
 * flat position has average price 0.
 */
void portfolio_position_after_fill(double quantity, double average_price, double change, double price,
				   double *new_quantity, double *new_average_price);

/* Applies a fill to the portfolio in memory (its mark becomes the fill's price); -1 when out of memory. */
int portfolio_apply_fill(struct portfolio *portfolio, const char *ticker, double change, double price);

#endif

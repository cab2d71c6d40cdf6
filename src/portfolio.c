#include "portfolio.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void portfolio_free(struct portfolio *portfolio)
{
	for (size_t i = 0; i < portfolio->count; i++)
		free(portfolio->positions[i].ticker);
	free(portfolio->positions);
	portfolio->positions = NULL;
	portfolio->count = portfolio->capacity = 0;
}

const struct portfolio_position *portfolio_find(const struct portfolio *portfolio, const char *ticker)
{
	for (size_t i = 0; i < portfolio->count; i++)
		if (strcmp(portfolio->positions[i].ticker, ticker) == 0)
			return &portfolio->positions[i];
	return NULL;
}

struct portfolio_position *portfolio_position_of(struct portfolio *portfolio, const char *ticker)
{
	for (size_t i = 0; i < portfolio->count; i++)
		if (strcmp(portfolio->positions[i].ticker, ticker) == 0)
			return &portfolio->positions[i];
	if (portfolio->count == portfolio->capacity) {
		size_t capacity = portfolio->capacity > 0 ? portfolio->capacity * 2 : 8;
		struct portfolio_position *grown =
			realloc(portfolio->positions, capacity * sizeof *grown);
		if (grown == NULL)
			return NULL;
		portfolio->positions = grown;
		portfolio->capacity = capacity;
	}
	char *copy = strdup(ticker);
	if (copy == NULL)
		return NULL;
	struct portfolio_position *position = &portfolio->positions[portfolio->count++];
	*position = (struct portfolio_position){ .ticker = copy };
	return position;
}

double portfolio_quantity(const struct portfolio *portfolio, const char *ticker)
{
	const struct portfolio_position *position = portfolio_find(portfolio, ticker);
	return position != NULL ? position->quantity : 0;
}

double portfolio_exposure_excluding(const struct portfolio *portfolio, const char *ticker)
{
	double exposure = 0;
	for (size_t i = 0; i < portfolio->count; i++) {
		const struct portfolio_position *position = &portfolio->positions[i];
		if (ticker == NULL || strcmp(position->ticker, ticker) != 0)
			exposure += fabs(position->quantity) * position->mark_price;
	}
	return exposure;
}

void portfolio_position_after_fill(double quantity, double average_price, double change, double price,
				   double *new_quantity, double *new_average_price)
{
	double after = quantity + change;
	if (fabs(after) < PORTFOLIO_QUANTITY_EPSILON) {
		*new_quantity = 0;
		*new_average_price = 0;
		return;
	}
	*new_quantity = after;
	bool flat_before = fabs(quantity) < PORTFOLIO_QUANTITY_EPSILON;
	if (flat_before || (quantity > 0) == (change > 0)) {
		/* Adding to the position (or opening it): the average of what every share cost. */
		double held = flat_before ? 0 : fabs(quantity);
		*new_average_price = (held * average_price + fabs(change) * price) / fabs(after);
	} else if ((after > 0) == (quantity > 0)) {
		/* Reducing it: the shares still held cost what they cost. */
		*new_average_price = average_price;
	} else {
		/* Through zero: what is left was opened by this fill. */
		*new_average_price = price;
	}
}

int portfolio_apply_fill(struct portfolio *portfolio, const char *ticker, double change, double price)
{
	struct portfolio_position *position = portfolio_position_of(portfolio, ticker);
	if (position == NULL)
		return -1;
	portfolio_position_after_fill(position->quantity, position->average_price, change, price,
				      &position->quantity, &position->average_price);
	position->mark_price = price;
	return 0;
}

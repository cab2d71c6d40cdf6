/*
 * order_manager: a paper broker. Each approved trade (or, in a pipeline
 * without a risk_manager step, each intended trade) is filled in full at
 * its price, the last close. Config: "execution_cost" (credits charged
 * per execution, default 1). State in: "approved" or "intents"; out:
 * "orders": [...], which the run's result carries.
 *
 * With a database, the orders, the positions they move and the charge go
 * to PostgreSQL in one transaction, once per execution: a retried or
 * redelivered run finds its orders and its charge there, fills nothing
 * twice and pays once. When the credits no longer cover the cost (spent
 * by another run since risk_manager looked), nothing is recorded and the
 * step is rejected. Without a database (the unit tests) the fills are in
 * the result only, marked "recorded": false.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "portfolio_store.h"

#define ORDER_DEFAULT_EXECUTION_COST 1
#define ORDER_MAX_EXECUTION_COST 1e9
#define ORDER_MANAGER_TYPE "order_manager"

int order_manager_paper_fill(const struct trade_intent *intent, struct paper_order *order)
{
	if (intent->action == TRADE_HOLD || !(intent->price > 0) || !(intent->quantity > 0))
		return -1;
	order->side = intent->action;
	order->price = intent->price;
	order->quantity = intent->quantity;
	order->value = intent->price * intent->quantity;
	return 0;
}

int order_manager_read_cost(const json_t *node_config, double *cost, char *err, size_t errsize)
{
	double value;
	if (agent_config_number(node_config, "execution_cost", ORDER_DEFAULT_EXECUTION_COST, 0,
				ORDER_MAX_EXECUTION_COST, &value, err, errsize) != 0)
		return -1;
	/* Credits are kept to the cent (numeric(14,2)): what is charged is what is checked. */
	*cost = round(value * 100) / 100;
	return 0;
}

int order_manager_check_config(const json_t *node_config, char *err, size_t errsize)
{
	static const char *const keys[] = { "execution_cost", NULL };
	double cost;
	return agent_config_only_keys(node_config, keys, err, errsize) != 0 ||
			       order_manager_read_cost(node_config, &cost, err, errsize) != 0
		       ? -1
		       : 0;
}

int order_manager_pipeline_cost(const struct pipeline *pipeline, double *cost, char *err,
				size_t errsize)
{
	*cost = 0;
	size_t index;
	const json_t *node;
	json_array_foreach(json_object_get(pipeline->config, "nodes"), index, node) {
		const char *type = json_string_value(json_object_get(node, "agent_type"));
		if (type == NULL || strcmp(type, ORDER_MANAGER_TYPE) != 0)
			continue;
		char reason[256];
		if (order_manager_read_cost(json_object_get(node, "config"), cost, reason, sizeof reason) !=
		    0) {
			snprintf(err, errsize, "nodes[%zu] (order_manager): %s", index, reason);
			return -1;
		}
		return 0;
	}
	return 0;
}

/* The fills of the trades in the state; *count of them, malloc'd (NULL when none). */
static struct portfolio_order *paper_fills(const json_t *trades, size_t *count, char *err,
					   size_t errsize)
{
	*count = 0;
	struct portfolio_order *fills = calloc(json_object_size(trades) + 1, sizeof *fills);
	if (fills == NULL) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	const char *ticker;
	json_t *intent_json;
	json_object_foreach((json_t *)trades, ticker, intent_json) {
		struct trade_intent intent;
		struct paper_order order;
		if (trade_intent_from_json(intent_json, &intent) != 0 ||
		    order_manager_paper_fill(&intent, &order) != 0)
			continue;
		fills[*count] = (struct portfolio_order){
			.ticker = ticker,
			.change = order.side == TRADE_BUY ? order.quantity : -order.quantity,
			.price = order.price,
			.filled_now = true,
		};
		(*count)++;
	}
	return fills;
}

static json_t *order_json(const struct portfolio_order *fill, bool recorded)
{
	double quantity = fabs(fill->change);
	json_t *order = json_pack("{s:s, s:s, s:f, s:f, s:f, s:s, s:s, s:b}", "ticker", fill->ticker,
				  "side", fill->change > 0 ? "buy" : "sell", "quantity", quantity, "price",
				  fill->price, "value", quantity * fill->price, "status", "filled", "mode",
				  "paper", "recorded", recorded);
	if (recorded) {
		json_object_set_new(order, "order_id", json_string(fill->id));
		json_object_set_new(order, "filled_now", json_boolean(fill->filled_now));
		json_object_set_new(order, "position",
				    json_pack("{s:f, s:f}", "quantity", fill->position_quantity,
					      "average_price", fill->position_average_price));
	}
	return order;
}

/*
 * Records the fills and the charge. Returns an agent_outcome; a rejection
 * (the credits ran out) fills *step_output itself.
 */
static int record_fills(struct agent_context *context, struct portfolio_order *fills, size_t count,
			double cost, json_t **charge, json_t **step_output, char *err, size_t errsize)
{
	if (context->execution_id == NULL || context->pipeline == NULL) {
		snprintf(err, errsize, "no execution id: the orders cannot be recorded once per execution");
		return AGENT_FAILED;
	}
	const struct portfolio_execution execution = { context->execution_id, context->pipeline->id,
						       context->pipeline->user_id, cost };
	bool charged_now;
	double credits = 0;
	int status = portfolio_store_record(context->db, &execution, fills, count, &charged_now, &credits,
					    err, errsize);
	if (status < 0) {
		/* Rolled back; a retry of the same execution records once whatever happened here. */
		context->retryable = true;
		return AGENT_FAILED;
	}
	if (status == PORTFOLIO_CREDITS_RAN_OUT) {
		char decision[200];
		snprintf(decision, sizeof decision,
			 "rejected: credits %.2f no longer cover execution_cost %.2f; nothing filled or charged",
			 credits, cost);
		*step_output = json_pack("{s:f, s:f, s:s}", "credits", credits, "execution_cost", cost,
					 "decision", decision);
		return AGENT_REJECTED;
	}
	*charge = json_pack("{s:f, s:b, s:f}", "execution_cost", cost, "charged_now", charged_now,
			    "credits_left", credits);
	return AGENT_COMPLETED;
}

int order_manager_run(struct agent_context *context, const json_t *node_config, json_t **step_output,
		      char *err, size_t errsize)
{
	double cost;
	if (order_manager_read_cost(node_config, &cost, err, errsize) != 0)
		return AGENT_FAILED;
	const json_t *trades = json_object_get(context->state, "approved");
	if (trades == NULL)
		trades = json_object_get(context->state, "intents");
	if (!json_is_object(trades)) {
		snprintf(err, errsize, "no trades in the state: a strategy_agent step must come first");
		return AGENT_FAILED;
	}
	size_t count;
	struct portfolio_order *fills = paper_fills(trades, &count, err, errsize);
	if (fills == NULL)
		return AGENT_FAILED;
	bool recorded = context->db != NULL;
	json_t *charge = NULL;
	if (recorded) {
		int outcome = record_fills(context, fills, count, cost, &charge, step_output, err, errsize);
		if (outcome != AGENT_COMPLETED) {
			free(fills);
			return outcome;
		}
	}
	json_t *orders = json_array();
	char decision[512] = "";
	for (size_t i = 0; i < count; i++) {
		json_array_append_new(orders, order_json(&fills[i], recorded));
		agent_decision_append(decision, sizeof decision, "%s %s %g @ %g %s", fills[i].ticker,
				      fills[i].change > 0 ? "buy" : "sell", fabs(fills[i].change),
				      fills[i].price,
				      fills[i].filled_now ? "filled" : "filled by an earlier attempt");
	}
	free(fills);
	if (count == 0)
		agent_decision_append(decision, sizeof decision, "no order");
	if (charge == NULL)
		agent_decision_append(decision, sizeof decision, "not recorded: no database");
	else if (json_is_true(json_object_get(charge, "charged_now")))
		agent_decision_append(decision, sizeof decision, "charged %.2f credits", cost);
	else
		agent_decision_append(decision, sizeof decision, "execution_cost charged by an earlier attempt");
	json_object_set(context->state, "orders", orders);
	*step_output = json_pack("{s:o, s:b, s:o?, s:s}", "orders", orders, "recorded", recorded,
				 "charge", charge, "decision", decision);
	return AGENT_COMPLETED;
}

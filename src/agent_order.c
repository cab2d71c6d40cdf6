/*
 * order_manager: paper orders. Each approved trade (or, in a pipeline
 * without a risk_manager step, each intended trade) is filled in full at
 * its price, the last close. State in: "approved" or "intents"; out:
 * "orders": [...], which the run's result carries. Writing orders and
 * positions to the database comes later.
 */
#include <stdio.h>

#include "agents.h"

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

int order_manager_run(struct agent_context *context, const json_t *node_config, json_t **step_output,
		      char *err, size_t errsize)
{
	(void)node_config;
	const json_t *trades = json_object_get(context->state, "approved");
	if (trades == NULL)
		trades = json_object_get(context->state, "intents");
	if (!json_is_object(trades)) {
		snprintf(err, errsize, "no trades in the state: a strategy_agent step must come first");
		return AGENT_FAILED;
	}
	json_t *orders = json_array();
	char decision[512] = "";
	const char *ticker;
	json_t *intent_json;
	json_object_foreach((json_t *)trades, ticker, intent_json) {
		struct trade_intent intent;
		struct paper_order order;
		if (trade_intent_from_json(intent_json, &intent) != 0 ||
		    order_manager_paper_fill(&intent, &order) != 0)
			continue;
		json_array_append_new(orders,
				      json_pack("{s:s, s:s, s:f, s:f, s:f, s:s, s:s}", "ticker", ticker,
						"side", trade_action_name(order.side), "quantity",
						order.quantity, "price", order.price, "value",
						order.value, "status", "filled", "mode", "paper"));
		agent_decision_append(decision, sizeof decision, "%s %s %g @ %g filled", ticker,
				      trade_action_name(order.side), order.quantity, order.price);
	}
	json_object_set(context->state, "orders", orders);
	*step_output = json_pack("{s:o, s:s}", "orders", orders, "decision",
				 decision[0] != '\0' ? decision : "no order");
	return AGENT_COMPLETED;
}

/*
 * risk_manager: approves or rejects each buy/sell intent. Config:
 * "max_order_value" (default 10000). State in: "intents"; out: "approved":
 * {ticker: intent}. When every trade is rejected the step is "rejected"
 * and the run ends there, SUCCEEDED: not trading is a valid outcome.
 */
#include <stdio.h>

#include "agents.h"

#define RISK_DEFAULT_MAX_ORDER_VALUE 10000
#define RISK_MAX_LIMIT 1e12

bool risk_manager_check(const struct trade_intent *intent, double max_order_value, char *reason,
			size_t reasonsize)
{
	if (intent->action == TRADE_HOLD) {
		snprintf(reason, reasonsize, "hold: nothing to trade");
		return true;
	}
	if (!(intent->price > 0)) {
		snprintf(reason, reasonsize, "no price");
		return false;
	}
	if (!(intent->quantity > 0)) {
		snprintf(reason, reasonsize, "no quantity");
		return false;
	}
	if (intent->value > max_order_value) {
		snprintf(reason, reasonsize, "order value %.2f above max_order_value %.2f", intent->value,
			 max_order_value);
		return false;
	}
	snprintf(reason, reasonsize, "order value %.2f within max_order_value %.2f", intent->value,
		 max_order_value);
	return true;
}

int risk_manager_run(struct agent_context *context, const json_t *node_config, json_t **step_output,
		     char *err, size_t errsize)
{
	double max_order_value;
	if (agent_config_number(node_config, "max_order_value", RISK_DEFAULT_MAX_ORDER_VALUE, 0,
				RISK_MAX_LIMIT, &max_order_value, err, errsize) != 0)
		return AGENT_FAILED;
	const json_t *intents = json_object_get(context->state, "intents");
	if (!json_is_object(intents)) {
		snprintf(err, errsize, "no intents in the state: a strategy_agent step must come first");
		return AGENT_FAILED;
	}
	json_t *approved = json_object();
	json_t *checks = json_object();
	size_t trades = 0;
	char decision[512] = "";
	const char *ticker;
	json_t *intent_json;
	json_object_foreach((json_t *)intents, ticker, intent_json) {
		struct trade_intent intent;
		if (trade_intent_from_json(intent_json, &intent) != 0) {
			snprintf(err, errsize, "intents.%s: not a trade intent", ticker);
			json_decref(approved);
			json_decref(checks);
			return AGENT_FAILED;
		}
		char reason[160];
		bool ok = risk_manager_check(&intent, max_order_value, reason, sizeof reason);
		json_object_set_new(checks, ticker,
				    json_pack("{s:s, s:b, s:s}", "action", trade_action_name(intent.action),
					      "approved", ok, "reason", reason));
		if (intent.action == TRADE_HOLD)
			continue;
		trades++;
		if (ok)
			json_object_set(approved, ticker, intent_json);
		agent_decision_append(decision, sizeof decision, "%s %s %s: %s", ticker,
				      trade_action_name(intent.action), ok ? "approved" : "rejected",
				      reason);
	}
	bool all_rejected = trades > 0 && json_object_size(approved) == 0;
	json_object_set_new(context->state, "approved", approved);
	*step_output = json_pack("{s:o, s:f, s:s}", "checks", checks, "max_order_value",
				 max_order_value, "decision",
				 decision[0] != '\0' ? decision : "no trades to check");
	return all_rejected ? AGENT_REJECTED : AGENT_COMPLETED;
}

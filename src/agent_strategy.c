/*
 * strategy_agent: a trade intent per ticker from its bias. Config:
 * "buy_threshold" (default 20; a score at or beyond it in either direction
 * trades), "order_value" (default 1000, in the ticker's currency). State
 * in: "bias", "bars"; out: "intents": {ticker: intent}.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "agents.h"

#define STRATEGY_DEFAULT_THRESHOLD 20
#define STRATEGY_DEFAULT_ORDER_VALUE 1000
#define STRATEGY_MAX_ORDER_VALUE 1e12
/* Quantities are kept to a millionth of a share: paper trading allows fractions. */
#define STRATEGY_QUANTITY_SCALE 1e6

static const char *const trade_action_names[] = { "hold", "buy", "sell" };

const char *trade_action_name(enum trade_action action)
{
	return trade_action_names[action];
}

void strategy_agent_decide(int bias_score, double threshold, double order_value, double last_close,
			   struct trade_intent *intent)
{
	intent->action = bias_score >= threshold    ? TRADE_BUY
			 : bias_score <= -threshold ? TRADE_SELL
						    : TRADE_HOLD;
	intent->price = last_close > 0 ? last_close : 0;
	intent->quantity = 0;
	if (intent->action != TRADE_HOLD && intent->price > 0)
		intent->quantity = floor(order_value / intent->price * STRATEGY_QUANTITY_SCALE) /
				   STRATEGY_QUANTITY_SCALE;
	intent->value = intent->quantity * intent->price;
}

json_t *trade_intent_to_json(const struct trade_intent *intent)
{
	return json_pack("{s:s, s:o, s:f, s:f}", "action", trade_action_name(intent->action), "price",
			 intent->price > 0 ? json_real(intent->price) : json_null(), "quantity",
			 intent->quantity, "value", intent->value);
}

int trade_intent_from_json(const json_t *object, struct trade_intent *intent)
{
	const char *action = json_string_value(json_object_get(object, "action"));
	if (action == NULL)
		return -1;
	for (int i = 0; i < 3; i++) {
		if (strcmp(action, trade_action_names[i]) == 0) {
			intent->action = (enum trade_action)i;
			intent->price = json_number_value(json_object_get(object, "price"));
			intent->quantity = json_number_value(json_object_get(object, "quantity"));
			intent->value = json_number_value(json_object_get(object, "value"));
			return 0;
		}
	}
	return -1;
}

static double last_close_of(const json_t *bars, const char *ticker)
{
	const json_t *closes = json_object_get(json_object_get(bars, ticker), "closes");
	size_t count = json_array_size(closes);
	return count > 0 ? json_number_value(json_array_get(closes, count - 1)) : 0;
}

static int read_config(const json_t *node_config, double *threshold, double *order_value, char *err,
		       size_t errsize)
{
	return agent_config_number(node_config, "buy_threshold", STRATEGY_DEFAULT_THRESHOLD, 1, 100, threshold, err,
				   errsize) != 0 ||
			       agent_config_number(node_config, "order_value", STRATEGY_DEFAULT_ORDER_VALUE, 0.01,
						   STRATEGY_MAX_ORDER_VALUE, order_value, err, errsize) != 0
		       ? -1
		       : 0;
}

int strategy_agent_check_config(const json_t *node_config, char *err, size_t errsize)
{
	static const char *const keys[] = { "buy_threshold", "order_value", NULL };
	double threshold, order_value;
	return agent_config_only_keys(node_config, keys, err, errsize) != 0 ||
			       read_config(node_config, &threshold, &order_value, err, errsize) != 0
		       ? -1
		       : 0;
}

int strategy_agent_run(struct agent_context *context, const json_t *node_config, json_t **step_output,
		       char *err, size_t errsize)
{
	double threshold, order_value;
	if (read_config(node_config, &threshold, &order_value, err, errsize) != 0)
		return AGENT_FAILED;
	const json_t *biases = json_object_get(context->state, "bias");
	if (!json_is_object(biases)) {
		snprintf(err, errsize, "no bias in the state: a bias_agent step must come first");
		return AGENT_FAILED;
	}
	const json_t *bars = json_object_get(context->state, "bars");
	json_t *intents = json_object();
	char decision[512] = "";
	const char *ticker;
	const json_t *bias;
	json_object_foreach((json_t *)biases, ticker, bias) {
		struct trade_intent intent;
		int score = (int)json_integer_value(json_object_get(bias, "score"));
		strategy_agent_decide(score, threshold, order_value, last_close_of(bars, ticker),
				      &intent);
		json_object_set_new(intents, ticker, trade_intent_to_json(&intent));
		if (intent.action == TRADE_HOLD)
			agent_decision_append(decision, sizeof decision, "%s hold", ticker);
		else
			agent_decision_append(decision, sizeof decision, "%s %s %g @ %g", ticker,
					      trade_action_name(intent.action), intent.quantity,
					      intent.price);
	}
	json_object_set(context->state, "intents", intents);
	*step_output = json_pack("{s:o, s:f, s:f, s:s}", "intents", intents, "buy_threshold",
				 threshold, "order_value", order_value, "decision",
				 decision[0] != '\0' ? decision : "no tickers");
	return AGENT_COMPLETED;
}

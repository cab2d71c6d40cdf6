/*
 * risk_manager: approves or rejects each buy/sell intent against the
 * user's portfolio. Config (defaults below, documented in
 * sigtrig-pipelines(1)): "max_order_value", "max_position_value",
 * "max_position_quantity", "max_exposure", "allow_short". The budget rule
 * needs no key of its own: the credits must cover the execution_cost of
 * the pipeline's order_manager node, which is what that step will charge.
 *
 * State in: "intents"; out: "approved": {ticker: intent}. When the budget
 * fails, or every trade is rejected, the step is "rejected" and the run
 * ends there, SUCCEEDED: not trading is a valid outcome.
 *
 * The positions and credits come from PostgreSQL. Without a database (the
 * unit tests) the trades are checked against an empty portfolio and the
 * budget is not checked; the step's output says so.
 *
 * The portfolio is read without a lock: two runs of one user at the same
 * time are each judged by the portfolio they found, and may together pass
 * a limit that only one of them fits. The credits alone are checked again
 * where they are spent, in order_manager's transaction.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "agents.h"
#include "portfolio.h"
#include "portfolio_store.h"

#define RISK_DEFAULT_MAX_ORDER_VALUE 10000
#define RISK_DEFAULT_MAX_POSITION_VALUE 25000
#define RISK_DEFAULT_MAX_EXPOSURE 100000
#define RISK_MAX_LIMIT 1e12
/* Credits are kept to the cent: less than half a cent short still covers. */
#define RISK_CREDITS_EPSILON 0.005

int risk_manager_read_limits(const json_t *node_config, struct risk_limits *limits, char *err,
			     size_t errsize)
{
	if (agent_config_number(node_config, "max_order_value", RISK_DEFAULT_MAX_ORDER_VALUE, 0,
				RISK_MAX_LIMIT, &limits->max_order_value, err, errsize) != 0 ||
	    agent_config_number(node_config, "max_position_value", RISK_DEFAULT_MAX_POSITION_VALUE, 0,
				RISK_MAX_LIMIT, &limits->max_position_value, err, errsize) != 0 ||
	    agent_config_number(node_config, "max_position_quantity", INFINITY, 0, RISK_MAX_LIMIT,
				&limits->max_position_quantity, err, errsize) != 0 ||
	    agent_config_number(node_config, "max_exposure", RISK_DEFAULT_MAX_EXPOSURE, 0, RISK_MAX_LIMIT,
				&limits->max_exposure, err, errsize) != 0 ||
	    agent_config_bool(node_config, "allow_short", false, &limits->allow_short, err, errsize) != 0)
		return -1;
	return 0;
}

int risk_manager_check_config(const json_t *node_config, char *err, size_t errsize)
{
	static const char *const keys[] = { "max_order_value", "max_position_value", "max_position_quantity",
					    "max_exposure", "allow_short", NULL };
	struct risk_limits limits;
	return agent_config_only_keys(node_config, keys, err, errsize) != 0 ||
			       risk_manager_read_limits(node_config, &limits, err, errsize) != 0
		       ? -1
		       : 0;
}

/* The limits that only bind a trade growing the position. */
static bool check_position_limits(const struct trade_intent *intent, double quantity_after,
				  const struct risk_limits *limits, const struct risk_holding *holding,
				  char *reason, size_t reasonsize)
{
	double size = fabs(quantity_after);
	if (size > limits->max_position_quantity + PORTFOLIO_QUANTITY_EPSILON) {
		snprintf(reason, reasonsize, "position of %g after the order above max_position_quantity %g",
			 quantity_after, limits->max_position_quantity);
		return false;
	}
	double position_value = size * intent->price;
	if (position_value > limits->max_position_value) {
		snprintf(reason, reasonsize,
			 "position value %.2f after the order above max_position_value %.2f", position_value,
			 limits->max_position_value);
		return false;
	}
	double exposure = holding->other_exposure + position_value;
	if (exposure > limits->max_exposure) {
		snprintf(reason, reasonsize, "exposure %.2f after the order above max_exposure %.2f", exposure,
			 limits->max_exposure);
		return false;
	}
	snprintf(reason, reasonsize,
		 "order value %.2f, position value %.2f and exposure %.2f within the limits",
		 intent->value, position_value, exposure);
	return true;
}

bool risk_manager_check(const struct trade_intent *intent, const struct risk_limits *limits,
			const struct risk_holding *holding, char *reason, size_t reasonsize)
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
	if (intent->value > limits->max_order_value) {
		snprintf(reason, reasonsize, "order value %.2f above max_order_value %.2f", intent->value,
			 limits->max_order_value);
		return false;
	}
	double change = intent->action == TRADE_BUY ? intent->quantity : -intent->quantity;
	double after = holding->quantity + change;
	if (after < -PORTFOLIO_QUANTITY_EPSILON && !limits->allow_short) {
		if (holding->quantity > PORTFOLIO_QUANTITY_EPSILON)
			snprintf(reason, reasonsize, "sell of %g above the %g held (allow_short is false)",
				 intent->quantity, holding->quantity);
		else
			snprintf(reason, reasonsize, "sell of %g with none held (allow_short is false)",
				 intent->quantity);
		return false;
	}
	if (fabs(after) <= fabs(holding->quantity) + PORTFOLIO_QUANTITY_EPSILON) {
		snprintf(reason, reasonsize, "order value %.2f within max_order_value %.2f; reduces the position",
			 intent->value, limits->max_order_value);
		return true;
	}
	return check_position_limits(intent, after, limits, holding, reason, reasonsize);
}

bool risk_manager_check_budget(double credits, double execution_cost, bool already_charged, char *reason,
			       size_t reasonsize)
{
	if (already_charged) {
		snprintf(reason, reasonsize, "execution_cost already charged to this execution");
		return true;
	}
	if (credits + RISK_CREDITS_EPSILON < execution_cost) {
		snprintf(reason, reasonsize, "credits %.2f do not cover execution_cost %.2f", credits,
			 execution_cost);
		return false;
	}
	snprintf(reason, reasonsize, "credits %.2f cover execution_cost %.2f", credits, execution_cost);
	return true;
}

/* A limit for the step's output: null when none is set. */
static json_t *limit_json(double limit)
{
	return isinf(limit) ? json_null() : json_real(limit);
}

static json_t *limits_json(const struct risk_limits *limits)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:b}", "max_order_value", limit_json(limits->max_order_value),
			 "max_position_value", limit_json(limits->max_position_value),
			 "max_position_quantity", limit_json(limits->max_position_quantity), "max_exposure",
			 limit_json(limits->max_exposure), "allow_short", limits->allow_short);
}

/*
 * The portfolio the trades are checked against, and the budget's verdict.
 * Returns 0, or -1 with err filled.
 */
static int load_portfolio(struct agent_context *context, double execution_cost,
			  struct portfolio *portfolio, json_t **budget, bool *budget_ok, char *err,
			  size_t errsize)
{
	*portfolio = (struct portfolio){ 0 };
	if (context->db == NULL || context->pipeline == NULL) {
		*budget_ok = true;
		*budget = json_pack("{s:b, s:s}", "checked", false, "reason",
				    "no database: checked against an empty portfolio, budget not checked");
		return 0;
	}
	if (portfolio_store_load(context->db, context->pipeline->user_id, context->execution_id, portfolio,
				 err, errsize) != 0) {
		/* The portfolio may be readable on the next try; nothing was decided yet. */
		context->retryable = true;
		return -1;
	}
	char reason[160];
	*budget_ok = risk_manager_check_budget(portfolio->credits, execution_cost,
					       portfolio->execution_charged, reason, sizeof reason);
	*budget = json_pack("{s:b, s:b, s:f, s:f, s:b, s:s}", "checked", true, "approved", *budget_ok,
			    "credits", portfolio->credits, "execution_cost", execution_cost,
			    "already_charged", portfolio->execution_charged, "reason", reason);
	return 0;
}

/* Checks one intent; an approved one is applied to the portfolio, so the next is checked after it. */
static int check_trade(struct portfolio *portfolio, const char *ticker, const struct trade_intent *intent,
		       const struct risk_limits *limits, bool budget_ok, json_t **check, bool *approved,
		       char *err, size_t errsize)
{
	struct risk_holding holding = { portfolio_quantity(portfolio, ticker),
					portfolio_exposure_excluding(portfolio, ticker) };
	char reason[200];
	*approved = risk_manager_check(intent, limits, &holding, reason, sizeof reason);
	if (*approved && !budget_ok && intent->action != TRADE_HOLD) {
		snprintf(reason, sizeof reason, "the budget does not cover the run");
		*approved = false;
	}
	double change = intent->action == TRADE_BUY ? intent->quantity : -intent->quantity;
	if (*approved && intent->action != TRADE_HOLD &&
	    portfolio_apply_fill(portfolio, ticker, change, intent->price) != 0) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	*check = json_pack("{s:s, s:b, s:s, s:f, s:f}", "action", trade_action_name(intent->action),
			   "approved", *approved, "reason", reason, "position_before", holding.quantity,
			   "position_after", portfolio_quantity(portfolio, ticker));
	return 0;
}

int risk_manager_run(struct agent_context *context, const json_t *node_config, json_t **step_output,
		     char *err, size_t errsize)
{
	struct risk_limits limits;
	if (risk_manager_read_limits(node_config, &limits, err, errsize) != 0)
		return AGENT_FAILED;
	double execution_cost = 0;
	if (context->pipeline != NULL &&
	    order_manager_pipeline_cost(context->pipeline, &execution_cost, err, errsize) != 0)
		return AGENT_FAILED;
	const json_t *intents = json_object_get(context->state, "intents");
	if (!json_is_object(intents)) {
		snprintf(err, errsize, "no intents in the state: a strategy_agent step must come first");
		return AGENT_FAILED;
	}
	struct portfolio portfolio;
	json_t *budget = NULL;
	bool budget_ok;
	if (load_portfolio(context, execution_cost, &portfolio, &budget, &budget_ok, err, errsize) != 0)
		return AGENT_FAILED;
	json_t *approved = json_object();
	json_t *checks = json_object();
	size_t trades = 0;
	char decision[512] = "";
	if (!budget_ok)
		agent_decision_append(decision, sizeof decision, "budget: %s",
				      json_string_value(json_object_get(budget, "reason")));
	int outcome = AGENT_COMPLETED;
	const char *ticker;
	json_t *intent_json;
	json_object_foreach((json_t *)intents, ticker, intent_json) {
		struct trade_intent intent;
		if (trade_intent_from_json(intent_json, &intent) != 0) {
			snprintf(err, errsize, "intents.%s: not a trade intent", ticker);
			outcome = AGENT_FAILED;
			break;
		}
		json_t *check;
		bool ok;
		if (check_trade(&portfolio, ticker, &intent, &limits, budget_ok, &check, &ok, err, errsize) !=
		    0) {
			outcome = AGENT_FAILED;
			break;
		}
		json_object_set_new(checks, ticker, check);
		if (intent.action == TRADE_HOLD)
			continue;
		trades++;
		if (ok)
			json_object_set(approved, ticker, intent_json);
		agent_decision_append(decision, sizeof decision, "%s %s %s: %s", ticker,
				      trade_action_name(intent.action), ok ? "approved" : "rejected",
				      json_string_value(json_object_get(check, "reason")));
	}
	double exposure = portfolio_exposure_excluding(&portfolio, NULL);
	portfolio_free(&portfolio);
	if (outcome == AGENT_FAILED) {
		json_decref(approved);
		json_decref(checks);
		json_decref(budget);
		return AGENT_FAILED;
	}
	if (!budget_ok || (trades > 0 && json_object_size(approved) == 0))
		outcome = AGENT_REJECTED;
	json_object_set_new(context->state, "approved", approved);
	*step_output = json_pack("{s:o, s:o, s:o, s:f, s:s}", "checks", checks, "limits",
				 limits_json(&limits), "budget", budget, "exposure_after", exposure,
				 "decision", decision[0] != '\0' ? decision : "no trades to check");
	return outcome;
}

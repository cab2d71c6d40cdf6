/* The pipeline agents: their decisions on known inputs, and the runner. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "portfolio.h"
#include "timeutil.h"

static const struct bias_parameters default_parameters = { 10, 30 };

static void fill_series(double *closes, size_t count, double start, double step)
{
	for (size_t i = 0; i < count; i++)
		closes[i] = start + step * (double)i;
}

/* ---- bias ---- */

START_TEST(test_sma_averages_the_last_period)
{
	double values[] = { 1, 2, 3, 4, 5 };
	ck_assert_double_eq_tol(bias_agent_sma(values, 5, 3), 4.0, 1e-9);
	ck_assert_double_eq_tol(bias_agent_sma(values, 5, 5), 3.0, 1e-9);
	ck_assert(isnan(bias_agent_sma(values, 5, 6)));
	ck_assert(isnan(bias_agent_sma(values, 5, 0)));
}
END_TEST

START_TEST(test_rising_series_is_bullish)
{
	double closes[60];
	fill_series(closes, 60, 100, 1);
	struct bias_estimate estimate;
	bias_agent_estimate(closes, 60, &default_parameters, SIGNAL_NEUTRAL, 0, &estimate);
	ck_assert_int_eq(estimate.bias, SIGNAL_BULLISH);
	ck_assert_int_gt(estimate.score, 0);
	ck_assert_double_eq_tol(estimate.sma_short, 154.5, 1e-9);
	ck_assert_double_eq_tol(estimate.sma_long, 144.5, 1e-9);
	ck_assert(estimate.momentum_pct > 0);
	ck_assert_int_eq(estimate.crossover, 0);
}
END_TEST

START_TEST(test_falling_series_is_bearish)
{
	double closes[60];
	fill_series(closes, 60, 200, -1);
	struct bias_estimate estimate;
	bias_agent_estimate(closes, 60, &default_parameters, SIGNAL_NEUTRAL, 0, &estimate);
	ck_assert_int_eq(estimate.bias, SIGNAL_BEARISH);
	ck_assert_int_lt(estimate.score, 0);
	ck_assert_int_ge(estimate.score, -100);
}
END_TEST

START_TEST(test_flat_series_is_neutral)
{
	double closes[40];
	fill_series(closes, 40, 100, 0);
	struct bias_estimate estimate;
	bias_agent_estimate(closes, 40, &default_parameters, SIGNAL_NEUTRAL, 0, &estimate);
	ck_assert_int_eq(estimate.bias, SIGNAL_NEUTRAL);
	ck_assert_int_eq(estimate.score, 0);
}
END_TEST

START_TEST(test_short_sma_crossing_above_long_adds_to_score)
{
	double closes[40];
	fill_series(closes, 40, 100, 0);
	closes[39] = 110; /* the short SMA rises above the long one on the last bar */
	struct bias_estimate estimate;
	bias_agent_estimate(closes, 40, &default_parameters, SIGNAL_NEUTRAL, 0, &estimate);
	ck_assert_int_eq(estimate.crossover, 1);
	ck_assert(estimate.sma_short > estimate.sma_long);
	ck_assert_int_eq(estimate.bias, SIGNAL_BULLISH);
	/* 0.66% gap -> 7, 10% momentum capped at 25, crossover 10 */
	ck_assert_int_eq(estimate.score, 42);

	closes[39] = 90;
	bias_agent_estimate(closes, 40, &default_parameters, SIGNAL_NEUTRAL, 0, &estimate);
	ck_assert_int_eq(estimate.crossover, -1);
	ck_assert_int_eq(estimate.bias, SIGNAL_BEARISH);
}
END_TEST

START_TEST(test_signal_direction_tilts_a_flat_market)
{
	double closes[40];
	fill_series(closes, 40, 100, 0);
	struct bias_estimate estimate;
	bias_agent_estimate(closes, 40, &default_parameters, SIGNAL_BULLISH, 80, &estimate);
	ck_assert_int_eq(estimate.score, 20);
	ck_assert_int_eq(estimate.bias, SIGNAL_BULLISH);
	bias_agent_estimate(closes, 40, &default_parameters, SIGNAL_BEARISH, 80, &estimate);
	ck_assert_int_eq(estimate.score, -20);
	ck_assert_int_eq(estimate.bias, SIGNAL_BEARISH);
}
END_TEST

START_TEST(test_no_bars_and_no_signal_is_neutral)
{
	struct bias_estimate estimate;
	bias_agent_estimate(NULL, 0, &default_parameters, SIGNAL_NEUTRAL, 0, &estimate);
	ck_assert_int_eq(estimate.bias, SIGNAL_NEUTRAL);
	ck_assert_int_eq(estimate.score, 0);
	ck_assert(isnan(estimate.sma_short) && isnan(estimate.sma_long) && isnan(estimate.momentum_pct));
}
END_TEST

/* ---- strategy, risk, orders ---- */

START_TEST(test_strategy_follows_threshold)
{
	struct trade_intent intent;
	strategy_agent_decide(20, 20, 1000, 50, &intent);
	ck_assert_int_eq(intent.action, TRADE_BUY);
	ck_assert_double_eq_tol(intent.quantity, 20, 1e-9);
	ck_assert_double_eq_tol(intent.value, 1000, 1e-6);
	strategy_agent_decide(19, 20, 1000, 50, &intent);
	ck_assert_int_eq(intent.action, TRADE_HOLD);
	ck_assert_double_eq(intent.quantity, 0);
	strategy_agent_decide(-35, 20, 1000, 50, &intent);
	ck_assert_int_eq(intent.action, TRADE_SELL);
	strategy_agent_decide(80, 20, 1000, 0, &intent);
	ck_assert_int_eq(intent.action, TRADE_BUY);
	ck_assert_double_eq(intent.quantity, 0);
	ck_assert_double_eq(intent.price, 0);
}
END_TEST

/* The defaults, as sigtrig-pipelines(1) documents them. */
static struct risk_limits default_limits(void)
{
	struct risk_limits limits;
	json_t *empty = json_object();
	char err[128];
	ck_assert_int_eq(risk_manager_read_limits(empty, &limits, err, sizeof err), 0);
	json_decref(empty);
	return limits;
}

static const struct risk_holding nothing_held = { 0, 0 };

START_TEST(test_risk_limits_have_documented_defaults)
{
	struct risk_limits limits = default_limits();
	ck_assert_double_eq(limits.max_order_value, 10000);
	ck_assert_double_eq(limits.max_position_value, 25000);
	ck_assert(isinf(limits.max_position_quantity));
	ck_assert_double_eq(limits.max_exposure, 100000);
	ck_assert(!limits.allow_short);
}
END_TEST

START_TEST(test_risk_limit_of_the_wrong_type_fails_naming_its_key)
{
	struct risk_limits limits;
	char err[128];
	json_t *config = json_pack("{s:s}", "allow_short", "yes");
	ck_assert_int_eq(risk_manager_read_limits(config, &limits, err, sizeof err), -1);
	ck_assert_str_eq(err, "config.allow_short: must be true or false");
	json_decref(config);
	config = json_pack("{s:f}", "max_exposure", -5.0);
	ck_assert_int_eq(risk_manager_read_limits(config, &limits, err, sizeof err), -1);
	ck_assert_msg(strncmp(err, "config.max_exposure: ", 21) == 0, "%s", err);
	json_decref(config);
	config = json_pack("{s:s}", "max_position_quantity", "10");
	ck_assert_int_eq(risk_manager_read_limits(config, &limits, err, sizeof err), -1);
	ck_assert_str_eq(err, "config.max_position_quantity: must be a number");
	json_decref(config);
}
END_TEST

START_TEST(test_risk_rejects_above_max_order_value)
{
	struct risk_limits limits = default_limits();
	struct trade_intent intent = { TRADE_BUY, 100, 120, 12000 };
	char reason[200];
	ck_assert(!risk_manager_check(&intent, &limits, &nothing_held, reason, sizeof reason));
	ck_assert_str_eq(reason, "order value 12000.00 above max_order_value 10000.00");
	intent.quantity = 50;
	intent.value = 5000;
	ck_assert(risk_manager_check(&intent, &limits, &nothing_held, reason, sizeof reason));
}
END_TEST

START_TEST(test_risk_rejects_without_price)
{
	struct risk_limits limits = default_limits();
	struct trade_intent intent = { TRADE_SELL, 0, 0, 0 };
	char reason[200];
	ck_assert(!risk_manager_check(&intent, &limits, &nothing_held, reason, sizeof reason));
	ck_assert_str_eq(reason, "no price");
	struct trade_intent hold = { TRADE_HOLD, 0, 0, 0 };
	ck_assert(risk_manager_check(&hold, &limits, &nothing_held, reason, sizeof reason));
}
END_TEST

START_TEST(test_risk_position_value_limit_counts_the_shares_already_held)
{
	struct risk_limits limits = default_limits();
	limits.max_position_value = 8000;
	/* 50 @ 100 is within max_order_value; with the 40 held, the position is worth 9000. */
	struct trade_intent intent = { TRADE_BUY, 100, 50, 5000 };
	struct risk_holding holding = { 40, 0 };
	char reason[200];
	ck_assert(!risk_manager_check(&intent, &limits, &holding, reason, sizeof reason));
	ck_assert_str_eq(reason, "position value 9000.00 after the order above max_position_value 8000.00");
	holding.quantity = 30;
	ck_assert_msg(risk_manager_check(&intent, &limits, &holding, reason, sizeof reason), "%s", reason);
}
END_TEST

START_TEST(test_risk_position_quantity_limit_counts_the_shares_already_held)
{
	struct risk_limits limits = default_limits();
	limits.max_position_quantity = 60;
	struct trade_intent intent = { TRADE_BUY, 10, 25, 250 };
	struct risk_holding holding = { 40, 0 };
	char reason[200];
	ck_assert(!risk_manager_check(&intent, &limits, &holding, reason, sizeof reason));
	ck_assert_str_eq(reason, "position of 65 after the order above max_position_quantity 60");
	/* Exactly at the limit is within it. */
	holding.quantity = 35;
	ck_assert(risk_manager_check(&intent, &limits, &holding, reason, sizeof reason));
}
END_TEST

START_TEST(test_risk_exposure_limit_sums_the_users_other_positions)
{
	struct risk_limits limits = default_limits();
	limits.max_exposure = 20000;
	struct trade_intent intent = { TRADE_BUY, 100, 50, 5000 };
	/* 10 held here (1000 with the order's 5000 makes 6000) and 15000 elsewhere: 21000. */
	struct risk_holding holding = { 10, 15000 };
	char reason[200];
	ck_assert(!risk_manager_check(&intent, &limits, &holding, reason, sizeof reason));
	ck_assert_str_eq(reason, "exposure 21000.00 after the order above max_exposure 20000.00");
	holding.other_exposure = 14000;
	ck_assert(risk_manager_check(&intent, &limits, &holding, reason, sizeof reason));
}
END_TEST

START_TEST(test_risk_refuses_selling_more_than_held_unless_short_selling_is_allowed)
{
	struct risk_limits limits = default_limits();
	struct trade_intent intent = { TRADE_SELL, 100, 20, 2000 };
	struct risk_holding holding = { 15, 0 };
	char reason[200];
	ck_assert(!risk_manager_check(&intent, &limits, &holding, reason, sizeof reason));
	ck_assert_str_eq(reason, "sell of 20 above the 15 held (allow_short is false)");
	ck_assert(!risk_manager_check(&intent, &limits, &nothing_held, reason, sizeof reason));
	ck_assert_str_eq(reason, "sell of 20 with none held (allow_short is false)");
	holding.quantity = 20;
	ck_assert_msg(risk_manager_check(&intent, &limits, &holding, reason, sizeof reason), "%s", reason);
	limits.allow_short = true;
	ck_assert(risk_manager_check(&intent, &limits, &nothing_held, reason, sizeof reason));
	/* A short position is a position: its limits bind it as they bind a long one. */
	limits.max_position_value = 1500;
	ck_assert(!risk_manager_check(&intent, &limits, &nothing_held, reason, sizeof reason));
	ck_assert_str_eq(reason, "position value 2000.00 after the order above max_position_value 1500.00");
}
END_TEST

START_TEST(test_risk_lets_a_trade_that_reduces_the_position_past_the_limits)
{
	struct risk_limits limits = default_limits();
	limits.max_position_value = 1000;
	limits.max_exposure = 1000;
	/* Far over both limits already: selling part of it must stay possible. */
	struct trade_intent intent = { TRADE_SELL, 100, 20, 2000 };
	struct risk_holding holding = { 300, 50000 };
	char reason[200];
	ck_assert_msg(risk_manager_check(&intent, &limits, &holding, reason, sizeof reason), "%s", reason);
	ck_assert(strstr(reason, "reduces the position") != NULL);
	/* Buying more of it is refused. */
	intent.action = TRADE_BUY;
	ck_assert(!risk_manager_check(&intent, &limits, &holding, reason, sizeof reason));
}
END_TEST

START_TEST(test_risk_budget_needs_credits_for_the_execution_cost)
{
	char reason[200];
	ck_assert(risk_manager_check_budget(1, 1, false, reason, sizeof reason));
	ck_assert_str_eq(reason, "credits 1.00 cover execution_cost 1.00");
	ck_assert(!risk_manager_check_budget(0.99, 1, false, reason, sizeof reason));
	ck_assert_str_eq(reason, "credits 0.99 do not cover execution_cost 1.00");
	/* A retried run that already paid is not refused for the credits its first attempt spent. */
	ck_assert(risk_manager_check_budget(0, 1, true, reason, sizeof reason));
	ck_assert(risk_manager_check_budget(0, 0, false, reason, sizeof reason));
}
END_TEST

/* A risk_manager step run on its own over intents, without a database. */
static int run_risk_step(json_t *intents, json_t *node_config, json_t **state, json_t **output,
			 char *err, size_t errsize)
{
	*state = json_pack("{s:o}", "intents", intents);
	json_t *no_signals = json_array();
	struct agent_context context = { .signals = no_signals, .state = *state };
	*output = NULL;
	int outcome = risk_manager_run(&context, node_config, output, err, errsize);
	json_decref(no_signals);
	json_decref(node_config);
	return outcome;
}

START_TEST(test_risk_checks_each_trade_of_a_run_after_the_ones_it_approved)
{
	/* Each buy fits max_exposure alone; the second does not after the first. */
	json_t *intents = json_pack("{s:{s:s, s:f, s:f, s:f}, s:{s:s, s:f, s:f, s:f}}", "AAA", "action", "buy",
				    "price", 10.0, "quantity", 60.0, "value", 600.0, "BBB", "action", "buy",
				    "price", 20.0, "quantity", 30.0, "value", 600.0);
	json_t *state, *output;
	char err[256];
	int outcome = run_risk_step(intents, json_pack("{s:f}", "max_exposure", 1000.0), &state, &output, err,
				    sizeof err);
	ck_assert_int_eq(outcome, AGENT_COMPLETED);
	const json_t *approved = json_object_get(state, "approved");
	ck_assert_ptr_nonnull(json_object_get(approved, "AAA"));
	ck_assert_ptr_null(json_object_get(approved, "BBB"));
	const json_t *check = json_object_get(json_object_get(output, "checks"), "BBB");
	ck_assert_str_eq(json_string_value(json_object_get(check, "reason")),
			 "exposure 1200.00 after the order above max_exposure 1000.00");
	ck_assert_double_eq_tol(json_real_value(json_object_get(output, "exposure_after")), 600, 1e-9);
	ck_assert(json_is_false(json_object_get(json_object_get(output, "budget"), "checked")));
	json_decref(output);
	json_decref(state);
}
END_TEST

START_TEST(test_risk_rejecting_every_trade_rejects_the_step)
{
	json_t *intents = json_pack("{s:{s:s, s:f, s:f, s:f}}", "AAA", "action", "sell", "price", 10.0,
				    "quantity", 5.0, "value", 50.0);
	json_t *state, *output;
	char err[256];
	ck_assert_int_eq(run_risk_step(intents, json_object(), &state, &output, err, sizeof err),
			 AGENT_REJECTED);
	ck_assert_uint_eq(json_object_size(json_object_get(state, "approved")), 0);
	ck_assert_msg(strstr(json_string_value(json_object_get(output, "decision")), "AAA sell rejected: sell of 5 "
											"with none held") != NULL,
		      "%s", json_string_value(json_object_get(output, "decision")));
	json_decref(output);
	json_decref(state);
}
END_TEST

START_TEST(test_risk_fails_on_a_bad_limit_naming_it)
{
	json_t *state, *output;
	char err[256];
	ck_assert_int_eq(run_risk_step(json_object(), json_pack("{s:i}", "allow_short", 1), &state, &output, err,
				       sizeof err),
			 AGENT_FAILED);
	ck_assert_str_eq(err, "config.allow_short: must be true or false");
	ck_assert_ptr_null(output);
	json_decref(state);
}
END_TEST

START_TEST(test_paper_fill_at_price)
{
	struct trade_intent intent = { TRADE_BUY, 25, 4, 100 };
	struct paper_order order;
	ck_assert_int_eq(order_manager_paper_fill(&intent, &order), 0);
	ck_assert_int_eq(order.side, TRADE_BUY);
	ck_assert_double_eq_tol(order.value, 100, 1e-9);
	struct trade_intent hold = { TRADE_HOLD, 25, 0, 0 };
	ck_assert_int_eq(order_manager_paper_fill(&hold, &order), -1);
}
END_TEST

START_TEST(test_execution_cost_is_the_order_managers_with_a_default_of_one_credit)
{
	struct pipeline pipeline = { 0 };
	double cost;
	char err[256];
	pipeline.config = json_pack("{s:[{s:s}, {s:s}]}", "nodes", "agent_type", "risk_manager", "agent_type",
				    "order_manager");
	ck_assert_int_eq(order_manager_pipeline_cost(&pipeline, &cost, err, sizeof err), 0);
	ck_assert_double_eq(cost, 1);
	json_decref(pipeline.config);
	pipeline.config = json_pack("{s:[{s:s}, {s:s, s:{s:f}}]}", "nodes", "agent_type", "risk_manager",
				    "agent_type", "order_manager", "config", "execution_cost", 2.504);
	ck_assert_int_eq(order_manager_pipeline_cost(&pipeline, &cost, err, sizeof err), 0);
	ck_assert_double_eq_tol(cost, 2.5, 1e-9); /* to the cent, as credits are kept */
	json_decref(pipeline.config);
	/* Without an order_manager nothing is charged. */
	pipeline.config = json_pack("{s:[{s:s}]}", "nodes", "agent_type", "risk_manager");
	ck_assert_int_eq(order_manager_pipeline_cost(&pipeline, &cost, err, sizeof err), 0);
	ck_assert_double_eq(cost, 0);
	json_decref(pipeline.config);
	pipeline.config = json_pack("{s:[{s:s, s:{s:s}}]}", "nodes", "agent_type", "order_manager", "config",
				    "execution_cost", "free");
	ck_assert_int_eq(order_manager_pipeline_cost(&pipeline, &cost, err, sizeof err), -1);
	ck_assert_str_eq(err, "nodes[0] (order_manager): config.execution_cost: must be a number");
	json_decref(pipeline.config);
}
END_TEST

/* A bias_agent step over flat bars of AAA and the given signals: the ticker's bias entry (new reference). */
static json_t *bias_of_signals(json_t *signals)
{
	json_t *closes = json_array();
	for (int i = 0; i < 40; i++)
		json_array_append_new(closes, json_real(100));
	json_t *state = json_pack("{s:{s:{s:o}}, s:o}", "bars", "AAA", "closes", closes, "signals", signals);
	struct agent_context context = { .signals = signals, .state = state };
	json_t *output = NULL;
	char err[256];
	ck_assert_int_eq(bias_agent_run(&context, NULL, &output, err, sizeof err), AGENT_COMPLETED);
	json_t *bias = json_incref(json_object_get(json_object_get(output, "tickers"), "AAA"));
	json_decref(output);
	json_decref(state);
	return bias;
}

/* The run's signals count with their direction and confidence, scaled by metadata.weight. */
START_TEST(test_bias_weighs_the_signals_by_direction_confidence_and_metadata_weight)
{
#define ONE_SIGNAL_WITH_METADATA \
	"[{\"signal_id\": \"s1\", \"tickers\": [{\"ticker\": \"AAA\", \"signal\": \"BULLISH\", \"confidence\": 80}]," \
	" \"metadata\": %s}]"
	struct {
		const char *metadata;
		const char *signal;
		double confidence;
	} cases[] = {
		{ "{}", "BULLISH", 80 },
		{ "{\"weight\": 0.5}", "BULLISH", 40 },
		{ "{\"weight\": 0}", "NEUTRAL", 0 },
		{ "{\"weight\": 7}", "BULLISH", 80 },	  /* out of 0..1: ignored */
		{ "{\"weight\": \"x\"}", "BULLISH", 80 }, /* not a number: ignored */
	};
	int scores[5];
	for (size_t i = 0; i < 5; i++) {
		char text[400];
		snprintf(text, sizeof text, ONE_SIGNAL_WITH_METADATA, cases[i].metadata);
		json_t *signals = json_loads(text, 0, NULL);
		ck_assert_ptr_nonnull(signals);
		json_t *bias = bias_of_signals(signals);
		ck_assert_str_eq(json_string_value(json_object_get(bias, "signal")), cases[i].signal);
		ck_assert_double_eq_tol(json_number_value(json_object_get(bias, "signal_confidence")), cases[i].confidence,
					1e-9);
		scores[i] = (int)json_integer_value(json_object_get(bias, "score"));
		json_decref(bias);
	}
	/* Flat bars: the signal alone moves the score, by confidence / 4. */
	ck_assert_int_eq(scores[0], 20);
	ck_assert_int_eq(scores[1], 10);
	ck_assert_int_eq(scores[2], 0);
	/* A bearish signal against a bullish one of the same weight cancels it; a bare id counts for nothing. */
	json_t *mixed = json_loads("[{\"tickers\": [{\"ticker\": \"AAA\", \"signal\": \"BULLISH\", \"confidence\": 60}]},"
				   " {\"tickers\": [{\"ticker\": \"AAA\", \"signal\": \"BEARISH\", \"confidence\": 60}]},"
				   " \"just-an-id\"]",
				   0, NULL);
	json_t *bias = bias_of_signals(mixed);
	ck_assert_str_eq(json_string_value(json_object_get(bias, "signal")), "NEUTRAL");
	json_decref(bias);
}
END_TEST

START_TEST(test_order_manager_without_a_database_fills_in_the_result_only)
{
	json_t *state = json_pack("{s:{s:{s:s, s:f, s:f, s:f}, s:{s:s, s:n, s:f, s:f}}}", "approved", "AAA",
				  "action", "buy", "price", 25.0, "quantity", 4.0, "value", 100.0, "BBB",
				  "action", "hold", "price", "quantity", 0.0, "value", 0.0);
	json_t *no_signals = json_array();
	struct agent_context context = { .signals = no_signals, .state = state };
	json_t *output = NULL;
	char err[256];
	ck_assert_int_eq(order_manager_run(&context, NULL, &output, err, sizeof err), AGENT_COMPLETED);
	const json_t *orders = json_object_get(state, "orders");
	ck_assert_uint_eq(json_array_size(orders), 1);
	const json_t *order = json_array_get(orders, 0);
	ck_assert_str_eq(json_string_value(json_object_get(order, "ticker")), "AAA");
	ck_assert_str_eq(json_string_value(json_object_get(order, "side")), "buy");
	ck_assert_double_eq_tol(json_real_value(json_object_get(order, "value")), 100, 1e-9);
	ck_assert(json_is_false(json_object_get(order, "recorded")));
	ck_assert(json_is_false(json_object_get(output, "recorded")));
	ck_assert_str_eq(json_string_value(json_object_get(output, "decision")),
			 "AAA buy 4 @ 25 filled; not recorded: no database");
	json_decref(output);
	json_decref(no_signals);
	json_decref(state);
}
END_TEST

START_TEST(test_order_manager_fails_on_a_bad_execution_cost_naming_it)
{
	json_t *state = json_pack("{s:{}}", "approved");
	json_t *config = json_pack("{s:f}", "execution_cost", -1.0);
	json_t *no_signals = json_array();
	struct agent_context context = { .signals = no_signals, .state = state };
	json_t *output = NULL;
	char err[256];
	ck_assert_int_eq(order_manager_run(&context, config, &output, err, sizeof err), AGENT_FAILED);
	ck_assert_msg(strncmp(err, "config.execution_cost: ", 23) == 0, "%s", err);
	json_decref(config);
	json_decref(no_signals);
	json_decref(state);
}
END_TEST

/* ---- the portfolio's arithmetic ---- */

START_TEST(test_buying_more_averages_the_price)
{
	double quantity, average;
	portfolio_position_after_fill(0, 0, 10, 100, &quantity, &average);
	ck_assert_double_eq(quantity, 10);
	ck_assert_double_eq(average, 100);
	portfolio_position_after_fill(10, 100, 30, 120, &quantity, &average);
	ck_assert_double_eq(quantity, 40);
	ck_assert_double_eq_tol(average, 115, 1e-9);
}
END_TEST

START_TEST(test_selling_part_keeps_the_average_price_and_selling_all_is_flat)
{
	double quantity, average;
	portfolio_position_after_fill(40, 115, -15, 130, &quantity, &average);
	ck_assert_double_eq(quantity, 25);
	ck_assert_double_eq(average, 115);
	/* A sliver left by floating point is no position. */
	portfolio_position_after_fill(0.60477, 1653.52, -0.6047699999, 1700, &quantity, &average);
	ck_assert_double_eq(quantity, 0);
	ck_assert_double_eq(average, 0);
}
END_TEST

START_TEST(test_a_fill_through_zero_opens_the_rest_at_its_price)
{
	double quantity, average;
	portfolio_position_after_fill(10, 100, -25, 90, &quantity, &average);
	ck_assert_double_eq(quantity, -15);
	ck_assert_double_eq(average, 90);
	/* Adding to a short averages like adding to a long. */
	portfolio_position_after_fill(-15, 90, -5, 70, &quantity, &average);
	ck_assert_double_eq(quantity, -20);
	ck_assert_double_eq_tol(average, 85, 1e-9);
}
END_TEST

START_TEST(test_exposure_values_every_position_long_or_short_at_its_mark)
{
	struct portfolio portfolio = { 0 };
	ck_assert_int_eq(portfolio_apply_fill(&portfolio, "AAA", 10, 100), 0);
	ck_assert_int_eq(portfolio_apply_fill(&portfolio, "BBB", -4, 50), 0);
	ck_assert_int_eq(portfolio_apply_fill(&portfolio, "AAA", 5, 110), 0);
	ck_assert_double_eq(portfolio_quantity(&portfolio, "AAA"), 15);
	ck_assert_double_eq(portfolio_quantity(&portfolio, "CCC"), 0);
	/* AAA marked at its last fill: 15 * 110; BBB: 4 * 50. */
	ck_assert_double_eq_tol(portfolio_exposure_excluding(&portfolio, NULL), 1850, 1e-9);
	ck_assert_double_eq_tol(portfolio_exposure_excluding(&portfolio, "AAA"), 200, 1e-9);
	portfolio_free(&portfolio);
}
END_TEST

/* ---- known crossovers in the sample data ---- */

/* The DAX closes of days 0..last of data/eu_stock_markets.csv, oldest first; returns how many. */
static size_t sample_dax_closes(int last, double *closes, size_t capacity)
{
	const char *source = getenv("SIGTRIG_SOURCE_DIR");
	char path[1024];
	snprintf(path, sizeof path, "%s/data/eu_stock_markets.csv", source != NULL ? source : "..");
	FILE *file = fopen(path, "r");
	ck_assert_msg(file != NULL, "%s: cannot open (set SIGTRIG_SOURCE_DIR to the source tree)", path);
	char line[256];
	size_t count = 0;
	while (fgets(line, sizeof line, file) != NULL) {
		int day;
		double year, close;
		char ticker[16];
		if (sscanf(line, "%d,%lf,%15[^,],%lf", &day, &year, ticker, &close) != 4 ||
		    strcmp(ticker, "DAX") != 0 || day > last)
			continue;
		ck_assert_int_eq(day, (int)count); /* the file is in day order */
		ck_assert_uint_lt(count, capacity);
		closes[count++] = close;
	}
	fclose(file);
	return count;
}

/*
 * Day 45 (early September 1991): the DAX has climbed back from the August coup
 * in Moscow, and its 10-day SMA crosses above the 30-day one.
 */
START_TEST(test_dax_on_day_45_crosses_up_and_buys)
{
	double closes[64];
	size_t count = sample_dax_closes(45, closes, 64);
	ck_assert_uint_eq(count, 46);
	ck_assert_double_eq(closes[45], 1653.52);
	struct bias_estimate estimate;
	bias_agent_estimate(closes, count - 1, &default_parameters, SIGNAL_NEUTRAL, 0, &estimate);
	ck_assert_int_eq(estimate.crossover, 0); /* not yet the day before */
	ck_assert(estimate.sma_short <= estimate.sma_long);
	bias_agent_estimate(closes, count, &default_parameters, SIGNAL_NEUTRAL, 0, &estimate);
	ck_assert_int_eq(estimate.crossover, 1);
	ck_assert(estimate.sma_short > estimate.sma_long);
	ck_assert_int_eq(estimate.bias, SIGNAL_BULLISH);
	/* 0.32% gap -> 3, 10.1% momentum capped at 25, crossover 10. */
	ck_assert_int_eq(estimate.score, 38);
	struct trade_intent intent;
	strategy_agent_decide(estimate.score, 20, 1000, closes[count - 1], &intent);
	ck_assert_int_eq(intent.action, TRADE_BUY);
	ck_assert_double_eq(intent.price, 1653.52);
	ck_assert_double_eq_tol(intent.quantity, 0.60477, 1e-9);
	struct risk_limits limits = default_limits();
	char reason[200];
	ck_assert(risk_manager_check(&intent, &limits, &nothing_held, reason, sizeof reason));
}
END_TEST

/* Day 35 (19 August 1991, the coup in Moscow): the DAX falls 9% and its SMAs cross down. */
START_TEST(test_dax_on_day_35_crosses_down_and_sells)
{
	double closes[64];
	size_t count = sample_dax_closes(35, closes, 64);
	ck_assert_uint_eq(count, 36);
	struct bias_estimate estimate;
	bias_agent_estimate(closes, count - 1, &default_parameters, SIGNAL_NEUTRAL, 0, &estimate);
	ck_assert_int_eq(estimate.crossover, 0);
	bias_agent_estimate(closes, count, &default_parameters, SIGNAL_NEUTRAL, 0, &estimate);
	ck_assert_int_eq(estimate.crossover, -1);
	ck_assert_int_eq(estimate.bias, SIGNAL_BEARISH);
	/* -0.05% gap -> -1, -7.5% momentum capped at -25, crossover -10. */
	ck_assert_int_eq(estimate.score, -36);
	struct trade_intent intent;
	strategy_agent_decide(estimate.score, 20, 1000, closes[count - 1], &intent);
	ck_assert_int_eq(intent.action, TRADE_SELL);
	ck_assert_double_eq(intent.price, 1501.82);
	ck_assert_double_eq_tol(intent.quantity, 0.665858, 1e-9);
	/* Selling needs something to sell: with 1 DAX held it passes, with none it does not. */
	struct risk_limits limits = default_limits();
	struct risk_holding one_held = { 1, 0 };
	char reason[200];
	ck_assert(risk_manager_check(&intent, &limits, &one_held, reason, sizeof reason));
	ck_assert(!risk_manager_check(&intent, &limits, &nothing_held, reason, sizeof reason));
}
END_TEST

/* ---- the runner ---- */

struct run_fixture {
	struct pipeline pipeline;
	struct agent_context context;
	json_t *result;
	char err[512];
};

/* A pipeline whose state already holds rising bars for AAPL, as market_data_agent would leave them. */
static void fixture_setup(struct run_fixture *fixture, json_t *nodes, const char *trigger_mode)
{
	memset(fixture, 0, sizeof *fixture);
	snprintf(fixture->pipeline.id, sizeof fixture->pipeline.id, "%s",
		 "00000000-0000-4000-8000-000000000001");
	snprintf(fixture->pipeline.trigger_mode, sizeof fixture->pipeline.trigger_mode, "%s",
		 trigger_mode);
	fixture->pipeline.config = json_pack("{s:o}", "nodes", nodes);
	json_t *closes = json_array();
	json_t *days = json_array();
	for (int i = 0; i < 60; i++) {
		json_array_append_new(closes, json_real(100 + i));
		json_array_append_new(days, json_integer(20000 + i));
	}
	fixture->context.pipeline = &fixture->pipeline;
	fixture->context.signals = json_pack("[s]", "s1");
	fixture->context.state =
		json_pack("{s:{s:{s:o, s:o}}}", "bars", "AAPL", "days", days, "closes", closes);
}

static void fixture_teardown(struct run_fixture *fixture)
{
	json_decref(fixture->pipeline.config);
	json_decref(fixture->context.signals);
	json_decref(fixture->context.state);
	json_decref(fixture->result);
}

static const json_t *step(const struct run_fixture *fixture, size_t index)
{
	return json_array_get(json_object_get(fixture->result, "steps"), index);
}

static const char *step_status(const struct run_fixture *fixture, size_t index)
{
	return json_string_value(json_object_get(step(fixture, index), "status"));
}

START_TEST(test_run_buys_on_rising_bars)
{
	struct run_fixture fixture;
	fixture_setup(&fixture,
		      json_pack("[{s:s}, {s:s}, {s:s}, {s:s}, {s:s}]", "agent_type", "time_trigger",
				"agent_type", "bias_agent", "agent_type", "strategy_agent",
				"agent_type", "risk_manager", "agent_type", "order_manager"),
		      "signal");
	ck_assert_msg(agents_run_pipeline(&fixture.context, &fixture.result, fixture.err,
					  sizeof fixture.err) == 0,
		      "%s", fixture.err);
	ck_assert_str_eq(json_string_value(json_object_get(fixture.result, "status")), "SUCCEEDED");
	ck_assert_int_eq(json_integer_value(json_object_get(fixture.result, "n_signals")), 1);
	ck_assert_str_eq(step_status(&fixture, 0), "skipped");
	for (size_t i = 1; i < 5; i++)
		ck_assert_str_eq(step_status(&fixture, i), "completed");
	const json_t *bias = json_object_get(step(&fixture, 1), "output");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(bias, "tickers"),
									   "AAPL"),
							   "bias")),
			 "BULLISH");
	const json_t *orders = json_object_get(fixture.result, "orders");
	ck_assert_uint_eq(json_array_size(orders), 1);
	const json_t *order = json_array_get(orders, 0);
	ck_assert_str_eq(json_string_value(json_object_get(order, "side")), "buy");
	ck_assert_double_eq_tol(json_real_value(json_object_get(order, "price")), 159, 1e-9);
	/* Every step records what it was given, what it decided and how long it took. */
	const json_t *risk = step(&fixture, 3);
	ck_assert_ptr_nonnull(json_object_get(risk, "input_summary"));
	ck_assert_ptr_nonnull(json_object_get(risk, "duration_ms"));
	ck_assert(strstr(json_string_value(json_object_get(risk, "decision")), "approved") != NULL);
	fixture_teardown(&fixture);
}
END_TEST

START_TEST(test_risk_rejection_ends_run_succeeded_without_order)
{
	struct run_fixture fixture;
	fixture_setup(&fixture,
		      json_pack("[{s:s}, {s:s, s:{s:f}}, {s:s, s:{s:f}}, {s:s}]", "agent_type",
				"bias_agent", "agent_type", "strategy_agent", "config", "order_value",
				5000.0, "agent_type", "risk_manager", "config", "max_order_value",
				1000.0, "agent_type", "order_manager"),
		      "signal");
	ck_assert_int_eq(agents_run_pipeline(&fixture.context, &fixture.result, fixture.err,
					     sizeof fixture.err),
			 0);
	ck_assert_str_eq(json_string_value(json_object_get(fixture.result, "status")), "SUCCEEDED");
	ck_assert_str_eq(step_status(&fixture, 2), "rejected");
	ck_assert(strstr(json_string_value(json_object_get(step(&fixture, 2), "decision")),
			 "max_order_value") != NULL);
	ck_assert_str_eq(step_status(&fixture, 3), "skipped");
	ck_assert_ptr_null(json_object_get(fixture.result, "orders"));
	fixture_teardown(&fixture);
}
END_TEST

START_TEST(test_unknown_agent_fails_naming_it)
{
	struct run_fixture fixture;
	fixture_setup(&fixture,
		      json_pack("[{s:s}, {s:s}]", "agent_type", "crystal_ball", "agent_type",
				"bias_agent"),
		      "signal");
	ck_assert_int_eq(agents_run_pipeline(&fixture.context, &fixture.result, fixture.err,
					     sizeof fixture.err),
			 -1);
	ck_assert(strstr(fixture.err, "crystal_ball") != NULL);
	ck_assert_str_eq(json_string_value(json_object_get(fixture.result, "status")), "FAILED");
	ck_assert_str_eq(json_string_value(json_object_get(fixture.result, "error")), fixture.err);
	ck_assert_str_eq(step_status(&fixture, 0), "failed");
	ck_assert_str_eq(step_status(&fixture, 1), "skipped");
	fixture_teardown(&fixture);
}
END_TEST

START_TEST(test_failing_agent_stops_run_naming_agent)
{
	struct run_fixture fixture;
	fixture_setup(&fixture,
		      json_pack("[{s:s, s:{s:i, s:i}}, {s:s}]", "agent_type", "bias_agent", "config",
				"sma_short", 30, "sma_long", 10, "agent_type", "strategy_agent"),
		      "signal");
	ck_assert_int_eq(agents_run_pipeline(&fixture.context, &fixture.result, fixture.err,
					     sizeof fixture.err),
			 -1);
	ck_assert(strncmp(fixture.err, "bias_agent: ", 12) == 0);
	ck_assert(strstr(fixture.err, "sma_short") != NULL);
	ck_assert_str_eq(step_status(&fixture, 0), "failed");
	ck_assert_str_eq(step_status(&fixture, 1), "skipped");
	fixture_teardown(&fixture);
}
END_TEST

START_TEST(test_market_data_without_database_fails)
{
	struct run_fixture fixture;
	fixture_setup(&fixture, json_pack("[{s:s}]", "agent_type", "market_data_agent"), "signal");
	ck_assert_int_eq(agents_run_pipeline(&fixture.context, &fixture.result, fixture.err,
					     sizeof fixture.err),
			 -1);
	ck_assert(strstr(fixture.err, "market_data_agent") != NULL);
	fixture_teardown(&fixture);
}
END_TEST

START_TEST(test_time_trigger_completes_in_periodic_mode)
{
	struct run_fixture fixture;
	fixture_setup(&fixture, json_pack("[{s:s}]", "agent_type", "time_trigger"), "periodic");
	ck_assert_int_eq(agents_run_pipeline(&fixture.context, &fixture.result, fixture.err,
					     sizeof fixture.err),
			 0);
	ck_assert_str_eq(step_status(&fixture, 0), "completed");
	fixture_teardown(&fixture);
}
END_TEST

START_TEST(test_run_past_its_time_limit_starts_no_further_step_and_fails)
{
	struct run_fixture fixture;
	fixture_setup(&fixture,
		      json_pack("[{s:s}, {s:s}]", "agent_type", "time_trigger", "agent_type", "bias_agent"),
		      "periodic");
	fixture.context.time_limit_s = 7;
	fixture.context.deadline_ms = time_monotonic_ms() - 1; /* already out of time */
	ck_assert_int_eq(agents_run_pipeline(&fixture.context, &fixture.result, fixture.err,
					     sizeof fixture.err),
			 -1);
	ck_assert_msg(strstr(fixture.err, "time limit of 7 s exceeded before time_trigger") != NULL, "%s",
		      fixture.err);
	ck_assert_str_eq(json_string_value(json_object_get(fixture.result, "status")), "FAILED");
	ck_assert(json_is_true(json_object_get(fixture.result, "timed_out")));
	ck_assert_str_eq(step_status(&fixture, 0), "skipped");
	ck_assert_str_eq(step_status(&fixture, 1), "skipped");
	fixture_teardown(&fixture);
}
END_TEST

START_TEST(test_run_within_its_time_limit_is_not_cut)
{
	struct run_fixture fixture;
	fixture_setup(&fixture, json_pack("[{s:s}]", "agent_type", "time_trigger"), "periodic");
	fixture.context.time_limit_s = 60;
	fixture.context.deadline_ms = time_monotonic_ms() + 60000;
	ck_assert_int_eq(agents_run_pipeline(&fixture.context, &fixture.result, fixture.err,
					     sizeof fixture.err),
			 0);
	ck_assert_ptr_null(json_object_get(fixture.result, "timed_out"));
	ck_assert_str_eq(step_status(&fixture, 0), "completed");
	fixture_teardown(&fixture);
}
END_TEST

START_TEST(test_agents_table_lists_each_agent)
{
	static const char *const types[] = { "market_data_agent", "bias_agent", "strategy_agent",
					     "risk_manager", "order_manager" };
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		ck_assert_ptr_nonnull(agents_find(types[i]));
	ck_assert_ptr_null(agents_find("time_trigger"));
	ck_assert_ptr_null(agents_find("nope"));
	size_t count;
	agents_list(&count);
	ck_assert_uint_eq(count, 5);
}
END_TEST

/* What saving a pipeline refuses in a node's config, agent by agent. */
START_TEST(test_each_agent_checks_its_config_keys_and_values_when_saved)
{
	static const struct {
		const char *type, *config, *message; /* message NULL: accepted */
	} cases[] = {
		{ "market_data_agent", NULL, NULL },
		{ "market_data_agent", "{}", NULL },
		{ "market_data_agent", "{\"lookback\": 200, \"min_bars\": 20, \"tickers\": [\"DAX\", \"BRK.B\"]}", NULL },
		{ "market_data_agent", "{\"lookbak\": 200}",
		  "config.lookbak: unknown key (this agent knows lookback, min_bars, tickers)" },
		{ "market_data_agent", "{\"lookback\": 10, \"min_bars\": 11}", "config.min_bars: 11 is outside 0..10" },
		{ "market_data_agent", "{\"tickers\": \"DAX\"}", "config.tickers: must be an array of tickers" },
		{ "market_data_agent", "{\"tickers\": [\"A B\"]}", "config.tickers: must be an array of tickers" },
		{ "bias_agent", "{\"sma_short\": 5, \"sma_long\": 20}", NULL },
		{ "bias_agent", "{\"sma_short\": 20, \"sma_long\": 5}", "must be below config.sma_long" },
		{ "bias_agent", "{\"sma_short\": \"5\"}", "config.sma_short: must be a number" },
		{ "strategy_agent", "{\"buy_threshold\": 30, \"order_value\": 500}", NULL },
		{ "strategy_agent", "{\"buy_threshold\": 0}", "config.buy_threshold: 0 is outside 1..100" },
		{ "strategy_agent", "{\"threshold\": 30}", "config.threshold: unknown key" },
		{ "risk_manager", "{\"max_order_value\": 5000, \"allow_short\": true}", NULL },
		{ "risk_manager", "{\"max_ordr_value\": 5000}", "config.max_ordr_value: unknown key" },
		{ "risk_manager", "{\"allow_short\": 1}", "config.allow_short: must be true or false" },
		{ "risk_manager", "{\"max_exposure\": -1}", "config.max_exposure: -1 is outside" },
		{ "order_manager", "{\"execution_cost\": 0.5}", NULL },
		{ "order_manager", "{\"execution_cost\": -0.5}", "config.execution_cost: -0.5 is outside" },
		{ "order_manager", "{\"cost\": 1}", "config.cost: unknown key (this agent knows execution_cost)" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct agent *agent = agents_find(cases[i].type);
		ck_assert_ptr_nonnull(agent);
		ck_assert_ptr_nonnull(agent->check_config);
		json_t *config = cases[i].config != NULL ? json_loads(cases[i].config, 0, NULL) : NULL;
		ck_assert(cases[i].config == NULL || config != NULL);
		char err[400] = "";
		int status = agent->check_config(config, err, sizeof err);
		if (cases[i].message == NULL)
			ck_assert_msg(status == 0, "%s %s refused: %s", cases[i].type, cases[i].config, err);
		else
			ck_assert_msg(status == -1 && strstr(err, cases[i].message) != NULL, "%s %s: status %d, '%s'",
				      cases[i].type, cases[i].config, status, err);
		json_decref(config);
	}
}
END_TEST

static Suite *agents_suite(void)
{
	Suite *suite = suite_create("agents");
	TCase *bias = tcase_create("bias");
	tcase_add_test(bias, test_sma_averages_the_last_period);
	tcase_add_test(bias, test_rising_series_is_bullish);
	tcase_add_test(bias, test_falling_series_is_bearish);
	tcase_add_test(bias, test_flat_series_is_neutral);
	tcase_add_test(bias, test_short_sma_crossing_above_long_adds_to_score);
	tcase_add_test(bias, test_signal_direction_tilts_a_flat_market);
	tcase_add_test(bias, test_no_bars_and_no_signal_is_neutral);
	suite_add_tcase(suite, bias);
	TCase *decisions = tcase_create("decisions");
	tcase_add_test(decisions, test_strategy_follows_threshold);
	tcase_add_test(decisions, test_risk_limits_have_documented_defaults);
	tcase_add_test(decisions, test_risk_limit_of_the_wrong_type_fails_naming_its_key);
	tcase_add_test(decisions, test_risk_rejects_above_max_order_value);
	tcase_add_test(decisions, test_risk_rejects_without_price);
	tcase_add_test(decisions, test_risk_position_value_limit_counts_the_shares_already_held);
	tcase_add_test(decisions, test_risk_position_quantity_limit_counts_the_shares_already_held);
	tcase_add_test(decisions, test_risk_exposure_limit_sums_the_users_other_positions);
	tcase_add_test(decisions, test_risk_refuses_selling_more_than_held_unless_short_selling_is_allowed);
	tcase_add_test(decisions, test_risk_lets_a_trade_that_reduces_the_position_past_the_limits);
	tcase_add_test(decisions, test_risk_budget_needs_credits_for_the_execution_cost);
	tcase_add_test(decisions, test_risk_checks_each_trade_of_a_run_after_the_ones_it_approved);
	tcase_add_test(decisions, test_risk_rejecting_every_trade_rejects_the_step);
	tcase_add_test(decisions, test_risk_fails_on_a_bad_limit_naming_it);
	tcase_add_test(decisions, test_paper_fill_at_price);
	tcase_add_test(decisions, test_execution_cost_is_the_order_managers_with_a_default_of_one_credit);
	tcase_add_test(decisions, test_order_manager_without_a_database_fills_in_the_result_only);
	tcase_add_test(decisions, test_order_manager_fails_on_a_bad_execution_cost_naming_it);
	suite_add_tcase(suite, decisions);
	TCase *portfolio = tcase_create("portfolio");
	tcase_add_test(portfolio, test_buying_more_averages_the_price);
	tcase_add_test(portfolio, test_selling_part_keeps_the_average_price_and_selling_all_is_flat);
	tcase_add_test(portfolio, test_a_fill_through_zero_opens_the_rest_at_its_price);
	tcase_add_test(portfolio, test_exposure_values_every_position_long_or_short_at_its_mark);
	suite_add_tcase(suite, portfolio);
	TCase *sample = tcase_create("sample data");
	tcase_add_test(sample, test_dax_on_day_45_crosses_up_and_buys);
	tcase_add_test(sample, test_dax_on_day_35_crosses_down_and_sells);
	suite_add_tcase(suite, sample);
	TCase *runner = tcase_create("runner");
	tcase_add_test(runner, test_run_buys_on_rising_bars);
	tcase_add_test(runner, test_risk_rejection_ends_run_succeeded_without_order);
	tcase_add_test(runner, test_unknown_agent_fails_naming_it);
	tcase_add_test(runner, test_failing_agent_stops_run_naming_agent);
	tcase_add_test(runner, test_market_data_without_database_fails);
	tcase_add_test(runner, test_time_trigger_completes_in_periodic_mode);
	tcase_add_test(runner, test_agents_table_lists_each_agent);
	tcase_add_test(runner, test_bias_weighs_the_signals_by_direction_confidence_and_metadata_weight);
	tcase_add_test(runner, test_each_agent_checks_its_config_keys_and_values_when_saved);
	tcase_add_test(runner, test_run_past_its_time_limit_starts_no_further_step_and_fails);
	tcase_add_test(runner, test_run_within_its_time_limit_is_not_cut);
	suite_add_tcase(suite, runner);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(agents_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

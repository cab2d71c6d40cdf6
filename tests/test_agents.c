/* The pipeline agents: their decisions on known inputs, and the runner. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
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

START_TEST(test_risk_rejects_above_limit)
{
	struct trade_intent intent = { TRADE_BUY, 100, 120, 12000 };
	char reason[160];
	ck_assert(!risk_manager_check(&intent, 10000, reason, sizeof reason));
	ck_assert(strstr(reason, "max_order_value") != NULL);
	intent.quantity = 50;
	intent.value = 5000;
	ck_assert(risk_manager_check(&intent, 10000, reason, sizeof reason));
}
END_TEST

START_TEST(test_risk_rejects_without_price)
{
	struct trade_intent intent = { TRADE_SELL, 0, 0, 0 };
	char reason[160];
	ck_assert(!risk_manager_check(&intent, 10000, reason, sizeof reason));
	ck_assert_str_eq(reason, "no price");
	struct trade_intent hold = { TRADE_HOLD, 0, 0, 0 };
	ck_assert(risk_manager_check(&hold, 10000, reason, sizeof reason));
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
	tcase_add_test(decisions, test_risk_rejects_above_limit);
	tcase_add_test(decisions, test_risk_rejects_without_price);
	tcase_add_test(decisions, test_paper_fill_at_price);
	suite_add_tcase(suite, decisions);
	TCase *runner = tcase_create("runner");
	tcase_add_test(runner, test_run_buys_on_rising_bars);
	tcase_add_test(runner, test_risk_rejection_ends_run_succeeded_without_order);
	tcase_add_test(runner, test_unknown_agent_fails_naming_it);
	tcase_add_test(runner, test_failing_agent_stops_run_naming_agent);
	tcase_add_test(runner, test_market_data_without_database_fails);
	tcase_add_test(runner, test_time_trigger_completes_in_periodic_mode);
	tcase_add_test(runner, test_agents_table_lists_each_agent);
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

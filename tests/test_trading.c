/*
 * Paper trading end to end, on a real stack: a signal wakes a pipeline
 * over the sample data's DAX closes, and what its risk_manager and
 * order_manager decide lands in PostgreSQL: orders, positions, the
 * owner's credits charged once per execution, or a rejection with its
 * reason in the execution's result.
 *
 * Each test copies the DAX closes under a ticker of its own and trades
 * for a user of its own, so no test's signal wakes another's pipeline and
 * no test's positions or credits are another's.
 */
#include <check.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "celery.h"
#include "harness.h"

#define TRADING_TIMEOUT_MS 30000

/* The steps of the default chain, in the execution's result. */
#define STEP_RISK 3
#define STEP_ORDER 4

static void exec_sql(const char *sql, int count, const char *const *values)
{
	PGconn *db = harness_db();
	PGresult *result = PQexecParams(db, sql, count, NULL, values, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK,
		      "%s: %s", sql, PQresultErrorMessage(result));
	PQclear(result);
	PQfinish(db);
}

/* First value of a query with one parameter, malloc'd ("" for SQL NULL or no row, never NULL). */
static char *query(const char *sql, const char *parameter)
{
	PGconn *db = harness_db();
	char *value = harness_query_value(db, sql, parameter);
	PQfinish(db);
	return value != NULL ? value : strdup("");
}

static void assert_query(const char *sql, const char *parameter, const char *expected)
{
	char *value = query(sql, parameter);
	ck_assert_msg(strcmp(value, expected) == 0, "%s [%s]: '%s', not '%s'", sql, parameter, value, expected);
	free(value);
}

/*
 * The DAX closes of days 0..last_day of data/eu_stock_markets.csv, stored
 * in market_bars under `ticker`.
 */
static void load_dax_bars(const char *ticker, int last_day)
{
	const char *source = getenv("SIGTRIG_SOURCE_DIR");
	char path[1024];
	snprintf(path, sizeof path, "%s/data/eu_stock_markets.csv", source != NULL ? source : "..");
	FILE *file = fopen(path, "r");
	ck_assert_msg(file != NULL, "%s: cannot open (set SIGTRIG_SOURCE_DIR to the source tree)", path);
	char days[8192] = "{", closes[16384] = "{", line[256];
	while (fgets(line, sizeof line, file) != NULL) {
		int day;
		double year;
		char name[16], close[32];
		if (sscanf(line, "%d,%lf,%15[^,],%31[0-9.]", &day, &year, name, close) != 4 ||
		    strcmp(name, "DAX") != 0 || day > last_day)
			continue;
		size_t used = strlen(days);
		snprintf(days + used, sizeof days - used, "%s%d", used > 1 ? "," : "", day);
		used = strlen(closes);
		snprintf(closes + used, sizeof closes - used, "%s%s", used > 1 ? "," : "", close);
	}
	fclose(file);
	strcat(days, "}");
	strcat(closes, "}");
	const char *values[] = { ticker, days, closes };
	exec_sql("INSERT INTO market_bars (ticker, day, close)"
		 " SELECT $1, d, c FROM unnest($2::integer[], $3::float8[]) AS t(d, c)",
		 3, values);
	char count[16];
	snprintf(count, sizeof count, "%d", last_day + 1);
	assert_query("SELECT count(*) FROM market_bars WHERE ticker = $1", ticker, count);
}

struct trading_pipeline {
	char id[40], user_id[40];
};

/* `sigtrig pipelines add` for `user` watching `ticker`; config_json NULL for the default chain. */
static struct trading_pipeline add_pipeline(const char *user, const char *ticker, const char *config_json)
{
	struct trading_pipeline pipeline;
	char args[2048];
	snprintf(args, sizeof args, "pipelines add --json --name trading-%s --ticker %s --user %s%s%s%s", ticker,
		 ticker, user, config_json != NULL ? " --config '" : "", config_json != NULL ? config_json : "",
		 config_json != NULL ? "'" : "");
	int status;
	json_t *added = harness_sigtrig_json(args, &status);
	ck_assert_int_eq(status, 0);
	ck_assert_ptr_nonnull(added);
	snprintf(pipeline.id, sizeof pipeline.id, "%s", json_string_value(json_object_get(added, "id")));
	snprintf(pipeline.user_id, sizeof pipeline.user_id, "%s",
		 json_string_value(json_object_get(added, "user_id")));
	json_decref(added);
	ck_assert_uint_eq(strlen(pipeline.user_id), 36);
	return pipeline;
}

static void set_credits(const struct trading_pipeline *pipeline, const char *credits)
{
	const char *values[] = { pipeline->user_id, credits };
	exec_sql("UPDATE users SET credits = $2::numeric WHERE id = $1::uuid", 2, values);
}

static void hold_position(const struct trading_pipeline *pipeline, const char *ticker, const char *quantity,
			  const char *average_price)
{
	const char *values[] = { pipeline->user_id, ticker, quantity, average_price };
	exec_sql("INSERT INTO positions (user_id, ticker, quantity, average_price)"
		 " VALUES ($1::uuid, $2, $3::numeric, $4::numeric)",
		 4, values);
}

/*
 * Signals the ticker and waits for the run it wakes to succeed; its
 * execution id, malloc'd. The signal is NEUTRAL, so that the bias is the
 * bars' alone: these tests are about the crosses of the sample data.
 */
static char *run_for_signal(const char *ticker)
{
	char *signal_id = harness_inject_view(ticker, "NEUTRAL", 50);
	ck_assert_msg(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					     "SUCCEEDED", TRADING_TIMEOUT_MS),
		      "the run for signal %s did not succeed", signal_id);
	char *execution_id = query("SELECT id FROM executions WHERE $1 = ANY(signal_ids)", signal_id);
	free(signal_id);
	return execution_id;
}

/* A field of one step of the execution's result, as text. */
static char *step_field(const char *execution_id, int step, const char *field)
{
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT result->'steps'->%d->>'%s' FROM executions WHERE id = $1::uuid", step,
		 field);
	return query(sql, execution_id);
}

static void assert_step(const char *execution_id, int step, const char *status, const char *decision_part)
{
	char *got_status = step_field(execution_id, step, "status");
	char *decision = step_field(execution_id, step, "decision");
	ck_assert_msg(strcmp(got_status, status) == 0, "step %d is %s, not %s: %s", step, got_status, status,
		      decision);
	ck_assert_msg(strstr(decision, decision_part) != NULL, "step %d's decision '%s' does not say '%s'", step,
		      decision, decision_part);
	free(got_status);
	free(decision);
}

/* Nothing recorded for the execution, and the user's credits as they were. */
static void assert_nothing_recorded(const char *execution_id, const struct trading_pipeline *pipeline,
				    const char *credits)
{
	assert_query("SELECT count(*) FROM orders WHERE execution_id = $1::uuid", execution_id, "0");
	assert_query("SELECT count(*) FROM execution_charges WHERE execution_id = $1::uuid", execution_id, "0");
	assert_query("SELECT credits FROM users WHERE id = $1::uuid", pipeline->user_id, credits);
}

/*
 * Runs the execution again as a redelivered task would: PENDING once more,
 * and its task pushed to the queue.
 */
static void run_execution_again(const char *execution_id, const struct trading_pipeline *pipeline)
{
	const char *values[] = { execution_id };
	exec_sql("UPDATE executions SET status = 'PENDING', started_at = NULL, finished_at = NULL WHERE id = $1::uuid",
		 1, values);
	char err[256], task_id[CELERY_ID_SIZE] = "";
	json_t *no_signals = json_array();
	char *envelope = celery_execute_pipeline_task(pipeline->id, no_signals, execution_id,
						      harness.config.redis_queue, task_id, err, sizeof err);
	json_decref(no_signals);
	ck_assert_msg(envelope != NULL, "%s", err);
	redisContext *redis = harness_redis();
	redisReply *reply = redisCommand(redis, "LPUSH %s %s", harness.config.redis_queue, envelope);
	ck_assert_ptr_nonnull(reply);
	freeReplyObject(reply);
	redisFree(redis);
	free(envelope);
}

START_TEST(test_bullish_cross_fills_an_order_moves_the_position_and_charges_once_however_often_it_runs)
{
	/* Day 45 of the sample data: the DAX's 10-day SMA crosses above its 30-day one. */
	load_dax_bars("DAXF", 45);
	struct trading_pipeline pipeline = add_pipeline("trader-fill", "DAXF", NULL);
	char *execution_id = run_for_signal("DAXF");
	assert_step(execution_id, STEP_RISK, "completed", "DAXF buy approved");
	assert_step(execution_id, STEP_ORDER, "completed", "DAXF buy 0.60477 @ 1653.52 filled; charged 1.00 credits");
	/* 1000 of order_value at the last close, to a millionth of a share. */
	char expected[256];
	snprintf(expected, sizeof expected, "buy 0.604770 1653.520000 999.999290 filled %s %s", pipeline.id,
		 pipeline.user_id);
	assert_query("SELECT concat_ws(' ', side, quantity, price, value, status, pipeline_id, user_id)"
		     " FROM orders WHERE execution_id = $1::uuid",
		     execution_id, expected);
	const char *position_sql = "SELECT concat_ws(' ', quantity, average_price) FROM positions"
				   " WHERE user_id = $1::uuid AND ticker = 'DAXF'";
	assert_query(position_sql, pipeline.user_id, "0.604770 1653.520000");
	assert_query("SELECT credits FROM users WHERE id = $1::uuid", pipeline.user_id, "999.00");
	assert_query("SELECT amount FROM execution_charges WHERE execution_id = $1::uuid", execution_id, "1.00");
	assert_query("SELECT result->'orders'->0->>'filled_now' FROM executions WHERE id = $1::uuid", execution_id,
		     "true");

	/* The same execution again, as after a worker died between the fill and the finish. */
	run_execution_again(execution_id, &pipeline);
	ck_assert_msg(harness_wait_for_value("SELECT result->'orders'->0->>'filled_now' FROM executions"
					     " WHERE id = $1::uuid AND status = 'SUCCEEDED'",
					     execution_id, "false", TRADING_TIMEOUT_MS),
		      "the execution did not run again");
	/* Judged as the first attempt was: the position and credits it found, its cost already paid. */
	assert_step(execution_id, STEP_RISK, "completed", "DAXF buy approved");
	assert_query("SELECT result->'steps'->3->'output'->'budget'->>'already_charged' FROM executions"
		     " WHERE id = $1::uuid",
		     execution_id, "true");
	assert_query("SELECT result->'steps'->3->'output'->'checks'->'DAXF'->>'position_before' FROM executions"
		     " WHERE id = $1::uuid",
		     execution_id, "0.0");
	assert_step(execution_id, STEP_ORDER, "completed",
		    "DAXF buy 0.60477 @ 1653.52 filled by an earlier attempt;"
		    " execution_cost charged by an earlier attempt");
	assert_query("SELECT count(*) FROM orders WHERE execution_id = $1::uuid", execution_id, "1");
	assert_query(position_sql, pipeline.user_id, "0.604770 1653.520000");
	assert_query("SELECT credits FROM users WHERE id = $1::uuid", pipeline.user_id, "999.00");
	assert_query("SELECT count(*) FROM execution_charges WHERE execution_id = $1::uuid", execution_id, "1");

	/* What the user sees: the position marked at the last close, the credits, and the one order. */
	int status;
	json_t *users = harness_sigtrig_json("positions --json --user trader-fill", &status);
	ck_assert_int_eq(status, 0);
	ck_assert_uint_eq(json_array_size(users), 1);
	const json_t *holder = json_array_get(users, 0);
	ck_assert_str_eq(json_string_value(json_object_get(holder, "user_id")), pipeline.user_id);
	ck_assert_double_eq_tol(json_number_value(json_object_get(holder, "credits")), 999, 1e-9);
	const json_t *positions = json_object_get(holder, "positions");
	ck_assert_uint_eq(json_array_size(positions), 1);
	const json_t *position = json_array_get(positions, 0);
	ck_assert_str_eq(json_string_value(json_object_get(position, "ticker")), "DAXF");
	ck_assert_double_eq_tol(json_number_value(json_object_get(position, "quantity")), 0.60477, 1e-9);
	ck_assert_double_eq_tol(json_number_value(json_object_get(position, "last_close")), 1653.52, 1e-9);
	ck_assert_double_eq_tol(json_number_value(json_object_get(position, "value")), 0.60477 * 1653.52, 1e-6);
	ck_assert_double_eq_tol(json_number_value(json_object_get(position, "unrealized_pnl")), 0, 1e-6);
	ck_assert_double_eq_tol(json_number_value(json_object_get(holder, "exposure")), 0.60477 * 1653.52, 1e-6);
	json_decref(users);
	json_t *orders = harness_sigtrig_json("orders --json --user trader-fill", &status);
	ck_assert_int_eq(status, 0);
	ck_assert_uint_eq(json_array_size(orders), 1);
	const json_t *order = json_array_get(orders, 0);
	ck_assert_str_eq(json_string_value(json_object_get(order, "execution_id")), execution_id);
	ck_assert_str_eq(json_string_value(json_object_get(order, "side")), "buy");
	ck_assert_str_eq(json_string_value(json_object_get(order, "pipeline_name")), "trading-DAXF");
	json_decref(orders);
	char *out = NULL, *err = NULL;
	ck_assert_int_eq(harness_sigtrig("positions --user trader-fill", NULL, &out, &err), 0);
	ck_assert_msg(strstr(out, "trader-fill  credits 999.00  exposure 1000.00\n") == out, "%s", out);
	ck_assert_msg(strstr(out, "  DAXF              0.60477 @ 1653.52") != NULL, "%s", out);
	free(out);
	free(err);
	ck_assert_int_eq(harness_sigtrig("positions --user nobody-here", NULL, &out, &err), 1);
	ck_assert_msg(strstr(err, "sigtrig: positions: no user nobody-here") != NULL, "%s", err);
	free(out);
	free(err);
	free(execution_id);
}
END_TEST

START_TEST(test_bearish_cross_sells_part_of_the_position_held)
{
	/* Day 35: the coup in Moscow, the DAX falls 9% and its SMAs cross down. */
	load_dax_bars("DAXS", 35);
	struct trading_pipeline pipeline = add_pipeline("trader-sell", "DAXS", NULL);
	hold_position(&pipeline, "DAXS", "1", "1600");
	char *execution_id = run_for_signal("DAXS");
	assert_step(execution_id, STEP_ORDER, "completed", "DAXS sell 0.665858 @ 1501.82 filled");
	assert_query("SELECT concat_ws(' ', side, quantity, price) FROM orders WHERE execution_id = $1::uuid",
		     execution_id, "sell 0.665858 1501.820000");
	/* What is left cost what it cost. */
	assert_query("SELECT concat_ws(' ', quantity, average_price) FROM positions"
		     " WHERE user_id = $1::uuid AND ticker = 'DAXS'",
		     pipeline.user_id, "0.334142 1600.000000");
	assert_query("SELECT credits FROM users WHERE id = $1::uuid", pipeline.user_id, "999.00");
	free(execution_id);
}
END_TEST

/* The signal that woke the run weighs in: a confident BULLISH one against the day-35 cross holds the sale back. */
START_TEST(test_a_signal_against_the_bars_holds_the_trade_back)
{
	load_dax_bars("DAXH", 35);
	struct trading_pipeline pipeline = add_pipeline("trader-held", "DAXH", NULL);
	hold_position(&pipeline, "DAXH", "1", "1600");
	char *signal_id = harness_inject_view("DAXH", "BULLISH", 90);
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "SUCCEEDED", TRADING_TIMEOUT_MS));
	char *execution_id = query("SELECT id FROM executions WHERE $1 = ANY(signal_ids)", signal_id);
	/* -36 from the bars, +22.5 from the signal: still bearish, but under the strategy's threshold of 20. */
	assert_query("SELECT concat_ws(' ', result->'steps'->1->'output'->'tickers'->'DAXH'->>'signal',"
		     " result->'steps'->1->'output'->'tickers'->'DAXH'->>'score')"
		     " FROM executions WHERE id = $1::uuid",
		     execution_id, "BULLISH -13");
	assert_query("SELECT result->'steps'->2->>'decision' FROM executions WHERE id = $1::uuid", execution_id,
		     "DAXH hold");
	assert_query("SELECT count(*) FROM orders WHERE execution_id = $1::uuid", execution_id, "0");
	free(execution_id);
	free(signal_id);
}
END_TEST

/* A database error while trading is a failure that may pass: the run is retried, and fills once. */
START_TEST(test_a_database_error_while_trading_is_retried_and_fills_once)
{
	load_dax_bars("DAXT", 45);
	struct trading_pipeline pipeline = add_pipeline("trader-retried", "DAXT", NULL);
	exec_sql("ALTER TABLE positions RENAME TO positions_away", 0, NULL);
	char *signal_id = harness_inject_view("DAXT", "NEUTRAL", 50);
	bool retrying = harness_wait_for_value("SELECT error LIKE 'retry 1 of 3 in %' FROM executions"
					       " WHERE $1 = ANY(signal_ids)",
					       signal_id, "t", TRADING_TIMEOUT_MS);
	exec_sql("ALTER TABLE positions_away RENAME TO positions", 0, NULL);
	ck_assert_msg(retrying, "the run failing on the missing table was not retried");
	ck_assert(harness_wait_for_value("SELECT status FROM executions WHERE $1 = ANY(signal_ids)", signal_id,
					 "SUCCEEDED", TRADING_TIMEOUT_MS));
	char *execution_id = query("SELECT id FROM executions WHERE $1 = ANY(signal_ids)", signal_id);
	assert_query("SELECT count(*) FROM orders WHERE execution_id = $1::uuid", execution_id, "1");
	assert_query("SELECT credits FROM users WHERE id = $1::uuid", pipeline.user_id, "999.00");
	assert_query("SELECT (result->>'retries')::int >= 1 FROM executions WHERE id = $1::uuid", execution_id, "t");
	free(execution_id);
	free(signal_id);
}
END_TEST

START_TEST(test_trade_over_max_exposure_is_rejected_with_its_reason)
{
	load_dax_bars("DAXE", 45);
	const char *config = "{\"nodes\": [{\"agent_type\": \"market_data_agent\"}, {\"agent_type\": \"bias_agent\"},"
			     " {\"agent_type\": \"strategy_agent\"},"
			     " {\"agent_type\": \"risk_manager\", \"config\": {\"max_exposure\": 10000}},"
			     " {\"agent_type\": \"order_manager\"}]}";
	struct trading_pipeline pipeline = add_pipeline("trader-exposure", "DAXE", config);
	/* 95 shares of a ticker without bars, valued at their average price: 9500 of exposure already. */
	hold_position(&pipeline, "ELSEWHERE", "95", "100");
	char *execution_id = run_for_signal("DAXE");
	assert_step(execution_id, STEP_RISK, "rejected",
		    "DAXE buy rejected: exposure 10500.00 after the order above max_exposure 10000.00");
	assert_step(execution_id, STEP_ORDER, "skipped", "");
	assert_nothing_recorded(execution_id, &pipeline, "1000.00");
	assert_query("SELECT count(*) FROM positions WHERE user_id = $1::uuid", pipeline.user_id, "1");
	free(execution_id);
}
END_TEST

START_TEST(test_trade_over_the_position_limit_counting_the_shares_held_is_rejected)
{
	load_dax_bars("DAXP", 45);
	const char *config = "{\"nodes\": [{\"agent_type\": \"market_data_agent\"}, {\"agent_type\": \"bias_agent\"},"
			     " {\"agent_type\": \"strategy_agent\"},"
			     " {\"agent_type\": \"risk_manager\", \"config\": {\"max_position_value\": 24000}},"
			     " {\"agent_type\": \"order_manager\"}]}";
	struct trading_pipeline pipeline = add_pipeline("trader-position", "DAXP", config);
	/* 14 held, worth 23149.28 at the last close; the order's 1000 would take it past 24000. */
	hold_position(&pipeline, "DAXP", "14", "1600");
	char *execution_id = run_for_signal("DAXP");
	assert_step(execution_id, STEP_RISK, "rejected",
		    "DAXP buy rejected: position value 24149.28 after the order above max_position_value 24000.00");
	assert_nothing_recorded(execution_id, &pipeline, "1000.00");
	assert_query("SELECT quantity FROM positions WHERE user_id = $1::uuid AND ticker = 'DAXP'", pipeline.user_id,
		     "14.000000");
	free(execution_id);
}
END_TEST

START_TEST(test_credits_that_do_not_cover_the_execution_cost_reject_the_run)
{
	load_dax_bars("DAXB", 45);
	struct trading_pipeline pipeline = add_pipeline("trader-broke", "DAXB", NULL);
	/* Above zero, so the dispatcher claims the run; below the 1 credit it costs. */
	set_credits(&pipeline, "0.50");
	char *execution_id = run_for_signal("DAXB");
	assert_step(execution_id, STEP_RISK, "rejected",
		    "budget: credits 0.50 do not cover execution_cost 1.00; DAXB buy rejected");
	assert_nothing_recorded(execution_id, &pipeline, "0.50");
	free(execution_id);
}
END_TEST

START_TEST(test_credits_gone_by_the_fill_roll_every_fill_back)
{
	/* No risk_manager to look at the credits first: order_manager finds them short itself. */
	load_dax_bars("DAXR", 45);
	const char *config = "{\"nodes\": [{\"agent_type\": \"market_data_agent\"}, {\"agent_type\": \"bias_agent\"},"
			     " {\"agent_type\": \"strategy_agent\"},"
			     " {\"agent_type\": \"order_manager\", \"config\": {\"execution_cost\": 5}}]}";
	struct trading_pipeline pipeline = add_pipeline("trader-late", "DAXR", config);
	set_credits(&pipeline, "2");
	char *execution_id = run_for_signal("DAXR");
	assert_step(execution_id, 3 /* order_manager, the fourth step here */, "rejected",
		    "rejected: credits 2.00 no longer cover execution_cost 5.00; nothing filled or charged");
	assert_nothing_recorded(execution_id, &pipeline, "2.00");
	assert_query("SELECT count(*) FROM positions WHERE user_id = $1::uuid", pipeline.user_id, "0");
	assert_query("SELECT result->'orders' FROM executions WHERE id = $1::uuid", execution_id, "");
	free(execution_id);
}
END_TEST

static void stack_up(void) { harness_up("--no-generators"); }
static void stack_down(void) { harness_down(); }

static Suite *trading_suite(void)
{
	Suite *suite = suite_create("trading");
	TCase *trading = tcase_create("trading");
	tcase_add_unchecked_fixture(trading, stack_up, stack_down);
	tcase_set_timeout(trading, 120);
	tcase_add_test(trading,
		       test_bullish_cross_fills_an_order_moves_the_position_and_charges_once_however_often_it_runs);
	tcase_add_test(trading, test_bearish_cross_sells_part_of_the_position_held);
	tcase_add_test(trading, test_a_signal_against_the_bars_holds_the_trade_back);
	tcase_add_test(trading, test_a_database_error_while_trading_is_retried_and_fills_once);
	tcase_add_test(trading, test_trade_over_max_exposure_is_rejected_with_its_reason);
	tcase_add_test(trading, test_trade_over_the_position_limit_counting_the_shares_held_is_rejected);
	tcase_add_test(trading, test_credits_that_do_not_cover_the_execution_cost_reject_the_run);
	tcase_add_test(trading, test_credits_gone_by_the_fill_roll_every_fill_back);
	suite_add_tcase(suite, trading);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(trading_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

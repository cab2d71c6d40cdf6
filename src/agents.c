#include "agents.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "timeutil.h"

static const struct agent agent_table[] = {
	{ "market_data_agent", "Loads the latest daily closes of the run's tickers from market_bars.",
	  market_data_agent_run, market_data_agent_check_config },
	{ "bias_agent", "Scores each ticker BULLISH/BEARISH/NEUTRAL from SMAs, momentum and the signals.",
	  bias_agent_run, bias_agent_check_config },
	{ "strategy_agent", "Turns each bias into a buy, sell or hold sized by order_value.",
	  strategy_agent_run, strategy_agent_check_config },
	{ "risk_manager",
	  "Approves or rejects each trade against order, position and exposure limits and the budget.",
	  risk_manager_run, risk_manager_check_config },
	{ "order_manager",
	  "Fills the approved trades on paper at the last close, records orders and positions, charges the run.",
	  order_manager_run, order_manager_check_config },
};

#define AGENT_COUNT (sizeof agent_table / sizeof agent_table[0])

/* A trigger node says how a pipeline starts; it does nothing when the pipeline runs. */
#define TIME_TRIGGER_TYPE "time_trigger"

const struct agent *agents_list(size_t *count)
{
	*count = AGENT_COUNT;
	return agent_table;
}

const struct agent *agents_find(const char *type)
{
	for (size_t i = 0; i < AGENT_COUNT; i++)
		if (strcmp(agent_table[i].type, type) == 0)
			return &agent_table[i];
	return NULL;
}

int agent_config_number(const json_t *node_config, const char *key, double fallback,
			double minimum, double maximum, double *value, char *err, size_t errsize)
{
	const json_t *member = json_object_get(node_config, key);
	if (member == NULL || json_is_null(member)) {
		*value = fallback;
		return 0;
	}
	if (!json_is_number(member)) {
		snprintf(err, errsize, "config.%s: must be a number", key);
		return -1;
	}
	double number = json_number_value(member);
	if (!(number >= minimum && number <= maximum)) {
		snprintf(err, errsize, "config.%s: %g is outside %g..%g", key, number, minimum, maximum);
		return -1;
	}
	*value = number;
	return 0;
}

int agent_config_bool(const json_t *node_config, const char *key, bool fallback, bool *value, char *err,
		      size_t errsize)
{
	const json_t *member = json_object_get(node_config, key);
	if (member == NULL || json_is_null(member)) {
		*value = fallback;
		return 0;
	}
	if (!json_is_boolean(member)) {
		snprintf(err, errsize, "config.%s: must be true or false", key);
		return -1;
	}
	*value = json_is_true(member);
	return 0;
}

int agent_config_only_keys(const json_t *node_config, const char *const *keys, char *err, size_t errsize)
{
	const char *key;
	const json_t *value;
	json_object_foreach((json_t *)node_config, key, value) {
		bool known = false;
		for (size_t i = 0; keys[i] != NULL && !known; i++)
			known = strcmp(keys[i], key) == 0;
		if (known)
			continue;
		char names[256] = "";
		for (size_t i = 0; keys[i] != NULL; i++)
			snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i > 0 ? ", " : "", keys[i]);
		snprintf(err, errsize, "config.%s: unknown key (this agent knows %s)", key, names);
		return -1;
	}
	return 0;
}

json_t *agent_json_number(double value)
{
	return isnan(value) ? json_null() : json_real(value);
}

void agent_decision_append(char *decision, size_t size, const char *fmt, ...)
{
	size_t used = strlen(decision);
	if (size < 4 || used + 4 >= size)
		return;
	if (used > 0) {
		snprintf(decision + used, size - used, "; ");
		used += 2;
	}
	va_list args;
	va_start(args, fmt);
	int wanted = vsnprintf(decision + used, size - used, fmt, args);
	va_end(args);
	if (wanted >= 0 && used + (size_t)wanted >= size)
		memcpy(decision + size - 4, "...", 4);
}

static void add_ticker(json_t *tickers, const char *ticker)
{
	if (ticker == NULL || ticker[0] == '\0')
		return;
	size_t index;
	const json_t *present;
	json_array_foreach(tickers, index, present)
		if (strcmp(json_string_value(present), ticker) == 0)
			return;
	json_array_append_new(tickers, json_string(ticker));
}

json_t *agent_run_tickers(const struct agent_context *context, const json_t *node_config)
{
	json_t *tickers = json_array();
	/* A ticker-scoped run holds the claim of its one ticker, and works on that alone. */
	if (context->scope_ticker != NULL) {
		add_ticker(tickers, context->scope_ticker);
		return tickers;
	}
	const json_t *configured = json_object_get(node_config, "tickers");
	size_t index;
	const json_t *item;
	if (json_is_array(configured)) {
		json_array_foreach(configured, index, item)
			add_ticker(tickers, json_string_value(item));
	} else if (context->pipeline != NULL) {
		for (size_t i = 0; i < context->pipeline->ticker_count; i++)
			add_ticker(tickers, context->pipeline->tickers[i]);
	}
	json_array_foreach(context->signals, index, item) {
		size_t ticker_index;
		const json_t *ticker;
		json_array_foreach(json_object_get(item, "tickers"), ticker_index, ticker)
			add_ticker(tickers, json_string_value(json_object_get(ticker, "ticker")));
	}
	return tickers;
}

/* What a step was given, kept short: it is stored with every execution. */
static json_t *input_summary(const struct agent_context *context, const json_t *node_config)
{
	json_t *state_keys = json_array();
	const char *key;
	const json_t *value;
	json_object_foreach(context->state, key, value)
		if (strcmp(key, "signals") != 0)
			json_array_append_new(state_keys, json_string(key));
	return json_pack("{s:I, s:o, s:O}", "signals", (json_int_t)json_array_size(context->signals),
			 "state", state_keys, "config", node_config);
}

static json_t *step_record(const char *type, const char *status, json_t *summary, json_t *output,
			   const char *decision, int64_t duration_ms)
{
	return json_pack("{s:s, s:s, s:o?, s:o?, s:s?, s:I}", "agent_type", type, "status", status,
			 "input_summary", summary, "output", output, "decision", decision,
			 "duration_ms", (json_int_t)duration_ms);
}

/*
 * Runs one node. Returns its agent_outcome; a failure fills err with the
 * agent's type and reason.
 */
static int run_node(struct agent_context *context, const json_t *node, size_t index, json_t *steps,
		    char *err, size_t errsize)
{
	const char *type = json_string_value(json_object_get(node, "agent_type"));
	const json_t *node_config = json_object_get(node, "config");
	json_t *empty_config = json_object();
	if (!json_is_object(node_config))
		node_config = empty_config;
	int outcome = AGENT_FAILED;
	if (type == NULL) {
		snprintf(err, errsize, "nodes[%zu]: no agent_type", index);
		json_array_append_new(steps, step_record("", "failed", NULL, NULL, NULL, 0));
		goto done;
	}
	if (strcmp(type, TIME_TRIGGER_TYPE) == 0) {
		/* The scheduler already fired a periodic run; a signal run was not timed at all. */
		bool periodic = context->pipeline != NULL &&
				strcmp(context->pipeline->trigger_mode, "periodic") == 0;
		json_array_append_new(steps, step_record(type, periodic ? "completed" : "skipped", NULL,
							 NULL,
							 periodic ? "triggered by schedule"
								  : "signal-triggered run",
							 0));
		outcome = AGENT_COMPLETED;
		goto done;
	}
	const struct agent *agent = agents_find(type);
	if (agent == NULL) {
		snprintf(err, errsize, "%s: unknown agent type", type);
		json_t *record = step_record(type, "failed", NULL, NULL, NULL, 0);
		json_object_set_new(record, "error", json_string("unknown agent type"));
		json_array_append_new(steps, record);
		goto done;
	}
	json_t *summary = input_summary(context, node_config);
	json_t *output = NULL;
	char reason[512] = "";
	int64_t started = time_monotonic_ms();
	outcome = agent->run(context, node_config, &output, reason, sizeof reason);
	if (outcome < AGENT_FAILED || outcome > AGENT_REJECTED) {
		snprintf(reason, sizeof reason, "returned unknown outcome %d", outcome);
		outcome = AGENT_FAILED;
	}
	int64_t duration = time_monotonic_ms() - started;
	const char *decision = json_string_value(json_object_get(output, "decision"));
	static const char *const outcome_status[] = { "failed", "completed", "rejected" };
	const char *status = outcome_status[outcome + 1];
	json_t *record = step_record(type, status, summary, NULL, decision, duration);
	if (output != NULL) {
		json_object_del(output, "decision");
		json_object_set_new(record, "output", output);
	}
	if (outcome == AGENT_FAILED) {
		json_object_set_new(record, "error", json_string(reason));
		snprintf(err, errsize, "%s: %s", type, reason);
	}
	json_array_append_new(steps, record);
done:
	json_decref(empty_config);
	return outcome;
}

static bool agents_out_of_time(const struct agent_context *context)
{
	return context->deadline_ms > 0 && time_monotonic_ms() >= context->deadline_ms;
}

int agents_run_pipeline(struct agent_context *context, json_t **result, char *err, size_t errsize)
{
	const json_t *nodes = json_object_get(context->pipeline->config, "nodes");
	json_t *steps = json_array();
	*result = json_pack("{s:s, s:s, s:I, s:o}", "pipeline_id", context->pipeline->id, "status",
			    "SUCCEEDED", "n_signals", (json_int_t)json_array_size(context->signals),
			    "steps", steps);
	if (json_object_get(context->state, "signals") == NULL && context->signals != NULL)
		json_object_set(context->state, "signals", context->signals);
	int status = 0;
	if (!json_is_array(nodes) || json_array_size(nodes) == 0) {
		snprintf(err, errsize, "pipeline %s: config.nodes is empty", context->pipeline->id);
		status = -1;
	}
	size_t index;
	const json_t *node;
	bool ended = status != 0;
	json_array_foreach(nodes, index, node) {
		if (ended) {
			const char *type = json_string_value(json_object_get(node, "agent_type"));
			json_array_append_new(steps, step_record(type != NULL ? type : "", "skipped", NULL,
								 NULL, "an earlier step ended the run", 0));
			continue;
		}
		const char *type = json_string_value(json_object_get(node, "agent_type"));
		if (agents_out_of_time(context)) {
			snprintf(err, errsize, "time limit of %ld s exceeded before %s", context->time_limit_s,
				 type != NULL ? type : "the next step");
			json_array_append_new(steps, step_record(type != NULL ? type : "", "skipped", NULL, NULL,
								 "the run's time limit was exceeded", 0));
			json_object_set_new(*result, "timed_out", json_true());
			status = -1;
			ended = true;
			continue;
		}
		db_forget_last_failure();
		int outcome = run_node(context, node, index, steps, err, errsize);
		if (outcome == AGENT_FAILED)
			status = -1;
		/*
		 * A step cut short by the limit says so. Its query cancelled
		 * by statement_timeout counts even when this clock has not
		 * quite reached the deadline: PostgreSQL times the statement
		 * on its own clock, and the worker sets statement_timeout for
		 * nothing else.
		 */
		bool cut_short = agents_out_of_time(context) ||
				 (context->deadline_ms > 0 && db_last_failure_was_cancel());
		if (outcome == AGENT_FAILED && cut_short) {
			char cause[512];
			snprintf(cause, sizeof cause, "%s", err);
			snprintf(err, errsize, "time limit of %ld s exceeded in %s: %s", context->time_limit_s,
				 type != NULL ? type : "a step", cause);
			json_object_set_new(*result, "timed_out", json_true());
		}
		ended = outcome != AGENT_COMPLETED;
	}
	json_t *orders = json_object_get(context->state, "orders");
	if (orders != NULL)
		json_object_set(*result, "orders", orders);
	if (status != 0) {
		json_object_set_new(*result, "status", json_string("FAILED"));
		json_object_set_new(*result, "error", json_string(err));
	}
	/* A run over its time limit would only run over again. */
	if (status == 0 || json_is_true(json_object_get(*result, "timed_out")))
		context->retryable = false;
	if (context->retryable)
		json_object_set_new(*result, "retryable", json_true());
	return status;
}

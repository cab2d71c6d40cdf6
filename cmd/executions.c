/* sigtrig executions list|show: the runs of pipelines and what they did. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "protocol.h"

static struct client_options client;
static const char *pipeline, *status_filter, *signal_filter;
static double limit = 20;

static const struct option_spec list_options[] = {
	CLIENT_OPTIONS(client),
	{ "pipeline", 'p', OPTION_STRING, &pipeline, "ID", "only this pipeline's executions" },
	{ "status", 0, OPTION_STRING, &status_filter, "STATUS", "PENDING, RUNNING, SUCCEEDED or FAILED" },
	{ "signal", 0, OPTION_STRING, &signal_filter, "ID", "only executions this signal triggered" },
	{ "limit", 'n', OPTION_NUMBER, &limit, "N", "at most N, newest first (default 20)" },
	OPTION_SPEC_END
};
static const struct option_spec show_options[] = { CLIENT_OPTIONS(client), OPTION_SPEC_END };
static const struct command_usage list_usage = { "executions list", NULL, "List executions, newest first." };
static const struct command_usage show_usage = {
	"executions show", "ID", "Show one execution: the signals that woke it, each step, its orders and outcome."
};

static int executions_list(int argc, char **argv)
{
	int operands = 0;
	int status = options_parse(&list_usage, list_options, argc, argv, &operands);
	if (status != 0)
		return status == 1 ? 0 : 2;
	if (operands > 0) {
		options_print_usage(stderr, &list_usage, list_options, false);
		return 2;
	}
	if (!client_limit_is_valid("executions list", limit))
		return 2;
	json_t *request = protocol_request("executions.list");
	json_object_set_new(request, "limit", json_integer((json_int_t)limit));
	if (pipeline != NULL)
		json_object_set_new(request, "pipeline", json_string(pipeline));
	if (status_filter != NULL)
		json_object_set_new(request, "status", json_string(status_filter));
	if (signal_filter != NULL)
		json_object_set_new(request, "signal", json_string(signal_filter));
	json_t *response = client_call("executions list", &client, request);
	if (response == NULL)
		return 1;
	json_t *executions = json_object_get(response, "executions");
	if (client.json) {
		client_print_json(executions);
	} else {
		size_t index;
		json_t *execution;
		json_array_foreach(executions, index, execution)
			printf("%s  %-9s %s  %s\n", json_string_value(json_object_get(execution, "id")),
			       json_string_value(json_object_get(execution, "status")),
			       json_string_value(json_object_get(execution, "created_at")),
			       json_string_value(json_object_get(execution, "pipeline_name")));
	}
	json_decref(response);
	return 0;
}

static void print_signals(const json_t *execution)
{
	const json_t *signals = json_object_get(execution, "signals");
	const json_t *ids = json_object_get(execution, "signal_ids");
	if (json_array_size(ids) == 0)
		return;
	printf("signals\n");
	size_t index;
	const json_t *signal;
	json_array_foreach(signals, index, signal) {
		printf("  %s  %s/%s, consumed %s\n", client_text(signal, "signal_id"), client_text(signal, "source"),
		       client_text(signal, "signal_type"), client_text(signal, "consumed_at"));
		size_t at;
		const json_t *ticker;
		json_array_foreach(json_object_get(signal, "tickers"), at, ticker)
			printf("    %-10s %-8s %g%s%s\n", client_text(ticker, "ticker"), client_text(ticker, "signal"),
			       json_number_value(json_object_get(ticker, "confidence")),
			       json_is_string(json_object_get(ticker, "reasoning")) ? "  " : "",
			       json_is_string(json_object_get(ticker, "reasoning")) ? client_text(ticker, "reasoning") : "");
	}
	/* A signal id with no record: sent by a client that named it, never consumed by a dispatcher. */
	json_array_foreach(ids, index, signal) {
		bool recorded = false;
		size_t at;
		const json_t *known;
		json_array_foreach(signals, at, known)
			recorded = recorded || strcmp(client_text(known, "signal_id"), json_string_value(signal)) == 0;
		if (!recorded)
			printf("  %s  (no record of it)\n", json_string_value(signal));
	}
}

static void print_steps(const json_t *result)
{
	const json_t *steps = json_object_get(result, "steps");
	if (json_array_size(steps) == 0)
		return;
	printf("steps\n");
	size_t index;
	const json_t *step;
	json_array_foreach(steps, index, step) {
		const char *decision = json_string_value(json_object_get(step, "decision"));
		const char *error = json_string_value(json_object_get(step, "error"));
		printf("  %zu %-18s %-9s %5lld ms  %s\n", index + 1, client_text(step, "agent_type"), client_text(step, "status"),
		       (long long)json_integer_value(json_object_get(step, "duration_ms")),
		       error != NULL ? error : decision != NULL ? decision : "");
	}
}

static void print_orders(const json_t *result)
{
	const json_t *orders = json_object_get(result, "orders");
	if (json_array_size(orders) == 0)
		return;
	printf("orders\n");
	size_t index;
	const json_t *order;
	json_array_foreach(orders, index, order)
		printf("  %-10s %-4s %g @ %g = %.2f %s\n", client_text(order, "ticker"), client_text(order, "side"),
		       json_number_value(json_object_get(order, "quantity")),
		       json_number_value(json_object_get(order, "price")),
		       json_number_value(json_object_get(order, "value")), client_text(order, "status"));
}

/* The story of one run, for people: what woke it, each step's decision, what it traded, how it ended. */
static void print_execution(const json_t *execution)
{
	const json_t *result = json_object_get(execution, "result");
	printf("execution %s  %s\n", client_text(execution, "id"), client_text(execution, "status"));
	printf("  pipeline  %s (%s)\n", client_text(execution, "pipeline_name"), client_text(execution, "pipeline_id"));
	printf("  trigger   %s, task %s", client_text(execution, "triggered_by"), client_text(execution, "task_id"));
	if (json_integer_value(json_object_get(result, "retries")) > 0)
		printf(", after %lld retries", (long long)json_integer_value(json_object_get(result, "retries")));
	printf("\n  created   %s\n", client_text(execution, "created_at"));
	if (json_is_string(json_object_get(execution, "started_at")))
		printf("  started   %s\n", client_text(execution, "started_at"));
	if (json_is_string(json_object_get(execution, "finished_at")))
		printf("  finished  %s\n", client_text(execution, "finished_at"));
	print_signals(execution);
	print_steps(result);
	print_orders(result);
	if (json_is_string(json_object_get(execution, "error")))
		printf("error\n  %s\n", client_text(execution, "error"));
}

static int executions_show(int argc, char **argv)
{
	int operands = 0;
	int status = options_parse(&show_usage, show_options, argc, argv, &operands);
	if (status != 0)
		return status == 1 ? 0 : 2;
	if (operands != 1) {
		options_print_usage(stderr, &show_usage, show_options, false);
		return 2;
	}
	json_t *request = protocol_request("executions.show");
	json_object_set_new(request, "id", json_string(argv[0]));
	json_t *response = client_call("executions show", &client, request);
	if (response == NULL)
		return 1;
	if (client.json)
		client_print_json(json_object_get(response, "execution"));
	else
		print_execution(json_object_get(response, "execution"));
	json_decref(response);
	return 0;
}

static const struct command_entry subcommands[] = {
	{ "list", executions_list, "list executions" },
	{ "show", executions_show, "show one execution" },
};

int cmd_executions(int argc, char **argv)
{
	return command_run_subcommand("executions", subcommands, sizeof subcommands / sizeof subcommands[0],
				      argc, argv);
}

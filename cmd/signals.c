/* sigtrig signals show ID: the decision record of one consumed signal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "protocol.h"

static struct client_options client;
static const struct option_spec show_options[] = { CLIENT_OPTIONS(client), OPTION_SPEC_END };
static const struct command_usage show_usage = {
	"signals show", "ID", "Show a consumed signal, every decision made for it and the runs it started."
};

static void print_report(const json_t *report)
{
	const json_t *signal = json_object_get(report, "signal");
	const json_t *body = json_object_get(signal, "body");
	printf("signal %s\n", client_text(signal, "signal_id"));
	printf("  consumed  %s (partition %lld, offset %lld)\n", client_text(signal, "consumed_at"),
	       (long long)json_integer_value(json_object_get(signal, "kafka_partition")),
	       (long long)json_integer_value(json_object_get(signal, "kafka_offset")));
	printf("  source    %s, type %s\n", client_text(signal, "source"), client_text(signal, "signal_type"));
	size_t index;
	const json_t *ticker;
	json_array_foreach(json_object_get(body, "tickers"), index, ticker)
		printf("  ticker    %s %s %g%s%s\n", client_text(ticker, "ticker"), client_text(ticker, "signal"),
		       json_number_value(json_object_get(ticker, "confidence")),
		       *client_text(ticker, "reasoning") != '-' ? "  " : "",
		       *client_text(ticker, "reasoning") != '-' ? client_text(ticker, "reasoning") : "");
	printf("decisions\n");
	const json_t *decision;
	json_array_foreach(json_object_get(report, "decisions"), index, decision) {
		printf("  %-8s %-21s pipeline %s (%s)", client_text(decision, "decision"),
		       json_is_string(json_object_get(decision, "reason")) ? client_text(decision, "reason") : "",
		       client_text(decision, "pipeline_id"), client_text(decision, "pipeline_name"));
		if (json_is_string(json_object_get(decision, "execution_id")))
			printf(" execution %s task %s", client_text(decision, "execution_id"), client_text(decision, "task_id"));
		printf("\n");
	}
	printf("executions\n");
	const json_t *execution;
	json_array_foreach(json_object_get(report, "executions"), index, execution)
		printf("  %s  %-9s %s\n", client_text(execution, "id"), client_text(execution, "status"),
		       client_text(execution, "pipeline_name"));
}

static int signals_show(int argc, char **argv)
{
	int operands = 0;
	int status = options_parse(&show_usage, show_options, argc, argv, &operands);
	if (status != 0)
		return status == 1 ? 0 : 2;
	if (operands != 1) {
		options_print_usage(stderr, &show_usage, show_options, false);
		return 2;
	}
	json_t *request = protocol_request("signals.show");
	json_object_set_new(request, "id", json_string(argv[0]));
	json_t *response = client_call("signals show", &client, request);
	if (response == NULL)
		return 1;
	if (client.json)
		client_print_json(json_object_get(response, "report"));
	else
		print_report(json_object_get(response, "report"));
	json_decref(response);
	return 0;
}

static const struct command_entry subcommands[] = {
	{ "show", signals_show, "show a signal's decision record" },
};

int cmd_signals(int argc, char **argv)
{
	return command_run_subcommand("signals", subcommands, sizeof subcommands / sizeof subcommands[0], argc,
				      argv);
}

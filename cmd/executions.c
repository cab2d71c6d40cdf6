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
static const struct command_usage show_usage = { "executions show", "ID", "Show one execution with its result." };

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
	if (limit < 1 || limit > 10000 || limit != (double)(long)limit) {
		fprintf(stderr, "sigtrig: executions list: --limit takes a whole number from 1 to 10000\n");
		return 2;
	}
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
	client_print_json(json_object_get(response, "execution"));
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

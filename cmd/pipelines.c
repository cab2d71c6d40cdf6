/*
 * sigtrig pipelines add|list|show|enable|disable: the pipelines the
 * dispatcher matches signals against. Each subcommand is an entry of the
 * table below with its own options.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "protocol.h"

static struct client_options client;
static const char *name, *mode = "signal", *user, *config_text, *file;
static struct option_list tickers;
static bool disabled;

static const struct option_spec add_options[] = {
	CLIENT_OPTIONS(client),
	{ "name", 0, OPTION_STRING, &name, "NAME", "pipeline name" },
	{ "ticker", 't', OPTION_LIST, &tickers, "TICKER", "a ticker it watches (repeat for more)" },
	{ "mode", 0, OPTION_STRING, &mode, "MODE", "trigger mode: signal (default) or periodic" },
	{ "user", 0, OPTION_STRING, &user, "USER", "owner's user name (created if new; default 'default')" },
	{ "config", 0, OPTION_STRING, &config_text, "JSON", "config object, e.g. {\"nodes\": [...]}" },
	{ "disabled", 0, OPTION_FLAG, &disabled, NULL, "add it inactive" },
	{ "file", 'f', OPTION_STRING, &file, "FILE", "the whole definition as JSON; - for standard input" },
	OPTION_SPEC_END
};
static const struct option_spec plain_options[] = { CLIENT_OPTIONS(client), OPTION_SPEC_END };

static const struct command_usage add_usage = { "pipelines add", NULL, "Add a pipeline." };
static const struct command_usage list_usage = { "pipelines list", NULL, "List every pipeline." };
static const struct command_usage show_usage = { "pipelines show", "ID", "Show one pipeline." };
static const struct command_usage enable_usage = { "pipelines enable", "ID", "Make a pipeline active." };
static const struct command_usage disable_usage = { "pipelines disable", "ID", "Make a pipeline inactive." };

static void print_pipeline_line(const json_t *pipeline)
{
	char *tickers_text = json_dumps(json_object_get(pipeline, "scanner_tickers"), JSON_COMPACT);
	printf("%s  %-8s %-8s %-24s %s\n", json_string_value(json_object_get(pipeline, "id")),
	       json_string_value(json_object_get(pipeline, "trigger_mode")),
	       json_is_true(json_object_get(pipeline, "is_active")) ? "active" : "inactive",
	       json_string_value(json_object_get(pipeline, "name")), tickers_text != NULL ? tickers_text : "[]");
	free(tickers_text);
}

static int print_one(json_t *response)
{
	json_t *pipeline = json_object_get(response, "pipeline");
	if (client.json)
		client_print_json(pipeline);
	else
		print_pipeline_line(pipeline);
	json_decref(response);
	return 0;
}

static json_t *read_definition(void)
{
	json_error_t error;
	json_t *definition;
	if (strcmp(file, "-") == 0) {
		definition = json_loadf(stdin, 0, &error);
	} else {
		definition = json_load_file(file, 0, &error);
	}
	if (definition == NULL)
		command_fail("pipelines add", "%s: line %d: %s", file, error.line, error.text);
	return definition;
}

static json_t *definition_from_flags(void)
{
	json_t *definition = json_pack("{s:s?, s:s, s:b}", "name", name, "trigger_mode", mode, "is_active",
				       !disabled);
	json_t *ticker_array = json_array();
	for (size_t i = 0; i < tickers.count; i++)
		json_array_append_new(ticker_array, json_string(tickers.items[i]));
	json_object_set_new(definition, "scanner_tickers", ticker_array);
	if (user != NULL)
		json_object_set_new(definition, "user", json_string(user));
	if (config_text != NULL) {
		json_error_t error;
		json_t *config = json_loads(config_text, 0, &error);
		if (config == NULL) {
			command_fail("pipelines add", "--config is not valid JSON: %s", error.text);
			json_decref(definition);
			return NULL;
		}
		json_object_set_new(definition, "config", config);
	}
	return definition;
}

static int pipelines_add(int argc, char **argv)
{
	int operands = 0;
	int status = options_parse(&add_usage, add_options, argc, argv, &operands);
	if (status != 0)
		return status == 1 ? 0 : 2;
	if (operands > 0 || (file == NULL && name == NULL)) {
		fprintf(stderr, "sigtrig: pipelines add: give --name (and --ticker) or --file\n");
		options_print_usage(stderr, &add_usage, add_options, false);
		return 2;
	}
	json_t *definition = file != NULL ? read_definition() : definition_from_flags();
	option_list_free(&tickers);
	if (definition == NULL)
		return 1;
	json_t *request = protocol_request("pipelines.add");
	json_object_set_new(request, "pipeline", definition);
	json_t *response = client_call("pipelines add", &client, request);
	return response == NULL ? 1 : print_one(response);
}

static int pipelines_list(int argc, char **argv)
{
	int operands = 0;
	int status = options_parse(&list_usage, plain_options, argc, argv, &operands);
	if (status != 0)
		return status == 1 ? 0 : 2;
	if (operands > 0) {
		options_print_usage(stderr, &list_usage, plain_options, false);
		return 2;
	}
	json_t *response = client_call("pipelines list", &client, protocol_request("pipelines.list"));
	if (response == NULL)
		return 1;
	json_t *pipelines = json_object_get(response, "pipelines");
	if (client.json) {
		client_print_json(pipelines);
	} else {
		size_t index;
		json_t *pipeline;
		json_array_foreach(pipelines, index, pipeline)
			print_pipeline_line(pipeline);
	}
	json_decref(response);
	return 0;
}

static int by_id(const struct command_usage *usage, const char *type, int argc, char **argv)
{
	int operands = 0;
	int status = options_parse(usage, plain_options, argc, argv, &operands);
	if (status != 0)
		return status == 1 ? 0 : 2;
	if (operands != 1) {
		options_print_usage(stderr, usage, plain_options, false);
		return 2;
	}
	json_t *request = protocol_request(type);
	json_object_set_new(request, "id", json_string(argv[0]));
	json_t *response = client_call(usage->command, &client, request);
	if (response == NULL)
		return 1;
	if (!client.json && strcmp(type, "pipelines.show") == 0) {
		/* show is for reading the whole definition: print it all. */
		client_print_json(json_object_get(response, "pipeline"));
		json_decref(response);
		return 0;
	}
	return print_one(response);
}

static int pipelines_show(int argc, char **argv) { return by_id(&show_usage, "pipelines.show", argc, argv); }
static int pipelines_enable(int argc, char **argv) { return by_id(&enable_usage, "pipelines.enable", argc, argv); }
static int pipelines_disable(int argc, char **argv) { return by_id(&disable_usage, "pipelines.disable", argc, argv); }

static const struct command_entry subcommands[] = {
	{ "add", pipelines_add, "add a pipeline" },
	{ "list", pipelines_list, "list pipelines" },
	{ "show", pipelines_show, "show one pipeline" },
	{ "enable", pipelines_enable, "make a pipeline active" },
	{ "disable", pipelines_disable, "make a pipeline inactive" },
};

int cmd_pipelines(int argc, char **argv)
{
	return command_run_subcommand("pipelines", subcommands, sizeof subcommands / sizeof subcommands[0],
				      argc, argv);
}

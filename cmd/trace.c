/*
 * sigtrig trace: follows signals through every stage of the flow
 * (published, consumed, matched, skipped, enqueued, started, finished),
 * one line per event, from every daemon sharing the stack. Without
 * --follow, shows the executions a signal triggered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "protocol.h"

static struct client_options client;
static bool follow;
static const char *signal_id;
static const char *ticker;
static double max_events = 0;

static const struct command_usage usage = {
	"trace", NULL, "Follow signals through each stage of the flow, or show what one signal triggered."
};
static const struct option_spec options[] = {
	CLIENT_OPTIONS(client),
	{ "follow", 'F', OPTION_FLAG, &follow, NULL, "stream stage events as they happen" },
	{ "signal", 's', OPTION_STRING, &signal_id, "ID", "only this signal" },
	{ "ticker", 't', OPTION_STRING, &ticker, "TICKER", "only signals about this ticker" },
	{ "count", 'n', OPTION_NUMBER, &max_events, "N", "stop after N events" },
	OPTION_SPEC_END
};

/* "10:32:16.123 enqueued  3f2a9c1e  pipeline=... execution=..." */
static void print_event(json_t *event)
{
	const char *time_text = json_string_value(json_object_get(event, "time"));
	const char *stage = json_string_value(json_object_get(event, "stage"));
	const char *id = json_string_value(json_object_get(event, "signal_id"));
	printf("%s %-9s %s", time_text != NULL ? time_text : "-", stage != NULL ? stage : "?",
	       id != NULL && *id != '\0' ? id : "-");
	const char *key;
	json_t *value;
	json_object_foreach(event, key, value) {
		if (strcmp(key, "time") == 0 || strcmp(key, "stage") == 0 || strcmp(key, "signal_id") == 0 ||
		    strcmp(key, "v") == 0 || strcmp(key, "type") == 0)
			continue;
		if (json_is_string(value)) {
			printf(" %s=%s", key, json_string_value(value));
		} else {
			char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
			printf(" %s=%s", key, text != NULL ? text : "?");
			free(text);
		}
	}
	printf("\n");
}

static int follow_events(void)
{
	char socket_path[4096];
	client_socket_path(&client, socket_path, sizeof socket_path);
	char err[1024];
	int fd = protocol_connect(socket_path, err, sizeof err);
	if (fd < 0)
		return command_fail("trace", "%s", err);
	json_t *request = protocol_request("trace");
	if (signal_id != NULL)
		json_object_set_new(request, "signal", json_string(signal_id));
	if (ticker != NULL)
		json_object_set_new(request, "ticker", json_string(ticker));
	int status = protocol_write(fd, request);
	json_decref(request);
	if (status != 0) {
		close(fd);
		return command_fail("trace", "cannot send the request");
	}
	struct line_reader reader;
	line_reader_init(&reader, fd);
	char *line;
	size_t length;
	long seen = 0;
	bool answered = false;
	int result = 0;
	while (line_reader_next(&reader, &line, &length) == 1) {
		json_t *message = protocol_decode(line, length, err, sizeof err);
		if (message == NULL)
			continue;
		const char *type = json_string_value(json_object_get(message, "type"));
		if (!answered && strcmp(type, "response") == 0) {
			answered = true;
			if (!json_is_true(json_object_get(message, "ok"))) {
				result = command_fail("trace", "%s",
						      json_string_value(json_object_get(message, "error")));
				json_decref(message);
				break;
			}
			if (!client.json)
				fprintf(stderr, "following stage events (Ctrl-C to stop)\n");
		} else if (strcmp(type, "event") == 0) {
			if (client.json) {
				json_object_del(message, "v");
				json_object_del(message, "type");
				char *text = json_dumps(message, JSON_COMPACT | JSON_PRESERVE_ORDER);
				printf("%s\n", text != NULL ? text : "{}");
				free(text);
			} else {
				print_event(message);
			}
			/* A follower is read by people and pipes alike: every event at once. */
			if (fflush(stdout) != 0) {
				json_decref(message);
				break;
			}
			seen++;
		}
		json_decref(message);
		if (max_events > 0 && seen >= (long)max_events)
			break;
	}
	if (!answered && result == 0)
		result = command_fail("trace", "the daemon closed the connection");
	line_reader_free(&reader);
	close(fd);
	return result;
}

static int show_signal_executions(void)
{
	json_t *request = protocol_request("executions.list");
	json_object_set_new(request, "signal", json_string(signal_id));
	json_object_set_new(request, "limit", json_integer(1000));
	json_t *response = client_call("trace", &client, request);
	if (response == NULL)
		return 1;
	json_t *executions = json_object_get(response, "executions");
	if (client.json) {
		client_print_json(executions);
	} else if (json_array_size(executions) == 0) {
		printf("signal %s triggered no execution\n", signal_id);
	} else {
		size_t index;
		json_t *execution;
		json_array_foreach(executions, index, execution)
			printf("%s %-9s execution=%s pipeline=%s (%s)\n",
			       json_string_value(json_object_get(execution, "created_at")),
			       json_string_value(json_object_get(execution, "status")),
			       json_string_value(json_object_get(execution, "id")),
			       json_string_value(json_object_get(execution, "pipeline_id")),
			       json_string_value(json_object_get(execution, "pipeline_name")));
	}
	json_decref(response);
	return 0;
}

int cmd_trace(int argc, char **argv)
{
	int operands = 0;
	int status = options_parse(&usage, options, argc, argv, &operands);
	if (status != 0)
		return status == 1 ? 0 : 2;
	if (operands > 0 || (!follow && signal_id == NULL) || max_events < 0) {
		fprintf(stderr, "sigtrig: trace: give --follow, or --signal ID to see what a signal triggered\n");
		options_print_usage(stderr, &usage, options, false);
		return 2;
	}
	return follow ? follow_events() : show_signal_executions();
}

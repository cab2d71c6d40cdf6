/* How a command finds the daemon and talks to it (see command.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "config.h"
#include "protocol.h"

const char *client_stack_dir(const struct client_options *options)
{
	if (options->dir != NULL)
		return options->dir;
	const char *environment = getenv("SIGTRIG_DIR");
	if (environment != NULL && *environment != '\0')
		return environment;
	return ".sigtrig";
}

void client_socket_path(const struct client_options *options, char *buf, size_t size)
{
	if (options->socket != NULL) {
		snprintf(buf, size, "%s", options->socket);
		return;
	}
	/* The command line beats the environment: --dir outranks $SIGTRIG_CONTROL_SOCKET. */
	const char *environment = getenv("SIGTRIG_CONTROL_SOCKET");
	if (options->dir == NULL && environment != NULL && *environment != '\0') {
		snprintf(buf, size, "%s", environment);
		return;
	}
	const char *dir = client_stack_dir(options);
	char path[4096];
	snprintf(path, sizeof path, "%s/sigtrig.conf", dir);
	snprintf(buf, size, "%s/sigtrigd.sock", dir);
	/* The conf's control.socket only when the file says so; a broken file is reported, not guessed past. */
	FILE *file = fopen(path, "r");
	if (file == NULL)
		return;
	char line[4096];
	bool named = false;
	while (fgets(line, sizeof line, file) != NULL)
		named |= strncmp(line + strspn(line, " \t"), "control.socket", 14) == 0;
	fclose(file);
	struct config config;
	config_init(&config);
	char err[512];
	if (config_load_file(&config, path, err, sizeof err) != 0)
		fprintf(stderr, "sigtrig: warning: %s; trying %s\n", err, buf);
	else if (named)
		snprintf(buf, size, "%s", config.control_socket);
	config_free(&config);
}

int command_fail(const char *command, const char *fmt, ...)
{
	char message[2048];
	va_list args;
	va_start(args, fmt);
	vsnprintf(message, sizeof message, fmt, args);
	va_end(args);
	fprintf(stderr, "sigtrig: %s: %s\n", command, message);
	return 1;
}

json_t *client_call(const char *command, const struct client_options *options, json_t *request)
{
	char socket_path[4096];
	client_socket_path(options, socket_path, sizeof socket_path);
	char err[1024];
	json_t *response = protocol_call(socket_path, request, err, sizeof err);
	if (response == NULL) {
		command_fail(command, "%s", err);
		return NULL;
	}
	if (!json_is_true(json_object_get(response, "ok"))) {
		const char *why = json_string_value(json_object_get(response, "error"));
		command_fail(command, "%s", why != NULL ? why : "the daemon refused the request");
		json_decref(response);
		return NULL;
	}
	return response;
}

void client_print_json(const json_t *value)
{
	json_dumpf(value, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

int command_run_subcommand(const char *command, const struct command_entry *subcommands, size_t count,
			   int argc, char **argv)
{
	if (argc >= 2) {
		for (size_t i = 0; i < count; i++)
			if (strcmp(argv[1], subcommands[i].name) == 0)
				return subcommands[i].run(argc - 1, argv + 1);
	}
	FILE *out = argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) ? stdout : stderr;
	if (argc >= 2 && out == stderr)
		fprintf(stderr, "sigtrig: %s: '%s' is not a subcommand\n", command, argv[1]);
	fprintf(out, "usage: sigtrig %s <subcommand> [<args>]\n\nsubcommands:\n", command);
	for (size_t i = 0; i < count; i++)
		fprintf(out, "   %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	return out == stdout ? 0 : 2;
}

const char *client_text(const json_t *object, const char *key)
{
	const char *text = json_string_value(json_object_get(object, key));
	return text != NULL ? text : "-";
}

bool client_limit_is_valid(const char *command, double limit)
{
	if (limit >= 1 && limit <= 10000 && limit == (double)(long)limit)
		return true;
	fprintf(stderr, "sigtrig: %s: --limit takes a whole number from 1 to 10000\n", command);
	return false;
}

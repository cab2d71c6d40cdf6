/* sigtrig status: the daemon's roles, endpoints, health and counters, like Redis INFO. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "protocol.h"

static struct client_options client;
static const struct command_usage usage = {
	"status", NULL, "Show the daemon's roles, uptime, endpoints, the health of Kafka, Redis and PostgreSQL, its pipeline cache and counters."
};
static const struct option_spec options[] = { CLIENT_OPTIONS(client), OPTION_SPEC_END };

static void print_scalar(const char *key, const json_t *value)
{
	if (json_is_string(value))
		printf("%s: %s\n", key, json_string_value(value));
	else if (json_is_integer(value))
		printf("%s: %lld\n", key, (long long)json_integer_value(value));
	else if (json_is_real(value))
		printf("%s: %g\n", key, json_real_value(value));
	else if (json_is_boolean(value))
		printf("%s: %s\n", key, json_is_true(value) ? "yes" : "no");
	else if (json_is_null(value))
		printf("%s: -\n", key);
	else {
		char *text = json_dumps(value, JSON_COMPACT);
		printf("%s: %s\n", key, text != NULL ? text : "?");
		free(text);
	}
}

/* "# Section" then key: value lines; nested objects flatten to key_subkey. */
static void print_section(const char *title, const json_t *object, const char *prefix)
{
	if (title != NULL)
		printf("# %s\n", title);
	const char *key;
	const json_t *value;
	json_object_foreach((json_t *)object, key, value) {
		char name[512];
		snprintf(name, sizeof name, "%.255s%.255s", prefix, key);
		if (json_is_object(value)) {
			char nested[520];
			snprintf(nested, sizeof nested, "%s_", name);
			print_section(NULL, value, nested);
		} else {
			print_scalar(name, value);
		}
	}
	if (title != NULL)
		printf("\n");
}

int cmd_status(int argc, char **argv)
{
	int status = options_parse_no_operands(&usage, options, argc, argv);
	if (status >= 0)
		return status;
	json_t *response = client_call("status", &client, protocol_request("status"));
	if (response == NULL)
		return 1;
	json_object_del(response, "v");
	json_object_del(response, "type");
	json_object_del(response, "ok");
	int healthy = 1;
	const char *name;
	const json_t *check;
	json_object_foreach(json_object_get(response, "health"), name, check)
		if (!json_is_string(json_object_get(check, "status")) ||
		    strcmp(json_string_value(json_object_get(check, "status")), "ok") != 0)
			healthy = 0;
	if (client.json) {
		client_print_json(response);
	} else {
		print_section("Daemon", json_object_get(response, "daemon"), "");
		printf("# Roles\nroles: ");
		size_t index;
		const json_t *role;
		json_array_foreach(json_object_get(response, "roles"), index, role)
			printf("%s%s", index > 0 ? "," : "", json_string_value(role));
		printf("\n\n");
		print_section("Endpoints", json_object_get(response, "endpoints"), "");
		print_section("Health", json_object_get(response, "health"), "");
		print_section("Cache", json_object_get(response, "cache"), "");
		print_section("Counters", json_object_get(response, "counters"), "");
		const char *role_name;
		const json_t *details;
		json_object_foreach(json_object_get(response, "role_details"), role_name, details) {
			char title[64];
			snprintf(title, sizeof title, "Role %s", role_name);
			print_section(title, details, "");
		}
	}
	json_decref(response);
	/* 0 healthy, 3 when a backend is down: scripts can wait on it. */
	return healthy ? 0 : 3;
}

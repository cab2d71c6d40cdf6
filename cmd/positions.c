/* sigtrig positions: what each user holds on paper, marked at the last close, and their credits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "protocol.h"

static struct client_options client;
static const char *user;
static const struct option_spec options[] = {
	CLIENT_OPTIONS(client),
	{ "user", 'u', OPTION_STRING, &user, "USER", "only this user" },
	OPTION_SPEC_END
};
static const struct command_usage usage = {
	"positions", NULL, "Show each user's paper positions, marked at the last close, with credits and exposure."
};

static double number_of(const json_t *object, const char *key)
{
	return json_number_value(json_object_get(object, key));
}

int cmd_positions(int argc, char **argv)
{
	int status = options_parse_no_operands(&usage, options, argc, argv);
	if (status >= 0)
		return status;
	json_t *request = protocol_request("positions.list");
	if (user != NULL)
		json_object_set_new(request, "user", json_string(user));
	json_t *response = client_call("positions", &client, request);
	if (response == NULL)
		return 1;
	const json_t *users = json_object_get(response, "users");
	if (client.json) {
		client_print_json(users);
		json_decref(response);
		return 0;
	}
	if (user != NULL && json_array_size(users) == 0) {
		json_decref(response);
		return command_fail("positions", "no user %s", user);
	}
	size_t index;
	const json_t *holder;
	json_array_foreach(users, index, holder) {
		printf("%s  credits %.2f  exposure %.2f\n", json_string_value(json_object_get(holder, "user")),
		       number_of(holder, "credits"), number_of(holder, "exposure"));
		size_t at;
		const json_t *position;
		json_array_foreach(json_object_get(holder, "positions"), at, position) {
			const json_t *last = json_object_get(position, "last_close");
			char last_text[32];
			if (json_is_number(last))
				snprintf(last_text, sizeof last_text, "%g", json_number_value(last));
			else
				snprintf(last_text, sizeof last_text, "-");
			printf("  %-12s %12g @ %-10g last %-10s value %12.2f  P&L %+.2f\n",
			       json_string_value(json_object_get(position, "ticker")), number_of(position, "quantity"),
			       number_of(position, "average_price"), last_text, number_of(position, "value"),
			       number_of(position, "unrealized_pnl"));
		}
	}
	json_decref(response);
	return 0;
}

/* sigtrig orders: the paper orders order_manager filled, newest first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "protocol.h"

static struct client_options client;
static const char *user;
static double limit = 20;
static const struct option_spec options[] = {
	CLIENT_OPTIONS(client),
	{ "user", 'u', OPTION_STRING, &user, "USER", "only this user's orders" },
	{ "limit", 'n', OPTION_NUMBER, &limit, "N", "at most N, newest first (default 20)" },
	OPTION_SPEC_END
};
static const struct command_usage usage = { "orders", NULL, "List the paper orders filled, newest first." };

int cmd_orders(int argc, char **argv)
{
	int status = options_parse_no_operands(&usage, options, argc, argv);
	if (status >= 0)
		return status;
	if (!client_limit_is_valid("orders", limit))
		return 2;
	json_t *request = protocol_request("orders.list");
	json_object_set_new(request, "limit", json_integer((json_int_t)limit));
	if (user != NULL)
		json_object_set_new(request, "user", json_string(user));
	json_t *response = client_call("orders", &client, request);
	if (response == NULL)
		return 1;
	const json_t *orders = json_object_get(response, "orders");
	if (client.json) {
		client_print_json(orders);
	} else {
		size_t index;
		const json_t *order;
		json_array_foreach(orders, index, order) {
			const char *pipeline = json_string_value(json_object_get(order, "pipeline_name"));
			printf("%s  %-8s %-12s %-4s %12g @ %-10g = %12.2f %-7s %s\n",
			       json_string_value(json_object_get(order, "created_at")),
			       json_string_value(json_object_get(order, "user")),
			       json_string_value(json_object_get(order, "ticker")),
			       json_string_value(json_object_get(order, "side")),
			       json_number_value(json_object_get(order, "quantity")),
			       json_number_value(json_object_get(order, "price")),
			       json_number_value(json_object_get(order, "value")),
			       json_string_value(json_object_get(order, "status")),
			       pipeline != NULL ? pipeline : "(pipeline deleted)");
		}
	}
	json_decref(response);
	return 0;
}

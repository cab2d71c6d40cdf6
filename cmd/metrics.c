/* sigtrig metrics: the daemon's metrics in the Prometheus text format, or as JSON. */
#include <stdio.h>

#include "command.h"
#include "protocol.h"

static struct client_options client;
static const struct command_usage usage = {
	"metrics", NULL, "Print the daemon's metrics in the Prometheus text exposition format."
};
static const struct option_spec options[] = { CLIENT_OPTIONS(client), OPTION_SPEC_END };

int cmd_metrics(int argc, char **argv)
{
	int status = options_parse_no_operands(&usage, options, argc, argv);
	if (status >= 0)
		return status;
	json_t *response = client_call("metrics", &client, protocol_request("metrics"));
	if (response == NULL)
		return 1;
	/* Both forms come from the daemon's one encoder (src/metrics.c): nothing is parsed here. */
	const json_t *answer = json_object_get(response, client.json ? "metrics" : "text");
	if (client.json ? !json_is_object(answer) : !json_is_string(answer)) {
		json_decref(response);
		return command_fail("metrics", "the daemon's answer holds no %s (an older sigtrigd?)",
				    client.json ? "\"metrics\" object" : "\"text\"");
	}
	if (client.json)
		client_print_json(answer);
	else
		fputs(json_string_value(answer), stdout);
	json_decref(response);
	return 0;
}

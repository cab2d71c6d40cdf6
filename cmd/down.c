/* sigtrig down: stops, by pid, exactly what 'sigtrig up' started; keeps the data. */
#include <stdio.h>

#include "command.h"
#include "stack.h"

static const struct command_usage usage = {
	"down", NULL,
	"Stop sigtrigd, the Kafka mock broker, Redis and PostgreSQL that 'sigtrig up' started\n"
	"under DIR. Data and logs stay; 'sigtrig up' starts them again."
};

static void warn_killed(const struct stack_report *report)
{
	for (size_t i = 0; i < report->count; i++)
		if (report->outcomes[i].status == STACK_KILLED)
			fprintf(stderr, "sigtrig: down: warning: %s (pid %ld) did not stop in time and was "
					"killed\n",
				report->outcomes[i].component, (long)report->outcomes[i].pid);
}

int cmd_down(int argc, char **argv)
{
	struct client_options client = { 0 };
	/* Not CLIENT_OPTIONS: stopping goes by the pid files, never through the socket. */
	const struct option_spec options[] = {
		{ "dir", 0, OPTION_STRING, &client.dir, "DIR",
		  "stack directory 'sigtrig up' used (default $SIGTRIG_DIR or ./.sigtrig)" },
		{ "json", 0, OPTION_FLAG, &client.json, NULL, "print JSON for scripts" },
		OPTION_SPEC_END
	};
	int status = options_parse_no_operands(&usage, options, argc, argv);
	if (status >= 0)
		return status;
	struct stack_report report;
	char err[4096];
	if (stack_down(client_stack_dir(&client), &report, err, sizeof err) != 0)
		return command_fail("down", "%s", err);
	if (client.json) {
		json_t *object = stack_report_json(&report);
		client_print_json(object);
		json_decref(object);
	} else {
		stack_report_print(stdout, &report);
	}
	warn_killed(&report);
	return 0;
}

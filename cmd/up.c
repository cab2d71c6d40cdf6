/* sigtrig up: starts the local stack under one directory (see src/stack.h). */
#include <math.h>
#include <stdio.h>

#include "command.h"
#include "stack.h"

static const struct command_usage usage = {
	"up", NULL,
	"Start Kafka (sigtrig-mockbroker), Redis, PostgreSQL and sigtrigd on loopback ports,\n"
	"with their data, logs and sigtrig.conf under DIR. What already runs is left alone."
};

static bool daemon_skipped(const struct stack_report *report)
{
	for (size_t i = 0; i < report->count; i++)
		if (report->outcomes[i].status == STACK_SKIPPED)
			return true;
	return false;
}

static void print_hints(const struct stack_report *report)
{
	printf("\nconf: %s\n", report->conf_path);
	if (!daemon_skipped(report))
		printf("follow the signals: sigtrig trace --follow --dir %s\n", report->dir);
	else
		printf("start the daemon:   sigtrigd -c %s\n", report->conf_path);
	printf("stop everything:    sigtrig down --dir %s\n", report->dir);
}

static void warn_outdated_daemon(const struct stack_report *report)
{
	if (report->daemon_conf_outdated)
		fprintf(stderr, "sigtrig: up: warning: sigtrigd still reads the previous sigtrig.conf; "
				"'sigtrig up --dir %s' without --no-daemon restarts it\n",
			report->dir);
}

static int report_failure(const struct stack_report *report, const char *err, bool json)
{
	command_fail("up", "%s", err);
	if (report->failure_log[0] != '\0')
		stack_print_log_tail(report->failure_log, 10);
	if (report->count > 0 && !json)
		fprintf(stderr, "'sigtrig down --dir %s' stops what was started.\n", report->dir);
	return 1;
}

int cmd_up(int argc, char **argv)
{
	struct client_options client = { 0 };
	bool no_generators = false, no_daemon = false;
	double partitions = STACK_DEFAULT_PARTITIONS;
	const struct option_spec options[] = {
		CLIENT_OPTIONS(client),
		{ "no-generators", 0, OPTION_FLAG, &no_generators, NULL,
		  "write generator.mock.enabled = false: the daemon makes up no signals" },
		{ "no-daemon", 0, OPTION_FLAG, &no_daemon, NULL,
		  "start only Kafka, Redis and PostgreSQL, not sigtrigd" },
		{ "partitions", 0, OPTION_NUMBER, &partitions, "N",
		  "partitions of the " STACK_SIGNALS_TOPIC " topic when the broker starts (default 4)" },
		OPTION_SPEC_END
	};
	int operands = 0;
	int status = options_parse(&usage, options, argc, argv, &operands);
	if (status != 0)
		return status == 1 ? 0 : 2;
	if (partitions != floor(partitions) || partitions < 1 || partitions > STACK_PARTITIONS_MAX) {
		fprintf(stderr, "sigtrig: up: --partitions: must be a whole number from 1 to %d\n",
			STACK_PARTITIONS_MAX);
		return 2;
	}
	if (operands > 0) {
		options_print_usage(stderr, &usage, options, false);
		return 2;
	}
	const struct stack_options stack_options = {
		.dir = client_stack_dir(&client),
		.control_socket = client.socket,
		.generators = !no_generators,
		.daemon = !no_daemon,
		.kafka_partitions = (int)partitions,
	};
	struct stack_report report;
	char err[4096];
	status = stack_up(&stack_options, &report, err, sizeof err);
	if (client.json) {
		json_t *object = json_pack("{s:b}", "ok", status == 0);
		json_t *details = stack_report_json(&report);
		json_object_update(object, details);
		json_decref(details);
		if (status != 0)
			json_object_set_new(object, "error", json_string(err));
		client_print_json(object);
		json_decref(object);
	} else {
		stack_report_print(stdout, &report);
	}
	if (status != 0)
		return report_failure(&report, err, client.json);
	if (!client.json)
		print_hints(&report);
	warn_outdated_daemon(&report);
	return 0;
}

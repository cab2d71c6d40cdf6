/* sigtrig help [COMMAND]: opens the manual of a command, or sigtrig(1). */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "command.h"

static const struct command_usage usage = { "help", "[COMMAND]", "Show the manual page of a command." };
static const struct option_spec options[] = { OPTION_SPEC_END };

int cmd_help(int argc, char **argv)
{
	int operands = 0;
	int status = options_parse(&usage, options, argc, argv, &operands);
	if (status != 0)
		return status == 1 ? 0 : 2;
	if (operands == 0) {
		execlp("man", "man", "sigtrig", (char *)NULL);
		return command_fail("help", "cannot run man: see sigtrig(1)");
	}
	if (operands > 1) {
		options_print_usage(stderr, &usage, options, false);
		return 2;
	}
	if (command_find(argv[0]) == NULL) {
		fprintf(stderr, "sigtrig: help: '%s' is not a sigtrig command\n", argv[0]);
		return 2;
	}
	char page[128];
	snprintf(page, sizeof page, "sigtrig-%s", argv[0]);
	fflush(stdout);
	execlp("man", "man", page, (char *)NULL);
	return command_fail("help", "cannot run man for %s", page);
}

/*
 * sigtrig: the command-line client. Finds the subcommand in the table
 * generated from commands.def and runs it; checks that everything it
 * printed really reached stdout (so `sigtrig ... | head` or a full disk is
 * an error, not silent truncation).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoconfig.h"
#include "command.h"
#include "config.h"

static const struct command_entry commands[] = {
#define COMMAND(name, summary) { #name, cmd_##name, summary },
#include "commands.def"
#undef COMMAND
};

const struct command_entry *command_table(size_t *count)
{
	*count = sizeof commands / sizeof commands[0];
	return commands;
}

const struct command_entry *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void print_main_usage(FILE *out)
{
	fprintf(out, "usage: sigtrig [--version] [--help] [--dir DIR] <command> [<args>]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "   %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'sigtrig help <command>' shows a command's manual; 'sigtrig <command> -h' its options.\n");
}

static int finish_output(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		/* A closed pipe is the reader's choice, not our failure. */
		if (errno == EPIPE)
			return status;
		fprintf(stderr, "sigtrig: write error on standard output: %s\n", strerror(errno));
		return status == 0 ? 1 : status;
	}
	return status;
}

int main(int argc, char **argv)
{
	/*
	 * `sigtrig --dir DIR <command>`, as `git -C DIR`: the stack directory
	 * for every command, handed on as $SIGTRIG_DIR, which each command's
	 * own --dir still overrides.
	 */
	while (argc >= 2 && strncmp(argv[1], "--dir", 5) == 0 && (argv[1][5] == '\0' || argv[1][5] == '=')) {
		const char *dir = argv[1][5] == '=' ? argv[1] + 6 : argc >= 3 ? argv[2] : NULL;
		if (dir == NULL || *dir == '\0') {
			fprintf(stderr, "sigtrig: --dir needs a directory\n");
			return 2;
		}
		setenv("SIGTRIG_DIR", dir, 1);
		int used = argv[1][5] == '=' ? 1 : 2;
		argv[used] = argv[0];
		argv += used;
		argc -= used;
	}
	if (argc < 2) {
		print_main_usage(stderr);
		return 2;
	}
	const char *name = argv[1];
	if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
		printf("sigtrig %s\n", PACKAGE_VERSION);
		return finish_output(0);
	}
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
		print_main_usage(stdout);
		return finish_output(0);
	}
	const struct command_entry *command = command_find(name);
	if (command == NULL) {
		fprintf(stderr, "sigtrig: '%s' is not a sigtrig command\n", name);
		print_main_usage(stderr);
		return 2;
	}
	return finish_output(command->run(argc - 1, argv + 1));
}

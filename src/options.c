#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

static size_t option_count(const struct option_spec *options)
{
	size_t count = 0;
	while (options != NULL && options[count].kind != OPTION_END)
		count++;
	return count;
}

static size_t append(char *buf, size_t size, size_t used, const char *text)
{
	if (used < size)
		used += (size_t)snprintf(buf + used, size - used, "%s", text);
	return used;
}

void options_synopsis(const struct command_usage *usage, const struct option_spec *options,
		      char *buf, size_t size)
{
	size_t used = (size_t)snprintf(buf, size, "sigtrig %s", usage->command);
	for (size_t i = 0; i < option_count(options); i++) {
		const struct option_spec *option = &options[i];
		char part[128];
		char name[64];
		if (option->short_name != 0)
			snprintf(name, sizeof name, "-%c|--%s", option->short_name, option->name);
		else
			snprintf(name, sizeof name, "--%s", option->name);
		if (option->kind == OPTION_FLAG)
			snprintf(part, sizeof part, " [%s]", name);
		else
			snprintf(part, sizeof part, " [%s %s]%s", name, option->argument,
				 option->kind == OPTION_LIST ? "..." : "");
		used = append(buf, size, used, part);
	}
	if (usage->operands != NULL) {
		used = append(buf, size, used, " ");
		append(buf, size, used, usage->operands);
	}
}

void options_print_usage(FILE *out, const struct command_usage *usage,
			 const struct option_spec *options, bool with_details)
{
	char synopsis[2048];
	options_synopsis(usage, options, synopsis, sizeof synopsis);
	fprintf(out, "usage: %s\n", synopsis);
	if (!with_details)
		return;
	fprintf(out, "\n%s\n\n", usage->summary);
	for (size_t i = 0; i < option_count(options); i++) {
		const struct option_spec *option = &options[i];
		char left[96];
		if (option->short_name != 0)
			snprintf(left, sizeof left, "-%c, --%s%s%s", option->short_name, option->name,
				 option->kind == OPTION_FLAG ? "" : " ",
				 option->kind == OPTION_FLAG ? "" : option->argument);
		else
			snprintf(left, sizeof left, "    --%s%s%s", option->name,
				 option->kind == OPTION_FLAG ? "" : " ",
				 option->kind == OPTION_FLAG ? "" : option->argument);
		fprintf(out, "  %-28s %s\n", left, option->help);
	}
	fprintf(out, "  %-28s %s\n", "-h, --help", "show this help");
}

void options_show_manual(const struct command_usage *usage)
{
	/* "pipelines add" is documented in sigtrig-pipelines(1). */
	char page[128];
	snprintf(page, sizeof page, "sigtrig-%.*s", (int)strcspn(usage->command, " "), usage->command);
	/* Only when a terminal reads it: scripts get the plain usage text. */
	if (!isatty(STDOUT_FILENO))
		return;
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, STDERR_FILENO);
		execlp("man", "man", page, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	if (child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0)
		exit(0);
}

void option_list_free(struct option_list *list)
{
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

static int store(const struct command_usage *usage, const struct option_spec *option, char *argument)
{
	switch (option->kind) {
	case OPTION_FLAG:
		*(bool *)option->value = true;
		return 0;
	case OPTION_STRING:
		*(const char **)option->value = argument;
		return 0;
	case OPTION_LIST: {
		struct option_list *list = option->value;
		const char **grown = realloc(list->items, (list->count + 1) * sizeof *grown);
		if (grown == NULL)
			return -1;
		grown[list->count++] = argument;
		list->items = grown;
		return 0;
	}
	case OPTION_NUMBER: {
		char *end;
		errno = 0;
		double number = strtod(argument, &end);
		if (errno != 0 || end == argument || *end != '\0' || !isfinite(number)) {
			fprintf(stderr, "sigtrig: %s: --%s: '%s' is not a number\n", usage->command,
				option->name, argument);
			return -1;
		}
		*(double *)option->value = number;
		return 0;
	}
	case OPTION_END:
		break;
	}
	return -1;
}

int options_parse(const struct command_usage *usage, const struct option_spec *options, int argc,
		  char **argv, int *operand_count)
{
	size_t count = option_count(options);
	struct option *long_options = calloc(count + 2, sizeof *long_options);
	/* '-': operands come back in order as code 1; ':': a missing value is told apart. */
	char short_options[2 * 64 + 8] = "-:h";
	size_t short_used = strlen(short_options);
	for (size_t i = 0; i < count; i++) {
		long_options[i].name = options[i].name;
		long_options[i].has_arg = options[i].kind == OPTION_FLAG ? no_argument : required_argument;
		long_options[i].val = 256 + (int)i;
		if (options[i].short_name != 0 && short_used + 3 < sizeof short_options) {
			short_options[short_used++] = options[i].short_name;
			if (options[i].kind != OPTION_FLAG)
				short_options[short_used++] = ':';
		}
	}
	short_options[short_used] = '\0';
	long_options[count].name = "help";
	long_options[count].val = 'H';

	int operands = 0;
	int status = 0;
	optind = 0; /* full re-initialisation of getopt for each command */
	opterr = 0;
	for (;;) {
		int index = 0;
		int code = getopt_long(argc, argv, short_options, long_options, &index);
		if (code == -1)
			break;
		if (code == 1) {
			argv[operands++] = optarg;
			continue;
		}
		if (code == 'h' || code == 'H') {
			/* --help prefers the man page; -h is always the short usage. */
			if (code == 'H')
				options_show_manual(usage);
			options_print_usage(stdout, usage, options, true);
			status = 1;
			break;
		}
		if (code == '?' || code == ':') {
			/* For a long option getopt sets optopt to its table value, not a
			 * character: name it by the argument as typed. */
			bool short_option = optopt > 0 && optopt < 128 && isalnum(optopt);
			if (code == ':')
				fprintf(stderr, "sigtrig: %s: option %s needs a value\n", usage->command,
					argv[optind - 1]);
			else if (short_option)
				fprintf(stderr, "sigtrig: %s: unknown option -%c\n", usage->command, optopt);
			else if (optopt >= 256)
				fprintf(stderr, "sigtrig: %s: option %s takes no value\n", usage->command,
					argv[optind - 1]);
			else
				fprintf(stderr, "sigtrig: %s: unknown option %s\n", usage->command,
					argv[optind - 1]);
			options_print_usage(stderr, usage, options, false);
			status = 2;
			break;
		}
		const struct option_spec *option = NULL;
		if (code >= 256)
			option = &options[code - 256];
		else
			for (size_t i = 0; i < count; i++)
				if (options[i].short_name == code)
					option = &options[i];
		if (option == NULL || store(usage, option, optarg) != 0) {
			status = 2;
			break;
		}
	}
	/* Anything after "--" is an operand too. */
	while (status == 0 && optind < argc)
		argv[operands++] = argv[optind++];
	*operand_count = operands;
	free(long_options);
	return status;
}

int options_parse_no_operands(const struct command_usage *usage, const struct option_spec *options, int argc,
			      char **argv)
{
	int operands = 0;
	int status = options_parse(usage, options, argc, argv, &operands);
	if (status != 0)
		return status == 1 ? 0 : 2;
	if (operands > 0) {
		options_print_usage(stderr, usage, options, false);
		return 2;
	}
	return -1;
}

/*
 * Command-line options declared as a table (after git's parse-options):
 * the same table drives parsing, `-h` and the usage line, so they never
 * disagree. tests/test_manpages checks each usage line against its man page.
 */
#ifndef SIGTRIG_OPTIONS_H
#define SIGTRIG_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum option_kind {
	OPTION_FLAG,    /* bool *, set to true */
	OPTION_STRING,  /* const char **, last one wins */
	OPTION_LIST,    /* struct option_list *, repeatable */
	OPTION_NUMBER,  /* double *, must parse */
	OPTION_END
};

struct option_list {
	const char **items;
	size_t count;
};

struct option_spec {
	const char *name;      /* long name, without "--" */
	char short_name;       /* 0 for none */
	enum option_kind kind;
	void *value;
	const char *argument;  /* placeholder in usage, e.g. "DIR" */
	const char *help;
};

#define OPTION_SPEC_END { NULL, 0, OPTION_END, NULL, NULL, NULL }

struct command_usage {
	const char *command;   /* "inject", or "pipelines add" */
	const char *operands;  /* appended to the synopsis; may be NULL */
	const char *summary;
};

/*
 * Parses argv[1..] against the table. Non-option arguments are moved, in
 * order, to the front and their count is returned in *operand_count with
 * argv[0..count) holding them. Returns 0; 1 when -h/--help was given (the
 * usage has been printed to stdout); 2 on a usage error (printed to stderr).
 */
int options_parse(const struct command_usage *usage, const struct option_spec *options, int argc,
		  char **argv, int *operand_count);
/*
 * options_parse() for a command that takes no operand: returns -1 when the
 * command goes on, else the exit status it must return (0 after -h/--help,
 * 2 on a usage error or an operand, the usage printed).
 */
int options_parse_no_operands(const struct command_usage *usage, const struct option_spec *options, int argc,
			      char **argv);

/* "usage: sigtrig inject [--dir DIR] ..." on one line, then the option list. */
void options_print_usage(FILE *out, const struct command_usage *usage,
			 const struct option_spec *options, bool with_details);
/* The synopsis alone (no "usage: "), into buf. */
void options_synopsis(const struct command_usage *usage, const struct option_spec *options,
		      char *buf, size_t size);

/* Opens man sigtrig-<command> on a terminal and exits when that worked; returns otherwise. */
void options_show_manual(const struct command_usage *usage);

void option_list_free(struct option_list *list);

#endif

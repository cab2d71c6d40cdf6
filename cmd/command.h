/*
 * What every sigtrig command shares: its entry point and the way it finds
 * and talks to the daemon.
 */
#ifndef SIGTRIG_COMMAND_H
#define SIGTRIG_COMMAND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "options.h"

#define COMMAND(name, summary) int cmd_##name(int argc, char **argv);
#include "commands.def"
#undef COMMAND

struct command_entry {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

const struct command_entry *command_table(size_t *count);
const struct command_entry *command_find(const char *name);

/* Where the daemon is, and how the answer is printed: the options every client command has. */
struct client_options {
	const char *dir;
	const char *socket;
	bool json;
};

#define CLIENT_OPTIONS(options)                                                                     \
	{ "dir", 0, OPTION_STRING, &(options).dir, "DIR",                                           \
	  "stack directory whose sigtrig.conf names the socket (default $SIGTRIG_DIR or ./.sigtrig)" }, \
	{ "socket", 0, OPTION_STRING, &(options).socket, "PATH", "the daemon's control socket" },    \
	{ "json", 0, OPTION_FLAG, &(options).json, NULL, "print JSON for scripts" }

/* The stack directory: --dir, else $SIGTRIG_DIR, else ./.sigtrig. */
const char *client_stack_dir(const struct client_options *options);
/*
 * The socket: --socket; else, unless --dir was given, $SIGTRIG_CONTROL_SOCKET;
 * else control.socket from DIR/sigtrig.conf; else DIR/sigtrigd.sock.
 */
void client_socket_path(const struct client_options *options, char *buf, size_t size);

/*
 * Sends a request and returns an ok response. On failure prints
 * "sigtrig: <command>: <why>" to stderr and returns NULL.
 */
json_t *client_call(const char *command, const struct client_options *options, json_t *request);

/* Runs argv[1] from a table of subcommands ("pipelines add"); usage and exit 2 when unknown. */
int command_run_subcommand(const char *command, const struct command_entry *subcommands, size_t count,
			   int argc, char **argv);

/* A string member of a response object, or "-" when it has none: for tables and reports. */
const char *client_text(const json_t *object, const char *key);

/*
 * Whether a --limit is a whole number from 1 to 10000, the range the
 * daemon lists; when not, says so as "sigtrig: <command>: ..." on stderr.
 */
bool client_limit_is_valid(const char *command, double limit);

/* Prints a JSON value, indented, on stdout. */
void client_print_json(const json_t *value);

/* "sigtrig: <command>: <message>" on stderr; returns 1 for `return command_fail(...)`. */
int command_fail(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

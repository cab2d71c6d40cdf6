/*
 * What the end-to-end suites share: a local stack started with the built
 * `sigtrig up` in a fresh directory, commands run as a user would run
 * them, and direct connections to the stack's PostgreSQL and Redis to
 * check what really happened.
 */
#ifndef SIGTRIG_TEST_HARNESS_H
#define SIGTRIG_TEST_HARNESS_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

struct harness {
	char dir[512];          /* the stack directory */
	char bin[512];          /* where sigtrig, sigtrigd, sigtrig-mockbroker were built */
	struct config config;   /* DIR/sigtrig.conf */
};

extern struct harness harness;

/* mkdtemp + `sigtrig up --dir DIR` with extra arguments; aborts the suite on failure. */
void harness_up(const char *extra_arguments);
/* `sigtrig down`, then removes the directory. */
void harness_down(void);

/*
 * Runs `sigtrig ARGS --dir DIR` through the shell (ARGS is shell text),
 * optionally feeding `input` on stdin; returns the exit status and puts
 * stdout (and stderr, when asked) in malloc'd strings.
 */
int harness_sigtrig(const char *args, const char *input, char **out, char **err);
/* The same, parsing stdout as JSON (NULL when it is not). */
json_t *harness_sigtrig_json(const char *args, int *status);

PGconn *harness_db(void);
redisContext *harness_redis(void);
/* First column of the first row of a query, malloc'd, or NULL. */
char *harness_query_value(PGconn *db, const char *sql, const char *parameter);

/* Polls `sql` (one $1 parameter) until its first value equals `expected`; returns whether it did in time. */
bool harness_wait_for_value(const char *sql, const char *parameter, const char *expected, int timeout_ms);

/* `sigtrig pipelines add --name NAME --ticker TICKER`: the new pipeline's id, malloc'd. */
char *harness_add_pipeline(const char *name, const char *ticker);
/* `sigtrig inject --ticker TICKER` (BULLISH, 90): the signal's id, malloc'd. */
char *harness_inject_one(const char *ticker);
/* The same with the direction (BULLISH, BEARISH, NEUTRAL) and confidence given. */
char *harness_inject_view(const char *ticker, const char *direction, double confidence);
/* A random UUID, lower case, into buf (at least 37 bytes). */
void harness_new_uuid(char *buf);

/* The pid in the file DIR/relative_path (a pid file: the number on its first line), or 0. */
pid_t harness_pid_in_file(const char *relative_path);

#endif

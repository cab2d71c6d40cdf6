/*
 * envelope: how long celery_execute_pipeline_task() takes, the envelope
 * the dispatcher writes for every claimed run (bench/README.md).
 *
 *   envelope [CALLS]
 *
 * Times CALLS calls (100,000 by default) for runs of 0, 1, 3 and 200
 * signals, with UUIDs for every id as the dispatcher has them, and prints
 * the microseconds per call and the envelope's length. No server is
 * needed; the figures depend on the machine and on what else runs on it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "celery.h"

static const size_t signal_counts[] = { 0, 1, 3, 200 };

static double monotonic_seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void random_id(char *id)
{
	uuid_t bytes;
	uuid_generate_random(bytes);
	uuid_unparse_lower(bytes, id);
}

static json_t *random_signal_ids(size_t count)
{
	json_t *ids = json_array();
	for (size_t i = 0; i < count; i++) {
		char id[CELERY_ID_SIZE];
		random_id(id);
		json_array_append_new(ids, json_string(id));
	}
	return ids;
}

/* Times `calls` envelopes of one run; returns -1 when one could not be built. */
static int time_envelopes(size_t signal_count, long calls)
{
	char pipeline_id[CELERY_ID_SIZE], execution_id[CELERY_ID_SIZE], task_id[CELERY_ID_SIZE];
	random_id(pipeline_id);
	random_id(execution_id);
	random_id(task_id);
	json_t *signal_ids = random_signal_ids(signal_count);
	size_t length = 0;
	double start = monotonic_seconds();
	for (long i = 0; i < calls; i++) {
		char err[256];
		/* A task id given, as the dispatcher gives the one it recorded with the claim. */
		char *text = celery_execute_pipeline_task(pipeline_id, signal_ids, execution_id, "celery",
							  task_id, err, sizeof err);
		if (text == NULL) {
			fprintf(stderr, "envelope: %s\n", err);
			json_decref(signal_ids);
			return -1;
		}
		length = strlen(text);
		free(text);
	}
	double elapsed = monotonic_seconds() - start;
	printf("%3zu signals  %8.2f us/call  %6zu bytes\n", signal_count, elapsed / (double)calls * 1e6, length);
	json_decref(signal_ids);
	return 0;
}

int main(int argc, char **argv)
{
	long calls = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
	if (argc > 2 || calls <= 0) {
		fprintf(stderr, "usage: envelope [CALLS]\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof signal_counts / sizeof signal_counts[0]; i++)
		if (time_envelopes(signal_counts[i], calls) != 0)
			return 1;
	return 0;
}

/*
 * Kafka for the local stack: sigtrig-mockbroker, librdkafka's mock cluster
 * in a process of its own, so the topics' contents outlive sigtrigd
 * restarts. Its brokers listen on ports of their own choosing, so the
 * address is learnt from the bootstrap file it writes once it serves.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stack.h"

#define KAFKA_PROGRAM "sigtrig-mockbroker"
#define KAFKA_START_TIMEOUT_MS 10000

static int bootstrap_path(const struct stack *stack, char *buf, size_t size)
{
	return stack_path(stack, buf, size, "run/kafka.bootstrap");
}

/* The first line of the bootstrap file into stack->kafka_address; false while there is none. */
static bool read_bootstrap(struct stack *stack)
{
	char path[PATH_MAX];
	if (bootstrap_path(stack, path, sizeof path) != 0)
		return false;
	char *text = stack_read_file(path);
	if (text == NULL)
		return false;
	text[strcspn(text, "\r\n")] = '\0';
	bool found = text[0] != '\0';
	if (found)
		snprintf(stack->kafka_address, sizeof stack->kafka_address, "%s", text);
	free(text);
	return found;
}

static int kafka_start(struct stack *stack, pid_t *pid, char *err, size_t errsize)
{
	char program[PATH_MAX], bootstrap[PATH_MAX], log[PATH_MAX];
	if (stack_find_program(KAFKA_PROGRAM, program, sizeof program) != 0) {
		snprintf(err, errsize, "%s not found beside sigtrig nor in $PATH", KAFKA_PROGRAM);
		return -1;
	}
	if (bootstrap_path(stack, bootstrap, sizeof bootstrap) != 0 ||
	    stack_path(stack, log, sizeof log, "log/kafka.log") != 0) {
		snprintf(err, errsize, "path too long");
		return -1;
	}
	/* A previous broker's address must not be mistaken for this one's. */
	unlink(bootstrap);
	char partitions[16];
	snprintf(partitions, sizeof partitions, "%d", stack->options->kafka_partitions);
	const char *argv[] = { program, "--bootstrap-file", bootstrap, "--partitions", partitions, NULL };
	const struct stack_command command = { .argv = argv, .output_path = log, .detach = true };
	if (stack_spawn(&command, pid, err, errsize) != 0)
		return -1;
	if (stack_wait_until_ready(stack, *pid, KAFKA_PROGRAM, read_bootstrap, KAFKA_START_TIMEOUT_MS,
				   err, errsize) != 0) {
		stack_signal_if(*pid, KAFKA_PROGRAM, SIGKILL);
		return -1;
	}
	return 0;
}

static int kafka_attach(struct stack *stack, char *err, size_t errsize)
{
	if (read_bootstrap(stack))
		return 0;
	char path[PATH_MAX];
	bootstrap_path(stack, path, sizeof path);
	snprintf(err, errsize, "the broker runs but %s is missing; 'sigtrig down' then 'up' restarts it",
		 path);
	return -1;
}

static void kafka_address(const struct stack *stack, char *buf, size_t size)
{
	snprintf(buf, size, "%s", stack->kafka_address);
}

const struct stack_component stack_kafka = {
	.name = "kafka",
	.program = KAFKA_PROGRAM,
	.own_pid_file = NULL,
	.stop_signal = SIGTERM,
	.needs_conf = false,
	.start = kafka_start,
	.attach = kafka_attach,
	.address = kafka_address,
};

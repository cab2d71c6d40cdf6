/*
 * Redis for the local stack: redis-server in the foreground of a session
 * of its own, data (append-only file, no snapshots) in DIR/redis, on the
 * loopback port kept in stack.json.
 */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "stack.h"

#define REDIS_PROGRAM "redis-server"
#define REDIS_START_TIMEOUT_MS 15000

/* Ready means it answers PING with PONG, not merely that the port accepts. */
static bool redis_answers_ping(struct stack *stack)
{
	struct timeval timeout = { 0, 200000 };
	redisContext *context = redisConnectWithTimeout("127.0.0.1", stack->redis_port, timeout);
	bool answered = false;
	if (context != NULL && context->err == 0) {
		redisSetTimeout(context, timeout);
		redisReply *reply = redisCommand(context, "PING");
		answered = reply != NULL && reply->type == REDIS_REPLY_STATUS &&
			   strcmp(reply->str, "PONG") == 0;
		if (reply != NULL)
			freeReplyObject(reply);
	}
	if (context != NULL)
		redisFree(context);
	return answered;
}

static int redis_start(struct stack *stack, pid_t *pid, char *err, size_t errsize)
{
	char program[PATH_MAX], data[PATH_MAX], log[PATH_MAX];
	if (stack_find_program(REDIS_PROGRAM, program, sizeof program) != 0) {
		snprintf(err, errsize, "%s not found in $PATH (apt-get install redis-server)",
			 REDIS_PROGRAM);
		return -1;
	}
	if (stack_path(stack, data, sizeof data, "redis") != 0 ||
	    stack_path(stack, log, sizeof log, "log/redis.log") != 0) {
		snprintf(err, errsize, "path too long");
		return -1;
	}
	if (!stack_port_is_free(stack->redis_port)) {
		snprintf(err, errsize, "port 127.0.0.1:%d (kept in %s/stack.json) is used by another program",
			 stack->redis_port, stack->dir);
		return -1;
	}
	if (stack_make_dir(data, 0700, err, errsize) != 0)
		return -1;
	char port[16];
	snprintf(port, sizeof port, "%d", stack->redis_port);
	const char *argv[] = { program,	      "--port",	      port,    "--bind",	 "127.0.0.1",
			       "--dir",	      data,	      "--daemonize", "no",	 "--save",
			       "",	      "--appendonly", "yes",   "--protected-mode", "yes",
			       NULL };
	const struct stack_command command = { .argv = argv, .output_path = log, .detach = true };
	if (stack_spawn(&command, pid, err, errsize) != 0)
		return -1;
	if (stack_wait_until_ready(stack, *pid, REDIS_PROGRAM, redis_answers_ping,
				   REDIS_START_TIMEOUT_MS, err, errsize) != 0) {
		stack_signal_if(*pid, REDIS_PROGRAM, SIGKILL);
		return -1;
	}
	return 0;
}

static void redis_address(const struct stack *stack, char *buf, size_t size)
{
	snprintf(buf, size, "127.0.0.1:%d", stack->redis_port);
}

static int *redis_port(struct stack *stack)
{
	return &stack->redis_port;
}

const struct stack_component stack_redis = {
	.name = "redis",
	.program = REDIS_PROGRAM,
	.own_pid_file = NULL,
	.stop_signal = SIGTERM,
	.needs_conf = false,
	.start = redis_start,
	.attach = NULL,
	.address = redis_address,
	.port = redis_port,
};

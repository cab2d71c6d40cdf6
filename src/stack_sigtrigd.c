/*
 * sigtrigd for the local stack: the schema is migrated first, then the
 * daemon started with DIR/sigtrig.conf. It daemonizes itself, writes
 * daemon.pid_file (DIR/sigtrigd.pid) and returns once its control socket
 * listens; 'up' still waits for the socket to accept, in case it did not.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "stack.h"
#include "timeutil.h"

#define DAEMON_PROGRAM "sigtrigd"
#define DAEMON_OWN_PID_FILE "sigtrigd.pid"
#define MIGRATE_TIMEOUT_MS 120000
#define LAUNCH_TIMEOUT_MS 30000
#define SOCKET_TIMEOUT_MS 15000

static bool socket_accepts(struct stack *stack)
{
	return stack_unix_socket_accepts(stack->control_socket);
}

static int wait_for_socket(struct stack *stack, char *err, size_t errsize)
{
	int64_t deadline = time_monotonic_ms() + SOCKET_TIMEOUT_MS;
	while (!socket_accepts(stack)) {
		if (time_monotonic_ms() >= deadline) {
			snprintf(err, errsize, "the control socket %s accepted no connection within %d s",
				 stack->control_socket, SOCKET_TIMEOUT_MS / 1000);
			return -1;
		}
		stack_sleep_ms(50);
	}
	return 0;
}

static int sigtrigd_start(struct stack *stack, pid_t *pid, char *err, size_t errsize)
{
	char program[PATH_MAX], conf[PATH_MAX], log[PATH_MAX], own_pid_file[PATH_MAX];
	if (stack_find_program(DAEMON_PROGRAM, program, sizeof program) != 0) {
		snprintf(err, errsize, "%s not found beside sigtrig nor in $PATH", DAEMON_PROGRAM);
		return -1;
	}
	if (stack_path(stack, conf, sizeof conf, "sigtrig.conf") != 0 ||
	    stack_path(stack, log, sizeof log, "log/sigtrigd.log") != 0 ||
	    stack_path(stack, own_pid_file, sizeof own_pid_file, DAEMON_OWN_PID_FILE) != 0) {
		snprintf(err, errsize, "path too long");
		return -1;
	}
	const char *migrate_argv[] = { program, "-c", conf, "--migrate", NULL };
	const struct stack_command migrate = { .argv = migrate_argv,
					       .output_path = log,
					       .label = "sigtrigd --migrate" };
	if (stack_run(&migrate, MIGRATE_TIMEOUT_MS, err, errsize) != 0)
		return -1;

	/* Not running (the caller checked), so a pid file left behind is stale. */
	unlink(own_pid_file);
	const char *daemon_argv[] = { program, "-c", conf, NULL };
	const struct stack_command launch = { .argv = daemon_argv, .output_path = log, .detach = true };
	if (stack_run(&launch, LAUNCH_TIMEOUT_MS, err, errsize) != 0 ||
	    wait_for_socket(stack, err, errsize) != 0)
		return -1;
	*pid = stack_read_pid_file(own_pid_file);
	if (!stack_process_is(*pid, DAEMON_PROGRAM)) {
		snprintf(err, errsize, "started, but %s names no running %s", own_pid_file,
			 DAEMON_PROGRAM);
		return -1;
	}
	return 0;
}

static void sigtrigd_address(const struct stack *stack, char *buf, size_t size)
{
	snprintf(buf, size, "%s", stack->control_socket);
}

const struct stack_component stack_sigtrigd = {
	.name = "sigtrigd",
	.program = DAEMON_PROGRAM,
	.own_pid_file = DAEMON_OWN_PID_FILE,
	.stop_signal = SIGTERM,
	.needs_conf = true,
	.start = sigtrigd_start,
	.attach = NULL,
	.address = sigtrigd_address,
};

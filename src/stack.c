/*
 * 'sigtrig up' and 'sigtrig down' over the table of components. Each
 * component is found running by its recorded pid (checked against the
 * program it must be), started when it is not, and stopped by that pid
 * only. A lock on DIR/stack.lock keeps two runs from racing on one stack.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stack.h"

/*
 * In the order 'down' stops them: the daemon before the servers it uses.
 * 'up' starts the servers in this order, writes sigtrig.conf, then starts
 * the components that read it.
 */
static const struct stack_component *const components[STACK_COMPONENT_COUNT] = {
	&stack_sigtrigd,
	&stack_kafka,
	&stack_redis,
	&stack_postgres,
};

#define STOP_TIMEOUT_MS 15000
#define KILL_TIMEOUT_MS 5000

static const struct {
	const char *name;
	const char *phrase;
} statuses[] = {
	[STACK_STARTED] = { "started", "started" },
	[STACK_ALREADY_RUNNING] = { "running", "already running" },
	[STACK_RESTARTED] = { "restarted", "restarted" },
	[STACK_SKIPPED] = { "skipped", "not started (--no-daemon)" },
	[STACK_STOPPED] = { "stopped", "stopped" },
	[STACK_KILLED] = { "killed", "killed" },
	[STACK_NOT_RUNNING] = { "not_running", "not running" },
};

const char *stack_status_name(enum stack_status status)
{
	return statuses[status].name;
}

const char *stack_status_phrase(enum stack_status status)
{
	return statuses[status].phrase;
}

static int lock_stack(const struct stack *stack, char *err, size_t errsize)
{
	char path[PATH_MAX];
	if (stack_path(stack, path, sizeof path, "stack.lock") != 0) {
		snprintf(err, errsize, "%s: path too long", stack->dir);
		return -1;
	}
	/* Close-on-exec: a server we start must not hold the lock for its whole life. */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) != 0) {
		snprintf(err, errsize, "cannot lock %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void run_pid_path(const struct stack *stack, const struct stack_component *component,
			 char *buf, size_t size)
{
	stack_path(stack, buf, size, "run/%s.pid", component->name);
}

/* Our record first; else the program's own pid file, should ours be lost. 0: not running. */
static pid_t find_running(const struct stack *stack, const struct stack_component *component)
{
	char path[PATH_MAX];
	run_pid_path(stack, component, path, sizeof path);
	pid_t pid = stack_read_pid_file(path);
	if (stack_process_is(pid, component->program))
		return pid;
	if (component->own_pid_file == NULL ||
	    stack_path(stack, path, sizeof path, "%s", component->own_pid_file) != 0)
		return 0;
	pid = stack_read_pid_file(path);
	return stack_process_is(pid, component->program) ? pid : 0;
}

static void conf_digest_path(const struct stack *stack, const struct stack_component *component,
			     char *buf, size_t size)
{
	stack_path(stack, buf, size, "run/%s.conf-digest", component->name);
}

/*
 * Whether a running component that reads the conf was started with other
 * content than it holds now: a restarted broker's new address, a changed
 * --no-generators, or the user's own edit. Without a record (it was
 * started by hand), only a change made by this run counts.
 */
static bool reads_outdated_conf(const struct stack *stack, const struct stack_component *component,
				bool conf_changed)
{
	char path[PATH_MAX], current[32];
	conf_digest_path(stack, component, path, sizeof path);
	char *recorded = stack_read_file(path);
	if (recorded == NULL)
		return conf_changed;
	stack_conf_digest(stack, current, sizeof current);
	bool outdated = strcmp(recorded, current) != 0;
	free(recorded);
	return outdated;
}

static int record_conf_digest(const struct stack *stack, const struct stack_component *component,
			      char *err, size_t errsize)
{
	char path[PATH_MAX], current[32];
	conf_digest_path(stack, component, path, sizeof path);
	stack_conf_digest(stack, current, sizeof current);
	return stack_write_file_atomic(path, current, 0600, err, errsize);
}

static enum stack_status stop_process(const struct stack_component *component, pid_t pid)
{
	stack_signal_if(pid, component->program, component->stop_signal);
	if (stack_wait_for_exit(pid, component->program, STOP_TIMEOUT_MS))
		return STACK_STOPPED;
	stack_signal_if(pid, component->program, SIGKILL);
	stack_wait_for_exit(pid, component->program, KILL_TIMEOUT_MS);
	return STACK_KILLED;
}

static int fail(const struct stack *stack, const struct stack_component *component, const char *why,
		struct stack_report *report, char *err, size_t errsize)
{
	stack_path(stack, report->failure_log, sizeof report->failure_log, "log/%s.log",
		   component->name);
	if (access(report->failure_log, R_OK) == 0)
		snprintf(err, errsize, "%s: %s (see %s)", component->name, why, report->failure_log);
	else
		snprintf(err, errsize, "%s: %s", component->name, why);
	return -1;
}

/*
 * A port found free when the stack was made can be taken by another
 * program before the server binds it. While no URL with it was given out
 * (this 'up' chose it), another is chosen and kept, and the start tried
 * once more. 1 when a new port was chosen, 0 when the failure was not
 * that, -1 with err when no port could be chosen or kept.
 */
static int move_off_taken_port(struct stack *stack, const struct stack_component *component, char *err,
			       size_t errsize)
{
	int *port = component->port != NULL ? component->port(stack) : NULL;
	if (port == NULL || !stack->ports_chosen_now || stack_port_is_free(*port))
		return 0;
	int taken = *port, chosen;
	if (stack_state_choose_port(stack, &chosen, err, errsize) != 0)
		return -1;
	*port = chosen;
	if (stack_state_save(stack, err, errsize) != 0)
		return -1;
	fprintf(stderr, "sigtrig up: %s: port %d was taken by another program; using %d\n", component->name,
		taken, chosen);
	return 1;
}

static int bring_up(struct stack *stack, const struct stack_component *component, bool conf_changed,
		    struct stack_report *report, char *err, size_t errsize)
{
	struct stack_outcome *outcome = &report->outcomes[report->count];
	memset(outcome, 0, sizeof *outcome);
	outcome->component = component->name;
	bool wanted = !component->needs_conf || stack->options->daemon;
	pid_t pid = find_running(stack, component);
	/* A daemon reading an older conf would talk to a broker that is gone. */
	bool outdated = pid != 0 && component->needs_conf &&
			reads_outdated_conf(stack, component, conf_changed);
	bool restarting = outdated && wanted;
	if (outdated && !wanted)
		report->daemon_conf_outdated = true;
	if (restarting) {
		stop_process(component, pid);
		pid = 0;
	}
	char why[2048];
	if (pid != 0) {
		outcome->status = STACK_ALREADY_RUNNING;
	} else if (!wanted) {
		outcome->status = STACK_SKIPPED;
		report->count++;
		return 0;
	} else {
		int started = component->start(stack, &pid, why, sizeof why);
		if (started != 0) {
			char move_err[512];
			int moved = move_off_taken_port(stack, component, move_err, sizeof move_err);
			if (moved < 0)
				snprintf(why + strlen(why), sizeof why - strlen(why), "; %s", move_err);
			else if (moved == 1)
				started = component->start(stack, &pid, why, sizeof why);
		}
		if (started != 0 ||
		    (component->needs_conf && record_conf_digest(stack, component, why, sizeof why) != 0))
			return fail(stack, component, why, report, err, errsize);
		outcome->status = restarting ? STACK_RESTARTED : STACK_STARTED;
	}
	outcome->pid = pid;
	char path[PATH_MAX];
	run_pid_path(stack, component, path, sizeof path);
	if (stack_write_pid_file(path, pid, why, sizeof why) != 0)
		return fail(stack, component, why, report, err, errsize);
	if (component->attach != NULL && component->attach(stack, why, sizeof why) != 0)
		return fail(stack, component, why, report, err, errsize);
	component->address(stack, outcome->address, sizeof outcome->address);
	report->count++;
	return 0;
}

static int choose_control_socket(struct stack *stack, char *err, size_t errsize)
{
	const char *given = stack->options->control_socket;
	int written;
	if (given == NULL) {
		written = snprintf(stack->control_socket, sizeof stack->control_socket,
				   "%s/sigtrigd.sock", stack->dir);
	} else if (given[0] == '/') {
		written = snprintf(stack->control_socket, sizeof stack->control_socket, "%s", given);
	} else {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof cwd) == NULL) {
			snprintf(err, errsize, "control.socket: getcwd: %s", strerror(errno));
			return -1;
		}
		written = snprintf(stack->control_socket, sizeof stack->control_socket, "%s/%s", cwd,
				   given);
	}
	/* sockaddr_un.sun_path is 108 bytes with its NUL. */
	if (written < 0 || written > 107) {
		snprintf(err, errsize, "control.socket: %s is longer than a Unix socket path may be "
				       "(107 bytes); use --socket or a shorter --dir",
			 stack->control_socket);
		return -1;
	}
	return 0;
}

static int open_stack(struct stack *stack, const char *dir, struct stack_report *report, char *err,
		      size_t errsize)
{
	if (realpath(dir, stack->dir) == NULL) {
		snprintf(err, errsize, "%s: %s", dir, strerror(errno));
		return -1;
	}
	/* Room for the longest name below DIR, so every stack_path succeeds. */
	if (strlen(stack->dir) > PATH_MAX - 128) {
		snprintf(err, errsize, "%s: path too long", dir);
		return -1;
	}
	stack->as_root = geteuid() == 0;
	snprintf(report->dir, sizeof report->dir, "%s", stack->dir);
	stack_path(stack, report->conf_path, sizeof report->conf_path, "sigtrig.conf");
	return 0;
}

static int prepare_up(struct stack *stack, struct stack_report *report, char *err, size_t errsize)
{
	const struct stack_options *options = stack->options;
	if (options->kafka_partitions < 1 || options->kafka_partitions > STACK_PARTITIONS_MAX) {
		snprintf(err, errsize, "kafka: partitions must be 1 to %d", STACK_PARTITIONS_MAX);
		return -1;
	}
	if (stack_make_dir(options->dir, 0700, err, errsize) != 0 ||
	    open_stack(stack, options->dir, report, err, errsize) != 0)
		return -1;
	char run[PATH_MAX], log[PATH_MAX];
	stack_path(stack, run, sizeof run, "run");
	stack_path(stack, log, sizeof log, "log");
	if (stack_make_dir(run, 0700, err, errsize) != 0 || stack_make_dir(log, 0700, err, errsize) != 0)
		return -1;
	return choose_control_socket(stack, err, errsize);
}

int stack_up(const struct stack_options *options, struct stack_report *report, char *err,
	     size_t errsize)
{
	memset(report, 0, sizeof *report);
	struct stack stack;
	memset(&stack, 0, sizeof stack);
	stack.options = options;
	if (prepare_up(&stack, report, err, errsize) != 0)
		return -1;
	int lock = lock_stack(&stack, err, errsize);
	if (lock < 0)
		return -1;
	int status = -1;
	if (stack_state_load(&stack, err, errsize) != 0 || stack_state_save(&stack, err, errsize) != 0)
		goto done;
	for (size_t i = 0; i < STACK_COMPONENT_COUNT; i++)
		if (!components[i]->needs_conf &&
		    bring_up(&stack, components[i], false, report, err, errsize) != 0)
			goto done;
	bool conf_changed = false;
	char why[1024];
	if (stack_conf_write(&stack, &conf_changed, why, sizeof why) != 0) {
		snprintf(err, errsize, "sigtrig.conf: %s", why);
		goto done;
	}
	for (size_t i = 0; i < STACK_COMPONENT_COUNT; i++)
		if (components[i]->needs_conf &&
		    bring_up(&stack, components[i], conf_changed, report, err, errsize) != 0)
			goto done;
	status = 0;
done:
	close(lock);
	return status;
}

int stack_down(const char *dir, struct stack_report *report, char *err, size_t errsize)
{
	memset(report, 0, sizeof *report);
	struct stack_options no_options;
	memset(&no_options, 0, sizeof no_options);
	struct stack stack;
	memset(&stack, 0, sizeof stack);
	stack.options = &no_options;
	struct stat info;
	bool exists = stat(dir, &info) == 0;
	if (exists && open_stack(&stack, dir, report, err, errsize) != 0)
		return -1;
	if (!exists)
		snprintf(report->dir, sizeof report->dir, "%s", dir);
	int lock = exists ? lock_stack(&stack, err, errsize) : -1;
	if (exists && lock < 0)
		return -1;
	for (size_t i = 0; i < STACK_COMPONENT_COUNT; i++) {
		const struct stack_component *component = components[i];
		struct stack_outcome *outcome = &report->outcomes[report->count++];
		memset(outcome, 0, sizeof *outcome);
		outcome->component = component->name;
		outcome->status = STACK_NOT_RUNNING;
		if (!exists)
			continue;
		outcome->pid = find_running(&stack, component);
		if (outcome->pid != 0)
			outcome->status = stop_process(component, outcome->pid);
		char path[PATH_MAX];
		run_pid_path(&stack, component, path, sizeof path);
		unlink(path);
		conf_digest_path(&stack, component, path, sizeof path);
		unlink(path);
	}
	if (lock >= 0)
		close(lock);
	return 0;
}

/*
 * Starting, watching and stopping the stack's processes, and finding free
 * loopback ports for them. A process is identified by its pid together
 * with the program its /proc/PID/cmdline names, so a recycled pid is never
 * taken for ours.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stack.h"
#include "timeutil.h"

void stack_sleep_ms(int ms)
{
	struct timespec pause = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
		;
}

/* In the child: where its output goes and which directory it starts in. */
static int prepare_child(const struct stack_command *command)
{
	if (command->detach && setsid() < 0)
		return -1;
	int input = open("/dev/null", O_RDONLY);
	int output = command->output_path != NULL
			     ? open(command->output_path, O_WRONLY | O_CREAT | O_APPEND, 0644)
			     : open("/dev/null", O_WRONLY);
	if (input < 0 || output < 0)
		return -1;
	if (dup2(input, STDIN_FILENO) < 0 || dup2(output, STDOUT_FILENO) < 0 ||
	    dup2(output, STDERR_FILENO) < 0)
		return -1;
	if (input > STDERR_FILENO)
		close(input);
	if (output > STDERR_FILENO)
		close(output);
	if (command->work_dir != NULL && chdir(command->work_dir) != 0)
		return -1;
	/* The servers must not inherit our blocked or ignored signals. */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	return 0;
}

int stack_spawn(const struct stack_command *command, pid_t *pid, char *err, size_t errsize)
{
	/* The child reports a failed exec through this pipe; a clean exec closes it empty. */
	int report[2];
	if (pipe2(report, O_CLOEXEC) != 0) {
		snprintf(err, errsize, "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid_t child = fork();
	if (child < 0) {
		snprintf(err, errsize, "fork: %s", strerror(errno));
		close(report[0]);
		close(report[1]);
		return -1;
	}
	if (child == 0) {
		close(report[0]);
		if (prepare_child(command) == 0)
			execvp(command->argv[0], (char *const *)command->argv);
		int failure = errno;
		ssize_t ignored = write(report[1], &failure, sizeof failure);
		(void)ignored;
		_exit(127);
	}
	close(report[1]);
	int failure = 0;
	ssize_t got;
	do
		got = read(report[0], &failure, sizeof failure);
	while (got < 0 && errno == EINTR);
	close(report[0]);
	if (got == (ssize_t)sizeof failure) {
		waitpid(child, NULL, 0);
		snprintf(err, errsize, "cannot run %s: %s", command->argv[0], strerror(failure));
		return -1;
	}
	*pid = child;
	return 0;
}

static void describe_exit(const char *program, int status, char *err, size_t errsize)
{
	if (WIFEXITED(status))
		snprintf(err, errsize, "%s exited with status %d", program, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(err, errsize, "%s was killed by signal %d", program, WTERMSIG(status));
	else
		snprintf(err, errsize, "%s ended abnormally", program);
}

int stack_run(const struct stack_command *command, int timeout_ms, char *err, size_t errsize)
{
	pid_t child;
	if (stack_spawn(command, &child, err, errsize) != 0)
		return -1;
	char program[PATH_MAX];
	snprintf(program, sizeof program, "%s", command->argv[0]);
	const char *name = command->label != NULL ? command->label : basename(program);
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	for (;;) {
		int status = 0;
		pid_t done = waitpid(child, &status, WNOHANG);
		if (done == child) {
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				return 0;
			describe_exit(name, status, err, errsize);
			return -1;
		}
		if (done < 0 && errno != EINTR) {
			snprintf(err, errsize, "waiting for %s: %s", name, strerror(errno));
			return -1;
		}
		if (time_monotonic_ms() >= deadline) {
			kill(child, SIGKILL);
			waitpid(child, NULL, 0);
			snprintf(err, errsize, "%s did not finish within %d s", name, timeout_ms / 1000);
			return -1;
		}
		stack_sleep_ms(20);
	}
}

/*
 * The program named by a command line: the first argument's first word
 * (Redis rewrites its title as "redis-server 127.0.0.1:6379" in one
 * argument), by basename. Empty for a zombie or a kernel thread.
 */
static void command_line_program(pid_t pid, char *buf, size_t size)
{
	buf[0] = '\0';
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
	FILE *file = fopen(path, "re");
	if (file == NULL)
		return;
	char line[PATH_MAX];
	size_t length = fread(line, 1, sizeof line - 1, file);
	fclose(file);
	line[length] = '\0';
	line[strcspn(line, " ")] = '\0';
	const char *slash = strrchr(line, '/');
	int written = snprintf(buf, size, "%s", slash != NULL ? slash + 1 : line);
	/* A name cut short could match a program it is not. */
	if (written < 0 || (size_t)written >= size)
		buf[0] = '\0';
}

bool stack_process_is(pid_t pid, const char *program)
{
	if (pid <= 0)
		return false;
	char name[256];
	command_line_program(pid, name, sizeof name);
	return strcmp(name, program) == 0;
}

void stack_signal_if(pid_t pid, const char *program, int sig)
{
	if (stack_process_is(pid, program))
		kill(pid, sig);
}

bool stack_process_has_exited(pid_t pid, const char *program)
{
	/* Our own children would stay zombies until reaped; others' are reaped by their parent. */
	waitpid(pid, NULL, WNOHANG);
	return !stack_process_is(pid, program);
}

bool stack_wait_for_exit(pid_t pid, const char *program, int timeout_ms)
{
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	while (!stack_process_has_exited(pid, program)) {
		if (time_monotonic_ms() >= deadline)
			return false;
		stack_sleep_ms(20);
	}
	return true;
}

static bool is_executable_file(const char *path)
{
	return access(path, X_OK) == 0;
}

int stack_find_program(const char *name, char *buf, size_t size)
{
	/* Beside ourselves first: a build directory's sigtrigd must win over an installed one. */
	char self[PATH_MAX];
	ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
	if (length > 0) {
		self[length] = '\0';
		int written = snprintf(buf, size, "%s/%s", dirname(self), name);
		if (written > 0 && (size_t)written < size && is_executable_file(buf))
			return 0;
	}
	const char *search = getenv("PATH");
	char *copy = strdup(search != NULL ? search : "/usr/local/bin:/usr/bin:/bin");
	if (copy == NULL)
		return -1;
	int found = -1;
	char *saved = NULL;
	for (char *entry = strtok_r(copy, ":", &saved); entry != NULL && found != 0;
	     entry = strtok_r(NULL, ":", &saved)) {
		int written = snprintf(buf, size, "%s/%s", entry, name);
		if (written > 0 && (size_t)written < size && is_executable_file(buf))
			found = 0;
	}
	free(copy);
	return found;
}

static int bind_loopback(int port, int *out_port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* As the servers do: a port held only by closing connections counts as free. */
	int reuse = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t length = sizeof address;
	int status = -1;
	if (bind(fd, (struct sockaddr *)&address, sizeof address) == 0 &&
	    getsockname(fd, (struct sockaddr *)&address, &length) == 0) {
		*out_port = ntohs(address.sin_port);
		status = 0;
	}
	close(fd);
	return status;
}

/* The first port the kernel hands out on its own (bind to 0, outgoing connections). */
static int ephemeral_port_floor(void)
{
	int low = 32768, high = 60999;
	FILE *range = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (range != NULL) {
		if (fscanf(range, "%d %d", &low, &high) != 2)
			low = 32768;
		fclose(range);
	}
	return low;
}

/*
 * A free port below the ephemeral range. A port the kernel picked (bind
 * to 0) is only free until the kernel picks it again: the mock broker,
 * which binds its own port after Redis' and PostgreSQL's were chosen,
 * once got the very port chosen for Redis. Below the range nothing is
 * handed out on its own, so a port found free stays free for us.
 */
int stack_pick_free_port(int *port, char *err, size_t errsize)
{
	int floor = ephemeral_port_floor();
	const int base = 10000;
	if (floor - base > 1000) {
		/*
		 * Each pick draws from the kernel's randomness: a seed of pid and
		 * time repeats across processes (pid + 1 a second later can give
		 * the same XOR) and within one (the second pick of a run started
		 * where the first did), and two stacks starting side by side then
		 * chose the same port.
		 */
		for (int attempt = 0; attempt < 200; attempt++) {
			unsigned draw;
			if (getrandom(&draw, sizeof draw, 0) != (ssize_t)sizeof draw)
				draw = (unsigned)getpid() * 2654435761u ^ (unsigned)time_monotonic_ms() ^ (unsigned)attempt;
			int candidate = base + (int)(draw % (unsigned)(floor - base));
			if (bind_loopback(candidate, port) == 0)
				return 0;
		}
	}
	if (bind_loopback(0, port) != 0) {
		snprintf(err, errsize, "cannot find a free port on 127.0.0.1: %s", strerror(errno));
		return -1;
	}
	return 0;
}

bool stack_port_is_free(int port)
{
	int bound;
	return bind_loopback(port, &bound) == 0;
}

bool stack_unix_socket_accepts(const char *path)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof address.sun_path)
		return false;
	memcpy(address.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool accepted = connect(fd, (struct sockaddr *)&address, sizeof address) == 0;
	close(fd);
	return accepted;
}

int stack_wait_until_ready(struct stack *stack, pid_t pid, const char *program,
			   bool (*ready)(struct stack *stack), int timeout_ms, char *err, size_t errsize)
{
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	for (;;) {
		if (ready(stack))
			return 0;
		if (stack_process_has_exited(pid, program)) {
			snprintf(err, errsize, "%s exited during start-up", program);
			return -1;
		}
		if (time_monotonic_ms() >= deadline) {
			snprintf(err, errsize, "%s (pid %ld) was not ready within %d s", program, (long)pid,
				 timeout_ms / 1000);
			return -1;
		}
		stack_sleep_ms(50);
	}
}

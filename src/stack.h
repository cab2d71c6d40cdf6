/*
 * The local stack behind 'sigtrig up' and 'sigtrig down': a Kafka mock
 * broker, Redis, PostgreSQL and sigtrigd, each a process started under one
 * directory on free loopback ports. Everything lives in that directory:
 *
 *   DIR/sigtrig.conf      written by 'up' (mode 0600, holds the password)
 *   DIR/stack.json        the ports and password chosen once and kept
 *   DIR/run/NAME.pid      the pid 'up' started, so 'down' stops exactly it
 *   DIR/run/kafka.bootstrap        the broker's address, written by the broker
 *   DIR/run/sigtrigd.conf-digest   which sigtrig.conf the running daemon read
 *   DIR/log/NAME.log      each component's output
 *   DIR/redis, DIR/postgres/data   the data, which 'down' leaves alone
 *
 * A recorded pid counts only while /proc/PID/cmdline still names the
 * program we started: a pid reused by another program is never signalled.
 */
#ifndef SIGTRIG_STACK_H
#define SIGTRIG_STACK_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* ---- What the commands use ------------------------------------------- */

/* The topics the mock broker creates: the signals, and where bad ones are parked. */
#define STACK_SIGNALS_TOPIC "trading-signals"
#define STACK_DEAD_LETTER_TOPIC "trading-signals.dlq"
#define STACK_DEFAULT_PARTITIONS 4
#define STACK_PARTITIONS_MAX 1000

struct stack_options {
	const char *dir;             /* may be relative; created when missing */
	const char *control_socket;  /* NULL: DIR/sigtrigd.sock */
	bool generators;             /* false writes generator.mock.enabled = false */
	bool daemon;                 /* false starts only the servers, not sigtrigd */
	int kafka_partitions;        /* of the signals topic; its DLQ has one */
};

enum stack_status {
	STACK_STARTED,
	STACK_ALREADY_RUNNING,
	STACK_RESTARTED,
	STACK_SKIPPED,
	STACK_STOPPED,
	STACK_KILLED,
	STACK_NOT_RUNNING,
};

/* The status as one word for --json, and as a phrase for people. */
const char *stack_status_name(enum stack_status status);
const char *stack_status_phrase(enum stack_status status);

struct stack_outcome {
	const char *component;  /* "kafka", "redis", "postgres", "sigtrigd" */
	enum stack_status status;
	pid_t pid;              /* 0 when there is none */
	char address[512];      /* host:port, URL or socket path; may be empty */
};

#define STACK_COMPONENT_COUNT 4

struct stack_report {
	char dir[PATH_MAX];  /* absolute */
	char conf_path[PATH_MAX];
	struct stack_outcome outcomes[STACK_COMPONENT_COUNT];
	size_t count;
	/* The log of the component that failed, to show its tail; empty when none. */
	char failure_log[PATH_MAX];
	/* 'up --no-daemon' left a sigtrigd running that still reads an older conf. */
	bool daemon_conf_outdated;
};

/*
 * Starts what is not running, leaves alone what is, and rewrites
 * sigtrig.conf; a running sigtrigd is restarted when the conf changed.
 * On failure err holds "<component>: <why>" and the report holds what was
 * done before it.
 */
int stack_up(const struct stack_options *options, struct stack_report *report, char *err,
	     size_t errsize);
/* Stops what 'up' started: sigtrigd, then the broker, Redis, PostgreSQL. Leaves the data. */
int stack_down(const char *dir, struct stack_report *report, char *err, size_t errsize);

/* stack_report.c: one line per component for people, or one JSON object for scripts. */
void stack_report_print(FILE *out, const struct stack_report *report);
json_t *stack_report_json(const struct stack_report *report);

/* ---- Building blocks shared by the stack_*.c files -------------------- */

struct stack {
	char dir[PATH_MAX];              /* absolute, no trailing slash */
	const struct stack_options *options;
	bool as_root;                    /* PostgreSQL must then run as user 'postgres' */
	int redis_port;
	int postgres_port;
	bool ports_chosen_now;           /* by this 'up' (no URL given out yet): they may still change */
	char postgres_password[65];
	char kafka_address[512];         /* the broker's bootstrap list, once known */
	char control_socket[PATH_MAX];   /* absolute */
};

/*
 * One managed process. The table of them (stack.c) is walked in order by
 * 'up' (servers first, then those that need the conf) and by 'down'.
 */
struct stack_component {
	const char *name;          /* also names DIR/run/NAME.pid and DIR/log/NAME.log */
	const char *program;       /* what /proc/PID/cmdline must name */
	const char *own_pid_file;  /* pid file the program keeps itself, relative to DIR; or NULL */
	int stop_signal;           /* the program's clean and quick shutdown */
	bool needs_conf;           /* started only once sigtrig.conf is written */
	/* Starts it and returns once it serves; *pid is the process to watch and stop. */
	int (*start)(struct stack *stack, pid_t *pid, char *err, size_t errsize);
	/* Run after start and when found running, to learn or ensure what 'up' needs; may be NULL. */
	int (*attach)(struct stack *stack, char *err, size_t errsize);
	void (*address)(const struct stack *stack, char *buf, size_t size);
	/* The loopback port it listens on, kept in stack.json; NULL when it picks its own. */
	int *(*port)(struct stack *stack);
};

extern const struct stack_component stack_kafka;
extern const struct stack_component stack_redis;
extern const struct stack_component stack_postgres;
extern const struct stack_component stack_sigtrigd;

/* stack_process.c: starting, watching and stopping processes. */
struct stack_command {
	const char *const *argv;  /* argv[0] is a path, or a name looked up in $PATH */
	const char *output_path;  /* stdout and stderr are appended here; NULL: /dev/null */
	const char *work_dir;     /* NULL: unchanged */
	bool detach;              /* own session: outlives us, deaf to our terminal's signals */
	const char *label;        /* names it in errors; NULL: argv[0]'s basename */
};

/* Starts a command without waiting; fails when it could not be executed. */
int stack_spawn(const struct stack_command *command, pid_t *pid, char *err, size_t errsize);
/* Runs a command to its end; anything but exit status 0 within timeout_ms is an error. */
int stack_run(const struct stack_command *command, int timeout_ms, char *err, size_t errsize);
/* Whether pid is alive and its command line names program (by basename). */
bool stack_process_is(pid_t pid, const char *program);
/* Sends sig only while pid is still program: a recycled pid is left alone. */
void stack_signal_if(pid_t pid, const char *program, int sig);
/* Reaps pid if it is our child; true when it is no longer the program (exited). */
bool stack_process_has_exited(pid_t pid, const char *program);
/* Waits up to timeout_ms for the process to exit; true when it did. */
bool stack_wait_for_exit(pid_t pid, const char *program, int timeout_ms);
/* The program beside the running executable, else in $PATH; -1 when not found. */
int stack_find_program(const char *name, char *buf, size_t size);
int stack_pick_free_port(int *port, char *err, size_t errsize);
bool stack_port_is_free(int port);
bool stack_unix_socket_accepts(const char *path);
void stack_sleep_ms(int ms);
/*
 * Polls ready() every 50 ms until it holds, for up to timeout_ms; fails at
 * once when pid stops being program (it died during start-up).
 */
int stack_wait_until_ready(struct stack *stack, pid_t pid, const char *program,
			   bool (*ready)(struct stack *stack), int timeout_ms, char *err, size_t errsize);

/* stack_files.c: paths and files under DIR. */
/* DIR/<relative> into buf; -1 when it does not fit. */
int stack_path(const struct stack *stack, char *buf, size_t size, const char *relative_format, ...)
	__attribute__((format(printf, 4, 5)));
/* mkdir -p; existing directories are kept as they are. */
int stack_make_dir(const char *path, mode_t mode, char *err, size_t errsize);
/* Writes via a temporary file and rename, so readers never see half a file. */
int stack_write_file_atomic(const char *path, const char *content, mode_t mode, char *err,
			    size_t errsize);
/* The whole file, NUL-terminated, malloc'd; NULL when it cannot be read. */
char *stack_read_file(const char *path);
/* A pid from the first line of a file; 0 when missing or not a pid. */
pid_t stack_read_pid_file(const char *path);
int stack_write_pid_file(const char *path, pid_t pid, char *err, size_t errsize);
/* The last lines of a log, indented, on stderr: the usual first clue when a start fails. */
void stack_print_log_tail(const char *path, int lines);

/* stack_state.c: DIR/stack.json, the choices later runs must repeat. */
int stack_state_load(struct stack *stack, char *err, size_t errsize);
int stack_state_save(const struct stack *stack, char *err, size_t errsize);
/* A free loopback port that is neither the stack's Redis nor its PostgreSQL port, into *port. */
int stack_state_choose_port(const struct stack *stack, int *port, char *err, size_t errsize);

/* stack_conf.c: DIR/sigtrig.conf. *changed tells whether its content differs from before. */
int stack_conf_write(const struct stack *stack, bool *changed, char *err, size_t errsize);
/* A fingerprint of the conf's current content ("" when unreadable), to tell later whether it changed. */
void stack_conf_digest(const struct stack *stack, char *buf, size_t size);

#endif

/*
 * sigtrigd: loads the configuration, starts the roles it was asked for,
 * and serves the control socket on the main thread until SIGTERM/SIGINT.
 * Without -f it detaches, and the parent returns only once the socket
 * listens (or with the reason it could not start), so `sigtrigd && sigtrig
 * status` works in a script.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autoconfig.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "db.h"
#include "kafka.h"
#include "log.h"
#include "metrics_http.h"
#include "time_zone.h"
#include "timeutil.h"
#include "trace_relay.h"

#define DEFAULT_CONFIG_FILE "/etc/sigtrig/sigtrig.conf"

static const char *const role_names[] = {
#define ROLE(name) #name,
#include "roles.def"
#undef ROLE
};

struct role_entry {
	int (*start)(struct daemon *, char *, size_t);
	void (*stop)(struct daemon *);
};

static const struct role_entry role_table[] = {
#define ROLE(name) { name##_start, name##_stop },
#include "roles.def"
#undef ROLE
};

static int wake_pipe[2] = { -1, -1 };
static struct daemon *running_daemon;

static void on_stop_signal(int number)
{
	(void)number;
	running_daemon->stopping = 1;
	int saved = errno;
	ssize_t ignored = write(wake_pipe[1], "x", 1);
	(void)ignored;
	errno = saved;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: sigtrigd [-c FILE] [-f] [--roles LIST] [--socket PATH] [--migrate] [--print-config] [--version]\n"
		     "\n"
		     "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG_FILE ")\n"
		     "  -f, --foreground    stay in the foreground, log to standard error\n"
		     "      --roles LIST    comma-separated: generator,dispatcher,worker,scheduler\n"
		     "      --socket PATH   control socket (overrides control.socket)\n"
		     "      --migrate       apply the PostgreSQL schema migrations and exit\n"
		     "      --print-config  print every configuration key with its default and exit\n"
		     "      --version       print the version and exit\n");
}

/* A commented sigtrig.conf with every key at its default: the reference sigtrig.conf(5) follows. */
static void print_config_reference(void)
{
	size_t count;
	const struct config_key_info *keys = config_keys(&count);
	printf("# sigtrig.conf: every key with its default (sigtrigd --print-config)\n");
	for (size_t i = 0; i < count; i++) {
		char environment[128];
		config_environment_name(keys[i].key, environment, sizeof environment);
		printf("\n# %s\n# environment: %s\n%s = %s\n", keys[i].description, environment, keys[i].key,
		       keys[i].default_value);
	}
}

static int parse_roles(const char *list, unsigned *roles, char *err, size_t errsize)
{
	*roles = 0;
	char *copy = strdup(list);
	char *save = NULL;
	for (char *name = strtok_r(copy, ", ", &save); name != NULL; name = strtok_r(NULL, ", ", &save)) {
		int found = -1;
		for (int i = 0; i < ROLE_COUNT; i++)
			if (strcmp(role_names[i], name) == 0)
				found = i;
		if (found < 0) {
			snprintf(err, errsize, "unknown role '%s' (roles: generator, dispatcher, worker, scheduler)",
				 name);
			free(copy);
			return -1;
		}
		*roles |= 1u << found;
	}
	free(copy);
	if (*roles == 0) {
		snprintf(err, errsize, "no roles given");
		return -1;
	}
	return 0;
}

static int run_migrations(const struct config *config, char *err, size_t errsize)
{
	PGconn *db = db_connect(config->postgres_url, err, errsize);
	if (db == NULL)
		return -1;
	int status = db_migrate(db, err, errsize);
	if (status == 0)
		log_event(LOG_INFO, "schema_migrated", json_pack("{s:i}", "version", db_schema_version(db)));
	PQfinish(db);
	return status;
}

/* Holds a lock on the pid file for the daemon's life: a second daemon on it fails at once. */
static int claim_pid_file(const char *path, char *err, size_t errsize)
{
	if (*path == '\0')
		return 0;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errsize, "pid file %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errsize, "pid file %s is locked: another sigtrigd runs with it", path);
		close(fd);
		return -1;
	}
	char text[32];
	int length = snprintf(text, sizeof text, "%d\n", (int)getpid());
	if (ftruncate(fd, 0) != 0 || write(fd, text, (size_t)length) != length) {
		snprintf(err, errsize, "pid file %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd; /* deliberately kept open */
}

/*
 * Forks; the parent waits on a pipe for the child's verdict. Returns in the
 * child with *ready_fd set; the parent exits.
 */
static void detach(int *ready_fd)
{
	int verdict[2];
	if (pipe2(verdict, O_CLOEXEC) != 0) {
		perror("sigtrigd: pipe");
		exit(1);
	}
	pid_t child = fork();
	if (child < 0) {
		perror("sigtrigd: fork");
		exit(1);
	}
	if (child > 0) {
		close(verdict[1]);
		char message[1024];
		ssize_t got = read(verdict[0], message, sizeof message - 1);
		if (got > 0 && message[0] == '+')
			exit(0);
		if (got > 0) {
			message[got] = '\0';
			fprintf(stderr, "sigtrigd: %s\n", message + 1);
		} else {
			fprintf(stderr, "sigtrigd: the daemon exited during start-up (see its log)\n");
		}
		exit(1);
	}
	close(verdict[0]);
	setsid();
	*ready_fd = verdict[1];
}

static void report_ready(int ready_fd, const char *failure)
{
	if (ready_fd < 0)
		return;
	char message[1024];
	int length = snprintf(message, sizeof message, "%c%s", failure == NULL ? '+' : '-',
			      failure != NULL ? failure : "");
	ssize_t ignored = write(ready_fd, message, (size_t)length);
	(void)ignored;
	close(ready_fd);
}

static int redirect_output(const char *log_file, char *err, size_t errsize)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		close(null);
	}
	int fd = *log_file != '\0' ? open(log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)
				   : open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errsize, "log file %s: %s", log_file, strerror(errno));
		return -1;
	}
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' }, { "foreground", no_argument, NULL, 'f' },
		{ "roles", required_argument, NULL, 'r' },  { "socket", required_argument, NULL, 's' },
		{ "migrate", no_argument, NULL, 'm' },      { "version", no_argument, NULL, 'V' },
		{ "print-config", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL, *roles_text = NULL, *socket_path = NULL;
	bool foreground = false, migrate_only = false;
	int code;
	while ((code = getopt_long(argc, argv, "c:fh", long_options, NULL)) != -1) {
		switch (code) {
		case 'c': config_path = optarg; break;
		case 'f': foreground = true; break;
		case 'r': roles_text = optarg; break;
		case 's': socket_path = optarg; break;
		case 'm': migrate_only = true; break;
		case 'V': printf("sigtrigd %s\n", PACKAGE_VERSION); return 0;
		case 'P': print_config_reference(); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sigtrigd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	static struct daemon daemon;
	running_daemon = &daemon;
	config_init(&daemon.config);
	char err[1024];
	const char *path = config_path != NULL ? config_path : DEFAULT_CONFIG_FILE;
	if ((config_path != NULL || access(path, F_OK) == 0) &&
	    config_load_file(&daemon.config, path, err, sizeof err) != 0) {
		fprintf(stderr, "sigtrigd: %s\n", err);
		return 1;
	}
	daemon.config_path = config_path != NULL || access(path, F_OK) == 0 ? path : NULL;
	if (config_apply_environment(&daemon.config, err, sizeof err) != 0 ||
	    (socket_path != NULL && config_set(&daemon.config, "control.socket", socket_path, err, sizeof err) != 0) ||
	    (roles_text != NULL && config_set(&daemon.config, "daemon.roles", roles_text, err, sizeof err) != 0) ||
	    parse_roles(daemon.config.daemon_roles, &daemon.roles, err, sizeof err) != 0) {
		fprintf(stderr, "sigtrigd: %s\n", err);
		return 1;
	}
	int level = log_level_parse(daemon.config.log_level);
	if (level < 0) {
		fprintf(stderr, "sigtrigd: log.level: '%s' is not debug, info, warn or error\n", daemon.config.log_level);
		return 1;
	}
	log_set_level((enum log_level)level);
	/* Checked here, whatever the roles, so a typo fails at once and not when a scheduler starts. */
	struct time_zone *zone = time_zone_load(daemon.config.scheduler_time_zone, err, sizeof err);
	if (zone == NULL) {
		fprintf(stderr, "sigtrigd: scheduler.time_zone: %s\n", err);
		return 1;
	}
	time_zone_free(zone);

	if (migrate_only) {
		if (run_migrations(&daemon.config, err, sizeof err) != 0) {
			fprintf(stderr, "sigtrigd: %s\n", err);
			return 1;
		}
		return 0;
	}

	int ready_fd = -1;
	if (!foreground) {
		detach(&ready_fd);
		if (redirect_output(daemon.config.daemon_log_file, err, sizeof err) != 0) {
			report_ready(ready_fd, err);
			return 1;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	/* Said where the daemon's log goes: a repeated key is legal, but an edit may not have done what was meant. */
	for (const char *line = daemon.config.load_warnings; line != NULL && *line != '\0';) {
		const char *end = strchr(line, '\n');
		int length = end != NULL ? (int)(end - line) : (int)strlen(line);
		log_msg(LOG_WARN, "config_key_repeated", "%.*s", length, line);
		line += length + (end != NULL);
	}
	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		report_ready(ready_fd, "cannot create the wake-up pipe");
		return 1;
	}
	struct sigaction action = { .sa_handler = on_stop_signal };
	sigemptyset(&action.sa_mask);
	sigaction(SIGTERM, &action, NULL);
	sigaction(SIGINT, &action, NULL);

	int pid_fd = claim_pid_file(daemon.config.daemon_pid_file, err, sizeof err);
	/* metrics.listen that cannot be bound is a start-up failure, like the control socket. */
	struct metrics_http *metrics_listener = NULL;
	bool metrics_failed = pid_fd >= 0 && *daemon.config.metrics_listen != '\0' &&
			      (metrics_listener = metrics_http_start(daemon.config.metrics_listen, err, sizeof err)) == NULL;
	int listen_fd = pid_fd < 0 || metrics_failed ? -1 : control_listen(daemon.config.control_socket, err, sizeof err);
	if (listen_fd < 0) {
		metrics_http_stop(metrics_listener);
		log_msg(LOG_ERROR, "daemon_start_failed", "%s", err);
		report_ready(ready_fd, err);
		if (!foreground || ready_fd < 0)
			fprintf(stderr, "sigtrigd: %s\n", err);
		return 1;
	}
	daemon.started_at = time_now_seconds();
	/* The schema is applied at start when PostgreSQL answers; the roles retry on their own when not. */
	if (run_migrations(&daemon.config, err, sizeof err) != 0)
		log_msg(LOG_WARN, "schema_migration_deferred", "%s", err);
	daemon.producer = kafka_producer_new(&daemon.config, err, sizeof err);
	int started = 0;
	const char *failure = NULL;
	if (daemon.producer == NULL || trace_relay_start(&daemon, err, sizeof err) != 0) {
		failure = err;
	} else {
		for (; started < ROLE_COUNT; started++) {
			if (!daemon_has_role(&daemon, (enum role_id)started))
				continue;
			if (role_table[started].start(&daemon, err, sizeof err) != 0) {
				failure = err;
				break;
			}
		}
	}
	if (failure == NULL) {
		log_event(LOG_INFO, "daemon_started",
			  json_pack("{s:s, s:i, s:s, s:s}", "version", PACKAGE_VERSION, "pid", (int)getpid(),
				    "roles", daemon.config.daemon_roles, "socket", daemon.config.control_socket));
		report_ready(ready_fd, NULL);
		control_serve(&daemon, listen_fd, wake_pipe[0]);
		log_msg(LOG_INFO, "daemon_stopping", "stopping on request");
	} else {
		log_msg(LOG_ERROR, "daemon_start_failed", "%s", failure);
		report_ready(ready_fd, failure);
		if (foreground)
			fprintf(stderr, "sigtrigd: %s\n", failure);
	}
	daemon.stopping = 1;
	while (started-- > 0)
		if (daemon_has_role(&daemon, (enum role_id)started))
			role_table[started].stop(&daemon);
	trace_relay_stop();
	metrics_http_stop(metrics_listener);
	kafka_producer_destroy(daemon.producer, 5000);
	close(listen_fd);
	unlink(daemon.config.control_socket);
	if (pid_fd >= 0 && *daemon.config.daemon_pid_file != '\0')
		unlink(daemon.config.daemon_pid_file);
	config_free(&daemon.config);
	return failure == NULL ? 0 : 1;
}

/*
 * PostgreSQL for the local stack: a cluster of its own in DIR/postgres/data,
 * initialised on first use with a superuser 'sigtrig' whose password is in
 * stack.json, served on 127.0.0.1 with its Unix socket inside DIR.
 *
 * PostgreSQL refuses to run as root, so when we are root the cluster
 * belongs to the 'postgres' user and initdb and pg_ctl run through runuser.
 * That user then needs to reach DIR/postgres and DIR/log/postgres.log.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stack.h"

#define POSTGRES_PROGRAM "postgres"
#define POSTGRES_OWNER "postgres"  /* who runs the server when we are root */
#define POSTGRES_SUPERUSER "sigtrig"
#define POSTGRES_DATABASE "sigtrig"
#define POSTGRES_COMMAND_TIMEOUT_MS 120000
#define RUN_AS_OWNER_ARGS 4

struct postgres_paths {
	char bindir[PATH_MAX];
	char root[PATH_MAX];    /* DIR/postgres: owned by the server's user */
	char data[PATH_MAX];
	char socket[PATH_MAX];
	char log[PATH_MAX];
	char pwfile[PATH_MAX];
};

/* The newest /usr/lib/postgresql/<version>/bin, as Debian installs them side by side. */
static int newest_debian_bindir(char *buf, size_t size)
{
	const char prefix[] = "/usr/lib/postgresql/";
	glob_t found;
	if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &found) != 0)
		return -1;
	double newest = -1;
	for (size_t i = 0; i < found.gl_pathc; i++) {
		double version = strtod(found.gl_pathv[i] + sizeof prefix - 1, NULL);
		if (version > newest) {
			newest = version;
			snprintf(buf, size, "%s", dirname(found.gl_pathv[i]));
		}
	}
	globfree(&found);
	return newest >= 0 ? 0 : -1;
}

static int pg_config_bindir(char *buf, size_t size)
{
	FILE *pipe = popen("pg_config --bindir 2>/dev/null", "r");
	if (pipe == NULL)
		return -1;
	char line[PATH_MAX] = "";
	bool read_line = fgets(line, sizeof line, pipe) != NULL;
	pclose(pipe);
	line[strcspn(line, "\n")] = '\0';
	char pg_ctl[PATH_MAX + 16];
	snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", line);
	if (!read_line || access(pg_ctl, X_OK) != 0)
		return -1;
	snprintf(buf, size, "%s", line);
	return 0;
}

static int find_bindir(char *buf, size_t size, char *err, size_t errsize)
{
	if (newest_debian_bindir(buf, size) == 0 || pg_config_bindir(buf, size) == 0)
		return 0;
	char pg_ctl[PATH_MAX];
	if (stack_find_program("pg_ctl", pg_ctl, sizeof pg_ctl) == 0) {
		snprintf(buf, size, "%s", dirname(pg_ctl));
		return 0;
	}
	snprintf(err, errsize, "pg_ctl not found in /usr/lib/postgresql/*/bin, pg_config --bindir "
			       "nor $PATH (apt-get install postgresql)");
	return -1;
}

/* Whether the 'postgres' user can pass through every directory above `dir`. */
static bool ancestors_searchable(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s", dir);
	for (char *slash = strrchr(path, '/'); slash != NULL && slash != path; slash = strrchr(path, '/')) {
		*slash = '\0';
		struct stat info;
		if (stat(path, &info) != 0 || (info.st_mode & S_IXOTH) == 0)
			return false;
	}
	return true;
}

/*
 * A stack under a closed directory (a clone in /root, which is 0700) keeps
 * PostgreSQL's files where the 'postgres' user can reach them, in
 * RELOCATED_ROOT/<hash of DIR>, with DIR/postgres a symbolic link to them,
 * rather than opening the user's home to everyone.
 */
#define RELOCATED_ROOT "/var/lib/sigtrig/stacks"

static int relocate_root(const struct stack *stack, char *root, size_t size, char *err, size_t errsize)
{
	uint64_t hash = 1469598103934665603ULL;
	for (const unsigned char *c = (const unsigned char *)stack->dir; *c != '\0'; c++)
		hash = (hash ^ *c) * 1099511628211ULL;
	char home[64];
	snprintf(home, sizeof home, RELOCATED_ROOT "/%016llx", (unsigned long long)hash);
	if (stack_make_dir("/var/lib/sigtrig", 0755, err, errsize) != 0 ||
	    stack_make_dir(RELOCATED_ROOT, 0711, err, errsize) != 0 ||
	    stack_make_dir(home, 0711, err, errsize) != 0)
		return -1;
	snprintf(root, size, "%s/postgres", home);
	char link_path[PATH_MAX];
	stack_path(stack, link_path, sizeof link_path, "postgres");
	struct stat info;
	if (lstat(link_path, &info) != 0 && symlink(root, link_path) != 0) {
		snprintf(err, errsize, "cannot link %s to %s: %s", link_path, root, strerror(errno));
		return -1;
	}
	return 0;
}

static int make_paths(const struct stack *stack, struct postgres_paths *paths, char *err,
		      size_t errsize)
{
	if (find_bindir(paths->bindir, sizeof paths->bindir, err, errsize) != 0)
		return -1;
	struct stat info;
	char link_path[PATH_MAX];
	stack_path(stack, link_path, sizeof link_path, "postgres");
	bool relocated = stack->as_root && ((lstat(link_path, &info) == 0 && S_ISLNK(info.st_mode)) ||
					    (lstat(link_path, &info) != 0 && !ancestors_searchable(stack->dir)));
	if (relocated) {
		if (relocate_root(stack, paths->root, sizeof paths->root, err, errsize) != 0)
			return -1;
	} else if (stack_path(stack, paths->root, sizeof paths->root, "postgres") != 0) {
		snprintf(err, errsize, "path too long");
		return -1;
	}
	int length = snprintf(paths->data, sizeof paths->data, "%s/data", paths->root);
	length |= snprintf(paths->socket, sizeof paths->socket, "%s/socket", paths->root);
	length |= snprintf(paths->pwfile, sizeof paths->pwfile, "%s/initdb.pw", paths->root);
	if ((size_t)length >= sizeof paths->data) {
		snprintf(err, errsize, "path too long");
		return -1;
	}
	if (relocated) {
		/* The server's log sits beside its data; DIR/log/postgres.log points at it. */
		if ((size_t)snprintf(paths->log, sizeof paths->log, "%.4000s/postgres.log", paths->root) >=
		    sizeof paths->log) {
			snprintf(err, errsize, "path too long");
			return -1;
		}
		char log_link[PATH_MAX];
		stack_path(stack, log_link, sizeof log_link, "log/postgres.log");
		if (lstat(log_link, &info) != 0 && symlink(paths->log, log_link) != 0) {
			snprintf(err, errsize, "cannot link %s: %s", log_link, strerror(errno));
			return -1;
		}
	} else if (stack_path(stack, paths->log, sizeof paths->log, "log/postgres.log") != 0) {
		snprintf(err, errsize, "path too long");
		return -1;
	}
	return 0;
}

/* Fills argv's start with "runuser -u postgres --" when we are root; returns how many. */
static size_t run_as_owner(const struct stack *stack, const char **argv)
{
	if (!stack->as_root)
		return 0;
	argv[0] = "runuser";
	argv[1] = "-u";
	argv[2] = POSTGRES_OWNER;
	argv[3] = "--";
	return RUN_AS_OWNER_ARGS;
}

static int give_to_owner(const char *path, const struct passwd *owner, char *err, size_t errsize)
{
	if (chown(path, owner->pw_uid, owner->pw_gid) != 0) {
		snprintf(err, errsize, "cannot give %s to user %s: %s", path, POSTGRES_OWNER,
			 strerror(errno));
		return -1;
	}
	return 0;
}

/* Lets others pass through (not list) a directory, so the 'postgres' user reaches inside. */
static void allow_traversal(const char *path)
{
	struct stat info;
	if (stat(path, &info) == 0 && (info.st_mode & S_IXOTH) == 0)
		chmod(path, (info.st_mode & 07777) | S_IXOTH);
}

static int prepare_for_owner(const struct stack *stack, const struct postgres_paths *paths,
			     char *err, size_t errsize)
{
	const struct passwd *owner = getpwnam(POSTGRES_OWNER);
	if (owner == NULL) {
		snprintf(err, errsize, "running as root needs a '%s' user to run the server as",
			 POSTGRES_OWNER);
		return -1;
	}
	char log_dir[PATH_MAX];
	stack_path(stack, log_dir, sizeof log_dir, "log");
	allow_traversal(stack->dir);
	allow_traversal(log_dir);
	if (give_to_owner(paths->root, owner, err, errsize) != 0 ||
	    give_to_owner(paths->socket, owner, err, errsize) != 0 ||
	    give_to_owner(paths->log, owner, err, errsize) != 0)
		return -1;
	/* A directory above DIR may still shut the user out (/root is 0700): say so plainly. */
	const char *argv[] = { "runuser", "-u", POSTGRES_OWNER, "--", "test", "-w", paths->root, NULL };
	const struct stack_command command = { .argv = argv, .label = "runuser" };
	char why[256];
	if (stack_run(&command, 10000, why, sizeof why) != 0) {
		snprintf(err, errsize,
			 "user %s cannot write %s: every directory above it must be searchable by "
			 "others (chmod o+x), or use a --dir elsewhere",
			 POSTGRES_OWNER, paths->root);
		return -1;
	}
	return 0;
}

static int prepare_directories(const struct stack *stack, const struct postgres_paths *paths,
			       char *err, size_t errsize)
{
	if (stack_make_dir(paths->root, 0700, err, errsize) != 0 ||
	    stack_make_dir(paths->socket, 0700, err, errsize) != 0)
		return -1;
	int log = open(paths->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (log < 0) {
		snprintf(err, errsize, "cannot create %s: %s", paths->log, strerror(errno));
		return -1;
	}
	close(log);
	return stack->as_root ? prepare_for_owner(stack, paths, err, errsize) : 0;
}

static int initialise_cluster(const struct stack *stack, const struct postgres_paths *paths,
			      char *err, size_t errsize)
{
	char password_line[128];
	snprintf(password_line, sizeof password_line, "%s\n", stack->postgres_password);
	if (stack_write_file_atomic(paths->pwfile, password_line, 0600, err, errsize) != 0)
		return -1;
	const struct passwd *owner = stack->as_root ? getpwnam(POSTGRES_OWNER) : NULL;
	if (owner != NULL && give_to_owner(paths->pwfile, owner, err, errsize) != 0) {
		unlink(paths->pwfile);
		return -1;
	}
	char initdb[PATH_MAX + 16], pwfile_option[PATH_MAX + 16];
	snprintf(initdb, sizeof initdb, "%s/initdb", paths->bindir);
	snprintf(pwfile_option, sizeof pwfile_option, "--pwfile=%s", paths->pwfile);
	const char *argv[RUN_AS_OWNER_ARGS + 16];
	size_t count = run_as_owner(stack, argv);
	const char *arguments[] = { initdb,
				    "-D",
				    paths->data,
				    "-U",
				    POSTGRES_SUPERUSER,
				    pwfile_option,
				    "--auth-host=scram-sha-256",
				    "--auth-local=trust",
				    "--encoding=UTF8",
				    "--no-locale",
				    NULL };
	memcpy(argv + count, arguments, sizeof arguments);
	/* Its own directory as cwd: root's may be closed to the 'postgres' user. */
	const struct stack_command command = { .argv = argv,
					       .output_path = paths->log,
					       .work_dir = paths->root,
					       .label = "initdb" };
	int status = stack_run(&command, POSTGRES_COMMAND_TIMEOUT_MS, err, errsize);
	unlink(paths->pwfile);
	return status;
}

static int start_server(const struct stack *stack, const struct postgres_paths *paths, char *err,
			size_t errsize)
{
	/* pg_ctl hands -o to a shell: the socket path is quoted, so it may not hold a quote. */
	if (strchr(paths->socket, '\'') != NULL) {
		snprintf(err, errsize, "%s: a path with a single quote cannot be passed to pg_ctl",
			 paths->socket);
		return -1;
	}
	if (strlen(paths->socket) + sizeof "/.s.PGSQL.65535" > 108) {
		snprintf(err, errsize, "%s: too long for a Unix socket directory; use a shorter --dir",
			 paths->socket);
		return -1;
	}
	char pg_ctl[PATH_MAX + 16], server_options[PATH_MAX + 128];
	snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", paths->bindir);
	snprintf(server_options, sizeof server_options, "-p %d -k '%s' -c listen_addresses=127.0.0.1",
		 stack->postgres_port, paths->socket);
	const char *argv[RUN_AS_OWNER_ARGS + 16];
	size_t count = run_as_owner(stack, argv);
	const char *arguments[] = { pg_ctl, "-D",  paths->data, "-l", paths->log, "-o",
				    server_options, "-w", "-t", "60", "start", NULL };
	memcpy(argv + count, arguments, sizeof arguments);
	const struct stack_command command = { .argv = argv,
					       .output_path = paths->log,
					       .work_dir = paths->root,
					       .label = "pg_ctl start" };
	return stack_run(&command, POSTGRES_COMMAND_TIMEOUT_MS, err, errsize);
}

static int postgres_start(struct stack *stack, pid_t *pid, char *err, size_t errsize)
{
	struct postgres_paths paths;
	if (make_paths(stack, &paths, err, errsize) != 0)
		return -1;
	if (!stack_port_is_free(stack->postgres_port)) {
		snprintf(err, errsize, "port 127.0.0.1:%d (kept in %s/stack.json) is used by another program",
			 stack->postgres_port, stack->dir);
		return -1;
	}
	if (prepare_directories(stack, &paths, err, errsize) != 0)
		return -1;
	char version_file[PATH_MAX + 16];
	snprintf(version_file, sizeof version_file, "%s/PG_VERSION", paths.data);
	if (access(version_file, F_OK) != 0 && initialise_cluster(stack, &paths, err, errsize) != 0)
		return -1;
	if (start_server(stack, &paths, err, errsize) != 0)
		return -1;
	/* The postmaster is pg_ctl's grandchild; its pid file's first line names it. */
	char pid_file[PATH_MAX + 32];
	snprintf(pid_file, sizeof pid_file, "%s/postmaster.pid", paths.data);
	*pid = stack_read_pid_file(pid_file);
	if (!stack_process_is(*pid, POSTGRES_PROGRAM)) {
		snprintf(err, errsize, "pg_ctl reported a start but %s names no running postmaster",
			 pid_file);
		return -1;
	}
	return 0;
}

/* Creates the sigtrig database unless it exists: every 'up' makes sure of it. */
static int postgres_attach(struct stack *stack, char *err, size_t errsize)
{
	char port[16];
	snprintf(port, sizeof port, "%d", stack->postgres_port);
	const char *const keys[] = { "host", "port", "user", "password", "dbname", "connect_timeout", NULL };
	const char *const values[] = { "127.0.0.1", port, POSTGRES_SUPERUSER, stack->postgres_password,
				       "postgres", "10", NULL };
	PGconn *connection = PQconnectdbParams(keys, values, 0);
	int status = -1;
	if (PQstatus(connection) != CONNECTION_OK) {
		snprintf(err, errsize, "cannot connect to 127.0.0.1:%d as %s: %s", stack->postgres_port,
			 POSTGRES_SUPERUSER, PQerrorMessage(connection));
		goto done;
	}
	PGresult *found = PQexec(connection, "SELECT 1 FROM pg_database WHERE datname = '"
					     POSTGRES_DATABASE "'");
	bool exists = PQresultStatus(found) == PGRES_TUPLES_OK && PQntuples(found) > 0;
	PQclear(found);
	if (exists) {
		status = 0;
		goto done;
	}
	PGresult *created = PQexec(connection, "CREATE DATABASE " POSTGRES_DATABASE);
	if (PQresultStatus(created) == PGRES_COMMAND_OK)
		status = 0;
	else
		snprintf(err, errsize, "CREATE DATABASE %s: %s", POSTGRES_DATABASE,
			 PQerrorMessage(connection));
	PQclear(created);
done:
	PQfinish(connection);
	/* libpq's messages end in a newline; ours must not. */
	if (status != 0)
		err[strcspn(err, "\n")] = '\0';
	return status;
}

static void postgres_address(const struct stack *stack, char *buf, size_t size)
{
	snprintf(buf, size, "127.0.0.1:%d", stack->postgres_port);
}

/* SIGINT is PostgreSQL's fast shutdown, what 'pg_ctl stop -m fast' sends. */
static int *postgres_port(struct stack *stack)
{
	return &stack->postgres_port;
}

const struct stack_component stack_postgres = {
	.name = "postgres",
	.program = POSTGRES_PROGRAM,
	.own_pid_file = "postgres/data/postmaster.pid",
	.stop_signal = SIGINT,
	.needs_conf = false,
	.start = postgres_start,
	.attach = postgres_attach,
	.address = postgres_address,
	.port = postgres_port,
};

/*
 * 'sigtrig up' and 'sigtrig down' against the real servers: the built
 * sigtrig starts the Kafka mock broker, Redis and PostgreSQL in a fresh
 * directory. sigtrigd is left out (--no-daemon), so this suite checks the
 * stack alone; the end-to-end suites cover the daemon on top of it.
 *
 * Each test makes itself a child subreaper: the servers 'up' leaves behind
 * become our children, so once 'down' stopped them we can reap them and
 * see /proc/PID really gone even where init does not reap orphans.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "stack.h"

#define SERVER_COUNT 3
static const char *const servers[SERVER_COUNT] = { "kafka", "redis", "postgres" };

/* Every stack directory of the run lives in here, so one teardown stops and removes them all. */
static char scratch[PATH_MAX];
static char build_dir[PATH_MAX];
static char stack_dir[PATH_MAX];

/* ---- Running sigtrig ------------------------------------------------- */

static char *read_text(const char *path)
{
	char *text = stack_read_file(path);
	return text != NULL ? text : strdup("");
}

/* Runs the built `sigtrig ARGS...` (NULL-terminated); stdout and stderr come back malloc'd. */
static int run_sigtrig_in(const char *directory, const char *const *args, char **out, char **err)
{
	char program[PATH_MAX + 16], out_path[PATH_MAX + 16], err_path[PATH_MAX + 16];
	snprintf(program, sizeof program, "%s/sigtrig", build_dir);
	snprintf(out_path, sizeof out_path, "%s/test.out", scratch);
	snprintf(err_path, sizeof err_path, "%s/test.err", scratch);
	const char *argv[32] = { program };
	size_t count = 1;
	for (; args[count - 1] != NULL && count < 28; count++)
		argv[count] = args[count - 1];
	if (directory != NULL) {
		argv[count++] = "--dir";
		argv[count++] = directory;
	}
	argv[count] = NULL;
	fflush(NULL);
	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (out_fd < 0 || err_fd < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
			_exit(126);
		execv(program, (char *const *)argv);
		_exit(127);
	}
	int status = 0;
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	*out = read_text(out_path);
	*err = read_text(err_path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs `sigtrig ARGS... --dir DIR`, failing the test with its stderr unless it exits as expected. */
static char *expect_sigtrig_in(const char *directory, const char *const *args, int expected)
{
	char *out = NULL, *err = NULL;
	int status = run_sigtrig_in(directory, args, &out, &err);
	ck_assert_msg(status == expected, "sigtrig %s: exit %d, not %d\n%s%s", args[0], status, expected,
		      out, err);
	free(err);
	return out;
}

static char *expect_sigtrig(const char *const *args, int expected)
{
	return expect_sigtrig_in(stack_dir, args, expected);
}

static void stack_up_servers(void)
{
	const char *const args[] = { "up", "--no-generators", "--no-daemon", NULL };
	free(expect_sigtrig(args, 0));
}

/* ---- Looking at the stack --------------------------------------------- */

static void stack_file(char *buf, size_t size, const char *relative)
{
	snprintf(buf, size, "%s/%s", stack_dir, relative);
}

static pid_t server_pid(const char *server)
{
	char relative[64], path[PATH_MAX + 64];
	snprintf(relative, sizeof relative, "run/%s.pid", server);
	stack_file(path, sizeof path, relative);
	return stack_read_pid_file(path);
}

static void load_conf(struct config *config)
{
	char path[PATH_MAX + 32], err[1024];
	stack_file(path, sizeof path, "sigtrig.conf");
	config_init(config);
	ck_assert_msg(config_load_file(config, path, err, sizeof err) == 0, "%s", err);
}

static void reap_our_orphans(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/*
 * Gone, or a zombie: it exited. A zombie whose parent is PID 1 stays until
 * PID 1 reaps it, and in a container PID 1 may never do.
 */
static bool process_is_gone(pid_t pid)
{
	reap_our_orphans();
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	char *stat = read_text(path);
	if (stat == NULL)
		return true;
	const char *after_name = strrchr(stat, ')');
	bool exited = after_name == NULL || after_name[1] == '\0' || after_name[2] == 'Z' || after_name[2] == 'X';
	free(stat);
	return exited;
}

static bool redis_answers_ping(const char *url)
{
	int port = 0;
	ck_assert_int_eq(sscanf(url, "redis://127.0.0.1:%d/0", &port), 1);
	redisContext *context = redisConnect("127.0.0.1", port);
	bool answered = false;
	if (context != NULL && context->err == 0) {
		redisReply *reply = redisCommand(context, "PING");
		answered = reply != NULL && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
		if (reply != NULL)
			freeReplyObject(reply);
	}
	if (context != NULL)
		redisFree(context);
	return answered;
}

static bool postgres_selects_one(const char *url)
{
	PGconn *connection = PQconnectdb(url);
	bool selected = false;
	if (PQstatus(connection) == CONNECTION_OK) {
		PGresult *result = PQexec(connection, "SELECT 1");
		selected = PQresultStatus(result) == PGRES_TUPLES_OK && strcmp(PQgetvalue(result, 0, 0), "1") == 0;
		PQclear(result);
	} else {
		fprintf(stderr, "postgres: %s", PQerrorMessage(connection));
	}
	PQfinish(connection);
	return selected;
}

static rd_kafka_t *kafka_producer(const char *bootstrap, void (*delivered)(rd_kafka_t *, const rd_kafka_message_t *, void *))
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err), RD_KAFKA_CONF_OK);
	if (delivered != NULL)
		rd_kafka_conf_set_dr_msg_cb(conf, delivered);
	rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	ck_assert_msg(producer != NULL, "%s", err);
	return producer;
}

/* The topic's partition count from the broker's metadata; -1 when it has no such topic. */
static int kafka_partitions(const char *bootstrap, const char *topic)
{
	rd_kafka_t *producer = kafka_producer(bootstrap, NULL);
	rd_kafka_topic_t *handle = rd_kafka_topic_new(producer, topic, NULL);
	const struct rd_kafka_metadata *metadata = NULL;
	int partitions = -1;
	if (rd_kafka_metadata(producer, 0, handle, &metadata, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
			partitions = metadata->topics[0].partition_cnt;
		rd_kafka_metadata_destroy(metadata);
	}
	rd_kafka_topic_destroy(handle);
	rd_kafka_destroy(producer);
	return partitions;
}

static void remember_delivery(rd_kafka_t *producer, const rd_kafka_message_t *message, void *opaque)
{
	(void)producer;
	(void)opaque;
	*(rd_kafka_resp_err_t *)message->_private = message->err;
}

static bool kafka_accepts_a_message(const char *bootstrap)
{
	rd_kafka_t *producer = kafka_producer(bootstrap, remember_delivery);
	rd_kafka_resp_err_t delivery = RD_KAFKA_RESP_ERR__IN_PROGRESS;
	rd_kafka_resp_err_t sent = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(STACK_SIGNALS_TOPIC),
						     RD_KAFKA_V_VALUE("ping", 4), RD_KAFKA_V_OPAQUE(&delivery),
						     RD_KAFKA_V_END);
	if (sent == RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_flush(producer, 10000);
	rd_kafka_destroy(producer);
	return sent == RD_KAFKA_RESP_ERR_NO_ERROR && delivery == RD_KAFKA_RESP_ERR_NO_ERROR;
}

static int count_occurrences(const char *text, const char *word)
{
	int count = 0;
	for (const char *at = strstr(text, word); at != NULL; at = strstr(at + 1, word))
		count++;
	return count;
}

/* ---- Fixtures ----------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *walk)
{
	(void)info;
	(void)flag;
	(void)walk;
	remove(path);
	return 0;
}

static void make_scratch(void)
{
	const char *built = getenv("SIGTRIG_BUILD_DIR");
	snprintf(build_dir, sizeof build_dir, "%s", built != NULL ? built : ".");
	snprintf(scratch, sizeof scratch, "/tmp/sigtrig-test-stack-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(scratch));
	/* Searchable by others: as root, PostgreSQL runs as 'postgres' and must reach inside. */
	chmod(scratch, 0711);
}

/* Stops whatever a failed test left running, then removes every directory. */
static void remove_scratch(void)
{
	DIR *listing = opendir(scratch);
	struct dirent *entry;
	while (listing != NULL && (entry = readdir(listing)) != NULL) {
		char path[PATH_MAX + 256];
		snprintf(path, sizeof path, "%s/%s", scratch, entry->d_name);
		struct stat info;
		if (entry->d_name[0] == '.' || stat(path, &info) != 0 || !S_ISDIR(info.st_mode))
			continue;
		char *out = NULL, *err = NULL;
		const char *const args[] = { "down", NULL };
		run_sigtrig_in(path, args, &out, &err);
		free(out);
		free(err);
	}
	if (listing != NULL)
		closedir(listing);
	nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_stack_dir(void)
{
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	int length = snprintf(stack_dir, sizeof stack_dir, "%s/stack-XXXXXX", scratch);
	ck_assert(length > 0 && (size_t)length < sizeof stack_dir);
	ck_assert_ptr_nonnull(mkdtemp(stack_dir));
}

/* ---- Tests ---------------------------------------------------------------- */

START_TEST(test_up_starts_kafka_redis_and_postgres_and_writes_the_conf)
{
	stack_up_servers();
	char path[PATH_MAX + 32];
	stack_file(path, sizeof path, "sigtrig.conf");
	struct stat info;
	ck_assert_int_eq(stat(path, &info), 0);
	ck_assert_int_eq(info.st_mode & 0777, 0600);
	char *text = read_text(path);
	const char *const keys[] = { "kafka.bootstrap_servers", "kafka.topic", "kafka.fetch_wait_max_ms",
				     "redis.url", "postgres.url", "control.socket", "daemon.pid_file",
				     "daemon.log_file", "generator.mock.enabled", "kafka.session.timeout.ms",
				     "kafka.heartbeat.interval.ms" };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		char line_start[128];
		snprintf(line_start, sizeof line_start, "\n%s = ", keys[i]);
		ck_assert_msg(strstr(text, line_start) != NULL, "sigtrig.conf lacks %s", keys[i]);
	}
	free(text);

	struct config config;
	load_conf(&config);
	ck_assert_str_eq(config.kafka_topic, STACK_SIGNALS_TOPIC);
	ck_assert_int_eq(config.kafka_fetch_wait_max_ms, 2);
	ck_assert(!config.generator_mock_enabled);
	char socket_path[PATH_MAX + 32];
	stack_file(socket_path, sizeof socket_path, "sigtrigd.sock");
	ck_assert_str_eq(config.control_socket, socket_path);
	ck_assert_msg(redis_answers_ping(config.redis_url), "Redis does not answer PING");
	ck_assert_msg(postgres_selects_one(config.postgres_url), "PostgreSQL refuses the conf's URL");
	ck_assert_int_gt(kafka_partitions(config.kafka_bootstrap_servers, STACK_SIGNALS_TOPIC), 1);
	ck_assert_int_eq(kafka_partitions(config.kafka_bootstrap_servers, STACK_DEAD_LETTER_TOPIC), 1);
	ck_assert_msg(kafka_accepts_a_message(config.kafka_bootstrap_servers), "Kafka refused a message");
	config_free(&config);
}
END_TEST

START_TEST(test_up_twice_leaves_the_running_servers_alone)
{
	stack_up_servers();
	pid_t before[SERVER_COUNT];
	for (size_t i = 0; i < SERVER_COUNT; i++)
		before[i] = server_pid(servers[i]);
	const char *const args[] = { "up", "--no-generators", "--no-daemon", NULL };
	char *out = expect_sigtrig(args, 0);
	ck_assert_int_eq(count_occurrences(out, "already running"), SERVER_COUNT);
	free(out);
	for (size_t i = 0; i < SERVER_COUNT; i++) {
		ck_assert_int_gt(before[i], 0);
		ck_assert_int_eq(server_pid(servers[i]), before[i]);
	}
}
END_TEST

START_TEST(test_up_restarts_dead_servers_and_points_the_conf_at_the_new_broker)
{
	stack_up_servers();
	struct config before;
	load_conf(&before);
	pid_t kafka = server_pid("kafka"), redis = server_pid("redis"), postgres = server_pid("postgres");
	kill(kafka, SIGKILL);
	kill(redis, SIGKILL);
	ck_assert(stack_wait_for_exit(kafka, "sigtrig-mockbroker", 5000));
	ck_assert(stack_wait_for_exit(redis, "redis-server", 5000));

	stack_up_servers();
	ck_assert_int_ne(server_pid("kafka"), kafka);
	ck_assert_int_ne(server_pid("redis"), redis);
	ck_assert_int_eq(server_pid("postgres"), postgres);
	struct config after;
	load_conf(&after);
	/* Redis keeps its port; the new broker's address is whatever it chose. */
	ck_assert_str_eq(after.redis_url, before.redis_url);
	ck_assert_msg(redis_answers_ping(after.redis_url), "the restarted Redis does not answer");
	ck_assert_int_gt(kafka_partitions(after.kafka_bootstrap_servers, STACK_SIGNALS_TOPIC), 1);
	config_free(&before);
	config_free(&after);
}
END_TEST

START_TEST(test_up_keeps_the_users_settings_below_the_marker)
{
	stack_up_servers();
	char path[PATH_MAX + 32];
	stack_file(path, sizeof path, "sigtrig.conf");
	FILE *conf = fopen(path, "a");
	ck_assert_ptr_nonnull(conf);
	fputs("generator.mock.rate = 7\n", conf);
	fclose(conf);
	stack_up_servers();
	struct config config;
	load_conf(&config);
	ck_assert_double_eq(config.generator_mock_rate, 7);
	config_free(&config);
}
END_TEST

START_TEST(test_down_stops_every_process_and_keeps_the_data)
{
	stack_up_servers();
	pid_t pids[SERVER_COUNT];
	for (size_t i = 0; i < SERVER_COUNT; i++)
		pids[i] = server_pid(servers[i]);
	const char *const down[] = { "down", NULL };
	char *out = expect_sigtrig(down, 0);
	ck_assert_int_eq(count_occurrences(out, "stopped"), SERVER_COUNT);
	free(out);
	for (size_t i = 0; i < SERVER_COUNT; i++) {
		ck_assert_msg(process_is_gone(pids[i]), "%s (pid %ld) still runs", servers[i], (long)pids[i]);
		ck_assert_int_eq(server_pid(servers[i]), 0);
	}
	char path[PATH_MAX + 32];
	stack_file(path, sizeof path, "postgres/data/PG_VERSION");
	ck_assert_int_eq(access(path, F_OK), 0);
	stack_file(path, sizeof path, "redis");
	ck_assert_int_eq(access(path, F_OK), 0);

	out = expect_sigtrig(down, 0);
	ck_assert_int_eq(count_occurrences(out, "not running"), STACK_COMPONENT_COUNT);
	free(out);
}
END_TEST

START_TEST(test_down_never_signals_a_pid_that_is_not_ours)
{
	/* Pid files naming this test process: a pid recycled by another program. */
	char run[PATH_MAX + 16], path[PATH_MAX + 64], err[256];
	stack_file(run, sizeof run, "run");
	ck_assert_int_eq(mkdir(run, 0700), 0);
	for (size_t i = 0; i < SERVER_COUNT; i++) {
		snprintf(path, sizeof path, "%s/%s.pid", run, servers[i]);
		ck_assert_int_eq(stack_write_pid_file(path, getpid(), err, sizeof err), 0);
	}
	const char *const down[] = { "down", NULL };
	char *out = expect_sigtrig(down, 0);
	ck_assert_int_eq(count_occurrences(out, "not running"), STACK_COMPONENT_COUNT);
	free(out);
}
END_TEST

START_TEST(test_down_of_a_missing_directory_says_not_running)
{
	char missing[PATH_MAX + 16];
	stack_file(missing, sizeof missing, "never-up");
	const char *const down[] = { "down", NULL };
	char *out = expect_sigtrig_in(missing, down, 0);
	ck_assert_int_eq(count_occurrences(out, "not running"), STACK_COMPONENT_COUNT);
	ck_assert_int_eq(access(missing, F_OK), -1);
	free(out);
}
END_TEST

START_TEST(test_up_rejects_an_unknown_option_with_status_2)
{
	char *out = NULL, *err = NULL;
	const char *const args[] = { "up", "--bogus", NULL };
	ck_assert_int_eq(run_sigtrig_in(stack_dir, args, &out, &err), 2);
	ck_assert_ptr_nonnull(strstr(err, "usage: sigtrig up"));
	free(out);
	free(err);
}
END_TEST

/*
 * As root, PostgreSQL runs as 'postgres', which cannot pass through a
 * closed directory above the stack (a clone in /root): its files then live
 * under /var/lib/sigtrig and DIR/postgres links to them.
 */
START_TEST(test_up_under_a_closed_directory_relocates_postgres_and_works)
{
	if (geteuid() != 0) {
		printf("not root: PostgreSQL runs as this user, nothing is relocated\n");
		return;
	}
	/* scratch is a short mkdtemp path: these fit, and the checks say so. */
	char closed[PATH_MAX];
	int written = snprintf(closed, sizeof closed, "%.*s/closed-XXXXXX", PATH_MAX - 64, scratch);
	ck_assert(written > 0 && (size_t)written < sizeof closed);
	ck_assert_ptr_nonnull(mkdtemp(closed));
	ck_assert_int_eq(chmod(closed, 0700), 0);
	written = snprintf(stack_dir, sizeof stack_dir, "%.*s/stack", PATH_MAX - 16, closed);
	ck_assert(written > 0 && (size_t)written < sizeof stack_dir);
	stack_up_servers();
	char path[PATH_MAX + 32];
	stack_file(path, sizeof path, "postgres");
	struct stat info;
	ck_assert_int_eq(lstat(path, &info), 0);
	ck_assert_msg(S_ISLNK(info.st_mode), "%s is not a link to the relocated cluster", path);
	char target[PATH_MAX];
	ssize_t length = readlink(path, target, sizeof target - 1);
	ck_assert_int_gt(length, 0);
	target[length] = '\0';
	ck_assert_msg(strncmp(target, "/var/lib/sigtrig/stacks/", 24) == 0, "relocated to %s", target);
	struct config config;
	load_conf(&config);
	ck_assert_msg(postgres_selects_one(config.postgres_url), "PostgreSQL refuses the conf's URL");
	config_free(&config);
	/* The directory above stays closed: nothing was opened to everyone. */
	ck_assert_int_eq(stat(closed, &info), 0);
	ck_assert_int_eq(info.st_mode & 0777, 0700);
	const char *const down[] = { "down", NULL };
	free(expect_sigtrig(down, 0));
	/* The link target is removed with the scratch directory's stack by nobody: clean it here. */
	char command[PATH_MAX + 32];
	snprintf(command, sizeof command, "rm -rf '%.*s'", (int)(strrchr(target, '/') - target), target);
	ck_assert_int_eq(system(command), 0);
}
END_TEST

/* Ports the kernel hands out on its own (the mock broker's) can never collide with the ones up picks. */
/* Listens on a loopback port, as another program would; its port into *port. */
static int hold_a_port(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	socklen_t length = sizeof address;
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&address, &length), 0);
	*port = ntohs(address.sin_port);
	return fd;
}

static void write_stack_state(const char *json)
{
	char path[PATH_MAX + 32];
	stack_file(path, sizeof path, "stack.json");
	FILE *file = fopen(path, "w");
	ck_assert_ptr_nonnull(file);
	fputs(json, file);
	fclose(file);
}

START_TEST(test_up_moves_off_a_port_it_chose_when_another_program_takes_it)
{
	int taken;
	int holder = hold_a_port(&taken);
	/* What a first 'up' leaves when it stops after choosing Redis' port: no URL given out yet. */
	char state[128];
	snprintf(state, sizeof state, "{\"redis_port\": %d}\n", taken);
	write_stack_state(state);
	stack_up_servers();
	struct config config;
	load_conf(&config);
	ck_assert_msg(redis_answers_ping(config.redis_url), "Redis does not answer PING at %s", config.redis_url);
	char taken_suffix[32];
	snprintf(taken_suffix, sizeof taken_suffix, ":%d", taken);
	ck_assert_msg(strstr(config.redis_url, taken_suffix) == NULL, "%s still names the taken port", config.redis_url);
	/* The new port is kept, so the next 'up' gives the same URL. */
	char path[PATH_MAX + 32];
	stack_file(path, sizeof path, "stack.json");
	json_t *kept = json_load_file(path, 0, NULL);
	ck_assert_ptr_nonnull(kept);
	char kept_suffix[32];
	snprintf(kept_suffix, sizeof kept_suffix, ":%d",
		 (int)json_integer_value(json_object_get(kept, "redis_port")));
	ck_assert_msg(strstr(config.redis_url, kept_suffix) != NULL, "%s is not the kept port", config.redis_url);
	json_decref(kept);
	config_free(&config);
	close(holder);
}
END_TEST

START_TEST(test_up_keeps_a_port_it_gave_out_and_says_who_took_it)
{
	int taken, postgres_port;
	int holder = hold_a_port(&taken);
	char err[256];
	ck_assert_int_eq(stack_pick_free_port(&postgres_port, err, sizeof err), 0);
	/* Both ports known from an earlier 'up': URLs with them may be in use; they must not change. */
	char state[160];
	snprintf(state, sizeof state, "{\"redis_port\": %d, \"postgres_port\": %d}\n", taken, postgres_port);
	write_stack_state(state);
	const char *const args[] = { "up", "--no-generators", "--no-daemon", NULL };
	char *out = NULL, *errors = NULL;
	int status = run_sigtrig_in(stack_dir, args, &out, &errors);
	ck_assert_int_ne(status, 0);
	ck_assert_msg(strstr(errors, "is used by another program") != NULL, "%s", errors);
	free(out);
	free(errors);
	close(holder);
}
END_TEST

START_TEST(test_free_ports_are_picked_below_the_ephemeral_range)
{
	int low = 32768, high = 60999;
	FILE *range = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	ck_assert_ptr_nonnull(range);
	ck_assert_int_eq(fscanf(range, "%d %d", &low, &high), 2);
	fclose(range);
	for (int i = 0; i < 20; i++) {
		int port = 0;
		char err[256];
		ck_assert_int_eq(stack_pick_free_port(&port, err, sizeof err), 0);
		ck_assert_msg(port >= 10000 && port < low, "port %d is not in [10000, %d)", port, low);
		ck_assert(stack_port_is_free(port));
	}
}
END_TEST

static Suite *stack_suite(void)
{
	Suite *suite = suite_create("stack");
	TCase *servers_case = tcase_create("servers");
	tcase_set_timeout(servers_case, 120);
	tcase_add_unchecked_fixture(servers_case, make_scratch, remove_scratch);
	tcase_add_checked_fixture(servers_case, make_stack_dir, NULL);
	tcase_add_test(servers_case, test_up_starts_kafka_redis_and_postgres_and_writes_the_conf);
	tcase_add_test(servers_case, test_up_twice_leaves_the_running_servers_alone);
	tcase_add_test(servers_case, test_up_restarts_dead_servers_and_points_the_conf_at_the_new_broker);
	tcase_add_test(servers_case, test_up_keeps_the_users_settings_below_the_marker);
	tcase_add_test(servers_case, test_free_ports_are_picked_below_the_ephemeral_range);
	tcase_add_test(servers_case, test_up_moves_off_a_port_it_chose_when_another_program_takes_it);
	tcase_add_test(servers_case, test_up_keeps_a_port_it_gave_out_and_says_who_took_it);
	tcase_add_test(servers_case, test_down_stops_every_process_and_keeps_the_data);
	tcase_add_test(servers_case, test_down_never_signals_a_pid_that_is_not_ours);
	tcase_add_test(servers_case, test_down_of_a_missing_directory_says_not_running);
	tcase_add_test(servers_case, test_up_rejects_an_unknown_option_with_status_2);
	tcase_add_test(servers_case, test_up_under_a_closed_directory_relocates_postgres_and_works);
	suite_add_tcase(suite, servers_case);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(stack_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

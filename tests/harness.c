#include "harness.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "db.h"
#include "redis_client.h"
#include "timeutil.h"

struct harness harness;

static char *read_all(FILE *file)
{
	size_t capacity = 4096, used = 0;
	char *text = malloc(capacity);
	size_t got;
	while (text != NULL && (got = fread(text + used, 1, capacity - used - 1, file)) > 0) {
		used += got;
		if (capacity - used < 1024) {
			capacity *= 2;
			text = realloc(text, capacity);
		}
	}
	if (text != NULL)
		text[used] = '\0';
	return text;
}

static char *slurp(const char *path)
{
	FILE *file = fopen(path, "r");
	if (file == NULL)
		return strdup("");
	char *text = read_all(file);
	fclose(file);
	return text;
}

int harness_sigtrig(const char *args, const char *input, char **out, char **err)
{
	char input_path[600], out_path[600], err_path[600];
	snprintf(input_path, sizeof input_path, "%s/.test-input", harness.dir);
	snprintf(out_path, sizeof out_path, "%s/.test-stdout", harness.dir);
	snprintf(err_path, sizeof err_path, "%s/.test-stderr", harness.dir);
	if (input != NULL) {
		FILE *file = fopen(input_path, "w");
		ck_assert_ptr_nonnull(file);
		fputs(input, file);
		fclose(file);
	}
	char command[8192];
	snprintf(command, sizeof command, "'%s/sigtrig' %s --dir '%s' <%s >'%s' 2>'%s'", harness.bin, args,
		 harness.dir, input != NULL ? input_path : "/dev/null", out_path, err_path);
	int status = system(command);
	if (out != NULL)
		*out = slurp(out_path);
	if (err != NULL)
		*err = slurp(err_path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

json_t *harness_sigtrig_json(const char *args, int *status)
{
	char *out = NULL, *err = NULL;
	*status = harness_sigtrig(args, NULL, &out, &err);
	json_t *value = json_loads(out, JSON_DECODE_ANY, NULL);
	if (value == NULL)
		fprintf(stderr, "sigtrig %s: not JSON (exit %d): %s %s\n", args, *status, out, err);
	free(out);
	free(err);
	return value;
}

void harness_up(const char *extra_arguments)
{
	const char *build = getenv("SIGTRIG_BUILD_DIR");
	snprintf(harness.bin, sizeof harness.bin, "%s", build != NULL ? build : ".");
	const char *tmp = getenv("TMPDIR");
	snprintf(harness.dir, sizeof harness.dir, "%s/sigtrig-test-XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(harness.dir) == NULL) {
		perror("mkdtemp");
		abort();
	}
	char args[1024];
	snprintf(args, sizeof args, "up %s", extra_arguments != NULL ? extra_arguments : "");
	char *out = NULL, *err = NULL;
	int status = harness_sigtrig(args, NULL, &out, &err);
	if (status != 0) {
		fprintf(stderr, "sigtrig up failed (%d):\n%s\n%s\n", status, out, err);
		abort();
	}
	free(out);
	free(err);
	config_init(&harness.config);
	char path[600], reason[512];
	snprintf(path, sizeof path, "%s/sigtrig.conf", harness.dir);
	if (config_load_file(&harness.config, path, reason, sizeof reason) != 0) {
		fprintf(stderr, "%s\n", reason);
		abort();
	}
}

void harness_down(void)
{
	char *out = NULL, *err = NULL;
	int status = harness_sigtrig("down", NULL, &out, &err);
	if (status != 0)
		fprintf(stderr, "sigtrig down failed (%d): %s %s\n", status, out, err);
	free(out);
	free(err);
	config_free(&harness.config);
	if (getenv("SIGTRIG_KEEP_TEST_DIR") == NULL) {
		char command[700];
		snprintf(command, sizeof command, "rm -rf '%s'", harness.dir);
		if (system(command) != 0)
			fprintf(stderr, "could not remove %s\n", harness.dir);
	}
}

PGconn *harness_db(void)
{
	char err[512];
	PGconn *db = db_connect(harness.config.postgres_url, err, sizeof err);
	if (db == NULL)
		ck_abort_msg("postgres: %s", err);
	return db;
}

redisContext *harness_redis(void)
{
	char err[512];
	redisContext *redis = redis_connect_url(harness.config.redis_url, 5000, err, sizeof err);
	if (redis == NULL)
		ck_abort_msg("redis: %s", err);
	return redis;
}

char *harness_query_value(PGconn *db, const char *sql, const char *parameter)
{
	const char *values[] = { parameter };
	PGresult *result = PQexecParams(db, sql, parameter != NULL ? 1 : 0, NULL, values, NULL, NULL, 0);
	char *value = NULL;
	if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) > 0 && !PQgetisnull(result, 0, 0))
		value = strdup(PQgetvalue(result, 0, 0));
	else if (PQresultStatus(result) != PGRES_TUPLES_OK)
		fprintf(stderr, "query failed: %s", PQresultErrorMessage(result));
	PQclear(result);
	return value;
}

bool harness_wait_for_value(const char *sql, const char *parameter, const char *expected, int timeout_ms)
{
	PGconn *db = harness_db();
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	bool matched = false;
	char *last = NULL;
	while (!matched && time_monotonic_ms() < deadline) {
		free(last);
		last = harness_query_value(db, sql, parameter);
		matched = last != NULL && strcmp(last, expected) == 0;
		if (!matched) {
			struct timespec pause = { 0, 50 * 1000000L };
			nanosleep(&pause, NULL);
		}
	}
	if (!matched) {
		fprintf(stderr, "waited %d ms for '%s' (param %s), last value '%s'; the daemon's last log lines:\n",
			timeout_ms, expected, parameter != NULL ? parameter : "-", last != NULL ? last : "(none)");
		char command[700];
		snprintf(command, sizeof command, "tail -n 30 '%s/log/sigtrigd.log' >&2", harness.dir);
		if (system(command) != 0)
			fprintf(stderr, "(no daemon log)\n");
	}
	free(last);
	PQfinish(db);
	return matched;
}

char *harness_add_pipeline(const char *name, const char *ticker)
{
	char args[256];
	snprintf(args, sizeof args, "pipelines add --json --name %s --ticker %s", name, ticker);
	int status;
	json_t *pipeline = harness_sigtrig_json(args, &status);
	ck_assert_int_eq(status, 0);
	ck_assert_ptr_nonnull(pipeline);
	char *id = strdup(json_string_value(json_object_get(pipeline, "id")));
	ck_assert_int_eq(strlen(id), 36);
	json_decref(pipeline);
	return id;
}

char *harness_inject_one(const char *ticker) { return harness_inject_view(ticker, "BULLISH", 90); }

char *harness_inject_view(const char *ticker, const char *direction, double confidence)
{
	char args[256], *out = NULL, *err = NULL;
	snprintf(args, sizeof args, "inject --ticker %s --signal %s --confidence %g", ticker, direction, confidence);
	int status = harness_sigtrig(args, NULL, &out, &err);
	ck_assert_msg(status == 0, "inject failed: %s", err);
	out[strcspn(out, "\n")] = '\0';
	ck_assert_int_eq(strlen(out), 36);
	free(err);
	return out;
}

void harness_new_uuid(char *buf)
{
	uuid_t id;
	uuid_generate_random(id);
	uuid_unparse_lower(id, buf);
}

pid_t harness_pid_in_file(const char *relative_path)
{
	char path[700];
	snprintf(path, sizeof path, "%s/%s", harness.dir, relative_path);
	FILE *file = fopen(path, "r");
	long pid = 0;
	if (file != NULL) {
		if (fscanf(file, "%ld", &pid) != 1)
			pid = 0;
		fclose(file);
	}
	return (pid_t)pid;
}

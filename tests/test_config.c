/* sigtrig.conf: the key table, defaults, the file parser, environment overrides, redaction. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* Writes `text` to a fresh temporary file and returns its malloc'd path. */
static char *write_temp_config(const char *text)
{
	char *path = strdup("/tmp/sigtrig-test-config-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	FILE *file = fdopen(fd, "w");
	ck_assert_ptr_nonnull(file);
	fputs(text, file);
	ck_assert_int_eq(fclose(file), 0);
	return path;
}

static void remove_temp_config(char *path)
{
	unlink(path);
	free(path);
}

/* Loads `text` into a fresh default config; returns the status, err filled. */
static int load_text(struct config *config, const char *text, char *err, size_t errsize,
		     char **path_out)
{
	char *path = write_temp_config(text);
	config_init(config);
	int status = config_load_file(config, path, err, errsize);
	if (path_out != NULL)
		*path_out = path;
	else
		remove_temp_config(path);
	return status;
}

static const struct config_key_info *find_key(const char *key)
{
	size_t count;
	const struct config_key_info *keys = config_keys(&count);
	for (size_t i = 0; i < count; i++)
		if (strcmp(keys[i].key, key) == 0)
			return &keys[i];
	return NULL;
}

/* ---- the key table and defaults ---- */

START_TEST(test_every_default_parses_and_reads_back_unchanged)
{
	size_t count;
	const struct config_key_info *keys = config_keys(&count);
	ck_assert_uint_ge(count, 20);
	struct config config;
	config_init(&config);
	for (size_t i = 0; i < count; i++) {
		char text[1024];
		ck_assert_ptr_nonnull(config_get_text(&config, keys[i].key, text, sizeof text));
		ck_assert_msg(strcmp(text, keys[i].default_value) == 0, "%s: default '%s' reads back as '%s'",
			      keys[i].key, keys[i].default_value, text);
		char err[256] = "";
		ck_assert_msg(config_set(&config, keys[i].key, keys[i].default_value, err, sizeof err) == 0,
			      "%s", err);
		ck_assert_ptr_nonnull(keys[i].description);
		ck_assert_str_ne(keys[i].description, "");
	}
	config_free(&config);
}
END_TEST

START_TEST(test_numeric_defaults_lie_within_their_bounds)
{
	size_t count;
	const struct config_key_info *keys = config_keys(&count);
	for (size_t i = 0; i < count; i++) {
		if (keys[i].type != CONFIG_INT && keys[i].type != CONFIG_DOUBLE)
			continue;
		double value = strtod(keys[i].default_value, NULL);
		ck_assert_msg(keys[i].minimum <= value && value <= keys[i].maximum, "%s", keys[i].key);
	}
}
END_TEST

START_TEST(test_keys_are_unique)
{
	size_t count;
	const struct config_key_info *keys = config_keys(&count);
	for (size_t i = 0; i < count; i++)
		for (size_t j = i + 1; j < count; j++)
			ck_assert_str_ne(keys[i].key, keys[j].key);
}
END_TEST

START_TEST(test_defaults_land_in_struct_fields)
{
	struct config config;
	config_init(&config);
	ck_assert_str_eq(config.kafka_bootstrap_servers, "127.0.0.1:9092");
	ck_assert_str_eq(config.kafka_topic, "trading-signals");
	ck_assert_str_eq(config.kafka_group, "trigger-dispatcher");
	ck_assert_int_eq(config.kafka_fetch_wait_max_ms, 100);
	ck_assert_str_eq(config.redis_url, "redis://127.0.0.1:6379/0");
	ck_assert_str_eq(config.redis_queue, "celery");
	ck_assert_str_eq(config.postgres_url, "postgresql://sigtrig@127.0.0.1:5432/sigtrig");
	ck_assert_str_eq(config.control_socket, "/run/sigtrig/sigtrigd.sock");
	ck_assert_str_eq(config.daemon_roles, "generator,dispatcher,worker,scheduler");
	ck_assert_str_eq(config.daemon_log_file, "");
	ck_assert_str_eq(config.daemon_pid_file, "");
	ck_assert_str_eq(config.log_level, "info");
	ck_assert(config.generator_mock_enabled);
	ck_assert(config.generator_mock_rate == 1.0);
	ck_assert_str_eq(config.generator_mock_tickers, "AAPL,MSFT,GOOGL,AMZN,NVDA,TSLA");
	ck_assert_int_eq(config.dispatcher_batch_max_signals, 20);
	ck_assert_int_eq(config.dispatcher_batch_max_wait_ms, 500);
	ck_assert_int_eq(config.dispatcher_cache_refresh_s, 30);
	ck_assert_int_eq(config.worker_concurrency, 2);
	ck_assert_int_eq(config.worker_visibility_timeout_s, 3600);
	ck_assert_int_eq(config.worker_result_expires_s, 86400);
	ck_assert_uint_eq(config.kafka_property_count, 0);
	config_free(&config);
}
END_TEST

/* ---- config_set ---- */

START_TEST(test_set_accepts_every_boolean_spelling)
{
	const char *truths[] = { "true", "yes", "1", "on" };
	const char *falsehoods[] = { "false", "no", "0", "off" };
	struct config config;
	config_init(&config);
	char err[256];
	for (size_t i = 0; i < 4; i++) {
		ck_assert_int_eq(config_set(&config, "generator.mock.enabled", falsehoods[i], err, sizeof err), 0);
		ck_assert(!config.generator_mock_enabled);
		ck_assert_int_eq(config_set(&config, "generator.mock.enabled", truths[i], err, sizeof err), 0);
		ck_assert(config.generator_mock_enabled);
	}
	config_free(&config);
}
END_TEST

START_TEST(test_set_enforces_inclusive_bounds)
{
	struct config config;
	config_init(&config);
	char err[256];
	ck_assert_int_eq(config_set(&config, "worker.concurrency", "1", err, sizeof err), 0);
	ck_assert_int_eq(config_set(&config, "worker.concurrency", "256", err, sizeof err), 0);
	ck_assert_int_eq(config.worker_concurrency, 256);
	ck_assert_int_eq(config_set(&config, "worker.concurrency", "257", err, sizeof err), -1);
	ck_assert_str_eq(err, "worker.concurrency: 257 is out of range [1, 256]");
	ck_assert_int_eq(config_set(&config, "worker.concurrency", "0", err, sizeof err), -1);
	ck_assert_int_eq(config.worker_concurrency, 256);
	ck_assert_int_eq(config_set(&config, "dispatcher.batch_max_wait_ms", "0", err, sizeof err), 0);
	ck_assert_int_eq(config_set(&config, "generator.mock.rate", "0.001", err, sizeof err), 0);
	ck_assert_int_eq(config_set(&config, "generator.mock.rate", "0.0009", err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "out of range"));
	ck_assert_int_eq(config_set(&config, "generator.mock.rate", "nan", err, sizeof err), -1);
	ck_assert_int_eq(config_set(&config, "generator.mock.rate", "inf", err, sizeof err), -1);
	ck_assert(config.generator_mock_rate == 0.001);
	config_free(&config);
}
END_TEST

START_TEST(test_set_rejects_unknown_key)
{
	struct config config;
	config_init(&config);
	char err[256];
	ck_assert_int_eq(config_set(&config, "redis.uri", "redis://h", err, sizeof err), -1);
	ck_assert_str_eq(err, "unknown key 'redis.uri'");
	config_free(&config);
}
END_TEST

/* ---- config_load_file ---- */

START_TEST(test_load_file_skips_comments_blank_lines_and_whitespace)
{
	struct config config;
	char err[512] = "";
	int status = load_text(&config,
			       "# sigtrig.conf\n"
			       "\n"
			       "   # indented comment\n"
			       "\t\n"
			       "  redis.url   =   redis://cache:6380/2  \n"
			       "worker.concurrency=4\n"
			       "\tgenerator.mock.enabled\t= off\n"
			       "generator.mock.rate = 2.5\n"
			       "daemon.log_file =\n"
			       "kafka.topic = signals = v2\n"
			       "log.level = debug",
			       err, sizeof err, NULL);
	ck_assert_msg(status == 0, "%s", err);
	ck_assert_str_eq(config.redis_url, "redis://cache:6380/2");
	ck_assert_int_eq(config.worker_concurrency, 4);
	ck_assert(!config.generator_mock_enabled);
	ck_assert(config.generator_mock_rate == 2.5);
	ck_assert_str_eq(config.daemon_log_file, "");
	/* Only the first '=' separates key and value. */
	ck_assert_str_eq(config.kafka_topic, "signals = v2");
	/* The last line counts without its newline. */
	ck_assert_str_eq(config.log_level, "debug");
	/* Keys not in the file keep their defaults. */
	ck_assert_str_eq(config.redis_queue, "celery");
	config_free(&config);
}
END_TEST

START_TEST(test_later_line_overrides_earlier_one)
{
	struct config config;
	char err[512] = "";
	char *path;
	ck_assert_int_eq(load_text(&config, "redis.queue = a\nworker.concurrency = 3\nredis.queue = b\n", err, sizeof err,
				   &path),
			 0);
	ck_assert_str_eq(config.redis_queue, "b");
	/* Legal, and said: the file and both lines, once. */
	char expected[600];
	snprintf(expected, sizeof expected, "%s:3: redis.queue is set again (first at line 1); this value counts\n",
		 path);
	ck_assert_ptr_nonnull(config.load_warnings);
	ck_assert_str_eq(config.load_warnings, expected);
	config_free(&config);
	remove_temp_config(path);
	/* A file that sets each key once has nothing to say. */
	ck_assert_int_eq(load_text(&config, "redis.queue = a\nworker.concurrency = 3\n", err, sizeof err, NULL), 0);
	ck_assert_ptr_null(config.load_warnings);
	config_free(&config);
}
END_TEST

struct bad_file {
	const char *text;
	int line;
	const char *reason;
};

static const struct bad_file bad_files[] = {
	{ "redis.url = redis://h\nno.such.key = 1\n", 2, "unknown key 'no.such.key'" },
	{ "# comment\n\nredis.url redis://h\n", 3, "expected 'key = value'" },
	{ "worker.concurrency = four\n", 1, "worker.concurrency: 'four' is not a whole number" },
	{ "worker.concurrency = 4x\n", 1, "worker.concurrency: '4x' is not a whole number" },
	{ "worker.concurrency =\n", 1, "worker.concurrency: '' is not a whole number" },
	{ "worker.concurrency = 99999999999999999999999\n", 1, "is not a whole number" },
	{ "\n\n\n\nworker.concurrency = 1000\n", 5, "worker.concurrency: 1000 is out of range [1, 256]" },
	{ "dispatcher.batch_max_signals = -1\n", 1, "out of range" },
	{ "generator.mock.enabled = maybe\n", 1, "generator.mock.enabled: 'maybe' is not a boolean" },
	{ "generator.mock.rate = fast\n", 1, "generator.mock.rate: 'fast' is not a number" },
	{ "generator.mock.rate = 1e999\n", 1, "is not a number" },
	{ "generator.mock.rate = 100001\n", 1, "out of range" },
	{ "= value\n", 1, "unknown key ''" },
};

START_TEST(test_load_file_error_names_file_and_line)
{
	const struct bad_file *bad = &bad_files[_i];
	struct config config;
	char err[512] = "";
	char *path;
	ck_assert_int_eq(load_text(&config, bad->text, err, sizeof err, &path), -1);
	char prefix[256];
	snprintf(prefix, sizeof prefix, "%s:%d: ", path, bad->line);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "'%s' does not start with '%s'", err,
		      prefix);
	ck_assert_msg(strstr(err, bad->reason) != NULL, "'%s' does not say '%s'", err, bad->reason);
	config_free(&config);
	remove_temp_config(path);
}
END_TEST

START_TEST(test_load_file_refuses_over_long_line)
{
	size_t length = 5000;
	char *text = malloc(length + 32);
	strcpy(text, "redis.queue = ");
	memset(text + strlen(text), 'q', length);
	strcpy(text + 14 + length, "\n");
	struct config config;
	char err[512] = "";
	char *path;
	ck_assert_int_eq(load_text(&config, text, err, sizeof err, &path), -1);
	char expected[256];
	snprintf(expected, sizeof expected, "%s:1: line too long", path);
	ck_assert_str_eq(err, expected);
	config_free(&config);
	remove_temp_config(path);
	free(text);
}
END_TEST

START_TEST(test_load_missing_file_names_it)
{
	struct config config;
	config_init(&config);
	char err[512] = "";
	ck_assert_int_eq(config_load_file(&config, "/nonexistent/sigtrig.conf", err, sizeof err), -1);
	ck_assert_str_eq(err, "/nonexistent/sigtrig.conf: No such file or directory");
	config_free(&config);
}
END_TEST

/* ---- environment ---- */

START_TEST(test_environment_name_upper_cases_and_replaces_dots)
{
	char name[128];
	config_environment_name("redis.url", name, sizeof name);
	ck_assert_str_eq(name, "SIGTRIG_REDIS_URL");
	config_environment_name("generator.mock.enabled", name, sizeof name);
	ck_assert_str_eq(name, "SIGTRIG_GENERATOR_MOCK_ENABLED");
	config_environment_name("dispatcher.batch_max_wait_ms", name, sizeof name);
	ck_assert_str_eq(name, "SIGTRIG_DISPATCHER_BATCH_MAX_WAIT_MS");
	char small[12];
	config_environment_name("redis.url", small, sizeof small);
	ck_assert_str_eq(small, "SIGTRIG_RED");
}
END_TEST

START_TEST(test_environment_overrides_file_values)
{
	struct config config;
	char err[512] = "";
	ck_assert_int_eq(load_text(&config, "redis.url = redis://from-file:1/0\nworker.concurrency = 3\n",
				   err, sizeof err, NULL),
			 0);
	setenv("SIGTRIG_REDIS_URL", "redis://from-env:2/1", 1);
	setenv("SIGTRIG_GENERATOR_MOCK_ENABLED", "no", 1);
	ck_assert_int_eq(config_apply_environment(&config, err, sizeof err), 0);
	ck_assert_str_eq(config.redis_url, "redis://from-env:2/1");
	ck_assert(!config.generator_mock_enabled);
	ck_assert_int_eq(config.worker_concurrency, 3);
	unsetenv("SIGTRIG_REDIS_URL");
	unsetenv("SIGTRIG_GENERATOR_MOCK_ENABLED");
	config_free(&config);
}
END_TEST

START_TEST(test_bad_environment_value_names_variable)
{
	struct config config;
	config_init(&config);
	char err[512] = "";
	setenv("SIGTRIG_WORKER_CONCURRENCY", "lots", 1);
	ck_assert_int_eq(config_apply_environment(&config, err, sizeof err), -1);
	ck_assert_str_eq(err, "environment SIGTRIG_WORKER_CONCURRENCY: worker.concurrency: 'lots' is not a whole number");
	ck_assert_int_eq(config.worker_concurrency, 2);
	unsetenv("SIGTRIG_WORKER_CONCURRENCY");
	config_free(&config);
}
END_TEST

START_TEST(test_every_key_can_be_set_from_environment)
{
	size_t count;
	const struct config_key_info *keys = config_keys(&count);
	struct config config;
	config_init(&config);
	for (size_t i = 0; i < count; i++) {
		char name[128];
		config_environment_name(keys[i].key, name, sizeof name);
		/* A value different from every default, valid for its type. */
		const char *value = keys[i].type == CONFIG_STRING ? "from-env"
				    : keys[i].type == CONFIG_BOOL ? "false"
								  : NULL;
		char number[32];
		if (value == NULL) {
			snprintf(number, sizeof number, "%.0f", keys[i].maximum);
			value = number;
		}
		setenv(name, value, 1);
		char err[512] = "";
		ck_assert_msg(config_apply_environment(&config, err, sizeof err) == 0, "%s", err);
		char text[256];
		config_get_text(&config, keys[i].key, text, sizeof text);
		ck_assert_msg(strcmp(text, value) == 0, "%s from %s: '%s'", keys[i].key, name, text);
		unsetenv(name);
	}
	config_free(&config);
}
END_TEST

/* ---- librdkafka passthrough ---- */

START_TEST(test_unknown_kafka_property_is_passed_through)
{
	struct config config;
	char err[512] = "";
	ck_assert_int_eq(load_text(&config,
				   "kafka.security.protocol = SASL_SSL\n"
				   "kafka.sasl.mechanism = PLAIN\n"
				   "kafka.topic = mine\n"
				   "kafka.security.protocol = SSL\n",
				   err, sizeof err, NULL),
			 0);
	/* sigtrig's own kafka.* keys go to their fields, not to librdkafka. */
	ck_assert_str_eq(config.kafka_topic, "mine");
	ck_assert_uint_eq(config.kafka_property_count, 2);
	ck_assert_str_eq(config.kafka_properties[0].name, "security.protocol");
	ck_assert_str_eq(config.kafka_properties[0].value, "SSL"); /* set twice: the last wins */
	ck_assert_str_eq(config.kafka_properties[1].name, "sasl.mechanism");
	ck_assert_str_eq(config.kafka_properties[1].value, "PLAIN");
	config_free(&config);
}
END_TEST

START_TEST(test_kafka_property_without_dot_is_passed_through)
{
	/* librdkafka has common properties without a dot (acks, debug, retries);
	 * config.h promises every kafka.<property> sigtrig does not know is passed on. */
	struct config config;
	config_init(&config);
	char err[512] = "";
	ck_assert_msg(config_set(&config, "kafka.acks", "all", err, sizeof err) == 0, "%s", err);
	ck_assert_msg(config_set(&config, "kafka.debug", "broker,topic", err, sizeof err) == 0, "%s", err);
	ck_assert_uint_eq(config.kafka_property_count, 2);
	ck_assert_str_eq(config.kafka_properties[0].name, "acks");
	ck_assert_str_eq(config.kafka_properties[1].name, "debug");
	config_free(&config);
}
END_TEST

START_TEST(test_empty_kafka_property_name_is_refused)
{
	struct config config;
	config_init(&config);
	char err[512] = "";
	ck_assert_int_eq(config_set(&config, "kafka.", "x", err, sizeof err), -1);
	ck_assert_uint_eq(config.kafka_property_count, 0);
	config_free(&config);
}
END_TEST

/* ---- reading values back ---- */

START_TEST(test_get_text_formats_each_type)
{
	struct config config;
	config_init(&config);
	char err[256], buf[256];
	ck_assert_int_eq(config_set(&config, "generator.mock.rate", "0.25", err, sizeof err), 0);
	ck_assert_str_eq(config_get_text(&config, "generator.mock.rate", buf, sizeof buf), "0.25");
	ck_assert_int_eq(config_set(&config, "generator.mock.enabled", "off", err, sizeof err), 0);
	ck_assert_str_eq(config_get_text(&config, "generator.mock.enabled", buf, sizeof buf), "false");
	ck_assert_int_eq(config_set(&config, "worker.concurrency", "7", err, sizeof err), 0);
	ck_assert_str_eq(config_get_text(&config, "worker.concurrency", buf, sizeof buf), "7");
	ck_assert_str_eq(config_get_text(&config, "redis.queue", buf, sizeof buf), "celery");
	ck_assert_ptr_eq(config_get_text(&config, "redis.queue", buf, sizeof buf), buf);
	ck_assert_ptr_null(config_get_text(&config, "no.such.key", buf, sizeof buf));
	ck_assert_ptr_null(config_get_text(&config, "kafka.security.protocol", buf, sizeof buf));
	config_free(&config);
}
END_TEST

START_TEST(test_key_info_describes_types_and_bounds)
{
	const struct config_key_info *info = find_key("worker.concurrency");
	ck_assert_ptr_nonnull(info);
	ck_assert_int_eq(info->type, CONFIG_INT);
	ck_assert(info->minimum == 1 && info->maximum == 256);
	ck_assert_int_eq(find_key("redis.url")->type, CONFIG_STRING);
	ck_assert_int_eq(find_key("generator.mock.enabled")->type, CONFIG_BOOL);
	ck_assert_int_eq(find_key("generator.mock.rate")->type, CONFIG_DOUBLE);
	ck_assert_ptr_null(find_key("kafka"));
}
END_TEST

/* ---- redaction ---- */

struct redaction {
	const char *input;
	const char *expected;
};

static const struct redaction redactions[] = {
	{ "redis://:secret@h:1/0", "redis://:***@h:1/0" },
	{ "postgresql://u:pw@h/db", "postgresql://u:***@h/db" },
	{ "postgresql://u:pw@h:5432/db?sslmode=require", "postgresql://u:***@h:5432/db?sslmode=require" },
	{ "redis://user:p@ss@h:6379", "redis://user:***@h:6379" },
	{ "postgresql://sigtrig@127.0.0.1:5432/sigtrig", "postgresql://sigtrig@127.0.0.1:5432/sigtrig" },
	{ "redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0" },
	{ "redis://h:6379/0?x=a@b", "redis://h:6379/0?x=a@b" },
	{ "host=db user=u password=xyz dbname=d", "host=db user=u password=*** dbname=d" },
	{ "password=xyz", "password=***" },
	{ "postgresql://h/db?user=u&password=xyz&sslmode=require",
	  "postgresql://h/db?user=u&password=***&sslmode=require" },
	{ "", "" },
	{ "/run/sigtrig/sigtrigd.sock", "/run/sigtrig/sigtrigd.sock" },
};

START_TEST(test_redact_url_masks_password)
{
	const struct redaction *r = &redactions[_i];
	char buf[512];
	config_redact_url(r->input, buf, sizeof buf);
	ck_assert_str_eq(buf, r->expected);
}
END_TEST

START_TEST(test_redact_url_never_leaks_password_when_truncated)
{
	/* The buffer cuts the URL inside its password, before the '@'. */
	char buf[16];
	config_redact_url("redis://:topsecretvalue@host:1/0", buf, sizeof buf);
	ck_assert_uint_lt(strlen(buf), sizeof buf);
	ck_assert_msg(strstr(buf, "topsec") == NULL, "'%s' shows part of the password", buf);
}
END_TEST

START_TEST(test_config_json_masks_every_password)
{
	struct config config;
	char err[512] = "";
	ck_assert_int_eq(load_text(&config,
				   "redis.url = redis://:hunter2@cache:6379/0\n"
				   "postgres.url = postgresql://u:pgsecret@db/sigtrig\n"
				   "kafka.sasl.password = kafkasecret\n"
				   "kafka.ssl.key.password = keysecret\n"
				   "kafka.ssl.key.pem = PEMSECRET\n"
				   "kafka.sasl.username = alice\n",
				   err, sizeof err, NULL),
			 0);
	json_t *object = config_to_json(&config);
	char *text = json_dumps(object, JSON_COMPACT);
	ck_assert_msg(strstr(text, "hunter2") == NULL, "%s", text);
	ck_assert_msg(strstr(text, "pgsecret") == NULL, "%s", text);
	ck_assert_msg(strstr(text, "kafkasecret") == NULL, "%s", text);
	ck_assert_msg(strstr(text, "keysecret") == NULL, "%s", text);
	ck_assert_msg(strstr(text, "PEMSECRET") == NULL, "%s", text);
	ck_assert_str_eq(json_string_value(json_object_get(object, "redis.url")), "redis://:***@cache:6379/0");
	ck_assert_str_eq(json_string_value(json_object_get(object, "postgres.url")),
			 "postgresql://u:***@db/sigtrig");
	ck_assert_str_eq(json_string_value(json_object_get(object, "kafka.sasl.password")), "***");
	ck_assert_str_eq(json_string_value(json_object_get(object, "kafka.sasl.username")), "alice");
	free(text);
	json_decref(object);
	config_free(&config);
}
END_TEST

START_TEST(test_config_json_lists_every_key_as_text)
{
	size_t count;
	const struct config_key_info *keys = config_keys(&count);
	struct config config;
	config_init(&config);
	json_t *object = config_to_json(&config);
	ck_assert_uint_eq(json_object_size(object), count);
	for (size_t i = 0; i < count; i++)
		ck_assert_str_eq(json_string_value(json_object_get(object, keys[i].key)), keys[i].default_value);
	json_decref(object);
	config_free(&config);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *suite = suite_create("config");
	TCase *table = tcase_create("table");
	tcase_add_test(table, test_every_default_parses_and_reads_back_unchanged);
	tcase_add_test(table, test_numeric_defaults_lie_within_their_bounds);
	tcase_add_test(table, test_keys_are_unique);
	tcase_add_test(table, test_defaults_land_in_struct_fields);
	tcase_add_test(table, test_key_info_describes_types_and_bounds);
	suite_add_tcase(suite, table);

	TCase *set = tcase_create("set");
	tcase_add_test(set, test_set_accepts_every_boolean_spelling);
	tcase_add_test(set, test_set_enforces_inclusive_bounds);
	tcase_add_test(set, test_set_rejects_unknown_key);
	tcase_add_test(set, test_get_text_formats_each_type);
	suite_add_tcase(suite, set);

	TCase *file = tcase_create("file");
	tcase_add_test(file, test_load_file_skips_comments_blank_lines_and_whitespace);
	tcase_add_test(file, test_later_line_overrides_earlier_one);
	tcase_add_loop_test(file, test_load_file_error_names_file_and_line, 0,
			    (int)(sizeof bad_files / sizeof bad_files[0]));
	tcase_add_test(file, test_load_file_refuses_over_long_line);
	tcase_add_test(file, test_load_missing_file_names_it);
	suite_add_tcase(suite, file);

	TCase *environment = tcase_create("environment");
	tcase_add_test(environment, test_environment_name_upper_cases_and_replaces_dots);
	tcase_add_test(environment, test_environment_overrides_file_values);
	tcase_add_test(environment, test_bad_environment_value_names_variable);
	tcase_add_test(environment, test_every_key_can_be_set_from_environment);
	suite_add_tcase(suite, environment);

	TCase *kafka = tcase_create("kafka");
	tcase_add_test(kafka, test_unknown_kafka_property_is_passed_through);
	tcase_add_test(kafka, test_kafka_property_without_dot_is_passed_through);
	tcase_add_test(kafka, test_empty_kafka_property_name_is_refused);
	suite_add_tcase(suite, kafka);

	TCase *redaction = tcase_create("redaction");
	tcase_add_loop_test(redaction, test_redact_url_masks_password, 0,
			    (int)(sizeof redactions / sizeof redactions[0]));
	tcase_add_test(redaction, test_redact_url_never_leaks_password_when_truncated);
	tcase_add_test(redaction, test_config_json_masks_every_password);
	tcase_add_test(redaction, test_config_json_lists_every_key_as_text);
	suite_add_tcase(suite, redaction);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(config_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

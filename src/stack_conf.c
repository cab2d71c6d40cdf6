/*
 * DIR/sigtrig.conf as 'up' writes it: the keys that point at the stack's
 * servers, rewritten at every run, then a marker line after which the
 * user's own settings are kept verbatim (and, coming later, win).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "stack.h"

#define CONF_MARKER "# ---- your settings below this line are kept by 'sigtrig up' ----"

struct managed_key {
	const char *key;
	void (*value)(const struct stack *stack, char *buf, size_t size);
};

static void kafka_bootstrap_servers(const struct stack *stack, char *buf, size_t size)
{
	snprintf(buf, size, "%s", stack->kafka_address);
}

static void kafka_topic(const struct stack *stack, char *buf, size_t size)
{
	(void)stack;
	snprintf(buf, size, "%s", STACK_SIGNALS_TOPIC);
}

static void kafka_fetch_wait_max_ms(const struct stack *stack, char *buf, size_t size)
{
	/*
	 * The mock broker answers a fetch only when this runs out, so a signal
	 * waits half of it on average: 10 ms made it the largest part of a
	 * signal's latency. 2 ms costs the broker and the dispatcher about 2 %
	 * of a core between them at rest.
	 */
	(void)stack;
	snprintf(buf, size, "2");
}

/*
 * The mock broker's group coordinator waits out the session of a member
 * that left (even one that sent LeaveGroup) before it rebalances: with
 * librdkafka's 45 s default, a restarted or SIGKILLed dispatcher of the
 * local stack would fetch nothing for 45 s. Short sessions, and heartbeats
 * well inside them, bring that down to a few seconds.
 */
static void kafka_session_timeout_ms(const struct stack *stack, char *buf, size_t size)
{
	(void)stack;
	snprintf(buf, size, "6000");
}

static void kafka_heartbeat_interval_ms(const struct stack *stack, char *buf, size_t size)
{
	(void)stack;
	snprintf(buf, size, "1000");
}

static void redis_url(const struct stack *stack, char *buf, size_t size)
{
	snprintf(buf, size, "redis://127.0.0.1:%d/0", stack->redis_port);
}

static void postgres_url(const struct stack *stack, char *buf, size_t size)
{
	snprintf(buf, size, "postgresql://sigtrig:%s@127.0.0.1:%d/sigtrig", stack->postgres_password,
		 stack->postgres_port);
}

static void control_socket(const struct stack *stack, char *buf, size_t size)
{
	snprintf(buf, size, "%s", stack->control_socket);
}

static void daemon_pid_file(const struct stack *stack, char *buf, size_t size)
{
	stack_path(stack, buf, size, "sigtrigd.pid");
}

static void daemon_log_file(const struct stack *stack, char *buf, size_t size)
{
	stack_path(stack, buf, size, "log/sigtrigd.log");
}

static void generator_mock_enabled(const struct stack *stack, char *buf, size_t size)
{
	snprintf(buf, size, "%s", stack->options->generators ? "true" : "false");
}

static const struct managed_key managed_keys[] = {
	{ "kafka.bootstrap_servers", kafka_bootstrap_servers },
	{ "kafka.topic", kafka_topic },
	{ "kafka.fetch_wait_max_ms", kafka_fetch_wait_max_ms },
	{ "kafka.session.timeout.ms", kafka_session_timeout_ms },
	{ "kafka.heartbeat.interval.ms", kafka_heartbeat_interval_ms },
	{ "redis.url", redis_url },
	{ "postgres.url", postgres_url },
	{ "control.socket", control_socket },
	{ "daemon.pid_file", daemon_pid_file },
	{ "daemon.log_file", daemon_log_file },
	{ "generator.mock.enabled", generator_mock_enabled },
};

#define MANAGED_KEY_COUNT (sizeof managed_keys / sizeof managed_keys[0])

static bool is_managed_key_line(const char *line)
{
	line += strspn(line, " \t");
	for (size_t i = 0; i < MANAGED_KEY_COUNT; i++) {
		size_t length = strlen(managed_keys[i].key);
		if (strncmp(line, managed_keys[i].key, length) == 0 &&
		    line[length + strspn(line + length, " \t")] == '=')
			return true;
	}
	return false;
}

/*
 * The user's lines of the previous file: everything after the marker, and
 * before it any setting 'up' does not manage (a conf written by hand before
 * the first 'up'). The old header comments are dropped; they are rewritten.
 */
static void append_kept_lines(char *old, char *out, size_t size, size_t *used)
{
	bool after_marker = false;
	for (char *line = old; line != NULL && *line != '\0';) {
		char *next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		const char *text = line + strspn(line, " \t");
		if (!after_marker && strcmp(line, CONF_MARKER) == 0)
			after_marker = true;
		else if ((after_marker || (*text != '#' && *text != '\0' && !is_managed_key_line(line))) &&
			 *used < size)
			*used += (size_t)snprintf(out + *used, size - *used, "%s\n", line);
		line = next;
	}
}

static int render(const struct stack *stack, char *old, char *out, size_t size)
{
	size_t used = (size_t)snprintf(out, size,
				       "# Written by 'sigtrig up' for the stack in %s.\n"
				       "# It holds the PostgreSQL password: keep it private (mode 0600).\n"
				       "# 'sigtrig up' rewrites the settings above the marker line at every run.\n",
				       stack->dir);
	for (size_t i = 0; i < MANAGED_KEY_COUNT && used < size; i++) {
		char value[PATH_MAX + 128];
		managed_keys[i].value(stack, value, sizeof value);
		used += (size_t)snprintf(out + used, size - used, "%s = %s\n", managed_keys[i].key, value);
	}
	if (used < size)
		used += (size_t)snprintf(out + used, size - used, "\n%s\n", CONF_MARKER);
	if (old != NULL)
		append_kept_lines(old, out, size, &used);
	return used < size ? 0 : -1;
}

int stack_conf_write(const struct stack *stack, bool *changed, char *err, size_t errsize)
{
	char path[PATH_MAX];
	if (stack_path(stack, path, sizeof path, "sigtrig.conf") != 0) {
		snprintf(err, errsize, "sigtrig.conf: path too long");
		return -1;
	}
	char *old = stack_read_file(path);
	char *previous = old != NULL ? strdup(old) : NULL;
	size_t size = 16384 + (old != NULL ? strlen(old) : 0);
	char *content = malloc(size);
	int status = -1;
	if (content == NULL || render(stack, old, content, size) != 0) {
		snprintf(err, errsize, "%s: cannot build its content", path);
		goto done;
	}
	*changed = previous == NULL || strcmp(previous, content) != 0;
	if (*changed && stack_write_file_atomic(path, content, 0600, err, errsize) != 0)
		goto done;
	/* Read it back as sigtrigd will: a bad line the user kept is reported here, not by the daemon. */
	struct config config;
	config_init(&config);
	char why[1024];
	status = config_load_file(&config, path, why, sizeof why);
	config_free(&config);
	if (status != 0)
		snprintf(err, errsize, "%s", why);
done:
	free(content);
	free(previous);
	free(old);
	return status;
}

void stack_conf_digest(const struct stack *stack, char *buf, size_t size)
{
	buf[0] = '\0';
	char path[PATH_MAX];
	if (stack_path(stack, path, sizeof path, "sigtrig.conf") != 0)
		return;
	char *text = stack_read_file(path);
	if (text == NULL)
		return;
	/* FNV-1a: not a secret, only a cheap way to notice any edit. */
	unsigned long long hash = 14695981039346656037ULL;
	for (const unsigned char *byte = (const unsigned char *)text; *byte != '\0'; byte++)
		hash = (hash ^ *byte) * 1099511628211ULL;
	free(text);
	snprintf(buf, size, "%016llx\n", hash);
}

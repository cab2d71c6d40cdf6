/*
 * DIR/stack.json: the choices made by the first 'up' that every later one
 * must repeat. PostgreSQL's password is fixed at initdb, and keeping the
 * Redis and PostgreSQL ports keeps every URL a user copied still valid.
 * The Kafka address is not kept: the mock broker picks a new one each start.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "stack.h"

static int make_password(char *buf, size_t size, char *err, size_t errsize)
{
	/* Hex: safe in a URL and in a pwfile without quoting. */
	unsigned char random_bytes[16];
	if (getrandom(random_bytes, sizeof random_bytes, 0) != (ssize_t)sizeof random_bytes) {
		snprintf(err, errsize, "cannot make a password: getrandom: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof random_bytes && 2 * i + 2 < size; i++)
		snprintf(buf + 2 * i, 3, "%02x", random_bytes[i]);
	return 0;
}

static int port_from(json_t *state, const char *key)
{
	json_int_t port = json_integer_value(json_object_get(state, key));
	return port > 0 && port < 65536 ? (int)port : 0;
}

int stack_state_load(struct stack *stack, char *err, size_t errsize)
{
	char path[PATH_MAX];
	if (stack_path(stack, path, sizeof path, "stack.json") != 0) {
		snprintf(err, errsize, "stack.json: path too long");
		return -1;
	}
	json_t *state = NULL;
	char *text = stack_read_file(path);
	if (text != NULL) {
		json_error_t parse_error;
		state = json_loads(text, 0, &parse_error);
		free(text);
		if (state == NULL) {
			snprintf(err, errsize, "%s: line %d: %s", path, parse_error.line, parse_error.text);
			return -1;
		}
	}
	stack->redis_port = port_from(state, "redis_port");
	stack->postgres_port = port_from(state, "postgres_port");
	const char *password = json_string_value(json_object_get(state, "postgres_password"));
	snprintf(stack->postgres_password, sizeof stack->postgres_password, "%s",
		 password != NULL ? password : "");
	json_decref(state);

	/* First run, or a field lost: choose now; stack_state_save keeps the choice. */
	if (stack->postgres_port == stack->redis_port)
		stack->postgres_port = 0;
	stack->ports_chosen_now = stack->redis_port == 0 || stack->postgres_port == 0;
	if (stack->redis_port == 0 && stack_state_choose_port(stack, &stack->redis_port, err, errsize) != 0)
		return -1;
	if (stack->postgres_port == 0 && stack_state_choose_port(stack, &stack->postgres_port, err, errsize) != 0)
		return -1;
	if (stack->postgres_password[0] == '\0' &&
	    make_password(stack->postgres_password, sizeof stack->postgres_password, err, errsize) != 0)
		return -1;
	return 0;
}

int stack_state_choose_port(const struct stack *stack, int *port, char *err, size_t errsize)
{
	int chosen = 0;
	while (chosen == 0 || chosen == stack->redis_port || chosen == stack->postgres_port)
		if (stack_pick_free_port(&chosen, err, errsize) != 0)
			return -1;
	*port = chosen;
	return 0;
}

int stack_state_save(const struct stack *stack, char *err, size_t errsize)
{
	char path[PATH_MAX];
	if (stack_path(stack, path, sizeof path, "stack.json") != 0) {
		snprintf(err, errsize, "stack.json: path too long");
		return -1;
	}
	json_t *state = json_pack("{s:i, s:i, s:s}", "redis_port", stack->redis_port, "postgres_port",
				  stack->postgres_port, "postgres_password", stack->postgres_password);
	char *text = state != NULL ? json_dumps(state, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(state);
	if (text == NULL) {
		snprintf(err, errsize, "%s: cannot encode the state", path);
		return -1;
	}
	char content[4096];
	snprintf(content, sizeof content, "%s\n", text);
	free(text);
	/* 0600: it holds the PostgreSQL password. */
	return stack_write_file_atomic(path, content, 0600, err, errsize);
}

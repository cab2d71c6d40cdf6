#include "config.h"

#include <ctype.h>
#include <librdkafka/rdkafka.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct config_key_info key_table[] = {
#define CONFIG_KEY(field, key, type, def, min, max, doc) { key, CONFIG_##type, def, min, max, doc },
#include "config_keys.def"
#undef CONFIG_KEY
};

enum { KEY_COUNT = sizeof key_table / sizeof key_table[0] };

/* Where each key's value lives inside struct config, in table order. */
static const size_t key_offsets[] = {
#define CONFIG_KEY(field, key, type, def, min, max, doc) offsetof(struct config, field),
#include "config_keys.def"
#undef CONFIG_KEY
};

const struct config_key_info *config_keys(size_t *count)
{
	*count = KEY_COUNT;
	return key_table;
}

static int key_index(const char *key)
{
	for (int i = 0; i < KEY_COUNT; i++)
		if (strcmp(key_table[i].key, key) == 0)
			return i;
	return -1;
}

static void *field_of(struct config *config, int index)
{
	return (char *)config + key_offsets[index];
}

static const void *const_field_of(const struct config *config, int index)
{
	return (const char *)config + key_offsets[index];
}

static int parse_value(int index, const char *value, void *field, char *err, size_t errsize)
{
	const struct config_key_info *info = &key_table[index];
	char *end = NULL;
	switch (info->type) {
	case CONFIG_STRING: {
		char *copy = strdup(value);
		if (copy == NULL) {
			snprintf(err, errsize, "%s: out of memory", info->key);
			return -1;
		}
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case CONFIG_INT: {
		errno = 0;
		long number = strtol(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0') {
			snprintf(err, errsize, "%s: '%s' is not a whole number", info->key, value);
			return -1;
		}
		if (number < info->minimum || number > info->maximum) {
			snprintf(err, errsize, "%s: %ld is out of range [%.0f, %.0f]", info->key, number,
				 info->minimum, info->maximum);
			return -1;
		}
		*(long *)field = number;
		return 0;
	}
	case CONFIG_DOUBLE: {
		errno = 0;
		double number = strtod(value, &end);
		if (errno != 0 || end == value || *end != '\0' || !isfinite(number)) {
			snprintf(err, errsize, "%s: '%s' is not a number", info->key, value);
			return -1;
		}
		if (number < info->minimum || number > info->maximum) {
			snprintf(err, errsize, "%s: %g is out of range [%g, %g]", info->key, number,
				 info->minimum, info->maximum);
			return -1;
		}
		*(double *)field = number;
		return 0;
	}
	case CONFIG_BOOL:
		if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "1") == 0 ||
		    strcmp(value, "on") == 0) {
			*(bool *)field = true;
			return 0;
		}
		if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 || strcmp(value, "0") == 0 ||
		    strcmp(value, "off") == 0) {
			*(bool *)field = false;
			return 0;
		}
		snprintf(err, errsize, "%s: '%s' is not a boolean (true/false)", info->key, value);
		return -1;
	}
	return -1;
}

void config_init(struct config *config)
{
	memset(config, 0, sizeof *config);
	char err[256];
	for (int i = 0; i < KEY_COUNT; i++)
		if (parse_value(i, key_table[i].default_value, field_of(config, i), err, sizeof err) != 0)
			abort(); /* a default that does not parse is a bug in config_keys.def */
}

void config_free(struct config *config)
{
	for (int i = 0; i < KEY_COUNT; i++)
		if (key_table[i].type == CONFIG_STRING)
			free(*(char **)field_of(config, i));
	for (size_t i = 0; i < config->kafka_property_count; i++) {
		free(config->kafka_properties[i].name);
		free(config->kafka_properties[i].value);
	}
	free(config->kafka_properties);
	free(config->load_warnings);
	memset(config, 0, sizeof *config);
}

static int set_kafka_property(struct config *config, const char *name, const char *value, char *err,
			      size_t errsize)
{
	if (*name == '\0') {
		snprintf(err, errsize, "kafka.: empty librdkafka property name");
		return -1;
	}
	for (size_t i = 0; i < config->kafka_property_count; i++) {
		if (strcmp(config->kafka_properties[i].name, name) == 0) {
			char *copy = strdup(value);
			if (copy == NULL)
				return -1;
			free(config->kafka_properties[i].value);
			config->kafka_properties[i].value = copy;
			return 0;
		}
	}
	struct config_passthrough *grown =
		realloc(config->kafka_properties, (config->kafka_property_count + 1) * sizeof *grown);
	if (grown == NULL)
		return -1;
	config->kafka_properties = grown;
	grown[config->kafka_property_count].name = strdup(name);
	grown[config->kafka_property_count].value = strdup(value);
	config->kafka_property_count++;
	return 0;
}

int config_set(struct config *config, const char *key, const char *value, char *err, size_t errsize)
{
	int index = key_index(key);
	if (index >= 0)
		return parse_value(index, value, field_of(config, index), err, errsize);
	/* Any other kafka.<property> goes to librdkafka, which checks name and value now,
	 * so a typo is reported with its line, not when the first client is made. */
	if (strncmp(key, "kafka.", 6) == 0) {
		rd_kafka_conf_t *scratch = rd_kafka_conf_new();
		char reason[256];
		rd_kafka_conf_res_t result = rd_kafka_conf_set(scratch, key + 6, value, reason, sizeof reason);
		rd_kafka_conf_destroy(scratch);
		if (result != RD_KAFKA_CONF_OK) {
			snprintf(err, errsize, "%s: %s", key, reason);
			return -1;
		}
		return set_kafka_property(config, key + 6, value, err, errsize);
	}
	snprintf(err, errsize, "unknown key '%s'", key);
	return -1;
}

static char *trim(char *text)
{
	while (isspace((unsigned char)*text))
		text++;
	char *end = text + strlen(text);
	while (end > text && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return text;
}

/* Appends one line to config->load_warnings; a warning lost to a full memory is only a warning. */
static void add_load_warning(struct config *config, const char *path, int line, const char *key, int first_line)
{
	char warning[512];
	int length = snprintf(warning, sizeof warning, "%s:%d: %s is set again (first at line %d); this value counts\n",
			      path, line, key, first_line);
	if (length < 0)
		return;
	size_t added = strlen(warning); /* `length` is what a longer path would have needed */
	size_t had = config->load_warnings != NULL ? strlen(config->load_warnings) : 0;
	char *grown = realloc(config->load_warnings, had + added + 1);
	if (grown == NULL)
		return;
	memcpy(grown + had, warning, added + 1);
	config->load_warnings = grown;
}

int config_load_file(struct config *config, const char *path, char *err, size_t errsize)
{
	/* Where each key was last set in this file: a second setting is legal, and worth a warning. */
	int set_at[KEY_COUNT] = { 0 };
	FILE *file = fopen(path, "r");
	if (file == NULL) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	char line[4096];
	int line_number = 0;
	int status = 0;
	while (fgets(line, sizeof line, file) != NULL) {
		line_number++;
		if (strchr(line, '\n') == NULL && !feof(file)) {
			snprintf(err, errsize, "%s:%d: line too long", path, line_number);
			status = -1;
			break;
		}
		char *text = trim(line);
		if (*text == '\0' || *text == '#')
			continue;
		char *equals = strchr(text, '=');
		if (equals == NULL) {
			snprintf(err, errsize, "%s:%d: expected 'key = value'", path, line_number);
			status = -1;
			break;
		}
		*equals = '\0';
		char *key = trim(text);
		char *value = trim(equals + 1);
		char reason[512];
		if (config_set(config, key, value, reason, sizeof reason) != 0) {
			snprintf(err, errsize, "%s:%d: %s", path, line_number, reason);
			status = -1;
			break;
		}
		int index = key_index(key);
		if (index >= 0) {
			if (set_at[index] > 0)
				add_load_warning(config, path, line_number, key, set_at[index]);
			set_at[index] = line_number;
		}
	}
	fclose(file);
	return status;
}

void config_environment_name(const char *key, char *buf, size_t size)
{
	size_t used = (size_t)snprintf(buf, size, "SIGTRIG_");
	for (const char *c = key; *c != '\0' && used + 1 < size; c++)
		buf[used++] = (*c == '.') ? '_' : (char)toupper((unsigned char)*c);
	buf[used < size ? used : size - 1] = '\0';
}

int config_apply_environment(struct config *config, char *err, size_t errsize)
{
	for (int i = 0; i < KEY_COUNT; i++) {
		char name[128];
		config_environment_name(key_table[i].key, name, sizeof name);
		const char *value = getenv(name);
		if (value == NULL)
			continue;
		char reason[512];
		if (parse_value(i, value, field_of(config, i), reason, sizeof reason) != 0) {
			snprintf(err, errsize, "environment %s: %s", name, reason);
			return -1;
		}
	}
	return 0;
}

const char *config_get_text(const struct config *config, const char *key, char *buf, size_t size)
{
	int index = key_index(key);
	if (index < 0)
		return NULL;
	const void *field = const_field_of(config, index);
	switch (key_table[index].type) {
	case CONFIG_STRING:
		snprintf(buf, size, "%s", *(char *const *)field);
		break;
	case CONFIG_INT:
		snprintf(buf, size, "%ld", *(const long *)field);
		break;
	case CONFIG_DOUBLE:
		snprintf(buf, size, "%.15g", *(const double *)field);
		break;
	case CONFIG_BOOL:
		snprintf(buf, size, "%s", *(const bool *)field ? "true" : "false");
		break;
	}
	return buf;
}

/* Replaces text[start, end) with "***"; returns the new malloc'd text (the old one is freed). */
static char *mask_span(char *text, size_t start, size_t end)
{
	size_t length = strlen(text);
	char *masked = malloc(length - (end - start) + 4);
	if (masked == NULL) {
		free(text);
		return NULL;
	}
	memcpy(masked, text, start);
	memcpy(masked + start, "***", 3);
	memcpy(masked + start + 3, text + end, length - end + 1);
	free(text);
	return masked;
}

/*
 * Masks every password in a URL or libpq keyword string. Works on a full
 * copy and only then cuts to the caller's buffer, so no part of a password
 * can survive truncation.
 */
static char *redact(const char *url)
{
	char *text = strdup(url);
	if (text == NULL)
		return NULL;
	/* URI form: scheme://user:password@host: mask between the first ':' of the
	 * authority and its last '@'. */
	char *authority = strstr(text, "://");
	if (authority != NULL) {
		authority += 3;
		char *end = authority + strcspn(authority, "/?#");
		char *at = NULL;
		for (char *c = authority; c < end; c++)
			if (*c == '@')
				at = c;
		char *colon = at != NULL ? memchr(authority, ':', (size_t)(at - authority)) : NULL;
		if (colon != NULL)
			text = mask_span(text, (size_t)(colon + 1 - text), (size_t)(at - text));
	}
	/* keyword form or query parameter: password=secret */
	size_t from = 0;
	char *password;
	while (text != NULL && (password = strstr(text + from, "password=")) != NULL) {
		size_t value = (size_t)(password - text) + strlen("password=");
		size_t length = strcspn(text + value, " &");
		text = mask_span(text, value, value + length);
		from = value + 3;
	}
	return text;
}

void config_redact_url(const char *url, char *buf, size_t size)
{
	if (size == 0)
		return;
	char *redacted = redact(url);
	snprintf(buf, size, "%s", redacted != NULL ? redacted : "***");
	free(redacted);
}

json_t *config_to_json(const struct config *config)
{
	json_t *object = json_object();
	for (int i = 0; i < KEY_COUNT; i++) {
		char text[2048];
		config_get_text(config, key_table[i].key, text, sizeof text);
		if (strstr(key_table[i].key, "url") != NULL) {
			char redacted[2048];
			config_redact_url(text, redacted, sizeof redacted);
			json_object_set_new(object, key_table[i].key, json_string(redacted));
		} else {
			json_object_set_new(object, key_table[i].key, json_string(text));
		}
	}
	for (size_t i = 0; i < config->kafka_property_count; i++) {
		char key[512];
		snprintf(key, sizeof key, "kafka.%s", config->kafka_properties[i].name);
		/* librdkafka secrets (sasl.password, ssl.key.pem, sasl.oauthbearer.config, ...) are never shown. */
		bool secret = strstr(key, "password") != NULL || strstr(key, "secret") != NULL ||
			      strstr(key, "key") != NULL || strstr(key, "oauthbearer") != NULL;
		json_object_set_new(object, key,
				    json_string(secret ? "***" : config->kafka_properties[i].value));
	}
	return object;
}

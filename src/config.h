/*
 * sigtrig.conf: `key = value` lines, `#` comments. Every key is declared
 * once in config_keys.def; each can be overridden by an environment
 * variable named SIGTRIG_ + the key upper-cased with dots as underscores
 * (redis.url -> SIGTRIG_REDIS_URL). Keys of the form kafka.<property>
 * that sigtrig does not know itself are passed to librdkafka unchanged
 * (kafka.security.protocol -> security.protocol), as kcat does.
 */
#ifndef SIGTRIG_CONFIG_H
#define SIGTRIG_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CONFIG_TYPE_STRING char *
#define CONFIG_TYPE_INT long
#define CONFIG_TYPE_DOUBLE double
#define CONFIG_TYPE_BOOL bool

struct config_passthrough {
	char *name;  /* librdkafka property, without the "kafka." prefix */
	char *value;
};

struct config {
#define CONFIG_KEY(field, key, type, def, min, max, doc) CONFIG_TYPE_##type field;
#include "config_keys.def"
#undef CONFIG_KEY
	struct config_passthrough *kafka_properties;
	size_t kafka_property_count;
	/*
	 * What config_load_file() found worth a warning, one line each ending
	 * in '\n' (a key set twice: the last one counts); NULL when nothing.
	 */
	char *load_warnings;
};

enum config_type { CONFIG_STRING, CONFIG_INT, CONFIG_DOUBLE, CONFIG_BOOL };

struct config_key_info {
	const char *key;
	enum config_type type;
	const char *default_value;
	double minimum, maximum;
	const char *description;
};

/* The table of keys, in declaration order; *count receives its length. */
const struct config_key_info *config_keys(size_t *count);

/* Fills every key with its default. */
void config_init(struct config *config);
void config_free(struct config *config);

/* Sets one key from text, validating type and bounds. */
int config_set(struct config *config, const char *key, const char *value, char *err, size_t errsize);
/* Reads a file; errors name the file and line. */
int config_load_file(struct config *config, const char *path, char *err, size_t errsize);
/* Applies SIGTRIG_* environment overrides. */
int config_apply_environment(struct config *config, char *err, size_t errsize);
/* "redis.url" -> "SIGTRIG_REDIS_URL" */
void config_environment_name(const char *key, char *buf, size_t size);

/* Current value of a key as text (into buf); NULL when the key is unknown. */
const char *config_get_text(const struct config *config, const char *key, char *buf, size_t size);
/* All keys and values as a JSON object, with passwords in URLs masked. */
json_t *config_to_json(const struct config *config);

/*
 * Copies `url` into buf with any password replaced by "***"
 * ("redis://:secret@h:1/0" -> "redis://:***@h:1/0"). Also masks a
 * libpq "password=" parameter. Used wherever a URL may be shown.
 */
void config_redact_url(const char *url, char *buf, size_t size);

#endif

/*
 * Text built piece by piece in a growing buffer: envelopes and statement
 * parameters written straight as text on the dispatcher's hot path,
 * where building jansson objects only to dump them cost more than the
 * rest of the work. An allocation failure is remembered (failed) and
 * makes every later call a no-op, so callers check once at the end.
 */
#ifndef SIGTRIG_TEXT_BUFFER_H
#define SIGTRIG_TEXT_BUFFER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct text_buffer {
	char *data;      /* NUL-terminated once anything is written; the caller frees it */
	size_t length, capacity;
	bool failed;
};

/* Room for `length` more characters and the NUL; false (and failed) when out of memory. */
bool text_buffer_reserve(struct text_buffer *buffer, size_t length);
void text_buffer_append(struct text_buffer *buffer, const char *text, size_t length);
void text_buffer_puts(struct text_buffer *buffer, const char *text);
void text_buffer_printf(struct text_buffer *buffer, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* Keeps the first `length` characters. */
void text_buffer_truncate(struct text_buffer *buffer, size_t length);
/* `text` (UTF-8) as a JSON string: quoted, with '"', '\' and control characters escaped. */
void text_buffer_json_string(struct text_buffer *buffer, const char *text);
/* `before` as it is, then `text` as a JSON string: one member of an object being written. */
void text_buffer_json_member(struct text_buffer *buffer, const char *before, const char *text);
/*
 * `before` as it is, then the JSON array `strings` written by hand,
 * compact, each element as text_buffer_json_string() writes it (so byte
 * for byte json_dumps(JSON_COMPACT)'s but for control characters, written
 * \u00XX); an element that is not a string is written "".
 */
void text_buffer_json_string_array(struct text_buffer *buffer, const char *before, const json_t *strings);
/* A JSON value in compact form, as json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) writes it. */
void text_buffer_json_value(struct text_buffer *buffer, const json_t *value);
/*
 * `length` characters of `text` as one element of a PostgreSQL array
 * literal ({a,b}): double-quoted, with '"' and '\' escaped, so that
 * braces, commas, blanks and the word NULL stay text.
 */
void text_buffer_pg_array_element(struct text_buffer *buffer, const char *text, size_t length);

#endif

#include "text_buffer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool text_buffer_reserve(struct text_buffer *buffer, size_t length)
{
	if (buffer->failed)
		return false;
	if (buffer->length + length + 1 > buffer->capacity) {
		size_t capacity = buffer->capacity > 0 ? buffer->capacity : 64;
		while (buffer->length + length + 1 > capacity)
			capacity *= 2;
		char *grown = realloc(buffer->data, capacity);
		if (grown == NULL) {
			buffer->failed = true;
			return false;
		}
		buffer->data = grown;
		buffer->capacity = capacity;
	}
	return true;
}

void text_buffer_append(struct text_buffer *buffer, const char *text, size_t length)
{
	if (!text_buffer_reserve(buffer, length))
		return;
	memcpy(buffer->data + buffer->length, text, length);
	buffer->length += length;
	buffer->data[buffer->length] = '\0';
}

void text_buffer_puts(struct text_buffer *buffer, const char *text)
{
	text_buffer_append(buffer, text, strlen(text));
}

void text_buffer_printf(struct text_buffer *buffer, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	char small[128];
	int length = vsnprintf(small, sizeof small, format, args);
	va_end(args);
	if (length < 0) {
		buffer->failed = true;
		return;
	}
	if ((size_t)length < sizeof small) {
		text_buffer_append(buffer, small, (size_t)length);
		return;
	}
	if (!text_buffer_reserve(buffer, (size_t)length))
		return;
	va_start(args, format);
	vsnprintf(buffer->data + buffer->length, (size_t)length + 1, format, args);
	va_end(args);
	buffer->length += (size_t)length;
}

void text_buffer_truncate(struct text_buffer *buffer, size_t length)
{
	if (buffer->failed || length >= buffer->length)
		return;
	buffer->length = length;
	buffer->data[length] = '\0';
}

void text_buffer_json_string(struct text_buffer *buffer, const char *text)
{
	text_buffer_append(buffer, "\"", 1);
	size_t plain = 0; /* the start of the run of characters that need no escape */
	size_t i = 0;
	for (; text[i] != '\0'; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		text_buffer_append(buffer, text + plain, i - plain);
		if (c == '"' || c == '\\') {
			char escaped[2] = { '\\', (char)c };
			text_buffer_append(buffer, escaped, 2);
		} else {
			text_buffer_printf(buffer, "\\u%04x", c);
		}
		plain = i + 1;
	}
	text_buffer_append(buffer, text + plain, i - plain);
	text_buffer_append(buffer, "\"", 1);
}

void text_buffer_json_member(struct text_buffer *buffer, const char *before, const char *text)
{
	text_buffer_puts(buffer, before);
	text_buffer_json_string(buffer, text);
}

void text_buffer_json_string_array(struct text_buffer *buffer, const char *before, const json_t *strings)
{
	text_buffer_puts(buffer, before);
	size_t index;
	const json_t *text;
	json_array_foreach(strings, index, text)
		text_buffer_json_member(buffer, index == 0 ? "[" : ",", json_is_string(text) ? json_string_value(text) : "");
	text_buffer_puts(buffer, json_array_size(strings) == 0 ? "[]" : "]");
}

static int append_dumped(const char *text, size_t length, void *data)
{
	struct text_buffer *buffer = data;
	text_buffer_append(buffer, text, length);
	return buffer->failed ? -1 : 0;
}

void text_buffer_json_value(struct text_buffer *buffer, const json_t *value)
{
	if (buffer->failed)
		return;
	if (value == NULL || json_dump_callback(value, append_dumped, buffer, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
		buffer->failed = true;
}

void text_buffer_pg_array_element(struct text_buffer *buffer, const char *text, size_t length)
{
	text_buffer_append(buffer, "\"", 1);
	size_t plain = 0; /* the start of the run of characters that need no escape */
	for (size_t i = 0; i < length; i++) {
		if (text[i] != '"' && text[i] != '\\')
			continue;
		text_buffer_append(buffer, text + plain, i - plain);
		text_buffer_append(buffer, "\\", 1);
		plain = i;
	}
	text_buffer_append(buffer, text + plain, length - plain);
	text_buffer_append(buffer, "\"", 1);
}

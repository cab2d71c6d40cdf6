#include "log.h"

#include <pthread.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "timeutil.h"

static const char *const level_names[] = { "debug", "info", "warn", "error" };
static enum log_level minimum_level = LOG_INFO;
static int log_fd = 2;

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void log_set_level(enum log_level level) { minimum_level = level; }
void log_set_fd(int fd) { log_fd = fd; }

static void write_fully(const char *text, size_t length)
{
	while (length > 0) {
		ssize_t written = write(log_fd, text, length);
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			return; /* a log that cannot be written is not worth stopping for */
		text += written;
		length -= (size_t)written;
	}
}

void log_event(enum log_level level, const char *event, json_t *fields)
{
	if (level < minimum_level) {
		json_decref(fields);
		return;
	}
	char stamp[40];
	time_format_iso8601(time_now_seconds(), stamp, sizeof stamp);
	/* A fresh object keeps time/level/event first, which makes logs easy to scan. */
	json_t *line = json_object();
	json_object_set_new(line, "time", json_string(stamp));
	json_object_set_new(line, "level", json_string(level_names[level]));
	json_object_set_new(line, "event", json_string(event));
	if (fields != NULL)
		json_object_update_missing(line, fields);
	json_decref(fields);
	char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(line);
	if (text == NULL)
		return;
	size_t length = strlen(text);
	/* One write per line: lines from different threads never interleave. */
	char *with_newline = malloc(length + 2);
	if (with_newline != NULL) {
		memcpy(with_newline, text, length);
		with_newline[length] = '\n';
		write_fully(with_newline, length + 1);
		free(with_newline);
	}
	free(text);
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
	if (level < minimum_level)
		return;
	char message[1024];
	va_list args;
	va_start(args, fmt);
	vsnprintf(message, sizeof message, fmt, args);
	va_end(args);
	log_event(level, event, json_pack("{s:s}", "message", message));
}

bool log_enabled(enum log_level level) { return level >= minimum_level; }

void log_line_open(struct text_buffer *lines, enum log_level level, const char *event)
{
	char stamp[40];
	time_format_iso8601(time_now_seconds(), stamp, sizeof stamp);
	text_buffer_json_member(lines, "{\"time\":", stamp);
	text_buffer_json_member(lines, ",\"level\":", level_names[level]);
	text_buffer_json_member(lines, ",\"event\":", event);
}

void log_line_close(struct text_buffer *lines) { text_buffer_puts(lines, "}\n"); }

void log_write_lines(const struct text_buffer *lines)
{
	if (lines->failed || lines->length == 0)
		return;
	const char *start = lines->data, *end = lines->data + lines->length;
	while (start < end) {
		/* As many whole lines as fit in PIPE_BUF; a longer line alone. */
		const char *cut = start;
		for (const char *newline; cut < end && (newline = memchr(cut, '\n', (size_t)(end - cut))) != NULL;) {
			if (newline + 1 - start > PIPE_BUF && cut > start)
				break;
			cut = newline + 1;
		}
		if (cut == start)
			cut = end; /* no newline left: the rest as it is */
		write_fully(start, (size_t)(cut - start));
		start = cut;
	}
}

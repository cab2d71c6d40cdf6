/*
 * Structured logging: one JSON object per line on the log stream, with
 * "time", "level" and "event" first, then the event's own fields.
 * Thread-safe: each line is written with a single write(2).
 */
#ifndef SIGTRIG_LOG_H
#define SIGTRIG_LOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "text_buffer.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Parses "debug", "info", "warn", "error"; returns -1 when unknown. */
int log_level_parse(const char *name);
void log_set_level(enum log_level level);
/* Sends the log to fd (default 2). The caller keeps the fd open. */
void log_set_fd(int fd);

/* Emits an event; `fields` (may be NULL) is a JSON object whose reference is stolen. */
void log_event(enum log_level level, const char *event, json_t *fields);
/* Emits an event with a human "message" built from a printf format. */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether events of this level are written at all. */
bool log_enabled(enum log_level level);

/*
 * Lines written by hand, for a hot path that logs thousands of events at
 * once (a dispatcher round's claims): jansson's objects and a write(2) per
 * line were a quarter of the dispatcher's work. log_line_open() starts a
 * line in `lines` with "time", "level" and "event"; the caller adds
 * members (text_buffer_json_member(lines, ",\"key\":", value) and the like);
 * log_line_close() ends it. log_write_lines() writes them all, in writes of
 * whole lines of at most PIPE_BUF bytes each, so that another thread's
 * line never lands inside one even when the log is a pipe; a single line
 * longer than PIPE_BUF is not protected there, as with log_event(). The
 * same JSON as log_event() would write, members in the caller's order.
 */
void log_line_open(struct text_buffer *lines, enum log_level level, const char *event);
void log_line_close(struct text_buffer *lines);
void log_write_lines(const struct text_buffer *lines);

#endif

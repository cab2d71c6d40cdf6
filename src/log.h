/*
 * Structured logging: one JSON object per line on the log stream, with
 * "time", "level" and "event" first, then the event's own fields.
 * Thread-safe: each line is written with a single write(2).
 */
#ifndef SIGTRIG_LOG_H
#define SIGTRIG_LOG_H

#include <jansson.h>
#include <stdio.h>

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

#endif

/*
 * The control protocol between sigtrigd and its clients (the CLI, the TUI,
 * `socat`/`nc -U` scripts): newline-delimited JSON over a Unix socket,
 * one object per line, each with a "type". Documented in sigtrigd(8).
 *
 *   request:  {"v":1, "type":"status", ...arguments}
 *   response: {"v":1, "type":"response", "ok":true, ...}   or
 *             {"v":1, "type":"response", "ok":false, "error":"why"}
 *   stream:   after an ok response to "trace", {"v":1, "type":"event", ...}
 *             lines follow until either side closes.
 */
#ifndef SIGTRIG_PROTOCOL_H
#define SIGTRIG_PROTOCOL_H

#include <jansson.h>
#include <stddef.h>

#define PROTOCOL_VERSION 1
/* A request or response line larger than this is refused: the peer is dropped. */
#define PROTOCOL_MAX_LINE (4 * 1024 * 1024)

/* Buffered reader of newline-terminated lines from a file descriptor. */
struct line_reader {
	int fd;
	char *buffer;
	size_t used, capacity;
	size_t consumed; /* bytes of buffer already returned */
};

void line_reader_init(struct line_reader *reader, int fd);
void line_reader_free(struct line_reader *reader);
/*
 * Returns the next complete line (without '\n', NUL-terminated, valid until
 * the next call) in *line. Returns 1 with a line, 0 at end of input, -1 on
 * error (errno set; EMSGSIZE for a line over PROTOCOL_MAX_LINE). With
 * a non-blocking fd, returns -1/EAGAIN when no full line is buffered yet.
 */
int line_reader_next(struct line_reader *reader, char **line, size_t *length);

/* Writes one JSON value as a line; handles partial writes. 0 or -1. */
int protocol_write(int fd, const json_t *message);
/* Decodes a line into an object with a string "type"; NULL with err filled. */
json_t *protocol_decode(const char *line, size_t length, char *err, size_t errsize);

/* Builders for responses; they stamp "v" and "type". */
json_t *protocol_ok(void);
json_t *protocol_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
json_t *protocol_request(const char *type);

/* Client side: connects to the daemon's socket. Returns fd or -1 with err. */
int protocol_connect(const char *socket_path, char *err, size_t errsize);
/*
 * Sends a request (reference stolen) and waits for its response on a fresh
 * connection. Returns the response, or NULL with err filled (connection
 * failure, or a malformed answer).
 */
json_t *protocol_call(const char *socket_path, json_t *request, char *err, size_t errsize);

#endif

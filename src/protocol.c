#include "protocol.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void line_reader_init(struct line_reader *reader, int fd)
{
	memset(reader, 0, sizeof *reader);
	reader->fd = fd;
}

void line_reader_free(struct line_reader *reader)
{
	free(reader->buffer);
	memset(reader, 0, sizeof *reader);
	reader->fd = -1;
}

static char *find_newline(struct line_reader *reader)
{
	return memchr(reader->buffer + reader->consumed, '\n', reader->used - reader->consumed);
}

int line_reader_next(struct line_reader *reader, char **line, size_t *length)
{
	for (;;) {
		char *newline = reader->buffer != NULL ? find_newline(reader) : NULL;
		if (newline != NULL) {
			if ((size_t)(newline - (reader->buffer + reader->consumed)) > PROTOCOL_MAX_LINE) {
				errno = EMSGSIZE;
				return -1;
			}
			*newline = '\0';
			*line = reader->buffer + reader->consumed;
			*length = (size_t)(newline - *line);
			reader->consumed += *length + 1;
			return 1;
		}
		/* Compact: move the unread tail to the front before reading more. */
		if (reader->consumed > 0) {
			memmove(reader->buffer, reader->buffer + reader->consumed,
				reader->used - reader->consumed);
			reader->used -= reader->consumed;
			reader->consumed = 0;
		}
		if (reader->used >= PROTOCOL_MAX_LINE) {
			errno = EMSGSIZE;
			return -1;
		}
		if (reader->capacity - reader->used < 4096) {
			size_t capacity = reader->capacity == 0 ? 8192 : reader->capacity * 2;
			char *grown = realloc(reader->buffer, capacity + 1);
			if (grown == NULL)
				return -1;
			reader->buffer = grown;
			reader->capacity = capacity;
		}
		ssize_t got = read(reader->fd, reader->buffer + reader->used, reader->capacity - reader->used);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (got == 0) {
			/* A last line without its newline still counts. */
			if (reader->used > 0) {
				reader->buffer[reader->used] = '\0';
				*line = reader->buffer;
				*length = reader->used;
				reader->consumed = reader->used;
				return 1;
			}
			return 0;
		}
		reader->used += (size_t)got;
	}
}

static int write_all(int fd, const char *data, size_t length)
{
	while (length > 0) {
		ssize_t put = send(fd, data, length, MSG_NOSIGNAL);
		if (put < 0 && errno == ENOTSOCK)
			put = write(fd, data, length);
		if (put < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += put;
		length -= (size_t)put;
	}
	return 0;
}

int protocol_write(int fd, const json_t *message)
{
	char *text = json_dumps(message, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text == NULL) {
		errno = EINVAL;
		return -1;
	}
	size_t length = strlen(text);
	char *line = realloc(text, length + 2);
	if (line == NULL) {
		free(text);
		return -1;
	}
	line[length] = '\n';
	int status = write_all(fd, line, length + 1);
	free(line);
	return status;
}

json_t *protocol_decode(const char *line, size_t length, char *err, size_t errsize)
{
	json_error_t json_error;
	json_t *message = json_loadb(line, length, 0, &json_error);
	if (message == NULL) {
		snprintf(err, errsize, "invalid JSON: %s", json_error.text);
		return NULL;
	}
	if (!json_is_object(message) || !json_is_string(json_object_get(message, "type"))) {
		snprintf(err, errsize, "a message must be a JSON object with a string \"type\"");
		json_decref(message);
		return NULL;
	}
	return message;
}

static json_t *stamped(const char *type)
{
	return json_pack("{s:i, s:s}", "v", PROTOCOL_VERSION, "type", type);
}

json_t *protocol_ok(void)
{
	json_t *response = stamped("response");
	json_object_set_new(response, "ok", json_true());
	return response;
}

json_t *protocol_error(const char *fmt, ...)
{
	char message[1024];
	va_list args;
	va_start(args, fmt);
	vsnprintf(message, sizeof message, fmt, args);
	va_end(args);
	json_t *response = stamped("response");
	json_object_set_new(response, "ok", json_false());
	json_object_set_new(response, "error", json_string(message));
	return response;
}

json_t *protocol_request(const char *type)
{
	return stamped(type);
}

int protocol_connect(const char *socket_path, char *err, size_t errsize)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	if (strlen(socket_path) >= sizeof address.sun_path) {
		snprintf(err, errsize, "%s: socket path too long", socket_path);
		return -1;
	}
	memcpy(address.sun_path, socket_path, strlen(socket_path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errsize, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
		snprintf(err, errsize, "cannot reach sigtrigd at %s: %s (is it running? try 'sigtrig up')",
			 socket_path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

json_t *protocol_call(const char *socket_path, json_t *request, char *err, size_t errsize)
{
	int fd = protocol_connect(socket_path, err, errsize);
	if (fd < 0) {
		json_decref(request);
		return NULL;
	}
	json_t *response = NULL;
	if (protocol_write(fd, request) != 0) {
		snprintf(err, errsize, "sending to sigtrigd: %s", strerror(errno));
		goto done;
	}
	struct line_reader reader;
	line_reader_init(&reader, fd);
	char *line;
	size_t length;
	int got = line_reader_next(&reader, &line, &length);
	if (got == 1)
		response = protocol_decode(line, length, err, errsize);
	else if (got == 0)
		snprintf(err, errsize, "sigtrigd closed the connection without answering");
	else
		snprintf(err, errsize, "reading from sigtrigd: %s", strerror(errno));
	line_reader_free(&reader);
done:
	close(fd);
	json_decref(request);
	return response;
}

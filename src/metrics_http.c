#include "metrics_http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "timeutil.h"

#define METRICS_HTTP_PATH "/metrics"
#define METRICS_HTTP_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_HTTP_BACKLOG 16
/* An answer that cannot be written within this time is abandoned. */
#define METRICS_HTTP_WRITE_TIMEOUT_MS 5000
/* After the answer, what the client still sends is read (and dropped) this long, so closing does not reset the connection. */
#define METRICS_HTTP_LINGER_MS 200

struct metrics_http {
	int listen_fd;
	int stop_pipe[2]; /* a byte on [1] stops the thread */
	int port;
	pthread_t thread;
};

enum request_outcome {
	REQUEST_COMPLETE,  /* request line and headers are in the buffer */
	REQUEST_TOO_LARGE,
	REQUEST_MALFORMED, /* a NUL byte: not HTTP */
	REQUEST_ABANDONED  /* timed out, closed by the client, or the listener stops */
};

/*
 * Splits "host:port", "[v6]:port" or ":port" into host (empty for every
 * address) and port. Returns -1 with the reason in err.
 */
static int split_address(const char *address, char *host, size_t host_size, char *port, size_t port_size,
			 char *err, size_t errsize)
{
	const char *host_start = address, *host_end, *port_text;
	if (*address == '[') {
		host_start = address + 1;
		host_end = strchr(host_start, ']');
		if (host_end == NULL || host_end[1] != ':') {
			snprintf(err, errsize, "metrics.listen '%s': expected [address]:port", address);
			return -1;
		}
		port_text = host_end + 2;
	} else {
		host_end = strrchr(address, ':');
		if (host_end == NULL) {
			snprintf(err, errsize, "metrics.listen '%s': expected host:port", address);
			return -1;
		}
		if (memchr(address, ':', (size_t)(host_end - address)) != NULL) {
			snprintf(err, errsize, "metrics.listen '%s': write an IPv6 address as [address]:port", address);
			return -1;
		}
		port_text = host_end + 1;
	}
	size_t digits = strspn(port_text, "0123456789");
	if (digits == 0 || digits > 5 || port_text[digits] != '\0' || atoi(port_text) > 65535) {
		snprintf(err, errsize, "metrics.listen '%s': the port must be a number from 0 to 65535", address);
		return -1;
	}
	size_t host_length = (size_t)(host_end - host_start);
	if (host_length >= host_size) {
		snprintf(err, errsize, "metrics.listen '%s': host name too long", address);
		return -1;
	}
	memcpy(host, host_start, host_length);
	host[host_length] = '\0';
	snprintf(port, port_size, "%s", port_text);
	return 0;
}

/* A listening socket on the first address of `host` that binds; -1 with the reason in err. */
static int listen_on(const char *address, const char *host, const char *port, char *err, size_t errsize)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *found = NULL;
	int status = getaddrinfo(*host != '\0' ? host : NULL, port, &hints, &found);
	if (status != 0) {
		snprintf(err, errsize, "metrics.listen %s: %s", address, gai_strerror(status));
		return -1;
	}
	int fd = -1, error = 0;
	for (const struct addrinfo *candidate = found; candidate != NULL && fd < 0; candidate = candidate->ai_next) {
		fd = socket(candidate->ai_family, candidate->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    candidate->ai_protocol);
		if (fd < 0) {
			error = errno;
			continue;
		}
		int on = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
		if (bind(fd, candidate->ai_addr, candidate->ai_addrlen) != 0 || listen(fd, METRICS_HTTP_BACKLOG) != 0) {
			error = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(found);
	if (fd < 0)
		snprintf(err, errsize, "metrics.listen %s: %s", address, strerror(error));
	return fd;
}

static int bound_port(int fd)
{
	struct sockaddr_storage local;
	socklen_t size = sizeof local;
	if (getsockname(fd, (struct sockaddr *)&local, &size) != 0)
		return -1;
	if (local.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&local)->sin_port);
	if (local.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&local)->sin6_port);
	return -1;
}

/* Waits until fd is readable; false on timeout, error, or when the listener is told to stop. */
static bool wait_readable(const struct metrics_http *server, int fd, int64_t deadline_ms)
{
	for (;;) {
		int64_t remaining = deadline_ms - time_monotonic_ms();
		if (remaining <= 0)
			return false;
		struct pollfd fds[2] = { { .fd = fd, .events = POLLIN }, { .fd = server->stop_pipe[0], .events = POLLIN } };
		int ready = poll(fds, 2, (int)remaining);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0 || fds[1].revents != 0)
			return false;
		return true;
	}
}

static bool headers_complete(const char *buffer)
{
	return strstr(buffer, "\r\n\r\n") != NULL || strstr(buffer, "\n\n") != NULL;
}

/* Reads the request line and headers into buffer (size METRICS_HTTP_MAX_REQUEST_BYTES + 1). */
static enum request_outcome read_request(const struct metrics_http *server, int fd, char *buffer)
{
	int64_t deadline = time_monotonic_ms() + METRICS_HTTP_READ_TIMEOUT_MS;
	size_t used = 0;
	buffer[0] = '\0';
	while (!headers_complete(buffer)) {
		if (used == METRICS_HTTP_MAX_REQUEST_BYTES)
			return REQUEST_TOO_LARGE;
		if (!wait_readable(server, fd, deadline))
			return REQUEST_ABANDONED;
		ssize_t got = recv(fd, buffer + used, METRICS_HTTP_MAX_REQUEST_BYTES - used, 0);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			return REQUEST_ABANDONED;
		if (memchr(buffer + used, '\0', (size_t)got) != NULL)
			return REQUEST_MALFORMED;
		used += (size_t)got;
		buffer[used] = '\0';
	}
	return REQUEST_COMPLETE;
}

static void send_all(int fd, const char *data, size_t length)
{
	int64_t deadline = time_monotonic_ms() + METRICS_HTTP_WRITE_TIMEOUT_MS;
	while (length > 0 && time_monotonic_ms() < deadline) {
		ssize_t sent = send(fd, data, length, MSG_NOSIGNAL);
		if (sent < 0 && errno == EINTR)
			continue;
		if (sent <= 0)
			return;
		data += sent;
		length -= (size_t)sent;
	}
}

static void respond(int fd, int status, const char *reason, const char *content_type, const char *extra_headers,
		    const char *body, size_t body_length, bool with_body)
{
	char head[512];
	int length = snprintf(head, sizeof head,
			      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
			      status, reason, content_type, body_length, extra_headers);
	send_all(fd, head, (size_t)length < sizeof head ? (size_t)length : sizeof head - 1);
	if (with_body)
		send_all(fd, body, body_length);
}

static void respond_error(int fd, int status, const char *reason, const char *extra_headers)
{
	char body[128];
	int length = snprintf(body, sizeof body, "%s\n", reason);
	respond(fd, status, reason, "text/plain; charset=utf-8", extra_headers, body, (size_t)length, true);
}

/*
 * Answers the request in buffer: 200 with the metrics for GET (or HEAD)
 * of /metrics, 405 for any other method, 404 for any other path, 400
 * when the request line is not HTTP.
 */
static void answer(int fd, char *buffer)
{
	char *line_end = buffer + strcspn(buffer, "\r\n");
	*line_end = '\0';
	char *method = buffer;
	char *target = strchr(method, ' ');
	char *version = target != NULL ? strchr(target + 1, ' ') : NULL;
	if (target == NULL || version == NULL || strchr(version + 1, ' ') != NULL) {
		respond_error(fd, 400, "Bad Request", "");
		return;
	}
	*target++ = '\0';
	*version++ = '\0';
	size_t method_length = strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
	if (method_length == 0 || method[method_length] != '\0' || *target != '/' ||
	    strncmp(version, "HTTP/1.", 7) != 0) {
		respond_error(fd, 400, "Bad Request", "");
		return;
	}
	bool head = strcmp(method, "HEAD") == 0;
	if (strcmp(method, "GET") != 0 && !head) {
		respond_error(fd, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
		return;
	}
	target[strcspn(target, "?")] = '\0';
	if (strcmp(target, METRICS_HTTP_PATH) != 0) {
		respond_error(fd, 404, "Not Found", "");
		return;
	}
	char *text = metrics_to_prometheus();
	if (text == NULL) {
		respond_error(fd, 500, "Internal Server Error", "");
		return;
	}
	respond(fd, 200, "OK", METRICS_HTTP_CONTENT_TYPE, "", text, strlen(text), !head);
	free(text);
}

/* Reads what the client still sends, briefly, so that close() does not reset a connection with unread input. */
static void drain(const struct metrics_http *server, int fd)
{
	shutdown(fd, SHUT_WR);
	int64_t deadline = time_monotonic_ms() + METRICS_HTTP_LINGER_MS;
	char sink[4096];
	size_t drained = 0;
	while (drained < 16 * sizeof sink && wait_readable(server, fd, deadline)) {
		ssize_t got = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
		if (got <= 0)
			return;
		drained += (size_t)got;
	}
}

static void serve_connection(const struct metrics_http *server, int fd)
{
	char *buffer = malloc(METRICS_HTTP_MAX_REQUEST_BYTES + 1);
	if (buffer == NULL)
		return;
	switch (read_request(server, fd, buffer)) {
	case REQUEST_COMPLETE:
		answer(fd, buffer);
		drain(server, fd);
		break;
	case REQUEST_TOO_LARGE:
		respond_error(fd, 431, "Request Header Fields Too Large", "");
		drain(server, fd);
		break;
	case REQUEST_MALFORMED:
		respond_error(fd, 400, "Bad Request", "");
		drain(server, fd);
		break;
	case REQUEST_ABANDONED:
		break;
	}
	free(buffer);
}

static void *metrics_http_loop(void *argument)
{
	const struct metrics_http *server = argument;
	for (;;) {
		struct pollfd fds[2] = { { .fd = server->listen_fd, .events = POLLIN },
					 { .fd = server->stop_pipe[0], .events = POLLIN } };
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_msg(LOG_ERROR, "metrics_http_failed", "poll: %s", strerror(errno));
			return NULL;
		}
		if (fds[1].revents != 0)
			return NULL;
		int client = accept4(server->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (client < 0) {
			/* Out of descriptors, say: wait a little rather than spin on a listener that stays readable. */
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
				struct pollfd stop = { .fd = server->stop_pipe[0], .events = POLLIN };
				poll(&stop, 1, 100);
			}
			continue;
		}
		serve_connection(server, client);
		close(client);
	}
}

struct metrics_http *metrics_http_start(const char *address, char *err, size_t errsize)
{
	char host[256], port[8];
	if (split_address(address, host, sizeof host, port, sizeof port, err, errsize) != 0)
		return NULL;
	struct metrics_http *server = calloc(1, sizeof *server);
	if (server == NULL) {
		snprintf(err, errsize, "metrics.listen %s: out of memory", address);
		return NULL;
	}
	server->stop_pipe[0] = server->stop_pipe[1] = -1;
	server->listen_fd = listen_on(address, host, port, err, errsize);
	if (server->listen_fd < 0)
		goto failed;
	server->port = bound_port(server->listen_fd);
	if (pipe2(server->stop_pipe, O_CLOEXEC) != 0) {
		snprintf(err, errsize, "metrics.listen %s: pipe: %s", address, strerror(errno));
		goto failed;
	}
	if (pthread_create(&server->thread, NULL, metrics_http_loop, server) != 0) {
		snprintf(err, errsize, "metrics.listen %s: cannot start the listener thread", address);
		goto failed;
	}
	log_event(LOG_INFO, "metrics_http_listening",
		  json_pack("{s:s, s:i, s:s}", "address", address, "port", server->port, "path", METRICS_HTTP_PATH));
	return server;
failed:
	if (server->listen_fd >= 0)
		close(server->listen_fd);
	if (server->stop_pipe[0] >= 0) {
		close(server->stop_pipe[0]);
		close(server->stop_pipe[1]);
	}
	free(server);
	return NULL;
}

int metrics_http_port(const struct metrics_http *server)
{
	return server->port;
}

void metrics_http_stop(struct metrics_http *server)
{
	if (server == NULL)
		return;
	ssize_t ignored = write(server->stop_pipe[1], "x", 1);
	(void)ignored;
	pthread_join(server->thread, NULL);
	close(server->listen_fd);
	close(server->stop_pipe[0]);
	close(server->stop_pipe[1]);
	free(server);
}

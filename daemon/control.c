#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "protocol.h"
#include "redis_client.h"
#include "trace.h"

#define CONTROL_MAX_CLIENTS 256
/* A trace follower that does not read is dropped rather than buffered without bound. */
#define CONTROL_MAX_PENDING_OUTPUT (8 * 1024 * 1024)

struct control_client {
	int fd;
	uid_t uid;
	struct line_reader reader;
	char *output;
	size_t output_used, output_capacity;
	bool following;
	char *trace_signal, *trace_ticker;
	bool closing; /* close once the output is flushed */
};

static struct control_client *clients[CONTROL_MAX_CLIENTS];
static size_t client_count;
static PGconn *control_connection;
static redisContext *trace_subscription;

PGconn *control_db(struct control_context *context, char *err, size_t errsize)
{
	/*
	 * A connection looks fine until it is used after the server restarted.
	 * Requests are rare: an empty query first finds out, so that the
	 * request itself does not fail on a dead connection.
	 */
	if (control_connection != NULL && PQstatus(control_connection) == CONNECTION_OK) {
		PGresult *probe = PQexec(control_connection, "");
		bool alive = PQresultStatus(probe) == PGRES_EMPTY_QUERY;
		PQclear(probe);
		if (!alive) {
			PQfinish(control_connection);
			control_connection = NULL;
		}
	}
	return db_ensure(&control_connection, context->daemon->config.postgres_url, err, errsize);
}

void control_follow_trace(struct control_context *context, const char *signal_id, const char *ticker)
{
	struct control_client *client = context->client;
	client->following = true;
	client->trace_signal = signal_id != NULL ? strdup(signal_id) : NULL;
	client->trace_ticker = ticker != NULL ? strdup(ticker) : NULL;
}

static int ensure_parent_directory(const char *path, char *err, size_t errsize)
{
	char parent[sizeof ((struct sockaddr_un *)0)->sun_path];
	snprintf(parent, sizeof parent, "%s", path);
	char *slash = strrchr(parent, '/');
	if (slash == NULL || slash == parent)
		return 0;
	*slash = '\0';
	if (mkdir(parent, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errsize, "control socket directory %s: %s", parent, strerror(errno));
		return -1;
	}
	return 0;
}

int control_listen(const char *path, char *err, size_t errsize)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof address.sun_path) {
		snprintf(err, errsize, "control.socket %s: path too long (max %zu)", path,
			 sizeof address.sun_path - 1);
		return -1;
	}
	memcpy(address.sun_path, path, strlen(path) + 1);
	if (ensure_parent_directory(path, err, errsize) != 0)
		return -1;
	struct stat info;
	if (lstat(path, &info) == 0) {
		if (!S_ISSOCK(info.st_mode)) {
			snprintf(err, errsize, "control.socket %s exists and is not a socket", path);
			return -1;
		}
		char probe_err[256];
		int probe = protocol_connect(path, probe_err, sizeof probe_err);
		if (probe >= 0) {
			close(probe);
			snprintf(err, errsize, "another sigtrigd is listening on %s", path);
			return -1;
		}
		unlink(path); /* a dead daemon's socket */
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errsize, "socket: %s", strerror(errno));
		return -1;
	}
	/* The umask makes the socket 0600 from the moment it exists: no window for others. */
	mode_t previous = umask(0177);
	int bound = bind(fd, (struct sockaddr *)&address, sizeof address);
	umask(previous);
	if (bound != 0 || listen(fd, 64) != 0) {
		snprintf(err, errsize, "control socket %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void client_close(size_t index)
{
	struct control_client *client = clients[index];
	close(client->fd);
	line_reader_free(&client->reader);
	free(client->output);
	free(client->trace_signal);
	free(client->trace_ticker);
	free(client);
	clients[index] = clients[--client_count];
}

static int client_queue(struct control_client *client, const char *text, size_t length)
{
	if (client->output_used + length + 1 > CONTROL_MAX_PENDING_OUTPUT)
		return -1;
	if (client->output_used + length + 1 > client->output_capacity) {
		size_t capacity = client->output_capacity == 0 ? 4096 : client->output_capacity;
		while (capacity < client->output_used + length + 1)
			capacity *= 2;
		char *grown = realloc(client->output, capacity);
		if (grown == NULL)
			return -1;
		client->output = grown;
		client->output_capacity = capacity;
	}
	memcpy(client->output + client->output_used, text, length);
	client->output[client->output_used + length] = '\n';
	client->output_used += length + 1;
	return 0;
}

static int client_send(struct control_client *client, json_t *message)
{
	char *text = json_dumps(message, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(message);
	if (text == NULL)
		return -1;
	int status = client_queue(client, text, strlen(text));
	free(text);
	return status;
}

static int client_flush(struct control_client *client)
{
	while (client->output_used > 0) {
		ssize_t put = send(client->fd, client->output, client->output_used, MSG_NOSIGNAL);
		if (put < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		memmove(client->output, client->output + put, client->output_used - (size_t)put);
		client->output_used -= (size_t)put;
	}
	return 0;
}

static json_t *dispatch_request(struct daemon *daemon, struct control_client *client, const char *line,
				size_t length)
{
	char err[256];
	json_t *request = protocol_decode(line, length, err, sizeof err);
	if (request == NULL)
		return protocol_error("bad request: %s", err);
	const char *type = json_string_value(json_object_get(request, "type"));
	json_t *version = json_object_get(request, "v");
	if (version != NULL && (!json_is_integer(version) || json_integer_value(version) != PROTOCOL_VERSION)) {
		json_t *refusal = json_is_integer(version)
					  ? protocol_error("protocol version %lld is not supported (this daemon speaks %d)",
							   (long long)json_integer_value(version), PROTOCOL_VERSION)
					  : protocol_error("\"v\" must be the protocol version, %d", PROTOCOL_VERSION);
		json_decref(request);
		return refusal;
	}
	size_t count;
	const struct control_request_type *types = control_request_types(&count);
	json_t *response = NULL;
	struct control_context context = { daemon, control_connection, client };
	for (size_t i = 0; i < count && response == NULL; i++)
		if (strcmp(types[i].type, type) == 0)
			response = types[i].handle(&context, request);
	if (response == NULL)
		response = protocol_error("unknown request type '%s'", type);
	json_decref(request);
	return response;
}

/* Reads what the client sent and answers each complete request. -1: drop the client. */
static int client_read(struct daemon *daemon, struct control_client *client)
{
	for (;;) {
		char *line;
		size_t length;
		int got = line_reader_next(&client->reader, &line, &length);
		if (got == 0)
			return client->output_used > 0 || client->following ? (client->closing = true, 0) : -1;
		if (got < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EMSGSIZE) {
				client_send(client, protocol_error("request longer than %d bytes", PROTOCOL_MAX_LINE));
				client->closing = true;
				return 0;
			}
			return -1;
		}
		if (length == 0)
			continue;
		if (client->following) {
			/* A trace stream takes no further requests. */
			continue;
		}
		if (client_send(client, dispatch_request(daemon, client, line, length)) != 0)
			return -1;
	}
}

static void accept_clients(int listen_fd)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct ucred peer;
		socklen_t size = sizeof peer;
		/* The socket is 0600 already; checking the peer's uid also covers a socket
		 * directory with looser permissions. root may always connect. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0 ||
		    (peer.uid != geteuid() && peer.uid != 0)) {
			log_msg(LOG_WARN, "control_client_refused", "peer uid %u is not the daemon's",
				(unsigned)peer.uid);
			close(fd);
			continue;
		}
		if (client_count == CONTROL_MAX_CLIENTS) {
			log_msg(LOG_WARN, "control_client_refused", "too many clients (%d)", CONTROL_MAX_CLIENTS);
			close(fd);
			continue;
		}
		struct control_client *client = calloc(1, sizeof *client);
		if (client == NULL) {
			close(fd);
			continue;
		}
		client->fd = fd;
		client->uid = peer.uid;
		line_reader_init(&client->reader, fd);
		clients[client_count++] = client;
	}
}

static size_t follower_count(void)
{
	size_t count = 0;
	for (size_t i = 0; i < client_count; i++)
		count += clients[i]->following;
	return count;
}

/* Subscribes to the trace channel while anyone follows, unsubscribes when nobody does. */
static void update_trace_subscription(struct daemon *daemon)
{
	size_t followers = follower_count();
	if (followers == 0 && trace_subscription != NULL) {
		redisFree(trace_subscription);
		trace_subscription = NULL;
	}
	if (followers > 0 && trace_subscription == NULL) {
		char err[256];
		trace_subscription = redis_connect_url(daemon->config.redis_url, 2000, err, sizeof err);
		if (trace_subscription == NULL) {
			log_msg(LOG_WARN, "trace_subscribe_failed", "%s", err);
			return;
		}
		redisReply *reply = redisCommand(trace_subscription, "SUBSCRIBE %s", TRACE_CHANNEL);
		if (reply == NULL) {
			log_msg(LOG_WARN, "trace_subscribe_failed", "%s", trace_subscription->errstr);
			redisFree(trace_subscription);
			trace_subscription = NULL;
			return;
		}
		freeReplyObject(reply);
		/* From here on the connection is only read when poll says it is readable. */
		int flags = fcntl(trace_subscription->fd, F_GETFL);
		fcntl(trace_subscription->fd, F_SETFL, flags | O_NONBLOCK);
	}
}

static void relay_trace_event(const char *text, size_t length)
{
	json_t *event = json_loadb(text, length, 0, NULL);
	if (event == NULL)
		return;
	json_object_set_new(event, "v", json_integer(PROTOCOL_VERSION));
	json_object_set_new(event, "type", json_string("event"));
	for (size_t i = 0; i < client_count; i++) {
		struct control_client *client = clients[i];
		if (!client->following || !trace_event_matches(event, client->trace_signal, client->trace_ticker))
			continue;
		if (client_send(client, json_incref(event)) != 0) {
			log_msg(LOG_WARN, "trace_client_dropped", "a trace client stopped reading");
			client->following = false;
			client->closing = true;
			client->output_used = 0;
		}
	}
	json_decref(event);
}

static void read_trace_subscription(void)
{
	if (redisBufferRead(trace_subscription) != REDIS_OK) {
		log_msg(LOG_WARN, "trace_subscription_lost", "%s", trace_subscription->errstr);
		redisFree(trace_subscription);
		trace_subscription = NULL;
		return;
	}
	void *reply_pointer;
	while (redisGetReplyFromReader(trace_subscription, &reply_pointer) == REDIS_OK && reply_pointer != NULL) {
		redisReply *reply = reply_pointer;
		/* ["message", channel, payload] */
		if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
		    reply->element[2]->type == REDIS_REPLY_STRING)
			relay_trace_event(reply->element[2]->str, reply->element[2]->len);
		freeReplyObject(reply);
	}
}

void control_serve(struct daemon *daemon, int listen_fd, int wake_fd)
{
	struct pollfd fds[CONTROL_MAX_CLIENTS + 3];
	int64_t last_subscription_attempt = 0;
	while (!daemon->stopping) {
		if (trace_subscription == NULL || follower_count() == 0) {
			int64_t now = time(NULL);
			if (now != last_subscription_attempt) {
				last_subscription_attempt = now;
				update_trace_subscription(daemon);
			}
		}
		nfds_t count = 0;
		fds[count++] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
		fds[count++] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
		fds[count++] = (struct pollfd){ .fd = trace_subscription != NULL ? trace_subscription->fd : -1,
						.events = POLLIN };
		for (size_t i = 0; i < client_count; i++)
			fds[count++] = (struct pollfd){ .fd = clients[i]->fd,
							.events = (short)(POLLIN | (clients[i]->output_used > 0
										  ? POLLOUT
										  : 0)) };
		int ready = poll(fds, count, 500);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready <= 0)
			continue;
		if (fds[1].revents & POLLIN) {
			char drain[64];
			while (read(wake_fd, drain, sizeof drain) > 0) {
			}
		}
		if (fds[2].revents != 0 && trace_subscription != NULL)
			read_trace_subscription();
		/* Walk clients backwards: closing one moves the last into its place. */
		for (size_t i = client_count; i-- > 0;) {
			struct control_client *client = clients[i];
			short events = fds[3 + i].revents;
			int drop = 0;
			if (events & (POLLIN | POLLHUP))
				drop = client_read(daemon, client) != 0;
			if (!drop && client_flush(client) != 0)
				drop = 1;
			if (!drop && client->closing && client->output_used == 0)
				drop = 1;
			if (!drop && (events & POLLERR))
				drop = 1;
			if (drop)
				client_close(i);
		}
		if (fds[0].revents & POLLIN)
			accept_clients(listen_fd);
	}
	while (client_count > 0)
		client_close(client_count - 1);
	redisFree(trace_subscription);
	trace_subscription = NULL;
	if (control_connection != NULL)
		PQfinish(control_connection);
	control_connection = NULL;
}

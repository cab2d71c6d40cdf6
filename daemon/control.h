/*
 * The control server: the daemon's Unix socket, speaking the protocol of
 * src/protocol.h. Runs on the main thread; requests are answered by the
 * handlers in control_requests.c; `trace` clients stay connected and get
 * the events relayed from Redis.
 */
#ifndef SIGTRIG_CONTROL_H
#define SIGTRIG_CONTROL_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "daemon.h"

struct control_client;

/* What a request handler may use: the daemon, and the control thread's own connections. */
struct control_context {
	struct daemon *daemon;
	PGconn *db; /* use control_db() */
	struct control_client *client;
};

/* The control thread's PostgreSQL connection, (re)connected on demand; NULL with err. */
PGconn *control_db(struct control_context *context, char *err, size_t errsize);

/* Marks the requesting client as a trace follower with these filters (may be NULL). */
void control_follow_trace(struct control_context *context, const char *signal_id, const char *ticker);

/* A handler returns the response (a new reference); it never returns NULL. */
typedef json_t *(*control_handler)(struct control_context *context, const json_t *request);

struct control_request_type {
	const char *type;
	control_handler handle;
};

/* The table of request types, in control_requests.c. */
const struct control_request_type *control_request_types(size_t *count);

/*
 * Creates the socket (parent directory 0700 when it makes it, socket 0600,
 * a stale socket of a dead daemon replaced, a live one refused).
 */
int control_listen(const char *path, char *err, size_t errsize);
/* Serves until daemon->stopping; wake_fd becomes readable when a signal arrives. */
void control_serve(struct daemon *daemon, int listen_fd, int wake_fd);

#endif

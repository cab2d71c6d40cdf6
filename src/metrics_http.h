/*
 * The optional HTTP listener of metrics.listen: `GET /metrics` answers
 * the Prometheus text of metrics_to_prometheus(). One thread of its own
 * serves one connection at a time and closes it after the answer; a
 * request is bounded in size and in the time it may take to arrive, so a
 * slow or hostile client delays the next scrape by at most that time and
 * never the daemon. The metrics hold no secret, and the listener has no
 * authentication: bind it to a loopback or private address.
 */
#ifndef SIGTRIG_METRICS_HTTP_H
#define SIGTRIG_METRICS_HTTP_H

#include <stddef.h>

/* Requests larger than this (request line and headers) are refused with 431. */
#define METRICS_HTTP_MAX_REQUEST_BYTES 8192
/* A request must arrive whole within this time, or the connection is closed. */
#define METRICS_HTTP_READ_TIMEOUT_MS 2000

struct metrics_http;

/*
 * Binds `address` ("host:port", "[ipv6]:port", ":port" for every
 * address; port 0 picks a free one) and starts serving. Returns NULL with
 * the reason in err ("metrics.listen 127.0.0.1:9464: Address already in
 * use") when the address is malformed or cannot be bound.
 */
struct metrics_http *metrics_http_start(const char *address, char *err, size_t errsize);
/* The port the listener is bound to (the one chosen, for port 0). */
int metrics_http_port(const struct metrics_http *server);
/* Stops the thread, closes the socket, frees the listener. NULL is ignored. */
void metrics_http_stop(struct metrics_http *server);

#endif

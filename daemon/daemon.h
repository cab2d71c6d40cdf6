/*
 * sigtrigd's shared state: the configuration, which roles run, and the
 * stop flag. Each role is a module with start/stop/info (daemon/roles.def);
 * a role owns its threads and connections, and talks to the others only
 * through Kafka, Redis and PostgreSQL, so roles can run in different
 * processes on different machines.
 */
#ifndef SIGTRIG_DAEMON_H
#define SIGTRIG_DAEMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "kafka.h"
#include "signal.h"

struct daemon {
	struct config config;
	const char *config_path;
	unsigned roles;          /* bit set of enum role_id */
	double started_at;       /* wall clock */
	volatile int stopping;   /* set once by the main thread on SIGTERM/SIGINT */
	struct kafka_producer *producer; /* shared, thread-safe: generator and inject requests */
};

enum role_id {
#define ROLE(name) ROLE_##name,
#include "roles.def"
#undef ROLE
	ROLE_COUNT
};

/* Every role module provides these three. */
#define ROLE(name)                                                                   \
	int name##_start(struct daemon *daemon, char *err, size_t errsize);          \
	void name##_stop(struct daemon *daemon);                                     \
	json_t *name##_info(struct daemon *daemon);
#include "roles.def"
#undef ROLE

static inline bool daemon_has_role(const struct daemon *daemon, enum role_id role)
{
	return (daemon->roles & (1u << role)) != 0;
}

/*
 * Publishes a validated signal to the signals topic, keyed by its first
 * ticker; the "published" trace event follows Kafka's acknowledgement.
 * With a delivery, the caller can wait for that acknowledgement and must
 * json_decref(delivery->tickers) afterwards; without, failures are logged.
 * Thread-safe.
 */
int daemon_publish_signal(struct daemon *daemon, const struct signal *signal,
			  struct kafka_delivery *delivery, char *err, size_t errsize);
/* The tickers of a signal as a JSON array of strings. */
json_t *daemon_signal_tickers(const struct signal *signal);

#endif

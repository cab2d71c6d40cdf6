/*
 * The trace relay: publishes the stage events queued by trace_emit() on
 * the Redis channel, and finds out once a second whether anybody (any
 * daemon's trace client) subscribes, so that no event is even built while
 * nobody follows.
 */
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "redis_client.h"
#include "timeutil.h"
#include "trace.h"
#include "trace_relay.h"

#define RELAY_BATCH 512

static struct {
	pthread_t thread;
	bool running;
	volatile int stop;
	struct daemon *daemon;
	redisContext *redis;
	int64_t last_listener_check_ms;
	bool outage_logged;
} relay;

static bool relay_connect(void)
{
	if (relay.redis != NULL && relay.redis->err == 0)
		return true;
	redisFree(relay.redis);
	char err[256];
	relay.redis = redis_connect_url(relay.daemon->config.redis_url, 2000, err, sizeof err);
	if (relay.redis == NULL) {
		if (!relay.outage_logged)
			log_msg(LOG_WARN, "trace_relay_disconnected", "%s", err);
		relay.outage_logged = true;
		trace_set_listening(false);
		return false;
	}
	relay.outage_logged = false;
	return true;
}

static void check_listeners(void)
{
	redisReply *reply = redisCommand(relay.redis, "PUBSUB NUMSUB %s", TRACE_CHANNEL);
	bool listening = reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
			 reply->element[1]->type == REDIS_REPLY_INTEGER && reply->element[1]->integer > 0;
	freeReplyObject(reply);
	trace_set_listening(listening);
}

static void *relay_loop(void *argument)
{
	(void)argument;
	char *lines[RELAY_BATCH];
	while (!relay.stop) {
		int64_t now = time_monotonic_ms();
		if (now - relay.last_listener_check_ms >= 1000) {
			relay.last_listener_check_ms = now;
			if (relay_connect())
				check_listeners();
		}
		int taken = trace_take(lines, RELAY_BATCH, 200);
		if (taken == 0)
			continue;
		if (relay_connect()) {
			for (int i = 0; i < taken; i++)
				redisAppendCommand(relay.redis, "PUBLISH %s %s", TRACE_CHANNEL, lines[i]);
			for (int i = 0; i < taken; i++) {
				void *reply = NULL;
				if (redisGetReply(relay.redis, &reply) != REDIS_OK)
					break;
				freeReplyObject(reply);
			}
		}
		for (int i = 0; i < taken; i++)
			free(lines[i]);
	}
	return NULL;
}

int trace_relay_start(struct daemon *daemon, char *err, size_t errsize)
{
	relay.daemon = daemon;
	relay.stop = 0;
	if (pthread_create(&relay.thread, NULL, relay_loop, NULL) != 0) {
		snprintf(err, errsize, "cannot start the trace relay thread");
		return -1;
	}
	relay.running = true;
	return 0;
}

void trace_relay_stop(void)
{
	if (!relay.running)
		return;
	relay.stop = 1;
	pthread_join(relay.thread, NULL);
	redisFree(relay.redis);
	relay.redis = NULL;
	relay.running = false;
}

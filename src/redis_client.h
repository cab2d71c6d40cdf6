/* Redis connections from a redis:// URL (hiredis). One connection per thread. */
#ifndef SIGTRIG_REDIS_CLIENT_H
#define SIGTRIG_REDIS_CLIENT_H

#include <hiredis/hiredis.h>
#include <stddef.h>

struct redis_endpoint {
	char host[256];
	int port;
	int database;
	char password[256]; /* empty for none */
	char username[128]; /* empty for the default user */
};

/* redis://[[user]:password@]host[:port][/db]; errors never echo the password. */
int redis_endpoint_parse(const char *url, struct redis_endpoint *endpoint, char *err, size_t errsize);

/*
 * Connects, authenticates and selects the database. `timeout_ms` bounds
 * the connect and every later command (0: no command timeout, for BRPOP
 * and SUBSCRIBE connections). NULL with err filled on failure.
 */
redisContext *redis_connect_url(const char *url, int timeout_ms, char *err, size_t errsize);

/* Runs PING; 0 when the server answered PONG. */
int redis_ping(redisContext *context);

#endif

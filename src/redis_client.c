#include "redis_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

int redis_endpoint_parse(const char *url, struct redis_endpoint *endpoint, char *err, size_t errsize)
{
	memset(endpoint, 0, sizeof *endpoint);
	endpoint->port = 6379;
	const char *rest;
	if (strncmp(url, "redis://", 8) == 0) {
		rest = url + 8;
	} else {
		snprintf(err, errsize, "redis.url must start with redis://");
		return -1;
	}
	const char *authority_end = rest + strcspn(rest, "/?");
	const char *at = NULL;
	for (const char *c = rest; c < authority_end; c++)
		if (*c == '@')
			at = c;
	const char *host = rest;
	if (at != NULL) {
		const char *colon = memchr(rest, ':', (size_t)(at - rest));
		if (colon != NULL) {
			size_t user_length = (size_t)(colon - rest);
			size_t password_length = (size_t)(at - colon - 1);
			if (user_length >= sizeof endpoint->username ||
			    password_length >= sizeof endpoint->password) {
				snprintf(err, errsize, "redis.url: user or password too long");
				return -1;
			}
			memcpy(endpoint->username, rest, user_length);
			memcpy(endpoint->password, colon + 1, password_length);
		} else {
			/* redis://password@host is how some tools write it */
			size_t password_length = (size_t)(at - rest);
			if (password_length >= sizeof endpoint->password) {
				snprintf(err, errsize, "redis.url: password too long");
				return -1;
			}
			memcpy(endpoint->password, rest, password_length);
		}
		host = at + 1;
	}
	const char *port = memchr(host, ':', (size_t)(authority_end - host));
	const char *host_end = port != NULL ? port : authority_end;
	if (host_end == host || (size_t)(host_end - host) >= sizeof endpoint->host) {
		snprintf(err, errsize, "redis.url: missing or too long host");
		return -1;
	}
	memcpy(endpoint->host, host, (size_t)(host_end - host));
	if (port != NULL) {
		char *end;
		long number = strtol(port + 1, &end, 10);
		if (end != authority_end || number <= 0 || number > 65535) {
			snprintf(err, errsize, "redis.url: bad port");
			return -1;
		}
		endpoint->port = (int)number;
	}
	if (*authority_end == '/' && authority_end[1] != '\0') {
		char *end;
		long number = strtol(authority_end + 1, &end, 10);
		if ((*end != '\0' && *end != '?') || number < 0 || number > 1000000) {
			snprintf(err, errsize, "redis.url: bad database number");
			return -1;
		}
		endpoint->database = (int)number;
	}
	return 0;
}

static int check_reply(redisContext *context, redisReply *reply, const char *what, char *err,
		       size_t errsize)
{
	if (reply == NULL) {
		snprintf(err, errsize, "%s: %s", what, context->errstr);
		return -1;
	}
	int status = 0;
	if (reply->type == REDIS_REPLY_ERROR) {
		snprintf(err, errsize, "%s: %s", what, reply->str);
		status = -1;
	}
	freeReplyObject(reply);
	return status;
}

redisContext *redis_connect_url(const char *url, int timeout_ms, char *err, size_t errsize)
{
	struct redis_endpoint endpoint;
	if (redis_endpoint_parse(url, &endpoint, err, errsize) != 0)
		return NULL;
	struct timeval connect_timeout = { 5, 0 };
	redisContext *context = redisConnectWithTimeout(endpoint.host, endpoint.port, connect_timeout);
	if (context == NULL || context->err) {
		snprintf(err, errsize, "redis %s:%d: %s", endpoint.host, endpoint.port,
			 context != NULL ? context->errstr : "out of memory");
		redisFree(context);
		return NULL;
	}
	if (timeout_ms > 0) {
		struct timeval command_timeout = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
		redisSetTimeout(context, command_timeout);
	}
	if (endpoint.password[0] != '\0') {
		redisReply *reply = endpoint.username[0] != '\0'
					    ? redisCommand(context, "AUTH %s %s", endpoint.username,
							   endpoint.password)
					    : redisCommand(context, "AUTH %s", endpoint.password);
		if (check_reply(context, reply, "redis AUTH", err, errsize) != 0) {
			redisFree(context);
			return NULL;
		}
	}
	if (endpoint.database != 0) {
		redisReply *reply = redisCommand(context, "SELECT %d", endpoint.database);
		if (check_reply(context, reply, "redis SELECT", err, errsize) != 0) {
			redisFree(context);
			return NULL;
		}
	}
	return context;
}

int redis_ping(redisContext *context)
{
	redisReply *reply = redisCommand(context, "PING");
	int ok = reply != NULL && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
	freeReplyObject(reply);
	return ok ? 0 : -1;
}

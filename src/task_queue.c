#include "task_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_client.h"

/* Values per LPUSH: large rounds go in a few commands, each of bounded size. */
#define TASK_QUEUE_PUSH_CHUNK 1024

/* *redis, (re)connected when it is missing or broken; NULL with err filled. */
static redisContext *task_queue_connection(redisContext **redis, const char *url, char *err, size_t errsize)
{
	if (*redis != NULL && (*redis)->err) {
		redisFree(*redis);
		*redis = NULL;
	}
	if (*redis == NULL)
		*redis = redis_connect_url(url, 5000, err, errsize);
	return *redis;
}

static void task_queue_drop(redisContext **redis, char *err, size_t errsize)
{
	snprintf(err, errsize, "redis: %s", (*redis)->errstr);
	redisFree(*redis);
	*redis = NULL;
}

int task_queue_push(redisContext **redis, const char *url, const char *queue, char *const *envelopes,
		    size_t count, char *err, size_t errsize)
{
	if (count == 0)
		return 0;
	if (task_queue_connection(redis, url, err, errsize) == NULL)
		return -1;
	const char *argv[TASK_QUEUE_PUSH_CHUNK + 2];
	size_t lengths[TASK_QUEUE_PUSH_CHUNK + 2];
	argv[0] = "LPUSH";
	lengths[0] = 5;
	argv[1] = queue;
	lengths[1] = strlen(queue);
	size_t commands = 0;
	for (size_t pushed = 0; pushed < count; commands++) {
		size_t chunk = count - pushed;
		if (chunk > TASK_QUEUE_PUSH_CHUNK)
			chunk = TASK_QUEUE_PUSH_CHUNK;
		for (size_t i = 0; i < chunk; i++) {
			argv[2 + i] = envelopes[pushed + i];
			lengths[2 + i] = strlen(envelopes[pushed + i]);
		}
		redisAppendCommandArgv(*redis, (int)chunk + 2, argv, lengths);
		pushed += chunk;
	}
	int status = 0;
	for (size_t i = 0; i < commands; i++) {
		redisReply *reply = NULL;
		if (redisGetReply(*redis, (void **)&reply) != REDIS_OK) {
			task_queue_drop(redis, err, errsize);
			return -1;
		}
		if (reply->type == REDIS_REPLY_ERROR) {
			snprintf(err, errsize, "redis LPUSH: %s", reply->str);
			status = -1;
		}
		freeReplyObject(reply);
	}
	return status;
}

int task_queue_depth(redisContext **redis, const char *url, const char *queue, long long *depth, char *err,
		     size_t errsize)
{
	if (task_queue_connection(redis, url, err, errsize) == NULL)
		return -1;
	redisReply *reply = redisCommand(*redis, "LLEN %s", queue);
	if (reply == NULL) {
		task_queue_drop(redis, err, errsize);
		return -1;
	}
	int status = 0;
	if (reply->type == REDIS_REPLY_INTEGER) {
		*depth = reply->integer;
	} else {
		snprintf(err, errsize, "redis LLEN %s: %s", queue,
			 reply->type == REDIS_REPLY_ERROR ? reply->str : "not an integer");
		status = -1;
	}
	freeReplyObject(reply);
	return status;
}

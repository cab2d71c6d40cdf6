#include "task_queue.h"

#include <stdio.h>

#include "redis_client.h"

int task_queue_push(redisContext **redis, const char *url, const char *queue, char *const *envelopes,
		    size_t count, char *err, size_t errsize)
{
	if (*redis != NULL && (*redis)->err) {
		redisFree(*redis);
		*redis = NULL;
	}
	if (*redis == NULL) {
		*redis = redis_connect_url(url, 5000, err, errsize);
		if (*redis == NULL)
			return -1;
	}
	for (size_t i = 0; i < count; i++)
		redisAppendCommand(*redis, "LPUSH %s %s", queue, envelopes[i]);
	int status = 0;
	for (size_t i = 0; i < count; i++) {
		redisReply *reply = NULL;
		if (redisGetReply(*redis, (void **)&reply) != REDIS_OK) {
			snprintf(err, errsize, "redis: %s", (*redis)->errstr);
			redisFree(*redis);
			*redis = NULL;
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

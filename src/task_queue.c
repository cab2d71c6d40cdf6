#include "task_queue.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "celery.h"
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

/* properties.delivery_tag's time of an envelope; 0 when it has none. */
static int64_t envelope_sent_ms(const char *envelope, size_t length)
{
	json_t *parsed = json_loadb(envelope, length, 0, NULL);
	const char *tag = json_string_value(json_object_get(json_object_get(parsed, "properties"), "delivery_tag"));
	int64_t sent_ms = 0;
	if (!celery_delivery_tag_sent_ms(tag, &sent_ms))
		sent_ms = 0;
	json_decref(parsed);
	return sent_ms;
}

int task_queue_look(redisContext **redis, const char *url, const char *queue, bool with_age,
		    struct task_queue_state *state, char *err, size_t errsize)
{
	*state = (struct task_queue_state){ 0, 0 };
	if (task_queue_connection(redis, url, err, errsize) == NULL)
		return -1;
	redisAppendCommand(*redis, "LLEN %s", queue);
	if (with_age)
		redisAppendCommand(*redis, "LINDEX %s -1", queue);
	int status = 0;
	for (int i = 0; i < (with_age ? 2 : 1); i++) {
		redisReply *reply = NULL;
		if (redisGetReply(*redis, (void **)&reply) != REDIS_OK) {
			task_queue_drop(redis, err, errsize);
			return -1;
		}
		if (i == 0 && reply->type == REDIS_REPLY_INTEGER) {
			state->depth = reply->integer;
		} else if (i == 1 && reply->type == REDIS_REPLY_STRING) {
			state->oldest_sent_ms = envelope_sent_ms(reply->str, reply->len);
		} else if (reply->type != REDIS_REPLY_NIL || i == 0) {
			snprintf(err, errsize, "redis %s %s: %s", i == 0 ? "LLEN" : "LINDEX", queue,
				 reply->type == REDIS_REPLY_ERROR ? reply->str : "an answer of the wrong type");
			status = -1;
		}
		freeReplyObject(reply);
	}
	return status;
}

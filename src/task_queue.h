/* Sending Celery task envelopes to the Redis queue (dispatcher and scheduler). */
#ifndef SIGTRIG_TASK_QUEUE_H
#define SIGTRIG_TASK_QUEUE_H

#include <hiredis/hiredis.h>
#include <stddef.h>

/*
 * LPUSHes the envelopes in one round trip (a few commands of at most 1024), (re)connecting *redis to `url`
 * when needed. Returns 0 when Redis took every one; -1 with err otherwise
 * (the connection is dropped so the next call reconnects).
 */
int task_queue_push(redisContext **redis, const char *url, const char *queue, char *const *envelopes,
		    size_t count, char *err, size_t errsize);

/* LLEN of the queue into *depth: the tasks no worker has taken yet. 0, or -1 with err. */
int task_queue_depth(redisContext **redis, const char *url, const char *queue, long long *depth, char *err,
		     size_t errsize);

#endif

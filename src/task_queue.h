/* Sending Celery task envelopes to the Redis queue (dispatcher and scheduler). */
#ifndef SIGTRIG_TASK_QUEUE_H
#define SIGTRIG_TASK_QUEUE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * LPUSHes the envelopes in one round trip (a few commands of at most 1024), (re)connecting *redis to `url`
 * when needed. Returns 0 when Redis took every one; -1 with err otherwise
 * (the connection is dropped so the next call reconnects).
 */
int task_queue_push(redisContext **redis, const char *url, const char *queue, char *const *envelopes,
		    size_t count, char *err, size_t errsize);

/* How far the workers are behind the queue, as one look at it sees it. */
struct task_queue_state {
	long long depth;        /* LLEN: the tasks no worker has taken yet */
	/*
	 * When the oldest of them was sent (Unix ms, from its delivery tag:
	 * celery_delivery_tag_sent_ms); 0 when the queue is empty, when the
	 * age was not asked for, or when the oldest task's tag does not say
	 * (a Python producer's).
	 */
	int64_t oldest_sent_ms;
};

/*
 * Looks at the queue in one round trip: LLEN, and with `with_age` LINDEX
 * -1 (LPUSH and BRPOP: the oldest task is the last). 0, or -1 with err.
 */
int task_queue_look(redisContext **redis, const char *url, const char *queue, bool with_age,
		    struct task_queue_state *state, char *err, size_t errsize);

#endif

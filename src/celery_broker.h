/*
 * The Redis side of a Celery worker (CELERY_WIRE.md sections 3-6), kept
 * compatible with kombu's bookkeeping so Python workers and sigtrig
 * recover each other's messages: the `unacked` hash and `unacked_index`
 * zset hold every message a worker has taken and not yet acknowledged.
 * Each call runs on the caller's connection; none blocks longer than the
 * connection's command timeout.
 */
#ifndef SIGTRIG_CELERY_BROKER_H
#define SIGTRIG_CELERY_BROKER_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#define CELERY_UNACKED "unacked"
#define CELERY_UNACKED_INDEX "unacked_index"
#define CELERY_UNACKED_MUTEX "unacked_mutex"
/* Messages no worker can run, newest first: {"reason", "queue", "time", "envelope"}. */
#define CELERY_DEAD_LETTER_LIST "sigtrig:dead-letter"

enum celery_take_status {
	CELERY_TAKE_ERROR = -1,
	CELERY_TAKE_EMPTY = 0,
	CELERY_TAKE_TASK = 1,           /* recorded in unacked: run it, then ack */
	CELERY_TAKE_DEAD_LETTERED = 2,  /* not JSON, no delivery tag, or a tag already in flight */
};

struct celery_taken {
	char *text;         /* the envelope as it was in the list, malloc'd */
	size_t length;
	char *delivery_tag; /* CELERY_TAKE_TASK: the key of its unacked entry, malloc'd */
	char reason[256];   /* CELERY_TAKE_DEAD_LETTERED: why */
};

void celery_taken_free(struct celery_taken *taken);

/*
 * Takes the next message of `queue` and its priority lists, highest
 * priority list first, and records it in unacked/unacked_index in the same
 * atomic script, so no crash can lose it between the two (kombu's BRPOP
 * then HSET has that gap). The delivery tag is the one the script read,
 * so the message can be acked even when it turns out not to parse here.
 * Returns a celery_take_status; call celery_taken_free() after it.
 */
int celery_broker_take(redisContext *redis, const char *queue, struct celery_taken *taken, char *err,
		       size_t errsize);

/* MULTI; ZREM unacked_index tag; HDEL unacked tag; EXEC */
int celery_broker_ack(redisContext *redis, const char *delivery_tag, char *err, size_t errsize);

/* Pushes a dead-letter entry and acks the message, atomically. */
int celery_broker_reject(redisContext *redis, const char *delivery_tag, const char *dead_letter_entry,
			 char *err, size_t errsize);

/* MULTI; SETEX celery-task-meta-<id> expires json; PUBLISH celery-task-meta-<id> json; EXEC */
int celery_broker_store_result(redisContext *redis, const char *task_id, const char *result_json,
			       long expires_s, char *err, size_t errsize);

/*
 * Gives one taken message back: removes it from unacked/unacked_index and
 * RPUSHes it, marked redelivered, to the list of its routing key and
 * priority (`queue` when it has none), where the next take finds it first.
 * An entry that is not [envelope, exchange, routing_key] goes to the dead
 * letters instead. Returns 1 restored, 0 when nobody holds it any more or
 * it was dead-lettered, -1 on error.
 */
int celery_broker_restore(redisContext *redis, const char *delivery_tag, const char *queue, char *err,
			  size_t errsize);

/*
 * kombu's restore_visible: under the unacked_mutex lock (SET NX PX 300000,
 * released by compare-and-delete), restores every message taken more than
 * `visibility_timeout_s` ago. *restored receives how many. Returns 0, 1
 * when another worker holds the lock (nothing done), -1 on error.
 */
int celery_broker_restore_expired(redisContext *redis, double visibility_timeout_s, const char *queue,
				  size_t *restored, char *err, size_t errsize);

#endif

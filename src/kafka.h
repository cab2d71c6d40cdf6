/*
 * Kafka clients made from sigtrig's configuration. sigtrig's own kafka.*
 * keys map to librdkafka properties, and any other kafka.<property> key is
 * passed through unchanged (SASL, TLS, ...), as kcat does.
 */
#ifndef SIGTRIG_KAFKA_H
#define SIGTRIG_KAFKA_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/*
 * The outcome of one produced message, for a caller that waits for it
 * (kafka_delivery_wait). Owned by the caller until the wait returns.
 */
struct kafka_delivery {
	bool detached;               /* nobody waits: freed by the delivery callback */
	char signal_id[40];
	json_t *tickers;             /* for the "published" trace event; borrowed unless detached */
	int done;                    /* guarded by the delivery lock */
	rd_kafka_resp_err_t error;
	int32_t partition;
	int64_t offset;
};

/*
 * A producer whose delivery reports are served by a background thread, so
 * publishing never needs the caller to poll. Each delivered signal emits
 * the "published" trace event.
 */
struct kafka_producer;
struct kafka_producer *kafka_producer_new(const struct config *config, char *err, size_t errsize);
void kafka_producer_destroy(struct kafka_producer *producer, int flush_timeout_ms);
rd_kafka_t *kafka_producer_handle(struct kafka_producer *producer);

/*
 * Queues a message (key may be NULL; signal_id NULL or "" for a message
 * that is not a signal, which has no "published" trace event). With a
 * delivery, its outcome is reported there; without one, a failure is
 * counted and logged. Returns 0 when queued.
 */
int kafka_produce(struct kafka_producer *producer, const char *topic, const char *key, const char *value,
		  size_t length, struct kafka_delivery *delivery, const char *signal_id, json_t *tickers,
		  char *err, size_t errsize);
/* Whether the delivery is reported, without waiting: 1 delivered, 0 not yet, -1 failed (err filled). */
int kafka_delivery_poll(struct kafka_delivery *delivery, char *err, size_t errsize);
/* Waits until the delivery is reported; 0 delivered, -1 failed or timed out (err filled). */
int kafka_delivery_wait(struct kafka_delivery *delivery, int timeout_ms, char *err, size_t errsize);

/* A consumer in kafka.group subscribed to kafka.topic, offsets committed by hand. */
rd_kafka_t *kafka_consumer_new(const struct config *config, char *err, size_t errsize);

/*
 * A file descriptor that becomes readable when a message (or event) lands
 * in the consumer's empty queue, so that a caller can wait for it and for
 * other sockets in one poll(). librdkafka writes to it only when the queue
 * goes from empty to not empty: drain the queue before waiting again.
 */
struct kafka_wakeup {
	int fds[2];               /* a pipe: [0] to poll, [1] written by librdkafka */
	rd_kafka_queue_t *queue;  /* the consumer's queue, kept for the close */
};
int kafka_wakeup_open(rd_kafka_t *consumer, struct kafka_wakeup *wakeup, char *err, size_t errsize);
/* Empties the pipe, after a wake-up, before the queue is drained. */
void kafka_wakeup_clear(struct kafka_wakeup *wakeup);
void kafka_wakeup_close(struct kafka_wakeup *wakeup);

/* Checks the cluster answers a metadata request in timeout_ms; 0 when it does. */
int kafka_ping(rd_kafka_t *handle, int timeout_ms, char *err, size_t errsize);

/*
 * Whether a librdkafka log line reports a consumer position that fell off
 * the log (an "offset reset ... Offset out of range"): messages were lost.
 */
bool kafka_log_is_offset_reset(const char *facility, const char *text);

#endif

/*
 * What the dispatcher writes to the dead-letter topic (kafka.dead_letter_topic)
 * for a consumed message that is not a valid signal: one JSON object that
 * says where the message came from and why it was refused, with the
 * message itself, so that an operator can inspect, fix and republish it.
 *
 *   {"reason": "tickers[0].confidence: must be a number from 0 to 100",
 *    "topic": "trading-signals", "partition": 2, "offset": 1234,
 *    "key": "AAPL" or null, "dead_lettered_at": 1796160703.52,
 *    "payload_bytes": 812, "payload_base64": "eyJzaWduYWxf...",
 *    "payload_truncated": false}
 *
 * The payload is base64 because a bad message need not be UTF-8, let
 * alone JSON; at most DEAD_LETTER_MAX_PAYLOAD bytes of it are kept, so a
 * dead letter always fits in a Kafka message.
 */
#ifndef SIGTRIG_DEAD_LETTER_H
#define SIGTRIG_DEAD_LETTER_H

#include <stddef.h>
#include <stdint.h>

#define DEAD_LETTER_MAX_PAYLOAD (256 * 1024)

struct dead_letter_origin {
	const char *topic;
	int32_t partition;
	int64_t offset;
	const void *key; /* may be NULL */
	size_t key_length;
};

/* The dead letter's JSON text, malloc'd; NULL when out of memory. */
char *dead_letter_message(const struct dead_letter_origin *origin, const void *payload, size_t length,
			  const char *reason, double now);

#endif

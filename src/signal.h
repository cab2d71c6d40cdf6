/*
 * The trading signal: the one message generators publish and the
 * dispatcher consumes. signal_parse() is the only way in from outside
 * (Kafka, the control socket, stdin), and signal_to_json() the only way
 * out, so a signal is validated and printed the same everywhere.
 */
#ifndef SIGTRIG_SIGNAL_H
#define SIGTRIG_SIGNAL_H

#include <jansson.h>
#include <stddef.h>

#include "text_buffer.h"

#define SIGNAL_ID_LENGTH 36
#define SIGNAL_TICKER_MAX 32
#define SIGNAL_MAX_TICKERS 256
#define SIGNAL_MAX_BYTES 65536
#define SIGNAL_TEXT_MAX 256
#define SIGNAL_REASONING_MAX 4096

enum signal_direction { SIGNAL_BULLISH, SIGNAL_BEARISH, SIGNAL_NEUTRAL };

struct signal_ticker {
	char ticker[SIGNAL_TICKER_MAX + 1];
	enum signal_direction direction;
	double confidence; /* 0..100 */
	char *reasoning;   /* never NULL */
};

struct signal {
	char signal_id[SIGNAL_ID_LENGTH + 1];
	double timestamp; /* unix seconds */
	char *signal_type;
	char *source;
	struct signal_ticker *tickers; /* at least one */
	size_t ticker_count;
	json_t *metadata; /* a JSON object, never NULL */
};

/* What was wrong with an input: the field ("tickers[1].confidence") and why. */
struct signal_error {
	char field[64];
	char reason[192];
};

const char *signal_direction_name(enum signal_direction direction);
int signal_direction_parse(const char *name, enum signal_direction *direction);

/*
 * Validates a decoded JSON object into *signal. Fills a missing signal_id
 * with a fresh UUID and a missing timestamp with the current time.
 * Returns 0, or -1 with *error filled and *signal left empty.
 */
int signal_from_json(const json_t *object, struct signal *signal, struct signal_error *error);
/* The same from JSON text of `length` bytes (not necessarily terminated). */
int signal_parse(const char *text, size_t length, struct signal *signal, struct signal_error *error);

/* The canonical JSON form, a new reference. */
json_t *signal_to_json(const struct signal *signal);
/*
 * The canonical form written as JSON text at the end of `buffer`, without
 * building it as jansson objects: the dispatcher records thousands of
 * signals a round. Equal, as JSON, to signal_to_json().
 */
void signal_write_json(const struct signal *signal, struct text_buffer *buffer);
/* Compact JSON text, malloc'd. */
char *signal_serialize(const struct signal *signal);

/* Builds a signal of one ticker from parts (used by generators and `inject`). */
int signal_init_single(struct signal *signal, const char *signal_type, const char *source,
		       const char *ticker, enum signal_direction direction, double confidence,
		       const char *reasoning, struct signal_error *error);

void signal_free(struct signal *signal);

/* 1-32 printable ASCII characters without spaces (AAPL, BRK.B, ^GSPC, EURUSD=X). */
int signal_ticker_is_valid(const char *ticker);

/* "field: reason" into buf. */
void signal_error_format(const struct signal_error *error, char *buf, size_t size);

/*
 * A fresh time-ordered (version 7) UUID, lower case, into buf (at least 37
 * bytes): the signals table's key and the decisions' index then grow at
 * their right edge instead of at a random page per signal.
 */
void signal_new_id(char *buf);

#endif

/*
 * The dispatcher role's state, shared by its two files and owned by its
 * one thread: dispatcher.c consumes (intake, pausing, offsets, the loop),
 * dispatcher_round.c decides (match, claim, enqueue) a round.
 * Only the atomics and what info_lock guards are read by other threads
 * (status requests).
 *
 * Every consumed message is an entry of the ledger, in arrival order; a
 * valid signal is also an entry of `signals`. A round takes a stretch of
 * the ledger and the signals in it, decides them in one PostgreSQL
 * statement sent without waiting, pushes the tasks it claimed to Redis,
 * and only then commits the stretch's offsets. What arrives meanwhile
 * waits behind it for the next round, which starts as soon as this one is
 * decided: PostgreSQL decides it while this one's tasks are pushed.
 */
#ifndef SIGTRIG_DISPATCHER_H
#define SIGTRIG_DISPATCHER_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "daemon.h"
#include "execution_store.h"
#include "kafka.h"
#include "live_runs.h"
#include "pipeline_index.h"
#include "rate_limit.h"
#include "signal.h"

/* One consumed message, valid or not. */
struct dispatcher_entry {
	int32_t partition;
	int64_t offset;
	long signal;             /* index in state.signals; -1 for a message that is not a signal */
	char *dead_letter;       /* the dead letter of a message that is not a signal, malloc'd */
	char *dead_letter_key;   /* its Kafka key, NUL-terminated copy; may be NULL */
};

/* Why fetching is paused: fetching resumes when no reason is left. */
enum dispatcher_pause {
	PAUSE_RETRY = 1 << 0,        /* a round failed: wait for PostgreSQL or Redis */
	PAUSE_BACKPRESSURE = 1 << 1, /* the task queue is too deep */
	PAUSE_BACKLOG = 1 << 2,      /* too much consumed and not yet decided */
};

/* What the round in flight is doing. */
enum round_phase {
	ROUND_NONE,     /* no round in flight */
	ROUND_DECIDING, /* the decide statement was sent; its answer has not come */
	ROUND_DECIDED,  /* decided (or nothing to decide); its tasks are not built yet */
	ROUND_PUSHING,  /* its tasks are built, not all in Redis yet */
};

struct dispatcher_round {
	enum round_phase phase;
	char id[EXECUTION_ID_LENGTH + 1]; /* a time-ordered UUID; its claims carry it (the outbox) */
	size_t first_entry, entries;  /* its messages: a stretch of the ledger */
	size_t first_signal, signals; /* and the signals among them, a stretch of state.signals */
	struct batch_match *matches;
	long match_count;
	const struct pipeline **claim_pipelines; /* claims[i]'s pipeline, for traces */
	struct execution_claim *claims;          /* signal_ids and tickers owned here */
	size_t claim_count;
	json_t *skips;                /* decisions made before the database */
	json_t *signal_by_id;         /* signal_id -> its place among the round's signals */
	size_t records_sent;          /* outbox records (state.unmarked) that ride with its statement */
	char **envelopes;             /* the claimed tasks, once decided */
	size_t envelope_count;
	struct kafka_delivery *deliveries; /* the round's dead letters */
	size_t delivery_count;
	double started;               /* metrics_monotonic_seconds() when it began */
	int64_t first_ms;             /* monotonic ms of its oldest message's arrival */
	int64_t letters_sent_ms;      /* when its dead letters were (last) sent */
	int64_t sent_ms;              /* monotonic ms its decide statement was sent */
	bool live_memory;             /* its claims were checked against dispatcher.live_runs */
	uint64_t live_sequence;       /* live_runs_sequence() when they were: what its answer may note */
	size_t skipped_from_memory;   /* pipelines (claim keys) skipped as already running from that memory */
};

struct dispatcher_state {
	struct daemon *daemon;
	pthread_t thread;
	bool running;
	volatile int stop;
	rd_kafka_t *consumer;
	struct kafka_wakeup wakeup;  /* readable when a message lands in the consumer's empty queue */
	PGconn *db;                 /* claims (asynchronous) and outbox records; the cache's loader has its own */
	redisContext *redis;
	struct pipeline_index *index;
	atomic_llong index_loaded_ms; /* monotonic time of the last successful load; 0 never */
	PGconn *listen_db;          /* LISTENs on sigtrig_pipelines and sigtrig_runs_ended, nothing else */
	bool pipelines_change_heard; /* a sigtrig_pipelines notification (or a new connection) not acted on */
	struct live_runs *live_runs; /* the runs known live; NULL with dispatcher.live_run_memory_ms 0 */
	int64_t listen_attempt_ms;
	bool refresh_failed;        /* the last load failed */
	int64_t refresh_attempt_ms;
	/* Cache loads by generation (daemon/dispatcher_cache.h): the one asked for after the last
	 * announced change (unanswered while above the one in use), the one in use, the latest
	 * failure seen. */
	uint64_t change_generation, installed_generation, seen_failed_generation;
	int64_t change_hold_until_ms; /* rounds wait for the change's load until then at most */
	struct batch_policy policy;
	struct rate_limiter *limiter;

	struct dispatcher_entry *ledger;
	size_t ledger_count, ledger_capacity;
	struct signal *signals;
	bool *signal_limited;       /* refused by its source's rate limit: decided, never matched */
	double *signal_consumed_at; /* metrics_monotonic_seconds() when it was consumed */
	size_t signal_count, signal_capacity;
	int64_t first_waiting_ms;   /* arrival of the oldest message not yet in a round */

	/*
	 * At most two rounds in flight, in ledger order: `round` (at the front
	 * of the ledger) and, once it is decided, `next_round`, which
	 * PostgreSQL decides while `round`'s tasks are built and pushed.
	 * Rounds finish in order, so offsets are committed in order.
	 */
	struct dispatcher_round round, next_round;
	json_t *unmarked;           /* ids of rounds pushed, their outbox record not yet written */
	int64_t retry_at_ms;        /* a failed round is retried no sooner */
	int64_t retry_backoff_ms;
	unsigned paused;            /* enum dispatcher_pause bits */
	int64_t next_housekeeping_ms;

	atomic_llong batches, last_batch_ms, queue_depth, queue_age_ms;
	atomic_bool postgres_ok, redis_ok, backpressure;
	char last_error[256];
	pthread_mutex_t info_lock;  /* guards last_error */
};

extern struct dispatcher_state dispatcher;

/* Logs an outage when it starts or changes (not on every retry) and keeps it for status. */
void dispatcher_note_error(const char *event, const char *message);
void dispatcher_clear_error(void);
/*
 * Reads what the listening connection has heard ((re)connecting it when
 * due): pipeline changes are kept for the cache, ends of runs are applied
 * to dispatcher.live_runs at once. Returns whether the memory of live
 * runs may be used now: only while that connection listens.
 */
bool dispatcher_hear_notifications(void);
/* The working PostgreSQL connection, (re)connected on demand; NULL with err filled. */
PGconn *dispatcher_db(char *err, size_t errsize);

/*
 * Starts a round over what waits from the ledger's entry first_entry
 * (whose first signal is state.signals[first_signal]): matches it, sends
 * its decide statement and its dead letters. 0 when the round is in
 * flight; -1 when it could not start (the round is cleared; it is retried
 * later).
 */
int dispatcher_round_start(struct dispatcher_round *round, size_t first_entry, size_t first_signal);
/*
 * Reads the round's decision without blocking: 1 when it is decided, 0
 * while PostgreSQL works, -1 when the statement failed (the round is
 * cleared: its messages wait for another).
 */
int dispatcher_round_receive(struct dispatcher_round *round);
/*
 * Builds the decided round's tasks and pushes them, once its dead letters
 * are acknowledged. 1 when the round is done (its offsets may be
 * committed), 0 while its dead letters are on their way, -2 when Redis
 * (or Kafka, for a dead letter) refused: the round stays, with its claims
 * made, and is pushed again by the next call.
 */
int dispatcher_round_push(struct dispatcher_round *round);
/* Frees what the round holds and forgets it (the messages stay). */
void dispatcher_round_clear(struct dispatcher_round *round);

#endif

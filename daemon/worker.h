/*
 * What the files of the worker role share (daemon/worker*.c): the role's
 * state, each thread's, and the helpers every part uses. Not for the rest
 * of the daemon, which sees only worker_start/_stop/_info (daemon.h).
 *
 *   worker.c            the role: threads, taking tasks, replies, start and stop
 *   worker_pipeline.c   app.orchestration.tasks.execute_pipeline: one run, its retries
 *   worker_lease.c      the leases of the runs in hand, and their heartbeat
 *   worker_follow_ups.c what a finished task sends on (callbacks, chains)
 */
#ifndef SIGTRIG_WORKER_H
#define SIGTRIG_WORKER_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "celery.h"
#include "daemon.h"
#include "execution_store.h"
#include "execution_store_worker.h"

struct worker_thread {
	int index;
	pthread_t thread;
	bool started;
	redisContext *redis;
	PGconn *db;
	/* The lease of the run in hand, for the heartbeat; guarded by worker.leases_lock. */
	char lease_execution_id[EXECUTION_ID_LENGTH + 1];
	char lease_owner[EXECUTION_LEASE_OWNER_SIZE];
	bool lease_held;
	bool lease_lost; /* the heartbeat found the run no longer holds it */
	unsigned random_seed; /* rand_r's, for the jitter of retry delays */
};

/* A lease as the heartbeat copies it out of a thread, to renew it without holding the lock. */
struct worker_lease_copy {
	char execution_id[EXECUTION_ID_LENGTH + 1];
	char owner[EXECUTION_LEASE_OWNER_SIZE];
};

/*
 * The role's state. Owned by the main thread, which starts and stops it;
 * the worker threads only read the configuration and update the atomics.
 */
struct worker_role {
	struct daemon *daemon;
	struct worker_thread *threads;
	int thread_count;
	pthread_t restorer;
	bool restorer_started;
	pthread_t heartbeat;
	bool heartbeat_started;
	/* The heartbeat outlives the worker threads: it renews the runs they finish on the way out. */
	volatile int heartbeat_stop;
	pthread_mutex_t leases_lock;
	bool running;
	volatile int stop;
	atomic_int busy;
	atomic_int redis_connections; /* open connections of the role's threads */
	atomic_llong tasks_run, tasks_failed, tasks_rejected, tasks_restored;
	atomic_llong leases_lost, duplicates_dropped;
	struct task_hold *held; /* tasks taken before their eta, run when due */
	/* Set while a backend is unreachable, so each outage is logged once, not per retry. */
	atomic_bool redis_down, postgres_down;
};

extern struct worker_role worker;

struct task_outcome {
	const char *status; /* "SUCCESS", "FAILURE" or "REVOKED"; NULL: a duplicate, acked without a result */
	json_t *result;
};

enum handler_status {
	HANDLER_DONE,    /* the outcome is final: store it and ack */
	HANDLER_STOPPED, /* the worker stops before the task could start: give it back */
};

/* ---- worker.c ---- */
bool worker_stopping(void);
/* Sleeps the next backoff step; false when the worker is stopping. */
bool worker_backoff(int *attempt);
/* Logs the first failure of an outage, once. */
void note_outage(atomic_bool *down, const char *event, const char *message);
void note_recovery(atomic_bool *down, const char *event);
void worker_close_redis(redisContext **redis);
bool worker_ensure_redis(redisContext **redis);
bool worker_ensure_postgres(struct worker_thread *thread);
bool postgres_connection_lost(const struct worker_thread *thread);
void outcome_failure(struct task_outcome *outcome, const char *exc_type, const char *message);
/* A trace event per signal of the run (one without a signal id when there is none); takes `fields`. */
void emit_trace(const char *stage, const json_t *signal_ids, json_t *fields);

/* ---- worker_pipeline.c ---- */
int worker_run_execute_pipeline(struct worker_thread *thread, const struct celery_task *task,
				struct task_outcome *outcome);

/* ---- worker_lease.c ---- */
/* From now until worker_release_lease(), the heartbeat renews this run's lease. */
void worker_hold_lease(struct worker_thread *thread, const char *execution_id, const char *owner);
void worker_release_lease(struct worker_thread *thread);
/* The heartbeat thread's body. */
void *worker_heartbeat_main(void *argument);

/* ---- worker_follow_ups.c ---- */
void worker_send_follow_ups(struct worker_thread *thread, const struct celery_task *task,
			    const struct task_outcome *outcome);

#endif

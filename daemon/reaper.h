/*
 * Housekeeping of executions, run by the scheduler role from its tick:
 * - the lease reaper fails RUNNING executions whose worker stopped
 *   renewing their lease (worker.lease_s), so a dead worker never blocks
 *   its pipeline for good;
 * - the outbox reconciler enqueues again the task of every PENDING
 *   execution that is not known to be in the queue after
 *   dispatcher.reenqueue_after_s (its claimer died, or Redis failed,
 *   between the claim and the push), with the same task and execution id.
 * Both are safe with several schedulers: the reaper is one UPDATE, and the
 * reconciler locks the rows it takes with SKIP LOCKED.
 */
#ifndef SIGTRIG_REAPER_H
#define SIGTRIG_REAPER_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* Owned by the scheduler's thread; the counters are read by status requests. */
struct reaper {
	int64_t next_pass_ms; /* monotonic time of the next pass; 0 runs one at once */
	bool failure_logged;  /* a failing pass is logged once until one succeeds */
	atomic_llong leases_expired, reenqueued;
};

/*
 * Runs a pass when one is due (every few seconds): the reaper, then the
 * reconciler, on the scheduler's connections (*redis is opened on demand).
 */
void reaper_tick(struct reaper *reaper, const struct config *config, PGconn *db,
		 redisContext **redis);

/* {"leases_expired", "reenqueued"} for the scheduler's status. */
json_t *reaper_info(const struct reaper *reaper);

#endif

/*
 * Leases of RUNNING executions, past their start: the worker's heartbeat
 * renews the leases of the runs it holds, and the reaper fails the
 * executions whose lease ran out, so that a worker or machine that died
 * never blocks its pipeline for longer than a lease.
 *
 * HOLDING executions are outside all of this: they carry no live lease,
 * are never renewed nor reaped, and block their pipeline until something
 * changes their status explicitly.
 */
#ifndef SIGTRIG_EXECUTION_STORE_LEASE_H
#define SIGTRIG_EXECUTION_STORE_LEASE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/* A lease a worker holds: the execution and the owner token of its run. */
struct execution_lease {
	const char *execution_id;
	const char *owner;
};

/*
 * Renews every lease in one statement: lease_expires_at = now() + lease_s
 * for each execution still RUNNING under its owner. renewed[i] (count
 * entries) tells whether lease i was renewed; false means the run lost it
 * (reaped, taken over, finished or held). Returns the number renewed, or
 * -1 with err filled.
 */
int execution_store_renew_leases(PGconn *conn, const struct execution_lease *leases, size_t count,
				 long lease_s, bool *renewed, char *err, size_t errsize);

/* What one reaper pass did: arrays of objects, new references the caller releases. */
struct execution_reaped {
	/* Failed: {"execution_id", "pipeline_id", "task_id", "lease_expires_at", "renewed_at"}. */
	json_t *expired;
	/* RUNNING without a lease (started before leases existed), given one: {"execution_id"}. */
	json_t *adopted;
};

/*
 * One statement, so that several reapers may run at once and each row is
 * handled by one of them:
 * - RUNNING executions whose lease ran out become FAILED, finished now,
 *   with error "lease expired: worker stopped renewing at <time>" (the
 *   last renewal, UTC), and no lease owner, so their old run can no
 *   longer finish them;
 * - RUNNING executions with no lease at all get one of lease_s seconds
 *   rather than being failed: their worker may be alive and not know
 *   about leases;
 * - HOLDING executions are not touched.
 * Returns 0 with *reaped filled, or -1 with err filled.
 */
int execution_store_expire_leases(PGconn *conn, long lease_s, struct execution_reaped *reaped,
				  char *err, size_t errsize);
void execution_reaped_free(struct execution_reaped *reaped);

#endif

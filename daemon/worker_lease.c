/*
 * The leases of the runs in hand: each worker thread says which run it
 * holds, and one more thread, the heartbeat, renews them all every third
 * of worker.lease_s, whatever the agents are doing. A run whose renewal
 * finds the lease gone (reaped, or taken over) is marked lost.
 */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "execution_store_lease.h"
#include "log.h"
#include "timeutil.h"

/* From now until worker_release_lease(), the heartbeat renews this run's lease. */
void worker_hold_lease(struct worker_thread *thread, const char *execution_id, const char *owner)
{
	pthread_mutex_lock(&worker.leases_lock);
	snprintf(thread->lease_execution_id, sizeof thread->lease_execution_id, "%s", execution_id);
	snprintf(thread->lease_owner, sizeof thread->lease_owner, "%s", owner);
	thread->lease_held = true;
	thread->lease_lost = false;
	pthread_mutex_unlock(&worker.leases_lock);
}

void worker_release_lease(struct worker_thread *thread)
{
	pthread_mutex_lock(&worker.leases_lock);
	thread->lease_held = false;
	thread->lease_lost = false;
	pthread_mutex_unlock(&worker.leases_lock);
}

/* Marks the run of `owner` as having lost its lease; false when no thread holds it any more. */
static bool worker_mark_lease_lost(const char *owner)
{
	bool marked = false;
	pthread_mutex_lock(&worker.leases_lock);
	for (int i = 0; i < worker.thread_count; i++) {
		struct worker_thread *thread = &worker.threads[i];
		if (thread->lease_held && !thread->lease_lost && strcmp(thread->lease_owner, owner) == 0)
			marked = thread->lease_lost = true;
	}
	pthread_mutex_unlock(&worker.leases_lock);
	return marked;
}

/*
 * One heartbeat: renews, in one statement, the leases the threads hold
 * now (copied under the lock, so that no thread waits on PostgreSQL), and
 * reports once per run a lease that is no longer the run's.
 */
static void worker_renew_leases(PGconn **db, struct worker_lease_copy *copies,
				struct execution_lease *leases, bool *renewed)
{
	size_t count = 0;
	pthread_mutex_lock(&worker.leases_lock);
	for (int i = 0; i < worker.thread_count; i++) {
		const struct worker_thread *thread = &worker.threads[i];
		if (!thread->lease_held || thread->lease_lost)
			continue;
		memcpy(copies[count].execution_id, thread->lease_execution_id,
		       sizeof copies[count].execution_id);
		memcpy(copies[count].owner, thread->lease_owner, sizeof copies[count].owner);
		leases[count].execution_id = copies[count].execution_id;
		leases[count].owner = copies[count].owner;
		count++;
	}
	pthread_mutex_unlock(&worker.leases_lock);
	if (count == 0)
		return;
	char err[512];
	if (db_ensure(db, worker.daemon->config.postgres_url, err, sizeof err) == NULL) {
		note_outage(&worker.postgres_down, "worker_postgres_unavailable", err);
		return;
	}
	if (execution_store_renew_leases(*db, leases, count, worker.daemon->config.worker_lease_s,
					 renewed, err, sizeof err) < 0) {
		log_msg(LOG_WARN, "execution_lease_renew_failed", "%s", err);
		return;
	}
	/* Not renewed: the run finished meanwhile (not news), or its execution was reaped or taken. */
	for (size_t i = 0; i < count; i++) {
		if (renewed[i] || !worker_mark_lease_lost(copies[i].owner))
			continue;
		atomic_fetch_add(&worker.leases_lost, 1);
		log_msg(LOG_WARN, "execution_lease_lost",
			"execution %s is no longer RUNNING under this run's lease (reaped or taken over);"
			" the run goes on but its outcome will not be recorded",
			copies[i].execution_id);
	}
}

/* Renews the leases every third of worker.lease_s, whatever the agents are doing. */
void *worker_heartbeat_main(void *argument)
{
	(void)argument;
	size_t slots = (size_t)worker.thread_count;
	struct worker_lease_copy *copies = calloc(slots, sizeof *copies);
	struct execution_lease *leases = calloc(slots, sizeof *leases);
	bool *renewed = calloc(slots, sizeof *renewed);
	if (copies == NULL || leases == NULL || renewed == NULL)
		log_msg(LOG_ERROR, "worker_heartbeat_failed", "out of memory: leases are not renewed");
	PGconn *db = NULL;
	int64_t interval_ms = worker.daemon->config.worker_lease_s * 1000 / 3;
	while (copies != NULL && leases != NULL && renewed != NULL && !worker.heartbeat_stop) {
		time_sleep_ms_unless(interval_ms, &worker.heartbeat_stop);
		if (!worker.heartbeat_stop)
			worker_renew_leases(&db, copies, leases, renewed);
	}
	if (db != NULL)
		PQfinish(db);
	free(copies);
	free(leases);
	free(renewed);
	return NULL;
}

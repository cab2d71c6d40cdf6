/*
 * The worker role: worker.concurrency threads take Celery tasks from the
 * Redis queue (redis.queue), run app.orchestration.tasks.execute_pipeline
 * through the agents, record the execution in PostgreSQL, store the
 * Celery result and acknowledge; one more thread gives back the tasks of
 * workers that died (the visibility timeout). Each thread owns its Redis
 * and PostgreSQL connections.
 *
 * A task is never lost: it is recorded in `unacked` in the same script
 * that takes it, and removed only by the ack, after the result is stored.
 * An execution is never run twice at once: each run holds a lease on it
 * (worker.lease_s), which one more thread, the heartbeat, renews for
 * every run of this daemon whatever the agents are doing; a worker that
 * dies stops renewing, and the scheduler role's reaper fails the run.
 * When Redis or PostgreSQL is down the threads log once per outage and
 * retry with backoff; they never exit until the daemon stops.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "celery.h"
#include "celery_broker.h"
#include "celery_canvas.h"
#include "daemon.h"
#include "db.h"
#include "execution_store.h"
#include "execution_store_lease.h"
#include "execution_store_worker.h"
#include "log.h"
#include "metrics.h"
#include "pipeline_store.h"
#include "redis_client.h"
#include "signal_store.h"
#include "task_hold.h"
#include "task_queue.h"
#include "task_retry.h"
#include "timeutil.h"
#include "trace.h"

/*
 * Taking is a Lua script, and a script cannot block, so an idle worker
 * polls: at once again while tasks keep coming, then after 1 ms, doubling
 * up to this. 20 ms bounds the latency a task waits on an idle worker at a
 * cost of 50 cheap EVALSHAs a second per thread. A blocking BRPOP would
 * reopen the gap between the pop and the unacked record that the script
 * closes (CELERY_WIRE.md section 9).
 */
#define WORKER_IDLE_WAIT_MAX_MS 20
/* Tasks held for their eta at most; past it a task runs when taken (and says so). */
#define WORKER_ETA_HOLD_MAX 100000
/* The brief asks for a scan every ~10 s; kombu's is every 100 s, same lock, same effect. */
#define WORKER_RESTORE_INTERVAL_MS 10000
#define WORKER_BACKOFF_FIRST_MS 100
#define WORKER_BACKOFF_MAX_MS 5000
/* No command here blocks on purpose, so every one gets a timeout and shutdown is never stuck. */
#define WORKER_REDIS_TIMEOUT_MS 5000

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

static struct worker_role worker;

static bool worker_stopping(void)
{
	return worker.stop || worker.daemon->stopping;
}

/* Sleeps the next backoff step; false when the worker is stopping. */
static bool worker_backoff(int *attempt)
{
	int64_t delay = WORKER_BACKOFF_FIRST_MS << (*attempt < 6 ? *attempt : 6);
	if (delay > WORKER_BACKOFF_MAX_MS)
		delay = WORKER_BACKOFF_MAX_MS;
	(*attempt)++;
	time_sleep_ms_unless(delay, &worker.stop);
	return !worker_stopping();
}

static void note_outage(atomic_bool *down, const char *event, const char *message)
{
	if (!atomic_exchange(down, true))
		log_msg(LOG_WARN, event, "%s; retrying", message);
}

static void note_recovery(atomic_bool *down, const char *event)
{
	if (atomic_exchange(down, false))
		log_msg(LOG_INFO, event, "reachable again");
}

static void worker_close_redis(redisContext **redis)
{
	if (*redis == NULL)
		return;
	redisFree(*redis);
	*redis = NULL;
	atomic_fetch_sub(&worker.redis_connections, 1);
}

/* A usable connection in *redis, reconnecting a broken one; false when Redis is unreachable. */
static bool worker_ensure_redis(redisContext **redis)
{
	if (*redis != NULL && (*redis)->err == 0)
		return true;
	worker_close_redis(redis);
	char err[512];
	*redis = redis_connect_url(worker.daemon->config.redis_url, WORKER_REDIS_TIMEOUT_MS, err,
				   sizeof err);
	if (*redis == NULL) {
		note_outage(&worker.redis_down, "worker_redis_unavailable", err);
		return false;
	}
	atomic_fetch_add(&worker.redis_connections, 1);
	note_recovery(&worker.redis_down, "worker_redis_restored");
	return true;
}

static bool worker_ensure_postgres(struct worker_thread *thread)
{
	/*
	 * A connection that looks fine is not proof that the server is back
	 * (libpq notices a dead server only on the next query), so only a new
	 * connection ends an outage.
	 */
	if (thread->db != NULL && PQstatus(thread->db) == CONNECTION_OK)
		return true;
	char err[512];
	if (db_ensure(&thread->db, worker.daemon->config.postgres_url, err, sizeof err) == NULL) {
		note_outage(&worker.postgres_down, "worker_postgres_unavailable", err);
		return false;
	}
	note_recovery(&worker.postgres_down, "worker_postgres_restored");
	return true;
}

/* After a failed query: whether the connection itself broke (retry) rather than the query (fail). */
static bool postgres_connection_lost(const struct worker_thread *thread)
{
	return thread->db == NULL || PQstatus(thread->db) != CONNECTION_OK;
}

/* ---- what a task came to ---- */

struct task_outcome {
	const char *status; /* "SUCCESS", "FAILURE" or "REVOKED"; NULL: a duplicate, acked without a result */
	json_t *result;
};

static void outcome_failure(struct task_outcome *outcome, const char *exc_type, const char *message)
{
	outcome->status = "FAILURE";
	json_decref(outcome->result);
	outcome->result = celery_exception(exc_type, message);
}

enum handler_status {
	HANDLER_DONE,    /* the outcome is final: store it and ack */
	HANDLER_STOPPED, /* the worker stops before the task could start: give it back */
};

static void emit_trace(const char *stage, const json_t *signal_ids, json_t *fields)
{
	if (json_array_size(signal_ids) == 0) {
		trace_emit(stage, NULL, fields);
		return;
	}
	size_t index;
	const json_t *id;
	json_array_foreach(signal_ids, index, id)
		trace_emit(stage, json_string_value(id), json_deep_copy(fields));
	json_decref(fields);
}

/* ---- app.orchestration.tasks.execute_pipeline ---- */

/* The task's keyword arguments, validated. */
struct pipeline_call {
	const char *pipeline_id;
	const char *execution_id; /* NULL: a plain send_task(); the worker records the run itself */
	json_t *signal_ids;       /* borrowed array of strings */
	bool triggered_by_signal;
};

static int parse_pipeline_call(const json_t *kwargs, struct pipeline_call *call, char *err,
			       size_t errsize)
{
	memset(call, 0, sizeof *call);
	call->pipeline_id = json_string_value(json_object_get(kwargs, "pipeline_id"));
	if (call->pipeline_id == NULL) {
		snprintf(err, errsize, "execute_pipeline: kwargs.pipeline_id is missing or not a string");
		return -1;
	}
	const json_t *execution_id = json_object_get(kwargs, "execution_id");
	if (execution_id != NULL && !json_is_null(execution_id) && !json_is_string(execution_id)) {
		snprintf(err, errsize, "execute_pipeline: kwargs.execution_id must be a string");
		return -1;
	}
	call->execution_id = json_string_value(execution_id);
	json_t *signal_ids = json_object_get(kwargs, "signal_ids");
	if (signal_ids != NULL && !json_is_null(signal_ids)) {
		size_t index;
		const json_t *id;
		bool strings = json_is_array(signal_ids);
		json_array_foreach(signal_ids, index, id)
			strings = strings && json_is_string(id);
		if (!strings) {
			snprintf(err, errsize,
				 "execute_pipeline: kwargs.signal_ids must be an array of strings");
			return -1;
		}
		call->signal_ids = signal_ids;
	}
	call->triggered_by_signal = json_is_true(json_object_get(kwargs, "triggered_by_signal"));
	return 0;
}

/* One run of a pipeline, from the start of its execution to its finish. */
struct execution_run {
	struct pipeline pipeline;
	bool pipeline_loaded;
	char execution_id[EXECUTION_ID_LENGTH + 1];
	char lease_owner[EXECUTION_LEASE_OWNER_SIZE]; /* this run's token, the same through retries */
	bool execution_live; /* RUNNING on our behalf: it must be finished */
	char rerun_of[EXECUTION_ID_LENGTH + 1]; /* the reaped execution this run does again; "" for none */
	char claim_key[64];  /* the one ticker of a ticker-scoped claim; "" for the whole pipeline */
};

enum begin_status {
	BEGIN_RUN,        /* execution RUNNING for us and pipeline loaded */
	BEGIN_FINISH,     /* execution RUNNING for us but it cannot run: finish it FAILED with err */
	BEGIN_DONE,       /* nothing to run; the outcome says what to answer */
	BEGIN_CONNECTION, /* PostgreSQL went away: retry */
};

/* A failed store call: a lost connection is retried, anything else fails the task. */
static int begin_failed(struct worker_thread *thread, struct task_outcome *outcome, const char *err)
{
	if (postgres_connection_lost(thread)) {
		note_outage(&worker.postgres_down, "worker_postgres_unavailable", err);
		return BEGIN_CONNECTION;
	}
	outcome_failure(outcome, "RuntimeError", err);
	return BEGIN_DONE;
}

/*
 * Starts the execution the dispatcher claimed. `retried`: an earlier
 * attempt may have started it before the connection broke.
 */
static int begin_claimed_execution(struct worker_thread *thread, const struct celery_task *task,
				   const struct pipeline_call *call, struct execution_run *run,
				   bool retried, struct task_outcome *outcome, char *err, size_t errsize)
{
	snprintf(run->execution_id, sizeof run->execution_id, "%s", call->execution_id);
	long lease_s = worker.daemon->config.worker_lease_s;
	int started = execution_store_start_leased(thread->db, call->execution_id, run->lease_owner,
						   lease_s, err, errsize);
	if (started < 0)
		return begin_failed(thread, outcome, err);
	if (started == 0 && (task->redelivered || retried)) {
		/*
		 * Our task's RUNNING execution: left by a dead worker, or started by
		 * this run just before its connection broke. Taken only when its
		 * lease is ours or ran out: a live lease means another worker runs it.
		 */
		int resumed = execution_store_resume(thread->db, call->execution_id, task->task_id,
						     run->lease_owner, lease_s, err, errsize);
		if (resumed < 0)
			return begin_failed(thread, outcome, err);
		if (resumed == EXECUTION_RESUME_LEASE_HELD) {
			atomic_fetch_add(&worker.duplicates_dropped, 1);
			log_msg(LOG_INFO, "task_duplicate_lease_held",
				"task %s: execution %s is RUNNING under another worker's live lease;"
				" acknowledged without running",
				task->task_id, call->execution_id);
			outcome->status = NULL;
			return BEGIN_DONE;
		}
		started = resumed == EXECUTION_RESUME_TAKEN;
		if (started)
			log_msg(LOG_INFO, "execution_resumed", "execution %s of task %s runs again",
				call->execution_id, task->task_id);
	}
	if (started == 0 && task->redelivered) {
		/*
		 * Back after the visibility timeout, its worker dead, and its run
		 * failed by the reaper meanwhile: the task is not lost, it runs
		 * again as a new execution (one live per pipeline still holds).
		 */
		char rerun_id[EXECUTION_ID_LENGTH + 1];
		int rerun = execution_store_rerun_reaped(thread->db, task->task_id, run->lease_owner, lease_s,
							 (int)worker.daemon->config.worker_max_retries + 1, rerun_id,
							 err, errsize);
		if (rerun < 0)
			return begin_failed(thread, outcome, err);
		if (rerun == 1) {
			snprintf(run->rerun_of, sizeof run->rerun_of, "%s", call->execution_id);
			snprintf(run->execution_id, sizeof run->execution_id, "%s", rerun_id);
			log_msg(LOG_INFO, "execution_rerun",
				"task %s came back after its worker died and execution %s was reaped: it runs again"
				" as execution %s",
				task->task_id, call->execution_id, rerun_id);
			started = 1;
		}
	}
	if (started == 0) {
		atomic_fetch_add(&worker.duplicates_dropped, 1);
		log_msg(LOG_INFO, "task_duplicate",
			"task %s: execution %s is no longer PENDING; acknowledged without running",
			task->task_id, call->execution_id);
		outcome->status = NULL;
		return BEGIN_DONE;
	}
	run->execution_live = true;
	int found = pipeline_store_get(thread->db, call->pipeline_id, &run->pipeline, err, errsize);
	if (found < 0 && postgres_connection_lost(thread))
		return BEGIN_CONNECTION;
	if (found <= 0) {
		if (found == 0)
			snprintf(err, errsize, "no pipeline %s", call->pipeline_id);
		return BEGIN_FINISH;
	}
	run->pipeline_loaded = true;
	if (execution_store_claim_key(thread->db, run->execution_id, run->claim_key, sizeof run->claim_key, err,
				      errsize) != 0)
		return postgres_connection_lost(thread) ? BEGIN_CONNECTION : BEGIN_FINISH;
	return BEGIN_RUN;
}

/* A task without an execution_id (plain Python send_task): record the run as RUNNING directly. */
static int begin_unclaimed_execution(struct worker_thread *thread, const struct celery_task *task,
				     const struct pipeline_call *call, struct execution_run *run,
				     struct task_outcome *outcome, char *err, size_t errsize)
{
	int found = pipeline_store_get(thread->db, call->pipeline_id, &run->pipeline, err, errsize);
	if (found < 0)
		return begin_failed(thread, outcome, err);
	if (found == 0) {
		snprintf(err, errsize, "no pipeline %s", call->pipeline_id);
		outcome_failure(outcome, "ValueError", err);
		return BEGIN_DONE;
	}
	run->pipeline_loaded = true;
	int inserted = execution_store_insert_running(
		thread->db, call->pipeline_id, task->task_id, call->signal_ids,
		call->triggered_by_signal ? "signal" : "task", run->lease_owner,
		worker.daemon->config.worker_lease_s, run->execution_id, err, errsize);
	if (inserted < 0)
		return begin_failed(thread, outcome, err);
	if (inserted == 0) {
		snprintf(err, errsize, "pipeline %s already has a PENDING, RUNNING or HOLDING execution",
			 call->pipeline_id);
		outcome_failure(outcome, "RuntimeError", err);
		return BEGIN_DONE;
	}
	run->execution_live = true;
	return BEGIN_RUN;
}

/* Begins the run, retrying while PostgreSQL is unreachable; BEGIN_CONNECTION means stopping. */
static int begin_execution(struct worker_thread *thread, const struct celery_task *task,
			   const struct pipeline_call *call, struct execution_run *run,
			   struct task_outcome *outcome, char *err, size_t errsize)
{
	int attempt = 0;
	bool retried = false;
	for (;;) {
		int status = BEGIN_CONNECTION;
		if (worker_ensure_postgres(thread)) {
			if (run->pipeline_loaded)
				pipeline_free(&run->pipeline);
			run->pipeline_loaded = false;
			status = call->execution_id != NULL
					 ? begin_claimed_execution(thread, task, call, run, retried,
								   outcome, err, errsize)
					 : begin_unclaimed_execution(thread, task, call, run, outcome,
								     err, errsize);
		}
		if (status != BEGIN_CONNECTION)
			return status;
		retried = true;
		if (!worker_backoff(&attempt))
			return BEGIN_CONNECTION;
	}
}

/* ---- leases: the heartbeat renews those the worker threads hold ---- */

/* From now until worker_release_lease(), the heartbeat renews this run's lease. */
static void worker_hold_lease(struct worker_thread *thread, const struct execution_run *run)
{
	pthread_mutex_lock(&worker.leases_lock);
	snprintf(thread->lease_execution_id, sizeof thread->lease_execution_id, "%s",
		 run->execution_id);
	snprintf(thread->lease_owner, sizeof thread->lease_owner, "%s", run->lease_owner);
	thread->lease_held = true;
	thread->lease_lost = false;
	pthread_mutex_unlock(&worker.leases_lock);
}

static void worker_release_lease(struct worker_thread *thread)
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
static void *worker_heartbeat_main(void *argument)
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

/*
 * RUNNING -> SUCCEEDED/FAILED, retried until it is recorded or the worker
 * stops. A run that lost its lease records nothing: what happened since
 * (the reaper failed it, another worker took it over) stands.
 */
static void finish_execution(struct worker_thread *thread, const struct execution_run *run,
			     bool succeeded, const json_t *result, const char *error)
{
	const char *execution_id = run->execution_id;
	char err[512];
	int attempt = 0;
	for (;;) {
		int finished = -1;
		if (worker_ensure_postgres(thread))
			finished = execution_store_finish_leased(thread->db, execution_id,
								 run->lease_owner, succeeded, result,
								 error, err, sizeof err);
		if (finished == 1)
			return;
		if (finished == 0) {
			log_msg(LOG_WARN, "execution_finish_lease_lost",
				"execution %s: this run lost its lease (reaped or taken over); its %s"
				" outcome is not recorded",
				execution_id, succeeded ? "SUCCEEDED" : "FAILED");
			return;
		}
		if (thread->db != NULL && !postgres_connection_lost(thread)) {
			log_msg(LOG_ERROR, "execution_finish_failed", "execution %s: %s", execution_id,
				err);
			return;
		}
		note_outage(&worker.postgres_down, "worker_postgres_unavailable", err);
		if (!worker_backoff(&attempt)) {
			log_msg(LOG_ERROR, "execution_left_running",
				"execution %s: stopping before PostgreSQL came back", execution_id);
			return;
		}
	}
}

/*
 * No query of a run outlives its time limit (statement_timeout, in ms; 0
 * lifts it). Best effort: a connection that refuses keeps running
 * without, and the step deadline still holds.
 */
static void worker_limit_statements(struct worker_thread *thread, long timeout_ms)
{
	char sql[64], err[256];
	snprintf(sql, sizeof sql, "SET statement_timeout = %ld", timeout_ms);
	PGresult *result = thread->db != NULL ? db_query(thread->db, sql, 0, NULL, err, sizeof err) : NULL;
	PQclear(result);
}

/*
 * A run that failed retryably is tried again, as Celery's Task.retry()
 * does it: the task is sent again (same id, retries + 1, an eta at the end
 * of the backoff), and only then the execution goes back to PENDING,
 * holding its claim, so that no other run of the pipeline starts
 * meanwhile. Sending first means a worker that dies in between leaves a
 * RUNNING execution, which its lease and the reaper deal with, never a
 * PENDING one that nothing will run. Returns true when the retry is
 * scheduled (retry_text says which and when), false when the run must
 * end FAILED: retries used up, or the retry could not be sent.
 */
static bool schedule_retry(struct worker_thread *thread, const struct celery_task *task,
			   const struct execution_run *run, json_t *result, const char *reason, char *retry_text,
			   size_t retry_size)
{
	const struct config *config = &worker.daemon->config;
	int retries = task_retries_of(task->envelope);
	if (retries >= config->worker_max_retries)
		return false;
	double delay = task_retry_delay_s(retries, config->worker_retry_backoff_s, config->worker_retry_backoff_max_s,
					  (double)rand_r(&thread->random_seed) / ((double)RAND_MAX + 1));
	/* A task sent without an execution id ran under one the worker recorded: the retry runs that one. */
	json_t *kwargs = json_deep_copy(task->kwargs);
	json_object_set_new(kwargs, "execution_id", json_string(run->execution_id));
	char err[512];
	char *envelope = celery_retry_envelope(task, kwargs, retries + 1, time_now_seconds() + delay, err, sizeof err);
	json_decref(kwargs);
	char queue[256];
	celery_priority_queue(config->redis_queue, celery_envelope_priority(task->envelope), queue, sizeof queue);
	bool sent = envelope != NULL && worker_ensure_redis(&thread->redis) &&
		    task_queue_push(&thread->redis, config->redis_url, queue, &envelope, 1, err, sizeof err) == 0;
	free(envelope);
	if (!sent) {
		log_msg(LOG_WARN, "execution_retry_not_sent", "execution %s: its retry could not be sent (%s); it fails",
			run->execution_id, err);
		return false;
	}
	snprintf(retry_text, retry_size, "retry %d of %ld in %.1f s: %s", retries + 1, config->worker_max_retries,
		 delay, reason);
	json_object_set_new(result, "retry",
			    json_pack("{s:i, s:I, s:f}", "attempt", retries + 1, "of",
				      (json_int_t)config->worker_max_retries, "delay_s", delay));
	int moved = -1;
	for (int attempt = 0; moved < 0 && worker_ensure_postgres(thread);) {
		moved = execution_store_retry_leased(thread->db, run->execution_id, run->lease_owner, result,
						     retry_text, err, sizeof err);
		if (moved < 0 && (!postgres_connection_lost(thread) || !worker_backoff(&attempt)))
			break;
	}
	if (moved < 0) {
		/* The retry sent finds the execution RUNNING, not PENDING: dropped, and the finish below stands. */
		log_msg(LOG_WARN, "execution_retry_not_recorded", "execution %s: %s; it fails instead", run->execution_id,
			err);
		return false;
	}
	if (moved == 0)
		log_msg(LOG_WARN, "execution_retry_lease_lost",
			"execution %s: the lease was lost before the retry was recorded; the sent retry is a duplicate",
			run->execution_id);
	metrics_add(METRIC_execution_retries_total, 1);
	log_event(LOG_WARN, "execution_retry_scheduled",
		  json_pack("{s:s, s:s, s:i, s:I, s:f, s:s}", "execution_id", run->execution_id, "task_id", task->task_id,
			    "attempt", retries + 1, "of", (json_int_t)config->worker_max_retries, "delay_s", delay,
			    "reason", reason));
	return true;
}

static int run_execute_pipeline(struct worker_thread *thread, const struct celery_task *task,
				struct task_outcome *outcome)
{
	char err[1024];
	struct pipeline_call call;
	if (parse_pipeline_call(task->kwargs, &call, err, sizeof err) != 0) {
		outcome_failure(outcome, "TypeError", err);
		return HANDLER_DONE;
	}
	struct execution_run run = { 0 };
	execution_lease_owner_new(run.lease_owner);
	int begun = begin_execution(thread, task, &call, &run, outcome, err, sizeof err);
	if (begun == BEGIN_CONNECTION)
		return HANDLER_STOPPED;
	if (begun == BEGIN_DONE)
		return HANDLER_DONE;
	worker_hold_lease(thread, &run);
	emit_trace("started", call.signal_ids,
		   json_pack("{s:s, s:s, s:s}", "pipeline_id", call.pipeline_id, "execution_id",
			     run.execution_id, "task_id", task->task_id));
	int64_t started = time_monotonic_ms();
	json_t *result = NULL;
	bool succeeded = false, retryable = false;
	/* The signals as consumed, so that the agents weigh their direction, confidence and metadata. */
	json_t *signals = NULL;
	if (begun == BEGIN_RUN && call.signal_ids != NULL) {
		signals = signal_store_bodies(thread->db, call.signal_ids, err, sizeof err);
		if (signals == NULL) {
			char cause[sizeof err];
			snprintf(cause, sizeof cause, "%s", err);
			snprintf(err, sizeof err, "the triggering signals could not be read: %.900s", cause);
			result = json_pack("{s:s, s:s, s:s, s:b}", "pipeline_id", call.pipeline_id, "status", "FAILED",
					   "error", err, "retryable", 1);
			retryable = true;
		}
	}
	if (begun == BEGIN_RUN && result == NULL) {
		struct agent_context context = {
			.db = thread->db,
			.pipeline = &run.pipeline,
			.execution_id = run.execution_id,
			.signals = signals,
			.state = json_object(),
			.scope_ticker = run.claim_key[0] != '\0' ? run.claim_key : NULL,
			.deadline_ms = time_monotonic_ms() + worker.daemon->config.worker_time_limit_s * 1000,
			.time_limit_s = worker.daemon->config.worker_time_limit_s,
		};
		worker_limit_statements(thread, worker.daemon->config.worker_time_limit_s * 1000);
		json_t *no_signals = json_array();
		if (context.signals == NULL)
			context.signals = no_signals;
		succeeded = agents_run_pipeline(&context, &result, err, sizeof err) == 0;
		retryable = context.retryable;
		worker_limit_statements(thread, 0);
		json_decref(context.state);
		json_decref(no_signals);
		metrics_add(METRIC_pipeline_executions_total, 1);
	} else if (result == NULL) {
		result = json_pack("{s:s, s:s, s:s}", "pipeline_id", call.pipeline_id, "status", "FAILED",
				   "error", err);
	}
	json_decref(signals);
	int64_t duration = time_monotonic_ms() - started;
	json_object_set_new(result, "execution_id", json_string(run.execution_id));
	if (run.rerun_of[0] != '\0')
		json_object_set_new(result, "rerun_of", json_string(run.rerun_of));
	/* How many tries came before this one (the task's retries header). */
	json_object_set_new(result, "retries", json_integer(task_retries_of(task->envelope)));
	char retry_text[1200];
	if (retryable && schedule_retry(thread, task, &run, result, err, retry_text, sizeof retry_text)) {
		worker_release_lease(thread);
		emit_trace("retrying", call.signal_ids,
			   json_pack("{s:s, s:s, s:s, s:s}", "pipeline_id", call.pipeline_id, "execution_id",
				     run.execution_id, "task_id", task->task_id, "retry", retry_text));
		/* As a stock worker records a retry: AsyncResult.get() goes on waiting for the retried run. */
		outcome->status = "RETRY";
		outcome->result = celery_exception("Retry", retry_text);
		json_decref(result);
		pipeline_free(&run.pipeline);
		return HANDLER_DONE;
	}
	finish_execution(thread, &run, succeeded, result, succeeded ? NULL : err);
	worker_release_lease(thread);
	if (!succeeded) {
		metrics_add(METRIC_execution_failures_total, 1);
		atomic_fetch_add(&worker.tasks_failed, 1);
	}
	const char *status = succeeded ? "SUCCEEDED" : "FAILED";
	log_event(succeeded ? LOG_INFO : LOG_WARN, "execution_finished",
		  json_pack("{s:s, s:s, s:s, s:s, s:I, s:s?}", "pipeline_id", call.pipeline_id,
			    "execution_id", run.execution_id, "task_id", task->task_id, "status",
			    status, "duration_ms", (json_int_t)duration, "error",
			    succeeded ? NULL : err));
	emit_trace("finished", call.signal_ids,
		   json_pack("{s:s, s:s, s:s, s:s, s:I}", "pipeline_id", call.pipeline_id,
			     "execution_id", run.execution_id, "task_id", task->task_id, "status",
			     status, "duration_ms", (json_int_t)duration));
	/* The task ran: Celery sees SUCCESS with the run's own status inside, as the Python task returned. */
	outcome->status = "SUCCESS";
	outcome->result = result;
	if (run.pipeline_loaded)
		pipeline_free(&run.pipeline);
	return HANDLER_DONE;
}

/* The tasks this worker runs. Any other name is answered with NotRegistered, as Celery does. */
static const struct task_handler {
	const char *name;
	int (*run)(struct worker_thread *thread, const struct celery_task *task,
		   struct task_outcome *outcome);
} task_handlers[] = {
	{ CELERY_TASK_EXECUTE_PIPELINE, run_execute_pipeline },
};

static const struct task_handler *find_task_handler(const char *name)
{
	for (size_t i = 0; i < sizeof task_handlers / sizeof task_handlers[0]; i++)
		if (strcmp(task_handlers[i].name, name) == 0)
			return &task_handlers[i];
	return NULL;
}

/* ---- answering and acknowledging ---- */

/* What to write to Redis for a task that is done with. */
struct task_reply {
	const char *delivery_tag;
	const char *task_id;           /* NULL: no result to store */
	char *result_json;
	char *dead_letter_entry;       /* non-NULL: dead-letter it instead of a plain ack */
};

static int send_reply(redisContext *redis, const struct task_reply *reply, char *err, size_t errsize)
{
	if (reply->task_id != NULL && reply->result_json != NULL &&
	    celery_broker_store_result(redis, reply->task_id, reply->result_json,
				       worker.daemon->config.worker_result_expires_s, err, errsize) != 0)
		return -1;
	if (reply->dead_letter_entry != NULL)
		return celery_broker_reject(redis, reply->delivery_tag, reply->dead_letter_entry, err,
					    errsize);
	return celery_broker_ack(redis, reply->delivery_tag, err, errsize);
}

/*
 * Stores the result, then acks (the order a stock worker uses), retrying
 * until Redis takes both. Storing twice is harmless; if the worker stops
 * first, the task stays in unacked and comes back after the visibility
 * timeout, where the execution's state makes it a duplicate.
 */
static void deliver_reply(struct worker_thread *thread, struct task_reply *reply)
{
	char err[512];
	int attempt = 0;
	for (;;) {
		if (worker_ensure_redis(&thread->redis)) {
			if (send_reply(thread->redis, reply, err, sizeof err) == 0)
				break;
			note_outage(&worker.redis_down, "worker_redis_unavailable", err);
		}
		if (!worker_backoff(&attempt)) {
			log_msg(LOG_WARN, "task_ack_deferred",
				"task %s stays unacknowledged: stopping while Redis is unreachable",
				reply->delivery_tag);
			break;
		}
	}
	free(reply->result_json);
	free(reply->dead_letter_entry);
}

static char *outcome_result_json(const char *task_id, const struct task_outcome *outcome)
{
	if (task_id == NULL || outcome->status == NULL)
		return NULL;
	return celery_result_json(task_id, outcome->status, outcome->result, NULL);
}

/* A message the take script could not even record: dead-lettered already, answer it if it has an id. */
static void handle_dead_lettered(struct worker_thread *thread, const struct celery_taken *taken)
{
	atomic_fetch_add(&worker.tasks_rejected, 1);
	metrics_add(METRIC_tasks_rejected_total, 1);
	struct celery_task task;
	char err[512];
	celery_envelope_parse(taken->text, taken->length, &task, err, sizeof err);
	log_event(LOG_WARN, "task_dead_lettered",
		  json_pack("{s:s, s:s?, s:s}", "reason", taken->reason, "task_id", task.task_id, "list",
			    CELERY_DEAD_LETTER_LIST));
	if (task.task_id != NULL) {
		struct task_outcome outcome = { 0 };
		outcome_failure(&outcome, "ValueError", taken->reason);
		char *result = outcome_result_json(task.task_id, &outcome);
		for (int attempt = 0; result != NULL;) {
			char store_err[512];
			if (worker_ensure_redis(&thread->redis) &&
			    celery_broker_store_result(thread->redis, task.task_id, result,
						       worker.daemon->config.worker_result_expires_s,
						       store_err, sizeof store_err) == 0)
				break;
			if (!worker_backoff(&attempt))
				break;
		}
		free(result);
		json_decref(outcome.result);
	}
	celery_task_free(&task);
}

static const char *task_header(const struct celery_task *task, const char *name)
{
	return json_string_value(json_object_get(json_object_get(task->envelope, "headers"), name));
}

/* Whether the task's "expires" header (ISO 8601, set by send_task(expires=...)) is past. */
static bool task_expired(const struct celery_task *task)
{
	double expires;
	return time_parse_iso8601(task_header(task, "expires"), &expires) == 0 && expires < time_now_seconds();
}

/* The task's eta (send_task's countdown or eta) when it lies ahead, else 0. */
static double task_eta_ahead(const struct celery_task *task)
{
	double eta;
	if (time_parse_iso8601(task_header(task, "eta"), &eta) != 0 || eta <= time_now_seconds())
		return 0;
	return eta;
}

/*
 * The tasks a finished one sends on, as a stock worker does: its chain's
 * next task and its link callbacks after a success, its errbacks after a
 * failure. Sent before the task is acknowledged: a worker that dies in
 * between leaves the task to come back, and its execution, already
 * finished, makes it a duplicate that sends nothing again.
 */
static void send_follow_ups(struct worker_thread *thread, const struct celery_task *task,
			    const struct task_outcome *outcome)
{
	bool succeeded = outcome->status != NULL && strcmp(outcome->status, "SUCCESS") == 0;
	bool failed = outcome->status != NULL && strcmp(outcome->status, "FAILURE") == 0;
	if (!succeeded && !failed)
		return;
	struct celery_follow_ups ups;
	char err[512];
	if (celery_follow_ups_build(task, succeeded, outcome->result, worker.daemon->config.redis_queue, &ups, err,
				    sizeof err) != 0) {
		log_msg(LOG_WARN, "task_follow_ups_failed", "task %s: its callbacks cannot be sent: %s",
			task->task_id, err);
		return;
	}
	if (ups.note[0] != '\0')
		log_msg(LOG_WARN, "task_follow_ups_skipped", "task %s: not sent: %s", task->task_id, ups.note);
	for (size_t i = 0; i < ups.count; i++) {
		struct celery_follow_up *up = &ups.items[i];
		int attempt = 0;
		bool sent = false;
		while (!sent) {
			sent = worker_ensure_redis(&thread->redis) &&
			       task_queue_push(&thread->redis, worker.daemon->config.redis_url, up->queue, &up->envelope,
					       1, err, sizeof err) == 0;
			if (!sent && !worker_backoff(&attempt))
				break;
		}
		if (sent)
			log_msg(LOG_INFO, "task_follow_up_sent", "task %s sent on %s[%s] to %s", task->task_id,
				up->task_name, up->task_id, up->queue);
		else
			log_msg(LOG_WARN, "task_follow_up_lost", "task %s: stopping before %s[%s] could be sent: %s",
				task->task_id, up->task_name, up->task_id, err);
	}
	celery_follow_ups_free(&ups);
}

/*
 * Runs one taken task to its reply. Returns true when the task was held
 * for its eta instead: the hold owns *taken then.
 */
static bool handle_task(struct worker_thread *thread, struct celery_taken *taken)
{
	bool held = false;
	struct celery_task task;
	char err[512];
	struct task_outcome outcome = { 0 };
	struct task_reply reply = { .delivery_tag = taken->delivery_tag };
	atomic_fetch_add(&worker.busy, 1);
	metrics_add(METRIC_workers_busy, 1);
	bool parsed = celery_envelope_parse(taken->text, taken->length, &task, err, sizeof err) == 0;
	if (!parsed) {
		/* A stock worker dies on most of these; record it and carry on. */
		atomic_fetch_add(&worker.tasks_rejected, 1);
		metrics_add(METRIC_tasks_rejected_total, 1);
		log_event(LOG_WARN, "task_malformed",
			  json_pack("{s:s, s:s?, s:s}", "reason", err, "task_id", task.task_id,
				    "delivery_tag", taken->delivery_tag));
		outcome_failure(&outcome, "ValueError", err);
		reply.task_id = task.task_id;
		reply.dead_letter_entry = celery_dead_letter_entry(taken->text, taken->length, err,
								   worker.daemon->config.redis_queue);
	} else {
		const struct task_handler *handler = find_task_handler(task.task_name);
		double eta = task_eta_ahead(&task);
		reply.task_id = task.task_id;
		if (handler == NULL) {
			atomic_fetch_add(&worker.tasks_rejected, 1);
			metrics_add(METRIC_tasks_rejected_total, 1);
			log_msg(LOG_WARN, "task_not_registered", "received unregistered task %s[%s]",
				task.task_name, task.task_id);
			outcome_failure(&outcome, "NotRegistered", task.task_name);
		} else if (eta > 0 && task_hold_put(worker.held, taken, eta)) {
			/* Still in unacked: a worker that dies with it leaves it to the visibility timeout. */
			log_msg(LOG_INFO, "task_eta_held", "task %s[%s] runs at its eta %s", task.task_name,
				task.task_id, task_header(&task, "eta"));
			held = true;
			goto done;
		} else if (task_expired(&task)) {
			/* As a stock worker does: revoked, not run, and the caller's get() says why. */
			log_msg(LOG_WARN, "task_expired", "task %s[%s] expired at %s: revoked, not run",
				task.task_name, task.task_id, task_header(&task, "expires"));
			outcome.status = "REVOKED";
			outcome.result = celery_exception("TaskRevokedError", "expired");
		} else if (handler->run(thread, &task, &outcome) == HANDLER_STOPPED) {
			/* Never started: give it straight back rather than after the visibility timeout. */
			if (worker_ensure_redis(&thread->redis) &&
			    celery_broker_restore(thread->redis, taken->delivery_tag,
						  worker.daemon->config.redis_queue, err, sizeof err) >= 0)
				log_msg(LOG_INFO, "task_restored", "task %s given back to the queue",
					task.task_id);
			goto done;
		}
	}
	/* A message that did not parse has no callbacks one could trust. */
	if (parsed)
		send_follow_ups(thread, &task, &outcome);
	reply.result_json = outcome_result_json(reply.task_id, &outcome);
	deliver_reply(thread, &reply);
	atomic_fetch_add(&worker.tasks_run, 1);
done:
	json_decref(outcome.result);
	celery_task_free(&task);
	atomic_fetch_sub(&worker.busy, 1);
	metrics_add(METRIC_workers_busy, -1);
	return held;
}

/* ---- threads ---- */

static void *worker_thread_main(void *argument)
{
	struct worker_thread *thread = argument;
	const char *queue = worker.daemon->config.redis_queue;
	int64_t idle_wait_ms = 0;
	int attempt = 0;
	while (!worker_stopping()) {
		/* A task is only taken when it can be run: both backends must be there. */
		if (!worker_ensure_redis(&thread->redis) || !worker_ensure_postgres(thread)) {
			worker_backoff(&attempt);
			continue;
		}
		struct celery_taken taken;
		char err[512];
		/* A held task whose eta has come goes first. */
		if (task_hold_take_due(worker.held, time_now_seconds(), &taken)) {
			if (!handle_task(thread, &taken))
				celery_taken_free(&taken);
			continue;
		}
		int taken_status = celery_broker_take(thread->redis, queue, &taken, err, sizeof err);
		if (taken_status == CELERY_TAKE_ERROR) {
			note_outage(&worker.redis_down, "worker_redis_unavailable", err);
			worker_backoff(&attempt);
			continue;
		}
		attempt = 0;
		if (taken_status == CELERY_TAKE_EMPTY) {
			time_sleep_ms_unless(idle_wait_ms, &worker.stop);
			idle_wait_ms = idle_wait_ms == 0 ? 1 : idle_wait_ms * 2;
			if (idle_wait_ms > WORKER_IDLE_WAIT_MAX_MS)
				idle_wait_ms = WORKER_IDLE_WAIT_MAX_MS;
			continue;
		}
		idle_wait_ms = 0;
		bool held = false;
		if (taken_status == CELERY_TAKE_DEAD_LETTERED)
			handle_dead_lettered(thread, &taken);
		else
			held = handle_task(thread, &taken);
		if (!held)
			celery_taken_free(&taken);
	}
	worker_close_redis(&thread->redis);
	if (thread->db != NULL)
		PQfinish(thread->db);
	thread->db = NULL;
	return NULL;
}

/* Gives back the tasks of dead workers: at start-up, then every WORKER_RESTORE_INTERVAL_MS. */
static void *worker_restorer_main(void *argument)
{
	(void)argument;
	redisContext *redis = NULL;
	int attempt = 0;
	while (!worker_stopping()) {
		char err[512];
		size_t restored = 0;
		if (!worker_ensure_redis(&redis)) {
			worker_backoff(&attempt);
			continue;
		}
		if (celery_broker_restore_expired(redis,
						  (double)worker.daemon->config.worker_visibility_timeout_s,
						  worker.daemon->config.redis_queue, &restored, err,
						  sizeof err) < 0) {
			note_outage(&worker.redis_down, "worker_redis_unavailable", err);
			worker_backoff(&attempt);
			continue;
		}
		attempt = 0;
		if (restored > 0) {
			atomic_fetch_add(&worker.tasks_restored, (long long)restored);
			metrics_add(METRIC_tasks_restored_total, (int64_t)restored);
			log_msg(LOG_WARN, "tasks_restored",
				"gave back %zu task(s) unacknowledged for more than %ld s", restored,
				worker.daemon->config.worker_visibility_timeout_s);
		}
		time_sleep_ms_unless(WORKER_RESTORE_INTERVAL_MS, &worker.stop);
	}
	worker_close_redis(&redis);
	return NULL;
}

int worker_start(struct daemon *daemon, char *err, size_t errsize)
{
	memset(&worker, 0, sizeof worker);
	pthread_mutex_init(&worker.leases_lock, NULL);
	worker.daemon = daemon;
	worker.thread_count = (int)daemon->config.worker_concurrency;
	worker.threads = calloc((size_t)worker.thread_count, sizeof *worker.threads);
	worker.held = task_hold_new(WORKER_ETA_HOLD_MAX);
	if (worker.threads == NULL || worker.held == NULL) {
		free(worker.threads);
		task_hold_free(worker.held);
		snprintf(err, errsize, "worker: out of memory");
		return -1;
	}
	worker.running = true;
	if (pthread_create(&worker.restorer, NULL, worker_restorer_main, NULL) != 0) {
		snprintf(err, errsize, "worker: cannot start the restore thread");
		worker_stop(daemon);
		return -1;
	}
	worker.restorer_started = true;
	if (pthread_create(&worker.heartbeat, NULL, worker_heartbeat_main, NULL) != 0) {
		snprintf(err, errsize, "worker: cannot start the lease heartbeat thread");
		worker_stop(daemon);
		return -1;
	}
	worker.heartbeat_started = true;
	for (int i = 0; i < worker.thread_count; i++) {
		worker.threads[i].index = i;
		worker.threads[i].random_seed = (unsigned)time_monotonic_ms() ^ (unsigned)(i * 2654435761u);
		if (pthread_create(&worker.threads[i].thread, NULL, worker_thread_main,
				   &worker.threads[i]) != 0) {
			snprintf(err, errsize, "worker: cannot start thread %d", i);
			worker_stop(daemon);
			return -1;
		}
		worker.threads[i].started = true;
	}
	log_event(LOG_INFO, "worker_started",
		  json_pack("{s:i, s:s, s:I, s:I}", "concurrency", worker.thread_count, "queue",
			    daemon->config.redis_queue, "visibility_timeout_s",
			    (json_int_t)daemon->config.worker_visibility_timeout_s, "lease_s",
			    (json_int_t)daemon->config.worker_lease_s));
	return 0;
}

/* Stopping: the tasks held for their eta go back to the queue now, not after the visibility timeout. */
static void worker_give_back_held(void)
{
	if (worker.held == NULL)
		return;
	char err[512];
	redisContext *redis = task_hold_count(worker.held) > 0
				      ? redis_connect_url(worker.daemon->config.redis_url, 5000, err, sizeof err)
				      : NULL;
	struct celery_taken taken;
	while (task_hold_take_any(worker.held, &taken)) {
		if (redis == NULL ||
		    celery_broker_restore(redis, taken.delivery_tag, worker.daemon->config.redis_queue, err,
					  sizeof err) < 0)
			log_msg(LOG_WARN, "task_eta_not_given_back",
				"task %s stays unacknowledged until the visibility timeout", taken.delivery_tag);
		celery_taken_free(&taken);
	}
	redisFree(redis);
	task_hold_free(worker.held);
	worker.held = NULL;
}

void worker_stop(struct daemon *daemon)
{
	(void)daemon;
	if (!worker.running)
		return;
	/* Each thread finishes the task in hand; every wait and Redis call is bounded, so joins end. */
	worker.stop = 1;
	for (int i = 0; i < worker.thread_count; i++)
		if (worker.threads[i].started)
			pthread_join(worker.threads[i].thread, NULL);
	if (worker.restorer_started)
		pthread_join(worker.restorer, NULL);
	/* Only now: the threads' last runs were renewed until they finished. */
	worker.heartbeat_stop = 1;
	if (worker.heartbeat_started)
		pthread_join(worker.heartbeat, NULL);
	pthread_mutex_destroy(&worker.leases_lock);
	worker_give_back_held();
	free(worker.threads);
	worker.threads = NULL;
	worker.running = false;
	log_event(LOG_INFO, "worker_stopped",
		  json_pack("{s:I}", "tasks_run", (json_int_t)atomic_load(&worker.tasks_run)));
}

json_t *worker_info(struct daemon *daemon)
{
	json_t *info = json_pack("{s:i, s:i, s:I, s:I, s:I, s:I, s:s, s:b, s:i, s:b, s:I, s:I, s:I}",
			 "concurrency",
			 worker.thread_count, "busy", atomic_load(&worker.busy), "tasks_run",
			 (json_int_t)atomic_load(&worker.tasks_run), "tasks_failed",
			 (json_int_t)atomic_load(&worker.tasks_failed), "tasks_rejected",
			 (json_int_t)atomic_load(&worker.tasks_rejected), "tasks_restored",
			 (json_int_t)atomic_load(&worker.tasks_restored), "queue",
			 daemon->config.redis_queue, "redis_connected",
			 atomic_load(&worker.redis_connections) > 0 && !atomic_load(&worker.redis_down),
			 "redis_connections", atomic_load(&worker.redis_connections), "postgres_connected",
			 worker.running && !atomic_load(&worker.postgres_down), "lease_s",
			 (json_int_t)daemon->config.worker_lease_s, "leases_lost",
			 (json_int_t)atomic_load(&worker.leases_lost), "duplicates_dropped",
			 (json_int_t)atomic_load(&worker.duplicates_dropped));
	if (worker.held != NULL)
		json_object_set_new(info, "eta_held", json_integer((json_int_t)task_hold_count(worker.held)));
	return info;
}

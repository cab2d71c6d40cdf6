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
 *
 * This file is the role itself: its threads, taking tasks, answering and
 * acknowledging them. A run of execute_pipeline is worker_pipeline.c, the
 * leases and their heartbeat worker_lease.c, what a finished task sends on
 * worker_follow_ups.c; worker.h is what they share.
 */
#include "worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "celery_broker.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "redis_client.h"
#include "task_hold.h"
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

struct worker_role worker;

bool worker_stopping(void)
{
	return worker.stop || worker.daemon->stopping;
}

/* Sleeps the next backoff step; false when the worker is stopping. */
bool worker_backoff(int *attempt)
{
	int64_t delay = WORKER_BACKOFF_FIRST_MS << (*attempt < 6 ? *attempt : 6);
	if (delay > WORKER_BACKOFF_MAX_MS)
		delay = WORKER_BACKOFF_MAX_MS;
	(*attempt)++;
	time_sleep_ms_unless(delay, &worker.stop);
	return !worker_stopping();
}

void note_outage(atomic_bool *down, const char *event, const char *message)
{
	if (!atomic_exchange(down, true))
		log_msg(LOG_WARN, event, "%s; retrying", message);
}

void note_recovery(atomic_bool *down, const char *event)
{
	if (atomic_exchange(down, false))
		log_msg(LOG_INFO, event, "reachable again");
}

void worker_close_redis(redisContext **redis)
{
	if (*redis == NULL)
		return;
	redisFree(*redis);
	*redis = NULL;
	atomic_fetch_sub(&worker.redis_connections, 1);
}

/* A usable connection in *redis, reconnecting a broken one; false when Redis is unreachable. */
bool worker_ensure_redis(redisContext **redis)
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

bool worker_ensure_postgres(struct worker_thread *thread)
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
bool postgres_connection_lost(const struct worker_thread *thread)
{
	return thread->db == NULL || PQstatus(thread->db) != CONNECTION_OK;
}

/* ---- what a task came to ---- */


void outcome_failure(struct task_outcome *outcome, const char *exc_type, const char *message)
{
	outcome->status = "FAILURE";
	json_decref(outcome->result);
	outcome->result = celery_exception(exc_type, message);
}


void emit_trace(const char *stage, const json_t *signal_ids, json_t *fields)
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

/* The tasks this worker runs. Any other name is answered with NotRegistered, as Celery does. */
static const struct task_handler {
	const char *name;
	int (*run)(struct worker_thread *thread, const struct celery_task *task,
		   struct task_outcome *outcome);
} task_handlers[] = {
	{ CELERY_TASK_EXECUTE_PIPELINE, worker_run_execute_pipeline },
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

/* Whether the task's "expires" header (ISO 8601, set by send_task(expires=...)) is past. */
static bool task_expired(const struct celery_task *task)
{
	double expires;
	return time_parse_iso8601(celery_task_header(task, "expires"), &expires) == 0 && expires < time_now_seconds();
}

/* The task's eta (send_task's countdown or eta) when it lies ahead, else 0. */
static double task_eta_ahead(const struct celery_task *task)
{
	double eta;
	if (time_parse_iso8601(celery_task_header(task, "eta"), &eta) != 0 || eta <= time_now_seconds())
		return 0;
	return eta;
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
				task.task_id, celery_task_header(&task, "eta"));
			held = true;
			goto done;
		} else if (task_expired(&task)) {
			/* As a stock worker does: revoked, not run, and the caller's get() says why. */
			log_msg(LOG_WARN, "task_expired", "task %s[%s] expired at %s: revoked, not run",
				task.task_name, task.task_id, celery_task_header(&task, "expires"));
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
		worker_send_follow_ups(thread, &task, &outcome);
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

/*
 * The scheduler role: runs periodic pipelines (trigger_mode "periodic"
 * with a time_trigger node whose config has an "interval" such as "5m").
 * Once a second it claims every due pipeline through the same one-live-
 * execution rule as the dispatcher, so two schedulers, or a scheduler and
 * a slow worker, never run one pipeline twice at the same time.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "celery.h"
#include "daemon.h"
#include "db.h"
#include "execution_store.h"
#include "execution_store_outbox.h"
#include "log.h"
#include "reaper.h"
#include "schedule.h"
#include "task_queue.h"
#include "timeutil.h"

static struct {
	pthread_t thread;
	bool running;
	volatile int stop;
	struct daemon *daemon;
	PGconn *db;
	redisContext *redis;
	atomic_long fired;
	bool outage_logged;
	struct reaper reaper;
} scheduler;

static void scheduler_fire(const char *pipeline_id)
{
	char err[512];
	json_t *no_signals = json_array();
	struct execution_claim claim = { .pipeline_id = pipeline_id, .triggered_by = "schedule",
					 .signal_ids = no_signals };
	uuid_t task_id;
	uuid_generate_random(task_id);
	uuid_unparse_lower(task_id, claim.task_id);
	if (execution_store_claim(scheduler.db, &claim, 1, err, sizeof err) != 0) {
		log_msg(LOG_WARN, "periodic_claim_failed", "pipeline %s: %s", pipeline_id, err);
		json_decref(no_signals);
		return;
	}
	if (!claim.claimed) {
		log_msg(LOG_DEBUG, "periodic_pipeline_busy", "pipeline %s still has a live execution", pipeline_id);
		json_decref(no_signals);
		return;
	}
	json_t *kwargs = celery_execute_pipeline_kwargs(pipeline_id, no_signals, claim.execution_id);
	json_object_set_new(kwargs, "triggered_by_signal", json_false());
	char delivery_tag[CELERY_ID_SIZE];
	uuid_generate_random(task_id);
	uuid_unparse_lower(task_id, delivery_tag);
	struct celery_message message = { CELERY_TASK_EXECUTE_PIPELINE, claim.task_id, delivery_tag,
					  scheduler.daemon->config.redis_queue, NULL, kwargs };
	char *envelope = celery_envelope_build(&message, err, sizeof err);
	json_decref(kwargs);
	json_decref(no_signals);
	/* Claimed: the task must reach the queue, or the pipeline would stay PENDING. */
	int64_t backoff = 100;
	int pushed = -1;
	while (envelope != NULL &&
	       (pushed = task_queue_push(&scheduler.redis, scheduler.daemon->config.redis_url,
					 scheduler.daemon->config.redis_queue, &envelope, 1, err, sizeof err)) != 0) {
		log_msg(LOG_WARN, "periodic_enqueue_retry", "%s", err);
		if (scheduler.stop)
			break;
		time_sleep_ms_unless(backoff, &scheduler.stop);
		backoff = backoff < 5000 ? backoff * 2 : 5000;
	}
	bool queued = pushed == 0;
	free(envelope);
	if (!queued) {
		log_msg(LOG_ERROR, "periodic_task_not_queued", "pipeline %s: execution %s stays PENDING: %s",
			pipeline_id, claim.execution_id, err);
		return;
	}
	/* Not recorded: the reconciler pushes it again later, a harmless duplicate. */
	const char *enqueued[] = { claim.execution_id };
	if (execution_store_mark_enqueued(scheduler.db, enqueued, 1, err, sizeof err) != 0)
		log_msg(LOG_WARN, "periodic_enqueue_not_recorded", "execution %s: %s", claim.execution_id, err);
	atomic_fetch_add(&scheduler.fired, 1);
	log_event(LOG_INFO, "periodic_pipeline_fired",
		  json_pack("{s:s, s:s, s:s}", "pipeline_id", pipeline_id, "execution_id", claim.execution_id,
			    "task_id", claim.task_id));
}

static void scheduler_tick(void)
{
	char err[512];
	if (db_ensure(&scheduler.db, scheduler.daemon->config.postgres_url, err, sizeof err) == NULL) {
		if (!scheduler.outage_logged)
			log_msg(LOG_ERROR, "scheduler_postgres_unavailable", "%s", err);
		scheduler.outage_logged = true;
		return;
	}
	PGresult *result = db_query(scheduler.db,
				    "SELECT p.id, p.config,"
				    " extract(epoch FROM (SELECT max(e.created_at) FROM executions e"
				    "                     WHERE e.pipeline_id = p.id))"
				    " FROM pipelines p WHERE p.is_active AND p.trigger_mode = 'periodic'",
				    0, NULL, err, sizeof err);
	if (result == NULL) {
		if (!scheduler.outage_logged)
			log_msg(LOG_ERROR, "scheduler_query_failed", "%s", err);
		scheduler.outage_logged = true;
		return;
	}
	scheduler.outage_logged = false;
	double now = time_now_seconds();
	for (int row = 0; row < PQntuples(result) && !scheduler.stop; row++) {
		json_t *config = json_loads(PQgetvalue(result, row, 1), 0, NULL);
		long interval = schedule_pipeline_interval(config);
		json_decref(config);
		double last = PQgetisnull(result, row, 2) ? -1 : strtod(PQgetvalue(result, row, 2), NULL);
		if (schedule_is_due(interval, last, now))
			scheduler_fire(PQgetvalue(result, row, 0));
	}
	PQclear(result);
	if (!scheduler.stop)
		reaper_tick(&scheduler.reaper, &scheduler.daemon->config, scheduler.db, &scheduler.redis);
}

static void *scheduler_loop(void *argument)
{
	(void)argument;
	while (!scheduler.stop && !scheduler.daemon->stopping) {
		scheduler_tick();
		time_sleep_ms_unless(1000, &scheduler.stop);
	}
	return NULL;
}

int scheduler_start(struct daemon *daemon, char *err, size_t errsize)
{
	scheduler.daemon = daemon;
	scheduler.stop = 0;
	if (pthread_create(&scheduler.thread, NULL, scheduler_loop, NULL) != 0) {
		snprintf(err, errsize, "cannot start the scheduler thread");
		return -1;
	}
	scheduler.running = true;
	return 0;
}

void scheduler_stop(struct daemon *daemon)
{
	(void)daemon;
	if (!scheduler.running)
		return;
	scheduler.stop = 1;
	pthread_join(scheduler.thread, NULL);
	if (scheduler.db != NULL)
		PQfinish(scheduler.db);
	scheduler.db = NULL;
	redisFree(scheduler.redis);
	scheduler.redis = NULL;
	scheduler.running = false;
}

json_t *scheduler_info(struct daemon *daemon)
{
	(void)daemon;
	return json_pack("{s:I, s:o}", "fired", (json_int_t)atomic_load(&scheduler.fired), "housekeeping",
			 reaper_info(&scheduler.reaper));
}

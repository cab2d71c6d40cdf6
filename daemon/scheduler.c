/*
 * The scheduler role: runs periodic pipelines (trigger_mode "periodic"
 * with a time_trigger node: interval, start_time, time_zone). Once a second
 * it works out each pipeline's slot due now (schedule.h) and, when no
 * scheduler decided that slot yet, decides it in the database
 * (execution_store_slot.h): it fires, or it is skipped because the previous
 * run is still live. So with any number of schedulers a slot fires at most
 * once, and after downtime only the slot due now fires, not every one
 * missed. Slots before a pipeline was created are not its own: a pipeline
 * added after today's 09:30 first runs tomorrow at 09:30. Every few
 * minutes it prunes the records of slots older than
 * scheduler.slot_retention_s, keeping each pipeline's newest.
 *
 * Everything here is owned by the scheduler's thread; status requests read
 * only the metrics (atomic) and the configuration.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "celery.h"
#include "daemon.h"
#include "db.h"
#include "execution_store_outbox.h"
#include "execution_store_slot.h"
#include "log.h"
#include "metrics.h"
#include "reaper.h"
#include "schedule.h"
#include "task_queue.h"
#include "time_zone.h"
#include "timeutil.h"

static struct {
	pthread_t thread;
	bool running;
	volatile int stop;
	struct daemon *daemon;
	PGconn *db;
	redisContext *redis;
	bool outage_logged;
	struct reaper reaper;
	/* Zones loaded so far, the configured one first; never unloaded while the role runs. */
	struct time_zone **zones;
	size_t zone_count;
	json_t *invalid_logged; /* ids of pipelines whose bad schedule was logged, so it is logged once */
	int64_t next_prune_ms;  /* monotonic time the next pruning statement is due; 0 at start */
	long pass_pruned;       /* slot records deleted by the pruning pass under way */
} scheduler;

/* Slot records deleted per statement: a statement, and the locks it takes, stay short. */
#define SCHEDULER_PRUNE_CHUNK 2000
/* A pipeline adds at most one record a second, so passes a few minutes apart keep the table small. */
#define SCHEDULER_PRUNE_INTERVAL_MS (5 * 60 * 1000)

/* The zone called `name`, loaded on first use. NULL with err when it cannot be. */
static const struct time_zone *scheduler_zone(const char *name, char *err, size_t errsize)
{
	for (size_t i = 0; i < scheduler.zone_count; i++)
		if (strcmp(time_zone_name(scheduler.zones[i]), name) == 0)
			return scheduler.zones[i];
	struct time_zone *zone = time_zone_load(name, err, errsize);
	if (zone == NULL)
		return NULL;
	struct time_zone **grown = realloc(scheduler.zones, (scheduler.zone_count + 1) * sizeof *grown);
	if (grown == NULL) {
		time_zone_free(zone);
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	scheduler.zones = grown;
	scheduler.zones[scheduler.zone_count++] = zone;
	return zone;
}

/* The schedule of a stored pipeline config; false (logged once per pipeline) when it has none. */
static bool scheduler_schedule_of(const char *pipeline_id, const char *config_text, struct schedule *schedule)
{
	char err[512];
	json_t *config = json_loads(config_text, 0, NULL);
	struct schedule_trigger trigger;
	int parsed = schedule_trigger_parse(config, &trigger, err, sizeof err);
	json_decref(config);
	const struct time_zone *zone = NULL;
	if (parsed == 0) {
		const char *zone_name = trigger.time_zone[0] != '\0' ? trigger.time_zone
								    : scheduler.daemon->config.scheduler_time_zone;
		zone = scheduler_zone(zone_name, err, sizeof err);
	}
	if (zone == NULL) {
		if (json_object_get(scheduler.invalid_logged, pipeline_id) == NULL)
			log_msg(LOG_WARN, "periodic_schedule_invalid", "pipeline %s never runs: %s", pipeline_id, err);
		json_object_set_new(scheduler.invalid_logged, pipeline_id, json_true());
		return false;
	}
	json_object_del(scheduler.invalid_logged, pipeline_id);
	*schedule = (struct schedule){ trigger.interval_seconds, trigger.start_minute, zone };
	return true;
}

/* Pushes the task of a fired slot's execution; claimed, it must reach the queue. */
static void scheduler_enqueue(const struct slot_claim *claim)
{
	char err[512];
	json_t *no_signals = json_array();
	json_t *kwargs = celery_execute_pipeline_kwargs(claim->pipeline_id, no_signals, claim->execution_id);
	json_object_set_new(kwargs, "triggered_by_signal", json_false());
	char delivery_tag[CELERY_ID_SIZE];
	celery_new_delivery_tag(delivery_tag);
	struct celery_message message = { .task_name = CELERY_TASK_EXECUTE_PIPELINE,
					  .task_id = claim->task_id,
					  .delivery_tag = delivery_tag,
					  .queue = scheduler.daemon->config.redis_queue,
					  .kwargs = kwargs };
	char *envelope = celery_envelope_build(&message, err, sizeof err);
	json_decref(kwargs);
	json_decref(no_signals);
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
	free(envelope);
	if (pushed != 0) {
		/* The outbox reconciler (reaper.h) pushes it later. */
		log_msg(LOG_ERROR, "periodic_task_not_queued", "pipeline %s: execution %s stays PENDING: %s",
			claim->pipeline_id, claim->execution_id, err);
		return;
	}
	/* Not recorded: the reconciler pushes it again later, a harmless duplicate. */
	const char *enqueued[] = { claim->execution_id };
	if (execution_store_mark_enqueued(scheduler.db, enqueued, 1, err, sizeof err) != 0)
		log_msg(LOG_WARN, "periodic_enqueue_not_recorded", "execution %s: %s", claim->execution_id, err);
}

static void scheduler_decide_slot(const char *pipeline_id, int64_t slot)
{
	char err[512];
	struct slot_claim claim = { .pipeline_id = pipeline_id, .slot = slot };
	uuid_t task_id;
	uuid_generate_random(task_id);
	uuid_unparse_lower(task_id, claim.task_id);
	if (execution_store_claim_slot(scheduler.db, &claim, err, sizeof err) != 0) {
		log_msg(LOG_WARN, "periodic_claim_failed", "pipeline %s: %s", pipeline_id, err);
		return;
	}
	if (claim.outcome == SLOT_TAKEN)
		return; /* another scheduler was first */
	char slot_text[40];
	time_format_iso8601((double)slot, slot_text, sizeof slot_text);
	if (claim.outcome == SLOT_SKIPPED) {
		metrics_add(METRIC_periodic_slots_skipped_total, 1);
		log_event(LOG_INFO, "periodic_slot_skipped",
			  json_pack("{s:s, s:s, s:s}", "pipeline_id", pipeline_id, "slot", slot_text, "reason",
				    claim.skip_reason));
		return;
	}
	scheduler_enqueue(&claim);
	metrics_add(METRIC_periodic_slots_fired_total, 1);
	log_event(LOG_INFO, "periodic_pipeline_fired",
		  json_pack("{s:s, s:s, s:s, s:s}", "pipeline_id", pipeline_id, "slot", slot_text, "execution_id",
			    claim.execution_id, "task_id", claim.task_id));
}

/*
 * One statement of the pruning pass, when one is due. A statement that
 * deleted a full chunk leaves the rest of the pass to the next ticks, so
 * a long backlog (the first pass over a table never pruned) is cleared a
 * chunk a second without holding up the slots due meanwhile. A failed
 * statement is tried again at the next pass.
 */
static void scheduler_prune_slots(void)
{
	int64_t now = time_monotonic_ms();
	if (now < scheduler.next_prune_ms)
		return;
	char err[512];
	long retention_s = scheduler.daemon->config.scheduler_slot_retention_s;
	long pruned = 0;
	if (execution_store_prune_slots(scheduler.db, retention_s, SCHEDULER_PRUNE_CHUNK, &pruned, err, sizeof err) !=
	    0) {
		log_msg(LOG_WARN, "schedule_slots_prune_failed", "%s; tried again in %d s", err,
			SCHEDULER_PRUNE_INTERVAL_MS / 1000);
		scheduler.next_prune_ms = now + SCHEDULER_PRUNE_INTERVAL_MS;
		return;
	}
	metrics_add(METRIC_schedule_slots_pruned_total, pruned);
	scheduler.pass_pruned += pruned;
	if (pruned == SCHEDULER_PRUNE_CHUNK)
		return;
	if (scheduler.pass_pruned > 0)
		log_event(LOG_INFO, "schedule_slots_pruned",
			  json_pack("{s:I, s:I}", "rows", (json_int_t)scheduler.pass_pruned, "retention_s",
				    (json_int_t)retention_s));
	scheduler.pass_pruned = 0;
	scheduler.next_prune_ms = now + SCHEDULER_PRUNE_INTERVAL_MS;
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
				    "SELECT p.id, p.config, extract(epoch FROM p.created_at),"
				    " extract(epoch FROM (SELECT max(s.slot_at) FROM schedule_slots s"
				    "                     WHERE s.pipeline_id = p.id))"
				    " FROM pipelines p WHERE p.is_active AND p.trigger_mode = 'periodic'",
				    0, NULL, err, sizeof err);
	if (result == NULL) {
		if (!scheduler.outage_logged)
			log_msg(LOG_ERROR, "scheduler_query_failed", "%s", err);
		scheduler.outage_logged = true;
		return;
	}
	scheduler.outage_logged = false;
	int64_t now = (int64_t)floor(time_now_seconds());
	for (int row = 0; row < PQntuples(result) && !scheduler.stop; row++) {
		const char *pipeline_id = PQgetvalue(result, row, 0);
		struct schedule schedule;
		if (!scheduler_schedule_of(pipeline_id, PQgetvalue(result, row, 1), &schedule))
			continue;
		int64_t slot = schedule_slot_at(&schedule, now);
		double created = strtod(PQgetvalue(result, row, 2), NULL);
		bool decided = !PQgetisnull(result, row, 3) && strtod(PQgetvalue(result, row, 3), NULL) >= (double)slot;
		if ((double)slot >= created && !decided)
			scheduler_decide_slot(pipeline_id, slot);
	}
	PQclear(result);
	if (!scheduler.stop)
		scheduler_prune_slots();
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

static void scheduler_release(void)
{
	for (size_t i = 0; i < scheduler.zone_count; i++)
		time_zone_free(scheduler.zones[i]);
	free(scheduler.zones);
	scheduler.zones = NULL;
	scheduler.zone_count = 0;
	json_decref(scheduler.invalid_logged);
	scheduler.invalid_logged = NULL;
}

int scheduler_start(struct daemon *daemon, char *err, size_t errsize)
{
	scheduler.daemon = daemon;
	scheduler.stop = 0;
	scheduler.next_prune_ms = 0;
	scheduler.pass_pruned = 0;
	scheduler.invalid_logged = json_object();
	char reason[512];
	if (scheduler_zone(daemon->config.scheduler_time_zone, reason, sizeof reason) == NULL) {
		snprintf(err, errsize, "scheduler.time_zone: %s", reason);
		scheduler_release();
		return -1;
	}
	if (pthread_create(&scheduler.thread, NULL, scheduler_loop, NULL) != 0) {
		snprintf(err, errsize, "cannot start the scheduler thread");
		scheduler_release();
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
	scheduler_release();
	scheduler.running = false;
}

json_t *scheduler_info(struct daemon *daemon)
{
	return json_pack("{s:I, s:I, s:s, s:o}", "fired", (json_int_t)metrics_get(METRIC_periodic_slots_fired_total),
			 "skipped", (json_int_t)metrics_get(METRIC_periodic_slots_skipped_total), "time_zone",
			 daemon->config.scheduler_time_zone, "housekeeping", reaper_info(&scheduler.reaper));
}

#include "reaper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "celery.h"
#include "execution_store_lease.h"
#include "execution_store_outbox.h"
#include "log.h"
#include "metrics.h"
#include "task_queue.h"
#include "timeutil.h"

/*
 * A pass is two indexed queries (partial indexes on RUNNING leases and on
 * unenqueued PENDING rows), cheap enough for every 2 s: a dead run is
 * failed at most this long after its lease ran out.
 */
#define REAPER_INTERVAL_MS 2000
/* The most executions re-enqueued per pass; a longer backlog takes several passes. */
#define REAPER_REENQUEUE_LIMIT 500

static void reaper_note_failure(struct reaper *reaper, const char *event, const char *err)
{
	if (!reaper->failure_logged)
		log_msg(LOG_WARN, event, "%s; retrying", err);
	reaper->failure_logged = true;
}

/* RUNNING executions whose lease ran out -> FAILED; those without a lease get one. */
static int reaper_expire_leases(struct reaper *reaper, const struct config *config, PGconn *db)
{
	char err[512];
	struct execution_reaped reaped;
	if (execution_store_expire_leases(db, config->worker_lease_s, &reaped, err, sizeof err) != 0) {
		reaper_note_failure(reaper, "lease_reaper_failed", err);
		return -1;
	}
	size_t index;
	json_t *execution;
	json_array_foreach(reaped.expired, index, execution)
		log_event(LOG_WARN, "execution_lease_expired", json_incref(execution));
	json_array_foreach(reaped.adopted, index, execution)
		log_msg(LOG_INFO, "execution_lease_adopted",
			"RUNNING execution %s had no lease (started before leases): given %ld s",
			json_string_value(json_object_get(execution, "execution_id")),
			config->worker_lease_s);
	size_t expired = json_array_size(reaped.expired);
	if (expired > 0) {
		metrics_add(METRIC_executions_lease_expired_total, (int64_t)expired);
		atomic_fetch_add(&reaper->leases_expired, (long long)expired);
	}
	execution_reaped_free(&reaped);
	return 0;
}

/* The Celery envelope of a locked outbox row, with its own task id and execution id. */
static char *reaper_rebuild_task(const json_t *row, const char *queue, char *err, size_t errsize)
{
	const char *triggered_by = json_string_value(json_object_get(row, "triggered_by"));
	json_t *kwargs = celery_execute_pipeline_kwargs(
		json_string_value(json_object_get(row, "pipeline_id")), json_object_get(row, "signal_ids"),
		json_string_value(json_object_get(row, "execution_id")));
	if (kwargs == NULL) {
		snprintf(err, errsize, "execution %s: cannot build its task's arguments",
			 json_string_value(json_object_get(row, "execution_id")));
		return NULL;
	}
	/* As its claimer sent it: the scheduler's runs are not triggered by a signal. */
	if (triggered_by == NULL || strcmp(triggered_by, "signal") != 0)
		json_object_set_new(kwargs, "triggered_by_signal", json_false());
	char delivery_tag[CELERY_ID_SIZE];
	celery_new_delivery_tag(delivery_tag);
	struct celery_message message = {
		.task_name = CELERY_TASK_EXECUTE_PIPELINE,
		.task_id = json_string_value(json_object_get(row, "task_id")),
		.delivery_tag = delivery_tag,
		.queue = queue,
		.kwargs = kwargs,
	};
	char *envelope = celery_envelope_build(&message, err, errsize);
	json_decref(kwargs);
	return envelope;
}

/*
 * Pushes the locked rows' tasks in one LPUSH and records them enqueued.
 * Returns 0 when the transaction may be committed.
 */
static int reaper_push_tasks(const json_t *rows, const struct config *config, PGconn *db,
			     redisContext **redis, char *err, size_t errsize)
{
	size_t count = json_array_size(rows);
	char **envelopes = calloc(count, sizeof *envelopes);
	const char **ids = calloc(count, sizeof *ids);
	int status = envelopes != NULL && ids != NULL ? 0 : -1;
	if (status != 0)
		snprintf(err, errsize, "out of memory");
	for (size_t i = 0; i < count && status == 0; i++) {
		const json_t *row = json_array_get(rows, i);
		ids[i] = json_string_value(json_object_get(row, "execution_id"));
		envelopes[i] = reaper_rebuild_task(row, config->redis_queue, err, errsize);
		if (envelopes[i] == NULL)
			status = -1;
	}
	if (status == 0)
		status = task_queue_push(redis, config->redis_url, config->redis_queue, envelopes, count,
					 err, errsize);
	/* Pushed but not marked (the commit fails): the next pass pushes a harmless duplicate. */
	if (status == 0)
		status = execution_store_mark_enqueued(db, ids, count, err, errsize);
	for (size_t i = 0; envelopes != NULL && i < count; i++)
		free(envelopes[i]);
	free(envelopes);
	free(ids);
	return status;
}

/* PENDING executions not known to be enqueued after dispatcher.reenqueue_after_s: enqueue again. */
static int reaper_reenqueue_pending(struct reaper *reaper, const struct config *config, PGconn *db,
				    redisContext **redis)
{
	char err[512];
	json_t *rows = execution_store_lock_unenqueued(db, config->dispatcher_reenqueue_after_s,
						       REAPER_REENQUEUE_LIMIT, err, sizeof err);
	if (rows == NULL) {
		reaper_note_failure(reaper, "outbox_reconcile_failed", err);
		return -1;
	}
	int status = 0;
	if (json_array_size(rows) > 0)
		status = reaper_push_tasks(rows, config, db, redis, err, sizeof err);
	char end_err[512];
	if (execution_store_outbox_end(db, status == 0, end_err, sizeof end_err) != 0 && status == 0) {
		snprintf(err, sizeof err, "%s", end_err);
		status = -1;
	}
	if (status != 0) {
		reaper_note_failure(reaper, "outbox_reconcile_failed", err);
		json_decref(rows);
		return -1;
	}
	size_t index;
	json_t *row;
	json_array_foreach(rows, index, row)
		log_event(LOG_WARN, "execution_reenqueued",
			  json_pack("{s:O, s:O, s:O}", "execution_id", json_object_get(row, "execution_id"),
				    "pipeline_id", json_object_get(row, "pipeline_id"), "task_id",
				    json_object_get(row, "task_id")));
	size_t count = json_array_size(rows);
	if (count > 0) {
		metrics_add(METRIC_executions_reenqueued_total, (int64_t)count);
		atomic_fetch_add(&reaper->reenqueued, (long long)count);
	}
	json_decref(rows);
	return 0;
}

void reaper_tick(struct reaper *reaper, const struct config *config, PGconn *db,
		 redisContext **redis)
{
	int64_t now = time_monotonic_ms();
	if (now < reaper->next_pass_ms)
		return;
	reaper->next_pass_ms = now + REAPER_INTERVAL_MS;
	int expired = reaper_expire_leases(reaper, config, db);
	int reenqueued = reaper_reenqueue_pending(reaper, config, db, redis);
	if (expired == 0 && reenqueued == 0) {
		if (reaper->failure_logged)
			log_msg(LOG_INFO, "housekeeping_restored", "lease reaper and outbox reconciler run again");
		reaper->failure_logged = false;
	}
}

json_t *reaper_info(const struct reaper *reaper)
{
	return json_pack("{s:I, s:I}", "leases_expired", (json_int_t)atomic_load(&reaper->leases_expired),
			 "reenqueued", (json_int_t)atomic_load(&reaper->reenqueued));
}

/*
 * The worker's app.orchestration.tasks.execute_pipeline: one run of a
 * pipeline, from the start of its execution (the claim the dispatcher
 * made, or one recorded here for a plain send_task()) through its agents
 * to its finish, and the retry of a run that failed retryably.
 */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "pipeline_store.h"
#include "signal_store.h"
#include "task_queue.h"
#include "task_retry.h"
#include "timeutil.h"

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

/* What a run's finish or retry records beside its new status. */
struct run_record {
	bool succeeded;
	const json_t *result;
	const char *text; /* the error of a FAILED run, or which retry is due and why */
};

/* A statement recording a run's state: 0 or more, or -1 with err filled. */
typedef int run_statement(PGconn *db, const struct execution_run *run, const struct run_record *record, char *err,
			  size_t errsize);

enum {
	STATEMENT_FAILED = -1,  /* it failed on a sound connection: err says why */
	STATEMENT_GAVE_UP = -2, /* the worker stopped, or PostgreSQL could not be reached and was not waited for */
};

/*
 * Runs `statement` until it answers, riding out lost connections: each
 * loss is noted as an outage and the statement is run again, with
 * backoff, on a new connection. `wait_while_unreachable` says whether a
 * reconnect that fails is waited out too, or ends the attempt. A failure
 * on a sound connection is the statement's own and is not repeated.
 * Returns the statement's answer, STATEMENT_FAILED with err filled, or
 * STATEMENT_GAVE_UP with err saying the last failure seen.
 */
static int run_through_outages(struct worker_thread *thread, run_statement *statement, const struct execution_run *run,
			       const struct run_record *record, bool wait_while_unreachable, char *err, size_t errsize)
{
	int attempt = 0;
	for (;;) {
		if (worker_ensure_postgres(thread)) {
			int answer = statement(thread->db, run, record, err, errsize);
			if (answer >= 0)
				return answer;
			if (!postgres_connection_lost(thread))
				return STATEMENT_FAILED;
			note_outage(&worker.postgres_down, "worker_postgres_unavailable", err);
		} else if (!wait_while_unreachable) {
			snprintf(err, errsize, "PostgreSQL is unreachable");
			return STATEMENT_GAVE_UP;
		}
		if (!worker_backoff(&attempt))
			return STATEMENT_GAVE_UP;
	}
}

static int record_finish(PGconn *db, const struct execution_run *run, const struct run_record *record, char *err,
			 size_t errsize)
{
	return execution_store_finish_leased(db, run->execution_id, run->lease_owner, record->succeeded,
					     record->result, record->text, err, errsize);
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
	char err[512] = "";
	const struct run_record record = { succeeded, result, error };
	int finished = run_through_outages(thread, record_finish, run, &record, true, err, sizeof err);
	if (finished == 0)
		log_msg(LOG_WARN, "execution_finish_lease_lost",
			"execution %s: this run lost its lease (reaped or taken over); its %s"
			" outcome is not recorded",
			execution_id, succeeded ? "SUCCEEDED" : "FAILED");
	else if (finished == STATEMENT_FAILED)
		log_msg(LOG_ERROR, "execution_finish_failed", "execution %s: %s", execution_id, err);
	else if (finished == STATEMENT_GAVE_UP)
		log_msg(LOG_ERROR, "execution_left_running",
			"execution %s: stopping before PostgreSQL came back", execution_id);
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

static int record_retry(PGconn *db, const struct execution_run *run, const struct run_record *record, char *err,
			size_t errsize)
{
	return execution_store_retry_leased(db, run->execution_id, run->lease_owner, record->result, record->text,
					    err, errsize);
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
	/* Not waited for when PostgreSQL is unreachable: the run fails instead, and its finish waits. */
	const struct run_record record = { false, result, retry_text };
	int moved = run_through_outages(thread, record_retry, run, &record, false, err, sizeof err);
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

int worker_run_execute_pipeline(struct worker_thread *thread, const struct celery_task *task,
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
	worker_hold_lease(thread, run.execution_id, run.lease_owner);
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

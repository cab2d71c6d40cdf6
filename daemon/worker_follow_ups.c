/* What a finished task sends on: its chain's next task, its callbacks or errbacks. */
#include "worker.h"

#include <string.h>

#include "celery_canvas.h"
#include "log.h"
#include "task_queue.h"

/*
 * The tasks a finished one sends on, as a stock worker does: its chain's
 * next task and its link callbacks after a success, its errbacks after a
 * failure. Sent before the task is acknowledged: a worker that dies in
 * between leaves the task to come back, and its execution, already
 * finished, makes it a duplicate that sends nothing again.
 */
void worker_send_follow_ups(struct worker_thread *thread, const struct celery_task *task,
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

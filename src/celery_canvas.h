/*
 * What a finished task sends on, as a stock Celery 5 worker does it
 * (celery/app/trace.py): the "canvas" a Python caller built with link=,
 * link_error= or chain(). The embed of a task message carries signatures,
 * {"task", "args", "kwargs", "options", "subtask_type", "immutable"}:
 *
 *   success: the next task of embed.chain (its last element), with the
 *            rest of the chain, and every embed.callbacks signature, each
 *            called with the task's return value as first argument
 *            (unless immutable);
 *   failure: every embed.errbacks signature, called with the task id, as
 *            Celery sends an errback its worker does not have.
 *
 * The messages keep a signature's options: task_id (a chain's result ids
 * are fixed before it is sent), queue, priority, and its own link and
 * link_error. root_id is the first task's; parent_id the one that sent it.
 * Only plain task signatures are sent: groups, chords and nested chains as
 * callbacks, and embed.chord, are not, and are named in the note for the
 * log. Pure functions; the worker pushes the messages.
 */
#ifndef SIGTRIG_CELERY_CANVAS_H
#define SIGTRIG_CELERY_CANVAS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "celery.h"

struct celery_follow_up {
	char task_name[256];
	char task_id[CELERY_ID_SIZE + 64];
	char queue[256]; /* the list to push to: the signature's queue, its priority applied */
	char *envelope;  /* malloc'd */
};

struct celery_follow_ups {
	struct celery_follow_up *items;
	size_t count;
	char note[512]; /* what was not sent, and why; "" when everything was */
};

/*
 * The messages `task` sends on, finished with `succeeded` and `retval`
 * (its return value; NULL for None), to default_queue unless a signature
 * names its own. Returns 0 (*ups filled, possibly empty), or -1 with err.
 */
int celery_follow_ups_build(const struct celery_task *task, bool succeeded, const json_t *retval,
			    const char *default_queue, struct celery_follow_ups *ups, char *err, size_t errsize);
void celery_follow_ups_free(struct celery_follow_ups *ups);

#endif

/*
 * Tasks a worker took but may not run yet: their Celery eta (send_task's
 * countdown or eta) lies ahead. As a stock Celery worker does, they are
 * held in memory, still recorded in Redis' unacked hash, and run when due;
 * a worker that stops gives the ones it holds back to the queue, and one
 * that dies leaves them to the visibility timeout like any task in hand.
 * Thread-safe: every worker thread puts and takes.
 */
#ifndef SIGTRIG_TASK_HOLD_H
#define SIGTRIG_TASK_HOLD_H

#include <stdbool.h>
#include <stddef.h>

#include "celery_broker.h"

struct task_hold;

struct task_hold *task_hold_new(size_t capacity);
/* Frees the hold and every task still in it. */
void task_hold_free(struct task_hold *hold);

/* Holds *taken until `eta` (seconds since the epoch): the hold owns it on true; false when full. */
bool task_hold_put(struct task_hold *hold, struct celery_taken *taken, double eta);
/* Moves the task due soonest into *taken when its eta is at or before `now`; false when none is due. */
bool task_hold_take_due(struct task_hold *hold, double now, struct celery_taken *taken);
/* Moves any held task into *taken, due or not (to give them back when stopping); false when empty. */
bool task_hold_take_any(struct task_hold *hold, struct celery_taken *taken);
size_t task_hold_count(struct task_hold *hold);

#endif

#include "task_hold.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct held_task {
	double eta;
	struct celery_taken taken;
};

/* Few tasks carry an eta: a plain array, searched for the soonest, is enough. */
struct task_hold {
	pthread_mutex_t lock;
	struct held_task *tasks;
	size_t count, capacity;
};

struct task_hold *task_hold_new(size_t capacity)
{
	struct task_hold *hold = calloc(1, sizeof *hold);
	if (hold == NULL)
		return NULL;
	hold->tasks = calloc(capacity > 0 ? capacity : 1, sizeof *hold->tasks);
	if (hold->tasks == NULL) {
		free(hold);
		return NULL;
	}
	hold->capacity = capacity;
	pthread_mutex_init(&hold->lock, NULL);
	return hold;
}

void task_hold_free(struct task_hold *hold)
{
	if (hold == NULL)
		return;
	for (size_t i = 0; i < hold->count; i++)
		celery_taken_free(&hold->tasks[i].taken);
	free(hold->tasks);
	pthread_mutex_destroy(&hold->lock);
	free(hold);
}

bool task_hold_put(struct task_hold *hold, struct celery_taken *taken, double eta)
{
	pthread_mutex_lock(&hold->lock);
	bool room = hold->count < hold->capacity;
	if (room) {
		hold->tasks[hold->count].eta = eta;
		hold->tasks[hold->count++].taken = *taken;
		memset(taken, 0, sizeof *taken);
	}
	pthread_mutex_unlock(&hold->lock);
	return room;
}

/* Removes task `index` into *taken; the caller holds the lock. */
static void hold_remove(struct task_hold *hold, size_t index, struct celery_taken *taken)
{
	*taken = hold->tasks[index].taken;
	hold->tasks[index] = hold->tasks[--hold->count];
}

bool task_hold_take_due(struct task_hold *hold, double now, struct celery_taken *taken)
{
	pthread_mutex_lock(&hold->lock);
	size_t soonest = hold->count;
	for (size_t i = 0; i < hold->count; i++)
		if (hold->tasks[i].eta <= now && (soonest == hold->count || hold->tasks[i].eta < hold->tasks[soonest].eta))
			soonest = i;
	bool due = soonest < hold->count;
	if (due)
		hold_remove(hold, soonest, taken);
	pthread_mutex_unlock(&hold->lock);
	return due;
}

bool task_hold_take_any(struct task_hold *hold, struct celery_taken *taken)
{
	pthread_mutex_lock(&hold->lock);
	bool any = hold->count > 0;
	if (any)
		hold_remove(hold, hold->count - 1, taken);
	pthread_mutex_unlock(&hold->lock);
	return any;
}

size_t task_hold_count(struct task_hold *hold)
{
	pthread_mutex_lock(&hold->lock);
	size_t count = hold->count;
	pthread_mutex_unlock(&hold->lock);
	return count;
}

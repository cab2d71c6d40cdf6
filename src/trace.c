#include "trace.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "timeutil.h"

/*
 * A bounded ring of serialized events. Producers are the flow's threads;
 * the single consumer is the trace relay. When the ring is full the oldest
 * event is dropped: tracing must never slow the flow down.
 */
#define TRACE_QUEUE_CAPACITY 65536

static char *queue[TRACE_QUEUE_CAPACITY];
static size_t queue_head, queue_count;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_ready = PTHREAD_COND_INITIALIZER;
static atomic_bool listening;

void trace_set_listening(bool value) { atomic_store(&listening, value); }
bool trace_is_listening(void) { return atomic_load(&listening); }

void trace_emit(const char *stage, const char *signal_id, json_t *fields)
{
	if (!trace_is_listening()) {
		json_decref(fields);
		return;
	}
	char stamp[40];
	time_format_iso8601(time_now_seconds(), stamp, sizeof stamp);
	json_t *event = json_pack("{s:s, s:s, s:s}", "stage", stage, "time", stamp, "signal_id",
				  signal_id != NULL ? signal_id : "");
	if (fields != NULL)
		json_object_update_missing(event, fields);
	json_decref(fields);
	char *line = json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(event);
	if (line == NULL)
		return;
	pthread_mutex_lock(&queue_lock);
	if (queue_count == TRACE_QUEUE_CAPACITY) {
		free(queue[queue_head]);
		queue_head = (queue_head + 1) % TRACE_QUEUE_CAPACITY;
		queue_count--;
	}
	queue[(queue_head + queue_count) % TRACE_QUEUE_CAPACITY] = line;
	queue_count++;
	pthread_cond_signal(&queue_ready);
	pthread_mutex_unlock(&queue_lock);
}

int trace_take(char **lines, int max, int wait_ms)
{
	pthread_mutex_lock(&queue_lock);
	if (queue_count == 0 && wait_ms > 0) {
		struct timespec deadline = time_deadline_after_ms(wait_ms);
		while (queue_count == 0)
			if (pthread_cond_timedwait(&queue_ready, &queue_lock, &deadline) != 0)
				break;
	}
	int taken = 0;
	while (taken < max && queue_count > 0) {
		lines[taken++] = queue[queue_head];
		queue_head = (queue_head + 1) % TRACE_QUEUE_CAPACITY;
		queue_count--;
	}
	pthread_mutex_unlock(&queue_lock);
	return taken;
}

static bool array_has_string(const json_t *array, const char *wanted)
{
	size_t index;
	const json_t *item;
	json_array_foreach(array, index, item)
		if (json_is_string(item) && strcmp(json_string_value(item), wanted) == 0)
			return true;
	return false;
}

bool trace_event_matches(const json_t *event, const char *signal_id, const char *ticker)
{
	if (signal_id != NULL) {
		const json_t *id = json_object_get(event, "signal_id");
		const json_t *ids = json_object_get(event, "signal_ids");
		bool found = (json_is_string(id) && strcmp(json_string_value(id), signal_id) == 0) ||
			     (json_is_array(ids) && array_has_string(ids, signal_id));
		if (!found)
			return false;
	}
	if (ticker != NULL) {
		const json_t *one = json_object_get(event, "ticker");
		const json_t *many = json_object_get(event, "tickers");
		bool found = (json_is_string(one) && strcmp(json_string_value(one), ticker) == 0) ||
			     (json_is_array(many) && array_has_string(many, ticker));
		if (!found)
			return false;
	}
	return true;
}

/* Callbacks, errbacks and chains a finished task sends on (see celery_canvas.h). */
#include "celery_canvas.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

static void note_skipped(struct celery_follow_ups *ups, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note_skipped(struct celery_follow_ups *ups, const char *fmt, ...)
{
	size_t used = strlen(ups->note);
	if (used + 4 >= sizeof ups->note)
		return;
	if (used > 0) {
		snprintf(ups->note + used, sizeof ups->note - used, "; ");
		used += 2;
	}
	va_list args;
	va_start(args, fmt);
	vsnprintf(ups->note + used, sizeof ups->note - used, fmt, args);
	va_end(args);
}

/*
 * A signature list option (link, link_error, chain) as a message's embed
 * takes it: an array, a lone signature made an array of one (Python's
 * Signature.set(link=sig) leaves it so), else null.
 */
static json_t *list_or_null(const json_t *value)
{
	if (json_is_object(value))
		return json_pack("[O]", value);
	return json_is_array(value) && json_array_size(value) > 0 ? json_deep_copy(value) : json_null();
}

/*
 * One message for `signature` called with `first` before its own args
 * (NULL: none). `chain`: the rest of a chain it carries on (NULL: none).
 * Returns 0 (added, or skipped with a note), -1 on error.
 */
static int add_call(struct celery_follow_ups *ups, const struct celery_task *task, const json_t *signature,
		    const json_t *first, const json_t *chain, const char *default_queue, const char *why,
		    char *err, size_t errsize)
{
	const char *name = json_string_value(json_object_get(signature, "task"));
	const json_t *subtask_type = json_object_get(signature, "subtask_type");
	const json_t *args = json_object_get(signature, "args");
	const json_t *kwargs = json_object_get(signature, "kwargs");
	const json_t *options = json_object_get(signature, "options");
	if (!json_is_object(signature) || name == NULL) {
		note_skipped(ups, "a %s that is not a task signature", why);
		return 0;
	}
	if (subtask_type != NULL && !json_is_null(subtask_type)) {
		note_skipped(ups, "%s %s: a %s signature is not supported", why, name, json_string_value(subtask_type));
		return 0;
	}
	if ((args != NULL && !json_is_null(args) && !json_is_array(args)) ||
	    (kwargs != NULL && !json_is_null(kwargs) && !json_is_object(kwargs))) {
		note_skipped(ups, "%s %s: args must be an array and kwargs an object", why, name);
		return 0;
	}
	json_t *call_args = json_array();
	if (first != NULL && !json_is_true(json_object_get(signature, "immutable")))
		json_array_append(call_args, (json_t *)first);
	if (json_is_array(args))
		json_array_extend(call_args, (json_t *)args);

	const char *task_id = json_string_value(json_object_get(options, "task_id"));
	char fresh_id[CELERY_ID_SIZE], delivery_tag[CELERY_ID_SIZE];
	uuid_t id;
	if (task_id == NULL) {
		uuid_generate_random(id);
		uuid_unparse_lower(id, fresh_id);
		task_id = fresh_id;
	}
	celery_new_delivery_tag(delivery_tag);
	const char *queue = json_string_value(json_object_get(options, "queue"));
	if (queue == NULL)
		queue = json_string_value(json_object_get(options, "routing_key"));
	if (queue == NULL || queue[0] == '\0')
		queue = default_queue;
	const json_t *priority = json_object_get(options, "priority");
	int message_priority = json_is_integer(priority) ? (int)json_integer_value(priority)
							 : celery_envelope_priority(task->envelope);
	json_t *embed = json_pack("{s:o, s:o, s:o, s:n}", "callbacks", list_or_null(json_object_get(options, "link")),
				  "errbacks", list_or_null(json_object_get(options, "link_error")), "chain",
				  chain != NULL ? list_or_null(chain) : json_null(), "chord");
	const char *root_id = celery_task_header(task, "root_id");
	struct celery_message message = {
		.task_name = name,
		.task_id = task_id,
		.delivery_tag = delivery_tag,
		.queue = queue,
		.args = call_args,
		.kwargs = json_is_object(kwargs) ? kwargs : NULL,
		.root_id = root_id != NULL ? root_id : task->task_id,
		.parent_id = task->task_id,
		.embed = embed,
		.priority = message_priority,
	};
	char *envelope = celery_envelope_build(&message, err, errsize);
	json_decref(call_args);
	json_decref(embed);
	if (envelope == NULL)
		return -1;
	struct celery_follow_up *grown = realloc(ups->items, (ups->count + 1) * sizeof *grown);
	if (grown == NULL) {
		free(envelope);
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	ups->items = grown;
	struct celery_follow_up *up = &ups->items[ups->count++];
	snprintf(up->task_name, sizeof up->task_name, "%s", name);
	snprintf(up->task_id, sizeof up->task_id, "%s", task_id);
	celery_priority_queue(queue, message_priority, up->queue, sizeof up->queue);
	up->envelope = envelope;
	return 0;
}

/* One message per signature of the embed's list `member` (callbacks, errbacks), each called with `first`. */
static int add_calls(struct celery_follow_ups *ups, const struct celery_task *task, const char *member,
		     const json_t *first, const char *default_queue, const char *why, char *err, size_t errsize)
{
	json_t *signatures = list_or_null(json_object_get(task->embed, member));
	int status = 0;
	size_t index;
	const json_t *signature;
	json_array_foreach(signatures, index, signature) {
		status = add_call(ups, task, signature, first, NULL, default_queue, why, err, errsize);
		if (status != 0)
			break;
	}
	json_decref(signatures);
	return status;
}

int celery_follow_ups_build(const struct celery_task *task, bool succeeded, const json_t *retval,
			    const char *default_queue, struct celery_follow_ups *ups, char *err, size_t errsize)
{
	memset(ups, 0, sizeof *ups);
	const json_t *embed = task->embed;
	if (!json_is_object(embed))
		return 0;
	json_t *none = json_null();
	const json_t *result = retval != NULL ? retval : none;
	int status = 0;
	if (succeeded) {
		const json_t *chain = json_object_get(embed, "chain");
		if (json_is_array(chain) && json_array_size(chain) > 0) {
			/* The next task is the last element; it carries the rest on. */
			size_t last = json_array_size(chain) - 1;
			json_t *rest = json_array();
			for (size_t i = 0; i < last; i++)
				json_array_append(rest, json_array_get(chain, i));
			status = add_call(ups, task, json_array_get(chain, last), result, rest, default_queue,
					  "chain task", err, errsize);
			json_decref(rest);
		}
		if (status == 0)
			status = add_calls(ups, task, "callbacks", result, default_queue, "callback", err, errsize);
	} else {
		json_t *task_id = json_string(task->task_id != NULL ? task->task_id : "");
		status = add_calls(ups, task, "errbacks", task_id, default_queue, "errback", err, errsize);
		json_decref(task_id);
	}
	const json_t *chord = json_object_get(embed, "chord");
	if (status == 0 && chord != NULL && !json_is_null(chord)) {
		const char *body = json_string_value(json_object_get(chord, "task"));
		note_skipped(ups, "chord %s: chords are not supported", body != NULL ? body : "(unnamed)");
	}
	json_decref(none);
	if (status != 0)
		celery_follow_ups_free(ups);
	return status;
}

void celery_follow_ups_free(struct celery_follow_ups *ups)
{
	for (size_t i = 0; i < ups->count; i++)
		free(ups->items[i].envelope);
	free(ups->items);
	ups->items = NULL;
	ups->count = 0;
}

/*
 * The Celery 5 task message (protocol 2) and result, as a stock worker and
 * Python's send_task()/AsyncResult write and read them on Redis: see
 * CELERY_WIRE.md. Pure functions over jansson; the Redis side (take, ack,
 * result store, restore) is celery_broker.h.
 */
#ifndef SIGTRIG_CELERY_H
#define SIGTRIG_CELERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CELERY_TASK_EXECUTE_PIPELINE "app.orchestration.tasks.execute_pipeline"
/* Result key and pub/sub channel of a task: this prefix + the task id. */
#define CELERY_RESULT_PREFIX "celery-task-meta-"
/* Space for a UUID task id or delivery tag and its NUL. */
#define CELERY_ID_SIZE 37

/* What a producer sends: one task call. */
struct celery_message {
	const char *task_name;
	const char *task_id;
	const char *delivery_tag; /* unique per message: it keys the `unacked` hash */
	const char *queue;        /* the Redis list, also delivery_info.routing_key */
	const json_t *args;       /* array, NULL for [] */
	const json_t *kwargs;     /* object, NULL for {} */
	/* A task sent on by another (a callback, the next of a chain); NULL for a first task. */
	const char *root_id;      /* NULL: the task's own id */
	const char *parent_id;    /* NULL: null */
	const json_t *embed;      /* {callbacks, errbacks, chain, chord}; NULL: all null */
	int priority;             /* 0-9 */
};

/*
 * The envelope text (malloc'd) Python's send_task() would LPUSH: every
 * header it writes, properties with correlation_id = task id, reply_to "",
 * delivery_mode 2, priority 0 and body_encoding base64, and the body
 * base64([args, kwargs, {"callbacks": null, "errbacks": null, "chain":
 * null, "chord": null}]). NULL with err filled on a bad argument.
 */
char *celery_envelope_build(const struct celery_message *message, char *err, size_t errsize);

/*
 * A new delivery tag (properties.delivery_tag) into out[CELERY_ID_SIZE]:
 * a time-ordered UUID, so that the age of the oldest task in a queue can
 * be read off its tag (celery_delivery_tag_sent_ms). Celery takes the tag
 * as an opaque string; Python's producers send version 4 UUIDs, which
 * carry no time.
 */
void celery_new_delivery_tag(char *out);
/* When the message with this delivery tag was sent (Unix ms); false for a tag that does not say. */
bool celery_delivery_tag_sent_ms(const char *delivery_tag, int64_t *sent_ms);

/* {"pipeline_id", "triggered_by_signal": true, "signal_ids", "execution_id"}, a new reference. */
json_t *celery_execute_pipeline_kwargs(const char *pipeline_id, const json_t *signal_ids,
				       const char *execution_id);

/*
 * The envelope of one app.orchestration.tasks.execute_pipeline call, with
 * a fresh delivery tag. `task_id` (CELERY_ID_SIZE bytes) is used when it is
 * not empty, so the dispatcher can record it with the claim before it
 * knows the execution; when empty it receives a fresh UUID.
 */
char *celery_execute_pipeline_task(const char *pipeline_id, const json_t *signal_ids,
				   const char *execution_id, const char *queue, char *task_id,
				   char *err, size_t errsize);

/* A task message as taken from the queue. */
struct celery_task {
	char *text;          /* the envelope exactly as taken, NUL-terminated */
	size_t length;
	json_t *envelope;    /* NULL when the text is not a JSON object */
	/* Borrowed from envelope; NULL when absent (only possible after a failed parse). */
	const char *task_name;
	const char *task_id;
	const char *delivery_tag;
	const char *exchange;
	const char *routing_key;
	json_t *args;        /* array */
	json_t *kwargs;      /* object */
	json_t *embed;       /* object: callbacks, errbacks, chain, chord */
	bool redelivered;
};

/*
 * Decodes and validates an envelope: a JSON object, content-type
 * application/json, headers.task and headers.id, properties.delivery_tag,
 * properties.delivery_info.exchange and routing_key, and a body (base64
 * when properties.body_encoding is "base64", else JSON text as is) that is
 * [args (array), kwargs (object), embed (object)]. Returns 0, or -1 with
 * err naming the field and what is wrong. Either way the text is kept and
 * whatever identified the message (task_id, delivery_tag) is filled, so a
 * caller can dead-letter it and store a FAILURE result; always call
 * celery_task_free().
 */
int celery_envelope_parse(const char *text, size_t length, struct celery_task *task, char *err,
			  size_t errsize);
void celery_task_free(struct celery_task *task);

/* A string header of a parsed task (headers.eta, headers.root_id, ...); NULL when absent or not a string. */
const char *celery_task_header(const struct celery_task *task, const char *name);

/*
 * A failure's result value {"exc_type", "exc_message": [message],
 * "exc_module"}: Celery re-raises it in AsyncResult.get(). The module is
 * "celery.exceptions" for Celery's own exceptions (NotRegistered), else
 * "builtins".
 */
json_t *celery_exception(const char *exc_type, const char *message);

/*
 * The result document (malloc'd text) a worker stores under and publishes
 * on celery-task-meta-<task_id>: status ("SUCCESS" or "FAILURE"), result
 * (borrowed; NULL for null), traceback (NULL for null), children [],
 * date_done now in naive UTC with microseconds, task_id.
 */
char *celery_result_json(const char *task_id, const char *status, const json_t *result,
			 const char *traceback);

/*
 * The message Celery's Task.retry() sends for a task: the same id, name,
 * args and callbacks, `kwargs` as given, headers.retries = retries,
 * headers.eta = eta (seconds since the epoch, written as ISO 8601 UTC), a
 * fresh delivery tag and no redelivered mark. Malloc'd text; NULL with
 * err filled.
 */
char *celery_retry_envelope(const struct celery_task *task, const json_t *kwargs, int retries, double eta,
			    char *err, size_t errsize);
/* Sets "redelivered": true in headers and properties.delivery_info, as kombu's restore does. */
int celery_envelope_set_redelivered(json_t *envelope);
/* The same over text: a new envelope text (malloc'd), NULL when it is not a JSON object. */
char *celery_mark_redelivered(const char *envelope_text);

/*
 * The list a message of `priority` goes to: 0-2 the queue itself, 3-5
 * queue "\x06\x16" "3", 6-8 "...6", 9 "...9" (kombu's priority steps).
 */
void celery_priority_queue(const char *queue, int priority, char *buf, size_t size);
/* properties.priority clamped to 0..9, 0 when absent or not a number (as kombu reads it). */
int celery_envelope_priority(const json_t *envelope);

/* A dead-letter list entry {"reason", "queue", "time", "envelope"} (malloc'd text). */
char *celery_dead_letter_entry(const char *text, size_t length, const char *reason,
			       const char *queue);

/*
 * Python's repr() of a JSON value ({'a': True, 'b': None, 'c': [1.5]}), as
 * Celery writes argsrepr and kwargsrepr; `as_tuple` writes an array as a
 * tuple, "()" or "(1,)". Cut at `max_length` with "..." as saferepr does.
 */
char *celery_python_repr(const json_t *value, bool as_tuple, size_t max_length);

#endif

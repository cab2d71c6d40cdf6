#include "celery.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "celery_direct.h"
#include "ids.h"
#include "text_buffer.h"
#include "timeutil.h"

/* Celery's task_argsrepr_maxsize / task_kwargsrepr_maxsize default. */
#define CELERY_REPR_MAX_LENGTH 1024
/* kombu's separator between a queue name and its priority step. */
#define CELERY_PRIORITY_SEPARATOR "\x06\x16"

_Static_assert(CELERY_ID_SIZE == IDS_UUID_LENGTH + 1, "a task id or delivery tag holds a UUID and its NUL");

/* Python's json.dumps escapes non-ASCII; doing the same keeps texts byte-comparable. */
#define CELERY_JSON_FLAGS (JSON_COMPACT | JSON_ENSURE_ASCII)

/* ---- Python repr, for argsrepr/kwargsrepr ---- */

static void buffer_append_base64(struct text_buffer *buffer, const void *data, size_t length)
{
	size_t encoded_length = base64_encoded_length(length);
	if (!text_buffer_reserve(buffer, encoded_length))
		return;
	base64_encode_to(data, length, buffer->data + buffer->length);
	buffer->length += encoded_length;
}

/* Python's str repr: single quotes unless the text has ' and no ". Non-ASCII stays as is. */
static void repr_string(struct text_buffer *buffer, const char *text, size_t length)
{
	bool has_single = memchr(text, '\'', length) != NULL;
	bool has_double = memchr(text, '"', length) != NULL;
	char quote = has_single && !has_double ? '"' : '\'';
	text_buffer_append(buffer, &quote, 1);
	for (size_t i = 0; i < length; i++) {
		unsigned char c = (unsigned char)text[i];
		char escaped[8];
		if (c == '\\' || c == (unsigned char)quote) {
			snprintf(escaped, sizeof escaped, "\\%c", c);
		} else if (c == '\n') {
			snprintf(escaped, sizeof escaped, "\\n");
		} else if (c == '\r') {
			snprintf(escaped, sizeof escaped, "\\r");
		} else if (c == '\t') {
			snprintf(escaped, sizeof escaped, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(escaped, sizeof escaped, "\\x%02x", c);
		} else {
			text_buffer_append(buffer, (const char *)&c, 1);
			continue;
		}
		text_buffer_puts(buffer, escaped);
	}
	text_buffer_append(buffer, &quote, 1);
}

/* Python's float repr: the shortest text that reads back the same, always with a '.' or exponent. */
static void repr_real(struct text_buffer *buffer, double value)
{
	char text[40];
	for (int precision = 1; precision <= 17; precision++) {
		snprintf(text, sizeof text, "%.*g", precision, value);
		if (strtod(text, NULL) == value)
			break;
	}
	if (strpbrk(text, ".einf") == NULL)
		strcat(text, ".0");
	text_buffer_puts(buffer, text);
}

static void repr_value(struct text_buffer *buffer, const json_t *value, bool as_tuple)
{
	char number[32];
	switch (json_typeof(value)) {
	case JSON_OBJECT: {
		text_buffer_puts(buffer, "{");
		const char *key;
		const json_t *member;
		bool first = true;
		json_object_foreach((json_t *)value, key, member) {
			if (!first)
				text_buffer_puts(buffer, ", ");
			first = false;
			repr_string(buffer, key, strlen(key));
			text_buffer_puts(buffer, ": ");
			repr_value(buffer, member, false);
		}
		text_buffer_puts(buffer, "}");
		break;
	}
	case JSON_ARRAY: {
		size_t count = json_array_size(value);
		text_buffer_puts(buffer, as_tuple ? "(" : "[");
		for (size_t i = 0; i < count; i++) {
			if (i > 0)
				text_buffer_puts(buffer, ", ");
			repr_value(buffer, json_array_get(value, i), false);
		}
		/* A one-element tuple needs its comma: (1,) */
		text_buffer_puts(buffer, as_tuple ? (count == 1 ? ",)" : ")") : "]");
		break;
	}
	case JSON_STRING:
		repr_string(buffer, json_string_value(value), json_string_length(value));
		break;
	case JSON_INTEGER:
		snprintf(number, sizeof number, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
		text_buffer_puts(buffer, number);
		break;
	case JSON_REAL:
		repr_real(buffer, json_real_value(value));
		break;
	case JSON_TRUE:
		text_buffer_puts(buffer, "True");
		break;
	case JSON_FALSE:
		text_buffer_puts(buffer, "False");
		break;
	case JSON_NULL:
		text_buffer_puts(buffer, "None");
		break;
	}
}

char *celery_python_repr(const json_t *value, bool as_tuple, size_t max_length)
{
	struct text_buffer buffer = { 0 };
	repr_value(&buffer, value, as_tuple);
	if (buffer.failed) {
		free(buffer.data);
		return NULL;
	}
	if (buffer.length > max_length) {
		size_t cut = max_length;
		/* Never cut inside a UTF-8 sequence. */
		while (cut > 0 && ((unsigned char)buffer.data[cut] & 0xc0) == 0x80)
			cut--;
		text_buffer_truncate(&buffer, cut);
		text_buffer_puts(&buffer, "...");
	}
	return buffer.data;
}

/* ---- building ---- */

/* The host name, looked up once: it goes into every envelope's origin. */
static char host_name[256] = "localhost";
static pthread_once_t host_name_once = PTHREAD_ONCE_INIT;

static void host_name_look_up(void)
{
	if (gethostname(host_name, sizeof host_name - 1) != 0)
		snprintf(host_name, sizeof host_name, "localhost");
}

static const char *celery_host_name(void)
{
	pthread_once(&host_name_once, host_name_look_up);
	return host_name;
}

static json_t *build_headers(const struct celery_message *message, const json_t *args,
			     const json_t *kwargs)
{
	char origin[300];
	snprintf(origin, sizeof origin, "sigtrig@%s", celery_host_name());
	char *args_repr = celery_python_repr(args, true, CELERY_REPR_MAX_LENGTH);
	char *kwargs_repr = celery_python_repr(kwargs, false, CELERY_REPR_MAX_LENGTH);
	json_t *headers = NULL;
	if (args_repr != NULL && kwargs_repr != NULL)
		/* The order and the nulls are Python's, so monitoring tools show the same thing. */
		headers = json_pack("{s:s, s:s, s:s, s:n, s:n, s:n, s:n, s:n, s:i, s:[n,n], s:s, s:s?,"
				    " s:s, s:s, s:s, s:b}",
				    "lang", "py", "task", message->task_name, "id", message->task_id,
				    "shadow", "eta", "expires", "group", "group_index", "retries", 0,
				    "timelimit", "root_id",
				    message->root_id != NULL ? message->root_id : message->task_id, "parent_id",
				    message->parent_id, "argsrepr", args_repr, "kwargsrepr", kwargs_repr, "origin",
				    origin, "ignore_result", 0);
	free(args_repr);
	free(kwargs_repr);
	return headers;
}

/* base64 of [args, kwargs, embed]; a NULL embed is the one send_task() writes, all nulls. */
static char *encode_body(const json_t *args, const json_t *kwargs, const json_t *embed)
{
	json_t *body = embed != NULL ? json_pack("[O, O, O]", args, kwargs, embed)
				     : json_pack("[O, O, {s:n, s:n, s:n, s:n}]", args, kwargs, "callbacks",
						 "errbacks", "chain", "chord");
	char *body_text = body != NULL ? json_dumps(body, CELERY_JSON_FLAGS) : NULL;
	json_decref(body);
	if (body_text == NULL)
		return NULL;
	char *encoded = base64_encode(body_text, strlen(body_text));
	free(body_text);
	return encoded;
}

char *celery_envelope_build(const struct celery_message *message, char *err, size_t errsize)
{
	static const struct {
		size_t offset;
		const char *name;
	} required[] = {
		{ offsetof(struct celery_message, task_name), "task name" },
		{ offsetof(struct celery_message, task_id), "task id" },
		{ offsetof(struct celery_message, delivery_tag), "delivery tag" },
		{ offsetof(struct celery_message, queue), "queue" },
	};
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
		const char *value = *(const char *const *)((const char *)message + required[i].offset);
		if (value == NULL || value[0] == '\0') {
			snprintf(err, errsize, "celery message: %s is missing", required[i].name);
			return NULL;
		}
	}
	json_t *empty_args = json_array(), *empty_kwargs = json_object();
	const json_t *args = message->args != NULL ? message->args : empty_args;
	const json_t *kwargs = message->kwargs != NULL ? message->kwargs : empty_kwargs;
	char *text = NULL;
	if (!json_is_array(args)) {
		snprintf(err, errsize, "celery message: args must be an array");
	} else if (!json_is_object(kwargs)) {
		snprintf(err, errsize, "celery message: kwargs must be an object");
	} else {
		json_t *headers = build_headers(message, args, kwargs);
		char *body = encode_body(args, kwargs, message->embed);
		json_t *envelope = NULL;
		if (headers != NULL && body != NULL)
			envelope = json_pack(
				"{s:s, s:s, s:s, s:o, s:{s:s, s:s, s:i, s:{s:s, s:s}, s:i, s:s, s:s}}",
				"body", body, "content-encoding", "utf-8", "content-type",
				"application/json", "headers", headers, "properties", "correlation_id",
				message->task_id, "reply_to", "", "delivery_mode", 2, "delivery_info",
				"exchange", "", "routing_key", message->queue, "priority",
				message->priority < 0 ? 0 : message->priority > 9 ? 9 : message->priority,
				"body_encoding", "base64", "delivery_tag", message->delivery_tag);
		else
			json_decref(headers);
		free(body);
		if (envelope != NULL)
			text = json_dumps(envelope, CELERY_JSON_FLAGS);
		json_decref(envelope);
		if (text == NULL)
			snprintf(err, errsize, "celery message: could not encode (text not valid UTF-8?)");
	}
	json_decref(empty_args);
	json_decref(empty_kwargs);
	return text;
}

json_t *celery_execute_pipeline_kwargs(const char *pipeline_id, const json_t *signal_ids,
				       const char *execution_id)
{
	json_t *ids = signal_ids != NULL ? json_deep_copy(signal_ids) : json_array();
	return json_pack("{s:s, s:b, s:o, s:s}", "pipeline_id", pipeline_id, "triggered_by_signal", 1,
			 "signal_ids", ids, "execution_id", execution_id);
}

/* ---- execute_pipeline, written directly ---- */

/*
 * The dispatcher sends one execute_pipeline envelope per claimed run, and
 * building it through jansson (pack, repr, dumps, base64, pack, dumps)
 * took more of its time than the rest of a round. When every variable
 * part is plain the envelope is a fixed text with those parts pasted in,
 * so it is written as such. celery_envelope_build() stays the definition:
 * these texts equal its output byte for byte (tests/test_celery.c), and
 * whatever is not plain goes through it.
 */

static bool is_plain_character(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == ':' || c == '@' || c == '-';
}

/*
 * Text that json_dumps (with ensure_ascii) and Python's repr both write
 * between their quotes as it is. Empty text is not plain: an empty queue
 * or task id is an error the generic path reports.
 */
static bool is_plain(const char *text, size_t length)
{
	if (text == NULL || length == 0)
		return false;
	for (size_t i = 0; i < length; i++)
		if (!is_plain_character((unsigned char)text[i]))
			return false;
	return true;
}

static bool is_plain_string(const char *text)
{
	return text != NULL && is_plain(text, strlen(text));
}

static bool signal_ids_are_plain(const json_t *signal_ids)
{
	if (signal_ids == NULL)
		return true;
	if (!json_is_array(signal_ids))
		return false;
	size_t index;
	const json_t *id;
	json_array_foreach(signal_ids, index, id)
		if (!is_plain(json_string_value(id), json_string_length(id)))
			return false;
	return true;
}

static bool pipeline_call_is_plain(const struct celery_pipeline_call *call)
{
	return is_plain_string(call->pipeline_id) && is_plain_string(call->execution_id) &&
	       is_plain_string(call->queue) && is_plain_string(call->task_id) &&
	       is_plain_string(call->delivery_tag) && is_plain_string(celery_host_name()) &&
	       signal_ids_are_plain(call->signal_ids);
}

/* A JSON string (quote '"') or a Python str (quote '\'') of plain text. */
static void write_quoted(struct text_buffer *buffer, char quote, const char *text, size_t length)
{
	text_buffer_append(buffer, &quote, 1);
	text_buffer_append(buffer, text, length);
	text_buffer_append(buffer, &quote, 1);
}

static void write_quoted_string(struct text_buffer *buffer, char quote, const char *text)
{
	write_quoted(buffer, quote, text, strlen(text));
}

/* The elements of signal_ids, as JSON (quote '"', separator ",") or as a Python list's. */
static void write_signal_ids(struct text_buffer *buffer, const json_t *signal_ids, char quote,
			     const char *separator)
{
	size_t index;
	const json_t *id;
	json_array_foreach(signal_ids, index, id) {
		if (index > 0)
			text_buffer_puts(buffer, separator);
		write_quoted(buffer, quote, json_string_value(id), json_string_length(id));
	}
}

/* [args, kwargs, embed] as json_dumps(JSON_COMPACT) writes it: encode_body()'s text. */
static void write_body_json(struct text_buffer *buffer, const struct celery_pipeline_call *call)
{
	text_buffer_puts(buffer, "[[],{\"pipeline_id\":");
	write_quoted_string(buffer, '"', call->pipeline_id);
	text_buffer_puts(buffer, ",\"triggered_by_signal\":true,\"signal_ids\":[");
	write_signal_ids(buffer, call->signal_ids, '"', ",");
	text_buffer_puts(buffer, "],\"execution_id\":");
	write_quoted_string(buffer, '"', call->execution_id);
	text_buffer_puts(buffer, "},{\"callbacks\":null,\"errbacks\":null,\"chain\":null,\"chord\":null}]");
}

/*
 * The argsrepr and kwargsrepr members, as build_headers() writes them.
 * The kwargs repr is cut as celery_python_repr() cuts it; plain text is
 * ASCII, so there is no UTF-8 sequence to keep whole. The repr's quotes
 * and punctuation need no escaping in JSON.
 */
static void write_reprs(struct text_buffer *buffer, const struct celery_pipeline_call *call)
{
	text_buffer_puts(buffer, "\"argsrepr\":\"()\",\"kwargsrepr\":\"");
	size_t start = buffer->length;
	text_buffer_puts(buffer, "{'pipeline_id': ");
	write_quoted_string(buffer, '\'', call->pipeline_id);
	text_buffer_puts(buffer, ", 'triggered_by_signal': True, 'signal_ids': [");
	write_signal_ids(buffer, call->signal_ids, '\'', ", ");
	text_buffer_puts(buffer, "], 'execution_id': ");
	write_quoted_string(buffer, '\'', call->execution_id);
	text_buffer_puts(buffer, "}");
	if (buffer->length - start > CELERY_REPR_MAX_LENGTH) {
		text_buffer_truncate(buffer, start + CELERY_REPR_MAX_LENGTH);
		text_buffer_puts(buffer, "...");
	}
	text_buffer_puts(buffer, "\"");
}

/* The headers object in build_headers()'s order and nulls. */
static void write_headers(struct text_buffer *buffer, const struct celery_pipeline_call *call)
{
	text_buffer_puts(buffer, "\"headers\":{\"lang\":\"py\",\"task\":\"" CELERY_TASK_EXECUTE_PIPELINE "\",\"id\":");
	write_quoted_string(buffer, '"', call->task_id);
	text_buffer_puts(buffer, ",\"shadow\":null,\"eta\":null,\"expires\":null,\"group\":null,\"group_index\":null,"
			    "\"retries\":0,\"timelimit\":[null,null],\"root_id\":");
	write_quoted_string(buffer, '"', call->task_id);
	text_buffer_puts(buffer, ",\"parent_id\":null,");
	write_reprs(buffer, call);
	text_buffer_puts(buffer, ",\"origin\":\"sigtrig@");
	text_buffer_puts(buffer, celery_host_name());
	text_buffer_puts(buffer, "\",\"ignore_result\":false}");
}

/* The properties object of celery_envelope_build(), priority 0. */
static void write_properties(struct text_buffer *buffer, const struct celery_pipeline_call *call)
{
	text_buffer_puts(buffer, "\"properties\":{\"correlation_id\":");
	write_quoted_string(buffer, '"', call->task_id);
	text_buffer_puts(buffer, ",\"reply_to\":\"\",\"delivery_mode\":2,\"delivery_info\":{\"exchange\":\"\","
			    "\"routing_key\":");
	write_quoted_string(buffer, '"', call->queue);
	text_buffer_puts(buffer, "},\"priority\":0,\"body_encoding\":\"base64\",\"delivery_tag\":");
	write_quoted_string(buffer, '"', call->delivery_tag);
	text_buffer_puts(buffer, "}");
}

static void write_envelope(struct text_buffer *buffer, const struct celery_pipeline_call *call,
			   const struct text_buffer *body)
{
	text_buffer_puts(buffer, "{\"body\":\"");
	buffer_append_base64(buffer, body->data, body->length);
	text_buffer_puts(buffer, "\",\"content-encoding\":\"utf-8\",\"content-type\":\"application/json\",");
	write_headers(buffer, call);
	text_buffer_puts(buffer, ",");
	write_properties(buffer, call);
	text_buffer_puts(buffer, "}");
}

char *celery_execute_pipeline_direct(const struct celery_pipeline_call *call)
{
	if (!pipeline_call_is_plain(call))
		return NULL;
	struct text_buffer body = { 0 }, envelope = { 0 };
	write_body_json(&body, call);
	if (!body.failed) {
		/*
		 * Room for all of it at once, as a rule: the body in base64, the
		 * kwargs repr (no longer than the body's JSON) and about 1 KiB of
		 * headers and properties.
		 */
		text_buffer_reserve(&envelope, base64_encoded_length(body.length) + body.length + 1024);
		write_envelope(&envelope, call, &body);
	}
	free(body.data);
	if (body.failed || envelope.failed) {
		free(envelope.data);
		return NULL;
	}
	return envelope.data;
}

void celery_new_delivery_tag(char *out) { ids_time_ordered_uuid(out); }

bool celery_delivery_tag_sent_ms(const char *delivery_tag, int64_t *sent_ms)
{
	return ids_time_ordered_uuid_ms(delivery_tag, sent_ms);
}

char *celery_execute_pipeline_generic(const struct celery_pipeline_call *call, char *err, size_t errsize)
{
	json_t *kwargs = celery_execute_pipeline_kwargs(call->pipeline_id, call->signal_ids, call->execution_id);
	if (kwargs == NULL) {
		snprintf(err, errsize, "execute_pipeline: ids are not valid UTF-8");
		return NULL;
	}
	struct celery_message message = {
		.task_name = CELERY_TASK_EXECUTE_PIPELINE,
		.task_id = call->task_id,
		.delivery_tag = call->delivery_tag,
		.queue = call->queue,
		.kwargs = kwargs,
	};
	char *text = celery_envelope_build(&message, err, errsize);
	json_decref(kwargs);
	return text;
}

char *celery_execute_pipeline_task(const char *pipeline_id, const json_t *signal_ids,
				   const char *execution_id, const char *queue, char *task_id,
				   char *err, size_t errsize)
{
	if (pipeline_id == NULL || execution_id == NULL) {
		snprintf(err, errsize, "execute_pipeline: pipeline_id and execution_id are required");
		return NULL;
	}
	/* From ids.c's per-thread pool: libuuid's six system calls a UUID were most of an envelope's cost. */
	if (task_id[0] == '\0')
		ids_random_uuid(task_id);
	char delivery_tag[CELERY_ID_SIZE];
	celery_new_delivery_tag(delivery_tag);
	struct celery_pipeline_call call = {
		.pipeline_id = pipeline_id,
		.signal_ids = signal_ids,
		.execution_id = execution_id,
		.queue = queue,
		.task_id = task_id,
		.delivery_tag = delivery_tag,
	};
	char *text = celery_execute_pipeline_direct(&call);
	return text != NULL ? text : celery_execute_pipeline_generic(&call, err, errsize);
}

/* ---- parsing ---- */

static int parse_failure(char *err, size_t errsize, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int parse_failure(char *err, size_t errsize, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	vsnprintf(err, errsize, fmt, args);
	va_end(args);
	return -1;
}

/* A member that must be a non-empty string; NULL when it is not. */
static const char *string_member(const json_t *object, const char *key)
{
	const char *value = json_string_value(json_object_get(object, key));
	return value != NULL && value[0] != '\0' ? value : NULL;
}

/* Fills what identifies the message before validating, so even a rejected one can be answered. */
static void identify(struct celery_task *task)
{
	const json_t *headers = json_object_get(task->envelope, "headers");
	const json_t *properties = json_object_get(task->envelope, "properties");
	const json_t *delivery_info = json_object_get(properties, "delivery_info");
	task->task_name = string_member(headers, "task");
	task->task_id = string_member(headers, "id");
	task->delivery_tag = string_member(properties, "delivery_tag");
	task->exchange = json_string_value(json_object_get(delivery_info, "exchange"));
	task->routing_key = json_string_value(json_object_get(delivery_info, "routing_key"));
	task->redelivered = json_is_true(json_object_get(delivery_info, "redelivered"));
}

static int validate_envelope(struct celery_task *task, char *err, size_t errsize)
{
	const json_t *envelope = task->envelope;
	const json_t *content_type = json_object_get(envelope, "content-type");
	if (content_type == NULL)
		return parse_failure(err, errsize, "content-type: missing");
	if (!json_is_string(content_type) ||
	    strcmp(json_string_value(content_type), "application/json") != 0)
		return parse_failure(err, errsize, "content-type: must be application/json");
	const json_t *headers = json_object_get(envelope, "headers");
	if (!json_is_object(headers))
		return parse_failure(err, errsize, "headers: missing or not an object");
	if (task->task_name == NULL)
		return parse_failure(err, errsize, "headers.task: missing or not a string");
	if (task->task_id == NULL)
		return parse_failure(err, errsize, "headers.id: missing or not a string");
	const json_t *properties = json_object_get(envelope, "properties");
	if (!json_is_object(properties))
		return parse_failure(err, errsize, "properties: missing or not an object");
	if (task->delivery_tag == NULL)
		return parse_failure(err, errsize, "properties.delivery_tag: missing or not a string");
	if (!json_is_object(json_object_get(properties, "delivery_info")))
		return parse_failure(err, errsize, "properties.delivery_info: missing or not an object");
	if (task->exchange == NULL)
		return parse_failure(err, errsize,
				     "properties.delivery_info.exchange: missing or not a string");
	if (task->routing_key == NULL)
		return parse_failure(err, errsize,
				     "properties.delivery_info.routing_key: missing or not a string");
	return 0;
}

static int decode_body(struct celery_task *task, char *err, size_t errsize)
{
	const json_t *body = json_object_get(task->envelope, "body");
	if (!json_is_string(body))
		return parse_failure(err, errsize, "body: missing or not a string");
	const json_t *properties = json_object_get(task->envelope, "properties");
	const char *encoding = json_string_value(json_object_get(properties, "body_encoding"));
	const char *body_text = json_string_value(body);
	size_t body_length = json_string_length(body);
	unsigned char *decoded = NULL;
	/* Without body_encoding kombu uses the body as it is: JSON text in a string. */
	if (encoding != NULL && strcmp(encoding, "base64") == 0) {
		char reason[128];
		if (base64_decode(body_text, body_length, &decoded, &body_length, reason,
				  sizeof reason) != 0)
			return parse_failure(err, errsize, "body: %s", reason);
		body_text = (const char *)decoded;
	} else if (encoding != NULL) {
		return parse_failure(err, errsize, "properties.body_encoding: '%s' is not supported",
				     encoding);
	}
	json_error_t json_error;
	json_t *parts = json_loadb(body_text, body_length, 0, &json_error);
	free(decoded);
	if (parts == NULL)
		return parse_failure(err, errsize, "body: not JSON (%s)", json_error.text);
	int status = -1;
	if (!json_is_array(parts) || json_array_size(parts) != 3)
		parse_failure(err, errsize,
			      "body: must be the array [args, kwargs, embed], got %s of %zu elements",
			      json_is_array(parts) ? "an array" : "a non-array",
			      json_is_array(parts) ? json_array_size(parts) : 0);
	else if (!json_is_array(json_array_get(parts, 0)))
		parse_failure(err, errsize, "body: args (element 0) must be an array");
	else if (!json_is_object(json_array_get(parts, 1)))
		parse_failure(err, errsize, "body: kwargs (element 1) must be an object");
	else if (!json_is_object(json_array_get(parts, 2)))
		parse_failure(err, errsize, "body: embed (element 2) must be an object");
	else
		status = 0;
	if (status == 0) {
		task->args = json_incref(json_array_get(parts, 0));
		task->kwargs = json_incref(json_array_get(parts, 1));
		task->embed = json_incref(json_array_get(parts, 2));
	}
	json_decref(parts);
	return status;
}

int celery_envelope_parse(const char *text, size_t length, struct celery_task *task, char *err,
			  size_t errsize)
{
	memset(task, 0, sizeof *task);
	task->text = malloc(length + 1);
	if (task->text == NULL)
		return parse_failure(err, errsize, "out of memory");
	memcpy(task->text, text, length);
	task->text[length] = '\0';
	task->length = length;
	json_error_t json_error;
	task->envelope = json_loadb(text, length, 0, &json_error);
	if (task->envelope == NULL)
		return parse_failure(err, errsize, "envelope: not JSON (%s)", json_error.text);
	if (!json_is_object(task->envelope)) {
		json_decref(task->envelope);
		task->envelope = NULL;
		return parse_failure(err, errsize, "envelope: not a JSON object");
	}
	identify(task);
	if (validate_envelope(task, err, errsize) != 0)
		return -1;
	return decode_body(task, err, errsize);
}

const char *celery_task_header(const struct celery_task *task, const char *name)
{
	return json_string_value(json_object_get(json_object_get(task->envelope, "headers"), name));
}

void celery_task_free(struct celery_task *task)
{
	free(task->text);
	json_decref(task->envelope);
	json_decref(task->args);
	json_decref(task->kwargs);
	json_decref(task->embed);
	memset(task, 0, sizeof *task);
}

/* ---- results ---- */

/* Exceptions Celery raises itself live in celery.exceptions; the rest are Python builtins. */
static const char *const celery_exception_types[] = { "NotRegistered", "TaskRevokedError", "TimeLimitExceeded",
						      "SoftTimeLimitExceeded", "Retry", "Reject",
						      "Ignore" };

json_t *celery_exception(const char *exc_type, const char *message)
{
	const char *module = "builtins";
	for (size_t i = 0; i < sizeof celery_exception_types / sizeof celery_exception_types[0]; i++)
		if (strcmp(exc_type, celery_exception_types[i]) == 0)
			module = "celery.exceptions";
	return json_pack("{s:s, s:[s], s:s}", "exc_type", exc_type, "exc_message",
			 message != NULL ? message : "", "exc_module", module);
}

char *celery_result_json(const char *task_id, const char *status, const json_t *result,
			 const char *traceback)
{
	char date_done[40];
	time_format_celery(time_now_seconds(), date_done, sizeof date_done);
	json_t *document = json_pack("{s:s, s:O?, s:s?, s:[], s:s, s:s}", "status", status, "result",
				     result, "traceback", traceback, "children", "date_done",
				     date_done, "task_id", task_id);
	if (document == NULL)
		return NULL;
	char *text = json_dumps(document, CELERY_JSON_FLAGS);
	json_decref(document);
	return text;
}

/* ---- redelivery, priorities, dead letters ---- */

char *celery_retry_envelope(const struct celery_task *task, const json_t *kwargs, int retries, double eta,
			    char *err, size_t errsize)
{
	json_t *envelope = json_deep_copy(task->envelope);
	json_t *headers = json_object_get(envelope, "headers");
	json_t *properties = json_object_get(envelope, "properties");
	json_t *delivery_info = json_object_get(properties, "delivery_info");
	if (!json_is_object(headers) || !json_is_object(properties) || !json_is_array(task->args) ||
	    !json_is_object(kwargs)) {
		snprintf(err, errsize, "celery retry: not a parsed task envelope");
		json_decref(envelope);
		return NULL;
	}
	char *body = encode_body(task->args, kwargs, task->embed);
	char *kwargs_repr = celery_python_repr(kwargs, false, CELERY_REPR_MAX_LENGTH);
	char eta_text[64], delivery_tag[CELERY_ID_SIZE];
	/* Python's isoformat() of an aware UTC time, as Task.retry(countdown=...) writes it. */
	time_format_celery(eta, eta_text, sizeof eta_text);
	strncat(eta_text, "+00:00", sizeof eta_text - strlen(eta_text) - 1);
	celery_new_delivery_tag(delivery_tag);
	char *text = NULL;
	if (body != NULL && kwargs_repr != NULL) {
		json_object_set_new(envelope, "body", json_string(body));
		json_object_set_new(headers, "retries", json_integer(retries));
		json_object_set_new(headers, "eta", json_string(eta_text));
		json_object_set_new(headers, "kwargsrepr", json_string(kwargs_repr));
		json_object_del(headers, "redelivered");
		json_object_set_new(properties, "body_encoding", json_string("base64"));
		json_object_set_new(properties, "delivery_tag", json_string(delivery_tag));
		if (json_is_object(delivery_info))
			json_object_del(delivery_info, "redelivered");
		text = json_dumps(envelope, CELERY_JSON_FLAGS);
	}
	if (text == NULL)
		snprintf(err, errsize, "celery retry: could not encode the message");
	free(body);
	free(kwargs_repr);
	json_decref(envelope);
	return text;
}

int celery_envelope_set_redelivered(json_t *envelope)
{
	if (!json_is_object(envelope))
		return -1;
	json_t *headers = json_object_get(envelope, "headers");
	if (json_is_object(headers))
		json_object_set_new(headers, "redelivered", json_true());
	json_t *delivery_info = json_object_get(json_object_get(envelope, "properties"), "delivery_info");
	if (json_is_object(delivery_info))
		json_object_set_new(delivery_info, "redelivered", json_true());
	return 0;
}

char *celery_mark_redelivered(const char *envelope_text)
{
	json_t *envelope = json_loads(envelope_text, 0, NULL);
	char *text = NULL;
	if (celery_envelope_set_redelivered(envelope) == 0)
		text = json_dumps(envelope, CELERY_JSON_FLAGS);
	json_decref(envelope);
	return text;
}

void celery_priority_queue(const char *queue, int priority, char *buf, size_t size)
{
	/* kombu's priority_steps [0, 3, 6, 9]: a priority goes to the highest step not above it. */
	int step = priority >= 9 ? 9 : priority >= 6 ? 6 : priority >= 3 ? 3 : 0;
	if (step == 0)
		snprintf(buf, size, "%s", queue);
	else
		snprintf(buf, size, "%s" CELERY_PRIORITY_SEPARATOR "%d", queue, step);
}

int celery_envelope_priority(const json_t *envelope)
{
	const json_t *priority = json_object_get(json_object_get(envelope, "properties"), "priority");
	if (!json_is_number(priority))
		return 0;
	double value = json_number_value(priority);
	return value < 0 ? 0 : value > 9 ? 9 : (int)value;
}

char *celery_dead_letter_entry(const char *text, size_t length, const char *reason,
			       const char *queue)
{
	char stamp[40];
	time_format_iso8601(time_now_seconds(), stamp, sizeof stamp);
	json_t *entry = json_pack("{s:s, s:s, s:s}", "reason", reason, "queue", queue, "time", stamp);
	if (entry == NULL)
		return NULL;
	json_t *envelope = json_stringn(text, length);
	/* An envelope that is not UTF-8 cannot be a JSON string: keep its bytes in base64. */
	if (envelope != NULL) {
		json_object_set_new(entry, "envelope", envelope);
	} else {
		char *encoded = base64_encode(text, length);
		if (encoded != NULL)
			json_object_set_new(entry, "envelope_base64", json_string(encoded));
		free(encoded);
	}
	char *entry_text = json_dumps(entry, CELERY_JSON_FLAGS);
	json_decref(entry);
	return entry_text;
}

/* The Celery wire format: envelopes, bodies, results, redelivery (CELERY_WIRE.md). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "base64.h"
#include "celery.h"
#include "celery_canvas.h"
#include "celery_direct.h"
#include "task_hold.h"
#include "task_retry.h"
#include "timeutil.h"

/* The two envelopes of CELERY_WIRE.md section 7, as redis-cli pushed them to a stock worker. */
static const char wire_full_envelope[] =
	"{\"body\": \"W1tdLCB7InBpcGVsaW5lX2lkIjogInAxIiwgInRyaWdnZXJlZF9ieV9zaWduYWwiOiB0cnVlLCAic2lnbmFsX2lkcyI6IFsiczEiXX0sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d\", "
	"\"content-encoding\": \"utf-8\", \"content-type\": \"application/json\", \"headers\": {\"lang\": \"py\", "
	"\"task\": \"app.orchestration.tasks.execute_pipeline\", \"id\": \"0b0c7a3e-5f43-4c57-9d1e-3f1f6a2b9c01\", "
	"\"shadow\": null, \"eta\": null, \"expires\": null, \"group\": null, \"group_index\": null, \"retries\": 0, "
	"\"timelimit\": [null, null], \"root_id\": \"0b0c7a3e-5f43-4c57-9d1e-3f1f6a2b9c01\", \"parent_id\": null, "
	"\"argsrepr\": \"()\", \"kwargsrepr\": \"{'pipeline_id': 'p1', 'triggered_by_signal': True, 'signal_ids': ['s1']}\", "
	"\"origin\": \"redis-cli@localhost\", \"ignore_result\": false}, \"properties\": {\"correlation_id\": "
	"\"0b0c7a3e-5f43-4c57-9d1e-3f1f6a2b9c01\", \"reply_to\": \"\", \"delivery_mode\": 2, \"delivery_info\": "
	"{\"exchange\": \"\", \"routing_key\": \"celery\"}, \"priority\": 0, \"body_encoding\": \"base64\", "
	"\"delivery_tag\": \"6f1d2c0e-8b7a-4e59-a3c4-1d2e3f4a5b60\"}}";

static const char wire_minimal_envelope[] =
	"{\"body\": \"W1tdLCB7InBpcGVsaW5lX2lkIjogInAyIiwgInRyaWdnZXJlZF9ieV9zaWduYWwiOiB0cnVlLCAic2lnbmFsX2lkcyI6IFsiczIiXX0sIHt9XQ==\", "
	"\"content-type\": \"application/json\", \"content-encoding\": \"utf-8\", \"headers\": {\"task\": "
	"\"app.orchestration.tasks.execute_pipeline\", \"id\": \"0b0c7a3e-5f43-4c57-9d1e-3f1f6a2b9c02\"}, "
	"\"properties\": {\"body_encoding\": \"base64\", \"delivery_tag\": \"6f1d2c0e-8b7a-4e59-a3c4-1d2e3f4a5b61\", "
	"\"delivery_info\": {\"exchange\": \"\", \"routing_key\": \"celery\"}}}";

static const char expected_body[] =
	"[[],{\"pipeline_id\":\"p1\",\"triggered_by_signal\":true,\"signal_ids\":[\"s1\"]},"
	"{\"callbacks\":null,\"errbacks\":null,\"chain\":null,\"chord\":null}]";

static json_t *sample_kwargs(void)
{
	return json_pack("{s:s, s:b, s:[s]}", "pipeline_id", "p1", "triggered_by_signal", 1,
			 "signal_ids", "s1");
}

static char *build_sample(void)
{
	json_t *kwargs = sample_kwargs();
	struct celery_message message = {
		.task_name = CELERY_TASK_EXECUTE_PIPELINE,
		.task_id = "588dc0ce-c5a7-4603-9fa7-309a510baf8c",
		.delivery_tag = "ffb00710-666e-48e4-9f1e-77875f6d604d",
		.queue = "celery",
		.kwargs = kwargs,
	};
	char err[256];
	char *text = celery_envelope_build(&message, err, sizeof err);
	ck_assert_msg(text != NULL, "%s", err);
	json_decref(kwargs);
	return text;
}

/* ---- base64 ---- */

START_TEST(test_base64_matches_rfc4648_vectors)
{
	static const char *const vectors[][2] = {
		{ "", "" },		{ "f", "Zg==" },	 { "fo", "Zm8=" },
		{ "foo", "Zm9v" },	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		char *encoded = base64_encode(vectors[i][0], strlen(vectors[i][0]));
		ck_assert_str_eq(encoded, vectors[i][1]);
		free(encoded);
		unsigned char *decoded;
		size_t length;
		char err[128];
		ck_assert_int_eq(base64_decode(vectors[i][1], strlen(vectors[i][1]), &decoded, &length,
					       err, sizeof err),
				 0);
		ck_assert_uint_eq(length, strlen(vectors[i][0]));
		ck_assert_str_eq((char *)decoded, vectors[i][0]);
		free(decoded);
	}
}
END_TEST

START_TEST(test_base64_round_trips_every_byte)
{
	unsigned char bytes[256];
	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)i;
	char *encoded = base64_encode(bytes, sizeof bytes);
	unsigned char *decoded;
	size_t length;
	char err[128];
	ck_assert_int_eq(base64_decode(encoded, strlen(encoded), &decoded, &length, err, sizeof err), 0);
	ck_assert_uint_eq(length, sizeof bytes);
	ck_assert(memcmp(decoded, bytes, sizeof bytes) == 0);
	free(encoded);
	free(decoded);
}
END_TEST

START_TEST(test_base64_rejects_bad_text)
{
	static const char *const bad[] = { "Zg=", "Zm9v!A==", "Zg==Zm8=", "Z===", "Zm9vYmF\n", "Zm9v YmFy" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		unsigned char *decoded;
		size_t length;
		char err[128] = "";
		ck_assert_msg(base64_decode(bad[i], strlen(bad[i]), &decoded, &length, err, sizeof err) == -1,
			      "accepted '%s'", bad[i]);
		ck_assert_ptr_null(decoded);
		ck_assert(strstr(err, "base64") != NULL);
	}
}
END_TEST

/* Text wrapped in lines, as Python's base64.encodebytes() writes it: kombu decodes it, and so do we. */
START_TEST(test_base64_skips_line_breaks_of_wrapped_text)
{
	unsigned char bytes[200];
	for (size_t i = 0; i < sizeof bytes; i++)
		bytes[i] = (unsigned char)(i * 7 + 3);
	char *flat = base64_encode(bytes, sizeof bytes);
	ck_assert_ptr_nonnull(flat);
	static const char *const breaks[] = { "\n", "\r\n" };
	for (size_t b = 0; b < 2; b++) {
		char wrapped[512] = "";
		for (size_t at = 0; at < strlen(flat); at += 76) {
			strncat(wrapped, flat + at, 76);
			strcat(wrapped, breaks[b]);
		}
		unsigned char *decoded;
		size_t length;
		char err[128];
		ck_assert_msg(base64_decode(wrapped, strlen(wrapped), &decoded, &length, err, sizeof err) == 0, "%s", err);
		ck_assert_uint_eq(length, sizeof bytes);
		ck_assert_mem_eq(decoded, bytes, sizeof bytes);
		free(decoded);
	}
	free(flat);
}
END_TEST

/* ---- building ---- */

START_TEST(test_envelope_body_is_args_kwargs_embed)
{
	char *text = build_sample();
	json_t *envelope = json_loads(text, 0, NULL);
	const char *body = json_string_value(json_object_get(envelope, "body"));
	unsigned char *decoded;
	size_t length;
	char err[128];
	ck_assert_int_eq(base64_decode(body, strlen(body), &decoded, &length, err, sizeof err), 0);
	ck_assert_str_eq((char *)decoded, expected_body);
	free(decoded);
	json_decref(envelope);
	free(text);
}
END_TEST

START_TEST(test_envelope_has_python_headers_and_properties)
{
	char *text = build_sample();
	json_t *envelope = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(envelope);
	/* The key order Python writes: tools that show raw messages show the same thing. */
	static const char *const top_keys[] = { "body", "content-encoding", "content-type", "headers",
						"properties" };
	static const char *const header_keys[] = { "lang", "task", "id", "shadow", "eta", "expires",
						   "group", "group_index", "retries", "timelimit",
						   "root_id", "parent_id", "argsrepr", "kwargsrepr",
						   "origin", "ignore_result" };
	static const char *const property_keys[] = { "correlation_id", "reply_to", "delivery_mode",
						     "delivery_info", "priority", "body_encoding",
						     "delivery_tag" };
	const char *key;
	json_t *value;
	size_t i = 0;
	json_object_foreach(envelope, key, value)
		ck_assert_str_eq(key, top_keys[i++]);
	ck_assert_uint_eq(i, 5);
	json_t *headers = json_object_get(envelope, "headers");
	i = 0;
	json_object_foreach(headers, key, value)
		ck_assert_str_eq(key, header_keys[i++]);
	ck_assert_uint_eq(i, sizeof header_keys / sizeof header_keys[0]);
	json_t *properties = json_object_get(envelope, "properties");
	i = 0;
	json_object_foreach(properties, key, value)
		ck_assert_str_eq(key, property_keys[i++]);
	ck_assert_uint_eq(i, sizeof property_keys / sizeof property_keys[0]);

	ck_assert_str_eq(json_string_value(json_object_get(envelope, "content-type")), "application/json");
	ck_assert_str_eq(json_string_value(json_object_get(envelope, "content-encoding")), "utf-8");
	ck_assert_str_eq(json_string_value(json_object_get(headers, "task")), CELERY_TASK_EXECUTE_PIPELINE);
	ck_assert_str_eq(json_string_value(json_object_get(headers, "id")),
			 "588dc0ce-c5a7-4603-9fa7-309a510baf8c");
	ck_assert_str_eq(json_string_value(json_object_get(headers, "root_id")),
			 "588dc0ce-c5a7-4603-9fa7-309a510baf8c");
	ck_assert_str_eq(json_string_value(json_object_get(headers, "argsrepr")), "()");
	ck_assert_str_eq(json_string_value(json_object_get(headers, "kwargsrepr")),
			 "{'pipeline_id': 'p1', 'triggered_by_signal': True, 'signal_ids': ['s1']}");
	ck_assert(strncmp(json_string_value(json_object_get(headers, "origin")), "sigtrig@", 8) == 0);
	ck_assert(json_is_false(json_object_get(headers, "ignore_result")));
	ck_assert_int_eq(json_integer_value(json_object_get(headers, "retries")), 0);
	json_t *no_time_limits = json_pack("[n,n]");
	ck_assert(json_equal(json_object_get(headers, "timelimit"), no_time_limits));
	json_decref(no_time_limits);
	ck_assert(json_is_null(json_object_get(headers, "parent_id")));

	ck_assert_str_eq(json_string_value(json_object_get(properties, "correlation_id")),
			 "588dc0ce-c5a7-4603-9fa7-309a510baf8c");
	ck_assert_str_eq(json_string_value(json_object_get(properties, "reply_to")), "");
	ck_assert_int_eq(json_integer_value(json_object_get(properties, "delivery_mode")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(properties, "priority")), 0);
	ck_assert_str_eq(json_string_value(json_object_get(properties, "body_encoding")), "base64");
	ck_assert_str_eq(json_string_value(json_object_get(properties, "delivery_tag")),
			 "ffb00710-666e-48e4-9f1e-77875f6d604d");
	json_t *delivery_info = json_object_get(properties, "delivery_info");
	ck_assert_str_eq(json_string_value(json_object_get(delivery_info, "exchange")), "");
	ck_assert_str_eq(json_string_value(json_object_get(delivery_info, "routing_key")), "celery");
	json_decref(envelope);
	free(text);
}
END_TEST

START_TEST(test_envelope_round_trips_through_parse)
{
	char *text = build_sample();
	struct celery_task task;
	char err[256];
	ck_assert_msg(celery_envelope_parse(text, strlen(text), &task, err, sizeof err) == 0, "%s", err);
	ck_assert_str_eq(task.task_name, CELERY_TASK_EXECUTE_PIPELINE);
	ck_assert_str_eq(task.task_id, "588dc0ce-c5a7-4603-9fa7-309a510baf8c");
	ck_assert_str_eq(task.delivery_tag, "ffb00710-666e-48e4-9f1e-77875f6d604d");
	ck_assert_str_eq(task.exchange, "");
	ck_assert_str_eq(task.routing_key, "celery");
	ck_assert_str_eq(task.text, text);
	ck_assert_uint_eq(task.length, strlen(text));
	ck_assert(!task.redelivered);
	json_t *kwargs = sample_kwargs();
	ck_assert(json_equal(task.kwargs, kwargs));
	ck_assert_uint_eq(json_array_size(task.args), 0);
	json_t *embed = json_pack("{s:n, s:n, s:n, s:n}", "callbacks", "errbacks", "chain", "chord");
	ck_assert(json_equal(task.embed, embed));
	json_decref(embed);
	json_decref(kwargs);
	celery_task_free(&task);
	free(text);
}
END_TEST

START_TEST(test_execute_pipeline_task_keeps_given_task_id)
{
	json_t *signal_ids = json_pack("[s, s]", "s1", "s2");
	char task_id[CELERY_ID_SIZE] = "11111111-2222-3333-4444-555555555555";
	char err[256];
	char *text = celery_execute_pipeline_task("p1", signal_ids, "e1", "celery", task_id, err,
						  sizeof err);
	ck_assert_msg(text != NULL, "%s", err);
	struct celery_task task;
	ck_assert_int_eq(celery_envelope_parse(text, strlen(text), &task, err, sizeof err), 0);
	ck_assert_str_eq(task.task_id, "11111111-2222-3333-4444-555555555555");
	ck_assert_str_eq(task.task_name, CELERY_TASK_EXECUTE_PIPELINE);
	ck_assert_uint_eq(strlen(task.delivery_tag), 36);
	/* The tag says when the task was sent: the queue's age is read off it. */
	int64_t sent_ms = 0;
	ck_assert_msg(celery_delivery_tag_sent_ms(task.delivery_tag, &sent_ms), "%s", task.delivery_tag);
	double age_s = time_now_seconds() - (double)sent_ms / 1000;
	ck_assert_msg(age_s >= 0 && age_s < 5, "sent %.3f s ago", age_s);
	json_t *expected = json_pack("{s:s, s:b, s:O, s:s}", "pipeline_id", "p1", "triggered_by_signal", 1,
				     "signal_ids", signal_ids, "execution_id", "e1");
	ck_assert(json_equal(task.kwargs, expected));
	json_decref(expected);
	celery_task_free(&task);
	free(text);
	json_decref(signal_ids);
}
END_TEST

START_TEST(test_execute_pipeline_task_fills_empty_task_id)
{
	char task_id[CELERY_ID_SIZE] = "";
	char err[256];
	char *first = celery_execute_pipeline_task("p1", NULL, "e1", "celery", task_id, err, sizeof err);
	ck_assert_ptr_nonnull(first);
	ck_assert_uint_eq(strlen(task_id), 36);
	char second_id[CELERY_ID_SIZE] = "";
	char *second = celery_execute_pipeline_task("p1", NULL, "e1", "celery", second_id, err, sizeof err);
	ck_assert_str_ne(task_id, second_id);
	free(first);
	free(second);
}
END_TEST

START_TEST(test_build_names_missing_field)
{
	struct celery_message message = { .task_name = "t", .task_id = "i", .queue = "celery" };
	char err[256] = "";
	ck_assert_ptr_null(celery_envelope_build(&message, err, sizeof err));
	ck_assert(strstr(err, "delivery tag") != NULL);
}
END_TEST

/* ---- execute_pipeline written directly ---- */

/* Signal id counts: none, one, a few, and enough for a kwargsrepr past CELERY_REPR_MAX_LENGTH. */
static const size_t signal_id_counts[] = { 0, 1, 3, 200 };

/* Lowercase UUIDs, as the dispatcher's signal ids are. */
static json_t *numbered_signal_ids(size_t count)
{
	json_t *ids = json_array();
	for (size_t i = 0; i < count; i++) {
		char id[64];
		snprintf(id, sizeof id, "6b1f0d3e-5c2a-4e8f-9d7b-%012zu", i);
		json_array_append_new(ids, json_string(id));
	}
	return ids;
}

static struct celery_pipeline_call plain_call(const json_t *signal_ids)
{
	return (struct celery_pipeline_call){
		.pipeline_id = "3f0c1c52-8d4e-4b8b-9a55-6f2b0f3e2d11",
		.signal_ids = signal_ids,
		.execution_id = "9b2d7a10-1c3e-4f5a-8b6c-7d8e9f0a1b2c",
		.queue = "celery",
		.task_id = "588dc0ce-c5a7-4603-9fa7-309a510baf8c",
		.delivery_tag = "ffb00710-666e-48e4-9f1e-77875f6d604d",
	};
}

static json_t *call_kwargs(const struct celery_pipeline_call *call)
{
	json_t *kwargs = celery_execute_pipeline_kwargs(call->pipeline_id, call->signal_ids, call->execution_id);
	ck_assert_ptr_nonnull(kwargs);
	return kwargs;
}

/* Byte for byte; a failure shows where the texts part, since a whole envelope is too long for Check. */
static void assert_same_text(const char *actual, const char *expected)
{
	size_t at = 0;
	while (actual[at] != '\0' && actual[at] == expected[at])
		at++;
	ck_assert_msg(actual[at] == expected[at], "texts differ at offset %zu: \"%.60s\" instead of \"%.60s\"", at,
		      actual + at, expected + at);
}

/* The definition the direct text is held to: celery_envelope_build() of the same message. */
static char *generic_envelope(const struct celery_pipeline_call *call)
{
	char err[256];
	char *text = celery_execute_pipeline_generic(call, err, sizeof err);
	ck_assert_msg(text != NULL, "%s", err);
	return text;
}

/*
 * celery_execute_pipeline_task() for the call, which must be byte for
 * byte celery_envelope_build() given the delivery tag it chose, and parse
 * back to the call's kwargs. Returns the text.
 */
static char *task_envelope_checked(const struct celery_pipeline_call *call)
{
	char task_id[CELERY_ID_SIZE], err[256];
	snprintf(task_id, sizeof task_id, "%s", call->task_id);
	char *text = celery_execute_pipeline_task(call->pipeline_id, call->signal_ids, call->execution_id,
						  call->queue, task_id, err, sizeof err);
	ck_assert_msg(text != NULL, "%s", err);
	struct celery_task task;
	ck_assert_msg(celery_envelope_parse(text, strlen(text), &task, err, sizeof err) == 0, "%s", err);
	struct celery_pipeline_call with_its_tag = *call;
	with_its_tag.delivery_tag = task.delivery_tag;
	char *generic = generic_envelope(&with_its_tag);
	assert_same_text(text, generic);
	json_t *kwargs = call_kwargs(call);
	ck_assert(json_equal(task.kwargs, kwargs));
	json_decref(kwargs);
	free(generic);
	celery_task_free(&task);
	return text;
}

START_TEST(test_direct_envelope_is_byte_for_byte_the_generic_build)
{
	json_t *signal_ids = numbered_signal_ids(signal_id_counts[_i]);
	struct celery_pipeline_call call = plain_call(signal_ids);
	char *direct = celery_execute_pipeline_direct(&call);
	ck_assert_ptr_nonnull(direct);
	char *generic = generic_envelope(&call);
	assert_same_text(direct, generic);
	free(generic);
	free(direct);
	json_decref(signal_ids);
}
END_TEST

START_TEST(test_direct_envelope_parses_back_to_its_kwargs)
{
	json_t *signal_ids = numbered_signal_ids(signal_id_counts[_i]);
	struct celery_pipeline_call call = plain_call(signal_ids);
	char *direct = celery_execute_pipeline_direct(&call);
	ck_assert_ptr_nonnull(direct);
	struct celery_task task;
	char err[256];
	ck_assert_msg(celery_envelope_parse(direct, strlen(direct), &task, err, sizeof err) == 0, "%s", err);
	ck_assert_str_eq(task.task_name, CELERY_TASK_EXECUTE_PIPELINE);
	ck_assert_str_eq(task.task_id, call.task_id);
	ck_assert_str_eq(task.delivery_tag, call.delivery_tag);
	ck_assert_str_eq(task.routing_key, "celery");
	json_t *kwargs = call_kwargs(&call);
	ck_assert(json_equal(task.kwargs, kwargs));
	ck_assert_uint_eq(json_array_size(json_object_get(task.kwargs, "signal_ids")), signal_id_counts[_i]);
	json_decref(kwargs);
	celery_task_free(&task);
	free(direct);
	json_decref(signal_ids);
}
END_TEST

START_TEST(test_direct_envelope_cuts_a_long_kwargsrepr_as_the_generic_one)
{
	json_t *signal_ids = numbered_signal_ids(200);
	struct celery_pipeline_call call = plain_call(signal_ids);
	char *direct = celery_execute_pipeline_direct(&call);
	ck_assert_ptr_nonnull(direct);
	json_t *envelope = json_loads(direct, 0, NULL);
	const char *kwargs_repr = json_string_value(json_object_get(json_object_get(envelope, "headers"),
								    "kwargsrepr"));
	ck_assert_ptr_nonnull(kwargs_repr);
	json_t *kwargs = call_kwargs(&call);
	char *whole_repr = celery_python_repr(kwargs, false, (size_t)-1);
	ck_assert_uint_gt(strlen(whole_repr), 1024);
	char *cut_repr = celery_python_repr(kwargs, false, 1024);
	ck_assert_str_eq(kwargs_repr, cut_repr);
	ck_assert_uint_eq(strlen(kwargs_repr), 1024 + strlen("..."));
	ck_assert(strncmp(kwargs_repr, whole_repr, 1024) == 0);
	ck_assert_str_eq(kwargs_repr + 1024, "...");
	free(cut_repr);
	free(whole_repr);
	json_decref(kwargs);
	json_decref(envelope);
	free(direct);
	json_decref(signal_ids);
}
END_TEST

START_TEST(test_execute_pipeline_task_is_the_generic_build_with_its_delivery_tag)
{
	json_t *signal_ids = numbered_signal_ids(signal_id_counts[_i]);
	struct celery_pipeline_call call = plain_call(signal_ids);
	free(task_envelope_checked(&call));
	json_decref(signal_ids);
}
END_TEST

/* Parts that need escaping somewhere, and what the escaped text must then show. */
static const struct escaping {
	const char *name;
	const char *pipeline_id, *signal_id, *queue;
	const char *in_text;       /* in the envelope text as sent, in any case (jansson writes \u00E9) */
	const char *in_kwargsrepr; /* in headers.kwargsrepr once parsed; NULL: nothing to check */
} escapings[] = {
	{ "a double quote in the queue", "p1", "s1", "pipe\"lines", "\"routing_key\":\"pipe\\\"lines\"", NULL },
	{ "a backslash in a signal id", "p1", "s\\1", "celery", "'s\\\\\\\\1'", "'s\\\\1'" },
	{ "a line break in a signal id", "p1", "s\n1", "celery", "'s\\\\n1'", "'s\\n1'" },
	{ "a non-ASCII signal id", "p1", "s\xc3\xa9", "celery", "'s\\u00e9'", "'s\xc3\xa9'" },
	{ "a single quote in the pipeline id", "p'1", "s1", "celery", "'pipeline_id': \\\"p'1\\\"",
	  "{'pipeline_id': \"p'1\"" },
	{ "a slash, which neither escapes but is not plain", "p1", "s1", "pipe/lines", "\"routing_key\":\"pipe/lines\"", NULL },
};

START_TEST(test_text_needing_escapes_takes_the_generic_path)
{
	const struct escaping *case_ = &escapings[_i];
	json_t *signal_ids = json_pack("[s]", case_->signal_id);
	struct celery_pipeline_call call = plain_call(signal_ids);
	call.pipeline_id = case_->pipeline_id;
	call.queue = case_->queue;
	ck_assert_msg(celery_execute_pipeline_direct(&call) == NULL, "%s: written directly", case_->name);
	char *text = task_envelope_checked(&call);
	ck_assert_msg(strcasestr(text, case_->in_text) != NULL, "%s: no %s in %s", case_->name, case_->in_text,
		      text);
	/* ensure_ascii, as Python's json.dumps */
	for (const char *c = text; *c != '\0'; c++)
		ck_assert_msg((unsigned char)*c < 0x80, "%s: a non-ASCII byte in the text", case_->name);
	if (case_->in_kwargsrepr != NULL) {
		json_t *envelope = json_loads(text, 0, NULL);
		const char *kwargs_repr = json_string_value(
			json_object_get(json_object_get(envelope, "headers"), "kwargsrepr"));
		ck_assert_msg(strstr(kwargs_repr, case_->in_kwargsrepr) != NULL, "%s: no %s in %s", case_->name,
			      case_->in_kwargsrepr, kwargs_repr);
		json_decref(envelope);
	}
	free(text);
	json_decref(signal_ids);
}
END_TEST

START_TEST(test_signal_ids_that_are_not_strings_take_the_generic_path)
{
	json_t *signal_ids = json_pack("[s, i, n]", "s1", 7);
	struct celery_pipeline_call call = plain_call(signal_ids);
	ck_assert_ptr_null(celery_execute_pipeline_direct(&call));
	char *text = task_envelope_checked(&call);
	free(text);
	json_decref(signal_ids);
}
END_TEST

START_TEST(test_execute_pipeline_task_without_a_queue_names_it)
{
	char task_id[CELERY_ID_SIZE] = "", err[256] = "";
	ck_assert_ptr_null(celery_execute_pipeline_task("p1", NULL, "e1", "", task_id, err, sizeof err));
	ck_assert_msg(strstr(err, "queue is missing") != NULL, "%s", err);
}
END_TEST

/* Task ids random (version 4); delivery tags time-ordered (version 7), so that a queue's age can be read. */
START_TEST(test_execute_pipeline_task_ids_are_fresh_version_4_and_delivery_tags_version_7_uuids)
{
	char previous[CELERY_ID_SIZE] = "";
	for (int i = 0; i < 100; i++) {
		char task_id[CELERY_ID_SIZE] = "", err[256];
		char *text = celery_execute_pipeline_task("p1", NULL, "e1", "celery", task_id, err, sizeof err);
		ck_assert_msg(text != NULL, "%s", err);
		struct celery_task task;
		ck_assert_int_eq(celery_envelope_parse(text, strlen(text), &task, err, sizeof err), 0);
		const char *ids[] = { task_id, task.delivery_tag };
		for (size_t k = 0; k < 2; k++) {
			uuid_t parsed;
			ck_assert_int_eq(uuid_parse(ids[k], parsed), 0);
			ck_assert_int_eq(uuid_type(parsed), k == 0 ? UUID_TYPE_DCE_RANDOM : 7);
			ck_assert_int_eq(uuid_variant(parsed), UUID_VARIANT_DCE);
		}
		ck_assert_str_ne(task_id, task.delivery_tag);
		ck_assert_str_ne(task.delivery_tag, previous);
		snprintf(previous, sizeof previous, "%s", task.delivery_tag);
		celery_task_free(&task);
		free(text);
	}
}
END_TEST

/* ---- parsing ---- */

START_TEST(test_parses_full_envelope_from_redis_cli)
{
	struct celery_task task;
	char err[256];
	ck_assert_msg(celery_envelope_parse(wire_full_envelope, strlen(wire_full_envelope), &task, err,
					    sizeof err) == 0,
		      "%s", err);
	ck_assert_str_eq(task.task_id, "0b0c7a3e-5f43-4c57-9d1e-3f1f6a2b9c01");
	ck_assert_str_eq(task.delivery_tag, "6f1d2c0e-8b7a-4e59-a3c4-1d2e3f4a5b60");
	json_t *kwargs = sample_kwargs();
	ck_assert(json_equal(task.kwargs, kwargs));
	json_decref(kwargs);
	ck_assert_uint_eq(json_object_size(task.embed), 4);
	celery_task_free(&task);
}
END_TEST

START_TEST(test_parses_minimal_envelope_from_redis_cli)
{
	struct celery_task task;
	char err[256];
	ck_assert_msg(celery_envelope_parse(wire_minimal_envelope, strlen(wire_minimal_envelope), &task,
					    err, sizeof err) == 0,
		      "%s", err);
	ck_assert_str_eq(task.task_name, CELERY_TASK_EXECUTE_PIPELINE);
	ck_assert_str_eq(task.task_id, "0b0c7a3e-5f43-4c57-9d1e-3f1f6a2b9c02");
	ck_assert_str_eq(task.delivery_tag, "6f1d2c0e-8b7a-4e59-a3c4-1d2e3f4a5b61");
	ck_assert_str_eq(json_string_value(json_object_get(task.kwargs, "pipeline_id")), "p2");
	ck_assert_uint_eq(json_object_size(task.embed), 0);
	celery_task_free(&task);
}
END_TEST

START_TEST(test_parses_plain_json_body_without_body_encoding)
{
	json_t *envelope = json_loads(wire_minimal_envelope, 0, NULL);
	json_object_del(json_object_get(envelope, "properties"), "body_encoding");
	json_object_set_new(envelope, "body", json_string("[[1], {\"a\": 2}, {}]"));
	char *text = json_dumps(envelope, JSON_COMPACT);
	struct celery_task task;
	char err[256];
	ck_assert_msg(celery_envelope_parse(text, strlen(text), &task, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(json_integer_value(json_array_get(task.args, 0)), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(task.kwargs, "a")), 2);
	celery_task_free(&task);
	free(text);
	json_decref(envelope);
}
END_TEST

/* One way of breaking the minimal envelope, and what the error must name. */
struct malformation {
	const char *name;
	void (*apply)(json_t *envelope);
	const char *error_names;
};

static json_t *properties_of(json_t *envelope) { return json_object_get(envelope, "properties"); }

static void remove_delivery_tag(json_t *envelope) { json_object_del(properties_of(envelope), "delivery_tag"); }
static void remove_delivery_info(json_t *envelope) { json_object_del(properties_of(envelope), "delivery_info"); }
static void remove_content_type(json_t *envelope) { json_object_del(envelope, "content-type"); }
static void remove_task_name(json_t *envelope)
{
	json_object_del(json_object_get(envelope, "headers"), "task");
}
static void remove_task_id(json_t *envelope)
{
	json_object_del(json_object_get(envelope, "headers"), "id");
}
static void remove_routing_key(json_t *envelope)
{
	json_object_del(json_object_get(properties_of(envelope), "delivery_info"), "routing_key");
}
static void set_body(json_t *envelope, const char *plain)
{
	char *encoded = base64_encode(plain, strlen(plain));
	json_object_set_new(envelope, "body", json_string(encoded));
	free(encoded);
}
static void two_element_body(json_t *envelope) { set_body(envelope, "[[], {\"pipeline_id\": \"p1\"}]"); }
static void body_not_json(json_t *envelope) { set_body(envelope, "[[], {\"pipeline_id\": "); }
static void bad_base64(json_t *envelope) { json_object_set_new(envelope, "body", json_string("W1td!!==")); }
static void kwargs_not_object(json_t *envelope) { set_body(envelope, "[[], [], {}]"); }
static void wrong_content_type(json_t *envelope)
{
	json_object_set_new(envelope, "content-type", json_string("application/x-python-serialize"));
}

static const struct malformation malformations[] = {
	{ "no delivery_tag", remove_delivery_tag, "properties.delivery_tag" },
	{ "no delivery_info", remove_delivery_info, "properties.delivery_info" },
	{ "no routing_key", remove_routing_key, "routing_key" },
	{ "2-element body", two_element_body, "[args, kwargs, embed]" },
	{ "no content-type", remove_content_type, "content-type" },
	{ "pickle content-type", wrong_content_type, "content-type" },
	{ "bad base64", bad_base64, "base64" },
	{ "body not JSON", body_not_json, "body: not JSON" },
	{ "kwargs not an object", kwargs_not_object, "kwargs" },
	{ "no task name", remove_task_name, "headers.task" },
	{ "no task id", remove_task_id, "headers.id" },
};

START_TEST(test_malformed_envelope_fails_naming_the_problem)
{
	const struct malformation *case_ = &malformations[_i];
	json_t *envelope = json_loads(wire_minimal_envelope, 0, NULL);
	case_->apply(envelope);
	char *text = json_dumps(envelope, JSON_COMPACT);
	struct celery_task task;
	char err[256] = "";
	ck_assert_msg(celery_envelope_parse(text, strlen(text), &task, err, sizeof err) == -1,
		      "%s was accepted", case_->name);
	ck_assert_msg(strstr(err, case_->error_names) != NULL, "%s: error '%s' does not name '%s'",
		      case_->name, err, case_->error_names);
	/* The text is kept for the dead-letter list. */
	ck_assert_str_eq(task.text, text);
	celery_task_free(&task);
	free(text);
	json_decref(envelope);
}
END_TEST

START_TEST(test_malformed_envelope_still_gives_task_id)
{
	json_t *envelope = json_loads(wire_minimal_envelope, 0, NULL);
	two_element_body(envelope);
	char *text = json_dumps(envelope, JSON_COMPACT);
	struct celery_task task;
	char err[256];
	ck_assert_int_eq(celery_envelope_parse(text, strlen(text), &task, err, sizeof err), -1);
	ck_assert_str_eq(task.task_id, "0b0c7a3e-5f43-4c57-9d1e-3f1f6a2b9c02");
	ck_assert_str_eq(task.delivery_tag, "6f1d2c0e-8b7a-4e59-a3c4-1d2e3f4a5b61");
	celery_task_free(&task);
	free(text);
	json_decref(envelope);
}
END_TEST

START_TEST(test_non_json_and_non_object_envelopes_fail)
{
	static const char *const texts[] = { "not json", "[1, 2, 3]", "" };
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		struct celery_task task;
		char err[256] = "";
		ck_assert_int_eq(celery_envelope_parse(texts[i], strlen(texts[i]), &task, err, sizeof err),
				 -1);
		ck_assert(strstr(err, "envelope") != NULL);
		ck_assert_ptr_null(task.task_id);
		celery_task_free(&task);
	}
}
END_TEST

/* ---- results ---- */

START_TEST(test_success_result_has_celery_fields)
{
	json_t *value = json_pack("{s:s, s:s, s:i}", "pipeline_id", "p1", "status", "SUCCEEDED",
				  "n_signals", 1);
	char *text = celery_result_json("t1", "SUCCESS", value, NULL);
	json_t *result = json_loads(text, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(result, "status")), "SUCCESS");
	ck_assert(json_equal(json_object_get(result, "result"), value));
	ck_assert(json_is_null(json_object_get(result, "traceback")));
	ck_assert(json_is_array(json_object_get(result, "children")));
	ck_assert_uint_eq(json_array_size(json_object_get(result, "children")), 0);
	ck_assert_str_eq(json_string_value(json_object_get(result, "task_id")), "t1");
	/* Naive UTC with microseconds: 2026-11-24T20:48:32.588014 */
	const char *date = json_string_value(json_object_get(result, "date_done"));
	ck_assert_uint_eq(strlen(date), 26);
	ck_assert(date[10] == 'T' && date[19] == '.');
	ck_assert(strchr(date, 'Z') == NULL && strchr(date, '+') == NULL);
	json_decref(result);
	json_decref(value);
	free(text);
}
END_TEST

START_TEST(test_failure_result_names_exception_module)
{
	json_t *not_registered = celery_exception("NotRegistered", "no.such.task");
	json_t *expected = json_pack("{s:s, s:[s], s:s}", "exc_type", "NotRegistered", "exc_message",
				     "no.such.task", "exc_module", "celery.exceptions");
	ck_assert(json_equal(not_registered, expected));
	json_decref(expected);
	json_t *runtime = celery_exception("RuntimeError", "boom");
	ck_assert_str_eq(json_string_value(json_object_get(runtime, "exc_module")), "builtins");
	char *text = celery_result_json("t2", "FAILURE", not_registered, NULL);
	json_t *result = json_loads(text, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(result, "status")), "FAILURE");
	ck_assert(json_equal(json_object_get(result, "result"), not_registered));
	json_decref(result);
	free(text);
	json_decref(not_registered);
	json_decref(runtime);
}
END_TEST

START_TEST(test_result_escapes_non_ascii_like_python)
{
	json_t *value = json_string("caf\xc3\xa9");
	char *text = celery_result_json("t3", "SUCCESS", value, NULL);
	ck_assert(strcasestr(text, "caf\\u00e9") != NULL);
	free(text);
	json_decref(value);
}
END_TEST

/* ---- redelivery, priorities, repr ---- */

START_TEST(test_mark_redelivered_sets_both_flags)
{
	char *text = celery_mark_redelivered(wire_full_envelope);
	ck_assert_ptr_nonnull(text);
	json_t *envelope = json_loads(text, 0, NULL);
	ck_assert(json_is_true(json_object_get(json_object_get(envelope, "headers"), "redelivered")));
	json_t *delivery_info = json_object_get(properties_of(envelope), "delivery_info");
	ck_assert(json_is_true(json_object_get(delivery_info, "redelivered")));
	ck_assert_str_eq(json_string_value(json_object_get(delivery_info, "routing_key")), "celery");
	/* Nothing else changes: the body and ids are the original ones. */
	json_t *original = json_loads(wire_full_envelope, 0, NULL);
	ck_assert(json_equal(json_object_get(envelope, "body"), json_object_get(original, "body")));
	struct celery_task task;
	char err[256];
	ck_assert_int_eq(celery_envelope_parse(text, strlen(text), &task, err, sizeof err), 0);
	ck_assert(task.redelivered);
	ck_assert_str_eq(task.delivery_tag, "6f1d2c0e-8b7a-4e59-a3c4-1d2e3f4a5b60");
	celery_task_free(&task);
	json_decref(original);
	json_decref(envelope);
	free(text);
	ck_assert_ptr_null(celery_mark_redelivered("[1]"));
}
END_TEST

/* ---- retries ---- */

START_TEST(test_retry_envelope_is_what_task_retry_sends)
{
	struct celery_task task;
	char err[256];
	/* A redelivered original with a Python worker's callbacks in its embed. */
	char *redelivered = celery_mark_redelivered(wire_full_envelope);
	ck_assert_int_eq(celery_envelope_parse(redelivered, strlen(redelivered), &task, err, sizeof err), 0);
	json_object_set_new(task.embed, "callbacks", json_pack("[{s:s}]", "task", "notify"));
	json_t *kwargs = json_deep_copy(task.kwargs);
	json_object_set_new(kwargs, "execution_id", json_string("e1"));
	double eta = 1796000000.25; /* 2026-11-30T00:53:20.250000 UTC */
	char *text = celery_retry_envelope(&task, kwargs, 2, eta, err, sizeof err);
	ck_assert_msg(text != NULL, "%s", err);

	struct celery_task retry;
	ck_assert_int_eq(celery_envelope_parse(text, strlen(text), &retry, err, sizeof err), 0);
	/* The same task, by id and name, from the start; a new message. */
	ck_assert_str_eq(retry.task_id, "0b0c7a3e-5f43-4c57-9d1e-3f1f6a2b9c01");
	ck_assert_str_eq(retry.task_name, CELERY_TASK_EXECUTE_PIPELINE);
	ck_assert_str_ne(retry.delivery_tag, "6f1d2c0e-8b7a-4e59-a3c4-1d2e3f4a5b60");
	ck_assert_uint_eq(strlen(retry.delivery_tag), 36);
	ck_assert(!retry.redelivered);
	ck_assert_str_eq(retry.routing_key, "celery");
	json_t *headers = json_object_get(retry.envelope, "headers");
	ck_assert_int_eq(json_integer_value(json_object_get(headers, "retries")), 2);
	ck_assert_int_eq(task_retries_of(retry.envelope), 2);
	ck_assert_str_eq(json_string_value(json_object_get(headers, "eta")), "2026-11-30T00:53:20.250000+00:00");
	double parsed;
	ck_assert_int_eq(time_parse_iso8601(json_string_value(json_object_get(headers, "eta")), &parsed), 0);
	ck_assert_double_eq_tol(parsed, eta, 1e-3);
	ck_assert_ptr_null(json_object_get(headers, "redelivered"));
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(headers, "kwargsrepr")), "'execution_id': 'e1'"));
	/* Its body: the args, the kwargs given, and the original callbacks kept. */
	ck_assert_str_eq(json_string_value(json_object_get(retry.kwargs, "execution_id")), "e1");
	ck_assert_str_eq(json_string_value(json_object_get(retry.kwargs, "pipeline_id")), "p1");
	ck_assert_uint_eq(json_array_size(retry.args), 0);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(retry.embed, "callbacks"), 0),
							   "task")),
			 "notify");
	celery_task_free(&retry);
	celery_task_free(&task);
	json_decref(kwargs);
	free(text);
	free(redelivered);
}
END_TEST

START_TEST(test_retry_delay_doubles_up_to_its_cap_with_jitter)
{
	/* unit_random 0.999...: the full delay; 0: half of it. */
	double full = 1 - 1e-12;
	ck_assert_double_eq_tol(task_retry_delay_s(0, 2, 300, full), 2, 1e-9);
	ck_assert_double_eq_tol(task_retry_delay_s(1, 2, 300, full), 4, 1e-9);
	ck_assert_double_eq_tol(task_retry_delay_s(3, 2, 300, full), 16, 1e-9);
	ck_assert_double_eq_tol(task_retry_delay_s(3, 2, 300, 0), 8, 1e-9);
	ck_assert_double_eq_tol(task_retry_delay_s(8, 2, 300, full), 300, 1e-9);
	ck_assert_double_eq_tol(task_retry_delay_s(1000, 2, 300, 0), 150, 1e-9);
	ck_assert_double_eq_tol(task_retry_delay_s(-5, 2, 300, full), 2, 1e-9);
	/* A random value out of [0, 1) is taken as the middle. */
	ck_assert_double_eq_tol(task_retry_delay_s(0, 2, 300, 7), 1.5, 1e-9);
	for (int retries = 0; retries < 12; retries++)
		for (double r = 0; r < 1; r += 0.125) {
			double delay = task_retry_delay_s(retries, 0.5, 60, r);
			ck_assert(delay >= 0.25 && delay <= 60);
		}
}
END_TEST

START_TEST(test_retries_header_is_read_with_defaults)
{
	const char *cases[][2] = {
		{ "{\"headers\": {\"retries\": 4}}", "4" }, { "{\"headers\": {\"retries\": null}}", "0" },
		{ "{\"headers\": {\"retries\": -1}}", "0" }, { "{\"headers\": {\"retries\": \"3\"}}", "0" },
		{ "{\"headers\": {}}", "0" },			 { "{}", "0" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *envelope = json_loads(cases[i][0], 0, NULL);
		ck_assert_ptr_nonnull(envelope);
		ck_assert_int_eq(task_retries_of(envelope), atoi(cases[i][1]));
		json_decref(envelope);
	}
}
END_TEST

/* ---- callbacks, errbacks, chains ---- */

/* A parsed task whose embed is `embed_json`, root_id "r0", id "t1", priority 4. */
static void canvas_task(struct celery_task *task, const char *embed_json)
{
	json_t *kwargs = sample_kwargs();
	json_t *embed = json_loads(embed_json, 0, NULL);
	ck_assert_ptr_nonnull(embed);
	struct celery_message message = { .task_name = CELERY_TASK_EXECUTE_PIPELINE, .task_id = "t1",
					  .delivery_tag = "d1", .queue = "celery", .kwargs = kwargs,
					  .root_id = "r0", .embed = embed, .priority = 4 };
	char err[256];
	char *text = celery_envelope_build(&message, err, sizeof err);
	ck_assert_msg(text != NULL, "%s", err);
	ck_assert_int_eq(celery_envelope_parse(text, strlen(text), task, err, sizeof err), 0);
	free(text);
	json_decref(embed);
	json_decref(kwargs);
}

static void parse_follow_up(const struct celery_follow_up *up, struct celery_task *task)
{
	char err[256];
	ck_assert_msg(celery_envelope_parse(up->envelope, strlen(up->envelope), task, err, sizeof err) == 0, "%s", err);
}

static const char *header_of(const struct celery_task *task, const char *name)
{
	return json_string_value(json_object_get(json_object_get(task->envelope, "headers"), name));
}

START_TEST(test_chain_sends_its_next_task_with_the_result_and_the_rest)
{
	struct celery_task task;
	canvas_task(&task, "{\"callbacks\": null, \"errbacks\": null, \"chord\": null, \"chain\": ["
			   "{\"task\": \"c\", \"args\": [], \"kwargs\": {}, \"options\": {\"task_id\": \"id-c\"},"
			   " \"subtask_type\": null, \"immutable\": false},"
			   "{\"task\": \"b\", \"args\": [7], \"kwargs\": {\"k\": 1},"
			   " \"options\": {\"task_id\": \"id-b\", \"queue\": \"python\"}, \"subtask_type\": null}]}");
	json_t *retval = json_pack("{s:s}", "status", "SUCCEEDED");
	struct celery_follow_ups ups;
	char err[256];
	ck_assert_int_eq(celery_follow_ups_build(&task, true, retval, "celery", &ups, err, sizeof err), 0);
	ck_assert_uint_eq(ups.count, 1);
	ck_assert_str_eq(ups.note, "");
	/* Priority 4 of the parent goes to kombu's list of step 3. */
	ck_assert_str_eq(ups.items[0].queue, "python\x06\x16" "3");
	struct celery_task next;
	parse_follow_up(&ups.items[0], &next);
	ck_assert_str_eq(next.task_name, "b");
	ck_assert_str_eq(next.task_id, "id-b");
	ck_assert_str_eq(header_of(&next, "root_id"), "r0");
	ck_assert_str_eq(header_of(&next, "parent_id"), "t1");
	ck_assert_str_eq(next.routing_key, "python");
	/* Its delivery tag says when it was sent, as every task sigtrig sends does. */
	int64_t sent_ms = 0;
	ck_assert_msg(celery_delivery_tag_sent_ms(next.delivery_tag, &sent_ms), "%s", next.delivery_tag);
	/* The result first, then the signature's own args. */
	ck_assert_uint_eq(json_array_size(next.args), 2);
	ck_assert(json_equal(json_array_get(next.args, 0), retval));
	ck_assert_int_eq(json_integer_value(json_array_get(next.args, 1)), 7);
	ck_assert_int_eq(json_integer_value(json_object_get(next.kwargs, "k")), 1);
	/* It carries the rest of the chain. */
	const json_t *rest = json_object_get(next.embed, "chain");
	ck_assert_uint_eq(json_array_size(rest), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(rest, 0), "task")), "c");
	/* ...and the next one, when b succeeds, is c with b's result: the chain walks to its end. */
	struct celery_follow_ups after;
	json_t *b_result = json_integer(42);
	ck_assert_int_eq(celery_follow_ups_build(&next, true, b_result, "celery", &after, err, sizeof err), 0);
	ck_assert_uint_eq(after.count, 1);
	struct celery_task last;
	parse_follow_up(&after.items[0], &last);
	ck_assert_str_eq(last.task_id, "id-c");
	ck_assert_int_eq(json_integer_value(json_array_get(last.args, 0)), 42);
	ck_assert(json_is_null(json_object_get(last.embed, "chain")));
	ck_assert_str_eq(header_of(&last, "root_id"), "r0");
	ck_assert_str_eq(header_of(&last, "parent_id"), "id-b");
	/* A failure sends no chain on. */
	celery_follow_ups_free(&ups);
	ck_assert_int_eq(celery_follow_ups_build(&task, false, NULL, "celery", &ups, err, sizeof err), 0);
	ck_assert_uint_eq(ups.count, 0);
	celery_task_free(&last);
	celery_follow_ups_free(&after);
	json_decref(b_result);
	celery_task_free(&next);
	json_decref(retval);
	celery_task_free(&task);
}
END_TEST

START_TEST(test_callbacks_on_success_and_errbacks_with_the_task_id_on_failure)
{
	struct celery_task task;
	canvas_task(&task, "{\"chain\": null, \"chord\": null, \"callbacks\": ["
			   "{\"task\": \"notify\", \"args\": [\"x\"], \"kwargs\": {}, \"options\": {}},"
			   "{\"task\": \"fixed\", \"args\": [1], \"kwargs\": {}, \"options\": {\"priority\": 9},"
			   " \"immutable\": true}],"
			   " \"errbacks\": [{\"task\": \"on_error\", \"args\": [], \"kwargs\": {}, \"options\":"
			   " {\"link\": {\"task\": \"after_error\"}}}]}");
	json_t *retval = json_string("done");
	struct celery_follow_ups ups;
	char err[256];
	ck_assert_int_eq(celery_follow_ups_build(&task, true, retval, "celery", &ups, err, sizeof err), 0);
	ck_assert_uint_eq(ups.count, 2);
	struct celery_task first, second;
	parse_follow_up(&ups.items[0], &first);
	parse_follow_up(&ups.items[1], &second);
	ck_assert_str_eq(first.task_name, "notify");
	ck_assert_uint_eq(strlen(first.task_id), 36); /* a fresh id: the signature named none */
	ck_assert_str_eq(json_string_value(json_array_get(first.args, 0)), "done");
	ck_assert_str_eq(json_string_value(json_array_get(first.args, 1)), "x");
	ck_assert_str_eq(ups.items[0].queue, "celery\x06\x16" "3");
	/* Immutable: its own args only; its own priority. */
	ck_assert_str_eq(second.task_name, "fixed");
	ck_assert_uint_eq(json_array_size(second.args), 1);
	ck_assert_int_eq(json_integer_value(json_array_get(second.args, 0)), 1);
	ck_assert_str_eq(ups.items[1].queue, "celery\x06\x16" "9");
	celery_task_free(&first);
	celery_task_free(&second);
	celery_follow_ups_free(&ups);

	ck_assert_int_eq(celery_follow_ups_build(&task, false, NULL, "celery", &ups, err, sizeof err), 0);
	ck_assert_uint_eq(ups.count, 1);
	struct celery_task errback;
	parse_follow_up(&ups.items[0], &errback);
	ck_assert_str_eq(errback.task_name, "on_error");
	ck_assert_uint_eq(json_array_size(errback.args), 1);
	ck_assert_str_eq(json_string_value(json_array_get(errback.args, 0)), "t1");
	/* The errback's own link rides along as its callbacks (a lone signature too, as a list of one). */
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(errback.embed, "callbacks"), 0),
							   "task")),
			 "after_error");
	celery_task_free(&errback);
	celery_follow_ups_free(&ups);
	json_decref(retval);
	celery_task_free(&task);
}
END_TEST

START_TEST(test_groups_chords_and_bad_signatures_are_not_sent_and_are_named)
{
	struct celery_task task;
	canvas_task(&task, "{\"chain\": null, \"errbacks\": null, \"chord\": {\"task\": \"body\"}, \"callbacks\": ["
			   "{\"task\": \"celery.group\", \"subtask_type\": \"group\", \"kwargs\": {\"tasks\": []}},"
			   "42, {\"task\": \"bad\", \"args\": {}},"
			   "{\"task\": \"good\"}]}");
	struct celery_follow_ups ups;
	char err[256];
	ck_assert_int_eq(celery_follow_ups_build(&task, true, NULL, "celery", &ups, err, sizeof err), 0);
	ck_assert_uint_eq(ups.count, 1);
	ck_assert_str_eq(ups.items[0].task_name, "good");
	ck_assert_msg(strstr(ups.note, "callback celery.group: a group signature is not supported") != NULL, "%s",
		      ups.note);
	ck_assert_msg(strstr(ups.note, "a callback that is not a task signature") != NULL, "%s", ups.note);
	ck_assert_msg(strstr(ups.note, "callback bad: args must be an array") != NULL, "%s", ups.note);
	ck_assert_msg(strstr(ups.note, "chord body: chords are not supported") != NULL, "%s", ups.note);
	/* None as the result: the callback gets null. */
	struct celery_task good;
	parse_follow_up(&ups.items[0], &good);
	ck_assert(json_is_null(json_array_get(good.args, 0)));
	celery_task_free(&good);
	celery_follow_ups_free(&ups);
	celery_task_free(&task);
	/* A task sent by plain send_task() has nothing to send on. */
	char text_err[256];
	struct celery_task plain;
	ck_assert_int_eq(celery_envelope_parse(wire_full_envelope, strlen(wire_full_envelope), &plain, text_err,
					       sizeof text_err),
			 0);
	ck_assert_int_eq(celery_follow_ups_build(&plain, true, NULL, "celery", &ups, err, sizeof err), 0);
	ck_assert_uint_eq(ups.count, 0);
	ck_assert_str_eq(ups.note, "");
	celery_task_free(&plain);
}
END_TEST

START_TEST(test_priority_selects_kombu_list)
{
	static const struct {
		int priority;
		const char *list;
	} cases[] = { { 0, "celery" },
		      { 2, "celery" },
		      { 3, "celery\x06\x16" "3" },
		      { 5, "celery\x06\x16" "3" },
		      { 6, "celery\x06\x16" "6" },
		      { 9, "celery\x06\x16" "9" } };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char list[64];
		celery_priority_queue("celery", cases[i].priority, list, sizeof list);
		ck_assert_str_eq(list, cases[i].list);
	}
	json_t *envelope = json_loads(wire_full_envelope, 0, NULL);
	ck_assert_int_eq(celery_envelope_priority(envelope), 0);
	json_object_set_new(properties_of(envelope), "priority", json_integer(12));
	ck_assert_int_eq(celery_envelope_priority(envelope), 9);
	json_object_del(properties_of(envelope), "priority");
	ck_assert_int_eq(celery_envelope_priority(envelope), 0);
	json_decref(envelope);
}
END_TEST

START_TEST(test_python_repr_of_values)
{
	static const struct {
		const char *json;
		bool as_tuple;
		const char *repr;
	} cases[] = {
		{ "[]", true, "()" },
		{ "[1]", true, "(1,)" },
		{ "[1, \"a\"]", true, "(1, 'a')" },
		{ "{\"a\": null, \"b\": false, \"c\": 1.0, \"d\": 0.1}", false,
		  "{'a': None, 'b': False, 'c': 1.0, 'd': 0.1}" },
		{ "[\"it's\"]", false, "[\"it's\"]" },
		{ "[\"a'b\\\"c\"]", false, "['a\\'b\"c']" },
		{ "[\"line\\nbreak\\\\\"]", false, "['line\\nbreak\\\\']" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *value = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
		ck_assert_ptr_nonnull(value);
		char *repr = celery_python_repr(value, cases[i].as_tuple, 1024);
		ck_assert_str_eq(repr, cases[i].repr);
		free(repr);
		json_decref(value);
	}
	json_t *long_list = json_pack("[s]", "0123456789012345678901234567890123456789");
	char *cut = celery_python_repr(long_list, false, 10);
	ck_assert_str_eq(cut, "['01234567...");
	free(cut);
	json_decref(long_list);
}
END_TEST

START_TEST(test_dead_letter_entry_keeps_envelope_and_reason)
{
	char *text = celery_dead_letter_entry("garbage", 7, "envelope: not JSON", "celery");
	json_t *entry = json_loads(text, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(entry, "envelope")), "garbage");
	ck_assert_str_eq(json_string_value(json_object_get(entry, "reason")), "envelope: not JSON");
	ck_assert_str_eq(json_string_value(json_object_get(entry, "queue")), "celery");
	json_decref(entry);
	free(text);
	char *binary = celery_dead_letter_entry("\xff\xfe", 2, "envelope: not JSON", "celery");
	ck_assert(strstr(binary, "\"envelope_base64\":\"//4=\"") != NULL);
	free(binary);
}
END_TEST

/* ---- eta and expires: Celery's ISO 8601 times ---- */

START_TEST(test_iso8601_times_read_back_with_their_zone)
{
	double seconds;
	ck_assert_int_eq(time_parse_iso8601("2026-12-01T22:00:00", &seconds), 0);
	ck_assert(seconds == 1796162400.0);
	ck_assert_int_eq(time_parse_iso8601("2026-12-01T22:00:00Z", &seconds), 0);
	ck_assert(seconds == 1796162400.0);
	ck_assert_int_eq(time_parse_iso8601("2026-12-01T22:00:00.250000+00:00", &seconds), 0);
	ck_assert(seconds == 1796162400.25);
	ck_assert_int_eq(time_parse_iso8601("2026-12-01T23:30:00+01:30", &seconds), 0);
	ck_assert(seconds == 1796162400.0);
	ck_assert_int_eq(time_parse_iso8601("2026-12-01T20:00:00-02:00", &seconds), 0);
	ck_assert(seconds == 1796162400.0);
}
END_TEST

START_TEST(test_text_that_is_not_an_iso8601_time_is_refused)
{
	double seconds = 7;
	ck_assert_int_eq(time_parse_iso8601(NULL, &seconds), -1);
	ck_assert_int_eq(time_parse_iso8601("", &seconds), -1);
	ck_assert_int_eq(time_parse_iso8601("tomorrow", &seconds), -1);
	ck_assert_int_eq(time_parse_iso8601("2026-13-01T00:00:00", &seconds), -1);
	ck_assert_int_eq(time_parse_iso8601("2026-12-01 22:00:00", &seconds), -1);
	ck_assert_int_eq(time_parse_iso8601("2026-12-01T22:00:00+0100", &seconds), -1);
	ck_assert_int_eq(time_parse_iso8601("2026-12-01T22:00:00Zjunk", &seconds), -1);
	ck_assert(seconds == 7);
}
END_TEST

/* ---- tasks held for their eta ---- */

static struct celery_taken taken_named(const char *tag)
{
	struct celery_taken taken = { 0 };
	taken.delivery_tag = strdup(tag);
	taken.text = strdup("{}");
	taken.length = 2;
	return taken;
}

START_TEST(test_held_tasks_come_out_when_due_soonest_first)
{
	struct task_hold *hold = task_hold_new(8);
	ck_assert_ptr_nonnull(hold);
	struct celery_taken later = taken_named("later"), sooner = taken_named("sooner");
	ck_assert(task_hold_put(hold, &later, 200.0));
	ck_assert(task_hold_put(hold, &sooner, 100.0));
	ck_assert_ptr_null(later.delivery_tag); /* the hold owns them now */
	ck_assert_uint_eq(task_hold_count(hold), 2);
	struct celery_taken out;
	ck_assert(!task_hold_take_due(hold, 99.9, &out));
	ck_assert(task_hold_take_due(hold, 250.0, &out));
	ck_assert_str_eq(out.delivery_tag, "sooner");
	celery_taken_free(&out);
	ck_assert(task_hold_take_due(hold, 250.0, &out));
	ck_assert_str_eq(out.delivery_tag, "later");
	celery_taken_free(&out);
	ck_assert(!task_hold_take_due(hold, 1e12, &out));
	ck_assert_uint_eq(task_hold_count(hold), 0);
	task_hold_free(hold);
}
END_TEST

START_TEST(test_a_full_hold_refuses_and_a_stopping_worker_drains_it)
{
	struct task_hold *hold = task_hold_new(2);
	struct celery_taken a = taken_named("a"), b = taken_named("b"), c = taken_named("c");
	ck_assert(task_hold_put(hold, &a, 1e12));
	ck_assert(task_hold_put(hold, &b, 1e12));
	ck_assert(!task_hold_put(hold, &c, 1e12));
	ck_assert_str_eq(c.delivery_tag, "c"); /* refused: still the caller's */
	celery_taken_free(&c);
	struct celery_taken out;
	int drained = 0;
	while (task_hold_take_any(hold, &out)) {
		drained++;
		celery_taken_free(&out);
	}
	ck_assert_int_eq(drained, 2);
	task_hold_free(hold);
}
END_TEST

static Suite *celery_suite(void)
{
	Suite *suite = suite_create("celery");
	TCase *base64 = tcase_create("base64");
	tcase_add_test(base64, test_base64_matches_rfc4648_vectors);
	tcase_add_test(base64, test_base64_round_trips_every_byte);
	tcase_add_test(base64, test_base64_rejects_bad_text);
	tcase_add_test(base64, test_base64_skips_line_breaks_of_wrapped_text);
	suite_add_tcase(suite, base64);
	TCase *build = tcase_create("build");
	tcase_add_test(build, test_envelope_body_is_args_kwargs_embed);
	tcase_add_test(build, test_envelope_has_python_headers_and_properties);
	tcase_add_test(build, test_envelope_round_trips_through_parse);
	tcase_add_test(build, test_execute_pipeline_task_keeps_given_task_id);
	tcase_add_test(build, test_execute_pipeline_task_fills_empty_task_id);
	tcase_add_test(build, test_build_names_missing_field);
	suite_add_tcase(suite, build);
	TCase *direct = tcase_create("direct");
	int counts = (int)(sizeof signal_id_counts / sizeof signal_id_counts[0]);
	tcase_add_loop_test(direct, test_direct_envelope_is_byte_for_byte_the_generic_build, 0, counts);
	tcase_add_loop_test(direct, test_direct_envelope_parses_back_to_its_kwargs, 0, counts);
	tcase_add_test(direct, test_direct_envelope_cuts_a_long_kwargsrepr_as_the_generic_one);
	tcase_add_loop_test(direct, test_execute_pipeline_task_is_the_generic_build_with_its_delivery_tag, 0,
			    counts);
	tcase_add_loop_test(direct, test_text_needing_escapes_takes_the_generic_path, 0,
			    (int)(sizeof escapings / sizeof escapings[0]));
	tcase_add_test(direct, test_signal_ids_that_are_not_strings_take_the_generic_path);
	tcase_add_test(direct, test_execute_pipeline_task_without_a_queue_names_it);
	tcase_add_test(direct, test_execute_pipeline_task_ids_are_fresh_version_4_and_delivery_tags_version_7_uuids);
	suite_add_tcase(suite, direct);
	TCase *parse = tcase_create("parse");
	tcase_add_test(parse, test_parses_full_envelope_from_redis_cli);
	tcase_add_test(parse, test_parses_minimal_envelope_from_redis_cli);
	tcase_add_test(parse, test_parses_plain_json_body_without_body_encoding);
	tcase_add_loop_test(parse, test_malformed_envelope_fails_naming_the_problem, 0,
			    (int)(sizeof malformations / sizeof malformations[0]));
	tcase_add_test(parse, test_malformed_envelope_still_gives_task_id);
	tcase_add_test(parse, test_non_json_and_non_object_envelopes_fail);
	suite_add_tcase(suite, parse);
	TCase *results = tcase_create("results");
	tcase_add_test(results, test_success_result_has_celery_fields);
	tcase_add_test(results, test_failure_result_names_exception_module);
	tcase_add_test(results, test_result_escapes_non_ascii_like_python);
	suite_add_tcase(suite, results);
	TCase *redelivery = tcase_create("redelivery");
	tcase_add_test(redelivery, test_mark_redelivered_sets_both_flags);
	tcase_add_test(redelivery, test_priority_selects_kombu_list);
	tcase_add_test(redelivery, test_python_repr_of_values);
	tcase_add_test(redelivery, test_dead_letter_entry_keeps_envelope_and_reason);
	tcase_add_test(redelivery, test_iso8601_times_read_back_with_their_zone);
	tcase_add_test(redelivery, test_text_that_is_not_an_iso8601_time_is_refused);
	tcase_add_test(redelivery, test_held_tasks_come_out_when_due_soonest_first);
	tcase_add_test(redelivery, test_a_full_hold_refuses_and_a_stopping_worker_drains_it);
	tcase_add_test(redelivery, test_retry_envelope_is_what_task_retry_sends);
	tcase_add_test(redelivery, test_retry_delay_doubles_up_to_its_cap_with_jitter);
	tcase_add_test(redelivery, test_retries_header_is_read_with_defaults);
	TCase *canvas = tcase_create("canvas");
	tcase_add_test(canvas, test_chain_sends_its_next_task_with_the_result_and_the_rest);
	tcase_add_test(canvas, test_callbacks_on_success_and_errbacks_with_the_task_id_on_failure);
	tcase_add_test(canvas, test_groups_chords_and_bad_signatures_are_not_sent_and_are_named);
	suite_add_tcase(suite, canvas);
	suite_add_tcase(suite, redelivery);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(celery_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

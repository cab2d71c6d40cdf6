#include "dead_letter.h"

#include <jansson.h>
#include <stdlib.h>

#include "base64.h"

char *dead_letter_message(const struct dead_letter_origin *origin, const void *payload, size_t length,
			  const char *reason, double now)
{
	size_t kept = length < DEAD_LETTER_MAX_PAYLOAD ? length : DEAD_LETTER_MAX_PAYLOAD;
	char *encoded = base64_encode(payload != NULL ? payload : "", payload != NULL ? kept : 0);
	if (encoded == NULL)
		return NULL;
	/* A key that is not UTF-8 cannot be a JSON string: it is left out rather than mangled. */
	json_t *key = origin->key != NULL ? json_stringn(origin->key, origin->key_length) : NULL;
	json_t *letter = json_pack("{s:s, s:s, s:i, s:I, s:o, s:f, s:I, s:s, s:b}", "reason",
				   reason != NULL ? reason : "", "topic", origin->topic != NULL ? origin->topic : "",
				   "partition", (int)origin->partition, "offset", (json_int_t)origin->offset,
				   "key", key != NULL ? key : json_null(), "dead_lettered_at", now,
				   "payload_bytes", (json_int_t)length, "payload_base64", encoded,
				   "payload_truncated", kept < length);
	free(encoded);
	if (letter == NULL)
		return NULL;
	char *text = json_dumps(letter, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(letter);
	return text;
}

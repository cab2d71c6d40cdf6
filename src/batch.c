#include "batch.h"

#include <stdlib.h>
#include <string.h>

bool batch_is_due(const struct batch_policy *policy, size_t count, int64_t first_ms, int64_t now_ms)
{
	if (count == 0)
		return false;
	return count >= policy->max_signals || now_ms - first_ms >= policy->max_wait_ms;
}

int64_t batch_wait_ms(const struct batch_policy *policy, size_t count, int64_t first_ms, int64_t now_ms)
{
	if (count == 0)
		return -1;
	if (batch_is_due(policy, count, first_ms, now_ms))
		return 0;
	return policy->max_wait_ms - (now_ms - first_ms);
}

bool batch_mode_from_name(const char *name, enum batch_mode *mode)
{
	if (name != NULL && strcmp(name, "group") == 0)
		*mode = BATCH_MODE_GROUP;
	else if (name != NULL && strcmp(name, "fixed") == 0)
		*mode = BATCH_MODE_FIXED;
	else
		return false;
	return true;
}

bool batch_round_due(const struct batch_policy *policy, size_t waiting, int64_t first_ms, bool in_flight,
		     int64_t now_ms)
{
	if (in_flight || waiting == 0)
		return false;
	return policy->mode == BATCH_MODE_GROUP || batch_is_due(policy, waiting, first_ms, now_ms);
}

size_t batch_round_size(const struct batch_policy *policy, size_t waiting)
{
	return waiting < policy->max_signals ? waiting : policy->max_signals;
}

static void append_unique(json_t *array, const char *text)
{
	size_t index;
	json_t *item;
	json_array_foreach(array, index, item)
		if (strcmp(json_string_value(item), text) == 0)
			return;
	json_array_append_new(array, json_string(text));
}

long batch_match_signals(const struct pipeline_index *index, const struct signal *signals, size_t count,
			 struct batch_match **matches)
{
	*matches = NULL;
	size_t pipelines = pipeline_index_pipeline_count(index);
	if (pipelines == 0 || count == 0)
		return 0;
	/* slot_of[position] = 1 + the match's place, so a pipeline is found in O(1). */
	size_t *slot_of = calloc(pipelines, sizeof *slot_of);
	size_t used = 0, capacity = 0;
	struct batch_match *found = NULL;
	if (slot_of == NULL)
		return -1;
	for (size_t s = 0; s < count; s++) {
		for (size_t t = 0; t < signals[s].ticker_count; t++) {
			const char *ticker = signals[s].tickers[t].ticker;
			size_t posting_count;
			const size_t *positions = pipeline_index_lookup(index, ticker, &posting_count);
			for (size_t p = 0; p < posting_count; p++) {
				size_t position = positions[p];
				if (slot_of[position] == 0) {
					if (used == capacity) {
						capacity = capacity == 0 ? 16 : capacity * 2;
						struct batch_match *grown = realloc(found, capacity * sizeof *grown);
						if (grown == NULL) {
							batch_matches_free(found, used);
							free(slot_of);
							return -1;
						}
						found = grown;
					}
					found[used] = (struct batch_match){
						position, pipeline_index_pipeline(index, position), json_array(),
						json_array(), json_array()
					};
					slot_of[position] = ++used;
				}
				struct batch_match *match = &found[slot_of[position] - 1];
				if (!pipeline_filter_accepts(&match->pipeline->filter, &signals[s],
							     &signals[s].tickers[t])) {
					append_unique(match->filtered_ids, signals[s].signal_id);
					continue;
				}
				append_unique(match->signal_ids, signals[s].signal_id);
				append_unique(match->tickers, ticker);
			}
		}
	}
	free(slot_of);
	/* A signal that passed through another ticker was not filtered out. */
	for (size_t m = 0; m < used; m++) {
		for (size_t i = json_array_size(found[m].filtered_ids); i-- > 0;) {
			const char *id = json_string_value(json_array_get(found[m].filtered_ids, i));
			size_t k;
			json_t *accepted;
			json_array_foreach(found[m].signal_ids, k, accepted)
				if (strcmp(json_string_value(accepted), id) == 0) {
					json_array_remove(found[m].filtered_ids, i);
					break;
				}
		}
	}
	*matches = found;
	return (long)used;
}

void batch_matches_free(struct batch_match *matches, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		json_decref(matches[i].signal_ids);
		json_decref(matches[i].tickers);
		json_decref(matches[i].filtered_ids);
	}
	free(matches);
}

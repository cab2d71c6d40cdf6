#include "pipeline_index.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct posting_list {
	const char *ticker; /* points into a pipeline's ticker array */
	size_t *positions;
	size_t count, capacity;
};

struct pipeline_index {
	struct pipeline *pipelines;
	size_t pipeline_count;
	struct posting_list *slots; /* open addressing, linear probing */
	size_t slot_count;          /* a power of two, at least twice the tickers */
	size_t ticker_count;
};

static uint64_t hash_ticker(const char *ticker)
{
	uint64_t hash = 1469598103934665603ULL; /* FNV-1a */
	for (const unsigned char *c = (const unsigned char *)ticker; *c != '\0'; c++) {
		hash ^= *c;
		hash *= 1099511628211ULL;
	}
	return hash;
}

static struct posting_list *find_slot(const struct pipeline_index *index, const char *ticker)
{
	size_t mask = index->slot_count - 1;
	for (size_t slot = hash_ticker(ticker) & mask;; slot = (slot + 1) & mask) {
		struct posting_list *list = &index->slots[slot];
		if (list->ticker == NULL || strcmp(list->ticker, ticker) == 0)
			return list;
	}
}

static int add_posting(struct posting_list *list, size_t position)
{
	/* A pipeline listing a ticker twice is posted once. */
	if (list->count > 0 && list->positions[list->count - 1] == position)
		return 0;
	if (list->count == list->capacity) {
		size_t capacity = list->capacity == 0 ? 4 : list->capacity * 2;
		size_t *grown = realloc(list->positions, capacity * sizeof *grown);
		if (grown == NULL)
			return -1;
		list->positions = grown;
		list->capacity = capacity;
	}
	list->positions[list->count++] = position;
	return 0;
}

struct pipeline_index *pipeline_index_build(struct pipeline *pipelines, size_t count)
{
	struct pipeline_index *index = calloc(1, sizeof *index);
	if (index == NULL)
		return NULL;
	index->pipelines = pipelines;
	index->pipeline_count = count;
	size_t postings = 0;
	for (size_t i = 0; i < count; i++)
		postings += pipelines[i].ticker_count;
	index->slot_count = 16;
	while (index->slot_count < 2 * postings)
		index->slot_count *= 2;
	index->slots = calloc(index->slot_count, sizeof *index->slots);
	if (index->slots == NULL) {
		pipeline_index_free(index);
		return NULL;
	}
	for (size_t i = 0; i < count; i++) {
		for (size_t t = 0; t < pipelines[i].ticker_count; t++) {
			struct posting_list *list = find_slot(index, pipelines[i].tickers[t]);
			if (list->ticker == NULL) {
				list->ticker = pipelines[i].tickers[t];
				index->ticker_count++;
			}
			if (add_posting(list, i) != 0) {
				pipeline_index_free(index);
				return NULL;
			}
		}
	}
	return index;
}

void pipeline_index_free(struct pipeline_index *index)
{
	if (index == NULL)
		return;
	for (size_t i = 0; index->slots != NULL && i < index->slot_count; i++)
		free(index->slots[i].positions);
	free(index->slots);
	for (size_t i = 0; i < index->pipeline_count; i++)
		pipeline_free(&index->pipelines[i]);
	free(index->pipelines);
	free(index);
}

size_t pipeline_index_pipeline_count(const struct pipeline_index *index)
{
	return index != NULL ? index->pipeline_count : 0;
}

size_t pipeline_index_ticker_count(const struct pipeline_index *index)
{
	return index != NULL ? index->ticker_count : 0;
}

const struct pipeline *pipeline_index_pipeline(const struct pipeline_index *index, size_t position)
{
	return &index->pipelines[position];
}

const size_t *pipeline_index_lookup(const struct pipeline_index *index, const char *ticker, size_t *count)
{
	*count = 0;
	if (index == NULL || index->slots == NULL)
		return NULL;
	struct posting_list *list = find_slot(index, ticker);
	if (list->ticker == NULL)
		return NULL;
	*count = list->count;
	return list->positions;
}

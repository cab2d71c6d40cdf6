/*
 * The dispatcher's in-memory match index: ticker -> the active signal
 * pipelines watching it. Built whole from a pipeline list and swapped in
 * on refresh, never edited in place, so lookups need no lock. A lookup is
 * one hash probe; a signal with many tickers costs the sum of their postings.
 */
#ifndef SIGTRIG_PIPELINE_INDEX_H
#define SIGTRIG_PIPELINE_INDEX_H

#include <stddef.h>

#include "pipeline_store.h"

struct pipeline_index;

/* Takes ownership of `pipelines` (an array from pipeline_store_load_active_signal). */
struct pipeline_index *pipeline_index_build(struct pipeline *pipelines, size_t count);
void pipeline_index_free(struct pipeline_index *index);

size_t pipeline_index_pipeline_count(const struct pipeline_index *index);
size_t pipeline_index_ticker_count(const struct pipeline_index *index);
const struct pipeline *pipeline_index_pipeline(const struct pipeline_index *index, size_t position);

/*
 * Positions (0 .. pipeline_count-1) of the pipelines watching `ticker`, or
 * NULL with *count 0. Valid until the index is freed.
 */
const size_t *pipeline_index_lookup(const struct pipeline_index *index, const char *ticker, size_t *count);

#endif

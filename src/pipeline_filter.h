/*
 * Per-pipeline signal filters, from the pipeline config's "filters":
 *   {"min_confidence": 60, "directions": ["BULLISH"],
 *    "signal_types": ["golden_cross"], "sources": ["news"]}
 * Each is optional; a signal's ticker wakes the pipeline only when it
 * passes all that are set. Pure: the dispatcher's matcher applies them.
 */
#ifndef SIGTRIG_PIPELINE_FILTER_H
#define SIGTRIG_PIPELINE_FILTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "signal.h"

struct pipeline_filter {
	double min_confidence;   /* -1: none */
	unsigned directions;     /* bit per enum signal_direction; 0: any */
	const json_t *signal_types; /* array of strings, borrowed from the config; NULL: any */
	const json_t *sources;      /* likewise */
};

/*
 * Reads and validates config.filters (absent: accepts everything). The
 * filter borrows from `config`, which must outlive it. 0, or -1 with err
 * naming the field.
 */
int pipeline_filter_parse(const json_t *config, struct pipeline_filter *filter, char *err, size_t errsize);

bool pipeline_filter_accepts(const struct pipeline_filter *filter, const struct signal *signal,
			     const struct signal_ticker *ticker);

#endif

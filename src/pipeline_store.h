/* Pipelines in PostgreSQL: what they watch, how they are triggered, what they run. */
#ifndef SIGTRIG_PIPELINE_STORE_H
#define SIGTRIG_PIPELINE_STORE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "pipeline_filter.h"

#define PIPELINE_ID_LENGTH 36

/*
 * What one live execution of a pipeline blocks (config.claim_scope):
 * "pipeline" (the default) the whole pipeline, as the design has it;
 * "ticker" only the tickers it runs for, so that a pipeline watching AAPL
 * and MSFT can run for MSFT while its AAPL run is still going. Each
 * ticker-scoped run gets the signals of its one ticker.
 */
enum pipeline_claim_scope { PIPELINE_CLAIM_PIPELINE, PIPELINE_CLAIM_TICKER };

/* Reads config.claim_scope (absent: "pipeline"). 0, or -1 with err naming the field. */
int pipeline_claim_scope_parse(const json_t *config, enum pipeline_claim_scope *scope, char *err,
			       size_t errsize);

struct pipeline {
	char id[PIPELINE_ID_LENGTH + 1];
	char *name;
	char user_id[PIPELINE_ID_LENGTH + 1];
	char trigger_mode[16]; /* "signal" or "periodic" */
	char **tickers;        /* scanner_tickers */
	size_t ticker_count;
	bool is_active;
	json_t *config;        /* {"nodes": [{"agent_type": ..., "config": {...}}, ...]} */
	struct pipeline_filter filter; /* from config.filters; borrows from config */
	enum pipeline_claim_scope claim_scope; /* from config.claim_scope */
};

void pipeline_free(struct pipeline *pipeline);

/* Loads one pipeline; returns 1 found, 0 not found, -1 on error. */
int pipeline_store_get(PGconn *conn, const char *id, struct pipeline *pipeline, char *err, size_t errsize);

/*
 * Every active signal-mode pipeline (for the dispatcher's cache). Fills
 * *pipelines (malloc'd array) and *count.
 */
int pipeline_store_load_active_signal(PGconn *conn, struct pipeline **pipelines, size_t *count,
				      char *err, size_t errsize);

/*
 * Validates a pipeline definition given as JSON (name, user_id or user,
 * trigger_mode, scanner_tickers, is_active, config) and inserts it,
 * creating the user when a user name is given. Returns the stored pipeline
 * as JSON, or NULL with err filled (naming the bad field).
 */
json_t *pipeline_store_add(PGconn *conn, const json_t *definition, char *err, size_t errsize);
json_t *pipeline_store_list(PGconn *conn, char *err, size_t errsize);
/* NULL with err "no pipeline ..." when it does not exist. */
json_t *pipeline_store_show(PGconn *conn, const char *id, char *err, size_t errsize);
/* Returns the updated pipeline, or NULL when not found (err filled). */
json_t *pipeline_store_set_active(PGconn *conn, const char *id, bool active, char *err, size_t errsize);

#endif

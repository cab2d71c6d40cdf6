/* The signals the dispatcher consumed, and what it decided for each (migration 2). */
#ifndef SIGTRIG_SIGNAL_STORE_H
#define SIGTRIG_SIGNAL_STORE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

/*
 * {"signal": {...as consumed...}, "decisions": [...], "executions": [...]}
 * for one signal id; NULL with err "no signal ..." when no dispatcher
 * consumed it (yet), or the query's error.
 */
json_t *signal_store_show(PGconn *conn, const char *signal_id, char *err, size_t errsize);

/*
 * The signals of `ids` (an array of strings) as consumed, in that order:
 * each one's body, or the bare id when no dispatcher recorded it (a task
 * sent by a client that named signal ids of its own). A new array, or
 * NULL with err.
 */
json_t *signal_store_bodies(PGconn *conn, const json_t *ids, char *err, size_t errsize);

#endif

#ifndef SIGTRIG_DISPATCHER_CACHE_H
#define SIGTRIG_DISPATCHER_CACHE_H

/*
 * The loader of the dispatcher's pipeline cache: a thread with a
 * PostgreSQL connection of its own that reads the active signal
 * pipelines and builds their index, so that the dispatcher's thread
 * never stops deciding while a reload runs. Loads are asked for by
 * generation: a load answers every request made before it started.
 */

#include <stdbool.h>
#include <stdint.h>

#include "pipeline_index.h"

/* The loader's connection, as pg_stat_activity names it. */
#define CACHE_LOADER_APPLICATION_NAME "sigtrigd cache loader"

/* What the loader has to say, as of now. */
struct cache_loader_status {
	bool busy;                  /* a load is asked for or under way */
	bool ready;                 /* a loaded index waits to be taken */
	uint64_t failed_generation; /* the latest request whose load failed; 0 none */
};

int cache_loader_start(const char *postgres_url, char *err, size_t errsize);
void cache_loader_stop(void);

/* Asks for a load that starts after this call; returns its generation. */
uint64_t cache_loader_request(void);

struct cache_loader_status cache_loader_status(void);

/*
 * The loaded index, if one waits (NULL otherwise), with the generation it
 * answers and the monotonic ms its query was sent (what it reflects).
 */
struct pipeline_index *cache_loader_take(uint64_t *generation, int64_t *loaded_ms);

/* Hands an index no longer in use to the loader, which frees it on its own thread. */
void cache_loader_retire(struct pipeline_index *index);

#endif

/*
 * The dispatcher's cache loader. Reloading 10,000 pipelines takes some
 * 150 ms (the query, a JSON parse of every config, the index). Done on
 * the dispatcher's thread, as it was, every signal that arrived meanwhile
 * waited for it: at 1,000 signals/s the reload every 30 s was the p99 of
 * a minute (106 ms). Here a thread of its own loads and builds the index
 * and frees the ones the dispatcher is done with; the dispatcher only
 * swaps pointers, between rounds, as rounds hold pointers into the index
 * they matched against.
 */
#include "dispatcher_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dispatcher.h"
#include "log.h"
#include "metrics.h"
#include "pipeline_store.h"
#include "timeutil.h"

static struct {
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	const char *postgres_url;
	PGconn *db;                     /* the loader's own; only its thread uses it */
	PGcancel *cancel;               /* of db: how cache_loader_stop() cuts a load short */
	uint64_t requested;             /* generation of the latest request */
	uint64_t started;               /* generation of the load under way, or of the last one */
	bool loading;
	struct pipeline_index *ready;   /* loaded, not yet taken */
	uint64_t ready_generation;
	int64_t ready_loaded_ms;
	uint64_t failed_generation;
	struct pipeline_index *retired; /* to be freed here */
} loader = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

/*
 * A load that waits longer than this (behind a lock taken by a migration,
 * say) fails, is reported, and is tried again: the loader never waits for
 * ever. Ample for a million pipelines.
 */
#define CACHE_LOAD_TIMEOUT "60s"

/*
 * Set up on each new connection: named in pg_stat_activity, so that an
 * operator can tell the loader's backend from the claims', with a bound
 * on its statements, and with a way to cancel what it runs.
 */
static int prepare_connection(PGconn *conn, char *err, size_t errsize)
{
	PGresult *result = db_query(conn,
				    "SELECT set_config('application_name', '" CACHE_LOADER_APPLICATION_NAME "', false),"
				    " set_config('statement_timeout', '" CACHE_LOAD_TIMEOUT "', false)",
				    0, NULL, err, errsize);
	if (result == NULL)
		return -1;
	PQclear(result);
	PGcancel *cancel = PQgetCancel(conn);
	pthread_mutex_lock(&loader.lock);
	PGcancel *previous = loader.cancel;
	loader.cancel = cancel;
	pthread_mutex_unlock(&loader.lock);
	PQfreeCancel(previous);
	return 0;
}

/* One load: the index, or NULL with err filled. */
static struct pipeline_index *load_index(char *err, size_t errsize)
{
	if (db_ensure_prepared(&loader.db, loader.postgres_url, prepare_connection, err, errsize) == NULL)
		return NULL;
	struct pipeline *pipelines;
	size_t count;
	metrics_add(METRIC_db_queries_total, 1);
	if (pipeline_store_load_active_signal(loader.db, &pipelines, &count, err, errsize) != 0)
		return NULL;
	struct pipeline_index *index = pipeline_index_build(pipelines, count);
	if (index == NULL)
		snprintf(err, errsize, "out of memory");
	return index;
}

static void *loader_main(void *argument)
{
	(void)argument;
	pthread_mutex_lock(&loader.lock);
	while (!loader.stop) {
		if (loader.retired != NULL) {
			struct pipeline_index *retired = loader.retired;
			loader.retired = NULL;
			pthread_mutex_unlock(&loader.lock);
			pipeline_index_free(retired);
			pthread_mutex_lock(&loader.lock);
			continue;
		}
		if (loader.requested == loader.started) {
			pthread_cond_wait(&loader.wake, &loader.lock);
			continue;
		}
		uint64_t generation = loader.requested;
		loader.started = generation;
		loader.loading = true;
		pthread_mutex_unlock(&loader.lock);
		int64_t loaded_ms = time_monotonic_ms();
		char err[512];
		struct pipeline_index *index = load_index(err, sizeof err);
		pthread_mutex_lock(&loader.lock);
		loader.loading = false;
		if (index == NULL) {
			loader.failed_generation = generation;
			/* A load cut short by the stop is no outage. */
			if (!loader.stop) {
				atomic_store(&dispatcher.postgres_ok, false);
				dispatcher_note_error("pipeline_cache_refresh_failed", err);
			}
			continue;
		}
		/* A newer load replaces one not taken yet. */
		struct pipeline_index *superseded = loader.ready;
		loader.ready = index;
		loader.ready_generation = generation;
		loader.ready_loaded_ms = loaded_ms;
		pthread_mutex_unlock(&loader.lock);
		log_event(LOG_DEBUG, "pipeline_cache_loaded",
			  json_pack("{s:I, s:I, s:I}", "pipelines", (json_int_t)pipeline_index_pipeline_count(index),
				    "tickers", (json_int_t)pipeline_index_ticker_count(index), "duration_ms",
				    (json_int_t)(time_monotonic_ms() - loaded_ms)));
		pipeline_index_free(superseded);
		pthread_mutex_lock(&loader.lock);
	}
	pthread_mutex_unlock(&loader.lock);
	return NULL;
}

int cache_loader_start(const char *postgres_url, char *err, size_t errsize)
{
	pthread_mutex_lock(&loader.lock);
	loader.stop = false;
	loader.postgres_url = postgres_url;
	loader.requested = loader.started = loader.failed_generation = 0;
	pthread_mutex_unlock(&loader.lock);
	if (pthread_create(&loader.thread, NULL, loader_main, NULL) != 0) {
		snprintf(err, errsize, "cannot start the pipeline cache's loader thread");
		return -1;
	}
	loader.running = true;
	return 0;
}

void cache_loader_stop(void)
{
	if (!loader.running)
		return;
	pthread_mutex_lock(&loader.lock);
	loader.stop = true;
	pthread_cond_signal(&loader.wake);
	/* A load under way is cut short rather than waited for: the daemon is stopping. */
	if (loader.loading && loader.cancel != NULL) {
		char reason[256];
		PQcancel(loader.cancel, reason, sizeof reason);
	}
	pthread_mutex_unlock(&loader.lock);
	pthread_join(loader.thread, NULL);
	loader.running = false;
	PQfreeCancel(loader.cancel);
	loader.cancel = NULL;
	pipeline_index_free(loader.ready);
	pipeline_index_free(loader.retired);
	loader.ready = loader.retired = NULL;
	if (loader.db != NULL)
		PQfinish(loader.db);
	loader.db = NULL;
}

uint64_t cache_loader_request(void)
{
	pthread_mutex_lock(&loader.lock);
	uint64_t generation = ++loader.requested;
	pthread_cond_signal(&loader.wake);
	pthread_mutex_unlock(&loader.lock);
	return generation;
}

struct cache_loader_status cache_loader_status(void)
{
	pthread_mutex_lock(&loader.lock);
	struct cache_loader_status status = {
		.busy = loader.loading || loader.requested != loader.started,
		.ready = loader.ready != NULL,
		.failed_generation = loader.failed_generation,
	};
	pthread_mutex_unlock(&loader.lock);
	return status;
}

struct pipeline_index *cache_loader_take(uint64_t *generation, int64_t *loaded_ms)
{
	pthread_mutex_lock(&loader.lock);
	struct pipeline_index *index = loader.ready;
	loader.ready = NULL;
	*generation = loader.ready_generation;
	*loaded_ms = loader.ready_loaded_ms;
	pthread_mutex_unlock(&loader.lock);
	return index;
}

void cache_loader_retire(struct pipeline_index *index)
{
	if (index == NULL)
		return;
	pthread_mutex_lock(&loader.lock);
	struct pipeline_index *unfreed = loader.retired;
	loader.retired = index;
	pthread_cond_signal(&loader.wake);
	pthread_mutex_unlock(&loader.lock);
	/* Only if the loader has not come round to the previous one yet. */
	pipeline_index_free(unfreed);
}

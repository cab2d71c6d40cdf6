#include "live_runs.h"

#include <stdlib.h>
#include <string.h>

/* A pipeline id as PostgreSQL writes a uuid: the payload's first field. */
#define PIPELINE_ID_LENGTH 36

/*
 * One claim key. `live_since_ms` >= 0 while a run of it is known live;
 * `ended_sequence` is the sequence of its latest end (0 none), kept while
 * a round sent before it may still be noted.
 */
struct live_run {
	struct live_run *next;
	uint64_t hash;
	int64_t live_since_ms;
	uint64_t ended_sequence;
	char *claim_key;           /* points into pipeline_id's allocation */
	char pipeline_id[];
};

struct live_runs {
	struct live_run **buckets;
	size_t bucket_count;       /* a power of two */
	size_t entry_count;
	int64_t max_age_ms;
	uint64_t sequence;         /* advanced by every end and every forget all */
	uint64_t forgotten_sequence; /* of the latest forget all */
};

static uint64_t key_hash(const char *pipeline_id, const char *claim_key)
{
	uint64_t hash = 1469598103934665603ULL; /* FNV-1a over both, with a separator */
	for (const char *c = pipeline_id; *c != '\0'; c++)
		hash = (hash ^ (unsigned char)*c) * 1099511628211ULL;
	hash = (hash ^ 0xffu) * 1099511628211ULL;
	for (const char *c = claim_key; *c != '\0'; c++)
		hash = (hash ^ (unsigned char)*c) * 1099511628211ULL;
	return hash;
}

struct live_runs *live_runs_new(int64_t max_age_ms)
{
	struct live_runs *runs = calloc(1, sizeof *runs);
	if (runs == NULL)
		return NULL;
	runs->bucket_count = 1024;
	runs->buckets = calloc(runs->bucket_count, sizeof *runs->buckets);
	if (runs->buckets == NULL) {
		free(runs);
		return NULL;
	}
	runs->max_age_ms = max_age_ms;
	runs->sequence = 1;
	return runs;
}

static void free_entries(struct live_runs *runs)
{
	for (size_t b = 0; b < runs->bucket_count; b++) {
		struct live_run *run = runs->buckets[b];
		while (run != NULL) {
			struct live_run *next = run->next;
			free(run);
			run = next;
		}
		runs->buckets[b] = NULL;
	}
	runs->entry_count = 0;
}

void live_runs_free(struct live_runs *runs)
{
	if (runs == NULL)
		return;
	free_entries(runs);
	free(runs->buckets);
	free(runs);
}

uint64_t live_runs_sequence(const struct live_runs *runs)
{
	return runs->sequence;
}

static struct live_run *find(const struct live_runs *runs, const char *pipeline_id, const char *claim_key,
			     uint64_t hash)
{
	for (struct live_run *run = runs->buckets[hash & (runs->bucket_count - 1)]; run != NULL; run = run->next)
		if (run->hash == hash && strcmp(run->pipeline_id, pipeline_id) == 0 &&
		    strcmp(run->claim_key, claim_key) == 0)
			return run;
	return NULL;
}

/* Doubles the buckets once there are more entries than buckets; a failure only keeps the chains longer. */
static void maybe_grow(struct live_runs *runs)
{
	if (runs->entry_count < runs->bucket_count)
		return;
	size_t count = runs->bucket_count * 2;
	struct live_run **buckets = calloc(count, sizeof *buckets);
	if (buckets == NULL)
		return;
	for (size_t b = 0; b < runs->bucket_count; b++) {
		struct live_run *run = runs->buckets[b];
		while (run != NULL) {
			struct live_run *next = run->next;
			run->next = buckets[run->hash & (count - 1)];
			buckets[run->hash & (count - 1)] = run;
			run = next;
		}
	}
	free(runs->buckets);
	runs->buckets = buckets;
	runs->bucket_count = count;
}

/* A new entry for the key (not live, no end), which has none; NULL out of memory. */
static struct live_run *add(struct live_runs *runs, const char *pipeline_id, const char *claim_key, uint64_t hash)
{
	size_t id_length = strlen(pipeline_id), key_length = strlen(claim_key);
	struct live_run *run = malloc(sizeof *run + id_length + 1 + key_length + 1);
	if (run == NULL)
		return NULL;
	run->hash = hash;
	run->live_since_ms = -1;
	run->ended_sequence = 0;
	memcpy(run->pipeline_id, pipeline_id, id_length + 1);
	run->claim_key = run->pipeline_id + id_length + 1;
	memcpy(run->claim_key, claim_key, key_length + 1);
	struct live_run **bucket = &runs->buckets[hash & (runs->bucket_count - 1)];
	run->next = *bucket;
	*bucket = run;
	runs->entry_count++;
	maybe_grow(runs);
	return run;
}

void live_runs_note_live(struct live_runs *runs, const char *pipeline_id, const char *claim_key,
			 uint64_t sent_sequence, int64_t now_ms)
{
	/* Something ended since the round was sent: what it saw may be gone. */
	if (runs->forgotten_sequence > sent_sequence)
		return;
	uint64_t hash = key_hash(pipeline_id, claim_key);
	struct live_run *run = find(runs, pipeline_id, claim_key, hash);
	if (run != NULL && run->ended_sequence > sent_sequence)
		return;
	if (run == NULL)
		run = add(runs, pipeline_id, claim_key, hash);
	if (run != NULL)
		run->live_since_ms = now_ms;
}

void live_runs_note_ended(struct live_runs *runs, const char *pipeline_id, const char *claim_key)
{
	runs->sequence++;
	uint64_t hash = key_hash(pipeline_id, claim_key);
	struct live_run *run = find(runs, pipeline_id, claim_key, hash);
	if (run == NULL)
		run = add(runs, pipeline_id, claim_key, hash);
	if (run == NULL) {
		/* Nowhere to keep the end: forgetting everything is the only safe answer. */
		live_runs_forget_all(runs);
		return;
	}
	run->live_since_ms = -1;
	run->ended_sequence = runs->sequence;
}

bool live_runs_note_notification(struct live_runs *runs, const char *payload)
{
	if (strcmp(payload, LIVE_RUNS_ALL_ENDED) == 0) {
		live_runs_forget_all(runs);
		return true;
	}
	char pipeline_id[PIPELINE_ID_LENGTH + 1];
	if (strlen(payload) <= PIPELINE_ID_LENGTH || payload[PIPELINE_ID_LENGTH] != ' ') {
		live_runs_forget_all(runs);
		return false;
	}
	memcpy(pipeline_id, payload, PIPELINE_ID_LENGTH);
	pipeline_id[PIPELINE_ID_LENGTH] = '\0';
	live_runs_note_ended(runs, pipeline_id, payload + PIPELINE_ID_LENGTH + 1);
	return true;
}

void live_runs_forget_all(struct live_runs *runs)
{
	free_entries(runs);
	runs->sequence++;
	runs->forgotten_sequence = runs->sequence;
}

static bool is_live(const struct live_runs *runs, const struct live_run *run, int64_t now_ms)
{
	return run->live_since_ms >= 0 && now_ms - run->live_since_ms < runs->max_age_ms;
}

bool live_runs_known(const struct live_runs *runs, const char *pipeline_id, const char *claim_key, int64_t now_ms)
{
	const struct live_run *run = find(runs, pipeline_id, claim_key, key_hash(pipeline_id, claim_key));
	return run != NULL && is_live(runs, run, now_ms);
}

void live_runs_prune(struct live_runs *runs, uint64_t oldest_sent_sequence, int64_t now_ms)
{
	for (size_t b = 0; b < runs->bucket_count; b++) {
		struct live_run **link = &runs->buckets[b];
		while (*link != NULL) {
			struct live_run *run = *link;
			if (is_live(runs, run, now_ms) || run->ended_sequence > oldest_sent_sequence) {
				link = &run->next;
				continue;
			}
			*link = run->next;
			free(run);
			runs->entry_count--;
		}
	}
}

size_t live_runs_count(const struct live_runs *runs, int64_t now_ms)
{
	size_t count = 0;
	for (size_t b = 0; b < runs->bucket_count; b++)
		for (const struct live_run *run = runs->buckets[b]; run != NULL; run = run->next)
			count += is_live(runs, run, now_ms);
	return count;
}

#include "rate_limit.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bucket {
	char *source;     /* NULL for a source that uses the default limits */
	double rate, burst;
	double tokens, updated;
	bool configured;  /* from an override: kept even when idle */
};

struct rate_limiter {
	double default_rate, default_burst;
	struct bucket *buckets;
	size_t count, capacity;
};

static struct bucket *find(struct rate_limiter *limiter, const char *source)
{
	for (size_t i = 0; i < limiter->count; i++)
		if (strcmp(limiter->buckets[i].source, source) == 0)
			return &limiter->buckets[i];
	return NULL;
}

static struct bucket *add(struct rate_limiter *limiter, const char *source, double rate, double burst)
{
	if (limiter->count == limiter->capacity) {
		size_t capacity = limiter->capacity == 0 ? 8 : limiter->capacity * 2;
		struct bucket *grown = realloc(limiter->buckets, capacity * sizeof *grown);
		if (grown == NULL)
			return NULL;
		limiter->buckets = grown;
		limiter->capacity = capacity;
	}
	struct bucket *bucket = &limiter->buckets[limiter->count];
	*bucket = (struct bucket){ strdup(source), rate, burst, burst, NAN, false };
	if (bucket->source == NULL)
		return NULL;
	limiter->count++;
	return bucket;
}

static int check_limits(const char *what, double rate, double burst, char *err, size_t errsize)
{
	if (!isfinite(rate) || rate < 0) {
		snprintf(err, errsize, "%s: rate must be a number of signals per second, 0 for unlimited", what);
		return -1;
	}
	if (rate > 0 && (!isfinite(burst) || burst < 1)) {
		snprintf(err, errsize, "%s: a rate needs an explicit burst of at least 1 signal", what);
		return -1;
	}
	return 0;
}

struct rate_limiter *rate_limiter_new(double default_rate, double default_burst, const char *overrides,
				      char *err, size_t errsize)
{
	if (check_limits("dispatcher.rate_limit", default_rate, default_burst, err, errsize) != 0)
		return NULL;
	struct rate_limiter *limiter = calloc(1, sizeof *limiter);
	char *copy = strdup(overrides != NULL ? overrides : "");
	if (limiter == NULL || copy == NULL) {
		free(limiter);
		free(copy);
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	limiter->default_rate = default_rate;
	limiter->default_burst = default_burst;
	char *save = NULL;
	for (char *entry = strtok_r(copy, ", ", &save); entry != NULL; entry = strtok_r(NULL, ", ", &save)) {
		char *equals = strchr(entry, '=');
		char *colon = equals != NULL ? strchr(equals, ':') : NULL;
		if (equals == NULL || equals == entry || colon == NULL) {
			snprintf(err, errsize, "dispatcher.rate_limits: '%s' is not source=rate:burst", entry);
			goto fail;
		}
		*equals = '\0';
		char *end;
		errno = 0;
		double rate = strtod(equals + 1, &end);
		if (end != colon || errno != 0)
			rate = -1;
		double burst = strtod(colon + 1, &end);
		if (*end != '\0')
			burst = -1;
		char what[300];
		snprintf(what, sizeof what, "dispatcher.rate_limits: %s", entry);
		if (check_limits(what, rate, burst, err, errsize) != 0)
			goto fail;
		if (find(limiter, entry) != NULL) {
			snprintf(err, errsize, "dispatcher.rate_limits: source '%s' given twice", entry);
			goto fail;
		}
		struct bucket *bucket = add(limiter, entry, rate, burst);
		if (bucket == NULL) {
			snprintf(err, errsize, "out of memory");
			goto fail;
		}
		bucket->configured = true;
	}
	free(copy);
	return limiter;
fail:
	free(copy);
	rate_limiter_free(limiter);
	return NULL;
}

void rate_limiter_free(struct rate_limiter *limiter)
{
	if (limiter == NULL)
		return;
	for (size_t i = 0; i < limiter->count; i++)
		free(limiter->buckets[i].source);
	free(limiter->buckets);
	free(limiter);
}

bool rate_limiter_allow(struct rate_limiter *limiter, const char *source, double now)
{
	struct bucket *bucket = find(limiter, source);
	if (bucket == NULL) {
		if (limiter->default_rate == 0)
			return true;
		bucket = add(limiter, source, limiter->default_rate, limiter->default_burst);
		if (bucket == NULL)
			return true; /* out of memory: never drop a signal for our own failure */
	}
	if (bucket->rate == 0)
		return true;
	if (!isnan(bucket->updated) && now > bucket->updated)
		bucket->tokens = fmin(bucket->burst, bucket->tokens + (now - bucket->updated) * bucket->rate);
	if (isnan(bucket->updated) || now > bucket->updated)
		bucket->updated = now;
	if (bucket->tokens < 1)
		return false;
	bucket->tokens -= 1;
	return true;
}

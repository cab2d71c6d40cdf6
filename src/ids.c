#include "ids.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uuid/uuid.h>

/* Enough for 256 UUIDs per refill. */
#define RANDOM_POOL_SIZE 4096

static _Thread_local unsigned char random_pool[RANDOM_POOL_SIZE];
static _Thread_local size_t random_used = RANDOM_POOL_SIZE;
static pthread_once_t fork_guard_once = PTHREAD_ONCE_INIT;

/* A forked child must not hand out the bytes its parent will: it starts a pool of its own. */
static void forget_pool_in_child(void)
{
	random_used = RANDOM_POOL_SIZE;
}

static void guard_against_fork(void)
{
	pthread_atfork(NULL, NULL, forget_pool_in_child);
}

/* Refills the pool; when the kernel refuses (it does not, past early boot), libuuid's source serves. */
static void refill_pool(void)
{
	pthread_once(&fork_guard_once, guard_against_fork);
	size_t filled = 0;
	while (filled < RANDOM_POOL_SIZE) {
		ssize_t got = getrandom(random_pool + filled, RANDOM_POOL_SIZE - filled, 0);
		if (got <= 0)
			break;
		filled += (size_t)got;
	}
	for (; filled < RANDOM_POOL_SIZE; filled += sizeof(uuid_t)) {
		uuid_t fallback;
		uuid_generate_random(fallback);
		size_t take = RANDOM_POOL_SIZE - filled < sizeof fallback ? RANDOM_POOL_SIZE - filled : sizeof fallback;
		memcpy(random_pool + filled, fallback, take);
	}
	random_used = 0;
}

static void random_bytes(unsigned char *out, size_t count)
{
	if (RANDOM_POOL_SIZE - random_used < count)
		refill_pool();
	memcpy(out, random_pool + random_used, count);
	random_used += count;
}

/* Sets the version nibble and the RFC 4122 variant bits, then writes the text form. */
static void finish_uuid(unsigned char *bytes, unsigned version, char *out)
{
	bytes[6] = (unsigned char)((bytes[6] & 0x0f) | (version << 4));
	bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80);
	uuid_unparse_lower(bytes, out);
}

void ids_random_uuid(char *out)
{
	unsigned char bytes[16];
	random_bytes(bytes, sizeof bytes);
	finish_uuid(bytes, 4, out);
}

void ids_time_ordered_uuid(char *out)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
	unsigned char bytes[16];
	for (int i = 0; i < 6; i++)
		bytes[i] = (unsigned char)(ms >> (8 * (5 - i)));
	random_bytes(bytes + 6, sizeof bytes - 6);
	finish_uuid(bytes, 7, out);
}

bool ids_time_ordered_uuid_ms(const char *text, int64_t *ms)
{
	uuid_t bytes;
	if (text == NULL || strlen(text) != IDS_UUID_LENGTH || uuid_parse(text, bytes) != 0 || (bytes[6] >> 4) != 7 ||
	    (bytes[8] & 0xc0) != 0x80)
		return false;
	uint64_t value = 0;
	for (int i = 0; i < 6; i++)
		value = value << 8 | bytes[i];
	*ms = (int64_t)value;
	return true;
}

/*
 * Time zones of the tz database, each an object of its own, read from the
 * compiled zone files (TZif, RFC 8536) under $TZDIR or /usr/share/zoneinfo.
 *
 * Why not localtime_r() and mktime(): they convert in the single zone of
 * the process, named by the TZ environment variable. Converting in a
 * pipeline's zone would mean setenv("TZ") while the daemon's other threads
 * read the environment (libpq, librdkafka) or format times, and neither
 * setenv() nor the process-wide zone is safe to change under them. A zone
 * loaded here is never modified afterwards, so any thread may use it
 * without a lock; only loading reads a file.
 */
#ifndef SIGTRIG_TIME_ZONE_H
#define SIGTRIG_TIME_ZONE_H

#include <stddef.h>
#include <stdint.h>

/* The longest zone name accepted ("America/Argentina/ComodRivadavia" is 32). */
#define TIME_ZONE_NAME_MAX 64

struct time_zone;

/*
 * Loads the zone called `name` ("Europe/Berlin", "UTC"). "UTC" needs no
 * file. NULL with err filled when the name is malformed, tries to leave the
 * zone directory, or names no zone file.
 */
struct time_zone *time_zone_load(const char *name, char *err, size_t errsize);
void time_zone_free(struct time_zone *zone);
const char *time_zone_name(const struct time_zone *zone);

/* Seconds east of UTC in effect at `instant` (seconds since the epoch). */
long time_zone_offset_at(const struct time_zone *zone, int64_t instant);

/*
 * The instant at which the zone's clocks show `local`, given as seconds
 * since 1970-01-01 00:00 of its wall clock. A wall time shown twice (clocks
 * set back) gives the first of its two instants; one that never shows
 * (clocks set forward) is read with the offset before the change, so 02:30
 * on a night that jumps from 02:00 to 03:00 gives the instant of 03:30.
 * Assumes no two offset changes of the zone lie within a day of each other.
 */
int64_t time_zone_instant_of_local(const struct time_zone *zone, int64_t local);

#endif

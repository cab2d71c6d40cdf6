/*
 * Identifiers made in bulk on the dispatcher's hot path. libuuid's
 * uuid_generate_random() asks the kernel for 16 bytes on every call; a
 * round of thousands of claims made that a tenth of the dispatcher's time.
 * These draw from a per-thread buffer of kernel randomness instead.
 */
#ifndef SIGTRIG_IDS_H
#define SIGTRIG_IDS_H

#include <stdbool.h>
#include <stdint.h>

/* Length of a UUID's text form, without its NUL. */
#define IDS_UUID_LENGTH 36

/* A random (version 4) UUID, lowercase, into out[IDS_UUID_LENGTH + 1]. */
void ids_random_uuid(char *out);
/*
 * A time-ordered (version 7, RFC 9562) UUID: the first 48 bits are the
 * Unix time in milliseconds, the rest random. Rows keyed by them are
 * appended at the right edge of their btree index instead of touching a
 * random page each, which is what made each claim's insert expensive.
 */
void ids_time_ordered_uuid(char *out);
/*
 * The Unix time in milliseconds that a version 7 UUID (text form) was made
 * at, into *ms; false for any other text, a version 4 UUID among them.
 */
bool ids_time_ordered_uuid_ms(const char *text, int64_t *ms);

#endif

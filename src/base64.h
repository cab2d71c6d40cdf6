/*
 * Standard base64 (RFC 4648 section 4, with '=' padding): the encoding of
 * a Celery envelope's body. The decoder is strict, so a corrupted body is
 * reported instead of being decoded into garbage; only line breaks are
 * skipped, since MIME-style encoders wrap the text in lines and kombu
 * reads it so.
 */
#ifndef SIGTRIG_BASE64_H
#define SIGTRIG_BASE64_H

#include <stddef.h>

/* The text of `length` bytes, NUL-terminated, malloc'd; NULL when out of memory. */
char *base64_encode(const void *data, size_t length);

/* How many characters the text of `length` bytes has, not counting the NUL. */
size_t base64_encoded_length(size_t length);
/* Writes that text and its NUL into `text` (base64_encoded_length(length) + 1 bytes). */
void base64_encode_to(const void *data, size_t length, char *text);

/*
 * Decodes `length` characters of text. Fills *data (malloc'd, with a NUL
 * after the last byte so JSON text can be used as a string) and *decoded
 * length. CR and LF anywhere are skipped. Returns 0, or -1 with err
 * naming the offending position (counted without the line breaks).
 */
int base64_decode(const char *text, size_t length, unsigned char **data, size_t *decoded_length,
		  char *err, size_t errsize);

#endif

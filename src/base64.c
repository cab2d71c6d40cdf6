#include "base64.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_length(size_t length)
{
	return (length + 2) / 3 * 4;
}

void base64_encode_to(const void *data, size_t length, char *text)
{
	const unsigned char *bytes = data;
	char *out = text;
	size_t i = 0;
	for (; i + 3 <= length; i += 3) {
		unsigned long group = (unsigned long)bytes[i] << 16 | (unsigned long)bytes[i + 1] << 8 |
				      bytes[i + 2];
		*out++ = alphabet[group >> 18 & 63];
		*out++ = alphabet[group >> 12 & 63];
		*out++ = alphabet[group >> 6 & 63];
		*out++ = alphabet[group & 63];
	}
	if (i < length) {
		unsigned long group = (unsigned long)bytes[i] << 16;
		if (i + 1 < length)
			group |= (unsigned long)bytes[i + 1] << 8;
		*out++ = alphabet[group >> 18 & 63];
		*out++ = alphabet[group >> 12 & 63];
		*out++ = i + 1 < length ? alphabet[group >> 6 & 63] : '=';
		*out++ = '=';
	}
	*out = '\0';
}

char *base64_encode(const void *data, size_t length)
{
	char *text = malloc(base64_encoded_length(length) + 1);
	if (text != NULL)
		base64_encode_to(data, length, text);
	return text;
}

/* The 6-bit value of a base64 character, or -1. */
static int sextet_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int decode_unwrapped(const char *text, size_t length, unsigned char **data, size_t *decoded_length,
			    char *err, size_t errsize)
{
	*data = NULL;
	*decoded_length = 0;
	if (length % 4 != 0) {
		snprintf(err, errsize, "base64 length %zu is not a multiple of 4", length);
		return -1;
	}
	unsigned char *out = malloc(length / 4 * 3 + 1);
	if (out == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	size_t written = 0;
	for (size_t i = 0; i < length; i += 4) {
		/* Padding may only end the text: one '=' or two, in the last group. */
		int padding = 0;
		if (i + 4 == length)
			padding = text[i + 3] == '=' ? (text[i + 2] == '=' ? 2 : 1) : 0;
		unsigned long group = 0;
		for (int k = 0; k < 4; k++) {
			int value = k >= 4 - padding ? 0 : sextet_value((unsigned char)text[i + (size_t)k]);
			if (value < 0) {
				snprintf(err, errsize, "invalid base64 character at offset %zu",
					 i + (size_t)k);
				free(out);
				return -1;
			}
			group = group << 6 | (unsigned long)value;
		}
		out[written++] = (unsigned char)(group >> 16);
		if (padding < 2)
			out[written++] = (unsigned char)(group >> 8 & 0xff);
		if (padding < 1)
			out[written++] = (unsigned char)(group & 0xff);
	}
	out[written] = '\0';
	*data = out;
	*decoded_length = written;
	return 0;
}

int base64_decode(const char *text, size_t length, unsigned char **data, size_t *decoded_length,
		  char *err, size_t errsize)
{
	if (memchr(text, '\n', length) == NULL && memchr(text, '\r', length) == NULL)
		return decode_unwrapped(text, length, data, decoded_length, err, errsize);
	/* MIME-style text wrapped in lines (Python's base64.encodebytes, at 76), which kombu decodes too. */
	char *joined = malloc(length + 1);
	if (joined == NULL) {
		*data = NULL;
		*decoded_length = 0;
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	size_t kept = 0;
	for (size_t i = 0; i < length; i++)
		if (text[i] != '\n' && text[i] != '\r')
			joined[kept++] = text[i];
	int status = decode_unwrapped(joined, kept, data, decoded_length, err, errsize);
	free(joined);
	return status;
}

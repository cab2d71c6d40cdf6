/* The schema, as an ordered list of migrations (see migrations.c). */
#ifndef SIGTRIG_MIGRATIONS_H
#define SIGTRIG_MIGRATIONS_H

#include <stddef.h>

struct migration {
	int version;
	const char *name;
	const char *sql;
};

const struct migration *migrations_list(size_t *count);

#endif

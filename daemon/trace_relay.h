/* Publishes trace events on Redis (see trace_relay.c). */
#ifndef SIGTRIG_TRACE_RELAY_H
#define SIGTRIG_TRACE_RELAY_H

#include <stddef.h>

#include "daemon.h"

int trace_relay_start(struct daemon *daemon, char *err, size_t errsize);
void trace_relay_stop(void);

#endif

#include "skip_reason.h"

#include <string.h>

static const char *const skip_reason_names[SKIP_REASON_COUNT] = {
#define SKIP_REASON(name) #name,
	SKIP_REASONS
#undef SKIP_REASON
};

const char *skip_reason_name(enum skip_reason reason)
{
	if ((unsigned)reason >= SKIP_REASON_COUNT)
		return "unknown";
	return skip_reason_names[reason];
}

bool skip_reason_from_name(const char *name, enum skip_reason *reason)
{
	for (int i = 0; i < SKIP_REASON_COUNT; i++) {
		if (strcmp(skip_reason_names[i], name) == 0) {
			*reason = (enum skip_reason)i;
			return true;
		}
	}
	return false;
}

/* Retry backoff (see task_retry.h). */
#include "task_retry.h"

#include <math.h>

/* 2^30 times any base is past every max_s allowed: no need to compute beyond. */
#define RETRY_EXPONENT_CAP 30

double task_retry_delay_s(int retries, double base_s, double max_s, double unit_random)
{
	int exponent = retries < 0 ? 0 : retries > RETRY_EXPONENT_CAP ? RETRY_EXPONENT_CAP : retries;
	double delay = base_s * ldexp(1.0, exponent);
	if (delay > max_s)
		delay = max_s;
	if (!(unit_random >= 0) || unit_random >= 1)
		unit_random = 0.5;
	return delay * (0.5 + unit_random / 2);
}

int task_retries_of(const json_t *envelope)
{
	const json_t *retries = json_object_get(json_object_get(envelope, "headers"), "retries");
	if (!json_is_integer(retries) || json_integer_value(retries) < 0)
		return 0;
	json_int_t value = json_integer_value(retries);
	return value > 1000000 ? 1000000 : (int)value;
}

/*
 * The execute_pipeline envelope written as text, without jansson: the
 * dispatcher's fast path inside celery_execute_pipeline_task(). Declared
 * here, apart from celery.h, so that tests/test_celery.c can hold it to
 * celery_envelope_build() byte for byte with a delivery tag of its own
 * choosing; the daemon and the tools call celery_execute_pipeline_task().
 */
#ifndef SIGTRIG_CELERY_DIRECT_H
#define SIGTRIG_CELERY_DIRECT_H

#include <jansson.h>
#include <stddef.h>

/* One execute_pipeline call, every part given. */
struct celery_pipeline_call {
	const char *pipeline_id;
	const json_t *signal_ids; /* array of strings; NULL for [] */
	const char *execution_id;
	const char *queue;
	const char *task_id;
	const char *delivery_tag;
};

/*
 * The envelope text (malloc'd) that celery_envelope_build() writes for
 * the call, with the kwargs of celery_execute_pipeline_kwargs(). NULL when
 * a part is not plain, that is not only [A-Za-z0-9._:@-] (it would need
 * escaping in JSON or in a Python repr, or it is empty), or out of
 * memory: the caller then takes celery_envelope_build().
 */
char *celery_execute_pipeline_direct(const struct celery_pipeline_call *call);
/*
 * The same envelope through celery_envelope_build(): the path for a call
 * whose parts are not plain, and the definition the direct text is held
 * to. NULL with err filled when it cannot be built.
 */
char *celery_execute_pipeline_generic(const struct celery_pipeline_call *call, char *err, size_t errsize);

#endif

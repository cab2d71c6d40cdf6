/*
 * The worker stand-in: takes the dispatcher's Celery tasks off the Redis
 * list as soon as they land, and finishes their executions so that the
 * pipelines can be claimed again. It runs no agents: the benchmark
 * measures the dispatcher. A run's time (--run-ms) decides only how
 * many signals find their pipeline busy: each execution is finished that
 * long after its task was popped, as by a fleet with a worker free for
 * every task; 0 finishes it at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"
#include "celery.h"
#include "db.h"
#include "loadgen.h"
#include "redis_client.h"
#include "timeutil.h"

/* Tasks one RPOP brings at most: enough to empty a dispatcher batch in a few round trips. */
#define POP_CHUNK 512
/*
 * Executions one UPDATE finishes at most. Workers finish one run per
 * transaction, holding its row for a moment; a bulk UPDATE holds all of
 * its rows until it commits, and a claim of one of those pipelines waits
 * for it to know whether the run is still live. 2,000 made the
 * dispatcher's statements wait on the drain for a third of their time.
 */
#define FINISH_CHUNK 100

static void note_failure(struct drain *drain, const char *what, const char *why)
{
	pthread_mutex_lock(&drain->inbox_lock);
	if (drain->error[0] == '\0')
		snprintf(drain->error, sizeof drain->error, "%s: %s", what, why);
	pthread_mutex_unlock(&drain->inbox_lock);
}

/* Copies the envelope of a reply element into the inbox. Called with inbox_lock held. */
static bool inbox_append(struct drain *drain, const redisReply *element, int64_t popped_us)
{
	if (element->type != REDIS_REPLY_STRING)
		return false;
	if (drain->inbox_count == drain->inbox_capacity) {
		size_t capacity = drain->inbox_capacity == 0 ? 1024 : drain->inbox_capacity * 2;
		struct popped_task *grown = realloc(drain->inbox, capacity * sizeof *grown);
		if (grown == NULL)
			return false;
		drain->inbox = grown;
		drain->inbox_capacity = capacity;
	}
	char *text = malloc(element->len + 1);
	if (text == NULL)
		return false;
	memcpy(text, element->str, element->len);
	text[element->len] = '\0';
	struct popped_task *task = &drain->inbox[drain->inbox_count++];
	task->text = text;
	task->length = element->len;
	task->popped_us = popped_us;
	return true;
}

/* Moves the elements of one reply to the inbox; returns how many. */
static size_t inbox_take_reply(struct drain *drain, const redisReply *reply, size_t first, int64_t popped_us)
{
	size_t taken = 0;
	pthread_mutex_lock(&drain->inbox_lock);
	for (size_t i = first; i < reply->elements; i++)
		taken += inbox_append(drain, reply->element[i], popped_us);
	pthread_cond_signal(&drain->inbox_ready);
	pthread_mutex_unlock(&drain->inbox_lock);
	return taken;
}

/*
 * Does nothing but pop, so that a task's pop time lags its LPUSH by about
 * one round trip: BRPOP waits for the first task, then RPOP with a count
 * takes the rest of the batch.
 */
static void *popper_main(void *argument)
{
	struct drain *drain = argument;
	char err[256];
	while (!atomic_load(&drain->stopping)) {
		if (drain->redis == NULL || drain->redis->err) {
			redisFree(drain->redis);
			drain->redis = redis_connect_url(drain->redis_url, 0, err, sizeof err);
			if (drain->redis == NULL) {
				note_failure(drain, "redis", err);
				nanosleep(&(struct timespec){ 0, 200 * 1000000L }, NULL);
				continue;
			}
		}
		/* A short block, so that a stop request is seen within 0.2 s. */
		redisReply *reply = redisCommand(drain->redis, "BRPOP %s 0.2", drain->queue);
		if (reply == NULL)
			continue;
		int64_t popped_us = wall_clock_us();
		size_t taken = 0;
		if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
			taken = inbox_take_reply(drain, reply, 1, popped_us);
		freeReplyObject(reply);
		for (size_t got = taken; got > 0;) {
			reply = redisCommand(drain->redis, "RPOP %s %d", drain->queue, POP_CHUNK);
			if (reply == NULL)
				break;
			popped_us = wall_clock_us();
			got = reply->type == REDIS_REPLY_ARRAY ? inbox_take_reply(drain, reply, 0, popped_us) : 0;
			taken += got;
			bool full = reply->type == REDIS_REPLY_ARRAY && reply->elements == POP_CHUNK;
			freeReplyObject(reply);
			if (!full)
				break;
		}
		if (taken > 0)
			atomic_fetch_add(&drain->tasks_popped, (long long)taken);
	}
	return NULL;
}

/*
 * The drain reads each task's ids straight from its text, and parses one
 * task in VERIFY_EVERY fully with celery_envelope_parse() to check the
 * two agree. Parsing every task (two JSON documents and a base64 body)
 * made the drain the largest user of CPU after PostgreSQL, on the two
 * cores the dispatcher and its servers share with it; a real worker runs
 * elsewhere.
 */
#define VERIFY_EVERY 64

/* The ids of one execute_pipeline task: its execution, and the text of its signal_ids array. */
struct task_ids {
	char execution_id[CELERY_ID_SIZE];
	unsigned char *body; /* decoded, owns the text below */
	const char *signal_ids; /* just after the '[' */
};

/* The plain (unescaped) string value that follows `prefix` in text; NULL if there is none. */
static const char *plain_string_after(const char *text, const char *prefix, size_t *length)
{
	const char *start = strstr(text, prefix);
	if (start == NULL)
		return NULL;
	start += strlen(prefix);
	const char *end = strchr(start, '"');
	if (end == NULL || memchr(start, '\\', (size_t)(end - start)) != NULL)
		return NULL;
	*length = (size_t)(end - start);
	return start;
}

/*
 * Reads the ids of an envelope as the dispatcher writes it (compact JSON,
 * body first). False for anything else: the caller parses it fully then.
 */
static bool task_ids_read(const struct popped_task *task, struct task_ids *ids)
{
	memset(ids, 0, sizeof *ids);
	static const char body_prefix[] = "{\"body\":\"";
	if (strncmp(task->text, body_prefix, sizeof body_prefix - 1) != 0)
		return false;
	size_t length, decoded_length;
	const char *body = plain_string_after(task->text, body_prefix, &length);
	char err[128];
	if (body == NULL || base64_decode(body, length, &ids->body, &decoded_length, err, sizeof err) != 0)
		return false;
	const char *text = (const char *)ids->body;
	const char *execution = plain_string_after(text, "\"execution_id\":\"", &length);
	const char *signal_ids = strstr(text, "\"signal_ids\":[");
	if (execution == NULL || length >= sizeof ids->execution_id || signal_ids == NULL) {
		free(ids->body);
		ids->body = NULL;
		return false;
	}
	memcpy(ids->execution_id, execution, length);
	ids->signal_ids = signal_ids + strlen("\"signal_ids\":[");
	return true;
}

/* The next id of a signal_ids array's text into id; false at its end or at anything but a plain string. */
static bool task_ids_next_signal(const char **cursor, char *id, size_t size)
{
	const char *at = *cursor;
	if (*at == ',')
		at++;
	if (*at != '"')
		return false;
	const char *end = strchr(at + 1, '"');
	size_t length = end != NULL ? (size_t)(end - at - 1) : 0;
	if (end == NULL || length >= size || memchr(at + 1, '\\', length) != NULL)
		return false;
	memcpy(id, at + 1, length);
	id[length] = '\0';
	*cursor = end + 1;
	return true;
}

/* Whether the fully parsed task holds the same ids as the text read: any difference fails the run. */
static bool task_ids_agree(const struct task_ids *ids, const struct celery_task *decoded)
{
	const char *execution = json_string_value(json_object_get(decoded->kwargs, "execution_id"));
	if (execution == NULL || strcmp(execution, ids->execution_id) != 0)
		return false;
	const char *cursor = ids->signal_ids;
	char id[128];
	size_t index;
	const json_t *signal_id;
	json_array_foreach(json_object_get(decoded->kwargs, "signal_ids"), index, signal_id) {
		const char *parsed = json_string_value(signal_id);
		if (parsed == NULL || !task_ids_next_signal(&cursor, id, sizeof id) || strcmp(id, parsed) != 0)
			return false;
	}
	return *cursor == ']';
}

/* The ids of a task by a full parse, for one the text reading does not take. */
static bool task_ids_parse(const struct popped_task *task, struct task_ids *ids)
{
	memset(ids, 0, sizeof *ids);
	struct celery_task decoded;
	char err[256];
	bool read = celery_envelope_parse(task->text, task->length, &decoded, err, sizeof err) == 0;
	const char *execution = read ? json_string_value(json_object_get(decoded.kwargs, "execution_id")) : NULL;
	char *signal_ids = read ? json_dumps(json_object_get(decoded.kwargs, "signal_ids"), JSON_COMPACT) : NULL;
	read = execution != NULL && strlen(execution) < sizeof ids->execution_id && signal_ids != NULL &&
	       signal_ids[0] == '[';
	if (read) {
		snprintf(ids->execution_id, sizeof ids->execution_id, "%s", execution);
		ids->body = (unsigned char *)signal_ids;
		ids->signal_ids = signal_ids + 1;
	} else {
		free(signal_ids);
	}
	celery_task_free(&decoded);
	return read;
}

/*
 * Records, for each signal of ours in the task, its enqueue time (the
 * first task of a signal that started several runs is the one that
 * counts), and returns the execution to finish in execution_id.
 */
static bool drain_record_task(struct drain *drain, const struct popped_task *task, char *execution_id)
{
	struct task_ids ids;
	bool read = task_ids_read(task, &ids);
	long long decoded = atomic_fetch_add(&drain->tasks_decoded, 1);
	if (read && decoded % VERIFY_EVERY == 0) {
		struct celery_task parsed;
		char err[256];
		if (celery_envelope_parse(task->text, task->length, &parsed, err, sizeof err) != 0 ||
		    !task_ids_agree(&ids, &parsed))
			note_failure(drain, "task", "the ids read from a task's text differ from its parse");
		celery_task_free(&parsed);
	}
	if (!read)
		read = task_ids_parse(task, &ids);
	bool ours = false;
	execution_id[0] = '\0';
	if (read && db_is_uuid(ids.execution_id))
		snprintf(execution_id, CELERY_ID_SIZE, "%s", ids.execution_id);
	char id[128];
	for (const char *cursor = ids.signal_ids; read && task_ids_next_signal(&cursor, id, sizeof id);) {
		uint64_t sequence;
		if (!signal_ledger_sequence(drain->ledger, id, &sequence))
			continue;
		ours = true;
		struct ledger_entry *entry = &drain->ledger->entries[sequence];
		/* This thread is the only writer of enqueued_us. */
		if (atomic_load_explicit(&entry->enqueued_us, memory_order_relaxed) == 0)
			atomic_store_explicit(&entry->enqueued_us, task->popped_us, memory_order_relaxed);
	}
	free(ids.body);
	atomic_fetch_add(ours ? &drain->tasks_of_run : &drain->tasks_unknown, 1);
	return execution_id[0] != '\0';
}

/* An execution whose task was taken and that is still to be marked SUCCEEDED. */
struct unfinished_execution {
	char id[CELERY_ID_SIZE];
	int attempts;
	int64_t due_us; /* when its run is over: its pop plus the run's time */
};

/*
 * What a worker does at the end of a run, for up to FINISH_CHUNK runs in
 * one statement. Rows locked by someone else (the reconciler, a rerun)
 * are skipped, not waited for: a bulk UPDATE that waited on row locks
 * could deadlock with another. The ids
 * settled (finished here, or not live any more) are set to "", so that the
 * caller keeps the others for a retry.
 */
static void drain_finish_chunk(struct drain *drain, struct unfinished_execution *executions, size_t count)
{
	const char *items[FINISH_CHUNK];
	for (size_t i = 0; i < count; i++)
		items[i] = executions[i].id;
	char *literal = db_text_array_literal(items, count);
	char err[512];
	const char *values[] = { literal };
	PGresult *result = literal == NULL || db_ensure(&drain->db, drain->postgres_url, err, sizeof err) == NULL
				   ? NULL
				   : db_query(drain->db,
					      "WITH held AS (SELECT id, status FROM executions WHERE id = ANY($1::uuid[])"
					      "              FOR UPDATE SKIP LOCKED),"
					      " finished AS (UPDATE executions e SET status = 'SUCCEEDED', finished_at = now()"
					      "              FROM held WHERE e.id = held.id AND held.status IN ('PENDING', 'RUNNING')"
					      "              RETURNING e.id)"
					      " SELECT id::text, (SELECT count(*) FROM finished) FROM held ORDER BY id::text COLLATE \"C\"",
					      1, values, err, sizeof err);
	free(literal);
	if (result == NULL) {
		note_failure(drain, "postgres", literal == NULL ? "out of memory" : err);
		return;
	}
	int rows = PQntuples(result);
	if (rows > 0)
		atomic_fetch_add(&drain->executions_finished, atoll(PQgetvalue(result, 0, 1)));
	/* The rows come sorted: look each id up among them. */
	for (size_t i = 0; i < count && rows > 0; i++) {
		const char *wanted = executions[i].id;
		int low = 0, high = rows - 1;
		while (low <= high) {
			int middle = (low + high) / 2;
			int order = strcmp(PQgetvalue(result, middle, 0), wanted);
			if (order == 0) {
				executions[i].id[0] = '\0';
				break;
			}
			if (order < 0)
				low = middle + 1;
			else
				high = middle - 1;
		}
	}
	PQclear(result);
}

/*
 * Finishes what it can of the `*count` executions whose run is over and
 * keeps the rest, in order, for the next pass; an execution still not
 * finished after many passes (some 10 s) is given up and counted as a
 * failure. Every run takes the same time, so those over come first.
 */
static void drain_finish_executions(struct drain *drain, struct unfinished_execution *executions, size_t *count)
{
	int64_t now = wall_clock_us();
	size_t due = 0;
	while (due < *count && executions[due].due_us <= now)
		due++;
	for (size_t start = 0; start < due; start += FINISH_CHUNK) {
		size_t chunk = due - start;
		if (chunk > FINISH_CHUNK)
			chunk = FINISH_CHUNK;
		drain_finish_chunk(drain, executions + start, chunk);
	}
	size_t kept = 0;
	for (size_t i = 0; i < *count; i++) {
		if (executions[i].id[0] == '\0')
			continue;
		if (i < due && ++executions[i].attempts >= 100) {
			atomic_fetch_add(&drain->finish_failures, 1);
			continue;
		}
		executions[kept++] = executions[i];
	}
	*count = kept;
}

/* Takes the whole inbox, waiting for one while there is nothing to retry. Returns false once stopping. */
static bool finisher_take_inbox(struct drain *drain, bool retries_waiting, struct popped_task **tasks, size_t *count,
				struct popped_task **spare, size_t *spare_capacity)
{
	pthread_mutex_lock(&drain->inbox_lock);
	struct timespec deadline = time_deadline_after_ms(retries_waiting ? 20 : 100);
	while (drain->inbox_count == 0 && !atomic_load(&drain->stopping))
		if (pthread_cond_timedwait(&drain->inbox_ready, &drain->inbox_lock, &deadline) != 0) {
			if (retries_waiting)
				break;
			deadline = time_deadline_after_ms(100);
		}
	if (drain->inbox_count == 0 && atomic_load(&drain->stopping)) {
		pthread_mutex_unlock(&drain->inbox_lock);
		return false;
	}
	/* Swap the inbox for the spare array: the popper never waits on our decoding. */
	size_t capacity = drain->inbox_capacity;
	*tasks = drain->inbox;
	*count = drain->inbox_count;
	drain->inbox = *spare;
	drain->inbox_capacity = *spare_capacity;
	drain->inbox_count = 0;
	drain->finisher_busy = true;
	*spare = NULL;
	*spare_capacity = capacity;
	pthread_mutex_unlock(&drain->inbox_lock);
	return true;
}

static void *finisher_main(void *argument)
{
	struct drain *drain = argument;
	struct popped_task *spare = NULL, *tasks;
	size_t spare_capacity = 0, count, unfinished_count = 0, unfinished_capacity = 0;
	struct unfinished_execution *unfinished = NULL;
	while (finisher_take_inbox(drain, unfinished_count > 0, &tasks, &count, &spare, &spare_capacity)) {
		if (unfinished_count + count > unfinished_capacity) {
			size_t capacity = (unfinished_count + count) * 2;
			struct unfinished_execution *grown = realloc(unfinished, capacity * sizeof *grown);
			if (grown != NULL) {
				unfinished = grown;
				unfinished_capacity = capacity;
			}
		}
		for (size_t i = 0; i < count; i++) {
			if (unfinished_count < unfinished_capacity &&
			    drain_record_task(drain, &tasks[i], unfinished[unfinished_count].id)) {
				unfinished[unfinished_count].attempts = 0;
				unfinished[unfinished_count++].due_us = tasks[i].popped_us + drain->run_us;
			}
			free(tasks[i].text);
		}
		spare = tasks;
		drain_finish_executions(drain, unfinished, &unfinished_count);
		pthread_mutex_lock(&drain->inbox_lock);
		drain->finisher_busy = unfinished_count > 0;
		pthread_mutex_unlock(&drain->inbox_lock);
	}
	free(spare);
	free(unfinished);
	return NULL;
}

int drain_start(struct drain *drain, struct signal_ledger *ledger, const char *redis_url, const char *queue,
		const char *postgres_url, int64_t run_us, char *err, size_t errsize)
{
	memset(drain, 0, sizeof *drain);
	drain->run_us = run_us;
	pthread_mutex_init(&drain->inbox_lock, NULL);
	pthread_cond_init(&drain->inbox_ready, NULL);
	drain->ledger = ledger;
	drain->redis_url = redis_url;
	drain->queue = queue;
	drain->postgres_url = postgres_url;
	drain->redis = redis_connect_url(redis_url, 0, err, errsize);
	if (drain->redis == NULL)
		return -1;
	drain->db = db_connect(postgres_url, err, errsize);
	if (drain->db == NULL) {
		redisFree(drain->redis);
		return -1;
	}
	drain->db_backend_pid = (pid_t)PQbackendPID(drain->db);
	if (pthread_create(&drain->popper, NULL, popper_main, drain) != 0) {
		snprintf(err, errsize, "cannot start the popping thread");
		return -1;
	}
	if (pthread_create(&drain->finisher, NULL, finisher_main, drain) != 0) {
		atomic_store(&drain->stopping, true);
		pthread_join(drain->popper, NULL);
		snprintf(err, errsize, "cannot start the finishing thread");
		return -1;
	}
	return 0;
}

bool drain_is_idle(struct drain *drain)
{
	pthread_mutex_lock(&drain->inbox_lock);
	bool idle = drain->inbox_count == 0 && !drain->finisher_busy;
	pthread_mutex_unlock(&drain->inbox_lock);
	return idle;
}

void drain_stop(struct drain *drain)
{
	atomic_store(&drain->stopping, true);
	pthread_join(drain->popper, NULL);
	pthread_join(drain->finisher, NULL);
	redisFree(drain->redis);
	PQfinish(drain->db);
	for (size_t i = 0; i < drain->inbox_count; i++)
		free(drain->inbox[i].text);
	free(drain->inbox);
}

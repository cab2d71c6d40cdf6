#include "celery_broker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "celery.h"
#include "timeutil.h"

/* kombu's unacked_mutex_expire: a scan that dies holding the lock frees it after 5 minutes. */
#define CELERY_MUTEX_EXPIRE_MS "300000"
/* kombu restores 10 tags per batch; a scan takes batches until none is left, within reason. */
#define CELERY_RESTORE_BATCH 10
#define CELERY_RESTORE_MAX_BATCHES 100
#define CELERY_PRIORITY_LISTS 4
#define CELERY_LIST_NAME_MAX 512

/*
 * A Lua script run by EVALSHA, loaded on first use and again after the
 * server forgets it (restart, SCRIPT FLUSH). The digest is the same for
 * every connection, so it is shared; script_lock guards it.
 */
struct broker_script {
	const char *source;
	char sha[41];
};

static pthread_mutex_t script_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * KEYS: the queue's lists in the order they are served, then unacked_index,
 * unacked and the dead-letter list. ARGV: now (Unix seconds), the queue
 * name (routing key of an envelope without delivery_info), now as ISO text.
 * The unacked value embeds the envelope text exactly as popped.
 */
static struct broker_script take_script = {
	"local lists = #KEYS - 3\n"
	"local index, unacked, dead = KEYS[lists + 1], KEYS[lists + 2], KEYS[lists + 3]\n"
	"for i = 1, lists do\n"
	"  local raw = redis.call('RPOP', KEYS[i])\n"
	"  if raw then\n"
	"    local ok, message = pcall(cjson.decode, raw)\n"
	"    local reason\n"
	"    if not ok or type(message) ~= 'table' then\n"
	"      reason = 'envelope: not a JSON object'\n"
	"    else\n"
	"      local properties = message['properties']\n"
	"      local tag = type(properties) == 'table' and properties['delivery_tag'] or nil\n"
	"      if type(tag) ~= 'string' or tag == '' then\n"
	"        reason = 'properties.delivery_tag: missing or not a string'\n"
	"      elseif redis.call('HEXISTS', unacked, tag) == 1 then\n"
	"        reason = 'properties.delivery_tag: already in flight (duplicate tag)'\n"
	"      else\n"
	"        local info = properties['delivery_info']\n"
	"        local exchange, routing_key = '', ARGV[2]\n"
	"        if type(info) == 'table' then\n"
	"          if type(info['exchange']) == 'string' then exchange = info['exchange'] end\n"
	"          if type(info['routing_key']) == 'string' then routing_key = info['routing_key'] end\n"
	"        end\n"
	"        redis.call('ZADD', index, ARGV[1], tag)\n"
	"        redis.call('HSET', unacked, tag, '[' .. raw .. ', ' .. cjson.encode(exchange) ..\n"
	"                   ', ' .. cjson.encode(routing_key) .. ']')\n"
	"        return {'task', raw, tag}\n"
	"      end\n"
	"    end\n"
	"    redis.call('LPUSH', dead, cjson.encode({reason = reason, queue = KEYS[i],\n"
	"                                            time = ARGV[3], envelope = raw}))\n"
	"    return {'dead', raw, reason}\n"
	"  end\n"
	"end\n"
	"return false\n",
	""
};

/*
 * Moves one unacked message to a list, provided its unacked value is still
 * the one the caller read (else another worker acked or restored it).
 * Comparing the value replaces kombu's WATCH on the whole hash, which
 * aborts whenever any worker takes or acks anything.
 * KEYS: unacked_index, unacked, target list. ARGV: tag, value read, text
 * to push, push command (RPUSH to run next, LPUSH for the dead letters).
 */
static struct broker_script move_script = {
	"if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end\n"
	"redis.call('ZREM', KEYS[1], ARGV[1])\n"
	"redis.call('HDEL', KEYS[2], ARGV[1])\n"
	"redis.call(ARGV[4], KEYS[3], ARGV[3])\n"
	"return 1\n",
	""
};

/* kombu's Mutex release: delete the lock only while it is still ours. */
static struct broker_script release_script = {
	"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
	"return 0\n",
	""
};

static int reply_failure(redisContext *redis, redisReply *reply, const char *what, char *err,
			 size_t errsize)
{
	if (reply == NULL)
		snprintf(err, errsize, "redis %s: %s", what, redis->errstr[0] ? redis->errstr : "no reply");
	else if (reply->type == REDIS_REPLY_ERROR)
		snprintf(err, errsize, "redis %s: %s", what, reply->str);
	else
		snprintf(err, errsize, "redis %s: unexpected reply type %d", what, reply->type);
	freeReplyObject(reply);
	return -1;
}

static int load_script(redisContext *redis, struct broker_script *script, char *err, size_t errsize)
{
	redisReply *reply = redisCommand(redis, "SCRIPT LOAD %s", script->source);
	if (reply == NULL || reply->type != REDIS_REPLY_STRING || reply->len != 40)
		return reply_failure(redis, reply, "SCRIPT LOAD", err, errsize);
	pthread_mutex_lock(&script_lock);
	memcpy(script->sha, reply->str, 40);
	script->sha[40] = '\0';
	pthread_mutex_unlock(&script_lock);
	freeReplyObject(reply);
	return 0;
}

/*
 * EVALSHA with `keys` keys then the other arguments. Returns the reply
 * (never an error reply), or NULL with err filled.
 */
static redisReply *run_script(redisContext *redis, struct broker_script *script, int keys, int argc,
			      const char **argv, const size_t *lengths, char *err, size_t errsize)
{
	const char *full[16];
	size_t full_lengths[16];
	char key_count[12];
	if (argc + 3 > 16) {
		snprintf(err, errsize, "redis EVALSHA: too many arguments");
		return NULL;
	}
	snprintf(key_count, sizeof key_count, "%d", keys);
	char sha[41];
	for (int attempt = 0; attempt < 2; attempt++) {
		pthread_mutex_lock(&script_lock);
		memcpy(sha, script->sha, sizeof sha);
		pthread_mutex_unlock(&script_lock);
		if (sha[0] == '\0') {
			if (load_script(redis, script, err, errsize) != 0)
				return NULL;
			continue;
		}
		full[0] = "EVALSHA";
		full[1] = sha;
		full[2] = key_count;
		full_lengths[0] = 7;
		full_lengths[1] = 40;
		full_lengths[2] = strlen(key_count);
		for (int i = 0; i < argc; i++) {
			full[i + 3] = argv[i];
			full_lengths[i + 3] = lengths != NULL ? lengths[i] : strlen(argv[i]);
		}
		redisReply *reply = redisCommandArgv(redis, argc + 3, full, full_lengths);
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
		    strncmp(reply->str, "NOSCRIPT", 8) == 0) {
			freeReplyObject(reply);
			if (load_script(redis, script, err, errsize) != 0)
				return NULL;
			continue;
		}
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
			reply_failure(redis, reply, "EVALSHA", err, errsize);
			return NULL;
		}
		return reply;
	}
	snprintf(err, errsize, "redis EVALSHA: script could not be loaded");
	return NULL;
}

/* One command of a transaction. */
struct redis_command {
	int argc;
	const char *argv[4];
};

/* MULTI, the commands, EXEC, pipelined; fails when any of them failed. */
static int run_transaction(redisContext *redis, struct redis_command *commands, size_t count,
			   const char *what, char *err, size_t errsize)
{
	redisAppendCommand(redis, "MULTI");
	for (size_t i = 0; i < count; i++)
		redisAppendCommandArgv(redis, commands[i].argc, commands[i].argv, NULL);
	redisAppendCommand(redis, "EXEC");
	int status = 0;
	for (size_t i = 0; i < count + 2; i++) {
		redisReply *reply = NULL;
		if (redisGetReply(redis, (void **)&reply) != REDIS_OK)
			return reply_failure(redis, NULL, what, err, errsize);
		bool last = i == count + 1;
		if (status == 0 && (reply->type == REDIS_REPLY_ERROR ||
				    (last && reply->type != REDIS_REPLY_ARRAY))) {
			status = reply_failure(redis, reply, what, err, errsize);
			continue;
		}
		if (status == 0 && last) {
			for (size_t k = 0; k < reply->elements; k++)
				if (reply->element[k]->type == REDIS_REPLY_ERROR) {
					snprintf(err, errsize, "redis %s: %s", what, reply->element[k]->str);
					status = -1;
				}
		}
		freeReplyObject(reply);
	}
	return status;
}

void celery_taken_free(struct celery_taken *taken)
{
	free(taken->text);
	free(taken->delivery_tag);
	memset(taken, 0, sizeof *taken);
}

int celery_broker_take(redisContext *redis, const char *queue, struct celery_taken *taken, char *err,
		       size_t errsize)
{
	memset(taken, 0, sizeof *taken);
	static const int priority_steps[CELERY_PRIORITY_LISTS] = { 0, 3, 6, 9 };
	char lists[CELERY_PRIORITY_LISTS][CELERY_LIST_NAME_MAX];
	const char *argv[CELERY_PRIORITY_LISTS + 6];
	int argc = 0;
	for (int i = 0; i < CELERY_PRIORITY_LISTS; i++) {
		celery_priority_queue(queue, priority_steps[i], lists[i], sizeof lists[i]);
		argv[argc++] = lists[i];
	}
	argv[argc++] = CELERY_UNACKED_INDEX;
	argv[argc++] = CELERY_UNACKED;
	argv[argc++] = CELERY_DEAD_LETTER_LIST;
	/* kombu scores with the worker's time.time(); the restore scan compares with the same clock. */
	char now[32], now_text[40];
	double now_seconds = time_now_seconds();
	snprintf(now, sizeof now, "%.7f", now_seconds);
	time_format_iso8601(now_seconds, now_text, sizeof now_text);
	argv[argc++] = now;
	argv[argc++] = queue;
	argv[argc++] = now_text;
	redisReply *reply = run_script(redis, &take_script, CELERY_PRIORITY_LISTS + 3, argc, argv, NULL,
				       err, errsize);
	if (reply == NULL)
		return CELERY_TAKE_ERROR;
	if (reply->type == REDIS_REPLY_NIL) {
		freeReplyObject(reply);
		return CELERY_TAKE_EMPTY;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_STRING)
		return reply_failure(redis, reply, "take", err, errsize);
	bool dead = strcmp(reply->element[0]->str, "dead") == 0;
	taken->length = reply->element[1]->len;
	taken->text = malloc(taken->length + 1);
	if (taken->text == NULL) {
		freeReplyObject(reply);
		/* The message is in unacked: the restore scan gives it back. */
		snprintf(err, errsize, "out of memory taking a message");
		return CELERY_TAKE_ERROR;
	}
	memcpy(taken->text, reply->element[1]->str, taken->length);
	taken->text[taken->length] = '\0';
	if (reply->element[2]->type == REDIS_REPLY_STRING) {
		if (dead)
			snprintf(taken->reason, sizeof taken->reason, "%s", reply->element[2]->str);
		else
			taken->delivery_tag = strdup(reply->element[2]->str);
	}
	freeReplyObject(reply);
	if (!dead && taken->delivery_tag == NULL) {
		celery_taken_free(taken);
		snprintf(err, errsize, "out of memory taking a message");
		return CELERY_TAKE_ERROR;
	}
	return dead ? CELERY_TAKE_DEAD_LETTERED : CELERY_TAKE_TASK;
}

int celery_broker_ack(redisContext *redis, const char *delivery_tag, char *err, size_t errsize)
{
	struct redis_command commands[] = {
		{ 3, { "ZREM", CELERY_UNACKED_INDEX, delivery_tag } },
		{ 3, { "HDEL", CELERY_UNACKED, delivery_tag } },
	};
	return run_transaction(redis, commands, 2, "ack", err, errsize);
}

int celery_broker_reject(redisContext *redis, const char *delivery_tag, const char *dead_letter_entry,
			 char *err, size_t errsize)
{
	struct redis_command commands[] = {
		{ 3, { "LPUSH", CELERY_DEAD_LETTER_LIST, dead_letter_entry } },
		{ 3, { "ZREM", CELERY_UNACKED_INDEX, delivery_tag } },
		{ 3, { "HDEL", CELERY_UNACKED, delivery_tag } },
	};
	return run_transaction(redis, commands, delivery_tag != NULL ? 3 : 1, "reject", err, errsize);
}

int celery_broker_store_result(redisContext *redis, const char *task_id, const char *result_json,
			       long expires_s, char *err, size_t errsize)
{
	size_t key_size = strlen(CELERY_RESULT_PREFIX) + strlen(task_id) + 1;
	char *key = malloc(key_size);
	if (key == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	snprintf(key, key_size, "%s%s", CELERY_RESULT_PREFIX, task_id);
	char expires[24];
	snprintf(expires, sizeof expires, "%ld", expires_s);
	/* AsyncResult.get() GETs once, then only listens: a result must be both stored and published. */
	struct redis_command commands[] = {
		{ 4, { "SETEX", key, expires, result_json } },
		{ 3, { "PUBLISH", key, result_json } },
	};
	int status = run_transaction(redis, commands, 2, "store result", err, errsize);
	free(key);
	return status;
}

/*
 * Decides where an unacked value goes: its envelope, marked redelivered,
 * to the list of its routing key and priority; a value that is not
 * [envelope, exchange, routing_key] to the dead letters. Fills *target and
 * returns the text to push (malloc'd).
 */
static char *restored_text(const char *value, size_t length, const char *queue, char *target,
			   size_t target_size, bool *dead)
{
	json_t *entry = json_loadb(value, length, 0, NULL);
	json_t *envelope = json_array_get(entry, 0);
	const char *routing_key = json_string_value(json_array_get(entry, 2));
	char *text = NULL;
	*dead = !json_is_array(entry) || celery_envelope_set_redelivered(envelope) != 0;
	if (!*dead) {
		if (routing_key == NULL || routing_key[0] == '\0')
			routing_key = queue;
		celery_priority_queue(routing_key, celery_envelope_priority(envelope), target,
				      target_size);
		text = json_dumps(envelope, JSON_COMPACT | JSON_ENSURE_ASCII);
	} else {
		snprintf(target, target_size, "%s", CELERY_DEAD_LETTER_LIST);
		text = celery_dead_letter_entry(value, length,
						"unacked entry is not [envelope, exchange, routing_key]",
						queue);
	}
	json_decref(entry);
	return text;
}

int celery_broker_restore(redisContext *redis, const char *delivery_tag, const char *queue, char *err,
			  size_t errsize)
{
	redisReply *held = redisCommand(redis, "HGET %s %s", CELERY_UNACKED, delivery_tag);
	if (held == NULL || (held->type != REDIS_REPLY_STRING && held->type != REDIS_REPLY_NIL))
		return reply_failure(redis, held, "HGET unacked", err, errsize);
	if (held->type == REDIS_REPLY_NIL) {
		freeReplyObject(held);
		/* An index entry without its message: drop it, as kombu does. */
		redisReply *removed = redisCommand(redis, "ZREM %s %s", CELERY_UNACKED_INDEX, delivery_tag);
		if (removed == NULL || removed->type == REDIS_REPLY_ERROR)
			return reply_failure(redis, removed, "ZREM unacked_index", err, errsize);
		freeReplyObject(removed);
		return 0;
	}
	char target[CELERY_LIST_NAME_MAX];
	bool dead;
	char *text = restored_text(held->str, held->len, queue, target, sizeof target, &dead);
	if (text == NULL) {
		freeReplyObject(held);
		snprintf(err, errsize, "out of memory restoring %s", delivery_tag);
		return -1;
	}
	const char *argv[] = { CELERY_UNACKED_INDEX, CELERY_UNACKED, target, delivery_tag, held->str,
			       text, dead ? "LPUSH" : "RPUSH" };
	const size_t lengths[] = { strlen(argv[0]), strlen(argv[1]), strlen(target),
				   strlen(delivery_tag), held->len, strlen(text), strlen(argv[6]) };
	redisReply *reply = run_script(redis, &move_script, 3, 7, argv, lengths, err, errsize);
	free(text);
	freeReplyObject(held);
	if (reply == NULL)
		return -1;
	int moved = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
	freeReplyObject(reply);
	return moved && !dead ? 1 : 0;
}

static int restore_batches(redisContext *redis, const char *ceiling, const char *queue,
			   size_t *restored, char *err, size_t errsize)
{
	for (int batch = 0; batch < CELERY_RESTORE_MAX_BATCHES; batch++) {
		redisReply *reply = redisCommand(redis, "ZREVRANGEBYSCORE %s %s 0 LIMIT 0 %d",
						 CELERY_UNACKED_INDEX, ceiling, CELERY_RESTORE_BATCH);
		if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
			return reply_failure(redis, reply, "ZREVRANGEBYSCORE unacked_index", err, errsize);
		size_t count = reply->elements;
		for (size_t i = 0; i < count; i++) {
			if (reply->element[i]->type != REDIS_REPLY_STRING)
				continue;
			int moved = celery_broker_restore(redis, reply->element[i]->str, queue, err, errsize);
			if (moved < 0) {
				freeReplyObject(reply);
				return -1;
			}
			*restored += (size_t)moved;
		}
		freeReplyObject(reply);
		if (count < CELERY_RESTORE_BATCH)
			break;
	}
	return 0;
}

int celery_broker_restore_expired(redisContext *redis, double visibility_timeout_s, const char *queue,
				  size_t *restored, char *err, size_t errsize)
{
	*restored = 0;
	uuid_t id;
	char token[CELERY_ID_SIZE];
	uuid_generate_random(id);
	uuid_unparse_lower(id, token);
	redisReply *lock = redisCommand(redis, "SET %s %s PX %s NX", CELERY_UNACKED_MUTEX, token,
					CELERY_MUTEX_EXPIRE_MS);
	if (lock == NULL || lock->type == REDIS_REPLY_ERROR)
		return reply_failure(redis, lock, "SET unacked_mutex", err, errsize);
	bool held_elsewhere = lock->type == REDIS_REPLY_NIL;
	freeReplyObject(lock);
	if (held_elsewhere)
		return 1;
	char ceiling[32];
	snprintf(ceiling, sizeof ceiling, "%.7f", time_now_seconds() - visibility_timeout_s);
	int status = restore_batches(redis, ceiling, queue, restored, err, errsize);
	const char *argv[] = { CELERY_UNACKED_MUTEX, token };
	char release_err[256];
	redisReply *released = run_script(redis, &release_script, 1, 2, argv, NULL, release_err,
					  sizeof release_err);
	if (released == NULL && status == 0) {
		snprintf(err, errsize, "%s", release_err);
		status = -1;
	}
	freeReplyObject(released);
	return status;
}

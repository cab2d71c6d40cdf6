#include "kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "trace.h"

static pthread_mutex_t delivery_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t delivery_done = PTHREAD_COND_INITIALIZER;

struct kafka_producer {
	rd_kafka_t *handle;
	pthread_t poller;
	atomic_bool stopping;
};
static int set_property(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
			size_t errsize)
{
	char reason[256];
	if (rd_kafka_conf_set(conf, name, value, reason, sizeof reason) != RD_KAFKA_CONF_OK) {
		snprintf(err, errsize, "kafka property %s: %s", name, reason);
		return -1;
	}
	return 0;
}

static rd_kafka_conf_t *base_conf(const struct config *config, char *err, size_t errsize)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (set_property(conf, "bootstrap.servers", config->kafka_bootstrap_servers, err, errsize) != 0 ||
	    set_property(conf, "client.id", "sigtrigd", err, errsize) != 0) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return conf;
}

/* The operator's kafka.<property> settings, applied last so that they override sigtrig's choices. */
static int apply_operator_properties(rd_kafka_conf_t *conf, const struct config *config, char *err,
				     size_t errsize)
{
	for (size_t i = 0; i < config->kafka_property_count; i++)
		if (set_property(conf, config->kafka_properties[i].name, config->kafka_properties[i].value,
				 err, errsize) != 0)
			return -1;
	return 0;
}

static void emit_published(const char *signal_id, json_t *tickers, const rd_kafka_message_t *message)
{
	trace_emit("published", signal_id,
		   json_pack("{s:O?, s:i, s:I}", "tickers", tickers, "partition", (int)message->partition,
			     "offset", (json_int_t)message->offset));
}

static void on_delivery(rd_kafka_t *producer, const rd_kafka_message_t *message, void *opaque)
{
	(void)producer;
	(void)opaque;
	struct kafka_delivery *delivery = message->_private;
	if (delivery == NULL)
		return;
	if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		/* A message that is not a signal (a dead letter) has no "published" stage. */
		if (delivery->signal_id[0] != '\0')
			emit_published(delivery->signal_id, delivery->tickers, message);
	} else {
		metrics_add(METRIC_kafka_publish_failures_total, 1);
		log_event(LOG_ERROR, "kafka_publish_failed",
			  json_pack("{s:s, s:s}", "signal_id", delivery->signal_id, "error",
				    rd_kafka_err2str(message->err)));
	}
	if (delivery->detached) {
		json_decref(delivery->tickers);
		free(delivery);
		return;
	}
	pthread_mutex_lock(&delivery_lock);
	delivery->error = message->err;
	delivery->partition = message->partition;
	delivery->offset = message->offset;
	delivery->done = 1;
	pthread_cond_broadcast(&delivery_done);
	pthread_mutex_unlock(&delivery_lock);
}

bool kafka_log_is_offset_reset(const char *facility, const char *text)
{
	return facility != NULL && text != NULL && strcasecmp(facility, "OFFSET") == 0 &&
	       strcasestr(text, "offset reset") != NULL && strcasestr(text, "out of range") != NULL;
}

static void on_log(const rd_kafka_t *handle, int level, const char *facility, const char *text)
{
	(void)handle;
	/*
	 * With auto.offset.reset = earliest, librdkafka moves a consumer whose
	 * position fell off the log (the mock broker keeps about 5 MB per
	 * partition) to the earliest message and only logs it: no error
	 * reaches the application. Signals were lost: say so loudly.
	 */
	if (kafka_log_is_offset_reset(facility, text)) {
		metrics_add(METRIC_kafka_offset_resets_total, 1);
		log_event(LOG_ERROR, "kafka_offsets_fell_off_log",
			  json_pack("{s:s, s:s}", "message", text, "consequence",
				    "the messages between the committed position and the earliest kept one were "
				    "never consumed"));
		return;
	}
	log_event(level <= 3 ? LOG_ERROR : level <= 5 ? LOG_WARN : LOG_DEBUG, "kafka_client",
		  json_pack("{s:s, s:s}", "facility", facility, "message", text));
}

static void on_error(rd_kafka_t *handle, int error, const char *reason, void *opaque)
{
	(void)handle;
	(void)opaque;
	log_event(LOG_WARN, "kafka_error",
		  json_pack("{s:s, s:s}", "error", rd_kafka_err2name((rd_kafka_resp_err_t)error), "reason",
			    reason));
}

/* Serves delivery reports, so that publishers never have to poll. */
static void *producer_poll_loop(void *argument)
{
	struct kafka_producer *producer = argument;
	while (!atomic_load(&producer->stopping))
		rd_kafka_poll(producer->handle, 100);
	return NULL;
}

struct kafka_producer *kafka_producer_new(const struct config *config, char *err, size_t errsize)
{
	rd_kafka_conf_t *conf = base_conf(config, err, errsize);
	if (conf == NULL)
		return NULL;
	/* A signal is a trading input: wait for every in-sync replica. linger 1 ms
	 * keeps latency low while still batching under load. */
	if (set_property(conf, "acks", "all", err, errsize) != 0 ||
	    set_property(conf, "linger.ms", "1", err, errsize) != 0 ||
	    apply_operator_properties(conf, config, err, errsize) != 0) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_log_cb(conf, on_log);
	rd_kafka_conf_set_error_cb(conf, on_error);
	struct kafka_producer *producer = calloc(1, sizeof *producer);
	char reason[512];
	producer->handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, reason, sizeof reason);
	if (producer->handle == NULL) {
		snprintf(err, errsize, "kafka producer: %s", reason);
		free(producer);
		return NULL;
	}
	if (pthread_create(&producer->poller, NULL, producer_poll_loop, producer) != 0) {
		snprintf(err, errsize, "kafka producer: cannot start its poll thread");
		rd_kafka_destroy(producer->handle);
		free(producer);
		return NULL;
	}
	return producer;
}

rd_kafka_t *kafka_producer_handle(struct kafka_producer *producer)
{
	return producer->handle;
}

void kafka_producer_destroy(struct kafka_producer *producer, int flush_timeout_ms)
{
	if (producer == NULL)
		return;
	if (rd_kafka_flush(producer->handle, flush_timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_msg(LOG_WARN, "kafka_flush_incomplete", "%d message(s) not delivered at shutdown",
			rd_kafka_outq_len(producer->handle));
	atomic_store(&producer->stopping, true);
	pthread_join(producer->poller, NULL);
	rd_kafka_destroy(producer->handle);
	free(producer);
}

int kafka_produce(struct kafka_producer *producer, const char *topic, const char *key, const char *value,
		  size_t length, struct kafka_delivery *delivery, const char *signal_id, json_t *tickers,
		  char *err, size_t errsize)
{
	if (delivery == NULL) {
		delivery = calloc(1, sizeof *delivery);
		if (delivery == NULL) {
			snprintf(err, errsize, "out of memory");
			return -1;
		}
		delivery->detached = true;
		delivery->tickers = json_incref(tickers);
	} else {
		delivery->detached = false;
		delivery->tickers = tickers;
		pthread_mutex_lock(&delivery_lock);
		delivery->done = 0;
		pthread_mutex_unlock(&delivery_lock);
	}
	snprintf(delivery->signal_id, sizeof delivery->signal_id, "%s", signal_id != NULL ? signal_id : "");
	size_t key_length = key != NULL ? strlen(key) : 0;
	rd_kafka_resp_err_t error = rd_kafka_producev(
		producer->handle, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_length),
		RD_KAFKA_V_VALUE((void *)value, length), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		RD_KAFKA_V_OPAQUE(delivery), RD_KAFKA_V_END);
	if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (delivery->detached) {
			json_decref(delivery->tickers);
			free(delivery);
		}
		metrics_add(METRIC_kafka_publish_failures_total, 1);
		snprintf(err, errsize, "kafka: %s", rd_kafka_err2str(error));
		return -1;
	}
	return 0;
}

int kafka_delivery_wait(struct kafka_delivery *delivery, int timeout_ms, char *err, size_t errsize)
{
	struct timespec deadline = time_deadline_after_ms(timeout_ms);
	pthread_mutex_lock(&delivery_lock);
	while (!delivery->done)
		if (pthread_cond_timedwait(&delivery_done, &delivery_lock, &deadline) != 0)
			break;
	int done = delivery->done;
	rd_kafka_resp_err_t error = delivery->error;
	pthread_mutex_unlock(&delivery_lock);
	if (!done) {
		/* The message stays queued in librdkafka and may still be delivered. */
		snprintf(err, errsize, "kafka did not confirm delivery within %d ms", timeout_ms);
		return -1;
	}
	if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errsize, "kafka: %s", rd_kafka_err2str(error));
		return -1;
	}
	return 0;
}

int kafka_delivery_poll(struct kafka_delivery *delivery, char *err, size_t errsize)
{
	pthread_mutex_lock(&delivery_lock);
	int done = delivery->done;
	rd_kafka_resp_err_t error = delivery->error;
	pthread_mutex_unlock(&delivery_lock);
	if (!done)
		return 0;
	if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errsize, "kafka: %s", rd_kafka_err2str(error));
		return -1;
	}
	return 1;
}

rd_kafka_t *kafka_consumer_new(const struct config *config, char *err, size_t errsize)
{
	rd_kafka_conf_t *conf = base_conf(config, err, errsize);
	if (conf == NULL)
		return NULL;
	char fetch_wait[32];
	snprintf(fetch_wait, sizeof fetch_wait, "%ld", config->kafka_fetch_wait_max_ms);
	/*
	 * Offsets are committed by the dispatcher after a batch is durably
	 * handled (at-least-once). A committed offset that fell off the log is
	 * reset to the earliest kept message and reported as an error event.
	 */
	if (set_property(conf, "group.id", config->kafka_group, err, errsize) != 0 ||
	    set_property(conf, "enable.auto.commit", "false", err, errsize) != 0 ||
	    set_property(conf, "auto.offset.reset", "earliest", err, errsize) != 0 ||
	    set_property(conf, "fetch.wait.max.ms", fetch_wait, err, errsize) != 0 ||
	    set_property(conf, "client.id", "sigtrigd-dispatcher", err, errsize) != 0 ||
	    apply_operator_properties(conf, config, err, errsize) != 0) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, on_log);
	rd_kafka_conf_set_error_cb(conf, on_error);
	char reason[512];
	rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, reason, sizeof reason);
	if (consumer == NULL) {
		snprintf(err, errsize, "kafka consumer: %s", reason);
		return NULL;
	}
	/* One queue for events and messages, as kcat does. */
	rd_kafka_poll_set_consumer(consumer);
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, config->kafka_topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t error = rd_kafka_subscribe(consumer, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errsize, "kafka subscribe %s: %s", config->kafka_topic, rd_kafka_err2str(error));
		rd_kafka_destroy(consumer);
		return NULL;
	}
	return consumer;
}

int kafka_ping(rd_kafka_t *handle, int timeout_ms, char *err, size_t errsize)
{
	const struct rd_kafka_metadata *metadata = NULL;
	rd_kafka_resp_err_t error = rd_kafka_metadata(handle, 0, NULL, &metadata, timeout_ms);
	if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errsize, "kafka: %s", rd_kafka_err2str(error));
		return -1;
	}
	rd_kafka_metadata_destroy(metadata);
	return 0;
}

int kafka_wakeup_open(rd_kafka_t *consumer, struct kafka_wakeup *wakeup, char *err, size_t errsize)
{
	wakeup->queue = NULL;
	if (pipe2(wakeup->fds, O_NONBLOCK | O_CLOEXEC) != 0) {
		snprintf(err, errsize, "kafka wake-up pipe: %s", strerror(errno));
		wakeup->fds[0] = wakeup->fds[1] = -1;
		return -1;
	}
	wakeup->queue = rd_kafka_queue_get_consumer(consumer);
	if (wakeup->queue == NULL) {
		snprintf(err, errsize, "kafka: the consumer has no queue to wait on");
		kafka_wakeup_close(wakeup);
		return -1;
	}
	rd_kafka_queue_io_event_enable(wakeup->queue, wakeup->fds[1], "1", 1);
	return 0;
}

void kafka_wakeup_clear(struct kafka_wakeup *wakeup)
{
	if (wakeup->fds[0] < 0)
		return;
	char drained[64];
	ssize_t got;
	do
		got = read(wakeup->fds[0], drained, sizeof drained);
	while (got > 0);
}

void kafka_wakeup_close(struct kafka_wakeup *wakeup)
{
	if (wakeup->queue != NULL) {
		rd_kafka_queue_io_event_enable(wakeup->queue, -1, NULL, 0);
		rd_kafka_queue_destroy(wakeup->queue);
		wakeup->queue = NULL;
	}
	for (int i = 0; i < 2; i++) {
		if (wakeup->fds[i] >= 0)
			close(wakeup->fds[i]);
		wakeup->fds[i] = -1;
	}
}

/* Publishing a signal to Kafka: shared by the generator role and inject requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "kafka.h"
#include "metrics.h"

json_t *daemon_signal_tickers(const struct signal *signal)
{
	json_t *tickers = json_array();
	for (size_t i = 0; i < signal->ticker_count; i++)
		json_array_append_new(tickers, json_string(signal->tickers[i].ticker));
	return tickers;
}

int daemon_publish_signal(struct daemon *daemon, const struct signal *signal,
			  struct kafka_delivery *delivery, char *err, size_t errsize)
{
	char *value = signal_serialize(signal);
	if (value == NULL) {
		snprintf(err, errsize, "could not serialize the signal");
		return -1;
	}
	/* The dispatcher refuses what it could not have parsed: refuse it here, to the sender. */
	if (strlen(value) > SIGNAL_MAX_BYTES) {
		snprintf(err, errsize, "signal is %zu bytes serialized, more than %d", strlen(value),
			 SIGNAL_MAX_BYTES);
		free(value);
		return -1;
	}
	json_t *tickers = daemon_signal_tickers(signal);
	/* Keyed by the first ticker: one ticker's signals stay in order on one partition. */
	int status = kafka_produce(daemon->producer, daemon->config.kafka_topic, signal->tickers[0].ticker,
				   value, strlen(value), delivery, signal->signal_id, tickers, err, errsize);
	if (status == 0)
		metrics_add(METRIC_signals_generated_total, 1);
	if (delivery == NULL || status != 0)
		json_decref(tickers);
	/* else the caller releases delivery->tickers after the wait */
	free(value);
	return status;
}

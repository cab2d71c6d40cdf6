/*
 * The generator role: signal generators that publish to Kafka. For now the
 * mock generator: random valid signals at generator.mock.rate per second
 * over generator.mock.tickers, for development and demos.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "timeutil.h"

#define GENERATOR_MAX_TICKERS 256

static struct {
	pthread_t thread;
	bool running;
	volatile int stop;
	char *ticker_text;
	const char *tickers[GENERATOR_MAX_TICKERS];
	size_t ticker_count;
	atomic_long emitted;
	struct daemon *daemon;
	unsigned int seed;
} mock;

static double random_unit(void)
{
	return (double)rand_r(&mock.seed) / ((double)RAND_MAX + 1.0);
}

static void emit_mock_signal(void)
{
	static const char *const reasons[] = { "mock: momentum", "mock: volume spike", "mock: mean reversion" };
	const char *ticker = mock.tickers[(size_t)(random_unit() * (double)mock.ticker_count)];
	enum signal_direction direction = (enum signal_direction)(random_unit() * 3);
	double confidence = 50.0 + (double)(int)(random_unit() * 500.0) / 10.0;
	struct signal signal;
	struct signal_error error = { { 0 }, { 0 } };
	if (signal_init_single(&signal, "mock", "mock_generator", ticker, direction, confidence,
			       reasons[(size_t)(random_unit() * 3)], &error) != 0) {
		log_msg(LOG_ERROR, "mock_signal_invalid", "%s: %s", error.field, error.reason);
		return;
	}
	char err[256];
	if (daemon_publish_signal(mock.daemon, &signal, NULL, err, sizeof err) == 0)
		atomic_fetch_add(&mock.emitted, 1);
	else
		log_msg(LOG_WARN, "mock_signal_not_published", "%s", err);
	signal_free(&signal);
}

static void *mock_generator_loop(void *argument)
{
	(void)argument;
	double interval_ms = 1000.0 / mock.daemon->config.generator_mock_rate;
	double next_ms = (double)time_monotonic_ms();
	while (!mock.stop && !mock.daemon->stopping) {
		emit_mock_signal();
		next_ms += interval_ms;
		int64_t now = time_monotonic_ms();
		if (next_ms < (double)now - 1000.0)
			next_ms = (double)now; /* fell far behind: do not burst to catch up */
		if (next_ms > (double)now)
			time_sleep_ms_unless((int64_t)(next_ms - (double)now), &mock.stop);
	}
	return NULL;
}

static int parse_tickers(const char *list, char *err, size_t errsize)
{
	mock.ticker_text = strdup(list);
	mock.ticker_count = 0;
	char *save = NULL;
	for (char *ticker = strtok_r(mock.ticker_text, ", ", &save); ticker != NULL;
	     ticker = strtok_r(NULL, ", ", &save)) {
		if (!signal_ticker_is_valid(ticker)) {
			snprintf(err, errsize, "generator.mock.tickers: '%s' is not a valid ticker", ticker);
			return -1;
		}
		if (mock.ticker_count == GENERATOR_MAX_TICKERS) {
			snprintf(err, errsize, "generator.mock.tickers: more than %d tickers",
				 GENERATOR_MAX_TICKERS);
			return -1;
		}
		mock.tickers[mock.ticker_count++] = ticker;
	}
	if (mock.ticker_count == 0) {
		snprintf(err, errsize, "generator.mock.tickers: no tickers");
		return -1;
	}
	return 0;
}

int generator_start(struct daemon *daemon, char *err, size_t errsize)
{
	mock.daemon = daemon;
	mock.stop = 0;
	mock.seed = (unsigned int)time_monotonic_ms() ^ (unsigned int)getpid();
	if (!daemon->config.generator_mock_enabled) {
		log_msg(LOG_INFO, "generator_idle", "mock generator disabled (generator.mock.enabled = false)");
		return 0;
	}
	if (parse_tickers(daemon->config.generator_mock_tickers, err, errsize) != 0)
		return -1;
	if (pthread_create(&mock.thread, NULL, mock_generator_loop, NULL) != 0) {
		snprintf(err, errsize, "cannot start the mock generator thread");
		return -1;
	}
	mock.running = true;
	log_event(LOG_INFO, "generator_started",
		  json_pack("{s:s, s:f, s:s}", "generator", "mock", "rate", daemon->config.generator_mock_rate,
			    "tickers", daemon->config.generator_mock_tickers));
	return 0;
}

void generator_stop(struct daemon *daemon)
{
	(void)daemon;
	mock.stop = 1;
	if (mock.running)
		pthread_join(mock.thread, NULL);
	mock.running = false;
	free(mock.ticker_text);
	mock.ticker_text = NULL;
}

json_t *generator_info(struct daemon *daemon)
{
	return json_pack("{s:{s:b, s:f, s:s, s:I}}", "mock", "enabled", mock.running, "rate",
			 daemon->config.generator_mock_rate, "tickers", daemon->config.generator_mock_tickers,
			 "emitted", (json_int_t)atomic_load(&mock.emitted));
}

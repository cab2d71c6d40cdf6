/*
 * sigtrig-mockbroker: a Kafka cluster for the local stack, built on
 * librdkafka's mock cluster. It is a process of its own so that the
 * topics' contents survive sigtrigd crashing and restarting; 'sigtrig up'
 * starts it and 'sigtrig down' stops it.
 *
 * The mock brokers listen on ports they choose, so once the topics exist
 * the bootstrap list is written to --bootstrap-file (through a temporary
 * file and rename: a reader sees the whole address or none). It serves
 * until SIGTERM or SIGINT, then removes that file and shuts down cleanly.
 */
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "stack.h"

#define MOCKBROKER "sigtrig-mockbroker"
#define TOPICS_MAX 64

struct topic_spec {
	const char *name;
	int partitions;  /* 0: --partitions */
};

struct mockbroker_options {
	const char *bootstrap_file;
	const char *pid_file;
	int partitions;
	struct topic_spec topics[TOPICS_MAX];
	size_t topic_count;
};

static const char usage_line[] =
	"usage: " MOCKBROKER " --bootstrap-file FILE [--partitions N] [--topic NAME[:PARTITIONS]]... "
	"[--pid-file FILE]\n";

static void print_usage(FILE *out, bool with_details)
{
	fputs(usage_line, out);
	if (!with_details)
		return;
	fprintf(out, "\nRuns a one-broker Kafka mock cluster until SIGTERM or SIGINT.\n\n"
		     "  --bootstrap-file FILE    where the brokers' address is written once they serve\n"
		     "  --partitions N           partitions of each topic without its own count "
		     "(default %d)\n"
		     "  --topic NAME[:PARTITIONS]  a topic to create; repeatable (default %s and "
		     "%s:1)\n"
		     "  --pid-file FILE          where to write our pid\n"
		     "  -h, --help               show this help\n",
		     STACK_DEFAULT_PARTITIONS, STACK_SIGNALS_TOPIC, STACK_DEAD_LETTER_TOPIC);
}

static int parse_count(const char *text, int *count)
{
	char *end;
	errno = 0;
	long value = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || value < 1 || value > 100000)
		return -1;
	*count = (int)value;
	return 0;
}

/* "NAME" or "NAME:PARTITIONS"; Kafka topic names cannot hold a colon, so this is unambiguous. */
static int parse_topic(char *text, struct topic_spec *topic)
{
	char *colon = strchr(text, ':');
	topic->name = text;
	topic->partitions = 0;
	if (colon == NULL)
		return *text != '\0' ? 0 : -1;
	*colon = '\0';
	return *text != '\0' && parse_count(colon + 1, &topic->partitions) == 0 ? 0 : -1;
}

/* Returns 0, 1 after --help, 2 on a usage error (already reported). */
static int parse_options(int argc, char **argv, struct mockbroker_options *options)
{
	static const struct option long_options[] = {
		{ "bootstrap-file", required_argument, NULL, 'b' },
		{ "partitions", required_argument, NULL, 'p' },
		{ "topic", required_argument, NULL, 't' },
		{ "pid-file", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	memset(options, 0, sizeof *options);
	options->partitions = STACK_DEFAULT_PARTITIONS;
	int code;
	while ((code = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		bool valid = true;
		if (code == 'b')
			options->bootstrap_file = optarg;
		else if (code == 'P')
			options->pid_file = optarg;
		else if (code == 'p')
			valid = parse_count(optarg, &options->partitions) == 0;
		else if (code == 't')
			valid = options->topic_count < TOPICS_MAX &&
				parse_topic(optarg, &options->topics[options->topic_count++]) == 0;
		else if (code == 'h') {
			print_usage(stdout, true);
			return 1;
		} else {
			print_usage(stderr, false);
			return 2;
		}
		if (!valid) {
			fprintf(stderr, MOCKBROKER ": --%s: '%s' is not valid\n",
				code == 'p' ? "partitions" : "topic", optarg);
			return 2;
		}
	}
	if (optind < argc || options->bootstrap_file == NULL) {
		print_usage(stderr, false);
		return 2;
	}
	if (options->topic_count == 0) {
		options->topics[0] = (struct topic_spec){ STACK_SIGNALS_TOPIC, 0 };
		options->topics[1] = (struct topic_spec){ STACK_DEAD_LETTER_TOPIC, 1 };
		options->topic_count = 2;
	}
	return 0;
}

/* librdkafka's syslog levels onto ours: its notices are routine for a mock cluster. */
static void log_from_librdkafka(const rd_kafka_t *rk, int level, const char *facility,
				const char *message)
{
	(void)rk;
	enum log_level ours = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : LOG_DEBUG;
	log_event(ours, "librdkafka", json_pack("{s:s, s:s}", "facility", facility, "message", message));
}

static rd_kafka_t *create_handle(char *err, size_t errsize)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set_log_cb(conf, log_from_librdkafka);
	if (rd_kafka_conf_set(conf, "client.id", MOCKBROKER, err, errsize) != RD_KAFKA_CONF_OK) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	/* The handle exists only because the mock cluster needs one; it never produces. */
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errsize);
	if (rk == NULL)
		rd_kafka_conf_destroy(conf);
	return rk;
}

static int create_topics(rd_kafka_mock_cluster_t *cluster, const struct mockbroker_options *options,
			 char *err, size_t errsize)
{
	for (size_t i = 0; i < options->topic_count; i++) {
		const struct topic_spec *topic = &options->topics[i];
		int partitions = topic->partitions != 0 ? topic->partitions : options->partitions;
		rd_kafka_resp_err_t failure = rd_kafka_mock_topic_create(cluster, topic->name, partitions, 1);
		if (failure != RD_KAFKA_RESP_ERR_NO_ERROR) {
			snprintf(err, errsize, "cannot create topic %s: %s", topic->name,
				 rd_kafka_err2str(failure));
			return -1;
		}
		log_event(LOG_INFO, "topic_created",
			  json_pack("{s:s, s:i}", "topic", topic->name, "partitions", partitions));
	}
	return 0;
}

static int publish_address(const struct mockbroker_options *options, const char *bootstraps,
			   char *err, size_t errsize)
{
	char line[1024];
	snprintf(line, sizeof line, "%s\n", bootstraps);
	if (stack_write_file_atomic(options->bootstrap_file, line, 0644, err, errsize) != 0)
		return -1;
	if (options->pid_file == NULL)
		return 0;
	return stack_write_pid_file(options->pid_file, getpid(), err, errsize);
}

/* Blocks until SIGTERM or SIGINT; the signals are blocked in every thread, so they wait here. */
static int wait_for_stop(rd_kafka_t *rk, const sigset_t *stop_signals)
{
	for (;;) {
		struct timespec tick = { 1, 0 };
		int received = sigtimedwait(stop_signals, NULL, &tick);
		if (received == SIGTERM || received == SIGINT)
			return received;
		rd_kafka_poll(rk, 0);
	}
}

static int serve(const struct mockbroker_options *options, const sigset_t *stop_signals)
{
	char err[512];
	rd_kafka_t *rk = create_handle(err, sizeof err);
	if (rk == NULL) {
		log_msg(LOG_ERROR, "start_failed", "cannot create a librdkafka handle: %s", err);
		return 1;
	}
	int status = 1;
	rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(rk, 1);
	if (cluster == NULL) {
		log_msg(LOG_ERROR, "start_failed", "cannot create the mock cluster");
		goto destroy_handle;
	}
	const char *bootstraps = rd_kafka_mock_cluster_bootstraps(cluster);
	if (create_topics(cluster, options, err, sizeof err) != 0 ||
	    publish_address(options, bootstraps, err, sizeof err) != 0) {
		log_msg(LOG_ERROR, "start_failed", "%s", err);
		goto destroy_cluster;
	}
	log_event(LOG_INFO, "ready",
		  json_pack("{s:s, s:i}", "bootstrap_servers", bootstraps, "pid", (int)getpid()));
	int received = wait_for_stop(rk, stop_signals);
	log_event(LOG_INFO, "stopping", json_pack("{s:s}", "signal", strsignal(received)));
	status = 0;
destroy_cluster:
	unlink(options->bootstrap_file);
	if (options->pid_file != NULL)
		unlink(options->pid_file);
	if (cluster != NULL)
		rd_kafka_mock_cluster_destroy(cluster);
destroy_handle:
	rd_kafka_destroy(rk);
	return status;
}

int main(int argc, char **argv)
{
	struct mockbroker_options options;
	int parsed = parse_options(argc, argv, &options);
	if (parsed != 0)
		return parsed == 1 ? 0 : 2;
	/* Blocked before librdkafka starts its threads, which inherit the mask. */
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	return serve(&options, &stop_signals);
}

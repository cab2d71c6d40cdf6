/*
 * The log's lines: those written by hand on the hot path (log_line_open,
 * log_write_lines) read as log_event() writes them, and stay whole when
 * another thread logs into the same pipe meanwhile.
 */
#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "text_buffer.h"

/* Everything read from fd until end of file, NUL-terminated. */
static char *read_all(int fd)
{
	struct text_buffer all = { 0 };
	char chunk[65536];
	ssize_t got;
	while ((got = read(fd, chunk, sizeof chunk)) > 0)
		text_buffer_append(&all, chunk, (size_t)got);
	ck_assert(!all.failed);
	return all.data != NULL ? all.data : strdup("");
}

struct pipe_reader {
	int fd;
	char *text;
};

static void *read_pipe(void *argument)
{
	struct pipe_reader *reader = argument;
	reader->text = read_all(reader->fd);
	return NULL;
}

/* Value with every character a JSON string escapes, and some that pass as they are. */
static const char odd_value[] = "quote\" backslash\\ tab\t newline\n brace{ \xc3\xbc";

START_TEST(test_a_line_written_by_hand_reads_as_log_event_writes_it)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	log_set_fd(fds[1]);
	struct text_buffer lines = { 0 };
	log_line_open(&lines, LOG_WARN, "hand_written");
	text_buffer_json_member(&lines, ",\"value\":", odd_value);
	log_line_close(&lines);
	log_write_lines(&lines);
	free(lines.data);
	log_event(LOG_WARN, "hand_written", json_pack("{s:s}", "value", odd_value));
	close(fds[1]);
	log_set_fd(2);
	char *text = read_all(fds[0]);
	close(fds[0]);
	char *second = strchr(text, '\n');
	ck_assert_ptr_nonnull(second);
	*second++ = '\0';
	json_t *by_hand = json_loads(text, 0, NULL);
	json_t *by_jansson = json_loads(second, JSON_DISABLE_EOF_CHECK, NULL);
	ck_assert_msg(by_hand != NULL, "%s", text);
	ck_assert_ptr_nonnull(by_jansson);
	/* The same fields and values; only the times may differ. */
	json_object_del(by_hand, "time");
	json_object_del(by_jansson, "time");
	ck_assert(json_equal(by_hand, by_jansson));
	ck_assert_str_eq(json_string_value(json_object_get(by_hand, "level")), "warn");
	ck_assert_str_eq(json_string_value(json_object_get(by_hand, "value")), odd_value);
	/* time, level and event first, as log_event() puts them. */
	ck_assert_msg(strncmp(text, "{\"time\":\"", 9) == 0, "%s", text);
	json_decref(by_hand);
	json_decref(by_jansson);
	free(text);
}
END_TEST

START_TEST(test_an_event_below_the_level_is_not_enabled)
{
	log_set_level(LOG_WARN);
	ck_assert(!log_enabled(LOG_INFO));
	ck_assert(log_enabled(LOG_WARN));
	ck_assert(log_enabled(LOG_ERROR));
	log_set_level(LOG_INFO);
	ck_assert(log_enabled(LOG_INFO));
	ck_assert(!log_enabled(LOG_DEBUG));
}
END_TEST

#define HAND_LINES 20000
#define OTHER_LINES 2000

static void *log_other_lines(void *unused)
{
	(void)unused;
	for (int i = 0; i < OTHER_LINES; i++)
		log_event(LOG_INFO, "other_thread", json_pack("{s:i}", "n", i));
	return NULL;
}

/*
 * 20,000 lines in one log_write_lines() into a pipe, with another thread
 * logging meanwhile: a write of more than PIPE_BUF bytes to a pipe may be
 * split, and the other thread's line land inside one of ours.
 */
START_TEST(test_many_lines_written_at_once_stay_whole_beside_another_thread)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	struct pipe_reader reader = { fds[0], NULL };
	pthread_t reading, other;
	ck_assert_int_eq(pthread_create(&reading, NULL, read_pipe, &reader), 0);
	log_set_fd(fds[1]);
	struct text_buffer lines = { 0 };
	char value[64];
	for (int i = 0; i < HAND_LINES; i++) {
		log_line_open(&lines, LOG_INFO, "by_hand");
		snprintf(value, sizeof value, "line %d", i);
		text_buffer_json_member(&lines, ",\"value\":", value);
		text_buffer_json_member(&lines, ",\"padding\":", odd_value);
		log_line_close(&lines);
	}
	ck_assert_int_eq(pthread_create(&other, NULL, log_other_lines, NULL), 0);
	log_write_lines(&lines);
	pthread_join(other, NULL);
	close(fds[1]);
	log_set_fd(2);
	pthread_join(reading, NULL);
	close(fds[0]);
	int by_hand = 0, from_other = 0, next = 0;
	for (char *line = strtok(reader.text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		json_t *parsed = json_loads(line, 0, NULL);
		ck_assert_msg(parsed != NULL, "a line broken by another: %.200s", line);
		const char *event = json_string_value(json_object_get(parsed, "event"));
		const char *text = json_string_value(json_object_get(parsed, "value"));
		if (strcmp(event, "other_thread") == 0) {
			from_other++;
		} else {
			/* Ours in their order. */
			snprintf(value, sizeof value, "line %d", next++);
			ck_assert_str_eq(text, value);
			by_hand++;
		}
		json_decref(parsed);
	}
	ck_assert_int_eq(by_hand, HAND_LINES);
	ck_assert_int_eq(from_other, OTHER_LINES);
	free(lines.data);
	free(reader.text);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("log");
	TCase *lines = tcase_create("lines");
	tcase_add_test(lines, test_a_line_written_by_hand_reads_as_log_event_writes_it);
	tcase_add_test(lines, test_an_event_below_the_level_is_not_enabled);
	tcase_add_test(lines, test_many_lines_written_at_once_stay_whole_beside_another_thread);
	suite_add_tcase(suite, lines);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

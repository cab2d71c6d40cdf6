/* The control protocol: line framing, message encoding, response builders, the client call. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "protocol.h"

static void write_text(int fd, const char *text)
{
	size_t length = strlen(text);
	ck_assert_int_eq(write(fd, text, length), (ssize_t)length);
}

static void make_pipe(int fds[2])
{
	ck_assert_int_eq(pipe(fds), 0);
}

static void set_non_blocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	ck_assert_int_eq(fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
}

static void expect_line(struct line_reader *reader, const char *expected)
{
	char *line = NULL;
	size_t length = 0;
	ck_assert_int_eq(line_reader_next(reader, &line, &length), 1);
	ck_assert_uint_eq(length, strlen(expected));
	ck_assert_str_eq(line, expected);
}

static void expect_end(struct line_reader *reader)
{
	char *line;
	size_t length;
	ck_assert_int_eq(line_reader_next(reader, &line, &length), 0);
}

/* A temporary file holding `length` copies of `fill`, then `tail`; opened for reading. */
static int temp_file_with(char fill, size_t length, const char *tail)
{
	char path[] = "/tmp/sigtrig-test-protocol-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	char *block = malloc(65536);
	memset(block, fill, 65536);
	for (size_t done = 0; done < length;) {
		size_t chunk = length - done < 65536 ? length - done : 65536;
		ck_assert_int_eq(write(fd, block, chunk), (ssize_t)chunk);
		done += chunk;
	}
	free(block);
	write_text(fd, tail);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* ---- line_reader ---- */

START_TEST(test_reader_splits_several_lines_from_one_write)
{
	int fds[2];
	make_pipe(fds);
	write_text(fds[1], "{\"type\":\"a\"}\nsecond\n\nlast\n");
	close(fds[1]);
	struct line_reader reader;
	line_reader_init(&reader, fds[0]);
	expect_line(&reader, "{\"type\":\"a\"}");
	expect_line(&reader, "second");
	expect_line(&reader, "");
	expect_line(&reader, "last");
	expect_end(&reader);
	expect_end(&reader);
	line_reader_free(&reader);
	close(fds[0]);
}
END_TEST

START_TEST(test_reader_joins_line_split_across_writes)
{
	int fds[2];
	make_pipe(fds);
	set_non_blocking(fds[0]);
	struct line_reader reader;
	line_reader_init(&reader, fds[0]);
	char *line;
	size_t length;
	write_text(fds[1], "hel");
	/* Non-blocking: no whole line yet. */
	errno = 0;
	ck_assert_int_eq(line_reader_next(&reader, &line, &length), -1);
	ck_assert_int_eq(errno, EAGAIN);
	write_text(fds[1], "lo\nwor");
	expect_line(&reader, "hello");
	errno = 0;
	ck_assert_int_eq(line_reader_next(&reader, &line, &length), -1);
	ck_assert_int_eq(errno, EAGAIN);
	write_text(fds[1], "ld\n");
	expect_line(&reader, "world");
	close(fds[1]);
	expect_end(&reader);
	line_reader_free(&reader);
	close(fds[0]);
}
END_TEST

START_TEST(test_reader_returns_last_line_without_newline)
{
	int fds[2];
	make_pipe(fds);
	write_text(fds[1], "one\ntwo");
	close(fds[1]);
	struct line_reader reader;
	line_reader_init(&reader, fds[0]);
	expect_line(&reader, "one");
	expect_line(&reader, "two");
	expect_end(&reader);
	line_reader_free(&reader);
	close(fds[0]);
}
END_TEST

START_TEST(test_reader_reports_end_of_empty_input)
{
	int fds[2];
	make_pipe(fds);
	close(fds[1]);
	struct line_reader reader;
	line_reader_init(&reader, fds[0]);
	expect_end(&reader);
	line_reader_free(&reader);
	close(fds[0]);
}
END_TEST

START_TEST(test_reader_handles_many_lines_across_buffer_growth)
{
	/* Enough lines, of varied lengths, that the buffer is compacted and grown many times. */
	int fd = temp_file_with('-', 0, "");
	char expected[5000];
	for (int i = 0; i < 2000; i++) {
		int length = (i * 37) % 4000;
		memset(expected, 'a' + i % 26, (size_t)length);
		expected[length] = '\n';
		ck_assert_int_eq(write(fd, expected, (size_t)length + 1), length + 1);
	}
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	struct line_reader reader;
	line_reader_init(&reader, fd);
	for (int i = 0; i < 2000; i++) {
		int length = (i * 37) % 4000;
		memset(expected, 'a' + i % 26, (size_t)length);
		expected[length] = '\0';
		expect_line(&reader, expected);
	}
	expect_end(&reader);
	line_reader_free(&reader);
	close(fd);
}
END_TEST

START_TEST(test_reader_accepts_line_just_under_limit)
{
	int fd = temp_file_with('x', PROTOCOL_MAX_LINE - 1, "\nnext\n");
	struct line_reader reader;
	line_reader_init(&reader, fd);
	char *line;
	size_t length;
	ck_assert_int_eq(line_reader_next(&reader, &line, &length), 1);
	ck_assert_uint_eq(length, PROTOCOL_MAX_LINE - 1);
	ck_assert_uint_eq(strlen(line), PROTOCOL_MAX_LINE - 1);
	expect_line(&reader, "next");
	line_reader_free(&reader);
	close(fd);
}
END_TEST

START_TEST(test_reader_refuses_line_over_limit)
{
	int fd = temp_file_with('x', PROTOCOL_MAX_LINE + 1, "\n");
	struct line_reader reader;
	line_reader_init(&reader, fd);
	char *line;
	size_t length;
	errno = 0;
	ck_assert_int_eq(line_reader_next(&reader, &line, &length), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	line_reader_free(&reader);
	close(fd);
}
END_TEST

/*
 * Feeds a non-blocking pipe until the reader holds `length` bytes of an
 * unterminated line (each time the pipe is full, the reader drains it).
 */
static void feed_partial_line(struct line_reader *reader, int write_fd, size_t length)
{
	char block[4096];
	memset(block, 'y', sizeof block);
	char *line;
	size_t line_length;
	size_t written = 0;
	while (written < length) {
		size_t chunk = length - written < sizeof block ? length - written : sizeof block;
		ssize_t put = write(write_fd, block, chunk);
		if (put < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			ck_assert_int_eq(line_reader_next(reader, &line, &line_length), -1);
			ck_assert_int_eq(errno, EAGAIN);
			continue;
		}
		written += (size_t)put;
	}
	ck_assert_int_eq(line_reader_next(reader, &line, &line_length), -1);
	ck_assert_int_eq(errno, EAGAIN);
}

START_TEST(test_reader_refuses_line_over_limit_however_it_arrives)
{
	/* The line's last bytes and its newline arrive in one read that crosses the limit. */
	int fds[2];
	make_pipe(fds);
	set_non_blocking(fds[0]);
	set_non_blocking(fds[1]);
	struct line_reader reader;
	line_reader_init(&reader, fds[0]);
	feed_partial_line(&reader, fds[1], PROTOCOL_MAX_LINE - 3000);
	char tail[3102];
	memset(tail, 'y', 3100);
	tail[3100] = '\n';
	tail[3101] = '\0';
	write_text(fds[1], tail);
	char *line = NULL;
	size_t length = 0;
	errno = 0;
	int got = line_reader_next(&reader, &line, &length);
	ck_assert_msg(got == -1 && errno == EMSGSIZE,
		      "a line of %zu bytes (limit %d) was returned (got %d)", got == 1 ? length : 0,
		      PROTOCOL_MAX_LINE, got);
	line_reader_free(&reader);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

/* ---- encoding and decoding ---- */

START_TEST(test_write_puts_one_compact_line_in_key_order)
{
	int fds[2];
	make_pipe(fds);
	json_t *message = json_pack("{s:i, s:s, s:[i,i], s:s}", "v", 1, "type", "status", "n", 1, 2,
				    "text", "a\nb");
	ck_assert_int_eq(protocol_write(fds[1], message), 0);
	close(fds[1]);
	struct line_reader reader;
	line_reader_init(&reader, fds[0]);
	/* A newline inside a string is escaped, so the message stays one line. */
	expect_line(&reader, "{\"v\":1,\"type\":\"status\",\"n\":[1,2],\"text\":\"a\\nb\"}");
	expect_end(&reader);
	line_reader_free(&reader);
	close(fds[0]);
	json_decref(message);
}
END_TEST

START_TEST(test_written_messages_decode_back_over_socket)
{
	int fds[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	json_t *first = protocol_request("trace");
	json_object_set_new(first, "pipeline", json_string("p1"));
	json_t *second = protocol_error("no pipeline %s", "p2");
	ck_assert_int_eq(protocol_write(fds[0], first), 0);
	ck_assert_int_eq(protocol_write(fds[0], second), 0);
	close(fds[0]);
	struct line_reader reader;
	line_reader_init(&reader, fds[1]);
	json_t *originals[] = { first, second };
	for (int i = 0; i < 2; i++) {
		char *line;
		size_t length;
		ck_assert_int_eq(line_reader_next(&reader, &line, &length), 1);
		char err[256] = "";
		json_t *decoded = protocol_decode(line, length, err, sizeof err);
		ck_assert_msg(decoded != NULL, "%s", err);
		ck_assert(json_equal(decoded, originals[i]));
		json_decref(decoded);
	}
	expect_end(&reader);
	line_reader_free(&reader);
	close(fds[1]);
	json_decref(first);
	json_decref(second);
}
END_TEST

START_TEST(test_write_to_closed_peer_fails_without_signal)
{
	int fds[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	close(fds[1]);
	json_t *message = protocol_ok();
	/* SIGPIPE would kill the test process; an error return is what is wanted. */
	ck_assert_int_eq(protocol_write(fds[0], message), -1);
	ck_assert_int_eq(errno, EPIPE);
	json_decref(message);
	close(fds[0]);
}
END_TEST

struct bad_message {
	const char *line;
	const char *reason;
};

static const struct bad_message bad_messages[] = {
	{ "", "invalid JSON" },
	{ "status", "invalid JSON" },
	{ "{\"type\":\"status\"", "invalid JSON" },
	{ "[\"status\"]", "must be a JSON object with a string \"type\"" },
	{ "{}", "must be a JSON object with a string \"type\"" },
	{ "{\"v\":1}", "must be a JSON object with a string \"type\"" },
	{ "{\"type\":1}", "must be a JSON object with a string \"type\"" },
	{ "{\"type\":null}", "must be a JSON object with a string \"type\"" },
	{ "{\"type\":[\"status\"]}", "must be a JSON object with a string \"type\"" },
};

START_TEST(test_decode_rejects_malformed_message)
{
	const struct bad_message *bad = &bad_messages[_i];
	char err[256] = "";
	ck_assert_ptr_null(protocol_decode(bad->line, strlen(bad->line), err, sizeof err));
	ck_assert_msg(strstr(err, bad->reason) != NULL, "'%s' for '%s'", err, bad->line);
}
END_TEST

START_TEST(test_decode_accepts_object_with_string_type)
{
	const char line[] = "{\"type\":\"status\",\"v\":1,\"extra\":[1]}trailing";
	char err[256] = "";
	/* Only `length` bytes are the message. */
	json_t *message = protocol_decode(line, strlen(line) - strlen("trailing"), err, sizeof err);
	ck_assert_msg(message != NULL, "%s", err);
	ck_assert_str_eq(json_string_value(json_object_get(message, "type")), "status");
	ck_assert_uint_eq(json_array_size(json_object_get(message, "extra")), 1);
	json_decref(message);
}
END_TEST

START_TEST(test_ok_response_has_version_type_and_ok)
{
	json_t *response = protocol_ok();
	json_t *expected = json_pack("{s:i, s:s, s:b}", "v", PROTOCOL_VERSION, "type", "response", "ok", 1);
	ck_assert(json_equal(response, expected));
	ck_assert(json_is_true(json_object_get(response, "ok")));
	json_decref(expected);
	json_decref(response);
}
END_TEST

START_TEST(test_error_response_carries_formatted_reason)
{
	json_t *response = protocol_error("unknown request '%s' (%d)", "frobnicate", 7);
	json_t *expected = json_pack("{s:i, s:s, s:b, s:s}", "v", 1, "type", "response", "ok", 0, "error",
				     "unknown request 'frobnicate' (7)");
	ck_assert(json_equal(response, expected));
	ck_assert(json_is_false(json_object_get(response, "ok")));
	json_decref(expected);
	json_decref(response);
}
END_TEST

START_TEST(test_request_is_stamped_with_version_and_type)
{
	json_t *request = protocol_request("status");
	json_t *expected = json_pack("{s:i, s:s}", "v", 1, "type", "status");
	ck_assert(json_equal(request, expected));
	json_decref(expected);
	json_decref(request);
}
END_TEST

/* ---- protocol_call against an in-test server ---- */

enum server_behaviour { SERVER_ANSWERS, SERVER_HANGS_UP, SERVER_ANSWERS_GARBAGE };

struct test_server {
	char directory[64];
	char path[100]; /* fits sun_path */
	int listen_fd;
	enum server_behaviour behaviour;
	json_t *received; /* the request the server read */
	pthread_t thread;
};

/* Answers one connection: echoes the request's type and its "n" + 1. */
static void *serve_one(void *argument)
{
	struct test_server *server = argument;
	int fd = accept(server->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	struct line_reader reader;
	line_reader_init(&reader, fd);
	char *line;
	size_t length;
	if (line_reader_next(&reader, &line, &length) == 1) {
		char err[256];
		server->received = protocol_decode(line, length, err, sizeof err);
		if (server->behaviour == SERVER_ANSWERS && server->received != NULL) {
			json_t *response = protocol_ok();
			json_object_set(response, "echo", json_object_get(server->received, "type"));
			json_object_set_new(response, "n",
					    json_integer(json_integer_value(json_object_get(server->received, "n")) + 1));
			protocol_write(fd, response);
			json_decref(response);
		} else if (server->behaviour == SERVER_ANSWERS_GARBAGE) {
			const char garbage[] = "this is not json\n";
			ssize_t put = write(fd, garbage, sizeof garbage - 1);
			(void)put;
		}
	}
	line_reader_free(&reader);
	close(fd);
	return NULL;
}

static void start_server(struct test_server *server, enum server_behaviour behaviour)
{
	memset(server, 0, sizeof *server);
	snprintf(server->directory, sizeof server->directory, "/tmp/sigtrig-test-sock-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(server->directory));
	snprintf(server->path, sizeof server->path, "%s/sigtrigd.sock", server->directory);
	server->behaviour = behaviour;
	server->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(server->listen_fd, 0);
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	snprintf(address.sun_path, sizeof address.sun_path, "%s", server->path);
	ck_assert_int_eq(bind(server->listen_fd, (struct sockaddr *)&address, sizeof address), 0);
	ck_assert_int_eq(listen(server->listen_fd, 1), 0);
	ck_assert_int_eq(pthread_create(&server->thread, NULL, serve_one, server), 0);
}

/* Waits for the server to finish its one connection; server->received stays for the test to read. */
static void stop_server(struct test_server *server)
{
	pthread_join(server->thread, NULL);
	close(server->listen_fd);
	unlink(server->path);
	rmdir(server->directory);
}

START_TEST(test_call_sends_request_and_returns_response)
{
	struct test_server server;
	start_server(&server, SERVER_ANSWERS);
	json_t *request = protocol_request("status");
	json_object_set_new(request, "n", json_integer(41));
	char err[256] = "";
	json_t *response = protocol_call(server.path, request, err, sizeof err);
	ck_assert_msg(response != NULL, "%s", err);
	ck_assert(json_is_true(json_object_get(response, "ok")));
	ck_assert_str_eq(json_string_value(json_object_get(response, "type")), "response");
	ck_assert_str_eq(json_string_value(json_object_get(response, "echo")), "status");
	ck_assert_int_eq(json_integer_value(json_object_get(response, "n")), 42);
	stop_server(&server);
	json_decref(server.received);
	json_decref(response);
}
END_TEST

START_TEST(test_call_reports_server_closing_without_answer)
{
	struct test_server server;
	start_server(&server, SERVER_HANGS_UP);
	char err[256] = "";
	ck_assert_ptr_null(protocol_call(server.path, protocol_request("status"), err, sizeof err));
	ck_assert_str_eq(err, "sigtrigd closed the connection without answering");
	/* The request did reach the server, whole. */
	stop_server(&server);
	ck_assert_ptr_nonnull(server.received);
	ck_assert_str_eq(json_string_value(json_object_get(server.received, "type")), "status");
	json_decref(server.received);
}
END_TEST

START_TEST(test_call_reports_malformed_answer)
{
	struct test_server server;
	start_server(&server, SERVER_ANSWERS_GARBAGE);
	char err[256] = "";
	ck_assert_ptr_null(protocol_call(server.path, protocol_request("status"), err, sizeof err));
	ck_assert_msg(strstr(err, "invalid JSON") != NULL, "%s", err);
	stop_server(&server);
	json_decref(server.received);
}
END_TEST

START_TEST(test_call_with_nobody_listening_names_socket_path)
{
	char directory[] = "/tmp/sigtrig-test-sock-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(directory));
	char path[100]; /* fits sun_path */
	snprintf(path, sizeof path, "%s/absent.sock", directory);
	char err[512] = "";
	ck_assert_ptr_null(protocol_call(path, protocol_request("status"), err, sizeof err));
	ck_assert_msg(strstr(err, path) != NULL, "'%s' does not name %s", err, path);
	ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
	rmdir(directory);
}
END_TEST

START_TEST(test_connect_refuses_over_long_socket_path)
{
	char path[200];
	memset(path, 'p', sizeof path - 1);
	path[0] = '/';
	path[sizeof path - 1] = '\0';
	char err[512] = "";
	ck_assert_int_eq(protocol_connect(path, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "socket path too long"));
}
END_TEST

static Suite *protocol_suite(void)
{
	Suite *suite = suite_create("protocol");
	TCase *reader = tcase_create("line_reader");
	tcase_set_timeout(reader, 30); /* the limit tests move a few 4 MiB lines */
	tcase_add_test(reader, test_reader_splits_several_lines_from_one_write);
	tcase_add_test(reader, test_reader_joins_line_split_across_writes);
	tcase_add_test(reader, test_reader_returns_last_line_without_newline);
	tcase_add_test(reader, test_reader_reports_end_of_empty_input);
	tcase_add_test(reader, test_reader_handles_many_lines_across_buffer_growth);
	tcase_add_test(reader, test_reader_accepts_line_just_under_limit);
	tcase_add_test(reader, test_reader_refuses_line_over_limit);
	tcase_add_test(reader, test_reader_refuses_line_over_limit_however_it_arrives);
	suite_add_tcase(suite, reader);

	TCase *messages = tcase_create("messages");
	tcase_add_test(messages, test_write_puts_one_compact_line_in_key_order);
	tcase_add_test(messages, test_written_messages_decode_back_over_socket);
	tcase_add_test(messages, test_write_to_closed_peer_fails_without_signal);
	tcase_add_loop_test(messages, test_decode_rejects_malformed_message, 0,
			    (int)(sizeof bad_messages / sizeof bad_messages[0]));
	tcase_add_test(messages, test_decode_accepts_object_with_string_type);
	tcase_add_test(messages, test_ok_response_has_version_type_and_ok);
	tcase_add_test(messages, test_error_response_carries_formatted_reason);
	tcase_add_test(messages, test_request_is_stamped_with_version_and_type);
	suite_add_tcase(suite, messages);

	TCase *call = tcase_create("call");
	tcase_add_test(call, test_call_sends_request_and_returns_response);
	tcase_add_test(call, test_call_reports_server_closing_without_answer);
	tcase_add_test(call, test_call_reports_malformed_answer);
	tcase_add_test(call, test_call_with_nobody_listening_names_socket_path);
	tcase_add_test(call, test_connect_refuses_over_long_socket_path);
	suite_add_tcase(suite, call);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(protocol_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

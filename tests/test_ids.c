/* Identifiers: the UUID versions and variant, time order, no repeats across pool refills. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "ids.h"

#define MANY 20000 /* far more than one pool of randomness holds */

static int compare_ids(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* Asserts the text is a UUID libuuid reads, of that version, with the RFC variant. */
static void assert_uuid_of_version(const char *text, int version)
{
	uuid_t parsed;
	ck_assert_int_eq((int)strlen(text), IDS_UUID_LENGTH);
	ck_assert_msg(uuid_parse(text, parsed) == 0, "'%s' is not a UUID", text);
	ck_assert_int_eq(parsed[6] >> 4, version);
	ck_assert_int_eq(parsed[8] >> 6, 2);
	/* Lowercase, as PostgreSQL prints them: texts compare equal to what the database returns. */
	for (const char *c = text; *c != '\0'; c++)
		ck_assert_msg(!(*c >= 'A' && *c <= 'F'), "'%s' is not lowercase", text);
}

/* Fills MANY ids with `make`, checks each, and that no two are the same. */
static void assert_many_distinct(void (*make)(char *), int version)
{
	char (*ids)[IDS_UUID_LENGTH + 1] = calloc(MANY, sizeof *ids);
	ck_assert_ptr_nonnull(ids);
	for (int i = 0; i < MANY; i++) {
		make(ids[i]);
		assert_uuid_of_version(ids[i], version);
	}
	qsort(ids, MANY, sizeof *ids, compare_ids);
	for (int i = 1; i < MANY; i++)
		ck_assert_msg(strcmp(ids[i - 1], ids[i]) != 0, "%s made twice", ids[i]);
	free(ids);
}

START_TEST(test_random_ids_are_version_4_and_distinct)
{
	assert_many_distinct(ids_random_uuid, 4);
}
END_TEST

START_TEST(test_time_ordered_ids_are_version_7_and_distinct)
{
	assert_many_distinct(ids_time_ordered_uuid, 7);
}
END_TEST

START_TEST(test_time_ordered_ids_start_with_the_time_and_sort_by_it)
{
	struct timespec before, after;
	clock_gettime(CLOCK_REALTIME, &before);
	char first[IDS_UUID_LENGTH + 1];
	ids_time_ordered_uuid(first);
	uuid_t parsed;
	ck_assert_int_eq(uuid_parse(first, parsed), 0);
	unsigned long long ms = 0;
	for (int i = 0; i < 6; i++)
		ms = ms << 8 | parsed[i];
	clock_gettime(CLOCK_REALTIME, &after);
	unsigned long long low = (unsigned long long)before.tv_sec * 1000 + (unsigned long long)before.tv_nsec / 1000000;
	unsigned long long high = (unsigned long long)after.tv_sec * 1000 + (unsigned long long)after.tv_nsec / 1000000;
	ck_assert_msg(ms >= low && ms <= high, "timestamp %llu not within [%llu, %llu]", ms, low, high);
	/* An id made a few milliseconds later sorts after it, as text too. */
	struct timespec pause = { 0, 5 * 1000 * 1000 };
	nanosleep(&pause, NULL);
	char later[IDS_UUID_LENGTH + 1];
	ids_time_ordered_uuid(later);
	ck_assert_msg(strcmp(first, later) < 0, "%s made after %s sorts before it", later, first);
}
END_TEST

START_TEST(test_the_time_is_read_back_from_a_time_ordered_id_and_from_no_other)
{
	char id[IDS_UUID_LENGTH + 1];
	ids_time_ordered_uuid(id);
	uuid_t parsed;
	ck_assert_int_eq(uuid_parse(id, parsed), 0);
	int64_t expected = 0;
	for (int i = 0; i < 6; i++)
		expected = expected << 8 | parsed[i];
	int64_t ms = -1;
	ck_assert(ids_time_ordered_uuid_ms(id, &ms));
	ck_assert_int_eq(ms, expected);
	/* RFC 9562's example: 2022-02-22 19:22:22 UTC. */
	ck_assert(ids_time_ordered_uuid_ms("017f22e2-79b0-7cc3-98c4-dc0c0c07398f", &ms));
	ck_assert_int_eq(ms, 1645557742000);
	char random[IDS_UUID_LENGTH + 1];
	ids_random_uuid(random);
	ck_assert(!ids_time_ordered_uuid_ms(random, &ms));
	ck_assert(!ids_time_ordered_uuid_ms("017f22e2-79b0-7cc3-18c4-dc0c0c07398f", &ms)); /* not the RFC variant */
	ck_assert(!ids_time_ordered_uuid_ms("017f22e2-79b0-7cc3-98c4-dc0c0c07398", &ms));
	ck_assert(!ids_time_ordered_uuid_ms("not a uuid at all, but 36 long......", &ms));
	ck_assert(!ids_time_ordered_uuid_ms(NULL, &ms));
}
END_TEST

START_TEST(test_a_forked_child_does_not_repeat_its_parents_ids)
{
	char parent_first[IDS_UUID_LENGTH + 1];
	ids_random_uuid(parent_first); /* the pool is filled, and mostly left, before the fork */
	int pipe_fds[2];
	ck_assert_int_eq(pipe(pipe_fds), 0);
	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		char id[IDS_UUID_LENGTH + 1];
		ids_random_uuid(id);
		ssize_t written = write(pipe_fds[1], id, IDS_UUID_LENGTH);
		_exit(written == IDS_UUID_LENGTH ? 0 : 1);
	}
	char from_child[IDS_UUID_LENGTH + 1] = { 0 };
	ck_assert_int_eq((int)read(pipe_fds[0], from_child, IDS_UUID_LENGTH), IDS_UUID_LENGTH);
	int status;
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
	char parent_next[IDS_UUID_LENGTH + 1];
	ids_random_uuid(parent_next);
	ck_assert_msg(strcmp(from_child, parent_next) != 0, "the child made %s, as its parent did", from_child);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("ids");
	TCase *uuids = tcase_create("uuids");
	tcase_add_test(uuids, test_random_ids_are_version_4_and_distinct);
	tcase_add_test(uuids, test_time_ordered_ids_are_version_7_and_distinct);
	tcase_add_test(uuids, test_time_ordered_ids_start_with_the_time_and_sort_by_it);
	tcase_add_test(uuids, test_the_time_is_read_back_from_a_time_ordered_id_and_from_no_other);
	tcase_add_test(uuids, test_a_forked_child_does_not_repeat_its_parents_ids);
	suite_add_tcase(suite, uuids);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

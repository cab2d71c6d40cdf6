/* The dispatcher's batching rules and the matching of a batch against the pipeline index. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

static const struct batch_policy policy = { .max_signals = 20, .max_wait_ms = 500 };

/* ---- when a batch is due ---- */

START_TEST(test_empty_batch_is_never_due)
{
	ck_assert(!batch_is_due(&policy, 0, 1000, 1000));
	ck_assert(!batch_is_due(&policy, 0, 1000, 1000000));
	ck_assert_int_eq(batch_wait_ms(&policy, 0, 1000, 1000), -1);
	ck_assert_int_eq(batch_wait_ms(&policy, 0, 1000, 1000000), -1);
}
END_TEST

START_TEST(test_full_batch_is_due_at_once)
{
	ck_assert(batch_is_due(&policy, 20, 1000, 1000));
	ck_assert(batch_is_due(&policy, 21, 1000, 1000));
	ck_assert_int_eq(batch_wait_ms(&policy, 20, 1000, 1000), 0);
	ck_assert(!batch_is_due(&policy, 19, 1000, 1000));
}
END_TEST

START_TEST(test_batch_is_due_when_first_signal_reaches_max_wait)
{
	ck_assert(!batch_is_due(&policy, 1, 1000, 1499));
	ck_assert_int_eq(batch_wait_ms(&policy, 1, 1000, 1499), 1);
	ck_assert(batch_is_due(&policy, 1, 1000, 1500));
	ck_assert_int_eq(batch_wait_ms(&policy, 1, 1000, 1500), 0);
	ck_assert(batch_is_due(&policy, 1, 1000, 9000));
	ck_assert_int_eq(batch_wait_ms(&policy, 1, 1000, 9000), 0);
}
END_TEST

START_TEST(test_wait_counts_down_from_first_signal)
{
	ck_assert_int_eq(batch_wait_ms(&policy, 1, 1000, 1000), 500);
	ck_assert_int_eq(batch_wait_ms(&policy, 5, 1000, 1200), 300);
	ck_assert_int_eq(batch_wait_ms(&policy, 19, 1000, 1499), 1);
}
END_TEST

START_TEST(test_zero_max_wait_flushes_every_signal_at_once)
{
	const struct batch_policy immediate = { .max_signals = 100, .max_wait_ms = 0 };
	ck_assert(batch_is_due(&immediate, 1, 1000, 1000));
	ck_assert_int_eq(batch_wait_ms(&immediate, 1, 1000, 1000), 0);
	ck_assert(!batch_is_due(&immediate, 0, 1000, 1000));
}
END_TEST

START_TEST(test_batch_of_one_signal_max_is_due_with_first_signal)
{
	const struct batch_policy single = { .max_signals = 1, .max_wait_ms = 60000 };
	ck_assert(batch_is_due(&single, 1, 1000, 1000));
	ck_assert(!batch_is_due(&single, 0, 1000, 1000));
}
END_TEST

/* ---- rounds: group commit and the fixed rule ---- */

static const struct batch_policy group = { .max_signals = 1000, .max_wait_ms = 500, .mode = BATCH_MODE_GROUP };
static const struct batch_policy fixed = { .max_signals = 20, .max_wait_ms = 500, .mode = BATCH_MODE_FIXED };

START_TEST(test_group_mode_starts_a_round_at_once_when_none_is_in_flight)
{
	ck_assert(batch_round_due(&group, 1, 1000, false, 1000));
	ck_assert(!batch_round_due(&group, 0, 1000, false, 1000));
}
END_TEST

START_TEST(test_no_round_starts_while_one_is_in_flight)
{
	ck_assert(!batch_round_due(&group, 500, 1000, true, 1000));
	ck_assert(!batch_round_due(&group, 5000, 1000, true, 900000));
	ck_assert(!batch_round_due(&fixed, 20, 1000, true, 1000));
	ck_assert(!batch_round_due(&fixed, 1, 1000, true, 9000));
}
END_TEST

START_TEST(test_fixed_mode_waits_for_a_full_batch_or_the_max_wait)
{
	ck_assert(!batch_round_due(&fixed, 1, 1000, false, 1000));
	ck_assert(!batch_round_due(&fixed, 19, 1000, false, 1499));
	ck_assert(batch_round_due(&fixed, 20, 1000, false, 1000));
	ck_assert(batch_round_due(&fixed, 1, 1000, false, 1500));
}
END_TEST

START_TEST(test_a_round_takes_at_most_max_signals_of_what_waits)
{
	ck_assert_uint_eq(batch_round_size(&group, 7), 7);
	ck_assert_uint_eq(batch_round_size(&group, 1000), 1000);
	ck_assert_uint_eq(batch_round_size(&group, 2500), 1000);
	ck_assert_uint_eq(batch_round_size(&fixed, 45), 20);
	ck_assert_uint_eq(batch_round_size(&fixed, 0), 0);
}
END_TEST

START_TEST(test_batch_mode_names_read_back)
{
	enum batch_mode mode = BATCH_MODE_FIXED;
	ck_assert(batch_mode_from_name("group", &mode));
	ck_assert_int_eq(mode, BATCH_MODE_GROUP);
	ck_assert(batch_mode_from_name("fixed", &mode));
	ck_assert_int_eq(mode, BATCH_MODE_FIXED);
	ck_assert(!batch_mode_from_name("Group", &mode));
	ck_assert(!batch_mode_from_name("", &mode));
	ck_assert(!batch_mode_from_name(NULL, &mode));
	ck_assert_int_eq(mode, BATCH_MODE_FIXED);
}
END_TEST

/* ---- matching ---- */

/* Pipelines p0 {AAPL}, p1 {MSFT, AAPL}, p2 {TSLA}, p3 {NVDA, MSFT}. */
static struct pipeline_index *build_index(void)
{
	static const char *const lists[][3] = {
		{ "AAPL", NULL }, { "MSFT", "AAPL", NULL }, { "TSLA", NULL }, { "NVDA", "MSFT", NULL }
	};
	size_t count = sizeof lists / sizeof lists[0];
	struct pipeline *pipelines = calloc(count, sizeof *pipelines);
	for (size_t i = 0; i < count; i++) {
		snprintf(pipelines[i].id, sizeof pipelines[i].id, "p%zu", i);
		pipelines[i].name = strdup(pipelines[i].id);
		pipelines[i].tickers = calloc(3, sizeof *pipelines[i].tickers);
		while (lists[i][pipelines[i].ticker_count] != NULL) {
			pipelines[i].tickers[pipelines[i].ticker_count] = strdup(lists[i][pipelines[i].ticker_count]);
			pipelines[i].ticker_count++;
		}
		pipelines[i].is_active = true;
	}
	struct pipeline_index *index = pipeline_index_build(pipelines, count);
	ck_assert_ptr_nonnull(index);
	return index;
}

/* A signal with id "s<n>" (as a UUID) and the given NULL-terminated tickers. */
static void make_signal(struct signal *signal, int n, const char *const *tickers)
{
	json_t *list = json_array();
	for (size_t i = 0; tickers[i] != NULL; i++)
		json_array_append_new(list, json_pack("{s:s, s:s, s:i}", "ticker", tickers[i], "signal",
						      "BULLISH", "confidence", 50));
	char id[SIGNAL_ID_LENGTH + 1];
	snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", n);
	json_t *object = json_pack("{s:s, s:s, s:s, s:o}", "signal_id", id, "signal_type", "test", "source",
				   "unit", "tickers", list);
	struct signal_error error;
	int status = signal_from_json(object, signal, &error);
	ck_assert_msg(status == 0, "%s: %s", error.field, error.reason);
	json_decref(object);
}

static const char *signal_id_of(int n)
{
	static char ids[8][SIGNAL_ID_LENGTH + 1];
	snprintf(ids[n], sizeof ids[n], "00000000-0000-4000-8000-%012d", n);
	return ids[n];
}

static const struct batch_match *match_for(const struct batch_match *matches, long count, const char *id)
{
	for (long i = 0; i < count; i++)
		if (strcmp(matches[i].pipeline->id, id) == 0)
			return &matches[i];
	return NULL;
}

/* Asserts that a JSON array holds exactly these strings, in this order. */
static void expect_strings(const json_t *array, const char *const *expected, size_t count)
{
	ck_assert_msg(json_array_size(array) == count, "%zu items, expected %zu", json_array_size(array), count);
	for (size_t i = 0; i < count; i++)
		ck_assert_str_eq(json_string_value(json_array_get(array, i)), expected[i]);
}

static void free_signals(struct signal *signals, size_t count)
{
	for (size_t i = 0; i < count; i++)
		signal_free(&signals[i]);
}

START_TEST(test_pipeline_matched_by_two_signals_appears_once_with_both_ids)
{
	struct pipeline_index *index = build_index();
	struct signal signals[2];
	make_signal(&signals[0], 2, (const char *const[]){ "TSLA", NULL });
	make_signal(&signals[1], 1, (const char *const[]){ "TSLA", NULL });
	struct batch_match *matches;
	long count = batch_match_signals(index, signals, 2, &matches);
	ck_assert_int_eq(count, 1);
	ck_assert_str_eq(matches[0].pipeline->id, "p2");
	ck_assert_uint_eq(matches[0].position, 2);
	/* In arrival order, not sorted. */
	expect_strings(matches[0].signal_ids, (const char *const[]){ signal_id_of(2), signal_id_of(1) }, 2);
	expect_strings(matches[0].tickers, (const char *const[]){ "TSLA" }, 1);
	batch_matches_free(matches, (size_t)count);
	free_signals(signals, 2);
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_signal_with_two_matching_tickers_is_listed_once)
{
	struct pipeline_index *index = build_index();
	struct signal signal;
	make_signal(&signal, 1, (const char *const[]){ "MSFT", "AAPL", NULL });
	struct batch_match *matches;
	long count = batch_match_signals(index, &signal, 1, &matches);
	ck_assert_int_eq(count, 3); /* p0 (AAPL), p1 (both), p3 (MSFT) */
	const struct batch_match *p1 = match_for(matches, count, "p1");
	ck_assert_ptr_nonnull(p1);
	expect_strings(p1->signal_ids, (const char *const[]){ signal_id_of(1) }, 1);
	expect_strings(p1->tickers, (const char *const[]){ "MSFT", "AAPL" }, 2);
	const struct batch_match *p0 = match_for(matches, count, "p0");
	ck_assert_ptr_nonnull(p0);
	expect_strings(p0->tickers, (const char *const[]){ "AAPL" }, 1);
	const struct batch_match *p3 = match_for(matches, count, "p3");
	ck_assert_ptr_nonnull(p3);
	expect_strings(p3->tickers, (const char *const[]){ "MSFT" }, 1);
	ck_assert_ptr_null(match_for(matches, count, "p2"));
	batch_matches_free(matches, (size_t)count);
	signal_free(&signal);
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_same_ticker_twice_in_one_signal_is_listed_once)
{
	struct pipeline_index *index = build_index();
	struct signal signal;
	make_signal(&signal, 1, (const char *const[]){ "TSLA", "TSLA", NULL });
	struct batch_match *matches;
	long count = batch_match_signals(index, &signal, 1, &matches);
	ck_assert_int_eq(count, 1);
	expect_strings(matches[0].signal_ids, (const char *const[]){ signal_id_of(1) }, 1);
	expect_strings(matches[0].tickers, (const char *const[]){ "TSLA" }, 1);
	batch_matches_free(matches, (size_t)count);
	signal_free(&signal);
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_unmatched_signals_produce_nothing)
{
	struct pipeline_index *index = build_index();
	struct signal signals[2];
	make_signal(&signals[0], 1, (const char *const[]){ "GOOGL", NULL });
	make_signal(&signals[1], 2, (const char *const[]){ "AMZN", "aapl", NULL });
	struct batch_match *matches = (struct batch_match *)&matches;
	ck_assert_int_eq(batch_match_signals(index, signals, 2, &matches), 0);
	ck_assert_ptr_null(matches);
	free_signals(signals, 2);
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_empty_batch_or_index_matches_nothing)
{
	struct pipeline_index *index = build_index();
	struct batch_match *matches = (struct batch_match *)&matches;
	ck_assert_int_eq(batch_match_signals(index, NULL, 0, &matches), 0);
	ck_assert_ptr_null(matches);

	struct signal signal;
	make_signal(&signal, 1, (const char *const[]){ "AAPL", NULL });
	struct pipeline_index *empty = pipeline_index_build(NULL, 0);
	matches = (struct batch_match *)&matches;
	ck_assert_int_eq(batch_match_signals(empty, &signal, 1, &matches), 0);
	ck_assert_ptr_null(matches);
	matches = (struct batch_match *)&matches;
	ck_assert_int_eq(batch_match_signals(NULL, &signal, 1, &matches), 0);
	ck_assert_ptr_null(matches);
	signal_free(&signal);
	pipeline_index_free(empty);
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_batch_over_several_pipelines_groups_by_pipeline)
{
	struct pipeline_index *index = build_index();
	struct signal signals[4];
	make_signal(&signals[0], 1, (const char *const[]){ "AAPL", NULL });
	make_signal(&signals[1], 2, (const char *const[]){ "NVDA", "GOOGL", NULL });
	make_signal(&signals[2], 3, (const char *const[]){ "MSFT", NULL });
	make_signal(&signals[3], 4, (const char *const[]){ "AAPL", NULL });
	struct batch_match *matches;
	long count = batch_match_signals(index, signals, 4, &matches);
	ck_assert_int_eq(count, 3);
	const struct batch_match *p0 = match_for(matches, count, "p0");
	const struct batch_match *p1 = match_for(matches, count, "p1");
	const struct batch_match *p3 = match_for(matches, count, "p3");
	ck_assert_ptr_nonnull(p0);
	ck_assert_ptr_nonnull(p1);
	ck_assert_ptr_nonnull(p3);
	ck_assert_ptr_null(match_for(matches, count, "p2"));
	expect_strings(p0->signal_ids, (const char *const[]){ signal_id_of(1), signal_id_of(4) }, 2);
	expect_strings(p0->tickers, (const char *const[]){ "AAPL" }, 1);
	expect_strings(p1->signal_ids, (const char *const[]){ signal_id_of(1), signal_id_of(3), signal_id_of(4) }, 3);
	expect_strings(p1->tickers, (const char *const[]){ "AAPL", "MSFT" }, 2);
	expect_strings(p3->signal_ids, (const char *const[]){ signal_id_of(2), signal_id_of(3) }, 2);
	expect_strings(p3->tickers, (const char *const[]){ "NVDA", "MSFT" }, 2);
	/* Each match points at the index's own pipeline at its position. */
	for (long i = 0; i < count; i++)
		ck_assert_ptr_eq(matches[i].pipeline, pipeline_index_pipeline(index, matches[i].position));
	batch_matches_free(matches, (size_t)count);
	free_signals(signals, 4);
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_large_batch_matches_every_pipeline_once)
{
	/* 300 signals all naming AAPL: p0 and p1, each with 300 distinct ids. */
	struct pipeline_index *index = build_index();
	enum { COUNT = 300 };
	struct signal *signals = calloc(COUNT, sizeof *signals);
	for (int i = 0; i < COUNT; i++)
		make_signal(&signals[i], i, (const char *const[]){ "AAPL", NULL });
	struct batch_match *matches;
	long count = batch_match_signals(index, signals, COUNT, &matches);
	ck_assert_int_eq(count, 2);
	for (long m = 0; m < count; m++) {
		ck_assert_uint_eq(json_array_size(matches[m].signal_ids), COUNT);
		ck_assert_str_eq(json_string_value(json_array_get(matches[m].signal_ids, COUNT - 1)),
				 signals[COUNT - 1].signal_id);
		ck_assert_uint_eq(json_array_size(matches[m].tickers), 1);
	}
	batch_matches_free(matches, (size_t)count);
	free_signals(signals, COUNT);
	free(signals);
	pipeline_index_free(index);
}
END_TEST

static Suite *batch_suite(void)
{
	Suite *suite = suite_create("batch");
	TCase *due = tcase_create("due");
	tcase_add_test(due, test_empty_batch_is_never_due);
	tcase_add_test(due, test_full_batch_is_due_at_once);
	tcase_add_test(due, test_batch_is_due_when_first_signal_reaches_max_wait);
	tcase_add_test(due, test_wait_counts_down_from_first_signal);
	tcase_add_test(due, test_zero_max_wait_flushes_every_signal_at_once);
	tcase_add_test(due, test_batch_of_one_signal_max_is_due_with_first_signal);
	suite_add_tcase(suite, due);
	TCase *rounds = tcase_create("rounds");
	tcase_add_test(rounds, test_group_mode_starts_a_round_at_once_when_none_is_in_flight);
	tcase_add_test(rounds, test_no_round_starts_while_one_is_in_flight);
	tcase_add_test(rounds, test_fixed_mode_waits_for_a_full_batch_or_the_max_wait);
	tcase_add_test(rounds, test_a_round_takes_at_most_max_signals_of_what_waits);
	tcase_add_test(rounds, test_batch_mode_names_read_back);
	suite_add_tcase(suite, rounds);

	TCase *match = tcase_create("match");
	tcase_add_test(match, test_pipeline_matched_by_two_signals_appears_once_with_both_ids);
	tcase_add_test(match, test_signal_with_two_matching_tickers_is_listed_once);
	tcase_add_test(match, test_same_ticker_twice_in_one_signal_is_listed_once);
	tcase_add_test(match, test_unmatched_signals_produce_nothing);
	tcase_add_test(match, test_empty_batch_or_index_matches_nothing);
	tcase_add_test(match, test_batch_over_several_pipelines_groups_by_pipeline);
	tcase_add_test(match, test_large_batch_matches_every_pipeline_once);
	suite_add_tcase(suite, match);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(batch_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

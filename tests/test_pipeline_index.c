/* The dispatcher's ticker -> pipelines index, built from plain pipeline structs. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_index.h"

/* Fills *pipeline as pipeline_store would: every string malloc'd, owned by the struct. */
static void make_pipeline(struct pipeline *pipeline, const char *name, const char *const *tickers,
			  size_t ticker_count)
{
	memset(pipeline, 0, sizeof *pipeline);
	snprintf(pipeline->id, sizeof pipeline->id, "%s", name);
	pipeline->name = strdup(name);
	snprintf(pipeline->trigger_mode, sizeof pipeline->trigger_mode, "signal");
	pipeline->is_active = true;
	pipeline->tickers = calloc(ticker_count == 0 ? 1 : ticker_count, sizeof *pipeline->tickers);
	for (size_t i = 0; i < ticker_count; i++)
		pipeline->tickers[i] = strdup(tickers[i]);
	pipeline->ticker_count = ticker_count;
	pipeline->config = json_pack("{s:[]}", "nodes");
}

/* Builds an index of up to four small pipelines, each given as a NULL-terminated ticker list. */
static struct pipeline_index *build_small(const char *const *const *lists, size_t count)
{
	struct pipeline *pipelines = calloc(count == 0 ? 1 : count, sizeof *pipelines);
	for (size_t i = 0; i < count; i++) {
		size_t tickers = 0;
		while (lists[i][tickers] != NULL)
			tickers++;
		char name[24];
		snprintf(name, sizeof name, "p%zu", i);
		make_pipeline(&pipelines[i], name, lists[i], tickers);
	}
	struct pipeline_index *index = pipeline_index_build(pipelines, count);
	ck_assert_ptr_nonnull(index);
	return index;
}

static int compare_positions(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/* Asserts that `ticker` maps to exactly the positions given (in any order). */
static void expect_lookup(const struct pipeline_index *index, const char *ticker, const size_t *expected,
			  size_t expected_count)
{
	size_t count = 12345;
	const size_t *positions = pipeline_index_lookup(index, ticker, &count);
	ck_assert_msg(count == expected_count, "%s: %zu pipelines, expected %zu", ticker, count, expected_count);
	if (expected_count == 0) {
		ck_assert_ptr_null(positions);
		return;
	}
	ck_assert_ptr_nonnull(positions);
	size_t *sorted = malloc(count * sizeof *sorted);
	memcpy(sorted, positions, count * sizeof *sorted);
	qsort(sorted, count, sizeof *sorted, compare_positions);
	for (size_t i = 0; i < count; i++)
		ck_assert_msg(sorted[i] == expected[i], "%s: position %zu is %zu, expected %zu", ticker, i,
			      sorted[i], expected[i]);
	free(sorted);
}

static const char *const watch_aapl[] = { "AAPL", NULL };
static const char *const watch_aapl_msft[] = { "AAPL", "MSFT", NULL };
static const char *const watch_tsla[] = { "TSLA", NULL };
static const char *const watch_msft_twice[] = { "MSFT", "NVDA", "MSFT", NULL };

START_TEST(test_lookup_returns_exactly_the_pipelines_watching_ticker)
{
	const char *const *lists[] = { watch_aapl, watch_aapl_msft, watch_tsla, watch_msft_twice };
	struct pipeline_index *index = build_small(lists, 4);
	expect_lookup(index, "AAPL", (const size_t[]){ 0, 1 }, 2);
	expect_lookup(index, "MSFT", (const size_t[]){ 1, 3 }, 2);
	expect_lookup(index, "TSLA", (const size_t[]){ 2 }, 1);
	expect_lookup(index, "NVDA", (const size_t[]){ 3 }, 1);
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_positions_name_the_right_pipelines)
{
	const char *const *lists[] = { watch_aapl, watch_aapl_msft, watch_tsla };
	struct pipeline_index *index = build_small(lists, 3);
	size_t count;
	const size_t *positions = pipeline_index_lookup(index, "TSLA", &count);
	ck_assert_uint_eq(count, 1);
	const struct pipeline *pipeline = pipeline_index_pipeline(index, positions[0]);
	ck_assert_str_eq(pipeline->id, "p2");
	ck_assert_str_eq(pipeline->tickers[0], "TSLA");
	for (size_t i = 0; i < 3; i++) {
		char name[24];
		snprintf(name, sizeof name, "p%zu", i);
		ck_assert_str_eq(pipeline_index_pipeline(index, i)->name, name);
	}
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_unknown_ticker_matches_nothing)
{
	const char *const *lists[] = { watch_aapl, watch_aapl_msft };
	struct pipeline_index *index = build_small(lists, 2);
	expect_lookup(index, "GOOGL", NULL, 0);
	expect_lookup(index, "", NULL, 0);
	/* Case matters: tickers are compared exactly. */
	expect_lookup(index, "aapl", NULL, 0);
	expect_lookup(index, "AAPL ", NULL, 0);
	expect_lookup(index, "AAP", NULL, 0);
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_pipeline_listing_ticker_twice_is_posted_once)
{
	static const char *const twice_apart[] = { "AAPL", "MSFT", "NVDA", "AAPL", NULL };
	static const char *const twice_adjacent[] = { "AAPL", "AAPL", NULL };
	const char *const *lists[] = { watch_msft_twice, twice_apart, twice_adjacent };
	struct pipeline_index *index = build_small(lists, 3);
	expect_lookup(index, "MSFT", (const size_t[]){ 0, 1 }, 2);
	expect_lookup(index, "AAPL", (const size_t[]){ 1, 2 }, 2);
	expect_lookup(index, "NVDA", (const size_t[]){ 0, 1 }, 2);
	ck_assert_uint_eq(pipeline_index_ticker_count(index), 3);
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_counts_pipelines_and_distinct_tickers)
{
	static const char *const none[] = { NULL };
	const char *const *lists[] = { watch_aapl, watch_aapl_msft, watch_tsla, watch_msft_twice, none };
	struct pipeline_index *index = build_small(lists, 5);
	ck_assert_uint_eq(pipeline_index_pipeline_count(index), 5);
	ck_assert_uint_eq(pipeline_index_ticker_count(index), 4); /* AAPL MSFT TSLA NVDA */
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_empty_index_matches_nothing)
{
	struct pipeline_index *index = pipeline_index_build(NULL, 0);
	ck_assert_ptr_nonnull(index);
	ck_assert_uint_eq(pipeline_index_pipeline_count(index), 0);
	ck_assert_uint_eq(pipeline_index_ticker_count(index), 0);
	expect_lookup(index, "AAPL", NULL, 0);
	pipeline_index_free(index);

	/* Pipelines that watch no ticker give an index without tickers. */
	static const char *const none[] = { NULL };
	const char *const *lists[] = { none, none };
	index = build_small(lists, 2);
	ck_assert_uint_eq(pipeline_index_pipeline_count(index), 2);
	ck_assert_uint_eq(pipeline_index_ticker_count(index), 0);
	expect_lookup(index, "AAPL", NULL, 0);
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_no_index_counts_zero)
{
	size_t count = 7;
	ck_assert_ptr_null(pipeline_index_lookup(NULL, "AAPL", &count));
	ck_assert_uint_eq(count, 0);
	ck_assert_uint_eq(pipeline_index_pipeline_count(NULL), 0);
	ck_assert_uint_eq(pipeline_index_ticker_count(NULL), 0);
	pipeline_index_free(NULL);
}
END_TEST

START_TEST(test_lookup_key_need_not_be_the_stored_string)
{
	const char *const *lists[] = { watch_aapl_msft };
	struct pipeline_index *index = build_small(lists, 1);
	char key[8];
	snprintf(key, sizeof key, "MS%s", "FT");
	expect_lookup(index, key, (const size_t[]){ 0 }, 1);
	pipeline_index_free(index);
}
END_TEST

enum { MANY_PIPELINES = 10000, MANY_TICKERS = 5000, TICKERS_PER_PIPELINE = 3 };

/* The three tickers pipeline i watches; the third repeats the first for every 7th pipeline. */
static size_t many_ticker(size_t pipeline, size_t t)
{
	if (t == 2 && pipeline % 7 == 0)
		return pipeline % MANY_TICKERS;
	size_t steps[] = { 1, 7, 13 };
	return (pipeline * steps[t] + t * 1009) % MANY_TICKERS;
}

START_TEST(test_many_pipelines_and_tickers_are_all_found)
{
	struct pipeline *pipelines = calloc(MANY_PIPELINES, sizeof *pipelines);
	/* expected[t] = the pipelines watching ticker t, ascending, built the slow obvious way. */
	size_t **expected = calloc(MANY_TICKERS, sizeof *expected);
	size_t *expected_count = calloc(MANY_TICKERS, sizeof *expected_count);
	for (size_t i = 0; i < MANY_PIPELINES; i++) {
		char names[TICKERS_PER_PIPELINE][24];
		const char *tickers[TICKERS_PER_PIPELINE];
		for (size_t t = 0; t < TICKERS_PER_PIPELINE; t++) {
			size_t ticker = many_ticker(i, t);
			snprintf(names[t], sizeof names[t], "T%zu", ticker);
			tickers[t] = names[t];
			int seen = 0;
			for (size_t earlier = 0; earlier < t; earlier++)
				seen |= many_ticker(i, earlier) == ticker;
			if (seen)
				continue;
			expected[ticker] = realloc(expected[ticker], (expected_count[ticker] + 1) * sizeof **expected);
			expected[ticker][expected_count[ticker]++] = i;
		}
		char name[24];
		snprintf(name, sizeof name, "p%zu", i);
		make_pipeline(&pipelines[i], name, tickers, TICKERS_PER_PIPELINE);
	}
	struct pipeline_index *index = pipeline_index_build(pipelines, MANY_PIPELINES);
	ck_assert_ptr_nonnull(index);
	ck_assert_uint_eq(pipeline_index_pipeline_count(index), MANY_PIPELINES);
	size_t distinct = 0;
	for (size_t t = 0; t < MANY_TICKERS; t++) {
		char name[24];
		snprintf(name, sizeof name, "T%zu", t);
		expect_lookup(index, name, expected[t], expected_count[t]);
		distinct += expected_count[t] > 0;
		free(expected[t]);
	}
	ck_assert_uint_eq(pipeline_index_ticker_count(index), distinct);
	ck_assert_uint_gt(distinct, MANY_TICKERS / 2);
	expect_lookup(index, "T5000", NULL, 0);
	expect_lookup(index, "T-1", NULL, 0);
	free(expected);
	free(expected_count);
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_one_ticker_watched_by_every_pipeline)
{
	enum { COUNT = 3000 };
	struct pipeline *pipelines = calloc(COUNT, sizeof *pipelines);
	size_t *all = malloc(COUNT * sizeof *all);
	for (size_t i = 0; i < COUNT; i++) {
		const char *tickers[] = { "SPY", i % 2 ? "QQQ" : "SPY" };
		char name[24];
		snprintf(name, sizeof name, "p%zu", i);
		make_pipeline(&pipelines[i], name, tickers, 2);
		all[i] = i;
	}
	struct pipeline_index *index = pipeline_index_build(pipelines, COUNT);
	expect_lookup(index, "SPY", all, COUNT);
	size_t count;
	pipeline_index_lookup(index, "QQQ", &count);
	ck_assert_uint_eq(count, COUNT / 2);
	ck_assert_uint_eq(pipeline_index_ticker_count(index), 2);
	free(all);
	pipeline_index_free(index);
}
END_TEST

static Suite *pipeline_index_suite(void)
{
	Suite *suite = suite_create("pipeline_index");
	TCase *lookup = tcase_create("lookup");
	tcase_add_test(lookup, test_lookup_returns_exactly_the_pipelines_watching_ticker);
	tcase_add_test(lookup, test_positions_name_the_right_pipelines);
	tcase_add_test(lookup, test_unknown_ticker_matches_nothing);
	tcase_add_test(lookup, test_pipeline_listing_ticker_twice_is_posted_once);
	tcase_add_test(lookup, test_counts_pipelines_and_distinct_tickers);
	tcase_add_test(lookup, test_empty_index_matches_nothing);
	tcase_add_test(lookup, test_no_index_counts_zero);
	tcase_add_test(lookup, test_lookup_key_need_not_be_the_stored_string);
	suite_add_tcase(suite, lookup);

	TCase *scale = tcase_create("scale");
	tcase_add_test(scale, test_many_pipelines_and_tickers_are_all_found);
	tcase_add_test(scale, test_one_ticker_watched_by_every_pipeline);
	suite_add_tcase(suite, scale);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(pipeline_index_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

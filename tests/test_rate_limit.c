/* Per-source token buckets: the rate, the explicit burst, overrides, and bad configurations. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "rate_limit.h"

START_TEST(test_no_rate_means_unlimited)
{
	char err[256];
	struct rate_limiter *limiter = rate_limiter_new(0, 0, "", err, sizeof err);
	ck_assert_ptr_nonnull(limiter);
	for (int i = 0; i < 100000; i++)
		ck_assert(rate_limiter_allow(limiter, "flood", 1000.0));
	rate_limiter_free(limiter);
}
END_TEST

START_TEST(test_burst_then_rate)
{
	char err[256];
	struct rate_limiter *limiter = rate_limiter_new(10, 5, "", err, sizeof err);
	ck_assert_ptr_nonnull(limiter);
	for (int i = 0; i < 5; i++)
		ck_assert_msg(rate_limiter_allow(limiter, "news", 100.0), "burst token %d refused", i);
	ck_assert(!rate_limiter_allow(limiter, "news", 100.0));
	/* 10 per second: one more token every 0.1 s, never more than the burst. */
	ck_assert(!rate_limiter_allow(limiter, "news", 100.05));
	ck_assert(rate_limiter_allow(limiter, "news", 100.15));
	ck_assert(!rate_limiter_allow(limiter, "news", 100.15));
	int allowed = 0;
	for (int i = 0; i < 20; i++)
		allowed += rate_limiter_allow(limiter, "news", 1000.0);
	ck_assert_int_eq(allowed, 5);
	/* Each source has its own bucket. */
	ck_assert(rate_limiter_allow(limiter, "other", 1000.0));
	rate_limiter_free(limiter);
}
END_TEST

START_TEST(test_override_per_source)
{
	char err[256];
	struct rate_limiter *limiter = rate_limiter_new(0, 0, "mock_generator=1:2, scanner=0:0", err, sizeof err);
	ck_assert_msg(limiter != NULL, "%s", err);
	ck_assert(rate_limiter_allow(limiter, "mock_generator", 10.0));
	ck_assert(rate_limiter_allow(limiter, "mock_generator", 10.0));
	ck_assert(!rate_limiter_allow(limiter, "mock_generator", 10.0));
	for (int i = 0; i < 1000; i++) {
		ck_assert(rate_limiter_allow(limiter, "scanner", 10.0));
		ck_assert(rate_limiter_allow(limiter, "unlisted", 10.0));
	}
	rate_limiter_free(limiter);
}
END_TEST

START_TEST(test_bad_limits_are_refused_with_a_reason)
{
	static const struct {
		double rate, burst;
		const char *overrides, *expected;
	} cases[] = {
		{ 5, 0, "", "explicit burst" },
		{ -1, 10, "", "rate must be" },
		{ 0, 0, "news", "is not source=rate:burst" },
		{ 0, 0, "news=5", "is not source=rate:burst" },
		{ 0, 0, "=5:5", "is not source=rate:burst" },
		{ 0, 0, "news=x:5", "rate must be" },
		{ 0, 0, "news=5:0", "explicit burst" },
		{ 0, 0, "news=5:5,news=6:6", "given twice" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256] = "";
		struct rate_limiter *limiter =
			rate_limiter_new(cases[i].rate, cases[i].burst, cases[i].overrides, err, sizeof err);
		ck_assert_msg(limiter == NULL, "accepted case %zu", i);
		ck_assert_msg(strstr(err, cases[i].expected) != NULL, "case %zu: '%s'", i, err);
	}
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("rate_limit");
	TCase *buckets = tcase_create("buckets");
	tcase_add_test(buckets, test_no_rate_means_unlimited);
	tcase_add_test(buckets, test_burst_then_rate);
	tcase_add_test(buckets, test_override_per_source);
	tcase_add_test(buckets, test_bad_limits_are_refused_with_a_reason);
	suite_add_tcase(suite, buckets);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

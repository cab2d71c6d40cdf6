/*
 * The dispatcher's memory of live runs: what it notes, what an end or a
 * lost notification makes it forget, and the races between a round's
 * statement and a run's end that must never leave a run remembered live.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "live_runs.h"

#define PIPELINE_A "0190a1b2-0000-7000-8000-00000000000a"
#define PIPELINE_B "0190a1b2-0000-7000-8000-00000000000b"
#define MAX_AGE_MS 5000

START_TEST(test_a_claimed_key_is_known_live_until_its_run_ends)
{
	struct live_runs *runs = live_runs_new(MAX_AGE_MS);
	ck_assert_ptr_nonnull(runs);
	ck_assert(!live_runs_known(runs, PIPELINE_A, "", 100));
	live_runs_note_live(runs, PIPELINE_A, "", live_runs_sequence(runs), 100);
	ck_assert(live_runs_known(runs, PIPELINE_A, "", 150));
	/* Another pipeline, or the same pipeline's ticker-scoped key, is another key. */
	ck_assert(!live_runs_known(runs, PIPELINE_B, "", 150));
	ck_assert(!live_runs_known(runs, PIPELINE_A, "AAPL", 150));
	ck_assert_uint_eq(live_runs_count(runs, 150), 1);
	live_runs_note_ended(runs, PIPELINE_A, "");
	ck_assert(!live_runs_known(runs, PIPELINE_A, "", 160));
	ck_assert_uint_eq(live_runs_count(runs, 160), 0);
	live_runs_free(runs);
}
END_TEST

START_TEST(test_keys_are_pipeline_and_ticker)
{
	struct live_runs *runs = live_runs_new(MAX_AGE_MS);
	uint64_t sent = live_runs_sequence(runs);
	live_runs_note_live(runs, PIPELINE_A, "AAPL", sent, 0);
	live_runs_note_live(runs, PIPELINE_A, "MSFT", sent, 0);
	live_runs_note_ended(runs, PIPELINE_A, "AAPL");
	ck_assert(!live_runs_known(runs, PIPELINE_A, "AAPL", 1));
	ck_assert(live_runs_known(runs, PIPELINE_A, "MSFT", 1));
	live_runs_free(runs);
}
END_TEST

/*
 * The statement saw the run live, the run ended before the round's answer
 * was read: noting it now would skip every signal of the pipeline while
 * nothing runs.
 */
START_TEST(test_an_end_after_the_round_was_sent_wins_over_its_answer)
{
	struct live_runs *runs = live_runs_new(MAX_AGE_MS);
	uint64_t sent = live_runs_sequence(runs);
	live_runs_note_ended(runs, PIPELINE_A, "");
	live_runs_note_live(runs, PIPELINE_A, "", sent, 10);
	ck_assert(!live_runs_known(runs, PIPELINE_A, "", 11));
	/* Other keys of the same round are noted. */
	live_runs_note_live(runs, PIPELINE_B, "", sent, 10);
	ck_assert(live_runs_known(runs, PIPELINE_B, "", 11));
	/* A round sent after the end is believed. */
	live_runs_note_live(runs, PIPELINE_A, "", live_runs_sequence(runs), 12);
	ck_assert(live_runs_known(runs, PIPELINE_A, "", 13));
	live_runs_free(runs);
}
END_TEST

START_TEST(test_forgetting_all_distrusts_rounds_sent_before)
{
	struct live_runs *runs = live_runs_new(MAX_AGE_MS);
	uint64_t sent = live_runs_sequence(runs);
	live_runs_note_live(runs, PIPELINE_A, "", sent, 0);
	live_runs_forget_all(runs);
	ck_assert(!live_runs_known(runs, PIPELINE_A, "", 1));
	live_runs_note_live(runs, PIPELINE_B, "", sent, 1);
	ck_assert(!live_runs_known(runs, PIPELINE_B, "", 2));
	live_runs_note_live(runs, PIPELINE_B, "", live_runs_sequence(runs), 2);
	ck_assert(live_runs_known(runs, PIPELINE_B, "", 3));
	live_runs_free(runs);
}
END_TEST

START_TEST(test_an_entry_is_forgotten_past_its_age)
{
	struct live_runs *runs = live_runs_new(MAX_AGE_MS);
	live_runs_note_live(runs, PIPELINE_A, "", live_runs_sequence(runs), 1000);
	ck_assert(live_runs_known(runs, PIPELINE_A, "", 1000 + MAX_AGE_MS - 1));
	ck_assert(!live_runs_known(runs, PIPELINE_A, "", 1000 + MAX_AGE_MS));
	/* Noted again (the next round asked PostgreSQL and it was still live): trusted again. */
	live_runs_note_live(runs, PIPELINE_A, "", live_runs_sequence(runs), 1000 + MAX_AGE_MS);
	ck_assert(live_runs_known(runs, PIPELINE_A, "", 1000 + MAX_AGE_MS + 1));
	live_runs_free(runs);
}
END_TEST

START_TEST(test_notifications_are_parsed_and_a_strange_one_forgets_all)
{
	struct live_runs *runs = live_runs_new(MAX_AGE_MS);
	uint64_t sent = live_runs_sequence(runs);
	live_runs_note_live(runs, PIPELINE_A, "", sent, 0);
	live_runs_note_live(runs, PIPELINE_A, "BRK B", sent, 0);
	live_runs_note_live(runs, PIPELINE_B, "", sent, 0);
	/* The claim key is everything after the first space, spaces included. */
	ck_assert(live_runs_note_notification(runs, PIPELINE_A " BRK B"));
	ck_assert(!live_runs_known(runs, PIPELINE_A, "BRK B", 1));
	ck_assert(live_runs_known(runs, PIPELINE_A, "", 1));
	ck_assert(live_runs_note_notification(runs, PIPELINE_A " "));
	ck_assert(!live_runs_known(runs, PIPELINE_A, "", 1));
	ck_assert(live_runs_known(runs, PIPELINE_B, "", 1));
	ck_assert(!live_runs_note_notification(runs, "not a notification"));
	ck_assert(!live_runs_known(runs, PIPELINE_B, "", 1));

	live_runs_note_live(runs, PIPELINE_B, "", live_runs_sequence(runs), 2);
	ck_assert(live_runs_note_notification(runs, LIVE_RUNS_ALL_ENDED));
	ck_assert(!live_runs_known(runs, PIPELINE_B, "", 3));
	live_runs_free(runs);
}
END_TEST

/* Pruning keeps what a round in flight still needs, and drops the rest. */
START_TEST(test_prune_keeps_ends_a_round_in_flight_needs)
{
	struct live_runs *runs = live_runs_new(MAX_AGE_MS);
	uint64_t sent = live_runs_sequence(runs);
	live_runs_note_ended(runs, PIPELINE_A, "");
	live_runs_prune(runs, sent, 0);
	live_runs_note_live(runs, PIPELINE_A, "", sent, 0);
	ck_assert_msg(!live_runs_known(runs, PIPELINE_A, "", 1), "the end was pruned while its round was in flight");
	/* No round in flight: the end record goes, and a live entry past its age too. */
	live_runs_note_live(runs, PIPELINE_B, "", live_runs_sequence(runs), 0);
	live_runs_prune(runs, live_runs_sequence(runs), MAX_AGE_MS);
	ck_assert(!live_runs_known(runs, PIPELINE_B, "", MAX_AGE_MS));
	ck_assert_uint_eq(live_runs_count(runs, 0), 0);
	live_runs_free(runs);
}
END_TEST

/* Many keys: the table grows, each key answers for itself, and ends forget only theirs. */
START_TEST(test_many_keys)
{
	struct live_runs *runs = live_runs_new(MAX_AGE_MS);
	char id[64];
	uint64_t sent = live_runs_sequence(runs);
	for (int i = 0; i < 20000; i++) {
		snprintf(id, sizeof id, "0190a1b2-0000-7000-8000-%012d", i);
		live_runs_note_live(runs, id, "", sent, 0);
	}
	ck_assert_uint_eq(live_runs_count(runs, 1), 20000);
	for (int i = 0; i < 20000; i += 2) {
		snprintf(id, sizeof id, "0190a1b2-0000-7000-8000-%012d", i);
		live_runs_note_ended(runs, id, "");
	}
	for (int i = 0; i < 20000; i++) {
		snprintf(id, sizeof id, "0190a1b2-0000-7000-8000-%012d", i);
		ck_assert_msg(live_runs_known(runs, id, "", 1) == (i % 2 == 1), "key %d", i);
	}
	live_runs_prune(runs, live_runs_sequence(runs), 1);
	ck_assert_uint_eq(live_runs_count(runs, 1), 10000);
	live_runs_free(runs);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("live_runs");
	TCase *memory = tcase_create("memory");
	tcase_add_test(memory, test_a_claimed_key_is_known_live_until_its_run_ends);
	tcase_add_test(memory, test_keys_are_pipeline_and_ticker);
	tcase_add_test(memory, test_an_end_after_the_round_was_sent_wins_over_its_answer);
	tcase_add_test(memory, test_forgetting_all_distrusts_rounds_sent_before);
	tcase_add_test(memory, test_an_entry_is_forgotten_past_its_age);
	tcase_add_test(memory, test_notifications_are_parsed_and_a_strange_one_forgets_all);
	tcase_add_test(memory, test_prune_keeps_ends_a_round_in_flight_needs);
	tcase_add_test(memory, test_many_keys);
	suite_add_tcase(suite, memory);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Per-pipeline filters: parsing and validation, what they accept, and how the matcher applies them. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "pipeline_filter.h"

static json_t *config_with(const char *filters_json)
{
	json_t *config = json_object();
	json_object_set_new(config, "filters", json_loads(filters_json, 0, NULL));
	return config;
}

static struct signal make_signal(const char *type, const char *source, const char *ticker,
				 enum signal_direction direction, double confidence)
{
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_init_single(&signal, type, source, ticker, direction, confidence, "", &error), 0);
	return signal;
}

START_TEST(test_no_filters_accept_every_signal)
{
	struct pipeline_filter filter;
	char err[256];
	json_t *config = json_object();
	ck_assert_int_eq(pipeline_filter_parse(config, &filter, err, sizeof err), 0);
	struct signal signal = make_signal("any", "any", "AAPL", SIGNAL_NEUTRAL, 0);
	ck_assert(pipeline_filter_accepts(&filter, &signal, &signal.tickers[0]));
	signal_free(&signal);
	json_decref(config);
}
END_TEST

START_TEST(test_each_filter_rejects_what_it_excludes)
{
	json_t *config = config_with("{\"min_confidence\": 60, \"directions\": [\"BULLISH\"],"
				     " \"signal_types\": [\"golden_cross\"], \"sources\": [\"scanner\"]}");
	struct pipeline_filter filter;
	char err[256];
	ck_assert_int_eq(pipeline_filter_parse(config, &filter, err, sizeof err), 0);
	struct signal good = make_signal("golden_cross", "scanner", "AAPL", SIGNAL_BULLISH, 60);
	ck_assert(pipeline_filter_accepts(&filter, &good, &good.tickers[0]));
	struct signal weak = make_signal("golden_cross", "scanner", "AAPL", SIGNAL_BULLISH, 59.9);
	struct signal bearish = make_signal("golden_cross", "scanner", "AAPL", SIGNAL_BEARISH, 90);
	struct signal other_type = make_signal("news", "scanner", "AAPL", SIGNAL_BULLISH, 90);
	struct signal other_source = make_signal("golden_cross", "mock", "AAPL", SIGNAL_BULLISH, 90);
	ck_assert(!pipeline_filter_accepts(&filter, &weak, &weak.tickers[0]));
	ck_assert(!pipeline_filter_accepts(&filter, &bearish, &bearish.tickers[0]));
	ck_assert(!pipeline_filter_accepts(&filter, &other_type, &other_type.tickers[0]));
	ck_assert(!pipeline_filter_accepts(&filter, &other_source, &other_source.tickers[0]));
	signal_free(&good);
	signal_free(&weak);
	signal_free(&bearish);
	signal_free(&other_type);
	signal_free(&other_source);
	json_decref(config);
}
END_TEST

START_TEST(test_bad_filters_are_refused_naming_the_field)
{
	static const struct {
		const char *filters;
		const char *field;
	} cases[] = {
		{ "[]", "config.filters:" },
		{ "{\"min_confidence\": 101}", "config.filters.min_confidence" },
		{ "{\"min_confidence\": \"high\"}", "config.filters.min_confidence" },
		{ "{\"directions\": [\"UP\"]}", "config.filters.directions[0]" },
		{ "{\"directions\": []}", "config.filters.directions" },
		{ "{\"sources\": [1]}", "config.filters.sources[0]" },
		{ "{\"signal_types\": \"news\"}", "config.filters.signal_types" },
		{ "{\"tickers\": [\"AAPL\"]}", "config.filters.tickers: unknown filter" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *config = config_with(cases[i].filters);
		struct pipeline_filter filter;
		char err[256] = "";
		ck_assert_msg(pipeline_filter_parse(config, &filter, err, sizeof err) == -1, "accepted %s",
			      cases[i].filters);
		ck_assert_msg(strstr(err, cases[i].field) != NULL, "%s: '%s'", cases[i].filters, err);
		json_decref(config);
	}
}
END_TEST

/* One pipeline watching AAPL and MSFT that wants BULLISH only. */
static struct pipeline_index *bullish_only_index(void)
{
	struct pipeline *pipelines = calloc(1, sizeof *pipelines);
	snprintf(pipelines[0].id, sizeof pipelines[0].id, "00000000-0000-0000-0000-000000000001");
	pipelines[0].name = strdup("bulls");
	pipelines[0].tickers = calloc(2, sizeof *pipelines[0].tickers);
	pipelines[0].tickers[0] = strdup("AAPL");
	pipelines[0].tickers[1] = strdup("MSFT");
	pipelines[0].ticker_count = 2;
	pipelines[0].config = config_with("{\"directions\": [\"BULLISH\"]}");
	char err[256];
	ck_assert_int_eq(pipeline_filter_parse(pipelines[0].config, &pipelines[0].filter, err, sizeof err), 0);
	return pipeline_index_build(pipelines, 1);
}

START_TEST(test_matcher_lists_filtered_signals_apart_and_never_wakes_the_pipeline_for_them)
{
	struct pipeline_index *index = bullish_only_index();
	struct signal batch[2] = { make_signal("t", "s", "AAPL", SIGNAL_BEARISH, 90),
				   make_signal("t", "s", "MSFT", SIGNAL_BULLISH, 90) };
	struct batch_match *matches;
	ck_assert_int_eq(batch_match_signals(index, batch, 2, &matches), 1);
	ck_assert_int_eq(json_array_size(matches[0].signal_ids), 1);
	ck_assert_str_eq(json_string_value(json_array_get(matches[0].signal_ids, 0)), batch[1].signal_id);
	ck_assert_int_eq(json_array_size(matches[0].filtered_ids), 1);
	ck_assert_str_eq(json_string_value(json_array_get(matches[0].filtered_ids, 0)), batch[0].signal_id);
	ck_assert_int_eq(json_array_size(matches[0].tickers), 1);
	ck_assert_str_eq(json_string_value(json_array_get(matches[0].tickers, 0)), "MSFT");
	batch_matches_free(matches, 1);
	signal_free(&batch[0]);
	signal_free(&batch[1]);
	pipeline_index_free(index);
}
END_TEST

START_TEST(test_signal_passing_through_another_ticker_is_not_filtered)
{
	struct pipeline_index *index = bullish_only_index();
	/* AAPL BEARISH fails, MSFT BULLISH passes: the signal wakes the pipeline. */
	json_t *object = json_loads("{\"signal_type\":\"t\",\"source\":\"s\",\"tickers\":["
				    "{\"ticker\":\"AAPL\",\"signal\":\"BEARISH\",\"confidence\":90},"
				    "{\"ticker\":\"MSFT\",\"signal\":\"BULLISH\",\"confidence\":90}]}",
				    0, NULL);
	struct signal signal;
	struct signal_error error;
	ck_assert_int_eq(signal_from_json(object, &signal, &error), 0);
	struct batch_match *matches;
	ck_assert_int_eq(batch_match_signals(index, &signal, 1, &matches), 1);
	ck_assert_int_eq(json_array_size(matches[0].signal_ids), 1);
	ck_assert_int_eq(json_array_size(matches[0].filtered_ids), 0);
	batch_matches_free(matches, 1);
	signal_free(&signal);
	json_decref(object);
	pipeline_index_free(index);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("pipeline_filter");
	TCase *filters = tcase_create("filters");
	tcase_add_test(filters, test_no_filters_accept_every_signal);
	tcase_add_test(filters, test_each_filter_rejects_what_it_excludes);
	tcase_add_test(filters, test_bad_filters_are_refused_naming_the_field);
	tcase_add_test(filters, test_matcher_lists_filtered_signals_apart_and_never_wakes_the_pipeline_for_them);
	tcase_add_test(filters, test_signal_passing_through_another_ticker_is_not_filtered);
	suite_add_tcase(suite, filters);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

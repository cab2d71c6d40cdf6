/*
 * bias_agent: BULLISH, BEARISH or NEUTRAL per ticker, with a score from
 * -100 to 100. Config: "sma_short" (default 10) and "sma_long" (default
 * 30) bars. State in: "bars", "signals"; out: "bias": {ticker: {...}}.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"

#define BIAS_DEFAULT_SMA_SHORT 10
#define BIAS_DEFAULT_SMA_LONG 30
#define BIAS_MAX_PERIOD 1000

/*
 * The score's parts, each capped so that no single one can decide alone:
 * trend (the gap between the SMAs, 5% = full weight) up to 50, momentum
 * over the short period (5% = full weight) up to 25, a crossover on the
 * last bar 10, and the signals' direction up to 25 (confidence / 4).
 */
#define BIAS_TREND_POINTS_PER_PCT 10.0
#define BIAS_TREND_MAX_POINTS 50.0
#define BIAS_MOMENTUM_POINTS_PER_PCT 5.0
#define BIAS_MOMENTUM_MAX_POINTS 25.0
#define BIAS_CROSSOVER_POINTS 10.0
#define BIAS_SIGNAL_POINTS_PER_CONFIDENCE 0.25
/* Scores closer to zero than this are NEUTRAL: noise, not a view. */
#define BIAS_DEAD_BAND 10

static double clamp(double value, double limit)
{
	return value > limit ? limit : value < -limit ? -limit : value;
}

double bias_agent_sma(const double *values, size_t count, size_t period)
{
	if (period == 0 || count < period)
		return NAN;
	double sum = 0;
	for (size_t i = count - period; i < count; i++)
		sum += values[i];
	return sum / (double)period;
}

static int crossover_on_last_bar(const double *closes, size_t count,
				 const struct bias_parameters *parameters, double sma_short,
				 double sma_long)
{
	if (count < parameters->sma_long + 1 || isnan(sma_short) || isnan(sma_long))
		return 0;
	double previous_short = bias_agent_sma(closes, count - 1, parameters->sma_short);
	double previous_long = bias_agent_sma(closes, count - 1, parameters->sma_long);
	if (previous_short <= previous_long && sma_short > sma_long)
		return 1;
	if (previous_short >= previous_long && sma_short < sma_long)
		return -1;
	return 0;
}

void bias_agent_estimate(const double *closes, size_t count, const struct bias_parameters *parameters,
			 enum signal_direction signal_direction, double signal_confidence,
			 struct bias_estimate *estimate)
{
	estimate->sma_short = bias_agent_sma(closes, count, parameters->sma_short);
	estimate->sma_long = bias_agent_sma(closes, count, parameters->sma_long);
	estimate->momentum_pct = NAN;
	estimate->crossover = crossover_on_last_bar(closes, count, parameters, estimate->sma_short,
						    estimate->sma_long);
	double points = 0;
	if (!isnan(estimate->sma_short) && !isnan(estimate->sma_long) && estimate->sma_long > 0) {
		double gap_pct = (estimate->sma_short - estimate->sma_long) / estimate->sma_long * 100;
		points += clamp(gap_pct * BIAS_TREND_POINTS_PER_PCT, BIAS_TREND_MAX_POINTS);
	}
	if (count > parameters->sma_short && closes[count - 1 - parameters->sma_short] > 0) {
		double base = closes[count - 1 - parameters->sma_short];
		estimate->momentum_pct = (closes[count - 1] / base - 1) * 100;
		points += clamp(estimate->momentum_pct * BIAS_MOMENTUM_POINTS_PER_PCT,
				BIAS_MOMENTUM_MAX_POINTS);
	}
	points += estimate->crossover * BIAS_CROSSOVER_POINTS;
	double confidence = signal_confidence < 0 ? 0 : signal_confidence > 100 ? 100 : signal_confidence;
	if (signal_direction == SIGNAL_BULLISH)
		points += confidence * BIAS_SIGNAL_POINTS_PER_CONFIDENCE;
	else if (signal_direction == SIGNAL_BEARISH)
		points -= confidence * BIAS_SIGNAL_POINTS_PER_CONFIDENCE;
	estimate->score = (int)lround(clamp(points, 100));
	estimate->bias = estimate->score >= BIAS_DEAD_BAND    ? SIGNAL_BULLISH
			 : estimate->score <= -BIAS_DEAD_BAND ? SIGNAL_BEARISH
							      : SIGNAL_NEUTRAL;
}

/*
 * The signals' net view of one ticker: bullish confidences minus bearish
 * ones, each scaled by its signal's metadata.weight (0 to 1, default 1:
 * how far its source is trusted). Signals given as bare ids carry no
 * direction and count as neutral.
 */
static void signal_view(const json_t *signals, const char *ticker, enum signal_direction *direction,
			double *confidence)
{
	double net = 0;
	size_t index;
	const json_t *signal;
	json_array_foreach(signals, index, signal) {
		const json_t *trust = json_object_get(json_object_get(signal, "metadata"), "weight");
		double scale = json_is_number(trust) && json_number_value(trust) >= 0 && json_number_value(trust) <= 1
				       ? json_number_value(trust)
				       : 1;
		size_t ticker_index;
		const json_t *entry;
		json_array_foreach(json_object_get(signal, "tickers"), ticker_index, entry) {
			const char *name = json_string_value(json_object_get(entry, "ticker"));
			const char *view = json_string_value(json_object_get(entry, "signal"));
			enum signal_direction parsed;
			if (name == NULL || view == NULL || strcmp(name, ticker) != 0 ||
			    signal_direction_parse(view, &parsed) != 0)
				continue;
			double weight = json_number_value(json_object_get(entry, "confidence")) * scale;
			net += parsed == SIGNAL_BULLISH ? weight : parsed == SIGNAL_BEARISH ? -weight : 0;
		}
	}
	*direction = net > 0 ? SIGNAL_BULLISH : net < 0 ? SIGNAL_BEARISH : SIGNAL_NEUTRAL;
	*confidence = fabs(net) > 100 ? 100 : fabs(net);
}

/* A ticker's closes from the state, oldest first, malloc'd (NULL when none). */
static double *closes_of(const json_t *bars, const char *ticker, size_t *count)
{
	const json_t *closes = json_object_get(json_object_get(bars, ticker), "closes");
	*count = json_array_size(closes);
	if (*count == 0)
		return NULL;
	double *values = malloc(*count * sizeof *values);
	if (values == NULL) {
		*count = 0;
		return NULL;
	}
	for (size_t i = 0; i < *count; i++)
		values[i] = json_number_value(json_array_get(closes, i));
	return values;
}

static int read_parameters(const json_t *node_config, struct bias_parameters *parameters, char *err,
			   size_t errsize)
{
	double sma_short, sma_long;
	if (agent_config_number(node_config, "sma_short", BIAS_DEFAULT_SMA_SHORT, 1, BIAS_MAX_PERIOD,
				&sma_short, err, errsize) != 0 ||
	    agent_config_number(node_config, "sma_long", BIAS_DEFAULT_SMA_LONG, 2, BIAS_MAX_PERIOD,
				&sma_long, err, errsize) != 0)
		return -1;
	if (sma_short >= sma_long) {
		snprintf(err, errsize, "config.sma_short (%g) must be below config.sma_long (%g)",
			 sma_short, sma_long);
		return -1;
	}
	parameters->sma_short = (size_t)sma_short;
	parameters->sma_long = (size_t)sma_long;
	return 0;
}

int bias_agent_check_config(const json_t *node_config, char *err, size_t errsize)
{
	static const char *const keys[] = { "sma_short", "sma_long", NULL };
	struct bias_parameters parameters;
	return agent_config_only_keys(node_config, keys, err, errsize) != 0 ||
			       read_parameters(node_config, &parameters, err, errsize) != 0
		       ? -1
		       : 0;
}

int bias_agent_run(struct agent_context *context, const json_t *node_config, json_t **step_output,
		   char *err, size_t errsize)
{
	struct bias_parameters parameters;
	if (read_parameters(node_config, &parameters, err, errsize) != 0)
		return AGENT_FAILED;
	const json_t *bars = json_object_get(context->state, "bars");
	const json_t *signals = json_object_get(context->state, "signals");
	/* The tickers the market data agent loaded, else (no such step) those of the run. */
	json_t *tickers;
	if (json_is_object(bars)) {
		tickers = json_array();
		const char *loaded;
		const json_t *series;
		json_object_foreach((json_t *)bars, loaded, series)
			json_array_append_new(tickers, json_string(loaded));
	} else {
		tickers = agent_run_tickers(context, node_config);
	}
	json_t *biases = json_object();
	char decision[512] = "";
	size_t index;
	const json_t *ticker_value;
	json_array_foreach(tickers, index, ticker_value) {
		const char *ticker = json_string_value(ticker_value);
		if (json_object_get(biases, ticker) != NULL)
			continue;
		size_t count;
		double *closes = closes_of(bars, ticker, &count);
		enum signal_direction direction;
		double confidence;
		signal_view(signals, ticker, &direction, &confidence);
		struct bias_estimate estimate;
		bias_agent_estimate(closes, count, &parameters, direction, confidence, &estimate);
		free(closes);
		json_object_set_new(
			biases, ticker,
			json_pack("{s:s, s:i, s:o, s:o, s:o, s:i, s:s, s:f, s:I}", "bias",
				  signal_direction_name(estimate.bias), "score", estimate.score,
				  "sma_short", agent_json_number(estimate.sma_short), "sma_long",
				  agent_json_number(estimate.sma_long), "momentum_pct",
				  agent_json_number(estimate.momentum_pct), "crossover",
				  estimate.crossover, "signal", signal_direction_name(direction),
				  "signal_confidence", confidence, "bars", (json_int_t)count));
		agent_decision_append(decision, sizeof decision, "%s %s (%d)", ticker,
				      signal_direction_name(estimate.bias), estimate.score);
	}
	json_decref(tickers);
	json_object_set(context->state, "bias", biases);
	*step_output = json_pack("{s:o, s:{s:I, s:I}, s:s}", "tickers", biases, "parameters",
				 "sma_short", (json_int_t)parameters.sma_short, "sma_long",
				 (json_int_t)parameters.sma_long, "decision",
				 decision[0] != '\0' ? decision : "no tickers");
	return AGENT_COMPLETED;
}

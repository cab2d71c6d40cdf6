/*
 * The pipeline agents: each node of a pipeline's config names one by its
 * agent_type, and the runner walks the nodes in order, handing a shared
 * state object from step to step (bars -> bias -> intents -> approved ->
 * orders). Each agent is one file, agent_<name>.c, and one line of the
 * table in agents.c. The decisions (SMA, bias score, strategy rule, risk
 * check, paper fill) are pure functions below, testable without a database.
 */
#ifndef SIGTRIG_AGENTS_H
#define SIGTRIG_AGENTS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline_store.h"
#include "signal.h"

struct agent_context {
	PGconn *db;                      /* NULL: an agent that needs the database fails */
	const struct pipeline *pipeline;
	/*
	 * The execution being run: order_manager records its orders and charge
	 * under it, once; risk_manager judges a retried run without what its
	 * earlier attempt recorded. NULL only without a database (the unit
	 * tests): with one, order_manager refuses to record orders it could
	 * not tell from a later attempt's.
	 */
	const char *execution_id;
	/*
	 * Array of the triggering signals: ids (strings) for now, or signal
	 * objects as signal_to_json() writes them, whose tickers' directions
	 * the bias agent then takes into account.
	 */
	json_t *signals;
	/* Object handed from step to step; the runner puts "signals" in it. */
	json_t *state;
	/* The one ticker a ticker-scoped claim runs for (claim_scope "ticker"); NULL for all. */
	const char *scope_ticker;
	/* The run's time limit: no step starts after deadline_ms (monotonic); 0 for none. */
	int64_t deadline_ms;
	long time_limit_s; /* for the error text */
	/*
	 * Set by a step that fails for a reason that may pass (market data not
	 * there yet, the database unreachable): the worker then retries the
	 * run with backoff instead of failing it. Never set for a time limit.
	 */
	bool retryable;
};

/* What a step came to. A rejection is a decision, not an error: the run ends SUCCEEDED. */
enum agent_outcome { AGENT_FAILED = -1, AGENT_COMPLETED = 0, AGENT_REJECTED = 1 };

struct agent {
	const char *type;
	const char *description;
	/*
	 * Runs one step. Sets *step_output to a new object recorded as the
	 * step's output; a string member "decision" in it becomes the step's
	 * decision. Returns an agent_outcome; AGENT_FAILED with err filled.
	 */
	int (*run)(struct agent_context *context, const json_t *node_config, json_t **step_output,
		   char *err, size_t errsize);
	/*
	 * Checks a node's config (NULL: none) when the pipeline is saved:
	 * every key known, every value of the right type and range. 0, or -1
	 * with err "config.<key>: why". A typo in a limit must not pass for
	 * its default.
	 */
	int (*check_config)(const json_t *node_config, char *err, size_t errsize);
};

/* The table, in documentation order; *count receives its length. */
const struct agent *agents_list(size_t *count);
/* NULL when no agent has that type ("time_trigger" is a trigger, not an agent). */
const struct agent *agents_find(const char *type);

/*
 * Runs pipeline->config.nodes in order. *result (new object) receives
 * {"pipeline_id", "status": "SUCCEEDED"|"FAILED", "n_signals", "steps": [{agent_type,
 * status, input_summary, output, decision, duration_ms}], "orders", "error"}, and
 * "retryable": true when the failing step set context->retryable.
 * time_trigger nodes are recorded "skipped" in signal mode. The first
 * failing step ends the run FAILED (err names the agent); a rejecting step
 * ends it SUCCEEDED; the steps after either are recorded "skipped".
 * Returns 0 when SUCCEEDED, -1 when FAILED.
 */
int agents_run_pipeline(struct agent_context *context, json_t **result, char *err, size_t errsize);

/*
 * Reads an optional number from a node's config: `fallback` when absent,
 * else it must be a number within [minimum, maximum]. Returns 0, or -1
 * with err naming the key.
 */
int agent_config_number(const json_t *node_config, const char *key, double fallback,
			double minimum, double maximum, double *value, char *err, size_t errsize);

/* Reads an optional boolean from a node's config, like agent_config_number(). */
int agent_config_bool(const json_t *node_config, const char *key, bool fallback, bool *value, char *err,
		      size_t errsize);

/* Refuses a key of node_config not among `keys` (NULL-terminated): -1 with err naming it and the known ones. */
int agent_config_only_keys(const json_t *node_config, const char *const *keys, char *err, size_t errsize);

/* A number, or JSON null for NAN (an SMA without enough bars). */
json_t *agent_json_number(double value);
/* Appends "; " and a formatted part to a step's decision text, ending it in "..." when full. */
void agent_decision_append(char *decision, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The tickers a run is about: the node's "tickers", else the pipeline's, plus the signals'; only the scope ticker of a ticker-scoped run. */
json_t *agent_run_tickers(const struct agent_context *context, const json_t *node_config);

/* ---- market_data_agent ---- */
int market_data_agent_run(struct agent_context *context, const json_t *node_config,
			  json_t **step_output, char *err, size_t errsize);
int market_data_agent_check_config(const json_t *node_config, char *err, size_t errsize);

/* ---- bias_agent ---- */
struct bias_parameters {
	size_t sma_short, sma_long; /* bars, sma_short < sma_long */
};

struct bias_estimate {
	enum signal_direction bias;
	int score;                  /* -100 (bearish) .. 100 (bullish) */
	double sma_short, sma_long; /* NAN when there are fewer bars than the period */
	double momentum_pct;        /* change over the short period, NAN when unknown */
	int crossover;              /* +1 short SMA crossed above long on the last bar, -1 below, 0 */
};

/* Mean of the last `period` values; NAN when there are fewer. */
double bias_agent_sma(const double *values, size_t count, size_t period);
/*
 * Scores closes (oldest first) together with the signals' direction for
 * the ticker (SIGNAL_NEUTRAL when none) and its confidence (0..100).
 */
void bias_agent_estimate(const double *closes, size_t count, const struct bias_parameters *parameters,
			 enum signal_direction signal_direction, double signal_confidence,
			 struct bias_estimate *estimate);
int bias_agent_run(struct agent_context *context, const json_t *node_config, json_t **step_output,
		   char *err, size_t errsize);
int bias_agent_check_config(const json_t *node_config, char *err, size_t errsize);

/* ---- strategy_agent ---- */
enum trade_action { TRADE_HOLD, TRADE_BUY, TRADE_SELL };

struct trade_intent {
	enum trade_action action;
	double price;    /* last close; 0 when unknown */
	double quantity; /* 0 when there is no price */
	double value;    /* price * quantity */
};

const char *trade_action_name(enum trade_action action);
/* score >= threshold: buy, <= -threshold: sell, else hold; sized order_value / price. */
void strategy_agent_decide(int bias_score, double threshold, double order_value, double last_close,
			   struct trade_intent *intent);
int strategy_agent_run(struct agent_context *context, const json_t *node_config, json_t **step_output,
		       char *err, size_t errsize);
int strategy_agent_check_config(const json_t *node_config, char *err, size_t errsize);

/* ---- risk_manager ---- */
/* The limits, from the node's config; INFINITY where none is set. */
struct risk_limits {
	double max_order_value;       /* the order's value */
	double max_position_value;    /* |quantity| * price of the ticker's position after the order */
	double max_position_quantity; /* |quantity| of the ticker's position after the order */
	double max_exposure;          /* the user's positions in every ticker, valued, after the order */
	bool allow_short;             /* may a sell take the position below zero */
};

/* What the user holds, as far as one trade is concerned. */
struct risk_holding {
	double quantity;       /* of the trade's ticker before it; negative when short */
	double other_exposure; /* sum of |quantity| * mark price over the user's other tickers */
};

/* Reads the limits from a node's config (defaults in sigtrig-pipelines(1)); -1 with err naming the key. */
int risk_manager_read_limits(const json_t *node_config, struct risk_limits *limits, char *err,
			     size_t errsize);
/*
 * true when the intent may be traded; else reason says which limit it
 * breaks. A hold is always approved. A trade that only reduces the
 * position is never refused by the position or exposure limits: they must
 * not trap a user in a position they can no longer take.
 */
bool risk_manager_check(const struct trade_intent *intent, const struct risk_limits *limits,
			const struct risk_holding *holding, char *reason, size_t reasonsize);
/*
 * true when the credits cover the execution_cost that order_manager will
 * charge; an execution that was already charged (a retried run) passes.
 */
bool risk_manager_check_budget(double credits, double execution_cost, bool already_charged, char *reason,
			       size_t reasonsize);
int risk_manager_run(struct agent_context *context, const json_t *node_config, json_t **step_output,
		     char *err, size_t errsize);
int risk_manager_check_config(const json_t *node_config, char *err, size_t errsize);

/* ---- order_manager ---- */
struct paper_order {
	enum trade_action side;
	double quantity, price, value;
};

/* A paper fill of an approved buy/sell at its price; -1 for a hold or no price. */
int order_manager_paper_fill(const struct trade_intent *intent, struct paper_order *order);
/* The node's execution_cost (credits, default 1); -1 with err naming the key. */
int order_manager_read_cost(const json_t *node_config, double *cost, char *err, size_t errsize);
/*
 * What a run of the pipeline will be charged: the execution_cost of its
 * first order_manager node, 0 when it has none (nothing charges then).
 */
int order_manager_pipeline_cost(const struct pipeline *pipeline, double *cost, char *err,
				size_t errsize);
int order_manager_run(struct agent_context *context, const json_t *node_config, json_t **step_output,
		      char *err, size_t errsize);
int order_manager_check_config(const json_t *node_config, char *err, size_t errsize);

/* Intents are kept in the state as {"action", "price", "quantity", "value"} objects. */
json_t *trade_intent_to_json(const struct trade_intent *intent);
int trade_intent_from_json(const json_t *object, struct trade_intent *intent);

#endif

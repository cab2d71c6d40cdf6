/*
 * Executions in PostgreSQL: PENDING (claimed by the dispatcher) ->
 * RUNNING (a worker started it) -> SUCCEEDED or FAILED; HOLDING is a
 * live state that keeps blocking past any lease (an order still open). At
 * most one PENDING/RUNNING/HOLDING execution per claim key of a pipeline
 * (the whole pipeline, or one of its tickers when its claim_scope is
 * "ticker"), enforced by a partial unique index, so a claim is one
 * INSERT ... ON CONFLICT DO NOTHING.
 */
#ifndef SIGTRIG_EXECUTION_STORE_H
#define SIGTRIG_EXECUTION_STORE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "signal.h"

#define EXECUTION_ID_LENGTH 36

/* A consumed signal and where it was in the log, for the signals table. */
struct decided_signal {
	const struct signal *signal;
	int32_t partition;
	int64_t offset;
	const json_t *skips; /* decided before the database: [{pipeline_id or null, reason, tickers}]; NULL none */
};

/* One pipeline the dispatcher wants to start, and the signals that woke it. */
struct execution_claim {
	const char *pipeline_id;
	json_t *signal_ids;               /* array of strings, borrowed (see decide_batch_receive) */
	char execution_id[EXECUTION_ID_LENGTH + 1]; /* filled when claimed */
	char task_id[EXECUTION_ID_LENGTH + 1];      /* filled by the caller before the claim */
	json_t *tickers;                  /* the matched tickers, borrowed; may be NULL */
	/* What the claim holds: "" the whole pipeline, or one ticker of it (claim_scope "ticker"). */
	const char *claim_key;            /* NULL is "" */
	bool claimed;                     /* false: the pipeline already had a live execution */
	char reason[32];                  /* why not claimed: already_running, inactive, unauthorized, no_budget, cooldown */
};

/*
 * Decides a dispatcher batch in one statement, so that the decisions are
 * durable together or not at all:
 * - records every consumed signal (`signals`, `signal_count` of them);
 * - for each claim, refuses it when the pipeline is gone or inactive
 *   (inactive), its owner is missing or inactive (unauthorized) or has no
 *   credits left (no_budget), or it triggered within its config's
 *   cooldown_seconds (cooldown); else claims it unless it already has a
 *   live execution (already_running);
 * - writes one decision per (signal, pipeline) claimed or refused to
 *   signal_decision_rows; the decisions made before the database (each
 *   signal's `skips`) go into the signal's own row; the view
 *   signal_decisions shows both. One audit_log row per claim and per
 *   refusal other than already_running.
 * A signal already in `signals` was decided by an earlier delivery of the
 * same message (a batch replayed after a crash): it is neither claimed nor
 * recorded again, so a replay never starts a second run; a claim that held
 * only such signals is left unclaimed with reason EXECUTION_CLAIM_REPLAYED.
 * Fills claims[i].claimed and .reason. 0, or -1 with err (nothing written).
 */
#define EXECUTION_CLAIM_REPLAYED "replayed"

/*
 * In two halves, so that the dispatcher consumes the next batch while
 * PostgreSQL decides this one: _send() sends the statement, and
 * _receive() (once db_result_ready() says so, or blocking) fills the
 * claims. claims[i].signal_ids must then be owned by the caller: a claim
 * that mixed replayed and fresh signals is left with the fresh ones.
 * The claims are made as round `round_id` (a UUID); `pushed_rounds`
 * (array of earlier round ids, may be NULL) are recorded as pushed to the
 * queue (the outbox, see execution_store_outbox.h) in the same statement.
 * The statement must have been prepared on the connection with
 * execution_store_prepare_decide().
 */
int execution_store_prepare_decide(PGconn *conn, char *err, size_t errsize);
int execution_store_decide_batch_send(PGconn *conn, const struct decided_signal *signals, size_t signal_count,
				      struct execution_claim *claims, size_t count, const char *round_id,
				      const json_t *pushed_rounds, char *err, size_t errsize);
int execution_store_decide_batch_receive(PGconn *conn, struct execution_claim *claims, size_t count,
					 char *err, size_t errsize);

/*
 * PENDING -> RUNNING. Returns 1 when this call started it, 0 when it was
 * not PENDING (already running or finished: the task is a duplicate), -1
 * on error.
 */
int execution_store_start(PGconn *conn, const char *execution_id, char *err, size_t errsize);

/* RUNNING -> SUCCEEDED/FAILED with the result and error text. */
int execution_store_finish(PGconn *conn, const char *execution_id, bool succeeded, const json_t *result,
			   const char *error, char *err, size_t errsize);

/* Newest first; pipeline_id, status and signal_id (one of the triggering signals) may be NULL. */
json_t *execution_store_list(PGconn *conn, const char *pipeline_id, const char *status,
			     const char *signal_id, int limit, char *err, size_t errsize);
json_t *execution_store_show(PGconn *conn, const char *id, char *err, size_t errsize);

#endif

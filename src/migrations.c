/*
 * Schema migrations. Append only: a migration that has shipped is never
 * edited; a change is a new entry. db_migrate() applies each in its own
 * transaction and records it in schema_migrations.
 */
#include "migrations.h"

static const struct migration migrations[] = {
	{ 1, "users, pipelines, executions, market bars",
	  "CREATE TABLE users ("
	  "  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
	  "  name text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),"
	  "  is_active boolean NOT NULL DEFAULT true,"
	  "  credits numeric(14,2) NOT NULL DEFAULT 1000,"
	  "  created_at timestamptz NOT NULL DEFAULT now());"
	  "CREATE TABLE pipelines ("
	  "  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
	  "  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 256),"
	  "  user_id uuid NOT NULL REFERENCES users(id),"
	  "  trigger_mode text NOT NULL CHECK (trigger_mode IN ('signal', 'periodic')),"
	  "  scanner_tickers text[] NOT NULL DEFAULT '{}',"
	  "  is_active boolean NOT NULL DEFAULT true,"
	  "  config jsonb NOT NULL DEFAULT '{}'::jsonb,"
	  "  created_at timestamptz NOT NULL DEFAULT now(),"
	  "  updated_at timestamptz NOT NULL DEFAULT now());"
	  "CREATE INDEX pipelines_active_by_mode ON pipelines (trigger_mode) WHERE is_active;"
	  "CREATE TABLE executions ("
	  "  id uuid PRIMARY KEY,"
	  "  pipeline_id uuid NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,"
	  "  status text NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED')),"
	  "  triggered_by text NOT NULL DEFAULT 'signal',"
	  "  signal_ids text[] NOT NULL DEFAULT '{}',"
	  "  task_id text,"
	  "  created_at timestamptz NOT NULL DEFAULT now(),"
	  "  started_at timestamptz,"
	  "  finished_at timestamptz,"
	  "  result jsonb,"
	  "  error text);"
	  /* The claim rule lives in the database: one live execution per pipeline,
	   * whatever the number of dispatchers. */
	  "CREATE UNIQUE INDEX executions_one_live_per_pipeline ON executions (pipeline_id)"
	  "  WHERE status IN ('PENDING', 'RUNNING');"
	  "CREATE INDEX executions_by_pipeline ON executions (pipeline_id, created_at DESC);"
	  "CREATE INDEX executions_by_created ON executions (created_at DESC);"
	  "CREATE INDEX executions_by_signal ON executions USING gin (signal_ids);"
	  /* Any change to pipelines, by sigtrig or by hand, tells the dispatchers
	   * to reload their cache at once (they LISTEN on this channel). */
	  "CREATE FUNCTION sigtrig_notify_pipelines() RETURNS trigger LANGUAGE plpgsql AS $$"
	  " BEGIN PERFORM pg_notify('sigtrig_pipelines', ''); RETURN NULL; END $$;"
	  "CREATE TRIGGER pipelines_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pipelines"
	  "  FOR EACH STATEMENT EXECUTE FUNCTION sigtrig_notify_pipelines();"
	  "CREATE TABLE market_bars ("
	  "  ticker text NOT NULL,"
	  "  day integer NOT NULL,"
	  "  close double precision NOT NULL CHECK (close > 0),"
	  "  PRIMARY KEY (ticker, day));" },
	{ 2, "claims by scope, leases, outbox, signals and their decisions, audit log",
	  /* HOLDING: a run that must keep blocking its pipeline past its lease
	   * (an order still open); never expired by the lease reaper. */
	  "ALTER TABLE executions DROP CONSTRAINT executions_status_check;"
	  "ALTER TABLE executions ADD CONSTRAINT executions_status_check"
	  "  CHECK (status IN ('PENDING', 'RUNNING', 'HOLDING', 'SUCCEEDED', 'FAILED'));"
	  /* claim_key '' claims the whole pipeline; a ticker claims (pipeline, ticker). */
	  "ALTER TABLE executions ADD COLUMN claim_key text NOT NULL DEFAULT '';"
	  /* Outbox: set once the task is in the queue; a PENDING row without it is re-enqueued. */
	  "ALTER TABLE executions ADD COLUMN enqueued_at timestamptz;"
	  "UPDATE executions SET enqueued_at = created_at;"
	  /* Renewed by the worker's heartbeat while RUNNING; past it, the run is presumed dead. */
	  "ALTER TABLE executions ADD COLUMN lease_expires_at timestamptz;"
	  "DROP INDEX executions_one_live_per_pipeline;"
	  "CREATE UNIQUE INDEX executions_one_live_per_claim ON executions (pipeline_id, claim_key)"
	  "  WHERE status IN ('PENDING', 'RUNNING', 'HOLDING');"
	  "CREATE INDEX executions_unenqueued ON executions (created_at)"
	  "  WHERE status = 'PENDING' AND enqueued_at IS NULL;"
	  "CREATE INDEX executions_running_lease ON executions (lease_expires_at) WHERE status = 'RUNNING';"
	  "ALTER TABLE pipelines ADD COLUMN last_triggered_at timestamptz;"
	  /* Every consumed signal, as received, so a run and a decision can be traced to it. */
	  "CREATE TABLE signals ("
	  "  signal_id text PRIMARY KEY,"
	  "  body jsonb NOT NULL,"
	  "  source text NOT NULL,"
	  "  signal_type text NOT NULL,"
	  "  kafka_partition integer,"
	  "  kafka_offset bigint,"
	  "  consumed_at timestamptz NOT NULL DEFAULT now());"
	  /* What happened to each signal: one row per matched pipeline, or one for the signal. */
	  "CREATE TABLE signal_decisions ("
	  "  id bigserial PRIMARY KEY,"
	  "  signal_id text NOT NULL,"
	  "  pipeline_id uuid,"
	  "  decision text NOT NULL CHECK (decision IN ('claimed', 'skipped')),"
	  "  reason text,"
	  "  execution_id uuid,"
	  "  task_id text,"
	  "  tickers text[] NOT NULL DEFAULT '{}',"
	  "  decided_at timestamptz NOT NULL DEFAULT now());"
	  "CREATE INDEX signal_decisions_by_signal ON signal_decisions (signal_id);"
	  "CREATE TABLE audit_log ("
	  "  id bigserial PRIMARY KEY,"
	  "  at timestamptz NOT NULL DEFAULT now(),"
	  "  signal_ids text[] NOT NULL,"
	  "  pipeline_id uuid NOT NULL,"
	  "  user_id uuid NOT NULL,"
	  "  decision text NOT NULL,"
	  "  reason text,"
	  "  execution_id uuid);"
	  "CREATE FUNCTION sigtrig_audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$"
	  " BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;"
	  "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log"
	  "  FOR EACH STATEMENT EXECUTE FUNCTION sigtrig_audit_log_is_append_only();" },
	{ 3, "lease owner and last renewal of running executions",
	  /* The token of the worker run that holds a RUNNING execution's lease:
	   * only that run renews, takes over or finishes it. The last renewal is
	   * what the reaper reports when the lease runs out. */
	  "ALTER TABLE executions ADD COLUMN lease_owner text;"
	  "ALTER TABLE executions ADD COLUMN lease_renewed_at timestamptz;" },
	{ 4, "pipeline notifications only for what the dispatchers cache",
	  /* Every claim sets last_triggered_at (for cooldowns, checked in SQL):
	   * announcing that made each dispatcher reload its whole cache after
	   * every batch. Only the columns the cache holds are announced now. */
	  "DROP TRIGGER pipelines_changed ON pipelines;"
	  "CREATE TRIGGER pipelines_changed"
	  "  AFTER INSERT OR DELETE OR TRUNCATE"
	  "  OR UPDATE OF name, user_id, trigger_mode, scanner_tickers, is_active, config ON pipelines"
	  "  FOR EACH STATEMENT EXECUTE FUNCTION sigtrig_notify_pipelines();" },
	{ 5, "cheaper claims: no GIN index on signal_ids, an outbox record that is not indexed",
	  /* Executions of a signal are found through signal_decisions. */
	  "DROP INDEX executions_by_signal;"
	  /* Recording a push (enqueued_at) no longer changes an index's predicate,
	   * so it can stay a heap-only update; the reconciler filters the few
	   * PENDING rows. Free room in each page lets such updates stay in it. */
	  "DROP INDEX executions_unenqueued;"
	  "CREATE INDEX executions_pending ON executions (created_at) WHERE status = 'PENDING';"
	  "ALTER TABLE executions SET (fillfactor = 85);" },
	{ 6, "paper orders, positions and the charge of each execution",
	  /* What order_manager filled. One order per (execution, ticker): a run
	   * retried or redelivered finds its order there and fills nothing twice.
	   * The orders are the record of what moved a user's positions, so they
	   * outlive a deleted pipeline or execution (which they then name no
	   * more) rather than block its deletion. */
	  "CREATE TABLE orders ("
	  "  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
	  "  execution_id uuid REFERENCES executions(id) ON DELETE SET NULL,"
	  "  pipeline_id uuid REFERENCES pipelines(id) ON DELETE SET NULL,"
	  "  user_id uuid NOT NULL REFERENCES users(id),"
	  "  ticker text NOT NULL,"
	  "  side text NOT NULL CHECK (side IN ('buy', 'sell')),"
	  "  quantity numeric(20,6) NOT NULL CHECK (quantity > 0),"
	  "  price numeric(20,6) NOT NULL CHECK (price > 0),"
	  "  value numeric(20,6) NOT NULL CHECK (value >= 0),"
	  /* Paper fills are 'filled' at once; the others are for a broker that is not. */
	  "  status text NOT NULL CHECK (status IN ('open', 'filled', 'cancelled')),"
	  "  created_at timestamptz NOT NULL DEFAULT now(),"
	  "  UNIQUE (execution_id, ticker));"
	  "CREATE INDEX orders_by_user ON orders (user_id, created_at DESC);"
	  /* Each user's holding per ticker; negative quantity is a short position. */
	  "CREATE TABLE positions ("
	  "  user_id uuid NOT NULL REFERENCES users(id),"
	  "  ticker text NOT NULL,"
	  "  quantity numeric(20,6) NOT NULL,"
	  "  average_price numeric(20,6) NOT NULL CHECK (average_price >= 0),"
	  "  updated_at timestamptz NOT NULL DEFAULT now(),"
	  "  PRIMARY KEY (user_id, ticker));"
	  /* The cost each execution paid, at most once: a retried run whose first
	   * attempt committed finds its charge here and is not charged again,
	   * whether or not it filled an order. It only guards its execution, and
	   * goes with it. */
	  "CREATE TABLE execution_charges ("
	  "  execution_id uuid PRIMARY KEY REFERENCES executions(id) ON DELETE CASCADE,"
	  "  user_id uuid NOT NULL REFERENCES users(id),"
	  "  amount numeric(14,2) NOT NULL CHECK (amount >= 0),"
	  "  charged_at timestamptz NOT NULL DEFAULT now());" },
	{ 7, "schedule slots of periodic pipelines",
	  /* One row per slot a scheduler decided, fired or skipped: its key is
	   * what lets a single scheduler, of any number, decide each slot once. */
	  "CREATE TABLE schedule_slots ("
	  "  pipeline_id uuid NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,"
	  "  slot_at timestamptz NOT NULL,"
	  "  decided_at timestamptz NOT NULL DEFAULT now(),"
	  "  PRIMARY KEY (pipeline_id, slot_at));"
	  /* The slot an execution was fired for; never two executions for one slot. */
	  "ALTER TABLE executions ADD COLUMN schedule_slot timestamptz;"
	  "CREATE UNIQUE INDEX executions_one_per_schedule_slot ON executions (pipeline_id, schedule_slot)"
	  "  WHERE schedule_slot IS NOT NULL;" },
	{ 8, "outbox records per dispatcher round",
	  /* Updating every claimed execution to record its push (enqueued_at)
	   * was a third of a round's statement. A dispatcher's claims now carry
	   * the id of their round, and one row here records the push of all of
	   * them. The reconciler folds old rows back into enqueued_at of the
	   * executions still PENDING and deletes them, so the table stays small. */
	  "ALTER TABLE executions ADD COLUMN dispatch_round uuid;"
	  "CREATE TABLE dispatch_rounds_pushed ("
	  "  round_id uuid PRIMARY KEY,"
	  "  pushed_at timestamptz NOT NULL DEFAULT now());" },
	{ 9, "the end of every live run announced to the dispatchers",
	  /* A dispatcher remembers the runs it found live and skips their
	   * pipelines' signals without asking (src/live_runs.h): it must hear
	   * of every end, whoever ends the run (worker, reaper, a person with
	   * psql). The payload is "<pipeline id> <claim key>"; a TRUNCATE
	   * says "*". Row triggers with a WHEN clause cost nothing to the
	   * updates that end no run (lease renewals, starts). */
	  "CREATE FUNCTION sigtrig_notify_run_ended() RETURNS trigger LANGUAGE plpgsql AS $$"
	  " BEGIN PERFORM pg_notify('sigtrig_runs_ended', OLD.pipeline_id::text || ' ' || OLD.claim_key);"
	  " RETURN NULL; END $$;"
	  "CREATE TRIGGER executions_run_ended AFTER UPDATE OF status, pipeline_id, claim_key ON executions"
	  "  FOR EACH ROW WHEN (OLD.status IN ('PENDING', 'RUNNING', 'HOLDING')"
	  "    AND (NEW.status NOT IN ('PENDING', 'RUNNING', 'HOLDING')"
	  "         OR NEW.pipeline_id <> OLD.pipeline_id OR NEW.claim_key <> OLD.claim_key))"
	  "  EXECUTE FUNCTION sigtrig_notify_run_ended();"
	  "CREATE TRIGGER executions_run_deleted AFTER DELETE ON executions"
	  "  FOR EACH ROW WHEN (OLD.status IN ('PENDING', 'RUNNING', 'HOLDING'))"
	  "  EXECUTE FUNCTION sigtrig_notify_run_ended();"
	  "CREATE FUNCTION sigtrig_notify_runs_truncated() RETURNS trigger LANGUAGE plpgsql AS $$"
	  " BEGIN PERFORM pg_notify('sigtrig_runs_ended', '*'); RETURN NULL; END $$;"
	  "CREATE TRIGGER executions_truncated AFTER TRUNCATE ON executions"
	  "  FOR EACH STATEMENT EXECUTE FUNCTION sigtrig_notify_runs_truncated();" },
	{ 10, "decisions made before the database kept in the signal's row",
	  /* A signal skipped before the database (no pipeline watches it, its
	   * source's rate limit, a pipeline's filters, a run the dispatcher
	   * knows live) cost a row of its own per pipeline: under load, most of
	   * a round's rows. They are now a JSON array in the signal's own row,
	   * [{pipeline_id or null, reason, tickers}], written with it. The
	   * decisions PostgreSQL makes (claims, refusals) keep their rows, in
	   * signal_decision_rows; the view signal_decisions shows both, as the
	   * table of that name did. */
	  "ALTER TABLE signals ADD COLUMN skips jsonb NOT NULL DEFAULT '[]';"
	  "ALTER TABLE signal_decisions RENAME TO signal_decision_rows;"
	  "ALTER INDEX signal_decisions_by_signal RENAME TO signal_decision_rows_by_signal;"
	  "CREATE VIEW signal_decisions AS"
	  "  SELECT id, signal_id, pipeline_id, decision, reason, execution_id, task_id, tickers, decided_at"
	  "  FROM signal_decision_rows"
	  "  UNION ALL"
	  "  SELECT NULL::bigint, s.signal_id, (k->>'pipeline_id')::uuid, 'skipped', k->>'reason', NULL::uuid,"
	  "         NULL::text, ARRAY(SELECT jsonb_array_elements_text(k->'tickers')), s.consumed_at"
	  "  FROM signals s CROSS JOIN LATERAL jsonb_array_elements(s.skips) k;" },
};

const struct migration *migrations_list(size_t *count)
{
	*count = sizeof migrations / sizeof migrations[0];
	return migrations;
}

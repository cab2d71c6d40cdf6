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
};

const struct migration *migrations_list(size_t *count)
{
	*count = sizeof migrations / sizeof migrations[0];
	return migrations;
}

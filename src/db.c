#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "log.h"
#include "migrations.h"
#include "text_buffer.h"

/* Any fixed number: the key of the advisory lock that serialises migrations. */
#define MIGRATION_LOCK_KEY "7311042291"

static void copy_error(const char *what, const char *message, char *err, size_t errsize)
{
	snprintf(err, errsize, "%s: %s", what, message);
	/* libpq messages end with a newline; a log line should not. */
	size_t length = strlen(err);
	while (length > 0 && (err[length - 1] == '\n' || err[length - 1] == ' '))
		err[--length] = '\0';
}

/*
 * The SQLSTATE of this thread's last failed statement ("" for none or a
 * failure without a server answer): a caller that must tell why a query
 * failed asks db_last_failure_was_cancel() instead of reading PostgreSQL's
 * message text, which lc_messages translates.
 */
static _Thread_local char last_failure_sqlstate[6];

static void copy_result_error(PGconn *conn, const PGresult *result, char *err, size_t errsize)
{
	const char *sqlstate = result != NULL ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : NULL;
	snprintf(last_failure_sqlstate, sizeof last_failure_sqlstate, "%s", sqlstate != NULL ? sqlstate : "");
	copy_error("postgres", result != NULL ? PQresultErrorMessage(result) : PQerrorMessage(conn), err, errsize);
}

/* A failure with no server answer: a lost connection, never a cancel. */
static void copy_connection_error(PGconn *conn, char *err, size_t errsize)
{
	copy_result_error(conn, NULL, err, errsize);
}

void db_forget_last_failure(void) { last_failure_sqlstate[0] = '\0'; }

bool db_last_failure_was_cancel(void) { return strcmp(last_failure_sqlstate, "57014") == 0; }

/* libpq would print server notices (a FATAL at shutdown) raw on stderr: log them instead. */
static void log_notice(void *unused, const char *message)
{
	(void)unused;
	char text[1024];
	snprintf(text, sizeof text, "%s", message);
	text[strcspn(text, "\n")] = '\0';
	log_event(LOG_WARN, "postgres_notice", json_pack("{s:s}", "message", text));
}

PGconn *db_connect(const char *url, char *err, size_t errsize)
{
	/* connect_timeout bounds an unreachable server; the URL may override it. */
	const char *keywords[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *values[] = { "5", "sigtrig", url, NULL };
	PGconn *conn = PQconnectdbParams(keywords, values, 1);
	if (conn == NULL) {
		snprintf(err, errsize, "postgres: out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		copy_connection_error(conn, err, errsize);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, log_notice, NULL);
	PGresult *result = PQexec(conn, "SET client_min_messages = warning");
	PQclear(result);
	return conn;
}

PGconn *db_ensure_prepared(PGconn **conn, const char *url, int (*prepare)(PGconn *, char *, size_t), char *err,
			   size_t errsize)
{
	if (*conn != NULL && PQstatus(*conn) == CONNECTION_OK)
		return *conn;
	if (*conn != NULL) {
		PQfinish(*conn);
		*conn = NULL;
	}
	*conn = db_connect(url, err, errsize);
	if (*conn != NULL && prepare != NULL && prepare(*conn, err, errsize) != 0) {
		PQfinish(*conn);
		*conn = NULL;
	}
	return *conn;
}

PGconn *db_ensure(PGconn **conn, const char *url, char *err, size_t errsize)
{
	return db_ensure_prepared(conn, url, NULL, err, errsize);
}

PGresult *db_query(PGconn *conn, const char *sql, int count, const char *const *values, char *err,
		   size_t errsize)
{
	PGresult *result = PQexecParams(conn, sql, count, NULL, values, NULL, NULL, 0);
	ExecStatusType status = PQresultStatus(result);
	if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
		return result;
	copy_result_error(conn, result, err, errsize);
	PQclear(result);
	return NULL;
}

int db_prepare(PGconn *conn, const char *name, const char *sql, int count, char *err, size_t errsize)
{
	PGresult *result = PQprepare(conn, name, sql, count, NULL);
	int status = PQresultStatus(result) == PGRES_COMMAND_OK ? 0 : -1;
	if (status != 0)
		copy_result_error(conn, result, err, errsize);
	PQclear(result);
	return status;
}

int db_send_prepared(PGconn *conn, const char *name, int count, const char *const *values, char *err,
		     size_t errsize)
{
	if (PQsendQueryPrepared(conn, name, count, values, NULL, NULL, 0) == 1)
		return 0;
	copy_connection_error(conn, err, errsize);
	return -1;
}

int db_result_ready(PGconn *conn, char *err, size_t errsize)
{
	if (PQconsumeInput(conn) == 0) {
		copy_connection_error(conn, err, errsize);
		return -1;
	}
	return PQisBusy(conn) ? 0 : 1;
}

PGresult *db_receive(PGconn *conn, char *err, size_t errsize)
{
	/* The first result is the answer; reading on to NULL readies the connection for the next query. */
	PGresult *result = PQgetResult(conn);
	for (PGresult *extra; (extra = PQgetResult(conn)) != NULL;)
		PQclear(extra);
	ExecStatusType status = PQresultStatus(result);
	if (result != NULL && (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK))
		return result;
	copy_result_error(conn, result, err, errsize);
	PQclear(result);
	return NULL;
}

/* Simple-query protocol: the only one that runs several statements in one string. */
static int exec_simple(PGconn *conn, const char *sql, char *err, size_t errsize)
{
	PGresult *result = PQexec(conn, sql);
	ExecStatusType status = PQresultStatus(result);
	int ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
	if (!ok)
		copy_result_error(conn, result, err, errsize);
	PQclear(result);
	return ok ? 0 : -1;
}

int db_schema_version(PGconn *conn)
{
	char err[256];
	PGresult *result = db_query(conn,
				    "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL,
				    err, sizeof err);
	if (result == NULL)
		return -1;
	int version = atoi(PQgetvalue(result, 0, 0));
	PQclear(result);
	return version;
}

int db_migrate(PGconn *conn, char *err, size_t errsize)
{
	if (exec_simple(conn,
			"CREATE TABLE IF NOT EXISTS schema_migrations ("
			" version integer PRIMARY KEY, name text NOT NULL,"
			" applied_at timestamptz NOT NULL DEFAULT now())",
			err, errsize) != 0)
		return -1;
	if (exec_simple(conn, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", err, errsize) != 0)
		return -1;
	int status = 0;
	size_t count;
	const struct migration *migrations = migrations_list(&count);
	for (size_t i = 0; i < count && status == 0; i++) {
		char version[16];
		snprintf(version, sizeof version, "%d", migrations[i].version);
		const char *values[] = { version, migrations[i].name };
		/* Each version is looked up, not compared with the highest: versions may have gaps that
		 * a later release fills (two branches numbered theirs apart), and a filled gap must apply. */
		char reason[512];
		PGresult *applied = db_query(conn, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, values,
					     reason, sizeof reason);
		if (applied == NULL) {
			snprintf(err, errsize, "migration %d: %s", migrations[i].version, reason);
			status = -1;
			break;
		}
		bool done = PQntuples(applied) > 0;
		PQclear(applied);
		if (done)
			continue;
		if (exec_simple(conn, "BEGIN", reason, sizeof reason) != 0 ||
		    exec_simple(conn, migrations[i].sql, reason, sizeof reason) != 0) {
			snprintf(err, errsize, "migration %d (%s): %s", migrations[i].version,
				 migrations[i].name, reason);
			PQclear(PQexec(conn, "ROLLBACK"));
			status = -1;
			break;
		}
		PGresult *recorded = db_query(conn,
					      "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
					      2, values, reason, sizeof reason);
		PQclear(recorded);
		if (recorded == NULL || exec_simple(conn, "COMMIT", reason, sizeof reason) != 0) {
			snprintf(err, errsize, "migration %d: %s", migrations[i].version, reason);
			PQclear(PQexec(conn, "ROLLBACK"));
			status = -1;
		}
	}
	char unlock_err[256];
	exec_simple(conn, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", unlock_err, sizeof unlock_err);
	return status;
}

static json_t *cell_to_json(PGresult *result, int row, int column)
{
	if (PQgetisnull(result, row, column))
		return json_null();
	const char *text = PQgetvalue(result, row, column);
	Oid type = PQftype(result, column);
	/* Built-in type oids: bool 16, int8 20, int2 21, int4 23, json 114, float8 701, jsonb 3802, numeric 1700. */
	switch (type) {
	case 16:
		return json_boolean(text[0] == 't');
	case 20:
	case 21:
	case 23:
		return json_integer(strtoll(text, NULL, 10));
	case 701:
	case 1700:
		return json_real(strtod(text, NULL));
	case 114:
	case 3802: {
		json_t *value = json_loads(text, JSON_DECODE_ANY, NULL);
		return value != NULL ? value : json_string(text);
	}
	default:
		return json_string(text);
	}
}

json_t *db_rows_to_json(PGresult *result)
{
	json_t *rows = json_array();
	int columns = PQnfields(result);
	for (int row = 0; row < PQntuples(result); row++) {
		json_t *object = json_object();
		for (int column = 0; column < columns; column++)
			json_object_set_new(object, PQfname(result, column), cell_to_json(result, row, column));
		json_array_append_new(rows, object);
	}
	return rows;
}

json_t *db_query_rows(PGconn *conn, const char *sql, int count, const char *const *values, char *err,
		      size_t errsize)
{
	PGresult *result = db_query(conn, sql, count, values, err, errsize);
	if (result == NULL)
		return NULL;
	json_t *rows = db_rows_to_json(result);
	PQclear(result);
	return rows;
}

json_t *db_query_row_by_id(PGconn *conn, const char *sql, const char *what, const char *id, char *err,
			   size_t errsize)
{
	if (!db_is_uuid(id)) {
		snprintf(err, errsize, "'%s' is not a valid %s id (a UUID)", id, what);
		return NULL;
	}
	const char *values[] = { id };
	json_t *rows = db_query_rows(conn, sql, 1, values, err, errsize);
	if (rows == NULL)
		return NULL;
	json_t *row = json_incref(json_array_get(rows, 0));
	json_decref(rows);
	if (row == NULL)
		snprintf(err, errsize, "no %s %s", what, id);
	return row;
}

bool db_is_uuid(const char *text)
{
	uuid_t parsed;
	return text != NULL && strlen(text) == 36 && uuid_parse(text, parsed) == 0;
}

char *db_text_array_literal(const char *const *items, size_t count)
{
	struct text_buffer text = { 0 };
	text_buffer_puts(&text, "{");
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			text_buffer_puts(&text, ",");
		text_buffer_pg_array_element(&text, items[i], strlen(items[i]));
	}
	text_buffer_puts(&text, "}");
	if (text.failed) {
		free(text.data);
		return NULL;
	}
	return text.data;
}

/*
 * PostgreSQL access shared by every role: connections, the schema
 * migrations, and small helpers over libpq. Each thread owns its own
 * PGconn; db_ensure() reconnects one that broke.
 */
#ifndef SIGTRIG_DB_H
#define SIGTRIG_DB_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

PGconn *db_connect(const char *url, char *err, size_t errsize);
/* Returns a usable connection, reconnecting *conn when it is NULL or broken. */
PGconn *db_ensure(PGconn **conn, const char *url, char *err, size_t errsize);
/*
 * The same, running `prepare` on each new connection (to prepare its
 * statements): when that fails, the connection is dropped and NULL
 * returned with err filled.
 */
PGconn *db_ensure_prepared(PGconn **conn, const char *url, int (*prepare)(PGconn *, char *, size_t), char *err,
			   size_t errsize);

/*
 * Applies the migrations not yet recorded in schema_migrations, in order,
 * each in its own transaction, under an advisory lock so that several
 * daemons starting at once apply each one once.
 */
int db_migrate(PGconn *conn, char *err, size_t errsize);
/* The highest applied migration version, or -1 on error. */
int db_schema_version(PGconn *conn);

/*
 * Runs a parameterised query; returns the result when its status is
 * PGRES_TUPLES_OK or PGRES_COMMAND_OK, else NULL with err filled (the
 * result is cleared).
 */
PGresult *db_query(PGconn *conn, const char *sql, int count, const char *const *values, char *err,
		   size_t errsize);

/*
 * Why this thread's last failed statement failed, for callers that act on
 * the cause: true when PostgreSQL cancelled it (SQLSTATE 57014, its
 * statement_timeout or a cancel request). db_forget_last_failure() starts
 * afresh before a stretch of work that is to be judged on its own.
 */
bool db_last_failure_was_cancel(void);
void db_forget_last_failure(void);

/*
 * A statement run often on one connection, parsed and planned once, in
 * steps for a caller that does other work while it runs: db_prepare()
 * names it (blocking; 0, or -1 with err filled), db_send_prepared() sends
 * it with its parameters, db_result_ready() reads what has arrived without
 * blocking (1 complete, 0 not yet, -1 the connection failed), db_receive()
 * returns the answer as db_query() would (blocking until it is complete)
 * and readies the connection for the next query.
 */
int db_prepare(PGconn *conn, const char *name, const char *sql, int count, char *err, size_t errsize);
int db_send_prepared(PGconn *conn, const char *name, int count, const char *const *values, char *err,
		     size_t errsize);
int db_result_ready(PGconn *conn, char *err, size_t errsize);
PGresult *db_receive(PGconn *conn, char *err, size_t errsize);

/* Rows of a result as a JSON array of objects (json/jsonb columns embedded as JSON, arrays as text). */
json_t *db_rows_to_json(PGresult *result);
/* db_query() then db_rows_to_json(): the rows, or NULL with err filled. */
json_t *db_query_rows(PGconn *conn, const char *sql, int count, const char *const *values, char *err,
		      size_t errsize);
/*
 * The one row a query by id finds, as a JSON object; NULL with err
 * "no <what> <id>" when there is none, or the query's error.
 */
json_t *db_query_row_by_id(PGconn *conn, const char *sql, const char *what, const char *id, char *err,
			   size_t errsize);
/* Whether text is a UUID as PostgreSQL's uuid type reads it (36 characters, hyphenated). */
bool db_is_uuid(const char *text);

/* Formats a C array of strings as a PostgreSQL text[] literal, malloc'd: {"a","b"}. */
char *db_text_array_literal(const char *const *items, size_t count);

#endif

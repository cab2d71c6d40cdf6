#include "execution_store_lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

/* A timestamptz column as ISO 8601 UTC with milliseconds, as the logs write times. */
#define SQL_UTC_TEXT(column) \
	"to_char(" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

int execution_store_renew_leases(PGconn *conn, const struct execution_lease *leases, size_t count,
				 long lease_s, bool *renewed, char *err, size_t errsize)
{
	if (count == 0)
		return 0;
	const char **ids = calloc(count, sizeof *ids);
	const char **owners = calloc(count, sizeof *owners);
	if (ids == NULL || owners == NULL) {
		free(ids);
		free(owners);
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		ids[i] = leases[i].execution_id;
		owners[i] = leases[i].owner;
		renewed[i] = false;
	}
	char *ids_text = db_text_array_literal(ids, count);
	char *owners_text = db_text_array_literal(owners, count);
	free(ids);
	free(owners);
	char lease_text[32];
	snprintf(lease_text, sizeof lease_text, "%ld", lease_s);
	PGresult *result = NULL;
	if (ids_text != NULL && owners_text != NULL) {
		const char *values[] = { ids_text, owners_text, lease_text };
		result = db_query(conn,
				  "UPDATE executions e SET lease_renewed_at = now(),"
				  " lease_expires_at = now() + make_interval(secs => $3::double precision)"
				  " FROM unnest($1::uuid[], $2::text[]) AS l(id, owner)"
				  " WHERE e.id = l.id AND e.lease_owner = l.owner AND e.status = 'RUNNING'"
				  " RETURNING e.id::text",
				  3, values, err, errsize);
	} else {
		snprintf(err, errsize, "out of memory");
	}
	free(ids_text);
	free(owners_text);
	if (result == NULL)
		return -1;
	int renewed_count = 0;
	for (int row = 0; row < PQntuples(result); row++) {
		const char *id = PQgetvalue(result, row, 0);
		for (size_t i = 0; i < count; i++)
			if (!renewed[i] && strcmp(leases[i].execution_id, id) == 0) {
				renewed[i] = true;
				renewed_count++;
			}
	}
	PQclear(result);
	return renewed_count;
}

int execution_store_expire_leases(PGconn *conn, long lease_s, struct execution_reaped *reaped,
				  char *err, size_t errsize)
{
	reaped->expired = NULL;
	reaped->adopted = NULL;
	char lease_text[32];
	snprintf(lease_text, sizeof lease_text, "%ld", lease_s);
	const char *values[] = { lease_text };
	/*
	 * Both updates see the same snapshot, so a run adopted here is not
	 * also expired. A second reaper running the same statement waits for
	 * the row lock, finds the row no longer matches, and skips it.
	 */
	PGresult *result = db_query(
		conn,
		"WITH adopted AS ("
		"  UPDATE executions SET lease_renewed_at = now(),"
		"   lease_expires_at = now() + make_interval(secs => $1::double precision)"
		"  WHERE status = 'RUNNING' AND lease_expires_at IS NULL RETURNING id),"
		" expired AS ("
		"  UPDATE executions SET status = 'FAILED', finished_at = now(), lease_owner = NULL,"
		"   error = 'lease expired: worker stopped renewing at '"
		"           || " SQL_UTC_TEXT("coalesce(lease_renewed_at, started_at, lease_expires_at)")
		"  WHERE status = 'RUNNING' AND lease_expires_at < now()"
		"  RETURNING id, pipeline_id, task_id, lease_expires_at,"
		"            coalesce(lease_renewed_at, started_at) AS renewed_at)"
		" SELECT true, id::text, pipeline_id::text, task_id, " SQL_UTC_TEXT("lease_expires_at") ","
		"        " SQL_UTC_TEXT("renewed_at") " FROM expired"
		" UNION ALL SELECT false, id::text, NULL, NULL, NULL, NULL FROM adopted",
		1, values, err, errsize);
	if (result == NULL)
		return -1;
	reaped->expired = json_array();
	reaped->adopted = json_array();
	for (int row = 0; row < PQntuples(result); row++) {
		const char *id = PQgetvalue(result, row, 1);
		if (PQgetvalue(result, row, 0)[0] != 't') {
			json_array_append_new(reaped->adopted, json_pack("{s:s}", "execution_id", id));
			continue;
		}
		json_array_append_new(
			reaped->expired,
			json_pack("{s:s, s:s, s:s?, s:s, s:s?}", "execution_id", id, "pipeline_id",
				  PQgetvalue(result, row, 2), "task_id",
				  PQgetisnull(result, row, 3) ? NULL : PQgetvalue(result, row, 3),
				  "lease_expires_at", PQgetvalue(result, row, 4), "renewed_at",
				  PQgetisnull(result, row, 5) ? NULL : PQgetvalue(result, row, 5)));
	}
	PQclear(result);
	return 0;
}

void execution_reaped_free(struct execution_reaped *reaped)
{
	json_decref(reaped->expired);
	json_decref(reaped->adopted);
	reaped->expired = NULL;
	reaped->adopted = NULL;
}

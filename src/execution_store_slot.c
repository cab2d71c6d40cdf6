#include "execution_store_slot.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "ids.h"

int execution_store_claim_slot(PGconn *conn, struct slot_claim *claim, char *err, size_t errsize)
{
	ids_time_ordered_uuid(claim->execution_id);
	char slot_text[32];
	snprintf(slot_text, sizeof slot_text, "%" PRId64, claim->slot);
	const char *values[] = { claim->pipeline_id, slot_text, claim->execution_id, claim->task_id };
	/*
	 * The slot's row is inserted first, and the execution only from what
	 * that insert returned: a second scheduler deciding the same slot waits
	 * on the row's key, then inserts neither. The execution's insert gives
	 * way to a live execution of the pipeline (the one-live index): the
	 * slot then stays recorded, without an execution, as skipped.
	 *
	 * A slot at or before one already recorded is not inserted either. A
	 * scheduler that read the newest slot before another recorded a later
	 * one leaves its earlier slot be, as only the slot due now fires after
	 * downtime; and once old records are pruned, it cannot find a decided
	 * slot's record gone and decide it again: the record it would collide
	 * with, or a newer one, is in any snapshot the statement can have.
	 */
	PGresult *result = db_query(
		conn,
		"WITH slot AS ("
		"  INSERT INTO schedule_slots (pipeline_id, slot_at)"
		"  SELECT p.id, to_timestamp($2::float8) FROM pipelines p"
		"  WHERE p.id = $1::uuid AND p.is_active AND p.trigger_mode = 'periodic'"
		"    AND NOT EXISTS (SELECT 1 FROM schedule_slots s"
		"                    WHERE s.pipeline_id = p.id AND s.slot_at >= to_timestamp($2::float8))"
		"  ON CONFLICT DO NOTHING RETURNING pipeline_id, slot_at),"
		" owner AS ("
		"  SELECT u.is_active, u.credits > 0 AS has_credits FROM pipelines p JOIN users u ON u.id = p.user_id"
		"  WHERE p.id = $1::uuid),"
		" claimed AS ("
		"  INSERT INTO executions (id, pipeline_id, status, task_id, triggered_by, schedule_slot)"
		"  SELECT $3::uuid, pipeline_id, 'PENDING', $4, 'schedule', slot_at FROM slot, owner"
		"  WHERE owner.is_active AND owner.has_credits"
		"  ON CONFLICT DO NOTHING RETURNING id)"
		" SELECT (SELECT count(*) FROM slot), (SELECT count(*) FROM claimed),"
		"  coalesce((SELECT is_active FROM owner), false), coalesce((SELECT has_credits FROM owner), false)",
		4, values, err, errsize);
	if (result == NULL)
		return -1;
	bool decided = PQgetvalue(result, 0, 0)[0] != '0';
	bool fired = PQgetvalue(result, 0, 1)[0] != '0';
	bool owner_active = PQgetvalue(result, 0, 2)[0] == 't';
	bool owner_has_credits = PQgetvalue(result, 0, 3)[0] == 't';
	PQclear(result);
	claim->outcome = fired ? SLOT_FIRED : decided ? SLOT_SKIPPED : SLOT_TAKEN;
	claim->skip_reason = !owner_active ? "unauthorized" : !owner_has_credits ? "no_budget" : "already_running";
	if (!fired)
		claim->execution_id[0] = '\0';
	return 0;
}

int execution_store_prune_slots(PGconn *conn, long retention_s, int limit, long *pruned, char *err,
				size_t errsize)
{
	char retention_text[32], limit_text[16];
	snprintf(retention_text, sizeof retention_text, "%ld", retention_s);
	snprintf(limit_text, sizeof limit_text, "%d", limit);
	const char *values[] = { retention_text, limit_text };
	/*
	 * Pipeline by pipeline through the primary key (pipeline_id, slot_at),
	 * so no pass reads the whole table. A record is deleted only while a
	 * newer one of its pipeline is there, so however many schedulers prune
	 * at once, each pipeline's newest record stays. One statement, at
	 * most `limit` rows: its locks last no longer than that.
	 */
	PGresult *result = db_query(
		conn,
		"WITH old AS ("
		"  SELECT s.pipeline_id, s.slot_at FROM pipelines p"
		"  CROSS JOIN LATERAL (SELECT max(slot_at) AS slot_at FROM schedule_slots"
		"                      WHERE pipeline_id = p.id) newest"
		"  CROSS JOIN LATERAL (SELECT pipeline_id, slot_at FROM schedule_slots"
		"                      WHERE pipeline_id = p.id AND slot_at < newest.slot_at"
		"                        AND slot_at < now() - make_interval(secs => $1::double precision)"
		"                      LIMIT $2::integer) s"
		"  LIMIT $2::integer)"
		" DELETE FROM schedule_slots d USING old"
		" WHERE d.pipeline_id = old.pipeline_id AND d.slot_at = old.slot_at",
		2, values, err, errsize);
	if (result == NULL)
		return -1;
	*pruned = strtol(PQcmdTuples(result), NULL, 10);
	PQclear(result);
	return 0;
}

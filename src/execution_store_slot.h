/*
 * Slots of periodic pipelines (see schedule.h). Each slot is decided once,
 * by whichever scheduler first records it in schedule_slots: it fires (a
 * PENDING execution carrying the slot) unless the pipeline still has a live
 * execution, or its owner may not run it (inactive, or out of credits, the
 * dispatcher's rules for signals), in which case it is skipped for good. Every other
 * scheduler, then or later, finds the slot decided and leaves it alone.
 */
#ifndef SIGTRIG_EXECUTION_STORE_SLOT_H
#define SIGTRIG_EXECUTION_STORE_SLOT_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "execution_store.h"

enum slot_outcome {
	SLOT_FIRED,         /* this call claimed an execution for the slot */
	SLOT_SKIPPED,       /* this call decided the slot without a run: see skip_reason */
	SLOT_TAKEN,         /* decided before, by this scheduler or another, or a later slot was;
	                       or the pipeline is gone */
};

struct slot_claim {
	const char *pipeline_id;
	int64_t slot;                               /* seconds since the epoch */
	char task_id[EXECUTION_ID_LENGTH + 1];      /* filled by the caller */
	char execution_id[EXECUTION_ID_LENGTH + 1]; /* filled when fired */
	enum slot_outcome outcome;
	/*
	 * Why a SLOT_SKIPPED slot did not run, as the dispatcher names it:
	 * "already_running" (the previous run still live), "unauthorized" (the
	 * owner is inactive) or "no_budget" (the owner has no credits left).
	 */
	const char *skip_reason;
};

/*
 * Decides one slot of an active periodic pipeline in one statement (the
 * slot's record and its execution are written together or not at all).
 * Fills outcome and, when fired, execution_id. 0, or -1 with err filled.
 */
int execution_store_claim_slot(PGconn *conn, struct slot_claim *claim, char *err, size_t errsize);

/*
 * Deletes at most `limit` slot records decided more than `retention_s`
 * seconds ago, never the newest of a pipeline: that one tells every
 * scheduler which slot was decided last, and so that no slot up to it is
 * due any more. Sets *pruned to the number deleted; fewer than `limit`
 * means none is left to prune. 0, or -1 with err filled.
 */
int execution_store_prune_slots(PGconn *conn, long retention_s, int limit, long *pruned, char *err,
				size_t errsize);

#endif

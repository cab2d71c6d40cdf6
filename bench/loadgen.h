/*
 * The benchmark's load generator (bench/loadgen.c), the worker stand-in
 * that drains the Celery queue (bench/loadgen_drain.c) and the /proc
 * sampling of the processes under test (bench/loadgen_proc.c).
 */
#ifndef SIGTRIG_BENCH_LOADGEN_H
#define SIGTRIG_BENCH_LOADGEN_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

/*
 * Room for every signal one run can send. The ledger is allocated at this
 * size but only the pages of signals actually sent are ever touched, so an
 * ample bound costs address space, not memory.
 */
#define LEDGER_CAPACITY (8u << 20)

/* What happened to one signal. Written by one thread each, read by the reporter. */
struct ledger_entry {
	_Atomic int64_t sent_us;     /* its timestamp (wall clock, microseconds); 0 while unsent */
	_Atomic int64_t enqueued_us; /* when its first task was taken off the queue; 0 while none */
};

/*
 * Every signal of a run, indexed by its sequence number. The sequence is
 * written into the signal_id itself (its last 12 hex digits, after a
 * prefix drawn at random for the run), so the drain finds a signal's entry
 * from the id in a task in O(1), with no shared hash table to lock, and an
 * id from some other run never matches.
 */
struct signal_ledger {
	struct ledger_entry *entries;
	char id_prefix[25]; /* "xxxxxxxx-xxxx-4xxx-8xxx-": a version 4 UUID's first 24 characters */
};

int signal_ledger_init(struct signal_ledger *ledger);
void signal_ledger_free(struct signal_ledger *ledger);
/* The signal_id of sequence number `sequence` into id (37 bytes). */
void signal_ledger_id(const struct signal_ledger *ledger, uint64_t sequence, char *id);
/* The sequence number an id of this run carries; false for any other id. */
bool signal_ledger_sequence(const struct signal_ledger *ledger, const char *id, uint64_t *sequence);

/* Wall clock in microseconds, the unit of the ledger. */
int64_t wall_clock_us(void);
/* Monotonic clock in seconds, for windows and deadlines. */
double monotonic_seconds(void);

/* A task as the popping thread took it: the envelope text and the moment it arrived. */
struct popped_task {
	char *text;
	size_t length;
	int64_t popped_us;
};

/*
 * The worker stand-in. One thread only pops tasks off the Redis list, so
 * that a task's pop time is its enqueue time plus one round trip; another
 * decodes them, records each triggering signal's enqueue time in the
 * ledger and marks their executions SUCCEEDED in PostgreSQL, in batches,
 * so that the pipelines can be claimed again as under a real worker fleet.
 */
struct drain {
	struct signal_ledger *ledger;
	const char *redis_url;
	const char *queue;
	const char *postgres_url;
	redisContext *redis; /* the popper's connection, without a command timeout (BRPOP) */
	PGconn *db;          /* the finisher's own connection */
	pid_t db_backend_pid; /* its server process, so its CPU is not billed to the dispatcher */
	int64_t run_us;      /* how long a run takes: its execution is finished that long after its pop */
	pthread_t popper, finisher;
	atomic_bool stopping;
	pthread_mutex_t inbox_lock;
	pthread_cond_t inbox_ready;
	struct popped_task *inbox;
	size_t inbox_count, inbox_capacity;
	bool finisher_busy;  /* guarded by inbox_lock: it holds tasks taken from the inbox */
	atomic_llong tasks_popped;
	atomic_llong tasks_decoded;
	atomic_llong tasks_unknown;  /* not a task of this run (no signal of ours, or undecodable) */
	atomic_llong tasks_of_run;   /* holding at least one signal of this run */
	atomic_llong executions_finished;
	atomic_llong finish_failures;
	char error[1024];    /* a failure that stopped a thread, for the report */
};

/* Connects (Redis, PostgreSQL) and starts both threads. 0, or -1 with err. */
int drain_start(struct drain *drain, struct signal_ledger *ledger, const char *redis_url, const char *queue,
		const char *postgres_url, int64_t run_us, char *err, size_t errsize);
/* Whether everything popped has been decoded and its executions finished. */
bool drain_is_idle(struct drain *drain);
void drain_stop(struct drain *drain);

/* The CPU time of a few processes, each with its children (PostgreSQL's backends). */
#define WATCH_MAX 8
#define THREAD_SAMPLE_MAX 256

struct watched_process {
	char name[32];
	pid_t pid;
};

struct thread_ticks {
	pid_t tid;
	char name[20];
	unsigned long long ticks;
};

struct cpu_sample {
	double at;                                 /* monotonic seconds */
	unsigned long long ticks[WATCH_MAX];       /* per watched process, its children included */
	unsigned long long extra_ticks;            /* one more process on its own (the drain's backend) */
	double self_seconds;                       /* this process, every thread */
	unsigned long long machine_busy_ticks;     /* every CPU of the machine, all processes (/proc/stat) */
	struct thread_ticks threads[THREAD_SAMPLE_MAX]; /* of the first watched process */
	size_t thread_count;
};

/* Fills *sample for `watched` (and `extra`, 0 for none). */
void cpu_sample_take(const struct watched_process *watched, size_t count, pid_t extra, struct cpu_sample *sample);
/* Seconds of CPU between two samples of the same set. */
double cpu_seconds_between(unsigned long long before, unsigned long long after);
/* Resets a process's peak RSS to its current RSS (Linux clear_refs 5); false when refused. */
bool process_reset_peak_rss(pid_t pid);
/* VmHWM of a process in kB, -1 when unknown. */
long process_peak_rss_kb(pid_t pid);

/* ---- what one rate gave, and the report ---- */

#define SKIP_REASONS_MAX 16

struct skip_count {
	char reason[32];
	double count;
};

struct rate_result {
	double target;               /* signals/s; 0 for flat out */
	double seconds;              /* the measured window: while signals were being sent */
	uint64_t sent;
	double sent_rate, consumed_rate, decided_rate, runs_rate, query_rate, batch_rate;
	double dispatcher_mean_ms; /* mean time from consumption to enqueue, of the signals that started a run */
	struct skip_count skipped[SKIP_REASONS_MAX]; /* matches skipped, window and settling, by reason */
	size_t skipped_count;
	double cpu_percent[WATCH_MAX]; /* each watched process, % of one core */
	double drain_backend_percent;  /* PostgreSQL's work for the drain, out of cpu_percent[1] */
	double loadgen_percent;
	double machine_percent;      /* all the machine's CPUs were busy, whoever ran */
	uint64_t triggered;          /* signals of the window that started at least one run */
	double p50_ms, p95_ms, p99_ms, max_ms;
	long peak_rss_kb;
	bool held_back;              /* the dispatcher fell so far behind that the rate was not held */
	bool settled;                /* all sent was decided and drained within the settle timeout */
	char top_threads[256];
};

struct report_setup {
	const struct watched_process *watched; /* [0] the dispatcher */
	size_t watched_count;
	bool postgres_watched;       /* watched[1] is PostgreSQL: the drain's backend is shown apart */
	long pipeline_count;
	long backlog;                /* the most signals the generator leaves undecided */
};

/* The tables (Markdown) and the goals, on standard output. */
void report_print(const struct report_setup *setup, const struct rate_result *results, size_t count);

#endif

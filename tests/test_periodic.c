/*
 * End to end: periodic pipelines on the real local stack.
 *
 *   one_scheduler   the stack's daemon runs every role: a short interval
 *                   fires slot after slot on its grid, a slot that finds
 *                   the previous run live is skipped for good, and bad
 *                   schedules are refused;
 *   two_schedulers  the stack's daemon runs no scheduler; two
 *                   scheduler-only sigtrigds of the test's own share it,
 *                   one of them stopped (SIGSTOP) while the other fires a
 *                   slot, then the other way round;
 *   pruning         the stack's daemon runs no scheduler; one of the
 *                   test's own, with a retention of an hour, prunes the
 *                   slot records planted before it started.
 *
 * Every check reads what PostgreSQL holds (executions, schedule_slots);
 * the daemons' counters only say who fired.
 */
#include <check.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "schedule.h"
#include "time_zone.h"
#include "timeutil.h"

/* Generous: a loaded two-core machine may be slow to start a run, never this slow. */
#define PERIODIC_TIMEOUT_MS 60000

static void pause_ms(int ms)
{
	struct timespec pause = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&pause, NULL);
}

/* The first value of a query built with printf (only ids the stack made go into it). */
static char *query_value(const char *format, ...)
{
	char sql[2048];
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(sql, sizeof sql, format, arguments);
	va_end(arguments);
	PGconn *db = harness_db();
	char *value = harness_query_value(db, sql, NULL);
	PQfinish(db);
	return value;
}

static long query_number(const char *format, const char *id)
{
	char *value = query_value(format, id);
	ck_assert_msg(value != NULL, "no value for %s", format);
	long number = strtol(value, NULL, 10);
	free(value);
	return number;
}

static void query_command(const char *format, const char *id)
{
	char *ignored = query_value(format, id);
	free(ignored);
}

/* `pipelines add --json` of a periodic pipeline with one time_trigger node: its id, malloc'd. */
static char *add_periodic(const char *name, const char *trigger_config, bool disabled)
{
	char args[2048];
	snprintf(args, sizeof args,
		 "pipelines add --json --name %s --mode periodic%s --config "
		 "'{\"nodes\":[{\"agent_type\":\"time_trigger\",\"config\":%s}]}'",
		 name, disabled ? " --disabled" : "", trigger_config);
	int status;
	json_t *pipeline = harness_sigtrig_json(args, &status);
	ck_assert_int_eq(status, 0);
	const char *id = json_string_value(json_object_get(pipeline, "id"));
	ck_assert_ptr_nonnull(id);
	char *copy = strdup(id);
	json_decref(pipeline);
	return copy;
}

static void set_active(const char *id, bool active)
{
	char args[128];
	snprintf(args, sizeof args, "pipelines %s %s", active ? "enable" : "disable", id);
	ck_assert_int_eq(harness_sigtrig(args, NULL, NULL, NULL), 0);
}

/* Disables the pipeline and waits until its last run is over. */
static void disable_and_settle(const char *id)
{
	set_active(id, false);
	ck_assert(harness_wait_for_value("SELECT count(*) FROM executions WHERE pipeline_id = $1"
					 " AND status IN ('PENDING', 'RUNNING')",
					 id, "0", PERIODIC_TIMEOUT_MS));
}

/* A counter of `sigtrig status --json` of the daemon on `socket` (NULL: the stack's own). */
static json_int_t counter_of(const char *socket, const char *counter)
{
	char args[1024] = "status --json";
	if (socket != NULL)
		snprintf(args, sizeof args, "status --json --socket '%s/%s.sock'", harness.dir, socket);
	int status;
	json_t *report = harness_sigtrig_json(args, &status);
	ck_assert_msg(report != NULL, "no status from %s", socket != NULL ? socket : "the stack's daemon");
	json_int_t value = json_integer_value(json_object_get(json_object_get(report, "counters"), counter));
	json_decref(report);
	return value;
}

static bool file_contains(const char *path, const char *needle)
{
	FILE *file = fopen(path, "r");
	if (file == NULL)
		return false;
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof line, file) != NULL)
		found = strstr(line, needle) != NULL;
	fclose(file);
	return found;
}

/* ---- one scheduler ---- */

START_TEST(test_short_interval_fires_one_run_per_slot_on_its_grid)
{
	char *id = add_periodic("every-2s", "{\"interval\":\"2s\"}", false);
	ck_assert(harness_wait_for_value("SELECT count(*) >= 4 FROM executions WHERE pipeline_id = $1"
					 " AND status = 'SUCCEEDED' AND triggered_by = 'schedule'",
					 id, "t", PERIODIC_TIMEOUT_MS));
	disable_and_settle(id);
	/* Each run has its slot: on the 2 s grid from midnight UTC, none before the pipeline was added. */
	ck_assert_int_eq(query_number("SELECT count(*) FROM executions e JOIN pipelines p ON p.id = e.pipeline_id"
				      " WHERE p.id = '%s' AND (e.schedule_slot IS NULL"
				      "  OR extract(epoch FROM e.schedule_slot)::bigint %% 2 <> 0"
				      "  OR e.schedule_slot < p.created_at)",
				      id),
			 0);
	/* One run per slot, and every slot decided is on record. */
	ck_assert_int_eq(query_number("SELECT count(*) - count(DISTINCT schedule_slot) FROM executions"
				      " WHERE pipeline_id = '%s'",
				      id),
			 0);
	ck_assert_int_eq(query_number("SELECT count(*) FROM executions e WHERE e.pipeline_id = '%s'"
				      " AND NOT EXISTS (SELECT 1 FROM schedule_slots s"
				      "  WHERE s.pipeline_id = e.pipeline_id AND s.slot_at = e.schedule_slot)",
				      id),
			 0);
	/* Disabled, it fires no more. */
	pause_ms(1500);
	long decided = query_number("SELECT count(*) FROM schedule_slots WHERE pipeline_id = '%s'", id);
	pause_ms(4000);
	ck_assert_int_eq(query_number("SELECT count(*) FROM schedule_slots WHERE pipeline_id = '%s'", id), decided);
	free(id);
}
END_TEST

START_TEST(test_slot_that_finds_the_previous_run_live_is_skipped_for_good)
{
	char *id = add_periodic("skips-while-holding", "{\"interval\":\"2s\"}", true);
	/* A run that stays live: HOLDING is never reaped. */
	char holding[40];
	harness_new_uuid(holding);
	char sql[512];
	snprintf(sql, sizeof sql,
		 "INSERT INTO executions (id, pipeline_id, status, triggered_by) VALUES ('%s', '%s', 'HOLDING', 'test')"
		 " RETURNING id",
		 holding, id);
	query_command(sql, NULL);
	json_int_t skipped_before = counter_of(NULL, "periodic_slots_skipped_total");
	set_active(id, true);
	ck_assert(harness_wait_for_value("SELECT count(*) >= 2 FROM schedule_slots WHERE pipeline_id = $1", id, "t",
					 PERIODIC_TIMEOUT_MS));
	ck_assert_int_eq(query_number("SELECT count(*) FROM executions WHERE pipeline_id = '%s'"
				      " AND triggered_by = 'schedule'",
				      id),
			 0);
	ck_assert_int_ge(counter_of(NULL, "periodic_slots_skipped_total"), skipped_before + 2);
	char log[600];
	snprintf(log, sizeof log, "%s/log/sigtrigd.log", harness.dir);
	ck_assert(file_contains(log, "periodic_slot_skipped"));
	long last_skipped = query_number("SELECT extract(epoch FROM max(slot_at))::bigint FROM schedule_slots"
					 " WHERE pipeline_id = '%s'",
					 id);

	/* The run ends: the next slot fires, the skipped ones never do. */
	snprintf(sql, sizeof sql, "UPDATE executions SET status = 'SUCCEEDED', finished_at = now() WHERE id = '%s'"
				  " RETURNING id",
		 holding);
	query_command(sql, NULL);
	ck_assert(harness_wait_for_value("SELECT count(*) >= 1 FROM executions WHERE pipeline_id = $1"
					 " AND triggered_by = 'schedule' AND status = 'SUCCEEDED'",
					 id, "t", PERIODIC_TIMEOUT_MS));
	disable_and_settle(id);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM executions WHERE pipeline_id = '%%s' AND triggered_by = 'schedule'"
		 " AND schedule_slot <= to_timestamp(%ld)",
		 last_skipped);
	ck_assert_int_eq(query_number(sql, id), 0);
	free(id);
}
END_TEST

/* The dispatcher's owner rules hold for schedules too: an inactive owner, or one without credits, runs nothing. */
START_TEST(test_slots_of_an_owner_inactive_or_without_credits_are_skipped_with_the_reason)
{
	int status;
	json_t *pipeline = harness_sigtrig_json("pipelines add --json --name owner-rules --mode periodic --disabled"
						" --user periodic-owner --config "
						"'{\"nodes\":[{\"agent_type\":\"time_trigger\",\"config\":{\"interval\":\"2s\"}}]}'",
						&status);
	ck_assert_int_eq(status, 0);
	char *id = strdup(json_string_value(json_object_get(pipeline, "id")));
	json_decref(pipeline);
	char log[600];
	snprintf(log, sizeof log, "%s/log/sigtrigd.log", harness.dir);

	query_command("UPDATE users SET is_active = false WHERE name = 'periodic-owner' RETURNING id", NULL);
	set_active(id, true);
	ck_assert(harness_wait_for_value("SELECT count(*) >= 1 FROM schedule_slots WHERE pipeline_id = $1", id, "t",
					 PERIODIC_TIMEOUT_MS));
	ck_assert_int_eq(query_number("SELECT count(*) FROM executions WHERE pipeline_id = '%s'", id), 0);
	ck_assert(file_contains(log, "\"reason\":\"unauthorized\""));

	query_command("UPDATE users SET is_active = true, credits = 0 WHERE name = 'periodic-owner' RETURNING id", NULL);
	long decided = query_number("SELECT count(*) FROM schedule_slots WHERE pipeline_id = '%s'", id);
	char enough[64];
	snprintf(enough, sizeof enough, "%ld", decided + 1);
	ck_assert(harness_wait_for_value("SELECT count(*) FROM schedule_slots WHERE pipeline_id = $1", id, enough,
					 PERIODIC_TIMEOUT_MS));
	ck_assert_int_eq(query_number("SELECT count(*) FROM executions WHERE pipeline_id = '%s'", id), 0);
	ck_assert(file_contains(log, "\"reason\":\"no_budget\""));

	/* Credits again: the next slot runs. */
	query_command("UPDATE users SET credits = 10 WHERE name = 'periodic-owner' RETURNING id", NULL);
	ck_assert(harness_wait_for_value("SELECT count(*) >= 1 FROM executions WHERE pipeline_id = $1"
					 " AND triggered_by = 'schedule'",
					 id, "t", PERIODIC_TIMEOUT_MS));
	disable_and_settle(id);
	free(id);
}
END_TEST

START_TEST(test_schedule_is_validated_when_added_and_shown_with_its_next_slot)
{
	const struct {
		const char *trigger, *error;
	} refused[] = {
		{ "{\"interval\":\"1d\",\"time_zone\":\"Mars/Olympus_Mons\"}",
		  "config.nodes[0].config.time_zone: unknown time zone 'Mars/Olympus_Mons'" },
		{ "{\"interval\":\"1d\",\"time_zone\":\"../../../etc/passwd\"}", "not a time zone name" },
		{ "{\"interval\":\"1d\",\"start_time\":\"25:00\"}", "config.nodes[0].config.start_time" },
		{ "{\"interval\":\"fortnightly\"}", "config.nodes[0].config.interval" },
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		char args[1024], *out = NULL, *err = NULL;
		snprintf(args, sizeof args,
			 "pipelines add --name refused --mode periodic --config "
			 "'{\"nodes\":[{\"agent_type\":\"time_trigger\",\"config\":%s}]}'",
			 refused[i].trigger);
		ck_assert_int_eq(harness_sigtrig(args, NULL, &out, &err), 1);
		ck_assert_msg(strstr(err, refused[i].error) != NULL, "%s: %s", refused[i].trigger, err);
		free(out);
		free(err);
	}

	char *id = add_periodic("berlin-0930", "{\"interval\":\"1d\",\"start_time\":\"09:30\","
					       "\"time_zone\":\"Europe/Berlin\"}",
				false);
	char err[512];
	struct time_zone *berlin = time_zone_load("Europe/Berlin", err, sizeof err);
	ck_assert_msg(berlin != NULL, "%s", err);
	struct schedule schedule = { 86400, 570, berlin };
	char expected_before[40], expected_after[40];
	time_format_iso8601((double)schedule_next_slot(&schedule, (int64_t)time_now_seconds()), expected_before,
			    sizeof expected_before);
	char args[128];
	snprintf(args, sizeof args, "pipelines show --json %s", id);
	int status;
	json_t *pipeline = harness_sigtrig_json(args, &status);
	time_format_iso8601((double)schedule_next_slot(&schedule, (int64_t)time_now_seconds()), expected_after,
			    sizeof expected_after);
	ck_assert_int_eq(status, 0);
	json_t *shown = json_object_get(pipeline, "schedule");
	ck_assert_str_eq(json_string_value(json_object_get(shown, "time_zone")), "Europe/Berlin");
	const char *next = json_string_value(json_object_get(shown, "next_slot"));
	ck_assert_ptr_nonnull(next);
	ck_assert_msg(strcmp(next, expected_before) == 0 || strcmp(next, expected_after) == 0, "next slot %s", next);
	/* 09:30 in Berlin is 07:30 UTC in summer, 08:30 in winter. */
	ck_assert_msg(strstr(next, "T07:30:00") != NULL || strstr(next, "T08:30:00") != NULL, "next slot %s", next);
	json_decref(pipeline);
	time_zone_free(berlin);
	set_active(id, false);
	free(id);
}
END_TEST

START_TEST(test_daemon_with_an_unknown_time_zone_does_not_start)
{
	char command[2048];
	snprintf(command, sizeof command,
		 "SIGTRIG_SCHEDULER_TIME_ZONE=Mars/Olympus_Mons '%s/sigtrigd' -f -c '%s/sigtrig.conf'"
		 " --socket '%s/never.sock' 2>&1",
		 harness.bin, harness.dir, harness.dir);
	FILE *daemon = popen(command, "r");
	ck_assert_ptr_nonnull(daemon);
	char output[4096] = "";
	size_t got = fread(output, 1, sizeof output - 1, daemon);
	output[got] = '\0';
	int status = pclose(daemon);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d: %s", status, output);
	ck_assert_msg(strstr(output, "sigtrigd: scheduler.time_zone: unknown time zone 'Mars/Olympus_Mons'") != NULL,
		      "%s", output);
	char socket_path[600];
	snprintf(socket_path, sizeof socket_path, "%s/never.sock", harness.dir);
	ck_assert(access(socket_path, F_OK) != 0);
}
END_TEST

/* ---- two schedulers ---- */

static bool process_is_alive(pid_t pid)
{
	return pid > 0 && kill(pid, 0) == 0;
}

static pid_t scheduler_pid(const char *name)
{
	char path[256];
	snprintf(path, sizeof path, "%s.pid", name);
	return harness_pid_in_file(path);
}

/* A scheduler-only sigtrigd on the stack: socket DIR/NAME.sock, pid file DIR/NAME.pid, log DIR/log/NAME.log. */
static void scheduler_start(const char *name)
{
	char command[4096];
	snprintf(command, sizeof command,
		 "SIGTRIG_DAEMON_PID_FILE='%s/%s.pid' SIGTRIG_DAEMON_LOG_FILE='%s/log/%s.log'"
		 " '%s/sigtrigd' -c '%s/sigtrig.conf' --roles scheduler --socket '%s/%s.sock'",
		 harness.dir, name, harness.dir, name, harness.bin, harness.dir, harness.dir, name);
	ck_assert_msg(system(command) == 0, "sigtrigd %s did not start", name);
}

/* Stops a scheduler of the test's own and waits until it is gone. */
static void scheduler_stop(const char *name)
{
	pid_t pid = scheduler_pid(name);
	if (!process_is_alive(pid))
		return;
	kill(pid, SIGCONT);
	kill(pid, SIGTERM);
	for (int wait = 0; wait < 200 && process_is_alive(pid); wait++)
		pause_ms(50);
}

static void scheduler_signal(const char *name, int sig)
{
	pid_t pid = scheduler_pid(name);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(kill(pid, sig), 0);
}

START_TEST(test_two_schedulers_fire_each_slot_once)
{
	scheduler_start("scheduler-a");
	scheduler_start("scheduler-b");
	scheduler_signal("scheduler-b", SIGSTOP);
	char *id = add_periodic("every-10s", "{\"interval\":\"10s\"}", false);

	/* A alone fires the first slot, and its run ends well within the slot. */
	ck_assert(harness_wait_for_value("SELECT count(*) >= 1 FROM executions WHERE pipeline_id = $1"
					 " AND status = 'SUCCEEDED'",
					 id, "t", PERIODIC_TIMEOUT_MS));
	char *first_slot = query_value("SELECT extract(epoch FROM min(schedule_slot))::bigint FROM executions"
				       " WHERE pipeline_id = '%s'",
				       id);
	ck_assert_ptr_nonnull(first_slot);

	/* Now B alone: it looks at that slot, still due, for the rest of it, and must leave it be. */
	scheduler_signal("scheduler-a", SIGSTOP);
	int64_t resumed = (int64_t)time_now_seconds();
	scheduler_signal("scheduler-b", SIGCONT);
	char sql[512];
	snprintf(sql, sizeof sql,
		 "SELECT count(*) >= 1 FROM executions WHERE pipeline_id = $1 AND status = 'SUCCEEDED'"
		 " AND schedule_slot > to_timestamp(%lld)",
		 (long long)resumed);
	ck_assert(harness_wait_for_value(sql, id, "t", PERIODIC_TIMEOUT_MS));
	disable_and_settle(id);
	scheduler_signal("scheduler-a", SIGCONT);

	long runs = query_number("SELECT count(*) FROM executions WHERE pipeline_id = '%s'", id);
	ck_assert_int_eq(query_number("SELECT count(DISTINCT schedule_slot) FROM executions WHERE pipeline_id = '%s'", id),
			 runs);
	char first_sql[256];
	snprintf(first_sql, sizeof first_sql,
		 "SELECT count(*) FROM executions WHERE pipeline_id = '%%s' AND schedule_slot = to_timestamp(%s)",
		 first_slot);
	ck_assert_int_eq(query_number(first_sql, id), 1);
	/* Each run was fired by exactly one of the two, and each of them fired. */
	json_int_t fired_a = counter_of("scheduler-a", "periodic_slots_fired_total");
	json_int_t fired_b = counter_of("scheduler-b", "periodic_slots_fired_total");
	ck_assert_int_eq(fired_a + fired_b, runs);
	ck_assert_int_ge(fired_a, 1);
	ck_assert_int_ge(fired_b, 1);
	free(first_slot);
	free(id);
}
END_TEST

/* ---- pruning ---- */

START_TEST(test_old_slot_records_are_pruned_keeping_each_pipelines_newest_and_recent_ones)
{
	/* A daily pipeline added forty days ago, decided every day since; the slot due now is twelve hours old. */
	int64_t now = (int64_t)time_now_seconds();
	int start_minute = (int)(((now - 12 * 3600) % 86400) / 60);
	char trigger[128];
	snprintf(trigger, sizeof trigger, "{\"interval\":\"1d\",\"start_time\":\"%02d:%02d\"}", start_minute / 60,
		 start_minute % 60);
	char *daily = add_periodic("decided-daily", trigger, true);
	char err[512];
	struct time_zone *utc = time_zone_load("UTC", err, sizeof err);
	ck_assert_msg(utc != NULL, "%s", err);
	struct schedule schedule = { 86400, start_minute, utc };
	long long due = (long long)schedule_slot_at(&schedule, now);
	time_zone_free(utc);
	char sql[1024];
	snprintf(sql, sizeof sql,
		 "WITH aged AS (UPDATE pipelines SET created_at = now() - interval '40 days' WHERE id = '%%s' RETURNING id)"
		 " INSERT INTO schedule_slots (pipeline_id, slot_at)"
		 " SELECT id, to_timestamp(%lld) - make_interval(days => day) FROM aged, generate_series(0, 30) day"
		 " RETURNING pipeline_id",
		 due);
	query_command(sql, daily);
	/* Another with more old records than one pruning statement takes, and two of the last hour. */
	char *busy = add_periodic("decided-often", "{\"interval\":\"1s\"}", true);
	query_command("INSERT INTO schedule_slots (pipeline_id, slot_at)"
		      " SELECT '%1$s'::uuid, now() - interval '30 days' - make_interval(secs => n) FROM generate_series(1, 5000) n"
		      " UNION ALL SELECT '%1$s'::uuid, now() - make_interval(mins => m) FROM unnest(ARRAY[20, 10]) m"
		      " RETURNING pipeline_id",
		      busy);
	set_active(daily, true);

	setenv("SIGTRIG_SCHEDULER_SLOT_RETENTION_S", "3600", 1);
	scheduler_start("scheduler-prune");
	unsetenv("SIGTRIG_SCHEDULER_SLOT_RETENTION_S");
	ck_assert(harness_wait_for_value("SELECT count(*) FROM schedule_slots WHERE slot_at < now() - interval '1 day'",
					 NULL, "0", PERIODIC_TIMEOUT_MS));
	/* The daily pipeline keeps its newest record, twelve hours old, the other its two recent ones. */
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM schedule_slots WHERE pipeline_id = '%%s' AND slot_at = to_timestamp(%lld)", due);
	ck_assert_int_eq(query_number(sql, daily), 1);
	ck_assert_int_eq(query_number("SELECT count(*) FROM schedule_slots WHERE pipeline_id = '%s'", daily), 1);
	ck_assert_int_eq(query_number("SELECT count(*) FROM schedule_slots WHERE pipeline_id = '%s'"
				      " AND slot_at > now() - interval '1 hour'",
				      busy),
			 2);
	ck_assert_int_eq(query_number("SELECT count(*) FROM schedule_slots WHERE pipeline_id = '%s'", busy), 2);
	/* What was deleted is counted, and logged when the pass is over, as one event. */
	char log[600];
	snprintf(log, sizeof log, "%s/log/scheduler-prune.log", harness.dir);
	int64_t deadline = time_monotonic_ms() + PERIODIC_TIMEOUT_MS;
	while (!file_contains(log, "\"rows\":5030") && time_monotonic_ms() < deadline)
		pause_ms(100);
	ck_assert_msg(file_contains(log, "\"event\":\"schedule_slots_pruned\""), "no schedule_slots_pruned in %s", log);
	ck_assert_msg(file_contains(log, "\"rows\":5030"), "no pass of 5030 rows in %s", log);
	ck_assert_int_eq(counter_of("scheduler-prune", "schedule_slots_pruned_total"), 5030);

	/* The slot due now was decided before the pruning: ticks after it leave it be. */
	pause_ms(3000);
	ck_assert_int_eq(query_number("SELECT count(*) FROM executions WHERE pipeline_id = '%s'", daily), 0);
	ck_assert_int_eq(query_number("SELECT count(*) FROM schedule_slots WHERE pipeline_id = '%s'", daily), 1);
	set_active(daily, false);
	scheduler_stop("scheduler-prune");
	free(busy);
	free(daily);
}
END_TEST

/* ---- the stacks ---- */

static void stack_with_every_role_up(void) { harness_up("--no-generators"); }

/* 'sigtrig up' hands its environment on to the stack's daemon. */
static void stack_without_scheduler_up(void)
{
	setenv("SIGTRIG_DAEMON_ROLES", "generator,dispatcher,worker", 1);
	harness_up("--no-generators");
}

static void stack_down(void)
{
	unsetenv("SIGTRIG_DAEMON_ROLES");
	/* The test's own schedulers, even stopped ones a failed test left behind. */
	const char *extras[] = { "scheduler-a", "scheduler-b", "scheduler-prune" };
	for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++)
		scheduler_stop(extras[i]);
	harness_down();
}

static TCase *stack_case(const char *name, void (*up)(void))
{
	TCase *tcase = tcase_create(name);
	tcase_add_unchecked_fixture(tcase, up, stack_down);
	tcase_set_timeout(tcase, 240);
	return tcase;
}

static Suite *periodic_suite(void)
{
	Suite *suite = suite_create("periodic");
	TCase *one = stack_case("one_scheduler", stack_with_every_role_up);
	tcase_add_test(one, test_short_interval_fires_one_run_per_slot_on_its_grid);
	tcase_add_test(one, test_slot_that_finds_the_previous_run_live_is_skipped_for_good);
	tcase_add_test(one, test_slots_of_an_owner_inactive_or_without_credits_are_skipped_with_the_reason);
	tcase_add_test(one, test_schedule_is_validated_when_added_and_shown_with_its_next_slot);
	tcase_add_test(one, test_daemon_with_an_unknown_time_zone_does_not_start);
	suite_add_tcase(suite, one);
	TCase *two = stack_case("two_schedulers", stack_without_scheduler_up);
	tcase_add_test(two, test_two_schedulers_fire_each_slot_once);
	suite_add_tcase(suite, two);
	TCase *pruning = stack_case("pruning", stack_without_scheduler_up);
	tcase_add_test(pruning, test_old_slot_records_are_pruned_keeping_each_pipelines_newest_and_recent_ones);
	suite_add_tcase(suite, pruning);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(periodic_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

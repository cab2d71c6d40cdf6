#!/bin/sh
# The driver of 'make bench' (bench/README.md): a local stack in a fresh
# directory, 10,000 signal pipelines over 5,000 tickers seeded straight into
# PostgreSQL, the dispatcher role alone in its own sigtrigd, and
# bench/loadgen driving it at each rate. Prints the machine, the settings
# and the tables; the stack is stopped and removed at the end.
#
# Environment (all optional):
#   BENCH_BUILD_DIR   where sigtrig, sigtrigd and bench/loadgen were built (.)
#   BENCH_RATES       signals/s to run, "max" for flat out (10,100,1000,10000,max)
#   BENCH_DURATION    seconds of each rate's measured window (20)
#   BENCH_PIPELINES   signal pipelines to seed (10000)
#   BENCH_TICKERS     tickers they watch, two pipelines each by default (5000)
#   BENCH_BACKLOG     most signals sent and not yet decided; a rate the dispatcher cannot
#                     keep up with is held back to it (20000)
#   BENCH_RUN_MS      how long each run takes the drain's stand-in workers: its execution
#                     is finished that long after its task was popped (0: at once)
#   BENCH_CONF        extra sigtrig.conf lines for the dispatcher, e.g.
#                     "dispatcher.batch_max_wait_ms = 5" (none: sigtrigd's defaults)
#   BENCH_SQL         SQL run in the stack's database after seeding, for experiments
#                     (e.g. "ALTER TABLE pipelines DISABLE TRIGGER pipelines_changed")
#   BENCH_KEEP        1 to keep the stack's directory, with its logs
set -eu

build=${BENCH_BUILD_DIR:-.}
rates=${BENCH_RATES:-10,100,1000,10000,max}
duration=${BENCH_DURATION:-20}
pipelines=${BENCH_PIPELINES:-10000}
tickers=${BENCH_TICKERS:-5000}
backlog=${BENCH_BACKLOG:-20000}
run_ms=${BENCH_RUN_MS:-0}

for program in sigtrig sigtrigd sigtrig-mockbroker bench/loadgen; do
	if [ ! -x "$build/$program" ]; then
		echo "bench: $build/$program is not built (run 'make bench' from the build directory)" >&2
		exit 1
	fi
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/sigtrig-bench.XXXXXX")
conf=$dir/sigtrig.conf
socket=$dir/dispatcher.sock
dispatcher_pid=

cleanup() {
	status=$?
	trap - EXIT
	if [ -n "$dispatcher_pid" ]; then
		kill "$dispatcher_pid" 2>/dev/null || true
		wait "$dispatcher_pid" 2>/dev/null || true
	fi
	"$build/sigtrig" down --dir "$dir" >/dev/null 2>&1 || true
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: kept $dir" >&2
	else
		rm -rf "$dir"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench: $*" >&2
	if [ -f "$dir/log/dispatcher.log" ]; then
		echo "bench: the dispatcher's last log lines:" >&2
		tail -n 20 "$dir/log/dispatcher.log" >&2
	fi
	exit 1
}

# The value sigtrigd uses for a key: the file's last setting, else the default.
conf_value() {
	value=$(sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$conf" | tail -n 1)
	if [ -z "$value" ]; then
		value=$("$build/sigtrigd" --print-config | sed -n "s/^$1 = //p")
	fi
	printf '%s\n' "$value"
}

echo "bench: starting Kafka (mock broker), Redis and PostgreSQL in $dir" >&2
"$build/sigtrig" up --dir "$dir" --no-generators --no-daemon >"$dir/up.log" 2>&1 ||
	{ cat "$dir/up.log" >&2; fail "sigtrig up failed"; }
if [ -n "${BENCH_CONF:-}" ]; then
	printf '%s\n' "$BENCH_CONF" >>"$conf"
fi
"$build/sigtrigd" -c "$conf" --migrate >"$dir/migrate.log" 2>&1 ||
	{ cat "$dir/migrate.log" >&2; fail "sigtrigd --migrate failed"; }
"$build/bench/loadgen" seed -c "$conf" --pipelines "$pipelines" --tickers "$tickers" >&2

if [ -n "${BENCH_SQL:-}" ]; then
	# From standard input, so that each statement is its own transaction (ALTER SYSTEM needs that).
	printf '%s\n' "$BENCH_SQL" |
		psql -X -q -v ON_ERROR_STOP=1 "$(sed -n 's/^postgres\.url = //p' "$conf" | tail -n 1)" -f - >&2 ||
		fail "BENCH_SQL failed"
fi

# The dispatcher role alone: the drain in loadgen stands in for the workers.
"$build/sigtrigd" -c "$conf" -f --roles dispatcher --socket "$socket" 2>"$dir/log/dispatcher.log" &
dispatcher_pid=$!
tries=0
until "$build/sigtrig" status --socket "$socket" >/dev/null 2>&1; do
	kill -0 "$dispatcher_pid" 2>/dev/null || fail "the dispatcher exited at start"
	tries=$((tries + 1))
	[ "$tries" -lt 300 ] || fail "the dispatcher's socket did not answer within 30 s"
	sleep 0.1
done

"$build/bench/loadgen" run -c "$conf" --socket "$socket" --dispatcher-pid "$dispatcher_pid" \
	--postgres-pid "$(cat "$dir/run/postgres.pid")" --watch "kafka=$(cat "$dir/run/kafka.pid")" \
	--watch "redis=$(cat "$dir/run/redis.pid")" --rates "$rates" --duration "$duration" \
	--backlog "$backlog" --run-ms "$run_ms" >"$dir/results.md" || fail "loadgen run failed"
kill -0 "$dispatcher_pid" 2>/dev/null || fail "the dispatcher died during the run"

# Every batching key this sigtrigd knows, as it reads them (the file's, else the default).
settings=
batching_keys=$("$build/sigtrigd" --print-config | sed -n 's/^\(dispatcher\.[a-z_]*\) = .*/\1/p' |
	grep -E 'batch|group|backlog' || true)
for key in $batching_keys log.level; do
	settings="$settings${settings:+, }$key = $(conf_value "$key")"
done
source_dir=$(dirname "$0")/..
revision=$(git -C "$source_dir" rev-parse --short HEAD 2>/dev/null || echo 'unknown')
# What is measured is src/ and daemon/: say when they differ from the commit.
if [ -n "$(git -C "$source_dir" status --porcelain --untracked-files=no -- src daemon 2>/dev/null)" ]; then
	revision="$revision with uncommitted changes in src/ or daemon/"
fi
experiment=
if [ -n "${BENCH_SQL:-}" ]; then
	experiment="
- experiment: after seeding, \`$BENCH_SQL\`"
fi
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
memory=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
postgres_version=$(sed -n 's/^\([0-9.]*\).*/\1/p' "$dir/postgres/data/PG_VERSION" 2>/dev/null || true)
cat <<EOF

## sigtrig dispatcher benchmark, $(date -u +%Y-%m-%dT%H:%MZ), source $revision

- machine: $(nproc) CPUs ($cpu_model), $memory, Debian $(cat /etc/debian_version 2>/dev/null || echo '?'), Linux $(uname -r)
- stack: sigtrig-mockbroker (librdkafka $(pkg-config --modversion rdkafka 2>/dev/null || echo '?') mock cluster), $(redis-server --version | cut -d' ' -f1-3), PostgreSQL ${postgres_version:-?}, all on this machine
- load: $pipelines signal pipelines over $tickers tickers; one ticker per signal, drawn at random; ${duration} s per rate; each run takes ${run_ms} ms
- dispatcher: sigtrigd --roles dispatcher; $settings$experiment
EOF
cat "$dir/results.md"

#!/bin/sh
# The whole test suite, as CI runs it: installs what is missing (Debian 12,
# as root), then builds warning-free, runs every Check suite against real
# PostgreSQL, Redis and Kafka (mock broker) servers that the suites start
# themselves, repeats it under ASan+UBSan, runs cppcheck, and make distcheck.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "$(id -u)" = 0 ]; then
	"$top/scripts/setup-debian.sh"
fi

autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
jobs=$(nproc 2>/dev/null || echo 2)

# The logs of the suites under $1 that failed, for CI's output.
show_failed_logs() {
	for log in "$1"/*.log; do
		[ -f "$log" ] || continue
		if grep -q '^:test-result: \(FAIL\|ERROR\)' "${log%.log}.trs" 2>/dev/null; then
			echo "== $log"
			tail -200 "$log"
		fi
	done
}

run_suite() {
	dir=$1; shift
	rm -rf "$dir"
	mkdir -p "$dir"
	(cd "$dir" && "$top/configure" -q --enable-werror "$@" && make -j"$jobs" >/dev/null &&
		if ! make -j1 check; then
			show_failed_logs tests
			exit 1
		fi)
}

echo "== build and test (-Werror)"
run_suite "$top/build/check"
echo "== build and test under AddressSanitizer and UndefinedBehaviorSanitizer"
ASAN_OPTIONS=detect_leaks=0 run_suite "$top/build/sanitizers" --enable-sanitizers

echo "== cppcheck"
cppcheck --quiet --error-exitcode=1 --enable=warning,style,performance,portability \
	--inline-suppr --std=c11 -D__GNUC__ --include=/usr/include/jansson.h -I src -I daemon -I cmd \
	--suppress=missingIncludeSystem src daemon cmd

echo "== make distcheck"
# Quiet when it passes; when it fails, the logs of the suites that failed.
if ! (cd "$top/build/check" && make -j"$jobs" distcheck >/dev/null); then
	for tests in "$top"/build/check/sigtrig-*/_build/sub/tests; do
		show_failed_logs "$tests"
	done
	exit 1
fi
echo "all checks passed"

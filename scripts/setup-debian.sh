#!/bin/sh
# Installs what sigtrig needs to build, test and run its local stack on
# Debian 12. Run as root; running it again is harmless.
#
# The distribution's own redis-server and postgresql services may start
# when their packages are installed; they are left alone. 'sigtrig up'
# runs its own servers on free loopback ports, so the two never collide.
set -eu

packages="
	build-essential autoconf automake libtool pkg-config
	librdkafka-dev libhiredis-dev libpq-dev libjansson-dev uuid-dev
	libncurses-dev libreadline-dev check
	postgresql redis-server kcat
	python3-celery python3-redis
	socat man-db procps tzdata
"

if [ "$(id -u)" -ne 0 ]; then
	echo "setup-debian.sh: run as root (sudo $0)" >&2
	exit 1
fi

missing=""
for package in $packages; do
	# dpkg -s also knows removed-but-configured packages: ask for the installed state.
	status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
	case "$status" in
	*" installed") ;;
	*) missing="$missing $package" ;;
	esac
done

if [ -z "$missing" ]; then
	echo "setup-debian.sh: every package is installed already"
else
	echo "setup-debian.sh: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	# $missing is a list of words: split on purpose.
	# shellcheck disable=SC2086
	apt-get install -y --no-install-recommends $missing
fi

# initdb, pg_ctl and postgres live outside $PATH on Debian; 'sigtrig up' finds
# them in /usr/lib/postgresql/*/bin itself. Say which one it will use.
newest=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ -d "$newest" ]; then
	echo "setup-debian.sh: PostgreSQL server binaries: $newest"
else
	echo "setup-debian.sh: warning: no /usr/lib/postgresql/*/bin found" >&2
fi

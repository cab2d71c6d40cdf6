#!/bin/sh
# The README's first command: on a fresh Debian 12 machine (as root) it
# installs what is missing, builds sigtrig, starts the local stack in
# ./.sigtrig with the mock generator publishing signals, adds a demo
# pipeline per mock ticker, and follows the signals through every stage.
# Ctrl-C stops following; `./sigtrig down` stops the stack.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ "$(id -u)" = 0 ]; then
	"$top/scripts/setup-debian.sh"
fi
if [ ! -x ./sigtrig ] || [ ! -x ./sigtrigd ]; then
	autoreconf -fi
	./configure -q
fi
make -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
./sigtrig up
if [ "$(./sigtrig pipelines list | wc -l)" -eq 0 ]; then
	./sigtrig pipelines add --name "tech momentum" --ticker AAPL --ticker MSFT --ticker NVDA >/dev/null
	./sigtrig pipelines add --name "mega caps" --ticker GOOGL --ticker AMZN --ticker TSLA >/dev/null
fi
./sigtrig pipelines list
echo
echo "Signals flowing (Ctrl-C to stop following; './sigtrig status' for health; './sigtrig down' to stop):"
exec ./sigtrig trace --follow

#!/bin/sh
# The README's first command: on a fresh Debian 12 machine (as root) it
# installs what is missing, builds sigtrig, starts the local stack in
# ./.sigtrig with the mock generator publishing signals, loads the sample
# market data (daily closes of DAX, SMI, CAC and FTSE, data/README.md),
# adds demo pipelines over the mock tickers, and follows the signals
# through every stage.
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
# The mock generator draws from the indices the sample data covers, so
# that runs have bars to work on, and from two stocks that have none.
SIGTRIG_GENERATOR_MOCK_TICKERS=${SIGTRIG_GENERATOR_MOCK_TICKERS:-DAX,SMI,CAC,FTSE,AAPL,MSFT} ./sigtrig up
./sigtrig bars load data/eu_stock_markets.csv
# Every run pays its order_manager's execution_cost from the owner's
# credits (1000 for a new user): a cent a run keeps the demo going for
# days instead of the quarter of an hour that the default 1 credit lasts.
# The sample data ends in the fall of 1998, so the bars say sell: short
# selling is allowed, so that paper orders flow (`./sigtrig orders`) until
# the position limits stop them.
nodes='{"nodes": [{"agent_type": "market_data_agent"}, {"agent_type": "bias_agent"},
 {"agent_type": "strategy_agent"}, {"agent_type": "risk_manager", "config": {"allow_short": true}},
 {"agent_type": "order_manager", "config": {"execution_cost": 0.01}}]}'
if [ "$(./sigtrig pipelines list | wc -l)" -eq 0 ]; then
	./sigtrig pipelines add --name "european indices" --ticker DAX --ticker SMI --ticker CAC --ticker FTSE \
		--config "$nodes" >/dev/null
	./sigtrig pipelines add --name "tech momentum" --ticker AAPL --ticker MSFT --config "$nodes" >/dev/null
fi
./sigtrig pipelines list
echo
echo "Signals flowing (Ctrl-C to stop following; './sigtrig status' for health; './sigtrig down' to stop):"
exec ./sigtrig trace --follow

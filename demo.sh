#!/usr/bin/env bash
# Set up kinetic-rules and run the demo on the real Binance candles shipped in tests/fixtures/:
# validate the strategy, import the candles, backtest, explain one decision.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x .venv/bin/kinetic-rules ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e '.[dev]'
fi
export PATH="$PWD/.venv/bin:$PATH"
export KINETIC_RULES_DATA="$PWD/user_data/demo-data"

echo "== Check the strategy (names, types, timeframes, look-ahead, param bounds)"
kinetic-rules validate strategies/kinetic_empire.yaml

echo
echo "== Import real candles (Binance, Jan–Mar 2024) into the local store"
kinetic-rules data import --quiet tests/fixtures/binance-5m-2024 tests/fixtures/binance-15m-csv

echo
echo "== What the store holds"
kinetic-rules data list

echo
echo "== Backtest Kinetic Empire on them (reports in user_data/demo-report)"
kinetic-rules backtest strategies/kinetic_empire.yaml --report user_data/demo-report --quiet

echo
echo "== Why did it (not) buy Bitcoin at 16:00 on 28 February 2024?"
kinetic-rules explain strategies/kinetic_empire.yaml --pair BTC/USDT --at 2024-02-28T16:00

echo
echo "Open user_data/demo-report/report.html in a browser. Then try a different threshold:"
echo "  kinetic-rules backtest strategies/kinetic_empire.yaml --set roc_threshold=1"

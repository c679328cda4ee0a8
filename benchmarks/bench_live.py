"""Per-candle decision latency of the live loop, against one vectorized batch.

    python benchmarks/bench_live.py [--data STORE] [--pairs 20] [--candles 30]

Feeds closed 5m candles one at a time into the live runtime (rolling windows, the
portfolio, no exchange round trips) for Kinetic Empire on 20 pairs, and prints the
median and worst time per candle next to the time of evaluating the same windows in one
vectorized batch (the floor of any per-candle design that recomputes its windows).
Target: under 50 ms per candle for 20 pairs. Uses the store built by bench_backtest.py.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pandas as pd

from kinetic_rules.backtest.runner import BacktestRequest, prepare
from kinetic_rules.engine.pairs import prepare_market
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.window import WindowSource

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = ROOT / "strategies" / "kinetic_empire.yaml"
START = pd.Timestamp("2024-06-01", tz="UTC")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "user_data" / "bench-store")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--candles", type=int, default=30, help="closes to time")
    args = parser.parse_args()
    prepared = prepare(BacktestRequest(STRATEGY, args.data))
    others = [p for p in prepared.pairs if p != "BTC/USDT"]
    pairs = [*others[: args.pairs - 1], "BTC/USDT"]
    needs = {(n.pair or pair, n.timeframe) for pair in pairs for n in prepared.plan.data}
    history = {}
    for pair, timeframe in needs:
        frame = prepared.feed(pair, timeframe)
        history[(pair, timeframe)] = frame[frame.index < START]
    source = WindowSource(prepared.plan, pairs, history)
    runtime = Runtime(prepared.plan, source)
    source.refresh()
    latencies = []
    for k in range(args.candles):
        moment = START + pd.Timedelta(minutes=5 * k)
        arriving = {}
        for pair in pairs:
            frame = prepared.feed(pair, "5m")
            arriving[pair] = frame[frame.index == moment]
        started = time.perf_counter()
        for pair, candle in arriving.items():
            source.add(pair, "5m", candle)
        runtime.step(source.refresh())
        latencies.append(time.perf_counter() - started)
    batch = []
    for _ in range(3):
        started = time.perf_counter()
        prepare_market(prepared.plan, source._feed, pairs)
        batch.append(time.perf_counter() - started)
    median, worst = statistics.median(latencies) * 1000, max(latencies) * 1000
    floor = min(batch) * 1000
    sizes = ", ".join(f"{n} × {tf}" for tf, n in source.sizes.items())
    print(f"Kinetic Empire, {len(pairs)} pairs, windows of {sizes}")
    print(f"  per-candle decision latency   median {median:7.1f} ms   worst {worst:7.1f} ms")
    print(f"  one vectorized batch (floor)         {floor:7.1f} ms")
    print(f"\n  median / batch   {median / floor:5.2f}×")
    print(f"  median           {median:5.1f} ms   (target < 50 ms)")


if __name__ == "__main__":
    main()

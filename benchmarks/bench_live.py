"""Per-candle decision latency of the live loop, against one vectorized batch.

    python benchmarks/bench_live.py [--data STORE] [--pairs 20] [--candles 144]

Feeds closed candles one close at a time into the live runtime for Kinetic Empire on
20 pairs: the 5m candle of every pair at each close, and the 1h and 1d candles as they
close too, into rolling windows of 3,000 candles. Each close is timed from the first
candle handed over to the runtime's decisions: appending the candles, gathering the
live inputs, extending every series of every pair by them (compile/incremental.py),
the scanner (its live-only `tight_spread` step at each refresh) and verdicts, and the
portfolio step. The live inputs come from an in-process stand-in of the exchange, so
no round trip is counted: every close reads the best bid and ask of all pairs in one
batched call and each pair's order book (`spread`, `bid`, `ask`, `book_imbalance`),
more than Kinetic Empire needs. Printed next to it: the time spent gathering them, and
the time of evaluating the same windows in one vectorized batch, which is what every
close cost when the windows were evaluated afresh. Target: under 50 ms per close for
20 pairs.

Figures on the shared 2-core development machine: see README.md ("Benchmarks") and
docs/live.md, which has the profile and the design.

Uses the store built by bench_backtest.py (see its docstring).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from kinetic_rules.backtest.runner import BacktestRequest, prepare
from kinetic_rules.engine.pairs import prepare_market
from kinetic_rules.live.inputs import LiveInputs
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.window import WindowSource
from kinetic_rules.timeframes import timeframe_seconds

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = ROOT / "strategies" / "kinetic_empire.yaml"
START = pd.Timestamp("2024-06-01", tz="UTC")


def closes(frame: pd.DataFrame, timeframe: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(frame.index) + pd.Timedelta(seconds=timeframe_seconds(timeframe))


class InProcessExchange:
    """The exchange's answers without the network: the touch 0.02% around each pair's
    last close, and a five-level book around it."""

    id = "in-process"
    has: ClassVar[dict[str, bool]] = {"fetchBidsAsks": True}

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def fetch_bids_asks(self, pairs: list[str]) -> dict[str, dict[str, float]]:
        return {p: {"bid": self.last[p] * 0.9998, "ask": self.last[p]} for p in pairs}

    def fetch_order_book(self, pair: str, limit: int) -> dict[str, Any]:
        price = self.last[pair]
        bids = [[price * (0.9998 - 0.0001 * i), 1.0 + i] for i in range(limit)]
        asks = [[price * (1 + 0.0001 * i), 1.5 + i] for i in range(limit)]
        return {"bids": bids, "asks": asks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "user_data" / "bench-store")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--candles", type=int, default=144, help="closes to time")
    args = parser.parse_args()
    prepared = prepare(BacktestRequest(STRATEGY, args.data))
    plan = prepared.plan
    others = [p for p in prepared.pairs if p != "BTC/USDT"]
    pairs = [*others[: args.pairs - 1], "BTC/USDT"]
    needs = sorted({(n.pair or pair, n.timeframe) for pair in pairs for n in plan.data})
    frames = {key: prepared.feed(*key) for key in needs}
    history = {key: f[closes(f, key[1]) <= START] for key, f in frames.items()}
    started = time.perf_counter()
    source = WindowSource(plan, pairs, history, live=True)
    runtime = Runtime(plan, source)
    source.refresh()
    startup = time.perf_counter() - started
    exchange = InProcessExchange()
    inputs = LiveInputs(exchange, frozenset({"spread", "bid", "ask", "book_imbalance"}))
    exchange.last = {
        pair: float(history[(pair, plan.timeframe)]["close"].iloc[-1]) for pair in pairs
    }
    inputs.read(pairs)  # once before timing: the first call imports ccxt's error types
    scanner = plan.strategy.spec.scanner
    step = pd.Timedelta(seconds=timeframe_seconds(plan.timeframe))
    latencies, gathering, kept = [], [], []
    for k in range(args.candles):
        close = START + (k + 1) * step
        arriving = {key: f[closes(f, key[1]) == close] for key, f in frames.items()}
        started = time.perf_counter()
        arrived = []
        for (pair, timeframe), candles in arriving.items():
            if len(candles):
                source.add(pair, timeframe, candles)
                if timeframe == plan.timeframe and pair in pairs:
                    arrived.append(pair)
                    exchange.last[pair] = float(candles["close"].iloc[-1])
        spent = inputs.seconds_spent
        refresh = scanner is not None and int(close.timestamp()) % scanner.refresh == 0
        source.supply(inputs.read(arrived, at=close), scanner=refresh)
        gathering.append(inputs.seconds_spent - spent)
        runtime.step(source.refresh())
        latencies.append(time.perf_counter() - started)
        if refresh:
            view = source.as_of(len(source.timeline) - 1)
            kept.append(sum(bool(data.allowed[-1]) for data in view.values()))
    windows = {key: source._feed(*key) for key in needs}  # the same candles, as frames

    def feed(pair: str, timeframe: str) -> pd.DataFrame:
        return windows[(pair, timeframe)]

    batch = []
    for _ in range(3):
        started = time.perf_counter()
        prepare_market(plan, feed, pairs)
        batch.append(time.perf_counter() - started)
    ms = sorted(t * 1000 for t in latencies)
    median, worst = statistics.median(ms), ms[-1]
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    floor = min(batch) * 1000
    sizes = ", ".join(f"{n} × {tf}" for tf, n in source.sizes.items())
    print(f"Kinetic Empire, {len(pairs)} pairs, windows of {sizes}, {len(ms)} closes")
    print(f"  per-candle decision latency   median {median:6.1f} ms   90% {p90:6.1f} ms")
    print(f"                                worst  {worst:6.1f} ms")
    gather = sorted(t * 1000 for t in gathering)
    print(
        f"  of which live inputs          median {statistics.median(gather):6.1f} ms   "
        f"worst {gather[-1]:6.1f} ms  (1 batched touch + {len(pairs)} books per close, "
        "in process)"
    )
    print(f"  scanner refreshes with live inputs: {len(kept)} (pairs kept: {min(kept, default=0)}"
          f"-{max(kept, default=0)})")  # fmt: skip
    print(f"  one vectorized batch                 {floor:6.1f} ms")
    print(f"  session start (windows filled, evaluated once) {startup:5.2f} s")
    print(f"\n  median / batch   {median / floor:5.2f}×")
    print(f"  median           {median:5.1f} ms   (target < 50 ms)")


if __name__ == "__main__":
    main()

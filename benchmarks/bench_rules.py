"""Compiled rules vs hand-written pandas, on the real 5m data set.

    python benchmarks/bench_rules.py [--source ../shared/data/binance-5m-2024] [--pairs 41]

Prints, from one run on one machine:
- loading + checking strategies/kinetic_empire.yaml (target: under 200 ms warm),
- evaluating Kinetic Empire's entry and exit rules for every pair with the compiler,
- the same rules written by hand with pandas/numpy, and the ratio (target ≤ 1.5×),
- the whole plan (scanner, regime, protections too), for scale.
Candles are read into memory first and shared by both sides, so only rule work is timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kinetic_rules.compile.evaluate import Evaluator
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.loader import load_file

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = ROOT / "strategies" / "kinetic_empire.yaml"


def load_candles(source: Path, limit: int) -> dict[tuple[str, str], pd.DataFrame]:
    pairs = sorted({p.name.split("-")[0] for p in source.glob("*_USDT-5m.feather")})[:limit]
    if "BTC_USDT" not in pairs:
        pairs.append("BTC_USDT")
    frames = {}
    for name in pairs:
        pair = name.replace("_", "/")
        for tf in ("5m", "1h", "1d"):
            frame = pd.read_feather(source / f"{name}-{tf}.feather").set_index("date")
            frames[(pair, tf)] = frame[["open", "high", "low", "close", "volume"]]
    return frames


def hand_written(five: pd.DataFrame, hour: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Kinetic Empire's entry and exit, the way one would write them in a freqtrade strategy."""
    close, volume = five["close"], five["volume"]
    ema50 = close.ewm(span=50, adjust=False).mean()
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    rsi = 100 - 100 / (1 + gain / loss)
    roc = (close / close.shift(12) - 1) * 100
    vol_mean = volume.rolling(288).mean()
    hourly = pd.DataFrame(
        {"close_1h": hour["close"], "ema_1h": hour["close"].ewm(span=50, adjust=False).mean()}
    )
    hourly.index = hourly.index + pd.Timedelta(hours=1) - pd.Timedelta(minutes=5)
    merged = pd.merge_asof(
        five[[]].reset_index(), hourly.reset_index(), left_on="date", right_on="date"
    )
    macro = (merged["close_1h"] > merged["ema_1h"]).to_numpy()
    entry = (
        macro
        & (close > ema50).to_numpy()
        & (roc > 1.5).to_numpy()
        & ((rsi > 45) & (rsi < 65)).to_numpy()
        & (volume > vol_mean).to_numpy()
    )
    exit_ = ((close < ema50) & (volume > vol_mean)).to_numpy()
    return entry, exit_


def timed(label: str, work, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    print(f"  {label:<44} {best * 1000:9.1f} ms")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared/data/binance-5m-2024")
    parser.add_argument("--pairs", type=int, default=41)
    args = parser.parse_args()

    start = time.perf_counter()
    checked = check(load_file(STRATEGY))
    cold = time.perf_counter() - start
    print("strategy file")
    print(f"  {'load + check (first, builds the parser)':<44} {cold * 1000:9.1f} ms")
    warm = timed("load + check (warm)", lambda: check(load_file(STRATEGY)), repeat=5)

    frames = load_candles(args.source, args.pairs)
    pairs = sorted({pair for pair, tf in frames if tf == "5m"})
    candles = sum(len(frames[(p, "5m")]) for p in pairs)
    print(f"\nrules over {len(pairs)} pairs, {candles:,} 5m candles")

    entry_exit = dataclasses.replace(
        checked,
        indicators={},
        conditions={},
        scanner=[],
        regime=[],
        protections={},
        priority=None,
        stop_initial=None,
        trailing={},
        take_profit={},
        stake=None,
    )
    rules_plan, full_plan = build_plan(entry_exit), build_plan(checked)

    def feed(pair: str, tf: str) -> pd.DataFrame:
        return frames[(pair, tf)]

    def compiled(plan) -> None:  # type: ignore[no-untyped-def]
        evaluator = Evaluator(plan, feed)
        for pair in pairs:
            evaluator.evaluate(pair)

    def by_hand() -> None:
        for pair in pairs:
            hand_written(frames[(pair, "5m")], frames[(pair, "1h")])

    ours = timed("compiled: entry + exit rules", lambda: compiled(rules_plan))
    theirs = timed("hand-written pandas: same rules", by_hand)
    whole = timed("compiled: whole plan (scanner, regime, …)", lambda: compiled(full_plan))
    print("\nratios (lower is better)")
    print(f"  compiled / hand-written           {ours / theirs:6.2f}×   (target ≤ 1.5×)")
    print(f"  whole plan / hand-written rules   {whole / theirs:6.2f}×")
    print(f"  load + check, warm                {warm * 1000:6.1f} ms (target < 200 ms)")


if __name__ == "__main__":
    main()

"""Volume profile over long windows: the three outputs against one rolling sum.

    python benchmarks/bench_profile.py [--source ../shared/data/binance-5m-2024] [--pair SOL_USDT]

Prints, from one run on one machine, the CPU time to compute volume_profile_poc, _vah
and _val over a whole year of 5m candles with a one-week window (2016 candles), and the
ratio against a pandas rolling sum of the same window on the same data (a floor: any
rolling statistic reads every candle once). CPU time, not wall time: on a shared
machine wall time also counts the waiting for a core. The test suite checks the values; the
time lives here, where a loaded machine cannot fail a build.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kinetic_rules.functions import REGISTRY
from kinetic_rules.functions.profile import forget_last_profile

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 2016  # one week of 5m candles
YEAR = 105_120  # 5m candles in 365 days


def _impl(name: str) -> Any:
    function = REGISTRY.get(name)
    assert function is not None, name
    return function.impl


def year_of_candles(source: Path, pair: str) -> dict[str, np.ndarray]:
    """The pair's 5m candles, repeated at shifted price levels until they cover a year."""
    frame = pd.read_feather(source / f"{pair}-5m.feather")
    cols = {k: frame[k].to_numpy(dtype=np.float64) for k in ("high", "low", "close", "volume")}
    reps = -(-YEAR // len(frame))
    return {
        k: np.concatenate([v * (1 + 0.1 * i) if k != "volume" else v for i in range(reps)])[:YEAR]
        for k, v in cols.items()
    }


def best_of(runs: int, work: Any) -> float:
    times = []
    for _ in range(runs):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared/data/binance-5m-2024")
    parser.add_argument("--pair", default="SOL_USDT")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cols = year_of_candles(args.source, args.pair)
    hlcv = [cols[k] for k in ("high", "low", "close", "volume")]
    volume = pd.Series(cols["volume"])

    def profile() -> None:
        forget_last_profile()  # each run computes: the last profile is kept for the next call
        _impl("volume_profile_poc")(*hlcv, WINDOW, 0.1)
        _impl("volume_profile_vah")(*hlcv, WINDOW, 70.0, 0.1)
        _impl("volume_profile_val")(*hlcv, WINDOW, 70.0, 0.1)

    floor = best_of(args.runs, lambda: volume.rolling(WINDOW).sum())
    took = best_of(args.runs, profile)
    print(
        f"{len(volume):,} candles, window {WINDOW}: poc+vah+val {took:.2f} s CPU "
        f"(best of {args.runs})"
    )
    print(f"rolling sum of the same window: {floor * 1000:.1f} ms; ratio {took / floor:.0f}x")


if __name__ == "__main__":
    main()

"""Kinetic Empire over the whole 5m data set: the backtest against its own floor.

    python benchmarks/bench_backtest.py [--data STORE] [--repeat 3]

Without --data, both sets of ../shared/data are imported once into
user_data/bench-store (the 15m set brings the long BTC daily history the daily EMA-50
warms up on). Each measurement runs in a fresh subprocess, so its peak memory is its
own. Printed:
- the floor: evaluating every rule of the plan for every pair (data loading included),
- the whole backtest: signals, scanner, portfolio simulation, equity curve,
- their ratio (target ≤ 3×), wall time (target < 5 s) and peak memory (target < 1 GB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = ROOT / "strategies" / "kinetic_empire.yaml"
SHARED = ROOT.parent / "shared" / "data"

CHILD = """
import json, resource, sys, time
from pathlib import Path
import pandas as pd
from kinetic_rules.backtest.runner import BacktestRequest, prepare, run_backtest
from kinetic_rules.compile.evaluate import Evaluator
request = BacktestRequest(Path(sys.argv[2]), Path(sys.argv[3]),
    start=pd.Timestamp("2024-01-01", tz="UTC"), end=pd.Timestamp("2024-09-08", tz="UTC"))
started = time.perf_counter()
if sys.argv[1] == "floor":
    prepared = prepare(request)
    evaluator = Evaluator(prepared.plan, prepared.feed)
    for pair in prepared.pairs:
        evaluator.evaluate(pair)
    extra = {"pairs": len(prepared.pairs)}
else:
    result = run_backtest(request)
    extra = {"trades": len(result.trades), "pairs": len(result.pairs)}
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, **extra}))
"""


def measure(kind: str, store: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(STRATEGY), str(store)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def ensure_store(store: Path) -> None:
    if (store / "index.json").exists() or any(store.glob("*/*.parquet")):
        return
    print(f"importing {SHARED} into {store} (once) …", flush=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kinetic_rules", "data", "import", "--quiet", "--data", str(store),
         str(SHARED / "binance-5m-2024"), str(SHARED / "binance-15m-2023-2026")],
        check=True,
    )  # fmt: skip
    print(f"imported in {time.perf_counter() - started:.1f} s\n")


def _seconds(figures: dict[str, float]) -> float:
    return figures["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "user_data" / "bench-store")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    args = parser.parse_args()
    ensure_store(args.data)
    floor = min((measure("floor", args.data) for _ in range(args.repeat)), key=_seconds)
    whole = min((measure("backtest", args.data) for _ in range(args.repeat)), key=_seconds)
    print(f"Kinetic Empire, {whole['pairs']:.0f} pairs of 5m candles, 2024-01-01 .. 2024-09-08")
    rows = [
        ("floor: evaluate every rule, every pair", floor),
        (f"whole backtest ({whole['trades']:.0f} trades)", whole),
    ]
    for label, figures in rows:
        print(f"  {label:<40} {figures['seconds']:7.2f} s  {figures['peak_mb']:7.0f} MB")
    print(f"\n  backtest / floor   {whole['seconds'] / floor['seconds']:5.2f}×   (target ≤ 3×)")
    print(f"  wall time          {whole['seconds']:5.2f} s   (target < 5 s)")
    print(f"  peak memory        {whole['peak_mb']:5.0f} MB  (target < 1024 MB)")


if __name__ == "__main__":
    main()

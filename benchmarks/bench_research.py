"""What a search costs: one trial against one plain backtest, and trials per second.

    python benchmarks/bench_research.py [--data STORE] [--trials 200] [--workers 2]
                                        [--timerange 20240101-20240908] [--loop 3]

Kinetic Empire on the 41-pair 5m set (imported once into user_data/bench-store, as
bench_backtest.py does), searching its entry thresholds (roc_threshold, rsi_min, rsi_max).
Printed, all measured in this run:
- one plain backtest (file read, check, plan, candles, simulation) and one trial (param
  values substituted, simulation on candles already in memory), in CPU and wall seconds,
  and their ratio (target ≤ 25%: speed comes from the compiler's caching, see docs);
- `optimize` with --trials N: trials per second, against a sequential loop of
  `kinetic-rules backtest --set …` processes (what a person would script without it).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_backtest import ensure_store

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = ROOT / "strategies" / "kinetic_empire.yaml"
PARAMS = "roc_threshold,rsi_min,rsi_max"

CHILD = """
import json, random, sys, time
from pathlib import Path
from kinetic_rules.backtest.runner import BacktestRequest, run_backtest
from kinetic_rules.data.timerange import parse_timerange
from kinetic_rules.research.trials import TrialRunner, build_context
strategy, store, timerange = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
count = int(sys.argv[4])
start, end = parse_timerange(timerange)
request = BacktestRequest(strategy, store, start=start, end=end)
def clocked(work):
    cpu, wall = time.process_time(), time.perf_counter()
    out = work()
    return out, time.process_time() - cpu, time.perf_counter() - wall
run_backtest(request)  # warm the imports and the file cache, as a long session would be
_, backtest_cpu, backtest_wall = clocked(lambda: run_backtest(request))
runner = TrialRunner(build_context(request))
rng = random.Random(0)
cpu = wall = 0.0
for _ in range(count):
    values = {"roc_threshold": rng.uniform(0, 10), "rsi_min": rng.randint(20, 60),
              "rsi_max": rng.randint(60, 90)}
    _, c, w = clocked(lambda: runner.run(values))
    cpu, wall = cpu + c, wall + w
print(json.dumps({"backtest_cpu": backtest_cpu, "backtest_wall": backtest_wall,
                  "trial_cpu": cpu / count, "trial_wall": wall / count,
                  "pairs": len(runner.context.pairs)}))
"""


def per_trial(store: Path, timerange: str, count: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(STRATEGY), str(store), timerange, str(count)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def optimize_rate(store: Path, timerange: str, trials: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "kinetic_rules", "optimize", str(STRATEGY), "--data",
             str(store), "--timerange", timerange, "--params", PARAMS, "--trials", str(trials),
             "--workers", str(workers), "--study", f"sqlite:///{folder}/study.sqlite",
             "--report", folder, "--quiet"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        return trials / (time.perf_counter() - started)


def backtest_loop_rate(store: Path, timerange: str, runs: int) -> float:
    rng = random.Random(1)
    started = time.perf_counter()
    for _ in range(runs):
        subprocess.run(
            [sys.executable, "-m", "kinetic_rules", "backtest", str(STRATEGY), "--data",
             str(store), "--timerange", timerange, "--quiet",
             "--set", f"roc_threshold={rng.uniform(0, 10)}",
             "--set", f"rsi_min={rng.randint(20, 60)}", "--set", f"rsi_max={rng.randint(60, 90)}"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return runs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "user_data" / "bench-store")
    parser.add_argument("--timerange", default="20240101-20240908")
    parser.add_argument("--trials", type=int, default=200, help="trials of the optimize run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=5, help="trials timed one by one")
    parser.add_argument("--loop", type=int, default=3, help="backtest processes in the loop")
    args = parser.parse_args()
    ensure_store(args.data)
    one = per_trial(args.data, args.timerange, args.sample)
    print(f"Kinetic Empire, {one['pairs']:.0f} pairs, {args.timerange}, searching {PARAMS}")
    print(
        f"  one backtest     {one['backtest_cpu']:7.2f} s CPU  {one['backtest_wall']:7.2f} s wall"
    )
    print(f"  one trial        {one['trial_cpu']:7.2f} s CPU  {one['trial_wall']:7.2f} s wall")
    ratio = one["trial_cpu"] / one["backtest_cpu"]
    print(f"  trial / backtest {ratio:7.0%} of the CPU       (target ≤ 25%)")
    loop = backtest_loop_rate(args.data, args.timerange, args.loop)
    rate = optimize_rate(args.data, args.timerange, args.trials, args.workers)
    print(f"\n  optimize, {args.trials} trials, {args.workers} workers: {rate:6.3f} trials/s")
    print(f"  loop of {args.loop} `backtest --set` processes:  {loop:6.3f} backtests/s")
    print(f"  speed-up {rate / loop:5.1f}×")


if __name__ == "__main__":
    main()

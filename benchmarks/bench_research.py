"""What a search costs: one trial against one plain backtest, and trials per second.

    python benchmarks/bench_research.py [--data STORE] [--trials 200] [--workers 2]
                                        [--timerange 20240601-20240908] [--loop 3]

Kinetic Empire on the 41-pair 5m set (imported once into user_data/bench-store, as
bench_backtest.py does; 40 pairs trade, EURI is blacklisted), searching its entry
thresholds (roc_threshold, rsi_min, rsi_max). Printed, all measured in this run:
- one plain backtest (file read, check, plan, candles, simulation) and trials (param
  values substituted, simulation on candles already in memory), in CPU and wall seconds:
  the first trial, which fills the worker's series cache, and each later one, which reads
  every series no searched param touches from it; the later trials' ratio to the
  backtest (target ≤ 25%), the same without the cache (`--cache-mb 0`), and the cache's
  hits and size;
- `optimize` with --trials N: wall and CPU time and trials per second, against a
  sequential loop of `kinetic-rules backtest --set …` processes (what a person would
  script without it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_backtest import ensure_store

from kinetic_rules.compile.series_cache import DEFAULT_MB

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
count, cache_mb = int(sys.argv[4]), int(sys.argv[5])
start, end = parse_timerange(timerange)
request = BacktestRequest(strategy, store, start=start, end=end)
def clocked(work):
    cpu, wall = time.process_time(), time.perf_counter()
    out = work()
    return out, time.process_time() - cpu, time.perf_counter() - wall
run_backtest(request)  # warm the imports and the file cache, as a long session would be
_, backtest_cpu, backtest_wall = clocked(lambda: run_backtest(request))
runner = TrialRunner(build_context(request, cache_mb=cache_mb))
rng = random.Random(0)
def values():
    return {"roc_threshold": rng.uniform(0, 10), "rsi_min": rng.randint(20, 60),
            "rsi_max": rng.randint(60, 90)}
_, first_cpu, first_wall = clocked(lambda: runner.run(values()))
cpu = wall = 0.0
for _ in range(count):
    chosen = values()
    _, c, w = clocked(lambda: runner.run(chosen))
    cpu, wall = cpu + c, wall + w
cache = runner.cache
print(json.dumps({"backtest_cpu": backtest_cpu, "backtest_wall": backtest_wall,
                  "first_cpu": first_cpu, "first_wall": first_wall,
                  "trial_cpu": cpu / count, "trial_wall": wall / count,
                  "pairs": len(runner.context.pairs),
                  "cache": cache.summary() if cache is not None else "none"}))
"""


def per_trial(store: Path, timerange: str, count: int, cache_mb: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(STRATEGY), str(store), timerange, str(count),
         str(cache_mb)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def optimize_run(store: Path, timerange: str, trials: int, workers: int) -> dict[str, float]:
    """Wall and CPU seconds (this command and its worker processes) of one `optimize`."""
    with tempfile.TemporaryDirectory() as folder:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "kinetic_rules", "optimize", str(STRATEGY), "--data",
             str(store), "--timerange", timerange, "--params", PARAMS, "--trials", str(trials),
             "--workers", str(workers), "--study", f"sqlite:///{folder}/study.sqlite",
             "--report", folder, "--quiet"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        return {"wall": wall, "cpu": cpu, "rate": trials / wall}


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
    parser.add_argument("--timerange", default="20240601-20240908")
    parser.add_argument("--trials", type=int, default=200, help="trials of the optimize run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=5, help="trials timed one by one")
    parser.add_argument("--loop", type=int, default=3, help="backtest processes in the loop")
    args = parser.parse_args()
    ensure_store(args.data)
    load = os.getloadavg()[0]
    one = per_trial(args.data, args.timerange, args.sample, DEFAULT_MB)
    bare = per_trial(args.data, args.timerange, args.sample, 0)
    print(f"Kinetic Empire, {one['pairs']:.0f} pairs, {args.timerange}, searching {PARAMS}")
    print(f"  (load average {load:.1f} on {os.cpu_count()} cores at the start)")
    rows = [
        ("one backtest", one["backtest_cpu"], one["backtest_wall"]),
        ("first trial (fills the cache)", one["first_cpu"], one["first_wall"]),
        ("each later trial", one["trial_cpu"], one["trial_wall"]),
        ("each trial, no cache", bare["trial_cpu"], bare["trial_wall"]),
    ]
    for label, cpu, wall in rows:
        print(f"  {label:<30} {cpu:6.2f} s CPU  {wall:6.2f} s wall")
    ratio = one["trial_cpu"] / one["backtest_cpu"]
    print(f"  trial / backtest {ratio:7.0%} of the CPU (target ≤ 25%)", end="")
    print(f"; without the cache {bare['trial_cpu'] / bare['backtest_cpu']:.0%}")
    print(f"  cache after {args.sample + 1} trials: {one['cache']}")
    loop = backtest_loop_rate(args.data, args.timerange, args.loop)
    run = optimize_run(args.data, args.timerange, args.trials, args.workers)
    print(
        f"\n  optimize, {args.trials} trials, {args.workers} workers: {run['wall']:.1f} s wall, "
        f"{run['cpu']:.1f} s CPU, {run['rate']:.2f} trials/s"
    )
    print(f"  loop of {args.loop} `backtest --set` processes: {loop:.3f} backtests/s")
    print(f"  speed-up {run['rate'] / loop:.1f}×")


if __name__ == "__main__":
    main()

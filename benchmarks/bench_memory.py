"""CPU, peak memory and report sizes of a backtest as pairs grow: the scaling table.

    python benchmarks/bench_memory.py [--store DIR] [--pairs 10 40 136] [--strategy FILE]

The shared 5m set holds 41 pairs; to reach a user's few hundred, the store built here
(once, under user_data/bench-memory) adds copies of those real candles under other
names (`SOL2/USDT`, `SOL3/USDT`, …), so 136 pairs × 8 months is about 9.8 M candles.
Each run is a fresh subprocess: its peak resident memory (getrusage maxrss) is its own.

Printed per pair count: candles, trades, CPU seconds of the whole process (imports,
backtest and report writing; user + system), peak MB, peak bytes per candle, the sizes of
results.json, report.html, trades.csv and trades.json; then the growth between the smallest
and the largest count in bytes per added candle — what a bounded working set keeps small
(target: Kinetic Empire under 1 GB peak at 136 pairs) — and the machine's load average,
since CPU time on a busy machine runs a little higher.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = ROOT / "strategies" / "kinetic_empire.yaml"
SHARED = ROOT.parent / "shared" / "data"
COPIES_PER_PAIR = 3  # 41 real pairs + 2 copies each = 123; a third copy of some reaches 136

CHILD = """
import json, resource, sys, time
from pathlib import Path
import pandas as pd
from kinetic_rules.backtest.metrics import compute_metrics
from kinetic_rules.backtest.report_files import write_reports
from kinetic_rules.backtest.runner import BacktestRequest, run_backtest
strategy, store, report = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
pairs = sys.argv[4].split(",")
request = BacktestRequest(strategy, store, pairs=pairs,
    start=pd.Timestamp("2024-01-01", tz="UTC"), end=pd.Timestamp("2024-09-08", tz="UTC"))
started = time.perf_counter()
result = run_backtest(request)
backtest_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
written = write_reports(result, compute_metrics(result), report)
candles = sum(len(result.candles[p]) for p in result.pairs)
print(json.dumps({
    "seconds": time.perf_counter() - started,
    "cpu": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
    "backtest_peak_mb": backtest_peak,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "trades": len(result.trades), "pairs": len(result.pairs), "candles": candles,
    "sizes": {path.name: path.stat().st_size for path in written.values()},
}))
"""


def build_store(store: Path, wanted: int) -> list[str]:
    """The 5m set, then copies of its pairs under new names until `wanted` pairs exist."""
    sys.path.insert(0, str(ROOT))
    from kinetic_rules.data.store import CandleStore

    candles = CandleStore(store)
    if not (store / "binance").is_dir():
        print(f"importing {SHARED} into {store} (once) …", flush=True)
        subprocess.run(
            [sys.executable, "-m", "kinetic_rules", "data", "import", "--quiet", "--data",
             str(store), str(SHARED / "binance-5m-2024"), str(SHARED / "binance-15m-2023-2026")],
            check=True,
        )  # fmt: skip
    # the pairs of the shared set itself (the store also holds the copies of earlier runs)
    files = (SHARED / "binance-5m-2024").glob("*-5m.feather")
    real = sorted(f.name.removesuffix("-5m.feather").replace("_", "/") for f in files)
    names = list(real)
    for copy in range(2, COPIES_PER_PAIR + 2):
        names += [f"{p.split('/')[0]}{copy}/USDT" for p in real]
    names = names[:wanted]
    started = time.perf_counter()
    for name in names[len(real) :]:
        source = name.split("/")[0].rstrip("0123456789") + "/USDT"
        if source not in real:  # a base that ends in digits (1000SATS): find it by prefix
            source = next(p for p in real if name.startswith(p.split("/")[0]))
        for timeframe in ("5m", "1h", "1d"):
            if candles.find("binance", name, timeframe) is None:
                frame = candles.read("binance", source, timeframe)
                candles.write("binance", name, timeframe, frame)
    if time.perf_counter() - started > 1:
        print(f"copied pairs in {time.perf_counter() - started:.0f} s\n")
    return names


def measure(strategy: Path, store: Path, pairs: list[str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as report:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(strategy), str(store), report, ",".join(pairs)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    figures: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def compile_once() -> None:
    """Byte-compile the package first, as installing it does: with PYTHONDONTWRITEBYTECODE
    set (as on CI machines) each run would otherwise compile every module from source, about
    0.2 s of CPU that no installed copy spends."""
    compileall.compile_dir(ROOT / "kinetic_rules", quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=ROOT / "user_data" / "bench-memory")
    parser.add_argument("--strategy", type=Path, default=STRATEGY)
    parser.add_argument("--pairs", type=int, nargs="+", default=[10, 40, 136], metavar="N")
    args = parser.parse_args()
    compile_once()
    names = build_store(args.store, max(args.pairs))
    runs = []
    for count in args.pairs:
        runs.append(measure(args.strategy, args.store, names[:count]))
    load = os.getloadavg()[0]
    print(f"{args.strategy.name}, 5m candles 2024-01-01 .. 2024-09-08 (fresh process each)")
    print(
        f"  {'pairs':>5} {'candles':>10} {'trades':>7} {'CPU s':>6} {'wall s':>7} "
        f"{'backtest MB':>12} {'peak MB':>8} {'B/candle':>9} {'results.json':>13} "
        f"{'report.html':>12} {'trades.csv':>11} {'trades.json':>12}"
    )
    for run in runs:
        sizes: dict[str, int] = run["sizes"]  # type: ignore[assignment]
        candles = int(run["candles"])  # type: ignore[call-overload]
        peak = float(run["peak_mb"])  # type: ignore[arg-type]
        print(
            f"  {run['pairs']:>5} {candles:>10,} {run['trades']:>7,} "
            f"{float(run['cpu']):>6.1f} "  # type: ignore[arg-type]
            f"{float(run['seconds']):>7.1f} {float(run['backtest_peak_mb']):>12.0f} "  # type: ignore[arg-type]
            f"{peak:>8.0f} {peak * 2**20 / candles:>9.0f} "
            f"{sizes.get('results.json', 0) / 1e6:>11.2f}MB "
            f"{sizes.get('report.html', 0) / 1e6:>10.2f}MB "
            f"{sizes.get('trades.csv', 0) / 1e6:>9.2f}MB "
            f"{sizes.get('trades.json', 0) / 1e6:>10.2f}MB"
        )
    small, large = runs[0], runs[-1]
    added = int(large["candles"]) - int(small["candles"])  # type: ignore[call-overload]
    if added > 0:
        grown = float(large["peak_mb"]) - float(small["peak_mb"])  # type: ignore[arg-type]
        print(f"\n  growth: {grown * 2**20 / added:.0f} bytes of peak per added candle")
    print(f"  peak at {large['pairs']} pairs: {float(large['peak_mb']):.0f} MB (target < 1024 MB)")  # type: ignore[arg-type]
    print(f"  load average: {load:.1f} before the runs, {os.getloadavg()[0]:.1f} after "
          f"({os.cpu_count()} cores)")  # fmt: skip


if __name__ == "__main__":
    main()

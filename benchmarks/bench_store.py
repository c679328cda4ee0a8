"""Benchmark: load 41 pairs x 5m/1h/1d from the candle store vs straight from feather.

    .venv/bin/python benchmarks/bench_store.py [--source DIR] [--repeat N]

Imports the freqtrade feather files of ../shared/data/binance-5m-2024 into a temporary
store (timed once), then loads every series both ways in the same run and prints the
ratio (target: store <= 1.5x feather). The store hands out canonical frames (UTC
index, quote volume column); the baseline is pyarrow's feather reader into pandas.
Not a test: it needs the real data, which tests never assume.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.feather as feather

from kinetic_rules.data.importers import identify, import_paths
from kinetic_rules.data.store import CandleStore

REPO = Path(__file__).resolve().parents[1]


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        runs.append(time.perf_counter() - started)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = (REPO / ".." / "shared" / "data" / "binance-5m-2024").resolve()
    parser.add_argument("--source", type=Path, default=default)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    files = sorted(args.source.glob("*.feather"))
    if not files:
        print(f"no feather files in {args.source}", file=sys.stderr)
        return 2
    series = [(f, *identify(f.name)) for f in files]
    with tempfile.TemporaryDirectory() as tmp:
        store = CandleStore(Path(tmp))
        started = time.perf_counter()
        import_paths([args.source], store)
        imported = time.perf_counter() - started
        rows = sum(s.count for s in store.available())

        def from_store() -> None:
            for _, pair, tf in series:
                store.read("binance", str(pair), str(tf))

        def from_feather() -> None:
            for path, _, _ in series:
                feather.read_table(path).to_pandas()

        from_store()  # warm the page cache for both before timing
        from_feather()
        store_runs, feather_runs = [], []
        for _ in range(args.repeat):  # interleaved, so drift affects both alike
            store_runs += timed(from_store, 1)
            feather_runs += timed(from_feather, 1)
    best_ratio = min(store_runs) / min(feather_runs)
    median_ratio = statistics.median(store_runs) / statistics.median(feather_runs)
    print(f"series: {len(series)} ({rows:,} candles) from {args.source}")
    print(f"import into the store: {imported:.2f} s")
    print(
        f"load from store:   best {min(store_runs) * 1000:7.1f} ms   "
        f"median {statistics.median(store_runs) * 1000:7.1f} ms"
    )
    print(
        f"load from feather: best {min(feather_runs) * 1000:7.1f} ms   "
        f"median {statistics.median(feather_runs) * 1000:7.1f} ms"
    )
    verdict = "ok" if best_ratio <= 1.5 else "ABOVE TARGET"
    print(
        f"ratio store/feather: best {best_ratio:.2f}x, median {median_ratio:.2f}x "
        f"(target <= 1.5x: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

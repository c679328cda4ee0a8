"""Every shipped strategy over its whole data set: CPU, wall time and peak memory.

    python benchmarks/bench_strategies.py [--data STORE] [--only NAME ...] [--repeat 1]
                                          [--freqtrade] [--model-off] [--no-scaling]

Without --data, both sets of ../shared/data are imported once into
user_data/bench-store (as benchmarks/bench_backtest.py does). Each run is the whole
`kinetic-rules backtest … --report DIR` command in a fresh process (start-up, loading,
indicators, portfolio and report writing included), so its CPU time and peak memory are
its own. CPU time (user + system) is the figure to compare: on a shared machine wall
time also counts the waiting for a core.

Printed per strategy: trades, candles read on its base timeframe, CPU seconds (and per
million candles), wall seconds, peak memory, against the target of 20 s of CPU, and its
CPU per million candles as a multiple of Kinetic Empire's on the 5m set in the same run
(the baseline, always run). Then the scaling table: Kinetic Empire on the first 10, the
first 40 and all of the pairs of the shared 5m set (`--no-scaling` skips it). Last,
Kinetic Empire on the 10-pair 15m set against freqtrade doing the same work. Target: 30×
faster. With --freqtrade, freqtrade itself runs that backtest in this run
(benchmarks/freqtrade_baseline/: its own virtual environment with freqtrade 2026.9, the
same candles, Kinetic Empire written as a freqtrade strategy; installed and converted once,
under user_data/) and its CPU time, trade count and the trades both runs share are
printed. Without it, or when freqtrade cannot be installed, the figure measured earlier
on this machine kind with freqtrade 2026.9 is used (66 s, --freqtrade-seconds).

--model-off also runs each strategy with a model with `--set use_model=false` and prints
what the model costs: the CPU of the run with it minus the run without. Trained models
are cached (user_data/models, or $KINETIC_RULES_MODELS), so a first run trains them and
a later one does not; with --repeat 2 the least CPU is the cached run. Target: a cached
model adds at most 5 s of CPU.
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
STRATEGIES = ROOT / "strategies"
CPU_TARGET = 20.0  # seconds of CPU for any shipped strategy's full-data backtest
FREQTRADE_SECONDS = 66.0  # freqtrade 2026.9, Kinetic Empire on the 10-pair 15m set
FREQTRADE_TARGET = 30.0  # times faster
MODEL_TARGET = 5.0  # seconds of CPU a cached model may add to its strategy's backtest


@dataclass(frozen=True)
class Case:
    name: str
    strategy: str
    timerange: str | None  # None: every stored candle
    what: str
    timeframe: str | None = None  # run a copy of the strategy on this timeframe
    sets: tuple[str, ...] = ()  # NAME=VALUE params given with --set
    pairs: tuple[str, ...] = ()  # given with --pairs; () trades the strategy's own universe


FIVE = "41 pairs, 5m, 2024-01..09"  # the 5m set, every candle
FIFTEEN = "10 pairs, 15m, 2023-01..2026-04"  # the 15m set, every candle
BASELINE = "kinetic_empire"  # every ratio per million candles is against this case
SCALING_PAIRS = (10, 40)  # the first 10, the first 40; then all the pairs of the 5m set
CASES = [
    Case(BASELINE, "kinetic_empire.yaml", "20240101-20240908", FIVE),
    Case("kinetic_empire_15m", "kinetic_empire.yaml", None, FIFTEEN, "15m"),
    Case("kinetic_v3", "kinetic_v3.yaml", None, FIFTEEN),
    Case("confluence", "confluence.yaml", None, FIFTEEN),
    Case("adaptive_mtf", "adaptive_mtf.yaml", "20240101-20240908", FIVE),
]


def strategy_file(case: Case, folder: Path) -> Path:
    source = STRATEGIES / case.strategy
    if case.timeframe is None:
        return source
    lines = source.read_text().splitlines(keepends=True)
    swapped = [
        f"timeframe: {case.timeframe}\n" if line.startswith("timeframe:") else line
        for line in lines
    ]
    target = folder / f"{case.name}.yaml"
    target.write_text("".join(swapped))
    return target


def measure(case: Case, store: Path) -> dict[str, Any]:
    """One backtest command in a fresh process: its own rusage, read by wait4."""
    with tempfile.TemporaryDirectory(prefix="bench-strategies-") as scratch:
        folder = Path(scratch)
        command = [sys.executable, "-m", "kinetic_rules", "backtest",
                   str(strategy_file(case, folder)), "--data", str(store),
                   "--report", str(folder / "report"), "--quiet"]  # fmt: skip
        if case.timerange:
            command += ["--timerange", case.timerange]
        if case.pairs:
            command += ["--pairs", *case.pairs]
        for setting in case.sets:
            command += ["--set", setting]
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert child.stderr is not None
        errors = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if child.returncode != 0:
            raise SystemExit(f"{case.name}: exit {child.returncode}\n{errors.decode()}")
        results = json.loads((folder / "report" / "results.json").read_text())
        entries = trade_entries(folder / "report" / "trades.json")
    return {
        "cpu": usage.ru_utime + usage.ru_stime,
        "wall": wall,
        "peak_mb": usage.ru_maxrss / 1024,
        "trades": results["trades"]["count"],
        "pairs": results["pairs"],
        "candles": candles_read(store, results["pairs"], results["timeframe"]),
        "entries": entries,
    }


def trade_entries(trades: Path) -> list[tuple[str, str]]:
    """(pair, entry time) of every trade of a report: what the freqtrade run is matched on."""
    return [(t["pair"], t["entry_time"]) for t in json.loads(trades.read_text())]


def has_model(case: Case) -> bool:
    return any(line.startswith("models:") for line in (STRATEGIES / case.strategy).open())


def model_off(case: Case) -> Case:
    return replace(case, name=f"{case.name} -model", sets=(*case.sets, "use_model=false"))


def candles_read(store: Path, pairs: list[str], timeframe: str) -> int:
    """Stored candles of the base timeframe of the pairs traded (warm-up included)."""
    from kinetic_rules.data.store import CandleStore

    wanted = set(pairs)
    return sum(
        s.count
        for s in CandleStore(store).available()
        if s.pair in wanted and s.timeframe == timeframe
    )


def ensure_store(store: Path) -> None:
    if (store / "index.json").exists():
        return
    print(f"importing {SHARED} into {store} (once) …", flush=True)
    subprocess.run(
        [sys.executable, "-m", "kinetic_rules", "data", "import", "--quiet", "--data", str(store),
         str(SHARED / "binance-5m-2024"), str(SHARED / "binance-15m-2023-2026")],
        check=True,
    )  # fmt: skip


def compile_once() -> None:
    """Byte-compile the package first, as installing it does: with PYTHONDONTWRITEBYTECODE
    set (as on CI machines) each run would otherwise compile every module from source, about
    0.2 s of CPU that no installed copy spends."""
    compileall.compile_dir(ROOT / "kinetic_rules", quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "user_data" / "bench-store")
    parser.add_argument("--only", nargs="+", choices=[c.name for c in CASES])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the least CPU counts")
    parser.add_argument(
        "--freqtrade",
        action="store_true",
        help="run freqtrade on Kinetic Empire's 15m case in this run",
    )
    parser.add_argument(
        "--freqtrade-seconds",
        type=float,
        default=FREQTRADE_SECONDS,
        help="freqtrade's CPU seconds when it is not run",
    )
    parser.add_argument(
        "--model-off", action="store_true", help="also run strategies with a model without it"
    )
    parser.add_argument(
        "--no-scaling", action="store_true", help="skip the scaling table over 10, 40, all pairs"
    )
    args = parser.parse_args()
    compile_once()
    ensure_store(args.data)
    wanted = set(args.only or [c.name for c in CASES]) | {BASELINE}
    if args.freqtrade:  # the case freqtrade is compared with
        wanted.add("kinetic_empire_15m")
    cases = [c for c in CASES if c.name in wanted]
    if args.model_off:
        cases = [v for c in cases for v in ([c, model_off(c)] if has_model(c) else [c])]
    print(f"{'strategy':<20} {'data':<32} {'trades':>7} {'M candles':>9} {'CPU s':>7} "
          f"{'s/M':>6} {'× KE':>5} {'wall s':>7} {'peak MB':>8}  target")  # fmt: skip
    measured: dict[str, dict[str, Any]] = {}
    for case in cases:  # the baseline comes first
        best = least_cpu(case, args.data, args.repeat)
        measured[case.name] = best
        verdict = "ok" if best["cpu"] < CPU_TARGET else f"MISSED (< {CPU_TARGET:.0f} s CPU)"
        times = per_million(best) / per_million(measured[BASELINE])
        print(f"{case.name:<20} {case.what:<32} {best['trades']:>7.0f} "
              f"{best['candles'] / 1e6:>9.2f} {best['cpu']:>7.2f} {per_million(best):>6.2f} "
              f"{times:>5.1f} {best['wall']:>7.2f} {best['peak_mb']:>8.0f}  {verdict}",
              flush=True)  # fmt: skip
    for case in cases:
        without = measured.get(model_off(case).name)
        if without is not None and case.name in measured:
            added = measured[case.name]["cpu"] - without["cpu"]
            verdict = "ok" if added <= MODEL_TARGET else f"MISSED (≤ {MODEL_TARGET:.0f} s)"
            print(f"\n{case.name}: its model adds {added:.2f} s of CPU "
                  f"({measured[case.name]['cpu']:.2f} s with it, {without['cpu']:.2f} s "
                  f"without; cached models: see --repeat) {verdict}")  # fmt: skip
    if not args.no_scaling:
        scaling(measured[BASELINE], args.data, args.repeat)
    if "kinetic_empire_15m" in measured:
        against_freqtrade(measured["kinetic_empire_15m"], args.freqtrade, args.freqtrade_seconds)


def least_cpu(case: Case, store: Path, repeat: int) -> dict[str, Any]:
    return min((measure(case, store) for _ in range(repeat)), key=lambda r: r["cpu"])


def per_million(run: dict[str, Any]) -> float:
    """CPU seconds per million candles read."""
    return float(run["cpu"]) / (run["candles"] / 1e6)


def scaling(every_pair: dict[str, Any], store: Path, repeat: int) -> None:
    """Kinetic Empire on the first 10, the first 40 and all of the 5m set's pairs: what a
    pair more costs, in CPU and in memory (peak memory should stay nearly flat)."""
    baseline = next(c for c in CASES if c.name == BASELINE)
    pairs = list(every_pair["pairs"])  # its universe: the 5m set less its blacklist
    print(f"\nKinetic Empire as pairs grow ({baseline.what.split(', ', 1)[1]}):")
    print(f"{'pairs':>5} {'M candles':>9} {'CPU s':>7} {'s/M':>6} {'wall s':>7} {'peak MB':>8}")
    subsets = [tuple(pairs[:count]) for count in SCALING_PAIRS if count < len(pairs)]
    for subset in [*subsets, ()]:  # () is the run over every pair, measured already
        run = every_pair
        if subset:
            case = replace(baseline, name=f"{BASELINE} {len(subset)}", pairs=subset)
            run = least_cpu(case, store, repeat)
        print(f"{len(run['pairs']):>5} {run['candles'] / 1e6:>9.2f} {run['cpu']:>7.2f} "
              f"{per_million(run):>6.2f} {run['wall']:>7.2f} {run['peak_mb']:>8.0f}",
              flush=True)  # fmt: skip


def against_freqtrade(ours: dict[str, Any], run_it: bool, recorded: float) -> None:
    """Kinetic Empire's 15m run against freqtrade's: run here (--freqtrade), else the
    figure recorded earlier."""
    cpu = ours["cpu"]
    seconds, source = recorded, "measured earlier on this machine kind, not in this run"
    if run_it:
        sys.path.insert(0, str(ROOT / "benchmarks" / "freqtrade_baseline"))
        from baseline import FreqtradeUnavailable, run
        from convert import matching_trades

        try:
            theirs = run(SHARED / "binance-15m-2023-2026", "15m")
        except FreqtradeUnavailable as error:
            print(f"\nfreqtrade could not run here, the recorded figure is used: {error}")
        else:
            seconds, source = theirs.cpu, f"freqtrade {theirs.version}, measured in this run"
            shared, only_ours, only_theirs = matching_trades(
                ours["entries"], theirs.trades, since=theirs.first_candle
            )
            print(
                f"\nfreqtrade {theirs.version}, same strategy and candles: "
                f"{len(theirs.trades)} trades, {theirs.cpu:.2f} s CPU, {theirs.wall:.2f} s "
                f"wall, {theirs.peak_mb:.0f} MB peak (kinetic-rules: {ours['trades']:.0f} "
                f"trades, {cpu:.2f} s CPU, {ours['wall']:.2f} s wall, "
                f"{ours['peak_mb']:.0f} MB)"
            )
            print(f"trades entered on the same pair at the same candle, from "
                  f"{theirs.first_candle[:16]} (freqtrade's first after its warm-up): "
                  f"{shared} shared, {only_ours} only ours, "
                  f"{only_theirs} only freqtrade's")  # fmt: skip
    ratio = seconds / cpu
    verdict = "ok" if ratio >= FREQTRADE_TARGET else "MISSED"
    print(f"\nKinetic Empire, 10 pairs of 15m: {cpu:.2f} s CPU against freqtrade's "
          f"{seconds:.2f} s ({source}): {ratio:.1f}× faster (target ≥ "
          f"{FREQTRADE_TARGET:.0f}×) {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()

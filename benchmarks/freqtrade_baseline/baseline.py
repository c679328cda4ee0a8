"""freqtrade running Kinetic Empire on the same candles: the speed baseline.

    python benchmarks/freqtrade_baseline/baseline.py [--source DIR] [--timeframe 15m]
    python benchmarks/freqtrade_baseline/baseline.py --self-test

What it does, each step cached under user_data/ so that a rerun only runs the backtest:
1. creates its own virtual environment, user_data/freqtrade-venv (never the project's),
   and installs freqtrade==2026.9 from PyPI, binary wheels preferred (TA-Lib has them);
2. writes the Binance CSV candles of --source (default ../shared/data/
   binance-15m-2023-2026) as freqtrade feather files, under
   user_data/freqtrade-data/<hash of the CSV files>/;
3. in a scratch user_data folder, writes a config from strategies/kinetic_empire.yaml
   (params, fee, starting balance, trade limits, Kelly sizing, order timeouts, the
   pairs the blacklist allows) and the strategy kinetic_empire_ft.py, and runs
   `freqtrade backtesting --cache none` through launch.py (offline exchange markets);
4. reports freqtrade's CPU time (user + system of the whole child process tree, read by
   wait4), wall time, peak memory and its trades.

freqtrade trades from its 400th candle on (its start-up window, which warms the daily
EMA); the trade comparison counts kinetic-rules' trades from that candle on too.
When freqtrade cannot be installed, `FreqtradeUnavailable` says why, and
bench_strategies.py falls back to the figure recorded earlier.
`--self-test` checks the pure helpers on the test fixtures, offline, without freqtrade.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from convert import convert, data_hash, pairs_of  # noqa: E402

FREQTRADE_VERSION = "2026.9"
VENV = ROOT / "user_data" / "freqtrade-venv"
CONVERTED = ROOT / "user_data" / "freqtrade-data"
SOURCE = ROOT.parent / "shared" / "data" / "binance-15m-2023-2026"
STRATEGY_YAML = ROOT / "strategies" / "kinetic_empire.yaml"
STRATEGY_ERROR = re.compile(r"Strategy caused the following exception|Unexpected error")
STARTUP_CANDLES = 400  # freqtrade's warm-up window; the daily EMA needs it long
TIMEFRAME_SECONDS = {"5m": 300, "15m": 900, "1h": 3600}

# The rules kinetic_empire_ft.py implements. A YAML that says anything else is refused
# rather than compared against a strategy that no longer matches it.
IMPLEMENTED = {
    "entry": {
        "macro_trend": "close@1h > ema(close, 50)@1h",
        "micro_trend": "close > ema50",
        "momentum": "roc(close, 12) > $roc_threshold",
        "pullback": "$rsi_min < rsi(close, 14) < $rsi_max",
        "volume": "volume > vol_mean_24h",
    },
    "priority": "roc(close, 12)",
    "exit": {"trend_break": "close < ema50 and volume > vol_mean_24h"},
    "initial": "entry_price - $stop_atr * atr(14)",
    "trailing": ("profit > $trail_activation", "close - $trail_atr * atr(14)"),
    "indicators": {
        "ema50": "ema(close, 50)",
        "vol_mean_24h": "mean(volume, 24h)",
        "quote_volume_24h": "sum(quote_volume, 24h)",
        "volatility": "std(pct_change(close), 10)@1d",
    },
    "conditions": {
        "btc_crash": "(low / highest(high, 1h) - 1)[BTC/USDT] < -$crash_drop",
        "btc_stable": "all(close > ema(close, 50), 4)@1h[BTC/USDT]",
    },
    "scanner": [
        ("liquid", 70, "quote_volume_24h", None),
        ("tight_spread", None, None, "spread <= 0.5%"),  # live only: skipped in backtests
        ("not_dust", None, None, "close >= 0.001"),
        ("lively", None, None, "2% <= volatility <= 50%"),
        ("rising", None, None, "close > close[12]"),
        ("most_volatile", 20, "volatility", None),
    ],
    "regime": {"bull": "close@1d[BTC/USDT] > ema(close, 50)@1d[BTC/USDT]", "bear": "otherwise"},
    "protection": ("latch(set=btc_crash, reset=btc_stable)", True),
}


class FreqtradeUnavailable(RuntimeError):
    """freqtrade could not be installed or run here; the message says why."""


@dataclass(frozen=True)
class Baseline:
    cpu: float  # user + system seconds of freqtrade's process tree
    wall: float
    peak_mb: float
    trades: list[tuple[str, str]]  # (pair, entry time ISO 8601)
    first_candle: str  # the first candle freqtrade may trade, ISO 8601
    version: str


def fraction(value: Any) -> float:
    """A param as a number: "2.5%" is 0.025."""
    text = str(value).strip()
    return float(text[:-1]) / 100 if text.endswith("%") else float(text)


def knobs(spec: Any, timeframe: str) -> dict[str, Any]:
    """The YAML's settings the freqtrade strategy reads, after checking that its rules are
    the ones the strategy implements."""
    found = {
        "entry": dict(spec.entry.long),
        "priority": spec.entry.priority,
        "exit": dict(spec.exit.long),
        "initial": spec.stoploss.initial,
        "trailing": next((r.activate, r.level) for r in spec.stoploss.trailing.values()),
        "indicators": dict(spec.indicators),
        "conditions": dict(spec.conditions),
        "scanner": [(s.name, s.top, s.by, s.filter) for s in spec.scanner.steps],
        "regime": dict(spec.regime.classes),
        "protection": next((p.active, p.block_entries) for p in spec.protections.values()),
    }
    for key, want in IMPLEMENTED.items():
        if found[key] != want:
            raise SystemExit(
                f"{STRATEGY_YAML.name}: its {key} is {found[key]!r}, but the freqtrade "
                f"baseline implements {want!r}: update kinetic_empire_ft.py first"
            )
    candle = TIMEFRAME_SECONDS[timeframe]
    params = {name: fraction(p.value) for name, p in spec.params.items()}
    kelly = spec.sizing.kelly
    return {
        "timeframe": timeframe,
        "candle_seconds": candle,
        "hour_candles": 3600 // candle,
        "day_candles": 86400 // candle,
        **params,
        "min_close": 0.001,
        "volatility_min": 0.02,
        "volatility_max": 0.5,
        "scanner_refresh": spec.scanner.refresh,
        "slots_bull": spec.regime.max_open_trades["bull"],
        "slots_bear": spec.regime.max_open_trades["bear"],
        "starting_balance": spec.backtest.starting_balance,
        "kelly": {
            "lookback": kelly.lookback,
            "min_trades": kelly.min_trades,
            "reward_risk": kelly.reward_risk,
            "default": kelly.default,
            "clamp": list(kelly.clamp),
        },
        # kinetic-rules waits whole candles (at least one); freqtrade cancels an order at
        # the first candle whose open is at least the timeout after the order's.
        "entry_timeout_minutes": max(1, spec.orders.timeouts.entry // candle) * candle // 60,
        "exit_timeout_minutes": max(1, spec.orders.timeouts.exit // candle) * candle // 60,
    }


def allowed_pairs(pairs: list[str], blacklist: list[str]) -> list[str]:
    return [p for p in pairs if not any(re.fullmatch(pattern, p) for pattern in blacklist)]


def ensure_venv(version: str = FREQTRADE_VERSION) -> Path:
    """freqtrade's own virtual environment, installed once per version."""
    python = VENV / "bin" / "python"
    marker = VENV / "kinetic-rules-installed"
    if marker.exists() and marker.read_text().strip() == version and python.exists():
        return python
    print(f"installing freqtrade=={version} into {VENV} (once) …", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--prefer-binary",
             f"freqtrade=={version}"],
            check=True,
        )  # fmt: skip
    except (subprocess.CalledProcessError, OSError) as error:
        raise FreqtradeUnavailable(
            f"could not install freqtrade=={version} into {VENV}: {error}"
        ) from error
    marker.write_text(version + "\n")
    return python


def ensure_data(source: Path) -> Path:
    """The source's candles as freqtrade feather files, converted once per content."""
    folder = CONVERTED / data_hash(source)
    done = folder / "complete"
    if not done.exists():
        print(f"converting {source} for freqtrade into {folder} (once) …", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        convert(source, folder / "binance")
        done.write_text("ok\n")
    return folder


def timerange(data: Path, timeframe: str) -> tuple[str, str]:
    """freqtrade's --timerange over the whole data set, and the first candle it trades
    (after STARTUP_CANDLES candles of warm-up)."""
    import pandas as pd

    frame = pd.read_feather(data / "binance" / f"BTC_USDT-{timeframe}.feather")
    first, last = frame["date"].iloc[0], frame["date"].iloc[-1]
    step = pd.Timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    trading = first + STARTUP_CANDLES * step
    span = f"{trading.value // 10**9}-{(last + step).value // 10**9}"  # epoch seconds
    return span, trading.isoformat()


def write_config(folder: Path, data: Path, source: Path, timeframe: str) -> Path:
    from kinetic_rules.spec.loader import load_file

    spec = load_file(STRATEGY_YAML).strategy
    settings = knobs(spec, timeframe)
    pairs = allowed_pairs(pairs_of(source), spec.scanner.blacklist)
    config = {
        "max_open_trades": spec.portfolio.max_open_trades,
        "stake_currency": spec.market.stake_currency,
        "stake_amount": "unlimited",
        "tradable_balance_ratio": 1.0,
        "dry_run": True,
        "dry_run_wallet": spec.backtest.starting_balance,
        "fee": spec.backtest.fee,
        "timeframe": timeframe,
        "trading_mode": "spot",
        "startup_candle_count": STARTUP_CANDLES,
        "unfilledtimeout": {
            "entry": settings["entry_timeout_minutes"],
            "exit": 10**7,  # the strategy's check_exit_timeout decides
            "unit": "minutes",
            "exit_timeout_count": 0,
        },
        "entry_pricing": {"price_side": "same", "use_order_book": False, "order_book_top": 1,
                          "price_last_balance": 0.0,
                          "check_depth_of_market": {"enabled": False, "bids_to_ask_delta": 1}},
        "exit_pricing": {"price_side": "same", "use_order_book": False, "order_book_top": 1},
        "exchange": {"name": "binance", "key": "", "secret": "", "pair_whitelist": pairs,
                     "pair_blacklist": []},
        "pairlists": [{"method": "StaticPairList"}],
        "dataformat_ohlcv": "feather",
        "datadir": str(data / "binance"),
        "user_data_dir": str(folder),
        "strategy": "KineticEmpire",
        "strategy_path": str(folder / "strategies"),
        "internals": {"process_throttle_secs": 5},
        "bot_name": "kinetic-empire-baseline",
        "kinetic_empire": settings,
    }  # fmt: skip
    (folder / "strategies").mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "kinetic_empire_ft.py", folder / "strategies" / "kinetic_empire_ft.py")
    path = folder / "config.json"
    path.write_text(json.dumps(config, indent=1))
    return path


def read_trades(results: Path) -> list[tuple[str, str]]:
    """(pair, entry time) of every trade in freqtrade's exported backtest result."""
    archives = sorted(results.glob("*.zip"))
    if not archives:
        raise FreqtradeUnavailable(f"freqtrade wrote no result into {results}")
    with zipfile.ZipFile(archives[-1]) as archive:
        content = json.loads(archive.read(archives[-1].stem + ".json"))
    trades = content["strategy"]["KineticEmpire"]["trades"]
    return [(t["pair"], t["open_date"]) for t in trades]


def run(source: Path = SOURCE, timeframe: str = "15m", keep: Path | None = None) -> Baseline:
    """Install (once), convert (once), then time one freqtrade backtest. With `keep`, its
    config, log and results are written there and kept."""
    python = ensure_venv()
    data = ensure_data(source)
    span, first_candle = timerange(data, timeframe)
    with tempfile.TemporaryDirectory(prefix="freqtrade-baseline-") as scratch:
        folder = Path(scratch) if keep is None else keep
        shutil.rmtree(folder / "backtest_results", ignore_errors=True)
        (folder / "freqtrade.log").unlink(missing_ok=True)
        config = write_config(folder, data, source, timeframe)
        results = folder / "backtest_results"
        results.mkdir(parents=True)
        command = [str(python), str(HERE / "launch.py"), str(config), "backtesting",
                   "--config", str(config), "--datadir", str(data / "binance"),
                   "--timerange", span, "--cache", "none",
                   "--export", "trades", "--backtest-directory", str(results),
                   "--logfile", str(folder / "freqtrade.log")]  # fmt: skip
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert child.stderr is not None
        errors = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        log = folder / "freqtrade.log"
        text = log.read_text() if log.exists() else ""
        if os.waitstatus_to_exitcode(status) != 0 or not any(results.glob("*.zip")):
            raise FreqtradeUnavailable(
                f"freqtrade backtesting failed:\n{errors.decode()[-3000:]}\n{text[-3000:]}"
            )
        # freqtrade logs an exception in a strategy callback and carries on with a default:
        # that run would not be the same work.
        swallowed = [line for line in text.splitlines() if STRATEGY_ERROR.search(line)]
        if swallowed:
            raise FreqtradeUnavailable(
                "the freqtrade strategy raised during the backtest:\n" + "\n".join(swallowed[:5])
            )
        trades = read_trades(results)
    return Baseline(
        cpu=usage.ru_utime + usage.ru_stime,
        wall=wall,
        peak_mb=usage.ru_maxrss / 1024,
        trades=trades,
        first_candle=first_candle,
        version=FREQTRADE_VERSION,
    )


def self_test() -> None:
    """The pure helpers on the shipped test fixtures (no network, no freqtrade)."""
    import pandas as pd
    from convert import matching_trades, read_klines, source_files

    fixtures = ROOT / "tests" / "fixtures" / "binance-15m-csv"
    found = source_files(fixtures)
    assert [(stem, tf) for _, stem, tf in found][:3] == [
        ("BTC_USDT", "15m"), ("BTC_USDT", "1d"), ("BTC_USDT", "1h")
    ], found  # fmt: skip
    assert pairs_of(fixtures) == ["BTC/USDT", "ETH/USDT"]
    with tempfile.TemporaryDirectory() as scratch:
        written = convert(fixtures, Path(scratch))
        frame = pd.read_feather(written[0])
        raw = read_klines(found[0][0])
        assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume"]
        assert str(frame["date"].dt.tz) == "UTC" and frame["date"].is_monotonic_increasing
        assert frame.equals(raw)
    assert data_hash(fixtures) == data_hash(fixtures) and len(data_hash(fixtures)) == 16
    assert allowed_pairs(["BNB/USDT", "BTC/USDT", "EURI/USDT"], ["BNB/.*", "EUR.*/.*"]) == [
        "BTC/USDT"
    ]
    assert fraction("2.5%") == 0.025 and fraction(45) == 45.0
    same = matching_trades(
        [("BTC/USDT", "2024-01-01T00:15:00Z"), ("ETH/USDT", "2024-01-01T00:30:00Z")],
        [("BTC/USDT", "2024-01-01 00:15:00+00:00"), ("ETH/USDT", "2024-01-01 00:45:00+00:00")],
    )
    assert same == (1, 1, 1), same
    later = matching_trades(
        [("BTC/USDT", "2024-01-01T00:15:00Z"), ("ETH/USDT", "2024-01-02T00:00:00Z")],
        [("ETH/USDT", "2024-01-02 00:00:00+00:00")],
        since="2024-01-01T12:00:00+00:00",
    )
    assert later == (1, 0, 0), later
    from kinetic_rules.spec.loader import load_file

    settings = knobs(load_file(STRATEGY_YAML).strategy, "15m")
    assert settings["entry_timeout_minutes"] == 15 and settings["exit_timeout_minutes"] == 30
    assert settings["trail_activation"] == 0.025 and settings["day_candles"] == 96
    print("self-test passed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--timeframe", default="15m", choices=sorted(TIMEFRAME_SECONDS))
    parser.add_argument("--keep", type=Path, help="write freqtrade's config, log, results here")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        self_test()
        return
    try:
        result = run(args.source, args.timeframe, args.keep)
    except FreqtradeUnavailable as error:
        raise SystemExit(f"freqtrade baseline unavailable: {error}") from error
    print(f"freqtrade {result.version}: {len(result.trades)} trades from "
          f"{result.first_candle}, {result.cpu:.2f} s CPU, {result.wall:.2f} s wall, "
          f"{result.peak_mb:.0f} MB peak")  # fmt: skip


if __name__ == "__main__":
    main()

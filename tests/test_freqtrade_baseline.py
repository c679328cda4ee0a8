"""The freqtrade baseline's pure helpers (benchmarks/freqtrade_baseline): the candles it
hands freqtrade are the exchange's, unchanged, and the trade comparison counts what it
says. freqtrade itself is never installed or run here."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.freqtrade_baseline import baseline
from benchmarks.freqtrade_baseline.convert import (
    convert,
    data_hash,
    matching_trades,
    pairs_of,
    source_files,
)
from kinetic_rules.spec.loader import load_file

FIXTURES = Path(__file__).parent / "fixtures" / "binance-15m-csv"


def test_kline_files_become_freqtrade_feather_files(tmp_path: Path) -> None:
    written = convert(FIXTURES, tmp_path / "binance")
    assert sorted(p.name for p in written) == [
        f"{pair}-{tf}.feather" for pair in ("BTC_USDT", "ETH_USDT") for tf in ("15m", "1d", "1h")
    ]
    frame = pd.read_feather(tmp_path / "binance" / "BTC_USDT-15m.feather")
    with gzip.open(FIXTURES / "BTCUSDT-15m.csv.gz", "rt") as file:
        first = file.readline().split(",")
    assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert frame["date"].iloc[0] == pd.Timestamp(int(first[0]), unit="ms", tz="UTC")
    assert frame.iloc[0, 1:].tolist() == [float(x) for x in first[1:6]]
    assert frame["date"].is_monotonic_increasing and frame["date"].is_unique
    assert pairs_of(FIXTURES) == ["BTC/USDT", "ETH/USDT"]


def test_other_files_are_ignored_and_a_changed_file_changes_the_hash(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(FIXTURES, source)
    (source / "README.md").write_text("not candles")
    before = data_hash(source)
    assert [p.name for p, _, _ in source_files(source)] == sorted(
        p.name for p in FIXTURES.glob("*.csv.gz")
    )
    target = source / "ETHUSDT-1d.csv.gz"
    target.write_bytes(target.read_bytes() + b"\n")
    assert data_hash(source) != before


def test_trades_match_on_pair_and_entry_instant_from_the_window_start() -> None:
    ours = [("BTC/USDT", "2024-01-01T00:15:00Z"), ("ETH/USDT", "2024-01-02T00:00:00Z")]
    theirs = [("BTC/USDT", "2024-01-01 00:15:00+00:00"), ("ETH/USDT", "2024-01-02 01:00:00+01:00")]
    assert matching_trades(ours, theirs) == (2, 0, 0)
    assert matching_trades(ours, theirs[:1], since="2024-01-01T12:00:00Z") == (0, 1, 0)


@given(
    st.sets(st.tuples(st.sampled_from(["A/USDT", "B/USDT"]), st.integers(0, 50))),
    st.sets(st.tuples(st.sampled_from(["A/USDT", "B/USDT"]), st.integers(0, 50))),
)
def test_every_trade_is_counted_once(
    ours: set[tuple[str, int]], theirs: set[tuple[str, int]]
) -> None:
    def texts(trades: set[tuple[str, int]]) -> list[tuple[str, str]]:
        start = pd.Timestamp("2024-01-01", tz="UTC")
        return [(p, (start + pd.Timedelta(minutes=15 * k)).isoformat()) for p, k in trades]

    shared, only_ours, only_theirs = matching_trades(texts(ours), texts(theirs))
    assert shared == len(ours & theirs)
    assert (shared + only_ours, shared + only_theirs) == (len(ours), len(theirs))


def test_the_freqtrade_strategy_implements_the_shipped_kinetic_empire() -> None:
    """The baseline refuses a YAML whose rules it does not implement: a change to
    strategies/kinetic_empire.yaml must update kinetic_empire_ft.py too."""
    spec = load_file(baseline.STRATEGY_YAML).strategy
    knobs = baseline.knobs(spec, "15m")
    assert (knobs["entry_timeout_minutes"], knobs["exit_timeout_minutes"]) == (15, 30)
    assert (knobs["day_candles"], knobs["hour_candles"]) == (96, 4)
    assert knobs["trail_activation"] == 0.025 and knobs["crash_drop"] == 0.05
    assert baseline.allowed_pairs(["BNB/USDT", "BTC/USDT"], spec.scanner.blacklist) == ["BTC/USDT"]

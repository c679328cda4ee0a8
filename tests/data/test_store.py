from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.data import store as store_module
from kinetic_rules.data.candles import mark_quote_volume
from kinetic_rules.data.store import DATA_ENV, CandleStore, resolve_data_dir
from kinetic_rules.errors import ConfigError, DataError
from tests.data.helpers import assert_same_candles, random_candles, snapshot


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 200),
    gaps=st.booleans(),
    timeframe=st.sampled_from(["1m", "15m", "4h", "1d", "1w"]),
    estimated=st.booleans(),
)
def test_write_read_round_trip(
    seed: int, n: int, gaps: bool, timeframe: str, estimated: bool
) -> None:
    frame = mark_quote_volume(random_candles(seed, n, timeframe, gaps=gaps), estimated=estimated)
    with tempfile.TemporaryDirectory() as tmp:
        store = CandleStore(tmp)
        result = store.write("binance", "BTC/USDT", timeframe, frame)
        back = store.read("binance", "BTC/USDT", timeframe)
        assert_same_candles(back, frame)
        assert back.index.name == "date" and str(back.index.dtype) == "datetime64[ns, UTC]"
        assert list(back.dtypes) == [np.float64] * 6
        assert back.attrs["quote_volume_estimated"] is estimated
        assert result.series.count == n and result.added == n


def test_merge_new_candles_win_and_are_counted(store: CandleStore) -> None:
    frame = random_candles(1, 100, "1h")
    store.write("binance", "ETH/USDT", "1h", frame.iloc[:60])
    revised = frame.iloc[50:].copy()
    revised.iloc[0, revised.columns.get_loc("close")] *= 1.01  # candle 50 changed
    revised.iloc[0, revised.columns.get_loc("high")] *= 1.02
    result = store.write("binance", "ETH/USDT", "1h", revised)
    assert (result.added, result.replaced, result.series.count) == (40, 1, 100)
    stored = store.read("binance", "ETH/USDT", "1h")
    assert stored["close"].iloc[50] == revised["close"].iloc[0]
    again = store.write("binance", "ETH/USDT", "1h", revised)
    assert not again.written and again.added == 0


def test_an_estimate_never_replaces_a_measured_quote_volume(store: CandleStore) -> None:
    measured = random_candles(2, 48, "1h")
    store.write("binance", "BTC/USDT", "1h", measured)
    estimate = mark_quote_volume(measured.copy(), estimated=True)
    estimate["quote_volume"] = estimate["volume"] * estimate["close"]
    later = random_candles(3, 24, "1h", start="2024-01-03")
    later = mark_quote_volume(later.assign(quote_volume=later.volume * later.close), estimated=True)
    store.write("binance", "BTC/USDT", "1h", pd.concat([estimate, later]))
    stored = store.read("binance", "BTC/USDT", "1h")
    np.testing.assert_array_equal(stored["quote_volume"].iloc[:48], measured["quote_volume"])
    series = store.find("binance", "BTC/USDT", "1h")
    assert series is not None and series.quote_volume_estimated  # the later 24 are estimates


def test_read_a_time_range(store: CandleStore) -> None:
    store.write("binance", "BTC/USDT", "5m", random_candles(4, 288, "5m"))
    part = store.read("binance", "BTC/USDT", "5m", "2024-01-01 01:00", "2024-01-01 02:00")
    assert len(part) == 12
    assert part.index[0] == pd.Timestamp("2024-01-01 01:00", tz="UTC")
    assert part.index[-1] == pd.Timestamp("2024-01-01 01:55", tz="UTC")
    assert len(store.read("binance", "BTC/USDT", "5m", start="2024-01-01 23:00")) == 12


def test_reading_what_is_absent_says_what_is_there(store: CandleStore) -> None:
    with pytest.raises(DataError, match=r"no 1h candles for BTC/USDT on binance .* download"):
        store.read("binance", "BTC/USDT", "1h")
    store.write("binance", "BTC/USDT", "5m", random_candles(5, 10, "5m"))
    with pytest.raises(DataError, match=r"no 1h candles for BTC/USDT on binance .*\(stored: 5m\)"):
        store.read("binance", "BTC/USDT", "1h")
    with pytest.raises(ConfigError, match="not a pair"):
        store.read("binance", "BTCUSDT", "5m")
    with pytest.raises(ConfigError, match="unknown timeframe"):
        store.read("binance", "BTC/USDT", "7m")


def test_refuses_frames_that_are_not_candles(store: CandleStore) -> None:
    frame = random_candles(6, 10, "5m")
    with pytest.raises(DataError, match="off the 1h grid"):
        store.write("binance", "BTC/USDT", "1h", frame)
    with pytest.raises(DataError, match="sorted and unique"):
        store.write("binance", "BTC/USDT", "5m", frame.iloc[::-1])
    with pytest.raises(DataError, match="nothing to write"):
        store.write("binance", "BTC/USDT", "5m", frame.iloc[:0])
    with pytest.raises(DataError, match="missing: quote_volume"):
        store.write("binance", "BTC/USDT", "5m", frame.drop(columns="quote_volume"))


def test_files_are_named_after_pairs(store: CandleStore) -> None:
    store.write("binance", "BTC/USDT:USDT", "1h", random_candles(7, 5, "1h"))
    store.write("binance", "1000SATS/USDT", "1h", random_candles(8, 5, "1h"))
    names = sorted(p.name for p in (store.root / "binance").iterdir())
    assert names == ["1000SATS_USDT-1h.parquet", "BTC_USDT_USDT-1h.parquet"]
    assert [s.pair for s in store.available()] == ["1000SATS/USDT", "BTC/USDT:USDT"]


# -- atomicity: a failed write leaves the store exactly as it was --------------------------


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_changes_nothing(
    store: CandleStore, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    store.write("binance", "BTC/USDT", "1h", random_candles(9, 24, "1h"))
    before = snapshot(store.root)

    def broken(*args: object, **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(type(failure)):
        store.write("binance", "BTC/USDT", "1h", random_candles(10, 48, "1h"))
    monkeypatch.undo()
    assert snapshot(store.root) == before  # no temp file left either
    assert store.find("binance", "BTC/USDT", "1h").count == 24  # type: ignore[union-attr]


def test_an_interrupted_parquet_write_changes_nothing(
    store: CandleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write("binance", "BTC/USDT", "1h", random_candles(11, 24, "1h"))
    before = snapshot(store.root)

    def interrupted(table: object, where: object, **kwargs: object) -> None:
        where.write(b"PAR1 half a file")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module.pq, "write_table", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.write("binance", "BTC/USDT", "1h", random_candles(12, 48, "1h"))
    monkeypatch.undo()
    assert snapshot(store.root) == before


def test_the_index_is_rebuilt_from_the_files(store: CandleStore) -> None:
    store.write("binance", "BTC/USDT", "1h", random_candles(13, 24, "1h", gaps=True))
    store.write("binance", "ETH/USDT", "1d", random_candles(14, 10, "1d"))
    listed = store.available()
    (store.root / "index.json").write_text("{not json")
    assert store.available() == listed
    (store.root / "index.json").unlink()
    assert store.available() == listed
    assert json.loads((store.root / "index.json").read_text())["format"] == 1


def test_a_stale_index_entry_is_refreshed(store: CandleStore) -> None:
    """A crash between the data file and the index write leaves the index behind; it heals."""
    store.write("binance", "BTC/USDT", "1h", random_candles(15, 24, "1h"))
    stale = (store.root / "index.json").read_bytes()
    store.write("binance", "BTC/USDT", "1h", random_candles(16, 48, "1h"))
    (store.root / "index.json").write_bytes(stale)
    assert store.find("binance", "BTC/USDT", "1h").count == 48  # type: ignore[union-attr]
    assert [s.count for s in store.available()] == [48]


def test_foreign_files_are_reported_not_fatal(store: CandleStore) -> None:
    store.write("binance", "BTC/USDT", "1h", random_candles(17, 24, "1h"))
    pq.write_table(
        pq.read_table(store.root / "binance" / "BTC_USDT-1h.parquet").replace_schema_metadata({}),
        store.root / "binance" / "stray-1h.parquet",
    )
    series, problems = store.listing()
    assert [s.pair for s in series] == ["BTC/USDT"]
    assert len(problems) == 1 and "stray-1h.parquet" in problems[0]


def test_gaps_are_counted_in_the_listing(store: CandleStore) -> None:
    frame = random_candles(18, 20, "1h")
    store.write("binance", "BTC/USDT", "1h", frame.drop(frame.index[[3, 4, 10]]))
    (series,) = store.available()
    assert (series.count, series.gaps, series.missing) == (17, 2, 3)


# -- load: resampling when the timeframe is not stored -------------------------------------


def test_load_builds_a_missing_timeframe_from_a_finer_one(store: CandleStore) -> None:
    store.write("binance", "BTC/USDT", "5m", random_candles(19, 12 * 30 + 7, "5m"))
    hourly = store.load("binance", "BTC/USDT", "1h")
    assert len(hourly) == 30  # the last 7 five-minute candles make no closed hour
    assert hourly.attrs["resampled_from"] == "5m"
    assert hourly.attrs["incomplete_buckets_dropped"] == 1
    part = store.load("binance", "BTC/USDT", "1h", start="2024-01-01 05:30", end="2024-01-01 10:00")
    assert list(part.index.hour) == [6, 7, 8, 9]


def test_load_prefers_the_source_covering_the_longest_span(store: CandleStore) -> None:
    store.write("binance", "BTC/USDT", "5m", random_candles(20, 12 * 24, "5m", start="2024-03-01"))
    store.write("binance", "BTC/USDT", "1h", random_candles(21, 24 * 60, "1h"))
    four_hours = store.load("binance", "BTC/USDT", "4h")
    assert four_hours.attrs["resampled_from"] == "1h"
    assert len(four_hours) == 6 * 60
    with pytest.raises(DataError, match="no 1m candles"):
        store.load("binance", "BTC/USDT", "1m")
    with pytest.raises(DataError, match=r"no 1d candles for ETH/USDT"):
        store.load("binance", "ETH/USDT", "1d")


def test_load_reads_only_the_pairs_own_series(store: CandleStore) -> None:
    """A pair whose file name starts like another's, and a file of another pair put under
    this pair's name, are not sources for building this pair's timeframes."""
    store.write("binance", "BTC/USDT", "1h", random_candles(22, 24 * 4, "1h"))
    store.write("binance", "BTC/USDTX", "5m", random_candles(23, 12 * 24 * 6, "5m"))
    store.write("binance", "ETH/USDT", "5m", random_candles(24, 12 * 24 * 5, "5m"))
    foreign = store.path_for("binance", "ETH/USDT", "5m")
    os.replace(foreign, store.path_for("binance", "BTC/USDT", "5m").with_name("BTC_USDT-x.parquet"))
    assert store.load("binance", "BTC/USDT", "4h").attrs["resampled_from"] == "1h"
    with pytest.raises(DataError, match="stored: 1h"):
        store.load("binance", "BTC/USDT", "1m")


def test_a_file_rewritten_since_it_was_read_is_read_again(store: CandleStore) -> None:
    """Reads of a pair's files are kept for its next timeframe: never past a write."""
    frame = random_candles(25, 12 * 24, "5m")
    store.write("binance", "BTC/USDT", "5m", frame.iloc[:200])
    first = store.read("binance", "BTC/USDT", "5m")
    assert len(store.load("binance", "BTC/USDT", "1h")) == 200 // 12
    first["close"] = 0.0  # a caller changing its copy changes nothing stored
    store.write("binance", "BTC/USDT", "5m", frame.iloc[200:])
    assert_same_candles(store.read("binance", "BTC/USDT", "5m"), frame)
    assert len(store.load("binance", "BTC/USDT", "1h")) == 24
    replaced = frame.copy()
    replaced["close"] *= 1.01
    store.write("binance", "BTC/USDT", "5m", replaced, replace=True)  # same size and shape
    assert_same_candles(store.read("binance", "BTC/USDT", "5m"), replaced)


def test_data_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert resolve_data_dir(None) == Path("user_data") / "data"
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir(str(tmp_path / "flag")) == tmp_path / "flag"

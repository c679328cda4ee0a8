"""Importing the layouts users hold, from the committed real slices and copies made here."""

from __future__ import annotations

import gzip
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.data.importers import identify, import_paths
from kinetic_rules.data.readers import read_kline_csv
from kinetic_rules.data.store import CandleStore
from kinetic_rules.data.validate import validate
from kinetic_rules.errors import ConfigError
from kinetic_rules.timeframes import timeframe_seconds
from tests.data.helpers import (
    CSV_DIR,
    FEATHER_DIR,
    assert_same_candles,
    copy_fixture,
    csv_lines,
    frame_to_feather,
    frame_to_freqtrade_json,
    frame_to_kline_lines,
    random_candles,
    snapshot,
    write_csv,
)


@pytest.mark.parametrize(
    ("name", "pair", "timeframe"),
    [
        ("BTCUSDT-15m.csv.gz", "BTC/USDT", "15m"),
        ("BTCUSDT-1h-2024-01.zip", "BTC/USDT", "1h"),
        ("ETHBTC-1m-2025-01-05.csv", "ETH/BTC", "1m"),
        ("EURIUSDT-5m.csv", "EURI/USDT", "5m"),
        ("BTC_USDT-5m.feather", "BTC/USDT", "5m"),
        ("1000SATS_USDT-1h.json", "1000SATS/USDT", "1h"),
        ("BTC_USDT-1d.json.gz", "BTC/USDT", "1d"),
        ("BTC_USDT_USDT-1h-futures.feather", "BTC/USDT:USDT", "1h"),
        ("candles.csv", None, None),
    ],
)
def test_pair_and_timeframe_come_from_file_names(
    name: str, pair: str | None, timeframe: str | None
) -> None:
    assert identify(name) == (pair, timeframe)


def test_funding_rate_files_are_not_candles() -> None:
    with pytest.raises(ConfigError, match="funding_rate data, not traded candles"):
        identify("BTC_USDT_USDT-8h-funding_rate.feather")


def test_both_real_layouts_import_and_agree(store: CandleStore) -> None:
    summary = import_paths([CSV_DIR, FEATHER_DIR], store)
    assert not summary.rejected
    held = {(s.pair, s.timeframe): s for s in store.available()}
    assert held[("BTC/USDT", "15m")].count == 2784
    assert held[("BTC/USDT", "5m")].count == 8352
    assert held[("BTC/USDT", "5m")].first == pd.Timestamp("2024-02-15", tz="UTC")
    assert held[("BTC/USDT", "5m")].last == pd.Timestamp("2024-03-14 23:55", tz="UTC")
    # the feather 1h candles equal the exchange's, so its measured quote volume stays
    assert held[("BTC/USDT", "1h")].quote_volume_estimated is False
    assert held[("SOL/USDT", "1h")].quote_volume_estimated is True
    assert held[("EURI/USDT", "5m")].first.month == 8  # listed in August 2024


def test_a_file_without_candles_imports_nothing_and_is_not_an_error(
    store: CandleStore, work: Path
) -> None:
    empty = pd.read_feather(FEATHER_DIR / "BTC_USDT-1d.feather").iloc[:0]
    empty.to_feather(work / "BTC_USDT-1d.feather")
    summary = import_paths([work], store)
    (outcome,) = summary.files
    assert outcome.empty and not outcome.rejected
    assert store.available() == [] and not summary.written


def test_csv_keeps_the_exchange_quote_volume(store: CandleStore) -> None:
    import_paths([CSV_DIR / "BTCUSDT-1h.csv.gz"], store)
    frame = store.read("binance", "BTC/USDT", "1h")
    first = csv_lines("BTCUSDT-1h.csv.gz")[0].split(",")
    assert frame["quote_volume"].iloc[0] == float(first[7])
    assert frame["open"].iloc[0] == float(first[1])
    assert frame.attrs["quote_volume_estimated"] is False


def test_microsecond_and_millisecond_files_read_the_same(work: Path) -> None:
    lines = csv_lines("BTCUSDT-15m.csv.gz")
    micro = []
    for line in lines:
        fields = line.split(",")
        fields[0] = str(int(fields[0]) * 1000)
        fields[6] = str(int(fields[6]) * 1000 + 999)
        micro.append(",".join(fields))
    mixed = lines[:100] + micro[100:]  # 2025's switch, inside one file
    expected, _ = validate(read_kline_csv("\n".join(lines).encode()), "15m", "ms")
    for variant in (micro, mixed):
        frame, report = validate(read_kline_csv("\n".join(variant).encode()), "15m", "us")
        assert frame is not None and expected is not None and not report.issues
        assert_same_candles(frame, expected)


def test_zip_archives_as_the_exchange_publishes_them(store: CandleStore, work: Path) -> None:
    lines = csv_lines("ETHUSDT-15m.csv.gz")
    february = [line for line in lines if int(line[:13]) < 1709251200000]
    march = [line for line in lines if int(line[:13]) >= 1709251200000]
    for month, rows in (("2024-02", february), ("2024-03", march)):
        with zipfile.ZipFile(work / f"ETHUSDT-15m-{month}.zip", "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"ETHUSDT-15m-{month}.csv", "\n".join(rows) + "\n")
    summary = import_paths([work], store)
    assert [f.label for f in summary.files] == [
        "ETHUSDT-15m-2024-02.zip:ETHUSDT-15m-2024-02.csv",
        "ETHUSDT-15m-2024-03.zip:ETHUSDT-15m-2024-03.csv",
    ]
    assert len(summary.written) == 1  # one series, one atomic write
    assert store.read("binance", "ETH/USDT", "15m").shape == (2784, 6)


def test_futures_csv_with_a_header_row(store: CandleStore, work: Path) -> None:
    header = (
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore"
    )
    lines = ["\ufeff" + header, *csv_lines("BTCUSDT-1h.csv.gz")[:50]]  # with a byte-order mark
    write_csv(work / "BTCUSDT-1h-2024-01.csv", lines)
    import_paths([work], store, pair="BTC/USDT:USDT")
    # stored under the name strategies give the market, as `download` stores a perpetual
    assert store.read("binance", "BTC/USDT", "1h").shape == (50, 6)
    held = store.find("binance", "BTC/USDT", "1h")
    assert held is not None and held.market == "futures"


def test_freqtrade_json_and_feather(store: CandleStore, work: Path) -> None:
    import_paths([FEATHER_DIR / "SOL_USDT-1h.feather"], store)
    from_feather = store.read("binance", "SOL/USDT", "1h")
    json_text = frame_to_freqtrade_json(from_feather)
    (work / "SOL_USDT-1h.json").write_text(json_text)
    (work / "ETH_USDT-1h.json.gz").write_bytes(gzip.compress(json_text.encode()))
    other = CandleStore(store.root.parent / "from-json")
    summary = import_paths([work], other)
    assert not summary.rejected
    for pair in ("SOL/USDT", "ETH/USDT"):
        frame = other.read("binance", pair, "1h")
        assert_same_candles(frame, from_feather)
        assert frame.attrs["quote_volume_estimated"] is True


def test_json_rows_that_are_not_candles_are_named(store: CandleStore, work: Path) -> None:
    rows = [[1704067200000 + i * 3_600_000, 1.0, 2.0, 0.5, 1.5, 10.0] for i in range(5)]
    rows[2] = [1704074400000, "1.0", None]
    (work / "BTC_USDT-1h.json").write_text(json.dumps(rows))
    (outcome,) = import_paths([work], store).files
    issue = outcome.report.issue("unparseable")  # type: ignore[union-attr]
    assert outcome.rejected and issue is not None
    assert issue.examples[0].startswith("row 3: expected [time, open, high, low, close, volume]")


def test_overrides_and_unknown_names(store: CandleStore, work: Path) -> None:
    path = write_csv(work / "my-candles.csv", csv_lines("BTCUSDT-1d.csv.gz"))
    with pytest.raises(
        ConfigError, match=r"my-candles.csv: cannot tell the pair .* --pair and --timeframe"
    ):
        import_paths([path], store)
    with pytest.raises(ConfigError, match="no such file"):
        import_paths([work / "absent.csv"], store)
    import_paths([path], store, pair="btc/usdt", timeframe="1d", exchange="binanceus")
    assert len(store.read("binanceus", "BTC/USDT", "1d")) == len(csv_lines("BTCUSDT-1d.csv.gz"))


# -- corrupted copies: reported precisely, the store left as it was ------------------------


@pytest.fixture
def filled(store: CandleStore) -> CandleStore:
    import_paths([CSV_DIR / "BTCUSDT-15m.csv.gz"], store)
    return store


def _import_copy(store: CandleStore, path: Path) -> tuple[dict[str, str], object]:
    before = snapshot(store.root)
    summary = import_paths([path], store)
    assert snapshot(store.root) == before, "a rejected file must not change the store"
    (outcome,) = summary.files
    assert outcome.rejected
    return before, outcome


def test_truncated_gzip_is_rejected(filled: CandleStore, work: Path) -> None:
    data = (CSV_DIR / "BTCUSDT-15m.csv.gz").read_bytes()
    (work / "BTCUSDT-15m.csv.gz").write_bytes(data[: len(data) // 2])
    _, outcome = _import_copy(filled, work / "BTCUSDT-15m.csv.gz")
    assert "truncated" in str(outcome.error)  # type: ignore[attr-defined]


def test_truncated_plain_csv_names_the_broken_line(filled: CandleStore, work: Path) -> None:
    lines = csv_lines("BTCUSDT-15m.csv.gz")
    text = "\n".join(lines)
    (work / "BTCUSDT-15m.csv").write_text(text[: len(text) - len(lines[-1]) // 2])  # mid-row
    _, outcome = _import_copy(filled, work / "BTCUSDT-15m.csv")
    issue = outcome.report.issue("unparseable")  # type: ignore[attr-defined]
    assert issue.count == 1
    assert issue.examples[0].startswith(f"line {len(lines):,}: expected 12 comma-separated")


def test_row_with_high_below_low_is_rejected_with_its_line(filled: CandleStore, work: Path) -> None:
    lines = csv_lines("BTCUSDT-15m.csv.gz")
    fields = lines[99].split(",")
    fields[2], fields[3] = fields[3], fields[2]  # swap high and low
    lines[99] = ",".join(fields)
    write_csv(work / "BTCUSDT-15m.csv.gz", lines)
    _, outcome = _import_copy(filled, work / "BTCUSDT-15m.csv.gz")
    report = outcome.report  # type: ignore[attr-defined]
    issue = report.issue("high_below_low")
    assert issue.count == 1 and issue.examples[0].startswith("line 100 (2024-02-16 00:45): high ")
    assert report.issue("outside_range") is None


def test_shuffled_rows_are_sorted_and_reported(store: CandleStore, work: Path) -> None:
    lines = csv_lines("BTCUSDT-15m.csv.gz")
    shuffled = list(np.random.default_rng(7).permutation(lines))
    write_csv(work / "BTCUSDT-15m.csv.gz", shuffled)
    summary = import_paths([work], store)
    (outcome,) = summary.files
    assert not outcome.rejected
    issue = outcome.report.issue("out_of_order")  # type: ignore[union-attr]
    assert issue is not None and issue.count > 1000
    clean = CandleStore(store.root.parent / "clean")
    import_paths([CSV_DIR / "BTCUSDT-15m.csv.gz"], clean)
    assert_same_candles(
        store.read("binance", "BTC/USDT", "15m"), clean.read("binance", "BTC/USDT", "15m")
    )


def test_drop_bad_rows_imports_the_rest(store: CandleStore, work: Path) -> None:
    lines = csv_lines("BTCUSDT-1h.csv.gz")
    lines[10] = lines[10].replace(",", ";", 3)
    write_csv(work / "BTCUSDT-1h.csv.gz", lines)
    summary = import_paths([work], store, drop_bad_rows=True)
    assert not summary.rejected
    series = store.find("binance", "BTC/USDT", "1h")
    assert series is not None and series.count == 1775 and series.gaps == 1


def test_truncated_zip_and_feather_are_rejected(filled: CandleStore, work: Path) -> None:
    with zipfile.ZipFile(work / "BTCUSDT-15m-2024-02.zip", "w") as z:
        z.writestr("BTCUSDT-15m-2024-02.csv", "\n".join(csv_lines("BTCUSDT-15m.csv.gz")))
    data = (work / "BTCUSDT-15m-2024-02.zip").read_bytes()
    (work / "BTCUSDT-15m-2024-02.zip").write_bytes(data[:-200])
    _, outcome = _import_copy(filled, work / "BTCUSDT-15m-2024-02.zip")
    assert "not a readable zip archive" in str(outcome.error)  # type: ignore[attr-defined]
    feather = (FEATHER_DIR / "BTC_USDT-5m.feather").read_bytes()
    (work / "BTC_USDT-5m.feather").write_bytes(feather[: len(feather) // 3])
    _, outcome = _import_copy(filled, work / "BTC_USDT-5m.feather")
    assert "not a readable feather file" in str(outcome.error)  # type: ignore[attr-defined]


def test_good_files_import_beside_a_rejected_one(store: CandleStore, work: Path) -> None:
    copy_fixture("ETHUSDT-1d.csv.gz", work)
    lines = csv_lines("BTCUSDT-1d.csv.gz")
    lines[5] = lines[5].replace(lines[5].split(",")[1], "-1", 1)
    write_csv(work / "BTCUSDT-1d.csv.gz", lines)
    summary = import_paths([work], store)
    assert [f.label for f in summary.rejected] == ["BTCUSDT-1d.csv.gz"]
    assert [(s.pair, s.timeframe) for s in store.available()] == [("ETH/USDT", "1d")]


# -- round trips: a frame written in each layout imports as the same frame -----------------


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 80),
    gaps=st.booleans(),
    timeframe=st.sampled_from(["1m", "5m", "1h", "1d"]),
    micros=st.booleans(),
)
def test_round_trip_through_every_layout(
    seed: int, n: int, gaps: bool, timeframe: str, micros: bool
) -> None:
    frame = random_candles(seed, n, timeframe, gaps=gaps)
    step_ms = timeframe_seconds(timeframe) * 1000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = frame_to_kline_lines(frame, step_ms, micros=micros)
        write_csv(folder / f"BTCUSDT-{timeframe}.csv.gz", lines)
        frame_to_feather(frame, folder / f"ETH_USDT-{timeframe}.feather")
        (folder / f"SOL_USDT-{timeframe}.json").write_text(frame_to_freqtrade_json(frame))
        store = CandleStore(folder / "store")
        summary = import_paths([folder], store)
        assert not summary.rejected
        assert_same_candles(store.read("binance", "BTC/USDT", timeframe), frame)
        for pair in ("ETH/USDT", "SOL/USDT"):
            imported = store.read("binance", pair, timeframe)
            assert_same_candles(imported, frame, quote=False)
            assert imported.attrs["quote_volume_estimated"] is True

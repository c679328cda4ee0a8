"""Import refuses what cannot be real (future candles, spliced rows) or is not the pair's
(prices inconsistent with the stored series), naming file and row, and keeps the store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.data.importers import import_paths
from kinetic_rules.data.store import CandleStore
from tests.data.helpers import csv_lines, snapshot, write_csv

HOUR = 3600 * 10**9


@pytest.fixture
def held(store: CandleStore) -> CandleStore:
    """The first half of the real BTC/USDT 1h slice, stored."""
    lines = csv_lines("BTCUSDT-1h.csv.gz")
    half = write_csv(store.root.parent / "BTCUSDT-1h.csv.gz", lines[:888])
    assert not import_paths([half], store).rejected
    return store


def _refused(store: CandleStore, path: Path, **options: object) -> object:
    before = snapshot(store.root)
    summary = import_paths([path], store, **options)  # type: ignore[arg-type]
    assert snapshot(store.root) == before, "a refused file must leave the store as it was"
    (outcome,) = summary.files
    assert outcome.rejected
    return outcome.report


def _scaled(lines: list[str], factor: float) -> list[str]:
    """Rows with every price multiplied: the same market in another unit."""
    out = []
    for line in lines:
        fields = line.split(",")
        fields[1:5] = [repr(float(f) * factor) for f in fields[1:5]]
        out.append(",".join(fields))
    return out


def test_candles_after_the_import_time_are_refused(held: CandleStore, work: Path) -> None:
    lines = csv_lines("BTCUSDT-1h.csv.gz")
    path = write_csv(work / "BTCUSDT-1h.csv.gz", lines)
    now = pd.Timestamp("2024-03-01 12:30", tz="UTC").value  # the slice runs to 2024-03-14
    report = _refused(held, path, now_ns=now)
    issue = report.issue("future")  # type: ignore[attr-defined]
    later = [i for i, line in enumerate(lines, 1) if int(line.split(",")[0]) * 10**6 > now + HOUR]
    assert issue.fatal and issue.count == len(later) > 300
    # 13:00 opens within one candle of the import time (clock skew); 14:00 cannot be real
    assert issue.examples[0].startswith(f"line {later[0]:,} (2024-03-01 14:00)")


def test_a_timestamp_repeated_out_of_order_is_refused_with_its_line(
    held: CandleStore, work: Path
) -> None:
    lines = csv_lines("BTCUSDT-1h.csv.gz")
    path = write_csv(work / "BTCUSDT-1h.csv.gz", [*lines[:1000], lines[950], *lines[1000:]])
    report = _refused(held, path)
    issue = report.issue("duplicate_out_of_order")  # type: ignore[attr-defined]
    assert issue.examples == ("line 1,001 (2024-02-09 14:00) repeats line 951 (2024-02-09 14:00)",)


def test_conflicting_duplicates_are_refused_naming_both_lines(
    held: CandleStore, work: Path
) -> None:
    lines = csv_lines("BTCUSDT-1h.csv.gz")
    revised = lines[999].split(",")
    revised[5] = "1.5"  # another volume for the same candle
    path = write_csv(work / "BTCUSDT-1h.csv.gz", [*lines[:1000], ",".join(revised), *lines[1000:]])
    report = _refused(held, path)
    issue = report.issue("duplicate_conflicting")  # type: ignore[attr-defined]
    assert issue.examples[0].startswith("line 1,001 (2024-02-11 15:00) differs from line 1,000")


def test_a_file_of_another_pair_is_flagged_where_it_overlaps(held: CandleStore, work: Path) -> None:
    eth = csv_lines("ETHUSDT-1h.csv.gz")
    path = write_csv(work / "BTCUSDT-1h.csv.gz", eth)  # misnamed: ETH prices as BTC/USDT
    report = _refused(held, path)
    issue = report.issue("price_seam")  # type: ignore[attr-defined]
    assert issue.fatal
    text = issue.examples[0]
    assert "on the 888 candles both hold (2024-01-01 00:00 .. 2024-02-06 23:00)" in text
    assert "lower than the stored BTC/USDT candles" in text and "--accept-price-jump" in text


def test_a_price_scale_off_at_the_seam_is_flagged_and_can_be_accepted(
    held: CandleStore, work: Path
) -> None:
    later = _scaled(csv_lines("BTCUSDT-1h.csv.gz")[888:], 1000.0)  # no overlap: a seam
    path = write_csv(work / "BTCUSDT-1h.csv.gz", later)
    report = _refused(held, path)
    text = report.issue("price_seam").examples[0]  # type: ignore[attr-defined]
    assert "at the seam 2024-02-06 23:00 | 2024-02-07 00:00" in text
    assert "997x higher" in text  # medians of five closes on each side
    summary = import_paths([path], held, accept_price_jump=True)
    (outcome,) = summary.files
    assert not outcome.rejected
    issue = outcome.report.issue("price_seam")  # type: ignore[union-attr]
    assert issue is not None and not issue.fatal  # a warning: the user chose it
    assert held.find("binance", "BTC/USDT", "1h").count == 1776  # type: ignore[union-attr]


def test_the_real_continuation_of_a_series_is_not_flagged(held: CandleStore, work: Path) -> None:
    rest = write_csv(work / "BTCUSDT-1h.csv.gz", csv_lines("BTCUSDT-1h.csv.gz")[800:])
    summary = import_paths([rest], held)
    assert not summary.rejected
    assert summary.files[0].report.issue("price_seam") is None  # type: ignore[union-attr]


def test_two_files_of_one_import_are_checked_against_each_other(
    store: CandleStore, work: Path
) -> None:
    lines = csv_lines("BTCUSDT-1h.csv.gz")
    (work / "a").mkdir()
    (work / "b").mkdir()
    write_csv(work / "a" / "BTCUSDT-1h-2024-01.csv", lines[:744])
    write_csv(work / "b" / "BTCUSDT-1h-2024-02.csv", _scaled(lines[744:], 0.001))
    summary = import_paths([work / "a", work / "b"], store)
    assert [f.rejected for f in summary.files] == [False, True]
    assert store.find("binance", "BTC/USDT", "1h").count == 744  # type: ignore[union-attr]


def test_the_cli_names_file_pair_and_seam(
    held: CandleStore, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kinetic_rules.cli.app import main

    path = write_csv(work / "BTCUSDT-1h.csv.gz", _scaled(csv_lines("BTCUSDT-1h.csv.gz"), 0.01))
    code = main(["data", "import", str(path), "--data", str(held.root)])
    out = capsys.readouterr().out
    assert code == 1
    assert "✗ BTCUSDT-1h.csv.gz (BTC/USDT 1h): rejected" in out
    assert "error: prices inconsistent with the stored BTC/USDT history" in out
    assert "100x lower" in out and "--drop-bad-rows" not in out
    code = main(["data", "import", str(path), "--data", str(held.root), "--accept-price-jump"])
    assert code == 0 and "warning: prices inconsistent" in capsys.readouterr().out

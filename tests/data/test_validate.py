from __future__ import annotations

import numpy as np
import pytest

from kinetic_rules.data.validate import RawCandles, find_gaps, validate

T0 = 1_704_067_200_000 * 1_000_000  # 2024-01-01 00:00 UTC in ns
STEP = 300 * 1_000_000_000  # 5m


def raw(
    rows: list[tuple[int, float, float, float, float, float]], quote: bool = True
) -> RawCandles:
    """Rows of (candle number, open, high, low, close, volume); line numbers from 1."""
    table = np.array(rows, dtype=np.float64).reshape(-1, 6)
    times = T0 + table[:, 0].astype(np.int64) * STEP
    qv = table[:, 5] * table[:, 4] if quote else None
    return RawCandles(
        times,
        table[:, 1],
        table[:, 2],
        table[:, 3],
        table[:, 4],
        table[:, 5],
        qv,
        np.arange(1, len(rows) + 1, dtype=np.int64),
    )


GOOD = [(i, 10.0 + i, 12.0 + i, 9.0 + i, 11.0 + i, 5.0) for i in range(6)]


def test_clean_candles_pass_unchanged() -> None:
    frame, report = validate(raw(GOOD), "5m", "x.csv")
    assert frame is not None and not report.issues
    assert report.candles_kept == 6
    assert frame.index[0].isoformat() == "2024-01-01T00:00:00+00:00"
    assert frame["close"].tolist() == [11.0 + i for i in range(6)]


@pytest.mark.parametrize(
    ("bad_row", "kind", "text"),
    [
        (
            (3, 10.0, 8.0, 9.0, 9.5, 1.0),
            "high_below_low",
            "line 4 (2024-01-01 00:15): high 8 < low 9",
        ),
        ((3, 0.0, 12.0, 9.0, 11.0, 1.0), "non_positive_price", "line 4 (2024-01-01 00:15): open 0"),
        ((3, 10.0, 12.0, 9.0, 13.0, 1.0), "outside_range", "close 13"),
        ((3, 10.0, 12.0, 9.0, 11.0, -1.0), "negative_volume", "volume -1"),
        ((3, 10.0, float("nan"), 9.0, 11.0, 1.0), "missing_value", "line 4"),
    ],
)
def test_fatal_rows_reject_the_file_and_are_named(
    bad_row: tuple[int, float, float, float, float, float], kind: str, text: str
) -> None:
    rows = [*GOOD[:3], bad_row, *GOOD[4:]]
    frame, report = validate(raw(rows), "5m", "x.csv")
    assert frame is None and report.fatal
    issue = report.issue(kind)
    assert issue is not None and issue.count == 1 and issue.fatal
    assert text in issue.examples[0]


def test_dropping_bad_rows_keeps_the_rest() -> None:
    rows = [*GOOD[:3], (3, 10.0, 8.0, 9.0, 9.5, 1.0), *GOOD[4:]]
    frame, report = validate(raw(rows), "5m", "x.csv", drop_bad_rows=True)
    assert frame is not None and not report.fatal
    assert len(frame) == 5
    issue = report.issue("high_below_low")
    assert issue is not None and not issue.fatal
    assert report.issue("gap") is not None  # the dropped row leaves a hole, reported


def test_rows_out_of_order_are_sorted_and_reported() -> None:
    rows = [GOOD[0], GOOD[2], GOOD[1], *GOOD[3:]]
    frame, report = validate(raw(rows), "5m", "x.csv")
    assert frame is not None
    assert frame.index.is_monotonic_increasing
    issue = report.issue("out_of_order")
    assert issue is not None and issue.count == 1
    assert "line 3 (2024-01-01 00:05) comes after line 2 (2024-01-01 00:10)" in issue.examples[0]


def test_identical_duplicates_are_dropped_and_counted() -> None:
    rows = [*GOOD, GOOD[2], GOOD[2]]
    frame, report = validate(raw(rows), "5m", "x.csv")
    assert frame is not None and len(frame) == 6
    issue = report.issue("duplicate_identical")
    assert issue is not None and issue.count == 2 and not issue.fatal
    assert report.issue("duplicate_conflicting") is None


def test_conflicting_duplicates_keep_the_last_occurrence_in_file_order() -> None:
    revised = (2, 12.0, 15.0, 11.0, 14.0, 7.0)
    rows = [*GOOD[:3], *GOOD[3:], revised]  # the revision of candle 2 comes last
    frame, report = validate(raw(rows), "5m", "x.csv")
    assert frame is not None and len(frame) == 6
    assert frame["close"].iloc[2] == 14.0
    issue = report.issue("duplicate_conflicting")
    assert issue is not None and issue.count == 1
    assert "line 3" in issue.examples[0] and "line 7" in issue.examples[0]


def test_gaps_are_reported_and_never_filled() -> None:
    rows = [GOOD[0], GOOD[1], (5, 1.0, 2.0, 0.5, 1.5, 1.0), (9, 1.0, 2.0, 0.5, 1.5, 1.0)]
    frame, report = validate(raw(rows), "5m", "x.csv")
    assert frame is not None and len(frame) == 4
    issue = report.issue("gap")
    assert issue is not None and issue.count == 2 and report.missing_candles == 6
    assert issue.examples[0] == "2024-01-01 00:10 .. 2024-01-01 00:20 (3 candles)"
    assert "6 candles missing" in issue.render()


def test_wrong_timeframe_is_caught_both_ways() -> None:
    # 5m candles declared as 1h: off the hourly grid
    _, report = validate(raw(GOOD), "1h", "x.csv")
    assert report.fatal and report.issue("off_grid") is not None
    # hourly candles declared as 5m: on the grid but an hour apart
    hourly = [(i * 12, 1.0, 2.0, 0.5, 1.5, 1.0) for i in range(12)]
    _, report = validate(raw(hourly), "5m", "x.csv")
    mismatch = report.issue("timeframe_mismatch")
    assert (
        mismatch is not None
        and mismatch.fatal
        and "no two candles are 5m apart (mostly 1 hour)" in mismatch.title
    )


def test_missing_quote_volume_is_estimated_and_marked() -> None:
    frame, _ = validate(raw(GOOD, quote=False), "5m", "x.json")
    assert frame is not None
    assert frame.attrs["quote_volume_estimated"] is True
    np.testing.assert_array_equal(frame["quote_volume"], frame["volume"] * frame["close"])


def test_find_gaps() -> None:
    times = np.array([0, 1, 2, 5, 6, 10], dtype=np.int64)
    assert find_gaps(times, 1) == [(3, 4, 2), (7, 9, 3)]
    assert find_gaps(times[:1], 1) == []

"""Check raw candles before anything is stored, and say precisely what is wrong.

Policy (docs/data.md repeats it for users):
- fatal, the file is rejected as a whole unless bad rows are to be dropped: unparseable
  rows, missing values, non-positive prices, high below low, open or close outside
  high..low, negative volume, open times off the timeframe's grid, candles dated in
  the future (opening more than one candle after the import time), a timestamp
  repeated after other rows (out of order), duplicates that disagree on a value, a
  timeframe that does not match the spacing of the candles;
- repaired and reported: rows out of order are sorted (stable); a candle repeated on
  the next row with identical values is dropped;
- reported only: gaps. They are never filled in the store (a backtest may fill them,
  see data/gaps.py).

Dropping bad rows drops every row of a conflicting timestamp (no row can be trusted
over the other) and keeps the first of identical repeats.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from kinetic_rules.data.candles import (
    FloatArray,
    IntArray,
    bucket_origin_ns,
    candle_frame,
    format_time,
    has_known_grid,
    timeframe_ns,
)
from kinetic_rules.timeframes import format_duration

MAX_EXAMPLES = 3
BoolArray = npt.NDArray[np.bool_]


@dataclass
class RawCandles:
    """Columns as a reader found them, before any check; `rows` says where each came from."""

    times_ns: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    quote_volume: FloatArray | None
    rows: IntArray
    row_label: str = "line"
    unparseable_count: int = 0
    unparseable_examples: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.times_ns)

    def values(self) -> list[FloatArray]:
        cols = [self.open, self.high, self.low, self.close, self.volume]
        return cols if self.quote_volume is None else [*cols, self.quote_volume]

    @staticmethod
    def concat(parts: list[RawCandles]) -> RawCandles:
        """One batch from several (pages of a download); rows are renumbered in order."""

        def joined(column: str) -> FloatArray:
            return np.concatenate([getattr(p, column) for p in parts])

        quotes = [p.quote_volume for p in parts]
        quote = None if any(q is None for q in quotes) else joined("quote_volume")
        times = np.concatenate([p.times_ns for p in parts])
        rows = np.arange(1, len(times) + 1, dtype=np.int64)
        label = parts[0].row_label if parts else "row"
        return RawCandles(
            times,
            joined("open"),
            joined("high"),
            joined("low"),
            joined("close"),
            joined("volume"),
            quote,
            rows,
            label,
        )

    def take(self, keep: BoolArray | IntArray) -> RawCandles:
        qv = None if self.quote_volume is None else self.quote_volume[keep]
        return RawCandles(
            self.times_ns[keep],
            self.open[keep],
            self.high[keep],
            self.low[keep],
            self.close[keep],
            self.volume[keep],
            qv,
            self.rows[keep],
            self.row_label,
            self.unparseable_count,
            self.unparseable_examples,
        )


@dataclass(frozen=True)
class Issue:
    """One kind of problem in one file: how many rows, and the first few, spelled out."""

    kind: str
    title: str
    count: int
    examples: tuple[str, ...]
    fatal: bool
    unit: str = "row"

    def render(self) -> str:
        label = "error" if self.fatal else "warning"
        plural = "" if self.count == 1 else "s"
        head = f"{label}: {self.title}: {self.count:,} {self.unit}{plural}"
        return head + ("; e.g. " + "; ".join(self.examples) if self.examples else "")


@dataclass
class ValidationReport:
    source: str
    timeframe: str
    rows_read: int = 0
    candles_kept: int = 0
    missing_candles: int = 0
    issues: list[Issue] = field(default_factory=list)

    @property
    def fatal(self) -> bool:
        return any(issue.fatal for issue in self.issues)

    def issue(self, kind: str) -> Issue | None:
        return next((i for i in self.issues if i.kind == kind), None)

    def render_lines(self) -> list[str]:
        return [issue.render() for issue in self.issues]


def validate(
    raw: RawCandles,
    timeframe: str,
    source: str,
    *,
    drop_bad_rows: bool = False,
    now_ns: int | None = None,
) -> tuple[pd.DataFrame | None, ValidationReport]:
    """Checked canonical candles (None when rejected) and the report of what was found.

    `now_ns` is the import time (default: the clock); candles opening more than one
    candle after it cannot be real.
    """
    step = timeframe_ns(timeframe)
    now = time.time_ns() if now_ns is None else now_ns
    report = ValidationReport(source, timeframe, rows_read=len(raw) + raw.unparseable_count)
    if raw.unparseable_count:
        report.issues.append(
            Issue(
                "unparseable",
                "unreadable rows",
                raw.unparseable_count,
                tuple(raw.unparseable_examples[:MAX_EXAMPLES]),
                fatal=not drop_bad_rows,
            )
        )
    bad = np.zeros(len(raw), dtype=np.bool_)
    for kind, title, mask, explain in _row_checks(raw, timeframe, step, now):
        if mask.any():
            examples = tuple(_where(raw, i) + ": " + explain(i) for i in _first(mask))
            report.issues.append(
                Issue(kind, title, int(mask.sum()), examples, fatal=not drop_bad_rows)
            )
            bad |= mask
    duplicates, repeated_bad = _duplicate_checks(raw, drop_bad_rows)
    report.issues.extend(duplicates)
    bad |= repeated_bad
    if bad.any():
        raw = raw.take(~bad)
    spacing = _spacing_issue(raw.times_ns, timeframe, step)
    if spacing is not None:
        report.issues.append(spacing)
    if report.fatal:
        return None, report
    raw = _drop_adjacent_repeats(raw, report)
    raw = _sort(raw, report)
    _report_gaps(raw.times_ns, step, report)
    report.candles_kept = len(raw)
    frame = candle_frame(
        raw.times_ns, raw.open, raw.high, raw.low, raw.close, raw.volume, raw.quote_volume
    )
    return frame, report


RowCheck = tuple[str, str, BoolArray, Callable[[int], str]]


def _row_checks(raw: RawCandles, timeframe: str, step: int, now_ns: int) -> list[RowCheck]:
    o, h, lo, c, v = raw.open, raw.high, raw.low, raw.close, raw.volume
    qv = raw.quote_volume
    finite = np.logical_and.reduce([np.isfinite(col) for col in raw.values()])
    not_a_number = ~finite
    with np.errstate(invalid="ignore"):
        non_positive = finite & ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0))
        high_below_low = finite & ~non_positive & (h < lo)
        outside = finite & ~non_positive & ~high_below_low
        outside &= (o > h) | (o < lo) | (c > h) | (c < lo)
        negative_volume = finite & ((v < 0) | ((qv < 0) if qv is not None else False))
    off_grid = np.zeros(len(raw), dtype=np.bool_)
    if has_known_grid(timeframe):
        off_grid = (raw.times_ns - bucket_origin_ns(timeframe)) % step != 0
    future = raw.times_ns > now_ns + step

    def prices(i: int) -> str:
        return f"open {o[i]:g}, high {h[i]:g}, low {lo[i]:g}, close {c[i]:g}"

    def volumes(i: int) -> str:
        text = f"volume {v[i]:g}"
        return text + (f", quote volume {qv[i]:g}" if qv is not None else "")

    def grid(i: int) -> str:
        return f"open time is not on the {timeframe} grid"

    return [
        ("missing_value", "missing or non-numeric values", not_a_number, prices),
        ("non_positive_price", "prices at or below zero", non_positive, prices),
        (
            "high_below_low",
            "high below low",
            high_below_low,
            lambda i: f"high {h[i]:g} < low {lo[i]:g}",
        ),
        ("outside_range", "open or close outside high..low", outside, prices),
        ("negative_volume", "volume below zero", negative_volume, volumes),
        ("off_grid", "open times off the timeframe grid", off_grid, grid),
        (
            "future",
            f"candles dated in the future (after {format_time(now_ns)}, the import time, "
            "plus one candle)",
            future,
            lambda i: "opens after the import time",
        ),
    ]


def _spacing_issue(times: IntArray, timeframe: str, step: int) -> Issue | None:
    """Catch a wrong timeframe (from a file name or a flag) before it poisons the store:
    in a file of 1h candles declared 5m, no two candles are ever 5m apart."""
    unique = times if (np.diff(times) > 0).all() else np.unique(times)
    if len(unique) <= 10:
        return None  # too few candles to tell a wrong timeframe from a sparse market
    diffs = np.diff(unique)
    closest = int(diffs.min())
    if closest <= step:
        return None
    values, counts = np.unique(diffs, return_counts=True)
    common = format_duration(int(values[np.argmax(counts)]) // 1_000_000_000)
    return Issue(
        "timeframe_mismatch",
        f"no two candles are {timeframe} apart (mostly {common}): wrong timeframe in the file "
        "name or flag?",
        len(diffs),
        (),
        fatal=True,
        unit="interval",
    )


def _sort(raw: RawCandles, report: ValidationReport) -> RawCandles:
    backwards = np.flatnonzero(np.diff(raw.times_ns) < 0) + 1
    if len(backwards) == 0:
        return raw
    examples = tuple(
        f"{_where(raw, i)} comes after {_where(raw, i - 1)}" for i in backwards[:MAX_EXAMPLES]
    )
    report.issues.append(
        Issue(
            "out_of_order",
            "rows out of order (sorted by open time)",
            len(backwards),
            examples,
            fatal=False,
        )
    )
    return raw.take(np.argsort(raw.times_ns, kind="stable"))


def _duplicate_checks(raw: RawCandles, drop_bad_rows: bool) -> tuple[list[Issue], BoolArray]:
    """Repeated timestamps nothing can resolve: the rows to drop, and why.

    A timestamp repeated after other rows says the file was spliced from pieces, and two
    rows of one candle that disagree leave no way to tell which is right: both refuse the
    file. Only a repeat on the very next row with identical values is harmless.
    """
    bad = np.zeros(len(raw), dtype=np.bool_)
    if len(raw) < 2:
        return [], bad
    order = np.argsort(raw.times_ns, kind="stable")  # file order within one timestamp
    times = raw.times_ns[order]
    later = np.flatnonzero(times[1:] == times[:-1]) + 1  # positions (in `order`) of repeats
    if len(later) == 0:
        return [], bad
    group_start = np.r_[0, np.flatnonzero(times[1:] != times[:-1]) + 1]
    first_of = group_start[np.searchsorted(group_start, later, side="right") - 1]
    row, first, previous = order[later], order[first_of], order[later - 1]
    columns = raw.values()
    same = np.logical_and.reduce(
        [np.isnan(c[row]) & np.isnan(c[first]) | (c[row] == c[first]) for c in columns]
    )
    conflicting_times = np.unique(times[later][~same])
    spliced_times = np.unique(times[later][row != previous + 1])
    conflicting = np.isin(times[later], conflicting_times)
    out_of_order = ~conflicting & np.isin(times[later], spliced_times)
    issues: list[Issue] = []
    fatal = not drop_bad_rows
    if conflicting.any():
        examples = tuple(
            f"{_where(raw, int(r))} differs from {_where(raw, int(f))}"
            for r, f in zip(row[~same][:MAX_EXAMPLES], first[~same][:MAX_EXAMPLES], strict=True)
        )
        title = "conflicting duplicates (two rows of one candle disagree)"
        issues.append(
            Issue("duplicate_conflicting", title, int(conflicting.sum()), examples, fatal)
        )
        bad |= np.isin(raw.times_ns, conflicting_times)
    if out_of_order.any():
        examples = tuple(
            f"{_where(raw, int(r))} repeats {_where(raw, int(f))}"
            for r, f in zip(
                row[out_of_order][:MAX_EXAMPLES], first[out_of_order][:MAX_EXAMPLES], strict=True
            )
        )
        title = "timestamps repeated out of order (the file repeats an earlier candle later on)"
        issues.append(
            Issue("duplicate_out_of_order", title, int(out_of_order.sum()), examples, fatal)
        )
        bad[row[out_of_order]] = True
    return issues, bad


def _drop_adjacent_repeats(raw: RawCandles, report: ValidationReport) -> RawCandles:
    """Drop a row that repeats the row before it exactly (left after the checks above)."""
    times = raw.times_ns
    if len(times) < 2:
        return raw
    repeat = np.r_[False, times[1:] == times[:-1]]
    if not repeat.any():
        return raw
    examples = tuple(
        f"{_where(raw, int(i))} repeats {_where(raw, int(i) - 1)}" for i in _first(repeat)
    )
    report.issues.append(
        Issue(
            "duplicate_identical",
            "identical duplicate candles dropped",
            int(repeat.sum()),
            examples,
            fatal=False,
        )
    )
    return raw.take(~repeat)


def _report_gaps(times: IntArray, step: int, report: ValidationReport) -> None:
    gaps = find_gaps(times, step)
    if not gaps:
        return
    report.missing_candles = sum(n for _, _, n in gaps)
    examples = tuple(
        f"{format_time(first)} .. {format_time(last)} ({n:,} candle{'s' if n != 1 else ''})"
        for first, last, n in gaps[:MAX_EXAMPLES]
    )
    title = f"gaps, {report.missing_candles:,} candles missing (not filled)"
    report.issues.append(Issue("gap", title, len(gaps), examples, fatal=False, unit="gap"))


def find_gaps(times: IntArray, step: int) -> list[tuple[int, int, int]]:
    """(first missing open time, last missing open time, count) for each hole in sorted times."""
    if len(times) < 2:
        return []
    diffs = np.diff(times)
    at = np.flatnonzero(diffs > step)
    return [(int(times[i] + step), int(times[i + 1] - step), int(diffs[i] // step - 1)) for i in at]


def count_gaps(times: IntArray, step: int) -> tuple[int, int]:
    """(number of holes, candles missing) without building the list."""
    if len(times) < 2:
        return 0, 0
    diffs = np.diff(times)
    holes = diffs > step
    return int(holes.sum()), int((diffs[holes] // step - 1).sum())


def _first(mask: BoolArray) -> IntArray:
    return np.flatnonzero(mask)[:MAX_EXAMPLES]


def _where(raw: RawCandles, i: int) -> str:
    return f"{raw.row_label} {int(raw.rows[i]):,} ({format_time(raw.times_ns[i])})"

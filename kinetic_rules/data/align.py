"""Join other timeframes and other pairs onto the base candles without look-ahead.

A candle is known only once it has closed. The value of an `other` candle with open
time T and length tf therefore appears on the first base candle that closes at or
after T + tf: base candle b (open time, length base_tf) sees it when
b + base_tf >= T + tf. Before any other candle is visible the result is NaN.

When the other series has a hole (a missing candle of another pair, an exchange
outage), the last visible value carries forward: a base candle always shows the most
recent closed value there is, never a value from the future.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import pandas as pd

from kinetic_rules.data.candles import timeframe_ns

Aligned = TypeVar("Aligned", pd.DataFrame, pd.Series)


def align_to_base(
    base_index: pd.DatetimeIndex,
    base_timeframe: str,
    other: Aligned,
    other_timeframe: str,
) -> Aligned:
    """`other` reindexed onto `base_index` as each base candle would have seen it at its close.

    Columns that cannot hold NaN (bool, int) are upcast by pandas where values are
    not yet visible. O(n), or O(n log n) (a binary search per base candle) when `other`
    misses candles of its grid.
    """
    other_index = other.index
    if not isinstance(other_index, pd.DatetimeIndex):
        raise ValueError("align_to_base: `other` must be indexed by candle open times")
    position = visible_positions(base_index, base_timeframe, other_index, other_timeframe)
    visible = position >= 0
    if len(other) == 0:
        taken = other.reindex(base_index)
        return taken
    taken = other.iloc[np.where(visible, position, 0)]
    taken.index = base_index
    if visible.all():
        return taken
    if isinstance(taken, pd.DataFrame):
        return taken.where(np.broadcast_to(visible[:, None], taken.shape))
    return taken.where(visible)


def _open_times(index: pd.DatetimeIndex, what: str) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    if index.tz is None:
        raise ValueError(f"align_to_base: {what} must be timezone-aware (UTC open times)")
    if not index.is_monotonic_increasing:
        raise ValueError(f"align_to_base: {what} must be sorted by open time")
    return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)


def visible_positions(
    base_index: pd.DatetimeIndex,
    base_timeframe: str,
    other_index: pd.DatetimeIndex,
    other_timeframe: str,
) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    """For each base candle, the position of the latest `other` candle closed by its close, or -1.

    The same rule as `align_to_base`, as positions: many series read from one other
    timeframe or pair share them, so they are computed once and reused.
    """
    base_open = _open_times(base_index, "base_index")
    other_open = _open_times(other_index, "other")
    return positions_by_close(base_open, base_timeframe, other_open, other_timeframe)


def positions_by_close(
    base_open: np.ndarray, base_timeframe: str, other_open: np.ndarray, other_timeframe: str
) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    """`visible_positions` on sorted UTC open times in nanoseconds, unchecked (hot paths).

    When `other` has every candle of its grid, the count of its candles closed by a time
    is a floor division, exact in integers: no binary search per base candle.
    """
    step = timeframe_ns(other_timeframe)
    base_close = base_open + timeframe_ns(base_timeframe)
    if len(other_open) and bool(np.all(np.diff(other_open) == step)):
        closed: np.ndarray[tuple[int], np.dtype[np.int64]]
        closed = np.asarray(base_close - other_open[0], dtype=np.int64)
        closed //= step  # candles of `other` closed by each base close (negative: none)
        np.clip(closed, 0, len(other_open), out=closed)
        closed -= 1
        return closed
    other_close = other_open + step
    return np.searchsorted(other_close, base_close, side="right") - 1

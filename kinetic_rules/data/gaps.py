"""What to do about missing candles: keep the holes, or fill them the way freqtrade does.

`keep` hands out the stored candles as they are: a window of 20 candles then reaches
back past the hole. `fill` inserts, for every candle missing between the first and
the last one held, a candle with no trades: open, high, low and close at the previous
close, volume and quote volume zero. Candle counts then equal durations, and an
independent freqtrade run (which fills the same way) sees the same candles.

The store is never changed: filling happens where candles are handed to a run, the
same way in a backtest, a replay and a live session, so that all three agree.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import pandas as pd

from kinetic_rules.data.candles import (
    COLUMNS,
    PRICE_COLUMNS,
    bucket_origin_ns,
    has_known_grid,
    is_quote_volume_estimated,
    mark_quote_volume,
    timeframe_ns,
    times_ns,
)
from kinetic_rules.data.validate import count_gaps

GapPolicy = Literal["keep", "fill"]
GAP_POLICIES: tuple[str, ...] = get_args(GapPolicy)
FILLED_ATTR = "gaps_filled"  # frame.attrs: candles a fill inserted
PRICES = frozenset(PRICE_COLUMNS)


def fill_gaps(
    frame: pd.DataFrame,
    timeframe: str,
    previous: tuple[int, float] | None = None,
) -> pd.DataFrame:
    """The candles with every missing one inserted at the previous close (volume zero).

    `previous` is the (open time in ns, close) of a candle held before `frame` (a live
    window's newest): holes between it and `frame` are filled too. Timeframes without a
    grid exchanges agree on (3d) are returned as they are. `attrs["gaps_filled"]` counts
    the inserted candles.
    """
    times = times_ns(frame.index)
    if not has_known_grid(timeframe) or not len(times):
        return _marked(frame, 0)
    step = timeframe_ns(timeframe)
    closes = frame["close"].to_numpy(dtype=np.float64)
    if previous is not None and previous[0] < times[0]:
        times = np.r_[previous[0], times]
        closes = np.r_[previous[1], closes]
        lead = 1
    else:
        lead = 0
    holes, missing = count_gaps(times, step)
    if not holes:
        return _marked(frame, 0)
    # every candle's position on the grid from the first; a missing one takes the close
    # of the last candle held before it
    slots = (times - times[0]) // step
    full = np.arange(int(slots[-1]) + 1, dtype=np.int64)
    held = np.searchsorted(slots, full, side="right") - 1
    is_real = slots[held] == full
    carried = closes[held]
    columns = {}
    for name in COLUMNS:
        values = np.r_[np.full(lead, np.nan), frame[name].to_numpy(dtype=np.float64)]
        filler = carried if name in PRICES else np.zeros(len(full))
        columns[name] = np.where(is_real, values[held], filler)
    keep = slice(lead, None)  # the previous candle is the caller's already
    index = pd.DatetimeIndex(
        pd.to_datetime(times[0] + full[keep] * step, unit="ns", utc=True), name=frame.index.name
    )
    filled = pd.DataFrame({name: values[keep] for name, values in columns.items()}, index=index)
    filled.attrs.update(frame.attrs)
    mark_quote_volume(filled, estimated=is_quote_volume_estimated(frame))
    return _marked(filled, missing)


def fills_until(
    previous: tuple[int, float], timeframe: str, close_ns: int, columns: tuple[str, ...]
) -> pd.DataFrame:
    """The no-trade candles after `previous` (open time, close) that closed by `close_ns`.

    A live window has no later candle to show that one is missing: once the candles
    of a newer close have arrived, one that closed earlier and is still absent is.
    """
    step = timeframe_ns(timeframe)
    if not has_known_grid(timeframe):
        return pd.DataFrame({name: [] for name in columns}, dtype=np.float64)
    origin = bucket_origin_ns(timeframe)
    last = (close_ns - step - origin) // step * step + origin  # newest open closed by then
    times = np.arange(previous[0] + step, last + 1, step, dtype=np.int64)
    values = {name: np.full(len(times), previous[1] if name in PRICES else 0.0) for name in columns}
    index = pd.DatetimeIndex(pd.to_datetime(times, unit="ns", utc=True), name="date")
    return pd.DataFrame(values, index=index)


def apply_gap_policy(frame: pd.DataFrame, timeframe: str, policy: str) -> pd.DataFrame:
    """The candles a run reads under `policy`."""
    if policy == "fill":
        return fill_gaps(frame, timeframe)
    return frame


def gap_candles(frame: pd.DataFrame, timeframe: str, policy: str) -> int:
    """For reports: the candles a fill inserted, or those missing (kept as holes)."""
    if policy == "fill":
        return int(frame.attrs.get(FILLED_ATTR, 0))
    if not has_known_grid(timeframe):
        return 0
    return count_gaps(times_ns(frame.index), timeframe_ns(timeframe))[1]


def _marked(frame: pd.DataFrame, filled: int) -> pd.DataFrame:
    frame.attrs[FILLED_ATTR] = filled
    return frame

"""Candle times as Timestamps, each made once.

The portfolio names a moment at every decision, fill and freed slot, and the same few
moments come back again and again: an entry fills at the open that closed its signal
candle, a trade's exit time is its last fill's. Making a pandas Timestamp costs more than
a decision's arithmetic, so the engine keeps times as integer nanoseconds and makes each
Timestamp once, here, when a trade or a slot needs one.
"""

from __future__ import annotations

import weakref
from datetime import tzinfo

import numpy as np
import pandas as pd

LIMIT = 1 << 20  # Timestamps kept (about 100 MB at most); past it the memo starts again

_MADE: dict[tuple[int, tzinfo | None], pd.Timestamp] = {}
_INDEXES: dict[int, tuple[weakref.ref[pd.DatetimeIndex], np.ndarray | None, tzinfo | None]] = {}


def moment(nanoseconds: int, tz: tzinfo | None) -> pd.Timestamp:
    """The Timestamp of `nanoseconds` since the epoch in `tz` (None: a naive time)."""
    key = (nanoseconds, tz)
    made = _MADE.get(key)
    if made is None:
        if len(_MADE) >= LIMIT:
            _MADE.clear()
        made = _MADE[key] = pd.Timestamp(nanoseconds, tz=tz)
    return made


def moment_at(index: pd.DatetimeIndex, position: int) -> pd.Timestamp:
    """`index[position]`, made once per time."""
    times, tz = index_times(index)
    if times is None:  # not kept in nanoseconds: pandas knows best
        stamp: pd.Timestamp = index[position]
        return stamp
    return moment(int(times[position]), tz)


def position_at(index: pd.DatetimeIndex, stamp: pd.Timestamp) -> int:
    """`index.searchsorted(stamp)`, on the index's times kept in nanoseconds."""
    times, _ = index_times(index)
    if times is None:
        return int(index.searchsorted(stamp))
    return int(times.searchsorted(stamp.value))


def later(stamp: pd.Timestamp, step: pd.Timedelta) -> pd.Timestamp:
    """`stamp + step`, made once per time (a sum keeps the finer unit: nanoseconds)."""
    if stamp.unit != "ns":
        later_stamp: pd.Timestamp = stamp + step
        return later_stamp
    return moment(stamp.value + step.value, stamp.tz)


def index_times(index: pd.DatetimeIndex) -> tuple[np.ndarray | None, tzinfo | None]:
    """The index's times as int64 nanoseconds (None when it keeps another unit) and its
    time zone, read from pandas once while the index lives."""
    key = id(index)
    known = _INDEXES.get(key)
    if known is None or known[0]() is not index:
        times = np.asarray(index.asi8, dtype=np.int64) if index.unit == "ns" else None
        known = (weakref.ref(index, lambda _: _INDEXES.pop(key, None)), times, index.tz)
        _INDEXES[key] = known
    return known[1], known[2]

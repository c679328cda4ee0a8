"""Candle windows for incremental evaluation: columns that grow at the end, and series.

A live (pair, timeframe) keeps its last `size` candles. Each column, and each series
computed on it, is a `Tape`: appends are amortized O(1), and nothing handed out before
is ever written over, so signals given to the engine at one close stay as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kinetic_rules.compile.interpret import Value, as_array
from kinetic_rules.data.align import positions_by_close
from kinetic_rules.data.candles import timeframe_ns
from kinetic_rules.errors import DataError
from kinetic_rules.lang import ast
from kinetic_rules.lang.names import LIVE_NAMES

Grow = Callable[[int], np.ndarray]  # the values of the k newest candles


class Tape:
    """A column that grows at its end and keeps its last `size` values.

    Appends are amortized O(1) and never write over values handed out before: a full
    tape moves its last values to a new array, so earlier views stay as they were.
    """

    def __init__(self, size: int, dtype: Any) -> None:
        self.size = size
        self._data = np.empty(2 * size + 16, dtype=dtype)
        self._start = self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self._data.dtype)

    def extend(self, values: np.ndarray) -> None:
        count = len(values)
        if self._end + count > len(self._data):
            kept = self._data[max(self._start, self._end - self.size) : self._end]
            data = np.empty(max(2 * self.size + 16, len(kept) + count + self.size), self.dtype)
            data[: len(kept)] = kept
            self._data, self._start, self._end = data, 0, len(kept)
        self._data[self._end : self._end + count] = values
        self._end += count
        self._start = max(self._start, self._end - self.size)

    def view(self) -> np.ndarray:
        """The values kept, read-only: they are shared with everything that reads them."""
        view = self._data[self._start : self._end]
        view.flags.writeable = False
        return view

    def set_last(self, value: float) -> None:
        """Fill in the newest value before anything has read it (a live-only input)."""
        self._data[self._end - 1] = value

    def last(self, count: int) -> np.ndarray:
        view = self._data[self._end - count : self._end]
        view.flags.writeable = False
        return view


@dataclass(eq=False)
class Series:
    """One node's values on one window, and how to compute those of newer candles."""

    tape: Tape | None  # None: a constant
    constant: Value = None
    rows: int = 0  # candles of the window it has values for, counted since the start
    grow: Grow | None = None

    def chunk(self, count: int) -> Value:
        return self.constant if self.tape is None else self.tape.last(count)

    def full(self, length: int) -> np.ndarray:
        return as_array(self.constant, length) if self.tape is None else self.tape.view()


@dataclass(eq=False)
class CandleWindow:
    """The last `size` candles of one (pair, timeframe), column by column, and the series
    computed on them in the order they depend on each other."""

    pair: str
    timeframe: str
    size: int
    names: tuple[str, ...]  # candle columns
    times: Tape = field(init=False)  # open times, UTC nanoseconds
    columns: dict[str, Tape] = field(init=False)
    rows: int = 0  # candles since the window started (it keeps the last `size`)
    synced: int = 0  # rows every series had values for at the last sync
    series: dict[ast.Node, Series] = field(default_factory=dict)
    order: list[Series] = field(default_factory=list)
    regime: Series | None = None
    market: list[Series] | None = None  # the plan's market series, when this is a base window
    alignments: dict[tuple[str, str], Alignment] = field(default_factory=dict)
    read_until: int = np.iinfo(np.int64).min  # newest close of a candle that read this one
    gapped: bool = False  # candles have been missing since it started (compile/time_windows.py)
    _index: tuple[int, pd.DatetimeIndex] | None = None

    def __post_init__(self) -> None:
        self.times = Tape(self.size, np.int64)
        self.columns = {name: Tape(self.size, np.float64) for name in self.names}

    @property
    def length(self) -> int:
        return len(self.times)

    def index(self) -> pd.DatetimeIndex:
        """Open times as a DatetimeIndex, built again only when candles were added."""
        if self._index is None or self._index[0] != self.rows:
            self._index = (self.rows, pd.DatetimeIndex(self.times.view().view("M8[ns]"), tz="UTC"))
        return self._index[1]

    def newest(self) -> int | None:
        return int(self.times.last(1)[0]) if self.length else None

    def column(self, name: str, count: int) -> np.ndarray:
        """The newest `count` values of a candle column (the rules' view of it)."""
        if name == "quote_volume" and name not in self.columns:
            volume, close = self.columns["volume"].last(count), self.columns["close"].last(count)
            return np.asarray(volume * close, dtype=np.float64)
        if name not in self.columns:
            if name in LIVE_NAMES:  # a live-only input, absent from candles: undefined
                return np.full(count, np.nan)
            raise DataError(f"{self.pair} {self.timeframe} candles have no '{name}' column")
        return self.columns[name].last(count)

    def supply(self, values: Mapping[str, float]) -> bool:
        """Give the newest candle the live-only inputs read at its close. Only a candle no
        series has read yet takes them (what was computed stays as it was); True if taken."""
        if not self.length or (self.order and self.synced >= self.rows):
            return False
        for name, value in values.items():
            tape = self.columns.get(name)
            if tape is not None and name in LIVE_NAMES:
                tape.set_last(value)
        return True

    def append(self, times: np.ndarray, columns: Mapping[str, np.ndarray]) -> None:
        self.times.extend(times)
        for name, tape in self.columns.items():
            values = columns.get(name)
            tape.extend(values if values is not None else np.full(len(times), np.nan))
        self.rows += len(times)

    def forget(self) -> None:
        """Drop every series: they start over from the candles the window holds."""
        self.series, self.order, self.regime, self.market = {}, [], None, None
        self.alignments = {}
        self.read_until = np.iinfo(np.int64).min


class Alignment:
    """Where the newest base candles find their latest closed candle of another window.

    Shared by every series the base window reads from that window, and computed once
    per close; it also notes, on the other window, the newest close that has read it.
    """

    def __init__(self, base: CandleWindow, other: CandleWindow) -> None:
        self._base, self._other = base, other
        self._step = timeframe_ns(base.timeframe)
        self._cached: tuple[tuple[int, int, int], np.ndarray] | None = None

    def positions(self, count: int) -> np.ndarray:
        base, other = self._base, self._other
        key = (base.rows, other.rows, count)
        if self._cached is None or self._cached[0] != key:
            opens = base.times.last(count)
            found = positions_by_close(opens, base.timeframe, other.times.view(), other.timeframe)
            if count:
                other.read_until = max(other.read_until, int(opens[-1]) + self._step)
            self._cached = (key, found)
        return self._cached[1]


def candle_columns(candles: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Open times (UTC nanoseconds, sorted, unique: the last of duplicates) and columns."""
    if not len(candles):
        return np.empty(0, np.int64), {str(name): np.empty(0) for name in candles.columns}
    index = candles.index
    if not isinstance(index, pd.DatetimeIndex):
        index = pd.DatetimeIndex(index)
    if index.tz is None:
        raise ValueError("candles must be indexed by timezone-aware (UTC) open times")
    times = np.asarray(index.as_unit("ns").asi8, dtype=np.int64)
    names = [str(name) for name in candles.columns]
    try:
        grid = candles.to_numpy(dtype=np.float64, na_value=np.nan)
        columns = {name: grid[:, i] for i, name in enumerate(names)}
    except (TypeError, ValueError):  # a column that is not a number: left out
        columns = {
            str(name): candles[name].to_numpy(dtype=np.float64, na_value=np.nan)
            for name in candles.columns
            if pd.api.types.is_numeric_dtype(candles[name])
        }
    if len(times) > 1 and not (np.diff(times) > 0).all():
        order = np.argsort(times, kind="stable")
        times = times[order]
        keep = np.ones(len(times), dtype=bool)
        keep[:-1] = times[1:] != times[:-1]  # of equal times, the last given
        times = times[keep]
        columns = {k: v[order][keep] for k, v in columns.items()}
    return times, columns


def unchanged(window: CandleWindow, times: np.ndarray, columns: Mapping[str, Any]) -> bool:
    """True if every given candle not newer than the window's is already in it, equal
    (or older than a full window keeps, so it would be dropped anyway)."""
    kept = window.times.view()
    old = times <= kept[-1]
    if len(kept) == window.size:
        old &= times >= kept[0]
    where = np.searchsorted(kept, times[old])
    if (where >= len(kept)).any() or (kept[where] != times[old]).any():
        return False  # a candle inserted between two the window holds
    for name, tape in window.columns.items():
        given = columns.get(name)
        if given is None or name in LIVE_NAMES:  # live inputs are not the candle's own
            continue
        if not np.array_equal(tape.view()[where], given[old], equal_nan=True):
            return False
    return True

"""Evaluate a plan as candles arrive: every series extended by the new candles only.

The batch evaluator (evaluate.py) computes each series over all candles at once. A live
bot receives one candle per pair at each close, and computing its windows again costs
their whole length every time. Here each series keeps its values and grows by the new
rows: functions through their streams (functions/_stream.py), arithmetic, comparisons
and conditions on the new rows alone, offsets (`x[3]`) from the values kept, other
timeframes and pairs by the same alignment rule as the batch.

What comes out is exactly what the batch evaluator gives over every candle since the
windows were filled, bit for bit (tests/compile/test_incremental.py), while memory stays
bounded: each (pair, timeframe) keeps its last `size` candles and the values on them.
So an EMA or a latch remembers everything since the session began, as in a backtest.

A candle that arrives out of order — a correction of one already seen, or a candle
of another timeframe or pair after a base candle that should have seen it — cannot
be appended. Then every series starts over from the windows as they are: correct,
and as slow once as the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kinetic_rules.compile.evaluate import (
    PairSignals,
    Value,
    as_array,
    binary,
    class_number,
    compare,
    regime_tables,
    take_visible,
)
from kinetic_rules.compile.plan import Plan
from kinetic_rules.data.align import positions_by_close
from kinetic_rules.data.candles import timeframe_ns
from kinetic_rules.errors import DataError
from kinetic_rules.functions import REGISTRY, ArgKind
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
        return self._data[self._start : self._end]

    def last(self, count: int) -> np.ndarray:
        return self._data[self._end - count : self._end]


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
    series: dict[ast.Node, Series] = field(default_factory=dict)
    order: list[Series] = field(default_factory=list)
    regime: Series | None = None
    market: list[Series] | None = None  # the plan's market series, when this is a base window
    alignments: dict[tuple[str, str], Alignment] = field(default_factory=dict)
    read_until: int = np.iinfo(np.int64).min  # newest close of a candle that read this one
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


class IncrementalEvaluator:
    """The batch evaluator's values for a plan, extended close by close."""

    def __init__(self, plan: Plan, sizes: Mapping[str, int], default_size: int) -> None:
        self.plan = plan
        self.sizes = dict(sizes)
        self.default_size = default_size
        self.restarts = 0  # times every series had to start over (out-of-order candles)
        self._windows: dict[tuple[str, str], CandleWindow] = {}
        self._tables = regime_tables(plan)
        self._syncing: set[int] = set()

    # candles -----------------------------------------------------------------------------
    def window(self, pair: str, timeframe: str) -> CandleWindow | None:
        return self._windows.get((pair, timeframe))

    def append(self, pair: str, timeframe: str, candles: pd.DataFrame) -> None:
        """Add candles of (pair, timeframe); one seen before is replaced, never duplicated."""
        times, columns = _columns(candles)
        window = self._windows.get((pair, timeframe))
        if window is None:
            size = self.sizes.get(timeframe, self.default_size)
            window = CandleWindow(pair, timeframe, size, tuple(columns))
            self._windows[(pair, timeframe)] = window
        newest = window.newest()
        if newest is not None and len(times) and times[0] <= newest:
            if not _unchanged(window, times, columns):
                self._rewrite(window, times, columns)
                return
            fresh = times > newest
            times, columns = times[fresh], {k: v[fresh] for k, v in columns.items()}
        if not len(times):
            return
        first_close = int(times[0]) + timeframe_ns(timeframe)
        too_many = len(times) > window.size and bool(window.series)
        if first_close <= window.read_until or too_many:
            self._start_over()  # candles that read this window have been computed without it
        window.append(times, columns)

    def _rewrite(self, window: CandleWindow, times: np.ndarray, columns: dict[str, Any]) -> None:
        """Merge changed or inserted candles into the window, then start every series over."""
        kept = pd.DataFrame(
            {name: tape.view() for name, tape in window.columns.items()},
            index=window.times.view(),
        )
        merged = pd.concat([kept, pd.DataFrame(columns, index=times)])
        merged = merged[~merged.index.duplicated(keep="last")].sort_index()
        merged = merged.iloc[-window.size :]
        fresh = CandleWindow(window.pair, window.timeframe, window.size, window.names)
        fresh.append(
            merged.index.to_numpy(np.int64), {str(k): merged[k].to_numpy() for k in merged}
        )
        self._windows[(window.pair, window.timeframe)] = fresh
        self._start_over()

    def _start_over(self) -> None:
        self.restarts += 1
        for window in self._windows.values():
            window.forget()

    # values ------------------------------------------------------------------------------
    def evaluate(self, pair: str) -> PairSignals:
        """Every market series of the plan for `pair`, over its window."""
        base = self._window_of(pair, self.plan.timeframe)
        self._sync(base)
        regime = self._regime(base)
        if base.market is None:
            base.market = [self._series(node, base, regime) for node in self.plan.market]
        nodes, length = self.plan.market, base.length
        values = {
            node: series.full(length) for node, series in zip(nodes, base.market, strict=True)
        }
        codes = regime.full(length) if regime is not None else None
        return PairSignals(pair, base.index(), values, codes)

    def _window_of(self, pair: str, timeframe: str) -> CandleWindow:
        window = self._windows.get((pair, timeframe))
        if window is None or not window.length:
            raise DataError(f"no {timeframe} candles for {pair}")
        return window

    def _sync(self, window: CandleWindow) -> None:
        """Extend every series of the window to its newest candle, dependencies first."""
        if id(window) in self._syncing:
            return
        self._syncing.add(id(window))
        try:
            for series in window.order:
                if series.rows < window.rows:
                    assert series.tape is not None and series.grow is not None
                    series.tape.extend(series.grow(window.rows - series.rows))
                    series.rows = window.rows
        finally:
            self._syncing.discard(id(window))

    def _regime(self, base: CandleWindow) -> Series | None:
        classes = self.plan.strategy.regime
        if not classes:
            return None
        if base.regime is None:
            rules = [self._series(rule.node, base, None) for _, rule in classes]

            def grow(count: int) -> np.ndarray:
                codes = np.full(count, len(classes) - 1, dtype=np.int64)
                decided = np.zeros(count, dtype=bool)
                for index, rule in enumerate(rules):
                    holds = as_array(rule.chunk(count), count).astype(bool)
                    codes[holds & ~decided] = index
                    decided |= holds
                return codes

            base.regime = self._register(base, grow)
        return base.regime

    def _series(self, node: ast.Node, window: CandleWindow, regime: Series | None) -> Series:
        found = window.series.get(node)
        if found is None:
            found = self._make(node, window, regime)
            window.series[node] = found
        return found

    def _register(self, window: CandleWindow, grow: Grow) -> Series:
        """A new series: its values over the whole window now, extended at every sync."""
        values = grow(window.length)
        series = Series(Tape(window.size, values.dtype), rows=window.rows, grow=grow)
        series.tape.extend(values)  # type: ignore[union-attr]
        window.order.append(series)
        return series

    def _make(self, node: ast.Node, window: CandleWindow, regime: Series | None) -> Series:
        match node:
            case ast.Number(value=v) | ast.Bool(value=v) | ast.String(value=v):
                return Series(None, v)
            case ast.Name(id="regime"):
                assert regime is not None, "regime read outside the base timeframe"
                return regime
            case ast.Name(id=name) if name in self._tables:
                assert regime is not None
                table, codes = self._tables[name], regime
                return self._register(window, lambda k: table[codes.chunk(k)])
            case ast.Name(id=name):
                return self._register(window, lambda k: window.column(name, k))
            case ast.Call():
                return self._call(node, window, regime)
            case ast.Context(operand=operand, timeframe=tf, pair=pair):
                tf, pair = tf or window.timeframe, pair or window.pair
                if tf == window.timeframe and pair == window.pair:
                    return self._series(operand, window, None)
                return self._context(operand, window, tf, pair)
            case ast.History(operand=operand, offset=offset):
                assert isinstance(offset, ast.Number)
                inner = self._series(operand, window, regime)
                return self._register(window, _shifted(inner, int(offset.value)))
        parts = [self._series(child, window, regime) for child in node.children()]
        combine = self._elementwise(node)
        if all(part.tape is None for part in parts):
            return Series(None, combine([part.constant for part in parts]))
        return self._register(window, lambda k: combine([part.chunk(k) for part in parts]))

    def _elementwise(self, node: ast.Node) -> Callable[[list[Value]], Any]:
        """The operator of a node that works candle by candle, as the batch applies it."""
        plan = self.plan
        match node:
            case ast.Unary(op="not"):
                return lambda v: np.logical_not(v[0])
            case ast.Unary():
                return lambda v: np.negative(v[0])
            case ast.Binary(op=op):
                return lambda v: binary(op, v[0], v[1])
            case ast.Compare(rest=rest):
                ops = [op for op, _ in rest]

                def chain(v: list[Value]) -> Value:
                    left = class_number(plan, v[0])
                    result: Value = True
                    for op, right in zip(ops, v[1:], strict=True):
                        right = class_number(plan, right)
                        result = np.logical_and(result, compare(op, left, right))
                        left = right
                    return result

                return chain
            case ast.IfElse():
                return lambda v: np.where(v[0], v[1], v[2])
        raise TypeError(f"cannot evaluate {type(node).__name__}")

    def _call(self, node: ast.Call, window: CandleWindow, regime: Series | None) -> Series:
        function = REGISTRY.get(node.func)
        assert function is not None
        parts: list[tuple[Series | None, Any]] = []  # (series argument, or None and a constant)
        for spec, arg in zip(function.args, node.args, strict=True):
            if spec.kind.is_series:
                parts.append((self._series(arg, window, regime), None))
            elif spec.kind is ArgKind.LIST:
                assert isinstance(arg, ast.ListLit)
                parts.append((None, tuple(i.value for i in arg.items if isinstance(i, ast.Number))))
            else:
                assert isinstance(arg, ast.Number)
                count = spec.kind in (ArgKind.INT, ArgKind.WINDOW)
                parts.append((None, int(arg.value) if count else float(arg.value)))
        stream = function.stream() if function.stream is not None else None

        def grow(k: int) -> np.ndarray:
            if stream is None:  # no stream: the function over the whole window, newest rows kept
                size = window.length
                inputs = [window.column(name, size) for name in function.inputs]
                args = [as_array(s.full(size), size) if s else c for s, c in parts]
                return np.asarray(function.impl(*inputs, *args))[size - k :]
            inputs = [window.column(name, k) for name in function.inputs]
            args = [as_array(s.chunk(k), k) if s else c for s, c in parts]
            return np.asarray(stream(*inputs, *args))

        return self._register(window, grow)

    def _context(self, operand: ast.Node, base: CandleWindow, tf: str, pair: str) -> Series:
        other = self._window_of(pair, tf)
        self._sync(other)
        inner = self._series(operand, other, None)
        alignment = base.alignments.get((pair, tf))
        if alignment is None:
            alignment = base.alignments[(pair, tf)] = Alignment(base, other)

        def grow(k: int) -> np.ndarray:
            self._sync(other)
            assert inner.tape is None or inner.rows == other.rows, "contexts read in a cycle"
            values = as_array(inner.full(other.length), other.length)
            return take_visible(values, alignment.positions(k))

        return self._register(base, grow)


def _shifted(inner: Series, offset: int) -> Grow:
    """`x[offset]`: each new row takes the value `offset` rows before it (the batch's shift)."""
    before: list[np.ndarray] = []  # the last `offset` values, once known

    def grow(k: int) -> np.ndarray:
        values = as_array(inner.chunk(k), k)
        if values.dtype.kind == "i":  # regime class numbers: undefined before the start
            values = values.astype(np.float64)
        if offset == 0:
            return values
        if not before:
            fill: Any = False if values.dtype == bool else np.nan
            before.append(np.full(offset, fill, dtype=values.dtype))
        joined = np.concatenate((before[0], values))
        before[0] = joined[len(joined) - offset :]
        return joined[:k]

    return grow


def _columns(candles: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Open times (UTC nanoseconds, sorted, unique: the last of duplicates) and columns."""
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


def _unchanged(window: CandleWindow, times: np.ndarray, columns: Mapping[str, Any]) -> bool:
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
        if given is None:
            continue
        if not np.array_equal(tape.view()[where], given[old], equal_nan=True):
            return False
    return True

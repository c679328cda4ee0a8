"""Evaluate a plan as candles arrive: every series extended by the new candles only.

This is the interpreter's append back-end (compile/interpret.py says what each node
means); the batch evaluator (evaluate.py) computes each series over all candles at once. A live
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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kinetic_rules.compile.candle_windows import (
    Alignment,
    CandleWindow,
    Grow,
    Series,
    Tape,
    candle_columns,
    unchanged,
)
from kinetic_rules.compile.evaluate import PairSignals
from kinetic_rules.compile.interpret import (
    BoundCall,
    GridStream,
    as_array,
    combine,
    history_values,
    interpret,
    open_stream,
    regime_codes,
    regime_tables,
    run,
    take_visible,
)
from kinetic_rules.compile.plan import Plan
from kinetic_rules.compile.predict import model_values
from kinetic_rules.compile.time_windows import has_hole
from kinetic_rules.data.candles import has_known_grid, timeframe_ns
from kinetic_rules.errors import DataError
from kinetic_rules.functions.registry import Function
from kinetic_rules.lang import ast
from kinetic_rules.models import InForce, TrainingRecord, default_cache

if TYPE_CHECKING:
    from kinetic_rules.models.background import BackgroundTrainer


class IncrementalEvaluator:
    """The batch evaluator's values for a plan, extended close by close."""

    def __init__(self, plan: Plan, sizes: Mapping[str, int], default_size: int) -> None:
        self.plan = plan
        self.sizes = dict(sizes)
        self.default_size = default_size
        self.restarts = 0  # times every series had to start over (out-of-order candles)
        self._windows: dict[tuple[str, str], CandleWindow] = {}
        self.tables = regime_tables(plan)
        # duration windows that span time, when candles go missing (compile/time_windows.py)
        self._time_calls = plan.windows_span_time and any(
            isinstance(n, ast.Call) and n.spans_time for node in plan.market for n in node.walk()
        )
        self._syncing: set[int] = set()
        self.models = default_cache()  # trained models, shared with later runs on disk
        self.model_records: list[TrainingRecord] = []  # trainings done as candles arrived
        self.models_in_force = InForce()  # one prediction per new candle, not a retraining
        # Paper and live sessions: retrain in a worker process, keeping the previous model
        # until the new one is ready. None (replays): train in line, as a backtest does.
        self.trainer: BackgroundTrainer | None = None

    # candles -----------------------------------------------------------------------------
    def window(self, pair: str, timeframe: str) -> CandleWindow | None:
        return self._windows.get((pair, timeframe))

    def windows(self) -> list[CandleWindow]:
        return list(self._windows.values())

    def append(self, pair: str, timeframe: str, candles: pd.DataFrame) -> None:
        """Add candles of (pair, timeframe); one seen before is replaced, never duplicated."""
        times, columns = candle_columns(candles)
        window = self._windows.get((pair, timeframe))
        if window is None:
            size = self.sizes.get(timeframe, self.default_size)
            window = CandleWindow(pair, timeframe, size, tuple(columns))
            self._windows[(pair, timeframe)] = window
        newest = window.newest()
        if newest is not None and len(times) and times[0] <= newest:
            if not unchanged(window, times, columns):
                self._rewrite(window, times, columns)
                return
            fresh = times > newest
            times, columns = times[fresh], {k: v[fresh] for k, v in columns.items()}
        if not len(times):
            return
        if self._time_calls and not window.gapped and _opens_hole(window, times, timeframe):
            window.gapped = True  # duration windows now span time: computed again on the grid
            if any(isinstance(n, ast.Call) and n.spans_time for n in window.series):
                self._start_over()
        first_close = int(times[0]) + timeframe_ns(timeframe)
        behind = window.rows + len(times) - window.synced  # rows its series will have to add
        if first_close <= window.read_until or (behind > window.size and window.series):
            # Candles that should have been read were not, or more than the window keeps.
            self._start_over()
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
        fresh.gapped = window.gapped or _opens_hole(fresh, fresh.times.view(), window.timeframe)
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
            window.synced = window.rows
        finally:
            self._syncing.discard(id(window))

    def _regime(self, base: CandleWindow) -> Series | None:
        classes = self.plan.strategy.regime
        if not classes:
            return None
        if base.regime is None:
            rules = [self._series(rule.node, base, None) for _, rule in classes]
            base.regime = self._register(
                base, lambda k: regime_codes([rule.chunk(k) for rule in rules], k)
            )
        return base.regime

    def _series(self, node: ast.Node, window: CandleWindow, regime: Series | None) -> Series:
        found = window.series.get(node)
        if found is None:
            found = interpret(node, _Growing(self, window, regime))
            window.series[node] = found
        return found

    def _register(self, window: CandleWindow, grow: Grow) -> Series:
        """A new series: its values over the whole window now, extended at every sync.

        The window has just been synced, so every series it holds is as new as this one.
        """
        values = grow(window.length)
        series = Series(Tape(window.size, values.dtype), rows=window.rows, grow=grow)
        series.tape.extend(values)  # type: ignore[union-attr]
        window.order.append(series)
        window.synced = window.rows
        return series


class _Growing:
    """The append back-end of the interpreter: each node a series on one candle window,
    extended by the new candles only."""

    def __init__(
        self, evaluator: IncrementalEvaluator, window: CandleWindow, regime: Series | None
    ) -> None:
        self.evaluator, self.window, self.regime = evaluator, window, regime

    def value(self, node: ast.Node) -> Series:
        return self.evaluator._series(node, self.window, self.regime)

    def constant(self, value: float | bool | str) -> Series:
        return Series(None, value)

    def name(self, name: str) -> Series:
        window, regime = self.window, self.regime
        if name == "regime":
            assert regime is not None, "regime read outside the base timeframe"
            return regime
        tables = self.evaluator.tables
        if name in tables:
            assert regime is not None
            table = tables[name]
            return self.evaluator._register(window, lambda k: table[regime.chunk(k)])
        return self.evaluator._register(window, lambda k: window.column(name, k))

    def call(self, call: BoundCall[Series]) -> Series:
        window, function = self.window, call.function
        parts: list[tuple[Series | None, Any]] = [  # (series argument, or None and a constant)
            (a, None) if series else (None, a)  # type: ignore[misc]
            for a, series in zip(call.arguments, call.series, strict=True)
        ]
        if call.node.spans_time and self.evaluator.plan.windows_span_time and window.gapped:
            return self.evaluator._register(window, _on_grid(function, window, parts))
        stream = open_stream(function)

        def grow(k: int) -> np.ndarray:
            if stream is None:  # no stream: the function over the whole window, newest rows kept
                size = window.length
                inputs = [window.column(name, size) for name in function.inputs]
                args = [as_array(s.full(size), size) if s else c for s, c in parts]
                return np.asarray(run(function, inputs, args))[size - k :]
            inputs = [window.column(name, k) for name in function.inputs]
            args = [as_array(s.chunk(k), k) if s else c for s, c in parts]
            return np.asarray(stream(*inputs, *args))

        return self.evaluator._register(window, grow)

    def history(self, operand: Series, offset: int) -> Series:
        return self.evaluator._register(self.window, _shifted(operand, offset))

    def combine(self, node: ast.Node, parts: list[Series]) -> Series:
        plan = self.evaluator.plan
        if all(part.tape is None for part in parts):
            return Series(None, combine(node, [part.constant for part in parts], plan))
        return self.evaluator._register(
            self.window, lambda k: combine(node, [part.chunk(k) for part in parts], plan)
        )

    def model(self, node: ast.Predict, parts: list[Series]) -> Series:
        """The new rows of a model: trained on the window as the batch trains on all
        history (the window keeps what training reads, compile/predict.py)."""
        evaluator, window = self.evaluator, self.window

        def grow(k: int) -> np.ndarray:
            size = window.length
            arrays = [as_array(part.full(size), size) for part in parts]
            times = window.times.view()
            step = timeframe_ns(window.timeframe)
            return model_values(
                node, arrays, times, step, size - k, evaluator.models, window.pair,
                evaluator.model_records, evaluator.models_in_force, evaluator.trainer,
            )  # fmt: skip

        return evaluator._register(window, grow)

    def context(self, operand: ast.Node, timeframe: str | None, pair: str | None) -> Series:
        evaluator, base = self.evaluator, self.window
        tf, pair = timeframe or base.timeframe, pair or base.pair
        if tf == base.timeframe and pair == base.pair:
            return evaluator._series(operand, base, None)
        other = evaluator._window_of(pair, tf)
        evaluator._sync(other)
        inner = evaluator._series(operand, other, None)
        alignment = base.alignments.get((pair, tf))
        if alignment is None:
            alignment = base.alignments[(pair, tf)] = Alignment(base, other)

        def grow(k: int) -> np.ndarray:
            evaluator._sync(other)
            assert inner.tape is None or inner.rows == other.rows, "contexts read in a cycle"
            values = as_array(inner.full(other.length), other.length)
            return take_visible(values, alignment.positions(k))

        return evaluator._register(base, grow)


def _opens_hole(window: CandleWindow, times: np.ndarray, timeframe: str) -> bool:
    """Whether appending `times` leaves candles missing (on a grid all agree on)."""
    if not has_known_grid(timeframe) or not len(times):
        return False
    step = timeframe_ns(timeframe)
    newest = window.newest()
    after_newest = newest is not None and newest < int(times[0]) - step
    return after_newest or has_hole(times, step)


def _on_grid(
    function: Function, window: CandleWindow, parts: list[tuple[Series | None, Any]]
) -> Grow:
    """A duration window on the time grid, chunk by chunk (compile/time_windows.py)."""
    stream = GridStream(function, timeframe_ns(window.timeframe))

    def grow(k: int) -> np.ndarray:
        reach = min(k + 1, window.length)
        times, closes = window.times.last(reach), window.column("close", reach)
        before = None
        if reach > k:  # the candle before the new ones: where their grid starts
            before = (int(times[0]), float(closes[0]))
            times, closes = times[1:], closes[1:]
        inputs = {name: window.column(name, k) for name in function.inputs}
        args = [as_array(s.chunk(k), k) if s else c for s, c in parts]
        return stream(times, inputs, closes, args, before)

    return grow


def _shifted(inner: Series, offset: int) -> Grow:
    """`x[offset]`: each new row takes the value `offset` rows before it (the batch's shift)."""
    before: list[np.ndarray] = []  # the last `offset` values, once known

    def grow(k: int) -> np.ndarray:
        values = history_values(as_array(inner.chunk(k), k))
        if offset == 0:
            return values
        if not before:
            fill: Any = False if values.dtype == bool else np.nan
            before.append(np.full(offset, fill, dtype=values.dtype))
        joined = np.concatenate((before[0], values))
        before[0] = joined[len(joined) - offset :]
        return joined[:k]

    return grow

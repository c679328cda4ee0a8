"""Evaluate a plan over whole columns: one pair at a time, every series once.

This is the interpreter's whole-array back-end (compile/interpret.py says what each
node means).

Backtests and replays hand over all history through a `Feed`; live trading extends the
same values close by close instead (incremental.py). Series of other pairs and
timeframes are computed on their own candles, cached across pairs (BTC's daily EMA is
computed once for forty pairs), and aligned so that a value appears only on the first
base candle that closes at or after its own candle closed. Given a `SeriesCache`, series
are also kept from one evaluation to the next (a search's trials, series_cache.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kinetic_rules.compile.interpret import (
    BoundCall,
    Value,
    as_array,
    call_on_grid,
    combine,
    history_values,
    interpret,
    quiet_numbers,
    regime_codes,
    regime_tables,
    run,
    shift,
    take_visible,
)
from kinetic_rules.compile.plan import Plan
from kinetic_rules.compile.predict import model_values
from kinetic_rules.compile.series_cache import FrameKey, SeriesCache, frame_key
from kinetic_rules.compile.time_windows import has_hole
from kinetic_rules.data.align import visible_positions
from kinetic_rules.data.candles import has_known_grid, timeframe_ns
from kinetic_rules.errors import DataError
from kinetic_rules.lang import ast
from kinetic_rules.lang.checked import Rule
from kinetic_rules.lang.names import LIVE_NAMES
from kinetic_rules.models import TrainingRecord, default_cache

Feed = Callable[[str, str], pd.DataFrame]  # (pair, timeframe) -> candles indexed by open time


@dataclass
class Frame:
    """The candles of one (pair, timeframe) and every series computed on them."""

    pair: str
    timeframe: str
    candles: pd.DataFrame
    memo: dict[ast.Node, Value] = field(default_factory=dict)
    positions: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # alignment
    key: FrameKey | None = None  # its series' key in a SeriesCache, once asked for
    _times: np.ndarray | None = field(default=None, init=False, repr=False)
    _hole: bool | None = field(default=None, init=False, repr=False)

    @property
    def length(self) -> int:
        return len(self.candles)

    def times(self) -> np.ndarray:
        """Open times, UTC nanoseconds (read from pandas once)."""
        times = self._times
        if times is None:
            index = pd.DatetimeIndex(self.candles.index)
            times = np.asarray(index.as_unit("ns").asi8, np.int64)
            times.setflags(write=False)  # shared by every series computed on the frame
            self._times = times
        return times

    def has_hole(self) -> bool:
        """Candles are missing between the first and the last (on a grid all agree on)."""
        if self._hole is None:
            known = has_known_grid(self.timeframe)
            self._hole = known and has_hole(self.times(), timeframe_ns(self.timeframe))
        return self._hole

    def column(self, name: str) -> np.ndarray:
        if name == "quote_volume" and "quote_volume" not in self.candles:
            estimate = self.candles["volume"].to_numpy() * self.candles["close"].to_numpy()
            return np.asarray(estimate, dtype=np.float64)
        if name not in self.candles:
            if name in LIVE_NAMES:  # a live-only input, absent from candles: undefined
                return np.full(self.length, np.nan)
            raise DataError(f"{self.pair} {self.timeframe} candles have no '{name}' column")
        return np.asarray(self.candles[name].to_numpy(), dtype=np.float64)


@dataclass
class PairSignals:
    """Everything the rules saw for one pair: the engine's and the reports' input."""

    pair: str
    index: pd.DatetimeIndex
    values: dict[ast.Node, np.ndarray]
    regime: np.ndarray | None  # class number per candle, or None without a regime section

    def rule(self, rule: Rule) -> np.ndarray:
        return self.values[rule.node]

    def all_of(self, rules: dict[str, Rule]) -> np.ndarray:
        result = np.ones(len(self.index), dtype=bool)
        for rule in rules.values():
            result &= self.values[rule.node]
        return result


class Evaluator:
    """`cache`: series kept across evaluations of plans over the same candles (a search's
    trials); None, as in a plain backtest, computes every series here."""

    def __init__(self, plan: Plan, feed: Feed, cache: SeriesCache | None = None) -> None:
        self.plan = plan
        self.feed = feed
        self.cache = cache
        if cache is not None:
            cache.new_run()
        self._shared: dict[tuple[str, str], Frame] = {}  # frames of other pairs and timeframes
        self.tables = regime_tables(plan)
        self._named = {need.pair for need in plan.data if need.pair is not None}
        self._regime_names = frozenset({"regime", *self.tables})
        self.models = default_cache()  # trained models, shared with later runs on disk
        self.model_records: list[TrainingRecord] = []  # every training, for reports

    def cache_key(self, frame: Frame, node: ast.Node) -> FrameKey | None:
        """Where `node`'s series on `frame` is kept in the cache, or None if it is not:
        no cache, a candle column (free to read), or a series that reads the regime
        (whose rules may hold param values its own tree does not show)."""
        if self.cache is None or isinstance(node, ast.Name):
            return None
        if self.cache.reads(node, self._regime_names):
            return None
        if frame.key is None:
            plan = self.plan
            frame.key = frame_key(
                frame.pair, frame.timeframe, frame.times(), plan.gaps, plan.durations
            )
        return frame.key

    def evaluate(self, pair: str, extra: tuple[ast.Node, ...] = ()) -> PairSignals:
        """Every market series of the plan for `pair`, plus any `extra` trade-free nodes."""
        base = self._frame(pair, self.plan.timeframe, shared=False)
        values: dict[ast.Node, np.ndarray] = {}
        with quiet_numbers():  # the operators' arithmetic, once for the whole pair
            regime = self._regime(base)
            scope = _Columns(self, base, regime)
            for node in (*self.plan.market, *extra):
                if node not in values:
                    values[node] = as_array(scope.value(node), base.length)
        for key in [k for k in self._shared if k[0] == pair and pair not in self._named]:
            del self._shared[key]  # the pair's own other timeframes: no other pair reads them
        return PairSignals(pair, pd.DatetimeIndex(base.candles.index), values, regime)

    def frame(self, pair: str, timeframe: str) -> Frame:
        """The candles of another pair or timeframe, shared by every pair that reads them."""
        return self._frame(pair, timeframe, shared=True)

    def _frame(self, pair: str, timeframe: str, shared: bool) -> Frame:
        key = (pair, timeframe)
        if shared and key in self._shared:
            return self._shared[key]
        candles = self.feed(pair, timeframe)
        if candles is None or len(candles) == 0:
            raise DataError(f"no {timeframe} candles for {pair}")
        frame = Frame(pair, timeframe, candles)
        if shared:
            self._shared[key] = frame
        return frame

    def _regime(self, base: Frame) -> np.ndarray | None:
        classes = self.plan.strategy.regime
        if not classes:
            return None
        scope = _Columns(self, base, None)
        return regime_codes([scope.value(rule.node) for _, rule in classes], base.length)


class _Columns:
    """The batch back-end of the interpreter: values over every candle of one frame."""

    def __init__(self, evaluator: Evaluator, frame: Frame, regime: np.ndarray | None) -> None:
        self.evaluator, self.frame, self.regime = evaluator, frame, regime

    def value(self, node: ast.Node) -> Value:
        found = self.frame.memo.get(node)
        if found is not None:
            return found
        if isinstance(node, ast.Number | ast.Bool | ast.String):
            return interpret(node, self)
        cache = self.evaluator.cache
        key = self.evaluator.cache_key(self.frame, node)
        if cache is not None and key is not None:
            found = cache.get(key, node)
            if found is not None:
                self.frame.memo[node] = found
                return found
        value = interpret(node, self)
        if cache is not None and key is not None:
            cache.put(key, node, value)
        self.frame.memo[node] = value
        return value

    def constant(self, value: float | bool | str) -> Value:
        return value

    def name(self, name: str) -> Value:
        if name == "regime":
            return self.regime
        tables = self.evaluator.tables
        if name in tables:
            return tables[name][self.regime]
        return self.frame.column(name)

    def call(self, call: BoundCall[Value]) -> Value:
        frame, function = self.frame, call.function
        length = frame.length
        arguments = [
            as_array(a, length) if series else a
            for a, series in zip(call.arguments, call.series, strict=True)
        ]
        if call.node.spans_time and self.evaluator.plan.windows_span_time and frame.has_hole():
            named = {name: frame.column(name) for name in function.inputs}
            step = timeframe_ns(frame.timeframe)
            closes = frame.column("close")
            return call_on_grid(function, named, closes, arguments, frame.times(), step)
        return run(function, [frame.column(name) for name in function.inputs], arguments)

    def history(self, operand: Value, offset: int) -> Value:
        return shift(history_values(as_array(operand, self.frame.length)), offset)

    def combine(self, node: ast.Node, parts: list[Value]) -> Value:
        return combine(node, parts, self.evaluator.plan)

    def model(self, node: ast.Predict, parts: list[Value]) -> Value:
        frame, evaluator = self.frame, self.evaluator
        arrays = [as_array(part, frame.length) for part in parts]
        step = timeframe_ns(frame.timeframe)
        return model_values(
            node, arrays, frame.times(), step, 0, evaluator.models, frame.pair,
            evaluator.model_records,
        )  # fmt: skip

    def context(self, operand: ast.Node, timeframe: str | None, pair: str | None) -> Value:
        base = self.frame
        tf, pair = timeframe or base.timeframe, pair or base.pair
        if tf == base.timeframe and pair == base.pair:
            return _Columns(self.evaluator, base, None).value(operand)
        other = self.evaluator.frame(pair, tf)
        values = as_array(_Columns(self.evaluator, other, None).value(operand), other.length)
        positions = base.positions.get((pair, tf))
        if positions is None:
            positions = visible_positions(
                pd.DatetimeIndex(base.candles.index),
                base.timeframe,
                pd.DatetimeIndex(other.candles.index),
                tf,
            )
            base.positions[(pair, tf)] = positions
        return take_visible(values, positions)

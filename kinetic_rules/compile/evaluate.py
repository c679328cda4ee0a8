"""Evaluate a plan over whole columns: one pair at a time, every series once.

Backtests and replays hand over all history through a `Feed`; live trading extends the
same values close by close instead (incremental.py). Series of other pairs and
timeframes are computed on their own candles, cached across pairs (BTC's daily EMA is
computed once for forty pairs), and aligned so that a value appears only on the first
base candle that closes at or after its own candle closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kinetic_rules.compile.plan import Plan
from kinetic_rules.compile.time_windows import batch_call, has_hole
from kinetic_rules.data.align import visible_positions
from kinetic_rules.data.candles import has_known_grid, timeframe_ns
from kinetic_rules.errors import DataError
from kinetic_rules.functions import REGISTRY, ArgKind
from kinetic_rules.lang import ast
from kinetic_rules.lang.checked import Rule
from kinetic_rules.lang.names import LIVE_NAMES

Feed = Callable[[str, str], pd.DataFrame]  # (pair, timeframe) -> candles indexed by open time
Value = Any  # np.ndarray, or a Python scalar for constants


@dataclass
class Frame:
    """The candles of one (pair, timeframe) and every series computed on them."""

    pair: str
    timeframe: str
    candles: pd.DataFrame
    memo: dict[ast.Node, Value] = field(default_factory=dict)
    positions: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # alignment

    @property
    def length(self) -> int:
        return len(self.candles)

    def times(self) -> np.ndarray:
        """Open times, UTC nanoseconds."""
        return np.asarray(pd.DatetimeIndex(self.candles.index).as_unit("ns").asi8, np.int64)

    def has_hole(self) -> bool:
        """Candles are missing between the first and the last (on a grid all agree on)."""
        if not has_known_grid(self.timeframe):
            return False
        return has_hole(self.times(), timeframe_ns(self.timeframe))

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
    def __init__(self, plan: Plan, feed: Feed) -> None:
        self.plan = plan
        self.feed = feed
        self._shared: dict[tuple[str, str], Frame] = {}  # frames of other pairs and timeframes
        self._tables = regime_tables(plan)
        self._named = {need.pair for need in plan.data if need.pair is not None}

    def evaluate(self, pair: str, extra: tuple[ast.Node, ...] = ()) -> PairSignals:
        """Every market series of the plan for `pair`, plus any `extra` trade-free nodes."""
        base = self._frame(pair, self.plan.timeframe, shared=False)
        regime = self._regime(base)
        values: dict[ast.Node, np.ndarray] = {}
        for node in (*self.plan.market, *extra):
            if node not in values:
                values[node] = as_array(self._eval(node, base, regime), base.length)
        for key in [k for k in self._shared if k[0] == pair and pair not in self._named]:
            del self._shared[key]  # the pair's own other timeframes: no other pair reads them
        return PairSignals(pair, pd.DatetimeIndex(base.candles.index), values, regime)

    # frames ------------------------------------------------------------------------------
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
        codes = np.full(base.length, len(classes) - 1, dtype=np.int64)
        decided = np.zeros(base.length, dtype=bool)
        for index, (_, rule) in enumerate(classes):
            holds = as_array(self._eval(rule.node, base, None), base.length).astype(bool)
            codes[holds & ~decided] = index
            decided |= holds
        return codes

    # evaluation ----------------------------------------------------------------------------
    def _eval(self, node: ast.Node, frame: Frame, regime: np.ndarray | None) -> Value:
        found = frame.memo.get(node)
        if found is not None:
            return found
        value = self._compute(node, frame, regime)
        if not isinstance(node, ast.Number | ast.Bool | ast.String):
            frame.memo[node] = value
        return value

    def _compute(self, node: ast.Node, frame: Frame, regime: np.ndarray | None) -> Value:
        match node:
            case ast.Number(value=v):
                return v
            case ast.Bool(value=v):
                return v
            case ast.String(value=v):
                return v
            case ast.Name(id="regime"):
                return regime
            case ast.Name(id=name) if name in self._tables:
                return self._tables[name][regime]
            case ast.Name(id=name):
                return frame.column(name)
            case ast.Call():
                return self._call(node, frame, regime)
            case ast.Unary(op=op, operand=operand):
                inner = self._eval(operand, frame, regime)
                return np.logical_not(inner) if op == "not" else np.negative(inner)
            case ast.Binary(op=op, left=left, right=right):
                a, b = self._eval(left, frame, regime), self._eval(right, frame, regime)
                return binary(op, a, b)
            case ast.Compare(first=first, rest=rest):
                left = class_number(self.plan, self._eval(first, frame, regime))
                result: Value = True
                for op, operand in rest:
                    right = class_number(self.plan, self._eval(operand, frame, regime))
                    result = np.logical_and(result, compare(op, left, right))
                    left = right
                return result
            case ast.IfElse(condition=c, then=t, otherwise=o):
                cond = self._eval(c, frame, regime)
                return np.where(cond, self._eval(t, frame, regime), self._eval(o, frame, regime))
            case ast.History(operand=operand, offset=offset):
                assert isinstance(offset, ast.Number)
                inner = as_array(self._eval(operand, frame, regime), frame.length)
                if inner.dtype.kind == "i":  # regime class numbers: undefined before the start
                    inner = inner.astype(np.float64)
                return shift(inner, int(offset.value))
            case ast.Context(operand=operand, timeframe=tf, pair=pair):
                return self._context(operand, tf or frame.timeframe, pair or frame.pair, frame)
        raise TypeError(f"cannot evaluate {type(node).__name__}")

    def _call(self, node: ast.Call, frame: Frame, regime: np.ndarray | None) -> Value:
        function = REGISTRY.get(node.func)
        assert function is not None
        inputs = [frame.column(name) for name in function.inputs]
        args: list[Value] = []
        for spec, arg in zip(function.args, node.args, strict=True):
            if spec.kind.is_series:
                args.append(as_array(self._eval(arg, frame, regime), frame.length))
            elif spec.kind is ArgKind.LIST:
                assert isinstance(arg, ast.ListLit)
                args.append(tuple(i.value for i in arg.items if isinstance(i, ast.Number)))
            else:
                assert isinstance(arg, ast.Number)
                count = spec.kind in (ArgKind.INT, ArgKind.WINDOW)
                args.append(int(arg.value) if count else float(arg.value))
        if node.spans_time and self.plan.windows_span_time and frame.has_hole():
            named = {name: frame.column(name) for name in function.inputs}
            step = timeframe_ns(frame.timeframe)
            return batch_call(function, named, frame.column("close"), args, frame.times(), step)
        return function.impl(*inputs, *args)

    def _context(self, operand: ast.Node, tf: str, pair: str, base: Frame) -> Value:
        if tf == base.timeframe and pair == base.pair:
            return self._eval(operand, base, None)
        other = self._frame(pair, tf, shared=True)
        values = as_array(self._eval(operand, other, None), other.length)
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


def take_visible(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values[positions], undefined (NaN, or False) where no candle is visible (-1)."""
    visible = positions >= 0
    taken = values[np.where(visible, positions, 0)] if len(values) else values[:0]
    if values.dtype == bool:
        return taken & visible if len(values) else np.zeros(len(positions), dtype=bool)
    if not len(values):
        return np.full(len(positions), np.nan)
    return np.where(visible, taken, np.nan)


def regime_tables(plan: Plan) -> dict[str, np.ndarray]:
    """Each regime table as one value per class, indexed by class number."""
    regime = plan.strategy.spec.regime
    classes = [name for name, _ in plan.strategy.regime]
    return {
        name: np.asarray([values[c] for c in classes], dtype=np.float64)
        for name, values in (regime.tables.items() if regime else ())
    }


def class_number(plan: Plan, value: Value) -> Value:
    """Regime names compare as class numbers."""
    if isinstance(value, str):
        names = [name for name, _ in plan.strategy.regime]
        return names.index(value)
    return value


def as_array(value: Value, length: int) -> np.ndarray:
    """A series of `length` values; a constant (a scalar or a 0-d array, which numpy gives
    for e.g. `if 1 == $p then 0 else 1`) is repeated on every candle."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return np.full(length, value.item(), dtype=value.dtype)
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, bool | np.bool_):
        return np.full(length, bool(value))
    return np.full(length, float(value))


_ARITHMETIC = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
_LOGIC = {"and": np.logical_and, "or": np.logical_or}
_COMPARISON = {
    "<": np.less, "<=": np.less_equal, ">": np.greater,
    ">=": np.greater_equal, "==": np.equal, "!=": np.not_equal,
}  # fmt: skip


def binary(op: str, a: Value, b: Value) -> Value:
    if op in _LOGIC:
        return _LOGIC[op](a, b)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        result = _ARITHMETIC[op](a, b)
    # A division by zero or an overflow is undefined, never infinite.
    if isinstance(result, np.ndarray):
        return np.where(np.isfinite(result), result, np.nan)
    return result if np.isfinite(result) else np.nan


def compare(op: str, a: Value, b: Value) -> Value:
    with np.errstate(invalid="ignore"):
        return _COMPARISON[op](a, b)


def shift(values: np.ndarray, n: int) -> np.ndarray:
    """values[t - n] at t; undefined (NaN, or False) for the first n candles."""
    if n == 0:
        return values
    out = np.empty_like(values)
    fill: Any = False if values.dtype == bool else np.nan
    out[:n] = fill
    out[n:] = values[:-n] if n < len(values) else values[:0]
    if n >= len(values):
        out[:] = fill
    return out

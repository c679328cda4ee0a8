"""The one interpreter of the language: what each node means, and how a call binds.

A strategy is evaluated in three settings: over whole columns (backtests, evaluate.py),
close by close as candles arrive (live, incremental.py), and over the candles of an
open trade or at a portfolio decision (trade_eval.py). Each setting is a back-end that
says how it holds values — arrays, growing series, slices — and where candles of other
timeframes come from. What a node means, how a call's arguments are converted and how
a function is called are decided here alone, so the three cannot disagree;
tests/test_layers.py fails if any other module evaluates an operator or calls a
function's implementation.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import numpy as np

from kinetic_rules.compile.time_windows import Grid, evaluate_on_grid, time_form
from kinetic_rules.functions import REGISTRY, ArgKind
from kinetic_rules.functions.registry import Arg, Function, Stream
from kinetic_rules.lang import ast
from kinetic_rules.lang.names import CONTEXT_FUNCTIONS, LIVE_NAMES

if TYPE_CHECKING:  # the plan reads `bind` for warm-ups; the interpreter reads plans
    from kinetic_rules.compile.plan import Plan

Value = Any  # np.ndarray, or a Python scalar for constants
Constant = int | float | tuple[float, ...]
V = TypeVar("V")


@dataclass(frozen=True)
class BoundCall(Generic[V]):
    """A call with its arguments in the implementation's order: each series argument as
    the back-end holds its value, each constant converted to what the function takes."""

    node: ast.Call
    function: Function
    arguments: tuple[V | Constant, ...]
    series: tuple[bool, ...]  # which arguments are series (the others are constants)


class Backend(Protocol[V]):
    """How one setting holds values; `interpret` decides what they are."""

    def value(self, node: ast.Node) -> V:
        """A sub-expression's value, as this back-end keeps (and reuses) it."""
        ...

    def constant(self, value: float | bool | str) -> V: ...

    def name(self, name: str) -> V:
        """A candle column, `regime`, a regime table, or a trade or portfolio value."""
        ...

    def call(self, call: BoundCall[V]) -> V: ...

    def history(self, operand: V, offset: int) -> V:
        """`x[offset]`: the operand's value `offset` candles before."""
        ...

    def context(self, operand: ast.Node, timeframe: str | None, pair: str | None) -> V:
        """`x@1h[BTC/USDT]`: the operand on other candles, aligned to these."""
        ...

    def combine(self, node: ast.Node, parts: list[V]) -> V:
        """An operator (`not`, `+`, `<`, `if`) over its operands' values (see `combine`)."""
        ...

    def model(self, node: ast.Predict, parts: list[V]) -> V:
        """A model's probability (parts: its features, then its label) or its rolling
        accuracy (parts: its probability, then its label), see compile/predict.py."""
        ...


def interpret(node: ast.Node, backend: Backend[V]) -> V:
    """The value of `node` in `backend`: the single dispatch over the language's nodes."""
    if type(node) in _OPERATORS:  # by type first: they are most of the nodes evaluated
        return backend.combine(node, list(map(backend.value, node.children())))
    if type(node) is ast.Name:
        return backend.name(node.id)
    if type(node) is ast.Number:
        return backend.constant(node.value)
    match node:
        case ast.Bool(value=v) | ast.String(value=v):
            return backend.constant(v)
        case ast.Call():
            function, bound, series = bound_call(node)
            values = tuple(backend.value(a) if isinstance(a, ast.Node) else a for a in bound)
            return backend.call(BoundCall(node, function, values, series))
        case ast.History(operand=operand, offset=offset):
            assert isinstance(offset, ast.Number)
            return backend.history(backend.value(operand), int(offset.value))
        case ast.Context(operand=operand, timeframe=timeframe, pair=pair):
            return backend.context(operand, timeframe, pair)
        case ast.Predict(output="accuracy"):
            scored = [backend.value(node.probability()), backend.value(node.label)]
            return backend.model(node, scored)
        case ast.Predict(features=features, label=label):
            return backend.model(node, [backend.value(part) for part in (*features, label)])
    raise TypeError(f"cannot evaluate {type(node).__name__}")


_OPERATORS = frozenset({ast.Unary, ast.Binary, ast.Compare, ast.IfElse})


# -- calls --------------------------------------------------------------------------------
def function_of(name: str) -> Function:
    """A registered function, or a portfolio function (its value comes from the portfolio)."""
    function = REGISTRY.get(name)
    if function is None:
        function = CONTEXT_FUNCTIONS[name][0]
    return function


_BOUND: dict[int, tuple[ast.Call, Function, tuple[ast.Node | Constant, ...], tuple[bool, ...]]]
_BOUND = {}
_BOUND_LIMIT = 1 << 16  # calls kept; past it the memo starts again


def bound_call(
    node: ast.Call,
) -> tuple[Function, tuple[ast.Node | Constant, ...], tuple[bool, ...]]:
    """The call's function, its arguments as `bind` gives them and which are series, found
    once per call in the tree (a portfolio evaluates its rules at every decision, a trade
    its rules at every window). Kept by the node itself, which the memo holds: the series
    evaluated are this call's own, and errors point at them."""
    known = _BOUND.get(id(node))
    if known is None or known[0] is not node:
        if len(_BOUND) >= _BOUND_LIMIT:
            _BOUND.clear()
        function = function_of(node.func)
        bound = tuple(bind(function, node.args))
        series = tuple(isinstance(a, ast.Node) for a in bound)
        known = _BOUND[id(node)] = (node, function, bound, series)
    return known[1], known[2], known[3]


def bind(function: Function, args: Sequence[ast.Node]) -> list[ast.Node | Constant]:
    """A checked call's arguments in order: series stay nodes to evaluate, constants become
    what the implementation takes (INT and WINDOW an int, NUMBER a float, LIST a tuple).
    The checker has filled in defaults and enforced the limits (functions/registry.py)."""
    bound: list[ast.Node | Constant] = []
    for spec, arg in zip(function.args, args, strict=True):
        if spec.kind.is_series:
            bound.append(arg)
        elif spec.kind is ArgKind.LIST:
            assert isinstance(arg, ast.ListLit)
            bound.append(tuple(i.value for i in arg.items if isinstance(i, ast.Number)))
        else:
            assert isinstance(arg, ast.Number)
            bound.append(constant_argument(spec, arg.value))
    return bound


_COUNTS = (ArgKind.INT, ArgKind.WINDOW)


def constants(function: Function, args: Sequence[ast.Node]) -> dict[str, Constant]:
    """A call's constant arguments by name, as `bind` converts them (for warm-up rules)."""
    return {
        spec.name: value
        for spec, value in zip(function.args, bind(function, args), strict=True)
        if not isinstance(value, ast.Node)
    }


def constant_argument(spec: Arg, value: float) -> int | float:
    return int(value) if spec.kind in _COUNTS else float(value)


def run(function: Function, inputs: Sequence[np.ndarray], arguments: Sequence[Value]) -> Value:
    """One call of the implementation over whole arrays (functions/registry.py's convention)."""
    return function.impl(*inputs, *arguments)


def open_stream(function: Function) -> Stream | None:
    """A fresh stream of the function for one call site, or None if it has none."""
    return function.stream() if function.stream is not None else None


def call_on_grid(
    function: Function,
    inputs: dict[str, np.ndarray],
    closes: np.ndarray,
    arguments: Sequence[Any],
    times: np.ndarray,
    step: int,
) -> np.ndarray:
    """A duration window over all of a series' candles, on their time grid."""
    summing = REGISTRY.get("sum")
    assert summing is not None
    return evaluate_on_grid(
        function,
        inputs,
        closes,
        arguments,
        Grid.of(times, step),
        np.nan,  # nothing is missing before the first candle
        lambda target, spread: np.asarray(run(target, [], spread)),
        lambda spread: np.asarray(run(summing, [], spread)),
    )


class GridStream:
    """The live side of `call_on_grid`: each chunk of new candles, with the missing ones
    before and among them, fed to the function's stream (and a stream of the count)."""

    def __init__(self, function: Function, step: int) -> None:
        self.function = function
        self.step = step
        target = REGISTRY.get(time_form(function.name).via)
        summing = REGISTRY.get("sum")
        assert target is not None and summing is not None
        stream, count = open_stream(target), open_stream(summing)
        assert stream is not None and count is not None
        self._stream: Stream = stream
        self._count: Stream = count

    def __call__(
        self,
        times: np.ndarray,
        inputs: dict[str, np.ndarray],
        closes: np.ndarray,
        arguments: Sequence[Any],
        before: tuple[int, float] | None,
    ) -> np.ndarray:
        grid = Grid.of(times, self.step, None if before is None else before[0])
        previous = before[1] if before is not None else np.nan
        return evaluate_on_grid(
            self.function,
            inputs,
            closes,
            arguments,
            grid,
            previous,
            lambda _target, spread: np.asarray(self._stream(*spread)),
            lambda spread: np.asarray(self._count(*spread)),
        )


# -- operators ----------------------------------------------------------------------------
def combine(node: ast.Node, values: Sequence[Value], plan: Plan) -> Value:
    """What an operator gives on its operands' values, candle by candle (or on scalars)."""
    if type(node) is ast.Binary:  # by type first: combined at most of the nodes evaluated
        return binary(node.op, values[0], values[1])
    if type(node) is ast.Compare and len(node.rest) == 1:  # `a < b`: one comparison, no chain
        return compare(
            node.rest[0][0], class_number(plan, values[0]), class_number(plan, values[1])
        )
    match node:
        case ast.Unary(op="not"):
            if type(values[0]) in _BOOLS:  # one candle: as numpy gives it, without the call
                return np.False_ if values[0] else np.True_
            return np.logical_not(values[0])
        case ast.Unary():
            return np.negative(values[0])
        case ast.Compare(rest=rest):
            left = class_number(plan, values[0])
            result: Value = True
            for (op, _), right in zip(rest, values[1:], strict=True):
                right = class_number(plan, right)
                result = np.logical_and(result, compare(op, left, right))
                left = right
            return result
        case ast.IfElse():
            condition, then, otherwise = values
            if type(condition) in _BOOLS and type(then) in _FLOATS and type(otherwise) in _FLOATS:
                # one candle choosing between two numbers: what np.where gives, a 0-d
                # float64 array, holding the chosen one (no arithmetic, so to the bit)
                return np.asarray(then if condition else otherwise, dtype=np.float64)
            return np.where(condition, then, otherwise)
    raise TypeError(f"{type(node).__name__} is no operator")


def operands(node: ast.Node) -> list[ast.Node]:
    """The sub-expressions whose values explain a verdict: both sides of comparisons, the
    parts of and/or, what `not` negates (shown by `explain`)."""
    match node:
        case ast.Compare(first=first, rest=rest):
            return [first, *(operand for _, operand in rest)]
        case ast.Binary(op="and" | "or", left=left, right=right):
            return [left, right, *operands(left), *operands(right)]
        case ast.Unary(op="not", operand=operand):
            return [operand, *operands(operand)]
    return []


def needed_inputs(node: ast.Node) -> set[str]:
    """Live-only names without which `node` is never defined (or never true): an
    undefined value spreads through every operator except these (compile/modes.py)."""
    match node:
        case ast.Name(id=name):
            return {name} if name in LIVE_NAMES else set()
        case ast.Binary(op="or", left=left, right=right):
            return needed_inputs(left) & needed_inputs(right)
        case ast.Unary(op="not"):
            return set()  # `not (spread < x)` holds when spread is undefined
        case ast.IfElse(then=then, otherwise=otherwise):
            return needed_inputs(then) & needed_inputs(otherwise)
    found: set[str] = set()
    for child in node.children():
        found |= needed_inputs(child)
    return found


def class_number(plan: Plan, value: Value) -> Value:
    """Regime names compare as class numbers."""
    if isinstance(value, str):
        names = [name for name, _ in plan.strategy.regime]
        return names.index(value)
    return value


_ARITHMETIC = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
_LOGIC = {"and": np.logical_and, "or": np.logical_or}
_SCALAR_COMPARISON = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}  # fmt: skip
_COMPARISON = {
    "<": np.less, "<=": np.less_equal, ">": np.greater,
    ">=": np.greater_equal, "==": np.equal, "!=": np.not_equal,
}  # fmt: skip


_QUIET: ContextVar[bool] = ContextVar("quiet_numbers", default=False)


@contextmanager
def quiet_numbers() -> Iterator[None]:
    """Numpy's floating-point warnings off for a whole evaluation: the operators give an
    undefined value, never a warning, for a division by zero or an overflow. Entered once
    around many evaluations (a backtest's portfolio loop, a pair's columns), it spares each
    operator entering numpy's error state itself; nested, it costs a look-up."""
    if _QUIET.get():
        yield
        return
    token = _QUIET.set(True)
    try:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            yield
    finally:
        _QUIET.reset(token)


def is_quiet() -> bool:
    """Inside `quiet_numbers`?"""
    return _QUIET.get()


_FLOATS = (float, np.float64)
_BOOLS = (bool, np.bool_)


def binary(op: str, a: Value, b: Value) -> Value:
    if op in _LOGIC:
        if type(a) in _BOOLS and type(b) in _BOOLS:  # one candle: as numpy gives it
            holds = (a and b) if op == "and" else (a or b)
            return np.True_ if holds else np.False_
        return _LOGIC[op](a, b)
    if type(a) in _FLOATS and type(b) in _FLOATS:  # one candle: plain IEEE arithmetic
        return _scalar_arithmetic(op, float(a), float(b))
    if _QUIET.get():
        result = _ARITHMETIC[op](a, b)
    else:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            result = _ARITHMETIC[op](a, b)
    # A division by zero or an overflow is undefined, never infinite.
    if isinstance(result, np.ndarray):
        if result.dtype == np.float64 and math.isfinite(np.add.reduce(result, axis=None)):
            return result  # all finite (one NaN or infinity makes the sum so): nothing to mask
        return np.where(np.isfinite(result), result, np.nan)
    return result if np.isfinite(result) else np.nan


def _scalar_arithmetic(op: str, a: float, b: float) -> float:
    """`binary` on two floats, to the bit what numpy gives (both are IEEE doubles), without
    numpy's per-call cost: a division by zero or an overflow is undefined here too."""
    try:
        if op == "+":
            result = a + b
        elif op == "-":
            result = a - b
        elif op == "*":
            result = a * b
        elif op == "/":
            result = a / b
        else:
            raise KeyError(op)
    except ZeroDivisionError:
        return math.nan
    return result if math.isfinite(result) else math.nan


def compare(op: str, a: Value, b: Value) -> Value:
    if type(a) in _FLOATS and type(b) in _FLOATS:  # one candle: IEEE comparison, as numpy's
        return np.True_ if _SCALAR_COMPARISON[op](float(a), float(b)) else np.False_
    if _QUIET.get():
        return _COMPARISON[op](a, b)
    with np.errstate(invalid="ignore"):
        return _COMPARISON[op](a, b)


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


def regime_codes(holds: Sequence[Value], length: int) -> np.ndarray:
    """Each candle's regime class: the first class whose rule holds, else the last one."""
    codes = np.full(length, len(holds) - 1, dtype=np.int64)
    decided = np.zeros(length, dtype=bool)
    for index, value in enumerate(holds):
        rule = as_array(value, length).astype(bool)
        codes[rule & ~decided] = index
        decided |= rule
    return codes


def history_values(values: np.ndarray) -> np.ndarray:
    """What `x[n]` shifts: regime class numbers become numbers, undefined before the start."""
    return values.astype(np.float64) if values.dtype.kind == "i" else values


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

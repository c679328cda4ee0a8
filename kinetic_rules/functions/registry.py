"""The function registry: every function a strategy can call, defined once.

The checker reads names, arities and argument kinds from here; the compiler
reads warm-ups and implementations; `docs/functions.md`, the JSON Schema hints
and `kinetic-rules functions` read the docs. Nothing about a function lives
anywhere else.

Calling convention of an implementation: the candle fields named in `inputs`
come first as float64 arrays, then every declared argument in order — series
as float64 (or bool) arrays, INT and WINDOW as int, NUMBER as float, LIST as
a tuple of floats. It returns one array of the input length: float64 with NaN
where the value is not yet defined, or bool (False where not yet defined).

A function may also have a stream (`Function.stream`), for the live runtime that
adds candles one close at a time: see `_stream.py` for the contract.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from kinetic_rules.units import Unit

Array = npt.NDArray[Any]
ConstArgs = Mapping[str, float | int | tuple[float, ...]]
# What a function's result is measured in: a fixed unit, or the name of the argument whose
# unit it takes (`ema(x, n)` is in x's unit).
UnitRule = Unit | str
Stream = Callable[..., Array]  # called like `impl`, with only the newest candles in its arrays
StreamFactory = Callable[[], Stream]  # a fresh stream, for one call site


class ArgKind(Enum):
    SERIES = "number series"  # any number: a column, an expression, or a constant
    BOOL_SERIES = "condition"  # any true/false expression
    INT = "whole number"  # a constant whole number, e.g. a period
    NUMBER = "number"  # a constant number, e.g. a multiplier
    WINDOW = "window"  # a constant count of candles, or a duration such as 24h
    LIST = "list"  # a constant list of numbers, e.g. [60, 70, 80]

    @property
    def is_series(self) -> bool:
        return self in (ArgKind.SERIES, ArgKind.BOOL_SERIES)


# The most candles a window, a period or a history offset may span: four years of 1m
# candles. Anything longer is a typo, and would only make the warm-up unreachable.
MAX_CANDLES = 4 * 365 * 24 * 60
MAX_LIST_ITEMS = 100  # items in a constant list, e.g. a step table


@dataclass(frozen=True)
class Arg:
    """One argument of a function, with the limits a constant value must keep.

    The limits are data, so the checker enforces them with a position, and the
    generated docs and `kinetic-rules functions` show the same words.
    """

    name: str
    kind: ArgKind
    doc: str
    default: float | int | None = None  # None: the argument is required
    minimum: float | None = None  # inclusive lower bound for constant arguments
    maximum: float | None = None  # inclusive upper bound for constant arguments
    increasing: bool = False  # a list whose items must rise strictly from left to right
    same_length_as: str | None = None  # a list with one item per item of that other list
    max_items: int = MAX_LIST_ITEMS  # a list holds 1 to this many items

    @property
    def required(self) -> bool:
        return self.default is None

    def limits(self) -> list[str]:
        """The limits in words, for the docs (e.g. "at least 1", "at most 100")."""
        words: list[str] = []
        if self.kind is ArgKind.LIST:
            words.append(f"1 to {self.max_items} items")
            if self.increasing:
                words.append("each item larger than the one before")
            if self.same_length_as:
                words.append(f"as many items as `{self.same_length_as}`")
            return words
        if self.minimum is not None:
            words.append(f"at least {_fmt(self.minimum)}")
        if self.maximum is not None:
            words.append(f"at most {_fmt(self.maximum)}")
        return words

    def problem(self, value: float | tuple[float, ...]) -> str | None:
        """Why a constant breaks this argument's limits, in plain words; None if it keeps them."""
        if isinstance(value, tuple):
            return self._list_problem(value)
        if not math.isfinite(value):
            return "must be a finite number"
        if self.kind in (ArgKind.INT, ArgKind.WINDOW) and not value.is_integer():
            return "must be a whole number"
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {_fmt(self.minimum)}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {_fmt(self.maximum)}"
        return None

    def _list_problem(self, items: tuple[float, ...]) -> str | None:
        if not items:
            return "needs at least one item"
        if len(items) > self.max_items:
            return f"holds at most {self.max_items} items, got {len(items)}"
        if not all(math.isfinite(item) for item in items):
            return "must hold finite numbers"
        if self.increasing:
            for before, after in pairwise(items):
                if not before < after:
                    return (
                        f"must increase from left to right, but {_fmt(after)} "
                        f"follows {_fmt(before)}"
                    )
        return None


@dataclass(frozen=True)
class Function:
    name: str
    category: str
    doc: str
    args: tuple[Arg, ...]
    returns: Literal["number", "bool"]
    impl: Callable[..., Array]
    warmup: Callable[[ConstArgs], int]
    inputs: tuple[str, ...] = ()  # candle fields passed implicitly, e.g. ("high", "low", "close")
    talib: str | None = None  # the TA-Lib function whose definition this follows
    example: str = ""
    stream: StreamFactory | None = None  # values extended candle by candle (see _stream.py)
    unit: UnitRule | None = None  # what the result is measured in; None: not declared
    alike: tuple[tuple[str, ...], ...] = ()  # arguments that must share a unit, e.g. min's a, b
    arg_units: Mapping[str, Unit] = field(default_factory=dict)  # units of constant arguments

    def arg(self, name: str) -> Arg | None:
        return next((a for a in self.args if a.name == name), None)

    def list_problems(self, lists: Mapping[str, tuple[float, ...]]) -> list[tuple[str, str]]:
        """(argument name, problem) for each list whose length must match another's."""
        found = []
        for arg in self.args:
            other = arg.same_length_as
            if other is None or arg.name not in lists or other not in lists:
                continue
            mine, theirs = len(lists[arg.name]), len(lists[other])
            if mine != theirs:
                found.append(
                    (arg.name, f"needs one item per item of '{other}': {mine} here, {theirs} there")
                )
        return found

    def unit_words(self) -> str:
        """The result's unit as the docs and `kinetic-rules functions` show it."""
        if isinstance(self.unit, Unit):
            return self.unit.value
        if self.unit is None:
            return "not declared"
        return f"same as {self.unit}"

    def signature(self) -> str:
        parts = []
        for a in self.args:
            parts.append(a.name if a.required else f"{a.name}={_fmt(a.default)}")
        return f"{self.name}({', '.join(parts)})"


def _fmt(value: float | int | None) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Registry:
    def __init__(self) -> None:
        self._functions: dict[str, Function] = {}

    def register(self, function: Function) -> Function:
        if function.name in self._functions:
            raise ValueError(f"function {function.name} registered twice")
        self._functions[function.name] = function
        return function

    def get(self, name: str) -> Function | None:
        return self._functions.get(name)

    def names(self) -> list[str]:
        return sorted(self._functions)

    def all(self) -> list[Function]:
        return [self._functions[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._functions


REGISTRY = Registry()


def no_warmup(_: ConstArgs) -> int:
    return 0


def window_warmup(*names: str, extra: int = 0) -> Callable[[ConstArgs], int]:
    """Warm-up of a windowed function: the largest named window, plus `extra`."""

    def warmup(args: ConstArgs) -> int:
        return max(int(args[n]) for n in names) + extra  # type: ignore[arg-type]

    return warmup


def as_float(values: Array) -> npt.NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64)

"""Evaluate expressions that read an open trade, over the candles of that trade.

The plan has already computed every trade-free part as a market series over all
history, so what is left is elementwise: slices of those series combined with the
trade's own arrays (`profit`, `bars_held`, …). Stops, trailing rules and trade-aware
exits are thus evaluated for a whole trade in a few numpy operations. Rules that read
the portfolio are evaluated the same way, at the closes where the portfolio decides.
This is the interpreter's slice back-end (compile/interpret.py says what each node means).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kinetic_rules.compile.evaluate import PairSignals
from kinetic_rules.compile.interpret import (
    BoundCall,
    as_array,
    combine,
    interpret,
    is_quiet,
    quiet_numbers,
    run,
)
from kinetic_rules.compile.plan import Plan
from kinetic_rules.lang import ast

# name -> scalar or array over the slice; a portfolio function's name -> its callable
TradeEnv = Mapping[str, Any]


def evaluate_span(
    plan: Plan, node: ast.Node, signals: PairSignals, lo: int, hi: int, env: TradeEnv
) -> np.ndarray:
    """Values of `node` for candles lo..hi-1 of `signals`, with trade names from `env`.
    A market series comes back as a view of the stored one: read it, never write to it."""
    stored = signals.values.get(node)
    if stored is not None:
        return np.asarray(stored[lo:hi])
    if is_quiet():
        value = np.asarray(_Span(plan, signals, lo, hi, env).value(node))
    else:
        with quiet_numbers():
            value = np.asarray(_Span(plan, signals, lo, hi, env).value(node))
    if value.ndim == 0:  # built from scalars only, e.g. `if side > 0 then 10% else 5%`
        return np.full(hi - lo, value[()])
    return value


def evaluate_points(
    plan: Plan, node: ast.Node, signals: PairSignals, points: np.ndarray, env: TradeEnv
) -> np.ndarray:
    """Values of `node` at the candles `points` of `signals` (sorted or not), with names
    from `env` as numbers or arrays over those candles: what `evaluate_at` gives at each,
    to the bit (the same operations, elementwise), in one evaluation. A backtest sizes
    every entry signal of a pair this way, instead of one decision at a time."""
    backend = _Points(plan, signals, points, env)
    if is_quiet():
        value = np.asarray(backend.value(node))
    else:
        with quiet_numbers():
            value = np.asarray(backend.value(node))
    if value.ndim == 0:
        return np.full(len(points), value[()])
    return value


def evaluate_at(plan: Plan, node: ast.Node, signals: PairSignals, local: int, env: TradeEnv) -> Any:
    """The value of `node` at candle `local` alone, as a number (or a bool): what
    `evaluate_span(…, local, local + 1, env)[0]` gives, to the bit, computed on scalars.
    A portfolio decision evaluates a few rules at one candle; arrays of one element
    would cost more than the arithmetic."""
    if is_quiet():
        value = _At(plan, signals, local, local + 1, env).value(node)
    else:
        with quiet_numbers():
            value = _At(plan, signals, local, local + 1, env).value(node)
    return value[()] if isinstance(value, np.ndarray) else value


class _Span:
    """Market series sliced to lo..hi, and the trade's or the portfolio's values."""

    __slots__ = ("env", "hi", "lo", "plan", "signals")

    def __init__(self, plan: Plan, signals: PairSignals, lo: int, hi: int, env: TradeEnv) -> None:
        self.plan, self.signals, self.lo, self.hi, self.env = plan, signals, lo, hi, env

    def value(self, node: ast.Node) -> Any:
        stored = self.signals.values.get(node)
        if stored is not None:
            return stored[self.lo : self.hi]
        return interpret(node, self)

    def constant(self, value: float | bool | str) -> Any:
        return value

    def name(self, name: str) -> Any:
        try:  # `env` may make a value when first asked for it (a dict's __missing__)
            return self.env[name]
        except KeyError:
            raise KeyError(f"no value for {name} in a trade expression") from None

    def call(self, call: BoundCall[Any]) -> Any:
        function = call.function
        if function.name in self.env:  # a portfolio function
            return self.env[function.name](*call.arguments)
        assert not function.inputs, "a call reading candles is a market series"
        length = self.hi - self.lo
        arguments = [
            as_array(a, length) if series else a
            for a, series in zip(call.arguments, call.series, strict=True)
        ]
        return run(function, [], arguments)

    def history(self, operand: Any, offset: int) -> Any:
        raise KeyError("no value for an offset in a trade expression")

    def context(self, operand: ast.Node, timeframe: str | None, pair: str | None) -> Any:
        raise KeyError("no value for another timeframe or pair in a trade expression")

    def combine(self, node: ast.Node, parts: list[Any]) -> Any:
        return combine(node, parts, self.plan)

    def model(self, node: ast.Predict, parts: list[Any]) -> Any:
        raise KeyError("a model's values are market series, computed with the plan")


class _At(_Span):
    """One candle: stored series read as their value there, calls made on one-element
    arrays (what every function takes) and unwrapped."""

    __slots__ = ()

    def value(self, node: ast.Node) -> Any:
        stored = self.signals.values.get(node)
        if stored is not None:
            return stored[self.lo]
        return interpret(node, self)

    def call(self, call: BoundCall[Any]) -> Any:
        function = call.function
        if function.name in self.env:  # a portfolio function
            return self.env[function.name](*call.arguments)
        assert not function.inputs, "a call reading candles is a market series"
        arguments = [
            _one(a) if series else a for a, series in zip(call.arguments, call.series, strict=True)
        ]
        value = run(function, [], arguments)
        return value[0] if isinstance(value, np.ndarray) and value.ndim == 1 else value


class _Points(_Span):
    """Chosen candles: stored series read there, names and calls as over a span as long."""

    __slots__ = ("points",)

    def __init__(self, plan: Plan, signals: PairSignals, points: np.ndarray, env: TradeEnv) -> None:
        super().__init__(plan, signals, 0, len(points), env)
        self.points = points

    def value(self, node: ast.Node) -> Any:
        stored = self.signals.values.get(node)
        if stored is not None:
            return stored[self.points]
        return interpret(node, self)


def _one(value: Any) -> np.ndarray:
    """A one-element series, of the type a slice of the stored series would have."""
    if isinstance(value, np.generic):
        return np.asarray([value])
    return as_array(value, 1)

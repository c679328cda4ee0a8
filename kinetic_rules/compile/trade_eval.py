"""Evaluate expressions that read an open trade, over the candles of that trade.

The plan has already computed every trade-free part as a market series over all
history, so what is left is elementwise: slices of those series combined with the
trade's own arrays (`profit`, `bars_held`, …). Stops, trailing rules and trade-aware
exits are thus evaluated for a whole trade in a few numpy operations. Rules that read
the portfolio are evaluated the same way, at the closes where the portfolio decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kinetic_rules.compile.evaluate import PairSignals, binary, compare
from kinetic_rules.compile.plan import Plan
from kinetic_rules.functions import REGISTRY, ArgKind
from kinetic_rules.lang import ast

# name -> scalar or array over the slice; a portfolio function's name -> its callable
TradeEnv = Mapping[str, Any]


def evaluate_span(
    plan: Plan, node: ast.Node, signals: PairSignals, lo: int, hi: int, env: TradeEnv
) -> np.ndarray:
    """Values of `node` for candles lo..hi-1 of `signals`, with trade names from `env`."""
    value = np.asarray(_eval(plan, node, signals, lo, hi, env))
    if value.ndim == 0:  # built from scalars only, e.g. `if side > 0 then 10% else 5%`
        return np.full(hi - lo, value[()])
    return value


def _eval(plan: Plan, node: ast.Node, signals: PairSignals, lo: int, hi: int, env: TradeEnv) -> Any:
    stored = signals.values.get(node)
    if stored is not None:
        return stored[lo:hi]
    match node:
        case ast.Number(value=v) | ast.Bool(value=v):
            return v
        case ast.Name(id=name) if name in env:
            return env[name]
        case ast.Unary(op=op, operand=operand):
            inner = _eval(plan, operand, signals, lo, hi, env)
            return np.logical_not(inner) if op == "not" else np.negative(inner)
        case ast.Binary(op=op, left=left, right=right):
            return binary(
                op,
                _eval(plan, left, signals, lo, hi, env),
                _eval(plan, right, signals, lo, hi, env),
            )
        case ast.Compare(first=first, rest=rest):
            left_value = _eval(plan, first, signals, lo, hi, env)
            result: Any = True
            for op, operand in rest:
                right_value = _eval(plan, operand, signals, lo, hi, env)
                result = np.logical_and(result, compare(op, left_value, right_value))
                left_value = right_value
            return result
        case ast.IfElse(condition=c, then=t, otherwise=o):
            return np.where(
                _eval(plan, c, signals, lo, hi, env),
                _eval(plan, t, signals, lo, hi, env),
                _eval(plan, o, signals, lo, hi, env),
            )
        case ast.Call(func=name, args=args) if name in env:  # a portfolio function
            return env[name](*(a.value for a in args if isinstance(a, ast.Number)))
        case ast.Call(func=name, args=args):
            function = REGISTRY.get(name)
            assert function is not None and not function.inputs
            values: list[Any] = []
            for spec, arg in zip(function.args, args, strict=True):
                if spec.kind.is_series:
                    values.append(_full(_eval(plan, arg, signals, lo, hi, env), hi - lo))
                elif spec.kind is ArgKind.LIST and isinstance(arg, ast.ListLit):
                    values.append(tuple(i.value for i in arg.items if isinstance(i, ast.Number)))
                elif isinstance(arg, ast.Number):
                    values.append(arg.value)
            return function.impl(*values)
    raise KeyError(f"no value for {type(node).__name__} in a trade expression")


def _full(value: Any, length: int) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value.astype(np.float64) if value.dtype != bool else value
    return np.full(length, float(value))

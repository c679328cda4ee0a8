"""How far the recursive indicators have forgotten their start when trading begins.

An exponential average of period n starts from a seed (the plain average of its first n
values, as TA-Lib does); after k more candles the seed still weighs (1 − α)^k in it, with
α = 2/(n+1) for an EMA and 1/n for Wilder's smoothing (RSI, ATR, ADX). Window functions
(sma, highest, …) have no memory beyond their window and are exact once it is full.
A user who accepts a shorter warm-up (`backtest.warmup`, `--warmup`) reads here what it costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kinetic_rules.compile.plan import Plan
from kinetic_rules.functions import REGISTRY
from kinetic_rules.lang import ast
from kinetic_rules.lang.printer import to_text
from kinetic_rules.timeframes import format_duration


def _ema(n: float) -> float:
    return 2.0 / (n + 1.0)


def _wilder(n: float) -> float:
    return 1.0 / n


# function → (argument holding the span, smoothing factor α of that span)
SMOOTHING: dict[str, tuple[tuple[str, Callable[[float], float]], ...]] = {
    "ema": (("period", _ema),),
    "macd": (("slow", _ema),),
    "macd_signal": (("slow", _ema), ("signal", _ema)),
    "macd_hist": (("slow", _ema), ("signal", _ema)),
    "rsi": (("period", _wilder),),
    "atr": (("period", _wilder),),
    "adx": (("period", _wilder),),
    "plus_di": (("period", _wilder),),
    "minus_di": (("period", _wilder),),
    "keltner_lower": (("period", _ema), ("atr_period", _wilder)),
    "keltner_middle": (("period", _ema), ("atr_period", _wilder)),
    "keltner_upper": (("period", _ema), ("atr_period", _wilder)),
}


@dataclass(frozen=True)
class Slowest:
    """The indicator whose seed weighs most when trading starts."""

    text: str  # as written, with its @timeframe when not the base one
    candles: int  # candles of its timeframe waited for
    seed_weight: float  # 0..1

    @property
    def converged(self) -> float:
        return 1.0 - self.seed_weight


def slowest_indicator(plan: Plan) -> Slowest | None:
    """The recursive indicator least converged after the warm-up waited for, if any."""
    worst: Slowest | None = None
    stack: list[tuple[ast.Node, str]] = [(node, plan.timeframe) for node in plan.market]
    seen: set[tuple[ast.Node, str]] = set()
    while stack:
        node, timeframe = stack.pop()
        if (node, timeframe) in seen:
            continue
        seen.add((node, timeframe))
        if isinstance(node, ast.Context):
            stack.append((node.operand, node.timeframe or timeframe))
            continue
        stack.extend((child, timeframe) for child in node.children())
        if not isinstance(node, ast.Call) or node.func not in SMOOTHING:
            continue
        weight = _seed_weight(node, plan.warmup_candles(timeframe))
        if weight is not None and (worst is None or weight > worst.seed_weight):
            text = to_text(node) + ("" if timeframe == plan.timeframe else f"@{timeframe}")
            worst = Slowest(text, plan.warmup_candles(timeframe), weight)
    return worst


def _seed_weight(call: ast.Call, candles: int) -> float | None:
    function = REGISTRY.get(call.func)
    if function is None:
        return None
    values = {
        spec.name: arg.value
        for spec, arg in zip(function.args, call.args, strict=False)
        if isinstance(arg, ast.Number)
    }
    weights = [
        (1.0 - min(1.0, alpha(values[name]))) ** candles
        for name, alpha in SMOOTHING[call.func]
        if values.get(name, 0) >= 1
    ]
    return max(weights, default=None)


def warmup_statement(plan: Plan) -> str:
    """One line for the report: the warm-up waited for, and what it leaves of the seed."""
    used = plan.used_warmup_seconds
    full = plan.warmup_seconds
    head = f"{format_duration(used)}" + (
        f", shorter than the {format_duration(full)} the indicators need (accepted in "
        "backtest.warmup or --warmup)"
        if used < full
        else " (the strategy's full warm-up)"
    )
    slowest = slowest_indicator(plan)
    if slowest is None:
        return head + "; every indicator is a fixed window, exact once it is full"
    return (
        f"{head}; slowest indicator {slowest.text} after {slowest.candles} candles: "
        f"{slowest.converged:.2%} converged (its starting value still weighs "
        f"{slowest.seed_weight:.2%})"
    )

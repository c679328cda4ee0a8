"""What can be known before running: the largest value an expression can take.

Used to warn at `validate` time when a futures stop may lie beyond the liquidation price,
which needs the highest leverage a strategy can ask for. Only the shapes leverage rules
are written in are understood (numbers, `if`, `step`, `min`, `max`, `clamp`); anything
else has no known bound, and the engine's own report is then the one to warn.
"""

from __future__ import annotations

from kinetic_rules.lang import ast
from kinetic_rules.margin import liquidation_distance
from kinetic_rules.spec.models import Strategy


def upper_bound(node: ast.Node) -> float | None:
    """The largest value `node` can take, when its shape tells; None when it does not."""
    match node:
        case ast.Number(value=value):
            return value
        case ast.IfElse(then=then, otherwise=otherwise):
            return _largest(upper_bound(then), upper_bound(otherwise))
        case ast.History(operand=operand) | ast.Context(operand=operand):
            return upper_bound(operand)
        case ast.Call(func="step", args=(_, _, ast.ListLit(items=items), below)):
            return _largest(*(upper_bound(i) for i in items), upper_bound(below))
        case ast.Call(func="clamp", args=(_, _, high)):
            return upper_bound(high)
        case ast.Call(func="max", args=(a, b)):
            return _largest(upper_bound(a), upper_bound(b))
        case ast.Call(func="min", args=(a, b)):
            known = [v for v in (upper_bound(a), upper_bound(b)) if v is not None]
            return min(known) if known else None
    return None


def _largest(*values: float | None) -> float | None:
    if any(v is None for v in values):
        return None
    return max(v for v in values if v is not None)


def stop_past_liquidation(spec: Strategy, leverage: ast.Node | None) -> str | None:
    """Why a futures stop may never fire — `stoploss.max_distance` lets it lie at or beyond
    the liquidation price at the highest leverage the file can ask for — or None."""
    stoploss = spec.stoploss
    if spec.market.type != "futures" or stoploss is None or stoploss.max_distance is None:
        return None
    most = 1.0 if leverage is None else upper_bound(leverage)
    if most is None:
        return None
    most = max(most, 1.0)  # the engine trades a leverage below 1 at 1
    sides = [(side, s) for side, s in (("long", 1.0), ("short", -1.0)) if getattr(spec.entry, side)]
    rate = spec.market.maintenance_margin
    for side, sign in sides:
        distance = liquidation_distance(most, rate, sign)
        if stoploss.max_distance >= distance:
            return (
                f"at leverage {most:g} a {side} is liquidated {distance:.2%} from its entry "
                f"(maintenance margin {rate:.2%}), and its stop may be {stoploss.max_distance:.2%}"
                " away: the liquidation would come first and the stop never fire"
            )
    return None

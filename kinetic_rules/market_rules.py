"""An exchange's trading rules for one market, and the rounding every order goes through.

Exchanges take prices only on their tick (the price step), amounts only on their amount
step, and refuse orders worth less than a minimum. Backtests (engine/) and the live
executor (live/) round through these same functions, so a backtest's trade is the trade
the bot would have sent. Rounding is always in the safe direction:

- amounts are truncated to the step (never more than the stake pays for);
- a stop is rounded towards the price it protects (up for a long's stop, down for a
  short's): never a looser stop than the strategy asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# A hair of relative room before truncating: 3.814 held as 3.8139999999999996 is 3.814.
_ROOM = 1e-9


@dataclass(frozen=True)
class MarketRules:
    """What an exchange accepts on one market; a field of 0 means no such rule."""

    tick_size: float = 0.0  # prices are multiples of this
    amount_step: float = 0.0  # amounts (base units) are multiples of this
    min_notional: float = 0.0  # least order value (amount × price), in the quote currency
    min_amount: float = 0.0  # least amount, in base units

    def describe(self) -> str:
        parts = [
            f"tick {self.tick_size:g}" if self.tick_size else "no tick",
            f"amount step {self.amount_step:g}" if self.amount_step else "no amount step",
            f"minimum order value {self.min_notional:g}" if self.min_notional else "no minimum",
        ]
        if self.min_amount:
            parts.append(f"minimum amount {self.min_amount:g}")
        return ", ".join(parts)


def _steps(value: float, step: float) -> float:
    """How many steps `value` is, to the nearest 1e-9 of a step (floating-point noise)."""
    count = value / step
    nearest = round(count)
    return float(nearest) if abs(count - nearest) <= _ROOM * max(1.0, abs(count)) else count


def truncate_amount(amount: float, step: float) -> float:
    """`amount` rounded down to a multiple of `step` (unchanged without a step)."""
    if step <= 0 or amount <= 0:
        return max(amount, 0.0)
    return _clean(math.floor(_steps(amount, step)) * step, step)


def round_stop(price: float, tick: float, sign: float) -> float:
    """A stop on the tick, tightened rather than loosened: a long's (sign 1) rounds up, a
    short's (sign −1) down. Infinite stops (none at all) stay as they are."""
    if tick <= 0 or not math.isfinite(price):
        return price
    steps = _steps(price, tick)
    return _clean((math.ceil(steps) if sign > 0 else math.floor(steps)) * tick, tick)


def round_stops(levels: np.ndarray, tick: float, sign: float) -> np.ndarray:
    """`round_stop` over an array of stop levels (infinite ones stay as they are)."""
    if tick <= 0:
        return levels
    with np.errstate(invalid="ignore", over="ignore"):
        steps = levels / tick
        nearest = np.round(steps)
        steps = np.where(
            np.abs(steps - nearest) <= _ROOM * np.maximum(1.0, np.abs(steps)), nearest, steps
        )
        rounded = (np.ceil(steps) if sign > 0 else np.floor(steps)) * tick
    decimals = max(0, math.ceil(-math.log10(tick))) + 2
    result: np.ndarray = np.where(np.isfinite(levels), np.round(rounded, decimals), levels)
    return result


def tradable(rules: MarketRules, amount: float, price: float | None = None) -> float:
    """`amount` truncated to the step; 0.0 when that is below the least amount or (given a
    price) below the least order value: such an order is not sent."""
    rounded = truncate_amount(amount, rules.amount_step)
    if rounded <= 0 or rounded < rules.min_amount * (1 - _ROOM):
        return 0.0
    if price is not None and rounded * price < rules.min_notional * (1 - _ROOM):
        return 0.0
    return rounded


def _clean(value: float, step: float) -> float:
    """Drop the binary noise of value = n × step: as many decimals as the step has."""
    decimals = max(0, math.ceil(-math.log10(step)))
    return round(value, decimals + 2)


# ccxt's precision modes (ccxt.base.decimal_to_precision): the market's `precision`
# values are decimal places, significant digits, or the step itself.
DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE = 2, 3, 4


def rules_from_ccxt(market: dict[str, Any], precision_mode: int) -> MarketRules | None:
    """The rules of a ccxt market structure (from load_markets); None when its precision
    is given in significant digits, which no fixed step describes."""
    if precision_mode == SIGNIFICANT_DIGITS:
        return None
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}

    def step(value: Any) -> float:
        if value is None:
            return 0.0
        return 10.0 ** -float(value) if precision_mode == DECIMAL_PLACES else float(value)

    def least(kind: str) -> float:
        return float((limits.get(kind) or {}).get("min") or 0.0)

    return MarketRules(
        tick_size=step(precision.get("price")),
        amount_step=step(precision.get("amount")),
        min_notional=least("cost"),
        min_amount=least("amount"),
    )

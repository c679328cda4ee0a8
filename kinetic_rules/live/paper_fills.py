"""The paper broker's fill rules on one look at a pair's order book: pure arithmetic.

The rules are the backtest's fill model (engine/fills.py) moved from candles to the
book. A market order takes the book level by level from the touch (the best ask for a
buy, the best bid for a sell) and then pays the model's slippage on top. A limit
order that meets the book when placed takes the levels at or better than its limit,
at their prices: never better than the touch, never worse than the limit. A limit that
rests fills at its own price once the other side of the book reaches it (a buy when
the ask is at or below it), for as much as the book holds at or better than it. A
stop triggers when the last price reaches it and then fills as a market order.

Depth taken by one of our fills is gone from that look, so two orders never fill
against the same coins.
"""

from __future__ import annotations

from dataclasses import dataclass

from kinetic_rules.engine.fills import FillModel
from kinetic_rules.live.broker import Side

Level = list[float]  # [price, amount], mutable: our own fills take the amount away
EPSILON = 1e-12  # amounts below this are nothing (float dust from subtraction)


@dataclass(frozen=True)
class Taken:
    amount: float  # base units filled
    cost: float  # their value in the quote currency, at the prices they filled at

    @property
    def average(self) -> float:
        return self.cost / self.amount if self.amount > EPSILON else 0.0


def reaches(price: float, limit: float | None, buying: bool) -> bool:
    """Whether a book price is at or better than a limit (no limit: every price is)."""
    if limit is None:
        return True
    return price <= limit if buying else price >= limit


def take(levels: list[Level], amount: float, *, buying: bool, limit: float | None) -> Taken:
    """Take up to `amount` from the best levels on, not past `limit`; the levels shrink.

    `levels` is the side an order trades against (asks for a buy, bids for a sell), best
    first, as an exchange sends it.
    """
    filled = cost = 0.0
    for level in levels:
        if amount - filled <= EPSILON or not reaches(level[0], limit, buying):
            break
        part = min(level[1], amount - filled)
        if part <= EPSILON:
            continue
        level[1] -= part
        filled += part
        cost += part * level[0]
    return Taken(filled, cost)


def market_fill(
    levels: list[Level], amount: float, fills: FillModel, side: Side, opening: bool
) -> Taken:
    """A market order: the book walked from the touch, then the model's slippage on top."""
    taken = take(levels, amount, buying=_buying(side, opening), limit=None)
    if taken.amount <= EPSILON:
        return Taken(0.0, 0.0)
    price = fills.adverse(taken.average, side, buying=opening)
    return Taken(taken.amount, taken.amount * price)


def limit_on_arrival(levels: list[Level], amount: float, limit: float, buying: bool) -> Taken:
    """A limit that meets the book when placed takes what is at or better than its limit."""
    return take(levels, amount, buying=buying, limit=limit)


def limit_resting(levels: list[Level], amount: float, limit: float, buying: bool) -> Taken:
    """A resting limit the book has come to: filled at its own price, as deep as the book goes."""
    taken = take(levels, amount, buying=buying, limit=limit)
    return Taken(taken.amount, taken.amount * limit)


def stop_triggered(last: float, stop: float, buying: bool) -> bool:
    """A sell stop triggers when the last price falls to it, a buy stop when it rises to it."""
    return last >= stop if buying else last <= stop


def _buying(side: Side, opening: bool) -> bool:
    return (side == "long") == opening

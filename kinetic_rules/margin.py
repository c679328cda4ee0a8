"""Isolated margin for futures: the liquidation price, and how far from the entry it lies.

Shared by the checker (which warns when a stop may lie beyond the liquidation price) and
the engine (which liquidates trades), so both use one formula. The model, derived in
docs/backtesting.md ("Margin and liquidation"):

- a trade's margin M is its stake; its size is Q = M × leverage / entry price E;
- its margin balance at price P is M + s·Q·(P − E), with s = 1 for a long, −1 for a short;
- the exchange liquidates it when that balance falls to the maintenance margin m·Q·P.

Solving M + s·Q·(P − E) = m·Q·P with M = Q·E / leverage gives
P = E × (1 − s / leverage) / (1 − s·m). At that price the trade has lost M − m·Q·P; the
exchange keeps the rest of the margin (m·Q·P), so a liquidation costs the whole margin.
"""

from __future__ import annotations


def liquidation_price(
    entry_price: float, leverage: float, maintenance: float, sign: float
) -> float:
    """The price at which an isolated-margin trade is liquidated (sign 1: long, −1: short).

    A long at leverage 1 has a liquidation price of 0: it can never be reached."""
    return max(0.0, entry_price * (1.0 - sign / leverage) / (1.0 - sign * maintenance))


def liquidation_distance(leverage: float, maintenance: float, sign: float) -> float:
    """How far the price may move against the trade, as a fraction of the entry price,
    before it is liquidated: (1 / leverage − m) / (1 − s·m). Shorts have the shorter way."""
    return (1.0 / leverage - maintenance) / (1.0 - sign * maintenance)


def beyond_liquidation(stop: float, liquidation: float, sign: float) -> bool:
    """Is this stop at or past the liquidation price, so the liquidation always comes first?
    (A trade without a stop has one at ∓infinity: past it, too.)"""
    return stop <= liquidation if sign > 0 else stop >= liquidation

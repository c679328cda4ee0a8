"""Futures at start-up, after each entry, and when a position is gone: the book against
the exchange's positions.

A spot account is checked by its coin balances (Executor.missing_coins); a futures
account has positions, which the exchange reports with their side, size, leverage and
liquidation price. What differs is reported, never touched: a position opened or closed
by hand is a human's decision, and the bot's own orders (reduce-only) cannot grow it.
"""

from __future__ import annotations

from collections.abc import Iterable

from kinetic_rules.engine.model import LIQUIDATION, Fill, Trade
from kinetic_rules.live.broker import Broker, ExchangePosition
from kinetic_rules.margin import liquidation_price

RELATIVE = 1e-6  # amounts that differ by less are the same (float parsing)


def position_problems(
    expected: dict[str, float],
    positions: Iterable[ExchangePosition],
    leverage: dict[str, float] | None = None,
    margin_mode: str | None = None,
) -> list[str]:
    """`expected`: the signed amount (short < 0) the book holds per pair; `leverage`: the
    book's leverage per pair. One sentence per pair whose exchange position differs:
    opened by hand, closed by hand, resized, or its leverage or margin mode changed."""
    positions = list(positions)
    held = {p.pair: (p.amount if p.side == "long" else -p.amount) for p in positions}
    problems = []
    for position in positions:
        wanted = (leverage or {}).get(position.pair)
        if wanted and position.leverage and round(wanted) != round(position.leverage):
            problems.append(
                f"{position.pair}: the exchange holds the position at {position.leverage:g}x, "
                f"the book at {max(1, round(wanted))}x: the leverage was changed outside this bot"
            )
        if margin_mode and position.margin_mode and position.margin_mode != margin_mode:
            problems.append(
                f"{position.pair}: the position is on {position.margin_mode} margin, the "
                f"strategy asks for {margin_mode} (market.margin_mode)"
            )
    for pair in sorted(set(expected) | set(held)):
        want, have = expected.get(pair, 0.0), held.get(pair, 0.0)
        if abs(want - have) <= RELATIVE * max(abs(want), abs(have), 1e-12):
            continue
        if not want:
            problems.append(
                f"{pair}: the exchange holds a {_side(have)} position of {abs(have):g} that this "
                "bot did not open (opened by hand, or by another bot); it is left alone"
            )
        elif not have:
            problems.append(
                f"{pair}: the book holds a {_side(want)} position of {abs(want):g}, the exchange "
                "none: it was closed outside this bot (by hand, or liquidated); check it by hand"
            )
        else:
            problems.append(
                f"{pair}: the book holds {want:+g}, the exchange {have:+g}: the position was "
                "changed outside this bot; check it by hand"
            )
    return problems


def liquidation_gap(
    modelled: float | None, position: ExchangePosition, maintenance: float
) -> str | None:
    """A warning when the exchange's liquidation price and the engine's model of it differ
    by more than a tick (tiered margin, cross margin and fees move the exchange's)."""
    actual = position.liquidation_price
    if actual is None or not position.leverage:
        return None
    sign = 1.0 if position.side == "long" else -1.0
    if modelled is None:  # the model of the position the exchange reports, at its leverage
        modelled = liquidation_price(position.entry_price, position.leverage, maintenance, sign)
    tick = position.tick or 0.0
    if abs(actual - modelled) <= tick:
        return None
    return (
        f"{position.pair}: the exchange liquidates the {position.side} at {actual:g}, the "
        f"engine's model at {modelled:g}; "
        "stops and reports use the model (docs/live.md, futures)"
    )


def _side(amount: float) -> str:
    return "long" if amount > 0 else "short"


def liquidation_fill(broker: Broker, trade: Trade, left: float) -> Fill | None:
    """The fill that ends a trade the exchange liquidated: its pair holds no position any
    more while the trade still holds `left`, and the exchange records the liquidation.

    The fill is at the liquidation price, its fee the rest of what the account lost
    (the margin the exchange kept beyond the price move), so that the trade's profit is
    exactly the account's loss (when the exchange does not say what was lost, the fee is
    0 and the loss is the price move alone). None when there is no such record (a
    position closed by hand, or a broker that cannot tell: the restart's comparison
    reports it)."""
    positions = broker.positions()
    if positions is None or left <= 0 or any(p.pair == trade.pair for p in positions):
        return None
    found = broker.liquidation(trade.pair, trade.entry_time)
    if found is None:
        return None
    sign = 1.0 if trade.side == "long" else -1.0
    moved = sign * (found.price - trade.entry_price) * left
    fee = 0.0 if found.lost is None else found.lost + moved
    return Fill(found.time, found.price, left, fee, LIQUIDATION)

"""A futures position as the exchange records it: its liquidation price, a liquidation
it made, and the funding it charged. Each is read from the exchange rather than modelled,
because the exchange's record is what the account holds.

A part of the Executor (live/executor.py), which supplies the attributes and methods below.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd

from kinetic_rules.compile.plan import Plan
from kinetic_rules.engine.orders import EventKind, Ticket
from kinetic_rules.errors import ExchangeError
from kinetic_rules.live.broker import Broker
from kinetic_rules.live.reconcile import liquidation_fill, liquidation_gap

log = logging.getLogger("kinetic_rules.live")


class FuturesRecords:
    """What the Executor reads back about a futures position."""

    plan: Plan
    broker: Broker
    reduce_only: bool
    announce: Callable[[EventKind, pd.Timestamp, str], None]

    def _close_if_flat(self, ticket: Ticket, now: pd.Timestamp) -> None:
        raise NotImplementedError

    def _compare_liquidation(self, ticket: Ticket, now: pd.Timestamp) -> None:
        """Futures: the exchange's liquidation price against the engine's, once per entry."""
        trade = ticket.trade
        positions = self.broker.positions() if trade is not None else None
        held = next((p for p in positions or [] if p.pair == ticket.pair), None)
        if trade is None or held is None:
            return
        maintenance = self.plan.strategy.spec.market.maintenance_margin
        warning = liquidation_gap(trade.liquidation_price, held, maintenance)
        if warning is not None:
            log.warning("%s", warning)
            self.announce("warning", now, warning)

    def _liquidated(self, ticket: Ticket, now: pd.Timestamp) -> None:
        """Futures: a position the exchange liquidated ends its trade (reconcile.py)."""
        trade = ticket.trade
        if trade is None or ticket.done or not self.reduce_only:
            return
        left = trade.amount - sum(f.amount for f in trade.fills[1:])
        fill = liquidation_fill(self.broker, trade, left)
        if fill is not None:
            said = f"{trade.pair}: the {trade.side} position was liquidated at {fill.price:.8g}"
            log.warning("%s", said)
            self.announce("warning", now, said)
            trade.fills.append(fill)
            self._close_if_flat(ticket, now)

    def _charge_funding(self, ticket: Ticket, until: pd.Timestamp | None = None) -> None:
        """Futures: the trade's funding is what the exchange's income records say was paid
        on its pair while it was open (one position per pair: all of it is the trade's)."""
        trade = ticket.trade
        if trade is None or not trade.fills:
            return
        try:
            paid = self.broker.funding(ticket.pair, trade.fills[0].time, until)
        except ExchangeError as problem:
            if not problem.temporary:
                raise
            log.warning("%s: funding not read (%s); trying again later", ticket.pair, problem)
            return
        if paid is not None:
            trade.funding = paid

"""The executor at start-up: the saved book taken back into the portfolio, and what the
exchange holds compared with it (positions or coins, and orders this book does not know).

A part of the Executor (live/executor.py), kept apart because it runs once per start.
"""

from __future__ import annotations

import logging

from kinetic_rules.compile.plan import Plan
from kinetic_rules.engine.model import Trade
from kinetic_rules.engine.orders import Book, OrderState, Ticket
from kinetic_rules.engine.portfolio import Portfolio, Position
from kinetic_rules.errors import ExchangeError
from kinetic_rules.live.broker import Broker, ExchangePosition
from kinetic_rules.live.reconcile import position_problems

log = logging.getLogger("kinetic_rules.live")


class Restart:
    """What the Executor does at start-up (it supplies the attributes and methods below)."""

    plan: Plan
    portfolio: Portfolio
    broker: Broker
    book: Book
    _positions: dict[int, Position]

    def _live(self) -> list[Ticket]:
        raise NotImplementedError

    def _fetch(self, client_id: str, pair: str) -> OrderState | None:
        raise NotImplementedError

    def restore(self) -> list[Trade]:
        """Take the saved tickets back into the portfolio; the trades they hold."""
        book = self.book
        trades = []
        for ticket in book.tickets:
            position = Position(
                ticket.position_id, ticket.pair, ticket.side, ticket.signal_time, ticket.stake
            )
            position.trade = ticket.trade
            position.state = "done" if ticket.done else "open" if ticket.trade else "pending"
            self.portfolio.restore(position)
            self._positions[ticket.position_id] = position
            if ticket.trade is not None:
                trades.append(ticket.trade)
        self.portfolio.restore_books(book.portfolio)
        return trades

    def missing_coins(self) -> list[str]:
        """Open trades holding more than the account has: coins sold by hand, or by
        another bot. Each is said once; the trade's stop and exits will be refused.
        On futures: every position that differs from the book's (reconcile.py)."""
        positions = self.broker.positions()
        if positions is not None:
            expected: dict[str, float] = {}
            leverage: dict[str, float] = {}
            for ticket in self._live():
                sign = 1.0 if ticket.side == "long" else -1.0
                if ticket.trade is not None:
                    left = ticket.trade.amount - sum(f.amount for f in ticket.trade.fills[1:])
                    expected[ticket.pair] = expected.get(ticket.pair, 0.0) + sign * left
                    leverage[ticket.pair] = ticket.trade.leverage
                else:  # an entry sent before a stop may have filled meanwhile: it is ours
                    expected[ticket.pair] = expected.get(ticket.pair, 0.0) + sign * (
                        self._entry_filled(ticket)
                    )
            for pair in self._liquidated_while_down(expected, positions):
                expected.pop(pair), leverage.pop(pair, None)  # the first poll ends its trade
            mode = self.plan.strategy.spec.market.margin_mode
            return position_problems(expected, positions, leverage, mode)
        problems = []
        by_pair: dict[str, float] = {}
        for ticket in self._live():
            if ticket.trade is not None:
                left = ticket.trade.amount - sum(f.amount for f in ticket.trade.fills[1:])
                by_pair[ticket.pair] = by_pair.get(ticket.pair, 0.0) + left
        for pair, needed in sorted(by_pair.items()):
            base = pair.split("/")[0]
            held = self.broker.total_balance(base)
            if held < needed * (1 - 1e-9):
                problems.append(
                    f"{pair}: the open trades hold {needed:g} {base}, the account only {held:g}: "
                    "coins were sold outside this bot; check the position by hand"
                )
        return problems

    def _liquidated_while_down(
        self, expected: dict[str, float], positions: list[ExchangePosition]
    ) -> list[str]:
        """Pairs whose open trade the exchange liquidated (by its own records): not a
        problem to report, but a trade the first poll ends at the exchange's price."""
        held = {p.pair for p in positions}
        found = []
        for ticket in self._live():
            trade = ticket.trade
            if trade is None or ticket.pair in held or not expected.get(ticket.pair):
                continue
            try:
                liquidation = self.broker.liquidation(ticket.pair, trade.entry_time)
            except ExchangeError as problem:
                if not problem.temporary:
                    raise
                continue  # reported as closed outside the bot; the poll tries again
            if liquidation is not None:
                log.warning(
                    "%s: the %s position was liquidated by the exchange at %.8g while the bot "
                    "was down", ticket.pair, trade.side, liquidation.price,
                )  # fmt: skip
                found.append(ticket.pair)
        return found

    def _entry_filled(self, ticket: Ticket) -> float:
        """What a pending entry has filled so far (0 when it never reached the exchange)."""
        try:
            state = self._fetch(ticket.entry, ticket.pair)
        except ExchangeError as problem:
            if not problem.temporary:
                raise
            return 0.0  # the first poll takes it in; the comparison may then say too much
        return 0.0 if state is None else state.filled

    def unknown_orders(self) -> list[OrderState]:
        """Open orders on the exchange this book does not know (reported, never touched)."""
        known = {cid for t in self.book.tickets for cid in (t.entry, t.stop, t.exit) if cid}
        return [o for o in self.broker.open_orders() if o.client_id not in known]

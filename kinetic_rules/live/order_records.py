"""Orders to the exchange and back into the trades: each order's newest state kept in
the trade store's order table, what it filled turned into fills of its trade, the trade
closed once nothing is left of it, and the book saved around every order sent.

A part of the Executor (live/executor.py), which supplies the attributes and methods below.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd

from kinetic_rules.engine.model import Fill
from kinetic_rules.engine.orders import Book, EventKind, OrderState, Ticket
from kinetic_rules.engine.portfolio import Portfolio, Position
from kinetic_rules.errors import ExchangeError
from kinetic_rules.live.book import BookJournal
from kinetic_rules.live.broker import Broker, OrderRequest
from kinetic_rules.timeframes import format_duration

log = logging.getLogger("kinetic_rules.live")


class OrderRecords:
    """The Executor's bookkeeping of its orders and trades."""

    portfolio: Portfolio
    broker: Broker
    journal: BookJournal
    book: Book
    announce: Callable[[EventKind, pd.Timestamp, str], None]
    entry_timeout: pd.Timedelta
    exit_timeout: pd.Timedelta
    _positions: dict[int, Position]
    _orders: dict[str, tuple[str, float]]  # what the order table holds
    # FuturesRecords' (declared only: a stub here would come first in the Executor's MRO)
    _charge_funding: Callable[..., None]

    def _record(
        self,
        ticket: Ticket,
        state: OrderState,
        reason: str,
        now: pd.Timestamp,
        client_id: str | None = None,
    ) -> None:
        """Turn what an order filled since we last looked into fills of the trade."""
        trade = ticket.trade
        key = client_id or state.client_id
        before = ticket.seen.get(key, 0.0)
        if trade is None or state.filled <= before + 1e-12 or state.average is None:
            return
        fresh = state.filled - before
        paid_before = ticket.seen.get(key + "#cost", 0.0)
        price = (state.average * state.filled - paid_before) / fresh
        fee_before = ticket.seen.get(key + "#fee", 0.0)
        trade.fills.append(Fill(state.updated or now, price, fresh, state.fee - fee_before, reason))
        ticket.seen[key] = state.filled
        ticket.seen[key + "#cost"] = state.average * state.filled
        ticket.seen[key + "#fee"] = state.fee
        self._close_if_flat(ticket, now)

    def _close_if_flat(self, ticket: Ticket, now: pd.Timestamp) -> None:
        trade = ticket.trade
        if ticket.done or trade is None or self._left(ticket) > 0:
            return
        closing = trade.fills[1:]
        sold = sum(f.amount for f in closing)
        trade.exit_price = sum(f.price * f.amount for f in closing) / sold
        trade.exit_reason, trade.exit_time = closing[-1].reason, closing[-1].time
        self._charge_funding(ticket, until=trade.exit_time)
        trade.stop = ticket.stop_price if ticket.stop_price is not None else trade.stop
        # Flat: a stop still resting (futures keep it while exits fill; on spot, a dust
        # remainder's) has nothing left to protect, nor has an exit the stop outran.
        for leftover in (ticket.stop, ticket.exit):
            if leftover is not None and self._orders.get(leftover, ("open",))[0] == "open":
                self._cancel(leftover, ticket.pair)
        ticket.stop = ticket.exit = None
        self._end(ticket, now)

    def _end(self, ticket: Ticket, now: pd.Timestamp) -> None:
        ticket.done = True
        position = self._positions[ticket.position_id]
        self.portfolio.close_filled(position, now)

    def _left(self, ticket: Ticket) -> float:
        """What the trade still holds, as much of it as can be sold: a remainder below the
        exchange's smallest order is dust, and the trade is closed without it."""
        trade = ticket.trade
        if trade is None:
            return 0.0
        left = trade.amount - sum(f.amount for f in trade.fills[1:])
        return self.broker.tradable(ticket.pair, left) if left > 0 else 0.0

    def _live(self) -> list[Ticket]:
        return [t for t in self.book.tickets if not t.done]

    def _save(self, now: pd.Timestamp) -> None:
        """Keep the book: called before every order is sent and after every answer."""
        self.portfolio.advance(now)  # a trade that just closed counts in what is kept
        self.book.portfolio = self.portfolio.books()
        self.journal.save_book(self.book)

    def _send(self, request: OrderRequest, now: pd.Timestamp) -> OrderState | None:
        try:
            state = self._kept(self.broker.place(request))
        except ExchangeError as problem:
            if not problem.temporary:
                raise
            # It may or may not have landed: None, and the next poll asks by client id.
            log.warning("order %s on %s: %s", request.client_id, request.pair, problem)
            return None
        if state.status == "rejected":
            self.announce(
                "order_rejected", now,
                f"{request.pair}: {request.kind} order rejected by the exchange: {state.reason}",
            )  # fmt: skip
        return state

    def _fetch(self, client_id: str, pair: str) -> OrderState | None:
        state = self.broker.find(client_id, pair)
        return None if state is None else self._kept(state)

    def _cancel(self, client_id: str, pair: str) -> OrderState:
        return self._kept(self.broker.cancel(client_id, pair))

    def _kept(self, state: OrderState) -> OrderState:
        """Every order's latest state goes to the trade store's order table."""
        mark = (state.status, state.filled)
        if self._orders.get(state.client_id) != mark:
            self.journal.save_order(state)
            self._orders[state.client_id] = mark
        return state

    def _timed_out(self, ticket: Ticket, what: str, now: pd.Timestamp) -> None:
        limit = self.entry_timeout if what == "entry" else self.exit_timeout
        self.announce(
            "order_timeout", now,
            f"{ticket.pair}: the {what} order did not fill within "
            f"{format_duration(int(limit.total_seconds()))}; canceled"
            + ("" if what == "entry" else ", closing at market"),
        )  # fmt: skip

    def _next_id(self, ticket: Ticket, kind: str) -> str:
        ticket.serial += 1
        return self._client_id(ticket.position_id, kind, ticket.serial)

    def _client_id(self, position_id: int, kind: str, serial: int) -> str:
        return f"{self.book.prefix}{position_id}{kind}{serial}"

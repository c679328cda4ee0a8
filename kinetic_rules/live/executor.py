"""Real orders for the portfolio's decisions, and the exchange's fills back into its trades.

In a backtest (and a replay) the fill model decides what a decision costs. Trading for
real, the exchange does: the executor turns each entry the portfolio takes into an
order, follows it until it fills or times out, keeps a stop order resting on the
exchange at the trade's stop (moved as the trailing stop rises), and turns the exits
the strategy decides at each close into orders. The decisions themselves come from the
same trade path a backtest computes, on the trade's real entry.

Every order has a client id made of the session's prefix, the position and a counter,
and the executor's book (below) is saved before and after each order it sends. So a
restart — after a crash, at any moment — asks the exchange about each order it may
have sent and carries on: nothing is sent twice and no fill is lost.

On spot exchanges the coins a resting stop holds cannot be sold by another order, so
an exit or a take-profit first cancels the stop, and a new stop for what is left is
placed after it. On futures every closing order is reduce-only, so the stop stays while
an exit is sent and fills: it is canceled only once the position is flat (a restart
that finds the exit filled cancels it then), and the position is never left without a
stop. After a partial take-profit the resting stop is larger than what is left; being
reduce-only it can only close the remainder, and the next move of the stop resizes it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pandas as pd

from kinetic_rules.compile.plan import Plan
from kinetic_rules.engine.fills import FillModel, fill_model
from kinetic_rules.engine.model import PROTECTION, STOP_LOSS, TRAILING_STOP
from kinetic_rules.engine.orders import Book, EventKind, OrderKind, OrderState, Ticket
from kinetic_rules.engine.paths import trade_path
from kinetic_rules.engine.portfolio import PairData, Portfolio, Position
from kinetic_rules.errors import ExchangeError
from kinetic_rules.live.book import BookJournal
from kinetic_rules.live.broker import Broker, OrderRequest
from kinetic_rules.live.futures_records import FuturesRecords
from kinetic_rules.live.monitor import MonitorExit
from kinetic_rules.live.order_records import OrderRecords
from kinetic_rules.live.restart import Restart
from kinetic_rules.live.stops import ExchangeStops

if TYPE_CHECKING:
    from kinetic_rules.live.runtime import Runtime

log = logging.getLogger("kinetic_rules.live")


Announce = Callable[[EventKind, pd.Timestamp, str], None]


def attach_executor(runtime: Runtime, broker: Broker, journal: BookJournal, book: Book) -> Executor:
    """Make a runtime trade for real: its book restored, its unknown orders reported."""
    plan = runtime.plan
    runtime.portfolio.starting_balance = book.starting_balance
    executor = Executor(
        plan, runtime.portfolio, broker, journal, book, fill_model(plan), runtime.announce
    )
    runtime.attach(executor, executor.restore())
    for problem in executor.missing_coins():
        log.error("%s", problem)
        runtime.announce("error", pd.Timestamp.now(tz="UTC"), problem)
    for order in executor.unknown_orders():
        ours = order.client_id.startswith(book.prefix)
        log.warning(
            "open order %s on %s is not in this bot's book (%s); it is left alone",
            order.client_id, order.pair, "this session's" if ours else "not this session's",
        )  # fmt: skip
    return executor


class Executor(OrderRecords, ExchangeStops, Restart, FuturesRecords):
    def __init__(
        self,
        plan: Plan,
        portfolio: Portfolio,
        broker: Broker,
        journal: BookJournal,
        book: Book,
        fills: FillModel,
        announce: Announce | None = None,
    ) -> None:
        spec = plan.strategy.spec
        self.plan = plan
        self.portfolio = portfolio
        self.broker = broker
        self.journal = journal
        self.book = book
        self.fills = fills
        self.announce = announce or (lambda kind, time, message: None)
        self.entry_kind: OrderKind = "limit" if spec.orders.entry == "limit" else "market"
        self.exit_kind: OrderKind = "limit" if spec.orders.exit == "limit" else "market"
        self.entry_timeout = pd.Timedelta(seconds=spec.orders.timeouts.entry)
        self.exit_timeout = pd.Timedelta(seconds=spec.orders.timeouts.exit)
        self.emergency_kind: OrderKind = spec.orders.emergency_exit
        self.stop_on_exchange = spec.orders.stoploss_on_exchange
        self.stop_limit = spec.orders.stoploss == "limit"  # else stop-market
        self.reduce_only = spec.market.type == "futures"  # exits never need the stop lifted
        self._positions: dict[int, Position] = {}
        self._orders: dict[str, tuple[str, float]] = {}  # what the order table holds

    @property
    def broker_in_fail_safe(self) -> bool:
        """The exchange has been unreachable too long: no new entries (stops stay put)."""
        return self.broker.fail_safe

    # -- entries -------------------------------------------------------------------------
    def submit(
        self, positions: list[Position], view: dict[str, PairData], now: pd.Timestamp
    ) -> None:
        """Send the entry orders of the positions the portfolio just took."""
        for position in positions:
            data = view[position.pair]
            price = float(data.prices["close"][-1])
            ticket = Ticket(
                position.id, position.pair, position.side, position.signal_time,
                position.stake, self._client_id(position.id, "e", 0), now,
            )  # fmt: skip
            self.book.tickets.append(ticket)
            self._positions[position.id] = position
            try:
                wanted = self.portfolio.entry_amount(position, data, price)
                amount = self.broker.tradable(position.pair, wanted)
            except ExchangeError as problem:
                if not problem.temporary:
                    raise
                log.warning(
                    "%s: no entry, the exchange is out of reach (%s)", position.pair, problem
                )
                amount = 0.0
            if amount <= 0:
                log.warning(
                    "%s: the stake buys less than the smallest order; skipped", position.pair
                )
                self._end(ticket, now)
                continue
            request = OrderRequest(
                ticket.entry, position.pair, position.side, True, self.entry_kind, amount,
                price=price if self.entry_kind == "limit" else None,
                leverage=wanted * price / position.stake if position.stake > 0 else None,
            )  # fmt: skip
            self._save(now)  # the intent first: a crash now is found by its client id
            state = self._send(request, now)
            if state is not None and state.status == "rejected":
                self._end(ticket, now)
            elif state is not None:
                self._entry_progress(ticket, state, data, now)
        self._save(now)

    # -- between closes and at each close --------------------------------------------------
    def poll(self, view: dict[str, PairData], now: pd.Timestamp) -> None:
        """Follow every order: fills, timeouts, stops that triggered."""
        for ticket in self._live():
            with _until_next_time(ticket, "orders not checked"):
                self._poll(ticket, view[ticket.pair], now)
        self._save(now)

    def on_close(self, view: dict[str, PairData], now: pd.Timestamp) -> None:
        """A candle closed: follow the orders, then act on what the strategy decides."""
        self.poll(view, now)
        for ticket in self._live():
            self._charge_funding(ticket)
            if ticket.trade is None or ticket.exit is not None:
                continue
            with _until_next_time(ticket, "exits not placed"):
                self._decide(ticket, view[ticket.pair], now)
        self._save(now)

    def reported(self, now: pd.Timestamp) -> None:
        """The runtime has handed every change to the trade store: finished tickets can go."""
        self.book.tickets = [t for t in self.book.tickets if not t.done]
        self._save(now)

    def close(
        self, closing: list[tuple[Position, str]], view: dict[str, PairData], now: pd.Timestamp
    ) -> None:
        """A portfolio-wide close-all fired at this close: these positions go (by
        `orders.emergency_exit`: at market, or a limit at the close)."""
        for position, name in closing:
            ticket = next(
                (t for t in self._live() if t.position_id == position.id and t.trade), None
            )
            if ticket is None or ticket.closing:
                continue
            limit = self._emergency_limit(view[ticket.pair])
            with _until_next_time(ticket, "close-all not sent"):
                reason = f"{PROTECTION}:{name}"
                self._reduce(ticket, self._left(ticket), reason, now, closing=True, limit=limit)
        self._save(now)

    def close_now(self, exits: list[MonitorExit], now: pd.Timestamp) -> None:
        """Between closes, the position monitor's exits (live/monitor.py): at market, or a
        protection's close-all by `orders.emergency_exit` (a limit at the ticker price)."""
        for exit in exits:
            ticket = next(
                (t for t in self._live() if t.position_id == exit.position.id and t.trade), None
            )
            if ticket is None or ticket.closing or ticket.exit is not None:
                continue
            protection = PROTECTION in exit.reason
            limit = exit.price if protection and self.emergency_kind == "limit" else None
            with _until_next_time(ticket, "monitor exit not sent"):
                left = self._left(ticket)
                self._reduce(ticket, left, exit.reason, now, closing=True, limit=limit)
        self._save(now)

    def cancel_entries(
        self, positions: set[int], view: dict[str, PairData], now: pd.Timestamp
    ) -> list[tuple[Ticket, bool]]:
        """A person closing: cancel these positions' entry orders still waiting to fill.
        What filled before the cancel opens its trade, for the caller to close with the
        rest. Each ticket comes with whether it is settled (False: the exchange is out of
        reach and the order may still fill; ask again)."""
        asked = []
        for ticket in self._live():
            if ticket.trade is not None or ticket.position_id not in positions:
                continue
            if ticket.pair not in view:
                asked.append((ticket, False))
                continue
            with _until_next_time(ticket, "entry order not canceled"):
                state = self._fetch(ticket.entry, ticket.pair)
                if state is None:  # it never reached the exchange
                    self._end(ticket, now)
                else:
                    if not state.done:
                        state = self._cancel(ticket.entry, ticket.pair)
                    self._entry_progress(ticket, state, view[ticket.pair], now)
            asked.append((ticket, ticket.done or ticket.trade is not None))
        self._save(now)
        return asked

    def closing(self) -> set[int]:
        """Positions with an exit order on its way: the monitor leaves them alone."""
        return {t.position_id for t in self._live() if t.closing or t.exit is not None}

    # -- internals: orders ---------------------------------------------------------------
    def _poll(self, ticket: Ticket, data: PairData, now: pd.Timestamp) -> None:
        if ticket.trade is None:
            state = self._fetch(ticket.entry, ticket.pair)
            if state is None:  # the entry order never reached the exchange
                self._end(ticket, now)
                return
            self._entry_progress(ticket, state, data, now)
            return
        if ticket.stop is not None:
            state = self._fetch(ticket.stop, ticket.pair)
            if state is not None:
                self._record(ticket, state, self._stop_reason(ticket), now)
                if state.done:
                    ticket.stop, ticket.stop_price = None, None
                if state.status == "canceled":  # not by us: by a liquidation, or by hand
                    self._liquidated(ticket, now)
            else:
                ticket.stop = None  # never placed: _decide places it again
        if ticket.exit is not None and not ticket.done:
            state = self._fetch(ticket.exit, ticket.pair)
            if state is not None:
                self._record(ticket, state, ticket.exit_reason, now)
            if state is None or state.done:
                ticket.exit = None
            elif ticket.exit_placed is not None and now >= ticket.exit_placed + self.exit_timeout:
                self._timed_out(ticket, "exit", now)
                state = self._cancel(ticket.exit, ticket.pair)
                self._record(ticket, state, ticket.exit_reason, now)
                ticket.exit = None
            if ticket.exit is None and ticket.closing and not ticket.done:  # the rest: market
                self._reduce(ticket, self._left(ticket), ticket.exit_reason, now, closing=True)
        self._close_if_flat(ticket, now)

    def _entry_progress(
        self, ticket: Ticket, state: OrderState, data: PairData, now: pd.Timestamp
    ) -> None:
        if not state.done and now >= ticket.placed + self.entry_timeout:
            self._timed_out(ticket, "entry", now)
            state = self._cancel(ticket.entry, ticket.pair)
        if not state.done:
            return
        ticket.seen[ticket.entry] = state.filled
        if state.filled <= 0 or state.average is None:
            self._end(ticket, now)
            return
        position = self._positions[ticket.position_id]
        filled_at = state.updated or now
        ticket.trade = self.portfolio.open_filled(
            position, data, filled_at, state.average, state.filled, state.fee
        )
        self._place_stop(ticket, ticket.trade.initial_stop, now)
        self._compare_liquidation(ticket, now)

    def _decide(self, ticket: Ticket, data: PairData, now: pd.Timestamp) -> None:
        """What the trade path says at this close, turned into orders."""
        trade = ticket.trade
        assert trade is not None
        entry = int(data.signals.index.searchsorted(trade.entry_time))
        path = trade_path(
            self.plan, data.signals, data.prices, entry, trade.side, trade.entry_price,
            trade.initial_stop, data.exit_rules[trade.side], self.fills, final=False,
            liquidation=trade.liquidation_price,
        )  # fmt: skip
        targets = {name for name, _, _ in data.exit_rules[trade.side].take_profits}
        past = [f for f in path.fills if 0 <= f.index < len(data.signals.index)]
        for planned in [f for f in past if f.reason in targets][ticket.taken :]:
            ticket.taken += 1  # due while the bot was away: now, at market
            self._reduce(ticket, planned.share * trade.amount, planned.reason, now)
        ending = [f for f in past if f.reason not in targets]
        if ending and not ticket.done:  # the path ended the trade at a past candle
            reason = ending[-1].reason
            if reason in (STOP_LOSS, TRAILING_STOP) and not self.stop_on_exchange:
                log.info("%s: the stop was reached; selling at market", trade.pair)
            else:
                log.warning("%s: %s is due and has not happened; at market", trade.pair, reason)
            self._reduce(ticket, self._left(ticket), reason, now, closing=True)
        close = float(data.prices["close"][-1])
        for planned in path.decided:
            if ticket.done or ticket.exit is not None:
                break
            if planned.reason in targets:
                ticket.taken += 1
                self._reduce(ticket, planned.share * trade.amount, planned.reason, now)
            elif planned.reason.startswith("exit:"):
                limit = close if self.exit_kind == "limit" else None
                reason = planned.reason.removeprefix("exit:")
                self._reduce(ticket, self._left(ticket), reason, now, closing=True, limit=limit)
            else:  # a protection's close-all
                limit = self._emergency_limit(data)
                self._reduce(
                    ticket, self._left(ticket), planned.reason, now, closing=True, limit=limit
                )
        stop = self._on_tick(ticket, path.final_stop)
        moved = ticket.stop is None or not math.isclose(stop, ticket.stop_price or 0.0)
        if not ticket.done and ticket.exit is None and math.isfinite(stop) and moved:
            self._place_stop(ticket, stop, now)
        self._close_if_flat(ticket, now)

    def _reduce(
        self,
        ticket: Ticket,
        amount: float,
        reason: str,
        now: pd.Timestamp,
        *,
        closing: bool = False,
        limit: float | None = None,
    ) -> None:
        """Sell (or buy back) `amount` of the trade: at market, or at `limit`. On spot a
        resting stop is lifted first and `_decide` puts a new one back for what is left;
        on futures it stays (see the module's docstring)."""
        trade = ticket.trade
        assert trade is not None
        amount = self.broker.tradable(ticket.pair, min(amount, self._left(ticket)))
        if amount <= 0:
            return
        if not self.reduce_only:
            self._lift_stop(ticket, now)
            if ticket.done:
                return
        kind: OrderKind = "market" if limit is None else "limit"
        request = OrderRequest(
            self._next_id(ticket, "x"), ticket.pair, ticket.side, False, kind, amount, price=limit
        )
        ticket.exit, ticket.exit_placed = request.client_id, now
        ticket.exit_reason, ticket.closing = reason, closing
        self._save(now)
        state = self._send(request, now)
        if state is None:  # unknown: the next poll finds it, or sends the exit again
            return
        if state.status == "rejected":
            ticket.exit = None
            self._liquidated(ticket, now)  # futures: nothing left to reduce?
            return
        self._record(ticket, state, reason, now)
        if state.done:
            ticket.exit = None
        self._close_if_flat(ticket, now)

    def _emergency_limit(self, data: PairData) -> float | None:
        return float(data.prices["close"][-1]) if self.emergency_kind == "limit" else None


@contextmanager
def _until_next_time(ticket: Ticket, what: str) -> Iterator[None]:
    """The exchange is out of reach for now: log it; the next poll or close tries again.
    A problem a human must solve (a refused API key) still stops the bot."""
    try:
        yield
    except ExchangeError as problem:
        if not problem.temporary:
            raise
        log.warning("%s: %s (%s); trying again later", ticket.pair, what, problem)

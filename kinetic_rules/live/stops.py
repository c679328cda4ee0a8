"""The stop order a trade keeps resting on the exchange (`orders.stoploss_on_exchange`):
placed at the trade's stop, on the pair's tick, replaced as the trailing stop moves,
lifted when a spot exit needs the coins it holds.

A part of the Executor (live/executor.py), which supplies the attributes and methods below.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import pandas as pd

from kinetic_rules.engine.model import STOP_LOSS, TRAILING_STOP
from kinetic_rules.engine.orders import OrderState, Ticket
from kinetic_rules.live.broker import Broker, OrderRequest
from kinetic_rules.market_rules import round_stop

log = logging.getLogger("kinetic_rules.live")

# `orders.stoploss: limit`: once triggered, the stop sells no more than this below it
# (buys no more above); beyond that it rests as a limit until the price comes back.
STOP_LIMIT_OFFSET = 0.005


class ExchangeStops:
    """The Executor's resting stops."""

    broker: Broker
    stop_on_exchange: bool
    stop_limit: bool  # else stop-market
    # The Executor's own and its other parts' (declared only: not to shadow them)
    _left: Callable[[Ticket], float]
    _save: Callable[[pd.Timestamp], None]
    _send: Callable[[OrderRequest, pd.Timestamp], OrderState | None]
    _kept: Callable[[OrderState], OrderState]
    _cancel: Callable[[str, str], OrderState]
    _record: Callable[..., None]
    _close_if_flat: Callable[[Ticket, pd.Timestamp], None]
    _liquidated: Callable[[Ticket, pd.Timestamp], None]
    _next_id: Callable[[Ticket, str], str]

    def _place_stop(self, ticket: Ticket, price: float, now: pd.Timestamp) -> None:
        """Rest a stop for what is left at `price`, replacing the one resting now."""
        left = self._left(ticket)
        if not math.isfinite(price) or ticket.trade is None or left <= 0:
            return
        if not self.stop_on_exchange:  # the bot watches it: _decide sells when it is reached
            ticket.stop_price = ticket.trade.stop = price
            return
        price = self._on_tick(ticket, price)
        beyond = -1.0 if ticket.side == "long" else 1.0  # a long's stop sells: below it
        limit = price * (1 + beyond * STOP_LIMIT_OFFSET) if self.stop_limit else None
        request = OrderRequest(
            self._next_id(ticket, "s"), ticket.pair, ticket.side, False, "stop", left,
            price=limit, stop_price=price,
        )  # fmt: skip
        old, ticket.stop, ticket.stop_price = ticket.stop, request.client_id, price
        self._save(now)
        if old is None:
            state = self._send(request, now)
        else:
            state = self._kept(self.broker.replace_stop(old, ticket.pair, request))
            if state.replaced is not None:
                self._kept(state.replaced)
            ended = state.replaced if state.replaced is not None else state
            self._record(ticket, ended, self._stop_reason(ticket), now, client_id=old)
            if state.client_id == old:  # it had filled: nothing was replaced
                ticket.stop = None
                self._close_if_flat(ticket, now)
                return
        if state is None:  # unknown: the next poll finds it, or it is placed again
            return
        if state.status == "rejected":
            ticket.stop, ticket.stop_price = None, None
            self._liquidated(ticket, now)  # futures: no position left to protect?
            if ticket.done:
                return
            log.warning(
                "%s: no stop on the exchange; the bot watches the price itself", ticket.pair
            )
        else:
            self._record(ticket, state, self._stop_reason(ticket), now)
            if ticket.trade is not None:
                ticket.trade.stop = price

    def _lift_stop(self, ticket: Ticket, now: pd.Timestamp) -> None:
        if ticket.stop is None:
            return
        state = self._cancel(ticket.stop, ticket.pair)
        self._record(ticket, state, self._stop_reason(ticket), now)
        ticket.stop, ticket.stop_price = None, None
        self._close_if_flat(ticket, now)

    def _stop_reason(self, ticket: Ticket) -> str:
        trade = ticket.trade
        if trade is None or ticket.stop_price is None:
            return STOP_LOSS
        initial = self._on_tick(ticket, trade.initial_stop)
        return STOP_LOSS if ticket.stop_price in (initial, trade.initial_stop) else TRAILING_STOP

    def _on_tick(self, ticket: Ticket, price: float) -> float:
        """A stop the exchange takes: on the pair's tick, rounded towards the price it
        protects (a long's up, a short's down), never looser than the strategy's."""
        if not self.stop_on_exchange or not math.isfinite(price):
            return price
        rules = self.broker.rules(ticket.pair)
        if rules is None:
            return price
        return round_stop(price, rules.tick_size, 1.0 if ticket.side == "long" else -1.0)

"""What the live runtime needs from an exchange account, and nothing more.

Two implementations: the paper broker (fills simulated with the backtest's fill
rules) and the ccxt broker (real orders). The runtime never imports ccxt.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import pandas as pd

from kinetic_rules.engine.orders import OrderKind, OrderState
from kinetic_rules.market_rules import MarketRules

Side = Literal["long", "short"]
INSUFFICIENT_CUT = 0.01  # the one retry after "insufficient balance" asks for 1% less

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrderRequest:
    client_id: str  # ours, unique and stable: lets a restart find an order it placed
    pair: str
    side: Side  # the position's side
    opening: bool  # True: opens/increases the position; False: reduces/closes it
    kind: OrderKind
    amount: float  # base-asset units
    price: float | None = None  # limit price (limit orders; a stop with one is a stop-limit)
    stop_price: float | None = None  # trigger price (stop orders)
    leverage: float | None = None  # futures, opening orders: the trade's leverage


@dataclass(frozen=True)
class ExchangePosition:
    """A position as the exchange reports it (one-way mode: one per symbol)."""

    pair: str  # the strategy's name for it, e.g. BTC/USDT
    side: Side
    amount: float  # base units, positive
    entry_price: float
    leverage: float | None
    margin_mode: str | None
    liquidation_price: float | None
    tick: float | None = None  # the symbol's price step, to compare prices with


@dataclass(frozen=True)
class ExchangeLiquidation:
    """A position the exchange liquidated: when, at what price, and what the account lost."""

    pair: str
    time: pd.Timestamp
    price: float
    amount: float  # base units, positive
    # what the account lost, in the settlement currency (the margin that stood behind the
    # position); None when the exchange's records do not say: the price move alone then
    lost: float | None


class Broker(Protocol):
    """An exchange account. Every method may raise ExchangeError (see errors.py):
    `temporary=True` means try again later, `temporary=False` means a human is needed."""

    @property
    def fail_safe(self) -> bool:
        """True while the exchange has been unreachable too long to open new trades."""
        ...

    def free_balance(self, currency: str) -> float: ...

    def total_balance(self, currency: str) -> float:
        """What the account holds of `currency`: free, plus what open orders hold."""
        ...

    def tradable(self, pair: str, amount: float) -> float:
        """`amount` rounded down to the pair's amount step; 0.0 when that is below the
        smallest order the exchange takes (what is left then is dust, not a position)."""
        ...

    def rules(self, pair: str) -> MarketRules | None:
        """The pair's tick, amount step and minimums; None when the exchange gives its
        precision in significant digits (no fixed step)."""
        ...

    def place(self, order: OrderRequest) -> OrderState: ...

    def cancel(self, client_id: str, pair: str) -> OrderState: ...

    def fetch(self, client_id: str, pair: str) -> OrderState: ...

    def find(self, client_id: str, pair: str) -> OrderState | None:
        """Like fetch, but None when the exchange has no such order: after a crash, an
        order the bot meant to send may never have reached the exchange."""
        ...

    def open_orders(self, pair: str | None = None) -> list[OrderState]: ...

    def positions(self) -> list[ExchangePosition] | None:
        """Futures: the account's open positions as the exchange reports them; None on a
        spot account (it has balances, not positions)."""
        ...

    def funding(
        self, pair: str, since: pd.Timestamp, until: pd.Timestamp | None = None
    ) -> float | None:
        """Futures: the funding the account paid (+) or received (−) on `pair` between
        `since` and `until`, from the exchange's own income records; None on spot."""
        ...

    def liquidation(self, pair: str, since: pd.Timestamp) -> ExchangeLiquidation | None:
        """Futures: the pair's latest liquidation since `since`, as the exchange recorded
        it; None when there was none, on spot, or when the broker cannot tell."""
        ...

    def replace_stop(self, client_id: str, pair: str, new: OrderRequest) -> OrderState:
        """Move a resting stop: cancel it and place `new`; the stop is never left absent
        for longer than the two calls take, and a failed placement is retried first."""
        ...


# -- rules every broker follows, real or paper -------------------------------------------


class Refused(Exception):
    """The exchange says no to this order (it is there, and it means it); `reason` is
    what it says. Not an outage: it becomes a "rejected" OrderState, not an error."""

    def __init__(self, reason: str, *, insufficient: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.insufficient = reason, insufficient


def rejected(order: OrderRequest, reason: str) -> OrderState:
    log.warning("order %s on %s rejected: %s", order.client_id, order.pair, reason)
    return OrderState(
        order.client_id, "", order.pair, "rejected", order.kind, order.amount, reason=reason
    )


def submit_or_reject(
    order: OrderRequest, submit: Callable[[OrderRequest], OrderState], cut: float = INSUFFICIENT_CUT
) -> OrderState:
    """Send an order; a refusal is a "rejected" state with the reason. After "insufficient
    balance" it is sent once more for `cut` less: 1% on spot (fees and rounding are the
    usual cause), half on futures (insufficient margin: seed 001's rule)."""
    try:
        return submit(order)
    except Refused as refused:
        if not refused.insufficient:
            return rejected(order, refused.reason)
        first = refused.reason
    smaller = dataclasses.replace(order, amount=order.amount * (1 - cut))
    log.warning(
        "order %s on %s refused (%s); sending it once more for %g instead of %g",
        order.client_id, order.pair, first, smaller.amount, order.amount,
    )  # fmt: skip
    try:
        return submit(smaller)
    except Refused as refused:
        return rejected(smaller, refused.reason)


def replace_stop(broker: Broker, client_id: str, pair: str, new: OrderRequest) -> OrderState:
    """Cancel a resting stop and place `new`; the old one's end is in `.replaced`.

    If the old stop had already filled completely, the position is gone: nothing is
    placed (that would sell coins the strategy no longer holds) and the old, filled
    state is returned. Otherwise `new` is placed as given, also when the old one was
    already canceled or partly filled; `replaced.filled` says what it sold.
    """
    if new.kind != "stop":
        raise ValueError(f"replace_stop needs a stop order, not {new.kind}")
    old = broker.cancel(client_id, pair)
    if old.status == "closed" or (old.amount > 0 and old.filled >= old.amount):
        log.warning("stop %s on %s had already filled; nothing to replace", client_id, pair)
        return old
    placed = broker.place(new)
    placed.replaced = old
    return placed

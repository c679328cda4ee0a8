"""What the live runtime needs from an exchange account, and nothing more.

Two implementations: the paper broker (fills simulated with the backtest's fill
rules) and the ccxt broker (real orders). The runtime never imports ccxt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import pandas as pd

OrderKind = Literal["market", "limit", "stop"]  # stop: a stop-loss order resting on the exchange
OrderStatus = Literal["open", "closed", "canceled", "rejected", "expired"]
Side = Literal["long", "short"]


@dataclass(frozen=True)
class OrderRequest:
    client_id: str  # ours, unique and stable: lets a restart find an order it placed
    pair: str
    side: Side  # the position's side
    opening: bool  # True: opens/increases the position; False: reduces/closes it
    kind: OrderKind
    amount: float  # base-asset units
    price: float | None = None  # limit price (limit orders)
    stop_price: float | None = None  # trigger price (stop orders)


@dataclass
class OrderState:
    client_id: str
    exchange_id: str
    pair: str
    status: OrderStatus
    kind: OrderKind
    amount: float
    filled: float = 0.0
    average: float | None = None  # average fill price
    fee: float = 0.0  # in the stake currency
    updated: pd.Timestamp | None = None
    reason: str = ""  # why it was rejected or canceled, from the exchange
    raw: dict[str, object] = field(default_factory=dict, repr=False)
    replaced: OrderState | None = None  # replace_stop: how the stop this one replaced ended

    @property
    def done(self) -> bool:
        return self.status in ("closed", "canceled", "rejected", "expired")


class Broker(Protocol):
    """An exchange account. Every method may raise ExchangeError (see errors.py):
    `temporary=True` means try again later, `temporary=False` means a human is needed."""

    @property
    def fail_safe(self) -> bool:
        """True while the exchange has been unreachable too long to open new trades."""
        ...

    def free_balance(self, currency: str) -> float: ...

    def tradable(self, pair: str, amount: float) -> float:
        """`amount` rounded down to the pair's amount step; 0.0 when that is below the
        smallest order the exchange takes (what is left then is dust, not a position)."""
        ...

    def place(self, order: OrderRequest) -> OrderState: ...

    def cancel(self, client_id: str, pair: str) -> OrderState: ...

    def fetch(self, client_id: str, pair: str) -> OrderState: ...

    def find(self, client_id: str, pair: str) -> OrderState | None:
        """Like fetch, but None when the exchange has no such order: after a crash, an
        order the bot meant to send may never have reached the exchange."""
        ...

    def open_orders(self, pair: str | None = None) -> list[OrderState]: ...

    def replace_stop(self, client_id: str, pair: str, new: OrderRequest) -> OrderState:
        """Move a resting stop: cancel it and place `new`; the stop is never left absent
        for longer than the two calls take, and a failed placement is retried first."""
        ...

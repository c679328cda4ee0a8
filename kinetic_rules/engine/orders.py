"""A trading session's own records: its orders, its book and the events it reports.

Plain data made by the live runtime and kept by the trade store. They live here, below
both, so persistence needs no live runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from kinetic_rules.engine.books import PortfolioBooks
from kinetic_rules.engine.model import Side, Trade

OrderKind = Literal["market", "limit", "stop"]  # stop: a stop-loss order resting on the exchange
OrderStatus = Literal["open", "closed", "canceled", "rejected", "expired"]


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


@dataclass
class Ticket:
    """One position's orders: what the executor must remember across a restart."""

    position_id: int
    pair: str
    side: Side
    signal_time: pd.Timestamp
    stake: float
    entry: str  # client id of the entry order
    placed: pd.Timestamp  # when the entry order was sent
    trade: Trade | None = None  # once the entry filled (partly, if it timed out)
    stop: str | None = None  # the resting stop order
    stop_price: float | None = None
    exit: str | None = None  # a limit exit waiting to fill
    exit_placed: pd.Timestamp | None = None
    exit_reason: str = ""
    closing: bool = False  # the exit order closes the whole trade (not a take-profit)
    taken: int = 0  # take-profits done
    serial: int = 0  # orders sent for this position; each client id is unique
    seen: dict[str, float] = field(default_factory=dict)  # amount recorded, per order
    done: bool = False


@dataclass
class Book:
    """Everything a restart needs: the open tickets and the portfolio's own books (the
    history its rules read: Kelly's closed profits, cooldowns, today's closed trades)."""

    prefix: str  # this session's client-id prefix
    starting_balance: float
    portfolio: PortfolioBooks = field(default_factory=PortfolioBooks)
    tickets: list[Ticket] = field(default_factory=list)


EventKind = Literal[
    "started", "stopped", "trade_opened", "trade_closed", "order_rejected",
    "order_timeout", "fail_safe_entered", "fail_safe_left", "error", "warning",
    "control",  # a person paused, resumed, closed or stopped (dashboard or chat): who, when
]  # fmt: skip


@dataclass(frozen=True)
class Event:
    kind: EventKind
    time: pd.Timestamp
    message: str  # one plain sentence for a human, e.g. "Opened SOL/USDT long at 145.20"
    data: dict[str, object] = field(default_factory=dict)  # pair, prices, profit, …

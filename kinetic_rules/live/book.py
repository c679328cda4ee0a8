"""The executor's book: what a live session must remember across a restart.

Plain data: the positions it holds orders for, the client ids of those orders and what
each had filled when last looked at, and the portfolio's own books. The trade store
keeps it (persist/book.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from kinetic_rules.engine.books import PortfolioBooks
from kinetic_rules.engine.model import Side, Trade
from kinetic_rules.live.broker import OrderState


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


class BookJournal(Protocol):
    """Where the book is kept durably (the trade store implements it)."""

    def load_book(self) -> Book | None: ...

    def save_book(self, book: Book) -> None: ...

    def save_order(self, state: OrderState) -> None: ...

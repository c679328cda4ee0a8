"""The live executor's book, kept in the trade store so that a restart finds its orders.

It is saved before every order is sent and after every answer, each time in one
transaction: after a crash the book names every order the bot may have sent.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from kinetic_rules.engine.orders import Book, OrderState, Ticket
from kinetic_rules.errors import DataError
from kinetic_rules.persist.serialize import trade_from_dict, trade_to_dict
from kinetic_rules.persist.store import TradeStore


class StoredBook:
    """Implements the executor's BookJournal on a TradeStore (one key per strategy and
    mode: a paper book never mixes with a live one)."""

    def __init__(self, store: TradeStore, strategy: str, mode: str = "live") -> None:
        self.store = store
        self.key = f"{mode}-book:{strategy}"
        self._saved: str | None = None

    def load_book(self) -> Book | None:
        text = self.store.state(self.key)
        if text is None:
            return None
        try:
            return book_from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(
                f"the live book in the trade store ({self.key}) cannot be read: {error}"
            ) from None

    def save_book(self, book: Book) -> None:
        text = json.dumps(book_to_dict(book), sort_keys=True)
        if text != self._saved:  # the executor saves often; most times nothing changed
            self.store.set_state(self.key, text)
            self._saved = text

    def save_order(self, state: OrderState) -> None:
        self.store.save_order(None, state)


def book_to_dict(book: Book) -> dict[str, Any]:
    return {
        "prefix": book.prefix,
        "starting_balance": book.starting_balance,
        "realized": book.realized,
        "closed_profits": book.closed_profits,
        "next_id": book.next_id,
        "tickets": [_ticket_to_dict(t) for t in book.tickets],
    }


def book_from_dict(row: dict[str, Any]) -> Book:
    return Book(
        prefix=str(row["prefix"]),
        starting_balance=float(row["starting_balance"]),
        realized=float(row["realized"]),
        closed_profits={k: [float(x) for x in v] for k, v in row["closed_profits"].items()},
        next_id=int(row["next_id"]),
        tickets=[_ticket_from_dict(t) for t in row["tickets"]],
    )


def _time(value: pd.Timestamp | None) -> str | None:
    return None if value is None else value.isoformat()


def _ticket_to_dict(ticket: Ticket) -> dict[str, Any]:
    return {
        "position_id": ticket.position_id,
        "pair": ticket.pair,
        "side": ticket.side,
        "signal_time": _time(ticket.signal_time),
        "stake": ticket.stake,
        "entry": ticket.entry,
        "placed": _time(ticket.placed),
        "trade": None if ticket.trade is None else trade_to_dict(ticket.trade),
        "stop": ticket.stop,
        "stop_price": ticket.stop_price,
        "exit": ticket.exit,
        "exit_placed": _time(ticket.exit_placed),
        "exit_reason": ticket.exit_reason,
        "closing": ticket.closing,
        "taken": ticket.taken,
        "serial": ticket.serial,
        "seen": ticket.seen,
        "done": ticket.done,
    }


def _ticket_from_dict(row: dict[str, Any]) -> Ticket:
    side = row["side"]
    if side not in ("long", "short"):
        raise ValueError(f"side {side!r}")
    return Ticket(
        position_id=int(row["position_id"]),
        pair=str(row["pair"]),
        side=side,
        signal_time=pd.Timestamp(row["signal_time"]),
        stake=float(row["stake"]),
        entry=str(row["entry"]),
        placed=pd.Timestamp(row["placed"]),
        trade=None if row["trade"] is None else trade_from_dict(row["trade"]),
        stop=row["stop"],
        stop_price=row["stop_price"],
        exit=row["exit"],
        exit_placed=None if row["exit_placed"] is None else pd.Timestamp(row["exit_placed"]),
        exit_reason=str(row["exit_reason"]),
        closing=bool(row["closing"]),
        taken=int(row["taken"]),
        serial=int(row["serial"]),
        seen={str(k): float(v) for k, v in row["seen"].items()},
        done=bool(row["done"]),
    )

"""Where a live session keeps its book durably across a restart.

The book itself (tickets, balances, closed profits) is plain data in engine/orders.py;
the trade store implements this journal (persist/book.py).
"""

from __future__ import annotations

from typing import Protocol

from kinetic_rules.engine.orders import Book, OrderState


class BookJournal(Protocol):
    """Where the book is kept durably (the trade store implements it)."""

    def load_book(self) -> Book | None: ...

    def save_book(self, book: Book) -> None: ...

    def save_order(self, state: OrderState) -> None: ...

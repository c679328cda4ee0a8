"""The live book in the trade store keeps every piece of history the rules read."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from kinetic_rules.engine.books import PortfolioBooks
from kinetic_rules.engine.orders import Book
from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.book import StoredBook, book_to_dict

T = pd.Timestamp("2024-03-05 13:45", tz="UTC")


def busy_books() -> PortfolioBooks:
    return PortfolioBooks(
        realized=-123.456789,
        closed_profits={"BTC/USDT": [10.5, -40.25], "ETH/USDT": [-93.706789]},
        all_profits=[10.5, -93.706789, -40.25],  # the order they settled in
        last_exit={"BTC/USDT": T, "ETH/USDT": T - pd.Timedelta("2h")},
        tag_exit={("BTC/USDT", "trend"): T, ("BTC/USDT", ""): T - pd.Timedelta("15m")},
        closed_today=[(T, T - pd.Timedelta("15m"), -40.25), (T, T, 1e-9)],
        next_id=17,
        next_trade_id=12,
    )


def test_the_stored_book_gives_back_every_field_of_the_portfolio_books(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    with TradeStore(url) as store:
        StoredBook(store, "busy").save_book(Book("kr-x-", 1000.0, busy_books()))
    with TradeStore(url) as store:  # another process, later
        loaded = StoredBook(store, "busy").load_book()
    assert loaded is not None
    assert loaded.portfolio == busy_books()
    assert loaded.portfolio.closed_today[0][0].tz is not None


def test_a_book_kept_by_an_earlier_version_still_loads(tmp_path: Path) -> None:
    """Before cooldowns and today's trades were kept: those start empty, Kelly per strategy
    reads every pair's closed profits."""
    row = book_to_dict(Book("kr-x-", 1000.0, busy_books()))
    for key in ("all_profits", "last_exit", "tag_exit", "closed_today", "next_trade_id"):
        del row[key]
    with TradeStore(f"sqlite:///{tmp_path / 'old.sqlite'}") as store:
        store.set_state("live-book:busy", json.dumps(row))
        loaded = StoredBook(store, "busy").load_book()
    assert loaded is not None
    books = loaded.portfolio
    assert books.realized == -123.456789 and books.next_id == 17
    assert sorted(books.all_profits) == sorted([10.5, -40.25, -93.706789])
    assert books.last_exit == {} and books.tag_exit == {} and books.closed_today == []

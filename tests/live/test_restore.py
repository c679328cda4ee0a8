"""What a restart restores, field by field, after the live runner was killed with SIGKILL.

The runner (`kinetic-rules run --live` in the stand-in's time, see bot_process.py) is
killed once it has closed a trade and holds another open with its stop resting on the
exchange. What it had committed to the trade store is what it knew: the test reads that
book, starts the bot again on the same store, and compares what the restarted bot holds
in memory with it, field by field — realized profit, the closed profits per pair that
feed Kelly, the next position id, each order's client-id serial, the open trades and
their stops. Then it lets the bot trade on: no position id and no client order id is
ever used twice.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from kinetic_rules.engine.orders import Book
from kinetic_rules.persist.book import book_from_dict
from tests.live.test_live_trading import start_bot
from tests.live.test_sigkill import kill_when, launch, order_requests, standin  # noqa: F401
from tests.standin import ExchangeStandin

BOOK_KEY = "live-book:busy-spot"
pytestmark = pytest.mark.slow  # hours of stand-in time in a subprocess, then in this one


def stored_book(database: Path) -> Book | None:
    """The book as the runner last committed it, read without taking any lock."""
    if not database.exists():
        return None
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as raw:
        try:
            row = raw.execute(
                "SELECT value FROM runtime_state WHERE key = ?", (BOOK_KEY,)
            ).fetchone()
        except sqlite3.OperationalError:  # the schema is not there yet
            return None
    return None if row is None else book_from_dict(json.loads(row[0]))


def differences(mine: Any, theirs: Any, where: str = "book") -> list[str]:
    """Every field, however deep, where two books differ: `book.tickets[0].trade.stop: …`."""
    if dataclasses.is_dataclass(mine) and type(mine) is type(theirs):
        return [
            line
            for f in dataclasses.fields(mine)
            for line in differences(
                getattr(mine, f.name), getattr(theirs, f.name), f"{where}.{f.name}"
            )
        ]
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        return [
            line
            for i, pair in enumerate(zip(mine, theirs, strict=True))
            for line in differences(*pair, f"{where}[{i}]")
        ]
    if isinstance(mine, dict) and isinstance(theirs, dict) and mine.keys() == theirs.keys():
        return [line for k in mine for line in differences(mine[k], theirs[k], f"{where}[{k!r}]")]
    return [] if mine == theirs else [f"{where}: {mine!r} after the restart, {theirs!r} before"]


def worth_restoring(book: Book | None) -> bool:
    """A closed trade (realized profit, a pair's history) and an open one with its stop."""
    return (
        book is not None
        and book.realized != 0.0
        and any(book.closed_profits.values())
        and any(t.trade is not None and t.stop is not None and not t.done for t in book.tickets)
    )


def test_a_restart_after_sigkill_restores_every_field_of_the_books(
    standin: ExchangeStandin,  # noqa: F811
    tmp_path: Path,
) -> None:
    database = tmp_path / "live.sqlite"
    url = f"sqlite:///{database}"
    process = launch(standin, tmp_path, url)

    def ready() -> bool:  # cheap first: the store is read only once orders have gone out
        return order_requests(standin) >= 4 and worth_restoring(stored_book(database))

    kill_when(process, ready, tmp_path)
    before = stored_book(database)
    assert before is not None and worth_restoring(before)
    sent_before = {o.client_id for o in standin.account.orders}

    bot = start_bot(standin, tmp_path / "candles", url)
    runtime = bot.session.runtime
    assert runtime is not None and runtime.executor is not None
    portfolio, executor = runtime.portfolio, runtime.executor

    realized, closed_profits, next_id = portfolio.books()
    assert realized == before.realized
    assert closed_profits == before.closed_profits  # what Kelly sizes the next stake from
    assert next_id == before.next_id
    assert portfolio.starting_balance == before.starting_balance
    # The executor's book: every ticket with its orders, serial, stop and fills seen.
    # (A trade's `id` is the running process's count of trades: it is renumbered.)
    renumbered = [d for d in differences(executor.book, before) if ".trade.id:" not in d]
    assert renumbered == []
    live = [t for t in before.tickets if not t.done]
    assert [(p.id, p.pair, p.side, p.signal_time, p.stake) for p in portfolio.open_positions()] == [
        (t.position_id, t.pair, t.side, t.signal_time, t.stake) for t in live
    ]
    for ticket, position in zip(live, portfolio.open_positions(), strict=True):
        # entry fills, amount, stop level, take-profits taken
        assert [d for d in differences(position.trade, ticket.trade) if ".id:" not in d] == []
        assert position.state == ("open" if ticket.trade is not None else "pending")
    # The portfolio reports the open trades again (the store may lag the book by one change).
    assert sorted(t.pair for t in portfolio.trades if t.exit_time is None) == sorted(
        t.pair for t in live if t.trade is not None
    )

    # Trading on: new positions take fresh ids, and every order a fresh client id.
    bot.session.run(cycles=60)
    after = stored_book(database)
    assert after is not None
    assert [t for t in after.tickets if t.position_id >= before.next_id], "it never traded again"
    ids = [t.position_id for t in after.tickets]
    assert len(ids) == len(set(ids))
    sent = [o.client_id for o in standin.account.orders]
    # Serials carry on from the book: no client id is sent twice, old or new.
    assert len(sent) > len(sent_before) and len(sent) == len(set(sent))

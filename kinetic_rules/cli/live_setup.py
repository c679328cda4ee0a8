"""`run --live` and `run --fills book`: the account (real, or simulated on the live order
book), the confirmation for real money, and the executor attached to the runtime."""

from __future__ import annotations

import argparse
import secrets
import string
import sys
from collections.abc import Callable
from typing import Any

import pandas as pd

from kinetic_rules.compile.plan import Plan
from kinetic_rules.data.exchange import ensure_reachable
from kinetic_rules.engine.orders import Book
from kinetic_rules.errors import ConfigError
from kinetic_rules.live.ccxt_broker import CcxtBroker, broker_from_env
from kinetic_rules.live.executor import attach_executor
from kinetic_rules.live.futures import FuturesSettings
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.persist.book import StoredBook
from kinetic_rules.persist.store import TradeStore


def live_trading(
    args: argparse.Namespace, plan: Plan, exchange_id: str, store: TradeStore
) -> tuple[Any, Callable[[Runtime], None]]:
    """The exchange client to read candles with, and what turns a runtime into a live one."""
    spec = plan.strategy.spec
    futures = spec.market.type == "futures"  # (the checker refuses shorts on spot markets)
    broker = broker_from_env(
        exchange_id,
        stake_currency=spec.market.stake_currency,
        url_override=args.exchange_url,
        rate_limit_ms=spec.market.rate_limit_ms,
        futures=FuturesSettings(spec.market.margin_mode, spec.orders.stop_trigger)
        if futures
        else None,
    )
    ensure_reachable(broker.exchange)
    broker.check_account()  # futures: hedge mode is refused before anything is traded
    journal = StoredBook(store, spec.metadata.name)
    book = journal.load_book()
    resumed = book is not None
    if book is None:
        balance = broker.free_balance(spec.market.stake_currency)
        book = Book(prefix=_new_prefix(), starting_balance=balance)
    _confirm(args, plan, broker, book, resumed)
    journal.save_book(book)

    def attach(runtime: Runtime) -> None:
        assert book is not None
        attach_executor(runtime, broker, journal, book)

    return broker.exchange, attach


def _confirm(
    args: argparse.Namespace, plan: Plan, broker: CcxtBroker, book: Book, resumed: bool
) -> None:
    spec = plan.strategy.spec
    open_trades = sum(1 for t in book.tickets if not t.done)
    state = (
        f"resuming: {open_trades} open position(s) in its book"
        if resumed
        else f"starting equity {book.starting_balance:,.2f} {spec.market.stake_currency}"
    )
    print(
        f"LIVE TRADING with real orders on {broker.exchange.id}: strategy "
        f"{spec.metadata.name!r}, {state}.",
        file=sys.stderr,
    )
    if args.yes:
        return
    print("Type yes to start: ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer != "yes":
        raise ConfigError("live trading was not confirmed; nothing was traded")


def _new_prefix() -> str:
    """A client-id prefix for a new session: its orders are told apart from any other's."""
    alphabet = string.ascii_lowercase + string.digits
    return "kr" + "".join(secrets.choice(alphabet) for _ in range(6)) + "-"


def book_paper_trading(
    plan: Plan, exchange: Any, store: TradeStore, clock: Callable[[], pd.Timestamp]
) -> Callable[[Runtime], None]:
    """Paper trading through the executor and a paper broker: orders fill against the
    exchange's live tickers and order books instead of the candle fill model; on futures,
    in a simulated margin account. `clock` is the session's."""
    from kinetic_rules.engine.fills import fill_model
    from kinetic_rules.live.paper_broker import PaperBroker
    from kinetic_rules.live.paper_futures import PaperFuturesBroker

    spec = plan.strategy.spec
    name = spec.metadata.name
    settings: dict[str, Any] = dict(
        fills=fill_model(plan),
        stake_currency=spec.market.stake_currency,
        balance=spec.backtest.starting_balance,
        rate_limit_ms=spec.market.rate_limit_ms,
        journal=store,  # the simulated account survives a restart, resting orders included
        journal_key=f"paper-broker:{name}",
        clock=clock,
    )
    broker: PaperBroker
    if spec.market.type == "futures":  # a simulated margin account: live/paper_futures.py
        futures = FuturesSettings(spec.market.margin_mode, spec.orders.stop_trigger)
        maintenance = spec.market.maintenance_margin
        broker = PaperFuturesBroker(exchange, settings=futures, maintenance=maintenance, **settings)
    else:
        broker = PaperBroker(exchange, **settings)
    journal = StoredBook(store, name, mode="paper")
    book = journal.load_book() or Book(_new_prefix(), spec.backtest.starting_balance)
    journal.save_book(book)

    def attach(runtime: Runtime) -> None:
        attach_executor(runtime, broker, journal, book)

    return attach

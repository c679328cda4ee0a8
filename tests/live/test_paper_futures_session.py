"""`run --fills book` on a futures strategy: the live executor, unchanged, trading a
simulated margin account (PaperFuturesBroker) on the futures stand-in's live order book,
mark prices and funding; the exchange account is never touched."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kinetic_rules.compile.plan import build_plan
from kinetic_rules.data.store import CandleStore
from kinetic_rules.engine.fills import fill_model
from kinetic_rules.engine.model import Trade
from kinetic_rules.engine.orders import Book
from kinetic_rules.lang.checker import check
from kinetic_rules.live.executor import Executor, attach_executor
from kinetic_rules.live.futures import FuturesSettings
from kinetic_rules.live.paper_futures import PaperFuturesBroker
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.session import TradingSession
from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.book import StoredBook
from kinetic_rules.persist.sink import StoreSink
from kinetic_rules.spec.loader import load_file
from tests.conftest import WHOLE_HISTORY
from tests.live.test_paper_futures import futures_client
from tests.live.test_replay import Recorder
from tests.standin import ExchangeStandin

BUSY = Path(__file__).parent / "strategies" / "busy.yaml"  # futures, long and short
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
START = pd.Timestamp("2024-03-05 00:00:10", tz="UTC")
DEPOSIT = 10_000.0
pytestmark = pytest.mark.slow  # sessions of hours on the stand-in


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as exchange:
        exchange.clock.set(START)
        exchange.futures.funding_ms = 3_600_000  # hourly, so that a session meets many
        for pair in PAIRS:
            exchange.futures.funding_rate[pair.replace("/", "")] = Decimal("0.0005")
        yield exchange


@dataclass
class PaperBot:
    session: TradingSession
    broker: PaperFuturesBroker
    store: TradeStore
    recorder: Recorder
    restored: Book

    @property
    def trades(self) -> list[Trade]:
        assert self.session.runtime is not None
        return self.session.runtime.trades()

    @property
    def executor(self) -> Executor:
        assert self.session.runtime is not None and self.session.runtime.executor is not None
        executor = self.session.runtime.executor
        assert isinstance(executor, Executor)
        return executor


def start_paper_bot(
    standin: ExchangeStandin,
    root: Path,
    url: str,
    strategy: Path = BUSY,
    balance: float = DEPOSIT,
) -> PaperBot:
    """`balance`: the paper wallet (the book is sized on DEPOSIT)."""
    plan = build_plan(check(load_file(strategy)))
    store = TradeStore(url)

    def now() -> pd.Timestamp:
        return pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")

    def sleep(seconds: float) -> None:
        standin.clock.advance(int(seconds * 1000))

    client = futures_client(standin)
    spec = plan.strategy.spec
    broker = PaperFuturesBroker(
        client, settings=FuturesSettings(spec.market.margin_mode, spec.orders.stop_trigger),
        maintenance=spec.market.maintenance_margin, fills=fill_model(plan),
        stake_currency="USDT", balance=balance, clock=now, sleep=sleep, journal=store,
        journal_key="paper-broker:busy", rate_limit_ms=0,
    )  # fmt: skip
    journal = StoredBook(store, "busy", mode="paper")
    book = journal.load_book() or Book("krpaper-", DEPOSIT)
    recorder = Recorder()
    restored: list[Book] = []

    def attach(runtime: Runtime) -> None:
        runtime.notifiers.append(recorder)
        executor = attach_executor(runtime, broker, journal, book)
        restored.append(copy.deepcopy(executor.book))

    session = TradingSession(
        plan, client, CandleStore(root), PAIRS, clock=now, sleep=sleep,
        sizes={"5m": WHOLE_HISTORY}, sink=StoreSink(store, strategy="busy", mode="paper"),
        journal=store, poll_seconds=60, attach=attach,
    )  # fmt: skip
    session.start()
    return PaperBot(session, broker, store, recorder, restored[0])


def run_until(bot: PaperBot, wanted: object, cycles: int = 200) -> None:
    for _ in range(cycles):
        bot.session.run(cycles=1)
        if callable(wanted) and wanted():
            return
    raise AssertionError("the session never got there")


def wind_down(bot: PaperBot) -> None:
    assert bot.session.runtime is not None
    bot.session.runtime.request_stop()
    bot.session.run(cycles=300)


def open_short(bot: PaperBot) -> Trade | None:
    return next((t for t in bot.trades if t.exit_time is None and t.side == "short"), None)


def test_a_paper_futures_session_trades_shorts_with_reduce_only_mark_price_stops(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    bot = start_paper_bot(standin, tmp_path / "candles", f"sqlite:///{tmp_path / 'p.sqlite'}")
    run_until(bot, lambda: open_short(bot) is not None)
    short = open_short(bot)
    assert short is not None
    (held,) = [p for p in bot.broker.positions() or [] if p.pair == short.pair]
    assert (held.side, held.amount) == ("short", pytest.approx(short.amount))
    assert held.leverage == pytest.approx(round(short.leverage))
    (stop,) = bot.broker.account.resting(short.pair)
    assert stop.stop is not None and not stop.request.opening and stop.buying  # reduce-only
    # the mark price rises past the stop while the contract's last price stays put
    symbol = short.pair.replace("/", "")
    mark = float(standin.futures.mark_now(symbol))
    standin.futures.set_mark_ratio(symbol, f"{stop.stop * 1.001 / mark:.6f}")
    bot.session.run(cycles=1)
    standin.futures.set_mark_ratio(symbol, "1")
    assert short.exit_time is not None and short.exit_reason in ("stop_loss", "trailing_stop")
    assert any("triggered_at_mark" in entry for entry in stop.log)
    run_until(bot, lambda: len(bot.trades) >= 6, cycles=120)
    wind_down(bot)
    trades = bot.store.trades(mode="paper")
    assert {"long", "short"} <= {t.side for t in trades}
    assert all(t.exit_time is not None for t in trades)
    assert any(f.reason == "first" for t in trades for f in t.fills)  # a take-profit, in part
    assert bot.broker.positions() == []
    account = bot.broker.account
    assert all(not o.request.opening for o in account.orders if "x" in o.request.client_id[8:])
    assert sum(t.funding for t in trades) == pytest.approx(sum(c.paid for c in account.charges))
    assert account.charges  # funding was paid and received
    # every dollar the wallet gained or lost is in the stored trades' profits
    assert account.wallet == pytest.approx(DEPOSIT + sum(t.profit for t in trades), abs=1e-6)
    assert not standin.requests("/fapi/v1/order") and not standin.requests("/fapi/v1/algoOrder")


def test_a_restart_restores_the_paper_position_and_its_stop(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    bot = start_paper_bot(standin, tmp_path / "candles", url)
    run_until(bot, lambda: open_short(bot) is not None)
    short = open_short(bot)
    assert short is not None
    positions, orders = bot.broker.positions(), bot.broker.open_orders()
    book = copy.deepcopy(bot.executor.book)
    bot.store.close()  # the process dies: the next start has only the store
    again = start_paper_bot(standin, tmp_path / "candles", url)
    assert again.broker.positions() == positions
    assert [o.client_id for o in again.broker.open_orders()] == [o.client_id for o in orders]
    assert again.restored.tickets == book.tickets
    said = [e.message for e in again.recorder.events if e.kind in ("error", "warning")]
    assert not said, said  # the position is the book's: nothing to reconcile
    (trade,) = [t for t in again.trades if t.exit_time is None and t.pair == short.pair]
    assert trade.amount == pytest.approx(short.amount)
    wind_down(again)
    assert again.broker.positions() == []
    again.store.close()


def test_a_liquidation_on_the_mark_price_ends_the_trade_with_its_margin_lost(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    """At 40x with a stop 5% away, the liquidation price (about 2% away) comes first: the
    paper account liquidates on the mark, cancels the stop, and the executor ends the trade."""
    spec = yaml.safe_load(BUSY.read_text())
    spec["leverage"] = 40
    spec["stoploss"] = {"initial": "entry_price * (1 - side * 5%)", "max_distance": "10%"}
    risky = tmp_path / "risky.yaml"
    risky.write_text(yaml.safe_dump(spec))
    bot = start_paper_bot(
        standin, tmp_path / "candles", f"sqlite:///{tmp_path / 'p.sqlite'}", risky
    )
    run_until(bot, lambda: any(t.exit_time is None for t in bot.trades))
    (trade,) = [t for t in bot.trades if t.exit_time is None]
    (held,) = [p for p in bot.broker.positions() or [] if p.pair == trade.pair]
    assert held.leverage == 40 and held.liquidation_price is not None
    symbol = trade.pair.replace("/", "")
    sign = 1.0 if trade.side == "long" else -1.0
    past = held.liquidation_price * (1 - sign * 0.001)
    standin.futures.set_mark_ratio(symbol, f"{past / float(standin.futures.mark_now(symbol)):.6f}")
    wallet = bot.broker.account.wallet
    bot.session.run(cycles=1)
    standin.futures.set_mark_ratio(symbol, "1")
    assert trade.exit_reason == "liquidation"
    assert trade.exit_price == pytest.approx(held.liquidation_price)
    (record,) = bot.broker.account.liquidations
    assert record.lost == pytest.approx(held.amount * held.entry_price / 40)
    assert bot.broker.account.wallet == pytest.approx(wallet - record.lost)
    assert any("liquidated" in e.message for e in bot.recorder.events if e.kind == "warning")
    wind_down(bot)
    trades = bot.store.trades(mode="paper")
    assert bot.broker.account.wallet == pytest.approx(
        DEPOSIT + sum(t.profit for t in trades), abs=1e-6
    )

"""`run --live` on a futures account: longs, shorts, leverage and mark-price stops through the
executor, the real ccxt `binanceusdm` client and the stand-in; and what a restart finds."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.compile.plan import build_plan
from kinetic_rules.data.store import CandleStore
from kinetic_rules.engine.orders import Book
from kinetic_rules.lang.checker import check
from kinetic_rules.live.ccxt_broker import CcxtBroker
from kinetic_rules.live.executor import attach_executor
from kinetic_rules.live.futures import BinanceUsdm, FuturesSettings
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.session import TradingSession
from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.book import StoredBook
from kinetic_rules.persist.sink import StoreSink
from kinetic_rules.spec.loader import load_file
from tests.conftest import WHOLE_HISTORY
from tests.live.test_live_trading import Bot, wind_down
from tests.live.test_replay import Recorder
from tests.standin import ExchangeStandin
from tests.standin.account import API_KEY, API_SECRET

BUSY = Path(__file__).parent / "strategies" / "busy.yaml"  # futures, long and short
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
START = pd.Timestamp("2024-03-05 00:00:10", tz="UTC")
DEPOSIT = 10_000.0


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as exchange:
        exchange.clock.set(START)
        exchange.futures.deposit(DEPOSIT)
        for pair in PAIRS:  # funding is not charged to live trades yet (docs/live.md)
            exchange.futures.funding_rate[pair.replace("/", "")] = Decimal(0)
        yield exchange


class BookRecorder(Recorder):
    """The events, and the executor's book as a start restored it (before any close)."""

    restored: Book | None = None


def start_futures_bot(
    standin: ExchangeStandin,
    root: Path,
    url: str,
    strategy: Path = BUSY,
    pairs: list[str] = PAIRS,
    poll_seconds: int = 60,
    book_balance: float | None = None,
) -> Bot:
    """`book_balance`: what a new book sizes its stakes on (default: the account's)."""
    plan = build_plan(check(load_file(strategy)))
    name = plan.strategy.spec.metadata.name
    store = TradeStore(url)

    def now() -> pd.Timestamp:
        return pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")

    def sleep(seconds: float) -> None:
        standin.clock.advance(int(seconds * 1000))

    client = standin.ccxt_futures_client(apiKey=API_KEY, secret=API_SECRET)
    broker = CcxtBroker(
        client, stake_currency="USDT", clock=lambda: standin.clock.now() / 1000, sleep=sleep,
        futures=(BinanceUsdm(), FuturesSettings()),
    )  # fmt: skip
    broker.check_account()
    journal = StoredBook(store, name)
    book = journal.load_book() or Book("krfut-", book_balance or broker.free_balance("USDT"))
    recorder = BookRecorder()

    def attach(runtime: Runtime) -> None:
        runtime.notifiers.append(recorder)
        executor = attach_executor(runtime, broker, journal, book)
        recorder.restored = copy.deepcopy(executor.book)  # as restored, before any close

    session = TradingSession(
        plan, broker.exchange, CandleStore(root), pairs, clock=now, sleep=sleep,
        sizes={"5m": WHOLE_HISTORY, "15m": WHOLE_HISTORY},
        sink=StoreSink(store, strategy=name, mode="live"), journal=store, attach=attach,
        poll_seconds=poll_seconds,
    )  # fmt: skip
    session.start()
    return Bot(session, store, recorder)


def test_a_futures_session_trades_longs_and_shorts_and_the_wallet_is_the_trades(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    bot = start_futures_bot(standin, tmp_path / "candles", url)
    bot.session.run(cycles=90)
    account = standin.futures
    open_trades = {t.pair.replace("/", ""): t for t in bot.trades if t.exit_time is None}
    stops = {o.symbol: o for o in account.open_orders(None, algo=True)}
    assert set(stops) == set(open_trades)  # every open trade has its stop on the exchange
    for symbol, stop in stops.items():
        assert stop.reduce_only and stop.working_type == "MARK_PRICE"
        assert stop.buy == (open_trades[symbol].side == "short")
    wind_down(bot)
    with TradeStore(url) as store:
        trades = store.trades(mode="live")
    assert {"long", "short"} <= {t.side for t in trades}
    assert all(t.exit_time is not None for t in trades)
    assert account.open_orders(None) == []
    assert all(account.position(p.replace("/", "")).amount == 0 for p in PAIRS)
    # every dollar the wallet gained or lost is in the stored trades' profits
    assert float(account.wallet) == pytest.approx(DEPOSIT + sum(t.profit for t in trades), abs=1e-6)
    sold_short = sorted(
        (o.symbol, float(o.executed))
        for o in account.orders
        if o.side == "SELL" and not o.reduce_only and o.executed > 0
    )
    assert sold_short == sorted(
        (t.pair.replace("/", ""), t.amount) for t in trades if t.side == "short"
    )
    assert all(o.reduce_only for o in account.orders if o.client_id.startswith("krfut-")
               and ("x" in o.client_id.removeprefix("krfut-") or o.algo))  # fmt: skip
    assert set(account.leverage) <= {p.replace("/", "") for p in PAIRS}
    assert all(account.isolated(s) for s in account.leverage)


def test_a_restart_reports_positions_opened_and_closed_outside_the_bot(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    bot = start_futures_bot(standin, tmp_path / "candles", url)
    for _ in range(120):
        bot.session.run(cycles=1)
        if any(t.exit_time is None for t in bot.trades):
            break
    (held,) = [t for t in bot.trades if t.exit_time is None][:1]
    symbol = held.pair.replace("/", "")
    bot.store.close()
    # while the bot is down, someone closes its position by hand and opens one of their own
    account = standin.futures
    account.open_by_hand(symbol, str(-account.position(symbol).amount))
    other = next(p for p in PAIRS if p != held.pair)
    account.open_by_hand(other.replace("/", ""), "-0.5" if other == "SOL/USDT" else "-0.01")
    again = start_futures_bot(standin, tmp_path / "candles", url)
    said = [e.message for e in again.recorder.events if e.kind == "error"]
    assert any(held.pair in m and "closed outside this bot" in m for m in said), said
    assert any(other in m and "did not open" in m for m in said), said
    again.store.close()


def test_the_exchanges_liquidation_price_is_compared_with_the_model(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    standin.futures.maintenance = Decimal("0.01")  # the exchange's rate is not the file's 0.5%
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    bot = start_futures_bot(standin, tmp_path / "candles", url)
    for _ in range(120):
        bot.session.run(cycles=1)
        if bot.trades:
            break
    warnings = [e.message for e in bot.recorder.events if e.kind == "warning"]
    assert any("liquidates the" in m and "engine's model" in m for m in warnings), warnings
    bot.store.close()


def test_funding_is_charged_to_the_trades_from_the_exchanges_income_records(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    for pair in PAIRS:
        standin.futures.funding_rate[pair.replace("/", "")] = Decimal("0.002")
    standin.futures.funding_ms = 3_600_000  # hourly, as the exchange funds some symbols
    standin.clock.set(pd.Timestamp("2024-03-05 10:15:10", tz="UTC"))
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    bot = start_futures_bot(standin, tmp_path / "candles", url)
    bot.session.run(cycles=90)
    wind_down(bot)
    trades = bot.trades
    paid = [t for t in trades if t.funding]
    assert paid
    charged = standin.futures.income("FUNDING_FEE")
    assert sum(t.funding for t in trades) == pytest.approx(-sum(float(i.amount) for i in charged))
    for trade in paid:  # a long pays a positive rate, a short receives it
        assert (trade.funding > 0) == (trade.side == "long")
    assert float(standin.futures.wallet) == pytest.approx(
        DEPOSIT + sum(t.profit for t in trades), abs=1e-6
    )


def test_stops_rest_on_the_tick_rounded_towards_the_price_they_protect(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    ticks = {"BTCUSDT": 10.0, "ETHUSDT": 1.0}  # coarse, so that rounding shows
    for symbol, tick in ticks.items():
        standin.market.symbols[symbol].tick_size = f"{tick:g}"
    bot = start_futures_bot(standin, tmp_path / "candles", f"sqlite:///{tmp_path / 'l.sqlite'}")
    bot.session.run(cycles=90)
    trades = [t for t in bot.trades if t.pair.replace("/", "") in ticks]
    stops: dict[str, list[float]] = {}
    for order in standin.futures.orders:
        if order.type == "STOP_MARKET" and order.symbol in ticks:
            stops.setdefault(order.symbol, []).append(float(order.stop_price))
    assert {t.side for t in trades} == {"long", "short"}
    for symbol, triggers in stops.items():
        assert all(p / ticks[symbol] == round(p / ticks[symbol]) for p in triggers)
    for trade in trades:
        symbol, sign = trade.pair.replace("/", ""), 1.0 if trade.side == "long" else -1.0
        tick = ticks[symbol]
        steps = trade.initial_stop / tick
        wanted = (math.ceil(steps) if sign > 0 else math.floor(steps)) * tick  # tighter, not looser
        assert any(abs(p - wanted) < tick / 1000 for p in stops[symbol]), (trade.side, wanted)
    wind_down(bot)


def test_exits_are_sent_while_the_stop_still_rests_and_the_stop_goes_once_flat(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    """Reduce-only exits cannot over-close, so the stop is not lifted before them (that
    would leave the position without a stop until the exit fills)."""
    bot = start_futures_bot(standin, tmp_path / "candles", f"sqlite:///{tmp_path / 'l.sqlite'}")
    bot.session.run(cycles=90)
    resting: dict[str, str] = {}  # symbol -> client id of the stop resting on it
    exits = 0
    for request in standin.requests():
        symbol, params = request.params.get("symbol", ""), request.params
        if request.path == "/fapi/v1/algoOrder" and request.method == "POST":
            resting[symbol] = params["clientAlgoId"]
        elif request.path == "/fapi/v1/algoOrder" and request.method == "DELETE":
            resting.pop(symbol, None)
        elif request.path == "/fapi/v1/order" and params.get("reduceOnly") == "true":
            exits += 1
            assert symbol in resting, f"exit {params['newClientOrderId']} without a stop"
    assert exits >= 3
    closed = [t for t in bot.trades if t.exit_time is not None]
    assert closed and any(t.exit_reason not in ("stop_loss", "trailing_stop") for t in closed)
    # once a trade is flat, no stop or exit of it rests on the exchange
    open_symbols = {t.pair.replace("/", "") for t in bot.trades if t.exit_time is None}
    closing = [o for o in standin.futures.open_orders(None) if o.reduce_only]
    assert {o.symbol for o in closing} <= open_symbols
    wind_down(bot)
    assert standin.futures.open_orders(None) == []


def test_a_restart_counts_an_entry_that_filled_while_the_bot_was_down(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    """The entry was resting at the kill and filled meanwhile: the position is the bot's
    own, not one "opened by hand", and the first poll takes it in as the trade."""
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    bot = start_futures_bot(standin, tmp_path / "candles", url)
    executor = bot.session.runtime.executor if bot.session.runtime else None
    assert executor is not None
    for _ in range(120):
        bot.session.run(cycles=1)
        pending = [t for t in executor.book.tickets if t.trade is None and not t.done]
        if pending:
            break
    (ticket,) = pending
    bot.store.close()
    symbol = ticket.pair.replace("/", "")
    standin.clock.advance(30 * 60_000)  # down for half an hour; the entry fills meanwhile
    standin.futures.sync()
    assert standin.futures.position(symbol).amount != 0
    again = start_futures_bot(standin, tmp_path / "candles", url)
    said = [e.message for e in again.recorder.events if e.kind == "error"]
    assert not said, said
    again.session.run(cycles=1)
    (trade,) = [t for t in again.trades if t.pair == ticket.pair]
    assert trade.amount == pytest.approx(abs(float(standin.futures.position(symbol).amount)))
    again.store.close()

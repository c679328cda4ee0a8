"""`run --live`: the runtime trading real orders through the ccxt broker, on the stand-in.

The stand-in's account fills orders against recorded candles as its clock moves, so
these sessions place, follow, time out, move and cancel real orders through the real
ccxt client, and every fill the trades record is one the exchange made.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.compile.plan import build_plan
from kinetic_rules.data.store import CandleStore
from kinetic_rules.engine.model import Trade
from kinetic_rules.engine.orders import Book
from kinetic_rules.lang.checker import check
from kinetic_rules.live.ccxt_broker import CcxtBroker
from kinetic_rules.live.executor import attach_executor
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.session import TradingSession
from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.book import StoredBook
from kinetic_rules.persist.sink import StoreSink
from kinetic_rules.spec.loader import load_file
from tests.conftest import WHOLE_HISTORY
from tests.live.test_replay import Recorder
from tests.standin import ExchangeStandin
from tests.standin.account import API_KEY, API_SECRET

BUSY_SPOT = Path(__file__).parent / "strategies" / "busy_spot.yaml"
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
START = pd.Timestamp("2024-03-05 00:00:10", tz="UTC")
DEPOSIT = 10_000.0
pytestmark = pytest.mark.slow  # every test here runs a session of hours on the stand-in


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as exchange:
        exchange.clock.set(START)
        exchange.account.deposit("USDT", DEPOSIT)
        yield exchange


@dataclass
class Bot:
    """One run of the bot process: everything it holds in memory dies with it."""

    session: TradingSession
    store: TradeStore
    recorder: Recorder

    @property
    def trades(self) -> list[Trade]:
        assert self.session.runtime is not None
        return self.session.runtime.trades()


def start_bot(standin: ExchangeStandin, root: Path, url: str, strategy: Path = BUSY_SPOT) -> Bot:
    plan = build_plan(check(load_file(strategy)))
    store = TradeStore(url)

    def now() -> pd.Timestamp:
        return pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")

    def sleep(seconds: float) -> None:
        standin.clock.advance(int(seconds * 1000))

    client = standin.ccxt_client(apiKey=API_KEY, secret=API_SECRET)
    broker = CcxtBroker(
        client, stake_currency="USDT", clock=lambda: standin.clock.now() / 1000, sleep=sleep
    )
    journal = StoredBook(store, "busy-spot")
    book = journal.load_book() or Book("krtest-", broker.free_balance("USDT"))
    recorder = Recorder()

    def attach(runtime: Runtime) -> None:
        runtime.notifiers.append(recorder)
        attach_executor(runtime, broker, journal, book)

    session = TradingSession(
        plan, broker.exchange, CandleStore(root), PAIRS, clock=now, sleep=sleep,
        sizes={"5m": WHOLE_HISTORY}, sink=StoreSink(store, strategy="busy-spot", mode="live"),
        journal=store, attach=attach, poll_seconds=60,
    )  # fmt: skip
    session.start()
    return Bot(session, store, recorder)


def usdt(standin: ExchangeStandin) -> float:
    return standin.account.free("USDT") + standin.account.locked("USDT")


def wind_down(bot: Bot, cycles: int = 200) -> None:
    """/stop: no new entries; the open trades run their course."""
    assert bot.session.runtime is not None
    bot.session.runtime.request_stop()
    bot.session.run(cycles=cycles)


def assert_books_balance(standin: ExchangeStandin, url: str) -> list[Trade]:
    """Every coin bought was sold, no order is left, and the account's dollars are the
    stored trades' profits: no fill was lost, none was counted twice, none was doubled."""
    with TradeStore(url) as store:
        trades = store.trades(mode="live")
    assert all(t.exit_time is not None for t in trades)
    assert standin.account.open_orders(None) == []
    for coin in ("BTC", "ETH", "SOL"):
        assert standin.account.free(coin) + standin.account.locked(coin) == 0
    assert usdt(standin) == pytest.approx(DEPOSIT + sum(t.profit for t in trades), abs=1e-6)
    bought = sorted(
        (o.symbol.replace("USDT", "/USDT"), float(o.executed))
        for o in standin.account.orders
        if o.side == "BUY" and o.executed > 0
    )
    assert bought == sorted((t.pair, t.amount) for t in trades)
    return trades


def test_a_live_session_trades_real_orders_and_every_fill_is_the_exchanges(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    bot = start_bot(standin, tmp_path / "candles", url)
    bot.session.run(cycles=80)
    open_stops = {o.symbol for o in standin.account.open_orders(None) if o.stop_price > 0}
    open_pairs = {t.pair.replace("/", "") for t in bot.trades if t.exit_time is None}
    assert open_stops == open_pairs  # an open trade always has its stop on the exchange
    wind_down(bot)
    trades = assert_books_balance(standin, url)
    assert len(trades) >= 3
    reasons = {t.exit_reason for t in trades}
    assert {"stop_loss", "trailing_stop"} <= reasons
    # The trailing stop was moved on the exchange: later stops of a trade sit higher.
    stops: dict[str, list[float]] = {}
    for order in standin.account.orders:
        if order.stop_price > 0:
            position = order.client_id.removeprefix("krtest-").split("s")[0]
            stops.setdefault(position, []).append(float(order.stop_price))
    moved = [levels for levels in stops.values() if len(levels) > 1]
    assert moved and all(levels == sorted(levels) for levels in moved)
    with TradeStore(url) as store:
        kept = {o.client_id: o.status for o in store.orders()}
    assert {o.client_id for o in standin.account.orders} == set(kept)


def test_an_entry_that_does_not_fill_in_time_is_canceled_and_recorded(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    quick = tmp_path / "quick.yaml"
    quick.write_text(BUSY_SPOT.read_text().replace("entry: 10m", "entry: 1m"))
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    standin.account.partial_next(1, fraction=0.4)  # a thin book: the first entry fills 40%
    bot = start_bot(standin, tmp_path / "candles", url, quick)
    bot.session.run(cycles=80)
    wind_down(bot)
    timeouts = [e for e in bot.recorder.events if e.kind == "order_timeout"]
    assert len(timeouts) == 1
    assert "the entry order did not fill within 1 minute; canceled" in timeouts[0].message
    canceled = [o for o in standin.account.orders if o.side == "BUY" and o.status == "CANCELED"]
    assert len(canceled) == 1 and 0 < canceled[0].executed < canceled[0].quantity
    with TradeStore(url) as store:
        kept = {o.client_id: o.status for o in store.orders()}
    assert all(kept[o.client_id] == "canceled" for o in canceled)
    trades = assert_books_balance(standin, url)  # the partial entries traded what they got
    partial = {(o.symbol.replace("USDT", "/USDT"), float(o.executed)) for o in canceled}
    assert partial <= {(t.pair, t.amount) for t in trades}


def test_a_rejected_order_is_reported_and_skipped(standin: ExchangeStandin, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    standin.faults.reject_next(
        code=-1013, msg="Filter failure: NOTIONAL", path="/api/v3/order"
    )  # the first order the bot sends: an entry
    bot = start_bot(standin, tmp_path / "candles", url)
    bot.session.run(cycles=60)
    wind_down(bot)
    rejected = [e for e in bot.recorder.events if e.kind == "order_rejected"]
    assert len(rejected) == 1 and "NOTIONAL" in rejected[0].message
    with TradeStore(url) as store:
        statuses = [o.status for o in store.orders()]
    assert statuses[0] == "rejected"
    trades = assert_books_balance(standin, url)
    assert trades  # the bot went on trading


def test_paper_fills_from_the_order_book_go_through_the_same_executor(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    """`run --fills book`: the executor and a paper broker that fills against the stand-in's
    live order book; the exchange account is never touched."""
    from kinetic_rules.engine.fills import fill_model
    from kinetic_rules.live.paper_broker import PaperBroker

    plan = build_plan(check(load_file(BUSY_SPOT)))
    url = f"sqlite:///{tmp_path / 'paper.sqlite'}"
    store = TradeStore(url)

    def now() -> pd.Timestamp:
        return pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")

    def sleep(seconds: float) -> None:
        standin.clock.advance(int(seconds * 1000))

    client = standin.ccxt_client()
    broker = PaperBroker(
        client, fills=fill_model(plan), stake_currency="USDT", balance=DEPOSIT,
        clock=now, sleep=sleep, journal=store,
    )  # fmt: skip
    journal = StoredBook(store, "busy-spot", mode="paper")
    book = Book("krpaper-", DEPOSIT)

    def attach(runtime: Runtime) -> None:
        attach_executor(runtime, broker, journal, book)

    session = TradingSession(
        plan, client, CandleStore(tmp_path / "candles"), PAIRS, clock=now, sleep=sleep,
        sizes={"5m": WHOLE_HISTORY}, sink=StoreSink(store, strategy="busy-spot", mode="paper"),
        journal=store, poll_seconds=60, attach=attach,
    )  # fmt: skip
    session.start()
    session.run(cycles=80)
    assert session.runtime is not None
    session.runtime.request_stop()
    session.run(cycles=200)
    trades = store.trades(mode="paper")
    assert len(trades) >= 3 and all(t.exit_time is not None for t in trades)
    assert standin.account.orders == []  # paper: nothing reached the exchange's account
    balances = broker.account.balances()
    cash = sum(balances["USDT"])
    flows = sum(
        (-1 if i == 0 else 1) * f.price * f.amount - f.fee
        for t in trades
        for i, f in enumerate(t.fills)
    )
    assert cash == pytest.approx(DEPOSIT + flows, abs=1e-6)
    for coin in ("BTC", "ETH", "SOL"):
        assert sum(balances.get(coin, (0.0, 0.0))) < 0.001  # at most dust is left


def test_an_exchange_outage_enters_fail_safe_and_the_books_still_balance(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    """Twenty minutes of 503s on every request while trades are open: the bot keeps
    running, makes no new entries, says so, and carries on when the exchange is back."""
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    bot = start_bot(standin, tmp_path / "candles", url)
    bot.session.run(cycles=44)  # 03:40: a trade is open
    assert any(t.exit_time is None for t in bot.trades)
    outage_began = standin.clock.now()
    while standin.clock.now() < outage_began + 20 * 60_000:
        standin.faults.fail_next(50, status=503)
        bot.session.run(cycles=1)
        standin.faults.clear()
    entered = [e for e in bot.recorder.events if e.kind == "fail_safe_entered"]
    assert entered
    opened_in_outage = [
        t
        for t in bot.trades
        if outage_began <= t.signal_time.timestamp() * 1000 < outage_began + 20 * 60_000
    ]
    assert opened_in_outage == []
    bot.session.run(cycles=40)
    assert [e for e in bot.recorder.events if e.kind == "fail_safe_left"]
    wind_down(bot)
    assert_books_balance(standin, url)


def test_with_the_stop_off_the_exchange_the_bot_sells_when_a_close_reaches_it(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    watched = tmp_path / "watched.yaml"
    text = BUSY_SPOT.read_text().replace(
        "  exit: limit\n", "  exit: limit\n  stoploss_on_exchange: false\n"
    )
    watched.write_text(text)
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    bot = start_bot(standin, tmp_path / "candles", url, watched)
    bot.session.run(cycles=80)
    wind_down(bot)
    assert not [o for o in standin.account.orders if o.stop_price > 0]  # no stop order, ever
    trades = assert_books_balance(standin, url)
    stopped = [t for t in trades if t.exit_reason in ("stop_loss", "trailing_stop")]
    assert stopped
    sells = {o.client_id: o.type for o in standin.account.orders if o.side == "SELL"}
    assert set(sells.values()) <= {"MARKET", "LIMIT"}


def test_a_restart_says_so_when_coins_of_an_open_trade_were_sold_by_hand(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    from decimal import Decimal

    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    first = start_bot(standin, tmp_path / "candles", url)
    first.session.run(cycles=44)  # 03:40: a trade is open, its stop resting
    (trade,) = [t for t in first.trades if t.exit_time is None]
    symbol = trade.pair.replace("/", "")
    del first  # the bot is stopped; someone cancels its stop and sells half by hand
    (stop,) = standin.account.open_orders(symbol)
    standin.account.cancel(symbol, None, stop.client_id)
    half = Decimal(str(trade.amount / 2)).quantize(Decimal("0.0001"))
    standin.account.place(symbol, "SELL", "MARKET", half, None, None, "by-hand", "GTC")

    second = start_bot(standin, tmp_path / "candles", url)
    errors = [e.message for e in second.recorder.events if e.kind == "error"]
    coin = trade.pair.split("/")[0]
    assert len(errors) == 1 and f"{trade.pair}: the open trades hold" in errors[0]
    assert f"{coin}, the account only" in errors[0]

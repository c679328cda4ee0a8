"""The position monitor between candle closes (docs/live.md, "Position monitoring between
closes"), against the exchange stand-in with the real ccxt client.

The stand-in's tickers are moved away from its candles (`Market.set_last`): a price that
falls between two closes, which no candle shows yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.compile.plan import build_plan
from kinetic_rules.data.store import CandleStore
from kinetic_rules.engine.model import Trade
from kinetic_rules.lang.checker import check
from kinetic_rules.live.controls import CLOSE_REASON
from kinetic_rules.live.monitor import count_monitor_exits
from kinetic_rules.live.session import TradingSession
from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.sink import StoreSink
from kinetic_rules.spec.loader import load_file
from tests.conftest import WHOLE_HISTORY
from tests.live.test_replay import fingerprint
from tests.standin.exchange import ExchangeStandin

WATCHED = Path(__file__).parent / "strategies" / "watched.yaml"
WATCHED_FUTURES = WATCHED.with_name("watched_futures.yaml")
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
START = pd.Timestamp("2024-03-05 00:00:10", tz="UTC")
EMERGENCY = "monitor:protection:emergency"
ROOT = Path(__file__).resolve().parents[2]


def session_on(
    standin: ExchangeStandin,
    root: Path,
    url: str,
    every: float,
    strategy: Path = WATCHED,
    futures: bool = False,
) -> TradingSession:
    plan = build_plan(check(load_file(strategy)))
    store = TradeStore(url)

    def now() -> pd.Timestamp:
        return pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")

    def sleep(seconds: float) -> None:
        standin.clock.advance(int(seconds * 1000))

    return TradingSession(
        plan, standin.ccxt_futures_client() if futures else standin.ccxt_client(),
        CandleStore(root), PAIRS, clock=now, sleep=sleep,
        sizes={"5m": WHOLE_HISTORY}, sink=StoreSink(store, strategy="watched", mode="paper"),
        journal=store, monitor_every=every,
    )  # fmt: skip


def until_a_trade_is_open(session: TradingSession) -> Trade:
    """Close after close with the monitor resting (nothing to watch yet): the first trade."""
    assert session.runtime is not None
    every, session.monitor_every = session.monitor_every, 0.0
    for _ in range(300):
        session.run(cycles=1)
        held = [t for t in session.runtime.trades() if t.exit_time is None]
        if held:
            session.monitor_every = every
            return held[0]
    raise AssertionError("no trade opened")


def ticker_requests(standin: ExchangeStandin) -> int:
    return len(standin.requests("/api/v3/ticker/24hr"))


def symbol(pair: str) -> str:
    return pair.replace("/", "")


def stored(url: str) -> list[Trade]:
    with TradeStore(url) as store:
        return store.trades(mode="paper")


def test_a_fall_through_the_emergency_threshold_closes_before_the_next_close(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'trades.sqlite'}"
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START)
        session = session_on(standin, tmp_path / "candles", url, every=5.0)
        session.start()
        trade = until_a_trade_is_open(session)
        assert session.runtime is not None and session._last_close is not None
        next_close = session._last_close + pd.Timedelta(minutes=5)

        # A 10% fall: the trade's own `loss: profit < -5%` would hold on the ticker, but
        # it is a candle-close rule; the portfolio loses 1% of equity, above the -3%
        # emergency. The monitor looks, and nothing closes.
        standin.market.set_last(symbol(trade.pair), trade.entry_price * 0.9)
        asked = ticker_requests(standin)
        for _ in range(6):
            session.sleep(5)
            session._watch()
        assert ticker_requests(standin) - asked == 6  # one batched request per look
        assert trade.exit_time is None
        assert count_monitor_exits(session.runtime.trades()) == 0

        # 40% down: the open trades lose 4% of equity, and the emergency fires between
        # the closes, on the ticker, at market.
        standin.market.set_last(symbol(trade.pair), trade.entry_price * 0.6)
        session._between_closes()
        assert trade.exit_time is not None
        assert session._last_close < trade.exit_time < next_close
        assert trade.exit_reason == EMERGENCY
        assert trade.exit_price == pytest.approx(trade.entry_price * 0.6 * (1 - 0.0005))
        assert count_monitor_exits(session.runtime.trades()) >= 1
        kept = [t for t in stored(url) if t.id == trade.id]
        assert [(t.exit_reason, t.exit_time) for t in kept] == [(EMERGENCY, trade.exit_time)]

        # The close comes and the session goes on as before; the exit stays the monitor's.
        standin.market.set_last(symbol(trade.pair), None)
        session.sleep(session._until_next_close())
        session.cycle()
        assert trade.exit_reason == EMERGENCY


def test_exchange_errors_while_watching_are_logged_and_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'trades.sqlite'}"
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START)
        session = session_on(standin, tmp_path / "candles", url, every=5.0)
        session.start()
        trade = until_a_trade_is_open(session)
        standin.market.set_last(symbol(trade.pair), trade.entry_price * 0.6)
        standin.faults.fail_next(3)  # the first looks get 503s: the session goes on
        with caplog.at_level("WARNING", logger="kinetic_rules.live"):
            session._between_closes()
        assert "monitor: tickers could not be read" in caplog.text
        assert trade.exit_reason == EMERGENCY  # a later look closed it


def test_a_session_killed_in_the_middle_of_a_monitor_exit_resumes_consistent(
    tmp_path: Path,
) -> None:
    """The exit is journaled before it is made; killed between the two, the restarted
    session makes it again at the same moment, and its book equals the one before."""
    url = f"sqlite:///{tmp_path / 'trades.sqlite'}"

    class Killed(BaseException):
        pass

    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START)
        first = session_on(standin, tmp_path / "candles", url, every=5.0)
        first.start()
        trade = until_a_trade_is_open(first)
        assert first.runtime is not None and first.sink is not None
        standin.market.set_last(symbol(trade.pair), trade.entry_price * 0.6)
        sink = first.sink

        class Dying:
            def trade_changed(self, changed: Trade, fills: int, closed: bool) -> None:
                if closed and changed.exit_reason == EMERGENCY:
                    raise Killed  # the process dies before the trade store hears of it
                sink.trade_changed(changed, fills, closed)

        first.runtime.sink = Dying()
        with pytest.raises(Killed):
            first._between_closes()
        before = sorted(fingerprint(t) for t in first.runtime.trades())
        assert [t.exit_reason for t in stored(url) if t.id == trade.id] == [None]
        del first

        second = session_on(standin, tmp_path / "candles", url, every=5.0)
        second.start()  # feeds itself every close since the start, and the monitor's exit
        assert second.runtime is not None
        assert sorted(fingerprint(t) for t in second.runtime.trades()) == before
        kept = {t.id: fingerprint(t) for t in stored(url)}
        assert kept == {t.id: fingerprint(t) for t in second.runtime.trades()}
        assert count_monitor_exits(second.runtime.trades()) >= 1


def test_a_replay_does_not_monitor_and_equals_the_backtest(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The monitor needs tickers between closes; a replay has only closes, so it decides
    at them alone, and its trades stay the backtest's, one by one."""
    from kinetic_rules.cli.app import main

    report = tmp_path / "report"
    code = main(
        ["backtest", str(WATCHED), "--data", str(fixture_store), "--report", str(report), "-q"]
    )
    assert code == 0
    backtest = json.loads((report / "trades.json").read_text())
    capsys.readouterr()
    db = f"sqlite:///{tmp_path / 'replay.sqlite'}"
    assert main(["run", str(WATCHED), "--replay", str(fixture_store), "--db", db, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("0 closed between candle closes (a replay has no position monitor)")
    with TradeStore(db) as store:
        replayed = store.trades(mode="replay")

    def key(trade: dict[str, object]) -> tuple[object, ...]:
        times = (pd.Timestamp(str(trade[k])) for k in ("entry_time", "exit_time"))
        return (trade["pair"], *times, trade["exit_reason"], round(float(str(trade["profit"])), 6))

    assert len(backtest) >= 3
    assert sorted(key(t.to_dict()) for t in replayed) == sorted(key(t) for t in backtest)
    assert not any(str(t["exit_reason"]).startswith("monitor:") for t in backtest)


def test_a_live_futures_session_closes_reduce_only_through_the_executor(tmp_path: Path) -> None:
    """Trading for real: the monitor's exit is the executor's, a reduce-only market order,
    journaled and stored like any exit, with the monitor's reason."""
    from decimal import Decimal

    from kinetic_rules.live.monitor import TickerReader
    from tests.live.test_futures_live import DEPOSIT, start_futures_bot

    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START)
        standin.futures.deposit(DEPOSIT)
        for pair in PAIRS:
            standin.futures.funding_rate[symbol(pair)] = Decimal(0)
        bot = start_futures_bot(standin, tmp_path / "candles", url, strategy=WATCHED_FUTURES)
        session = bot.session
        session.monitor_every, session.tickers = 5.0, TickerReader(session.exchange)
        trade = until_a_trade_is_open(session)
        assert session.runtime is not None and session._last_close is not None
        next_close = session._last_close + pd.Timedelta(minutes=5)
        sign = 1.0 if trade.side == "long" else -1.0
        # 20% against the trade at 3x: the open trades lose 6% of equity
        standin.market.set_last(symbol(trade.pair), trade.entry_price * (1 - sign * 0.2))
        session._between_closes()
        assert trade.exit_reason == EMERGENCY
        assert trade.exit_time is not None and trade.exit_time < next_close
        assert standin.futures.position(symbol(trade.pair)).amount == 0
        exits = [o for o in standin.futures.orders if o.symbol == symbol(trade.pair)][1:]
        assert exits and all(o.reduce_only for o in exits)
        with TradeStore(url) as store:
            kept = [t for t in store.trades(mode="live") if t.id == trade.id]
        assert [t.exit_reason for t in kept] == [EMERGENCY]


def test_a_stop_no_order_holds_is_taken_on_the_ticker(tmp_path: Path) -> None:
    """`orders.stoploss_on_exchange: false`: the bot holds the stop, so the monitor sells
    when a ticker reaches it, without waiting for the close."""
    text = WATCHED.read_text().replace("entry_price * 0.5", "entry_price * 0.95")
    text = text.replace("orders:\n", "orders:\n  stoploss_on_exchange: false\n")
    strategy = tmp_path / "held_stop.yaml"
    strategy.write_text(text)
    url = f"sqlite:///{tmp_path / 'trades.sqlite'}"
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START)
        session = session_on(standin, tmp_path / "candles", url, every=5.0, strategy=strategy)
        session.start()
        trade = until_a_trade_is_open(session)
        assert session._last_close is not None
        next_close = session._last_close + pd.Timedelta(minutes=5)
        standin.market.set_last(symbol(trade.pair), trade.entry_price * 0.97)
        for _ in range(3):  # above the stop: nothing
            session.sleep(5)
            session._watch()
        assert trade.exit_time is None
        standin.market.set_last(symbol(trade.pair), trade.entry_price * 0.94)
        session._between_closes()
        assert trade.exit_reason == "monitor:stop_loss"
        assert trade.exit_time is not None and trade.exit_time < next_close
        assert trade.exit_price == pytest.approx(trade.entry_price * 0.94 * (1 - 0.0005))


def market_sells(standin: ExchangeStandin) -> int:
    return sum(
        1
        for r in standin.requests("/api/v3/order")
        if r.method == "POST"
        and r.params.get("side") == "SELL"
        and r.params.get("type") == "MARKET"
    )


@pytest.mark.slow
def test_the_real_bot_killed_right_after_its_monitor_exit_resumes_with_a_consistent_book(
    tmp_path: Path,
) -> None:
    """`kinetic-rules run --live` in its own process (tests/live/bot_process.py): killed with
    SIGKILL right after the monitor's exit order left, started again, it finds the order by
    its client id; the stored trade, the coins and the dollars agree with the exchange."""
    from tests.live.test_sigkill import _log, kill_when
    from tests.standin.account import API_KEY, API_SECRET

    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    deposit = 10_000.0
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(pd.Timestamp("2024-03-05 03:20:10", tz="UTC"))
        standin.account.deposit("USDT", deposit)

        def launch() -> subprocess.Popen[bytes]:
            env = {**os.environ, "KINETIC_API_KEY": API_KEY, "KINETIC_API_SECRET": API_SECRET}
            env.pop("KINETIC_TELEGRAM_TOKEN", None)
            command = [
                sys.executable, "-m", "tests.live.bot_process", standin.url,
                "run", str(WATCHED), "--live", "--yes", "--exchange-url", standin.url,
                "--db", url, "--data", str(tmp_path / "candles"), "--pairs", *PAIRS,
                "--monitor-every", "5s",
            ]  # fmt: skip
            with open(tmp_path / "bot.log", "ab") as log:
                return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)

        def bought() -> list[str]:
            return [o.symbol for o in standin.account.orders if o.side == "BUY" and o.executed > 0]

        bot = launch()
        # The first buy fills: now the ticker falls 40% (the open trades lose 4% of equity)
        # and the bot dies right after its monitor sends the market sell.
        kill_when(bot, lambda: bool(bought()) and _fall(standin, bought()[0]), tmp_path)
        assert market_sells(standin) == 1
        standin.market.set_last(bought()[0], None)
        end = standin.clock.now() + 30 * 60_000
        kill_when(launch(), lambda: standin.clock.now() >= end, tmp_path)
        assert "Traceback" not in _log(tmp_path, tail=None)

    with TradeStore(url) as store:
        trades = store.trades(mode="live")
    first = min(trades, key=lambda t: t.id)
    assert first.exit_reason == EMERGENCY  # the fill the dead bot never saw is its exit
    for pair in PAIRS:
        coin = pair.split("/")[0]
        held = standin.account.free(coin) + standin.account.locked(coin)
        left = sum(t.amount - sum(f.amount for f in t.fills[1:]) for t in trades if t.pair == pair)
        assert held == pytest.approx(left, abs=1e-12)
    flows = sum(
        (-1 if i == 0 else 1) * f.price * f.amount - f.fee
        for t in trades
        for i, f in enumerate(t.fills)
    )
    usdt = standin.account.free("USDT") + standin.account.locked("USDT")
    assert usdt == pytest.approx(deposit + flows, abs=1e-6)


def _fall(standin: ExchangeStandin, symbol: str) -> bool:
    """Move the ticker down once; then: has the monitor's market sell gone out?"""
    if symbol not in standin.market.lasts:
        price = standin.market.last_price(symbol)
        assert price is not None
        standin.market.set_last(symbol, price * 0.6)
    return market_sells(standin) >= 1


def move_mark(standin: ExchangeStandin, pair: str, to: float) -> None:
    """The mark price (the premium index) moves to `to`; the last trade price stays."""
    now = float(standin.futures.price_now(symbol(pair)))
    standin.futures.set_mark_ratio(symbol(pair), f"{to / now:.8f}")


def test_paper_futures_on_candles_are_liquidated_between_closes(tmp_path: Path) -> None:
    """No exchange liquidates a paper futures trade: at 20x, a mark price past the
    liquidation price (before a stop that lies beyond it) ends the trade there, its margin
    lost. A last trade price past it does not: the exchange liquidates on the mark."""
    text = WATCHED_FUTURES.read_text().replace("leverage: 3", "leverage: 20")
    text = text.replace("open_profit_ratio < -3%", "open_profit_ratio < -300%")
    strategy = tmp_path / "high_leverage.yaml"
    strategy.write_text(text)
    url = f"sqlite:///{tmp_path / 'trades.sqlite'}"
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START)
        session = session_on(
            standin, tmp_path / "candles", url, every=5.0, strategy=strategy, futures=True
        )
        session.start()
        trade = until_a_trade_is_open(session)
        assert trade.liquidation_price is not None and trade.margin is not None
        sign = 1.0 if trade.side == "long" else -1.0
        past = trade.liquidation_price * (1 - sign * 0.001)
        standin.market.set_last(symbol(trade.pair), past)
        for _ in range(3):  # the contract traded past it; the mark did not
            session.sleep(5)
            session._watch()
        assert trade.exit_time is None
        move_mark(standin, trade.pair, past)
        session._between_closes()
        assert trade.exit_reason == "monitor:liquidation"
        assert trade.exit_price == trade.liquidation_price
        assert trade.profit == pytest.approx(-trade.margin - trade.fills[0].fee)


def test_a_futures_stop_the_bot_holds_is_taken_on_the_mark_price(tmp_path: Path) -> None:
    """Futures with `stop_trigger: mark` (the default) and no stop order: the monitor
    reads the mark prices (one batched premium-index request) and sells at the stop when
    the mark reaches it, as the exchange would trigger a resting stop; the last trade
    price reaching it is not enough."""
    text = WATCHED_FUTURES.read_text().replace("entry_price * (1 - side * 0.5)",
                                               "entry_price * (1 - side * 0.05)")  # fmt: skip
    text = text.replace("open_profit_ratio < -3%", "open_profit_ratio < -300%")
    text = text.replace("orders:\n", "orders:\n  stoploss_on_exchange: false\n")
    strategy = tmp_path / "held_stop_futures.yaml"
    strategy.write_text(text)
    url = f"sqlite:///{tmp_path / 'trades.sqlite'}"
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START)
        session = session_on(
            standin, tmp_path / "candles", url, every=5.0, strategy=strategy, futures=True
        )
        session.start()
        trade = until_a_trade_is_open(session)
        sign = 1.0 if trade.side == "long" else -1.0
        past = trade.initial_stop * (1 - sign * 0.002)
        standin.market.set_last(symbol(trade.pair), past)
        marks_before = len(standin.requests("/fapi/v1/premiumIndex"))
        for _ in range(3):
            session.sleep(5)
            session._watch()
        assert trade.exit_time is None
        looks = standin.requests("/fapi/v1/premiumIndex")[marks_before:]
        assert len(looks) == 3 and all("symbol" not in r.params for r in looks)  # batched
        move_mark(standin, trade.pair, past)
        session._between_closes()
        assert trade.exit_reason == "monitor:stop_loss"
        assert trade.exit_price == pytest.approx(past * (1 - sign * 0.0005))


def test_a_person_s_close_on_paper_is_made_again_by_a_restarted_session(tmp_path: Path) -> None:
    """A paper session on candles resumes by feeding itself every close again: a trade a
    person closed (dashboard, chat) must stay closed, at the same price and time."""
    url = f"sqlite:///{tmp_path / 'trades.sqlite'}"
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START)
        first = session_on(standin, tmp_path / "candles", url, every=0.0)
        first.start()
        trade = until_a_trade_is_open(first)
        assert first.runtime is not None
        closing = first.runtime.close_positions({trade.id}, CLOSE_REASON)
        assert [t.id for t in closing.trades] == [trade.id]
        first.run(cycles=3)
        before = sorted(fingerprint(t) for t in first.runtime.trades())
        closed = next(t for t in first.runtime.trades() if t.id == trade.id)
        assert closed.exit_reason == CLOSE_REASON
        del first

        second = session_on(standin, tmp_path / "candles", url, every=0.0)
        second.start()
        assert second.runtime is not None
        assert sorted(fingerprint(t) for t in second.runtime.trades()) == before
        again = next(t for t in second.runtime.trades() if t.id == trade.id)
        assert (again.exit_reason, again.exit_time) == (CLOSE_REASON, closed.exit_time)

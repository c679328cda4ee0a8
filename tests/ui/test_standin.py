"""Close-all from the dashboard on a session trading real orders on the exchange stand-in:
every coin bought is sold on the exchange, and the trades say a person closed them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from kinetic_rules.backtest.explain import showing_entries
from kinetic_rules.cli.live_setup import book_paper_trading
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.data.store import CandleStore
from kinetic_rules.lang.checker import check
from kinetic_rules.live.controls import CLOSE_REASON, SessionControls
from kinetic_rules.live.session import TradingSession
from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.sink import StoreSink
from kinetic_rules.spec.loader import load_file
from kinetic_rules.ui.app import create_app
from kinetic_rules.ui.sources import LiveSource
from kinetic_rules.ui.watch import Watch
from tests.conftest import WHOLE_HISTORY
from tests.live import test_live_trading as live_trading
from tests.live.test_live_trading import BUSY_SPOT, DEPOSIT, PAIRS, START, start_bot, usdt
from tests.live.test_replay import Recorder
from tests.standin import ExchangeStandin
from tests.ui.conftest import TOKEN, all_trades

pytestmark = pytest.mark.slow  # a session of hours on the stand-in


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as exchange:
        exchange.clock.set(START)
        exchange.account.deposit("USDT", DEPOSIT)
        yield exchange


def test_close_all_from_the_dashboard_sells_everything_on_the_exchange(
    standin: ExchangeStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the session keeps what the decision feed shows, as `run --ui` makes it do
    monkeypatch.setattr(
        live_trading, "build_plan", lambda checked: showing_entries(build_plan(checked))
    )
    url = f"sqlite:///{tmp_path / 'trades.sqlite'}"
    bot = start_bot(standin, tmp_path / "candles", url)
    runtime = bot.session.runtime
    assert runtime is not None

    def clock() -> pd.Timestamp:
        return pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")

    controls = SessionControls(runtime, bot.store, clock=clock)
    watch = Watch(runtime)
    runtime.observers.append(watch)
    client = TestClient(create_app(LiveSource(controls, watch, BUSY_SPOT), TOKEN))
    for _ in range(2000):
        if len(client.get("/api/positions").json()) >= 1:
            break
        bot.session.run(cycles=1)
    held = client.get("/api/positions").json()
    assert held, "no trade opened on the stand-in"
    # the rolling windows of a live session feed the decision feed too
    entered = [d for d in client.get("/api/decisions").json() if d["outcome"].startswith("entered")]
    assert entered and all(line["holds"] for line in entered[0]["lines"])
    assert client.post("/api/controls/close-all").status_code == 401
    answer = client.post("/api/controls/close-all", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and f"{len(held)} open trade(s) closing" in answer.text
    controls.pause("test")  # nothing new may open while the exits fill
    for _ in range(50):
        if not client.get("/api/positions").json():
            break
        bot.session.run(cycles=1)
    assert client.get("/api/positions").json() == []
    for coin in ("BTC", "ETH", "SOL"):
        assert standin.account.free(coin) + standin.account.locked(coin) == 0
    closed = {t["id"]: t for t in all_trades(client)}
    assert all(CLOSE_REASON in (closed[p["id"]]["exit_reason"] or "") for p in held)
    assert usdt(standin) == pytest.approx(DEPOSIT + sum(t.profit for t in bot.store.trades()))
    bot.store.close()


def test_close_all_cancels_a_resting_entry_and_sells_what_it_bought(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    """An entry order half filled and resting on the exchange when close-all comes: it is
    canceled, the half it bought becomes a trade that is sold at once, and nothing stays."""
    bot = start_bot(standin, tmp_path / "candles", f"sqlite:///{tmp_path / 'trades.sqlite'}")
    runtime = bot.session.runtime
    assert runtime is not None
    controls = SessionControls(runtime, bot.store)
    client = TestClient(create_app(LiveSource(controls, Watch(runtime), BUSY_SPOT), TOKEN))
    standin.account.partial_next(1)  # the first fill, the first entry's, takes half

    def resting() -> list[Any]:
        return [o for o in standin.account.open_orders(None) if o.side == "BUY"]

    for _ in range(2000):
        if resting():
            break
        bot.session.run(cycles=1)
    (entry,) = resting()
    assert 0 < entry.executed < entry.quantity
    assert client.get("/api/positions").json() == []  # an entry order, not a trade yet
    answer = client.post("/api/controls/close-all", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and answer.json()["canceled"] == 1
    assert "1 entry order(s) waiting to fill canceled" in answer.json()["message"]
    assert entry.status == "CANCELED"
    assert standin.account.open_orders(None) == []  # no stop left resting either
    for coin in ("BTC", "ETH", "SOL"):
        assert standin.account.free(coin) + standin.account.locked(coin) == 0
    (trade,) = bot.store.trades()
    assert trade.exit_reason == CLOSE_REASON and trade.amount == float(entry.executed)
    (row,) = [e for e in bot.recorder.events if e.kind == "control"]  # the event log's row
    (canceled,) = row.data["canceled"]  # type: ignore[misc]
    assert canceled["filled"] == trade.amount and not canceled["pending"]
    assert row.data["trades"] == [t.id for t in runtime.trades()]
    bot.session.run(cycles=3)  # the next checks find nothing to open from that order
    assert usdt(standin) == pytest.approx(DEPOSIT + sum(t.profit for t in bot.store.trades()))
    bot.store.close()


def test_a_cancel_the_exchange_did_not_answer_is_asked_again_and_its_trade_closed(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    """Close-all during an outage: the resting entry cannot be canceled. The session asks
    again once the exchange answers, and sells what the order bought."""
    bot = start_bot(standin, tmp_path / "candles", f"sqlite:///{tmp_path / 'trades.sqlite'}")
    runtime = bot.session.runtime
    assert runtime is not None
    controls = SessionControls(runtime, bot.store)
    standin.account.partial_next(1)
    for _ in range(2000):
        if any(o.side == "BUY" for o in standin.account.open_orders(None)):
            break
        bot.session.run(cycles=1)
    (entry,) = standin.account.open_orders(None)
    standin.faults.fail_next(50, status=503)  # the exchange is down while close-all comes
    closing = controls.close_everything("telegram @tester")
    standin.faults.clear()
    assert closing.trades == [] and [c.pending for c in closing.canceled] == [True]
    assert entry.status == "PARTIALLY_FILLED"  # still resting on the exchange
    (row,) = [e for e in bot.recorder.events if e.kind == "control"]
    assert "1 not reached yet" in row.message
    bot.session.run(cycles=1)  # the exchange answers again: the next check cancels it
    assert entry.status == "CANCELED" and standin.account.open_orders(None) == []
    for coin in ("BTC", "ETH", "SOL"):
        assert standin.account.free(coin) + standin.account.locked(coin) == 0
    (trade,) = bot.store.trades()
    assert trade.exit_reason == CLOSE_REASON and trade.amount == float(entry.executed)
    bot.store.close()


def test_close_all_cancels_a_resting_entry_on_the_paper_book(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    """`--fills book`: the entry rests on the simulated book, as on the exchange. Close-all
    cancels it there; the coins it held free again, nothing is bought after."""
    plan = build_plan(check(load_file(BUSY_SPOT)))
    store = TradeStore(f"sqlite:///{tmp_path / 'paper.sqlite'}")

    def now() -> pd.Timestamp:
        return pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")

    def sleep(seconds: float) -> None:
        standin.clock.advance(int(seconds * 1000))

    recorder = Recorder()
    session = TradingSession(
        plan, standin.ccxt_client(), CandleStore(tmp_path / "candles"), PAIRS, clock=now,
        sleep=sleep, sizes={"5m": WHOLE_HISTORY}, journal=store, poll_seconds=60,
        sink=StoreSink(store, strategy="busy-spot", mode="paper"),
        attach=book_paper_trading(plan, standin.ccxt_client(), store, now),
    )  # fmt: skip
    session.start()
    runtime = session.runtime
    assert runtime is not None and runtime.executor is not None
    runtime.notifiers.append(recorder)
    broker = runtime.executor.broker
    for _ in range(2000):
        if broker.open_orders():
            break
        session.run(cycles=1)
    (entry,) = broker.open_orders()
    assert entry.status == "open" and runtime.state(trades=False).positions == []
    closing = SessionControls(runtime, store).close_everything("ui from 127.0.0.1")
    (canceled,) = closing.canceled
    assert (canceled.pair, canceled.filled, canceled.pending) == (entry.pair, entry.filled, False)
    assert broker.find(entry.client_id, entry.pair).status == "canceled"  # type: ignore[union-attr]
    assert broker.open_orders() == []
    held = broker.account.balances()  # type: ignore[attr-defined]
    assert held["USDT"][1] == 0  # nothing locked for the order any more
    session.run(cycles=2)  # the closes at which it would have filled: nothing comes of it
    after = broker.find(entry.client_id, entry.pair)
    assert after is not None and (after.status, after.filled) == ("canceled", entry.filled)
    (row,) = [e for e in recorder.events if e.kind == "control"]
    assert row.data["canceled"][0]["position"] == canceled.position  # type: ignore[index]
    store.close()

"""A live futures session whose position the exchange liquidates: the executor reads the
liquidation back from the exchange's records (its force order, fills and clearance
fee) and the trade ends at the exchange's price, with what the account really lost."""

from __future__ import annotations

import csv
import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kinetic_rules.cli.app import main as cli
from kinetic_rules.engine.model import LIQUIDATION
from kinetic_rules.engine.orders import Ticket
from kinetic_rules.persist import TradeStore
from tests.live.test_futures_live import BUSY, DEPOSIT, PAIRS, START, start_futures_bot
from tests.live.test_live_trading import Bot, wind_down
from tests.live.test_sigkill import _log, kill_when
from tests.standin import ExchangeStandin
from tests.standin.account import API_KEY, API_SECRET

ROOT = Path(__file__).resolve().parents[2]
ORDER_PATHS = ("/fapi/v1/order", "/fapi/v1/algoOrder")


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as exchange:
        exchange.clock.set(START)
        exchange.futures.deposit(DEPOSIT)
        for pair in PAIRS:
            exchange.futures.funding_rate[pair.replace("/", "")] = Decimal(0)
        yield exchange


def risky(tmp_path: Path) -> Path:
    """busy.yaml at 40x with a stop 5% away: the liquidation price (about 2%) comes first."""
    spec = yaml.safe_load(BUSY.read_text())
    spec["leverage"] = 40
    spec["stoploss"] = {"initial": "entry_price * (1 - side * 5%)", "max_distance": "10%"}
    path = tmp_path / "busy.yaml"  # the same name: the restart finds the same book
    path.write_text(yaml.safe_dump(spec))
    return path


def sent_by(standin: ExchangeStandin, stem: str) -> list[str]:
    """The client ids of the orders sent for one position (its ids share a stem)."""
    return [
        r.params.get("newClientOrderId") or r.params.get("clientAlgoId") or ""
        for path in ORDER_PATHS
        for r in standin.requests(path)
        if r.method == "POST"
        and (r.params.get("newClientOrderId") or r.params.get("clientAlgoId") or "").startswith(
            stem
        )
    ]


def until_a_position_opens(bot: Bot) -> Ticket:
    """Close after close until the bot holds a position: that position's ticket."""
    executor = bot.session.runtime.executor if bot.session.runtime else None
    assert executor is not None
    for _ in range(200):
        bot.session.run(cycles=1)
        if any(t.trade is not None and not t.done for t in executor.book.tickets):
            break
    (ticket,) = [t for t in executor.book.tickets if t.trade is not None and not t.done]
    return ticket


def test_a_liquidation_by_the_exchange_ends_the_trade_at_the_exchanges_price(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    strategy = risky(tmp_path)
    bot = start_futures_bot(standin, tmp_path / "candles", url, strategy)
    ticket = until_a_position_opens(bot)
    trade = ticket.trade
    assert trade is not None and ticket.stop is not None  # its stop rests beyond liquidation
    stem = ticket.entry.removesuffix("e0")
    account, symbol = standin.futures, ticket.pair.replace("/", "")
    held = account.position(symbol)
    liquidation = account.liquidation_price(held)
    sign = 1 if held.amount > 0 else -1
    past = liquidation * (1 - sign * Decimal("0.001"))
    account.set_mark_ratio(symbol, past / account.price_now(symbol))  # the mark moves through
    for _ in range(30):
        bot.session.run(cycles=1)
        if trade.exit_time is not None:
            break
    account.set_mark_ratio(symbol, "1")
    (force,) = [o for o in account.orders if o.client_id.startswith("autoclose-")]
    assert force.symbol == symbol and force.executed == abs(held.amount)
    assert trade.exit_reason == LIQUIDATION
    assert trade.exit_price == float(force.average)  # the exchange's price, not the model's
    assert trade.exit_time == pd.Timestamp(force.update_time, unit="ms", tz="UTC")
    # the trade lost what the account lost: its margin and the entry's fee
    entry_fee = sum(f.commission for o in account.orders if o.client_id == ticket.entry
                    for f in o.fills)  # fmt: skip
    assert trade.profit == pytest.approx(-float(held.margin + entry_fee), abs=1e-6)
    said = [e.message for e in bot.recorder.events if e.kind == "warning"]
    assert any(f"{ticket.pair}: the {trade.side} position was liquidated" in m for m in said)
    orders_then = sent_by(standin, stem)
    bot.session.run(cycles=20)
    assert sent_by(standin, stem) == orders_then  # nothing more is sent for it
    bot.store.close()

    again = start_futures_bot(standin, tmp_path / "candles", url, strategy)
    again.session.run(cycles=20)
    problems = [e.message for e in again.recorder.events if e.kind == "error"]
    assert not any(ticket.pair in m for m in problems), problems
    assert not [t for t in again.trades if t.exit_time is None and t.entry_time == trade.entry_time]
    assert sent_by(standin, stem) == orders_then  # the restart does not resurrect it
    wind_down(again)
    with TradeStore(url) as store:
        trades = store.trades(mode="live")
    (stored,) = [t for t in trades if t.entry_time == trade.entry_time and t.pair == trade.pair]
    assert (stored.exit_reason, stored.exit_price) == (LIQUIDATION, float(force.average))
    assert float(account.wallet) == pytest.approx(DEPOSIT + sum(t.profit for t in trades), abs=1e-6)

    shown = io.StringIO()
    with redirect_stdout(shown):
        assert cli(["trades", "--db", url, "--pair", ticket.pair, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(shown.getvalue())))
    (row,) = [r for r in rows if r["exit_reason"] == LIQUIDATION]
    assert float(row["exit_price"]) == float(force.average)


def test_a_position_liquidated_while_the_bot_was_down_ends_its_trade_at_the_next_start(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    strategy = risky(tmp_path)
    bot = start_futures_bot(standin, tmp_path / "candles", url, strategy)
    ticket = until_a_position_opens(bot)
    assert ticket.trade is not None
    entered = ticket.trade.entry_time
    bot.store.close()  # the process dies; meanwhile the mark runs through the liquidation
    account, symbol = standin.futures, ticket.pair.replace("/", "")
    held = account.position(symbol)
    sign = 1 if held.amount > 0 else -1
    past = account.liquidation_price(held) * (1 - sign * Decimal("0.001"))
    account.set_mark_ratio(symbol, past / account.price_now(symbol))
    standin.clock.advance(10 * 60_000)
    account.sync()
    account.set_mark_ratio(symbol, "1")
    (force,) = [o for o in account.orders if o.client_id.startswith("autoclose-")]

    again = start_futures_bot(standin, tmp_path / "candles", url, strategy)
    problems = [e.message for e in again.recorder.events if e.kind == "error"]
    assert not any(ticket.pair in m for m in problems), problems  # no "closed by hand"
    again.session.run(cycles=1)
    (trade,) = [t for t in again.trades if t.entry_time == entered and t.pair == ticket.pair]
    assert (trade.exit_reason, trade.exit_price) == (LIQUIDATION, float(force.average))
    again.store.close()


def test_a_position_liquidated_before_its_stop_could_rest_ends_its_trade(
    standin: ExchangeStandin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The mark runs 10% below the contract price: a long's stop would trigger at once
    and is refused (-2021), and the position is liquidated at the next candle. The stop
    placed again is refused for want of a position (-2022): the exchange's records say
    why, and the trade ends there instead of a stop being tried at every close."""
    caplog.set_level(logging.WARNING)
    for pair in PAIRS:
        standin.futures.set_mark_ratio(pair.replace("/", ""), "0.9")
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    bot = start_futures_bot(standin, tmp_path / "candles", url, risky(tmp_path))
    executor = bot.session.runtime.executor if bot.session.runtime else None
    assert executor is not None
    for _ in range(300):
        bot.session.run(cycles=1)
        longs = [t for t in executor.book.tickets if t.side == "long" and t.trade is not None]
        if longs:
            break
    ticket = longs[0]
    trade = ticket.trade
    assert trade is not None
    for _ in range(30):
        bot.session.run(cycles=1)
        if trade.exit_time is not None:
            break
    symbol = ticket.pair.replace("/", "")
    (force,) = [o for o in standin.futures.orders
                if o.client_id.startswith("autoclose-") and o.symbol == symbol]  # fmt: skip
    assert (trade.exit_reason, trade.exit_price) == (LIQUIDATION, float(force.average))
    stem = ticket.entry.removesuffix("e0")
    stops = [
        r for r in standin.requests("/fapi/v1/algoOrder")
        if r.method == "POST" and r.params["clientAlgoId"].startswith(stem)
    ]  # fmt: skip
    assert stops and all(r.status == 400 for r in stops)  # none could rest
    gone = [
        r.getMessage() for r in caplog.records
        if r.getMessage().startswith(f"order {stem}") and "(code -2022)" in r.getMessage()
    ]  # fmt: skip
    assert len(gone) == 1 and gone[0].startswith(f"order {stem}s")  # the stop's refusal told
    sent = sent_by(standin, stem)
    bot.session.run(cycles=20)
    assert sent_by(standin, stem) == sent
    bot.store.close()


@pytest.mark.slow
def test_run_live_reads_the_liquidation_back_and_a_restarted_process_leaves_it_closed(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    """The real `kinetic-rules run --live` in its own process (tests/live/bot_process.py)."""
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    strategy = risky(tmp_path)
    account = standin.futures

    def position_open() -> bool:
        with account.lock:
            return any(p.amount for p in account.positions.values())

    def liquidated() -> bool:
        return any(o.client_id.startswith("autoclose-") for o in list(account.orders))

    bot = launch(standin, tmp_path, url, strategy)
    wait_for(bot, position_open, tmp_path)
    with account.lock:
        (held,) = [p for p in account.positions.values() if p.amount]
        sign = 1 if held.amount > 0 else -1
        past = account.liquidation_price(held) * (1 - sign * Decimal("0.001"))
        account.set_mark_ratio(held.symbol, past / account.price_now(held.symbol))
    wait_for(bot, liquidated, tmp_path)
    account.set_mark_ratio(held.symbol, "1")
    (force,) = [o for o in account.orders if o.client_id.startswith("autoclose-")]
    later = force.update_time + 30 * 60_000
    kill_when(bot, lambda: standin.clock.now() >= later, tmp_path)
    with TradeStore(url) as store:
        (trade,) = [t for t in store.trades(mode="live") if t.pair.replace("/", "") == held.symbol]
    assert (trade.exit_reason, trade.exit_price) == (LIQUIDATION, float(force.average))
    entry = next(o.client_id for o in account.orders if o.symbol == held.symbol and o.executed
                 and not o.reduce_only and not o.client_id.startswith("autoclose-"))  # fmt: skip
    stem = entry.removesuffix("e0")
    sent = sent_by(standin, stem)

    again = launch(standin, tmp_path, url, strategy)
    until = standin.clock.now() + 60 * 60_000
    kill_when(again, lambda: standin.clock.now() >= until, tmp_path)
    assert "Traceback" not in _log(tmp_path)
    assert sent_by(standin, stem) == sent  # nothing more for it, before or after the restart
    with TradeStore(url) as store:
        (stored,) = [t for t in store.trades(mode="live") if t.entry_time == trade.entry_time]
    assert (stored.exit_reason, stored.exit_price) == (LIQUIDATION, float(force.average))
    shown = io.StringIO()
    with redirect_stdout(shown):
        assert cli(["trades", "--db", url, "--pair", trade.pair]) == 0
    assert LIQUIDATION in shown.getvalue()


def launch(
    standin: ExchangeStandin, tmp_path: Path, url: str, strategy: Path
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KINETIC_API_KEY": API_KEY, "KINETIC_API_SECRET": API_SECRET}
    env.pop("KINETIC_TELEGRAM_TOKEN", None)
    command = [
        sys.executable, "-m", "tests.live.bot_process", standin.url,
        "run", str(strategy), "--live", "--yes", "--exchange-url", standin.url,
        "--db", url, "--data", str(tmp_path / "candles"), "--pairs", *PAIRS,
    ]  # fmt: skip
    with open(tmp_path / "bot.log", "ab") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def wait_for(process: subprocess.Popen[bytes], ready: Callable[[], bool], tmp_path: Path) -> None:
    deadline = time.monotonic() + 600  # a guard against a hang: a busy machine is slow
    while not ready():
        if process.poll() is not None:
            raise AssertionError(f"the bot exited ({process.returncode}):\n{_log(tmp_path)}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the bot never got there:\n{_log(tmp_path)}")
        time.sleep(0.002)

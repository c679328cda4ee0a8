"""A live futures session whose position the exchange liquidates: the executor reads the
liquidation back from the exchange's records (its force order, fills and clearance
fee) and the trade ends at the exchange's price, with what the account really lost."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import redirect_stdout
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kinetic_rules.cli.app import main as cli
from kinetic_rules.engine.model import LIQUIDATION
from kinetic_rules.persist import TradeStore
from tests.live.test_futures_live import BUSY, DEPOSIT, PAIRS, START, start_futures_bot
from tests.live.test_live_trading import wind_down
from tests.standin import ExchangeStandin

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


def test_a_liquidation_by_the_exchange_ends_the_trade_at_the_exchanges_price(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    strategy = risky(tmp_path)
    bot = start_futures_bot(standin, tmp_path / "candles", url, strategy)
    executor = bot.session.runtime.executor if bot.session.runtime else None
    assert executor is not None
    for _ in range(200):
        bot.session.run(cycles=1)
        if any(t.trade is not None and not t.done for t in executor.book.tickets):
            break
    (ticket,) = [t for t in executor.book.tickets if t.trade is not None and not t.done]
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
    executor = bot.session.runtime.executor if bot.session.runtime else None
    assert executor is not None
    for _ in range(200):
        bot.session.run(cycles=1)
        if any(t.trade is not None and not t.done for t in executor.book.tickets):
            break
    (ticket,) = [t for t in executor.book.tickets if t.trade is not None and not t.done]
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

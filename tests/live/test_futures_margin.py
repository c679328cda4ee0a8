""" "Margin is insufficient" through a whole session: an entry the exchange refuses for
margin is sent once more at half its size and the trade opens at that size; refused
again, the entry is skipped with the reason logged. On a live account (the stand-in
answers Binance's -2019) and on a paper futures account (`run --fills book`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.engine.model import Trade
from kinetic_rules.live.session import TradingSession
from tests.live.test_futures_live import DEPOSIT, PAIRS, start_futures_bot
from tests.live.test_paper_futures_session import start_paper_bot
from tests.standin import ExchangeStandin

START = pd.Timestamp("2024-03-05 00:00:10", tz="UTC")
# The book sizes stakes on 10,000 USDT (10% a long, 5% a short, at 1x); the account holds
# 700: a long's 1,000 of margin is refused, its half fits, and then nothing else does.
WALLET = 700.0
RETRY = re.compile(r"order (\S+) on (\S+) refused \((.*)\); sending it once more for (\S+) "
                   r"instead of (\S+)")  # fmt: skip
pytestmark = pytest.mark.slow  # sessions of hours on the stand-in


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as exchange:
        exchange.clock.set(START)
        exchange.futures.deposit(WALLET)
        for pair in PAIRS:
            exchange.futures.funding_rate[pair.replace("/", "")] = Decimal(0)
        yield exchange


def retries(caplog: pytest.LogCaptureFixture) -> dict[str, tuple[str, str, float, float]]:
    """client id -> (pair, reason, the half sent, the size first asked)."""
    found = {}
    for record in caplog.records:
        if match := RETRY.search(record.getMessage()):
            client, pair, reason, half, whole = match.groups()
            found[client] = (pair, reason, float(half), float(whole))
    return found


def rejected(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """client id -> the reason its last try was refused."""
    pattern = re.compile(r"order (\S+) on (\S+) rejected: (.*)")
    return {
        m.group(1): m.group(3)
        for r in caplog.records
        if (m := pattern.search(r.getMessage())) is not None
    }


def run_until_skipped(session: TradingSession, caplog: pytest.LogCaptureFixture) -> None:
    """Until an entry is refused at half its size too."""
    for _ in range(300):
        session.run(cycles=1)
        if set(retries(caplog)) & set(rejected(caplog)):
            return
    raise AssertionError("no entry was refused twice")


def check_halved_then_skipped(
    trades: list[Trade], caplog: pytest.LogCaptureFixture, filled: Callable[[str], float]
) -> None:
    """Each retried entry was sent at half the size, and what of it filled (`filled`: by
    client id; a limit entry may time out) is a trade; or it was skipped for margin."""
    tried, refused = retries(caplog), rejected(caplog)
    opened = [c for c in tried if c not in refused and filled(c) > 0]
    assert opened and set(tried) & set(refused)
    for client, (pair, reason, half, whole) in tried.items():
        assert "insufficient" in reason.lower()
        assert half == pytest.approx(whole / 2, rel=1e-3)
        if client in refused:  # skipped, with the exchange's reason logged
            assert "insufficient" in refused[client].lower() and filled(client) == 0
        elif filled(client) > 0:  # the trade is the half that fitted (cut to the step)
            assert half * (1 - 1e-3) <= filled(client) <= half
            assert any(t.pair == pair and t.amount == pytest.approx(filled(client)) for t in trades)


def test_a_live_entry_refused_for_margin_opens_at_half_size_and_the_next_is_skipped(
    standin: ExchangeStandin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    bot = start_futures_bot(standin, tmp_path / "candles", url, book_balance=DEPOSIT)
    executor = bot.session.runtime.executor if bot.session.runtime else None
    assert executor is not None
    run_until_skipped(bot.session, caplog)
    posts = [r for r in standin.requests("/fapi/v1/order") if r.method == "POST"]
    entries = list(dict.fromkeys(r.params["newClientOrderId"] for r in posts
                                 if r.params.get("reduceOnly") != "true"))  # fmt: skip
    by_entry = {e: [r for r in posts if r.params["newClientOrderId"] == e] for e in entries}
    first = next(e for e in entries if len(by_entry[e]) == 2)
    refused, accepted = by_entry[first]
    assert (refused.status, accepted.status) == (400, 200)
    assert float(accepted.params["quantity"]) == pytest.approx(
        float(refused.params["quantity"]) / 2,
        abs=float(standin.market.symbols["BTCUSDT"].step_size),
    )
    skipped = [e for e in entries if [r.status for r in by_entry[e]] == [400, 400]]
    assert skipped  # refused, and refused again at half: no third try
    assert all(len(by_entry[e]) <= 2 for e in entries)

    def filled(client: str) -> float:
        return sum(float(o.executed) for o in standin.futures.orders if o.client_id == client)

    check_halved_then_skipped(bot.trades, caplog, filled)
    assert set(retries(caplog)) == {e for e in entries if len(by_entry[e]) == 2}
    for trade in [t for t in bot.trades if t.exit_time is None]:
        held = standin.futures.position(trade.pair.replace("/", ""))
        assert abs(float(held.amount)) == pytest.approx(trade.amount)
    bot.store.close()


def test_a_paper_futures_entry_refused_for_margin_opens_at_half_size_and_the_next_is_skipped(
    standin: ExchangeStandin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    url = f"sqlite:///{tmp_path / 'paper.sqlite'}"
    bot = start_paper_bot(standin, tmp_path / "candles", url, balance=WALLET)
    assert bot.executor.book.starting_balance == DEPOSIT
    run_until_skipped(bot.session, caplog)
    account = bot.broker.account

    def filled(client: str) -> float:
        return sum(o.filled for o in account.orders if o.request.client_id == client)

    check_halved_then_skipped(bot.trades, caplog, filled)
    for trade in [t for t in bot.trades if t.exit_time is None]:
        assert abs(account.position(trade.pair).amount) == pytest.approx(trade.amount)
    assert not standin.requests("/fapi/v1/order")  # paper: the exchange is never asked
    bot.store.close()

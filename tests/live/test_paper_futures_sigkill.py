"""`run --fills book` on a futures strategy, killed with SIGKILL mid-session and started
again: the simulated margin account comes back exactly as it was last saved (positions,
margin, leverage, open orders, funding charged) and agrees with the executor's book;
the session trades on and nothing is doubled: no fill, no order, no funding charge.

The real command runs in its own process (tests/live/bot_process.py) on busy.yaml, long
and short, against the stand-in's futures market data; funding every 15 minutes, so that
the downtime holds funding times to be charged when it comes back.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.compile.plan import build_plan
from kinetic_rules.engine.fills import fill_model
from kinetic_rules.lang.checker import check
from kinetic_rules.live.futures import FuturesSettings
from kinetic_rules.live.paper_futures import PaperFuturesBroker
from kinetic_rules.live.paper_margin import MarginAccount
from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.book import StoredBook
from kinetic_rules.spec.loader import load_file
from tests.live.test_futures_sigkill import fields
from tests.live.test_paper_futures import futures_client
from tests.live.test_paper_futures_session import BUSY, PAIRS, start_paper_bot, wind_down
from tests.live.test_sigkill import _log, kill_when
from tests.standin import ExchangeStandin
from tests.standin.account import API_KEY, API_SECRET

ROOT = Path(__file__).resolve().parents[2]
START = pd.Timestamp("2024-03-05 00:00:10", tz="UTC")
END = START + pd.Timedelta(hours=5)
DOWNTIME_MS = 17 * 60_000
FUNDING_MS = 15 * 60_000
KEY = "paper-broker:busy"
pytestmark = pytest.mark.slow  # each case runs the bot for hours of stand-in time


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as exchange:
        exchange.clock.set(START)
        exchange.futures.funding_ms = FUNDING_MS
        for pair in PAIRS:  # a long pays, a short receives
            exchange.futures.funding_rate[pair.replace("/", "")] = Decimal("0.001")
        yield exchange


def launch(standin: ExchangeStandin, tmp_path: Path, url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KINETIC_API_KEY": API_KEY, "KINETIC_API_SECRET": API_SECRET}
    env.pop("KINETIC_TELEGRAM_TOKEN", None)
    command = [
        sys.executable, "-m", "tests.live.bot_process", standin.url,
        "run", str(BUSY), "--fills", "book", "--exchange-url", standin.url,
        "--db", url, "--data", str(tmp_path / "candles"), "--pairs", *PAIRS,
    ]  # fmt: skip
    with open(tmp_path / "bot.log", "ab") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def saved_account(url: str) -> MarginAccount | None:
    with TradeStore(url) as store:
        text = store.state(KEY)
    return None if text is None else MarginAccount.load(text, 0.0, 0.0)


def account_fields(account: MarginAccount) -> dict[str, object]:
    data = dataclasses.asdict(account)
    data.pop("fee_rate"), data.pop("maintenance")  # the strategy's, not saved
    return data


def shorts_open(url: str) -> bool:
    try:
        account = saved_account(url)
    except Exception:  # the store is being created or written: not yet
        return False
    return account is not None and any(p.amount < 0 for p in account.positions.values())


@pytest.mark.parametrize("moment", ["short open", "01:52:00", "03:07:30"])
def test_a_paper_futures_runner_killed_mid_session_resumes_with_the_account_as_it_was(
    standin: ExchangeStandin, tmp_path: Path, moment: str
) -> None:
    url = f"sqlite:///{tmp_path / 'paper.sqlite'}"
    if moment == "short open":
        ready = lambda: shorts_open(url)  # noqa: E731
    else:
        at = int(pd.Timestamp(f"2024-03-05 {moment}", tz="UTC").timestamp() * 1000)
        ready = lambda: standin.clock.now() >= at  # noqa: E731
    kill_when(launch(standin, tmp_path, url), ready, tmp_path)
    assert "Traceback" not in _log(tmp_path)
    killed = saved_account(url)
    assert killed is not None
    with TradeStore(url) as store:
        kept = StoredBook(store, "busy", mode="paper").load_book()
    assert kept is not None
    held = {pair for pair, p in killed.positions.items() if p.amount}
    assert held or moment != "short open"
    killed_at = standin.clock.now()
    standin.clock.advance(DOWNTIME_MS)  # closes and funding times go by while it is down

    # What the process saved at the kill is what a new start restores, field by field.
    with TradeStore(url) as store:
        fresh = PaperFuturesBroker(
            futures_client(standin), settings=FuturesSettings(),
            fills=fill_model(build_plan(check(load_file(BUSY)))),
            stake_currency="USDT", balance=1.0, journal=store, journal_key=KEY, rate_limit_ms=0,
        )  # fmt: skip
        assert account_fields(fresh.account) == account_fields(killed)
    bot = start_paper_bot(standin, tmp_path / "candles", url)
    assert fields(bot.restored) == fields(kept)  # the executor's book, as saved
    account = bot.broker.account
    for pair in held:  # positions open at the kill paid or received funding meanwhile
        assert any(killed_at < c.time <= killed_at + DOWNTIME_MS for c in account.charges
                   if c.pair == pair)  # fmt: skip
    end_ms = int(END.timestamp() * 1000)
    while standin.clock.now() < end_ms:
        bot.session.run(cycles=1)
    wind_down(bot)
    assert bot.broker.positions() == []
    trades = bot.store.trades(mode="paper")
    assert trades and {"long", "short"} <= {t.side for t in trades}
    assert all(t.exit_time is not None for t in trades)
    # nothing doubled: each order placed once, each funding time charged once per pair
    placed = Counter(o.request.client_id for o in account.orders)
    assert max(placed.values()) == 1
    assert max(Counter((c.pair, c.time) for c in account.charges).values()) == 1
    opened = sorted(
        (o.request.pair, o.filled, o.request.side)
        for o in account.orders
        if o.request.opening and o.filled > 0
    )
    assert opened == sorted((t.pair, t.amount, t.side) for t in trades)  # one trade per entry
    # every dollar: the wallet is the deposit and the stored trades, funding included
    assert sum(t.funding for t in trades) == pytest.approx(sum(c.paid for c in account.charges))
    assert account.wallet == pytest.approx(
        bot.restored.starting_balance + sum(t.profit for t in trades), abs=1e-6
    )
    bot.store.close()

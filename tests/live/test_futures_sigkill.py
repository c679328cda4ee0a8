"""A futures session with shorts open, killed with SIGKILL at many moments and started again.

The real `kinetic-rules run --live` runs in its own process (tests/live/bot_process.py)
on busy.yaml, a futures strategy that goes long and short, through ccxt's `binanceusdm`
against the stand-in. After each kill and restart every position, order, stop and
dollar on the exchange is accounted for by the stored book and trades, funding included:
the stand-in charges it at every funding time, also while the bot is down.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.engine.orders import Book
from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.book import StoredBook
from tests.live.test_futures_live import BUSY, PAIRS, BookRecorder, start_futures_bot
from tests.live.test_sigkill import _log, kill_when
from tests.standin import ExchangeStandin
from tests.standin.account import API_KEY, API_SECRET

ROOT = Path(__file__).resolve().parents[2]
START = pd.Timestamp("2024-03-05 03:20:10", tz="UTC")
END = START + pd.Timedelta(hours=4)
DOWNTIME_MS = 17 * 60_000
# Funding every 15 minutes (the exchange funds every 8, 4 or 1 hours): shorter than the
# downtime, so that every kill leaves a funding time to be charged while the bot is down.
FUNDING_MS = 15 * 60_000
DEPOSIT = 10_000.0
ORDER_PATHS = ("/fapi/v1/order", "/fapi/v1/algoOrder")


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as exchange:
        exchange.clock.set(START)
        exchange.futures.deposit(DEPOSIT)
        exchange.futures.funding_ms = FUNDING_MS
        for pair in PAIRS:  # a long pays, a short receives: both happen with shorts open
            exchange.futures.funding_rate[pair.replace("/", "")] = Decimal("0.001")
        yield exchange


def launch(standin: ExchangeStandin, tmp_path: Path, url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KINETIC_API_KEY": API_KEY, "KINETIC_API_SECRET": API_SECRET}
    env.pop("KINETIC_TELEGRAM_TOKEN", None)
    command = [
        sys.executable, "-m", "tests.live.bot_process", standin.url,
        "run", str(BUSY), "--live", "--yes", "--exchange-url", standin.url,
        "--db", url, "--data", str(tmp_path / "candles"), "--pairs", *PAIRS,
    ]  # fmt: skip
    with open(tmp_path / "bot.log", "ab") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def order_requests(standin: ExchangeStandin) -> int:
    return sum(1 for p in ORDER_PATHS for r in standin.requests(p) if r.method == "POST")


def shorts_open(standin: ExchangeStandin) -> bool:
    with standin.futures.lock:
        return any(p.amount < 0 for p in standin.futures.positions.values())


def stored_book(url: str) -> Book:
    with TradeStore(url) as store:
        book = StoredBook(store, "busy").load_book()
    assert book is not None
    return book


def exits_sent(standin: ExchangeStandin) -> int:
    """Reduce-only exits and take-profits sent (the stop rests meanwhile: it is not lifted)."""
    return sum(
        1
        for r in standin.requests("/fapi/v1/order")
        if r.method == "POST" and r.params.get("reduceOnly") == "true"
    )


# Each case is one session killed at each of its moments in turn and started again each
# time (one run of hours of stand-in time serves several kills): after `k` order requests
# with shorts open, or (`exit`) as soon as the k-th exit has reached the exchange.
@pytest.mark.parametrize(
    "kills",
    [((1, "orders"), (6, "orders")), ((3, "orders"), (10, "orders")), ((1, "exit"),)],
    ids=["orders-1-6", "orders-3-10", "exit-1"],
)
def test_a_futures_runner_killed_with_shorts_open_resumes_with_everything_accounted_for(
    standin: ExchangeStandin, tmp_path: Path, kills: tuple[tuple[int, str], ...]
) -> None:
    """`exit`: killed as soon as an exit has reached the exchange, while the stop it did not
    lift still rests: the restart finds the exit and cancels the stop once flat."""
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    downtimes: list[tuple[int, bool]] = []  # when each kill came, and whether it held any
    before: Book | None = None
    for kill_after, moment in kills:
        if moment == "exit":
            ready = lambda k=kill_after: exits_sent(standin) >= k  # noqa: E731
        else:
            ready = lambda k=kill_after: order_requests(standin) >= k and shorts_open(standin)  # noqa: E731
        kill_when(launch(standin, tmp_path, url), ready, tmp_path)
        with standin.futures.lock:
            held = any(p.amount for p in standin.futures.positions.values())
        before = before or stored_book(url)
        downtimes.append((standin.clock.now(), held))
        standin.clock.advance(DOWNTIME_MS)
    assert before is not None
    last_kill = order_requests(standin)
    end_ms = int(END.timestamp() * 1000)
    kill_when(launch(standin, tmp_path, url), lambda: standin.clock.now() >= end_ms, tmp_path)
    assert "Traceback" not in _log(tmp_path, tail=None)
    assert order_requests(standin) > last_kill + 3  # it went on trading after the last kill
    # What the process kept at its last kill is what a new start restores, field by field.
    kept = stored_book(url)
    bot = start_futures_bot(standin, tmp_path / "candles", url)
    assert isinstance(bot.recorder, BookRecorder) and bot.recorder.restored is not None
    restored = bot.recorder.restored
    assert fields(restored) == fields(kept)
    assert before.prefix == restored.prefix  # the same session resumed, not a new one
    bot.session.run(cycles=1)  # one close: funding is read from the exchange at each close
    funded = [i.time for i in standin.futures.income("FUNDING_FEE")]
    for killed_at, held in downtimes:  # positions open at a kill were charged while it was down
        assert not held or any(killed_at < t <= killed_at + DOWNTIME_MS for t in funded)
    assert_everything_accounted_for(standin, url)
    bot.store.close()


def fields(book: Book) -> dict[str, object]:
    """Every field of the book, but the trades' ids: an ordinal a process numbers its
    trades by (the store keys them by itself), so a restart numbers them afresh."""
    data = dataclasses.asdict(book)
    for ticket in data["tickets"]:
        if ticket["trade"] is not None:
            ticket["trade"].pop("id")
    return data


def assert_everything_accounted_for(standin: ExchangeStandin, url: str) -> None:
    account = standin.futures
    with TradeStore(url) as store:
        trades = store.trades(mode="live")
        book = StoredBook(store, "busy").load_book()
    assert book is not None and trades
    assert any(t.side == "short" for t in trades)
    opened = sorted(
        (o.symbol, float(o.executed), "long" if o.buy else "short")
        for o in account.orders
        if not o.reduce_only and not o.algo and o.executed > 0
    )
    assert opened == sorted((t.pair.replace("/", ""), t.amount, t.side) for t in trades)
    for pair in PAIRS:  # each position is the open trades' remainder, long or short
        left = sum(
            (1 if t.side == "long" else -1) * (t.amount - sum(f.amount for f in t.fills[1:]))
            for t in trades
            if t.pair == pair
        )
        assert float(account.position(pair.replace("/", "")).amount) == pytest.approx(
            left, abs=1e-9
        )
    realized = sum(
        -t.fills[0].fee
        + sum(
            (1 if t.side == "long" else -1) * (f.price - t.entry_price) * f.amount - f.fee
            for f in t.fills[1:]
        )
        for t in trades
    )
    funding = sum(t.funding for t in trades)  # paid (+) or received (−), from income records
    charged = account.income("FUNDING_FEE")
    assert charged and funding == pytest.approx(-sum(float(i.amount) for i in charged), abs=1e-6)
    assert float(account.wallet) == pytest.approx(DEPOSIT + realized - funding, abs=1e-6)
    known = {cid for t in book.tickets for cid in (t.entry, t.stop, t.exit) if cid}
    assert {o.client_id for o in account.open_orders(None)} <= known
    for trade in (t for t in trades if t.exit_time is None):
        stops = account.open_orders(trade.pair.replace("/", ""), algo=True)
        assert len(stops) == 1 and stops[0].reduce_only  # exactly one stop per open trade

"""The runner process killed with SIGKILL at many moments, and started again.

`tests/live/bot_process.py` runs the real `kinetic-rules run --live` in the stand-in's
time. The test kills it right after its k-th order request (the answer may or may not
have reached it), lets 17 minutes of candles go by, starts it again on the same trade
store, kills it at the next chosen k, and so on; then lets it trade on, kills it once
more, and checks the books the only way a user can: against the exchange. Every coin
bought belongs to a stored trade, every dollar is accounted for by stored fills, and
every open order is one the bot knows.
Paper sessions are killed mid-trade too; theirs must still be the backtest's trades.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.backtest.runner import simulate
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.data.store import CandleStore
from kinetic_rules.lang.checker import check
from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.book import StoredBook
from kinetic_rules.spec.loader import load_file
from tests.live.test_live_trading import BUSY_SPOT, DEPOSIT, PAIRS, start_bot, usdt
from tests.live.test_replay import fingerprint
from tests.standin import ExchangeStandin
from tests.standin.account import API_KEY, API_SECRET

ROOT = Path(__file__).resolve().parents[2]
START = pd.Timestamp("2024-03-05 03:20:10", tz="UTC")  # ten minutes before the first entry
END = START + pd.Timedelta(hours=4)
DOWNTIME_MS = 17 * 60_000
PAPER_KILLS = ("04:07:30", "05:41:10", "06:12:00")  # mid-trade moments of the paper session
pytestmark = pytest.mark.slow  # each case runs the bot for hours of stand-in time


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as exchange:
        exchange.clock.set(START)
        exchange.account.deposit("USDT", DEPOSIT)
        yield exchange


def launch(
    standin: ExchangeStandin, tmp_path: Path, url: str, *mode: str
) -> subprocess.Popen[bytes]:
    """The bot, trading for real unless `mode` says otherwise (e.g. "--dry-run")."""
    env = {**os.environ, "KINETIC_API_KEY": API_KEY, "KINETIC_API_SECRET": API_SECRET}
    env.pop("KINETIC_TELEGRAM_TOKEN", None)
    command = [
        sys.executable, "-m", "tests.live.bot_process", standin.url,
        "run", str(BUSY_SPOT), *(mode or ("--live", "--yes")), "--exchange-url", standin.url,
        "--db", url, "--data", str(tmp_path / "candles"), "--pairs", *PAIRS,
    ]  # fmt: skip
    with open(tmp_path / "bot.log", "ab") as log:  # the child keeps its own copy
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def kill_when(process: subprocess.Popen[bytes], ready: object, tmp_path: Path) -> None:
    deadline = time.monotonic() + 600  # a guard against a hang: a busy machine is slow, not wrong
    while not ready():  # type: ignore[operator]
        if process.poll() is not None:
            raise AssertionError(f"the bot exited ({process.returncode}):\n{_log(tmp_path)}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the bot never got there:\n{_log(tmp_path)}")
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def _log(tmp_path: Path, *, tail: int | None = 3000) -> str:
    """The bot's log: its end, for a failure message, or whole (tail=None), for a check."""
    text = (tmp_path / "bot.log").read_text(errors="replace")
    return text if tail is None else text[-tail:]


def order_requests(standin: ExchangeStandin) -> int:
    return sum(1 for r in standin.requests("/api/v3/order") if r.method == "POST")


# The moments, as counts of order requests: a session is killed at each of its counts in
# turn (started again each time), so one run of hours of stand-in time serves several kills.
@pytest.mark.parametrize("kills", [(1, 4, 11), (2, 7)], ids=["1-4-11", "2-7"])
def test_a_runner_killed_at_any_moment_resumes_with_nothing_lost_or_doubled(
    standin: ExchangeStandin, tmp_path: Path, kills: tuple[int, ...]
) -> None:
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    for kill_after in kills:
        ready = lambda kill_after=kill_after: order_requests(standin) >= kill_after  # noqa: E731
        kill_when(launch(standin, tmp_path, url), ready, tmp_path)
        standin.clock.advance(DOWNTIME_MS)  # closes go by while it is down
    end_ms = int(END.timestamp() * 1000)
    kill_when(launch(standin, tmp_path, url), lambda: standin.clock.now() >= end_ms, tmp_path)
    assert "Traceback" not in _log(tmp_path, tail=None)

    # One more start, in this process: it asks the exchange about every order it may
    # have sent, and records what happened to them.
    bot = start_bot(standin, tmp_path / "candles", url)
    assert bot.session.runtime is not None
    bot.session._poll()
    assert_nothing_lost(standin, url)
    assert order_requests(standin) > kills[-1] + 3  # it went on trading after the last kill


def test_a_paper_runner_killed_mid_trade_resumes_as_if_nothing_happened(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    """Paper sessions resume by feeding the runtime every close since they began: after a
    SIGKILL at any moment the stored trades are the backtest's, none lost, none twice.
    One session is killed at each moment in turn and started again each time."""
    url = f"sqlite:///{tmp_path / 'paper.sqlite'}"
    kills = [pd.Timestamp(f"2024-03-05 {at}", tz="UTC") for at in PAPER_KILLS]
    for until in (*(int(k.timestamp() * 1000) for k in kills), int(END.timestamp() * 1000)):
        bot = launch(standin, tmp_path, url, "--dry-run")
        kill_when(bot, lambda until=until: standin.clock.now() >= until, tmp_path)
    assert "Traceback" not in _log(tmp_path, tail=None)
    with TradeStore(url) as store:
        stored = [t for t in store.trades(mode="paper") if t.exit_time is not None]
    plan = build_plan(check(load_file(BUSY_SPOT)))
    candles = CandleStore(tmp_path / "candles")
    cutoff = END - pd.Timedelta(hours=1)  # well before the last kill

    def feed(pair: str, timeframe: str) -> pd.DataFrame:
        return candles.read("binance", pair, timeframe)

    backtest = simulate(plan, feed, PAIRS, start=START.floor("5min"))
    expected = [fingerprint(t)[1:] for t in backtest.trades if t.fills[-1].time < cutoff]
    mine = [fingerprint(t)[1:] for t in stored if t.fills[-1].time < cutoff]
    assert len(mine) >= 3
    assert sorted(mine, key=repr) == sorted(expected, key=repr)


def assert_nothing_lost(standin: ExchangeStandin, url: str) -> None:
    with TradeStore(url) as store:
        trades = store.trades(mode="live")
        book = StoredBook(store, "busy-spot").load_book()
    assert book is not None and trades
    bought = sorted(
        (o.symbol.replace("USDT", "/USDT"), float(o.executed))
        for o in standin.account.orders
        if o.side == "BUY" and o.executed > 0
    )
    assert bought == sorted((t.pair, t.amount) for t in trades)  # one trade per buy, no more
    for pair in PAIRS:
        coin = pair.split("/")[0]
        held = standin.account.free(coin) + standin.account.locked(coin)
        # Open trades hold what they have not sold; closed ones at most dust (one step).
        left = sum(t.amount - sum(f.amount for f in t.fills[1:]) for t in trades if t.pair == pair)
        assert held == pytest.approx(left, abs=1e-12)
        dust = [t.amount - sum(f.amount for f in t.fills[1:]) for t in trades if t.exit_time]
        assert all(d < 0.001 + 1e-12 for d in dust)
    flows = sum(
        (-1 if i == 0 else 1) * f.price * f.amount - f.fee
        for t in trades
        for i, f in enumerate(t.fills)
    )
    assert usdt(standin) == pytest.approx(DEPOSIT + flows, abs=1e-6)
    known = {cid for t in book.tickets for cid in (t.entry, t.stop, t.exit) if cid}
    assert {o.client_id for o in standin.account.open_orders(None)} <= known
    for trade in (t for t in trades if t.exit_time is None):
        stops = [
            o for o in standin.account.open_orders(trade.pair.replace("/", "")) if o.stop_price > 0
        ]
        assert len(stops) == 1  # an open trade keeps exactly one stop on the exchange

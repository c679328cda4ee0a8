"""Paper trading against the exchange stand-in: the real ccxt client, candles arriving as
the stand-in's clock moves, and trades equal to a backtest of the same candles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.backtest.runner import simulate
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.data.store import CandleStore
from kinetic_rules.lang.checker import check
from kinetic_rules.live.session import TradingSession
from kinetic_rules.spec.loader import load_file
from tests.conftest import WHOLE_HISTORY
from tests.live.test_replay import BUSY, fingerprint
from tests.standin.exchange import ExchangeStandin

PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
START = pd.Timestamp("2024-03-05 00:00:10", tz="UTC")


@pytest.mark.slow
def test_a_paper_session_trades_as_the_backtest_does(tmp_path: Path) -> None:
    plan = build_plan(check(load_file(BUSY)))
    store = CandleStore(tmp_path)
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START)

        def now() -> pd.Timestamp:
            return pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")

        def sleep(seconds: float) -> None:
            standin.clock.advance(int(seconds * 1000))

        session = TradingSession(
            plan, standin.ccxt_client(), store, PAIRS, clock=now, sleep=sleep,
            sizes={"5m": WHOLE_HISTORY},  # the whole history: exactly what the backtest sees
        )  # fmt: skip
        session.start()
        session.run(cycles=150)
        assert session.runtime is not None
        paper = session.runtime.trades()
        last_open = session.runtime.source.timeline[-1]
    first_decision = START.floor("5min")  # the first close the session acts on ends this candle

    def feed(pair: str, timeframe: str) -> pd.DataFrame:
        frame = store.read("binance", pair, timeframe)
        return frame[frame.index <= last_open]

    backtest = simulate(plan, feed, PAIRS, start=first_decision)
    closed = [fingerprint(t) for t in backtest.trades if t.exit_reason != "end_of_data"]
    mine = [fingerprint(t) for t in paper if t.exit_time is not None]
    assert len(mine) >= 3
    assert mine == closed


def _session(standin: ExchangeStandin, root: Path, url: str) -> TradingSession:
    from kinetic_rules.persist import TradeStore
    from kinetic_rules.persist.sink import StoreSink

    plan = build_plan(check(load_file(BUSY)))
    trades = TradeStore(url)

    def now() -> pd.Timestamp:
        return pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")

    def sleep(seconds: float) -> None:
        standin.clock.advance(int(seconds * 1000))

    return TradingSession(
        plan, standin.ccxt_client(), CandleStore(root), PAIRS, clock=now, sleep=sleep,
        sizes={"5m": WHOLE_HISTORY}, sink=StoreSink(trades, strategy="busy", mode="paper"),
        journal=trades,
    )  # fmt: skip


def _stored(url: str) -> list[tuple[object, ...]]:
    from kinetic_rules.persist import TradeStore

    with TradeStore(url) as store:
        return sorted((fingerprint(t)[1:] for t in store.trades(mode="paper")), key=repr)


def _run_whole(standin: ExchangeStandin, root: Path, url: str, cycles: int) -> int:
    """The session run without a crash; when it ended, on the stand-in's clock."""
    standin.clock.set(START)
    session = _session(standin, root, url)
    session.start()
    session.run(cycles=cycles)
    return standin.clock.now()


def _run_crashed(
    standin: ExchangeStandin, root: Path, url: str, crash_after: int, end: int
) -> bool:
    """The session killed after `crash_after` closes, down for 17 minutes of closes, and
    started again until `end`; whether a trade was open at the crash."""
    standin.clock.set(START)
    first = _session(standin, root, url)
    first.start()
    first.run(cycles=crash_after)
    open_at_crash = [t for t in first.runtime.trades() if t.exit_time is None]  # type: ignore[union-attr]
    del first  # the process dies: nothing in memory survives
    standin.clock.advance(17 * 60 * 1000)  # closes go by while it is down
    second = _session(standin, root, url)
    second.start()  # catches up on every close since the session began
    while standin.clock.now() < end:
        second.run(cycles=1)
    return bool(open_at_crash)


@pytest.mark.slow
def test_a_session_killed_at_any_moment_resumes_with_nothing_lost_or_doubled(
    tmp_path: Path,
) -> None:
    """Crashed at each moment in turn (each its own session, on a fresh stand-in), the
    session stores what the uninterrupted one stored; that one runs once for all."""
    whole = f"sqlite:///{tmp_path / 'whole.sqlite'}"
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        end = _run_whole(standin, tmp_path / "whole", whole, cycles=70)
    assert len(_stored(whole)) >= 2
    for crash_after in (37, 61):
        broken = f"sqlite:///{tmp_path / f'broken-{crash_after}.sqlite'}"
        with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
            root = tmp_path / f"broken-{crash_after}"
            open_at_crash = _run_crashed(standin, root, broken, crash_after, end)
        assert open_at_crash or crash_after == 61  # 37 is mid-trade: that crash must hit one
        assert _stored(broken) == _stored(whole), f"crashed after {crash_after} closes"


def test_an_outage_over_five_minutes_enters_fail_safe_and_recovery_leaves_it(
    tmp_path: Path,
) -> None:
    from kinetic_rules.data.exchange import RetryPolicy
    from tests.live.test_replay import Recorder

    plan = build_plan(check(load_file(BUSY)))
    recorder = Recorder()
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START)

        def now() -> pd.Timestamp:
            return pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")

        def sleep(seconds: float) -> None:
            standin.clock.advance(int(seconds * 1000))

        session = TradingSession(
            plan, standin.ccxt_client(), CandleStore(tmp_path), PAIRS, clock=now, sleep=sleep,
            sizes={"5m": WHOLE_HISTORY}, retry=RetryPolicy(attempts=2, base_delay=1.0, sleep=sleep),
        )  # fmt: skip
        session.start()
        assert session.runtime is not None
        session.runtime.notifiers.append(recorder)
        session.run(cycles=3)
        outage_began = now()
        standin.faults.fail_next(100_000)  # the exchange answers nothing but 503s
        session.run(cycles=8)  # 40 minutes of closes
        outage_ended = now()
        standin.faults.clear()
        session.run(cycles=2)
    kinds = [e.kind for e in recorder.events if e.kind.startswith("fail_safe")]
    assert kinds == ["fail_safe_entered", "fail_safe_left"]
    entered = next(e for e in recorder.events if e.kind == "fail_safe_entered")
    assert entered.time - outage_began > pd.Timedelta("5min")
    assert "no new entries" in entered.message
    decided_during = [
        t for t in session.runtime.trades()
        if outage_began <= t.signal_time + pd.Timedelta("5min") < outage_ended
    ]  # fmt: skip
    assert decided_during == []


def test_a_session_of_many_pairs_keeps_its_journal_key_within_the_state_table() -> None:
    plan = build_plan(check(load_file(BUSY)))
    many = [f"COIN{i:03d}/USDT" for i in range(60)]

    def session(pairs: list[str]) -> TradingSession:
        return TradingSession(plan, None, None, pairs, clock=pd.Timestamp.now, sleep=print)  # type: ignore[arg-type]

    key = session(many)._journal_key
    assert len(key) <= 200 and key == session(list(many))._journal_key
    assert key != session(many[:-1])._journal_key
    assert session(PAIRS)._journal_key == "paper-session:busy:" + ",".join(PAIRS)

"""`kinetic-rules ui --db`: a session that has stopped shows what it showed while it ran —
the decision feed, the equity curve, each pair's candles and its open positions'
unrealized profit — because it recorded each close in its trade store."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from kinetic_rules.backtest.explain import showing_entries
from kinetic_rules.cli.app import main
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.data.store import CandleStore
from kinetic_rules.lang.checker import check
from kinetic_rules.live.controls import SessionControls
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.session import TradingSession
from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.feed import Retention
from kinetic_rules.persist.sink import EventLog, StoreSink
from kinetic_rules.spec.loader import load_file
from kinetic_rules.ui.app import create_app
from kinetic_rules.ui.hub import Hub
from kinetic_rules.ui.record import KEEP_CANDLES
from kinetic_rules.ui.session import watch_session
from kinetic_rules.ui.sources import LiveSource, StoreSource
from kinetic_rules.ui.watch import KEEP_DECISIONS
from tests.standin.exchange import ExchangeStandin
from tests.ui.conftest import STRATEGY, TOKEN, Session

PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
START = pd.Timestamp("2024-03-05 00:00:10", tz="UTC")


def recorded_app(runtime: Runtime, controls: SessionControls, store: TradeStore) -> TestClient:
    """The dashboard of a running session that records each close, as `run` sets it up."""
    hub = Hub()
    watch = watch_session(runtime, STRATEGY, store, Retention(days=7), hub)
    return TestClient(create_app(LiveSource(controls, watch, STRATEGY), TOKEN, hub))


def answers(client: TestClient) -> dict[str, Any]:
    """Everything the page reads of the decision feed, equity, candles and positions."""
    found = {
        "decisions": client.get("/api/decisions", params={"limit": 500}).json(),
        "equity": client.get("/api/equity").json(),
        "positions": client.get("/api/positions").json(),
        "pairs": client.get("/api/status").json()["pairs"],
        "scanner": client.get("/api/scanner").json(),
    }
    for pair in PAIRS:
        found[pair] = client.get("/api/candles", params={"pair": pair, "limit": 1500}).json()
    return found


def stored_answers(url: str) -> dict[str, Any]:
    """The same, from `ui --db URL`: a read-only store, as the command opens it."""
    with TradeStore(url, create=False, read_only=True) as reader:
        return answers(TestClient(create_app(StoreSource(reader), TOKEN)))


def same_positions(live: list[dict[str, Any]], stored: list[dict[str, Any]]) -> None:
    """Equal but for the id: the live API numbers trades as the session does, the store
    as its database does."""

    def key(p: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in p.items() if k != "id"}

    assert [key(p) for p in stored] == [key(p) for p in live]


def test_a_stopped_replay_shows_what_it_showed_while_running(session: Session) -> None:
    client = recorded_app(session.runtime, session.controls, session.store)
    session.advance(400)
    session.until(lambda: session.open_trades() > 0)
    live = answers(client)
    assert live["positions"] and live["positions"][0]["unrealized"] is not None
    assert any(d["outcome"].startswith("entered") for d in live["decisions"])
    assert len(live["equity"]) > 400 and all(len(live[p]) > 100 for p in PAIRS)
    session.store.close()  # the session stops

    stored = stored_answers(session.store.where)
    assert stored["decisions"] == live["decisions"]
    assert stored["equity"] == live["equity"]
    for pair in PAIRS:
        assert stored[pair] == live[pair], pair
    same_positions(live["positions"], stored["positions"])
    assert stored["pairs"] == live["pairs"] and stored["scanner"] == live["scanner"]


@pytest.mark.slow
def test_a_stopped_paper_session_shows_what_it_showed_while_running(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trades.sqlite'}"
    plan = showing_entries(build_plan(check(load_file(STRATEGY))))
    with ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin:
        standin.clock.set(START)

        def now() -> pd.Timestamp:
            return pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")

        def sleep(seconds: float) -> None:
            standin.clock.advance(int(seconds * 1000))

        store = TradeStore(url)
        paper = TradingSession(
            plan, standin.ccxt_client(), CandleStore(tmp_path / "candles"), PAIRS, clock=now,
            sleep=sleep, sink=StoreSink(store, strategy="busy-spot", mode="paper"), journal=store,
        )  # fmt: skip
        paper.start()
        runtime = paper.runtime
        assert isinstance(runtime, Runtime)
        runtime.notifiers.append(EventLog(store))
        client = recorded_app(runtime, SessionControls(runtime, store), store)
        paper.run(cycles=60)
        for _ in range(600):
            if runtime.state(trades=False).positions:
                break
            paper.run(cycles=1)
        live = answers(client)
        store.close()  # the session stops with a position open
    assert live["positions"] and live["positions"][0]["unrealized"] is not None
    assert live["decisions"] and len(live["equity"]) >= 60
    stored = stored_answers(url)
    assert stored["decisions"] == live["decisions"]
    assert stored["equity"] == live["equity"]
    for pair in PAIRS:
        assert stored[pair] and stored[pair] == live[pair], pair
    same_positions(live["positions"], stored["positions"])


@pytest.mark.slow  # a whole replay
def test_run_records_each_close_without_the_dashboard(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'replay.sqlite'}"
    replay = ["run", str(STRATEGY), "--replay", str(fixture_store), "-q"]
    assert main([*replay, "--db", url]) == 0
    capsys.readouterr()
    with TradeStore(url, read_only=True) as reader:
        feed = StoreSource(reader)
        decisions = feed.decisions(KEEP_DECISIONS)
        assert any(d.outcome.startswith("entered") for d in decisions)
        newest, oldest = decisions[0].time, decisions[-1].time
        began = reader.equity()[0].time
        assert newest - oldest <= pd.Timedelta(days=7) < newest - began  # the default bound
        equity = feed.equity()
        times = [p.time for p in equity]  # every close, once
        assert len(times) > 2000 and all(
            b - a >= pd.Timedelta(minutes=5) for a, b in itertools.pairwise(times)
        )
        closed = sum(t.profit for t in reader.trades() if t.exit_time is not None)
        assert equity[-1].realized == pytest.approx(10_000 + closed)  # busy_spot's balance
        assert len(feed.candles("BTC/USDT", 5000)) == KEEP_CANDLES
        assert feed.strategy().name == "busy-spot"
        assert {p.pair for p in feed.status("read-only").pairs} == set(PAIRS)


def test_feed_days_out_of_bounds_is_a_usage_error(
    fixture_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for days in ("-1", "nan", "4000", "week"):
        with pytest.raises(SystemExit) as refused:
            main(["run", str(STRATEGY), "--replay", str(fixture_store), "--feed-days", days])
        assert refused.value.code == 2
        err = capsys.readouterr().err
        assert "--feed-days" in err and "Traceback" not in err


def test_feed_days_zero_spares_the_session_the_feed_but_records_the_rest(
    fixture_store: Path, session: Session
) -> None:
    from kinetic_rules.cli import ui_cmd
    from kinetic_rules.cli.app import build_parser

    def parsed(*extra: str) -> Any:
        return build_parser().parse_args(["run", str(STRATEGY), *extra])

    replay = ("--replay", str(fixture_store))
    assert ui_cmd.records_feed(parsed())  # a paper session keeps its feed
    assert not ui_cmd.records_feed(parsed("--feed-days", "0"))
    assert ui_cmd.records_feed(parsed("--feed-days", "0", "--ui"))  # shown, not kept
    assert not ui_cmd.records_feed(parsed(*replay))  # a replay without a store
    assert ui_cmd.records_feed(parsed(*replay, "--db", "sqlite:///x.sqlite"))
    # without the feed, the session's plan keeps nothing more than trading needs
    plan = build_plan(check(load_file(STRATEGY)))
    assert ui_cmd.plan_for(parsed("--feed-days", "0"), plan) is plan
    assert ui_cmd.plan_for(parsed(), plan).shown
    # `run`'s wiring, without --ui: each close recorded, the feed not kept
    args = parsed(*replay, "--db", session.store.where, "--feed-days", "0")
    assert ui_cmd.serve_for_run(args, None, session.controls, session.store) is None
    session.advance(200)
    session.runtime.notifiers[-1].close()  # the session ends: what waits is written
    assert session.store.decisions(10) == []
    assert len(session.store.equity()) == 200
    assert session.store.candles("BTC/USDT", 5) and session.store.last_close()

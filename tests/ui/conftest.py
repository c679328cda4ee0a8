"""A replayed session on the fixture candles, with its controls, its watch and its app:
the tests step it close by close and look at it through the dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kinetic_rules.backtest.explain import showing_entries
from kinetic_rules.backtest.runner import BacktestRequest, prepare
from kinetic_rules.live.controls import SessionControls
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.source import ReplaySource
from kinetic_rules.persist import TradeStore
from kinetic_rules.persist.sink import EventLog, StoreSink
from kinetic_rules.ui.app import create_app
from kinetic_rules.ui.hub import Hub
from kinetic_rules.ui.sources import LiveSource
from kinetic_rules.ui.watch import Watch

STRATEGY = Path(__file__).parents[1] / "live" / "strategies" / "busy_spot.yaml"
TOKEN = "test-token-0123456789abcdef"


@dataclass
class Session:
    runtime: Runtime
    controls: SessionControls
    store: TradeStore
    source: ReplaySource
    hub: Hub
    feed: object = None  # the candles the replay reads
    step: int = 0

    def advance(self, closes: int = 1) -> None:
        for _ in range(closes):
            self.runtime.step(self.step)
            self.step += 1

    def until(self, condition: object, most: int = 3000) -> None:
        """Step until `condition()` holds (it must, within `most` closes)."""
        for _ in range(most):
            if condition():  # type: ignore[operator]
                return
            self.advance()
        raise AssertionError("the replay never got there")

    def open_trades(self) -> int:
        return len(self.runtime.state(trades=False).positions)


def replayed_session(fixture_store: Path, db: Path) -> Session:
    prepared = prepare(BacktestRequest(STRATEGY, fixture_store))
    plan = showing_entries(prepared.plan)
    source = ReplaySource(plan, prepared.feed, prepared.pairs)
    store = TradeStore(f"sqlite:///{db}")
    sink = StoreSink(store, strategy=plan.strategy.spec.metadata.name, mode="replay")
    runtime = Runtime(plan, source, notifiers=[EventLog(store)], sink=sink)
    controls = SessionControls(runtime, store)
    return Session(runtime, controls, store, source, Hub(), prepared.feed)


def live_app(session: Session, token: str | None = TOKEN):  # type: ignore[no-untyped-def]
    watch = Watch(session.runtime, publish=session.hub.publish)
    session.runtime.observers.append(watch)
    session.runtime.notifiers.append(watch)
    return create_app(LiveSource(session.controls, watch, STRATEGY), token, session.hub)


def all_trades(client: Any, **params: object) -> list[dict[str, Any]]:
    """Every closed trade /api/trades lists for `params`, page after page (newest first)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.get("/api/trades", params={**params, "after": cursor} if cursor else params)
        assert page.status_code == 200, page.text
        body = page.json()
        found += body["trades"]
        cursor = body["next"]
        if cursor is None:
            return found


@pytest.fixture
def session(fixture_store: Path, tmp_path: Path) -> Iterator[Session]:
    made = replayed_session(fixture_store, tmp_path / "trades.sqlite")
    yield made
    made.store.close()

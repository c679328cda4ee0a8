"""Pause survives a restart: a session replaying its closes after a crash skips exactly
the entries it skipped while paused, so it rebuilds the trades it had."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kinetic_rules.engine.portfolio import Position
from kinetic_rules.live.controls import SessionControls
from kinetic_rules.live.runtime import Runtime
from kinetic_rules.live.source import ReplaySource
from tests.live.test_replay import fingerprint
from tests.ui.conftest import Session


def test_a_restart_replays_the_pauses_where_they_were(session: Session) -> None:
    session.until(lambda: session.open_trades() > 0)
    session.controls.pause("ui from 127.0.0.1")
    session.advance(400)
    session.controls.resume("telegram @tester")
    session.advance(300)
    session.controls.pause("ui from 127.0.0.1")  # still paused at the "crash"
    session.advance(100)
    before = [fingerprint(t) for t in session.runtime.trades()]
    unpaused = replay_without_pauses(session)
    assert len(unpaused) > len(before)  # the pauses did keep trades from opening

    # The process dies; a new one replays every close since the start over the journal.
    plan, source = session.runtime.plan, session.source
    again = Runtime(plan, ReplaySource(plan, source_feed(session), list(source.pairs())))
    controls = SessionControls(again, session.store)
    assert controls.paused
    for step in range(session.step):
        again.step(step)
    assert [fingerprint(t) for t in again.trades()] == before


def replay_without_pauses(session: Session) -> list[object]:
    plan = session.runtime.plan
    fresh = Runtime(plan, ReplaySource(plan, source_feed(session), list(session.source.pairs())))
    for step in range(session.step):
        fresh.step(step)
    return [fingerprint(t) for t in fresh.trades()]


def source_feed(session: Session) -> Any:
    return session.feed


def test_resume_without_a_pause_changes_nothing(session: Session, tmp_path: Path) -> None:
    session.controls.resume("ui from 127.0.0.1")
    assert not session.runtime.paused and session.runtime.pauses() == []


def waiting_entries(session: Session) -> list[Position]:
    return [p for p in session.runtime.portfolio.unresolved() if p.state == "pending"]


def test_close_all_cancels_the_entries_waiting_to_fill(session: Session) -> None:
    """On paper an entry decided at the last close fills at the next one: close-all
    cancels it, so nothing is open after the close that would have filled it."""
    session.until(lambda: session.open_trades() > 0 and len(waiting_entries(session)) > 0)
    (waiting,) = waiting_entries(session)
    trades_before = len(session.runtime.trades())
    open_before = session.open_trades()
    closing = session.controls.close_everything("ui from 127.0.0.1")
    assert len(closing.trades) == open_before >= 1
    assert [(c.pair, c.position, c.filled) for c in closing.canceled] == [
        (waiting.pair, waiting.id, 0.0)
    ]
    assert waiting_entries(session) == [] and session.open_trades() == 0
    session.advance(1)  # the close at which the canceled entry would have filled
    assert session.open_trades() == 0
    assert len(session.runtime.trades()) == trades_before  # no trade from it, ever
    (row,) = session.store.events(kinds=["control"])
    assert row.data["canceled"] == [
        {"pair": waiting.pair, "side": "long", "position": waiting.id, "filled": 0.0,
         "pending": False}
    ]  # fmt: skip
    assert row.data["trades"] == [t.id for t in closing.trades]
    assert "1 entry order(s) waiting to fill canceled" in row.message


def test_closing_one_trade_leaves_other_pairs_entries_waiting(session: Session) -> None:
    def apart() -> bool:
        held = {p.trade.pair for p in session.runtime.state(trades=False).positions}
        return bool(held) and any(p.pair not in held for p in waiting_entries(session))

    session.until(apart)
    (position, *_) = session.runtime.state(trades=False).positions
    others = [p for p in waiting_entries(session) if p.pair != position.trade.pair]
    closing = session.controls.close_position(position.trade.id, "telegram @tester")
    assert closing is not None and closing.canceled == []
    assert [t.id for t in closing.trades] == [position.trade.id]
    assert waiting_entries(session) == others and session.open_trades() == 0

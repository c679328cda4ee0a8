"""Pause survives a restart: a session replaying its closes after a crash skips exactly
the entries it skipped while paused, so it rebuilds the trades it had."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

"""A session nobody watches writes its closes to the trade store in batches, and a store
that fails for a while is written to again when it answers: either way `ui --db` shows
what the running session showed."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kinetic_rules.persist.feed import Retention
from kinetic_rules.persist.store import StoreError
from kinetic_rules.ui.app import create_app
from kinetic_rules.ui.session import watch_session
from kinetic_rules.ui.sources import LiveSource
from tests.ui.conftest import STRATEGY, TOKEN, Session
from tests.ui.test_stored_session import PAIRS, answers, same_positions, stored_answers


def shown_then_stored(session: Session, setup: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the running session's API shows after some closes, and what its store shows
    once the session has ended."""
    watch = watch_session(session.runtime, STRATEGY, session.store, Retention(days=7))
    assert watch.recorder is not None and not watch.recorder.immediate  # no page: batches
    setup(watch.recorder)
    client = TestClient(create_app(LiveSource(session.controls, watch, STRATEGY), TOKEN))
    session.advance(400)
    session.until(lambda: session.open_trades() > 0)
    live = answers(client)
    watch.close()  # the session ends: what is not written yet is
    session.store.close()
    return live, stored_answers(session.store.where)


def same(live: dict[str, Any], stored: dict[str, Any]) -> None:
    assert live["positions"] and len(live["equity"]) > 400
    assert any(d["outcome"].startswith("entered") for d in live["decisions"])
    for what in ("decisions", "equity", "pairs", "scanner", *PAIRS):
        assert stored[what] == live[what], what
    same_positions(live["positions"], stored["positions"])


def test_closes_written_together_show_what_the_session_showed(session: Session) -> None:
    def once_at_the_end(recorder: Any) -> None:
        recorder.every = math.inf  # after the first close, nothing until the session ends

    same(*shown_then_stored(session, once_at_the_end))


def test_closes_a_failing_store_missed_are_written_when_it_answers(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    write = session.store.record_closes

    def failing_for_a_while(records: Any, keep: Retention) -> None:
        calls["n"] += 1
        if 2 <= calls["n"] <= 150:  # the store is out of reach for 149 writes
            raise StoreError("the trade database is locked")
        write(records, keep)

    def every_close(recorder: Any) -> None:
        recorder.every = 0.0
        monkeypatch.setattr(recorder.store, "record_closes", failing_for_a_while)

    live, stored = shown_then_stored(session, every_close)
    assert calls["n"] > 150
    same(live, stored)

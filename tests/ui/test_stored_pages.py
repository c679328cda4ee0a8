"""`ui --db` reads /api/trades a page at a time from the store (a cursor query), with the
same pages the whole history filtered in memory gives; and it decodes the stored strategy
once per change, not at every poll of the status."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from kinetic_rules.persist import TradeStore
from kinetic_rules.ui.app import create_app
from kinetic_rules.ui.sources import STRATEGY_KEY, StoreSource, TradeFilter, trade_out
from tests.ui.conftest import TOKEN, Session, all_trades, live_app


@pytest.fixture
def stored(session: Session) -> tuple[TradeStore, TestClient]:
    live_app(session)
    session.advance(900)
    session.until(lambda: session.open_trades() > 0)  # and one trade still open
    return session.store, TestClient(create_app(StoreSource(session.store), TOKEN))


def paged_in_memory(store: TradeStore, **params: Any) -> list[int]:
    """What a filter keeps of the whole history, newest first (the reference)."""
    which = TradeFilter(**params, limit=10**9)
    return [t.id for t in which.page([trade_out(t) for t in store.trades()])]


def test_stored_pages_equal_the_whole_history_filtered(
    stored: tuple[TradeStore, TestClient],
) -> None:
    store, client = stored
    trades = [t for t in store.trades() if t.exit_time is not None]
    assert len(trades) > 10 and any(t.exit_time is None for t in store.trades())
    pair, reason = trades[0].pair, trades[0].exit_reason or ""
    middle = trades[len(trades) // 2].entry_time
    filters: list[dict[str, Any]] = [
        {}, {"pair": pair}, {"side": trades[0].side}, {"reason": reason[:3]},
        {"reason": reason[:3].upper()},  # contains, with its case: SQLite's LIKE ignores it
        {"reason": "%"}, {"reason": "_"}, {"start": middle}, {"end": middle},
        {"pair": pair, "start": middle},
    ]  # fmt: skip
    for params in filters:
        expected = paged_in_memory(store, **params)
        shown = {k: v.isoformat() if isinstance(v, pd.Timestamp) else v for k, v in params.items()}
        for limit in (1, 4, 1000):
            found = [t["id"] for t in all_trades(client, **shown, limit=limit)]
            assert found == expected, (params, limit)
    assert paged_in_memory(store, reason=reason[:3].upper()) == []  # the case counts


def test_the_stored_strategy_is_decoded_once_per_change(
    stored: tuple[TradeStore, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, client = stored
    store.set_state(STRATEGY_KEY, '{"name": "first", "path": "a", "text": "t", "params": {}}')
    reads: list[str] = []
    read = store.state

    def counted(key: str) -> str | None:
        reads.append(key)
        return read(key)

    monkeypatch.setattr(store, "state", counted)
    names = [client.get("/api/status").json()["strategy"] for _ in range(5)]
    assert names == ["first"] * 5 and reads.count(STRATEGY_KEY) == 1
    store.set_state(STRATEGY_KEY, '{"name": "second", "path": "b", "text": "t", "params": {}}')
    assert client.get("/api/status").json()["strategy"] == "second"
    assert client.get("/api/strategy").json()["path"] == "b"
    assert reads.count(STRATEGY_KEY) == 2

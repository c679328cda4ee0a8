"""/api/trades a page at a time, and a stream that sends changes only: a long session's
page reads what is new, never the whole history again."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from kinetic_rules.live import runtime as runtime_module
from kinetic_rules.persist import TradeStore
from kinetic_rules.ui.app import create_app
from kinetic_rules.ui.sources import MAX_PAGE, StoreSource
from tests.ui.conftest import TOKEN, Session, all_trades, live_app


def closed_ids(session: Session, pair: str | None = None) -> list[int]:
    """The closed trades the session holds, newest (highest id) first."""
    trades = session.runtime.trades()
    kept = [t.id for t in trades if t.exit_time is not None and pair in (None, t.pair)]
    return sorted(kept, reverse=True)


@pytest.fixture
def traded(session: Session) -> tuple[Session, TestClient]:
    client = TestClient(live_app(session))
    session.advance(900)
    session.until(lambda: session.open_trades() > 0)  # and one trade still open
    assert len(closed_ids(session)) > 10
    return session, client


def test_pages_walk_every_closed_trade_once_newest_first(traded: tuple[Session, Any]) -> None:
    session, client = traded
    expected = closed_ids(session)
    for limit in (1, 3, 7, len(expected), MAX_PAGE):
        assert [t["id"] for t in all_trades(client, limit=limit)] == expected, limit
    pair = session.runtime.trades()[0].pair
    assert [t["id"] for t in all_trades(client, pair=pair, limit=2)] == closed_ids(session, pair)
    # open trades are positions, never in a page of trades
    still_open = {p["id"] for p in client.get("/api/positions").json()}
    assert still_open and not still_open & set(expected)


def test_an_exact_page_has_no_next_and_the_one_before_it_does(
    traded: tuple[Session, Any],
) -> None:
    session, client = traded
    expected = closed_ids(session)
    exact = client.get("/api/trades", params={"limit": len(expected)}).json()
    assert [t["id"] for t in exact["trades"]] == expected and exact["next"] is None
    short = client.get("/api/trades", params={"limit": len(expected) - 1}).json()
    assert short["next"] == expected[-2]
    last = client.get("/api/trades", params={"limit": 5, "after": short["next"]}).json()
    assert [t["id"] for t in last["trades"]] == [expected[-1]] and last["next"] is None
    beyond = client.get("/api/trades", params={"after": expected[0] + 1000}).json()
    assert beyond["trades"][0]["id"] == expected[0]  # a cursor past the newest: from the top


def test_an_empty_history_is_one_empty_page(session: Session, tmp_path: Path) -> None:
    client = TestClient(live_app(session))
    assert client.get("/api/trades").json() == {"trades": [], "next": None}
    session.advance(5)  # no trade has closed yet
    assert client.get("/api/trades", params={"after": 3}).json() == {"trades": [], "next": None}
    empty = TradeStore(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    stored = TestClient(create_app(StoreSource(empty), TOKEN))
    assert stored.get("/api/trades").json() == {"trades": [], "next": None}
    empty.close()


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"after": "abc"}, "after"),
        ({"after": "0"}, "after"),
        ({"after": "-4"}, "after"),
        ({"after": "1.5"}, "after"),
        ({"limit": "0"}, "limit"),
        ({"limit": str(MAX_PAGE + 1)}, "limit"),
        ({"side": "sideways"}, "side"),
        ({"pair": "X" * 65}, "pair"),
    ],
)
def test_a_bad_cursor_or_limit_is_refused_saying_which(
    session: Session, params: dict[str, str], named: str
) -> None:
    answer = TestClient(live_app(session)).get("/api/trades", params=params)
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["query", named] and problem["msg"]


def test_a_page_copies_only_its_own_trades(
    traded: tuple[Session, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    session, client = traded
    copied = []
    deepcopy = copy.deepcopy

    def counting(value: Any) -> Any:
        copied.append(value)
        return deepcopy(value)

    monkeypatch.setattr(runtime_module, "copy", SimpleNamespace(deepcopy=counting))
    page = client.get("/api/trades", params={"limit": 3}).json()
    assert len(page["trades"]) == 3 and len(copied) == 3 + 1  # one more: is there a next?
    assert len(session.runtime.trades()) > 10


def test_the_stream_sends_each_event_and_each_closed_trade(session: Session) -> None:
    client = TestClient(live_app(session))
    session.until(lambda: session.open_trades() > 0)
    with client.websocket_connect("/api/stream") as stream:
        session.until(lambda: session.open_trades() == 0)
        messages = []
        while not any(m["type"] == "trade" for m in messages):
            messages.append(stream.receive_json())
    kinds = [m["event"]["kind"] for m in messages if m["type"] == "event"]
    assert "trade_closed" in kinds
    event = next(
        m["event"]
        for m in messages
        if m["type"] == "event" and m["event"]["kind"] == "trade_closed"
    )
    assert event["message"].startswith("Closed ")
    (sent,) = [m["trade"] for m in messages if m["type"] == "trade"]
    assert sent["id"] == event["data"]["trade"]
    assert sent in all_trades(client)  # as a page of trades shows it


def test_equity_and_decisions_after_a_time_are_the_newer_ones(traded: tuple[Session, Any]) -> None:
    _, client = traded
    every = client.get("/api/equity").json()
    middle = every[len(every) // 2]["time"]
    later = client.get("/api/equity", params={"after": middle}).json()
    assert later == [p for p in every if pd.Timestamp(p["time"]) > pd.Timestamp(middle)]
    assert later and len(later) < len(every)
    assert client.get("/api/equity", params={"after": every[-1]["time"]}).json() == []
    decisions = client.get("/api/decisions", params={"limit": 500}).json()
    cut = decisions[len(decisions) // 2]["time"]
    newer = client.get("/api/decisions", params={"limit": 500, "after": cut}).json()
    assert newer == [d for d in decisions if pd.Timestamp(d["time"]) > pd.Timestamp(cut)]

"""The dashboard's API: every answer matches its published schema, every control needs
the token and is journaled with who asked and when, and an unsafe address is refused."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from kinetic_rules.cli.app import main
from kinetic_rules.errors import ConfigError
from kinetic_rules.live.controls import CLOSE_REASON, SessionControls
from kinetic_rules.persist import TradeStore
from kinetic_rules.ui.app import create_app
from kinetic_rules.ui.serve import listen_from, token_from_env
from kinetic_rules.ui.sources import StoreSource
from tests.ui.conftest import STRATEGY, TOKEN, Session, all_trades, live_app

CONTROLS = ["pause", "resume", "close-all", "stop"]
RIGHT = {"Authorization": f"Bearer {TOKEN}"}


def with_a_trade(session: Session) -> TestClient:
    client = TestClient(live_app(session))
    session.until(lambda: session.open_trades() > 0)
    return client


def validate(document: dict[str, Any], path: str, answer: Any) -> None:
    """The answer against the 200 response schema the OpenAPI document publishes."""
    operation = document["paths"][path]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.validate(answer, {**schema, "components": document["components"]})


def test_every_read_endpoint_answers_with_its_published_schema(session: Session) -> None:
    client = with_a_trade(session)
    session.advance(200)  # closed trades, decisions and equity to show
    session.until(lambda: session.open_trades() > 0)  # and a position
    document = client.get("/openapi.json").json()
    reads = [p for p, ops in document["paths"].items() if "get" in ops]
    assert set(reads) == {
        "/api/status", "/api/positions", "/api/trades", "/api/equity", "/api/events",
        "/api/decisions", "/api/strategy", "/api/scanner", "/api/candles",
    }  # fmt: skip
    for path in reads:
        query = {"pair": "BTC/USDT"} if path == "/api/candles" else {}
        answer = client.get(path, params=query)
        assert answer.status_code == 200, path
        body = answer.json()
        assert body, f"{path} answered nothing"
        validate(document, path, body)
    controls = [p for p, ops in document["paths"].items() if "post" in ops]
    assert len(controls) == 5
    for path in controls:  # each control documents its answer too
        assert "200" in document["paths"][path]["post"]["responses"]


def test_the_answers_say_what_the_session_holds(session: Session) -> None:
    client = with_a_trade(session)
    (position,) = client.get("/api/positions").json()
    trade = session.runtime.state().positions[0].trade
    assert (position["id"], position["pair"], position["entry_price"]) == (
        trade.id, trade.pair, trade.entry_price,
    )  # fmt: skip
    assert position["price"] > 0 and position["unrealized"] is not None
    status = client.get("/api/status").json()
    assert status["running"] and status["controls"] == "enabled"
    assert {p["pair"] for p in status["pairs"]} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    strategy = client.get("/api/strategy").json()
    assert strategy["name"] == "busy-spot" and "crossed_above(fast, slow)" in strategy["text"]
    # the decision that opened it: explain's lines, every condition holding
    entered = [d for d in client.get("/api/decisions").json() if d["outcome"].startswith("entered")]
    assert entered and entered[-1]["pair"] == trade.pair
    assert [(line["label"], line["holds"]) for line in entered[-1]["lines"]] == [
        ("cross", True), ("room", True),
    ]  # fmt: skip


def test_trades_are_filtered_by_pair_side_reason_and_time(session: Session) -> None:
    client = TestClient(live_app(session))
    session.advance(900)
    every = all_trades(client)
    assert len(every) > 5
    pair = every[0]["pair"]
    assert {t["pair"] for t in all_trades(client, pair=pair)} == {pair}
    assert all_trades(client, side="short") == []
    reason = next(t["exit_reason"] for t in every if t["exit_reason"])
    chosen = all_trades(client, reason=reason)
    assert chosen and all(reason in t["exit_reason"] for t in chosen)
    middle = every[len(every) // 2]["entry_time"]
    later = all_trades(client, start=middle)
    assert later and all(t["entry_time"] >= middle for t in later) and len(later) < len(every)
    assert client.get("/api/trades", params={"side": "sideways"}).status_code == 422


@pytest.mark.parametrize("control", CONTROLS)
def test_a_control_without_the_right_token_is_refused(session: Session, control: str) -> None:
    client = with_a_trade(session)
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": TOKEN},
    ):
        answer = client.post(f"/api/controls/{control}", headers=headers)
        assert answer.status_code == 401, headers
        assert TOKEN not in answer.text
    assert not session.runtime.paused and not session.runtime.stopping
    assert session.open_trades() == 1
    assert session.store.events(kinds=["control"]) == []


def test_closing_one_trade_needs_the_token_too(session: Session) -> None:
    client = with_a_trade(session)
    trade = session.runtime.state().positions[0].trade
    assert client.post(f"/api/controls/close/{trade.id}").status_code == 401
    assert client.post("/api/controls/close/999", headers=RIGHT).status_code == 404
    answer = client.post(f"/api/controls/close/{trade.id}", headers=RIGHT)
    assert answer.status_code == 200 and session.open_trades() == 0
    (closed,) = [t for t in session.store.trades() if t.id == trade.id]
    assert closed.exit_reason == CLOSE_REASON


def test_without_a_token_set_the_controls_are_disabled(session: Session) -> None:
    client = TestClient(live_app(session, token=None))
    for control in CONTROLS:
        answer = client.post(f"/api/controls/{control}", headers=RIGHT)
        assert answer.status_code == 403
        assert "KINETIC_UI_TOKEN" in answer.json()["detail"]
    assert client.get("/api/status").json()["controls"] == "no token"


def test_each_control_is_journaled_with_who_asked_and_when(session: Session) -> None:
    client = with_a_trade(session)
    for control in ["pause", "resume", "close-all", "stop"]:
        assert client.post(f"/api/controls/{control}", headers=RIGHT).status_code == 200
    rows = session.store.events(kinds=["control"])
    assert [r.data["action"] for r in rows] == ["pause", "resume", "close_all", "stop"]
    assert {r.data["who"] for r in rows} == {"ui from testclient"}
    assert all(r.data["at"] == r.time.isoformat() for r in rows)
    assert "1 open trade(s) closing" in rows[2].message
    assert session.open_trades() == 0 and session.runtime.stopping


def test_pause_blocks_entries_only_and_outlives_a_restart(
    session: Session, fixture_store: Path, tmp_path: Path
) -> None:
    client = with_a_trade(session)
    open_before = session.runtime.state().positions[0].trade
    assert client.post("/api/controls/pause", headers=RIGHT).status_code == 200
    trades_before = len(session.runtime.trades())
    session.advance(600)
    assert len(session.runtime.trades()) == trades_before  # no entry while paused
    assert open_before.id not in {
        p.trade.id for p in session.runtime.state().positions
    }  # it exited
    blocked = [d for d in client.get("/api/decisions", params={"limit": 500}).json()
               if d["outcome"] == "no slot: new entries are paused"]  # fmt: skip
    assert blocked and blocked[0]["verdict"] == "SIGNAL"
    # a restart over the same journal: still paused, until someone resumes
    again = SessionControls(
        session.runtime.__class__(session.runtime.plan, session.source), session.store
    )
    assert again.paused
    again.resume("telegram @tester")
    assert not SessionControls(again.runtime, session.store).paused


def test_a_stored_session_is_read_only(session: Session, tmp_path: Path) -> None:
    with_a_trade(session)
    session.advance(300)
    session.store.set_state(
        "dashboard:strategy", '{"name": "busy-spot", "path": "x", "text": "t", "params": {}}'
    )
    reader = TradeStore(session.store.where.replace("sqlite:///", "sqlite:///"), read_only=True)
    client = TestClient(create_app(StoreSource(reader), TOKEN))
    closed = [t for t in session.store.trades() if t.exit_time is not None]
    assert len(all_trades(client)) == len(closed)
    assert client.get("/api/events").json()
    assert client.get("/api/strategy").json()["name"] == "busy-spot"
    assert client.get("/api/status").json()["controls"] == "read-only"
    for control in CONTROLS:
        answer = client.post(f"/api/controls/{control}", headers=RIGHT)
        assert answer.status_code == 409 and "no running session" in answer.json()["detail"]
    assert client.post("/api/controls/pause").status_code == 409  # without a token too
    reader.close()


def test_a_non_loopback_address_needs_tls_or_an_explicit_insecure(tmp_path: Path) -> None:
    for address in ["0.0.0.0:8080", "192.168.1.5:8080", "example.org:443", "[::]:8080"]:
        with pytest.raises(ConfigError, match="without TLS"):
            listen_from(address, None, None, insecure=False)
        assert listen_from(address, None, None, insecure=True).port in (8080, 443)
    for address in ["127.0.0.1:8080", "localhost:9000", "[::1]:8080", ":8080"]:
        assert listen_from(address, None, None, insecure=False).cert is None
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("x")
    key.write_text("x")
    assert listen_from("0.0.0.0:8443", cert, key, insecure=False).url == "https://0.0.0.0:8443/"
    with pytest.raises(ConfigError, match="go together"):
        listen_from("0.0.0.0:8443", cert, None, insecure=False)


def test_run_refuses_an_open_address_before_trading(
    capsys: pytest.CaptureFixture[str], fixture_store: Path
) -> None:
    code = main(["run", str(STRATEGY), "--replay", str(fixture_store), "--ui", "0.0.0.0:8080"])
    err = capsys.readouterr().err
    assert code == 2 and "without TLS" in err and "--ui-insecure" in err
    assert "Traceback" not in err


def test_the_token_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KINETIC_UI_TOKEN", "tiny-9f3k")
    with pytest.raises(ConfigError) as refused:
        token_from_env()
    assert "tiny-9f3k" not in str(refused.value)
    monkeypatch.setenv("KINETIC_UI_TOKEN", TOKEN)
    assert token_from_env() == TOKEN
    with caplog.at_level(logging.INFO):
        logging.getLogger("kinetic_rules.ui").info("the token is %s", TOKEN)
    assert TOKEN not in caplog.text


def test_a_finished_backtest_opens_with_the_same_api(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kinetic_rules.ui.results import ResultsSource

    folder = tmp_path / "report"
    code = main(["backtest", str(STRATEGY), "--data", str(fixture_store), "--report", str(folder)])
    assert code == 0
    capsys.readouterr()
    client = TestClient(create_app(ResultsSource(folder), TOKEN))
    document = client.get("/openapi.json").json()
    summary = (folder / "results.json").read_text()
    trades = all_trades(client, limit=1000)
    assert f'"count": {len(trades)}' in summary and len(trades) > 5
    validate(document, "/api/trades", client.get("/api/trades").json())
    equity = client.get("/api/equity").json()
    assert len(equity) >= 2 and equity[0]["realized"] > 0
    status = client.get("/api/status").json()
    assert status["source"] == "results" and status["strategy"] == "busy-spot"
    assert "crossed_above" in client.get("/api/strategy").json()["text"]
    assert client.post("/api/controls/pause", headers=RIGHT).status_code == 409
    # a folder that is not a backtest's: a user error, not a traceback
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "results.json").write_text("{not json")
    assert main(["ui", "--results", str(tmp_path / "other")]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_the_stream_tells_the_page_of_each_close_and_refuses_other_sites(session: Session) -> None:
    from starlette.websockets import WebSocketDisconnect

    client = TestClient(live_app(session))
    with client.websocket_connect("/api/stream") as stream:
        session.advance(1)
        assert stream.receive_json()["type"] == "close"
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect(
            "/api/stream", headers={"origin": "https://evil.example"}
        ) as other,
    ):
        other.receive_json()

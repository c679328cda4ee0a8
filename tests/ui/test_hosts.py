"""DNS rebinding: the dashboard answers only requests naming the host it is reached by
(loopback, the listening address, or a name given with --ui-allow-host), and a WebSocket
only from a page of such a host."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from kinetic_rules.cli.app import main
from kinetic_rules.errors import ConfigError
from kinetic_rules.ui.hosts import HostGuard, HostPolicy, allowed_name
from kinetic_rules.ui.serve import Background, Listen, listen_from
from tests.ui.conftest import STRATEGY, Session, live_app


def get(port: int, host: str, path: str = "/api/status") -> tuple[int, str]:
    """A plain request to the served dashboard, naming `host` in its Host header."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


@pytest.fixture
def served(session: Session) -> Iterator[int]:
    listen = listen_from("127.0.0.1:0", None, None, False, allow_hosts=["Bot.Example.org"])
    server = Background(live_app(session), listen)
    yield server.port
    server.close()


def test_a_request_naming_another_host_is_refused(served: int) -> None:
    for host in ["evil.example", f"evil.example:{served}", "127.0.0.1.evil.example", ""]:
        status, body = get(served, host)
        assert status == 400, host
        assert "--ui-allow-host" in json.loads(body)["detail"]
        assert "busy-spot" not in body  # nothing of the session is read
    status, _ = get(served, "evil.example", "/")  # nor the page
    assert status == 400


def test_loopback_and_an_allowed_name_are_answered(served: int) -> None:
    for host in [f"127.0.0.1:{served}", f"localhost:{served}", "localhost", "[::1]:8080",
                 "bot.example.org", "BOT.example.org:443"]:  # fmt: skip
        status, body = get(served, host)
        assert status == 200, host
        assert json.loads(body)["strategy"] == "busy-spot"


def test_the_stream_refuses_another_host_or_another_sites_page(session: Session) -> None:
    guarded = HostGuard(live_app(session), HostPolicy("127.0.0.1", ["bot.example.org"]))
    client = TestClient(guarded)

    def stream(url: str, origin: str) -> None:
        with client.websocket_connect(url, headers={"origin": origin}) as socket:
            session.advance(1)
            assert socket.receive_json()["type"] == "close"

    stream("ws://127.0.0.1:8080/api/stream", "http://127.0.0.1:8080")  # its own page
    stream("wss://bot.example.org/api/stream", "https://bot.example.org")  # behind the proxy
    for url, origin in [
        ("ws://evil.example:8080/api/stream", "http://evil.example:8080"),  # rebound
        ("ws://127.0.0.1:8080/api/stream", "http://evil.example"),  # another site's page
    ]:
        with pytest.raises(WebSocketDisconnect):
            stream(url, origin)
    assert client.get("http://evil.example:8080/api/positions").status_code == 400
    assert client.get("http://127.0.0.1:8080/api/positions").status_code == 200


def test_which_addresses_a_policy_allows() -> None:
    loopback = HostPolicy("127.0.0.1")
    assert all(loopback.allows(host) for host in ["127.0.0.1:8080", "[::1]", "localhost"])
    assert not loopback.allows("192.168.1.5:8080") and not loopback.allows("bot.example.org")
    everywhere = HostPolicy("0.0.0.0")  # every address of the machine: any address, no name
    assert everywhere.allows("192.168.1.5:8443") and not everywhere.allows("nas.local")
    lan = HostPolicy("192.168.1.5", ["nas.local"])
    assert lan.allows("192.168.1.5") and lan.allows("nas.local.") and not lan.allows("10.0.0.1")
    assert HostPolicy("bot.lan").allows("bot.lan:8080")
    assert not loopback.allows("[not-an-address") and not loopback.allows("")


@pytest.mark.parametrize("name", ["*", "http://bot.example.org", "bot.example.org:443", "a b", ""])
def test_an_allowed_host_must_be_a_plain_name(name: str) -> None:
    with pytest.raises(ConfigError, match="--ui-allow-host"):
        allowed_name(name)


def test_allowed_hosts_go_with_ui(capsys: pytest.CaptureFixture[str], fixture_store: Path) -> None:
    code = main(["run", str(STRATEGY), "--replay", str(fixture_store), "--ui-allow-host", "x.org"])
    err = capsys.readouterr().err
    assert code == 2 and "go with --ui" in err and "Traceback" not in err
    code = main(["ui", "--results", str(fixture_store), "--ui-allow-host", "*"])
    assert code == 2 and "--ui-allow-host *" in capsys.readouterr().err


def test_listen_keeps_the_names_once(tmp_path: Path) -> None:
    listen = listen_from("127.0.0.1:9000", None, None, False, allow_hosts=["A.org", "a.org."])
    assert listen == Listen("127.0.0.1", 9000, allow_hosts=("a.org",))

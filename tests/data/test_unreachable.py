"""An exchange that cannot be reached: every command says why at once, in the same words,
with exit status 3 (not 2, a user error). Only 127.0.0.1 and a mocked resolver are used."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from kinetic_rules.cli.app import main
from kinetic_rules.data.exchange import create_exchange, ensure_reachable
from kinetic_rules.errors import ExchangeUnreachable
from tests.conftest import STRATEGIES

KE = str(STRATEGIES / "kinetic_empire.yaml")


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound once, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def no_such_name(monkeypatch: pytest.MonkeyPatch) -> str:
    """`nonexistent.invalid` fails to resolve at once, whatever DNS this machine has."""
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return "http://nonexistent.invalid"


def commands(url: str, tmp_path: Path) -> list[list[str]]:
    data = ["--data", str(tmp_path / "data")]
    return [
        ["download", "--pairs", "BTC/USDT", "--exchange-url", url, *data, "-q"],
        ["run", KE, "--pairs", "BTC/USDT", "--exchange-url", url, *data,
         "--db", f"sqlite:///{tmp_path / 'trades.sqlite'}"],
    ]  # fmt: skip


def test_a_refused_connection_says_so_with_exit_status_3(
    closed_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    expected = (
        f"error: cannot reach the exchange binance at 127.0.0.1:{closed_port}: "
        "connection refused; nothing accepts connections there"
    )
    for command in commands(url, tmp_path):
        assert main(command) == 3, command
        err = capsys.readouterr().err
        assert err.startswith(expected) and "Traceback" not in err
    assert not (tmp_path / "trades.sqlite").exists()  # nothing was started


def test_a_name_that_does_not_resolve_says_so(
    no_such_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in commands(no_such_name, tmp_path):
        assert main(command) == 3, command
        err = capsys.readouterr().err
        assert err.startswith(
            "error: cannot reach the exchange binance at nonexistent.invalid:80: name not "
            "resolved; the name nonexistent.invalid does not resolve"
        )


def test_flags_are_checked_before_the_network(
    closed_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    bad = [
        ["download", "--pairs", "BTC/USDT", "--exchange-url", url, "--timerange", "04/03/2024-"],
        ["download", "--pairs", "BTC/USDT", "--exchange-url", url, "--days", "0"],
        ["run", KE, "--exchange-url", url, "--set", "nonsense"],
        ["run", KE, "--exchange-url", url, "--live", "--pairs", "BTC/USDT"],  # no keys
    ]
    for command in bad:
        assert main(command) == 2, command
        assert "cannot reach" not in capsys.readouterr().err


def test_a_resolver_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    answered = threading.Event()

    def hang(*_: Any, **__: Any) -> Any:
        answered.wait()  # released at the end of the test
        raise socket.gaierror(socket.EAI_AGAIN, "never")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    exchange = create_exchange("binance", api_url="http://slow.example")
    try:
        with pytest.raises(ExchangeUnreachable, match=r"slow.example:80: timed out; no answer"):
            ensure_reachable(exchange, seconds=0.05)
    finally:
        answered.set()


def test_a_listening_exchange_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        ensure_reachable(create_exchange("binance", api_url=f"http://127.0.0.1:{port}"))

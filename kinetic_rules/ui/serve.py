"""Serving the dashboard: where it listens, whether that is safe, and the server itself.

A non-loopback address without TLS is refused unless the user says --ui-insecure: the
bearer token would cross the network in clear text. The token comes from the
environment only and is hidden from every log and error from the moment it is read.
Every request must name an allowed host (ui/hosts.py: no DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from kinetic_rules.errors import ConfigError
from kinetic_rules.secrets import register
from kinetic_rules.ui.app import TOKEN_ENV
from kinetic_rules.ui.hosts import HostGuard, HostPolicy, allowed_name

DEFAULT_LISTEN = "127.0.0.1:8080"
log = logging.getLogger("kinetic_rules.ui")


@dataclass(frozen=True)
class Listen:
    host: str
    port: int
    cert: Path | None = None
    key: Path | None = None
    allow_hosts: tuple[str, ...] = ()  # names besides loopback and `host` (a proxy's)

    @property
    def url(self) -> str:
        scheme = "https" if self.cert else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/"


def parse_listen(text: str, flag: str = "--listen") -> tuple[str, int]:
    """`HOST:PORT`, `[v6]:PORT` or `:PORT` (loopback) → (host, port)."""
    host, colon, port_text = text.strip().rpartition(":")
    if not colon:
        raise ConfigError(f"{flag} {text}: write HOST:PORT, such as 127.0.0.1:8080")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"{flag} {text}: the port must be a number from 0 to 65535")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def listen_from(
    text: str,
    cert: Path | None,
    key: Path | None,
    insecure: bool,
    flag: str = "--listen",
    allow_hosts: list[str] | None = None,
) -> Listen:
    """Where to listen, refused when it would put the token on the network in clear."""
    host, port = parse_listen(text, flag)
    if (cert is None) != (key is None):
        raise ConfigError("--ui-cert and --ui-key go together: give both, or neither")
    for path in (cert, key):
        if path is not None and not path.is_file():
            raise ConfigError(f"{path}: no such file (TLS certificate or key)")
    if not is_loopback(host) and cert is None and not insecure:
        raise ConfigError(
            f"{flag} {text}: the dashboard would be reachable from other machines without "
            "TLS, and its token would cross the network in clear text. Give --ui-cert and "
            "--ui-key, reach it through an SSH tunnel or a reverse proxy on 127.0.0.1 "
            "(docs/dashboard.md), or say --ui-insecure if the network is yours alone"
        )
    names = tuple(dict.fromkeys(allowed_name(name) for name in allow_hosts or []))
    return Listen(host, port, cert, key, names)


def token_from_env() -> str | None:
    """The controls' token, hidden in all output from now on; None disables controls."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        return None
    if len(token) < 16:  # refused, and so never used: it need not be masked later
        raise ConfigError(
            f"{TOKEN_ENV} is too short to guard trading controls: use 16 characters or more "
            "(e.g. the output of `openssl rand -hex 24`)"
        )
    register(token)
    return token


def server(app: FastAPI, listen: Listen) -> uvicorn.Server:
    guarded = HostGuard(app, HostPolicy(listen.host, listen.allow_hosts))
    config = uvicorn.Config(
        guarded,
        host=listen.host,
        port=listen.port,
        ssl_certfile=str(listen.cert) if listen.cert else None,
        ssl_keyfile=str(listen.key) if listen.key else None,
        log_level="warning",
        access_log=False,  # requests are not logged: the controls are journaled instead
        ws="websockets-sansio",
        lifespan="off",
        timeout_graceful_shutdown=1,  # an open page's stream must not hold up the exit
    )
    return uvicorn.Server(config)


class Background:
    """The dashboard served on a thread of a running session, until `close()`."""

    def __init__(self, app: FastAPI, listen: Listen) -> None:
        self.server = server(app, listen)
        self._thread = threading.Thread(target=self.server.run, name="dashboard", daemon=True)
        self._thread.start()
        if not self._wait_started():
            raise ConfigError(
                f"the dashboard could not listen on {listen.host}:{listen.port} "
                "(in use, or not an address of this machine?)"
            )

    @property
    def port(self) -> int:
        """The port it listens on (the one the system chose, for port 0)."""
        for served in self.server.servers:
            for sock in served.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("the dashboard is not listening")

    def _wait_started(self) -> bool:
        while self._thread.is_alive() and not self.server.started:
            self._thread.join(0.05)
        return self.server.started

    def close(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=5)

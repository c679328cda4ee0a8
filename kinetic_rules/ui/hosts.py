"""Which Host a request may name: a guard against DNS rebinding.

A web page on another site can point a name it controls at 127.0.0.1 and then read
the dashboard as if it were its own origin; the browser still sends that name in the
Host header. So only the names the dashboard is reached by are answered: loopback
names and addresses, the address it listens on, and the names given with
--ui-allow-host (a reverse proxy's public name). A WebSocket's Origin must name one
of them too.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from kinetic_rules.errors import ConfigError

LOOPBACK_NAMES = frozenset({"localhost"})
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
REFUSED = (
    "this dashboard does not answer to the host name {host!r}: reach it by the address "
    "it listens on or localhost, or start it with --ui-allow-host NAME for a reverse "
    "proxy's name (docs/dashboard.md, 'Securing it')"
)


def allowed_name(text: str) -> str:
    """A name for --ui-allow-host, checked: a host name or an IP address, no port."""
    name = text.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if _ip(name) is None and not _NAME.match(name):
        raise ConfigError(
            f"--ui-allow-host {text}: give a host name such as bot.example.org (no port, "
            "no scheme, no wildcard)"
        )
    return name


class HostPolicy:
    """The host names a dashboard listening on `bound` answers to."""

    def __init__(self, bound: str, extra: Iterable[str] = ()) -> None:
        self.names = set(LOOPBACK_NAMES) | {allowed_name(name) for name in extra}
        address = _ip(bound.strip("[]"))
        self.any_address = address is not None and address.is_unspecified
        self.addresses = {address} if address is not None else set()
        if address is None:  # listening on a name: that name is how it is reached
            self.names.add(allowed_name(bound))

    def allows(self, host: str) -> bool:
        """`host` as a Host header or an Origin's netloc (`name[:port]`, `[v6]:port`)."""
        try:
            name = urlsplit(f"//{host}").hostname
        except ValueError:
            return False
        if not name:
            return False
        name = name.rstrip(".")
        address = _ip(name)
        if address is None:
            return name in self.names
        # A rebinding page always uses a name: an address is safe if it is this machine's
        return address.is_loopback or self.any_address or address in self.addresses


class HostGuard:
    """ASGI wrapper: refuse HTTP requests (400) and WebSockets (closed, 1008) whose Host,
    or WebSocket Origin, the policy does not allow."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        origin = headers.get("origin") if scope["type"] == "websocket" else None
        allowed = self.policy.allows(host)
        if allowed and origin is not None:
            allowed = self.policy.allows(urlsplit(origin).netloc)
        if allowed:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            refusal = JSONResponse({"detail": REFUSED.format(host=host[:100])}, status_code=400)
            await refusal(scope, receive, send)
        else:
            await WebSocketClose(code=1008)(scope, receive, send)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None

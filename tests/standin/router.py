"""A tiny HTTP router on the standard library: requests in, JSON responses out.

Handlers are plain functions `(Request) -> Response`, registered per method and path,
so that endpoints (markets today, orders and balances later) live in small modules.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from tests.standin.faults import Faults


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        return self.params.get(name, default)


@dataclass
class Response:
    status: int = 200
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: str | None = None  # sent as is instead of JSON (malformed bodies)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    status: int


Handler = Callable[[Request], Response]


class ApiError(Exception):
    """Raised by a handler to answer with the exchange's error payload."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class Router:
    def __init__(self, faults: Faults) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.faults = faults
        self.log: list[Recorded] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def add(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method.upper(), path)] = handler

    def dispatch(self, request: Request) -> Response:
        # Logged on arrival (status 0 until answered), so a test that saw a handler's effect
        # also sees the request that made it.
        with self._lock:
            at = len(self.log)
            self.log.append(Recorded(request.method, request.path, request.params, 0))
        fault = self.faults.take(request.path)
        if fault is not None and fault.delay:
            self.stopping.wait(fault.delay)
        if fault is not None and fault.body is not None:
            response = Response(fault.status, raw=fault.body, headers=dict(fault.headers))
        else:
            response = self._handle(request)
        with self._lock:
            self.log[at] = Recorded(request.method, request.path, request.params, response.status)
        return response

    def _handle(self, request: Request) -> Response:
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return Response(
                404, {"code": -1, "msg": f"{request.path} is not served by the stand-in"}
            )
        try:
            return handler(request)
        except ApiError as error:
            return Response(error.status, {"code": error.code, "msg": error.msg})

    def requests(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.log if path is None or r.path == path]


def serve(router: Router) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 at an ephemeral port, not yet serving."""

    class _Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            if body and self.headers.get("Content-Type", "").startswith("application/x-www-form"):
                params.update(parse_qsl(body.decode(), keep_blank_values=True))
            request = Request(self.command, url.path, params, dict(self.headers.items()), body)
            response = router.dispatch(request)
            text = response.raw if response.raw is not None else json.dumps(response.payload)
            data = text.encode()
            try:
                self.send_response(response.status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout under test): nothing to tell it

        do_GET = do_POST = do_DELETE = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    return server


def start_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="exchange-standin",
        daemon=True,
    )
    thread.start()
    return thread


class LoopbackServer:
    """A router served on 127.0.0.1 in a thread, for the length of a `with` block.

    Subclasses set `self.router` before use; `_waking()` lets one release requests
    still waiting (long polls) before the server shuts down.
    """

    router: Router
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self.router.stopping.clear()
        self._server = serve(self.router)
        self._thread = start_in_thread(self._server)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.router.stopping.set()  # wakes handlers sleeping in a delay fault
        self._waking()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def _waking(self) -> None:
        """Release requests still waiting on the stand-in; nothing by default."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

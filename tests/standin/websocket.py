"""A local stand-in for Binance's market streams over WebSocket (`<symbol>@bookTicker`).

    with BookTickerServer() as server:             # ws://127.0.0.1:<port>/ws
        server.quote("BTCUSDT", 100.5, 101.5)      # pushed now, and to later subscribers
        server.drop()                              # close every socket, refuse new ones
        server.allow()                             # accept connections again

It answers the SUBSCRIBE messages ccxt pro sends and pushes each quote to the sockets
subscribed to its symbol, in the exchange's format. aiohttp (a ccxt dependency) serves
it from a thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import WSMsgType, web


class BookTickerServer:
    def __init__(self) -> None:
        self._quotes: dict[str, tuple[float, float]] = {}
        self._sockets: dict[web.WebSocketResponse, set[str]] = {}
        self._refusing = False
        self._update = 0
        self.subscriptions: list[list[str]] = []  # the params of every SUBSCRIBE received
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="ws-standin", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def __enter__(self) -> BookTickerServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the WebSocket stand-in did not start")
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def quote(self, symbol: str, bid: float, ask: float) -> None:
        """Set the symbol's touch and push it to its subscribers."""
        asyncio.run_coroutine_threadsafe(self._quote(symbol, bid, ask), self._loop).result(10)

    def drop(self) -> None:
        """Close every socket and refuse new connections (the exchange's stream is down)."""
        asyncio.run_coroutine_threadsafe(self._drop(), self._loop).result(10)

    def allow(self) -> None:
        self._refusing = False

    # -- the server's own thread ------------------------------------------------------------
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/ws", self._socket)
        app.router.add_get("/ws/{stream:.*}", self._socket)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        server: Any = site._server
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if self._refusing:
            return web.Response(status=503, text="stream unavailable")
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets[socket] = set()
        try:
            async for message in socket:
                if message.type != WSMsgType.TEXT:
                    continue
                body = json.loads(message.data)
                if body.get("method") != "SUBSCRIBE":
                    continue
                streams = [str(s) for s in body.get("params", [])]
                self.subscriptions.append(streams)
                await socket.send_str(json.dumps({"result": None, "id": body.get("id")}))
                symbols = {s.split("@")[0].upper() for s in streams if s.endswith("@bookTicker")}
                self._sockets[socket] |= symbols
                for symbol in sorted(symbols & set(self._quotes)):
                    await socket.send_str(self._message(symbol))
        finally:
            self._sockets.pop(socket, None)
        return socket

    def _message(self, symbol: str) -> str:
        self._update += 1
        bid, ask = self._quotes[symbol]
        return json.dumps(
            {"u": self._update, "s": symbol, "b": f"{bid}", "B": "1.0", "a": f"{ask}", "A": "1.0"}
        )

    async def _quote(self, symbol: str, bid: float, ask: float) -> None:
        self._quotes[symbol] = (bid, ask)
        for socket, symbols in list(self._sockets.items()):
            if symbol in symbols and not socket.closed:
                await socket.send_str(self._message(symbol))

    async def _drop(self) -> None:
        self._refusing = True
        for socket in list(self._sockets):
            await socket.close()

    async def _shutdown(self) -> None:
        await self._drop()
        await self._runner.cleanup()

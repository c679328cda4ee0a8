"""Best bids and asks pushed over a WebSocket (`run --inputs ws`), through ccxt pro.

ccxt pro's `watch_bids_asks` subscribes to the exchange's book-ticker stream (Binance:
`<symbol>@bookTicker`) and returns every pair's touch as it changes. The session is
synchronous, so the socket lives in a background thread with its own event loop; the
session only reads the latest touch it left behind, without a request of its own.

When the socket drops (or never connects), `tops` answers None and the live inputs are
read over REST as without a stream; a log line says so once, and another when the
stream is back. The thread reconnects every `retry_seconds` until `close`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("kinetic_rules.live")

Touch = tuple[float, float]  # best bid, best ask


class BidAskStream:
    """The latest best bid and ask of each watched pair, pushed by the exchange."""

    def __init__(
        self, connect: Callable[[], Any], pairs: Iterable[str], *, retry_seconds: float = 5.0
    ) -> None:
        self._connect = connect  # a new ccxt pro client (each reconnection takes a fresh one)
        self._wanted = sorted(set(pairs))
        self.retry_seconds = retry_seconds
        self._tops: dict[str, Touch] = {}
        self._lock = threading.Lock()
        self._up = False
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self.drops = 0  # times the socket failed after having been up, for logs and tests

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="bid-ask-stream", daemon=True)
        self._thread.start()

    def watch(self, pairs: Iterable[str]) -> None:
        """Watch these pairs from the next push on (a scanning session's pairs change)."""
        with self._lock:
            self._wanted = sorted(set(pairs))

    @property
    def up(self) -> bool:
        return self._up

    def tops(self, pairs: list[str]) -> dict[str, Touch] | None:
        """The latest touch of each pair the stream has seen; None while it is down."""
        with self._lock:
            if not self._up:
                return None
            return {pair: self._tops[pair] for pair in pairs if pair in self._tops}

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the background thread -------------------------------------------------------------
    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._run())
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    async def _run(self) -> None:
        while not self._stop.is_set():
            client = None
            try:
                client = self._connect()
                await self._follow(client)
            except asyncio.CancelledError:
                raise
            except Exception as problem:  # any failure of the socket: REST stands in
                self._down(problem)
            finally:
                if client is not None:
                    await _close(client)
            if not self._stop.is_set():
                await asyncio.sleep(self.retry_seconds)

    async def _follow(self, client: Any) -> None:
        while not self._stop.is_set():
            with self._lock:
                wanted = list(self._wanted)
            if not wanted:
                await asyncio.sleep(self.retry_seconds)
                continue
            pushed = await client.watch_bids_asks(wanted)
            touches = {}
            for symbol, ticker in (pushed or {}).items():
                bid, ask = ticker.get("bid"), ticker.get("ask")
                if bid is not None and ask is not None:
                    pair = symbol if symbol in wanted else symbol.split(":")[0]  # perpetuals
                    touches[pair] = (float(bid), float(ask))
            with self._lock:
                self._tops.update(touches)
                came_back = not self._up
                self._up = True
            if came_back:
                log.info("live inputs: best bids and asks now pushed over a WebSocket")

    def _down(self, problem: Exception) -> None:
        with self._lock:
            was_up, self._up = self._up, False
            self._tops = {}
        if was_up:
            self.drops += 1
        log.warning(
            "live inputs: the WebSocket %s (%s: %s); reading bids and asks over REST until "
            "it is back (next try in %g s)",
            "dropped" if was_up else "could not be opened",
            type(problem).__name__,
            problem,
            self.retry_seconds,
        )


async def _close(client: Any) -> None:
    try:
        await client.close()
    except Exception as problem:  # closing a broken socket may fail too; nothing to keep
        log.debug("live inputs: closing the WebSocket client: %s", problem)


def pro_connector(exchange: Any) -> Callable[[], Any]:
    """A factory of ccxt pro clients of the same exchange as the (synchronous) `exchange`,
    knowing its markets already (so connecting costs no REST request)."""
    import ccxt.pro

    from kinetic_rules.errors import ConfigError

    kind = getattr(ccxt.pro, str(exchange.id), None)
    if kind is None:
        raise ConfigError(
            f"ccxt has no WebSocket client for {exchange.id}: use --inputs rest (the default)"
        )

    def connect() -> Any:
        client = kind({"enableRateLimit": False})
        if getattr(exchange, "markets", None):
            client.set_markets(exchange.markets)
        return client

    return connect

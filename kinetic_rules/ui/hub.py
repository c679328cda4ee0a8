"""Fan-out of stream messages from any thread to every open WebSocket of the page."""

from __future__ import annotations

import asyncio
import contextlib
import threading

QUEUE_SIZE = 200  # a page that stops reading loses messages, never the server's memory


class Hub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue[dict[str, object]]] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> asyncio.Queue[dict[str, object]]:
        """On the server's loop: a queue that receives every message from now on."""
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue(QUEUE_SIZE)
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, object]]) -> None:
        with self._lock:
            self._queues.discard(queue)

    def publish(self, message: dict[str, object]) -> None:
        """From any thread; never blocks and never raises."""
        with self._lock:
            loop, queues = self._loop, list(self._queues)
        if loop is None or not queues:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server stopped
            loop.call_soon_threadsafe(_deliver, queues, message)


def _deliver(queues: list[asyncio.Queue[dict[str, object]]], message: dict[str, object]) -> None:
    for queue in queues:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(message)

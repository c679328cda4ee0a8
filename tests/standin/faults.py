"""Faults the stand-in injects into its next responses: what an unreliable exchange does.

Each fault applies to the next N requests (optionally only those to one path, and
optionally only after letting `after` of them through), then is spent. Faults queue
in the order they were added.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field


@dataclass
class Fault:
    remaining: int
    path: str | None = None
    status: int = 200
    body: str | None = None  # replaces the real response body
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a slow or hung exchange)
    after: int = 0  # matching requests to let through first


class Faults:
    def __init__(self) -> None:
        self._queue: list[Fault] = []
        self._lock = threading.Lock()

    def fail_next(
        self, n: int = 1, *, status: int = 503, path: str | None = None, after: int = 0
    ) -> None:
        """Server errors, as during an outage or a deploy."""
        body = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
        self.add(Fault(n, path, status=status, body=body, after=after))

    def rate_limit_next(self, n: int = 1, *, retry_after: int = 1, path: str | None = None) -> None:
        """429 with Retry-After, the way the exchange asks a client to back off."""
        body = json.dumps({"code": -1003, "msg": "Too many requests; please use the websocket."})
        self.add(Fault(n, path, status=429, body=body, headers={"Retry-After": str(retry_after)}))

    def reject_next(
        self,
        n: int = 1,
        *,
        code: int = -1100,
        msg: str = "Illegal characters found in parameter.",
        status: int = 400,
        path: str | None = None,
    ) -> None:
        """An error the exchange means: retrying will not help."""
        self.add(Fault(n, path, status=status, body=json.dumps({"code": code, "msg": msg})))

    def delay_next(self, n: int = 1, *, seconds: float = 1.0, path: str | None = None) -> None:
        self.add(Fault(n, path, delay=seconds))

    def malformed_next(
        self, n: int = 1, *, body: str = '[[1700000000000, "1.0", "oops"', path: str | None = None
    ) -> None:
        self.add(Fault(n, path, status=200, body=body))

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._queue.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def take(self, path: str) -> Fault | None:
        """The fault for this request, if any; spends one of its uses."""
        with self._lock:
            for fault in self._queue:
                if fault.remaining > 0 and (fault.path is None or fault.path == path):
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._queue.remove(fault)
                    return fault
        return None

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._queue)

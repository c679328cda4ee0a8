"""Simulated time for the client side: a clock that moves only when someone sleeps.

Pass `clock` and `sleep` to the code under test; every wait is recorded and returns at
once, so a test of five minutes of backoff runs in milliseconds.
"""

from __future__ import annotations


class SimTime:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def backoffs(self, shortest: float = 0.5) -> list[float]:
        """The waits of at least `shortest` seconds: retries, not request pacing."""
        return [s for s in self.sleeps if s >= shortest]

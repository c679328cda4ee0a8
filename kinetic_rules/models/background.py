"""Training away from the decisions: a live session never waits for a model to fit.

When a retraining point arrives in a paper or live session, its training is handed to a
worker process and the model of the previous point stays in force until the new one is
ready (then it is stored in the disk cache, so a restart does not train it again).
Backtests and replays train in line instead: they must give the same values every run.
"""

from __future__ import annotations

import atexit
import multiprocessing
from concurrent import futures
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from kinetic_rules.models.cache import ModelCache, Trained
from kinetic_rules.models.settings import ModelSettings
from kinetic_rules.models.training import fit


class BackgroundTrainer:
    """One worker process (started at the first training) fitting models for a session."""

    def __init__(self, cache: ModelCache, workers: int = 1) -> None:
        self.cache = cache
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[str, Future[Trained]] = {}

    def submit(self, key: str, settings: ModelSettings, x: np.ndarray, y: np.ndarray) -> None:
        """Start training unless it already runs; the result lands in the cache."""
        if key in self._pending:
            return
        if self._pool is None:
            # spawn: a fresh interpreter, safe beside the session's threads and event loop
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            atexit.register(self.shutdown)
        self._pending[key] = self._pool.submit(fit, settings, x, y)

    def collect(self) -> int:
        """Store every finished training in the cache; returns how many are still running."""
        for key, future in list(self._pending.items()):
            if future.done():
                del self._pending[key]
                problem = future.exception()
                trained = (
                    Trained(None, f"training failed: {problem}") if problem else future.result()
                )
                self.cache.fits += 1
                self.cache.put(key, trained)
        return len(self._pending)

    def running(self, key: str) -> bool:
        return key in self._pending

    def wait(self) -> None:
        """Block until every training started has finished, and store them (shutdown, tests)."""
        futures.wait(list(self._pending.values()))
        self.collect()

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._pending.clear()

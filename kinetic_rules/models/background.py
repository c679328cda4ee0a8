"""Training away from the decisions: a live session never waits for a model to fit.

When a retraining point arrives in a paper or live session, its training is handed to a
worker process and the model of the previous point stays in force until the new one is
ready (then it is stored in the disk cache, so a restart does not train it again).
Backtests and replays train in line instead: they must give the same values every run.

The workers never outlive their session: `shutdown` (a session's stop, Ctrl-C, an error)
ends them at once, mid-training too, and a worker whose session process died, even by
SIGKILL, exits by itself. Ctrl-C reaches only the session, which shuts its workers down.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import threading
from concurrent import futures
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from multiprocessing.connection import Connection, wait

import numpy as np

from kinetic_rules.models.cache import ModelCache, Trained
from kinetic_rules.models.settings import ModelSettings
from kinetic_rules.models.training import fit


class BackgroundTrainer:
    """Worker processes (started at the first training) fitting models for a session."""

    def __init__(self, cache: ModelCache, workers: int = 1) -> None:
        self.cache = cache
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._pipe: tuple[Connection, Connection] | None = None  # closed: the workers end
        self._pending: dict[str, Future[Trained]] = {}

    def submit(self, key: str, settings: ModelSettings, x: np.ndarray, y: np.ndarray) -> None:
        """Start training unless it already runs; the result lands in the cache."""
        if key in self._pending:
            return
        if self._pool is None:
            # spawn: a fresh interpreter, safe beside the session's threads and event loop
            context = multiprocessing.get_context("spawn")
            self._pipe = context.Pipe(duplex=False)  # (read, write): the workers read
            told = self._pipe[0]
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_worker_start, initargs=(told,)
            )
            atexit.register(self.shutdown)
        self._pending[key] = self._pool.submit(fit, settings, x, y)

    def collect(self) -> int:
        """Store every finished training in the cache; returns how many are still running.

        A training whose worker died is not stored: the pool starts afresh and the model
        is trained again when next asked for."""
        broken = False
        for key, future in list(self._pending.items()):
            if future.done():
                del self._pending[key]
                problem = None if future.cancelled() else future.exception()
                if future.cancelled() or isinstance(problem, BrokenExecutor):
                    broken = True
                    continue
                trained = (
                    Trained(None, f"training failed: {problem}") if problem else future.result()
                )
                self.cache.fits += 1
                self.cache.put(key, trained)
        if broken:
            self.shutdown()
        return len(self._pending)

    def running(self, key: str) -> bool:
        return key in self._pending

    def wait(self) -> None:
        """Block until every training started has finished, and store them (tests)."""
        futures.wait(list(self._pending.values()))
        self.collect()

    def shutdown(self) -> None:
        """End the workers now, trainings under way included (they are trained again
        when next asked for); the models already stored stay."""
        pool, pipe = self._pool, self._pipe
        self._pool, self._pipe = None, None
        self._pending.clear()
        if pipe is not None:
            pipe[1].close()  # each worker sees its end close and exits, mid-training too
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            atexit.unregister(self.shutdown)
        if pipe is not None:
            pipe[0].close()


def _worker_start(told: Connection) -> None:
    """In each worker: Ctrl-C is the session's to handle, and the worker exits as soon
    as the session closes its end of the pipe or its process is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    watched: list[Connection | int] = [told]
    if parent is not None:
        watched.append(parent.sentinel)
    threading.Thread(target=_exit_when_ready, args=(watched,), daemon=True).start()


def _exit_when_ready(watched: list[Connection | int]) -> None:
    wait(watched)
    os._exit(0)

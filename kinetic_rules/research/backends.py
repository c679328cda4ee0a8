"""Where trials run: in this process, in local worker processes, or on a Ray cluster.

Every backend receives the study's `TrialContext` once and then only param values. Each
worker keeps one `TrialRunner` per context, so candles and the parsed strategy travel to
a worker once (Ray: through the object store), never per trial. A trial is a pure
function of (context, values): where it runs cannot change its result.

A worker that dies mid-trial loses nothing: local pools are rebuilt and the unfinished
trials resubmitted; Ray retries the task on another worker. Each trial is told to the
study exactly once, by the driver, from the one result it receives.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from kinetic_rules.errors import ConfigError
from kinetic_rules.research.space import Value
from kinetic_rules.research.trials import TrialContext, TrialOutcome, TrialRunner

Job = tuple[int, dict[str, Value]]  # (trial number, param values)
RAY_TASK_RETRIES = 3  # a trial whose worker dies is run again on another, this many times


class Backend(Protocol):
    def map(self, jobs: list[Job]) -> Iterator[tuple[int, TrialOutcome]]:
        """Run the jobs; yield (trial number, outcome) as each finishes, in any order."""
        ...

    def close(self) -> None: ...


class InProcess:
    def __init__(self, context: TrialContext) -> None:
        self.runner = TrialRunner(context)

    def map(self, jobs: list[Job]) -> Iterator[tuple[int, TrialOutcome]]:
        for number, values in jobs:
            yield number, self.runner.run(values)

    def close(self) -> None:
        pass


# One runner per worker process and context: the context arrives once, with the worker.
_RUNNERS: dict[str, TrialRunner] = {}


def _install(key: str, context: TrialContext) -> None:
    _RUNNERS.clear()
    _RUNNERS[key] = TrialRunner(context)


def _run_local(key: str, values: Mapping[str, Value]) -> TrialOutcome:
    return _RUNNERS[key].run(values)


class LocalProcesses:
    """`--workers N`: N processes on this machine, each given the context once."""

    def __init__(self, context: TrialContext, workers: int) -> None:
        self.context = context
        self.workers = workers
        self.key = uuid.uuid4().hex
        self.pool = self._pool()

    def _pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_install,
            initargs=(self.key, self.context),
        )

    def map(self, jobs: list[Job]) -> Iterator[tuple[int, TrialOutcome]]:
        pending = dict(jobs)
        while pending:
            futures: dict[Future[TrialOutcome], int] = {
                self.pool.submit(_run_local, self.key, values): number
                for number, values in pending.items()
            }
            broken = False
            waiting = set(futures)
            while waiting and not broken:
                done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                for future in done:
                    number = futures[future]
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        broken = True  # a worker died: rebuild and resubmit what is left
                        continue
                    del pending[number]
                    yield number, outcome
            if broken:
                self.pool.shutdown(wait=True, cancel_futures=True)
                self.pool = self._pool()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--ray needs Ray: pip install 'kinetic-rules[ray]' (see docs/research.md)"
        ) from None
    return ray


def _ray_trial(key: str, boxed: list[Any], values: Mapping[str, Value]) -> TrialOutcome:
    """Runs on a Ray worker. The context's reference comes boxed in a list so that Ray does
    not fetch it for every task: a worker fetches it the first time only."""
    runner = _RUNNERS.get(key)
    if runner is None:
        import ray

        _install(key, ray.get(boxed[0]))
        runner = _RUNNERS[key]
    return runner.run(values)


class RayCluster:
    """`--ray`: trials as Ray tasks on the cluster this process is connected to (see
    `connect_ray`); the context goes into the object store once per study. A task whose
    worker dies is retried (at most RAY_TASK_RETRIES times)."""

    def __init__(self, context: TrialContext) -> None:
        ray = _ray()
        self.ray = ray
        self.key = uuid.uuid4().hex
        self.context_ref = ray.put(context)
        self.task = ray.remote(max_retries=RAY_TASK_RETRIES, retry_exceptions=False)(_ray_trial)

    def map(self, jobs: list[Job]) -> Iterator[tuple[int, TrialOutcome]]:
        ray = self.ray
        refs = {
            self.task.remote(self.key, [self.context_ref], values): number
            for number, values in jobs
        }
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                yield refs[ref], ray.get(ref)

    def close(self) -> None:
        del self.context_ref


@contextlib.contextmanager
def connect_ray(address: str | None) -> Iterator[None]:
    """Connect to a Ray cluster for the whole command (`auto`: the one started on this
    machine with `ray start`; `local`: a private one for this run; else `HOST:PORT`).
    Nothing to do when not asked for, or when this process is already connected."""
    if address is None:
        yield
        return
    ray = _ray()
    if ray.is_initialized():
        yield
        return
    target = None if address == "local" else address
    try:
        ray.init(address=target, logging_level="WARNING", log_to_driver=False)
    except ConnectionError as problem:
        raise ConfigError(f"--ray {address}: cannot reach the cluster ({problem})") from None
    try:
        yield
    finally:
        ray.shutdown()


def open_backend(context: TrialContext, workers: int, ray_address: str | None) -> Backend:
    if ray_address is not None:
        return RayCluster(context)
    if workers > 1:
        return LocalProcesses(context, workers)
    return InProcess(context)

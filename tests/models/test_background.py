"""The models' training workers never outlive their session: not when it stops, not on
Ctrl-C or an error (the session's close ends them), not when its process is killed."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinetic_rules.compile.plan import build_plan
from kinetic_rules.data.store import CandleStore
from kinetic_rules.lang.checker import check
from kinetic_rules.live.session import TradingSession
from kinetic_rules.models import BackgroundTrainer, ModelCache, ModelSettings
from kinetic_rules.spec.loader import load_file
from tests.standin.exchange import ExchangeStandin

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = Path(__file__).parent / "strategies" / "predicted.yaml"
GUARD = 10  # seconds: a guard against a hang on a busy machine, not a speed limit


def long_training() -> tuple[ModelSettings, np.ndarray, np.ndarray]:
    """A fit that runs for minutes: it is still under way whenever it is stopped."""
    settings = ModelSettings("slow", "gradient_boosting", trees=500, depth=12, min_leaf=1)
    rows = np.random.default_rng(0).normal(size=(40_000, 20))
    return settings, rows, (rows[:, 0] + rows[:, 1] > 0).astype(np.int8)


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def test_shutdown_ends_a_worker_in_the_middle_of_a_training() -> None:
    cache = ModelCache(None)
    trainer = BackgroundTrainer(cache)
    trainer.submit("long", *long_training())
    future = trainer._pending["long"]  # to see when a worker has taken it
    deadline = time.monotonic() + GUARD
    while not future.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert future.running() and multiprocessing.active_children()
    trainer.shutdown()
    assert not multiprocessing.active_children()  # ended, not left to finish its fit
    assert cache.fits == 0 and not trainer.running("long")
    trainer.shutdown()  # twice is harmless


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_killed_session_process_leaves_no_worker_behind() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.models.trainer_process"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    ) as process:  # fmt: skip
        assert process.stdout is not None
        assert process.stdout.readline() == b"training\n"
        deadline = time.monotonic() + GUARD
        while len(children(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the worker and the resource tracker
        left = children(process.pid)
        assert left
        process.kill()
    while any(alive(pid) for pid in left) and time.monotonic() < deadline + GUARD:
        time.sleep(0.05)
    assert not [pid for pid in left if alive(pid)]


def test_a_stopped_session_leaves_no_training_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KINETIC_RULES_MODELS", str(tmp_path / "models"))
    plan = build_plan(check(load_file(STRATEGY)))
    pairs = ["BTC/USDT", "ETH/USDT"]
    with ExchangeStandin.from_fixtures(pairs=tuple(pairs), timeframes=("5m",)) as standin:
        standin.clock.set(pd.Timestamp("2024-03-20 00:00:10", tz="UTC"))

        def now() -> pd.Timestamp:
            return pd.Timestamp(standin.clock.now(), unit="ms", tz="UTC")

        def sleep(seconds: float) -> None:
            standin.clock.advance(int(seconds * 1000))

        session = TradingSession(
            plan, standin.ccxt_client(), CandleStore(tmp_path / "candles"), pairs,
            clock=now, sleep=sleep,
        )  # fmt: skip
        try:
            session.start()  # the models of these windows start training in a worker
            assert multiprocessing.active_children()
            session.run(cycles=1)
        finally:
            session.close()
    assert not multiprocessing.active_children()

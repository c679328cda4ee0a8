"""Trials on a Ray cluster that the test starts on this machine (two workers): the same
study as in one process, and a worker killed mid-study loses no trial and counts none
twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import ray

from kinetic_rules.research.run import optimize
from tests.research.conftest import KE, optimize_reports, options_for, request_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()


def _trials(url: str) -> list[tuple[int, object, dict[str, object], str]]:
    study = optuna.load_study(study_name="Kinetic Empire", storage=url)
    return [(t.number, t.value, t.params, t.state.name) for t in study.trials]


def _trial_workers() -> list[int]:
    """Ray worker processes busy with a trial (Ray names them after the task)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ray::_ray_trial" in command:
            found.append(int(entry.name))
    return found


def test_the_same_seed_gives_the_same_study_on_ray(
    cluster: None, fixture_store: Path, tmp_path: Path
) -> None:
    here, there = f"sqlite:///{tmp_path / 'here.sqlite'}", f"sqlite:///{tmp_path / 'ray.sqlite'}"
    optimize(KE, request_for(fixture_store), options_for(here, seed=5, trials=10))
    optimize(KE, request_for(fixture_store), options_for(there, seed=5, trials=10, ray="auto"))
    assert _trials(here) == _trials(there)


def test_the_same_seed_writes_the_same_report_on_ray(
    cluster: None, fixture_store: Path, tmp_path: Path
) -> None:
    here = optimize_reports(fixture_store, tmp_path / "here")
    assert optimize_reports(fixture_store, tmp_path / "ray", "--ray", "auto") == here


def test_a_worker_killed_mid_study_loses_no_trial(
    cluster: None, fixture_store: Path, tmp_path: Path
) -> None:
    here, there = f"sqlite:///{tmp_path / 'here.sqlite'}", f"sqlite:///{tmp_path / 'ray.sqlite'}"
    optimize(KE, request_for(fixture_store), options_for(here, seed=9, trials=24))
    failure: list[BaseException] = []

    def search() -> None:
        try:
            optimize(
                KE, request_for(fixture_store), options_for(there, seed=9, trials=24, ray="auto")
            )
        except BaseException as problem:  # re-raised in the test's own thread
            failure.append(problem)

    driver = threading.Thread(target=search)
    driver.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and driver.is_alive() and time.monotonic() < deadline:
        busy = _trial_workers()
        if busy:
            killed = busy[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.01)
    driver.join(timeout=300)
    assert not failure, failure
    assert killed is not None, "no trial was seen running on a worker"
    assert _trials(here) == _trials(there)  # 24 trials, each once, with the same results

"""`optimize` killed with SIGKILL mid-study, then run again: the study resumes, the trials
left running are run again, and the total counts every trial once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.research.conftest import ENTRY, KE

pytestmark = pytest.mark.slow


def _complete(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database) as connection:
            row = connection.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'")
            return int(row.fetchone()[0])
    except sqlite3.Error:  # the tables are not there yet
        return 0


def test_the_study_resumes_after_the_driver_is_killed(fixture_store: Path, tmp_path: Path) -> None:
    database = tmp_path / "study.sqlite"
    command = [sys.executable, "-m", "kinetic_rules", "optimize", str(KE),
               "--data", str(fixture_store), "--study", f"sqlite:///{database}",
               "--params", ",".join(ENTRY), "--objective", "total_return", "--trials", "24",
               "--warmup", "2d", "--report", str(tmp_path / "report"), "--quiet"]  # fmt: skip
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while _complete(database) < 4 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert driver.poll() is None, "the first run ended before it could be killed"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    study = optuna.load_study(study_name="Kinetic Empire", storage=f"sqlite:///{database}")
    before = len([t for t in study.trials if t.state == TrialState.COMPLETE])
    assert 4 <= before < 24
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    trials = optuna.load_study(study_name="Kinetic Empire", storage=f"sqlite:///{database}").trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 24 and not [t for t in trials if t.state == TrialState.RUNNING]
    assert (tmp_path / "report" / "kinetic_empire.optimized.yaml").exists()

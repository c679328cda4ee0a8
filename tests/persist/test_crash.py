"""Trades survive SIGKILL at any moment: writers are killed mid-flight, ten times, and
each database must open cleanly, pass SQLite's integrity check, hold only whole trades,
no duplicates, and everything a writer had been told was committed."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kinetic_rules.persist import TradeStore
from tests.persist.conftest import db_url

WRITER = Path(__file__).with_name("crash_writer.py")
pytestmark = [
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL"),
    pytest.mark.slow,  # ten writer processes, killed and checked one by one
]


@dataclass
class Run:
    path: Path
    proc: subprocess.Popen[str] = field(init=False)

    def start(self, seed: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), db_url(self.path), str(seed)],
            stdout=subprocess.PIPE,
            text=True,
        )

    def kill(self) -> list[str]:
        """SIGKILL, then every line the writer printed: its acknowledged commits."""
        self.proc.send_signal(signal.SIGKILL)
        out, _ = self.proc.communicate(timeout=30)
        assert self.proc.returncode == -signal.SIGKILL
        return out.splitlines()


def check(path: Path, printed: list[str]) -> int:
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    # Opens cleanly, and finishes a cut-off upgrade: a writer killed before its schema
    # transaction committed leaves a valid, empty database.
    with TradeStore(db_url(path)) as store:
        trades = {t.id: t for t in store.trades()}
    with sqlite3.connect(path) as raw:
        duplicates = raw.execute(
            "SELECT COUNT(*) FROM trades GROUP BY strategy, mode, pair, side, entry_time"
            " HAVING COUNT(*) > 1"
        ).fetchall()
        assert duplicates == []
    for trade in trades.values():
        reasons = [f.reason for f in trade.fills]
        if trade.is_open:
            assert reasons == ["entry"], trade
        else:
            assert reasons == ["entry", "trend_break"] and trade.stop is not None, trade
    for line in printed:
        word, _, number = line.partition(" ")
        if word == "opened":
            assert int(number) in trades
        elif word == "closed":
            assert not trades[int(number)].is_open
    return len(trades)


def test_sigkill_at_random_moments_loses_nothing_committed(tmp_path: Path) -> None:
    rng = random.Random(20240304)
    runs = [Run(tmp_path / f"crash{n}.sqlite") for n in range(5)]
    # Round 1, fresh databases, killed at a time counted from the start: before, while
    # or after the schema is created. Round 2 restarts on what round 1 left and is killed
    # while writing.
    stored = 0
    for round_ in (1, 2):
        for number, run in enumerate(runs):
            run.start(seed=round_ * 100 + number)
        if round_ == 2:
            for run in runs:
                assert run.proc.stdout is not None and run.proc.stdout.readline() == "ready\n"
        began = time.monotonic()
        lo, hi = (0.3, 1.5) if round_ == 1 else (0.02, 0.5)
        deadlines = sorted((rng.uniform(lo, hi), n) for n in range(len(runs)))
        outputs: dict[int, list[str]] = {}
        for deadline, number in deadlines:
            time.sleep(max(0.0, began + deadline - time.monotonic()))
            outputs[number] = runs[number].kill()
        for number, run in enumerate(runs):
            if run.path.exists():
                stored += check(run.path, outputs[number])
    assert stored > 0, "the writers never got to write: the test proved nothing"

"""A reader that goes away (`kinetic-rules … | head -1`) ends the command the way it ends
`cat`: quietly, by SIGPIPE, with no traceback and no "Exception ignored"."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.engine.model import Fill, Trade
from kinetic_rules.persist import TradeStore
from tests.security.helpers import HANG, environment

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGPIPE") or not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs Linux pipes"
)


PIPE_SIZE = 4096  # so that every command below writes more than the pipe holds


def first_line_then_close(*args: str) -> tuple[int, str, str]:
    """Run kinetic-rules with its output on a small pipe; read one line, close the pipe."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    process = subprocess.Popen(
        [sys.executable, "-m", "kinetic_rules", *args],
        stdout=write_end,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=environment(),
    )
    os.close(write_end)
    assert process.stderr is not None
    with os.fdopen(read_end, "rb") as output:
        line = output.readline().decode()
    try:
        error = process.stderr.read().decode()
        code = process.wait(timeout=HANG)
    finally:
        process.kill()
        process.stderr.close()
    return code, line, error


def test_functions_piped_into_head_ends_quietly() -> None:
    code, line, error = first_line_then_close("functions")
    assert line.strip()
    assert code == -signal.SIGPIPE  # a shell shows 141
    assert error == ""


def test_trades_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    path = tmp_path / "trades.sqlite"
    at = pd.Timestamp("2024-03-04 10:05", tz="UTC")
    with TradeStore(f"sqlite:///{path}") as store:
        for number in range(300):  # far more output than the pipe holds
            when = at + pd.Timedelta(minutes=5 * number)
            made = Trade(0, "SOL/USDT", "long", "bull", when, when, 100.0, 1.0, 100.0, 1.0,
                         95.0, fills=[Fill(when, 100.0, 1.0, 0.1, "entry")])  # fmt: skip
            store.open_trade(made, strategy="ke", mode="paper")
    code, line, error = first_line_then_close("trades", "--db", f"sqlite:///{path}")
    assert "Pair" in line  # the table's header
    assert code == -signal.SIGPIPE, error
    assert error == ""

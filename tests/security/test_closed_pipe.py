"""A reader that goes away (`kinetic-rules … | head -1`) ends the command the way it ends
`cat`: quietly, by SIGPIPE, with no traceback and no "Exception ignored"."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.engine.model import Fill, Trade
from kinetic_rules.persist import TradeStore
from tests.security.helpers import HANG, environment

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGPIPE"), reason="needs SIGPIPE")


def first_line_then_close(*args: str) -> tuple[int, str, str]:
    """Run kinetic-rules with its output on a pipe; read one line, close the pipe."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kinetic_rules", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=environment(),
    )
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline().decode()
    process.stdout.close()
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
        for number in range(3000):  # more output than a pipe buffers
            when = at + pd.Timedelta(minutes=5 * number)
            made = Trade(0, "SOL/USDT", "long", "bull", when, when, 100.0, 1.0, 100.0, 1.0,
                         95.0, fills=[Fill(when, 100.0, 1.0, 0.1, "entry")])  # fmt: skip
            store.open_trade(made, strategy="ke", mode="paper")
    code, line, error = first_line_then_close("trades", "--db", f"sqlite:///{path}")
    assert "Pair" in line  # the table's header
    assert code == -signal.SIGPIPE, error
    assert error == ""

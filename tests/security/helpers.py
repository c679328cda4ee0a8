"""Running kinetic-rules as a user does, in its own process: what it prints, how it exits,
and whether it ends at all (every run has a generous timeout, which is a hang detector,
not a speed requirement)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
HANG = 120  # seconds; a hang, not a slow machine, is what reaching it means


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINETIC_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    piped_input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`kinetic-rules ARGS`; standard input is /dev/null, or a pipe carrying `piped_input`."""
    return subprocess.run(
        [sys.executable, "-m", "kinetic_rules", *args],
        capture_output=True,
        text=True,
        timeout=HANG,
        env=env or environment(),
        cwd=cwd,
        input=piped_input,
        stdin=subprocess.DEVNULL if piped_input is None else None,
    )


def python(
    code: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=HANG,
        env=env or environment(),
        stdin=subprocess.DEVNULL,
    )

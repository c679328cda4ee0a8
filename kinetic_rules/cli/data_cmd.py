"""`kinetic-rules data ...` and `kinetic-rules download` (placeholder until the data layer lands)."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: "argparse._SubParsersAction[Any]") -> None:
    """Add the data commands; each sets `handler` to a function(args) -> exit code."""

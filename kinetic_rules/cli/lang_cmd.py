"""`kinetic-rules validate` and `kinetic-rules functions`."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: "argparse._SubParsersAction[Any]") -> None:
    """Add the language commands; each sets `handler` to a function(args) -> exit code."""

"""Numeric command-line flags, checked by argparse so a bad value names its flag.

Every number a flag takes is bounded: an out-of-range or non-numeric value stops the
command at once with exit code 2, before any work or network call.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type` for a whole number from `low` to `high` inclusive."""

    def parse(text: str) -> int:
        stripped = text.strip()
        digits = stripped[1:] if stripped[:1] in "+-" else stripped
        if not digits.isdigit() or len(digits) > 18:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number")
        value = int(stripped)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse

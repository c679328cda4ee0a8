"""Rich consoles and tables the commands print with.

Off a terminal (a pipe, a file, CI logs) lines are kept whole up to 200 characters rather
than cut at 80, so a report piped into a file reads like the one on screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported where used, so that `--help` stays fast
    from rich.console import Console
    from rich.table import Table


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def simple_table(*headers: str) -> Table:
    """Only the last column wraps on a narrow terminal; the others stay whole."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for number, header in enumerate(headers, 1):
        table.add_column(header, no_wrap=number < len(headers))
    return table


def split_commas(values: list[str]) -> list[str]:
    """`--pairs A,B --pairs C` → [A, B, C]."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]

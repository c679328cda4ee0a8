"""The process a command runs in, when it has it to itself (the `kinetic-rules` entry
point, not a test calling `main`).

A backtest imports a few hundred thousand objects (pandas, pydantic's models, the
language's tables) that live until the process ends, then makes and drops millions more.
Python's cycle collector would walk the imported ones at every full collection, which
cost about a tenth of a short backtest; frozen after the imports, they are left out.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # new container objects between two young collections (700 by default)

_own = False


def own_process() -> None:
    """The entry point's call: commands may tune the process for themselves."""
    global _own
    _own = True


def modules_loaded() -> None:
    """A batch command has imported what it runs: keep the collector off those objects
    and collect young objects less often (a few MB more at most between collections).
    Nothing is done when the command shares its process (tests call `main`)."""
    if not _own:
        return
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])

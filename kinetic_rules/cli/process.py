"""The process a command runs in, when it has it to itself (the `kinetic-rules` entry
point, not a test calling `main`).

A backtest imports a few hundred thousand objects (pandas, pydantic's models, the
language's tables) that live until the process ends, then makes and drops millions more.
Python's cycle collector would walk the imported ones at every full collection, which
cost about a tenth of a short backtest; frozen after the imports, they are left out.
The imports themselves make few cycles, yet with the default threshold the collector ran
hundreds of times while they were made (about a tenth of their time): the entry point
raises the threshold before any command imports its libraries.

numpy's BLAS (OpenBLAS) starts a thread per core when numpy is imported, about 30 ms of
CPU on two cores, for matrix products that no backtest makes (the engine's arrays are
element-wise); the entry point asks for one thread unless the user chose a number.
"""

from __future__ import annotations

import gc
import os

YOUNG_THRESHOLD = 10_000  # new container objects between two young collections (700 by default)

_own = False


def own_process() -> None:
    """The entry point's call: commands may tune the process for themselves. Young
    objects are collected less often from here on (a few MB more at most between
    collections), the command's imports included."""
    global _own
    _own = True
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # read once, when numpy loads
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def modules_loaded() -> None:
    """A batch command has imported what it runs: keep the collector off those objects.
    Nothing is done when the command shares its process (tests call `main`)."""
    if _own:
        gc.freeze()

"""One progress display per long command, in named phases (loading, indicators,
portfolio, reports …).

On a terminal: a single line that names the phase at work, with its elapsed time and, when
the phase knows how much there is (pairs, candles), a bar of it; a phase ends when the next
begins, so the bar never sits full while other work goes on. Elsewhere (a log file, CI):
one plain line per finished phase with its elapsed time, nothing that redraws.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any


class Phases:
    """Called as `phases(name, done, total)`: a new name ends the phase before it; total 0
    means "no count known". `close()` ends the last phase and the display."""

    def __init__(self, stream: IO[str] | None = None, *, live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.name: str | None = None
        self.started = 0.0
        self.began = time.perf_counter()
        self.done = 0
        self.total = 0
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, name: str, done: int = 0, total: int = 0) -> None:
        if name != self.name:
            self._end()
            self.name, self.started = name, time.perf_counter()
            self.done, self.total = done, total
            if self.live:
                self._show_live()
        self.done, self.total = done, total
        if self._bar is not None:
            self._bar.update(
                self._task, completed=done, total=total or None, description=self._label()
            )

    def close(self) -> None:
        self._end()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Phases:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _label(self) -> str:
        count = f" {self.done:,}/{self.total:,}" if self.total else ""
        return f"{self.name}{count}"

    def _show_live(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        if self._bar is None:
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self._bar.start()
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(self._label(), total=None)

    def _end(self) -> None:
        if self.name is None:
            return
        elapsed = time.perf_counter() - self.started
        count = f" ({self.total:,})" if self.total else ""
        line = f"{self.name}{count}: {elapsed:.1f}s"
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.stream, flush=True)
        self.name = None

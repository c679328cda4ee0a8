"""Series kept from one evaluation of a plan to the next, over the same candles.

A search runs the same strategy hundreds of times with different param values. The
checker substitutes each value into the trees, so a series that no searched param
touches (`rsi(close, 14)`, `close@1h > ema(close, 50)@1h`) has the same tree shape in
every trial, and one that a param does touch (`roc(close, 12) > 2.5`) has a shape of
its own for each value. Keying a computed series by (pair, timeframe, the candles it
was computed on, its tree shape) therefore gives both at once: param-independent series
are computed once per study, and param-dependent ones once per set of values.

The cache is optional (a plain backtest has none) and bounded in bytes: the least
recently used series go first, but never one the current run has used. When a run
needs more than the bound, the cache keeps what it holds rather than replacing it
series by series (which, as every run reads the series in the same order, would leave
nothing for the next run to find): later runs then find that part and compute the rest.
It holds arrays only, never candles. Every array it hands out is read-only, so no run
can change what a later run reads.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable
from typing import TypeVar, cast

import numpy as np

from kinetic_rules.lang import ast

DEFAULT_MB = 512
MB = 1 << 20
MAX_DERIVED = 4
T = TypeVar("T")

# pair, timeframe, candle count, first and last open time (ns), gaps, durations: the
# candles and the settings a series was computed with. A search over a shorter span
# (a walk-forward window) has other candles, so it never reads another span's series.
FrameKey = tuple[str, str, int, int, int, str, str]


class SeriesCache:
    """Computed series by (frame, tree shape), least recently used evicted past the bound."""

    def __init__(self, max_bytes: int = DEFAULT_MB * MB) -> None:
        if max_bytes < 0:
            raise ValueError("a cache bound cannot be negative")
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[FrameKey, int], np.ndarray] = OrderedDict()
        self._used: dict[tuple[FrameKey, int], int] = {}  # the run that last used each
        self._run = 0
        self._reads: dict[frozenset[str], dict[ast.Node, bool]] = {}  # see `reads`
        self._derived: dict[Hashable, object] = {}  # see `derived`

    def __len__(self) -> int:
        return len(self._entries)

    def new_run(self) -> None:
        """A new evaluation of a plan begins (a trial): what earlier ones used may go."""
        self._run += 1

    def get(self, frame: FrameKey, node: ast.Node) -> np.ndarray | None:
        key = (frame, ast.shape(node))
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self._used[key] = self._run
        self.hits += 1
        return found

    def put(self, frame: FrameKey, node: ast.Node, value: object) -> None:
        """Keep an array value (read-only from now on); constants are not worth keeping."""
        if not isinstance(value, np.ndarray) or value.ndim == 0:
            return
        value.setflags(write=False)
        size = int(value.nbytes)
        if size > self.max_bytes:
            return
        key = (frame, ast.shape(node))
        self._drop(key)
        while self._entries and self.bytes + size > self.max_bytes:
            oldest = next(iter(self._entries))
            if self._used[oldest] == self._run:
                break  # everything held serves this run: keep it, not this one
            self._drop(oldest)
        if self.bytes + size > self.max_bytes:
            return
        self._entries[key] = value
        self._used[key] = self._run
        self.bytes += size

    def _drop(self, key: tuple[FrameKey, int]) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= int(old.nbytes)
            del self._used[key]

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """A value derived from the candles alone (how the pairs lie on one timeline),
        kept for the next run. Few are ever asked for (one per set of pairs), so they
        are not counted against the bound; the oldest goes past `MAX_DERIVED`."""
        if key not in self._derived:
            self._derived[key] = compute()
            while len(self._derived) > MAX_DERIVED:
                del self._derived[next(iter(self._derived))]
        return cast(T, self._derived[key])

    def reads(self, node: ast.Node, names: frozenset[str]) -> bool:
        """`reads_any`, remembered across runs: trees are walked once per study."""
        return reads_any(node, names, self._reads.setdefault(names, {}))

    def clear(self) -> None:
        self._entries.clear()
        self._used.clear()
        self._derived.clear()
        self.bytes = 0

    def summary(self) -> str:
        return (
            f"{self.hits} series from the cache, {self.misses} computed; "
            f"{len(self)} held in {self.bytes / MB:.1f} MB of {self.max_bytes / MB:.0f} MB"
        )


def frame_key(pair: str, timeframe: str, times: np.ndarray, gaps: str, durations: str) -> FrameKey:
    """What identifies the candles a series is computed on, and how it is computed."""
    first = int(times[0]) if len(times) else 0
    last = int(times[-1]) if len(times) else 0
    return (pair, timeframe, len(times), first, last, gaps, durations)


def reads_any(node: ast.Node, names: Collection[str], known: dict[ast.Node, bool]) -> bool:
    """Whether `node` reads one of `names` (the regime and its tables: values that the
    tree shape alone does not decide, as the regime's own rules may read params)."""
    found = known.get(node)
    if found is None:
        if isinstance(node, ast.Name):
            found = node.id in names
        else:
            found = any(reads_any(child, names, known) for child in node.children())
        known[node] = found
    return found

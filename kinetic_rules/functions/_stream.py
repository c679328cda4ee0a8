"""Streams: a function's values extended as candles arrive, the same numbers as one call.

The live runtime adds a candle at every close. Running each function over its whole
window again costs the window's length every time; a stream instead keeps what the
function needs between calls — the last value of a recursion, the last inputs of a
trailing window, the running sums pandas keeps — and computes only the new candles.

The contract of a stream (`Function.stream()` makes a fresh one for one call site): it
is called like the function's `impl`, but each array holds only the candles that are new
since the previous call (the first call holds all there are), and the constants are the
same on every call. Whatever the sizes of those chunks, the outputs put together equal
one call of `impl` over all the candles, bit for bit — tests/functions/test_fn_stream.py
checks that for every registered function, on real candles and on hostile random ones.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from kinetic_rules.functions import _core as core
from kinetic_rules.functions.registry import Array, Stream, StreamFactory

Restart = Callable[[int], int]  # candle number -> a candle a batch call may start from


def stateless(impl: Callable[..., Array]) -> StreamFactory:
    """A function of each candle alone (abs, min, …): every chunk on its own."""
    return lambda: impl


def from_constants(build: Callable[..., Stream]) -> StreamFactory:
    """A stream made at the first call from the constant arguments, then fed the arrays.

    `build` receives the constants (whole numbers, numbers, lists) in order and returns a
    stream over the arrays: the candle inputs, then the series, in order.
    """

    def factory() -> Stream:
        made: list[Stream] = []

        def stream(*args: Any) -> Array:
            if not made:
                made.append(build(*(a for a in args if not isinstance(a, np.ndarray))))
            return made[0](*(a for a in args if isinstance(a, np.ndarray)))

        return stream

    return factory


def trailing(reach: int) -> Restart:
    """The value at a candle depends on the `reach` candles ending there and nothing else."""
    return lambda row: max(0, row - reach + 1)


def window(n: int) -> int:
    """Reach of a function over the last n candles."""
    return n


def window_and_one(n: int) -> int:
    """Reach of a function comparing a candle with the one n candles before it."""
    return n + 1


def replayed(impl: Callable[..., Array], reach: Callable[[int], int]) -> StreamFactory:
    """For a function of one constant n (a window, a period) whose value at a candle
    depends on the last `reach(n)` candles only: `impl` called again over those."""
    return from_constants(lambda n: Replay(lambda *x: impl(*x, n), trailing(reach(n))))


class Replay:
    """Run the batch function again over only the candles the new values depend on.

    `restart(row)` names a candle from which a batch call gives the value at `row`, and
    at every later row, exactly as a call over all candles would: for a trailing window
    of n candles that is row − n + 1. Only the candles from there on are kept.
    """

    def __init__(self, impl: Callable[..., Array], restart: Restart) -> None:
        self._impl = impl
        self._restart = restart
        self._kept: list[Array] = []
        self._first = 0  # number of the first kept candle
        self._seen = 0

    def __call__(self, *arrays: Array) -> Array:
        count = len(arrays[0])
        joined = list(arrays)
        if self._kept:
            joined = [np.concatenate((a, b)) for a, b in zip(self._kept, arrays, strict=True)]
        out = np.asarray(self._impl(*joined))
        self._seen += count
        cut = max(0, self._restart(self._seen) - self._first)
        self._kept = [np.array(a[cut:]) for a in joined]  # a copy: the caller's may change
        self._first += cut
        return out[len(out) - count :]


_SHORT = 64  # chunks up to this long are stepped in Python, longer ones through pandas


def ewm_steps(last: float, x: core.Floats, alpha: float) -> core.Floats:
    """The recursion of `_core.ewm_from` continued from its `last` value over defined `x`.

    pandas' recursion (adjust=False) carries nothing but its last value, so continuing
    from it gives the bits a single pass gives. A call into pandas costs tens of
    microseconds, so the few values of a close are stepped here instead, with pandas'
    own arithmetic — checked against pandas once per process, pandas used if they differ.
    """
    if len(x) > _SHORT or np.isnan(x).any() or not _steps_match_pandas():
        return core.ewm_from(last, x, alpha)[1:]
    return np.array(_step_values(last, x.tolist(), alpha), dtype=np.float64)


def _step_values(last: float, values: list[float], alpha: float) -> list[float]:
    share = 1.0 / (1.0 + (1.0 - alpha) / alpha)  # alpha as pandas derives it from its com
    keep = 1.0 - share
    out = []
    weighted = last
    for value in values:
        if weighted != weighted:  # NaN: pandas restarts from the value
            weighted = value
        elif weighted != value:
            weighted = (keep * weighted + share * value) / (keep + share)
        out.append(weighted)
    return out


@cache
def _steps_match_pandas() -> bool:
    values = np.sin(np.arange(400) * 0.7) * 1e4 + np.arange(400) * 3.0 + 4e4
    for alpha in (2.0 / 3.0, 0.5, 2.0 / 15.0, 1.0 / 14.0, 2.0 / 201.0, 1.0):
        expected = core.ewm_from(float(values[0]), values[1:], alpha)[1:]
        stepped = np.array(_step_values(float(values[0]), values[1:].tolist(), alpha))
        if not np.array_equal(expected, stepped):
            return False
    return True


class SeededEma:
    """`_core.seeded_ema` over defined values: the batch until the seed, then one step each."""

    def __init__(self, period: int, alpha: float) -> None:
        self._period, self._alpha = period, alpha
        self._early = np.empty(0)  # values seen before the seed is complete
        self._last: float | None = None

    def __call__(self, x: core.Floats) -> core.Floats:
        if self._last is None:
            values = np.concatenate((self._early, x))
            out = core.seeded_ema(values, self._period, self._alpha)[len(self._early) :]
            if len(values) >= self._period:
                self._last = float(out[-1])
            else:
                self._early = values
            return out
        if not len(x):
            return np.empty(0)
        out = ewm_steps(self._last, x, self._alpha)
        self._last = float(out[-1])
        return out


class SmoothedSum:
    """Wilder's running sum as `trend._smoothed_sum` keeps it, one value per move.

    The seed is the sum of the first n − 1 moves over n; the first value comes with the
    n-th move. Before that, NaN.
    """

    def __init__(self, n: int) -> None:
        self._n = n
        self._early = np.empty(0)
        self._last: float | None = None

    def __call__(self, moves: core.Floats) -> core.Floats:
        out = core.nans(len(moves))
        start = 0
        if self._last is None:
            start = self._n - 1 - len(self._early)
            if len(moves) < start:
                self._early = np.concatenate((self._early, moves))
                return out
            seed = np.concatenate((self._early, moves[:start]))
            self._last = float(np.sum(seed)) / self._n
        if len(moves) > start:
            steps = ewm_steps(self._last, moves[start:], core.wilder_alpha(self._n))
            out[start:] = steps
            self._last = float(steps[-1])
        return out


class OnValid:
    """`_core.on_valid` as a stream: the inner stream sees only the candles where every
    input is defined, so a NaN neither restarts nor poisons its recursion."""

    def __init__(self, inner: Stream) -> None:
        self._inner = inner

    def __call__(self, *arrays: Array) -> core.Floats:
        values = core.floats(*arrays)
        valid = ~np.isnan(values[0])
        for a in values[1:]:
            valid &= ~np.isnan(a)
        if valid.all():
            return np.asarray(self._inner(*values), dtype=np.float64)
        out = core.nans(len(valid))
        if valid.any():
            out[valid] = self._inner(*(a[valid] for a in values))
        return out


class Previous:
    """Each candle's predecessor: the last value of the previous chunk, NaN at the start."""

    def __init__(self) -> None:
        self.value = math.nan
        self.started = False

    def before(self, x: core.Floats) -> core.Floats:
        out = np.empty(len(x))
        if len(x):
            out[0] = self.value
            out[1:] = x[:-1]
            self.value = float(x[-1])
        return out

    def first_chunk(self, x: core.Floats) -> bool:
        """True once, on the first non-empty chunk: its first candle has no predecessor."""
        fresh = not self.started and len(x) > 0
        self.started = self.started or len(x) > 0
        return fresh


class Atr:
    """`_core.atr_valid` as a stream (defined candles only): true ranges, Wilder-smoothed."""

    def __init__(self, n: int) -> None:
        self._close = Previous()
        self._smooth = SeededEma(n, core.wilder_alpha(n))

    def __call__(self, high: core.Floats, low: core.Floats, close: core.Floats) -> core.Floats:
        first = self._close.first_chunk(close)
        prev = self._close.before(close)
        tr = np.maximum(high - low, np.maximum(np.abs(prev - high), np.abs(prev - low)))
        if not first:
            return self._smooth(tr)
        out = core.nans(len(tr))
        out[1:] = self._smooth(tr[1:])
        return out


def atr(n: int) -> Stream:
    return OnValid(Atr(n))


def ema(n: int) -> Stream:
    return OnValid(SeededEma(n, core.ema_alpha(n)))


class RollingSum:
    """pandas' `rolling(window, min_periods=window).sum()` — or `.mean()` — value by value.

    pandas adds each entering value and removes each leaving one with Kahan-compensated
    sums, so a value carries the rounding of every candle before it in its last bits; a
    fresh call over only the last candles can differ there. This keeps the same running
    state in the same order, so the bits agree (tested against pandas itself).
    """

    def __init__(self, window: int, mean: bool) -> None:
        self._window, self._mean = window, mean
        self._inside: deque[float] = deque()  # the window's values, oldest first
        self._seen = 0
        self._sum = self._add_error = self._remove_error = 0.0
        self._count = self._negative = self._repeats = 0
        self._previous = math.nan

    def __call__(self, x: Array) -> core.Floats:
        values = np.asarray(x, dtype=np.float64).tolist()
        return np.array([self._step(v) for v in values], dtype=np.float64)

    def _step(self, value: float) -> float:
        if self._seen == 0 or self._window == 1:  # pandas starts afresh: windows don't overlap
            self._sum = self._add_error = self._remove_error = 0.0
            self._count = self._negative = self._repeats = 0
            self._previous = value
            self._inside.clear()
        elif self._seen >= self._window:
            self._remove(self._inside.popleft())
        self._seen += 1
        self._inside.append(value)
        self._add(value)
        return self._result()

    def _add(self, value: float) -> None:
        if value != value:  # NaN: not counted
            return
        self._count += 1
        y = value - self._add_error
        t = self._sum + y
        self._add_error = t - self._sum - y
        self._sum = t
        self._negative += math.copysign(1.0, value) < 0
        self._repeats = self._repeats + 1 if value == self._previous else 1
        self._previous = value

    def _remove(self, value: float) -> None:
        if value != value:
            return
        self._count -= 1
        y = -value - self._remove_error
        t = self._sum + y
        self._remove_error = t - self._sum - y
        self._sum = t
        self._negative -= math.copysign(1.0, value) < 0

    def _result(self) -> float:
        count = self._count
        if count < self._window or count == 0:
            return math.nan
        if not self._mean:
            return self._previous * count if self._repeats >= count else self._sum
        if self._repeats >= count:  # a run of one value: exactly that value
            return self._previous
        result = self._sum / count
        if self._negative == 0 and result < 0:  # rounding must not flip the sign
            return 0.0
        if self._negative == count and result > 0:
            return 0.0
        return result

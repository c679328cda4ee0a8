"""Conditions over time: crossings, all/any/count over a window, bars_since, latch."""

from __future__ import annotations

import numpy as np

from kinetic_rules.functions import _core as core
from kinetic_rules.functions import _stream as stream
from kinetic_rules.functions._define import (
    condition,
    const,
    define,
    of,
    series,
    source,
    whole,
    window,
)
from kinetic_rules.functions.registry import Array
from kinetic_rules.units import Unit

CATEGORY = "conditions over time"
_WINDOW = window("window", "how many candles, or how long, e.g. 6 or 30m")


def _crossed(a: Array, b: Array, above: bool) -> Array:
    x, y = core.floats(a, b)
    px, py = core.shifted(x, 1), core.shifted(y, 1)
    # Any NaN compares false, so an undefined side never crosses.
    crossed = (px <= py) & (x > y) if above else (px >= py) & (x < y)
    return np.asarray(crossed, dtype=bool)


def _crossed_above(a: Array, b: Array) -> Array:
    return _crossed(a, b, above=True)


def _crossed_below(a: Array, b: Array) -> Array:
    return _crossed(a, b, above=False)


def _window_counts(cond: Array, w: int) -> tuple[core.Floats, core.Bools]:
    """(true candles in each trailing window, whether the window is complete)."""
    (c,) = core.bools(cond)
    n = len(c)
    counts = np.zeros(n)
    complete = np.zeros(n, dtype=bool)
    if n >= w:
        cumulative = np.concatenate(([0], np.cumsum(c, dtype=np.int64)))
        counts[w - 1 :] = cumulative[w:] - cumulative[: n - w + 1]
        complete[w - 1 :] = True
    return counts, complete


def _all(cond: Array, w: int) -> Array:
    counts, complete = _window_counts(cond, w)
    return np.asarray(complete & (counts == w), dtype=bool)


def _any(cond: Array, w: int) -> Array:
    counts, complete = _window_counts(cond, w)
    return np.asarray(complete & (counts > 0), dtype=bool)


def _count(cond: Array, w: int) -> Array:
    counts, complete = _window_counts(cond, w)
    counts[~complete] = np.nan
    return counts


def _bars_since(cond: Array) -> Array:
    (c,) = core.bools(cond)
    idx = np.arange(len(c))
    last = np.maximum.accumulate(np.where(c, idx, -1)) if len(c) else idx
    out = (idx - last).astype(np.float64)
    out[last < 0] = np.nan
    return out


def _latch(set_: Array, reset: Array) -> Array:
    """Vectorized flip-flop.

    Each candle maps the previous state to the next: set only → on, reset only →
    off, neither → unchanged, both → flipped (off turns on; on turns off because
    the reset comes on a later candle than the set). So the state is the value
    forced by the last one-sided candle, flipped once per "both" candle since.
    """
    s, r = core.bools(set_, reset)
    n = len(s)
    if n == 0:
        return np.zeros(0, dtype=bool)
    idx = np.arange(n)
    forced = s ^ r
    last = np.maximum.accumulate(np.where(forced, idx, -1))
    both = np.concatenate(([0], np.cumsum(s & r, dtype=np.int64)))
    flips = both[idx + 1] - both[last + 1]  # "both" candles after the last forced one
    start = np.where(last >= 0, s[np.maximum(last, 0)], False)
    return np.asarray(start ^ (flips % 2 == 1), dtype=bool)


def _rising(x: Array, periods: int) -> Array:
    (values,) = core.floats(x)
    return values > core.shifted(values, periods)


def _falling(x: Array, periods: int) -> Array:
    (values,) = core.floats(x)
    return values < core.shifted(values, periods)


class _BarsSinceStream:
    """The candle number of the last true candle, carried on."""

    def __init__(self) -> None:
        self._seen = 0
        self._last = -1

    def __call__(self, cond: Array) -> core.Floats:
        (c,) = core.bools(cond)
        idx = np.arange(self._seen, self._seen + len(c))
        last = np.maximum.accumulate(np.where(c, idx, self._last)) if len(c) else idx
        self._seen += len(c)
        self._last = int(last[-1]) if len(c) else self._last
        out = (idx - last).astype(np.float64)
        out[last < 0] = np.nan
        return out


class _LatchStream:
    """The switch's state, carried on: each chunk starts after a candle forcing that state."""

    def __init__(self) -> None:
        self._on: bool | None = None

    def __call__(self, set_: Array, reset: Array) -> Array:
        s, r = core.bools(set_, reset)
        if not len(s):
            return np.zeros(0, dtype=bool)
        if self._on is None:
            out = _latch(s, r)
        else:  # set only forces on, reset only forces off
            forced = np.concatenate(([self._on], s)), np.concatenate(([not self._on], r))
            out = _latch(*forced)[1:]
        self._on = bool(out[-1])
        return out


define(
    "crossed_above",
    CATEGORY,
    "True on the candle where `a` goes from at or below `b` to above it: a[1] <= b[1] and a > b.",
    (series("a", "the line that crosses"), series("b", "the line or level it crosses")),
    _crossed_above,
    const(1),
    returns="bool",
    example="golden_cross: crossed_above(ema(close, 50), ema(close, 200))",
    stream=stream.from_constants(lambda: stream.Replay(_crossed_above, stream.trailing(2))),
    unit=Unit.BOOL,
    alike=(("a", "b"),),
)

define(
    "crossed_below",
    CATEGORY,
    "True on the candle where `a` goes from at or above `b` to below it: a[1] >= b[1] and a < b.",
    (series("a", "the line that crosses"), series("b", "the line or level it crosses")),
    _crossed_below,
    const(1),
    returns="bool",
    example="rsi_drops: crossed_below(rsi(close, 14), 70)",
    stream=stream.from_constants(lambda: stream.Replay(_crossed_below, stream.trailing(2))),
    unit=Unit.BOOL,
    alike=(("a", "b"),),
)

define(
    "all",
    CATEGORY,
    "True when the condition held on every one of the last `window` candles, this one "
    "included. False until there are `window` candles.",
    (condition("condition", "what must hold"), _WINDOW),
    _all,
    of("window"),
    returns="bool",
    example="steady: all(close > ema(close, 50), 1h)",
    stream=stream.replayed(_all, stream.window),
    unit=Unit.BOOL,
)

define(
    "any",
    CATEGORY,
    "True when the condition held on at least one of the last `window` candles, this one "
    "included. False until there are `window` candles.",
    (condition("condition", "what must hold at least once"), _WINDOW),
    _any,
    of("window"),
    returns="bool",
    example="recent_dip: any(rsi(close, 14) < 30, 2h)",
    stream=stream.replayed(_any, stream.window),
    unit=Unit.BOOL,
)

define(
    "count",
    CATEGORY,
    "How many of the last `window` candles (this one included) the condition held on.",
    (condition("condition", "what to count"), _WINDOW),
    _count,
    of("window"),
    example="mostly_green: count(close > open, 12) >= 8",
    stream=stream.replayed(_count, stream.window),
    unit=Unit.COUNT,
)

define(
    "bars_since",
    CATEGORY,
    "How many candles ago the condition was last true: 0 on a candle where it is true, 1 "
    "on the next, and so on. Undefined before it was first true.",
    (condition("condition", "the event to measure from"),),
    _bars_since,
    const(0),
    example="fresh_cross: bars_since(crossed_above(close, ema(close, 20))) < 6",
    stream=stream.from_constants(_BarsSinceStream),
    unit=Unit.COUNT,
)

define(
    "latch",
    CATEGORY,
    "A switch with memory. It starts off. It switches on at a candle where `set` is true "
    "and stays on until a later candle where `reset` is true; on that candle it is already "
    "off. When `set` and `reset` are both true on the same candle, the switch turns on if "
    "it was off and off if it was on. Its state depends on all earlier candles, so it can "
    "differ depending on where the data starts.",
    (
        condition("set", "what turns the switch on"),
        condition("reset", "what turns it off again"),
    ),
    _latch,
    const(0),
    returns="bool",
    example="armed: latch(rsi(close, 14) < 25, rsi(close, 14) > 50)",
    stream=stream.from_constants(_LatchStream),
    unit=Unit.BOOL,
)

define(
    "rising",
    CATEGORY,
    "True when the value is higher than `periods` candles ago.",
    (source(), whole("periods", "how many candles back to compare with", 1)),
    _rising,
    of("periods"),
    returns="bool",
    example="ema_up: rising(ema(close, 50), 3)",
    stream=stream.replayed(_rising, stream.window_and_one),
    unit=Unit.BOOL,
)

define(
    "falling",
    CATEGORY,
    "True when the value is lower than `periods` candles ago.",
    (source(), whole("periods", "how many candles back to compare with", 1)),
    _falling,
    of("periods"),
    returns="bool",
    example="volume_fading: falling(mean(volume, 6), 6)",
    stream=stream.replayed(_falling, stream.window_and_one),
    unit=Unit.BOOL,
)

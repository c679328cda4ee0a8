"""Trend strength: adx, plus_di, minus_di (Wilder's directional movement)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from kinetic_rules.functions import _core as core
from kinetic_rules.functions import _stream as stream
from kinetic_rules.functions._define import define, period, times
from kinetic_rules.functions.registry import Array, StreamFactory
from kinetic_rules.units import Unit

CATEGORY = "trend"
_HLC = ("high", "low", "close")


def _smoothed_sum(moves: core.Floats, n: int, candles: int) -> core.Floats:
    """Wilder's running sum as TA-Lib keeps it, divided by n (ratios are unchanged).

    `moves` starts at the second candle. TA-Lib seeds with the sum of the first
    n − 1 moves, then each candle keeps (n − 1)/n of the sum and adds the move.
    """
    out = core.nans(candles)
    if candles and len(moves) >= n:
        seed = float(np.sum(moves[: n - 1])) / n
        out[n:] = core.ewm_from(seed, moves[n - 1 :], core.wilder_alpha(n))[1:]
    return out


def _directional(
    high: core.Floats, low: core.Floats, close: core.Floats, n: int
) -> tuple[core.Floats, core.Floats]:
    """+DI and −DI over NaN-free candles, in percent of the smoothed true range."""
    up = np.diff(high)
    down = -np.diff(low)
    plus_dm = np.where((up > 0) & (up > down), up, 0.0)
    minus_dm = np.where((down > 0) & (down > up), down, 0.0)
    candles = len(close)
    tr = _smoothed_sum(core.true_range(high, low, close)[1:], n, candles)
    plus = 100.0 * core.divide(_smoothed_sum(plus_dm, n, candles), tr)
    minus = 100.0 * core.divide(_smoothed_sum(minus_dm, n, candles), tr)
    return plus, minus


def _adx_valid(high: core.Floats, low: core.Floats, close: core.Floats, n: int) -> core.Floats:
    plus, minus = _directional(high, low, close, n)
    dx = 100.0 * core.divide(np.abs(plus - minus), plus + minus)
    out = core.nans(len(close))
    if len(close) > n:
        out[n:] = core.wilder(dx[n:], n)  # a candle without direction (0/0) is skipped
    return out


def _hlc(high: Array, low: Array, close: Array) -> list[core.Floats]:
    return core.floats(high, low, close)


def _adx(high: Array, low: Array, close: Array, n: int) -> Array:
    return core.on_valid(lambda h, lo, c: _adx_valid(h, lo, c, n), *_hlc(high, low, close))


def _plus_di(high: Array, low: Array, close: Array, n: int) -> Array:
    return core.on_valid(lambda h, lo, c: _directional(h, lo, c, n)[0], *_hlc(high, low, close))


def _minus_di(high: Array, low: Array, close: Array, n: int) -> Array:
    return core.on_valid(lambda h, lo, c: _directional(h, lo, c, n)[1], *_hlc(high, low, close))


DirectionalPart = Literal["adx", "plus", "minus"]


class _DirectionalStream:
    """`_directional` and `_adx_valid` as a stream (defined candles only): the moves of
    each new candle against the one before, Wilder's running sums carried on."""

    def __init__(self, n: int, part: DirectionalPart) -> None:
        self._part = part
        self._high, self._low, self._close = stream.Previous(), stream.Previous(), stream.Previous()
        self._tr, self._plus, self._minus = (stream.SmoothedSum(n) for _ in range(3))
        self._adx = stream.OnValid(stream.SeededEma(n, core.wilder_alpha(n)))

    def __call__(self, high: core.Floats, low: core.Floats, close: core.Floats) -> core.Floats:
        skip = 1 if self._close.first_chunk(close) else 0  # the very first candle has no move
        prev_high, prev_low = self._high.before(high), self._low.before(low)
        prev_close = self._close.before(close)
        up = (high - prev_high)[skip:]
        down = -(low - prev_low)[skip:]
        plus_dm = np.where((up > 0) & (up > down), up, 0.0)
        minus_dm = np.where((down > 0) & (down > up), down, 0.0)
        h, lo, pc = high[skip:], low[skip:], prev_close[skip:]
        ranges = np.maximum(h - lo, np.maximum(np.abs(pc - h), np.abs(pc - lo)))
        tr = self._tr(ranges)
        plus = core.nans(len(close))
        minus = core.nans(len(close))
        plus[skip:] = 100.0 * core.divide(self._plus(plus_dm), tr)
        minus[skip:] = 100.0 * core.divide(self._minus(minus_dm), tr)
        if self._part == "plus":
            return plus
        if self._part == "minus":
            return minus
        dx = 100.0 * core.divide(np.abs(plus - minus), plus + minus)
        return self._adx(dx)


def _directional_stream(part: DirectionalPart) -> StreamFactory:
    return stream.from_constants(lambda n: stream.OnValid(_DirectionalStream(n, part)))


define(
    "adx",
    CATEGORY,
    "Average directional index: how strong the trend is, up or down alike, from 0 (no "
    "trend) to 100. Above about 25 is usually read as trending. Wilder's definition, as "
    "in TA-Lib; it is smoothed twice, hence the long warm-up.",
    (period(14, "how many candles each smoothing spans"),),
    _adx,
    times("period", 6),
    inputs=_HLC,
    talib="ADX",
    example="trending: adx() > 25",
    stream=_directional_stream("adx"),
    unit=Unit.POINTS,
)

define(
    "plus_di",
    CATEGORY,
    "Plus directional indicator: how much of the recent price range was upward movement, "
    "in percent. Compare it with minus_di to tell the trend's direction.",
    (period(14, "how many candles the smoothing spans"),),
    _plus_di,
    times("period", 3),
    inputs=_HLC,
    talib="PLUS_DI",
    example="up_trend: plus_di() > minus_di()",
    stream=_directional_stream("plus"),
    unit=Unit.POINTS,
)

define(
    "minus_di",
    CATEGORY,
    "Minus directional indicator: how much of the recent price range was downward "
    "movement, in percent.",
    (period(14, "how many candles the smoothing spans"),),
    _minus_di,
    times("period", 3),
    inputs=_HLC,
    talib="MINUS_DI",
    example="down_trend: minus_di(14) > plus_di(14)",
    stream=_directional_stream("minus"),
    unit=Unit.POINTS,
)

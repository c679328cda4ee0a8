"""Volatility: atr, true_range, Bollinger bands, Keltner channels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kinetic_rules.functions import _core as core
from kinetic_rules.functions import _stream as stream
from kinetic_rules.functions._define import (
    Warmup,
    const,
    define,
    number,
    of,
    period,
    size,
    source,
    times,
    whole,
)
from kinetic_rules.functions._windows import restart_exactly, rolling_var
from kinetic_rules.functions.registry import Array, ConstArgs, StreamFactory
from kinetic_rules.units import Unit

CATEGORY = "volatility"
_HLC = ("high", "low", "close")


def _true_range(high: Array, low: Array, close: Array) -> Array:
    # Not on_valid: a missing candle must not make the next range reach back past it.
    return core.true_range(*core.floats(high, low, close))


def _atr(high: Array, low: Array, close: Array, n: int) -> Array:
    h, lo, c = core.floats(high, low, close)
    return core.atr(h, lo, c, n)


def _bands(x: Array, n: int, deviations: float) -> tuple[core.Floats, core.Floats]:
    """(middle, half-width) of TA-Lib BBANDS: SMA ± deviations × population std."""
    (values,) = core.floats(x)
    return core.sma(values, n), deviations * np.sqrt(rolling_var(values, n))


def _bb_upper(x: Array, n: int, deviations: float) -> Array:
    middle, half = _bands(x, n, deviations)
    return middle + half


def _bb_middle(x: Array, n: int, deviations: float) -> Array:
    (values,) = core.floats(x)
    return core.sma(values, n)  # the spread is not needed


def _bb_lower(x: Array, n: int, deviations: float) -> Array:
    middle, half = _bands(x, n, deviations)
    return middle - half


def _bb_width(x: Array, n: int, deviations: float) -> Array:
    middle, half = _bands(x, n, deviations)
    return core.divide(2.0 * half, middle)


def _keltner(
    high: Array, low: Array, close: Array, n: int, multiplier: float, atr_n: int
) -> tuple[core.Floats, core.Floats]:
    h, lo, c = core.floats(high, low, close)
    return core.ema(c, n), multiplier * core.atr(h, lo, c, atr_n)


def _keltner_upper(
    high: Array, low: Array, close: Array, n: int, multiplier: float, atr_n: int
) -> Array:
    middle, half = _keltner(high, low, close, n, multiplier, atr_n)
    return middle + half


def _keltner_middle(
    high: Array, low: Array, close: Array, n: int, multiplier: float, atr_n: int
) -> Array:
    return _keltner(high, low, close, n, multiplier, atr_n)[0]


def _keltner_lower(
    high: Array, low: Array, close: Array, n: int, multiplier: float, atr_n: int
) -> Array:
    middle, half = _keltner(high, low, close, n, multiplier, atr_n)
    return middle - half


Combine = Callable[[core.Floats, core.Floats], core.Floats]  # (middle, half-width) -> line


class _BandsStream:
    """Bollinger bands as a stream: pandas' rolling mean carried on, the spread replayed."""

    def __init__(self, n: int, deviations: float, combine: Combine) -> None:
        self._middle = stream.RollingSum(n, mean=True)
        self._var = stream.Replay(lambda x: rolling_var(x, n), restart_exactly(n))
        self._deviations, self._combine = deviations, combine

    def __call__(self, x: Array) -> core.Floats:
        (values,) = core.floats(x)
        half = self._deviations * np.sqrt(self._var(values))
        return self._combine(self._middle(values), half)


def _bands_stream(combine: Combine) -> StreamFactory:
    return stream.from_constants(lambda n, deviations: _BandsStream(n, deviations, combine))


class _KeltnerStream:
    def __init__(self, n: int, multiplier: float, atr_n: int, combine: Combine) -> None:
        self._middle, self._atr = stream.ema(n), stream.atr(atr_n)
        self._multiplier, self._combine = multiplier, combine

    def __call__(self, high: Array, low: Array, close: Array) -> core.Floats:
        h, lo, c = core.floats(high, low, close)
        return self._combine(self._middle(c), self._multiplier * self._atr(h, lo, c))


def _keltner_stream(combine: Combine) -> StreamFactory:
    return stream.from_constants(
        lambda n, multiplier, atr_n: _KeltnerStream(n, multiplier, atr_n, combine)
    )


def _upper(middle: core.Floats, half: core.Floats) -> core.Floats:
    return middle + half


def _lower(middle: core.Floats, half: core.Floats) -> core.Floats:
    return middle - half


def _middle(middle: core.Floats, half: core.Floats) -> core.Floats:
    return middle


def _width(middle: core.Floats, half: core.Floats) -> core.Floats:
    return core.divide(2.0 * half, middle)


def _keltner_warmup(args: ConstArgs) -> int:
    """3 × the larger of period and atr_period"""
    return 3 * max(size(args, "period"), size(args, "atr_period"))


define(
    "true_range",
    CATEGORY,
    "True range: how far the price travelled in this candle, counting a gap from the "
    "previous close (the largest of high − low, |high − previous close| and "
    "|low − previous close|).",
    (),
    _true_range,
    const(1),
    inputs=_HLC,
    talib="TRANGE",
    example="wide_candle: true_range() > 2 * atr(14)",
    stream=stream.from_constants(lambda: stream.Replay(_true_range, stream.trailing(2))),
    unit=Unit.PRICE,
)

define(
    "atr",
    CATEGORY,
    "Average true range: the typical size of a candle's move lately, in price units. "
    "Wilder's smoothing of true_range, as in TA-Lib. Useful for stops: close − 2 * atr().",
    (period(14, "how many candles the smoothing spans"),),
    _atr,
    times("period", 3),
    inputs=_HLC,
    talib="ATR",
    example="calm: atr(14) / close < 1%",
    stream=stream.from_constants(stream.atr),
    unit=Unit.PRICE,
)

_BB_ARGS = (
    source(),
    period(20, "how many candles the average and the spread are measured over"),
    number(
        "deviations",
        "how many standard deviations the bands sit from the middle",
        2.0,
        0.0,
        maximum=100,
    ),
)
_bb_warmup: Warmup = of("period")

define(
    "bb_upper",
    CATEGORY,
    "Upper Bollinger band: the average plus `deviations` standard deviations of the last "
    "`period` values (population standard deviation, as TA-Lib BBANDS).",
    _BB_ARGS,
    _bb_upper,
    _bb_warmup,
    talib="BBANDS",
    example="breakout: close > bb_upper(close, 20, 2)",
    stream=_bands_stream(_upper),
    unit="source",
)

define(
    "bb_middle",
    CATEGORY,
    "Middle Bollinger band: the simple moving average of the last `period` values.",
    _BB_ARGS,
    _bb_middle,
    _bb_warmup,
    talib="BBANDS",
    example="above_middle: close > bb_middle(close)",
    stream=_bands_stream(_middle),
    unit="source",
)

define(
    "bb_lower",
    CATEGORY,
    "Lower Bollinger band: the average minus `deviations` standard deviations.",
    _BB_ARGS,
    _bb_lower,
    _bb_warmup,
    talib="BBANDS",
    example="stretched_down: close < bb_lower(close, 20, 2.5)",
    stream=_bands_stream(_lower),
    unit="source",
)

define(
    "bb_width",
    CATEGORY,
    "Bollinger band width: the distance between the upper and lower band divided by the "
    "middle band, (upper − lower) / middle, e.g. 0.04 when the bands are 4% of the price "
    "apart. Small values mean a quiet market.",
    _BB_ARGS,
    _bb_width,
    _bb_warmup,
    talib="BBANDS",
    example="squeeze: bb_width(close) < 2%",
    stream=_bands_stream(_width),
    unit=Unit.RATIO,
)

_KELTNER_ARGS = (
    period(20, "span of the middle line's exponential average, in candles"),
    number(
        "multiplier",
        "how many average true ranges the bands sit from the middle",
        2.0,
        0.0,
        maximum=100,
    ),
    whole("atr_period", "span of the average true range, in candles", 10),
)
_KELTNER_DEF = (
    " Definition (there is no TA-Lib function): middle = ema(close, period); upper and "
    "lower = middle ± multiplier × atr(atr_period)."
)

define(
    "keltner_upper",
    CATEGORY,
    "Upper Keltner channel: the average price plus a multiple of the average true range."
    + _KELTNER_DEF,
    _KELTNER_ARGS,
    _keltner_upper,
    _keltner_warmup,
    inputs=_HLC,
    example="breakout: close > keltner_upper(20, 2, 10)",
    stream=_keltner_stream(_upper),
    unit=Unit.PRICE,
)

define(
    "keltner_middle",
    CATEGORY,
    "Middle Keltner line: the exponential moving average of the close." + _KELTNER_DEF,
    _KELTNER_ARGS,
    _keltner_middle,
    _keltner_warmup,
    inputs=_HLC,
    example="above_middle: close > keltner_middle()",
    stream=_keltner_stream(_middle),
    unit=Unit.PRICE,
)

define(
    "keltner_lower",
    CATEGORY,
    "Lower Keltner channel: the average price minus a multiple of the average true range."
    + _KELTNER_DEF,
    _KELTNER_ARGS,
    _keltner_lower,
    _keltner_warmup,
    inputs=_HLC,
    example="stretched_down: close < keltner_lower()",
    stream=_keltner_stream(_lower),
    unit=Unit.PRICE,
)

"""Moving averages: ema, sma, wma."""

from __future__ import annotations

import numpy as np

from kinetic_rules.functions import _core as core
from kinetic_rules.functions import _stream as stream
from kinetic_rules.functions._define import define, of, period, source, times
from kinetic_rules.functions.registry import Array

CATEGORY = "moving averages"


def _ema(x: Array, n: int) -> Array:
    (values,) = core.floats(x)
    return core.ema(values, n)


def _sma(x: Array, n: int) -> Array:
    (values,) = core.floats(x)
    return core.sma(values, n)


def _wma(x: Array, n: int) -> Array:
    (values,) = core.floats(x)
    out = core.nans(len(values))
    if len(values) >= n:
        # np.convolve reverses the kernel, so the newest candle meets weight n.
        weights = np.arange(n, 0, -1, dtype=np.float64) / (n * (n + 1) / 2)
        out[n - 1 :] = np.convolve(values, weights, mode="valid")
    return out


define(
    "ema",
    CATEGORY,
    "Exponential moving average: a smoothed line that follows the price, giving recent "
    "candles more weight than older ones. It starts from the plain average of the first "
    "`period` values, as TA-Lib does.",
    (source(), period(None, "how many candles it averages over (its span)")),
    _ema,
    times("period", 3),
    talib="EMA",
    example="uptrend: close > ema(close, 200)",
    stream=stream.from_constants(stream.ema),
    unit="source",
)

define(
    "sma",
    CATEGORY,
    "Simple moving average: the plain average of the last `period` values.",
    (source(), period(None, "how many candles to average")),
    _sma,
    of("period"),
    talib="SMA",
    example="above_average: close > sma(close, 50)",
    stream=stream.from_constants(lambda n: stream.RollingSum(n, mean=True)),
    unit="source",
)

define(
    "wma",
    CATEGORY,
    "Weighted moving average: an average of the last `period` values where the newest "
    "counts `period` times, the one before `period − 1` times, down to 1 for the oldest.",
    (source(), period(None, "how many candles to average")),
    _wma,
    of("period"),
    talib="WMA",
    example="fast_above_slow: wma(close, 10) > wma(close, 30)",
    stream=stream.from_constants(lambda n: stream.Replay(lambda x: _wma(x, n), stream.trailing(n))),
    unit="source",
)

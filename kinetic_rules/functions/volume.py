"""Volume-weighted measures: obv and a rolling vwap."""

from __future__ import annotations

import numpy as np

from kinetic_rules.functions import _core as core
from kinetic_rules.functions._define import const, define, of, window
from kinetic_rules.functions.registry import Array

CATEGORY = "volume"


def _obv_valid(close: core.Floats, volume: core.Floats) -> core.Floats:
    steps = np.empty(len(close))
    if len(close):
        steps[0] = volume[0]  # TA-Lib starts the running total at the first volume
        steps[1:] = np.sign(np.diff(close)) * volume[1:]
    return np.cumsum(steps)  # sequential, so the sums round exactly like TA-Lib's


def _obv(close: Array, volume: Array) -> Array:
    return core.on_valid(_obv_valid, *core.floats(close, volume))


def _vwap(high: Array, low: Array, close: Array, volume: Array, w: int) -> Array:
    h, lo, c, v = core.floats(high, low, close, volume)
    typical = (h + lo + c) / 3.0
    weighted = core.to_floats(core.rolling(typical * v, w).sum())
    total = core.to_floats(core.rolling(v, w).sum())
    return core.divide(weighted, total)


define(
    "obv",
    CATEGORY,
    "On-balance volume: a running total that adds the candle's volume when the close "
    "rose and subtracts it when the close fell, as in TA-Lib. Its level depends on where "
    "the data starts, so compare it with its own average or its own past, not with a "
    "fixed number.",
    (),
    _obv,
    const(0),
    inputs=("close", "volume"),
    talib="OBV",
    example="accumulation: obv() > ema(obv(), 50)",
)

define(
    "vwap",
    CATEGORY,
    "Volume-weighted average price over the last `window` candles: the average typical "
    "price (high + low + close) / 3, each candle counting as much as its volume. It is "
    "rolling, not reset at the start of each day or session, so it behaves the same at "
    "every point of a backtest. Undefined when the window had no volume.",
    (window("window", "how many candles, or how long, e.g. 24h"),),
    _vwap,
    of("window"),
    inputs=("high", "low", "close", "volume"),
    example="above_vwap: close > vwap(24h)",
)

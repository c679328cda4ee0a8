"""Volume-weighted measures: obv and a rolling vwap."""

from __future__ import annotations

import numpy as np

from kinetic_rules.functions import _core as core
from kinetic_rules.functions import _stream as stream
from kinetic_rules.functions._define import const, define, of, window
from kinetic_rules.functions.registry import Array
from kinetic_rules.units import Unit

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


class _ObvStream:
    """`_obv_valid` as a stream (defined candles only): the running total carried on."""

    def __init__(self) -> None:
        self._close = stream.Previous()
        self._total = 0.0

    def __call__(self, close: core.Floats, volume: core.Floats) -> core.Floats:
        first = self._close.first_chunk(close)
        steps = np.sign(close - self._close.before(close)) * volume
        if not len(steps):
            return steps
        if first:
            steps[0] = volume[0]
            out = np.cumsum(steps)
        else:  # cumsum adds in order: starting from the last total continues it bit for bit
            out = np.cumsum(np.concatenate(([self._total], steps)))[1:]
        self._total = float(out[-1])
        return out


class _VwapStream:
    """The two rolling sums of vwap, carried on as pandas would."""

    def __init__(self, w: int) -> None:
        self._weighted = stream.RollingSum(w, mean=False)
        self._total = stream.RollingSum(w, mean=False)

    def __call__(self, high: Array, low: Array, close: Array, volume: Array) -> core.Floats:
        h, lo, c, v = core.floats(high, low, close, volume)
        typical = (h + lo + c) / 3.0
        return core.divide(self._weighted(typical * v), self._total(v))


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
    stream=stream.from_constants(lambda: stream.OnValid(_ObvStream())),
    unit=Unit.VOLUME,
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
    stream=stream.from_constants(_VwapStream),
    unit=Unit.PRICE,
)

"""Statistics over a trailing window, and changes against an earlier candle."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kinetic_rules.functions import _core as core
from kinetic_rules.functions import _stream as stream
from kinetic_rules.functions._define import define, of, series, source, whole, window
from kinetic_rules.functions._windows import (
    restart_exactly,
    rolling_corr,
    rolling_mean_dev,
    rolling_var,
)
from kinetic_rules.functions.registry import Array, StreamFactory
from kinetic_rules.units import Unit

CATEGORY = "rolling statistics"
_WINDOW = window("window", "how many candles, or how long, e.g. 50 or 24h")
_PERIODS = whole("periods", "how many candles back to compare with", 1)


def _mean(x: Array, w: int) -> Array:
    (values,) = core.floats(x)
    return core.sma(values, w)


def _sum(x: Array, w: int) -> Array:
    (values,) = core.floats(x)
    return core.to_floats(core.rolling(values, w).sum())


def _lowest(x: Array, w: int) -> Array:
    (values,) = core.floats(x)
    return core.to_floats(core.rolling(values, w).min())


def _highest(x: Array, w: int) -> Array:
    (values,) = core.floats(x)
    return core.to_floats(core.rolling(values, w).max())


def _std(x: Array, w: int) -> Array:
    (values,) = core.floats(x)
    return np.sqrt(rolling_var(values, w))


def _zscore(x: Array, w: int) -> Array:
    (values,) = core.floats(x)
    dev, var = rolling_mean_dev(values, w)
    return core.divide(dev, np.sqrt(var))


def _percentile_rank(x: Array, w: int) -> Array:
    (values,) = core.floats(x)
    # rank "max" counts the values ≤ the current one; pct divides by the window size.
    ranks = core.rolling(values, w).rank(method="max", pct=True)
    return 100.0 * core.to_floats(ranks)


def _correlation(a: Array, b: Array, w: int) -> Array:
    x, y = core.floats(a, b)
    return rolling_corr(x, y, w)


def _change(x: Array, periods: int) -> Array:
    (values,) = core.floats(x)
    return values - core.shifted(values, periods)


def _pct_change(x: Array, periods: int) -> Array:
    (values,) = core.floats(x)
    before = core.shifted(values, periods)
    return core.divide(values - before, before)


def _log_return(x: Array, periods: int) -> Array:
    (values,) = core.floats(x)
    before = core.shifted(values, periods)
    ratio = core.divide(values, before)
    positive = (values > 0) & (before > 0) & (ratio > 0)
    out = core.nans(len(values))
    out[positive] = np.log(ratio[positive])
    return out


def _exactly(impl: Callable[..., Array]) -> StreamFactory:
    """A stream for the accurate rolling moments: replayed from where they stay exact."""
    return stream.from_constants(
        lambda n: stream.Replay(lambda *x: impl(*x, n), restart_exactly(n))
    )


define(
    "mean",
    CATEGORY,
    "Average of the last `window` values (the same as sma, but the window may be a "
    "duration such as 24h).",
    (source(), _WINDOW),
    _mean,
    of("window"),
    talib="SMA",
    example="busy: volume > 2 * mean(volume, 24h)",
    stream=stream.from_constants(lambda n: stream.RollingSum(n, mean=True)),
    unit="source",
)

define(
    "sum",
    CATEGORY,
    "Total of the last `window` values.",
    (source(), _WINDOW),
    _sum,
    of("window"),
    talib="SUM",
    example="heavy_day: sum(volume, 24h) > 1000000",
    stream=stream.from_constants(lambda n: stream.RollingSum(n, mean=False)),
    unit="source",
)

define(
    "lowest",
    CATEGORY,
    "Lowest of the last `window` values, the current one included.",
    (source(), _WINDOW),
    _lowest,
    of("window"),
    talib="MIN",
    example="new_low: low <= lowest(low, 7d)",
    stream=stream.replayed(_lowest, stream.window),
    unit="source",
)

define(
    "highest",
    CATEGORY,
    "Highest of the last `window` values, the current one included. To compare with the "
    "high before this candle write highest(high, 20)[1].",
    (source(), _WINDOW),
    _highest,
    of("window"),
    talib="MAX",
    example="breakout: close > highest(high, 20)[1]",
    stream=stream.replayed(_highest, stream.window),
    unit="source",
)

define(
    "std",
    CATEGORY,
    "Standard deviation of the last `window` values: how spread out they are, in the "
    "same units. Population standard deviation (dividing by the window size), as TA-Lib "
    "STDDEV.",
    (source(), _WINDOW),
    _std,
    of("window"),
    talib="STDDEV",
    example="quiet: std(close, 24h) / close < 1%",
    stream=_exactly(_std),
    unit="source",
)

define(
    "zscore",
    CATEGORY,
    "Z-score: how many standard deviations the current value is above (positive) or "
    "below (negative) the average of the last `window` values, (value − mean) / std with "
    "the population standard deviation. Undefined while the window is flat.",
    (source(), _WINDOW),
    _zscore,
    of("window"),
    example="stretched: zscore(close, 100) < -2",
    stream=_exactly(_zscore),
    unit=Unit.NUMBER,
)

define(
    "percentile_rank",
    CATEGORY,
    "Percentile rank, 0–100: the percentage of the last `window` values (the current one "
    "included) that are less than or equal to the current value. 100 means the highest "
    "of the window; the smallest possible value is 100 / window.",
    (source(), _WINDOW),
    _percentile_rank,
    of("window"),
    example="cheap_volatility: percentile_rank(atr(14), 30d) < 20",
    stream=stream.replayed(_percentile_rank, stream.window),
    unit=Unit.POINTS,
)

define(
    "correlation",
    CATEGORY,
    "Correlation of two series over the last `window` candles, from −1 (opposite moves) "
    "through 0 (unrelated) to 1 (moving together). Pearson's coefficient, as TA-Lib "
    "CORREL. Undefined while either series is flat.",
    (series("a", "the first series"), series("b", "the second series"), _WINDOW),
    _correlation,
    of("window"),
    talib="CORREL",
    example="follows_btc: correlation(close, close[BTC/USDT], 7d) > 0.8",
    stream=_exactly(_correlation),
    unit=Unit.RATIO,
)

define(
    "change",
    CATEGORY,
    "Change: the current value minus the value `periods` candles ago, in the value's units.",
    (source(), _PERIODS),
    _change,
    of("periods"),
    talib="MOM",
    example="rsi_rising: change(rsi(close, 14), 3) > 10",
    stream=stream.replayed(_change, stream.window_and_one),
    unit="source",
)

define(
    "pct_change",
    CATEGORY,
    "Percent change as a fraction: (value − value `periods` candles ago) / that earlier "
    "value, so 0.05 means +5%. Compare it with a percentage literal such as 5%.",
    (source(), _PERIODS),
    _pct_change,
    of("periods"),
    talib="ROCP",
    example="jump: pct_change(close, 12) > 3%",
    stream=stream.replayed(_pct_change, stream.window_and_one),
    unit=Unit.RATIO,
)

define(
    "log_return",
    CATEGORY,
    "Logarithmic return: the natural logarithm of value / value `periods` candles ago. "
    "Close to pct_change for small moves, and log returns add up over time. Undefined "
    "unless both values are positive.",
    (source(), _PERIODS),
    _log_return,
    of("periods"),
    example="volatile: std(log_return(close), 24h) > 0.01",
    stream=stream.replayed(_log_return, stream.window_and_one),
    unit=Unit.RATIO,
)

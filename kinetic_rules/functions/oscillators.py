"""Oscillators: rsi, roc, macd (line, signal, histogram), stochastic %K and %D."""

from __future__ import annotations

from typing import Literal

import numpy as np

from kinetic_rules.functions import _core as core
from kinetic_rules.functions import _stream as stream
from kinetic_rules.functions._define import (
    Warmup,
    define,
    of,
    period,
    size,
    source,
    times,
    whole,
)
from kinetic_rules.functions.registry import Array, ConstArgs, StreamFactory
from kinetic_rules.units import Unit

CATEGORY = "oscillators"


def _rsi_valid(x: core.Floats, n: int) -> core.Floats:
    out = core.nans(len(x))
    if len(x) <= n:
        return out
    change = np.diff(x)
    alpha = core.wilder_alpha(n)
    gain = core.seeded_ema(np.maximum(change, 0.0), n, alpha)[n - 1 :]
    loss = core.seeded_ema(np.maximum(-change, 0.0), n, alpha)[n - 1 :]
    # No movement at all in the seed makes the ratio 0/0: NaN, where TA-Lib says 0.
    out[n:] = 100.0 * core.divide(gain, gain + loss)
    return out


def _rsi(x: Array, n: int) -> Array:
    (values,) = core.floats(x)
    return core.on_valid(lambda v: _rsi_valid(v, n), values)


def _roc(x: Array, n: int) -> Array:
    (values,) = core.floats(x)
    # Scale before dividing: (x − x[n]) · 100 / x[n] cannot overflow where the ratio is finite.
    previous = core.shifted(values, n)
    with np.errstate(over="ignore", invalid="ignore"):
        moved = (values - previous) * 100.0
    return core.divide(moved, previous)


def _macd_parts(x: core.Floats, fast: int, slow: int, signal: int) -> tuple[core.Floats, ...]:
    """MACD line and signal over NaN-free values, seeded exactly like TA-Lib.

    TA-Lib starts both averages on the same candle: the fast one is seeded with
    the mean of the `fast` values ending where the slow seed ends, not at the
    start of the data, so TA-Lib's MACD is not EMA(fast) − EMA(slow) early on.
    """
    fast, slow = min(fast, slow), max(fast, slow)
    n = len(x)
    line, sig = core.nans(n), core.nans(n)
    if n < slow:
        return line, sig
    slow_ema = core.ewm_from(float(np.mean(x[:slow])), x[slow:], core.ema_alpha(slow))
    fast_ema = core.ewm_from(float(np.mean(x[slow - fast : slow])), x[slow:], core.ema_alpha(fast))
    line[slow - 1 :] = fast_ema - slow_ema
    sig[slow - 1 :] = core.seeded_ema(line[slow - 1 :], signal, core.ema_alpha(signal))
    return line, sig


def _macd(x: Array, fast: int, slow: int, signal: int) -> Array:
    (values,) = core.floats(x)
    return core.on_valid(lambda v: _macd_parts(v, fast, slow, signal)[0], values)


def _macd_signal(x: Array, fast: int, slow: int, signal: int) -> Array:
    (values,) = core.floats(x)
    return core.on_valid(lambda v: _macd_parts(v, fast, slow, signal)[1], values)


def _macd_hist(x: Array, fast: int, slow: int, signal: int) -> Array:
    (values,) = core.floats(x)

    def hist(v: core.Floats) -> core.Floats:
        line, sig = _macd_parts(v, fast, slow, signal)
        return line - sig

    return core.on_valid(hist, values)


def _fast_k(high: core.Floats, low: core.Floats, close: core.Floats, k: int) -> core.Floats:
    highest = core.to_floats(core.rolling(high, k).max())
    lowest = core.to_floats(core.rolling(low, k).min())
    # A flat range makes %K 0/0: NaN, where TA-Lib says 0 (which would read as oversold).
    return core.divide(close - lowest, (highest - lowest) / 100.0)


def _stoch_k(high: Array, low: Array, close: Array, k: int, smooth_k: int) -> Array:
    h, lo, c = core.floats(high, low, close)
    return core.sma(_fast_k(h, lo, c, k), smooth_k)


def _stoch_d(high: Array, low: Array, close: Array, k: int, smooth_k: int, d: int) -> Array:
    return core.sma(_stoch_k(high, low, close, k, smooth_k), d)


class _RsiStream:
    """`_rsi_valid` as a stream: the previous value, and Wilder averages of gains and losses."""

    def __init__(self, n: int) -> None:
        self._previous = stream.Previous()
        self._gain = stream.SeededEma(n, core.wilder_alpha(n))
        self._loss = stream.SeededEma(n, core.wilder_alpha(n))

    def __call__(self, x: core.Floats) -> core.Floats:
        first = self._previous.first_chunk(x)
        change = (x - self._previous.before(x))[1 if first else 0 :]
        gain = self._gain(np.maximum(change, 0.0))
        loss = self._loss(np.maximum(-change, 0.0))
        out = 100.0 * core.divide(gain, gain + loss)
        return np.concatenate(([np.nan], out)) if first else out


MacdPart = Literal["line", "signal", "hist"]


class _MacdStream:
    """`_macd_parts` as a stream (defined values only): both averages seeded together, as
    TA-Lib does, then stepped on; the signal line is a seeded average of the line."""

    def __init__(self, fast: int, slow: int, signal: int, part: MacdPart) -> None:
        self._fast, self._slow = min(fast, slow), max(fast, slow)
        self._signal = stream.SeededEma(signal, core.ema_alpha(signal))
        self._part = part
        self._early = np.empty(0)
        self._lasts: tuple[float, float] | None = None  # (fast, slow) averages
        self._seen = 0

    def __call__(self, x: core.Floats) -> core.Floats:
        fast, slow = self._fast, self._slow
        fast_alpha, slow_alpha = core.ema_alpha(fast), core.ema_alpha(slow)
        line = core.nans(len(x))
        if self._lasts is None:
            values = np.concatenate((self._early, x))
            if len(values) >= slow:
                slow_ema = core.ewm_from(float(np.mean(values[:slow])), values[slow:], slow_alpha)
                seed = float(np.mean(values[slow - fast : slow]))
                fast_ema = core.ewm_from(seed, values[slow:], fast_alpha)
                whole = core.nans(len(values))
                whole[slow - 1 :] = fast_ema - slow_ema
                line = whole[len(self._early) :]
                self._lasts = (float(fast_ema[-1]), float(slow_ema[-1]))
            else:
                self._early = values
        elif len(x):
            fast_ema = stream.ewm_steps(self._lasts[0], x, fast_alpha)
            slow_ema = stream.ewm_steps(self._lasts[1], x, slow_alpha)
            line = fast_ema - slow_ema
            self._lasts = (float(fast_ema[-1]), float(slow_ema[-1]))
        defined = max(0, slow - 1 - self._seen)  # the line starts at candle slow − 1
        self._seen += len(x)
        sig = core.nans(len(x))
        sig[defined:] = self._signal(line[defined:])
        if self._part == "line":
            return line
        return sig if self._part == "signal" else line - sig


def _macd_stream(part: MacdPart) -> StreamFactory:
    return stream.from_constants(
        lambda fast, slow, signal: stream.OnValid(_MacdStream(fast, slow, signal, part))
    )


class _StochStream:
    """%K: the trailing range (replayed), then pandas' rolling means carried on; %D: once more."""

    def __init__(self, k: int, smooth_k: int, d: int | None = None) -> None:
        self._fast = stream.Replay(lambda h, lo, c: _fast_k(h, lo, c, k), stream.trailing(k))
        self._smooth = stream.RollingSum(smooth_k, mean=True)
        self._d = stream.RollingSum(d, mean=True) if d is not None else None

    def __call__(self, high: Array, low: Array, close: Array) -> core.Floats:
        out = self._smooth(self._fast(*core.floats(high, low, close)))
        return self._d(out) if self._d is not None else out


def _macd_warmup(with_signal: bool) -> Warmup:
    def warmup(args: ConstArgs) -> int:
        slow = max(size(args, "fast"), size(args, "slow"))
        extra = 3 * size(args, "signal") if with_signal else 0
        return 3 * slow + extra

    warmup.__doc__ = "3 × slow + 3 × signal" if with_signal else "3 × slow"
    return warmup


def _sum_of(*names: str) -> Warmup:
    def warmup(args: ConstArgs) -> int:
        return sum(size(args, n) for n in names)

    warmup.__doc__ = " + ".join(names)
    return warmup


define(
    "rsi",
    CATEGORY,
    "Relative strength index: how strongly the price moved up versus down lately, from 0 "
    "(only falls) to 100 (only rises). Uses Wilder's smoothing, as TA-Lib does. Undefined "
    "while the price has not moved at all.",
    (source(), period(14, "how many candles the smoothing spans")),
    _rsi,
    times("period", 3),
    talib="RSI",
    example="oversold: rsi(close, 14) < 30",
    stream=stream.from_constants(lambda n: stream.OnValid(_RsiStream(n))),
    unit=Unit.POINTS,
)

define(
    "roc",
    CATEGORY,
    "Rate of change: how many percent the value rose (positive) or fell (negative) "
    "compared with `period` candles ago, in percent points (5 means +5%).",
    (source(), period(10, "how many candles ago to compare with")),
    _roc,
    of("period"),
    talib="ROC",
    example="momentum: roc(close, 12) > 2",
    stream=stream.from_constants(
        lambda n: stream.Replay(lambda x: _roc(x, n), stream.trailing(n + 1))
    ),
    unit=Unit.PERCENT,
)

_MACD_ARGS = (
    source(),
    whole("fast", "span of the fast average, in candles", 12),
    whole("slow", "span of the slow average, in candles", 26),
    whole("signal", "span of the signal line's average of the MACD line", 9),
)

define(
    "macd",
    CATEGORY,
    "MACD line: the fast exponential average minus the slow one. Positive when the recent "
    "trend is up. Both averages start on the same candle, as in TA-Lib.",
    _MACD_ARGS,
    _macd,
    _macd_warmup(False),
    talib="MACD",
    example="bullish: macd(close) > macd_signal(close)",
    stream=_macd_stream("line"),
    unit="source",
)

define(
    "macd_signal",
    CATEGORY,
    "MACD signal line: an exponential average of the MACD line, slower to turn.",
    _MACD_ARGS,
    _macd_signal,
    _macd_warmup(True),
    talib="MACD",
    example="bullish: macd(close, 12, 26, 9) > macd_signal(close, 12, 26, 9)",
    stream=_macd_stream("signal"),
    unit="source",
)

define(
    "macd_hist",
    CATEGORY,
    "MACD histogram: the MACD line minus its signal line; crosses zero when they cross.",
    _MACD_ARGS,
    _macd_hist,
    _macd_warmup(True),
    talib="MACD",
    example="turning_up: crossed_above(macd_hist(close), 0)",
    stream=_macd_stream("hist"),
    unit="source",
)

_STOCH_ARGS = (
    whole("k_period", "how many candles the high-low range spans", 14),
    whole("smooth_k", "how many candles %K is averaged over", 3),
)

define(
    "stoch_k",
    CATEGORY,
    "Stochastic %K: where the close sits in the high-low range of the last `k_period` "
    "candles, 0 (at the low) to 100 (at the high), averaged over `smooth_k` candles. "
    "Undefined while that range is flat.",
    _STOCH_ARGS,
    _stoch_k,
    _sum_of("k_period", "smooth_k"),
    inputs=("high", "low", "close"),
    talib="STOCH",
    example="oversold: stoch_k() < 20",
    stream=stream.from_constants(_StochStream),
    unit=Unit.POINTS,
)

define(
    "stoch_d",
    CATEGORY,
    "Stochastic %D: %K averaged once more over `d_period` candles, a slower line.",
    (*_STOCH_ARGS, whole("d_period", "how many candles %D averages %K over", 3)),
    _stoch_d,
    _sum_of("k_period", "smooth_k", "d_period"),
    inputs=("high", "low", "close"),
    talib="STOCH",
    example="turning_up: crossed_above(stoch_k(), stoch_d())",
    stream=stream.from_constants(_StochStream),
    unit=Unit.POINTS,
)

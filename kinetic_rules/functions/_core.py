"""Numeric building blocks shared by the function families.

Everything here is vectorized: the engine runs each function once per pair over
the whole history, so a Python loop over candles would dominate a backtest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


def floats(*values: Any) -> list[Floats]:
    """Float64 arrays of one common shape, so a constant may stand in for a series."""
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    if len(arrays) > 1 and len({a.shape for a in arrays}) > 1:
        arrays = [np.ascontiguousarray(a) for a in np.broadcast_arrays(*arrays)]
    return arrays


def bools(*values: Any) -> list[Bools]:
    """Bool arrays of one common shape; a float condition counts as true only where non-zero."""
    arrays: list[Bools] = []
    for value in values:
        a = np.asarray(value)
        if a.dtype != np.bool_:
            a = np.asarray(a, dtype=np.float64)
            with np.errstate(invalid="ignore"):
                a = (a == a) & (a != 0)  # NaN (undefined) counts as false
        arrays.append(a)
    if len(arrays) > 1 and len({a.shape for a in arrays}) > 1:
        arrays = [np.ascontiguousarray(a) for a in np.broadcast_arrays(*arrays)]
    return arrays


def nans(n: int) -> Floats:
    return np.full(n, np.nan)


def on_valid(fn: Callable[..., Floats], *arrays: Floats) -> Floats:
    """Run a recursive computation over the candles where every input is defined.

    A NaN (a nested indicator still warming up, a division by zero) neither
    poisons the recursion for ever, as it would in TA-Lib, nor restarts it: the
    candle is skipped and its output is NaN. With no NaN this is a plain call.
    """
    valid = ~np.isnan(arrays[0])
    for a in arrays[1:]:
        valid &= ~np.isnan(a)
    if valid.all():
        return fn(*arrays)
    out = nans(len(valid))
    if valid.any():
        out[valid] = fn(*(a[valid] for a in arrays))
    return out


def ewm_from(seed: float, rest: Floats, alpha: float) -> Floats:
    """y0 = seed, then y = (1 − alpha)·y_prev + alpha·x over `rest`; returns [y0, y1, …]."""
    values = np.empty(len(rest) + 1)
    values[0] = seed
    values[1:] = rest
    series = pd.Series(values, copy=False)
    return series.ewm(alpha=alpha, adjust=False).mean().to_numpy(dtype=np.float64)


def seeded_ema(x: Floats, period: int, alpha: float) -> Floats:
    """TA-Lib's seeding: the first value is the mean of the first `period`, NaN before."""
    n = len(x)
    out = nans(n)
    if n >= period:
        out[period - 1 :] = ewm_from(float(np.mean(x[:period])), x[period:], alpha)
    return out


def ema_alpha(period: int) -> float:
    return 2.0 / (period + 1)


def wilder_alpha(period: int) -> float:
    return 1.0 / period


def ema(x: Floats, period: int) -> Floats:
    return on_valid(lambda v: seeded_ema(v, period, ema_alpha(period)), x)


def wilder(x: Floats, period: int) -> Floats:
    return on_valid(lambda v: seeded_ema(v, period, wilder_alpha(period)), x)


def rolling(x: Floats, window: int) -> Any:
    """A pandas rolling window that is NaN until full and wherever it holds a NaN."""
    return pd.Series(x, copy=False).rolling(window, min_periods=window)


def to_floats(values: Any) -> Floats:
    return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def sma(x: Floats, period: int) -> Floats:
    return to_floats(rolling(x, period).mean())


def shifted(x: Floats, periods: int, fill: float = np.nan) -> Floats:
    """x[t − periods] at t; `fill` before the start."""
    out = np.full(len(x), fill, dtype=x.dtype)
    if periods < len(x):
        out[periods:] = x[: len(x) - periods]
    return out


def divide(num: Floats, den: Floats) -> Floats:
    """num / den, NaN where den is 0 (or the quotient overflows): nothing downstream sees inf."""
    with np.errstate(all="ignore"):
        out = np.asarray(np.divide(num, den), dtype=np.float64)
    out[np.isinf(out)] = np.nan
    return out


def true_range(high: Floats, low: Floats, close: Floats) -> Floats:
    """TA-Lib TRANGE: the bar's range widened to the previous close; NaN on the first bar."""
    prev = shifted(close, 1)
    tr = np.maximum(high - low, np.maximum(np.abs(prev - high), np.abs(prev - low)))
    if len(tr):
        tr[0] = np.nan
    return tr


def atr_valid(high: Floats, low: Floats, close: Floats, period: int) -> Floats:
    """TA-Lib ATR over NaN-free inputs: Wilder smoothing seeded with the mean range."""
    out = nans(len(close))
    tr = true_range(high, low, close)
    out[1:] = seeded_ema(tr[1:], period, wilder_alpha(period))
    return out


def atr(high: Floats, low: Floats, close: Floats, period: int) -> Floats:
    return on_valid(lambda h, lo, c: atr_valid(h, lo, c, period), high, low, close)

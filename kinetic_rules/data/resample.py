"""Build a coarser timeframe from a finer one, with closed-candle semantics.

A coarse candle exists only when every fine candle inside it is present, and so only
once its last fine candle has closed: an incomplete bucket, including the last one
of a series that is still filling, is dropped, never built from part of its data
(a 1h candle missing one 5m candle would show a wrong open, high or close). The
dropped buckets are reported by `resample_with_report`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kinetic_rules.data.candles import (
    bucket_origin_ns,
    candle_frame,
    check_canonical,
    is_quote_volume_estimated,
    mark_quote_volume,
    timeframe_ns,
    times_ns,
)
from kinetic_rules.errors import ConfigError


@dataclass(frozen=True)
class ResampleResult:
    frame: pd.DataFrame
    incomplete: pd.DatetimeIndex  # open times of the coarse buckets dropped as incomplete


def resample(frame: pd.DataFrame, from_timeframe: str, to_timeframe: str) -> pd.DataFrame:
    """Coarser candles from finer ones; incomplete buckets are dropped (see module doc)."""
    return resample_with_report(frame, from_timeframe, to_timeframe).frame


def resample_with_report(
    frame: pd.DataFrame, from_timeframe: str, to_timeframe: str
) -> ResampleResult:
    fine, coarse = timeframe_ns(from_timeframe), timeframe_ns(to_timeframe)
    if coarse < fine or coarse % fine:
        raise ConfigError(
            f"cannot build {to_timeframe} candles from {from_timeframe} candles: "
            f"{to_timeframe} is not a whole multiple of {from_timeframe}"
        )
    check_canonical(frame, f"{from_timeframe} candles to resample")
    if coarse == fine:
        return ResampleResult(frame.copy(), _no_times())
    times = times_ns(frame.index)
    if len(times) == 0:
        return ResampleResult(frame.copy(), _no_times())
    origin = bucket_origin_ns(to_timeframe)
    buckets = (times - origin) // coarse * coarse + origin
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(times)]
    complete = (ends - starts) == coarse // fine
    high = frame["high"].to_numpy()
    low = frame["low"].to_numpy()
    volume = frame["volume"].to_numpy()
    quote = frame["quote_volume"].to_numpy()
    result = candle_frame(
        buckets[starts][complete],
        frame["open"].to_numpy()[starts][complete],
        np.maximum.reduceat(high, starts)[complete],
        np.minimum.reduceat(low, starts)[complete],
        frame["close"].to_numpy()[ends - 1][complete],
        np.add.reduceat(volume, starts)[complete],
        np.add.reduceat(quote, starts)[complete],
    )
    mark_quote_volume(result, estimated=is_quote_volume_estimated(frame))
    dropped = pd.DatetimeIndex(
        pd.to_datetime(buckets[starts][~complete], unit="ns", utc=True), name="date"
    )
    return ResampleResult(result, dropped)


def _no_times() -> pd.DatetimeIndex:
    return pd.DatetimeIndex([], dtype="datetime64[ns, UTC]", name="date")

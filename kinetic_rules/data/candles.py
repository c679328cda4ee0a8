"""The canonical candle frame every stage agrees on.

One frame per pair and timeframe: float64 columns `open high low close volume
quote_volume`, indexed by a UTC `DatetimeIndex` named `date` holding candle OPEN
times, sorted, unique, closed candles only. Where the source had no quote volume it
is estimated as `volume * close`; `frame.attrs["quote_volume_estimated"]` says so, so
that every report showing it can call it an estimate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from kinetic_rules.errors import ConfigError, DataError
from kinetic_rules.timeframes import KNOWN_TIMEFRAMES, timeframe_seconds

PRICE_COLUMNS = ("open", "high", "low", "close")
COLUMNS = (*PRICE_COLUMNS, "volume", "quote_volume")
INDEX_NAME = "date"
ESTIMATED_ATTR = "quote_volume_estimated"

NS_PER_SECOND = 1_000_000_000
NS_PER_MS = 1_000_000

# Binance (and ccxt) open weekly candles on Monday 00:00 UTC; 1970-01-01 was a Thursday.
_WEEK_ORIGIN_NS = 4 * 86_400 * NS_PER_SECOND

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def timeframe_ns(timeframe: str) -> int:
    """Length of one candle in nanoseconds; ConfigError for a timeframe we cannot store."""
    try:
        return timeframe_seconds(timeframe) * NS_PER_SECOND
    except ValueError as error:
        raise ConfigError(str(error)) from None


def bucket_origin_ns(timeframe: str) -> int:
    """Where the candle grid of a timeframe starts: the epoch, except Monday for weeks."""
    return _WEEK_ORIGIN_NS if timeframe == "1w" else 0


def has_known_grid(timeframe: str) -> bool:
    """False for 3d, whose grid exchanges do not agree on; we neither check nor assume it."""
    return timeframe != "3d"


def check_timeframe(timeframe: str) -> str:
    if timeframe not in KNOWN_TIMEFRAMES:
        timeframe_ns(timeframe)  # raises the readable error
    return timeframe


def candle_frame(
    times_ns: IntArray,
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    volume: FloatArray,
    quote_volume: FloatArray | None = None,
) -> pd.DataFrame:
    """Build a canonical frame from columns; a missing quote volume is estimated and marked."""
    estimated = quote_volume is None
    if quote_volume is None:
        quote_volume = estimate_quote_volume(volume, close)
    index = pd.DatetimeIndex(
        pd.to_datetime(np.asarray(times_ns, dtype=np.int64), unit="ns", utc=True),
        name=INDEX_NAME,
    )
    columns = (open_, high, low, close, volume, quote_volume)
    data = {
        name: np.asarray(col, dtype=np.float64) for name, col in zip(COLUMNS, columns, strict=True)
    }
    frame = pd.DataFrame(data, index=index)
    return mark_quote_volume(frame, estimated=estimated)


def empty_candles(*, estimated: bool = False) -> pd.DataFrame:
    empty_f: FloatArray = np.empty(0, dtype=np.float64)
    empty_t: IntArray = np.empty(0, dtype=np.int64)
    frame = candle_frame(empty_t, empty_f, empty_f, empty_f, empty_f, empty_f, empty_f)
    return mark_quote_volume(frame, estimated=estimated)


def estimate_quote_volume(volume: FloatArray, close: FloatArray) -> FloatArray:
    """The only estimate we make: traded base volume valued at the candle's close."""
    return np.asarray(volume, dtype=np.float64) * np.asarray(close, dtype=np.float64)


def mark_quote_volume(frame: pd.DataFrame, *, estimated: bool) -> pd.DataFrame:
    frame.attrs[ESTIMATED_ATTR] = bool(estimated)
    return frame


def is_quote_volume_estimated(frame: pd.DataFrame) -> bool:
    return bool(frame.attrs.get(ESTIMATED_ATTR, False))


def times_ns(index: pd.Index) -> IntArray:
    """Open times as int64 nanoseconds since the epoch, whatever the index's unit."""
    dates = index if isinstance(index, pd.DatetimeIndex) else pd.DatetimeIndex(index)
    return np.asarray(dates.as_unit("ns").asi8, dtype=np.int64)


def check_canonical(frame: Any, what: str) -> pd.DataFrame:
    """Refuse a frame the store or resampler would silently misread."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{what}: expected a DataFrame of candles, got {type(frame).__name__}")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{what}: candle columns missing: {', '.join(missing)}")
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise DataError(f"{what}: the index must be a timezone-aware DatetimeIndex of open times")
    if str(index.tz) != "UTC":
        raise DataError(f"{what}: open times must be in UTC, not {index.tz}")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise DataError(f"{what}: open times must be sorted and unique")
    return frame


def canonical_copy(frame: pd.DataFrame) -> pd.DataFrame:
    """Exactly the canonical columns, float64, ns UTC index named `date`; keeps the flag."""
    estimated = is_quote_volume_estimated(frame)
    index = pd.DatetimeIndex(times_ns(frame.index), tz="UTC", name=INDEX_NAME)
    data = {c: frame[c].to_numpy(dtype=np.float64, copy=True) for c in COLUMNS}
    return mark_quote_volume(pd.DataFrame(data, index=index), estimated=estimated)


def format_time(ns: int | np.integer[Any]) -> str:
    """A candle time as users read it: `2024-03-01 10:05` (UTC, seconds only when present)."""
    stamp = pd.Timestamp(int(ns), unit="ns", tz="UTC")
    if stamp.second or stamp.microsecond:
        return stamp.strftime("%Y-%m-%d %H:%M:%S")
    return stamp.strftime("%Y-%m-%d %H:%M")

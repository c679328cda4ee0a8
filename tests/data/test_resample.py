from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.data.candles import bucket_origin_ns, candle_frame
from kinetic_rules.data.resample import resample, resample_with_report
from kinetic_rules.errors import ConfigError
from kinetic_rules.timeframes import timeframe_seconds
from tests.data.helpers import random_candles


def hourly_from(rows: list[tuple[str, float, float, float, float, float]]) -> pd.DataFrame:
    times = pd.DatetimeIndex([r[0] for r in rows], tz="UTC").as_unit("ns").asi8
    o, h, lo, c, v = (np.array([r[i] for r in rows], dtype=float) for i in range(1, 6))
    return candle_frame(times, o, h, lo, c, v, v * 2)


def test_one_hour_from_twelve_five_minute_candles_by_hand() -> None:
    rows = [
        (f"2024-01-01 00:{m:02d}", 10.0 + m, 20.0 + m, 5.0 + m, 11.0 + m, 1.0)
        for m in range(0, 60, 5)
    ]
    rows[4] = ("2024-01-01 00:20", 14.0, 99.0, 1.0, 15.0, 3.0)  # the hour's high and low
    (candle,) = resample(hourly_from(rows), "5m", "1h").itertuples()
    assert candle.Index == pd.Timestamp("2024-01-01 00:00", tz="UTC")
    assert (candle.open, candle.high, candle.low, candle.close) == (10.0, 99.0, 1.0, 66.0)
    assert (candle.volume, candle.quote_volume) == (14.0, 28.0)


def test_incomplete_buckets_are_dropped_and_reported() -> None:
    frame = random_candles(1, 12 * 5 + 4, "5m")  # five whole hours and a third of one
    frame = frame.drop(frame.index[30])  # a hole in hour 2
    result = resample_with_report(frame, "5m", "1h")
    assert list(result.frame.index.hour) == [0, 1, 3, 4]
    assert list(result.incomplete.hour) == [2, 5]  # the hole, and the hour still filling


def test_weeks_start_on_monday() -> None:
    frame = random_candles(2, 21, "1d", start="2024-01-03")  # a Wednesday
    weeks = resample(frame, "1d", "1w")
    assert list(weeks.index.day_name()) == ["Monday", "Monday"]
    assert list(weeks.index.day) == [8, 15]


def test_estimate_flag_survives_and_same_timeframe_is_a_copy() -> None:
    frame = random_candles(3, 24, "1h")
    frame.attrs["quote_volume_estimated"] = True
    assert resample(frame, "1h", "4h").attrs["quote_volume_estimated"] is True
    same = resample(frame, "1h", "1h")
    assert same is not frame and same.equals(frame)


def test_timeframes_that_do_not_divide_are_refused() -> None:
    frame = random_candles(4, 10, "1d")
    with pytest.raises(ConfigError, match="1w is not a whole multiple of 3d"):
        resample(frame, "3d", "1w")
    with pytest.raises(ConfigError, match="5m is not a whole multiple of 1h"):
        resample(frame, "1h", "5m")


def reference(frame: pd.DataFrame, fine: str, coarse: str) -> pd.DataFrame:
    """pandas' resampler, keeping only buckets with every fine candle."""
    origin = pd.Timestamp(bucket_origin_ns(coarse), unit="ns", tz="UTC")
    rule = f"{timeframe_seconds(coarse)}s"
    grouped = frame.resample(rule, origin=origin, label="left", closed="left")
    agg = grouped.agg(
        {
            "open": "first",
            "high": "max",
            "low": "min",
            "close": "last",
            "volume": "sum",
            "quote_volume": "sum",
        }
    )
    counts = grouped["open"].count()
    return agg[counts == timeframe_seconds(coarse) // timeframe_seconds(fine)]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 400),
    gaps=st.booleans(),
    pair=st.sampled_from(
        [("1m", "5m"), ("5m", "1h"), ("15m", "4h"), ("1h", "1d"), ("1d", "1w"), ("5m", "1d")]
    ),
)
def test_resample_equals_pandas_reference(
    seed: int, n: int, gaps: bool, pair: tuple[str, str]
) -> None:
    fine, coarse = pair
    frame = random_candles(seed, n, fine, gaps=gaps, start="2024-01-03 07:00")
    ours = resample(frame, fine, coarse)
    theirs = reference(frame, fine, coarse)
    assert list(ours.index) == list(theirs.index)
    for column in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(ours[column].to_numpy(), theirs[column].to_numpy())
    for column in ("volume", "quote_volume"):
        np.testing.assert_allclose(ours[column].to_numpy(), theirs[column].to_numpy(), rtol=1e-12)

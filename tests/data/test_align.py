from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.data.align import align_to_base, positions_by_close
from kinetic_rules.timeframes import timeframe_seconds


def index(start: str, periods: int, freq: str) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq=freq, tz="UTC", name="date").as_unit("ns")


def test_an_hourly_value_appears_when_its_hour_has_closed() -> None:
    base = index("2024-01-01 00:00", 36, "5min")  # 00:00 .. 02:55
    hourly = pd.Series([100.0, 101.0, 102.0], index=index("2024-01-01", 3, "h"))
    aligned = align_to_base(base, "5m", hourly, "1h")
    at = aligned.__getitem__
    assert np.isnan(at(pd.Timestamp("2024-01-01 00:50", tz="UTC")))
    assert at(pd.Timestamp("2024-01-01 00:55", tz="UTC")) == 100.0  # closes 01:00 with the hour
    assert at(pd.Timestamp("2024-01-01 01:50", tz="UTC")) == 100.0
    assert at(pd.Timestamp("2024-01-01 01:55", tz="UTC")) == 101.0
    assert aligned.isna().sum() == 11
    assert aligned.index.equals(base)


def test_a_daily_value_appears_on_the_last_hour_of_its_day() -> None:
    base = index("2024-01-01", 48, "h")
    daily = pd.DataFrame(
        {"close": [1.0, 2.0], "up": [True, False]}, index=index("2024-01-01", 2, "D")
    )
    aligned = align_to_base(base, "1h", daily, "1d")
    assert aligned["close"].iloc[22] != aligned["close"].iloc[22]  # NaN on 01-01 22:00
    assert aligned["close"].iloc[23] == 1.0  # 01-01 23:00 closes at midnight
    assert aligned["close"].iloc[47] == 2.0
    assert aligned["up"].iloc[:23].isna().all() and bool(aligned["up"].iloc[23])
    assert list(aligned.columns) == ["close", "up"]


def test_another_pair_on_the_same_timeframe_carries_its_last_value_over_holes() -> None:
    base = index("2024-01-01 10:00", 4, "5min")
    other_index = base.delete(2)  # the other pair has no 10:10 candle
    other = pd.Series([1.0, 2.0, 4.0], index=other_index)
    aligned = align_to_base(base, "5m", other, "5m")
    assert aligned.tolist() == [1.0, 2.0, 2.0, 4.0]


def test_a_finer_other_shows_its_last_candle_inside_the_base_candle() -> None:
    base = index("2024-01-01", 2, "h")
    fine = pd.Series(np.arange(24.0), index=index("2024-01-01", 24, "5min"))
    assert align_to_base(base, "1h", fine, "5m").tolist() == [11.0, 23.0]


def test_empty_other_and_misuse() -> None:
    base = index("2024-01-01", 3, "h")
    empty = pd.Series([], index=index("2024-01-01", 0, "h"), dtype=float)
    assert align_to_base(base, "1h", empty, "1h").isna().all()
    with pytest.raises(ValueError, match="sorted"):
        align_to_base(base, "1h", pd.Series([1.0, 2.0], index=base[:2][::-1]), "1h")
    with pytest.raises(ValueError, match="timezone-aware"):
        align_to_base(base.tz_localize(None), "1h", empty, "1h")


TIMEFRAMES = ["5m", "15m", "1h", "4h", "1d"]


def brute_force(
    base: pd.DatetimeIndex, base_tf: str, other: pd.Series, other_tf: str
) -> list[float]:
    """Per base candle: the last other candle closed by the base candle's close."""
    out = []
    base_len = pd.Timedelta(seconds=timeframe_seconds(base_tf))
    other_len = pd.Timedelta(seconds=timeframe_seconds(other_tf))
    for b in base:
        known = other[other.index + other_len <= b + base_len]
        out.append(float(known.iloc[-1]) if len(known) else np.nan)
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[pd.DatetimeIndex, str, pd.Series, str]:
    base_tf, other_tf = draw(st.sampled_from(TIMEFRAMES)), draw(st.sampled_from(TIMEFRAMES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    start = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=int(rng.integers(0, 48)))
    base = index(str(start), int(rng.integers(1, 120)), f"{timeframe_seconds(base_tf)}s")
    other_full = index("2023-12-30", int(rng.integers(0, 300)), f"{timeframe_seconds(other_tf)}s")
    kept = other_full[rng.random(len(other_full)) > draw(st.sampled_from([0.0, 0.2, 0.6]))]
    other = pd.Series(rng.normal(size=len(kept)), index=kept)
    return base, base_tf, other, other_tf


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_aligned_values_equal_the_brute_force_definition(
    scenario: tuple[pd.DatetimeIndex, str, pd.Series, str],
) -> None:
    base, base_tf, other, other_tf = scenario
    aligned = align_to_base(base, base_tf, other, other_tf)
    np.testing.assert_array_equal(aligned.to_numpy(), brute_force(base, base_tf, other, other_tf))


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.data())
def test_no_value_depends_on_data_after_the_base_candle_closes(
    scenario: tuple[pd.DatetimeIndex, str, pd.Series, str], data: st.DataObject
) -> None:
    base, base_tf, other, other_tf = scenario
    k = data.draw(st.integers(0, len(base) - 1))
    close_k = base[k] + pd.Timedelta(seconds=timeframe_seconds(base_tf))
    closes = other.index + pd.Timedelta(seconds=timeframe_seconds(other_tf))
    full = align_to_base(base, base_tf, other, other_tf)
    truncated = align_to_base(base, base_tf, other[closes <= close_k], other_tf)
    scrambled_future = other.copy()
    scrambled_future[closes > close_k] = 1e9  # the future, replaced by garbage
    scrambled = align_to_base(base, base_tf, scrambled_future, other_tf)
    np.testing.assert_array_equal(full.to_numpy()[: k + 1], truncated.to_numpy()[: k + 1])
    np.testing.assert_array_equal(full.to_numpy()[: k + 1], scrambled.to_numpy()[: k + 1])


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_positions_on_a_full_grid_equal_those_of_the_binary_search(
    scenario: tuple[pd.DatetimeIndex, str, pd.Series, str],
) -> None:
    base, base_tf, other, other_tf = scenario
    base_open = base.asi8
    other_open = other.index.asi8
    found = positions_by_close(base_open, base_tf, other_open, other_tf)
    other_close = other_open + timeframe_seconds(other_tf) * 1_000_000_000
    base_close = base_open + timeframe_seconds(base_tf) * 1_000_000_000
    searched = np.searchsorted(other_close, base_close, side="right") - 1
    assert found.dtype == searched.dtype
    np.testing.assert_array_equal(found, searched)

"""Properties and slow-but-obvious references for individual functions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kinetic_rules.functions import REGISTRY

SETTINGS = settings(max_examples=100, deadline=None)


def impl(name: str) -> Any:
    function = REGISTRY.get(name)
    assert function is not None
    return function.impl


@st.composite
def candles(draw: st.DrawFn, min_size: int = 0, max_size: int = 120) -> dict[str, np.ndarray]:
    """A plausible random walk of candles: positive prices, high ≥ open/close ≥ low.

    Prices and volumes sit on a tick grid like real ones, so two prices are either
    equal or apart by a tick; spreads of a few bits, which no float sum resolves,
    would only test the reference's rounding.
    """
    n = draw(st.integers(min_size, max_size))
    moves = draw(hnp.arrays(np.int64, n, elements=st.integers(-500, 500))) / 10_000
    close = np.round(100.0 * np.exp(np.cumsum(moves)), 2)
    open_ = np.concatenate(([100.0], close[:-1]))[:n]
    wicks = draw(hnp.arrays(np.int64, (2, n), elements=st.integers(0, 200))) / 10_000
    high = np.round(np.maximum(open_, close) * (1 + wicks[0]), 2)
    low = np.round(np.minimum(open_, close) * (1 - wicks[1]), 2)
    volume = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 100_000))) / 100
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


flags = hnp.arrays(np.bool_, st.integers(0, 80))
small_values = hnp.arrays(
    np.float64,
    st.integers(0, 80),
    elements=st.one_of(
        st.sampled_from([0.0, 1.0, 2.0, np.nan]), st.floats(-10, 10, allow_subnormal=False)
    ),
)
window_sizes = st.integers(1, 12)


# --- bounds -------------------------------------------------------------------------


@SETTINGS
@given(candles(), st.integers(1, 30))
def test_rsi_is_between_0_and_100(c: dict[str, np.ndarray], period: int) -> None:
    out = impl("rsi")(c["close"], period)
    defined = out[~np.isnan(out)]
    assert ((defined >= 0) & (defined <= 100)).all()


@SETTINGS
@given(candles(), st.integers(1, 30))
def test_atr_and_true_range_are_not_negative(c: dict[str, np.ndarray], period: int) -> None:
    for out in (
        impl("atr")(c["high"], c["low"], c["close"], period),
        impl("true_range")(c["high"], c["low"], c["close"]),
    ):
        assert (out[~np.isnan(out)] >= 0).all()


@SETTINGS
@given(candles(), st.integers(1, 20), st.integers(1, 5))
def test_stochastic_and_directional_bounds(c: dict[str, np.ndarray], k: int, s: int) -> None:
    hlc = (c["high"], c["low"], c["close"])
    for out in (impl("stoch_k")(*hlc, k, s), impl("adx")(*hlc, k), impl("plus_di")(*hlc, k)):
        defined = out[~np.isnan(out)]
        assert ((defined >= -1e-9) & (defined <= 100 + 1e-9)).all()


# --- references ---------------------------------------------------------------------


def _zscore(v: np.ndarray) -> float:
    d = v - v[0]
    return float((d[-1] - d.mean()) / d.std()) if np.ptp(d) > 0 else math.nan


def _window_ref(x: np.ndarray, w: int, stat: Any) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for t in range(w - 1, len(x)):
        window = x[t - w + 1 : t + 1]
        if not np.isnan(window).any():
            out[t] = stat(window)
    return out


@SETTINGS
@given(candles(), window_sizes)
def test_window_statistics_match_numpy(c: dict[str, np.ndarray], w: int) -> None:
    x = c["close"]
    checks = {
        "mean": np.mean,
        "sum": np.sum,
        "lowest": np.min,
        "highest": np.max,
        "std": lambda v: np.std(v - v[0]),  # shifted: the spread is exact, not rounded away
        "percentile_rank": lambda v: 100.0 * np.mean(v <= v[-1]),
        "zscore": _zscore,
    }
    for name, stat in checks.items():
        np.testing.assert_allclose(
            impl(name)(x, w), _window_ref(x, w, stat), rtol=1e-7, atol=1e-9, err_msg=name
        )


@SETTINGS
@given(candles(), window_sizes)
def test_vwap_matches_reference(c: dict[str, np.ndarray], w: int) -> None:
    typical = (c["high"] + c["low"] + c["close"]) / 3.0
    expected = np.full(len(typical), np.nan)
    for t in range(w - 1, len(typical)):
        volume = c["volume"][t - w + 1 : t + 1]
        if volume.sum() > 0:
            expected[t] = (typical[t - w + 1 : t + 1] * volume).sum() / volume.sum()
    out = impl("vwap")(c["high"], c["low"], c["close"], c["volume"], w)
    np.testing.assert_allclose(out, expected, rtol=1e-9)


@SETTINGS
@given(candles(), st.integers(2, 12))
def test_correlation_matches_numpy(c: dict[str, np.ndarray], w: int) -> None:
    a, b = c["close"], c["volume"]
    expected = np.full(len(a), np.nan)
    for t in range(w - 1, len(a)):
        x, y = a[t - w + 1 : t + 1] - a[t], b[t - w + 1 : t + 1]
        if np.ptp(x) > 0 and np.ptp(y) > 0:
            expected[t] = np.corrcoef(x, y)[0, 1]
    np.testing.assert_allclose(impl("correlation")(a, b, w), expected, atol=1e-7)


@SETTINGS
@given(small_values, st.integers(1, 5))
def test_changes_match_reference(x: np.ndarray, periods: int) -> None:
    before = np.concatenate((np.full(periods, np.nan), x[:-periods]))[: len(x)]
    with np.errstate(all="ignore"):
        pct = np.where(before != 0, (x - before) / before, np.nan)
        pct = np.where(np.isfinite(pct), pct, np.nan)  # an overflow is undefined, never infinite
        log = np.where((x > 0) & (before > 0), np.log(x / np.where(before > 0, before, 1)), np.nan)
        log = np.where(np.isfinite(log), log, np.nan)  # a ratio too large to hold is undefined
    np.testing.assert_allclose(impl("change")(x, periods), x - before)
    np.testing.assert_allclose(impl("pct_change")(x, periods), pct)
    np.testing.assert_allclose(impl("log_return")(x, periods), log)


@SETTINGS
@given(small_values, small_values, small_values)
def test_math_matches_reference(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
    n = min(len(x), len(low), len(high))
    x, low, high = x[:n], low[:n], high[:n]
    expected = [
        math.nan if math.isnan(v + lo + hi) or lo > hi else min(max(v, lo), hi)
        for v, lo, hi in zip(x, low, high, strict=True)
    ]
    np.testing.assert_array_equal(impl("clamp")(x, low, high), expected)
    np.testing.assert_array_equal(
        impl("min")(x, low),
        [min(a, b) if a == a and b == b else np.nan for a, b in zip(x, low, strict=True)],
    )
    logs = [math.log(v) if v > 0 else math.nan for v in x]
    np.testing.assert_allclose(impl("log")(x), logs)
    roots = [math.sqrt(v) if v >= 0 else math.nan for v in x]
    np.testing.assert_allclose(impl("sqrt")(x), roots)


def _step_ref(x: float, thresholds: list[float], values: list[float], below: float) -> float:
    if math.isnan(x):
        return math.nan
    result = below
    for threshold, value in zip(thresholds, values, strict=True):
        if x >= threshold:
            result = value
    return result


@SETTINGS
@given(
    small_values,
    st.lists(st.floats(-10, 10), min_size=1, max_size=6, unique=True).map(sorted),
    st.floats(-5, 5),
    st.data(),
)
def test_step_matches_reference(
    x: np.ndarray, thresholds: list[float], below: float, data: st.DataObject
) -> None:
    values = data.draw(
        st.lists(st.floats(-100, 100), min_size=len(thresholds), max_size=len(thresholds))
    )
    out = impl("step")(x, tuple(thresholds), tuple(values), below)
    expected = [_step_ref(v, thresholds, values, below) for v in x]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("thresholds", "values", "message"),
    [
        ((), (), "at least one threshold"),
        ((1.0, 2.0), (1.0,), "one value per threshold"),
        ((1.0, 3.0, 2.0), (1.0, 2.0, 3.0), "must increase"),
        ((1.0, 1.0), (1.0, 2.0), "must increase"),
    ],
)
def test_step_rejects_bad_tables(
    thresholds: tuple[float, ...], values: tuple[float, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        impl("step")(np.arange(3.0), thresholds, values, 0.0)


def _latch_ref(set_: np.ndarray, reset: np.ndarray) -> list[bool]:
    on, out = False, []
    for s, r in zip(set_, reset, strict=True):
        if not on and s:
            on = True
        elif on and r:
            on = False
        out.append(on)
    return out


@SETTINGS
@given(st.data())
def test_latch_matches_reference(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 80))
    set_ = data.draw(hnp.arrays(np.bool_, n))
    reset = data.draw(hnp.arrays(np.bool_, n))
    out = impl("latch")(set_, reset)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, _latch_ref(set_, reset))


@SETTINGS
@given(small_values, st.data())
def test_crossings_match_reference(a: np.ndarray, data: st.DataObject) -> None:
    b = data.draw(hnp.arrays(np.float64, len(a), elements=st.sampled_from([0.0, 1.0, np.nan])))
    above = [t > 0 and a[t - 1] <= b[t - 1] and a[t] > b[t] for t in range(len(a))]
    below = [t > 0 and a[t - 1] >= b[t - 1] and a[t] < b[t] for t in range(len(a))]
    np.testing.assert_array_equal(impl("crossed_above")(a, b), above)
    np.testing.assert_array_equal(impl("crossed_below")(a, b), below)


@SETTINGS
@given(flags, window_sizes)
def test_window_conditions_match_reference(c: np.ndarray, w: int) -> None:
    full = [t >= w - 1 for t in range(len(c))]
    counts = [float(c[t - w + 1 : t + 1].sum()) if full[t] else np.nan for t in range(len(c))]
    np.testing.assert_array_equal(impl("count")(c, w), counts)
    np.testing.assert_array_equal(
        impl("all")(c, w), [f and n == w for f, n in zip(full, counts, strict=True)]
    )
    np.testing.assert_array_equal(
        impl("any")(c, w), [f and n > 0 for f, n in zip(full, counts, strict=True)]
    )


@SETTINGS
@given(flags)
def test_bars_since_matches_reference(c: np.ndarray) -> None:
    expected, last = [], None
    for t, flag in enumerate(c):
        if flag:
            last = t
        expected.append(np.nan if last is None else float(t - last))
    np.testing.assert_array_equal(impl("bars_since")(c), expected)


# --- NaN discipline -------------------------------------------------------------------


def test_recursive_functions_skip_a_missing_candle(btc: dict[str, np.ndarray]) -> None:
    """A NaN inside the series is skipped, not carried forward for ever (as TA-Lib would)."""
    x = btc["close"][:500].copy()
    x[:30] = np.nan  # a nested indicator still warming up
    x[200] = np.nan  # a one-off hole, e.g. a division by zero upstream
    for name, args in (("ema", (20,)), ("rsi", (14,)), ("macd", (12, 26, 9))):
        out = impl(name)(x, *args)
        defined = ~np.isnan(x)
        compressed = impl(name)(x[defined], *args)
        np.testing.assert_array_equal(out[defined], compressed, err_msg=name)
        assert np.isnan(out[200]) and not np.isnan(out[201:]).any(), name


def test_windows_holding_a_nan_are_undefined() -> None:
    x = np.arange(10.0)
    x[4] = np.nan
    out = impl("mean")(x, 3)
    np.testing.assert_array_equal(np.isnan(out), [1, 1, 0, 0, 1, 1, 1, 0, 0, 0])


def test_constant_window_has_zero_spread_and_no_zscore() -> None:
    x = np.full(30, 42000.12)
    assert (impl("std")(x, 5)[4:] == 0).all()
    assert np.isnan(impl("zscore")(x, 5)).all()
    assert np.isnan(impl("correlation")(x, np.arange(30.0), 5)).all()

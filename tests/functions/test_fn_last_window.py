"""One window's correlation, as the portfolio asks for it at each decision, is the last
value of the rolling correlation over that window, to the last bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.functions._windows import last_corr, last_corrs, rolling_corr

prices = st.floats(-1e5, 1e5, allow_nan=False, allow_infinity=False)


@st.composite
def pairs_of_returns(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    window = draw(st.integers(2, 300))
    values = st.lists(
        st.one_of(prices, st.sampled_from([float("nan"), float("inf"), 0.0, 1e-3])),
        min_size=window,
        max_size=window,
    )
    x, y = np.array(draw(values)), np.array(draw(values))
    if draw(st.booleans()):  # mostly defined, as real returns are
        x, y = np.nan_to_num(x, nan=0.5), np.nan_to_num(y, nan=-0.25)
    if draw(st.booleans()):
        with np.errstate(all="ignore"):
            y = x * draw(st.sampled_from([1.0, -2.0, 1e-9])) + draw(prices)
    return x, y


@settings(max_examples=100, deadline=None)  # up to 600 floats drawn an example
@given(pairs_of_returns())
def test_last_correlation_is_the_rolling_correlations_last_value(
    pair: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = pair
    with np.errstate(all="ignore"):  # overflows and infinities: the values must agree
        expected = rolling_corr(x, y, len(x))[-1]
        found = last_corr(x, y)
    assert (np.isnan(expected) and np.isnan(found)) or found == expected


@st.composite
def windows_of_returns(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """One window and up to six others of its length: flat, overflowing, NaN, related."""
    x, y = draw(pairs_of_returns())
    rows = [y]
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["drawn", "flat", "huge", "scaled"]))
        if kind == "drawn":
            values = st.lists(
                st.one_of(prices, st.just(float("nan"))), min_size=len(x), max_size=len(x)
            )
            rows.append(np.array(draw(values)))
        elif kind == "flat":
            rows.append(np.full(len(x), draw(prices)))
        elif kind == "huge":  # its squares overflow
            rows.append(1e300 * np.arange(len(x), dtype=np.float64))
        else:
            with np.errstate(all="ignore"):
                rows.append(x * draw(st.sampled_from([3.0, -1.0, 1e-12])))
    return x, np.stack(rows)


@settings(max_examples=100, deadline=None)  # up to 2,100 floats drawn an example
@given(windows_of_returns())
def test_many_windows_at_once_are_each_windows_correlation_to_the_bit(
    windows: tuple[np.ndarray, np.ndarray],
) -> None:
    x, ys = windows
    with np.errstate(all="ignore"):
        found = last_corrs(x, ys)
        expected = [last_corr(x, row) for row in ys]
    assert found.shape == (len(ys),)
    for got, want in zip(found, expected, strict=True):
        assert (np.isnan(want) and np.isnan(got)) or got == want


def test_real_returns_of_two_pairs_agree_to_the_bit() -> None:
    folder = Path(__file__).parents[1] / "fixtures" / "binance-5m-2024"
    closes = [
        pd.read_feather(folder / f"{pair}-5m.feather")["close"].to_numpy(np.float64)
        for pair in ("BTC_USDT", "ETH_USDT")
    ]
    returns = [c[1:] / c[:-1] - 1.0 for c in closes]
    n = min(len(r) for r in returns)
    checked = 0
    for end in range(288, n, 97):  # a day of 5m returns, at many moments
        x, y = returns[0][end - 288 : end], returns[1][end - 288 : end]
        expected = rolling_corr(x, y, 288)[-1]
        assert last_corr(x, y) == expected
        assert last_corrs(x, np.stack([y, x, 2 * y])).tolist()[0] == expected
        checked += 1
    assert checked > 10

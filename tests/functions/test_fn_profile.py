"""Volume profile: checked against a per-window histogram built the obvious way."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kinetic_rules.functions import REGISTRY
from kinetic_rules.functions.profile import (
    _running_total,
    bin_edge,
    bin_index,
    forget_last_profile,
    value_area_columns,
)

HLCV = ("high", "low", "close", "volume")


def _impl(name: str) -> Any:
    function = REGISTRY.get(name)
    assert function is not None
    return function.impl


def _window_histogram(
    cols: dict[str, np.ndarray], t: int, w: int, bin_pct: float
) -> tuple[np.ndarray, np.ndarray]:
    """(bins, volume per bin) of the window ending at t, with a plain dictionary."""
    typical = (cols["high"] + cols["low"] + cols["close"]) / 3.0
    bins = bin_index(typical[t - w + 1 : t + 1], bin_pct)
    totals: dict[int, float] = {}
    for b, v in zip(bins, cols["volume"][t - w + 1 : t + 1], strict=True):
        totals[int(b)] = totals.get(int(b), 0.0) + float(v)
    keys = np.array(sorted(totals))
    return keys, np.array([totals[k] for k in keys])


@st.composite
def candle_sets(draw: st.DrawFn) -> dict[str, np.ndarray]:
    n = draw(st.integers(1, 90))
    steps = draw(hnp.arrays(np.int64, n, elements=st.integers(-30, 30)))
    close = 100.0 + np.cumsum(steps) / 10.0
    close = np.maximum(close, 1.0)
    spread = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 20))) / 10.0
    volume = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 50))).astype(np.float64)
    return {
        "high": close + spread,
        "low": np.maximum(close - spread, 0.5),
        "close": close,
        "volume": volume,
    }


@settings(max_examples=100, deadline=None)
@given(candle_sets(), st.integers(1, 30), st.sampled_from([0.1, 0.5, 2.0]), st.data())
def test_poc_and_value_area_match_a_plain_histogram(
    cols: dict[str, np.ndarray], w: int, bin_pct: float, data: st.DataObject
) -> None:
    area = data.draw(st.sampled_from([50.0, 70.0, 100.0]))
    hlcv = [cols[k] for k in HLCV]
    poc = _impl("volume_profile_poc")(*hlcv, w, bin_pct)
    vah = _impl("volume_profile_vah")(*hlcv, w, area, bin_pct)
    val = _impl("volume_profile_val")(*hlcv, w, area, bin_pct)
    for t in range(len(poc)):
        if t < w - 1 or cols["volume"][t - w + 1 : t + 1].sum() == 0:
            assert np.isnan(poc[t]) and np.isnan(vah[t]) and np.isnan(val[t])
            continue
        keys, volumes = _window_histogram(cols, t, w, bin_pct)
        busiest = keys[volumes == volumes.max()]
        centre = (bin_edge(busiest, bin_pct) + bin_edge(busiest + 1, bin_pct)) / 2
        assert poc[t] in centre, "POC is the middle of a bin holding the most volume"
        assert val[t] <= poc[t] <= vah[t]
        inside = (bin_edge(keys, bin_pct) >= val[t] * (1 - 1e-12)) & (
            bin_edge(keys + 1, bin_pct) <= vah[t] * (1 + 1e-12)
        )
        assert volumes[inside].sum() >= area / 100 * volumes.sum() * (1 - 1e-9)
        # Edges come from the value area's own bins, so each edge bin traded something.
        assert volumes[bin_edge(keys, bin_pct) == val[t]].sum() > 0
        assert volumes[bin_edge(keys + 1, bin_pct) == vah[t]].sum() > 0


def test_value_area_of_100_spans_every_traded_bin() -> None:
    close = np.array([100.0, 101.0, 105.0, 99.0, 100.0])
    volume = np.array([1.0, 1.0, 5.0, 1.0, 0.0])
    vah = _impl("volume_profile_vah")(close, close, close, volume, 5, 100.0, 0.1)
    val = _impl("volume_profile_val")(close, close, close, volume, 5, 100.0, 0.1)
    poc = _impl("volume_profile_poc")(close, close, close, volume, 5, 0.1)
    assert val[-1] <= 99.0 < 105.0 < vah[-1]
    assert abs(poc[-1] - 105.0) / 105.0 < 0.001


@pytest.mark.parametrize("area", [0.0, 101.0])
def test_value_area_must_be_a_percentage(area: float) -> None:
    x = np.ones(5)
    with pytest.raises(ValueError, match="value_area"):
        _impl("volume_profile_vah")(x, x, x, x, 2, area, 0.1)


def test_a_week_window_over_months_of_5m_candles_matches_the_plain_histogram(kit: Any) -> None:
    """A 2016-candle window slid over 16k real candles (two copies at different price
    levels, so the window crosses a jump): sampled candles agree with the plain histogram.
    How long this takes is measured by benchmarks/bench_profile.py, not here."""
    cols = kit.load("SOL_USDT-5m")
    joined = {k: np.concatenate([cols[k], cols[k] * (1.1 if k != "volume" else 1.0)]) for k in HLCV}
    hlcv = [joined[k] for k in HLCV]
    w, bin_pct, area = 2016, 0.1, 70.0
    poc = _impl("volume_profile_poc")(*hlcv, w, bin_pct)
    vah = _impl("volume_profile_vah")(*hlcv, w, area, bin_pct)
    val = _impl("volume_profile_val")(*hlcv, w, area, bin_pct)
    assert not np.isnan(poc[w - 1 :]).any() and (val[w - 1 :] <= vah[w - 1 :]).all()
    crossing = len(cols["close"]) + w // 2  # the window holds both price levels here
    sampled = [w - 1, crossing, len(poc) - 1, *np.random.default_rng(7).integers(w, len(poc), 12)]
    for t in sampled:
        keys, volumes = _window_histogram(joined, int(t), w, bin_pct)
        busiest = keys[volumes == volumes.max()]
        centre = (bin_edge(busiest, bin_pct) + bin_edge(busiest + 1, bin_pct)) / 2
        assert poc[t] in centre, t
        inside = (bin_edge(keys, bin_pct) >= val[t] * (1 - 1e-12)) & (
            bin_edge(keys + 1, bin_pct) <= vah[t] * (1 + 1e-12)
        )
        assert volumes[inside].sum() >= area / 100 * volumes.sum() * (1 - 1e-9), t


def value_area_by_stable_order(hist: np.ndarray, value_area: float) -> tuple[np.ndarray, ...]:
    """The value area's edge columns taken the plain way: columns in a stable order from the
    busiest down, the shortest prefix holding the target share."""
    order = np.argsort(-hist, axis=1, kind="stable")
    covered = np.cumsum(np.take_along_axis(hist, order, axis=1), axis=1)
    target = hist.sum(axis=1) * (value_area / 100.0) * (1.0 - 1e-12)
    taken = np.argmax(covered >= target[:, None], axis=1)
    inside = np.arange(hist.shape[1])[None, :] <= taken[:, None]
    highest = np.where(inside, order, -1).max(axis=1)
    lowest = np.where(inside, order, hist.shape[1]).min(axis=1)
    return highest, lowest


volumes = st.one_of(
    st.integers(0, 4).map(float),  # ties everywhere, at the cut too
    st.floats(0, 1e6, allow_nan=False),
    st.sampled_from([np.nan, np.inf, 0.1, 0.2, 0.30000000000000004]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda width: hnp.arrays(
            np.float64, st.tuples(st.integers(1, 8), st.just(width)), elements=volumes
        )
    ),
    st.sampled_from([1.0, 50.0, 70.0, 99.9, 100.0]),
)
def test_the_value_area_found_from_sorted_volumes_is_the_stable_orders(
    hist: np.ndarray, area: float
) -> None:
    """Ties at the cut, empty and undefined levels: the same edge columns as a stable sort
    of the columns gives."""
    with np.errstate(invalid="ignore"):
        found = value_area_columns(hist, area)
        wanted = value_area_by_stable_order(hist, area)
    np.testing.assert_array_equal(found[0], wanted[0])
    np.testing.assert_array_equal(found[1], wanted[1])


@settings(max_examples=60, deadline=None)
@given(candle_sets(), candle_sets(), st.integers(1, 30), st.booleans())
def test_a_value_area_asked_after_a_poc_equals_one_computed_afresh(
    first: dict[str, np.ndarray], second: dict[str, np.ndarray], w: int, same: bool
) -> None:
    """A POC keeps its histograms for the value area asked next: reused only for the very
    same candles and window, never for others."""
    later = first if same else second
    for window in (w, w + 1):
        _impl("volume_profile_poc")(*[first[k] for k in HLCV], w, 0.5)
        after_poc = _impl("volume_profile_vah")(*[later[k] for k in HLCV], window, 70.0, 0.5)
        forget_last_profile()
        fresh = _impl("volume_profile_vah")(*[later[k] for k in HLCV], window, 70.0, 0.5)
        np.testing.assert_array_equal(after_poc, fresh)


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 40), st.integers(1, 9)),
        elements=st.one_of(st.floats(-1e6, 1e6), st.sampled_from([np.nan, np.inf, -0.0, 0.1])),
    )
)
def test_the_running_total_of_the_histograms_is_a_cumsum_to_the_bit(rows: np.ndarray) -> None:
    """The histograms' running total adds row after row, exactly as np.cumsum does: the
    POC and value area a strategy trades on keep their bits."""
    wanted = np.cumsum(rows, axis=0)
    _running_total(rows)
    np.testing.assert_array_equal(rows.view(np.int64), wanted.view(np.int64))

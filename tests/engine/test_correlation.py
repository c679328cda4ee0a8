"""A decision's correlations: the windows one close shares among its candidates give the
very numbers `last_corrs` gives for the stacked windows, to the bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.engine.correlation import Closes, recent_returns, return_correlations
from kinetic_rules.functions._windows import last_corrs

STEP = 300 * 10**9
CANDLES = 90


@st.composite
def market(draw: st.DrawFn) -> list[Closes]:
    """A few pairs: random walks, flat stretches, zero and NaN closes, missing candles."""
    pairs: list[Closes] = []
    walks: list[np.ndarray] = []
    for _ in range(draw(st.integers(2, 6))):
        moves = draw(
            st.lists(
                st.sampled_from([-0.02, -0.01, 0.0, 0.01, 0.03]), min_size=CANDLES, max_size=CANDLES
            )
        )
        closes = 100.0 * np.cumprod(1.0 + np.array(moves))
        kind = draw(st.sampled_from(["walk", "walk", "flat", "zero", "nan", "twin"]))
        if kind == "flat":
            closes[draw(st.integers(0, CANDLES - 1)) :] = closes[0]
        elif kind in ("zero", "nan"):
            closes[draw(st.integers(0, CANDLES - 1))] = 0.0 if kind == "zero" else np.nan
        elif kind == "twin" and walks:
            closes = 3.0 * walks[0]
        times = np.arange(CANDLES, dtype=np.int64) * STEP
        missing = draw(st.lists(st.integers(0, CANDLES - 1), max_size=3, unique=True))
        kept = np.setdiff1d(np.arange(CANDLES), missing)
        walks.append(closes)
        pairs.append((times[kept].copy(), closes[kept].copy()))
    return pairs


def expected(pair: Closes, others: list[Closes], moment: int, lookback: int) -> np.ndarray:
    mine = recent_returns(pair, moment, STEP, lookback)
    theirs = np.stack([recent_returns(other, moment, STEP, lookback) for other in others])
    return last_corrs(mine, theirs)


def same_bits(found: np.ndarray, wanted: np.ndarray) -> bool:
    return found.shape == wanted.shape and all(
        (np.isnan(a) and np.isnan(b)) or a == b for a, b in zip(found, wanted, strict=True)
    )


@settings(max_examples=150, deadline=None)
@given(market(), st.lists(st.integers(70, CANDLES), min_size=1, max_size=4), st.data())
def test_each_candidate_of_a_close_gets_the_stacked_windows_correlations(
    pairs: list[Closes], closes_at: list[int], data: st.DataObject
) -> None:
    lookback = data.draw(st.sampled_from([3, 65, 68]))  # summed exactly, or by cumulative sums
    for close in sorted(closes_at):
        moment = close * STEP
        for candidate in range(len(pairs)):  # every candidate of this close, in turn
            held = [p for k, p in enumerate(pairs) if k != candidate]
            held = data.draw(st.lists(st.sampled_from(held), max_size=4))
            with np.errstate(all="ignore"):
                found = return_correlations(pairs[candidate], held, moment, STEP, lookback)
                if not held:
                    assert found.shape == (0,)
                    continue
                wanted = expected(pairs[candidate], held, moment, lookback)
            assert same_bits(found, wanted), (close, candidate)


def test_a_pair_whose_arrays_changed_at_the_same_close_is_read_anew() -> None:
    """Live, a pair's arrays are replaced as candles arrive: windows are kept by identity."""
    times = np.arange(CANDLES, dtype=np.int64) * STEP
    rng = np.random.default_rng(3)
    walk = lambda: (times, 100.0 * np.cumprod(1.0 + rng.normal(0, 0.01, CANDLES)))  # noqa: E731
    mine, first, second = walk(), walk(), walk()
    moment = CANDLES * STEP
    before = return_correlations(mine, [first], moment, STEP, 66)
    after = return_correlations(mine, [second], moment, STEP, 66)
    assert same_bits(before, expected(mine, [first], moment, 66))
    assert same_bits(after, expected(mine, [second], moment, 66))
    assert before[0] != after[0]

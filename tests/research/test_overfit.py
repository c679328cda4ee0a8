"""Overfitting measures: known cases, the literature's numbers, and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.research.overfit import (
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    probability_of_backtest_overfitting,
)


def test_pure_noise_trials_overfit_about_half_the_time() -> None:
    rng = np.random.default_rng(7)
    results = [
        probability_of_backtest_overfitting(rng.normal(size=(96, 20)), n_splits=8)
        for _ in range(40)
    ]
    assert 0.4 < float(np.mean(results)) < 0.6


def test_one_trial_better_in_every_block_never_overfits() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(64, 10))
    noise[:, 4] = noise.max(axis=1) + 1.0
    assert probability_of_backtest_overfitting(noise, n_splits=16) == 0.0


def test_a_trial_that_wins_in_sample_by_luck_and_loses_after_is_overfit() -> None:
    # Configuration 0 earns 5 in each of the 4 early groups and loses 5 in each of the 4
    # late ones; the rest earn 0.1 .. 0.4 throughout. It wins in-sample exactly when 3 or
    # 4 early groups are in-sample (4*4 + 1 = 17 of the C(8, 4) = 70 halvings), and then
    # ranks last out-of-sample; otherwise configuration 4 wins and stays on top.
    rows = np.zeros((32, 5))
    rows[:, 1:] = np.linspace(0.1, 0.4, 4)
    rows[:16, 0] = 5.0
    rows[16:, 0] = -5.0
    assert probability_of_backtest_overfitting(rows, n_splits=8) == pytest.approx(17 / 70)


def test_equal_trials_are_ranked_at_the_median() -> None:
    # All tie: the chosen one shares the middle rank, logit 0, which is not below it.
    assert probability_of_backtest_overfitting(np.ones((8, 3)), n_splits=4) == 0.0


@pytest.mark.parametrize(
    ("matrix", "n_splits", "message"),
    [
        (np.zeros(10), 2, "2-D"),
        (np.zeros((10, 1)), 2, "at least 2 configurations"),
        (np.zeros((10, 3)), 3, "even"),
        (np.zeros((10, 3)), 0, "even"),
        (np.zeros((10, 3)), 12, "must not exceed the number of rows"),
        (np.zeros((40, 3)), 26, "at most"),
        (np.array([[0.0, np.nan], [1.0, 2.0]]), 2, "finite"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    matrix: np.ndarray, n_splits: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        probability_of_backtest_overfitting(matrix, n_splits=n_splits)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(4, 40),
    columns=st.integers(2, 12),
    half=st.integers(1, 2),
)
def test_pbo_is_a_probability_unchanged_by_scale_and_shift(
    seed: int, rows: int, columns: int, half: int
) -> None:
    matrix = np.random.default_rng(seed).normal(size=(rows, columns))
    pbo = probability_of_backtest_overfitting(matrix, n_splits=2 * half)
    assert 0.0 <= pbo <= 1.0
    # Ranking is all it reads: an affine change of units changes nothing.
    assert probability_of_backtest_overfitting(3.0 * matrix + 2.0, n_splits=2 * half) == pbo


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), columns=st.integers(2, 8))
def test_column_order_does_not_matter(seed: int, columns: int) -> None:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(12, columns))
    order = rng.permutation(columns)
    assert probability_of_backtest_overfitting(matrix, 4) == probability_of_backtest_overfitting(
        matrix[:, order], 4
    )


def test_deflated_sharpe_matches_the_papers_worked_example() -> None:
    # Bailey & López de Prado (2014), section 4: annual SR 2.5 over 1250 daily returns,
    # 100 trials with annualised Sharpe variance 0.5, skew -3, kurtosis 10 -> DSR ~ 0.9004.
    per_day = 2.5 / math.sqrt(250)
    variance = 0.5 / 250
    dsr = deflated_sharpe_ratio(per_day, 100, variance, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=2e-3)


def test_one_trial_is_judged_against_zero() -> None:
    assert expected_maximum_sharpe(1, 4.0) == 0.0
    # Normal returns, no trials to deflate for: a Sharpe of 0 is a coin toss.
    assert deflated_sharpe_ratio(0.0, 1, 0.0, 100, 0.0, 3.0) == pytest.approx(0.5)


@settings(max_examples=60, deadline=None)
@given(
    sharpe=st.floats(-0.3, 0.5),
    variance=st.floats(1e-4, 0.05),
    observations=st.integers(30, 5000),
    trials=st.integers(1, 500),
    extra=st.integers(1, 500),
)
def test_more_trials_never_raise_the_deflated_sharpe(
    sharpe: float, variance: float, observations: int, trials: int, extra: int
) -> None:
    fewer = deflated_sharpe_ratio(sharpe, trials, variance, observations, 0.0, 3.0)
    more = deflated_sharpe_ratio(sharpe, trials + extra, variance, observations, 0.0, 3.0)
    assert 0.0 <= more <= fewer <= 1.0
    assert expected_maximum_sharpe(trials + extra, variance) > expected_maximum_sharpe(
        trials, variance
    )


@settings(max_examples=40, deadline=None)
@given(low=st.floats(-0.2, 0.4), gain=st.floats(0.01, 0.3), trials=st.integers(1, 200))
def test_a_higher_sharpe_is_more_likely_real(low: float, gain: float, trials: int) -> None:
    assert deflated_sharpe_ratio(low, trials, 0.01, 500, 0.0, 3.0) <= deflated_sharpe_ratio(
        low + gain, trials, 0.01, 500, 0.0, 3.0
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((0.1, 0, 0.01, 100, 0.0, 3.0), "n_trials"),
        ((0.1, 5, -0.01, 100, 0.0, 3.0), "trials_sharpe_variance"),
        ((0.1, 5, 0.01, 1, 0.0, 3.0), "n_observations"),
        ((math.nan, 5, 0.01, 100, 0.0, 3.0), "sharpe"),
        ((2.0, 5, 0.01, 100, 3.0, 0.0), "impossible"),
    ],
)
def test_bad_deflated_sharpe_input_is_refused(
    arguments: tuple[float, int, float, int, float, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        deflated_sharpe_ratio(*arguments)

"""How much of a search's best result is luck: two measures from the literature.

A search that tries many configurations on the same candles will find one that looks
good by chance alone. These two numbers say how likely that is, so a report can put
them beside the best result:

- the probability of backtest overfitting (Bailey, Borwein, López de Prado and Zhu,
  "The probability of backtest overfitting", 2016), estimated by combinatorially
  symmetric cross-validation: how often the configuration that is best on one half of
  the time blocks is below the median on the other half;
- the deflated Sharpe ratio (Bailey and López de Prado, "The deflated Sharpe ratio",
  2014): the probability that the true Sharpe ratio of the chosen configuration is
  above the best one would expect from that many configurations without any skill.
"""

from __future__ import annotations

import math
from itertools import combinations
from statistics import NormalDist

import numpy as np

__all__ = [
    "deflated_sharpe_ratio",
    "expected_maximum_sharpe",
    "probability_of_backtest_overfitting",
]

EULER_MASCHERONI = 0.5772156649015329
MAX_SPLITS = 24  # C(24, 12) = 2,704,156 halvings: the most a report should wait for
_NORMAL = NormalDist()


def probability_of_backtest_overfitting(performance: np.ndarray, n_splits: int = 16) -> float:
    """The fraction of halvings in which the in-sample best is below the out-of-sample median.

    ``performance`` has one row per time block or observation (e.g. a period's return)
    and one column per configuration tried. Its rows are cut into ``n_splits`` contiguous
    groups of (nearly) equal size; every way of choosing half of the groups is one
    split, the chosen half in-sample and the rest out-of-sample. A configuration's
    performance on a half is the mean of its rows there. For each split the
    configuration best in-sample is ranked out-of-sample (ties share the average rank);
    its relative rank w = rank / (n + 1) gives the logit log(w / (1 - w)), and the
    result is the share of splits with a negative logit. Near 0: the in-sample winner
    stays good; near 0.5 or above: choosing by in-sample performance is no better
    than choosing at random.
    """
    matrix = _checked_matrix(performance, n_splits)
    groups = np.array_split(np.arange(matrix.shape[0]), n_splits)
    group_sums = np.stack([matrix[rows].sum(axis=0) for rows in groups])
    group_sizes = np.array([len(rows) for rows in groups], dtype=float)
    chosen = np.zeros((math.comb(n_splits, n_splits // 2), n_splits), dtype=float)
    for index, half in enumerate(combinations(range(n_splits), n_splits // 2)):
        chosen[index, list(half)] = 1.0
    in_sample = (chosen @ group_sums) / (chosen @ group_sizes)[:, None]
    out_sample = ((1.0 - chosen) @ group_sums) / ((1.0 - chosen) @ group_sizes)[:, None]
    best = np.argmax(in_sample, axis=1)
    best_out = out_sample[np.arange(len(best)), best][:, None]
    below = (out_sample < best_out).sum(axis=1)
    equal = (out_sample == best_out).sum(axis=1)  # counts the winner itself
    rank = below + (equal + 1) / 2.0
    relative = rank / (matrix.shape[1] + 1)
    logits = np.log(relative / (1.0 - relative))
    return float(np.mean(logits < 0.0))


def expected_maximum_sharpe(n_trials: int, trials_sharpe_variance: float) -> float:
    """The Sharpe ratio the best of ``n_trials`` unskilled configurations reaches on average.

    Their Sharpe ratios are taken as normal around zero with the given variance; the
    expected maximum then follows from extreme value theory (Euler-Mascheroni
    approximation). One trial expects zero.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if not math.isfinite(trials_sharpe_variance) or trials_sharpe_variance < 0:
        raise ValueError(
            f"trials_sharpe_variance must be a finite number >= 0, got {trials_sharpe_variance}"
        )
    if n_trials == 1:
        return 0.0
    spread = math.sqrt(trials_sharpe_variance)
    typical = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    extreme = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return spread * ((1.0 - EULER_MASCHERONI) * typical + EULER_MASCHERONI * extreme)


def deflated_sharpe_ratio(
    sharpe: float,
    n_trials: int,
    trials_sharpe_variance: float,
    n_observations: int,
    skewness: float,
    kurtosis: float,
) -> float:
    """The probability that the true Sharpe ratio beats the best of ``n_trials`` lucky guesses.

    ``sharpe`` is the chosen configuration's Sharpe ratio per observation (not
    annualised), measured on ``n_observations`` returns with the given ``skewness``
    and ``kurtosis`` (not excess: a normal distribution has 3).
    ``trials_sharpe_variance`` is the variance of the Sharpe ratios (same units) of all
    the configurations tried. The benchmark is ``expected_maximum_sharpe``; the result
    is the probabilistic Sharpe ratio against it, between 0 and 1. Above 0.95 the
    result is unlikely to be luck.
    """
    for name, value in (("sharpe", sharpe), ("skewness", skewness), ("kurtosis", kurtosis)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    if n_observations < 2:
        raise ValueError(f"n_observations must be at least 2, got {n_observations}")
    benchmark = expected_maximum_sharpe(n_trials, trials_sharpe_variance)
    spread_sq = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if spread_sq <= 0:
        raise ValueError(
            f"skewness {skewness} and kurtosis {kurtosis} are impossible for a Sharpe ratio "
            f"of {sharpe} (is kurtosis the excess kurtosis? pass the plain one: normal = 3)"
        )
    z = (sharpe - benchmark) * math.sqrt(n_observations - 1) / math.sqrt(spread_sq)
    return _NORMAL.cdf(z)


def _checked_matrix(performance: np.ndarray, n_splits: int) -> np.ndarray:
    matrix = np.asarray(performance, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(
            f"performance must be 2-D (rows = time blocks, columns = configurations), "
            f"got {matrix.ndim}-D"
        )
    rows, columns = matrix.shape
    if columns < 2:
        raise ValueError(f"performance needs at least 2 configurations (columns), got {columns}")
    if n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even number >= 2, got {n_splits}")
    if n_splits > MAX_SPLITS:
        raise ValueError(f"n_splits must be at most {MAX_SPLITS}, got {n_splits}")
    if n_splits > rows:
        raise ValueError(
            f"n_splits ({n_splits}) must not exceed the number of rows (time blocks), got {rows}"
        )
    if not np.isfinite(matrix).all():
        raise ValueError("performance must hold only finite numbers (no NaN or infinity)")
    return matrix

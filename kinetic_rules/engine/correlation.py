"""How closely pairs' recent returns move together at one decision (`correlated_exposure`).

A decision compares the candidate pair with every pair held, over the same last candles.
Each pair's close-to-close returns are computed once (while its candles last), a
window is a slice of them when all its candles are there, and the correlations of one
decision are taken together — with the very numbers `correlation()` gives for the
window's last candle.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kinetic_rules.functions._windows import last_corrs

# A pair as the correlation reads it: open times (int64 nanoseconds, sorted) and closes.
Closes = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _Returns:
    returns: np.ndarray  # returns[i]: from candle i to candle i + 1
    step: int
    on_grid: bool  # every open time is a whole number of steps after the first


_KNOWN: dict[tuple[int, int], tuple[weakref.ref[np.ndarray], weakref.ref[np.ndarray], _Returns]]
_KNOWN = {}


def _returns(pair: Closes, step: int) -> _Returns:
    """The pair's returns, kept while its arrays live: a backtest asks at every decision."""
    times, closes = pair
    key = (id(times), id(closes))
    known = _KNOWN.get(key)
    if known is not None and known[0]() is times and known[1]() is closes and known[2].step == step:
        return known[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = closes[1:] / closes[:-1] - 1.0
    on_grid = bool(((times - times[0]) % step == 0).all()) if len(times) else True
    found = _Returns(returns, step, on_grid)

    def forget(_: object) -> None:
        _KNOWN.pop(key, None)

    _KNOWN[key] = (weakref.ref(times, forget), weakref.ref(closes, forget), found)
    return found


def recent_returns(pair: Closes, moment: int, step: int, lookback: int) -> np.ndarray:
    """Close-to-close returns of the last `lookback` candles closed by `moment` (ns), NaN
    where a candle of the window (or the one before it) is missing."""
    times, closes = pair
    last = int(np.searchsorted(times, moment - step))
    first = last - lookback
    if (
        first >= 0
        and last < len(times)
        and times[last] == moment - step
        and times[first] == moment - (lookback + 1) * step
    ):
        kept = _returns(pair, step)
        if kept.on_grid:  # lookback + 1 distinct times on the grid from first to last: all
            window: np.ndarray = kept.returns[first:last]
            return window
    opens = moment - np.arange(lookback + 1, 0, -1, dtype=np.int64) * step
    where = np.searchsorted(times, opens)
    inside = where < len(times)
    found = np.zeros(len(opens), dtype=bool)
    found[inside] = times[where[inside]] == opens[inside]
    with np.errstate(divide="ignore", invalid="ignore"):
        closing = np.where(found, closes[np.where(found, where, 0)], np.nan)
        gaps: np.ndarray = closing[1:] / closing[:-1] - 1.0
    return gaps


def return_correlations(
    pair: Closes, others: Sequence[Closes], moment: int, step: int, lookback: int
) -> np.ndarray:
    """Pearson correlation of `pair`'s returns with each of `others`' over the last
    `lookback` candles closed by `moment`, as `correlation()` computes it there:
    undefined (NaN) when a candle is missing or either is flat."""
    if not others:
        return np.zeros(0)
    mine = recent_returns(pair, moment, step, lookback)
    theirs = np.stack([recent_returns(other, moment, step, lookback) for other in others])
    return last_corrs(mine, theirs)

"""How closely pairs' recent returns move together at one decision (`correlated_exposure`).

A decision compares the candidate pair with every pair held, over the same last candles.
Each pair's close-to-close returns are computed once (while its candles last), a
window is a slice of them when all its candles are there, and the correlations of one
decision are taken together — with the very numbers `correlation()` gives for the
window's last candle.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kinetic_rules.functions._windows import EXACT_UP_TO, last_corr, last_corrs, pearson

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
    last = int(times.searchsorted(moment - step))
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
    if lookback <= EXACT_UP_TO:
        mine = recent_returns(pair, moment, step, lookback)
        theirs = np.stack([recent_returns(other, moment, step, lookback) for other in others])
        return last_corrs(mine, theirs)
    return _MomentWindows.at(moment, step, lookback).correlations(pair, others)


@dataclass(frozen=True)
class _Held:
    """The windows of the pairs held at one close: their returns, centred on each row's
    first, and each row's sum of centred values and of their squares (the sums
    `last_corrs` takes, row by row)."""

    pairs: Sequence[Closes]  # kept: the ids of their arrays stay theirs while cached
    returns: np.ndarray
    centred: np.ndarray
    totals: list[float]
    squares: list[float]


class _MomentWindows:
    """The windows of one decision moment: the pairs held are compared with every
    candidate of that close, so their windows and sums are taken once per moment (the
    cross sums, one per candidate and pair held, are what is left to each decision).
    Only the latest moment is kept: a backtest and a live run move forward."""

    _latest: _MomentWindows | None = None

    def __init__(self, moment: int, step: int, lookback: int) -> None:
        self.moment, self.step, self.lookback = moment, step, lookback
        self._held: dict[tuple[int, ...], _Held] = {}

    @classmethod
    def at(cls, moment: int, step: int, lookback: int) -> _MomentWindows:
        latest = cls._latest
        if latest is None or (latest.moment, latest.step, latest.lookback) != (
            moment,
            step,
            lookback,
        ):
            latest = cls._latest = cls(moment, step, lookback)
        return latest

    def correlations(self, pair: Closes, others: Sequence[Closes]) -> np.ndarray:
        """`last_corrs` of the stacked windows, with the held pairs' sums taken once."""
        returns = recent_returns(pair, self.moment, self.step, self.lookback)
        key = tuple(id(array) for other in others for array in other)
        held = self._held.get(key)
        if held is None:  # the first candidate of this close: its sums and theirs at once
            held, sums = self._with_held(returns, others)
            self._held[key] = held
        else:
            rows = np.empty((len(others) + 2, self.lookback))
            np.subtract(returns, returns[0], out=rows[0])
            np.multiply(rows[0], rows[0], out=rows[1])
            np.multiply(rows[0], held.centred, out=rows[2:])
            sums = rows.cumsum(axis=1)[:, -1].tolist()
        sx, sxx_sum = sums[0], sums[1]
        if not (math.isfinite(sx) and sxx_sum > 0):  # non-finite or flat: row by row
            return np.array([last_corr(returns, theirs) for theirs in held.returns])
        window = self.lookback
        sxx = sxx_sum - sx * sx / window
        out = np.empty(len(others))
        for row, (sy, syy_sum) in enumerate(zip(held.totals, held.squares, strict=True)):
            if not (math.isfinite(sy) and syy_sum > 0):
                out[row] = last_corr(returns, held.returns[row])
                continue
            syy = syy_sum - sy * sy / window
            sxy = sums[2 + row] - sx * sy / window
            out[row] = pearson(sxx, syy, sxy)
        return out

    def _with_held(self, returns: np.ndarray, pairs: Sequence[Closes]) -> tuple[_Held, list[float]]:
        """The held pairs' windows and sums, and the candidate's sums (its own, of its
        squares, and of its products with each held window), in one cumulative sum: the
        rows are summed one by one, so each gets the bits it gets alone."""
        count = len(pairs)
        theirs = [recent_returns(p, self.moment, self.step, self.lookback) for p in pairs]
        windows = np.concatenate([returns, *theirs]).reshape(count + 1, self.lookback)
        rows = np.empty((3 * count + 2, self.lookback))
        centred = rows[: count + 1]
        np.subtract(windows, windows[:, :1], out=centred)
        np.multiply(centred, centred, out=rows[count + 1 : 2 * count + 2])
        np.multiply(centred[0], centred[1:], out=rows[2 * count + 2 :])
        sums: list[float] = rows.cumsum(axis=1)[:, -1].tolist()
        held = _Held(
            tuple(pairs),
            windows[1:],
            centred[1:],
            sums[1 : count + 1],
            sums[count + 2 : 2 * count + 2],
        )
        mine = [sums[0], sums[count + 1], *sums[2 * count + 2 :]]
        return held, mine

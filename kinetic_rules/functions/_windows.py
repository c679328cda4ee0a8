"""Accurate rolling variance and covariance.

pandas' add/remove updates lose up to 1e-7 of a 5-candle standard deviation of
BTC prices, because the squares of 40 000 dwarf the spread. Here every block of
candles is centred on one of its own values first, and window sums are taken as
differences of block-local cumulative sums, so the numbers summed are about the
size of the spread. A block's centre is its first defined value: rows of the
block before it see a NaN in their window anyway, so no value depends on a later
candle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kinetic_rules.functions._core import Bools, Floats, nans

_MIN_BLOCK = 32
EXACT_UP_TO = 64  # windows this small are summed exactly, two passes per window
_CHUNK = 16_384  # rows per chunk of the exact path: bounds its memory


def _block_size(window: int) -> int:
    return max(4 * window, _MIN_BLOCK)


def restart_exactly(window: int) -> Callable[[int], int]:
    """For streams: a candle a call may start from and still give `row`'s value bit for bit.

    Small windows are summed on their own, so their own candles suffice. Larger ones are
    summed block by block, blocks counted from the first candle: a call must start on a
    block boundary, one block early so that the row's block has its whole span.
    """
    if window <= EXACT_UP_TO:
        return lambda row: max(0, row - window + 1)
    block = _block_size(window)
    return lambda row: max(0, (row // block - 1) * block)


def _centres(x: Floats, block: int) -> Floats:
    """The first defined value of each block (0 for an all-NaN block)."""
    n_blocks = -(-len(x) // block)
    padded = np.full(n_blocks * block, np.nan)
    padded[: len(x)] = x
    grid = padded.reshape(n_blocks, block)
    defined = ~np.isnan(grid)
    first = np.argmax(defined, axis=1)
    centres = grid[np.arange(n_blocks), first]
    centres[~defined.any(axis=1)] = 0.0
    return np.asarray(centres, dtype=np.float64)


def _spans(x: Floats, window: int, block: int) -> Floats:
    """Every block's span of candles (its rows' windows together), centred, NaN as 0."""
    n = len(x)
    n_blocks = -(-n // block)
    padded = np.full(window - 1 + n_blocks * block, np.nan)
    padded[window - 1 : window - 1 + n] = x
    spans = sliding_window_view(padded, block + window - 1)[::block]
    centred = spans - _centres(x, block)[:, None]
    centred[np.isnan(centred)] = 0.0
    return centred


def _sums(span_values: Floats, window: int, block: int, n: int) -> Floats:
    n_blocks = span_values.shape[0]
    cumulative = np.zeros((n_blocks, block + window))
    np.cumsum(span_values, axis=1, out=cumulative[:, 1:])
    return (cumulative[:, window:] - cumulative[:, :block]).reshape(-1)[:n]


def _has_nan(x: Floats, window: int) -> Bools:
    """True where the trailing window holds a NaN or is not yet full."""
    counts = np.concatenate(([0], np.cumsum(np.isnan(x))))
    n = len(x)
    out = np.ones(n, dtype=bool)
    if n >= window:
        out[window - 1 :] = (counts[window:] - counts[: n - window + 1]) > 0
    return out


def _constant(x: Floats, window: int) -> Bools:
    """True where the trailing window's values are all equal."""
    n = len(x)
    idx = np.arange(n)
    changed = np.ones(n, dtype=bool)
    changed[1:] = x[1:] != x[:-1]
    run_start = np.maximum.accumulate(np.where(changed, idx, 0))
    return (idx - run_start + 1) >= window


def _exact_moments(x: Floats, y: Floats, window: int) -> tuple[Floats, Floats, Floats, Floats]:
    """Per trailing window: sum of x, and the centred sums Σdx², Σdy², Σdx·dy, exactly.

    Small windows over nearly equal values (two candles' volumes, 999.99 and 1000) are
    where sums of large numbers cancel worst, so there each window is centred on its
    own mean before anything is squared.
    """
    n = len(x)
    if y is x:  # a variance: the three centred sums are one, taken once
        sx, sxx = nans(n), nans(n)
        for _, a, at in _chunks(x, window):
            da = a - a.mean(axis=1, keepdims=True)
            sx[at] = a.sum(axis=1)
            sxx[at] = (da * da).sum(axis=1)
        return sx, sxx, sxx, sxx
    sx, sxx, syy, sxy = (nans(n) for _ in range(4))
    wy = sliding_window_view(y, window)
    for lo, a, at in _chunks(x, window):
        b = wy[lo : lo + _CHUNK]
        da = a - a.mean(axis=1, keepdims=True)
        db = b - b.mean(axis=1, keepdims=True)
        sx[at] = a.sum(axis=1)
        sxx[at] = (da * da).sum(axis=1)
        syy[at] = (db * db).sum(axis=1)
        sxy[at] = (da * db).sum(axis=1)
    return sx, sxx, syy, sxy


def _chunks(x: Floats, window: int) -> Iterator[tuple[int, Floats, slice]]:
    """The trailing windows of x in chunks of rows: (first row, the windows, their candles)."""
    wx = sliding_window_view(x, window)
    for lo in range(0, len(wx), _CHUNK):
        a = wx[lo : lo + _CHUNK]
        yield lo, a, slice(window - 1 + lo, window - 1 + lo + len(a))


def rolling_var(x: Floats, window: int) -> Floats:
    """Population variance (ddof 0) of each trailing window, NaN if the window is incomplete."""
    n = len(x)
    out = nans(n)
    if n < window:
        return out
    if window <= EXACT_UP_TO:
        _, centred, _, _ = _exact_moments(x, x, window)
        var = np.maximum(centred / window, 0.0)
    else:
        block = _block_size(window)
        c = _spans(x, window, block)
        s1 = _sums(c, window, block, n)
        s2 = _sums(c * c, window, block, n)
        var = np.maximum(s2 / window - (s1 / window) ** 2, 0.0)
    var[_constant(x, window)] = 0.0
    var[_has_nan(x, window)] = np.nan
    out[:] = var
    return out


def rolling_mean_dev(x: Floats, window: int) -> tuple[Floats, Floats]:
    """(x − window mean, population variance), both from the same centred sums."""
    n = len(x)
    if n < window:
        return nans(n), nans(n)
    if window <= EXACT_UP_TO:
        total, centred, _, _ = _exact_moments(x, x, window)
        dev = x - total / window
        var = np.maximum(centred / window, 0.0)
    else:
        block = _block_size(window)
        c = _spans(x, window, block)
        s1 = _sums(c, window, block, n)
        s2 = _sums(c * c, window, block, n)
        own = c[:, window - 1 :].reshape(-1)[:n]  # each row's own centred value
        dev = own - s1 / window
        var = np.maximum(s2 / window - (s1 / window) ** 2, 0.0)
    constant = _constant(x, window)
    var[constant] = 0.0
    dev[constant] = 0.0
    missing = _has_nan(x, window)
    var[missing] = np.nan
    dev[missing] = np.nan
    return dev, var


def rolling_corr(x: Floats, y: Floats, window: int) -> Floats:
    """Pearson correlation of each trailing window; NaN where either side is constant."""
    n = len(x)
    out = nans(n)
    if n < window:
        return out
    if window <= EXACT_UP_TO:
        _, sxx, syy, sxy = _exact_moments(x, y, window)
    else:
        block = _block_size(window)
        cx = _spans(x, window, block)
        cy = _spans(y, window, block)
        sx = _sums(cx, window, block, n)
        sy = _sums(cy, window, block, n)
        sxx = _sums(cx * cx, window, block, n) - sx * sx / window
        syy = _sums(cy * cy, window, block, n) - sy * sy / window
        sxy = _sums(cx * cy, window, block, n) - sx * sy / window
    flat = _constant(x, window) | _constant(y, window) | (sxx <= 0) | (syy <= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0)
    r[flat | _has_nan(x, window) | _has_nan(y, window)] = np.nan
    out[:] = r
    return out


def last_corr(x: Floats, y: Floats) -> float:
    """`rolling_corr(x, y, len(x))[-1]`, bit for bit, without the other rows: the
    portfolio asks for one window's correlation at every decision. The block path's one
    window is centred on x's first defined value and summed by cumulative sums."""
    window = len(x)
    if window <= EXACT_UP_TO or not (np.isfinite(x).all() and np.isfinite(y).all()):
        return float(rolling_corr(x, y, window)[-1])
    if (x[1:] == x[0]).all() or (y[1:] == y[0]).all():
        return float("nan")  # constant: no correlation
    cx, cy = x - x[0], y - y[0]
    sx, sy = np.cumsum(cx)[-1], np.cumsum(cy)[-1]
    sxx = np.cumsum(cx * cx)[-1] - sx * sx / window
    syy = np.cumsum(cy * cy)[-1] - sy * sy / window
    sxy = np.cumsum(cx * cy)[-1] - sx * sy / window
    if sxx <= 0 or syy <= 0:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0))


def last_corrs(x: Floats, ys: Floats) -> Floats:
    """`last_corr(x, y)` for each row `y` of `ys`, bit for bit, in one pass: a decision
    compares one pair's window with those of every pair held. Sums along a row are
    cumulative (sequential), as in `last_corr`; the few scalars after them are taken in
    the same order. Rows with a non-finite or flat window go through `last_corr` itself."""
    count, window = ys.shape
    if window <= EXACT_UP_TO or count == 0:
        return np.array([last_corr(x, y) for y in ys], dtype=np.float64).reshape(count)
    rows = np.concatenate((x[None, :], ys))
    centred = rows - rows[:, :1]
    terms = np.concatenate((centred, centred * centred, centred[0] * centred[1:]))
    totals: list[float] = np.cumsum(terms, axis=1)[:, -1].tolist()
    sx, sxx_sum = totals[0], totals[count + 1]
    # A non-finite value makes its row's sum non-finite; a flat row has no square > 0.
    if not (math.isfinite(sx) and sxx_sum > 0):
        return np.array([last_corr(x, y) for y in ys], dtype=np.float64)
    sxx = sxx_sum - sx * sx / window
    out = np.empty(count)
    for row in range(count):
        sy, syy_sum = totals[1 + row], totals[count + 2 + row]
        if not (math.isfinite(sy) and syy_sum > 0):
            out[row] = last_corr(x, ys[row])
            continue
        syy = syy_sum - sy * sy / window
        sxy = totals[2 * count + 2 + row] - sx * sy / window
        out[row] = pearson(sxx, syy, sxy)
    return out


def pearson(sxx: float, syy: float, sxy: float) -> float:
    """The end of `last_corr` on Python floats: the same IEEE operations (the square root
    is correctly rounded in both), and a division by zero ending as numpy's does."""
    if sxx <= 0 or syy <= 0:
        return math.nan
    root = math.sqrt(sxx * syy)
    if root == 0.0:  # the product underflowed
        return math.nan if sxy == 0 or sxy != sxy else math.copysign(1.0, sxy)
    return min(max(sxy / root, -1.0), 1.0)

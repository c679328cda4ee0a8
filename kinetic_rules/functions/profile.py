"""Volume profile over a trailing window: point of control and value area.

Prices are grouped on one fixed logarithmic grid: bin k holds the typical prices
in [base^k, base^(k+1)) with base = 1 + bin_pct/100, so every bin is bin_pct
percent wide at any price and bins never shift between candles. That keeps each
window's histogram a running total — add the new candle, drop the oldest — and
the whole history is processed in blocks of rows with numpy, not candle by candle.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kinetic_rules.functions import _core as core
from kinetic_rules.functions import _stream as stream
from kinetic_rules.functions._define import define, number, of, window
from kinetic_rules.functions.registry import Array, StreamFactory
from kinetic_rules.units import Unit

CATEGORY = "volume profile"
_INPUTS = ("high", "low", "close", "volume")
_ROWS = 256  # rows per block; fixed, so no value depends on how long the data is
Ints = npt.NDArray[np.int64]


def bin_index(typical: core.Floats, bin_pct: float) -> Ints:
    """Grid bin of each price (only meaningful for positive prices)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.floor(np.log(typical) / np.log1p(bin_pct / 100.0))
    return np.asarray(np.nan_to_num(k, nan=0.0, posinf=0.0, neginf=0.0), dtype=np.int64)


def bin_edge(k: Array, bin_pct: float) -> core.Floats:
    return np.asarray(np.exp(np.asarray(k, dtype=np.float64) * np.log1p(bin_pct / 100.0)))


def _prepare(
    high: Array, low: Array, close: Array, volume: Array, bin_pct: float
) -> tuple[Ints, core.Floats, core.Bools]:
    """(bin of each candle, its volume, whether the candle is usable)."""
    h, lo, c, v = core.floats(high, low, close, volume)
    typical = (h + lo + c) / 3.0
    usable = (typical > 0) & (v >= 0)  # NaN compares false
    bins = bin_index(typical, bin_pct)
    if usable.any() and not usable.all():
        # An unusable candle adds nothing; give it a neighbour's bin so the grid stays narrow.
        idx = np.where(usable, np.arange(len(bins)), -1)
        last = np.maximum.accumulate(idx)
        last[last < 0] = int(np.argmax(usable))
        bins = bins[last]
    return bins, np.where(usable, v, 0.0), usable


def _histograms(
    bins: Ints, vol: core.Floats, w: int, start: int, stop: int
) -> tuple[core.Floats, Ints]:
    """Volume per occupied bin for the windows ending at rows start..stop−1.

    Columns are the distinct bins of the span, in price order, so one glitched
    candle far from the others costs a column, not a million empty ones.
    """
    lo = start - w + 1
    levels, column = np.unique(bins[lo:stop], return_inverse=True)
    width = len(levels)
    rows = stop - start
    both = np.zeros((rows, 2 * width))  # volume and count side by side: one running total
    volume, count = both[:, :width], both[:, width:]
    volume[0] = np.bincount(column[:w], weights=vol[lo : start + 1], minlength=width)
    count[0] = np.bincount(column[:w], minlength=width)
    if rows > 1:
        r = np.arange(1, rows)
        enter, leave = column[w - 1 + r], column[r - 1]
        volume[r, enter] += vol[start + r]
        volume[r, leave] -= vol[start + r - w]
        count[r, enter] += 1.0
        count[r, leave] -= 1.0
    _running_total(both)
    volume[count < 0.5] = 0.0  # rounding residue of a bin that emptied
    return np.maximum(volume, 0.0), np.asarray(levels, dtype=np.int64)


def _running_total(rows: core.Floats) -> None:
    """Each row becomes the sum of itself and all rows above it, in place.

    Added row after row, as np.cumsum(axis=0) would, to the same bits; one vector add per
    row is faster than cumsum's walk down each column, and the rows are taken as views once
    because making two views per row cost more than the additions."""
    add = np.add
    views = list(rows)
    for above, row in itertools.pairwise(views):
        add(above, row, out=row)


def _in_window(flags: core.Bools, w: int) -> Ints:
    """How many flagged candles each complete trailing window holds (0 when incomplete)."""
    counts = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    out = np.zeros(len(flags), dtype=np.int64)
    if len(flags) >= w:
        out[w - 1 :] = counts[w:] - counts[: len(flags) - w + 1]
    return out


def _profile(
    high: Array,
    low: Array,
    close: Array,
    volume: Array,
    w: int,
    bin_pct: float,
    value_area: float | None,
) -> tuple[core.Floats, core.Floats, core.Floats]:
    """(POC, VAH, VAL) per candle; the value area is skipped when value_area is None.

    A strategy reading the value area's high and low (and its POC) over the same candles
    and window asks for the same profile two or three times in a row: the last one is
    kept, and given again when the candles are the same to the bit. A POC asked first
    keeps its histograms too (when they are small enough), so the value area asked next
    over the same candles only ranks them."""
    h, lo, c, v = core.floats(high, low, close, volume)
    columns = (h, lo, c, v)
    last = _LAST[0]
    if last is not None and last.answers(w, bin_pct, value_area, columns):
        return (last.values[0].copy(), last.values[1].copy(), last.values[2].copy())
    blocks = None
    if last is not None and last.blocks is not None and last.answers(w, bin_pct, None, columns):
        blocks = last.blocks
    found, kept_blocks = _compute_profile(h, lo, c, v, w, bin_pct, value_area, blocks)
    kept = tuple(np.array(c, dtype=np.float64) for c in columns)  # the caller's may change
    values = (found[0].copy(), found[1].copy(), found[2].copy())
    _LAST[0] = _Kept(w, bin_pct, value_area, kept, values, kept_blocks)
    return found


# One block's histograms: volume per occupied level (rows × levels), and those levels.
_Block = tuple[core.Floats, Ints]
_KEPT_BYTES = 64 * 2**20  # histograms a POC keeps for the value area asked next


@dataclass(frozen=True)
class _Kept:
    """The last profile computed: its window and grid, its candles, its values, and (after
    a POC alone) its histograms."""

    window: int
    bin_pct: float
    value_area: float | None
    columns: tuple[core.Floats, ...]
    values: tuple[core.Floats, core.Floats, core.Floats]
    blocks: tuple[_Block, ...] | None

    def answers(
        self, w: int, bin_pct: float, value_area: float | None, columns: tuple[core.Floats, ...]
    ) -> bool:
        """Is this the profile asked for? Its POC does whatever the value area asked."""
        if (self.window, self.bin_pct) != (w, bin_pct):
            return False
        if value_area is not None and self.value_area != value_area:
            return False
        return all(
            a.shape == b.shape
            and np.array_equal(a.view(np.int64), np.ascontiguousarray(b).view(np.int64))
            for a, b in zip(self.columns, columns, strict=True)
        )


_LAST: list[_Kept | None] = [None]


def forget_last_profile() -> None:
    """Drop the kept profile, so that the next call computes (for timing it)."""
    _LAST[0] = None


def _compute_profile(
    high: Array,
    low: Array,
    close: Array,
    volume: Array,
    w: int,
    bin_pct: float,
    value_area: float | None,
    blocks: tuple[_Block, ...] | None = None,
) -> tuple[tuple[core.Floats, core.Floats, core.Floats], tuple[_Block, ...] | None]:
    """(POC, VAH, VAL) per candle, the value area skipped when value_area is None; and,
    for a POC alone, its histograms when they fit in _KEPT_BYTES. `blocks` are histograms
    of these candles, window and grid computed before."""
    if not bin_pct > 0:
        raise ValueError(f"bin_pct must be above 0, got {bin_pct:g}")
    if value_area is not None and not 0 < value_area <= 100:
        raise ValueError(f"value_area is a percentage above 0 and at most 100, got {value_area:g}")
    bins, vol, usable = _prepare(high, low, close, volume, bin_pct)
    n = len(bins)
    poc, vah, val = core.nans(n), core.nans(n), core.nans(n)
    kept: list[_Block] | None = [] if value_area is None else None
    size = 0
    for block, start in enumerate(range(w - 1, n, _ROWS)):
        stop = min(n, start + _ROWS)
        hist, levels = (
            blocks[block] if blocks is not None else _histograms(bins, vol, w, start, stop)
        )
        if kept is not None:
            size += hist.nbytes
            if size <= _KEPT_BYTES:
                kept.append((hist, levels))
            else:
                kept = None
        rows = slice(start, stop)
        top = levels[np.argmax(hist, axis=1)]
        poc[rows] = (bin_edge(top, bin_pct) + bin_edge(top + 1, bin_pct)) / 2.0
        if value_area is None:
            continue
        highest, lowest = value_area_columns(hist, value_area)
        vah[rows] = bin_edge(levels[highest] + 1, bin_pct)
        val[rows] = bin_edge(levels[lowest], bin_pct)
    # Undefined where the window holds an unusable candle or traded nothing at all.
    broken = (_in_window(~usable, w) > 0) | (_in_window(vol > 0, w) == 0)
    for out in (poc, vah, val):
        out[broken] = np.nan
    return (poc, vah, val), None if kept is None else tuple(kept)


def value_area_columns(hist: core.Floats, value_area: float) -> tuple[Ints, Ints]:
    """Columns of the highest and lowest level of each row's value area.

    Levels are taken from the busiest down; the value area is the shortest such prefix
    holding the target share, ties at the cut going to the lower price. Only the volumes
    in that order are needed to find the cut (sorting values is far cheaper than a stable
    sort of columns): every level busier than the cut is inside, and so are the levels
    equal to it when all of them are needed. A row where only some are (a tie at the cut,
    or no volume defined) takes the stable order of its columns itself."""
    ranked = -np.sort(-hist, axis=1)  # busiest first, undefined last
    target = hist.sum(axis=1) * (value_area / 100.0) * (1.0 - 1e-12)
    taken = _first_covering(ranked, target)
    cut = ranked[np.arange(len(ranked)), taken][:, None]
    above = hist > cut
    at_cut = hist == cut
    inside = above | at_cut
    width = hist.shape[1]
    ragged = np.flatnonzero(at_cut.sum(axis=1) != taken + 1 - above.sum(axis=1))
    if len(ragged):
        order = np.argsort(-hist[ragged], axis=1, kind="stable")
        prefix = np.arange(width)[None, :] <= taken[ragged, None]
        exact = np.zeros((len(ragged), width), dtype=bool)
        np.put_along_axis(exact, order, prefix, axis=1)
        inside[ragged] = exact
    highest = width - 1 - np.argmax(inside[:, ::-1], axis=1)
    lowest = np.argmax(inside, axis=1)
    return highest, lowest


def _first_covering(ranked: core.Floats, target: core.Floats) -> Ints:
    """Per row, the first column where the running total of `ranked` reaches `target`
    (0 where it never does), as np.argmax(np.cumsum(ranked, axis=1) >= target) finds it.

    A running total's first columns do not depend on the later ones, and the value area
    rarely needs more than a third of the levels: the first half is added up, and the
    whole row only for the rows that half does not cover."""
    head = (ranked.shape[1] + 1) // 2
    reached = np.cumsum(ranked[:, :head], axis=1) >= target[:, None]
    taken = np.argmax(reached, axis=1)
    short = np.flatnonzero(~reached[np.arange(len(taken)), taken])
    if len(short):
        covered = np.cumsum(ranked[short], axis=1)
        taken[short] = np.argmax(covered >= target[short, None], axis=1)
    return np.asarray(taken, dtype=np.int64)


def _poc(high: Array, low: Array, close: Array, volume: Array, w: int, bin_pct: float) -> Array:
    return _profile(high, low, close, volume, w, bin_pct, None)[0]


def _vah(
    high: Array, low: Array, close: Array, volume: Array, w: int, area: float, bin_pct: float
) -> Array:
    return _profile(high, low, close, volume, w, bin_pct, area)[1]


def _val(
    high: Array, low: Array, close: Array, volume: Array, w: int, area: float, bin_pct: float
) -> Array:
    return _profile(high, low, close, volume, w, bin_pct, area)[2]


def _restart(w: int) -> stream.Restart:
    """Blocks of rows start at candle w − 1 + k·_ROWS and read back w − 1 candles: a call
    starting at k·_ROWS lines its blocks up with those of a call over all candles."""
    return lambda row: _ROWS * max(0, (row - (w - 1)) // _ROWS)


def _profile_stream(impl: Callable[..., Array]) -> StreamFactory:
    return stream.from_constants(
        lambda w, *rest: stream.Replay(lambda *cols: impl(*cols, w, *rest), _restart(w))
    )


_WINDOW = window("window", "how many candles, or how long, the profile covers, e.g. 7d")
_BIN = number(
    "bin_pct", "width of each price level, in percent of the price", 0.1, 0.01, maximum=100
)
_AREA = number("value_area", "percentage of the volume the value area holds", 70.0, 1, maximum=100)
# Both are percentages written as percent points: value_area=70 is 70%, not 70% of 1%.
_BIN_UNITS = {"bin_pct": Unit.PERCENT}
_PROFILE_UNITS = {"value_area": Unit.PERCENT, **_BIN_UNITS}
_GRID = (
    " Typical prices (high + low + close) / 3 are grouped into price levels that are each "
    "`bin_pct` percent wide, on one fixed grid, and each candle's whole volume goes to the "
    "level of its typical price."
)
_AREA_DEF = (
    " The value area is found by taking levels from the busiest down until they hold at "
    "least `value_area` percent of the window's volume; its high is the top edge of the "
    "highest of those levels and its low the bottom edge of the lowest."
)

define(
    "volume_profile_poc",
    CATEGORY,
    "Point of control: the price level where the most volume traded over the last "
    "`window` candles (the middle of that level; on a tie, the lowest such level)." + _GRID,
    (_WINDOW, _BIN),
    _poc,
    of("window"),
    inputs=_INPUTS,
    example="above_poc: close > volume_profile_poc(7d)",
    stream=_profile_stream(_poc),
    unit=Unit.PRICE,
    arg_units=_BIN_UNITS,
)

define(
    "volume_profile_vah",
    CATEGORY,
    "Value area high: the top of the price range where most of the volume (by default "
    "70%) traded over the last `window` candles." + _GRID + _AREA_DEF,
    (_WINDOW, _AREA, _BIN),
    _vah,
    of("window"),
    inputs=_INPUTS,
    example="above_value: close > volume_profile_vah(7d)",
    stream=_profile_stream(_vah),
    unit=Unit.PRICE,
    arg_units=_PROFILE_UNITS,
)

define(
    "volume_profile_val",
    CATEGORY,
    "Value area low: the bottom of the price range where most of the volume (by default "
    "70%) traded over the last `window` candles." + _GRID + _AREA_DEF,
    (_WINDOW, _AREA, _BIN),
    _val,
    of("window"),
    inputs=_INPUTS,
    example="below_value: close < volume_profile_val(7d, 70, 0.1)",
    stream=_profile_stream(_val),
    unit=Unit.PRICE,
    arg_units=_PROFILE_UNITS,
)

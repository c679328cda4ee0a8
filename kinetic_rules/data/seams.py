"""Does a file of candles belong to the series it is being added to?

A file named for the wrong pair, or one whose prices are in another unit (a price
scale off by orders of magnitude), passes every row check: each candle is a fine
candle, of something else. Where the file meets the stored series, its prices and
the stored ones must agree: on candles both hold (the same candle, so nearly the
same price), or across the seam where one ends and the other begins (a market can
move, but not by a factor of several from one stretch to the next).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kinetic_rules.data.candles import format_time
from kinetic_rules.data.validate import Issue

SEAM_CANDLES = 5  # closes on each side of a seam whose median is compared
OVERLAP_FACTOR = 1.5  # the same candles, from two sources, never differ by half
ADJACENT_FACTOR = 5.0  # across a seam at most 30 days wide
DISTANT_FACTOR = 20.0  # across a wider seam: only orders of magnitude are flagged
DISTANT_AFTER = pd.Timedelta(days=30)

ACCEPT_FLAG = "--accept-price-jump"


def seam_issue(new: pd.DataFrame, stored: pd.DataFrame | None, pair: str) -> Issue | None:
    """A fatal issue when the file's prices cannot be the stored pair's, else None."""
    if stored is None or not len(stored) or not len(new):
        return None
    common = new.index.intersection(stored.index)
    if len(common):
        ratio = float(np.median(new["close"].loc[common] / stored["close"].loc[common]))
        if _apart(ratio) > OVERLAP_FACTOR:
            where = f"{format_time(common[0].value)} .. {format_time(common[-1].value)}"
            return _issue(pair, f"on the {len(common):,} candles both hold ({where})", ratio)
        return None
    for seam, here, there in _seams(new, stored):
        ratio = here / there
        span = abs(seam[1] - seam[0])
        limit = ADJACENT_FACTOR if span <= DISTANT_AFTER else DISTANT_FACTOR
        if _apart(ratio) > limit:
            where = f"at the seam {format_time(seam[0].value)} | {format_time(seam[1].value)}"
            return _issue(pair, where, ratio)
    return None


def _seams(
    new: pd.DataFrame, stored: pd.DataFrame
) -> list[tuple[tuple[pd.Timestamp, pd.Timestamp], float, float]]:
    """Each place the file meets stored candles: (the two open times, file close, stored close)."""
    found = []
    before = stored[stored.index < new.index[0]]
    if len(before):
        here = float(new["close"].iloc[:SEAM_CANDLES].median())
        there = float(before["close"].iloc[-SEAM_CANDLES:].median())
        found.append(((before.index[-1], new.index[0]), here, there))
    after = stored[stored.index > new.index[-1]]
    if len(after):
        here = float(new["close"].iloc[-SEAM_CANDLES:].median())
        there = float(after["close"].iloc[:SEAM_CANDLES].median())
        found.append(((new.index[-1], after.index[0]), here, there))
    return found


def _apart(ratio: float) -> float:
    return max(ratio, 1.0 / ratio) if ratio > 0 else float("inf")


def _issue(pair: str, where: str, ratio: float) -> Issue:
    apart = _apart(ratio)
    times = f"{apart:,.0f}" if apart >= 10 else f"{apart:.1f}"
    side = "higher" if ratio > 1 else "lower"
    example = (
        f"{where}, this file's closes are {times}x {side} than the stored {pair} "
        f"candles: another pair, or prices in another unit? Pass {ACCEPT_FLAG} to import "
        "it anyway"
    )
    return Issue(
        "price_seam",
        f"prices inconsistent with the stored {pair} history",
        1,
        (example,),
        fatal=True,
        unit="seam",
    )

"""The scanner, point in time: which pairs may trade, rebuilt on its schedule from the
values known at each refresh — across pairs at once, one matrix row per refresh."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kinetic_rules.lang.checked import ScannerRule
from kinetic_rules.patterns import matches_any
from kinetic_rules.spec.models import Scanner


@dataclass(frozen=True)
class Shortlist:
    """For every candle of the timeline, which pairs (columns) may be entered."""

    allowed: np.ndarray  # bool [candles × pairs]: may be entered at that candle's close
    refreshes: int
    skipped: tuple[str, ...]  # steps not run in a backtest, e.g. live-only filters


def blacklisted(pair: str, patterns: list[str]) -> bool:
    """Whether a blacklist pattern matches the whole pair name, in linear time (RE2)."""
    return matches_any(pair, patterns)


def refresh_rows(
    spec: Scanner | None, timeline: pd.DatetimeIndex, timeframe_seconds: int
) -> np.ndarray:
    """Candles of the timeline whose close falls on a refresh: where the shortlist is rebuilt."""
    if spec is None:
        return np.zeros(0, dtype=np.int64)
    closes = timeline.as_unit("ns").asi8 // 1_000_000_000 + timeframe_seconds
    return np.flatnonzero(closes % spec.refresh == 0)


def shortlist(
    spec: Scanner | None,
    rules: list[ScannerRule],
    pairs: list[str],
    rows: np.ndarray,  # refresh candles, from refresh_rows
    candles: int,
    values: dict[int, np.ndarray],  # id(rule) -> [refreshes × pairs] values at those candles
    available: np.ndarray,  # bool [candles × pairs]: the pair has a candle there
) -> Shortlist:
    width = len(pairs)
    if spec is None:
        return Shortlist(available.copy(), 0, ())
    keep = np.array([not blacklisted(p, spec.blacklist) for p in pairs])
    if spec.universe:
        keep &= np.array([p in spec.universe for p in pairs])
    skipped = tuple(f"scanner step '{r.name}': needs live data" for r in rules if r.live_only)
    keep = keep & available[rows]
    for rule in rules:
        if rule.live_only:
            continue
        matrix = values[id(rule)]
        if rule.top is None:
            keep &= matrix == 1.0
        else:
            ranked = np.where(keep & ~np.isnan(matrix), matrix, -np.inf)
            order = np.argsort(-ranked, axis=1, kind="stable")  # ties: pair order
            top = np.zeros_like(keep)
            np.put_along_axis(top, order[:, : rule.top], True, axis=1)
            keep &= top & np.isfinite(ranked)
    # Each refresh holds until the next one; before the first, nothing may be traded.
    which = np.searchsorted(rows, np.arange(candles), side="right") - 1
    allowed = np.zeros((candles, width), dtype=bool)
    valid = which >= 0
    allowed[valid] = keep[which[valid]]
    return Shortlist(allowed & available, len(rows), skipped)

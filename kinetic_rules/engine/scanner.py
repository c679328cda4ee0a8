"""The scanner, point in time: which pairs may trade, rebuilt on its schedule from the
values known at each refresh — across pairs at once, one matrix row per refresh.

Steps that read live-only inputs (a `tight_spread` filter on `spread`) are skipped in
backtests. A running session gives them the inputs it read at a refresh close, and they
run there; at refreshes the session did not see live (before it started, or caught up
after a restart) they are skipped, as in a backtest."""

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
    live_at: np.ndarray | None = None,  # bool [candles]: live inputs were read at its close
) -> Shortlist:
    width = len(pairs)
    if spec is None:
        return Shortlist(available.copy(), 0, ())
    keep = np.array([not blacklisted(p, spec.blacklist) for p in pairs])
    if spec.universe:
        keep &= np.array([p in spec.universe for p in pairs])
    skipped: tuple[str, ...] = ()
    if live_at is None:
        skipped = tuple(f"scanner step '{r.name}': needs live data" for r in rules if r.live_only)
    keep = keep & available[rows]
    everywhere = np.ones(len(rows), dtype=bool)
    live_rows = live_at[rows] if live_at is not None else np.zeros(len(rows), dtype=bool)
    for rule in rules:
        at = live_rows if rule.live_only else everywhere  # the refreshes the step runs at
        if not at.any():
            continue
        matrix = values[id(rule)][at]
        if rule.top is None:
            keep[at] &= matrix == 1.0
        else:
            ranked = np.where(keep[at] & ~np.isnan(matrix), matrix, -np.inf)
            order = np.argsort(-ranked, axis=1, kind="stable")  # ties: pair order
            top = np.zeros_like(ranked, dtype=bool)
            np.put_along_axis(top, order[:, : rule.top], True, axis=1)
            keep[at] &= top & np.isfinite(ranked)
    # Each refresh holds until the next one; before the first, nothing may be traded.
    which = np.searchsorted(rows, np.arange(candles), side="right") - 1
    allowed = np.zeros((candles, width), dtype=bool)
    valid = which >= 0
    allowed[valid] = keep[which[valid]]
    return Shortlist(allowed & available, len(rows), skipped)

"""Candles as they arrive, kept in rolling windows and evaluated afresh at every close.

A live bot cannot keep all history in memory, so each (pair, timeframe) keeps a window.
Windows are long on purpose: recursive indicators (EMA, RSI, ATR) depend on where their
history starts, and the influence of the start decays geometrically — after a few
thousand candles it is below what a float64 can represent, so the values match a
computation over all history. Longer timeframes are cheap and keep more.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from kinetic_rules.compile.evaluate import Evaluator
from kinetic_rules.compile.plan import Plan
from kinetic_rules.engine.pairs import prepare_market
from kinetic_rules.engine.portfolio import PairData

DEFAULT_WINDOW = 3000  # candles kept per (pair, timeframe) at least


def window_sizes(plan: Plan, least: int = DEFAULT_WINDOW) -> dict[str, int]:
    """Candles to keep per timeframe: the warm-up, many times over, and never fewer than `least`."""
    return {tf: max(least, 10 * candles) for tf, candles in plan.warmup.items()}


class WindowSource:
    """The market as known now, one rolling window per (pair, timeframe)."""

    def __init__(
        self,
        plan: Plan,
        pairs: list[str],
        history: Mapping[tuple[str, str], pd.DataFrame],
        sizes: dict[str, int] | None = None,
    ) -> None:
        self.plan = plan
        self._pairs = list(pairs)
        self.sizes = sizes or window_sizes(plan)
        self._frames: dict[tuple[str, str], pd.DataFrame] = {}
        # One evaluator for the whole session: series of a longer timeframe or another
        # pair are recomputed only when their own candles change.
        self._evaluator = Evaluator(plan, self._feed)
        for (pair, timeframe), frame in history.items():
            self.add(pair, timeframe, frame)
        self.timeline = pd.DatetimeIndex([], tz="UTC")
        self._view: dict[str, PairData] = {}
        self._skipped: tuple[str, ...] = ()

    def pairs(self) -> list[str]:
        return list(self._pairs)

    def skipped(self) -> tuple[str, ...]:
        return self._skipped

    def add(self, pair: str, timeframe: str, candles: pd.DataFrame) -> None:
        """Append newly closed candles; a candle seen before is replaced, never duplicated."""
        key = (pair, timeframe)
        old = self._frames.get(key)
        frame = candles if old is None else pd.concat([old, candles])
        frame = frame[~frame.index.duplicated(keep="last")].sort_index()
        self._frames[key] = frame.iloc[-self.sizes.get(timeframe, DEFAULT_WINDOW) :]
        if hasattr(self, "_evaluator"):
            self._evaluator.invalidate(pair, timeframe)

    def refresh(self) -> int:
        """Evaluate every pair over its window; returns the step of the newest close."""
        market = prepare_market(self.plan, self._feed, self._pairs, evaluator=self._evaluator)
        self.timeline = market.timeline
        self._view = {data.pair: data for data in market.pairs}
        self._skipped = market.skipped
        return len(self.timeline) - 1

    def as_of(self, step: int) -> dict[str, PairData]:
        if step != len(self.timeline) - 1:
            raise ValueError("a window source only knows the newest close; call refresh() first")
        return self._view

    def _feed(self, pair: str, timeframe: str) -> pd.DataFrame:
        frame = self._frames.get((pair, timeframe))
        if frame is None:
            raise KeyError(f"no {timeframe} candles for {pair} in the live window")
        return frame

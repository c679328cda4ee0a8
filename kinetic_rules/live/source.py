"""Where the live runtime's view of the market comes from, one closed candle at a time.

A source answers one question: at the close of this candle, what does every pair look
like — its candles so far, its signals so far, its scanner verdicts so far? The replay
source computes all of it once from recorded candles and hands out the part up to each
candle. That is exact, not an approximation: every signal, verdict and scanner list at
a candle depends only on candles up to it (tested for every function, rule and the
scanner), so the part up to t of the whole equals what a bot would compute at t.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Protocol

import numpy as np
import pandas as pd

from kinetic_rules.compile.evaluate import PairSignals
from kinetic_rules.compile.plan import Plan
from kinetic_rules.engine.futures import MarketExtras
from kinetic_rules.engine.pairs import Feed, Progress, prepare_market
from kinetic_rules.engine.portfolio import PairData


class MarketSource(Protocol):
    timeline: pd.DatetimeIndex  # base candles (open times) the runtime steps through

    def pairs(self) -> list[str]: ...

    def as_of(self, step: int) -> dict[str, PairData]:
        """Every pair as known at the close of timeline candle `step`."""
        ...

    def skipped(self) -> tuple[str, ...]: ...


class ReplaySource:
    """Recorded candles, replayed in order; `start` skips ahead, keeping the warm-up."""

    def __init__(
        self,
        plan: Plan,
        feed: Feed,
        pairs: list[str],
        start: pd.Timestamp | None = None,
        progress: Progress | None = None,
        extras: MarketExtras | None = None,
    ) -> None:
        # a store-backed feed knows each pair's open times without reading its candles
        index = getattr(feed, "index", None)
        market = prepare_market(plan, feed, pairs, start, progress, extras=extras, index=index)
        self.timeline = market.timeline
        self._market = market
        self._by_pair = {d.pair: d for d in market.pairs}

    def pairs(self) -> list[str]:
        return list(self._by_pair)

    def skipped(self) -> tuple[str, ...]:
        return self._market.skipped

    def steps(self) -> Iterator[int]:
        return iter(range(len(self.timeline)))

    def as_of(self, step: int) -> dict[str, PairData]:
        views = {}
        for pair, data in self._by_pair.items():
            known = int(np.searchsorted(data.timeline_index, step, side="right"))
            views[pair] = _prefix(data, known)
        return views


def _prefix(data: PairData, known: int) -> PairData:
    """The pair's first `known` candles: what a bot holding data up to then would see."""
    signals = data.signals
    cut = PairSignals(
        signals.pair,
        signals.index[:known],
        {node: values[:known] for node, values in signals.values.items()},
        signals.regime[:known] if signals.regime is not None else None,
    )
    return replace(
        data,
        signals=cut,
        prices={k: v[:known] for k, v in data.prices.items()},
        timeline_index=data.timeline_index[:known],
        allowed=data.allowed[:known],
        entries={side: v[:known] for side, v in data.entries.items()},
        blocked=data.blocked[:known] if data.blocked is not None else None,
        limit=data.limit[:known] if data.limit is not None else None,
    )

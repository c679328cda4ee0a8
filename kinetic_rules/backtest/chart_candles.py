"""The candles a result's charts are drawn from, per pair: read from the feed when asked
for (a result that may be kept, as a search keeps its trials), or the prices the run
held anyway (the backtest command, which writes its report straight after)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pandas as pd

from kinetic_rules.engine.portfolio import PairData

Feed = Callable[[str, str], pd.DataFrame]


class StoredCandles(Mapping[str, pd.DataFrame]):
    """Each pair's candles for the report's charts, read when asked for, not held."""

    def __init__(self, feed: Feed, timeframe: str, pairs: list[str]) -> None:
        self.feed, self.timeframe, self.pairs = feed, timeframe, pairs

    def __getitem__(self, pair: str) -> pd.DataFrame:
        if pair not in self.pairs:
            raise KeyError(pair)
        return self.feed(pair, self.timeframe)

    def __iter__(self) -> Iterator[str]:
        return iter(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)


class HeldCandles(Mapping[str, pd.DataFrame]):
    """Each pair's candles for the report's charts, from the prices the run already holds:
    the command that writes a report does not read every traded pair's candles again."""

    def __init__(self, data: list[PairData]) -> None:
        self.held = {d.pair: (d.signals.index, d.prices) for d in data}

    def __getitem__(self, pair: str) -> pd.DataFrame:
        index, prices = self.held[pair]
        return pd.DataFrame({k: prices[k] for k in ("open", "high", "low", "close")}, index=index)

    def __iter__(self) -> Iterator[str]:
        return iter(self.held)

    def __len__(self) -> int:
        return len(self.held)

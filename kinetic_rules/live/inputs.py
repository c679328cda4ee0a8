"""Live-only inputs (`spread`, `book_imbalance`) read from the exchange at each decision.

Candles carry no order book, so backtests and replays leave these names undefined. A
running session (paper or real) reads, for every pair it decides on, the best bid and
ask of all pairs in one batched ticker call where the exchange offers it, and the top
of each pair's order book, and hands the values to the evaluator for the close just
decided. A pair whose book cannot be read keeps the inputs undefined at that close:
a rule that needs them does not hold, as in a backtest, and the session goes on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kinetic_rules.data.exchange import RetryPolicy, call_with_retry
from kinetic_rules.errors import ExchangeError

log = logging.getLogger("kinetic_rules.live")

BOOK_DEPTH = 5  # levels on each side summed for `book_imbalance`: "near the top of the book"
_NEEDS_BOOK = frozenset({"book_imbalance"})


@dataclass
class LiveInputs:
    """Reads the live-only names a plan uses, pair by pair, from a ccxt client."""

    exchange: Any
    names: frozenset[str]
    depth: int = BOOK_DEPTH
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=2, base_delay=0.5))
    seconds_spent: float = 0.0  # total time spent gathering, for benchmarks and logs

    def read(self, pairs: Iterable[str]) -> dict[str, dict[str, float]]:
        """The value of each needed name for each pair; a name left out is undefined."""
        wanted = sorted(set(pairs))
        if not wanted or not self.names:
            return {}
        began = time.perf_counter()
        try:
            values = {pair: dict[str, float]() for pair in wanted}
            tops = self._tops(wanted)
            for pair in wanted:
                book = self._book(pair) if self.names & _NEEDS_BOOK or pair not in tops else None
                bid, ask = tops.get(pair, (math.nan, math.nan))
                if book is not None:
                    bid, ask = _best(book["bids"], bid), _best(book["asks"], ask)
                values[pair].update(_derive(self.names, bid, ask, book, self.depth))
            return values
        finally:
            self.seconds_spent += time.perf_counter() - began

    def _tops(self, pairs: list[str]) -> dict[str, tuple[float, float]]:
        """Best bid and ask of every pair from one batched ticker call, where offered."""
        if not self.exchange.has.get("fetchTickers"):
            return {}
        try:
            tickers = call_with_retry(
                lambda: self.exchange.fetch_tickers(pairs),
                exchange=self.exchange, what="fetch tickers", policy=self.retry,
            )  # fmt: skip
        except ExchangeError as problem:
            log.warning("live inputs: tickers could not be read (%s)", problem)
            return {}
        tops: dict[str, tuple[float, float]] = {}
        for pair in pairs:
            ticker = tickers.get(pair) or {}
            bid, ask = _number(ticker.get("bid")), _number(ticker.get("ask"))
            if not math.isnan(bid) and not math.isnan(ask):
                tops[pair] = (bid, ask)
        return tops

    def _book(self, pair: str) -> dict[str, Any] | None:
        try:
            book: dict[str, Any] = call_with_retry(
                lambda: self.exchange.fetch_order_book(pair, self.depth),
                exchange=self.exchange, what=f"fetch order book {pair}", policy=self.retry,
            )  # fmt: skip
        except ExchangeError as problem:
            log.warning("live inputs: the %s order book could not be read (%s)", pair, problem)
            return None
        return book


def _derive(
    names: frozenset[str], bid: float, ask: float, book: dict[str, Any] | None, depth: int
) -> dict[str, float]:
    found: dict[str, float] = {}
    if "spread" in names and bid > 0 and ask >= bid:
        found["spread"] = (ask - bid) / ask
    if "book_imbalance" in names and book is not None:
        bids = sum(_number(level[1]) for level in book["bids"][:depth])
        asks = sum(_number(level[1]) for level in book["asks"][:depth])
        if bids + asks > 0:
            found["book_imbalance"] = (bids - asks) / (bids + asks)
    return {name: value for name, value in found.items() if math.isfinite(value)}


def _best(levels: list[Any], fallback: float) -> float:
    return _number(levels[0][0]) if levels else fallback


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan

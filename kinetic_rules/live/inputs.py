"""Live inputs (`spread`, `bid`, `ask`, `book_imbalance`, `funding_rate`) read from the
exchange at each decision.

Candles carry no order book, so backtests and replays leave the book's names undefined.
A running session (paper or real) reads, for every pair it decides on, the best bid and
ask of all pairs in one batched call where the exchange offers it (`fetch_bids_asks`,
else `fetch_tickers`), the top of each pair's order book when a rule reads
`book_imbalance`, and on futures the rate of each pair's latest funding time, and hands
the values to the evaluator for the close just decided. A pair whose book cannot be
read keeps the inputs undefined at that close: a rule that needs them does not hold, as
in a backtest, and the session goes on.

The bid and ask may come from a stream instead (live/streams.py: WebSocket through ccxt
pro); while it has no fresh quote for a pair, the REST calls above stand in.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from kinetic_rules.data.exchange import RetryPolicy, call_with_retry
from kinetic_rules.errors import ExchangeError

log = logging.getLogger("kinetic_rules.live")

BOOK_DEPTH = 5  # levels on each side summed for `book_imbalance`: "near the top of the book"
DEFAULT_FUNDING_HOURS = 8.0  # between funding times, when the history shows only one
_NEEDS_BOOK = frozenset({"book_imbalance"})
_FROM_TOUCH = frozenset({"spread", "bid", "ask"})
Touch = tuple[float, float]  # best bid, best ask


class QuoteStream(Protocol):
    """Best bids and asks pushed by the exchange (a WebSocket), read without a request."""

    def tops(self, pairs: list[str]) -> dict[str, Touch] | None:
        """The latest touch of each pair it has; None when the stream is down."""
        ...


@dataclass
class _Funding:
    time: pd.Timestamp  # the latest funding time known
    rate: float
    every: pd.Timedelta  # until the next one


@dataclass
class LiveInputs:
    """Reads the live names a plan uses, pair by pair, from a ccxt client."""

    exchange: Any
    names: frozenset[str]
    depth: int = BOOK_DEPTH
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=2, base_delay=0.5))
    stream: QuoteStream | None = None  # pushed quotes (WebSocket); REST when it has none
    seconds_spent: float = 0.0  # total time spent gathering, for benchmarks and logs
    _funding: dict[str, _Funding] = field(default_factory=dict)

    def read(
        self,
        pairs: Iterable[str],
        names: frozenset[str] | None = None,
        at: pd.Timestamp | None = None,
    ) -> dict[str, dict[str, float]]:
        """The value of each needed name (default: `names` given at creation) for each
        pair at the close `at` (default: now); a name left out is undefined."""
        wanted, needed = sorted(set(pairs)), self.names if names is None else names
        if not wanted or not needed:
            return {}
        began = time.perf_counter()
        try:
            values = {pair: dict[str, float]() for pair in wanted}
            touch = needed & (_FROM_TOUCH | _NEEDS_BOOK)
            tops = self._tops(wanted) if touch else {}
            for pair in wanted:
                if not touch:
                    break
                book = None
                if needed & _NEEDS_BOOK or pair not in tops:
                    book = self._book(pair)
                bid, ask = tops.get(pair, (math.nan, math.nan))
                if book is not None:
                    bid, ask = _best(book["bids"], bid), _best(book["asks"], ask)
                values[pair].update(_derive(needed, bid, ask, book, self.depth))
            if "funding_rate" in needed:
                moment = at if at is not None else pd.Timestamp.now(tz="UTC")
                for pair in wanted:
                    rate = self._funding_rate(pair, moment)
                    if math.isfinite(rate):
                        values[pair]["funding_rate"] = rate
            return values
        finally:
            self.seconds_spent += time.perf_counter() - began

    def _tops(self, pairs: list[str]) -> dict[str, Touch]:
        """Best bid and ask of every pair: pushed by the stream, else one batched call."""
        tops: dict[str, Touch] = {}
        if self.stream is not None:
            tops = self.stream.tops(pairs) or {}
        missing = [pair for pair in pairs if pair not in tops]
        if missing:
            tops.update(self._fetch_tops(missing))
        return tops

    def _fetch_tops(self, pairs: list[str]) -> dict[str, Touch]:
        has = self.exchange.has
        method = "fetch_bids_asks" if has.get("fetchBidsAsks") else "fetch_tickers"
        if method == "fetch_tickers" and not has.get("fetchTickers"):
            return {}
        fetch = getattr(self.exchange, method)
        try:
            tickers = call_with_retry(
                lambda: fetch(pairs),
                exchange=self.exchange, what=method.replace("_", " "), policy=self.retry,
            )  # fmt: skip
        except ExchangeError as problem:
            log.warning("live inputs: best bids and asks could not be read (%s)", problem)
            return {}
        tops: dict[str, Touch] = {}
        for pair in pairs:
            ticker = tickers.get(pair) or tickers.get(_perpetual(pair)) or {}
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

    def _funding_rate(self, pair: str, at: pd.Timestamp) -> float:
        """The rate of the pair's latest funding time at or before `at`: asked again only
        once the next funding time has come (one request per pair per funding interval)."""
        known = self._funding.get(pair)
        if known is not None and at < known.time + known.every:
            return known.rate
        if not self.exchange.has.get("fetchFundingRateHistory"):
            return math.nan
        try:
            rows = call_with_retry(
                lambda: self.exchange.fetch_funding_rate_history(pair, None, 2),
                exchange=self.exchange, what=f"fetch funding rates {pair}", policy=self.retry,
            )  # fmt: skip
        except ExchangeError as problem:
            log.warning("live inputs: the %s funding rate could not be read (%s)", pair, problem)
            return math.nan
        cutoff = at.value // 1_000_000
        settled = sorted(
            (int(r["timestamp"]), _number(r.get("fundingRate")))
            for r in rows or []
            if r.get("timestamp") is not None and int(r["timestamp"]) <= cutoff
        )
        if not settled or not math.isfinite(settled[-1][1]):
            return math.nan
        stamp, rate = settled[-1]
        hours = (stamp - settled[-2][0]) / 3_600_000 if len(settled) > 1 else 0.0
        every = pd.Timedelta(hours=hours if hours > 0 else DEFAULT_FUNDING_HOURS)
        self._funding[pair] = _Funding(pd.Timestamp(stamp, unit="ms", tz="UTC"), rate, every)
        return rate


def _derive(
    names: frozenset[str], bid: float, ask: float, book: dict[str, Any] | None, depth: int
) -> dict[str, float]:
    found: dict[str, float] = {}
    touch = bid > 0 and ask >= bid
    if "spread" in names and touch:
        found["spread"] = (ask - bid) / ask
    if "bid" in names and touch:
        found["bid"] = bid
    if "ask" in names and touch:
        found["ask"] = ask
    if "book_imbalance" in names and book is not None:
        bids = sum(_number(level[1]) for level in book["bids"][:depth])
        asks = sum(_number(level[1]) for level in book["asks"][:depth])
        if bids + asks > 0:
            found["book_imbalance"] = (bids - asks) / (bids + asks)
    return {name: value for name, value in found.items() if math.isfinite(value)}


def _perpetual(pair: str) -> str:
    """How a futures client names a pair's perpetual: BTC/USDT -> BTC/USDT:USDT."""
    return pair if ":" in pair else f"{pair}:{pair.split('/')[-1]}"


def _best(levels: list[Any], fallback: float) -> float:
    return _number(levels[0][0]) if levels else fallback


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan

"""`download`'s futures part: funding rates, mark-price candles and market rules, via ccxt.

Funding rates come from `fetch_funding_rate_history`, page by page from the last stored
funding time (incremental, like the candles); mark-price candles from `fetch_ohlcv` with
`price: mark`, through the candle download itself, into the mark store; the rules
(tick, amount step, minimums) from the markets ccxt loaded. Everything is stored under
the strategy's name for the pair (BTC/USDT, not the perpetual's BTC/USDT:USDT), as the
candles are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from kinetic_rules.data.candles import timeframe_ns
from kinetic_rules.data.download import SeriesOutcome, _Run, _stamp, parse_rows
from kinetic_rules.data.exchange import MalformedResponse
from kinetic_rules.data.futures_store import FuturesStore, funding_frame
from kinetic_rules.data.pairs import strategy_pair
from kinetic_rules.data.validate import RawCandles
from kinetic_rules.errors import KineticError
from kinetic_rules.market_rules import TICK_SIZE, MarketRules, rules_from_ccxt

FUNDING_PAGE = 1000  # Binance's largest page of funding times
DEFAULT_FUNDING_HOURS = 8.0  # when a single funding time says nothing of the interval
_MS = 1_000_000
_HOUR_MS = 3_600_000


class FuturesDownload:
    """The funding, mark-price and market-rules part of one download run."""

    def __init__(
        self,
        run: _Run,
        store: FuturesStore,
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        default_start: int,
    ) -> None:
        self.run, self.store = run, store
        self.start, self.end, self.default_start = start, end, default_start

    @property
    def exchange(self) -> Any:
        return self.run.exchange

    def pair(self, pair: str, timeframes: list[str]) -> list[SeriesOutcome]:
        """Funding rates and mark-price candles of a futures market; nothing for spot."""
        market = self.exchange.market(pair)
        if not market.get("contract"):
            return []
        name, symbol = strategy_pair(pair), str(market["symbol"])
        outcomes: list[SeriesOutcome] = []
        if market.get("swap") and self.exchange.has.get("fetchFundingRateHistory"):
            outcomes.append(self.funding(name, symbol))
        if self.exchange.has.get("fetchMarkOHLCV") or self.exchange.has.get("fetchOHLCV"):
            for tf in timeframes:
                outcomes.append(self.mark(name, symbol, tf))
        return outcomes

    def mark(self, name: str, symbol: str, tf: str) -> SeriesOutcome:
        run = self.run
        stored = self.store.mark.find(self.exchange.id, name, tf)
        if self.start is not None:
            lo = self.start.value
        elif stored is None:
            lo = self.default_start
        else:
            lo = min(self.default_start, stored.last.value + timeframe_ns(tf))
        hi = run.last_closed(tf)
        hi = hi if self.end is None else min(hi, self.end.value - 1)
        fetch = _mark_fetcher(self.exchange, symbol, tf)
        return run.series(name, tf, lo, hi, store=self.store.mark, fetch=fetch, label="mark ")

    def funding(self, name: str, symbol: str) -> SeriesOutcome:
        """Funding times from the start (or the last stored one) to now, oldest first."""
        run, exchange = self.run, self.exchange
        held = self.store.read_funding(exchange.id, name)
        first = self.start.value if self.start is not None else self.default_start
        if held is not None and len(held) and held.index[0].value <= first:
            first = max(first, held.index[-1].value + _MS)
        last = run.now if self.end is None else min(run.now, self.end.value - 1)
        outcome = SeriesOutcome(name, "funding", what="funding rates")
        if last < first:
            self._report(outcome, 0)
            return outcome
        expected = max(1, (last - first) // (int(DEFAULT_FUNDING_HOURS) * _HOUR_MS * _MS))
        outcome.requested = int(expected)
        if run.progress:
            run.progress.start(name, "funding", outcome.requested)
        since = first // _MS - 1  # exchanges differ on whether `since` itself is included
        previous = None if held is None or not len(held) else int(held.index[-1].value // _MS)
        try:
            while since * _MS <= last:
                what = f"{name} funding rates from {_stamp(max(since, 0) * _MS):%Y-%m-%d %H:%M}"
                page = run.call(_funding_page(exchange, symbol, since), what)
                outcome.requests += 1
                times, rates = _parse_funding(page)
                keep = (times > since) & (times * _MS <= last)
                times, rates = times[keep], rates[keep]
                if not len(times):
                    break
                hours = _hours(times, previous)
                frame = funding_frame(times, rates, hours)
                outcome.added += self.store.write_funding(exchange.id, name, frame).added
                previous, since = int(times[-1]), int(times[-1])
                if run.progress:
                    run.progress.advance(name, "funding", min(outcome.added, outcome.requested))
                if (since + int(hours[-1] * _HOUR_MS)) * _MS > last:
                    break  # the next funding time is still to come: no need to ask
        except KineticError as error:
            outcome.error = str(error)
            raise
        finally:
            if run.progress:
                run.progress.finish(name, "funding", outcome)
        outcome.requested = max(outcome.requested, outcome.added)
        return outcome

    def _report(self, outcome: SeriesOutcome, total: int) -> None:
        progress = self.run.progress
        if progress:
            progress.start(outcome.pair, outcome.timeframe, total)
            progress.finish(outcome.pair, outcome.timeframe, outcome)

    def save_rules(self, pairs: list[str]) -> int:
        """Each pair's tick, amount step and minimums, as the exchange's markets give them."""
        mode = int(getattr(self.exchange, "precisionMode", TICK_SIZE))
        rules: dict[str, MarketRules] = {}
        for pair in pairs:
            found = rules_from_ccxt(self.exchange.market(pair), mode)
            if found is not None:
                rules[strategy_pair(pair)] = found
        if rules:
            self.store.write_markets(self.exchange.id, rules)
        return len(rules)


def _funding_page(exchange: Any, symbol: str, since_ms: int) -> Callable[[], Any]:
    return lambda: exchange.fetch_funding_rate_history(symbol, since_ms, FUNDING_PAGE)


def _parse_funding(page: Any) -> tuple[np.ndarray, np.ndarray]:
    """ccxt's funding-rate history: epoch ms and rates, sorted by time."""
    if not isinstance(page, list):
        raise MalformedResponse(f"expected a list of funding rates, got {type(page).__name__}")
    try:
        times = np.array([int(entry["timestamp"]) for entry in page], dtype=np.int64)
        rates = np.array([float(entry["fundingRate"]) for entry in page], dtype=np.float64)
    except (TypeError, ValueError, KeyError) as error:
        raise MalformedResponse(f"funding rates that are not numbers ({error})") from None
    order = np.argsort(times, kind="stable")
    return times[order], rates[order]


def _hours(times: np.ndarray, previous: int | None) -> np.ndarray:
    """Hours since the funding time before each (the next one's for the very first)."""
    before = np.concatenate(([previous if previous is not None else -1], times[:-1]))
    gaps = (times - before) / _HOUR_MS
    if previous is None:
        gaps[0] = gaps[1] if len(gaps) > 1 else DEFAULT_FUNDING_HOURS
    return np.asarray(gaps, dtype=np.float64)


def _mark_fetcher(exchange: Any, symbol: str, tf: str) -> Callable[[int, int], RawCandles]:
    def mark(since_ms: int, limit: int) -> RawCandles:
        rows = exchange.fetch_ohlcv(symbol, tf, since_ms, limit, params={"price": "mark"})
        return parse_rows(rows, (0, 1, 2, 3, 4, 5), quote=False)

    return mark

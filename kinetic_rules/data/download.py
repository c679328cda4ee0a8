"""`download`: fetch the candles the store is missing, through ccxt, page by page.

Only what is missing is asked for: the open times in the requested span that the
store does not hold, holes included (an exchange outage costs one request to
confirm, nothing more). Only closed candles are kept, judged by the exchange's clock.
Candles are validated like imported files and written atomically, every few pages
and when a series ends, so that an interrupted or failed download keeps what it
fetched and the next run resumes after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from kinetic_rules.data.candles import IntArray, bucket_origin_ns, timeframe_ns, times_ns
from kinetic_rules.data.exchange import (
    MalformedResponse,
    RetryPolicy,
    call_with_retry,
    suggest_pairs,
)
from kinetic_rules.data.futures_store import FuturesStore
from kinetic_rules.data.pairs import normalize_pair, strategy_pair
from kinetic_rules.data.store import CandleStore
from kinetic_rules.data.validate import RawCandles, validate
from kinetic_rules.errors import ConfigError, KineticError

DEFAULT_DAYS = 30
CHECKPOINT_PAGES = 25
_MS = 1_000_000


class Progress(Protocol):
    """What a display needs to follow a download; the CLI draws it with rich."""

    def start(self, pair: str, timeframe: str, total: int) -> None: ...
    def advance(self, pair: str, timeframe: str, done: int) -> None: ...
    def finish(self, pair: str, timeframe: str, outcome: SeriesOutcome) -> None: ...
    def note(self, message: str) -> None: ...


@dataclass
class SeriesOutcome:
    pair: str
    timeframe: str
    requested: int = 0  # candles missing from the store when the run began
    added: int = 0  # candles written
    requests: int = 0
    absent: int = 0  # missing candles the exchange does not have either
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    what: str = "candles"  # or "mark candles", "funding rates"


@dataclass
class DownloadSummary:
    exchange: str
    start: pd.Timestamp
    end: pd.Timestamp
    series: list[SeriesOutcome] = field(default_factory=list)
    markets: int = 0  # pairs whose market rules were saved

    @property
    def failed(self) -> list[SeriesOutcome]:
        return [s for s in self.series if s.error]


def download(
    exchange: Any,
    store: CandleStore,
    pairs: list[str],
    timeframes: list[str],
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    days: int = DEFAULT_DAYS,
    retry: RetryPolicy | None = None,
    progress: Progress | None = None,
    futures: FuturesStore | None = None,
) -> DownloadSummary:
    """Bring the store up to date for every pair and timeframe; stop at a permanent error.

    Without `start`: the last `days` days, reaching back to where the stored series ends.
    With `futures` (the store's funding, mark-price and market-rules part): each pair's
    market rules are saved, and a futures market's funding rates and mark-price candles
    are brought up to date over the same span. Everything, candles included, is stored
    under the pair without its settlement currency (BTC/USDT), as strategies name it.
    """
    run = _Run(exchange, store, retry or RetryPolicy(), progress)
    run.call(exchange.load_markets, "loading markets")
    pairs = [_check_pair(exchange, p) for p in pairs]
    for tf in timeframes:
        _check_timeframe(exchange, tf)
    if exchange.has.get("fetchTime"):
        run.now = int(run.call(exchange.fetch_time, "reading the exchange clock")) * _MS
    else:
        run.now = int(exchange.milliseconds()) * _MS
    default_start = run.now - days * 86_400 * 1_000_000_000
    first = start.value if start is not None else default_start
    summary = DownloadSummary(exchange.id, _stamp(first), _stamp(run.now))
    for pair in pairs:
        name = strategy_pair(pair)  # BTC/USDT:USDT's candles are stored as BTC/USDT
        market = "futures" if exchange.market(pair).get("contract") else "spot"
        for tf in timeframes:
            lo = start.value if start is not None else run.resume_point(name, tf, default_start)
            hi = run.last_closed(tf) if end is None else min(run.last_closed(tf), end.value - 1)
            fetch = _kline_fetcher(exchange, pair, tf)
            summary.series.append(run.series(name, tf, lo, hi, fetch=fetch, market=market))
    if futures is not None:
        from kinetic_rules.data.download_futures import FuturesDownload  # it builds on _Run

        extras = FuturesDownload(run, futures, start, end, default_start)
        for pair in pairs:
            summary.series.extend(extras.pair(pair, timeframes))
        summary.markets = extras.save_rules(pairs)
    return summary


@dataclass
class _Run:
    """One download: the exchange, the store, how to retry, and the exchange's clock."""

    exchange: Any
    store: CandleStore
    retry: RetryPolicy
    progress: Progress | None
    now: int = 0  # ns, by the exchange's clock: candles closing after it are not kept

    def call(self, action: Callable[[], Any], what: str) -> Any:
        note = self.progress.note if self.progress else None
        return call_with_retry(
            action, exchange=self.exchange, what=what, policy=self.retry, on_retry=note
        )

    def resume_point(self, pair: str, tf: str, default_start: int) -> int:
        """The default start, moved back to where the stored series ends (no hole after it)."""
        stored = self.store.find(self.exchange.id, pair, tf)
        if stored is None:
            return default_start
        return min(default_start, stored.last.value + timeframe_ns(tf))

    def last_closed(self, tf: str) -> int:
        step, origin = timeframe_ns(tf), bucket_origin_ns(tf)
        return (self.now - step - origin) // step * step + origin

    def series(
        self,
        pair: str,
        tf: str,
        first: int,
        last: int,
        *,
        store: CandleStore | None = None,
        fetch: Callable[[int, int], RawCandles] | None = None,
        label: str = "",
        market: str | None = None,
    ) -> SeriesOutcome:
        """Fetch the candles of [first, last] the store lacks, page by page from the oldest.
        `store`, `fetch` and `label` serve other candles than the trade prices (mark prices);
        `market` is checked against the stored series before anything is fetched."""
        store = store or self.store
        store.check_market(self.exchange.id, pair, tf, market)
        missing = _missing_times(store, self.exchange.id, pair, tf, first, last)
        shown = f"{label}{tf}"
        outcome = SeriesOutcome(pair, shown, requested=len(missing))
        if label:
            outcome.what = f"{label}candles"
        if self.progress:
            self.progress.start(pair, shown, len(missing))
        fetch = fetch or _kline_fetcher(self.exchange, pair, tf)
        limit = _page_limit(self.exchange)
        pages: list[RawCandles] = []
        cursor = 0
        try:
            while cursor < len(missing):
                since = int(missing[cursor])
                what = f"{pair} {shown} candles from {_stamp(since):%Y-%m-%d %H:%M}"
                page: RawCandles = self.call(_bind(fetch, since // _MS, limit), what)
                outcome.requests += 1
                if len(page) == 0 or int(page.times_ns.max()) < since:
                    break  # nothing from `since` on (or an exchange that ignores `since`)
                pages.append(page.take(_among(page.times_ns, missing[cursor:])))
                cursor = int(np.searchsorted(missing, page.times_ns.max(), side="right"))
                if self.progress:
                    self.progress.advance(pair, shown, cursor)
                if len(pages) >= CHECKPOINT_PAGES:
                    self.flush(pair, tf, pages, outcome, store, market)
        except KineticError as error:
            outcome.error = str(error)
            raise
        finally:
            self.flush(pair, tf, pages, outcome, store, market)
            if self.progress:
                self.progress.finish(pair, shown, outcome)
        outcome.absent = outcome.requested - outcome.added
        return outcome

    def flush(
        self,
        pair: str,
        tf: str,
        pages: list[RawCandles],
        outcome: SeriesOutcome,
        store: CandleStore | None = None,
        market: str | None = None,
    ) -> None:
        """Validate and store what was fetched so far, then forget it."""
        store = store or self.store
        if not pages:
            return
        raw = RawCandles.concat(pages)
        pages.clear()
        if len(raw) == 0:
            return
        source = f"{pair} {tf} from {self.exchange.id}"
        frame, report = validate(raw, tf, source, drop_bad_rows=True)
        outcome.warnings.extend(i.render() for i in report.issues if i.kind != "gap")
        if frame is not None and len(frame):
            outcome.added += store.write(self.exchange.id, pair, tf, frame, market=market).added


def _bind(
    fetch: Callable[[int, int], RawCandles], since_ms: int, limit: int
) -> Callable[[], RawCandles]:
    return lambda: fetch(since_ms, limit)


def _among(times: IntArray, wanted: IntArray) -> np.ndarray:
    """Which of `times` are in `wanted` (sorted, unique): `np.isin` without sorting the
    wanted times again for every page (a session asks for thousands at every close)."""
    where = np.searchsorted(wanted, times)
    found: np.ndarray = np.zeros(len(times), dtype=bool)
    inside = where < len(wanted)
    found[inside] = wanted[where[inside]] == times[inside]
    return found


def _missing_times(
    store: CandleStore, exchange_id: str, pair: str, tf: str, first: int, last: int
) -> IntArray:
    """Open times on the grid from first to last (rounded inward) that the store lacks."""
    step, origin = timeframe_ns(tf), bucket_origin_ns(tf)
    first = -((origin - first) // step) * step + origin
    last = (last - origin) // step * step + origin
    if last < first:
        return _none()
    # np.arange(first, last + 1, step) may lose the last element to float rounding
    wanted = first + step * np.arange((last - first) // step + 1, dtype=np.int64)
    if store.find(exchange_id, pair, tf) is None:
        return wanted
    held = store.read(exchange_id, pair, tf, _stamp(first), _stamp(last + step))
    return np.setdiff1d(wanted, times_ns(held.index), assume_unique=True)


def _kline_fetcher(exchange: Any, pair: str, tf: str) -> Callable[[int, int], RawCandles]:
    """Binance's own klines carry quote volume, which ccxt's unified OHLCV drops."""
    market = exchange.market(pair)
    if exchange.id == "binance" and (market.get("spot") or market.get("linear")):
        endpoint = exchange.publicGetKlines if market.get("spot") else exchange.fapiPublicGetKlines

        def binance(since_ms: int, limit: int) -> RawCandles:
            rows = endpoint(
                {
                    "symbol": market["id"],
                    "interval": exchange.timeframes[tf],
                    "startTime": since_ms,
                    "limit": limit,
                }
            )
            return parse_rows(rows, (0, 1, 2, 3, 4, 5, 7), quote=True)

        return binance

    def unified(since_ms: int, limit: int) -> RawCandles:
        return parse_rows(
            exchange.fetch_ohlcv(pair, tf, since_ms, limit), (0, 1, 2, 3, 4, 5), quote=False
        )

    return unified


def parse_rows(rows: Any, columns: tuple[int, ...], *, quote: bool) -> RawCandles:
    if not isinstance(rows, list):
        raise MalformedResponse(f"expected a list of candles, got {type(rows).__name__}")
    try:
        table = np.array([[row[i] for i in columns] for row in rows], dtype=np.float64)
    except (TypeError, ValueError, IndexError, KeyError) as error:
        raise MalformedResponse(f"candles that are not numbers ({error})") from None
    table = table.reshape(-1, len(columns))
    if not np.isfinite(table).all():
        raise MalformedResponse("candles with missing values")
    epochs = table[:, 0].astype(np.int64)
    times = epochs * (_MS if epochs.size == 0 or epochs.max() < 10**14 else 1_000)
    cols = [table[:, i] for i in range(1, len(columns))]
    rows_no = np.arange(1, len(table) + 1, dtype=np.int64)
    return RawCandles(
        times,
        cols[0],
        cols[1],
        cols[2],
        cols[3],
        cols[4],
        cols[5] if quote else None,
        rows_no,
        "candle",
    )


def _check_pair(exchange: Any, pair: str) -> str:
    pair = normalize_pair(pair)
    if pair not in exchange.markets and not _perpetual_of(exchange, pair):
        raise ConfigError(
            f"{exchange.id} has no market {pair}{suggest_pairs(pair, list(exchange.markets))}"
        )
    return pair


def _perpetual_of(exchange: Any, pair: str) -> bool:
    """A futures client (e.g. binanceusdm) takes BTC/USDT for its BTC/USDT:USDT perpetual."""
    return f"{pair}:{pair.split('/')[-1]}" in exchange.markets


def _check_timeframe(exchange: Any, tf: str) -> None:
    timeframe_ns(tf)
    offered = getattr(exchange, "timeframes", None) or {}
    if offered and tf not in offered:
        raise ConfigError(f"{exchange.id} has no {tf} candles; it offers {', '.join(offered)}")
    if not exchange.has.get("fetchOHLCV"):
        raise ConfigError(f"{exchange.id} does not serve candles through ccxt")


def _page_limit(exchange: Any) -> int:
    features = getattr(exchange, "features", None) or {}
    spot = features.get("spot") or {}
    limit = (spot.get("fetchOHLCV") or {}).get("limit") if isinstance(spot, dict) else None
    return int(limit) if limit else 500


def _none() -> IntArray:
    return np.empty(0, dtype=np.int64)


def _stamp(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, unit="ns", tz="UTC")

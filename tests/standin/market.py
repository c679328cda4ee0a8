"""The stand-in's market: recorded candles per symbol and interval, and a clock.

Candles are kept as the exchange's 12-field kline rows, so the klines endpoint serves
them byte for byte as recorded. Nothing after the clock's "now" is visible: a candle
is served once it has opened (the one still forming too, as the real API does).

For tests of live market data: `set_book` gives a symbol an order book of its own
(otherwise the book is synthetic, one coin per tick around the last price),
`list_symbol` lists a market without candles, with its last price and 24-hour quote
volume, as the exchange lists hundreds of markets a test never trades, and
`set_quote_volume` says what a market traded in 24 hours, as markets rise and fall.
"""

from __future__ import annotations

import gzip
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

INTERVAL_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
KNOWN_INTERVALS = (*INTERVAL_MS, "1M")

Kline = list[object]  # [open_time, "open", "high", "low", "close", "volume", close_time, ...]


class Clock:
    """The exchange's idea of now, in epoch milliseconds; tests move it."""

    def __init__(self, now_ms: int = 0) -> None:
        self._now = now_ms
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            return self._now

    def set(self, when: int | str | pd.Timestamp) -> None:
        with self._lock:
            self._now = to_ms(when)

    def advance(self, ms: int) -> None:
        with self._lock:
            self._now += ms


def to_ms(when: int | str | pd.Timestamp) -> int:
    if isinstance(when, int):
        return when
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return int(stamp.value // 1_000_000)


@dataclass
class SymbolSpec:
    symbol: str
    base: str
    quote: str
    tick_size: str = "0.01"
    step_size: str = "0.00001"
    min_notional: str = "5.00000000"
    status: str = "TRADING"


@dataclass(frozen=True)
class Listing:
    """A market known only by its 24-hour statistics (no candles held)."""

    last: float
    quote_volume: float


BookSide = list[tuple[float, float]]  # (price, amount), best first


@dataclass
class Series:
    open_times: np.ndarray  # int64 ms, sorted
    rows: list[Kline]


@dataclass
class Market:
    clock: Clock = field(default_factory=Clock)
    symbols: dict[str, SymbolSpec] = field(default_factory=dict)
    series: dict[tuple[str, str], Series] = field(default_factory=dict)
    books: dict[str, tuple[BookSide, BookSide]] = field(default_factory=dict)  # bids, asks
    listings: dict[str, Listing] = field(default_factory=dict)
    volumes: dict[str, float] = field(default_factory=dict)  # 24h quote volume, as set
    lasts: dict[str, float] = field(default_factory=dict)  # last trade price, as set

    def set_last(self, symbol: str, price: float | None) -> None:
        """What tickers and books say `symbol` last traded at, in place of its candles'
        (None: the candles' again). Candles are untouched: a move between two closes."""
        if price is None:
            self.lasts.pop(symbol, None)
        else:
            self.lasts[symbol] = price

    def set_quote_volume(self, symbol: str, volume: float) -> None:
        """What the 24-hour tickers say `symbol` traded, in place of its candles' sum."""
        self.volumes[symbol] = volume

    def set_book(self, symbol: str, bids: BookSide, asks: BookSide) -> None:
        """Serve this book for `symbol` from now on (depth, bookTicker, 24hr bid and ask)."""
        if symbol not in self.symbols:
            raise KeyError(f"{symbol} is not listed")
        self.books[symbol] = (sorted(bids, reverse=True), sorted(asks))

    def list_symbol(
        self,
        base: str,
        quote: str,
        *,
        last: float,
        quote_volume: float,
        status: str = "TRADING",
    ) -> None:
        """List a market without candles: exchangeInfo and the tickers show it."""
        symbol = f"{base}{quote}"
        spec = _spec_for(symbol, base, quote, [], price=last)
        spec.status = status
        self.symbols[symbol] = spec
        self.listings[symbol] = Listing(last, quote_volume)

    def add_klines(self, base: str, quote: str, interval: str, rows: list[Kline]) -> None:
        symbol = f"{base}{quote}"
        rows = sorted(rows, key=lambda r: int(str(r[0])))
        if symbol not in self.symbols:
            self.symbols[symbol] = _spec_for(symbol, base, quote, rows)
        times = np.array([int(str(r[0])) for r in rows], dtype=np.int64)
        self.series[(symbol, interval)] = Series(times, rows)
        last_close = int(times[-1]) + INTERVAL_MS[interval] if len(times) else 0
        if self.clock.now() < last_close:
            self.clock.set(last_close)  # by default every recorded candle has closed

    def load_kline_csv(self, path: Path, base: str, quote: str, interval: str) -> None:
        """The exchange's own bulk CSV: rows are exactly what its klines endpoint returns."""
        rows: list[Kline] = []
        with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as lines:
            for line in lines:
                f = line.strip().split(",")
                if len(f) == 12:
                    rows.append([int(f[0]), *f[1:6], int(f[6]), f[7], int(f[8]), *f[9:12]])
        self.add_klines(base, quote, interval, rows)

    def load_feather(self, path: Path, base: str, quote: str, interval: str) -> None:
        """freqtrade feather has no quote volume; the stand-in serves volume * close for it."""
        frame = pd.read_feather(path)
        step = INTERVAL_MS[interval]
        opens = (frame["date"].astype("int64") // 1_000_000).to_numpy()
        rows: list[Kline] = []
        for t, o, h, lo, c, v in zip(
            opens,
            # .tolist(): Python floats, whose repr is a plain number (numpy 2's is np.float64(…))
            *(frame[k].to_numpy().tolist() for k in ("open", "high", "low", "close", "volume")),
            strict=True,
        ):
            rows.append(
                [
                    int(t),
                    repr(o),
                    repr(h),
                    repr(lo),
                    repr(c),
                    repr(v),
                    int(t) + step - 1,
                    repr(v * c),
                    0,
                    "0",
                    "0",
                    "0",
                ]
            )
        self.add_klines(base, quote, interval, rows)

    def resample(self, base: str, quote: str, source: str, target: str) -> None:
        """Serve `target` candles made from the recorded `source` ones (e.g. 4h from 1h)."""
        series = self.series[(f"{base}{quote}", source)]
        step = INTERVAL_MS[target]
        groups: dict[int, list[Kline]] = {}
        for row in series.rows:
            groups.setdefault(int(str(row[0])) // step * step, []).append(row)
        rows: list[Kline] = []
        for start, part in sorted(groups.items()):
            high = max(float(str(r[2])) for r in part)
            low = min(float(str(r[3])) for r in part)
            volume = sum(float(str(r[5])) for r in part)
            quoted = sum(float(str(r[7])) for r in part)
            first, last = str(part[0][1]), str(part[-1][4])
            prices = [first, repr(high), repr(low), last, repr(volume)]
            rows.append([start, *prices, start + step - 1, repr(quoted), 0, "0", "0", "0"])
        self.add_klines(base, quote, target, rows)

    def visible(self, symbol: str, interval: str) -> tuple[np.ndarray, list[Kline]]:
        """Rows that have opened by now."""
        series = self.series.get((symbol, interval))
        if series is None:
            return np.empty(0, dtype=np.int64), []
        end = int(np.searchsorted(series.open_times, self.clock.now(), side="right"))
        return series.open_times[:end], series.rows[:end]

    def finest_interval(self, symbol: str) -> str | None:
        held = [iv for (s, iv) in self.series if s == symbol]
        return min(held, key=INTERVAL_MS.__getitem__) if held else None

    def last_price(self, symbol: str) -> float | None:
        if symbol in self.lasts:
            return self.lasts[symbol]
        interval = self.finest_interval(symbol)
        if interval is None:
            listing = self.listings.get(symbol)
            return listing.last if listing else None
        _, rows = self.visible(symbol, interval)
        return float(str(rows[-1][4])) if rows else None


def _spec_for(
    symbol: str, base: str, quote: str, rows: list[Kline], price: float | None = None
) -> SymbolSpec:
    closes = [float(str(r[4])) for r in rows[-100:]]
    if price is None:
        price = float(np.median(closes)) if closes else 1.0
    magnitude = math.floor(math.log10(price)) if price > 0 else 0
    tick = 10.0 ** min(-2, magnitude - 6)
    step = 10.0 ** min(0, -magnitude - 1)
    return SymbolSpec(
        symbol,
        base,
        quote,
        tick_size=f"{tick:.10f}".rstrip("0"),
        step_size=f"{step:.10f}".rstrip("0").rstrip("."),
    )

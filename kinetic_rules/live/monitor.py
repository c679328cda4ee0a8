"""Position monitoring between candle closes: the exits that protect capital, on tickers.

Decisions are taken at candle closes, as in a backtest. But a protection that closes
everything when the open trades lose too much (`open_profit_ratio < -5%` with
`close_all`) should not wait up to a whole candle while the loss grows. So between
closes a paper or live session reads the prices of the pairs it holds every few seconds
(default 5 s: `orders.monitor_every` in the strategy, `run --monitor-every` on the
command line) and checks only these:

- protections with `close_all` whose condition reads portfolio values, with the open
  trades marked to the ticker's last price instead of the last close;
- with `orders.stoploss_on_exchange: false`, where no order holds the stop and the bot
  sells when the price reaches it: each trade's stop;
- paper futures on candles, where no exchange liquidates: each trade's liquidation price.

Prices come in one batched request per kind: the last trade prices (`fetch_tickers`),
for close-alls and for stops on spot or triggered by the contract price; on futures, the
mark prices (`fetch_mark_prices`, Binance's premium index), for liquidations and for
stops triggered by the mark price (`orders.stop_trigger: mark`, the default), as the
exchange triggers them. A look asks only for the kinds its checks need.

Entries, signal exits and take-profits are never decided here: they stay candle-close
decisions. An exit taken here carries a reason starting with `monitor:`, so trades,
reports and summaries show and count it. Replays do not monitor (there are no tickers
between recorded closes), which keeps a replay equal to the backtest.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from kinetic_rules.data.exchange import RetryPolicy, call_with_retry
from kinetic_rules.engine.fills import FillModel
from kinetic_rules.engine.model import LIQUIDATION, PROTECTION, STOP_LOSS, TRAILING_STOP, Fill
from kinetic_rules.engine.portfolio import PairData, Portfolio, Position
from kinetic_rules.margin import beyond_liquidation
from kinetic_rules.spec.models import Strategy

log = logging.getLogger("kinetic_rules.live")

MONITOR = "monitor"  # the prefix of every exit reason the monitor gives


@dataclass(frozen=True)
class MonitorExit:
    """A position the monitor closes: why, and on which ticker price it decided."""

    position: Position
    reason: str  # e.g. "monitor:protection:emergency", "monitor:stop_loss"
    price: float


def monitor_reason(reason: str) -> str:
    return f"{MONITOR}:{reason}"


def is_monitor_exit(reason: str | None) -> bool:
    return bool(reason) and str(reason).startswith(f"{MONITOR}:")


def count_monitor_exits(trades: Iterable[Any]) -> int:
    """Trades that the monitor closed between candle closes."""
    return sum(1 for t in trades if t.exit_time is not None and is_monitor_exit(t.exit_reason))


@dataclass(frozen=True)
class Looks:
    """One look at the market: last trade prices, and (futures) mark prices, per pair."""

    last: dict[str, float]
    mark: dict[str, float] = field(default_factory=dict)


@dataclass
class TickerReader:
    """The last traded price of each pair from one batched ticker request, and on futures
    the mark prices from one batched mark-price request.

    `futures`: the market is futures; `stop_on_mark`: stops trigger on the mark price;
    `last_needed`: a check reads last prices (close-alls, or stops on the contract price).
    """

    exchange: Any
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=1))
    futures: bool = False
    stop_on_mark: bool = False
    last_needed: bool = True

    def looks(self, pairs: Iterable[str]) -> Looks:
        """The prices the monitor's checks need: last trades, marks (futures), or both."""
        wanted = sorted(set(pairs))
        marks = self.marks(wanted) if self.futures else {}
        last = self.prices(wanted) if self.last_needed or not self.futures else {}
        return Looks(last, marks)

    def marks(self, pairs: Iterable[str]) -> dict[str, float]:
        """Each pair's mark price (its perpetual's), from one batched request."""
        wanted = sorted(set(pairs))
        if not wanted:
            return {}
        symbols = [_perpetual(pair) for pair in wanted]
        marks = call_with_retry(
            lambda: self.exchange.fetch_mark_prices(symbols),
            exchange=self.exchange, what="fetch mark prices (monitor)", policy=self.retry,
        )  # fmt: skip
        found: dict[str, float] = {}
        for pair, symbol in zip(wanted, symbols, strict=True):
            ticker = (marks or {}).get(symbol) or (marks or {}).get(pair) or {}
            info = ticker.get("info") or {}
            mark = _number(ticker.get("markPrice") or info.get("markPrice"))
            if math.isfinite(mark) and mark > 0:
                found[pair] = mark
        return found

    def prices(self, pairs: Iterable[str]) -> dict[str, float]:
        """Pairs without a usable price are left out; an ExchangeError if the request fails
        (tried once: the next look, seconds later, is the retry)."""
        wanted = sorted(set(pairs))
        if not wanted:
            return {}
        asked = [_perpetual(pair) for pair in wanted] if self.futures else wanted
        tickers = call_with_retry(
            lambda: self.exchange.fetch_tickers(asked),
            exchange=self.exchange, what="fetch tickers (monitor)", policy=self.retry,
        )  # fmt: skip
        found: dict[str, float] = {}
        got = tickers or {}
        for pair, symbol in zip(wanted, asked, strict=True):  # futures: keyed by contract
            ticker = got.get(symbol) or got.get(pair) or got.get(self._symbol(pair))
            price = _ticker_price(ticker or {})
            if price is not None:
                found[pair] = price
        return found

    def _symbol(self, pair: str) -> str:
        try:
            return str(self.exchange.market(pair)["symbol"])
        except Exception:  # ccxt raises its own kinds for a pair it does not list
            return pair


def _perpetual(pair: str) -> str:
    """A pair's linear perpetual, settled in its quote: BTC/USDT -> BTC/USDT:USDT."""
    return pair if ":" in pair else f"{pair}:{pair.split('/')[-1]}"


def reader_for(exchange: Any, spec: Strategy, *, close_all: bool, stops: bool) -> TickerReader:
    """The monitor's reader for a strategy: which prices its checks read."""
    futures = spec.market.type == "futures"
    stop_on_mark = spec.orders.stop_trigger == "mark"
    last_needed = close_all or (stops and not (futures and stop_on_mark)) or not futures
    return TickerReader(
        exchange, futures=futures, stop_on_mark=stop_on_mark, last_needed=last_needed
    )


def _ticker_price(ticker: dict[str, Any]) -> float | None:
    """The last trade, or the middle of bid and ask when the ticker has no last trade."""
    last = _number(ticker.get("last"))
    if math.isfinite(last) and last > 0:
        return last
    bid, ask = _number(ticker.get("bid")), _number(ticker.get("ask"))
    if math.isfinite(bid) and math.isfinite(ask) and 0 < bid <= ask:
        return (bid + ask) / 2
    return None


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def watched(portfolio: Portfolio, last_close: pd.Timestamp) -> list[Position]:
    """Open trades the monitor looks after: not closed, and no exit decided for them yet."""
    return [
        p
        for p in portfolio.unresolved()
        if p.trade is not None
        and p.trade.exit_time is None
        and p.state == "open"
        and p.release > last_close
        and p.cut is None
    ]


def needs_ticker(position: Position, *, close_all: bool, stops: bool, liquidations: bool) -> bool:
    """Does a look need this position's ticker? For a portfolio close-all, a stop the bot
    holds, or a liquidation that would come before the stop (paper futures)."""
    trade = position.trade
    if close_all or stops:
        return True
    if not liquidations or trade is None or trade.liquidation_price is None:
        return False
    stop = trade.stop if trade.stop is not None else trade.initial_stop
    sign = 1.0 if trade.side == "long" else -1.0
    return beyond_liquidation(stop, trade.liquidation_price, sign)


def monitor_exits(
    portfolio: Portfolio,
    market: dict[str, PairData],
    prices: dict[str, float],
    last_close: pd.Timestamp,
    *,
    stops: bool,
    liquidations: bool,
    skip: Iterable[int] = (),
    marks: dict[str, float] | None = None,
    stop_on_mark: bool = False,
) -> list[MonitorExit]:
    """What closes now, at these ticker prices: liquidations and stops first (when the
    monitor watches them), then portfolio close-alls, over what is left.
    `skip`: position ids already being closed (an exit order on its way). `marks`: the
    mark prices (futures), which liquidations read, and stops too with `stop_on_mark`;
    close-alls read the last trade prices, as the backtest's closes are trade prices."""
    skipped = set(skip)
    marks = marks or {}
    open_now = [
        p
        for p in watched(portfolio, last_close)
        if p.id not in skipped and (p.pair in prices or p.pair in marks)
    ]
    exits: list[MonitorExit] = []
    for position in open_now:
        trade = position.trade
        assert trade is not None
        last = prices.get(position.pair, math.nan)
        mark = marks.get(position.pair, last)
        price = mark if stop_on_mark and position.pair in marks else last
        sign = 1.0 if trade.side == "long" else -1.0
        liquidation = trade.liquidation_price
        stop = trade.stop if trade.stop is not None else trade.initial_stop
        # A stop nearer than the liquidation price is reached first: the stop ends the
        # trade (here, or at the close where the stop order or the fill model holds it).
        liquidated = (
            liquidations
            and liquidation is not None
            and beyond_liquidation(stop, liquidation, sign)
            and sign * (mark - liquidation) <= 0
        )
        reached = math.isfinite(stop) and math.isfinite(price) and sign * (price - stop) <= 0
        if liquidated:
            exits.append(MonitorExit(position, monitor_reason(LIQUIDATION), mark))
        elif stops and reached:
            reason = STOP_LOSS if stop == trade.initial_stop else TRAILING_STOP
            exits.append(MonitorExit(position, monitor_reason(reason), price))
    gone = {e.position.id for e in exits} | skipped
    watching = {p.id for p in open_now if p.pair in prices}
    if not watching:
        return exits
    for position, name in _close_alls(portfolio, market, prices, last_close, open_now):
        if position.id not in gone and position.id in watching:
            reason = monitor_reason(f"{PROTECTION}:{name}")
            exits.append(MonitorExit(position, reason, prices[position.pair]))
    return exits


def _close_alls(
    portfolio: Portfolio,
    market: dict[str, PairData],
    prices: dict[str, float],
    last_close: pd.Timestamp,
    open_now: list[Position],
) -> list[tuple[Position, str]]:
    """Portfolio close-alls that hold with the held pairs' last close replaced by their
    ticker price: the rules read the last closed candle, the open profit reads the ticker.

    A trade whose entry filled since the last close (live, the entry order fills after
    the close that decided it) has no closed candle of its own yet, so at the last close
    the books would not count it. For this check it counts as in the market then, marked
    to its ticker like the others: it is at risk now."""
    step = portfolio.timeframe
    fresh = [
        (p.trade, p.trade.entry_time)
        for p in open_now
        if p.trade is not None and p.trade.entry_time + step > last_close
    ]
    marked = dict(market)
    for pair, price in prices.items():
        data = market.get(pair)
        if data is None or not len(data.prices["close"]):
            continue
        close = np.array(data.prices["close"], dtype=float, copy=True)
        close[-1] = price
        marked[pair] = replace(data, prices={**data.prices, "close": close})
    for trade, _ in fresh:
        trade.entry_time = last_close - step
    known = portfolio.market
    try:
        return portfolio.observe(last_close, marked, play=False)
    finally:
        portfolio.market = known  # the candles again: decisions at the close read them
        for trade, entered in fresh:
            trade.entry_time = entered


def close_on_paper(
    portfolio: Portfolio, fills: FillModel, exit: MonitorExit, now: pd.Timestamp
) -> None:
    """Paper trading on candles: the trade closes at once at the ticker price, as a market
    order would (the fill model's slippage and fee), or a liquidation at its price."""
    position, trade = exit.position, exit.position.trade
    assert trade is not None
    left = trade.amount - sum(f.amount for f in trade.fills[1:])
    if left > 0:
        if exit.reason == monitor_reason(LIQUIDATION) and trade.liquidation_price is not None:
            price = trade.liquidation_price
            sign = 1.0 if trade.side == "long" else -1.0
            lost = sign * (trade.entry_price - price) * left
            share = left / trade.amount if trade.amount else 0.0
            fee = max(0.0, (trade.margin or 0.0) * share - lost)
        else:
            price = fills.adverse(exit.price, trade.side, buying=False)
            fee = fills.fee_on(price, left)
        trade.fills.append(Fill(now, price, left, fee, exit.reason))
    closing = trade.fills[1:]
    sold = sum(f.amount for f in closing)
    trade.exit_price = sum(f.price * f.amount for f in closing) / sold if sold else None
    trade.exit_reason, trade.exit_time = exit.reason, now
    portfolio.close_filled(position, now)

"""Backtest driver: strategy file + candle store → BacktestResult.

Stages in order: check the file, build the plan, evaluate every pair's signals over all
its history (vectorized), lay the pairs on one timeline, run the scanner point in time,
derive per-candle trade limits from the regime and protections, then hand the entry
candidates to the portfolio simulation. Warm-up candles are used for indicators but
never traded; a `--timerange` start only moves the first tradable candle.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from kinetic_rules.backtest.chart_candles import HeldCandles, StoredCandles
from kinetic_rules.backtest.model_history import model_notes
from kinetic_rules.compile.convergence import warmup_statement
from kinetic_rules.compile.evaluate import Evaluator
from kinetic_rules.compile.modes import require_mode
from kinetic_rules.compile.plan import Plan, build_plan
from kinetic_rules.compile.series_cache import SeriesCache
from kinetic_rules.data.futures_store import FuturesStore
from kinetic_rules.data.gaps import apply_gap_policy, gap_candles
from kinetic_rules.data.store import CandleStore
from kinetic_rules.engine.fills import fill_model
from kinetic_rules.engine.futures import MarketExtras, describe_extras, funding_payments
from kinetic_rules.engine.model import Assumptions, BacktestResult, Fill, Trade
from kinetic_rules.engine.pairs import first_open, prepare_market, stored_feed, warmup_ends
from kinetic_rules.engine.portfolio import PairData, Portfolio
from kinetic_rules.engine.portfolio_values import describe, portfolio_rules
from kinetic_rules.engine.scanner import blacklisted
from kinetic_rules.errors import ConfigError, DataError
from kinetic_rules.lang.checker import check
from kinetic_rules.margin import beyond_liquidation
from kinetic_rules.spec.loader import load_file
from kinetic_rules.timeframes import format_duration, timeframe_seconds

Feed = Callable[[str, str], pd.DataFrame]
Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass
class BacktestRequest:
    strategy: Path
    data_dir: Path
    pairs: list[str] = field(default_factory=list)  # empty: from the strategy or the store
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    exchange: str | None = None
    gaps: str | None = None  # missing candles: keep or fill (None: the file's backtest.gaps)
    warmup: int | None = None  # seconds of warm-up accepted (`--warmup`); None: the file's
    mode: str = "backtest"  # or "replay": a file that cannot run in it is refused (modes.py)


class CandleFeed:
    """Candles from the store, as the pairs stream through a run.

    Series that every pair reads (those of pairs the file names, such as BTC's daily
    candles) are read once and kept; a pair's own series only while that pair is at work,
    so a run holds one pair's candles at a time, however many pairs it trades.
    """

    def __init__(
        self, store: CandleStore, exchange: str, plan: Plan, end: pd.Timestamp | None = None
    ) -> None:
        self.store, self.exchange, self.end, self.gaps = store, exchange, end, plan.gaps
        self.shared = {need.pair for need in plan.data if need.pair is not None}
        self._kept: dict[tuple[str, str], pd.DataFrame] = {}
        self._pair: str | None = None  # the pair whose own series `_current` holds
        self._current: dict[str, pd.DataFrame] = {}
        self.gap_counts: dict[tuple[str, str], int] = {}  # for reports, taken at first read
        self._first_opens: dict[tuple[str, str], pd.Timestamp | None] = {}  # likewise

    def __call__(self, pair: str, timeframe: str) -> pd.DataFrame:
        if pair in self.shared:
            if (pair, timeframe) not in self._kept:
                self._kept[pair, timeframe] = self._read(pair, timeframe)
            return self._kept[pair, timeframe]
        if pair != self._pair:
            self._pair, self._current = pair, {}
        if timeframe not in self._current:
            self._current[timeframe] = self._read(pair, timeframe)
        return self._current[timeframe]

    def index(self, pair: str, timeframe: str) -> pd.DatetimeIndex:
        """Open times of `self(pair, timeframe)`, without holding the candles."""
        held = self._kept.get((pair, timeframe))
        if held is None and pair == self._pair:
            held = self._current.get(timeframe)
        if held is not None or self.gaps == "fill":  # a fill adds candles: read them
            return pd.DatetimeIndex((held if held is not None else self(pair, timeframe)).index)
        return self.store.read_index(self.exchange, pair, timeframe, end=self.end)

    def first_open(self, pair: str, timeframe: str) -> pd.Timestamp | None:
        """Open time of the series' first candle, as it was first read (None: no candle)."""
        if (pair, timeframe) not in self._first_opens:
            self(pair, timeframe)
        return self._first_opens[pair, timeframe]

    def gap_candles(self, pair: str, timeframe: str) -> int:
        """Candles filled or missing in the series, as counted when it was first read."""
        if (pair, timeframe) not in self.gap_counts:
            self(pair, timeframe)
        return self.gap_counts[pair, timeframe]

    def other_market(self, pairs: list[str], market: str) -> list[str]:
        """The pairs whose stored candles are recorded as another market than `market`."""
        held = {s.pair: s.market for s in self.store.available() if s.exchange == self.exchange}
        return [p for p in pairs if held.get(p) not in (None, market)]

    def _read(self, pair: str, timeframe: str) -> pd.DataFrame:
        candles = self.store.load(self.exchange, pair, timeframe, end=self.end)
        candles = apply_gap_policy(candles, timeframe, self.gaps)
        self.gap_counts[pair, timeframe] = gap_candles(candles, timeframe, self.gaps)
        self._first_opens[pair, timeframe] = candles.index[0] if len(candles) else None
        return candles


@dataclass
class Prepared:
    """A checked plan, the candles it reads, and the pairs to run it on."""

    plan: Plan
    feed: Feed
    pairs: list[str]
    sha256: str
    extras: MarketExtras = field(default_factory=MarketExtras)


def prepare(request: BacktestRequest) -> Prepared:
    loaded = load_file(request.strategy)
    plan = build_plan(check(loaded, request.overrides), gaps=request.gaps)
    require_mode(plan, request.mode)
    if request.warmup is not None:
        plan = replace(plan, accepted_warmup=request.warmup)
    store = CandleStore(request.data_dir)
    exchange = request.exchange or plan.strategy.spec.market.exchange
    feed = CandleFeed(store, exchange, plan, request.end)
    pairs = _pairs(request, plan, store, exchange)
    sha256 = hashlib.sha256(loaded.source.text.encode()).hexdigest()
    extras = market_extras(request.data_dir, exchange, request.end)
    return Prepared(plan, stored_feed(plan, feed, extras), pairs, sha256, extras)


def market_extras(root: Path, exchange: str, end: pd.Timestamp | None = None) -> MarketExtras:
    """Funding, mark prices and market rules from the store (each may be absent)."""
    store = FuturesStore(root)

    def funding(pair: str) -> pd.DataFrame | None:
        return store.read_funding(exchange, pair)

    def mark(pair: str, timeframe: str) -> pd.DataFrame | None:
        return store.load_mark(exchange, pair, timeframe, end=end)

    return MarketExtras(funding, mark, store.read_markets(exchange), exchange)


def run_backtest(request: BacktestRequest, progress: Progress | None = None) -> BacktestResult:
    started = time.perf_counter()
    if progress:
        progress("loading", 0, 0)
    prepared = prepare(request)
    result = simulate(
        prepared.plan,
        prepared.feed,
        prepared.pairs,
        request.start,
        progress,
        prepared.extras,
        must_trade=True,
        hold_candles=True,
    )
    result.strategy_file = str(request.strategy)
    result.strategy_sha256 = prepared.sha256
    result.elapsed_seconds = time.perf_counter() - started
    return result


def _pairs(request: BacktestRequest, plan: Plan, store: CandleStore, exchange: str) -> list[str]:
    spec = plan.strategy.spec
    if request.pairs:
        return sorted(set(request.pairs))
    if spec.scanner is not None and spec.scanner.universe:
        return sorted(spec.scanner.universe)
    if spec.market.pairs:
        return sorted(spec.market.pairs)
    quote = "/" + spec.market.stake_currency
    stored = {
        s.pair
        for s in store.available()
        if s.exchange == exchange and s.timeframe == plan.timeframe and quote in s.pair
    }
    if not stored:
        raise DataError(
            f"no {plan.timeframe} {spec.market.stake_currency} candles for {exchange} in "
            f"{store.root}; import or download some (see docs/data.md)"
        )
    if spec.scanner is not None:
        stored = {p for p in stored if not blacklisted(p, spec.scanner.blacklist)}
    return sorted(stored)


def simulate(
    plan: Plan,
    feed: Feed,
    pairs: list[str],
    start: pd.Timestamp | None = None,
    progress: Progress | None = None,
    extras: MarketExtras | None = None,
    *,
    must_trade: bool = False,
    cache: SeriesCache | None = None,
    hold_candles: bool = False,
) -> BacktestResult:
    """Run the portfolio simulation on candles from `feed`; the core, without files.
    `extras`: funding, mark prices and market rules (none: no funding, no rounding).
    `must_trade`: DataError, not an empty result, when every pair's data ends in warm-up.
    `cache`: series kept from earlier runs over the same candles (a search's trials).
    `hold_candles`: the result keeps each pair's prices for its charts (a report is
    written next) rather than reading them again when asked; they were held for the run."""
    if not pairs:
        raise ConfigError("no pairs to backtest")
    checked, spec = plan.strategy, plan.strategy.spec
    extras = extras or MarketExtras(exchange=spec.market.exchange)
    step = pd.Timedelta(seconds=timeframe_seconds(plan.timeframe))
    if progress:  # the series every pair reads; each pair's own are read as it comes
        wanted = {(need.pair, need.timeframe): None for need in plan.data if need.pair}
        for done, (pair, timeframe) in enumerate(wanted):
            progress("loading", done, len(wanted))
            with contextlib.suppress(DataError):  # reported where the series is used
                feed(pair, timeframe)
        progress("loading", len(wanted), len(wanted))
    index = feed.index if isinstance(feed, CandleFeed) else None
    # kept: its models' training history goes in the notes
    evaluated = stored_feed(plan, feed, extras) if extras is not None else feed
    evaluator = Evaluator(plan, evaluated, cache)
    market = prepare_market(
        plan,
        feed,
        pairs,
        start,
        progress,
        extras=extras,
        index=index,
        evaluator=evaluator,
        cache=cache,
    )
    timeline, data = market.timeline, market.pairs
    if start is not None and start > timeline[-1]:
        raise ConfigError(
            f"the timerange starts at {start:%Y-%m-%d %H:%M}, after the data ends "
            f"({timeline[-1]:%Y-%m-%d %H:%M}); import or download more, or move the start"
        )
    late = _warmup_notes(plan, feed, data, start, must_trade)
    fills = fill_model(plan)
    regimes = [name for name, _ in checked.regime]
    portfolio = Portfolio(plan, fills, spec.backtest.starting_balance, step, regimes)
    if progress:
        progress("portfolio", 0, 0)
    trades = portfolio.run(data, timeline, progress)
    first_tradable = min(
        d.signals.index[min(d.tradable_from, len(d.signals.index) - 1)] for d in data
    )
    equity = _equity(trades, data, timeline, step, spec.backtest.starting_balance)
    skipped = list(market.skipped) + model_notes(evaluator.model_records)
    if "funding_rate" in plan.live_inputs and spec.market.type == "futures":
        bare = [d.pair for d in data if not _holds(d.prices.get("funding"))]
        if bare:
            skipped.append(
                f"funding_rate: no funding data for {', '.join(bare)}: undefined there, so "
                "comparisons with it are false"
            )
    return BacktestResult(
        strategy_name=spec.metadata.name,
        strategy_file="",
        strategy_sha256="",
        params=dict(checked.params),
        timeframe=plan.timeframe,
        pairs=pairs,
        start=first_tradable,
        end=timeline[-1],
        assumptions=Assumptions(
            fee=fills.fee,
            slippage=fills.slippage,
            starting_balance=spec.backtest.starting_balance,
            fill_model=fills.describe()
            + describe(portfolio_rules(plan))
            + describe_extras(
                spec.market.type == "futures",
                fills.stops_on_mark,
                [d.pair for d in data],
                [d.pair for d in data if _holds(d.prices.get("funding"))],
                [d.pair for d in data if "mark_low" in d.prices],
                extras,
                portfolio.below_minimum,
                portfolio.skipped_exits,
            ),
            skipped=tuple(skipped),
            warnings=(*stop_warnings(trades), *_market_warnings(feed, data, spec.market.type)),
            gaps=plan.gaps,
            durations=plan.durations,
            gap_candles=tuple((d.pair, _gap_candles(feed, d.pair, plan)) for d in data),
            warmup=(warmup_statement(plan), *late),
        ),
        trades=trades,
        equity=equity[equity.index >= first_tradable + step],
        regimes=regimes,
        tags=list(checked.tags),
        candles=(
            HeldCandles(data)
            if hold_candles
            else StoredCandles(feed, plan.timeframe, [d.pair for d in data])
        ),
    )


def _gap_candles(feed: Feed, pair: str, plan: Plan) -> int:
    if isinstance(feed, CandleFeed):
        return feed.gap_candles(pair, plan.timeframe)
    return gap_candles(feed(pair, plan.timeframe), plan.timeframe, plan.gaps)


def _market_warnings(feed: Feed, data: list[PairData], market: str) -> list[str]:
    """A futures strategy run on spot candles (the usual case for long histories) is worth
    knowing: the perpetual's prices differ a little, and so would stops and liquidations."""
    if not isinstance(feed, CandleFeed):
        return []
    other = feed.other_market([d.pair for d in data], market)
    if not other:
        return []
    held = "spot" if market == "futures" else "futures"
    return [
        f"this {market} strategy ran on {held} candles of {', '.join(other)} (as recorded in "
        f"the store): prices, stops and liquidations follow those; download the {market} "
        "market's candles into another data directory for an exact backtest"
    ]


def _warmup_notes(
    plan: Plan, feed: Feed, data: list[PairData], start: pd.Timestamp | None, must_trade: bool
) -> list[str]:
    """The warm-up in one line each: pairs whose data ends inside it (DataError when that is
    every pair, rather than an empty backtest), and a timerange that starts inside it."""
    warmup = format_duration(plan.used_warmup_seconds)
    # the first open of each series, kept as it was read: no series is read again
    opened = feed.first_open if isinstance(feed, CandleFeed) else first_open(feed)
    ends = {d.pair: warmup_ends(plan, opened, d.pair, d.signals.index) for d in data}
    short = [d for d in data if d.tradable_from >= len(d.signals.index)]
    advice = (
        "import or download earlier candles, or accept a shorter warm-up with "
        "`backtest.warmup` in the file or --warmup (e.g. --warmup 30d)"
    )
    if must_trade and short and len(short) == len(data):
        pair = min(ends, key=lambda p: ends[p])
        last = {d.pair: d.signals.index[-1] for d in data}[pair]
        raise DataError(
            f"nothing can trade: the strategy needs {warmup} of warm-up and every pair's "
            f"data ends before it is over (the first, {pair}, could trade from "
            f"{ends[pair]:%Y-%m-%d %H:%M}; its data ends {last:%Y-%m-%d %H:%M}); {advice}"
        )
    notes = []
    if short:
        names = ", ".join(f"{d.pair} (from {ends[d.pair]:%Y-%m-%d})" for d in short)
        notes.append(
            f"not traded, their data ends inside the warm-up of {warmup}: {names}; {advice}"
        )
    tradable = [d for d in data if d not in short]
    if start is not None and tradable:
        first = min(ends[d.pair] for d in tradable)
        if first > start:
            notes.append(
                f"the timerange starts {start:%Y-%m-%d %H:%M}, inside the warm-up of {warmup}: "
                f"the first candle that can trade is {first:%Y-%m-%d %H:%M}"
            )
    return notes


def stop_warnings(trades: list[Trade]) -> list[str]:
    """Futures trades whose stop could never fire: it lay at or beyond their liquidation
    price (or they had none), so a fall that far liquidates them first."""
    unprotected = [
        t
        for t in trades
        if t.liquidation_price is not None
        and beyond_liquidation(
            t.initial_stop, t.liquidation_price, 1.0 if t.side == "long" else -1.0
        )
    ]
    if not unprotected:
        return []
    first = unprotected[0]
    return [
        f"{len(unprotected)} of {len(trades)} trade(s) had their stop at or beyond the "
        "liquidation price (or no stop): a move that far liquidates them, losing the whole "
        f"margin, and the stop never fires. First: #{first.id} {first.pair} {first.side} "
        f"entered {first.entry_time:%Y-%m-%d %H:%M}, stop {first.initial_stop:.6g}, "
        f"liquidation {first.liquidation_price:.6g}"
    ]


def _equity(
    trades: list[Trade],
    data: list[PairData],
    timeline: pd.DatetimeIndex,
    step: pd.Timedelta,
    starting: float,
) -> pd.Series:
    """Account value at every candle close: cash, plus open trades marked to their close."""
    total = np.full(len(timeline), starting, dtype=np.float64)
    by_pair = {d.pair: d for d in data}
    nanos = {d.pair: d.signals.index.as_unit("ns").asi8 for d in data}  # searched as integers
    for trade in trades:
        pair = by_pair[trade.pair]
        times = nanos[trade.pair]
        first = _position(times, trade.entry_time)
        last = _position(times, trade.exit_time)
        sign = 1.0 if trade.side == "long" else -1.0
        # fills before the last candle held change what is held; later ones (the exit) not
        held_changes = [
            (at, fill) for fill in trade.fills[1:] if (at := _position(times, fill.time)) < last
        ]
        closes = pair.prices["close"][first:last]
        if held_changes or pair.prices.get("funding") is not None:
            open_value = _open_value(trade, pair, first, last, sign, held_changes)
        else:  # the whole amount held throughout: the same sums on one number each
            open_value = -trade.fills[0].fee + sign * (closes - trade.entry_price) * trade.amount
        where = pair.timeline_index[first:last]
        if len(where) and where[-1] - where[0] == len(where) - 1:  # a run: add to a slice
            total[where[0] : where[-1] + 1] += open_value
        else:
            total[where] += open_value
        total[pair.timeline_index[last] :] += trade.profit
    return pd.Series(total, index=timeline + step, name="equity")


def _open_value(
    trade: Trade,
    pair: PairData,
    first: int,
    last: int,
    sign: float,
    held_changes: list[tuple[int, Fill]],
) -> np.ndarray:
    """The trade's value at each close it is open (first..last-1), with what its partial
    fills took out and its funding paid so far."""
    local = np.arange(first, last)
    remaining = np.full(len(local), trade.amount)
    realized = np.full(len(local), -trade.fills[0].fee)
    for at, fill in held_changes:
        after = local >= at
        remaining[after] -= fill.amount
        realized[after] += sign * (fill.price - trade.entry_price) * fill.amount - fill.fee
    paid_at, paid = funding_payments(trade, pair.signals.index, pair.prices)
    if len(paid_at):  # nothing paid: subtracting zeros would change no bit
        funded = np.zeros(len(local))
        np.add.at(funded, paid_at[paid_at < last] - first, paid[paid_at < last])
        realized -= np.cumsum(funded)
    value: np.ndarray = (
        realized + sign * (pair.prices["close"][first:last] - trade.entry_price) * remaining
    )
    return value


def _holds(values: np.ndarray | None) -> bool:
    return values is not None and bool(np.isfinite(values).any())


def _position(nanos: np.ndarray, moment: pd.Timestamp | None) -> int:
    """Where a candle of this pair sits in its index, given as nanoseconds (`asi8`: UTC
    for an aware index, as a trade's time is; trades only ever name real candles)."""
    assert moment is not None
    return int(nanos.searchsorted(moment.value))

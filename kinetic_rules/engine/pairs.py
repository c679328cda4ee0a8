"""Everything the portfolio needs to know about one pair, from its signals.

Shared by the backtest (over all history at once) and the live runtime (over its
window at each close): entry verdicts, per-candle trade limits from the regime and
protections, the exits that apply, and the first candle past the warm-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import reduce
from typing import Protocol

import numpy as np
import pandas as pd

from kinetic_rules.compile.evaluate import Evaluator, PairSignals
from kinetic_rules.compile.plan import Plan, live_names
from kinetic_rules.compile.series_cache import SeriesCache
from kinetic_rules.engine.futures import (
    FUNDING_RATE,
    MarketExtras,
    extra_prices,
    with_funding_rate,
)
from kinetic_rules.engine.path_rules import ExitRules
from kinetic_rules.engine.portfolio import PairData
from kinetic_rules.engine.scanner import refresh_rows, shortlist
from kinetic_rules.errors import ConfigError
from kinetic_rules.lang import ast
from kinetic_rules.lang.names import stored_inputs
from kinetic_rules.market_rules import MarketRules
from kinetic_rules.timeframes import timeframe_seconds

Feed = Callable[[str, str], pd.DataFrame]
Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass
class Market:
    """Every pair, ready for the portfolio: laid on one timeline, shortlisted by the scanner."""

    timeline: pd.DatetimeIndex
    pairs: list[PairData]
    skipped: tuple[str, ...]  # rules that need live data, not run here


class PairInputs(Protocol):
    """Where a market's pairs come from: all history (a backtest) or live windows."""

    def index(self, pair: str) -> pd.DatetimeIndex:
        """Open times of the pair's base candles."""
        ...

    def signals(self, pair: str) -> PairSignals: ...

    def prices(self, pair: str) -> dict[str, np.ndarray]:
        """open, high, low and close of the base candles."""
        ...

    def tradable_from(self, pair: str, index: pd.DatetimeIndex) -> int:
        """First candle whose close may decide an entry."""
        ...


@dataclass
class FeedInputs:
    """Pairs read from a feed of candles and evaluated in one batch each."""

    plan: Plan
    feed: Feed
    evaluator: Evaluator
    start: pd.Timestamp | None = None
    extras: MarketExtras | None = None  # funding and mark prices, for futures
    index_of: Callable[[str, str], pd.DatetimeIndex] | None = None  # without the candles

    def index(self, pair: str) -> pd.DatetimeIndex:
        if self.index_of is not None:
            return self.index_of(pair, self.plan.timeframe)
        return pd.DatetimeIndex(self.feed(pair, self.plan.timeframe).index)

    def signals(self, pair: str) -> PairSignals:
        return self.evaluator.evaluate(pair)

    def prices(self, pair: str) -> dict[str, np.ndarray]:
        candles = self.feed(pair, self.plan.timeframe)
        prices = {
            k: candles[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close")
        }
        if self.extras is not None and self.plan.strategy.spec.market.type == "futures":
            step = pd.Timedelta(seconds=timeframe_seconds(self.plan.timeframe))
            funding = self.extras.funding(pair)
            mark = self.extras.mark(pair, self.plan.timeframe)
            index = pd.DatetimeIndex(candles.index)
            prices.update(extra_prices(index, step, prices, funding, mark))
        return prices

    def tradable_from(self, pair: str, index: pd.DatetimeIndex) -> int:
        first = warmed_up(self.plan, self.feed, pair, index)
        if self.start is not None:
            first = max(first, int(index.searchsorted(self.start)))
        return first


def prepare_market(
    plan: Plan,
    feed: Feed,
    pairs: list[str],
    start: pd.Timestamp | None = None,
    progress: Progress | None = None,
    evaluator: Evaluator | None = None,
    extras: MarketExtras | None = None,
    index: Callable[[str, str], pd.DatetimeIndex] | None = None,
    cache: SeriesCache | None = None,
) -> Market:
    """Signals of every pair over all its candles, then the point-in-time scanner; with
    `extras`, funding and mark prices beside the candles, and the exchange's rules;
    `index` gives a pair's open times without reading its candles (the feed's otherwise);
    `cache` keeps series for the next run over the same candles (a search's trials)."""
    if extras is not None:
        feed = stored_feed(plan, feed, extras)
    evaluator = evaluator or Evaluator(plan, feed, cache)
    inputs = FeedInputs(plan, feed, evaluator, start, extras, index)
    rules = extras.rules_for if extras is not None else None
    return assemble_market(plan, inputs, pairs, progress, rules, cache=cache)


def stored_feed(plan: Plan, feed: Feed, extras: MarketExtras) -> Feed:
    """`feed` with the live inputs a backtest has from stored data: on a futures market,
    `funding_rate` beside the base candles when the rules read it."""
    reads = plan.live_inputs | {n for s in plan.strategy.scanner for n in live_names(s.rule.node)}
    if FUNDING_RATE not in reads or plan.strategy.spec.market.type != "futures":
        return feed
    return with_funding_rate(feed, plan.timeframe, extras.funding)


def assemble_market(
    plan: Plan,
    inputs: PairInputs,
    pairs: list[str],
    progress: Progress | None = None,
    rules: Callable[[str], MarketRules | None] | None = None,
    live_at: Callable[[pd.DatetimeIndex], np.ndarray] | None = None,
    cache: SeriesCache | None = None,
) -> Market:
    """Every pair's signals and verdicts, laid on one timeline, then the scanner's shortlist.

    Each pair is cut down to what trade paths read as soon as its verdicts and scanner
    values are taken, so memory grows with pairs × candles, not × rules. `live_at`, in a
    running session: at which candles of the timeline it read the live inputs (the
    scanner's live-only steps run at those refreshes; its signals must hold their values).
    `cache`: the pairs' layout on the timeline is kept there for the next run.
    """
    if not pairs:
        raise ConfigError("no pairs to run the strategy on")
    checked, spec = plan.strategy, plan.strategy.spec
    layout = _layout(plan, inputs, pairs, cache)
    timeline, everywhere, positions = layout.timeline, layout.everywhere, layout.positions
    available, rows = layout.available, layout.rows
    scanned = [r for r in checked.scanner if live_at is not None or not r.live_only]
    matrices = {id(r): np.full((len(rows), len(pairs)), np.nan) for r in scanned}
    keep = trade_nodes(plan)
    data: list[PairData] = []
    for column, pair in enumerate(pairs):
        if progress:
            progress("indicators", column, len(pairs))
        signals = inputs.signals(pair)
        where = positions[column]
        if np.shares_memory(where, everywhere) and len(where):  # a run of the timeline
            signals.index = timeline[int(where[0]) : int(where[-1]) + 1]  # a view, not a copy
        local = np.full(len(timeline), -1)
        local[where] = np.arange(len(where))
        at_rows = local[rows]
        seen = np.flatnonzero(at_rows >= 0)  # the scanner's rows the pair has a candle at
        taken = at_rows[seen]  # found once, for every scanned series
        for rule in scanned:
            matrices[id(rule)][seen, column] = signals.values[rule.rule.node][taken]
        tradable_from = inputs.tradable_from(pair, signals.index)
        prepared = pair_data(plan, pair, signals, inputs.prices(pair), where, tradable_from)
        if rules is not None:
            with_rules(prepared, rules(pair))
        data.append(prepared)
        signals.values = {n: v for n, v in signals.values.items() if n in keep}
        if signals.regime is not None and len(checked.regime) <= np.iinfo(np.int8).max:
            signals.regime = signals.regime.astype(np.int8)  # a class number, kept per candle
    if progress:
        progress("indicators", len(pairs), len(pairs))
    read_live = live_at(timeline) if live_at is not None else None
    picks = shortlist(
        spec.scanner, checked.scanner, pairs, rows, len(timeline), matrices, available, read_live
    )
    for column, prepared in enumerate(data):
        prepared.allowed = picks.allowed[prepared.timeline_index, column]
    skipped = [*picks.skipped]
    if live_at is None:  # a backtest or replay: only what is stored beside the candles
        stored = stored_inputs(spec.market.type)
        for read in plan.reads_live:
            absent = [name for name in live_names(read.node) if name not in stored]
            if absent:
                skipped.append(
                    f"{read.label}: reads {', '.join(absent)}, which exist(s) only live: "
                    "undefined in this run, so comparisons with it are false"
                )
    return Market(timeline, data, tuple(skipped))


@dataclass(frozen=True)
class Layout:
    """The pairs laid on one timeline: it depends on their candles alone, so every run
    over the same candles (a search's trials) can share it."""

    timeline: pd.DatetimeIndex
    everywhere: np.ndarray  # 0 … len(timeline) - 1
    positions: list[np.ndarray]  # where each pair's candles sit on the timeline
    available: np.ndarray  # bool [candles × pairs]: the pair has a candle there
    rows: np.ndarray  # candles of the timeline where the scanner refreshes


def _layout(plan: Plan, inputs: PairInputs, pairs: list[str], cache: SeriesCache | None) -> Layout:
    indexes = [inputs.index(pair) for pair in pairs]
    if cache is None:
        return _lay_out(plan, indexes)
    refresh = plan.strategy.spec.scanner.refresh if plan.strategy.spec.scanner else None
    key = ("layout", plan.timeframe, plan.gaps, refresh, *map(_identity, pairs, indexes))
    return cache.derived(key, lambda: _lay_out(plan, indexes))


def _identity(pair: str, index: pd.DatetimeIndex) -> tuple[str, int, int, int]:
    times = index.as_unit("ns").asi8
    return (
        pair,
        len(times),
        int(times[0]) if len(times) else 0,
        int(times[-1]) if len(times) else 0,
    )


def _lay_out(plan: Plan, indexes: list[pd.DatetimeIndex]) -> Layout:
    timeline = reduce(lambda a, b: a.union(b), indexes)
    everywhere = np.arange(len(timeline))
    positions = [_positions(timeline, everywhere, index) for index in indexes]
    available = np.zeros((len(timeline), len(indexes)), dtype=bool)
    for column, where in enumerate(positions):
        available[where, column] = True
    rows = refresh_rows(plan.strategy.spec.scanner, timeline, timeframe_seconds(plan.timeframe))
    for array in (everywhere, *positions, available, rows):
        array.setflags(write=False)  # shared by every run that reads the layout
    return Layout(timeline, everywhere, positions, available, rows)


def _positions(
    timeline: pd.DatetimeIndex, everywhere: np.ndarray, index: pd.DatetimeIndex
) -> np.ndarray:
    """Where a pair's candles sit on the timeline. Most pairs hold a run of it without a
    hole: theirs is then a view of one shared range, so it costs nothing per pair."""
    if index.equals(timeline):
        return everywhere
    found = timeline.get_indexer(index)
    if len(found) and found[-1] - found[0] == len(found) - 1:
        return everywhere[found[0] : found[-1] + 1]
    return found


def trade_nodes(plan: Plan) -> set[ast.Node]:
    """Market series that trades read while open, or when they are sized, ranked and tagged."""
    checked = plan.strategy
    rules = [r for side in checked.exit.values() for r in side.values()]
    rules += [t.activate for t in checked.trailing.values()]
    rules += [t.level for t in checked.trailing.values()]
    rules += list(checked.take_profit.values())
    rules += [
        r for r in (checked.stop_initial, checked.stake, checked.leverage, checked.priority) if r
    ]
    rules += list(checked.tags.values())  # read when an entry is decided and when it fills
    # Entry conditions and protections that read the portfolio are decided in its loop.
    decided = [r for side in checked.entry.values() for r in side.values()]
    decided += list(checked.protections.values())
    rules += [r for r in decided if not plan.is_trade_free(r.node)]
    # Trade expressions look a series up from the top down and stop at the first one held
    # (compile/trade_eval.py): the parts inside it are never read, so they are not kept.
    found: set[ast.Node] = set(plan.shown)  # a display reads these (Plan.showing)
    for rule in rules:
        stack = [rule.node]
        while stack:
            node = stack.pop()
            if node in plan.trade_free:
                found.add(node)
            else:
                stack.extend(node.children())
    return found


def pair_data(
    plan: Plan,
    pair: str,
    signals: PairSignals,
    prices: dict[str, np.ndarray],
    where: np.ndarray,
    tradable_from: int,
) -> PairData:
    checked, spec = plan.strategy, plan.strategy.spec
    limit = np.full(len(signals.index), spec.portfolio.max_open_trades, dtype=np.int64)
    if spec.regime is not None and signals.regime is not None:
        names = [name for name, _ in checked.regime]
        by_class = np.array(
            [spec.regime.max_open_trades.get(n, spec.portfolio.max_open_trades) for n in names]
        )
        limit = np.minimum(limit, by_class[signals.regime])
    blocked = np.zeros(len(signals.index), dtype=bool)
    close_all = []
    for name, rule in checked.protections.items():
        if not plan.is_trade_free(rule.node):
            continue  # it reads the portfolio: the portfolio applies it as it decides
        protection = spec.protections[name]
        active = signals.values[rule.node].astype(bool)
        if protection.max_open_trades is not None:
            limit = np.where(active, np.minimum(limit, protection.max_open_trades), limit)
        if protection.block_entries:
            blocked |= active
        if protection.close_all:
            close_all.append((name, active))
    entries = {
        side: signals.all_of({n: r for n, r in rules.items() if plan.is_trade_free(r.node)})
        for side, rules in checked.entry.items()
        if rules
    }
    take_profits = [
        (name, rule, spec.take_profit[name].close) for name, rule in checked.take_profit.items()
    ]
    exits = {
        side: ExitRules(checked.exit.get(side, {}), checked.trailing, take_profits, close_all)
        for side in entries
    }
    return PairData(
        pair=pair,
        signals=signals,
        prices=prices,
        timeline_index=where,
        tradable_from=tradable_from,
        allowed=np.zeros(len(signals.index), dtype=bool),  # set once the scanner has run
        entries=entries,  # type: ignore[arg-type]
        exit_rules=exits,  # type: ignore[arg-type]
        blocked=blocked,
        limit=limit.astype(np.int32),  # a count of trades, kept for every candle
    )


def with_rules(data: PairData, rules: MarketRules | None) -> None:
    """Give a pair the exchange's rules: its entries, exits and stops follow them."""
    data.rules = rules
    if rules is not None:
        data.exit_rules = {
            side: replace(exits, tick=rules.tick_size) for side, exits in data.exit_rules.items()
        }


def warmed_up(plan: Plan, feed: Feed, pair: str, index: pd.DatetimeIndex) -> int:
    """First candle whose close may decide: every series it reads has had its warm-up."""
    if not len(index):
        return 0
    step = pd.Timedelta(seconds=timeframe_seconds(plan.timeframe))
    ready = index[0] - step
    for need in plan.data:
        if need.timeframe == plan.timeframe and need.pair is None:
            continue
        frame = feed(need.pair or pair, need.timeframe)
        candles = plan.warmup_candles(need.timeframe) + 1
        if len(frame) < candles:
            return len(index)
        seconds = timeframe_seconds(need.timeframe)
        closes = frame.index[candles - 1] + pd.Timedelta(seconds=seconds)
        ready = max(ready, closes - step)
    # Base-timeframe series computed over those values need their own warm-up after it.
    first = int(index.searchsorted(ready)) + plan.warmup_candles(plan.timeframe)
    return min(first, len(index))


FirstOpen = Callable[[str, str], "pd.Timestamp | None"]  # (pair, timeframe) -> first open


def first_open(feed: Feed) -> FirstOpen:
    """Open time of a series' first candle (None: it has none), read from `feed`."""

    def first(pair: str, timeframe: str) -> pd.Timestamp | None:
        frame = feed(pair, timeframe)
        return frame.index[0] if len(frame) else None

    return first


def warmup_ends(plan: Plan, first: FirstOpen, pair: str, index: pd.DatetimeIndex) -> pd.Timestamp:
    """Open time of the first candle that may trade: as `warmed_up` finds it, or, when the
    data ends too soon, where it would be if the data went on (for messages). `first`
    gives a series' first open time (`first_open(feed)`, or one kept from reading it)."""
    step = pd.Timedelta(seconds=timeframe_seconds(plan.timeframe))
    start = index[0] if len(index) else pd.Timestamp(0, tz="UTC")
    ready = start - step
    for need in plan.data:
        if need.timeframe == plan.timeframe and need.pair is None:
            continue
        opened = first(need.pair or pair, need.timeframe)
        first_candle = opened if opened is not None else start
        seconds = timeframe_seconds(need.timeframe)
        warmup = seconds * (plan.warmup_candles(need.timeframe) + 1)
        closes = first_candle + pd.Timedelta(seconds=warmup)
        ready = max(ready, closes - step)
    opens = ready if ready <= start else start + -((start - ready) // step) * step
    return opens + plan.warmup_candles(plan.timeframe) * step

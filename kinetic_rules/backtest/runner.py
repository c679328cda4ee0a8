"""Backtest driver: strategy file + candle store → BacktestResult.

Stages in order: check the file, build the plan, evaluate every pair's signals over all
its history (vectorized), lay the pairs on one timeline, run the scanner point in time,
derive per-candle trade limits from the regime and protections, then hand the entry
candidates to the portfolio simulation. Warm-up candles are used for indicators but
never traded; a `--timerange` start only moves the first tradable candle.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd

from kinetic_rules.compile.evaluate import Evaluator, PairSignals
from kinetic_rules.compile.plan import Plan, build_plan
from kinetic_rules.data.store import CandleStore
from kinetic_rules.engine.fills import FillModel
from kinetic_rules.engine.model import Assumptions, BacktestResult, Trade
from kinetic_rules.engine.paths import ExitRules
from kinetic_rules.engine.portfolio import PairData, Portfolio
from kinetic_rules.engine.scanner import blacklisted, refresh_rows, shortlist
from kinetic_rules.errors import ConfigError, DataError
from kinetic_rules.lang import ast
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.loader import load_file
from kinetic_rules.timeframes import timeframe_seconds

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


@dataclass
class Prepared:
    """A checked plan, the candles it reads, and the pairs to run it on."""

    plan: Plan
    feed: Feed
    pairs: list[str]
    sha256: str


def prepare(request: BacktestRequest) -> Prepared:
    loaded = load_file(request.strategy)
    plan = build_plan(check(loaded, request.overrides))
    store = CandleStore(request.data_dir)
    exchange = request.exchange or plan.strategy.spec.market.exchange
    cache: dict[tuple[str, str], pd.DataFrame] = {}

    def feed(pair: str, timeframe: str) -> pd.DataFrame:
        key = (pair, timeframe)
        if key not in cache:
            cache[key] = store.load(exchange, pair, timeframe, end=request.end)
        return cache[key]

    pairs = _pairs(request, plan, store, exchange)
    sha256 = hashlib.sha256(loaded.source.text.encode()).hexdigest()
    return Prepared(plan, feed, pairs, sha256)


def run_backtest(request: BacktestRequest, progress: Progress | None = None) -> BacktestResult:
    started = time.perf_counter()
    prepared = prepare(request)
    result = simulate(prepared.plan, prepared.feed, prepared.pairs, request.start, progress)
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
) -> BacktestResult:
    """Run the portfolio simulation on candles from `feed`; the core, without files."""
    if not pairs:
        raise ConfigError("no pairs to backtest")
    checked, spec = plan.strategy, plan.strategy.spec
    step = pd.Timedelta(seconds=timeframe_seconds(plan.timeframe))
    indexes = [pd.DatetimeIndex(feed(pair, plan.timeframe).index) for pair in pairs]
    timeline = reduce(lambda a, b: a.union(b), indexes)
    positions = [timeline.get_indexer(index) for index in indexes]
    available = np.zeros((len(timeline), len(pairs)), dtype=bool)
    for column, where in enumerate(positions):
        available[where, column] = True
    rows = refresh_rows(spec.scanner, timeline, int(step.total_seconds()))
    scanned = [r for r in checked.scanner if not r.live_only]
    matrices = {id(r): np.full((len(rows), len(pairs)), np.nan) for r in scanned}
    keep = _trade_nodes(plan)
    evaluator = Evaluator(plan, feed)
    data: list[PairData] = []
    for column, pair in enumerate(pairs):
        if progress:
            progress("signals", column, len(pairs))
        signals = evaluator.evaluate(pair)
        where = positions[column]
        local = np.full(len(timeline), -1)
        local[where] = np.arange(len(where))
        at_rows = local[rows]
        seen = at_rows >= 0
        for rule in scanned:
            matrices[id(rule)][seen, column] = signals.values[rule.rule.node][at_rows[seen]]
        data.append(_pair_data(plan, feed, pair, signals, where, start))
        # Only what trade paths read stays in memory; the rest served its purpose.
        signals.values = {n: v for n, v in signals.values.items() if n in keep}
    if progress:
        progress("signals", len(pairs), len(pairs))
    picks = shortlist(
        spec.scanner, checked.scanner, pairs, rows, len(timeline), matrices, available
    )
    for column, pair_data in enumerate(data):
        pair_data.allowed = picks.allowed[pair_data.timeline_index, column]
    fills = FillModel(
        fee=spec.backtest.fee,
        slippage=spec.backtest.slippage,
        entry_limit=spec.orders.entry == "limit",
        exit_limit=spec.orders.exit == "limit",
        entry_timeout=max(1, spec.orders.timeouts.entry // int(step.total_seconds())),
        exit_timeout=max(1, spec.orders.timeouts.exit // int(step.total_seconds())),
    )
    regimes = [name for name, _ in checked.regime]
    portfolio = Portfolio(plan, fills, spec.backtest.starting_balance, step, regimes)
    trades = portfolio.run(data, timeline)
    first_tradable = min(
        d.signals.index[min(d.tradable_from, len(d.signals.index) - 1)] for d in data
    )
    equity = _equity(trades, data, timeline, step, spec.backtest.starting_balance)
    skipped = [*picks.skipped]
    skipped += [
        f"{r.label}: needs live data" for r in plan.live_only if not r.label.startswith("scanner")
    ]
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
            fill_model=fills.describe(),
            skipped=tuple(skipped),
        ),
        trades=trades,
        equity=equity[equity.index >= first_tradable + step] if len(trades) or True else equity,
        regimes=regimes,
        candles={d.pair: feed(d.pair, plan.timeframe) for d in data},
    )


def _trade_nodes(plan: Plan) -> set[ast.Node]:
    """Market series that trades read while open, or when they are sized and ranked."""
    checked = plan.strategy
    rules = [r for side in checked.exit.values() for r in side.values()]
    rules += [t.activate for t in checked.trailing.values()]
    rules += [t.level for t in checked.trailing.values()]
    rules += list(checked.take_profit.values())
    rules += [
        r for r in (checked.stop_initial, checked.stake, checked.leverage, checked.priority) if r
    ]
    found: set[ast.Node] = set()
    for rule in rules:
        found.update(n for n in rule.node.walk() if n in plan.trade_free)
    return found


def _pair_data(
    plan: Plan,
    feed: Feed,
    pair: str,
    signals: PairSignals,
    where: np.ndarray,
    start: pd.Timestamp | None,
) -> PairData:
    checked, spec = plan.strategy, plan.strategy.spec
    candles = feed(pair, plan.timeframe)
    prices = {k: candles[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close")}
    tradable_from = _warmed_up(plan, feed, pair, signals.index)
    if start is not None:
        tradable_from = max(tradable_from, int(signals.index.searchsorted(start)))
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
        protection = spec.protections[name]
        active = signals.values[rule.node].astype(bool)
        if protection.max_open_trades is not None:
            limit = np.where(active, np.minimum(limit, protection.max_open_trades), limit)
        if protection.block_entries:
            blocked |= active
        if protection.close_all:
            close_all.append((name, active))
    entries = {side: signals.all_of(rules) for side, rules in checked.entry.items() if rules}
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
        limit=limit,
    )


def _warmed_up(plan: Plan, feed: Feed, pair: str, index: pd.DatetimeIndex) -> int:
    """First candle whose close may decide: every series it reads has had its warm-up."""
    if not len(index):
        return 0
    step = pd.Timedelta(seconds=timeframe_seconds(plan.timeframe))
    ready = index[0] - step
    for need in plan.data:
        if need.timeframe == plan.timeframe and need.pair is None:
            continue
        frame = feed(need.pair or pair, need.timeframe)
        candles = plan.warmup.get(need.timeframe, 0) + 1
        if len(frame) < candles:
            return len(index)
        seconds = timeframe_seconds(need.timeframe)
        closes = frame.index[candles - 1] + pd.Timedelta(seconds=seconds)
        ready = max(ready, closes - step)
    # Base-timeframe series computed over those values need their own warm-up after it.
    first = int(index.searchsorted(ready)) + plan.warmup.get(plan.timeframe, 0)
    return min(first, len(index))


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
    for trade in trades:
        pair = by_pair[trade.pair]
        index = pair.signals.index
        closes = pair.prices["close"]
        first = _position(index, trade.entry_time)
        last = _position(index, trade.exit_time)
        sign = 1.0 if trade.side == "long" else -1.0
        entry_fee = trade.fills[0].fee
        local = np.arange(first, last)
        remaining = np.full(len(local), trade.amount)
        realized = np.full(len(local), -entry_fee)
        for fill in trade.fills[1:]:
            at = _position(index, fill.time)
            after = local >= at
            remaining[after] -= fill.amount
            realized[after] += sign * (fill.price - trade.entry_price) * fill.amount - fill.fee
        open_value = realized + sign * (closes[first:last] - trade.entry_price) * remaining
        where = pair.timeline_index[first:last]
        total[where] += open_value
        total[pair.timeline_index[last] :] += trade.profit
    return pd.Series(total, index=timeline + step, name="equity")


def _position(index: pd.DatetimeIndex, moment: pd.Timestamp | None) -> int:
    """Where a candle of this pair sits in its index (trades only ever name real candles)."""
    assert moment is not None
    return int(index.searchsorted(moment))

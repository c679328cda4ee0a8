"""One trial: the backtest of a strategy with some param values, on candles read once.

A `TrialContext` is everything a trial needs, as plain picklable data: the loaded (parsed)
strategy, every candle series its plan reads (already cut at the end of the span, so a
trial cannot see past it), funding and mark prices, and the pairs. It is built once per
study and shipped once to each worker. A trial only substitutes its param values and runs
the simulation; it never touches the files or the candle store.

`TrialRunner.plan_for` is the one place where param values become a plan. Each runner
(one per worker) owns a `SeriesCache`: a series no searched param touches is computed by
the first trial and read by every later one; a series a param does touch is kept by its
values, for the next trial that draws the same (compile/series_cache.py).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from kinetic_rules.backtest.metrics import compute_metrics, daily_returns
from kinetic_rules.backtest.runner import BacktestRequest, prepare, simulate
from kinetic_rules.compile.plan import Plan, build_plan
from kinetic_rules.compile.series_cache import DEFAULT_MB, MB, SeriesCache
from kinetic_rules.engine.futures import MarketExtras
from kinetic_rules.engine.model import BacktestResult
from kinetic_rules.errors import DataError, KineticError
from kinetic_rules.lang.checker import check
from kinetic_rules.research.objectives import metric_values
from kinetic_rules.research.space import Value, overrides
from kinetic_rules.spec.loader import LoadedStrategy, load_file

Key = tuple[str, str]
log = logging.getLogger(__name__)


@dataclass
class TrialContext:
    """What every trial of one study reads; picklable, so it ships to workers once."""

    loaded: LoadedStrategy
    sha256: str
    pairs: list[str]
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    gaps: str | None
    warmup: int | None
    candles: dict[Key, pd.DataFrame] = field(default_factory=dict)
    missing: dict[Key, str] = field(default_factory=dict)  # the DataError each would raise
    funding: dict[str, pd.DataFrame | None] = field(default_factory=dict)
    mark: dict[Key, pd.DataFrame | None] = field(default_factory=dict)
    rules: Mapping[str, Any] | None = None
    exchange: str = ""
    cache_mb: int = DEFAULT_MB  # each worker's bound on kept series (`--cache-mb`; 0: none)

    def feed(self, pair: str, timeframe: str) -> pd.DataFrame:
        key = (pair, timeframe)
        if key in self.candles:
            return self.candles[key]
        raise DataError(self.missing.get(key, f"no {timeframe} candles of {pair} in this study"))

    def extras(self) -> MarketExtras:
        def funding(pair: str) -> pd.DataFrame | None:
            return self.funding.get(pair)

        def mark(pair: str, timeframe: str) -> pd.DataFrame | None:
            return self.mark.get((pair, timeframe))

        return MarketExtras(funding, mark, self.rules, self.exchange)


def build_context(request: BacktestRequest, cache_mb: int = DEFAULT_MB) -> TrialContext:
    """Check the file, read every candle series its plan needs (up to `request.end`, not
    after), and pack them. Errors in the file or the data surface here, before any trial."""
    prepared = prepare(request)
    plan = prepared.plan
    wanted = {(need.pair or pair, need.timeframe) for pair in prepared.pairs for need in plan.data}
    wanted |= {(pair, plan.timeframe) for pair in prepared.pairs}
    context = TrialContext(
        loaded=load_file(request.strategy),
        sha256=prepared.sha256,
        pairs=prepared.pairs,
        start=request.start,
        end=request.end,
        gaps=request.gaps,
        warmup=request.warmup,
        rules=prepared.extras.rules,
        exchange=prepared.extras.exchange,
        cache_mb=cache_mb,
    )
    for key in sorted(wanted):
        try:
            context.candles[key] = prepared.feed(*key)
        except DataError as problem:
            context.missing[key] = str(problem)
        with contextlib.suppress(DataError):
            context.mark[key] = prepared.extras.mark(*key)
    for pair in sorted({pair for pair, _ in wanted}):
        with contextlib.suppress(DataError):
            context.funding[pair] = prepared.extras.funding(pair)
    return context


@dataclass(frozen=True)
class TrialOutcome:
    """What a trial reports back: the metrics, its daily returns (for overfitting
    measures), or the user-level error that stopped it."""

    values: dict[str, float | None]
    daily_returns: list[float]
    error: str | None = None


class TrialRunner:
    """Runs trials of one context; lives once per worker process, with its series cache
    (dropped with the runner: it never outlives the study)."""

    def __init__(self, context: TrialContext, keep_series: bool = True) -> None:
        """`keep_series` False: a one-off run (the chosen values on a test span), where
        keeping series would only hold memory."""
        self.context = context
        self._extras = context.extras()
        bound = context.cache_mb * MB
        self.cache = SeriesCache(bound) if keep_series and bound > 0 else None

    def plan_for(self, values: Mapping[str, Value]) -> Plan:
        """The plan with these param values: the file is parsed once per study; only the
        checker's substitution of the values runs again."""
        context = self.context
        plan = build_plan(check(context.loaded, overrides(dict(values))), gaps=context.gaps)
        if context.warmup is not None:
            plan = replace(plan, accepted_warmup=context.warmup)
        return plan

    def backtest(self, values: Mapping[str, Value]) -> BacktestResult:
        plan = self.plan_for(values)
        context = self.context
        result = simulate(
            plan,
            context.feed,
            context.pairs,
            context.start,
            None,
            self._extras,
            must_trade=True,
            cache=self.cache,
        )
        if self.cache is not None:
            log.debug("trial %s: %s", dict(values), self.cache.summary())
        result.strategy_file = context.loaded.source.path
        result.strategy_sha256 = context.sha256
        return result

    def run(self, values: Mapping[str, Value]) -> TrialOutcome:
        try:
            result = self.backtest(values)
        except KineticError as problem:
            return TrialOutcome({}, [], str(problem))
        returns = daily_returns(result)
        finite = [float(r) for r in np.asarray(returns, dtype=float) if math.isfinite(r)]
        return TrialOutcome(metric_values(compute_metrics(result)), finite)

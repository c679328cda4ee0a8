"""Candles as they arrive, kept in rolling windows; every series extended at each close.

A live bot cannot keep all history in memory, so each (pair, timeframe) keeps a window
of its last candles. At a close, the candles that closed are appended and every series
of the plan grows by their values only (compile/incremental.py): the result is exactly
what a batch evaluation over every candle since the windows were filled would give, in
a small fraction of the time (benchmarks/bench_live.py).

Windows are long on purpose. The first values, when the session starts, are computed
over the windows in one batch: recursive indicators (EMA, RSI, ATR) depend on where
their history starts, and after a few thousand candles that influence is below what a
float64 can represent, so they match a computation over all history. From then on each
recursion carries on from its own last value. Open trades read their signals back to
their entry, which must still be in the window.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from kinetic_rules.compile.candle_windows import CandleWindow
from kinetic_rules.compile.evaluate import PairSignals
from kinetic_rules.compile.incremental import IncrementalEvaluator
from kinetic_rules.compile.plan import Plan
from kinetic_rules.compile.predict import model_candles
from kinetic_rules.data.candles import timeframe_ns
from kinetic_rules.data.gaps import fill_gaps, fills_until
from kinetic_rules.engine.pairs import assemble_market, warmed_up
from kinetic_rules.engine.portfolio import PairData
from kinetic_rules.models import BackgroundTrainer
from kinetic_rules.timeframes import timeframe_seconds

DEFAULT_WINDOW = 3000  # candles kept per (pair, timeframe) at least


def window_sizes(plan: Plan, least: int = DEFAULT_WINDOW) -> dict[str, int]:
    """Candles to keep per timeframe: the warm-up, many times over, and never fewer than
    `least`; on the base timeframe also what a model retrains on (compile/predict.py)."""
    sizes = {tf: max(least, 10 * candles) for tf, candles in plan.warmup.items()}
    models = model_candles(plan.market, timeframe_seconds(plan.timeframe))
    if models:
        base = plan.timeframe
        # plus that window again before the oldest sample: the samples' features are then
        # the backtest's, bit for bit, as every other series is
        sizes[base] = models + sizes.get(base, least)
    return sizes


class WindowSource:
    """The market as known now, one rolling window per (pair, timeframe)."""

    def __init__(
        self,
        plan: Plan,
        pairs: list[str],
        history: Mapping[tuple[str, str], pd.DataFrame],
        sizes: dict[str, int] | None = None,
        live: bool = False,
        trainer: BackgroundTrainer | None = None,
    ) -> None:
        self.plan = plan
        self._pairs = list(pairs)
        self.sizes = sizes or window_sizes(plan)
        # A session that reads live inputs runs the scanner's live-only steps at the
        # refreshes it read them at (`supply(..., scanner=True)`); otherwise they are skipped.
        self.live = live
        self._scanned_live: set[int] = set()  # open times (ns) of those refresh candles
        self._inputs = plan.live_inputs | (plan.scanner_inputs if live else frozenset())
        # One evaluator for the whole session: it keeps the windows and every series on them.
        evaluated = plan.with_live_steps() if live else plan
        self._evaluator = IncrementalEvaluator(evaluated, self.sizes, DEFAULT_WINDOW)
        if trainer is not None:  # a session: models retrain without delaying a decision
            self._evaluator.models = trainer.cache
            self._evaluator.trainer = trainer
        for (pair, timeframe), frame in history.items():
            self.add(pair, timeframe, frame)
        self.timeline = pd.DatetimeIndex([], tz="UTC")
        self._view: dict[str, PairData] = {}
        self._skipped: tuple[str, ...] = ()
        self._tradable: dict[str, int] = {}  # first tradable candle, counted since the start
        self._restarts = 0

    def pairs(self) -> list[str]:
        return list(self._pairs)

    def skipped(self) -> tuple[str, ...]:
        return self._skipped

    def add(self, pair: str, timeframe: str, candles: pd.DataFrame) -> None:
        """Append newly closed candles; a candle seen before is replaced, never duplicated.

        Under the `fill` gap policy, candles missing before them (since the window's
        newest) are inserted first, exactly as a backtest over the same candles fills them.
        """
        if self.plan.gaps == "fill" and len(candles):
            window = self._evaluator.window(pair, timeframe)
            newest = window.newest() if window is not None else None
            previous = None
            if window is not None and newest is not None:
                previous = (newest, float(window.columns["close"].last(1)[0]))
            candles = fill_gaps(candles, timeframe, previous)
        if timeframe == self.plan.timeframe and self._inputs:
            absent = sorted(self._inputs - set(candles.columns))
            if absent:  # columns the live inputs are given in, undefined until supplied
                candles = candles.assign(**dict.fromkeys(absent, np.nan))
        self._evaluator.append(pair, timeframe, candles)

    def supply(self, inputs: Mapping[str, Mapping[str, float]], scanner: bool = False) -> list[str]:
        """The live inputs read at the newest close, per pair, for the rules to see at that
        close (call before refresh); `scanner`: the scanner's live-only steps were read
        too, at a refresh. Returns the pairs that took them."""
        taken = []
        for pair, values in inputs.items():
            window = self._evaluator.window(pair, self.plan.timeframe)
            if window is not None and window.supply(values):
                taken.append(pair)
                if scanner and self.live:
                    self._scanned_live.add(int(window.times.last(1)[0]))
        return taken

    def _live_at(self, timeline: pd.DatetimeIndex) -> np.ndarray:
        """Which candles of the timeline had the scanner's live inputs read at their close."""
        times = timeline.as_unit("ns").asi8
        if len(times):  # forget refreshes the windows no longer hold
            self._scanned_live = {t for t in self._scanned_live if t >= times[0]}
        return np.isin(times, np.fromiter(self._scanned_live, np.int64))

    def refresh(self) -> int:
        """Bring every pair up to its newest candle; returns the step of the newest close."""
        if self.plan.gaps == "fill":
            self._fill_missing()
        if self._evaluator.restarts != self._restarts:  # the series started over
            self._restarts = self._evaluator.restarts
            self._tradable.clear()
        live_at = self._live_at if self.live else None
        market = assemble_market(self.plan, _Windows(self), self._pairs, live_at=live_at)
        self.timeline = market.timeline
        self._view = {data.pair: data for data in market.pairs}
        self._skipped = market.skipped
        return len(self.timeline) - 1

    def _fill_missing(self) -> None:
        """Fill candles still absent that closed by the newest base close (`fill` policy).

        The candles of every close are fetched before it is acted on, so one that should
        have closed by now and has not arrived is missing, as a backtest would see it once
        a later candle shows the hole.
        """
        base = [self._evaluator.window(pair, self.plan.timeframe) for pair in self._pairs]
        step = timeframe_ns(self.plan.timeframe)
        newest = [w.newest() for w in base if w is not None]
        known = [n for n in newest if n is not None]
        if not known:
            return
        close = max(known) + step
        for window in list(self._evaluator.windows()):
            last = window.newest()
            if last is None:
                continue
            previous = (last, float(window.columns["close"].last(1)[0]))
            fills = fills_until(previous, window.timeframe, close, window.names)
            if len(fills):
                self._evaluator.append(window.pair, window.timeframe, fills)

    def as_of(self, step: int) -> dict[str, PairData]:
        if step != len(self.timeline) - 1:
            raise ValueError("a window source only knows the newest close; call refresh() first")
        return self._view

    def _window(self, pair: str, timeframe: str) -> CandleWindow:
        window = self._evaluator.window(pair, timeframe)
        if window is None:
            raise KeyError(f"no {timeframe} candles for {pair} in the live window")
        return window

    def _feed(self, pair: str, timeframe: str) -> pd.DataFrame:
        """The candles a window holds, as the candle store hands them out."""
        window = self._window(pair, timeframe)
        index = pd.DatetimeIndex(window.times.view().view("M8[ns]"), tz="UTC")
        columns = {name: np.array(tape.view()) for name, tape in window.columns.items()}
        return pd.DataFrame(columns, index=index)

    def _tradable_from(self, pair: str, index: pd.DatetimeIndex) -> int:
        """The warm-up, counted from where the series started; found once, then kept."""
        window = self._window(pair, self.plan.timeframe)
        before = window.rows - window.length  # candles the window no longer holds
        known = self._tradable.get(pair)
        if known is not None:
            return max(0, known - before)
        first = warmed_up(self.plan, self._feed, pair, index)
        if first < len(index):
            self._tradable[pair] = before + first
        return first


class _Windows:
    """The pairs of a window source, as assembling a market reads them."""

    def __init__(self, source: WindowSource) -> None:
        self._source = source
        self._signals: dict[str, PairSignals] = {}

    def signals(self, pair: str) -> PairSignals:
        found = self._signals.get(pair)
        if found is None:
            found = self._signals[pair] = self._source._evaluator.evaluate(pair)
        return found

    def index(self, pair: str) -> pd.DatetimeIndex:
        return self.signals(pair).index

    def prices(self, pair: str) -> dict[str, np.ndarray]:
        window = self._source._window(pair, self._source.plan.timeframe)
        return {k: window.columns[k].view() for k in ("open", "high", "low", "close")}

    def tradable_from(self, pair: str, index: pd.DatetimeIndex) -> int:
        return self._source._tradable_from(pair, index)

"""What a trade's rules say over a window of its candles: the stop after each close (the
trailing rules) and the decisions taken at the closes (take-profits, signal exits,
protections). engine/paths.py resolves them into fills; here each rule is one evaluation
over the window, and a rule that cannot matter there is not evaluated at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinetic_rules.compile.evaluate import PairSignals
from kinetic_rules.compile.plan import Plan
from kinetic_rules.compile.trade_eval import evaluate_span
from kinetic_rules.engine.model import PROTECTION
from kinetic_rules.lang.checked import Rule, TrailRule
from kinetic_rules.market_rules import round_stops


@dataclass(frozen=True)
class ExitRules:
    """The parts of a strategy that can close a trade on one side."""

    signals: dict[str, Rule]  # any one closes the trade
    trailing: dict[str, TrailRule]
    take_profits: list[tuple[str, Rule, float]]  # name, when, share of the original amount
    close_all: list[tuple[str, np.ndarray]]  # protection name, its `active` series
    tick: float = 0.0  # the market's price step: stops are rounded to it (0: no rounding)


class TradeValues(dict[str, object]):
    """The trade's names over one window. `max_profit` and `bars_held` are made only when a
    rule reads them: most strategies read neither, and a trade costs a few numpy calls."""

    def __init__(self, profit: np.ndarray, max_before: float, lo: int, hi: int) -> None:
        super().__init__(profit=profit)
        self._max_before = max_before
        self._held = (lo, hi)

    def __missing__(self, name: str) -> object:
        if name == "max_profit":
            profit = self["profit"]
            assert isinstance(profit, np.ndarray)
            value: np.ndarray = np.maximum(np.maximum.accumulate(profit), self._max_before)
        elif name == "bars_held":
            value = np.arange(*self._held, dtype=np.float64)
        else:
            raise KeyError(name)
        self[name] = value
        return value

    def prefix(self, length: int) -> TradeValues:
        """These values over the window's first `length` candles (views of the series made
        so far): the trade's names are candle by candle, so a prefix is all a shorter
        window needs."""
        if length == len(self._profit()):
            return self
        shorter = TradeValues(self._profit()[:length], self._max_before, 0, 0)
        shorter._held = (self._held[0], self._held[0] + length)
        for name, value in self.items():  # arrays over the window, or numbers
            shorter[name] = value[:length] if isinstance(value, np.ndarray) else value
        return shorter

    def last_max_profit(self) -> float:
        """`max_profit` at the window's last candle (the best profit so far, NaN-poisoned as
        the running maximum is), without the whole series when no rule asked for it."""
        known = self.get("max_profit")
        if isinstance(known, np.ndarray):
            return float(known[-1])
        return float(np.maximum(self._profit().max(), self._max_before))

    def _profit(self) -> np.ndarray:
        profit = self["profit"]
        assert isinstance(profit, np.ndarray)
        return profit


def first(mask: np.ndarray) -> int | None:
    """The index of the first true value, if any."""
    index = int(mask.argmax()) if len(mask) else 0
    return index if len(mask) and mask[index] else None


def _bools(values: np.ndarray) -> np.ndarray:
    """A verdict per candle as booleans (a view when it is one already: never written to)."""
    return values if values.dtype == np.bool_ else values.astype(bool)


def stop_path(
    plan: Plan,
    signals: PairSignals,
    lo: int,
    hi: int,
    env: TradeValues,
    rules: ExitRules,
    stop: float,
    active: dict[str, bool],
    sign: float,
    activated: dict[str, int],
) -> np.ndarray:
    """The stop in force before the window and after each of its closes (hi - lo + 1
    values): the best active trailing level, never loosening. A rule not active at any
    close of the window adds no level there, so its level is not evaluated. `active` and
    `activated` (the candle each rule first became active) are updated."""
    worst = -np.inf if sign > 0 else np.inf
    best: np.ndarray | None = None
    for name, rule in rules.trailing.items():
        on: np.ndarray | None = None  # None: active at every close of the window
        if not active[name]:
            activate = _bools(evaluate_span(plan, rule.activate.node, signals, lo, hi, env))
            start = first(activate)
            if start is None:
                continue
            activated.setdefault(name, lo + start)
            active[name] = True
            on = np.logical_or.accumulate(activate)
        level = np.asarray(
            evaluate_span(plan, rule.level.node, signals, lo, hi, env), dtype=np.float64
        )
        counts = ~np.isnan(level) if on is None else on & ~np.isnan(level)
        level = round_stops(np.where(counts, level, worst), rules.tick, sign)
        if best is None:  # the first rule's levels: the best so far (-inf or +inf elsewhere)
            best = level
        else:
            best = np.maximum(best, level) if sign > 0 else np.minimum(best, level)
    if best is None:  # no trailing rule active: the stop stays where it is
        return np.full(hi - lo + 1, stop)
    ratchet = np.maximum.accumulate if sign > 0 else np.minimum.accumulate
    result: np.ndarray = ratchet(np.concatenate(([stop], best)))
    return result


def decisions(
    plan: Plan,
    signals: PairSignals,
    lo: int,
    hi: int,
    env: TradeValues,
    rules: ExitRules,
    taken: int,
) -> list[tuple[int, float, str]]:
    """Close-of-candle decisions in candles lo..hi-1, in time order: (candle, share, reason).

    Take-profits fire in file order (a later one never before an earlier one); on one
    candle, take-profits come before a signal exit, which comes before a protection.
    """
    events: list[tuple[int, int, int, float, str]] = []  # candle, kind, file order, share
    earliest = 0
    for order, (name, rule, share) in enumerate(rules.take_profits):
        if order < taken:
            continue
        when = _bools(evaluate_span(plan, rule.node, signals, lo, hi, env))
        k = first(when[earliest:])
        if k is None:
            break
        earliest += k
        events.append((earliest, 0, order, share, name))
    first_exit: tuple[int, str] | None = None
    for name, rule in rules.signals.items():
        k = first(_bools(evaluate_span(plan, rule.node, signals, lo, hi, env)))
        if k is not None and (first_exit is None or k < first_exit[0]):
            first_exit = (k, name)
    if first_exit is not None:
        events.append((first_exit[0], 1, 0, 1.0, "exit:" + first_exit[1]))
    for name, series in rules.close_all:
        before = series[lo - 1] if lo > 0 else False
        window = series[lo:hi]
        rising = window & ~np.concatenate(([before], window[:-1]))
        k = first(rising)
        if k is not None:
            events.append((k, 2, 0, 1.0, f"{PROTECTION}:{name}"))
    events.sort()
    return [(k, share, reason) for k, _, _, share, reason in events]

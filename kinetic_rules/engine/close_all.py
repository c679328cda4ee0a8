"""Protections that close every trade on a portfolio value (`close_all` reading open profit,
exposure, today's profit): at which close one fires, and the trades it closes there.

The live runtime checks each close as it comes. The backtest checks the closes between
two decisions, and keeps what it computed for a window of closes ahead (`SweepWindow`):
a new position adds its own part to the window's sums instead of all being recomputed
for each new trade. The sums add the positions in the order `standing` adds them, so
every value is the one `standing` gives for that close, to the bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kinetic_rules.compile.evaluate import PairSignals
from kinetic_rules.compile.plan import Plan
from kinetic_rules.compile.trade_eval import evaluate_span
from kinetic_rules.engine.model import Side
from kinetic_rules.engine.portfolio_values import (
    Ledger,
    PortfolioRules,
    Settled,
    Values,
    candle_at,
    day_starts,
    nanoseconds,
    position_part,
    standing,
)
from kinetic_rules.lang.checked import Rule

if TYPE_CHECKING:
    from kinetic_rules.engine.portfolio import PairData, Position

Firing = tuple[int, list[tuple["Position", str]]]  # the close's offset; positions, protection


def first_close_all(
    plan: Plan, rules: PortfolioRules, ledger: Ledger, moments: pd.DatetimeIndex
) -> Firing | None:
    """The first of `moments` at which a close-all protection holds for an open trade, and
    every trade it closes there, with the protection's name (the first in file order)."""
    at = nanoseconds(moments)
    step = ledger.timeframe.value
    values = standing(ledger, moments).values

    def local(data: PairData) -> np.ndarray:
        return candle_at(data.signals.index, at - step)

    return _first_firing(plan, rules, ledger, at, values, local)


def _first_firing(
    plan: Plan,
    rules: PortfolioRules,
    ledger: Ledger,
    at: np.ndarray,
    values: Mapping[str, np.ndarray],
    local_of: Callable[[PairData], np.ndarray],
    candle_free: dict[tuple[str, str], bool] | None = None,
) -> Firing | None:
    """`first_close_all` on values already computed at the closes `at`; `local_of` gives a
    pair's candle closing at each of them (-1 where it has none).

    A rule that reads no candle series of the pair (`open_profit_ratio < -5%`) has the
    same verdict for every pair: it is evaluated once, on the closes themselves, and
    where it never holds no trade needs looking at. `candle_free` keeps which rules
    read none, by pair and rule name, from one call to the next."""
    step = ledger.timeframe.value
    open_ = [
        p for p in sorted(ledger.slots, key=lambda p: p.id) if p.trade is not None and p.cut is None
    ]
    known = {} if candle_free is None else candle_free
    pairs = {p.pair for p in open_}
    shared: dict[str, np.ndarray] = {}
    for name, rule in rules.close_all:
        free = [_reads_no_candles(rule, ledger.market[pair].signals, known) for pair in pairs]
        if open_ and all(free):
            signals = ledger.market[open_[0].pair].signals
            shared[name] = evaluate_span(plan, rule.node, signals, 0, len(at), values).astype(bool)
    if len(shared) == len(rules.close_all) and not any(v.any() for v in shared.values()):
        return None  # no rule holds at any of the closes
    firing: list[tuple[int, Position, str]] = []
    for position in open_:
        trade = position.trade
        assert trade is not None
        data = ledger.market[position.pair]
        local = local_of(data)
        subject = (local >= 0) & (at >= trade.entry_time.value + step)
        subject &= at < position.release.value
        if not subject.any():
            continue
        where = np.flatnonzero(local >= 0)
        lo, hi = int(local[where[0]]), int(local[where[-1]]) + 1
        env = _Spread(values, where, local[where] - lo, hi - lo)
        for name, rule in rules.close_all:
            holds = shared.get(name)
            if holds is None:
                holds = np.zeros(len(at), dtype=bool)
                verdict = evaluate_span(plan, rule.node, data.signals, lo, hi, env).astype(bool)
                holds[where] = verdict[local[where] - lo]
            hits = np.flatnonzero(holds & subject)
            if len(hits):
                firing.append((int(hits[0]), position, name))
    if not firing:
        return None
    first = min(k for k, _, _ in firing)
    cut: dict[int, tuple[Position, str]] = {}
    for k, position, name in firing:  # protections in file order: the first one names it
        if k == first and position.id not in cut:
            cut[position.id] = (position, name)
    return first, list(cut.values())


def _reads_no_candles(rule: Rule, signals: PairSignals, known: dict[tuple[str, str], bool]) -> bool:
    """Does the rule read none of the pair's stored series (only portfolio values and
    constants)? Its verdict at a close is then a function of the values alone."""
    key = (signals.pair, rule.label)
    found = known.get(key)
    if found is None:
        found = known[key] = not any(node in signals.values for node in rule.node.walk())
    return found


class _Spread(Mapping[str, np.ndarray]):
    """The values at each close, laid on one pair's candles lo..hi (undefined where no
    close falls), each spread only when a rule reads it."""

    def __init__(
        self, values: Mapping[str, np.ndarray], where: np.ndarray, into: np.ndarray, length: int
    ) -> None:
        self._values, self._where, self._into, self._length = values, where, into, length
        self._spread: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        spread = self._spread.get(name)
        if spread is None:
            spread = np.full(self._length, np.nan)
            spread[self._into] = self._values[name][self._where]
            self._spread[name] = spread
        return spread

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


# -- the backtest's window of closes ahead -----------------------------------------------------
@dataclass
class SweepWindow:
    """Sums over positions at each of `closes[start:stop]`, kept as positions are added.

    Only closes from the last one checked on are read, and they only move forward. A
    position that left the books since it was added adds nothing there (its slot was
    free and its profit settled before that close). A position whose part changed since
    it was added (a close-all played it again) makes the window stale: build it anew."""

    start: int
    step: int  # the timeframe, in nanoseconds
    at: np.ndarray  # the closes, int64 nanoseconds
    day: np.ndarray  # each close's UTC midnight
    open_profit: np.ndarray
    open_trades: np.ndarray
    staked: np.ndarray
    counted: dict[int, tuple[Position, tuple[object, ...]]] = field(default_factory=dict)
    last_id: int = 0  # positions are added in the order of their ids, as `standing` sums
    _local: dict[str, np.ndarray] = field(default_factory=dict)
    _candle_free: dict[tuple[str, str], bool] = field(default_factory=dict)

    @classmethod
    def over(cls, closes: pd.DatetimeIndex, start: int, stop: int, step: int) -> SweepWindow:
        moments = closes[start:stop]
        at = nanoseconds(moments)
        zeros = np.zeros(len(at))
        return cls(start, step, at, day_starts(moments, at), zeros, zeros.copy(), zeros.copy())

    @property
    def stop(self) -> int:
        return self.start + len(self.at)

    def stale(self, ledger: Ledger) -> bool:
        """Has a position's part changed since it was added? (Forgets those that left.)"""
        present = {p.id for p in (*ledger.slots, *ledger.unsettled)}
        for id, (position, state) in list(self.counted.items()):
            if _state(position) != state:
                return True
            if id not in present:
                del self.counted[id]
        return False

    def check(self, plan: Plan, rules: PortfolioRules, ledger: Ledger, start: int) -> Firing | None:
        """`first_close_all` at closes[start:stop] (offsets from `start`), on a window
        that is not stale."""
        at, values = self.values(ledger, start)
        offset = start - self.start
        return _first_firing(
            plan, rules, ledger, at, values, lambda d: self._local_of(d, offset), self._candle_free
        )

    def values(self, ledger: Ledger, start: int) -> tuple[np.ndarray, Values]:
        """The closes from closes[start] on, and `standing`'s values there: positions not
        counted yet add their parts (in id order, after those counted)."""
        offset = start - self.start
        at = self.at[offset:]
        everyone = sorted([*ledger.slots, *ledger.unsettled], key=lambda p: p.id)
        slots = {p.id for p in ledger.slots}
        for position in everyone:
            if position.id in self.counted:
                continue
            assert position.id > self.last_id, "positions are added in id order"
            part = position_part(position, position.id in slots, ledger, at)
            if part.profit is not None:
                self.open_profit[offset:] += part.profit
            if part.holds is not None:
                self.open_trades[offset:] += part.holds
                self.staked[offset:] += part.stake
            self.counted[position.id] = (position, _state(position))
            self.last_id = position.id
        settled = Settled(ledger, everyone, at, self.day[offset:])
        sums = self.open_profit[offset:], self.open_trades[offset:], self.staked[offset:]
        return at, Values(settled, *sums)

    def _local_of(self, data: PairData, offset: int) -> np.ndarray:
        local = self._local.get(data.pair)
        if local is None:
            local = self._local[data.pair] = candle_at(data.signals.index, self.at - self.step)
        return local[offset:]


def _state(position: Position) -> tuple[object, ...]:
    """What a position's part in the sums depends on (its stake and trade are set once)."""
    return (position.release, position.settle, position.trade, position.state, position.cut)


def with_cut(data: PairData, side: Side, name: str, candle: pd.Timestamp) -> PairData:
    """The pair's data with a close-all decided at the close of `candle`, as a protection of
    this pair coming into force there: the trade path closes what is left at the next open."""
    index = data.signals.index
    series = np.zeros(len(index), dtype=bool)
    at = int(index.searchsorted(candle))
    if at < len(index) and index[at] == candle:
        series[at] = True
    rules = data.exit_rules[side]
    cut = replace(rules, close_all=[*rules.close_all, (name, series)])
    return replace(data, exit_rules={**data.exit_rules, side: cut})

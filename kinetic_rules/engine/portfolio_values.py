"""Portfolio-wide values (`open_profit`, `exposure`, `today_profit`, …) and the rules reading them.

Such values exist only inside the portfolio loop, so the portfolio evaluates these rules
itself: entry conditions and protections at the closes where it decides, and
protections with `close_all` at every close while trades are open. Every value at a
close is computed from what a live bot knows then — fills of candles closed so far,
profits already settled, the decision candle's close for marking — from the same
bookkeeping the portfolio keeps (see engine/portfolio.py). The backtest knows each
trade's whole future and masks it by time; the live runtime knows only the past; one
vectorized function serves both, for many closes or one, so both get the same numbers.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kinetic_rules.compile.interpret import binary
from kinetic_rules.compile.plan import Plan
from kinetic_rules.compile.trade_eval import evaluate_span
from kinetic_rules.engine.correlation import Closes, return_correlations
from kinetic_rules.engine.model import END_OF_DATA, Side, Trade
from kinetic_rules.lang.checked import Rule
from kinetic_rules.spec.models import Protection

if TYPE_CHECKING:
    from kinetic_rules.engine.portfolio import PairData, Position


@dataclass(frozen=True)
class PortfolioRules:
    """The rules that read the portfolio: the portfolio applies them itself."""

    entry: dict[Side, list[Rule]] = field(default_factory=dict)
    protections: list[tuple[str, Rule, Protection]] = field(default_factory=list)

    @property
    def close_all(self) -> list[tuple[str, Rule]]:
        return [(name, rule) for name, rule, spec in self.protections if spec.close_all]

    def __bool__(self) -> bool:
        return bool(self.protections) or any(self.entry.values())


def portfolio_rules(plan: Plan) -> PortfolioRules:
    checked = plan.strategy
    entry: dict[Side, list[Rule]] = {}
    for side, rules in checked.entry.items():
        found = [r for r in rules.values() if not plan.is_trade_free(r.node)]
        if found:
            entry[side] = found  # type: ignore[index]
    protections = [
        (name, rule, checked.spec.protections[name])
        for name, rule in checked.protections.items()
        if not plan.is_trade_free(rule.node)
    ]
    return PortfolioRules(entry, protections)


def describe(rules: PortfolioRules) -> tuple[str, ...]:
    """The sentences a report adds to its assumptions when rules read the portfolio."""
    said = []
    if rules:
        said.append(
            "Rules that read portfolio values (open profit, exposure, today's profit) see "
            "the fills and profits known at the close that decides, with open trades marked "
            "to that close."
        )
    if rules.close_all:
        said.append(
            "Protections with close_all that read them are checked at every close while "
            "trades are open; each trade of a pair where one holds is closed at the next open."
        )
    return tuple(said)


@dataclass(frozen=True)
class Ledger:
    """The portfolio's books at one point of its loop: what every value is computed from."""

    starting: float
    realized: float  # profits settled so far
    slots: Sequence[Position]  # positions holding a slot
    unsettled: Sequence[Position]  # slot free, profit not known yet
    closed: Sequence[tuple[pd.Timestamp, pd.Timestamp, float]]  # settled, exited, profit
    market: Mapping[str, PairData]  # every pair as known now
    timeframe: pd.Timedelta


@dataclass
class Standing:
    """Portfolio-wide values at each of several closes (arrays over those closes)."""

    values: dict[str, np.ndarray]
    held: list[tuple[Position, np.ndarray]]  # each slot's stake still in it (0 once free)


def standing(ledger: Ledger, moments: pd.DatetimeIndex) -> Standing:
    """The values at each close in `moments`, all later than the ledger's last settlement."""
    at = nanoseconds(moments)
    step = ledger.timeframe.value
    everyone = sorted([*ledger.slots, *ledger.unsettled], key=lambda p: p.id)
    realized, today, lowest = _settled(ledger, everyone, moments)
    open_profit = np.zeros(len(at))
    open_trades = np.zeros(len(at))
    staked = np.zeros(len(at))
    held: list[tuple[Position, np.ndarray]] = []
    slots = {p.id for p in ledger.slots}
    for position in everyone:
        trade = position.trade
        share: np.ndarray | float = 1.0
        if trade is not None:
            value, share = _marked(trade, ledger.market[trade.pair], at, step)
            in_market = (at >= trade.entry_time.value + step) & (at < position.settle.value)
            open_profit = open_profit + np.where(in_market, value, 0.0)
        if position.id in slots:
            holds = at < position.release.value
            open_trades = open_trades + holds
            stake = np.where(holds, position.stake * share, 0.0)
            staked = staked + stake
            held.append((position, stake))
    equity = ledger.starting + realized
    solvent = np.where(equity > 0, equity, np.nan)  # a ratio of a blown account is undefined
    day_start = np.where(equity - today > 0, equity - today, np.nan)
    values = {
        "equity": equity,
        "open_trades": open_trades,
        "open_profit": open_profit,
        "open_profit_ratio": binary("/", open_profit, solvent),
        "exposure": binary("/", staked, solvent),
        "today_profit": today,
        "today_profit_ratio": binary("/", today, day_start),
        "today_lowest_profit_ratio": binary("/", lowest, day_start),
    }
    return Standing(values, held)


def _settled(
    ledger: Ledger, everyone: list[Position], moments: pd.DatetimeIndex
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Realized profit, today's, and today's lowest point at a close, at each moment.

    Profits are added in the order `advance` adds them (settlement, then position), so a
    backtest and a live run get the same numbers to the last bit; today's lowest point is
    taken after each moment's settlements, as it stood at that close."""
    at = nanoseconds(moments)
    day = day_starts(moments, at)
    realized = np.full(len(at), ledger.realized)
    today = np.zeros(len(at))
    lowest = np.zeros(len(at))
    previous = None
    for settle, exit_time, profit in ledger.closed:  # settled already, in that order
        if previous is not None and settle != previous:
            lowest = np.minimum(lowest, today)
        today = today + np.where(exit_time.value >= day, profit, 0.0)
        previous = settle
    settling = [p for p in everyone if p.trade is not None and p.settle.value <= at[-1]]
    for position in sorted(settling, key=lambda p: (p.settle, p.id)):
        trade = position.trade
        assert trade is not None and trade.exit_time is not None
        if previous is not None and position.settle != previous:
            lowest = np.minimum(lowest, today)
        settled = at >= position.settle.value
        realized = realized + np.where(settled, trade.profit, 0.0)
        this_day = settled & (trade.exit_time.value >= day)
        today = today + np.where(this_day, trade.profit, 0.0)
        previous = position.settle
    return realized, today, np.minimum(lowest, today)


def _marked(
    trade: Trade, data: PairData, at: np.ndarray, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """The trade's profit if closed at each close (fills known by then, the rest marked to
    the pair's close), and the share of its amount still held."""
    sign = 1.0 if trade.side == "long" else -1.0
    value = np.full(len(at), -trade.fills[0].fee)
    remaining = np.full(len(at), trade.amount)
    for fill in trade.fills[1:]:
        if fill.reason == END_OF_DATA:  # the backtest's closing of what the data left open
            continue
        known = at >= fill.time.value + step
        gain = sign * (fill.price - trade.entry_price) * fill.amount - fill.fee
        value = value + np.where(known, gain, 0.0)
        remaining = remaining - np.where(known, fill.amount, 0.0)
    closes = closes_at(data, at, step)
    value = value + sign * (closes - trade.entry_price) * remaining
    return value, remaining / trade.amount


def nanoseconds(index: pd.DatetimeIndex) -> np.ndarray:
    """Times as int64 nanoseconds, whatever unit the index keeps them in."""
    return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)


_DAY = 86_400 * 10**9


def day_starts(moments: pd.DatetimeIndex, at: np.ndarray) -> np.ndarray:
    """Each moment's UTC midnight, in nanoseconds (integer arithmetic: candle times are UTC)."""
    if str(moments.tz) == "UTC":
        midnight: np.ndarray = at - np.mod(at, _DAY)
        return midnight
    return nanoseconds(moments.floor("D"))


_OPEN_TIMES: dict[int, tuple[weakref.ref[pd.DatetimeIndex], np.ndarray]] = {}


def open_times(index: pd.DatetimeIndex) -> np.ndarray:
    """`nanoseconds(index)`, kept while the index lives: the portfolio asks for a pair's
    candle times at every close it checks, and converting them costs O(candles)."""
    key = id(index)
    known = _OPEN_TIMES.get(key)
    if known is not None and known[0]() is index:
        return known[1]
    times = nanoseconds(index)
    _OPEN_TIMES[key] = (weakref.ref(index, lambda _: _OPEN_TIMES.pop(key, None)), times)
    return times


def candle_at(index: pd.DatetimeIndex, opens: np.ndarray) -> np.ndarray:
    """Position in `index` of the candle opening at each time of `opens`, or -1 (as
    `index.get_indexer` finds it for a sorted index of unique times)."""
    times = open_times(index)
    where = np.searchsorted(times, opens)
    inside = where < len(times)
    found = np.zeros(len(opens), dtype=bool)
    found[inside] = times[where[inside]] == opens[inside]
    return np.where(found, where, -1)


def closes_at(data: PairData, at: np.ndarray, step: int) -> np.ndarray:
    """The pair's last close known at each moment (NaN before its first candle)."""
    known = np.searchsorted(open_times(data.signals.index), at - step, side="right") - 1
    closes = data.prices["close"]
    return np.where(known >= 0, closes[np.maximum(known, 0)], np.nan)


# -- deciding an entry ------------------------------------------------------------------------
def decision_env(
    ledger: Ledger, data: PairData, moment: pd.Timestamp
) -> dict[str, float | Callable[..., float]]:
    """Every portfolio value at this decision, for entering `data.pair`."""
    now = standing(ledger, pd.DatetimeIndex([moment]))
    env: dict[str, float | Callable[..., float]] = {
        name: float(values[0]) for name, values in now.values.items()
    }
    equity = float(now.values["equity"][0])

    def correlated_exposure(threshold: float, lookback: float) -> float:
        others = [
            (position, float(stake[0]))
            for position, stake in now.held
            if position.pair != data.pair and stake[0] != 0.0
        ]
        correlations = return_correlations(
            _closes(data),
            [_closes(ledger.market[position.pair]) for position, _ in others],
            moment.value,
            ledger.timeframe.value,
            int(lookback),
        )
        total = 0.0
        for (_, stake), correlation in zip(others, correlations, strict=True):
            if correlation > threshold:
                total += stake
        return total / equity if equity > 0 else float("nan")

    env["correlated_exposure"] = correlated_exposure
    return env


def _closes(data: PairData) -> Closes:
    return open_times(data.signals.index), data.prices["close"]


# -- closing everything --------------------------------------------------------------------
def first_close_all(
    plan: Plan, rules: PortfolioRules, ledger: Ledger, moments: pd.DatetimeIndex
) -> tuple[int, list[tuple[Position, str]]] | None:
    """The first of `moments` at which a close-all protection holds for an open trade, and
    every trade it closes there, with the protection's name (the first in file order)."""
    at = nanoseconds(moments)
    step = ledger.timeframe.value
    now = standing(ledger, moments)
    firing: list[tuple[int, Position, str]] = []
    for position in sorted(ledger.slots, key=lambda p: p.id):
        trade = position.trade
        if trade is None or position.cut is not None:
            continue
        data = ledger.market[position.pair]
        local = candle_at(data.signals.index, at - step)
        subject = (local >= 0) & (at >= trade.entry_time.value + step)
        subject &= at < position.release.value
        if not subject.any():
            continue
        where = np.flatnonzero(local >= 0)
        lo, hi = int(local[where[0]]), int(local[where[-1]]) + 1
        env = {}
        for name, values in now.values.items():
            spread = np.full(hi - lo, np.nan)
            spread[local[where] - lo] = values[where]
            env[name] = spread
        for name, rule in rules.close_all:
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

"""What the portfolio reads and keeps, apart from its books: a pair's candles and signals
(`PairData`), a slot taken at a decision (`Position`), the entry candidates in the order
they are decided, and what an entry's signal candle sets (its tags, initial stop and
leverage). Plain data and functions of the plan, shared by the backtest, `explain` and
the live runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from kinetic_rules.compile.evaluate import PairSignals
from kinetic_rules.compile.plan import Plan
from kinetic_rules.compile.trade_eval import evaluate_at
from kinetic_rules.engine.fills import FillModel
from kinetic_rules.engine.model import Side, Trade
from kinetic_rules.engine.moments import position_at
from kinetic_rules.engine.path_rules import ExitRules
from kinetic_rules.engine.paths import TradePath, trade_path
from kinetic_rules.market_rules import MarketRules

NEVER = pd.Timestamp.max.tz_localize("UTC")


@dataclass
class PairData:
    """One pair's candles and signals, and where its candles sit on the shared timeline."""

    pair: str
    signals: PairSignals
    prices: dict[str, np.ndarray]  # open, high, low, close on the pair's own index
    timeline_index: np.ndarray  # position of each of its candles on the shared timeline
    tradable_from: int  # first local candle whose close may decide an entry (warm-up done)
    allowed: np.ndarray  # bool per local candle: on the scanner's shortlist
    entries: dict[Side, np.ndarray] = field(default_factory=dict)  # all conditions hold
    exit_rules: dict[Side, ExitRules] = field(default_factory=dict)
    blocked: np.ndarray | None = None  # a protection blocks entries
    limit: np.ndarray | None = None  # most open trades allowed, per candle
    rules: MarketRules | None = None  # the exchange's tick, amount step and minimums


@dataclass
class Position:
    """A slot taken at a decision: first an entry order, then (if it fills) a trade."""

    id: int
    pair: str
    side: Side
    signal_time: pd.Timestamp  # open time of the candle whose close decided the entry
    stake: float
    trade: Trade | None = None
    release: pd.Timestamp = NEVER  # when the slot is known to be free
    settle: pd.Timestamp = NEVER  # when its profit is known
    state: Literal["pending", "open", "done"] = "pending"
    cut: tuple[str, pd.Timestamp] | None = None  # a portfolio close-all: name, candle decided


def initial_stop(plan: Plan, data: PairData, signal: int, entry_price: float, sign: float) -> float:
    """The initial stop of an entry decided at candle `signal` and filled at `entry_price`."""
    checked = plan.strategy
    stop = -np.inf * sign
    if checked.stop_initial is not None:
        env = {"entry_price": entry_price, "side": sign}
        value = evaluate_at(plan, checked.stop_initial.node, data.signals, signal, env)
        stop = float(value) if not np.isnan(value) else stop
    distance = checked.spec.stoploss.max_distance if checked.spec.stoploss else None
    if distance is not None:
        floor = entry_price * (1 - sign * distance)
        stop = max(stop, floor) if sign > 0 else min(stop, floor)
    return stop


def leverage(plan: Plan, data: PairData, signal: int) -> float:
    """The leverage of an entry decided at candle `signal` (1 without a leverage rule)."""
    rule = plan.strategy.leverage
    if rule is None:
        return 1.0
    value = float(data.signals.values[rule.node][signal])
    return value if np.isfinite(value) and value >= 1 else 1.0


def cooling_down(
    plan: Plan,
    last_exit: dict[str, pd.Timestamp],
    tag_exit: dict[tuple[str, str], pd.Timestamp],
    data: PairData,
    local: int,
    decided_at: pd.Timestamp,
) -> bool:
    """Did a trade on this pair — or one sharing a tag with this entry — close too lately?
    An entry without tags shares the empty tag with other untagged trades."""
    cooldown = plan.strategy.spec.entry.cooldown
    if cooldown is None:
        return False
    recent: list[tuple[pd.Timestamp | None, int | None]] = [
        (last_exit.get(data.pair), cooldown.pair)
    ]
    for tag in entry_tags(plan, data.signals, local) or ("",):
        recent.append((tag_exit.get((data.pair, tag)), cooldown.tag))
    return any(
        last is not None and wait is not None and decided_at < last + pd.Timedelta(seconds=wait)
        for last, wait in recent
    )


def path_of(plan: Plan, fills: FillModel, data: PairData, trade: Trade, final: bool) -> TradePath:
    """The trade's path over the candles `data` holds: what the portfolio follows, and
    what `explain` shows of a trade at a past candle (with the data cut there)."""
    entry = position_at(data.signals.index, trade.entry_time)
    return trade_path(
        plan, data.signals, data.prices, entry, trade.side, trade.entry_price,
        trade.initial_stop, data.exit_rules[trade.side], fills, final=final,
        liquidation=trade.liquidation_price,
    )  # fmt: skip


def entry_tags(plan: Plan, signals: PairSignals, local: int) -> tuple[str, ...]:
    """The strategy's entry tags that hold at candle `local`, in file order."""
    return tuple(
        name for name, rule in plan.strategy.tags.items() if bool(signals.values[rule.node][local])
    )


Candidate = tuple[int, float, int, PairData, Side, int]


def candidates(plan: Plan, pairs: list[PairData]) -> list[list[Candidate]]:
    """Entry signals of every pair, grouped by timeline candle, in priority order."""
    rows: list[Candidate] = []
    rule = plan.strategy.priority
    for order, data in enumerate(pairs):
        for side in data.entries:
            found = entry_signals(data, side)
            if rule is None:  # as `candidate` ranks them, for a whole pair at once
                ranks = [-0.0] * len(found)
            else:
                values = np.asarray(data.signals.values[rule.node][found], dtype=np.float64)
                ranks = np.where(np.isfinite(values), -values, np.inf).tolist()
            at = data.timeline_index[found].tolist()
            rows.extend(
                (moment, rank, order, data, side, local)
                for moment, rank, local in zip(at, ranks, found.tolist(), strict=True)
            )
    rows.sort(key=lambda r: (r[0], r[1], r[2], r[4]))
    groups: list[list[Candidate]] = []
    for row in rows:
        if groups and groups[-1][0][0] == row[0]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def entry_signals(data: PairData, side: Side) -> np.ndarray:
    """The pair's candles whose close may decide an entry on `side`: its conditions hold,
    it is on the scanner's shortlist and warmed up (the portfolio may still refuse)."""
    usable = data.entries[side] & data.allowed
    usable[: data.tradable_from] = False
    return np.flatnonzero(usable)


def candidate(plan: Plan, data: PairData, order: int, side: Side, local: int) -> Candidate:
    """Sort key and payload: candle, then higher priority, then pair order, then side."""
    rule = plan.strategy.priority
    value = float(data.signals.values[rule.node][local]) if rule else 0.0
    rank = -value if np.isfinite(value) else np.inf
    return (int(data.timeline_index[local]), rank, order, data, side, local)

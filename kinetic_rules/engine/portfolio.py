"""The portfolio simulation: slots, limits, sizing and trades over all pairs.

Only candles where a pair signals an entry are visited; each trade opened there is
played to its end at once (see paths.py) and its slot returns when its exit is known.
Kelly sizing and equity read only trades closed before the decision, so nothing a
decision uses lies in its future.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kinetic_rules.compile.evaluate import PairSignals
from kinetic_rules.compile.plan import Plan
from kinetic_rules.compile.trade_eval import evaluate_span
from kinetic_rules.engine.fills import FillModel
from kinetic_rules.engine.model import END_OF_DATA, STOP_LOSS, TRAILING_STOP, Fill, Side, Trade
from kinetic_rules.engine.paths import ExitRules, PlannedFill, trade_path
from kinetic_rules.engine.sizing import kelly_stake

_NEVER = pd.Timestamp.max.tz_localize("UTC")


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


@dataclass(order=True)
class _Open:
    release: pd.Timestamp  # the close at which its slot is known to be free
    id: int
    trade: Trade = field(compare=False)
    settle: pd.Timestamp = field(compare=False, default=pd.Timestamp(0, tz="UTC"))
    # `settle`: the close by which its last fill — and so its profit — is known. A market
    # exit decided at one close frees the slot there, but fills at the next open: sizing
    # at that first close must not know the exit price yet.


@dataclass
class Portfolio:
    plan: Plan
    fills: FillModel
    starting_balance: float
    timeframe: pd.Timedelta
    regimes: list[str]
    trades: list[Trade] = field(default_factory=list)
    realized: float = 0.0
    _open: list[_Open] = field(default_factory=list)
    _unsettled: list[tuple[pd.Timestamp, int, _Open]] = field(default_factory=list)
    _by_pair: dict[str, _Open] = field(default_factory=dict)
    _closed_profits: dict[str, list[float]] = field(default_factory=dict)
    _last_exit: dict[str, pd.Timestamp] = field(default_factory=dict)
    no_funds: int = 0

    def run(self, pairs: list[PairData], timeline: pd.DatetimeIndex) -> list[Trade]:
        for group in _candidates(self.plan, pairs):
            decided_at = timeline[group[0][0]] + self.timeframe
            self._release(decided_at)
            self._settle(decided_at)
            for _, _, _, data, side, local in group:
                self._consider(data, side, local, decided_at)
        self._release(_NEVER)
        self._settle(_NEVER)
        return sorted(self.trades, key=lambda t: (t.entry_time, t.pair))

    # --------------------------------------------------------------------------------
    def _release(self, until: pd.Timestamp) -> None:
        while self._open and self._open[0].release <= until:
            done = heapq.heappop(self._open)
            self._by_pair.pop(done.trade.pair, None)
            if done.trade.exit_time is not None:  # the exit is decided: cooldown starts
                self._last_exit[done.trade.pair] = done.trade.exit_time
            heapq.heappush(self._unsettled, (done.settle, done.id, done))

    def _settle(self, until: pd.Timestamp) -> None:
        while self._unsettled and self._unsettled[0][0] <= until:
            trade = heapq.heappop(self._unsettled)[2].trade
            if trade.exit_time is not None and trade.exit_reason != END_OF_DATA:
                self._closed_profits.setdefault(trade.pair, []).append(trade.profit)
            self.realized += trade.profit

    def _consider(self, data: PairData, side: Side, local: int, decided_at: pd.Timestamp) -> None:
        spec = self.plan.strategy.spec
        if data.pair in self._by_pair:
            return
        cooldown = spec.entry.cooldown
        last_exit = self._last_exit.get(data.pair)
        if (
            cooldown
            and last_exit is not None
            and decided_at < last_exit + pd.Timedelta(seconds=cooldown)
        ):
            return
        if data.blocked is not None and data.blocked[local]:
            return
        limit = int(data.limit[local]) if data.limit is not None else spec.portfolio.max_open_trades
        if len(self._open) >= limit:
            return
        self._open_trade(data, side, local)

    def _open_trade(self, data: PairData, side: Side, signal: int) -> None:
        prices = data.prices
        entry = _entry_fill(self.fills, prices, signal, side)
        if entry is None:
            return
        entry_index, entry_price = entry
        checked = self.plan.strategy
        sign = 1.0 if side == "long" else -1.0
        env = {"entry_price": entry_price, "side": sign}
        stop = -np.inf * sign
        if checked.stop_initial is not None:
            node = checked.stop_initial.node
            value = evaluate_span(self.plan, node, data.signals, signal, signal + 1, env)
            stop = float(value[0]) if not np.isnan(value[0]) else stop
        distance = checked.spec.stoploss.max_distance if checked.spec.stoploss else None
        if distance is not None:
            floor = entry_price * (1 - sign * distance)
            stop = max(stop, floor) if sign > 0 else min(stop, floor)
        stake = self._stake(data, signal, entry_price, stop, sign)
        if stake <= 0:
            self.no_funds += 1
            return
        leverage = self._leverage(data, signal)
        amount = stake * leverage / entry_price
        path = trade_path(
            self.plan, data.signals, prices, entry_index, side, entry_price, stop,
            data.exit_rules[side], self.fills,
        )  # fmt: skip
        index = data.signals.index
        regime = data.signals.regime
        trade = Trade(
            id=len(self.trades) + 1,
            pair=data.pair,
            side=side,
            regime=self.regimes[int(regime[signal])] if regime is not None else None,
            signal_time=index[signal],
            entry_time=index[entry_index],
            entry_price=entry_price,
            amount=amount,
            stake=stake,
            leverage=leverage,
            initial_stop=stop,
            stop=path.final_stop,
        )
        trade.fills.append(
            Fill(
                index[entry_index],
                entry_price,
                amount,
                self.fills.fee_on(entry_price, amount),
                "entry",
            )
        )
        for planned in path.fills:
            trade.fills.append(self._fill(planned, index, amount, side))
        last = path.fills[-1]
        closing = [f for f in trade.fills if f.reason != "entry"]
        sold = sum(f.amount for f in closing)
        trade.exit_price = sum(f.price * f.amount for f in closing) / sold if sold else None
        trade.exit_reason = last.reason
        trade.exit_time = index[last.index]
        # A market exit at an open frees its slot at that open (the close that decided it);
        # a stop or a limit fill frees it at the close of the candle it filled in.
        at_open = last.market and last.reason not in (STOP_LOSS, TRAILING_STOP)
        release = index[last.index] + (pd.Timedelta(0) if at_open else self.timeframe)
        settle = index[last.index] + self.timeframe
        if path.open_at_end:
            release = settle = _NEVER
        self.trades.append(trade)
        item = _Open(release, trade.id, trade, settle)
        heapq.heappush(self._open, item)
        self._by_pair[data.pair] = item

    def _fill(
        self, planned: PlannedFill, index: pd.DatetimeIndex, amount: float, side: Side
    ) -> Fill:
        price = planned.price
        if planned.market:
            price = self.fills.adverse(price, side, buying=False)
        size = amount * planned.share
        return Fill(
            index[planned.index], price, size, self.fills.fee_on(price, size), planned.reason
        )

    def _stake(
        self, data: PairData, signal: int, entry_price: float, stop: float, sign: float
    ) -> float:
        sizing = self.plan.strategy.spec.sizing
        equity = self.starting_balance + self.realized
        if sizing.kelly is not None:
            fraction = kelly_stake(sizing.kelly, self._closed_profits.get(data.pair, []))
        else:
            rule = self.plan.strategy.stake
            assert rule is not None
            env = {"entry_price": entry_price, "side": sign, "stop": stop, "equity": equity}
            value = evaluate_span(self.plan, rule.node, data.signals, signal, signal + 1, env)
            fraction = float(value[0]) if np.isfinite(value[0]) else 0.0
        if sizing.max_stake is not None:
            fraction = min(fraction, sizing.max_stake)
        pending = [o for o in self._open] + [u[2] for u in self._unsettled]
        committed = sum(o.trade.stake / o.trade.leverage for o in pending)
        free = equity - committed
        return max(0.0, min(fraction * equity, free))

    def _leverage(self, data: PairData, signal: int) -> float:
        rule = self.plan.strategy.leverage
        if rule is None:
            return 1.0
        value = float(data.signals.values[rule.node][signal])
        return value if np.isfinite(value) and value >= 1 else 1.0


def _entry_fill(
    fills: FillModel, prices: dict[str, np.ndarray], signal: int, side: Side
) -> tuple[int, float] | None:
    """Where and at what price an entry decided at the close of `signal` fills, if at all."""
    opens, highs, lows, closes = (prices[k] for k in ("open", "high", "low", "close"))
    first = signal + 1
    if first >= len(opens):
        return None
    if not fills.entry_limit:
        return first, fills.adverse(float(opens[first]), side, buying=True)
    limit = float(closes[signal])
    for candle in range(first, min(len(opens), first + fills.entry_timeout)):
        through = lows[candle] < limit if side == "long" else highs[candle] > limit
        if through:
            better = opens[candle] < limit if side == "long" else opens[candle] > limit
            return candle, float(opens[candle]) if better else limit
    return None


def _candidates(
    plan: Plan, pairs: list[PairData]
) -> list[list[tuple[int, float, int, PairData, Side, int]]]:
    """Entry signals of every pair, grouped by timeline candle, in priority order."""
    rows: list[tuple[int, float, int, PairData, Side, int]] = []
    priority_rule = plan.strategy.priority
    for order, data in enumerate(pairs):
        priority = data.signals.values[priority_rule.node] if priority_rule else None
        for side, signal in data.entries.items():
            usable = signal & data.allowed
            usable[: data.tradable_from] = False
            for local in np.flatnonzero(usable):
                value = float(priority[local]) if priority is not None else 0.0
                rank = -value if np.isfinite(value) else np.inf
                rows.append((int(data.timeline_index[local]), rank, order, data, side, int(local)))
    rows.sort(key=lambda r: (r[0], r[1], r[2], r[4]))
    groups: list[list[tuple[int, float, int, PairData, Side, int]]] = []
    for row in rows:
        if groups and groups[-1][0][0] == row[0]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups

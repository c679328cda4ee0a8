"""One trade, from its entry candle to its last fill, computed for many candles at once.

Within a candle the order of events is fixed: orders decided at the previous close fill
at the open (signal exits, take-profits, protections), then the stop is checked against
the candle's range, then — at the close — trailing stops move and new decisions are made.
A futures trade also has a liquidation price: reached before the stop (or gapped through
at the open, before anything fills there), it ends the trade at that price.
Each of those is a vector over a window of candles; the first event wins. The window
grows until the trade ends, so a trade costs a few numpy calls, not a Python loop per
candle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kinetic_rules.compile.evaluate import PairSignals
from kinetic_rules.compile.interpret import quiet_numbers
from kinetic_rules.compile.plan import Plan
from kinetic_rules.compile.trade_eval import evaluate_span
from kinetic_rules.engine.fills import FillModel
from kinetic_rules.engine.model import (
    END_OF_DATA,
    LIQUIDATION,
    PROTECTION,
    STOP_LOSS,
    TRAILING_STOP,
    Side,
)
from kinetic_rules.lang.checked import Rule, TrailRule
from kinetic_rules.margin import beyond_liquidation
from kinetic_rules.market_rules import round_stops

FIRST_WINDOW = 256


@dataclass(frozen=True)
class ExitRules:
    """The parts of a strategy that can close a trade on one side."""

    signals: dict[str, Rule]  # any one closes the trade
    trailing: dict[str, TrailRule]
    take_profits: list[tuple[str, Rule, float]]  # name, when, share of the original amount
    close_all: list[tuple[str, np.ndarray]]  # protection name, its `active` series
    tick: float = 0.0  # the market's price step: stops are rounded to it (0: no rounding)


@dataclass
class PlannedFill:
    index: int  # candle index of the fill
    price: float
    share: float  # share of the original amount
    reason: str
    market: bool  # market fills pay slippage


@dataclass
class TradePath:
    fills: list[PlannedFill] = field(default_factory=list)
    final_stop: float = float("nan")
    open_at_end: bool = False
    # A market exit decided at the last close of the data: it fills at the next open,
    # which the data does not hold yet, but its slot is free from that close on.
    closing_decided_at: int | None = None
    # Every decision taken at the last close of the data (take-profits, a signal exit, a
    # protection), to be acted on at the next open: what a live bot orders now. The next
    # candle is not in the data, so `index` is -1 and `price` is nan.
    decided: list[PlannedFill] = field(default_factory=list)
    # The candle at whose close each trailing rule first became active, as far as the path
    # reached (what `explain` shows).
    activated: dict[str, int] = field(default_factory=dict)


@dataclass
class _State:
    stop: float
    max_profit: float = -np.inf
    active: dict[str, bool] = field(default_factory=dict)
    taken: int = 0  # take-profits already done
    remaining: float = 1.0


def trade_path(
    plan: Plan,
    signals: PairSignals,
    prices: dict[str, np.ndarray],
    entry_index: int,
    side: Side,
    entry_price: float,
    initial_stop: float,
    rules: ExitRules,
    fills: FillModel,
    final: bool = True,
    liquidation: float | None = None,
) -> TradePath:
    """The trade's fills as far as `prices` reach. With `final`, the data is complete and a
    trade still open at its end is closed at the last close; otherwise it stays open.
    `liquidation` is a futures trade's liquidation price (None: it cannot be liquidated)."""
    with quiet_numbers():  # once for the whole path, not per operator
        return _trade_path(
            plan, signals, prices, entry_index, side, entry_price, initial_stop, rules, fills,
            final, liquidation,
        )  # fmt: skip


def _trade_path(
    plan: Plan,
    signals: PairSignals,
    prices: dict[str, np.ndarray],
    entry_index: int,
    side: Side,
    entry_price: float,
    initial_stop: float,
    rules: ExitRules,
    fills: FillModel,
    final: bool,
    liquidation: float | None,
) -> TradePath:
    sign = 1.0 if side == "long" else -1.0
    n = len(prices["close"])
    state = _State(stop=initial_stop, active={name: False for name in rules.trailing})
    path = TradePath()
    lo, width = entry_index, FIRST_WINDOW
    while lo < n:
        hi = min(n, lo + width)
        outcome = _window(
            plan,
            signals,
            prices,
            lo,
            hi,
            entry_index,
            sign,
            entry_price,
            initial_stop,
            rules,
            fills,
            state,
            path,
            liquidation,
        )
        if outcome == "retry":  # a pending limit exit runs past the window: look further
            width *= 2
            continue
        if outcome == "closed":
            return path
        lo, width = hi, width * 2
    path.open_at_end = True
    path.final_stop = state.stop
    if final:
        last = n - 1
        path.fills.append(
            PlannedFill(last, float(prices["close"][last]), state.remaining, END_OF_DATA, False)
        )
    return path


class _TradeValues(dict[str, object]):
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

    def last_max_profit(self) -> float:
        """`max_profit` at the window's last candle (the best profit so far, NaN-poisoned as
        the running maximum is), without the whole series when no rule asked for it."""
        known = self.get("max_profit")
        if isinstance(known, np.ndarray):
            return float(known[-1])
        profit = self["profit"]
        assert isinstance(profit, np.ndarray)
        return float(np.maximum(profit.max(), self._max_before))


def _window(
    plan: Plan,
    signals: PairSignals,
    prices: dict[str, np.ndarray],
    lo: int,
    hi: int,
    entry_index: int,
    sign: float,
    entry_price: float,
    initial_stop: float,
    rules: ExitRules,
    fills: FillModel,
    state: _State,
    path: TradePath,
    liquidation: float | None,
) -> str:
    """Resolve candles lo..hi-1: "closed", "open" (carry on), or "retry" with a wider window."""
    opens, closes = prices["open"], prices["close"]
    n = len(closes)
    profit = sign * (closes[lo:hi] / entry_price - 1.0)
    env = _TradeValues(profit, state.max_profit, lo - entry_index, hi - entry_index)
    env.update(entry_price=entry_price, side=sign, stop=initial_stop)
    active = dict(state.active)
    stops = _trail(plan, signals, lo, hi, env, rules, state.stop, active, sign, path)
    stop_after, stop_before = stops[1:], stops[:-1]  # the stop after each close, and before
    env["stop"] = stop_after
    trigger = _levels(prices, mark=fills.stops_on_mark)
    if sign > 0:
        hit = trigger["low"][lo:hi] <= stop_before
    else:
        hit = trigger["high"][lo:hi] >= stop_before
    stop_at = _first(hit)
    end_at, liquidated = _ending(prices, lo, hi, sign, stop_before, stop_at, liquidation)
    stop_candle = lo + end_at if end_at is not None else n
    # Gapped through the liquidation price: it happened before anything fills at the open.
    before_open = liquidated and _reached(
        float(_levels(prices, mark=True)["open"][stop_candle]), liquidation, sign
    )
    remaining, taken = state.remaining, state.taken
    planned: list[PlannedFill] = []
    for k, share, reason in _decisions(plan, signals, lo, hi, env, rules, taken):
        j = lo + k + 1  # decided at the close of k, acted on at the next open
        if j >= n and j <= stop_candle and _ends_at_next_open(reason, share, remaining, fills):
            path.closing_decided_at = lo + k
        if j >= n and j <= stop_candle:  # decided at the last close: only j == n gets here
            _decided_now(path, reason, share, remaining)
            continue
        if j >= n or j > stop_candle or (j == stop_candle and before_open):
            break
        if reason.startswith("exit:"):
            name = reason.removeprefix("exit:")
            if fills.exit_limit:
                fill = _limit_exit(prices, k + lo, name, remaining, fills, sign, stop_candle, hi)
                if fill == "retry":
                    return "retry" if hi < n else "open"
                if not isinstance(fill, PlannedFill):  # the stop (or the data's end) came first
                    break
                planned.append(fill)
            else:
                planned.append(PlannedFill(j, float(opens[j]), remaining, name, True))
            remaining = 0.0
            break
        closing = remaining if reason.startswith(PROTECTION) else min(share, remaining)
        planned.append(PlannedFill(j, float(opens[j]), closing, reason, True))
        remaining -= closing
        taken += 0 if reason.startswith(PROTECTION) else 1
        if remaining <= 1e-9:
            break
    path.fills.extend(planned)
    if remaining <= 1e-9:
        last = planned[-1].index
        path.final_stop = float(stop_before[last - lo]) if last < hi else float(stop_after[-1])
        return "closed"
    if end_at is not None and liquidated:
        assert liquidation is not None
        path.fills.append(PlannedFill(stop_candle, liquidation, remaining, LIQUIDATION, False))
        path.final_stop = float(stop_before[end_at])
        return "closed"
    if stop_at is not None:
        level = float(stop_before[stop_at])
        start = trigger["open"][stop_candle]
        gapped = start <= level if sign > 0 else start >= level
        price = float(opens[stop_candle]) if gapped else level
        reason = STOP_LOSS if level == initial_stop else TRAILING_STOP
        path.fills.append(PlannedFill(stop_candle, price, remaining, reason, True))
        path.final_stop = level
        return "closed"
    state.stop = float(stop_after[-1])
    state.max_profit = env.last_max_profit()
    state.active = active
    state.remaining, state.taken = remaining, taken
    return "open"


def _decided_now(path: TradePath, reason: str, share: float, remaining: float) -> None:
    """Record a decision of the last close; later ones on that close see what it closes."""
    left = remaining - sum(f.share for f in path.decided)
    if left <= 1e-9:
        return
    whole = reason.startswith(("exit:", PROTECTION))
    closing = left if whole else min(share, left)
    path.decided.append(PlannedFill(-1, float("nan"), closing, reason, True))


def _levels(prices: dict[str, np.ndarray], *, mark: bool) -> dict[str, np.ndarray]:
    """The open, high and low that trigger a level: the mark price's where it is stored
    and asked for (liquidations always ask), else the traded price's."""
    if mark and "mark_low" in prices:
        return {k: prices[f"mark_{k}"] for k in ("open", "high", "low")}
    return {k: prices[k] for k in ("open", "high", "low")}


def _reached(price: float, liquidation: float | None, sign: float) -> bool:
    if liquidation is None:
        return False
    return price <= liquidation if sign > 0 else price >= liquidation


def _ending(
    prices: dict[str, np.ndarray],
    lo: int,
    hi: int,
    sign: float,
    stop_before: np.ndarray,
    stop_at: int | None,
    liquidation: float | None,
) -> tuple[int | None, bool]:
    """The candle (in the window) where the stop or the liquidation ends the trade, and
    whether it is the liquidation. Within one candle the price passes whichever level is
    nearer the open first; a candle opening beyond the liquidation price liquidates."""
    if liquidation is None:
        return stop_at, False
    marked = _levels(prices, mark=True)
    extreme = marked["low"][lo:hi] if sign > 0 else marked["high"][lo:hi]
    liquid_at = _first(extreme <= liquidation if sign > 0 else extreme >= liquidation)
    if liquid_at is None or (stop_at is not None and stop_at < liquid_at):
        return stop_at, False
    if stop_at == liquid_at:
        opened = float(marked["open"][lo + stop_at])
        stop = float(stop_before[stop_at])
        if not _reached(opened, liquidation, sign) and not beyond_liquidation(
            stop, liquidation, sign
        ):
            return stop_at, False
    return liquid_at, True


def _ends_at_next_open(reason: str, share: float, remaining: float, fills: FillModel) -> bool:
    """Does this decision close the whole position with a market order at the next open?"""
    if reason.startswith("exit:"):
        return not fills.exit_limit  # a limit exit frees its slot only when it fills
    if reason.startswith(PROTECTION):
        return True
    return share >= remaining - 1e-9  # the take-profit that closes what is left


def _first(mask: np.ndarray) -> int | None:
    index = int(mask.argmax()) if len(mask) else 0
    return index if len(mask) and mask[index] else None


def _bools(values: np.ndarray) -> np.ndarray:
    """A verdict per candle as booleans (a view when it is one already: never written to)."""
    return values if values.dtype == np.bool_ else values.astype(bool)


def _trail(
    plan: Plan,
    signals: PairSignals,
    lo: int,
    hi: int,
    env: dict[str, object],
    rules: ExitRules,
    stop: float,
    active: dict[str, bool],
    sign: float,
    path: TradePath,
) -> np.ndarray:
    """The stop in force before the window and after each of its closes (hi - lo + 1
    values): the best active trailing level, never loosening."""
    worst = -np.inf if sign > 0 else np.inf
    best: np.ndarray | None = None
    for name, rule in rules.trailing.items():
        if active[name]:
            on = np.ones(hi - lo, dtype=bool)
        else:
            activate = _bools(evaluate_span(plan, rule.activate.node, signals, lo, hi, env))
            on = np.logical_or.accumulate(activate)
            if on[-1]:
                path.activated.setdefault(name, lo + int(on.argmax()))
                active[name] = True
        level = np.asarray(
            evaluate_span(plan, rule.level.node, signals, lo, hi, env), dtype=np.float64
        )
        level = np.where(on & ~np.isnan(level), level, worst)
        level = round_stops(level, rules.tick, sign)
        if best is None:  # the first rule's levels: the best so far (-inf or +inf elsewhere)
            best = level
        else:
            best = np.maximum(best, level) if sign > 0 else np.minimum(best, level)
    if best is None:  # no trailing rule: the stop stays where it is
        return np.full(hi - lo + 1, stop)
    ratchet = np.maximum.accumulate if sign > 0 else np.minimum.accumulate
    result: np.ndarray = ratchet(np.concatenate(([stop], best)))
    return result


def _decisions(
    plan: Plan,
    signals: PairSignals,
    lo: int,
    hi: int,
    env: dict[str, object],
    rules: ExitRules,
    taken: int,
) -> list[tuple[int, float, str]]:
    """Close-of-candle decisions in this window, in time order: (candle, share, reason).

    Take-profits fire in file order (a later one never before an earlier one); on one
    candle, take-profits come before a signal exit, which comes before a protection.
    """
    events: list[tuple[int, int, int, float, str]] = []  # candle, kind, file order, share
    earliest = 0
    for order, (name, rule, share) in enumerate(rules.take_profits):
        if order < taken:
            continue
        when = _bools(evaluate_span(plan, rule.node, signals, lo, hi, env))
        k = _first(when[earliest:])
        k = None if k is None else k + earliest
        if k is None:
            break
        events.append((k, 0, order, share, name))
        earliest = k
    first_exit: tuple[int, str] | None = None
    for name, rule in rules.signals.items():
        k = _first(_bools(evaluate_span(plan, rule.node, signals, lo, hi, env)))
        if k is not None and (first_exit is None or k < first_exit[0]):
            first_exit = (k, name)
    if first_exit is not None:
        events.append((first_exit[0], 1, 0, 1.0, "exit:" + first_exit[1]))
    for name, series in rules.close_all:
        before = series[lo - 1] if lo > 0 else False
        window = series[lo:hi]
        rising = window & ~np.concatenate(([before], window[:-1]))
        k = _first(rising)
        if k is not None:
            events.append((k, 2, 0, 1.0, f"{PROTECTION}:{name}"))
    events.sort()
    return [(k, share, reason) for k, _, _, share, reason in events]


def _limit_exit(
    prices: dict[str, np.ndarray],
    k_close: int,
    name: str,
    remaining: float,
    fills: FillModel,
    sign: float,
    stop_candle: int,
    hi: int,
) -> PlannedFill | str | None:
    """A limit exit at the signal close.

    None when the stop (or the end of the data) comes first; "retry" when the answer
    lies beyond the window, where the stop path is not known yet.
    """
    opens, highs, lows, closes = (prices[k] for k in ("open", "high", "low", "close"))
    n = len(closes)
    limit = float(closes[k_close])
    start = k_close + 1
    for candle in range(start, min(n, start + fills.exit_timeout)):
        if candle >= stop_candle:
            return None
        if candle >= hi:
            return "retry"
        through = highs[candle] > limit if sign > 0 else lows[candle] < limit
        if through:
            better = opens[candle] > limit if sign > 0 else opens[candle] < limit
            price = float(opens[candle]) if better else limit
            return PlannedFill(candle, price, remaining, name, False)
    late = start + fills.exit_timeout
    if late >= n or late > stop_candle:
        return None
    if late >= hi:
        return "retry"
    return PlannedFill(late, float(opens[late]), remaining, name, True)

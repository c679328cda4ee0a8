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
from kinetic_rules.engine.fills import FillModel
from kinetic_rules.engine.model import (
    END_OF_DATA,
    LIQUIDATION,
    PROTECTION,
    STOP_LOSS,
    TRAILING_STOP,
    Side,
)
from kinetic_rules.engine.path_rules import ExitRules, TradeValues, decisions, first, stop_path
from kinetic_rules.margin import beyond_liquidation

FIRST_WINDOW = 64  # candles: most trades end within it (it doubles for the others)


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
    # The candle at whose close each trailing rule first became active while the trade was
    # open, in the rules' order (what `explain` shows).
    activated: dict[str, int] = field(default_factory=dict)


@dataclass
class _State:
    stop: float
    max_profit: float = -np.inf
    active: dict[str, bool] = field(default_factory=dict)
    taken: int = 0  # take-profits already done
    remaining: float = 1.0


@quiet_numbers()  # once for the whole path, not per operator
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
            path.activated = _while_open(path.activated, rules, path.fills[-1].index)
            return path
        lo, width = hi, width * 2
    path.open_at_end = True
    path.final_stop = state.stop
    path.activated = _while_open(path.activated, rules, n)
    if final:
        last = n - 1
        path.fills.append(
            PlannedFill(last, float(prices["close"][last]), state.remaining, END_OF_DATA, False)
        )
    return path


def _while_open(activated: dict[str, int], rules: ExitRules, end: int) -> dict[str, int]:
    """The activations at closes before the candle `end` where the trade ended, in the
    rules' order: what happened while the trade was open, however far its windows reached."""
    return {name: activated[name] for name in rules.trailing if activated.get(name, end) < end}


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
    env = TradeValues(profit, state.max_profit, lo - entry_index, hi - entry_index)
    env.update(entry_price=entry_price, side=sign, stop=initial_stop)
    active = dict(state.active)
    stops = stop_path(plan, signals, lo, hi, env, rules, state.stop, active, sign, path.activated)
    stop_after, stop_before = stops[1:], stops[:-1]  # the stop after each close, and before
    env["stop"] = stop_after
    trigger = _levels(prices, mark=fills.stops_on_mark)
    if sign > 0:
        hit = trigger["low"][lo:hi] <= stop_before
    else:
        hit = trigger["high"][lo:hi] >= stop_before
    stop_at = first(hit)
    end_at, liquidated = _ending(prices, lo, hi, sign, stop_before, stop_at, liquidation)
    stop_candle = lo + end_at if end_at is not None else n
    # Gapped through the liquidation price: it happened before anything fills at the open.
    before_open = liquidated and _reached(
        float(_levels(prices, mark=True)["open"][stop_candle]), liquidation, sign
    )
    remaining, taken = state.remaining, state.taken
    planned: list[PlannedFill] = []
    # Only a decision before the stop's candle can act: one at its close or later cannot.
    acting = min(hi, stop_candle) - lo
    events = []
    if acting > 0:
        events = decisions(plan, signals, lo, lo + acting, env.prefix(acting), rules, taken)
    for k, share, reason in events:
        j = lo + k + 1  # decided at the close of k, acted on at the next open
        if j >= n and j <= stop_candle and _ends_at_next_open(reason, share, remaining, fills):
            path.closing_decided_at = lo + k
        if j >= n and j <= stop_candle:  # decided at the last close: only j == n gets here
            _decided_now(path, reason, share, remaining)
            continue
        if j >= n or j > stop_candle or (j == stop_candle and before_open):
            break
        if j == hi and _reached(float(_levels(prices, mark=True)["open"][j]), liquidation, sign):
            break  # it opens past the liquidation price: the next window liquidates there
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
    liquid_at = first(extreme <= liquidation if sign > 0 else extreme >= liquidation)
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

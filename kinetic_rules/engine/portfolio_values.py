"""Portfolio-wide values (`open_profit`, `exposure`, `today_profit`, …) and the rules reading them.

Such values exist only inside the portfolio loop, so the portfolio evaluates these rules
itself: entry conditions and protections at the closes where it decides, and
protections with `close_all` at every close while trades are open. Every value at a
close is computed from what a live bot knows then — fills of candles closed so far,
profits already settled, the decision candle's close for marking — from the same
bookkeeping the portfolio keeps (see engine/portfolio.py). The backtest knows each
trade's whole future and masks it by time; the live runtime knows only the past; one
function serves both, on arrays of closes or on one close as plain numbers (the same
operations either way), so both get the same numbers.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kinetic_rules.compile.interpret import binary
from kinetic_rules.compile.plan import Plan
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
    """Portfolio-wide values at each of several closes (arrays over those closes), or at one
    (plain numbers)."""

    values: Mapping[str, Any]
    held: list[tuple[Position, Any]]  # each slot's stake still in it (0 once free)


def standing(ledger: Ledger, moments: pd.DatetimeIndex) -> Standing:
    """The values at each close in `moments`, all later than the ledger's last settlement."""
    at = nanoseconds(moments)
    return _standing(ledger, at, day_starts(moments, at))


def standing_at(ledger: Ledger, moment: pd.Timestamp) -> Standing:
    """The values at one close, as plain numbers: what `standing` gives for that close alone,
    to the bit (the same operations on scalars), without arrays of one element."""
    return _standing(ledger, int(moment.value), midnight(moment))


def midnight(moment: pd.Timestamp) -> int:
    """`moment.floor("D")` in nanoseconds (integer arithmetic for UTC: a floor costs more
    than a decision's arithmetic)."""
    at = int(moment.value)
    return at - at % _DAY if str(moment.tz) == "UTC" else int(moment.floor("D").value)


# The same code computes a close or many: `at` (and `day`) are either int64 arrays or ints.
Moments = np.ndarray | int


def _standing(ledger: Ledger, at: Moments, day: Moments) -> Standing:
    everyone = sorted([*ledger.slots, *ledger.unsettled], key=lambda p: p.id)
    open_profit: Any = _full(at, 0.0)
    open_trades: Any = _full(at, 0.0)
    staked: Any = _full(at, 0.0)
    held: list[tuple[Position, Any]] = []
    slots = {p.id for p in ledger.slots}
    for position in everyone:
        part = position_part(position, position.id in slots, ledger, at)
        if part.profit is not None:
            open_profit = open_profit + part.profit
        if part.holds is not None:
            open_trades = open_trades + part.holds
            staked = staked + part.stake
            held.append((position, part.stake))
    values = Values(Settled(ledger, everyone, at, day), open_profit, open_trades, staked)
    return Standing(values, held)


@dataclass(frozen=True)
class Part:
    """What one position adds to the sums at each close: its marked profit while in the
    market, and while it holds its slot, 1 open trade and its stake still in it."""

    profit: Any | None  # None: no trade yet
    holds: Any | None  # None: not holding a slot
    stake: Any | None


def position_part(position: Position, in_slot: bool, ledger: Ledger, at: Moments) -> Part:
    step = ledger.timeframe.value
    trade = position.trade
    share: Any = 1.0
    profit = holds = stake = None
    if trade is not None:
        value, share = _marked(trade, ledger.market[trade.pair], at, step)
        in_market = (at >= trade.entry_time.value + step) & (at < position.settle.value)
        profit = _where(in_market, value, 0.0)
    if in_slot:
        holds = at < position.release.value
        stake = _where(holds, position.stake * share, 0.0)
    return Part(profit, holds, stake)


class Values(Mapping[str, Any]):
    """The named values, from the sums over positions and the settled profits; each is
    computed when a rule first reads it (a protection reading the open profit needs
    neither today's profit nor the exposure)."""

    NAMES = (
        "equity", "open_trades", "open_profit", "open_profit_ratio", "exposure",
        "today_profit", "today_profit_ratio", "today_lowest_profit_ratio",
    )  # fmt: skip

    def __init__(self, settled: Settled, open_profit: Any, open_trades: Any, staked: Any) -> None:
        self._settled = settled
        self._sums = {"open_profit": open_profit, "open_trades": open_trades, "staked": staked}
        self._known: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._known:
            if name not in self.NAMES and name not in ("solvent", "day_start"):
                raise KeyError(name)
            self._known[name] = self._compute(name)
        return self._known[name]

    def _compute(self, name: str) -> Any:
        match name:
            case "equity":
                return self._settled.starting + self._settled.realized()
            case "open_trades" | "open_profit":
                return self._sums[name]
            case "solvent":  # a ratio of a blown account is undefined
                return _where(self["equity"] > 0, self["equity"], np.nan)
            case "open_profit_ratio":
                return binary("/", self._sums["open_profit"], self["solvent"])
            case "exposure":
                return binary("/", self._sums["staked"], self["solvent"])
            case "today_profit":
                return self._settled.today()[0]
            case "day_start":
                equity, today = self["equity"], self["today_profit"]
                return _where(equity - today > 0, equity - today, np.nan)
            case "today_profit_ratio":
                return binary("/", self["today_profit"], self["day_start"])
        assert name == "today_lowest_profit_ratio"
        return binary("/", self._settled.today()[1], self["day_start"])

    def __iter__(self) -> Iterator[str]:
        return iter(self.NAMES)

    def __len__(self) -> int:
        return len(self.NAMES)


def _full(at: Moments, value: float) -> Any:
    return np.full(len(at), value) if isinstance(at, np.ndarray) else value


def _where(condition: Any, value: Any, otherwise: Any) -> Any:
    if isinstance(condition, np.ndarray):
        return np.where(condition, value, otherwise)
    return value if condition else otherwise


class Settled:
    """Realized profit, today's, and today's lowest point at a close, at each moment, each
    computed when first asked for.

    Profits are added in the order `advance` adds them (settlement, then position), so a
    backtest and a live run get the same numbers to the last bit; today's lowest point is
    taken after each moment's settlements, as it stood at that close."""

    def __init__(self, ledger: Ledger, everyone: list[Position], at: Moments, day: Moments):
        self.starting = ledger.starting
        self._ledger, self._at, self._day = ledger, at, day
        last = at[-1] if isinstance(at, np.ndarray) else at
        settling = [p for p in everyone if p.trade is not None and p.settle.value <= last]
        self._settling = sorted(settling, key=lambda p: (p.settle, p.id))
        self._realized: Any = None
        self._today: tuple[Any, Any] | None = None

    def realized(self) -> Any:
        if self._realized is None:
            at = self._at
            realized = _full(at, self._ledger.realized)
            for position in self._settling:
                assert position.trade is not None
                settled = at >= position.settle.value
                realized = realized + _where(settled, position.trade.profit, 0.0)
            self._realized = realized
        return self._realized

    def today(self) -> tuple[Any, Any]:
        """Today's profit and today's lowest point."""
        if self._today is None:
            at, day = self._at, self._day
            today = _full(at, 0.0)
            lowest = _full(at, 0.0)
            previous = None
            for settle, exit_time, profit in self._ledger.closed:  # settled, in that order
                if previous is not None and settle != previous:
                    lowest = np.minimum(lowest, today)
                today = today + _where(exit_time.value >= day, profit, 0.0)
                previous = settle
            for position in self._settling:
                trade = position.trade
                assert trade is not None and trade.exit_time is not None
                if previous is not None and position.settle != previous:
                    lowest = np.minimum(lowest, today)
                settled = at >= position.settle.value
                this_day = settled & (trade.exit_time.value >= day)
                today = today + _where(this_day, trade.profit, 0.0)
                previous = position.settle
            self._today = (today, np.minimum(lowest, today))
        return self._today


def _marked(trade: Trade, data: PairData, at: Moments, step: int) -> tuple[Any, Any]:
    """The trade's profit if closed at each close (fills known by then, the rest marked to
    the pair's close), and the share of its amount still held."""
    sign = 1.0 if trade.side == "long" else -1.0
    value = _full(at, -trade.fills[0].fee)
    remaining = _full(at, trade.amount)
    for fill in trade.fills[1:]:
        if fill.reason == END_OF_DATA:  # the backtest's closing of what the data left open
            continue
        known = at >= fill.time.value + step
        gain = sign * (fill.price - trade.entry_price) * fill.amount - fill.fee
        value = value + _where(known, gain, 0.0)
        remaining = remaining - _where(known, fill.amount, 0.0)
    closes = closes_at(data, at, step)
    value = value + sign * (closes - trade.entry_price) * remaining
    return value, np.true_divide(remaining, trade.amount)


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


def time_at(index: pd.DatetimeIndex, position: int) -> pd.Timestamp:
    """`index[position]`, made from the times `open_times` keeps: pandas' indexing costs
    more than a decision's arithmetic, and the portfolio asks at every decision and fill."""
    if index.unit != "ns":
        return index[position]
    return pd.Timestamp(int(open_times(index)[position]), tz=index.tz)


def position_of(index: pd.DatetimeIndex, moment: pd.Timestamp) -> int:
    """`index.searchsorted(moment)`, on the times `open_times` keeps."""
    return int(np.searchsorted(open_times(index), moment.value))


def candle_at(index: pd.DatetimeIndex, opens: np.ndarray) -> np.ndarray:
    """Position in `index` of the candle opening at each time of `opens`, or -1 (as
    `index.get_indexer` finds it for a sorted index of unique times)."""
    times = open_times(index)
    where = np.searchsorted(times, opens)
    inside = where < len(times)
    found = np.zeros(len(opens), dtype=bool)
    found[inside] = times[where[inside]] == opens[inside]
    return np.where(found, where, -1)


def closes_at(data: PairData, at: Any, step: int) -> Any:
    """The pair's last close known at each moment (NaN before its first candle)."""
    known = np.searchsorted(open_times(data.signals.index), at - step, side="right") - 1
    closes = data.prices["close"]
    if not isinstance(known, np.ndarray):
        return closes[known] if known >= 0 else np.nan
    return np.where(known >= 0, closes[np.maximum(known, 0)], np.nan)


# -- deciding an entry ------------------------------------------------------------------------
def decision_env(
    ledger: Ledger, data: PairData, moment: pd.Timestamp
) -> dict[str, float | Callable[..., float]]:
    """Every portfolio value at this decision, for entering `data.pair`."""
    now = standing_at(ledger, moment)
    env: dict[str, float | Callable[..., float]] = {
        name: float(value) for name, value in now.values.items()
    }
    equity = float(now.values["equity"])

    def correlated_exposure(threshold: float, lookback: float) -> float:
        others = [
            (position, float(stake))
            for position, stake in now.held
            if position.pair != data.pair and stake != 0.0
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

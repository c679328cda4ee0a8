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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kinetic_rules.compile.interpret import binary
from kinetic_rules.compile.plan import Plan
from kinetic_rules.engine.correlation import Closes, return_correlations
from kinetic_rules.engine.model import END_OF_DATA, Fill, Side, Trade
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


class Standing:
    """Portfolio-wide values at each of several closes (arrays over those closes), or at one
    (plain numbers). Each sum over the positions is taken when first read: a decision that
    reads only the correlated exposure needs the stakes held, not the marked profits."""

    def __init__(self, ledger: Ledger, at: Moments, day: Moments) -> None:
        self._ledger, self._at = ledger, at
        self._everyone = sorted([*ledger.slots, *ledger.unsettled], key=lambda p: p.id)
        self._slots = {p.id for p in ledger.slots}
        self._held: list[tuple[Position, Any]] | None = None
        self._sums: dict[str, Any] = {}
        self.values: Values = _StandingValues(Settled(ledger, self._everyone, at, day), self)

    @property
    def held(self) -> list[tuple[Position, Any]]:
        """Each slot's stake still in it (0 once free), in the order of the positions' ids."""
        if self._held is None:
            step = self._ledger.timeframe.value
            self._held = [
                (position, _slot_stake(position, self._at, step))
                for position in self._everyone
                if position.id in self._slots
            ]
        return self._held

    def sum(self, name: str) -> Any:
        """`open_profit`, `open_trades` or `staked`: added over the positions in id order."""
        if name not in self._sums:
            self._sums[name] = self._add(name)
        return self._sums[name]

    def _add(self, name: str) -> Any:
        at, step = self._at, self._ledger.timeframe.value
        total: Any = _full(at, 0.0)
        if name == "open_profit":
            for position in self._everyone:
                trade = position.trade
                if trade is not None:
                    data = self._ledger.market[trade.pair]
                    total = total + _in_market_profit(position, trade, data, at, step)
        elif name == "open_trades":
            for position in self._everyone:
                if position.id in self._slots:
                    total = total + (at < position.release.value)
        else:
            assert name == "staked"
            for _, stake in self.held:
                total = total + stake
        return total


def _slot_stake(position: Position, at: Moments, step: int) -> Any:
    """The stake a position holding a slot still has in it at each close (0 once free)."""
    share: Any = 1.0 if position.trade is None else _held_share(position.trade, at, step)
    return _where(at < position.release.value, position.stake * share, 0.0)


def _in_market_profit(
    position: Position, trade: Trade, data: PairData, at: Moments, step: int
) -> Any:
    """The trade's marked profit at each close while it is in the market, else 0."""
    value = _marked_value(trade, data, at, step)
    in_market = (at >= trade.entry_time.value + step) & (at < position.settle.value)
    return _where(in_market, value, 0.0)


def standing(ledger: Ledger, moments: pd.DatetimeIndex) -> Standing:
    """The values at each close in `moments`, all later than the ledger's last settlement."""
    at = nanoseconds(moments)
    return Standing(ledger, at, day_starts(moments, at))


def standing_at(ledger: Ledger, moment: pd.Timestamp) -> Standing:
    """The values at one close, as plain numbers: what `standing` gives for that close alone,
    to the bit (the same operations on scalars), without arrays of one element."""
    return Standing(ledger, int(moment.value), midnight(moment))


def midnight(moment: pd.Timestamp) -> int:
    """`moment.floor("D")` in nanoseconds (integer arithmetic for UTC: a floor costs more
    than a decision's arithmetic)."""
    at = int(moment.value)
    return at - at % _DAY if str(moment.tz) == "UTC" else int(moment.floor("D").value)


# The same code computes a close or many: `at` (and `day`) are either int64 arrays or ints.
Moments = np.ndarray | int


@dataclass(frozen=True)
class Part:
    """What one position adds to the sums at each close: its marked profit while in the
    market, and while it holds its slot, 1 open trade and its stake still in it."""

    profit: Any | None  # None: no trade yet
    holds: Any | None  # None: not holding a slot
    stake: Any | None


def position_part(position: Position, in_slot: bool, ledger: Ledger, at: Moments) -> Part:
    """One position's part, as `Standing` adds it (close-all windows add parts themselves)."""
    step = ledger.timeframe.value
    trade = position.trade
    profit = holds = stake = None
    if trade is not None:
        profit = _in_market_profit(position, trade, ledger.market[trade.pair], at, step)
    if in_slot:
        holds = at < position.release.value
        stake = _slot_stake(position, at, step)
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

    def __contains__(self, name: object) -> bool:
        return name in self.NAMES or name in ("solvent", "day_start")

    def _sum(self, name: str) -> Any:
        return self._sums[name]

    def _compute(self, name: str) -> Any:
        match name:
            case "equity":
                return self._settled.starting + self._settled.realized()
            case "open_trades" | "open_profit":
                return self._sum(name)
            case "solvent":  # a ratio of a blown account is undefined
                return _where(self["equity"] > 0, self["equity"], np.nan)
            case "open_profit_ratio":
                return binary("/", self._sum("open_profit"), self["solvent"])
            case "exposure":
                return binary("/", self._sum("staked"), self["solvent"])
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


class _StandingValues(Values):
    """`Values` whose sums a `Standing` takes when a value first needs them."""

    def __init__(self, settled: Settled, standing: Standing) -> None:
        super().__init__(settled, None, None, None)
        self._standing = standing

    def _sum(self, name: str) -> Any:
        return self._standing.sum(name)


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
        self._settling = sorted(settling, key=lambda p: (p.settle.value, p.id))
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


def _marked_value(trade: Trade, data: PairData, at: Moments, step: int) -> Any:
    """The trade's profit if closed at each close: fills known by then, the rest marked to
    the pair's close."""
    sign = 1.0 if trade.side == "long" else -1.0
    value = _full(at, -trade.fills[0].fee)
    for fill in _later_fills(trade):
        known = at >= fill.time.value + step
        gain = sign * (fill.price - trade.entry_price) * fill.amount - fill.fee
        value = value + _where(known, gain, 0.0)
    closes = closes_at(data, at, step)
    return value + sign * (closes - trade.entry_price) * _remaining(trade, at, step)


def _held_share(trade: Trade, at: Moments, step: int) -> Any:
    """The share of the trade's amount still held at each close (fills known by then)."""
    remaining = _remaining(trade, at, step)
    if isinstance(remaining, np.ndarray) or not trade.amount:
        return np.true_divide(remaining, trade.amount)
    return remaining / trade.amount  # one close: the same IEEE division, on plain floats


def _remaining(trade: Trade, at: Moments, step: int) -> Any:
    remaining, one = _full(at, trade.amount), not isinstance(at, np.ndarray)
    for fill in _later_fills(trade):
        known = at >= fill.time.value + step
        if one and not known:
            continue  # at one close, subtracting 0.0 would leave the float as it is
        remaining = remaining - _where(known, fill.amount, 0.0)
    return remaining


def _later_fills(trade: Trade) -> list[Fill]:
    """The fills after the entry that a bot would know of (not the backtest's closing of
    what the data left open)."""
    return [fill for fill in trade.fills[1:] if fill.reason != END_OF_DATA]


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
    return int(open_times(index).searchsorted(moment.value))


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
def decision_env(ledger: Ledger, data: PairData, moment: pd.Timestamp) -> DecisionEnv:
    """Every portfolio value at this decision, for entering `data.pair`."""
    return DecisionEnv(ledger, data, moment)


class DecisionEnv(Mapping[str, Any]):
    """The portfolio values at one decision as plain numbers, and `correlated_exposure`;
    each computed when a rule first reads it (an entry rule reading only the correlated
    exposure needs neither the marked profits nor today's)."""

    CORRELATED = "correlated_exposure"

    def __init__(self, ledger: Ledger, data: PairData, moment: pd.Timestamp) -> None:
        self._ledger, self._data, self._moment = ledger, data, moment
        self._now = standing_at(ledger, moment)
        self._known: dict[str, float] = {}

    def __getitem__(self, name: str) -> Any:
        if name == self.CORRELATED:
            return self.correlated_exposure
        known = self._known.get(name)
        if known is None:
            known = self._known[name] = float(self._now.values[name])
        return known

    def __contains__(self, name: object) -> bool:
        return name == self.CORRELATED or name in Values.NAMES

    def __iter__(self) -> Iterator[str]:
        return iter((*Values.NAMES, self.CORRELATED))

    def __len__(self) -> int:
        return len(Values.NAMES) + 1

    def correlated_exposure(self, threshold: float, lookback: float) -> float:
        """The stakes held on other pairs whose returns correlate with this pair's above
        `threshold` over the last `lookback` candles, as a share of equity."""
        data, ledger = self._data, self._ledger
        others = [
            (position, float(stake))
            for position, stake in self._now.held
            if position.pair != data.pair and stake != 0.0
        ]
        correlations = return_correlations(
            _closes(data),
            [_closes(ledger.market[position.pair]) for position, _ in others],
            self._moment.value,
            ledger.timeframe.value,
            int(lookback),
        )
        total = 0.0
        for (_, stake), correlation in zip(others, correlations, strict=True):
            if correlation > threshold:
                total += stake
        equity = self["equity"]
        return total / equity if equity > 0 else float("nan")


def _closes(data: PairData) -> Closes:
    return open_times(data.signals.index), data.prices["close"]

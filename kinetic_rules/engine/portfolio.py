"""The portfolio: slots, limits, sizing and trades over all pairs — shared by backtest and live.

Entries are decided at candle closes (`decide`) and take their slot at once. A position
is then *resolved* against the candles known so far (`resolve`): its entry order fills
or expires, and its trade path yields the fills that have happened. A backtest resolves
each position once, on all the data; the live runtime resolves open positions again at
every close. Because no fill or decision reads a later candle, both see the same events
at the same moments, and every bookkeeping time below is a moment a live bot would know:

- a slot frees at the close that decided a market exit, or the close of the candle in
  which a stop, a limit or an entry-order expiry happened;
- a trade's profit counts (equity, Kelly) from the close of the candle of its last fill.

Rules that read the portfolio itself (`open_profit_ratio`, `exposure`, …) are applied
here, from those same books (engine/portfolio_values.py). A protection with `close_all`
that reads them depends on every open trade at every close, so the backtest looks for
the first close where it fires between two decisions, cuts the trades there and plays
them again (engine/close_all.py); the live runtime checks each close as it comes
(`observe`). An entry's stake and the rules that may refuse it are in engine/entries.py;
the plain data the portfolio reads and keeps is in engine/positions.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from kinetic_rules.compile.interpret import quiet_numbers
from kinetic_rules.compile.plan import Plan
from kinetic_rules.engine.books import PortfolioBooks
from kinetic_rules.engine.close_all import SweepWindow, first_close_all, with_cut
from kinetic_rules.engine.closing import closing_fills
from kinetic_rules.engine.entries import entry_stake, portfolio_refuses, stake_rule_values
from kinetic_rules.engine.fills import FillModel, entry_fill
from kinetic_rules.engine.futures import funding_payments
from kinetic_rules.engine.model import (
    END_OF_DATA,
    STOP_LOSS,
    TRAILING_STOP,
    Fill,
    Side,
    Trade,
)
from kinetic_rules.engine.moments import later, moment_at, position_at
from kinetic_rules.engine.portfolio_values import (
    Ledger,
    PortfolioRules,
    midnight,
    portfolio_rules,
)
from kinetic_rules.engine.positions import (
    NEVER,
    Candidate,
    PairData,
    Position,
    candidate,
    candidates,
    cooling_down,
    entry_signals,
    entry_tags,
    initial_stop,
    leverage,
    path_of,
)
from kinetic_rules.margin import liquidation_price
from kinetic_rules.market_rules import round_stop, tradable, truncate_amount

# The portfolio's plain data lives in engine/positions.py; other stages import it here too.
__all__ = ["NEVER", "Candidate", "PairData", "Portfolio", "Position", "candidate", "path_of"]

SWEEP_AHEAD = 1024  # closes checked at once for portfolio close-alls in a backtest
PROGRESS_EVERY = 256  # decisions between two progress reports


@dataclass
class Portfolio:
    plan: Plan
    fills: FillModel
    starting_balance: float
    timeframe: pd.Timedelta
    regimes: list[str]
    trades: list[Trade] = field(default_factory=list)
    realized: float = 0.0
    below_minimum: int = 0  # entries not sent: worth less than the exchange's minimum
    _skipped_exits: dict[int, int] = field(default_factory=dict)  # trade id -> take-profits
    _positions: list[Position] = field(default_factory=list)  # holding a slot
    _unsettled: list[Position] = field(default_factory=list)  # slot free, profit not known
    _closed_profits: dict[str, list[float]] = field(default_factory=dict)
    _all_profits: list[float] = field(default_factory=list)  # every pair's, as they settle
    _last_exit: dict[str, pd.Timestamp] = field(default_factory=dict)
    _tag_exit: dict[tuple[str, str], pd.Timestamp] = field(default_factory=dict)  # (pair, tag)
    _next_id: int = 1
    _next_trade_id: int = 1
    market: dict[str, PairData] = field(default_factory=dict)  # every pair as known now
    _closed_days: list[tuple[pd.Timestamp, pd.Timestamp, float]] = field(default_factory=list)
    _rules: PortfolioRules | None = None  # rules reading the portfolio (None: not looked yet)
    _quiet_until: int = 0  # the backtest's closes before this hold no close-all (see _sweep)
    _window: SweepWindow | None = None  # the backtest's closes ahead, as last checked
    # The backtest's stake rule values at every entry signal, by pair and side: taken at
    # once per pair (entries.py), where a live bot sizes its one decision when it comes.
    _stake_rule: dict[tuple[str, Side], tuple[PairData, dict[int, float]]] = field(
        default_factory=dict
    )

    # -- the backtest: every decision in time order, each position resolved on all data ----
    def run(
        self,
        pairs: list[PairData],
        timeline: pd.DatetimeIndex,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[Trade]:
        """`progress("portfolio", done, total)` hears of the decisions as they are made."""
        with quiet_numbers():  # the rules' arithmetic, once for the whole run
            return self._run(pairs, timeline, progress)

    def _run(
        self,
        pairs: list[PairData],
        timeline: pd.DatetimeIndex,
        progress: Callable[[str, int, int], None] | None,
    ) -> list[Trade]:
        by_pair = {d.pair: d for d in pairs}
        self.market = by_pair
        closes = timeline + self.timeframe
        checked = 0  # closes before this one have been checked for portfolio close-alls
        groups = candidates(self.plan, pairs)
        for data in pairs:
            for side in data.entries:
                values = stake_rule_values(self.plan, data, side, entry_signals(data, side))
                if values is not None:
                    self._stake_rule[(data.pair, side)] = (data, values)
        for done, group in enumerate(groups):
            if progress and done % PROGRESS_EVERY == 0:
                progress("portfolio", done, len(groups))
            decided_at = moment_at(closes, group[0][0])
            checked = self._sweep(closes, checked, group[0][0] + 1)
            for position in self.decide(decided_at, [(d, s, i) for _, _, _, d, s, i in group]):
                self.resolve(position, by_pair[position.pair], final=True)
                self._quiet_until = 0  # a new trade: closes ahead are to be checked again
        self._sweep(closes, checked, len(closes))
        self.advance(NEVER)
        if progress:
            progress("portfolio", len(groups), len(groups))
        # by entry time (in nanoseconds: comparing Timestamps costs more than sorting)
        return sorted(self.trades, key=lambda t: (t.entry_time.value, t.pair))

    def _sweep(self, closes: pd.DatetimeIndex, start: int, stop: int) -> int:
        """Check closes[start:stop] for portfolio close-alls, in order; returns `stop`.

        Until a decision takes a position or a close-all cuts trades, the books change only
        with time, which the values at each close already account for: so closes are
        checked ahead, SWEEP_AHEAD at a time, and closes known quiet are not checked again.
        A new position adds its part to the window's sums (engine/close_all.py).
        """
        if not self._portfolio_rules().close_all:
            return stop
        while start < stop:
            if not any(p.trade is not None for p in self._positions):
                return stop  # nothing open, nothing to close
            if stop <= self._quiet_until:
                return stop  # checked already, with these very positions
            self.advance(moment_at(closes, start))
            window = self._window
            if window is None or stop > window.stop or window.stale(self._ledger()):
                ahead = min(len(closes), max(stop, start + SWEEP_AHEAD))
                window = self._window = SweepWindow.over(closes, start, ahead, self.timeframe.value)
            fired = window.check(self.plan, self._portfolio_rules(), self._ledger(), start)
            if fired is None:
                self._quiet_until = window.stop
                return stop
            if start + fired[0] >= stop:  # after the next decision, which may change the books
                self._quiet_until = start + fired[0]
                return stop
            self._cut(moment_at(closes, start + fired[0]), fired[1], final=True)
            self._quiet_until = 0
            start += fired[0] + 1
        return stop

    def observe(
        self, closed_at: pd.Timestamp, market: dict[str, PairData], *, play: bool = True
    ) -> list[tuple[Position, str]]:
        """Live: the market as known at this close, after the open positions were resolved
        on it. Decisions read it; portfolio close-alls are checked against it. Returns the
        positions a close-all closes (and their protection); with `play`, the fill model
        closes them, otherwise the caller does (real orders)."""
        self.market = market
        rules = self._portfolio_rules()
        if not rules.close_all:
            return []
        self.advance(closed_at)
        moment = pd.DatetimeIndex([closed_at])
        fired = first_close_all(self.plan, rules, self._ledger(), moment)
        if fired is None:
            return []
        if play:
            self._cut(closed_at, fired[1], final=False)
        return fired[1]

    def _cut(self, moment: pd.Timestamp, closing: list[tuple[Position, str]], final: bool) -> None:
        """A close-all decided at `moment`: play each trade again, closing at the next open."""
        for position, name in closing:
            position.cut = (name, moment - self.timeframe)
            position.state = "open"  # the backtest had played it to its end: play it again
            position.release = position.settle = NEVER
            self.resolve(position, self.market[position.pair], final=final)

    def _portfolio_rules(self) -> PortfolioRules:
        if self._rules is None:
            self._rules = portfolio_rules(self.plan)
        return self._rules

    def _ledger(self) -> Ledger:
        return Ledger(
            self.starting_balance,
            self.realized,
            self._positions,
            self._unsettled,
            self._closed_days,
            self.market,
            self.timeframe,
        )

    # -- shared steps ------------------------------------------------------------------------
    def advance(self, until: pd.Timestamp) -> None:
        """Free the slots and count the profits known by `until`."""
        now = until.value  # in nanoseconds: comparing Timestamps costs more than the books
        for position in [p for p in self._positions if p.release.value <= now]:
            self._positions.remove(position)
            self._unsettled.append(position)
        for position in sorted(
            (p for p in self._unsettled if p.settle.value <= now),
            key=lambda p: (p.settle.value, p.id),
        ):
            self._unsettled.remove(position)
            trade = position.trade
            if trade is None:
                continue
            profit = trade.profit
            if trade.exit_reason != END_OF_DATA:
                self._closed_profits.setdefault(trade.pair, []).append(profit)
                self._all_profits.append(profit)
            self.realized += profit
            if trade.exit_time is not None:  # for today's profit
                self._closed_days.append((position.settle, trade.exit_time, profit))
        if until < NEVER and self._closed_days:  # trades closed before today never count again
            today = midnight(until)
            self._closed_days = [c for c in self._closed_days if c[1].value >= today]

    def decide(
        self, decided_at: pd.Timestamp, ranked: list[tuple[PairData, Side, int]]
    ) -> list[Position]:
        """Entries decided at one close, in priority order; returns the positions taken."""
        self.advance(decided_at)
        taken = []
        for data, side, local in ranked:
            position = self._consider(data, side, local, decided_at)
            if position is not None:
                taken.append(position)
        return taken

    def open_positions(self) -> list[Position]:
        return list(self._positions)

    def unresolved(self) -> list[Position]:
        """Positions with something still to happen: an entry order, or fills to come
        (including an exit decided at the last close, whose slot is already free)."""
        return [p for p in (*self._positions, *self._unsettled) if p.state != "done"]

    # -- positions the exchange fills (live trading: real fills, not the fill model) ---------
    def entry_amount(self, position: Position, data: PairData, price: float) -> float:
        """Base-asset units an entry order at `price` asks for: the stake times leverage."""
        signal = int(data.signals.index.searchsorted(position.signal_time))
        return position.stake * leverage(self.plan, data, signal) / price

    def open_filled(
        self,
        position: Position,
        data: PairData,
        filled_at: pd.Timestamp,
        price: float,
        amount: float,
        fee: float,
    ) -> Trade:
        """The entry order filled on the exchange: the trade as it was made there. The trade's
        entry time is the open of the candle the fill happened in, so its path starts there."""
        index = data.signals.index
        signal = int(index.searchsorted(position.signal_time))
        candle = max(filled_at.floor(self.timeframe), index[signal] + self.timeframe)
        wanted = self.entry_amount(position, data, price)
        position.stake *= amount / wanted if wanted else 0.0  # a partial fill stakes its share
        fill = Fill(filled_at, price, amount, fee, "entry")
        return self._open_trade(position, data, signal, candle, price, fill)

    def close_filled(self, position: Position, at: pd.Timestamp) -> None:
        """The position ended on the exchange at `at` (its trade closed, or its entry never
        filled): the slot is free, the profit counts and the cooldowns start from then."""
        position.state = "done"
        position.release = position.settle = at
        if position.trade is not None:
            self._exited(position.trade, at)

    def restore(self, position: Position) -> None:
        """After a restart: a position taken before it, its trade keeping its id (a finished
        one only reports its trade: its profit is in the books already)."""
        if position.state != "done":
            self._positions.append(position)
        if position.trade is not None:
            self.trades.append(position.trade)
            self._next_trade_id = max(self._next_trade_id, position.trade.id + 1)

    def restore_books(self, books: PortfolioBooks) -> None:
        """After a restart: the history the rules read, as `books` saved it."""
        self.realized = books.realized
        self._closed_profits = {k: list(v) for k, v in books.closed_profits.items()}
        self._all_profits = list(books.all_profits)
        self._last_exit = dict(books.last_exit)
        self._tag_exit = dict(books.tag_exit)
        self._closed_days = list(books.closed_today)
        self._next_id = max(self._next_id, books.next_id)
        self._next_trade_id = max(self._next_trade_id, books.next_trade_id)

    def books(self) -> PortfolioBooks:
        """What a restart needs besides the open positions (a copy: later trades leave it)."""
        return PortfolioBooks(
            realized=self.realized,
            closed_profits={k: list(v) for k, v in self._closed_profits.items()},
            all_profits=list(self._all_profits),
            last_exit=dict(self._last_exit),
            tag_exit=dict(self._tag_exit),
            closed_today=list(self._closed_days),
            next_id=self._next_id,
            next_trade_id=self._next_trade_id,
        )

    # -- deciding ----------------------------------------------------------------------------
    def _consider(
        self, data: PairData, side: Side, local: int, decided_at: pd.Timestamp
    ) -> Position | None:
        spec = self.plan.strategy.spec
        if any(p.pair == data.pair for p in self._positions):
            return None
        if cooling_down(self.plan, self._last_exit, self._tag_exit, data, local, decided_at):
            return None
        if data.blocked is not None and data.blocked[local]:
            return None
        limit = int(data.limit[local]) if data.limit is not None else spec.portfolio.max_open_trades
        if len(self._positions) >= limit:
            return None
        # The stake before the rules reading the portfolio: either refusal leaves the pair
        # alone, and half the entries a backtest considers have no stake, which costs less
        # to find than a correlation with every pair held.
        expected = float(data.prices["close"][local])  # the price an order placed now expects
        stake = self._stake(data, side, local, expected)
        if stake <= 0:
            return None
        rules = self._portfolio_rules()
        if rules and portfolio_refuses(
            self.plan, rules, self._ledger(), data, side, local, decided_at
        ):
            return None
        if data.rules is not None:
            amount = stake * leverage(self.plan, data, local) / expected
            if tradable(data.rules, amount, expected) <= 0:
                self.below_minimum += 1
                return None
        signal_time = moment_at(data.signals.index, local)
        position = Position(self._next_id, data.pair, side, signal_time, stake)
        self._next_id += 1
        self._positions.append(position)
        return position

    def _stake(self, data: PairData, side: Side, signal: int, entry_price: float) -> float:
        kelly = self.plan.strategy.spec.sizing.kelly
        history = self._closed_profits.get(data.pair, [])
        if kelly is not None and kelly.per == "strategy":
            history = self._all_profits
        committed = sum(p.stake for p in (*self._positions, *self._unsettled))
        equity = self.starting_balance + self.realized
        sign = 1.0 if side == "long" else -1.0
        taken = self._stake_rule.get((data.pair, side))
        known = taken[1].get(signal) if taken is not None and taken[0] is data else None
        return entry_stake(
            self.plan, data, signal, entry_price, sign, equity, committed, history, known
        )

    # -- resolving ---------------------------------------------------------------------------
    def resolve(self, position: Position, data: PairData, final: bool) -> None:
        """Play the position forward over the candles `data` holds (all of them if `final`)."""
        if position.cut is not None:
            data = with_cut(data, position.side, *position.cut)
        index = data.signals.index
        signal = position_at(index, position.signal_time)
        if position.state == "pending":
            entry = entry_fill(self.fills, data.prices, signal, position.side)
            if entry[0] == "waiting":
                return
            if entry[0] == "expired":
                position.state = "done"
                position.release = position.settle = later(
                    moment_at(index, entry[1]), self.timeframe
                )
                return
            self._open_trade(position, data, signal, moment_at(index, entry[1]), entry[2])
        if position.state == "open":
            self._follow(position, data, final)

    def _open_trade(
        self,
        position: Position,
        data: PairData,
        signal: int,
        entry_time: pd.Timestamp,
        price: float,
        filled: Fill | None = None,
    ) -> Trade:
        """The trade an entry opened at `price`; `filled` is the fill as the exchange made
        it (live), else the fill model's at the open of `entry_time`'s candle."""
        sign = 1.0 if position.side == "long" else -1.0
        levered = leverage(self.plan, data, signal)
        amount = position.stake * levered / price if filled is None else filled.amount
        stake = position.stake
        if filled is None and data.rules is not None and data.rules.amount_step > 0:
            # The exchange takes whole steps only: the trade's stake is what that amount
            # costs. The slot keeps what was set aside at the decision, as a live bot's does
            # until its order fills, so later decisions size alike in a backtest and live.
            wanted, amount = amount, truncate_amount(amount, data.rules.amount_step)
            stake *= amount / wanted
        tick = data.rules.tick_size if data.rules is not None else 0.0
        maintenance = self.fills.maintenance_margin  # None: spot, nothing to liquidate
        regime = data.signals.regime
        index = data.signals.index
        trade = Trade(
            id=self._next_trade_id,
            pair=data.pair,
            side=position.side,
            regime=self.regimes[int(regime[signal])] if regime is not None else None,
            signal_time=moment_at(index, signal),
            entry_time=entry_time,
            entry_price=price,
            amount=amount,
            stake=stake,
            leverage=levered,
            initial_stop=round_stop(initial_stop(self.plan, data, signal, price, sign), tick, sign),
            tags=entry_tags(self.plan, data.signals, signal),
            margin=None if maintenance is None else stake,
            liquidation_price=None
            if maintenance is None
            else liquidation_price(price, levered, maintenance, sign),
        )
        fee = self.fills.fee_on(price, amount)
        trade.fills.append(filled or Fill(entry_time, price, amount, fee, "entry"))
        self.trades.append(trade)
        self._next_trade_id += 1
        position.trade, position.state = trade, "open"
        return trade

    def _follow(self, position: Position, data: PairData, final: bool) -> None:
        trade = position.trade
        assert trade is not None
        index = data.signals.index
        path = path_of(self.plan, self.fills, data, trade, final)
        closing, skipped = closing_fills(self.fills, path.fills, index, trade, data.rules)
        trade.fills[1:] = closing
        self._skipped_exits[trade.id] = skipped
        trade.stop = path.final_stop
        # fsum: exact, so a replay that sees fewer candles gets the very same number
        trade.funding = math.fsum(funding_payments(trade, index, data.prices)[1])
        if path.closing_decided_at is not None:  # fills at the next open; the slot is free now
            position.release = later(moment_at(index, path.closing_decided_at), self.timeframe)
            self._exited(trade, position.release)  # that open: the cooldown's start
        if path.open_at_end and not final:
            return
        last = path.fills[-1]
        closing = trade.fills[1:]
        sold = sum(f.amount for f in closing)
        trade.exit_price = sum(f.price * f.amount for f in closing) / sold if sold else None
        trade.exit_reason, trade.exit_time = last.reason, moment_at(index, last.index)
        position.state = "done"
        self._exited(trade, trade.exit_time)  # the pair is busy until then anyway
        if path.open_at_end:  # end of the data: nothing frees or settles before it
            position.release = position.settle = NEVER
            return
        at_open = last.market and last.reason not in (STOP_LOSS, TRAILING_STOP)
        position.settle = later(trade.exit_time, self.timeframe)
        position.release = trade.exit_time if at_open else position.settle

    def _exited(self, trade: Trade, at: pd.Timestamp) -> None:
        """Start the cooldowns: the pair's, and each of the trade's tags' on that pair."""
        self._last_exit[trade.pair] = at
        for tag in trade.tags or ("",):
            self._tag_exit[(trade.pair, tag)] = at

    @property
    def skipped_exits(self) -> int:
        """Take-profits not sent because they were worth less than the exchange's minimum."""
        return sum(self._skipped_exits.values())

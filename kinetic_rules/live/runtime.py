"""The live runtime: one closed candle at a time, the same portfolio the backtest runs.

At each close: every open position is played forward over the newest candle (its entry
order fills or expires, stops and exits happen), then the entries decided at this close
take their slots. The portfolio, the fill model and the trade paths are the backtest's
own, so a replay of recorded candles gives the backtest's trades — the test that lets
users trust both. What the runtime adds is the outside world: a trade store that keeps
every change (so a restart resumes), and notifiers that tell a human. With an executor
attached (real orders, or paper orders on the live order book) the exchange makes the
fills instead of the fill model, while the decisions stay the backtest's.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from kinetic_rules.compile.plan import Plan
from kinetic_rules.engine.fills import fill_model
from kinetic_rules.engine.model import Side, Trade
from kinetic_rules.engine.orders import Event, EventKind
from kinetic_rules.engine.portfolio import Candidate, PairData, Portfolio, candidate
from kinetic_rules.live.events import (
    CloseMoment,
    CloseObserver,
    LiveState,
    Notifier,
    OpenPosition,
)
from kinetic_rules.live.manual_close import ManualClose
from kinetic_rules.live.monitor import MonitorExit, close_on_paper, monitor_exits
from kinetic_rules.live.source import MarketSource
from kinetic_rules.live.tally import TradeTally
from kinetic_rules.timeframes import timeframe_seconds

if TYPE_CHECKING:
    from kinetic_rules.live.executor import Executor

_REPORTED_CLOSED = -1
log = logging.getLogger("kinetic_rules.live")


@dataclass(frozen=True)
class Pause:
    """New entries paused after the close `after` (None: from the start) until the close
    `until` included (None: still paused)."""

    after: pd.Timestamp | None
    until: pd.Timestamp | None


class TradeSink(Protocol):
    """Where trade changes go as they happen (the persistence layer implements it)."""

    def trade_changed(self, trade: Trade, fills_known: int, closed: bool) -> None: ...


@dataclass
class StepReport:
    time: pd.Timestamp  # the close just processed
    opened: list[Trade] = field(default_factory=list)
    closed: list[Trade] = field(default_factory=list)
    decided: int = 0  # entries decided at this close (their orders are placed)


class Runtime(ManualClose):
    def __init__(
        self,
        plan: Plan,
        source: MarketSource,
        notifiers: list[Notifier] | None = None,
        sink: TradeSink | None = None,
    ) -> None:
        spec = plan.strategy.spec
        self.plan = plan
        self.source = source
        self.step_length = pd.Timedelta(seconds=timeframe_seconds(plan.timeframe))
        self.portfolio = Portfolio(
            plan,
            fill_model(plan),
            spec.backtest.starting_balance,
            self.step_length,
            [name for name, _ in plan.strategy.regime],
        )
        self.notifiers = notifiers or []
        self.sink = sink
        self._known: dict[int, int] = {}  # trade id -> fills already reported
        self.executor: Executor | None = None
        self._fail_safe = False  # the broker's, as last told
        self._stop = threading.Event()
        # When a person paused new entries: (after close, until close) — entries are not
        # made at closes in between; until None: paused still. Exits go on regardless.
        self._pauses: list[Pause] = []
        self.observers: list[CloseObserver] = []  # the dashboard, watching each close
        self._step: int | None = None  # the last close processed
        # That close's view of the market, kept for the dashboard's reads until the next
        # close: (the source it came from, its step, its time, the view).
        self._close_view: tuple[MarketSource, int, pd.Timestamp, dict[str, PairData]] | None
        self._close_view = None
        self._tally = TradeTally()  # open trades and closed profit, kept up as they change
        self._canceling: dict[int, str] = {}  # entries a close must cancel again (manual_close)
        # A paper session on candles keeps a person's closes in its journal before they are
        # made, as it keeps the monitor's: a restart replays candles, and makes them again.
        self.note_closes: Callable[[list[MonitorExit], pd.Timestamp], None] | None = None
        self._lock = threading.Lock()  # chat commands read state from another thread

    # -- the loop ------------------------------------------------------------------------
    def step(self, step: int) -> StepReport:
        """Process the close of timeline candle `step`."""
        with self._lock:
            view = self.source.as_of(step)
            closed_at = self.source.timeline[step] + self.step_length
            report = StepReport(closed_at)
            executor = self.executor
            if executor is not None:
                executor.on_close(view, closed_at)
                self._cancel_again(view, closed_at)
                self._watch_broker(closed_at)
            else:
                for position in self.portfolio.unresolved():
                    self.portfolio.resolve(position, view[position.pair], final=False)
            closing = self.portfolio.observe(closed_at, view, play=executor is None)
            if executor is not None and closing:
                executor.close(closing, view, closed_at)
            taken = []
            if self._may_enter(closed_at):
                ranked = _ranked(self.plan, view, step)
                taken = self.portfolio.decide(closed_at, ranked)
                report.decided = len(taken)
                if executor is not None:
                    executor.submit(taken, view, closed_at)
            else:
                self.portfolio.advance(closed_at)
            self._step = step
            self._close_view = (self.source, step, closed_at, view)
            self._report(report)
            moment = CloseMoment(
                closed_at, self.plan, view, step, [(p.pair, p.side, p.id) for p in taken],
                self._paused_at(closed_at),
                self._stop.is_set(), bool(executor and executor.broker_in_fail_safe),
            )  # fmt: skip
        self._tell_observers(moment)  # outside the lock: an observer may read the state
        return report

    def _may_enter(self, closed_at: pd.Timestamp) -> bool:
        if self._stop.is_set() or self._paused_at(closed_at):
            return False
        return not (self.executor is not None and self.executor.broker_in_fail_safe)

    def _tell_observers(self, moment: CloseMoment) -> None:
        for observer in self.observers:
            try:
                observer.closed(moment)
            except Exception:  # an observer failing must not stop trading
                log.exception("a close observer failed")

    def poll(self, step: int, now: pd.Timestamp) -> StepReport:
        """Between closes, with an executor: follow the orders (fills, timeouts, stops)."""
        with self._lock:
            report = StepReport(now)
            if self.executor is not None:
                view = self.source.as_of(step)
                self.executor.poll(view, now)
                self._cancel_again(view, now)
                self.portfolio.advance(now)
                self._watch_broker(now)
            self._report(report)
            return report

    def monitor(
        self,
        step: int,
        now: pd.Timestamp,
        prices: dict[str, float],
        note: Callable[[list[MonitorExit]], None] | None = None,
        marks: dict[str, float] | None = None,
    ) -> list[MonitorExit]:
        """Between closes: close what the ticker prices say must not wait for the close
        (live/monitor.py). `note` keeps the exits before they are made (a paper session's
        journal, so that a restart makes them again at the same moment)."""
        with self._lock:
            view = self.source.as_of(step)
            last_close = self.source.timeline[step] + self.step_length
            executor = self.executor
            exits = monitor_exits(
                self.portfolio, view, prices, last_close,
                stops=not self.plan.strategy.spec.orders.stoploss_on_exchange,
                liquidations=executor is None,  # an exchange liquidates by itself
                skip=executor.closing() if executor is not None else (), marks=marks,
                stop_on_mark=self.plan.strategy.spec.orders.stop_trigger == "mark",
            )  # fmt: skip
            if exits and note is not None:
                note(exits)
            for exit in exits:
                log.warning(
                    "monitor: %s %s closes at %.6g between closes (%s)",
                    exit.position.pair, exit.position.side, exit.price, exit.reason,
                )  # fmt: skip
            if executor is not None and exits:
                executor.close_now(exits, now)
            elif executor is None:
                for exit in exits:
                    close_on_paper(self.portfolio, self.portfolio.fills, exit, now)
            if exits:
                self._report(StepReport(now))
            return exits

    def redo_monitor_exit(self, trade_id: int, reason: str, price: float, at: pd.Timestamp) -> bool:
        """A paper session resuming: make again an exit the monitor made before the crash."""
        with self._lock:
            position = next(
                (p for p in self.portfolio.unresolved() if p.trade and p.trade.id == trade_id),
                None,
            )
            if position is None:
                return False
            exit = MonitorExit(position, reason, price)
            close_on_paper(self.portfolio, self.portfolio.fills, exit, at)
            self._report(StepReport(at))
            return True

    def attach(self, executor: Executor, restored: list[Trade]) -> None:
        """Trade for real: the executor's orders make the fills, not the fill model.
        `restored` trades were reported before a restart: not announced again."""
        self.executor = executor
        for trade in restored:
            self._known[trade.id] = 1  # the store has it: fills it may lack are re-sent

    def finish(self, step: int) -> StepReport:
        """The data has ended (replay): close what is open at the last close, as a backtest does."""
        with self._lock:
            view = self.source.as_of(step)
            report = StepReport(self.source.timeline[step] + self.step_length)
            for position in self.portfolio.unresolved():
                self.portfolio.resolve(position, view[position.pair], final=True)
            self.portfolio.advance(pd.Timestamp.max.tz_localize("UTC"))
            self._report(report)
            return report

    def request_stop(self, who: str = "") -> None:
        self._stop.set()

    def pause(self) -> None:
        """No new entries from the next close on; open trades go on as before."""
        with self._lock:
            if not self.paused:
                self._pauses.append(Pause(self._last_close(), None))

    def resume(self) -> None:
        """Entries again from the next close on."""
        with self._lock:
            if self.paused:
                after = self._pauses[-1].after
                until = self._last_close()
                if until is None:  # no close yet in this process: no close was skipped
                    self._pauses.pop()
                else:
                    self._pauses[-1] = Pause(after, until)

    @property
    def paused(self) -> bool:
        return bool(self._pauses) and self._pauses[-1].until is None

    def pauses(self) -> list[Pause]:
        """Every pause so far, to journal: a resumed session replaying its closes must
        skip the entries it skipped before."""
        return list(self._pauses)

    def restore_pauses(self, pauses: list[Pause]) -> None:
        """The pauses of this session before a restart (call before replaying a close)."""
        with self._lock:
            self._pauses = list(pauses)

    def _paused_at(self, closed_at: pd.Timestamp) -> bool:
        return any(
            (p.after is None or p.after < closed_at) and (p.until is None or closed_at <= p.until)
            for p in self._pauses
        )

    def _last_close(self) -> pd.Timestamp | None:
        if self._step is None:
            return None
        return self.source.timeline[self._step] + self.step_length

    def state(self, trades: bool = True) -> LiveState:
        """The session at its last close, copied: safe to read on another thread
        (`trades` False: the open positions only, cheaper on a long session)."""
        with self._lock:
            time, view = self._at_last_close()
            positions = []
            for trade in self._tally.open_trades(self.portfolio.trades):
                data = view.get(trade.pair)
                price = float(data.prices["close"][-1]) if data is not None else None
                positions.append(_open_position(copy.deepcopy(trade), price))
            return LiveState(
                time,
                positions,
                [copy.deepcopy(t) for t in self.trades()] if trades else [],
                self.portfolio.starting_balance,
                self._tally.realized,
                self.paused,
                self._stop.is_set(),
                self._fail_safe,
            )

    def _at_last_close(self) -> tuple[pd.Timestamp | None, dict[str, PairData]]:
        """The last close's time and every pair's data then: the close's own view while
        the source is the one it came from (no pair's view is built again)."""
        if self._step is None:
            return None, {}
        kept = self._close_view
        if kept is not None and kept[0] is self.source and kept[1] == self._step:
            return kept[2], kept[3]
        return self._last_close(), self.source.as_of(self._step)

    def find_trades(self, keep: Callable[[Trade], bool], limit: int) -> list[Trade]:
        """Copies of up to `limit` trades `keep` accepts, newest (highest id) first: a
        page of a long history without copying all of it."""
        with self._lock:
            found: list[Trade] = []
            for trade in sorted(self.portfolio.trades, key=lambda t: t.id, reverse=True):
                if len(found) >= limit:
                    break
                if keep(trade):
                    found.append(copy.deepcopy(trade))
            return found

    def market(self) -> dict[str, PairData]:
        """Every pair's data at the last close (for the dashboard's candle chart)."""
        with self._lock:
            return dict(self._at_last_close()[1])

    def announce(
        self,
        kind: EventKind,
        time: pd.Timestamp,
        message: str,
        data: dict[str, object] | None = None,
    ) -> None:
        """Tell the notifiers something that is not about one trade (e.g. fail-safe)."""
        event = Event(kind, time, message, data or {})
        for notifier in self.notifiers:
            notifier.notify(event)

    # -- Controls (chat commands; called from the notifier's thread) ---------------------
    def status_text(self) -> str:
        with self._lock:
            open_trades = [t for t in self.portfolio.trades if t.exit_time is None]
            if not open_trades:
                return "No open trades."
            rows = [
                f"{t.pair} {t.side}: entry {t.entry_price:.6g}, stop {t.stop or t.initial_stop:.6g}"
                for t in open_trades
            ]
            return "\n".join(rows)

    def profit_text(self) -> str:
        with self._lock:
            closed = [t for t in self.portfolio.trades if t.exit_time is not None]
            total = sum(t.profit for t in closed)
            wins = sum(t.is_winner for t in closed)
            currency = self.plan.strategy.spec.market.stake_currency
            return f"{len(closed)} closed trades, {wins} winners, profit {total:+.2f} {currency}"

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def trades(self) -> list[Trade]:
        return sorted(self.portfolio.trades, key=lambda t: (t.entry_time, t.pair))

    # -- internals -----------------------------------------------------------------------
    def _watch_broker(self, now: pd.Timestamp) -> None:
        """Tell a human when the exchange's fail-safe starts and ends (the broker logs it)."""
        assert self.executor is not None
        active = self.executor.broker_in_fail_safe
        if active == self._fail_safe:
            return
        self._fail_safe = active
        if active:
            message = "FAIL-SAFE: the exchange is out of reach; no new entries, stops stay"
            self.announce("fail_safe_entered", now, message)
        else:
            self.announce("fail_safe_left", now, "The exchange answers again; entries resume")

    def _report(self, report: StepReport) -> None:
        """Tell the sink and the notifiers what changed since the last close."""
        for trade in self.portfolio.trades:
            known = self._known.get(trade.id)
            if known == _REPORTED_CLOSED:
                continue
            fills, closed = len(trade.fills), trade.exit_time is not None
            if known is None:
                report.opened.append(trade)
                self._emit("trade_opened", report.time, _opened_text(trade), trade)
            if closed:
                report.closed.append(trade)
                self._emit("trade_closed", report.time, _closed_text(trade), trade)
            if self.sink is not None and (known is None or closed or fills != known):
                self.sink.trade_changed(trade, fills, closed)
            self._known[trade.id] = _REPORTED_CLOSED if closed else fills
        if self.executor is not None:
            self.executor.reported(report.time)

    def _report_at(self, at: pd.Timestamp) -> None:
        self._report(StepReport(at))

    def _emit(self, kind: EventKind, time: pd.Timestamp, message: str, trade: Trade) -> None:
        data: dict[str, object] = {"pair": trade.pair, "side": trade.side, "trade": trade.id}
        data["stake_currency"] = self.plan.strategy.spec.market.stake_currency
        if trade.exit_time is not None:
            data.update(profit=trade.profit, profit_ratio=trade.profit_ratio)
        event = Event(kind, time, message, data)
        for notifier in self.notifiers:
            notifier.notify(event)


def _ranked(plan: Plan, view: dict[str, PairData], step: int) -> list[tuple[PairData, Side, int]]:
    """This close's entry signals, in the backtest's priority order."""
    rows: list[Candidate] = []
    for order, data in enumerate(view.values()):
        if not len(data.timeline_index) or data.timeline_index[-1] != step:
            continue  # the pair has no candle at this close
        local = len(data.timeline_index) - 1
        if local < data.tradable_from or not data.allowed[local]:
            continue
        for side, signal in data.entries.items():
            if signal[local]:
                rows.append(candidate(plan, data, order, side, local))
    rows.sort(key=lambda r: (r[0], r[1], r[2], r[4]))
    return [(data, side, local) for _, _, _, data, side, local in rows]


def _opened_text(trade: Trade) -> str:
    return (
        f"Opened {trade.pair} {trade.side} at {trade.entry_price:.6g}, stake {trade.stake:.2f}, "
        f"stop {trade.initial_stop:.6g}"
    )


def _closed_text(trade: Trade) -> str:
    return (
        f"Closed {trade.pair} {trade.side} at {trade.exit_price or 0:.6g} ({trade.exit_reason}): "
        f"{trade.profit:+.2f} ({trade.profit_ratio:+.2%})"
    )


def _open_position(trade: Trade, price: float | None) -> OpenPosition:
    """What an open trade would make if closed at `price`: its profit so far (take-profits,
    fees, funding) plus the rest of its amount at that price."""
    closing = [f for f in trade.fills if f.reason != "entry"]
    left = trade.amount - sum(f.amount for f in closing)
    unrealized = None
    if price is not None and trade.fills:
        sign = 1.0 if trade.side == "long" else -1.0
        unrealized = trade.profit + sign * (price - trade.entry_price) * left
    stop = trade.stop if trade.stop is not None else trade.initial_stop
    return OpenPosition(trade, price, unrealized, len(closing), stop != trade.initial_stop)

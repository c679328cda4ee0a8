"""A person closing trades (the dashboard, Telegram): cancel the entry orders still
waiting to fill, then close the open trades, so that nothing is left open behind the
close. Part of the live Runtime, which supplies the attributes and methods below."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from kinetic_rules.engine.portfolio import PairData, Portfolio
from kinetic_rules.live.events import CanceledEntry, Closing
from kinetic_rules.live.monitor import MonitorExit, close_on_paper
from kinetic_rules.live.source import MarketSource

if TYPE_CHECKING:
    from kinetic_rules.live.executor import Executor

log = logging.getLogger("kinetic_rules.live")


class ManualClose:
    source: MarketSource
    step_length: pd.Timedelta
    portfolio: Portfolio
    executor: Executor | None
    _lock: threading.Lock
    _step: int | None
    # Entry orders a person's close could not cancel yet (the exchange out of reach):
    # position id -> the exit reason its trade gets if the order fills meanwhile.
    _canceling: dict[int, str]
    note_closes: Callable[[list[MonitorExit], pd.Timestamp], None] | None

    def _report_at(self, at: pd.Timestamp) -> None:
        """Hand what changed to the trade store and the notifiers."""
        raise NotImplementedError

    def close_positions(
        self, trade_ids: set[int] | None, reason: str, now: pd.Timestamp | None = None
    ) -> Closing:
        """A person closing open trades (`trade_ids` None: all of them). First the entry
        orders still waiting to fill on their pairs (None: on every pair) are canceled,
        so nothing opens behind the close; what filled of one before its cancel is a
        trade closed with the rest. Then each trade closes: on paper at its pair's last
        close, at that close's time; with an executor, at market (reduce-only on futures)
        on the exchange, sent at `now`."""
        with self._lock:
            if self._step is None:
                return Closing()
            view = self.source.as_of(self._step)
            last_close = self.source.timeline[self._step] + self.step_length
            at = last_close
            if self.executor is not None and now is not None:
                at = max(now, last_close)
            held = [
                p for p in self.portfolio.unresolved()
                if p.trade is not None and p.trade.exit_time is None
                and (trade_ids is None or p.trade.id in trade_ids)
            ]  # fmt: skip
            canceled = []
            if trade_ids is None or held:  # closing one trade cancels entries on its pair
                pairs = None if trade_ids is None else {p.pair for p in held}
                canceled = self._cancel_entries(pairs, view, at, reason)
            closing = {p.id for p in held} | {c.position for c in canceled}
            exits = [
                MonitorExit(p, reason, float(view[p.pair].prices["close"][-1]))
                for p in self.portfolio.unresolved()
                if p.id in closing and p.trade is not None and p.trade.exit_time is None
                and p.pair in view
            ]  # fmt: skip
            if self.executor is not None:
                self.executor.close_now(exits, at)
            else:
                if exits and self.note_closes is not None:
                    self.note_closes(exits, at)
                for exit in exits:
                    close_on_paper(self.portfolio, self.portfolio.fills, exit, at)
            if exits or canceled:
                self._report_at(at)
            trades = [exit.position.trade for exit in exits if exit.position.trade is not None]
            return Closing(trades, canceled)

    def _cancel_entries(
        self, pairs: set[str] | None, view: dict[str, PairData], at: pd.Timestamp, reason: str
    ) -> list[CanceledEntry]:
        """Cancel the entries waiting to fill on `pairs` (None: every pair): on the
        exchange (or the paper book) with an executor, else in the portfolio, where a
        pending entry fills only at the next close."""
        waiting = {
            p.id: p for p in self.portfolio.unresolved()
            if p.trade is None and p.state == "pending" and (pairs is None or p.pair in pairs)
        }  # fmt: skip
        if not waiting:
            return []
        if self.executor is None:
            for position in waiting.values():
                self.portfolio.close_filled(position, at)
            return [CanceledEntry(p.pair, p.side, p.id, 0.0) for p in waiting.values()]
        canceled = []
        for ticket, settled in self.executor.cancel_entries(set(waiting), view, at):
            filled = ticket.trade.amount if ticket.trade is not None else 0.0
            if not settled:
                self._canceling[ticket.position_id] = reason
                log.warning(
                    "%s: the entry order could not be canceled yet; trying again", ticket.pair
                )
            canceled.append(
                CanceledEntry(ticket.pair, ticket.side, ticket.position_id, filled, not settled)
            )
        return canceled

    def _cancel_again(self, view: dict[str, PairData], now: pd.Timestamp) -> None:
        """Entries a close could not cancel: cancel them again, and close at once a trade
        one of them opened meanwhile."""
        if not self._canceling or self.executor is None:
            return
        positions = {p.id: p for p in self.portfolio.unresolved()}
        exits = []
        for position_id, reason in list(self._canceling.items()):
            position = positions.get(position_id)
            trade = position.trade if position is not None else None
            if position is None or (trade is not None and trade.exit_time is not None):
                del self._canceling[position_id]
            elif trade is not None and position.pair in view:
                del self._canceling[position_id]
                exits.append(
                    MonitorExit(position, reason, float(view[position.pair].prices["close"][-1]))
                )
        waiting = {i for i in self._canceling if positions[i].trade is None}
        for ticket, settled in self.executor.cancel_entries(waiting, view, now) if waiting else []:
            if settled:
                reason = self._canceling.pop(ticket.position_id)
                position = positions[ticket.position_id]
                if position.trade is not None and position.pair in view:
                    price = float(view[position.pair].prices["close"][-1])
                    exits.append(MonitorExit(position, reason, price))
        if exits:
            self.executor.close_now(exits, now)

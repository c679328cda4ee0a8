"""A trading session between candle closes: it follows the orders (real orders: every
`poll_seconds`) and watches the open positions (every `monitor_every` seconds) until the
next close is due; the close always wins. A paper session on candles keeps the exits the
monitor (or a person) makes in its journal before making them, since a restart that
replays the candles cannot read them there, and makes them again when it resumes.

A part of the TradingSession (live/session.py), which supplies the attributes and
methods below.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd

from kinetic_rules.compile.plan import Plan
from kinetic_rules.engine.portfolio_values import portfolio_rules
from kinetic_rules.errors import ExchangeError
from kinetic_rules.live.monitor import MonitorExit, TickerReader, needs_ticker, watched
from kinetic_rules.live.runtime import Runtime

if TYPE_CHECKING:
    from kinetic_rules.live.session import Journal

log = logging.getLogger("kinetic_rules.live")


class BetweenCloses:
    """What the TradingSession does from one close to the next."""

    plan: Plan
    clock: Callable[[], pd.Timestamp]
    sleep: Callable[[float], None]
    settle_seconds: float
    journal: Journal | None
    runtime: Runtime | None
    attach: Callable[[Runtime], None] | None
    poll_seconds: float
    monitor_every: float
    tickers: TickerReader | None
    _last_close: pd.Timestamp | None

    @property
    def _base(self) -> pd.Timedelta:
        raise NotImplementedError

    @property
    def _journal_key(self) -> str:
        raise NotImplementedError

    def _until_next_close(self) -> float:
        raise NotImplementedError

    def _between_closes(self) -> None:
        """Until the next close: follow the orders every `poll_seconds` (with an executor)
        and watch the open positions every `monitor_every` seconds. The close always wins:
        nothing here starts once the next close is due."""
        assert self.runtime is not None
        poll = self.poll_seconds if self.runtime.executor is not None else math.inf
        watch = self.monitor_every if self._monitoring() else math.inf
        next_poll, next_watch = poll, watch  # seconds from now
        while True:
            wait = self._until_next_close()
            due = [next_poll] if next_poll < wait else []
            if next_watch < wait - self.settle_seconds:
                due.append(next_watch)
            if not due:
                return
            gap = min(due)
            self.sleep(gap)
            next_poll, next_watch = next_poll - gap, next_watch - gap
            if next_poll <= 0:
                self._poll()
                next_poll = poll
            if next_watch <= 0:
                self._watch()
                next_watch = watch

    def _monitoring(self) -> bool:
        """Is there anything for the monitor to watch in this gap? The trades open now;
        with real orders also an entry order that may fill at any poll (on candles,
        trades open at closes only)."""
        assert self.runtime is not None
        if self.monitor_every <= 0 or self.tickers is None:
            return False
        if self.runtime.executor is not None and any(
            p.trade is None for p in self.runtime.portfolio.unresolved()
        ):
            close_all, stops, _ = self._checks()
            return close_all or stops
        return bool(self._watched_pairs())

    def _checks(self) -> tuple[bool, bool, bool]:
        """What the monitor checks: portfolio close-alls, stops, liquidations."""
        assert self.runtime is not None
        spec = self.plan.strategy.spec
        close_all = bool(portfolio_rules(self.plan).close_all)
        return close_all, not spec.orders.stoploss_on_exchange, self.runtime.executor is None

    def _watched_pairs(self) -> set[str]:
        """The pairs whose tickers a look needs now."""
        assert self.runtime is not None
        if self._last_close is None:
            return set()
        close_all, stops, liquidations = self._checks()
        return {
            p.pair
            for p in watched(self.runtime.portfolio, self._last_close)
            if needs_ticker(p, close_all=close_all, stops=stops, liquidations=liquidations)
        }

    def _watch(self) -> None:
        """One look of the position monitor (live/monitor.py): the tickers of the pairs
        held, and the exits they call for. Exchange trouble: logged, tried next time."""
        assert self.runtime is not None and self.tickers is not None
        last_close = self._last_close
        source = self.runtime.source
        if last_close is None or not len(source.timeline):
            return
        next_close = last_close + self._base
        pairs = self._watched_pairs()
        if not pairs or self.clock() >= next_close:
            return
        try:
            looks = self.tickers.looks(pairs)
        except ExchangeError as problem:
            log.warning("monitor: tickers could not be read (%s); trying again next look", problem)
            return
        now = self.clock()
        if now >= next_close:  # the close is due: it decides, not a ticker from before it
            return
        note = partial(self._note_monitored, now=now) if self.attach is None else None
        try:
            self.runtime.monitor(len(source.timeline) - 1, now, looks.last, note, looks.mark)
        except ExchangeError as problem:
            log.warning("monitor: exits could not be sent (%s); trying again next look", problem)

    # -- exits no candle shows (the monitor's, a person's) in a paper session's journal ---
    @property
    def _monitor_key(self) -> str:
        return f"{self._journal_key}:monitor"

    def _note_monitored(self, exits: list[MonitorExit], now: pd.Timestamp) -> None:
        """Keep the exits before they are made: what a restart cannot read from candles."""
        if self.journal is None:
            return
        text = self.journal.state(self._monitor_key)
        noted = json.loads(text) if text else []
        for exit in exits:
            assert exit.position.trade is not None
            noted.append([now.isoformat(), exit.position.trade.id, exit.reason, exit.price])
        self.journal.set_state(self._monitor_key, json.dumps(noted))

    def _monitored(self) -> list[tuple[pd.Timestamp, int, str, float]]:
        text = self.journal.state(self._monitor_key) if self.journal is not None else None
        return [
            (pd.Timestamp(at), int(trade), str(reason), float(price))
            for at, trade, reason, price in (json.loads(text) if text else [])
        ]

    def _redo_monitored(
        self, monitored: list[tuple[pd.Timestamp, int, str, float]], before: pd.Timestamp | None
    ) -> None:
        """Resuming: the monitor's exits made before the close `before` (None: all left)."""
        assert self.runtime is not None
        while monitored and (before is None or monitored[0][0] < before):
            at, trade, reason, price = monitored.pop(0)
            if not self.runtime.redo_monitor_exit(trade, reason, price, at):
                log.warning("monitor: trade %d not open again at %s; exit not redone", trade, at)

    def _poll(self) -> None:
        """Between closes: how the orders stand (the exchange may be down: next time)."""
        assert self.runtime is not None
        source = self.runtime.source
        try:
            self.runtime.poll(len(source.timeline) - 1, self.clock())
        except ExchangeError as problem:
            if not problem.temporary:
                raise
            log.warning("orders could not be checked (%s); trying again shortly", problem)

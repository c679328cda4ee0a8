"""The runtime's trade changes, written to the store as they happen.

Each change is its own transaction, so a crash loses at most the change in flight;
opening a trade that is already stored returns its id, so a restart that replays a
candle never duplicates one.
"""

from __future__ import annotations

import logging

from kinetic_rules.engine.model import Trade
from kinetic_rules.engine.orders import Event
from kinetic_rules.errors import KineticError
from kinetic_rules.persist.store import TradeStore

log = logging.getLogger("kinetic_rules.persist")


class StoreSink:
    """Implements the live runtime's TradeSink on a TradeStore."""

    def __init__(self, store: TradeStore, *, strategy: str, mode: str) -> None:
        self.store = store
        self.strategy = strategy
        self.mode = mode
        self._ids: dict[int, int] = {}  # the portfolio's trade id -> the database's
        self._written: dict[int, int] = {}  # fills already stored per trade
        self._funding: dict[int, float] = {}  # funding already stored per trade

    def trade_changed(self, trade: Trade, fills_known: int, closed: bool) -> None:
        if trade.id not in self._ids:  # first sight: the trade with all it has so far
            self._ids[trade.id] = self.store.open_trade(
                trade, strategy=self.strategy, mode=self.mode
            )
            # It may have been stored before a restart, without its latest fills: adding a
            # fill the store holds changes nothing, so all of them are offered below.
            self._written[trade.id] = 1
        stored, fresh = self._ids[trade.id], trade.fills[self._written[trade.id] :]
        if trade.funding != self._funding.get(trade.id, 0.0):  # before a close uses it
            self.store.update_funding(stored, trade.funding)
            self._funding[trade.id] = trade.funding
        last = fresh[-1] if closed and fresh else None
        for fill in fresh[:-1] if last is not None else fresh:
            self.store.add_fill(stored, fill)
        if closed and trade.exit_time is not None and trade.exit_price is not None:
            self.store.close_trade(
                stored,
                exit_time=trade.exit_time,
                exit_price=trade.exit_price,
                exit_reason=trade.exit_reason or "",
                stop=trade.stop,
                fill=last,  # the closing fill and the close: one transaction
            )
        elif trade.stop is not None:
            self.store.update_stop(stored, trade.stop, trade.fills[-1].time)
        self._written[trade.id] = len(trade.fills)


class EventLog:
    """A notifier that keeps every event in the trade store's event log."""

    def __init__(self, store: TradeStore) -> None:
        self.store = store

    def notify(self, event: Event) -> None:
        try:
            self.store.log_event(event)
        except KineticError as problem:  # a notifier never stops trading
            log.warning("could not record event %s: %s", event.kind, problem)

    def close(self) -> None:
        """The store belongs to the sink; closing it is the caller's business."""

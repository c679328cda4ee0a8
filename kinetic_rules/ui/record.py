"""The dashboard's record of a running session in its trade store, so `kinetic-rules ui
--db` shows a stopped or remote session as the running one showed it: the decision
feed, the equity at each close, the candles of each pair (the last `KEEP_CANDLES`) and
its open positions valued at the last close.

The watch hands each close here before it shows it; a store that fails is logged and
the session trades on (the record is for people to read, the trades are kept apart).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from kinetic_rules.errors import KineticError
from kinetic_rules.live.events import CloseMoment, OpenPosition
from kinetic_rules.persist.feed import CloseRecord, Retention, StoredCandle, StoredDecision
from kinetic_rules.persist.store import TradeStore
from kinetic_rules.ui.models import DecisionOut

if TYPE_CHECKING:
    from kinetic_rules.ui.watch import PairState

log = logging.getLogger("kinetic_rules.ui")
KEEP_CANDLES = 1500  # per pair: what the page's chart shows
WRITE_EVERY_S = 1.0  # closes nobody is shown yet are written at least this often
MAX_WAITING = 10_000  # closes kept for another try while the store fails


class FeedRecorder:
    """Writes each close's record to the trade store, on the runtime's thread.

    `immediate`: a page shows each close as it comes, so each is written first, in its
    own transaction. Otherwise closes that come faster than `every` seconds apart (a
    replay at full speed) are written together, at least every `every` seconds and when
    the session ends (`flush`): one transaction per close would cost a disk sync each."""

    def __init__(
        self,
        store: TradeStore,
        keep: Retention,
        step: pd.Timedelta,
        *,
        immediate: bool = True,
        every: float = WRITE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.keep = keep
        self.step = step
        self.immediate = immediate
        self.every = every
        self._clock = clock
        self._written_at = -math.inf
        self._waiting: list[CloseRecord] = []
        self._newest: dict[str, pd.Timestamp] = {}  # the newest candle recorded, per pair
        self._failing = False

    def record(
        self,
        moment: CloseMoment,
        decisions: list[DecisionOut],
        equity: tuple[float, float],
        positions: list[OpenPosition],
        snapshot: dict[str, Any],
    ) -> None:
        realized, total = equity
        candles = self._new_candles(moment)
        for candle in candles:
            self._newest[candle.pair] = candle.time
        self._waiting.append(
            CloseRecord(
                time=moment.time,
                realized=realized,
                total=total,
                decisions=[stored_decision(d) for d in decisions],
                candles=candles,
                candles_since=moment.time - KEEP_CANDLES * self.step,
                snapshot={**snapshot, "positions": [position_mark(p) for p in positions]},
            )
        )
        if self.immediate or self._clock() - self._written_at >= self.every:
            self.flush()

    def flush(self) -> None:
        """Write the closes not written yet; a store that fails is logged, and they are
        tried again with the next close (the store skips candles it already holds)."""
        if not self._waiting:
            return
        try:
            self.store.record_closes(self._waiting, self.keep)
        except (KineticError, ValueError) as problem:
            if not self._failing:  # once per outage, not at every close
                when = self._waiting[-1].time
                log.warning("dashboard: could not record the close at %s: %s", when, problem)
            self._failing = True
            self._waiting = self._waiting[-MAX_WAITING:]
            return
        self._failing = False
        self._waiting = []
        self._written_at = self._clock()

    def _new_candles(self, moment: CloseMoment) -> list[StoredCandle]:
        """Each pair's candles since the last one written; at first sight, its last
        KEEP_CANDLES (the store skips those it already holds, after a restart)."""
        found: list[StoredCandle] = []
        for pair, data in moment.market.items():
            index, prices = data.signals.index, data.prices
            count = min(len(index), len(prices["close"]))
            first = max(0, count - KEEP_CANDLES)
            newest = self._newest.get(pair)
            if newest is not None:
                first = max(first, int(index[:count].searchsorted(newest, side="right")))
            found += [_candle(pair, index[i], prices, i) for i in range(first, count)]
        return found


def _candle(pair: str, time: pd.Timestamp, prices: Any, i: int) -> StoredCandle:
    high, low = float(prices["high"][i]), float(prices["low"][i])
    return StoredCandle(
        pair, pd.Timestamp(time), float(prices["open"][i]), high, low, float(prices["close"][i])
    )


def stored_decision(decision: DecisionOut) -> StoredDecision:
    return StoredDecision(
        pd.Timestamp(decision.time), decision.pair, decision.side, decision.verdict,
        decision.held, decision.total, decision.outcome,
        [line.model_dump(mode="json") for line in decision.lines],
    )  # fmt: skip


def position_mark(position: OpenPosition) -> dict[str, Any]:
    """Where an open position stood at the close: the pair's price and its profit there."""
    trade = position.trade
    return {
        "pair": trade.pair,
        "side": trade.side,
        "entry_time": trade.entry_time,
        "price": position.price,
        "unrealized": position.unrealized,
    }


def pair_states(pairs: dict[str, PairState]) -> list[dict[str, Any]]:
    return [
        {"pair": p, "regime": s.regime, "blocked": s.blocked, "shortlisted": s.shortlisted}
        for p, s in sorted(pairs.items())
    ]

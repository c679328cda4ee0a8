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

import numpy as np
import pandas as pd

from kinetic_rules.engine.portfolio import PairData
from kinetic_rules.errors import KineticError
from kinetic_rules.live.events import CloseMoment, OpenPosition
from kinetic_rules.persist.feed import CloseRecord, Retention, StoredCandle, StoredDecision
from kinetic_rules.persist.store import TradeStore

if TYPE_CHECKING:
    from kinetic_rules.ui.watch import Decision, PairState

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
        self._newest: dict[str, int] = {}  # the newest candle written (its asi8), per pair
        self._market: dict[str, PairData] = {}  # each pair's newest view since the last write
        # The newest close's snapshot and positions, until they are written.
        self._newest_close: tuple[Callable[[], dict[str, Any]], list[OpenPosition]] | None = None
        self._failing = False

    def record(
        self,
        moment: CloseMoment,
        decisions: list[StoredDecision],
        equity: tuple[float, float],
        positions: list[OpenPosition],
        snapshot: Callable[[], dict[str, Any]],
    ) -> None:
        """Keep a close. Only the newest close's `snapshot` (pairs, scanner) and positions
        are stored, so `snapshot` is called only for the close that is written last."""
        realized, total = equity
        self._market.update(moment.market)  # its candles are read when they are written
        self._newest_close = (snapshot, positions)
        self._waiting.append(
            CloseRecord(
                time=moment.time,
                realized=realized,
                total=total,
                decisions=decisions,
                candles_since=moment.time - KEEP_CANDLES * self.step,
            )
        )
        if self.immediate or self._clock() - self._written_at >= self.every:
            self.flush()

    def flush(self) -> None:
        """Write the closes not written yet, with the candles that came since the last
        write (each pair's newest view holds them all); a store that fails is logged, and
        they are tried again with the next close (the store skips candles it holds)."""
        if not self._waiting:
            return
        candles, newest = self._new_candles()
        for waiting in self._waiting:
            waiting.candles = []
        last = self._waiting[-1]
        last.candles = candles
        if self._newest_close is not None:
            snapshot, positions = self._newest_close
            marks = [position_mark(p) for p in positions]
            last.snapshot = {**snapshot(), "positions": marks}
            self._newest_close = None
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
        self._newest.update(newest)
        self._market = {}
        self._written_at = self._clock()

    def _new_candles(self) -> tuple[list[StoredCandle], dict[str, int]]:
        """Each pair's candles since the last one written, and the newest of them; at
        first sight, its last KEEP_CANDLES (the store skips those it already holds, after
        a restart)."""
        found: list[StoredCandle] = []
        newest: dict[str, int] = {}
        for pair, data in self._market.items():
            index, prices = data.signals.index, data.prices
            stamps = index.asi8  # open times as integers: no Timestamp per look
            count = min(len(stamps), len(prices["close"]))
            first = max(0, count - KEEP_CANDLES)
            written = self._newest.get(pair)
            if written is not None:
                first = max(first, int(np.searchsorted(stamps[:count], written, side="right")))
            if first < count:
                found += _candles(pair, index[first:count], prices, first, count)
                newest[pair] = int(stamps[count - 1])
        return found, newest


def _candles(
    pair: str, times: pd.DatetimeIndex, prices: dict[str, Any], first: int, count: int
) -> list[StoredCandle]:
    """Candles first..count of a pair, built from whole slices (not one look per value)."""
    columns = [np.asarray(prices[k][first:count], dtype=float).tolist()
               for k in ("open", "high", "low", "close")]  # fmt: skip
    rows = zip(times, *columns, strict=True)
    return [StoredCandle(pair, t, o, h, lo, c) for t, o, h, lo, c in rows]


def stored_decision(decision: Decision) -> StoredDecision:
    """A decision as the trade store keeps it: what `decision_out` shows, as plain data."""
    verdict = decision.verdict
    lines = [
        {"label": line.label, "text": line.text, "value": line.value, "holds": line.holds,
         "parts": [{"text": text, "value": value} for text, value in line.parts]}
        for line in verdict.lines
    ]  # fmt: skip
    return StoredDecision(
        pd.Timestamp(decision.time), decision.pair, verdict.side, verdict.verdict,
        verdict.held, verdict.total, decision.outcome, lines,
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

"""A trading session on live exchange data: candles through ccxt, at every close.

On paper (the default) fills follow the backtest's fill rules, so a session equals a
backtest of the same candles. Trading for real, an executor (live/executor.py) is
attached to the runtime: the exchange makes the fills, and between closes the session
asks it every `poll_seconds` how the orders stand (fills, timeouts, triggered stops).

Each cycle waits for a candle to close, brings the candle store up to date with the
same incremental, retrying download that `kinetic-rules download` uses, hands the new
candles to the rolling windows and lets the runtime act on the close. When closes were
missed (the machine slept, the exchange was down), positions still catch up on every
candle they missed — trade paths are replayed from the entry — but entries are decided
on the newest close only: an entry signal from an hour ago is not acted on now.

Given a LiveUniverse instead of fixed pairs (scanning all of an exchange's markets),
the session lists the markets again at each scanner refresh and trades the new list
from the next close on; a pair with a trade still open stays until the trade is over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from kinetic_rules.compile.plan import Plan
from kinetic_rules.data.download import download
from kinetic_rules.data.exchange import RetryPolicy
from kinetic_rules.data.store import CandleStore
from kinetic_rules.engine.orders import EventKind
from kinetic_rules.errors import ExchangeError
from kinetic_rules.live.between_closes import BetweenCloses
from kinetic_rules.live.inputs import LiveInputs
from kinetic_rules.live.markets import LiveUniverse
from kinetic_rules.live.monitor import TickerReader, reader_for
from kinetic_rules.live.robust import FailSafe
from kinetic_rules.live.runtime import Runtime, StepReport, TradeSink
from kinetic_rules.live.streams import BidAskStream
from kinetic_rules.live.window import WindowSource, window_sizes
from kinetic_rules.models import BackgroundTrainer, default_cache
from kinetic_rules.timeframes import timeframe_seconds

log = logging.getLogger("kinetic_rules.live")
Clock = Callable[[], pd.Timestamp]


class Journal(Protocol):
    """Small durable notes (the trade store provides them): here, when a session began."""

    def state(self, key: str) -> str | None: ...

    def set_state(self, key: str, value: str) -> None: ...


@dataclass
class TradingSession(BetweenCloses):
    plan: Plan
    exchange: Any  # a ccxt client (public endpoints only: paper trading needs no keys)
    store: CandleStore
    pairs: list[str]
    clock: Clock
    sleep: Callable[[float], None]
    sizes: dict[str, int] | None = None  # rolling window per timeframe (default: window_sizes)
    settle_seconds: float = 3.0  # wait after a close before asking for the candle
    sink: TradeSink | None = None  # where trade changes are kept (the trade store)
    journal: Journal | None = None  # where the session's start is kept, to resume after a crash
    retry: RetryPolicy | None = None  # how downloads retry (default: the data layer's)
    fail_safe_after: float = 300.0  # seconds of outage before no new entries are made
    universe: LiveUniverse | None = None  # scanning all markets: the pairs follow its listings
    runtime: Runtime | None = None
    attach: Callable[[Runtime], None] | None = None  # an executor: orders through a broker
    poll_seconds: float = 10.0  # real orders: how often they are checked between closes
    live_inputs: LiveInputs | None = None  # reads spread, bid, ... (default: if rules do)
    bid_asks: BidAskStream | None = None  # bids and asks pushed over a WebSocket (started)
    monitor_every: float = 0.0  # seconds between looks at the open positions (0: no monitor)
    tickers: TickerReader | None = None  # the monitor's prices (default: the exchange's tickers)
    # Called on the new runtime before a resumed session replays its closes (the controls
    # restore the pauses a person made, so the replay skips the entries they skipped).
    prepare: Callable[[Runtime], object] | None = None
    _seen: dict[tuple[str, str], pd.Timestamp] = field(default_factory=dict)
    _last_close: pd.Timestamp | None = None
    # Models retrain in worker processes for the whole session, across pair switches;
    # close() ends them.
    _trainer: BackgroundTrainer | None = None

    def needs(self) -> list[tuple[str, str]]:
        """Every (pair, timeframe) the plan reads, for the traded pairs."""
        found = {
            (need.pair or pair, need.timeframe) for pair in self.pairs for need in self.plan.data
        }
        return sorted(found)

    def start(self) -> None:
        """Load each window's history, build the runtime, and resume a crashed session.

        A session's state is a function of the candles since it began, fed close by close:
        so a restart rebuilds the windows as they were at the first close, then feeds every
        close since from the candle store. The runtime takes the same decisions again, and
        the trade store, which ignores what it already holds, records only what is new.
        """
        sizes = self.sizes or window_sizes(self.plan)
        if self.live_inputs is None and (self.plan.live_inputs or self.plan.scanner_inputs):
            names = self.plan.live_inputs | self.plan.scanner_inputs
            self.live_inputs = LiveInputs(self.exchange, names, stream=self.bid_asks)
        # Real orders resume from the executor's book and the exchange, not by replaying.
        began = self._began() if self.attach is None else None
        switches = self._switches() if began is not None else []
        if switches:  # a scanning session: the pairs it began with
            self.pairs = switches[0][1]
        self._download(sizes)
        self._drop_unready()
        if self.bid_asks is not None:
            self.bid_asks.watch(self.pairs)
        source = self._windows(sizes, until=began)
        notifiers = self.runtime.notifiers if self.runtime else None
        self.runtime = Runtime(self.plan, source, notifiers, sink=self.sink)
        if self.prepare is not None:
            self.prepare(self.runtime)
        if self.attach is None:  # on paper a person's closes are replayed like the monitor's
            self.runtime.note_closes = self._note_monitored
        self.fail_safe = FailSafe(
            "the exchange's candle feed",
            clock=lambda: self.clock().timestamp(),
            after=self.fail_safe_after,
            on_change=self._fail_safe_changed,
        )
        source.refresh()
        self._last_close = source.timeline[-1] + self._base if len(source.timeline) else None
        if self.monitor_every > 0 and self.tickers is None:
            close_all, stops, _ = self._checks()
            spec = self.plan.strategy.spec
            self.tickers = reader_for(self.exchange, spec, close_all=close_all, stops=stops)
        if self.attach is not None:
            self.attach(self.runtime)
            return
        if began is None:
            if self.journal is not None and self._last_close is not None:
                self.journal.set_state(self._journal_key, self._last_close.isoformat())
            self._note_universe([])
            return
        later = switches[1:]
        monitored = self._monitored()
        for close in self._closes_since(began, {p for _, ps in switches for p in ps}):
            while later and later[0][0] < close:  # switched after that close, before this one
                self._switch(later.pop(0)[1])
            self._redo_monitored(monitored, before=close)
            self._advance(until=close)
        for _, pairs in later:
            self._switch(pairs)
        self._redo_monitored(monitored, before=None)
        if self.universe is not None:  # listed again at the next refresh, as before the crash
            self.universe.pairs, self.universe.listed_at = list(self.pairs), self._last_close

    def _windows(self, sizes: dict[str, int], until: pd.Timestamp | None) -> WindowSource:
        """Every window as it stood at the close `until` (None: all that is stored)."""
        history = {}
        for key in self.needs():
            frame = self.store.read(self.store_exchange, *key)
            if until is not None:
                frame = frame[_closes(frame, key[1]) <= until]
            history[key] = frame
            if len(frame):
                self._seen[key] = frame.index[-1]
        if self._trainer is None:
            self._trainer = BackgroundTrainer(default_cache())
        return WindowSource(
            self.plan,
            self.pairs,
            history,
            sizes,
            live=self.live_inputs is not None,
            trainer=self._trainer,
        )

    def close(self) -> None:
        """End what the session started beside the decisions: the models' training
        workers (a training under way is done again at the next start)."""
        if self._trainer is not None:
            self._trainer.shutdown()

    @property
    def _journal_key(self) -> str:
        pairs = "scan" if self.universe is not None else ",".join(self.pairs)
        key = f"paper-session:{self.plan.strategy.spec.metadata.name}:{pairs}"
        if len(key) > 160:  # the state table's keys hold 200 characters: name many pairs briefly
            digest = hashlib.sha256(pairs.encode()).hexdigest()[:16]
            key = f"paper-session:{self.plan.strategy.spec.metadata.name[:80]}:{digest}"
        return key

    def _began(self) -> pd.Timestamp | None:
        text = self.journal.state(self._journal_key) if self.journal is not None else None
        return pd.Timestamp(text) if text else None

    def _closes_since(self, began: pd.Timestamp, pairs: set[str]) -> list[pd.Timestamp]:
        closes: set[pd.Timestamp] = set()
        for pair in sorted(pairs | set(self.pairs)):
            frame = self.store.read(self.store_exchange, pair, self.plan.timeframe, start=began)
            closes.update(_closes(frame, self.plan.timeframe))
        return sorted(c for c in closes if c > began)

    @property
    def store_exchange(self) -> str:
        return str(self.exchange.id)

    @property
    def _base(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=timeframe_seconds(self.plan.timeframe))

    def cycle(self) -> StepReport | None:
        """Bring in what closed since the last cycle and act on the newest close."""
        assert self.runtime is not None, "call start() first"
        source = self.runtime.source
        assert isinstance(source, WindowSource)
        try:
            self._follow_universe()
            self._download(source.sizes)
        except ExchangeError as problem:
            if not problem.temporary:
                raise
            log.warning("candles could not be fetched (%s); trying again next candle", problem)
            self.fail_safe.failure(str(problem))
            return None  # no new candles: nothing is decided, so no entry is made
        self.fail_safe.success()
        return self._advance()

    def _advance(self, until: pd.Timestamp | None = None) -> StepReport | None:
        """Add the stored candles closed since the last close (and by `until`); act on it."""
        assert self.runtime is not None
        source = self.runtime.source
        assert isinstance(source, WindowSource)
        arrived = []  # pairs with a new candle of the base timeframe
        newest: pd.Timestamp | None = None  # the newest of those candles (open time)
        for key in self.needs():
            since = self._seen.get(key)
            frame = self.store.read(self.store_exchange, *key, start=since)
            fresh = frame[frame.index > since] if since is not None else frame
            if until is not None:
                fresh = fresh[_closes(fresh, key[1]) <= until]
            if len(fresh):
                source.add(*key, fresh)
                self._seen[key] = fresh.index[-1]
                if key[1] == self.plan.timeframe and key[0] in self.pairs:
                    arrived.append(key[0])
                    newest = max(newest or fresh.index[-1], fresh.index[-1])
        if until is None and self.live_inputs is not None and newest is not None:
            # The book now is the book at this close; catching up on past closes, it is not.
            close = newest + self._base
            scan = self._refreshes_at(close)
            names = self.plan.live_inputs | (self.plan.scanner_inputs if scan else frozenset())
            values = self.live_inputs.read(arrived, names, at=close)
            source.supply(values, scanner=scan)
        step = source.refresh()
        newest = source.timeline[step] + self._base
        if self._last_close is not None and newest <= self._last_close:
            return None  # nothing new closed
        self._last_close = newest
        return self.runtime.step(step)

    def _refreshes_at(self, close: pd.Timestamp) -> bool:
        """Whether the scanner refreshes at this close and has live-only steps to run."""
        scanner = self.plan.strategy.spec.scanner
        if scanner is None or not self.plan.scanner_inputs:
            return False
        return int(close.timestamp()) % scanner.refresh == 0

    # -- scanning all markets ------------------------------------------------------------

    def _follow_universe(self) -> None:
        """At a scanner refresh, list the markets again; trade the new list from now on."""
        if self.universe is None or not self.universe.due(self.clock()):
            return
        assert self.runtime is not None
        try:
            listed = self.universe.refresh(self.clock())
        except ExchangeError as problem:
            if not problem.temporary:
                raise
            log.warning("markets could not be listed (%s); keeping the pairs for now", problem)
            return
        held = {position.pair for position in self.runtime.portfolio.unresolved()}
        pairs = sorted(set(listed) | held)  # an open trade keeps its pair until it is over
        if pairs == self.pairs:
            return
        before = set(self.pairs)
        try:
            self._switch(pairs)
        except ExchangeError:
            self.universe.listed_at = None  # try again at the next cycle
            raise
        now = set(self.pairs)  # without markets that have no candles yet
        if now == before:
            return
        self._note_universe(sorted(before))
        log.info(
            "scanning: %d pairs now (in: %s; out: %s)", len(now),
            ", ".join(sorted(now - before)) or "-", ", ".join(sorted(before - now)) or "-",
        )  # fmt: skip

    def _switch(self, pairs: list[str]) -> None:
        """Trade `pairs` from the next close on, their windows as they stand at the last one."""
        assert self.runtime is not None
        source = self.runtime.source
        assert isinstance(source, WindowSource)
        previous, self.pairs = self.pairs, pairs
        if self.bid_asks is not None:
            self.bid_asks.watch(pairs)
        try:
            self._download(source.sizes)
        except ExchangeError:
            self.pairs = previous
            raise
        self._drop_unready()
        self.runtime.source = self._windows(source.sizes, until=self._last_close)

    def _drop_unready(self) -> None:
        """Scanning: a market without candles of a timeframe the plan reads (listed too
        recently for a daily candle, say) waits for a later refresh."""
        if self.universe is None:
            return
        missing = {
            pair
            for pair in self.pairs
            for need in self.plan.data
            if self.store.find(self.store_exchange, need.pair or pair, need.timeframe) is None
        }
        if missing:
            log.info(
                "scanning: no candles yet for %s; left out for now", ", ".join(sorted(missing))
            )
            self.pairs = [pair for pair in self.pairs if pair not in missing]

    @property
    def _universe_key(self) -> str:
        return f"{self._journal_key}:universe"

    def _switches(self) -> list[tuple[pd.Timestamp, list[str]]]:
        """The pairs of a scanning session and when they changed: (last close before, pairs)."""
        if self.journal is None or self.universe is None:
            return []
        text = self.journal.state(self._universe_key)
        switches: list[tuple[pd.Timestamp, list[str]]] = []
        pairs: set[str] = set()
        for stamp, added, removed in json.loads(text) if text else []:
            pairs = (pairs | set(added)) - set(removed)
            switches.append((pd.Timestamp(stamp), sorted(pairs)))
        return switches

    def _note_universe(self, before: list[str]) -> None:
        """Journal a change of pairs (as what came in and went out) at the last close."""
        if self.journal is None or self.universe is None or self._last_close is None:
            return
        text = self.journal.state(self._universe_key)
        noted = json.loads(text) if text else []
        added = sorted(set(self.pairs) - set(before))
        noted.append([self._last_close.isoformat(), added, sorted(set(before) - set(self.pairs))])
        self.journal.set_state(self._universe_key, json.dumps(noted))

    def _fail_safe_changed(self, active: bool, message: str) -> None:
        assert self.runtime is not None
        kind: EventKind = "fail_safe_entered" if active else "fail_safe_left"
        self.runtime.announce(kind, self.clock(), message)

    def run(self, cycles: int | None = None) -> None:
        """Cycle at every close until stopped (or for `cycles` closes)."""
        assert self.runtime is not None, "call start() first"
        done = 0
        while cycles is None or done < cycles:
            self._between_closes()
            self.sleep(self._until_next_close())
            self.cycle()
            done += 1
            if self.runtime.stopping and not self.runtime.portfolio.unresolved():
                break

    def _until_next_close(self) -> float:
        """Seconds until the next close's candle is asked for: that close plus the settle
        time. A close not acted on yet is still due during its settle time: a poll that
        ends a moment after a close waits for that close's candle, not for the next one."""
        step = timeframe_seconds(self.plan.timeframe)
        seconds = self.clock().timestamp()
        close = math.floor(seconds / step) * step  # the latest close
        acted = self._last_close is not None and self._last_close.timestamp() >= close
        if acted or seconds >= close + self.settle_seconds:
            close += step
        return max(0.0, close + self.settle_seconds - seconds)

    def _download(self, sizes: dict[str, int]) -> None:
        for timeframe in sorted({tf for _, tf in self.needs()}):
            pairs = sorted({pair for pair, tf in self.needs() if tf == timeframe})
            span = sizes.get(timeframe, 0) * timeframe_seconds(timeframe)
            days = max(1, math.ceil(span / 86400))
            summary = download(
                self.exchange, self.store, pairs, [timeframe], days=days, retry=self.retry
            )
            if summary.failed:
                first = summary.failed[0]
                raise ExchangeError(
                    f"{first.pair} {first.timeframe}: {first.error}", temporary=True
                )


def _closes(frame: pd.DataFrame, timeframe: str) -> pd.DatetimeIndex:
    """When each candle closed: its open time plus its length."""
    return pd.DatetimeIndex(frame.index) + pd.Timedelta(seconds=timeframe_seconds(timeframe))

"""Where the dashboard reads from: a session running in this process, or a trade store.

Both answer the same questions with the API's models, so the app never asks which one
it has; only a running session can be controlled.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import pandas as pd

from kinetic_rules.engine.model import Trade
from kinetic_rules.engine.orders import Event
from kinetic_rules.files import read_regular
from kinetic_rules.live.controls import SessionControls
from kinetic_rules.live.events import OpenPosition
from kinetic_rules.persist.feed import CLOSE_KEY, StoredDecision, snapshot_from
from kinetic_rules.persist.store import TradeStore
from kinetic_rules.ui.models import (
    CandleOut,
    ControlsState,
    DecisionOut,
    EquityPoint,
    EventOut,
    LineOut,
    PairStateOut,
    PositionOut,
    ScannerChange,
    ScannerOut,
    StatusOut,
    StrategyOut,
    TradeOut,
)
from kinetic_rules.ui.watch import KEEP_EQUITY, Watch, decision_out

STRATEGY_KEY = "dashboard:strategy"  # the journal's copy of the session's strategy file
STRATEGY_BYTES = 2 * 1024 * 1024  # strategy files are at most 2 MB
MAX_ROWS = 5000  # the most events or candles one answer holds
MAX_PAGE = 1000  # the most trades one page of /api/trades holds
T = TypeVar("T")


@dataclass
class TradeFilter:
    """Which closed trades a page of /api/trades holds: newest (highest id) first."""

    pair: str | None = None
    side: str | None = None
    reason: str | None = None  # exit reasons containing this text
    start: datetime | None = None  # entry time, inclusive
    end: datetime | None = None  # entry time, exclusive
    limit: int = 200
    after: int | None = None  # the cursor: only trades listed after it (lower ids)

    def matches(self, trade: Trade | TradeOut) -> bool:
        if not (
            trade.exit_time is not None
            and (self.after is None or trade.id < self.after)
            and (self.pair is None or trade.pair == self.pair)
            and (self.side is None or trade.side == self.side)
            and (self.reason is None or self.reason in (trade.exit_reason or ""))
        ):
            return False
        if self.start is None and self.end is None:
            return True
        entered = _utc(trade.entry_time)
        return (self.start is None or entered >= _utc(self.start)) and (
            self.end is None or entered < _utc(self.end)
        )

    def page(self, trades: list[TradeOut]) -> list[TradeOut]:
        """Those of `trades` (any order) this filter keeps, newest first, at most `limit`."""
        kept = sorted((t for t in trades if self.matches(t)), key=lambda t: t.id, reverse=True)
        return kept[: max(0, self.limit)]


class Source(Protocol):
    kind: str

    @property
    def controls(self) -> SessionControls | None: ...

    def status(self, controls: ControlsState) -> StatusOut: ...
    def positions(self) -> list[PositionOut]: ...
    def trades(self, which: TradeFilter) -> list[TradeOut]:
        """Closed trades `which` keeps, newest (highest id) first, at most `which.limit`."""
        ...

    def equity(self, after: datetime | None = None) -> list[EquityPoint]:
        """The equity points, oldest first; `after`: only those later than it."""
        ...

    def events(self, limit: int) -> list[EventOut]: ...
    def decisions(self, limit: int) -> list[DecisionOut]: ...
    def strategy(self) -> StrategyOut: ...
    def scanner(self) -> ScannerOut: ...
    def candles(self, pair: str, limit: int) -> list[CandleOut]: ...


def strategy_record(name: str, path: Path, params: dict[str, object]) -> str:
    """The journal's copy of the strategy, so `ui --db` can show it after the session."""
    try:
        text = read_regular(path, STRATEGY_BYTES)[:STRATEGY_BYTES].decode("utf-8", "replace")
    except OSError:
        text = ""
    shown = {key: str(value) for key, value in params.items()}
    return json.dumps({"name": name, "path": str(path), "text": text, "params": shown})


class LiveSource:
    """A session running in this process: its state, its watch and its controls."""

    kind = "session"

    def __init__(self, controls: SessionControls, watch: Watch, strategy_path: Path) -> None:
        self._controls = controls
        self.watch = watch
        self.runtime = controls.runtime
        plan = self.runtime.plan
        self._strategy = StrategyOut.model_validate_json(
            strategy_record(
                plan.strategy.spec.metadata.name, strategy_path, dict(plan.strategy.params)
            )
        )

    @property
    def controls(self) -> SessionControls | None:
        return self._controls

    def status(self, controls: ControlsState) -> StatusOut:
        state = self.runtime.state(trades=False)
        spec = self.runtime.plan.strategy.spec
        with self.watch._lock:
            pairs = [
                PairStateOut(pair=p, regime=s.regime, blocked=s.blocked, shortlisted=s.shortlisted)
                for p, s in sorted(self.watch.pairs.items())
            ]
            exchange = self.watch.exchange
        return StatusOut(
            source="session",
            strategy=spec.metadata.name,
            running=True,
            paused=state.paused,
            stopping=state.stopping,
            fail_safe=state.fail_safe,
            exchange=exchange,
            last_close=state.time,
            controls=controls,
            stake_currency=spec.market.stake_currency,
            pairs=pairs,
        )

    def positions(self) -> list[PositionOut]:
        return [position_out(p) for p in self.runtime.state(trades=False).positions]

    def trades(self, which: TradeFilter) -> list[TradeOut]:
        return [trade_out(t) for t in self.runtime.find_trades(which.matches, which.limit)]

    def equity(self, after: datetime | None = None) -> list[EquityPoint]:
        since = None if after is None else _utc(after)
        with self.watch._lock:
            if since is None:
                points = list(self.watch.equity)
            else:  # the newest few: walk back from the end
                points = list(
                    itertools.takewhile(lambda p: p[0] > since, reversed(self.watch.equity))
                )[::-1]
        return [EquityPoint(time=t, realized=r, total=total) for t, r, total in points]

    def events(self, limit: int) -> list[EventOut]:
        with self.watch._lock:
            events = list(self.watch.events)
        return [event_out(e) for e in events[-limit:]] if limit > 0 else []

    def decisions(self, limit: int) -> list[DecisionOut]:
        with self.watch._lock:
            found = list(self.watch.decisions)
        return [decision_out(d) for d in found[-limit:]][::-1] if limit > 0 else []

    def strategy(self) -> StrategyOut:
        return self._strategy

    def scanner(self) -> ScannerOut:
        with self.watch._lock:
            pairs = sorted(p for p, s in self.watch.pairs.items() if s.shortlisted)
            changes = list(self.watch.scanner_changes)
        return ScannerOut(
            pairs=pairs,
            changes=[ScannerChange(time=t, added=a, removed=r) for t, a, r in changes[::-1]],
        )

    def candles(self, pair: str, limit: int) -> list[CandleOut]:
        data = self.runtime.market().get(pair)
        if data is None:
            return []
        index = data.signals.index
        prices = data.prices
        count = min(len(index), len(prices["close"]), max(0, limit))
        first = len(index) - count
        return [
            CandleOut(
                time=int(index[i].timestamp()),
                open=float(prices["open"][i]),
                high=float(prices["high"][i]),
                low=float(prices["low"][i]),
                close=float(prices["close"][i]),
            )
            for i in range(first, len(index))
            if math.isfinite(float(prices["close"][i]))
        ]


class StoreSource:
    """A stopped or remote session: what its trade store holds, read-only. The decision
    feed, equity, candles and the last close's positions are what the session recorded
    at each close (see record.py); a store without them shows its trades alone."""

    kind = "store"

    def __init__(self, store: TradeStore) -> None:
        self.store = store
        # Stored records decoded once per change, not at each poll: key -> (set at, value).
        self._decoded: dict[str, tuple[pd.Timestamp, Any]] = {}

    def _decoded_state(self, key: str, decode: Callable[[str | None], T]) -> T:
        """The state `key`, decoded; again only once the store says it was set since."""
        updated = self.store.state_updated(key)
        kept = self._decoded.get(key)
        if updated is not None and kept is not None and kept[0] == updated:
            return cast(T, kept[1])
        value = decode(self.store.state(key))
        if updated is not None:
            self._decoded[key] = (updated, value)
        return value

    def _last_close(self) -> dict[str, Any]:
        return self._decoded_state(CLOSE_KEY, snapshot_from) or {}

    @property
    def controls(self) -> SessionControls | None:
        return None

    def status(self, controls: ControlsState) -> StatusOut:
        last = self.store.events(limit=1)
        fail = self.store.events(kinds=["fail_safe_entered", "fail_safe_left"], limit=1)
        in_fail_safe = bool(fail) and fail[-1].kind == "fail_safe_entered"
        paused = [e for e in self.store.events(kinds=["control"], limit=50)
                  if e.data.get("action") in ("pause", "resume")]  # fmt: skip
        close = self._last_close()
        last_close = _time_or_none(close.get("time")) or (last[-1].time if last else None)
        exchange = "out of reach" if in_fail_safe else "ok"
        return StatusOut(
            source="store",
            strategy=self.strategy().name,
            running=False,
            paused=bool(paused) and paused[-1].data.get("action") == "pause",
            stopping=False,
            fail_safe=in_fail_safe,
            exchange=f"{close.get('exchange') or exchange} (last seen)",
            last_close=last_close,
            controls="read-only",
            stake_currency=str(close.get("stake_currency") or ""),
            pairs=[PairStateOut.model_validate(p) for p in _rows(close.get("pairs"))],
        )

    def positions(self) -> list[PositionOut]:
        marks = {
            (m.get("pair"), m.get("side"), _time_or_none(m.get("entry_time"))): m
            for m in _rows(self._last_close().get("positions"))
        }
        found = []
        for trade in self.store.open_trades():
            mark = marks.get((trade.pair, trade.side, trade.entry_time), {})
            price, unrealized = _number_or_none(mark.get("price")), mark.get("unrealized")
            position = OpenPosition(
                trade, price, _number_or_none(unrealized), _closing_fills(trade), _trailed(trade)
            )
            found.append(position_out(position))
        return found

    def trades(self, which: TradeFilter) -> list[TradeOut]:
        """A page read by the store's cursor query: its rows, not the whole history (rows
        the database matched more loosely than `which` are passed over)."""
        kept: list[Trade] = []
        before = which.after
        while len(kept) < which.limit:
            wanted = which.limit - len(kept)
            found = self.store.closed_trades(
                limit=wanted, before=before, pair=which.pair, side=which.side,
                reason=which.reason, start=which.start, end=which.end,
            )  # fmt: skip
            kept += [t for t in found if which.matches(t)]
            if len(found) < wanted:
                break
            before = found[-1].id
        return [trade_out(t) for t in kept]

    def equity(self, after: datetime | None = None) -> list[EquityPoint]:
        since = None if after is None else _utc(after)
        recorded = self.store.equity()
        if recorded:
            later = [p for p in recorded if since is None or p.time > since]
            return [EquityPoint(time=p.time, realized=p.realized, total=p.total)
                    for p in thinned(later, KEEP_EQUITY)]  # fmt: skip
        return [p for p in self._equity() if since is None or p.time > since]

    def _equity(self) -> list[EquityPoint]:
        """Sessions recorded before equity was: the realized curve, from the closed trades."""
        closed = [t for t in self.store.trades() if t.exit_time is not None]
        closed.sort(key=lambda t: t.exit_time)  # type: ignore[arg-type, return-value]
        points, total = [], 0.0
        for trade in closed:
            total += trade.profit
            assert trade.exit_time is not None
            points.append(EquityPoint(time=trade.exit_time, realized=total, total=None))
        return points

    def events(self, limit: int) -> list[EventOut]:
        return [event_out(e) for e in self.store.events(limit=limit)] if limit > 0 else []

    def decisions(self, limit: int) -> list[DecisionOut]:
        if limit <= 0:
            return []
        return [_stored_decision_out(d) for d in self.store.decisions(limit)]

    def strategy(self) -> StrategyOut:
        return self._decoded_state(STRATEGY_KEY, _strategy_from)

    def scanner(self) -> ScannerOut:
        close = self._last_close()
        pairs = [PairStateOut.model_validate(p) for p in _rows(close.get("pairs"))]
        changes = [ScannerChange.model_validate(c) for c in _rows(close.get("scanner_changes"))]
        return ScannerOut(pairs=[p.pair for p in pairs if p.shortlisted], changes=changes[::-1])

    def candles(self, pair: str, limit: int) -> list[CandleOut]:
        return [
            CandleOut(time=int(c.time.timestamp()), open=c.open, high=c.high, low=c.low,
                      close=c.close)
            for c in self.store.candles(pair, max(0, limit))
        ]  # fmt: skip


def thinned(points: list[T], most: int) -> list[T]:
    """At most `most` points, evenly spread, always with the first and the last."""
    if len(points) <= most or most < 2:
        return points[-most:] if most > 0 else []
    step = (len(points) - 1) / (most - 1)
    return [points[round(i * step)] for i in range(most)]


def _strategy_from(text: str | None) -> StrategyOut:
    if not text:
        return StrategyOut(name="", path="", text="", params={})
    return StrategyOut.model_validate_json(text)


def _stored_decision_out(d: StoredDecision) -> DecisionOut:
    lines = [LineOut.model_validate(line) for line in d.lines]
    return DecisionOut(
        time=d.time, pair=d.pair, side=d.side, verdict=d.verdict, held=d.held, total=d.total,
        outcome=d.outcome, lines=lines,
    )  # fmt: skip


def _rows(value: object) -> list[dict[str, Any]]:
    return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []


def _time_or_none(value: object) -> pd.Timestamp | None:
    if not isinstance(value, str):
        return None
    try:
        return _utc(pd.Timestamp(value))
    except ValueError:
        return None


def _number_or_none(value: object) -> float | None:
    """A stored number; None for what was not finite (stored as "NaN" or "Infinity")."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


# -- conversions -----------------------------------------------------------------------------


def _utc(value: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _closing_fills(trade: Trade) -> int:
    return sum(f.reason != "entry" for f in trade.fills)


def _trailed(trade: Trade) -> bool:
    return trade.stop is not None and trade.stop != trade.initial_stop


def trade_out(trade: Trade) -> TradeOut:
    closed = trade.exit_time is not None
    return TradeOut(
        id=trade.id,
        pair=trade.pair,
        side=trade.side,
        regime=trade.regime,
        entry_time=trade.entry_time,
        entry_price=trade.entry_price,
        amount=trade.amount,
        stake=trade.stake,
        leverage=trade.leverage,
        initial_stop=trade.initial_stop,
        stop=_finite(trade.stop),
        exit_time=trade.exit_time,
        exit_price=_finite(trade.exit_price),
        exit_reason=trade.exit_reason,
        profit=trade.profit if closed else None,
        profit_ratio=trade.profit_ratio if closed else None,
        fees=trade.fees,
        tags=list(trade.tags),
        margin=trade.margin,
        liquidation_price=trade.liquidation_price,
    )


def position_out(position: OpenPosition) -> PositionOut:
    base = trade_out(position.trade).model_dump()
    return PositionOut(
        **base,
        price=_finite(position.price),
        unrealized=_finite(position.unrealized),
        take_profits_done=position.take_profits_done,
        trailing=position.trailing,
    )


def event_out(event: Event) -> EventOut:
    data = json.loads(json.dumps(event.data, default=str))
    return EventOut(kind=event.kind, time=event.time, message=event.message, data=data)

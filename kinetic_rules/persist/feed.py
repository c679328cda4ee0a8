"""The dashboard's record of a running session, kept beside its trades: the decision feed,
the equity at each close, the candles it saw and where its open positions stood.

A session writes its `CloseRecord`s in one transaction per close, or per batch of closes
when they come faster than anyone reads them (a replay), always before the dashboard
shows them: a crash loses nothing the page has shown. Writing closes again (a restart
that repeats one) replaces what was stored for them. Every write also drops what
has outgrown its bound, so the record never grows without limit: decisions older than
`Retention.days` before the newest close, or beyond the newest `Retention.rows`, and
candles older than the close's `candles_since`. Equity points are one small row per
close and are all kept.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from kinetic_rules.persist.models import CandleRow, DecisionRow, EquityRow, StateRow
from kinetic_rules.persist.serialize import plain_json
from kinetic_rules.secrets import mask, masking_batch

CLOSE_KEY = "dashboard:close"  # the newest close's positions, pairs and scanner, as JSON
FEED_ROWS = 50_000  # the most decisions kept, whatever their age
MAX_FEED_DAYS = 3650.0


@dataclass(frozen=True)
class Retention:
    """How much of the decision feed is kept: the days before the newest close (0 keeps
    none), and at most `rows` entries."""

    days: float
    rows: int = FEED_ROWS

    def __post_init__(self) -> None:
        if not 0 <= self.days <= MAX_FEED_DAYS:  # NaN fails too
            raise ValueError(f"the feed keeps from 0 to {MAX_FEED_DAYS:g} days, not {self.days}")
        if self.rows < 0:
            raise ValueError(f"feed rows must be 0 or more, not {self.rows}")

    @property
    def keeps(self) -> bool:
        return self.days > 0 and self.rows > 0


@dataclass(frozen=True)
class StoredDecision:
    time: pd.Timestamp
    pair: str
    side: str
    verdict: str
    held: int
    total: int
    outcome: str
    lines: list[dict[str, Any]]  # label, text, value, holds, parts: [{text, value}]


@dataclass(frozen=True)
class StoredCandle:
    pair: str
    time: pd.Timestamp  # open time
    open: float
    high: float
    low: float
    close: float


@dataclass(frozen=True)
class EquityAt:
    time: pd.Timestamp
    realized: float
    total: float | None


@dataclass
class CloseRecord:
    """What one close adds to the record."""

    time: pd.Timestamp
    realized: float
    total: float | None
    decisions: list[StoredDecision] = field(default_factory=list)
    candles: list[StoredCandle] = field(default_factory=list)  # new since the last close
    candles_since: pd.Timestamp | None = None  # older candles are dropped
    snapshot: dict[str, Any] = field(default_factory=dict)  # positions, pairs, scanner


def write_closes(session: Session, records: list[CloseRecord], keep: Retention) -> None:
    """Store closes, oldest first, and drop what has outgrown its bounds (in the caller's
    transaction). What was stored for the span of these closes is replaced."""
    if not records:
        return
    with masking_batch():  # the secrets read once for the whole batch, not per value
        _write_closes(session, records, keep)


def _write_closes(session: Session, records: list[CloseRecord], keep: Retention) -> None:
    first, last = records[0].time, records[-1].time
    connection = session.connection()
    for table in (DecisionRow, EquityRow):
        span = delete(table).where(table.time >= first, table.time <= last)
        connection.execute(span)
    decisions = [_decision_row(d) for r in records for d in r.decisions] if keep.keeps else []
    if decisions:
        connection.execute(insert(DecisionRow), decisions)
    _trim_decisions(session, last, keep)
    points = [_equity_row(r) for r in records if math.isfinite(r.realized)]
    if points:
        connection.execute(insert(EquityRow), points)
    _add_candles(session, [c for r in records for c in r.candles])
    since = records[-1].candles_since
    if since is not None:
        connection.execute(delete(CandleRow).where(CandleRow.time < since))
    value = mask(plain_json({"time": last, **records[-1].snapshot}))
    now = pd.Timestamp.now(tz="UTC")
    changed = connection.execute(
        update(StateRow).where(StateRow.key == CLOSE_KEY).values(value=value, updated=now)
    )
    if not changed.rowcount:
        connection.execute(insert(StateRow).values(key=CLOSE_KEY, value=value, updated=now))


def _decision_row(decision: StoredDecision) -> dict[str, Any]:
    return {
        "time": decision.time, "pair": decision.pair, "side": decision.side,
        "verdict": mask(decision.verdict)[:100], "held": decision.held, "total": decision.total,
        "outcome": mask(decision.outcome), "lines": mask(plain_json(decision.lines)),
    }  # fmt: skip


def _equity_row(record: CloseRecord) -> dict[str, Any]:
    total = record.total
    finite = total is not None and math.isfinite(total)
    return {"time": record.time, "realized": record.realized, "total": total if finite else None}


def _trim_decisions(session: Session, newest: pd.Timestamp, keep: Retention) -> None:
    """Older than `keep.days` before the newest close, or beyond the newest `keep.rows`."""
    if not keep.keeps:
        session.connection().execute(delete(DecisionRow))
        return
    connection = session.connection()
    cutoff = newest - pd.Timedelta(days=keep.days)
    connection.execute(delete(DecisionRow).where(DecisionRow.time < cutoff))
    # Two statements: MySQL refuses a DELETE that reads its own table in a subquery.
    last = connection.execute(select(func.max(DecisionRow.id))).scalar()
    if last is not None and last > keep.rows:
        connection.execute(delete(DecisionRow).where(DecisionRow.id <= last - keep.rows))


def _add_candles(session: Session, candles: list[StoredCandle]) -> None:
    """Candles newer than each pair's newest stored one; a closed candle never changes."""
    pairs = sorted({c.pair for c in candles})
    if not pairs:
        return
    query = (
        select(CandleRow.pair, func.max(CandleRow.time))
        .where(CandleRow.pair.in_(pairs))
        .group_by(CandleRow.pair)
    )
    connection = session.connection()
    newest: dict[str, pd.Timestamp] = {pair: pd.Timestamp(time)
                                       for pair, time in connection.execute(query)}  # fmt: skip
    rows = []
    for candle in candles:
        last = newest.get(candle.pair)
        if last is not None and candle.time <= last:
            continue
        values = (candle.open, candle.high, candle.low, candle.close)
        if not all(math.isfinite(v) for v in values):
            continue
        rows.append({"pair": candle.pair, "time": candle.time, "open": candle.open,
                     "high": candle.high, "low": candle.low, "close": candle.close})  # fmt: skip
        newest[candle.pair] = candle.time
    if rows:
        connection.execute(insert(CandleRow), rows)


def read_decisions(session: Session, limit: int) -> list[StoredDecision]:
    """The newest `limit` decisions, newest first (the order a close found them, reversed)."""
    query = select(DecisionRow).order_by(DecisionRow.time.desc(), DecisionRow.id.desc())
    return [
        StoredDecision(r.time, r.pair, r.side, r.verdict, r.held, r.total, r.outcome,
                       json.loads(r.lines))
        for r in session.scalars(query.limit(limit))
    ]  # fmt: skip


def read_equity(session: Session) -> list[EquityAt]:
    query = select(EquityRow).order_by(EquityRow.time)
    return [EquityAt(r.time, r.realized, r.total) for r in session.scalars(query)]


def read_candles(session: Session, pair: str, limit: int) -> list[StoredCandle]:
    """The pair's newest `limit` stored candles, oldest first."""
    query = (
        select(CandleRow).where(CandleRow.pair == pair).order_by(CandleRow.time.desc()).limit(limit)
    )
    rows = [StoredCandle(r.pair, r.time, r.open, r.high, r.low, r.close)
            for r in session.scalars(query)]  # fmt: skip
    return rows[::-1]


def read_snapshot(session: Session) -> dict[str, Any] | None:
    return snapshot_from(session.scalar(select(StateRow.value).where(StateRow.key == CLOSE_KEY)))


def snapshot_from(text: str | None) -> dict[str, Any] | None:
    """The newest close's record, as stored under CLOSE_KEY."""
    if not text:
        return None
    found = json.loads(text)
    return found if isinstance(found, dict) else None

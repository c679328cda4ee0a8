"""The tables of the trade database, as SQLAlchemy 2.0 typed declarative models.

These models describe the schema at the newest migration; the migrations in
`migrations/versions` are what actually create it, and a test checks that both agree.
Only portable column types are used, so the same models serve SQLite and PostgreSQL.

Times are stored as integer nanoseconds since the Unix epoch (UTC): exact for every
pd.Timestamp, sortable, and free of each driver's own idea of time zones.
Floats are double precision, so prices and amounts come back bit for bit.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Named constraints: migrations can refer to them by name on every dialect.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MODES = ("paper", "live", "replay")
SIDES = ("long", "short")


def to_nanos(value: pd.Timestamp) -> int:
    """A time as UTC epoch nanoseconds; a naive time is taken to be UTC already."""
    if type(value) is pd.Timestamp:  # the common case: its epoch nanoseconds, UTC either way
        try:
            return int(value.value)
        except OverflowError:  # beyond what nanoseconds hold: said below, as for any time
            pass
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value)


def from_nanos(value: int) -> pd.Timestamp:
    return pd.Timestamp(int(value), unit="ns", tz="UTC")


class UtcNanos(TypeDecorator[pd.Timestamp]):
    """A tz-aware UTC pd.Timestamp kept as a BIGINT of epoch nanoseconds."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else to_nanos(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> pd.Timestamp | None:
        return None if value is None else from_nanos(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {float: Double(), pd.Timestamp: UtcNanos()}  # noqa: RUF012


class TradeRow(Base):
    """One trade: written when it opens, completed when it closes."""

    __tablename__ = "trades"
    __table_args__ = (
        # A restart that replays a candle must not be able to open the same trade twice.
        UniqueConstraint("strategy", "mode", "pair", "side", "entry_time"),
        CheckConstraint("mode IN ('paper', 'live', 'replay')", name="mode"),
        CheckConstraint("side IN ('long', 'short')", name="side"),
        Index(None, "pair", "entry_time"),
        Index(None, "exit_time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    strategy: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(16))
    pair: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    regime: Mapped[str | None] = mapped_column(String(100))
    signal_time: Mapped[pd.Timestamp]
    entry_time: Mapped[pd.Timestamp]
    entry_price: Mapped[float]
    amount: Mapped[float]
    stake: Mapped[float]
    leverage: Mapped[float]
    initial_stop: Mapped[float]
    stop: Mapped[float | None]  # the stop in force now (open) or at the close
    stop_time: Mapped[pd.Timestamp | None]  # when the stop last moved
    exit_time: Mapped[pd.Timestamp | None]
    exit_price: Mapped[float | None]
    exit_reason: Mapped[str | None] = mapped_column(String(200))
    profit: Mapped[float | None]  # realised, after fees; set when the trade closes
    tags: Mapped[str] = mapped_column(String(1000), server_default="")  # space-separated names
    margin: Mapped[float | None]  # futures: the isolated margin backing the trade
    liquidation_price: Mapped[float | None]  # futures: where the exchange liquidates it
    funding: Mapped[float] = mapped_column(server_default="0")  # futures: paid (+), received (−)
    fills: Mapped[list[FillRow]] = relationship(
        back_populates="trade",
        order_by="FillRow.seq",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class FillRow(Base):
    """One execution of a trade, in the order it happened (`seq`)."""

    __tablename__ = "fills"
    __table_args__ = (UniqueConstraint("trade_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trade_id: Mapped[int] = mapped_column(ForeignKey("trades.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    time: Mapped[pd.Timestamp]
    price: Mapped[float]
    amount: Mapped[float]
    fee: Mapped[float]
    reason: Mapped[str] = mapped_column(String(200))
    trade: Mapped[TradeRow] = relationship(back_populates="fills")


class OrderRow(Base):
    """The last known state of an order we placed, keyed by our own client id."""

    __tablename__ = "orders"
    __table_args__ = (Index(None, "status"), Index(None, "trade_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    trade_id: Mapped[int | None] = mapped_column(ForeignKey("trades.id", ondelete="SET NULL"))
    exchange_id: Mapped[str] = mapped_column(String(100))
    pair: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[float]
    filled: Mapped[float]
    average: Mapped[float | None]
    fee: Mapped[float]
    updated: Mapped[pd.Timestamp | None]
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)  # the exchange's own record, as JSON


class EventRow(Base):
    """The event log: what the runtime told the outside world, in order."""

    __tablename__ = "events"
    __table_args__ = (Index(None, "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    time: Mapped[pd.Timestamp]
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[str] = mapped_column(Text)  # JSON object


class StateRow(Base):
    """Small named values the runtime resumes from, e.g. the last processed candle."""

    __tablename__ = "runtime_state"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated: Mapped[pd.Timestamp]


class DecisionRow(Base):
    """One entry of the decision feed: a pair and side that came near an entry at a close,
    with what `explain` said of it (its lines as JSON) and what came of it."""

    __tablename__ = "decisions"
    __table_args__ = (Index(None, "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[pd.Timestamp]  # the close at which it was decided
    pair: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    verdict: Mapped[str] = mapped_column(String(100))
    held: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(Text)
    lines: Mapped[str] = mapped_column(Text)  # JSON list of {label, text, value, holds, parts}


class EquityRow(Base):
    """The account at one close: realized, and with the open trades valued at that close."""

    __tablename__ = "equity"

    time: Mapped[pd.Timestamp] = mapped_column(primary_key=True)
    realized: Mapped[float]
    total: Mapped[float | None]


class CandleRow(Base):
    """A candle the session saw, kept for the dashboard's chart (the last few thousand)."""

    __tablename__ = "candles"
    __table_args__ = (Index(None, "time"),)

    pair: Mapped[str] = mapped_column(String(64), primary_key=True)
    time: Mapped[pd.Timestamp] = mapped_column(primary_key=True)  # open time
    open: Mapped[float]
    high: Mapped[float]
    low: Mapped[float]
    close: Mapped[float]

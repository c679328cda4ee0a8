"""The API's answers, as pydantic models: every endpoint has a schema in /openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ControlsState = Literal["enabled", "no token", "read-only"]


class TradeOut(BaseModel):
    id: int
    pair: str
    side: str
    regime: str | None
    entry_time: datetime
    entry_price: float
    amount: float
    stake: float
    leverage: float
    initial_stop: float
    stop: float | None = Field(description="the stop in force now (open) or at the close")
    exit_time: datetime | None
    exit_price: float | None
    exit_reason: str | None
    profit: float | None = Field(description="realized, after fees and funding")
    profit_ratio: float | None
    fees: float
    tags: list[str]
    margin: float | None
    liquidation_price: float | None


class TradePage(BaseModel):
    trades: list[TradeOut] = Field(description="closed trades, newest (highest id) first")
    next: int | None = Field(
        description="the cursor for the next page (pass it as `after`); null on the last page"
    )


class PositionOut(TradeOut):
    price: float | None = Field(description="the pair's last close; None from a stored session")
    unrealized: float | None = Field(description="profit if closed at `price`")
    take_profits_done: int
    trailing: bool = Field(description="the stop has moved from where it began")


class EquityPoint(BaseModel):
    time: datetime
    realized: float = Field(description="starting balance plus closed trades' profit")
    total: float | None = Field(description="realized plus open trades at the last close")


class EventOut(BaseModel):
    kind: str
    time: datetime
    message: str
    data: dict[str, Any]


class PartOut(BaseModel):
    text: str
    value: str


class LineOut(BaseModel):
    label: str
    text: str = Field(description="the condition as written in the strategy file")
    value: str
    holds: bool | None
    parts: list[PartOut]


class DecisionOut(BaseModel):
    time: datetime = Field(description="the close at which it was decided")
    pair: str
    side: str
    verdict: str = Field(description="explain's verdict: SIGNAL, or no signal")
    held: int
    total: int
    outcome: str = Field(description="entered (trade #n), why no slot, or what was missing")
    lines: list[LineOut]


class StrategyOut(BaseModel):
    name: str
    path: str
    text: str
    params: dict[str, str]


class ScannerChange(BaseModel):
    time: datetime
    added: list[str]
    removed: list[str]


class ScannerOut(BaseModel):
    pairs: list[str] = Field(description="the pairs on the scanner's list at the last close")
    changes: list[ScannerChange]


class PairStateOut(BaseModel):
    pair: str
    regime: str | None
    blocked: bool = Field(description="a protection blocks new entries on this pair")
    shortlisted: bool


class StatusOut(BaseModel):
    source: Literal["session", "store", "results"]
    strategy: str
    running: bool = Field(description="a session runs in this process: controls can work")
    paused: bool
    stopping: bool
    fail_safe: bool
    exchange: str = Field(description="the exchange's health, as the session last saw it")
    last_close: datetime | None
    controls: ControlsState
    stake_currency: str
    pairs: list[PairStateOut]


class CandleOut(BaseModel):
    time: int = Field(description="open time, Unix seconds")
    open: float
    high: float
    low: float
    close: float


class ControlOut(BaseModel):
    ok: bool
    message: str
    closing: list[int] = Field(default=[], description="a close: the trades it closes")
    canceled: int = Field(
        default=0, description="a close: entry orders waiting to fill it canceled"
    )

"""Rows ⇄ the plain records the rest of kinetic-rules uses (Trade, Fill, OrderState,
Event), and the checks that keep unstorable values out of the database."""

from __future__ import annotations

import json
import math
from typing import cast

import pandas as pd

from kinetic_rules.engine.model import Fill, Side, Trade
from kinetic_rules.engine.orders import Event, EventKind, OrderKind, OrderState, OrderStatus
from kinetic_rules.persist.models import EventRow, FillRow, OrderRow, TradeRow


def fill_row(seq: int, fill: Fill) -> FillRow:
    return FillRow(
        seq=seq, time=fill.time, price=fill.price, amount=fill.amount, fee=fill.fee,
        reason=fill.reason,
    )  # fmt: skip


def new_row(trade: Trade, strategy: str, mode: str) -> TradeRow:
    row = TradeRow(
        strategy=strategy, mode=mode, pair=trade.pair, side=trade.side, regime=trade.regime,
        signal_time=trade.signal_time, entry_time=trade.entry_time,
        entry_price=trade.entry_price, amount=trade.amount, stake=trade.stake,
        leverage=trade.leverage, initial_stop=trade.initial_stop, stop=trade.stop,
        exit_time=trade.exit_time, exit_price=trade.exit_price, exit_reason=trade.exit_reason,
        profit=None if trade.is_open else trade.profit, tags=" ".join(trade.tags),
        margin=trade.margin, liquidation_price=trade.liquidation_price, funding=trade.funding,
        fills=[fill_row(seq, fill) for seq, fill in enumerate(trade.fills)],
    )  # fmt: skip
    return row


def same_fill(row: FillRow, fill: Fill) -> bool:
    return (row.time, row.price, row.amount, row.fee, row.reason) == (
        pd.Timestamp(fill.time), fill.price, fill.amount, fill.fee, fill.reason
    )  # fmt: skip


def append_fill(row: TradeRow, fill: Fill) -> None:
    if any(same_fill(existing, fill) for existing in row.fills):
        return
    row.fills.append(fill_row(max((f.seq for f in row.fills), default=-1) + 1, fill))
    if row.exit_time is not None:
        row.profit = to_trade(row).profit


def to_trade(row: TradeRow) -> Trade:
    return Trade(
        id=row.id, pair=row.pair, side=cast(Side, row.side), regime=row.regime,
        signal_time=row.signal_time, entry_time=row.entry_time, entry_price=row.entry_price,
        amount=row.amount, stake=row.stake, leverage=row.leverage,
        initial_stop=row.initial_stop, exit_time=row.exit_time, exit_price=row.exit_price,
        exit_reason=row.exit_reason, stop=row.stop,
        fills=[Fill(f.time, f.price, f.amount, f.fee, f.reason) for f in row.fills],
        tags=tuple((row.tags or "").split()), margin=row.margin,
        liquidation_price=row.liquidation_price, funding=row.funding or 0.0,
    )  # fmt: skip


def to_order(row: OrderRow) -> OrderState:
    return OrderState(
        client_id=row.client_id, exchange_id=row.exchange_id, pair=row.pair,
        status=cast(OrderStatus, row.status), kind=cast(OrderKind, row.kind),
        amount=row.amount, filled=row.filled, average=row.average, fee=row.fee,
        updated=row.updated, reason=row.reason, raw=json.loads(row.raw),
    )  # fmt: skip


def to_event(row: EventRow) -> Event:
    data = json.loads(row.data)
    return Event(cast(EventKind, row.kind), row.time, row.message, data)


# -- checks: what the database could not give back exactly is refused up front ----------
# NaN becomes NULL in SQLite; an infinite price would make the stored profit NaN. Only
# stops may be infinite (a strategy without a stop loss has a stop at -inf / +inf).


def check_number(name: str, value: float, *, infinite_ok: bool = False) -> None:
    if math.isnan(value) or (math.isinf(value) and not infinite_ok):
        raise ValueError(f"{name} is {value}: only finite numbers can be stored")


def check_stop(value: float | None) -> None:
    if value is not None:
        check_number("stop", value, infinite_ok=True)


def check_fill(fill: Fill) -> None:
    for name in ("price", "amount", "fee"):
        check_number(f"fill {name}", getattr(fill, name))


def check_trade(trade: Trade) -> None:
    for name in ("entry_price", "amount", "stake", "leverage", "funding"):
        check_number(name, getattr(trade, name))
    check_number("initial_stop", trade.initial_stop, infinite_ok=True)
    for name in ("margin", "liquidation_price"):
        value = getattr(trade, name)
        if value is not None:
            check_number(name, value)
    for tag in trade.tags:
        if not tag or any(c.isspace() for c in tag):
            raise ValueError(f"tag {tag!r}: tags are names, without spaces")
    check_stop(trade.stop)
    if trade.exit_price is not None:
        check_number("exit_price", trade.exit_price)
    for fill in trade.fills:
        check_fill(fill)

"""Trades as JSON, exactly: deserialize_trade(serialize_trade(t)) == t for every trade.

Floats are written with Python's shortest round-tripping repr; the infinite stop of a
strategy without a stop loss is written "Infinity" / "-Infinity" (strict JSON has no
such numbers). Times are ISO 8601 in UTC with as many fractional digits as they carry.
Derived values (profit, profit_ratio, fees, is_open) are written for readers and
ignored when reading: they follow from the rest.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from typing import Any, cast

import numpy as np
import pandas as pd

from kinetic_rules.engine.model import Fill, Side, Trade
from kinetic_rules.errors import DataError

_NON_FINITE = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


def _number(value: float) -> float | str:
    if math.isfinite(value):
        return float(value)
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _time(value: pd.Timestamp) -> str:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat()


def fill_to_dict(fill: Fill) -> dict[str, Any]:
    return {
        "time": _time(fill.time),
        "price": _number(fill.price),
        "amount": _number(fill.amount),
        "fee": _number(fill.fee),
        "reason": fill.reason,
    }


def trade_to_dict(trade: Trade) -> dict[str, Any]:
    """A JSON-ready dict holding every field of the trade, its fills in order."""

    def optional(value: float | None) -> float | str | None:
        return None if value is None else _number(value)

    return {
        "id": trade.id,
        "pair": trade.pair,
        "side": trade.side,
        "regime": trade.regime,
        "signal_time": _time(trade.signal_time),
        "entry_time": _time(trade.entry_time),
        "entry_price": _number(trade.entry_price),
        "amount": _number(trade.amount),
        "stake": _number(trade.stake),
        "leverage": _number(trade.leverage),
        "initial_stop": _number(trade.initial_stop),
        "stop": optional(trade.stop),
        "exit_time": None if trade.exit_time is None else _time(trade.exit_time),
        "exit_price": optional(trade.exit_price),
        "exit_reason": trade.exit_reason,
        "fills": [fill_to_dict(f) for f in trade.fills],
        "tags": list(trade.tags),
        "margin": optional(trade.margin),
        "liquidation_price": optional(trade.liquidation_price),
        "funding": _number(trade.funding),
        "is_open": trade.is_open,
        "profit": _number(trade.profit),
        "profit_ratio": _number(trade.profit_ratio),
        "fees": _number(trade.fees),
    }


def serialize_trade(trade: Trade) -> str:
    return json.dumps(trade_to_dict(trade), sort_keys=True, allow_nan=False)


def serialize_trades(trades: list[Trade], *, indent: int | None = 2) -> str:
    """A JSON array of trades, as `kinetic-rules trades --format json` writes it."""
    rows = [trade_to_dict(t) for t in trades]
    return json.dumps(rows, sort_keys=True, indent=indent, allow_nan=False)


# -- reading -------------------------------------------------------------------------------


class _Reader:
    """Reads one JSON object, naming the field and the trade in every complaint."""

    def __init__(self, row: object, what: str) -> None:
        if not isinstance(row, dict):
            raise DataError(f"{what}: expected a JSON object, got {type(row).__name__}")
        self.row = cast(dict[str, Any], row)
        self.what = what

    def bad(self, key: str, expected: str) -> DataError:
        return DataError(f"{self.what}: '{key}' must be {expected}, got {self.row.get(key)!r}")

    def text(self, key: str, *, optional: bool = False) -> str | None:
        value = self.row.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self.bad(key, "a string")
        return value

    def number(self, key: str, *, optional: bool = False) -> float | None:
        value = self.row.get(key)
        if value is None and optional:
            return None
        if isinstance(value, str) and value in _NON_FINITE:
            return _NON_FINITE[value]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.bad(key, "a number")
        return float(value)

    def time(self, key: str, *, optional: bool = False) -> pd.Timestamp | None:
        value = self.text(key, optional=optional)
        if value is None:
            return None
        try:
            stamp = pd.Timestamp(value)
        except ValueError:
            raise self.bad(key, "an ISO 8601 time") from None
        if pd.isna(stamp) or stamp.tzinfo is None:
            raise self.bad(key, "an ISO 8601 time with a UTC offset")
        return stamp.tz_convert("UTC")

    def words(self, key: str) -> tuple[str, ...]:
        """A list of strings; absent (a trade written before tags existed) is empty."""
        value = self.row.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.bad(key, "a list of strings")
        return tuple(value)

    def required_number(self, key: str) -> float:
        value = self.number(key)
        assert value is not None
        return value

    def required_time(self, key: str) -> pd.Timestamp:
        value = self.time(key)
        assert value is not None
        return value


def fill_from_dict(row: object, what: str = "fill") -> Fill:
    r = _Reader(row, what)
    reason = r.text("reason")
    assert reason is not None
    return Fill(
        time=r.required_time("time"),
        price=r.required_number("price"),
        amount=r.required_number("amount"),
        fee=r.required_number("fee"),
        reason=reason,
    )


def trade_from_dict(row: object) -> Trade:
    """The inverse of trade_to_dict; DataError names the field that is wrong."""
    what = f"trade {row.get('id')!r}" if isinstance(row, dict) else "trade"
    r = _Reader(row, what)
    trade_id = r.row.get("id")
    if isinstance(trade_id, bool) or not isinstance(trade_id, int):
        raise r.bad("id", "an integer")
    side = r.text("side")
    if side not in ("long", "short"):
        raise r.bad("side", "'long' or 'short'")
    fills = r.row.get("fills", [])
    if not isinstance(fills, list):
        raise r.bad("fills", "a list")
    pair = r.text("pair")
    assert pair is not None
    return Trade(
        id=trade_id,
        pair=pair,
        side=cast(Side, side),
        regime=r.text("regime", optional=True),
        signal_time=r.required_time("signal_time"),
        entry_time=r.required_time("entry_time"),
        entry_price=r.required_number("entry_price"),
        amount=r.required_number("amount"),
        stake=r.required_number("stake"),
        leverage=r.required_number("leverage"),
        initial_stop=r.required_number("initial_stop"),
        exit_time=r.time("exit_time", optional=True),
        exit_price=r.number("exit_price", optional=True),
        exit_reason=r.text("exit_reason", optional=True),
        stop=r.number("stop", optional=True),
        fills=[fill_from_dict(f, f"{what}, fill {i + 1}") for i, f in enumerate(fills)],
        tags=r.words("tags"),
        margin=r.number("margin", optional=True),
        liquidation_price=r.number("liquidation_price", optional=True),
        funding=r.number("funding", optional=True) or 0.0,  # books saved before funding
    )


def _parse(text: str | bytes, what: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{what} is not valid JSON: {error}") from None


def deserialize_trade(text: str | bytes) -> Trade:
    return trade_from_dict(_parse(text, "trade"))


def deserialize_trades(text: str | bytes) -> list[Trade]:
    rows = _parse(text, "trade list")
    if not isinstance(rows, list):
        raise DataError("a trade list must be a JSON array of trades")
    return [trade_from_dict(row) for row in rows]


# -- free-form values (event data, exchange order records) ---------------------------------


def plain_json(value: object) -> str:
    """JSON for values we only keep for people to read: times become ISO strings,
    numpy scalars become numbers, anything else unknown becomes its str()."""
    return json.dumps(_plain(value), sort_keys=True, allow_nan=False)


def _plain(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | np.floating):
        return _number(float(value))
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return _time(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta | pd.Timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)

"""Persistence for the live runtime: trades, fills, orders, events, resume state.

SQLite (WAL) by default, any SQLAlchemy URL by choice; schema migrations run when a
store opens. See docs/persistence.md.
"""

from kinetic_rules.persist.connect import DB_ENV, StoreError, mask, resolve_url
from kinetic_rules.persist.serialize import (
    deserialize_trade,
    deserialize_trades,
    serialize_trade,
    serialize_trades,
    trade_from_dict,
    trade_to_dict,
)
from kinetic_rules.persist.store import Outcome, TradeStore

__all__ = [
    "DB_ENV",
    "Outcome",
    "StoreError",
    "TradeStore",
    "deserialize_trade",
    "deserialize_trades",
    "mask",
    "resolve_url",
    "serialize_trade",
    "serialize_trades",
    "trade_from_dict",
    "trade_to_dict",
]

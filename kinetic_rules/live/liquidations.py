"""A liquidation as the exchange recorded it, read from ccxt's unified structures.

The exchange closes a liquidated position with one or more liquidation ("force")
orders: a large position may go in steps, and each order may fill only in part. In
one-way mode a symbol holds one position, so every liquidation order on it since a
trade's entry closed that trade: together they end it, at their average fill price.

What the account lost is what the exchange booked for those orders: the realized profit
of their fills, less their fees, plus the clearance fee the exchange keeps (on Binance
the INSURANCE_CLEAR income records). Each exchange's way of fetching these records is
in its venue (live/futures.py); this module only reads them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ForceOrders:
    """The liquidation orders that closed one position, taken together."""

    order_ids: tuple[str, ...]
    time: int  # ms: when the last of them was filled
    price: float  # their average fill price, weighted by amount
    amount: float  # base units, positive


def force_orders(
    rows: Iterable[Mapping[str, Any]], symbol: str, since: int, contract_size: float = 1.0
) -> ForceOrders | None:
    """Sum up ccxt liquidation structures (`fetch_my_liquidations`) of `symbol` at or
    after `since` (ms). Orders that filled nothing are left out; a row without a usable
    time, amount or price is skipped (exchanges add and drop fields). None: none left."""
    ids: list[str] = []
    prices: set[float] = set()
    amount = cost = 0.0
    last = 0
    for row in rows:
        if row.get("symbol") != symbol:
            continue
        stamp = _number(row.get("timestamp"))
        contracts = _number(row.get("contracts"))
        if stamp is None or stamp < since or contracts is None or contracts <= 0:
            continue
        size = contracts * (_number(row.get("contractSize")) or contract_size)
        price = _number(row.get("price"))
        if price is None or price <= 0:  # no average price: the quote value over the size
            quote = _number(row.get("quoteValue"))
            price = quote / size if quote is not None and quote > 0 else None
        if price is None:
            continue
        info = row.get("info") or {}
        ids.append(str(info.get("orderId") or row.get("id") or ""))
        amount += size
        cost += size * price
        prices.add(price)
        last = max(last, int(stamp))
    if amount <= 0:
        return None
    price = prices.pop() if len(prices) == 1 else cost / amount
    return ForceOrders(tuple(i for i in ids if i), last, price, amount)


def account_loss(
    fills: Iterable[Mapping[str, Any]], clearances: Iterable[float], settlement: str
) -> float | None:
    """What the account lost to the liquidation (+ a loss): −(realized profit of the
    liquidation orders' fills − their fees + the clearance fees booked, which are
    negative). None when no fill carries its realized profit (nothing to go by)."""
    realized: float | None = None
    fees = 0.0
    for fill in fills:
        info = fill.get("info") or {}
        profit = _number(info.get("realizedPnl"))
        if profit is not None:
            realized = (realized or 0.0) + profit
        fee = fill.get("fee") or {}
        cost = _number(fee.get("cost"))
        if cost and fee.get("currency") in (settlement, None):
            fees += cost
    if realized is None:
        return None
    return -(realized - fees + sum(clearances))


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None

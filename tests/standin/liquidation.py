"""The stand-in's liquidation engine and the endpoints that tell of it.

When the mark price reaches an isolated position's liquidation price, the exchange's
liquidation engine closes it with a force order of its own (client id `autoclose-…`, a
LIMIT IOC at the bankruptcy price, reduce-only false, as the exchange shows them) that
fills at the contract price the liquidation price corresponds to. The account keeps
nothing of the position's margin: the fill's realized loss and its fee are booked as
REALIZED_PNL and COMMISSION income, the rest of the margin as the clearance fee
(INSURANCE_CLEAR). Every open order on the symbol is canceled, stops included.

Served: `GET /fapi/v1/forceOrders` (the user's force orders) and `GET /fapi/v1/allOrders`
(the order history, where force orders appear too), in the exchange's format.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import TYPE_CHECKING

from tests.standin.binance_spot import _int_param
from tests.standin.router import ApiError, Request, Response, Router

if TYPE_CHECKING:
    from tests.standin.futures_account import FuturesAccount, FuturesOrder, Position

PREFIX = "autoclose-"
ZERO = Decimal(0)


def liquidate(account: FuturesAccount, position: Position, mark_price: Decimal, when: int) -> None:
    """Close `position` by a force order at the contract price of `mark_price`."""
    from tests.standin.futures_account import FuturesFill, FuturesOrder, Position

    symbol = position.symbol
    tick = Decimal(account.market.symbols[symbol].tick_size)
    long = position.amount > 0
    qty, lost = abs(position.amount), position.margin
    fill_at = (mark_price / account.ratio(symbol)).quantize(tick)
    bankrupt = position.entry - (lost / position.amount)  # where the margin is gone
    bankrupt = bankrupt.quantize(tick, ROUND_UP if long else ROUND_DOWN)
    sign = Decimal(1) if long else Decimal(-1)
    realized = sign * qty * (fill_at - position.entry)
    fee = (qty * fill_at * account.fee_rate).quantize(Decimal("1e-8"))
    order_id = next(account._order_ids)
    order = FuturesOrder(
        order_id, f"{PREFIX}{when}{order_id % 1000:03d}", symbol,
        "SELL" if long else "BUY", "LIMIT", qty, max(bankrupt, tick), ZERO, False, "CONTRACT_PRICE",
        "IOC", when, status="FILLED", executed=qty, quote=qty * fill_at, update_time=when,
    )  # fmt: skip
    fill = FuturesFill(
        next(account._trade_ids), order.order_id, symbol, order.side, fill_at, qty, realized, fee,
        when, False,
    )  # fmt: skip
    order.fills.append(fill)
    for other in account.open_orders(symbol):
        other.status, other.update_time = "CANCELED", when
    account.orders.append(order)
    account.wallet -= lost
    trade = str(fill.trade_id)
    account._income(symbol, "REALIZED_PNL", realized, when, trade)
    account._income(symbol, "COMMISSION", -fee, when, trade)
    account._income(symbol, "INSURANCE_CLEAR", -lost - realized + fee, when)
    account.positions[symbol] = Position(symbol, update_time=when)


def install(router: Router, account: FuturesAccount) -> None:
    from tests.standin import binance_futures as api
    from tests.standin.binance_trading import _signed

    def force_orders(request: Request) -> Response:
        symbol, kind = request.param("symbol"), request.param("autoCloseType")
        if kind not in (None, "LIQUIDATION", "ADL"):
            raise ApiError(400, -1130, "Invalid data sent for a parameter.")
        limit = _int_param(request, "limit", 50)
        if not 1 <= limit <= 100:
            raise ApiError(400, -1130, "Invalid data sent for a parameter.")
        prefix = "adl_autoclose" if kind == "ADL" else PREFIX
        rows = [
            o
            for o in _history(request, account, symbol)
            if o.client_id.startswith(prefix if kind else (PREFIX, "adl_autoclose"))
        ]
        return Response(200, [api._order_json(o) for o in rows[-limit:]])

    def all_orders(request: Request) -> Response:
        symbol = api._symbol(request, account)
        limit = _int_param(request, "limit", 500)
        if not 1 <= limit <= 1000:
            raise ApiError(400, -1130, "Invalid data sent for a parameter.")
        first = _int_param(request, "orderId", None)
        rows = [
            o
            for o in _history(request, account, symbol)
            if not o.algo and (first is None or o.order_id >= first)
        ]
        return Response(200, [api._order_json(o) for o in rows[:limit]])

    router.add("GET", "/fapi/v1/forceOrders", _signed(force_orders, account))
    router.add("GET", "/fapi/v1/allOrders", _signed(all_orders, account))


def _history(request: Request, account: FuturesAccount, symbol: str | None) -> list[FuturesOrder]:
    """The symbol's orders in [startTime, endTime] (the last 7 days without them)."""
    now = account.market.clock.now()
    end = _int_param(request, "endTime", None) or now
    start = _int_param(request, "startTime", None)
    if start is None:
        start = end - 7 * 24 * 3_600_000
    if end - start > 7 * 24 * 3_600_000:
        raise ApiError(400, -1127, "More than 7 days between startTime and endTime.")
    return [
        o
        for o in account.orders
        if (symbol is None or o.symbol == symbol) and start <= o.update_time <= end
    ]

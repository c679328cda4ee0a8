"""Binance spot REST trading endpoints: account, orders, open orders, own trades.

Signed endpoints want the `X-MBX-APIKEY` header to equal the account's key (else 401
with the exchange's -2015 body) and a `signature` parameter, which is not verified.
Answers follow the exchange's documented shapes so that ccxt parses them for real.
"""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tests.standin.account import Account, Fill, Order
from tests.standin.router import ApiError, Handler, Request, Response, Router

if TYPE_CHECKING:
    from tests.standin.futures_account import FuturesAccount

PREFIX = "/api/v3"


def install(router: Router, account: Account) -> None:
    routes: dict[tuple[str, str], Handler] = {
        ("GET", "/account"): lambda r: account_info(r, account),
        ("POST", "/order"): lambda r: new_order(r, account),
        ("GET", "/order"): lambda r: query_order(r, account),
        ("DELETE", "/order"): lambda r: cancel_order(r, account),
        ("GET", "/openOrders"): lambda r: open_orders(r, account),
        ("GET", "/myTrades"): lambda r: my_trades(r, account),
    }
    for (method, path), handler in routes.items():
        router.add(method, PREFIX + path, _signed(handler, account))
    # what a keyed ccxt client asks while loading markets: no margin, no currency details
    for path in ("/margin/allPairs", "/margin/isolated/allPairs", "/capital/config/getall"):
        router.add("GET", "/sapi/v1" + path, _signed(lambda r: Response(200, []), account))


def _signed(handler: Handler, account: Account | FuturesAccount) -> Handler:
    """The API key and signature checks of every private endpoint, spot and futures alike."""

    def run(request: Request) -> Response:
        key = next((v for k, v in request.headers.items() if k.lower() == "x-mbx-apikey"), None)
        if not key:
            raise ApiError(401, -2014, "API-key format invalid.")
        if key != account.api_key:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        for name in ("timestamp", "signature"):
            _require(request, name)
        with account.lock:
            account.sync()
            return handler(request)

    return run


def account_info(request: Request, account: Account) -> Response:
    now = account.market.clock.now()
    rate = f"{account.fee_rate:.8f}"
    balances = [
        {"asset": asset, "free": _num(free), "locked": _num(locked)}
        for asset, (free, locked) in sorted(account.balances.items())
    ]
    return Response(
        200,
        {
            "makerCommission": int(account.fee_rate * 10_000),
            "takerCommission": int(account.fee_rate * 10_000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": rate, "taker": rate, "buyer": _num(0), "seller": _num(0)},
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": now,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 354937868,
        },
    )


def new_order(request: Request, account: Account) -> Response:
    order = account.place(
        _require(request, "symbol"),
        _require(request, "side"),
        _require(request, "type"),
        _decimal(request, "quantity", required=True) or Decimal(0),
        _decimal(request, "price"),
        _decimal(request, "stopPrice"),
        request.param("newClientOrderId") or "x-" + secrets.token_hex(8),
        request.param("timeInForce") or "",
    )
    ack = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_id,
        "transactTime": order.time,
    }
    kind = request.param("newOrderRespType") or "FULL"
    if kind == "ACK":
        return Response(200, ack)
    result = {**ack, **_order_fields(order), "workingTime": order.working_time}
    if kind == "RESULT":
        return Response(200, result)
    return Response(200, {**result, "fills": [_fill_json(f) for f in order.fills]})


def query_order(request: Request, account: Account) -> Response:
    symbol = _require(request, "symbol")
    order = account.find(symbol, _order_id(request), _client_id(request))
    return Response(200, _order_json(order))


def cancel_order(request: Request, account: Account) -> Response:
    symbol = _require(request, "symbol")
    order = account.cancel(symbol, _order_id(request), _client_id(request))
    return Response(
        200,
        {
            "symbol": order.symbol,
            "origClientOrderId": order.client_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": request.param("newClientOrderId") or secrets.token_hex(11),
            "transactTime": order.update_time,
            **_order_fields(order),
        },
    )


def open_orders(request: Request, account: Account) -> Response:
    symbol = request.param("symbol")
    if symbol is not None and symbol not in account.market.symbols:
        raise ApiError(400, -1121, "Invalid symbol.")
    return Response(200, [_order_json(o) for o in account.open_orders(symbol)])


def my_trades(request: Request, account: Account) -> Response:
    symbol = _require(request, "symbol")
    fills = account.trades(symbol, _order_id(request))
    limit = int(request.param("limit") or 500)
    return Response(200, [_trade_json(f) for f in fills[-limit:]])


def _order_fields(order: Order) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "price": _num(order.price),
        "origQty": _num(order.quantity),
        "executedQty": _num(order.executed),
        "origQuoteOrderQty": _num(0),
        "cummulativeQuoteQty": _num(order.quote),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }
    if order.stop_price:
        fields["stopPrice"] = _num(order.stop_price)
    return fields


def _order_json(order: Order) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_id,
        **_order_fields(order),
        "stopPrice": _num(order.stop_price),
        "icebergQty": _num(0),
        "time": order.time,
        "updateTime": order.update_time,
        "isWorking": order.working,
        "workingTime": order.working_time,
    }


def _fill_json(fill: Fill) -> dict[str, Any]:
    return {
        "price": _num(fill.price),
        "qty": _num(fill.qty),
        "commission": _num(fill.commission),
        "commissionAsset": fill.commission_asset,
        "tradeId": fill.trade_id,
    }


def _trade_json(fill: Fill) -> dict[str, Any]:
    return {
        "symbol": fill.symbol,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": -1,
        "price": _num(fill.price),
        "qty": _num(fill.qty),
        "quoteQty": _num(fill.price * fill.qty),
        "commission": _num(fill.commission),
        "commissionAsset": fill.commission_asset,
        "time": fill.time,
        "isBuyer": fill.buyer,
        "isMaker": fill.maker,
        "isBestMatch": True,
    }


def _order_id(request: Request) -> int | None:
    value = request.param("orderId")
    if value is None and not request.param("origClientOrderId"):
        either = "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        raise ApiError(400, -1102, either)
    try:
        return int(value) if value is not None else None
    except ValueError:
        raise ApiError(400, -1100, "Illegal characters found in parameter 'orderId'.") from None


def _client_id(request: Request) -> str | None:
    return request.param("origClientOrderId")


def _decimal(request: Request, name: str, *, required: bool = False) -> Decimal | None:
    value = request.param(name)
    if value is None or value == "":
        if required:
            _require(request, name)
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
    return number if number.is_finite() and number >= 0 else None


def _require(request: Request, name: str) -> str:
    value = request.param(name)
    if value is None or value == "":
        raise ApiError(
            400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def _num(value: Decimal | int) -> str:
    return f"{Decimal(value):.8f}"

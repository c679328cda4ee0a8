"""Binance USDⓈ-M futures REST endpoints (`/fapi`), as much as ccxt's `binanceusdm` uses.

Market data comes from the same recorded candles as spot (the contract's trade price);
the mark price is that price times the account's mark ratio. Trading endpoints run on
the FuturesAccount. Shapes follow the exchange's documentation, so ccxt parses them
with its real code.
"""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from tests.standin import liquidation
from tests.standin.binance_spot import (
    DEFAULT_KLINES,
    MAX_KLINES,
    book_ticker,
    depth,
    ticker_24hr,
    ticker_price,
)
from tests.standin.binance_spot import _int_param as _int
from tests.standin.binance_trading import _client_id, _order_id, _signed
from tests.standin.futures_account import (
    FuturesAccount,
    FuturesFill,
    FuturesOrder,
    Income,
    Position,
)
from tests.standin.market import KNOWN_INTERVALS, Kline
from tests.standin.router import ApiError, Handler, Request, Response, Router


def install(router: Router, account: FuturesAccount) -> None:
    market = account.market
    public: dict[str, Handler] = {
        "/fapi/v1/ping": lambda r: Response(200, {}),
        "/fapi/v1/time": lambda r: Response(200, {"serverTime": market.clock.now()}),
        "/fapi/v1/exchangeInfo": lambda r: exchange_info(r, account),
        "/fapi/v1/klines": lambda r: klines(r, account, mark=False),
        "/fapi/v1/markPriceKlines": lambda r: klines(r, account, mark=True),
        "/fapi/v1/premiumIndex": lambda r: premium_index(r, account),
        "/fapi/v1/fundingRate": lambda r: funding_history(r, account),
        "/fapi/v1/ticker/24hr": lambda r: ticker_24hr(r, market),
        "/fapi/v1/ticker/price": lambda r: ticker_price(r, market),
        "/fapi/v2/ticker/price": lambda r: ticker_price(r, market),
        "/fapi/v1/ticker/bookTicker": lambda r: book_ticker(r, market),
        "/fapi/v1/depth": lambda r: depth(r, market),
    }
    for path, handler in public.items():
        router.add("GET", path, handler)
    private: dict[tuple[str, str], Handler] = {
        ("POST", "/fapi/v1/leverage"): lambda r: set_leverage(r, account),
        ("POST", "/fapi/v1/marginType"): lambda r: set_margin_type(r, account),
        ("GET", "/fapi/v1/positionSide/dual"): lambda r: position_mode(r, account),
        ("POST", "/fapi/v1/positionSide/dual"): lambda r: set_position_mode(r, account),
        ("GET", "/fapi/v1/leverageBracket"): lambda r: leverage_brackets(r, account),
        ("GET", "/fapi/v2/positionRisk"): lambda r: position_risk(r, account),
        ("GET", "/fapi/v3/positionRisk"): lambda r: position_risk(r, account),
        ("GET", "/fapi/v2/account"): lambda r: account_info(r, account),
        ("GET", "/fapi/v3/account"): lambda r: account_info(r, account),
        ("GET", "/fapi/v2/balance"): lambda r: balances(r, account),
        ("GET", "/fapi/v3/balance"): lambda r: balances(r, account),
        ("POST", "/fapi/v1/order"): lambda r: new_order(r, account),
        ("GET", "/fapi/v1/order"): lambda r: query_order(r, account),
        ("DELETE", "/fapi/v1/order"): lambda r: cancel_order(r, account),
        ("GET", "/fapi/v1/openOrders"): lambda r: open_orders(r, account),
        ("GET", "/fapi/v1/userTrades"): lambda r: user_trades(r, account),
        ("GET", "/fapi/v1/income"): lambda r: income(r, account),
        ("POST", "/fapi/v1/algoOrder"): lambda r: new_algo_order(r, account),
        ("GET", "/fapi/v1/algoOrder"): lambda r: query_algo_order(r, account),
        ("DELETE", "/fapi/v1/algoOrder"): lambda r: cancel_algo_order(r, account),
        ("GET", "/fapi/v1/openAlgoOrders"): lambda r: open_algo_orders(r, account),
    }
    for (method, path), handler in private.items():
        router.add(method, path, _signed(handler, account))
    liquidation.install(router, account)  # /fapi/v1/forceOrders, /fapi/v1/allOrders


# -- market data ---------------------------------------------------------------------------


def exchange_info(request: Request, account: FuturesAccount) -> Response:
    market = account.market
    return Response(
        200,
        {
            "timezone": "UTC",
            "serverTime": market.clock.now(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 2400,
                },
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "0"}],
            "symbols": [_symbol_info(account, s) for s in sorted(market.symbols)],
        },
    )


def _symbol_info(account: FuturesAccount, symbol: str) -> dict[str, Any]:
    spec = account.market.symbols[symbol]
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": spec.status,
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base,
        "quoteAsset": spec.quote,
        "marginAsset": spec.quote,
        "pricePrecision": 2,
        "quantityPrecision": 3,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": spec.tick_size,
                "maxPrice": "4529764",
                "tickSize": spec.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "stepSize": spec.step_size,
                "maxQty": "1000",
                "minQty": spec.step_size,
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "stepSize": spec.step_size,
                "maxQty": "120",
                "minQty": spec.step_size,
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": spec.min_notional},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "permissionSets": ["GRID", "COPY"],
    }


def klines(request: Request, account: FuturesAccount, *, mark: bool) -> Response:
    market = account.market
    symbol = _symbol(request, account)
    interval = _require(request, "interval")
    if interval not in KNOWN_INTERVALS:
        raise ApiError(400, -1120, "Invalid interval.")
    limit = _int(request, "limit", DEFAULT_KLINES)
    if not 1 <= limit <= max(MAX_KLINES, 1500):
        raise ApiError(400, -1130, "Invalid data sent for a parameter.")
    times, rows = market.visible(symbol, interval)
    start, end = _int(request, "startTime", None), _int(request, "endTime", None)
    lo = 0 if start is None else int(np.searchsorted(times, start, side="left"))
    hi = len(times) if end is None else int(np.searchsorted(times, end, side="right"))
    chosen: list[Kline] = rows[lo:hi]
    chosen = chosen[:limit] if start is not None else chosen[-limit:]
    if mark:
        ratio = account.ratio(symbol)
        chosen = [_scaled(row, ratio) for row in chosen]
    return Response(200, chosen)


def _scaled(row: Kline, ratio: Decimal) -> Kline:
    """A mark-price kline: prices times the ratio, no volume (as the exchange serves it)."""
    prices = [_num(Decimal(str(row[i])) * ratio) for i in (1, 2, 3, 4)]
    return [row[0], *prices, "0", row[6], "0", 0, "0", "0", "0"]


def premium_index(request: Request, account: FuturesAccount) -> Response:
    def one(symbol: str) -> dict[str, Any]:
        now = account.market.clock.now()
        return {
            "symbol": symbol,
            "markPrice": _num(account.mark_now(symbol)),
            "indexPrice": _num(account.price_now(symbol)),
            "estimatedSettlePrice": _num(account.mark_now(symbol)),
            "lastFundingRate": _num(account.rate(symbol)),
            "interestRate": "0.00010000",
            "nextFundingTime": (now // account.funding_ms + 1) * account.funding_ms,
            "time": now,
        }

    if request.param("symbol") is not None:
        return Response(200, one(_symbol(request, account)))
    return Response(200, [one(s) for s in sorted(account.market.symbols)])


def funding_history(request: Request, account: FuturesAccount) -> Response:
    symbol = _symbol(request, account)
    now = account.market.clock.now()
    limit = _int(request, "limit", 100)
    start = _int(request, "startTime", None)
    end = min(_int(request, "endTime", now) or now, now)
    every = account.funding_ms
    times = list(range(-(-(start or 0) // every) * every, end + 1, every))  # from startTime on
    if start is None:
        times = list(range((end // every - limit + 1) * every, end + 1, every))
    rows = [
        {"symbol": symbol, "fundingRate": _num(account.rate(symbol)), "fundingTime": t,
         "markPrice": _num(account._mark_at(symbol, t))}
        for t in times[:limit]
    ]  # fmt: skip
    return Response(200, rows)


# -- account settings ----------------------------------------------------------------------


def set_leverage(request: Request, account: FuturesAccount) -> Response:
    symbol = _symbol(request, account)
    leverage = _int(request, "leverage", None)
    if leverage is None or not 1 <= leverage <= 125:
        raise ApiError(400, -4028, "Leverage is not valid")
    account.leverage[symbol] = leverage
    return Response(200, {"leverage": leverage, "maxNotionalValue": "1000000", "symbol": symbol})


def set_margin_type(request: Request, account: FuturesAccount) -> Response:
    symbol = _symbol(request, account)
    wanted = _require(request, "marginType").upper()
    if wanted == "CROSS":
        wanted = "CROSSED"
    if wanted not in ("ISOLATED", "CROSSED"):
        raise ApiError(400, -4003, "Margin type is not valid.")
    if account.margin_type.get(symbol, "CROSSED") == wanted:
        raise ApiError(400, -4046, "No need to change margin type.")
    held = account.positions.get(symbol)
    if (held is not None and held.amount) or account.open_orders(symbol):
        raise ApiError(400, -4048, "Margin type cannot be changed if there exists position.")
    account.margin_type[symbol] = wanted
    return Response(200, {"code": 200, "msg": "success"})


def position_mode(request: Request, account: FuturesAccount) -> Response:
    return Response(200, {"dualSidePosition": account.dual_side})


def set_position_mode(request: Request, account: FuturesAccount) -> Response:
    wanted = (request.param("dualSidePosition") or "").lower() == "true"
    if wanted == account.dual_side:
        raise ApiError(400, -4059, "No need to change position side.")
    account.dual_side = wanted
    return Response(200, {"code": 200, "msg": "success"})


def leverage_brackets(request: Request, account: FuturesAccount) -> Response:
    def one(symbol: str) -> dict[str, Any]:
        return {
            "symbol": symbol,
            "brackets": [
                {
                    "bracket": 1,
                    "initialLeverage": 125,
                    "notionalCap": 50000,
                    "notionalFloor": 0,
                    "maintMarginRatio": float(account.maintenance),
                    "cum": 0.0,
                },
            ],
        }

    if request.param("symbol") is not None:
        return Response(200, [one(_symbol(request, account))])
    return Response(200, [one(s) for s in sorted(account.market.symbols)])


# -- positions and balances ----------------------------------------------------------------


def _position_json(account: FuturesAccount, position: Position) -> dict[str, Any]:
    symbol = position.symbol
    mark = account.mark_now(symbol)
    isolated = account.isolated(symbol)
    unrealized = account.unrealized(position)
    return {
        "symbol": symbol,
        "positionSide": "BOTH",
        "positionAmt": _num(position.amount),
        "entryPrice": _num(position.entry),
        "breakEvenPrice": _num(position.entry),
        "markPrice": _num(mark),
        "unRealizedProfit": _num(unrealized),
        "liquidationPrice": _num(account.liquidation_price(position)),
        "isolatedMargin": _num(position.margin + unrealized if isolated else 0),
        "isolatedWallet": _num(position.margin if isolated else 0),
        "notional": _num(position.amount * mark),
        "marginType": "isolated" if isolated else "cross",
        "isAutoAddMargin": "false",
        "leverage": str(account.leverage_of(symbol)),
        "maxNotionalValue": "1000000",
        "initialMargin": _num(account.initial_margin(position)),
        "maintMargin": _num(abs(position.amount) * mark * account.maintenance),
        "positionInitialMargin": _num(account.initial_margin(position)),
        "openOrderInitialMargin": "0",
        "adl": 1,
        "bidNotional": "0",
        "askNotional": "0",
        "marginAsset": "USDT",
        "updateTime": position.update_time,
    }


def position_risk(request: Request, account: FuturesAccount) -> Response:
    wanted = request.param("symbol")
    symbols = [wanted] if wanted else sorted(account.market.symbols)
    rows = [
        _position_json(account, account.positions.get(s) or _flat(s))
        for s in symbols
        if s in account.market.symbols
    ]
    return Response(200, rows)


def _flat(symbol: str) -> Position:
    return Position(symbol)


def _asset_json(account: FuturesAccount) -> dict[str, Any]:
    unrealized = sum((account.unrealized(p) for p in account.positions.values()), Decimal(0))
    available = account.available()
    initial = sum(
        (account.initial_margin(p) for p in account.positions.values() if p.amount), Decimal(0)
    )
    return {
        "asset": "USDT",
        "walletBalance": _num(account.wallet),
        "unrealizedProfit": _num(unrealized),
        "marginBalance": _num(account.wallet + unrealized),
        "maintMargin": "0",
        "initialMargin": _num(initial),
        "positionInitialMargin": _num(initial),
        "openOrderInitialMargin": "0",
        "crossWalletBalance": _num(account.wallet),
        "crossUnPnl": _num(unrealized),
        "availableBalance": _num(available),
        "maxWithdrawAmount": _num(available),
        "marginAvailable": True,
        "updateTime": account.market.clock.now(),
    }


def account_info(request: Request, account: FuturesAccount) -> Response:
    asset = _asset_json(account)
    return Response(
        200,
        {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": 0,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
            "totalInitialMargin": asset["initialMargin"],
            "totalMaintMargin": "0",
            "totalWalletBalance": asset["walletBalance"],
            "totalUnrealizedProfit": asset["unrealizedProfit"],
            "totalMarginBalance": asset["marginBalance"],
            "totalPositionInitialMargin": asset["initialMargin"],
            "totalOpenOrderInitialMargin": "0",
            "totalCrossWalletBalance": asset["walletBalance"],
            "totalCrossUnPnl": asset["unrealizedProfit"],
            "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"],
            "assets": [asset],
            "positions": [
                _position_json(account, p) for p in account.positions.values() if p.amount
            ],
        },
    )


def balances(request: Request, account: FuturesAccount) -> Response:
    asset = _asset_json(account)
    return Response(
        200,
        [{"accountAlias": "SgsR", "asset": "USDT", "balance": asset["walletBalance"],
          "crossWalletBalance": asset["walletBalance"], "crossUnPnl": asset["crossUnPnl"],
          "availableBalance": asset["availableBalance"],
          "maxWithdrawAmount": asset["maxWithdrawAmount"], "marginAvailable": True,
          "updateTime": asset["updateTime"]}],
    )  # fmt: skip


# -- orders --------------------------------------------------------------------------------


def new_order(request: Request, account: FuturesAccount) -> Response:
    if account.dual_side and (request.param("positionSide") or "BOTH") == "BOTH":
        raise ApiError(400, -4061, "Order's position side does not match user's setting.")
    order = _place(request, account, trigger="stopPrice", client_id="newClientOrderId")
    return Response(200, _order_json(order))


def new_algo_order(request: Request, account: FuturesAccount) -> Response:
    """A conditional order (stop, take-profit) of the algo service."""
    if _require(request, "algoType") != "CONDITIONAL":
        raise ApiError(400, -1116, "Invalid algoType.")
    order = _place(request, account, trigger="triggerPrice", client_id="clientAlgoId", algo=True)
    return Response(200, _algo_json(account, order))


def _place(
    request: Request, account: FuturesAccount, *, trigger: str, client_id: str, algo: bool = False
) -> FuturesOrder:
    """Both order endpoints place the same way; they name the trigger and the id apart."""
    return account.place(
        _symbol(request, account),
        _require(request, "side"),
        _require(request, "type"),
        _decimal(request, "quantity", required=True) or Decimal(0),
        _decimal(request, "price"),
        _decimal(request, trigger),
        request.param(client_id) or "x-" + secrets.token_hex(8),
        request.param("timeInForce") or "",
        reduce_only=(request.param("reduceOnly") or "").lower() == "true",
        working_type=request.param("workingType") or "CONTRACT_PRICE",
        algo=algo,
    )


def query_algo_order(request: Request, account: FuturesAccount) -> Response:
    symbol = _symbol(request, account)
    order = account.find(symbol, _int(request, "algoId", None), request.param("clientAlgoId"),
                         algo=True)  # fmt: skip
    return Response(200, _algo_json(account, order))


def cancel_algo_order(request: Request, account: FuturesAccount) -> Response:
    symbol = _symbol(request, account)
    order = account.cancel(symbol, _int(request, "algoId", None), request.param("clientAlgoId"),
                           algo=True)  # fmt: skip
    return Response(
        200, {"algoId": order.order_id, "clientAlgoId": order.client_id, "code": "200",
              "msg": "success"},
    )  # fmt: skip


def open_algo_orders(request: Request, account: FuturesAccount) -> Response:
    symbol = request.param("symbol")
    return Response(200, [_algo_json(account, o) for o in account.open_orders(symbol, algo=True)])


def query_order(request: Request, account: FuturesAccount) -> Response:
    order = account.find(_symbol(request, account), _order_id(request), _client_id(request))
    return Response(200, _order_json(order))


def cancel_order(request: Request, account: FuturesAccount) -> Response:
    order = account.cancel(_symbol(request, account), _order_id(request), _client_id(request))
    return Response(200, _order_json(order))


def open_orders(request: Request, account: FuturesAccount) -> Response:
    symbol = request.param("symbol")
    if symbol is not None and symbol not in account.market.symbols:
        raise ApiError(400, -1121, "Invalid symbol.")
    return Response(200, [_order_json(o) for o in account.open_orders(symbol, algo=False)])


def user_trades(request: Request, account: FuturesAccount) -> Response:
    symbol = _symbol(request, account)
    order_id = _int(request, "orderId", None)
    fills = account.trades(symbol, order_id)
    limit = _int(request, "limit", 500)
    return Response(200, [_trade_json(f) for f in fills[-limit:]])


def income(request: Request, account: FuturesAccount) -> Response:
    symbol, kind = request.param("symbol"), request.param("incomeType")
    start, end = _int(request, "startTime", None), _int(request, "endTime", None)
    limit = _int(request, "limit", 100)
    rows = [
        _income_json(i)
        for i in account.incomes
        if (symbol is None or i.symbol == symbol)
        and (kind is None or i.kind == kind)
        and (start is None or i.time >= start)
        and (end is None or i.time <= end)
    ]
    return Response(200, rows[:limit])


def _order_json(order: FuturesOrder) -> dict[str, Any]:
    return {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": order.status,
        "clientOrderId": order.client_id,
        "price": _num(order.price),
        "avgPrice": _num(order.average),
        "origQty": _num(order.quantity),
        "executedQty": _num(order.executed),
        "cumQty": _num(order.executed),
        "cumQuote": _num(order.quote),
        "timeInForce": order.time_in_force,
        "type": order.type,
        "reduceOnly": order.reduce_only,
        "closePosition": False,
        "side": order.side,
        "positionSide": "BOTH",
        "stopPrice": _num(order.stop_price),
        "workingType": order.working_type,
        "priceProtect": False,
        "origType": order.type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
        "time": order.time,
        "updateTime": order.update_time,
    }


def _algo_json(account: FuturesAccount, order: FuturesOrder) -> dict[str, Any]:
    actual = next((o for o in account.orders if o.order_id == order.actual_id), None)
    return {
        "algoId": order.order_id,
        "clientAlgoId": order.client_id,
        "algoType": "CONDITIONAL",
        "orderType": order.type,
        "symbol": order.symbol,
        "side": order.side,
        "positionSide": "BOTH",
        "timeInForce": order.time_in_force,
        "quantity": _num(order.quantity),
        "algoStatus": order.status,
        "actualOrderId": str(order.actual_id) if order.actual_id else "",
        "actualPrice": _num(actual.average if actual is not None else Decimal(0)),
        "triggerPrice": _num(order.stop_price),
        "price": _num(order.price),
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": order.working_type,
        "priceMatch": "NONE",
        "closePosition": False,
        "priceProtect": False,
        "reduceOnly": order.reduce_only,
        "createTime": order.time,
        "updateTime": order.update_time,
        "triggerTime": order.update_time if order.actual_id else 0,
        "goodTillDate": 0,
    }


def _trade_json(fill: FuturesFill) -> dict[str, Any]:
    return {
        "buyer": fill.side == "BUY",
        "commission": _num(fill.commission),
        "commissionAsset": "USDT",
        "id": fill.trade_id,
        "maker": fill.maker,
        "orderId": fill.order_id,
        "price": _num(fill.price),
        "qty": _num(fill.qty),
        "quoteQty": _num(fill.price * fill.qty),
        "realizedPnl": _num(fill.realized),
        "side": fill.side,
        "positionSide": "BOTH",
        "symbol": fill.symbol,
        "time": fill.time,
    }


def _income_json(record: Income) -> dict[str, Any]:
    return {
        "symbol": record.symbol,
        "incomeType": record.kind,
        "income": _num(record.amount),
        "asset": "USDT",
        "info": record.kind,
        "time": record.time,
        "tranId": record.tran_id,
        "tradeId": record.trade_id,
    }


# -- parameters ----------------------------------------------------------------------------


def _symbol(request: Request, account: FuturesAccount) -> str:
    symbol = _require(request, "symbol")
    if symbol not in account.market.symbols:
        raise ApiError(400, -1121, "Invalid symbol.")
    return symbol


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
    return number if number.is_finite() and number > 0 else None


def _require(request: Request, name: str) -> str:
    value = request.param(name)
    if value is None or value == "":
        raise ApiError(
            400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def _num(value: Decimal | int) -> str:
    return f"{Decimal(value):.8f}"

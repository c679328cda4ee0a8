"""Binance spot REST market-data endpoints, as much as ccxt's `binance` class uses.

Payloads follow the exchange's documented shapes (strings for decimals, epoch ms for
times, `{"code", "msg"}` for errors) so that ccxt parses them with its real code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.standin.market import KNOWN_INTERVALS, Kline, Market
from tests.standin.router import ApiError, Request, Response, Router

PREFIX = "/api/v3"
MAX_KLINES = 1000
DEFAULT_KLINES = 500


def install(router: Router, market: Market) -> None:
    routes = {
        "/ping": lambda r: Response(200, {}),
        "/time": lambda r: Response(200, {"serverTime": market.clock.now()}),
        "/exchangeInfo": lambda r: exchange_info(r, market),
        "/klines": lambda r: klines(r, market),
        "/ticker/24hr": lambda r: ticker_24hr(r, market),
        "/ticker/price": lambda r: ticker_price(r, market),
        "/ticker/bookTicker": lambda r: book_ticker(r, market),
        "/depth": lambda r: depth(r, market),
    }
    for path, handler in routes.items():
        router.add("GET", PREFIX + path, handler)


def exchange_info(request: Request, market: Market) -> Response:
    wanted = _symbols_param(request, market)
    symbols = [_symbol_info(market, s) for s in wanted]
    return Response(
        200,
        {
            "timezone": "UTC",
            "serverTime": market.clock.now(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        },
    )


def _symbol_info(market: Market, symbol: str) -> dict[str, Any]:
    spec = market.symbols[symbol]
    return {
        "symbol": spec.symbol,
        "status": spec.status,
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": spec.tick_size,
                "maxPrice": "1000000.00000000",
                "tickSize": spec.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": spec.step_size,
                "maxQty": "9000000.00000000",
                "stepSize": spec.step_size,
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "100000.00000000",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": spec.min_notional,
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def klines(request: Request, market: Market) -> Response:
    symbol = _require(request, "symbol")
    interval = _require(request, "interval")
    if symbol not in market.symbols:
        raise ApiError(400, -1121, "Invalid symbol.")
    if interval not in KNOWN_INTERVALS:
        raise ApiError(400, -1120, "Invalid interval.")
    limit = _int_param(request, "limit", DEFAULT_KLINES)
    if not 1 <= limit <= MAX_KLINES:
        raise ApiError(400, -1130, "Invalid data sent for a parameter.")
    times, rows = market.visible(symbol, interval)
    start = _int_param(request, "startTime", None)
    end = _int_param(request, "endTime", None)
    lo = 0 if start is None else int(np.searchsorted(times, start, side="left"))
    hi = len(times) if end is None else int(np.searchsorted(times, end, side="right"))
    chosen: list[Kline] = rows[lo:hi]
    chosen = chosen[:limit] if start is not None else chosen[-limit:]
    return Response(200, chosen)


def ticker_24hr(request: Request, market: Market) -> Response:
    if request.param("symbol") is not None:
        return Response(200, _ticker(market, _one_symbol(request, market)))
    return Response(200, [_ticker(market, s) for s in _symbols_param(request, market)])


def _ticker(market: Market, symbol: str) -> dict[str, Any]:
    now = market.clock.now()
    listing = market.listings.get(symbol)
    if listing is not None and market.finest_interval(symbol) is None:
        quote = market.volumes.get(symbol, listing.quote_volume)
        return _listed_ticker(market, symbol, listing.last, quote)
    interval = market.finest_interval(symbol)
    times, rows = market.visible(symbol, interval) if interval else (np.empty(0), [])
    window = rows[int(np.searchsorted(times, now - 86_400_000, side="right")) :]
    if not window:
        window = rows[-1:]
    first_open = float(str(window[0][1])) if window else 0.0
    last = float(str(window[-1][4])) if window else 0.0
    high = max((float(str(r[2])) for r in window), default=0.0)
    low = min((float(str(r[3])) for r in window), default=0.0)
    volume = sum(float(str(r[5])) for r in window)
    quote = sum(float(str(r[7])) for r in window)
    if symbol in market.volumes:
        quote = market.volumes[symbol]
        volume = quote / last if last else 0.0
    last = market.lasts.get(symbol, last)
    bid, ask = _touch(market, symbol, last)
    change = last - first_open
    return {
        "symbol": symbol,
        "priceChange": _num(change),
        "priceChangePercent": _num(100 * change / first_open if first_open else 0.0, 3),
        "weightedAvgPrice": _num(quote / volume if volume else last),
        "prevClosePrice": _num(first_open),
        "lastPrice": _num(last),
        "lastQty": "0.10000000",
        "bidPrice": _num(bid[0]),
        "bidQty": _num(bid[1]),
        "askPrice": _num(ask[0]),
        "askQty": _num(ask[1]),
        "openPrice": _num(first_open),
        "highPrice": _num(high),
        "lowPrice": _num(low),
        "volume": _num(volume),
        "quoteVolume": _num(quote),
        "openTime": now - 86_400_000,
        "closeTime": now,
        "firstId": 1,
        "lastId": len(window),
        "count": len(window),
    }


def _listed_ticker(market: Market, symbol: str, last: float, quote: float) -> dict[str, Any]:
    """The 24-hour statistics of a market listed without candles: flat, at its last price."""
    now = market.clock.now()
    bid, ask = _touch(market, symbol, last)
    return {
        "symbol": symbol,
        "priceChange": _num(0.0),
        "priceChangePercent": _num(0.0, 3),
        "weightedAvgPrice": _num(last),
        "prevClosePrice": _num(last),
        "lastPrice": _num(last),
        "lastQty": "0.10000000",
        "bidPrice": _num(bid[0]),
        "bidQty": _num(bid[1]),
        "askPrice": _num(ask[0]),
        "askQty": _num(ask[1]),
        "openPrice": _num(last),
        "highPrice": _num(last),
        "lowPrice": _num(last),
        "volume": _num(quote / last if last else 0.0),
        "quoteVolume": _num(quote),
        "openTime": now - 86_400_000,
        "closeTime": now,
        "firstId": 1,
        "lastId": 1,
        "count": 1,
    }


def _book(market: Market, symbol: str, levels: int) -> tuple[list[Any], list[Any]]:
    """The symbol's own book when a test set one, else one coin per tick around the last price."""
    if symbol in market.books:
        bids, asks = market.books[symbol]
        return list(bids[:levels]), list(asks[:levels])
    last = market.last_price(symbol) or 0.0
    tick = float(market.symbols[symbol].tick_size)
    bids = [(last - i * tick, 1.0) for i in range(levels)]
    asks = [(last + (i + 1) * tick, 1.0) for i in range(levels)]
    return bids, asks


def _touch(
    market: Market, symbol: str, last: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Best bid and best ask, each with its amount."""
    bids, asks = _book(market, symbol, 1)
    tick = float(market.symbols[symbol].tick_size)
    return (bids[0] if bids else (last, 0.0)), (asks[0] if asks else (last + tick, 0.0))


def ticker_price(request: Request, market: Market) -> Response:
    def one(symbol: str) -> dict[str, str]:
        return {"symbol": symbol, "price": _num(market.last_price(symbol) or 0.0)}

    if request.param("symbol") is not None:
        return Response(200, one(_one_symbol(request, market)))
    return Response(200, [one(s) for s in _symbols_param(request, market)])


def book_ticker(request: Request, market: Market) -> Response:
    def one(symbol: str) -> dict[str, str]:
        bid, ask = _touch(market, symbol, market.last_price(symbol) or 0.0)
        return {
            "symbol": symbol,
            "bidPrice": _num(bid[0]),
            "bidQty": _num(bid[1]),
            "askPrice": _num(ask[0]),
            "askQty": _num(ask[1]),
        }

    if request.param("symbol") is not None:
        return Response(200, one(_one_symbol(request, market)))
    return Response(200, [one(s) for s in _symbols_param(request, market)])


def depth(request: Request, market: Market) -> Response:
    """The symbol's book: the one a test set, or a synthetic one around the last price."""
    symbol = _one_symbol(request, market)
    limit = min(_int_param(request, "limit", 100), 5000)  # more is cut to 5000
    bids, asks = _book(market, symbol, limit)
    return Response(
        200,
        {
            "lastUpdateId": market.clock.now(),
            "bids": [[_num(p), _num(a)] for p, a in bids],
            "asks": [[_num(p), _num(a)] for p, a in asks],
        },
    )


def _one_symbol(request: Request, market: Market) -> str:
    symbol = _require(request, "symbol")
    if symbol not in market.symbols:
        raise ApiError(400, -1121, "Invalid symbol.")
    return symbol


def _symbols_param(request: Request, market: Market) -> list[str]:
    single = request.param("symbol")
    if single is not None:
        return [_one_symbol(request, market)]
    return sorted(market.symbols)


def _require(request: Request, name: str) -> str:
    value = request.param(name)
    if value is None or value == "":
        raise ApiError(
            400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def _int_param(request: Request, name: str, default: Any) -> Any:
    value = request.param(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None


def _num(value: float, places: int = 8) -> str:
    return f"{value:.{places}f}"

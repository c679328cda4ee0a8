"""Futures accounts through ccxt: what differs from spot, and what differs per exchange.

The CcxtBroker stays exchange-neutral; everything one futures exchange does its own
way sits in a `FuturesVenue`. Binance USDⓈ-M is the first: its perpetuals are ccxt's
"BTC/USDT:USDT" for the strategy's "BTC/USDT", its stops and take-profits live in a
separate "algo" order service (asked with `trigger: True`), and a triggered one names
the market order that filled it. Another exchange follows by writing its own venue.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from kinetic_rules.errors import ConfigError
from kinetic_rules.live.broker import ExchangeLiquidation, ExchangePosition, OrderRequest
from kinetic_rules.live.liquidations import account_loss, force_orders

log = logging.getLogger(__name__)

MarginMode = Literal["isolated", "cross"]
StopTrigger = Literal["mark", "contract"]
INSUFFICIENT_MARGIN_CUT = 0.5  # after "insufficient margin": half the size, once
ERROR_CODE = re.compile(r'"code"\s*:\s*(-\d+)')
# Binance futures codes that refuse one order (the exchange is fine): ccxt maps them by the
# API's host name, so behind another host (a proxy, the test stand-in) they come unmapped
INSUFFICIENT_MARGIN = -2019
FORCE_ORDERS, ORDER_HISTORY = 100, 1000  # the most one request returns of each
LIQUIDATION_PREFIX = "autoclose-"  # the client id of the exchange's liquidation orders
REFUSED = {-1013, -1111, -2010, -2019, -2021, -2022, -4014, -4028, -4048, -4061, -4116, -4164}


@dataclass(frozen=True)
class FuturesSettings:
    """From the strategy: market.margin_mode and orders.stop_trigger."""

    margin_mode: MarginMode = "isolated"
    stop_trigger: StopTrigger = "mark"


class BinanceUsdm:
    """Binance USDⓈ-M perpetual futures, through ccxt's `binanceusdm` client."""

    ccxt_id = "binanceusdm"

    def symbol(self, pair: str) -> str:
        """The perpetual of a pair: BTC/USDT -> BTC/USDT:USDT (settled in the quote)."""
        if ":" in pair:
            return pair
        return f"{pair}:{pair.split('/')[1]}"

    def pair(self, symbol: str) -> str:
        return symbol.split(":")[0]

    def refuse_hedge_mode(self, exchange: Any) -> None:
        """Hedge mode holds a long and a short per symbol; the executor keeps one position
        per pair, so it trades in one-way mode only."""
        mode = exchange.fetch_position_mode()
        if mode.get("hedged"):
            raise ConfigError(
                f"{exchange.id}: the account is in hedge mode (dual-side positions); this bot "
                "trades in one-way mode. Switch the futures account to one-way mode "
                "(Preferences > Position Mode) with no open positions, then start again"
            )

    def prepare(self, exchange: Any, symbol: str, leverage: int, margin_mode: MarginMode) -> None:
        """Margin mode and leverage, set before an opening order on the symbol."""
        import ccxt

        with contextlib.suppress(ccxt.MarginModeAlreadySet):
            exchange.set_margin_mode(margin_mode, symbol)
        exchange.set_leverage(leverage, symbol)

    def order_params(self, order: OrderRequest, settings: FuturesSettings) -> dict[str, Any]:
        """Extra parameters: reduce-only for every closing order, the stop's trigger price."""
        params: dict[str, Any] = {}
        if not order.opening:
            params["reduceOnly"] = True
        if order.kind == "stop":
            params["workingType"] = (
                "MARK_PRICE" if settings.stop_trigger == "mark" else ("CONTRACT_PRICE")
            )
        return params

    def refusal(self, error: Exception) -> bool | None:
        """None when `error` is not an order refusal; else whether it is "insufficient
        margin" (which is retried once at half the size)."""
        found = ERROR_CODE.search(str(error))
        code = int(found.group(1)) if found else None
        if code not in REFUSED:
            return None
        return code == INSUFFICIENT_MARGIN

    def conditional(self, kind: str) -> dict[str, Any]:
        """How to ask about an order of this kind: stops live in the algo service."""
        return {"trigger": True} if kind == "stop" else {}

    def settle(self, exchange: Any, raw: dict[str, Any], symbol: str) -> dict[str, Any]:
        """A triggered algo order's fill is in the market order it spawned: merge it in."""
        info = raw.get("info") or {}
        if "algoStatus" not in info:
            return raw
        actual = str(info.get("actualOrderId") or "")
        merged = dict(raw)
        merged["filled"], merged["average"] = 0.0, None
        if info.get("algoStatus") in ("FINISHED", "TRIGGERED") and actual:
            filled = exchange.fetch_order(actual, symbol)
            merged.update(
                status=filled.get("status"),
                filled=filled.get("filled"),
                average=filled.get("average"),
                lastUpdateTimestamp=filled.get("lastUpdateTimestamp"),
                trades=filled.get("trades") or [],
                exchange_order_id=actual,
            )
        return merged

    def order_trades(self, exchange: Any, order_id: str, symbol: str) -> list[Any]:
        """The fills of one order (ccxt's fetch_order_trades is spot-only here)."""
        return list(exchange.fetch_my_trades(symbol, None, None, {"orderId": order_id}))

    def funding_paid(self, exchange: Any, symbol: str, since: int, until: int | None) -> float:
        """Funding paid (+) or received (−) between two times (ms), from the income
        records: their amounts are what the wallet received."""
        records = exchange.fetch_funding_history(symbol, since, 1000)
        return -sum(
            float(r.get("amount") or 0.0)
            for r in records
            if until is None or int(r.get("timestamp") or 0) <= until
        )

    def liquidation(self, exchange: Any, symbol: str, since: int) -> ExchangeLiquidation | None:
        """The liquidation orders on `symbol` since `since` (ms), with what the account
        lost to them: their fills' realized profit and fees, and the clearance fee."""
        market = exchange.market(symbol)
        size = _number(market.get("contractSize")) or 1.0
        found = force_orders(self._force_orders(exchange, symbol), symbol, since, size)
        if found is None:
            return None
        fills = [f for i in found.order_ids for f in self.order_trades(exchange, i, symbol)]
        clearances = exchange.fapiPrivateGetIncome(
            {"symbol": market["id"], "incomeType": "INSURANCE_CLEAR", "startTime": since,
             "limit": 1000}
        )  # fmt: skip
        cleared = [
            float(r.get("income") or 0.0)
            for r in clearances or []
            if int(r.get("time") or 0) >= since
        ]
        lost = account_loss(fills, cleared, str(market.get("settle") or ""))
        when = pd.Timestamp(found.time, unit="ms", tz="UTC")
        return ExchangeLiquidation(self.pair(symbol), when, found.price, found.amount, lost)

    def _force_orders(self, exchange: Any, symbol: str) -> list[dict[str, Any]]:
        """ccxt's liquidation structures: the user's force orders where ccxt has them,
        else the order history's orders the liquidation engine placed (`autoclose-`).
        Both cover the last 7 days (the most the exchange answers for without a time
        range): a liquidation found by a bot down for longer is reported, not read."""
        if exchange.has.get("fetchMyLiquidations"):
            return list(exchange.fetch_my_liquidations(symbol, None, FORCE_ORDERS))
        rows = []
        for order in exchange.fetch_orders(symbol, None, ORDER_HISTORY):
            info = order.get("info") or {}
            if not str(info.get("clientOrderId") or "").startswith(LIQUIDATION_PREFIX):
                continue
            stamp = order.get("lastUpdateTimestamp") or order.get("timestamp")
            rows.append({"symbol": order.get("symbol"), "info": info, "timestamp": stamp,
                         "contracts": order.get("filled"), "price": order.get("average"),
                         "quoteValue": order.get("cost")})  # fmt: skip
        return rows

    def positions(self, exchange: Any) -> list[ExchangePosition]:
        result = []
        for raw in exchange.fetch_positions():
            contracts = float(raw.get("contracts") or 0.0)
            if not contracts or raw.get("side") not in ("long", "short"):
                continue
            size = float(raw.get("contractSize") or 1.0)
            market = exchange.market(raw["symbol"])
            result.append(
                ExchangePosition(
                    pair=self.pair(str(raw["symbol"])),
                    side=raw["side"],
                    amount=contracts * size,
                    entry_price=float(raw.get("entryPrice") or 0.0),
                    leverage=_number(raw.get("leverage")),
                    margin_mode=raw.get("marginMode"),
                    liquidation_price=_number(raw.get("liquidationPrice")),
                    tick=_number((market.get("precision") or {}).get("price")),
                )
            )
        return result


FuturesVenue = BinanceUsdm
VENUES: dict[str, type[BinanceUsdm]] = {"binance": BinanceUsdm, "binanceusdm": BinanceUsdm}


def venue_for(exchange_id: str) -> BinanceUsdm:
    """The futures venue of an exchange id; live futures are Binance USDⓈ-M for now."""
    venue = VENUES.get(exchange_id)
    if venue is None:
        raise ConfigError(
            f"live futures trading supports {', '.join(sorted(VENUES))} in this version, "
            f"not {exchange_id} (paper trading and backtests support any exchange)"
        )
    return venue()


def _number(value: Any) -> float | None:
    return float(value) if value not in (None, "", 0, 0.0) else None

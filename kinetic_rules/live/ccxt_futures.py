"""The CcxtBroker's futures-only calls: positions, funding, liquidations, the position
mode, and the leverage and margin mode set before an opening order. Each asks the
exchange's futures venue (live/futures.py), so the broker stays exchange-neutral."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import ccxt
import pandas as pd

from kinetic_rules.live.broker import ExchangeLiquidation, ExchangePosition, OrderRequest
from kinetic_rules.live.futures import FuturesSettings, FuturesVenue
from kinetic_rules.live.robust import Redactor, exchange_reason

log = logging.getLogger("kinetic_rules.live.ccxt_broker")
T = TypeVar("T")

# the exchange is there but says no: these turn into a "rejected" OrderState
REFUSALS = (ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.BadRequest, ccxt.OperationRejected)


class FuturesCalls:
    """A part of CcxtBroker (live/ccxt_broker.py), which supplies what is declared here."""

    exchange: Any
    _venue: FuturesVenue | None
    _settings: FuturesSettings
    _leverage: dict[str, int]
    _redact: Redactor

    def _call(self, what: str, action: Callable[[], T]) -> T:
        raise NotImplementedError

    def _load_markets(self) -> None:
        raise NotImplementedError

    def _market(self, pair: str) -> dict[str, Any]:
        raise NotImplementedError

    def _symbol(self, pair: str) -> str:
        raise NotImplementedError

    def positions(self) -> list[ExchangePosition] | None:
        """Futures: the open positions, with their leverage and liquidation price."""
        venue = self._venue
        if venue is None:
            return None
        self._load_markets()
        return self._call("fetch positions", lambda: venue.positions(self.exchange))

    def funding(
        self, pair: str, since: pd.Timestamp, until: pd.Timestamp | None = None
    ) -> float | None:
        """Futures: funding paid (+) or received (−) on `pair` in [since, until]."""
        venue = self._venue
        if venue is None:
            return None
        symbol = self._symbol(pair)
        start, end = _ms(since), None if until is None else _ms(until)
        return self._call(
            f"fetch funding of {pair}",
            lambda: venue.funding_paid(self.exchange, symbol, start, end),
        )

    def liquidation(self, pair: str, since: pd.Timestamp) -> ExchangeLiquidation | None:
        """Futures: the liquidation orders the exchange filled on `pair` since `since`."""
        venue = self._venue
        if venue is None:
            return None
        symbol = self._symbol(pair)
        self._market(pair)
        return self._call(
            f"fetch liquidations of {pair}",
            lambda: venue.liquidation(self.exchange, symbol, _ms(since)),
        )

    def check_account(self) -> None:
        """Futures: refuse an account in hedge (dual-side) mode before anything is traded."""
        venue = self._venue
        if venue is not None:
            self._load_markets()
            self._call("fetch position mode", lambda: venue.refuse_hedge_mode(self.exchange))

    def _prepare(self, order: OrderRequest) -> None:
        """Margin mode and leverage on the symbol, before an order that opens a position."""
        venue, symbol = self._venue, self._symbol(order.pair)
        assert venue is not None
        leverage = max(1, round(order.leverage or 1.0))
        if self._leverage.get(symbol) == leverage:
            return
        mode = self._settings.margin_mode

        def prepare() -> None:
            try:
                venue.prepare(self.exchange, symbol, leverage, mode)
            except ccxt.ExchangeError as error:  # e.g. the margin mode under a position
                if not isinstance(error, REFUSALS) and venue.refusal(error) is None:
                    raise
                reason = self._redact(exchange_reason(error, self.exchange.id))
                log.warning("%s: leverage %dx / %s margin not set: %s", order.pair, leverage,
                            mode, reason)  # fmt: skip

        self._call(f"set leverage {leverage}x on {order.pair}", prepare)
        self._leverage[symbol] = leverage


def _ms(stamp: pd.Timestamp) -> int:
    return int(stamp.value // 1_000_000)

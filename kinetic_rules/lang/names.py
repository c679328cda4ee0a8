"""Built-in names and where each may be used. The checker and the docs both read this."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Flag, auto


class Scope(Flag):
    """What a section of the file can see."""

    MARKET = auto()  # candles and everything computed from them: everywhere
    TRADE = auto()  # an open trade: stops, exits, take-profits
    SIZING = auto()  # the account at the moment a trade is sized
    LIVE = auto()  # inputs that exist only when trading live (skipped in backtests)


@dataclass(frozen=True)
class BuiltinName:
    name: str
    scope: Scope
    doc: str
    kind: str = "number"


CANDLE_FIELDS = {
    b.name: b
    for b in (
        BuiltinName("open", Scope.MARKET, "first price of the candle"),
        BuiltinName("high", Scope.MARKET, "highest price of the candle"),
        BuiltinName("low", Scope.MARKET, "lowest price of the candle"),
        BuiltinName("close", Scope.MARKET, "last price of the candle"),
        BuiltinName("volume", Scope.MARKET, "amount traded in the candle, in the base asset"),
        BuiltinName(
            "quote_volume",
            Scope.MARKET,
            "value traded in the candle, in the quote currency; estimated as volume × close "
            "when the data does not carry it (reports say so)",
        ),
    )
}

CONTEXT_NAMES = {
    b.name: b
    for b in (
        BuiltinName("entry_price", Scope.TRADE | Scope.SIZING, "price the trade was opened at"),
        BuiltinName(
            "profit",
            Scope.TRADE,
            "the trade's profit at this candle's close, as a fraction (0.025 is 2.5%); "
            "positive when a short's price falls",
        ),
        BuiltinName("max_profit", Scope.TRADE, "the best `profit` of any closed candle so far"),
        BuiltinName("bars_held", Scope.TRADE, "candles since the trade opened (0 on entry)"),
        BuiltinName("side", Scope.TRADE | Scope.SIZING, "1 for a long, -1 for a short"),
        BuiltinName("stop", Scope.TRADE | Scope.SIZING, "the stop price in force"),
        BuiltinName("equity", Scope.SIZING, "account value when the trade is sized"),
        BuiltinName("spread", Scope.LIVE, "(ask − bid) / ask from the live order book"),
        BuiltinName(
            "book_imbalance",
            Scope.LIVE,
            "(bid volume − ask volume) / (bid volume + ask volume) near the top of the live "
            "order book, from −1 (all selling) to 1 (all buying)",
        ),
    )
}

# Inputs that exist only when trading live: undefined in backtests, and reports say so.
LIVE_NAMES = frozenset(n for n, b in CONTEXT_NAMES.items() if Scope.LIVE in b.scope)

RESERVED = {"regime", "otherwise", "true", "false", "and", "or", "not", "if", "then", "else"}

"""Built-in names and where each may be used. The checker and the docs both read this."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Flag, auto

from kinetic_rules.functions.registry import MAX_CANDLES, Arg, ArgKind, Array, Function
from kinetic_rules.lang import ast
from kinetic_rules.units import Unit


class Scope(Flag):
    """What a section of the file can see."""

    MARKET = auto()  # candles and everything computed from them: everywhere
    TRADE = auto()  # an open trade: stops, exits, take-profits
    SIZING = auto()  # the account at the moment a trade is sized
    LIVE = auto()  # inputs that exist only when trading live (skipped in backtests)
    PORTFOLIO = auto()  # the whole portfolio at a decision close: entries and protections
    ENTRY = auto()  # the pair being entered, against the portfolio: entry conditions


@dataclass(frozen=True)
class BuiltinName:
    name: str
    scope: Scope
    doc: str
    kind: str = "number"
    unit: Unit = Unit.ANY  # what the value is measured in; every built-in declares it below


# What each built-in name is measured in (the checker's unit rules, docs/language.md).
_UNITS = {
    "open": Unit.PRICE,
    "high": Unit.PRICE,
    "low": Unit.PRICE,
    "close": Unit.PRICE,
    "volume": Unit.VOLUME,
    "quote_volume": Unit.MONEY,
    "entry_price": Unit.PRICE,
    "profit": Unit.RATIO,
    "max_profit": Unit.RATIO,
    "bars_held": Unit.COUNT,
    "side": Unit.NUMBER,
    "stop": Unit.PRICE,
    "equity": Unit.MONEY,
    "open_trades": Unit.COUNT,
    "open_profit": Unit.MONEY,
    "open_profit_ratio": Unit.RATIO,
    "exposure": Unit.RATIO,
    "today_profit": Unit.MONEY,
    "today_profit_ratio": Unit.RATIO,
    "today_lowest_profit_ratio": Unit.RATIO,
    "spread": Unit.RATIO,
    "book_imbalance": Unit.RATIO,
    "bid": Unit.PRICE,
    "ask": Unit.PRICE,
    "funding_rate": Unit.RATIO,
}

CANDLE_FIELDS = {
    b.name: replace(b, unit=_UNITS[b.name])
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
    b.name: replace(b, unit=_UNITS[b.name])
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
        BuiltinName(
            "equity",
            Scope.SIZING | Scope.PORTFOLIO,
            "account value: the starting balance plus the profit of every trade whose last "
            "fill is known at this close (open trades are not marked to market)",
        ),
        BuiltinName(
            "open_trades",
            Scope.PORTFOLIO,
            "slots taken at this close: open trades, and entry orders not yet filled or "
            "expired; a trade whose exit was decided at or before this close is not counted",
        ),
        BuiltinName(
            "open_profit",
            Scope.PORTFOLIO,
            "profit of every trade in the market at this close, in the stake currency, as if "
            "closed at this close: partial exits already filled, fees paid so far, and the rest "
            "marked to the pair's close",
        ),
        BuiltinName(
            "open_profit_ratio",
            Scope.PORTFOLIO,
            "open_profit as a fraction of equity (-0.05: the open trades are losing 5%)",
        ),
        BuiltinName(
            "exposure",
            Scope.PORTFOLIO,
            "stakes still in the slots taken (the share of each not yet sold; entry orders in "
            "full), as a fraction of equity: the units of sizing.stake",
        ),
        BuiltinName(
            "today_profit",
            Scope.PORTFOLIO,
            "profit, in the stake currency, of the trades whose last fill was today (UTC) and "
            "is known at this close; open trades do not count",
        ),
        BuiltinName(
            "today_profit_ratio",
            Scope.PORTFOLIO,
            "today_profit as a fraction of the equity at the start of the day",
        ),
        BuiltinName(
            "today_lowest_profit_ratio",
            Scope.PORTFOLIO,
            "the lowest today_profit_ratio of any close so far today: a loss limit on it "
            "holds until midnight even if later trades win the loss back",
        ),
        BuiltinName("spread", Scope.LIVE, "(ask − bid) / ask from the live order book"),
        BuiltinName(
            "book_imbalance",
            Scope.LIVE,
            "(bid volume − ask volume) / (bid volume + ask volume) near the top of the live "
            "order book, from −1 (all selling) to 1 (all buying)",
        ),
        BuiltinName("bid", Scope.LIVE, "best bid price of the live order book"),
        BuiltinName("ask", Scope.LIVE, "best ask price of the live order book"),
        BuiltinName(
            "funding_rate",
            Scope.LIVE,
            "futures only: the rate of the latest funding time at or before this close, per "
            "funding interval (0.0001 is 0.01%); live from the exchange, in backtests and "
            "replays from the stored funding rates",
        ),
    )
}

# Inputs that do not come from candles but from the exchange at each close: undefined
# where a mode does not supply them (compile/modes.py says which mode supplies which).
LIVE_NAMES = frozenset(n for n, b in CONTEXT_NAMES.items() if Scope.LIVE in b.scope)
FUTURES_ONLY = frozenset({"funding_rate"})  # a spot market has no funding
STORED_NAMES = frozenset({"funding_rate"})  # stored beside candles: backtests read them too


def stored_inputs(market: str) -> frozenset[str]:
    """The live inputs a backtest or replay on this market type (spot, futures) supplies."""
    return STORED_NAMES - FUTURES_ONLY if market == "spot" else STORED_NAMES


PORTFOLIO_NAMES = frozenset(n for n, b in CONTEXT_NAMES.items() if Scope.PORTFOLIO in b.scope)


def _no_series(*_: object) -> Array:
    raise TypeError("a portfolio value is no market series; the portfolio evaluates it")


# Calls whose value comes from the portfolio at a decision, not from candles. They are
# not in the function registry: no series computes them.
CONTEXT_FUNCTIONS = {
    "correlated_exposure": (
        Function(
            name="correlated_exposure",
            category="portfolio",
            doc="exposure of the slots taken on pairs whose returns correlate with this "
            "pair's by more than `threshold`, over the last `lookback` base candles",
            args=(
                Arg(
                    "threshold",
                    ArgKind.NUMBER,
                    "correlation above which a pair counts",
                    minimum=-1,
                    maximum=1,
                ),
                Arg(
                    "lookback",
                    ArgKind.WINDOW,
                    "candles of returns, or a duration",
                    minimum=2,
                    maximum=MAX_CANDLES,
                ),
            ),
            returns="number",
            impl=_no_series,
            warmup=lambda _: 0,
            unit=Unit.RATIO,
        ),
        Scope.ENTRY,
    )
}


def reads_context(node: ast.Node) -> bool:
    """Does this tree read an open trade or the portfolio: values that are no market series?"""
    for n in node.walk():
        if isinstance(n, ast.Name) and n.id in CONTEXT_NAMES and n.id not in LIVE_NAMES:
            return True
        if isinstance(n, ast.Call) and n.func in CONTEXT_FUNCTIONS:
            return True
    return False


def reads_portfolio(node: ast.Node) -> bool:
    """Portfolio values (equity among them), as opposed to an open trade's own."""
    trade_names = {n for n, b in CONTEXT_NAMES.items() if b.scope & Scope.TRADE}
    return any(
        (isinstance(n, ast.Name) and n.id in PORTFOLIO_NAMES - trade_names)
        or (isinstance(n, ast.Call) and n.func in CONTEXT_FUNCTIONS)
        for n in node.walk()
    )


# Functions over a model declared under `models:`: the checker writes the model out in the
# call (lang.ast.Predict), docs/models.md explains them.
MODEL_FUNCTIONS = {
    "predict": (
        "predict(model)",
        "the model's probability (0 to 1) that its label will hold, from the model trained at "
        "the last retraining point; undefined where it has none",
    ),
    "model_accuracy": (
        "model_accuracy(model, n)",
        "the share of the model's last n predictions whose label is known by now that fell "
        "on the right side of 0.5; undefined until n are known",
    ),
}
MAX_ACCURACY_WINDOW = 10_000

RESERVED = {"regime", "otherwise", "true", "false", "and", "or", "not", "if", "then", "else"}

"""The unit algebra: what a number in a strategy is measured in, and which mixes make sense.

Plain data and pure functions. A price and a percentage, or RSI points and a percentage,
can both be written as numbers, but comparing them is almost always a mistake that makes a
rule silently never (or always) hold: `rsi(close, 14) < 65%` reads 65% as 0.65. The checker
gives every expression a unit with these rules and reports the mixes that cannot be right.

A bare literal (`2`, `0.001`, `1.5`) is a plain number: it takes the unit of whatever it
meets, so `close > 0` and `2 * atr(14)` need no ceremony. A percentage literal (`2.5%`) is
a ratio. An expression whose unit cannot be told (a square root of a price, say) is
`any`: it is compatible with everything and never the cause of an error.
"""

from __future__ import annotations

from enum import Enum


class Unit(Enum):
    PRICE = "price"  # in the quote currency, per unit of the base asset: open, close, ema(close)
    RATIO = "ratio"  # a dimensionless fraction: 2.5% is the ratio 0.025; profit, pct_change
    POINTS = "points"  # a 0–100 scale: rsi, adx, stochastics, percentile_rank
    PERCENT = "percent"  # percent points, 5 meaning +5%: roc
    COUNT = (
        "count"  # candles or trades: bars_held, count(...); a duration such as 24h counts candles
    )
    VOLUME = "volume"  # an amount of the base asset: volume, obv
    MONEY = "money"  # an amount of the quote (stake) currency: quote_volume, equity, open_profit
    NUMBER = "number"  # a plain number, compatible with anything: 2, 0.5, a standard score
    ANY = "any"  # cannot be told (e.g. the square root of a price): never checked
    BOOL = "bool"  # true/false

    @property
    def words(self) -> str:
        """How a non-programmer would say what a value of this unit is."""
        return _WORDS[self]

    @property
    def noun(self) -> str:
        """The unit named on its own, for reference pages and listings."""
        return _NOUNS[self]


_WORDS = {
    Unit.PRICE: "a price",
    Unit.RATIO: "a ratio (0.025 is 2.5%)",
    Unit.POINTS: "on a 0–100 scale",
    Unit.PERCENT: "in percent points (5 means 5%)",
    Unit.COUNT: "a count (of candles or trades)",
    Unit.VOLUME: "an amount of the base asset",
    Unit.MONEY: "an amount of the quote currency",
    Unit.NUMBER: "a plain number",
    Unit.ANY: "of mixed units",
    Unit.BOOL: "a condition (true/false)",
}

_NOUNS = {
    Unit.PRICE: "a price (quote currency per unit of the base asset)",
    Unit.RATIO: "a ratio (0.025 is 2.5%)",
    Unit.POINTS: "points on a 0–100 scale",
    Unit.PERCENT: "percent points (5 means 5%)",
    Unit.COUNT: "a count (of candles or trades)",
    Unit.VOLUME: "an amount of the base asset",
    Unit.MONEY: "an amount of the quote currency",
    Unit.NUMBER: "a plain number",
    Unit.ANY: "mixed units (not checked)",
    Unit.BOOL: "true/false",
}

# Units that are a fraction of something: multiplying a quantity by one keeps the quantity.
SCALARS = frozenset({Unit.NUMBER, Unit.RATIO})
# Units that mix with anything without an error.
OPEN = frozenset({Unit.NUMBER, Unit.ANY})
# Units that are a ratio times 100.
HUNDREDFOLD = frozenset({Unit.POINTS, Unit.PERCENT})

# Products and quotients of two different units that have a meaning of their own.
_PRODUCTS = {
    frozenset({Unit.PRICE, Unit.VOLUME}): Unit.MONEY,
}
_QUOTIENTS = {
    (Unit.MONEY, Unit.PRICE): Unit.VOLUME,
    (Unit.MONEY, Unit.VOLUME): Unit.PRICE,
}


def parse_unit(text: str) -> Unit:
    """A unit from its name as written in a strategy (`unit: points`)."""
    return Unit(text.strip().lower())


def unify(a: Unit, b: Unit) -> Unit | None:
    """The common unit of two values compared, added, subtracted or chosen between; None
    when they cannot be mixed."""
    if a == b:
        return a
    if Unit.ANY in (a, b):
        return Unit.ANY
    if a == Unit.NUMBER:
        return b
    if b == Unit.NUMBER:
        return a
    return None


def multiply(a: Unit, b: Unit) -> Unit:
    """The unit of a × b: a plain number or a ratio scales the other side (price × 2% is a
    price); price × volume is money; anything else cannot be told."""
    if a in SCALARS and b in SCALARS:
        return Unit.RATIO if Unit.RATIO in (a, b) else Unit.NUMBER
    if a in SCALARS:
        return b
    if b in SCALARS:
        return a
    return _PRODUCTS.get(frozenset({a, b}), Unit.ANY)


def divide(a: Unit, b: Unit) -> Unit:
    """The unit of a / b: like over like is a ratio (price / price), a quantity over a plain
    number or a ratio keeps its unit, money / price is volume. A 0–100 value over a plain
    number is rescaled, `(adx() - 20) / 30`, and becomes a plain number."""
    if a in HUNDREDFOLD and b == Unit.NUMBER:
        return Unit.NUMBER
    if a == b and a not in OPEN:
        return Unit.RATIO if a != Unit.NUMBER else Unit.NUMBER
    if a in SCALARS and b in SCALARS:
        return Unit.RATIO if Unit.RATIO in (a, b) else Unit.NUMBER
    if b in SCALARS:
        return a
    return _QUOTIENTS.get((a, b), Unit.ANY)


def hundredfold(a: Unit) -> Unit:
    """`x * 100`: a ratio times 100 is in percent points; everything else keeps its unit."""
    return Unit.PERCENT if a == Unit.RATIO else a


def hundredth(a: Unit) -> Unit:
    """`x / 100`: points or percent points divided by 100 are a ratio."""
    return Unit.RATIO if a in HUNDREDFOLD else a


def mismatch_hint(a: Unit, b: Unit) -> str:
    """How to fix a mix of two units, in plain words."""
    pair = {a, b}
    if Unit.RATIO in pair and pair & HUNDREDFOLD:
        return "a 0–100 value divided by 100 is a ratio; a ratio times 100 is in percent points"
    if pair == {Unit.PRICE, Unit.RATIO}:
        return "to compare a move with a percentage, divide prices: close / ema(close, 50) - 1"
    if pair == {Unit.VOLUME, Unit.MONEY}:
        return "volume × close is money (quote_volume); quote_volume / close is volume"
    if pair == {Unit.PRICE, Unit.MONEY} or pair == {Unit.PRICE, Unit.VOLUME}:
        return "money / volume is a price; price × volume is money"
    return "compare like with like, or divide one by the other to get a ratio"

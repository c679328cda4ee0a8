"""Pairs as users write them (`BTC/USDT`, futures `BTC/USDT:USDT`) and as files name them.

File names use freqtrade's encoding (`BTC_USDT`, `BTC_USDT_USDT`), which is what
users' existing data directories already hold; exchange bulk files use the bare
symbol (`BTCUSDT`), which we split on the quote currencies exchanges list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kinetic_rules.errors import ConfigError

_ASSET = r"[A-Za-z0-9][A-Za-z0-9.]*"
_PAIR = re.compile(rf"^({_ASSET})/({_ASSET})(?::({_ASSET})(?:-([0-9A-Za-z-]+))?)?$")

# Longest first, so that `EURIUSDT` splits as EURI/USDT and `BTCFDUSD` as BTC/FDUSD.
_QUOTES = sorted(
    (
        "USDT",
        "USDC",
        "FDUSD",
        "BUSD",
        "TUSD",
        "USDP",
        "DAI",
        "EURI",
        "USD1",
        "USDE",
        "BTC",
        "ETH",
        "BNB",
        "XRP",
        "TRX",
        "DOGE",
        "SOL",
        "EUR",
        "TRY",
        "BRL",
        "GBP",
        "AUD",
        "JPY",
        "RUB",
        "UAH",
        "ZAR",
        "PLN",
        "RON",
        "ARS",
        "MXN",
        "COP",
        "CZK",
        "IDR",
        "NGN",
        "BIDR",
        "IDRT",
        "BKRW",
        "BVND",
    ),
    key=len,
    reverse=True,
)


@dataclass(frozen=True)
class Pair:
    base: str
    quote: str
    settle: str | None = None
    expiry: str | None = None

    def __str__(self) -> str:
        text = f"{self.base}/{self.quote}"
        if self.settle:
            text += f":{self.settle}"
            if self.expiry:
                text += f"-{self.expiry}"
        return text


def parse_pair(text: str) -> Pair:
    """`BTC/USDT` or `BTC/USDT:USDT`; anything else is a ConfigError that shows the form."""
    match = _PAIR.match(text.strip())
    if not match:
        hint = ""
        if "/" not in text and split_symbol(text) is not None:
            hint = f"; did you mean {split_symbol(text)}?"
        raise ConfigError(
            f"'{text}' is not a pair; write BASE/QUOTE such as BTC/USDT "
            f"(futures: BTC/USDT:USDT){hint}"
        )
    base, quote, settle, expiry = match.groups()
    return Pair(base.upper(), quote.upper(), settle.upper() if settle else None, expiry)


def normalize_pair(text: str) -> str:
    return str(parse_pair(text))


def strategy_pair(pair: str) -> str:
    """BTC/USDT:USDT -> BTC/USDT: the name a strategy gives the market, and the one every
    series of it (candles, funding, mark prices, rules) is stored under."""
    parsed = parse_pair(pair)
    return f"{parsed.base}/{parsed.quote}"


def pair_to_filename(pair: str) -> str:
    """`BTC/USDT` → `BTC_USDT`, `BTC/USDT:USDT` → `BTC_USDT_USDT` (freqtrade's names)."""
    parsed = parse_pair(pair)
    name = f"{parsed.base}_{parsed.quote}"
    if parsed.settle:
        name += f"_{parsed.settle}"
        if parsed.expiry:
            name += f"-{parsed.expiry}"
    return name


def pair_from_filename(stem: str) -> str | None:
    """The inverse for freqtrade names; None when the stem is not one."""
    parts = stem.split("_")
    if len(parts) == 2 and all(parts):
        return f"{parts[0]}/{parts[1]}".upper()
    if len(parts) == 3 and all(parts):
        return f"{parts[0]}/{parts[1]}:{parts[2]}".upper()
    return None


def split_symbol(symbol: str) -> str | None:
    """An exchange symbol such as `BTCUSDT` as a pair, by its quote currency; None if unknown."""
    upper = symbol.upper()
    for quote in _QUOTES:
        if upper.endswith(quote) and len(upper) > len(quote):
            return f"{upper[: -len(quote)]}/{quote}"
    return None

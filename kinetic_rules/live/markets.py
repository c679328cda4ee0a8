"""Live scanning: the markets of an exchange a session scans when no pairs are named.

The strategy's scanner picks its shortlist from candles, at every `refresh`. Live, the
candidates are the exchange's markets: every active market of the strategy's type
(spot, or linear perpetual futures) quoted in the stake currency, less leveraged
tokens, stablecoins and fiat money against the stake, and less the scanner's
blacklist. They are ranked by 24-hour quote volume from a single `fetch_tickers`
call, and the busiest form the session's universe: as many as the scanner's largest
`top` step times UNIVERSE_FACTOR (or DEFAULT_UNIVERSE without a `top` step), at most
MAX_UNIVERSE. The listing is taken again on the scanner's schedule.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from kinetic_rules.data.exchange import RetryPolicy, call_with_retry
from kinetic_rules.engine.scanner import blacklisted
from kinetic_rules.errors import ConfigError
from kinetic_rules.spec.models import Market, Scanner

log = logging.getLogger("kinetic_rules.live")

UNIVERSE_FACTOR = 1.5  # room around the scanner's largest `top`: ranks move between refreshes
DEFAULT_UNIVERSE = 100  # a scanner without a `top` step
MAX_UNIVERSE = 200  # every pair in the universe costs candle windows and evaluation time

# Coins that hold a fixed value (dollar and euro stablecoins, fiat money): against the
# stake they barely move, so no strategy rule about momentum or volatility applies.
STABLE = frozenset(
    {
        "USDT", "USDC", "BUSD", "TUSD", "FDUSD", "USDP", "PAX", "DAI", "USDD", "PYUSD",
        "USDE", "USDS", "USD1", "RLUSD", "GUSD", "SUSD", "LUSD", "FRAX", "BFUSD", "XUSD",
        "EURI", "EURC", "AEUR", "EURT", "EUR", "GBP", "AUD", "BRL", "TRY", "ARS", "JPY",
        "MXN", "PLN", "RON", "UAH", "ZAR", "COP", "CZK", "IDRT", "BIDR", "BVND",
    }
)  # fmt: skip
# Leveraged tokens: BTCUP, BTCDOWN, ETHBULL, XRPBEAR, BTC3L, ETH5S ...
LEVERAGED = re.compile(r"^(?P<underlying>[A-Z0-9]+?)(UP|DOWN|BULL|BEAR|[2-9][LS])$")


@dataclass(frozen=True)
class Listed:
    pair: str
    quote_volume: float  # over the last 24 hours, in the quote currency


def universe_size(scanner: Scanner | None) -> int:
    """How many of the busiest markets a live scan keeps (see the module docstring)."""
    tops = [step.top for step in scanner.steps if step.top] if scanner else []
    wanted = math.ceil(max(tops) * UNIVERSE_FACTOR) if tops else DEFAULT_UNIVERSE
    return min(MAX_UNIVERSE, wanted)


def leveraged(base: str, bases: Collection[str]) -> bool:
    """A leveraged token: its name is another listed coin's plus UP, DOWN, BULL, 3L ...

    The underlying coin must be listed too, so JUP (J is not a coin) stays a coin.
    """
    found = LEVERAGED.match(base)
    return found is not None and found["underlying"] in bases


def eligible(
    markets: Mapping[str, Mapping[str, Any]],
    *,
    market: Market,
    blacklist: Iterable[str] = (),
) -> list[str]:
    """The markets a live scan may pick from, by name (ccxt market structures in)."""
    kind = "spot" if market.type == "spot" else "swap"
    patterns = list(blacklist)
    bases = {str(m.get("base")) for m in markets.values()}
    pairs = []
    for symbol, info in markets.items():
        if not info.get(kind) or info.get("active") is False:
            continue
        if info.get("quote") != market.stake_currency:
            continue
        if kind == "swap" and (not info.get("linear") or info.get("settle") != info.get("quote")):
            continue  # linear perpetuals settled in the stake currency only
        base = str(info.get("base"))
        if base in STABLE or leveraged(base, bases) or blacklisted(symbol, patterns):
            continue
        pairs.append(symbol)
    return sorted(pairs)


def rank(pairs: Iterable[str], tickers: Mapping[str, Mapping[str, Any]]) -> list[Listed]:
    """Busiest first by 24-hour quote volume (ties: pair name); markets that traded nothing
    in 24 hours are left out. Without a quote volume, base volume × last price stands in."""
    listed = []
    for pair in pairs:
        ticker = tickers.get(pair) or {}
        volume = ticker.get("quoteVolume")
        if volume is None and ticker.get("baseVolume") and ticker.get("last"):
            volume = float(ticker["baseVolume"]) * float(ticker["last"])
        if volume and float(volume) > 0:
            listed.append(Listed(pair, float(volume)))
    return sorted(listed, key=lambda item: (-item.quote_volume, item.pair))


def scan_markets(
    exchange: Any,
    market: Market,
    scanner: Scanner | None,
    *,
    retry: RetryPolicy | None = None,
) -> list[str]:
    """The session's universe now: the busiest eligible markets, sorted by name."""
    policy = retry or RetryPolicy()
    call = _caller(exchange, policy)
    markets = call("load markets", lambda: exchange.load_markets())
    candidates = eligible(markets, market=market, blacklist=scanner.blacklist if scanner else ())
    if not candidates:
        raise ConfigError(
            f"{exchange.id} lists no active {market.type} market quoted in "
            f"{market.stake_currency} that the scanner may trade"
        )
    params = {} if market.type == "spot" else {"type": "swap"}  # spot: every client's default
    tickers = call("fetch tickers", lambda: exchange.fetch_tickers(None, params))
    ranked = rank(candidates, tickers)
    chosen = ranked[: universe_size(scanner)]
    log.info(
        "scanning %d of %d %s markets quoted in %s on %s (busiest by 24h quote volume)",
        len(chosen), len(candidates), market.type, market.stake_currency, exchange.id,
    )  # fmt: skip
    return sorted(item.pair for item in chosen)


class LiveUniverse:
    """The universe of a live session, listed again at every scanner refresh."""

    def __init__(
        self,
        exchange: Any,
        market: Market,
        scanner: Scanner,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.exchange, self.market, self.scanner = exchange, market, scanner
        self.retry = retry
        self.pairs: list[str] = []
        self.listed_at: pd.Timestamp | None = None

    def due(self, now: pd.Timestamp) -> bool:
        """Whether a refresh time of the scanner has passed since the last listing."""
        if self.listed_at is None:
            return True
        every = self.scanner.refresh
        return math.floor(now.timestamp() / every) > math.floor(self.listed_at.timestamp() / every)

    def refresh(self, now: pd.Timestamp) -> list[str]:
        """List the busiest markets now (ExchangeError when the exchange cannot say)."""
        self.pairs = scan_markets(self.exchange, self.market, self.scanner, retry=self.retry)
        self.listed_at = now
        return list(self.pairs)


def _caller(exchange: Any, policy: RetryPolicy) -> Callable[[str, Callable[[], Any]], Any]:
    def call(what: str, action: Callable[[], Any]) -> Any:
        return call_with_retry(
            action,
            exchange=exchange,
            what=what,
            policy=policy,
            on_retry=lambda text: log.warning("%s", text),
        )

    return call

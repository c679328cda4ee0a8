"""ExchangeStandin: a local exchange that the real ccxt client talks to over HTTP.

    with ExchangeStandin.from_fixtures() as exchange:
        client = exchange.ccxt_client()          # ccxt.binance pointed at 127.0.0.1
        exchange.clock.set("2024-03-01")         # nothing after this is served
        exchange.faults.fail_next(2)             # the next two requests answer 503
        client.fetch_ohlcv("BTC/USDT", "1h")
        exchange.requests("/api/v3/klines")      # what the client asked for
        exchange.ccxt_futures_client()           # ccxt.binanceusdm on the futures account

State (market, clock, faults, request log) lives in plain objects, and each endpoint
family installs its handlers on the router, so that later work (orders, balances,
stop orders) adds modules rather than growing one function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.standin import binance_futures, binance_spot, binance_trading
from tests.standin.account import Account
from tests.standin.faults import Faults
from tests.standin.futures_account import FuturesAccount
from tests.standin.market import Clock, Market
from tests.standin.router import LoopbackServer, Recorded, Request, Response, Router

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class ExchangeStandin(LoopbackServer):
    def __init__(self, market: Market | None = None, account: Account | None = None) -> None:
        self.market = market or Market()
        self.account = account or Account(self.market)  # balances and orders
        self.futures = FuturesAccount(self.market)  # the USDⓈ-M futures account (/fapi)
        self.faults = Faults()
        self.router = Router(self.faults)
        binance_spot.install(self.router, self.market)
        binance_trading.install(self.router, self.account)
        binance_futures.install(self.router, self.futures)
        self.router.add("POST", "/standin/advance", self._advance)

    def _advance(self, request: Request) -> Response:
        """Not Binance: lets a bot in another process sleep in the stand-in's time."""
        self.market.clock.advance(int(request.param("ms") or 0))
        return Response(200, {"serverTime": self.market.clock.now()})

    @classmethod
    def from_fixtures(
        cls,
        pairs: tuple[str, ...] = ("BTC/USDT", "ETH/USDT"),
        timeframes: tuple[str, ...] = ("15m", "1h", "1d"),
    ) -> ExchangeStandin:
        """Real recorded candles: the exchange's CSV slices, and feather slices for 5m."""
        market = Market()
        for pair in pairs:
            base, quote = pair.split("/")
            for tf in timeframes:
                csv = FIXTURES / "binance-15m-csv" / f"{base}{quote}-{tf}.csv.gz"
                feather = FIXTURES / "binance-5m-2024" / f"{base}_{quote}-{tf}.feather"
                if csv.exists():
                    market.load_kline_csv(csv, base, quote, tf)
                elif feather.exists():
                    market.load_feather(feather, base, quote, tf)
                else:
                    raise FileNotFoundError(f"no fixture candles for {pair} {tf}")
        return cls(market)

    @property
    def clock(self) -> Clock:
        return self.market.clock

    def requests(self, path: str | None = None) -> list[Recorded]:
        return self.router.requests(path)

    def api_urls(self, template: dict[str, Any]) -> dict[str, Any]:
        """ccxt's `urls['api']` with every host replaced by this server (paths kept)."""
        return {key: self._rehost(value) for key, value in template.items()}

    def _rehost(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._rehost(v) for k, v in value.items()}
        if isinstance(value, str) and value.startswith("http"):
            return self.url + urlsplit(value).path
        return value

    def ccxt_client(self, **config: Any) -> Any:
        """A real `ccxt.binance` (sync) speaking to this server; spot markets only."""
        import ccxt

        settings: dict[str, Any] = {
            "enableRateLimit": False,
            "timeout": 5_000,
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
        }
        settings.update(config)
        client = ccxt.binance(settings)
        client.urls["api"] = self.api_urls(client.urls["api"])
        client.session.trust_env = False  # never a proxy between us and loopback
        return client

    def ccxt_futures_client(self, **config: Any) -> Any:
        """A real `ccxt.binanceusdm` (sync) speaking to this server's /fapi endpoints."""
        import ccxt

        settings: dict[str, Any] = {"enableRateLimit": False, "timeout": 5_000}
        settings.update(config)
        client = ccxt.binanceusdm(settings)
        client.urls["api"] = self.api_urls(client.urls["api"])
        client.session.trust_env = False
        return client

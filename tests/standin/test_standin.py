"""The stand-in speaks enough of the exchange's API for the real ccxt client."""

from __future__ import annotations

import gzip
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import ccxt
import pytest

from tests.standin import ExchangeStandin
from tests.standin.exchange import FIXTURES

KLINES = "/api/v3/klines"
FEB_15 = 1_707_955_200_000  # 2024-02-15 00:00 UTC, ms


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(timeframes=("15m", "1h")) as exchange:
        yield exchange


@pytest.fixture
def client(standin: ExchangeStandin) -> Any:
    return standin.ccxt_client()


def test_markets_load_as_ccxt_expects(client: Any) -> None:
    markets = client.load_markets()
    assert sorted(markets) == ["BTC/USDT", "ETH/USDT"]
    btc = markets["BTC/USDT"]
    assert btc["spot"] and btc["active"] and btc["id"] == "BTCUSDT"
    assert btc["precision"]["price"] == 0.01
    assert btc["limits"]["cost"]["min"] == 5.0


def test_klines_are_the_recorded_rows(client: Any, standin: ExchangeStandin) -> None:
    candles = client.fetch_ohlcv("BTC/USDT", "15m", since=FEB_15, limit=3)
    assert [c[0] for c in candles] == [FEB_15, FEB_15 + 900_000, FEB_15 + 1_800_000]
    with gzip.open(FIXTURES / "binance-15m-csv" / "BTCUSDT-15m.csv.gz", "rt") as lines:
        recorded = lines.readline().strip().split(",")
    assert candles[0][1:] == [float(v) for v in recorded[1:6]]
    raw = client.publicGetKlines(
        {"symbol": "BTCUSDT", "interval": "15m", "startTime": FEB_15, "limit": 1}
    )
    assert [str(v) for v in raw[0]] == recorded
    latest = client.fetch_ohlcv("BTC/USDT", "1h", limit=2)  # no since: the most recent
    assert latest[-1][0] == standin.clock.now() - 3_600_000


def test_the_clock_hides_the_future_but_shows_the_forming_candle(
    client: Any, standin: ExchangeStandin
) -> None:
    standin.clock.set("2024-03-01 00:20")
    assert client.fetch_time() == standin.clock.now()
    candles = client.fetch_ohlcv("ETH/USDT", "15m", limit=2)
    assert [c[0] for c in candles] == [
        standin.clock.now() - 20 * 60_000 + m * 60_000 for m in (0, 15)
    ]
    standin.clock.advance(15 * 60_000)
    assert client.fetch_ohlcv("ETH/USDT", "15m", limit=1)[0][0] == standin.clock.now() - 5 * 60_000


def test_tickers_and_books(client: Any) -> None:
    ticker = client.fetch_ticker("BTC/USDT")
    assert ticker["last"] == 71388.94 and ticker["quoteVolume"] > 0
    assert ticker["bid"] < ticker["ask"]
    assert set(client.fetch_tickers()) == {"BTC/USDT", "ETH/USDT"}
    book = client.fetch_order_book("ETH/USDT", 5)
    assert len(book["bids"]) == 5 and book["bids"][0][0] < book["asks"][0][0]
    assert client.fetch_bids_asks(["BTC/USDT"])["BTC/USDT"]["ask"] == 71388.95


def test_errors_come_in_the_exchanges_words(client: Any, standin: ExchangeStandin) -> None:
    with pytest.raises(ccxt.BadSymbol):
        client.publicGetKlines({"symbol": "XRPUSDT", "interval": "1h"})
    with pytest.raises(ccxt.BadRequest, match="Invalid interval"):
        client.publicGetKlines({"symbol": "BTCUSDT", "interval": "7m"})
    with urllib.request.urlopen(standin.url + "/api/v3/ping") as response:
        assert json.load(response) == {}


def test_faults(client: Any, standin: ExchangeStandin) -> None:
    standin.faults.fail_next(2, path=KLINES)
    standin.faults.rate_limit_next(1, retry_after=3, path=KLINES)
    for expected in (ccxt.ExchangeNotAvailable, ccxt.ExchangeNotAvailable, ccxt.DDoSProtection):
        with pytest.raises(expected):
            client.fetch_ohlcv("BTC/USDT", "1h", limit=1)
    assert client.last_response_headers["Retry-After"] == "3"
    assert len(client.fetch_ohlcv("BTC/USDT", "1h", limit=1)) == 1
    standin.faults.malformed_next(1, body="not json")
    assert client.publicGetKlines({"symbol": "BTCUSDT", "interval": "1h"}) == "not json"
    client.timeout = 200
    standin.faults.delay_next(1, seconds=1.0)
    with pytest.raises(ccxt.RequestTimeout):
        client.fetch_time()
    assert standin.faults.pending == 0
    assert [r.status for r in standin.requests(KLINES)][:4] == [503, 503, 429, 200]

"""`run --inputs ws`: bids and asks pushed over a WebSocket through the real ccxt pro
client, from a stream server on 127.0.0.1; REST stands in while the socket is down."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from kinetic_rules.live.inputs import LiveInputs
from kinetic_rules.live.streams import BidAskStream
from tests.standin.exchange import ExchangeStandin
from tests.standin.websocket import BookTickerServer

PAIRS = ["BTC/USDT", "ETH/USDT"]


def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait for something another thread does (generous: the machine may be busy)."""
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def _connector(standin: ExchangeStandin, server: BookTickerServer) -> Callable[[], Any]:
    import ccxt.pro

    markets = standin.ccxt_client().load_markets()

    def connect() -> Any:
        client = ccxt.pro.binance({"enableRateLimit": False})
        client.set_markets(markets)
        client.urls["api"]["ws"] = {"spot": server.url}  # the stream stand-in, not Binance
        return client

    return connect


def test_pushed_quotes_are_read_and_rest_stands_in_while_the_socket_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="kinetic_rules.live")
    names = frozenset({"bid", "ask", "spread"})
    with (
        ExchangeStandin.from_fixtures(pairs=tuple(PAIRS), timeframes=("5m",)) as standin,
        BookTickerServer() as server,
    ):
        standin.clock.set(pd.Timestamp("2024-03-05 00:00:10", tz="UTC"))
        rest = standin.ccxt_client()
        btc = rest.fetch_bids_asks(["BTC/USDT"])["BTC/USDT"]
        served = (float(btc["bid"]), float(btc["ask"]))  # what REST answers for BTC
        server.quote("BTCUSDT", 100.5, 101.5)  # ETH is never pushed: REST for it
        stream = BidAskStream(_connector(standin, server), PAIRS, retry_seconds=0.05)
        stream.start()
        try:
            reader = LiveInputs(rest, names, stream=stream)
            _until(lambda: (stream.tops(PAIRS) or {}).get("BTC/USDT") == (100.5, 101.5), "up")
            assert server.subscriptions[0] == ["btcusdt@bookTicker", "ethusdt@bookTicker"]
            first = reader.read(PAIRS)
            assert (first["BTC/USDT"]["bid"], first["BTC/USDT"]["ask"]) == (100.5, 101.5)
            assert first["BTC/USDT"]["spread"] == pytest.approx(1 / 101.5)
            assert "bid" in first["ETH/USDT"]  # not pushed: read over REST

            server.quote("BTCUSDT", 100.7, 100.8)  # a push changes the next read
            _until(lambda: (stream.tops(PAIRS) or {}).get("BTC/USDT") == (100.7, 100.8), "push")
            assert reader.read(["BTC/USDT"])["BTC/USDT"]["bid"] == 100.7

            server.drop()
            _until(lambda: not stream.up, "the drop is noticed")
            down = reader.read(["BTC/USDT"])["BTC/USDT"]
            assert (down["bid"], down["ask"]) == served
            assert "WebSocket dropped" in caplog.text and "over REST" in caplog.text

            server.allow()
            _until(lambda: stream.up, "the stream is back")
            assert reader.read(["BTC/USDT"])["BTC/USDT"]["bid"] == 100.7
            assert stream.drops == 1
        finally:
            stream.close()

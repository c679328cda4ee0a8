"""The futures stand-in answers the real ccxt `binanceusdm` client as the exchange would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.standin import ExchangeStandin
from tests.standin.account import API_KEY, API_SECRET
from tests.standin.market import to_ms

PERP = "BTC/USDT:USDT"
START = "2024-03-01 07:00"


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures(pairs=("BTC/USDT",), timeframes=("15m",)) as exchange:
        exchange.clock.set(START)
        exchange.futures.deposit(1_000)
        yield exchange


@pytest.fixture
def client(standin: ExchangeStandin) -> Any:
    return standin.ccxt_futures_client(apiKey=API_KEY, secret=API_SECRET)


def test_mark_price_candles_and_the_premium_index_follow_the_mark_ratio(
    standin: ExchangeStandin, client: Any
) -> None:
    standin.futures.set_mark_ratio("BTCUSDT", "1.01")
    trades = client.fetch_ohlcv(PERP, "15m", limit=3)
    marks = client.fetch_mark_ohlcv(PERP, "15m", limit=3)
    assert [m[0] for m in marks] == [t[0] for t in trades]
    for mark, trade in zip(marks, trades, strict=True):
        assert mark[1:5] == pytest.approx([p * 1.01 for p in trade[1:5]])
    premium = client.fetch_funding_rate(PERP)
    assert premium["markPrice"] == pytest.approx(trades[-1][1] * 1.01)
    assert premium["fundingRate"] == 0.0001
    history = client.fetch_funding_rate_history(PERP, limit=3)
    assert [h["timestamp"] % (8 * 3_600_000) for h in history] == [0, 0, 0]


def test_funding_is_charged_every_eight_hours_as_income(
    standin: ExchangeStandin, client: Any
) -> None:
    client.create_order(PERP, "market", "sell", 0.01)  # a short receives a positive rate
    standin.clock.set("2024-03-01 16:30")  # past 08:00 and 16:00
    income = client.fetch_funding_history(PERP)
    assert [i["timestamp"] for i in income] == [
        to_ms("2024-03-01 08:00"),
        to_ms("2024-03-01 16:00"),
    ]
    assert all(i["amount"] > 0 for i in income)
    series = standin.market.series[("BTCUSDT", "15m")]
    at_eight = series.rows[list(series.open_times).index(to_ms("2024-03-01 08:00"))]
    assert income[0]["amount"] == pytest.approx(0.01 * float(str(at_eight[1])) * 0.0001, abs=1e-8)
    commission = [i for i in standin.futures.income("COMMISSION")]
    wallet = 1_000 + sum(i["amount"] for i in income) + sum(float(c.amount) for c in commission)
    held = float(client.fetch_balance()["info"]["totalWalletBalance"])  # without open profit
    assert held == pytest.approx(wallet, abs=1e-6)


def test_an_order_needing_more_margin_than_is_available_is_refused_with_2019(
    standin: ExchangeStandin, client: Any
) -> None:
    client.set_leverage(2, PERP)
    with pytest.raises(Exception, match="-2019"):
        client.create_order(PERP, "market", "buy", 1.0)
    assert not standin.futures.position("BTCUSDT").amount

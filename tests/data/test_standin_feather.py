"""The stand-in serves recorded feather candles exactly as the exchange would: as numbers."""

from __future__ import annotations

import pandas as pd

from tests.conftest import fixture_candles
from tests.standin.exchange import ExchangeStandin


def test_feather_candles_reach_ccxt_as_the_recorded_numbers() -> None:
    recorded = fixture_candles("BTC/USDT", "5m")
    with ExchangeStandin.from_fixtures(pairs=("BTC/USDT",), timeframes=("5m",)) as standin:
        standin.clock.set(recorded.index[20] + pd.Timedelta(minutes=5))
        client = standin.ccxt_client()
        candles = client.fetch_ohlcv(
            "BTC/USDT", "5m", since=int(recorded.index[0].timestamp() * 1000), limit=10
        )
    assert [row[4] for row in candles] == recorded["close"].iloc[:10].tolist()

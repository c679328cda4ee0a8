"""Pairs, timeranges, exchange clients and retry delays: the small parsers users type into."""

from __future__ import annotations

import pandas as pd
import pytest

from kinetic_rules.data.exchange import RetryPolicy, create_exchange, rehost
from kinetic_rules.data.pairs import normalize_pair, pair_to_filename, split_symbol
from kinetic_rules.data.timerange import parse_timerange
from kinetic_rules.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "pair", "file"),
    [
        ("BTC/USDT", "BTC/USDT", "BTC_USDT"),
        ("eth/btc", "ETH/BTC", "ETH_BTC"),
        ("BTC/USDT:USDT", "BTC/USDT:USDT", "BTC_USDT_USDT"),
        ("BTC/USDT:USDT-240628", "BTC/USDT:USDT-240628", "BTC_USDT_USDT-240628"),
        ("1000SATS/USDT", "1000SATS/USDT", "1000SATS_USDT"),
    ],
)
def test_pairs_and_their_file_names(text: str, pair: str, file: str) -> None:
    assert normalize_pair(text) == pair
    assert pair_to_filename(text) == file


@pytest.mark.parametrize("text", ["BTCUSDT", "BTC-USDT", "BTC/", "/USDT", "BTC/USDT/ETH", ""])
def test_what_is_not_a_pair(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a pair"):
        normalize_pair(text)


def test_exchange_symbols_split_on_known_quotes() -> None:
    assert split_symbol("EURIUSDT") == "EURI/USDT"
    assert split_symbol("BTCFDUSD") == "BTC/FDUSD"
    assert split_symbol("BTCEURI") == "BTC/EURI"
    assert split_symbol("XYZABC") is None


def test_timeranges() -> None:
    utc = "UTC"
    january, september = pd.Timestamp("2024-01-01", tz=utc), pd.Timestamp("2024-09-01", tz=utc)
    assert parse_timerange("20240101-20240901") == (january, september)
    assert parse_timerange("20240101-") == (pd.Timestamp("2024-01-01", tz=utc), None)
    assert parse_timerange("-202402011230")[1] == pd.Timestamp("2024-02-01 12:30", tz=utc)
    assert parse_timerange("1704067200-")[0] == pd.Timestamp("2024-01-01", tz=utc)
    for bad in ("2024-01-01", "20240101", "-", "20241301-", "20240901-20240101"):
        with pytest.raises(ConfigError, match="timerange"):
            parse_timerange(bad)


def test_backoff_doubles_up_to_a_cap_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay=1.0, factor=2.0, max_delay=10.0)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert policy.delay(1, retry_after=30.0) == 10.0  # never beyond the cap
    assert policy.delay(2, retry_after=3.0) == 3.0


def test_exchange_clients() -> None:
    with pytest.raises(ConfigError, match="unknown exchange 'binanse'; did you mean binance"):
        create_exchange("binanse")
    urls = {"public": "https://api.binance.com/api/v3", "other": {"x": "https://x.com/a/b"}}
    local = "http://127.0.0.1:9"
    assert rehost(urls, local + "/") == {
        "public": f"{local}/api/v3",
        "other": {"x": f"{local}/a/b"},
    }
    client = create_exchange("binance", api_url="http://127.0.0.1:9")
    assert all(url.startswith("http://127.0.0.1:9/") for url in client.urls["api"].values())
    assert client.enableRateLimit is True
    assert client.options["fetchMarkets"]["types"] == ["spot"]
